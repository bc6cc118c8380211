/* ref/reduce.c: plain-C references of Softmax, ReduceMax and TopK, written
 * straight from the ONNX operator definitions; Softmax takes the exact steps
 * of ONNX Runtime's CPU kernel, as the kernels do. */
#include "ref/reduce.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 2^@e for -126 <= @e <= 127, built from its bits */
static float
pow2 (int e)
{
  uint32_t bits = (uint32_t) (e + 127) << 23;
  float f;

  memcpy (&f, &bits, sizeof (f));
  return f;
}

/* exp (@v) for @v <= 0 (or NaN) by the steps of lens_softmax_exp () in
 * kernels/reduce.cl, which are ONNX Runtime's (MLAS): round v / ln2 to m by
 * the 1.5 * 2^23 bias, reduce by m times ln2 split in two parts, a degree 6
 * polynomial, and a scale by 2^m rounded once (two steps below 2^-126, the
 * first exact). Every multiply-add is an explicit fmaf () and nothing else
 * may be contracted: the build targets no FMA instructions by default. */
static float
softmax_exp (float v)
{
  float b, m, p;
  int e;

  v = -103.9720840454f > v ? -103.9720840454f : v;
  if (isnan (v))
    return v;
  b = fmaf (v, 1.44269504088896341f, 12582912.0f);
  m = b - 12582912.0f;
  v = fmaf (m, -6.93145752e-1f, v);
  v = fmaf (m, -1.42860677e-6f, v);
  p = fmaf (0x1.694000p-10f, v, 0x1.125edcp-7f);
  p = fmaf (p, v, 0x1.555b5ap-5f);
  p = fmaf (p, v, 0x1.555450p-3f);
  p = fmaf (p, v, 0x1.fffff6p-2f);
  p = fmaf (p, v, 1.0f);
  p = fmaf (p, v, 1.0f);
  e = (int) m;
  if (e >= -126)
    return p * pow2 (e);
  return p * pow2 (e + 64) * 0x1p-64f;
}

void
lens_ref_softmax (const float *x, float *y, int64_t outer, int64_t len,
    int64_t inner)
{
  /* the steps of the kernels in kernels/reduce.cl (see there): MLAS's
   * exponential, a sum in 16 lanes folded in the AVX-512 order, and a
   * multiplication by the reciprocal */
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) {
      const float *row = x + o * len * inner + i;
      float *out = y + o * len * inner + i;
      float m = -FLT_MAX, lane[16] = { 0 }, s[8], scale;

      for (int64_t k = 0; k < len; k++)
        m = row[k * inner] > m ? row[k * inner] : m;
      for (int64_t k = 0; k < len; k++) {
        out[k * inner] = softmax_exp (row[k * inner] - m);
        lane[k % 16] += out[k * inner];
      }
      for (int l = 0; l < 8; l++)
        s[l] = lane[l] + lane[l + 8];
      scale = 1.0f / (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) +
              (s[6] + s[7])));
      for (int64_t k = 0; k < len; k++)
        out[k * inner] *= scale;
    }
  }
}

/* Output index of every input element: the input's multi-index with the
 * reduced dimensions dropped, row-major over the kept ones. */
static void
reduce_out_index (const LensTensor * x, const gboolean * reduced,
    int64_t *out_index)
{
  int64_t n = lens_tensor_numel (x);
  int64_t idx[LENS_MAX_DIMS] = { 0 };

  for (int64_t i = 0; i < n; i++) {
    int64_t o = 0;
    for (int d = 0; d < x->ndim; d++)
      if (!reduced[d])
        o = o * x->shape[d] + idx[d];
    out_index[i] = o;
    for (int d = x->ndim - 1; d >= 0; d--) {
      if (++idx[d] < x->shape[d])
        break;
      idx[d] = 0;
    }
  }
}

#define REF_REDUCE_MAX(type, lowest, is_nan) \
  G_STMT_START { \
    const type *src = x->host; \
    type *dst = y->host; \
    for (int64_t o = 0; o < n_out; o++) \
      dst[o] = (lowest); \
    for (int64_t i = 0; i < n_in; i++) { \
      type v = src[i], m = dst[out_index[i]]; \
      if (v > m || is_nan (v)) \
        dst[out_index[i]] = v; \
    } \
  } G_STMT_END

#define NOT_NAN(v) FALSE

