/* runtime.c: OpenCL device selection, contexts, the per-process program
 * cache keyed by (device, source hash, build options), checked kernel
 * launches, and the opt-in kernel profiling (OpenCL events per launch,
 * tagged by the caller) that lens-bench --profile reads.
 *
 * Contexts opened on the same device share one LensDevice: one cl_context
 * and one program cache, so a program is compiled once per process whatever
 * the number of streams. Each LensContext has its own command queue.
 *
 * Also the one PoCL setting lens chooses for its users: worker threads
 * pinned to cores (see pocl_pin_workers_by_default).
 */
#define _GNU_SOURCE             /* sched_getaffinity, CPU_ISSET */
#include "lens-private.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct
{
  cl_device_id device;
  cl_platform_id platform;
  cl_context context;
  char *device_name;
  char *platform_name;
  gboolean is_gpu;
  gboolean exact_divide;        /* CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT */
  size_t sub_buffer_align;      /* bytes: CL_DEVICE_MEM_BASE_ADDR_ALIGN */
  int compute_units;            /* CL_DEVICE_MAX_COMPUTE_UNITS, at least 1 */
  char *identity;               /* platform, device and driver versions: what
                                 * a cached program binary was built for */
  int refcount;
  GMutex lock;                  /* guards programs and build_us */
  GHashTable *programs;         /* "sha256|options" -> cl_program */
  gint64 build_us;              /* wall time spent in clBuildProgram */
} LensDevice;

/* One kernel launch kept for profiling: its event and the tag (the node)
 * current when it was enqueued. */
typedef struct
{
  cl_event event;
  int tag;
} ProfiledLaunch;

struct _LensContext
{
  LensDevice *dev;
  cl_command_queue queue;
  guint64 n_enqueues;           /* kernels launched on this queue */
  /* lens_context_set_profiling: off, lens_context_enqueue asks for no
   * event at all, so profiling costs nothing unless asked for */
  gboolean profiling;
  int profile_tag;
  GArray *launches;             /* ProfiledLaunch, since the last collect */
};

static GMutex devices_lock;
static GHashTable *devices;     /* cl_device_id -> LensDevice */

static char *
get_device_string (cl_device_id device, cl_device_info param)
{
  size_t size = 0;
  char *s;

  if (clGetDeviceInfo (device, param, 0, NULL, &size) != CL_SUCCESS)
    return g_strdup ("");
  s = g_malloc0 (size + 1);
  clGetDeviceInfo (device, param, size, s, NULL);
  return g_strstrip (s);
}

static char *
get_platform_string (cl_platform_id platform, cl_platform_info param)
{
  size_t size = 0;
  char *s;

  if (clGetPlatformInfo (platform, param, 0, NULL, &size) != CL_SUCCESS)
    return g_strdup ("");
  s = g_malloc0 (size + 1);
  clGetPlatformInfo (platform, param, size, s, NULL);
  return g_strstrip (s);
}

typedef struct
{
  cl_platform_id platform;
  cl_device_id device;
  cl_device_type type;
  int platform_index, device_index;
} Candidate;

gboolean
lens_pocl_affinity_is_safe (const cpu_set_t * allowed, long n_configured,
    long n_online)
{
  if (n_configured < 1 || n_configured != n_online)
    return FALSE;
  for (long cpu = 0; cpu < n_configured; cpu++)
    if (cpu >= CPU_SETSIZE || !CPU_ISSET (cpu, allowed))
      return FALSE;
  return TRUE;
}

/* PoCL's CPU device runs each kernel on worker threads that sleep on a
 * condition variable between kernels; on the 2-core CI machine (a VM) a
 * sleeping worker takes about 15 us to join the next kernel, paid once or
 * twice per launch. Pinned (POCL_AFFINITY=1: worker i on core i), YOLO11n
 * ran 21.5 -> 20.6 ms, FastestDet 5.32 -> 5.13 ms, YOLOv5n 8.12 -> 7.37 ms,
 * yunet the same, YOLOX-nano from 3 % faster to 4 % slower (A/B runs). PoCL
 * aborts the process if it cannot pin a worker, so lens turns it on only
 * where every core 0..N-1 exists and this process may run on all of them
 * (not under a cpuset or CPUAffinity= that excludes one), never over a
 * POCL_AFFINITY or POCL_MAX_PTHREAD_COUNT of the user's, and only before
 * PoCL starts (its first clGetPlatformIDs in the process). */
