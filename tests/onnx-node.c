/* onnx-node.c: ONNX conformance. Runs every backend node test shipped in
 * Debian's libonnx-testdata whose operators lens implements, through the
 * OpenCL path (and the C reference too), and compares with the expected
 * outputs.
 *
 *   onnx-node [--data DIR] [--filter SUBSTRING] [--verbose]
 *
 * Prints PASS/FAIL/UNSUPPORTED per test and a last line
 * "N passed, M failed, K unsupported". Exit status 1 if any failed,
 * 77 (skip) if the test data is absent. */
#include "lens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_DATA "/usr/share/libonnx-testdata/data/node"

typedef enum { RESULT_PASS, RESULT_FAIL, RESULT_UNSUPPORTED, RESULT_OUT_OF_SCOPE } Result;

/* Tolerance: 1e-4 absolute and relative for float32; the precision of the
 * type itself for narrower floats. */
static void
tolerance_for (LensDType dtype, double *atol, double *rtol)
{
  switch (dtype) {
    case LENS_DTYPE_FLOAT16:
      *atol = 1e-3;
      *rtol = 1e-3;
      break;
    case LENS_DTYPE_BFLOAT16:
      *atol = 1e-2;
      *rtol = 1e-2;
      break;
    default:
      *atol = 1e-4;
      *rtol = 1e-4;
  }
}

/* ONNX 1.12's generator stores bfloat16 test tensors as UINT16
 * TensorProtos; the model's declaration says what the bits are. */
static void
apply_declared_dtypes (GPtrArray * tensors, const LensDType * declared,
    int n_declared)
{
  for (guint i = 0; i < tensors->len && (int) i < n_declared; i++) {
    LensTensor *t = g_ptr_array_index (tensors, i);
    if (t->dtype == LENS_DTYPE_UINT16 && declared[i] == LENS_DTYPE_BFLOAT16)
      t->dtype = LENS_DTYPE_BFLOAT16;
  }
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

static GPtrArray *
load_dataset (const char *dir, const char *prefix, LensError *err)
{
  GPtrArray *tensors = g_ptr_array_new_with_free_func ((GDestroyNotify)
      lens_tensor_free);

  for (int i = 0;; i++) {
    char *path = g_strdup_printf ("%s/%s_%d.pb", dir, prefix, i);
    LensTensor *t;
    if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
      g_free (path);
      break;
    }
    if (lens_onnx_tensor_load (path, &t, err) != LENS_OK) {
      g_free (path);
      g_ptr_array_unref (tensors);
      return NULL;
    }
    g_ptr_array_add (tensors, t);
    g_free (path);
  }
  return tensors;
}

/* Runs the model's nodes in order on @inputs, on the device or through the
 * C reference; returns the graph outputs (host) in *outputs. */
