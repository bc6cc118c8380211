/* conv.cl: Conv (float32, 1-D and 2-D, grouped, with an optional fused
 * activation) and ConvInteger (8-bit inputs, int32 results).
 *
 * A 1-D convolution arrives as a 2-D one of height 1 (and so does a 1x1
 * stride-1 unpadded 2-D one, its plane flattened into one row). Tensors
 * are NCHW, weights [M, C / group, kh, kw], all contiguous.
 *
 * Both ops run as a direct convolution in three steps (two for a flat
 * 1x1, whose kernels lens_conv2d_1x1 and lens_conv2d_1x1_integer read x
 * itself, and for the staged and stem kernels of CPU devices, see
 * lens_conv2d_staged and lens_conv2d_stem):
 *
 * lens_conv_pack_input copies x into a float scratch buffer with the
 * padding written out as zeros and every row long enough for whole
 * pixel tiles, so the main kernel reads without bounds checks; for a
 * column stride of 2 it writes each row's even columns, then its odd
 * ones. For ConvInteger it also converts the bytes and subtracts
 * x_zero_point (padding reads as the zero point, hence 0).
 *
 * lens_conv_pack_weights lays the weights out as [group x channel tile]
 * [in channel][ky][kx][CONV_TM] floats (ConvInteger: w - w_zero_point),
 * zero for the channels past the end of a partial tile: the CONV_TM
 * weights of one kernel tap are contiguous. Weights are constant in a
 * model, so the host packs them once.
 *
 * lens_conv2d_packed / lens_conv2d_packed_integer give each work-item
 * CONV_TP neighbouring output pixels of one row (one float vector, loaded
 * whole for strides 1 and 2, lane by lane for others) times
 * CONV_TM output channels: every input vector feeds CONV_TM fused
 * multiply-adds and every weight CONV_TP lanes. The vectors are explicit,
 * so a CPU device (PoCL) runs one work-item per work-group and gets SIMD
 * code without relying on its work-group vectorizer (on AVX-512: 16
 * channels, and 16-lane vectors except on rows of 8 or fewer pixels; see
 * CONV_TILE_* in cl/ops/conv.c).
 *
 * ConvInteger in float is exact: |x - x_zp| and |w - w_zp| are at most 255,
 * so a product is at most 65025 and a sum of 256 of them stays below 2^24,
 * where every float sum of integers is exact whatever the order. The
 * kernel adds the float partial sums into int32 accumulators every
 * rows_per_chunk kernel rows (at most 256 products per lane).
 *
 * A ConvInteger the graph rewrite fused with its dequantization epilogue
 * (Cast to float, Mul by the scalar scale, Add of a per-channel bias, an
 * activation; -DCONV_INT_FUSED=1) stores floats instead, computed with the
 * same roundings as those separate ops: see conv_int_epilogue.
 *
 * lens_conv2d_depthwise handles one input channel per group (depthwise
 * convolution, small channel multiplier), where a channel tile would
 * waste work and packing would cost as much as the convolution: each
 * work-item computes output rows of one channel, CONV_TP pixels (one
 * vector) at a time, from private copies of the input rows it reads,
 * zero-padded and split by column phase for strides, so that every tap
 * is a whole vector load at a constant offset, borders included. Its
 * kernel size, strides and dilations are build options (DW_*): one
 * program per shape, fully unrolled taps, weights in registers. A program
 * built with DW_KH holds only that kernel, one without it all the others,
 * so that each depthwise shape costs a small build.
 *
 * Build options: -DCONV_TM (output channels per work-item), -DCONV_TP (8
 * or 16: pixels per vector), -DACT (fused activation, see common.cl),
 * -DCONV_INT_FUSED (ConvInteger with its float epilogue), -DCONV_STAGE
 * (input channels the flat 1x1 kernels stage at once), -DCONV_PV (pixel
 * vectors per tile of the flat 1x1 kernels),
 * -DCONV_STAGE_FLOATS (the staged kernels' window), -DCONV_PREFETCH
 * (software prefetch in the packed kernels), -DDW_* (the
 * depthwise kernel's shape, see below), -DSTEM_KH and -DSTEM_KW (the
 * stem kernel's, which only their programs hold). */

#ifndef CONV_TM
#define CONV_TM 8
#endif
#ifndef CONV_TP
#define CONV_TP 16
#endif
#ifndef CONV_PV
#define CONV_PV 1
#endif
#ifndef CONV_PR
#define CONV_PR 1
#endif
#ifndef CONV_INT_FUSED
#define CONV_INT_FUSED 0
#endif
#ifndef CONV_STAGE
#define CONV_STAGE 256
#endif
#ifndef CONV_PREFETCH
#define CONV_PREFETCH 0
#endif

/* The geometry every convolution kernel takes after its buffers, in this
 * order (all int, see LensConvParams in cl/ref/conv.h). */
#define CONV_GEOMETRY_ARGS \
    int in_c, int in_h, int in_w, int out_c, int out_h, int out_w, \
    int k_h, int k_w, int stride_h, int stride_w, int dil_h, int dil_w, \
    int pad_top, int pad_left, int in_per_group, int out_per_group

#define CONV_PASTE2(a, b) a##b
#define CONV_PASTE(a, b) CONV_PASTE2 (a, b)
#define CONV_VEC(type) CONV_PASTE (type, CONV_TP)
#define conv_floatp CONV_VEC (float)
#define conv_intp CONV_VEC (int)
#define conv_vloadp CONV_VEC (vload)
#define conv_vstorep CONV_VEC (vstore)
#define conv_convert_intp CONV_VEC (convert_int)
#define conv_convert_floatp CONV_VEC (convert_float)

/* -DCONV_UNALIGNED_VECTORS=1 (CPU devices, whose compiler is clang):
 * whole tiles move through vector types aligned to their elements, one
 * instruction each, where PoCL's vload16/vstore16 become four 128-bit
 * pieces (and vstore16 to a row buffer, then the loads of it, pay for
 * the mismatch). Elsewhere vloadn/vstoren, as OpenCL C defines them. */
#ifndef CONV_UNALIGNED_VECTORS
#define CONV_UNALIGNED_VECTORS 0
#endif
#if CONV_UNALIGNED_VECTORS
typedef float conv_ufloatp
    __attribute__ ((ext_vector_type (CONV_TP), aligned (sizeof (float))));
#define conv_load_private(p) (*(const conv_ufloatp *) (p))
#define conv_store_private(v, p) (*(conv_ufloatp *) (p) = (v))
/* any vector type (float, int or byte tiles) */
#define conv_store_global(type, v, p) \
  do { \
    typedef CONV_VEC (type) conv_utile_ \
        __attribute__ ((aligned (sizeof (type)))); \
    *(__global conv_utile_ *) (p) = (v); \
  } while (0)
#define conv_load_global(p) (*(__global const conv_ufloatp *) (p))
#else
#define conv_load_private(p) conv_vloadp (0, p)
#define conv_store_private(v, p) conv_vstorep (v, 0, p)
#define conv_store_global(type, v, p) conv_vstorep (v, 0, p)
#define conv_load_global(p) conv_vloadp (0, p)
#endif

/* Stores the tile vector @v (elements of @type) at @dst: whole where
 * @count, the columns left in the row, covers it, else its first @count
 * lanes one by one (the row ends inside the tile). */
#define CONV_STORE_TILE(type, v, dst, count) \
  do { \
    if ((count) >= CONV_TP) { \
      conv_store_global (type, v, dst); \
    } else { \
      type lanes_[CONV_TP]; \
      conv_vstorep (v, 0, lanes_); \
      for (int p_ = 0; p_ < (count); p_++) \
        (dst)[p_] = lanes_[p_]; \
    } \
  } while (0)
#if CONV_TP == 16
#define CONV_LANES (int16) (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, \
    14, 15)
#define CONV_EVEN (uint16) (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, \
    26, 28, 30)
#elif CONV_TP == 8
#define CONV_LANES (int8) (0, 1, 2, 3, 4, 5, 6, 7)
#define CONV_EVEN (uint8) (0, 2, 4, 6, 8, 10, 12, 14)
#else
#error "CONV_TP must be 8 or 16"
#endif

/* The even and the odd lanes of the pair of tiles (@a, @b) */
#if CONV_UNALIGNED_VECTORS && CONV_TP == 16
#define conv_even_lanes(a, b) LENS_EVEN_LANES_32 (a, b)
#define conv_odd_lanes(a, b) LENS_ODD_LANES_32 (a, b)
#elif CONV_UNALIGNED_VECTORS
#define conv_even_lanes(a, b) __builtin_shufflevector (a, b, 0, 2, 4, 6, \
    8, 10, 12, 14)
#define conv_odd_lanes(a, b) __builtin_shufflevector (a, b, 1, 3, 5, 7, \
    9, 11, 13, 15)
#else
#define conv_even_lanes(a, b) shuffle2 (a, b, CONV_EVEN)
#define conv_odd_lanes(a, b) shuffle2 (a, b, CONV_EVEN + 1)
#endif

/* The tile at @p: whole where @count covers it, else its first @count
 * lanes one by one (the rest 0, all of them for a count of 0 or less):
 * the row may end the buffer. */
inline conv_floatp
conv_load_tile (__global const float *p, int count)
{
  float lanes[CONV_TP];

  if (count >= CONV_TP)
    return conv_load_global (p);
  for (int i = 0; i < CONV_TP; i++)
    lanes[i] = i < count ? p[i] : 0.0f;
  return conv_vloadp (0, lanes);
}

/* An 8-bit element as int: @sign is 0x80 for int8 (sign extension by
 * flipping and subtracting the top bit) and 0 for uint8. */
inline int
conv_int8_value (uchar bits, int sign)
{
  return ((int) bits ^ sign) - sign;
}

/* The packing, packed and 1x1 kernels: the program without DW_KH (see
 * the depthwise kernel below, whose programs have it and only it). */
#ifndef DW_KH

/* Columns per work-item of lens_conv_pack_input (one float16). */
#define CONV_PACK_SPAN 16
#define CONV_PACK_EVEN (uint16) (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, \
    24, 26, 28, 30)

/* CONV_PACK_SPAN elements of x from column @first of @line, @step (1 or 2)
 * apart, as floats (ConvInteger: the bytes converted with @x_sign, minus
 * @zp); the caller checked that the loads stay inside the row. */
inline float16
conv_pack_load (__global const void *x_, size_t line, int first, int step,
    int is_int, int x_sign, float zp)
{
  float16 a, b;

  if (is_int) {
    __global const uchar *x = (__global const uchar *) x_ + line + first;
    a = convert_float16 ((convert_int16 (vload16 (0, x)) ^ x_sign) - x_sign)
        - zp;
    if (step == 1)
      return a;
    b = convert_float16 ((convert_int16 (vload16 (1, x)) ^ x_sign) - x_sign)
        - zp;
  } else {
    __global const float *x = (__global const float *) x_ + line + first;
    a = vload16 (0, x);
    if (step == 1)
      return a;
    b = vload16 (1, x);
  }
  return shuffle2 (a, b, CONV_PACK_EVEN);
}

