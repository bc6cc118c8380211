/* motion.c: the motion engine (mode=motion of lensdetect; it needs no
 * model). Owns the per-stream state (device pyramid, background, masks),
 * the kernel launches of kernels/motion.cl with their plain-C references,
 * the host statistics, connected components and the self-test.
 *
 * Per frame:
 *   1. the frame's luma plane is uploaded and converted to float luma;
 *   2. a Gaussian pyramid: each level is the previous one (level 0: the
 *      luma) convolved with the separable 5-tap [1 4 6 4 1]/16 kernel and
 *      halved both ways, so level k has stride 2^(k+1) source pixels and
 *      sensor noise is averaged away before anything is compared;
 *   3. per level, the signed difference against a running background (an
 *      exponential average of the level), downloaded;
 *   4. on the host, per level, the median of that difference (a global
 *      brightness change, e.g. exposure or lighting drift: subtracted, so
 *      it is not motion) and its robust spread (1.4826 * MAD: the noise),
 *      which sets the threshold: max (threshold, noise_factor * sigma);
 *   5. per level, the heatmap |diff - median|, the mask above the
 *      threshold, and the background update: where still it follows the
 *      scene (background_rate); where the level differs from it, frozen
 *      while something changes nearby (so a passing object leaves no
 *      trail), and fading in at foreground_rate where nothing changes (a
 *      ghost of what the first frame held, an object that stopped). A
 *      change is the level against a fast average of its last few frames
 *      (RECENT_RATE), less its median, above half the threshold (or the
 *      noise);
 *   6. the detection level's mask is closed (3x3 dilate, then erode: box
 *      convolutions) to join the fragments of one object, downloaded, and
 *      its 8-connected regions become detections in source pixels, when
 *      they hold a recent change: that drops ghosts and objects that
 *      stopped, which differ from the background but do not move.
 * The detection level is by default the coarsest whose grid is at least
 * DETECT_CELLS wide, so that people in a crowd stay apart at any frame
 * size.
 * The first frame of a stream (and of every new size or format) only
 * initializes the background, so it reports nothing.
 */
#include "lens-private.h"

#include <math.h>
#include <string.h>

#define MOTION_GROUP 64

/* Difference histograms: bins of 1/8 luma level over [-256, 256). */
#define HIST_SCALE 8.0f
#define HIST_BINS 4096
/* Statistics read at most this many cells per level (a regular subsample). */
#define STAT_SAMPLES 65536
/* Update rate of the recent average (about the last 2 frames). */
#define RECENT_RATE 0.5f
/* Automatic detection level: the coarsest at least this many cells wide. */
#define DETECT_CELLS 160

typedef struct
{
  int width, height;
  int stride;                   /* source pixels per cell (nominal) */
  cl_mem cur, bg, recent, diff, change, heat, mask;
  float *diff_host, *change_host;
  /* this frame's statistics */
  float offset, threshold, change_offset, change_threshold;
} MotionLevel;

struct _LensMotion
{
  LensContext *ctx;
  LensMotionOptions opt;
  cl_kernel luma_k, gauss_k, diff_k, update_k, box_k;

  /* stream state, reset on a new size or format */
  gboolean configured;
  int width, height;
  LensPixelFormat format;
  guint64 frames;
  cl_mem src;
  size_t src_bytes;
  cl_mem luma, tmp, mask_tmp;
  MotionLevel levels[LENS_MOTION_MAX_LEVELS];
  int detect_level;
  guint8 *mask_host;
  int *labels;                  /* connected components scratch */
  int *stack;
};

void
lens_motion_options_init (LensMotionOptions * options)
{
  memset (options, 0, sizeof *options);
  options->levels = 3;
  options->detect_level = -1;
  options->threshold = 12.0f;
  options->noise_factor = 5.0f;
  options->background_rate = 0.05f;
  options->foreground_rate = 0.03f;
  options->min_area = 256;
  options->max_detections = 100;
}

static LensStatus
check_options (const LensMotionOptions * o, LensError *err)
{
  if (o->levels < 1 || o->levels > LENS_MOTION_MAX_LEVELS)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: levels %d is outside 1..%d", o->levels,
        LENS_MOTION_MAX_LEVELS);
  if (o->detect_level < -1 || o->detect_level >= o->levels)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: detect-level %d is outside -1..%d", o->detect_level,
        o->levels - 1);
  if (!(o->threshold > 0.0f && o->threshold < 256.0f))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: threshold %g is outside (0, 256)", o->threshold);
  if (!(o->noise_factor >= 0.0f))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: noise factor %g is negative", o->noise_factor);
  if (!(o->background_rate > 0.0f && o->background_rate <= 1.0f))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: background rate %g is outside (0, 1]",
        o->background_rate);
  if (!(o->foreground_rate >= 0.0f && o->foreground_rate <= 1.0f))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: foreground rate %g is outside [0, 1]", o->foreground_rate);
  if (o->min_area < 0 || o->max_detections < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: min area %d or max detections %d is out of range",
        o->min_area, o->max_detections);
  return LENS_OK;
}

/* ---- kernel launches (shared by the engine and the self-test) ------------- */

static LensStatus
enqueue_cells (LensContext * ctx, cl_kernel kernel, size_t cells,
    LensError *err)
{
  size_t local = MIN (MOTION_GROUP, lens_kernel_max_work_group (ctx, kernel));

  return lens_context_enqueue (ctx, kernel, 1, &cells, &local, err);
}

/* Byte offsets of R, G, B and bytes per pixel of plane 0 of @format. */
static void
luma_layout (LensPixelFormat format, int *bpp, int *r, int *g, int *b)
{
  *r = *g = *b = 0;
  switch (format) {
    case LENS_PIXEL_RGB:
    case LENS_PIXEL_RGBX:
      *bpp = format == LENS_PIXEL_RGB ? 3 : 4;
      *r = 0;
      *g = 1;
      *b = 2;
      break;
    case LENS_PIXEL_BGR:
    case LENS_PIXEL_BGRX:
      *bpp = format == LENS_PIXEL_BGR ? 3 : 4;
      *r = 2;
      *g = 1;
      *b = 0;
      break;
    case LENS_PIXEL_XRGB:
      *bpp = 4;
      *r = 1;
      *g = 2;
      *b = 3;
      break;
    case LENS_PIXEL_XBGR:
      *bpp = 4;
      *r = 3;
      *g = 2;
      *b = 1;
      break;
    case LENS_PIXEL_I420:
    case LENS_PIXEL_NV12:
    default:
      /* the Y plane is the luma */
      *bpp = 1;
      break;
  }
}

