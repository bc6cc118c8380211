/* test-ops.c: every operator's OpenCL kernel against its plain-C reference,
 * on random cases with awkward shapes (sizes 1, 3, 7, 13, 97; never a
 * multiple of a tile), two seeds each. */
#include "lens-check.h"

#include <stdlib.h>
#include <string.h>

static void
check_op (const LensOp * op, guint32 seed)
{
  LensError err = LENS_ERROR_INIT;
  LensSelftestResult r;

  ck_assert_msg (lens_selftest_op (lens_check_ctx, op, seed, &r, &err) == LENS_OK,
      "%s: %s", op->op_type, err.message);
  ck_assert_msg (r.cases >= 3, "%s: expected at least 3 self-test cases, "
      "got %d", op->op_type, r.cases);
  ck_assert_msg (r.passed == r.cases,
      "%s (seed %u): %d of %d cases match the reference; %s", op->op_type,
      seed, r.passed, r.cases, r.first_failure);
  lens_selftest_result_clear (&r);
}

START_TEST (test_op_seed_a)
{
  check_op (lens_op_list ()[_i], 1);
}
END_TEST

START_TEST (test_op_seed_b)
{
  check_op (lens_op_list ()[_i], 97);
}
END_TEST

/* ConvInteger's float kernels, which the VNNI kernels replace where the
 * processor has AVX-512 VNNI (the self-test's weights are constant, as a
 * model's are): LENS_CONV_VNNI=0 keeps them (each test runs in a process
 * of its own). */
START_TEST (test_conv_integer_float_kernels)
{
  g_setenv ("LENS_CONV_VNNI", "0", TRUE);
  check_op (lens_op_lookup ("ConvInteger"), _i == 0 ? 1 : 97);
}
END_TEST

START_TEST (test_registry_complete)
{
  static const char *required[] = {
    "Conv", "ConvInteger", "DynamicQuantizeLinear", "MaxPool", "AveragePool",
    "GlobalAveragePool", "Resize", "Concat", "Split", "Slice", "Pad",
    "Transpose", "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Sigmoid", "Relu",
    "LeakyRelu", "HardSigmoid", "HardSwish", "Clip", "Exp", "Floor",
    "Softmax", "MatMul", "Gemm", "BatchNormalization", "ReduceMax", "TopK",
    "Gather", "GatherElements", "Tile", "Cast", "Reshape", "Flatten",
    "Squeeze", "Unsqueeze", NULL
  };

  for (int i = 0; required[i]; i++) {
    const LensOp *op = lens_op_lookup (required[i]);
    ck_assert_msg (op != NULL, "operator %s is not registered", required[i]);
    ck_assert_msg (op->run != NULL && op->reference != NULL
        && op->reshape != NULL && op->make_case != NULL,
        "operator %s lacks a kernel, reference, reshape or self-test",
        required[i]);
  }
  ck_assert_msg (lens_op_lookup ("NoSuchOp") == NULL,
      "lookup of an unknown op should fail");
}
END_TEST

/* Runs init and reshape and expects them to fail with @status, in a
 * message that names the op and @what (the attribute, value or type
 * refused). */
static void
expect_failure (LensNode * node, LensStatus status, const char *what)
{
  LensError err = LENS_ERROR_INIT;
  LensStatus st;

  st = lens_node_init (node, &err);
  if (st == LENS_OK)
    st = lens_node_reshape (node, &err);
  ck_assert_msg (st == status,
      "%s with '%s' should fail with %s, got %s (%s)", node->op_type, what,
      lens_status_name (status), lens_status_name (st), err.message);
  ck_assert_msg (strstr (err.message, node->op_type) != NULL
      && strstr (err.message, what) != NULL,
      "message should name %s and '%s': %s", node->op_type, what,
      err.message);
  lens_error_clear (&err);
  lens_node_free (node);
}

static void
expect_refusal (LensNode * node, const char *what)
{
  expect_failure (node, LENS_ERROR_UNSUPPORTED, what);
}

static LensNode *
refusal_node (const char *op_type, int opset, int n_inputs, LensDType dtype,
    int ndim, const int64_t *shape)
{
  LensNode *node = lens_node_new (op_type, "refused", opset);

  lens_node_set_io (node, n_inputs, NULL, 2, NULL);
  node->owns_tensors = TRUE;
  for (int i = 0; i < n_inputs; i++)
    node->inputs[i] = lens_tensor_new_host (dtype, ndim, shape, NULL);
  for (int i = 0; i < 2; i++)
    node->outputs[i] = lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL);
  return node;
}

