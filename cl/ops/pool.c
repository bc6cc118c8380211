/* pool.c: MaxPool (with its optional Indices output), AveragePool and
 * GlobalAveragePool.
 *
 * MaxPool and AveragePool take 1-D and 2-D windows with kernel_shape,
 * strides, pads, auto_pad, dilations and ceil_mode (plus storage_order and
 * count_include_pad); 3-D pooling is refused. reshape turns the attributes
 * into a LensPoolGeometry (output size and effective pads) that both the
 * kernels (kernels/pool.cl) and the references (ref/pool.c) consume.
 * GlobalAveragePool averages every dimension after N and C, any rank. */
#include "ref/pool.h"

#include <string.h>

typedef enum
{
  AUTO_PAD_NOTSET,
  AUTO_PAD_SAME_UPPER,
  AUTO_PAD_SAME_LOWER,
  AUTO_PAD_VALID,
} PoolAutoPad;

typedef struct
{
  gboolean is_max;
  int spatial;
  int64_t kernel[LENS_POOL_MAX_SPATIAL];
  int64_t stride[LENS_POOL_MAX_SPATIAL];
  int64_t dilation[LENS_POOL_MAX_SPATIAL];
  int64_t pads[2 * LENS_POOL_MAX_SPATIAL];
  PoolAutoPad auto_pad;
  gboolean ceil_mode;
  gboolean count_include_pad;
  int storage_order;
  LensPoolGeometry geometry;    /* set by reshape */
} PoolState;

static const LensDType max_pool_dtypes[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, LENS_DTYPE_UNDEFINED
};

static const LensDType float_dtypes[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_UNDEFINED
};

/* Work-group size of the MaxPool and AveragePool launches. */
#define POOL_GROUP 64
/* Output elements of a row each of their work items computes. */
#define POOL_ROW_SPAN 4
/* Must match POOL_S1_SPAN and POOL_S1_MAX_K in kernels/pool.cl: outputs
 * per work-item of the separable MaxPool, and its widest window. */
#define POOL_S1_SPAN 16
#define POOL_S1_MAX_K 17
/* Must match POOL_VEC in kernels/pool.cl: outputs per span of the vector
 * kernels (lens_max_pool_vec takes spans of 16 on a CPU device, where
 * chunks is 1 and a row of 16 to 31 outputs moves its spans inwards). */
#define POOL_VEC 8
/* Must match POOL_ROWS_MAX_W and POOL_ROWS_PAD in kernels/pool.cl: the
 * row MaxPool's widest input row and padding a side. */
#define POOL_ROWS_MAX_W 64
#define POOL_ROWS_PAD 16
/* Output rows per work-item of those kernels on a CPU device: 16 stays
 * for lens_max_pool_vec's CPU form (4, 8, 16, 32 swept single-threaded:
 * 64x80x80 2x2 stride 2 36, 31, 28, 37 us; 24x176x176 3x3 112, 108, 106,
 * 118 us). */
#define POOL_CPU_ROWS 16
/* Must match POOL_MAX_GROUP in kernels/pool.cl. */
#define POOL_MAX_GROUP 256

/* ---- shared ----------------------------------------------------------------- */

/* The -D options of kernels/pool.cl for @dtype; one program per dtype is
 * shared by all three ops. A CPU device's compiler is clang: element-aligned
 * vector types and spans of 16 in lens_max_pool_vec (single-threaded
 * 16x160x160 2x2 stride 2 61 -> 28 us, 64x80x80 68 -> 29 us, 24x176x176
 * 3x3 stride 2 pad 1 176 -> 106 us). */
#define POOL_UINT8 "-DT=uchar -DT_LOWEST=0"
#define POOL_INT8 "-DT=char -DT_LOWEST=-128"
#define POOL_FLOAT "-DT=float -DT_IS_FLOAT -DT_LOWEST=-INFINITY"
#define POOL_CPU " -DPOOL_UNALIGNED_VECTORS=1"

static const char *
pool_options (LensContext * ctx, LensDType dtype)
{
  gboolean cpu = !lens_context_is_gpu (ctx);

  switch (dtype) {
    case LENS_DTYPE_UINT8:
      return cpu ? POOL_UINT8 POOL_CPU : POOL_UINT8;
    case LENS_DTYPE_INT8:
      return cpu ? POOL_INT8 POOL_CPU : POOL_INT8;
    default:
      return cpu ? POOL_FLOAT POOL_CPU : POOL_FLOAT;
  }
}

