/* misc.c: BatchNormalization (inference), Tile and Cast. Kernels: the first
 * two in kernels/misc.cl, Cast's lens_cast_to_<type> in
 * kernels/elementwise.cl (it shares that file's per-type loads and stores
 * and its programs, see ops/elementwise.h).
 * References in ref/misc.c. */
#include "ops/elementwise.h"
#include "ref/misc.h"

#include <math.h>
#include <string.h>

/* the misc.cl program for elements of @dtype's size */
static LensStatus
misc_kernel (LensContext * ctx, LensNode * node, LensDType dtype,
    const char *kernel_name, cl_kernel * out, LensError *err)
{
  const char *options;
  LensStatus st = lens_elem_size_options (node, dtype, &options, err);

  if (st != LENS_OK)
    return st;
  return lens_node_kernel (ctx, node, lens_elem_size_slot (dtype), "misc",
      options, kernel_name, out, err);
}

/* ---- BatchNormalization ---------------------------------------------------- */

typedef struct
{
  float epsilon;
} BatchNormPriv;

static LensStatus
batch_norm_init (LensNode * node, LensError *err)
{
  BatchNormPriv *priv;

  if (node->opset >= 14 && lens_node_attr_int (node, "training_mode", 0) != 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "BatchNormalization: attribute 'training_mode' = %" G_GINT64_FORMAT
        " is not supported (inference only)",
        lens_node_attr_int (node, "training_mode", 0));
  if (node->opset < 7 && lens_node_attr_int (node, "is_test", 0) == 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "BatchNormalization: attribute 'is_test' = 0 (training) is not "
        "supported (inference only)");
  if (node->opset < 9 && lens_node_attr_int (node, "spatial", 1) != 1)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "BatchNormalization: attribute 'spatial' = %" G_GINT64_FORMAT
        " is not supported (only 1: per-channel statistics)",
        lens_node_attr_int (node, "spatial", 1));
  priv = g_new0 (BatchNormPriv, 1);
  priv->epsilon = lens_node_attr_float (node, "epsilon", 1e-5f);
  node->priv = priv;
  return LENS_OK;
}

static void
batch_norm_exit (LensNode * node)
{
  g_clear_pointer (&node->priv, g_free);
}

static LensStatus
batch_norm_reshape (LensNode * node, LensError *err)
{
  static const char *const names[] = { "X", "scale", "B", "input_mean",
    "input_var"
  };
  static const LensDType float32[] = { LENS_DTYPE_FLOAT, LENS_DTYPE_UNDEFINED };
  LensTensor *x = lens_node_input (node, 0);
  LensStatus st = LENS_OK;

  for (int i = 0; i < 5; i++)
    if (lens_node_input (node, i) == NULL)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "BatchNormalization: input %s is missing", names[i]);
  /* the running statistics are outputs of training only */
  for (int i = 1; i < node->n_outputs; i++)
    if (node->outputs[i]->name != NULL && node->outputs[i]->name[0] != '\0')
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "BatchNormalization: output %d ('%s') exists only in training "
          "mode, which is not supported", i, node->outputs[i]->name);
  if (x->ndim < 2)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "BatchNormalization: input X has rank %d (at least 2: N, C, ...)",
        x->ndim);
  for (int i = 0; i < 5 && st == LENS_OK; i++) {
    LensTensor *t = node->inputs[i];
    char what[32];
    g_snprintf (what, sizeof what, "input %s", names[i]);
    st = lens_node_check_dtype (node, what, t->dtype, float32, err);
    if (st == LENS_OK && i > 0 && lens_tensor_numel (t) != x->shape[1])
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "BatchNormalization: input %s has %" G_GINT64_FORMAT " elements, "
          "X has %" G_GINT64_FORMAT " channels", names[i],
          lens_tensor_numel (t), x->shape[1]);
  }
  if (st != LENS_OK)
    return st;
  node->outputs[0]->dtype = x->dtype;
  lens_tensor_set_shape (node->outputs[0], x->ndim, x->shape);
  return LENS_OK;
}

