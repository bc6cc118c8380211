/* onnx.c: the ONNX protobuf layer. Reads .onnx models and serialized
 * TensorProto (.pb) files through protobuf-c code generated at build time
 * from Debian's onnx.proto, and turns them into lens nodes and tensors.
 * Owns the loader limits (lens_loader_limits): a file is untrusted input,
 * so every size it declares is checked before anything that size is
 * allocated. */
#include "lens-private.h"
#include "onnx.pb-c.h"

#include <string.h>

/* The newest formats whose semantics lens implements. */
#define LENS_ONNX_MAX_IR 10
#define LENS_ONNX_MAX_OPSET 21

LensLoaderLimits lens_loader_limits = {
  .max_model_bytes = LENS_MAX_MODEL_BYTES,
  .max_nodes = LENS_MAX_NODES,
  .max_tensor_bytes = LENS_MAX_TENSOR_BYTES,
  .max_weight_bytes = LENS_MAX_WEIGHT_BYTES,
};

int64_t
lens_shape_bytes (LensDType dtype, int ndim, const int64_t *shape)
{
  int64_t bytes = (int64_t) lens_dtype_size (dtype);

  for (int d = 0; d < ndim; d++) {
    if (shape[d] < 0)
      return -1;
    if (shape[d] == 0)
      return 0;
  }
  for (int d = 0; d < ndim; d++) {
    if (bytes > G_MAXINT64 / shape[d])
      return -1;
    bytes *= shape[d];
  }
  return bytes;
}

char *
lens_limit_text (int64_t bytes)
{
  /* plain ASCII: g_format_size () puts a no-break space in */
  if (bytes >= (1 << 30) && bytes % (1 << 30) == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT " GiB", bytes >> 30);
  if (bytes >= (1 << 20) && bytes % (1 << 20) == 0)
    return g_strdup_printf ("%" G_GINT64_FORMAT " MiB", bytes >> 20);
  return g_strdup_printf ("%" G_GINT64_FORMAT " bytes", bytes);
}

static LensStatus
read_file (const char *path, guint8 ** data, gsize * len, LensError *err)
{
  GError *gerr = NULL;

  if (!g_file_get_contents (path, (char **) data, len, &gerr)) {
    LensStatus st = lens_error_set (err, LENS_ERROR_IO, "%s: %s", path,
        gerr->message);
    g_error_free (gerr);
    return st;
  }
  return LENS_OK;
}

static gboolean
dtype_known (int32_t t)
{
  return lens_dtype_size ((LensDType) t) > 0;
}

/* Fills @out from a TensorProto: raw_data or the typed repeated fields.
 * @weight_bytes (NULL: no total kept) sums the tensors of one model,
 * against lens_loader_limits.max_weight_bytes. */
