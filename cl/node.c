/* node.c: graph nodes (attributes, inputs, outputs), the generic
 * init/reshape/run/reference sequence every operator goes through, and the
 * shape helpers operators share (axes, broadcasting, dtype checks). */
#include "lens-private.h"

#include <string.h>

LensNode *
lens_node_new (const char *op_type, const char *name, int opset)
{
  LensNode *node = g_new0 (LensNode, 1);

  node->op_type = g_strdup (op_type);
  node->name = g_strdup (name ? name : "");
  node->opset = opset;
  return node;
}

static void
attr_clear (LensAttr * a)
{
  g_free (a->name);
  g_free (a->s);
  lens_tensor_free (a->t);
  g_free (a->floats);
  g_free (a->ints);
  g_strfreev (a->strings);
}

void
lens_node_free (LensNode * node)
{
  if (node == NULL)
    return;
  if (node->op != NULL && node->op->exit != NULL)
    node->op->exit (node);
  for (int i = 0; i < LENS_NODE_MAX_KERNELS; i++)
    if (node->kernels[i] != NULL)
      clReleaseKernel (node->kernels[i]);
  for (int i = 0; i < node->n_attrs; i++)
    attr_clear (&node->attrs[i]);
  g_free (node->attrs);
  if (node->owns_tensors) {
    for (int i = 0; i < node->n_inputs; i++)
      lens_tensor_free (node->inputs[i]);
    for (int i = 0; i < node->n_outputs; i++)
      lens_tensor_free (node->outputs[i]);
  }
  g_free (node->inputs);
  g_free (node->outputs);
  g_free (node->op_type);
  g_free (node->name);
  g_free (node);
}

LensAttr *
lens_node_add_attr (LensNode * node, const char *name, LensAttrType type)
{
  LensAttr *a;

  for (int i = 0; i < node->n_attrs; i++) {
    if (strcmp (node->attrs[i].name, name) == 0) {
      attr_clear (&node->attrs[i]);
      memset (&node->attrs[i], 0, sizeof (LensAttr));
      node->attrs[i].name = g_strdup (name);
      node->attrs[i].type = type;
      return &node->attrs[i];
    }
  }
  node->attrs = g_renew (LensAttr, node->attrs, node->n_attrs + 1);
  a = &node->attrs[node->n_attrs++];
  memset (a, 0, sizeof (LensAttr));
  a->name = g_strdup (name);
  a->type = type;
  return a;
}

void
lens_node_set_attr_int (LensNode * node, const char *name, int64_t v)
{
  lens_node_add_attr (node, name, LENS_ATTR_INT)->i = v;
}

void
lens_node_set_attr_float (LensNode * node, const char *name, float v)
{
  lens_node_add_attr (node, name, LENS_ATTR_FLOAT)->f = v;
}

void
lens_node_set_attr_string (LensNode * node, const char *name, const char *v)
{
  lens_node_add_attr (node, name, LENS_ATTR_STRING)->s = g_strdup (v);
}

void
lens_node_set_attr_ints (LensNode * node, const char *name, int n,
    const int64_t *v)
{
  LensAttr *a = lens_node_add_attr (node, name, LENS_ATTR_INTS);

  a->n = n;
  a->ints = g_memdup2 (v, sizeof (int64_t) * MAX (n, 1));
}

void
lens_node_set_attr_floats (LensNode * node, const char *name, int n,
    const float *v)
{
  LensAttr *a = lens_node_add_attr (node, name, LENS_ATTR_FLOATS);

  a->n = n;
  a->floats = g_memdup2 (v, sizeof (float) * MAX (n, 1));
}

void
lens_node_set_attr_tensor (LensNode * node, const char *name, LensTensor * t)
{
  lens_node_add_attr (node, name, LENS_ATTR_TENSOR)->t = t;
}

