/* pool.cl: MaxPool (with or without Indices), AveragePool and
 * GlobalAveragePool. Built with -DT=<element type> -DT_LOWEST=<its
 * smallest value>, plus -DT_IS_FLOAT for float. Windows are 2-D: 1-D
 * pooling runs with a height of 1, and tap loops are clamped to the input
 * up front instead of testing every tap.
 *
 * MaxPool and AveragePool split each output row among `chunks` work
 * items. The general kernels stride through it: neighbouring items write
 * neighbouring elements (coalesced on GPUs, vectorized by CPU drivers)
 * over a 1-D range that keeps work groups full whatever the shape; the
 * span kernels (MaxPool's separable, vector and row kernels,
 * AveragePool's vector kernel) take runs of a row instead, in vectors
 * where they can. GlobalAveragePool uses
 * one work group per (n, c) plane. */

#ifndef T
#define T float
#endif
#ifndef T_LOWEST
#define T_LOWEST (-INFINITY)
#endif

/* NaN never wins a maximum (fmax returns the other operand); integers
 * have none */
#ifdef T_IS_FLOAT
#define IS_NUMBER(v) (!isnan (v))
#define MAX_OF(a, b) fmax (a, b)
/* the same on vectors of @best, @v; a compare and a blend where drivers
 * lower a vector fmax lane by lane */
#define VEC_MAX_OF(best, v) select (best, v, (v) > (best))
#else
#define IS_NUMBER(v) 1
#define MAX_OF(a, b) max (a, b)
#define VEC_MAX_OF(best, v) max (best, v)
#endif

/* The geometry the pooling kernels take after their buffers, in this
 * order (rows: output rows over all planes; chunks: work-items per row;
 * then input and output sizes, window, strides, begin pads, dilations). */
#define POOL_GEOMETRY_ARGS \
    int rows, int chunks, int in_h, int in_w, int out_h, int out_w, \
    int k_h, int k_w, int s_h, int s_w, int p_h, int p_w, int d_h, int d_w

/* Largest work group lens_global_average_pool is launched with. */
#define POOL_MAX_GROUP 256

/* The taps k in [*first, *last) of a window starting at @start with
 * dilation @d that fall inside [0, @in). */
inline void
tap_range (int start, int d, int k, int in, int *first, int *last)
{
  /* ceil ((0 - start) / d) and floor ((in - 1 - start) / d) + 1 */
  *first = start >= 0 ? 0 : (-start + d - 1) / d;
  *last = start > in - 1 ? 0 : min (k, (in - 1 - start) / d + 1);
}

/* The maximum of one window (T_LOWEST when no tap falls inside). */
inline T
max_value (__global const T * plane, int oy, int ox, int in_h, int in_w,
    int k_h, int k_w, int s_h, int s_w, int p_h, int p_w, int d_h, int d_w)
{
  T best = T_LOWEST;
  int y0 = oy * s_h - p_h, x0 = ox * s_w - p_w;
  int ky0, ky1, kx0, kx1;

  tap_range (y0, d_h, k_h, in_h, &ky0, &ky1);
  tap_range (x0, d_w, k_w, in_w, &kx0, &kx1);
  for (int ky = ky0; ky < ky1; ky++) {
    int line = (y0 + ky * d_h) * in_w + x0;
    for (int kx = kx0; kx < kx1; kx++)
      best = MAX_OF (best, plane[line + kx * d_w]);
  }
  return best;
}

/* The same with its position in the plane (row major), or -1 when no tap
 * falls inside: the first maximum in scan order wins. */
inline T
max_window (__global const T * plane, int oy, int ox, int in_h, int in_w,
    int k_h, int k_w, int s_h, int s_w, int p_h, int p_w, int d_h, int d_w,
    int *best_pos)
{
  T best = T_LOWEST;
  int pos = -1;
  int y0 = oy * s_h - p_h, x0 = ox * s_w - p_w;
  int ky0, ky1, kx0, kx1;

  tap_range (y0, d_h, k_h, in_h, &ky0, &ky1);
  tap_range (x0, d_w, k_w, in_w, &kx0, &kx1);
  for (int ky = ky0; ky < ky1; ky++) {
    int iy = y0 + ky * d_h;
    for (int kx = kx0; kx < kx1; kx++) {
      int p = iy * in_w + x0 + kx * d_w;
      T v = plane[p];
      if (IS_NUMBER (v) && (pos < 0 || v > best)) {
        best = v;
        pos = p;
      }
    }
  }
  *best_pos = pos;
  return best;
}

