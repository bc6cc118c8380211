/* gstlensdetect.c: the lensdetect element: runs a lens detector (or, with
 * mode=motion, the motion engine) on video frames in place (pixels
 * untouched) and attaches the detections as
 * GstVideoRegionOfInterestMeta, the heatmaps as GstLensFeatureMapMeta, and
 * posts a "lens-detections" element message per inferred frame. Owns the
 * process-wide model cache (one loaded model per file, shared by every
 * instance) and the inference worker with its single-slot mailbox.
 */

/**
 * SECTION:element-lensdetect
 * @title: lensdetect
 *
 * Object detection with an ONNX model (YOLOv5/v8/11/26, YOLOX, NanoDet,
 * FastestDet) on an OpenCL device, or (mode=motion, no model) motion
 * detection by frame differencing on a Gaussian pyramid: regions that move
 * are detections labelled "motion" and the per-level differences are the
 * heatmaps. The frames pass through untouched.
 *
 * Real time: with sync-inference=false (the default) inference runs on a
 * worker thread and no frame ever waits for it. The newest frame that
 * arrives while the worker is busy waits in a single slot, replacing (and
 * counting as dropped) the one that waited there before; results attach
 * to the next frame that passes, carrying the timestamp of the frame they
 * were computed on. With sync-inference=true every inferred frame waits
 * for its own results (offline processing).
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=video.mp4 ! decodebin ! videoconvert ! \
 *     lensdetect model=yolov8n.onnx ! videoconvert ! autovideosink
 * ]| prints a lens-detections message for every inferred frame.
 * |[
 * gst-launch-1.0 -m videotestsrc pattern=ball ! lensdetect mode=motion ! \
 *     fakesink
 * ]| reports the moving ball.
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <string.h>

#include <gst/video/gstvideometa.h>

#include "gstlens.h"
#include "gstlensdetect.h"

GST_DEBUG_CATEGORY_STATIC (gst_lens_detect_debug);
#define GST_CAT_DEFAULT gst_lens_detect_debug

#define DEFAULT_MODEL NULL
#define DEFAULT_LABELS NULL
#define DEFAULT_DEVICE NULL
#define DEFAULT_CONF_THRESHOLD 0.25f
#define DEFAULT_IOU_THRESHOLD 0.45f
#define DEFAULT_INTERVAL 1
#define DEFAULT_MODE GST_LENS_DETECT_MODE_AUTO
#define DEFAULT_FEATURE_MAPS FALSE
#define DEFAULT_SYNC_INFERENCE FALSE
#define DEFAULT_FEATURE_CHANNELS 0

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_LABELS,
  PROP_DEVICE,
  PROP_CONF_THRESHOLD,
  PROP_IOU_THRESHOLD,
  PROP_INTERVAL,
  PROP_MODE,
  PROP_FEATURE_MAPS,
  PROP_SYNC_INFERENCE,
  PROP_STATS,
  PROP_FEATURE_CHANNELS,
  PROP_MODEL_INFO,
};

#define VIDEO_FORMATS "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, I420, NV12 }"

static GstStaticPadTemplate gst_lens_detect_sink_template =
GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

static GstStaticPadTemplate gst_lens_detect_src_template =
GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

GType
gst_lens_detect_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_LENS_DETECT_MODE_AUTO, "Detection when a model is set, else motion",
        "auto"},
    {GST_LENS_DETECT_MODE_DETECT, "Object detection with the model",
        "detect"},
    {GST_LENS_DETECT_MODE_MOTION, "Motion detection (no model needed)",
        "motion"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLensDetectMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

/* ---- frames for the worker ---------------------------------------------- */

struct _GstLensDetectJob
{
  LensFrame frame;              /* planes point into data */
  guint8 *data;
  gsize size;
  guint64 pts;
};

struct _GstLensDetectResult
{
  guint64 pts;                  /* of the frame it was computed on */
  gint frame_width, frame_height;
  LensDetectorResult res;
};

/* Bytes per packed row of plane @p and its row count. */
static void
plane_geometry (LensPixelFormat format, gint width, gint height, gint p,
    gint * row_bytes, gint * rows)
{
  gint cw = (width + 1) / 2;

  *rows = p == 0 ? height : (height + 1) / 2;
  switch (format) {
    case LENS_PIXEL_RGB:
    case LENS_PIXEL_BGR:
      *row_bytes = 3 * width;
      break;
    case LENS_PIXEL_I420:
      *row_bytes = p == 0 ? width : cw;
      break;
    case LENS_PIXEL_NV12:
      *row_bytes = p == 0 ? width : 2 * cw;
      break;
    default:                   /* the 4-byte packed formats */
      *row_bytes = 4 * width;
      break;
  }
}

static gint
n_planes (LensPixelFormat format)
{
  return format == LENS_PIXEL_I420 ? 3 : format == LENS_PIXEL_NV12 ? 2 : 1;
}

/* Fills @frame with the planes of @vframe, in place (no copy). */
static void
lens_frame_from_video_frame (LensFrame * frame, GstVideoFrame * vframe,
    LensPixelFormat format)
{
  memset (frame, 0, sizeof *frame);
  frame->format = format;
  frame->width = GST_VIDEO_FRAME_WIDTH (vframe);
  frame->height = GST_VIDEO_FRAME_HEIGHT (vframe);
  for (gint p = 0; p < n_planes (format); p++) {
    frame->planes[p] = GST_VIDEO_FRAME_PLANE_DATA (vframe, p);
    frame->strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE (vframe, p);
  }
}

