/* common.cl: prepended to every lens program. Shared index types,
 * the fused activations (selected at build time with -DACT=n, numbered as
 * LensActivation in lens-private.h) and ONNX integer rounding helpers. */

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LEAKY_RELU 2
#define ACT_SIGMOID 3
#define ACT_SILU 4
#define ACT_HARD_SIGMOID 5
#define ACT_HARD_SWISH 6
#define ACT_CLIP 7

#ifndef ACT
#define ACT ACT_NONE
#endif

/* The logistic function as ONNX Runtime's CPU kernels compute it: Eigen's
 * rational approximation on [-18, 18], with fused multiply-adds. Matching
 * it bit for bit matters: int8 models re-quantize every activation, and a
 * last-bit difference before DynamicQuantizeLinear can move a value to the
 * next quantization step. fma () is correctly rounded on every device.
 * LENS_DEFINE_LOGISTIC (name, T) defines it for float or a float vector
 * type T (the same operations lane by lane, so the same results: kernels
 * with explicit vectors get SIMD code where the scalar function, called per
 * lane, would stay scalar). The constants are splat: OpenCL's vector fma
 * takes vectors only. */
#define LENS_DEFINE_LOGISTIC(name, T) \
inline T \
name (T x) \
{ \
  const T v = select (select (x, (T) 18.0f, x > 18.0f), (T) -18.0f, \
      x < -18.0f); \
  const T s = v * v; \
  T p, q, r; \
 \
  p = fma (s, (T) 4.37031012579801e-11f, (T) 1.15627324459942e-07f); \
  p = fma (p, s, (T) 6.08574864600143e-05f); \
  p = fma (p, s, (T) 8.51377133304701e-03f); \
  p = fma (p, s, (T) 2.48287947061529e-01f); \
  p = p * v; \
  q = fma (s, (T) 6.10247389755681e-13f, (T) 5.76102136993427e-09f); \
  q = fma (q, s, (T) 6.29106785017040e-06f); \
  q = fma (q, s, (T) 1.70198817374094e-03f); \
  q = fma (q, s, (T) 1.16817656904453e-01f); \
  q = fma (q, s, (T) 9.93151921023180e-01f); \
  r = p / q + 0.5f; \
  return select (fmin (fmax (r, 0.0f), 1.0f), x, isnan (x)); \
}

LENS_DEFINE_LOGISTIC (lens_logistic, float)

/* The fused activation ACT of @x (float or a float vector), @logistic the
 * logistic function of its type. alpha/beta: LeakyRelu slope; HardSigmoid
 * alpha, beta; Clip min, max. */
#if ACT == ACT_RELU
#define LENS_ACTIVATION(x, alpha, beta, logistic) fmax ((x), 0.0f)
#elif ACT == ACT_LEAKY_RELU
#define LENS_ACTIVATION(x, alpha, beta, logistic) \
  select ((x) * (alpha), (x), (x) >= 0.0f)
#elif ACT == ACT_SIGMOID
#define LENS_ACTIVATION(x, alpha, beta, logistic) logistic (x)
#elif ACT == ACT_SILU
/* what x * Sigmoid (x) computes, which the fusion replaced */
#define LENS_ACTIVATION(x, alpha, beta, logistic) (x) * logistic (x)
#elif ACT == ACT_HARD_SIGMOID
#define LENS_ACTIVATION(x, alpha, beta, logistic) \
  fmin (fmax ((alpha) * (x) + (beta), 0.0f), 1.0f)
#elif ACT == ACT_HARD_SWISH
#define LENS_ACTIVATION(x, alpha, beta, logistic) \
  (x) * fmin (fmax ((x) * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f)
#elif ACT == ACT_CLIP
#define LENS_ACTIVATION(x, alpha, beta, logistic) \
  fmin (fmax ((x), (alpha)), (beta))
#else
#define LENS_ACTIVATION(x, alpha, beta, logistic) (x)
#endif

inline float
lens_activate (float x, float alpha, float beta)
{
  return LENS_ACTIVATION (x, alpha, beta, lens_logistic);
}

/* The ranges ConvInteger finds and DynamicQuantizeLinear reads
 * (cl/ops/conv.c): a float's bits as an int in the float's order (-0
 * before +0), negative floats with their magnitude bits flipped. Flipping
 * a key again gives the float's bits back. */
inline int
lens_range_flip (int bits)
{
  return bits ^ ((bits >> 31) & 0x7fffffff);
}

/* The even and the odd lanes of the 32 lanes of @a then @b (16 each, or
 * one vector of 32 as both): the stride-2 phases of a row, one
 * two-register permute on a CPU device (clang), where OpenCL's
 * shuffle2 and .even/.odd went lane by lane. Used only under the CPU
 * flags of conv.cl and pool.cl. */
#define LENS_EVEN_LANES_32(a, b) __builtin_shufflevector (a, b, 0, 2, 4, 6, \
    8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define LENS_ODD_LANES_32(a, b) __builtin_shufflevector (a, b, 1, 3, 5, 7, \
    9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)

/* round half to even, as ONNX QuantizeLinear specifies (rint uses the
 * default round-to-nearest-even mode) */
inline float
lens_round_half_even (float x)
{
  return rint (x);
}
