/* reduce.h: plain-C references of Softmax, ReduceMax and TopK (ref/reduce.c),
 * the truth the kernels of ops/reduce.c are tested against. */
#ifndef LENS_REF_REDUCE_H
#define LENS_REF_REDUCE_H

#include "lens-private.h"

G_BEGIN_DECLS

/* Softmax of each row of @x viewed as [outer, len, inner] (rows run along
 * the middle dimension), rounded as ONNX Runtime's CPU kernel (MLAS)
 * rounds it: see kernels/reduce.cl. */
void lens_ref_softmax (const float *x, float *y, int64_t outer, int64_t len,
    int64_t inner);

/* Max of @x over the dimensions flagged in @reduced into @y, whose element
 * count is that of the kept dimensions (keepdims or not: same layout). */
LensStatus lens_ref_reduce_max (const LensTensor *x, LensTensor *y,
    const gboolean *reduced, LensError *err);

/* The @k largest (or smallest) elements of @x along @axis, sorted, ties by
 * the smaller index; NaN ranks above every number. */
LensStatus lens_ref_top_k (const LensTensor *x, LensTensor *values,
    LensTensor *indices, int axis, int64_t k, gboolean largest,
    LensError *err);

G_END_DECLS

#endif /* LENS_REF_REDUCE_H */
