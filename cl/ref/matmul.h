/* matmul.h: plain-C references of MatMul and Gemm (ref/matmul.c), the
 * truth the kernels of ops/matmul.c are tested against, and the summation
 * plan both follow (the order ONNX Runtime's MLAS sgemm adds in). */
#ifndef LENS_REF_MATMUL_H
#define LENS_REF_MATMUL_H

#include "lens-private.h"

G_BEGIN_DECLS

/* How the K products of one output are summed; MLAS picks one per
 * thread segment of the product (see lens_matmul_plan ()). */
typedef enum
{
  /* the sgemm kernel: K cut into blocks of k_block, an fma chain from 0
   * within each block, each block's sum then added to the output
   * (y = fma (block, alpha, y); the first of them y = block * alpha when
   * there is no C) */
  LENS_MM_ORDER_BLOCKED = 0,
  /* the M = 1 kernel: products rounded, added 4 at a time
   * (((p0 + p1) + p2) + p3) and each group then added to the output */
  LENS_MM_ORDER_GROUP4 = 1,
  /* the M = 1 kernel for a transposed B, by output column: 8 lanes, lane
   * l summing products l, l + 8, ... (products rounded, no fma), reduced
   * in the order of the 4-, 2- or 1-column block the column falls in */
  LENS_MM_ORDER_LANES_N = 2,
  /* the same kernel used for N = 1 (A and B swapped), by output row */
  LENS_MM_ORDER_LANES_M = 3,
} LensMatMulOrder;

/* Where MLAS's (two) threads split the product and how each segment
 * sums. Rows are ONNX Runtime's: numbered across batches when @fold. */
typedef struct
{
  int rows;                     /* rows of one product (folded) */
  int split_m;                  /* first row of segment 1 (G_MAXINT: none) */
  int split_n;                  /* first column of segment 1 (or G_MAXINT) */
  int order[2];                 /* a LensMatMulOrder per segment */
  int k_block[2];               /* block of LENS_MM_ORDER_BLOCKED */
  gboolean fold;                /* A's batches are rows of one product */
} LensMatMulPlan;

/* The plan of one MLAS product of @gemms batches of @M x @K by @K x @N
 * (M counted as ONNX Runtime does: with A's batches folded in when
 * @fold), @packed when B is a constant ONNX Runtime pre-packs, @alpha
 * and @beta as MLAS gets them (beta 0 when nothing is read from C). */
void lens_matmul_plan (LensMatMulPlan *plan, int64_t M, int64_t N, int64_t K,
    int64_t gemms, gboolean fold, gboolean trans_a, gboolean trans_b,
    gboolean packed, float alpha, float beta);

/* numpy.matmul of float tensors @a and @b into @y (shape already set),
 * summed as @plan says, then the fused activation @act. */
void lens_ref_matmul (const LensTensor *a, const LensTensor *b, LensTensor *y,
    const LensMatMulPlan *plan, const LensActivation *act);

/* y = act (alpha * op (a) op (b) + beta * c), op transposing when asked,
 * @c (or NULL) broadcast to [M, N], summed as @plan says. */
void lens_ref_gemm (const LensTensor *a, const LensTensor *b,
    const LensTensor *c, LensTensor *y, gboolean trans_a, gboolean trans_b,
    float alpha, float beta, const LensMatMulPlan *plan,
    const LensActivation *act);

G_END_DECLS

#endif /* LENS_REF_MATMUL_H */
