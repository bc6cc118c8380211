/* elementwise.c: the element-wise family: Add, Sub, Mul, Div, Pow, Mod with
 * numpy broadcasting; Sigmoid, Relu, LeakyRelu, HardSigmoid, HardSwish,
 * Exp, Floor; Clip. Kernels in kernels/elementwise.cl, references in
 * ref/elementwise.c. Also the helpers ops/misc.c's Cast shares
 * (ops/elementwise.h).
 *
 * One program per element type (-DTA) holds every kernel, the op chosen by
 * the kernel's name, so a float32 graph compiles the file once whatever
 * ops it uses. */
#include "ops/elementwise.h"
#include "ref/elementwise.h"

#include <math.h>
#include <string.h>

typedef struct
{
  LensBinaryOp binary;
  LensUnaryOp unary;
  float alpha, beta;            /* LeakyRelu alpha; HardSigmoid alpha, beta */
  /* Pow by a constant exponent of 2 (YOLO box decoding) runs as Mul of
   * the base by itself: exact where the device's pow is slow */
  gboolean square;
  /* Clip before opset 11 takes its bounds from attributes */
  gboolean has_min_attr, has_max_attr;
  float min_attr, max_attr;
} ElementwisePriv;

static const LensDType numeric_types[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT16, LENS_DTYPE_DOUBLE, LENS_DTYPE_UINT8,
  LENS_DTYPE_INT8, LENS_DTYPE_UINT16, LENS_DTYPE_INT16, LENS_DTYPE_INT32,
  LENS_DTYPE_INT64, LENS_DTYPE_UINT32, LENS_DTYPE_UINT64, LENS_DTYPE_UNDEFINED
};

static const LensDType float_types[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT16, LENS_DTYPE_DOUBLE, LENS_DTYPE_UNDEFINED
};

static const LensDType pow_base_types[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT16, LENS_DTYPE_DOUBLE, LENS_DTYPE_INT32,
  LENS_DTYPE_INT64, LENS_DTYPE_UNDEFINED
};

static const LensDType relu_types[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT16, LENS_DTYPE_DOUBLE, LENS_DTYPE_INT8,
  LENS_DTYPE_INT16, LENS_DTYPE_INT32, LENS_DTYPE_INT64, LENS_DTYPE_UNDEFINED
};

/* ---- helpers shared with ops/misc.c ------------------------------------------ */

static gboolean
device_has_fp64 (LensContext * ctx)
{
  cl_device_fp_config config = 0;

  if (clGetDeviceInfo (lens_context_get_device (ctx),
          CL_DEVICE_DOUBLE_FP_CONFIG, sizeof config, &config,
          NULL) != CL_SUCCESS)
    return FALSE;
  return config != 0;
}

LensStatus
lens_elementwise_kernel (LensContext * ctx, LensNode * node, int slot,
    LensDType ta, LensDType tb, const char *kernel_name, cl_kernel * out,
    LensError *err)
{
  char options[64];

  if ((ta == LENS_DTYPE_DOUBLE || tb == LENS_DTYPE_DOUBLE)
      && !device_has_fp64 (ctx))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: float64 tensors need the cl_khr_fp64 extension, which device "
        "'%s' lacks", node->op_type, lens_context_get_device_name (ctx));
  g_snprintf (options, sizeof options, "-DTA=%d", (int) ta);
  return lens_node_kernel (ctx, node, slot, "elementwise", options,
      kernel_name, out, err);
}

LensStatus
lens_elementwise_check_count (const LensNode * node, int64_t n,
    LensError *err)
{
  if (n > G_MAXINT32)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: %" G_GINT64_FORMAT " elements (at most %d supported)",
        node->op_type, n, G_MAXINT32);
  return LENS_OK;
}

/* ---- shared ------------------------------------------------------------------ */

static void
elementwise_exit (LensNode * node)
{
  g_clear_pointer (&node->priv, g_free);
}

static ElementwisePriv *
priv_new (LensNode * node)
{
  ElementwisePriv *priv = g_new0 (ElementwisePriv, 1);

  node->priv = priv;
  return priv;
}

/* Value ranges of random self-test inputs: integers span their type (or
 * ±2e9 for the wide ones) so that wrap-around gets exercised. */
static void
random_range (LensDType dtype, double *lo, double *hi)
{
  switch (dtype) {
    case LENS_DTYPE_UINT8: *lo = 0; *hi = 255; break;
    case LENS_DTYPE_INT8: *lo = -128; *hi = 127; break;
    case LENS_DTYPE_UINT16: *lo = 0; *hi = 65535; break;
    case LENS_DTYPE_INT16: *lo = -32768; *hi = 32767; break;
    case LENS_DTYPE_INT32: case LENS_DTYPE_INT64: *lo = -2e9; *hi = 2e9; break;
    case LENS_DTYPE_UINT32: case LENS_DTYPE_UINT64: *lo = 0; *hi = 2e9; break;
    default: *lo = -3; *hi = 3; break;
  }
}