static LensStatus
enqueue_luma (LensContext * ctx, cl_kernel k, cl_mem src, cl_mem dst,
    int width, int height, int stride, int bpp, int r, int g, int b,
    LensError *err)
{
  LensStatus st = lens_kernel_set_args (k, err, 9, LENS_ARG (src),
      LENS_ARG (dst), LENS_ARG (width), LENS_ARG (height), LENS_ARG (stride),
      LENS_ARG (bpp), LENS_ARG (r), LENS_ARG (g), LENS_ARG (b));

  return st != LENS_OK ? st : enqueue_cells (ctx, k, (size_t) width * height,
      err);
}

static LensStatus
enqueue_gauss (LensContext * ctx, cl_kernel k, cl_mem src, cl_mem dst,
    int src_w, int src_h, int dst_w, int dst_h, int horizontal, int step,
    LensError *err)
{
  LensStatus st = lens_kernel_set_args (k, err, 8, LENS_ARG (src),
      LENS_ARG (dst), LENS_ARG (src_w), LENS_ARG (src_h), LENS_ARG (dst_w),
      LENS_ARG (dst_h), LENS_ARG (horizontal), LENS_ARG (step));

  return st != LENS_OK ? st : enqueue_cells (ctx, k, (size_t) dst_w * dst_h,
      err);
}

static LensStatus
enqueue_diff (LensContext * ctx, cl_kernel k, cl_mem cur, cl_mem bg,
    cl_mem recent, cl_mem diff, cl_mem change, int n, int init,
    float rate_recent, LensError *err)
{
  LensStatus st = lens_kernel_set_args (k, err, 8, LENS_ARG (cur),
      LENS_ARG (bg), LENS_ARG (recent), LENS_ARG (diff), LENS_ARG (change),
      LENS_ARG (n), LENS_ARG (init), LENS_ARG (rate_recent));

  return st != LENS_OK ? st : enqueue_cells (ctx, k, (size_t) n, err);
}

static LensStatus
enqueue_update (LensContext * ctx, cl_kernel k, cl_mem cur, cl_mem bg,
    cl_mem diff, cl_mem change, cl_mem heat, cl_mem mask, int width,
    int height, float offset, float threshold, float change_offset,
    float change_threshold, float rate_bg, float rate_fg, LensError *err)
{
  LensStatus st = lens_kernel_set_args (k, err, 14, LENS_ARG (cur),
      LENS_ARG (bg), LENS_ARG (diff), LENS_ARG (change), LENS_ARG (heat),
      LENS_ARG (mask), LENS_ARG (width), LENS_ARG (height),
      LENS_ARG (offset), LENS_ARG (threshold), LENS_ARG (change_offset),
      LENS_ARG (change_threshold), LENS_ARG (rate_bg), LENS_ARG (rate_fg));

  return st != LENS_OK ? st : enqueue_cells (ctx, k,
      (size_t) width * height, err);
}

static LensStatus
enqueue_box3 (LensContext * ctx, cl_kernel k, cl_mem src, cl_mem dst,
    int width, int height, int need, LensError *err)
{
  LensStatus st = lens_kernel_set_args (k, err, 5, LENS_ARG (src),
      LENS_ARG (dst), LENS_ARG (width), LENS_ARG (height), LENS_ARG (need));

  return st != LENS_OK ? st : enqueue_cells (ctx, k, (size_t) width * height,
      err);
}

/* ---- plain-C references: the kernels' arithmetic, in the same order ------- */

static void
ref_luma (const guint8 * src, float *dst, int width, int height, int stride,
    int bpp, int r, int g, int b)
{
  for (int i = 0; i < width * height; i++) {
    const guint8 *p = src + (size_t) (i / width) * stride + (i % width) * bpp;

    if (bpp == 1)
      dst[i] = (float) p[0];
    else
      dst[i] = 0.299f * (float) p[r] + 0.587f * (float) p[g]
          + 0.114f * (float) p[b];
  }
}

static void
ref_gauss (const float *src, float *dst, int src_w, int src_h, int dst_w,
    int dst_h, int horizontal, int step)
{
  static const float w[5] = { 0.0625f, 0.25f, 0.375f, 0.25f, 0.0625f };

  for (int i = 0; i < dst_w * dst_h; i++) {
    int x = i % dst_w, y = i / dst_w;
    int cx = horizontal ? x * step : x;
    int cy = horizontal ? y : y * step;
    float sum = 0.0f;

    for (int k = -2; k <= 2; k++) {
      int sx = horizontal ? CLAMP (cx + k, 0, src_w - 1) : MIN (cx,
          src_w - 1);
      int sy = horizontal ? MIN (cy, src_h - 1) : CLAMP (cy + k, 0,
          src_h - 1);

      sum += w[k + 2] * src[sy * src_w + sx];
    }
    dst[i] = sum;
  }
}

static void
ref_diff (const float *cur, float *bg, float *recent, float *diff,
    float *change, int n, int init, float rate_recent)
{
  for (int i = 0; i < n; i++) {
    float c = cur[i], r;

    if (init) {
      bg[i] = c;
      recent[i] = c;
    }
    r = recent[i];
    diff[i] = c - bg[i];
    change[i] = c - r;
    recent[i] = r + rate_recent * (c - r);
  }
}

static void
ref_update (const float *cur, float *bg, const float *diff,
    const float *change, float *heat, guint8 * mask, int width, int height,
    float offset, float threshold, float change_offset,
    float change_threshold, float rate_bg, float rate_fg)
{
  for (int i = 0; i < width * height; i++) {
    int x = i % width, y = i / width;
    float a = fabsf (diff[i] - offset);
    int moving = a > threshold;
    float b = bg[i], rate = rate_bg, c = 0.0f;

    heat[i] = a;
    mask[i] = (guint8) moving;
    if (moving) {
      for (int dy = -1; dy <= 1; dy++) {
        int sy = CLAMP (y + dy, 0, height - 1);

        for (int dx = -1; dx <= 1; dx++)
          c = fmaxf (c, fabsf (change[sy * width + CLAMP (x + dx, 0,
                          width - 1)] - change_offset));
      }
      rate = c > change_threshold ? 0.0f : rate_fg;
    }
    bg[i] = b + rate * (cur[i] - b);
  }
}

