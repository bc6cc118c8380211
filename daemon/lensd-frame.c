/* lensd-frame.c: LensdFrame, one inferred result with the video frame that
 * carried it: made from a buffer's lens metas (feature maps, regions of
 * interest), reference counting, the render cache, and the detections
 * JSON document of the HTTP API, MQTT and SSE. The image renderings
 * (JPEG, PNG) are lensd-render.c's, in the same cache.
 */
#include "lensd.h"

#include <math.h>
#include <string.h>

#include <gst/video/gstvideometa.h>

#define JSON_CACHE_KEY "json"

/* The lens detections of @buffer: the ROI metas lensdetect attached, each
 * with its "detection" parameter (ROIs of other elements are not ours). */
static void
lensd_frame_read_detections (LensdFrame *frame, GstBuffer *buffer)
{
  GArray *dets = g_array_new (FALSE, TRUE, sizeof (LensdDetection));
  gpointer state = NULL;
  GstMeta *meta;

  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    GstStructure *param =
        gst_video_region_of_interest_meta_get_param (roi, "detection");
    LensdDetection d = { 0 };
    const gchar *label;

    if (param == NULL)
      continue;
    if (!gst_structure_get_int (param, "class-id", &d.class_id))
      d.class_id = -1;
    if (!gst_structure_get_double (param, "confidence", &d.score))
      d.score = 0.0;
    label = gst_structure_get_string (param, "label");
    if (label == NULL)
      label = g_quark_to_string (roi->roi_type);
    d.label = g_strdup (label != NULL ? label : "");
    d.x = roi->x;
    d.y = roi->y;
    d.w = roi->w;
    d.h = roi->h;
    g_array_append_val (dets, d);
  }
  frame->n_detections = dets->len;
  frame->detections = (LensdDetection *) g_array_free (dets, FALSE);
}

LensdFrame *
lensd_frame_new_from_buffer (const gchar *stream, guint64 seq,
    GstBuffer *buffer, const GstVideoInfo *info)
{
  GstLensFeatureMapMeta *meta;
  LensdFrame *frame;

  g_return_val_if_fail (stream != NULL, NULL);
  g_return_val_if_fail (GST_IS_BUFFER (buffer), NULL);
  g_return_val_if_fail (info != NULL, NULL);

  meta = gst_buffer_get_lens_feature_map_meta (buffer);
  if (meta == NULL)
    return NULL;

  frame = g_new0 (LensdFrame, 1);
  frame->ref_count = 1;
  g_mutex_init (&frame->cache_lock);
  frame->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) g_bytes_unref);

  frame->stream = g_strdup (stream);
  frame->seq = seq;
  frame->pts = meta->pts;
  frame->timestamp_us = g_get_real_time ();
  /* the size the detections were computed at; the pixels' own size when
   * the meta lacks it */
  frame->width = meta->frame_width > 0 ? meta->frame_width :
      GST_VIDEO_INFO_WIDTH (info);
  frame->height = meta->frame_height > 0 ? meta->frame_height :
      GST_VIDEO_INFO_HEIGHT (info);
  frame->inference_ms = meta->inference_ms;
  frame->model_name = g_strdup (meta->model_name != NULL ? meta->model_name :
      "motion");
  frame->model_sha256 = g_strdup (meta->model_sha256);
  frame->input_width = meta->input_width;
  frame->input_height = meta->input_height;
  frame->scale_x = meta->scale_x;
  frame->scale_y = meta->scale_y;
  frame->pad_x = meta->pad_x;
  frame->pad_y = meta->pad_y;
  frame->n_maps = meta->n_maps;
  frame->maps = g_new0 (GstLensHeatmap *, MAX (meta->n_maps, 1));
  for (guint i = 0; i < meta->n_maps; i++)
    frame->maps[i] = gst_lens_heatmap_ref (meta->maps[i]);

  lensd_frame_read_detections (frame, buffer);

  /* our own copy of the pixels: a frame is kept for as long as anyone
   * renders it, which must never starve a decoder's fixed buffer pool */
  frame->buffer = gst_buffer_copy_deep (buffer);
  frame->info = *info;
  return frame;
}

LensdFrame *
lensd_frame_ref (LensdFrame *frame)
{
  g_return_val_if_fail (frame != NULL, NULL);

  g_atomic_int_inc (&frame->ref_count);
  return frame;
}

void
lensd_frame_unref (LensdFrame *frame)
{
  if (frame == NULL || !g_atomic_int_dec_and_test (&frame->ref_count))
    return;

  g_free (frame->stream);
  g_free (frame->model_name);
  g_free (frame->model_sha256);
  for (guint i = 0; i < frame->n_detections; i++)
    g_free (frame->detections[i].label);
  g_free (frame->detections);
  for (guint i = 0; i < frame->n_maps; i++)
    gst_lens_heatmap_unref (frame->maps[i]);
  g_free (frame->maps);
  gst_clear_buffer (&frame->buffer);
  g_hash_table_unref (frame->cache);
  g_mutex_clear (&frame->cache_lock);
  g_free (frame);
}