__kernel void
lens_max_pool (__global const T * x, __global T * y, POOL_GEOMETRY_ARGS)
{
  int i = get_global_id (0);
  int row, oy;
  __global const T *plane;

  if (i >= rows * chunks)
    return;
  row = i / chunks;
  oy = row % out_h;
  plane = x + (long) (row / out_h) * in_h * in_w;
  for (int ox = i % chunks; ox < out_w; ox += chunks)
    y[(long) row * out_w + ox] = max_value (plane, oy, ox, in_h, in_w, k_h,
        k_w, s_h, s_w, p_h, p_w, d_h, d_w);
}

/* Output columns per work-item of lens_max_pool_sep, and its widest
 * window (pool.c picks the kernel by the same limits, and column strides
 * of at most 2). */
#define POOL_S1_SPAN 16
#define POOL_S1_MAX_K 17

/* MaxPool with dilations 1 and a column stride of 1 or 2 (SPP's 5/9/13
 * windows, the 2x2 and 3x3 stride-2 downsamplers): a work-item takes
 * POOL_S1_SPAN outputs of a row, first the maximum of each column over
 * the k_h rows, then of k_w column maxima per output: about k_h + k_w
 * taps per output at stride 1 instead of k_h x k_w, and the window
 * arithmetic once per span. The maximum of the same taps in another
 * order, so the same value as lens_max_pool (columns outside x count as
 * T_LOWEST, which never wins over a tap, just as lens_max_pool starts
 * from it). NDRange rows x chunks of spans. */
__kernel void
lens_max_pool_sep (__global const T * x, __global T * y,
    POOL_GEOMETRY_ARGS)
{
  int i = get_global_id (0);
  T col[2 * POOL_S1_SPAN + POOL_S1_MAX_K - 2];

  if (i >= rows * chunks)
    return;

  const int row = i / chunks;
  const int ox0 = (i - row * chunks) * POOL_S1_SPAN;
  const int oy = row % out_h;
  const int y0 = oy * s_h - p_h, x0 = ox0 * s_w - p_w;
  const int n = min (POOL_S1_SPAN, out_w - ox0);
  const int sw = min (s_w, 2);
  const int cols = (n - 1) * sw + min (k_w, POOL_S1_MAX_K);
  __global const T *plane = x + (long) (row / out_h) * in_h * in_w;
  int ky0, ky1;

  tap_range (y0, 1, k_h, in_h, &ky0, &ky1);
  for (int c = 0; c < cols; c++) {
    const int ix = x0 + c;
    T best = T_LOWEST;
    if (ix >= 0 && ix < in_w) {
      for (int ky = ky0; ky < ky1; ky++)
        best = MAX_OF (best, plane[(y0 + ky) * in_w + ix]);
    }
    col[c] = best;
  }
  for (int o = 0; o < n; o++) {
    T best = T_LOWEST;
    for (int kx = 0; kx < k_w && kx < POOL_S1_MAX_K; kx++)
      best = MAX_OF (best, col[o * sw + kx]);
    y[(long) row * out_w + ox0 + o] = best;
  }
}

#define POOL_CAT2(a, b) a ## b
#define POOL_CAT(a, b) POOL_CAT2 (a, b)
#define T8 POOL_CAT (T, 8)
#define T16 POOL_CAT (T, 16)
#define CONVERT_T8 POOL_CAT (convert_, T8)

/* Outputs per span (vector) of the vector kernels. */
#define POOL_VEC 8

/* The common head of the vector pooling kernels, for spans of @vec
 * outputs: this item's plane and its chunk of the row's outputs [first,
 * last); reach is how many elements a span reads from its first tap (at
 * stride 2 the last column of an odd window comes from the odd lanes of a
 * load one column earlier), and the spans inside the row start in
 * [first_inside, last_inside]. */
