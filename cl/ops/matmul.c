/* matmul.c: MatMul (numpy.matmul: batched, broadcast, 1-D operands
 * promoted) and Gemm (transposes, alpha, beta, broadcast bias C), both
 * float32, both on the kernels of kernels/matmul.cl (references in
 * ref/matmul.c), summing in the order ONNX Runtime's MLAS does (the plan
 * of ref/matmul.h, made here at reshape from the shapes, the operands'
 * layout and whether B is a constant). Either may carry a fused
 * activation set by a graph rewrite. */
#include "lens-private.h"
#include "ref/matmul.h"

#include <string.h>

/* Block sizes of the tiled kernel: a work-group computes TILE_M x TILE_N
 * outputs, each of its (TILE_M / WPT_M) * (TILE_N / WPT_N) items WPT_M x
 * WPT_N of them, stepping TILE_K along K. */
#define TILE_M 64
#define TILE_N 64
#define TILE_K 16
#define WPT_M 4
#define WPT_N 4
#define MM_THREADS ((TILE_M / WPT_M) * (TILE_N / WPT_N))
/* Products with fewer rows or columns than this use the direct kernel. */
#define THIN 16
/* Work-group size of the direct kernel. */
#define DIRECT_GROUP 64

#define TILE_OPTIONS "-DTILE_M=" G_STRINGIFY (TILE_M) \
  " -DTILE_N=" G_STRINGIFY (TILE_N) " -DTILE_K=" G_STRINGIFY (TILE_K) \
  " -DWPT_M=" G_STRINGIFY (WPT_M) " -DWPT_N=" G_STRINGIFY (WPT_N)

static const LensDType float_dtypes[] = {
  LENS_DTYPE_FLOAT, LENS_DTYPE_UNDEFINED
};

typedef struct
{
  LensActivation act;
  char *options;
  /* Gemm attributes */
  gboolean trans_a, trans_b;
  float alpha, beta;
  /* the product, set by reshape */
  int64_t M, N, K, batches;
  cl_long sam, sak, sbk, sbn, scm, scn;
  cl_long8 batch_shape, a_bstride, b_bstride;
  /* the order ONNX Runtime sums in (ref/matmul.h) */
  LensMatMulPlan plan;
} MatMulParams;

static LensStatus
product_init (LensNode * node, LensError *err)
{
  MatMulParams *p = g_new0 (MatMulParams, 1);
  LensStatus st;

  node->priv = p;
  st = lens_activation_from_node (node, &p->act, err);
  if (st != LENS_OK)
    return st;
  p->options = p->act.kind == LENS_ACT_NONE ? g_strdup (TILE_OPTIONS) :
      g_strdup_printf (TILE_OPTIONS " -DACT=%d", p->act.kind);
  p->alpha = 1.0f;
  p->beta = 1.0f;
  return LENS_OK;
}

static void
product_exit (LensNode * node)
{
  MatMulParams *p = node->priv;

  if (p == NULL)
    return;
  g_free (p->options);
  g_clear_pointer (&node->priv, g_free);
}

