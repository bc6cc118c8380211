/* quant.c: DynamicQuantizeLinear (opset 11): float32 x to uint8 y with a
 * per-tensor scale and zero point computed from x's range, all on the
 * device (kernels/quant.cl: per-chunk min/max, then the parameters and
 * the quantization in one kernel) so that a following ConvInteger or
 * MatMulInteger reads the zero point without a host round trip. The
 * reference is in cl/ref/quant.c.
 *
 * Input 1 (lens-specific, set by the graph rewrite of cl/model.c) is
 * optional: x's range as the ConvInteger that produced x found it (its
 * range output, two int32 keys); the node then skips its own reduction
 * and runs the quantization alone, one launch instead of two. */
#include "lens-private.h"
#include "ref/quant.h"

#include <math.h>

/* Work-group size (-DDQL_GROUP): a GPU reduces across 256 work-items; a
 * CPU device (PoCL) runs a work-group's items one after the other and
 * pays per work-group, so there one work-item per group walks its whole
 * chunk in float16 vectors. */
#define DQL_GROUP_GPU 256
#define DQL_GROUP_CPU 1
/* Work-groups per compute unit, at most: a few more than one per core lets
 * a core that finishes early (or shares its time with another process)
 * take over the rest; a GPU wants several per multiprocessor. */
#define DQL_GROUPS_PER_CU 4
/* elements a work-group should at least get before another is added: the
 * launch and the re-reduction of the partials stay small next to it */
#define DQL_MIN_GROUP_ELEMENTS_CPU (16 * 1024)
#define DQL_MIN_GROUP_ELEMENTS_GPU (DQL_GROUP_GPU * 16 * 4)
/* the scratch buffer holds this many (min, max) pairs */
#define DQL_MAX_PARTIALS 1024

enum
{
  SLOT_MINMAX,
  SLOT_QUANTIZE,
};

/* node->priv: the scratch buffer of the (min, max) pairs of the first
 * kernel, and the context it belongs to */
typedef struct
{
  cl_context context;
  cl_mem partial;
} DqlState;

static LensStatus
dql_init (LensNode * node, LensError *err)
{
  node->priv = g_new0 (DqlState, 1);
  return LENS_OK;
}

static void
dql_exit (LensNode * node)
{
  DqlState *s = node->priv;

  if (s == NULL)
    return;
  /* the release waits for kernels still queued on the buffer */
  if (s->partial != NULL)
    clReleaseMemObject (s->partial);
  g_free (s);
  node->priv = NULL;
}

static LensStatus
dql_reshape (LensNode * node, LensError *err)
{
  static const LensDType floats[] = { LENS_DTYPE_FLOAT, LENS_DTYPE_UNDEFINED };
  LensTensor *x = lens_node_input (node, 0);
  LensTensor *range = lens_node_input (node, 1);
  LensStatus st;

  if (x == NULL || node->n_outputs != 3 || node->n_inputs > 2)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "DynamicQuantizeLinear needs input x (and optionally x's range) "
        "and outputs y, y_scale, y_zero_point");
  st = lens_node_check_dtype (node, "input x", x->dtype, floats, err);
  if (st != LENS_OK)
    return st;
  if (range != NULL && (range->dtype != LENS_DTYPE_INT32
          || lens_tensor_numel (range) != 2))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "DynamicQuantizeLinear: the range (input 1) must be 2 int32 keys, "
        "got %s %" G_GINT64_FORMAT " elements",
        lens_dtype_name (range->dtype), lens_tensor_numel (range));
  node->outputs[0]->dtype = LENS_DTYPE_UINT8;
  lens_tensor_set_shape (node->outputs[0], x->ndim, x->shape);
  node->outputs[1]->dtype = LENS_DTYPE_FLOAT;
  lens_tensor_set_shape (node->outputs[1], 0, NULL);
  node->outputs[2]->dtype = LENS_DTYPE_UINT8;
  lens_tensor_set_shape (node->outputs[2], 0, NULL);
  return LENS_OK;
}

