/* ref/elementwise.h: the plain-C references of the element-wise family
 * (ref/elementwise.c), which ops/elementwise.c checks its kernels against.
 * Private to the element-wise family. */
#ifndef LENS_REF_ELEMENTWISE_H
#define LENS_REF_ELEMENTWISE_H

#include "lens-private.h"

G_BEGIN_DECLS

typedef enum
{
  LENS_BINARY_ADD,
  LENS_BINARY_SUB,
  LENS_BINARY_MUL,
  LENS_BINARY_DIV,
  LENS_BINARY_POW,
  LENS_BINARY_MOD,              /* Python's %: sign of the divisor */
  LENS_BINARY_FMOD,             /* C's fmod: sign of the dividend */
} LensBinaryOp;

typedef enum
{
  LENS_UNARY_RELU,
  LENS_UNARY_LEAKY_RELU,
  LENS_UNARY_SIGMOID,
  LENS_UNARY_HARD_SIGMOID,
  LENS_UNARY_HARD_SWISH,
  LENS_UNARY_EXP,
  LENS_UNARY_FLOOR,
} LensUnaryOp;

/* y = op (a, b) under numpy broadcasting; y has a's dtype and the
 * broadcast shape. Integers wrap around; integer Div truncates toward
 * zero; x / 0 and x mod 0 give 0 for integers. */
void lens_ref_binary (LensBinaryOp op, const LensTensor * a,
    const LensTensor * b, LensTensor * y);

/* y = f (x); alpha and beta as the op defines them (LeakyRelu alpha,
 * HardSigmoid alpha and beta). */
void lens_ref_unary (LensUnaryOp op, float alpha, float beta,
    const LensTensor * x, LensTensor * y);

/* y = min (max (x, lo), hi) with each bound optional: the first element of
 * @min_value / @max_value when non-NULL, else @min_attr / @max_attr when
 * @has_min_attr / @has_max_attr. */
void lens_ref_clip (const LensTensor * x, const LensTensor * min_value,
    const LensTensor * max_value, gboolean has_min_attr, float min_attr,
    gboolean has_max_attr, float max_attr, LensTensor * y);

/* Float to integer as numpy does it on common hardware: truncation toward
 * zero through int64; NaN gives 0 and out-of-range values INT64_MIN. The
 * unsigned version keeps [2^63, 2^64) exact. Shared with Cast. */
int64_t lens_ref_float_to_int64 (double v);
uint64_t lens_ref_float_to_uint64 (double v);

/* Stores the low bits of @v into integer element @i of @t (bool: v != 0). */
void lens_ref_store_int (LensTensor * t, int64_t i, uint64_t v);

G_END_DECLS

#endif /* LENS_REF_ELEMENTWISE_H */
