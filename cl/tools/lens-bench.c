/* lens-bench: measures one model's inference speed with liblens.
 *
 *   lens-bench --model M.onnx [--size WxH] [--iters N] [--warmup N]
 *              [--input X.npy] [--device D] [--profile] [--top N]
 *              [--no-build] [--json]
 *
 * What is measured (wall clock, one execution context, one thread):
 *   latency   one inference: the input uploaded from a host tensor
 *             (lens_exec_set_input) and lens_exec_run, which leaves every
 *             output on the host (lens_exec_output); median, min, p90 (nearest
 *             rank) and mean over --iters runs after --warmup untimed ones;
 *   GFLOP/s   lens_model_flops () (the rule is at step_flops () in
 *             cl/model.c) over the median latency;
 *   load      lens_model_load: parse, fold, rewrite, plan, upload weights;
 *   build     the first inference's extra cost over a steady one:
 *             (lens_exec_new + first inference) - (fastest of 3 following),
 *             i.e. compiling the programs (clBuildProgram) plus whatever the
 *             driver compiles lazily at the first launch (PoCL builds each
 *             kernel's work-group function then). Measured in two fresh
 *             child processes of this program: cold, with the driver's
 *             on-disk program cache off (POCL_KERNEL_CACHE=0,
 *             CUDA_CACHE_DISABLE=1), and warm, with the cache as this run
 *             left it (so a restart's cost). compile_ms is the
 *             clBuildProgram part of the cold figure;
 *   memory    device bytes of the shared weights and of one execution
 *             context's planned intermediates (lens_model_weight_bytes,
 *             lens_model_peak_bytes); their sum is the peak;
 *   launches  kernels enqueued per inference.
 *
 * --input gives the model's first input as a .npy file (float32 or
 * float16; this is how tests/bench/compare feeds lens and ONNX Runtime the
 * same data); otherwise every input is uniform random in [0, 1) from a
 * fixed seed. --size sets the first input's spatial size (NCHW) where the
 * model declares it symbolic, and is refused where the model fixes
 * another. --profile adds, from OpenCL event profiling over --iters more
 * runs (separate from the timed ones: profiling slows a run a little),
 * the device time per node (its median over those runs; the --top
 * costliest, default 15) and per op type (sums of those), sorted by cost,
 * against the profiled runs' median latency, and how long the device sat
 * idle between launches (per node the median of the gaps before its
 * kernels, summed: on PoCL the hand-over from one kernel to the next,
 * about 1 us after a short kernel, 7-13 us after one of 100 us or
 * more). --json prints one JSON object instead of text (with --profile,
 * every node). */
#include "lens.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUILD_PROBE_STEADY_RUNS 3

typedef struct
{
  const char *model_path;
  const char *device;
  const char *input_path;
  int width, height;            /* --size, 0 when not given */
  int iters, warmup, top;
  gboolean profile, json, no_build, build_probe;
} Options;

typedef struct
{
  double median, min, p90, mean;
} Stats;

/* One op type's share of the profile. */
typedef struct
{
  const char *op_type;
  double ms, flops;
  int nodes, kernels;
} OpTotal;

static double
now_ms (void)
{
  return g_get_monotonic_time () / 1000.0;
}

static void
usage (const char *argv0)
{
  fprintf (stderr, "usage: %s --model M.onnx [--size WxH] [--iters N] "
      "[--warmup N] [--input X.npy] [--device D] [--profile] [--top N] "
      "[--no-build] [--json]\n", argv0);
}

static gboolean
parse_int (const char *s, int min, int *out)
{
  char *end;
  long v = strtol (s, &end, 10);

  if (*s == '\0' || *end != '\0' || v < min || v > G_MAXINT)
    return FALSE;
  *out = (int) v;
  return TRUE;
}

