/* layout.cl: kernels that move elements without arithmetic: block copies
 * (Concat, Split), strided gathers (Slice, Transpose), a tiled transpose of
 * the last two dimensions, padding (Pad), and Transpose's CPU kernels
 * (runs of contiguous rows, blocks of a transposed pair of dimensions).
 *
 * Every kernel is generic over the element size: ELEM (-DELEM=uchar,
 * ushort, uint or ulong) only carries bits, so one program per element size
 * serves every data type.
 *
 * Shapes and strides travel as int8 vectors ordered innermost dimension
 * first (component s0 is the last tensor dimension); the unused components
 * beyond @rank are ignored. Unrolling over s0..s7 keeps them in registers
 * on GPUs, where a private array indexed at run time would spill. */

#ifndef ELEM
#define ELEM uint
#endif

/* ELEM's vector of 16, which is also the mask type of its shuffles (ELEM
 * is unsigned) */
#define LAYOUT_CAT_(a, b) a ## b
#define LAYOUT_CAT(a, b) LAYOUT_CAT_ (a, b)
#define ELEM16 LAYOUT_CAT (ELEM, 16)
#define ELEM16_EVEN \
  (ELEM16) (0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)

#define LENS_PAD_CONSTANT 0
#define LENS_PAD_EDGE 1
#define LENS_PAD_REFLECT 2
#define LENS_PAD_WRAP 3

/* Transpose tile edge; the work-group is TILE x TILE. */
#define TILE 16

/* dst[r * dst_pitch + dst_offset + c] = src[r * src_pitch + src_offset + c]
 * for r < rows, c < cols: one input of a Concat or one output of a Split,
 * seen as [outer, axis * inner] blocks. Each work-item copies @span
 * neighbouring elements of a row: 1 on GPUs (neighbouring items,
 * coalesced), a long run in whole vectors on CPUs (the index arithmetic
 * once per run). NDRange rows x ceil (cols / span). */
__kernel void
lens_copy_block (__global const ELEM * src, int src_pitch, int src_offset,
    __global ELEM * dst, int dst_pitch, int dst_offset, int rows, int cols,
    int span)
{
  int i = get_global_id (0);
  int chunks = (cols + span - 1) / span;
  int r, c, end;

  if (i >= rows * chunks)
    return;
  r = i / chunks;
  c = (i - r * chunks) * span;
  end = min (c + span, cols);
  __global const ELEM *in = src + (long) r * src_pitch + src_offset;
  __global ELEM *out = dst + (long) r * dst_pitch + dst_offset;
  for (; c + 16 <= end; c += 16)
    vstore16 (vload16 (0, in + c), 0, out + c);
  for (; c < end; c++)
    out[c] = in[c];
}

