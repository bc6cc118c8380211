/* views.c: Reshape, Flatten, Squeeze, Unsqueeze, Identity, and the ops
 * whose value is known at load time: Constant, Shape, ConstantOfShape,
 * Range.
 *
 * The first five only change the shape: on the device their output shares
 * the input's buffer (a view, no copy). Their reference copies host data.
 * The others compute their output on the host while shapes are inferred,
 * so the executor folds them; run only uploads that value. */
#include "lens-private.h"

#include <math.h>
#include <string.h>

/* ---- shared ----------------------------------------------------------------- */

static LensStatus
view_run (LensContext * ctx, LensNode * node, LensError *err)
{
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  LensStatus st = lens_tensor_require_device (x, "input", err);

  if (st != LENS_OK)
    return st;
  if (y->buffer != x->buffer) {
    if (y->buffer != NULL)
      clReleaseMemObject (y->buffer);
    clRetainMemObject (x->buffer);
    y->buffer = x->buffer;
  }
  y->buffer_bytes = x->buffer_bytes;
  y->offset = x->offset;
  return LENS_OK;
}

static LensStatus
view_reference (LensNode * node, LensError *err)
{
  memcpy (node->outputs[0]->host, node->inputs[0]->host,
      lens_tensor_nbytes (node->inputs[0]));
  return LENS_OK;
}

static LensStatus
missing_input (LensNode * node, LensError *err)
{
  return lens_error_set (err, LENS_ERROR_INVALID,
      "%s needs one input and one output", node->op_type);
}

static LensStatus
set_view_shape (LensNode * node, int ndim, const int64_t *shape,
    LensError *err)
{
  LensTensor *x = node->inputs[0], *y = node->outputs[0];

  if (!lens_tensor_is_contiguous (x))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: input must be contiguous", node->op_type);
  y->dtype = x->dtype;
  lens_tensor_set_shape (y, ndim, shape);
  if (lens_tensor_numel (y) != lens_tensor_numel (x))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: output has %" G_GINT64_FORMAT " elements, input %"
        G_GINT64_FORMAT, node->op_type, lens_tensor_numel (y),
        lens_tensor_numel (x));
  return LENS_OK;
}


/* Axes from the "axes" input (opset >= 13) or attribute (older). */
static LensStatus
get_axes (LensNode * node, int64_t ** axes, int64_t *n, LensError *err)
{
  const int64_t *attr;
  int na;

  if (lens_node_input (node, 1) != NULL)
    return lens_node_input_ints (node, 1, axes, n, err);
  na = lens_node_attr_ints (node, "axes", &attr);
  if (na < 0) {
    *axes = NULL;
    *n = -1;
    return LENS_OK;
  }
  *axes = g_memdup2 (attr, sizeof (int64_t) * MAX (na, 1));
  *n = na;
  return LENS_OK;
}

static LensNode *
random_view_case (const char *op_type, int opset, GRand * rand, int *ndim,
    int64_t *shape)
{
  LensTensor *x;

  *ndim = g_rand_int_range (rand, 1, 5);
  for (int d = 0; d < *ndim; d++)
    shape[d] = lens_awkward_size (rand, d == *ndim - 1);
  x = lens_tensor_new_random (LENS_DTYPE_FLOAT, *ndim, shape, rand, -2, 2);
  return lens_case_node_new (op_type, opset, 1, &x, 1);
}

/* ---- Reshape ---------------------------------------------------------------- */