static LensStatus
batch_norm_run (LensContext * ctx, LensNode * node, LensError *err)
{
  static const char *const names[] = { "input X", "input scale", "input B",
    "input input_mean", "input input_var"
  };
  BatchNormPriv *priv = node->priv;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  int64_t n = lens_tensor_numel (y), inner = 1;
  cl_int count = (cl_int) n, channels, inner_count;
  cl_kernel k;
  LensStatus st = LENS_OK;

  for (int i = 0; i < 5 && st == LENS_OK; i++)
    st = lens_node_require_dense (node, node->inputs[i], names[i], err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st == LENS_OK)
    st = lens_elementwise_check_count (node, n, err);
  if (st != LENS_OK || n == 0)
    return st;
  for (int d = 2; d < x->ndim; d++)
    inner *= x->shape[d];
  channels = (cl_int) x->shape[1];
  inner_count = (cl_int) inner;
  /* float32 elements: the float32 Tile program serves */
  st = misc_kernel (ctx, node, LENS_DTYPE_FLOAT, "lens_batch_normalization", &k,
      err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 10, LENS_ARG (x->buffer),
        LENS_ARG (node->inputs[1]->buffer), LENS_ARG (node->inputs[2]->buffer),
        LENS_ARG (node->inputs[3]->buffer), LENS_ARG (node->inputs[4]->buffer),
        LENS_ARG (y->buffer), LENS_ARG (count), LENS_ARG (channels),
        LENS_ARG (inner_count), LENS_ARG (priv->epsilon));
  if (st != LENS_OK)
    return st;
  return lens_context_enqueue_1d (ctx, k, n, err);
}

static LensStatus
batch_norm_reference (LensNode * node, LensError *err)
{
  BatchNormPriv *priv = node->priv;

  lens_ref_batch_normalization (node->inputs[0], node->inputs[1],
      node->inputs[2], node->inputs[3], node->inputs[4], priv->epsilon,
      node->outputs[0]);
  return LENS_OK;
}

static LensNode *
batch_norm_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS];
  int ndim = 2 + index % 3;
  LensTensor *inputs[5];
  LensNode *node;

  if (index >= 10)
    return NULL;
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  inputs[0] = lens_tensor_new_random (LENS_DTYPE_FLOAT, ndim, shape, rand, -3,
      3);
  inputs[1] = lens_tensor_new_random (LENS_DTYPE_FLOAT, 1, &shape[1], rand,
      -2, 2);
  inputs[2] = lens_tensor_new_random (LENS_DTYPE_FLOAT, 1, &shape[1], rand,
      -2, 2);
  inputs[3] = lens_tensor_new_random (LENS_DTYPE_FLOAT, 1, &shape[1], rand,
      -1, 1);
  inputs[4] = lens_tensor_new_random (LENS_DTYPE_FLOAT, 1, &shape[1], rand,
      0.1, 3);
  node = lens_case_node_new ("BatchNormalization", index < 7 ? 15 : 9, 5,
      inputs, 1);
  if (index % 2 == 1)
    lens_node_set_attr_float (node, "epsilon",
        (float) g_rand_double_range (rand, 1e-6, 1e-1));
  return node;
}

const LensOp lens_op_batch_normalization = {
  .op_type = "BatchNormalization",
  .init = batch_norm_init,
  .reshape = batch_norm_reshape,
  .run = batch_norm_run,
  .reference = batch_norm_reference,
  .exit = batch_norm_exit,
  .make_case = batch_norm_case,
  .atol = 1e-5,
  .rtol = 1e-5,
};

/* ---- Tile --------------------------------------------------------------------- */

static LensStatus
tile_init (LensNode * node, LensError *err)
{
  if (node->opset < 6)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Tile: opset %d (inputs 'tiles' and 'axis') is not supported; "
        "opset 6 and later take 'repeats'", node->opset);
  return LENS_OK;
}