/* xp[n][c][row][col] (rows of w_p floats, h_p rows per plane) =
 * x[n][c][row - pad_top][c_x - pad_left], 0 outside x, where c_x = col;
 * or, for a column stride of 2 (@split), the even padded columns first
 * and the odd ones after them (c_x = 2 col, then 2 (col - w_p / 2) + 1),
 * so that a tap's pixels of a tile are contiguous. For ConvInteger
 * (is_int), x holds bytes converted with x_sign, minus the zero point
 * (x_zero_point[0] when has_x_zp). A work-item writes CONV_PACK_SPAN
 * columns of a row at a time, every get_global_size (0)-th span of it,
 * with whole-vector loads where they lie inside x (one element at a time
 * at the borders and across the phase boundary). NDRange (spans or fewer,
 * h_p, batch x in_c). */
__kernel void
lens_conv_pack_input (__global const void *x_, __global const uchar *x_zp,
    __global float *xp, int is_int, int x_sign, int has_x_zp, int planes,
    int in_h, int in_w, int h_p, int w_p, int pad_top, int pad_left,
    int split)
{
  const int row = get_global_id (1);
  const int plane = get_global_id (2);

  if (row >= h_p || plane >= planes)
    return;

  const int phase_len = w_p >> 1;
  const int iy = row - pad_top;
  const float zp = is_int && has_x_zp ? conv_int8_value (x_zp[0], x_sign) :
      0;
  __global float *out_row = xp + ((size_t) plane * h_p + row) * w_p;
  const size_t line = ((size_t) plane * in_h + iy) * in_w;

  for (int col0 = get_global_id (0) * CONV_PACK_SPAN; col0 < w_p;
      col0 += get_global_size (0) * CONV_PACK_SPAN) {
    __global float *out = out_row + col0;
    float16 v = 0.0f;

    if (iy >= 0 && iy < in_h) {
      /* x column of lane 0 and the step between lanes, where one applies */
      int first = col0 - pad_left, step = 1;

      if (split) {
        step = 2;
        if (col0 + CONV_PACK_SPAN <= phase_len)
          first = 2 * col0 - pad_left;
        else if (col0 >= phase_len)
          first = 2 * (col0 - phase_len) + 1 - pad_left;
        else
          step = 0;             /* straddles the phases */
      }
      if (step != 0 && first >= 0 && first + step * CONV_PACK_SPAN <= in_w) {
        v = conv_pack_load (x_, line, first, step, is_int, x_sign, zp);
      } else {
        float lanes[CONV_PACK_SPAN];
        for (int i = 0; i < CONV_PACK_SPAN; i++) {
          const int c = col0 + i;
          const int ix = (!split ? c : c < phase_len ? 2 * c :
              2 * (c - phase_len) + 1) - pad_left;
          float e = 0.0f;
          if (ix >= 0 && ix < in_w)
            e = is_int ? (float) (conv_int8_value (((__global const uchar *)
                        x_)[line + ix], x_sign)) - zp :
                ((__global const float *) x_)[line + ix];
          lanes[i] = e;
        }
        v = vload16 (0, lanes);
      }
    }
    if (col0 + CONV_PACK_SPAN <= w_p) {
      vstore16 (v, 0, out);
    } else {
      float lanes[CONV_PACK_SPAN];
      vstore16 (v, 0, lanes);
      for (int i = 0; i < w_p - col0; i++)
        out[i] = lanes[i];
    }
  }
}

/* wp[gt][k][m] = w[oc][k] (minus its zero point for ConvInteger) for the
 * k_size = in_per_group * kh * kw taps of output channel
 * oc = g * out_per_group + mt * CONV_TM + m, where gt = g * oc_tiles + mt;
 * 0 past the end of the group. w_zp_count is 0 (no zero point), 1 or
 * out_c. NDRange (CONV_TM, k_size, groups x oc_tiles). */
__kernel void
lens_conv_pack_weights (__global const void *w_, __global const uchar *w_zp,
    __global float *wp, int is_int, int w_sign, int w_zp_count, int k_size,
    int out_per_group, int oc_tiles, int tiles)
{
  const int m = get_global_id (0);
  const int k = get_global_id (1);
  const int gt = get_global_id (2);

  if (m >= CONV_TM || k >= k_size || gt >= tiles)
    return;

  const int g = gt / oc_tiles;
  const int mg = (gt - g * oc_tiles) * CONV_TM + m;
  const int oc = g * out_per_group + mg;
  const size_t src = (size_t) oc * k_size + k;
  float v = 0.0f;

  if (mg < out_per_group) {
    if (is_int) {
      const int zp = w_zp_count == 0 ? 0 :
          conv_int8_value (w_zp[w_zp_count == 1 ? 0 : oc], w_sign);
      v = (float) (conv_int8_value (((__global const uchar *) w_)[src],
              w_sign) - zp);
    } else {
      v = ((__global const float *) w_)[src];
    }
  }
  wp[((size_t) gt * k_size + k) * CONV_TM + m] = v;
}

/* The CONV_TP pixels of a tile for the tap at column offset @c from row
 * @xr of the packed input: contiguous for strides 1 and 2 (split by
 * column phase, see lens_conv_pack_input), every @stride-th otherwise
 * (the packed input has room for whole tiles: no bounds checks). Always
 * inlined: called once per tap, it would otherwise cost a call each. */
__attribute__ ((always_inline)) inline conv_floatp
conv_load_pixels (__global const float *xr, int c, int stride, int w_p)
{
  if (stride == 1)
    return conv_load_global (xr + c);
  if (stride == 2)
    return conv_load_global (xr + (c & 1) * (w_p >> 1) + (c >> 1));

  __global const float *p = xr + c;

  float v[CONV_TP];
#pragma unroll
  for (int i = 0; i < CONV_TP; i++)
    v[i] = p[i * stride];
  return conv_vloadp (0, v);
}

#endif /* !DW_KH */

/* lens_logistic and lens_activate (common.cl) on a tile vector: called
 * per lane, the scalar functions would leave the epilogue of a vectorized
 * work-item scalar. */
LENS_DEFINE_LOGISTIC (conv_logistic, conv_floatp)

inline conv_floatp
conv_activate (conv_floatp x, float alpha, float beta)
{
  return LENS_ACTIVATION (x, alpha, beta, conv_logistic);
}

/* What the ConvInteger kernels store: int32 totals, or with
 * CONV_INT_FUSED the floats of conv_int_epilogue (s: scale[0], times
 * scale2[0] with CONV_INT_SCALES, as the Mul folded into it rounds; read
 * once per work-item by CONV_INT_SCALE). */
#if CONV_INT_FUSED
#define CONV_INT_OUT float
#define CONV_INT_OUTP conv_floatp
#if CONV_INT_SCALES
#define CONV_INT_SCALE const float s = scale[0] * scale2[0]
#else
#define CONV_INT_SCALE const float s = scale[0]
#endif
#define CONV_INT_RESULT(sum, m) \
  conv_int_epilogue (sum, s, has_bias ? bias[oc0 + (m)] : 0.0f, has_bias)
#else
#define CONV_INT_OUT int
#define CONV_INT_OUTP conv_intp
#define CONV_INT_SCALE
#define CONV_INT_RESULT(sum, m) (sum)
#endif

/* -DCONV_INT_RANGE (with CONV_INT_FUSED): the kernels also fold every
 * float they store into range[0] (the minimum) and range[1] (the maximum)
 * as order-preserving int keys (lens_range_flip): the range a
 * DynamicQuantizeLinear of the output needs, found without a pass of its
 * own over the output (see cl/model.c). fmin and fmax skip NaN, as its
 * reduction does. The kernels take range as their last argument
 * (CONV_RANGE_ARG). CONV_RANGE_BEGIN opens the range of a channel tile
 * (of a work-item in the depthwise kernel), CONV_RANGE_TAKE adds a stored
 * vector, CONV_RANGE_END merges it into range: in the channel-tile kernels two
 * vectors live for a tile only (held through the whole work-item they
 * cost the staged kernels spills, 0.5 ms on YOLO11n); the depthwise
 * kernel, with registers to spare and short rows, merges once. */
#ifndef CONV_INT_RANGE
#define CONV_INT_RANGE 0
#endif
#if CONV_INT_RANGE && !CONV_INT_FUSED
#error "CONV_INT_RANGE needs CONV_INT_FUSED"
#endif
#if CONV_INT_RANGE
#define CONV_RANGE_ARG , __global int *range
/* (no comma: it reaches the loops' macros as part of their arguments) */
#define CONV_RANGE_BEGIN \
  conv_floatp range_lo = INFINITY; \
  conv_floatp range_hi = -INFINITY
/* a compare and a blend per bound, where fmin and fmax take three
 * instructions each on x86 (their NaN rule); a NaN lane compares false
 * and is skipped all the same */
#define CONV_RANGE_TAKE(v, count) \
  do { \
    const conv_floatp v_ = (v); \
    if ((count) >= CONV_TP) { \
      range_lo = select (range_lo, v_, v_ < range_lo); \
      range_hi = select (range_hi, v_, v_ > range_hi); \
    } else { \
      const conv_intp in_ = CONV_LANES < (count); \
      range_lo = select (range_lo, v_, in_ & (v_ < range_lo)); \
      range_hi = select (range_hi, v_, in_ & (v_ > range_hi)); \
    } \
  } while (0)
#define CONV_RANGE_END conv_range_merge (range, range_lo, range_hi)
#define CONV_RANGE_PASS , range

/* The minimum and maximum lane of @v, halving the vector (a loop over the
 * lanes would be one long chain). */
#if CONV_TP == 16
#define CONV_RANGE_REDUCE(v, op, out) \
  do { \
    const float8 h8_ = op ((v).lo, (v).hi); \
    const float4 h4_ = op (h8_.lo, h8_.hi); \
    const float2 h2_ = op (h4_.lo, h4_.hi); \
    out = op (h2_.lo, h2_.hi); \
  } while (0)
#else
#define CONV_RANGE_REDUCE(v, op, out) \
  do { \
    const float4 h4_ = op ((v).lo, (v).hi); \
    const float2 h2_ = op (h4_.lo, h4_.hi); \
    out = op (h2_.lo, h2_.hi); \
  } while (0)
#endif

inline void
conv_range_merge (__global int *range, conv_floatp lo, conv_floatp hi)
{
  volatile __global int *seen = range;
  float a, b;
  int key_a, key_b;

  CONV_RANGE_REDUCE (lo, fmin, a);
  CONV_RANGE_REDUCE (hi, fmax, b);
  /* an atomic on the line the other cores update costs a transfer of it
   * (3200 per launch took 60 us on a 160x160 layer): most tiles find the
   * range already wider than theirs by a plain read (a stale value is
   * only ever narrower, so it never hides a needed update) */
  key_a = lens_range_flip (as_int (a));
  key_b = lens_range_flip (as_int (b));
  if (key_a < seen[0])
    atomic_min (range, key_a);
  if (key_b > seen[1])
    atomic_max (range + 1, key_b);
}
#else
#define CONV_RANGE_ARG
#define CONV_RANGE_PASS
#define CONV_RANGE_BEGIN (void) 0
#define CONV_RANGE_TAKE(v, count) (void) 0
#define CONV_RANGE_END (void) 0
#endif

