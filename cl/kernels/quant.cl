/* quant.cl: DynamicQuantizeLinear (float32 -> uint8, with the scale and
 * zero point computed on the device; cl/ref/quant.c has the formulas).
 *
 * Two kernels, no host round trip (OpenCL 1.2 has no global barrier, so
 * the range must be known before the first element is quantized):
 *   lens_dql_minmax_partial  each of a few work-groups reduces one
 *                            contiguous chunk of x to a (min, max) pair in
 *                            a scratch buffer;
 *   lens_dql_quantize        every work-group first re-reduces those few
 *                            pairs itself (cheaper than a launch of its
 *                            own), derives y_scale and y_zero_point, then
 *                            quantizes its chunk; work-group 0 also writes
 *                            y_scale and y_zero_point.
 * Both work on float16 vectors (one 64-byte line, one AVX-512 register on a
 * CPU) with a scalar tail of n % 16 elements done by work-item 0.  Work-
 * group g owns vectors [g * chunk, (g + 1) * chunk); its work-items take
 * them in turn (coalesced on a GPU; a CPU device runs one work-item per
 * group, so its walk is plain sequential).
 *
 * Results must match ONNX Runtime bit for bit, so every division is the
 * correctly rounded IEEE one (lens_div_rn, dql_div_rn16): OpenCL 1.2
 * allows plain float division an error of 2.5 ulp, and a quotient one ulp
 * off can round to another integer.
 *
 * NaN: fmin / fmax skip NaN elements in the range; a NaN element
 * quantizes to 0 (rint keeps the NaN, and fmax (NaN, 0) is 0).
 *
 * Where a ConvInteger that produced x already found its range (its range
 * output, cl/ops/conv.c), lens_dql_quantize alone runs, on that one pair of
 * order-preserving int keys (-DDQL_RANGE_KEYS=1) instead of the partials.
 *
 * Build options: -DDQL_GROUP (work-group size, a power of two, set and read
 * back by the host), -DDQL_RANGE_KEYS. */

#ifndef DQL_GROUP
#define DQL_GROUP 256
#endif
#ifndef DQL_RANGE_KEYS
#define DQL_RANGE_KEYS 0
#endif

/* Element @i of the (min, max) pairs: a float, or with DQL_RANGE_KEYS a
 * float's key (lens_range_flip in common.cl; the empty range's keys come
 * back as NaN, which fmin and fmax skip). */
inline float
dql_partial (__global const float *partial, int i)
{
#if DQL_RANGE_KEYS
  return as_float (lens_range_flip (as_int (partial[i])));
#else
  return partial[i];
#endif
}

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

/* any lane of m set (its sign bit), in a few vector ors: PoCL's any ()
 * tests the pieces one by one */
inline int
dql_any16 (int16 m)
{
  const int8 a = m.lo | m.hi;
  const int4 b = a.lo | a.hi;
  const int2 c = b.lo | b.hi;

  return (c.x | c.y) < 0;
}

/* One step of lens_div_rn's loop on 16 lanes: where go is set, move q one
 * ulp toward the exact quotient if that shrinks the remainder r.  Returns
 * the lanes that moved (those that go on).  nextafter is done on the bit
 * pattern: for a finite nonzero q, +1 moves away from zero and -1 toward it
 * (FLT_MAX + 1 ulp is infinity, as nextafter gives). */
inline int16
dql_div_step16 (float16 a, float b, float16 *q, float16 *r, int16 go)
{
  go &= *r != 0.0f;
  /* toward +infinity where (r > 0) == (b > 0); r != 0 here */
  const int16 up = b > 0.0f ? *r > 0.0f : ~(*r > 0.0f);
  const int16 away = ~(up ^ (*q > 0.0f));
  const float16 q2 = as_float16 (as_int16 (*q) + select ((int16) (-1),
          (int16) 1, away));
  const float16 r2 = fma (-q2, (float16) b, a);
  const int16 better = go & ~(fabs (r2) >= fabs (*r));

  *q = select (*q, q2, better);
  *r = select (*r, r2, better);
  return better;
}