static gboolean
parse_args (int argc, char **argv, Options * o)
{
  memset (o, 0, sizeof (*o));
  o->iters = 20;
  o->warmup = 3;
  o->top = 15;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    gboolean has_value = i + 1 < argc;

    if (strcmp (a, "--model") == 0 && has_value)
      o->model_path = argv[++i];
    else if (strcmp (a, "--device") == 0 && has_value)
      o->device = argv[++i];
    else if (strcmp (a, "--input") == 0 && has_value)
      o->input_path = argv[++i];
    else if (strcmp (a, "--size") == 0 && has_value) {
      char tail;
      if (sscanf (argv[++i], "%dx%d%c", &o->width, &o->height, &tail) != 2
          || o->width <= 0 || o->height <= 0) {
        fprintf (stderr, "lens-bench: --size wants WxH, e.g. 640x640, not "
            "'%s'\n", argv[i]);
        return FALSE;
      }
    } else if ((strcmp (a, "--iters") == 0 || strcmp (a, "--warmup") == 0
            || strcmp (a, "--top") == 0) && has_value) {
      int *target = a[2] == 'i' ? &o->iters : a[2] == 'w' ? &o->warmup :
          &o->top;
      if (!parse_int (argv[++i], a[2] == 'i' ? 1 : 0, target)) {
        fprintf (stderr, "lens-bench: %s wants a count, not '%s'\n", a,
            argv[i]);
        return FALSE;
      }
    } else if (strcmp (a, "--profile") == 0)
      o->profile = TRUE;
    else if (strcmp (a, "--json") == 0)
      o->json = TRUE;
    else if (strcmp (a, "--no-build") == 0)
      o->no_build = TRUE;
    else if (strcmp (a, "--build-probe") == 0)
      /* internal: the child process that measures the build time */
      o->build_probe = TRUE;
    else {
      fprintf (stderr, "lens-bench: unknown or incomplete option '%s'\n", a);
      return FALSE;
    }
  }
  if (o->model_path == NULL) {
    fprintf (stderr, "lens-bench: --model is required\n");
    return FALSE;
  }
  return TRUE;
}

/* ---- model input shape --------------------------------------------------- */

/* The first input's shape for lens_model_load, or *ndim 0 for "as the
 * model declares". --input fixes the whole shape; --size the spatial
 * dimensions of an NCHW input, refused where the model fixes others. */
static LensStatus
resolve_input_shape (const Options * o, const LensTensor * input,
    int *ndim, int64_t *shape, LensError *err)
{
  LensOnnxModel *onnx = NULL;
  LensStatus st;
  int rank;

  *ndim = 0;
  if (input != NULL) {
    if (o->width > 0 && (input->ndim != 4 || input->shape[2] != o->height
            || input->shape[3] != o->width))
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: --size %dx%d disagrees with the shape of the input file",
          o->input_path, o->width, o->height);
    *ndim = input->ndim;
    memcpy (shape, input->shape, sizeof (int64_t) * input->ndim);
    return LENS_OK;
  }
  if (o->width <= 0)
    return LENS_OK;

  /* parsed once more here, outside the timed load */
  st = lens_onnx_model_load (o->model_path, &onnx, err);
  if (st != LENS_OK)
    return st;
  if (onnx->n_inputs < 1) {
    lens_onnx_model_free (onnx);
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: the model has no input to size", o->model_path);
  }
  rank = onnx->input_ndims[0];
  if (rank != 4) {
    st = lens_error_set (err, LENS_ERROR_INVALID,
        "%s: --size needs an NCHW (rank 4) input; input '%s' has rank %d",
        o->model_path, onnx->inputs[0], rank);
  } else {
    const int64_t *declared = onnx->input_shapes[0];
    const int64_t want[2] = { o->height, o->width };

    if ((declared[2] > 0 && declared[2] != want[0])
        || (declared[3] > 0 && declared[3] != want[1])) {
      char w[32] = "?", h[32] = "?";

      if (declared[3] > 0)
        g_snprintf (w, sizeof w, "%" G_GINT64_FORMAT, declared[3]);
      if (declared[2] > 0)
        g_snprintf (h, sizeof h, "%" G_GINT64_FORMAT, declared[2]);
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "%s: the model fixes its input size at %sx%s (input '%s'); "
          "--size %dx%d differs (export the model with dynamic axes, or "
          "leave --size out)", o->model_path, w, h, onnx->inputs[0],
          o->width, o->height);
    } else if (declared[1] <= 0)
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "%s: input '%s' has a symbolic channel count: give --input "
          "instead of --size", o->model_path, onnx->inputs[0]);
    else {
      *ndim = 4;
      shape[0] = declared[0] > 0 ? declared[0] : 1;
      shape[1] = declared[1];
      shape[2] = want[0];
      shape[3] = want[1];
    }
  }
  lens_onnx_model_free (onnx);
  return st;
}