static LensStatus
tensor_from_proto (const Onnx__TensorProto * p, const char *where,
    int64_t *weight_bytes, LensTensor ** out, LensError *err)
{
  const char *name = p->name ? p->name : "";
  int64_t shape[LENS_MAX_DIMS];
  int64_t numel = 1, bytes;
  LensTensor *t;
  LensDType dtype;
  size_t esize;

  if (!p->has_data_type || !dtype_known (p->data_type))
    return lens_error_set (err, p->data_type == LENS_DTYPE_STRING ?
        LENS_ERROR_UNSUPPORTED : LENS_ERROR_PARSE,
        "%s: tensor '%s': data type %d (%s) is not supported", where, name,
        p->data_type, lens_dtype_name ((LensDType) p->data_type));
  if (p->n_dims > LENS_MAX_DIMS)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: tensor '%s' has %zu dimensions (at most %d supported)", where,
        name, p->n_dims, LENS_MAX_DIMS);
  if (p->has_data_location
      && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: tensor '%s' uses external data, which is not supported", where,
        name);
  dtype = (LensDType) p->data_type;
  esize = lens_dtype_size (dtype);
  for (size_t d = 0; d < p->n_dims; d++) {
    if (p->dims[d] < 0)
      return lens_error_set (err, LENS_ERROR_PARSE,
          "%s: tensor '%s': dimension %zu is negative (%" G_GINT64_FORMAT
          ")", where, name, d, p->dims[d]);
    shape[d] = p->dims[d];
  }
  bytes = lens_shape_bytes (dtype, (int) p->n_dims, shape);
  if (bytes < 0 || bytes > lens_loader_limits.max_tensor_bytes) {
    char *limit = lens_limit_text (lens_loader_limits.max_tensor_bytes);
    LensStatus st = lens_error_set (err, LENS_ERROR_NOMEM,
        "%s: tensor '%s' is over the limit of %s per tensor", where, name,
        limit);
    g_free (limit);
    return st;
  }
  if (weight_bytes != NULL) {
    if (bytes > lens_loader_limits.max_weight_bytes - *weight_bytes) {
      char *limit = lens_limit_text (lens_loader_limits.max_weight_bytes);
      LensStatus st = lens_error_set (err, LENS_ERROR_NOMEM,
          "%s: tensor '%s' takes the model's weights over the limit of %s",
          where, name, limit);
      g_free (limit);
      return st;
    }
    *weight_bytes += bytes;
  }
  numel = bytes / (int64_t) esize;

  if (p->has_raw_data) {
    if (p->raw_data.len != (size_t) bytes)
      return lens_error_set (err, LENS_ERROR_PARSE,
          "%s: tensor '%s': raw_data holds %zu bytes, shape needs %"
          G_GINT64_FORMAT, where, name, p->raw_data.len, bytes);
    t = lens_tensor_new_host (dtype, (int) p->n_dims, shape, NULL);
    if (p->raw_data.len > 0)
      memcpy (t->host, p->raw_data.data, p->raw_data.len);
  } else {
    size_t have;
    switch (dtype) {
      case LENS_DTYPE_FLOAT: have = p->n_float_data; break;
      case LENS_DTYPE_INT64: have = p->n_int64_data; break;
      case LENS_DTYPE_DOUBLE: have = p->n_double_data; break;
      case LENS_DTYPE_UINT32: case LENS_DTYPE_UINT64: have = p->n_uint64_data; break;
      default: have = p->n_int32_data; break;
    }
    if (have != (size_t) numel)
      return lens_error_set (err, LENS_ERROR_PARSE,
          "%s: tensor '%s' holds %zu values, shape needs %" G_GINT64_FORMAT,
          where, name, have, numel);
    t = lens_tensor_new_host (dtype, (int) p->n_dims, shape, NULL);
    for (int64_t i = 0; i < numel; i++) {
      switch (dtype) {
        case LENS_DTYPE_FLOAT:
          ((float *) t->host)[i] = p->float_data[i];
          break;
        case LENS_DTYPE_INT64:
          ((int64_t *) t->host)[i] = p->int64_data[i];
          break;
        case LENS_DTYPE_DOUBLE:
          ((double *) t->host)[i] = p->double_data[i];
          break;
        case LENS_DTYPE_UINT32:
          ((uint32_t *) t->host)[i] = (uint32_t) p->uint64_data[i];
          break;
        case LENS_DTYPE_UINT64:
          ((uint64_t *) t->host)[i] = p->uint64_data[i];
          break;
        case LENS_DTYPE_FLOAT16: case LENS_DTYPE_BFLOAT16:
          /* int32_data carries the 16 bits */
          ((uint16_t *) t->host)[i] = (uint16_t) p->int32_data[i];
          break;
        default:
          lens_tensor_set_f64 (t, i, p->int32_data[i]);
      }
    }
  }
  lens_tensor_set_name (t, name);
  t->is_constant = TRUE;
  *out = t;
  return LENS_OK;
}

LensStatus
lens_onnx_tensor_load (const char *path, LensTensor ** out, LensError *err)
{
  Onnx__TensorProto *p;
  guint8 *data;
  gsize len;
  LensStatus st;

  st = read_file (path, &data, &len, err);
  if (st != LENS_OK)
    return st;
  if ((guint64) len > (guint64) lens_loader_limits.max_model_bytes) {
    g_free (data);
    return lens_error_set (err, LENS_ERROR_NOMEM,
        "%s: %zu bytes, over the limit for a serialized tensor", path,
        (size_t) len);
  }
  p = onnx__tensor_proto__unpack (NULL, len, data);
  g_free (data);
  if (p == NULL)
    return lens_error_set (err, LENS_ERROR_PARSE,
        "%s: not a serialized ONNX TensorProto", path);
  st = tensor_from_proto (p, path, NULL, out, err);
  onnx__tensor_proto__free_unpacked (p, NULL);
  return st;
}