/* lens_div_rn on 16 lanes at once, step for step the same (a lane stops
 * where the scalar loop would break, and stays stopped), but branch-free
 * per lane so that it stays in vector registers.  With a correctly rounded
 * hardware division the first step is rejected in every lane, so the
 * remaining ones cost a single test. */
inline float16
dql_div_rn16 (float16 a, float b)
{
  float16 q = a / b;
  float16 r = fma (-q, (float16) b, a);
  int16 go = isfinite (q) & (q != 0.0f);

  go = dql_div_step16 (a, b, &q, &r, go);
  for (int i = 1; i < 4 && dql_any16 (go); i++)
    go = dql_div_step16 (a, b, &q, &r, go);
  return q;
}

/* rint (q) where that decides the result: adding and subtracting 1.5 * 2^23
 * rounds to an integer, ties to even, exactly when |q| < 2^22 (the sum then
 * lies in [2^23, 2^24), where the float spacing is 1).  Larger |q| may come
 * out rounded otherwise, but rounding is monotonic, so they keep their sign
 * and a magnitude of at least 2^22 and saturate to the same uint8 as rint's
 * (infinities and NaN pass through unchanged).  In the kernel |q| stays
 * near 255 anyway unless y_scale is 0 or subnormal.  PoCL's rint is a long
 * software sequence; OpenCL C does not reassociate by default, so the
 * compiler keeps the two roundings. */
inline float16
dql_rint16 (float16 q)
{
  const float16 magic = 0x1.8p23f;

  return (q + magic) - magic;
}

/* The quotient a / b as far as rounding it to an integer goes, for @inv
 * = 1 / b (0: unusable): a * inv is at most 3 * 2^-24 |q| from the
 * correctly rounded quotient q, so where it lies further than that from
 * every half-integer both round to the same integer, and only a vector
 * with a lane that close (rare, bar exact ties) pays for dql_div_rn16's
 * division. The margin |a * inv| * 2^-19 is larger than that error; for
 * |a * inv| of 2^22 or more, where dql_rint16 gives up, both saturate
 * alike. NaN lanes stay NaN either way. */
inline float16
dql_quotient16 (float16 a, float b, float inv)
{
  if (inv != 0.0f) {
    const float16 q = a * inv;
    const float16 off = fabs (q - dql_rint16 (q));
    if (!dql_any16 (off > 0.5f - fabs (q) * 0x1p-19f))
      return q;
  }
  return dql_div_rn16 (a, b);
}

#if DQL_GROUP > 1
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
#endif

inline float
dql_min16 (float16 v)
{
  float8 a = fmin (v.lo, v.hi);
  float4 b = fmin (a.lo, a.hi);
  float2 c = fmin (b.lo, b.hi);
  return fmin (c.lo, c.hi);
}

inline float
dql_max16 (float16 v)
{
  float8 a = fmax (v.lo, v.hi);
  float4 b = fmax (a.lo, a.hi);
  float2 c = fmax (b.lo, b.hi);
  return fmax (c.lo, c.hi);
}

/* partial[2 g], partial[2 g + 1] = min, max of work-group g's chunk of
 * `chunk` float16 vectors; both start at 0 since the quantization range
 * always includes zero (so an empty chunk is harmless). */