static LensStatus
ensure_scratch (LensContext * ctx, DqlState * s, LensError *err)
{
  cl_context context = lens_context_get_cl_context (ctx);
  cl_int rc;

  if (s->partial != NULL && s->context == context)
    return LENS_OK;
  if (s->partial != NULL)
    clReleaseMemObject (s->partial);
  s->partial = clCreateBuffer (context, CL_MEM_READ_WRITE,
      2 * DQL_MAX_PARTIALS * sizeof (cl_float), NULL, &rc);
  if (rc != CL_SUCCESS) {
    s->partial = NULL;
    return lens_error_set (err, LENS_ERROR_CL,
        "DynamicQuantizeLinear: clCreateBuffer (scratch): %s",
        lens_cl_error_name (rc));
  }
  s->context = context;
  return LENS_OK;
}

static LensStatus
dql_run (LensContext * ctx, LensNode * node, LensError *err)
{
  static const char *const names[] = { "lens_dql_minmax_partial",
    "lens_dql_quantize"
  };
  DqlState *s = node->priv;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  LensTensor *range = lens_node_input (node, 1);
  LensTensor *y_scale = node->outputs[1], *y_zero_point = node->outputs[2];
  cl_long n = lens_tensor_numel (x), n_vec = n / 16, chunk;
  gboolean gpu = lens_context_is_gpu (ctx);
  size_t local = gpu ? DQL_GROUP_GPU : DQL_GROUP_CPU;
  int64_t min_elements = gpu ? DQL_MIN_GROUP_ELEMENTS_GPU :
      DQL_MIN_GROUP_ELEMENTS_CPU;
  cl_int groups, n_partials;
  cl_mem partial;
  cl_kernel k[2];
  int first;
  char *options;
  size_t global;
  LensStatus st = LENS_OK;

  for (int i = 0; i < node->n_outputs + 1 && st == LENS_OK; i++) {
    LensTensor *t = i == 0 ? x : node->outputs[i - 1];
    if (t->offset != 0)
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "DynamicQuantizeLinear: %s is a view with an offset",
          i == 0 ? "input x" : "an output");
    st = lens_tensor_require_device (t, i == 0 ? "input x" : "output", err);
  }
  if (st == LENS_OK && range != NULL)
    st = lens_node_require_dense (node, range, "input range", err);
  if (st == LENS_OK && range == NULL)
    st = ensure_scratch (ctx, s, err);
  if (st != LENS_OK)
    return st;

  /* formatted for the first run only: later ones find the kernels */
  first = range != NULL ? SLOT_QUANTIZE : SLOT_MINMAX;
  options = lens_node_built_kernel (node, first)
      && lens_node_built_kernel (node, SLOT_QUANTIZE) ? NULL :
      g_strdup_printf ("-DDQL_GROUP=%d%s", (int) local,
      range != NULL ? " -DDQL_RANGE_KEYS=1" : "");
  for (int i = first; i <= SLOT_QUANTIZE && st == LENS_OK; i++)
    st = lens_node_kernel (ctx, node, i, "quant", options, names[i], &k[i],
        err);
  g_free (options);
  if (st != LENS_OK)
    return st;
  for (int i = first; i <= SLOT_QUANTIZE; i++)
    if (lens_kernel_max_work_group (ctx, k[i]) < local)
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "DynamicQuantizeLinear: the device allows fewer than %d "
          "work-items per work-group for %s", (int) local, names[i]);

  /* a few long, contiguous chunks of float16 vectors (the last one
   * possibly shorter; the n % 16 elements after them go to work-item 0) */
  groups = (cl_int) CLAMP ((n + min_elements - 1) / min_elements, 1,
      MIN ((int64_t) lens_context_compute_units (ctx) * DQL_GROUPS_PER_CU,
          DQL_MAX_PARTIALS));
  chunk = (n_vec + groups - 1) / groups;
  if (chunk > 0)
    groups = (cl_int) ((n_vec + chunk - 1) / chunk);
  global = (size_t) groups * local;

  if (range != NULL) {
    partial = range->buffer;
    n_partials = 1;
  } else {
    st = lens_kernel_set_args (k[SLOT_MINMAX], err, 4, LENS_ARG (x->buffer),
        LENS_ARG (n), LENS_ARG (chunk), LENS_ARG (s->partial));
    if (st == LENS_OK)
      st = lens_context_enqueue (ctx, k[SLOT_MINMAX], 1, &global, &local,
          err);
    partial = s->partial;
    n_partials = groups;
  }
  if (st == LENS_OK)
    st = lens_kernel_set_args (k[SLOT_QUANTIZE], err, 8, LENS_ARG (x->buffer),
        LENS_ARG (n), LENS_ARG (chunk), LENS_ARG (partial),
        LENS_ARG (n_partials), LENS_ARG (y_scale->buffer),
        LENS_ARG (y_zero_point->buffer), LENS_ARG (y->buffer));
  if (st == LENS_OK)
    st = lens_context_enqueue (ctx, k[SLOT_QUANTIZE], 1, &global, &local,
        err);
  return st;
}