void
lens_node_copy_attrs (LensNode * dst, const LensNode * src)
{
  for (int i = 0; i < src->n_attrs; i++) {
    const LensAttr *a = &src->attrs[i];
    LensAttr *c;

    switch (a->type) {
      case LENS_ATTR_INT:
        lens_node_set_attr_int (dst, a->name, a->i);
        break;
      case LENS_ATTR_FLOAT:
        lens_node_set_attr_float (dst, a->name, a->f);
        break;
      case LENS_ATTR_STRING:
        lens_node_set_attr_string (dst, a->name, a->s);
        break;
      case LENS_ATTR_INTS:
        lens_node_set_attr_ints (dst, a->name, a->n, a->ints);
        break;
      case LENS_ATTR_FLOATS:
        lens_node_set_attr_floats (dst, a->name, a->n, a->floats);
        break;
      case LENS_ATTR_TENSOR:
        lens_node_set_attr_tensor (dst, a->name, a->t ?
            lens_tensor_new_host (a->t->dtype, a->t->ndim, a->t->shape,
                a->t->host) : NULL);
        break;
      case LENS_ATTR_STRINGS:
        c = lens_node_add_attr (dst, a->name, LENS_ATTR_STRINGS);
        c->n = a->n;
        c->strings = g_strdupv (a->strings);
        break;
      default:
        lens_node_add_attr (dst, a->name, a->type);
        break;
    }
  }
}

void
lens_node_set_io (LensNode * node, int n_inputs, LensTensor ** inputs,
    int n_outputs, LensTensor ** outputs)
{
  g_free (node->inputs);
  g_free (node->outputs);
  node->n_inputs = n_inputs;
  node->inputs = g_new0 (LensTensor *, MAX (n_inputs, 1));
  for (int i = 0; i < n_inputs; i++)
    node->inputs[i] = inputs ? inputs[i] : NULL;
  node->n_outputs = n_outputs;
  node->outputs = g_new0 (LensTensor *, MAX (n_outputs, 1));
  for (int i = 0; i < n_outputs; i++)
    node->outputs[i] = outputs ? outputs[i] : NULL;
}

const LensAttr *
lens_node_attr (const LensNode * node, const char *name)
{
  for (int i = 0; i < node->n_attrs; i++)
    if (strcmp (node->attrs[i].name, name) == 0)
      return &node->attrs[i];
  return NULL;
}

int64_t
lens_node_attr_int (const LensNode * node, const char *name, int64_t def)
{
  const LensAttr *a = lens_node_attr (node, name);

  return a && a->type == LENS_ATTR_INT ? a->i : def;
}

float
lens_node_attr_float (const LensNode * node, const char *name, float def)
{
  const LensAttr *a = lens_node_attr (node, name);

  return a && a->type == LENS_ATTR_FLOAT ? a->f : def;
}

const char *
lens_node_attr_string (const LensNode * node, const char *name,
    const char *def)
{
  const LensAttr *a = lens_node_attr (node, name);

  return a && a->type == LENS_ATTR_STRING ? a->s : def;
}

int
lens_node_attr_ints (const LensNode * node, const char *name,
    const int64_t **values)
{
  const LensAttr *a = lens_node_attr (node, name);

  if (a == NULL || a->type != LENS_ATTR_INTS)
    return -1;
  *values = a->ints;
  return a->n;
}

int
lens_node_attr_floats (const LensNode * node, const char *name,
    const float **values)
{
  const LensAttr *a = lens_node_attr (node, name);

  if (a == NULL || a->type != LENS_ATTR_FLOATS)
    return -1;
  *values = a->floats;
  return a->n;
}

LensTensor *
lens_node_input (const LensNode * node, int i)
{
  return i >= 0 && i < node->n_inputs ? node->inputs[i] : NULL;
}

LensTensor *
lens_node_output (const LensNode * node, int i)
{
  return i >= 0 && i < node->n_outputs ? node->outputs[i] : NULL;
}

LensStatus
lens_node_input_ints (const LensNode * node, int i, int64_t **values,
    int64_t *n, LensError *err)
{
  LensTensor *t = lens_node_input (node, i);
  int64_t count;

  if (t == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: input %d is missing", node->op_type, i);
  if (t->host == NULL)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: input %d ('%s') must be a constant known at load time",
        node->op_type, i, t->name ? t->name : "");
  if (t->dtype != LENS_DTYPE_INT64 && t->dtype != LENS_DTYPE_INT32)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: input %d ('%s') must be int64 or int32, not %s", node->op_type,
        i, t->name ? t->name : "", lens_dtype_name (t->dtype));
  count = lens_tensor_numel (t);
  *values = g_new0 (int64_t, MAX (count, 1));
  for (int64_t k = 0; k < count; k++)
    (*values)[k] = lens_tensor_get_i64 (t, k);
  *n = count;
  return LENS_OK;
}

static void
prefix_node (LensNode * node, LensError *err)
{
  lens_error_prefix (err, "node '%s' (%s, opset %d): ", node->name,
      node->op_type, node->opset);
}

