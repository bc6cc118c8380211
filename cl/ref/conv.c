/* conv.c (reference): Conv and ConvInteger in plain C, one output element
 * at a time, straight from the ONNX definition:
 *
 *   y[n, oc, oy, ox] = B[oc] + sum over ic in oc's group, ky, kx of
 *       x[n, ic, oy * sh - pad_top + ky * dh, ox * sw - pad_left + kx * dw]
 *       * W[oc, ic - group_start, ky, kx]
 *
 * with x read as 0 (ConvInteger: as x_zero_point) outside the input. The
 * geometry comes from LensConvParams, resolved by reshape.
 *
 * A ConvInteger with the fused epilogue (input 4, the scale s; see
 * cl/ops/conv.c) gives act ((float) y * s + B[oc]) in float, in the order
 * and roundings of the Cast, Mul, Add (and activation) it replaced, plus
 * the residual (input 7) if any, and with a second output the range of
 * those floats (lens_ref_range_key). */
#include "ref/conv.h"
#include "ref/quant.h"

#include <math.h>

/* Sum of products over one output element's receptive field, for an
 * element reader @get_x/@get_w (float or zero-point-adjusted integers). */
typedef double (*ReadFn) (const LensTensor * t, int64_t i, int64_t zp);

static double
read_float (const LensTensor * t, int64_t i, int64_t zp)
{
  return ((const float *) t->host)[i];
}

static double
read_int8 (const LensTensor * t, int64_t i, int64_t zp)
{
  int64_t v = t->dtype == LENS_DTYPE_INT8 ? ((const int8_t *) t->host)[i] :
      ((const uint8_t *) t->host)[i];
  return (double) (v - zp);
}

static double
receptive_sum (const LensConvParams * p, const LensTensor * x,
    const LensTensor * w, ReadFn read, int64_t x_zp, int64_t w_zp, int n,
    int oc, int oy, int ox)
{
  int g = oc / p->out_per_group;
  double sum = 0;

  for (int icg = 0; icg < p->in_per_group; icg++) {
    int ic = g * p->in_per_group + icg;
    for (int ky = 0; ky < p->k_h; ky++) {
      int iy = oy * p->stride_h - p->pad_top + ky * p->dil_h;
      if (iy < 0 || iy >= p->in_h)
        continue;               /* padding: x - x_zp is 0 there */
      for (int kx = 0; kx < p->k_w; kx++) {
        int ix = ox * p->stride_w - p->pad_left + kx * p->dil_w;
        int64_t xi, wi;
        if (ix < 0 || ix >= p->in_w)
          continue;
        xi = (((int64_t) n * p->in_c + ic) * p->in_h + iy) * p->in_w + ix;
        wi = (((int64_t) oc * p->in_per_group + icg) * p->k_h + ky) *
            p->k_w + kx;
        sum += read (x, xi, x_zp) * read (w, wi, w_zp);
      }
    }
  }
  return sum;
}

LensStatus
lens_ref_conv (LensNode * node, LensError *err)
{
  const LensConvParams *p = node->priv;
  const LensTensor *x = node->inputs[0], *w = node->inputs[1];
  const LensTensor *b = lens_node_input (node, 2);
  float *y = node->outputs[0]->host;

  for (int n = 0; n < p->batch; n++)
    for (int oc = 0; oc < p->out_c; oc++)
      for (int oy = 0; oy < p->out_h; oy++)
        for (int ox = 0; ox < p->out_w; ox++) {
          double sum = receptive_sum (p, x, w, read_float, 0, 0, n, oc, oy,
              ox);
          float v = (float) sum;
          if (b != NULL)
            v += ((const float *) b->host)[oc];
          *y++ = lens_activation_apply (&p->act, v);
        }
  return LENS_OK;
}

LensStatus
lens_ref_conv_integer (LensNode * node, LensError *err)
{
  const LensConvParams *p = node->priv;
  const LensTensor *x = node->inputs[0], *w = node->inputs[1];
  const LensTensor *x_zp = lens_node_input (node, 2);
  const LensTensor *w_zp = lens_node_input (node, 3);
  const LensTensor *scale = lens_node_input (node, 4);
  const LensTensor *bias = lens_node_input (node, 5);
  const LensTensor *scale2 = lens_node_input (node, 6);
  LensTensor *range = lens_node_output (node, 1);
  const LensTensor *residual = lens_node_input (node, 7);
  int32_t *y = node->outputs[0]->host;
  float *fy = node->outputs[0]->host;
  int64_t x_zero = x_zp ? lens_tensor_get_i64 (x_zp, 0) : 0;
  float s = scale ? ((const float *) scale->host)[0] : 0.0f;
  float lo = INFINITY, hi = -INFINITY;

  /* the Mul of the two scales folded into the node: rounded once */
  if (scale2 != NULL)
    s = s * ((const float *) scale2->host)[0];

  for (int n = 0; n < p->batch; n++)
    for (int oc = 0; oc < p->out_c; oc++) {
      /* w_zero_point is a scalar or one value per output channel */
      int64_t w_zero = 0;
      if (w_zp != NULL)
        w_zero = lens_tensor_get_i64 (w_zp,
            lens_tensor_numel (w_zp) == 1 ? 0 : oc);
      for (int oy = 0; oy < p->out_h; oy++)
        for (int ox = 0; ox < p->out_w; ox++) {
          int32_t acc = (int32_t) receptive_sum (p, x, w, read_int8, x_zero,
              w_zero, n, oc, oy, ox);
          float v;
          if (scale == NULL) {
            *y++ = acc;
            continue;
          }
          /* one rounding per statement, as the separate ops */
          v = (float) acc;
          v = v * s;
          if (bias != NULL)
            v = v + ((const float *) bias->host)[oc];
          v = lens_activation_apply (&p->act, v);
          if (residual != NULL)
            v = v + ((const float *) residual->host)[fy -
                (float *) node->outputs[0]->host];
          lo = fminf (lo, v);
          hi = fmaxf (hi, v);
          *fy++ = v;
        }
    }
  /* the range output: of this node's y alone (the executor's merging of
   * several producers into one range is not modelled here) */
  if (range != NULL) {
    ((int32_t *) range->host)[0] = lens_ref_range_key (lo);
    ((int32_t *) range->host)[1] = lens_ref_range_key (hi);
  }
  return LENS_OK;
}
