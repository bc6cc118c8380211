/* test-lensdetect.c: the lensdetect element through GstHarness: caps and
 * pixel passthrough for every format, detections on bus.jpg against
 * lens-detect, interval, the freshest-frame worker and its counters,
 * load errors, a resolution change mid-stream, model-info and the
 * feature channels.
 *
 * Links gstcheck (which carries its own Check), not lens-check. Tests with
 * models need ../shared; without it they are skipped with a message. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <gst/video/gstvideometa.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gstlens.h"

#include "lens-image.h"
#include "lens-gst-test.h"
#include "lens-shared.h"

static gchar *shared_dir;

static gchar *
model_path (const gchar * name)
{
  return g_build_filename (shared_dir, "models", name, NULL);
}

/* small and quick: caps, interval and resolution tests */
#define FAST_MODEL "FastestDet.onnx"
/* 640x640: several hundred ms per frame on the CPU device */
#define SLOW_MODEL "ultralytics/yolov8n_int8.onnx"

/* A harness around one lensdetect with a bus for its messages. */
static GstHarness *
detect_harness (const gchar * model, const gchar * extra, GstBus ** bus)
{
  gchar *path = model_path (model);
  gchar *desc = g_strdup_printf ("lensdetect name=det model=\"%s\" %s", path,
      extra ? extra : "");
  GstHarness *h = gst_harness_new_parse (desc);

  *bus = gst_bus_new ();
  gst_element_set_bus (h->element, *bus);
  g_free (desc);
  g_free (path);
  return h;
}

/* Pops every lens-detections structure posted so far (a new list of
 * copies). */
static GList *
pop_detections (GstBus * bus)
{
  GList *list = NULL;
  GstMessage *msg;

  while ((msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ELEMENT)) != NULL) {
    const GstStructure *s = gst_message_get_structure (msg);

    if (gst_structure_has_name (s, "lens-detections"))
      list = g_list_append (list, gst_structure_copy (s));
    gst_message_unref (msg);
  }
  return list;
}

static GstStructure *
get_stats (GstHarness * h)
{
  GstStructure *stats = NULL;
  /* gst_harness_new_parse wraps the element in a bin */
  GstElement *det = gst_bin_get_by_name (GST_BIN (h->element), "det");

  fail_unless (det != NULL, "expected the lensdetect in the harness");
  g_object_get (det, "stats", &stats, NULL);
  gst_object_unref (det);
  fail_unless (stats != NULL, "expected a stats structure");
  return stats;
}

static guint64
stat_get (const GstStructure * stats, const gchar * name)
{
  guint64 v = 0;

  fail_unless (gst_structure_get_uint64 (stats, name, &v),
      "stats lack %s", name);
  return v;
}

/* frames-in is the sum of the other counters, read in one go */
static void
assert_counters_add_up (const GstStructure * s)
{
  guint64 in = stat_get (s, "frames-in");
  guint64 sum = stat_get (s, "inferred") + stat_get (s, "failed")
      + stat_get (s, "dropped-busy") + stat_get (s, "dropped-interval")
      + stat_get (s, "pending");

  fail_unless (in == sum, "expected frames-in = inferred + failed + "
      "dropped-busy + dropped-interval + pending: %" G_GUINT64_FORMAT
      " != %" G_GUINT64_FORMAT " (%" GST_PTR_FORMAT ")", in, sum, s);
}

/* Waits until the worker has nothing pending (at most @seconds). */
static GstStructure *
wait_idle (GstHarness * h, gdouble seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * 1e6);

  while (TRUE) {
    GstStructure *s = get_stats (h);

    assert_counters_add_up (s);
    if (stat_get (s, "pending") == 0)
      return s;
    fail_unless (g_get_monotonic_time () < end,
        "the worker was still busy after %g s", seconds);
    gst_structure_free (s);
    g_usleep (10000);
  }
}

/* A buffer of @info's size with a deterministic byte pattern. */
static GstBuffer *
pattern_buffer (const GstVideoInfo * info, guint seed, GstClockTime pts)
{
  GstBuffer *buf = gst_buffer_new_allocate (NULL, info->size, NULL);
  GstMapInfo map;

  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = (guint8) ((i * 7 + seed * 31 + (i >> 9)) & 0xff);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = pts;
  return buf;
}

static gboolean
buffers_equal (GstBuffer * a, GstBuffer * b)
{
  GstMapInfo ma, mb;
  gboolean eq;

  gst_buffer_map (a, &ma, GST_MAP_READ);
  gst_buffer_map (b, &mb, GST_MAP_READ);
  eq = ma.size == mb.size && memcmp (ma.data, mb.data, ma.size) == 0;
  gst_buffer_unmap (a, &ma);
  gst_buffer_unmap (b, &mb);
  return eq;
}

/* ---- caps and passthrough ---- */

static const gchar *formats[] = {
  "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "I420", "NV12"
};

