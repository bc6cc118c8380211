/* test-runtime.c: device selection, the program cache, checked CL calls
 * with named errors, tensors (transfers, reuse, views, comparison) and the
 * float16/bfloat16 conversions. */
#define _GNU_SOURCE             /* cpu_set_t, for lens_pocl_affinity_is_safe */
#include <sched.h>

#include "lens-check.h"
#include "lens-private.h"           /* lens_pocl_affinity_is_safe */

#include <glib/gstdio.h>
#include <unistd.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- device selection ---- */

START_TEST (test_select_auto)
{
  LensError err = LENS_ERROR_INIT;
  LensContext *c;

  ck_assert_msg (lens_context_new ("auto", &c, &err) == LENS_OK,
      "auto selection failed: %s", err.message);
  ck_assert_msg (strlen (lens_context_get_device_name (c)) > 0,
      "device has no name");
  lens_context_free (c);
}
END_TEST

START_TEST (test_select_index_and_name)
{
  LensError err = LENS_ERROR_INIT;
  LensContext *c;
  char *needle;

  ck_assert_msg (lens_context_new ("0:0", &c, &err) == LENS_OK,
      "0:0 selection failed: %s", err.message);
  /* a substring of the device's own name selects it back */
  needle = g_strndup (lens_context_get_device_name (c), 6);
  lens_context_free (c);
  ck_assert_msg (lens_context_new (needle, &c, &err) == LENS_OK,
      "name selection '%s' failed: %s", needle, err.message);
  lens_context_free (c);
  g_free (needle);
}
END_TEST

START_TEST (test_select_env)
{
  LensError err = LENS_ERROR_INIT;
  LensContext *c;

  g_setenv ("LENS_DEVICE", "no-such-device-xyz", TRUE);
  ck_assert_msg (lens_context_new (NULL, &c, &err) == LENS_ERROR_NO_DEVICE,
      "LENS_DEVICE naming no device should fail");
  ck_assert_msg (strstr (err.message, "no-such-device-xyz") != NULL,
      "message should name the spec: %s", err.message);
  ck_assert_msg (strstr (err.message, "available:") != NULL,
      "message should list the devices: %s", err.message);
  lens_error_clear (&err);
  g_unsetenv ("LENS_DEVICE");
}
END_TEST

/* PoCL aborts the process when it cannot pin a worker to its core: lens
 * asks for pinning only where every core exists and may be used. */
START_TEST (test_pocl_affinity_guard)
{
  const char *user = g_getenv ("POCL_AFFINITY");
  gboolean user_set = user != NULL || g_getenv ("POCL_MAX_PTHREAD_COUNT");
  cpu_set_t mask, mine;
  LensContext *ctx = NULL;
  LensError err = LENS_ERROR_INIT;

  CPU_ZERO (&mask);
  for (int cpu = 0; cpu < 4; cpu++)
    CPU_SET (cpu, &mask);
  ck_assert_msg (lens_pocl_affinity_is_safe (&mask, 4, 4),
      "expected cores 0-3, all allowed and online, to be safe to pin");
  ck_assert_msg (!lens_pocl_affinity_is_safe (&mask, 8, 8),
      "expected cores 4-7 outside the mask to forbid pinning");
  ck_assert_msg (!lens_pocl_affinity_is_safe (&mask, 4, 3),
      "expected an offline core to forbid pinning");
  ck_assert_msg (!lens_pocl_affinity_is_safe (&mask, -1, -1),
      "expected an unknown core count to forbid pinning");
  CPU_CLR (2, &mask);
  ck_assert_msg (!lens_pocl_affinity_is_safe (&mask, 4, 4),
      "expected core 2 outside the mask to forbid pinning");
  CPU_ZERO (&mask);
  CPU_SET (2, &mask);
  CPU_SET (3, &mask);
  ck_assert_msg (!lens_pocl_affinity_is_safe (&mask, 2, 2),
      "expected a cpuset of cores 2-3 to forbid pinning workers 0-1");

  /* once a context exists, this process has made its choice: pinned
   * where its own mask allows, the user's setting left alone */
  ck_assert_msg (lens_context_new ("auto", &ctx, &err) == LENS_OK,
      "lens_context_new: %s", err.message);
  lens_context_free (ctx);
  CPU_ZERO (&mine);
  ck_assert_int_eq (sched_getaffinity (0, sizeof mine, &mine), 0);
  if (user_set)
    ck_assert_str_eq (g_getenv ("POCL_AFFINITY") ? g_getenv ("POCL_AFFINITY")
        : "(unset)", user ? user : "(unset)");
  else if (lens_pocl_affinity_is_safe (&mine, sysconf (_SC_NPROCESSORS_CONF),
          sysconf (_SC_NPROCESSORS_ONLN)))
    ck_assert_msg (g_strcmp0 (g_getenv ("POCL_AFFINITY"), "1") == 0,
        "expected POCL_AFFINITY=1 on an unrestricted machine, got %s",
        g_getenv ("POCL_AFFINITY"));
  else
    ck_assert_msg (g_getenv ("POCL_AFFINITY") == NULL,
        "expected no pinning under a restricted mask, got "
        "POCL_AFFINITY=%s", g_getenv ("POCL_AFFINITY"));
}
END_TEST

