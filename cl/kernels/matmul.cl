/* matmul.cl: the matrix product behind MatMul and Gemm,
 *   y[batch][m][n] = act (alpha * sum_k a[m][k] * b[k][n] + beta * c[m][n])
 * with every operand addressed through strides, which covers transposed
 * Gemm operands, broadcast batch dimensions (stride 0) and a broadcast bias.
 *
 * Built with -DTILE_M, -DTILE_N, -DTILE_K, -DWPT_M, -DWPT_N (the host reads
 * the same constants for the work-group size) and optionally -DACT=n for a
 * fused activation. */

#define MM_THREADS_M (TILE_M / WPT_M)
#define MM_THREADS_N (TILE_N / WPT_N)
#define MM_THREADS (MM_THREADS_M * MM_THREADS_N)

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

inline float
lens_mm_epilogue (float acc, __global const float *c, long m, long n,
    long scm, long scn, int has_c, float alpha, float beta, float act_alpha,
    float act_beta)
{
  float v = alpha * acc;

  if (has_c)
    v += beta * c[m * scm + n * scn];
  return lens_activate (v, act_alpha, act_beta);
}

/* Tiled product: a work-group of MM_THREADS items computes a TILE_M x
 * TILE_N block of one batch, each item WPT_M x WPT_N outputs (strided by
 * the thread grid so that local reads and global writes are contiguous).
 * 1-D groups numbered n-tile fastest, then m-tile, then batch: no
 * dimension of the grid has a small limit. */
__kernel __attribute__ ((reqd_work_group_size (MM_THREADS, 1, 1)))
void
lens_mat_mul_tiled (__global const float *a, __global const float *b,
    __global const float *c, __global float *y, int M, int N, int K,
    long batches, long sam, long sak, long sbk, long sbn, long scm, long scn,
    long8 batch_shape, long8 a_bstride, long8 b_bstride, int has_c,
    float alpha, float beta, float act_alpha, float act_beta)
{
  /* +1 keeps column-wise stores free of bank conflicts */
  __local float as[TILE_K][TILE_M + 1];
  __local float bs[TILE_K][TILE_N + 1];
  float acc[WPT_M][WPT_N];
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

  for (int i = 0; i < WPT_M; i++)
    for (int j = 0; j < WPT_N; j++)
      acc[i][j] = 0.0f;

  for (int k0 = 0; k0 < K; k0 += TILE_K) {
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
  }

  for (int i = 0; i < WPT_M; i++) {
    int m = m0 + ty + i * MM_THREADS_M;
    if (m >= M)
      continue;
    for (int j = 0; j < WPT_N; j++) {
      int n = n0 + tx + j * MM_THREADS_N;
      if (n < N)
        yb[(long) m * N + n] = lens_mm_epilogue (acc[i][j], c, m, n, scm,
            scn, has_c, alpha, beta, act_alpha, act_beta);
    }
  }
}

/* One work-item per output: for thin products (matrix-vector, a few rows
 * or columns) where most of a tile would be idle. */
__kernel void
lens_mat_mul_direct (__global const float *a, __global const float *b,
    __global const float *c, __global float *y, int M, int N, int K,
    long batches, long sam, long sak, long sbk, long sbn, long scm, long scn,
    long8 batch_shape, long8 a_bstride, long8 b_bstride, int has_c,
    float alpha, float beta, float act_alpha, float act_beta)
{
  long gid = get_global_id (0);
  long n, m, batch;
  __global const float *ap, *bp;
  float acc = 0.0f;

  if (gid >= batches * M * N)
    return;
  n = gid % N;
  m = (gid / N) % M;
  batch = gid / N / M;
  ap = a + lens_batch_offset (batch, batch_shape, a_bstride) + m * sam;
  bp = b + lens_batch_offset (batch, batch_shape, b_bstride) + n * sbn;
  for (int k = 0; k < K; k++)
    acc = fma (ap[k * sak], bp[k * sbk], acc);
  y[gid] = lens_mm_epilogue (acc, c, m, n, scm, scn, has_c, alpha, beta,
      act_alpha, act_beta);
}