static LensTensor *
random_tensor (LensDType dtype, int ndim, const int64_t *shape, GRand * rand,
    double lo, double hi)
{
  double type_lo, type_hi;

  /* lo > hi asks for the type's own range */
  if (lo > hi) {
    random_range (dtype, &type_lo, &type_hi);
    lo = type_lo;
    hi = type_hi;
  }
  return lens_tensor_new_random (dtype, ndim, shape, rand, lo, hi);
}

/* ---- binary ops ----------------------------------------------------------------- */

static const char *const binary_kernel_names[] = {
  [LENS_BINARY_ADD] = "add",
  [LENS_BINARY_SUB] = "sub",
  [LENS_BINARY_MUL] = "mul",
  [LENS_BINARY_DIV] = "div",
  [LENS_BINARY_POW] = "pow",   /* + "_<exponent type>" */
  [LENS_BINARY_MOD] = "mod",
  [LENS_BINARY_FMOD] = "fmod",
};

static LensStatus
binary_init (LensNode * node, LensBinaryOp op, LensError *err)
{
  /* before opset 7, broadcast=1 with 'axis' aligned B with a dimension of
   * A, which numpy broadcasting does not express; without 'axis' the
   * legacy rule is numpy's */
  if (node->opset < 7 && lens_node_attr_int (node, "broadcast", 0) != 0
      && lens_node_attr (node, "axis") != NULL)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: attribute 'axis' = %" G_GINT64_FORMAT " (legacy broadcasting "
        "of opset %d) is not supported", node->op_type,
        lens_node_attr_int (node, "axis", 0), node->opset);
  priv_new (node)->binary = op;
  return LENS_OK;
}

static LensStatus
add_init (LensNode * node, LensError *err)
{
  return binary_init (node, LENS_BINARY_ADD, err);
}

static LensStatus
sub_init (LensNode * node, LensError *err)
{
  return binary_init (node, LENS_BINARY_SUB, err);
}

static LensStatus
mul_init (LensNode * node, LensError *err)
{
  return binary_init (node, LENS_BINARY_MUL, err);
}

static LensStatus
div_init (LensNode * node, LensError *err)
{
  return binary_init (node, LENS_BINARY_DIV, err);
}

static LensStatus
pow_init (LensNode * node, LensError *err)
{
  return binary_init (node, LENS_BINARY_POW, err);
}

static LensStatus
mod_init (LensNode * node, LensError *err)
{
  int64_t fmod_attr = lens_node_attr_int (node, "fmod", 0);

  if (fmod_attr != 0 && fmod_attr != 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Mod: attribute 'fmod' = %" G_GINT64_FORMAT " (must be 0 or 1)",
        fmod_attr);
  return binary_init (node, fmod_attr ? LENS_BINARY_FMOD : LENS_BINARY_MOD,
      err);
}

static LensStatus
binary_reshape (LensNode * node, LensError *err)
{
  ElementwisePriv *priv = node->priv;
  LensTensor *a = lens_node_input (node, 0), *b = lens_node_input (node, 1);
  const LensTensor *both[2];
  int64_t shape[LENS_MAX_DIMS];
  int ndim;
  LensStatus st;

  if (a == NULL || b == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s needs two inputs and one output", node->op_type);
  if (priv->binary == LENS_BINARY_POW) {
    st = lens_node_check_dtype (node, "input X (base)", a->dtype,
        pow_base_types, err);
    if (st == LENS_OK)
      st = lens_node_check_dtype (node, "input Y (exponent)", b->dtype,
          numeric_types, err);
  } else {
    st = lens_node_check_dtype (node, "input A", a->dtype, numeric_types,
        err);
    if (st == LENS_OK && b->dtype != a->dtype)
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "%s: input B is %s but input A is %s (the types must match)",
          node->op_type, lens_dtype_name (b->dtype),
          lens_dtype_name (a->dtype));
  }
  if (st != LENS_OK)
    return st;
  if (priv->binary == LENS_BINARY_MOD && lens_dtype_is_float (a->dtype))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Mod: attribute 'fmod' = 0 is invalid for %s inputs (ONNX requires "
        "fmod=1 for floating point)", lens_dtype_name (a->dtype));
  priv->square = priv->binary == LENS_BINARY_POW
      && lens_dtype_is_float (a->dtype) && b->host != NULL && b->is_constant
      && lens_tensor_numel (b) == 1 && lens_tensor_get_f64 (b, 0) == 2.0;
  both[0] = a;
  both[1] = b;
  st = lens_broadcast_shapes (node, 2, both, &ndim, shape, err);
  if (st != LENS_OK)
    return st;
  node->outputs[0]->dtype = a->dtype;
  lens_tensor_set_shape (node->outputs[0], ndim, shape);
  return LENS_OK;
}