GST_START_TEST (test_caps_and_passthrough)
{
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    GstBus *bus;
    GstHarness *h = detect_harness (FAST_MODEL, "sync-inference=true", &bus);
    gchar *caps_str = g_strdup_printf ("video/x-raw,format=%s,width=65,"
        "height=49,framerate=0/1", formats[f]);
    GstCaps *caps = gst_caps_from_string (caps_str);
    GstCaps *src_caps;
    GstVideoInfo info;
    GstBuffer *in, *ref, *out;
    GList *msgs;
    gint fw = 0, fh = 0;

    gst_video_info_from_caps (&info, caps);
    gst_harness_set_src_caps (h, gst_caps_ref (caps));
    in = pattern_buffer (&info, f, 0);
    ref = gst_buffer_copy_deep (in);
    fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
    out = gst_harness_pull (h);
    fail_unless (out != NULL, "%s: expected an output buffer", formats[f]);
    fail_unless (buffers_equal (out, ref),
        "%s: expected the pixels to pass through bit-identical", formats[f]);

    src_caps = gst_pad_get_current_caps (h->sinkpad);
    fail_unless (src_caps != NULL && gst_caps_is_equal (src_caps, caps),
        "%s: expected the same caps downstream, got %" GST_PTR_FORMAT,
        formats[f], src_caps);

    msgs = pop_detections (bus);
    fail_unless_equals_int (g_list_length (msgs), 1);
    gst_structure_get_int (msgs->data, "frame-width", &fw);
    gst_structure_get_int (msgs->data, "frame-height", &fh);
    fail_unless (fw == 65 && fh == 49, "%s: expected a 65x49 frame in the "
        "message, got %dx%d", formats[f], fw, fh);

    g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
    gst_caps_unref (src_caps);
    gst_caps_unref (caps);
    gst_buffer_unref (out);
    gst_buffer_unref (ref);
    g_free (caps_str);
    gst_harness_teardown (h);
    gst_object_unref (bus);
  }
}

GST_END_TEST;

/* ---- bus.jpg against lens-detect ---- */

/* Decoded as lens-detect decodes it (libjpeg to RGB), so that both see
 * the same pixels. */
static LensImage
load_jpeg (const gchar * path)
{
  gchar *error = NULL;
  LensImage img;

  fail_unless (lens_image_load (path, &img, &error), "%s: %s", path, error);
  return img;
}

/* An RGB buffer (GStreamer's 4-byte aligned rows) of @img. */
static GstBuffer *
image_buffer (const LensImage * img, GstVideoInfo * info, GstClockTime pts)
{
  GstBuffer *buf;
  GstMapInfo map;
  gint stride;

  gst_video_info_set_format (info, GST_VIDEO_FORMAT_RGB, img->width,
      img->height);
  stride = GST_VIDEO_INFO_PLANE_STRIDE (info, 0);
  buf = gst_buffer_new_allocate (NULL, info->size, NULL);
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (gint y = 0; y < img->height; y++)
    memcpy (map.data + (gsize) y * stride, img->rgb + (gsize) y * img->width
        * 3, (gsize) img->width * 3);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = pts;
  return buf;
}

/* lens-detect's detections of @image with @model, as a JSON array. */
static JsonParser *
run_lens_detect (const gchar * model, const gchar * image, JsonArray ** dets)
{
  const gchar *argv[] = { LENS_DETECT_PATH, "-m", model, image, NULL };
  gchar *out = NULL, *errout = NULL;
  gint status = 0;
  GError *gerr = NULL;
  JsonParser *parser = json_parser_new ();

  fail_unless (g_spawn_sync (NULL, (gchar **) argv, NULL, 0, NULL, NULL,
          &out, &errout, &status, &gerr), "could not run %s: %s",
      LENS_DETECT_PATH, gerr ? gerr->message : "");
  fail_unless (g_spawn_check_wait_status (status, NULL),
      "lens-detect failed: %s", errout);
  fail_unless (json_parser_load_from_data (parser, out, -1, &gerr),
      "lens-detect printed no JSON: %s", gerr ? gerr->message : "");
  *dets = json_object_get_array_member (json_node_get_object
      (json_parser_get_root (parser)), "detections");
  g_free (out);
  g_free (errout);
  return parser;
}

