/* layout.c: Concat, Split, Slice, Pad and Transpose: operators that move
 * elements without arithmetic.
 *
 * The kernels (kernels/layout.cl) only carry bits: they are built once per
 * element size (1, 2, 4 or 8 bytes), so every fixed-size data type works
 * and at most four layout programs are ever compiled. Concat launches one
 * block copy per input into its slice of the output, Split one per output;
 * Slice and Transpose share a strided gather over collapsed dimensions, and
 * Transpose has a tiled path for a swap of the last two dimensions. The
 * references are in ref/layout.c. */
#include "lens-private.h"
#include "ref/layout.h"

#include <string.h>

/* ---- shared ----------------------------------------------------------------- */

/* Kernels index with int: refuse tensors beyond that. */
static LensStatus
check_int_size (const LensNode * node, const LensTensor * t, const char *what,
    LensError *err)
{
  if (lens_tensor_numel (t) > G_MAXINT32)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: %s has %" G_GINT64_FORMAT " elements (at most %d)",
        node->op_type, what, lens_tensor_numel (t), G_MAXINT32);
  return LENS_OK;
}

static LensStatus
missing_io (const LensNode * node, LensError *err)
{
  return lens_error_set (err, LENS_ERROR_INVALID,
      "%s: input 0 ('data') and output 0 are required", node->op_type);
}

/* Shapes and strides go to the kernels innermost dimension first. */
static cl_int8
to_cl_int8 (int rank, const int64_t *values)
{
  cl_int8 v;

  memset (&v, 0, sizeof v);
  for (int d = 0; d < rank; d++)
    v.s[d] = (cl_int) values[rank - 1 - d];
  return v;
}

static int64_t
product (const int64_t *shape, int from, int to)
{
  int64_t p = 1;

  for (int d = from; d < to; d++)
    p *= shape[d];
  return p;
}

/* Elements of a row each work-item of the copy kernels moves: a CPU
 * device pays per work-item (index arithmetic, scheduling), so it gets
 * long runs in whole vectors, one work-item each (16 elements per item in
 * groups of 256 took twice the time); a GPU wants neighbouring items on
 * neighbouring elements. Launch with lens_context_enqueue_items. */
static cl_int
copy_span (LensContext * ctx)
{
  return lens_context_is_gpu (ctx) ? 1 : 512;
}

/* dst viewed as [rows, dst_pitch], src as [rows, src_pitch]: copies a
 * rows x cols block between the two (one Concat input, one Split output). */
static LensStatus
copy_block (LensContext * ctx, LensNode * node, const char *options,
    const LensTensor * src, int64_t src_pitch, int64_t src_offset,
    LensTensor * dst, int64_t dst_pitch, int64_t dst_offset, int64_t rows,
    int64_t cols, LensError *err)
{
  cl_int sp = (cl_int) src_pitch, so = (cl_int) src_offset;
  cl_int dp = (cl_int) dst_pitch, dof = (cl_int) dst_offset;
  cl_int r = (cl_int) rows, c = (cl_int) cols;
  cl_int span = copy_span (ctx);
  cl_kernel k;
  LensStatus st;

  if (rows * cols == 0)
    return LENS_OK;
  st = lens_node_kernel (ctx, node, lens_elem_size_slot (dst->dtype), "layout",
      options, "lens_copy_block", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 9, LENS_ARG (src->buffer),
        LENS_ARG (sp), LENS_ARG (so), LENS_ARG (dst->buffer), LENS_ARG (dp),
        LENS_ARG (dof), LENS_ARG (r), LENS_ARG (c), LENS_ARG (span));
  if (st == LENS_OK)
    st = lens_context_enqueue_items (ctx, k, rows * ((cols + span - 1) /
            span), err);
  return st;
}

/* Drops dimensions of size 1 and merges neighbours that are contiguous in
 * the source, so the kernel unravels as few dimensions as possible. */
static int
collapse_dims (int rank, int64_t *shape, int64_t *strides)
{
  int out = 0;

  for (int d = 0; d < rank; d++) {
    if (shape[d] == 1)
      continue;
    if (out > 0 && strides[out - 1] == strides[d] * shape[d]) {
      shape[out - 1] *= shape[d];
      strides[out - 1] = strides[d];
      continue;
    }
    shape[out] = shape[d];
    strides[out] = strides[d];
    out++;
  }
  return out;
}

/* y (contiguous, @rank / @shape) = x[base + sum c_d * strides_d]. A swap of
 * the last two dimensions of a contiguous source goes through the tiled
 * transpose when @allow_tiled. */
static LensStatus
copy_strided (LensContext * ctx, LensNode * node, const char *options,
    const LensTensor * x, int64_t base, int rank, const int64_t *shape_in,
    const int64_t *strides_in, gboolean allow_tiled, LensTensor * y,
    LensError *err)
{
  int64_t shape[LENS_MAX_DIMS], strides[LENS_MAX_DIMS];
  int64_t n = lens_tensor_numel (y);
  cl_int cbase = (cl_int) base, cn = (cl_int) n, crank;
  cl_int8 cshape, cstrides;
  cl_int span = copy_span (ctx);
  cl_kernel k;
  LensStatus st;

  if (n == 0)
    return LENS_OK;
  memcpy (shape, shape_in, sizeof (int64_t) * rank);
  memcpy (strides, strides_in, sizeof (int64_t) * rank);
  rank = collapse_dims (rank, shape, strides);

  if (allow_tiled && base == 0 && (rank == 2 || rank == 3)) {
    /* output [batch, C, R] read from a contiguous source [batch, R, C] */
    int64_t r = shape[rank - 1], c = shape[rank - 2];
    if (strides[rank - 1] == c && strides[rank - 2] == 1
        && (rank == 2 || strides[0] == r * c) && r >= 8 && c >= 8) {
      cl_int rows = (cl_int) r, cols = (cl_int) c;
      cl_int batch = (cl_int) (rank == 3 ? shape[0] : 1);
      cl_int tiles_r = (cl_int) ((r + 15) / 16), tiles_c =
          (cl_int) ((c + 15) / 16);
      size_t local = 256, global = (size_t) batch * tiles_r * tiles_c * 256;

      st = lens_node_kernel (ctx, node, 4 + lens_elem_size_slot (y->dtype), "layout",
          options, "lens_transpose_tiled", &k, err);
      if (st != LENS_OK)
        return st;
      if (lens_kernel_max_work_group (ctx, k) >= local) {
        st = lens_kernel_set_args (k, err, 7, LENS_ARG (x->buffer),
            LENS_ARG (y->buffer), LENS_ARG (rows), LENS_ARG (cols),
            LENS_ARG (tiles_r), LENS_ARG (tiles_c), LENS_ARG (batch));
        if (st == LENS_OK)
          st = lens_context_enqueue (ctx, k, 1, &global, &local, err);
        return st;
      }
      /* a device with smaller work-groups takes the strided path */
    }
  }

  if (rank == 0) {
    /* a single element: one row of one */
    rank = 1;
    shape[0] = 1;
    strides[0] = 0;
  }
  crank = rank;
  cshape = to_cl_int8 (rank, shape);
  cstrides = to_cl_int8 (rank, strides);
  st = lens_node_kernel (ctx, node, lens_elem_size_slot (y->dtype), "layout", options,
      "lens_copy_strided", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 8, LENS_ARG (x->buffer),
        LENS_ARG (cbase), LENS_ARG (y->buffer), LENS_ARG (cn),
        LENS_ARG (crank), LENS_ARG (cshape), LENS_ARG (cstrides),
        LENS_ARG (span));
  if (st == LENS_OK)
    st = lens_context_enqueue_items (ctx, k,
        n / shape[rank - 1] * ((shape[rank - 1] + span - 1) / span), err);
  return st;
}