static LensStatus
reshape_reshape (LensNode * node, LensError *err)
{
  LensTensor *x;
  int allowzero = (int) lens_node_attr_int (node, "allowzero", 0);
  int64_t *spec, n, shape[LENS_MAX_DIMS], known = 1;
  int infer = -1;
  LensStatus st;

  if (lens_node_input (node, 0) == NULL || node->n_outputs < 1)
    return missing_input (node, err);
  x = node->inputs[0];
  st = lens_node_input_ints (node, 1, &spec, &n, err);
  if (st != LENS_OK)
    return st;
  if (n > LENS_MAX_DIMS) {
    g_free (spec);
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Reshape: %" G_GINT64_FORMAT " dimensions (at most %d)", n,
        LENS_MAX_DIMS);
  }
  for (int d = 0; d < n; d++) {
    if (spec[d] == -1) {
      if (infer >= 0) {
        g_free (spec);
        return lens_error_set (err, LENS_ERROR_INVALID,
            "Reshape: more than one -1 in the shape");
      }
      infer = d;
      continue;
    }
    if (spec[d] == 0 && !allowzero) {
      if (d >= x->ndim) {
        g_free (spec);
        return lens_error_set (err, LENS_ERROR_INVALID,
            "Reshape: 0 at dimension %d copies a dimension the input "
            "lacks", d);
      }
      shape[d] = x->shape[d];
    } else if (spec[d] < 0) {
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "Reshape: invalid dimension %" G_GINT64_FORMAT, spec[d]);
      g_free (spec);            /* after the message that reads it */
      return st;
    } else {
      shape[d] = spec[d];
    }
    if (shape[d] > 0 && known > G_MAXINT64 / shape[d]) {
      g_free (spec);
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Reshape: the shape holds more elements than 64 bits count");
    }
    known *= shape[d];
  }
  if (infer >= 0) {
    if (known == 0 || lens_tensor_numel (x) % known != 0) {
      g_free (spec);
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Reshape: cannot infer -1: %" G_GINT64_FORMAT " elements do not "
          "divide by %" G_GINT64_FORMAT, lens_tensor_numel (x), known);
    }
    shape[infer] = lens_tensor_numel (x) / known;
  }
  g_free (spec);
  return set_view_shape (node, (int) n, shape, err);
}

static LensNode *
reshape_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS], spec[2];
  LensTensor *s;
  LensNode *node;
  int ndim;

  if (index >= 12)
    return NULL;
  node = random_view_case ("Reshape", 14, rand, &ndim, shape);
  /* [first dim copied with 0, everything else inferred with -1] */
  spec[0] = 0;
  spec[1] = -1;
  s = lens_tensor_new_host (LENS_DTYPE_INT64, 1, (int64_t[]) {
      2}, spec);
  s->is_constant = TRUE;
  node->n_inputs = 2;
  node->inputs = g_renew (LensTensor *, node->inputs, 2);
  node->inputs[1] = s;
  return node;
}

const LensOp lens_op_reshape = {
  .op_type = "Reshape",
  .reshape = reshape_reshape,
  .run = view_run,
  .reference = view_reference,
  .make_case = reshape_case,
  .is_view = TRUE,
};

/* ---- Flatten ---------------------------------------------------------------- */

static LensStatus
flatten_reshape (LensNode * node, LensError *err)
{
  LensTensor *x;
  int64_t axis = lens_node_attr_int (node, "axis", 1);
  int64_t shape[2] = { 1, 1 };

  if (lens_node_input (node, 0) == NULL || node->n_outputs < 1)
    return missing_input (node, err);
  x = node->inputs[0];
  if (axis < 0)
    axis += x->ndim;
  if (axis < 0 || axis > x->ndim)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Flatten: axis %" G_GINT64_FORMAT " is out of range for rank %d",
        lens_node_attr_int (node, "axis", 1), x->ndim);
  for (int d = 0; d < x->ndim; d++)
    shape[d < axis ? 0 : 1] *= x->shape[d];
  return set_view_shape (node, 2, shape, err);
}

static LensNode *
flatten_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS];
  LensNode *node;
  int ndim;

  if (index >= 12)
    return NULL;
  node = random_view_case ("Flatten", 13, rand, &ndim, shape);
  lens_node_set_attr_int (node, "axis", g_rand_int_range (rand, -ndim,
          ndim + 1));
  return node;
}

const LensOp lens_op_flatten = {
  .op_type = "Flatten",
  .reshape = flatten_reshape,
  .run = view_run,
  .reference = view_reference,
  .make_case = flatten_case,
  .is_view = TRUE,
};