static size_t
group_size (LensContext * ctx, cl_kernel k)
{
  return MIN ((size_t) POOL_GROUP, lens_kernel_max_work_group (ctx, k));
}

/* Reads an optional ints attribute of @n values, each >= @min, into @out
 * (left at its defaults when the attribute is absent). */
static LensStatus
read_ints_attr (LensNode * node, const char *name, int n, int64_t min,
    int64_t *out, LensError *err)
{
  const int64_t *v;
  int count = lens_node_attr_ints (node, name, &v);

  if (count < 0)
    return LENS_OK;
  if (count != n)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: attribute '%s' has %d values, expected %d", node->op_type, name,
        count, n);
  for (int i = 0; i < n; i++) {
    if (v[i] < min)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: attribute '%s' value %" G_GINT64_FORMAT " is below %"
          G_GINT64_FORMAT, node->op_type, name, v[i], min);
    out[i] = v[i];
  }
  return LENS_OK;
}

static LensStatus
read_flag_attr (LensNode * node, const char *name, gboolean * out,
    LensError *err)
{
  int64_t v = lens_node_attr_int (node, name, 0);

  if (v != 0 && v != 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: attribute '%s' = %" G_GINT64_FORMAT " (expected 0 or 1)",
        node->op_type, name, v);
  *out = v == 1;
  return LENS_OK;
}

static LensStatus
pool_init (LensNode * node, gboolean is_max, LensError *err)
{
  PoolState *s = g_new0 (PoolState, 1);
  const int64_t *kernel;
  const char *auto_pad = lens_node_attr_string (node, "auto_pad", "NOTSET");
  int n = lens_node_attr_ints (node, "kernel_shape", &kernel);
  LensStatus st;

  node->priv = s;
  s->is_max = is_max;
  if (n < 0)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: attribute 'kernel_shape' is required", node->op_type);
  if (n > LENS_POOL_MAX_SPATIAL)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: %d-D pooling (attribute 'kernel_shape' has %d values) is not "
        "supported: only 1-D and 2-D", node->op_type, n, n);
  if (n == 0)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: attribute 'kernel_shape' is empty", node->op_type);
  s->spatial = n;
  for (int d = 0; d < n; d++) {
    s->stride[d] = 1;
    s->dilation[d] = 1;
  }
  st = read_ints_attr (node, "kernel_shape", n, 1, s->kernel, err);
  if (st == LENS_OK)
    st = read_ints_attr (node, "strides", n, 1, s->stride, err);
  if (st == LENS_OK)
    st = read_ints_attr (node, "dilations", n, 1, s->dilation, err);
  if (st == LENS_OK)
    st = read_ints_attr (node, "pads", 2 * n, 0, s->pads, err);
  if (st == LENS_OK)
    st = read_flag_attr (node, "ceil_mode", &s->ceil_mode, err);
  if (st == LENS_OK && !is_max)
    st = read_flag_attr (node, "count_include_pad", &s->count_include_pad,
        err);
  if (st == LENS_OK && is_max) {
    gboolean column_major = FALSE;
    st = read_flag_attr (node, "storage_order", &column_major, err);
    s->storage_order = column_major ? 1 : 0;
  }
  if (st != LENS_OK)
    return st;

  if (strcmp (auto_pad, "NOTSET") == 0)
    s->auto_pad = AUTO_PAD_NOTSET;
  else if (strcmp (auto_pad, "SAME_UPPER") == 0)
    s->auto_pad = AUTO_PAD_SAME_UPPER;
  else if (strcmp (auto_pad, "SAME_LOWER") == 0)
    s->auto_pad = AUTO_PAD_SAME_LOWER;
  else if (strcmp (auto_pad, "VALID") == 0)
    s->auto_pad = AUTO_PAD_VALID;
  else
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: attribute 'auto_pad' = '%s' is not one of NOTSET, SAME_UPPER, "
        "SAME_LOWER, VALID", node->op_type, auto_pad);
  return LENS_OK;
}

static LensStatus
max_pool_init (LensNode * node, LensError *err)
{
  return pool_init (node, TRUE, err);
}

static LensStatus
average_pool_init (LensNode * node, LensError *err)
{
  return pool_init (node, FALSE, err);
}

static void
pool_exit (LensNode * node)
{
  g_clear_pointer (&node->priv, g_free);
}