LensStatus
lens_node_init (LensNode * node, LensError *err)
{
  const LensOp *op = lens_op_lookup (node->op_type);
  LensStatus st;

  if (op == NULL) {
    lens_error_set (err, LENS_ERROR_UNSUPPORTED_OP,
        "operator %s is not supported", node->op_type);
    prefix_node (node, err);
    return LENS_ERROR_UNSUPPORTED_OP;
  }
  node->op = op;
  st = op->init ? op->init (node, err) : LENS_OK;
  if (st != LENS_OK) {
    /* init failed: exit must not see a half-built state twice */
    if (op->exit)
      op->exit (node);
    node->op = NULL;
    prefix_node (node, err);
  }
  return st;
}

LensStatus
lens_node_reshape (LensNode * node, LensError *err)
{
  LensStatus st;

  g_return_val_if_fail (node->op != NULL, LENS_ERROR_INVALID);
  for (int i = 0; i < node->n_outputs; i++)
    if (node->outputs[i] == NULL) {
      lens_error_set (err, LENS_ERROR_INVALID, "output %d has no tensor", i);
      prefix_node (node, err);
      return LENS_ERROR_INVALID;
    }
  st = node->op->reshape (node, err);
  if (st != LENS_OK)
    prefix_node (node, err);
  return st;
}

LensStatus
lens_node_run (LensContext * ctx, LensNode * node, LensError *err)
{
  LensStatus st = LENS_OK;

  g_return_val_if_fail (node->op != NULL, LENS_ERROR_INVALID);
  for (int i = 0; i < node->n_outputs && st == LENS_OK && !node->op->is_view;
      i++)
    if (node->outputs[i] != NULL)
      st = lens_tensor_alloc_device (ctx, node->outputs[i], err);
  if (st == LENS_OK)
    st = node->op->run (ctx, node, err);
  if (st != LENS_OK)
    prefix_node (node, err);
  return st;
}

LensStatus
lens_node_run_reference (LensNode * node, LensError *err)
{
  LensStatus st;

  g_return_val_if_fail (node->op != NULL, LENS_ERROR_INVALID);
  for (int i = 0; i < node->n_inputs; i++)
    if (node->inputs[i] != NULL && node->inputs[i]->host == NULL) {
      lens_error_set (err, LENS_ERROR_INVALID, "input %d has no host data", i);
      prefix_node (node, err);
      return LENS_ERROR_INVALID;
    }
  for (int i = 0; i < node->n_outputs; i++)
    if (node->outputs[i] != NULL)
      lens_tensor_alloc_host (node->outputs[i]);
  st = node->op->reference (node, err);
  if (st != LENS_OK)
    prefix_node (node, err);
  return st;
}

LensStatus
lens_node_kernel (LensContext * ctx, LensNode * node, int slot,
    const char *program, const char *options, const char *kernel_name,
    cl_kernel * out, LensError *err)
{
  g_return_val_if_fail (slot >= 0 && slot < LENS_NODE_MAX_KERNELS,
      LENS_ERROR_INVALID);
  if (node->kernels[slot] == NULL) {
    LensStatus st = lens_context_create_kernel (ctx, program, options,
        kernel_name, &node->kernels[slot], err);
    if (st != LENS_OK)
      return st;
  }
  *out = node->kernels[slot];
  return LENS_OK;
}

cl_kernel
lens_node_built_kernel (const LensNode * node, int slot)
{
  g_return_val_if_fail (slot >= 0 && slot < LENS_NODE_MAX_KERNELS, NULL);
  return node->kernels[slot];
}

/* ---- helpers for operators ------------------------------------------------ */

LensStatus
lens_normalize_axis (const LensNode * node, int64_t axis, int rank, int *out,
    LensError *err)
{
  int64_t a = axis < 0 ? axis + rank : axis;

  if (a < 0 || a >= MAX (rank, 1))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: axis %" G_GINT64_FORMAT " is out of range for rank %d",
        node->op_type, axis, rank);
  *out = (int) a;
  return LENS_OK;
}