#define POOL_SPAN_BEGIN(vec) \
  const int chunk = get_global_id (0); \
  __global const T *plane = x + (long) get_global_id (2) * in_h * in_w; \
  if (chunk >= chunks || (int) get_global_id (2) * out_h >= rows) \
    return; \
  const int spans = (out_w + (vec) - 1) / (vec); \
  const int per_chunk = (spans + chunks - 1) / chunks; \
  const int first = chunk * per_chunk * (vec); \
  const int last = min (first + per_chunk * (vec), out_w); \
  const int reach = s_w == 1 ? (vec) + k_w - 1 : \
      2 * (vec) + max (k_w, 2) - 2; \
  const int first_inside = (p_w + s_w - 1) >> (s_w - 1); \
  const int last_inside = in_w - reach + p_w < 0 ? -1 : \
      min (out_w - (vec), (in_w - reach + p_w) >> (s_w - 1))
#define POOL_VEC_BEGIN POOL_SPAN_BEGIN (POOL_VEC)

/* In the row loop of the vector MaxPool kernels, for output row oy of
 * @vec-output spans: the outputs no span inside the row covers, one by
 * one (the whole row, and on to the next, where no span fits), then the
 * window's rows inside the input in [ky0, ky1). */
#define POOL_ROW_EDGES(vec) \
  if (last_inside < first_inside) { \
    for (int o = first; o < last; o++) \
      out[o] = max_value (plane, oy, o, in_h, in_w, k_h, k_w, s_h, s_w, \
          p_h, p_w, 1, 1); \
    continue; \
  } \
  for (int o = first; o < min (first_inside, last); o++) \
    out[o] = max_value (plane, oy, o, in_h, in_w, k_h, k_w, s_h, s_w, p_h, \
        p_w, 1, 1); \
  for (int o = max (last_inside + (vec), first); o < last; o++) \
    out[o] = max_value (plane, oy, o, in_h, in_w, k_h, k_w, s_h, s_w, p_h, \
        p_w, 1, 1); \
  tap_range (y0, 1, k_h, in_h, &ky0, &ky1)

/* -DPOOL_UNALIGNED_VECTORS=1 (CPU devices, whose compiler is clang, as
 * CONV_UNALIGNED_VECTORS in conv.cl): lens_max_pool_vec takes spans of
 * POOL_CPU_VEC outputs through vector types aligned to their elements,
 * one load or store instruction each where PoCL's vload16 made four
 * 128-bit pieces, and splits stride-2 pairs of columns with
 * __builtin_shufflevector, which PoCL's .even/.odd did lane by lane.
 * Elsewhere vloadn/vstoren of POOL_VEC, as OpenCL C defines them. */
#ifndef POOL_UNALIGNED_VECTORS
#define POOL_UNALIGNED_VECTORS 0
#endif
#if POOL_UNALIGNED_VECTORS
#define POOL_CPU_VEC 16
typedef T pool_span
    __attribute__ ((ext_vector_type (16), aligned (sizeof (T))));
typedef T pool_pair
    __attribute__ ((ext_vector_type (32), aligned (sizeof (T))));
#define pool_load_span(p) (*(__global const pool_span *) (p))
#define pool_load_pair(p) (*(__global const pool_pair *) (p))
#define pool_store_span(v, p) (*(__global pool_span *) (p) = (v))
/* VEC_MAX_OF for any width (the builtins stop at 16 lanes): the same
 * choice, NaN in @v never winning */
#define POOL_MAX_LANES(best, v) ((v) > (best) ? (v) : (best))
#define pool_even_lanes(v) LENS_EVEN_LANES_32 (v, v)
#define pool_odd_lanes(v) LENS_ODD_LANES_32 (v, v)
#endif

