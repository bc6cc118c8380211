/* model.c: the graph executor. Loads an ONNX model once (constant and
 * shape folding, float16 weights to float32, graph rewrites, shape
 * inference, a memory plan by liveness) and runs it from any number of
 * execution contexts (LensExec: own command queue and intermediates, the
 * model's weights shared).
 *
 * Every value of the graph gets an index. Values known at load time
 * (initializers, Constant and Shape outputs, and anything computed only
 * from those, which is folded through the C reference) are constants:
 * uploaded once and shared. The rest are produced by steps, the nodes left
 * to run per inference, in ONNX order. */
#include "lens-private.h"

#include <string.h>

typedef struct
{
  char *name;
  LensDType dtype;
  int ndim;
  int64_t shape[LENS_MAX_DIMS];
  LensTensor *constant;         /* host + device, shared; NULL if computed */
  int producer;                 /* step index, -1 for inputs and constants */
  int last_use;                 /* last step reading it (or an alias) */
  int alias_of;                 /* value whose storage this one shares (a
                                 * view's input, the Concat output it is
                                 * placed in, or the input it is a
                                 * contiguous slice of), or -1 */
  gboolean placed;              /* lies inside alias_of's storage ... */
  size_t placed_at;             /* ... from this byte on */
  int slot;                     /* memory plan slot of a root value, or -1 */
  gboolean is_output;
  gboolean keep;                /* readable after a run (lens_model_keep_tensor) */
  gboolean is_range;            /* a range its producers merge into: in the
                                 * exec's ranges buffer, reset per run */
  gboolean altered;             /* holds what a fused step computes after
                                 * it (an activation fused through views),
                                 * no longer what its name says */
} Value;

typedef struct
{
  LensNode *node;               /* template: attributes, shapes inferred */
  int n_inputs, n_outputs;
  int *inputs;                  /* value indices, -1 for omitted inputs */
  int *outputs;
  gboolean removed;             /* fused into another step by a rewrite */
  gboolean viewed;              /* its outputs are slices of its input's
                                 * storage: nothing to run (memory plan) */
} Step;

struct _LensModel
{
  LensContext *ctx;
  char *path;
  LensOnnxModel *onnx;
  GPtrArray *values;            /* Value * */
  GHashTable *by_name;          /* name -> index + 1 */
  GArray *steps;                /* Step */
  int n_inputs, n_outputs;
  int *inputs, *outputs;        /* value indices */
  LensDType *input_declared, *output_declared;
  int n_slots;
  size_t *slot_bytes;
  size_t weight_bytes, peak_bytes, unplanned_bytes;
  int n_execs;                  /* live LensExecs, which hold the plan's slots */
};

struct _LensExec
{
  LensModel *model;
  LensContext *ctx;
  LensTensor **tensors;         /* per value: constant (borrowed) or owned */
  cl_mem *slots;
  cl_mem ranges;                /* every range value, one aligned piece each */
  size_t ranges_bytes;
  int n_nodes;
  LensNode **nodes;             /* per live step, bound to tensors */
  /* lens_exec_set_profiling: per-node times of the last run, or NULL */
  gboolean profiling;
  LensNodeProfile *profile;
  gboolean profiled;            /* the last run filled profile */
  cl_kernel round_half;         /* float16 inputs: made on first use */
  /* every output on the host after each run, in the dtype the model
   * declares: read without blocking before the run's single wait (one
   * blocking read per output cost PoCL a wake-up, 40 us, each) */
  LensTensor **host_outputs;
  LensTensor **host_staging;    /* float32 reads of float16 outputs */
};

static Value *
value_at (const LensModel * m, int i)
{
  return g_ptr_array_index (m->values, i);
}

static int
value_lookup (const LensModel * m, const char *name)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (m->by_name, name)) - 1;
}

static int
value_add (LensModel * m, const char *name, LensDType dtype, int ndim,
    const int64_t *shape)
{
  Value *v = g_new0 (Value, 1);

  v->name = g_strdup (name);
  v->dtype = dtype;
  v->ndim = ndim;
  if (ndim > 0)
    memcpy (v->shape, shape, sizeof (int64_t) * ndim);
  v->producer = -1;
  v->last_use = -1;
  v->alias_of = -1;
  v->slot = -1;
  g_ptr_array_add (m->values, v);
  /* a later definition of a name shadows an earlier one */
  g_hash_table_insert (m->by_name, v->name,
      GINT_TO_POINTER (m->values->len));
  return (int) m->values->len - 1;
}

static void
value_free (Value * v)
{
  lens_tensor_free (v->constant);
  g_free (v->name);
  g_free (v);
}

static size_t
value_bytes (const Value * v)
{
  /* checked on load, so no overflow, but an empty value may have huge
   * dimensions besides its 0: a running product would overflow first */
  int64_t bytes = lens_shape_bytes (v->dtype, v->ndim, v->shape);

  return bytes > 0 ? (size_t) bytes : 0;
}

/* Float16 constants become float32: lens computes in float32 throughout. */
static LensTensor *
constant_as_computed (LensTensor * t)
{
  LensTensor *f;
  int64_t n;

  if (t->dtype != LENS_DTYPE_FLOAT16)
    return t;
  f = lens_tensor_new_host (LENS_DTYPE_FLOAT, t->ndim, t->shape, NULL);
  n = lens_tensor_numel (t);
  for (int64_t i = 0; i < n; i++)
    ((float *) f->host)[i] = lens_half_to_float (((uint16_t *) t->host)[i]);
  lens_tensor_set_name (f, t->name);
  f->is_constant = TRUE;
  lens_tensor_free (t);
  return f;
}

static LensDType
computed_dtype (LensDType declared)
{
  return declared == LENS_DTYPE_FLOAT16 ? LENS_DTYPE_FLOAT : declared;
}

/* ---- loading: values, folding, shape inference ---------------------------- */

/* Refuses a value over the per-tensor limit (lens_loader_limits) before it
 * is allocated: shapes come from the file, and a Tile, Resize or Pad
 * could otherwise ask for any size. @what names the value's
 * origin for the message. */
static LensStatus
check_value_size (const char *what, const char *name, LensDType dtype,
    int ndim, const int64_t *shape, LensError *err)
{
  int64_t bytes = lens_shape_bytes (dtype, ndim, shape);
  char *limit;
  LensStatus st;

  if (bytes >= 0 && bytes <= lens_loader_limits.max_tensor_bytes)
    return LENS_OK;
  for (int d = 0; d < ndim; d++)
    if (shape[d] < 0)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: tensor '%s': dimension %d is negative (%" G_GINT64_FORMAT ")",
          what, name, d, shape[d]);
  limit = lens_limit_text (lens_loader_limits.max_tensor_bytes);
  if (bytes < 0)
    st = lens_error_set (err, LENS_ERROR_NOMEM,
        "%s: tensor '%s' would take more bytes than 64 bits count, over the "
        "limit of %s per tensor", what, name, limit);
  else
    st = lens_error_set (err, LENS_ERROR_NOMEM,
        "%s: tensor '%s' would take %" G_GINT64_FORMAT " bytes, over the "
        "limit of %s per tensor", what, name, bytes, limit);
  g_free (limit);
  return st;
}

static LensStatus
add_inputs (LensModel * m, int ndim_override, const int64_t *shape_override,
    LensError *err)
{
  LensOnnxModel *onnx = m->onnx;

  m->n_inputs = onnx->n_inputs;
  m->inputs = g_new0 (int, MAX (onnx->n_inputs, 1));
  m->input_declared = g_new0 (LensDType, MAX (onnx->n_inputs, 1));
  for (int i = 0; i < onnx->n_inputs; i++) {
    int64_t shape[LENS_MAX_DIMS];
    int ndim = onnx->input_ndims[i];
    LensStatus st;
    LensDType dtype = onnx->input_dtypes[i];

    if (dtype == LENS_DTYPE_UNDEFINED)
      dtype = LENS_DTYPE_FLOAT;
    if (i == 0 && shape_override != NULL) {
      if (ndim >= 0 && ndim != ndim_override)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "input '%s' has rank %d, the shape given has rank %d",
            onnx->inputs[i], ndim, ndim_override);
      for (int d = 0; ndim >= 0 && d < ndim; d++)
        if (onnx->input_shapes[i][d] > 0
            && onnx->input_shapes[i][d] != shape_override[d])
          return lens_error_set (err, LENS_ERROR_INVALID,
              "input '%s': dimension %d is fixed at %" G_GINT64_FORMAT
              " by the model, not %" G_GINT64_FORMAT, onnx->inputs[i], d,
              onnx->input_shapes[i][d], shape_override[d]);
      if (ndim_override < 0 || ndim_override > LENS_MAX_DIMS)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "input '%s': the shape given has rank %d (at most %d)",
            onnx->inputs[i], ndim_override, LENS_MAX_DIMS);
      ndim = ndim_override;
      memcpy (shape, shape_override, sizeof (int64_t) * ndim);
    } else {
      if (ndim < 0)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "input '%s' has no declared shape: give one", onnx->inputs[i]);
      for (int d = 0; d < ndim; d++) {
        shape[d] = onnx->input_shapes[i][d];
        if (shape[d] < 0)
          return lens_error_set (err, LENS_ERROR_INVALID,
              "input '%s': dimension %d is symbolic: give the input shape",
              onnx->inputs[i], d);
      }
    }
    st = check_value_size ("graph input", onnx->inputs[i],
        computed_dtype (dtype), ndim, shape, err);
    if (st != LENS_OK)
      return st;
    m->input_declared[i] = dtype;
    m->inputs[i] = value_add (m, onnx->inputs[i], computed_dtype (dtype),
        ndim, shape);
  }
  return LENS_OK;
}

static gboolean
outputs_known (const LensNode * node)
{
  for (int i = 0; i < node->n_outputs; i++)
    if (node->outputs[i] != NULL && !node->outputs[i]->is_constant)
      return FALSE;
  return node->n_outputs > 0;
}