gchar *
lensd_format_timestamp (gint64 timestamp_us)
{
  gint64 seconds = timestamp_us / G_USEC_PER_SEC;
  gint ms = (gint) ((timestamp_us % G_USEC_PER_SEC) / 1000);
  GDateTime *dt;
  gchar *date, *text;

  if (ms < 0) {
    seconds--;
    ms += 1000;
  }
  dt = g_date_time_new_from_unix_utc (seconds);
  if (dt == NULL)
    return g_strdup ("1970-01-01T00:00:00.000Z");
  date = g_date_time_format (dt, "%Y-%m-%dT%H:%M:%S");
  text = g_strdup_printf ("%s.%03dZ", date, ms);
  g_free (date);
  g_date_time_unref (dt);
  return text;
}

static void
lensd_json_add_box (JsonBuilder *b, const gchar *name, gdouble x, gdouble y,
    gdouble w, gdouble h, gboolean integers)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  if (integers) {
    json_builder_set_member_name (b, "x");
    json_builder_add_int_value (b, (gint64) x);
    json_builder_set_member_name (b, "y");
    json_builder_add_int_value (b, (gint64) y);
    json_builder_set_member_name (b, "w");
    json_builder_add_int_value (b, (gint64) w);
    json_builder_set_member_name (b, "h");
    json_builder_add_int_value (b, (gint64) h);
  } else {
    json_builder_set_member_name (b, "x");
    json_builder_add_double_value (b, x);
    json_builder_set_member_name (b, "y");
    json_builder_add_double_value (b, y);
    json_builder_set_member_name (b, "w");
    json_builder_add_double_value (b, w);
    json_builder_set_member_name (b, "h");
    json_builder_add_double_value (b, h);
  }
  json_builder_end_object (b);
}

static GBytes *
lensd_frame_build_json (LensdFrame *frame)
{
  JsonBuilder *b = json_builder_new ();
  JsonGenerator *gen;
  JsonNode *root;
  gchar *text, *timestamp;
  gsize length;
  gdouble fw = MAX (frame->width, 1), fh = MAX (frame->height, 1);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "stream");
  json_builder_add_string_value (b, frame->stream);
  json_builder_set_member_name (b, "seq");
  json_builder_add_int_value (b, (gint64) frame->seq);
  json_builder_set_member_name (b, "pts");
  if (GST_CLOCK_TIME_IS_VALID (frame->pts))
    json_builder_add_int_value (b, (gint64) frame->pts);
  else
    json_builder_add_null_value (b);
  timestamp = lensd_format_timestamp (frame->timestamp_us);
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_string_value (b, timestamp);
  g_free (timestamp);

  json_builder_set_member_name (b, "frame");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, frame->width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, frame->height);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "model");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, frame->model_name);
  json_builder_set_member_name (b, "sha256");
  if (frame->model_sha256 != NULL)
    json_builder_add_string_value (b, frame->model_sha256);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);

  json_builder_set_member_name (b, "inference_ms");
  json_builder_add_double_value (b, frame->inference_ms);

  json_builder_set_member_name (b, "detections");
  json_builder_begin_array (b);
  for (guint i = 0; i < frame->n_detections; i++) {
    const LensdDetection *d = &frame->detections[i];

    json_builder_begin_object (b);
    json_builder_set_member_name (b, "class_id");
    json_builder_add_int_value (b, d->class_id);
    json_builder_set_member_name (b, "label");
    json_builder_add_string_value (b, d->label);
    json_builder_set_member_name (b, "score");
    json_builder_add_double_value (b, d->score);
    lensd_json_add_box (b, "box", d->x, d->y, d->w, d->h, TRUE);
    lensd_json_add_box (b, "box_norm", d->x / fw, d->y / fh, d->w / fw,
        d->h / fh, FALSE);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  gen = json_generator_new ();
  json_generator_set_root (gen, root);
  text = json_generator_to_data (gen, &length);
  json_node_unref (root);
  g_object_unref (gen);
  g_object_unref (b);
  return g_bytes_new_take (text, length);
}

/* Returns a new reference; the document is built once per frame. */
GBytes *
lensd_frame_json (LensdFrame *frame)
{
  GBytes *bytes;

  g_return_val_if_fail (frame != NULL, NULL);

  g_mutex_lock (&frame->cache_lock);
  bytes = g_hash_table_lookup (frame->cache, JSON_CACHE_KEY);
  if (bytes == NULL) {
    bytes = lensd_frame_build_json (frame);
    g_hash_table_insert (frame->cache, g_strdup (JSON_CACHE_KEY), bytes);
  }
  g_bytes_ref (bytes);
  g_mutex_unlock (&frame->cache_lock);
  return bytes;
}