/* MaxPool with dilations 1 and a column stride of 1 or 2 on rows of at
 * least two spans (downsamplers, wide stride-1 windows). A row's spans of
 * POOL_VEC outputs are split in @chunks runs, a run per work-item (the
 * whole row on CPUs, where a work group costs tens of nanoseconds; a span
 * on GPUs). A span is one vector, each window column one vector load (at
 * stride 2 the even or odd lanes of a load that serves two columns). A
 * span whose taps would leave the row is moved inwards, to the nearest
 * span inside (recomputing outputs of its neighbour, the same values):
 * only the outputs beyond the spans inside (those of padding wider than
 * the window reaches) and rows too narrow for a span take max_value.
 * NDRange chunks x row groups x planes (no index divisions), an item
 * taking rows oy, oy + row groups... */
#if POOL_UNALIGNED_VECTORS
/* The CPU form: spans of POOL_CPU_VEC outputs, and at stride 2 each pair
 * of window columns takes the maximum over the window's rows of one load
 * of 2 x POOL_CPU_VEC elements before splitting it into even and odd
 * lanes (k_w shuffles a span instead of k_h x k_w). The 2 x 2 and 3 x 3
 * stride-2 downsamplers have loops of their own, without the tap loops
 * (whose overhead was most of the time). An item takes a block of
 * consecutive rows, which share input rows and read on sequentially. */
__kernel void
lens_max_pool_vec (__global const T * x, __global T * y,
    POOL_GEOMETRY_ARGS)
{
  POOL_SPAN_BEGIN (POOL_CPU_VEC);
  const int block = (out_h + get_global_size (1) - 1) / get_global_size (1);
  const int oy_end = min (out_h, (int) (get_global_id (1) + 1) * block);
  for (int oy = get_global_id (1) * block; oy < oy_end; oy++) {
    const int row = get_global_id (2) * out_h + oy;
    const int y0 = oy * s_h - p_h;
    __global T *out = y + (long) row * out_w;
    int ky0, ky1;

    POOL_ROW_EDGES (POOL_CPU_VEC);

    /* the window's rows inside the input, from its first column */
    const int taps = ky1 - ky0;
    const int top = (y0 + ky0) * in_w - p_w;

    if (s_w == 2 && k_w == 2 && taps == 2) {
      for (int ox0 = first; ox0 < last; ox0 += POOL_CPU_VEC) {
        const int start = clamp (ox0, first_inside, last_inside);
        __global const T *p = plane + top + 2 * start;
        pool_pair pair = POOL_MAX_LANES (pool_load_pair (p),
            pool_load_pair (p + in_w));

        pool_store_span (POOL_MAX_LANES (pool_even_lanes (pair),
                pool_odd_lanes (pair)), out + start);
      }
    } else if (s_w == 2 && k_w == 3 && taps == 3) {
      for (int ox0 = first; ox0 < last; ox0 += POOL_CPU_VEC) {
        const int start = clamp (ox0, first_inside, last_inside);
        __global const T *p = plane + top + 2 * start;
        /* columns 0 and 1 of each window, then 2 (the odd lanes of the
         * pair one column on) */
        pool_pair pair = POOL_MAX_LANES (pool_load_pair (p),
            POOL_MAX_LANES (pool_load_pair (p + in_w),
                pool_load_pair (p + 2 * in_w)));
        pool_pair next = POOL_MAX_LANES (pool_load_pair (p + 1),
            POOL_MAX_LANES (pool_load_pair (p + in_w + 1),
                pool_load_pair (p + 2 * in_w + 1)));
        pool_span best = POOL_MAX_LANES (pool_even_lanes (pair),
            pool_odd_lanes (pair));

        pool_store_span (POOL_MAX_LANES (best, pool_odd_lanes (next)),
            out + start);
      }
    } else {
      for (int ox0 = first; ox0 < last; ox0 += POOL_CPU_VEC) {
        const int start = clamp (ox0, first_inside, last_inside);
        __global const T *p = plane + top + start * s_w;
        pool_span best = (pool_span) (T_LOWEST);

        if (s_w == 1) {
          for (int ky = 0; ky < taps; ky++)
            for (int kx = 0; kx < k_w; kx++)
              best = POOL_MAX_LANES (best, pool_load_span (p + ky * in_w +
                      kx));
        } else {
          for (int kx = 0; kx < k_w; kx += 2) {
            /* the last column of an odd window: the odd lanes of the
             * pair one column earlier (a one-column window: the even
             * lanes) */
            const int col = kx + 1 < k_w || kx == 0 ? kx : kx - 1;
            pool_pair pair = (pool_pair) (T_LOWEST);

            for (int ky = 0; ky < taps; ky++)
              pair = POOL_MAX_LANES (pair, pool_load_pair (p + ky * in_w +
                      col));
            if (kx + 1 < k_w || kx == 0)
              best = POOL_MAX_LANES (best, pool_even_lanes (pair));
            if (kx + 1 < k_w || kx > 0)
              best = POOL_MAX_LANES (best, pool_odd_lanes (pair));
          }
        }
        pool_store_span (best, out + start);
      }
    }
  }
}
#else
__kernel void
lens_max_pool_vec (__global const T * x, __global T * y,
    POOL_GEOMETRY_ARGS)
{
  POOL_VEC_BEGIN;
  for (int oy = get_global_id (1); oy < out_h; oy += get_global_size (1)) {
    const int row = get_global_id (2) * out_h + oy;
    const int y0 = oy * s_h - p_h;
    __global T *out = y + (long) row * out_w;
    int ky0, ky1;

    POOL_ROW_EDGES (POOL_VEC);
    for (int ox0 = first; ox0 < last; ox0 += POOL_VEC) {
      const int start = clamp (ox0, first_inside, last_inside);
      T8 best = (T8) (T_LOWEST);

      for (int ky = ky0; ky < ky1; ky++) {
        __global const T *line = plane + (y0 + ky) * in_w + start * s_w - p_w;
        if (s_w == 1) {
          for (int kx = 0; kx < k_w; kx++)
            best = VEC_MAX_OF (best, vload8 (0, line + kx));
        } else {
          for (int kx = 0; kx < k_w; kx += 2) {
            if (kx + 1 < k_w) {
              T16 pair = vload16 (0, line + kx);
              best = VEC_MAX_OF (best, pair.even);
              best = VEC_MAX_OF (best, pair.odd);
            } else if (kx > 0) {
              best = VEC_MAX_OF (best, vload16 (0, line + kx - 1).odd);
            } else {
              best = VEC_MAX_OF (best, vload16 (0, line).even);
            }
          }
        }
      }
      vstore8 (best, 0, out + start);
    }
  }
}
#endif