static gpointer
pocl_pin_workers_by_default (gpointer unused)
{
  cpu_set_t allowed;

  if (g_getenv ("POCL_AFFINITY") != NULL ||
      g_getenv ("POCL_MAX_PTHREAD_COUNT") != NULL)
    return NULL;
  CPU_ZERO (&allowed);
  if (sched_getaffinity (0, sizeof allowed, &allowed) != 0)
    return NULL;
  if (lens_pocl_affinity_is_safe (&allowed, sysconf (_SC_NPROCESSORS_CONF),
          sysconf (_SC_NPROCESSORS_ONLN)))
    g_setenv ("POCL_AFFINITY", "1", FALSE);
  return NULL;
}

static LensStatus
list_devices (GArray *out, LensError *err)
{
  static GOnce pocl_defaults = G_ONCE_INIT;
  cl_uint n_platforms = 0;
  cl_platform_id *platforms;
  cl_int rc;

  g_once (&pocl_defaults, pocl_pin_workers_by_default, NULL);
  rc = clGetPlatformIDs (0, NULL, &n_platforms);
  if (rc == -1001 || n_platforms == 0)
    return lens_error_set (err, LENS_ERROR_NO_DEVICE,
        "no OpenCL platform found (is an ICD such as pocl-opencl-icd "
        "installed?)");
  if (rc != CL_SUCCESS)
    return lens_error_set (err, LENS_ERROR_CL, "clGetPlatformIDs: %s",
        lens_cl_error_name (rc));
  platforms = g_new0 (cl_platform_id, n_platforms);
  clGetPlatformIDs (n_platforms, platforms, NULL);
  for (cl_uint p = 0; p < n_platforms; p++) {
    cl_uint n_devices = 0;
    cl_device_id *ids;

    if (clGetDeviceIDs (platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL,
            &n_devices) != CL_SUCCESS || n_devices == 0)
      continue;
    ids = g_new0 (cl_device_id, n_devices);
    clGetDeviceIDs (platforms[p], CL_DEVICE_TYPE_ALL, n_devices, ids, NULL);
    for (cl_uint d = 0; d < n_devices; d++) {
      Candidate c = { platforms[p], ids[d], 0, (int) p, (int) d };
      clGetDeviceInfo (ids[d], CL_DEVICE_TYPE, sizeof (c.type), &c.type,
          NULL);
      g_array_append_val (out, c);
    }
    g_free (ids);
  }
  g_free (platforms);
  if (out->len == 0)
    return lens_error_set (err, LENS_ERROR_NO_DEVICE,
        "no OpenCL device found on %u platform(s)", n_platforms);
  return LENS_OK;
}

static gboolean
candidate_matches_name (const Candidate * c, const char *spec)
{
  char *dn = get_device_string (c->device, CL_DEVICE_NAME);
  char *pn = get_platform_string (c->platform, CL_PLATFORM_NAME);
  char *hay = g_ascii_strdown (dn, -1);
  char *hay2 = g_ascii_strdown (pn, -1);
  char *needle = g_ascii_strdown (spec, -1);
  gboolean found = strstr (hay, needle) != NULL || strstr (hay2, needle)
      != NULL;

  g_free (dn);
  g_free (pn);
  g_free (hay);
  g_free (hay2);
  g_free (needle);
  return found;
}

