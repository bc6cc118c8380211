/* reduce.c: Softmax, ReduceMax and TopK (kernels in kernels/reduce.cl,
 * references in ref/reduce.c).
 *
 * All three see their input as rows [outer, len, inner] along one axis (or,
 * for ReduceMax, as kept and reduced dimension groups). Each has a
 * work-item-per-row kernel for many short rows and a work-group-per-row
 * kernel for long ones. One program per element type serves the family. */
#include "lens-private.h"
#include "ref/reduce.h"

#include <string.h>

/* Largest work-group the group kernels use (their local arrays' size). */
#define GROUP_MAX 128
/* Largest K the work-group TopK sorts in local memory. */
#define TOPK_LOCAL_MAX 1024
/* Rows at least this long get a work-group each. */
#define LONG_ROW 64
/* Work-group size of the work-item-per-row kernels. */
#define ROWS_GROUP 64

#define COMMON_OPTIONS " -DGROUP_MAX=" G_STRINGIFY (GROUP_MAX) \
  " -DTOPK_LOCAL_MAX=" G_STRINGIFY (TOPK_LOCAL_MAX)

static const LensDType reduce_dtypes[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_INT32, LENS_DTYPE_INT64, LENS_DTYPE_UINT8,
  LENS_DTYPE_INT8, LENS_DTYPE_UNDEFINED
};

static const LensDType float_dtypes[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_UNDEFINED
};

static const char *
reduce_options (LensDType dtype)
{
  switch (dtype) {
    case LENS_DTYPE_FLOAT:
      return "-DT=float -DT_FLOAT=1 -DT_LOWEST=-INFINITY -DKEY_BITS=32"
          COMMON_OPTIONS;
    case LENS_DTYPE_INT32:
      return "-DT=int -DT_SIGNED=1 -DT_LOWEST=INT_MIN -DKEY_BITS=32"
          COMMON_OPTIONS;
    case LENS_DTYPE_INT64:
      return "-DT=long -DT_SIGNED=1 -DT_LOWEST=LONG_MIN -DKEY_BITS=64"
          COMMON_OPTIONS;
    case LENS_DTYPE_UINT8:
      return "-DT=uchar -DT_LOWEST=0 -DKEY_BITS=32" COMMON_OPTIONS;
    case LENS_DTYPE_INT8:
      return "-DT=char -DT_SIGNED=1 -DT_LOWEST=CHAR_MIN -DKEY_BITS=32"
          COMMON_OPTIONS;
    default:
      return NULL;
  }
}

/* Local size of the group kernels: GROUP_MAX, or the largest power of two
 * the device allows for @kernel. One size for every row length, because a
 * CPU driver compiles a kernel anew for each local size it sees. */
static size_t
group_size (LensContext * ctx, cl_kernel kernel)
{
  size_t max = MIN (lens_kernel_max_work_group (ctx, kernel), GROUP_MAX);
  size_t ls = 1;

  while (ls * 2 <= max)
    ls *= 2;
  return ls;
}

/* Local size of the work-item-per-row kernels (the global size is rounded
 * up to it; the kernels check bounds): fixed for the same reason. */
static size_t *
rows_local (LensContext * ctx, cl_kernel kernel, size_t *local)
{
  size_t max = lens_kernel_max_work_group (ctx, kernel);

  *local = 1;
  while (*local * 2 <= MIN (max, ROWS_GROUP))
    *local *= 2;
  return local;
}

static LensStatus
check_offsets (const LensNode * node, LensError *err)
{
  for (int i = 0; i < node->n_inputs; i++) {
    LensTensor *t = node->inputs[i];
    if (t != NULL && t->buffer != NULL && t->offset != 0)
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "%s: input %d has a non-zero offset", node->op_type, i);
  }
  for (int i = 0; i < node->n_outputs; i++) {
    LensTensor *t = node->outputs[i];
    if (t != NULL && t->offset != 0)
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "%s: output %d has a non-zero offset", node->op_type, i);
  }
  return LENS_OK;
}