/* Initializes, shapes and (where every input is known) folds node @n. */
static LensStatus
add_node (LensModel * m, int n, LensError *err)
{
  LensOnnxModel *onnx = m->onnx;
  LensNode *src = onnx->nodes[n];
  LensNode *node = lens_node_new (src->op_type, src->name, src->opset);
  LensTensor **inputs = g_new0 (LensTensor *, MAX (src->n_inputs, 1));
  LensTensor **outputs = g_new0 (LensTensor *, MAX (src->n_outputs, 1));
  int *in_idx = g_new0 (int, MAX (src->n_inputs, 1));
  gboolean all_constant = TRUE;
  LensStatus st = LENS_OK;
  Step step = { 0 };

  lens_node_copy_attrs (node, src);
  /* lens computes float16 models in float32: a cast to float16 inside the
   * graph becomes a cast to float32 */
  if (strcmp (node->op_type, "Cast") == 0
      && lens_node_attr_int (node, "to", 0) == LENS_DTYPE_FLOAT16)
    lens_node_set_attr_int (node, "to", LENS_DTYPE_FLOAT);

  for (int i = 0; i < src->n_inputs && st == LENS_OK; i++) {
    const char *name = onnx->node_inputs[n][i];
    int v;

    in_idx[i] = -1;
    if (*name == '\0')
      continue;
    v = value_lookup (m, name);
    if (v < 0) {
      st = lens_error_set (err, LENS_ERROR_PARSE,
          "node '%s' (%s): input '%s' is not defined before it is used",
          src->name, src->op_type, name);
      break;
    }
    in_idx[i] = v;
    if (value_at (m, v)->constant != NULL) {
      inputs[i] = value_at (m, v)->constant;
    } else {
      Value *val = value_at (m, v);
      inputs[i] = lens_tensor_new (val->dtype, val->ndim, val->shape);
      lens_tensor_set_name (inputs[i], val->name);
      inputs[i]->is_constant = FALSE;
      all_constant = FALSE;
    }
  }
  for (int i = 0; i < src->n_outputs; i++) {
    outputs[i] = lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL);
    lens_tensor_set_name (outputs[i], onnx->node_outputs[n][i]);
  }
  lens_node_set_io (node, src->n_inputs, inputs, src->n_outputs, outputs);

  if (st == LENS_OK)
    st = lens_node_init (node, err);
  if (st == LENS_OK)
    st = lens_node_reshape (node, err);
  /* inferred shapes are checked before the outputs are allocated, here by
   * folding or later by a LensExec */
  for (int i = 0; i < node->n_outputs && st == LENS_OK; i++) {
    char *what = g_strdup_printf ("node '%s' (%s)", src->name, src->op_type);
    st = check_value_size (what, onnx->node_outputs[n][i], outputs[i]->dtype,
        outputs[i]->ndim, outputs[i]->shape, err);
    g_free (what);
  }
  if (st == LENS_OK && !outputs_known (node) && all_constant) {
    st = lens_node_run_reference (node, err);
    for (int i = 0; i < node->n_outputs && st == LENS_OK; i++)
      outputs[i]->is_constant = TRUE;
  }

  if (st == LENS_OK && outputs_known (node)) {
    /* folded: the outputs become shared constants */
    for (int i = 0; i < node->n_outputs; i++) {
      LensTensor *t = outputs[i];
      int v = value_add (m, onnx->node_outputs[n][i], t->dtype, t->ndim,
          t->shape);
      value_at (m, v)->constant = t;
      outputs[i] = NULL;
      node->outputs[i] = NULL;
    }
  } else if (st == LENS_OK) {
    step.node = node;
    step.n_inputs = src->n_inputs;
    step.n_outputs = src->n_outputs;
    step.inputs = in_idx;
    step.outputs = g_new0 (int, MAX (src->n_outputs, 1));
    for (int i = 0; i < src->n_outputs; i++) {
      LensTensor *t = outputs[i];
      int v = value_add (m, onnx->node_outputs[n][i], t->dtype, t->ndim,
          t->shape);
      value_at (m, v)->producer = (int) m->steps->len;
      step.outputs[i] = v;
    }
    in_idx = NULL;
    g_array_append_val (m->steps, step);
  }

  /* the template keeps attributes only: its tensors were temporaries
   * (constants stay with their values) */
  for (int i = 0; i < node->n_inputs; i++)
    if (inputs[i] != NULL && !inputs[i]->is_constant)
      lens_tensor_free (inputs[i]);
  for (int i = 0; i < node->n_outputs; i++)
    lens_tensor_free (outputs[i]);
  memset (node->inputs, 0, sizeof (LensTensor *) * node->n_inputs);
  memset (node->outputs, 0, sizeof (LensTensor *) * node->n_outputs);
  g_free (inputs);
  g_free (outputs);
  g_free (in_idx);
  if (st != LENS_OK || step.node == NULL)
    lens_node_free (node);
  return st;
}

/* ---- rewrites ---------------------------------------------------------------- */

static Step *
step_at (const LensModel * m, int i)
{
  return &g_array_index (m->steps, Step, i);
}

/* Live steps reading value @v; the first in *first. */
static int
count_consumers (const LensModel * m, int v, int *first)
{
  int count = 0;

  for (guint s = 0; s < m->steps->len; s++) {
    Step *step = step_at (m, s);
    if (step->removed)
      continue;
    for (int i = 0; i < step->n_inputs; i++)
      if (step->inputs[i] == v) {
        if (count++ == 0 && first)
          *first = (int) s;
      }
  }
  return count;
}

static void
replace_uses (LensModel * m, int from, int to)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *step = step_at (m, s);
    for (int i = 0; i < step->n_inputs; i++)
      if (step->inputs[i] == from)
        step->inputs[i] = to;
  }
}

static gboolean
is_op (const Step * step, const char *op_type)
{
  return !step->removed && strcmp (step->node->op_type, op_type) == 0;
}

/* The step's output value @i becomes the output of @into (a removed step's
 * output value takes over, so that later readers and graph outputs see it). */
static void
take_output (LensModel * m, Step * producer, Step * removed)
{
  int old = producer->outputs[0];
  int now = removed->outputs[0];

  producer->outputs[0] = now;
  value_at (m, now)->producer = value_at (m, old)->producer;
  removed->removed = TRUE;
}

static float
constant_scalar (const LensModel * m, const Step * step, int input, float def)
{
  int v = input < step->n_inputs ? step->inputs[input] : -1;
  LensTensor *t = v >= 0 ? value_at (m, v)->constant : NULL;

  return t != NULL && lens_tensor_numel (t) == 1 ?
      (float) lens_tensor_get_f64 (t, 0) : def;
}

/* The one live step reading value @v, or NULL when @v is a graph output or
 * has no reader or several. */
static Step *
sole_consumer (const LensModel * m, int v)
{
  int first = -1;

  if (value_at (m, v)->is_output || count_consumers (m, v, &first) != 1)
    return NULL;
  return step_at (m, first);
}

/* The input of the two-input @step other than value @v, which it reads
 * once; -1 otherwise. */
static int
other_input (const Step * step, int v)
{
  if (step->n_inputs != 2)
    return -1;
  if (step->inputs[0] == v && step->inputs[1] != v)
    return step->inputs[1];
  if (step->inputs[1] == v && step->inputs[0] != v)
    return step->inputs[0];
  return -1;
}

static gboolean
same_shape (const Value * a, const Value * b)
{
  if (a->ndim != b->ndim)
    return FALSE;
  for (int d = 0; d < a->ndim; d++)
    if (a->shape[d] != b->shape[d])
      return FALSE;
  return TRUE;
}

/* x * Sigmoid (x) for value @x that only these two read (the Sigmoid
 * first, in ONNX order): the Mul step, and the Sigmoid in *sig; else
 * NULL. */
static Step *
silu_of (const LensModel * m, int x, Step ** sig)
{
  int first = -1, mul_index = -1;
  Step *mul;

  if (value_at (m, x)->is_output || count_consumers (m, x, &first) != 2)
    return NULL;
  *sig = step_at (m, first);
  if (!is_op (*sig, "Sigmoid") || value_at (m, (*sig)->outputs[0])->is_output
      || count_consumers (m, (*sig)->outputs[0], &mul_index) != 1)
    return NULL;
  mul = step_at (m, mul_index);
  if (!is_op (mul, "Mul") || mul->n_inputs != 2
      || !((mul->inputs[0] == x && mul->inputs[1] == (*sig)->outputs[0])
          || (mul->inputs[1] == x && mul->inputs[0] == (*sig)->outputs[0])))
    return NULL;
  return mul;
}

/* A constant float of one value per channel of @y (axis 1) whose shape
 * broadcasts along that axis only: [1, C, 1, 1] or [C, 1, 1] for NCHW. */
static gboolean
is_channel_bias (const LensModel * m, int b, const Value * y)
{
  const Value *v = value_at (m, b);
  int axis = 1 - (y->ndim - v->ndim);   /* v's dimension under y's axis 1 */

  if (v->constant == NULL || v->dtype != LENS_DTYPE_FLOAT || axis < 0
      || v->ndim > y->ndim)
    return FALSE;
  for (int d = 0; d < v->ndim; d++)
    if (v->shape[d] != (d == axis ? y->shape[1] : 1))
      return FALSE;
  return TRUE;
}

/* Whether value @v is one float (a scalar or a one-element tensor). */
static gboolean
is_float_scalar (const LensModel * m, int v)
{
  return v >= 0 && value_at (m, v)->dtype == LENS_DTYPE_FLOAT
      && value_bytes (value_at (m, v)) == sizeof (float);
}

/* The dequantization after a ConvInteger in dynamically quantized models,
 *
 *   Cast (to float) -> Mul (by a float scalar s) [-> Add (a constant
 *   per-channel bias)] [-> Sigmoid, Mul (SiLU)]
 *
 * each step the only reader of the previous one's output (none a graph
 * output), becomes a ConvInteger with the fused epilogue (cl/ops/conv.c):
 * s as input 4, the bias as input 5, "activation" = "SiLU". It computes
 * the same float operations in the same order, so the result is bit for
 * bit the same, in one pass over the output instead of three to five. The
 * scale (DynamicQuantizeLinear's times the weights') is computed per
 * inference: it must be ready when the ConvInteger step runs. Where a Mul
 * of two float scalars that only this epilogue reads makes it, the Mul is
 * folded in too: its inputs become inputs 4 and 6, which the kernel
 * multiplies (one launch fewer per ConvInteger: 90 on YOLO11n). */
static void
fuse_conv_integer_epilogues (LensModel * m)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *conv = step_at (m, s);
    Step *cast, *mul, *add = NULL, *sig = NULL, *act = NULL, *last;
    Step *scales;
    const Value *y;
    int scale, bias = -1, *inputs;
    Value *sv;

    if (!is_op (conv, "ConvInteger") || conv->n_inputs > 4)
      continue;
    y = value_at (m, conv->outputs[0]);
    cast = sole_consumer (m, conv->outputs[0]);
    if (cast == NULL || !is_op (cast, "Cast")
        || lens_node_attr_int (cast->node, "to", 0) != LENS_DTYPE_FLOAT)
      continue;
    mul = sole_consumer (m, cast->outputs[0]);
    if (mul == NULL || !is_op (mul, "Mul"))
      continue;
    scale = other_input (mul, cast->outputs[0]);
    if (scale < 0)
      continue;
    sv = value_at (m, scale);
    if (sv->dtype != LENS_DTYPE_FLOAT || value_bytes (sv) != sizeof (float)
        || (sv->constant == NULL && sv->producer >= (int) s)
        || !same_shape (value_at (m, mul->outputs[0]), y))
      continue;
    last = mul;

    add = sole_consumer (m, mul->outputs[0]);
    if (add != NULL && is_op (add, "Add")) {
      bias = other_input (add, mul->outputs[0]);
      if (bias >= 0 && is_channel_bias (m, bias, y)
          && same_shape (value_at (m, add->outputs[0]), y))
        last = add;
      else
        bias = -1;
    }
    if (last == add)
      act = silu_of (m, add->outputs[0], &sig);

    inputs = g_new (int, 7);
    for (int i = 0; i < 4; i++)
      inputs[i] = i < conv->n_inputs ? conv->inputs[i] : -1;
    inputs[4] = scale;
    inputs[5] = bias;
    inputs[6] = -1;
    scales = sv->producer >= 0 ? step_at (m, sv->producer) : NULL;
    if (scales != NULL && is_op (scales, "Mul") && scales->n_inputs == 2
        && sole_consumer (m, scale) == mul && is_float_scalar (m,
            scales->inputs[0]) && is_float_scalar (m, scales->inputs[1])) {
      inputs[4] = scales->inputs[0];
      inputs[6] = scales->inputs[1];
      scales->removed = TRUE;
    }
    g_free (conv->inputs);
    conv->inputs = inputs;
    conv->n_inputs = inputs[6] >= 0 ? 7 : bias >= 0 ? 6 : 5;
    cast->removed = TRUE;
    if (last == add)
      mul->removed = TRUE;
    if (act != NULL) {
      lens_node_set_attr_string (conv->node, "activation", "SiLU");
      sig->removed = TRUE;
      add->removed = TRUE;
      last = act;
    }
    take_output (m, conv, last);
  }
}

