/* ref/matmul.c: plain-C references of MatMul (numpy.matmul) and Gemm,
 * written straight from their definitions; sums are kept in double. */
#include "ref/matmul.h"

void
lens_ref_matmul (const LensTensor * a, const LensTensor * b, LensTensor * y,
    const LensActivation * act)
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
      for (int64_t n = 0; n < N; n++) {
        double sum = 0;
        for (int64_t k = 0; k < K; k++)
          sum += (double) ap[aoff + m * K + k] * bp[boff + k * N + n];
        yp[(t * M + m) * N + n] = lens_activation_apply (act, (float) sum);
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
    gboolean trans_b, float alpha, float beta, const LensActivation * act)
{
  int64_t M = a->shape[trans_a ? 1 : 0], K = a->shape[trans_a ? 0 : 1];
  int64_t N = b->shape[trans_b ? 0 : 1];
  const float *ap = a->host, *bp = b->host, *cp = c ? c->host : NULL;
  float *yp = y->host;

  for (int64_t m = 0; m < M; m++) {
    for (int64_t n = 0; n < N; n++) {
      double sum = 0;
      float v;
      for (int64_t k = 0; k < K; k++) {
        float av = trans_a ? ap[k * M + m] : ap[m * K + k];
        float bv = trans_b ? bp[n * K + k] : bp[k * N + n];
        sum += (double) av * bv;
      }
      v = alpha * (float) sum;
      if (c != NULL) {
        /* unidirectional broadcast of c to [M, N] */
        int64_t cm = 0, cn = 0, cols = 1;
        if (c->ndim >= 1) {
          cols = c->shape[c->ndim - 1];
          cn = cols == 1 ? 0 : n;
        }
        if (c->ndim == 2)
          cm = c->shape[0] == 1 ? 0 : m;
        v += beta * cp[cm * cols + cn];
      }
      yp[m * N + n] = lens_activation_apply (act, v);
    }
  }
}