static int64_t
ceil_div (int64_t a, int64_t b)
{
  return (a + b - 1) / b;
}

/* Output size and effective pads of spatial axis @d for an input of
 * @in, following the ONNX formulas; in ceil_mode a last window that would
 * start past the input and its leading padding is dropped (as ONNX
 * Runtime and PyTorch do). */
static LensStatus
axis_geometry (const LensNode * node, const PoolState * s, int d, int64_t in,
    LensPoolGeometry * g, LensError *err)
{
  int64_t extent = (s->kernel[d] - 1) * s->dilation[d] + 1;
  int64_t stride = s->stride[d], out, total, pad_total;

  switch (s->auto_pad) {
    case AUTO_PAD_SAME_UPPER:
    case AUTO_PAD_SAME_LOWER:
      out = ceil_div (in, stride);
      pad_total = MAX (0, (out - 1) * stride + extent - in);
      g->pad_begin[d] = s->auto_pad == AUTO_PAD_SAME_UPPER ? pad_total / 2 :
          pad_total - pad_total / 2;
      g->pad_end[d] = pad_total - g->pad_begin[d];
      break;
    case AUTO_PAD_VALID:
    case AUTO_PAD_NOTSET:
    default:
      g->pad_begin[d] = s->auto_pad == AUTO_PAD_VALID ? 0 : s->pads[d];
      g->pad_end[d] = s->auto_pad == AUTO_PAD_VALID ? 0 :
          s->pads[d + s->spatial];
      total = in + g->pad_begin[d] + g->pad_end[d] - extent;
      if (total < 0)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "%s: the window (%" G_GINT64_FORMAT " with dilation) is larger "
            "than the padded input (%" G_GINT64_FORMAT ") on spatial axis %d",
            node->op_type, extent, in + g->pad_begin[d] + g->pad_end[d], d);
      if (s->ceil_mode && s->auto_pad == AUTO_PAD_NOTSET) {
        out = ceil_div (total, stride) + 1;
        if ((out - 1) * stride >= in + g->pad_begin[d])
          out--;
      } else {
        out = total / stride + 1;
      }
      break;
  }
  g->in[d] = in;
  g->out[d] = out;
  g->kernel[d] = s->kernel[d];
  g->stride[d] = stride;
  g->dilation[d] = s->dilation[d];
  return LENS_OK;
}

static LensStatus
pool_reshape (LensNode * node, LensError *err)
{
  PoolState *s = node->priv;
  LensPoolGeometry *g = &s->geometry;
  LensTensor *x = lens_node_input (node, 0), *y, *indices;
  int64_t shape[2 + LENS_POOL_MAX_SPATIAL];
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s needs input X and output Y", node->op_type);
  st = lens_node_check_dtype (node, "input X", x->dtype,
      s->is_max ? max_pool_dtypes : float_dtypes, err);
  if (st != LENS_OK)
    return st;
  if (x->ndim != 2 + s->spatial)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: input X has rank %d but 'kernel_shape' has %d values (expected "
        "rank %d)", node->op_type, x->ndim, s->spatial, 2 + s->spatial);

  memset (g, 0, sizeof (*g));
  g->spatial = s->spatial;
  g->count_include_pad = s->count_include_pad;
  g->storage_order = s->storage_order;
  shape[0] = x->shape[0];
  shape[1] = x->shape[1];
  for (int d = 0; d < s->spatial; d++) {
    st = axis_geometry (node, s, d, x->shape[2 + d], g, err);
    if (st != LENS_OK)
      return st;
    shape[2 + d] = g->out[d];
  }

  y = node->outputs[0];
  y->dtype = x->dtype;
  lens_tensor_set_shape (y, x->ndim, shape);
  if (lens_tensor_numel (x) > G_MAXINT || lens_tensor_numel (y) > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: tensors of more than %d elements are not supported",
        node->op_type, G_MAXINT);
  indices = s->is_max ? lens_node_output (node, 1) : NULL;
  if (indices != NULL) {
    indices->dtype = LENS_DTYPE_INT64;
    lens_tensor_set_shape (indices, x->ndim, shape);
  }
  return LENS_OK;
}

/* The geometry as the 2-D kernels take it: 1-D pooling gets a height of 1
 * with a one-tap window. Order: in_h, in_w, out_h, out_w, k_h, k_w, s_h,
 * s_w, p_h, p_w, d_h, d_w. */