static LensTensor *
random_tensor (LensDType dtype, int ndim, const int64_t *shape, GRand * rand)
{
  switch (dtype) {
    case LENS_DTYPE_UINT8:
      return lens_tensor_new_random (dtype, ndim, shape, rand, 0, 255);
    case LENS_DTYPE_INT8:
      return lens_tensor_new_random (dtype, ndim, shape, rand, -128, 127);
    case LENS_DTYPE_FLOAT:
      return lens_tensor_new_random (dtype, ndim, shape, rand, -4, 4);
    default:
      return lens_tensor_new_random (dtype, ndim, shape, rand, -1000, 1000);
  }
}

/* ---- Softmax ----------------------------------------------------------------- */

typedef struct
{
  int64_t axis;
  gboolean coerce_2d;           /* opset < 13: softmax over dims[axis:] */
} SoftmaxParams;

static LensStatus
softmax_init (LensNode * node, LensError *err)
{
  SoftmaxParams *p = g_new0 (SoftmaxParams, 1);

  node->priv = p;
  p->coerce_2d = node->opset < 13;
  p->axis = lens_node_attr_int (node, "axis", p->coerce_2d ? 1 : -1);
  return LENS_OK;
}

static void
priv_exit (LensNode * node)
{
  g_clear_pointer (&node->priv, g_free);
}