static LensStatus
run_graph (LensContext * ctx, LensOnnxModel * model, GPtrArray * inputs,
    gboolean reference, GPtrArray ** outputs, LensError *err)
{
  GHashTable *values = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *owned = g_ptr_array_new_with_free_func ((GDestroyNotify)
      lens_tensor_free);
  LensStatus st = LENS_OK;

  for (int i = 0; i < model->n_initializers; i++)
    g_hash_table_insert (values, model->initializers[i]->name,
        model->initializers[i]);
  for (int i = 0; i < model->n_inputs && i < (int) inputs->len; i++) {
    LensTensor *in = g_ptr_array_index (inputs, i);
    LensTensor *copy = lens_tensor_new_host (in->dtype, in->ndim, in->shape,
        in->host);
    lens_tensor_set_name (copy, model->inputs[i]);
    /* inputs are known values: ops may read them at reshape time */
    copy->is_constant = TRUE;
    g_ptr_array_add (owned, copy);
    g_hash_table_insert (values, model->inputs[i], copy);
  }

  for (int n = 0; n < model->n_nodes && st == LENS_OK; n++) {
    LensNode *node = model->nodes[n];
    for (int i = 0; i < node->n_inputs; i++) {
      const char *name = model->node_inputs[n][i];
      node->inputs[i] = *name ? g_hash_table_lookup (values, name) : NULL;
      if (*name && node->inputs[i] == NULL)
        st = lens_error_set (err, LENS_ERROR_INVALID,
            "node '%s': input '%s' is not produced by any node", node->name,
            name);
    }
    for (int i = 0; i < node->n_outputs && st == LENS_OK; i++) {
      LensTensor *t = lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL);
      lens_tensor_set_name (t, model->node_outputs[n][i]);
      g_ptr_array_add (owned, t);
      node->outputs[i] = t;
      if (*model->node_outputs[n][i])
        g_hash_table_insert (values, model->node_outputs[n][i], t);
    }
    if (st == LENS_OK && node->op == NULL)
      st = lens_node_init (node, err);
    if (st == LENS_OK)
      st = lens_node_reshape (node, err);
    if (reference) {
      if (st == LENS_OK)
        st = lens_node_run_reference (node, err);
    } else {
      for (int i = 0; i < node->n_inputs && st == LENS_OK; i++)
        if (node->inputs[i] != NULL && node->inputs[i]->buffer == NULL)
          st = lens_tensor_upload (ctx, node->inputs[i], err);
      if (st == LENS_OK)
        st = lens_node_run (ctx, node, err);
      /* download now: outputs that are views share buffers, and later
       * nodes may read host values (shapes) */
      for (int i = 0; i < node->n_outputs && st == LENS_OK; i++)
        if (node->outputs[i] && !node->outputs[i]->is_constant)
          st = lens_tensor_download (ctx, node->outputs[i], err);
    }
  }

  if (st == LENS_OK) {
    *outputs = g_ptr_array_new_with_free_func ((GDestroyNotify)
        lens_tensor_free);
    for (int i = 0; i < model->n_outputs; i++) {
      LensTensor *t = g_hash_table_lookup (values, model->outputs[i]);
      if (t == NULL || t->host == NULL) {
        st = lens_error_set (err, LENS_ERROR_INVALID,
            "graph output '%s' was not computed", model->outputs[i]);
        g_ptr_array_unref (*outputs);
        *outputs = NULL;
        break;
      }
      g_ptr_array_add (*outputs, lens_tensor_new_host (t->dtype, t->ndim,
              t->shape, t->host));
    }
  }
  /* node tensors are borrowed: unlink them before the owned ones go */
  for (int n = 0; n < model->n_nodes; n++) {
    LensNode *node = model->nodes[n];
    memset (node->inputs, 0, sizeof (LensTensor *) * node->n_inputs);
    memset (node->outputs, 0, sizeof (LensTensor *) * node->n_outputs);
  }
  g_ptr_array_unref (owned);
  g_hash_table_destroy (values);
  return st;
}

static LensStatus
compare_outputs (GPtrArray * got, GPtrArray * expected, LensOnnxModel * model,
    LensError *err)
{
  if (got->len != expected->len)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%u outputs, expected %u", got->len, expected->len);
  for (guint i = 0; i < got->len; i++) {
    LensTensor *e = g_ptr_array_index (expected, i);
    double atol, rtol;
    tolerance_for (e->dtype, &atol, &rtol);
    if (lens_tensor_compare (g_ptr_array_index (got, i), e, atol, rtol, NULL,
            err) != LENS_OK) {
      lens_error_prefix (err, "output '%s': ", model->outputs[i]);
      return LENS_ERROR_INVALID;
    }
  }
  return LENS_OK;
}