/* Widest input row of lens_max_pool_rows, and its widest padding a side. */
#define POOL_ROWS_MAX_W 64
#define POOL_ROWS_PAD 16

/* MaxPool with dilations 1 and a column stride of 1 on rows of 8 to
 * POOL_ROWS_MAX_W inputs and outputs (SPP and SPPF on the last feature
 * map): a work-item takes one output row. It takes the maximum of the
 * window's input rows column by column, in vectors of 8 (the last one
 * overlapping its neighbour: the maximum does not mind), into a private
 * line padded with T_LOWEST on both sides; each vector of 8 outputs is
 * then the maximum of k_w vector loads from that line. The same taps as
 * lens_max_pool, padding counting as T_LOWEST. NDRange 1 x row groups x
 * planes, an item taking rows oy, oy + row groups... */
__kernel void
lens_max_pool_rows (__global const T * x, __global T * y,
    POOL_GEOMETRY_ARGS)
{
  __global const T *plane = x + (long) get_global_id (2) * in_h * in_w;
  T line[POOL_ROWS_PAD + POOL_ROWS_MAX_W + POOL_ROWS_PAD];

  if ((int) get_global_id (2) * out_h >= rows)
    return;
  for (int c = 0; c < POOL_ROWS_PAD; c++) {
    line[c] = T_LOWEST;
    line[POOL_ROWS_PAD + in_w + c] = T_LOWEST;
  }
  for (int oy = get_global_id (1); oy < out_h; oy += get_global_size (1)) {
    const int row = get_global_id (2) * out_h + oy;
    const int y0 = oy * s_h - p_h;
    __global T *out = y + (long) row * out_w;
    int ky0, ky1;

    tap_range (y0, 1, k_h, in_h, &ky0, &ky1);
    for (int c = 0; c < in_w; c += 8) {
      const int c8 = min (c, in_w - 8);
      T8 best = (T8) (T_LOWEST);
      for (int ky = ky0; ky < ky1; ky++)
        best = VEC_MAX_OF (best, vload8 (0, plane + (y0 + ky) * in_w + c8));
      vstore8 (best, 0, line + POOL_ROWS_PAD + c8);
    }
    for (int o = 0; o < out_w; o += 8) {
      const int o8 = min (o, out_w - 8);
      const T *taps = line + POOL_ROWS_PAD - p_w + o8;
      T8 best = (T8) (T_LOWEST);
      for (int kx = 0; kx < k_w; kx++)
        best = VEC_MAX_OF (best, vload8 (0, taps + kx));
      vstore8 (best, 0, out + o8);
    }
  }
}