static LensStatus
softmax_rows (const LensNode * node, int64_t *outer, int64_t *len,
    int64_t *inner, LensError *err)
{
  const SoftmaxParams *p = node->priv;
  const LensTensor *x = node->inputs[0];
  int axis;
  LensStatus st;

  if (x->ndim < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Softmax: input must have rank >= 1");
  st = lens_normalize_axis (node, p->axis, x->ndim, &axis, err);
  if (st != LENS_OK)
    return st;
  *outer = *len = *inner = 1;
  for (int d = 0; d < x->ndim; d++) {
    if (d < axis)
      *outer *= x->shape[d];
    else if (d == axis || p->coerce_2d)
      *len *= x->shape[d];
    else
      *inner *= x->shape[d];
  }
  return LENS_OK;
}

static LensStatus
softmax_reshape (LensNode * node, LensError *err)
{
  LensTensor *x = lens_node_input (node, 0), *y = node->outputs[0];
  int64_t outer, len, inner;
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Softmax needs one input and one output");
  st = lens_node_check_dtype (node, "input", x->dtype, float_dtypes, err);
  if (st == LENS_OK)
    st = softmax_rows (node, &outer, &len, &inner, err);
  if (st != LENS_OK)
    return st;
  if (len > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Softmax: rows of %" G_GINT64_FORMAT " elements (at most %d)", len,
        G_MAXINT);
  y->dtype = x->dtype;
  lens_tensor_set_shape (y, x->ndim, x->shape);
  return LENS_OK;
}

static LensStatus
softmax_run (LensContext * ctx, LensNode * node, LensError *err)
{
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  int64_t outer, len, inner;
  cl_long rows, cl_inner;
  cl_int cl_len;
  cl_kernel k;
  LensStatus st;

  st = lens_tensor_require_device (x, "Softmax input", err);
  if (st == LENS_OK)
    st = check_offsets (node, err);
  if (st == LENS_OK)
    st = softmax_rows (node, &outer, &len, &inner, err);
  if (st != LENS_OK)
    return st;
  rows = outer * inner;
  cl_len = (cl_int) len;
  cl_inner = inner;
  if (rows == 0 || len == 0)
    return LENS_OK;

  if (inner == 1 && !lens_context_is_gpu (ctx)) {
    /* a CPU device: contiguous rows in vectors, one row per work-item */
    st = lens_node_kernel (ctx, node, 2, "reduce",
        reduce_options (LENS_DTYPE_FLOAT), "lens_softmax_rows16", &k, err);
    if (st == LENS_OK)
      st = lens_kernel_set_args (k, err, 4, LENS_ARG (x->buffer),
          LENS_ARG (y->buffer), LENS_ARG (rows), LENS_ARG (cl_len));
    if (st == LENS_OK)
      st = lens_context_enqueue_items (ctx, k, rows, err);
  } else if (len >= LONG_ROW) {
    size_t local, global;
    st = lens_node_kernel (ctx, node, 1, "reduce",
        reduce_options (LENS_DTYPE_FLOAT), "lens_softmax_group", &k, err);
    if (st != LENS_OK)
      return st;
    local = group_size (ctx, k);
    global = (size_t) rows * local;
    st = lens_kernel_set_args (k, err, 4, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (cl_len), LENS_ARG (cl_inner));
    if (st == LENS_OK)
      st = lens_context_enqueue (ctx, k, 1, &global, &local, err);
  } else {
    size_t global = (size_t) rows, local;
    st = lens_node_kernel (ctx, node, 0, "reduce",
        reduce_options (LENS_DTYPE_FLOAT), "lens_softmax_rows", &k, err);
    if (st != LENS_OK)
      return st;
    st = lens_kernel_set_args (k, err, 5, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (rows), LENS_ARG (cl_len),
        LENS_ARG (cl_inner));
    if (st == LENS_OK)
      st = lens_context_enqueue (ctx, k, 1, &global,
          rows_local (ctx, k, &local), err);
  }
  return st;
}

static LensStatus
softmax_reference (LensNode * node, LensError *err)
{
  int64_t outer, len, inner;
  LensStatus st = softmax_rows (node, &outer, &len, &inner, err);

  if (st != LENS_OK)
    return st;
  lens_ref_softmax (node->inputs[0]->host, node->outputs[0]->host, outer,
      len, inner);
  return LENS_OK;
}

static LensNode *
softmax_case (int index, GRand * rand)
{
  /* fixed shapes first: long rows (work-group kernel, along the last axis
   * and a middle one), YOLO-like short rows along axis 1 of many, and the
   * opset 11 two-dimensional coercion */
  static const struct
  {
    int opset, axis, ndim;
    int64_t shape[4];
  } fixed[] = {
    {13, -1, 2, {3, 1001}},
    {13, 1, 3, {2, 333, 7}},
    {13, 1, 3, {1, 16, 1261}},
    {11, 1, 3, {3, 13, 97}},
    {11, 0, 2, {1, 97}},
    {13, 0, 1, {1}},
  };
  int64_t shape[4];
  LensTensor *x;
  LensNode *node;
  int ndim, opset, axis;
  double scale = 4;

  if (index >= 16)
    return NULL;
  if (index < (int) G_N_ELEMENTS (fixed)) {
    opset = fixed[index].opset;
    axis = fixed[index].axis;
    ndim = fixed[index].ndim;
    memcpy (shape, fixed[index].shape, sizeof (shape));
  } else {
    ndim = g_rand_int_range (rand, 1, 5);
    for (int d = 0; d < ndim; d++)
      shape[d] = lens_awkward_size (rand, d == ndim - 1);
    opset = g_rand_boolean (rand) ? 13 : 11;
    axis = g_rand_int_range (rand, -ndim, ndim);
    /* large magnitudes: only the max subtraction keeps exp finite */
    if (index % 5 == 0)
      scale = 1000;
  }
  x = lens_tensor_new_random (LENS_DTYPE_FLOAT, ndim, shape, rand, -scale,
      scale);
  node = lens_case_node_new ("Softmax", opset, 1, &x, 1);
  if (index % 3 != 2 || axis != (opset < 13 ? 1 : -1))
    lens_node_set_attr_int (node, "axis", axis);
  return node;
}

const LensOp lens_op_softmax = {
  .op_type = "Softmax",
  .init = softmax_init,
  .reshape = softmax_reshape,
  .run = softmax_run,
  .reference = softmax_reference,
  .exit = priv_exit,
  .make_case = softmax_case,
  .atol = 1e-6,
  .rtol = 1e-4,
};

/* ---- ReduceMax --------------------------------------------------------------- */

typedef struct
{
  gboolean keepdims;
  gboolean noop_with_empty_axes;
  int n_axes;                   /* -1: no axes attribute */
  int64_t *axes;
  gboolean reduced[LENS_MAX_DIMS];      /* set by reshape */
} ReduceMaxParams;

static LensStatus
reduce_max_init (LensNode * node, LensError *err)
{
  ReduceMaxParams *p = g_new0 (ReduceMaxParams, 1);
  const int64_t *axes;

  node->priv = p;
  p->keepdims = lens_node_attr_int (node, "keepdims", 1) != 0;
  p->noop_with_empty_axes =
      lens_node_attr_int (node, "noop_with_empty_axes", 0) != 0;
  p->n_axes = lens_node_attr_ints (node, "axes", &axes);
  if (p->n_axes > 0)
    p->axes = g_memdup2 (axes, sizeof (int64_t) * p->n_axes);
  return LENS_OK;
}

static void
reduce_max_exit (LensNode * node)
{
  ReduceMaxParams *p = node->priv;

  if (p == NULL)
    return;
  g_free (p->axes);
  g_clear_pointer (&node->priv, g_free);
}

static LensStatus
reduce_max_reshape (LensNode * node, LensError *err)
{
  ReduceMaxParams *p = node->priv;
  LensTensor *x = lens_node_input (node, 0), *y = node->outputs[0];
  int64_t *axes = NULL, n_axes = -1, shape[LENS_MAX_DIMS];
  int ndim = 0;
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ReduceMax needs an input and an output");
  st = lens_node_check_dtype (node, "input", x->dtype, reduce_dtypes, err);
  if (st != LENS_OK)
    return st;
  /* opset 18 moved axes from the attribute to an optional input */
  if (lens_node_input (node, 1) != NULL) {
    st = lens_node_input_ints (node, 1, &axes, &n_axes, err);
    if (st != LENS_OK)
      return st;
  } else if (p->n_axes >= 0) {
    n_axes = p->n_axes;
    axes = g_memdup2 (p->axes, sizeof (int64_t) * MAX (n_axes, 1));
  }

  memset (p->reduced, 0, sizeof (p->reduced));
  if (n_axes <= 0) {
    for (int d = 0; d < x->ndim; d++)
      p->reduced[d] = !p->noop_with_empty_axes;
  }
  for (int64_t i = 0; i < n_axes && st == LENS_OK; i++) {
    int a;
    st = lens_normalize_axis (node, axes[i], x->ndim, &a, err);
    if (st == LENS_OK && p->reduced[a])
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "ReduceMax: axis %d is listed twice in 'axes'", a);
    if (st == LENS_OK)
      p->reduced[a] = TRUE;
  }
  g_free (axes);
  if (st != LENS_OK)
    return st;

  for (int d = 0; d < x->ndim; d++) {
    if (!p->reduced[d])
      shape[ndim++] = x->shape[d];
    else if (p->keepdims)
      shape[ndim++] = 1;
  }
  y->dtype = x->dtype;
  lens_tensor_set_shape (y, ndim, shape);
  return LENS_OK;
}