/* ---- Squeeze ---------------------------------------------------------------- */

static LensStatus
squeeze_reshape (LensNode * node, LensError *err)
{
  LensTensor *x;
  gboolean drop[LENS_MAX_DIMS] = { FALSE };
  int64_t *axes, n, shape[LENS_MAX_DIMS];
  int ndim = 0;
  LensStatus st;

  if (lens_node_input (node, 0) == NULL || node->n_outputs < 1)
    return missing_input (node, err);
  x = node->inputs[0];
  st = get_axes (node, &axes, &n, err);
  if (st != LENS_OK)
    return st;
  if (n < 0) {
    for (int d = 0; d < x->ndim; d++)
      drop[d] = x->shape[d] == 1;
  }
  for (int64_t k = 0; k < n && st == LENS_OK; k++) {
    int a;
    st = lens_normalize_axis (node, axes[k], x->ndim, &a, err);
    if (st == LENS_OK && x->shape[a] != 1)
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "Squeeze: dimension %d has size %" G_GINT64_FORMAT ", not 1", a,
          x->shape[a]);
    if (st == LENS_OK)
      drop[a] = TRUE;
  }
  g_free (axes);
  if (st != LENS_OK)
    return st;
  for (int d = 0; d < x->ndim; d++)
    if (!drop[d])
      shape[ndim++] = x->shape[d];
  return set_view_shape (node, ndim, shape, err);
}

static LensNode *
squeeze_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS], axes[LENS_MAX_DIMS];
  LensNode *node;
  int ndim, n = 0;

  if (index >= 12)
    return NULL;
  node = random_view_case ("Squeeze", 11, rand, &ndim, shape);
  for (int d = 0; d < ndim; d++)
    if (node->inputs[0]->shape[d] == 1 && g_rand_boolean (rand))
      axes[n++] = d - (g_rand_boolean (rand) ? ndim : 0);
  if (n > 0)
    lens_node_set_attr_ints (node, "axes", n, axes);
  return node;
}

const LensOp lens_op_squeeze = {
  .op_type = "Squeeze",
  .reshape = squeeze_reshape,
  .run = view_run,
  .reference = view_reference,
  .make_case = squeeze_case,
  .is_view = TRUE,
};

/* ---- Unsqueeze -------------------------------------------------------------- */

static LensStatus
unsqueeze_reshape (LensNode * node, LensError *err)
{
  LensTensor *x;
  gboolean inserted[LENS_MAX_DIMS] = { FALSE };
  int64_t *axes, n, shape[LENS_MAX_DIMS];
  int out_ndim, src = 0;
  LensStatus st;

  if (lens_node_input (node, 0) == NULL || node->n_outputs < 1)
    return missing_input (node, err);
  x = node->inputs[0];
  st = get_axes (node, &axes, &n, err);
  if (st != LENS_OK)
    return st;
  if (n < 0) {
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Unsqueeze: 'axes' is required");
  }
  out_ndim = x->ndim + (int) n;
  if (out_ndim > LENS_MAX_DIMS) {
    g_free (axes);
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Unsqueeze: output rank %d (at most %d)", out_ndim, LENS_MAX_DIMS);
  }
  for (int64_t k = 0; k < n && st == LENS_OK; k++) {
    int a;
    st = lens_normalize_axis (node, axes[k], out_ndim, &a, err);
    if (st == LENS_OK && inserted[a])
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "Unsqueeze: axis %d repeated", a);
    if (st == LENS_OK)
      inserted[a] = TRUE;
  }
  g_free (axes);
  if (st != LENS_OK)
    return st;
  for (int d = 0; d < out_ndim; d++)
    shape[d] = inserted[d] ? 1 : x->shape[src++];
  return set_view_shape (node, out_ndim, shape, err);
}