static void lend_template_tensors (const LensModel * m, Step * step);
static void release_template_tensors (const LensModel * m, Step * step);

/* Whether @step only gives its input 0 another shape, element order
 * unchanged: a view op, or a Transpose that moves only dimensions of size
 * 1 (which the memory plan makes a view, see view_contiguous_outputs). */
static gboolean
is_relabel (LensModel * m, Step * step)
{
  size_t at = 1;
  gboolean same;

  if (step->removed || step->n_inputs < 1 || step->inputs[0] < 0
      || step->n_outputs != 1)
    return FALSE;
  if (step->node->op->is_view)
    return TRUE;
  if (!is_op (step, "Transpose") || step->node->op->output_in_input == NULL)
    return FALSE;
  lend_template_tensors (m, step);
  same = step->node->op->output_in_input (step->node, 0, &at) && at == 0;
  release_template_tensors (m, step);
  return same;
}

/* The one step that reads value @v, past a chain of relabelling views
 * (is_relabel) that each only it reads, none a graph output: the step,
 * with the value it reads in *@read and the number of views passed in
 * *@views; NULL where @v or a view has no reader or several. */
static Step *
reader_past_views (LensModel * m, int v, int *read, int *views)
{
  Step *next = sole_consumer (m, v);

  *views = 0;
  while (next != NULL && is_relabel (m, next) && next->inputs[0] == v) {
    v = next->outputs[0];
    next = sole_consumer (m, v);
    (*views)++;
  }
  *read = v;
  return next;
}

/* Turns @step into an Identity of its input 0 (a view, which drop_no_ops
 * removes unless it makes a graph output). */
static void
become_identity (Step * step)
{
  LensNode *identity = lens_node_new ("Identity", step->node->name,
      step->node->opset);

  lens_node_set_io (identity, 1, NULL, 1, NULL);
  if (lens_node_init (identity, NULL) != LENS_OK)
    g_assert_not_reached ();
  lens_node_free (step->node);
  step->node = identity;
  step->n_inputs = 1;
}

/* Gives @conv the activation of step @act where @act is one the Conv
 * computes from its own output alone (Relu, HardSwish, Sigmoid, LeakyRelu,
 * HardSigmoid; Clip's bounds may be inputs, see fuse_activations), with
 * its parameters; FALSE, leaving @conv as it was, for any other step. */
static gboolean
take_activation (Step * conv, const Step * act)
{
  if (is_op (act, "LeakyRelu")) {
    lens_node_set_attr_float (conv->node, "activation_alpha",
        lens_node_attr_float (act->node, "alpha", 0.01f));
  } else if (is_op (act, "HardSigmoid")) {
    lens_node_set_attr_float (conv->node, "activation_alpha",
        lens_node_attr_float (act->node, "alpha", 0.2f));
    lens_node_set_attr_float (conv->node, "activation_beta",
        lens_node_attr_float (act->node, "beta", 0.5f));
  } else if (!is_op (act, "Relu") && !is_op (act, "HardSwish")
      && !is_op (act, "Sigmoid")) {
    return FALSE;
  }
  lens_node_set_attr_string (conv->node, "activation", act->node->op_type);
  return TRUE;
}

/* Conv followed by an activation that only it feeds becomes one Conv with a
 * fused activation: those of take_activation, Clip (constant bounds) and
 * Sigmoid·Mul = SiLU. A single-input activation may also read the Conv's
 * output through views that only relabel it (reader_past_views: YuNet's
 * Conv -> Transpose -> Reshape -> Sigmoid heads): the Conv then stores
 * activated values, the views see them, and the activation becomes an
 * Identity (no launch); the values on the way are marked altered, so that
 * nobody keeps them for what they were. */
static void
fuse_activations (LensModel * m)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *conv = step_at (m, s);
    int y, consumers, first = -1, read, views;
    Step *next, *past;

    if (!is_op (conv, "Conv") || lens_node_attr (conv->node, "activation"))
      continue;
    y = conv->outputs[0];
    if (value_at (m, y)->is_output)
      continue;
    consumers = count_consumers (m, y, &first);
    if (consumers == 0)
      continue;
    next = step_at (m, first);
    past = consumers == 1 ? reader_past_views (m, y, &read, &views) : NULL;

    if (past != NULL && views > 0 && past->n_inputs == 1
        && past->inputs[0] == read && take_activation (conv, past)) {
      for (int v = y; v != read; v = sole_consumer (m, v)->outputs[0])
        value_at (m, v)->altered = TRUE;
      value_at (m, read)->altered = TRUE;
      become_identity (past);
    } else if (consumers == 1 && take_activation (conv, next)) {
      take_output (m, conv, next);
    } else if (consumers == 1 && is_op (next, "Clip")) {
      float lo, hi;
      gboolean known = TRUE;
      if (next->node->opset >= 11) {
        for (int i = 1; i < next->n_inputs; i++)
          if (next->inputs[i] >= 0 && value_at (m, next->inputs[i])->constant
              == NULL)
            known = FALSE;
        lo = constant_scalar (m, next, 1, -G_MAXFLOAT);
        hi = constant_scalar (m, next, 2, G_MAXFLOAT);
      } else {
        lo = lens_node_attr_float (next->node, "min", -G_MAXFLOAT);
        hi = lens_node_attr_float (next->node, "max", G_MAXFLOAT);
      }
      if (!known)
        continue;
      lens_node_set_attr_string (conv->node, "activation", "Clip");
      lens_node_set_attr_float (conv->node, "activation_alpha", lo);
      lens_node_set_attr_float (conv->node, "activation_beta", hi);
      take_output (m, conv, next);
    } else if (consumers == 2) {
      Step *sig = NULL, *mul = silu_of (m, y, &sig);
      if (mul == NULL)
        continue;
      lens_node_set_attr_string (conv->node, "activation", "SiLU");
      sig->removed = TRUE;
      take_output (m, conv, mul);
    }
  }
}

/* Identity, and Reshape to the shape it already has, are dropped: readers
 * read the input instead. A graph output keeps its (no-copy) view step. */
static void
drop_no_ops (LensModel * m)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *step = step_at (m, s);
    Value *in, *out;
    gboolean same = TRUE;

    if (step->removed || step->n_inputs < 1 || step->inputs[0] < 0)
      continue;
    if (!is_op (step, "Identity") && !is_op (step, "Reshape"))
      continue;
    in = value_at (m, step->inputs[0]);
    out = value_at (m, step->outputs[0]);
    same = in->ndim == out->ndim;
    for (int d = 0; same && d < in->ndim; d++)
      same = in->shape[d] == out->shape[d];
    if (!same || out->is_output)
      continue;
    replace_uses (m, step->outputs[0], step->inputs[0]);
    step->removed = TRUE;
  }
}

/* Value @v read through the chain of Slices that made it (opset 10 on, all
 * of starts/ends/axes/steps constant, steps positive, 4-D), each read only
 * by the next and the last only by @reader: the value at the head of the
 * chain, with @v's element i along axis d at @offset[d] + @stride[d] * i of
 * it (@v's own shape counts them); -1 where no Slice made @v or one of
 * the chain is not of that kind. */
static int
strided_slice_source (const LensModel * m, int v, const Step * reader,
    int64_t offset[4], int64_t stride[4])
{
  int n_slices = 0;

  for (int d = 0; d < 4; d++) {
    offset[d] = 0;
    stride[d] = 1;
  }
  for (;;) {
    const Value *val = value_at (m, v);
    Step *slice = val->producer >= 0 ? step_at (m, val->producer) : NULL;
    const LensTensor *params[4] = { NULL };
    const Value *in;
    gboolean seen[4] = { FALSE };
    int64_t n;

    if (slice == NULL || !is_op (slice, "Slice")
        || sole_consumer (m, v) != reader)
      break;
    if (slice->node->opset < 10 || slice->n_inputs < 3
        || slice->n_outputs != 1 || slice->inputs[0] < 0)
      return -1;
    for (int i = 1; i < slice->n_inputs && i <= 4; i++) {
      int p = slice->inputs[i];
      params[i - 1] = p >= 0 ? value_at (m, p)->constant : NULL;
      if (p >= 0 && (params[i - 1] == NULL
              || (params[i - 1]->dtype != LENS_DTYPE_INT64
                  && params[i - 1]->dtype != LENS_DTYPE_INT32)))
        return -1;
    }
    in = value_at (m, slice->inputs[0]);
    if (params[0] == NULL || params[1] == NULL || in->ndim != 4
        || val->ndim != 4)
      return -1;
    n = lens_tensor_numel (params[0]);
    for (int k = 1; k < 4; k++)
      if (params[k] != NULL && lens_tensor_numel (params[k]) != n)
        return -1;
    /* composed with what the chain below takes: element j of this
     * slice's output is its input's start + step * j */
    for (int64_t i = 0; i < n; i++) {
      int64_t axis = params[2] ? lens_tensor_get_i64 (params[2], i) : i;
      int64_t step = params[3] ? lens_tensor_get_i64 (params[3], i) : 1;
      int64_t start = lens_tensor_get_i64 (params[0], i), dim;

      if (axis < 0)
        axis += 4;
      if (axis < 0 || axis >= 4 || seen[axis] || step <= 0)
        return -1;
      seen[axis] = TRUE;
      /* ONNX: a negative start counts from the end, then clamps */
      dim = in->shape[axis];
      if (start < 0)
        start += dim;
      start = CLAMP (start, 0, dim);
      /* a Focus takes every second element at most: bounds the sums */
      if (step > 2 / stride[axis])
        return -1;
      offset[axis] = start + step * offset[axis];
      stride[axis] *= step;
    }
    v = slice->inputs[0];
    reader = slice;
    n_slices++;
  }
  return n_slices > 0 ? v : -1;
}

/* Whether @conv's attributes make a 3x3 stride-1 convolution padded by 1
 * on every side, no dilation, no groups. */
static gboolean
is_plain_3x3_same (const Step * conv)
{
  static const int64_t one[4] = { 1, 1, 1, 1 }, three[2] = { 3, 3 };
  const LensNode *node = conv->node;
  const int64_t *v;
  int n;

  if (lens_node_attr_int (node, "group", 1) != 1
      || strcmp (lens_node_attr_string (node, "auto_pad", "NOTSET"),
          "NOTSET") != 0)
    return FALSE;
  n = lens_node_attr_ints (node, "kernel_shape", &v);
  if (n >= 0 && (n != 2 || memcmp (v, three, sizeof (three)) != 0))
    return FALSE;
  n = lens_node_attr_ints (node, "strides", &v);
  if (n >= 0 && (n != 2 || memcmp (v, one, 2 * sizeof (int64_t)) != 0))
    return FALSE;
  n = lens_node_attr_ints (node, "dilations", &v);
  if (n >= 0 && (n != 2 || memcmp (v, one, 2 * sizeof (int64_t)) != 0))
    return FALSE;
  n = lens_node_attr_ints (node, "pads", &v);
  return n == 4 && memcmp (v, one, sizeof (one)) == 0;
}