GST_START_TEST (test_bus_matches_lens_detect)
{
  gchar *model = model_path (SLOW_MODEL);
  gchar *image = g_build_filename (shared_dir, "images", "bus.jpg", NULL);
  LensImage img = load_jpeg (image);
  GstBus *bus;
  GstHarness *h = detect_harness (SLOW_MODEL,
      "sync-inference=true feature-maps=true", &bus);
  GstVideoInfo info;
  GstBuffer *out;
  GList *msgs;
  const GValue *list;
  JsonArray *expected;
  JsonParser *parser;
  GstLensFeatureMapMeta *fmeta;
  guint n_roi = 0;
  gpointer state = NULL;
  GstMeta *meta;
  gchar *caps;
  guint n;

  caps = g_strdup_printf ("video/x-raw,format=RGB,width=%d,height=%d,"
      "framerate=30/1", img.width, img.height);
  gst_harness_set_src_caps_str (h, caps);
  fail_unless_equals_int (gst_harness_push (h, image_buffer (&img, &info,
              42 * GST_MSECOND)), GST_FLOW_OK);
  out = gst_harness_pull (h);

  parser = run_lens_detect (model, image, &expected);
  n = json_array_get_length (expected);
  fail_unless (n >= 5, "expected lens-detect to find the bus and persons, "
      "got %u detections", n);

  msgs = pop_detections (bus);
  fail_unless_equals_int (g_list_length (msgs), 1);
  fail_unless (gst_structure_has_field_typed (msgs->data, "pts",
          G_TYPE_UINT64), "expected a guint64 pts");
  list = gst_structure_get_value (msgs->data, "detections");
  fail_unless (GST_VALUE_HOLDS_LIST (list), "expected a list of detections");
  fail_unless (gst_value_list_get_size (list) == n, "expected %u detections "
      "as lens-detect, got %u", n, gst_value_list_get_size (list));
  for (guint i = 0; i < n; i++) {
    JsonObject *e = json_array_get_object_element (expected, i);
    JsonObject *box = json_object_get_object_member (e, "box");
    const GstStructure *d =
        gst_value_get_structure (gst_value_list_get_value (list, i));
    gdouble ex = json_object_get_double_member (box, "x");
    gdouble ey = json_object_get_double_member (box, "y");
    gdouble ew = json_object_get_double_member (box, "w");
    gdouble eh = json_object_get_double_member (box, "h");
    gint x, y, w, hh, class_id;
    gdouble score;
    const gchar *label = gst_structure_get_string (d, "label");

    fail_unless (gst_structure_has_name (d, "detection"));
    fail_unless (gst_structure_get_int (d, "x", &x)
        && gst_structure_get_int (d, "y", &y)
        && gst_structure_get_int (d, "w", &w)
        && gst_structure_get_int (d, "h", &hh)
        && gst_structure_get_int (d, "class-id", &class_id)
        && gst_structure_get_double (d, "score", &score),
        "detection %u lacks a field: %" GST_PTR_FORMAT, i, d);
    fail_unless (g_strcmp0 (label, json_object_get_string_member (e,
                "label")) == 0 && class_id == json_object_get_int_member (e,
            "class_id"), "detection %u: expected %s, got %s", i,
        json_object_get_string_member (e, "label"), label);
    /* lens-detect prints 4 decimals; boxes are clipped to the frame */
    fail_unless (fabs (score - json_object_get_double_member (e, "score"))
        < 1e-3, "detection %u: expected score %g, got %g", i,
        json_object_get_double_member (e, "score"), score);
    fail_unless (fabs (x - MAX (ex, 0)) <= 1 && fabs (y - MAX (ey, 0)) <= 1
        && fabs (x + w - MIN (ex + ew, img.width)) <= 1
        && fabs (y + hh - MIN (ey + eh, img.height)) <= 1,
        "detection %u (%s): expected box %.2f,%.2f %.2fx%.2f within 1 px, "
        "got %d,%d %dx%d", i, label, ex, ey, ew, eh, x, y, w, hh);
  }

  /* one region-of-interest meta per detection, on the same frame */
  while ((meta = gst_buffer_iterate_meta_filtered (out, &state,
              GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)) != NULL) {
    GstVideoRegionOfInterestMeta *roi = (GstVideoRegionOfInterestMeta *) meta;
    GstStructure *p = gst_video_region_of_interest_meta_get_param (roi,
        "detection");

    fail_unless (p != NULL, "expected a detection param structure");
    fail_unless (g_strcmp0 (g_quark_to_string (roi->roi_type),
            gst_structure_get_string (p, "label")) == 0,
        "expected roi_type to be the label quark");
    fail_unless (gst_structure_has_field (p, "class-id")
        && gst_structure_has_field (p, "confidence"));
    n_roi++;
  }
  fail_unless_equals_int (n_roi, n);

  fmeta = gst_buffer_get_lens_feature_map_meta (out);
  fail_unless (fmeta != NULL, "expected a feature-map meta");
  fail_unless (fmeta->n_maps == 3, "expected 3 scales, got %u",
      fmeta->n_maps);
  fail_unless (fmeta->maps[0]->stride == 8 && fmeta->maps[0]->width == 80
      && fmeta->maps[0]->height == 80, "expected an 80x80 grid at stride 8, "
      "got %dx%d at %d", fmeta->maps[0]->width, fmeta->maps[0]->height,
      fmeta->maps[0]->stride);
  fail_unless (g_strcmp0 (fmeta->model_name, "yolov8n_int8.onnx") == 0,
      "expected the model named, got %s", fmeta->model_name);
  fail_unless (fmeta->model_sha256 != NULL
      && strlen (fmeta->model_sha256) == 64, "expected a SHA-256");
  fail_unless (fmeta->pts == 42 * GST_MSECOND && fmeta->inference_ms > 0);
  {
    /* a copy of the buffer shares the grids */
    GstBuffer *copy = gst_buffer_copy (out);
    GstLensFeatureMapMeta *cmeta = gst_buffer_get_lens_feature_map_meta (copy);

    fail_unless (cmeta != NULL && cmeta->n_maps == fmeta->n_maps
        && cmeta->maps[0] == fmeta->maps[0],
        "expected the copy to reference the same heatmaps");
    gst_buffer_unref (copy);
  }

  g_object_unref (parser);
  g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  gst_object_unref (bus);
  g_free (caps);
  lens_image_clear (&img);
  g_free (image);
  g_free (model);
}

GST_END_TEST;

/* ---- interval ---- */

GST_START_TEST (test_interval)
{
  GstBus *bus;
  GstHarness *h = detect_harness (FAST_MODEL,
      "sync-inference=true interval=3", &bus);
  GstVideoInfo info;
  GstStructure *stats;
  GList *msgs, *l;
  guint k = 0;

  gst_harness_set_src_caps_str (h, "video/x-raw,format=BGRx,width=64,"
      "height=48,framerate=25/1");
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_BGRx, 64, 48);
  for (guint i = 0; i < 10; i++) {
    fail_unless_equals_int (gst_harness_push (h, pattern_buffer (&info, i,
                i * GST_SECOND)), GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (h));
  }
  msgs = pop_detections (bus);
  fail_unless_equals_int (g_list_length (msgs), 4);
  for (l = msgs; l != NULL; l = l->next, k++) {
    guint64 pts = 0;

    gst_structure_get_uint64 (l->data, "pts", &pts);
    fail_unless (pts == 3 * k * GST_SECOND, "expected inference %u on frame "
        "%u, got pts %" GST_TIME_FORMAT, k, 3 * k, GST_TIME_ARGS (pts));
  }
  stats = get_stats (h);
  fail_unless (stat_get (stats, "frames-in") == 10 && stat_get (stats,
          "inferred") == 4 && stat_get (stats, "dropped-interval") == 6,
      "expected 10 in, 4 inferred, 6 dropped by interval: %" GST_PTR_FORMAT,
      stats);
  assert_counters_add_up (stats);

  gst_structure_free (stats);
  g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
  gst_harness_teardown (h);
  gst_object_unref (bus);
}

