/* storage.cl: float16 storage emulation. lens computes float16 models in
 * float32; an input the model declares float16 is first rounded to what a
 * float16 runtime would receive. */

#define ROUND_HALF_SPAN 16

/* Each lane of @x rounded to the nearest float16 value (ties to even, as
 * a float16 store does; lens_float_to_half in cl/error.c is the
 * reference), as a float. Integer arithmetic on the bits: vstore_half_rte
 * is a library call per element on CPU devices, several times slower than
 * writing the input. */
static float16
round_to_half16 (float16 x)
{
  uint16 bits = as_uint16 (x);
  uint16 mag = bits & 0x7fffffffu;
  /* normal float16 range: keep 10 of the 23 mantissa bits, adding just
   * under half an ulp, plus one when the kept part is odd; a carry moves
   * the exponent up as it should, 65520 and more up to 65536 */
  uint16 normal = (mag + 0xfffu + ((mag >> 13) & 1u)) & ~0x1fffu;
  /* below 2^-14 float16 steps by 2^-24, the ulp of floats in [0.5, 1):
   * adding 0.5 rounds there to nearest even, subtracting it is exact */
  uint16 subnormal = as_uint16 ((as_float16 (mag) + 0.5f) - 0.5f);
  uint16 r = mag < 0x38800000u ? subnormal : normal;

  r = r > 0x477fe000u ? (uint16) 0x7f800000u : r;       /* past 65504: inf */
  r = mag > 0x7f800000u ? mag : r;      /* NaN stays NaN */
  return as_float16 (r | (bits ^ mag));
}

/* x[i] = x[i] rounded to float16, ROUND_HALF_SPAN elements a work-item
 * (the last one the n % ROUND_HALF_SPAN left). NDRange (spans). */
__kernel void
lens_round_to_half (__global float *x, uint n)
{
  uint first = get_global_id (0) * ROUND_HALF_SPAN;

  if (first + ROUND_HALF_SPAN <= n) {
    vstore16 (round_to_half16 (vload16 (0, x + first)), 0, x + first);
    return;
  }
  for (uint i = first; i < n; i++)
    x[i] = round_to_half16 ((float16) x[i]).s0;
}