/* -DCONV_INT_RESIDUAL (with CONV_INT_FUSED; not the depthwise kernel): a
 * residual Add after the epilogue, y = epilogue + residual, residual of
 * y's shape (YOLO's bottlenecks: the Add and its launch fused away, one
 * rounding as the Add's). The kernels take it after range
 * (CONV_RESIDUAL_ARG). CONV_RESIDUAL_ADD (v, at, count) adds the tile at
 * element @at, of which @count lanes lie inside the row. */
#ifndef CONV_INT_RESIDUAL
#define CONV_INT_RESIDUAL 0
#endif
#if CONV_INT_RESIDUAL && !CONV_INT_FUSED
#error "CONV_INT_RESIDUAL needs CONV_INT_FUSED"
#endif
#if CONV_INT_RESIDUAL
#define CONV_RESIDUAL_ARG , __global const float *residual
#define CONV_RESIDUAL_PASS , residual
#define CONV_RESIDUAL_ADD(v, at, count) \
  ((v) + conv_load_tile (residual + (at), (count)))

#else
#define CONV_RESIDUAL_ARG
#define CONV_RESIDUAL_PASS
#define CONV_RESIDUAL_ADD(v, at, count) (v)
#endif

/* The buffers and flags the ConvInteger kernels that read x themselves
 * (flat 1x1, staged, depthwise) take first, in the order set_integer_args
 * in cl/ops/conv.c sets them: the bytes of x (@x_name) with their zero
 * point and sign, the packed weights, y, and the epilogue's scales and
 * bias. */
#define CONV_INTEGER_ARGS(x_name) \
    __global const uchar *x_name, __global const uchar *x_zp, int x_sign, \
    int has_x_zp, __global const float *wp, __global CONV_INT_OUT *y, \
    __global const float *scale, __global const float *scale2, \
    __global const float *bias, int has_bias

/* The fused epilogue of ConvInteger, exactly what the ops it replaced
 * compute: Cast (int32 to float, rounded to nearest even), Mul by @scale,
 * Add of @bias (when @has_bias), the activation, each rounded on its own:
 * no contraction into a fused multiply-add, which would round once. */
inline conv_floatp
conv_int_epilogue (conv_intp total, float scale, float bias, int has_bias)
{
#pragma OPENCL FP_CONTRACT OFF
  conv_floatp v = conv_convert_floatp (total) * scale;

  if (has_bias)
    v = v + bias;
  /* as lens_activate (SiLU: x * lens_logistic (x), Sigmoid then Mul) */
  return conv_activate (v, 0.0f, 0.0f);
}

#ifndef DW_KH

/* The geometry of the packed kernels (all int): the packed input's rows
 * and columns, then the convolution's and its tile counts. */
#define CONV_PACKED_ARGS \
    int in_c, int h_p, int w_p, int out_c, int out_h, int out_w, \
    int k_h, int k_w, int stride_h, int stride_w, int dil_h, int dil_w, \
    int in_per_group, int out_per_group, int oc_tiles, int ow_tiles

/* The same geometry passed on to a function */
#define CONV_PACKED_PASS \
    in_c, h_p, w_p, out_c, out_h, out_w, k_h, k_w, stride_h, stride_w, \
    dil_h, dil_w, in_per_group, out_per_group, oc_tiles, ow_tiles

/* The common head of the packed kernels: which pixel tile and channel
 * tile this work-item computes, where its input window (xg, elements of
 * @type) and packed weights (wt) start; zeroed accumulators acc. */
#define CONV_PACKED_BEGIN(type) \
  CONV_PACKED_BEGIN_AT (type, float, conv_floatp, 0.0f, get_global_id (0), \
      get_global_id (1), get_global_id (2))
/* ... with weights of @wtype and accumulators of @acc_type, zeroed as
 * @zero, for the work-item at (@TILE, @GT, @N) (the VNNI kernel's
 * integers, in a function of its own) */
#define CONV_PACKED_BEGIN_AT(type, wtype, acc_type, zero, TILE, GT, N) \
  const int tile = (TILE); \
  const int gt = (GT); \
  const int n = (N); \
  const int groups = out_c / out_per_group; \
  if (tile >= out_h * ow_tiles || gt >= groups * oc_tiles) \
    return; \
  const int oy = tile / ow_tiles; \
  const int ox0 = (tile - oy * ow_tiles) * CONV_TP; \
  const int g = gt / oc_tiles; \
  const int m0 = (gt - g * oc_tiles) * CONV_TM; \
  const int oc0 = g * out_per_group + m0; \
  const int m_count = min (CONV_TM, out_per_group - m0); \
  const size_t plane_p = (size_t) h_p * w_p; \
  __global const type *xg = xp + \
      ((size_t) n * in_c + (size_t) g * in_per_group) * plane_p + \
      (size_t) oy * stride_h * w_p + \
      (size_t) ox0 * (stride_w == 2 ? 1 : stride_w); \
  __global const wtype *wt = wp + \
      (size_t) gt * in_per_group * k_h * k_w * CONV_TM; \
  acc_type acc[CONV_TM]; \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) \
    acc[m] = (zero)

/* One tap of every kernel: the pixel vector @xv times the tap's CONV_TM
 * weights at wt into acc, then wt past them. */
#define CONV_TAP(xv) \
  { \
    const conv_floatp xv_ = (xv); \
    _Pragma ("unroll") \
    for (int m = 0; m < CONV_TM; m++) \
      acc[m] = fma (xv_, (conv_floatp) (wt[m]), acc[m]); \
    wt += CONV_TM; \
  }

/* One kernel row (k_w taps) of input channel plane @xc into acc; @wt
 * advances past its weights. */
#define CONV_PACKED_ROW(xc, ky) \
  { \
    __global const float *xr = (xc) + (size_t) (ky) * dil_h * w_p; \
    for (int kx = 0; kx < k_w; kx++) \
      CONV_TAP (conv_load_pixels (xr, kx * dil_w, stride_w, w_p)); \
  }

/* Asks for the next input channel's rows of the tile (two lines per
 * kernel row, per phase for stride 2) while this one's are computed:
 * consecutive channels lie a plane apart, a stride the hardware
 * prefetcher does not follow (PoCL, AVX-512: the 3x3 stride-2 layers of
 * YOLO11n 10-20 % faster, all its ConvIntegers 7 %). -DCONV_PREFETCH=1 on
 * CPU devices, whose compiler (clang) has __builtin_prefetch. */
#if CONV_PREFETCH
#define CONV_PREFETCH_NEXT(xn) \
  if (ic + 1 < in_per_group) { \
    for (int ky = 0; ky < k_h; ky++) { \
      __global const float *pr = (xn) + (size_t) ky * dil_h * w_p; \
      __builtin_prefetch (pr); \
      __builtin_prefetch (pr + 16); \
      if (stride_w == 2) { \
        __builtin_prefetch (pr + (w_p >> 1)); \
        __builtin_prefetch (pr + (w_p >> 1) + 16); \
      } \
    } \
  }
/* Asks for the element @ahead elements past @p: the line a work-item's
 * neighbour (the next pixel tile, which the same CPU thread runs next)
 * will stage, one per input channel a plane apart, more streams than
 * the hardware prefetcher follows. */
#define CONV_PREFETCH_AHEAD(p, ahead) __builtin_prefetch ((p) + (ahead))
#else
#define CONV_PREFETCH_NEXT(xn)
#define CONV_PREFETCH_AHEAD(p, ahead)
#endif

/* The common tail of the float packed kernels: bias, activation and the
 * store of the acc tile (a partial last tile element by element). */
#define CONV_PACKED_STORE \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) { \
    if (m < m_count) { \
      const int oc = oc0 + m; \
      const float b = has_bias ? bias[oc] : 0.0f; \
      __global float *yrow = y + \
          (((size_t) n * out_c + oc) * out_h + oy) * out_w + ox0; \
      const conv_floatp v = conv_activate (acc[m] + b, act_alpha, \
          act_beta); \
      CONV_STORE_TILE (float, v, yrow, out_w - ox0); \
    } \
  }

__kernel void
lens_conv2d_packed (__global const float *xp, __global const float *wp,
    __global const float *bias, __global float *y, int has_bias,
    CONV_PACKED_ARGS, float act_alpha, float act_beta)
{
  CONV_PACKED_BEGIN (float);

  for (int ic = 0; ic < in_per_group; ic++) {
    __global const float *xc = xg + ic * plane_p;
    CONV_PREFETCH_NEXT (xc + plane_p);
    for (int ky = 0; ky < k_h; ky++)
      CONV_PACKED_ROW (xc, ky);
  }

  CONV_PACKED_STORE;
}

/* lens_conv2d_stem: a float convolution over a few input channels at
 * column stride 2 with no dilation (a detector's first layer on the RGB
 * image: 3x3 with pad 1, YOLOv5's 6x6 with pad 2), straight from x. The
 * packed path spent more on packing x than on the convolution (yunet's
 * 3 -> 16 stem: 122 us packing, 196 us computing), and the staged
 * kernels stage too much for the few products of a channel.
 *
 * A work-item computes CONV_TP output pixels of one row times CONV_TM
 * channels. For each input channel and kernel row it loads the input
 * columns its taps read as vector pairs at 2s and 2s + CONV_TP from the
 * window's first column: their even lanes are the tile's pixels for tap
 * 2s, their odd lanes those for tap 2s + 1. A window inside the row loads
 * straight from x; one crossing an end (the first and last tiles of a
 * row) is copied into a zero-padded private row first. Rows of padding
 * are skipped. The kernel's width and height are build options
 * (-DSTEM_KW, -DSTEM_KH) so that the taps unroll. A work-item takes a
 * whole output row, tile after tile (a work-item per tile measured the
 * same, with ten times the work-groups). The multiply-adds set the pace:
 * on yunet's stem the loop is 48 of them, 3 loads and 3 permutes per
 * kernel row. NDRange (out_h, oc_tiles, batch); the weights are packed
 * as for lens_conv2d_packed. */
#ifdef STEM_KW

/* vector pairs per kernel row, and the columns they span */
#define STEM_PAIRS ((STEM_KW + 1) / 2)
#define STEM_WINDOW (2 * CONV_TP + 2 * (STEM_PAIRS - 1))

/* The taps of one kernel row from the window at @row (x or the private
 * copy, loaded with @LOAD) into acc; wt advances past them. */
#define CONV_STEM_ROW(row, LOAD) \
  _Pragma ("unroll") \
  for (int s = 0; s < STEM_PAIRS; s++) { \
    const conv_floatp a_ = LOAD ((row) + 2 * s); \
    const conv_floatp b_ = LOAD ((row) + 2 * s + CONV_TP); \
    CONV_TAP (conv_even_lanes (a_, b_)); \
    if (2 * s + 1 < STEM_KW) \
      CONV_TAP (conv_odd_lanes (a_, b_)); \
  }

