/* misc.cl: BatchNormalization (inference) and Tile, for ops/misc.c.
 * (Cast, the third op of that file, is lens_cast_to_<type> in
 * elementwise.cl, where the per-type loads and stores live.)
 *
 * Build option: -DELEM=<uchar|ushort|uint|ulong>, the unsigned type of
 * Tile's element size; Tile moves bits, never values. BatchNormalization is
 * float32 and is built with -DELEM=uint so that it shares the float32 Tile
 * program. */

/* The C references round every step separately; see elementwise.cl. */
#pragma OPENCL FP_CONTRACT OFF

#ifndef ELEM
#error "misc.cl needs -DELEM=<uchar|ushort|uint|ulong>"
#endif

/* y = (x - mean) / sqrt (var + epsilon) * scale + bias, per channel (the
 * dimension after the first); @inner is the element count of one channel
 * of one batch item. The order of operations is the C reference's. */
__kernel void
lens_batch_normalization (__global const float *x, __global const float *scale,
    __global const float *bias, __global const float *mean,
    __global const float *var, __global float *y, int n, int channels,
    int inner, float epsilon)
{
  int i = get_global_id (0);
  int c;

  if (i >= n)
    return;
  c = (i / inner) % channels;
  y[i] = (x[i] - mean[c]) / sqrt (var[c] + epsilon) * scale[c] + bias[c];
}

/* Output element @i reads input element (i_d mod in_shape_d) in every one
 * of the last @rank dimensions (collapsed by the host, at most 8); the
 * input is contiguous. */
__kernel void
lens_tile (__global const ELEM * x, __global ELEM * y, int n, int rank,
    int8 out_shape, int8 in_shape)
{
  int i = get_global_id (0);
  int out_dims[8], in_dims[8];
  int rem = i, offset = 0, stride = 1;

  if (i >= n)
    return;
  vstore8 (out_shape, 0, out_dims);
  vstore8 (in_shape, 0, in_dims);
  for (int d = 7; d >= 8 - rank; d--) {
    int c = rem % out_dims[d];
    rem /= out_dims[d];
    offset += (c % in_dims[d]) * stride;
    stride *= in_dims[d];
  }
  y[i] = x[offset];
}
