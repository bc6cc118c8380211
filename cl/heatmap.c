/* heatmap.c: per-cell heatmaps of feature maps and detection outputs
 * (activation: mean |x| over channels; score: max over a channel range,
 * optionally sigmoided), on the device (kernels/heatmap.cl) and as plain-C
 * references with the same summation order.
 *
 * Both layouts reduce to one addressing rule, cell (iy, ix) of channel c
 * at offset + c*sc + iy*sh + ix*sw:
 *   [1,C,H,W]  sc, sh, sw = the tensor's strides 1, 2, 3
 *   [1,H*W,C]  sc = strides[2], sw = strides[1], sh = width * strides[1]
 */
#include "lens-private.h"

#include <math.h>

/* Work-group size of the 1-D launches. */
#define HEATMAP_GROUP 64

typedef struct
{
  int channels, height, width;
  int sc, sh, sw;               /* element strides, see above */
} MapLayout;

static LensStatus
map_layout (const LensTensor * x, gboolean channel_last, int width,
    const char *what, MapLayout * m, LensError *err)
{
  char desc[128];
  int64_t last = 0;

  if (x == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID, "%s: no input tensor",
        what);
  lens_tensor_describe (x, desc, sizeof desc);
  if (x->dtype != LENS_DTYPE_FLOAT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: tensor '%s' is %s, expected float32", what,
        x->name ? x->name : "", desc);
  if (!channel_last) {
    if (x->ndim != 4 || x->shape[0] != 1 || x->shape[1] < 1
        || x->shape[2] < 1 || x->shape[3] < 1)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: tensor '%s' is %s, expected [1,C,H,W]", what,
          x->name ? x->name : "", desc);
    m->channels = (int) MIN (x->shape[1], G_MAXINT);
    m->height = (int) MIN (x->shape[2], G_MAXINT);
    m->width = (int) MIN (x->shape[3], G_MAXINT);
    last = x->strides[1] * (x->shape[1] - 1) + x->strides[2] * (x->shape[2]
        - 1) + x->strides[3] * (x->shape[3] - 1);
    m->sc = (int) x->strides[1];
    m->sh = (int) x->strides[2];
    m->sw = (int) x->strides[3];
  } else {
    if (x->ndim != 3 || x->shape[0] != 1 || x->shape[1] < 1
        || x->shape[2] < 1)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: tensor '%s' is %s, expected [1,H*W,C]", what,
          x->name ? x->name : "", desc);
    if (width < 1 || x->shape[1] % width != 0)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: tensor '%s' %s: %" G_GINT64_FORMAT " cells are not rows of "
          "width %d", what, x->name ? x->name : "", desc, x->shape[1],
          width);
    m->channels = (int) MIN (x->shape[2], G_MAXINT);
    m->height = (int) MIN (x->shape[1] / width, G_MAXINT);
    m->width = width;
    last = x->strides[1] * (x->shape[1] - 1) + x->strides[2] * (x->shape[2]
        - 1);
    m->sc = (int) x->strides[2];
    m->sh = (int) (x->strides[1] * width);
    m->sw = (int) x->strides[1];
  }
  /* the kernels address elements with int offsets */
  if (last + (int64_t) x->offset > G_MAXINT / 2
      || (int64_t) m->height * m->width > G_MAXINT / 2)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: tensor '%s' %s is too large", what, x->name ? x->name : "",
        desc);
  return LENS_OK;
}

static LensStatus
check_classes (const MapLayout * m, int first, int n_classes,
    LensError *err)
{
  if (first < 0 || n_classes < 1 || first > m->channels - n_classes)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "score heatmap: channels %d..%d are outside the %d channels",
        first, first + n_classes - 1, m->channels);
  return LENS_OK;
}

/* Makes @out a contiguous float32 [H,W] (keeping its offset). */
static LensStatus
shape_output (LensTensor * out, const MapLayout * m, const char *what,
    LensError *err)
{
  int64_t shape[2] = { m->height, m->width };

  if (out == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID, "%s: no output tensor",
        what);
  if (out->dtype != LENS_DTYPE_FLOAT)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: output tensor '%s' is %s, expected float32", what,
        out->name ? out->name : "", lens_dtype_name (out->dtype));
  lens_tensor_set_shape (out, 2, shape);
  return LENS_OK;
}

/* Gives @out a device buffer that holds [H,W] past its offset. */
static LensStatus
prepare_device_output (LensContext * ctx, LensTensor * out,
    const MapLayout * m, const char *what, LensError *err)
{
  LensStatus st = shape_output (out, m, what, err);

  if (st != LENS_OK)
    return st;
  if (out->buffer != NULL && out->offset > 0
      && (out->offset * sizeof (float) + lens_tensor_nbytes (out)
          > out->buffer_bytes || out->offset > G_MAXINT / 2))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: output tensor '%s' buffer of %zu bytes is too small for "
        "[%d,%d] at offset %zu", what, out->name ? out->name : "",
        out->buffer_bytes, m->height, m->width, out->offset);
  return lens_tensor_alloc_device (ctx, out, err);
}

static LensStatus
enqueue_cells (LensContext * ctx, cl_kernel kernel, const MapLayout * m,
    LensError *err)
{
  size_t global = (size_t) m->height * m->width;
  size_t local = MIN (HEATMAP_GROUP, lens_kernel_max_work_group (ctx,
          kernel));

  return lens_context_enqueue (ctx, kernel, 1, &global, &local, err);
}

