/* test-executor.c: the graph executor on small models built here with the
 * ONNX protobuf layer: results against the C reference run node by node,
 * constant and shape folding, float16 weights, the rewrites (Conv +
 * activation fusion, ConvInteger + dequantization epilogue fusion, Identity
 * and no-op Reshape removal, YOLOX's Focus stem as one 6x6 stride-2 Conv,
 * a Pad of zeros folded into an AveragePool),
 * the memory plan,
 * several execution contexts on one model, every kind of bad input
 * (missing file, not ONNX, truncated, unsupported op, wrong input rank or
 * type, symbolic dimensions without a shape), and the loader's limits
 * (allocation bombs refused by size, with a message). */
#include "lens-check.h"
#include "lens-private.h"           /* lens_loader_limits */
#include "onnx.pb-c.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- a tiny model builder ------------------------------------------------ */

typedef struct
{
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto opset;
  Onnx__OperatorSetIdProto *opsets[1];
  GPtrArray *nodes, *inits, *inputs, *outputs;
  GPtrArray *garbage;           /* everything to free with the builder */
} Builder;

static gpointer
keep (Builder * b, gpointer p, GDestroyNotify free_func)
{
  g_ptr_array_add (b->garbage, p);
  (void) free_func;
  return p;
}

static Builder *
builder_new (int opset)
{
  Builder *b = g_new0 (Builder, 1);

  onnx__model_proto__init (&b->model);
  onnx__graph_proto__init (&b->graph);
  onnx__operator_set_id_proto__init (&b->opset);
  b->opset.domain = (char *) "";
  b->opset.has_version = TRUE;
  b->opset.version = opset;
  b->opsets[0] = &b->opset;
  b->model.has_ir_version = TRUE;
  b->model.ir_version = 8;
  b->model.n_opset_import = 1;
  b->model.opset_import = b->opsets;
  b->model.graph = &b->graph;
  b->graph.name = (char *) "test";
  b->nodes = g_ptr_array_new ();
  b->inits = g_ptr_array_new ();
  b->inputs = g_ptr_array_new ();
  b->outputs = g_ptr_array_new ();
  b->garbage = g_ptr_array_new_with_free_func (g_free);
  return b;
}

static Onnx__ValueInfoProto *
value_info (Builder * b, const char *name, int elem_type, int ndim,
    const int64_t *shape, const char *symbolic)
{
  Onnx__ValueInfoProto *v = keep (b, g_new0 (Onnx__ValueInfoProto, 1), NULL);
  Onnx__TypeProto *tp = keep (b, g_new0 (Onnx__TypeProto, 1), NULL);
  Onnx__TypeProto__Tensor *tt = keep (b, g_new0 (Onnx__TypeProto__Tensor, 1),
      NULL);
  Onnx__TensorShapeProto *sp = keep (b, g_new0 (Onnx__TensorShapeProto, 1),
      NULL);

  onnx__value_info_proto__init (v);
  onnx__type_proto__init (tp);
  onnx__type_proto__tensor__init (tt);
  onnx__tensor_shape_proto__init (sp);
  v->name = keep (b, g_strdup (name), NULL);
  v->type = tp;
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  tt->has_elem_type = TRUE;
  tt->elem_type = elem_type;
  tt->shape = sp;
  sp->n_dim = ndim;
  sp->dim = keep (b, g_new0 (Onnx__TensorShapeProto__Dimension *, ndim + 1),
      NULL);
  for (int d = 0; d < ndim; d++) {
    Onnx__TensorShapeProto__Dimension *dim = keep (b,
        g_new0 (Onnx__TensorShapeProto__Dimension, 1), NULL);
    onnx__tensor_shape_proto__dimension__init (dim);
    if (symbolic != NULL && d == ndim - 1) {
      dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      dim->dim_param = (char *) symbolic;
    } else {
      dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      dim->dim_value = shape[d];
    }
    sp->dim[d] = dim;
  }
  return v;
}

static void
add_input (Builder * b, const char *name, int ndim, const int64_t *shape,
    const char *symbolic)
{
  g_ptr_array_add (b->inputs, value_info (b, name, LENS_DTYPE_FLOAT, ndim,
          shape, symbolic));
}

static void
add_output (Builder * b, const char *name)
{
  g_ptr_array_add (b->outputs, value_info (b, name, LENS_DTYPE_FLOAT, 0, NULL,
          NULL));
}

/* A float32 (or float16 when @half) initializer with values f(i). */
static void
add_init (Builder * b, const char *name, int ndim, const int64_t *shape,
    gboolean half, float scale)
{
  Onnx__TensorProto *t = keep (b, g_new0 (Onnx__TensorProto, 1), NULL);
  int64_t n = 1;

  onnx__tensor_proto__init (t);
  t->name = keep (b, g_strdup (name), NULL);
  t->n_dims = ndim;
  t->dims = keep (b, g_memdup2 (shape, sizeof (int64_t) * MAX (ndim, 1)),
      NULL);
  for (int d = 0; d < ndim; d++)
    n *= shape[d];
  t->has_data_type = TRUE;
  t->data_type = half ? LENS_DTYPE_FLOAT16 : LENS_DTYPE_FLOAT;
  t->has_raw_data = TRUE;
  t->raw_data.len = n * (half ? 2 : 4);
  t->raw_data.data = keep (b, g_malloc (t->raw_data.len), NULL);
  for (int64_t i = 0; i < n; i++) {
    float v = scale * (float) sin (0.7 * i + 0.3);
    if (half)
      ((uint16_t *) t->raw_data.data)[i] = lens_float_to_half (v);
    else
      ((float *) t->raw_data.data)[i] = v;
  }
  g_ptr_array_add (b->inits, t);
}

static void
add_init_ints (Builder * b, const char *name, int n, const int64_t *values)
{
  Onnx__TensorProto *t = keep (b, g_new0 (Onnx__TensorProto, 1), NULL);

  onnx__tensor_proto__init (t);
  t->name = keep (b, g_strdup (name), NULL);
  t->n_dims = 1;
  t->dims = keep (b, g_new0 (int64_t, 1), NULL);
  t->dims[0] = n;
  t->has_data_type = TRUE;
  t->data_type = LENS_DTYPE_INT64;
  t->n_int64_data = n;
  t->int64_data = keep (b, g_memdup2 (values, sizeof (int64_t) * n), NULL);
  g_ptr_array_add (b->inits, t);
}

/* An int8 or uint8 (@dtype) initializer with values f(i) in [-100, 100]
 * (int8) or [50, 250] (uint8). */
static void
add_init_bytes (Builder * b, const char *name, int ndim, const int64_t *shape,
    LensDType dtype)
{
  Onnx__TensorProto *t = keep (b, g_new0 (Onnx__TensorProto, 1), NULL);
  int64_t n = 1;

  onnx__tensor_proto__init (t);
  t->name = keep (b, g_strdup (name), NULL);
  t->n_dims = ndim;
  t->dims = keep (b, g_memdup2 (shape, sizeof (int64_t) * MAX (ndim, 1)),
      NULL);
  for (int d = 0; d < ndim; d++)
    n *= shape[d];
  t->has_data_type = TRUE;
  t->data_type = dtype;
  t->has_raw_data = TRUE;
  t->raw_data.len = n;
  t->raw_data.data = keep (b, g_malloc (n), NULL);
  for (int64_t i = 0; i < n; i++) {
    int v = (int) lrint (100 * sin (0.9 * i + 0.2));
    t->raw_data.data[i] = (uint8_t) (dtype == LENS_DTYPE_INT8 ? v : v + 150);
  }
  g_ptr_array_add (b->inits, t);
}

static Onnx__NodeProto *
add_node (Builder * b, const char *op_type, const char *inputs,
    const char *outputs)
{
  Onnx__NodeProto *n = keep (b, g_new0 (Onnx__NodeProto, 1), NULL);
  char **in = g_strsplit (inputs, ",", -1), **out = g_strsplit (outputs, ",",
      -1);

  onnx__node_proto__init (n);
  n->op_type = (char *) op_type;
  n->name = keep (b, g_strdup (out[0]), NULL);
  n->n_input = g_strv_length (in);
  n->input = keep (b, in, NULL);
  n->n_output = g_strv_length (out);
  n->output = keep (b, out, NULL);
  for (char **s = in; *s; s++)
    keep (b, *s, NULL);
  for (char **s = out; *s; s++)
    keep (b, *s, NULL);
  g_ptr_array_add (b->nodes, n);
  return n;
}

/* Adds @a to the attributes of @n. */
static void
append_attr (Builder * b, Onnx__NodeProto * n, Onnx__AttributeProto * a)
{
  Onnx__AttributeProto **attrs = keep (b, g_new (Onnx__AttributeProto *,
          n->n_attribute + 1), NULL);

  if (n->n_attribute > 0)
    memcpy (attrs, n->attribute, n->n_attribute * sizeof (*attrs));
  attrs[n->n_attribute++] = a;
  n->attribute = attrs;
}

static void
add_attr_ints (Builder * b, Onnx__NodeProto * n, const char *name, int count,
    const int64_t *values)
{
  Onnx__AttributeProto *a = keep (b, g_new0 (Onnx__AttributeProto, 1), NULL);

  onnx__attribute_proto__init (a);
  a->name = (char *) name;
  a->has_type = TRUE;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
  a->n_ints = count;
  a->ints = keep (b, g_memdup2 (values, sizeof (int64_t) * count), NULL);
  append_attr (b, n, a);
}

static void
add_attr_int (Builder * b, Onnx__NodeProto * n, const char *name,
    int64_t value)
{
  Onnx__AttributeProto *a = keep (b, g_new0 (Onnx__AttributeProto, 1), NULL);

  onnx__attribute_proto__init (a);
  a->name = (char *) name;
  a->has_type = TRUE;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
  a->has_i = TRUE;
  a->i = value;
  append_attr (b, n, a);
}

