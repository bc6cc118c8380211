/* quant.cl: DynamicQuantizeLinear (float32 -> uint8, with the scale and
 * zero point computed on the device; cl/ref/quant.c has the formulas).
 *
 * Three kernels, no host round trip:
 *   lens_dql_minmax_partial  each work-group reduces a strided share of x
 *                            to one (min, max) pair in a scratch buffer;
 *   lens_dql_params          one work-group reduces those pairs and writes
 *                            y_scale and y_zero_point;
 *   lens_dql_quantize        reads y_scale / y_zero_point from their
 *                            buffers and quantizes every element.
 *
 * Results must match ONNX Runtime bit for bit, so every division is the
 * correctly rounded IEEE one (lens_div_rn): OpenCL 1.2 allows plain float
 * division an error of 2.5 ulp, and a quotient one ulp off can round to
 * another integer.
 *
 * Build option: -DDQL_GROUP (work-group size of the reductions, a power of
 * two, set and read back by the host). */

#ifndef DQL_GROUP
#define DQL_GROUP 256
#endif

/* a / b rounded to nearest: start from the hardware quotient and step it
 * one ulp at a time toward the exact one while that shrinks the exact
 * remainder a - q * b (fma computes it with a single rounding, exact here).
 * The exact quotient of two floats never lies halfway between two floats,
 * so the nearest one is unique. */
inline float
lens_div_rn (float a, float b)
{
  float q = a / b;

  if (!isfinite (q) || q == 0.0f)
    return q;
  float r = fma (-q, b, a);
  for (int i = 0; i < 4 && r != 0.0f; i++) {
    /* the exact quotient is q + r / b */
    const float toward = (r > 0.0f) == (b > 0.0f) ? INFINITY : -INFINITY;
    const float q2 = nextafter (q, toward);
    const float r2 = fma (-q2, b, a);
    if (fabs (r2) >= fabs (r))
      break;
    q = q2;
    r = r2;
  }
  return q;
}

/* Reduces (lmin, lmax) of the work-group into element 0. */
inline void
dql_reduce_local (__local float *lmin, __local float *lmax)
{
  const int lid = get_local_id (0);

  for (int s = DQL_GROUP / 2; s > 0; s >>= 1) {
    barrier (CLK_LOCAL_MEM_FENCE);
    if (lid < s) {
      lmin[lid] = fmin (lmin[lid], lmin[lid + s]);
      lmax[lid] = fmax (lmax[lid], lmax[lid + s]);
    }
  }
  barrier (CLK_LOCAL_MEM_FENCE);
}

/* partial[2 g], partial[2 g + 1] = min, max of work-group g's share; both
 * start at 0 since the quantization range always includes zero. */
__kernel __attribute__ ((reqd_work_group_size (DQL_GROUP, 1, 1)))
void
lens_dql_minmax_partial (__global const float *x, long n,
    __global float *partial)
{
  __local float lmin[DQL_GROUP], lmax[DQL_GROUP];
  const int lid = get_local_id (0);
  const long step = get_global_size (0);
  float mn = 0.0f, mx = 0.0f;

  for (long i = get_global_id (0); i < n; i += step) {
    const float v = x[i];
    mn = fmin (mn, v);
    mx = fmax (mx, v);
  }
  lmin[lid] = mn;
  lmax[lid] = mx;
  dql_reduce_local (lmin, lmax);
  if (lid == 0) {
    partial[2 * get_group_id (0)] = lmin[0];
    partial[2 * get_group_id (0) + 1] = lmax[0];
  }
}

__kernel __attribute__ ((reqd_work_group_size (DQL_GROUP, 1, 1)))
void
lens_dql_params (__global const float *partial, int n_partials,
    __global float *y_scale, __global uchar *y_zero_point)
{
  __local float lmin[DQL_GROUP], lmax[DQL_GROUP];
  const int lid = get_local_id (0);
  float mn = 0.0f, mx = 0.0f;

  for (int i = lid; i < n_partials; i += DQL_GROUP) {
    mn = fmin (mn, partial[2 * i]);
    mx = fmax (mx, partial[2 * i + 1]);
  }
  lmin[lid] = mn;
  lmax[lid] = mx;
  dql_reduce_local (lmin, lmax);
  if (lid == 0) {
    const float x_min = lmin[0], x_max = lmax[0];
    /* all of x is zero: ONNX Runtime's scale 1 (zero point and y are 0) */
    const float scale = x_max == x_min ? 1.0f :
        lens_div_rn (x_max - x_min, 255.0f);
    const float zero_point = 0.0f - lens_div_rn (x_min, scale);

    y_scale[0] = scale;
    y_zero_point[0] = (uchar) rint (clamp (zero_point, 0.0f, 255.0f));
  }
}

__kernel void
lens_dql_quantize (__global const float *x, long n,
    __global const float *y_scale, __global const uchar *y_zero_point,
    __global uchar *y)
{
  const long i = get_global_id (0);

  if (i >= n)
    return;
  const float q = rint (lens_div_rn (x[i], y_scale[0])) + y_zero_point[0];
  y[i] = (uchar) clamp (q, 0.0f, 255.0f);
}