GST_END_TEST;

/* ---- the freshest frame wins ---- */

GST_START_TEST (test_freshest_frame)
{
  gchar *image = g_build_filename (shared_dir, "images", "bus.jpg", NULL);
  LensImage img = load_jpeg (image);
  GstBus *bus;
  GstHarness *h;
  GstVideoInfo info;
  GstStructure *stats;
  GstBuffer *frame, *out;
  GList *msgs;
  gdouble inference_ms = 0, max_push_ms = 0, total_ms;
  gint64 t0;
  guint64 first_pts = 0;
  gchar *caps;

  /* one synchronous inference first: how long one takes here, and the
   * programs compiled before anything is timed */
  h = detect_harness (SLOW_MODEL, "sync-inference=true", &bus);
  caps = g_strdup_printf ("video/x-raw,format=RGB,width=%d,height=%d,"
      "framerate=30/1", img.width, img.height);
  gst_harness_set_src_caps_str (h, caps);
  frame = image_buffer (&img, &info, 0);
  fail_unless_equals_int (gst_harness_push (h, gst_buffer_ref (frame)),
      GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (h));
  msgs = pop_detections (bus);
  fail_unless_equals_int (g_list_length (msgs), 1);
  gst_structure_get_double (msgs->data, "inference-ms", &inference_ms);
  g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
  gst_harness_teardown (h);
  gst_object_unref (bus);

  h = detect_harness (SLOW_MODEL, "sync-inference=false", &bus);
  gst_harness_set_src_caps_str (h, caps);
  t0 = g_get_monotonic_time ();
  for (guint i = 0; i < 30; i++) {
    GstBuffer *b = gst_buffer_copy (frame);
    gint64 t = g_get_monotonic_time ();
    gdouble ms;

    GST_BUFFER_PTS (b) = (i + 1) * GST_SECOND / 30;
    fail_unless_equals_int (gst_harness_push (h, b), GST_FLOW_OK);
    ms = (g_get_monotonic_time () - t) / 1000.0;
    max_push_ms = MAX (max_push_ms, ms);
    gst_buffer_unref (gst_harness_pull (h));
  }
  total_ms = (g_get_monotonic_time () - t0) / 1000.0;
  g_print ("lensdetect: 30 async pushes in %.1f ms (longest %.2f ms); one "
      "inference %.1f ms\n", total_ms, max_push_ms, inference_ms);
  stats = get_stats (h);
  assert_counters_add_up (stats);
  fail_unless (stat_get (stats, "frames-in") == 30, "expected 30 frames in");
  /* not a timing race: the worker cannot have finished two inferences
   * before all 30 frames went through, unless pushes waited for it. Only
   * where an inference is slow (the CPU device): on a fast GPU copying 30
   * frames may take as long as two inferences. */
  if (inference_ms >= 50.0) {
    fail_unless (total_ms < 2 * inference_ms, "expected 30 pushes to take "
        "less than two inferences (%.1f ms), took %.1f ms (longest %.1f "
        "ms)", 2 * inference_ms, total_ms, max_push_ms);
    fail_unless (stat_get (stats, "inferred") < 30 && stat_get (stats,
            "dropped-busy") > 0, "expected frames dropped while busy: %"
        GST_PTR_FORMAT, stats);
  } else {
    g_print ("lensdetect: inference too fast here for the timing check\n");
  }
  gst_structure_free (stats);

  stats = wait_idle (h, 60.0);
  fail_unless (stat_get (stats, "frames-in") == 30
      && stat_get (stats, "dropped-interval") == 0
      && stat_get (stats, "inferred") >= 1
      && stat_get (stats, "inferred") + stat_get (stats, "dropped-busy") == 30,
      "expected every frame inferred or dropped busy: %" GST_PTR_FORMAT,
      stats);
  /* freshest: the last frame pushed waited in the mailbox and was run */
  msgs = pop_detections (bus);
  fail_unless_equals_int (g_list_length (msgs), stat_get (stats, "inferred"));
  gst_structure_get_uint64 (g_list_last (msgs)->data, "pts", &first_pts);
  fail_unless (first_pts == 30 * GST_SECOND / 30, "expected the last "
      "inference on the newest frame, got pts %" GST_TIME_FORMAT,
      GST_TIME_ARGS (first_pts));
  gst_structure_free (stats);
  g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);

  /* its results ride on the next frame, marked with their own pts */
  out = gst_buffer_copy (frame);
  GST_BUFFER_PTS (out) = 2 * GST_SECOND;
  fail_unless_equals_int (gst_harness_push (h, out), GST_FLOW_OK);
  out = gst_harness_pull (h);
  {
    GstVideoRegionOfInterestMeta *roi =
        gst_buffer_get_video_region_of_interest_meta_id (out, 0);
    GstStructure *p;
    guint64 pts = 0;

    fail_unless (roi != NULL, "expected the results on the next frame");
    p = gst_video_region_of_interest_meta_get_param (roi, "detection");
    fail_unless (p != NULL && gst_structure_get_uint64 (p, "pts", &pts)
        && pts == GST_SECOND, "expected the results marked with pts 1 s");
  }
  gst_buffer_unref (out);
  stats = wait_idle (h, 60.0);
  gst_structure_free (stats);

  gst_harness_teardown (h);
  gst_object_unref (bus);
  gst_buffer_unref (frame);
  g_free (caps);
  lens_image_clear (&img);
  g_free (image);
}