/* ---- self-test cases ------------------------------------------------------ */

typedef enum
{
  VALUES_UNIFORM,               /* uniform in [lo, hi) */
  VALUES_ZERO,
  /* multiples of 1/32 plus one half step: x / y_scale lands exactly on
   * .5 when the range [lo, hi] spans 255 steps (hi - lo = 255 / 32) */
  VALUES_HALF_STEPS,
  /* (k + 0.5) * y_scale, give or take an ulp, for a y_scale that is no
   * power of two: x / y_scale lands within an ulp or two of .5, where
   * x * (1 / y_scale) may round the other way (see dql_quotient16) */
  VALUES_NEAR_HALF,
} DqlValues;

/* The range input (1) of a case */
typedef enum
{
  RANGE_NONE,                   /* the node reduces x itself */
  RANGE_OF_X,                   /* x's own minimum and maximum */
  RANGE_WIDER,                  /* [lo - 1, hi + 1]: wider than x's */
  RANGE_EMPTY,                  /* as reset, no producer having run */
} DqlRange;

typedef struct
{
  int64_t n;                    /* 0: lens_awkward_size */
  DqlValues values;
  double lo, hi;
  int64_t rows;                 /* > 0: x is [rows, n] */
  DqlRange range;
} DqlCase;

static const DqlCase dql_cases[] = {
  { 1, VALUES_UNIFORM, -1, 1 },
  { 0, VALUES_UNIFORM, -2, 3, 3 },
  { 3, VALUES_UNIFORM, 0.5, 4 },        /* all positive */
  { 7, VALUES_UNIFORM, -9, -0.25 },     /* all negative */
  { 13, VALUES_ZERO },
  { 1, VALUES_ZERO },
  { 97, VALUES_HALF_STEPS, -100 / 32.0, 155 / 32.0 },
  { 1000, VALUES_HALF_STEPS, 0, 255 / 32.0 },
  { 4099, VALUES_HALF_STEPS, -255 / 32.0, 0 },
  /* the zero point itself lands on .5 (2.5 rounds to 2) */
  { 255, VALUES_HALF_STEPS, -2.5 / 32.0, 252.5 / 32.0 },
  { 4097, VALUES_UNIFORM, -3, 5 },
  { 65537, VALUES_UNIFORM, -1000, 1000 },
  { 99991, VALUES_UNIFORM, -10, 2 },
  { 1, VALUES_UNIFORM, -7, -7 },
  { 0, VALUES_UNIFORM, 1e-3, 2e-3 },
  /* many work-groups, ties in every chunk and in the n % 16 tail */
  { (1 << 20) + 7, VALUES_HALF_STEPS, -100 / 32.0, 155 / 32.0 },
  { 16 * 4099, VALUES_UNIFORM, -0.5, 64 },
  { 4099, VALUES_NEAR_HALF, -1, 2 },
  { 65536 + 13, VALUES_NEAR_HALF, -0.3, 7.1 },
  /* a subnormal scale (1 / scale overflows) */
  { 100, VALUES_UNIFORM, 0, 1e-38 },
  { 37, VALUES_UNIFORM, -3e-39, 2e-39 },
  /* the range given (input 1) */
  { 0, VALUES_UNIFORM, -2, 3, 3, RANGE_OF_X },
  { 4097, VALUES_HALF_STEPS, -100 / 32.0, 155 / 32.0, 0, RANGE_OF_X },
  { 97, VALUES_UNIFORM, 0.5, 4, 0, RANGE_WIDER },
  { 65537, VALUES_NEAR_HALF, -1, 2, 0, RANGE_OF_X },
  { 13, VALUES_ZERO, 0, 0, 0, RANGE_EMPTY },
};

