/* tensor.c: tensors (shape, strides, device buffer, optional host copy),
 * host/device transfers, views, element access and tolerant comparison. */
#include "lens-private.h"

#include <math.h>
#include <string.h>

static void
set_contiguous_strides (LensTensor * t)
{
  /* unsigned: a shape too large to stride (an op's inferred output, which
   * the op or the loader then refuses by size) must not be undefined
   * behaviour on the way */
  uint64_t stride = 1;

  for (int d = t->ndim - 1; d >= 0; d--) {
    t->strides[d] = (int64_t) stride;
    stride *= (uint64_t) t->shape[d];
  }
}

LensTensor *
lens_tensor_new (LensDType dtype, int ndim, const int64_t *shape)
{
  LensTensor *t = g_new0 (LensTensor, 1);

  t->dtype = dtype;
  lens_tensor_set_shape (t, ndim, shape);
  return t;
}

LensTensor *
lens_tensor_new_host (LensDType dtype, int ndim, const int64_t *shape,
    const void *data)
{
  LensTensor *t = lens_tensor_new (dtype, ndim, shape);

  lens_tensor_alloc_host (t);
  if (data != NULL)
    memcpy (t->host, data, lens_tensor_nbytes (t));
  return t;
}

void
lens_tensor_free (LensTensor * t)
{
  if (t == NULL)
    return;
  if (t->buffer != NULL)
    clReleaseMemObject (t->buffer);
  g_free (t->host);
  g_free (t->name);
  g_free (t);
}

void
lens_tensor_set_name (LensTensor * t, const char *name)
{
  g_free (t->name);
  t->name = g_strdup (name);
}

void
lens_tensor_set_shape (LensTensor * t, int ndim, const int64_t *shape)
{
  g_return_if_fail (ndim >= 0 && ndim <= LENS_MAX_DIMS);
  t->ndim = ndim;
  for (int d = 0; d < ndim; d++)
    t->shape[d] = shape[d];
  set_contiguous_strides (t);
}

int64_t
lens_tensor_numel (const LensTensor * t)
{
  uint64_t n = 1;

  /* unsigned for the same reason: callers check sizes with
   * lens_shape_bytes first where the shape is untrusted */
  for (int d = 0; d < t->ndim; d++)
    n *= (uint64_t) t->shape[d];
  return (int64_t) n;
}

size_t
lens_tensor_nbytes (const LensTensor * t)
{
  return (size_t) lens_tensor_numel (t) * lens_dtype_size (t->dtype);
}

gboolean
lens_tensor_is_contiguous (const LensTensor * t)
{
  int64_t stride = 1;

  for (int d = t->ndim - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->strides[d] != stride)
      return FALSE;
    stride *= t->shape[d];
  }
  return TRUE;
}

const char *
lens_tensor_describe (const LensTensor * t, char *buf, size_t len)
{
  GString *s = g_string_new ("[");

  for (int d = 0; d < t->ndim; d++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, d ? "," : "",
        t->shape[d]);
  g_string_append_printf (s, "] %s", lens_dtype_name (t->dtype));
  g_strlcpy (buf, s->str, len);
  g_string_free (s, TRUE);
  return buf;
}

LensStatus
lens_tensor_alloc_device (LensContext * ctx, LensTensor * t, LensError *err)
{
  /* OpenCL refuses zero-sized buffers; empty tensors get a token one. */
  size_t need = MAX (lens_tensor_nbytes (t), 4);
  cl_int rc;

  if (t->buffer != NULL && t->buffer_bytes >= need)
    return LENS_OK;
  if (t->buffer != NULL)
    clReleaseMemObject (t->buffer);
  t->buffer = clCreateBuffer (lens_context_get_cl_context (ctx),
      CL_MEM_READ_WRITE, need, NULL, &rc);
  if (rc != CL_SUCCESS) {
    char desc[128];
    t->buffer = NULL;
    t->buffer_bytes = 0;
    return lens_error_set (err, LENS_ERROR_CL,
        "clCreateBuffer (%zu bytes for tensor '%s' %s): %s", need,
        t->name ? t->name : "", lens_tensor_describe (t, desc, sizeof desc),
        lens_cl_error_name (rc));
  }
  t->buffer_bytes = need;
  t->offset = 0;
  return LENS_OK;
}

void
lens_tensor_alloc_host (LensTensor * t)
{
  g_free (t->host);
  t->host = g_malloc0 (MAX (lens_tensor_nbytes (t), 1));
}