/* Copies the pixels of @vframe into @job's own memory, so that the
 * worker never holds upstream buffers (which could starve a fixed-size
 * pool) and never reads memory we pass downstream. */
static void
gst_lens_detect_job_fill (GstLensDetectJob * job, GstVideoFrame * vframe,
    LensPixelFormat format, guint64 pts)
{
  LensFrame src;
  gsize size = 0, offset = 0;
  gint row_bytes, rows;

  lens_frame_from_video_frame (&src, vframe, format);
  for (gint p = 0; p < n_planes (format); p++) {
    plane_geometry (format, src.width, src.height, p, &row_bytes, &rows);
    size += (gsize) row_bytes * rows;
  }
  if (size > job->size) {
    g_free (job->data);
    job->data = g_malloc (size);
    job->size = size;
  }
  job->frame = src;
  job->pts = pts;
  for (gint p = 0; p < n_planes (format); p++) {
    guint8 *dst = job->data + offset;

    plane_geometry (format, src.width, src.height, p, &row_bytes, &rows);
    for (gint r = 0; r < rows; r++)
      memcpy (dst + (gsize) r * row_bytes,
          src.planes[p] + (gsize) r * src.strides[p], row_bytes);
    job->frame.planes[p] = dst;
    job->frame.strides[p] = row_bytes;
    offset += (gsize) row_bytes * rows;
  }
}

static void
gst_lens_detect_job_free (GstLensDetectJob * job)
{
  if (job == NULL)
    return;
  g_free (job->data);
  g_free (job);
}

static void
gst_lens_detect_result_free (GstLensDetectResult * result)
{
  if (result == NULL)
    return;
  lens_detector_result_clear (&result->res);
  g_free (result);
}

/* ---- the process-wide model cache --------------------------------------- */

/* One loaded model: its device context and every live detector on it.
 * The first instance loads it; later ones get lens_detector_new_shared
 * detectors (own queue and buffers, shared weights). The entry, the
 * model and the context go with the last detector. */
struct _GstLensModelEntry
{
  gchar *key;
  gchar *path;
  gchar *sha256;
  LensContext *ctx;
  GList *detectors;
};

static GMutex model_cache_lock;
static GHashTable *model_cache;         /* key -> GstLensModelEntry */

static gchar *
model_cache_key (const gchar * device, const LensDetectorOptions * options)
{
  /* everything the shared part of a detector depends on (the thresholds
   * are each detector's own: lens_detector_set_thresholds) */
  return g_strdup_printf ("%s\n%s\n%s\n%d", device ? device : "",
      options->model_path, options->labels_path ? options->labels_path : "",
      options->feature_maps);
}

static LensStatus
model_cache_acquire (const gchar * device, const LensDetectorOptions * options,
    GstLensModelEntry ** entry_out, LensDetector ** out, LensError * err)
{
  GstLensModelEntry *entry;
  LensDetector *det = NULL;
  LensStatus st;
  gchar *key, *contents = NULL;
  gsize length;
  GError *gerr = NULL;

  key = model_cache_key (device, options);
  g_mutex_lock (&model_cache_lock);
  if (model_cache == NULL)
    model_cache = g_hash_table_new (g_str_hash, g_str_equal);
  entry = g_hash_table_lookup (model_cache, key);
  if (entry != NULL) {
    st = lens_detector_new_shared (entry->detectors->data, &det, err);
    if (st != LENS_OK)
      goto done;
    lens_detector_set_thresholds (det, options->conf_threshold,
        options->iou_threshold);
    entry->detectors = g_list_prepend (entry->detectors, det);
    GST_DEBUG ("sharing model %s (%u detectors)", entry->path,
        g_list_length (entry->detectors));
    goto done;
  }

  entry = g_new0 (GstLensModelEntry, 1);
  entry->key = g_strdup (key);
  entry->path = g_strdup (options->model_path);
  st = lens_context_new (device, &entry->ctx, err);
  if (st == LENS_OK)
    st = lens_detector_new (entry->ctx, options, &det, err);
  if (st == LENS_OK) {
    /* the model's identity for the meta: the file's content, not its name */
    if (g_file_get_contents (options->model_path, &contents, &length, &gerr)) {
      entry->sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
          (const guchar *) contents, length);
      g_free (contents);
    } else {
      st = lens_error_set (err, LENS_ERROR_IO, "model '%s': %s",
          options->model_path, gerr->message);
      g_clear_error (&gerr);
    }
  }
  if (st != LENS_OK) {
    lens_detector_free (det);
    det = NULL;
    if (entry->ctx != NULL)
      lens_context_free (entry->ctx);
    g_free (entry->key);
    g_free (entry->path);
    g_free (entry);
    entry = NULL;
    goto done;
  }
  entry->detectors = g_list_prepend (NULL, det);
  g_hash_table_insert (model_cache, entry->key, entry);

done:
  g_mutex_unlock (&model_cache_lock);
  g_free (key);
  *entry_out = entry;
  *out = det;
  return st;
}

static void
model_cache_release (GstLensModelEntry * entry, LensDetector * det)
{
  g_mutex_lock (&model_cache_lock);
  entry->detectors = g_list_remove (entry->detectors, det);
  lens_detector_free (det);
  if (entry->detectors == NULL) {
    g_hash_table_remove (model_cache, entry->key);
    /* the context outlives every detector of the model */
    lens_context_free (entry->ctx);
    g_free (entry->key);
    g_free (entry->path);
    g_free (entry->sha256);
    g_free (entry);
  }
  g_mutex_unlock (&model_cache_lock);
}

/* ---- the element -------------------------------------------------------- */