/* YOLOX's Focus stem: four strided Slices of x [N, C, H, W] (H and W
 * even), each the rows dy, dy + 2, ... and columns dx, dx + 2, ... (all
 * four phases (dy, dx), made by one Slice or a chain, say one per axis as
 * the exported models have them), joined on the channels by a Concat only
 * a 3x3 stride-1 pad-1 Conv reads. With the Concat's k-th input phase
 * (dy, dx), y[kC + c][i][j] = x[c][2i + dy][2j + dx], and the Conv's tap
 * (a, b) on channel kC + c reads x's row 2i + 2a - 2 + dy: with
 * ky = 2a + dy, a one-to-one map onto 0..5, that is tap ky - 2 of a 6x6
 * stride-2 pad-2 Conv on x, whose padding covers just the rows the 3x3's
 * padding did (-2, -1, H, H + 1; the same for the columns). So the Conv
 * reads x itself with W6[m][c][2a + dy][2b + dx] = W3[m][kC + c][a][b]:
 * the same products, summed in another order. The Slices and the Concat
 * go, and with them a copy of x (yolox_nano: 8 launches fewer; its Concat
 * was in place already). The bias, a fused activation and the output
 * stay; the weights become a new constant (the old one may have other
 * readers). */
static void
fold_focus_slices (LensModel * m)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *conv = step_at (m, s);
    Step *concat;
    const Value *cat, *x = NULL, *w3;
    Value *w6;
    int source = -1, phase_of_input[4], w6_index;
    gboolean phase_seen[4] = { FALSE }, ok = TRUE;
    int64_t axis, C, M, w6_shape[4];
    const float *from;
    float *to;
    char *name;

    if (!is_op (conv, "Conv") || conv->n_inputs < 2 || conv->n_inputs > 3
        || conv->n_outputs != 1 || conv->inputs[0] < 0 || conv->inputs[1] < 0
        || !is_plain_3x3_same (conv))
      continue;
    cat = value_at (m, conv->inputs[0]);
    concat = cat->producer >= 0 ? step_at (m, cat->producer) : NULL;
    if (concat == NULL || !is_op (concat, "Concat") || concat->n_inputs != 4
        || concat->n_outputs != 1 || cat->ndim != 4
        || cat->dtype != LENS_DTYPE_FLOAT || sole_consumer (m,
            conv->inputs[0]) != conv)
      continue;
    axis = lens_node_attr_int (concat->node, "axis", 1);
    if (axis != 1 && axis != -3)
      continue;

    for (int k = 0; k < 4 && ok; k++) {
      int64_t offset[4], stride[4];
      const Value *part;
      int v = concat->inputs[k], phase;

      ok = v >= 0;
      if (!ok)
        break;
      part = value_at (m, v);
      v = strided_slice_source (m, v, concat, offset, stride);
      ok = v >= 0 && (source < 0 || v == source) && part->ndim == 4;
      if (!ok)
        break;
      source = v;
      x = value_at (m, v);
      /* N and C whole; every second row and column from (dy, dx) */
      for (int d = 0; d < 2 && ok; d++)
        ok = offset[d] == 0 && (stride[d] == 1 || x->shape[d] == 1)
            && part->shape[d] == x->shape[d];
      for (int d = 2; d < 4 && ok; d++)
        ok = x->shape[d] > 0 && x->shape[d] % 2 == 0 && stride[d] == 2
            && offset[d] >= 0 && offset[d] <= 1
            && part->shape[d] == x->shape[d] / 2;
      if (!ok)
        break;
      phase = (int) (offset[2] * 2 + offset[3]);
      ok = !phase_seen[phase];
      phase_seen[phase] = TRUE;
      phase_of_input[k] = phase;
    }
    if (!ok || x->dtype != LENS_DTYPE_FLOAT)
      continue;

    C = x->shape[1];
    w3 = value_at (m, conv->inputs[1]);
    if (w3->constant == NULL || w3->dtype != LENS_DTYPE_FLOAT
        || w3->constant->dtype != LENS_DTYPE_FLOAT
        || w3->constant->host == NULL || w3->ndim != 4
        || w3->shape[1] != 4 * C || w3->shape[2] != 3 || w3->shape[3] != 3)
      continue;
    M = w3->shape[0];
    w6_shape[0] = M;
    w6_shape[1] = C;
    w6_shape[2] = 6;
    w6_shape[3] = 6;
    name = g_strdup_printf ("%s:focus6x6", w3->name);
    w6_index = value_add (m, name, LENS_DTYPE_FLOAT, 4, w6_shape);
    g_free (name);
    w6 = value_at (m, w6_index);
    w6->constant = lens_tensor_new_host (LENS_DTYPE_FLOAT, 4, w6_shape, NULL);
    w6->constant->is_constant = TRUE;
    lens_tensor_set_name (w6->constant, w6->name);
    from = w3->constant->host;
    to = w6->constant->host;
    for (int64_t o = 0; o < M; o++)
      for (int k = 0; k < 4; k++) {
        int dy = phase_of_input[k] / 2, dx = phase_of_input[k] % 2;
        for (int64_t c = 0; c < C; c++)
          for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
              to[((o * C + c) * 6 + 2 * a + dy) * 6 + 2 * b + dx] =
                  from[((o * 4 * C + k * C + c) * 3 + a) * 3 + b];
      }

    {
      static const int64_t kernel[2] = { 6, 6 }, two[2] = { 2, 2 };
      static const int64_t one[2] = { 1, 1 }, pads[4] = { 2, 2, 2, 2 };
      /* the template's parsed state is stale now, as after any rewrite
       * that sets attributes: each LensExec initializes its own node from
       * these */
      lens_node_set_attr_ints (conv->node, "kernel_shape", 2, kernel);
      lens_node_set_attr_ints (conv->node, "strides", 2, two);
      lens_node_set_attr_ints (conv->node, "dilations", 2, one);
      lens_node_set_attr_ints (conv->node, "pads", 4, pads);
    }
    conv->inputs[0] = source;
    conv->inputs[1] = w6_index;
    /* the Slices, down every chain from x, and the Concat */
    for (int k = 0; k < 4; k++) {
      int v = concat->inputs[k];
      while (v != source) {
        Step *slice = step_at (m, value_at (m, v)->producer);
        slice->removed = TRUE;
        v = slice->inputs[0];
      }
    }
    concat->removed = TRUE;
  }
}

/* A Pad of zeros on the spatial axes of a 4-D input, read only by an
 * AveragePool of its own (no pads, auto_pad NOTSET, ceil_mode 0): the pool
 * with those pads and count_include_pad = 1 averages the same windows
 * over the same divisor, without the padded copy (FastestDet's head: one
 * launch and 0.07 ms single-threaded fewer). The pool then reads the
 * Pad's input. */
static void
fold_pads_into_pools (LensModel * m)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *pad = step_at (m, s);
    Step *pool;
    const Value *x;
    const LensTensor *pads;
    const int64_t *own;
    int64_t spatial[4];
    gboolean ok;

    if (!is_op (pad, "Pad") || pad->node->opset < 11 || pad->n_inputs < 2
        || pad->n_inputs > 3 || pad->n_outputs != 1 || pad->inputs[0] < 0
        || pad->inputs[1] < 0
        || strcmp (lens_node_attr_string (pad->node, "mode", "constant"),
            "constant") != 0)
      continue;
    x = value_at (m, pad->inputs[0]);
    pads = value_at (m, pad->inputs[1])->constant;
    if (x->ndim != 4 || x->dtype != LENS_DTYPE_FLOAT || pads == NULL
        || lens_tensor_numel (pads) != 8)
      continue;
    /* the padding value: absent, or a constant 0 */
    if (pad->n_inputs == 3 && pad->inputs[2] >= 0
        && (value_at (m, pad->inputs[2])->constant == NULL
            || constant_scalar (m, pad, 2, 1.0f) != 0.0f))
      continue;
    ok = TRUE;
    for (int i = 0; i < 8 && ok; i++) {
      int64_t v = lens_tensor_get_i64 (pads, i);
      /* ONNX order: the begins of N, C, H, W, then their ends */
      ok = v >= 0 && (i % 4 >= 2 || v == 0);
      if (i % 4 >= 2)
        spatial[(i / 4) * 2 + i % 4 - 2] = v;
    }
    pool = sole_consumer (m, pad->outputs[0]);
    if (!ok || pool == NULL || !is_op (pool, "AveragePool")
        || pool->inputs[0] != pad->outputs[0]
        || lens_node_attr_int (pool->node, "ceil_mode", 0) != 0
        || strcmp (lens_node_attr_string (pool->node, "auto_pad", "NOTSET"),
            "NOTSET") != 0)
      continue;
    for (int i = 0; i < lens_node_attr_ints (pool->node, "pads", &own)
        && ok; i++)
      ok = own[i] == 0;
    if (!ok)
      continue;
    lens_node_set_attr_ints (pool->node, "pads", 4, spatial);
    lens_node_set_attr_int (pool->node, "count_include_pad", 1);
    pool->inputs[0] = pad->inputs[0];
    pad->removed = TRUE;
  }
}

/* A residual Add after a fused ConvInteger (not one with a single input
 * channel per group, which takes the depthwise kernel): y = conv (x) + r
 * where the Add is the only reader of conv's output and r, of the same
 * shape, is ready before the ConvInteger runs (YOLO's bottlenecks). r
 * becomes the ConvInteger's input 7, added after its epilogue with the
 * Add's rounding (cl/ops/conv.c): one launch and one pass fewer. */
static void
fuse_residual_adds (LensModel * m)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *conv = step_at (m, s);
    Step *add;
    const Value *y, *w, *rv;
    int r;

    if (!is_op (conv, "ConvInteger") || conv->n_inputs < 5
        || conv->n_inputs > 7 || conv->n_outputs != 1 || conv->inputs[1] < 0)
      continue;
    y = value_at (m, conv->outputs[0]);
    w = value_at (m, conv->inputs[1]);
    if (w->ndim != 4 || w->shape[1] == 1 || y->dtype != LENS_DTYPE_FLOAT)
      continue;
    add = sole_consumer (m, conv->outputs[0]);
    if (add == NULL || !is_op (add, "Add"))
      continue;
    r = other_input (add, conv->outputs[0]);
    if (r < 0)
      continue;
    rv = value_at (m, r);
    if (rv->dtype != LENS_DTYPE_FLOAT || !same_shape (rv, y)
        || !same_shape (value_at (m, add->outputs[0]), y)
        || rv->producer >= (int) s)
      continue;
    conv->inputs = g_renew (int, conv->inputs, 8);
    for (int i = conv->n_inputs; i < 7; i++)
      conv->inputs[i] = -1;
    conv->inputs[7] = r;
    conv->n_inputs = 8;
    take_output (m, conv, add);
  }
}

