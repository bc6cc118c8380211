/* test-models.c: every ONNX model in ../shared/models run by lens against
 * the ONNX Runtime reference outputs in tests/fixtures/ort/ (made by
 * tests/ort/regenerate).
 *
 * Owns: rebuilding each model's exact float input from the stored uint8
 * pixels and the manifest's normalization, and the raw-output accuracy
 * bound: for every output, max |lens - ort| <= 1e-3 * max (1, max |ort|).
 * One TCase per model (CK_RUN_CASE=<model id> runs one), plus a coverage
 * case that fails when a model in ../shared has no fixtures. Each output's
 * line also shows how many elements are beyond the bound and how far
 * ONNX Runtime itself moves when its input moves by one ulp (the
 * manifest's output_ulp_sensitivity); $LENS_MODELS_SAVE_DIR, when set,
 * receives lens's outputs as <dir>/<model id>/output-<i>.npy.
 *
 * ../shared is found through $LENS_SHARED_DIR, else ../shared from the
 * working directory (meson runs this in the source root), else next to
 * the source root; without it the test is skipped (exit 77).
 */
#include "lens-check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LENS_SOURCE_ROOT
#define LENS_SOURCE_ROOT "."
#endif

#define REL_TOLERANCE 1e-3

static char *shared_dir;
static char *fixtures_dir;
static GKeyFile *manifest;
static char **model_ids;
/* ---- manifest helpers ---- */

static char *
manifest_string (const char *group, const char *key)
{
  GError *error = NULL;
  char *v = g_key_file_get_string (manifest, group, key, &error);

  ck_assert_msg (v != NULL, "manifest [%s] lacks %s: %s", group, key,
      error ? error->message : "?");
  return v;
}

static char **
manifest_list (const char *group, const char *key, gsize *n)
{
  GError *error = NULL;
  char **v = g_key_file_get_string_list (manifest, group, key, n, &error);

  ck_assert_msg (v != NULL, "manifest [%s] lacks list %s: %s", group, key,
      error ? error->message : "?");
  return v;
}

/* exactly three float32 values: the manifest writes the shortest decimal
 * that reads back as the same float32 */
static void
manifest_floats3 (const char *group, const char *key, float out[3])
{
  gsize n;
  char **v = manifest_list (group, key, &n);
  gsize i;

  ck_assert_msg (n == 3, "manifest [%s] %s: expected 3 values, got %"
      G_GSIZE_FORMAT, group, key, n);
  for (i = 0; i < 3; i++)
    out[i] = (float) g_ascii_strtod (v[i], NULL);
  g_strfreev (v);
}

/* "1x3x640x640" */
static int
parse_shape (const char *s, int64_t *shape)
{
  char **dims = g_strsplit (s, "x", LENS_MAX_DIMS + 1);
  int n = g_strv_length (dims);
  int i;

  ck_assert_msg (n >= 1 && n <= LENS_MAX_DIMS, "bad shape '%s'", s);
  for (i = 0; i < n; i++)
    shape[i] = g_ascii_strtoll (dims[i], NULL, 10);
  g_strfreev (dims);
  return n;
}

