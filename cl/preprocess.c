/* preprocess.c: video frames to the float32 [1,3,H,W] model input, on the
 * device (LensPreprocessor, kernels/preprocess.cl) and in plain C (the
 * reference). Both share the geometry and the sampling table built here,
 * so they differ only in float rounding.
 *
 * Conventions (frame w x h into model input W x H):
 *
 * - Pixel formats: packed RGB, BGR, RGBx, BGRx, xRGB, xBGR (any size), I420
 *   and NV12
 *   with chroma planes of ceil(w/2) x ceil(h/2); pixel (x, y) takes the
 *   chroma sample (x/2, y/2) (nearest, no chroma interpolation). YUV to RGB
 *   is BT.601 limited range, as GStreamer's videoconvert does for SD:
 *     R = 1.164383 (Y-16) + 1.596027 (V-128)
 *     G = 1.164383 (Y-16) - 0.391762 (U-128) - 0.812968 (V-128)
 *     B = 1.164383 (Y-16) + 2.017232 (U-128)
 *   clamped to 0..255 and kept as float (not rounded to 8 bits).
 *
 * - Geometry, letterbox (Ultralytics LetterBox with scaleup, and YOLOX
 *   when not centred): r = min (W/w, H/h) in double; the resized size is
 *   w' = rint (w r), h' = rint (h r) (round half to even, as Python's
 *   round ()), at least 1. Centred: pad_x = floor ((W - w') / 2), which is
 *   Ultralytics' left = round (dw/2 - 0.1) (the odd pixel goes right and
 *   bottom); not centred: pad_x = pad_y = 0 (YOLOX pads right and bottom;
 *   note YOLOX itself truncates w r where this rounds: at most one pixel
 *   row or column of difference). Without letterbox: stretch to W x H
 *   (FastestDet), no padding. Padding pixels are pad_value in every
 *   channel, normalized like image pixels.
 *
 * - Sampling: bilinear with half-pixel centres, as OpenCV's INTER_LINEAR
 *   (cv2.resize, which Ultralytics and YOLOX use) and for up- and down-
 *   scaling alike (no area filtering): for output column d of the resized
 *   image, s = (d + 0.5) * (w / w') - 0.5, x0 = floor (s), f = s - x0;
 *   x0 < 0 gives x0 = 0, f = 0; x0 >= w - 1 gives x0 = w - 1, f = 0;
 *   x1 = min (x0 + 1, w - 1); value = (1-f) p[x0] + f p[x1], then the
 *   same vertically. The table is computed in double and the weights
 *   kept as float; unlike OpenCV (11-bit fixed-point weights, result
 *   rounded to uint8) nothing is quantized, so values differ from cv2 by
 *   at most about 0.5 in 0..255 units.
 *
 * - Values: channel c of the input (RGB order, or BGR when pre->bgr) is
 *   (v * scale - mean[c]) / std[c], v in 0..255.
 *
 * - LensLetterbox: scale_x = w' / w and scale_y = h' / h (the exact scale
 *   of the resize, within 1/(2w) of Ultralytics' gain r), pad_x, pad_y
 *   as above, so that x_src = (x_in - pad_x) / scale_x.
 */
#include "lens-private.h"

#include <math.h>
#include <string.h>

/* Work-group size of the kernel's 1-D launch. */
#define PREPROCESS_GROUP 64

typedef struct
{
  int n_planes;
  int row_bytes[3];             /* packed bytes per row of each plane */
  int rows[3];
} PlaneLayout;

typedef struct
{
  int out_w, out_h;             /* model input */
  int content_x, content_y;     /* where the resized frame starts */
  int content_w, content_h;     /* its size */
  LensLetterbox box;
} Geometry;

struct _LensPreprocessor
{
  LensContext *ctx;
  cl_kernel kernels[LENS_PIXEL_N_FORMATS];      /* per format, on first use */
  /* device copy of table + planes, and the host staging it is uploaded
   * from: the frame is copied here first so that the caller's memory is
   * free when run returns and the upload needs no host wait */
  cl_mem data;
  size_t data_bytes;
  guint8 *staging;
  size_t staging_bytes;
  cl_event upload;              /* the last upload from staging, or NULL */
};