__kernel void
lens_conv2d_stem (__global const float *x, __global const float *wp,
    __global const float *bias, __global float *y, int has_bias,
    CONV_GEOMETRY_ARGS, int oc_tiles, int ow_tiles, float act_alpha,
    float act_beta)
{
  const int oy = get_global_id (0);
  const int mt = get_global_id (1);
  const int n = get_global_id (2);
  if (oy >= out_h || mt >= oc_tiles)
    return;
  const int m0 = mt * CONV_TM;
  const int oc0 = m0;
  const int m_count = min (CONV_TM, out_c - m0);
  __global const float *wg = wp + (size_t) mt * in_c * STEM_KH * STEM_KW *
      CONV_TM;
  float window[STEM_WINDOW];

  for (int ox0 = 0; ox0 < out_w; ox0 += CONV_TP) {
    /* the window's first column, and whether the window lies in the row */
    const int first = ox0 * 2 - pad_left;
    const bool inside = first >= 0 && first + STEM_WINDOW <= in_w;
    __global const float *wt = wg;
    conv_floatp acc[CONV_TM];

    _Pragma ("unroll")
    for (int m = 0; m < CONV_TM; m++)
      acc[m] = 0.0f;
    for (int ic = 0; ic < in_c; ic++) {
      __global const float *xc = x + ((size_t) n * in_c + ic) * in_h * in_w;
      _Pragma ("unroll")
      for (int ky = 0; ky < STEM_KH; ky++) {
        const int iy = oy * stride_h - pad_top + ky;
        if (iy < 0 || iy >= in_h) {
          wt += STEM_KW * CONV_TM;
          continue;
        }
        __global const float *xrow = xc + (size_t) iy * in_w;
        if (inside) {
          CONV_STEM_ROW (xrow + first, conv_load_global);
        } else {
          for (int i = 0; i < STEM_WINDOW; i++) {
            const int c = first + i;
            window[i] = c >= 0 && c < in_w ? xrow[c] : 0.0f;
          }
          CONV_STEM_ROW (window, conv_load_private);
        }
      }
    }

    CONV_PACKED_STORE;
  }
}

#endif /* STEM_KW */

/* The flat 1x1 kernels (lens_conv2d_1x1, lens_conv2d_1x1_integer): a 1x1,
 * stride-1, unpadded convolution straight from x, in the packed geometry
 * with h_p = 1 and w_p = out_w = in_h * in_w (the flattened plane), so no
 * packing pass. Unlike the packed input, x has no room past the plane: a
 * partial last tile masks its lanes.
 *
 * A work-item first stages its pixel tile of up to CONV_STAGE input
 * channels in private memory (ConvInteger: converted once), then computes
 * @tiles_per_item channel tiles from it. The tile's 64-byte lines lie a
 * plane apart, one per channel: read once per channel tile from global
 * memory, they cost twice the time on a CPU (yunet's 64 -> 64 channels at
 * 80x80: 0.55 -> 0.27 ms). With more input channels than CONV_STAGE each
 * tile stages them chunk by chunk again (the host then gives one tile per
 * work-item; a GPU also gets one, with a small CONV_STAGE).
 *
 * A pixel tile is CONV_PV vectors (-DCONV_PV): with one, each
 * multiply-add needed a load of its own (the weight's broadcast) and the
 * loads, not the multiply-add units, set the pace; with three, a
 * broadcast feeds three (the host takes them on a CPU device, with 8
 * channels a tile: 24 accumulators in the 32 vector registers of
 * AVX-512). NDRange (pixel tiles, groups x blocks of tiles_per_item
 * channel tiles, batch). */
/* (ConvInteger's programs have a CONV_STAGE of at most 256, whose float
 * sums stay exact: see CONV_STAGE_CPU_INTEGER in cl/ops/conv.c) */

/* The head of the flat and staged kernels: which output rows (@tile_rows
 * from oy) and pixel tile ox0 (of @tile_px pixels) this work-item
 * computes, and which channel tiles [mt0, mt_end) of group g (the NDRange
 * above; a flat kernel has one row, out_h 1). */
#define CONV_ITEM_BEGIN(tile_px, tile_rows) \
  const int tile = get_global_id (0); \
  const int item = get_global_id (1); \
  const int n = get_global_id (2); \
  const int groups = out_c / out_per_group; \
  const int blocks = (oc_tiles + tiles_per_item - 1) / tiles_per_item; \
  if (tile >= (out_h + (tile_rows) - 1) / (tile_rows) * ow_tiles || \
      item >= groups * blocks) \
    return; \
  const int g = item / blocks; \
  const int mt0 = (item - g * blocks) * tiles_per_item; \
  const int mt_end = min (oc_tiles, mt0 + tiles_per_item); \
  const int row_tile = tile / ow_tiles; \
  const int oy = row_tile * (tile_rows); \
  const int ox0 = (tile - row_tile * ow_tiles) * (tile_px)

/* The loops of the flat and staged kernels: for each channel tile, with
 * its m0, oc0, m_count, zeroed accumulators acc[CONV_TM][@vectors] (the
 * flat kernels' pixel vectors, the staged kernels' rows) and its weights
 * wt (@taps per input channel), @tile_begin;
 * then for each chunk of @stage input channels (x channels [c0, c0 + cn)),
 * @stage_chunk when the private copy must be made (the first tile, or
 * every tile where the channels take several chunks), @compute (which
 * feeds acc and moves wt on) and @chunk_end; @tile_end last. */
#define CONV_TILES_LOOP(taps, vectors, stage, stage_chunk, tile_begin, \
    compute, chunk_end, tile_end) \
  for (int mt = mt0; mt < mt_end; mt++) { \
    const int m0 = mt * CONV_TM; \
    const int oc0 = g * out_per_group + m0; \
    const int m_count = min (CONV_TM, out_per_group - m0); \
    __global const float *wt = wp + \
        ((size_t) g * oc_tiles + mt) * in_per_group * (taps) * CONV_TM; \
    conv_floatp acc[CONV_TM][vectors]; \
    _Pragma ("unroll") \
    for (int m = 0; m < CONV_TM; m++) \
      _Pragma ("unroll") \
      for (int j = 0; j < (vectors); j++) \
        acc[m][j] = 0.0f; \
    tile_begin; \
    for (int c0 = 0; c0 < in_per_group; c0 += (stage)) { \
      const int cn = min ((stage), in_per_group - c0); \
      if (mt == mt0 || in_per_group > (stage)) \
        stage_chunk; \
      compute; \
      chunk_end; \
    } \
    tile_end; \
  }

/* The tail of the float flat and staged kernels, whose tiles hold
 * @n_vectors vectors a channel (acc[m][j]): bias, activation, and vector j
 * of channel oc stored at element @AT of y, of which @COUNT lanes lie
 * inside it (none: not stored). */
#define CONV_FLOAT_STORE_TILES(n_vectors, AT, COUNT) \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) { \
    if (m < m_count) { \
      const int oc = oc0 + m; \
      const float b = has_bias ? bias[oc] : 0.0f; \
      _Pragma ("unroll") \
      for (int j = 0; j < (n_vectors); j++) { \
        const int count_ = (COUNT); \
        if (count_ > 0) \
          CONV_STORE_TILE (float, conv_activate (acc[m][j] + b, act_alpha, \
                  act_beta), y + (AT), count_); \
      } \
    } \
  }

/* One tap of the flat and staged kernels: the tile's @n vectors xv[]
 * times the tap's CONV_TM weights at wt into acc, each weight's
 * broadcast feeding @n multiply-adds; then wt past them. */
#define CONV_TAP_VECTORS(xv, n) \
  { \
    _Pragma ("unroll") \
    for (int m = 0; m < CONV_TM; m++) { \
      const conv_floatp w_ = (conv_floatp) (wt[m]); \
      _Pragma ("unroll") \
      for (int j = 0; j < (n); j++) \
        acc[m][j] = fma ((xv)[j], w_, acc[m][j]); \
    } \
    wt += CONV_TM; \
  }

/* The head of the flat kernels: the item's tile of CONV_PV vectors from
 * ox0, of which rest pixels lie inside the plane, and its private copy xs
 * of CONV_STAGE channels of it. */
#define CONV_FLAT_BEGIN(type) \
  CONV_ITEM_BEGIN (CONV_TP * CONV_PV, 1); \
  const int rest = out_w - ox0; \
  __global const type *xg = xp + \
      ((size_t) n * in_c + (size_t) g * in_per_group) * w_p + ox0; \
  conv_floatp xs[CONV_STAGE][CONV_PV]

/* CONV_TILES_LOOP for the flat kernels: each chunk of CONV_STAGE input
 * channels is staged into xs, @STAGE_VECTOR (p, count) giving the vector
 * at p of which count lanes (possibly none) lie inside the plane, those
 * past it 0, and @ahead the element of each channel's line to prefetch
 * (the next tile's); @chunk_end after each chunk and @store after each
 * tile. */
#define CONV_FLAT_LOOP(type, STAGE_VECTOR, ahead, chunk_end, store) \
  CONV_TILES_LOOP (1, CONV_PV, CONV_STAGE, \
      CONV_FLAT_STAGE (type, STAGE_VECTOR, ahead), (void) 0, \
      for (int ic = 0; ic < cn; ic++) CONV_TAP_VECTORS (xs[ic], CONV_PV), \
      chunk_end, store)
#define CONV_FLAT_STAGE(type, STAGE_VECTOR, ahead) \
  for (int ic = 0; ic < cn; ic++) { \
    __global const type *xc = xg + (size_t) (c0 + ic) * w_p; \
    CONV_PREFETCH_AHEAD (xc, ahead); \
    _Pragma ("unroll") \
    for (int v = 0; v < CONV_PV; v++) \
      xs[ic][v] = STAGE_VECTOR (xc + v * CONV_TP, rest - v * CONV_TP); \
  }

#define CONV_FLAT_FLOAT_VECTOR(p, count) conv_load_tile (p, count)

__kernel void
lens_conv2d_1x1 (__global const float *xp, __global const float *wp,
    __global const float *bias, __global float *y, int has_bias,
    CONV_PACKED_ARGS, float act_alpha, float act_beta, int tiles_per_item)
{
  CONV_FLAT_BEGIN (float);

#define CONV_FLAT_STORE \
  CONV_FLOAT_STORE_TILES (CONV_PV, \
      ((size_t) n * out_c + oc) * out_w + ox0 + j * CONV_TP, \
      rest - j * CONV_TP)
  CONV_FLAT_LOOP (float, CONV_FLAT_FLOAT_VECTOR, CONV_TP * CONV_PV, (void) 0,
      CONV_FLAT_STORE);
#undef CONV_FLAT_STORE
}

/* The staged kernels (lens_conv2d_staged, lens_conv2d_staged_integer):
 * on a CPU device, every convolution with a column stride of 1 or 2 that
 * is neither a flat 1x1 nor depthwise runs straight from x, without the
 * packing pass (which wrote the whole input again, as floats, and cost a
 * launch). A tile is CONV_TP pixels of CONV_PR output rows (-DCONV_PR:
 * each tap's weight broadcast then feeds CONV_PR multiply-adds, as the
 * flat kernels' vectors do). A work-item first stages the input window
 * of its tile, for up to @stage input channels, in private memory: the
 * (CONV_PR - 1) * stride_h + (k_h - 1) * dil_h + 1 input rows its output
 * rows read, of CONV_TP + halo columns each, zero where the padding is,
 * split by column phase for stride 2 (as the packed input is),
 * ConvInteger's bytes converted once. It then computes @tiles_per_item
 * channel tiles from that copy, as the flat 1x1 kernels do (the host
 * gives one tile per work-item when the channels need several stages).
 * NDRange (row tiles x pixel tiles, groups x blocks of tiles_per_item
 * channel tiles, batch). */