static char *
shape_string (int ndim, const int64_t *shape)
{
  GString *s = g_string_new ("[");
  int i;

  for (i = 0; i < ndim; i++)
    g_string_append_printf (s, "%s%" G_GINT64_FORMAT, i ? "," : "",
        shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static LensTensor *
load_npy (const char *rel)
{
  LensError err = LENS_ERROR_INIT;
  char *path = g_build_filename (fixtures_dir, rel, NULL);
  LensTensor *t = NULL;

  if (lens_npy_load (path, &t, &err) != LENS_OK)
    ck_abort_msg ("cannot read fixture %s: %s", path, err.message);
  g_free (path);
  return t;
}

/* ---- the model input, bit-identical to what ONNX Runtime was fed ---- */

/* v = ((float) u8 * scale - mean[c]) / std[c], each step rounded to
 * float32: the volatile stores keep the compiler from fusing the multiply
 * and subtract into an FMA, which would round once instead of twice. */
static LensTensor *
build_input (const char *id, const LensTensor *u8, LensDType dtype)
{
  float scale, mean[3], std[3];
  char *scale_s = manifest_string (id, "scale");
  int64_t plane, i;
  LensTensor *t;
  const uint8_t *src = u8->host;

  scale = (float) g_ascii_strtod (scale_s, NULL);
  g_free (scale_s);
  manifest_floats3 (id, "mean", mean);
  manifest_floats3 (id, "std", std);

  ck_assert_msg (u8->dtype == LENS_DTYPE_UINT8 && u8->ndim == 4
      && u8->shape[0] == 1 && u8->shape[1] == 3,
      "%s: input-u8.npy should be uint8 [1,3,H,W]", id);
  t = lens_tensor_new_host (dtype, u8->ndim, u8->shape, NULL);
  plane = u8->shape[2] * u8->shape[3];
  for (i = 0; i < lens_tensor_numel (u8); i++) {
    int c = (int) (i / plane);
    volatile float scaled = (float) src[i] * scale;
    volatile float centred = scaled - mean[c];
    volatile float v = centred / std[c];

    if (dtype == LENS_DTYPE_FLOAT16)
      ((uint16_t *) t->host)[i] = lens_float_to_half (v);
    else
      ((float *) t->host)[i] = v;
  }
  return t;
}

/* ---- comparison ---- */

typedef struct
{
  double max_diff;
  double max_ref;
  double bound;
  int64_t worst;
  double worst_lens, worst_ref;
  int64_t non_finite;
  int64_t beyond;               /* elements with |diff| > bound */
} OutputDiff;

static void
compare_output (const LensTensor *lens, const LensTensor *ref, OutputDiff *d)
{
  int64_t i, n = lens_tensor_numel (ref);

  memset (d, 0, sizeof (*d));
  for (i = 0; i < n; i++) {
    double r = lens_tensor_get_f64 (ref, i);

    if (fabs (r) > d->max_ref)
      d->max_ref = fabs (r);
  }
  for (i = 0; i < n; i++) {
    double a = lens_tensor_get_f64 (lens, i);
    double r = lens_tensor_get_f64 (ref, i);
    double diff = fabs (a - r);

    if (!isfinite (a)) {
      if (d->non_finite++ == 0) {
        d->worst = i;
        d->worst_lens = a;
        d->worst_ref = r;
      }
      continue;
    }
    if (diff > d->max_diff) {
      d->max_diff = diff;
      if (d->non_finite == 0) {
        d->worst = i;
        d->worst_lens = a;
        d->worst_ref = r;
      }
    }
  }
  d->bound = REL_TOLERANCE * MAX (1.0, d->max_ref);
  for (i = 0; i < n; i++)
    if (!(fabs (lens_tensor_get_f64 (lens, i) - lens_tensor_get_f64 (ref, i))
            <= d->bound))
      d->beyond++;
}

/* "i (0,4,1234)" for a flat index */
static char *
index_string (const LensTensor *t, int64_t flat)
{
  int64_t idx[LENS_MAX_DIMS];
  int k;

  for (k = t->ndim - 1; k >= 0; k--) {
    idx[k] = t->shape[k] ? flat % t->shape[k] : 0;
    flat = t->shape[k] ? flat / t->shape[k] : 0;
  }
  return shape_string (t->ndim, idx);
}

START_TEST (test_model)
{
  LensError err = LENS_ERROR_INIT;
  const char *id = model_ids[_i];
  char *rel_model = manifest_string (id, "model");
  char *model_path = g_build_filename (shared_dir, rel_model, NULL);
  char *input_name = manifest_string (id, "input_name");
  char *input_dtype = manifest_string (id, "input_dtype");
  char *input_shape_s = manifest_string (id, "input_shape");
  char *input_u8 = manifest_string (id, "input_u8");
  char *want_sha = manifest_string (id, "input_sha256");
  gsize n_out, n_files, n_sens, i;
  char **out_names = manifest_list (id, "outputs", &n_out);
  char **out_files = manifest_list (id, "output_files", &n_files);
  char **out_sens = manifest_list (id, "output_ulp_sensitivity", &n_sens);
  const char *save_dir = g_getenv ("LENS_MODELS_SAVE_DIR");
  int64_t want_shape[LENS_MAX_DIMS], got_shape[LENS_MAX_DIMS];
  int want_ndim, got_ndim, input_index = -1, k, failures = 0;
  LensDType dtype;
  LensModel *model = NULL;
  LensExec *exec = NULL;
  LensTensor *u8, *input;
  char *sha;
  gint64 t0, t_load, t_run;
  GString *report = g_string_new (NULL);

  ck_assert_msg (n_out == n_files && n_out == n_sens && n_out > 0,
      "manifest [%s]: %" G_GSIZE_FORMAT " outputs but %" G_GSIZE_FORMAT
      " output files and %" G_GSIZE_FORMAT " sensitivities", id, n_out,
      n_files, n_sens);

  t0 = g_get_monotonic_time ();
  if (lens_model_load (lens_check_ctx, model_path, 0, NULL, &model, &err) != LENS_OK)
    ck_abort_msg ("%s: lens_model_load failed: %s", id, err.message);
  t_load = g_get_monotonic_time () - t0;

  for (k = 0; k < lens_model_n_inputs (model); k++)
    if (g_strcmp0 (lens_model_input_name (model, k), input_name) == 0)
      input_index = k;
  ck_assert_msg (input_index >= 0, "%s: lens has no input named '%s'", id,
      input_name);
  want_ndim = parse_shape (input_shape_s, want_shape);
  got_ndim = lens_model_input_shape (model, input_index, got_shape);
  ck_assert_msg (got_ndim == want_ndim
      && memcmp (got_shape, want_shape, want_ndim * sizeof (int64_t)) == 0,
      "%s: lens input shape %s, ONNX Runtime %s", id,
      shape_string (got_ndim, got_shape), input_shape_s);
  ck_assert_msg (lens_model_n_outputs (model) == (int) n_out,
      "%s: lens has %d outputs, ONNX Runtime %" G_GSIZE_FORMAT, id,
      lens_model_n_outputs (model), n_out);

  /* the float input, checked against the hash of ORT's own input bytes */
  dtype = g_strcmp0 (input_dtype, "float16") == 0 ? LENS_DTYPE_FLOAT16
      : LENS_DTYPE_FLOAT;
  u8 = load_npy (input_u8);
  ck_assert_msg (u8->ndim == want_ndim
      && memcmp (u8->shape, want_shape, want_ndim * sizeof (int64_t)) == 0,
      "%s: %s does not have shape %s", id, input_u8, input_shape_s);
  input = build_input (id, u8, dtype);
  lens_tensor_set_name (input, input_name);
  sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256, input->host,
      lens_tensor_nbytes (input));
  ck_assert_msg (G_BYTE_ORDER == G_BIG_ENDIAN || strcmp (sha, want_sha) == 0,
      "%s: the input rebuilt from %s hashes to %s, but ONNX Runtime was fed "
      "%s: normalization differs from tests/ort/regenerate", id, input_u8,
      sha, want_sha);

  if (lens_exec_new (model, &exec, &err) != LENS_OK)
    ck_abort_msg ("%s: lens_exec_new failed: %s", id, err.message);
  if (lens_exec_set_input (exec, input_index, input, &err) != LENS_OK)
    ck_abort_msg ("%s: lens_exec_set_input failed: %s", id, err.message);
  t0 = g_get_monotonic_time ();
  if (lens_exec_run (exec, &err) != LENS_OK)
    ck_abort_msg ("%s: lens_exec_run failed: %s", id, err.message);
  t_run = g_get_monotonic_time () - t0;

  printf ("models: %s (%s, %s): load %.0f ms, first run %.0f ms on %s\n",
      id, rel_model, input_dtype, t_load / 1e3, t_run / 1e3,
      lens_context_get_device_name (lens_check_ctx));

  for (i = 0; i < n_out; i++) {
    LensTensor *ref = load_npy (out_files[i]);
    LensTensor *out = NULL;
    int out_index = -1;
    OutputDiff d;
    char *ref_shape = shape_string (ref->ndim, ref->shape);
    char *out_shape, *where;
    gboolean ok;

    for (k = 0; k < lens_model_n_outputs (model); k++)
      if (g_strcmp0 (lens_model_output_name (model, k), out_names[i]) == 0)
        out_index = k;
    ck_assert_msg (out_index >= 0, "%s: lens has no output named '%s'", id,
        out_names[i]);
    if (lens_exec_get_output (exec, out_index, &out, &err) != LENS_OK)
      ck_abort_msg ("%s: lens_exec_get_output '%s' failed: %s", id,
          out_names[i], err.message);
    out_shape = shape_string (out->ndim, out->shape);
    ck_assert_msg (strcmp (out_shape, ref_shape) == 0,
        "%s: output '%s' has shape %s in lens, %s in ONNX Runtime", id,
        out_names[i], out_shape, ref_shape);
    ck_assert_msg (out->dtype == LENS_DTYPE_FLOAT
        || out->dtype == LENS_DTYPE_FLOAT16,
        "%s: output '%s' is %s, expected a float type", id, out_names[i],
        lens_dtype_name (out->dtype));

    if (save_dir != NULL && *save_dir) {
      char *dir = g_build_filename (save_dir, id, NULL);
      char *base = g_strdup_printf ("output-%" G_GSIZE_FORMAT ".npy", i);
      char *path = g_build_filename (dir, base, NULL);

      g_mkdir_with_parents (dir, 0755);
      if (lens_npy_save (path, out, &err) != LENS_OK)
        ck_abort_msg ("%s: cannot save %s: %s", id, path, err.message);
      g_free (path);
      g_free (base);
      g_free (dir);
    }

    compare_output (out, ref, &d);
    ok = d.non_finite == 0 && d.max_diff <= d.bound;
    where = index_string (ref, d.worst);
    printf ("models: %-18s %-8s %-14s max|diff| %-10.3g bound %-10.3g "
        "max|ref| %-10.5g beyond %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT
        " ort-1ulp %-10.3g worst %s lens %.6g ort %.6g%s%s\n", id,
        out_names[i], ref_shape, d.max_diff, d.bound, d.max_ref, d.beyond,
        lens_tensor_numel (ref), g_ascii_strtod (out_sens[i], NULL), where,
        d.worst_lens, d.worst_ref, d.non_finite ? " NON-FINITE" : "",
        ok ? "" : "  FAIL");
    if (!ok) {
      failures++;
      g_string_append_printf (report, "%s'%s' max|diff| %.3g > %.3g "
          "(%" G_GINT64_FORMAT " non-finite) at %s: lens %.6g, ort %.6g",
          report->len ? "; " : "", out_names[i], d.max_diff, d.bound,
          d.non_finite, where, d.worst_lens, d.worst_ref);
    }
    g_free (where);
    g_free (out_shape);
    g_free (ref_shape);
    lens_tensor_free (out);
    lens_tensor_free (ref);
  }
  fflush (stdout);

  ck_assert_msg (failures == 0, "%s: %d of %" G_GSIZE_FORMAT " outputs "
      "differ from ONNX Runtime beyond 1e-3 * max(1, max|ref|): %s", id,
      failures, n_out, report->str);

  g_string_free (report, TRUE);
  g_free (sha);
  lens_tensor_free (input);
  lens_tensor_free (u8);
  lens_exec_free (exec);
  lens_model_free (model);
  g_strfreev (out_sens);
  g_strfreev (out_files);
  g_strfreev (out_names);
  g_free (want_sha);
  g_free (input_u8);
  g_free (input_shape_s);
  g_free (input_dtype);
  g_free (input_name);
  g_free (model_path);
  g_free (rel_model);
}
END_TEST

/* ---- coverage: every ONNX model in ../shared has fixtures ---- */

static void
collect_onnx (const char *dir, const char *rel, GPtrArray *found)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL) {
    char *path = g_build_filename (dir, name, NULL);
    char *sub = g_strconcat (rel, "/", name, NULL);

    if (g_file_test (path, G_FILE_TEST_IS_DIR))
      collect_onnx (path, sub, found);
    else if (g_str_has_suffix (name, ".onnx"))
      g_ptr_array_add (found, g_strdup (sub));
    g_free (sub);
    g_free (path);
  }
  g_dir_close (d);
}