/* Indices as ONNX numbers them: flattened over (N, C, H, W), the plane
 * row major (storage_order 0) or column major (storage_order 1). */
__kernel void
lens_max_pool_with_indices (__global const T * x, __global T * y,
    __global long *indices, POOL_GEOMETRY_ARGS, int storage_order)
{
  int i = get_global_id (0);
  int row, oy, pos;
  long in_plane = (long) in_h * in_w, first;
  __global const T *plane;

  if (i >= rows * chunks)
    return;
  row = i / chunks;
  oy = row % out_h;
  first = (row / out_h) * in_plane;
  plane = x + first;
  for (int ox = i % chunks; ox < out_w; ox += chunks) {
    long o = (long) row * out_w + ox;
    y[o] = max_window (plane, oy, ox, in_h, in_w, k_h, k_w, s_h, s_w, p_h,
        p_w, d_h, d_w, &pos);
    if (pos < 0)
      indices[o] = -1;
    else if (storage_order == 1)
      indices[o] = first + (long) (pos % in_w) * in_h + pos / in_w;
    else
      indices[o] = first + pos;
  }
}

/* The average of one window: taps inside the input are summed; the
 * divisor counts the taps inside [lo, hi) per axis: the input alone (lo
 * 0, hi in) or, with count_include_pad, the input and its padding
 * (explicit or auto_pad). */
inline T
average_value (__global const T * plane, int oy, int ox, int in_h, int in_w,
    int k_h, int k_w, int s_h, int s_w, int p_h, int p_w, int d_h, int d_w,
    int lo_h, int lo_w, int hi_h, int hi_w)
{
  int y0 = oy * s_h - p_h, x0 = ox * s_w - p_w;
  int ky0, ky1, kx0, kx1, counted_rows = 0, counted_cols = 0;
  float sum = 0.0f;

  for (int ky = 0; ky < k_h; ky++) {
    int iy = y0 + ky * d_h;
    counted_rows += iy >= lo_h && iy < hi_h;
  }
  for (int kx = 0; kx < k_w; kx++) {
    int ix = x0 + kx * d_w;
    counted_cols += ix >= lo_w && ix < hi_w;
  }
  tap_range (y0, d_h, k_h, in_h, &ky0, &ky1);
  tap_range (x0, d_w, k_w, in_w, &kx0, &kx1);
  for (int ky = ky0; ky < ky1; ky++) {
    int line = (y0 + ky * d_h) * in_w + x0;
    for (int kx = kx0; kx < kx1; kx++)
      sum += (float) plane[line + kx * d_w];
  }
  return (T) (sum / (float) (counted_rows * counted_cols));
}

__kernel void
lens_average_pool (__global const T * x, __global T * y,
    POOL_GEOMETRY_ARGS, int lo_h, int lo_w, int hi_h, int hi_w)
{
  int i = get_global_id (0);
  int row, oy;
  __global const T *plane;

  if (i >= rows * chunks)
    return;
  row = i / chunks;
  oy = row % out_h;
  plane = x + (long) (row / out_h) * in_h * in_w;
  for (int ox = i % chunks; ox < out_w; ox += chunks)
    y[(long) row * out_w + ox] = average_value (plane, oy, ox, in_h, in_w,
        k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w, lo_h, lo_w, hi_h, hi_w);
}

