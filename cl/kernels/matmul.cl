/* matmul.cl: the matrix product behind MatMul and Gemm,
 *   y[batch][m][n] = act (alpha * sum_k a[m][k] * b[k][n] + beta * c[m][n])
 * with every operand addressed through strides, which covers transposed
 * Gemm operands, broadcast batch dimensions (stride 0) and a broadcast bias.
 *
 * Each sum is taken in the order ONNX Runtime's MLAS sgemm takes it, so
 * that results match it bit for bit (ref/matmul.c has the same arithmetic
 * and the details): the host's plan (lens_matmul_plan (), passed as an
 * int8: rows, split_m, split_n (INT_MAX where not split), order of
 * segment 0 and 1, k_block of segment 0 and 1, fold) says where MLAS's threads split the product
 * and how each part sums. C is read only when has_c (ONNX Runtime reads
 * nothing when beta is 0) and is scaled by beta before anything is added.
 *
 * Built with -DTILE_M, -DTILE_N, -DTILE_K, -DWPT_M, -DWPT_N (the host reads
 * the same constants for the work-group size) and optionally -DACT=n for a
 * fused activation. */

/* products and sums are rounded one by one unless fma () says otherwise */
#pragma OPENCL FP_CONTRACT OFF

#define MM_THREADS_M (TILE_M / WPT_M)
#define MM_THREADS_N (TILE_N / WPT_N)
#define MM_THREADS (MM_THREADS_M * MM_THREADS_N)

/* LensMatMulOrder */
#define MM_BLOCKED 0
#define MM_GROUP4 1
#define MM_LANES_N 2
#define MM_LANES_M 3

/* Offset of flat batch index @b over up to eight batch dimensions (s7
 * innermost; unused ones have shape 1). */
inline long
lens_batch_offset (long b, long8 shape, long8 stride)
{
  long off = 0;

  off += (b % shape.s7) * stride.s7;
  b /= shape.s7;
  off += (b % shape.s6) * stride.s6;
  b /= shape.s6;
  off += (b % shape.s5) * stride.s5;
  b /= shape.s5;
  off += (b % shape.s4) * stride.s4;
  b /= shape.s4;
  off += (b % shape.s3) * stride.s3;
  b /= shape.s3;
  off += (b % shape.s2) * stride.s2;
  b /= shape.s2;
  off += (b % shape.s1) * stride.s1;
  b /= shape.s1;
  return off + b * stride.s0;
}

/* C's contribution to output (m, n): beta * c, as MLAS scales the copy of
 * C it accumulates into. */
inline float
lens_mm_c (__global const float *c, long m, long n, long scm, long scn,
    float beta)
{
  return c[m * scm + n * scn] * beta;
}

/* One output: the K products a[k * sa] * b[k * sb] summed in @order (see
 * LensMatMulOrder in ref/matmul.h), added to @cv when @has_c. @pos and
 * @count place the output among its segment's for the lane orders. */
inline float
lens_mm_dot (__global const float *a, long sa, __global const float *b,
    long sb, int K, int order, int k_block, int pos, int count, int has_c,
    float cv, float alpha)
{
  float y = has_c ? cv : 0.0f;
  int k = 0;

  if (order == MM_GROUP4) {
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
  } else if (order == MM_LANES_N || order == MM_LANES_M) {
    float l[8] = { 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f }, s;
    int n4 = count & ~3;

    for (; k < K; k += 8)
      for (int j = 0; j < 8; j++)
        l[j] = l[j] + (k + j < K ? a[(k + j) * sa] * b[(k + j) * sb] : 0.0f);
    /* the reduction of the 4-, 2- or 1-output block this one is in */
    if (pos < n4)
      s = (((l[0] + l[1]) + l[2]) + l[3]) + (((l[4] + l[5]) + l[6]) + l[7]);
    else if (pos < n4 + (count & 2))
      s = ((l[0] + l[2]) + (l[4] + l[6])) + ((l[1] + l[3]) + (l[5] + l[7]));
    else
      s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    y = s + y;
  } else {
    for (; k < K; k += k_block) {
      int end = min (k + k_block, K);
      float acc = 0.0f;
      for (int i = k; i < end; i++)
        acc = fma (a[i * sa], b[i * sb], acc);
      y = !has_c && k == 0 ? acc * alpha : fma (acc, alpha, y);
    }
  }
  return y;
}