/* Splits the input's dimensions into kept and reduced groups, merging
 * neighbours of the same kind (size-1 dimensions do not matter), right
 * aligned into four slots padded with shape 1. Groups alternate, so eight
 * dimensions make at most four of each. */
static void
reduce_max_groups (const LensTensor * x, const gboolean * reduced,
    cl_long4 * kshape, cl_long4 * kstride, cl_long4 * rshape,
    cl_long4 * rstride)
{
  int64_t gshape[LENS_MAX_DIMS], gstride[LENS_MAX_DIMS];
  gboolean gred[LENS_MAX_DIMS];
  int ng = 0, nk = 0, nr = 0;

  for (int d = 0; d < x->ndim; d++) {
    if (x->shape[d] == 1)
      continue;
    if (ng > 0 && gred[ng - 1] == reduced[d]) {
      gshape[ng - 1] *= x->shape[d];
      gstride[ng - 1] = x->strides[d];
    } else {
      gshape[ng] = x->shape[d];
      gstride[ng] = x->strides[d];
      gred[ng++] = reduced[d];
    }
  }
  for (int s = 0; s < 4; s++) {
    kshape->s[s] = rshape->s[s] = 1;
    kstride->s[s] = rstride->s[s] = 0;
  }
  for (int g = ng - 1; g >= 0; g--) {
    if (gred[g]) {
      rshape->s[3 - nr] = gshape[g];
      rstride->s[3 - nr++] = gstride[g];
    } else {
      kshape->s[3 - nk] = gshape[g];
      kstride->s[3 - nk++] = gstride[g];
    }
  }
}

