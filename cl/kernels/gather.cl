/* gather.cl: Gather and GatherElements.
 *
 * Generic over the element size like layout.cl: ELEM (-DELEM=uchar, ushort,
 * uint or ulong) only carries bits. Each kernel comes in an int32 and an
 * int64 index flavour in the same program.
 *
 * Negative indices count from the end of the axis. An index still out of
 * range after that writes 0 instead of reading outside the data: the
 * kernel cannot report errors, and the host checks indices it knows. */

#ifndef ELEM
#define ELEM uint
#endif

/* data seen as [outer, axis_dim, inner], indices flattened to n_indices:
 * dst[o, j, i] = data[o, indices[j], i]. Each work-item copies @span
 * neighbouring elements of one output row (o, j): 1 on GPUs (neighbouring
 * items, coalesced), a long run on CPUs, whose index arithmetic is then
 * paid once per run and whose body moves whole vectors. NDRange
 * outer * n_indices rows x ceil (inner / span). */
#define LENS_GATHER(NAME, INDEX) \
__kernel void \
NAME (__global const ELEM * data, __global const INDEX * indices, \
    __global ELEM * dst, int rows, int axis_dim, int inner, int n_indices, \
    int span) \
{ \
  int g = get_global_id (0); \
  int chunks = (inner + span - 1) / span; \
  \
  if (g >= rows * chunks) \
    return; \
  \
  const int r = g / chunks; \
  const int o = r / n_indices; \
  const int end = min ((g - r * chunks) * span + span, inner); \
  int c = (g - r * chunks) * span; \
  long k = indices[r - o * n_indices]; \
  __global ELEM *out = dst + (long) r * inner; \
  \
  if (k < 0) \
    k += axis_dim; \
  if (k >= 0 && k < axis_dim) { \
    __global const ELEM *in = data + ((long) o * axis_dim + k) * inner; \
    for (; c + 16 <= end; c += 16) \
      vstore16 (vload16 (0, in + c), 0, out + c); \
    for (; c < end; c++) \
      out[c] = in[c]; \
  } else { \
    for (; c < end; c++) \
      out[c] = 0; \
  } \
}

LENS_GATHER (lens_gather_i32, int)
LENS_GATHER (lens_gather_i64, long)

#define UNRAVEL_ELEMENTS(K) \
  if (K < rank) { \
    int q = rem / shape.s##K; \
    off += (rem - q * shape.s##K) * data_strides.s##K; \
    rem = q; \
  }

/* dst[c] = data[c with c[axis] replaced by indices[c]] over the indices'
 * shape. Shapes are int8 vectors ordered innermost first (s0 = last
 * dimension); @data_strides has 0 at the axis, whose stride is
 * @axis_stride. */
#define LENS_GATHER_ELEMENTS(NAME, INDEX) \
__kernel void \
NAME (__global const ELEM * data, __global const INDEX * indices, \
    __global ELEM * dst, int n, int rank, int8 shape, int8 data_strides, \
    int axis_dim, int axis_stride) \
{ \
  int g = get_global_id (0); \
  int rem = g, off = 0; \
  long k; \
  ELEM v = 0; \
  \
  if (g >= n) \
    return; \
  UNRAVEL_ELEMENTS (0) UNRAVEL_ELEMENTS (1) UNRAVEL_ELEMENTS (2) \
  UNRAVEL_ELEMENTS (3) UNRAVEL_ELEMENTS (4) UNRAVEL_ELEMENTS (5) \
  UNRAVEL_ELEMENTS (6) UNRAVEL_ELEMENTS (7) \
  k = indices[g]; \
  if (k < 0) \
    k += axis_dim; \
  if (k >= 0 && k < axis_dim) \
    v = data[off + (int) k * axis_stride]; \
  dst[g] = v; \
}

LENS_GATHER_ELEMENTS (lens_gather_elements_i32, int)
LENS_GATHER_ELEMENTS (lens_gather_elements_i64, long)