/* A random data tensor of one of the types the self-tests rotate through
 * (every element size). */
static LensTensor *
random_data (GRand * rand, int index, int ndim, const int64_t *shape)
{
  static const LensDType types[] = {
    LENS_DTYPE_FLOAT, LENS_DTYPE_INT64, LENS_DTYPE_UINT8, LENS_DTYPE_FLOAT16,
    LENS_DTYPE_INT32,
  };
  LensDType dtype = types[index % G_N_ELEMENTS (types)];

  if (dtype == LENS_DTYPE_UINT8)
    return lens_tensor_new_random (dtype, ndim, shape, rand, 0, 255);
  if (lens_dtype_is_float (dtype))
    return lens_tensor_new_random (dtype, ndim, shape, rand, -4, 4);
  return lens_tensor_new_random (dtype, ndim, shape, rand, -1000, 1000);
}

static LensTensor *
int_tensor (LensDType dtype, int n, const int64_t *values)
{
  LensTensor *t = lens_tensor_new_host (dtype, 1, (int64_t[]) {
      n}, NULL);

  for (int i = 0; i < n; i++)
    lens_tensor_set_f64 (t, i, (double) values[i]);
  /* int64 extremes do not survive a double: store them exactly */
  if (dtype == LENS_DTYPE_INT64)
    memcpy (t->host, values, sizeof (int64_t) * n);
  t->is_constant = TRUE;
  return t;
}

/* Appends @t as a new last input of a self-test @node (NULL: omitted). */
static void
case_add_input (LensNode * node, LensTensor * t)
{
  node->inputs = g_renew (LensTensor *, node->inputs, node->n_inputs + 1);
  node->inputs[node->n_inputs++] = t;
}

/* ---- Concat ----------------------------------------------------------------- */

typedef struct
{
  int64_t axis_attr;
  int axis;                     /* normalized, set by reshape */
} ConcatPriv;

static LensStatus
concat_init (LensNode * node, LensError *err)
{
  ConcatPriv *p;
  const LensAttr *a = lens_node_attr (node, "axis");

  /* axis became required in opset 4; before, it defaulted to 1 */
  if ((a == NULL || a->type != LENS_ATTR_INT) && node->opset >= 4)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Concat: attribute 'axis' is required");
  p = g_new0 (ConcatPriv, 1);
  p->axis_attr = lens_node_attr_int (node, "axis", 1);
  node->priv = p;
  return LENS_OK;
}

static void
priv_exit (LensNode * node)
{
  g_clear_pointer (&node->priv, g_free);
}

static LensStatus
concat_reshape (LensNode * node, LensError *err)
{
  ConcatPriv *p = node->priv;
  const LensTensor *first = lens_node_input (node, 0);
  LensTensor *y = lens_node_output (node, 0);
  int64_t shape[LENS_MAX_DIMS];
  const char *options;
  LensStatus st;

  if (first == NULL || y == NULL)
    return missing_io (node, err);
  if (first->ndim < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Concat: input 0 is a scalar (rank 1 or more needed)");
  st = lens_elem_size_options (node, first->dtype, &options, err);
  if (st == LENS_OK)
    st = lens_normalize_axis (node, p->axis_attr, first->ndim, &p->axis, err);
  if (st != LENS_OK)
    return st;
  memcpy (shape, first->shape, sizeof (int64_t) * first->ndim);
  shape[p->axis] = 0;
  for (int k = 0; k < node->n_inputs; k++) {
    const LensTensor *x = node->inputs[k];
    if (x == NULL)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Concat: input %d is missing", k);
    if (x->dtype != first->dtype)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Concat: input %d is %s, input 0 is %s", k,
          lens_dtype_name (x->dtype), lens_dtype_name (first->dtype));
    if (x->ndim != first->ndim)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Concat: input %d has rank %d, input 0 rank %d", k, x->ndim,
          first->ndim);
    for (int d = 0; d < x->ndim; d++)
      if (d != p->axis && x->shape[d] != first->shape[d])
        return lens_error_set (err, LENS_ERROR_INVALID,
            "Concat: input %d has size %" G_GINT64_FORMAT " in dimension %d,"
            " input 0 %" G_GINT64_FORMAT " (only axis %d may differ)", k,
            x->shape[d], d, first->shape[d], p->axis);
    shape[p->axis] += x->shape[p->axis];
  }
  y->dtype = first->dtype;
  lens_tensor_set_shape (y, first->ndim, shape);
  return check_int_size (node, y, "output", err);
}

/* Whether @x already lies in @y from byte @offset on: the memory plan
 * made its producer write there, through a sub-buffer of @y's buffer. */
static gboolean
already_in_place (const LensTensor * x, const LensTensor * y, size_t offset)
{
  cl_mem parent = NULL;
  size_t origin = 0;

  if (x->buffer == NULL || x->offset != 0 || y->offset != 0
      || clGetMemObjectInfo (x->buffer, CL_MEM_ASSOCIATED_MEMOBJECT,
          sizeof (parent), &parent, NULL) != CL_SUCCESS
      || clGetMemObjectInfo (x->buffer, CL_MEM_OFFSET, sizeof (origin),
          &origin, NULL) != CL_SUCCESS)
    return FALSE;
  return parent == y->buffer && origin == offset;
}

static LensStatus
concat_run (LensContext * ctx, LensNode * node, LensError *err)
{
  ConcatPriv *p = node->priv;
  LensTensor *y = node->outputs[0];
  int64_t outer = product (y->shape, 0, p->axis);
  int64_t inner = product (y->shape, p->axis + 1, y->ndim);
  int64_t start = 0;
  const char *options;
  LensStatus st = lens_elem_size_options (node, y->dtype, &options, err);

  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  /* each input writes its own slice [start, start + size) of the axis */
  for (int k = 0; k < node->n_inputs && st == LENS_OK; k++) {
    const LensTensor *x = node->inputs[k];
    int64_t cols = x->shape[p->axis] * inner;

    if (lens_tensor_numel (x) > 0)
      st = lens_node_require_dense (node, x, "input", err);
    if (st == LENS_OK && outer == 1 && already_in_place (x, y,
            (size_t) (start * inner) * lens_dtype_size (y->dtype))) {
      start += x->shape[p->axis];
      continue;
    }
    if (st == LENS_OK)
      st = copy_block (ctx, node, options, x, cols, 0, y,
          y->shape[p->axis] * inner, start * inner, outer, cols, err);
    start += x->shape[p->axis];
  }
  return st;
}

static LensStatus
concat_reference (LensNode * node, LensError *err)
{
  ConcatPriv *p = node->priv;

  return lens_ref_concat (node, p->axis, err);
}

static LensNode *
concat_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS];
  LensTensor *inputs[4];
  LensNode *node;
  int ndim, axis, n;

  if (index >= 14)
    return NULL;
  ndim = 1 + index % 4;
  n = g_rand_int_range (rand, 1, 5);
  axis = g_rand_int_range (rand, -ndim, ndim);
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  for (int k = 0; k < n; k++) {
    shape[(axis + ndim) % ndim] = lens_awkward_size (rand, ndim <= 2);
    /* an input that is empty along the axis contributes nothing */
    if (index % 5 == 4 && k == 1)
      shape[(axis + ndim) % ndim] = 0;
    inputs[k] = random_data (rand, index, ndim, shape);
  }
  node = lens_case_node_new ("Concat", 13, n, inputs, 1);
  lens_node_set_attr_int (node, "axis", axis);
  return node;
}

const LensOp lens_op_concat = {
  .op_type = "Concat",
  .init = concat_init,
  .reshape = concat_reshape,
  .run = concat_run,
  .reference = concat_reference,
  .exit = priv_exit,
  .make_case = concat_case,
};