static LensStatus
attr_from_proto (LensNode * node, const Onnx__AttributeProto * a,
    const char *where, int64_t *weight_bytes, LensError *err)
{
  LensAttrType type = a->has_type ? (LensAttrType) a->type :
      LENS_ATTR_UNDEFINED;

  if (a->name == NULL || *a->name == '\0')
    return lens_error_set (err, LENS_ERROR_PARSE,
        "%s: an attribute has no name", where);

  /* IR < 2 exports leave the type out: infer it from the field present. */
  if (type == LENS_ATTR_UNDEFINED) {
    if (a->n_ints) type = LENS_ATTR_INTS;
    else if (a->n_floats) type = LENS_ATTR_FLOATS;
    else if (a->n_strings) type = LENS_ATTR_STRINGS;
    else if (a->t) type = LENS_ATTR_TENSOR;
    else if (a->has_s) type = LENS_ATTR_STRING;
    else if (a->has_f) type = LENS_ATTR_FLOAT;
    else if (a->has_i) type = LENS_ATTR_INT;
  }

  switch (type) {
    case LENS_ATTR_FLOAT:
      lens_node_set_attr_float (node, a->name, a->f);
      break;
    case LENS_ATTR_INT:
      lens_node_set_attr_int (node, a->name, a->i);
      break;
    case LENS_ATTR_STRING:{
      LensAttr *la = lens_node_add_attr (node, a->name, LENS_ATTR_STRING);
      /* an absent value is the empty string, never NULL */
      la->s = a->has_s && a->s.data != NULL ?
          g_strndup ((const char *) a->s.data, a->s.len) : g_strdup ("");
      break;
    }
    case LENS_ATTR_INTS:
      lens_node_set_attr_ints (node, a->name, (int) a->n_ints, a->ints);
      break;
    case LENS_ATTR_FLOATS:
      lens_node_set_attr_floats (node, a->name, (int) a->n_floats, a->floats);
      break;
    case LENS_ATTR_STRINGS:{
      LensAttr *la = lens_node_add_attr (node, a->name, LENS_ATTR_STRINGS);
      la->n = (int) a->n_strings;
      la->strings = g_new0 (char *, a->n_strings + 1);
      for (size_t k = 0; k < a->n_strings; k++)
        la->strings[k] = a->strings[k].data != NULL ?
            g_strndup ((const char *) a->strings[k].data, a->strings[k].len) :
            g_strdup ("");
      break;
    }
    case LENS_ATTR_TENSOR:{
      LensTensor *t;
      LensStatus st;
      if (a->t == NULL)
        return lens_error_set (err, LENS_ERROR_PARSE,
            "%s: attribute '%s' has no tensor", where, a->name);
      st = tensor_from_proto (a->t, where, weight_bytes, &t, err);
      if (st != LENS_OK)
        return st;
      lens_node_set_attr_tensor (node, a->name, t);
      break;
    }
    default:
      /* graphs, sparse tensors, type protos: kept out; ops that need them
       * are not supported, and refuse by name. */
      lens_node_add_attr (node, a->name, type);
      break;
  }
  return LENS_OK;
}

static LensDType
declared_dtype (const Onnx__ValueInfoProto * v)
{
  if (v->type == NULL
      || v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
      || v->type->tensor_type == NULL || !v->type->tensor_type->has_elem_type)
    return LENS_DTYPE_UNDEFINED;
  return (LensDType) v->type->tensor_type->elem_type;
}

/* Declared rank (or -1) and dims (-1 where symbolic or absent). */
static int
declared_shape (const Onnx__ValueInfoProto * v, int64_t *shape)
{
  Onnx__TensorShapeProto *sp;

  if (v->type == NULL
      || v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
      || v->type->tensor_type == NULL || v->type->tensor_type->shape == NULL)
    return -1;
  sp = v->type->tensor_type->shape;
  if (sp->n_dim > LENS_MAX_DIMS)
    return -1;
  for (size_t d = 0; d < sp->n_dim; d++) {
    Onnx__TensorShapeProto__Dimension *dim = sp->dim[d];
    shape[d] = dim->value_case ==
        ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
        && dim->dim_value > 0 ? dim->dim_value : -1;
  }
  return (int) sp->n_dim;
}

/* proto2 leaves an absent string NULL */
static const char *
name_or_empty (const char *name)
{
  return name != NULL ? name : "";
}

static char **
dup_names (char **names, size_t n)
{
  char **out = g_new0 (char *, n + 1);

  for (size_t i = 0; i < n; i++)
    out[i] = g_strdup (names[i] ? names[i] : "");
  return out;
}

LensStatus
lens_onnx_model_load (const char *path, LensOnnxModel ** out, LensError *err)
{
  LensStatus st;
  guint8 *data;
  gsize len;

  st = read_file (path, &data, &len, err);
  if (st != LENS_OK)
    return st;
  st = lens_onnx_model_load_data (path, data, len, out, err);
  g_free (data);
  return st;
}