#ifndef CONV_STAGE_FLOATS
#define CONV_STAGE_FLOATS 16384
#endif

#define CONV_STAGED_ARGS \
    CONV_GEOMETRY_ARGS, int oc_tiles, int ow_tiles

/* -DCONV_ROW_PAIRS=1 (float Conv on rows of at most 8 pixels, see
 * is_row_paired in cl/ops/conv.c): a tile is CONV_TP / 2 pixels of two
 * output rows, one vector whose low half is the first row and high half
 * the second. On AVX-512 a vector of 8 floats fills half a register, so
 * 8-pixel rows ran at half the multiply-add rate (YOLOv5n's 8x8 layers).
 * Float only: without lens_conv2d_staged_integer. */
#ifndef CONV_ROW_PAIRS
#define CONV_ROW_PAIRS 0
#endif
#if CONV_ROW_PAIRS
#if CONV_TP != 16 || CONV_PR != 1
#error "CONV_ROW_PAIRS wants CONV_TP 16 and CONV_PR 1"
#endif
#define CONV_STAGED_PX 8
#define CONV_STAGED_ROWS 2
#else
#define CONV_STAGED_PX CONV_TP
#define CONV_STAGED_ROWS CONV_PR
#endif

#define CONV_STAGED_BEGIN(type) \
  CONV_ITEM_BEGIN (CONV_STAGED_PX, CONV_STAGED_ROWS); \
  /* columns per phase, per row and per channel of the staged window, \
   * and its rows (those of CONV_STAGED_ROWS output rows) */ \
  const int phase_len = CONV_STAGED_PX + (k_w - 1) * dil_w / stride_w; \
  const int row_len = stride_w * phase_len; \
  const int win_h = (CONV_STAGED_ROWS - 1) * stride_h + \
      (k_h - 1) * dil_h + 1; \
  const int ch_len = win_h * row_len; \
  const int stage = min (in_per_group, CONV_STAGE_FLOATS / ch_len); \
  const int ix0 = ox0 * stride_w - pad_left; \
  const int iy0 = oy * stride_h - pad_top; \
  /* the window columns inside the row: [in_lo, in_hi) */ \
  const int in_lo = -ix0; \
  const int in_hi = in_w - ix0; \
  const size_t plane = (size_t) in_h * in_w; \
  /* where xg lies in x, and the elements of x */ \
  const long x_first = (long) (((size_t) n * in_c + \
          (size_t) g * in_per_group) * plane); \
  const long x_count = (long) (get_global_size (2) * in_c * plane); \
  __global const type *xg = x + x_first; \
  float xs[CONV_STAGE_FLOATS]

/* Stages channels [c0, c0 + cn) of the window into xs: padded column i of
 * a row (x column ix0 + i) at (i % stride_w) * phase_len + i / stride_w.
 * @LOAD (p) gives CONV_TP elements of x at p as floats, @VALUE (e) one.
 * Whole vectors are loaded even where the window crosses the row's ends
 * (the lanes outside it are then zeroed by in_lo/in_hi): those elements
 * belong to the neighbouring rows, inside x, except at the ends of the
 * whole tensor, where the row goes element by element. */
#define CONV_STAGED_STAGE(LOAD, VALUE) \
  for (int ic = 0; ic < cn; ic++) { \
    const size_t plane_at = (size_t) (c0 + ic) * plane; \
    for (int wy = 0; wy < win_h; wy++) { \
      const int iy = iy0 + wy; \
      float *dst = xs + (ic * win_h + wy) * row_len; \
      const long at = (long) (plane_at + (size_t) iy * in_w) + ix0; \
      __global const CONV_STAGED_TYPE *line = xg + at; \
      int i = 0; \
      CONV_PREFETCH_AHEAD (line, row_len); \
      CONV_PREFETCH_AHEAD (line, row_len + CONV_TP); \
      if (iy < 0 || iy >= in_h) { \
        for (; i < row_len; i++) \
          dst[i] = 0.0f; \
      } else if (at + x_first >= 0 && at + x_first + \
          (row_len + CONV_TP - 1) / CONV_TP * CONV_TP <= x_count) { \
        if (stride_w == 1) { \
          for (; i + CONV_TP <= row_len; i += CONV_TP) \
            conv_store_private (select ((conv_floatp) 0.0f, \
                    LOAD (line + i), CONV_LANES + i >= in_lo && \
                    CONV_LANES + i < in_hi), dst + i); \
        } else { \
          for (; i + CONV_TP <= phase_len; i += CONV_TP) { \
            const conv_intp w = CONV_LANES + 2 * i; \
            const conv_floatp a = select ((conv_floatp) 0.0f, \
                LOAD (line + 2 * i), w >= in_lo && w < in_hi); \
            const conv_floatp b = select ((conv_floatp) 0.0f, \
                LOAD (line + 2 * i + CONV_TP), \
                w + CONV_TP >= in_lo && w + CONV_TP < in_hi); \
            conv_store_private (conv_even_lanes (a, b), dst + i); \
            conv_store_private (conv_odd_lanes (a, b), \
                dst + phase_len + i); \
          } \
        } \
      } \
      /* the rest of a row of x, or all of it at the tensor's ends */ \
      if (iy >= 0 && iy < in_h) { \
        for (int phase = 0; phase < stride_w; phase++) \
          for (int k = i; k < phase_len; k++) { \
            const int wc = k * stride_w + phase; \
            dst[phase * phase_len + k] = wc >= in_lo && wc < in_hi ? \
                VALUE (line[wc]) : 0.0f; \
          } \
      } \
    } \
  }

/* CONV_TILES_LOOP for the staged kernels around @stage_chunk
 * (CONV_STAGED_STAGE of x channels [c0, c0 + cn)), with @tile_begin after
 * each tile's accumulators are zeroed, @row_end after each kernel row and
 * @tile_end after each channel tile. */
#define CONV_STAGED_TAPS(row_end) \
  for (int ic = 0; ic < cn; ic++) { \
    for (int ky = 0; ky < k_h; ky++) { \
      const float *xr = xs + (ic * win_h + ky * dil_h) * row_len; \
      for (int kx = 0; kx < k_w; kx++) { \
        const int c = kx * dil_w; \
        const float *xt = xr + (c & (stride_w - 1)) * phase_len + \
            (c >> (stride_w - 1)); \
        conv_floatp xv[CONV_PR]; \
        _Pragma ("unroll") \
        for (int r = 0; r < CONV_PR; r++) \
          xv[r] = CONV_STAGED_TAP_VECTOR (xt + r * stride_h * row_len); \
        CONV_TAP_VECTORS (xv, CONV_PR); \
      } \
      row_end; \
    } \
  }
#if CONV_ROW_PAIRS
#define CONV_STAGED_TAP_VECTOR(xt) \
  (float16) (vload8 (0, xt), vload8 (0, (xt) + stride_h * row_len))
#else
#define CONV_STAGED_TAP_VECTOR(xt) conv_load_private (xt)
#endif
#define CONV_STAGED_LOOP(stage_chunk, tile_begin, row_end, tile_end) \
  CONV_TILES_LOOP (k_h * k_w, CONV_PR, stage, stage_chunk, tile_begin, \
      CONV_STAGED_TAPS (row_end), (void) 0, tile_end)

#define CONV_STAGED_FLOAT_LOAD(p) conv_load_global (p)
#define CONV_STAGED_FLOAT_VALUE(e) (e)

#if CONV_ROW_PAIRS
/* @count (at most 8) pixels of @v at @p, the end of an output row */
inline void
conv_store_row_half (float8 v, __global float *p, int count)
{
  float lanes[8];

  if (count >= 8) {
    vstore8 (v, 0, p);
    return;
  }
  vstore8 (v, 0, lanes);
  for (int i = 0; i < count; i++)
    p[i] = lanes[i];
}
#endif

__kernel void
lens_conv2d_staged (__global const float *x, __global const float *wp,
    __global const float *bias, __global float *y, int has_bias,
    CONV_STAGED_ARGS, float act_alpha, float act_beta, int tiles_per_item)
{
#define CONV_STAGED_TYPE float
  CONV_STAGED_BEGIN (float);

#if CONV_ROW_PAIRS
#define CONV_STAGED_STORE \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) { \
    if (m < m_count) { \
      const int oc = oc0 + m; \
      const float16 v = conv_activate (acc[m][0] + \
          (has_bias ? bias[oc] : 0.0f), act_alpha, act_beta); \
      __global float *row = y + \
          (((size_t) n * out_c + oc) * out_h + oy) * out_w + ox0; \
      conv_store_row_half (v.lo, row, out_w - ox0); \
      if (oy + 1 < out_h) \
        conv_store_row_half (v.hi, row + out_w, out_w - ox0); \
    } \
  }
#else
#define CONV_STAGED_STORE \
  CONV_FLOAT_STORE_TILES (CONV_PR, \
      (((size_t) n * out_c + oc) * out_h + oy + j) * out_w + ox0, \
      oy + j < out_h ? out_w - ox0 : 0)
#endif
  CONV_STAGED_LOOP (CONV_STAGED_STAGE (CONV_STAGED_FLOAT_LOAD,
          CONV_STAGED_FLOAT_VALUE), (void) 0, (void) 0, CONV_STAGED_STORE);
#undef CONV_STAGED_STORE
#undef CONV_STAGED_TYPE
}

/* ConvInteger sums exact integers in float (see the top of this file):
 * CONV_INT_CHUNK_BEGIN declares the int32 totals and the count of rows
 * summed in float, CONV_INT_CHUNK_END moves the float sums into the totals
 * every rows_per_chunk rows. */
#define CONV_INT_CHUNK_BEGIN \
  conv_intp total[CONV_TM]; \
  int rows = 0; \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) \
    total[m] = 0

#define CONV_INT_CHUNK_END \
  if (++rows == rows_per_chunk) { \
    rows = 0; \
    _Pragma ("unroll") \
    for (int m = 0; m < CONV_TM; m++) { \
      total[m] += conv_convert_intp (acc[m]); \
      acc[m] = 0.0f; \
    } \
  }

/* The common tail of the ConvInteger kernels: each channel's total (the
 * int32 @total plus the float partial sums @acc) as CONV_INT_RESULT, the
 * partial last tile element by element. */
#define CONV_INT_STORE \
  CONV_INT_SCALE; \
  CONV_RANGE_BEGIN; \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) { \
    if (m < m_count) { \
      const conv_intp sum = total[m] + conv_convert_intp (acc[m]); \
      const size_t at_ = (((size_t) n * out_c + oc0 + m) * out_h + oy) * \
          out_w + ox0; \
      CONV_INT_STORE_VECTOR (sum, m, at_, out_w - ox0); \
    } \
  } \
  CONV_RANGE_END