static const char *
format_name (LensPixelFormat format)
{
  switch (format) {
    case LENS_PIXEL_RGB: return "RGB";
    case LENS_PIXEL_BGR: return "BGR";
    case LENS_PIXEL_RGBX: return "RGBx";
    case LENS_PIXEL_BGRX: return "BGRx";
    case LENS_PIXEL_I420: return "I420";
    case LENS_PIXEL_NV12: return "NV12";
    case LENS_PIXEL_XRGB: return "xRGB";
    case LENS_PIXEL_XBGR: return "xBGR";
    default: return "unknown";
  }
}

/* Validates @f and fills the packed size of each plane. */
static LensStatus
frame_layout (const LensFrame * f, PlaneLayout * l, LensError *err)
{
  int cw, ch;
  int64_t total = 0;

  if (f == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID, "pre-processing: no frame");
  if (f->width < 1 || f->height < 1 || f->width > 65536 || f->height > 65536)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: frame size %dx%d out of range 1..65536",
        f->width, f->height);
  cw = (f->width + 1) / 2;
  ch = (f->height + 1) / 2;
  switch (f->format) {
    case LENS_PIXEL_RGB:
    case LENS_PIXEL_BGR:
      l->n_planes = 1;
      l->row_bytes[0] = 3 * f->width;
      l->rows[0] = f->height;
      break;
    case LENS_PIXEL_RGBX:
    case LENS_PIXEL_BGRX:
    case LENS_PIXEL_XRGB:
    case LENS_PIXEL_XBGR:
      l->n_planes = 1;
      l->row_bytes[0] = 4 * f->width;
      l->rows[0] = f->height;
      break;
    case LENS_PIXEL_I420:
      l->n_planes = 3;
      l->row_bytes[0] = f->width;
      l->rows[0] = f->height;
      l->row_bytes[1] = l->row_bytes[2] = cw;
      l->rows[1] = l->rows[2] = ch;
      break;
    case LENS_PIXEL_NV12:
      l->n_planes = 2;
      l->row_bytes[0] = f->width;
      l->rows[0] = f->height;
      l->row_bytes[1] = 2 * cw;
      l->rows[1] = ch;
      break;
    default:
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "pre-processing: pixel format %d is not supported", f->format);
  }
  for (int p = 0; p < l->n_planes; p++) {
    if (f->planes[p] == NULL)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "pre-processing: %s frame %dx%d has no plane %d",
          format_name (f->format), f->width, f->height, p);
    if (f->strides[p] < l->row_bytes[p])
      return lens_error_set (err, LENS_ERROR_INVALID,
          "pre-processing: %s frame %dx%d: stride %d of plane %d is below "
          "its row size %d", format_name (f->format), f->width, f->height,
          f->strides[p], p, l->row_bytes[p]);
    total += (int64_t) l->row_bytes[p] * l->rows[p];
  }
  /* the kernel addresses the frame with int byte offsets */
  if (total > G_MAXINT / 2)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: %s frame %dx%d is too large", format_name (f->format),
        f->width, f->height);
  return LENS_OK;
}

/* Validates the input tensor: float32 [1,3,H,W], contiguous. */
static LensStatus
check_input (const LensTensor * input, int *out_w, int *out_h,
    LensError *err)
{
  char desc[128];

  if (input == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: no input tensor");
  if (input->dtype != LENS_DTYPE_FLOAT || input->ndim != 4
      || input->shape[0] != 1 || input->shape[1] != 3 || input->shape[2] < 1
      || input->shape[3] < 1 || !lens_tensor_is_contiguous (input))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: input tensor '%s' is %s, expected a contiguous "
        "float32 [1,3,H,W]", input->name ? input->name : "",
        lens_tensor_describe (input, desc, sizeof desc));
  if (input->shape[2] * input->shape[3] * 3 > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: input tensor '%s' %s is too large",
        input->name ? input->name : "",
        lens_tensor_describe (input, desc, sizeof desc));
  *out_h = (int) input->shape[2];
  *out_w = (int) input->shape[3];
  return LENS_OK;
}