GST_END_TEST;

/* ---- errors ---- */

/* Brings a pipeline holding a lensdetect with @model to PAUSED: it must
 * fail, with an error naming @model. */
static void
check_load_error (const gchar * model)
{
  GstElement *pipeline = gst_pipeline_new (NULL);
  GstElement *det = gst_element_factory_make ("lensdetect", NULL);
  GstBus *bus = gst_pipeline_get_bus (GST_PIPELINE (pipeline));
  GstStateChangeReturn ret;
  GstMessage *msg;
  GError *gerr = NULL;
  gchar *debug = NULL;

  fail_unless (det != NULL, "expected the lensdetect element");
  g_object_set (det, "model", model, NULL);
  gst_bin_add (GST_BIN (pipeline), det);
  ret = gst_element_set_state (pipeline, GST_STATE_PAUSED);
  fail_unless_equals_int (ret, GST_STATE_CHANGE_FAILURE);
  msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL, "expected an error message");
  gst_message_parse_error (msg, &gerr, &debug);
  fail_unless (strstr (gerr->message, model) != NULL,
      "expected the error to name %s, got: %s", model, gerr->message);
  GST_INFO ("error: %s (%s)", gerr->message, debug);
  fail_unless_equals_int (gst_element_set_state (pipeline, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);

  g_error_free (gerr);
  g_free (debug);
  gst_message_unref (msg);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
}

GST_START_TEST (test_bad_model)
{
  gchar *dir = g_dir_make_tmp ("lensdetect-XXXXXX", NULL);
  gchar *missing = g_build_filename (dir, "missing.onnx", NULL);
  gchar *corrupt = g_build_filename (dir, "corrupt.onnx", NULL);
  static const gchar garbage[] = "\x08\x07\x12\x05this is not an ONNX model";

  fail_unless (g_file_set_contents (corrupt, garbage, sizeof garbage, NULL));
  check_load_error (missing);
  check_load_error (corrupt);
  g_unlink (corrupt);
  g_rmdir (dir);
  g_free (corrupt);
  g_free (missing);
  g_free (dir);
}

GST_END_TEST;

/* ---- resolution change ---- */

static void
push_size (GstHarness * h, GstVideoFormat format, gint w, gint hgt,
    GstClockTime pts)
{
  GstVideoInfo info;
  GstCaps *caps;
  GstBuffer *in, *ref, *out;

  gst_video_info_set_format (&info, format, w, hgt);
  caps = gst_video_info_to_caps (&info);
  gst_harness_set_src_caps (h, caps);
  in = pattern_buffer (&info, w, pts);
  ref = gst_buffer_copy_deep (in);
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (buffers_equal (out, ref), "expected %dx%d pixels untouched",
      w, hgt);
  gst_buffer_unref (out);
  gst_buffer_unref (ref);
}

static void
check_sizes (GList * msgs, const gint (*sizes)[2], guint n)
{
  fail_unless_equals_int (g_list_length (msgs), n);
  for (guint i = 0; i < n; i++, msgs = msgs->next) {
    gint w = 0, h = 0;

    gst_structure_get_int (msgs->data, "frame-width", &w);
    gst_structure_get_int (msgs->data, "frame-height", &h);
    fail_unless (w == sizes[i][0] && h == sizes[i][1], "inference %u: "
        "expected a %dx%d frame, got %dx%d", i, sizes[i][0], sizes[i][1],
        w, h);
  }
}

GST_START_TEST (test_resolution_change)
{
  static const gint sizes[][2] = { {64, 48}, {161, 97}, {32, 200} };
  const gchar *modes[] = { "sync-inference=true", "sync-inference=false" };

  for (guint m = 0; m < G_N_ELEMENTS (modes); m++) {
    GstBus *bus;
    GstHarness *h = detect_harness (FAST_MODEL, modes[m], &bus);
    GList *msgs;

    for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
      push_size (h, i == 1 ? GST_VIDEO_FORMAT_NV12 : GST_VIDEO_FORMAT_RGB,
          sizes[i][0], sizes[i][1], i * GST_SECOND);
      /* async: let each frame be inferred before the next size */
      if (m == 1)
        gst_structure_free (wait_idle (h, 60.0));
    }
    msgs = pop_detections (bus);
    check_sizes (msgs, sizes, G_N_ELEMENTS (sizes));
    g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
    gst_harness_teardown (h);
    gst_object_unref (bus);
  }
}

GST_END_TEST;

/* ---- motion ---- */

static guint
count_detections (GList * msgs, gint * last_x)
{
  guint n = 0;

  for (GList * l = msgs; l != NULL; l = l->next) {
    const GValue *list = gst_structure_get_value (l->data, "detections");

    for (guint i = 0; i < gst_value_list_get_size (list); i++) {
      const GstStructure *d =
          gst_value_get_structure (gst_value_list_get_value (list, i));

      fail_unless (g_strcmp0 (gst_structure_get_string (d, "label"),
              "motion") == 0, "expected detections labelled motion");
      gst_structure_get_int (d, "x", last_x);
      n++;
    }
  }
  return n;
}

