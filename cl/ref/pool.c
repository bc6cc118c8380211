/* ref/pool.c: plain-C references of MaxPool, AveragePool and
 * GlobalAveragePool, written from the ONNX definitions: every output point
 * visits its whole (dilated) window, in double precision. The window
 * geometry (output size, effective pads) comes from ops/pool.c. */
#include "ref/pool.h"

#include <math.h>

/* Flattened index @i split into coordinates over @dims (row major). */
static void
unravel (int64_t i, int n, const int64_t *dims, int64_t *coords)
{
  for (int d = n - 1; d >= 0; d--) {
    coords[d] = i % dims[d];
    i /= dims[d];
  }
}

static int64_t
count_of (int n, const int64_t *dims)
{
  int64_t c = 1;

  for (int d = 0; d < n; d++)
    c *= dims[d];
  return c;
}

/* Position of window tap @tap of output point @o in input coordinates. */
static void
tap_position (const LensPoolGeometry * g, const int64_t *o, int64_t tap,
    int64_t *pos)
{
  int64_t k[LENS_POOL_MAX_SPATIAL];

  unravel (tap, g->spatial, g->kernel, k);
  for (int d = 0; d < g->spatial; d++)
    pos[d] = o[d] * g->stride[d] - g->pad_begin[d] + k[d] * g->dilation[d];
}

static gboolean
inside_input (const LensPoolGeometry * g, const int64_t *pos)
{
  for (int d = 0; d < g->spatial; d++)
    if (pos[d] < 0 || pos[d] >= g->in[d])
      return FALSE;
  return TRUE;
}

static gboolean
inside_padded (const LensPoolGeometry * g, const int64_t *pos)
{
  for (int d = 0; d < g->spatial; d++)
    if (pos[d] < -g->pad_begin[d] || pos[d] >= g->in[d] + g->pad_end[d])
      return FALSE;
  return TRUE;
}

/* Row-major offset of @pos within one input plane. */
static int64_t
plane_offset (const LensPoolGeometry * g, const int64_t *pos)
{
  int64_t off = 0;

  for (int d = 0; d < g->spatial; d++)
    off = off * g->in[d] + pos[d];
  return off;
}

/* ONNX storage_order 1 numbers the plane column major. */
static int64_t
plane_offset_column_major (const LensPoolGeometry * g, const int64_t *pos)
{
  int64_t off = 0;

  for (int d = g->spatial - 1; d >= 0; d--)
    off = off * g->in[d] + pos[d];
  return off;
}

static double
lowest_value (LensDType dtype)
{
  switch (dtype) {
    case LENS_DTYPE_UINT8:
      return 0;
    case LENS_DTYPE_INT8:
      return -128;
    default:
      return -INFINITY;
  }
}

void
lens_ref_max_pool (const LensTensor * x, LensTensor * y,
    LensTensor * indices, const LensPoolGeometry * g)
{
  int64_t planes = x->shape[0] * x->shape[1];
  int64_t in_plane = count_of (g->spatial, g->in);
  int64_t out_plane = count_of (g->spatial, g->out);
  int64_t taps = count_of (g->spatial, g->kernel);

  for (int64_t p = 0; p < planes; p++) {
    for (int64_t oi = 0; oi < out_plane; oi++) {
      int64_t o[LENS_POOL_MAX_SPATIAL], pos[LENS_POOL_MAX_SPATIAL];
      double best = lowest_value (x->dtype);
      int64_t best_index = -1;

      unravel (oi, g->spatial, g->out, o);
      for (int64_t t = 0; t < taps; t++) {
        double v;
        tap_position (g, o, t, pos);
        if (!inside_input (g, pos))
          continue;
        v = lens_tensor_get_f64 (x, p * in_plane + plane_offset (g, pos));
        if (isnan (v))
          continue;             /* NaN never becomes the maximum */
        /* strictly greater: the first maximum in scan order wins */
        if (best_index < 0 || v > best) {
          best = v;
          best_index = p * in_plane + (g->storage_order == 1 ?
              plane_offset_column_major (g, pos) : plane_offset (g, pos));
        }
      }
      lens_tensor_set_f64 (y, p * out_plane + oi, best);
      if (indices != NULL)
        ((int64_t *) indices->host)[p * out_plane + oi] = best_index;
    }
  }
}

void
lens_ref_average_pool (const LensTensor * x, LensTensor * y,
    const LensPoolGeometry * g)
{
  int64_t planes = x->shape[0] * x->shape[1];
  int64_t in_plane = count_of (g->spatial, g->in);
  int64_t out_plane = count_of (g->spatial, g->out);
  int64_t taps = count_of (g->spatial, g->kernel);

  for (int64_t p = 0; p < planes; p++) {
    for (int64_t oi = 0; oi < out_plane; oi++) {
      int64_t o[LENS_POOL_MAX_SPATIAL], pos[LENS_POOL_MAX_SPATIAL];
      double sum = 0;
      int64_t count = 0;

      unravel (oi, g->spatial, g->out, o);
      for (int64_t t = 0; t < taps; t++) {
        tap_position (g, o, t, pos);
        if (inside_input (g, pos)) {
          sum += lens_tensor_get_f64 (x, p * in_plane + plane_offset (g,
                  pos));
          count++;
        } else if (g->count_include_pad && inside_padded (g, pos)) {
          count++;              /* a zero from the padding */
        }
      }
      lens_tensor_set_f64 (y, p * out_plane + oi,
          count > 0 ? sum / count : NAN);
    }
  }
}

void
lens_ref_global_average_pool (const LensTensor * x, LensTensor * y)
{
  int64_t planes = x->shape[0] * x->shape[1];
  int64_t size = count_of (x->ndim - 2, x->shape + 2);

  for (int64_t p = 0; p < planes; p++) {
    double sum = 0;
    for (int64_t i = 0; i < size; i++)
      sum += lens_tensor_get_f64 (x, p * size + i);
    lens_tensor_set_f64 (y, p, sum / size);
  }
}
