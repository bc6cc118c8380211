/* storage.cl: float16 storage emulation. lens computes float16 models in
 * float32; an input the model declares float16 is first rounded to what a
 * float16 runtime would receive. */

__kernel void
lens_round_to_half (__global float *x, uint n)
{
  uint i = get_global_id (0);
  ushort bits;

  if (i >= n)
    return;
  /* round to nearest even, as a float16 store does */
  vstore_half_rte (x[i], 0, (__private half *) &bits);
  x[i] = vload_half (0, (__private const half *) &bits);
}