static LensStatus
product_run (LensContext * ctx, LensNode * node, LensError *err)
{
  MatMulParams *p = node->priv;
  LensTensor *a = node->inputs[0], *b = node->inputs[1];
  LensTensor *c = lens_node_input (node, 2), *y = node->outputs[0];
  cl_mem c_buffer;
  cl_int M = (cl_int) p->M, N = (cl_int) p->N, K = (cl_int) p->K;
  /* ONNX Runtime reads nothing from C when beta is 0 */
  cl_int has_c = c != NULL && p->beta != 0.0f;
  cl_long batches = p->batches;
  cl_int8 plan = { {p->plan.rows, p->plan.split_m, p->plan.split_n,
          p->plan.order[0], p->plan.order[1], p->plan.k_block[0],
          p->plan.k_block[1], p->plan.fold}
  };
  gboolean tiled;
  size_t global, local;
  cl_kernel k;
  LensStatus st;

  st = lens_tensor_require_device (a, "input A", err);
  if (st == LENS_OK)
    st = lens_tensor_require_device (b, "input B", err);
  if (st == LENS_OK && c != NULL)
    st = lens_tensor_require_device (c, "input C", err);
  if (st != LENS_OK)
    return st;
  if (a->offset != 0 || b->offset != 0 || (c && c->offset != 0) ||
      y->offset != 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: tensors with a non-zero offset are not supported",
        node->op_type);
  if (lens_tensor_numel (y) == 0)
    return LENS_OK;
  /* nothing is read through c when has_c is 0, but the argument needs a
   * valid buffer */
  c_buffer = c != NULL ? c->buffer : y->buffer;

  /* the tiled kernel sums in K blocks only */
  tiled = p->M >= THIN && p->N >= THIN &&
      p->plan.order[0] == LENS_MM_ORDER_BLOCKED &&
      p->plan.order[1] == LENS_MM_ORDER_BLOCKED;
  st = lens_node_kernel (ctx, node, tiled ? 1 : 0, "matmul", p->options,
      tiled ? "lens_mat_mul_tiled" : "lens_mat_mul_direct", &k, err);
  if (st != LENS_OK)
    return st;
  if (tiled && lens_kernel_max_work_group (ctx, k) < MM_THREADS) {
    /* a device with small work-groups: the direct kernel still works */
    tiled = FALSE;
    st = lens_node_kernel (ctx, node, 0, "matmul", p->options,
        "lens_mat_mul_direct", &k, err);
    if (st != LENS_OK)
      return st;
  }
  st = lens_kernel_set_args (k, err, 23, LENS_ARG (a->buffer),
      LENS_ARG (b->buffer), LENS_ARG (c_buffer), LENS_ARG (y->buffer),
      LENS_ARG (M), LENS_ARG (N), LENS_ARG (K), LENS_ARG (batches),
      LENS_ARG (p->sam), LENS_ARG (p->sak), LENS_ARG (p->sbk),
      LENS_ARG (p->sbn), LENS_ARG (p->scm), LENS_ARG (p->scn),
      LENS_ARG (p->batch_shape), LENS_ARG (p->a_bstride),
      LENS_ARG (p->b_bstride), LENS_ARG (has_c), LENS_ARG (p->alpha),
      LENS_ARG (p->beta), LENS_ARG (p->act.alpha), LENS_ARG (p->act.beta),
      LENS_ARG (plan));
  if (st != LENS_OK)
    return st;
  if (tiled) {
    size_t groups = (size_t) ((p->M + TILE_M - 1) / TILE_M) *
        (size_t) ((p->N + TILE_N - 1) / TILE_N) * (size_t) p->batches;
    local = MM_THREADS;
    global = groups * local;
  } else {
    size_t max = lens_kernel_max_work_group (ctx, k);
    global = (size_t) (p->batches * p->M * p->N);
    local = 1;
    while (local * 2 <= MIN (max, DIRECT_GROUP))
      local *= 2;
  }
  return lens_context_enqueue (ctx, k, 1, &global, &local, err);
}

static LensStatus
check_dims (const LensNode * node, int64_t M, int64_t N, int64_t K,
    LensError *err)
{
  if (M > G_MAXINT || N > G_MAXINT || K > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: dimensions M=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT
        " K=%" G_GINT64_FORMAT " exceed %d", node->op_type, M, N, K,
        G_MAXINT);
  return LENS_OK;
}

static void
no_batch (MatMulParams * p)
{
  p->batches = 1;
  for (int d = 0; d < 8; d++) {
    p->batch_shape.s[d] = 1;
    p->a_bstride.s[d] = p->b_bstride.s[d] = 0;
  }
}

/* Random float operand for a self-test case. */
static LensTensor *
random_operand (int ndim, const int64_t *shape, GRand * rand)
{
  return lens_tensor_new_random (LENS_DTYPE_FLOAT, ndim, shape, rand, -1, 1);
}

/* ---- MatMul ------------------------------------------------------------------ */