/* One vector of a ConvInteger tile's output channel m: the int32 totals
 * @sum as CONV_INT_RESULT, the residual added, into the range, stored at
 * element @at of y, of which @count lanes lie inside the row. */
#define CONV_INT_STORE_VECTOR(sum, m, at, count) \
  do { \
    const CONV_INT_OUTP out_ = CONV_RESIDUAL_ADD ( \
        CONV_INT_RESULT ((sum), (m)), (at), (count)); \
    CONV_RANGE_TAKE (out_, (count)); \
    CONV_STORE_TILE (CONV_INT_OUT, out_, y + (at), (count)); \
  } while (0)

/* The tail of the ConvInteger kernels whose tiles hold @n vectors a
 * channel (acc[m][j], the flat kernels' pixel vectors or the staged
 * kernels' rows): vector j of channel m has the totals @SUM, lies at
 * element @AT of y and has @COUNT lanes inside it (none: not stored). */
#define CONV_INT_STORE_TILES(n_vectors, SUM, AT, COUNT) \
  CONV_INT_SCALE; \
  CONV_RANGE_BEGIN; \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) { \
    if (m < m_count) { \
      _Pragma ("unroll") \
      for (int j = 0; j < (n_vectors); j++) { \
        const int count_ = (COUNT); \
        if (count_ > 0) \
          CONV_INT_STORE_VECTOR ((SUM), m, (AT), count_); \
      } \
    } \
  } \
  CONV_RANGE_END

/* As lens_conv2d_packed on zero-point-adjusted integers held in floats;
 * the float sums go into int32 every @rows_per_chunk kernel rows. Stores
 * the int32 totals, or with CONV_INT_FUSED the floats of
 * conv_int_epilogue (the scalar @scale[0], times @scale2[0] with
 * CONV_INT_SCALES, is computed on the device per inference; @bias has one
 * value per output channel). Without CONV_INT_FUSED, @scale, @scale2 and
 * @bias are never read. */
__kernel void
lens_conv2d_packed_integer (__global const float *xp,
    __global const float *wp, __global CONV_INT_OUT *y,
    __global const float *scale, __global const float *scale2,
    __global const float *bias, int has_bias, CONV_PACKED_ARGS,
    int rows_per_chunk CONV_RANGE_ARG
    CONV_RESIDUAL_ARG)
{
  CONV_PACKED_BEGIN (float);
  CONV_INT_CHUNK_BEGIN;

  for (int ic = 0; ic < in_per_group; ic++) {
    __global const float *xc = xg + ic * plane_p;
    CONV_PREFETCH_NEXT (xc + plane_p);
    for (int ky = 0; ky < k_h; ky++) {
      CONV_PACKED_ROW (xc, ky);
      CONV_INT_CHUNK_END;
    }
  }

  CONV_INT_STORE;
}

/* ConvInteger's flat 1x1 (see lens_conv2d_1x1): the bytes of x are
 * converted (@x_sign, minus the zero point) as they are staged instead of
 * by a packing pass, which would write four times the bytes it reads. The
 * float sums go into int32 after each chunk of CONV_STAGE channels. */
/* The vector of x's bytes at @p as ConvInteger computes with them
 * (@x_sign, minus the zero point @zp), its lanes from @count on 0. */
inline conv_floatp
conv_flat_int_vector (__global const uchar *p, int count, int x_sign,
    float zp)
{
  conv_intp bits;

  if (count >= CONV_TP) {
    bits = conv_convert_intp (conv_vloadp (0, p));
  } else {
    int lanes[CONV_TP];
    for (int i = 0; i < CONV_TP; i++)
      lanes[i] = i < count ? p[i] : 0;
    bits = conv_vloadp (0, lanes);
  }
  return select ((conv_floatp) 0.0f,
      conv_convert_floatp ((bits ^ x_sign) - x_sign) - zp,
      CONV_LANES < count);
}

__kernel void
lens_conv2d_1x1_integer (CONV_INTEGER_ARGS (xp), CONV_PACKED_ARGS,
    int tiles_per_item CONV_RANGE_ARG
    CONV_RESIDUAL_ARG)
{
  CONV_FLAT_BEGIN (uchar);
  const float zp = has_x_zp ? conv_int8_value (x_zp[0], x_sign) : 0;
  conv_intp total[CONV_TM][CONV_PV];

#define CONV_FLAT_INT_VECTOR(p, count) \
  conv_flat_int_vector (p, count, x_sign, zp)
#define CONV_FLAT_INT_CHUNK_END \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) { \
    _Pragma ("unroll") \
    for (int v = 0; v < CONV_PV; v++) { \
      total[m][v] = (c0 == 0 ? 0 : total[m][v]) + \
          conv_convert_intp (acc[m][v]); \
      acc[m][v] = 0.0f; \
    } \
  }
#define CONV_FLAT_INT_STORE \
  CONV_INT_STORE_TILES (CONV_PV, total[m][j], \
      ((size_t) n * out_c + oc0 + m) * out_w + ox0 + j * CONV_TP, \
      rest - j * CONV_TP)
  CONV_FLAT_LOOP (uchar, CONV_FLAT_INT_VECTOR, 64, CONV_FLAT_INT_CHUNK_END,
      CONV_FLAT_INT_STORE);
#undef CONV_FLAT_INT_STORE
#undef CONV_FLAT_INT_CHUNK_END
#undef CONV_FLAT_INT_VECTOR
}

/* ConvInteger's staged kernel (see lens_conv2d_staged): the bytes of x
 * are converted (@x_sign, minus the zero point) as they are staged; the
 * float sums go into int32 every @rows_per_chunk kernel rows, as in
 * lens_conv2d_packed_integer. */
#define CONV_STAGED_INT_LOAD(p) \
  (conv_convert_floatp ((conv_convert_intp (conv_vloadp (0, p)) ^ x_sign) \
      - x_sign) - zp)
#define CONV_STAGED_INT_VALUE(e) \
  ((float) conv_int8_value ((e), x_sign) - zp)

#if !CONV_ROW_PAIRS
__kernel void
lens_conv2d_staged_integer (CONV_INTEGER_ARGS (x), CONV_STAGED_ARGS,
    int rows_per_chunk, int tiles_per_item CONV_RANGE_ARG
    CONV_RESIDUAL_ARG)
{
#define CONV_STAGED_TYPE uchar
  CONV_STAGED_BEGIN (uchar);
  const float zp = has_x_zp ? conv_int8_value (x_zp[0], x_sign) : 0;

#define CONV_STAGED_INT_CHUNK_BEGIN \
  conv_intp total[CONV_TM][CONV_PR]; \
  int rows = 0; \
  _Pragma ("unroll") \
  for (int m = 0; m < CONV_TM; m++) \
    _Pragma ("unroll") \
    for (int r = 0; r < CONV_PR; r++) \
      total[m][r] = 0
#define CONV_STAGED_INT_CHUNK_END \
  if (++rows == rows_per_chunk) { \
    rows = 0; \
    _Pragma ("unroll") \
    for (int m = 0; m < CONV_TM; m++) \
      _Pragma ("unroll") \
      for (int r = 0; r < CONV_PR; r++) { \
        total[m][r] += conv_convert_intp (acc[m][r]); \
        acc[m][r] = 0.0f; \
      } \
  }
#define CONV_STAGED_INT_STORE \
  CONV_INT_STORE_TILES (CONV_PR, \
      total[m][j] + conv_convert_intp (acc[m][j]), \
      (((size_t) n * out_c + oc0 + m) * out_h + oy + j) * out_w + ox0, \
      oy + j < out_h ? out_w - ox0 : 0)
  CONV_STAGED_LOOP (CONV_STAGED_STAGE (CONV_STAGED_INT_LOAD,
          CONV_STAGED_INT_VALUE), CONV_STAGED_INT_CHUNK_BEGIN,
      CONV_STAGED_INT_CHUNK_END, CONV_STAGED_INT_STORE);
#undef CONV_STAGED_INT_STORE
#undef CONV_STAGED_INT_CHUNK_END
#undef CONV_STAGED_INT_CHUNK_BEGIN
#undef CONV_STAGED_TYPE
}
#endif /* !CONV_ROW_PAIRS */

/* -DCONV_VNNI=1 (the host sets it only on a CPU device whose processor
 * has AVX-512 VNNI, see cl/ops/conv.c): ConvInteger in integers, four
 * input channels per instruction. vpdpbusd multiplies, in each 32-bit
 * lane, 4 unsigned bytes of x by 4 signed bytes of w and adds the 4
 * products to the lane's int32: 64 multiply-adds per instruction where a
 * float FMA does 16. The compiler PoCL ships (LLVM) does not find it in
 * plain OpenCL C, so the kernel asks for it by its builtin, in a function
 * that enables the feature for itself alone (conv_vnni_tile).
 *
 * lens_conv_pack_input_vnni lays x out as the packed kernels' padded rows
 * (see lens_conv_pack_input: split by column phase for stride 2), each
 * element one uint of 4 channels' bytes: xq[n][c / 4][row][col], byte
 * c % 4. Its bytes are unsigned: int8 x has its top bit flipped (x + 128),
 * and so has its zero point zp, which leaves every x - zp as it was. The
 * padding holds zp; the channels past in_c of the last group of 4 hold 0.
 *
 * The weights are 8-bit too, but w - w_zp needs 9 bits (uint8 weights with
 * a zero point of 131: YOLO11n's). So the host packs w - b instead, b =
 * 128 for uint8 w (0 for int8), which always fits int8, and each term is
 * (x - zp)(w - w_zp) = x (w - b) + (b - w_zp) x - zp (w - w_zp):
 * lens_conv2d_vnni_integer computes a tile as lens_conv2d_packed_integer
 * does, from wq[tile][c / 4][ky][kx][CONV_TM] (4 bytes of w - b each; 0
 * past the channels), one more vpdpbusd per tap summing each pixel's bytes
 * of x (xsum), then adds (b - w_zp) xsum and takes off zp wsum, wsum the
 * sum of a channel's w - w_zp: the host passes wsum[tile][CONV_TM] and
 * then (b - w_zp)[tile][CONV_TM]. All of it is exact in int32 (the host
 * keeps the number of products small enough). NDRange as the packed
 * kernels. */
#ifndef CONV_VNNI
#define CONV_VNNI 0
#endif
#if CONV_VNNI
#if CONV_TP == 16
typedef int conv_vnni_vec __attribute__ ((vector_size (64)));
#define CONV_VNNI_TARGET "avx512vnni,avx512f"
#define CONV_VNNI_DOT __builtin_ia32_vpdpbusd512
#else
typedef int conv_vnni_vec __attribute__ ((vector_size (32)));
#define CONV_VNNI_TARGET "avx512vnni,avx512vl"
#define CONV_VNNI_DOT __builtin_ia32_vpdpbusd256
#endif

/* Columns per step of lens_conv_pack_input_vnni's whole-vector path */
#define CONV_VNNI_SPAN 16

/* CONV_VNNI_SPAN bytes of a channel's row from column @first, @step (1 or
 * 2) apart, flipped by @flip; the caller checked the row holds them. */