#define gst_lens_detect_parent_class parent_class
G_DEFINE_TYPE (GstLensDetect, gst_lens_detect, GST_TYPE_VIDEO_FILTER);

static void gst_lens_detect_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lens_detect_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lens_detect_finalize (GObject * object);
static gboolean gst_lens_detect_start (GstBaseTransform * trans);
static gboolean gst_lens_detect_stop (GstBaseTransform * trans);
static gboolean gst_lens_detect_sink_event (GstBaseTransform * trans,
    GstEvent * event);
static GstFlowReturn gst_lens_detect_transform_ip (GstBaseTransform * trans,
    GstBuffer * buf);
static gboolean gst_lens_detect_set_info (GstVideoFilter * filter,
    GstCaps * incaps, GstVideoInfo * in_info, GstCaps * outcaps,
    GstVideoInfo * out_info);

static void
gst_lens_detect_class_init (GstLensDetectClass * klass)
{
  GObjectClass *gobject_class = (GObjectClass *) klass;
  GstElementClass *element_class = (GstElementClass *) klass;
  GstBaseTransformClass *trans_class = (GstBaseTransformClass *) klass;
  GstVideoFilterClass *filter_class = (GstVideoFilterClass *) klass;

  gobject_class->set_property = gst_lens_detect_set_property;
  gobject_class->get_property = gst_lens_detect_get_property;
  gobject_class->finalize = gst_lens_detect_finalize;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "ONNX detection model file (loaded when going to PAUSED; "
          "instances with the same file share its weights); unused with "
          "mode=motion", DEFAULT_MODEL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_LABELS,
      g_param_spec_string ("labels", "Labels",
          "Class names file, one per line (NULL: the model's metadata)",
          DEFAULT_LABELS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "OpenCL device: auto, gpu, cpu, P:D (platform:device index) or a "
          "name substring (NULL: $LENS_DEVICE, else auto)", DEFAULT_DEVICE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CONF_THRESHOLD,
      g_param_spec_float ("conf-threshold", "Confidence threshold",
          "Minimum detection score", 0.0f, 1.0f, DEFAULT_CONF_THRESHOLD,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_IOU_THRESHOLD,
      g_param_spec_float ("iou-threshold", "IoU threshold",
          "Non-maximum suppression overlap threshold", 0.0f, 1.0f,
          DEFAULT_IOU_THRESHOLD,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_INTERVAL,
      g_param_spec_uint ("interval", "Interval",
          "Infer every Nth frame (the others are counted as "
          "dropped-interval)", 1, G_MAXUINT, DEFAULT_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_MODE,
      g_param_spec_enum ("mode", "Mode", "What to compute on frames: "
          "detect (the model's objects) or motion (moving regions, "
          "labelled \"motion\"; no model needed); auto: detect when a "
          "model is set, else motion",
          GST_TYPE_LENS_DETECT_MODE, DEFAULT_MODE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_FEATURE_MAPS,
      g_param_spec_boolean ("feature-maps", "Feature maps",
          "Compute per-scale heatmaps and attach them as "
          "GstLensFeatureMapMeta", DEFAULT_FEATURE_MAPS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SYNC_INFERENCE,
      g_param_spec_boolean ("sync-inference", "Synchronous inference",
          "Every inferred frame waits for its own results (offline "
          "processing); off: inference runs on a worker on the newest "
          "frame and no frame waits", DEFAULT_SYNC_INFERENCE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_STATS,
      g_param_spec_boxed ("stats", "Statistics",
          "Frame counters since start: frames-in, inferred, failed, "
          "dropped-busy (replaced in the mailbox by a newer frame), "
          "dropped-interval, and pending (waiting or being inferred); "
          "frames-in is the sum of the others", GST_TYPE_STRUCTURE,
          G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (gobject_class, PROP_FEATURE_CHANNELS,
      g_param_spec_uint ("feature-channels", "Feature channels",
          "With feature-maps: every heatmap also carries up to this many "
          "channels of its feature map (mode=motion: the level's "
          "difference, one channel); 0: none", 0, 4096,
          DEFAULT_FEATURE_CHANNELS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_MODEL_INFO,
      g_param_spec_boxed ("model-info", "Model information",
          "What runs, once loaded (from PAUSED on; NULL before): name (the "
          "model file's base name, or \"motion\"), platform and device "
          "(OpenCL) and, for a model, path, sha256, family, input-width, "
          "input-height, n-classes and classes (an array of strings)",
          GST_TYPE_STRUCTURE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));

  gst_element_class_set_static_metadata (element_class,
      "Lens object detector", "Filter/Analyzer/Video",
      "Detects objects with an ONNX model on an OpenCL device and attaches "
      "region-of-interest and feature-map metas", "lens");
  gst_element_class_add_static_pad_template (element_class,
      &gst_lens_detect_sink_template);
  gst_element_class_add_static_pad_template (element_class,
      &gst_lens_detect_src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_lens_detect_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_lens_detect_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_lens_detect_sink_event);
  /* our own transform_ip, not GstVideoFilter's: it would map the frame
   * for writing, which copies pixels whose memory is shared */
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_lens_detect_transform_ip);
  trans_class->transform_ip_on_passthrough = FALSE;
  filter_class->set_info = GST_DEBUG_FUNCPTR (gst_lens_detect_set_info);

  gst_type_mark_as_plugin_api (GST_TYPE_LENS_DETECT_MODE, 0);
  GST_DEBUG_CATEGORY_INIT (gst_lens_detect_debug, "lensdetect", 0,
      "lens object detector");
}

static void
gst_lens_detect_init (GstLensDetect * self)
{
  self->model = g_strdup (DEFAULT_MODEL);
  self->labels = g_strdup (DEFAULT_LABELS);
  self->device = g_strdup (DEFAULT_DEVICE);
  self->conf_threshold = DEFAULT_CONF_THRESHOLD;
  self->iou_threshold = DEFAULT_IOU_THRESHOLD;
  self->interval = DEFAULT_INTERVAL;
  self->mode = DEFAULT_MODE;
  self->feature_maps = DEFAULT_FEATURE_MAPS;
  self->sync_inference = DEFAULT_SYNC_INFERENCE;
  self->feature_channels = DEFAULT_FEATURE_CHANNELS;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  /* metas are added to the frames passing through: in place */
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  /* an analyzer never drops frames for lateness: it adds no latency with
   * sync-inference=false, and with it on every frame is wanted */
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), FALSE);
}

static void
gst_lens_detect_finalize (GObject * object)
{
  GstLensDetect *self = GST_LENS_DETECT (object);

  g_free (self->model);
  g_free (self->labels);
  g_free (self->device);
  if (self->model_info != NULL)
    gst_structure_free (self->model_info);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static GstStructure *
gst_lens_detect_stats (GstLensDetect * self)
{
  GstStructure *s;

  g_mutex_lock (&self->lock);
  s = gst_structure_new ("lensdetect-stats",
      "frames-in", G_TYPE_UINT64, self->frames_in,
      "inferred", G_TYPE_UINT64, self->inferred,
      "failed", G_TYPE_UINT64, self->failed_count,
      "dropped-busy", G_TYPE_UINT64, self->dropped_busy,
      "dropped-interval", G_TYPE_UINT64, self->dropped_interval,
      "pending", G_TYPE_UINT64,
      (guint64) ((self->pending != NULL) + (self->busy != FALSE)), NULL);
  g_mutex_unlock (&self->lock);
  return s;
}

static void
gst_lens_detect_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstLensDetect *self = GST_LENS_DETECT (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model);
      self->model = g_value_dup_string (value);
      break;
    case PROP_LABELS:
      g_free (self->labels);
      self->labels = g_value_dup_string (value);
      break;
    case PROP_DEVICE:
      g_free (self->device);
      self->device = g_value_dup_string (value);
      break;
    case PROP_CONF_THRESHOLD:
      self->conf_threshold = g_value_get_float (value);
      break;
    case PROP_IOU_THRESHOLD:
      self->iou_threshold = g_value_get_float (value);
      break;
    case PROP_INTERVAL:
      self->interval = g_value_get_uint (value);
      break;
    case PROP_MODE:
      self->mode = g_value_get_enum (value);
      break;
    case PROP_FEATURE_MAPS:
      self->feature_maps = g_value_get_boolean (value);
      break;
    case PROP_SYNC_INFERENCE:
      self->sync_inference = g_value_get_boolean (value);
      break;
    case PROP_FEATURE_CHANNELS:
      self->feature_channels = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_lens_detect_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstLensDetect *self = GST_LENS_DETECT (object);

  if (prop_id == PROP_STATS) {
    /* counters live under the worker lock, not the object lock */
    g_value_take_boxed (value, gst_lens_detect_stats (self));
    return;
  }

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model);
      break;
    case PROP_LABELS:
      g_value_set_string (value, self->labels);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    case PROP_CONF_THRESHOLD:
      g_value_set_float (value, self->conf_threshold);
      break;
    case PROP_IOU_THRESHOLD:
      g_value_set_float (value, self->iou_threshold);
      break;
    case PROP_INTERVAL:
      g_value_set_uint (value, self->interval);
      break;
    case PROP_MODE:
      g_value_set_enum (value, self->mode);
      break;
    case PROP_FEATURE_MAPS:
      g_value_set_boolean (value, self->feature_maps);
      break;
    case PROP_SYNC_INFERENCE:
      g_value_set_boolean (value, self->sync_inference);
      break;
    case PROP_FEATURE_CHANNELS:
      g_value_set_uint (value, self->feature_channels);
      break;
    case PROP_MODEL_INFO:
      g_value_set_boxed (value, self->model_info);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* ---- results: metas and messages ---------------------------------------- */

static const gchar *
label_of (GstLensDetect * self, gint class_id, gchar * buf, gsize len)
{
  const LensDecodeConfig *config;

  if (self->motion != NULL)
    return "motion";
  config = lens_detector_config (self->detector);
  if (config->labels != NULL && class_id >= 0 && class_id < config->n_classes
      && config->labels[class_id] != NULL)
    return config->labels[class_id];
  g_snprintf (buf, len, "class-%d", class_id);
  return buf;
}

/* A detection's box in whole frame pixels, clipped to the frame. */
static void
box_pixels (const LensDetection * d, gint width, gint height, gint * x,
    gint * y, gint * w, gint * h)
{
  gint x0 = CLAMP ((gint) lrintf (d->x), 0, width);
  gint y0 = CLAMP ((gint) lrintf (d->y), 0, height);
  gint x1 = CLAMP ((gint) lrintf (d->x + d->w), 0, width);
  gint y1 = CLAMP ((gint) lrintf (d->y + d->h), 0, height);

  *x = x0;
  *y = y0;
  *w = MAX (x1 - x0, 0);
  *h = MAX (y1 - y0, 0);
}

static void
gst_lens_detect_post_detections (GstLensDetect * self,
    const GstLensDetectResult * result)
{
  GstStructure *s;
  GValue list = G_VALUE_INIT;
  gchar buf[32];

  g_value_init (&list, GST_TYPE_LIST);
  for (gint i = 0; i < result->res.n_detections; i++) {
    const LensDetection *d = &result->res.detections[i];
    GValue v = G_VALUE_INIT;
    gint x, y, w, h;

    box_pixels (d, result->frame_width, result->frame_height, &x, &y, &w, &h);
    g_value_init (&v, GST_TYPE_STRUCTURE);
    g_value_take_boxed (&v, gst_structure_new ("detection",
            "label", G_TYPE_STRING, label_of (self, d->class_id, buf,
                sizeof buf), "class-id", G_TYPE_INT, d->class_id,
            "score", G_TYPE_DOUBLE, (gdouble) d->score,
            "x", G_TYPE_INT, x, "y", G_TYPE_INT, y,
            "w", G_TYPE_INT, w, "h", G_TYPE_INT, h, NULL));
    gst_value_list_append_and_take_value (&list, &v);
  }
  s = gst_structure_new ("lens-detections",
      "pts", G_TYPE_UINT64, result->pts,
      "frame-width", G_TYPE_INT, result->frame_width,
      "frame-height", G_TYPE_INT, result->frame_height,
      "inference-ms", G_TYPE_DOUBLE, result->res.inference_ms, NULL);
  gst_structure_take_value (s, "detections", &list);
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_element (GST_OBJECT (self), s));
}

static void
gst_lens_detect_attach (GstLensDetect * self, GstBuffer * buf,
    const GstLensDetectResult * result)
{
  const LensDetectorResult *res = &result->res;
  gchar label_buf[32];

  for (gint i = 0; i < res->n_detections; i++) {
    const LensDetection *d = &res->detections[i];
    const gchar *label = label_of (self, d->class_id, label_buf,
        sizeof label_buf);
    GstVideoRegionOfInterestMeta *roi;
    gint x, y, w, h;

    box_pixels (d, result->frame_width, result->frame_height, &x, &y, &w, &h);
    roi = gst_buffer_add_video_region_of_interest_meta (buf, label, x, y, w,
        h);
    roi->id = i;
    gst_video_region_of_interest_meta_add_param (roi,
        gst_structure_new ("detection", "label", G_TYPE_STRING, label,
            "class-id", G_TYPE_INT, d->class_id,
            "confidence", G_TYPE_DOUBLE, (gdouble) d->score,
            "pts", G_TYPE_UINT64, result->pts, NULL));
  }

  if (self->feature_maps_on && res->n_feature_maps > 0) {
    GstLensFeatureMapMeta *meta;

    if (self->motion != NULL) {
      /* the pyramid works on the frame itself: strides are frame pixels */
      meta = gst_buffer_add_lens_feature_map_meta (buf, "motion", NULL, NULL);
      meta->input_width = result->frame_width;
      meta->input_height = result->frame_height;
      meta->scale_x = meta->scale_y = 1.0f;
      meta->pad_x = meta->pad_y = 0.0f;
    } else {
      const LensDecodeConfig *config = lens_detector_config (self->detector);
      gchar *name = g_path_get_basename (self->entry->path);

      meta = gst_buffer_add_lens_feature_map_meta (buf, name,
          self->entry->path, self->entry->sha256);
      g_free (name);
      meta->input_width = config->input_width;
      meta->input_height = config->input_height;
      meta->scale_x = res->letterbox.scale_x;
      meta->scale_y = res->letterbox.scale_y;
      meta->pad_x = res->letterbox.pad_x;
      meta->pad_y = res->letterbox.pad_y;
    }
    meta->pts = result->pts;
    meta->frame_width = result->frame_width;
    meta->frame_height = result->frame_height;
    meta->inference_ms = res->inference_ms;
    for (gint i = 0; i < res->n_feature_maps; i++) {
      const LensFeatureMap *fm = &res->feature_maps[i];
      gsize cells = (gsize) fm->width * fm->height;
      GstLensHeatmap *heatmap;

      heatmap = gst_lens_heatmap_new (fm->tensor_name, fm->stride, fm->width,
          fm->height, fm->score != NULL);
      memcpy (heatmap->activation, fm->activation, cells * sizeof (gfloat));
      if (fm->score != NULL)
        memcpy (heatmap->score, fm->score, cells * sizeof (gfloat));
      if (self->feature_channels_on > 0 && fm->channels != NULL) {
        heatmap->n_channels = MIN ((guint) fm->n_channels,
            self->feature_channels_on);
        heatmap->channels = g_memdup2 (fm->channels,
            heatmap->n_channels * cells * sizeof (gfloat));
      } else if (self->feature_channels_on > 0 && self->motion != NULL) {
        /* the motion engine's one channel per level is its difference */
        heatmap->n_channels = 1;
        heatmap->channels = g_memdup2 (fm->activation,
            cells * sizeof (gfloat));
      }
      gst_lens_feature_map_meta_add_map (meta, heatmap);
      gst_lens_heatmap_unref (heatmap);
    }
  }
}

/* ---- the worker --------------------------------------------------------- */

/* One frame through the engine of the mode. */
static LensStatus
gst_lens_detect_run_engine (GstLensDetect * self, const LensFrame * frame,
    LensDetectorResult * result, LensError * err)
{
  if (self->motion != NULL)
    return lens_motion_run (self->motion, frame, result, err);
  return lens_detector_run (self->detector, frame, result, err);
}

static void
gst_lens_detect_post_run_error (GstLensDetect * self, LensError * err)
{
  if (self->motion != NULL)
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("Motion detection failed"), ("%s", err->message));
  else
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("Inference failed on model \"%s\"", self->entry->path),
        ("%s", err->message));
}

static gpointer
gst_lens_detect_worker (gpointer data)
{
  GstLensDetect *self = data;

  g_mutex_lock (&self->lock);
  while (TRUE) {
    GstLensDetectJob *job;
    GstLensDetectResult *result;
    LensError err = LENS_ERROR_INIT;
    LensStatus st;

    while (!self->stopping && self->pending == NULL)
      g_cond_wait (&self->cond, &self->lock);
    if (self->stopping)
      break;
    job = self->pending;
    self->pending = NULL;
    self->busy = TRUE;
    g_mutex_unlock (&self->lock);

    result = g_new0 (GstLensDetectResult, 1);
    result->pts = job->pts;
    result->frame_width = job->frame.width;
    result->frame_height = job->frame.height;
    st = gst_lens_detect_run_engine (self, &job->frame, &result->res, &err);
    if (st == LENS_OK) {
      /* the message goes out now; the metas ride on the next frame */
      gst_lens_detect_post_detections (self, result);
    } else {
      gst_lens_detect_post_run_error (self, &err);
      lens_error_clear (&err);
      gst_lens_detect_result_free (result);
      result = NULL;
    }

    g_mutex_lock (&self->lock);
    self->busy = FALSE;
    if (result != NULL) {
      self->inferred++;
      /* only the newest result matters: an unattached older one goes */
      gst_lens_detect_result_free (self->ready);
      self->ready = result;
    } else {
      self->failed_count++;
      self->failed = TRUE;
    }
    if (self->spare == NULL)
      self->spare = job;
    else
      gst_lens_detect_job_free (job);
    /* for a drain at EOS */
    g_cond_broadcast (&self->cond);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

/* ---- GstBaseTransform --------------------------------------------------- */

/* The model-info structure of what start () loaded. */
static GstStructure *
gst_lens_detect_make_model_info (GstLensDetect * self)
{
  LensContext *ctx = self->motion != NULL ? self->motion_ctx :
      self->entry->ctx;
  const LensDecodeConfig *config;
  GstStructure *s;
  GValue classes = G_VALUE_INIT;
  gchar *name;

  if (self->motion != NULL)
    return gst_structure_new ("lens-model-info",
        "name", G_TYPE_STRING, "motion",
        "platform", G_TYPE_STRING, lens_context_get_platform_name (ctx),
        "device", G_TYPE_STRING, lens_context_get_device_name (ctx), NULL);

  config = lens_detector_config (self->detector);
  name = g_path_get_basename (self->entry->path);
  s = gst_structure_new ("lens-model-info",
      "name", G_TYPE_STRING, name,
      "path", G_TYPE_STRING, self->entry->path,
      "sha256", G_TYPE_STRING, self->entry->sha256,
      "family", G_TYPE_STRING, lens_family_name (config->family),
      "input-width", G_TYPE_INT, config->input_width,
      "input-height", G_TYPE_INT, config->input_height,
      "n-classes", G_TYPE_INT, config->n_classes,
      "platform", G_TYPE_STRING, lens_context_get_platform_name (ctx),
      "device", G_TYPE_STRING, lens_context_get_device_name (ctx), NULL);
  g_free (name);
  g_value_init (&classes, GST_TYPE_ARRAY);
  for (gint i = 0; i < config->n_classes; i++) {
    GValue v = G_VALUE_INIT;
    gchar buf[32];

    g_value_init (&v, G_TYPE_STRING);
    g_value_set_string (&v, label_of (self, i, buf, sizeof buf));
    gst_value_array_append_and_take_value (&classes, &v);
  }
  gst_structure_take_value (s, "classes", &classes);
  return s;
}

static gboolean
gst_lens_detect_start (GstBaseTransform * trans)
{
  GstLensDetect *self = GST_LENS_DETECT (trans);
  LensDetectorOptions options;
  LensError err = LENS_ERROR_INIT;
  gchar *model, *labels, *device;
  GstLensDetectMode mode;
  GstStructure *info;
  LensStatus st;

  lens_detector_options_init (&options);
  GST_OBJECT_LOCK (self);
  model = g_strdup (self->model);
  labels = g_strdup (self->labels);
  device = g_strdup (self->device);
  options.conf_threshold = self->conf_threshold;
  options.iou_threshold = self->iou_threshold;
  options.feature_maps = self->feature_maps;
  options.feature_channels = self->feature_maps ? self->feature_channels : 0;
  self->sync = self->sync_inference;
  self->feature_maps_on = self->feature_maps;
  self->feature_channels_on = options.feature_channels;
  mode = self->mode;
  GST_OBJECT_UNLOCK (self);

  /* motion is the default that needs nothing */
  if (mode == GST_LENS_DETECT_MODE_AUTO)
    mode = model != NULL && *model != '\0' ? GST_LENS_DETECT_MODE_DETECT :
        GST_LENS_DETECT_MODE_MOTION;
  if (mode == GST_LENS_DETECT_MODE_MOTION) {
    /* contexts on one device share the cl_context and compiled programs:
     * one per instance costs a command queue */
    st = lens_context_new (device, &self->motion_ctx, &err);
    if (st == LENS_OK)
      st = lens_motion_new (self->motion_ctx, NULL, &self->motion, &err);
    if (st != LENS_OK)
      goto motion_failed;
    GST_INFO_OBJECT (self, "motion on %s",
        lens_context_get_device_name (self->motion_ctx));
  } else {
    if (model == NULL || *model == '\0')
      goto no_model;
    options.model_path = model;
    options.labels_path = labels;
    st = model_cache_acquire (device, &options, &self->entry,
        &self->detector, &err);
    if (st != LENS_OK)
      goto load_failed;
    /* a shared detector copied the first instance's channel count */
    lens_detector_set_feature_channels (self->detector,
        options.feature_channels);
    GST_INFO_OBJECT (self, "model %s (sha256 %s) on %s", self->entry->path,
        self->entry->sha256, lens_context_get_device_name (self->entry->ctx));
  }

  self->frame_index = 0;
  self->frames_in = self->inferred = self->failed_count = 0;
  self->dropped_busy = self->dropped_interval = 0;
  self->failed = FALSE;
  self->stopping = FALSE;
  if (!self->sync)
    self->worker = g_thread_new ("lensdetect", gst_lens_detect_worker, self);

  info = gst_lens_detect_make_model_info (self);
  GST_OBJECT_LOCK (self);
  self->model_info = info;
  GST_OBJECT_UNLOCK (self);
  g_object_notify (G_OBJECT (self), "model-info");

  g_free (model);
  g_free (labels);
  g_free (device);
  return TRUE;

  /* ERRORS */
no_model:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No model set"), ("the model property must name an ONNX file"));
    g_free (model);
    g_free (labels);
    g_free (device);
    return FALSE;
  }
motion_failed:
  {
    GST_ELEMENT_ERROR (self, LIBRARY, INIT,
        ("Could not start motion detection"), ("%s", err.message));
    lens_error_clear (&err);
    if (self->motion_ctx != NULL)
      lens_context_free (self->motion_ctx);
    self->motion_ctx = NULL;
    g_free (model);
    g_free (labels);
    g_free (device);
    return FALSE;
  }
load_failed:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load model \"%s\"", model), ("%s", err.message));
    lens_error_clear (&err);
    g_free (model);
    g_free (labels);
    g_free (device);
    return FALSE;
  }
}

/* Drops the frame waiting in the mailbox (counted as dropped-busy: the
 * engine never got to it) and the unattached result. */
static void
gst_lens_detect_drop_pending (GstLensDetect * self)
{
  g_mutex_lock (&self->lock);
  if (self->pending != NULL) {
    self->dropped_busy++;
    gst_lens_detect_job_free (self->pending);
    self->pending = NULL;
  }
  gst_lens_detect_result_free (self->ready);
  self->ready = NULL;
  g_mutex_unlock (&self->lock);
}

static gboolean
gst_lens_detect_stop (GstBaseTransform * trans)
{
  GstLensDetect *self = GST_LENS_DETECT (trans);
  GstStructure *info;

  GST_OBJECT_LOCK (self);
  info = self->model_info;
  self->model_info = NULL;
  GST_OBJECT_UNLOCK (self);
  if (info != NULL)
    gst_structure_free (info);

  if (self->worker != NULL) {
    g_mutex_lock (&self->lock);
    self->stopping = TRUE;
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
    /* the worker finishes the frame it runs, if any */
    g_thread_join (self->worker);
    self->worker = NULL;
  }
  gst_lens_detect_drop_pending (self);
  gst_lens_detect_job_free (self->spare);
  self->spare = NULL;
  if (self->detector != NULL) {
    model_cache_release (self->entry, self->detector);
    self->detector = NULL;
    self->entry = NULL;
  }
  if (self->motion != NULL) {
    lens_motion_free (self->motion);
    self->motion = NULL;
    /* after the engine: it was made on this context */
    lens_context_free (self->motion_ctx);
    self->motion_ctx = NULL;
  }
  return TRUE;
}

static gboolean
gst_lens_detect_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstLensDetect *self = GST_LENS_DETECT (trans);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_STOP:
      /* after a flush, a waiting frame and its results are stale */
      gst_lens_detect_drop_pending (self);
      break;
    case GST_EVENT_EOS:
      /* the last frames' messages go out before EOS does: at most the
       * frame being inferred and the one waiting */
      g_mutex_lock (&self->lock);
      while (self->worker != NULL && !self->stopping
          && (self->pending != NULL || self->busy))
        g_cond_wait (&self->cond, &self->lock);
      g_mutex_unlock (&self->lock);
      break;
    default:
      break;
  }

  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