START_TEST (test_coverage)
{
  GPtrArray *found = g_ptr_array_new_with_free_func (g_free);
  char *models = g_build_filename (shared_dir, "models", NULL);
  char *version = manifest_string ("ort", "version");
  guint i;
  int k;

  ck_assert_msg (g_str_has_prefix (version, "1.30."),
      "fixtures come from ONNX Runtime %s, expected 1.30", version);
  collect_onnx (models, "models", found);
  ck_assert_msg (found->len > 0, "no .onnx files under %s", models);
  for (i = 0; i < found->len; i++) {
    const char *rel = g_ptr_array_index (found, i);
    gboolean listed = FALSE;

    for (k = 0; model_ids[k] != NULL && !listed; k++) {
      char *m = manifest_string (model_ids[k], "model");

      listed = strcmp (m, rel) == 0;
      g_free (m);
    }
    ck_assert_msg (listed, "%s/%s has no ONNX Runtime fixtures: add it to "
        "tests/ort/regenerate and re-run it", shared_dir, rel);
  }
  g_free (version);
  g_free (models);
  g_ptr_array_unref (found);
}
END_TEST

/* ---- set-up ---- */

static Suite *
models_suite (void)
{
  Suite *s = suite_create ("models");
  TCase *tc;
  int i;

  tc = tcase_create ("coverage");
  tcase_add_test (tc, test_coverage);
  suite_add_tcase (s, tc);

  for (i = 0; model_ids[i] != NULL; i++) {
    tc = tcase_create (model_ids[i]);
    tcase_add_checked_fixture (tc, lens_check_setup,
      lens_check_teardown);
    tcase_set_timeout (tc, 600);
    tcase_add_loop_test (tc, test_model, i, i + 1);
    suite_add_tcase (s, tc);
  }
  return s;
}