LensStatus
lens_tensor_upload (LensContext * ctx, LensTensor * t, LensError *err)
{
  size_t bytes = lens_tensor_nbytes (t);
  LensStatus st;

  if (t->host == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "tensor '%s' has no host data to upload", t->name ? t->name : "");
  st = lens_tensor_alloc_device (ctx, t, err);
  if (st != LENS_OK || bytes == 0)
    return st;
  LENS_CL_CHECK (clEnqueueWriteBuffer (lens_context_get_queue (ctx),
          t->buffer, CL_TRUE, t->offset * lens_dtype_size (t->dtype), bytes,
          t->host, 0, NULL, NULL), err);
  return LENS_OK;
}

LensStatus
lens_tensor_download (LensContext * ctx, LensTensor * t, LensError *err)
{
  size_t bytes = lens_tensor_nbytes (t);

  if (t->buffer == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "tensor '%s' has no device buffer to download",
        t->name ? t->name : "");
  if (t->host == NULL)
    lens_tensor_alloc_host (t);
  if (bytes == 0)
    return LENS_OK;
  LENS_CL_CHECK (clEnqueueReadBuffer (lens_context_get_queue (ctx),
          t->buffer, CL_TRUE, t->offset * lens_dtype_size (t->dtype), bytes,
          t->host, 0, NULL, NULL), err);
  return LENS_OK;
}

LensTensor *
lens_tensor_new_view (const LensTensor * src, int ndim, const int64_t *shape)
{
  LensTensor *t = lens_tensor_new (src->dtype, ndim, shape);

  g_return_val_if_fail (lens_tensor_numel (t) == lens_tensor_numel (src),
      t);
  if (src->buffer != NULL) {
    clRetainMemObject (src->buffer);
    t->buffer = src->buffer;
    t->buffer_bytes = src->buffer_bytes;
    t->offset = src->offset;
  }
  if (src->host != NULL)
    t->host = g_memdup2 (src->host, MAX (lens_tensor_nbytes (src), 1));
  t->is_constant = src->is_constant;
  return t;
}