static LensStatus
select_device (const char *spec, Candidate * chosen, LensError *err)
{
  GArray *all = g_array_new (FALSE, TRUE, sizeof (Candidate));
  LensStatus st;
  int found = -1;
  int pi, di;
  char tail;

  st = list_devices (all, err);
  if (st != LENS_OK)
    goto done;

  if (spec == NULL || *spec == '\0' || g_ascii_strcasecmp (spec, "auto") == 0) {
    for (guint i = 0; i < all->len && found < 0; i++)
      if (g_array_index (all, Candidate, i).type & CL_DEVICE_TYPE_GPU)
        found = (int) i;
    for (guint i = 0; i < all->len && found < 0; i++)
      if (g_array_index (all, Candidate, i).type & CL_DEVICE_TYPE_CPU)
        found = (int) i;
    if (found < 0)
      found = 0;
  } else if (g_ascii_strcasecmp (spec, "gpu") == 0
      || g_ascii_strcasecmp (spec, "cpu") == 0) {
    cl_device_type want = g_ascii_strcasecmp (spec, "gpu") == 0 ?
        CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_CPU;
    for (guint i = 0; i < all->len && found < 0; i++)
      if (g_array_index (all, Candidate, i).type & want)
        found = (int) i;
  } else if (sscanf (spec, "%d:%d%c", &pi, &di, &tail) == 2) {
    for (guint i = 0; i < all->len && found < 0; i++) {
      Candidate *c = &g_array_index (all, Candidate, i);
      if (c->platform_index == pi && c->device_index == di)
        found = (int) i;
    }
  } else {
    for (guint i = 0; i < all->len && found < 0; i++)
      if (candidate_matches_name (&g_array_index (all, Candidate, i), spec))
        found = (int) i;
  }

  if (found < 0) {
    GString *names = g_string_new (NULL);
    for (guint i = 0; i < all->len; i++) {
      Candidate *c = &g_array_index (all, Candidate, i);
      char *dn = get_device_string (c->device, CL_DEVICE_NAME);
      g_string_append_printf (names, "%s%d:%d %s", i ? ", " : "",
          c->platform_index, c->device_index, dn);
      g_free (dn);
    }
    st = lens_error_set (err, LENS_ERROR_NO_DEVICE,
        "no OpenCL device matches '%s' (available: %s)", spec, names->str);
    g_string_free (names, TRUE);
    goto done;
  }
  *chosen = g_array_index (all, Candidate, found);

done:
  g_array_unref (all);
  return st;
}

static void
release_program (gpointer p)
{
  clReleaseProgram ((cl_program) p);
}

static LensStatus
device_acquire (const Candidate * c, LensDevice ** out, LensError *err)
{
  LensDevice *dev;
  cl_context_properties props[] = {
    CL_CONTEXT_PLATFORM, (cl_context_properties) c->platform, 0
  };
  cl_int rc;

  g_mutex_lock (&devices_lock);
  if (devices == NULL)
    devices = g_hash_table_new (g_direct_hash, g_direct_equal);
  dev = g_hash_table_lookup (devices, c->device);
  if (dev != NULL) {
    dev->refcount++;
    g_mutex_unlock (&devices_lock);
    *out = dev;
    return LENS_OK;
  }

  dev = g_new0 (LensDevice, 1);
  dev->device = c->device;
  dev->platform = c->platform;
  dev->context = clCreateContext (props, 1, &c->device, NULL, NULL, &rc);
  if (rc != CL_SUCCESS) {
    g_mutex_unlock (&devices_lock);
    g_free (dev);
    return lens_error_set (err, LENS_ERROR_CL, "clCreateContext: %s",
        lens_cl_error_name (rc));
  }
  dev->device_name = get_device_string (c->device, CL_DEVICE_NAME);
  dev->platform_name = get_platform_string (c->platform, CL_PLATFORM_NAME);
  dev->is_gpu = (c->type & CL_DEVICE_TYPE_GPU) != 0;
  {
    cl_device_fp_config fp = 0;
    clGetDeviceInfo (c->device, CL_DEVICE_SINGLE_FP_CONFIG, sizeof (fp), &fp,
        NULL);
    dev->exact_divide = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
  }
  {
    cl_uint align_bits = 0;
    clGetDeviceInfo (c->device, CL_DEVICE_MEM_BASE_ADDR_ALIGN,
        sizeof (align_bits), &align_bits, NULL);
    /* OpenCL 1.2 requires at least the size of long16 (1024 bits) */
    dev->sub_buffer_align = MAX (align_bits / 8, 128);
  }
  {
    cl_uint units = 1;
    clGetDeviceInfo (c->device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof (units),
        &units, NULL);
    dev->compute_units = (int) MAX (units, 1);
  }
  {
    char *pv = get_platform_string (c->platform, CL_PLATFORM_VERSION);
    char *dv = get_device_string (c->device, CL_DEVICE_VERSION);
    char *drv = get_device_string (c->device, CL_DRIVER_VERSION);
    dev->identity = g_strdup_printf ("%s|%s|%s|%s|%s", dev->platform_name,
        pv, dev->device_name, dv, drv);
    g_free (pv);
    g_free (dv);
    g_free (drv);
  }
  dev->refcount = 1;
  g_mutex_init (&dev->lock);
  dev->programs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      release_program);
  g_hash_table_insert (devices, c->device, dev);
  g_mutex_unlock (&devices_lock);
  *out = dev;
  return LENS_OK;
}