/* ---- Split ------------------------------------------------------------------ */

typedef struct
{
  int64_t axis_attr;
  int64_t num_outputs;          /* opset 18 attribute, 0 when absent */
  int n_split_attr;             /* -1 when the attribute is absent */
  int64_t *split_attr;
  int axis;                     /* set by reshape */
  int64_t *sizes;               /* one per output, set by reshape */
} SplitPriv;

static LensStatus
split_init (LensNode * node, LensError *err)
{
  SplitPriv *p = g_new0 (SplitPriv, 1);
  const int64_t *split;

  node->priv = p;
  p->axis_attr = lens_node_attr_int (node, "axis", 0);
  p->num_outputs = lens_node_attr_int (node, "num_outputs", 0);
  p->n_split_attr = lens_node_attr_ints (node, "split", &split);
  if (p->n_split_attr >= 0)
    p->split_attr = g_memdup2 (split, sizeof (int64_t) *
        MAX (p->n_split_attr, 1));
  if (lens_node_attr (node, "num_outputs") != NULL && p->num_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Split: attribute 'num_outputs' = %" G_GINT64_FORMAT " must be "
        "positive", p->num_outputs);
  if (node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Split: at least one output is required");
  if (p->num_outputs > 0 && p->num_outputs != node->n_outputs)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Split: attribute 'num_outputs' = %" G_GINT64_FORMAT " but the node "
        "has %d outputs", p->num_outputs, node->n_outputs);
  return LENS_OK;
}

static void
split_exit (LensNode * node)
{
  SplitPriv *p = node->priv;

  if (p == NULL)
    return;
  g_free (p->split_attr);
  g_free (p->sizes);
  g_clear_pointer (&node->priv, g_free);
}

/* The size of every output along the axis: the 'split' input (opset 13)
 * or attribute (older), else chunks with a smaller last one (opset 18,
 * num_outputs), else equal parts. */
static LensStatus
split_sizes (LensNode * node, SplitPriv * p, int64_t dim, LensError *err)
{
  int n = node->n_outputs;
  int64_t *split = NULL, n_split = -1, total = 0;
  LensStatus st;

  if (lens_node_input (node, 1) != NULL) {
    st = lens_node_input_ints (node, 1, &split, &n_split, err);
    if (st != LENS_OK)
      return st;
  } else if (p->n_split_attr >= 0) {
    split = g_memdup2 (p->split_attr, sizeof (int64_t) *
        MAX (p->n_split_attr, 1));
    n_split = p->n_split_attr;
  }
  g_free (p->sizes);
  p->sizes = g_new0 (int64_t, n);
  if (split != NULL) {
    if (n_split != n) {
      g_free (split);
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Split: 'split' has %" G_GINT64_FORMAT " entries for %d outputs",
          n_split, n);
    }
    memcpy (p->sizes, split, sizeof (int64_t) * n);
    g_free (split);
  } else if (p->num_outputs > 0 || node->opset >= 18) {
    /* opset 18: ceil(dim / n) each, the last one takes what is left */
    int64_t chunk = (dim + n - 1) / n;
    for (int k = 0; k < n; k++)
      p->sizes[k] = k < n - 1 ? chunk : dim - chunk * (n - 1);
  } else {
    if (dim % n != 0)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Split: axis of size %" G_GINT64_FORMAT " does not split into %d "
          "equal parts (give 'split')", dim, n);
    for (int k = 0; k < n; k++)
      p->sizes[k] = dim / n;
  }
  for (int k = 0; k < n; k++) {
    if (p->sizes[k] < 0)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Split: output %d would have negative size %" G_GINT64_FORMAT, k,
          p->sizes[k]);
    total += p->sizes[k];
  }
  if (total != dim)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Split: 'split' sums to %" G_GINT64_FORMAT ", the axis has %"
        G_GINT64_FORMAT, total, dim);
  return LENS_OK;
}

static LensStatus
split_reshape (LensNode * node, LensError *err)
{
  SplitPriv *p = node->priv;
  const LensTensor *x = lens_node_input (node, 0);
  int64_t shape[LENS_MAX_DIMS];
  const char *options;
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return missing_io (node, err);
  if (x->ndim < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Split: input is a scalar (rank 1 or more needed)");
  st = lens_elem_size_options (node, x->dtype, &options, err);
  if (st == LENS_OK)
    st = check_int_size (node, x, "input", err);
  if (st == LENS_OK)
    st = lens_normalize_axis (node, p->axis_attr, x->ndim, &p->axis, err);
  if (st == LENS_OK)
    st = split_sizes (node, p, x->shape[p->axis], err);
  if (st != LENS_OK)
    return st;
  memcpy (shape, x->shape, sizeof (int64_t) * x->ndim);
  for (int k = 0; k < node->n_outputs; k++) {
    shape[p->axis] = p->sizes[k];
    node->outputs[k]->dtype = x->dtype;
    lens_tensor_set_shape (node->outputs[k], x->ndim, shape);
  }
  return LENS_OK;
}

static LensStatus
split_run (LensContext * ctx, LensNode * node, LensError *err)
{
  SplitPriv *p = node->priv;
  const LensTensor *x = node->inputs[0];
  int64_t outer = product (x->shape, 0, p->axis);
  int64_t inner = product (x->shape, p->axis + 1, x->ndim);
  int64_t start = 0;
  const char *options;
  LensStatus st = lens_elem_size_options (node, x->dtype, &options, err);

  if (st == LENS_OK && lens_tensor_numel (x) > 0)
    st = lens_node_require_dense (node, x, "input", err);
  /* each output reads its own slice [start, start + size) of the axis */
  for (int k = 0; k < node->n_outputs && st == LENS_OK; k++) {
    LensTensor *y = node->outputs[k];
    int64_t cols = p->sizes[k] * inner;

    st = lens_node_require_dense (node, y, "output", err);
    if (st == LENS_OK)
      st = copy_block (ctx, node, options, x, x->shape[p->axis] * inner,
          start * inner, y, cols, 0, outer, cols, err);
    start += p->sizes[k];
  }
  return st;
}

/* Output @i is one run of x when nothing before the axis has size > 1. */
static gboolean
split_output_in_input (const LensNode * node, int i, size_t *elem_offset)
{
  const SplitPriv *p = node->priv;
  const LensTensor *x = node->inputs[0];
  int64_t start = 0;

  if (p == NULL || p->sizes == NULL || i >= node->n_outputs
      || product (x->shape, 0, p->axis) != 1)
    return FALSE;
  for (int k = 0; k < i; k++)
    start += p->sizes[k];
  *elem_offset = (size_t) (start * product (x->shape, p->axis + 1, x->ndim));
  return TRUE;
}

static LensStatus
split_reference (LensNode * node, LensError *err)
{
  SplitPriv *p = node->priv;

  return lens_ref_split (node, p->axis, p->sizes, err);
}

static LensNode *
split_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS], sizes[4], dim;
  LensTensor *x;
  LensNode *node;
  int ndim, axis, n, variant = index % 4, opset;

  if (index >= 16)
    return NULL;
  ndim = 1 + index % 3;
  axis = g_rand_int_range (rand, -ndim, ndim);
  n = g_rand_int_range (rand, 1, 5);
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  /* 0: equal parts; 1: 'split' input (may hold zeros); 2: 'split'
   * attribute (opset 11); 3: num_outputs with a smaller last chunk */
  if (variant == 0) {
    dim = n * lens_awkward_size (rand, FALSE);
  } else if (variant == 3) {
    int64_t chunk = lens_awkward_size (rand, FALSE) + 1;
    dim = chunk * (n - 1) + g_rand_int_range (rand, 1, chunk + 1);
  } else {
    dim = 0;
    for (int k = 0; k < n; k++) {
      sizes[k] = g_rand_int_range (rand, 0, 3) == 0 ? 0 :
          lens_awkward_size (rand, FALSE);
      dim += sizes[k];
    }
  }
  shape[(axis + ndim) % ndim] = dim;
  x = random_data (rand, index / 4 + index, ndim, shape);
  opset = variant == 2 ? 11 : variant == 3 ? 18 : 13;
  node = lens_case_node_new ("Split", opset, 1, &x, n);
  lens_node_set_attr_int (node, "axis", axis);
  if (variant == 1)
    case_add_input (node, int_tensor (LENS_DTYPE_INT64, n, sizes));
  else if (variant == 2)
    lens_node_set_attr_ints (node, "split", n, sizes);
  else if (variant == 3)
    lens_node_set_attr_int (node, "num_outputs", n);
  return node;
}