LensStatus
lens_tensor_require_device (const LensTensor * t, const char *what,
    LensError *err)
{
  if (t == NULL || t->buffer == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s has no device buffer", what);
  return LENS_OK;
}

double
lens_tensor_get_f64 (const LensTensor * t, int64_t i)
{
  const void *p = t->host;

  switch (t->dtype) {
    case LENS_DTYPE_FLOAT: return ((const float *) p)[i];
    case LENS_DTYPE_DOUBLE: return ((const double *) p)[i];
    case LENS_DTYPE_FLOAT16: return lens_half_to_float (((const uint16_t *) p)[i]);
    case LENS_DTYPE_BFLOAT16:
      return lens_bfloat16_to_float (((const uint16_t *) p)[i]);
    case LENS_DTYPE_UINT8: case LENS_DTYPE_BOOL:
      return ((const uint8_t *) p)[i];
    case LENS_DTYPE_INT8: return ((const int8_t *) p)[i];
    case LENS_DTYPE_UINT16: return ((const uint16_t *) p)[i];
    case LENS_DTYPE_INT16: return ((const int16_t *) p)[i];
    case LENS_DTYPE_INT32: return ((const int32_t *) p)[i];
    case LENS_DTYPE_UINT32: return ((const uint32_t *) p)[i];
    case LENS_DTYPE_INT64: return (double) ((const int64_t *) p)[i];
    case LENS_DTYPE_UINT64: return (double) ((const uint64_t *) p)[i];
    default: return NAN;
  }
}

int64_t
lens_tensor_get_i64 (const LensTensor * t, int64_t i)
{
  const void *p = t->host;

  switch (t->dtype) {
    case LENS_DTYPE_INT64: return ((const int64_t *) p)[i];
    case LENS_DTYPE_UINT64: return (int64_t) ((const uint64_t *) p)[i];
    case LENS_DTYPE_INT32: return ((const int32_t *) p)[i];
    case LENS_DTYPE_UINT32: return ((const uint32_t *) p)[i];
    case LENS_DTYPE_INT16: return ((const int16_t *) p)[i];
    case LENS_DTYPE_UINT16: return ((const uint16_t *) p)[i];
    case LENS_DTYPE_INT8: return ((const int8_t *) p)[i];
    case LENS_DTYPE_UINT8: case LENS_DTYPE_BOOL:
      return ((const uint8_t *) p)[i];
    default: return (int64_t) lens_tensor_get_f64 (t, i);
  }
}

void
lens_tensor_set_f64 (LensTensor * t, int64_t i, double v)
{
  void *p = t->host;

  switch (t->dtype) {
    case LENS_DTYPE_FLOAT: ((float *) p)[i] = (float) v; break;
    case LENS_DTYPE_DOUBLE: ((double *) p)[i] = v; break;
    case LENS_DTYPE_FLOAT16:
      ((uint16_t *) p)[i] = lens_float_to_half ((float) v);
      break;
    case LENS_DTYPE_BFLOAT16:
      ((uint16_t *) p)[i] = lens_float_to_bfloat16 ((float) v);
      break;
    case LENS_DTYPE_UINT8: case LENS_DTYPE_BOOL:
      ((uint8_t *) p)[i] = (uint8_t) v;
      break;
    case LENS_DTYPE_INT8: ((int8_t *) p)[i] = (int8_t) v; break;
    case LENS_DTYPE_UINT16: ((uint16_t *) p)[i] = (uint16_t) v; break;
    case LENS_DTYPE_INT16: ((int16_t *) p)[i] = (int16_t) v; break;
    case LENS_DTYPE_INT32: ((int32_t *) p)[i] = (int32_t) v; break;
    case LENS_DTYPE_UINT32: ((uint32_t *) p)[i] = (uint32_t) v; break;
    case LENS_DTYPE_INT64: ((int64_t *) p)[i] = (int64_t) v; break;
    case LENS_DTYPE_UINT64: ((uint64_t *) p)[i] = (uint64_t) v; break;
    default: break;
  }
}

LensStatus
lens_tensor_compare (const LensTensor * actual, const LensTensor * expected,
    double atol, double rtol, LensCompareResult * result, LensError *err)
{
  LensCompareResult r = { 0, 0, -1, 0 };
  char da[128], de[128];
  gboolean exact = !lens_dtype_is_float (expected->dtype);
  gboolean same_shape = actual->ndim == expected->ndim;
  int64_t n;

  for (int d = 0; same_shape && d < actual->ndim; d++)
    same_shape = actual->shape[d] == expected->shape[d];
  if (actual->dtype != expected->dtype || !same_shape)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "expected %s, got %s",
        lens_tensor_describe (expected, de, sizeof de),
        lens_tensor_describe (actual, da, sizeof da));
  if (actual->host == NULL || expected->host == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "tensor without host data to compare");

  n = lens_tensor_numel (expected);
  for (int64_t i = 0; i < n; i++) {
    gboolean bad;
    double diff;

    if (exact) {
      int64_t a = lens_tensor_get_i64 (actual, i);
      int64_t e = lens_tensor_get_i64 (expected, i);
      diff = a == e ? 0 : fabs ((double) a - (double) e);
      bad = a != e;
    } else {
      double a = lens_tensor_get_f64 (actual, i);
      double e = lens_tensor_get_f64 (expected, i);
      if (isnan (a) || isnan (e)) {
        bad = isnan (a) != isnan (e);
        diff = bad ? INFINITY : 0;
      } else if (isinf (a) || isinf (e)) {
        bad = a != e;
        diff = bad ? INFINITY : 0;
      } else {
        diff = fabs (a - e);
        bad = diff > atol + rtol * fabs (e);
        r.max_rel_diff = MAX (r.max_rel_diff, diff / MAX (fabs (e), 1e-30));
      }
    }
    r.max_abs_diff = MAX (r.max_abs_diff, diff);
    if (bad) {
      if (r.mismatches == 0)
        r.worst_index = i;
      r.mismatches++;
    }
  }
  if (result != NULL)
    *result = r;
  if (r.mismatches > 0) {
    int64_t i = r.worst_index;
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " elements differ "
        "(first at %" G_GINT64_FORMAT ": got %.9g, expected %.9g; "
        "max |diff| %.3g, atol %.1g, rtol %.1g)", r.mismatches, n, i,
        lens_tensor_get_f64 (actual, i), lens_tensor_get_f64 (expected, i),
        r.max_abs_diff, atol, rtol);
  }
  return LENS_OK;
}

void
lens_unravel_index (int64_t i, int ndim, const int64_t *shape, int64_t *coord)
{
  for (int d = ndim - 1; d >= 0; d--) {
    coord[d] = shape[d] > 0 ? i % shape[d] : 0;
    i = shape[d] > 0 ? i / shape[d] : 0;
  }
}

int64_t
lens_tensor_offset_of (const LensTensor * t, const int64_t *coord)
{
  int64_t off = 0;

  for (int d = 0; d < t->ndim; d++)
    off += coord[d] * t->strides[d];
  return off;
}