static void
device_release (LensDevice * dev)
{
  g_mutex_lock (&devices_lock);
  if (--dev->refcount > 0) {
    g_mutex_unlock (&devices_lock);
    return;
  }
  g_hash_table_remove (devices, dev->device);
  g_mutex_unlock (&devices_lock);

  g_hash_table_destroy (dev->programs);
  g_mutex_clear (&dev->lock);
  clReleaseContext (dev->context);
  g_free (dev->device_name);
  g_free (dev->platform_name);
  g_free (dev->identity);
  g_free (dev);
}

static LensStatus
context_on_device (const Candidate * chosen, LensContext ** out,
    LensError *err)
{
  LensContext *ctx;
  LensStatus st;
  cl_int rc;

  ctx = g_new0 (LensContext, 1);
  st = device_acquire (chosen, &ctx->dev, err);
  if (st != LENS_OK) {
    g_free (ctx);
    return st;
  }
  ctx->queue = clCreateCommandQueue (ctx->dev->context, chosen->device,
      CL_QUEUE_PROFILING_ENABLE, &rc);
  if (rc != CL_SUCCESS) {
    device_release (ctx->dev);
    g_free (ctx);
    return lens_error_set (err, LENS_ERROR_CL, "clCreateCommandQueue: %s",
        lens_cl_error_name (rc));
  }
  *out = ctx;
  return LENS_OK;
}

LensStatus
lens_context_new (const char *device_spec, LensContext ** out, LensError *err)
{
  Candidate chosen;
  LensStatus st;

  if (device_spec == NULL)
    device_spec = g_getenv ("LENS_DEVICE");
  st = select_device (device_spec, &chosen, err);
  if (st != LENS_OK)
    return st;
  return context_on_device (&chosen, out, err);
}

LensStatus
lens_context_new_like (LensContext * like, LensContext ** out, LensError *err)
{
  Candidate same = { like->dev->platform, like->dev->device, 0, 0, 0 };

  same.type = like->dev->is_gpu ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_CPU;
  return context_on_device (&same, out, err);
}

static void
release_launches (LensContext * ctx)
{
  if (ctx->launches == NULL)
    return;
  for (guint i = 0; i < ctx->launches->len; i++)
    clReleaseEvent (g_array_index (ctx->launches, ProfiledLaunch, i).event);
  g_array_set_size (ctx->launches, 0);
}

void
lens_context_free (LensContext * ctx)
{
  if (ctx == NULL)
    return;
  clFinish (ctx->queue);
  release_launches (ctx);
  if (ctx->launches != NULL)
    g_array_free (ctx->launches, TRUE);
  clReleaseCommandQueue (ctx->queue);
  device_release (ctx->dev);
  g_free (ctx);
}

cl_context
lens_context_get_cl_context (LensContext * ctx)
{
  return ctx->dev->context;
}

cl_command_queue
lens_context_get_queue (LensContext * ctx)
{
  return ctx->queue;
}

