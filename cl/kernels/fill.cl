/* fill.cl: sets every element of a buffer to one bit pattern. Used to
 * initialize outputs (padding, scatter targets) by element size. */

__kernel void
lens_fill_u8 (__global uchar *dst, uchar value, uint n)
{
  uint i = get_global_id (0);
  if (i < n)
    dst[i] = value;
}

__kernel void
lens_fill_u32 (__global uint *dst, uint value, uint n)
{
  uint i = get_global_id (0);
  if (i < n)
    dst[i] = value;
}