/* Tiled product: a work-group of MM_THREADS items computes a TILE_M x
 * TILE_N block of one batch, each item WPT_M x WPT_N outputs (strided by
 * the thread grid so that local reads and global writes are contiguous).
 * 1-D groups numbered n-tile fastest, then m-tile, then batch: no
 * dimension of the grid has a small limit. Only for plans whose segments
 * both sum MM_BLOCKED; k_block is a power of two and a multiple of
 * TILE_K, so blocks end where tiles end. */
__kernel __attribute__ ((reqd_work_group_size (MM_THREADS, 1, 1)))
void
lens_mat_mul_tiled (__global const float *a, __global const float *b,
    __global const float *c, __global float *y, int M, int N, int K,
    long batches, long sam, long sak, long sbk, long sbn, long scm, long scn,
    long8 batch_shape, long8 a_bstride, long8 b_bstride, int has_c,
    float alpha, float beta, float act_alpha, float act_beta, int8 plan)
{
  /* +1 keeps column-wise stores free of bank conflicts */
  __local float as[TILE_K][TILE_M + 1];
  __local float bs[TILE_K][TILE_N + 1];
  /* acc: the running block's fma chain; part: the output so far */
  float acc[WPT_M][WPT_N], part[WPT_M][WPT_N];
  int kb[WPT_N];
  int lid = get_local_id (0);
  int tx = lid % MM_THREADS_N, ty = lid / MM_THREADS_N;
  long g = get_group_id (0);
  int tiles_n = (N + TILE_N - 1) / TILE_N, tiles_m = (M + TILE_M - 1) / TILE_M;
  int m0 = (int) ((g / tiles_n) % tiles_m) * TILE_M;
  int n0 = (int) (g % tiles_n) * TILE_N;
  long batch = g / tiles_n / tiles_m;
  __global const float *ab, *bb;
  __global float *yb;

  if (batch >= batches)
    return;
  ab = a + lens_batch_offset (batch, batch_shape, a_bstride);
  bb = b + lens_batch_offset (batch, batch_shape, b_bstride);
  yb = y + batch * M * N;

  for (int j = 0; j < WPT_N; j++)
    kb[j] = tx + j * MM_THREADS_N + n0 >= plan.s2 ? plan.s6 : plan.s5;
  for (int i = 0; i < WPT_M; i++) {
    int m = m0 + ty + i * MM_THREADS_M;
    for (int j = 0; j < WPT_N; j++) {
      int n = n0 + tx + j * MM_THREADS_N;
      acc[i][j] = 0.0f;
      part[i][j] = has_c && m < M && n < N ?
          lens_mm_c (c, m, n, scm, scn, beta) : 0.0f;
    }
  }

  for (int k0 = 0; k0 < K; k0 += TILE_K) {
    int kend = k0 + TILE_K;

    /* load along whichever operand dimension is contiguous in memory */
    for (int l = lid; l < TILE_M * TILE_K; l += MM_THREADS) {
      int mm, kk, gm, gk;
      if (sak == 1) {
        kk = l % TILE_K;
        mm = l / TILE_K;
      } else {
        mm = l % TILE_M;
        kk = l / TILE_M;
      }
      gm = m0 + mm;
      gk = k0 + kk;
      as[kk][mm] = (gm < M && gk < K) ? ab[gm * sam + gk * sak] : 0.0f;
    }
    for (int l = lid; l < TILE_K * TILE_N; l += MM_THREADS) {
      int nn, kk, gn, gk;
      if (sbn == 1) {
        nn = l % TILE_N;
        kk = l / TILE_N;
      } else {
        kk = l % TILE_K;
        nn = l / TILE_K;
      }
      gn = n0 + nn;
      gk = k0 + kk;
      bs[kk][nn] = (gn < N && gk < K) ? bb[gk * sbk + gn * sbn] : 0.0f;
    }
    barrier (CLK_LOCAL_MEM_FENCE);

    for (int kk = 0; kk < TILE_K; kk++) {
      float ar[WPT_M], br[WPT_N];
      for (int i = 0; i < WPT_M; i++)
        ar[i] = as[kk][ty + i * MM_THREADS_M];
      for (int j = 0; j < WPT_N; j++)
        br[j] = bs[kk][tx + j * MM_THREADS_N];
      for (int i = 0; i < WPT_M; i++)
        for (int j = 0; j < WPT_N; j++)
          acc[i][j] = fma (ar[i], br[j], acc[i][j]);
    }
    barrier (CLK_LOCAL_MEM_FENCE);

    /* a K block ends here: its sum goes into the output (zero padding
     * past K added nothing to the chains) */
    for (int j = 0; j < WPT_N; j++) {
      if ((kend & (kb[j] - 1)) != 0 && kend < K)
        continue;
      for (int i = 0; i < WPT_M; i++) {
        part[i][j] = !has_c && kend <= kb[j] ? acc[i][j] * alpha :
            fma (acc[i][j], alpha, part[i][j]);
        acc[i][j] = 0.0f;
      }
    }
  }

  for (int i = 0; i < WPT_M; i++) {
    int m = m0 + ty + i * MM_THREADS_M;
    if (m >= M)
      continue;
    for (int j = 0; j < WPT_N; j++) {
      int n = n0 + tx + j * MM_THREADS_N;
      if (n < N)
        yb[(long) m * N + n] = lens_activate (part[i][j], act_alpha,
            act_beta);
    }
  }
}

