/* ref/elementwise.c: plain-C references of the element-wise family: binary
 * arithmetic with numpy broadcasting, the unary activations and Clip.
 *
 * Floats are computed in double and stored rounded to the tensor's type;
 * the kernels compute float32 and float16 in float, which matches within
 * the ops' tolerances. Integers are computed in 64 bits (signed or
 * unsigned as the type is) and stored truncated, which is wrap-around
 * arithmetic at the type's width. */
#include "ref/elementwise.h"

#include <math.h>

static gboolean
dtype_is_unsigned (LensDType dtype)
{
  return dtype == LENS_DTYPE_UINT8 || dtype == LENS_DTYPE_UINT16 ||
      dtype == LENS_DTYPE_UINT32 || dtype == LENS_DTYPE_UINT64 ||
      dtype == LENS_DTYPE_BOOL;
}

/* Integer element @i: sign-extended for signed types, zero-extended for
 * unsigned ones (uint64 keeps all its bits). */
static uint64_t
get_int (const LensTensor * t, int64_t i)
{
  return (uint64_t) lens_tensor_get_i64 (t, i);
}

void
lens_ref_store_int (LensTensor * t, int64_t i, uint64_t v)
{
  void *p = t->host;

  switch (t->dtype) {
    case LENS_DTYPE_BOOL: ((uint8_t *) p)[i] = v != 0; break;
    case LENS_DTYPE_UINT8: ((uint8_t *) p)[i] = (uint8_t) v; break;
    case LENS_DTYPE_INT8: ((int8_t *) p)[i] = (int8_t) v; break;
    case LENS_DTYPE_UINT16: ((uint16_t *) p)[i] = (uint16_t) v; break;
    case LENS_DTYPE_INT16: ((int16_t *) p)[i] = (int16_t) v; break;
    case LENS_DTYPE_UINT32: ((uint32_t *) p)[i] = (uint32_t) v; break;
    case LENS_DTYPE_INT32: ((int32_t *) p)[i] = (int32_t) v; break;
    case LENS_DTYPE_UINT64: ((uint64_t *) p)[i] = v; break;
    case LENS_DTYPE_INT64: ((int64_t *) p)[i] = (int64_t) v; break;
    default: break;
  }
}

int64_t
lens_ref_float_to_int64 (double v)
{
  if (isnan (v))
    return 0;
  if (v >= 9223372036854775808.0 || v < -9223372036854775808.0)
    return INT64_MIN;
  return (int64_t) v;
}

uint64_t
lens_ref_float_to_uint64 (double v)
{
  if (v >= 9223372036854775808.0 && v < 18446744073709551616.0)
    return (uint64_t) v;
  return (uint64_t) lens_ref_float_to_int64 (v);
}

/* ---- binary ------------------------------------------------------------------ */

static double
float_binary (LensBinaryOp op, double a, double b)
{
  switch (op) {
    case LENS_BINARY_ADD: return a + b;
    case LENS_BINARY_SUB: return a - b;
    case LENS_BINARY_MUL: return a * b;
    case LENS_BINARY_DIV: return a / b;
    case LENS_BINARY_POW: return pow (a, b);
    case LENS_BINARY_MOD:
    case LENS_BINARY_FMOD: return fmod (a, b);
  }
  return NAN;
}

/* a ** e by repeated multiplication, wrapping modulo 2^64 */
static uint64_t
int_pow (uint64_t a, uint64_t e)
{
  uint64_t result = 1;

  while (e != 0) {
    if (e & 1)
      result *= a;
    a *= a;
    e >>= 1;
  }
  return result;
}

/* a ** e for e < 0, truncated toward zero */
static int64_t
int_pow_negative (int64_t a, gboolean odd)
{
  if (a == 1)
    return 1;
  if (a == -1)
    return odd ? -1 : 1;
  return 0;
}