static void
ref_box3 (const guint8 * src, guint8 * dst, int width, int height, int need)
{
  for (int i = 0; i < width * height; i++) {
    int x = i % width, y = i / width, count = 0;

    for (int dy = -1; dy <= 1; dy++) {
      int sy = CLAMP (y + dy, 0, height - 1);

      for (int dx = -1; dx <= 1; dx++)
        count += src[sy * width + CLAMP (x + dx, 0, width - 1)];
    }
    dst[i] = (guint8) (count >= need);
  }
}

/* ---- engine --------------------------------------------------------------- */

static LensStatus
create_kernels (LensContext * ctx, cl_kernel * luma, cl_kernel * gauss,
    cl_kernel * diff, cl_kernel * update, cl_kernel * box, LensError *err)
{
  LensStatus st;

  if ((st = lens_context_create_kernel (ctx, "motion", "",
              "lens_motion_luma", luma, err)) != LENS_OK
      || (st = lens_context_create_kernel (ctx, "motion", "",
              "lens_motion_gauss5", gauss, err)) != LENS_OK
      || (st = lens_context_create_kernel (ctx, "motion", "",
              "lens_motion_diff", diff, err)) != LENS_OK
      || (st = lens_context_create_kernel (ctx, "motion", "",
              "lens_motion_update", update, err)) != LENS_OK
      || (st = lens_context_create_kernel (ctx, "motion", "",
              "lens_motion_box3", box, err)) != LENS_OK)
    return st;
  return LENS_OK;
}

static void
release_kernels (cl_kernel * ks, int n)
{
  for (int i = 0; i < n; i++)
    if (ks[i] != NULL)
      clReleaseKernel (ks[i]);
}

static void
release_mem (cl_mem * m)
{
  if (*m != NULL)
    clReleaseMemObject (*m);
  *m = NULL;
}

/* Drops the stream state (buffers OpenCL keeps alive until enqueued
 * commands that use them end). */
static void
unconfigure (LensMotion * m)
{
  release_mem (&m->src);
  m->src_bytes = 0;
  release_mem (&m->luma);
  release_mem (&m->tmp);
  release_mem (&m->mask_tmp);
  for (int k = 0; k < LENS_MOTION_MAX_LEVELS; k++) {
    MotionLevel *l = &m->levels[k];

    release_mem (&l->cur);
    release_mem (&l->bg);
    release_mem (&l->recent);
    release_mem (&l->diff);
    release_mem (&l->change);
    release_mem (&l->heat);
    release_mem (&l->mask);
    g_clear_pointer (&l->diff_host, g_free);
    g_clear_pointer (&l->change_host, g_free);
  }
  g_clear_pointer (&m->mask_host, g_free);
  g_clear_pointer (&m->labels, g_free);
  g_clear_pointer (&m->stack, g_free);
  m->configured = FALSE;
}

static LensStatus
create_buffer (LensMotion * m, size_t bytes, cl_mem_flags flags, cl_mem * out,
    const char *what, LensError *err)
{
  cl_int rc;

  *out = clCreateBuffer (lens_context_get_cl_context (m->ctx), flags,
      MAX (bytes, 1), NULL, &rc);
  if (rc != CL_SUCCESS) {
    *out = NULL;
    return lens_error_set (err, LENS_ERROR_CL,
        "motion: clCreateBuffer (%zu bytes, %s for %dx%d): %s", bytes, what,
        m->width, m->height, lens_cl_error_name (rc));
  }
  return LENS_OK;
}

/* The option's, or the coarsest level at least DETECT_CELLS wide (the
 * finest when none is). */
static int
detect_level (const LensMotion * m)
{
  int k;

  if (m->opt.detect_level >= 0)
    return m->opt.detect_level;
  for (k = m->opt.levels - 1; k > 0; k--)
    if (m->levels[k].width >= DETECT_CELLS)
      break;
  return k;
}

static LensStatus
configure (LensMotion * m, const LensFrame * frame, LensError *err)
{
  int w = frame->width, h = frame->height;
  size_t cells;
  LensStatus st;
  MotionLevel *d;

  unconfigure (m);
  m->width = w;
  m->height = h;
  m->format = frame->format;
  m->frames = 0;
  if ((st = create_buffer (m, (size_t) w * h * sizeof (float),
              CL_MEM_READ_WRITE, &m->luma, "luma", err)) != LENS_OK
      /* the horizontal pass of level 0 is the largest: (w+1)/2 x h */
      || (st = create_buffer (m, (size_t) ((w + 1) / 2) * h * sizeof (float),
              CL_MEM_READ_WRITE, &m->tmp, "pyramid pass", err)) != LENS_OK)
    return st;
  for (int k = 0; k < m->opt.levels; k++) {
    MotionLevel *l = &m->levels[k];
    int pw = k == 0 ? w : m->levels[k - 1].width;
    int ph = k == 0 ? h : m->levels[k - 1].height;

    l->width = (pw + 1) / 2;
    l->height = (ph + 1) / 2;
    l->stride = 2 << k;
    cells = (size_t) l->width * l->height;
    if ((st = create_buffer (m, cells * sizeof (float), CL_MEM_READ_WRITE,
                &l->cur, "pyramid level", err)) != LENS_OK
        || (st = create_buffer (m, cells * sizeof (float), CL_MEM_READ_WRITE,
                &l->bg, "background", err)) != LENS_OK
        || (st = create_buffer (m, cells * sizeof (float), CL_MEM_READ_WRITE,
                &l->recent, "recent average", err)) != LENS_OK
        || (st = create_buffer (m, cells * sizeof (float), CL_MEM_READ_WRITE,
                &l->diff, "difference", err)) != LENS_OK
        || (st = create_buffer (m, cells * sizeof (float), CL_MEM_READ_WRITE,
                &l->change, "recent change", err)) != LENS_OK
        || (st = create_buffer (m, cells * sizeof (float), CL_MEM_READ_WRITE,
                &l->heat, "heatmap", err)) != LENS_OK
        || (st = create_buffer (m, cells, CL_MEM_READ_WRITE, &l->mask,
                "mask", err)) != LENS_OK)
      return st;
    l->diff_host = g_new (float, cells);
    l->change_host = g_new (float, cells);
  }
  m->detect_level = detect_level (m);
  d = &m->levels[m->detect_level];
  cells = (size_t) d->width * d->height;
  if ((st = create_buffer (m, cells, CL_MEM_READ_WRITE, &m->mask_tmp,
              "mask pass", err)) != LENS_OK)
    return st;
  m->mask_host = g_new (guint8, cells);
  m->labels = g_new (int, cells);
  m->stack = g_new (int, cells);
  m->configured = TRUE;
  return LENS_OK;
}