/* Value @v, an input of @concat, or where @v is an output of a Split
 * whose every output @concat joins (C2f's and C3k2's halves), the Split's
 * input: all of it is in @concat then. */
static int
whole_split_input (const LensModel * m, const Step * concat, int v)
{
  const Value *val = value_at (m, v);
  const Step *split = val->producer >= 0 ? step_at (m, val->producer) : NULL;

  if (split == NULL || !is_op (split, "Split") || split->n_inputs < 1
      || split->inputs[0] < 0)
    return v;
  for (int o = 0; o < split->n_outputs; o++) {
    gboolean joined = FALSE;
    for (int i = 0; i < concat->n_inputs; i++)
      joined |= concat->inputs[i] == split->outputs[o];
    if (!joined)
      return v;
  }
  return split->inputs[0];
}

/* The fused ConvIntegers (float y, no range output yet) whose outputs make
 * up all of value @x: its producer, or the producers of every input of the
 * Concat that made it (of a Split's input for the Split's outputs, see
 * whole_split_input). Fills @producers (at most @max, each once) and
 * returns how many; 0 when some part of @x comes from another op. */
static int
range_producers (const LensModel * m, int x, Step ** producers, int max)
{
  const Value *v = value_at (m, x);
  Step *p = v->producer >= 0 ? step_at (m, v->producer) : NULL;
  int n = 0;

  if (p == NULL || p->removed)
    return 0;
  if (is_op (p, "ConvInteger")) {
    if (p->n_inputs < 5 || p->n_outputs != 1 || max < 1)
      return 0;
    producers[0] = p;
    return 1;
  }
  if (!is_op (p, "Concat"))
    return 0;
  for (int i = 0; i < p->n_inputs; i++) {
    Step *q;
    gboolean seen = FALSE;

    if (p->inputs[i] < 0 || range_producers (m, whole_split_input (m, p,
                p->inputs[i]), &q, 1) != 1)
      return 0;
    for (int k = 0; k < n; k++)
      seen |= producers[k] == q;
    if (seen)
      continue;
    if (n == max)
      return 0;
    producers[n++] = q;
  }
  return n;
}

/* A DynamicQuantizeLinear first reduces all of its input x to its range,
 * a pass over x and a launch of its own. Where x is all made by fused
 * ConvIntegers (one, or those whose outputs a Concat joins), they find
 * the range as they store x: each gets a second output, a range value
 * (two int32 keys) they all merge into (cl/ops/conv.c), which the DQL
 * reads as its input 1 (cl/ops/quant.c). The exec resets every range at
 * the start of a run, with one command. Same range, same results: 80
 * launches fewer on YOLO11n. */
static void
find_ranges_in_producers (LensModel * m)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *dql = step_at (m, s);
    Step *producers[16];
    int64_t two = 2;
    int n, r, first = (int) s;
    char *name;

    if (!is_op (dql, "DynamicQuantizeLinear") || dql->n_inputs != 1
        || dql->inputs[0] < 0)
      continue;
    n = range_producers (m, dql->inputs[0], producers,
        (int) G_N_ELEMENTS (producers));
    if (n == 0)
      continue;
    name = g_strdup_printf ("%s:range", value_at (m, dql->inputs[0])->name);
    r = value_add (m, name, LENS_DTYPE_INT32, 1, &two);
    g_free (name);
    value_at (m, r)->is_range = TRUE;
    for (int i = 0; i < n; i++) {
      Step *p = producers[i];
      p->outputs = g_renew (int, p->outputs, 2);
      p->outputs[1] = r;
      p->n_outputs = 2;
      lens_node_set_attr_int (p->node, "range_accumulate", 1);
      first = MIN (first, (int) (p - step_at (m, 0)));
    }
    value_at (m, r)->producer = first;
    dql->inputs = g_renew (int, dql->inputs, 2);
    dql->inputs[1] = r;
    dql->n_inputs = 2;
  }
}

/* ---- memory plan ---------------------------------------------------------- */

static int
root_of (const LensModel * m, int v)
{
  while (value_at (m, v)->alias_of >= 0)
    v = value_at (m, v)->alias_of;
  return v;
}

/* Where @v's storage starts in its root's, in bytes. */
static size_t
offset_in_root (const LensModel * m, int v)
{
  size_t at = 0;

  for (; value_at (m, v)->alias_of >= 0; v = value_at (m, v)->alias_of)
    if (value_at (m, v)->placed)
      at += value_at (m, v)->placed_at;
  return at;
}

/* Whether a LensExec runs @step: not fused into another, not a view. */
static gboolean
step_runs (const Step * step)
{
  return !step->removed && !step->viewed;
}

/* Gives @step's template node (which keeps attributes only) tensors of
 * its values' shapes, the constants themselves, for a question about
 * them; release_template_tensors frees them again. */
static void
lend_template_tensors (const LensModel * m, Step * step)
{
  LensNode *node = step->node;

  for (int i = 0; i < step->n_inputs; i++) {
    const Value *v = step->inputs[i] >= 0 ? value_at (m, step->inputs[i]) :
        NULL;
    if (v == NULL)
      node->inputs[i] = NULL;
    else if (v->constant != NULL)
      node->inputs[i] = v->constant;
    else
      node->inputs[i] = lens_tensor_new (v->dtype, v->ndim, v->shape);
  }
  for (int i = 0; i < step->n_outputs; i++) {
    const Value *v = value_at (m, step->outputs[i]);
    node->outputs[i] = lens_tensor_new (v->dtype, v->ndim, v->shape);
  }
}

static void
release_template_tensors (const LensModel * m, Step * step)
{
  LensNode *node = step->node;

  for (int i = 0; i < step->n_inputs; i++)
    if (node->inputs[i] != NULL && value_at (m, step->inputs[i])->constant
        == NULL)
      lens_tensor_free (node->inputs[i]);
  for (int i = 0; i < step->n_outputs; i++)
    lens_tensor_free (node->outputs[i]);
  memset (node->inputs, 0, sizeof (LensTensor *) * node->n_inputs);
  memset (node->outputs, 0, sizeof (LensTensor *) * node->n_outputs);
}

/* Slices as views: a step whose every output is one contiguous run of
 * its input (LensOp.output_in_input: a Split on the channels of a batch
 * of one, a channel shuffle's Gather) gets them as sub-buffers of the
 * input's storage, where they start at the device's sub-buffer alignment
 * (@align bytes), and runs nothing. The input must be computed here (a
 * slot of the plan, not a graph input with a buffer of its own). */
static void
view_contiguous_outputs (LensModel * m, size_t align)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *step = step_at (m, (int) s);
    const LensOp *op = step->node->op;
    size_t base, *at;
    gboolean all = TRUE;
    int r;

    if (step->removed || op->output_in_input == NULL || step->n_inputs < 1
        || step->inputs[0] < 0)
      continue;
    r = root_of (m, step->inputs[0]);
    if (value_at (m, r)->constant != NULL || value_at (m, r)->producer < 0)
      continue;
    base = offset_in_root (m, step->inputs[0]);
    at = g_new0 (size_t, MAX (step->n_outputs, 1));
    lend_template_tensors (m, step);
    for (int o = 0; o < step->n_outputs && all; o++) {
      const Value *out = value_at (m, step->outputs[o]);
      size_t elem = 0;

      all = op->output_in_input (step->node, o, &elem) && out->constant ==
          NULL && value_bytes (out) > 0;
      at[o] = elem * lens_dtype_size (out->dtype);
      all = all && (base + at[o]) % align == 0;
    }
    release_template_tensors (m, step);
    if (all) {
      step->viewed = TRUE;
      for (int o = 0; o < step->n_outputs; o++) {
        Value *out = value_at (m, step->outputs[o]);
        out->alias_of = step->inputs[0];
        out->placed = TRUE;
        out->placed_at = at[o];
      }
    }
    g_free (at);
  }
}

/* Whether the root value @r can be computed straight into a Concat
 * output: made by a kernel (not a view of a constant, not another placed
 * Concat), not yet placed, and nothing outside the plan (a graph output, a
 * kept tensor) reads it. */
static gboolean
placeable (const LensModel * m, int r)
{
  const Value *v = value_at (m, r);
  const Step *producer;

  if (v->constant != NULL || v->producer < 0 || v->alias_of >= 0
      || v->is_output || v->keep || value_bytes (v) == 0)
    return FALSE;
  producer = step_at (m, v->producer);
  return !producer->removed && !producer->node->op->is_view
      && !is_op (producer, "Concat");
}

/* Concat in place: when everything before the axis has size 1, every
 * input is one contiguous run of the output, so its producer can write
 * there (through a sub-buffer) and the Concat copies nothing for it. An
 * input that is a slice of a larger value (a Split's half) places that
 * whole value, where the inputs it covers are exactly its slices in
 * order (C2f's Concat of both halves of one convolution). Each placed
 * value must start at the device's sub-buffer alignment (@align bytes);
 * inputs that cannot be placed are still copied by the Concat. */
static void
place_concat_inputs (LensModel * m, size_t align)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *step = step_at (m, (int) s);
    const Value *y;
    int64_t axis, outer = 1;
    size_t *at;
    int n = 0;

    if (step->removed || !is_op (step, "Concat") || step->n_outputs != 1)
      continue;
    y = value_at (m, step->outputs[0]);
    axis = lens_node_attr_int (step->node, "axis", 0);
    if (axis < 0)
      axis += y->ndim;
    if (y->constant != NULL || axis < 0 || axis >= y->ndim)
      continue;
    for (int d = 0; d < axis; d++)
      outer *= y->shape[d];
    if (outer != 1)
      continue;
    while (n < step->n_inputs && step->inputs[n] >= 0)
      n++;
    /* input i fills bytes [at[i], at[i + 1]) of y */
    at = g_new0 (size_t, n + 1);
    for (int i = 0; i < n; i++)
      at[i + 1] = at[i] + value_bytes (value_at (m, step->inputs[i]));
    for (int i = 0; i < n; i++) {
      int r = root_of (m, step->inputs[i]);
      size_t in_root = offset_in_root (m, step->inputs[i]), start, end;
      gboolean ok;

      /* already there: a slice of a value placed for an earlier input */
      if (r == step->outputs[0] || in_root > at[i])
        continue;
      start = at[i] - in_root;
      end = start + value_bytes (value_at (m, r));
      ok = start % align == 0 && end <= at[n] && placeable (m, r);
      for (int j = 0; j < n && ok; j++)
        if (at[j + 1] > at[j] && at[j] < end && at[j + 1] > start)
          ok = root_of (m, step->inputs[j]) == r
              && start + offset_in_root (m, step->inputs[j]) == at[j];
      if (ok) {
        value_at (m, r)->alias_of = step->outputs[0];
        value_at (m, r)->placed = TRUE;
        value_at (m, r)->placed_at = start;
      }
    }
    g_free (at);
  }
}

/* Intermediates share device buffers (slots) when their lifetimes do not
 * overlap; views alias their input's storage and extend its lifetime, and
 * so do Concat inputs placed in their output, whose storage then exists
 * from the first of them on. */