/* Random host data for input @i in the dtype lens_exec_set_input takes:
 * float32 for float and float16 inputs, the declared type otherwise. */
static LensTensor *
random_input (const LensModel * model, int i, GRand * rand)
{
  int64_t shape[LENS_MAX_DIMS];
  int ndim = lens_model_input_shape (model, i, shape);
  LensDType dtype = lens_model_input_dtype (model, i);
  LensTensor *t;
  int64_t n;

  if (dtype == LENS_DTYPE_FLOAT16)
    dtype = LENS_DTYPE_FLOAT;
  t = lens_tensor_new_host (dtype, ndim, shape, NULL);
  n = lens_tensor_numel (t);
  for (int64_t k = 0; k < n; k++)
    lens_tensor_set_f64 (t, k, lens_dtype_is_float (dtype) ?
        g_rand_double (rand) : g_rand_int_range (rand, 0, 100));
  return t;
}

/* ---- one inference ------------------------------------------------------- */

/* lens_exec_run leaves every output on the host (lens_exec_output), as
 * the detector reads them */
static LensStatus
infer (LensExec * exec, LensTensor ** inputs, int n_inputs, LensError *err)
{
  LensStatus st = LENS_OK;

  for (int i = 0; i < n_inputs && st == LENS_OK; i++)
    st = lens_exec_set_input (exec, i, inputs[i], err);
  if (st == LENS_OK)
    st = lens_exec_run (exec, err);
  return st;
}

static int
compare_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static Stats
stats_of (const double *samples, int n)
{
  double *sorted = g_memdup2 (samples, sizeof (double) * n);
  Stats s = { 0 };

  qsort (sorted, n, sizeof (double), compare_double);
  s.min = sorted[0];
  s.median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  /* nearest rank */
  s.p90 = sorted[MAX ((int) ceil (0.9 * n) - 1, 0)];
  for (int i = 0; i < n; i++)
    s.mean += sorted[i] / n;
  g_free (sorted);
  return s;
}

/* ---- build time: child processes ----------------------------------------- */

/* Runs this program again with --build-probe, in @env; it prints
 * "build_ms=X compile_ms=Y". Returns FALSE (with a message) on failure. */
static gboolean
probe_build (const Options * o, char **env, double *build_ms,
    double *compile_ms)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  char *self = g_file_read_link ("/proc/self/exe", NULL);
  char *out = NULL, *errout = NULL;
  GError *error = NULL;
  int wait_status = 0;
  gboolean ok;

  g_ptr_array_add (argv, self ? self : g_strdup (g_get_prgname ()));
  g_ptr_array_add (argv, g_strdup ("--build-probe"));
  g_ptr_array_add (argv, g_strdup ("--model"));
  g_ptr_array_add (argv, g_strdup (o->model_path));
  if (o->device) {
    g_ptr_array_add (argv, g_strdup ("--device"));
    g_ptr_array_add (argv, g_strdup (o->device));
  }
  if (o->input_path) {
    g_ptr_array_add (argv, g_strdup ("--input"));
    g_ptr_array_add (argv, g_strdup (o->input_path));
  } else if (o->width > 0) {
    g_ptr_array_add (argv, g_strdup ("--size"));
    g_ptr_array_add (argv, g_strdup_printf ("%dx%d", o->width, o->height));
  }
  g_ptr_array_add (argv, NULL);

  ok = g_spawn_sync (NULL, (char **) argv->pdata, env, G_SPAWN_DEFAULT, NULL,
      NULL, &out, &errout, &wait_status, &error);
  if (!ok) {
    fprintf (stderr, "lens-bench: cannot start the build probe: %s\n",
        error->message);
    g_error_free (error);
  } else if (!g_spawn_check_wait_status (wait_status, NULL)
      || sscanf (out, "build_ms=%lf compile_ms=%lf", build_ms,
          compile_ms) != 2) {
    fprintf (stderr, "lens-bench: the build probe failed: %s\n",
        errout && *errout ? g_strstrip (errout) : "(no message)");
    ok = FALSE;
  }
  g_free (out);
  g_free (errout);
  g_ptr_array_unref (argv);
  return ok;
}