START_TEST (test_select_bad_index)
{
  LensError err = LENS_ERROR_INIT;
  LensContext *c;

  ck_assert_int_eq (lens_context_new ("9:9", &c, &err), LENS_ERROR_NO_DEVICE);
  ck_assert_msg (strstr (err.message, "'9:9'") != NULL,
      "message should name the spec: %s", err.message);
  lens_error_clear (&err);
}
END_TEST

/* ---- program binaries on disk ---- */

START_TEST (test_disk_cache_warm_start)
{
  LensError err = LENS_ERROR_INIT;
  char *dir = g_dir_make_tmp ("lens-cache-XXXXXX", NULL);
  char *options = g_strdup_printf ("-DLENS_CACHE_TEST=%u", g_random_int ());
  guint hits0, writes0, hits1, writes1, hits2, writes2;
  LensContext *c;
  cl_kernel k;
  GDir *listing;
  int files = 0;

  lens_program_cache_set_dir (dir);
  lens_program_cache_stats (&hits0, &writes0);
  /* cold: compiled from source, binary written */
  ck_assert (lens_context_new (NULL, &c, &err) == LENS_OK);
  ck_assert_msg (lens_context_create_kernel (c, "fill", options,
          "lens_fill_u32", &k, &err) == LENS_OK, "%s", err.message);
  clReleaseKernel (k);
  lens_context_free (c);        /* the last context: programs go */
  lens_program_cache_stats (&hits1, &writes1);
  ck_assert_msg (writes1 == writes0 + 1 && hits1 == hits0,
      "a cold build should write one binary (writes %u -> %u, hits %u -> %u)",
      writes0, writes1, hits0, hits1);
  listing = g_dir_open (dir, 0, NULL);
  while (listing && g_dir_read_name (listing))
    files++;
  g_dir_close (listing);
  ck_assert_int_eq (files, 1);

  /* warm: loaded from the binary, nothing compiled */
  ck_assert (lens_context_new (NULL, &c, &err) == LENS_OK);
  ck_assert (lens_context_create_kernel (c, "fill", options, "lens_fill_u32",
          &k, &err) == LENS_OK);
  clReleaseKernel (k);
  lens_context_free (c);
  lens_program_cache_stats (&hits2, &writes2);
  ck_assert_msg (hits2 == hits1 + 1 && writes2 == writes1,
      "a warm start should load the binary (hits %u -> %u, writes %u -> %u)",
      hits1, hits2, writes1, writes2);

  /* a directory that cannot be written: still works, just no cache */
  lens_program_cache_set_dir ("/proc/lens-not-writable");
  ck_assert (lens_context_new (NULL, &c, &err) == LENS_OK);
  ck_assert_msg (lens_context_create_kernel (c, "fill", "-DLENS_CACHE_TEST=ro",
          "lens_fill_u32", &k, &err) == LENS_OK, "%s", err.message);
  clReleaseKernel (k);
  lens_context_free (c);
  lens_program_cache_set_dir (g_getenv ("LENS_CACHE_DIR"));
  g_free (options);
  {
    GDir *d = g_dir_open (dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d)) != NULL) {
      char *path = g_build_filename (dir, name, NULL);
      g_unlink (path);
      g_free (path);
    }
    if (d)
      g_dir_close (d);
  }
  g_rmdir (dir);
  g_free (dir);
}
END_TEST