static void
kernel_geometry (const LensPoolGeometry * g, cl_int * a)
{
  int h = g->spatial == 2 ? 0 : -1, w = g->spatial - 1;

  a[0] = h < 0 ? 1 : (cl_int) g->in[h];
  a[1] = (cl_int) g->in[w];
  a[2] = h < 0 ? 1 : (cl_int) g->out[h];
  a[3] = (cl_int) g->out[w];
  a[4] = h < 0 ? 1 : (cl_int) g->kernel[h];
  a[5] = (cl_int) g->kernel[w];
  a[6] = h < 0 ? 1 : (cl_int) g->stride[h];
  a[7] = (cl_int) g->stride[w];
  a[8] = h < 0 ? 0 : (cl_int) g->pad_begin[h];
  a[9] = (cl_int) g->pad_begin[w];
  a[10] = h < 0 ? 1 : (cl_int) g->dilation[h];
  a[11] = (cl_int) g->dilation[w];
}

/* Sets kernel arguments @first.. to the 12 geometry values. */
static LensStatus
set_geometry_args (cl_kernel k, cl_uint first, const cl_int * a,
    LensError *err)
{
  for (cl_uint i = 0; i < 12; i++) {
    LensStatus st = lens_kernel_set_arg (k, first + i, sizeof (cl_int),
        &a[i], err);
    if (st != LENS_OK)
      return st;
  }
  return LENS_OK;
}

/* Output rows (planes x out_h) and the work items that share each row. */
static void
row_split (const LensTensor * y, const cl_int * geometry, cl_int * rows,
    cl_int * chunks)
{
  cl_int out_w = geometry[3];

  *rows = out_w > 0 ? (cl_int) (lens_tensor_numel (y) / out_w) : 0;
  *chunks = (out_w + POOL_ROW_SPAN - 1) / POOL_ROW_SPAN;
}

/* Runs a row's spans split in for the vector kernels: a CPU device pays
 * tens of nanoseconds a work group, so one run a row; a GPU one span a
 * work-item. */
static cl_int
span_chunks (LensContext * ctx, const cl_int * geometry)
{
  return lens_context_is_gpu (ctx) ? (geometry[3] + POOL_VEC - 1) / POOL_VEC
      : 1;
}

/* Launches a span kernel (MaxPool's vector and row kernels, AveragePool's
 * vector kernel) over chunks x groups of output rows x planes. On a CPU
 * device a work-item takes POOL_CPU_ROWS rows (work groups cost tens of
 * nanoseconds there), each item its own group so that the cores share
 * them evenly; on a GPU one row. */
static LensStatus
enqueue_spans (LensContext * ctx, cl_kernel k, cl_int rows, cl_int chunks,
    cl_int out_h, LensError *err)
{
  size_t global[3], local[3] = { 1, 1, 1 };
  gboolean gpu = lens_context_is_gpu (ctx);

  global[0] = (size_t) chunks;
  global[1] = (size_t) (gpu ? out_h : (out_h + POOL_CPU_ROWS - 1) /
      POOL_CPU_ROWS);
  global[2] = (size_t) (out_h > 0 ? rows / out_h : 0);
  return lens_context_enqueue (ctx, k, 3, global, gpu ? NULL : local, err);
}

/* ---- MaxPool ---------------------------------------------------------------- */

/* The MaxPool kernels, by their kernel slot. */
typedef enum
{
  MAX_POOL_GENERAL,
  MAX_POOL_WITH_INDICES,
  MAX_POOL_SEPARABLE,
  MAX_POOL_VECTOR,
  MAX_POOL_ROWS,
} MaxPoolKernel;

static const char *const max_pool_kernel_names[] = {
  "lens_max_pool", "lens_max_pool_with_indices", "lens_max_pool_sep",
  "lens_max_pool_vec", "lens_max_pool_rows",
};

/* Unit dilations and column strides of 1 or 2 (downsampling, SPP): short
 * rows at stride 1 (SPP on the last feature map) take the row kernel,
 * rows of at least two spans the vector kernel, where most spans lie
 * inside the row, others the separable one (limits as in
 * kernels/pool.cl). */