static void
plan_memory (LensModel * m)
{
  int n_steps = (int) m->steps->len;
  GArray *slot_size = g_array_new (FALSE, TRUE, sizeof (size_t));
  GArray *slot_free_after = g_array_new (FALSE, TRUE, sizeof (int));
  int *first_def = g_new (int, MAX (m->values->len, 1));

  /* planned again when a tensor is kept: start from nothing */
  for (guint v = 0; v < m->values->len; v++) {
    value_at (m, (int) v)->last_use = -1;
    value_at (m, (int) v)->alias_of = -1;
    value_at (m, (int) v)->placed = FALSE;
    value_at (m, (int) v)->placed_at = 0;
    value_at (m, (int) v)->slot = -1;
    first_def[v] = n_steps;
  }
  g_clear_pointer (&m->slot_bytes, g_free);

  for (int s = 0; s < n_steps; s++) {
    Step *step = step_at (m, s);
    if (step->removed)
      continue;
    step->viewed = FALSE;
    if (step->node->op->is_view && step->inputs[0] >= 0
        && value_at (m, step->inputs[0])->constant == NULL)
      value_at (m, step->outputs[0])->alias_of = step->inputs[0];
  }
  /* sub-buffers need the device's alignment */
  if (m->ctx != NULL) {
    size_t align = lens_context_sub_buffer_align (m->ctx);

    view_contiguous_outputs (m, align);
    place_concat_inputs (m, align);
  }
  for (int s = 0; s < n_steps; s++) {
    Step *step = step_at (m, s);
    if (step->removed)
      continue;
    for (int i = 0; i < step->n_inputs; i++)
      if (step->inputs[i] >= 0)
        value_at (m, root_of (m, step->inputs[i]))->last_use = s;
    for (int o = 0; o < step->n_outputs; o++) {
      int r = root_of (m, step->outputs[o]);
      first_def[r] = MIN (first_def[r], s);
    }
  }
  for (int i = 0; i < m->n_outputs; i++)
    value_at (m, root_of (m, m->outputs[i]))->last_use = n_steps;
  for (guint v = 0; v < m->values->len; v++)
    if (value_at (m, (int) v)->keep)
      value_at (m, root_of (m, (int) v))->last_use = n_steps;

  m->unplanned_bytes = 0;
  for (int s = 0; s < n_steps; s++) {
    Step *step = step_at (m, s);
    if (step->removed)
      continue;
    for (int o = 0; o < step->n_outputs; o++) {
      int r = root_of (m, step->outputs[o]);
      Value *v = value_at (m, r);
      size_t need;
      int best = -1;

      /* views, roots made earlier (a placed Concat's output exists from
       * its first input's step), graph inputs, which have buffers of
       * their own, and ranges (the exec's ranges buffer) */
      if (first_def[r] != s || v->slot >= 0 || v->producer < 0
          || v->is_range)
        continue;
      need = MAX (value_bytes (v), 4);
      m->unplanned_bytes += need;
      /* a slot is free for step s once its last reader ran before s: take
       * the smallest free one that fits, else grow the largest free one */
      for (guint k = 0; k < slot_size->len; k++) {
        size_t size = g_array_index (slot_size, size_t, k);
        size_t best_size;
        if (g_array_index (slot_free_after, int, k) >= s)
          continue;
        if (best < 0) {
          best = (int) k;
          continue;
        }
        best_size = g_array_index (slot_size, size_t, best);
        if (best_size >= need ? (size >= need && size < best_size) :
            size > best_size)
          best = (int) k;
      }
      if (best < 0) {
        size_t zero = 0;
        int never = -1;
        g_array_append_val (slot_size, zero);
        g_array_append_val (slot_free_after, never);
        best = (int) slot_size->len - 1;
      }
      if (g_array_index (slot_size, size_t, best) < need)
        g_array_index (slot_size, size_t, best) = need;
      /* unused outputs (e.g. Indices nobody reads) live through their step */
      g_array_index (slot_free_after, int, best) = MAX (v->last_use, s);
      v->slot = best;
    }
  }
  m->n_slots = (int) slot_size->len;
  m->slot_bytes = (size_t *) g_array_free (slot_size, FALSE);
  g_array_free (slot_free_after, TRUE);
  g_free (first_def);
  m->peak_bytes = 0;
  for (int k = 0; k < m->n_slots; k++)
    m->peak_bytes += m->slot_bytes[k];
}

/* ---- public API -------------------------------------------------------------- */

/* From the file @path, or from @data when it is not NULL. */
static LensStatus
model_load (LensContext * ctx, const char *path, const void *data,
    size_t len, int ndim, const int64_t *input_shape, LensModel ** out,
    LensError *err)
{
  LensModel *m;
  LensStatus st;

  m = g_new0 (LensModel, 1);
  m->ctx = ctx;
  m->path = g_strdup (path);
  m->values = g_ptr_array_new_with_free_func ((GDestroyNotify) value_free);
  m->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  m->steps = g_array_new (FALSE, TRUE, sizeof (Step));

  st = data != NULL ? lens_onnx_model_load_data (path, data, len, &m->onnx,
      err) : lens_onnx_model_load (path, &m->onnx, err);
  if (st != LENS_OK) {
    lens_model_free (m);
    return st;
  }
  for (int i = 0; i < m->onnx->n_initializers; i++) {
    LensTensor *t = m->onnx->initializers[i];
    int v = value_add (m, t->name, LENS_DTYPE_UNDEFINED, 0, NULL);
    /* the model's copy moves here; the ONNX model keeps no tensor */
    m->onnx->initializers[i] = NULL;
    t = constant_as_computed (t);
    value_at (m, v)->constant = t;
    value_at (m, v)->dtype = t->dtype;
    value_at (m, v)->ndim = t->ndim;
    memcpy (value_at (m, v)->shape, t->shape, sizeof (int64_t) * t->ndim);
  }
  st = add_inputs (m, ndim, input_shape, err);
  for (int n = 0; n < m->onnx->n_nodes && st == LENS_OK; n++)
    st = add_node (m, n, err);

  if (st == LENS_OK) {
    m->n_outputs = m->onnx->n_outputs;
    m->outputs = g_new0 (int, MAX (m->n_outputs, 1));
    m->output_declared = g_new0 (LensDType, MAX (m->n_outputs, 1));
    for (int i = 0; i < m->n_outputs && st == LENS_OK; i++) {
      m->outputs[i] = value_lookup (m, m->onnx->outputs[i]);
      m->output_declared[i] = m->onnx->output_dtypes[i];
      if (m->outputs[i] < 0)
        st = lens_error_set (err, LENS_ERROR_PARSE,
            "graph output '%s' is not produced by any node",
            m->onnx->outputs[i]);
      else
        value_at (m, m->outputs[i])->is_output = TRUE;
      if (m->output_declared[i] == LENS_DTYPE_UNDEFINED && st == LENS_OK)
        m->output_declared[i] = value_at (m, m->outputs[i])->dtype;
    }
  }
  if (st == LENS_OK) {
    fuse_conv_integer_epilogues (m);
    fuse_activations (m);
    drop_no_ops (m);
    fold_focus_slices (m);
    fold_pads_into_pools (m);
    fuse_residual_adds (m);
    find_ranges_in_producers (m);
    /* fused steps changed attributes: their templates are re-initialized
     * per execution context, so nothing else to do here */
    plan_memory (m);
  }
  /* constants that steps read go to the device once */
  for (guint v = 0; v < m->values->len && st == LENS_OK; v++) {
    Value *val = value_at (m, (int) v);
    if (val->constant == NULL || count_consumers (m, (int) v, NULL) == 0)
      continue;
    if (ctx != NULL)
      st = lens_tensor_upload (ctx, val->constant, err);
    m->weight_bytes += lens_tensor_nbytes (val->constant);
  }
  if (st != LENS_OK) {
    lens_error_prefix (err, "%s: ", path);
    lens_model_free (m);
    return st;
  }
  *out = m;
  return LENS_OK;
}

LensStatus
lens_model_load (LensContext * ctx, const char *path, int ndim,
    const int64_t *input_shape, LensModel ** out, LensError *err)
{
  return model_load (ctx, path, NULL, 0, ndim, input_shape, out, err);
}

LensStatus
lens_model_load_data (LensContext * ctx, const char *path, const void *data,
    size_t len, int ndim, const int64_t *input_shape, LensModel ** out,
    LensError *err)
{
  /* a NULL @data would mean "read @path": an empty model is just empty */
  return model_load (ctx, path, data != NULL ? data : "",
      data != NULL ? len : 0, ndim, input_shape, out, err);
}

void
lens_model_free (LensModel * m)
{
  if (m == NULL)
    return;
  for (guint s = 0; s < m->steps->len; s++) {
    Step *step = step_at (m, s);
    lens_node_free (step->node);
    g_free (step->inputs);
    g_free (step->outputs);
  }
  g_array_free (m->steps, TRUE);
  g_hash_table_destroy (m->by_name);
  g_ptr_array_unref (m->values);
  lens_onnx_model_free (m->onnx);
  g_free (m->inputs);
  g_free (m->outputs);
  g_free (m->input_declared);
  g_free (m->output_declared);
  g_free (m->slot_bytes);
  g_free (m->path);
  g_free (m);
}

const char *
lens_model_path (const LensModel * m)
{
  return m->path;
}

const char *
lens_model_metadata (const LensModel * m, const char *key)
{
  return lens_onnx_model_metadata (m->onnx, key);
}

int
lens_model_n_inputs (const LensModel * m)
{
  return m->n_inputs;
}

int
lens_model_n_outputs (const LensModel * m)
{
  return m->n_outputs;
}

const char *
lens_model_input_name (const LensModel * m, int i)
{
  return i >= 0 && i < m->n_inputs ? value_at (m, m->inputs[i])->name : NULL;
}

const char *
lens_model_output_name (const LensModel * m, int i)
{
  return i >= 0 && i < m->n_outputs ? m->onnx->outputs[i] : NULL;
}

LensDType
lens_model_input_dtype (const LensModel * m, int i)
{
  return i >= 0 && i < m->n_inputs ? m->input_declared[i] :
      LENS_DTYPE_UNDEFINED;
}

LensDType
lens_model_output_dtype (const LensModel * m, int i)
{
  return i >= 0 && i < m->n_outputs ? m->output_declared[i] :
      LENS_DTYPE_UNDEFINED;
}

static int
copy_shape (const Value * v, int64_t *shape)
{
  memcpy (shape, v->shape, sizeof (int64_t) * v->ndim);
  return v->ndim;
}

int
lens_model_input_shape (const LensModel * m, int i, int64_t *shape)
{
  return i >= 0 && i < m->n_inputs ?
      copy_shape (value_at (m, m->inputs[i]), shape) : -1;
}

int
lens_model_output_shape (const LensModel * m, int i, int64_t *shape)
{
  return i >= 0 && i < m->n_outputs ?
      copy_shape (value_at (m, m->outputs[i]), shape) : -1;
}

int
lens_model_tensor_shape (const LensModel * m, const char *name,
    int64_t *shape)
{
  int v = value_lookup (m, name);

  return v >= 0 ? copy_shape (value_at (m, v), shape) : -1;
}

LensDType
lens_model_tensor_dtype (const LensModel * m, const char *name)
{
  int v = value_lookup (m, name);

  return v >= 0 ? value_at (m, v)->dtype : LENS_DTYPE_UNDEFINED;
}