int
main (void)
{
  GError *error = NULL;
  char *manifest_path;
  int status;

  shared_dir = lens_check_shared_dir ();
  if (shared_dir == NULL) {
    printf ("SKIP: no shared test data (set LENS_SHARED_DIR, or put it in "
        "../shared next to the source tree)\n");
    return 77;
  }
  fixtures_dir = g_build_filename (LENS_SOURCE_ROOT, "tests", "fixtures",
      "ort", NULL);
  manifest_path = g_build_filename (fixtures_dir, "manifest.ini", NULL);
  manifest = g_key_file_new ();
  if (!g_key_file_load_from_file (manifest, manifest_path, G_KEY_FILE_NONE,
          &error)) {
    fprintf (stderr, "cannot read %s: %s\n", manifest_path, error->message);
    return 1;
  }
  model_ids = g_key_file_get_string_list (manifest, "ort", "models", NULL,
      &error);
  if (model_ids == NULL) {
    fprintf (stderr, "%s: [ort] models: %s\n", manifest_path,
        error->message);
    return 1;
  }
  printf ("models: shared data %s, fixtures %s\n", shared_dir, fixtures_dir);

  status = lens_check_run (models_suite ());

  g_strfreev (model_ids);
  g_key_file_free (manifest);
  g_free (manifest_path);
  g_free (fixtures_dir);
  g_free (shared_dir);
  return status;
}