static MaxPoolKernel
max_pool_kernel (const LensPoolGeometry * g, const cl_int * geometry,
    gboolean with_indices)
{
  int w = g->spatial - 1;

  if (with_indices)
    return MAX_POOL_WITH_INDICES;
  if (geometry[7] > 2 || geometry[10] != 1 || geometry[11] != 1)
    return MAX_POOL_GENERAL;
  if (geometry[7] == 1 && geometry[1] >= 8 && geometry[3] >= 8
      && geometry[1] <= POOL_ROWS_MAX_W && g->pad_begin[w] <= POOL_ROWS_PAD
      && g->pad_end[w] <= POOL_ROWS_PAD)
    return MAX_POOL_ROWS;
  if (geometry[3] >= 2 * POOL_VEC)
    return MAX_POOL_VECTOR;
  return geometry[5] <= POOL_S1_MAX_K ? MAX_POOL_SEPARABLE :
      MAX_POOL_GENERAL;
}

static LensStatus
max_pool_run (LensContext * ctx, LensNode * node, LensError *err)
{
  PoolState *s = node->priv;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  LensTensor *indices = lens_node_output (node, 1);
  cl_int geometry[12], rows, chunks;
  cl_int storage_order = s->storage_order;
  MaxPoolKernel kernel;
  size_t global, local;
  cl_kernel k;
  LensStatus st;

  st = lens_node_require_dense (node, x, "input X", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output Y", err);
  if (st == LENS_OK && indices != NULL)
    st = lens_node_require_dense (node, indices, "output Indices", err);
  if (st != LENS_OK)
    return st;
  kernel_geometry (&s->geometry, geometry);
  kernel = max_pool_kernel (&s->geometry, geometry, indices != NULL);
  st = lens_node_kernel (ctx, node, kernel, "pool", pool_options (ctx,
          x->dtype), max_pool_kernel_names[kernel], &k, err);
  if (st != LENS_OK)
    return st;
  row_split (y, geometry, &rows, &chunks);
  if (kernel == MAX_POOL_SEPARABLE)
    chunks = (geometry[3] + POOL_S1_SPAN - 1) / POOL_S1_SPAN;
  else if (kernel == MAX_POOL_VECTOR)
    chunks = span_chunks (ctx, geometry);
  else if (kernel == MAX_POOL_ROWS)
    chunks = 1;
  if (indices != NULL) {
    st = lens_kernel_set_args (k, err, 5, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (indices->buffer), LENS_ARG (rows),
        LENS_ARG (chunks));
    if (st == LENS_OK)
      st = set_geometry_args (k, 5, geometry, err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (k, 17, sizeof (cl_int), &storage_order, err);
  } else {
    st = lens_kernel_set_args (k, err, 4, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (rows), LENS_ARG (chunks));
    if (st == LENS_OK)
      st = set_geometry_args (k, 4, geometry, err);
  }
  if (st != LENS_OK)
    return st;
  if (kernel == MAX_POOL_VECTOR || kernel == MAX_POOL_ROWS)
    return enqueue_spans (ctx, k, rows, chunks, geometry[2], err);
  global = (size_t) rows * chunks;
  local = group_size (ctx, k);
  return lens_context_enqueue (ctx, k, 1, &global, &local, err);
}

static LensStatus
max_pool_reference (LensNode * node, LensError *err)
{
  PoolState *s = node->priv;

  lens_ref_max_pool (node->inputs[0], node->outputs[0],
      lens_node_output (node, 1), &s->geometry);
  return LENS_OK;
}

/* Random window attributes for a case of @spatial axes over input sizes
 * @in: every auto_pad, ceil_mode, dilations, pads below the window
 * extent (so that most windows see the input). */
static void
random_window (LensNode * node, GRand * rand, int spatial, const int64_t *in)
{
  static const char *const auto_pads[] = {
    "NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"
  };
  int64_t kernel[LENS_POOL_MAX_SPATIAL], stride[LENS_POOL_MAX_SPATIAL];
  int64_t dilation[LENS_POOL_MAX_SPATIAL], pads[2 * LENS_POOL_MAX_SPATIAL];
  const char *auto_pad = auto_pads[g_rand_int_range (rand, 0, 5)];
  gboolean explicit_pads = strcmp (auto_pad, "NOTSET") == 0;

  for (int d = 0; d < spatial; d++) {
    int64_t extent;
    kernel[d] = g_rand_int_range (rand, 1, 5);
    stride[d] = g_rand_int_range (rand, 1, 4);
    dilation[d] = g_rand_int_range (rand, 1, 3);
    extent = (kernel[d] - 1) * dilation[d] + 1;
    pads[d] = explicit_pads ? g_rand_int_range (rand, 0, extent) : 0;
    pads[d + spatial] = explicit_pads ? g_rand_int_range (rand, 0, extent) :
        0;
    /* the window must fit the (padded) input */
    while (extent > in[d] + pads[d] + pads[d + spatial]) {
      if (dilation[d] > 1)
        dilation[d] = 1;
      else
        kernel[d]--;
      extent = (kernel[d] - 1) * dilation[d] + 1;
    }
  }
  lens_node_set_attr_ints (node, "kernel_shape", spatial, kernel);
  if (g_rand_int_range (rand, 0, 4) != 0)
    lens_node_set_attr_ints (node, "strides", spatial, stride);
  if (g_rand_int_range (rand, 0, 3) != 0)
    lens_node_set_attr_ints (node, "dilations", spatial, dilation);
  if (explicit_pads)
    lens_node_set_attr_ints (node, "pads", 2 * spatial, pads);
  else
    lens_node_set_attr_string (node, "auto_pad", auto_pad);
  if (g_rand_boolean (rand))
    lens_node_set_attr_int (node, "ceil_mode", 1);
}

/* An [N, C, spatial...] input of awkward sizes (97 only on the last axis,
 * and never on both N and C, to keep the self-test quick). */
static void
random_pool_shape (GRand * rand, int spatial, int64_t *shape)
{
  shape[0] = g_rand_boolean (rand) ? 1 : 3;
  shape[1] = lens_awkward_size (rand, FALSE);
  for (int d = 0; d < spatial; d++)
    shape[2 + d] = lens_awkward_size (rand, d == spatial - 1);
}

static LensNode *
max_pool_case (int index, GRand * rand)
{
  static const LensDType dtypes[] = {
    LENS_DTYPE_FLOAT, LENS_DTYPE_UINT8, LENS_DTYPE_INT8
  };
  /* input height (width 7 more), kernel height, width, stride */
  static const int64_t spp[][4] = {
    {13, 5, 5, 1}, {13, 9, 9, 1}, {13, 13, 13, 1}, {20, 3, 17, 1},
    {6, 13, 19, 1}, {41, 3, 3, 2}, {40, 2, 2, 2}, {21, 5, 17, 2},
    {90, 3, 3, 2}, {90, 2, 2, 2}, {57, 5, 13, 1}, {3, 1, 4, 2},
    {90, 3, 5, 1}, {1, 1, 3, 1},
  };
  int spatial = index % 4 == 3 ? 1 : 2;
  LensDType dtype = dtypes[index % 3];
  int64_t shape[2 + LENS_POOL_MAX_SPATIAL];
  gboolean with_indices = index % 2 == 1;
  LensTensor *x;
  LensNode *node;

  if (index >= 18 + (int) G_N_ELEMENTS (spp))
    return NULL;
  if (index >= 18) {
    /* the row, separable and vector kernels: SPP ("same" pads, windows
     * wider than a span of outputs and the input) and stride-2
     * downsampling, on rows of 8 to 64 (the row kernel at stride 1),
     * narrower than two vector spans and of 97 (spans inside, at both
     * borders and a partial one) */
    const int64_t *c = spp[index - 18];
    int64_t kernel[2] = { c[1], c[2] }, pads[4] = {
      c[1] / 2, c[2] / 2, c[1] / 2, c[2] / 2
    }, strides[2] = { c[3], c[3] };
    int64_t spp_shape[4] = { 1, 3, c[0], c[0] + 7 };

    /* a range every dtype holds, narrow enough for ties */
    x = lens_tensor_new_random (dtypes[index % 3], 4, spp_shape, rand, 0, 6);
    node = lens_case_node_new ("MaxPool", 12, 1, &x, 1);
    lens_node_set_attr_ints (node, "kernel_shape", 2, kernel);
    lens_node_set_attr_ints (node, "pads", 4, pads);
    lens_node_set_attr_ints (node, "strides", 2, strides);
    return node;
  }
  random_pool_shape (rand, spatial, shape);
  /* narrow integer ranges make ties, which test the first-maximum rule */
  if (dtype == LENS_DTYPE_FLOAT)
    x = lens_tensor_new_random (dtype, 2 + spatial, shape, rand, -3, 3);
  else if (dtype == LENS_DTYPE_UINT8)
    x = lens_tensor_new_random (dtype, 2 + spatial, shape, rand, 0, 6);
  else
    x = lens_tensor_new_random (dtype, 2 + spatial, shape, rand, -128, -120);
  node = lens_case_node_new ("MaxPool", 12, 1, &x, with_indices ? 2 : 1);
  random_window (node, rand, spatial, shape + 2);
  if (with_indices && g_rand_boolean (rand))
    lens_node_set_attr_int (node, "storage_order", 1);
  return node;
}

const LensOp lens_op_max_pool = {
  .op_type = "MaxPool",
  .init = max_pool_init,
  .reshape = pool_reshape,
  .run = max_pool_run,
  .reference = max_pool_reference,
  .exit = pool_exit,
  .make_case = max_pool_case,
  .atol = 0,
  .rtol = 0,
};

/* ---- AveragePool ------------------------------------------------------------ */

static LensStatus
average_pool_run (LensContext * ctx, LensNode * node, LensError *err)
{
  PoolState *s = node->priv;
  const LensPoolGeometry *g = &s->geometry;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  cl_int geometry[12], bounds[4], rows, chunks;
  gboolean vector;
  size_t global, local;
  cl_kernel k;
  LensStatus st;

  kernel_geometry (g, geometry);
  /* unit dilations and column strides of 1 or 2 on rows of at least two
   * spans: the vector kernel, as MaxPool's */
  vector = geometry[7] <= 2 && geometry[10] == 1 && geometry[11] == 1
      && geometry[3] >= 2 * POOL_VEC;
  st = lens_node_require_dense (node, x, "input X", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output Y", err);
  if (st == LENS_OK)
    st = lens_node_kernel (ctx, node, vector, "pool", pool_options (ctx,
            x->dtype), vector ? "lens_average_pool_vec" : "lens_average_pool",
        &k, err);
  if (st != LENS_OK)
    return st;
  /* the divisor counts taps in [lo, hi) per axis (h, then w) */
  bounds[0] = g->count_include_pad ? -geometry[8] : 0;
  bounds[1] = g->count_include_pad ? -geometry[9] : 0;
  bounds[2] = geometry[0];
  bounds[3] = geometry[1];
  if (g->count_include_pad) {
    bounds[2] += g->spatial == 2 ? (cl_int) g->pad_end[0] : 0;
    bounds[3] += (cl_int) g->pad_end[g->spatial - 1];
  }
  row_split (y, geometry, &rows, &chunks);
  if (vector)
    chunks = span_chunks (ctx, geometry);
  st = lens_kernel_set_args (k, err, 4, LENS_ARG (x->buffer),
      LENS_ARG (y->buffer), LENS_ARG (rows), LENS_ARG (chunks));
  if (st == LENS_OK)
    st = set_geometry_args (k, 4, geometry, err);
  for (cl_uint i = 0; i < 4 && st == LENS_OK; i++)
    st = lens_kernel_set_arg (k, 16 + i, sizeof (cl_int), &bounds[i], err);
  if (st != LENS_OK)
    return st;
  if (vector)
    return enqueue_spans (ctx, k, rows, chunks, geometry[2], err);
  global = (size_t) rows * chunks;
  local = group_size (ctx, k);
  return lens_context_enqueue (ctx, k, 1, &global, &local, err);
}

static LensStatus
average_pool_reference (LensNode * node, LensError *err)
{
  PoolState *s = node->priv;

  lens_ref_average_pool (node->inputs[0], node->outputs[0], &s->geometry);
  return LENS_OK;
}

static LensNode *
average_pool_case (int index, GRand * rand)
{
  int spatial = index % 4 == 3 ? 1 : 2;
  int64_t shape[2 + LENS_POOL_MAX_SPATIAL];
  LensTensor *x;
  LensNode *node;

  if (index >= 20)
    return NULL;
  if (index >= 16) {
    /* the vector kernel on rows of 97: kernel, stride, pads (spans at
     * both borders and a partial one, padding counted or not) */
    static const int64_t windows[][3] = {
      {3, 2, 1}, {2, 2, 0}, {3, 1, 1}, {5, 2, 2},
    };
    const int64_t *w = windows[index - 16];
    int64_t wide[4] = { 1, 3, 13, 97 }, kernel[2] = { w[0], w[0] };
    int64_t strides[2] = { w[1], w[1] }, pads[4] = { w[2], w[2], w[2], w[2] };

    x = lens_tensor_new_random (LENS_DTYPE_FLOAT, 4, wide, rand, -3, 3);
    node = lens_case_node_new ("AveragePool", 11, 1, &x, 1);
    lens_node_set_attr_ints (node, "kernel_shape", 2, kernel);
    lens_node_set_attr_ints (node, "strides", 2, strides);
    lens_node_set_attr_ints (node, "pads", 4, pads);
    if (index % 2 == 1)
      lens_node_set_attr_int (node, "count_include_pad", 1);
    return node;
  }
  random_pool_shape (rand, spatial, shape);
  x = lens_tensor_new_random (LENS_DTYPE_FLOAT, 2 + spatial, shape, rand, -3,
      3);
  node = lens_case_node_new ("AveragePool", 11, 1, &x, 1);
  random_window (node, rand, spatial, shape + 2);
  if (index % 2 == 1)
    lens_node_set_attr_int (node, "count_include_pad", 1);
  return node;
}

const LensOp lens_op_average_pool = {
  .op_type = "AveragePool",
  .init = average_pool_init,
  .reshape = pool_reshape,
  .run = average_pool_run,
  .reference = average_pool_reference,
  .exit = pool_exit,
  .make_case = average_pool_case,
  .atol = 1e-5,
  .rtol = 1e-5,
};

/* ---- GlobalAveragePool ------------------------------------------------------ */

static LensStatus
global_average_pool_reshape (LensNode * node, LensError *err)
{
  LensTensor *x = lens_node_input (node, 0), *y;
  int64_t shape[LENS_MAX_DIMS];
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "GlobalAveragePool needs input X and output Y");
  st = lens_node_check_dtype (node, "input X", x->dtype, float_dtypes, err);
  if (st != LENS_OK)
    return st;
  if (x->ndim < 3)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "GlobalAveragePool: input X has rank %d (expected N, C and at least "
        "one spatial dimension)", x->ndim);
  if (lens_tensor_numel (x) > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "GlobalAveragePool: inputs of more than %d elements are not "
        "supported", G_MAXINT);
  for (int d = 0; d < x->ndim; d++)
    shape[d] = d < 2 ? x->shape[d] : 1;
  y = node->outputs[0];
  y->dtype = x->dtype;
  lens_tensor_set_shape (y, x->ndim, shape);
  return LENS_OK;
}

static LensStatus
global_average_pool_run (LensContext * ctx, LensNode * node, LensError *err)
{
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  cl_int planes = (cl_int) (x->shape[0] * x->shape[1]);
  cl_int plane_size = (cl_int) (lens_tensor_numel (x) / MAX (planes, 1));
  size_t group = 1, max_group, global;
  cl_kernel k;
  LensStatus st;

  st = lens_node_require_dense (node, x, "input X", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output Y", err);
  if (st == LENS_OK)
    st = lens_node_kernel (ctx, node, 0, "pool", pool_options (ctx,
            x->dtype), "lens_global_average_pool", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 4, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (planes), LENS_ARG (plane_size));
  if (st != LENS_OK)
    return st;
  /* a power of two (the tree reduction halves it), no wider than the
   * plane needs */
  max_group = MIN ((size_t) POOL_MAX_GROUP, lens_kernel_max_work_group (ctx,
          k));
  while (group * 2 <= max_group && group < (size_t) plane_size)
    group *= 2;
  global = (size_t) planes * group;
  return lens_context_enqueue (ctx, k, 1, &global, &group, err);
}

static LensStatus
global_average_pool_reference (LensNode * node, LensError *err)
{
  lens_ref_global_average_pool (node->inputs[0], node->outputs[0]);
  return LENS_OK;
}

static LensNode *
global_average_pool_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS];
  int ndim = 3 + index % 3;
  LensTensor *x;

  if (index >= 9)
    return NULL;
  shape[0] = g_rand_boolean (rand) ? 1 : 3;
  shape[1] = lens_awkward_size (rand, ndim == 3);
  for (int d = 2; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  x = lens_tensor_new_random (LENS_DTYPE_FLOAT, ndim, shape, rand, -3, 3);
  return lens_case_node_new ("GlobalAveragePool", 1, 1, &x, 1);
}

const LensOp lens_op_global_average_pool = {
  .op_type = "GlobalAveragePool",
  .reshape = global_average_pool_reshape,
  .run = global_average_pool_run,
  .reference = global_average_pool_reference,
  .make_case = global_average_pool_case,
  .atol = 1e-5,
  .rtol = 1e-5,
};