LensStatus
lens_broadcast_shapes (const LensNode * node, int n,
    const LensTensor * const *tensors, int *out_ndim, int64_t *out_shape,
    LensError *err)
{
  int ndim = 0;

  for (int i = 0; i < n; i++)
    if (tensors[i] != NULL)
      ndim = MAX (ndim, tensors[i]->ndim);
  for (int d = 0; d < ndim; d++)
    out_shape[d] = 1;
  for (int i = 0; i < n; i++) {
    const LensTensor *t = tensors[i];
    if (t == NULL)
      continue;
    for (int d = 0; d < t->ndim; d++) {
      int od = ndim - t->ndim + d;
      int64_t s = t->shape[d];
      if (s == out_shape[od] || s == 1)
        continue;
      if (out_shape[od] == 1) {
        out_shape[od] = s;
        continue;
      }
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: input %d cannot broadcast: dimension %d is %" G_GINT64_FORMAT
          ", expected %" G_GINT64_FORMAT " or 1", node->op_type, i, d, s,
          out_shape[od]);
    }
  }
  *out_ndim = ndim;
  return LENS_OK;
}

void
lens_broadcast_strides (const LensTensor * t, int ndim, const int64_t *shape,
    int64_t *strides)
{
  for (int d = 0; d < ndim; d++) {
    int td = d - (ndim - t->ndim);
    strides[d] = (td < 0 || t->shape[td] == 1) ? 0 : t->strides[td];
  }
}

LensStatus
lens_node_require_dense (const LensNode * node, const LensTensor * t,
    const char *what, LensError *err)
{
  if (t == NULL || t->buffer == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: %s has no device buffer", node->op_type, what);
  if (t->offset != 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: %s starts at element offset %zu of its buffer (only 0 is "
        "supported)", node->op_type, what, t->offset);
  return LENS_OK;
}

LensStatus
lens_node_check_dtype (const LensNode * node, const char *what,
    LensDType dtype, const LensDType * allowed, LensError *err)
{
  GString *names;

  for (const LensDType * a = allowed; *a != LENS_DTYPE_UNDEFINED; a++)
    if (*a == dtype)
      return LENS_OK;
  names = g_string_new (NULL);
  for (const LensDType * a = allowed; *a != LENS_DTYPE_UNDEFINED; a++)
    g_string_append_printf (names, "%s%s", a == allowed ? "" : ", ",
        lens_dtype_name (*a));
  lens_error_set (err, LENS_ERROR_UNSUPPORTED,
      "%s: %s of type %s is not supported (supported: %s)", node->op_type,
      what, lens_dtype_name (dtype), names->str);
  g_string_free (names, TRUE);
  return LENS_ERROR_UNSUPPORTED;
}

int
lens_elem_size_slot (LensDType dtype)
{
  switch (lens_dtype_size (dtype)) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    default: return 3;
  }
}

LensStatus
lens_elem_size_options (const LensNode * node, LensDType dtype,
    const char **options, LensError *err)
{
  switch (lens_dtype_size (dtype)) {
    case 1: *options = "-DELEM=uchar"; return LENS_OK;
    case 2: *options = "-DELEM=ushort"; return LENS_OK;
    case 4: *options = "-DELEM=uint"; return LENS_OK;
    case 8: *options = "-DELEM=ulong"; return LENS_OK;
    default:
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "%s: data type %s is not supported (fixed-size types only)",
          node->op_type, lens_dtype_name (dtype));
  }
}

LensTensor *
lens_tensor_new_random (LensDType dtype, int ndim, const int64_t *shape,
    GRand * rand, double lo, double hi)
{
  LensTensor *t = lens_tensor_new_host (dtype, ndim, shape, NULL);
  int64_t n = lens_tensor_numel (t);

  for (int64_t i = 0; i < n; i++) {
    double v = lens_dtype_is_float (dtype) ?
        g_rand_double_range (rand, lo, hi) :
        (double) g_rand_int_range (rand, (gint32) lo, (gint32) hi + 1);
    lens_tensor_set_f64 (t, i, v);
  }
  return t;
}

int64_t
lens_awkward_size (GRand * rand, gboolean allow_large)
{
  static const int64_t sizes[] = { 1, 3, 7, 13, 97 };

  return sizes[g_rand_int_range (rand, 0, allow_large ? 5 : 4)];
}

LensNode *
lens_case_node_new (const char *op_type, int opset, int n_inputs,
    LensTensor ** inputs, int n_outputs)
{
  LensNode *node = lens_node_new (op_type, "selftest", opset);

  lens_node_set_io (node, n_inputs, inputs, n_outputs, NULL);
  for (int i = 0; i < n_outputs; i++)
    node->outputs[i] = lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL);
  node->owns_tensors = TRUE;
  return node;
}