static gboolean
gst_lens_detect_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstLensDetect *self = GST_LENS_DETECT (filter);

  /* the pre-processor adapts to a new frame size by itself; only the
   * pixel format is chosen here, once per caps */
  switch (GST_VIDEO_INFO_FORMAT (in_info)) {
    case GST_VIDEO_FORMAT_RGB:
      self->pixel_format = LENS_PIXEL_RGB;
      break;
    case GST_VIDEO_FORMAT_BGR:
      self->pixel_format = LENS_PIXEL_BGR;
      break;
    case GST_VIDEO_FORMAT_RGBx:
      self->pixel_format = LENS_PIXEL_RGBX;
      break;
    case GST_VIDEO_FORMAT_BGRx:
      self->pixel_format = LENS_PIXEL_BGRX;
      break;
    case GST_VIDEO_FORMAT_xRGB:
      self->pixel_format = LENS_PIXEL_XRGB;
      break;
    case GST_VIDEO_FORMAT_xBGR:
      self->pixel_format = LENS_PIXEL_XBGR;
      break;
    case GST_VIDEO_FORMAT_I420:
      self->pixel_format = LENS_PIXEL_I420;
      break;
    case GST_VIDEO_FORMAT_NV12:
      self->pixel_format = LENS_PIXEL_NV12;
      break;
    default:
      goto unsupported;
  }
  GST_DEBUG_OBJECT (self, "frames %dx%d %s", GST_VIDEO_INFO_WIDTH (in_info),
      GST_VIDEO_INFO_HEIGHT (in_info),
      GST_VIDEO_INFO_NAME (in_info));
  return TRUE;

  /* ERRORS */