inline uint16
conv_vnni_pack_bytes (__global const uchar *line, int first, int step,
    uchar flip)
{
  const uchar16 a = vload16 (0, line + first);

  if (step == 1)
    return convert_uint16 (a ^ flip);
  return convert_uint16 (shuffle2 (a, vload16 (0, line + first + 16),
          convert_uchar16 (CONV_PACK_EVEN)) ^ flip);
}

/* Each work-item writes one packed row of one group of 4 channels: the
 * runs of CONV_VNNI_SPAN columns that lie inside x (within one phase) by
 * whole vectors, the rest column by column. NDRange (1, h_p,
 * batch x groups of 4). */
__kernel void
lens_conv_pack_input_vnni (__global const uchar *x,
    __global const uchar *x_zp, __global uint *xq, int x_flip,
    int has_x_zp, int planes, int in_c, int in_h, int in_w, int h_p,
    int w_p, int pad_top, int pad_left, int split)
{
  const int row = get_global_id (1);
  const int plane = get_global_id (2);

  if (row >= h_p || plane >= planes)
    return;

  const int quads = (in_c + 3) / 4;
  const int n = plane / quads;
  const int c0 = (plane - n * quads) * 4;
  const int iy = row - pad_top;
  const uint zp = (has_x_zp ? x_zp[0] : 0) ^ x_flip;
  const int phase_len = split ? w_p >> 1 : w_p;
  __global uint *out = xq + ((size_t) plane * h_p + row) * w_p;
  __global const uchar *line[4];
  int col = 0;

  /* the bytes of the missing channels of the last group stay 0 */
  const uint zp4 = zp * 0x01010101u & (in_c - c0 >= 4 ? 0xffffffffu :
      (1u << (8 * (in_c - c0))) - 1);

  if (iy < 0 || iy >= in_h) {
    for (; col < w_p; col++)
      out[col] = zp4;
    return;
  }
  for (int b = 0; b < 4; b++)
    line[b] = x + (((size_t) n * in_c + min (c0 + b, in_c - 1)) * in_h +
        iy) * in_w;
  for (; col < w_p; col++) {
    const int phase = col < phase_len ? 0 : 1;
    const int step = split ? 2 : 1;
    const int first = (col - phase * phase_len) * step + phase - pad_left;

    if (first >= 0 && col + CONV_VNNI_SPAN <= (phase + 1) * phase_len &&
        first + step * CONV_VNNI_SPAN <= in_w) {
      uint16 v = 0;
      for (int b = 0; b < 4 && c0 + b < in_c; b++)
        v |= conv_vnni_pack_bytes (line[b], first, step, (uchar) x_flip) <<
            (8 * b);
      vstore16 (v, 0, out + col);
      col += CONV_VNNI_SPAN - 1;
      continue;
    }
    uint v = 0;
    for (int b = 0; b < 4 && c0 + b < in_c; b++)
      v |= (first >= 0 && first < in_w ? (uint) (line[b][first] ^ x_flip) :
          zp) << (8 * b);
    out[col] = v;
  }
}

/* One tap: the 4-channel pixels @xv times the tap's CONV_TM weights at wt
 * into acc, and their bytes into xsum; then wt past the weights. */
#define CONV_VNNI_TAP(xv) \
  { \
    const conv_vnni_vec xv_ = (xv); \
    _Pragma ("unroll") \
    for (int m = 0; m < CONV_TM; m++) \
      acc[m] = CONV_PASTE (as_int, CONV_TP) (CONV_VNNI_DOT ( \
              (conv_vnni_vec) acc[m], xv_, \
              (conv_vnni_vec) ((conv_intp) wt[m]))); \
    xsum = CONV_PASTE (as_int, CONV_TP) (CONV_VNNI_DOT ((conv_vnni_vec) xsum, \
            xv_, (conv_vnni_vec) ((conv_intp) 0x01010101))); \
    wt += CONV_TM; \
  }

/* The tile's pixels from ox0 of the 4 channels from @c0 of a flat 1x1's x
 * itself (@xb, @channels planes of out_w bytes each, flipped by @flip),
 * as the packing would lay them out: the lanes past the plane's end and
 * the bytes of the channels past the last 0. */
inline CONV_VEC (uint)
conv_vnni_flat_pixels (__global const uchar *xb, int channels, int c0,
    int out_w, int ox0, int n, uchar flip)
{
  const int count = out_w - ox0;
  CONV_VEC (uint) v = 0;

  for (int b = 0; b < 4 && c0 + b < channels; b++) {
    __global const uchar *line = xb + ((size_t) n * channels + c0 + b) *
        out_w + ox0;
    CONV_VEC (uchar) bytes;
    if (count >= CONV_TP) {
      bytes = CONV_VEC (vload) (0, line);
    } else {
      uchar lanes[CONV_TP];
      for (int i = 0; i < CONV_TP; i++)
        lanes[i] = i < count ? line[i] : flip;
      bytes = CONV_VEC (vload) (0, lanes);
    }
    v |= CONV_VEC (convert_uint) (bytes ^ flip) << (8 * b);
  }
  return v;
}

/* One work-item of lens_conv2d_vnni_integer, at (@tile, @gt, @n): in a
 * function of its own, never inlined, because only a function can carry
 * the VNNI target feature through PoCL: PoCL clones a kernel's body into
 * its work-group function (the work-item loops), which has the device's
 * features only, and LLVM then fails (and aborts) on the instruction.
 * in_c and in_per_group count groups of 4 channels here; with @direct (a
 * flat 1x1) the pixels come from x itself (@xb, @channels, @flip), not
 * from the packed xp. */
__attribute__ ((target (CONV_VNNI_TARGET), noinline))
void
conv_vnni_tile (__global const uint *xp, __global const uchar *xb,
    int direct, int channels, int flip, __global const int *wp,
    __global const int *wsum, int zp, __global CONV_INT_OUT *y,
    __global const float *scale, __global const float *scale2,
    __global const float *bias, int has_bias, CONV_PACKED_ARGS, int tile_,
    int gt_, int n_ CONV_RANGE_ARG CONV_RESIDUAL_ARG)
{
  CONV_PACKED_BEGIN_AT (uint, int, conv_intp, 0, tile_, gt_, n_);
  /* each pixel's sum of the bytes of x it reads */
  conv_intp xsum = 0;

  if (direct) {
    for (int ic = 0; ic < in_per_group; ic++)
      CONV_VNNI_TAP ((conv_vnni_vec) conv_vnni_flat_pixels (xb, channels,
              4 * ic, out_w, ox0, n, (uchar) flip));
  } else {
    for (int ic = 0; ic < in_per_group; ic++) {
      __global const uint *xc = xg + ic * plane_p;
      for (int ky = 0; ky < k_h; ky++) {
        __global const uint *xr = xc + (size_t) ky * dil_h * w_p;
        for (int kx = 0; kx < k_w; kx++) {
          const int c = kx * dil_w;
          CONV_VNNI_TAP ((conv_vnni_vec) conv_vloadp (0, xr +
                  (stride_w == 2 ? (c & 1) * (w_p >> 1) + (c >> 1) : c)));
        }
      }
    }
  }

  __global const int *ws = wsum + (size_t) gt * CONV_TM;
  __global const int *wf = ws + (size_t) oc_tiles * CONV_TM;
  CONV_INT_STORE_TILES (1, acc[m] + wf[m] * xsum - zp * ws[m],
      (((size_t) n * out_c + oc0 + m) * out_h + oy) * out_w + ox0,
      out_w - ox0);
}

/* @xp: x packed by lens_conv_pack_input_vnni, or with @direct x itself
 * (@channels planes of bytes) */
__kernel void
lens_conv2d_vnni_integer (__global const void *xp, int direct, int channels,
    __global const int *wp, __global const int *wsum,
    __global const uchar *x_zp, int x_flip, int has_x_zp,
    __global CONV_INT_OUT *y, __global const float *scale,
    __global const float *scale2, __global const float *bias, int has_bias,
    CONV_PACKED_ARGS CONV_RANGE_ARG CONV_RESIDUAL_ARG)
{
  conv_vnni_tile ((__global const uint *) xp, (__global const uchar *) xp,
      direct, channels, x_flip, wp, wsum,
      (int) ((has_x_zp ? x_zp[0] : 0) ^ x_flip), y, scale, scale2, bias,
      has_bias, CONV_PACKED_PASS, get_global_id (0), get_global_id (1),
      get_global_id (2) CONV_RANGE_PASS CONV_RESIDUAL_PASS);
}
#endif /* CONV_VNNI */

#endif /* !DW_KH */

/* The depthwise kernel's kernel size, strides and dilations and its row
 * buffers' length, fixed at build time (the host builds one program per
 * shape): the tap loops unroll, the weights stay in registers and every
 * tap's place in the row buffer is a constant. DW_PHASE_LEN (columns per
 * phase of a buffered row) must cover max (out_w, CONV_TP) + (DW_KW - 1) *
 * DW_DW / DW_SW columns read and (pad_left + in_w) / DW_SW + 1 written. */
#ifdef DW_KH

/* Input rows one output row spans: the rows a work-item keeps buffered. */
#define DW_SPAN ((DW_KH - 1) * DW_DH + 1)
#define DW_ROW_LEN (DW_SW * DW_PHASE_LEN)

/* -DDW_OUT_ROWS: output rows a work-item computes together, each input
 * vector loaded once for all of them (the host's choice: 4 on a CPU
 * device at stride 1, where the loads, most of them across a cache line,
 * set the pace); the rows they read, DW_BUFFERED, stay buffered. */
#ifndef DW_OUT_ROWS
#define DW_OUT_ROWS 1
#endif
#define DW_BUFFERED (DW_SPAN + (DW_OUT_ROWS - 1) * DW_SH)

/* The kernel row of output row @j (of those a work-item computes
 * together) that reads buffered row @r (from the first output row's
 * first input row), or -1 where none does. */
inline int
dw_kernel_row (int r, int j)
{
  const int d = r - j * DW_SH;

  return d >= 0 && d % DW_DH == 0 && d / DW_DH < DW_KH ? d / DW_DH : -1;
}

/* Whether some output row reads buffered row @r: with dilation or a
 * stride past the kernel, not all of them are. */
inline bool
dw_row_used (int r)
{
  for (int j = 0; j < DW_OUT_ROWS; j++)
    if (dw_kernel_row (r, j) >= 0)
      return true;
  return false;
}

/* Copies input row @xrow (in_w long) into @row, padded column c (x column
 * c - pad_left) at row[(c % DW_SW) * DW_PHASE_LEN + c / DW_SW]: with the
 * columns split by phase, the pixels of one tap, DW_SW apart in x, lie
 * next to each other. The padding columns were zeroed once and are never
 * written. Defined for float rows and, converted (@x_sign, minus @zp) as
 * ConvInteger reads them, for byte rows; @LOAD (p) gives CONV_TP
 * elements at p as floats, @VALUE (e) one. */