/* Drops the output's size-1 dimensions and merges neighbours that both
 * inputs traverse contiguously, then right-aligns the result in the
 * kernel's 8 slots (shape 1, stride 0 in front). Returns the rank: 1 (or
 * 0) when each input has the output's shape or a single element, the
 * kernel's fast case. */
static int
collapse_broadcast (int ndim, const int64_t *shape, const int64_t *a_in,
    const int64_t *b_in, cl_int8 * out_shape, cl_int8 * a_strides,
    cl_int8 * b_strides)
{
  int64_t s[LENS_MAX_DIMS], sa[LENS_MAX_DIMS], sb[LENS_MAX_DIMS];
  int rank = 0;

  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1)
      continue;
    if (rank > 0 && sa[rank - 1] == a_in[d] * shape[d]
        && sb[rank - 1] == b_in[d] * shape[d]) {
      s[rank - 1] *= shape[d];
      sa[rank - 1] = a_in[d];
      sb[rank - 1] = b_in[d];
      continue;
    }
    s[rank] = shape[d];
    sa[rank] = a_in[d];
    sb[rank] = b_in[d];
    rank++;
  }
  for (int k = 0; k < 8; k++) {
    int src = k - (8 - rank);
    out_shape->s[k] = src >= 0 ? (cl_int) s[src] : 1;
    a_strides->s[k] = src >= 0 ? (cl_int) sa[src] : 0;
    b_strides->s[k] = src >= 0 ? (cl_int) sb[src] : 0;
  }
  return rank;
}

static LensStatus
binary_run (LensContext * ctx, LensNode * node, LensError *err)
{
  ElementwisePriv *priv = node->priv;
  LensTensor *a = node->inputs[0], *b = node->inputs[1], *y = node->outputs[0];
  const char *name = binary_kernel_names[priv->binary];
  int64_t n = lens_tensor_numel (y);
  int64_t a_in[LENS_MAX_DIMS], b_in[LENS_MAX_DIMS];
  char kernel_name[32], exponent[8] = "";
  cl_int8 shape, a_strides, b_strides;
  cl_int count = (cl_int) n, rank;
  cl_kernel k;
  LensStatus st;

  st = lens_node_require_dense (node, a, "input A", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, b, "input B", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st == LENS_OK)
    st = lens_elementwise_check_count (node, n, err);
  if (st != LENS_OK || n == 0)
    return st;

  if (priv->square) {
    /* the exponent broadcasts as a single element: a * a has y's shape */
    name = binary_kernel_names[LENS_BINARY_MUL];
    b = a;
  } else if (priv->binary == LENS_BINARY_POW) {
    g_snprintf (exponent, sizeof exponent, "_%d", (int) b->dtype);
  }
  lens_broadcast_strides (a, y->ndim, y->shape, a_in);
  lens_broadcast_strides (b, y->ndim, y->shape, b_in);
  rank = collapse_broadcast (y->ndim, y->shape, a_in, b_in, &shape,
      &a_strides, &b_strides);
  g_snprintf (kernel_name, sizeof kernel_name, "lens_%s%s", name, exponent);
  st = lens_elementwise_kernel (ctx, node, priv->square, a->dtype, b->dtype,
      kernel_name, &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 8, LENS_ARG (a->buffer),
        LENS_ARG (b->buffer), LENS_ARG (y->buffer), LENS_ARG (count),
        LENS_ARG (rank), LENS_ARG (shape), LENS_ARG (a_strides),
        LENS_ARG (b_strides));
  if (st != LENS_OK)
    return st;
  return lens_context_enqueue_1d (ctx, k, n, err);
}

static LensStatus
binary_reference (LensNode * node, LensError *err)
{
  ElementwisePriv *priv = node->priv;

  lens_ref_binary (priv->binary, node->inputs[0], node->inputs[1],
      node->outputs[0]);
  return LENS_OK;
}

/* Input shapes for case @index: the same shape, one side a single element
 * (these two collapse to rank 1), or general broadcasting. */
static void
random_binary_shapes (int index, GRand * rand, int *nda, int64_t *a,
    int *ndb, int64_t *b)
{
  int ndim = g_rand_int_range (rand, 1, 5);
  int64_t out[LENS_MAX_DIMS];

  for (int d = 0; d < ndim; d++)
    out[d] = lens_awkward_size (rand, d == ndim - 1);
  *nda = *ndb = ndim;
  memcpy (a, out, sizeof (int64_t) * ndim);
  memcpy (b, out, sizeof (int64_t) * ndim);
  switch (index % 4) {
    case 0:
      break;
    case 1:
      *ndb = 0;                 /* a scalar */
      break;
    case 2:
      *nda = 1;
      a[0] = 1;
      break;
    default:
      /* b drops leading dimensions; each side keeps some dimensions as 1 */
      *ndb = g_rand_int_range (rand, 1, ndim + 1);
      memcpy (b, out + ndim - *ndb, sizeof (int64_t) * *ndb);
      for (int d = 0; d < ndim; d++)
        if (g_rand_int_range (rand, 0, 3) == 0)
          a[d] = 1;
      for (int d = 0; d < *ndb; d++)
        if (g_rand_int_range (rand, 0, 3) == 0)
          b[d] = 1;
      break;
  }
}

