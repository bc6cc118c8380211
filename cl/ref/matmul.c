/* ref/matmul.c: plain-C references of MatMul (numpy.matmul) and Gemm, and
 * the summation plan they share with kernels/matmul.cl.
 *
 * lens reproduces ONNX Runtime's CPU results bit for bit, so every output
 * is summed in the order MLAS's x86-64 sgemm sums it (sgemm.cpp,
 * SgemmKernelM1Avx.S, SgemmKernelM1TransposeBAvx.S, and the FMA / AVX512F
 * kernels): see LensMatMulOrder. Products and sums are single precision;
 * fmaf () is written out where MLAS fuses and nothing else may be
 * contracted (the build targets no FMA instructions by default). */
#include "ref/matmul.h"

#include <math.h>

/* ONNX Runtime's intra-op threads in the runs lens is compared with
 * (tests/ort/regenerate): where a product is split between threads
 * decides how each part sums. */
#define ORT_THREADS 2
/* MLAS's constants (mlasi.h) */
#define SGEMM_THREAD_COMPLEXITY 65536.0
#define SGEMM_STRIDEN 128
#define SGEMM_STRIDEK 128
#define SGEMM_PACKED_STRIDEK 256
#define SGEMM_STRIDEN_THREAD_ALIGN 16

/* The order MlasSgemmOperation () (or the packed variant) takes for a
 * segment of @Ms rows and @Ns columns of a product with @N columns. */
static void
segment_order (LensMatMulPlan * plan, int s, int64_t Ms, int64_t Ns,
    int64_t N, int64_t K, gboolean trans_a, gboolean trans_b,
    gboolean packed, float alpha, float beta)
{
  gboolean gemv = alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
  int k_block = SGEMM_STRIDEK;
  int order = LENS_MM_ORDER_BLOCKED;

  if (packed) {
    k_block = SGEMM_PACKED_STRIDEK;
  } else if (K == 0) {
    /* nothing to sum */
  } else if (Ms == 1 && !trans_a && gemv) {
    order = trans_b ? LENS_MM_ORDER_LANES_N : LENS_MM_ORDER_GROUP4;
  } else if (N == 1 && (!trans_b || K == 1) && gemv) {
    /* B and C are contiguous columns (ldb = ldc = 1): A and B swap */
    order = trans_a ? LENS_MM_ORDER_GROUP4 : LENS_MM_ORDER_LANES_M;
  } else if (Ns < K && !trans_a) {
    /* a narrow B panel grows along K instead */
    int stride_n = SGEMM_STRIDEN;
    while (stride_n > 16 && stride_n / 2 >= Ns) {
      k_block *= 2;
      stride_n /= 2;
    }
  }
  plan->order[s] = order;
  plan->k_block[s] = k_block;
}

void
lens_matmul_plan (LensMatMulPlan * plan, int64_t M, int64_t N, int64_t K,
    int64_t gemms, gboolean fold, gboolean trans_a, gboolean trans_b,
    gboolean packed, float alpha, float beta)
{
  /* MlasGemmBatch (): threads by complexity, shared among the batches */
  double complexity = (double) M * (double) N * (double) K;
  int64_t threads = (int64_t) (complexity / SGEMM_THREAD_COMPLEXITY) + 1;
  int64_t per_gemm;

  threads = MIN (threads, ORT_THREADS);
  per_gemm = (threads + MAX (gemms, 1) - 1) / MAX (gemms, 1);
  plan->rows = (int) M;
  plan->split_m = G_MAXINT;
  plan->split_n = G_MAXINT;
  plan->fold = fold;
  if (N > M) {
    int64_t blocked = (N + SGEMM_STRIDEN_THREAD_ALIGN - 1) /
        SGEMM_STRIDEN_THREAD_ALIGN;
    /* MlasPartitionWork () gives the first thread the odd block */
    if (MIN (per_gemm, blocked) >= 2)
      plan->split_n = (int) (SGEMM_STRIDEN_THREAD_ALIGN * ((blocked + 1) / 2));
  } else if (MIN (per_gemm, M) >= 2) {
    plan->split_m = (int) ((M + 1) / 2);
  }
  segment_order (plan, 0, MIN (plan->split_m, M), MIN (plan->split_n, N),
      N, K, trans_a, trans_b, packed, alpha, beta);
  segment_order (plan, 1, plan->split_m < M ? M - plan->split_m : M,
      plan->split_n < N ? N - plan->split_n : N, N, K, trans_a, trans_b,
      packed, alpha, beta);
}