/* Serializes the model to a temporary file; returns its path. */
static char *
builder_save (Builder * b)
{
  char *path = NULL;
  guint8 *data;
  size_t len;
  int fd;

  b->graph.n_node = b->nodes->len;
  b->graph.node = (Onnx__NodeProto **) b->nodes->pdata;
  b->graph.n_initializer = b->inits->len;
  b->graph.initializer = (Onnx__TensorProto **) b->inits->pdata;
  b->graph.n_input = b->inputs->len;
  b->graph.input = (Onnx__ValueInfoProto **) b->inputs->pdata;
  b->graph.n_output = b->outputs->len;
  b->graph.output = (Onnx__ValueInfoProto **) b->outputs->pdata;
  len = onnx__model_proto__get_packed_size (&b->model);
  data = g_malloc (len);
  onnx__model_proto__pack (&b->model, data);
  fd = g_file_open_tmp ("lens-executor-XXXXXX.onnx", &path, NULL);
  ck_assert_msg (fd >= 0, "cannot create a temporary file");
  close (fd);
  ck_assert (g_file_set_contents (path, (char *) data, (gssize) len, NULL));
  g_free (data);
  return path;
}

static void
builder_free (Builder * b)
{
  g_ptr_array_unref (b->nodes);
  g_ptr_array_unref (b->inits);
  g_ptr_array_unref (b->inputs);
  g_ptr_array_unref (b->outputs);
  g_ptr_array_unref (b->garbage);
  g_free (b);
}

/* conv -> sigmoid, mul (SiLU) -> identity -> reshape to the same shape ->
 * conv (float16 weights) -> relu; plus a folded shape subgraph feeding the
 * last reshape. */
static char *
build_fusion_model (gboolean half_weights, const char *symbolic)
{
  Builder *b = builder_new (13);
  static const int64_t x_shape[4] = { 1, 3, 13, 13 };
  static const int64_t w1[4] = { 8, 3, 3, 3 }, b1[1] = { 8 };
  static const int64_t w2[4] = { 5, 8, 1, 1 }, b2[1] = { 5 };
  static const int64_t pads[4] = { 1, 1, 1, 1 };
  static const int64_t flat[2] = { 1, -1 };
  Onnx__NodeProto *conv;
  char *path;

  add_input (b, "x", 4, x_shape, symbolic);
  add_init (b, "w1", 4, w1, FALSE, 0.5f);
  add_init (b, "b1", 1, b1, FALSE, 0.1f);
  add_init (b, "w2", 4, w2, half_weights, 0.4f);
  add_init (b, "b2", 1, b2, half_weights, 0.2f);
  add_init_ints (b, "flat", 2, flat);
  conv = add_node (b, "Conv", "x,w1,b1", "c1");
  add_attr_ints (b, conv, "pads", 4, pads);
  add_node (b, "Sigmoid", "c1", "s1");
  add_node (b, "Mul", "c1,s1", "m1");
  add_node (b, "Identity", "m1", "i1");
  add_node (b, "Shape", "i1", "shape1");
  add_node (b, "Reshape", "i1,shape1", "r1");
  add_node (b, "Conv", "r1,w2,b2", "c2");
  add_node (b, "Relu", "c2", "y");
  add_node (b, "Reshape", "y,flat", "flat_y");
  add_output (b, "flat_y");
  path = builder_save (b);
  builder_free (b);
  return path;
}

/* Two convolutions of a dynamically quantized model, as the int8
 * Ultralytics models have them: DynamicQuantizeLinear, the scale
 * (activation scale x weight scale), ConvInteger -> Cast -> Mul (scale) ->
 * Add (bias [1, C, 1, 1]) -> Sigmoid, Mul (SiLU); then the same without
 * the SiLU (the Add read by a Relu), the operands in the other order, a
 * [C, 1, 1] bias and no weight zero point. 15 nodes. */
static char *
build_conv_integer_model (void)
{
  Builder *b = builder_new (13);
  static const int64_t x_shape[4] = { 1, 3, 13, 13 };
  static const int64_t w1[4] = { 8, 3, 3, 3 }, b1[4] = { 1, 8, 1, 1 };
  static const int64_t w2[4] = { 5, 8, 1, 1 }, b2[3] = { 5, 1, 1 };
  static const int64_t pads[4] = { 1, 1, 1, 1 };
  Onnx__NodeProto *n;
  char *path;

  add_input (b, "x", 4, x_shape, NULL);
  add_init_bytes (b, "w1", 4, w1, LENS_DTYPE_INT8);
  add_init_bytes (b, "w1_zero", 0, NULL, LENS_DTYPE_INT8);
  add_init (b, "w1_scale", 0, NULL, FALSE, 0.01f);
  add_init (b, "b1", 4, b1, FALSE, 0.5f);
  add_init_bytes (b, "w2", 4, w2, LENS_DTYPE_INT8);
  add_init (b, "w2_scale", 0, NULL, FALSE, -0.02f);
  add_init (b, "b2", 3, b2, FALSE, 0.3f);

  add_node (b, "DynamicQuantizeLinear", "x", "xq,xs,xz");
  add_node (b, "Mul", "xs,w1_scale", "s1");
  n = add_node (b, "ConvInteger", "xq,w1,xz,w1_zero", "acc1");
  add_attr_ints (b, n, "pads", 4, pads);
  n = add_node (b, "Cast", "acc1", "f1");
  add_attr_int (b, n, "to", LENS_DTYPE_FLOAT);
  add_node (b, "Mul", "f1,s1", "m1");
  add_node (b, "Add", "m1,b1", "d1");
  add_node (b, "Sigmoid", "d1", "g1");
  add_node (b, "Mul", "d1,g1", "y1");

  add_node (b, "DynamicQuantizeLinear", "y1", "q2,qs2,qz2");
  add_node (b, "Mul", "w2_scale,qs2", "s2");
  add_node (b, "ConvInteger", "q2,w2,qz2", "acc2");
  n = add_node (b, "Cast", "acc2", "f2");
  add_attr_int (b, n, "to", LENS_DTYPE_FLOAT);
  add_node (b, "Mul", "s2,f2", "m2");
  add_node (b, "Add", "b2,m2", "d2");
  add_node (b, "Relu", "d2", "y");
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  return path;
}

/* Runs every node of @path through the C reference on @input. */
static LensTensor *
reference_run (const char *path, const LensTensor * input)
{
  LensError err = LENS_ERROR_INIT;
  GHashTable *values = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *owned = g_ptr_array_new_with_free_func ((GDestroyNotify)
      lens_tensor_free);
  LensOnnxModel *m;
  LensTensor *x, *result = NULL;

  ck_assert_msg (lens_onnx_model_load (path, &m, &err) == LENS_OK, "%s",
      err.message);
  for (int i = 0; i < m->n_initializers; i++) {
    LensTensor *t = m->initializers[i];
    if (t->dtype == LENS_DTYPE_FLOAT16) {
      LensTensor *f = lens_tensor_new_host (LENS_DTYPE_FLOAT, t->ndim,
          t->shape, NULL);
      for (int64_t k = 0; k < lens_tensor_numel (t); k++)
        ((float *) f->host)[k] = lens_half_to_float (((uint16_t *) t->host)[k]);
      f->is_constant = TRUE;
      g_ptr_array_add (owned, f);
      t = f;
    }
    g_hash_table_insert (values, m->initializers[i]->name, t);
  }
  x = lens_tensor_new_host (input->dtype, input->ndim, input->shape,
      input->host);
  g_ptr_array_add (owned, x);
  g_hash_table_insert (values, m->inputs[0], x);
  for (int n = 0; n < m->n_nodes; n++) {
    LensNode *node = m->nodes[n];
    for (int i = 0; i < node->n_inputs; i++)
      node->inputs[i] = g_hash_table_lookup (values, m->node_inputs[n][i]);
    for (int i = 0; i < node->n_outputs; i++) {
      node->outputs[i] = lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL);
      g_ptr_array_add (owned, node->outputs[i]);
      g_hash_table_insert (values, m->node_outputs[n][i], node->outputs[i]);
    }
    ck_assert_msg (lens_node_init (node, &err) == LENS_OK
        && lens_node_reshape (node, &err) == LENS_OK
        && lens_node_run_reference (node, &err) == LENS_OK, "%s",
        err.message);
  }
  {
    LensTensor *y = g_hash_table_lookup (values, m->outputs[0]);
    result = lens_tensor_new_host (y->dtype, y->ndim, y->shape, y->host);
  }
  for (int n = 0; n < m->n_nodes; n++) {
    memset (m->nodes[n]->inputs, 0, sizeof (LensTensor *) *
        m->nodes[n]->n_inputs);
    memset (m->nodes[n]->outputs, 0, sizeof (LensTensor *) *
        m->nodes[n]->n_outputs);
  }
  g_ptr_array_unref (owned);
  g_hash_table_destroy (values);
  lens_onnx_model_free (m);
  return result;
}

static LensTensor *
random_input (int ndim, const int64_t *shape)
{
  LensTensor *t = lens_tensor_new_host (LENS_DTYPE_FLOAT, ndim, shape, NULL);
  GRand *rand = g_rand_new_with_seed (7);

  for (int64_t i = 0; i < lens_tensor_numel (t); i++)
    ((float *) t->host)[i] = (float) g_rand_double_range (rand, -1, 1);
  g_rand_free (rand);
  return t;
}

static LensTensor *
exec_once (LensModel * model, const LensTensor * input)
{
  LensError err = LENS_ERROR_INIT;
  LensExec *exec;
  LensTensor *out;

  ck_assert_msg (lens_exec_new (model, &exec, &err) == LENS_OK, "%s",
      err.message);
  ck_assert_msg (lens_exec_set_input (exec, 0, input, &err) == LENS_OK, "%s",
      err.message);
  ck_assert_msg (lens_exec_run (exec, &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (lens_exec_get_output (exec, 0, &out, &err) == LENS_OK, "%s",
      err.message);
  lens_exec_free (exec);
  return out;
}

/* Runs @model on @input and compares with the node-by-node C reference of
 * @path within @tol (0: bit for bit); then frees the model, the input and
 * the model file, which every caller is done with. */
static void
check_against_reference (LensModel * model, char *path, LensTensor * input,
    double tol, const char *what)
{
  LensError err = LENS_ERROR_INIT;
  LensTensor *out = exec_once (model, input);
  LensTensor *expected = reference_run (path, input);

  ck_assert_msg (lens_tensor_compare (out, expected, tol, tol, NULL, &err) ==
      LENS_OK, "%s: %s", what, err.message);
  lens_tensor_free (out);
  lens_tensor_free (expected);
  lens_tensor_free (input);
  lens_model_free (model);
  g_unlink (path);
  g_free (path);
}

/* ---- results and rewrites ---- */

static void
check_model_matches_reference (gboolean half_weights)
{
  static const int64_t x_shape[4] = { 1, 3, 13, 13 };
  LensError err = LENS_ERROR_INIT;
  char *path = build_fusion_model (half_weights, NULL);
  LensTensor *input = random_input (4, x_shape);
  LensModel *model;

  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err) ==
      LENS_OK, "%s", err.message);
  /* Conv+SiLU, Conv+Relu fused; Identity, Shape, same-shape Reshape gone:
   * 9 nodes in, 3 to run (two Convs and the final Reshape, a view) */
  ck_assert_msg (lens_model_n_nodes (model) == 3,
      "expected 3 nodes after folding and rewrites, got %d",
      lens_model_n_nodes (model));
  check_against_reference (model, path, input, 1e-4,
      "executor vs node-by-node reference");
}