static LensStatus
reduce_max_run (LensContext * ctx, LensNode * node, LensError *err)
{
  ReduceMaxParams *p = node->priv;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  const char *options = reduce_options (x->dtype);
  cl_long4 kshape, kstride, rshape, rstride;
  cl_long n_out = lens_tensor_numel (y);
  int64_t count;
  cl_kernel k;
  LensStatus st;

  st = lens_tensor_require_device (x, "ReduceMax input", err);
  if (st == LENS_OK)
    st = check_offsets (node, err);
  if (st != LENS_OK)
    return st;
  if (n_out == 0)
    return LENS_OK;
  reduce_max_groups (x, p->reduced, &kshape, &kstride, &rshape, &rstride);
  /* zero when a reduced dimension is empty: the kernels then write the
   * lowest value, as ONNX asks */
  count = rshape.s[0] * rshape.s[1] * rshape.s[2] * rshape.s[3];

  /* long reductions into few outputs: a work-group each */
  if (count >= 4 * LONG_ROW && n_out < 65536) {
    size_t local, global;
    st = lens_node_kernel (ctx, node, 1, "reduce", options,
        "lens_reduce_max_group", &k, err);
    if (st != LENS_OK)
      return st;
    local = group_size (ctx, k);
    global = (size_t) n_out * local;
    st = lens_kernel_set_args (k, err, 6, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (kshape), LENS_ARG (kstride),
        LENS_ARG (rshape), LENS_ARG (rstride));
    if (st == LENS_OK)
      st = lens_context_enqueue (ctx, k, 1, &global, &local, err);
  } else {
    size_t global = (size_t) n_out, local;
    st = lens_node_kernel (ctx, node, 0, "reduce", options,
        "lens_reduce_max_rows", &k, err);
    if (st != LENS_OK)
      return st;
    st = lens_kernel_set_args (k, err, 7, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (n_out), LENS_ARG (kshape),
        LENS_ARG (kstride), LENS_ARG (rshape), LENS_ARG (rstride));
    if (st == LENS_OK)
      st = lens_context_enqueue (ctx, k, 1, &global,
          rows_local (ctx, k, &local), err);
  }
  return st;
}

static LensStatus
reduce_max_reference (LensNode * node, LensError *err)
{
  ReduceMaxParams *p = node->priv;

  return lens_ref_reduce_max (node->inputs[0], node->outputs[0], p->reduced,
      err);
}