static uint64_t
signed_binary (LensBinaryOp op, int64_t a, int64_t b)
{
  int64_t r;

  switch (op) {
    case LENS_BINARY_ADD: return (uint64_t) a + (uint64_t) b;
    case LENS_BINARY_SUB: return (uint64_t) a - (uint64_t) b;
    case LENS_BINARY_MUL: return (uint64_t) a * (uint64_t) b;
    case LENS_BINARY_DIV:
      if (b == 0)
        return 0;
      if (b == -1)
        return 0 - (uint64_t) a;
      return (uint64_t) (a / b);
    case LENS_BINARY_FMOD:
    case LENS_BINARY_MOD:
      if (b == 0 || b == -1)
        return 0;
      r = a % b;
      if (op == LENS_BINARY_MOD && r != 0 && (r < 0) != (b < 0))
        r += b;
      return (uint64_t) r;
    case LENS_BINARY_POW:
      return b < 0 ? (uint64_t) int_pow_negative (a, b & 1) :
          int_pow ((uint64_t) a, (uint64_t) b);
  }
  return 0;
}

static uint64_t
unsigned_binary (LensBinaryOp op, uint64_t a, uint64_t b)
{
  switch (op) {
    case LENS_BINARY_ADD: return a + b;
    case LENS_BINARY_SUB: return a - b;
    case LENS_BINARY_MUL: return a * b;
    case LENS_BINARY_DIV: return b == 0 ? 0 : a / b;
    case LENS_BINARY_FMOD:
    case LENS_BINARY_MOD: return b == 0 ? 0 : a % b;
    case LENS_BINARY_POW: return int_pow (a, b);
  }
  return 0;
}

/* Pow of an integer base: numpy raises to a float exponent in float64 and
 * truncates; an integral exponent is taken exactly, like an integer one. */
static uint64_t
int_base_pow (int64_t a, const LensTensor * b, int64_t ib)
{
  if (lens_dtype_is_float (b->dtype)) {
    double e = lens_tensor_get_f64 (b, ib);
    if (e == floor (e) && fabs (e) < 9.0e18)
      return signed_binary (LENS_BINARY_POW, a, (int64_t) e);
    return (uint64_t) lens_ref_float_to_int64 (pow ((double) a, e));
  }
  if (dtype_is_unsigned (b->dtype))
    return int_pow ((uint64_t) a, get_int (b, ib));
  return signed_binary (LENS_BINARY_POW, a, (int64_t) get_int (b, ib));
}

void
lens_ref_binary (LensBinaryOp op, const LensTensor * a, const LensTensor * b,
    LensTensor * y)
{
  int64_t a_strides[LENS_MAX_DIMS], b_strides[LENS_MAX_DIMS];
  int64_t n = lens_tensor_numel (y);

  lens_broadcast_strides (a, y->ndim, y->shape, a_strides);
  lens_broadcast_strides (b, y->ndim, y->shape, b_strides);
  for (int64_t i = 0; i < n; i++) {
    int64_t rem = i, ia = 0, ib = 0;

    for (int d = y->ndim - 1; d >= 0; d--) {
      int64_t c = rem % y->shape[d];
      rem /= y->shape[d];
      ia += c * a_strides[d];
      ib += c * b_strides[d];
    }
    if (lens_dtype_is_float (a->dtype)) {
      lens_tensor_set_f64 (y, i, float_binary (op,
              lens_tensor_get_f64 (a, ia), lens_tensor_get_f64 (b, ib)));
    } else if (op == LENS_BINARY_POW && !dtype_is_unsigned (a->dtype)) {
      lens_ref_store_int (y, i, int_base_pow ((int64_t) get_int (a, ia), b,
              ib));
    } else if (dtype_is_unsigned (a->dtype)) {
      lens_ref_store_int (y, i, unsigned_binary (op, get_int (a, ia),
              get_int (b, ib)));
    } else {
      lens_ref_store_int (y, i, signed_binary (op, (int64_t) get_int (a, ia),
              (int64_t) get_int (b, ib)));
    }
  }
}

/* ---- unary ------------------------------------------------------------------- */