START_TEST (test_fused_model_matches_reference)
{
  check_model_matches_reference (FALSE);
}
END_TEST

/* The fused ConvInteger computes the float operations of the ops it
 * replaced in their order: the result is the same bit for bit. */
START_TEST (test_conv_integer_epilogue_fused)
{
  static const int64_t x_shape[4] = { 1, 3, 13, 13 };
  LensError err = LENS_ERROR_INIT;
  char *path = build_conv_integer_model ();
  LensTensor *input = random_input (4, x_shape);
  LensModel *model;

  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err) == LENS_OK, "%s", err.message);
  /* 15 nodes: Cast, Mul, Add, Sigmoid, Mul of the first ConvInteger and
   * Cast, Mul, Add of the second fused into them, and the Mul of the
   * scales of each (x_scale * w_scale, one in each operand order) folded
   * in too */
  ck_assert_msg (lens_model_n_nodes (model) == 15 - 5 - 3 - 2,
      "expected 5 nodes after the epilogue fusions, got %d",
      lens_model_n_nodes (model));
  check_against_reference (model, path, input, 0,
      "fused executor vs node-by-node reference, bit for bit");
}
END_TEST

START_TEST (test_float16_weights)
{
  check_model_matches_reference (TRUE);
}
END_TEST

START_TEST (test_symbolic_dimension)
{
  static const int64_t x_shape[4] = { 1, 3, 13, 7 };
  LensError err = LENS_ERROR_INIT;
  char *path = build_fusion_model (FALSE, "width");
  LensTensor *input = random_input (4, x_shape);
  LensModel *model;
  int64_t shape[LENS_MAX_DIMS];

  /* no shape for a symbolic input: a clear refusal naming the input */
  ck_assert_int_eq (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err),
      LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "'x'") != NULL
      && strstr (err.message, "symbolic") != NULL,
      "message should name the input and why: %s", err.message);
  lens_error_clear (&err);

  ck_assert_msg (lens_model_load (lens_check_ctx, path, 4, x_shape, &model, &err) ==
      LENS_OK, "%s", err.message);
  ck_assert_int_eq (lens_model_output_shape (model, 0, shape), 2);
  ck_assert_msg (shape[1] == 5 * 13 * 7, "output shape follows the input: "
      "got %" G_GINT64_FORMAT, shape[1]);
  check_against_reference (model, path, input, 1e-4,
      "symbolic input vs node-by-node reference");
}
END_TEST

START_TEST (test_two_execs_share_model)
{
  static const int64_t x_shape[4] = { 1, 3, 13, 13 };
  LensError err = LENS_ERROR_INIT;
  char *path = build_fusion_model (FALSE, NULL);
  LensTensor *input = random_input (4, x_shape);
  LensModel *model;
  LensExec *a, *b;
  LensTensor *out_a, *out_b;

  ck_assert (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err) == LENS_OK);
  ck_assert (lens_exec_new (model, &a, &err) == LENS_OK);
  ck_assert (lens_exec_new (model, &b, &err) == LENS_OK);
  ck_assert (lens_exec_get_context (a) != lens_exec_get_context (b));
  ck_assert (lens_exec_set_input (a, 0, input, &err) == LENS_OK);
  ck_assert (lens_exec_set_input (b, 0, input, &err) == LENS_OK);
  ck_assert (lens_exec_run (b, &err) == LENS_OK);
  ck_assert (lens_exec_run (a, &err) == LENS_OK);
  ck_assert (lens_exec_get_output (a, 0, &out_a, &err) == LENS_OK);
  ck_assert (lens_exec_get_output (b, 0, &out_b, &err) == LENS_OK);
  ck_assert_msg (memcmp (out_a->host, out_b->host,
          lens_tensor_nbytes (out_a)) == 0,
      "two execution contexts of one model must agree exactly");
  lens_tensor_free (out_a);
  lens_tensor_free (out_b);
  lens_exec_free (a);
  lens_exec_free (b);
  lens_tensor_free (input);
  lens_model_free (model);
  g_unlink (path);
  g_free (path);
}
END_TEST

START_TEST (test_memory_plan_reuses)
{
  static const int64_t shape[2] = { 16, 97 };
  LensError err = LENS_ERROR_INIT;
  Builder *b = builder_new (13);
  LensTensor *input = random_input (2, shape);
  LensModel *model;
  size_t one = 16 * 97 * sizeof (float);
  char *path;

  add_input (b, "x", 2, shape, NULL);
  add_node (b, "Relu", "x", "a");
  add_node (b, "Sigmoid", "a", "b");
  add_node (b, "Exp", "b", "c");
  add_node (b, "Floor", "c", "d");
  add_node (b, "Sigmoid", "d", "y");
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err) ==
      LENS_OK, "%s", err.message);
  /* five values of one size, at most two alive at once: a ping-pong pair
   * plus the output, which must survive the run */
  ck_assert_msg (lens_model_unplanned_bytes (model) == 5 * one,
      "expected %zu unplanned bytes, got %zu", 5 * one,
      lens_model_unplanned_bytes (model));
  ck_assert_msg (lens_model_peak_bytes (model) <= 3 * one,
      "expected liveness reuse to need at most %zu bytes, got %zu", 3 * one,
      lens_model_peak_bytes (model));
  check_against_reference (model, path, input, 1e-5,
      "reused buffers corrupted a value");
}
END_TEST

/* A view of the graph input read after other values used (and freed)
 * planned buffers: the input keeps its own buffer, the plan never hands it
 * a slot that earlier steps write. */
START_TEST (test_input_view_keeps_input)
{
  static const int64_t shape[2] = { 16, 97 }, axes[1] = { 0 };
  Builder *b = builder_new (13);
  LensError err = LENS_ERROR_INIT;
  LensTensor *input = random_input (2, shape);
  LensModel *model;
  char *path;

  add_input (b, "x", 2, shape, NULL);
  add_init_ints (b, "axes", 1, axes);
  add_node (b, "Relu", "x", "a");
  add_node (b, "Sigmoid", "a", "s");
  add_node (b, "Exp", "s", "e");
  add_node (b, "Unsqueeze", "x,axes", "x1");
  add_node (b, "Add", "x1,e", "y");
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err) ==
      LENS_OK, "%s", err.message);
  check_against_reference (model, path, input, 1e-5,
      "a view of the input read late");
}
END_TEST

/* Loads the model at @path (then deletes and frees it) and runs it on
 * @input (freed too): after a first run, which may also pack constant
 * weights, each of two more must make @launches kernel launches (@why
 * says which are saved) and give what the node-by-node reference gives. */
static void
check_runs (char *path, LensTensor * input, guint64 launches, const char *why)
{
  LensError err = LENS_ERROR_INIT;
  LensTensor *expected = reference_run (path, input), *out;
  LensModel *model;
  LensExec *exec;

  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err) ==
      LENS_OK, "%s", err.message);
  ck_assert_msg (lens_exec_new (model, &exec, &err) == LENS_OK, "%s",
      err.message);
  ck_assert_msg (lens_exec_set_input (exec, 0, input, &err) == LENS_OK, "%s",
      err.message);
  /* the first run also packs constant weights, once */
  ck_assert_msg (lens_exec_run (exec, &err) == LENS_OK, "%s", err.message);
  for (int run = 0; run < 2; run++) {
    guint64 before = lens_context_enqueue_count (lens_exec_get_context (exec));
    guint64 made;

    ck_assert_msg (lens_exec_run (exec, &err) == LENS_OK, "%s", err.message);
    made = lens_context_enqueue_count (lens_exec_get_context (exec)) - before;
    ck_assert_msg (made == launches, "run %d: expected %" G_GUINT64_FORMAT
        " kernel launches (%s), got %" G_GUINT64_FORMAT, run, launches, why,
        made);
    ck_assert_msg (lens_exec_get_output (exec, 0, &out, &err) == LENS_OK,
        "%s", err.message);
    ck_assert_msg (lens_tensor_compare (out, expected, 1e-6, 1e-6, NULL,
            &err) == LENS_OK, "run %d (%s) vs reference: %s", run, why,
        err.message);
    lens_tensor_free (out);
  }
  lens_tensor_free (expected);
  lens_exec_free (exec);
  lens_tensor_free (input);
  lens_model_free (model);
  g_unlink (path);
  g_free (path);
}

/* Concat in place: on axis 1 of [1, n] tensors every input is one run of
 * the output. Relu, Sigmoid and the Slice write straight into it; the
 * second use of Relu's value (already placed) and Exp's (4 KiB + 12 bytes
 * in: no device aligns a sub-buffer there) are copied. 4 KiB runs keep the
 * others aligned on every device. */
START_TEST (test_concat_in_place)
{
  static const int64_t shape[2] = { 1, 1024 };
  static const int64_t starts[1] = { 0 }, ends[1] = { 3 }, axes[1] = { 1 };
  Builder *b = builder_new (13);
  Onnx__NodeProto *concat;
  char *path;

  add_input (b, "x", 2, shape, NULL);
  add_init_ints (b, "starts", 1, starts);
  add_init_ints (b, "ends", 1, ends);
  add_init_ints (b, "axes", 1, axes);
  add_node (b, "Relu", "x", "r");
  add_node (b, "Sigmoid", "x", "s");
  add_node (b, "Slice", "x,starts,ends,axes", "head");
  add_node (b, "Exp", "x", "e");
  concat = add_node (b, "Concat", "r,s,r,head,e", "y");
  add_attr_int (b, concat, "axis", 1);
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  /* four ops, two copies (five without placement) */
  check_runs (path, random_input (2, shape), 6, "3 Concat inputs in place");
}
END_TEST