LensStatus
lens_ref_reduce_max (const LensTensor * x, LensTensor * y,
    const gboolean * reduced, LensError *err)
{
  int64_t n_in = lens_tensor_numel (x), n_out = lens_tensor_numel (y);
  int64_t *out_index = g_new (int64_t, MAX (n_in, 1));

  reduce_out_index (x, reduced, out_index);
  switch (x->dtype) {
    case LENS_DTYPE_FLOAT:
      /* NaN propagates, as in numpy's maximum */
      REF_REDUCE_MAX (float, -INFINITY, isnan);
      break;
    case LENS_DTYPE_INT32:
      REF_REDUCE_MAX (int32_t, INT32_MIN, NOT_NAN);
      break;
    case LENS_DTYPE_INT64:
      REF_REDUCE_MAX (int64_t, INT64_MIN, NOT_NAN);
      break;
    case LENS_DTYPE_UINT8:
      REF_REDUCE_MAX (uint8_t, 0, NOT_NAN);
      break;
    case LENS_DTYPE_INT8:
      REF_REDUCE_MAX (int8_t, INT8_MIN, NOT_NAN);
      break;
    default:
      g_free (out_index);
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "ReduceMax: reference has no %s", lens_dtype_name (x->dtype));
  }
  g_free (out_index);
  return LENS_OK;
}

typedef struct
{
  gboolean nan;
  double fv;                    /* float inputs */
  int64_t iv;                   /* integer inputs */
  int64_t index;
} TopKEntry;

static int
compare_values (const TopKEntry * a, const TopKEntry * b)
{
  if (a->fv != b->fv)
    return a->fv < b->fv ? -1 : 1;
  if (a->iv != b->iv)
    return a->iv < b->iv ? -1 : 1;
  return 0;
}

/* largest first, NaN above everything, then the smaller index */
static int
compare_largest (const void *pa, const void *pb)
{
  const TopKEntry *a = pa, *b = pb;
  int c;

  if (a->nan != b->nan)
    return a->nan ? -1 : 1;
  c = compare_values (a, b);
  if (c != 0)
    return -c;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* smallest first, NaN last, then the smaller index */
static int
compare_smallest (const void *pa, const void *pb)
{
  const TopKEntry *a = pa, *b = pb;
  int c;

  if (a->nan != b->nan)
    return a->nan ? 1 : -1;
  c = compare_values (a, b);
  if (c != 0)
    return c;
  return a->index < b->index ? -1 : a->index > b->index;
}

LensStatus
lens_ref_top_k (const LensTensor * x, LensTensor * values,
    LensTensor * indices, int axis, int64_t k, gboolean largest,
    LensError *err)
{
  int64_t outer = 1, inner = 1, n = x->shape[axis];
  size_t esize = lens_dtype_size (x->dtype);
  gboolean is_float = x->dtype == LENS_DTYPE_FLOAT;
  TopKEntry *row;

  if (!is_float && x->dtype != LENS_DTYPE_INT32 &&
      x->dtype != LENS_DTYPE_INT64 && x->dtype != LENS_DTYPE_UINT8 &&
      x->dtype != LENS_DTYPE_INT8)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "TopK: reference has no %s", lens_dtype_name (x->dtype));
  for (int d = 0; d < axis; d++)
    outer *= x->shape[d];
  for (int d = axis + 1; d < x->ndim; d++)
    inner *= x->shape[d];
  row = g_new0 (TopKEntry, MAX (n, 1));
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t i = 0; i < inner; i++) {
      int64_t in_base = o * n * inner + i, out_base = o * k * inner + i;

      for (int64_t e = 0; e < n; e++) {
        int64_t at = in_base + e * inner;
        row[e].index = e;
        if (is_float) {
          float v = ((const float *) x->host)[at];
          row[e].nan = isnan (v);
          row[e].fv = row[e].nan ? 0.0 : v;
          row[e].iv = 0;
        } else {
          row[e].nan = FALSE;
          row[e].fv = 0.0;
          row[e].iv = lens_tensor_get_i64 (x, at);
        }
      }
      qsort (row, n, sizeof (TopKEntry), largest ? compare_largest :
          compare_smallest);
      for (int64_t j = 0; j < k; j++) {
        int64_t from = in_base + row[j].index * inner;
        int64_t to = out_base + j * inner;
        memcpy ((char *) values->host + to * esize,
            (const char *) x->host + from * esize, esize);
        ((int64_t *) indices->host)[to] = row[j].index;
      }
    }
  }
  g_free (row);
  return LENS_OK;
}