const LensOp lens_op_split = {
  .op_type = "Split",
  .init = split_init,
  .reshape = split_reshape,
  .run = split_run,
  .reference = split_reference,
  .exit = split_exit,
  .make_case = split_case,
  .output_in_input = split_output_in_input,
};

/* ---- Slice ------------------------------------------------------------------ */

typedef struct
{
  /* opset < 10 attributes (-1 when absent) */
  int n_starts, n_ends, n_axes;
  int64_t *starts_attr, *ends_attr, *axes_attr;
  /* per input dimension, set by reshape */
  int64_t starts[LENS_MAX_DIMS], steps[LENS_MAX_DIMS];
} SlicePriv;

static int64_t *
copy_ints_attr (LensNode * node, const char *name, int *n)
{
  const int64_t *v;

  *n = lens_node_attr_ints (node, name, &v);
  return *n >= 0 ? g_memdup2 (v, sizeof (int64_t) * MAX (*n, 1)) : NULL;
}

static LensStatus
slice_init (LensNode * node, LensError *err)
{
  SlicePriv *p = g_new0 (SlicePriv, 1);

  node->priv = p;
  p->starts_attr = copy_ints_attr (node, "starts", &p->n_starts);
  p->ends_attr = copy_ints_attr (node, "ends", &p->n_ends);
  p->axes_attr = copy_ints_attr (node, "axes", &p->n_axes);
  if (node->opset < 10 && (p->n_starts < 0 || p->n_ends < 0))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Slice: attributes 'starts' and 'ends' are required (opset %d)",
        node->opset);
  return LENS_OK;
}

static void
slice_exit (LensNode * node)
{
  SlicePriv *p = node->priv;

  if (p == NULL)
    return;
  g_free (p->starts_attr);
  g_free (p->ends_attr);
  g_free (p->axes_attr);
  g_clear_pointer (&node->priv, g_free);
}

/* starts/ends/axes/steps from the inputs (opset >= 10) or the attributes;
 * absent axes and steps come back NULL. */
static LensStatus
slice_params (LensNode * node, SlicePriv * p, int64_t ** starts,
    int64_t ** ends, int64_t ** axes, int64_t ** steps, int64_t *n,
    LensError *err)
{
  int64_t n_ends, n_axes = -1, n_steps = -1;
  LensStatus st;

  *starts = *ends = *axes = *steps = NULL;
  *n = 0;
  if (node->opset < 10) {
    *starts = g_memdup2 (p->starts_attr, sizeof (int64_t) *
        MAX (p->n_starts, 1));
    *ends = g_memdup2 (p->ends_attr, sizeof (int64_t) * MAX (p->n_ends, 1));
    if (p->axes_attr != NULL)
      *axes = g_memdup2 (p->axes_attr, sizeof (int64_t) *
          MAX (p->n_axes, 1));
    *n = p->n_starts;
    n_ends = p->n_ends;
    n_axes = p->n_axes;
  } else {
    st = lens_node_input_ints (node, 1, starts, n, err);
    if (st == LENS_OK)
      st = lens_node_input_ints (node, 2, ends, &n_ends, err);
    if (st == LENS_OK && lens_node_input (node, 3) != NULL)
      st = lens_node_input_ints (node, 3, axes, &n_axes, err);
    if (st == LENS_OK && lens_node_input (node, 4) != NULL)
      st = lens_node_input_ints (node, 4, steps, &n_steps, err);
    if (st != LENS_OK)
      return st;
  }
  if (n_ends != *n || (*axes != NULL && n_axes != *n)
      || (*steps != NULL && n_steps != *n))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Slice: 'starts' has %" G_GINT64_FORMAT " entries, 'ends' %"
        G_GINT64_FORMAT ", 'axes' %" G_GINT64_FORMAT ", 'steps' %"
        G_GINT64_FORMAT " (all must match)", *n, n_ends, n_axes, n_steps);
  return LENS_OK;
}

static LensStatus
slice_reshape (LensNode * node, LensError *err)
{
  SlicePriv *p = node->priv;
  const LensTensor *x = lens_node_input (node, 0);
  int64_t *starts, *ends, *axes, *steps, n, shape[LENS_MAX_DIMS];
  gboolean seen[LENS_MAX_DIMS] = { FALSE };
  const char *options;
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return missing_io (node, err);
  st = lens_elem_size_options (node, x->dtype, &options, err);
  if (st == LENS_OK)
    st = check_int_size (node, x, "input", err);
  if (st != LENS_OK)
    return st;
  st = slice_params (node, p, &starts, &ends, &axes, &steps, &n, err);
  for (int d = 0; d < x->ndim; d++) {
    p->starts[d] = 0;
    p->steps[d] = 1;
    shape[d] = x->shape[d];
  }
  for (int64_t i = 0; i < n && st == LENS_OK; i++) {
    int64_t step = steps ? steps[i] : 1, start = starts[i], end = ends[i];
    int64_t dim, count = 0;
    int axis;

    st = lens_normalize_axis (node, axes ? axes[i] : i, x->ndim, &axis, err);
    if (st != LENS_OK)
      break;
    if (seen[axis]) {
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "Slice: axis %d appears twice in 'axes'", axis);
      break;
    }
    seen[axis] = TRUE;
    if (step == 0) {
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "Slice: 'steps' has 0 for axis %d", axis);
      break;
    }
    /* ONNX: negative positions count from the end, then clamp to
     * [0, dim] going forward or [-1, dim - 1] going backward */
    dim = x->shape[axis];
    if (start < 0)
      start += dim;
    if (end < 0)
      end += dim;
    if (step > 0) {
      start = CLAMP (start, 0, dim);
      end = CLAMP (end, 0, dim);
      if (end > start)
        count = (end - start + step - 1) / step;
    } else {
      start = CLAMP (start, 0, dim - 1);
      end = CLAMP (end, -1, dim - 1);
      if (start > end)
        count = (start - end - step - 1) / -step;
    }
    p->starts[axis] = count > 0 ? start : 0;
    p->steps[axis] = step;
    shape[axis] = count;
  }
  g_free (starts);
  g_free (ends);
  g_free (axes);
  g_free (steps);
  if (st != LENS_OK)
    return st;
  node->outputs[0]->dtype = x->dtype;
  lens_tensor_set_shape (node->outputs[0], x->ndim, shape);
  return LENS_OK;
}