/* ---- program cache and checked calls ---- */

START_TEST (test_program_cache)
{
  LensError err = LENS_ERROR_INIT;
  LensContext *second;
  cl_kernel k1, k2, k3;
  guint before;

  ck_assert_msg (lens_context_create_kernel (lens_check_ctx, "fill",
          "-DLENS_TEST_KEY=1", "lens_fill_u32", &k1, &err) == LENS_OK,
      "%s", err.message);
  before = lens_context_programs_built (lens_check_ctx);
  /* same key, even from another context on the same device: no rebuild */
  ck_assert (lens_context_new (NULL, &second, &err) == LENS_OK);
  ck_assert_msg (lens_context_create_kernel (second, "fill",
          "-DLENS_TEST_KEY=1", "lens_fill_u32", &k2, &err) == LENS_OK,
      "%s", err.message);
  ck_assert_msg (lens_context_programs_built (lens_check_ctx) == before,
      "same (device, source, options) must not build again");
  /* other options: a new program */
  ck_assert (lens_context_create_kernel (lens_check_ctx, "fill",
          "-DLENS_TEST_KEY=2", "lens_fill_u32", &k3, &err) == LENS_OK);
  ck_assert_msg (lens_context_programs_built (lens_check_ctx) == before + 1,
      "new options must build a new program");
  clReleaseKernel (k1);
  clReleaseKernel (k2);
  clReleaseKernel (k3);
  lens_context_free (second);
}
END_TEST

START_TEST (test_build_failure_has_log)
{
  LensError err = LENS_ERROR_INIT;
  cl_kernel k;

  /* turns a keyword of common.cl into a syntax error */
  ck_assert_int_eq (lens_context_create_kernel (lens_check_ctx, "fill",
          "-Dinline=@@", "lens_fill_u32", &k, &err), LENS_ERROR_BUILD);
  ck_assert_msg (strstr (err.message, "clBuildProgram") != NULL,
      "message should name the call: %s", err.message);
  ck_assert_msg (strstr (err.message, "CL_BUILD_PROGRAM_FAILURE") != NULL,
      "message should name the CL error: %s", err.message);
  ck_assert_msg (strstr (err.message, "error") != NULL,
      "message should carry the build log: %s", err.message);
  lens_error_clear (&err);
}
END_TEST

START_TEST (test_unknown_kernel)
{
  LensError err = LENS_ERROR_INIT;
  cl_kernel k;

  ck_assert_int_eq (lens_context_create_kernel (lens_check_ctx, "fill", "",
          "no_such_kernel", &k, &err), LENS_ERROR_CL);
  ck_assert_msg (strstr (err.message, "CL_INVALID_KERNEL_NAME") != NULL,
      "expected CL_INVALID_KERNEL_NAME: %s", err.message);
  lens_error_clear (&err);
  ck_assert_int_eq (lens_context_create_kernel (lens_check_ctx, "no_such_program", "",
          "k", &k, &err), LENS_ERROR_INVALID);
  lens_error_clear (&err);
}
END_TEST