static LensStatus
tile_reshape (LensNode * node, LensError *err)
{
  LensTensor *x = lens_node_input (node, 0);
  int64_t *repeats, n, shape[LENS_MAX_DIMS];
  LensStatus st;

  if (x == NULL || lens_node_input (node, 1) == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Tile needs inputs input and repeats, and one output");
  if (lens_dtype_size (x->dtype) == 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Tile: input of type %s is not supported", lens_dtype_name (x->dtype));
  st = lens_node_input_ints (node, 1, &repeats, &n, err);
  if (st != LENS_OK)
    return st;
  if (n != x->ndim) {
    g_free (repeats);
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Tile: input 'repeats' has %" G_GINT64_FORMAT " values for an input "
        "of rank %d", n, x->ndim);
  }
  for (int d = 0; d < x->ndim; d++) {
    if (repeats[d] < 0) {
      int64_t r = repeats[d];
      g_free (repeats);
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Tile: repeats[%d] = %" G_GINT64_FORMAT " is negative", d, r);
    }
    if (repeats[d] > 0 && x->shape[d] > G_MAXINT64 / repeats[d]) {
      g_free (repeats);
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Tile: repeats[%d] makes dimension %d larger than 64 bits count",
          d, d);
    }
    shape[d] = x->shape[d] * repeats[d];
  }
  g_free (repeats);
  node->outputs[0]->dtype = x->dtype;
  lens_tensor_set_shape (node->outputs[0], x->ndim, shape);
  return LENS_OK;
}

static LensStatus
tile_run (LensContext * ctx, LensNode * node, LensError *err)
{
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  int64_t n = lens_tensor_numel (y), out[LENS_MAX_DIMS], in[LENS_MAX_DIMS];
  cl_int8 out_shape, in_shape;
  cl_int count = (cl_int) n, rank = 0;
  cl_kernel k;
  LensStatus st;

  st = lens_node_require_dense (node, x, "input", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st == LENS_OK)
    st = lens_elementwise_check_count (node, n, err);
  if (st != LENS_OK || n == 0)
    return st;
  /* Drop size-1 dimensions; merge a dimension that is not repeated into
   * the one before it (i mod (a * b) = (i_a mod a) * b + i_b then). */
  for (int d = 0; d < y->ndim; d++) {
    if (y->shape[d] == 1)
      continue;
    if (rank > 0 && y->shape[d] == x->shape[d]) {
      out[rank - 1] *= y->shape[d];
      in[rank - 1] *= x->shape[d];
      continue;
    }
    out[rank] = y->shape[d];
    in[rank] = x->shape[d];
    rank++;
  }
  for (int k8 = 0; k8 < 8; k8++) {
    int src = k8 - (8 - rank);
    out_shape.s[k8] = src >= 0 ? (cl_int) out[src] : 1;
    in_shape.s[k8] = src >= 0 ? (cl_int) in[src] : 1;
  }
  st = misc_kernel (ctx, node, x->dtype, "lens_tile", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 6, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (count), LENS_ARG (rank),
        LENS_ARG (out_shape), LENS_ARG (in_shape));
  if (st != LENS_OK)
    return st;
  return lens_context_enqueue_1d (ctx, k, n, err);
}

static LensStatus
tile_reference (LensNode * node, LensError *err)
{
  lens_ref_tile (node->inputs[0], node->outputs[0]);
  return LENS_OK;
}