static LensStatus
slice_run (LensContext * ctx, LensNode * node, LensError *err)
{
  SlicePriv *p = node->priv;
  const LensTensor *x = node->inputs[0];
  LensTensor *y = node->outputs[0];
  int64_t strides[LENS_MAX_DIMS], base = 0;
  const char *options;
  LensStatus st = lens_elem_size_options (node, x->dtype, &options, err);

  if (lens_tensor_numel (y) == 0)
    return st;
  if (st == LENS_OK)
    st = lens_node_require_dense (node, x, "input", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st != LENS_OK)
    return st;
  for (int d = 0; d < x->ndim; d++) {
    base += p->starts[d] * x->strides[d];
    strides[d] = p->steps[d] * x->strides[d];
  }
  return copy_strided (ctx, node, options, x, base, y->ndim, y->shape,
      strides, FALSE, y, err);
}

/* y is one run of x when, below the last axis d0 that is not taken whole
 * (in order, step 1), every axis is taken whole, d0 is taken in order and
 * every axis above it keeps one index. */
static gboolean
slice_output_in_input (const LensNode * node, int i, size_t *elem_offset)
{
  const SlicePriv *p = node->priv;
  const LensTensor *x = node->inputs[0], *y = node->outputs[0];
  int64_t offset = 0;
  int d0 = x->ndim - 1;

  if (p == NULL || i != 0 || lens_tensor_numel (y) == 0)
    return FALSE;
  while (d0 >= 0 && y->shape[d0] == x->shape[d0]
      && (p->steps[d0] == 1 || x->shape[d0] == 1))
    d0--;
  if (d0 >= 0 && p->steps[d0] != 1 && y->shape[d0] != 1)
    return FALSE;
  for (int d = 0; d < d0; d++)
    if (y->shape[d] != 1)
      return FALSE;
  for (int d = 0; d < x->ndim; d++)
    offset += p->starts[d] * x->strides[d];
  *elem_offset = (size_t) offset;
  return TRUE;
}

static LensStatus
slice_reference (LensNode * node, LensError *err)
{
  SlicePriv *p = node->priv;

  return lens_ref_slice (node, p->starts, p->steps, err);
}

static LensNode *
slice_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS], starts[LENS_MAX_DIMS], ends[LENS_MAX_DIMS],
      axes[LENS_MAX_DIMS], steps[LENS_MAX_DIMS];
  gboolean used[LENS_MAX_DIMS] = { FALSE };
  LensDType index_type = index % 3 == 2 ? LENS_DTYPE_INT32 : LENS_DTYPE_INT64;
  gboolean attr_form = index % 7 == 6;
  /* inputs left out now and then: axes (then 0..n-1) and steps (then 1) */
  gboolean default_axes = index % 5 == 3, default_steps = index % 5 == 0;
  LensTensor *x;
  LensNode *node;
  int ndim, n;

  if (index >= 25)
    return NULL;
  if (index >= 20) {
    /* space-to-depth (YOLOX's stem), each element size: step 2 on the
     * rows and on the columns, from 0 or 1, rows of 97 (48 or 49 columns:
     * whole vectors, a tail, and the tensor's very end) */
    int64_t focus[4] = { 1 + index % 2, 3, 13, 97 };
    int64_t from[2] = { index % 2, (index / 2) % 2 };
    int64_t to[2] = { G_MAXINT64, G_MAXINT64 }, on[2] = { 3, -2 };
    int64_t by[2] = { 2, 2 };

    x = random_data (rand, index, 4, focus);
    node = lens_case_node_new ("Slice", 13, 1, &x, 1);
    case_add_input (node, int_tensor (LENS_DTYPE_INT64, 2, from));
    case_add_input (node, int_tensor (LENS_DTYPE_INT64, 2, to));
    case_add_input (node, int_tensor (LENS_DTYPE_INT64, 2, on));
    case_add_input (node, int_tensor (LENS_DTYPE_INT64, 2, by));
    return node;
  }
  ndim = 1 + index % 4;
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d >= ndim - 2);
  x = random_data (rand, index, ndim, shape);
  n = g_rand_int_range (rand, 1, ndim + 1);
  for (int i = 0; i < n; i++) {
    int axis = i;
    int64_t dim;

    if (!default_axes) {
      do
        axis = g_rand_int_range (rand, 0, ndim);
      while (used[axis]);
      used[axis] = TRUE;
    }
    dim = shape[axis];
    axes[i] = default_axes || g_rand_boolean (rand) ? axis : axis - ndim;
    steps[i] = attr_form || default_steps ? 1 :
        g_rand_int_range (rand, 1, 4) * (g_rand_boolean (rand) ? 1 : -1);
    /* out of range on both sides, to exercise the clamping */
    starts[i] = g_rand_int_range (rand, -(gint32) dim - 2, (gint32) dim + 2);
    ends[i] = g_rand_int_range (rand, -(gint32) dim - 2, (gint32) dim + 2);
    /* the "to the end" idioms */
    if (g_rand_int_range (rand, 0, 4) == 0)
      ends[i] = steps[i] > 0 ? G_MAXINT64 : G_MININT64;
    if (index_type == LENS_DTYPE_INT32 || attr_form)
      ends[i] = CLAMP (ends[i], G_MININT32, G_MAXINT32);
  }
  if (attr_form) {
    node = lens_case_node_new ("Slice", 1, 1, &x, 1);
    lens_node_set_attr_ints (node, "starts", n, starts);
    lens_node_set_attr_ints (node, "ends", n, ends);
    if (!default_axes)
      lens_node_set_attr_ints (node, "axes", n, axes);
    return node;
  }
  node = lens_case_node_new ("Slice", 13, 1, &x, 1);
  case_add_input (node, int_tensor (index_type, n, starts));
  case_add_input (node, int_tensor (index_type, n, ends));
  case_add_input (node, default_axes ? NULL :
      int_tensor (index_type, n, axes));
  if (!default_steps)
    case_add_input (node, int_tensor (index_type, n, steps));
  return node;
}

const LensOp lens_op_slice = {
  .op_type = "Slice",
  .init = slice_init,
  .reshape = slice_reshape,
  .run = slice_run,
  .reference = slice_reference,
  .exit = slice_exit,
  .make_case = slice_case,
  .output_in_input = slice_output_in_input,
};

/* ---- Pad -------------------------------------------------------------------- */

/* Elements each work-item of Pad writes on a CPU device: part of a
 * longer row, or whole rows (work groups cost tens of nanoseconds
 * there). */
#define PAD_CPU_SPAN 1024

/* indexed by LensPadMode */
static const char *const pad_mode_names[] = {
  "constant", "edge", "reflect", "wrap"
};

typedef struct
{
  LensPadMode mode;
  /* opset < 11 attributes */
  int n_pads_attr;
  int64_t *pads_attr;
  double value_attr;
  /* set by reshape, per input dimension */
  int64_t pads_begin[LENS_MAX_DIMS], pads_end[LENS_MAX_DIMS];
  uint64_t value_bits;          /* the attribute value in the data type */
} PadPriv;

static LensStatus
pad_init (LensNode * node, LensError *err)
{
  PadPriv *p = g_new0 (PadPriv, 1);
  const char *mode = lens_node_attr_string (node, "mode", "constant");
  guint m;

  node->priv = p;
  for (m = 0; m < G_N_ELEMENTS (pad_mode_names); m++)
    if (strcmp (mode, pad_mode_names[m]) == 0)
      break;
  if (m == G_N_ELEMENTS (pad_mode_names))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Pad: attribute 'mode' = '%s' is not supported", mode);
  p->mode = (LensPadMode) m;
  if (node->opset < 11) {
    /* opset 1 called the attribute 'paddings' */
    p->pads_attr = copy_ints_attr (node, node->opset < 2 ? "paddings" :
        "pads", &p->n_pads_attr);
    if (p->pads_attr == NULL)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Pad: attribute '%s' is required (opset %d)", node->opset < 2 ?
          "paddings" : "pads", node->opset);
    p->value_attr = lens_node_attr_float (node, "value", 0.0f);
  }
  return LENS_OK;
}

