/* ref/misc.c: plain-C references of BatchNormalization (inference), Tile
 * and Cast. */
#include "ref/misc.h"
#include "ref/elementwise.h"

#include <math.h>
#include <string.h>

void
lens_ref_batch_normalization (const LensTensor * x, const LensTensor * scale,
    const LensTensor * bias, const LensTensor * mean, const LensTensor * var,
    float epsilon, LensTensor * y)
{
  const float *xp = x->host, *sp = scale->host, *bp = bias->host;
  const float *mp = mean->host, *vp = var->host;
  float *yp = y->host;
  int64_t channels = x->shape[1], inner = 1, n = lens_tensor_numel (x);

  for (int d = 2; d < x->ndim; d++)
    inner *= x->shape[d];
  for (int64_t i = 0; i < n; i++) {
    int64_t c = (i / inner) % channels;
    yp[i] = (float) ((xp[i] - (double) mp[c]) / sqrt (vp[c] + (double) epsilon)
        * sp[c] + bp[c]);
  }
}

void
lens_ref_tile (const LensTensor * x, LensTensor * y)
{
  size_t esize = lens_dtype_size (x->dtype);
  int64_t n = lens_tensor_numel (y);

  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, src = 0;
    for (int d = y->ndim - 1; d >= 0; d--) {
      int64_t c = rem % y->shape[d];
      rem /= y->shape[d];
      src += (c % x->shape[d]) * x->strides[d];
    }
    memcpy ((char *) y->host + i * esize, (const char *) x->host + src * esize,
        esize);
  }
}

/* float32 to bfloat16 by dropping the low 16 bits, as ONNX 1.12's
 * generator of test_cast_FLOAT_to_BFLOAT16 did; NaN stays a quiet NaN */
static uint16_t
bfloat16_truncate (float f)
{
  uint32_t bits;

  memcpy (&bits, &f, 4);
  if ((bits & 0x7fffffff) > 0x7f800000)
    return (uint16_t) ((bits >> 16) | 0x40);
  return (uint16_t) (bits >> 16);
}

/* float64 to float16 rounded once, to nearest even: round to float32 to
 * odd (truncate, then set the last bit if anything was lost), which keeps
 * the rounding of the 13 bits float16 drops exact */
static uint16_t
double_to_half (double d)
{
  float f = (float) d;

  if (!isnan (d) && (double) f != d) {
    uint32_t bits;
    memcpy (&bits, &f, 4);
    if (fabs ((double) f) > fabs (d))
      bits--;
    bits |= 1;
    memcpy (&f, &bits, 4);
  }
  return lens_float_to_half (f);
}

static gboolean
dtype_is_unsigned (LensDType dtype)
{
  return dtype == LENS_DTYPE_UINT8 || dtype == LENS_DTYPE_UINT16 ||
      dtype == LENS_DTYPE_UINT32 || dtype == LENS_DTYPE_UINT64 ||
      dtype == LENS_DTYPE_BOOL;
}

static void
cast_from_float (double v, gboolean from_double, LensTensor * y, int64_t i)
{
  switch (y->dtype) {
    case LENS_DTYPE_FLOAT:
      ((float *) y->host)[i] = (float) v;
      break;
    case LENS_DTYPE_DOUBLE:
      ((double *) y->host)[i] = v;
      break;
    case LENS_DTYPE_FLOAT16:
      ((uint16_t *) y->host)[i] = from_double ? double_to_half (v) :
          lens_float_to_half ((float) v);
      break;
    case LENS_DTYPE_BFLOAT16:
      ((uint16_t *) y->host)[i] = bfloat16_truncate ((float) v);
      break;
    case LENS_DTYPE_BOOL:
      ((uint8_t *) y->host)[i] = v != 0;
      break;
    case LENS_DTYPE_UINT64:
      lens_ref_store_int (y, i, lens_ref_float_to_uint64 (v));
      break;
    default:
      lens_ref_store_int (y, i, (uint64_t) lens_ref_float_to_int64 (v));
      break;
  }
}

/* Integers convert to floats directly (one rounding, never through
 * double), and to other integers by keeping the low bits. */
static void
cast_from_int (uint64_t bits, gboolean is_unsigned, LensTensor * y,
    int64_t i)
{
  int64_t s = (int64_t) bits;
  float f = is_unsigned ? (float) bits : (float) s;

  switch (y->dtype) {
    case LENS_DTYPE_FLOAT:
      ((float *) y->host)[i] = f;
      break;
    case LENS_DTYPE_DOUBLE:
      ((double *) y->host)[i] = is_unsigned ? (double) bits : (double) s;
      break;
    case LENS_DTYPE_FLOAT16:
      ((uint16_t *) y->host)[i] = lens_float_to_half (f);
      break;
    case LENS_DTYPE_BFLOAT16:
      ((uint16_t *) y->host)[i] = bfloat16_truncate (f);
      break;
    default:
      lens_ref_store_int (y, i, bits);
      break;
  }
}

void
lens_ref_cast (const LensTensor * x, LensTensor * y)
{
  int64_t n = lens_tensor_numel (y);

  for (int64_t i = 0; i < n; i++) {
    if (lens_dtype_is_float (x->dtype))
      cast_from_float (lens_tensor_get_f64 (x, i),
          x->dtype == LENS_DTYPE_DOUBLE, y, i);
    else
      cast_from_int ((uint64_t) lens_tensor_get_i64 (x, i),
          dtype_is_unsigned (x->dtype), y, i);
  }
}