LensStatus
lens_motion_new (LensContext * ctx, const LensMotionOptions * options,
    LensMotion ** out, LensError *err)
{
  LensMotionOptions defaults;
  LensMotion *m;
  LensStatus st;

  *out = NULL;
  if (options == NULL) {
    lens_motion_options_init (&defaults);
    options = &defaults;
  }
  if ((st = check_options (options, err)) != LENS_OK)
    return st;
  m = g_new0 (LensMotion, 1);
  m->ctx = ctx;
  m->opt = *options;
  st = create_kernels (ctx, &m->luma_k, &m->gauss_k, &m->diff_k,
      &m->update_k, &m->box_k, err);
  if (st != LENS_OK) {
    lens_motion_free (m);
    return st;
  }
  *out = m;
  return LENS_OK;
}

void
lens_motion_free (LensMotion * m)
{
  cl_kernel ks[5];

  if (m == NULL)
    return;
  unconfigure (m);
  ks[0] = m->luma_k;
  ks[1] = m->gauss_k;
  ks[2] = m->diff_k;
  ks[3] = m->update_k;
  ks[4] = m->box_k;
  release_kernels (ks, 5);
  g_free (m);
}

void
lens_motion_reset (LensMotion * m)
{
  m->frames = 0;
}

const LensMotionOptions *
lens_motion_options (const LensMotion * m)
{
  return &m->opt;
}

static const char *
format_name (LensPixelFormat f)
{
  static const char *names[LENS_PIXEL_N_FORMATS] = { "RGB", "BGR", "RGBx",
    "BGRx", "I420", "NV12", "xRGB", "xBGR"
  };

  return (int) f >= 0 && f < LENS_PIXEL_N_FORMATS ? names[f] : "unknown";
}

static LensStatus
check_frame (const LensFrame * f, LensError *err)
{
  int bpp, r, g, b;

  if (f == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID, "motion: no frame");
  if ((int) f->format < 0 || f->format >= LENS_PIXEL_N_FORMATS)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: unknown pixel format %d", (int) f->format);
  if (f->width < 1 || f->height < 1 || f->width > 16384
      || f->height > 16384)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: frame size %dx%d is outside 1..16384", f->width,
        f->height);
  luma_layout (f->format, &bpp, &r, &g, &b);
  if (f->planes[0] == NULL || f->strides[0] < f->width * bpp)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: %dx%d %s frame: plane 0 is missing or its stride %d is "
        "under %d bytes", f->width, f->height, format_name (f->format),
        f->strides[0], f->width * bpp);
  /* the kernels address the plane with int offsets */
  if ((gint64) f->strides[0] * f->height > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "motion: %dx%d %s frame with a stride of %d bytes is too large",
        f->width, f->height, format_name (f->format), f->strides[0]);
  return LENS_OK;
}

/* Median and robust sigma (1.4826 * median absolute deviation) of a
 * level's difference, from a regular subsample, via histograms. */
static void
level_statistics (const float *d, size_t n, float *median, float *sigma)
{
  guint32 *hist = g_new0 (guint32, HIST_BINS);
  size_t step = MAX (1, n / STAT_SAMPLES), count = 0, acc = 0;
  int bin;
  float med, mad;

  for (size_t i = 0; i < n; i += step, count++) {
    bin = (int) floorf (d[i] * HIST_SCALE) + HIST_BINS / 2;
    hist[CLAMP (bin, 0, HIST_BINS - 1)]++;
  }
  for (bin = 0; bin < HIST_BINS - 1; bin++) {
    acc += hist[bin];
    if (acc * 2 >= count)
      break;
  }
  med = ((float) (bin - HIST_BINS / 2) + 0.5f) / HIST_SCALE;
  memset (hist, 0, HIST_BINS * sizeof *hist);
  for (size_t i = 0; i < n; i += step) {
    bin = (int) floorf (fabsf (d[i] - med) * HIST_SCALE);
    hist[MIN (bin, HIST_BINS - 1)]++;
  }
  acc = 0;
  for (bin = 0; bin < HIST_BINS - 1; bin++) {
    acc += hist[bin];
    if (acc * 2 >= count)
      break;
  }
  mad = ((float) bin + 0.5f) / HIST_SCALE;
  *median = med;
  *sigma = 1.4826f * mad;
  g_free (hist);
}

/* 8-connected regions of the mask (iterative flood fill) that hold a
 * recent change, as detections in source pixels (at least min_area; score:
 * the mean strength of their cells), strongest first. */