START_TEST (test_refusals)
{
  static const int64_t nchw[4] = { 1, 3, 5, 5 }, ncdhw[5] = { 1, 2, 3, 3, 3 };
  static const int64_t k3d[3] = { 2, 2, 2 };
  LensNode *node;

  node = refusal_node ("Resize", 13, 1, LENS_DTYPE_FLOAT, 4, nchw);
  lens_node_set_attr_string (node, "mode", "cubic");
  expect_refusal (node, "mode");

  node = refusal_node ("BatchNormalization", 15, 5, LENS_DTYPE_FLOAT, 4, nchw);
  lens_node_set_attr_int (node, "training_mode", 1);
  expect_refusal (node, "training_mode");

  node = refusal_node ("Cast", 13, 1, LENS_DTYPE_FLOAT, 4, nchw);
  lens_node_set_attr_int (node, "to", LENS_DTYPE_STRING);
  expect_refusal (node, "'to'");

  node = refusal_node ("MaxPool", 12, 1, LENS_DTYPE_FLOAT, 5, ncdhw);
  lens_node_set_attr_ints (node, "kernel_shape", 3, k3d);
  expect_refusal (node, "kernel_shape");

  node = refusal_node ("Conv", 11, 2, LENS_DTYPE_FLOAT, 4, nchw);
  lens_node_set_attr_string (node, "activation", "Mish");
  expect_refusal (node, "Mish");

  node = refusal_node ("Conv", 11, 2, LENS_DTYPE_FLOAT16, 4, nchw);
  expect_refusal (node, "float16");
}
END_TEST

/* A ConvInteger of uint8 x [1, 3, 5, 5] by int8 w [m, 3 / group, k, k],
 * padded to keep 5x5, with @n_inputs inputs (4: the fused float scale,
 * 7: the residual, of @residual_c channels) and @n_outputs outputs. */
static LensNode *
conv_integer_node (int m, int group, int k, int n_inputs, int residual_c,
    int n_outputs)
{
  static const int64_t x_shape[4] = { 1, 3, 5, 5 }, one[1] = { 1 };
  int64_t w_shape[4] = { m, 3 / group, k, k };
  int64_t r_shape[4] = { 1, residual_c, 5, 5 };
  int64_t pads[4] = { k / 2, k / 2, k / 2, k / 2 };
  LensNode *node = lens_node_new ("ConvInteger", "bad", 10);

  lens_node_set_io (node, n_inputs, NULL, n_outputs, NULL);
  node->owns_tensors = TRUE;
  node->inputs[0] = lens_tensor_new_host (LENS_DTYPE_UINT8, 4, x_shape, NULL);
  node->inputs[1] = lens_tensor_new_host (LENS_DTYPE_INT8, 4, w_shape, NULL);
  if (n_inputs > 4)
    node->inputs[4] = lens_tensor_new_host (LENS_DTYPE_FLOAT, 1, one, NULL);
  if (n_inputs > 7)
    node->inputs[7] = lens_tensor_new_host (LENS_DTYPE_FLOAT, 4, r_shape,
        NULL);
  for (int i = 0; i < n_outputs; i++)
    node->outputs[i] = lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL);
  lens_node_set_attr_int (node, "group", group);
  lens_node_set_attr_ints (node, "pads", 4, pads);
  return node;
}

/* The lens-specific inputs and outputs the graph rewrites add (a
 * ConvInteger's range output and residual input, a quantizer's range
 * input), given wrongly, are refused with a message naming them. */
START_TEST (test_fused_io_refusals)
{
  static const int64_t x_shape[2] = { 4, 16 }, two[1] = { 2 };
  LensNode *node;

  /* a range or residual without the fused epilogue's scale */
  expect_failure (conv_integer_node (4, 1, 1, 2, 0, 2), LENS_ERROR_INVALID,
      "range output");
  /* a residual of another shape than y */
  expect_failure (conv_integer_node (4, 1, 1, 8, 3, 1), LENS_ERROR_INVALID,
      "residual");
  /* a residual on a depthwise convolution (its kernel has none) */
  expect_failure (conv_integer_node (3, 3, 3, 8, 3, 1),
      LENS_ERROR_UNSUPPORTED, "depthwise");
  /* a quantizer's range as floats */
  node = lens_node_new ("DynamicQuantizeLinear", "bad", 11);
  lens_node_set_io (node, 2, NULL, 3, NULL);
  node->owns_tensors = TRUE;
  node->inputs[0] = lens_tensor_new_host (LENS_DTYPE_FLOAT, 2, x_shape, NULL);
  node->inputs[1] = lens_tensor_new_host (LENS_DTYPE_FLOAT, 1, two, NULL);
  for (int i = 0; i < 3; i++)
    node->outputs[i] = lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL);
  expect_failure (node, LENS_ERROR_INVALID, "range");
}
END_TEST

static Suite *
ops_suite (void)
{
  Suite *s = suite_create ("ops");
  TCase *tc_registry = tcase_create ("registry");
  TCase *tc_kernels = tcase_create ("kernel-vs-reference");
  int n_ops = 0;

  while (lens_op_list ()[n_ops] != NULL)
    n_ops++;

  tcase_add_test (tc_registry, test_registry_complete);
  tcase_add_test (tc_registry, test_refusals);
  tcase_add_test (tc_registry, test_fused_io_refusals);
  suite_add_tcase (s, tc_registry);

  tcase_add_checked_fixture (tc_kernels, lens_check_setup,
      lens_check_teardown);
  tcase_set_timeout (tc_kernels, 600);
  tcase_add_loop_test (tc_kernels, test_op_seed_a, 0, n_ops);
  tcase_add_loop_test (tc_kernels, test_op_seed_b, 0, n_ops);
  tcase_add_loop_test (tc_kernels, test_conv_integer_float_kernels, 0, 2);
  suite_add_tcase (s, tc_kernels);
  return s;
}

int
main (void)
{
  return lens_check_run (ops_suite ());
}