cl_device_id
lens_context_get_device (LensContext * ctx)
{
  return ctx->dev->device;
}

const char *
lens_context_get_device_name (LensContext * ctx)
{
  return ctx->dev->device_name;
}

const char *
lens_context_get_platform_name (LensContext * ctx)
{
  return ctx->dev->platform_name;
}

gboolean
lens_context_is_gpu (LensContext * ctx)
{
  return ctx->dev->is_gpu;
}

int
lens_context_compute_units (LensContext * ctx)
{
  return ctx->dev->compute_units;
}

size_t
lens_context_sub_buffer_align (LensContext * ctx)
{
  return ctx->dev->sub_buffer_align;
}

LensStatus
lens_context_finish (LensContext * ctx, LensError *err)
{
  LENS_CL_CHECK (clFinish (ctx->queue), err);
  return LENS_OK;
}

static const LensKernelSource *
find_source (const char *name)
{
  for (const LensKernelSource * s = lens_kernel_sources; s->name; s++)
    if (strcmp (s->name, name) == 0)
      return s;
  return NULL;
}

/* ---- program binary cache on disk ----------------------------------------- */

static GMutex cache_lock;
static char *cache_dir;         /* NULL: not chosen yet */
static gboolean cache_dir_set;
static guint cache_hits, cache_writes;

void
lens_program_cache_set_dir (const char *dir)
{
  g_mutex_lock (&cache_lock);
  g_free (cache_dir);
  cache_dir = g_strdup (dir && *dir ? dir : NULL);
  cache_dir_set = TRUE;
  g_mutex_unlock (&cache_lock);
}

/* The directory in use: set by the API, else $LENS_CACHE_DIR ("" turns the
 * cache off), else the user's cache directory + /lens. */
static char *
current_cache_dir (void)
{
  char *dir;

  g_mutex_lock (&cache_lock);
  if (!cache_dir_set) {
    const char *env = g_getenv ("LENS_CACHE_DIR");
    cache_dir = env ? (*env ? g_strdup (env) : NULL) :
        g_build_filename (g_get_user_cache_dir (), "lens", NULL);
    cache_dir_set = TRUE;
  }
  dir = g_strdup (cache_dir);
  g_mutex_unlock (&cache_lock);
  return dir;
}

void
lens_program_cache_stats (guint * hits, guint * writes)
{
  g_mutex_lock (&cache_lock);
  if (hits)
    *hits = cache_hits;
  if (writes)
    *writes = cache_writes;
  g_mutex_unlock (&cache_lock);
}

/* DIR/<sha256 of device identity, sources and options>.bin, or NULL */
static char *
cache_path (LensDevice * dev, const LensKernelSource * common,
    const LensKernelSource * src, const char *full_options)
{
  char *dir = current_cache_dir (), *key, *hash, *file, *path;

  if (dir == NULL)
    return NULL;
  key = g_strdup_printf ("%s\n%s\n%s\n%s", dev->identity, common->sha256,
      src->sha256, full_options);
  hash = g_compute_checksum_for_string (G_CHECKSUM_SHA256, key, -1);
  file = g_strdup_printf ("%s-%s.bin", src->name, hash);
  path = g_build_filename (dir, file, NULL);
  g_free (key);
  g_free (hash);
  g_free (file);
  g_free (dir);
  return path;
}

/* A program from a cached binary, or NULL (absent, unreadable, rejected by
 * the driver: the caller then builds from source). */
static cl_program
load_cached (LensDevice * dev, const char *path, const char *full_options)
{
  const unsigned char *binary;
  cl_program program;
  cl_int rc, status;
  char *data = NULL;
  gsize len = 0;

  if (path == NULL || !g_file_get_contents (path, &data, &len, NULL))
    return NULL;
  binary = (const unsigned char *) data;
  program = clCreateProgramWithBinary (dev->context, 1, &dev->device, &len,
      &binary, &status, &rc);
  g_free (data);
  if (rc != CL_SUCCESS || status != CL_SUCCESS)
    return NULL;
  if (clBuildProgram (program, 1, &dev->device, full_options, NULL, NULL)
      != CL_SUCCESS) {
    clReleaseProgram (program);
    return NULL;
  }
  g_mutex_lock (&cache_lock);
  cache_hits++;
  g_mutex_unlock (&cache_lock);
  return program;
}