GST_START_TEST (test_motion)
{
  GRand *rand = g_rand_new_with_seed (7);
  GstHarness *h = gst_harness_new_parse ("lensdetect name=det mode=motion "
      "sync-inference=true feature-maps=true");
  GstBus *bus = gst_bus_new ();
  GstBuffer *out;
  GstLensFeatureMapMeta *fmeta;
  GList *msgs;
  gint x = -1;
  guint n;

  gst_element_set_bus (h->element, bus);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGB,width=320,"
      "height=240,framerate=30/1");
  /* a static scene with sensor-level noise: nothing */
  for (guint i = 0; i < 10; i++) {
    fail_unless_equals_int (gst_harness_push (h, lens_gst_test_motion_frame (rand, -1,
                i * GST_SECOND / 30)), GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (h));
  }
  msgs = pop_detections (bus);
  fail_unless_equals_int (g_list_length (msgs), 10);
  n = count_detections (msgs, &x);
  fail_unless (n == 0, "expected no motion in a static scene, got %u", n);
  g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);

  /* a square moving right 6 px per frame: found, where it is */
  for (guint i = 0; i < 10; i++) {
    fail_unless_equals_int (gst_harness_push (h, lens_gst_test_motion_frame (rand,
                100 + 6 * i, (10 + i) * GST_SECOND / 30)), GST_FLOW_OK);
    out = gst_harness_pull (h);
    if (i < 9)
      gst_buffer_unref (out);
  }
  msgs = pop_detections (bus);
  n = count_detections (msgs, &x);
  fail_unless (n >= 5, "expected the moving square found in most frames, "
      "got %u detections in 10 frames", n);
  fail_unless (x >= 100 && x <= 100 + 6 * 9 + 32, "expected the last "
      "detection near the square, got x %d", x);
  fmeta = gst_buffer_get_lens_feature_map_meta (out);
  fail_unless (fmeta != NULL && fmeta->n_maps > 0
      && g_strcmp0 (fmeta->model_name, "motion") == 0,
      "expected motion heatmaps in the meta");
  g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  gst_object_unref (bus);
  g_rand_free (rand);
}

GST_END_TEST;

/* ---- sharing ---- */

GST_START_TEST (test_shared_model)
{
  GstBus *bus[2];
  GstHarness *h[2];
  GstVideoInfo info;
  GList *msgs;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, 64, 48);
  /* the second instance shares the first one's loaded model */
  for (guint i = 0; i < 2; i++) {
    h[i] = detect_harness (FAST_MODEL, "sync-inference=true", &bus[i]);
    gst_harness_set_src_caps_str (h[i], "video/x-raw,format=RGB,width=64,"
        "height=48,framerate=30/1");
  }
  for (guint i = 0; i < 2; i++) {
    fail_unless_equals_int (gst_harness_push (h[i], pattern_buffer (&info, i,
                0)), GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (h[i]));
  }
  /* the model lives on with the second instance */
  gst_harness_teardown (h[0]);
  fail_unless_equals_int (gst_harness_push (h[1], pattern_buffer (&info, 2,
              GST_SECOND)), GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (h[1]));
  msgs = pop_detections (bus[0]);
  fail_unless_equals_int (g_list_length (msgs), 1);
  g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
  msgs = pop_detections (bus[1]);
  fail_unless_equals_int (g_list_length (msgs), 2);
  g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
  gst_harness_teardown (h[1]);
  gst_object_unref (bus[0]);
  gst_object_unref (bus[1]);
}

GST_END_TEST;

/* Two instances of one model with different thresholds: they share the
 * loaded model, and each filters with its own conf-threshold. */
GST_START_TEST (test_shared_model_own_thresholds)
{
  gchar *image = g_build_filename (shared_dir, "images", "bus.jpg", NULL);
  LensImage img = load_jpeg (image);
  const gchar *props[2] = { "sync-inference=true conf-threshold=0.25",
    "sync-inference=true conf-threshold=0.6"
  };
  guint counts[2];
  GstVideoInfo info;
  GstHarness *h[2];
  GstBus *bus[2];
  gchar *caps;

  caps = g_strdup_printf ("video/x-raw,format=RGB,width=%d,height=%d,"
      "framerate=30/1", img.width, img.height);
  for (guint i = 0; i < 2; i++) {
    h[i] = detect_harness (SLOW_MODEL, props[i], &bus[i]);
    gst_harness_set_src_caps_str (h[i], caps);
  }
  for (guint i = 0; i < 2; i++) {
    GList *msgs;
    const GValue *list;

    fail_unless_equals_int (gst_harness_push (h[i], image_buffer (&img,
                &info, 0)), GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (h[i]));
    msgs = pop_detections (bus[i]);
    fail_unless_equals_int (g_list_length (msgs), 1);
    list = gst_structure_get_value (msgs->data, "detections");
    counts[i] = gst_value_list_get_size (list);
    for (guint k = 0; k < counts[i]; k++) {
      const GstStructure *d =
          gst_value_get_structure (gst_value_list_get_value (list, k));
      gdouble score = 0;

      gst_structure_get_double (d, "score", &score);
      fail_unless (score > (i == 0 ? 0.25 : 0.6), "instance %u: score %g "
          "is under its own threshold", i, score);
    }
    g_list_free_full (msgs, (GDestroyNotify) gst_structure_free);
  }
  /* bus.jpg has a person at 0.33: only the first instance keeps it */
  fail_unless (counts[0] > counts[1], "the 0.25 instance should report more "
      "than the 0.6 one (%u vs %u)", counts[0], counts[1]);
  for (guint i = 0; i < 2; i++) {
    gst_harness_teardown (h[i]);
    gst_object_unref (bus[i]);
  }
  lens_image_clear (&img);
  g_free (caps);
  g_free (image);
}

GST_END_TEST;

/* ---- model-info and feature-channels ---- */

static GstElement *
harness_detector (GstHarness * h)
{
  GstElement *det = gst_bin_get_by_name (GST_BIN (h->element), "det");

  fail_unless (det != NULL, "expected the lensdetect in the harness");
  return det;
}

