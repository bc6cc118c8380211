/* resize.cl: Resize by table lookup. The host (ops/resize.c) maps every
 * output coordinate of every axis back to the input once, in double
 * precision, into an int table; the kernels only gather (nearest) or
 * blend (linear).
 *
 * Plane kernels: the input is [planes, in_h, in_w] with every leading axis
 * unchanged; the table holds 3 ints per output row, then 3 per output
 * column: first index (-1: extrapolate), second index, weight of the
 * second (float bits, linear only). Each output row is split among
 * `chunks` work items that stride through it, so neighbouring items write
 * neighbouring elements (coalesced on GPUs, vectorized by CPU drivers)
 * and the row's source and weights are looked up once per item.
 *
 * N-D kernels use one work item per output element.
 *
 * N-D kernels (nearest with resized leading axes): the table starts with
 * (out size, input stride, offset of its entries) per axis, followed by
 * one input index (-1: extrapolate) per output coordinate of each axis.
 *
 * Nearest copies elements whatever their type: one kernel per element
 * size, the extrapolation value passed as bits of that size. */

#define RESIZE_NEAREST_PLANE(NAME, TYPE) \
__kernel void \
NAME (__global const TYPE * x, __global TYPE * y, \
    __global const int *table, int rows, int chunks, int in_h, int in_w, \
    int out_h, int out_w, TYPE extrapolation) \
{ \
  int i = get_global_id (0); \
  int row, oy, sy; \
  __global const TYPE *src; \
  __global TYPE *dst; \
  if (i >= rows * chunks) \
    return; \
  row = i / chunks; \
  oy = row % out_h; \
  sy = table[3 * oy]; \
  src = x + ((long) (row / out_h) * in_h + max (sy, 0)) * in_w; \
  dst = y + (long) row * out_w; \
  for (int ox = i % chunks; ox < out_w; ox += chunks) { \
    int sx = table[3 * (out_h + ox)]; \
    dst[ox] = (sy < 0 || sx < 0) ? extrapolation : src[sx]; \
  } \
}

/* Nearest doubling of the last two axes, 4-byte elements: a work-item
 * copies input row r of the [rows, in_w] planes to output rows 2r and
 * 2r + 1, each element twice, 8 input elements a vector (the table
 * kernel looked every element up, at about 2 ns each on a CPU). */
__kernel void
lens_resize_nearest_double_4 (__global const uint *x, __global uint *y,
    int rows, int in_w)
{
  int r = get_global_id (0);
  int i = 0;
  __global const uint *src;
  __global uint *top, *bottom;

  if (r >= rows)
    return;
  src = x + (long) r * in_w;
  top = y + (long) r * 4 * in_w;
  bottom = top + 2 * in_w;
  for (; i + 8 <= in_w; i += 8) {
    uint16 twice = shuffle (vload8 (0, src + i),
        (uint16) (0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    vstore16 (twice, 0, top + 2 * i);
    vstore16 (twice, 0, bottom + 2 * i);
  }
  for (; i < in_w; i++) {
    uint v = src[i];
    top[2 * i] = top[2 * i + 1] = bottom[2 * i] = bottom[2 * i + 1] = v;
  }
}

#define RESIZE_NEAREST_ND(NAME, TYPE) \
__kernel void \
NAME (__global const TYPE * x, __global TYPE * y, \
    __global const int *table, int total, int ndim, TYPE extrapolation) \
{ \
  int i = get_global_id (0); \
  int rem; \
  long src = 0; \
  if (i >= total) \
    return; \
  rem = i; \
  for (int d = ndim - 1; d >= 0; d--) { \
    int size = table[3 * d]; \
    int s = table[table[3 * d + 2] + rem % size]; \
    if (s < 0) { \
      y[i] = extrapolation; \
      return; \
    } \
    src += (long) s * table[3 * d + 1]; \
    rem /= size; \
  } \
  y[i] = x[src]; \
}

RESIZE_NEAREST_PLANE (lens_resize_nearest_plane_1, uchar)
RESIZE_NEAREST_PLANE (lens_resize_nearest_plane_2, ushort)
RESIZE_NEAREST_PLANE (lens_resize_nearest_plane_4, uint)
RESIZE_NEAREST_PLANE (lens_resize_nearest_plane_8, ulong)

RESIZE_NEAREST_ND (lens_resize_nearest_nd_1, uchar)
RESIZE_NEAREST_ND (lens_resize_nearest_nd_2, ushort)
RESIZE_NEAREST_ND (lens_resize_nearest_nd_4, uint)
RESIZE_NEAREST_ND (lens_resize_nearest_nd_8, ulong)

/* Bilinear over the last two axes (1-D resizes have one row). */
__kernel void
lens_resize_linear_plane (__global const float *x, __global float *y,
    __global const int *table, int rows, int chunks, int in_h, int in_w,
    int out_h, int out_w, float extrapolation)
{
  int i = get_global_id (0);
  int row, oy, y0;
  __global const float *plane, *top, *bottom;
  __global float *dst;
  float wy;

  if (i >= rows * chunks)
    return;
  row = i / chunks;
  oy = row % out_h;
  y0 = table[3 * oy];
  wy = as_float (table[3 * oy + 2]);
  plane = x + (long) (row / out_h) * in_h * in_w;
  top = plane + max (y0, 0) * in_w;
  bottom = plane + max (table[3 * oy + 1], 0) * in_w;
  dst = y + (long) row * out_w;
  for (int ox = i % chunks; ox < out_w; ox += chunks) {
    __global const int *col = table + 3 * (out_h + ox);
    float wx = as_float (col[2]), upper, lower;
    if (y0 < 0 || col[0] < 0) {
      dst[ox] = extrapolation;
      continue;
    }
    upper = top[col[0]] * (1.0f - wx) + top[col[1]] * wx;
    lower = bottom[col[0]] * (1.0f - wx) + bottom[col[1]] * wx;
    dst[ox] = upper * (1.0f - wy) + lower * wy;
  }
}