static LensStatus
check_params (const LensPreprocess * pre, LensError *err)
{
  if (pre == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: no parameters");
  for (int c = 0; c < 3; c++)
    if (pre->std[c] == 0.0f || !isfinite (pre->std[c])
        || !isfinite (pre->mean[c]))
      return lens_error_set (err, LENS_ERROR_INVALID,
          "pre-processing: mean[%d] = %g, std[%d] = %g (std must be finite "
          "and non-zero)", c, pre->mean[c], c, pre->std[c]);
  if (!isfinite (pre->scale) || !isfinite (pre->pad_value))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: scale %g or pad_value %g is not finite",
        pre->scale, pre->pad_value);
  return LENS_OK;
}

/* Where the frame lands in the input (see the conventions above). */
static void
compute_geometry (const LensFrame * f, const LensPreprocess * pre,
    int out_w, int out_h, Geometry * g)
{
  g->out_w = out_w;
  g->out_h = out_h;
  if (pre->letterbox) {
    double r = MIN ((double) out_w / f->width, (double) out_h / f->height);

    /* rint rounds half to even in the default mode, as Python's round */
    g->content_w = CLAMP ((int) rint (f->width * r), 1, out_w);
    g->content_h = CLAMP ((int) rint (f->height * r), 1, out_h);
    g->content_x = pre->center ? (out_w - g->content_w) / 2 : 0;
    g->content_y = pre->center ? (out_h - g->content_h) / 2 : 0;
  } else {
    g->content_w = out_w;
    g->content_h = out_h;
    g->content_x = g->content_y = 0;
  }
  g->box.scale_x = (float) ((double) g->content_w / f->width);
  g->box.scale_y = (float) ((double) g->content_h / f->height);
  g->box.pad_x = (float) g->content_x;
  g->box.pad_y = (float) g->content_y;
}

/* 3 ints per output coordinate of one axis: first and second source index
 * (-1 in padding) and the float bits of the second one's weight. */
static void
axis_table (int out_size, int start, int size, int src_size, gint32 * t)
{
  double step = (double) src_size / size;

  for (int o = 0; o < out_size; o++, t += 3) {
    double s, f;
    int i0;
    float w;

    if (o < start || o >= start + size) {
      t[0] = t[1] = -1;
      t[2] = 0;
      continue;
    }
    s = (o - start + 0.5) * step - 0.5;
    i0 = (int) floor (s);
    f = s - i0;
    if (i0 < 0) {
      i0 = 0;
      f = 0.0;
    }
    if (i0 >= src_size - 1) {
      i0 = src_size - 1;
      f = 0.0;
    }
    w = (float) f;
    t[0] = i0;
    t[1] = MIN (i0 + 1, src_size - 1);
    memcpy (&t[2], &w, sizeof w);
  }
}

static size_t
table_bytes (const Geometry * g)
{
  return (size_t) 3 * (g->out_w + g->out_h) * sizeof (gint32);
}

static void
build_table (const Geometry * g, const LensFrame * f, gint32 * table)
{
  axis_table (g->out_w, g->content_x, g->content_w, f->width, table);
  axis_table (g->out_h, g->content_y, g->content_h, f->height,
      table + 3 * g->out_w);
}

/* ---- reference ------------------------------------------------------------ */

/* Same expression as lens_yuv_to_rgb () in kernels/preprocess.cl. */
static void
yuv_to_rgb (float y, float u, float v, float rgb[3])
{
  float c = (y - 16.0f) * 1.164383f;
  float d = u - 128.0f;
  float e = v - 128.0f;

  rgb[0] = CLAMP (c + 1.596027f * e, 0.0f, 255.0f);
  rgb[1] = CLAMP (c - 0.391762f * d - 0.812968f * e, 0.0f, 255.0f);
  rgb[2] = CLAMP (c + 2.017232f * d, 0.0f, 255.0f);
}