static GstStructure *
get_model_info (GstElement * det)
{
  GstStructure *info = NULL;

  g_object_get (det, "model-info", &info, NULL);
  return info;
}

static void
assert_info_string (const GstStructure * info, const gchar * field,
    const gchar * expected)
{
  const gchar *v = gst_structure_get_string (info, field);

  fail_unless (v != NULL && *v != '\0', "model-info lacks %s: %"
      GST_PTR_FORMAT, field, info);
  if (expected != NULL)
    fail_unless (g_strcmp0 (v, expected) == 0, "expected model-info %s "
        "\"%s\", got \"%s\"", field, expected, v);
}

GST_START_TEST (test_model_info)
{
  gchar *path = model_path (FAST_MODEL);
  GstElement *det = gst_element_factory_make ("lensdetect", "det");
  GstHarness *h;
  GstBus *bus;
  GstStructure *info;
  const GValue *classes;
  gchar *contents, *sha, *labels, *extra;
  gsize length;
  gint iw = 0, ih = 0, nc = 0;

  /* nothing is loaded before the element starts */
  g_object_set (det, "model", path, NULL);
  info = get_model_info (det);
  fail_unless (info == NULL, "expected no model-info before start, got %"
      GST_PTR_FORMAT, info);
  gst_object_unref (det);

  /* FastestDet has no names in its metadata: the labels file's */
  labels = g_build_filename (shared_dir, "models", "coco.names", NULL);
  extra = g_strdup_printf ("sync-inference=true labels=\"%s\"", labels);
  h = detect_harness (FAST_MODEL, extra, &bus);
  det = harness_detector (h);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGB,width=64,"
      "height=48,framerate=30/1");
  info = get_model_info (det);
  fail_unless (info != NULL, "expected model-info once started");
  assert_info_string (info, "name", FAST_MODEL);
  assert_info_string (info, "path", path);
  assert_info_string (info, "family", "fastestdet");
  assert_info_string (info, "platform", NULL);
  assert_info_string (info, "device", NULL);
  fail_unless (g_file_get_contents (path, &contents, &length, NULL));
  sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
      (const guchar *) contents, length);
  assert_info_string (info, "sha256", sha);
  fail_unless (gst_structure_get_int (info, "input-width", &iw)
      && gst_structure_get_int (info, "input-height", &ih)
      && iw == 352 && ih == 352, "expected a 352x352 input, got %dx%d", iw,
      ih);
  fail_unless (gst_structure_get_int (info, "n-classes", &nc) && nc == 80,
      "expected 80 classes, got %d", nc);
  classes = gst_structure_get_value (info, "classes");
  fail_unless (classes != NULL && GST_VALUE_HOLDS_ARRAY (classes)
      && gst_value_array_get_size (classes) == 80,
      "expected an array of 80 class names");
  fail_unless (g_strcmp0 (g_value_get_string (gst_value_array_get_value
              (classes, 0)), "person") == 0, "expected class 0 \"person\"");
  gst_structure_free (info);

  /* gone again with the model */
  gst_harness_teardown (h);
  info = get_model_info (det);
  fail_unless (info == NULL, "expected no model-info after stop");
  gst_object_unref (det);
  gst_object_unref (bus);
  g_free (labels);
  g_free (extra);
  g_free (contents);
  g_free (sha);
  g_free (path);
}

GST_END_TEST;

GST_START_TEST (test_model_info_motion)
{
  GstHarness *h = gst_harness_new_parse ("lensdetect name=det mode=motion");
  GstElement *det = harness_detector (h);
  GstStructure *info;

  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGB,width=64,"
      "height=48,framerate=30/1");
  info = get_model_info (det);
  fail_unless (info != NULL, "expected model-info in motion mode");
  assert_info_string (info, "name", "motion");
  assert_info_string (info, "platform", NULL);
  assert_info_string (info, "device", NULL);
  fail_if (gst_structure_has_field (info, "sha256"),
      "expected no sha256 in motion mode");
  gst_structure_free (info);
  gst_harness_teardown (h);
  gst_object_unref (det);
}

GST_END_TEST;

/* Pushes one pattern frame through @h; the output, which carries a
 * feature-map meta. */
static GstBuffer *
push_for_maps (GstHarness * h, guint seed)
{
  GstVideoInfo info;
  GstBuffer *out;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, 160, 120);
  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGB,width=160,"
      "height=120,framerate=30/1");
  fail_unless_equals_int (gst_harness_push (h, pattern_buffer (&info, seed,
              0)), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL, "expected an output buffer");
  fail_unless (gst_buffer_get_lens_feature_map_meta (out) != NULL,
      "expected a feature-map meta");
  return out;
}