/* Output (row @r in the plan's numbering, column @n) of a product with
 * @N columns: its order, block and, for the lane orders, its position
 * and the count of outputs in its segment along the lanes' dimension. */
static int
output_order (const LensMatMulPlan * plan, int64_t N, int64_t r, int64_t n,
    int *k_block, int64_t *pos, int64_t *count)
{
  gboolean sm = r >= plan->split_m, sn = n >= plan->split_n;
  int s = sm || sn;

  *k_block = plan->k_block[s];
  if (plan->order[s] == LENS_MM_ORDER_LANES_M) {
    *pos = r - (sm ? plan->split_m : 0);
    *count = sm ? plan->rows - plan->split_m : MIN (plan->split_m, plan->rows);
  } else {
    *pos = n - (sn ? plan->split_n : 0);
    *count = sn ? N - plan->split_n : MIN (plan->split_n, N);
  }
  return plan->order[s];
}

/* One output: the @K products a[k * sa] * b[k * sb] summed in @order,
 * added to @c (C already times beta) when @has_c. */
static float
mm_dot (const float *a, int64_t sa, const float *b, int64_t sb, int64_t K,
    int order, int k_block, int64_t pos, int64_t count, gboolean has_c,
    float c, float alpha)
{
  float y = has_c ? c : 0.0f;
  int64_t k = 0;

  switch (order) {
    case LENS_MM_ORDER_GROUP4:
      for (; k + 4 <= K; k += 4) {
        float t = a[k * sa] * b[k * sb];
        t = t + a[(k + 1) * sa] * b[(k + 1) * sb];
        t = t + a[(k + 2) * sa] * b[(k + 2) * sb];
        t = t + a[(k + 3) * sa] * b[(k + 3) * sb];
        y = t + y;
      }
      if (K - k >= 2) {
        float t = a[k * sa] * b[k * sb];
        t = t + a[(k + 1) * sa] * b[(k + 1) * sb];
        y = t + y;
        k += 2;
      }
      if (k < K)
        y = a[k * sa] * b[k * sb] + y;
      return y;
    case LENS_MM_ORDER_LANES_N:
    case LENS_MM_ORDER_LANES_M:{
      float l[8] = { 0 }, s;
      int64_t n4 = count & ~(int64_t) 3;

      for (; k < K; k += 8)
        for (int j = 0; j < 8; j++)
          l[j] = l[j] + (k + j < K ? a[(k + j) * sa] * b[(k + j) * sb] : 0.0f);
      if (pos < n4)
        s = (((l[0] + l[1]) + l[2]) + l[3]) + (((l[4] + l[5]) + l[6]) + l[7]);
      else if (pos < n4 + (count & 2))
        s = ((l[0] + l[2]) + (l[4] + l[6])) + ((l[1] + l[3]) + (l[5] + l[7]));
      else
        s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
      return s + y;
    }
    case LENS_MM_ORDER_BLOCKED:
    default:
      for (; k < K; k += k_block) {
        int64_t end = MIN (k + k_block, K);
        float acc = 0.0f;
        for (int64_t i = k; i < end; i++)
          acc = fmaf (a[i * sa], b[i * sb], acc);
        y = !has_c && k == 0 ? acc * alpha : fmaf (acc, alpha, y);
      }
      return y;
  }
}