static void
fetch_rgb (const LensFrame * f, int x, int y, float rgb[3])
{
  const uint8_t *p;

  switch (f->format) {
    case LENS_PIXEL_RGB:
    case LENS_PIXEL_BGR:
    case LENS_PIXEL_RGBX:
    case LENS_PIXEL_BGRX:
    case LENS_PIXEL_XRGB:
    case LENS_PIXEL_XBGR:{
      int bpp = (f->format == LENS_PIXEL_RGB
          || f->format == LENS_PIXEL_BGR) ? 3 : 4;
      gboolean bgr = f->format == LENS_PIXEL_BGR
          || f->format == LENS_PIXEL_BGRX || f->format == LENS_PIXEL_XBGR;
      /* xRGB/xBGR: the ignored byte comes first */
      int skip = (f->format == LENS_PIXEL_XRGB
          || f->format == LENS_PIXEL_XBGR) ? 1 : 0;

      p = f->planes[0] + (size_t) y * f->strides[0] + (size_t) x * bpp + skip;
      rgb[0] = p[bgr ? 2 : 0];
      rgb[1] = p[1];
      rgb[2] = p[bgr ? 0 : 2];
      break;
    }
    case LENS_PIXEL_I420:
      yuv_to_rgb (f->planes[0][(size_t) y * f->strides[0] + x],
          f->planes[1][(size_t) (y / 2) * f->strides[1] + x / 2],
          f->planes[2][(size_t) (y / 2) * f->strides[2] + x / 2], rgb);
      break;
    default:                   /* LENS_PIXEL_NV12 */
      p = f->planes[1] + (size_t) (y / 2) * f->strides[1] + (x / 2) * 2;
      yuv_to_rgb (f->planes[0][(size_t) y * f->strides[0] + x], p[0], p[1],
          rgb);
      break;
  }
}

LensStatus
lens_preprocess_frame_reference (const LensFrame * frame,
    const LensPreprocess * pre, LensTensor * input, LensLetterbox * box,
    LensError *err)
{
  PlaneLayout layout;
  Geometry g;
  gint32 *table;
  float *out;
  int out_w, out_h, plane;
  LensStatus st;

  if ((st = frame_layout (frame, &layout, err)) != LENS_OK
      || (st = check_params (pre, err)) != LENS_OK
      || (st = check_input (input, &out_w, &out_h, err)) != LENS_OK)
    return st;
  compute_geometry (frame, pre, out_w, out_h, &g);
  table = g_malloc (table_bytes (&g));
  build_table (&g, frame, table);
  if (input->host == NULL)
    lens_tensor_alloc_host (input);
  out = input->host;
  plane = out_w * out_h;

  for (int i = 0; i < plane; i++) {
    const gint32 *col = table + 3 * (i % out_w);
    const gint32 *row = table + 3 * (out_w + i / out_w);
    float v[3];

    if (col[0] < 0 || row[0] < 0) {
      v[0] = v[1] = v[2] = pre->pad_value;
    } else {
      float wx, wy, p00[3], p01[3], p10[3], p11[3];

      memcpy (&wx, &col[2], sizeof wx);
      memcpy (&wy, &row[2], sizeof wy);
      fetch_rgb (frame, col[0], row[0], p00);
      fetch_rgb (frame, col[1], row[0], p01);
      fetch_rgb (frame, col[0], row[1], p10);
      fetch_rgb (frame, col[1], row[1], p11);
      for (int c = 0; c < 3; c++) {
        float top = p00[c] * (1.0f - wx) + p01[c] * wx;
        float bottom = p10[c] * (1.0f - wx) + p11[c] * wx;
        v[c] = top * (1.0f - wy) + bottom * wy;
      }
    }
    if (pre->bgr) {
      float t = v[0];
      v[0] = v[2];
      v[2] = t;
    }
    for (int c = 0; c < 3; c++)
      out[c * plane + i] = (v[c] * pre->scale - pre->mean[c]) / pre->std[c];
  }
  g_free (table);
  if (box != NULL)
    *box = g.box;
  return LENS_OK;
}