static void
pad_exit (LensNode * node)
{
  PadPriv *p = node->priv;

  if (p == NULL)
    return;
  g_free (p->pads_attr);
  g_clear_pointer (&node->priv, g_free);
}

/* Fills pads_begin / pads_end for every input dimension from 'pads' (and
 * the opset 18 'axes' input, which names the dimensions 'pads' covers). */
static LensStatus
pad_read_pads (LensNode * node, PadPriv * p, int rank, LensError *err)
{
  int64_t *pads, n_pads, *axes = NULL, n_axes = rank;
  int dims[LENS_MAX_DIMS];
  LensStatus st = LENS_OK;

  if (node->opset < 11) {
    pads = g_memdup2 (p->pads_attr, sizeof (int64_t) *
        MAX (p->n_pads_attr, 1));
    n_pads = p->n_pads_attr;
  } else {
    st = lens_node_input_ints (node, 1, &pads, &n_pads, err);
    if (st != LENS_OK)
      return st;
  }
  if (lens_node_input (node, 3) != NULL)
    st = lens_node_input_ints (node, 3, &axes, &n_axes, err);
  if (st == LENS_OK && n_axes > rank)
    st = lens_error_set (err, LENS_ERROR_INVALID,
        "Pad: input 'axes' has %" G_GINT64_FORMAT " entries for rank %d",
        n_axes, rank);
  if (st == LENS_OK && n_pads != 2 * n_axes)
    st = lens_error_set (err, LENS_ERROR_INVALID,
        "Pad: 'pads' has %" G_GINT64_FORMAT " entries, expected %"
        G_GINT64_FORMAT, n_pads, 2 * n_axes);
  for (int d = 0; d < rank; d++)
    p->pads_begin[d] = p->pads_end[d] = 0;
  for (int64_t i = 0; i < n_axes && st == LENS_OK; i++) {
    if (axes != NULL)
      st = lens_normalize_axis (node, axes[i], rank, &dims[i], err);
    else
      dims[i] = (int) i;
    if (st == LENS_OK) {
      p->pads_begin[dims[i]] = pads[i];
      p->pads_end[dims[i]] = pads[i + n_axes];
    }
  }
  g_free (pads);
  g_free (axes);
  return st;
}

static LensStatus
pad_reshape (LensNode * node, LensError *err)
{
  PadPriv *p = node->priv;
  const LensTensor *x = lens_node_input (node, 0);
  const LensTensor *value = lens_node_input (node, 2);
  int64_t shape[LENS_MAX_DIMS];
  const char *options;
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return missing_io (node, err);
  st = lens_elem_size_options (node, x->dtype, &options, err);
  if (st == LENS_OK)
    st = check_int_size (node, x, "input", err);
  if (st == LENS_OK)
    st = pad_read_pads (node, p, x->ndim, err);
  if (st != LENS_OK)
    return st;
  if (value != NULL && (value->dtype != x->dtype
          || lens_tensor_numel (value) != 1))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Pad: input 'constant_value' must be one %s element",
        lens_dtype_name (x->dtype));
  for (int d = 0; d < x->ndim; d++) {
    /* negative pads crop first; the border modes then pad what is kept */
    int64_t kept;
    /* pads come from the file: sums that overflow are refused */
    if (__builtin_add_overflow (x->shape[d], MIN (p->pads_begin[d], 0),
            &kept) || __builtin_add_overflow (kept, MIN (p->pads_end[d], 0),
            &kept) || __builtin_add_overflow (x->shape[d],
            p->pads_begin[d], &shape[d]) || __builtin_add_overflow (shape[d],
            p->pads_end[d], &shape[d]))
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Pad: 'pads' of dimension %d overflow 64 bits", d);
    if (kept < 0)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Pad: 'pads' crop dimension %d (size %" G_GINT64_FORMAT ") by "
          "more than its size", d, x->shape[d]);
    if (p->mode != LENS_PAD_MODE_CONSTANT && kept == 0 && shape[d] > 0)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Pad: mode '%s' cannot pad dimension %d: no input element is "
          "left to repeat", pad_mode_names[p->mode], d);
  }
  /* the attribute value (opset < 11) converted to the data type's bits */
  {
    LensTensor *v = lens_tensor_new_host (x->dtype, 0, NULL, NULL);
    lens_tensor_set_f64 (v, 0, p->value_attr);
    p->value_bits = 0;
    memcpy (&p->value_bits, v->host, lens_dtype_size (x->dtype));
    lens_tensor_free (v);
  }
  node->outputs[0]->dtype = x->dtype;
  lens_tensor_set_shape (node->outputs[0], x->ndim, shape);
  return check_int_size (node, node->outputs[0], "output", err);
}

static LensStatus
pad_run (LensContext * ctx, LensNode * node, LensError *err)
{
  PadPriv *p = node->priv;
  const LensTensor *x = node->inputs[0];
  const LensTensor *value = lens_node_input (node, 2);
  LensTensor *y = node->outputs[0];
  int64_t out_shape[LENS_MAX_DIMS], in_shape[LENS_MAX_DIMS],
      in_strides[LENS_MAX_DIMS], begin[LENS_MAX_DIMS];
  int64_t base = 0;
  int rank = 0;
  cl_int n = (cl_int) lens_tensor_numel (y), crank, mode = p->mode, cbase;
  cl_int from_buffer = value != NULL;
  gboolean gpu = lens_context_is_gpu (ctx);
  cl_int span = gpu ? 1 : PAD_CPU_SPAN;
  int64_t width, rows_per_item;
  size_t global;
  cl_int8 c_out, c_in, c_strides, c_begin;
  cl_mem value_src;
  const char *options;
  cl_kernel k;
  LensStatus st = lens_elem_size_options (node, x->dtype, &options, err);

  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, x, "input", err);
  if (st == LENS_OK && value != NULL)
    st = lens_node_require_dense (node, value, "input 'constant_value'", err);
  if (st != LENS_OK || n == 0)
    return st;
  /* the kernel sees the cropped input (negative pads) and the positive
   * pads; an unpadded dimension merges into a preceding one that adds no
   * element either */
  for (int d = 0; d < x->ndim; d++) {
    int64_t crop_begin = MAX (-p->pads_begin[d], 0);
    int64_t kept = x->shape[d] - crop_begin - MAX (-p->pads_end[d], 0);
    gboolean unpadded = p->pads_begin[d] == 0 && p->pads_end[d] == 0;

    base += crop_begin * x->strides[d];
    if (rank > 0 && unpadded && begin[rank - 1] == 0
        && out_shape[rank - 1] == in_shape[rank - 1]) {
      out_shape[rank - 1] *= x->shape[d];
      in_shape[rank - 1] *= x->shape[d];
      in_strides[rank - 1] = x->strides[d];
      continue;
    }
    out_shape[rank] = y->shape[d];
    in_shape[rank] = kept;
    in_strides[rank] = x->strides[d];
    begin[rank] = MAX (p->pads_begin[d], 0);
    rank++;
  }
  if (rank == 0) {
    /* a scalar: one row of one */
    rank = 1;
    out_shape[0] = in_shape[0] = 1;
    in_strides[0] = begin[0] = 0;
  }
  cbase = (cl_int) base;
  crank = rank;
  c_out = to_cl_int8 (rank, out_shape);
  c_in = to_cl_int8 (rank, in_shape);
  c_strides = to_cl_int8 (rank, in_strides);
  c_begin = to_cl_int8 (rank, begin);
  /* the kernel reads the constant_value input on the device; without one
   * it gets a valid but unused buffer */
  value_src = value != NULL ? value->buffer : x->buffer;
  st = lens_node_kernel (ctx, node, lens_elem_size_slot (x->dtype), "layout", options,
      "lens_pad", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 12, LENS_ARG (x->buffer),
        LENS_ARG (cbase), LENS_ARG (y->buffer), LENS_ARG (n), LENS_ARG (crank),
        LENS_ARG (c_out), LENS_ARG (c_in), LENS_ARG (c_strides),
        LENS_ARG (c_begin), LENS_ARG (mode), LENS_ARG (value_src),
        LENS_ARG (from_buffer));
  if (st == LENS_OK)
    st = lens_kernel_set_arg (k, 12, lens_dtype_size (x->dtype),
        &p->value_bits, err);
  if (st == LENS_OK)
    st = lens_kernel_set_arg (k, 13, sizeof (cl_int), &span, err);
  if (st != LENS_OK)
    return st;
  width = out_shape[rank - 1];
  rows_per_item = MAX (1, span / width);
  global = (size_t) ((n / width + rows_per_item - 1) / rows_per_item *
      ((width + span - 1) / span));
  return lens_context_enqueue_items (ctx, k, (int64_t) global, err);
}

