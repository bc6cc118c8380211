/* reduce.cl: Softmax, ReduceMax and TopK.
 *
 * Built once per element type with
 *   -DT=<cl type> -DT_LOWEST=<smallest value> [-DT_FLOAT=1] [-DT_SIGNED=1]
 *   -DKEY_BITS=32|64 -DGROUP_MAX=<largest work-group> -DTOPK_LOCAL_MAX=<K>
 * Softmax is float only and written with float, so every program compiles
 * it; the host only enqueues it from the float program.
 *
 * Rows: every op here works on "rows" of a tensor viewed as
 * [outer, len, inner]: row r = (o, i) starts at o * len * inner + i and
 * steps by inner. Rows along the last axis have inner == 1; rows along an
 * earlier axis (YOLO's softmax over 16 bins, axis 1) keep consecutive
 * work-items on consecutive addresses. */

/* ---- Softmax ----------------------------------------------------------------- */

/* Softmax reproduces ONNX Runtime's CPU kernel (MLAS on an AVX-512F x86-64)
 * bit for bit, because int8 models re-quantize its output and a last-bit
 * difference can move a value to the next quantization step. Per row:
 *   - the maximum (exact in any order);
 *   - e = exp (x - max) with MLAS's approximation (lens_softmax_exp ()),
 *     stored to the output;
 *   - the sum of the e's as 16 vector lanes: lane l adds e[l], e[l + 16],
 *     e[l + 32]... in order (a row's tail lanes add nothing, which is
 *     adding 0), then the lanes fold as ((s0 + s1) + (s2 + s3)) +
 *     ((s4 + s5) + (s6 + s7)) with s_i = lane i + lane (i + 8);
 *   - every e times 1 / sum.
 * The C reference (lens_ref_softmax () in ref/reduce.c) takes the same
 * steps. Contraction into fused multiply-adds would change the roundings,
 * hence the pragma; the fma () calls are the ones MLAS makes. */
#pragma OPENCL FP_CONTRACT OFF

#define SOFTMAX_LANES 16

/* exp (@v) for @v <= 0 (or NaN) as MLAS computes it: v = m ln2 + r with
 * m = round (v / ln2) (by the 1.5 * 2^23 rounding bias) and ln2 split in a
 * high and a low part, a degree 6 polynomial for exp (r), then r scaled by
 * 2^m rounded once, as VSCALEFPS does (two steps below 2^-126, the first
 * exact). Below -103.97 the result rounds to zero anyway. */
inline float
lens_softmax_exp (float v)
{
  float b, m, p;
  int e;

  v = -103.9720840454f > v ? -103.9720840454f : v;
  if (isnan (v))
    return v;
  b = fma (v, 1.44269504088896341f, 12582912.0f);
  m = b - 12582912.0f;
  v = fma (m, -6.93145752e-1f, v);
  v = fma (m, -1.42860677e-6f, v);
  p = fma (0x1.694000p-10f, v, 0x1.125edcp-7f);
  p = fma (p, v, 0x1.555b5ap-5f);
  p = fma (p, v, 0x1.555450p-3f);
  p = fma (p, v, 0x1.fffff6p-2f);
  p = fma (p, v, 1.0f);
  p = fma (p, v, 1.0f);
  e = (int) m;
  if (e >= -126)
    return p * as_float ((e + 127) << 23);
  return p * as_float ((e + 64 + 127) << 23) * 0x1p-64f;
}