static LensNode *
tile_case (int index, GRand * rand)
{
  static const LensDType types[] = {
    LENS_DTYPE_FLOAT, LENS_DTYPE_INT64, LENS_DTYPE_UINT8, LENS_DTYPE_FLOAT16,
  };
  int64_t shape[LENS_MAX_DIMS], repeats[LENS_MAX_DIMS], out = 1;
  int ndim = 1 + index % 4;
  LensTensor *inputs[2];

  if (index >= 12)
    return NULL;
  for (int d = 0; d < ndim; d++) {
    shape[d] = lens_awkward_size (rand, d == ndim - 1 && ndim <= 2);
    repeats[d] = g_rand_int_range (rand, 1, 4);
    out *= shape[d] * repeats[d];
  }
  /* keep outputs moderate: drop repeats until under 100k elements */
  for (int d = 0; d < ndim && out > 100000; d++) {
    out /= repeats[d];
    repeats[d] = 1;
  }
  if (index == 11)
    repeats[0] = 0;             /* an empty output */
  inputs[0] = lens_tensor_new_random (types[index % 4], ndim, shape, rand,
      -100, 100);
  inputs[1] = lens_tensor_new_host (LENS_DTYPE_INT64, 1, (int64_t[]) {
      ndim}, repeats);
  inputs[1]->is_constant = TRUE;
  return lens_case_node_new ("Tile", 13, 2, inputs, 1);
}

const LensOp lens_op_tile = {
  .op_type = "Tile",
  .init = tile_init,
  .reshape = tile_reshape,
  .run = tile_run,
  .reference = tile_reference,
  .make_case = tile_case,
  .atol = 0,
  .rtol = 0,
};

/* ---- Cast ------------------------------------------------------------------- */

static const LensDType cast_types[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT16, LENS_DTYPE_BFLOAT16, LENS_DTYPE_DOUBLE,
  LENS_DTYPE_BOOL, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, LENS_DTYPE_UINT16,
  LENS_DTYPE_INT16, LENS_DTYPE_INT32, LENS_DTYPE_INT64, LENS_DTYPE_UINT32,
  LENS_DTYPE_UINT64, LENS_DTYPE_UNDEFINED
};

static LensStatus
cast_init (LensNode * node, LensError *err)
{
  const LensAttr *to = lens_node_attr (node, "to");
  LensDType *priv;

  if (to != NULL && to->type == LENS_ATTR_STRING)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Cast: attribute 'to' = '%s' (the type name of opset %d) is not "
        "supported; opset 6 and later give a type number", to->s,
        node->opset);
  if (to == NULL || to->type != LENS_ATTR_INT)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Cast: attribute 'to' is missing");
  for (const LensDType * t = cast_types; *t != LENS_DTYPE_UNDEFINED; t++) {
    if (*t == (LensDType) to->i) {
      /* 'saturate' (opset 19) only concerns float8 targets, refused here */
      priv = g_new0 (LensDType, 1);
      *priv = *t;
      node->priv = priv;
      return LENS_OK;
    }
  }
  return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
      "Cast: attribute 'to' = %" G_GINT64_FORMAT " (%s) is not supported",
      to->i, to->i == LENS_DTYPE_STRING ? "string" : to->i >= 17
      && to->i <= 20 ? "float8" : to->i == 14 || to->i == 15 ? "complex" :
      "unknown type");
}

static void
cast_exit (LensNode * node)
{
  g_clear_pointer (&node->priv, g_free);
}

static LensStatus
cast_reshape (LensNode * node, LensError *err)
{
  LensTensor *x = lens_node_input (node, 0);
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Cast needs one input and one output");
  st = lens_node_check_dtype (node, "input", x->dtype, cast_types, err);
  if (st != LENS_OK)
    return st;
  node->outputs[0]->dtype = *(LensDType *) node->priv;
  lens_tensor_set_shape (node->outputs[0], x->ndim, x->shape);
  return LENS_OK;
}

static LensStatus
cast_run (LensContext * ctx, LensNode * node, LensError *err)
{
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  int64_t n = lens_tensor_numel (y);
  cl_int count = (cl_int) n;
  char kernel_name[32];
  cl_kernel k;
  LensStatus st;

  st = lens_node_require_dense (node, x, "input", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st == LENS_OK)
    st = lens_elementwise_check_count (node, n, err);
  if (st != LENS_OK || n == 0)
    return st;
  /* the program of the input's type, the kernel of the output's */
  g_snprintf (kernel_name, sizeof kernel_name, "lens_cast_to_%d",
      (int) y->dtype);
  st = lens_elementwise_kernel (ctx, node, 0, x->dtype, y->dtype, kernel_name,
      &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 3, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (count));
  if (st != LENS_OK)
    return st;
  return lens_context_enqueue_1d (ctx, k, n, err);
}