static LensStatus
mat_mul_reshape (LensNode * node, LensError *err)
{
  MatMulParams *p = node->priv;
  LensTensor *a = lens_node_input (node, 0), *b = lens_node_input (node, 1);
  int64_t shape[LENS_MAX_DIMS + 2];
  int nb, ab, bb, ndim = 0;
  gboolean fold;
  LensStatus st;

  if (a == NULL || b == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "MatMul needs inputs A and B and an output");
  st = lens_node_check_dtype (node, "input A", a->dtype, float_dtypes, err);
  if (st == LENS_OK)
    st = lens_node_check_dtype (node, "input B", b->dtype, float_dtypes,
        err);
  if (st != LENS_OK)
    return st;
  if (a->ndim < 1 || b->ndim < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "MatMul: inputs must have rank >= 1 (A %d, B %d)", a->ndim, b->ndim);

  /* a 1-D A is a row [1, K], a 1-D B a column [K, 1] */
  p->M = a->ndim == 1 ? 1 : a->shape[a->ndim - 2];
  p->K = a->shape[a->ndim - 1];
  p->N = b->ndim == 1 ? 1 : b->shape[b->ndim - 1];
  if ((b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2]) != p->K)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "MatMul: A has %" G_GINT64_FORMAT " columns but B has %"
        G_GINT64_FORMAT " rows", p->K,
        b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2]);
  st = check_dims (node, p->M, p->N, p->K, err);
  if (st != LENS_OK)
    return st;
  p->sam = p->K;
  p->sak = 1;
  p->sbk = p->N;
  p->sbn = 1;
  p->scm = p->scn = 0;

  /* batch dimensions, broadcast against each other and right aligned */
  ab = MAX (a->ndim - 2, 0);
  bb = MAX (b->ndim - 2, 0);
  nb = MAX (ab, bb);
  if (nb > 8 || nb + 2 > LENS_MAX_DIMS)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "MatMul: %d batch dimensions (at most %d)", nb, LENS_MAX_DIMS - 2);
  no_batch (p);
  for (int d = 0; d < nb; d++) {
    int ad = d - (nb - ab), bd = d - (nb - bb), slot = 8 - nb + d;
    int64_t as = ad >= 0 ? a->shape[ad] : 1, bs = bd >= 0 ? b->shape[bd] : 1;
    if (as != bs && as != 1 && bs != 1)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "MatMul: batch dimension %d cannot broadcast (A %" G_GINT64_FORMAT
          ", B %" G_GINT64_FORMAT ")", d, as, bs);
    shape[ndim++] = as == 1 ? bs : as;
    p->batch_shape.s[slot] = shape[ndim - 1];
    p->a_bstride.s[slot] = as == 1 ? 0 : a->strides[ad];
    p->b_bstride.s[slot] = bs == 1 ? 0 : b->strides[bd];
    p->batches *= shape[ndim - 1];
  }
  if (a->ndim > 1)
    shape[ndim++] = p->M;
  if (b->ndim > 1)
    shape[ndim++] = p->N;

  /* the products ONNX Runtime runs: an A of at least B's rank times a B
   * without batches is one product, A's batches folded into its rows; a
   * 1-D B makes each row of A a product of its own (M = 1); a constant
   * 2-D B is pre-packed */
  fold = a->ndim >= 2 && b->ndim >= 2 && a->ndim >= b->ndim;
  for (int d = 0; d < b->ndim - 2; d++)
    fold = fold && b->shape[d] == 1;
  if (fold && p->batches * p->M > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "MatMul: %" G_GINT64_FORMAT " rows in all exceed %d",
        p->batches * p->M, G_MAXINT);
  if (b->ndim == 1)
    lens_matmul_plan (&p->plan, 1, 1, p->K, p->batches * p->M, FALSE, FALSE,
        FALSE, FALSE, 1.0f, 0.0f);
  else
    lens_matmul_plan (&p->plan, fold ? p->batches * p->M : p->M, p->N, p->K,
        fold ? 1 : p->batches, fold, FALSE, FALSE, b->is_constant
        && b->ndim == 2, 1.0f, 0.0f);
  node->outputs[0]->dtype = LENS_DTYPE_FLOAT;
  lens_tensor_set_shape (node->outputs[0], ndim, shape);
  return LENS_OK;
}