/* ---- device --------------------------------------------------------------- */

LensStatus
lens_preprocessor_new (LensContext * ctx, LensPreprocessor ** out,
    LensError *err)
{
  LensPreprocessor *pp = g_new0 (LensPreprocessor, 1);

  /* kernels are built per pixel format when first needed (the first
   * frame of a format compiles its program once per process) */
  pp->ctx = ctx;
  *out = pp;
  return LENS_OK;
}

static LensStatus
get_kernel (LensPreprocessor * pp, LensPixelFormat format, cl_kernel * out,
    LensError *err)
{
  if (pp->kernels[format] == NULL) {
    char options[32];
    LensStatus st;

    g_snprintf (options, sizeof options, "-DFORMAT=%d", (int) format);
    st = lens_context_create_kernel (pp->ctx, "preprocess", options,
        "lens_preprocess", &pp->kernels[format], err);
    if (st != LENS_OK)
      return st;
  }
  *out = pp->kernels[format];
  return LENS_OK;
}

static void CL_CALLBACK
free_staging (cl_event event, cl_int status, void *data)
{
  g_free (data);
}

void
lens_preprocessor_free (LensPreprocessor * pp)
{
  if (pp == NULL)
    return;
  if (pp->upload != NULL) {
    /* the upload may still read the staging copy: free it when done
     * rather than wait here */
    if (clSetEventCallback (pp->upload, CL_COMPLETE, free_staging,
            pp->staging) != CL_SUCCESS) {
      clWaitForEvents (1, &pp->upload);
      g_free (pp->staging);
    }
    clReleaseEvent (pp->upload);
  } else {
    g_free (pp->staging);
  }
  /* OpenCL keeps these alive until enqueued commands that use them end */
  if (pp->data != NULL)
    clReleaseMemObject (pp->data);
  for (int f = 0; f < LENS_PIXEL_N_FORMATS; f++)
    if (pp->kernels[f] != NULL)
      clReleaseKernel (pp->kernels[f]);
  g_free (pp);
}

