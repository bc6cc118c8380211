/* ref/resize.c: the ONNX Resize coordinate formulas (shared with the
 * table builder of ops/resize.c) and the plain-C reference: every output
 * element maps each axis back to the input and picks the nearest element,
 * or interpolates linearly over the 2^rank surrounding elements in double
 * precision. */
#include "ref/resize.h"

#include <math.h>
#include <string.h>

double
lens_ref_resize_source (const LensResizeGeometry * g, int d, int64_t x,
    gboolean * outside)
{
  double scale = g->scale[d], length = g->length_resized[d];
  double in = (double) g->in[d], xo;

  *outside = FALSE;
  switch (g->coordinates) {
    case LENS_RESIZE_ASYMMETRIC:
      return x / scale;
    case LENS_RESIZE_PYTORCH_HALF_PIXEL:
      return g->out[d] > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case LENS_RESIZE_TF_HALF_PIXEL_FOR_NN:
      return (x + 0.5) / scale;
    case LENS_RESIZE_ALIGN_CORNERS:
      return length == 1.0 ? 0.0 : x * (in - 1) / (length - 1);
    case LENS_RESIZE_TF_CROP_AND_RESIZE:
      if (length == 1.0)
        xo = (g->roi_end[d] - g->roi_start[d]) * (in - 1) / 2;
      else
        xo = x * (g->roi_end[d] - g->roi_start[d]) * (in - 1) / (length - 1);
      xo += g->roi_start[d] * (in - 1);
      *outside = xo < 0 || xo > in - 1;
      return xo;
    case LENS_RESIZE_HALF_PIXEL:
    default:
      return (x + 0.5) / scale - 0.5;
  }
}

int64_t
lens_ref_resize_nearest (const LensResizeGeometry * g, int d, int64_t x)
{
  gboolean outside;
  double xo = lens_ref_resize_source (g, d, x, &outside), r;

  if (outside)
    return -1;
  switch (g->nearest_mode) {
    case LENS_RESIZE_ROUND_PREFER_CEIL:
      r = floor (xo + 0.5);
      break;
    case LENS_RESIZE_FLOOR:
      r = floor (xo);
      break;
    case LENS_RESIZE_CEIL:
      r = ceil (xo);
      break;
    case LENS_RESIZE_ROUND_PREFER_FLOOR:
    default:
      r = ceil (xo - 0.5);
      break;
  }
  return (int64_t) CLAMP (r, 0.0, (double) (g->in[d] - 1));
}

gboolean
lens_ref_resize_linear (const LensResizeGeometry * g, int d, int64_t x,
    int64_t * i0, int64_t * i1, double *weight)
{
  gboolean outside;
  double xo = lens_ref_resize_source (g, d, x, &outside);

  if (outside)
    return FALSE;
  xo = CLAMP (xo, 0.0, (double) (g->in[d] - 1));
  *i0 = (int64_t) floor (xo);
  *i1 = MIN (*i0 + 1, g->in[d] - 1);
  *weight = xo - *i0;
  return TRUE;
}

void
lens_ref_resize (const LensTensor * x, LensTensor * y,
    const LensResizeGeometry * g)
{
  int nd = g->ndim;
  int64_t in_stride[LENS_MAX_DIMS], total = lens_tensor_numel (y);
  size_t elem = lens_dtype_size (x->dtype);

  for (int d = nd - 1; d >= 0; d--)
    in_stride[d] = d == nd - 1 ? 1 : in_stride[d + 1] * g->in[d + 1];
  for (int64_t i = 0; i < total; i++) {
    int64_t coord[LENS_MAX_DIMS], i0[LENS_MAX_DIMS], i1[LENS_MAX_DIMS];
    double w[LENS_MAX_DIMS], sum = 0;
    gboolean extrapolate = FALSE;
    int64_t rem = i, src = 0;

    for (int d = nd - 1; d >= 0; d--) {
      coord[d] = rem % g->out[d];
      rem /= g->out[d];
    }
    for (int d = 0; d < nd && !extrapolate; d++) {
      if (g->mode == LENS_RESIZE_NEAREST) {
        i0[d] = lens_ref_resize_nearest (g, d, coord[d]);
        extrapolate = i0[d] < 0;
        src += i0[d] * in_stride[d];
      } else {
        extrapolate = !lens_ref_resize_linear (g, d, coord[d], &i0[d],
            &i1[d], &w[d]);
      }
    }
    if (extrapolate) {
      lens_tensor_set_f64 (y, i, g->extrapolation_value);
      continue;
    }
    if (g->mode == LENS_RESIZE_NEAREST) {
      memcpy ((char *) y->host + i * elem, (const char *) x->host + src * elem,
          elem);
      continue;
    }
    /* corner c takes i1 on the axes whose bit is set in c */
    for (int64_t c = 0; c < ((int64_t) 1 << nd); c++) {
      double weight = 1;
      int64_t off = 0;
      for (int d = 0; d < nd; d++) {
        gboolean upper = (c >> (nd - 1 - d)) & 1;
        weight *= upper ? w[d] : 1 - w[d];
        off += (upper ? i1[d] : i0[d]) * in_stride[d];
      }
      if (weight != 0)
        sum += weight * lens_tensor_get_f64 (x, off);
    }
    lens_tensor_set_f64 (y, i, sum);
  }
}