/* A binary case of the given types; lo > hi asks for the type's range. */
static LensNode *
binary_case_new (const char *op_type, int opset, int index, GRand * rand,
    LensDType ta, double a_lo, double a_hi, LensDType tb, double b_lo,
    double b_hi)
{
  int64_t a_shape[LENS_MAX_DIMS], b_shape[LENS_MAX_DIMS];
  LensTensor *inputs[2];
  int nda, ndb;

  random_binary_shapes (index, rand, &nda, a_shape, &ndb, b_shape);
  inputs[0] = random_tensor (ta, nda, a_shape, rand, a_lo, a_hi);
  inputs[1] = random_tensor (tb, ndb, b_shape, rand, b_lo, b_hi);
  return lens_case_node_new (op_type, opset, 2, inputs, 1);
}

/* Add runs every type, full ranges (integers wrap around); Sub and Mul,
 * whose loads and stores are Add's, the first nine. */
static const LensDType arithmetic_case_types[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT,
  LENS_DTYPE_INT32, LENS_DTYPE_UINT8, LENS_DTYPE_INT64, LENS_DTYPE_FLOAT16,
  LENS_DTYPE_DOUBLE, LENS_DTYPE_INT8, LENS_DTYPE_UINT16, LENS_DTYPE_INT16,
  LENS_DTYPE_UINT32, LENS_DTYPE_UINT64,
};

static LensNode *
arithmetic_case (const char *op_type, int n_cases, int index, GRand * rand)
{
  LensDType t;

  if (index >= n_cases)
    return NULL;
  t = arithmetic_case_types[index];
  return binary_case_new (op_type, 14, index, rand, t, 1, 0, t, 1, 0);
}

static LensNode *
add_case (int index, GRand * rand)
{
  return arithmetic_case ("Add", G_N_ELEMENTS (arithmetic_case_types), index,
      rand);
}

static LensNode *
sub_case (int index, GRand * rand)
{
  return arithmetic_case ("Sub", 9, index, rand);
}

static LensNode *
mul_case (int index, GRand * rand)
{
  return arithmetic_case ("Mul", 9, index, rand);
}

/* Div: float16 is left out, as float32 division rounded to float16 may
 * differ from the reference's double one by a float16 ulp. Integer
 * divisors are small, so that 0 and -1 occur. */
static LensNode *
div_case (int index, GRand * rand)
{
  static const LensDType types[] = {
    LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT,
    LENS_DTYPE_INT32, LENS_DTYPE_UINT8, LENS_DTYPE_INT64, LENS_DTYPE_INT8,
    LENS_DTYPE_DOUBLE, LENS_DTYPE_UINT64, LENS_DTYPE_INT16, LENS_DTYPE_UINT32,
  };
  LensDType t;

  if (index >= (int) G_N_ELEMENTS (types))
    return NULL;
  t = types[index];
  if (lens_dtype_is_float (t))
    return binary_case_new ("Div", 14, index, rand, t, -3, 3, t, 0.25, 3);
  return binary_case_new ("Div", 14, index, rand, t, 1, 0, t,
      t == LENS_DTYPE_INT8 || t == LENS_DTYPE_INT16 || t == LENS_DTYPE_INT32
      || t == LENS_DTYPE_INT64 ? -4 : 0, 4);
}

/* Pow: float bases with float and integer exponents, integer bases with
 * integer, float and integral-float exponents. Not float16: powf rounded
 * to float16 may differ from the reference's pow by a float16 ulp. */