/* Writes the program's binary atomically; a cache directory that cannot be
 * written only costs the next start a compile. */
static void
store_cached (LensDevice * dev, cl_program program, const char *path)
{
  size_t size = 0;
  unsigned char *binary;
  char *dir;

  if (path == NULL
      || clGetProgramInfo (program, CL_PROGRAM_BINARY_SIZES, sizeof size,
          &size, NULL) != CL_SUCCESS || size == 0)
    return;
  binary = g_malloc (size);
  if (clGetProgramInfo (program, CL_PROGRAM_BINARIES, sizeof binary, &binary,
          NULL) == CL_SUCCESS) {
    dir = g_path_get_dirname (path);
    if (g_mkdir_with_parents (dir, 0755) == 0
        && g_file_set_contents (path, (const char *) binary, (gssize) size,
            NULL)) {
      g_mutex_lock (&cache_lock);
      cache_writes++;
      g_mutex_unlock (&cache_lock);
    }
    g_free (dir);
  }
  g_free (binary);
}

static LensStatus
build_program (LensDevice * dev, const LensKernelSource * common,
    const LensKernelSource * src, const char *options, cl_program * out,
    LensError *err)
{
  const char *strings[2] = { common->source, src->source };
  size_t lengths[2] = { common->length, src->length };
  cl_program program;
  cl_int rc, build_rc;
  char *full_options, *cached;
  gint64 start;

  /* correctly rounded division where the device offers it: results that
   * must match ONNX Runtime bit for bit (lens_logistic) divide */
  full_options = g_strdup_printf ("-cl-std=CL1.2 %s%s",
      dev->exact_divide ? "-cl-fp32-correctly-rounded-divide-sqrt " : "",
      options ? options : "");
  start = g_get_monotonic_time ();
  cached = cache_path (dev, common, src, full_options);
  program = load_cached (dev, cached, full_options);
  if (program != NULL) {
    dev->build_us += g_get_monotonic_time () - start;
    g_free (cached);
    g_free (full_options);
    *out = program;
    return LENS_OK;
  }

  program = clCreateProgramWithSource (dev->context, 2, strings, lengths, &rc);
  if (rc != CL_SUCCESS) {
    g_free (cached);
    g_free (full_options);
    return lens_error_set (err, LENS_ERROR_CL,
        "clCreateProgramWithSource (%s.cl): %s", src->name,
        lens_cl_error_name (rc));
  }
  build_rc = clBuildProgram (program, 1, &dev->device, full_options, NULL,
      NULL);
  /* the caller holds dev->lock */
  dev->build_us += g_get_monotonic_time () - start;
  if (build_rc != CL_SUCCESS) {
    size_t log_size = 0;
    char *log;

    clGetProgramBuildInfo (program, dev->device, CL_PROGRAM_BUILD_LOG, 0,
        NULL, &log_size);
    log = g_malloc0 (log_size + 1);
    clGetProgramBuildInfo (program, dev->device, CL_PROGRAM_BUILD_LOG,
        log_size, log, NULL);
    lens_error_set (err, LENS_ERROR_BUILD,
        "clBuildProgram (%s.cl, options '%s') on %s: %s\n%s", src->name,
        full_options, dev->device_name, lens_cl_error_name (build_rc),
        g_strstrip (log));
    g_free (log);
    g_free (full_options);
    g_free (cached);
    clReleaseProgram (program);
    return LENS_ERROR_BUILD;
  }
  store_cached (dev, program, cached);
  g_free (cached);
  g_free (full_options);
  *out = program;
  return LENS_OK;
}