#define UNRAVEL_STRIDED(K) \
  if (K < rank) { \
    int q = rem / shape.s##K; \
    off += (rem - q * shape.s##K) * src_strides.s##K; \
    rem = q; \
  }

/* dst[i] = src[src_base + sum_d coord_d (i) * src_strides_d]: the output is
 * contiguous with @shape (rank >= 1); strides may be negative (Slice with
 * negative steps) or permuted (Transpose). Each work-item copies @span
 * neighbouring elements of an innermost row (see lens_copy_block), so it
 * unravels the outer dimensions once; rows read contiguously or every
 * other element (Slice with step 2: YOLOX's space-to-depth stem) go in
 * whole vectors. NDRange n / shape.s0 rows x ceil (shape.s0 / span). */
__kernel void
lens_copy_strided (__global const ELEM * src, int src_base,
    __global ELEM * dst, int n, int rank, int8 shape, int8 src_strides,
    int span)
{
  int i = get_global_id (0);
  int inner = shape.s0, chunks = (inner + span - 1) / span;
  int row, c0, c1, rem, off = src_base;

  if (i >= (n / inner) * chunks)
    return;
  row = i / chunks;
  c0 = (i - row * chunks) * span;
  c1 = min (c0 + span, inner);
  rem = row;
  UNRAVEL_STRIDED (1) UNRAVEL_STRIDED (2) UNRAVEL_STRIDED (3)
  UNRAVEL_STRIDED (4) UNRAVEL_STRIDED (5) UNRAVEL_STRIDED (6)
  UNRAVEL_STRIDED (7)
  __global const ELEM *in = src + off;
  __global ELEM *out = dst + (long) row * inner;
  if (src_strides.s0 == 1) {
    for (; c0 + 16 <= c1; c0 += 16)
      vstore16 (vload16 (0, in + c0), 0, out + c0);
  } else if (src_strides.s0 == 2) {
    /* the second vector's last element lies past the row's last one: it
     * must not be read past the end of the last row, hence c0 + 16 < c1 */
    for (; c0 + 16 < c1; c0 += 16)
      vstore16 (shuffle2 (vload16 (0, in + 2 * c0), vload16 (0, in + 2 * c0
                  + 16), ELEM16_EVEN), 0, out + c0);
  }
  for (int c = c0; c < c1; c++)
    out[c] = in[c * src_strides.s0];
}

/* dst[b, c, r] = src[b, r, c] for a contiguous src of [batch, rows, cols].
 * Launched 1-D with work-groups of TILE * TILE items, one group per tile,
 * groups ordered (batch, tile row, tile column): a 1-D grid has no
 * per-dimension group-count limit on any device. Reads and writes are both
 * along rows of the tile, through local memory; the extra column avoids
 * bank conflicts on the transposed read. */
__kernel __attribute__ ((reqd_work_group_size (TILE * TILE, 1, 1)))
void
lens_transpose_tiled (__global const ELEM * src, __global ELEM * dst,
    int rows, int cols, int tiles_r, int tiles_c, int batch)
{
  __local ELEM tile[TILE][TILE + 1];
  int group = get_group_id (0);
  int lid = get_local_id (0);
  int tx = lid % TILE, ty = lid / TILE;
  int tc = group % tiles_c;
  int tr = (group / tiles_c) % tiles_r;
  int b = group / (tiles_c * tiles_r);
  int base = b * rows * cols;
  int r = tr * TILE + ty, c = tc * TILE + tx;

  if (b < batch && r < rows && c < cols)
    tile[ty][tx] = src[base + r * cols + c];
  barrier (CLK_LOCAL_MEM_FENCE);
  /* the output tile: row = source column, column = source row */
  r = tc * TILE + ty;
  c = tr * TILE + tx;
  if (b < batch && r < cols && c < rows)
    dst[base + r * rows + c] = tile[tx][ty];
}

/* Maps an output coordinate @c (already shifted by the begin pad) into
 * [0, size) for the border modes; constant mode leaves it out of range. */
inline int
lens_pad_coord (int c, int size, int mode)
{
  if (c >= 0 && c < size)
    return c;
  if (mode == LENS_PAD_EDGE)
    return clamp (c, 0, size - 1);
  if (mode == LENS_PAD_REFLECT) {
    /* reflection without repeating the edge has period 2 * (size - 1) */
    int period = 2 * (size - 1);
    if (period == 0)
      return 0;
    c %= period;
    if (c < 0)
      c += period;
    return c < size ? c : period - c;
  }
  if (mode == LENS_PAD_WRAP) {
    c %= size;
    return c < 0 ? c + size : c;
  }
  return c;
}

#define UNRAVEL_PAD(K) \
  if (K < rank) { \
    int q = rem / out_shape.s##K; \
    int c = rem - q * out_shape.s##K - pads_begin.s##K; \
    c = lens_pad_coord (c, in_shape.s##K, mode); \
    inside = inside && c >= 0 && c < in_shape.s##K; \
    off += c * in_strides.s##K; \
    rem = q; \
  }

/* Pad over runs of output rows (innermost dimension): a work-item takes
 * @span elements of a row, or whole rows up to @span elements; each
 * row's outer dimensions are unravelled and mapped once. In constant
 * mode a row is the pad value around a contiguous copy of the source row
 * (whole vectors where the source is contiguous); the border modes map
 * each column. @span is 1 on GPUs (neighbouring items, coalesced), long
 * on CPUs. The value is @value, or value_src[0] when @value_from_buffer
 * (the constant_value input, read on the device so that the graph needs
 * no host synchronisation). Negative pads crop first: the source is then
 * the kept part, starting at @src_base with @in_shape, and @pads_begin
 * holds only the positive pads. NDRange groups of
 * max (1, span / out_shape.s0) rows x ceil (out_shape.s0 / span). */
__kernel void
lens_pad (__global const ELEM * src, int src_base, __global ELEM * dst,
    int n, int rank, int8 out_shape, int8 in_shape, int8 in_strides,
    int8 pads_begin, int mode, __global const ELEM * value_src,
    int value_from_buffer, ELEM value, int span)
{
  int i = get_global_id (0);
  int width = out_shape.s0, chunks = (width + span - 1) / span;
  int rows = n / width, rows_per_item = max (1, span / width);

  if (i >= (rows + rows_per_item - 1) / rows_per_item * chunks)
    return;

  const int group = i / chunks;
  const int c0 = (i - group * chunks) * span;
  const int c1 = min (c0 + span, width);
  const int in_w = in_shape.s0, begin = pads_begin.s0;
  const ELEM fill = value_from_buffer ? value_src[0] : value;
  const int row_end = min ((group + 1) * rows_per_item, rows);

  for (int row = group * rows_per_item; row < row_end; row++) {
    __global ELEM *out = dst + (long) row * width;
    int rem = row, off = src_base;
    bool inside = true;

    UNRAVEL_PAD (1) UNRAVEL_PAD (2) UNRAVEL_PAD (3) UNRAVEL_PAD (4)
    UNRAVEL_PAD (5) UNRAVEL_PAD (6) UNRAVEL_PAD (7)
    if (!inside) {
      for (int c = c0; c < c1; c++)
        out[c] = fill;
    } else if (mode == LENS_PAD_CONSTANT && in_strides.s0 == 1) {
      /* out[c] = src[off + c - begin] on [lo, hi), the pad value around */
      const int lo = clamp (begin, c0, c1), hi = clamp (begin + in_w, c0, c1);
      __global const ELEM *line = src + off;
      int c = lo;

      for (int p = c0; p < lo; p++)
        out[p] = fill;
      for (; c + 16 <= hi; c += 16)
        vstore16 (vload16 (0, line + c - begin), 0, out + c);
      for (; c < hi; c++)
        out[c] = line[c - begin];
      for (c = hi; c < c1; c++)
        out[c] = fill;
    } else {
      for (int c = c0; c < c1; c++) {
        int x = lens_pad_coord (c - begin, in_w, mode);
        out[c] = x >= 0 && x < in_w ? src[off + x * in_strides.s0] : fill;
      }
    }
  }
}

/* Block edge of lens_transpose_block. */
#define TRANSPOSE_BLOCK 16

#define UNRAVEL_OUTER(K) \
  if (K < outer_rank) { \
    int q = rem / outer_shape.s##K; \
    int c = rem - q * outer_shape.s##K; \
    src_off += c * outer_src.s##K; \
    dst_off += c * outer_dst.s##K; \
    rem = q; \
  }

/* Transpose on CPU devices, innermost output dimension contiguous in the
 * source too: each work-item copies @span elements of one output row,
 * whole vectors at a time, its outer dimensions (@outer_shape with source
 * and destination strides) unravelled once. NDRange rows x
 * ceil (width / span). */
__kernel void
lens_transpose_rows (__global const ELEM * src, __global ELEM * dst,
    int rows, int width, int span, int outer_rank, int8 outer_shape,
    int8 outer_src, int8 outer_dst)
{
  int i = get_global_id (0);
  int chunks = (width + span - 1) / span;
  int rem, src_off = 0, dst_off = 0;

  if (i >= rows * chunks)
    return;

  const int row = i / chunks;
  const int c1 = min ((i - row * chunks) * span + span, width);
  int c = (i - row * chunks) * span;

  rem = row;
  UNRAVEL_OUTER (0) UNRAVEL_OUTER (1) UNRAVEL_OUTER (2) UNRAVEL_OUTER (3)
  UNRAVEL_OUTER (4) UNRAVEL_OUTER (5) UNRAVEL_OUTER (6)

  __global const ELEM *in = src + src_off;
  __global ELEM *out = dst + dst_off;

  for (; c + 16 <= c1; c += 16)
    vstore16 (vload16 (0, in + c), 0, out + c);
  for (; c < c1; c++)
    out[c] = in[c];
}

#define TRANSPOSE_CAT2(a, b) a ## b
#define TRANSPOSE_CAT(a, b) TRANSPOSE_CAT2 (a, b)
#define ELEM8 TRANSPOSE_CAT (ELEM, 8)
#define TRANSPOSED_ROW(K) (ELEM8) (v0.s##K, v1.s##K, v2.s##K, v3.s##K, \
    v4.s##K, v5.s##K, v6.s##K, v7.s##K)

/* out[r * out_stride + c] = in[c * in_stride + r] for an 8 x 8 square:
 * eight vector loads, the transpose in registers, eight vector stores. */
inline void
transpose_square8 (__global const ELEM * in, int in_stride,
    __global ELEM * out, int out_stride)
{
  ELEM8 v0 = vload8 (0, in), v1 = vload8 (0, in + in_stride);
  ELEM8 v2 = vload8 (0, in + 2 * in_stride);
  ELEM8 v3 = vload8 (0, in + 3 * in_stride);
  ELEM8 v4 = vload8 (0, in + 4 * in_stride);
  ELEM8 v5 = vload8 (0, in + 5 * in_stride);
  ELEM8 v6 = vload8 (0, in + 6 * in_stride);
  ELEM8 v7 = vload8 (0, in + 7 * in_stride);

  vstore8 (TRANSPOSED_ROW (0), 0, out);
  vstore8 (TRANSPOSED_ROW (1), 0, out + out_stride);
  vstore8 (TRANSPOSED_ROW (2), 0, out + 2 * out_stride);
  vstore8 (TRANSPOSED_ROW (3), 0, out + 3 * out_stride);
  vstore8 (TRANSPOSED_ROW (4), 0, out + 4 * out_stride);
  vstore8 (TRANSPOSED_ROW (5), 0, out + 5 * out_stride);
  vstore8 (TRANSPOSED_ROW (6), 0, out + 6 * out_stride);
  vstore8 (TRANSPOSED_ROW (7), 0, out + 7 * out_stride);
}

/* Transpose on CPU devices where the innermost output dimension (size
 * @w_size, source stride @w_src_stride) is not the source's contiguous
 * one, output dimension q (size @q_size, destination stride
 * @q_dst_stride) is: each work-item moves a TRANSPOSE_BLOCK square of
 * (q, w), reading along source runs and writing along output rows, both
 * within a few cache lines; a whole square as 8 x 8 squares in vector
 * registers, a partial one element by element. The other dimensions (@outer_shape with
 * source and destination strides) are unravelled once per block. NDRange
 * outer blocks x blocks of q x blocks of w. */
__kernel void
lens_transpose_block (__global const ELEM * src, __global ELEM * dst,
    int outer_n, int q_size, int q_dst_stride, int w_size, int w_src_stride,
    int outer_rank, int8 outer_shape, int8 outer_src, int8 outer_dst)
{
  int i = get_global_id (0);
  int blocks_q = (q_size + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK;
  int blocks_w = (w_size + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK;
  int rem, src_off = 0, dst_off = 0;

  if (i >= outer_n * blocks_q * blocks_w)
    return;

  const int o = i / (blocks_q * blocks_w);
  const int block = i - o * blocks_q * blocks_w;
  const int q0 = block / blocks_w * TRANSPOSE_BLOCK;
  const int w0 = (block - block / blocks_w * blocks_w) * TRANSPOSE_BLOCK;
  const int q1 = min (q0 + TRANSPOSE_BLOCK, q_size);
  const int w1 = min (w0 + TRANSPOSE_BLOCK, w_size);

  rem = o;
  UNRAVEL_OUTER (0) UNRAVEL_OUTER (1) UNRAVEL_OUTER (2) UNRAVEL_OUTER (3)
  UNRAVEL_OUTER (4) UNRAVEL_OUTER (5) UNRAVEL_OUTER (6)
  if (q1 - q0 == TRANSPOSE_BLOCK && w1 - w0 == TRANSPOSE_BLOCK) {
    for (int q = q0; q < q1; q += 8)
      for (int w = w0; w < w1; w += 8)
        transpose_square8 (src + src_off + q + w * w_src_stride,
            w_src_stride, dst + dst_off + q * q_dst_stride + w, q_dst_stride);
    return;
  }
  for (int q = q0; q < q1; q++) {
    __global const ELEM *in = src + src_off + q;
    __global ELEM *out = dst + dst_off + q * q_dst_stride;
    for (int w = w0; w < w1; w++)
      out[w] = in[w * w_src_stride];
  }
}