static LensStatus
mat_mul_reference (LensNode * node, LensError *err)
{
  MatMulParams *p = node->priv;

  lens_ref_matmul (node->inputs[0], node->inputs[1], node->outputs[0],
      &p->plan, &p->act);
  return LENS_OK;
}

static LensNode *
mat_mul_case (int index, GRand * rand)
{
  /* fixed cases: tiled with edges, broadcast batches, 1-D operands, then
   * each summation order of the plan: K blocks of two sizes either side
   * of a thread split, M = 1, N = 1 split by rows, a pre-packed B */
  static const struct
  {
    int ar, br;
    int64_t a[4], b[4];
    gboolean constant_b;
  } fixed[] = {
    {2, 2, {97, 13}, {13, 97}},
    {2, 2, {70, 97}, {97, 33}},
    {3, 2, {2, 97, 45}, {45, 70}},
    {4, 3, {2, 1, 33, 19}, {3, 19, 81}},
    {1, 3, {13}, {3, 13, 7}},
    {3, 1, {2, 5, 13}, {13}},
    {1, 1, {97}, {97}},
    {3, 3, {1, 3, 7}, {4, 7, 1}},
    {2, 2, {20, 600}, {600, 80}},
    {2, 2, {1, 301}, {301, 50}},
    {3, 1, {2, 5, 299}, {299}},
    {2, 2, {37, 2001}, {2001, 1}},
    {3, 2, {2, 30, 600}, {600, 100}, TRUE},
  };
  int64_t ashape[4], bshape[4];
  LensTensor *inputs[2];
  LensNode *node;
  int ar, br;

  if (index >= (int) G_N_ELEMENTS (fixed) + 6)
    return NULL;
  if (index < (int) G_N_ELEMENTS (fixed)) {
    ar = fixed[index].ar;
    br = fixed[index].br;
    memcpy (ashape, fixed[index].a, sizeof (ashape));
    memcpy (bshape, fixed[index].b, sizeof (bshape));
  } else {
    /* random 2-D to 4-D with awkward sizes */
    int64_t M = lens_awkward_size (rand, TRUE);
    int64_t K = lens_awkward_size (rand, TRUE);
    int64_t N = lens_awkward_size (rand, TRUE);
    ar = g_rand_int_range (rand, 2, 5);
    br = g_rand_int_range (rand, 2, 5);
    for (int d = 0; d < ar - 2; d++)
      ashape[d] = g_rand_boolean (rand) ? 1 : 3;
    for (int d = 0; d < br - 2; d++)
      bshape[d] = g_rand_boolean (rand) ? 1 : 3;
    ashape[ar - 2] = M;
    ashape[ar - 1] = K;
    bshape[br - 2] = K;
    bshape[br - 1] = N;
  }
  inputs[0] = random_operand (ar, ashape, rand);
  inputs[1] = random_operand (br, bshape, rand);
  if (index < (int) G_N_ELEMENTS (fixed))
    inputs[1]->is_constant = fixed[index].constant_b;
  node = lens_case_node_new ("MatMul", 13, 2, inputs, 1);
  return node;
}

const LensOp lens_op_mat_mul = {
  .op_type = "MatMul",
  .init = product_init,
  .reshape = mat_mul_reshape,
  .run = product_run,
  .reference = mat_mul_reference,
  .exit = product_exit,
  .make_case = mat_mul_case,
  .atol = 1e-4,
  .rtol = 1e-4,
};

/* ---- Gemm -------------------------------------------------------------------- */

static LensStatus
gemm_init (LensNode * node, LensError *err)
{
  MatMulParams *p;
  LensStatus st = product_init (node, err);

  if (st != LENS_OK)
    return st;
  p = node->priv;
  p->trans_a = lens_node_attr_int (node, "transA", 0) != 0;
  p->trans_b = lens_node_attr_int (node, "transB", 0) != 0;
  p->alpha = lens_node_attr_float (node, "alpha", 1.0f);
  p->beta = lens_node_attr_float (node, "beta", 1.0f);
  /* opset < 7 'broadcast': lens always broadcasts C, which computes the
   * same whenever C already has the shape [M, N] that broadcast = 0 asks */
  return LENS_OK;
}