static LensNode *
reduce_max_case (int index, GRand * rand)
{
  static const LensDType dtypes[] = {
    LENS_DTYPE_INT32, LENS_DTYPE_INT64, LENS_DTYPE_UINT8, LENS_DTYPE_INT8
  };
  LensDType dtype = LENS_DTYPE_FLOAT;
  int64_t shape[LENS_MAX_DIMS], axes[LENS_MAX_DIMS];
  int ndim, n_axes = 0, opset = index % 2 ? 18 : 13;
  LensTensor *inputs[2] = { NULL, NULL };
  LensNode *node;

  if (index >= 16)
    return NULL;
  if (index >= 12)
    dtype = dtypes[index - 12];
  if (index < 2) {
    /* reduce all of a long tensor: the work-group kernel */
    ndim = 3;
    shape[0] = 13;
    shape[1] = 97;
    shape[2] = 3;
  } else if (index < 4) {
    /* long reductions along the middle */
    ndim = 3;
    shape[0] = 3;
    shape[1] = 1001;
    shape[2] = 7;
    axes[n_axes++] = 1;
  } else {
    ndim = g_rand_int_range (rand, 1, 6);
    for (int d = 0; d < ndim; d++)
      shape[d] = lens_awkward_size (rand, d >= ndim - 2);
    for (int d = 0; d < ndim; d++)
      if (g_rand_boolean (rand))
        axes[n_axes++] = d - (g_rand_boolean (rand) ? ndim : 0);
  }
  /* an empty axes input: with noop_with_empty_axes (below) a copy */
  if (index == 7)
    n_axes = 0;
  inputs[0] = random_tensor (dtype, ndim, shape, rand);
  if (opset >= 18 && (n_axes > 0 || index % 4 == 3)) {
    inputs[1] = lens_tensor_new_host (LENS_DTYPE_INT64, 1, (int64_t[]) {
        n_axes}, axes);
    inputs[1]->is_constant = TRUE;
  }
  node = lens_case_node_new ("ReduceMax", opset, inputs[1] ? 2 : 1, inputs,
      1);
  if (opset < 18 && n_axes > 0)
    lens_node_set_attr_ints (node, "axes", n_axes, axes);
  if (index % 3 != 0)
    lens_node_set_attr_int (node, "keepdims", index % 3 == 1);
  if (opset >= 18 && index % 8 == 7)
    lens_node_set_attr_int (node, "noop_with_empty_axes", 1);
  return node;
}

const LensOp lens_op_reduce_max = {
  .op_type = "ReduceMax",
  .init = reduce_max_init,
  .reshape = reduce_max_reshape,
  .run = reduce_max_run,
  .reference = reduce_max_reference,
  .exit = reduce_max_exit,
  .make_case = reduce_max_case,
  .atol = 0,
  .rtol = 0,
};

/* ---- TopK -------------------------------------------------------------------- */

typedef struct
{
  int64_t axis_attr;
  gboolean largest;
  int64_t k;                    /* set by reshape */
  int axis;                     /* set by reshape */
} TopKParams;

static LensStatus
top_k_init (LensNode * node, LensError *err)
{
  TopKParams *p = g_new0 (TopKParams, 1);

  node->priv = p;
  p->axis_attr = lens_node_attr_int (node, "axis", -1);
  p->largest = lens_node_attr_int (node, "largest", 1) != 0;
  /* sorted = 0 leaves the order unspecified: sorted output satisfies it */
  return LENS_OK;
}