static LensNode *
dql_case (int index, GRand * rand)
{
  const DqlCase *c;
  int64_t n, shape[2];
  float *data;
  LensTensor *inputs[2];
  float lo = INFINITY, hi = -INFINITY;
  int32_t keys[2];
  int64_t two = 2;

  if (index >= (int) G_N_ELEMENTS (dql_cases))
    return NULL;
  c = &dql_cases[index];
  shape[0] = c->rows;
  shape[1] = c->n ? c->n : lens_awkward_size (rand, TRUE);
  n = shape[1] * MAX (c->rows, 1);
  data = g_new0 (float, n);
  for (int64_t i = 0; i < n; i++) {
    switch (c->values) {
      case VALUES_UNIFORM:
        data[i] = (float) g_rand_double_range (rand, c->lo,
            MAX (c->hi, nextafter (c->lo, INFINITY)));
        break;
      case VALUES_ZERO:
        data[i] = 0.0f;
        break;
      case VALUES_HALF_STEPS:{
        /* steps of 1/32 from lo, plus the half step, staying below hi;
         * the first two elements pin the range to exactly [lo, hi] */
        int steps = (int) ((c->hi - c->lo) * 32);
        int k = g_rand_int_range (rand, 0, MAX (steps, 1));
        data[i] = i == 0 ? (float) c->lo : i == 1 ? (float) c->hi :
            (float) (c->lo + (k + 0.5) / 32.0);
        break;
      }
      case VALUES_NEAR_HALF:{
        /* y_scale as the kernel computes it from the range pinned by the
         * first two elements */
        float scale = ((float) c->hi - (float) c->lo) / 255.0f;
        int k = g_rand_int_range (rand, 0, 255);
        float v = (float) (c->lo + (k + 0.5) * (double) scale);
        int ulps = g_rand_int_range (rand, -2, 3);
        for (; ulps > 0; ulps--)
          v = nextafterf (v, INFINITY);
        for (; ulps < 0; ulps++)
          v = nextafterf (v, -INFINITY);
        data[i] = i == 0 ? (float) c->lo : i == 1 ? (float) c->hi :
            CLAMP (v, (float) c->lo, (float) c->hi);
        break;
      }
    }
  }
  inputs[0] = c->rows > 0 ? lens_tensor_new_host (LENS_DTYPE_FLOAT, 2, shape,
      data) : lens_tensor_new_host (LENS_DTYPE_FLOAT, 1, &shape[1], data);
  for (int64_t i = 0; i < n; i++) {
    lo = fminf (lo, data[i]);
    hi = fmaxf (hi, data[i]);
  }
  g_free (data);
  if (c->range == RANGE_NONE)
    return lens_case_node_new ("DynamicQuantizeLinear", 11, 1, inputs, 3);
  keys[0] = c->range == RANGE_EMPTY ? G_MAXINT32 :
      lens_ref_range_key (c->range == RANGE_WIDER ? lo - 1.0f : lo);
  keys[1] = c->range == RANGE_EMPTY ? G_MININT32 :
      lens_ref_range_key (c->range == RANGE_WIDER ? hi + 1.0f : hi);
  inputs[1] = lens_tensor_new_host (LENS_DTYPE_INT32, 1, &two, keys);
  return lens_case_node_new ("DynamicQuantizeLinear", 11, 2, inputs, 3);
}

const LensOp lens_op_dynamic_quantize_linear = {
  .op_type = "DynamicQuantizeLinear",
  .init = dql_init,
  .reshape = dql_reshape,
  .run = dql_run,
  .reference = lens_ref_dynamic_quantize_linear,
  .exit = dql_exit,
  .make_case = dql_case,
  .atol = 0,
  .rtol = 0,
};