static void
find_regions (LensMotion * m, const MotionLevel * l, const float *score,
    LensDetectorResult * result)
{
  int w = l->width, h = l->height, s = l->stride;
  GArray *dets = g_array_new (FALSE, FALSE, sizeof (LensDetection));
  int n_labels = 0;

  memset (m->labels, 0, sizeof (int) * w * h);
  for (int seed = 0; seed < w * h; seed++) {
    int top = 0, x0 = w, y0 = h, x1 = -1, y1 = -1;
    gboolean changed = FALSE;
    float sum = 0.0f;
    int cells = 0;
    LensDetection det;

    if (!m->mask_host[seed] || m->labels[seed] != 0)
      continue;
    n_labels++;
    m->labels[seed] = n_labels;
    m->stack[top++] = seed;
    while (top > 0) {
      int i = m->stack[--top], x = i % w, y = i / w;

      x0 = MIN (x0, x);
      x1 = MAX (x1, x);
      y0 = MIN (y0, y);
      y1 = MAX (y1, y);
      sum += score[i];
      cells++;
      if (fabsf (l->change_host[i] - l->change_offset)
          > l->change_threshold)
        changed = TRUE;
      for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
          int nx = x + dx, ny = y + dy, j;

          if (nx < 0 || ny < 0 || nx >= w || ny >= h)
            continue;
          j = ny * w + nx;
          if (m->mask_host[j] && m->labels[j] == 0) {
            m->labels[j] = n_labels;
            m->stack[top++] = j;
          }
        }
    }
    det.class_id = 0;
    det.score = sum / cells;
    det.x = (float) (x0 * s);
    det.y = (float) (y0 * s);
    det.w = (float) (MIN ((x1 + 1) * s, m->width) - x0 * s);
    det.h = (float) (MIN ((y1 + 1) * s, m->height) - y0 * s);
    if (changed && det.w * det.h >= (float) m->opt.min_area)
      g_array_append_val (dets, det);
  }
  /* strongest first; ties keep scan order */
  for (guint i = 1; i < dets->len; i++)
    for (guint j = i; j > 0 && g_array_index (dets, LensDetection, j).score
        > g_array_index (dets, LensDetection, j - 1).score; j--) {
      LensDetection t = g_array_index (dets, LensDetection, j);

      g_array_index (dets, LensDetection, j) =
          g_array_index (dets, LensDetection, j - 1);
      g_array_index (dets, LensDetection, j - 1) = t;
    }
  result->n_detections = MIN ((int) dets->len, m->opt.max_detections);
  result->detections = (LensDetection *) g_array_free (dets, FALSE);
}

static LensStatus
run_frame (LensMotion * m, const LensFrame * frame,
    LensDetectorResult * result, LensError *err)
{
  cl_command_queue queue = lens_context_get_queue (m->ctx);
  int bpp, r, g, b, init = m->frames == 0;
  int dl = m->detect_level;
  MotionLevel *d = &m->levels[dl];
  size_t bytes;
  float rate_bg, rate_fg, sigma;
  LensStatus st;

  luma_layout (frame->format, &bpp, &r, &g, &b);
  bytes = (size_t) frame->strides[0] * (frame->height - 1)
      + (size_t) frame->width * bpp;
  if (m->src_bytes < bytes) {
    release_mem (&m->src);
    m->src_bytes = 0;
    if ((st = create_buffer (m, bytes, CL_MEM_READ_ONLY, &m->src, "frame",
                err)) != LENS_OK)
      return st;
    m->src_bytes = bytes;
  }
  /* Not blocking: the frame's memory is read before the blocking
   * downloads below return (one in-order queue), and failures on the way
   * wait for the queue (see lens_motion_run). */
  LENS_CL_CHECK (clEnqueueWriteBuffer (queue, m->src, CL_FALSE, 0, bytes,
          frame->planes[0], 0, NULL, NULL), err);
  if ((st = enqueue_luma (m->ctx, m->luma_k, m->src, m->luma, m->width,
              m->height, frame->strides[0], bpp, r, g, b, err)) != LENS_OK)
    return st;

  /* the pyramid: blur and halve x into tmp, then blur and halve y */
  for (int k = 0; k < m->opt.levels; k++) {
    MotionLevel *l = &m->levels[k];
    cl_mem src = k == 0 ? m->luma : m->levels[k - 1].cur;
    int sw = k == 0 ? m->width : m->levels[k - 1].width;
    int sh = k == 0 ? m->height : m->levels[k - 1].height;

    if ((st = enqueue_gauss (m->ctx, m->gauss_k, src, m->tmp, sw, sh,
                l->width, sh, 1, 2, err)) != LENS_OK
        || (st = enqueue_gauss (m->ctx, m->gauss_k, m->tmp, l->cur,
                l->width, sh, l->width, l->height, 0, 2, err)) != LENS_OK
        || (st = enqueue_diff (m->ctx, m->diff_k, l->cur, l->bg, l->recent,
                l->diff, l->change, l->width * l->height, init, RECENT_RATE,
                err)) != LENS_OK)
      return st;
  }
  for (int k = 0; k < m->opt.levels; k++) {
    MotionLevel *l = &m->levels[k];
    size_t level_bytes = (size_t) l->width * l->height * sizeof (float);

    LENS_CL_CHECK (clEnqueueReadBuffer (queue, l->diff, CL_FALSE, 0,
            level_bytes, l->diff_host, 0, NULL, NULL), err);
    LENS_CL_CHECK (clEnqueueReadBuffer (queue, l->change,
            k == m->opt.levels - 1, 0, level_bytes, l->change_host, 0, NULL,
            NULL), err);
  }

  rate_bg = m->opt.background_rate;
  rate_fg = m->opt.foreground_rate;
  for (int k = 0; k < m->opt.levels; k++) {
    MotionLevel *l = &m->levels[k];
    size_t n = (size_t) l->width * l->height;

    level_statistics (l->diff_host, n, &l->offset, &sigma);
    l->threshold = MAX (m->opt.threshold, m->opt.noise_factor * sigma);
    level_statistics (l->change_host, n, &l->change_offset, &sigma);
    l->change_threshold = MAX (0.5f * m->opt.threshold,
        m->opt.noise_factor * sigma);
    if ((st = enqueue_update (m->ctx, m->update_k, l->cur, l->bg, l->diff,
                l->change, l->heat, l->mask, l->width, l->height, l->offset,
                l->threshold, l->change_offset, l->change_threshold, rate_bg,
                rate_fg, err)) != LENS_OK)
      return st;
  }
  /* closing: dilate then erode, back into the level's mask */
  if ((st = enqueue_box3 (m->ctx, m->box_k, d->mask, m->mask_tmp, d->width,
              d->height, 1, err)) != LENS_OK
      || (st = enqueue_box3 (m->ctx, m->box_k, m->mask_tmp, d->mask,
              d->width, d->height, 9, err)) != LENS_OK)
    return st;

  result->n_feature_maps = m->opt.levels;
  result->feature_maps = g_new0 (LensFeatureMap, m->opt.levels);
  for (int k = 0; k < m->opt.levels; k++) {
    MotionLevel *l = &m->levels[k];
    LensFeatureMap *fm = &result->feature_maps[k];
    size_t n = (size_t) l->width * l->height;

    fm->tensor_name = g_strdup_printf ("motion-%d", l->stride);
    fm->ndim = 2;
    fm->shape[0] = l->height;
    fm->shape[1] = l->width;
    fm->stride = l->stride;
    fm->width = l->width;
    fm->height = l->height;
    fm->activation = g_new (float, n);
    fm->score = g_new (float, n);
    LENS_CL_CHECK (clEnqueueReadBuffer (queue, l->heat, CL_FALSE, 0,
            n * sizeof (float), fm->activation, 0, NULL, NULL), err);
  }
  LENS_CL_CHECK (clEnqueueReadBuffer (queue, d->mask, CL_TRUE, 0,
          (size_t) d->width * d->height, m->mask_host, 0, NULL, NULL), err);

  /* motion strength in 0..1: a quarter at the threshold, full at 4x */
  for (int k = 0; k < m->opt.levels; k++) {
    LensFeatureMap *fm = &result->feature_maps[k];
    float inv = 1.0f / (4.0f * m->levels[k].threshold);

    for (int i = 0; i < fm->width * fm->height; i++)
      fm->score[i] = MIN (1.0f, fm->activation[i] * inv);
  }
  if (!init)
    find_regions (m, d, result->feature_maps[dl].score, result);
  m->frames++;
  return LENS_OK;
}