/* YuNet's heads: a one-channel Conv -> Transpose (NCHW -> NHWC, moving
 * only the unit channel) -> Reshape -> Sigmoid as the graph output. The
 * Transpose is a view and the Sigmoid is fused into the Conv through the
 * views: one launch in all. @perm_moves_data: a Transpose that does move
 * elements (the channels of a two-channel Conv) instead, which stays a
 * copy and keeps its Sigmoid: three launches. */
static char *
build_head_model (gboolean perm_moves_data)
{
  static const int64_t x_shape[4] = { 1, 8, 7, 13 };
  static const int64_t w1[4] = { 1, 8, 1, 1 }, w2[4] = { 2, 8, 1, 1 };
  static const int64_t b1[1] = { 1 }, b2[1] = { 2 };
  static const int64_t nhwc[4] = { 0, 2, 3, 1 }, rows[3] = { 1, -1, 1 };
  Builder *b = builder_new (13);
  Onnx__NodeProto *n;
  char *path;

  add_input (b, "x", 4, x_shape, NULL);
  add_init (b, "w", 4, perm_moves_data ? w2 : w1, FALSE, 0.5f);
  add_init (b, "b", 1, perm_moves_data ? b2 : b1, FALSE, 0.1f);
  add_init_ints (b, "rows", 3, rows);
  add_node (b, "Conv", "x,w,b", "c");
  n = add_node (b, "Transpose", "c", "t");
  add_attr_ints (b, n, "perm", 4, nhwc);
  add_node (b, "Reshape", "t,rows", "r");
  add_node (b, "Sigmoid", "r", "y");
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  return path;
}

START_TEST (test_activation_through_views)
{
  static const int64_t x_shape[4] = { 1, 8, 7, 13 };
  LensError err = LENS_ERROR_INIT;
  char *path = build_head_model (FALSE);
  LensModel *model;

  /* the Conv's own output now holds activated values: not keepable */
  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (lens_model_keep_tensor (model, "c", &err) != LENS_OK,
      "keeping the Conv output a Sigmoid was fused into must fail");
  ck_assert_msg (strstr (err.message, "'c'") != NULL,
      "the error names the tensor: %s", err.message);
  lens_error_clear (&err);
  lens_model_free (model);

  check_runs (path, random_input (4, x_shape), 1,
      "Transpose of a unit dimension as a view, Sigmoid fused into Conv");
  check_runs (build_head_model (TRUE), random_input (4, x_shape), 3,
      "a Transpose that moves elements keeps its copy and its Sigmoid");
}
END_TEST

/* Slices as views: a Split, Slice or Gather whose outputs are contiguous
 * runs of a computed value at 4 KiB offsets (aligned on every device)
 * run nothing; their outputs are sub-buffers of the value's storage, and
 * a Concat of both halves of a Split, in order, places the whole value
 * (after Exp's, so the halves lie at offsets that add up).
 * Unaligned (Slice from element 3) and strided (Split on axis 1 of
 * [2, 1024]) ones still copy, as does a Concat of the halves swapped. */
START_TEST (test_slices_as_views)
{
  static const int64_t shape[2] = { 1, 2048 }, halves[2] = { 1024, 1024 };
  static const int64_t quarters[2] = { 512, 512 }, rows[2] = { 2, 1024 };
  static const int64_t one[1] = { 1 }, axis1[1] = { 1 };
  static const int64_t at3[1] = { 3 }, to1027[1] = { 1027 };
  static const int64_t at1024[1] = { 1024 }, to2048[1] = { 2048 };
  static const int64_t flat[2] = { 1, 1024 };
  static const char *concats[4][2] = {
    { "e,h0,h1", "c1" }, { "h1,h0", "c2" },
    { "c1,c2,ng,s,q1r,sg", "y" }, { NULL, NULL }
  };
  Builder *b = builder_new (13);
  Onnx__NodeProto *n;
  char *path;

  add_input (b, "x", 2, shape, NULL);
  add_init_ints (b, "halves", 2, halves);
  add_init_ints (b, "quarters", 2, quarters);
  add_init_ints (b, "rows", 2, rows);
  add_init_ints (b, "flat", 2, flat);
  add_init_ints (b, "one", 1, one);
  add_init_ints (b, "axis1", 1, axis1);
  add_init_ints (b, "at3", 1, at3);
  add_init_ints (b, "to1027", 1, to1027);
  add_init_ints (b, "at1024", 1, at1024);
  add_init_ints (b, "to2048", 1, to2048);
  add_node (b, "Relu", "x", "r");
  n = add_node (b, "Split", "r,halves", "h0,h1");
  add_attr_int (b, n, "axis", 1);
  add_node (b, "Exp", "x", "e");
  add_node (b, "Reshape", "r,rows", "rr");
  add_node (b, "Gather", "rr,one", "g");
  add_node (b, "Floor", "g", "ng");
  add_node (b, "Slice", "r,at3,to1027,axis1", "s");
  add_node (b, "Slice", "r,at1024,to2048,axis1", "sl");
  add_node (b, "Sigmoid", "sl", "sg");
  n = add_node (b, "Split", "rr,quarters", "q0,q1");
  add_attr_int (b, n, "axis", 1);
  add_node (b, "Reshape", "q1,flat", "q1r");
  for (int i = 0; concats[i][0] != NULL; i++) {
    n = add_node (b, "Concat", concats[i][0], concats[i][1]);
    add_attr_int (b, n, "axis", 1);
  }
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  /* Relu, Exp, Floor, Sigmoid, the Slice from 3 and the strided Split's
   * two copies; c1 takes nothing (r and e placed), c2 copies both halves,
   * y copies c1 and c2. The first Split, the Gather and the aligned Slice
   * are views: with copies they would add four. */
  check_runs (path, random_input (2, shape), 11, "3 steps as views");
}
END_TEST

typedef enum
{
  FOCUS_SLICES,                 /* one Slice per phase, axes 2, 3 */
  FOCUS_CHAINS,                 /* two per phase, as YOLOX exports them */
  FOCUS_PHASE_TWICE             /* (0, 0) twice, (1, 1) never */
} FocusGraph;

/* YOLOX's Focus stem on x [1, 3, 14, 10]: the four phases (dy, dx) of
 * every second row and column, joined on the channels in YOLOX's order
 * (0, 0), (1, 0), (0, 1), (1, 1), then a 3x3 pad-1 Conv 12 -> 5 with a
 * bias and a SiLU. FOCUS_SLICES slices both axes at once, up to ends equal
 * to the dimensions; FOCUS_CHAINS, with float16 weights, rows then
 * columns, axes -2 and -1, ends INT64_MAX. */
static char *
build_focus_model (FocusGraph graph)
{
  static const int64_t x_shape[4] = { 1, 3, 14, 10 };
  static const int64_t w[4] = { 5, 12, 3, 3 }, bias[1] = { 5 };
  static const int64_t pads[4] = { 1, 1, 1, 1 };
  static const int64_t hw_axes[2] = { 2, 3 }, hw_ends[2] = { 14, 10 };
  static const int64_t hw_steps[2] = { 2, 2 };
  static const int64_t h_axis[1] = { -2 }, w_axis[1] = { -1 };
  static const int64_t end[1] = { G_MAXINT64 }, two[1] = { 2 };
  static const int64_t phases[4][2] = { {0, 0}, {1, 0}, {0, 1}, {1, 1} };
  Builder *b = builder_new (13);
  Onnx__NodeProto *n;
  char *path;

  add_input (b, "x", 4, x_shape, NULL);
  add_init (b, "w", 4, w, graph == FOCUS_CHAINS, 0.5f);
  add_init (b, "b", 1, bias, graph == FOCUS_CHAINS, 0.1f);
  add_init_ints (b, "hw_axes", 2, hw_axes);
  add_init_ints (b, "hw_ends", 2, hw_ends);
  add_init_ints (b, "hw_steps", 2, hw_steps);
  add_init_ints (b, "h_axis", 1, h_axis);
  add_init_ints (b, "w_axis", 1, w_axis);
  add_init_ints (b, "end", 1, end);
  add_init_ints (b, "two", 1, two);
  for (int k = 0; k < 4; k++) {
    gboolean twice = graph == FOCUS_PHASE_TWICE && k == 3;
    int64_t dy = twice ? 0 : phases[k][0], dx = twice ? 0 : phases[k][1];
    int64_t start[2] = { dy, dx };
    char *start_name = g_strdup_printf ("start%d", k);
    char *dy_name = g_strdup_printf ("dy%d", k);
    char *dx_name = g_strdup_printf ("dx%d", k);
    char *rows = g_strdup_printf ("rows%d", k);
    char *part = g_strdup_printf ("p%d", k);
    char *inputs;

    add_init_ints (b, start_name, 2, start);
    add_init_ints (b, dy_name, 1, &dy);
    add_init_ints (b, dx_name, 1, &dx);
    if (graph == FOCUS_CHAINS) {
      inputs = g_strdup_printf ("x,%s,end,h_axis,two", dy_name);
      add_node (b, "Slice", inputs, rows);
      g_free (inputs);
      inputs = g_strdup_printf ("%s,%s,end,w_axis,two", rows, dx_name);
    } else {
      inputs = g_strdup_printf ("x,%s,hw_ends,hw_axes,hw_steps", start_name);
    }
    add_node (b, "Slice", inputs, part);
    g_free (inputs);
    g_free (start_name);
    g_free (dy_name);
    g_free (dx_name);
    g_free (rows);
    g_free (part);
  }
  n = add_node (b, "Concat", "p0,p1,p2,p3", "cat");
  add_attr_int (b, n, "axis", 1);
  n = add_node (b, "Conv", "cat,w,b", "c");
  add_attr_ints (b, n, "pads", 4, pads);
  add_node (b, "Sigmoid", "c", "s");
  add_node (b, "Mul", "c,s", "y");
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  return path;
}

