/* activation.c: the activations that graph rewrites fuse into producers
 * (Conv), parsed from a node's lens-specific attributes, and their plain-C
 * formulas. The kernels' versions are lens_activate () in common.cl. */
#include "lens-private.h"

#include <math.h>
#include <string.h>

static const struct
{
  const char *name;
  LensActivationKind kind;
  float alpha, beta;            /* defaults, as ONNX gives them */
} activations[] = {
  { "Relu", LENS_ACT_RELU, 0, 0 },
  { "LeakyRelu", LENS_ACT_LEAKY_RELU, 0.01f, 0 },
  { "Sigmoid", LENS_ACT_SIGMOID, 0, 0 },
  { "SiLU", LENS_ACT_SILU, 0, 0 },
  { "HardSigmoid", LENS_ACT_HARD_SIGMOID, 0.2f, 0.5f },
  { "HardSwish", LENS_ACT_HARD_SWISH, 0, 0 },
  { "Clip", LENS_ACT_CLIP, -INFINITY, INFINITY },
};

LensStatus
lens_activation_from_node (const LensNode * node, LensActivation * act,
    LensError *err)
{
  const char *name = lens_node_attr_string (node, "activation", NULL);

  act->kind = LENS_ACT_NONE;
  act->alpha = act->beta = 0;
  if (name == NULL)
    return LENS_OK;
  for (guint i = 0; i < G_N_ELEMENTS (activations); i++) {
    if (strcmp (activations[i].name, name) == 0) {
      act->kind = activations[i].kind;
      act->alpha = lens_node_attr_float (node, "activation_alpha",
          activations[i].alpha);
      act->beta = lens_node_attr_float (node, "activation_beta",
          activations[i].beta);
      return LENS_OK;
    }
  }
  return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
      "%s: fused activation '%s' is not supported", node->op_type, name);
}

float
lens_activation_apply (const LensActivation * act, float x)
{
  switch (act->kind) {
    case LENS_ACT_RELU:
      return x > 0 ? x : 0;
    case LENS_ACT_LEAKY_RELU:
      return x >= 0 ? x : x * act->alpha;
    case LENS_ACT_SIGMOID:
      return lens_logistic (x);
    case LENS_ACT_SILU:
      return x * lens_logistic (x);
    case LENS_ACT_HARD_SIGMOID:
      return fminf (fmaxf (act->alpha * x + act->beta, 0), 1);
    case LENS_ACT_HARD_SWISH:
      return x * fminf (fmaxf (x / 6.0f + 0.5f, 0), 1);
    case LENS_ACT_CLIP:
      return fminf (fmaxf (x, act->alpha), act->beta);
    case LENS_ACT_NONE:
    default:
      return x;
  }
}

float
lens_logistic (float x)
{
  const float v = x < -18.0f ? -18.0f : (x > 18.0f ? 18.0f : x);
  const float s = v * v;
  float p, q, r;

  /* the same steps as lens_logistic () in kernels/common.cl */
  p = fmaf (s, 4.37031012579801e-11f, 1.15627324459942e-07f);
  p = fmaf (p, s, 6.08574864600143e-05f);
  p = fmaf (p, s, 8.51377133304701e-03f);
  p = fmaf (p, s, 2.48287947061529e-01f);
  p = p * v;
  q = fmaf (s, 6.10247389755681e-13f, 5.76102136993427e-09f);
  q = fmaf (q, s, 6.29106785017040e-06f);
  q = fmaf (q, s, 1.70198817374094e-03f);
  q = fmaf (q, s, 1.16817656904453e-01f);
  q = fmaf (q, s, 9.93151921023180e-01f);
  r = p / q + 0.5f;
  return isnan (x) ? x : fminf (fmaxf (r, 0.0f), 1.0f);
}