/* ---- JSON ---------------------------------------------------------------- */

static void
json_string (GString * s, const char *v)
{
  g_string_append_c (s, '"');
  for (const unsigned char *p = (const unsigned char *) v; *p; p++) {
    if (*p == '"' || *p == '\\')
      g_string_append_printf (s, "\\%c", *p);
    else if (*p < 0x20)
      g_string_append_printf (s, "\\u%04x", *p);
    else
      g_string_append_c (s, (char) *p);
  }
  g_string_append_c (s, '"');
}

/* finite numbers as is, the rest (a skipped measurement) as null */
static void
json_number (GString * s, double v)
{
  if (isfinite (v))
    g_string_append_printf (s, "%.10g", v);
  else
    g_string_append (s, "null");
}

/* ---- profile ------------------------------------------------------------- */

/* "1x16x208x208", the shape of a node's first output */
static const char *
output_shape (const LensModel * model, const LensNodeProfile * p, char *buf,
    size_t len)
{
  int64_t shape[LENS_MAX_DIMS];
  int ndim = lens_model_tensor_shape (model, p->output, shape);
  size_t used = 0;

  buf[0] = '\0';
  for (int d = 0; d < ndim && used < len; d++)
    used += g_snprintf (buf + used, len - used, "%s%" G_GINT64_FORMAT,
        d ? "x" : "", shape[d]);
  if (ndim == 0)
    g_strlcpy (buf, "scalar", len);
  return buf;
}

static int
compare_node_ms (const void *a, const void *b)
{
  const LensNodeProfile *x = a, *y = b;

  return x->device_ms < y->device_ms ? 1 : x->device_ms > y->device_ms ?
      -1 : 0;
}