/* Loads @graph, expects @n_nodes steps left to run and compares the
 * result with the node-by-node reference, which slices and concatenates:
 * the 6x6 Conv's weights must be W3's taps at their phases (the sums are
 * the same, in another order). */
static void
check_focus (FocusGraph graph, int n_nodes, const char *what)
{
  static const int64_t x_shape[4] = { 1, 3, 14, 10 };
  LensError err = LENS_ERROR_INIT;
  char *path = build_focus_model (graph);
  LensModel *model;

  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err) == LENS_OK, "%s: %s", what, err.message);
  ck_assert_msg (lens_model_n_nodes (model) == n_nodes,
      "%s: expected %d nodes after the rewrites, got %d", what, n_nodes,
      lens_model_n_nodes (model));
  check_against_reference (model, path, random_input (4, x_shape), 1e-5,
      what);
}

/* The Focus stem becomes one 6x6 stride-2 Conv with the SiLU fused (its
 * Slices and Concat gone); not where a phase repeats, which the Conv on x
 * could not express. */
START_TEST (test_focus_as_one_conv)
{
  check_focus (FOCUS_SLICES, 1, "four Slices of both axes");
  check_focus (FOCUS_CHAINS, 1, "four chains of a row and a column Slice");
  /* 4 Slices, the Concat and the Conv (the SiLU fused) */
  check_focus (FOCUS_PHASE_TWICE, 6, "a phase twice");
}
END_TEST

typedef enum
{
  PAD_ZEROS,                    /* no constant_value: zeros */
  PAD_EXPLICIT_ZERO,            /* constant_value 0 */
  PAD_NONZERO,                  /* constant_value sin (0.3) */
  PAD_CHANNELS                  /* zeros, also on the channel axis */
} PadGraph;

/* x [1, 5, 13, 9] padded (rows 1 before, 3 after; columns 2 before,
 * none after; for PAD_CHANNELS one channel after too), then a 3x3
 * stride-2 AveragePool. */
static char *
build_pad_pool_model (PadGraph graph)
{
  static const int64_t x_shape[4] = { 1, 5, 13, 9 };
  static const int64_t kernel[2] = { 3, 3 }, strides[2] = { 2, 2 };
  int64_t pads[8] = { 0, 0, 1, 2, 0, 0, 3, 0 };
  Builder *b = builder_new (13);
  Onnx__NodeProto *n;
  char *path;

  if (graph == PAD_CHANNELS)
    pads[5] = 1;
  add_input (b, "x", 4, x_shape, NULL);
  add_init_ints (b, "pads", 8, pads);
  if (graph == PAD_EXPLICIT_ZERO || graph == PAD_NONZERO)
    add_init (b, "value", 0, NULL, FALSE, graph == PAD_NONZERO ? 1.0f : 0.0f);
  add_node (b, "Pad", graph == PAD_EXPLICIT_ZERO || graph == PAD_NONZERO ?
      "x,pads,value" : "x,pads", "p");
  n = add_node (b, "AveragePool", "p", "y");
  add_attr_ints (b, n, "kernel_shape", 2, kernel);
  add_attr_ints (b, n, "strides", 2, strides);
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  return path;
}

/* A Pad of zeros on the rows and columns folds into the AveragePool that
 * reads it (its pads, counted in the divisor); a Pad of another value,
 * or of the channels, stays. Each against the node-by-node reference. */
START_TEST (test_pad_into_average_pool)
{
  static const struct
  {
    PadGraph graph;
    int n_nodes;
    const char *what;
  } cases[] = {
    {PAD_ZEROS, 1, "a Pad of zeros"},
    {PAD_EXPLICIT_ZERO, 1, "a Pad of an explicit 0"},
    {PAD_NONZERO, 2, "a Pad of another value"},
    {PAD_CHANNELS, 2, "a Pad of the channels too"},
  };
  static const int64_t x_shape[4] = { 1, 5, 13, 9 };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    LensError err = LENS_ERROR_INIT;
    char *path = build_pad_pool_model (cases[i].graph);
    LensModel *model;

    ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
            &err) == LENS_OK, "%s: %s", cases[i].what, err.message);
    ck_assert_msg (lens_model_n_nodes (model) == cases[i].n_nodes,
        "%s: expected %d nodes after the rewrites, got %d", cases[i].what,
        cases[i].n_nodes, lens_model_n_nodes (model));
    check_against_reference (model, path, random_input (4, x_shape), 1e-5,
        cases[i].what);
  }
}
END_TEST

/* A ConvInteger of quantized @q (zero point @z, scale @xs) by int8
 * weights @w (scale @ws) with its dequantization, Cast, Mul, Add of @bias
 * [, Sigmoid, Mul], into @y: what the epilogue rewrite fuses. */
static void
add_quantized_conv (Builder * b, const char *q, const char *z,
    const char *xs, const char *w, const char *ws, const char *bias,
    gboolean silu, const char *y)
{
  char *inputs = g_strdup_printf ("%s,%s,%s", q, w, z);
  char *scales = g_strdup_printf ("%s,%s", xs, ws);
  char *s = g_strdup_printf ("%s_s", y), *acc = g_strdup_printf ("%s_acc", y);
  char *f = g_strdup_printf ("%s_f", y), *m = g_strdup_printf ("%s_m", y);
  char *d = g_strdup_printf ("%s_d", y), *g = g_strdup_printf ("%s_g", y);
  char *fs = g_strdup_printf ("%s,%s", f, s);
  char *mb = g_strdup_printf ("%s,%s", m, bias);
  char *dg = g_strdup_printf ("%s,%s", d, g);
  Onnx__NodeProto *n;

  add_node (b, "Mul", scales, s);
  add_node (b, "ConvInteger", inputs, acc);
  n = add_node (b, "Cast", acc, f);
  add_attr_int (b, n, "to", LENS_DTYPE_FLOAT);
  add_node (b, "Mul", fs, m);
  add_node (b, "Add", mb, silu ? d : y);
  if (silu) {
    add_node (b, "Sigmoid", d, g);
    add_node (b, "Mul", dg, y);
  }
  g_free (inputs);
  g_free (scales);
  g_free (s);
  g_free (acc);
  g_free (f);
  g_free (m);
  g_free (d);
  g_free (g);
  g_free (fs);
  g_free (mb);
  g_free (dg);
}

/* Quantizers after ConvIntegers: c1 = Concat (a0, a1, b), a's halves and
 * b, whose range they find as they store it, and c2 = Concat (a, Relu
 * (b)), which its quantizer still reduces itself (the Relu finds no
 * range); y = yc + yd, a residual Add after yd's ConvInteger. */
static char *
build_quantizer_range_model (const int64_t * x_shape)
{
  static const int64_t w8[4] = { 8, 4, 1, 1 }, w16[4] = { 6, 16, 1, 1 };
  static const int64_t b8[4] = { 1, 8, 1, 1 }, b6[4] = { 1, 6, 1, 1 };
  static const int64_t halves[2] = { 4, 4 };
  Builder *b = builder_new (13);
  Onnx__NodeProto *n;
  char *path;

  add_input (b, "x", 4, x_shape, NULL);
  add_init_bytes (b, "wa", 4, w8, LENS_DTYPE_INT8);
  add_init_bytes (b, "wb", 4, w8, LENS_DTYPE_INT8);
  add_init_bytes (b, "wc", 4, w16, LENS_DTYPE_INT8);
  add_init_bytes (b, "wd", 4, w16, LENS_DTYPE_INT8);
  add_init (b, "ws", 0, NULL, FALSE, 0.01f);
  add_init (b, "ba", 4, b8, FALSE, 0.5f);
  add_init (b, "bb", 4, b8, FALSE, -3.0f);
  add_init (b, "bc", 4, b6, FALSE, 0.2f);
  add_init (b, "bd", 4, b6, FALSE, -0.2f);
  add_node (b, "DynamicQuantizeLinear", "x", "q0,s0,z0");
  add_quantized_conv (b, "q0", "z0", "s0", "wa", "ws", "ba", TRUE, "a");
  add_quantized_conv (b, "q0", "z0", "s0", "wb", "ws", "bb", FALSE, "b");
  add_init_ints (b, "halves", 2, halves);
  n = add_node (b, "Split", "a,halves", "a0,a1");
  add_attr_int (b, n, "axis", 1);
  n = add_node (b, "Concat", "a0,a1,b", "c1");
  add_attr_int (b, n, "axis", 1);
  add_node (b, "Relu", "b", "r");
  n = add_node (b, "Concat", "a,r", "c2");
  add_attr_int (b, n, "axis", 1);
  add_node (b, "DynamicQuantizeLinear", "c1", "q1,s1,z1");
  add_node (b, "DynamicQuantizeLinear", "c2", "q2,s2,z2");
  add_quantized_conv (b, "q1", "z1", "s1", "wc", "ws", "bc", TRUE, "yc");
  add_quantized_conv (b, "q2", "z2", "s2", "wd", "ws", "bd", FALSE, "yd");
  add_node (b, "Add", "yc,yd", "y");
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  return path;
}

/* A DynamicQuantizeLinear of a ConvInteger's output, or of a Concat of
 * such outputs, takes the range the ConvIntegers found as they stored it:
 * one launch instead of two, bit for bit the reference's result. */
START_TEST (test_quantizer_range_from_producers)
{
  static const int64_t x_shape[4] = { 1, 4, 16, 16 };
  char *path = build_quantizer_range_model (x_shape);

  /* x's quantizer 2 (x is the input), the four flat 1x1 ConvIntegers, c1's
   * quantizer 1, Relu, c2's Concat copying a (placed in c1) 1, c2's
   * quantizer 2: 11. c1's quantizer would add one, and so would the last
   * Add, which yd's ConvInteger does as it stores (yc, its residual, is
   * ready before it; yc's ConvInteger runs before yd exists) */
  check_runs (path, random_input (4, x_shape), 11,
      "c1's quantizer on the ConvIntegers' range, the Add fused");
}
END_TEST

/* The ranges start empty in every run: after a run on 100 x, whose ranges
 * are wider, a run on x gives the reference's result for x. */
