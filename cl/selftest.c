/* selftest.c: runs each operator's random cases through its OpenCL kernel
 * and its C reference and compares them. Used by `make demo` (the per-op
 * table of lens-selftest) and by the unit suite. */
#include "lens-private.h"

#include <string.h>

static LensTensor *
clone_host (const LensTensor * t)
{
  LensTensor *c = lens_tensor_new_host (t->dtype, t->ndim, t->shape, t->host);

  lens_tensor_set_name (c, t->name);
  c->is_constant = t->is_constant;
  return c;
}

/* Runs one case on the device; outputs are downloaded into @node. */
static LensStatus
run_device (LensContext * ctx, LensNode * node, double *ms, LensError *err)
{
  LensStatus st = LENS_OK;
  gint64 start;

  for (int i = 0; i < node->n_inputs && st == LENS_OK; i++)
    if (node->inputs[i] != NULL)
      st = lens_tensor_upload (ctx, node->inputs[i], err);
  if (st != LENS_OK)
    return st;
  start = g_get_monotonic_time ();
  st = lens_node_run (ctx, node, err);
  if (st == LENS_OK)
    st = lens_context_finish (ctx, err);
  *ms = (g_get_monotonic_time () - start) / 1000.0;
  for (int i = 0; i < node->n_outputs && st == LENS_OK; i++)
    if (node->outputs[i] != NULL)
      st = lens_tensor_download (ctx, node->outputs[i], err);
  return st;
}

static LensStatus
run_case (LensContext * ctx, const LensOp * op, LensNode * node,
    LensSelftestResult * result, LensError *err)
{
  LensNode *ref;
  LensStatus st;
  double ms = 0;

  /* The reference runs on its own copy of the node so that the two paths
   * share nothing but the inputs' values and the attributes. */
  ref = lens_node_new (node->op_type, "reference", node->opset);
  lens_node_copy_attrs (ref, node);
  lens_node_set_io (ref, node->n_inputs, NULL, node->n_outputs, NULL);
  ref->owns_tensors = TRUE;
  for (int i = 0; i < node->n_inputs; i++)
    ref->inputs[i] = node->inputs[i] ? clone_host (node->inputs[i]) : NULL;
  for (int i = 0; i < node->n_outputs; i++)
    ref->outputs[i] = lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL);

  st = lens_node_init (node, err);
  if (st == LENS_OK)
    st = lens_node_reshape (node, err);
  if (st == LENS_OK)
    st = run_device (ctx, node, &ms, err);
  if (st == LENS_OK)
    st = lens_node_init (ref, err);
  if (st == LENS_OK)
    st = lens_node_reshape (ref, err);
  if (st == LENS_OK)
    st = lens_node_run_reference (ref, err);
  for (int i = 0; i < node->n_outputs && st == LENS_OK; i++) {
    LensCompareResult cmp;
    if (node->outputs[i] == NULL)
      continue;
    st = lens_tensor_compare (node->outputs[i], ref->outputs[i], op->atol,
        op->rtol, &cmp, err);
    if (st != LENS_OK)
      lens_error_prefix (err, "output %d: ", i);
    else
      result->max_abs_diff = MAX (result->max_abs_diff, cmp.max_abs_diff);
  }
  if (st == LENS_OK)
    result->kernel_ms += ms;
  lens_node_free (ref);
  return st;
}

static char *
describe_case (const LensNode * node)
{
  GString *s = g_string_new (NULL);
  char buf[128];

  for (int i = 0; i < node->n_inputs; i++)
    g_string_append_printf (s, "%s%s", i ? ", " : "in ",
        node->inputs[i] ? lens_tensor_describe (node->inputs[i], buf,
            sizeof buf) : "-");
  for (int i = 0; i < node->n_attrs; i++) {
    const LensAttr *a = &node->attrs[i];
    g_string_append_printf (s, "; %s=", a->name);
    switch (a->type) {
      case LENS_ATTR_INT:
        g_string_append_printf (s, "%" G_GINT64_FORMAT, a->i);
        break;
      case LENS_ATTR_FLOAT:
        g_string_append_printf (s, "%g", a->f);
        break;
      case LENS_ATTR_STRING:
        g_string_append (s, a->s);
        break;
      case LENS_ATTR_INTS:
        for (int k = 0; k < a->n; k++)
          g_string_append_printf (s, "%s%" G_GINT64_FORMAT, k ? "," : "",
              a->ints[k]);
        break;
      default:
        g_string_append (s, "...");
    }
  }
  return g_string_free (s, FALSE);
}

LensStatus
lens_selftest_op (LensContext * ctx, const LensOp * op, guint32 seed,
    LensSelftestResult * result, LensError *err)
{
  GRand *rand = g_rand_new_with_seed (seed);
  LensNode *node;

  memset (result, 0, sizeof (*result));
  result->op_type = op->op_type;
  if (op->make_case == NULL) {
    g_rand_free (rand);
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s has no self-test cases", op->op_type);
  }
  for (int i = 0; (node = op->make_case (i, rand)) != NULL; i++) {
    LensError case_err = LENS_ERROR_INIT;

    result->cases++;
    if (run_case (ctx, op, node, result, &case_err) == LENS_OK) {
      result->passed++;
    } else if (result->first_failure == NULL) {
      char *what = describe_case (node);
      result->first_failure = g_strdup_printf ("case %d (%s): %s", i, what,
          case_err.message);
      g_free (what);
    }
    lens_error_clear (&case_err);
    lens_node_free (node);
  }
  g_rand_free (rand);
  return LENS_OK;
}

void
lens_selftest_result_clear (LensSelftestResult * result)
{
  g_clear_pointer (&result->first_failure, g_free);
}