static LensNode *
unsqueeze_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS], axes[2];
  LensNode *node;
  int ndim;

  if (index >= 12)
    return NULL;
  node = random_view_case ("Unsqueeze", 11, rand, &ndim, shape);
  axes[0] = g_rand_int_range (rand, 0, ndim + 2);
  do
    axes[1] = g_rand_int_range (rand, -(ndim + 2), 0);
  while (axes[1] + ndim + 2 == axes[0]);
  lens_node_set_attr_ints (node, "axes", 2, axes);
  return node;
}

const LensOp lens_op_unsqueeze = {
  .op_type = "Unsqueeze",
  .reshape = unsqueeze_reshape,
  .run = view_run,
  .reference = view_reference,
  .make_case = unsqueeze_case,
  .is_view = TRUE,
};

/* ---- Identity --------------------------------------------------------------- */

static LensStatus
identity_reshape (LensNode * node, LensError *err)
{
  LensTensor *x;

  if (lens_node_input (node, 0) == NULL || node->n_outputs < 1)
    return missing_input (node, err);
  x = node->inputs[0];
  return set_view_shape (node, x->ndim, x->shape, err);
}

static LensNode *
identity_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS];
  int ndim;

  return index < 4 ? random_view_case ("Identity", 16, rand, &ndim, shape) :
      NULL;
}

const LensOp lens_op_identity = {
  .op_type = "Identity",
  .reshape = identity_reshape,
  .run = view_run,
  .reference = view_reference,
  .make_case = identity_case,
  .is_view = TRUE,
};

/* ---- Constant --------------------------------------------------------------- */

static LensStatus
constant_init (LensNode * node, LensError *err)
{
  const LensAttr *a;
  LensTensor *value = NULL;

  if (node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID, "Constant needs an output");
  if ((a = lens_node_attr (node, "value")) != NULL && a->t != NULL) {
    value = lens_tensor_new_host (a->t->dtype, a->t->ndim, a->t->shape,
        a->t->host);
  } else if ((a = lens_node_attr (node, "value_float")) != NULL) {
    value = lens_tensor_new_host (LENS_DTYPE_FLOAT, 0, NULL, &a->f);
  } else if ((a = lens_node_attr (node, "value_int")) != NULL) {
    value = lens_tensor_new_host (LENS_DTYPE_INT64, 0, NULL, &a->i);
  } else if ((a = lens_node_attr (node, "value_floats")) != NULL) {
    value = lens_tensor_new_host (LENS_DTYPE_FLOAT, 1, (int64_t[]) {
        a->n}, a->floats);
  } else if ((a = lens_node_attr (node, "value_ints")) != NULL) {
    value = lens_tensor_new_host (LENS_DTYPE_INT64, 1, (int64_t[]) {
        a->n}, a->ints);
  } else if (node->n_attrs > 0) {
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Constant: attribute '%s' is not supported (sparse or string "
        "values)", node->attrs[0].name);
  } else {
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Constant: no value attribute");
  }
  node->priv = value;
  return LENS_OK;
}

static void
constant_exit (LensNode * node)
{
  g_clear_pointer ((LensTensor **) & node->priv, lens_tensor_free);
}

static LensStatus
constant_reshape (LensNode * node, LensError *err)
{
  LensTensor *value = node->priv, *y = node->outputs[0];

  y->dtype = value->dtype;
  lens_tensor_set_shape (y, value->ndim, value->shape);
  /* the value is known now: later shape computations may read it */
  g_free (y->host);
  y->host = g_memdup2 (value->host, MAX (lens_tensor_nbytes (value), 1));
  y->is_constant = TRUE;
  return LENS_OK;
}

static LensStatus
constant_run (LensContext * ctx, LensNode * node, LensError *err)
{
  return lens_tensor_upload (ctx, node->outputs[0], err);
}

static LensStatus
constant_reference (LensNode * node, LensError *err)
{
  LensTensor *value = node->priv;

  memcpy (node->outputs[0]->host, value->host, lens_tensor_nbytes (value));
  return LENS_OK;
}