LensStatus
lens_motion_run (LensMotion * m, const LensFrame * frame,
    LensDetectorResult * result, LensError *err)
{
  gint64 start = g_get_monotonic_time ();
  LensStatus st;

  memset (result, 0, sizeof *result);
  if ((st = check_frame (frame, err)) != LENS_OK)
    return st;
  if (!m->configured || m->width != frame->width
      || m->height != frame->height || m->format != frame->format) {
    if ((st = configure (m, frame, err)) != LENS_OK) {
      unconfigure (m);
      return st;
    }
  }
  result->source_width = frame->width;
  result->source_height = frame->height;
  result->letterbox.scale_x = 1.0f;
  result->letterbox.scale_y = 1.0f;
  st = run_frame (m, frame, result, err);
  if (st != LENS_OK) {
    /* the queue may still read the caller's frame: let it finish */
    clFinish (lens_context_get_queue (m->ctx));
    lens_detector_result_clear (result);
    m->frames = 0;
    return st;
  }
  result->inference_ms = (g_get_monotonic_time () - start) / 1000.0;
  return LENS_OK;
}

/* ---- self-test: every motion kernel against its reference ----------------- */

typedef enum
{
  KERNEL_LUMA,
  KERNEL_GAUSS,
  KERNEL_DIFF,
  KERNEL_UPDATE,
  KERNEL_BOX,
  N_KERNELS
} KernelId;

static const char *const kernel_names[N_KERNELS] = {
  "lens_motion_luma", "lens_motion_gauss5", "lens_motion_diff",
  "lens_motion_update", "lens_motion_box3"
};

static LensStatus
upload_new (LensContext * ctx, const void *data, size_t bytes, cl_mem * out,
    LensError *err)
{
  cl_int rc;

  *out = clCreateBuffer (lens_context_get_cl_context (ctx),
      CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, MAX (bytes, 1),
      (void *) data, &rc);
  if (rc != CL_SUCCESS) {
    *out = NULL;
    return lens_error_set (err, LENS_ERROR_CL,
        "motion self-test: clCreateBuffer (%zu bytes): %s", bytes,
        lens_cl_error_name (rc));
  }
  return LENS_OK;
}

static LensStatus
download (LensContext * ctx, cl_mem buf, void *data, size_t bytes,
    LensError *err)
{
  LENS_CL_CHECK (clEnqueueReadBuffer (lens_context_get_queue (ctx), buf,
          CL_TRUE, 0, bytes, data, 0, NULL, NULL), err);
  return LENS_OK;
}

static float *
random_floats (GRand * rand, size_t n, double lo, double hi)
{
  float *v = g_new (float, MAX (n, 1));

  for (size_t i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (rand, lo, hi);
  return v;
}

static guint8 *
random_bytes (GRand * rand, size_t n, int max)
{
  guint8 *v = g_new (guint8, MAX (n, 1));

  for (size_t i = 0; i < n; i++)
    v[i] = (guint8) g_rand_int_range (rand, 0, max + 1);
  return v;
}

/* Largest |a - b| of two float arrays, and whether all are within tol. */
static gboolean
compare_floats (const float *a, const float *b, size_t n, double tol,
    double *max_diff, size_t *bad)
{
  gboolean ok = TRUE;

  for (size_t i = 0; i < n; i++) {
    double diff = fabs ((double) a[i] - b[i]);

    if (diff > *max_diff)
      *max_diff = diff;
    if (ok && !(diff <= tol)) {
      ok = FALSE;
      *bad = i;
    }
  }
  return ok;
}

static gboolean
compare_bytes (const guint8 * a, const guint8 * b, size_t n, size_t *bad)
{
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) {
      *bad = i;
      return FALSE;
    }
  return TRUE;
}

/* One random case of kernel @id at size @w x @h; *failure gets a message
 * when the kernel and the reference disagree. */