START_TEST (test_quantizer_ranges_reset)
{
  static const int64_t x_shape[4] = { 1, 4, 16, 16 };
  LensError err = LENS_ERROR_INIT;
  char *path = build_quantizer_range_model (x_shape);
  LensTensor *input = random_input (4, x_shape);
  LensTensor *wide = random_input (4, x_shape);
  LensTensor *expected = reference_run (path, input), *out;
  LensModel *model;
  LensExec *exec;

  for (int64_t i = 0; i < lens_tensor_numel (wide); i++)
    ((float *) wide->host)[i] *= 100.0f;
  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (lens_exec_new (model, &exec, &err) == LENS_OK, "%s",
      err.message);
  ck_assert (lens_exec_set_input (exec, 0, wide, &err) == LENS_OK);
  ck_assert_msg (lens_exec_run (exec, &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_exec_set_input (exec, 0, input, &err) == LENS_OK);
  ck_assert_msg (lens_exec_run (exec, &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_exec_get_output (exec, 0, &out, &err) == LENS_OK);
  ck_assert_msg (lens_tensor_compare (out, expected, 0, 0, NULL, &err) ==
      LENS_OK, "second run, on a narrower input, vs reference: %s",
      err.message);
  lens_tensor_free (out);
  lens_tensor_free (expected);
  lens_tensor_free (wide);
  lens_tensor_free (input);
  lens_exec_free (exec);
  lens_model_free (model);
  g_unlink (path);
  g_free (path);
}
END_TEST

/* A float16 input gets what a float16 runtime would receive, however it
 * was written: here straight into the device tensor, as pre-processing
 * does. y = x - floor (x) on x = 1 + 2^-11 + 2^-12: rounded to float16,
 * x is 1 + 2^-10, so y is 2^-10, not 2^-11 + 2^-12. */
START_TEST (test_float16_input_rounded)
{
  static const int64_t shape[1] = { 1 };
  LensError err = LENS_ERROR_INIT;
  Builder *b = builder_new (13);
  float x = 1.0f + 1.0f / 2048 + 1.0f / 4096;
  LensTensor *host = lens_tensor_new_host (LENS_DTYPE_FLOAT, 1, shape, &x);
  LensTensor *out;
  LensModel *model;
  LensExec *exec;
  LensTensor *in;
  char *path;

  g_ptr_array_add (b->inputs, value_info (b, "x", LENS_DTYPE_FLOAT16, 1,
          shape, NULL));
  add_node (b, "Floor", "x", "f");
  add_node (b, "Sub", "x,f", "y");
  g_ptr_array_add (b->outputs, value_info (b, "y", LENS_DTYPE_FLOAT16, 1,
          shape, NULL));
  path = builder_save (b);
  builder_free (b);
  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_exec_new (model, &exec, &err) == LENS_OK);
  in = lens_exec_input (exec, 0);
  ck_assert_int_eq (in->dtype, LENS_DTYPE_FLOAT);
  ck_assert (clEnqueueWriteBuffer (lens_context_get_queue
          (lens_exec_get_context (exec)), in->buffer, CL_TRUE, 0,
          sizeof x, &x, 0, NULL, NULL) == CL_SUCCESS);
  ck_assert_msg (lens_exec_run (exec, &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_exec_get_output (exec, 0, &out, &err) == LENS_OK);
  ck_assert_int_eq (out->dtype, LENS_DTYPE_FLOAT16);
  ck_assert_msg (((uint16_t *) out->host)[0] == lens_float_to_half (1.0f /
          1024), "expected 2^-10 (the input rounded to float16), got %g",
      lens_half_to_float (((uint16_t *) out->host)[0]));
  lens_tensor_free (out);
  lens_tensor_free (host);
  lens_exec_free (exec);
  lens_model_free (model);
  g_unlink (path);
  g_free (path);
}
END_TEST

/* The device's rounding of a float16 input, vector lanes and the tail
 * past the last whole vector alike, matches lens_float_to_half on the
 * awkward cases: ties either way, subnormals and their ties, the largest
 * finite value and what overflows, infinities, NaN, signed zeros. A Cast
 * to float32 hands the rounded values out as they are (a float16 output
 * would be rounded again on the host, hiding a wrong first rounding). */
START_TEST (test_float16_input_rounding_cases)
{
  static const float cases[] = {
    1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 1.0f + 1.0f / 2048 + 1e-7f,
    -2.5f - 1.0f / 1024, 0x1p-25f, 0x3p-25f, 0x1p-26f, 0x1.8p-24f,
    0x1.0002p-25f, -0x1.0002p-25f,
    0x1.ffcp-15f, 0x1.fffp-15f, 0x1p-14f, 0x1.0028p-14f, 65504.0f, 65519.0f,
    65520.0f, -65520.0f, 1e10f, 1e-10f, 0.0f, -0.0f, 0.1f, -0.3f, 1234.567f,
    7.0f / 3,
  };
  enum
  { N = 53 };                   /* three float16 vectors and a tail of 5 */
  int64_t shape[1] = { N };
  float x[N];
  LensError err = LENS_ERROR_INIT;
  Builder *b = builder_new (13);
  LensTensor *out;
  LensModel *model;
  LensExec *exec;
  char *path;

  for (int i = 0; i < N; i++)
    x[i] = cases[i % G_N_ELEMENTS (cases)];
  x[7] = x[N - 3] = INFINITY;
  x[8] = x[N - 2] = NAN;
  x[N - 4] = -INFINITY;         /* x[N - 1], 1 + 2^-11, rounds to 1 */
  g_ptr_array_add (b->inputs, value_info (b, "x", LENS_DTYPE_FLOAT16, 1,
          shape, NULL));
  add_attr_int (b, add_node (b, "Cast", "x", "y"), "to", LENS_DTYPE_FLOAT);
  g_ptr_array_add (b->outputs, value_info (b, "y", LENS_DTYPE_FLOAT, 1,
          shape, NULL));
  path = builder_save (b);
  builder_free (b);
  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_exec_new (model, &exec, &err) == LENS_OK);
  ck_assert (clEnqueueWriteBuffer (lens_context_get_queue
          (lens_exec_get_context (exec)), lens_exec_input (exec, 0)->buffer,
          CL_TRUE, 0, sizeof x, x, 0, NULL, NULL) == CL_SUCCESS);
  ck_assert_msg (lens_exec_run (exec, &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_exec_get_output (exec, 0, &out, &err) == LENS_OK);
  for (int i = 0; i < N; i++) {
    float got = ((float *) out->host)[i];
    float want = lens_half_to_float (lens_float_to_half (x[i]));

    if (isnan (x[i]))
      ck_assert_msg (isnan (got), "element %d: expected NaN, got %a", i, got);
    else
      ck_assert_msg (memcmp (&got, &want, sizeof got) == 0, "element %d: "
          "x = %a: expected x rounded to float16, %a, got %a", i, x[i], want,
          got);
  }
  lens_tensor_free (out);
  lens_exec_free (exec);
  lens_model_free (model);
  g_unlink (path);
  g_free (path);
}
END_TEST

/* lens_exec_run leaves every output on the host, fresh after each run:
 * a computed one, a float16 one and one folded to a constant at load */
START_TEST (test_outputs_on_host_after_run)
{
  static const int64_t shape[2] = { 2, 3 };
  LensError err = LENS_ERROR_INIT;
  Builder *b = builder_new (13);
  LensModel *model;
  LensExec *exec;
  char *path;

  add_input (b, "x", 2, shape, NULL);
  add_init (b, "w", 2, shape, FALSE, 2.0f);
  add_node (b, "Relu", "x", "y");
  add_node (b, "Floor", "x", "h");
  add_node (b, "Relu", "w", "c");
  add_output (b, "y");
  g_ptr_array_add (b->outputs, value_info (b, "h", LENS_DTYPE_FLOAT16, 2,
          shape, NULL));
  add_output (b, "c");
  path = builder_save (b);
  builder_free (b);
  ck_assert_msg (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_exec_new (model, &exec, &err) == LENS_OK);
  for (int run = 0; run < 2; run++) {
    float x[6];
    LensTensor *in, *copy;
    const LensTensor *y, *h, *c;

    for (int k = 0; k < 6; k++)
      x[k] = (k - 2.5f) * (run ? -1.5f : 0.5f);
    in = lens_tensor_new_host (LENS_DTYPE_FLOAT, 2, shape, x);
    ck_assert (lens_exec_set_input (exec, 0, in, &err) == LENS_OK);
    ck_assert_msg (lens_exec_run (exec, &err) == LENS_OK, "%s", err.message);
    y = lens_exec_output (exec, 0);
    h = lens_exec_output (exec, 1);
    c = lens_exec_output (exec, 2);
    ck_assert_int_eq (h->dtype, LENS_DTYPE_FLOAT16);
    for (int k = 0; k < 6; k++) {
      float w = 2.0f * (float) sin (0.7 * k + 0.3);
      ck_assert_msg (((float *) y->host)[k] == MAX (x[k], 0.0f),
          "run %d: y[%d] should be %g, got %g", run, k, MAX (x[k], 0.0f),
          ((float *) y->host)[k]);
      ck_assert_msg (((uint16_t *) h->host)[k] == lens_float_to_half (floorf (x[k])),
          "run %d: h[%d] should be %g, got %g", run, k, floorf (x[k]),
          lens_half_to_float (((uint16_t *) h->host)[k]));
      ck_assert_msg (((float *) c->host)[k] == MAX (w, 0.0f),
          "run %d: c[%d] should be %g, got %g", run, k, MAX (w, 0.0f),
          ((float *) c->host)[k]);
    }
    ck_assert (lens_exec_get_output (exec, 0, &copy, &err) == LENS_OK);
    ck_assert_msg (copy->host != y->host && memcmp (copy->host, y->host,
            lens_tensor_nbytes (y)) == 0,
        "lens_exec_get_output should return its own copy of the output");
    lens_tensor_free (copy);
    lens_tensor_free (in);
  }
  lens_exec_free (exec);
  lens_model_free (model);
  g_unlink (path);
  g_free (path);
}
END_TEST

/* ---- bad input ---- */

START_TEST (test_missing_file)
{
  LensError err = LENS_ERROR_INIT;
  LensModel *model;

  ck_assert_int_eq (lens_model_load (lens_check_ctx, "/nonexistent/m.onnx", 0, NULL,
          &model, &err), LENS_ERROR_IO);
  ck_assert_msg (strstr (err.message, "/nonexistent/m.onnx") != NULL
      && strchr (err.message, '\n') == NULL,
      "one line naming the file: %s", err.message);
  lens_error_clear (&err);
}
END_TEST

START_TEST (test_not_onnx)
{
  LensError err = LENS_ERROR_INIT;
  LensModel *model;
  char *path = NULL;
  int fd = g_file_open_tmp ("lens-executor-XXXXXX.onnx", &path, NULL);

  close (fd);
  g_file_set_contents (path, "GIF89a not a model at all \xff\xfe", -1, NULL);
  ck_assert_int_eq (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err),
      LENS_ERROR_PARSE);
  ck_assert_msg (strstr (err.message, path) != NULL
      && strstr (err.message, "not an ONNX model") != NULL,
      "message should name the file and the problem: %s", err.message);
  lens_error_clear (&err);
  g_unlink (path);
  g_free (path);
}
END_TEST

START_TEST (test_truncated)
{
  LensError err = LENS_ERROR_INIT;
  char *path = build_fusion_model (FALSE, NULL);
  LensModel *model;
  char *data;
  gsize len;

  ck_assert (g_file_get_contents (path, &data, &len, NULL));
  /* every cut must be refused cleanly, never crash */
  for (gsize cut = 1; cut < len; cut += 1 + cut / 4) {
    LensStatus st;
    g_file_set_contents (path, data, (gssize) cut, NULL);
    st = lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err);
    if (st == LENS_OK) {
      lens_model_free (model);
      continue;                 /* a cut at a message boundary can parse */
    }
    ck_assert_msg (err.message != NULL && strstr (err.message, path) != NULL,
        "cut at %zu: message should name the file: %s", cut, err.message);
    lens_error_clear (&err);
  }
  g_free (data);
  g_unlink (path);
  g_free (path);
}
END_TEST

