/* lens-run: runs the raw graph of an ONNX model on one .npy tensor and
 * writes every graph output as DIR/<output name>.npy (float32, C order).
 * This is how lens is checked against other runtimes.
 *
 *   lens-run --model M.onnx --input X.npy --output-dir DIR [--device D] */
#include "lens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
safe_file_name (const char *name)
{
  char *s = g_strdup (*name ? name : "output");

  for (char *p = s; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '_' && *p != '-')
      *p = '_';
  return s;
}

/* float32 whatever the model declares (float16, integers) */
static LensTensor *
as_float32 (LensTensor * t)
{
  LensTensor *f;
  int64_t n;

  if (t->dtype == LENS_DTYPE_FLOAT)
    return t;
  f = lens_tensor_new_host (LENS_DTYPE_FLOAT, t->ndim, t->shape, NULL);
  n = lens_tensor_numel (t);
  for (int64_t i = 0; i < n; i++)
    ((float *) f->host)[i] = (float) lens_tensor_get_f64 (t, i);
  lens_tensor_free (t);
  return f;
}

int
main (int argc, char **argv)
{
  const char *model_path = NULL, *input_path = NULL, *out_dir = NULL,
      *device = NULL;
  LensError err = LENS_ERROR_INIT;
  LensContext *ctx = NULL;
  LensModel *model = NULL;
  LensExec *exec = NULL;
  LensTensor *input = NULL;
  int status = 1;

  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--model") == 0 && i + 1 < argc)
      model_path = argv[++i];
    else if (strcmp (argv[i], "--input") == 0 && i + 1 < argc)
      input_path = argv[++i];
    else if (strcmp (argv[i], "--output-dir") == 0 && i + 1 < argc)
      out_dir = argv[++i];
    else if (strcmp (argv[i], "--device") == 0 && i + 1 < argc)
      device = argv[++i];
    else {
      model_path = NULL;
      break;
    }
  }
  if (model_path == NULL || input_path == NULL || out_dir == NULL) {
    fprintf (stderr, "usage: %s --model M.onnx --input X.npy --output-dir DIR "
        "[--device D]\n", argv[0]);
    return 2;
  }

  if (lens_npy_load (input_path, &input, &err) != LENS_OK)
    goto error;
  if (input->dtype != LENS_DTYPE_FLOAT && input->dtype != LENS_DTYPE_FLOAT16) {
    lens_error_set (&err, LENS_ERROR_INVALID, "%s: input must be float32, "
        "not %s", input_path, lens_dtype_name (input->dtype));
    goto error;
  }
  if (lens_context_new (device, &ctx, &err) != LENS_OK)
    goto error;
  /* symbolic dimensions take the input's shape */
  if (lens_model_load (ctx, model_path, input->ndim, input->shape, &model,
          &err) != LENS_OK)
    goto error;
  if (lens_exec_new (model, &exec, &err) != LENS_OK)
    goto error;
  fprintf (stderr, "%s: %d nodes to run; device memory: weights %.2f MiB, "
      "intermediates %.2f MiB (%.2f MiB without reuse)\n", model_path,
      lens_model_n_nodes (model), lens_model_weight_bytes (model) / 1048576.0,
      lens_model_peak_bytes (model) / 1048576.0,
      lens_model_unplanned_bytes (model) / 1048576.0);
  if (lens_exec_set_input (exec, 0, input, &err) != LENS_OK)
    goto error;
  if (lens_exec_run (exec, &err) != LENS_OK)
    goto error;
  if (g_mkdir_with_parents (out_dir, 0755) != 0) {
    lens_error_set (&err, LENS_ERROR_IO, "%s: cannot create directory",
        out_dir);
    goto error;
  }
  for (int i = 0; i < lens_model_n_outputs (model); i++) {
    LensTensor *out;
    char *file, *path;
    LensStatus st;

    if (lens_exec_get_output (exec, i, &out, &err) != LENS_OK)
      goto error;
    out = as_float32 (out);
    {
      char *safe = safe_file_name (lens_model_output_name (model, i));
      file = g_strdup_printf ("%s.npy", safe);
      g_free (safe);
    }
    path = g_build_filename (out_dir, file, NULL);
    st = lens_npy_save (path, out, &err);
    if (st == LENS_OK)
      printf ("%s\n", path);
    g_free (file);
    g_free (path);
    lens_tensor_free (out);
    if (st != LENS_OK)
      goto error;
  }
  status = 0;
  goto done;

error:
  fprintf (stderr, "lens-run: %s\n", err.message);
done:
  lens_error_clear (&err);
  lens_exec_free (exec);
  lens_model_free (model);
  lens_context_free (ctx);
  lens_tensor_free (input);
  return status;
}
