/* gstlensoverlay.c: the lensoverlay element: draws the detections
 * (GstVideoRegionOfInterestMeta: boxes, labels and scores) and one heatmap
 * of the GstLensFeatureMapMeta onto the frame, on the OpenCL device
 * (cl/overlay.c). It reads only the metas, so it works after any element
 * that attaches them. Frames without anything to draw pass untouched.
 */

/**
 * SECTION:element-lensoverlay
 * @title: lensoverlay
 *
 * Draws what lensdetect (or any element attaching the same metas) found:
 * a box per region of interest with a label and score in a built-in bitmap
 * font, and a heatmap blended over the frame through a colormap. The
 * heatmap is one level of the feature-map meta (a stride such as "8") or
 * all levels fused, showing the channel activation, the model's score or
 * the motion engine's differences.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=video.mp4 ! decodebin ! videoconvert ! \
 *     lensdetect model=yolov8n.onnx feature-maps=true ! \
 *     lensoverlay kind=score alpha=0.4 ! videoconvert ! autovideosink
 * ]|
 * |[
 * gst-launch-1.0 videotestsrc pattern=ball ! \
 *     lensdetect mode=motion feature-maps=true ! \
 *     lensoverlay kind=motion colormap=inferno ! videoconvert ! autovideosink
 * ]|
 */

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gst/video/gstvideometa.h>

#include "gstlens.h"
#include "gstlensoverlay.h"

GST_DEBUG_CATEGORY_STATIC (gst_lens_overlay_debug);
#define GST_CAT_DEFAULT gst_lens_overlay_debug

#define DEFAULT_LEVEL "fused"
#define DEFAULT_KIND GST_LENS_OVERLAY_KIND_ACTIVATION
#define DEFAULT_COLORMAP LENS_COLORMAP_TURBO
#define DEFAULT_ALPHA 0.4f
#define DEFAULT_SHOW_BOXES TRUE
#define DEFAULT_SHOW_LABELS TRUE
#define DEFAULT_DEVICE NULL

enum
{
  PROP_0,
  PROP_LEVEL,
  PROP_KIND,
  PROP_COLORMAP,
  PROP_ALPHA,
  PROP_SHOW_BOXES,
  PROP_SHOW_LABELS,
  PROP_DEVICE,
};

#define VIDEO_FORMATS "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, I420, NV12 }"

static GstStaticPadTemplate gst_lens_overlay_sink_template =
GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

static GstStaticPadTemplate gst_lens_overlay_src_template =
GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE (VIDEO_FORMATS)));

GType
gst_lens_overlay_kind_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {GST_LENS_OVERLAY_KIND_ACTIVATION, "Channel mean of |feature| (any "
          "feature-map meta)", "activation"},
    {GST_LENS_OVERLAY_KIND_SCORE, "The model's confidence (models that have "
          "one)", "score"},
    {GST_LENS_OVERLAY_KIND_MOTION, "The motion engine's differences "
          "(lensdetect mode=motion)", "motion"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLensOverlayKind", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gst_lens_overlay_colormap_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {LENS_COLORMAP_TURBO, "Rainbow from blue to red (turbo-like)", "turbo"},
    {LENS_COLORMAP_INFERNO, "Black, purple, orange to pale yellow "
          "(inferno-like)", "inferno"},
    {LENS_COLORMAP_GRAY, "Black to white", "gray"},
    {0, NULL, NULL}
  };

  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstLensOverlayColormap", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

#define gst_lens_overlay_parent_class parent_class
G_DEFINE_TYPE (GstLensOverlay, gst_lens_overlay, GST_TYPE_VIDEO_FILTER);

static void gst_lens_overlay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_lens_overlay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static void gst_lens_overlay_finalize (GObject * object);
static gboolean gst_lens_overlay_start (GstBaseTransform * trans);
static gboolean gst_lens_overlay_stop (GstBaseTransform * trans);
static GstFlowReturn gst_lens_overlay_transform_ip (GstBaseTransform * trans,
    GstBuffer * buf);
static gboolean gst_lens_overlay_set_info (GstVideoFilter * filter,
    GstCaps * incaps, GstVideoInfo * in_info, GstCaps * outcaps,
    GstVideoInfo * out_info);

