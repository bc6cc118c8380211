/* gather.c: Gather and GatherElements (ONNX indexing).
 *
 * Like the layout kernels, kernels/gather.cl only carries bits: one program
 * per element size serves every data type, with int32 and int64 index
 * kernels in each. Indices known on the host (constants) are checked at
 * reshape; on the device an index out of range yields 0 rather than a read
 * outside the data. The references are in ref/gather.c. */
#include "lens-private.h"
#include "ref/gather.h"

#include <string.h>

typedef struct
{
  int64_t axis_attr;
  int axis;                     /* normalized, set by reshape */
} GatherPriv;

/* Elements of an output row each work-item of Gather copies on a CPU
 * device: enough to pay the index arithmetic once per kilobytes. */
#define GATHER_CPU_SPAN 512

/* ---- shared ----------------------------------------------------------------- */

static LensStatus
gather_init (LensNode * node, LensError *err)
{
  GatherPriv *p = g_new0 (GatherPriv, 1);

  p->axis_attr = lens_node_attr_int (node, "axis", 0);
  node->priv = p;
  return LENS_OK;
}

static void
gather_exit (LensNode * node)
{
  g_clear_pointer (&node->priv, g_free);
}

/* Checks data and indices and normalizes the axis against the data. */
static LensStatus
check_inputs (LensNode * node, GatherPriv * p, LensError *err)
{
  static const LensDType index_types[] = {
    LENS_DTYPE_INT32, LENS_DTYPE_INT64, LENS_DTYPE_UNDEFINED
  };
  const LensTensor *data = lens_node_input (node, 0);
  const LensTensor *indices = lens_node_input (node, 1);
  const char *options;
  LensStatus st;

  if (data == NULL || indices == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: inputs 'data' and 'indices' and one output are required",
        node->op_type);
  st = lens_elem_size_options (node, data->dtype, &options, err);
  if (st == LENS_OK)
    st = lens_node_check_dtype (node, "input 'indices'", indices->dtype,
        index_types, err);
  if (st == LENS_OK && data->ndim < 1)
    st = lens_error_set (err, LENS_ERROR_INVALID,
        "%s: input 'data' is a scalar (rank 1 or more needed)",
        node->op_type);
  if (st == LENS_OK)
    st = lens_normalize_axis (node, p->axis_attr, data->ndim, &p->axis, err);
  /* the kernels index with int */
  if (st == LENS_OK && (lens_tensor_numel (data) > G_MAXINT32
          || lens_tensor_numel (indices) > G_MAXINT32))
    st = lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: more than %d elements in 'data' or 'indices'", node->op_type,
        G_MAXINT32);
  /* constant indices can be checked now; others only on the device */
  if (st == LENS_OK && indices->host != NULL && indices->is_constant) {
    int64_t size = data->shape[p->axis], n = lens_tensor_numel (indices);
    for (int64_t i = 0; i < n; i++) {
      int64_t k = lens_tensor_get_i64 (indices, i);
      if (k < -size || k >= size)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "%s: index %" G_GINT64_FORMAT " (element %" G_GINT64_FORMAT
            " of 'indices') is out of range for axis %d of size %"
            G_GINT64_FORMAT, node->op_type, k, i, p->axis, size);
    }
  }
  return st;
}

static LensStatus
check_buffers (const LensNode * node, LensError *err)
{
  LensStatus st = lens_node_require_dense (node, node->inputs[0], "input 'data'", err);

  if (st == LENS_OK)
    st = lens_node_require_dense (node, node->inputs[1], "input 'indices'", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, node->outputs[0], "output", err);
  return st;
}

/* Random in-range indices for an axis of @size, negative ones included. */
static LensTensor *
random_indices (GRand * rand, LensDType dtype, int ndim, const int64_t *shape,
    int64_t size)
{
  return lens_tensor_new_random (dtype, ndim, shape, rand, -(double) size,
      (double) size - 1);
}

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

/* ---- Gather ----------------------------------------------------------------- */

static LensStatus
gather_reshape (LensNode * node, LensError *err)
{
  GatherPriv *p = node->priv;
  const LensTensor *data, *indices;
  int64_t shape[LENS_MAX_DIMS];
  int ndim = 0;
  LensStatus st = check_inputs (node, p, err);

  if (st != LENS_OK)
    return st;
  data = node->inputs[0];
  indices = node->inputs[1];
  if (data->ndim - 1 + indices->ndim > LENS_MAX_DIMS)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Gather: output rank %d (at most %d)", data->ndim - 1 + indices->ndim,
        LENS_MAX_DIMS);
  /* data[:axis] + indices.shape + data[axis+1:] */
  for (int d = 0; d < p->axis; d++)
    shape[ndim++] = data->shape[d];
  for (int d = 0; d < indices->ndim; d++)
    shape[ndim++] = indices->shape[d];
  for (int d = p->axis + 1; d < data->ndim; d++)
    shape[ndim++] = data->shape[d];
  node->outputs[0]->dtype = data->dtype;
  lens_tensor_set_shape (node->outputs[0], ndim, shape);
  if (lens_tensor_numel (node->outputs[0]) > G_MAXINT32)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Gather: output has more than %d elements", G_MAXINT32);
  return LENS_OK;
}