static LensNode *
constant_case (int index, GRand * rand)
{
  int64_t shape[2] = { lens_awkward_size (rand, TRUE), 3 };
  LensNode *node;

  if (index >= 3)
    return NULL;
  node = lens_case_node_new ("Constant", 13, 0, NULL, 1);
  lens_node_set_attr_tensor (node, "value",
      lens_tensor_new_random (LENS_DTYPE_FLOAT, 2, shape, rand, -1, 1));
  return node;
}

const LensOp lens_op_constant = {
  .op_type = "Constant",
  .init = constant_init,
  .reshape = constant_reshape,
  .run = constant_run,
  .reference = constant_reference,
  .exit = constant_exit,
  .make_case = constant_case,
};

/* ---- Shape ------------------------------------------------------------------ */

/* The output is known as soon as the input's shape is: reshape computes it
 * on the host and marks it constant, so model loading folds it away (the
 * device run only uploads it). */
static LensStatus
shape_reshape (LensNode * node, LensError *err)
{
  LensTensor *x, *y;
  int64_t start, end, n;

  if (lens_node_input (node, 0) == NULL || node->n_outputs < 1)
    return missing_input (node, err);
  x = node->inputs[0];
  y = node->outputs[0];
  start = lens_node_attr_int (node, "start", 0);
  end = lens_node_attr_int (node, "end", x->ndim);
  if (start < 0)
    start += x->ndim;
  if (end < 0)
    end += x->ndim;
  start = CLAMP (start, 0, x->ndim);
  end = CLAMP (end, start, x->ndim);
  n = end - start;
  y->dtype = LENS_DTYPE_INT64;
  lens_tensor_set_shape (y, 1, &n);
  g_free (y->host);
  y->host = g_memdup2 (x->shape + start, sizeof (int64_t) * MAX (n, 1));
  y->is_constant = TRUE;
  return LENS_OK;
}

static LensStatus
shape_run (LensContext * ctx, LensNode * node, LensError *err)
{
  return lens_tensor_upload (ctx, node->outputs[0], err);
}

static LensStatus
shape_reference (LensNode * node, LensError *err)
{
  LensTensor *x = node->inputs[0];
  int64_t start = lens_node_attr_int (node, "start", 0);
  int64_t n = lens_tensor_numel (node->outputs[0]);

  if (start < 0)
    start += x->ndim;
  start = CLAMP (start, 0, x->ndim);
  for (int64_t k = 0; k < n; k++)
    ((int64_t *) node->outputs[0]->host)[k] = x->shape[start + k];
  return LENS_OK;
}

static LensNode *
shape_case (int index, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS];
  LensNode *node;
  int ndim;

  if (index >= 6)
    return NULL;
  node = random_view_case ("Shape", 15, rand, &ndim, shape);
  if (index % 2)
    lens_node_set_attr_int (node, "start", g_rand_int_range (rand, -ndim,
            ndim));
  if (index % 3 == 2)
    lens_node_set_attr_int (node, "end", g_rand_int_range (rand, -ndim,
            ndim + 1));
  return node;
}

const LensOp lens_op_shape = {
  .op_type = "Shape",
  .reshape = shape_reshape,
  .run = shape_run,
  .reference = shape_reference,
  .make_case = shape_case,
};

/* ---- ConstantOfShape -------------------------------------------------------- */

/* Known at load time from its (constant) shape input: reshape fills the
 * output on the host and marks it constant, so models fold it. */
