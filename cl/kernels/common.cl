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

/* alpha/beta: LeakyRelu slope; HardSigmoid alpha, beta; Clip min, max */
inline float
lens_activate (float x, float alpha, float beta)
{
#if ACT == ACT_RELU
  return fmax (x, 0.0f);
#elif ACT == ACT_LEAKY_RELU
  return x >= 0.0f ? x : x * alpha;
#elif ACT == ACT_SIGMOID
  return 1.0f / (1.0f + exp (-x));
#elif ACT == ACT_SILU
  return x / (1.0f + exp (-x));
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