/* One work-item per output: for thin products (matrix-vector, a few rows
 * or columns) where most of a tile would be idle, and for every order. */
__kernel void
lens_mat_mul_direct (__global const float *a, __global const float *b,
    __global const float *c, __global float *y, int M, int N, int K,
    long batches, long sam, long sak, long sbk, long sbn, long scm, long scn,
    long8 batch_shape, long8 a_bstride, long8 b_bstride, int has_c,
    float alpha, float beta, float act_alpha, float act_beta, int8 plan)
{
  long gid = get_global_id (0);
  long n, m, batch, r;
  __global const float *ap, *bp;
  int sm, sn, s, order, pos, count;
  float cv;

  if (gid >= batches * M * N)
    return;
  n = gid % N;
  m = (gid / N) % M;
  batch = gid / N / M;
  ap = a + lens_batch_offset (batch, batch_shape, a_bstride) + m * sam;
  bp = b + lens_batch_offset (batch, batch_shape, b_bstride) + n * sbn;

  /* the segment of MLAS's split this output is in, and its place there */
  r = plan.s7 ? batch * M + m : m;
  sm = r >= plan.s1;
  sn = n >= plan.s2;
  s = sm || sn;
  order = s ? plan.s4 : plan.s3;
  if (order == MM_LANES_M) {
    pos = (int) r - (sm ? plan.s1 : 0);
    count = sm ? plan.s0 - plan.s1 : min (plan.s1, plan.s0);
  } else {
    pos = (int) n - (sn ? plan.s2 : 0);
    count = sn ? N - plan.s2 : min (plan.s2, N);
  }
  cv = has_c ? lens_mm_c (c, m, n, scm, scn, beta) : 0.0f;
  y[gid] = lens_activate (lens_mm_dot (ap, sak, bp, sbk, K, order,
          s ? plan.s6 : plan.s5, pos, count, has_c, cv, alpha), act_alpha,
      act_beta);
}