#define CONV_DEPTHWISE_FILL_ROW(name, type, LOAD, VALUE) \
inline void \
name (__global const type *xrow, int in_w, int pad_left, float *row, \
    int x_sign, float zp) \
{ \
  int col = 0; \
  CONV_DEPTHWISE_FILL_VECTORS (LOAD); \
  for (; col < in_w; col++) { \
    const int c = pad_left + col; \
    row[(c % DW_SW) * DW_PHASE_LEN + c / DW_SW] = VALUE (xrow[col]); \
  } \
}

/* Whole vectors, the last moved back to end at the row's end (storing
 * some columns again, the same values) where the row has one: the
 * columns left to the scalar loop after it would otherwise be up to a
 * vector's (for stride 2, clang made a scatter of that loop, microcoded
 * on AMD Zen 4: a quarter of the kernel's time). */
#if DW_SW == 1
#define CONV_DEPTHWISE_FILL_VECTORS(LOAD) \
  for (; col < in_w && in_w >= CONV_TP; col += CONV_TP) { \
    const int at = min (col, in_w - CONV_TP); \
    conv_store_private (LOAD (xrow + at), row + pad_left + at); \
  }
#elif DW_SW == 2
/* the even and odd columns of x land in the phases of pad_left's and
 * pad_left + 1's parity */
#define CONV_DEPTHWISE_FILL_VECTORS(LOAD) \
  float *even = row + (pad_left & 1) * DW_PHASE_LEN + pad_left / 2; \
  float *odd = row + ((pad_left + 1) & 1) * DW_PHASE_LEN + \
      (pad_left + 1) / 2; \
  for (; col + 1 < in_w && in_w >= 2 * CONV_TP; col += 2 * CONV_TP) { \
    /* an even column, so that the phases stay those of the row */ \
    const int at = min (col, (in_w - 2 * CONV_TP) & ~1); \
    const conv_floatp a = LOAD (xrow + at); \
    const conv_floatp b = LOAD (xrow + at + CONV_TP); \
    conv_store_private (conv_even_lanes (a, b), even + at / 2); \
    conv_store_private (conv_odd_lanes (a, b), odd + at / 2); \
  } \
  col = min (col, in_w & ~1)
#else
#define CONV_DEPTHWISE_FILL_VECTORS(LOAD) (void) 0
#endif

#define CONV_DEPTHWISE_FLOAT_LOAD(p) conv_load_global (p)
#define CONV_DEPTHWISE_FLOAT_VALUE(e) (e)
#define CONV_DEPTHWISE_INT_LOAD(p) \
  (conv_convert_floatp ((conv_convert_intp (conv_vloadp (0, p)) ^ x_sign) \
      - x_sign) - zp)
#define CONV_DEPTHWISE_INT_VALUE(e) \
  ((float) conv_int8_value ((e), x_sign) - zp)

CONV_DEPTHWISE_FILL_ROW (conv_depthwise_fill_row, float,
    CONV_DEPTHWISE_FLOAT_LOAD, CONV_DEPTHWISE_FLOAT_VALUE)
CONV_DEPTHWISE_FILL_ROW (conv_depthwise_fill_row_int, uchar,
    CONV_DEPTHWISE_INT_LOAD, CONV_DEPTHWISE_INT_VALUE)

/* Depthwise: @rows output rows (from oy0) of channel oc per work-item,
 * CONV_TP pixels at a time. The work-item keeps the DW_SPAN input rows
 * its current output row reads in private buffers, zero-padded (see
 * conv_depthwise_fill_row), each filled once while it is needed: the taps
 * then load whole vectors at constant offsets, without a bounds check,
 * borders included. Rows of padding are skipped. NDRange (row blocks,
 * out_c, batch).
 *
 * CONV_DEPTHWISE_BODY is that work-item for x of @xtype, rows filled by
 * @fill, tap t's weight @WEIGHT (t) and the vector of sums stored as
 * @out_type @RESULT (acc), each stored vector also given to @TAKE (v,
 * lanes stored). */
#define CONV_DEPTHWISE_BODY(xtype, fill, WEIGHT, out_type, RESULT, TAKE) \
  const int oy0 = get_global_id (0) * rows; \
  const int oc = get_global_id (1); \
  const int n = get_global_id (2); \
  if (oy0 >= out_h || oc >= out_c) \
    return; \
  const int oy_end = min (out_h, oy0 + rows); \
  const int ic = oc / out_per_group; \
  __global const xtype *xc = x + ((size_t) n * in_c + ic) * in_h * in_w; \
  __global out_type *yc = y + ((size_t) n * out_c + oc) * out_h * out_w; \
  float wk[DW_KH * DW_KW]; \
  float ring[DW_BUFFERED * DW_ROW_LEN] \
      __attribute__ ((aligned (CONV_TP * sizeof (float)))); \
  /* the input row each buffer holds (-1: none yet) */ \
  int held[DW_BUFFERED]; \
  _Pragma ("unroll") \
  for (int t = 0; t < DW_KH * DW_KW; t++) \
    wk[t] = WEIGHT (t); \
  for (int i = 0; i < DW_BUFFERED * DW_ROW_LEN; i += CONV_TP) \
    conv_vstorep ((conv_floatp) 0.0f, 0, ring + i); \
  for (int r = 0; r < DW_BUFFERED; r++) \
    held[r] = -1; \
  for (int oy = oy0; oy < oy_end; oy += DW_OUT_ROWS) { \
    const int iy0 = oy * DW_SH - pad_top; \
    /* the buffer of input row iy0 + r, NULL for a row of padding */ \
    const float *tap_row[DW_BUFFERED]; \
    _Pragma ("unroll") \
    for (int r = 0; r < DW_BUFFERED; r++) { \
      const int iy = iy0 + r; \
      tap_row[r] = NULL; \
      if (iy >= 0 && iy < in_h && dw_row_used (r)) { \
        /* the DW_BUFFERED rows from iy0 are distinct modulo \
         * DW_BUFFERED, and a row overwritten is older than them all */ \
        const int slot = iy % DW_BUFFERED; \
        float *row = ring + slot * DW_ROW_LEN; \
        if (held[slot] != iy) { \
          fill (xc + (size_t) iy * in_w, in_w, pad_left, row, x_sign, zp); \
          held[slot] = iy; \
        } \
        tap_row[r] = row; \
      } \
    } \
    for (int ox_tile = 0; ox_tile < out_w; ox_tile += CONV_TP) { \
      /* a partial last tile moves back to end at the row's end (when the \
       * row has a whole vector), computing some outputs again, to the \
       * same values */ \
      const int ox0 = out_w >= CONV_TP ? min (ox_tile, out_w - CONV_TP) : \
          ox_tile; \
      /* one sum per output row and kernel row: independent chains of \
       * fused multiply-adds rather than one chain as long as the \
       * kernel; each tap vector loaded once for every output row */ \
      conv_floatp row_acc[DW_OUT_ROWS][DW_KH]; \
      _Pragma ("unroll") \
      for (int j = 0; j < DW_OUT_ROWS; j++) \
        _Pragma ("unroll") \
        for (int ky = 0; ky < DW_KH; ky++) \
          row_acc[j][ky] = 0.0f; \
      _Pragma ("unroll") \
      for (int r = 0; r < DW_BUFFERED; r++) { \
        if (!dw_row_used (r) || tap_row[r] == NULL) \
          continue; \
        _Pragma ("unroll") \
        for (int kx = 0; kx < DW_KW; kx++) { \
          /* padded column ox0 * DW_SW + kx * DW_DW */ \
          const conv_floatp v = conv_load_private (tap_row[r] + \
              (kx * DW_DW % DW_SW) * DW_PHASE_LEN + kx * DW_DW / DW_SW + \
              ox0); \
          _Pragma ("unroll") \
          for (int j = 0; j < DW_OUT_ROWS; j++) { \
            const int ky = dw_kernel_row (r, j); \
            if (ky >= 0) \
              row_acc[j][ky] = fma (v, (conv_floatp) wk[ky * DW_KW + kx], \
                  row_acc[j][ky]); \
          } \
        } \
      } \
      _Pragma ("unroll") \
      for (int j = 0; j < DW_OUT_ROWS; j++) { \
        conv_floatp acc = 0.0f; \
        _Pragma ("unroll") \
        for (int ky = 0; ky < DW_KH; ky++) \
          acc += row_acc[j][ky]; \
        if (j == 0 || oy + j < oy_end) { \
          __global out_type *yrow = yc + (size_t) (oy + j) * out_w; \
          const CONV_VEC (out_type) out = RESULT (acc); \
          TAKE (out, out_w - ox0); \
          CONV_STORE_TILE (out_type, out, yrow + ox0, out_w - ox0); \
        } \
      } \
    } \
  }

#define CONV_DEPTHWISE_NO_TAKE(v, count) (void) 0
#define CONV_DEPTHWISE_FLOAT_WEIGHT(t) w[(size_t) oc * DW_KH * DW_KW + (t)]
#define CONV_DEPTHWISE_FLOAT_RESULT(acc) \
  conv_activate ((acc) + (has_bias ? bias[oc] : 0.0f), act_alpha, act_beta)

__kernel void
lens_conv2d_depthwise (__global const float *x, __global const float *w,
    __global const float *bias, __global float *y, int has_bias,
    CONV_GEOMETRY_ARGS, int rows, float act_alpha, float act_beta)
{
  const int x_sign = 0;
  const float zp = 0.0f;

  CONV_DEPTHWISE_BODY (float, conv_depthwise_fill_row,
      CONV_DEPTHWISE_FLOAT_WEIGHT, float, CONV_DEPTHWISE_FLOAT_RESULT,
      CONV_DEPTHWISE_NO_TAKE);
}

/* ConvInteger's depthwise kernel: the bytes of x converted as the rows
 * are filled, the weights from lens_conv_pack_weights (w - w_zero_point
 * as floats, [channel][tap][CONV_TM], one channel tile per group); sums
 * in float are exact (at most 256 taps of products below 2^16: the host
 * keeps larger kernels on the packed path). Stores as the other
 * ConvInteger kernels (CONV_INT_RESULT). */
#define CONV_DEPTHWISE_INT_WEIGHT(t) \
  wp[((size_t) ic * DW_KH * DW_KW + (t)) * CONV_TM + \
      (oc - ic * out_per_group)]
#define CONV_DEPTHWISE_INT_RESULT(acc) \
  CONV_INT_RESULT (conv_convert_intp (acc), 0)

__kernel void
lens_conv2d_depthwise_integer (CONV_INTEGER_ARGS (x), CONV_GEOMETRY_ARGS,
    int rows CONV_RANGE_ARG)
{
  const float zp = has_x_zp ? conv_int8_value (x_zp[0], x_sign) : 0;
  /* the channel CONV_INT_RESULT reads the bias of */
  const int oc0 = get_global_id (1);
  CONV_INT_SCALE;
  CONV_RANGE_BEGIN;

  CONV_DEPTHWISE_BODY (uchar, conv_depthwise_fill_row_int,
      CONV_DEPTHWISE_INT_WEIGHT, CONV_INT_OUT, CONV_DEPTHWISE_INT_RESULT,
      CONV_RANGE_TAKE);
  CONV_RANGE_END;
}

#endif /* DW_KH */