static double
unary (LensUnaryOp op, double alpha, double beta, double x)
{
  switch (op) {
    case LENS_UNARY_RELU: return x < 0 ? 0 : x;
    case LENS_UNARY_LEAKY_RELU: return x >= 0 ? x : x * alpha;
    case LENS_UNARY_SIGMOID: return 1 / (1 + exp (-x));
    case LENS_UNARY_HARD_SIGMOID: return fmin (fmax (alpha * x + beta, 0), 1);
    case LENS_UNARY_HARD_SWISH: return x * fmin (fmax (x / 6 + 0.5, 0), 1);
    case LENS_UNARY_EXP: return exp (x);
    case LENS_UNARY_FLOOR: return floor (x);
  }
  return NAN;
}

/* The same formulas in float, for float32 and float16 tensors: rounding
 * each step to float as the kernels do keeps float16 results identical. */
static float
unary_float (LensUnaryOp op, float alpha, float beta, float x)
{
  switch (op) {
    case LENS_UNARY_RELU: return x < 0 ? 0 : x;
    case LENS_UNARY_LEAKY_RELU: return x >= 0 ? x : x * alpha;
    case LENS_UNARY_SIGMOID: return lens_logistic (x);
    case LENS_UNARY_HARD_SIGMOID:
      return fminf (fmaxf (alpha * x + beta, 0.0f), 1.0f);
    case LENS_UNARY_HARD_SWISH:
      return x * fminf (fmaxf (x / 6.0f + 0.5f, 0.0f), 1.0f);
    case LENS_UNARY_EXP: return expf (x);
    case LENS_UNARY_FLOOR: return floorf (x);
  }
  return NAN;
}

void
lens_ref_unary (LensUnaryOp op, float alpha, float beta, const LensTensor * x,
    LensTensor * y)
{
  int64_t n = lens_tensor_numel (y);

  for (int64_t i = 0; i < n; i++) {
    if (x->dtype == LENS_DTYPE_DOUBLE) {
      lens_tensor_set_f64 (y, i, unary (op, alpha, beta,
              lens_tensor_get_f64 (x, i)));
    } else if (lens_dtype_is_float (x->dtype)) {
      lens_tensor_set_f64 (y, i, unary_float (op, alpha, beta,
              (float) lens_tensor_get_f64 (x, i)));
    } else {
      /* integer Relu, the only integer unary op */
      int64_t v = lens_tensor_get_i64 (x, i);
      lens_ref_store_int (y, i, (uint64_t) (v < 0 ? 0 : v));
    }
  }
}

/* ---- Clip -------------------------------------------------------------------- */

void
lens_ref_clip (const LensTensor * x, const LensTensor * min_value,
    const LensTensor * max_value, gboolean has_min_attr, float min_attr,
    gboolean has_max_attr, float max_attr, LensTensor * y)
{
  gboolean has_min = min_value != NULL || has_min_attr;
  gboolean has_max = max_value != NULL || has_max_attr;
  int64_t n = lens_tensor_numel (y);

  for (int64_t i = 0; i < n; i++) {
    if (lens_dtype_is_float (x->dtype)) {
      double v = lens_tensor_get_f64 (x, i);
      double lo = min_value ? lens_tensor_get_f64 (min_value, 0) : min_attr;
      double hi = max_value ? lens_tensor_get_f64 (max_value, 0) : max_attr;
      if (has_min && v < lo)
        v = lo;
      if (has_max && v > hi)
        v = hi;
      lens_tensor_set_f64 (y, i, v);
    } else if (dtype_is_unsigned (x->dtype)) {
      uint64_t v = get_int (x, i);
      uint64_t lo = min_value ? get_int (min_value, 0) : 0;
      uint64_t hi = max_value ? get_int (max_value, 0) : 0;
      if (min_value != NULL && v < lo)
        v = lo;
      if (max_value != NULL && v > hi)
        v = hi;
      lens_ref_store_int (y, i, v);
    } else {
      int64_t v = (int64_t) get_int (x, i);
      int64_t lo = min_value ? (int64_t) get_int (min_value, 0) : 0;
      int64_t hi = max_value ? (int64_t) get_int (max_value, 0) : 0;
      if (min_value != NULL && v < lo)
        v = lo;
      if (max_value != NULL && v > hi)
        v = hi;
      lens_ref_store_int (y, i, (uint64_t) v);
    }
  }
}