unsupported:
  {
    GST_ERROR_OBJECT (self, "unsupported format %s",
        GST_VIDEO_INFO_NAME (in_info));
    return FALSE;
  }
}

/* Runs the detector on this frame, into @result. */
static GstFlowReturn
gst_lens_detect_infer_sync (GstLensDetect * self, GstBuffer * buf,
    GstVideoFrame * vframe, GstLensDetectResult * result)
{
  LensFrame frame;
  LensError err = LENS_ERROR_INIT;

  lens_frame_from_video_frame (&frame, vframe, self->pixel_format);
  result->pts = GST_BUFFER_PTS (buf);
  result->frame_width = frame.width;
  result->frame_height = frame.height;
  if (gst_lens_detect_run_engine (self, &frame, &result->res, &err)
      != LENS_OK)
    goto failed;

  g_mutex_lock (&self->lock);
  self->frames_in++;
  self->inferred++;
  g_mutex_unlock (&self->lock);
  return GST_FLOW_OK;

  /* ERRORS */
failed:
  {
    g_mutex_lock (&self->lock);
    self->frames_in++;
    self->failed_count++;
    g_mutex_unlock (&self->lock);
    gst_lens_detect_post_run_error (self, &err);
    lens_error_clear (&err);
    return GST_FLOW_ERROR;
  }
}