/* The lanes' total, in the order of the AVX-512 horizontal reduction. */
inline float
lens_softmax_fold (const float *lane)
{
  float s[8];

  for (int i = 0; i < 8; i++)
    s[i] = lane[i] + lane[i + 8];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* One work-item per row: for many short rows. */
__kernel void
lens_softmax_rows (__global const float *x, __global float *y, long rows,
    int len, long inner)
{
  long r = get_global_id (0);
  long base;
  float m = -FLT_MAX, lane[SOFTMAX_LANES], scale;

  if (r >= rows)
    return;
  base = (r / inner) * len * inner + r % inner;
  for (int k = 0; k < len; k++) {
    float v = x[base + k * inner];
    m = v > m ? v : m;
  }
  for (int l = 0; l < SOFTMAX_LANES; l++)
    lane[l] = 0.0f;
  for (int j = 0; j < len; j += SOFTMAX_LANES) {
#pragma unroll
    for (int l = 0; l < SOFTMAX_LANES; l++) {
      if (j + l < len) {
        long at = base + (j + l) * inner;
        float e = lens_softmax_exp (x[at] - m);
        y[at] = e;
        lane[l] += e;
      }
    }
  }
  scale = 1.0f / lens_softmax_fold (lane);
  for (int k = 0; k < len; k++)
    y[base + k * inner] *= scale;
}

/* lens_softmax_exp () on 16 lanes, the same operations lane by lane (so
 * the same bits): both scalings computed, one selected. */
inline float16
lens_softmax_exp16 (float16 v)
{
  const float16 floor_v = (float16) (-103.9720840454f);
  float16 b, m, p, low, input;
  int16 e;

  v = select (v, floor_v, floor_v > v);
  input = v;
  b = fma (v, (float16) (1.44269504088896341f), (float16) (12582912.0f));
  m = b - 12582912.0f;
  v = fma (m, (float16) (-6.93145752e-1f), v);
  v = fma (m, (float16) (-1.42860677e-6f), v);
  p = fma ((float16) (0x1.694000p-10f), v, (float16) (0x1.125edcp-7f));
  p = fma (p, v, (float16) (0x1.555b5ap-5f));
  p = fma (p, v, (float16) (0x1.555450p-3f));
  p = fma (p, v, (float16) (0x1.fffff6p-2f));
  p = fma (p, v, (float16) (1.0f));
  p = fma (p, v, (float16) (1.0f));
  e = convert_int16 (m);
  low = p * as_float16 ((e + 64 + 127) << 23) * 0x1p-64f;
  p = select (low, p * as_float16 ((e + 127) << 23), e >= -126);
  return select (p, input, isnan (input));
}

/* One work-item per contiguous row (inner == 1) on CPU devices: the row
 * in float16 vectors, which are the 16 sum lanes themselves; the tail
 * past the last whole vector lane by lane. */
__kernel void
lens_softmax_rows16 (__global const float *x, __global float *y, long rows,
    int len)
{
  long r = get_global_id (0);
  const int whole = len / SOFTMAX_LANES * SOFTMAX_LANES;
  float16 m16 = (float16) (-FLT_MAX), sum16 = (float16) (0.0f);
  float m = -FLT_MAX, lane[SOFTMAX_LANES], scale;

  if (r >= rows)
    return;

  __global const float *in = x + r * len;
  __global float *out = y + r * len;

  for (int k = 0; k < whole; k += SOFTMAX_LANES) {
    float16 v = vload16 (0, in + k);
    m16 = select (m16, v, v > m16);
  }
  vstore16 (m16, 0, lane);
  for (int l = 0; l < SOFTMAX_LANES; l++)
    m = lane[l] > m ? lane[l] : m;
  for (int k = whole; k < len; k++)
    m = in[k] > m ? in[k] : m;
  for (int k = 0; k < whole; k += SOFTMAX_LANES) {
    float16 e = lens_softmax_exp16 (vload16 (0, in + k) - m);
    vstore16 (e, 0, out + k);
    sum16 += e;
  }
  vstore16 (sum16, 0, lane);
  for (int k = whole; k < len; k++) {
    float e = lens_softmax_exp (in[k] - m);
    out[k] = e;
    lane[k - whole] += e;
  }
  scale = 1.0f / lens_softmax_fold (lane);
  for (int k = 0; k < whole; k += SOFTMAX_LANES)
    vstore16 (vload16 (0, out + k) * scale, 0, out + k);
  for (int k = whole; k < len; k++)
    out[k] *= scale;
}

/* One work-group per row (local size a power of two <= GROUP_MAX): for long
 * rows. The exponentials are computed by every work-item and stored; then
 * one work-item per lane sums its lane from the output (the lane order
 * fixes the result), and all scale. */
__kernel void
lens_softmax_group (__global const float *x, __global float *y, int len,
    long inner)
{
  __local float red[GROUP_MAX > SOFTMAX_LANES ? GROUP_MAX : SOFTMAX_LANES];
  long r = get_group_id (0);
  int lid = get_local_id (0), ls = get_local_size (0);
  long base = (r / inner) * len * inner + r % inner;
  float m = -FLT_MAX, scale;

  for (int k = lid; k < len; k += ls) {
    float v = x[base + k * inner];
    m = v > m ? v : m;
  }
  red[lid] = m;
  barrier (CLK_LOCAL_MEM_FENCE);
  for (int h = ls / 2; h > 0; h /= 2) {
    if (lid < h)
      red[lid] = red[lid + h] > red[lid] ? red[lid + h] : red[lid];
    barrier (CLK_LOCAL_MEM_FENCE);
  }
  m = red[0];
  barrier (CLK_LOCAL_MEM_FENCE);

  for (int k = lid; k < len; k += ls) {
    long at = base + k * inner;
    y[at] = lens_softmax_exp (x[at] - m);
  }
  /* the lanes read what other work-items of the group stored */
  barrier (CLK_GLOBAL_MEM_FENCE);
  for (int l = lid; l < SOFTMAX_LANES; l += ls) {
    float s = 0.0f;
    for (int k = l; k < len; k += SOFTMAX_LANES)
      s += y[base + k * inner];
    red[l] = s;
  }
  barrier (CLK_LOCAL_MEM_FENCE);
  {
    float lane[SOFTMAX_LANES];
    for (int l = 0; l < SOFTMAX_LANES; l++)
      lane[l] = red[l];
    scale = 1.0f / lens_softmax_fold (lane);
  }
  for (int k = lid; k < len; k += ls)
    y[base + k * inner] *= scale;
}

/* ---- ReduceMax ---------------------------------------------------------------- */

/* NaN wins, as numpy's maximum does */
inline T
lens_max (T a, T b)
{
#ifdef T_FLOAT
  return (b > a || isnan (b)) ? b : a;
#else
  return b > a ? b : a;
#endif
}

/* Offset of flat index @idx over a 4-d (shape, stride) view, innermost s3. */
inline long
lens_offset4 (long idx, long4 shape, long4 stride)
{
  long off = (idx % shape.s3) * stride.s3;

  idx /= shape.s3;
  off += (idx % shape.s2) * stride.s2;
  idx /= shape.s2;
  off += (idx % shape.s1) * stride.s1;
  idx /= shape.s1;
  return off + idx * stride.s0;
}

/* The host collapses the input into at most four kept and four reduced
 * dimension groups (padded with shape 1 on the outer side). Outputs are
 * numbered row-major over the kept groups, which is the output layout with
 * or without keepdims. */

/* One work-item per output: for many outputs or short reductions. */
__kernel void
lens_reduce_max_rows (__global const T *x, __global T *y, long n_out,
    long4 kshape, long4 kstride, long4 rshape, long4 rstride)
{
  long o = get_global_id (0);
  long base, outer_count;
  T m = (T_LOWEST);

  if (o >= n_out)
    return;
  base = lens_offset4 (o, kshape, kstride);
  outer_count = rshape.s0 * rshape.s1 * rshape.s2;
  for (long q = 0; q < outer_count; q++) {
    long off = base + lens_offset4 (q, (long4) (1, rshape.s0, rshape.s1,
            rshape.s2), (long4) (0, rstride.s0, rstride.s1, rstride.s2));
    for (long k = 0; k < rshape.s3; k++)
      m = lens_max (m, x[off + k * rstride.s3]);
  }
  y[o] = m;
}

/* One work-group per output (local size a power of two <= GROUP_MAX): for
 * few outputs with long reductions. */
__kernel void
lens_reduce_max_group (__global const T *x, __global T *y, long4 kshape,
    long4 kstride, long4 rshape, long4 rstride)
{
  __local T red[GROUP_MAX];
  long o = get_group_id (0);
  int lid = get_local_id (0), ls = get_local_size (0);
  long base = lens_offset4 (o, kshape, kstride);
  long count = rshape.s0 * rshape.s1 * rshape.s2 * rshape.s3;
  T m = (T_LOWEST);

  for (long q = lid; q < count; q += ls)
    m = lens_max (m, x[base + lens_offset4 (q, rshape, rstride)]);
  red[lid] = m;
  barrier (CLK_LOCAL_MEM_FENCE);
  for (int h = ls / 2; h > 0; h /= 2) {
    if (lid < h)
      red[lid] = lens_max (red[lid], red[lid + h]);
    barrier (CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0)
    y[o] = red[0];
}

/* ---- TopK --------------------------------------------------------------------- */

/* Values are ranked through unsigned keys whose integer order is the value
 * order: the wanted elements are then the K largest keys (for
 * largest == 0 the keys are complemented), ties broken by the smaller
 * index. NaN ranks above everything; -0 and +0 tie. */
#if KEY_BITS == 64
typedef ulong lens_key;
#else
typedef uint lens_key;
#endif

inline lens_key
lens_topk_key (T v, int largest)
{
  lens_key key;

#ifdef T_FLOAT
  uint bits = as_uint (v);
  if (isnan (v))
    key = 0xffffffffu;
  else if (v == 0.0f)
    key = 0x80000000u;
  else
    key = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
#elif defined(T_SIGNED)
  key = ((lens_key) v) ^ ((lens_key) 1 << (KEY_BITS - 1));
#else
  key = (lens_key) v;
#endif
  return largest ? key : ~key;
}

/* Does (ka, ia) come before (kb, ib) in the output order? */
inline int
lens_topk_before (lens_key ka, int ia, lens_key kb, int ib)
{
  return ka > kb || (ka == kb && ia < ib);
}

/* One work-group per row, K <= TOPK_LOCAL_MAX, any local size <= GROUP_MAX.
 * 1. radix select, 8 bits a pass, finds the key of the K-th element and
 *    how many elements equal to it belong to the result;
 * 2. an ordered compaction (prefix sums per chunk of the row) gathers the
 *    K winners into local memory, the tied ones by ascending index;
 * 3. a bitonic network sorts them. */
__kernel void
lens_top_k_group (__global const T *x, __global T *values,
    __global long *indices, int n, long inner, int k, int largest)
{
  __local uint hist[256];
  __local uint scan[GROUP_MAX];
  __local lens_key cand_key[TOPK_LOCAL_MAX];
  __local int cand_idx[TOPK_LOCAL_MAX];
  __local lens_key shared_prefix;
  __local uint shared_want;
  long r = get_group_id (0);
  int lid = get_local_id (0), ls = get_local_size (0);
  long in_base = (r / inner) * n * inner + r % inner;
  long out_base = (r / inner) * k * inner + r % inner;
  lens_key prefix = 0, mask = 0;
  uint want = k, n_gt, gt_base = 0, eq_base = 0;
  int p2;

  /* 1. radix select, most significant byte first */
  for (int shift = KEY_BITS - 8; shift >= 0; shift -= 8) {
    for (int b = lid; b < 256; b += ls)
      hist[b] = 0;
    barrier (CLK_LOCAL_MEM_FENCE);
    for (int i = lid; i < n; i += ls) {
      lens_key key = lens_topk_key (x[in_base + i * inner], largest);
      if ((key & mask) == prefix)
        atomic_inc (&hist[(uint) (key >> shift) & 255u]);
    }
    barrier (CLK_LOCAL_MEM_FENCE);
    if (lid == 0) {
      uint above = 0;
      for (int d = 255; d >= 0; d--) {
        if (above + hist[d] >= want) {
          shared_prefix = prefix | ((lens_key) d << shift);
          shared_want = want - above;
          break;
        }
        above += hist[d];
      }
    }
    barrier (CLK_LOCAL_MEM_FENCE);
    prefix = shared_prefix;
    want = shared_want;
    mask |= (lens_key) 255 << shift;
  }
  /* prefix is now the K-th key; want elements equal to it are taken */
  n_gt = k - want;

  /* 2. ordered compaction: gt count in the high half of scan, eq count in
   * the low half (a chunk has at most GROUP_MAX < 65536 of each) */
  for (int c0 = 0; c0 < n && (gt_base < n_gt || eq_base < want); c0 += ls) {
    int i = c0 + lid;
    lens_key key = 0;
    uint gt = 0, eq = 0, v, incl, total;
    if (i < n) {
      key = lens_topk_key (x[in_base + i * inner], largest);
      gt = key > prefix;
      eq = key == prefix;
    }
    v = (gt << 16) | eq;
    scan[lid] = v;
    barrier (CLK_LOCAL_MEM_FENCE);
    for (int off = 1; off < ls; off *= 2) {
      uint t = lid >= off ? scan[lid - off] : 0;
      barrier (CLK_LOCAL_MEM_FENCE);
      scan[lid] += t;
      barrier (CLK_LOCAL_MEM_FENCE);
    }
    incl = scan[lid];
    total = scan[ls - 1];
    if (gt) {
      uint pos = gt_base + ((incl - v) >> 16);
      cand_key[pos] = key;
      cand_idx[pos] = i;
    } else if (eq) {
      uint pos = eq_base + ((incl - v) & 0xffffu);
      if (pos < want) {
        cand_key[n_gt + pos] = key;
        cand_idx[n_gt + pos] = i;
      }
    }
    gt_base += total >> 16;
    eq_base += total & 0xffffu;
    barrier (CLK_LOCAL_MEM_FENCE);
  }

  /* 3. bitonic sort of k entries; the network's comparisons that would
   * touch the padding up to the next power of two are skipped, which is
   * sorting with padding that always ranks last */
  p2 = 1;
  while (p2 < k)
    p2 *= 2;
  for (int size = 2; size <= p2; size *= 2) {
    for (int step = size / 2; step > 0; step /= 2) {
      for (int t = lid; t < p2 / 2; t += ls) {
        int blk = t / step, off = t % step, a, b;
        if (step == size / 2) {
          /* first stage of a merge: compare mirrored pairs */
          a = blk * size + off;
          b = blk * size + size - 1 - off;
        } else {
          a = blk * 2 * step + off;
          b = a + step;
        }
        if (b < k && lens_topk_before (cand_key[b], cand_idx[b],
                cand_key[a], cand_idx[a])) {
          lens_key tk = cand_key[a];
          int ti = cand_idx[a];
          cand_key[a] = cand_key[b];
          cand_idx[a] = cand_idx[b];
          cand_key[b] = tk;
          cand_idx[b] = ti;
        }
      }
      barrier (CLK_LOCAL_MEM_FENCE);
    }
  }

  for (int j = lid; j < k; j += ls) {
    int i = cand_idx[j];
    values[out_base + j * inner] = x[in_base + i * inner];
    indices[out_base + j * inner] = i;
  }
}

/* One work-item per row, for K > TOPK_LOCAL_MAX: each pick is the first
 * element (in output order) after the previous pick. O(K * n), but needs
 * no memory at all. */
__kernel void
lens_top_k_rows (__global const T *x, __global T *values,
    __global long *indices, long rows, int n, long inner, int k, int largest)
{
  long r = get_global_id (0);
  long in_base, out_base;
  lens_key prev_key = 0;
  int prev_idx = -1;

  if (r >= rows)
    return;
  in_base = (r / inner) * n * inner + r % inner;
  out_base = (r / inner) * k * inner + r % inner;
  for (int j = 0; j < k; j++) {
    lens_key best_key = 0;
    int best_idx = -1;
    for (int i = 0; i < n; i++) {
      lens_key key = lens_topk_key (x[in_base + i * inner], largest);
      if (j > 0 && !lens_topk_before (prev_key, prev_idx, key, i))
        continue;
      if (best_idx < 0 || lens_topk_before (key, i, best_key, best_idx)) {
        best_key = key;
        best_idx = i;
      }
    }
    values[out_base + j * inner] = x[in_base + best_idx * inner];
    indices[out_base + j * inner] = best_idx;
    prev_key = best_key;
    prev_idx = best_idx;
  }
}