static LensStatus
gemm_reshape (LensNode * node, LensError *err)
{
  MatMulParams *p = node->priv;
  LensTensor *a = lens_node_input (node, 0), *b = lens_node_input (node, 1);
  LensTensor *c = lens_node_input (node, 2);
  int64_t shape[2], kb;
  LensStatus st;

  if (a == NULL || b == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Gemm needs inputs A and B and an output");
  st = lens_node_check_dtype (node, "input A", a->dtype, float_dtypes, err);
  if (st == LENS_OK)
    st = lens_node_check_dtype (node, "input B", b->dtype, float_dtypes,
        err);
  if (st == LENS_OK && c != NULL)
    st = lens_node_check_dtype (node, "input C", c->dtype, float_dtypes,
        err);
  if (st != LENS_OK)
    return st;
  if (a->ndim != 2 || b->ndim != 2)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Gemm: inputs A and B must be 2-D (A %d-D, B %d-D)", a->ndim,
        b->ndim);
  p->M = a->shape[p->trans_a ? 1 : 0];
  p->K = a->shape[p->trans_a ? 0 : 1];
  p->N = b->shape[p->trans_b ? 0 : 1];
  kb = b->shape[p->trans_b ? 1 : 0];
  if (kb != p->K)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Gemm: A gives K = %" G_GINT64_FORMAT " but B gives K = %"
        G_GINT64_FORMAT " (transA %d, transB %d)", p->K, kb, p->trans_a,
        p->trans_b);
  st = check_dims (node, p->M, p->N, p->K, err);
  if (st != LENS_OK)
    return st;
  /* element (m, k) of op (A) and (k, n) of op (B) */
  p->sam = p->trans_a ? 1 : p->K;
  p->sak = p->trans_a ? p->M : 1;
  p->sbk = p->trans_b ? 1 : p->N;
  p->sbn = p->trans_b ? p->K : 1;
  p->scm = p->scn = 0;
  if (c != NULL) {
    /* unidirectional broadcast of C to [M, N] */
    int64_t cm = c->ndim == 2 ? c->shape[0] : 1;
    int64_t cn = c->ndim >= 1 ? c->shape[c->ndim - 1] : 1;
    if (c->ndim > 2 || (cm != 1 && cm != p->M) || (cn != 1 && cn != p->N))
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Gemm: input C of rank %d cannot broadcast to [%" G_GINT64_FORMAT
          ", %" G_GINT64_FORMAT "]", c->ndim, p->M, p->N);
    p->scm = cm == 1 ? 0 : cn;
    p->scn = cn == 1 ? 0 : 1;
  }
  no_batch (p);
  /* ONNX Runtime pre-packs a constant B and gives MLAS beta 0 without C */
  lens_matmul_plan (&p->plan, p->M, p->N, p->K, 1, FALSE, p->trans_a,
      p->trans_b, b->is_constant, p->alpha, c != NULL ? p->beta : 0.0f);
  shape[0] = p->M;
  shape[1] = p->N;
  node->outputs[0]->dtype = LENS_DTYPE_FLOAT;
  lens_tensor_set_shape (node->outputs[0], 2, shape);
  return LENS_OK;
}

static LensStatus
gemm_reference (LensNode * node, LensError *err)
{
  MatMulParams *p = node->priv;

  lens_ref_gemm (node->inputs[0], node->inputs[1], lens_node_input (node, 2),
      node->outputs[0], p->trans_a, p->trans_b, p->alpha, p->beta, &p->plan,
      &p->act);
  return LENS_OK;
}

/* Gemm cases for the summation orders of the plan (ref/matmul.h): M = 1
 * with B transposed, K blocks either side of a thread split with alpha
 * and beta, a pre-packed B, N = 1. */