static LensStatus
selftest_case (LensContext * ctx, cl_kernel k, KernelId id, int w, int h,
    GRand * rand, double *max_diff, char **failure, LensError *err)
{
  size_t n = (size_t) w * h, bad = 0;
  gboolean ok = TRUE;
  LensStatus st = LENS_OK;
  cl_mem bufs[5] = { NULL, NULL, NULL, NULL, NULL };
  char *what = NULL;
  /* float results are the same operations in the same order; only
   * contraction into fused multiply-adds may differ */
  const double tol = 1e-4;

  switch (id) {
    case KERNEL_LUMA:{
      static const int bpps[3] = { 1, 3, 4 };
      int bpp = bpps[g_rand_int_range (rand, 0, 3)];
      int stride = w * bpp + g_rand_int_range (rand, 0, 6);
      /* 4 bytes: the ignored byte last (RGBx) or first (xRGB) */
      int base = bpp == 4 ? g_rand_int_range (rand, 0, 2) : 0;
      int o = bpp > 1 ? g_rand_int_range (rand, 0, 3) : 0;
      int r = bpp > 1 ? base + o : 0;
      int g = bpp > 1 ? base + (o + 1) % 3 : 0;
      int b = bpp > 1 ? base + (o + 2) % 3 : 0;
      size_t bytes = (size_t) stride * (h - 1) + (size_t) w * bpp;
      guint8 *src = random_bytes (rand, bytes, 255);
      float *dev = g_new (float, n), *ref = g_new (float, n);

      if ((st = upload_new (ctx, src, bytes, &bufs[0], err)) == LENS_OK
          && (st = upload_new (ctx, dev, n * sizeof (float), &bufs[1],
                  err)) == LENS_OK
          && (st = enqueue_luma (ctx, k, bufs[0], bufs[1], w, h, stride, bpp,
                  r, g, b, err)) == LENS_OK
          && (st = download (ctx, bufs[1], dev, n * sizeof (float),
                  err)) == LENS_OK) {
        ref_luma (src, ref, w, h, stride, bpp, r, g, b);
        ok = compare_floats (dev, ref, n, 1e-3, max_diff, &bad);
        what = g_strdup_printf ("bpp %d stride %d", bpp, stride);
      }
      g_free (src);
      g_free (dev);
      g_free (ref);
      break;
    }
    case KERNEL_GAUSS:{
      int horizontal = g_rand_int_range (rand, 0, 2);
      int step = g_rand_int_range (rand, 1, 3);
      int dw = horizontal ? (w + step - 1) / step : w;
      int dh = horizontal ? h : (h + step - 1) / step;
      size_t dn = (size_t) dw * dh;
      float *src = random_floats (rand, n, 0.0, 255.0);
      float *dev = g_new (float, dn), *ref = g_new (float, dn);

      if ((st = upload_new (ctx, src, n * sizeof (float), &bufs[0],
                  err)) == LENS_OK
          && (st = upload_new (ctx, dev, dn * sizeof (float), &bufs[1],
                  err)) == LENS_OK
          && (st = enqueue_gauss (ctx, k, bufs[0], bufs[1], w, h, dw, dh,
                  horizontal, step, err)) == LENS_OK
          && (st = download (ctx, bufs[1], dev, dn * sizeof (float),
                  err)) == LENS_OK) {
        ref_gauss (src, ref, w, h, dw, dh, horizontal, step);
        ok = compare_floats (dev, ref, dn, tol * 255, max_diff, &bad);
        what = g_strdup_printf ("%s step %d", horizontal ? "horizontal" :
            "vertical", step);
      }
      g_free (src);
      g_free (dev);
      g_free (ref);
      break;
    }
    case KERNEL_DIFF:{
      int init = g_rand_int_range (rand, 0, 2);
      float rate = (float) g_rand_double_range (rand, 0.05, 0.5);
      float *cur = random_floats (rand, n, 0.0, 255.0);
      float *bg = random_floats (rand, n, 0.0, 255.0);
      float *recent = random_floats (rand, n, 0.0, 255.0);
      float *dev_bg = g_new (float, n), *dev_recent = g_new (float, n);
      float *dev_d = g_new (float, n), *dev_c = g_new (float, n);
      float *ref_d = g_new (float, n), *ref_c = g_new (float, n);

      if ((st = upload_new (ctx, cur, n * sizeof (float), &bufs[0],
                  err)) == LENS_OK
          && (st = upload_new (ctx, bg, n * sizeof (float), &bufs[1],
                  err)) == LENS_OK
          && (st = upload_new (ctx, recent, n * sizeof (float), &bufs[2],
                  err)) == LENS_OK
          && (st = upload_new (ctx, dev_d, n * sizeof (float), &bufs[3],
                  err)) == LENS_OK
          && (st = upload_new (ctx, dev_c, n * sizeof (float), &bufs[4],
                  err)) == LENS_OK
          && (st = enqueue_diff (ctx, k, bufs[0], bufs[1], bufs[2], bufs[3],
                  bufs[4], (int) n, init, rate, err)) == LENS_OK
          && (st = download (ctx, bufs[1], dev_bg, n * sizeof (float),
                  err)) == LENS_OK
          && (st = download (ctx, bufs[2], dev_recent, n * sizeof (float),
                  err)) == LENS_OK
          && (st = download (ctx, bufs[3], dev_d, n * sizeof (float),
                  err)) == LENS_OK
          && (st = download (ctx, bufs[4], dev_c, n * sizeof (float),
                  err)) == LENS_OK) {
        ref_diff (cur, bg, recent, ref_d, ref_c, (int) n, init, rate);
        ok = compare_floats (dev_bg, bg, n, 0.0, max_diff, &bad)
            && compare_floats (dev_d, ref_d, n, 0.0, max_diff, &bad)
            && compare_floats (dev_c, ref_c, n, 0.0, max_diff, &bad)
            && compare_floats (dev_recent, recent, n, tol * 255, max_diff,
            &bad);
        what = g_strdup_printf ("init %d rate %g", init, rate);
      }
      g_free (cur);
      g_free (bg);
      g_free (recent);
      g_free (dev_bg);
      g_free (dev_recent);
      g_free (dev_d);
      g_free (dev_c);
      g_free (ref_d);
      g_free (ref_c);
      break;
    }
    case KERNEL_UPDATE:{
      float *cur = random_floats (rand, n, 0.0, 255.0);
      float *bg = random_floats (rand, n, 0.0, 255.0);
      float *diff = random_floats (rand, n, -64.0, 64.0);
      float *change = random_floats (rand, n, -32.0, 32.0);
      float offset = (float) g_rand_double_range (rand, -8.0, 8.0);
      float thr = (float) g_rand_double_range (rand, 4.0, 40.0);
      float coffset = (float) g_rand_double_range (rand, -4.0, 4.0);
      float cthr = (float) g_rand_double_range (rand, 10.0, 40.0);
      cl_mem change_buf = NULL;
      float rate_bg = (float) g_rand_double_range (rand, 0.01, 0.5);
      float rate_fg = (float) g_rand_double_range (rand, 0.001, 0.05);
      float *dev_bg = g_new (float, n), *dev_heat = g_new (float, n);
      float *ref_heat = g_new (float, n);
      guint8 *dev_mask = g_new (guint8, n), *ref_mask = g_new (guint8, n);

      if ((st = upload_new (ctx, cur, n * sizeof (float), &bufs[0],
                  err)) == LENS_OK
          && (st = upload_new (ctx, bg, n * sizeof (float), &bufs[1],
                  err)) == LENS_OK
          && (st = upload_new (ctx, diff, n * sizeof (float), &bufs[2],
                  err)) == LENS_OK
          && (st = upload_new (ctx, dev_heat, n * sizeof (float), &bufs[3],
                  err)) == LENS_OK
          && (st = upload_new (ctx, dev_mask, n, &bufs[4], err)) == LENS_OK
          && (st = upload_new (ctx, change, n * sizeof (float), &change_buf,
                  err)) == LENS_OK
          && (st = enqueue_update (ctx, k, bufs[0], bufs[1], bufs[2],
                  change_buf, bufs[3], bufs[4], w, h, offset, thr, coffset,
                  cthr, rate_bg, rate_fg, err)) == LENS_OK
          && (st = download (ctx, bufs[1], dev_bg, n * sizeof (float),
                  err)) == LENS_OK
          && (st = download (ctx, bufs[3], dev_heat, n * sizeof (float),
                  err)) == LENS_OK
          && (st = download (ctx, bufs[4], dev_mask, n, err)) == LENS_OK) {
        ref_update (cur, bg, diff, change, ref_heat, ref_mask, w, h, offset,
            thr, coffset, cthr, rate_bg, rate_fg);
        ok = compare_floats (dev_heat, ref_heat, n, 0.0, max_diff, &bad)
            && compare_bytes (dev_mask, ref_mask, n, &bad)
            && compare_floats (dev_bg, bg, n, tol * 255, max_diff, &bad);
        what = g_strdup_printf ("offset %g threshold %g", offset, thr);
      }
      g_free (cur);
      g_free (bg);
      g_free (diff);
      g_free (change);
      release_mem (&change_buf);
      g_free (dev_bg);
      g_free (dev_heat);
      g_free (ref_heat);
      g_free (dev_mask);
      g_free (ref_mask);
      break;
    }
    case KERNEL_BOX:{
      int need = g_rand_int_range (rand, 0, 2) ? 9 : 1;
      guint8 *src = random_bytes (rand, n, 1);
      guint8 *dev = g_new (guint8, n), *ref = g_new (guint8, n);

      /* a mostly set mask, so that erosion keeps something */
      if (need == 9)
        for (size_t i = 0; i < n; i++)
          src[i] = g_rand_int_range (rand, 0, 8) != 0;
      if ((st = upload_new (ctx, src, n, &bufs[0], err)) == LENS_OK
          && (st = upload_new (ctx, dev, n, &bufs[1], err)) == LENS_OK
          && (st = enqueue_box3 (ctx, k, bufs[0], bufs[1], w, h, need,
                  err)) == LENS_OK
          && (st = download (ctx, bufs[1], dev, n, err)) == LENS_OK) {
        ref_box3 (src, ref, w, h, need);
        ok = compare_bytes (dev, ref, n, &bad);
        what = g_strdup_printf ("need %d", need);
      }
      g_free (src);
      g_free (dev);
      g_free (ref);
      break;
    }
    default:
      g_assert_not_reached ();
  }
  for (int i = 0; i < 5; i++)
    release_mem (&bufs[i]);
  if (st == LENS_OK && !ok && *failure == NULL)
    *failure = g_strdup_printf ("%s %dx%d (%s): kernel and reference differ "
        "at element %zu", kernel_names[id], w, h, what, bad);
  g_free (what);
  return st;
}