int
lens_model_n_nodes (const LensModel * m)
{
  int n = 0;

  for (guint s = 0; s < m->steps->len; s++)
    n += !step_at (m, s)->removed;
  return n;
}

size_t
lens_model_weight_bytes (const LensModel * m)
{
  return m->weight_bytes;
}

size_t
lens_model_peak_bytes (const LensModel * m)
{
  return m->peak_bytes;
}

size_t
lens_model_unplanned_bytes (const LensModel * m)
{
  return m->unplanned_bytes;
}

static int64_t
value_numel (const Value * v)
{
  int64_t n = 1;

  for (int d = 0; d < v->ndim; d++)
    n *= v->shape[d];
  return n;
}

/* Operations of one step, from its op type and inferred shapes: the rule
 * behind lens-bench's GFLOP/s.
 *   Conv, ConvInteger: 2 per multiply-add, 2 * N*Cout*Hout*Wout *
 *     (Cin/group)*kh*kw (bias and fused activation not counted);
 *   MatMul, Gemm: 2 * M*N*K * batch;
 *   pure data movement (views, Transpose, Concat, Split, Slice, Pad,
 *     Gather*, Tile, Cast, Resize): 0;
 *   everything else (element-wise, activations, pooling, reductions,
 *     quantization): 1 per output element. */
static double
step_flops (const LensModel * m, const Step * step)
{
  static const char *const movement[] = {
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose",
    "Concat", "Split", "Slice", "Pad", "Gather", "GatherElements", "Tile",
    "Cast", "Shape", "Constant", "Resize", NULL
  };
  const char *op = step->node->op_type;
  const Value *out = step->outputs[0] >= 0 ?
      value_at (m, step->outputs[0]) : NULL;
  double flops = 0;

  if ((strcmp (op, "Conv") == 0 || strcmp (op, "ConvInteger") == 0)
      && out != NULL && step->n_inputs > 1 && step->inputs[1] >= 0) {
    const Value *w = value_at (m, step->inputs[1]);
    double per_output = 1;

    for (int d = 1; d < w->ndim; d++)
      per_output *= (double) w->shape[d];
    return 2.0 * (double) value_numel (out) * per_output;
  }
  if ((strcmp (op, "MatMul") == 0 || strcmp (op, "Gemm") == 0)
      && out != NULL && step->inputs[0] >= 0) {
    const Value *a = value_at (m, step->inputs[0]);
    int64_t k = a->ndim > 0 ? a->shape[a->ndim - 1] : 1;

    if (strcmp (op, "Gemm") == 0 && a->ndim == 2
        && lens_node_attr_int (step->node, "transA", 0))
      k = a->shape[0];
    return 2.0 * (double) value_numel (out) * (double) k;
  }
  for (int i = 0; movement[i] != NULL; i++)
    if (strcmp (op, movement[i]) == 0)
      return 0;
  for (int o = 0; o < step->n_outputs; o++)
    if (step->outputs[o] >= 0)
      flops += (double) value_numel (value_at (m, step->outputs[o]));
  return flops;
}

double
lens_model_flops (const LensModel * m)
{
  double flops = 0;

  for (guint s = 0; s < m->steps->len; s++)
    if (!step_at (m, s)->removed)
      flops += step_flops (m, step_at (m, s));
  return flops;
}

/* Values computed per inference are the outputs of the steps left to run
 * (fused or dropped steps' values are not), in execution order. */
static int
computed_value (const LensModel * m, int i)
{
  for (guint s = 0; s < m->steps->len; s++) {
    Step *step = step_at (m, s);
    if (step->removed)
      continue;
    if (i < step->n_outputs)
      return step->outputs[i];
    i -= step->n_outputs;
  }
  return -1;
}

int
lens_model_n_tensors (const LensModel * m)
{
  int n = 0;

  for (guint s = 0; s < m->steps->len; s++)
    if (!step_at (m, s)->removed)
      n += step_at (m, s)->n_outputs;
  return n;
}

const char *
lens_model_tensor_name (const LensModel * m, int i)
{
  int v = i >= 0 ? computed_value (m, i) : -1;

  return v >= 0 ? value_at (m, v)->name : NULL;
}

LensStatus
lens_model_keep_tensor (LensModel * m, const char *name, LensError *err)
{
  int v = value_lookup (m, name);

  if (g_atomic_int_get (&m->n_execs) > 0)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: tensor '%s' must be kept before the first execution context "
        "is made", m->path, name);
  if (v < 0)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: no tensor '%s' in the graph", m->path, name);
  /* constants and inputs are never overwritten */
  if (value_at (m, v)->producer < 0 || value_at (m, v)->keep)
    return LENS_OK;
  {
    Step *step = step_at (m, value_at (m, v)->producer);
    gboolean made = FALSE;

    for (int o = 0; !step->removed && o < step->n_outputs; o++)
      made |= step->outputs[o] == v;
    if (!made || value_at (m, v)->altered)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: tensor '%s' is not computed (a rewrite fused or dropped "
          "its node)", m->path, name);
  }
  value_at (m, v)->keep = TRUE;
  plan_memory (m);
  return LENS_OK;
}

/* ---- execution contexts ------------------------------------------------------ */

/* Host tensors that receive the outputs, written once here (page faults
 * of a fresh allocation cost more than the copy itself); constants get
 * their value now, as it never changes. */
static void
alloc_host_outputs (LensExec * e)
{
  LensModel *m = e->model;

  e->host_outputs = g_new0 (LensTensor *, MAX (m->n_outputs, 1));
  e->host_staging = g_new0 (LensTensor *, MAX (m->n_outputs, 1));
  for (int i = 0; i < m->n_outputs; i++) {
    LensTensor *t = e->tensors[m->outputs[i]];
    LensDType declared = t->dtype;
    LensTensor *host;

    if (m->output_declared[i] == LENS_DTYPE_FLOAT16
        && t->dtype == LENS_DTYPE_FLOAT)
      declared = LENS_DTYPE_FLOAT16;
    host = lens_tensor_new_host (declared, t->ndim, t->shape, NULL);
    lens_tensor_set_name (host, m->onnx->outputs[i]);
    if (declared != t->dtype)
      e->host_staging[i] = lens_tensor_new_host (t->dtype, t->ndim, t->shape,
          NULL);
    if (t->host != NULL && t->is_constant) {
      LensTensor *dst = e->host_staging[i] ? e->host_staging[i] : host;
      memcpy (dst->host, t->host, lens_tensor_nbytes (t));
      if (declared != t->dtype)
        lens_floats_to_halves (dst->host, host->host, lens_tensor_numel (t));
    }
    e->host_outputs[i] = host;
  }
}

/* Gives tensor @t the @bytes of @parent from byte @at on, as a
 * sub-buffer. */
static LensStatus
bind_sub_buffer (LensTensor * t, cl_mem parent, size_t at, size_t bytes,
    LensError *err)
{
  cl_buffer_region region = { at, bytes };
  cl_int rc;

  t->buffer = clCreateSubBuffer (parent, CL_MEM_READ_WRITE,
      CL_BUFFER_CREATE_TYPE_REGION, &region, &rc);
  if (rc != CL_SUCCESS) {
    t->buffer = NULL;
    return lens_error_set (err, LENS_ERROR_CL,
        "clCreateSubBuffer (%zu bytes at %zu, tensor '%s'): %s", bytes, at,
        t->name, lens_cl_error_name (rc));
  }
  t->buffer_bytes = bytes;
  return LENS_OK;
}

LensStatus
lens_exec_new (LensModel * m, LensExec ** out, LensError *err)
{
  LensExec *e;
  LensStatus st = LENS_OK;
  size_t range_stride, range_at = 0;
  cl_int rc;

  if (m->ctx == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: model was loaded without an OpenCL context: it cannot run",
        m->path);
  e = g_new0 (LensExec, 1);
  e->model = m;
  st = lens_context_new_like (m->ctx, &e->ctx, err);
  if (st != LENS_OK) {
    g_free (e);
    return st;
  }
  /* atomic: execution contexts of one model may be made in threads */
  g_atomic_int_inc (&m->n_execs);       /* lens_exec_free undoes it */
  e->slots = g_new0 (cl_mem, MAX (m->n_slots, 1));
  for (int k = 0; k < m->n_slots; k++) {
    e->slots[k] = clCreateBuffer (lens_context_get_cl_context (e->ctx),
        CL_MEM_READ_WRITE, m->slot_bytes[k], NULL, &rc);
    if (rc != CL_SUCCESS) {
      st = lens_error_set (err, LENS_ERROR_CL,
          "clCreateBuffer (%zu bytes, intermediate slot %d): %s",
          m->slot_bytes[k], k, lens_cl_error_name (rc));
      goto error;
    }
  }

  /* the ranges, each at its own sub-buffer alignment */
  range_stride = MAX (lens_context_sub_buffer_align (e->ctx),
      2 * sizeof (cl_int));
  for (guint v = 0; v < m->values->len; v++)
    if (value_at (m, (int) v)->is_range)
      e->ranges_bytes += range_stride;
  if (e->ranges_bytes > 0) {
    e->ranges = clCreateBuffer (lens_context_get_cl_context (e->ctx),
        CL_MEM_READ_WRITE, e->ranges_bytes, NULL, &rc);
    if (rc != CL_SUCCESS) {
      e->ranges = NULL;
      st = lens_error_set (err, LENS_ERROR_CL,
          "clCreateBuffer (%zu bytes, ranges): %s", e->ranges_bytes,
          lens_cl_error_name (rc));
      goto error;
    }
  }

  e->tensors = g_new0 (LensTensor *, m->values->len);
  for (guint v = 0; v < m->values->len; v++) {
    Value *val = value_at (m, (int) v);
    LensTensor *t;
    if (val->constant != NULL) {
      e->tensors[v] = val->constant;
      continue;
    }
    t = lens_tensor_new (val->dtype, val->ndim, val->shape);
    lens_tensor_set_name (t, val->name);
    e->tensors[v] = t;
    if (val->slot >= 0) {
      clRetainMemObject (e->slots[val->slot]);
      t->buffer = e->slots[val->slot];
      t->buffer_bytes = m->slot_bytes[val->slot];
    } else if (val->is_range) {
      st = bind_sub_buffer (t, e->ranges, range_at, value_bytes (val), err);
      range_at += range_stride;
    } else if (val->placed) {
      /* its producer writes straight into the Concat output, or it is a
       * slice of its input */
      st = bind_sub_buffer (t, e->slots[value_at (m, root_of (m,
                  (int) v))->slot], offset_in_root (m, (int) v),
          value_bytes (val), err);
    }
    if (st != LENS_OK)
      goto error;
  }
  for (int i = 0; i < m->n_inputs && st == LENS_OK; i++)
    st = lens_tensor_alloc_device (e->ctx, e->tensors[m->inputs[i]], err);
  if (st != LENS_OK)
    goto error;

  e->nodes = g_new0 (LensNode *, MAX (m->steps->len, 1));
  for (guint s = 0; s < m->steps->len; s++) {
    Step *step = step_at (m, s);
    LensNode *node;
    if (!step_runs (step))
      continue;
    node = lens_node_new (step->node->op_type, step->node->name,
        step->node->opset);
    lens_node_copy_attrs (node, step->node);
    lens_node_set_io (node, step->n_inputs, NULL, step->n_outputs, NULL);
    for (int i = 0; i < step->n_inputs; i++)
      node->inputs[i] = step->inputs[i] >= 0 ? e->tensors[step->inputs[i]] :
          NULL;
    for (int i = 0; i < step->n_outputs; i++)
      node->outputs[i] = e->tensors[step->outputs[i]];
    e->nodes[e->n_nodes++] = node;
    st = lens_node_init (node, err);
    if (st == LENS_OK)
      st = lens_node_reshape (node, err);
    if (st != LENS_OK)
      goto error;
  }
  alloc_host_outputs (e);
  *out = e;
  return LENS_OK;

error:
  lens_error_prefix (err, "%s: ", m->path);
  lens_exec_free (e);
  return st;
}