static LensStatus
pad_reference (LensNode * node, LensError *err)
{
  PadPriv *p = node->priv;
  const LensTensor *value = lens_node_input (node, 2);

  return lens_ref_pad (node, p->pads_begin, p->pads_end, p->mode,
      value != NULL ? value->host : (const void *) &p->value_bits, err);
}

static LensNode *
pad_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS] = { 0 }, pads[2 * LENS_MAX_DIMS],
      axes[LENS_MAX_DIMS];
  LensPadMode mode = (LensPadMode) (index % 4);
  LensTensor *x;
  LensNode *node;
  int ndim, n_axes, opset;
  /* 0: pads input and constant_value; 1: no constant_value; 2: opset 18
   * 'axes'; 3: opset 2 attributes */
  int form = (index / 4) % 4;

  if (index >= 23)
    return NULL;
  ndim = 1 + index % 4;
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  /* rows longer than a CPU work-item's run */
  if (index >= 20)
    shape[ndim - 1] = 1500 + index;
  x = random_data (rand, index, ndim, shape);
  n_axes = form == 2 ? g_rand_int_range (rand, 1, ndim + 1) : ndim;
  for (int i = 0; i < n_axes; i++)
    axes[i] = form == 2 ? (ndim - 1 - i) - (g_rand_boolean (rand) ? ndim : 0)
        : i;
  for (int i = 0; i < n_axes; i++) {
    int64_t dim = shape[axes[i] < 0 ? axes[i] + ndim : axes[i]];
    for (int side = 0; side < 2; side++) {
      int64_t *pad = &pads[i + side * n_axes];
      *pad = g_rand_int_range (rand, 0, 4);
      /* reflect and wrap beyond the input's size, cropping (negative
       * pads) now and then */
      if (g_rand_int_range (rand, 0, 5) == 0)
        *pad = dim + g_rand_int_range (rand, 0, 3);
      /* at most (dim - 1) / 2 a side, so an element is always left */
      if (g_rand_int_range (rand, 0, 5) == 0)
        *pad = -g_rand_int_range (rand, 0, (gint32) (dim - 1) / 2 + 1);
    }
  }
  opset = form == 3 ? 2 : form == 2 ? 18 : 19;
  if (form == 3 && lens_dtype_is_float (x->dtype) == FALSE)
    opset = 19;                 /* opset 2 Pad only takes float types */
  node = lens_case_node_new ("Pad", opset, 1, &x, 1);
  lens_node_set_attr_string (node, "mode", pad_mode_names[mode]);
  if (opset == 2) {
    lens_node_set_attr_ints (node, "pads", 2 * ndim, pads);
    lens_node_set_attr_float (node, "value", (float)
        g_rand_double_range (rand, -3, 3));
    return node;
  }
  case_add_input (node, int_tensor (LENS_DTYPE_INT64, 2 * n_axes, pads));
  if (form == 0 || form == 2) {
    LensTensor *v = random_data (rand, index, 0, NULL);
    lens_tensor_set_f64 (v, 0, 42);
    case_add_input (node, v);
  } else {
    case_add_input (node, NULL);
  }
  if (form == 2)
    case_add_input (node, int_tensor (LENS_DTYPE_INT64, n_axes, axes));
  return node;
}

const LensOp lens_op_pad = {
  .op_type = "Pad",
  .init = pad_init,
  .reshape = pad_reshape,
  .run = pad_run,
  .reference = pad_reference,
  .exit = pad_exit,
  .make_case = pad_case,
};

/* ---- Transpose -------------------------------------------------------------- */

typedef struct
{
  int n_perm_attr;              /* -1: reverse the dimensions */
  int64_t *perm_attr;
  int perm[LENS_MAX_DIMS];      /* set by reshape */
} TransposePriv;

static LensStatus
transpose_init (LensNode * node, LensError *err)
{
  TransposePriv *p = g_new0 (TransposePriv, 1);

  node->priv = p;
  p->perm_attr = copy_ints_attr (node, "perm", &p->n_perm_attr);
  return LENS_OK;
}

static void
transpose_exit (LensNode * node)
{
  TransposePriv *p = node->priv;

  if (p == NULL)
    return;
  g_free (p->perm_attr);
  g_clear_pointer (&node->priv, g_free);
}

static LensStatus
transpose_reshape (LensNode * node, LensError *err)
{
  TransposePriv *p = node->priv;
  const LensTensor *x = lens_node_input (node, 0);
  gboolean seen[LENS_MAX_DIMS] = { FALSE };
  int64_t shape[LENS_MAX_DIMS];
  const char *options;
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return missing_io (node, err);
  st = lens_elem_size_options (node, x->dtype, &options, err);
  if (st == LENS_OK)
    st = check_int_size (node, x, "input", err);
  if (st != LENS_OK)
    return st;
  if (p->n_perm_attr >= 0 && p->n_perm_attr != x->ndim)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Transpose: attribute 'perm' has %d entries for rank %d",
        p->n_perm_attr, x->ndim);
  for (int d = 0; d < x->ndim; d++) {
    int64_t src = p->n_perm_attr >= 0 ? p->perm_attr[d] : x->ndim - 1 - d;
    if (src < 0 || src >= x->ndim || seen[src])
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Transpose: attribute 'perm' is not a permutation of 0..%d",
          x->ndim - 1);
    seen[src] = TRUE;
    p->perm[d] = (int) src;
    shape[d] = x->shape[src];
  }
  node->outputs[0]->dtype = x->dtype;
  lens_tensor_set_shape (node->outputs[0], x->ndim, shape);
  return LENS_OK;
}

/* A permutation that only moves dimensions of size 1 keeps every element
 * where it was (YuNet's NCHW -> NHWC of its one-channel heads): the output
 * is the input itself, a view the memory plan makes for nothing. */
static gboolean
transpose_output_in_input (const LensNode * node, int i, size_t *elem_offset)
{
  const TransposePriv *p = node->priv;
  const LensTensor *x = node->inputs[0];
  int last = -1;

  if (p == NULL || x == NULL || i != 0)
    return FALSE;
  for (int d = 0; d < x->ndim; d++) {
    if (x->shape[p->perm[d]] == 1)
      continue;
    if (p->perm[d] < last)
      return FALSE;
    last = p->perm[d];
  }
  *elem_offset = 0;
  return TRUE;
}

/* Elements of an output row each work-item of the CPU row transpose
 * copies. */
#define TRANSPOSE_CPU_SPAN 512
/* Must match TRANSPOSE_BLOCK in kernels/layout.cl. */
#define TRANSPOSE_BLOCK 16