LensStatus
lens_motion_selftest (LensContext * ctx, guint32 seed,
    LensSelftestResult ** results, int *n_results, LensError *err)
{
  static const int sizes[] = { 1, 3, 7, 13, 97 };
  cl_kernel ks[N_KERNELS] = { NULL };
  LensSelftestResult *res = g_new0 (LensSelftestResult, N_KERNELS);
  GRand *rand = g_rand_new_with_seed (seed);
  LensStatus st;

  *results = NULL;
  *n_results = 0;
  st = create_kernels (ctx, &ks[KERNEL_LUMA], &ks[KERNEL_GAUSS],
      &ks[KERNEL_DIFF], &ks[KERNEL_UPDATE], &ks[KERNEL_BOX], err);
  for (int id = 0; st == LENS_OK && id < N_KERNELS; id++) {
    res[id].op_type = kernel_names[id];
    /* every pair of awkward sizes, plus one larger than any work group
     * and not a multiple of it */
    for (int c = 0; st == LENS_OK && c < 26; c++) {
      int w = c < 25 ? sizes[c % 5] : 321;
      int h = c < 25 ? sizes[c / 5] : 83;
      double max_diff = 0.0;
      char *failure = NULL;
      gint64 t0 = g_get_monotonic_time ();

      st = selftest_case (ctx, ks[id], (KernelId) id, w, h, rand, &max_diff,
          &failure, err);
      if (st != LENS_OK)
        break;
      res[id].cases++;
      if (failure == NULL) {
        res[id].passed++;
        res[id].kernel_ms += (g_get_monotonic_time () - t0) / 1000.0;
      } else if (res[id].first_failure == NULL) {
        res[id].first_failure = failure;
      } else {
        g_free (failure);
      }
      res[id].max_abs_diff = MAX (res[id].max_abs_diff, max_diff);
    }
  }
  release_kernels (ks, N_KERNELS);
  g_rand_free (rand);
  if (st != LENS_OK) {
    for (int id = 0; id < N_KERNELS; id++)
      lens_selftest_result_clear (&res[id]);
    g_free (res);
    return st;
  }
  *results = res;
  *n_results = N_KERNELS;
  return LENS_OK;
}