static LensNode *
gemm_order_case (int which, GRand * rand)
{
  static const struct
  {
    int64_t M, N, K;
    gboolean trans_b, constant_b;
    int c_ndim;
    float alpha, beta;
  } cases[] = {
    {1, 50, 300, TRUE, FALSE, 1, 1.0f, 1.0f},
    {20, 80, 600, FALSE, FALSE, 2, 0.7f, 1.3f},
    {64, 100, 600, FALSE, TRUE, 1, 0.3f, 0.6f},
    {40, 1, 301, FALSE, FALSE, 0, 1.0f, 1.0f},
  };
  int64_t ashape[2], bshape[2], cshape[2];
  LensTensor *inputs[3];
  LensNode *node;

  ashape[0] = cases[which].M;
  ashape[1] = cases[which].K;
  bshape[0] = cases[which].trans_b ? cases[which].N : cases[which].K;
  bshape[1] = cases[which].trans_b ? cases[which].K : cases[which].N;
  cshape[0] = cases[which].c_ndim == 2 ? cases[which].M : cases[which].N;
  cshape[1] = cases[which].N;
  inputs[0] = random_operand (2, ashape, rand);
  inputs[1] = random_operand (2, bshape, rand);
  inputs[1]->is_constant = cases[which].constant_b;
  inputs[2] = random_operand (cases[which].c_ndim, cshape, rand);
  node = lens_case_node_new ("Gemm", 13, 3, inputs, 1);
  if (cases[which].trans_b)
    lens_node_set_attr_int (node, "transB", 1);
  lens_node_set_attr_float (node, "alpha", cases[which].alpha);
  lens_node_set_attr_float (node, "beta", cases[which].beta);
  return node;
}

static LensNode *
gemm_case (int index, GRand * rand)
{
  int64_t M, N, K, ashape[2], bshape[2], cshape[2];
  gboolean trans_a = index & 1, trans_b = (index >> 1) & 1;
  int c_kind = index % 6, n_inputs;
  LensTensor *inputs[3] = { NULL, NULL, NULL };
  LensNode *node;

  if (index >= 18)
    return NULL;
  if (index >= 14)
    return gemm_order_case (index - 14, rand);
  if (index < 4) {
    /* tiled, with edges in every direction */
    M = 97;
    N = 70 + index;
    K = 33;
  } else {
    M = lens_awkward_size (rand, TRUE);
    N = lens_awkward_size (rand, TRUE);
    K = lens_awkward_size (rand, TRUE);
  }
  ashape[0] = trans_a ? K : M;
  ashape[1] = trans_a ? M : K;
  bshape[0] = trans_b ? N : K;
  bshape[1] = trans_b ? K : N;
  inputs[0] = random_operand (2, ashape, rand);
  inputs[1] = random_operand (2, bshape, rand);
  /* C: absent, scalar, [N], [M, 1], [1, N], [M, N] */
  n_inputs = c_kind == 0 ? 2 : 3;
  switch (c_kind) {
    case 1:
      inputs[2] = random_operand (0, NULL, rand);
      break;
    case 2:
      cshape[0] = N;
      inputs[2] = random_operand (1, cshape, rand);
      break;
    case 3:
      cshape[0] = M;
      cshape[1] = 1;
      inputs[2] = random_operand (2, cshape, rand);
      break;
    case 4:
      cshape[0] = 1;
      cshape[1] = N;
      inputs[2] = random_operand (2, cshape, rand);
      break;
    case 5:
      cshape[0] = M;
      cshape[1] = N;
      inputs[2] = random_operand (2, cshape, rand);
      break;
  }
  node = lens_case_node_new ("Gemm", 13, n_inputs, inputs, 1);
  if (trans_a)
    lens_node_set_attr_int (node, "transA", 1);
  if (trans_b)
    lens_node_set_attr_int (node, "transB", 1);
  if (index % 3 == 1)
    lens_node_set_attr_float (node, "alpha", 0.25f);
  if (index % 4 == 3)
    lens_node_set_attr_float (node, "beta", -1.5f);
  /* a fused activation, as a graph rewrite would set it */
  if (index == 7) {
    lens_node_set_attr_string (node, "activation", "LeakyRelu");
    lens_node_set_attr_float (node, "activation_alpha", 0.1f);
  }
  return node;
}

const LensOp lens_op_gemm = {
  .op_type = "Gemm",
  .init = gemm_init,
  .reshape = gemm_reshape,
  .run = product_run,
  .reference = gemm_reference,
  .exit = product_exit,
  .make_case = gemm_case,
  .atol = 1e-4,
  .rtol = 1e-4,
};
