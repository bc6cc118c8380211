/* matmul.h: plain-C references of MatMul and Gemm (ref/matmul.c), the
 * truth the kernels of ops/matmul.c are tested against. */
#ifndef LENS_REF_MATMUL_H
#define LENS_REF_MATMUL_H

#include "lens-private.h"

G_BEGIN_DECLS

/* numpy.matmul of float tensors @a and @b into @y (shape already set),
 * then the fused activation @act. */
void lens_ref_matmul (const LensTensor *a, const LensTensor *b, LensTensor *y,
    const LensActivation *act);

/* y = act (alpha * op (a) op (b) + beta * c), op transposing when asked,
 * @c (or NULL) broadcast to [M, N]. */
void lens_ref_gemm (const LensTensor *a, const LensTensor *b,
    const LensTensor *c, LensTensor *y, gboolean trans_a, gboolean trans_b,
    float alpha, float beta, const LensActivation *act);

G_END_DECLS

#endif /* LENS_REF_MATMUL_H */