__kernel __attribute__ ((reqd_work_group_size (DQL_GROUP, 1, 1)))
void
lens_dql_minmax_partial (__global const float *x, long n, long chunk,
    __global float *partial)
{
#if DQL_GROUP > 1
  /* OpenCL allows __local variables only at a kernel's outermost scope */
  __local float lmin[DQL_GROUP], lmax[DQL_GROUP];
#endif
  const int lid = get_local_id (0);
  const long n_vec = n / 16;
  const long begin = get_group_id (0) * chunk;
  const long end = min (begin + chunk, n_vec);
  /* two accumulator pairs: the fmin / fmax chains are the loop's latency */
  float16 mn0 = 0.0f, mx0 = 0.0f, mn1 = 0.0f, mx1 = 0.0f;
  float mn, mx;
  long v = begin + lid;

  for (; v + DQL_GROUP < end; v += 2 * DQL_GROUP) {
    const float16 a = ((__global const float16 *) x)[v];
    const float16 b = ((__global const float16 *) x)[v + DQL_GROUP];
    mn0 = fmin (mn0, a);
    mx0 = fmax (mx0, a);
    mn1 = fmin (mn1, b);
    mx1 = fmax (mx1, b);
  }
  if (v < end) {
    const float16 a = ((__global const float16 *) x)[v];
    mn0 = fmin (mn0, a);
    mx0 = fmax (mx0, a);
  }
  mn = dql_min16 (fmin (mn0, mn1));
  mx = dql_max16 (fmax (mx0, mx1));
  if (get_global_id (0) == 0)
    for (long i = n_vec * 16; i < n; i++) {
      mn = fmin (mn, x[i]);
      mx = fmax (mx, x[i]);
    }
#if DQL_GROUP > 1
  lmin[lid] = mn;
  lmax[lid] = mx;
  dql_reduce_local (lmin, lmax);
  mn = lmin[0];
  mx = lmax[0];
#endif
  if (lid == 0) {
    partial[2 * get_group_id (0)] = mn;
    partial[2 * get_group_id (0) + 1] = mx;
  }
}

/* y = quantized x over work-group g's chunk (as above), from the range of
 * the n_partials pairs of lens_dql_minmax_partial. */
__kernel __attribute__ ((reqd_work_group_size (DQL_GROUP, 1, 1)))
void
lens_dql_quantize (__global const float *x, long n, long chunk,
    __global const float *partial, int n_partials,
    __global float *y_scale, __global uchar *y_zero_point,
    __global uchar *y)
{
#if DQL_GROUP > 1
  /* OpenCL allows __local variables only at a kernel's outermost scope */
  __local float lmin[DQL_GROUP], lmax[DQL_GROUP];
#endif
  const int lid = get_local_id (0);
  const long n_vec = n / 16;
  const long begin = get_group_id (0) * chunk;
  const long end = min (begin + chunk, n_vec);
  float x_min = 0.0f, x_max = 0.0f, scale, zero_point, inverse;
  uchar zp;

  for (int i = lid; i < n_partials; i += DQL_GROUP) {
    x_min = fmin (x_min, dql_partial (partial, 2 * i));
    x_max = fmax (x_max, dql_partial (partial, 2 * i + 1));
  }
#if DQL_GROUP > 1
  lmin[lid] = x_min;
  lmax[lid] = x_max;
  dql_reduce_local (lmin, lmax);
  x_min = lmin[0];
  x_max = lmax[0];
#endif
  /* all of x is zero: ONNX Runtime's scale 1 (zero point and y are 0) */
  scale = x_max == x_min ? 1.0f : lens_div_rn (x_max - x_min, 255.0f);
  zp = (uchar) rint (clamp (0.0f - lens_div_rn (x_min, scale), 0.0f,
          255.0f));
  /* y adds the zero point as read back from y_zero_point */
  zero_point = zp;
  /* 0 where x * (1 / scale) could differ from x / scale by more than
   * dql_quotient16 allows for (1 / scale overflows for a subnormal
   * scale) */
  inverse = 1.0f / scale;
  if (!isfinite (inverse) || !isnormal (scale))
    inverse = 0.0f;
  if (get_global_id (0) == 0) {
    y_scale[0] = scale;
    y_zero_point[0] = zp;
  }

  /* buffers start aligned to CL_DEVICE_MEM_BASE_ADDR_ALIGN (and the host
   * takes no views), so whole vectors load and store in one piece (vstore16
   * becomes 16 byte stores on PoCL) */
  for (long v = begin + lid; v < end; v += DQL_GROUP) {
    const float16 a = ((__global const float16 *) x)[v];
    const float16 q = dql_rint16 (dql_quotient16 (a, scale, inverse)) +
        zero_point;
    ((__global uchar16 *) y)[v] =
        convert_uchar16 (fmin (fmax (q, 0.0f), 255.0f));
  }
  if (get_global_id (0) == 0)
    for (long i = n_vec * 16; i < n; i++) {
      const float q = rint (lens_div_rn (x[i], scale)) + zero_point;
      y[i] = (uchar) fmin (fmax (q, 0.0f), 255.0f);
    }
}