/* Hands this frame to the worker without waiting: it replaces the frame
 * still waiting in the mailbox, if any. */
static void
gst_lens_detect_infer_async (GstLensDetect * self, GstBuffer * buf,
    GstVideoFrame * vframe)
{
  GstLensDetectJob *job, *old;

  g_mutex_lock (&self->lock);
  job = self->spare;
  self->spare = NULL;
  g_mutex_unlock (&self->lock);
  if (job == NULL)
    job = g_new0 (GstLensDetectJob, 1);
  /* copied outside the lock: the worker may take the old frame meanwhile */
  gst_lens_detect_job_fill (job, vframe, self->pixel_format,
      GST_BUFFER_PTS (buf));

  g_mutex_lock (&self->lock);
  old = self->pending;
  self->pending = job;
  self->frames_in++;
  if (old != NULL) {
    self->dropped_busy++;
    if (self->spare == NULL)
      self->spare = old;
    else
      gst_lens_detect_job_free (old);
  }
  g_cond_signal (&self->cond);
  g_mutex_unlock (&self->lock);
}

static GstFlowReturn
gst_lens_detect_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstLensDetect *self = GST_LENS_DETECT (trans);
  GstVideoFilter *filter = GST_VIDEO_FILTER (trans);
  GstLensDetectResult *ready = NULL;
  GstVideoFrame vframe;
  GstFlowReturn ret = GST_FLOW_OK;
  gboolean infer;
  guint interval;

  if (G_UNLIKELY (!filter->negotiated))
    goto not_negotiated;

  GST_OBJECT_LOCK (self);
  interval = self->interval;
  GST_OBJECT_UNLOCK (self);
  infer = self->frame_index % interval == 0;
  self->frame_index++;

  if (!self->sync) {
    gboolean failed;

    g_mutex_lock (&self->lock);
    failed = self->failed;
    ready = self->ready;
    self->ready = NULL;
    if (!infer) {
      self->frames_in++;
      self->dropped_interval++;
    }
    g_mutex_unlock (&self->lock);
    if (failed)
      goto worker_failed;
    /* results from an earlier frame of another size would be misplaced */
    if (ready != NULL && ready->frame_width == GST_VIDEO_INFO_WIDTH
        (&filter->in_info)
        && ready->frame_height == GST_VIDEO_INFO_HEIGHT (&filter->in_info))
      gst_lens_detect_attach (self, buf, ready);
    gst_lens_detect_result_free (ready);
  } else if (!infer) {
    g_mutex_lock (&self->lock);
    self->frames_in++;
    self->dropped_interval++;
    g_mutex_unlock (&self->lock);
  }
  if (!infer)
    return GST_FLOW_OK;

  /* read only: the pixels are never written */
  if (!gst_video_frame_map (&vframe, &filter->in_info, buf, GST_MAP_READ))
    goto map_failed;
  if (self->sync) {
    GstLensDetectResult result = { 0 };

    ret = gst_lens_detect_infer_sync (self, buf, &vframe, &result);
    /* the mapping holds a reference: metas go on after it is gone */
    gst_video_frame_unmap (&vframe);
    if (ret == GST_FLOW_OK) {
      gst_lens_detect_attach (self, buf, &result);
      gst_lens_detect_post_detections (self, &result);
    }
    lens_detector_result_clear (&result.res);
  } else {
    gst_lens_detect_infer_async (self, buf, &vframe);
    gst_video_frame_unmap (&vframe);
  }
  return ret;

  /* ERRORS */
not_negotiated:
  {
    GST_ELEMENT_ERROR (self, CORE, NOT_IMPLEMENTED, (NULL),
        ("unknown format"));
    return GST_FLOW_NOT_NEGOTIATED;
  }
worker_failed:
  {
    /* the worker posted the error */
    gst_lens_detect_result_free (ready);
    return GST_FLOW_ERROR;
  }
map_failed:
  {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL),
        ("could not map the frame for reading"));
    return GST_FLOW_ERROR;
  }
}