static void
gst_lens_overlay_class_init (GstLensOverlayClass * klass)
{
  GObjectClass *gobject_class = (GObjectClass *) klass;
  GstElementClass *element_class = (GstElementClass *) klass;
  GstBaseTransformClass *trans_class = (GstBaseTransformClass *) klass;
  GstVideoFilterClass *filter_class = (GstVideoFilterClass *) klass;

  gobject_class->set_property = gst_lens_overlay_set_property;
  gobject_class->get_property = gst_lens_overlay_get_property;
  gobject_class->finalize = gst_lens_overlay_finalize;

  g_object_class_install_property (gobject_class, PROP_LEVEL,
      g_param_spec_string ("level", "Level",
          "Heatmap level to show: a stride in model input pixels (\"8\", "
          "\"16\", ...) or \"fused\" (every level, each normalised, the "
          "maximum on the finest grid)", DEFAULT_LEVEL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_KIND,
      g_param_spec_enum ("kind", "Kind", "What the heatmap shows: "
          "activation (normalised to the frame's maximum), score (0..1) or "
          "motion (the motion engine's maps only)",
          GST_TYPE_LENS_OVERLAY_KIND, DEFAULT_KIND,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_COLORMAP,
      g_param_spec_enum ("colormap", "Colormap",
          "Colours of the heatmap, from low to high",
          GST_TYPE_LENS_OVERLAY_COLORMAP, DEFAULT_COLORMAP,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_ALPHA,
      g_param_spec_float ("alpha", "Alpha",
          "Weight of the heatmap over the frame (0: no heatmap)", 0.0f, 1.0f,
          DEFAULT_ALPHA, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_SHOW_BOXES,
      g_param_spec_boolean ("show-boxes", "Show boxes",
          "Draw a box around each region of interest", DEFAULT_SHOW_BOXES,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_SHOW_LABELS,
      g_param_spec_boolean ("show-labels", "Show labels",
          "Write each region's label and score above its box",
          DEFAULT_SHOW_LABELS, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_DEVICE,
      g_param_spec_string ("device", "Device",
          "OpenCL device: auto, gpu, cpu, P:D (platform:device index) or a "
          "name substring (NULL: $LENS_DEVICE, else auto)", DEFAULT_DEVICE,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));

  gst_element_class_set_static_metadata (element_class,
      "Lens overlay", "Filter/Effect/Video",
      "Draws detection boxes, labels and scores and blends feature-map "
      "heatmaps onto frames, on an OpenCL device", "lens");
  gst_element_class_add_static_pad_template (element_class,
      &gst_lens_overlay_sink_template);
  gst_element_class_add_static_pad_template (element_class,
      &gst_lens_overlay_src_template);

  trans_class->start = GST_DEBUG_FUNCPTR (gst_lens_overlay_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_lens_overlay_stop);
  /* our own transform_ip, not GstVideoFilter's: frames with nothing to
   * draw are neither mapped nor copied */
  trans_class->transform_ip =
      GST_DEBUG_FUNCPTR (gst_lens_overlay_transform_ip);
  trans_class->transform_ip_on_passthrough = FALSE;
  filter_class->set_info = GST_DEBUG_FUNCPTR (gst_lens_overlay_set_info);

  gst_type_mark_as_plugin_api (GST_TYPE_LENS_OVERLAY_KIND, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_LENS_OVERLAY_COLORMAP, 0);
  GST_DEBUG_CATEGORY_INIT (gst_lens_overlay_debug, "lensoverlay", 0,
      "lens overlay");
}

static void
gst_lens_overlay_init (GstLensOverlay * self)
{
  self->level = g_strdup (DEFAULT_LEVEL);
  self->kind = DEFAULT_KIND;
  self->colormap = DEFAULT_COLORMAP;
  self->alpha = DEFAULT_ALPHA;
  self->show_boxes = DEFAULT_SHOW_BOXES;
  self->show_labels = DEFAULT_SHOW_LABELS;
  self->device = g_strdup (DEFAULT_DEVICE);
  self->prims = g_array_new (FALSE, FALSE, sizeof (LensOverlayPrim));
  self->fused = g_array_new (FALSE, TRUE, sizeof (gfloat));
}

static void
gst_lens_overlay_finalize (GObject * object)
{
  GstLensOverlay *self = GST_LENS_OVERLAY (object);

  g_free (self->level);
  g_free (self->device);
  g_array_unref (self->prims);
  g_array_unref (self->fused);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_lens_overlay_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstLensOverlay *self = GST_LENS_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LEVEL:
      g_free (self->level);
      self->level = g_value_dup_string (value);
      if (self->level == NULL)
        self->level = g_strdup (DEFAULT_LEVEL);
      break;
    case PROP_KIND:
      self->kind = g_value_get_enum (value);
      break;
    case PROP_COLORMAP:
      self->colormap = g_value_get_enum (value);
      break;
    case PROP_ALPHA:
      self->alpha = g_value_get_float (value);
      break;
    case PROP_SHOW_BOXES:
      self->show_boxes = g_value_get_boolean (value);
      break;
    case PROP_SHOW_LABELS:
      self->show_labels = g_value_get_boolean (value);
      break;
    case PROP_DEVICE:
      g_free (self->device);
      self->device = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_lens_overlay_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec)
{
  GstLensOverlay *self = GST_LENS_OVERLAY (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_LEVEL:
      g_value_set_string (value, self->level);
      break;
    case PROP_KIND:
      g_value_set_enum (value, self->kind);
      break;
    case PROP_COLORMAP:
      g_value_set_enum (value, self->colormap);
      break;
    case PROP_ALPHA:
      g_value_set_float (value, self->alpha);
      break;
    case PROP_SHOW_BOXES:
      g_value_set_boolean (value, self->show_boxes);
      break;
    case PROP_SHOW_LABELS:
      g_value_set_boolean (value, self->show_labels);
      break;
    case PROP_DEVICE:
      g_value_set_string (value, self->device);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_lens_overlay_start (GstBaseTransform * trans)
{
  GstLensOverlay *self = GST_LENS_OVERLAY (trans);
  LensError err = LENS_ERROR_INIT;
  gchar *device;

  GST_OBJECT_LOCK (self);
  device = g_strdup (self->device);
  GST_OBJECT_UNLOCK (self);

  if (lens_context_new (device, &self->ctx, &err) != LENS_OK)
    goto failed;
  if (lens_overlay_new (self->ctx, &self->overlay, &err) != LENS_OK)
    goto failed;
  GST_INFO_OBJECT (self, "drawing on %s",
      lens_context_get_device_name (self->ctx));
  g_free (device);
  return TRUE;

  /* ERRORS */
failed:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ_WRITE,
        ("Could not open the OpenCL device for drawing"),
        ("device %s: %s", device ? device : "(default)", err.message));
    lens_error_clear (&err);
    g_free (device);
    gst_lens_overlay_stop (trans);
    return FALSE;
  }
}

static gboolean
gst_lens_overlay_stop (GstBaseTransform * trans)
{
  GstLensOverlay *self = GST_LENS_OVERLAY (trans);

  if (self->frame) {
    clReleaseMemObject (self->frame);
    self->frame = NULL;
    self->frame_bytes = 0;
  }
  lens_overlay_free (self->overlay);
  self->overlay = NULL;
  lens_context_free (self->ctx);
  self->ctx = NULL;
  return TRUE;
}

static gboolean
gst_lens_overlay_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstLensOverlay *self = GST_LENS_OVERLAY (filter);

  /* the format picks the plane passes once; strides come with each
   * frame, which may carry its own GstVideoMeta */
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
      GST_ERROR_OBJECT (self, "unsupported format %s",
          GST_VIDEO_INFO_NAME (in_info));
      return FALSE;
  }
  GST_DEBUG_OBJECT (self, "frames %dx%d %s", GST_VIDEO_INFO_WIDTH (in_info),
      GST_VIDEO_INFO_HEIGHT (in_info), GST_VIDEO_INFO_NAME (in_info));
  return TRUE;
}

/* ---- what to draw --------------------------------------------------------- */

/* The grid of @map that @kind shows, or NULL. */
static const gfloat *
map_values (GstLensHeatmap * map, GstLensOverlayKind kind)
{
  if (kind == GST_LENS_OVERLAY_KIND_SCORE)
    return map->score;
  if (kind == GST_LENS_OVERLAY_KIND_MOTION)
    return map->score ? map->score : map->activation;
  return map->activation;
}

/* Scores are 0..1 already; activations have no scale, so each grid is
 * shown relative to its own maximum. */
static gfloat
map_max (const gfloat * v, gint n, GstLensOverlayKind kind)
{
  gfloat m = 0.0f;

  if (kind != GST_LENS_OVERLAY_KIND_ACTIVATION && v != NULL)
    return 1.0f;
  for (gint i = 0; i < n; i++)
    m = MAX (m, v[i]);
  return m;
}

/* Fills @hm from the feature-map meta as the properties ask; FALSE when
 * there is nothing to show. Fused: every level, each normalised, sampled
 * (nearest cell) on the finest grid, the maximum per cell. */
static gboolean
gst_lens_overlay_pick_heatmap (GstLensOverlay * self,
    GstLensFeatureMapMeta * fmeta, const gchar * level,
    GstLensOverlayKind kind, gint width, gint height,
    LensOverlayHeatmap * hm)
{
  gboolean is_motion = g_strcmp0 (fmeta->model_name, "motion") == 0;
  GstLensHeatmap *finest = NULL;

  if (fmeta->n_maps == 0 || (kind == GST_LENS_OVERLAY_KIND_MOTION
          && !is_motion))
    return FALSE;
  memset (hm, 0, sizeof (*hm));
  /* the meta's geometry is for the frame it was computed on; frames since
   * may have another size (a caps change) */
  hm->scale_x = fmeta->scale_x * (fmeta->frame_width > 0
      ? (gfloat) fmeta->frame_width / width : 1.0f);
  hm->scale_y = fmeta->scale_y * (fmeta->frame_height > 0
      ? (gfloat) fmeta->frame_height / height : 1.0f);
  hm->pad_x = fmeta->pad_x;
  hm->pad_y = fmeta->pad_y;

  if (g_ascii_strcasecmp (level, "fused") != 0) {
    gchar *end = NULL;
    glong stride = strtol (level, &end, 10);

    if (end == level || *end != '\0')
      return FALSE;
    for (guint i = 0; i < fmeta->n_maps; i++) {
      GstLensHeatmap *map = fmeta->maps[i];
      const gfloat *v = map_values (map, kind);

      if (map->stride != stride || v == NULL)
        continue;
      hm->grid = v;
      hm->width = map->width;
      hm->height = map->height;
      hm->stride = map->stride;
      hm->lo = 0.0f;
      hm->hi = map_max (v, map->width * map->height, kind);
      return hm->hi > 0.0f;
    }
    return FALSE;
  }

  for (guint i = 0; i < fmeta->n_maps; i++)
    if (map_values (fmeta->maps[i], kind) != NULL && (finest == NULL
            || fmeta->maps[i]->stride < finest->stride))
      finest = fmeta->maps[i];
  if (finest == NULL)
    return FALSE;
  g_array_set_size (self->fused, 0);
  g_array_set_size (self->fused, (guint) finest->width * finest->height);
  for (guint i = 0; i < fmeta->n_maps; i++) {
    GstLensHeatmap *map = fmeta->maps[i];
    const gfloat *v = map_values (map, kind);
    gfloat *out = (gfloat *) self->fused->data;
    gfloat m;

    if (v == NULL || map->stride <= 0)
      continue;
    m = map_max (v, map->width * map->height, kind);
    if (m <= 0.0f)
      continue;
    for (gint y = 0; y < finest->height; y++) {
      gint my = MIN ((gint) ((y + 0.5f) * finest->stride / map->stride),
          map->height - 1);

      for (gint x = 0; x < finest->width; x++) {
        gint mx = MIN ((gint) ((x + 0.5f) * finest->stride / map->stride),
            map->width - 1);
        gfloat *o = out + y * finest->width + x;

        *o = MAX (*o, v[my * map->width + mx] / m);
      }
    }
  }
  hm->grid = (const gfloat *) self->fused->data;
  hm->width = finest->width;
  hm->height = finest->height;
  hm->stride = finest->stride;
  hm->lo = 0.0f;
  hm->hi = 1.0f;
  return TRUE;
}

/* Boxes and labels of the region-of-interest metas into self->prims, in
 * @layout's colours. */
static void
gst_lens_overlay_collect_boxes (GstLensOverlay * self, GstBuffer * buf,
    const LensOverlayLayout * layout, gboolean boxes, gboolean labels)
{
  gpointer state = NULL;
  GstMeta *meta;
  gint thick = MAX (1, layout->height / 360);
  gint scale = MAX (1, layout->height / 360);
  gint cell_h = LENS_OVERLAY_GLYPH_H * scale;

  while ((meta = gst_buffer_iterate_meta_filtered (buf, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    GstStructure *det = gst_video_region_of_interest_meta_get_param (roi,
        "detection");
    gint class_id = 0;
    gdouble conf = -1.0;
    const gchar *label = NULL;
    guint32 rgb, colour;
    LensOverlayPrim p[64];
    gint n = 0;

    if (det != NULL) {
      gst_structure_get_int (det, "class-id", &class_id);
      gst_structure_get_double (det, "confidence", &conf);
      label = gst_structure_get_string (det, "label");
    }
    if (label == NULL && roi->roi_type != 0)
      label = g_quark_to_string (roi->roi_type);
    rgb = lens_overlay_class_colour (class_id);
    colour = lens_overlay_colour (layout, rgb);
    if (boxes)
      n += lens_overlay_box (p, roi->x, roi->y, roi->w, roi->h, thick,
          colour);
    if (labels && (label != NULL || conf >= 0.0)) {
      gchar *text = conf >= 0.0
          ? g_strdup_printf ("%s %.2f", label ? label : "", conf)
          : g_strdup (label);
      /* dark text on light colours, light on dark */
      guint luma = (((rgb >> 16) & 0xff) * 299 + ((rgb >> 8) & 0xff) * 587
          + (rgb & 0xff) * 114) / 1000;
      guint32 fg = lens_overlay_colour (layout, luma > 140 ? 0 : 0xffffff);
      /* above the box, or inside it at the top of the frame */
      gint ty = (gint) roi->y - cell_h >= 0 ? (gint) roi->y - cell_h
          : (gint) roi->y;

      n += lens_overlay_text (p + n, G_N_ELEMENTS (p) - n, roi->x, ty, text,
          scale, fg, (gint32) colour);
      g_free (text);
    }
    g_array_append_vals (self->prims, p, n);
  }
}

/* ---- drawing -------------------------------------------------------------- */

/* Bytes of plane @p that belong to the picture, from its first row to the
 * end of its last. */
static gsize
plane_span (GstVideoFrame * vf, LensPixelFormat format, gint p)
{
  const GstVideoInfo *info = &vf->info;
  gint rows = GST_VIDEO_FRAME_COMP_HEIGHT (vf, p == 2 ? 2 : p);
  gint row_bytes = GST_VIDEO_FRAME_COMP_WIDTH (vf, p == 2 ? 2 : p)
      * GST_VIDEO_FRAME_COMP_PSTRIDE (vf, p == 2 ? 2 : p);

  if (format == LENS_PIXEL_NV12 && p == 1)
    row_bytes = GST_VIDEO_FRAME_COMP_WIDTH (vf, 1) * 2;
  else if (GST_VIDEO_INFO_N_PLANES (info) == 1)
    row_bytes = GST_VIDEO_INFO_WIDTH (info) * GST_VIDEO_FRAME_COMP_PSTRIDE (vf,
        0);
  return (gsize) GST_VIDEO_FRAME_PLANE_STRIDE (vf, p) * (rows - 1)
      + row_bytes;
}

static GstFlowReturn
gst_lens_overlay_transform_ip (GstBaseTransform * trans, GstBuffer * buf)
{
  GstLensOverlay *self = GST_LENS_OVERLAY (trans);
  GstVideoFilter *filter = GST_VIDEO_FILTER (trans);
  GstLensFeatureMapMeta *fmeta;
  LensError err = LENS_ERROR_INIT;
  LensOverlayLayout layout;
  LensOverlayHeatmap hm;
  GstVideoFrame vf;
  gboolean heat = FALSE, boxes, labels;
  gchar *level;
  GstLensOverlayKind kind;
  LensColormap colormap;
  gfloat alpha;
  gint strides[3];
  gsize offsets[3], spans[3], size = 0;
  guint n_planes;
  cl_command_queue queue;
  cl_int rc;

  GST_OBJECT_LOCK (self);
  level = g_strdup (self->level);
  kind = self->kind;
  colormap = self->colormap;
  alpha = self->alpha;
  boxes = self->show_boxes;
  labels = self->show_labels;
  GST_OBJECT_UNLOCK (self);

  /* a layout with the caps' strides first, to pick the colours; the
   * frame's own strides replace them below */
  if (lens_overlay_layout_init (&layout, self->pixel_format,
          GST_VIDEO_INFO_WIDTH (&filter->in_info),
          GST_VIDEO_INFO_HEIGHT (&filter->in_info), NULL, NULL,
          &err) != LENS_OK)
    goto layout_failed;

  g_array_set_size (self->prims, 0);
  if (boxes || labels)
    gst_lens_overlay_collect_boxes (self, buf, &layout, boxes, labels);
  fmeta = (GstLensFeatureMapMeta *) gst_buffer_get_meta (buf,
      GST_LENS_FEATURE_MAP_META_API_TYPE);
  if (alpha > 0.0f && fmeta != NULL)
    heat = gst_lens_overlay_pick_heatmap (self, fmeta, level, kind,
        layout.width, layout.height, &hm);
  g_free (level);
  if (!heat && self->prims->len == 0)
    return GST_FLOW_OK;         /* nothing to draw: the pixels pass as is */

  if (!gst_video_frame_map (&vf, &filter->in_info, buf, GST_MAP_READWRITE))
    goto map_failed;
  n_planes = GST_VIDEO_FRAME_N_PLANES (&vf);
  for (guint p = 0; p < n_planes; p++) {
    strides[p] = GST_VIDEO_FRAME_PLANE_STRIDE (&vf, p);
    spans[p] = plane_span (&vf, self->pixel_format, p);
    offsets[p] = size;
    size += GST_ROUND_UP_64 (spans[p]);
  }
  if (lens_overlay_layout_init (&layout, self->pixel_format, layout.width,
          layout.height, strides, offsets, &err) != LENS_OK)
    goto draw_failed;
  if (self->frame == NULL || self->frame_bytes < size) {
    if (self->frame)
      clReleaseMemObject (self->frame);
    self->frame = clCreateBuffer (lens_context_get_cl_context (self->ctx),
        CL_MEM_READ_WRITE, size, NULL, &rc);
    self->frame_bytes = self->frame ? size : 0;
    if (rc != CL_SUCCESS) {
      lens_error_set (&err, LENS_ERROR_CL, "clCreateBuffer (frame, %"
          G_GSIZE_FORMAT " bytes): %s", size, lens_cl_error_name (rc));
      goto draw_failed;
    }
  }
  queue = lens_context_get_queue (self->ctx);
  /* the queue is in order: uploads, kernels, then the blocking reads */
  for (guint p = 0; p < n_planes; p++) {
    rc = clEnqueueWriteBuffer (queue, self->frame, CL_FALSE, offsets[p],
        spans[p], GST_VIDEO_FRAME_PLANE_DATA (&vf, p), 0, NULL, NULL);
    if (rc != CL_SUCCESS) {
      lens_error_set (&err, LENS_ERROR_CL, "clEnqueueWriteBuffer (plane %u):"
          " %s", p, lens_cl_error_name (rc));
      goto draw_failed;
    }
  }
  if (heat && lens_overlay_heatmap (self->overlay, self->frame, &layout, &hm,
          colormap, alpha, &err) != LENS_OK)
    goto draw_failed;
  if (self->prims->len > 0 && lens_overlay_draw (self->overlay, self->frame,
          &layout, (const LensOverlayPrim *) self->prims->data,
          (int) self->prims->len, &err) != LENS_OK)
    goto draw_failed;
  for (guint p = 0; p < n_planes; p++) {
    rc = clEnqueueReadBuffer (queue, self->frame, CL_TRUE, offsets[p],
        spans[p], GST_VIDEO_FRAME_PLANE_DATA (&vf, p), 0, NULL, NULL);
    if (rc != CL_SUCCESS) {
      lens_error_set (&err, LENS_ERROR_CL, "clEnqueueReadBuffer (plane %u): "
          "%s", p, lens_cl_error_name (rc));
      goto draw_failed;
    }
  }
  gst_video_frame_unmap (&vf);
  return GST_FLOW_OK;

  /* ERRORS */
layout_failed:
  {
    g_free (level);
    GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Cannot draw on this frame"),
        ("%s", err.message));
    lens_error_clear (&err);
    return GST_FLOW_ERROR;
  }
map_failed:
  {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, ("Could not map the frame"),
        (NULL));
    return GST_FLOW_ERROR;
  }
draw_failed:
  {
    /* a blocking read waits for everything before it; make sure nothing
     * still reads the frame memory before it is unmapped */
    clFinish (lens_context_get_queue (self->ctx));
    gst_video_frame_unmap (&vf);
    GST_ELEMENT_ERROR (self, RESOURCE, FAILED, ("Drawing failed"),
        ("%s", err.message));
    lens_error_clear (&err);
    return GST_FLOW_ERROR;
  }
}