/* AveragePool (float) with dilations 1 and a column stride of 1 or 2 on
 * rows of at least two spans, as lens_max_pool_vec (runs of spans of
 * POOL_VEC outputs, spans moved inside the row, where every column of the
 * window counts); each lane sums its taps in average_value's order.
 * NDRange chunks x row groups x planes (no index divisions), an item
 * taking rows oy, oy + row groups... */
__kernel void
lens_average_pool_vec (__global const T * x, __global T * y,
    POOL_GEOMETRY_ARGS, int lo_h, int lo_w, int hi_h, int hi_w)
{
  POOL_VEC_BEGIN;
  for (int oy = get_global_id (1); oy < out_h; oy += get_global_size (1)) {
    const int row = get_global_id (2) * out_h + oy;
    const int y0 = oy * s_h - p_h;
    __global T *out = y + (long) row * out_w;
    int ky0, ky1, counted_rows = 0;

    if (last_inside < first_inside) {
      for (int o = first; o < last; o++)
        out[o] = average_value (plane, oy, o, in_h, in_w, k_h, k_w, s_h, s_w,
            p_h, p_w, 1, 1, lo_h, lo_w, hi_h, hi_w);
      continue;
    }
    for (int o = first; o < min (first_inside, last); o++)
      out[o] = average_value (plane, oy, o, in_h, in_w, k_h, k_w, s_h, s_w,
          p_h, p_w, 1, 1, lo_h, lo_w, hi_h, hi_w);
    for (int o = max (last_inside + POOL_VEC, first); o < last; o++)
      out[o] = average_value (plane, oy, o, in_h, in_w, k_h, k_w, s_h, s_w,
          p_h, p_w, 1, 1, lo_h, lo_w, hi_h, hi_w);
    for (int ky = 0; ky < k_h; ky++)
      counted_rows += y0 + ky >= lo_h && y0 + ky < hi_h;
    tap_range (y0, 1, k_h, in_h, &ky0, &ky1);
    for (int ox0 = first; ox0 < last; ox0 += POOL_VEC) {
      const int start = clamp (ox0, first_inside, last_inside);
      float8 sum = (float8) (0.0f);

      for (int ky = ky0; ky < ky1; ky++) {
        __global const T *line = plane + (y0 + ky) * in_w + start * s_w - p_w;
        if (s_w == 1) {
          for (int kx = 0; kx < k_w; kx++)
            sum += convert_float8 (vload8 (0, line + kx));
        } else {
          for (int kx = 0; kx < k_w; kx += 2) {
            if (kx + 1 < k_w) {
              T16 pair = vload16 (0, line + kx);
              sum += convert_float8 (pair.even);
              sum += convert_float8 (pair.odd);
            } else if (kx > 0) {
              sum += convert_float8 (vload16 (0, line + kx - 1).odd);
            } else {
              sum += convert_float8 (vload16 (0, line).even);
            }
          }
        }
      }
      vstore8 (CONVERT_T8 (sum / (float) (counted_rows * k_w)), 0,
          out + start);
    }
  }
}

/* One work group (a power of two, at most POOL_MAX_GROUP) per plane:
 * strided partial sums, then a tree in local memory. */
__kernel void
lens_global_average_pool (__global const T * x, __global T * y, int planes,
    int plane_size)
{
  __local float partial[POOL_MAX_GROUP];
  int plane = get_group_id (0);
  int lid = get_local_id (0), group = get_local_size (0);
  float sum = 0.0f;

  if (plane < planes) {
    __global const T *p = x + (long) plane * plane_size;
    for (int k = lid; k < plane_size; k += group)
      sum += (float) p[k];
  }
  partial[lid] = sum;
  barrier (CLK_LOCAL_MEM_FENCE);
  for (int half_group = group / 2; half_group > 0; half_group /= 2) {
    if (lid < half_group)
      partial[lid] += partial[lid + half_group];
    barrier (CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0 && plane < planes)
    y[plane] = (T) (partial[0] / (float) plane_size);
}