static LensNode *
pow_case (int index, GRand * rand)
{
  static const struct
  {
    LensDType base, exponent;
    double base_lo, base_hi, exp_lo, exp_hi;
    gboolean integral;          /* round the float exponents */
  } cases[] = {
    { LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT, 0.1, 3, -2, 2, FALSE },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT, 0.1, 3, -2, 2, FALSE },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT, -3, 3, -3, 3, TRUE },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT, 0.1, 3, -2, 2, FALSE },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_INT32, -3, 3, -3, 3, FALSE },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_INT64, -3, 3, -3, 3, FALSE },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_UINT32, -3, 3, 0, 5, FALSE },
    { LENS_DTYPE_FLOAT, LENS_DTYPE_UINT64, -3, 3, 0, 5, FALSE },
    { LENS_DTYPE_INT32, LENS_DTYPE_INT32, -6, 6, -2, 12, FALSE },
    { LENS_DTYPE_INT64, LENS_DTYPE_INT64, -6, 6, -2, 25, FALSE },
    { LENS_DTYPE_INT32, LENS_DTYPE_FLOAT, 0, 9, 0, 3, FALSE },
    { LENS_DTYPE_INT64, LENS_DTYPE_FLOAT, -9, 9, -2, 6, TRUE },
    { LENS_DTYPE_INT64, LENS_DTYPE_UINT8, -5, 5, 0, 20, FALSE },
    { LENS_DTYPE_DOUBLE, LENS_DTYPE_DOUBLE, 0.1, 3, -3, 3, FALSE },
    { LENS_DTYPE_DOUBLE, LENS_DTYPE_INT16, -3, 3, -4, 4, FALSE },
  };
  LensNode *node;

  if (index >= (int) G_N_ELEMENTS (cases) + 2) {
    return NULL;
  } else if (index >= (int) G_N_ELEMENTS (cases)) {
    /* a constant exponent of 2, a scalar or of rank 2: the square */
    int64_t x_shape[3] = { 3, 7, 97 }, e_shape[2] = { 1, 1 };
    LensTensor *inputs[2];
    gboolean scalar = index % 2 == 0;
    inputs[0] = random_tensor (scalar ? LENS_DTYPE_FLOAT : LENS_DTYPE_DOUBLE,
        scalar ? 3 : 1, scalar ? x_shape : x_shape + 2, rand, -3, 3);
    inputs[1] = lens_tensor_new_host (LENS_DTYPE_FLOAT, scalar ? 0 : 2,
        e_shape, NULL);
    lens_tensor_set_f64 (inputs[1], 0, 2.0);
    inputs[1]->is_constant = TRUE;
    return lens_case_node_new ("Pow", 15, 2, inputs, 1);
  }
  node = binary_case_new ("Pow", 15, index, rand, cases[index].base,
      cases[index].base_lo, cases[index].base_hi, cases[index].exponent,
      cases[index].exp_lo, cases[index].exp_hi);
  if (cases[index].integral) {
    LensTensor *e = node->inputs[1];
    for (int64_t i = 0; i < lens_tensor_numel (e); i++)
      lens_tensor_set_f64 (e, i, floor (lens_tensor_get_f64 (e, i)));
  }
  return node;
}

/* Mod: Python's % over every integer type, C's fmod over integers and
 * floats; divisors small so that 0 and -1 occur. */
static LensNode *
mod_case (int index, GRand * rand)
{
  static const struct
  {
    LensDType type;
    int fmod;
  } cases[] = {
    { LENS_DTYPE_INT32, 0 }, { LENS_DTYPE_INT8, 0 }, { LENS_DTYPE_INT16, 0 },
    { LENS_DTYPE_INT64, 0 }, { LENS_DTYPE_UINT8, 0 }, { LENS_DTYPE_UINT16, 0 },
    { LENS_DTYPE_UINT32, 0 }, { LENS_DTYPE_UINT64, 0 },
    { LENS_DTYPE_INT32, 1 }, { LENS_DTYPE_INT64, 1 }, { LENS_DTYPE_INT8, 1 },
    { LENS_DTYPE_FLOAT, 1 }, { LENS_DTYPE_FLOAT, 1 }, { LENS_DTYPE_FLOAT16, 1 },
    { LENS_DTYPE_DOUBLE, 1 },
  };
  LensDType t;
  LensNode *node;
  gboolean is_signed;

  if (index >= (int) G_N_ELEMENTS (cases))
    return NULL;
  t = cases[index].type;
  is_signed = t == LENS_DTYPE_INT8 || t == LENS_DTYPE_INT16 ||
      t == LENS_DTYPE_INT32 || t == LENS_DTYPE_INT64;
  if (lens_dtype_is_float (t))
    node = binary_case_new ("Mod", 13, index, rand, t, -10, 10, t, -4, 4);
  else
    node = binary_case_new ("Mod", 13, index, rand, t, 1, 0, t,
        is_signed ? -9 : 0, 9);
  lens_node_set_attr_int (node, "fmod", cases[index].fmod);
  return node;
}

#define BINARY_OP(var, type, init_fn, case_fn) \
const LensOp var = { \
  .op_type = type, \
  .init = init_fn, \
  .reshape = binary_reshape, \
  .run = binary_run, \
  .reference = binary_reference, \
  .exit = elementwise_exit, \
  .make_case = case_fn, \
  .atol = 1e-5, \
  .rtol = 1e-5, \
}

BINARY_OP (lens_op_add, "Add", add_init, add_case);
BINARY_OP (lens_op_sub, "Sub", sub_init, sub_case);
BINARY_OP (lens_op_mul, "Mul", mul_init, mul_case);
BINARY_OP (lens_op_div, "Div", div_init, div_case);
BINARY_OP (lens_op_pow, "Pow", pow_init, pow_case);
BINARY_OP (lens_op_mod, "Mod", mod_init, mod_case);

/* ---- unary ops --------------------------------------------------------------- */