static Result
run_test (LensContext * ctx, const char *dir, char **why)
{
  LensError err = LENS_ERROR_INIT;
  LensOnnxModel *model = NULL;
  char *model_path = g_build_filename (dir, "model.onnx", NULL);
  Result result = RESULT_PASS;
  GDir *sets;
  const char *entry;
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);

  if (lens_onnx_model_load (model_path, &model, &err) != LENS_OK) {
    /* tests of operators outside lens's list are out of scope */
    if (err.code == LENS_ERROR_UNSUPPORTED_OP) {
      result = RESULT_OUT_OF_SCOPE;
      goto done;
    }
    goto error;
  }
  for (int n = 0; n < model->n_nodes; n++) {
    if (lens_node_init (model->nodes[n], &err) != LENS_OK)
      goto error;
  }

  sets = g_dir_open (dir, 0, NULL);
  while (sets && (entry = g_dir_read_name (sets)) != NULL)
    if (g_str_has_prefix (entry, "test_data_set_"))
      g_ptr_array_add (names, g_strdup (entry));
  if (sets)
    g_dir_close (sets);
  g_ptr_array_sort (names, compare_names);

  for (guint s = 0; s < names->len; s++) {
    char *set_dir = g_build_filename (dir, g_ptr_array_index (names, s), NULL);
    GPtrArray *inputs = load_dataset (set_dir, "input", &err);
    GPtrArray *expected = inputs ? load_dataset (set_dir, "output", &err) :
        NULL;
    GPtrArray *got = NULL;
    g_free (set_dir);
    if (expected == NULL) {
      g_clear_pointer (&inputs, g_ptr_array_unref);
      goto error;
    }
    apply_declared_dtypes (inputs, model->input_dtypes, model->n_inputs);
    apply_declared_dtypes (expected, model->output_dtypes, model->n_outputs);
    for (int pass = 0; pass < 2 && err.message == NULL; pass++) {
      gboolean reference = pass == 1;
      if (run_graph (ctx, model, inputs, reference, &got, &err) == LENS_OK) {
        compare_outputs (got, expected, model, &err);
        g_ptr_array_unref (got);
      }
      if (err.message != NULL)
        lens_error_prefix (&err, "%s: %s: ", reference ? "C reference" :
            "OpenCL", (char *) g_ptr_array_index (names, s));
    }
    g_ptr_array_unref (inputs);
    g_ptr_array_unref (expected);
    if (err.message != NULL)
      goto error;
  }
  goto done;

error:
  result = err.code == LENS_ERROR_UNSUPPORTED ? RESULT_UNSUPPORTED :
      RESULT_FAIL;
  *why = g_strdup (err.message);
done:
  lens_error_clear (&err);
  lens_onnx_model_free (model);
  g_ptr_array_unref (names);
  g_free (model_path);
  return result;
}

int
main (int argc, char **argv)
{
  const char *data = DEFAULT_DATA, *filter = NULL;
  LensError err = LENS_ERROR_INIT;
  LensContext *ctx;
  GPtrArray *tests;
  GDir *dir;
  const char *entry;
  int passed = 0, failed = 0, unsupported = 0, out_of_scope = 0;

  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--data") == 0 && i + 1 < argc)
      data = argv[++i];
    else if (strcmp (argv[i], "--filter") == 0 && i + 1 < argc)
      filter = argv[++i];
    else {
      fprintf (stderr, "usage: %s [--data DIR] [--filter SUBSTRING]\n",
          argv[0]);
      return 2;
    }
  }
  dir = g_dir_open (data, 0, NULL);
  if (dir == NULL) {
    printf ("SKIP: %s not found (install libonnx-testdata)\n", data);
    return 77;
  }
  if (lens_context_new (NULL, &ctx, &err) != LENS_OK) {
    fprintf (stderr, "onnx-node: %s\n", err.message);
    return 1;
  }
  printf ("# device: %s (%s)\n", lens_context_get_device_name (ctx),
      lens_context_get_platform_name (ctx));

  tests = g_ptr_array_new_with_free_func (g_free);
  while ((entry = g_dir_read_name (dir)) != NULL)
    if (filter == NULL || strstr (entry, filter) != NULL)
      g_ptr_array_add (tests, g_strdup (entry));
  g_dir_close (dir);
  g_ptr_array_sort (tests, compare_names);

  for (guint i = 0; i < tests->len; i++) {
    const char *name = g_ptr_array_index (tests, i);
    char *path = g_build_filename (data, name, NULL);
    char *why = NULL;
    Result r;

    r = run_test (ctx, path, &why);
    switch (r) {
      case RESULT_OUT_OF_SCOPE:
        out_of_scope++;
        break;
      case RESULT_PASS:
        printf ("PASS %s\n", name);
        passed++;
        break;
      case RESULT_FAIL:
        printf ("FAIL %s: %s\n", name, why);
        failed++;
        break;
      case RESULT_UNSUPPORTED:
        printf ("UNSUPPORTED %s: %s\n", name, why);
        unsupported++;
        break;
    }
    fflush (stdout);
    g_free (why);
    g_free (path);
  }
  printf ("# %d tests not run: they use operators outside lens's list\n",
      out_of_scope);
  printf ("%d passed, %d failed, %d unsupported\n", passed, failed,
      unsupported);
  g_ptr_array_unref (tests);
  lens_context_free (ctx);
  return failed > 0 ? 1 : 0;
}