static int
compare_op_ms (const void *a, const void *b)
{
  const OpTotal *x = a, *y = b;

  return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

/* Runs --iters profiled inferences; each node's time in @nodes (sorted by
 * cost on return) is its median over them, robust to runs a busy machine
 * slowed down; @ops sums those; *wall_ms is the profiled runs' median
 * latency. */
static LensStatus
run_profile (LensExec * exec, LensTensor ** inputs, int n_inputs,
    int iters, LensNodeProfile ** nodes_out, int *n_nodes_out,
    OpTotal ** ops_out, int *n_ops_out, double *wall_ms, LensError *err)
{
  LensNodeProfile *nodes = NULL;
  GHashTable *by_op = g_hash_table_new (g_str_hash, g_str_equal);
  GArray *ops = g_array_new (FALSE, TRUE, sizeof (OpTotal));
  double *times = NULL;         /* [node][run] */
  double *idle = NULL;          /* [node][run] */
  double *wall = g_new0 (double, iters);
  LensStatus st = LENS_OK;
  int n_nodes = 0;

  lens_exec_set_profiling (exec, TRUE);
  for (int it = 0; it < iters && st == LENS_OK; it++) {
    const LensNodeProfile *p;
    double t0 = now_ms ();
    int n;

    st = infer (exec, inputs, n_inputs, err);
    if (st != LENS_OK)
      break;
    wall[it] = now_ms () - t0;
    p = lens_exec_profile (exec, &n);
    if (nodes == NULL) {
      nodes = g_memdup2 (p, sizeof (LensNodeProfile) * MAX (n, 1));
      n_nodes = n;
      times = g_new0 (double, (gsize) MAX (n, 1) * iters);
      idle = g_new0 (double, (gsize) MAX (n, 1) * iters);
    }
    for (int k = 0; k < n; k++) {
      times[(gsize) k * iters + it] = p[k].device_ms;
      idle[(gsize) k * iters + it] = p[k].idle_ms;
    }
  }
  lens_exec_set_profiling (exec, FALSE);
  if (st == LENS_OK) {
    for (int k = 0; k < n_nodes; k++) {
      nodes[k].device_ms = stats_of (times + (gsize) k * iters,
          iters).median;
      nodes[k].idle_ms = stats_of (idle + (gsize) k * iters, iters).median;
    }
    *wall_ms = stats_of (wall, iters).median;
  }
  g_free (times);
  g_free (idle);
  g_free (wall);
  if (st != LENS_OK) {
    g_free (nodes);
    g_hash_table_destroy (by_op);
    g_array_free (ops, TRUE);
    return st;
  }

  for (int k = 0; k < n_nodes; k++) {
    gpointer index;
    OpTotal *t;

    if (!g_hash_table_lookup_extended (by_op, nodes[k].op_type, NULL,
            &index)) {
      OpTotal zero = { nodes[k].op_type, 0, 0, 0, 0 };
      g_array_append_val (ops, zero);
      index = GINT_TO_POINTER (ops->len - 1);
      g_hash_table_insert (by_op, (gpointer) nodes[k].op_type, index);
    }
    t = &g_array_index (ops, OpTotal, GPOINTER_TO_INT (index));
    t->ms += nodes[k].device_ms;
    t->flops += nodes[k].flops;
    t->nodes++;
    t->kernels += nodes[k].kernels;
  }
  g_hash_table_destroy (by_op);
  qsort (nodes, n_nodes, sizeof (LensNodeProfile), compare_node_ms);
  g_array_sort (ops, compare_op_ms);
  *nodes_out = nodes;
  *n_nodes_out = n_nodes;
  *n_ops_out = (int) ops->len;
  *ops_out = (OpTotal *) g_array_free (ops, FALSE);
  return LENS_OK;
}

/* ---- main ---------------------------------------------------------------- */

int
main (int argc, char **argv)
{
  Options o;
  LensError err = LENS_ERROR_INIT;
  LensContext *ctx = NULL;
  LensModel *model = NULL;
  LensExec *exec = NULL;
  LensTensor **inputs = NULL;
  LensTensor *file_input = NULL;
  LensNodeProfile *prof_nodes = NULL;
  OpTotal *prof_ops = NULL;
  int n_prof_nodes = 0, n_prof_ops = 0;
  int n_inputs = 0;
  int64_t shape[LENS_MAX_DIMS];
  int ndim = 0;
  double *samples = NULL;
  double t0, load_ms, first_ms, build_cold = NAN, build_warm = NAN,
      compile_cold = NAN, compile_warm = NAN, flops, prof_total = 0,
      prof_idle = 0, prof_wall = 0;
  guint64 launches;
  Stats st_lat;
  GRand *rand = NULL;
  int status = 1;

  if (!parse_args (argc, argv, &o)) {
    usage (argv[0]);
    return 2;
  }

  if (o.input_path != NULL) {
    if (lens_npy_load (o.input_path, &file_input, &err) != LENS_OK)
      goto error;
    if (file_input->dtype != LENS_DTYPE_FLOAT
        && file_input->dtype != LENS_DTYPE_FLOAT16) {
      lens_error_set (&err, LENS_ERROR_INVALID, "%s: the input must be "
          "float32 or float16, not %s", o.input_path,
          lens_dtype_name (file_input->dtype));
      goto error;
    }
  }
  if (resolve_input_shape (&o, file_input, &ndim, shape, &err) != LENS_OK)
    goto error;
  if (lens_context_new (o.device, &ctx, &err) != LENS_OK)
    goto error;

  t0 = now_ms ();
  if (lens_model_load (ctx, o.model_path, ndim, ndim > 0 ? shape : NULL,
          &model, &err) != LENS_OK) {
    if (ndim == 0 && strstr (err.message, "symbolic") != NULL)
      lens_error_prefix (&err, "give --size WxH: ");
    goto error;
  }
  load_ms = now_ms () - t0;

  n_inputs = lens_model_n_inputs (model);
  rand = g_rand_new_with_seed (20240601);
  inputs = g_new0 (LensTensor *, MAX (n_inputs, 1));
  for (int i = 0; i < n_inputs; i++) {
    if (i == 0 && file_input != NULL) {
      inputs[i] = file_input;
      file_input = NULL;
    } else {
      inputs[i] = random_input (model, i, rand);
    }
  }

  /* first inference: includes whatever this process still compiles */
  t0 = now_ms ();
  if (lens_exec_new (model, &exec, &err) != LENS_OK)
    goto error;
  if (infer (exec, inputs, n_inputs, &err) != LENS_OK)
    goto error;
  first_ms = now_ms () - t0;

  if (o.build_probe) {
    double steady = G_MAXDOUBLE;
    for (int it = 0; it < BUILD_PROBE_STEADY_RUNS; it++) {
      t0 = now_ms ();
      if (infer (exec, inputs, n_inputs, &err) != LENS_OK)
        goto error;
      steady = MIN (steady, now_ms () - t0);
    }
    printf ("build_ms=%.3f compile_ms=%.3f\n", MAX (first_ms - steady, 0),
        lens_context_build_ms (ctx));
    status = 0;
    goto done;
  }

  for (int it = 0; it < o.warmup; it++)
    if (infer (exec, inputs, n_inputs, &err) != LENS_OK)
      goto error;
  samples = g_new0 (double, o.iters);
  for (int it = 0; it < o.iters; it++) {
    t0 = now_ms ();
    if (infer (exec, inputs, n_inputs, &err) != LENS_OK)
      goto error;
    samples[it] = now_ms () - t0;
  }
  st_lat = stats_of (samples, o.iters);
  flops = lens_model_flops (model);

  launches = lens_context_enqueue_count (lens_exec_get_context (exec));
  if (lens_exec_run (exec, &err) != LENS_OK)
    goto error;
  launches = lens_context_enqueue_count (lens_exec_get_context (exec)) -
      launches;

  if (o.profile) {
    if (run_profile (exec, inputs, n_inputs, o.iters, &prof_nodes,
            &n_prof_nodes, &prof_ops, &n_prof_ops, &prof_wall,
            &err) != LENS_OK)
      goto error;
    for (int k = 0; k < n_prof_nodes; k++) {
      prof_total += prof_nodes[k].device_ms;
      prof_idle += prof_nodes[k].idle_ms;
    }
  }

  if (!o.no_build) {
    char **env = g_get_environ ();
    char **cold = g_environ_setenv (g_strdupv (env), "POCL_KERNEL_CACHE", "0",
        TRUE);
    cold = g_environ_setenv (cold, "CUDA_CACHE_DISABLE", "1", TRUE);
    /* warm first: our own run has just filled the driver's cache */
    if (!probe_build (&o, env, &build_warm, &compile_warm)
        || !probe_build (&o, cold, &build_cold, &compile_cold))
      fprintf (stderr, "lens-bench: build time not measured\n");
    g_strfreev (env);
    g_strfreev (cold);
  }

  {
    size_t weights = lens_model_weight_bytes (model);
    size_t inter = lens_model_peak_bytes (model);
    double gflops = flops / (st_lat.median * 1e6);
    char in_desc[128], shape_buf[96];

    lens_tensor_describe (inputs[0], in_desc, sizeof in_desc);
    if (o.json) {
      GString *s = g_string_new ("{");
      g_string_append (s, "\"model\": ");
      json_string (s, o.model_path);
      g_string_append (s, ", \"device\": ");
      json_string (s, lens_context_get_device_name (ctx));
      g_string_append (s, ", \"input\": ");
      json_string (s, in_desc);
      g_string_append_printf (s, ", \"iters\": %d, \"warmup\": %d",
          o.iters, o.warmup);
      g_string_append (s, ", \"median_ms\": ");
      json_number (s, st_lat.median);
      g_string_append (s, ", \"min_ms\": ");
      json_number (s, st_lat.min);
      g_string_append (s, ", \"p90_ms\": ");
      json_number (s, st_lat.p90);
      g_string_append (s, ", \"mean_ms\": ");
      json_number (s, st_lat.mean);
      g_string_append (s, ", \"gflop\": ");
      json_number (s, flops / 1e9);
      g_string_append (s, ", \"gflops\": ");
      json_number (s, gflops);
      g_string_append (s, ", \"load_ms\": ");
      json_number (s, load_ms);
      g_string_append (s, ", \"build_ms\": ");
      json_number (s, build_cold);
      g_string_append (s, ", \"build_warm_ms\": ");
      json_number (s, build_warm);
      g_string_append (s, ", \"compile_ms\": ");
      json_number (s, compile_cold);
      g_string_append (s, ", \"first_inference_ms\": ");
      json_number (s, first_ms);
      g_string_append_printf (s, ", \"nodes\": %d, \"launches\": %"
          G_GUINT64_FORMAT ", \"weight_bytes\": %zu, "
          "\"intermediate_bytes\": %zu, \"peak_device_bytes\": %zu",
          lens_model_n_nodes (model), launches, weights, inter,
          weights + inter);
      g_string_append (s, ", \"samples_ms\": [");
      for (int it = 0; it < o.iters; it++) {
        g_string_append (s, it ? ", " : "");
        json_number (s, samples[it]);
      }
      g_string_append (s, "]");
      if (o.profile) {
        g_string_append (s, ", \"profile\": {\"device_ms\": ");
        json_number (s, prof_total);
        g_string_append (s, ", \"idle_ms\": ");
        json_number (s, prof_idle);
        g_string_append (s, ", \"wall_ms\": ");
        json_number (s, prof_wall);
        g_string_append (s, ", \"nodes\": [");
        for (int k = 0; k < n_prof_nodes; k++) {
          g_string_append (s, k ? ", {\"name\": " : "{\"name\": ");
          json_string (s, prof_nodes[k].name);
          g_string_append (s, ", \"op_type\": ");
          json_string (s, prof_nodes[k].op_type);
          g_string_append (s, ", \"output_shape\": ");
          json_string (s, output_shape (model, &prof_nodes[k], shape_buf,
                  sizeof shape_buf));
          g_string_append (s, ", \"ms\": ");
          json_number (s, prof_nodes[k].device_ms);
          g_string_append (s, ", \"idle_ms\": ");
          json_number (s, prof_nodes[k].idle_ms);
          g_string_append_printf (s, ", \"kernels\": %d, \"gflop\": ",
              prof_nodes[k].kernels);
          json_number (s, prof_nodes[k].flops / 1e9);
          g_string_append (s, "}");
        }
        g_string_append (s, "], \"op_types\": [");
        for (int k = 0; k < n_prof_ops; k++) {
          g_string_append (s, k ? ", {\"op_type\": " : "{\"op_type\": ");
          json_string (s, prof_ops[k].op_type);
          g_string_append (s, ", \"ms\": ");
          json_number (s, prof_ops[k].ms);
          g_string_append_printf (s, ", \"nodes\": %d, \"kernels\": %d, "
              "\"gflop\": ", prof_ops[k].nodes, prof_ops[k].kernels);
          json_number (s, prof_ops[k].flops / 1e9);
          g_string_append (s, "}");
        }
        g_string_append (s, "]}");
      }
      g_string_append (s, "}");
      printf ("%s\n", s->str);
      g_string_free (s, TRUE);
    } else {
      printf ("model        %s\n", o.model_path);
      printf ("device       %s (%s)\n", lens_context_get_device_name (ctx),
          lens_context_get_platform_name (ctx));
      printf ("input        %s\n", in_desc);
      printf ("latency      median %.2f ms, min %.2f ms, p90 %.2f ms, "
          "mean %.2f ms (%d runs after %d warm-up)\n", st_lat.median,
          st_lat.min, st_lat.p90, st_lat.mean, o.iters, o.warmup);
      printf ("compute      %.3f GFLOP per inference, %.2f GFLOP/s at the "
          "median\n", flops / 1e9, gflops);
      printf ("graph        %d nodes, %" G_GUINT64_FORMAT
          " kernel launches per inference\n", lens_model_n_nodes (model),
          launches);
      printf ("load         %.1f ms\n", load_ms);
      if (o.no_build)
        printf ("build        not measured (--no-build); first inference "
            "here %.1f ms\n", first_ms);
      else
        printf ("build        cold %.1f ms (clBuildProgram %.1f ms), warm "
            "%.1f ms (clBuildProgram %.1f ms)\n", build_cold, compile_cold,
            build_warm, compile_warm);
      printf ("memory       %.2f MiB peak on the device: weights %.2f MiB "
          "+ intermediates %.2f MiB\n", (weights + inter) / 1048576.0,
          weights / 1048576.0, inter / 1048576.0);
      if (o.profile) {
        int shown = MIN (o.top, n_prof_nodes);

        printf ("\nprofile      device time %.2f ms per inference (OpenCL "
            "events, per node the median of %d runs) of %.2f ms (their "
            "median latency): the rest is launches, transfers and host "
            "work\n", prof_total, o.iters, prof_wall);
        printf ("idle         %.2f ms per inference between launches (the "
            "device done with one kernel, not yet running the next; per "
            "node the median)\n", prof_idle);
        printf ("\n%d costliest of %d nodes:\n", shown, n_prof_nodes);
        printf ("%9s %6s %6s %8s %9s  %-21s %-16s %s\n", "ms", "%", "cum%",
            "kernels", "GFLOP/s", "op", "output", "node");
        {
          double cum = 0;
          for (int k = 0; k < shown; k++) {
            const LensNodeProfile *p = &prof_nodes[k];
            cum += p->device_ms;
            printf ("%9.3f %6.1f %6.1f %8d %9.2f  %-21s %-16s %s\n",
                p->device_ms, 100 * p->device_ms / MAX (prof_total, 1e-9),
                100 * cum / MAX (prof_total, 1e-9), p->kernels,
                p->device_ms > 0 ? p->flops / (p->device_ms * 1e6) : 0.0,
                p->op_type, output_shape (model, p, shape_buf,
                    sizeof shape_buf), p->name);
          }
        }
        printf ("\nper op type:\n");
        printf ("%9s %6s %6s %8s %9s %9s  %s\n", "ms", "%", "nodes",
            "kernels", "GFLOP", "GFLOP/s", "op");
        for (int k = 0; k < n_prof_ops; k++) {
          const OpTotal *t = &prof_ops[k];
          printf ("%9.3f %6.1f %6d %8d %9.3f %9.2f  %s\n", t->ms,
              100 * t->ms / MAX (prof_total, 1e-9), t->nodes, t->kernels,
              t->flops / 1e9, t->ms > 0 ? t->flops / (t->ms * 1e6) : 0.0,
              t->op_type);
        }
      }
    }
  }
  status = 0;
  goto done;

error:
  fprintf (stderr, "lens-bench: %s\n", err.message);
done:
  lens_error_clear (&err);
  g_free (samples);
  g_free (prof_nodes);
  g_free (prof_ops);
  for (int i = 0; inputs != NULL && i < n_inputs; i++)
    lens_tensor_free (inputs[i]);
  g_free (inputs);
  lens_tensor_free (file_input);
  lens_exec_free (exec);
  lens_model_free (model);
  lens_context_free (ctx);
  if (rand)
    g_rand_free (rand);
  return status;
}