/* Transpose on a CPU device, y = x permuted as @shape / @strides (output
 * order, collapsed, @rank >= 1). A dense source always leaves a dimension
 * of stride 1: when it is the innermost, rows are copied in runs;
 * otherwise it pairs with the innermost in square blocks. The kernels take
 * the slots of copy_strided's (which Transpose only runs on GPUs). */
static LensStatus
transpose_cpu (LensContext * ctx, LensNode * node, const char *options,
    const LensTensor * x, LensTensor * y, int rank, const int64_t *shape,
    const int64_t *strides, LensError *err)
{
  int64_t dst_strides[LENS_MAX_DIMS];
  cl_int8 outer_shape, outer_src, outer_dst;
  cl_int outer_rank = 0, q = -1, n = (cl_int) lens_tensor_numel (y);
  size_t global;
  cl_kernel k;
  LensStatus st;

  dst_strides[rank - 1] = 1;
  for (int d = rank - 2; d >= 0; d--)
    dst_strides[d] = dst_strides[d + 1] * shape[d + 1];
  for (int d = 0; d < rank - 1; d++)
    if (strides[d] == 1)
      q = d;
  memset (&outer_shape, 0, sizeof outer_shape);
  memset (&outer_src, 0, sizeof outer_src);
  memset (&outer_dst, 0, sizeof outer_dst);
  /* the outer dimensions, innermost first */
  for (int d = rank - 2; d >= 0; d--) {
    if (strides[rank - 1] != 1 && d == q)
      continue;
    outer_shape.s[outer_rank] = (cl_int) shape[d];
    outer_src.s[outer_rank] = (cl_int) strides[d];
    outer_dst.s[outer_rank] = (cl_int) dst_strides[d];
    outer_rank++;
  }
  if (strides[rank - 1] == 1) {
    cl_int width = (cl_int) shape[rank - 1], rows = n / width;
    cl_int span = TRANSPOSE_CPU_SPAN;
    st = lens_node_kernel (ctx, node, lens_elem_size_slot (y->dtype),
        "layout", options, "lens_transpose_rows", &k, err);
    if (st == LENS_OK)
      st = lens_kernel_set_args (k, err, 9, LENS_ARG (x->buffer),
          LENS_ARG (y->buffer), LENS_ARG (rows), LENS_ARG (width),
          LENS_ARG (span), LENS_ARG (outer_rank), LENS_ARG (outer_shape),
          LENS_ARG (outer_src), LENS_ARG (outer_dst));
    global = (size_t) rows * ((width + span - 1) / span);
  } else {
    cl_int q_size = (cl_int) shape[q], w_size = (cl_int) shape[rank - 1];
    cl_int q_dst_stride = (cl_int) dst_strides[q];
    cl_int w_src_stride = (cl_int) strides[rank - 1];
    cl_int outer_n = n / q_size / w_size;
    st = lens_node_kernel (ctx, node, 4 + lens_elem_size_slot (y->dtype),
        "layout", options, "lens_transpose_block", &k, err);
    if (st == LENS_OK)
      st = lens_kernel_set_args (k, err, 11, LENS_ARG (x->buffer),
          LENS_ARG (y->buffer), LENS_ARG (outer_n), LENS_ARG (q_size),
          LENS_ARG (q_dst_stride), LENS_ARG (w_size),
          LENS_ARG (w_src_stride), LENS_ARG (outer_rank),
          LENS_ARG (outer_shape), LENS_ARG (outer_src),
          LENS_ARG (outer_dst));
    global = (size_t) outer_n * ((q_size + TRANSPOSE_BLOCK - 1) /
        TRANSPOSE_BLOCK) * ((w_size + TRANSPOSE_BLOCK - 1) /
        TRANSPOSE_BLOCK);
  }
  if (st == LENS_OK)
    st = lens_context_enqueue_items (ctx, k, (int64_t) global, err);
  return st;
}

static LensStatus
transpose_run (LensContext * ctx, LensNode * node, LensError *err)
{
  TransposePriv *p = node->priv;
  const LensTensor *x = node->inputs[0];
  LensTensor *y = node->outputs[0];
  int64_t strides[LENS_MAX_DIMS];
  const char *options;
  LensStatus st = lens_elem_size_options (node, x->dtype, &options, err);

  if (lens_tensor_numel (y) == 0)
    return st;
  if (st == LENS_OK)
    st = lens_node_require_dense (node, x, "input", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st != LENS_OK)
    return st;
  for (int d = 0; d < y->ndim; d++)
    strides[d] = x->strides[p->perm[d]];
  if (!lens_context_is_gpu (ctx)) {
    int64_t shape[LENS_MAX_DIMS], collapsed[LENS_MAX_DIMS];
    int rank;

    memcpy (shape, y->shape, sizeof (int64_t) * y->ndim);
    memcpy (collapsed, strides, sizeof (int64_t) * y->ndim);
    rank = collapse_dims (y->ndim, shape, collapsed);
    if (rank == 0) {
      /* a single element: one row of one */
      rank = 1;
      shape[0] = collapsed[0] = 1;
    }
    return transpose_cpu (ctx, node, options, x, y, rank, shape, collapsed,
        err);
  }
  return copy_strided (ctx, node, options, x, 0, y->ndim, y->shape, strides,
      TRUE, y, err);
}

static LensStatus
transpose_reference (LensNode * node, LensError *err)
{
  TransposePriv *p = node->priv;

  return lens_ref_transpose (node, p->perm, err);
}

static LensNode *
transpose_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS] = { 0 }, perm[LENS_MAX_DIMS];
  LensTensor *x;
  LensNode *node;
  int ndim;

  if (index >= 18)
    return NULL;
  if (index >= 16) {
    /* a channel shuffle's rows longer than a CPU work-item's run, and a
     * block transpose whose source-contiguous dimension is neither the
     * innermost nor next to it */
    static const int64_t shapes[2][4] = { {2, 7, 1300}, {3, 17, 5, 19} };
    static const int64_t perms[2][4] = { {1, 0, 2}, {2, 0, 3, 1} };
    ndim = index == 16 ? 3 : 4;
    x = random_data (rand, index, ndim, shapes[index - 16]);
    node = lens_case_node_new ("Transpose", 13, 1, &x, 1);
    lens_node_set_attr_ints (node, "perm", ndim, perms[index - 16]);
    return node;
  }
  ndim = 1 + index % 6;
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, ndim <= 3 && d >= ndim - 2);
  /* a swap of the last two dimensions (the tiled path on GPUs, blocks on
   * CPUs) every few cases */
  if (index % 4 == 1 && ndim >= 2) {
    shape[ndim - 1] = 97;
    shape[ndim - 2] = g_rand_boolean (rand) ? 97 : 13;
  }
  x = random_data (rand, index, ndim, shape);
  for (int d = 0; d < ndim; d++)
    perm[d] = d;
  if (index % 4 == 1 && ndim >= 2) {
    perm[ndim - 1] = ndim - 2;
    perm[ndim - 2] = ndim - 1;
  } else {
    for (int d = ndim - 1; d > 0; d--) {
      int j = g_rand_int_range (rand, 0, d + 1);
      int64_t t = perm[d];
      perm[d] = perm[j];
      perm[j] = t;
    }
  }
  node = lens_case_node_new ("Transpose", 13, 1, &x, 1);
  if (index % 4 != 3)
    lens_node_set_attr_ints (node, "perm", ndim, perm);
  return node;
}

const LensOp lens_op_transpose = {
  .op_type = "Transpose",
  .init = transpose_init,
  .reshape = transpose_reshape,
  .run = transpose_run,
  .reference = transpose_reference,
  .exit = transpose_exit,
  .make_case = transpose_case,
  .output_in_input = transpose_output_in_input,
};