START_TEST (test_bad_work_group_named)
{
  LensError err = LENS_ERROR_INIT;
  size_t global = 1 << 20, local = 1 << 20;
  cl_kernel k;

  ck_assert (lens_context_create_kernel (lens_check_ctx, "fill", "",
          "lens_fill_u32", &k, &err) == LENS_OK);
  ck_assert_int_eq (lens_context_enqueue (lens_check_ctx, k, 1, &global, &local, &err),
      LENS_ERROR_CL);
  ck_assert_msg (strstr (err.message, "clEnqueueNDRangeKernel") != NULL,
      "message should name the call: %s", err.message);
  ck_assert_msg (strstr (err.message, "CL_INVALID_") != NULL,
      "message should name the CL error: %s", err.message);
  lens_error_clear (&err);
  clReleaseKernel (k);
}
END_TEST

START_TEST (test_profiling_counts_launches)
{
  LensError err = LENS_ERROR_INIT;
  int64_t shape[1] = { 97 };
  LensTensor *t = lens_tensor_new (LENS_DTYPE_UINT32, 1, shape);
  cl_uint value = 7, n = 97;
  size_t global = 97;
  double ms[2] = { 0, 0 }, idle_ms[2] = { 0, 0 };
  int launches[2] = { 0, 0 };
  guint64 before;
  cl_kernel k;

  ck_assert (lens_tensor_alloc_device (lens_check_ctx, t, &err) == LENS_OK);
  ck_assert (lens_context_create_kernel (lens_check_ctx, "fill", "",
          "lens_fill_u32", &k, &err) == LENS_OK);
  ck_assert (lens_kernel_set_arg (k, 0, sizeof (cl_mem), &t->buffer, &err)
      == LENS_OK && lens_kernel_set_arg (k, 1, sizeof value, &value, &err)
      == LENS_OK && lens_kernel_set_arg (k, 2, sizeof n, &n, &err) == LENS_OK);
  before = lens_context_enqueue_count (lens_check_ctx);
  lens_context_set_profiling (lens_check_ctx, TRUE);
  lens_context_set_profile_tag (lens_check_ctx, 0);
  for (int i = 0; i < 2; i++)
    ck_assert (lens_context_enqueue (lens_check_ctx, k, 1, &global, NULL,
            &err) == LENS_OK);
  /* the device waits for the host: at least these 20 ms idle before the
   * launch under tag 1 */
  ck_assert (clFinish (lens_context_get_queue (lens_check_ctx)) ==
      CL_SUCCESS);
  g_usleep (20000);
  lens_context_set_profile_tag (lens_check_ctx, 1);
  ck_assert (lens_context_enqueue (lens_check_ctx, k, 1, &global, NULL,
          &err) == LENS_OK);
  ck_assert_msg (lens_context_profile_collect (lens_check_ctx, 2, ms,
          idle_ms, launches, &err) == LENS_OK, "%s", err.message);
  lens_context_set_profiling (lens_check_ctx, FALSE);
  ck_assert_msg (launches[0] == 2 && launches[1] == 1,
      "expected 2 launches under tag 0 and 1 under tag 1, got %d and %d",
      launches[0], launches[1]);
  ck_assert_msg (ms[0] >= 0 && ms[1] >= 0, "device times must not be "
      "negative: %g, %g", ms[0], ms[1]);
  ck_assert_msg (idle_ms[0] >= 0 && idle_ms[1] >= 15, "expected the 20 ms "
      "the host slept counted as idle before the launch under tag 1 (and "
      "no negative idle), got %g and %g ms", idle_ms[0], idle_ms[1]);
  ck_assert_msg (lens_context_enqueue_count (lens_check_ctx) - before == 3,
      "expected 3 counted launches, got %" G_GUINT64_FORMAT,
      lens_context_enqueue_count (lens_check_ctx) - before);
  clReleaseKernel (k);
  lens_tensor_free (t);
}
END_TEST

START_TEST (test_cl_error_names)
{
  ck_assert_str_eq (lens_cl_error_name (CL_INVALID_WORK_GROUP_SIZE),
      "CL_INVALID_WORK_GROUP_SIZE");
  ck_assert_str_eq (lens_cl_error_name (CL_OUT_OF_RESOURCES),
      "CL_OUT_OF_RESOURCES");
  ck_assert_str_eq (lens_cl_error_name (-12345), "CL_UNKNOWN_ERROR");
}
END_TEST