static LensStatus
constant_of_shape_reshape (LensNode * node, LensError *err)
{
  const LensAttr *value = lens_node_attr (node, "value");
  LensTensor *y = node->outputs[0];
  int64_t *dims, n, count;
  LensStatus st;

  if (node->n_outputs < 1)
    return missing_input (node, err);
  st = lens_node_input_ints (node, 0, &dims, &n, err);
  if (st != LENS_OK)
    return st;
  if (n > LENS_MAX_DIMS) {
    g_free (dims);
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "ConstantOfShape: %" G_GINT64_FORMAT " dimensions (at most %d)", n,
        LENS_MAX_DIMS);
  }
  for (int d = 0; d < n; d++)
    if (dims[d] < 0) {
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "ConstantOfShape: negative dimension %" G_GINT64_FORMAT, dims[d]);
      g_free (dims);            /* after the message that reads it */
      return st;
    }
  if (value != NULL && (value->t == NULL || lens_tensor_numel (value->t) != 1)) {
    g_free (dims);
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConstantOfShape: attribute 'value' must hold one element");
  }
  y->dtype = value ? value->t->dtype : LENS_DTYPE_FLOAT;
  /* filled here, at load time: the size comes from the file */
  {
    int64_t bytes = lens_shape_bytes (y->dtype, (int) n, dims);
    if (bytes < 0 || bytes > lens_loader_limits.max_tensor_bytes) {
      char *limit = lens_limit_text (lens_loader_limits.max_tensor_bytes);
      st = lens_error_set (err, LENS_ERROR_NOMEM,
          "ConstantOfShape: the output is over the limit of %s per tensor",
          limit);
      g_free (limit);
      g_free (dims);
      return st;
    }
  }
  lens_tensor_set_shape (y, (int) n, dims);
  g_free (dims);
  lens_tensor_alloc_host (y);
  count = lens_tensor_numel (y);
  if (value != NULL) {
    size_t size = lens_dtype_size (y->dtype);
    for (int64_t i = 0; i < count; i++)
      memcpy ((guint8 *) y->host + i * size, value->t->host, size);
  }
  y->is_constant = TRUE;
  return LENS_OK;
}

static LensStatus
constant_of_shape_reference (LensNode * node, LensError *err)
{
  const LensAttr *value = lens_node_attr (node, "value");
  LensTensor *y = node->outputs[0];
  size_t size = lens_dtype_size (y->dtype);

  /* the host output was zeroed: zero is the default value */
  for (int64_t i = 0; value != NULL && i < lens_tensor_numel (y); i++)
    memcpy ((guint8 *) y->host + i * size, value->t->host, size);
  return LENS_OK;
}

static LensNode *
constant_of_shape_case (int index, GRand * rand)
{
  int64_t dims[3];
  LensTensor *shape;
  LensNode *node;
  int n = g_rand_int_range (rand, 1, 4);

  if (index >= 6)
    return NULL;
  for (int d = 0; d < n; d++)
    dims[d] = lens_awkward_size (rand, d == 0);
  shape = lens_tensor_new_host (LENS_DTYPE_INT64, 1, (int64_t[]) {
      n}, dims);
  shape->is_constant = TRUE;
  node = lens_case_node_new ("ConstantOfShape", 9, 1, &shape, 1);
  if (index % 2) {
    int64_t v = g_rand_int_range (rand, -5, 6);
    LensTensor *t = lens_tensor_new_host (index % 4 == 1 ? LENS_DTYPE_INT64 :
        LENS_DTYPE_FLOAT, 1, (int64_t[]) {
        1}, NULL);
    lens_tensor_set_f64 (t, 0, (double) v);
    lens_node_set_attr_tensor (node, "value", t);
  }
  return node;
}

const LensOp lens_op_constant_of_shape = {
  .op_type = "ConstantOfShape",
  .reshape = constant_of_shape_reshape,
  .run = shape_run,
  .reference = constant_of_shape_reference,
  .make_case = constant_of_shape_case,
};

/* ---- Range ------------------------------------------------------------------ */

static const LensDType range_types[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_DOUBLE, LENS_DTYPE_INT16, LENS_DTYPE_INT32,
  LENS_DTYPE_INT64, LENS_DTYPE_UNDEFINED
};

/* start + i * delta for i < max (ceil ((limit - start) / delta), 0); known
 * at load time from constant scalars, like Shape. */
