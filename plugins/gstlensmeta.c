/* gstlensmeta.c: the refcounted heatmap grids and the lens feature-map
 * meta (registration, init, free, and the copy transform that shares the
 * grids by reference). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <string.h>

#include <gst/video/video.h>

#include "gstlens.h"

/* the inline ref/unref of gstlens.h, as functions for the boxed type */
static GstLensHeatmap *
heatmap_copy (GstLensHeatmap * heatmap)
{
  return gst_lens_heatmap_ref (heatmap);
}

static void
heatmap_free (GstLensHeatmap * heatmap)
{
  gst_lens_heatmap_unref (heatmap);
}

G_DEFINE_BOXED_TYPE (GstLensHeatmap, gst_lens_heatmap, heatmap_copy,
    heatmap_free);

GstLensHeatmap *
gst_lens_heatmap_new (const gchar * tensor_name, gint stride, gint width,
    gint height, gboolean with_score)
{
  GstLensHeatmap *heatmap;
  gsize cells;

  g_return_val_if_fail (width > 0 && height > 0, NULL);

  cells = (gsize) width * height;
  heatmap = g_new0 (GstLensHeatmap, 1);
  heatmap->ref_count = 1;
  heatmap->tensor_name = g_strdup (tensor_name);
  heatmap->stride = stride;
  heatmap->width = width;
  heatmap->height = height;
  heatmap->activation = g_new0 (gfloat, cells);
  if (with_score)
    heatmap->score = g_new0 (gfloat, cells);
  return heatmap;
}

GType
gst_lens_feature_map_meta_api_get_type (void)
{
  static GType type = 0;
  /* the maps are in model-input cells placed by the frame geometry: an
   * element that resizes or rotates the frame must not carry them blindly */
  static const gchar *tags[] = { GST_META_TAG_VIDEO_STR,
    GST_META_TAG_VIDEO_SIZE_STR, GST_META_TAG_VIDEO_ORIENTATION_STR, NULL
  };

  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register (GST_LENS_FEATURE_MAP_META_API_NAME,
        tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gboolean
gst_lens_feature_map_meta_init (GstMeta * meta, gpointer params,
    GstBuffer * buffer)
{
  GstLensFeatureMapMeta *fmeta = (GstLensFeatureMapMeta *) meta;

  fmeta->pts = GST_CLOCK_TIME_NONE;
  fmeta->frame_width = fmeta->frame_height = 0;
  fmeta->input_width = fmeta->input_height = 0;
  fmeta->scale_x = fmeta->scale_y = 1.0f;
  fmeta->pad_x = fmeta->pad_y = 0.0f;
  fmeta->inference_ms = 0.0;
  fmeta->model_name = NULL;
  fmeta->model_path = NULL;
  fmeta->model_sha256 = NULL;
  fmeta->n_maps = 0;
  fmeta->maps = NULL;
  return TRUE;
}

static void
gst_lens_feature_map_meta_free (GstMeta * meta, GstBuffer * buffer)
{
  GstLensFeatureMapMeta *fmeta = (GstLensFeatureMapMeta *) meta;

  for (guint i = 0; i < fmeta->n_maps; i++)
    gst_lens_heatmap_unref (fmeta->maps[i]);
  g_free (fmeta->maps);
  g_free (fmeta->model_name);
  g_free (fmeta->model_path);
  g_free (fmeta->model_sha256);
}

static gboolean
gst_lens_feature_map_meta_transform (GstBuffer * dest, GstMeta * meta,
    GstBuffer * buffer, GQuark type, gpointer data)
{
  GstLensFeatureMapMeta *src = (GstLensFeatureMapMeta *) meta;
  GstLensFeatureMapMeta *dmeta;

  /* only plain copies: the grids stay valid for the same pixels */
  if (!GST_META_TRANSFORM_IS_COPY (type))
    return FALSE;

  dmeta = gst_buffer_add_lens_feature_map_meta (dest, src->model_name,
      src->model_path, src->model_sha256);
  if (dmeta == NULL)
    return FALSE;
  dmeta->pts = src->pts;
  dmeta->frame_width = src->frame_width;
  dmeta->frame_height = src->frame_height;
  dmeta->input_width = src->input_width;
  dmeta->input_height = src->input_height;
  dmeta->scale_x = src->scale_x;
  dmeta->scale_y = src->scale_y;
  dmeta->pad_x = src->pad_x;
  dmeta->pad_y = src->pad_y;
  dmeta->inference_ms = src->inference_ms;
  for (guint i = 0; i < src->n_maps; i++)
    gst_lens_feature_map_meta_add_map (dmeta, src->maps[i]);
  return TRUE;
}

const GstMetaInfo *
gst_lens_feature_map_meta_get_info (void)
{
  static const GstMetaInfo *info = NULL;

  if (g_once_init_enter ((GstMetaInfo **) & info)) {
    const GstMetaInfo *mi =
        gst_meta_register (GST_LENS_FEATURE_MAP_META_API_TYPE,
        "GstLensFeatureMapMeta", sizeof (GstLensFeatureMapMeta),
        gst_lens_feature_map_meta_init, gst_lens_feature_map_meta_free,
        gst_lens_feature_map_meta_transform);
    g_once_init_leave ((GstMetaInfo **) & info, (GstMetaInfo *) mi);
  }
  return info;
}

GstLensFeatureMapMeta *
gst_buffer_add_lens_feature_map_meta (GstBuffer * buffer,
    const gchar * model_name, const gchar * model_path,
    const gchar * model_sha256)
{
  GstLensFeatureMapMeta *meta;

  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);

  meta = (GstLensFeatureMapMeta *) gst_buffer_add_meta (buffer,
      GST_LENS_FEATURE_MAP_META_INFO, NULL);
  if (meta == NULL)
    return NULL;
  meta->model_name = g_strdup (model_name);
  meta->model_path = g_strdup (model_path);
  meta->model_sha256 = g_strdup (model_sha256);
  return meta;
}

void
gst_lens_feature_map_meta_add_map (GstLensFeatureMapMeta * meta,
    GstLensHeatmap * heatmap)
{
  g_return_if_fail (meta != NULL && heatmap != NULL);

  meta->maps = g_renew (GstLensHeatmap *, meta->maps, meta->n_maps + 1);
  meta->maps[meta->n_maps++] = gst_lens_heatmap_ref (heatmap);
}