static LensStatus
top_k_reshape (LensNode * node, LensError *err)
{
  TopKParams *p = node->priv;
  LensTensor *x = lens_node_input (node, 0);
  int64_t shape[LENS_MAX_DIMS];
  LensStatus st;

  if (x == NULL || node->n_outputs < 2)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "TopK needs input X and outputs Values and Indices");
  st = lens_node_check_dtype (node, "input X", x->dtype, reduce_dtypes, err);
  if (st != LENS_OK)
    return st;
  if (x->ndim < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "TopK: input X must have rank >= 1");
  st = lens_normalize_axis (node, p->axis_attr, x->ndim, &p->axis, err);
  if (st != LENS_OK)
    return st;
  if (node->opset < 10) {
    const LensAttr *a = lens_node_attr (node, "k");
    if (a == NULL || a->type != LENS_ATTR_INT)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "TopK: attribute 'k' is required before opset 10");
    p->k = a->i;
  } else {
    int64_t *k, n;
    if (lens_node_input (node, 1) == NULL)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "TopK: input K is missing");
    st = lens_node_input_ints (node, 1, &k, &n, err);
    if (st != LENS_OK)
      return st;
    p->k = k[0];
    g_free (k);
    if (n != 1)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "TopK: input K must hold one value, not %" G_GINT64_FORMAT, n);
  }
  if (p->k < 0 || p->k > x->shape[p->axis])
    return lens_error_set (err, LENS_ERROR_INVALID,
        "TopK: K = %" G_GINT64_FORMAT " is out of range for axis %d of "
        "size %" G_GINT64_FORMAT, p->k, p->axis, x->shape[p->axis]);
  if (x->shape[p->axis] > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "TopK: axis of %" G_GINT64_FORMAT " elements (at most %d)",
        x->shape[p->axis], G_MAXINT);
  memcpy (shape, x->shape, sizeof (int64_t) * x->ndim);
  shape[p->axis] = p->k;
  node->outputs[0]->dtype = x->dtype;
  lens_tensor_set_shape (node->outputs[0], x->ndim, shape);
  if (node->outputs[1] != NULL) {
    node->outputs[1]->dtype = LENS_DTYPE_INT64;
    lens_tensor_set_shape (node->outputs[1], x->ndim, shape);
  }
  return LENS_OK;
}

static LensStatus
top_k_run (LensContext * ctx, LensNode * node, LensError *err)
{
  TopKParams *p = node->priv;
  LensTensor *x = node->inputs[0], *values = node->outputs[0];
  LensTensor *indices = node->outputs[1];
  const char *options = reduce_options (x->dtype);
  cl_long rows = 1, inner = 1;
  cl_int n = (cl_int) x->shape[p->axis], k = (cl_int) p->k;
  cl_int largest = p->largest;
  cl_kernel kernel;
  LensStatus st;

  st = lens_tensor_require_device (x, "TopK input X", err);
  if (st == LENS_OK)
    st = check_offsets (node, err);
  if (st == LENS_OK && indices == NULL)
    st = lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "TopK: output Indices must be present");
  if (st != LENS_OK)
    return st;
  for (int d = 0; d < x->ndim; d++)
    if (d != p->axis) {
      rows *= x->shape[d];
      if (d > p->axis)
        inner *= x->shape[d];
    }
  if (rows == 0 || k == 0)
    return LENS_OK;

  if (k <= TOPK_LOCAL_MAX) {
    size_t local, global;
    st = lens_node_kernel (ctx, node, 1, "reduce", options,
        "lens_top_k_group", &kernel, err);
    if (st != LENS_OK)
      return st;
    local = group_size (ctx, kernel);
    global = (size_t) rows * local;
    st = lens_kernel_set_args (kernel, err, 7, LENS_ARG (x->buffer),
        LENS_ARG (values->buffer), LENS_ARG (indices->buffer), LENS_ARG (n),
        LENS_ARG (inner), LENS_ARG (k), LENS_ARG (largest));
    if (st == LENS_OK)
      st = lens_context_enqueue (ctx, kernel, 1, &global, &local, err);
  } else {
    size_t global = (size_t) rows, local;
    st = lens_node_kernel (ctx, node, 0, "reduce", options,
        "lens_top_k_rows", &kernel, err);
    if (st != LENS_OK)
      return st;
    st = lens_kernel_set_args (kernel, err, 8, LENS_ARG (x->buffer),
        LENS_ARG (values->buffer), LENS_ARG (indices->buffer),
        LENS_ARG (rows), LENS_ARG (n), LENS_ARG (inner), LENS_ARG (k),
        LENS_ARG (largest));
    if (st == LENS_OK)
      st = lens_context_enqueue (ctx, kernel, 1, &global,
          rows_local (ctx, kernel, &local), err);
  }
  return st;
}

