/* gstlens.h: the public API of the lens GStreamer plugin (libgstlens.so):
 * the feature-map meta that lensdetect attaches to inferred frames and
 * that consumers (lensoverlay, applications) read.
 *
 * A GstLensHeatmap is one detection scale's heatmaps: float grids of
 * width x height cells, each cell covering stride x stride pixels of the
 * model input. Heatmaps are refcounted, so a consumer keeps one past the
 * buffer's life with gst_lens_heatmap_ref () and no copy.
 *
 * The plugin is a module that applications do not link with: what a
 * consumer needs (finding the meta, keeping and releasing heatmaps) is
 * inline here and works once the plugin is loaded; the rest is for the
 * plugin's own elements.
 */
#ifndef __GST_LENS_H__
#define __GST_LENS_H__

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _GstLensHeatmap GstLensHeatmap;

struct _GstLensHeatmap
{
  gchar *tensor_name;           /* the feature map it was computed from */
  gint stride;                  /* model input pixels per cell */
  gint width, height;           /* cells */
  gfloat *activation;           /* width*height: channel mean of |x| */
  gfloat *score;                /* width*height: confidence in 0..1, or NULL
                                 * where the model family has none */
  gint n_channels;              /* channels kept (lensdetect's
                                 * feature-channels), 0: none */
  gfloat *channels;             /* n_channels*height*width, channel-major:
                                 * the feature map's first channels (motion:
                                 * the level's difference), or NULL */

  /*< private >*/
  gint ref_count;
};

#define GST_TYPE_LENS_HEATMAP (gst_lens_heatmap_get_type ())
GType gst_lens_heatmap_get_type (void);

/* A new heatmap with zeroed grids (score only when @with_score). */
GstLensHeatmap *gst_lens_heatmap_new (const gchar * tensor_name, gint stride,
    gint width, gint height, gboolean with_score);

static inline GstLensHeatmap *
gst_lens_heatmap_ref (GstLensHeatmap * heatmap)
{
  g_atomic_int_inc (&heatmap->ref_count);
  return heatmap;
}

static inline void
gst_lens_heatmap_unref (GstLensHeatmap * heatmap)
{
  if (!g_atomic_int_dec_and_test (&heatmap->ref_count))
    return;
  g_free (heatmap->tensor_name);
  g_free (heatmap->activation);
  g_free (heatmap->score);
  g_free (heatmap->channels);
  g_free (heatmap);
}

typedef struct _GstLensFeatureMapMeta GstLensFeatureMapMeta;

/**
 * GstLensFeatureMapMeta:
 * @meta: parent
 * @pts: timestamp of the frame the maps were computed on (with
 *   sync-inference=false that may be an earlier frame than the one
 *   carrying the meta)
 * @frame_width, @frame_height: size of that frame
 * @input_width, @input_height: model input size
 * @scale_x, @scale_y, @pad_x, @pad_y: where the frame landed in the model
 *   input: frame x = (input x - pad_x) / scale_x, y likewise
 * @inference_ms: time of the inference (upload to outputs on the host)
 * @model_name: what computed the maps: the model file's base name, or
 *   "motion" for the motion engine
 * @model_path: the model file (NULL for motion)
 * @model_sha256: SHA-256 of the model file, lowercase hex (NULL for
 *   motion)
 * @n_maps: number of heatmaps, finest scale first
 * @maps: the heatmaps (one reference each held by the meta)
 */
struct _GstLensFeatureMapMeta
{
  GstMeta meta;

  guint64 pts;
  gint frame_width, frame_height;
  gint input_width, input_height;
  gfloat scale_x, scale_y, pad_x, pad_y;
  gdouble inference_ms;
  gchar *model_name;
  gchar *model_path;
  gchar *model_sha256;
  guint n_maps;
  GstLensHeatmap **maps;
};

#define GST_LENS_FEATURE_MAP_META_API_NAME "GstLensFeatureMapMetaAPI"
#define GST_LENS_FEATURE_MAP_META_API_TYPE \
    (gst_lens_feature_map_meta_api_get_type ())
#define GST_LENS_FEATURE_MAP_META_INFO \
    (gst_lens_feature_map_meta_get_info ())

GType gst_lens_feature_map_meta_api_get_type (void);
const GstMetaInfo *gst_lens_feature_map_meta_get_info (void);

/* Adds an empty meta naming the model; the caller fills the geometry and
 * timing fields and adds maps. */
GstLensFeatureMapMeta *gst_buffer_add_lens_feature_map_meta (GstBuffer *
    buffer, const gchar * model_name, const gchar * model_path,
    const gchar * model_sha256);
/* Appends @heatmap, taking a new reference on it. */
void gst_lens_feature_map_meta_add_map (GstLensFeatureMapMeta * meta,
    GstLensHeatmap * heatmap);

/* The feature-map meta of @buffer, or NULL. The API type is found by
 * name, so this works outside the plugin too. */
static inline GstLensFeatureMapMeta *
gst_buffer_get_lens_feature_map_meta (GstBuffer * buffer)
{
  GType api = g_type_from_name (GST_LENS_FEATURE_MAP_META_API_NAME);

  if (api == 0)
    return NULL;
  return (GstLensFeatureMapMeta *) gst_buffer_get_meta (buffer, api);
}

G_END_DECLS

#endif /* __GST_LENS_H__ */