static const char *const unary_kernel_names[] = {
  [LENS_UNARY_RELU] = "lens_relu",
  [LENS_UNARY_LEAKY_RELU] = "lens_leaky_relu",
  [LENS_UNARY_SIGMOID] = "lens_sigmoid",
  [LENS_UNARY_HARD_SIGMOID] = "lens_hard_sigmoid",
  [LENS_UNARY_HARD_SWISH] = "lens_hard_swish",
  [LENS_UNARY_EXP] = "lens_exp",
  [LENS_UNARY_FLOOR] = "lens_floor",
};

static LensStatus
unary_init (LensNode * node, LensUnaryOp op, float alpha, float beta)
{
  ElementwisePriv *priv = priv_new (node);

  priv->unary = op;
  priv->alpha = alpha;
  priv->beta = beta;
  return LENS_OK;
}

static LensStatus
relu_init (LensNode * node, LensError *err)
{
  return unary_init (node, LENS_UNARY_RELU, 0, 0);
}

static LensStatus
leaky_relu_init (LensNode * node, LensError *err)
{
  return unary_init (node, LENS_UNARY_LEAKY_RELU,
      lens_node_attr_float (node, "alpha", 0.01f), 0);
}

static LensStatus
sigmoid_init (LensNode * node, LensError *err)
{
  return unary_init (node, LENS_UNARY_SIGMOID, 0, 0);
}

static LensStatus
hard_sigmoid_init (LensNode * node, LensError *err)
{
  return unary_init (node, LENS_UNARY_HARD_SIGMOID,
      lens_node_attr_float (node, "alpha", 0.2f),
      lens_node_attr_float (node, "beta", 0.5f));
}

static LensStatus
hard_swish_init (LensNode * node, LensError *err)
{
  return unary_init (node, LENS_UNARY_HARD_SWISH, 0, 0);
}

static LensStatus
exp_init (LensNode * node, LensError *err)
{
  return unary_init (node, LENS_UNARY_EXP, 0, 0);
}

static LensStatus
floor_init (LensNode * node, LensError *err)
{
  return unary_init (node, LENS_UNARY_FLOOR, 0, 0);
}

static LensStatus
unary_reshape (LensNode * node, LensError *err)
{
  ElementwisePriv *priv = node->priv;
  LensTensor *x = lens_node_input (node, 0);
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s needs one input and one output", node->op_type);
  st = lens_node_check_dtype (node, "input X", x->dtype,
      priv->unary == LENS_UNARY_RELU ? relu_types : float_types, err);
  if (st != LENS_OK)
    return st;
  node->outputs[0]->dtype = x->dtype;
  lens_tensor_set_shape (node->outputs[0], x->ndim, x->shape);
  return LENS_OK;
}

static LensStatus
unary_run (LensContext * ctx, LensNode * node, LensError *err)
{
  ElementwisePriv *priv = node->priv;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  int64_t n = lens_tensor_numel (y);
  cl_int count = (cl_int) n;
  cl_kernel k;
  LensStatus st;

  st = lens_node_require_dense (node, x, "input X", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st == LENS_OK)
    st = lens_elementwise_check_count (node, n, err);
  if (st != LENS_OK || n == 0)
    return st;
  st = lens_elementwise_kernel (ctx, node, 0, x->dtype, x->dtype,
      unary_kernel_names[priv->unary], &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 5, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (count), LENS_ARG (priv->alpha),
        LENS_ARG (priv->beta));
  if (st != LENS_OK)
    return st;
  return lens_context_enqueue_1d (ctx, k, n, err);
}

static LensStatus
unary_reference (LensNode * node, LensError *err)
{
  ElementwisePriv *priv = node->priv;

  lens_ref_unary (priv->unary, priv->alpha, priv->beta, node->inputs[0],
      node->outputs[0]);
  return LENS_OK;
}

/* A unary case: float32 mostly, float64 and (for @half_exact ops, whose
 * float formula rounds the same in C and OpenCL) float16 too. */
static LensNode *
unary_case_new (const char *op_type, int opset, int index, GRand * rand,
    double lo, double hi, gboolean half_exact)
{
  int64_t shape[LENS_MAX_DIMS];
  int ndim = g_rand_int_range (rand, 1, 5);
  LensDType t = LENS_DTYPE_FLOAT;
  LensTensor *x;

  if (index >= 10)
    return NULL;
  if (index == 7)
    t = LENS_DTYPE_DOUBLE;
  else if (index == 8 && half_exact)
    t = LENS_DTYPE_FLOAT16;
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  x = lens_tensor_new_random (t, ndim, shape, rand, lo, hi);
  return lens_case_node_new (op_type, opset, 1, &x, 1);
}

static LensNode *
relu_case (int index, GRand * rand)
{
  static const LensDType int_types[] = {
    LENS_DTYPE_INT8, LENS_DTYPE_INT16, LENS_DTYPE_INT32, LENS_DTYPE_INT64,
  };
  int64_t shape[2];
  LensTensor *x;

  if (index < 10)
    return unary_case_new ("Relu", 14, index, rand, -3, 3, TRUE);
  if (index >= 10 + (int) G_N_ELEMENTS (int_types))
    return NULL;
  shape[0] = lens_awkward_size (rand, FALSE);
  shape[1] = lens_awkward_size (rand, TRUE);
  x = random_tensor (int_types[index - 10], 2, shape, rand, 1, 0);
  return lens_case_node_new ("Relu", 14, 1, &x, 1);
}