void
lens_ref_matmul (const LensTensor * a, const LensTensor * b, LensTensor * y,
    const LensMatMulPlan * plan, const LensActivation * act)
{
  /* 1-D operands become [1, K] and [K, 1]; batch dims broadcast */
  int64_t ashape[LENS_MAX_DIMS + 1], bshape[LENS_MAX_DIMS + 1];
  int64_t yshape[LENS_MAX_DIMS + 1];
  int ar = MAX (a->ndim, 2), br = MAX (b->ndim, 2), nb = MAX (ar, br) - 2;
  int64_t M, N, K, batches = 1, idx[LENS_MAX_DIMS] = { 0 };
  const float *ap = a->host, *bp = b->host;
  float *yp = y->host;

  if (a->ndim == 1) {
    ashape[0] = 1;
    ashape[1] = a->shape[0];
  } else {
    for (int d = 0; d < ar; d++)
      ashape[d] = a->shape[d];
  }
  if (b->ndim == 1) {
    bshape[0] = b->shape[0];
    bshape[1] = 1;
  } else {
    for (int d = 0; d < br; d++)
      bshape[d] = b->shape[d];
  }
  M = ashape[ar - 2];
  K = ashape[ar - 1];
  N = bshape[br - 1];
  for (int d = 0; d < nb; d++) {
    int ad = d - (nb - (ar - 2)), bd = d - (nb - (br - 2));
    int64_t as = ad >= 0 ? ashape[ad] : 1, bs = bd >= 0 ? bshape[bd] : 1;
    yshape[d] = MAX (as, bs);
    if (as == 0 || bs == 0)
      yshape[d] = 0;
    batches *= yshape[d];
  }

  for (int64_t t = 0; t < batches; t++) {
    int64_t aoff = 0, boff = 0;
    /* row-major offsets of this batch in a and b, broadcast dims pinned */
    for (int d = 0; d < nb; d++) {
      int ad = d - (nb - (ar - 2)), bd = d - (nb - (br - 2));
      if (ad >= 0)
        aoff = aoff * ashape[ad] + (ashape[ad] == 1 ? 0 : idx[d]);
      if (bd >= 0)
        boff = boff * bshape[bd] + (bshape[bd] == 1 ? 0 : idx[d]);
    }
    aoff *= M * K;
    boff *= K * N;
    for (int64_t m = 0; m < M; m++) {
      int64_t r = plan->fold ? t * M + m : m;
      for (int64_t n = 0; n < N; n++) {
        int64_t pos, count;
        int k_block, order = output_order (plan, N, r, n, &k_block, &pos,
            &count);
        float v = mm_dot (ap + aoff + m * K, 1, bp + boff + n, N, K, order,
            k_block, pos, count, FALSE, 0.0f, 1.0f);
        yp[(t * M + m) * N + n] = lens_activation_apply (act, v);
      }
    }
    for (int d = nb - 1; d >= 0; d--) {
      if (++idx[d] < yshape[d])
        break;
      idx[d] = 0;
    }
  }
}

void
lens_ref_gemm (const LensTensor * a, const LensTensor * b,
    const LensTensor * c, LensTensor * y, gboolean trans_a,
    gboolean trans_b, float alpha, float beta, const LensMatMulPlan * plan,
    const LensActivation * act)
{
  int64_t M = a->shape[trans_a ? 1 : 0], K = a->shape[trans_a ? 0 : 1];
  int64_t N = b->shape[trans_b ? 0 : 1];
  int64_t sam = trans_a ? 1 : K, sak = trans_a ? M : 1;
  int64_t sbk = trans_b ? 1 : N, sbn = trans_b ? K : 1;
  const float *ap = a->host, *bp = b->host, *cp = c ? c->host : NULL;
  /* ONNX Runtime reads nothing from C when beta is 0 */
  gboolean has_c = c != NULL && beta != 0.0f;
  float *yp = y->host;

  for (int64_t m = 0; m < M; m++) {
    for (int64_t n = 0; n < N; n++) {
      int64_t pos, count;
      int k_block, order = output_order (plan, N, m, n, &k_block, &pos,
          &count);
      float cv = 0.0f, v;
      if (has_c) {
        /* unidirectional broadcast of c to [M, N], then times beta */
        int64_t cm = 0, cn = 0, cols = 1;
        if (c->ndim >= 1) {
          cols = c->shape[c->ndim - 1];
          cn = cols == 1 ? 0 : n;
        }
        if (c->ndim == 2)
          cm = c->shape[0] == 1 ? 0 : m;
        cv = cp[cm * cols + cn] * beta;
      }
      v = mm_dot (ap + m * sam, sak, bp + n * sbn, sbk, K, order, k_block,
          pos, count, has_c, cv, alpha);
      yp[m * N + n] = lens_activation_apply (act, v);
    }
  }
}