LensStatus
lens_context_create_kernel (LensContext * ctx, const char *program_name,
    const char *options, const char *kernel_name, cl_kernel * out,
    LensError *err)
{
  LensDevice *dev = ctx->dev;
  const LensKernelSource *src, *common;
  cl_program program;
  cl_kernel kernel;
  char *key;
  cl_int rc;

  src = find_source (program_name);
  common = find_source ("common");
  if (src == NULL || common == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "no embedded kernel source '%s.cl'", program_name);

  /* The device is implied by dev; the key covers both embedded sources. */
  key = g_strdup_printf ("%s|%s|%s", common->sha256, src->sha256,
      options ? options : "");
  g_mutex_lock (&dev->lock);
  program = g_hash_table_lookup (dev->programs, key);
  if (program == NULL) {
    LensStatus st = build_program (dev, common, src, options, &program, err);
    if (st != LENS_OK) {
      g_mutex_unlock (&dev->lock);
      g_free (key);
      return st;
    }
    g_hash_table_insert (dev->programs, key, program);
  } else {
    g_free (key);
  }
  kernel = clCreateKernel (program, kernel_name, &rc);
  g_mutex_unlock (&dev->lock);
  if (rc != CL_SUCCESS)
    return lens_error_set (err, LENS_ERROR_CL,
        "clCreateKernel (%s in %s.cl): %s", kernel_name, program_name,
        lens_cl_error_name (rc));
  *out = kernel;
  return LENS_OK;
}

guint
lens_context_programs_built (LensContext * ctx)
{
  guint n;

  g_mutex_lock (&ctx->dev->lock);
  n = g_hash_table_size (ctx->dev->programs);
  g_mutex_unlock (&ctx->dev->lock);
  return n;
}

double
lens_context_build_ms (LensContext * ctx)
{
  gint64 us;

  g_mutex_lock (&ctx->dev->lock);
  us = ctx->dev->build_us;
  g_mutex_unlock (&ctx->dev->lock);
  return us / 1000.0;
}

static char *
kernel_name (cl_kernel kernel)
{
  char name[128] = "";

  clGetKernelInfo (kernel, CL_KERNEL_FUNCTION_NAME, sizeof (name) - 1, name,
      NULL);
  return g_strdup (name);
}

LensStatus
lens_kernel_set_arg (cl_kernel kernel, cl_uint index, size_t size,
    const void *value, LensError *err)
{
  cl_int rc = clSetKernelArg (kernel, index, size, value);

  if (rc != CL_SUCCESS) {
    char *name = kernel_name (kernel);
    lens_error_set (err, LENS_ERROR_CL, "clSetKernelArg (%s, arg %u): %s",
        name, index, lens_cl_error_name (rc));
    g_free (name);
    return LENS_ERROR_CL;
  }
  return LENS_OK;
}

LensStatus
lens_kernel_set_args (cl_kernel kernel, LensError *err, int n, ...)
{
  va_list args;
  LensStatus st = LENS_OK;

  va_start (args, n);
  for (int i = 0; i < n && st == LENS_OK; i++) {
    size_t size = va_arg (args, size_t);
    const void *value = va_arg (args, const void *);
    st = lens_kernel_set_arg (kernel, (cl_uint) i, size, value, err);
  }
  va_end (args);
  return st;
}

LensStatus
lens_context_enqueue (LensContext * ctx, cl_kernel kernel, cl_uint work_dim,
    const size_t *global, const size_t *local, LensError *err)
{
  size_t rounded[3] = { 1, 1, 1 };
  cl_event event = NULL;
  cl_int rc;

  for (cl_uint d = 0; d < work_dim; d++) {
    if (global[d] == 0)
      return LENS_OK;           /* empty tensor: nothing to do */
    rounded[d] = local ? (global[d] + local[d] - 1) / local[d] * local[d] :
        global[d];
  }
  rc = clEnqueueNDRangeKernel (ctx->queue, kernel, work_dim, NULL, rounded,
      local, 0, NULL, ctx->profiling ? &event : NULL);
  if (rc == CL_SUCCESS) {
    ctx->n_enqueues++;
    if (ctx->profiling) {
      ProfiledLaunch launch = { event, ctx->profile_tag };
      g_array_append_val (ctx->launches, launch);
    }
  }
  if (rc != CL_SUCCESS) {
    char *name = kernel_name (kernel);
    lens_error_set (err, LENS_ERROR_CL,
        "clEnqueueNDRangeKernel (%s, global %zu x %zu x %zu): %s", name,
        rounded[0], work_dim > 1 ? rounded[1] : 1,
        work_dim > 2 ? rounded[2] : 1, lens_cl_error_name (rc));
    g_free (name);
    return LENS_ERROR_CL;
  }
  return LENS_OK;
}