GST_START_TEST (test_feature_channels)
{
  GstBus *bus[3];
  GstHarness *all, *two, *none;
  GstBuffer *out_all, *out_two, *out_none;
  GstLensFeatureMapMeta *m_all, *m_two, *m_none;

  /* every channel: their mean |x| is the activation heatmap */
  all = detect_harness (FAST_MODEL, "sync-inference=true feature-maps=true "
      "feature-channels=4096", &bus[0]);
  /* the same model shared, with its own channel count */
  two = detect_harness (FAST_MODEL, "sync-inference=true feature-maps=true "
      "feature-channels=2", &bus[1]);
  none = detect_harness (FAST_MODEL, "sync-inference=true feature-maps=true",
      &bus[2]);
  out_all = push_for_maps (all, 3);
  out_two = push_for_maps (two, 3);
  out_none = push_for_maps (none, 3);
  m_all = gst_buffer_get_lens_feature_map_meta (out_all);
  m_two = gst_buffer_get_lens_feature_map_meta (out_two);
  m_none = gst_buffer_get_lens_feature_map_meta (out_none);
  fail_unless (m_all->n_maps > 0 && m_all->n_maps == m_two->n_maps
      && m_all->n_maps == m_none->n_maps, "expected the same maps");

  for (guint i = 0; i < m_all->n_maps; i++) {
    GstLensHeatmap *a = m_all->maps[i], *t = m_two->maps[i];
    gsize cells = (gsize) a->width * a->height;
    gdouble worst = 0;

    fail_unless (m_none->maps[i]->n_channels == 0
        && m_none->maps[i]->channels == NULL,
        "expected no channels with feature-channels=0");
    /* FastestDet's map is its [1,85,22,22] output */
    fail_unless (a->n_channels == 85 && a->channels != NULL,
        "map %u: expected all 85 channels, got %d", i, a->n_channels);
    fail_unless (t->n_channels == 2 && t->channels != NULL,
        "map %u: expected 2 channels, got %d", i, t->n_channels);
    fail_unless (memcmp (t->channels, a->channels,
            2 * cells * sizeof (gfloat)) == 0,
        "map %u: expected the first 2 channels of the full copy", i);
    for (gsize c = 0; c < cells; c++) {
      gdouble mean = 0;

      for (gint k = 0; k < a->n_channels; k++)
        mean += fabsf (a->channels[k * cells + c]);
      mean /= a->n_channels;
      worst = MAX (worst, fabs (mean - a->activation[c]) /
          MAX (1e-3, fabs (a->activation[c])));
    }
    fail_unless (worst < 1e-3, "map %u: expected the channels' mean |x| to "
        "be the activation heatmap, relative error %g", i, worst);
  }

  gst_buffer_unref (out_all);
  gst_buffer_unref (out_two);
  gst_buffer_unref (out_none);
  gst_harness_teardown (all);
  gst_harness_teardown (two);
  gst_harness_teardown (none);
  for (guint i = 0; i < 3; i++)
    gst_object_unref (bus[i]);
}

GST_END_TEST;

GST_START_TEST (test_feature_channels_motion)
{
  GRand *rand = g_rand_new_with_seed (11);
  GstHarness *h = gst_harness_new_parse ("lensdetect name=det mode=motion "
      "sync-inference=true feature-maps=true feature-channels=8");
  GstBuffer *out = NULL;
  GstLensFeatureMapMeta *fmeta;

  gst_harness_set_src_caps_str (h, "video/x-raw,format=RGB,width=320,"
      "height=240,framerate=30/1");
  for (guint i = 0; i < 4; i++) {
    if (out != NULL)
      gst_buffer_unref (out);
    fail_unless_equals_int (gst_harness_push (h,
            lens_gst_test_motion_frame (rand, 100 + 8 * i,
                i * GST_SECOND / 30)), GST_FLOW_OK);
    out = gst_harness_pull (h);
  }
  fmeta = gst_buffer_get_lens_feature_map_meta (out);
  fail_unless (fmeta != NULL && fmeta->n_maps > 0, "expected motion maps");
  for (guint i = 0; i < fmeta->n_maps; i++) {
    GstLensHeatmap *m = fmeta->maps[i];

    fail_unless (m->n_channels == 1 && m->channels != NULL,
        "level %u: expected one channel (the difference), got %d", i,
        m->n_channels);
    fail_unless (memcmp (m->channels, m->activation,
            (gsize) m->width * m->height * sizeof (gfloat)) == 0,
        "level %u: expected the channel to be the level's difference", i);
  }
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  g_rand_free (rand);
}

GST_END_TEST;

static Suite *
lensdetect_suite (void)
{
  Suite *s = suite_create ("lensdetect");
  TCase *tc_errors = tcase_create ("errors");
  TCase *tc_caps = tcase_create ("caps");
  TCase *tc_detect = tcase_create ("detections");
  TCase *tc_realtime = tcase_create ("realtime");

  TCase *tc_motion = tcase_create ("motion");

  tcase_add_test (tc_errors, test_bad_model);
  suite_add_tcase (s, tc_errors);
  /* no model: runs without ../shared */
  tcase_add_test (tc_motion, test_motion);
  tcase_add_test (tc_motion, test_model_info_motion);
  tcase_add_test (tc_motion, test_feature_channels_motion);
  suite_add_tcase (s, tc_motion);
  if (shared_dir == NULL) {
    g_print ("lensdetect: ../shared not found (set LENS_SHARED_DIR): "
        "model tests skipped\n");
    return s;
  }
  tcase_add_test (tc_caps, test_caps_and_passthrough);
  tcase_add_test (tc_caps, test_resolution_change);
  suite_add_tcase (s, tc_caps);
  tcase_add_test (tc_detect, test_bus_matches_lens_detect);
  tcase_add_test (tc_detect, test_interval);
  tcase_add_test (tc_detect, test_shared_model);
  tcase_add_test (tc_detect, test_shared_model_own_thresholds);
  tcase_add_test (tc_detect, test_model_info);
  tcase_add_test (tc_detect, test_feature_channels);
  suite_add_tcase (s, tc_detect);
  tcase_add_test (tc_realtime, test_freshest_frame);
  suite_add_tcase (s, tc_realtime);
  return s;
}

int
main (int argc, char **argv)
{
  SRunner *sr;
  int failed;

  gst_check_init (&argc, &argv);
  shared_dir = lens_check_shared_dir ();
  sr = srunner_create (lensdetect_suite ());
  /* one process: the OpenCL programs compile once for every test */
  srunner_set_fork_status (sr, CK_NOFORK);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  g_free (shared_dir);
  return failed == 0 ? 0 : 1;
}