static LensStatus
gather_run (LensContext * ctx, LensNode * node, LensError *err)
{
  GatherPriv *p = node->priv;
  const LensTensor *data = node->inputs[0], *indices = node->inputs[1];
  LensTensor *y = node->outputs[0];
  gboolean i64 = indices->dtype == LENS_DTYPE_INT64;
  cl_int outer = 1, inner = 1, axis_dim = (cl_int) data->shape[p->axis];
  cl_int n_indices = (cl_int) lens_tensor_numel (indices), rows, span;
  gboolean gpu = lens_context_is_gpu (ctx);
  size_t global;
  const char *options;
  cl_kernel k;
  LensStatus st = lens_elem_size_options (node, data->dtype, &options, err);

  if (st != LENS_OK || lens_tensor_numel (y) == 0)
    return st;
  st = check_buffers (node, err);
  if (st != LENS_OK)
    return st;
  for (int d = 0; d < p->axis; d++)
    outer *= (cl_int) data->shape[d];
  for (int d = p->axis + 1; d < data->ndim; d++)
    inner *= (cl_int) data->shape[d];
  rows = outer * n_indices;
  span = gpu ? 1 : GATHER_CPU_SPAN;
  global = (size_t) rows * ((inner + span - 1) / span);
  st = lens_node_kernel (ctx, node, 2 * lens_elem_size_slot (data->dtype) + i64,
      "gather", options, i64 ? "lens_gather_i64" : "lens_gather_i32", &k,
      err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 8, LENS_ARG (data->buffer),
        LENS_ARG (indices->buffer), LENS_ARG (y->buffer), LENS_ARG (rows),
        LENS_ARG (axis_dim), LENS_ARG (inner), LENS_ARG (n_indices),
        LENS_ARG (span));
  if (st != LENS_OK)
    return st;
  /* a CPU device runs one long run per work-item */
  return lens_context_enqueue_items (ctx, k, (int64_t) global, err);
}

/* One constant index on an axis with nothing of size > 1 before it picks
 * one run of the data. */
static gboolean
gather_output_in_input (const LensNode * node, int i, size_t *elem_offset)
{
  const GatherPriv *p = node->priv;
  const LensTensor *data = node->inputs[0], *indices = node->inputs[1];
  int64_t inner = 1, k;

  if (p == NULL || i != 0 || indices == NULL || indices->host == NULL
      || !indices->is_constant || lens_tensor_numel (indices) != 1
      || lens_tensor_numel (node->outputs[0]) == 0)
    return FALSE;
  for (int d = 0; d < p->axis; d++)
    if (data->shape[d] != 1)
      return FALSE;
  for (int d = p->axis + 1; d < data->ndim; d++)
    inner *= data->shape[d];
  k = lens_tensor_get_i64 (indices, 0);
  if (k < 0)
    k += data->shape[p->axis];
  *elem_offset = (size_t) (k * inner);
  return TRUE;
}

static LensStatus
gather_reference (LensNode * node, LensError *err)
{
  GatherPriv *p = node->priv;

  return lens_ref_gather (node, p->axis, err);
}

static LensNode *
gather_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS] = { 0 }, ishape[LENS_MAX_DIMS] = { 0 };
  LensTensor *inputs[2];
  LensNode *node;
  int ndim, indices_ndim, axis;

  if (index >= 18)
    return NULL;
  if (index >= 14) {
    /* rows longer than a CPU work-item's run (whole vectors, a tail and
     * a second run): a scalar index on the outermost axis (a channel
     * shuffle's halves) and 1-D indices on a middle one */
    int64_t rows_shape[3] = { index % 2 ? 2 : 3, 7, 13 * 97 };
    int64_t n_indices = 3;
    axis = index % 2 ? 0 : 1;
    inputs[0] = random_data (rand, index, 3, rows_shape);
    inputs[1] = random_indices (rand, index < 16 ? LENS_DTYPE_INT64 :
        LENS_DTYPE_INT32, index % 2 ? 0 : 1, &n_indices, rows_shape[axis]);
    node = lens_case_node_new ("Gather", 13, 2, inputs, 1);
    lens_node_set_attr_int (node, "axis", axis);
    return node;
  }
  ndim = 1 + index % 4;
  /* scalar, 1-D and 2-D indices */
  indices_ndim = index % 3;
  axis = g_rand_int_range (rand, -ndim, ndim);
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  for (int d = 0; d < indices_ndim; d++)
    ishape[d] = lens_awkward_size (rand, FALSE);
  inputs[0] = random_data (rand, index, ndim, shape);
  inputs[1] = random_indices (rand, index % 2 ? LENS_DTYPE_INT32 :
      LENS_DTYPE_INT64, indices_ndim, ishape, shape[(axis + ndim) % ndim]);
  node = lens_case_node_new ("Gather", 13, 2, inputs, 1);
  lens_node_set_attr_int (node, "axis", axis);
  return node;
}