LensStatus
lens_context_enqueue_1d (LensContext * ctx, cl_kernel kernel, int64_t n,
    LensError *err)
{
  size_t global = (size_t) n;
  size_t local = MIN (256, MAX (lens_kernel_max_work_group (ctx, kernel), 1));

  return lens_context_enqueue (ctx, kernel, 1, &global, &local, err);
}

LensStatus
lens_context_enqueue_items (LensContext * ctx, cl_kernel kernel, int64_t n,
    LensError *err)
{
  size_t global = (size_t) n, local = 1;

  if (ctx->dev->is_gpu)
    return lens_context_enqueue_1d (ctx, kernel, n, err);
  return lens_context_enqueue (ctx, kernel, 1, &global, &local, err);
}

size_t
lens_kernel_max_work_group (LensContext * ctx, cl_kernel kernel)
{
  size_t size = 1;

  clGetKernelWorkGroupInfo (kernel, ctx->dev->device,
      CL_KERNEL_WORK_GROUP_SIZE, sizeof (size), &size, NULL);
  return size;
}

guint64
lens_context_enqueue_count (LensContext * ctx)
{
  return ctx->n_enqueues;
}

void
lens_context_set_profiling (LensContext * ctx, gboolean on)
{
  if (on && ctx->launches == NULL)
    ctx->launches = g_array_new (FALSE, FALSE, sizeof (ProfiledLaunch));
  if (!on)
    release_launches (ctx);
  ctx->profiling = on;
  ctx->profile_tag = -1;
}

void
lens_context_set_profile_tag (LensContext * ctx, int tag)
{
  ctx->profile_tag = tag;
}

LensStatus
lens_context_profile_collect (LensContext * ctx, int n_tags, double *ms,
    double *idle_ms, int *launches, LensError *err)
{
  LensStatus st = LENS_OK;
  cl_ulong prev_end = 0;
  cl_int rc;

  if (ctx->launches == NULL || ctx->launches->len == 0)
    return LENS_OK;
  rc = clFinish (ctx->queue);
  if (rc != CL_SUCCESS)
    st = lens_error_set (err, LENS_ERROR_CL, "clFinish: %s",
        lens_cl_error_name (rc));
  for (guint i = 0; i < ctx->launches->len && st == LENS_OK; i++) {
    ProfiledLaunch *l = &g_array_index (ctx->launches, ProfiledLaunch, i);
    cl_ulong start = 0, end = 0;

    rc = clGetEventProfilingInfo (l->event, CL_PROFILING_COMMAND_START,
        sizeof (start), &start, NULL);
    if (rc == CL_SUCCESS)
      rc = clGetEventProfilingInfo (l->event, CL_PROFILING_COMMAND_END,
          sizeof (end), &end, NULL);
    if (rc != CL_SUCCESS) {
      st = lens_error_set (err, LENS_ERROR_CL,
          "clGetEventProfilingInfo (launch %u): %s", i,
          lens_cl_error_name (rc));
      break;
    }
    /* the in-order queue ran them one after another: the time between
     * two is the device waiting for its next launch */
    cl_ulong idle = i > 0 && start > prev_end ? start - prev_end : 0;

    prev_end = end;
    if (l->tag < 0 || l->tag >= n_tags)
      continue;
    if (ms != NULL && end > start)
      ms[l->tag] += (end - start) / 1e6;
    if (idle_ms != NULL)
      idle_ms[l->tag] += idle / 1e6;
    if (launches != NULL)
      launches[l->tag]++;
  }
  release_launches (ctx);
  return st;
}
