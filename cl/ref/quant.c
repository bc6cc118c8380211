/* quant.c (reference): DynamicQuantizeLinear (opset 11, uint8) in plain C,
 * following the ONNX definition and ONNX Runtime's arithmetic exactly:
 *
 *   x_min = min (0, min (x)), x_max = max (0, max (x))
 *   y_scale = (x_max - x_min) / 255                       (float32)
 *   y_zero_point = round_half_even (clamp (0 - x_min / y_scale, 0, 255))
 *   y = clamp (round_half_even (x / y_scale) + y_zero_point, 0, 255)
 *
 * When x_max == x_min (all of x is zero) the formula divides 0 by 0; ONNX
 * Runtime then uses y_scale = 1, which gives y_zero_point = 0 and y = 0,
 * and so does lens.  NaN elements: fminf / fmaxf leave them out of the
 * range, and they quantize to 0 (fmaxf (NaN, 0) is 0), as in the kernels.
 *
 * With the lens-specific input 1, the range comes from there (two keys:
 * x's minimum and maximum as a ConvInteger found them) instead of from x.
 * An empty range (no element: keys that decode to NaN) counts as 0. */
#include "ref/quant.h"

#include <math.h>
#include <string.h>

int32_t
lens_ref_range_key (float f)
{
  int32_t i;

  memcpy (&i, &f, sizeof i);
  return i < 0 ? i ^ 0x7fffffff : i;
}

float
lens_ref_range_value (int32_t key)
{
  int32_t i = key < 0 ? key ^ 0x7fffffff : key;
  float f;

  memcpy (&f, &i, sizeof f);
  return f;
}

LensStatus
lens_ref_dynamic_quantize_linear (LensNode * node, LensError *err)
{
  const LensTensor *x = node->inputs[0];
  const float *xs = x->host;
  uint8_t *y = node->outputs[0]->host;
  float *y_scale = node->outputs[1]->host;
  uint8_t *y_zero_point = node->outputs[2]->host;
  int64_t n = lens_tensor_numel (x);
  const LensTensor *range = lens_node_input (node, 1);
  float x_min = 0.0f, x_max = 0.0f, scale, zero_point;

  if (range != NULL) {
    const int32_t *keys = range->host;
    x_min = fminf (x_min, lens_ref_range_value (keys[0]));
    x_max = fmaxf (x_max, lens_ref_range_value (keys[1]));
  }
  for (int64_t i = 0; range == NULL && i < n; i++) {
    x_min = fminf (x_min, xs[i]);
    x_max = fmaxf (x_max, xs[i]);
  }
  scale = x_max == x_min ? 1.0f : (x_max - x_min) / 255.0f;
  zero_point = rintf (fminf (fmaxf (0.0f - x_min / scale, 0.0f), 255.0f));
  *y_scale = scale;
  *y_zero_point = (uint8_t) zero_point;
  for (int64_t i = 0; i < n; i++)
    y[i] = (uint8_t) fminf (fmaxf (rintf (xs[i] / scale) + zero_point, 0.0f),
        255.0f);
  return LENS_OK;
}