LensStatus
lens_onnx_model_load_data (const char *path, const void *data, size_t len,
    LensOnnxModel ** out, LensError *err)
{
  Onnx__ModelProto *m;
  Onnx__GraphProto *g;
  LensOnnxModel *model;
  GHashTable *init_names;
  LensStatus st = LENS_OK;
  int64_t weight_bytes = 0;

  /* protobuf-c allocates as the message declares: bound the message */
  if ((guint64) len > (guint64) lens_loader_limits.max_model_bytes) {
    char *limit = lens_limit_text (lens_loader_limits.max_model_bytes);
    st = lens_error_set (err, LENS_ERROR_NOMEM,
        "%s: %zu bytes, over the limit of %s for a model (larger ONNX "
        "models keep their weights in external data, which lens does not "
        "read)", path, len, limit);
    g_free (limit);
    return st;
  }
  m = onnx__model_proto__unpack (NULL, len, data);
  if (m == NULL)
    return lens_error_set (err, LENS_ERROR_PARSE,
        "%s: not an ONNX model (protobuf parse failed; truncated or "
        "corrupt?)", path);
  g = m->graph;
  if (g == NULL) {
    onnx__model_proto__free_unpacked (m, NULL);
    return lens_error_set (err, LENS_ERROR_PARSE, "%s: model has no graph",
        path);
  }
  /* every node costs shape inference and rewrites that scan the graph */
  if (g->n_node > (size_t) lens_loader_limits.max_nodes) {
    st = lens_error_set (err, LENS_ERROR_NOMEM,
        "%s: %zu nodes, over the limit of %" G_GINT64_FORMAT " nodes", path,
        g->n_node, lens_loader_limits.max_nodes);
    onnx__model_proto__free_unpacked (m, NULL);
    return st;
  }

  model = g_new0 (LensOnnxModel, 1);
  model->path = g_strdup (path);
  model->ir_version = m->has_ir_version ? m->ir_version : 0;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const char *domain = m->opset_import[i]->domain;
    if (domain == NULL || *domain == '\0' || strcmp (domain, "ai.onnx") == 0)
      model->opset = (int) m->opset_import[i]->version;
  }

  /* newer formats may change what an op means: refuse rather than guess */
  if (model->ir_version > LENS_ONNX_MAX_IR || model->opset > LENS_ONNX_MAX_OPSET) {
    st = lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: IR version %" G_GINT64_FORMAT ", opset %d: lens supports IR "
        "versions up to %d and opsets up to %d", path, model->ir_version,
        model->opset, LENS_ONNX_MAX_IR, LENS_ONNX_MAX_OPSET);
    onnx__model_proto__free_unpacked (m, NULL);
    lens_onnx_model_free (model);
    return st;
  }

  model->n_initializers = (int) g->n_initializer;
  model->initializers = g_new0 (LensTensor *, g->n_initializer + 1);
  init_names = g_hash_table_new (g_str_hash, g_str_equal);
  for (size_t i = 0; i < g->n_initializer && st == LENS_OK; i++) {
    st = tensor_from_proto (g->initializer[i], path, &weight_bytes,
        &model->initializers[i], err);
    if (st == LENS_OK)
      g_hash_table_add (init_names, model->initializers[i]->name);
  }

  model->n_nodes = (int) g->n_node;
  model->nodes = g_new0 (LensNode *, g->n_node + 1);
  model->node_inputs = g_new0 (char **, g->n_node + 1);
  model->node_outputs = g_new0 (char **, g->n_node + 1);
  for (size_t i = 0; i < g->n_node && st == LENS_OK; i++) {
    Onnx__NodeProto *np = g->node[i];
    char *where;
    LensNode *node;

    if (np->op_type == NULL) {
      st = lens_error_set (err, LENS_ERROR_PARSE,
          "%s: node %zu has no op_type", path, i);
      break;
    }
    /* every operator lens knows has an output; ops may rely on it */
    if (np->n_output == 0) {
      st = lens_error_set (err, LENS_ERROR_PARSE,
          "%s: node %zu (%s) has no outputs", path, i, np->op_type);
      break;
    }
    node = lens_node_new (np->op_type,
        np->name && *np->name ? np->name : (np->n_output ? np->output[0] :
            ""), model->opset);
    model->nodes[i] = node;
    node->n_inputs = (int) np->n_input;
    node->n_outputs = (int) np->n_output;
    node->inputs = g_new0 (LensTensor *, np->n_input + 1);
    node->outputs = g_new0 (LensTensor *, np->n_output + 1);
    model->node_inputs[i] = dup_names (np->input, np->n_input);
    model->node_outputs[i] = dup_names (np->output, np->n_output);
    if (np->domain && *np->domain && strcmp (np->domain, "ai.onnx") != 0) {
      st = lens_error_set (err, LENS_ERROR_UNSUPPORTED_OP,
          "%s: node '%s' (%s): operator domain '%s' is not supported", path,
          node->name, np->op_type, np->domain);
      break;
    }
    if (lens_op_lookup (np->op_type) == NULL) {
      st = lens_error_set (err, LENS_ERROR_UNSUPPORTED_OP,
          "%s: node '%s': operator %s (opset %d) is not supported", path,
          node->name, np->op_type, model->opset);
      break;
    }
    where = g_strdup_printf ("%s: node '%s' (%s)", path, node->name,
        np->op_type);
    for (size_t k = 0; k < np->n_attribute && st == LENS_OK; k++)
      st = attr_from_proto (node, np->attribute[k], where, &weight_bytes,
          err);
    g_free (where);
  }

  for (size_t i = 0; i < g->n_input + g->n_output && st == LENS_OK; i++) {
    Onnx__ValueInfoProto *v = i < g->n_input ? g->input[i] :
        g->output[i - g->n_input];
    if (v->type != NULL
        && v->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        && v->type->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET)
      st = lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "%s: graph %s '%s' is not a tensor (sequences, maps and optionals "
          "are not supported)", path, i < g->n_input ? "input" : "output",
          name_or_empty (v->name));
  }

  model->inputs = g_new0 (char *, g->n_input + 1);
  model->input_dtypes = g_new0 (LensDType, g->n_input + 1);
  model->input_ndims = g_new0 (int, g->n_input + 1);
  model->input_shapes = g_malloc0 (sizeof (int64_t[LENS_MAX_DIMS]) *
      (g->n_input + 1));
  for (size_t i = 0; i < g->n_input; i++) {
    if (g_hash_table_contains (init_names, name_or_empty (g->input[i]->name)))
      continue;
    model->inputs[model->n_inputs] =
        g_strdup (name_or_empty (g->input[i]->name));
    model->input_ndims[model->n_inputs] =
        declared_shape (g->input[i], model->input_shapes[model->n_inputs]);
    model->input_dtypes[model->n_inputs++] = declared_dtype (g->input[i]);
  }
  model->n_metadata = (int) m->n_metadata_props;
  model->metadata_keys = g_new0 (char *, m->n_metadata_props + 1);
  model->metadata_values = g_new0 (char *, m->n_metadata_props + 1);
  for (size_t i = 0; i < m->n_metadata_props; i++) {
    Onnx__StringStringEntryProto *e = m->metadata_props[i];
    model->metadata_keys[i] = g_strdup (e->key ? e->key : "");
    model->metadata_values[i] = g_strdup (e->value ? e->value : "");
  }
  model->n_outputs = (int) g->n_output;
  model->outputs = g_new0 (char *, g->n_output + 1);
  model->output_dtypes = g_new0 (LensDType, g->n_output + 1);
  for (size_t i = 0; i < g->n_output; i++) {
    model->outputs[i] = g_strdup (name_or_empty (g->output[i]->name));
    model->output_dtypes[i] = declared_dtype (g->output[i]);
  }

  g_hash_table_destroy (init_names);
  onnx__model_proto__free_unpacked (m, NULL);
  if (st != LENS_OK) {
    lens_onnx_model_free (model);
    return st;
  }
  *out = model;
  return LENS_OK;
}