static LensNode *
leaky_relu_case (int index, GRand * rand)
{
  LensNode *node = unary_case_new ("LeakyRelu", 16, index, rand, -3, 3, TRUE);

  if (node != NULL && index % 3 != 0)
    lens_node_set_attr_float (node, "alpha",
        (float) g_rand_double_range (rand, 0, 0.5));
  return node;
}

static LensNode *
sigmoid_case (int index, GRand * rand)
{
  return unary_case_new ("Sigmoid", 13, index, rand, -12, 12, FALSE);
}

static LensNode *
hard_sigmoid_case (int index, GRand * rand)
{
  LensNode *node = unary_case_new ("HardSigmoid", 6, index, rand, -6, 6,
      FALSE);

  if (node != NULL && index % 3 != 0) {
    lens_node_set_attr_float (node, "alpha",
        (float) g_rand_double_range (rand, 0.1, 0.5));
    lens_node_set_attr_float (node, "beta",
        (float) g_rand_double_range (rand, 0.2, 0.8));
  }
  return node;
}

static LensNode *
hard_swish_case (int index, GRand * rand)
{
  return unary_case_new ("HardSwish", 14, index, rand, -5, 5, FALSE);
}

static LensNode *
exp_case (int index, GRand * rand)
{
  return unary_case_new ("Exp", 13, index, rand, -10, 10, FALSE);
}

static LensNode *
floor_case (int index, GRand * rand)
{
  return unary_case_new ("Floor", 13, index, rand, -20, 20, TRUE);
}

#define UNARY_OP(var, type, init_fn, case_fn) \
const LensOp var = { \
  .op_type = type, \
  .init = init_fn, \
  .reshape = unary_reshape, \
  .run = unary_run, \
  .reference = unary_reference, \
  .exit = elementwise_exit, \
  .make_case = case_fn, \
  .atol = 1e-5, \
  .rtol = 1e-5, \
}

UNARY_OP (lens_op_relu, "Relu", relu_init, relu_case);
UNARY_OP (lens_op_leaky_relu, "LeakyRelu", leaky_relu_init, leaky_relu_case);
UNARY_OP (lens_op_sigmoid, "Sigmoid", sigmoid_init, sigmoid_case);
UNARY_OP (lens_op_hard_sigmoid, "HardSigmoid", hard_sigmoid_init,
    hard_sigmoid_case);
UNARY_OP (lens_op_hard_swish, "HardSwish", hard_swish_init, hard_swish_case);
UNARY_OP (lens_op_exp, "Exp", exp_init, exp_case);
UNARY_OP (lens_op_floor, "Floor", floor_init, floor_case);

/* ---- Clip -------------------------------------------------------------------- */

/* flags of lens_clip, as elementwise.cl numbers them */
#define CLIP_HAS_MIN 1
#define CLIP_MIN_BUFFER 2
#define CLIP_HAS_MAX 4
#define CLIP_MAX_BUFFER 8

static LensStatus
clip_init (LensNode * node, LensError *err)
{
  ElementwisePriv *priv = priv_new (node);

  /* opset 11 moved the bounds from attributes to optional inputs */
  if (node->opset < 11) {
    priv->has_min_attr = lens_node_attr (node, "min") != NULL;
    priv->has_max_attr = lens_node_attr (node, "max") != NULL;
    priv->min_attr = lens_node_attr_float (node, "min", 0);
    priv->max_attr = lens_node_attr_float (node, "max", 0);
  }
  return LENS_OK;
}

static LensStatus
clip_reshape (LensNode * node, LensError *err)
{
  LensTensor *x = lens_node_input (node, 0);
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Clip needs input X and one output");
  /* integers arrived with opset 12, with the bounds as inputs */
  st = lens_node_check_dtype (node, "input X", x->dtype,
      node->opset < 11 ? float_types : numeric_types, err);
  for (int i = 1; i <= 2 && st == LENS_OK; i++) {
    LensTensor *bound = lens_node_input (node, i);
    const char *what = i == 1 ? "min" : "max";
    if (bound == NULL)
      continue;
    if (bound->dtype != x->dtype)
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "Clip: input '%s' is %s but input X is %s (the types must match)",
          what, lens_dtype_name (bound->dtype), lens_dtype_name (x->dtype));
    else if (lens_tensor_numel (bound) != 1)
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "Clip: input '%s' has %" G_GINT64_FORMAT " elements (must be a "
          "scalar)", what, lens_tensor_numel (bound));
  }
  if (st != LENS_OK)
    return st;
  node->outputs[0]->dtype = x->dtype;
  lens_tensor_set_shape (node->outputs[0], x->ndim, x->shape);
  return LENS_OK;
}