static LensStatus
cast_reference (LensNode * node, LensError *err)
{
  lens_ref_cast (node->inputs[0], node->outputs[0]);
  return LENS_OK;
}

static LensNode *
cast_case (int index, GRand * rand)
{
  static const struct
  {
    LensDType from, to;
    double lo, hi;
  } cases[] = {
    { LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT16, -70000, 70000 },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT16, -1e-4, 1e-4 },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_BFLOAT16, -1e3, 1e3 },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_DOUBLE, -1e3, 1e3 },
    { LENS_DTYPE_DOUBLE, LENS_DTYPE_FLOAT, -1e3, 1e3 },
    { LENS_DTYPE_DOUBLE, LENS_DTYPE_FLOAT16, -70000, 70000 },
    { LENS_DTYPE_FLOAT16, LENS_DTYPE_FLOAT, -100, 100 },
    { LENS_DTYPE_BFLOAT16, LENS_DTYPE_FLOAT, -100, 100 },
    { LENS_DTYPE_FLOAT16, LENS_DTYPE_DOUBLE, -100, 100 },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_INT32, -1e6, 1e6 },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_UINT8, -300, 300 },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_INT64, -1e9, 1e9 },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_BOOL, -1, 1 },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_UINT64, -100, 100 },
    { LENS_DTYPE_DOUBLE, LENS_DTYPE_INT16, -40000, 40000 },
    { LENS_DTYPE_FLOAT16, LENS_DTYPE_INT32, -100, 100 },
    { LENS_DTYPE_INT32, LENS_DTYPE_FLOAT, -2e9, 2e9 },
    { LENS_DTYPE_INT64, LENS_DTYPE_FLOAT, -2e9, 2e9 },
    { LENS_DTYPE_UINT8, LENS_DTYPE_FLOAT, 0, 255 },
    { LENS_DTYPE_INT64, LENS_DTYPE_INT8, -2e9, 2e9 },
    { LENS_DTYPE_INT32, LENS_DTYPE_UINT16, -2e9, 2e9 },
    { LENS_DTYPE_BOOL, LENS_DTYPE_FLOAT, 0, 1 },
    { LENS_DTYPE_INT8, LENS_DTYPE_BOOL, -3, 3 },
    { LENS_DTYPE_INT16, LENS_DTYPE_FLOAT16, -32768, 32767 },
    { LENS_DTYPE_UINT32, LENS_DTYPE_INT64, 0, 2e9 },
    { LENS_DTYPE_UINT64, LENS_DTYPE_DOUBLE, 0, 2e9 },
  };
  int64_t shape[LENS_MAX_DIMS];
  int ndim = g_rand_int_range (rand, 1, 4);
  LensTensor *x;
  LensNode *node;

  if (index >= (int) G_N_ELEMENTS (cases))
    return NULL;
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  x = lens_tensor_new_random (cases[index].from, ndim, shape, rand,
      cases[index].lo, cases[index].hi);
  if (index == 12 && lens_tensor_numel (x) > 1)
    lens_tensor_set_f64 (x, 0, 0);      /* a false for bool */
  node = lens_case_node_new ("Cast", 13, 1, &x, 1);
  lens_node_set_attr_int (node, "to", cases[index].to);
  return node;
}

const LensOp lens_op_cast = {
  .op_type = "Cast",
  .init = cast_init,
  .reshape = cast_reshape,
  .run = cast_run,
  .reference = cast_reference,
  .exit = cast_exit,
  .make_case = cast_case,
  .atol = 0,
  .rtol = 0,
};