static LensStatus
top_k_reference (LensNode * node, LensError *err)
{
  TopKParams *p = node->priv;
  LensTensor *indices = node->outputs[1], *scratch = NULL;
  LensStatus st;

  if (indices == NULL) {
    scratch = lens_tensor_new_host (LENS_DTYPE_INT64, node->outputs[0]->ndim,
        node->outputs[0]->shape, NULL);
    indices = scratch;
  }
  st = lens_ref_top_k (node->inputs[0], node->outputs[0], indices, p->axis,
      p->k, p->largest, err);
  lens_tensor_free (scratch);
  return st;
}

static LensNode *
top_k_case (int index, GRand * rand)
{
  /* the 32- and 64-bit integer keys (uint8 and int8 share the int32 code
   * and cost a program build each) */
  static const LensDType dtypes[] = { LENS_DTYPE_INT32, LENS_DTYPE_INT64 };
  LensDType dtype = LENS_DTYPE_FLOAT;
  int64_t shape[LENS_MAX_DIMS], k;
  int ndim, axis;
  gboolean ties = index % 3 == 1;
  LensTensor *inputs[2];
  LensNode *node;

  if (index >= 16)
    return NULL;
  if (index >= 14)
    dtype = dtypes[index - 14];
  if (index < 2) {
    /* YOLO26: the best 300 of 8400 (here 1261) */
    ndim = 2;
    shape[0] = index + 1;
    shape[1] = 1261;
    axis = 1;
    k = 300;
  } else if (index == 2) {
    /* K beyond the local-memory sort */
    ndim = 2;
    shape[0] = 2;
    shape[1] = TOPK_LOCAL_MAX + 77;
    axis = -1;
    k = TOPK_LOCAL_MAX + 13;
  } else if (index == 3) {
    /* along a middle axis, K = n */
    ndim = 3;
    shape[0] = 3;
    shape[1] = 97;
    shape[2] = 13;
    axis = 1;
    k = 97;
  } else {
    ndim = g_rand_int_range (rand, 1, 5);
    for (int d = 0; d < ndim; d++)
      shape[d] = lens_awkward_size (rand, d == ndim - 1);
    axis = g_rand_int_range (rand, -ndim, ndim);
    k = g_rand_int_range (rand, 1, shape[axis < 0 ? axis + ndim : axis] + 1);
  }
  /* integer-valued floats in a small range make many ties */
  if (ties && dtype == LENS_DTYPE_FLOAT)
    inputs[0] = lens_tensor_new_random (LENS_DTYPE_INT32, ndim, shape, rand,
        -3, 3);
  else
    inputs[0] = random_tensor (dtype, ndim, shape, rand);
  if (inputs[0]->dtype != dtype) {
    LensTensor *f = lens_tensor_new_host (dtype, ndim, shape, NULL);
    for (int64_t i = 0; i < lens_tensor_numel (f); i++)
      lens_tensor_set_f64 (f, i, lens_tensor_get_f64 (inputs[0], i));
    lens_tensor_free (inputs[0]);
    inputs[0] = f;
  }
  inputs[1] = lens_tensor_new_host (LENS_DTYPE_INT64, 1, (int64_t[]) {
      1}, &k);
  inputs[1]->is_constant = TRUE;
  node = lens_case_node_new ("TopK", 11, 2, inputs, 2);
  lens_node_set_attr_int (node, "axis", axis);
  if (index % 2 == 1)
    lens_node_set_attr_int (node, "largest", 0);
  if (index % 4 == 2)
    lens_node_set_attr_int (node, "sorted", 1);
  return node;
}

const LensOp lens_op_top_k = {
  .op_type = "TopK",
  .init = top_k_init,
  .reshape = top_k_reshape,
  .run = top_k_run,
  .reference = top_k_reference,
  .exit = priv_exit,
  .make_case = top_k_case,
  .atol = 0,
  .rtol = 0,
};