/* ---- tensors ---- */

START_TEST (test_tensor_roundtrip_and_reuse)
{
  LensError err = LENS_ERROR_INIT;
  int64_t shape[3] = { 2, 3, 97 };
  LensTensor *t = lens_tensor_new_host (LENS_DTYPE_FLOAT, 3, shape, NULL);
  float *data = t->host;
  cl_mem first;

  for (int i = 0; i < 2 * 3 * 97; i++)
    data[i] = i * 0.5f - 7;
  ck_assert (lens_tensor_upload (lens_check_ctx, t, &err) == LENS_OK);
  first = t->buffer;
  memset (t->host, 0, lens_tensor_nbytes (t));
  ck_assert (lens_tensor_download (lens_check_ctx, t, &err) == LENS_OK);
  for (int i = 0; i < 2 * 3 * 97; i++)
    ck_assert_msg (((float *) t->host)[i] == i * 0.5f - 7,
        "element %d: got %g after round trip", i, ((float *) t->host)[i]);
  /* a smaller shape reuses the buffer */
  lens_tensor_set_shape (t, 2, shape);
  ck_assert (lens_tensor_alloc_device (lens_check_ctx, t, &err) == LENS_OK);
  ck_assert_msg (t->buffer == first, "buffer should be reused");
  lens_tensor_free (t);
}
END_TEST

START_TEST (test_tensor_view_shares_buffer)
{
  LensError err = LENS_ERROR_INIT;
  int64_t shape[2] = { 4, 6 }, flat[1] = { 24 };
  LensTensor *t = lens_tensor_new_host (LENS_DTYPE_INT32, 2, shape, NULL);
  LensTensor *v;

  ck_assert (lens_tensor_upload (lens_check_ctx, t, &err) == LENS_OK);
  v = lens_tensor_new_view (t, 1, flat);
  ck_assert_msg (v->buffer == t->buffer, "a view must share the buffer");
  ck_assert_int_eq (v->strides[0], 1);
  lens_tensor_free (t);
  /* the view keeps the buffer alive */
  ck_assert (lens_tensor_download (lens_check_ctx, v, &err) == LENS_OK);
  lens_tensor_free (v);
}
END_TEST

START_TEST (test_tensor_compare)
{
  LensError err = LENS_ERROR_INIT;
  int64_t shape[1] = { 3 };
  float a[3] = { 1.0f, 2.0f, NAN }, b[3] = { 1.0f, 2.00001f, NAN };
  float c[3] = { 1.0f, 2.1f, NAN };
  LensTensor *ta = lens_tensor_new_host (LENS_DTYPE_FLOAT, 1, shape, a);
  LensTensor *tb = lens_tensor_new_host (LENS_DTYPE_FLOAT, 1, shape, b);
  LensTensor *tc = lens_tensor_new_host (LENS_DTYPE_FLOAT, 1, shape, c);

  ck_assert_msg (lens_tensor_compare (ta, tb, 1e-4, 1e-4, NULL, &err) ==
      LENS_OK, "within tolerance: %s", err.message);
  ck_assert_int_eq (lens_tensor_compare (ta, tc, 1e-4, 1e-4, NULL, &err),
      LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "first at 1") != NULL,
      "message should name the element: %s", err.message);
  lens_error_clear (&err);
  lens_tensor_free (ta);
  lens_tensor_free (tb);
  lens_tensor_free (tc);
}
END_TEST