LensStatus
lens_preprocessor_run (LensPreprocessor * pp, const LensFrame * frame,
    const LensPreprocess * pre, LensTensor * input, LensLetterbox * box,
    LensError *err)
{
  cl_command_queue queue = lens_context_get_queue (pp->ctx);
  PlaneLayout layout;
  Geometry g;
  int out_w, out_h, out_offset;
  int offsets[3] = { 0, 0, 0 }, strides[3] = { 0, 0, 0 };
  size_t total, global, local;
  cl_kernel kernel;
  cl_int bgr;
  cl_float4 mean, std;
  LensStatus st;

  if ((st = frame_layout (frame, &layout, err)) != LENS_OK
      || (st = check_params (pre, err)) != LENS_OK
      || (st = check_input (input, &out_w, &out_h, err)) != LENS_OK
      || (st = get_kernel (pp, frame->format, &kernel, err)) != LENS_OK
      || (st = lens_tensor_alloc_device (pp->ctx, input, err)) != LENS_OK)
    return st;
  if (input->offset > (size_t) G_MAXINT - (size_t) 3 * out_w * out_h)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: input tensor '%s' offset %zu is too large",
        input->name ? input->name : "", input->offset);
  compute_geometry (frame, pre, out_w, out_h, &g);

  /* staging layout: table, then each plane with its rows packed */
  total = table_bytes (&g);
  for (int p = 0; p < layout.n_planes; p++) {
    offsets[p] = (int) total;
    strides[p] = layout.row_bytes[p];
    total += (size_t) layout.row_bytes[p] * layout.rows[p];
  }
  if (total > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "pre-processing: %dx%d %s frame into a %dx%d input is too large",
        frame->width, frame->height, format_name (frame->format), out_w,
        out_h);

  /* The previous upload must have read the staging copy before it is
   * overwritten. In a stream it ended long ago (the inference that
   * followed it was waited for), so this normally returns at once. */
  if (pp->upload != NULL) {
    cl_int rc = clWaitForEvents (1, &pp->upload);
    clReleaseEvent (pp->upload);
    pp->upload = NULL;
    if (rc != CL_SUCCESS)
      return lens_error_set (err, LENS_ERROR_CL,
          "clWaitForEvents (previous frame upload): %s",
          lens_cl_error_name (rc));
  }
  if (pp->staging_bytes < total) {
    g_free (pp->staging);
    pp->staging = g_malloc (total);
    pp->staging_bytes = total;
  }
  build_table (&g, frame, (gint32 *) pp->staging);
  for (int p = 0; p < layout.n_planes; p++) {
    guint8 *dst = pp->staging + offsets[p];
    const uint8_t *src = frame->planes[p];

    if (frame->strides[p] == layout.row_bytes[p]) {
      memcpy (dst, src, (size_t) layout.row_bytes[p] * layout.rows[p]);
      continue;
    }
    for (int r = 0; r < layout.rows[p]; r++)
      memcpy (dst + (size_t) r * layout.row_bytes[p],
          src + (size_t) r * frame->strides[p], layout.row_bytes[p]);
  }

  if (pp->data_bytes < total) {
    cl_int rc;

    if (pp->data != NULL)
      clReleaseMemObject (pp->data);
    pp->data = clCreateBuffer (lens_context_get_cl_context (pp->ctx),
        CL_MEM_READ_ONLY, total, NULL, &rc);
    if (rc != CL_SUCCESS) {
      pp->data = NULL;
      pp->data_bytes = 0;
      return lens_error_set (err, LENS_ERROR_CL,
          "clCreateBuffer (%zu bytes for a %dx%d %s frame): %s", total,
          frame->width, frame->height, format_name (frame->format),
          lens_cl_error_name (rc));
    }
    pp->data_bytes = total;
  }
  LENS_CL_CHECK (clEnqueueWriteBuffer (queue, pp->data, CL_FALSE, 0, total,
          pp->staging, 0, NULL, &pp->upload), err);

  out_offset = (int) input->offset;
  bgr = pre->bgr ? 1 : 0;
  for (int c = 0; c < 3; c++) {
    mean.s[c] = pre->mean[c];
    std.s[c] = pre->std[c];
  }
  mean.s[3] = 0.0f;
  std.s[3] = 1.0f;
  st = lens_kernel_set_args (kernel, err, 16, LENS_ARG (pp->data),
      LENS_ARG (input->buffer), LENS_ARG (out_offset), LENS_ARG (out_w),
      LENS_ARG (out_h), LENS_ARG (offsets[0]),
      LENS_ARG (strides[0]), LENS_ARG (offsets[1]), LENS_ARG (strides[1]),
      LENS_ARG (offsets[2]), LENS_ARG (strides[2]), LENS_ARG (bgr),
      LENS_ARG (pre->pad_value), LENS_ARG (pre->scale), LENS_ARG (mean),
      LENS_ARG (std));
  if (st != LENS_OK)
    return st;
  global = (size_t) out_w * out_h;
  local = MIN (PREPROCESS_GROUP, lens_kernel_max_work_group (pp->ctx,
          kernel));
  st = lens_context_enqueue (pp->ctx, kernel, 1, &global, &local, err);
  if (st != LENS_OK)
    return st;
  /* submit without waiting: the upload starts while the caller goes on,
   * and the upload event can complete for the next frame's wait and for
   * lens_preprocessor_free's callback even if nothing else flushes */
  LENS_CL_CHECK (clFlush (queue), err);
  if (box != NULL)
    *box = g.box;
  return LENS_OK;
}

LensStatus
lens_preprocess_frame (LensContext * ctx, const LensFrame * frame,
    const LensPreprocess * pre, LensTensor * input, LensLetterbox * box,
    LensError *err)
{
  LensPreprocessor *pp;
  LensStatus st;

  st = lens_preprocessor_new (ctx, &pp, err);
  if (st != LENS_OK)
    return st;
  st = lens_preprocessor_run (pp, frame, pre, input, box, err);
  lens_preprocessor_free (pp);
  return st;
}