void
lens_exec_free (LensExec * e)
{
  LensModel *m;

  if (e == NULL)
    return;
  m = e->model;
  for (int n = 0; n < e->n_nodes; n++) {
    /* tensors belong to the exec (or the model), not the node */
    memset (e->nodes[n]->inputs, 0, sizeof (LensTensor *) *
        e->nodes[n]->n_inputs);
    memset (e->nodes[n]->outputs, 0, sizeof (LensTensor *) *
        e->nodes[n]->n_outputs);
    lens_node_free (e->nodes[n]);
  }
  g_free (e->nodes);
  g_free (e->profile);
  for (int i = 0; e->host_outputs != NULL && i < m->n_outputs; i++) {
    lens_tensor_free (e->host_outputs[i]);
    lens_tensor_free (e->host_staging[i]);
  }
  g_free (e->host_outputs);
  g_free (e->host_staging);
  /* last made, first released: NVIDIA's driver (580.159) crashed in
   * clReleaseMemObject on YOLOX's and the YOLO int8 models' placed
   * sub-buffers released in the order lens_exec_new made them */
  if (e->tensors != NULL)
    for (guint v = m->values->len; v-- > 0;)
      if (value_at (m, (int) v)->constant == NULL)
        lens_tensor_free (e->tensors[v]);
  g_free (e->tensors);
  for (int k = 0; k < m->n_slots; k++)
    if (e->slots[k] != NULL)
      clReleaseMemObject (e->slots[k]);
  g_free (e->slots);
  if (e->ranges != NULL)
    clReleaseMemObject (e->ranges);
  if (e->round_half != NULL)
    clReleaseKernel (e->round_half);
  lens_context_free (e->ctx);
  g_atomic_int_add (&m->n_execs, -1);
  g_free (e);
}

LensContext *
lens_exec_get_context (LensExec * e)
{
  return e->ctx;
}

LensTensor *
lens_exec_input (LensExec * e, int i)
{
  return i >= 0 && i < e->model->n_inputs ?
      e->tensors[e->model->inputs[i]] : NULL;
}

LensStatus
lens_exec_set_input (LensExec * e, int i, const LensTensor * t,
    LensError *err)
{
  LensModel *m = e->model;
  LensTensor *in = lens_exec_input (e, i);
  char want[128], got[128];
  gboolean same;

  if (in == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: the model has no input %d", m->path, i);
  same = t->ndim == in->ndim;
  for (int d = 0; same && d < in->ndim; d++)
    same = t->shape[d] == in->shape[d];
  if (!same || (t->dtype != in->dtype && !(t->dtype == LENS_DTYPE_FLOAT16
              && m->input_declared[i] == LENS_DTYPE_FLOAT16)))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: input '%s' must be %s, got %s", m->path, in->name,
        lens_tensor_describe (in, want, sizeof want),
        lens_tensor_describe (t, got, sizeof got));
  if (t->host == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: input '%s' has no host data", m->path, in->name);
  if (t->dtype == LENS_DTYPE_FLOAT16) {
    /* float16 bits from the host: lens computes in float32 */
    LensTensor *f = lens_tensor_new_host (LENS_DTYPE_FLOAT, t->ndim,
        t->shape, NULL);
    LensStatus st = LENS_OK;
    int64_t n = lens_tensor_numel (t);
    for (int64_t k = 0; k < n; k++)
      ((float *) f->host)[k] = lens_half_to_float (((uint16_t *) t->host)[k]);
    if (clEnqueueWriteBuffer (lens_context_get_queue (e->ctx), in->buffer,
            CL_TRUE, 0, lens_tensor_nbytes (f), f->host, 0, NULL, NULL)
        != CL_SUCCESS)
      st = lens_error_set (err, LENS_ERROR_CL,
          "clEnqueueWriteBuffer: writing input '%s' failed", in->name);
    lens_tensor_free (f);
    return st;
  }
  LENS_CL_CHECK (clEnqueueWriteBuffer (lens_context_get_queue (e->ctx),
          in->buffer, CL_TRUE, 0, lens_tensor_nbytes (t), t->host, 0, NULL,
          NULL), err);
  return LENS_OK;
}

/* Elements per work-item of lens_round_to_half (kernels/storage.cl: one
 * float16 vector) */
#define ROUND_HALF_SPAN 16

static LensStatus
round_input_to_half (LensExec * e, LensTensor * t, LensError *err)
{
  cl_uint n = (cl_uint) lens_tensor_numel (t);
  size_t global = (n + ROUND_HALF_SPAN - 1) / ROUND_HALF_SPAN;
  LensStatus st;

  if (e->round_half == NULL) {
    st = lens_context_create_kernel (e->ctx, "storage", "",
        "lens_round_to_half", &e->round_half, err);
    if (st != LENS_OK)
      return st;
  }
  st = lens_kernel_set_args (e->round_half, err, 2, LENS_ARG (t->buffer),
      LENS_ARG (n));
  if (st == LENS_OK)
    st = lens_context_enqueue (e->ctx, e->round_half, 1, &global, NULL, err);
  return st;
}

static LensStatus
enqueue_output_reads (LensExec * e, LensError *err)
{
  LensModel *m = e->model;

  for (int i = 0; i < m->n_outputs; i++) {
    LensTensor *t = e->tensors[m->outputs[i]];
    LensTensor *dst = e->host_staging[i] ? e->host_staging[i] :
        e->host_outputs[i];
    size_t bytes = lens_tensor_nbytes (t);
    cl_int rc;

    if ((t->host != NULL && t->is_constant) || bytes == 0)
      continue;
    rc = clEnqueueReadBuffer (lens_context_get_queue (e->ctx), t->buffer,
        CL_FALSE, t->offset * lens_dtype_size (t->dtype), bytes, dst->host, 0,
        NULL, NULL);
    if (rc != CL_SUCCESS)
      return lens_error_set (err, LENS_ERROR_CL,
          "clEnqueueReadBuffer (output '%s', %zu bytes): %s",
          m->onnx->outputs[i], bytes, lens_cl_error_name (rc));
  }
  return LENS_OK;
}

LensStatus
lens_exec_run (LensExec * e, LensError *err)
{
  LensStatus st = LENS_OK;

  e->profiled = FALSE;
  /* the ranges the ConvIntegers merge into start empty
   * (find_ranges_in_producers) */
  if (e->ranges != NULL)
    st = lens_ranges_reset (e->ctx, e->ranges, e->ranges_bytes, "ranges",
        err);
  /* an input the model declares float16 gets what a float16 runtime would
   * receive, whoever wrote it (set_input, or pre-processing on the device) */
  for (int i = 0; i < e->model->n_inputs && st == LENS_OK; i++)
    if (e->model->input_declared[i] == LENS_DTYPE_FLOAT16)
      st = round_input_to_half (e, lens_exec_input (e, i), err);
  for (int n = 0; n < e->n_nodes && st == LENS_OK; n++) {
    if (e->profiling)
      lens_context_set_profile_tag (e->ctx, n);
    st = lens_node_run (e->ctx, e->nodes[n], err);
  }
  if (st == LENS_OK)
    st = enqueue_output_reads (e, err);
  if (st == LENS_OK)
    st = lens_context_finish (e->ctx, err);
  for (int i = 0; i < e->model->n_outputs && st == LENS_OK; i++)
    if (e->host_staging[i] != NULL)
      lens_floats_to_halves (e->host_staging[i]->host,
          e->host_outputs[i]->host, lens_tensor_numel (e->host_staging[i]));
  if (e->profiling) {
    double *ms = g_new0 (double, MAX (e->n_nodes, 1));
    double *idle_ms = g_new0 (double, MAX (e->n_nodes, 1));
    int *launches = g_new0 (int, MAX (e->n_nodes, 1));
    /* after a failure too: the events of the launches made are released */
    LensStatus pst = lens_context_profile_collect (e->ctx, e->n_nodes, ms,
        idle_ms, launches, st == LENS_OK ? err : NULL);

    lens_context_set_profile_tag (e->ctx, -1);
    if (st == LENS_OK)
      st = pst;
    for (int n = 0; n < e->n_nodes && st == LENS_OK; n++) {
      e->profile[n].device_ms = ms[n];
      e->profile[n].idle_ms = idle_ms[n];
      e->profile[n].kernels = launches[n];
    }
    e->profiled = st == LENS_OK;
    g_free (ms);
    g_free (idle_ms);
    g_free (launches);
  }
  if (st != LENS_OK)
    lens_error_prefix (err, "%s: ", e->model->path);
  return st;
}

void
lens_exec_set_profiling (LensExec * e, gboolean on)
{
  LensModel *m = e->model;

  if (on && e->profile == NULL) {
    int n = 0;

    e->profile = g_new0 (LensNodeProfile, MAX (e->n_nodes, 1));
    for (guint s = 0; s < m->steps->len; s++) {
      Step *step = step_at (m, s);
      if (!step_runs (step))
        continue;
      e->profile[n].name = step->node->name;
      e->profile[n].op_type = step->node->op_type;
      e->profile[n].output = value_at (m, step->outputs[0])->name;
      e->profile[n].flops = step_flops (m, step);
      n++;
    }
  }
  e->profiling = on;
  e->profiled = FALSE;
  lens_context_set_profiling (e->ctx, on);
}

const LensNodeProfile *
lens_exec_profile (LensExec * e, int *n_nodes)
{
  if (n_nodes != NULL)
    *n_nodes = e->profiled ? e->n_nodes : 0;
  return e->profiled ? e->profile : NULL;
}

const LensTensor *
lens_exec_output (LensExec * e, int i)
{
  g_return_val_if_fail (i >= 0 && i < e->model->n_outputs, NULL);
  return e->host_outputs[i];
}

LensStatus
lens_exec_get_output (LensExec * e, int i, LensTensor ** out, LensError *err)
{
  LensModel *m = e->model;
  const LensTensor *host;

  if (i < 0 || i >= m->n_outputs)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: the model has no output %d", m->path, i);
  host = e->host_outputs[i];
  *out = lens_tensor_new_host (host->dtype, host->ndim, host->shape,
      host->host);
  lens_tensor_set_name (*out, host->name);
  return LENS_OK;
}

LensTensor *
lens_exec_tensor (LensExec * e, const char *name)
{
  int v = value_lookup (e->model, name);

  return v >= 0 ? e->tensors[v] : NULL;
}
