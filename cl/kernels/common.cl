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
 * next quantization step. fma () is correctly rounded on every device. */
inline float
lens_logistic (float x)
{
  const float v = x < -18.0f ? -18.0f : (x > 18.0f ? 18.0f : x);
  const float s = v * v;
  float p, q, r;

  p = fma (s, 4.37031012579801e-11f, 1.15627324459942e-07f);
  p = fma (p, s, 6.08574864600143e-05f);
  p = fma (p, s, 8.51377133304701e-03f);
  p = fma (p, s, 2.48287947061529e-01f);
  p = p * v;
  q = fma (s, 6.10247389755681e-13f, 5.76102136993427e-09f);
  q = fma (q, s, 6.29106785017040e-06f);
  q = fma (q, s, 1.70198817374094e-03f);
  q = fma (q, s, 1.16817656904453e-01f);
  q = fma (q, s, 9.93151921023180e-01f);
  r = p / q + 0.5f;
  return isnan (x) ? x : fmin (fmax (r, 0.0f), 1.0f);
}

/* alpha/beta: LeakyRelu slope; HardSigmoid alpha, beta; Clip min, max */
inline float
lens_activate (float x, float alpha, float beta)
{
#if ACT == ACT_RELU
  return fmax (x, 0.0f);
#elif ACT == ACT_LEAKY_RELU
  return x >= 0.0f ? x : x * alpha;
#elif ACT == ACT_SIGMOID
  return lens_logistic (x);
#elif ACT == ACT_SILU
  /* what x * Sigmoid (x) computes, which the fusion replaced */
  return x * lens_logistic (x);
#elif ACT == ACT_HARD_SIGMOID
  return fmin (fmax (alpha * x + beta, 0.0f), 1.0f);
#elif ACT == ACT_HARD_SWISH
  return x * fmin (fmax (x * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f);
#elif ACT == ACT_CLIP
  return fmin (fmax (x, alpha), beta);
#else
  return x;
#endif
}

/* round half to even, as ONNX QuantizeLinear specifies (rint uses the
 * default round-to-nearest-even mode) */
inline float
lens_round_half_even (float x)
{
  return rint (x);
}