void
lens_onnx_model_free (LensOnnxModel * model)
{
  if (model == NULL)
    return;
  for (int i = 0; i < model->n_nodes; i++) {
    if (model->nodes[i] != NULL) {
      /* names, not tensors: the model never owns node tensors */
      lens_node_free (model->nodes[i]);
    }
    g_strfreev (model->node_inputs[i]);
    g_strfreev (model->node_outputs[i]);
  }
  g_free (model->nodes);
  g_free (model->node_inputs);
  g_free (model->node_outputs);
  for (int i = 0; i < model->n_initializers; i++)
    lens_tensor_free (model->initializers[i]);
  g_free (model->initializers);
  g_strfreev (model->inputs);
  g_strfreev (model->outputs);
  g_free (model->input_dtypes);
  g_free (model->input_ndims);
  g_free (model->input_shapes);
  g_free (model->output_dtypes);
  g_strfreev (model->metadata_keys);
  g_strfreev (model->metadata_values);
  g_free (model->path);
  g_free (model);
}

const char *
lens_onnx_model_metadata (const LensOnnxModel * model, const char *key)
{
  for (int i = 0; i < model->n_metadata; i++)
    if (strcmp (model->metadata_keys[i], key) == 0)
      return model->metadata_values[i];
  return NULL;
}