static LensStatus
clip_run (LensContext * ctx, LensNode * node, LensError *err)
{
  ElementwisePriv *priv = node->priv;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  LensTensor *lo = lens_node_input (node, 1), *hi = lens_node_input (node, 2);
  int64_t n = lens_tensor_numel (y);
  cl_int count = (cl_int) n, flags = 0;
  cl_mem lo_buffer, hi_buffer;
  cl_kernel k;
  LensStatus st;

  st = lens_node_require_dense (node, x, "input X", err);
  if (st == LENS_OK)
    st = lens_node_require_dense (node, y, "output", err);
  if (st == LENS_OK && lo != NULL)
    st = lens_node_require_dense (node, lo, "input min", err);
  if (st == LENS_OK && hi != NULL)
    st = lens_node_require_dense (node, hi, "input max", err);
  if (st == LENS_OK)
    st = lens_elementwise_check_count (node, n, err);
  if (st != LENS_OK || n == 0)
    return st;

  /* an absent bound's buffer argument is never read: x stands in */
  lo_buffer = lo ? lo->buffer : x->buffer;
  hi_buffer = hi ? hi->buffer : x->buffer;
  if (lo != NULL)
    flags |= CLIP_HAS_MIN | CLIP_MIN_BUFFER;
  else if (priv->has_min_attr)
    flags |= CLIP_HAS_MIN;
  if (hi != NULL)
    flags |= CLIP_HAS_MAX | CLIP_MAX_BUFFER;
  else if (priv->has_max_attr)
    flags |= CLIP_HAS_MAX;

  st = lens_elementwise_kernel (ctx, node, 0, x->dtype, x->dtype,
      "lens_clip", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 8, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (count), LENS_ARG (lo_buffer),
        LENS_ARG (hi_buffer), LENS_ARG (flags), LENS_ARG (priv->min_attr),
        LENS_ARG (priv->max_attr));
  if (st != LENS_OK)
    return st;
  return lens_context_enqueue_1d (ctx, k, n, err);
}

static LensStatus
clip_reference (LensNode * node, LensError *err)
{
  ElementwisePriv *priv = node->priv;

  lens_ref_clip (node->inputs[0], lens_node_input (node, 1),
      lens_node_input (node, 2), priv->has_min_attr, priv->min_attr,
      priv->has_max_attr, priv->max_attr, node->outputs[0]);
  return LENS_OK;
}

/* Cases 0-9 float32 at opset 13 with every combination of bounds, some
 * crossed (min > max); 10-13 opset 6 attributes; 14+ other types. */
static LensNode *
clip_case (int index, GRand * rand)
{
  static const LensDType other_types[] = {
    LENS_DTYPE_INT8, LENS_DTYPE_INT32, LENS_DTYPE_UINT8, LENS_DTYPE_INT64,
    LENS_DTYPE_UINT64, LENS_DTYPE_FLOAT16, LENS_DTYPE_DOUBLE,
    LENS_DTYPE_UINT16,
  };
  int64_t shape[LENS_MAX_DIMS];
  int ndim = g_rand_int_range (rand, 1, 5);
  LensDType t = LENS_DTYPE_FLOAT;
  LensTensor *inputs[3] = { NULL, NULL, NULL };
  double lo, hi;
  LensNode *node;

  if (index >= 14 + (int) G_N_ELEMENTS (other_types))
    return NULL;
  if (index >= 14)
    t = other_types[index - 14];
  for (int d = 0; d < ndim; d++)
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
  random_range (t, &lo, &hi);
  inputs[0] = lens_tensor_new_random (t, ndim, shape, rand, lo, hi);

  if (index >= 10 && index < 14) {
    node = lens_case_node_new ("Clip", 6, 1, inputs, 1);
    if (index & 1)
      lens_node_set_attr_float (node, "min",
          (float) g_rand_double_range (rand, -2, 0));
    if (index & 2)
      lens_node_set_attr_float (node, "max",
          (float) g_rand_double_range (rand, 0, 2));
    return node;
  }
  /* bounds: both, min only, max only, neither, in turn */
  if (index % 4 != 2 && index % 4 != 3)
    inputs[1] = lens_tensor_new_random (t, 0, NULL, rand, lo, lo + (hi - lo)
        * (index == 4 ? 0.9 : 0.4));
  if (index % 4 == 0 || index % 4 == 2)
    inputs[2] = lens_tensor_new_random (t, 0, NULL, rand, lo + (hi - lo)
        * 0.6, hi);
  return lens_case_node_new ("Clip", 13, 3, inputs, 1);
}

const LensOp lens_op_clip = {
  .op_type = "Clip",
  .init = clip_init,
  .reshape = clip_reshape,
  .run = clip_run,
  .reference = clip_reference,
  .exit = elementwise_exit,
  .make_case = clip_case,
  .atol = 0,
  .rtol = 0,
};