START_TEST (test_unsupported_op)
{
  static const int64_t shape[2] = { 2, 3 };
  LensError err = LENS_ERROR_INIT;
  Builder *b = builder_new (17);
  LensModel *model;
  char *path;

  add_input (b, "x", 2, shape, NULL);
  add_node (b, "Relu", "x", "r");
  add_node (b, "LpNormalization", "r", "y");
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  ck_assert_int_eq (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err),
      LENS_ERROR_UNSUPPORTED_OP);
  ck_assert_msg (strstr (err.message, path) != NULL
      && strstr (err.message, "'y'") != NULL
      && strstr (err.message, "LpNormalization") != NULL
      && strstr (err.message, "opset 17") != NULL,
      "message should name file, node, op and opset: %s", err.message);
  lens_error_clear (&err);
  g_unlink (path);
  g_free (path);
}
END_TEST

START_TEST (test_too_new_opset)
{
  static const int64_t shape[2] = { 2, 3 };
  LensError err = LENS_ERROR_INIT;
  Builder *b = builder_new (22);
  LensModel *model;
  char *path;

  add_input (b, "x", 2, shape, NULL);
  add_node (b, "Relu", "x", "y");
  add_output (b, "y");
  path = builder_save (b);
  builder_free (b);
  ck_assert_int_eq (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err), LENS_ERROR_UNSUPPORTED);
  ck_assert_msg (strstr (err.message, "opset 22") != NULL
      && strstr (err.message, "up to 21") != NULL,
      "message should name the opset and the newest supported: %s",
      err.message);
  lens_error_clear (&err);
  g_unlink (path);
  g_free (path);
}
END_TEST

START_TEST (test_wrong_input_rank_and_type)
{
  static const int64_t x_shape[4] = { 1, 3, 13, 13 }, bad[3] = { 3, 13, 13 };
  LensError err = LENS_ERROR_INIT;
  char *path = build_fusion_model (FALSE, NULL);
  LensTensor *wrong_rank = random_input (3, bad);
  LensTensor *wrong_type = lens_tensor_new_host (LENS_DTYPE_INT32, 4,
      x_shape, NULL);
  LensModel *model;
  LensExec *exec;

  ck_assert (lens_model_load (lens_check_ctx, path, 0, NULL, &model, &err) == LENS_OK);
  ck_assert (lens_exec_new (model, &exec, &err) == LENS_OK);
  ck_assert_int_eq (lens_exec_set_input (exec, 0, wrong_rank, &err),
      LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "'x'") != NULL
      && strstr (err.message, "[1,3,13,13] float32") != NULL
      && strstr (err.message, "[3,13,13]") != NULL,
      "message should name the tensor, expected and given: %s", err.message);
  lens_error_clear (&err);
  ck_assert_int_eq (lens_exec_set_input (exec, 0, wrong_type, &err),
      LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "int32") != NULL,
      "message should name the type given: %s", err.message);
  lens_error_clear (&err);
  lens_exec_free (exec);
  lens_model_free (model);
  /* and a wrong-rank shape at load time */
  ck_assert_int_eq (lens_model_load (lens_check_ctx, path, 3, bad, &model, &err),
      LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "rank") != NULL, "%s", err.message);
  lens_error_clear (&err);
  lens_tensor_free (wrong_rank);
  lens_tensor_free (wrong_type);
  g_unlink (path);
  g_free (path);
}
END_TEST

/* ---- loader limits: allocation bombs refused by size, with a message ---- */

/* An initializer of @dtype and @shape declaring its values in the typed
 * fields, with none there: only the declared size can be checked. */
static Onnx__TensorProto *
add_init_declared (Builder * b, const char *name, LensDType dtype, int ndim,
    const int64_t *shape)
{
  Onnx__TensorProto *t = keep (b, g_new0 (Onnx__TensorProto, 1), NULL);

  onnx__tensor_proto__init (t);
  t->name = keep (b, g_strdup (name), NULL);
  t->n_dims = ndim;
  t->dims = keep (b, g_memdup2 (shape, sizeof (int64_t) * MAX (ndim, 1)),
      NULL);
  t->has_data_type = TRUE;
  t->data_type = dtype;
  g_ptr_array_add (b->inits, t);
  return t;
}

/* Loads @b's model from memory without a device (nothing is uploaded),
 * expecting @code and a one-line message holding every string of
 * @needles (NULL-terminated). */
static void
expect_refused (Builder * b, LensStatus code, const char *const *needles)
{
  LensError err = LENS_ERROR_INIT;
  LensModel *model = NULL;
  char *path = builder_save (b);
  char *data;
  gsize len;

  ck_assert (g_file_get_contents (path, &data, &len, NULL));
  ck_assert_int_eq (lens_model_load_data (NULL, "bomb.onnx", data, len, 0,
          NULL, &model, &err), code);
  ck_assert (model == NULL);
  ck_assert_msg (err.message != NULL && strchr (err.message, '\n') == NULL,
      "one line expected: %s", err.message);
  for (const char *const *n = needles; *n != NULL; n++)
    ck_assert_msg (strstr (err.message, *n) != NULL,
        "message should contain \"%s\": %s", *n, err.message);
  /* from the file, through the device context, the same refusal */
  lens_error_clear (&err);
  ck_assert_int_eq (lens_model_load (lens_check_ctx, path, 0, NULL, &model,
          &err), code);
  ck_assert_msg (strstr (err.message, path) != NULL,
      "message should name the file: %s", err.message);
  lens_error_clear (&err);
  g_free (data);
  g_unlink (path);
  g_free (path);
}

static void
limits_teardown (void)
{
  /* tests that lower a limit put the defaults back */
  lens_loader_limits.max_model_bytes = LENS_MAX_MODEL_BYTES;
  lens_loader_limits.max_nodes = LENS_MAX_NODES;
  lens_loader_limits.max_tensor_bytes = LENS_MAX_TENSOR_BYTES;
  lens_loader_limits.max_weight_bytes = LENS_MAX_WEIGHT_BYTES;
  lens_check_teardown ();
}