const LensOp lens_op_gather = {
  .op_type = "Gather",
  .init = gather_init,
  .reshape = gather_reshape,
  .run = gather_run,
  .reference = gather_reference,
  .exit = gather_exit,
  .make_case = gather_case,
  .output_in_input = gather_output_in_input,
};

/* ---- GatherElements --------------------------------------------------------- */

static LensStatus
gather_elements_reshape (LensNode * node, LensError *err)
{
  GatherPriv *p = node->priv;
  const LensTensor *data, *indices;
  LensStatus st = check_inputs (node, p, err);

  if (st != LENS_OK)
    return st;
  data = node->inputs[0];
  indices = node->inputs[1];
  if (indices->ndim != data->ndim)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "GatherElements: 'indices' has rank %d, 'data' rank %d (must match)",
        indices->ndim, data->ndim);
  /* outside the axis, indices address data directly */
  for (int d = 0; d < data->ndim; d++)
    if (d != p->axis && indices->shape[d] > data->shape[d])
      return lens_error_set (err, LENS_ERROR_INVALID,
          "GatherElements: 'indices' has size %" G_GINT64_FORMAT " in "
          "dimension %d, beyond 'data' (%" G_GINT64_FORMAT ")",
          indices->shape[d], d, data->shape[d]);
  node->outputs[0]->dtype = data->dtype;
  lens_tensor_set_shape (node->outputs[0], indices->ndim, indices->shape);
  return LENS_OK;
}

static LensStatus
gather_elements_run (LensContext * ctx, LensNode * node, LensError *err)
{
  GatherPriv *p = node->priv;
  const LensTensor *data = node->inputs[0], *indices = node->inputs[1];
  LensTensor *y = node->outputs[0];
  gboolean i64 = indices->dtype == LENS_DTYPE_INT64;
  int64_t data_strides[LENS_MAX_DIMS];
  cl_int n = (cl_int) lens_tensor_numel (y), rank = y->ndim;
  cl_int axis_dim = (cl_int) data->shape[p->axis];
  cl_int axis_stride = (cl_int) data->strides[p->axis];
  cl_int8 shape, strides;
  const char *options;
  cl_kernel k;
  LensStatus st = lens_elem_size_options (node, data->dtype, &options, err);

  if (st != LENS_OK || n == 0)
    return st;
  st = check_buffers (node, err);
  if (st != LENS_OK)
    return st;
  /* innermost dimension first, as the kernel reads them; the axis
   * contributes through the index instead */
  memset (&shape, 0, sizeof shape);
  memset (&strides, 0, sizeof strides);
  for (int d = 0; d < rank; d++)
    data_strides[d] = d == p->axis ? 0 : data->strides[d];
  for (int d = 0; d < rank; d++) {
    shape.s[d] = (cl_int) y->shape[rank - 1 - d];
    strides.s[d] = (cl_int) data_strides[rank - 1 - d];
  }
  st = lens_node_kernel (ctx, node, 2 * lens_elem_size_slot (data->dtype) + i64,
      "gather", options, i64 ? "lens_gather_elements_i64" :
      "lens_gather_elements_i32", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 9, LENS_ARG (data->buffer),
        LENS_ARG (indices->buffer), LENS_ARG (y->buffer), LENS_ARG (n),
        LENS_ARG (rank), LENS_ARG (shape), LENS_ARG (strides),
        LENS_ARG (axis_dim), LENS_ARG (axis_stride));
  if (st == LENS_OK)
    st = lens_context_enqueue_1d (ctx, k, n, err);
  return st;
}

static LensStatus
gather_elements_reference (LensNode * node, LensError *err)
{
  GatherPriv *p = node->priv;

  return lens_ref_gather_elements (node, p->axis, err);
}

static LensNode *
gather_elements_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS] = { 0 }, ishape[LENS_MAX_DIMS] = { 0 };
  LensTensor *inputs[2];
  LensNode *node;
  int ndim, axis, a;

  if (index >= 12)
    return NULL;
  ndim = 1 + index % 4;
  axis = g_rand_int_range (rand, -ndim, ndim);
  a = (axis + ndim) % ndim;
  for (int d = 0; d < ndim; d++) {
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
    /* indices may be shorter than data in any dimension */
    ishape[d] = index % 3 == 2 ? g_rand_int_range (rand, 1, shape[d] + 1) :
        shape[d];
  }
  if (index % 3 == 1)
    ishape[a] = lens_awkward_size (rand, FALSE);
  inputs[0] = random_data (rand, index, ndim, shape);
  inputs[1] = random_indices (rand, index % 2 ? LENS_DTYPE_INT32 :
      LENS_DTYPE_INT64, ndim, ishape, shape[a]);
  node = lens_case_node_new ("GatherElements", 13, 2, inputs, 1);
  lens_node_set_attr_int (node, "axis", axis);
  return node;
}

const LensOp lens_op_gather_elements = {
  .op_type = "GatherElements",
  .init = gather_init,
  .reshape = gather_elements_reshape,
  .run = gather_elements_run,
  .reference = gather_elements_reference,
  .exit = gather_exit,
  .make_case = gather_elements_case,
};