START_TEST (test_half_conversions)
{
  /* every finite half survives half -> float -> half */
  for (guint32 h = 0; h < 65536; h++) {
    float f = lens_half_to_float ((uint16_t) h);
    if (isnan (f))
      continue;
    ck_assert_msg (lens_float_to_half (f) == h,
        "half 0x%04x -> %g -> 0x%04x", h, f, lens_float_to_half (f));
  }
  ck_assert_uint_eq (lens_float_to_half (65520.0f), 0x7c00);  /* overflow */
  ck_assert_uint_eq (lens_float_to_half (1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
  {
    /* the bulk conversion (SIMD where the CPU has it) agrees with the
     * scalar one on every half's neighbourhood, ties, overflow and
     * underflow; NaN stays NaN */
    enum { N = 4 * 65536 + 5 };
    float *f = g_new (float, N);
    uint16_t *h = g_new (uint16_t, N);
    for (guint32 k = 0; k < 65536; k++) {
      float v = lens_half_to_float ((uint16_t) k);
      f[4 * k] = v;
      f[4 * k + 1] = nextafterf (v, INFINITY);
      f[4 * k + 2] = nextafterf (v, -INFINITY);
      f[4 * k + 3] = v * 1.00048828125f;       /* halfway up, for normals */
    }
    f[N - 5] = 1e-10f;
    f[N - 4] = -70000.0f;
    f[N - 3] = 65519.0f;
    f[N - 2] = 5.9604645e-08f * 0.5f;            /* tie at the smallest */
    f[N - 1] = NAN;
    lens_floats_to_halves (f, h, N);
    for (int k = 0; k < N; k++) {
      uint16_t want = lens_float_to_half (f[k]);
      if (isnan (f[k]))
        ck_assert_msg ((h[k] & 0x7c00) == 0x7c00 && (h[k] & 0x3ff) != 0,
            "NaN became 0x%04x", h[k]);
      else
        ck_assert_msg (h[k] == want, "%a: bulk 0x%04x, scalar 0x%04x",
            (double) f[k], h[k], want);
    }
    g_free (f);
    g_free (h);
  }
  ck_assert_uint_eq (lens_float_to_bfloat16 (1.0f), 0x3f80);
  ck_assert (lens_bfloat16_to_float (0x3f80) == 1.0f);
}
END_TEST

/* ---- ONNX protobuf layer ---- */

#define NODE_DATA "/usr/share/libonnx-testdata/data/node"

static char *
write_temp (const void *data, gsize len)
{
  char *path = NULL;
  int fd = g_file_open_tmp ("lens-test-XXXXXX.onnx", &path, NULL);

  ck_assert_msg (fd >= 0, "cannot create a temporary file");
  close (fd);
  ck_assert (g_file_set_contents (path, data, (gssize) len, NULL));
  return path;
}

START_TEST (test_onnx_missing_file)
{
  LensError err = LENS_ERROR_INIT;
  LensOnnxModel *m;

  ck_assert_int_eq (lens_onnx_model_load ("/nonexistent/model.onnx", &m,
          &err), LENS_ERROR_IO);
  ck_assert_msg (strstr (err.message, "/nonexistent/model.onnx") != NULL,
      "message should name the file: %s", err.message);
  lens_error_clear (&err);
}
END_TEST

START_TEST (test_onnx_not_onnx)
{
  static const char garbage[] = "\xff\xff\xff\xff this is not protobuf";
  LensError err = LENS_ERROR_INIT;
  LensOnnxModel *m;
  char *path = write_temp (garbage, sizeof garbage);

  ck_assert_int_eq (lens_onnx_model_load (path, &m, &err), LENS_ERROR_PARSE);
  ck_assert_msg (strstr (err.message, path) != NULL,
      "message should name the file: %s", err.message);
  lens_error_clear (&err);
  g_unlink (path);
  g_free (path);
}
END_TEST

START_TEST (test_onnx_truncated)
{
  LensError err = LENS_ERROR_INIT;
  LensOnnxModel *m;
  char *data, *path;
  gsize len;

  if (!g_file_get_contents (NODE_DATA "/test_basic_conv_with_padding/model.onnx",
          &data, &len, NULL))
    return;                     /* test data absent: covered by onnx-node */
  ck_assert_msg (lens_onnx_model_load (NODE_DATA
          "/test_basic_conv_with_padding/model.onnx", &m, &err) == LENS_OK,
      "intact model should load: %s", err.message);
  ck_assert_int_eq (m->n_nodes, 1);
  ck_assert_str_eq (m->nodes[0]->op_type, "Conv");
  lens_onnx_model_free (m);

  path = write_temp (data, len * 2 / 3);
  ck_assert_int_eq (lens_onnx_model_load (path, &m, &err), LENS_ERROR_PARSE);
  lens_error_clear (&err);
  g_unlink (path);
  g_free (path);
  g_free (data);
}
END_TEST

START_TEST (test_onnx_unsupported_op_named)
{
  LensError err = LENS_ERROR_INIT;
  LensOnnxModel *m;

  if (!g_file_test (NODE_DATA "/test_lrn/model.onnx", G_FILE_TEST_EXISTS))
    return;
  ck_assert_int_eq (lens_onnx_model_load (NODE_DATA "/test_lrn/model.onnx",
          &m, &err), LENS_ERROR_UNSUPPORTED_OP);
  ck_assert_msg (strstr (err.message, "LRN") != NULL
      && strstr (err.message, "opset") != NULL,
      "message should name the op and opset: %s", err.message);
  lens_error_clear (&err);
}
END_TEST

START_TEST (test_onnx_tensor_pb)
{
  LensError err = LENS_ERROR_INIT;
  LensTensor *t;

  if (!g_file_test (NODE_DATA "/test_basic_conv_with_padding", G_FILE_TEST_IS_DIR))
    return;
  ck_assert_msg (lens_onnx_tensor_load (NODE_DATA
          "/test_basic_conv_with_padding/test_data_set_0/input_0.pb", &t,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_int_eq (t->dtype, LENS_DTYPE_FLOAT);
  ck_assert_int_eq (t->ndim, 4);
  ck_assert_int_eq (lens_tensor_numel (t), 25);
  ck_assert (((float *) t->host)[24] == 24.0f);
  lens_tensor_free (t);
}
END_TEST

static Suite *
runtime_suite (void)
{
  Suite *s = suite_create ("runtime");
  TCase *tc_select = tcase_create ("device-selection");
  TCase *tc_programs = tcase_create ("programs");
  TCase *tc_tensors = tcase_create ("tensors");
  TCase *tc_onnx = tcase_create ("onnx");

  tcase_add_test (tc_select, test_select_auto);
  tcase_add_test (tc_select, test_select_index_and_name);
  tcase_add_test (tc_select, test_select_env);
  tcase_add_test (tc_select, test_select_bad_index);
  tcase_add_test (tc_select, test_pocl_affinity_guard);
  tcase_add_test (tc_select, test_disk_cache_warm_start);
  suite_add_tcase (s, tc_select);

  tcase_add_checked_fixture (tc_programs, lens_check_setup,
      lens_check_teardown);
  tcase_set_timeout (tc_programs, 300);
  tcase_add_test (tc_programs, test_program_cache);
  tcase_add_test (tc_programs, test_build_failure_has_log);
  tcase_add_test (tc_programs, test_unknown_kernel);
  tcase_add_test (tc_programs, test_bad_work_group_named);
  tcase_add_test (tc_programs, test_cl_error_names);
  tcase_add_test (tc_programs, test_profiling_counts_launches);
  suite_add_tcase (s, tc_programs);

  tcase_add_checked_fixture (tc_tensors, lens_check_setup,
      lens_check_teardown);
  tcase_add_test (tc_tensors, test_tensor_roundtrip_and_reuse);
  tcase_add_test (tc_tensors, test_tensor_view_shares_buffer);
  tcase_add_test (tc_tensors, test_tensor_compare);
  tcase_add_test (tc_tensors, test_half_conversions);
  suite_add_tcase (s, tc_tensors);

  tcase_add_test (tc_onnx, test_onnx_missing_file);
  tcase_add_test (tc_onnx, test_onnx_not_onnx);
  tcase_add_test (tc_onnx, test_onnx_truncated);
  tcase_add_test (tc_onnx, test_onnx_unsupported_op_named);
  tcase_add_test (tc_onnx, test_onnx_tensor_pb);
  suite_add_tcase (s, tc_onnx);
  return s;
}

int
main (void)
{
  return lens_check_run (runtime_suite ());
}