START_TEST (test_limit_tensor_bytes)
{
  /* 2^20 x 2^20 float32: 4 TiB declared by a few bytes of file */
  static const int64_t huge[2] = { 1 << 20, 1 << 20 };
  static const char *const needles[] = { "'w'", "limit of 2 GiB per tensor",
    NULL
  };
  static const int64_t shape[2] = { 2, 3 };
  Builder *b = builder_new (13);

  add_input (b, "x", 2, shape, NULL);
  add_init_declared (b, "w", LENS_DTYPE_FLOAT, 2, huge);
  add_node (b, "Add", "x,w", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_element_count_overflow)
{
  /* the element count overflows int64: never wraps to a small buffer */
  static const int64_t huge[4] = { (int64_t) 1 << 40, (int64_t) 1 << 40,
    (int64_t) 1 << 40, 3
  };
  static const char *const needles[] = { "'w'", "over the limit", NULL };
  static const int64_t shape[2] = { 2, 3 };
  Builder *b = builder_new (13);

  add_input (b, "x", 2, shape, NULL);
  add_init_declared (b, "w", LENS_DTYPE_INT8, 4, huge);
  add_node (b, "Add", "x,w", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_negative_dim)
{
  static const int64_t bad[2] = { 4, -3 };
  static const char *const needles[] = { "'w'", "dimension 1 is negative",
    NULL
  };
  static const int64_t shape[2] = { 2, 3 };
  Builder *b = builder_new (13);

  add_input (b, "x", 2, shape, NULL);
  add_init_declared (b, "w", LENS_DTYPE_FLOAT, 2, bad);
  add_node (b, "Add", "x,w", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_PARSE, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_too_many_dims)
{
  static const int64_t nine[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
  static const char *const needles[] = { "'w'", "9 dimensions",
    "at most 8", NULL
  };
  static const int64_t shape[2] = { 2, 3 };
  Builder *b = builder_new (13);

  add_input (b, "x", 2, shape, NULL);
  add_init (b, "w", 9, nine, FALSE, 1.0f);
  add_node (b, "Add", "x,w", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_UNSUPPORTED, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_raw_data_length)
{
  /* [2, 3] float32 needs 24 bytes; the file holds 20 */
  static const int64_t shape[2] = { 2, 3 };
  static const char *const needles[] = { "'w'", "raw_data holds 20 bytes",
    "needs 24", NULL
  };
  Builder *b = builder_new (13);
  Onnx__TensorProto *w;

  add_input (b, "x", 2, shape, NULL);
  w = add_init_declared (b, "w", LENS_DTYPE_FLOAT, 2, shape);
  w->has_raw_data = TRUE;
  w->raw_data.len = 20;
  w->raw_data.data = keep (b, g_malloc0 (20), NULL);
  add_node (b, "Add", "x,w", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_PARSE, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_typed_data_count)
{
  static const int64_t shape[2] = { 2, 3 };
  static const char *const needles[] = { "'w'", "holds 0 values",
    "needs 6", NULL
  };
  Builder *b = builder_new (13);

  add_input (b, "x", 2, shape, NULL);
  add_init_declared (b, "w", LENS_DTYPE_FLOAT, 2, shape);
  add_node (b, "Add", "x,w", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_PARSE, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_total_weights)
{
  /* two 600-byte initializers under a 1000-byte total: the second one is
   * named (the limit is lowered: 2 GiB of real weights is no unit test) */
  static const int64_t w_shape[1] = { 150 };
  static const int64_t shape[1] = { 150 };
  static const char *const needles[] = { "'w2'", "weights",
    "limit of 1000 bytes", NULL
  };
  Builder *b = builder_new (13);

  lens_loader_limits.max_weight_bytes = 1000;
  add_input (b, "x", 1, shape, NULL);
  add_init (b, "w1", 1, w_shape, FALSE, 1.0f);
  add_init (b, "w2", 1, w_shape, FALSE, 1.0f);
  add_node (b, "Add", "x,w1", "a");
  add_node (b, "Add", "a,w2", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_constant_weights)
{
  /* Constant nodes' tensors count as weights too */
  static const int64_t w_shape[1] = { 300 };
  static const int64_t shape[1] = { 300 };
  static const char *const needles[] = { "weights", "limit of 1000 bytes",
    NULL
  };
  Builder *b = builder_new (13);
  Onnx__NodeProto *c = add_node (b, "Constant", "", "k");
  Onnx__AttributeProto *a = keep (b, g_new0 (Onnx__AttributeProto, 1), NULL);
  Onnx__TensorProto *t;

  lens_loader_limits.max_weight_bytes = 1000;
  /* the initializer list holds the tensor only to build it: moved to the
   * attribute */
  add_init (b, "k", 1, w_shape, FALSE, 1.0f);
  t = g_ptr_array_steal_index (b->inits, 0);
  c->n_input = 0;
  onnx__attribute_proto__init (a);
  a->name = (char *) "value";
  a->has_type = TRUE;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
  a->t = t;
  c->attribute = keep (b, g_new0 (Onnx__AttributeProto *, 1), NULL);
  c->attribute[0] = a;
  c->n_attribute = 1;
  add_input (b, "x", 1, shape, NULL);
  add_node (b, "Add", "x,k", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_node_count)
{
  /* LENS_MAX_NODES + 1 Relus: refused by count before any is built */
  static const int64_t shape[1] = { 4 };
  static const char *const needles[] = { "100001 nodes",
    "limit of 100000 nodes", NULL
  };
  Builder *b = builder_new (13);
  char prev[32] = "x", next[32];

  add_input (b, "x", 1, shape, NULL);
  for (int i = 0; i <= LENS_MAX_NODES; i++) {
    g_snprintf (next, sizeof next, "r%d", i);
    add_node (b, "Relu", prev, next);
    strcpy (prev, next);
  }
  add_output (b, prev);
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_model_bytes)
{
  static const int64_t shape[1] = { 4 };
  static const char *const needles[] = { "bytes", "over the limit of 100 "
        "bytes for a model", NULL
  };
  static const int64_t w_shape[1] = { 64 };
  Builder *b = builder_new (13);

  lens_loader_limits.max_model_bytes = 100;
  add_input (b, "x", 1, shape, NULL);
  add_init (b, "w", 1, w_shape, FALSE, 1.0f);
  add_node (b, "Relu", "x", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_input_shape)
{
  /* a declared input of 2^31 x 2^31 float32 */
  static const int64_t huge[2] = { (int64_t) 1 << 31, (int64_t) 1 << 31 };
  static const char *const needles[] = { "graph input", "'x'",
    "limit of 2 GiB per tensor", NULL
  };
  Builder *b = builder_new (13);

  add_input (b, "x", 2, huge, NULL);
  add_node (b, "Relu", "x", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_folded_constant_of_shape)
{
  /* ConstantOfShape folded at load time from a shape in the file:
   * [100000, 100000, 100] float32 is refused, not allocated */
  static const int64_t dims[3] = { 100000, 100000, 100 };
  static const int64_t shape[1] = { 1 };
  static const char *const needles[] = { "ConstantOfShape", "limit", NULL };
  Builder *b = builder_new (13);

  add_input (b, "x", 1, shape, NULL);
  add_init_ints (b, "dims", 3, dims);
  add_node (b, "ConstantOfShape", "dims", "big");
  add_node (b, "Add", "x,big", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_limit_computed_value)
{
  /* a value computed per inference (not folded) over the limit: a Tile
   * of the input by a constant repeat count */
  static const int64_t shape[2] = { 1024, 1024 };
  static const int64_t reps[2] = { 1024, 1024 };
  static const char *const needles[] = { "node 'y' (Tile)", "'y'",
    "limit of 2 GiB per tensor", NULL
  };
  Builder *b = builder_new (13);

  add_input (b, "x", 2, shape, NULL);
  add_init_ints (b, "reps", 2, reps);
  add_node (b, "Tile", "x,reps", "y");
  add_output (b, "y");
  expect_refused (b, LENS_ERROR_NOMEM, needles);
  builder_free (b);
}
END_TEST

START_TEST (test_load_without_device)
{
  /* a NULL context parses, folds and plans, uploads nothing, and cannot
   * make an execution context */
  LensError err = LENS_ERROR_INIT;
  char *path = build_fusion_model (FALSE, NULL);
  LensModel *model = NULL;
  LensExec *exec = NULL;
  char *data;
  gsize len;

  ck_assert (g_file_get_contents (path, &data, &len, NULL));
  ck_assert_msg (lens_model_load_data (NULL, path, data, len, 0, NULL,
          &model, &err) == LENS_OK, "%s", err.message);
  ck_assert_int_gt (lens_model_n_nodes (model), 0);
  ck_assert_int_eq (lens_exec_new (model, &exec, &err), LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "without an OpenCL context") != NULL,
      "%s", err.message);
  ck_assert (exec == NULL);
  lens_error_clear (&err);
  lens_model_free (model);
  g_free (data);
  g_unlink (path);
  g_free (path);
}
END_TEST

static Suite *
executor_suite (void)
{
  Suite *s = suite_create ("executor");
  TCase *tc_run = tcase_create ("results");
  TCase *tc_bad = tcase_create ("bad-input");
  TCase *tc_limits = tcase_create ("limits");

  tcase_add_checked_fixture (tc_run, lens_check_setup,
      lens_check_teardown);
  tcase_set_timeout (tc_run, 300);
  tcase_add_test (tc_run, test_fused_model_matches_reference);
  tcase_add_test (tc_run, test_conv_integer_epilogue_fused);
  tcase_add_test (tc_run, test_float16_weights);
  tcase_add_test (tc_run, test_symbolic_dimension);
  tcase_add_test (tc_run, test_two_execs_share_model);
  tcase_add_test (tc_run, test_memory_plan_reuses);
  tcase_add_test (tc_run, test_concat_in_place);
  tcase_add_test (tc_run, test_slices_as_views);
  tcase_add_test (tc_run, test_activation_through_views);
  tcase_add_test (tc_run, test_focus_as_one_conv);
  tcase_add_test (tc_run, test_pad_into_average_pool);
  tcase_add_test (tc_run, test_quantizer_range_from_producers);
  tcase_add_test (tc_run, test_quantizer_ranges_reset);
  tcase_add_test (tc_run, test_input_view_keeps_input);
  tcase_add_test (tc_run, test_float16_input_rounded);
  tcase_add_test (tc_run, test_float16_input_rounding_cases);
  tcase_add_test (tc_run, test_outputs_on_host_after_run);
  suite_add_tcase (s, tc_run);

  tcase_add_checked_fixture (tc_bad, lens_check_setup,
      lens_check_teardown);
  tcase_set_timeout (tc_bad, 300);
  tcase_add_test (tc_bad, test_missing_file);
  tcase_add_test (tc_bad, test_not_onnx);
  tcase_add_test (tc_bad, test_truncated);
  tcase_add_test (tc_bad, test_unsupported_op);
  tcase_add_test (tc_bad, test_too_new_opset);
  tcase_add_test (tc_bad, test_wrong_input_rank_and_type);
  suite_add_tcase (s, tc_bad);

  tcase_add_checked_fixture (tc_limits, lens_check_setup, limits_teardown);
  tcase_set_timeout (tc_limits, 300);
  tcase_add_test (tc_limits, test_limit_tensor_bytes);
  tcase_add_test (tc_limits, test_limit_element_count_overflow);
  tcase_add_test (tc_limits, test_limit_negative_dim);
  tcase_add_test (tc_limits, test_limit_too_many_dims);
  tcase_add_test (tc_limits, test_limit_raw_data_length);
  tcase_add_test (tc_limits, test_limit_typed_data_count);
  tcase_add_test (tc_limits, test_limit_total_weights);
  tcase_add_test (tc_limits, test_limit_constant_weights);
  tcase_add_test (tc_limits, test_limit_node_count);
  tcase_add_test (tc_limits, test_limit_model_bytes);
  tcase_add_test (tc_limits, test_limit_input_shape);
  tcase_add_test (tc_limits, test_limit_folded_constant_of_shape);
  tcase_add_test (tc_limits, test_limit_computed_value);
  tcase_add_test (tc_limits, test_load_without_device);
  suite_add_tcase (s, tc_limits);
  return s;
}

int
main (void)
{
  return lens_check_run (executor_suite ());
}