static LensStatus
range_reshape (LensNode * node, LensError *err)
{
  LensTensor *start = lens_node_input (node, 0), *limit =
      lens_node_input (node, 1), *delta = lens_node_input (node, 2);
  LensTensor *y = node->outputs[0];
  double s, l, d;
  int64_t n;
  LensStatus st;

  if (start == NULL || limit == NULL || delta == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Range needs start, limit and delta");
  st = lens_node_check_dtype (node, "input 'start'", start->dtype,
      range_types, err);
  if (st != LENS_OK)
    return st;
  if (limit->dtype != start->dtype || delta->dtype != start->dtype)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Range: start, limit and delta must have one type");
  if (start->host == NULL || limit->host == NULL || delta->host == NULL)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Range: start, limit and delta must be constants known at load time");
  if (lens_tensor_numel (start) != 1 || lens_tensor_numel (limit) != 1
      || lens_tensor_numel (delta) != 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Range: start, limit and delta must be scalars");
  s = lens_tensor_get_f64 (start, 0);
  l = lens_tensor_get_f64 (limit, 0);
  d = lens_tensor_get_f64 (delta, 0);
  if (d == 0)
    return lens_error_set (err, LENS_ERROR_INVALID, "Range: delta is 0");
  {
    /* a count from the file: checked as a double, before the conversion */
    double count = MAX (ceil ((l - s) / d), 0);
    if (!isfinite (count) || count * lens_dtype_size (start->dtype) >
        (double) lens_loader_limits.max_tensor_bytes) {
      char *limit = lens_limit_text (lens_loader_limits.max_tensor_bytes);
      st = lens_error_set (err, LENS_ERROR_NOMEM,
          "Range: %g elements is over the limit of %s per tensor", count,
          limit);
      g_free (limit);
      return st;
    }
    n = (int64_t) count;
  }
  y->dtype = start->dtype;
  lens_tensor_set_shape (y, 1, &n);
  lens_tensor_alloc_host (y);
  if (lens_dtype_is_float (y->dtype)) {
    for (int64_t i = 0; i < n; i++)
      lens_tensor_set_f64 (y, i, s + (double) i * d);
  } else {
    int64_t si = lens_tensor_get_i64 (start, 0), di = lens_tensor_get_i64 (delta,
        0);
    for (int64_t i = 0; i < n; i++)
      lens_tensor_set_f64 (y, i, (double) (int64_t) ((uint64_t) si +
              (uint64_t) i * (uint64_t) di));
  }
  y->is_constant = TRUE;
  return LENS_OK;
}

static LensStatus
range_reference (LensNode * node, LensError *err)
{
  LensTensor *y = node->outputs[0];
  double s = lens_tensor_get_f64 (node->inputs[0], 0);
  double d = lens_tensor_get_f64 (node->inputs[2], 0);

  /* the plain ONNX definition: output[i] = start + i * delta */
  for (int64_t i = 0; i < lens_tensor_numel (y); i++)
    lens_tensor_set_f64 (y, i, s + (double) i * d);
  return LENS_OK;
}

static LensNode *
range_case (int index, GRand * rand)
{
  static const LensDType types[] = {
    LENS_DTYPE_FLOAT, LENS_DTYPE_INT32, LENS_DTYPE_INT64
  };
  LensTensor *inputs[3];
  LensDType t = types[index % 3];
  double start = g_rand_int_range (rand, -20, 20);
  double delta = (index % 2 ? -1 : 1) * g_rand_int_range (rand, 1, 4);
  double limit = start + delta * lens_awkward_size (rand, TRUE);

  if (index >= 9)
    return NULL;
  inputs[0] = lens_tensor_new_host (t, 0, NULL, NULL);
  inputs[1] = lens_tensor_new_host (t, 0, NULL, NULL);
  inputs[2] = lens_tensor_new_host (t, 0, NULL, NULL);
  lens_tensor_set_f64 (inputs[0], 0, start);
  lens_tensor_set_f64 (inputs[1], 0, limit);
  lens_tensor_set_f64 (inputs[2], 0, delta);
  for (int i = 0; i < 3; i++)
    inputs[i]->is_constant = TRUE;
  return lens_case_node_new ("Range", 11, 3, inputs, 1);
}

const LensOp lens_op_range = {
  .op_type = "Range",
  .reshape = range_reshape,
  .run = shape_run,
  .reference = range_reference,
  .make_case = range_case,
};