LensStatus
lens_heatmap_activation (LensContext * ctx, const LensTensor * x,
    LensTensor * out, LensError *err)
{
  const char *what = "activation heatmap";
  MapLayout m;
  cl_kernel kernel;
  int x_offset, y_offset;
  LensStatus st;

  if ((st = map_layout (x, FALSE, 0, what, &m, err)) != LENS_OK
      || (st = lens_tensor_require_device (x, what, err)) != LENS_OK
      || (st = prepare_device_output (ctx, out, &m, what, err)) != LENS_OK)
    return st;
  st = lens_context_create_kernel (ctx, "heatmap", "",
      "lens_heatmap_activation", &kernel, err);
  if (st != LENS_OK)
    return st;
  x_offset = (int) x->offset;
  y_offset = (int) out->offset;
  st = lens_kernel_set_args (kernel, err, 10, LENS_ARG (x->buffer),
      LENS_ARG (out->buffer), LENS_ARG (x_offset), LENS_ARG (y_offset),
      LENS_ARG (m.channels), LENS_ARG (m.height), LENS_ARG (m.width),
      LENS_ARG (m.sc), LENS_ARG (m.sh), LENS_ARG (m.sw));
  if (st == LENS_OK)
    st = enqueue_cells (ctx, kernel, &m, err);
  /* an enqueued kernel keeps what it needs */
  clReleaseKernel (kernel);
  return st;
}

LensStatus
lens_heatmap_score (LensContext * ctx, const LensTensor * x,
    gboolean channel_last, int width, int first, int n_classes,
    gboolean apply_sigmoid, LensTensor * out, LensError *err)
{
  const char *what = "score heatmap";
  MapLayout m;
  cl_kernel kernel;
  int x_offset, y_offset;
  cl_int sigmoid = apply_sigmoid ? 1 : 0;
  LensStatus st;

  if ((st = map_layout (x, channel_last, width, what, &m, err)) != LENS_OK
      || (st = check_classes (&m, first, n_classes, err)) != LENS_OK
      || (st = lens_tensor_require_device (x, what, err)) != LENS_OK
      || (st = prepare_device_output (ctx, out, &m, what, err)) != LENS_OK)
    return st;
  st = lens_context_create_kernel (ctx, "heatmap", "", "lens_heatmap_score",
      &kernel, err);
  if (st != LENS_OK)
    return st;
  x_offset = (int) x->offset;
  y_offset = (int) out->offset;
  st = lens_kernel_set_args (kernel, err, 12, LENS_ARG (x->buffer),
      LENS_ARG (out->buffer), LENS_ARG (x_offset), LENS_ARG (y_offset),
      LENS_ARG (first), LENS_ARG (n_classes), LENS_ARG (m.height),
      LENS_ARG (m.width), LENS_ARG (m.sc), LENS_ARG (m.sh), LENS_ARG (m.sw),
      LENS_ARG (sigmoid));
  if (st == LENS_OK)
    st = enqueue_cells (ctx, kernel, &m, err);
  clReleaseKernel (kernel);
  return st;
}

/* ---- references: the kernels' loops, in the same order ------------------- */

static LensStatus
require_host (const LensTensor * x, const char *what, LensError *err)
{
  if (x->host == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: tensor '%s' has no host data", what, x->name ? x->name : "");
  return LENS_OK;
}

LensStatus
lens_heatmap_activation_reference (const LensTensor * x, LensTensor * out,
    LensError *err)
{
  const char *what = "activation heatmap";
  MapLayout m;
  const float *src;
  float *dst;
  LensStatus st;

  if ((st = map_layout (x, FALSE, 0, what, &m, err)) != LENS_OK
      || (st = require_host (x, what, err)) != LENS_OK
      || (st = shape_output (out, &m, what, err)) != LENS_OK)
    return st;
  lens_tensor_alloc_host (out);
  src = (const float *) x->host;
  dst = out->host;
  for (int i = 0; i < m.height * m.width; i++) {
    const float *p = src + (i / m.width) * m.sh + (i % m.width) * m.sw;
    float sum = 0.0f;

    for (int c = 0; c < m.channels; c++)
      sum += fabsf (p[c * m.sc]);
    dst[i] = sum / (float) m.channels;
  }
  return LENS_OK;
}

LensStatus
lens_heatmap_score_reference (const LensTensor * x, gboolean channel_last,
    int width, int first, int n_classes, gboolean apply_sigmoid,
    LensTensor * out, LensError *err)
{
  const char *what = "score heatmap";
  MapLayout m;
  const float *src;
  float *dst;
  LensStatus st;

  if ((st = map_layout (x, channel_last, width, what, &m, err)) != LENS_OK
      || (st = check_classes (&m, first, n_classes, err)) != LENS_OK
      || (st = require_host (x, what, err)) != LENS_OK
      || (st = shape_output (out, &m, what, err)) != LENS_OK)
    return st;
  lens_tensor_alloc_host (out);
  src = (const float *) x->host;
  dst = out->host;
  for (int i = 0; i < m.height * m.width; i++) {
    const float *p = src + (i / m.width) * m.sh + (i % m.width) * m.sw
        + first * m.sc;
    float v = p[0];

    for (int c = 1; c < n_classes; c++)
      v = fmaxf (v, p[c * m.sc]);
    if (apply_sigmoid)
      v = 1.0f / (1.0f + expf (-v));
    dst[i] = v;
  }
  return LENS_OK;
}
