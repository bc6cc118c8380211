/* test-lensoverlay.c: the lensoverlay element through GstHarness: caps for
 * every format, drawing from hand-made metas where they say and nowhere
 * else, bit-identical passthrough without metas, and drawing after
 * lensdetect mode=motion. Links gstcheck (its own Check), not lens-check.
 */
#include <string.h>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <gst/video/gstvideometa.h>

#include "gstlens.h"
#include "lens-gst-test.h"

static const gchar *formats[] = {
  "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "I420", "NV12",
};

#define W 96
#define H 64

/* A frame of @format filled with mid grey (every byte 100). */
static GstBuffer *
grey_frame (const gchar * format, gint w, gint h, GstVideoInfo * info)
{
  GstBuffer *buf;

  gst_video_info_set_format (info, gst_video_format_from_string (format), w,
      h);
  buf = gst_buffer_new_allocate (NULL, info->size, NULL);
  gst_buffer_memset (buf, 0, 100, info->size);
  return buf;
}

static GstHarness *
overlay_harness (const gchar * launch, const gchar * format, gint w, gint h)
{
  GstHarness *h_ = gst_harness_new_parse (launch);
  gchar *caps = g_strdup_printf ("video/x-raw,format=%s,width=%d,height=%d,"
      "framerate=30/1", format, w, h);

  gst_harness_set_src_caps_str (h_, caps);
  g_free (caps);
  return h_;
}

static void
add_roi (GstBuffer * buf, gint x, gint y, gint w, gint h)
{
  GstVideoRegionOfInterestMeta *roi =
      gst_buffer_add_video_region_of_interest_meta (buf, "car", x, y, w, h);

  gst_video_region_of_interest_meta_add_param (roi,
      gst_structure_new ("detection", "label", G_TYPE_STRING, "car",
          "class-id", G_TYPE_INT, 2, "confidence", G_TYPE_DOUBLE, 0.9,
          NULL));
}

/* A feature-map meta (through the registered meta info, as an outside
 * producer would) with one 12x8 stride-8 map, hot in cell (@cx, @cy). The
 * frame is the model input (scale 1, no padding). */
static void
add_heatmap (GstBuffer * buf, gint cx, gint cy)
{
  const GstMetaInfo *info = gst_meta_get_info ("GstLensFeatureMapMeta");
  GstLensFeatureMapMeta *m;
  GstLensHeatmap *map;

  fail_unless (info != NULL, "expected the plugin to register the meta");
  m = (GstLensFeatureMapMeta *) gst_buffer_add_meta (buf, info, NULL);
  m->model_name = g_strdup ("test");
  m->frame_width = m->input_width = W;
  m->frame_height = m->input_height = H;
  m->scale_x = m->scale_y = 1.0f;
  m->pad_x = m->pad_y = 0.0f;
  map = g_new0 (GstLensHeatmap, 1);
  map->ref_count = 1;
  map->tensor_name = g_strdup ("p3");
  map->stride = 8;
  map->width = W / 8;
  map->height = H / 8;
  map->activation = g_new0 (gfloat, map->width * map->height);
  map->activation[cy * map->width + cx] = 5.0f;
  m->n_maps = 1;
  m->maps = g_new (GstLensHeatmap *, 1);
  m->maps[0] = map;
}

/* Whether any byte of pixel (x, y) (all its planes' samples) differs. */
static gboolean
pixel_changed (GstVideoFrame * a, GstVideoFrame * b, gint x, gint y)
{
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (a); p++) {
    gint comp[GST_VIDEO_MAX_COMPONENTS];
    gint sx, sy, ps, n;
    const guint8 *pa, *pb;

    gst_video_format_info_component (a->info.finfo, p, comp);
    sx = GST_VIDEO_FORMAT_INFO_W_SUB (a->info.finfo, comp[0]);
    sy = GST_VIDEO_FORMAT_INFO_H_SUB (a->info.finfo, comp[0]);
    ps = GST_VIDEO_FRAME_COMP_PSTRIDE (a, comp[0]);
    n = (GST_VIDEO_FRAME_N_PLANES (a) == 1) ? ps : (p == 1
        && GST_VIDEO_FRAME_FORMAT (a) == GST_VIDEO_FORMAT_NV12) ? 2 : 1;
    pa = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (a, p)
        + (y >> sy) * GST_VIDEO_FRAME_PLANE_STRIDE (a, p) + (x >> sx) * n;
    pb = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (b, p)
        + (y >> sy) * GST_VIDEO_FRAME_PLANE_STRIDE (b, p) + (x >> sx) * n;
    if (memcmp (pa, pb, n) != 0)
      return TRUE;
  }
  return FALSE;
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

/* ---- caps ---- */

GST_START_TEST (test_caps)
{
  const gchar *format = formats[__i__];
  GstHarness *h = overlay_harness ("lensoverlay", format, 33, 17);
  GstVideoInfo info;
  GstBuffer *out;
  GstCaps *caps;
  GstStructure *s;

  fail_unless_equals_int (gst_harness_push (h, grey_frame (format, 33, 17,
              &info)), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (out != NULL, "expected a %s frame out", format);
  caps = gst_pad_get_current_caps (h->sinkpad);
  s = gst_caps_get_structure (caps, 0);
  fail_unless_equals_string (gst_structure_get_string (s, "format"), format);
  gst_caps_unref (caps);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

/* ---- drawing ---- */

GST_START_TEST (test_draws_where_metas_say)
{
  const gchar *format = formats[__i__];
  GstHarness *h = overlay_harness ("lensoverlay alpha=0.6 level=8 "
      "colormap=inferno", format, W, H);
  GstVideoInfo info;
  GstBuffer *in = grey_frame (format, W, H, &info), *ref, *out;
  GstVideoFrame fin, fout;

  /* a box well inside, its label above it; heat in cell (9, 5): pixels
   * 72..79 x 40..47 */
  add_roi (in, 10, 20, 30, 20);
  add_heatmap (in, 9, 5);
  ref = gst_buffer_copy_deep (in);
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  out = gst_harness_pull (h);
  gst_video_frame_map (&fin, &info, ref, GST_MAP_READ);
  gst_video_frame_map (&fout, &info, out, GST_MAP_READ);
  /* the outline, the label and the hot cell */
  fail_unless (pixel_changed (&fin, &fout, 10, 20), "%s: expected the "
      "box's corner drawn", format);
  fail_unless (pixel_changed (&fin, &fout, 39, 30), "%s: expected the "
      "box's right edge drawn", format);
  fail_unless (pixel_changed (&fin, &fout, 12, 15), "%s: expected the "
      "label drawn above the box", format);
  fail_unless (pixel_changed (&fin, &fout, 76, 44), "%s: expected the "
      "heatmap's hot cell blended", format);
  gst_video_frame_unmap (&fin);
  gst_video_frame_unmap (&fout);
  gst_buffer_unref (ref);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_hot_cell_only)
{
  /* gray colormap: black at 0 (the grey below darkens evenly), white at
   * the hot cell: the hot cell ends brighter than anywhere else */
  GstHarness *h = overlay_harness ("lensoverlay alpha=1 level=8 "
      "colormap=gray show-boxes=false show-labels=false", "RGB", W, H);
  GstVideoInfo info;
  GstBuffer *in = grey_frame ("RGB", W, H, &info), *out;
  GstMapInfo map;
  gint stride = GST_VIDEO_INFO_PLANE_STRIDE (&info, 0);

  add_heatmap (in, 9, 5);
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  out = gst_harness_pull (h);
  gst_buffer_map (out, &map, GST_MAP_READ);
  /* bilinear: pixel centres sit 1/16 cell off the cell's centre */
  fail_unless (map.data[44 * stride + 76 * 3] > 200, "expected the hot "
      "cell near white, got %u", map.data[44 * stride + 76 * 3]);
  fail_unless_equals_int (map.data[4 * stride + 4 * 3], 0);
  fail_unless_equals_int (map.data[10 * stride + 20 * 3], 0);
  gst_buffer_unmap (out, &map);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
}

GST_END_TEST;

GST_START_TEST (test_nothing_to_draw)
{
  const gchar *format = formats[__i__];
  GstHarness *h = overlay_harness ("lensoverlay alpha=0 show-boxes=false "
      "show-labels=false", format, W, H);
  GstVideoInfo info;
  GstBuffer *in, *ref, *out;
  GstMapInfo map;
  GRand *rand = g_rand_new_with_seed (3);

  /* metas, but alpha 0 and no boxes: untouched */
  in = grey_frame (format, W, H, &info);
  gst_buffer_map (in, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = (guint8) g_rand_int_range (rand, 0, 256);
  gst_buffer_unmap (in, &map);
  add_roi (in, 10, 20, 30, 20);
  add_heatmap (in, 9, 5);
  ref = gst_buffer_copy_deep (in);
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (buffers_equal (ref, out), "%s: expected the frame "
      "bit-identical with alpha 0 and no boxes", format);
  gst_buffer_unref (ref);
  gst_buffer_unref (out);
  gst_harness_teardown (h);

  /* default properties, no metas: bit-identical too */
  h = overlay_harness ("lensoverlay", format, W, H);
  in = grey_frame (format, W, H, &info);
  gst_buffer_map (in, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = (guint8) g_rand_int_range (rand, 0, 256);
  gst_buffer_unmap (in, &map);
  ref = gst_buffer_copy_deep (in);
  fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
  out = gst_harness_pull (h);
  fail_unless (buffers_equal (ref, out), "%s: expected the frame "
      "bit-identical without metas", format);
  gst_buffer_unref (ref);
  gst_buffer_unref (out);
  gst_harness_teardown (h);
  g_rand_free (rand);
}

GST_END_TEST;

/* ---- after lensdetect ---- */

GST_START_TEST (test_after_motion)
{
  GRand *rand = g_rand_new_with_seed (7);
  GstHarness *h = overlay_harness ("lensdetect mode=motion "
      "sync-inference=true feature-maps=true ! lensoverlay kind=motion "
      "alpha=0.5", "RGB", 320, 240);
  GstVideoInfo info;
  guint drawn = 0, frames = 0;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, 320, 240);
  for (guint i = 0; i < 3; i++) {
    fail_unless_equals_int (gst_harness_push (h, lens_gst_test_motion_frame (rand, -1,
                i * GST_SECOND / 30)), GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (h));
  }
  for (guint i = 0; i < 10; i++) {
    GstBuffer *in = lens_gst_test_motion_frame (rand, 100 + 6 * i,
        (3 + i) * GST_SECOND / 30), *ref = gst_buffer_copy_deep (in), *out;
    GstVideoRegionOfInterestMeta *roi;
    GstVideoFrame fin, fout;

    fail_unless_equals_int (gst_harness_push (h, in), GST_FLOW_OK);
    out = gst_harness_pull (h);
    roi = gst_buffer_get_video_region_of_interest_meta (out);
    if (roi != NULL) {
      gst_video_frame_map (&fin, &info, ref, GST_MAP_READ);
      gst_video_frame_map (&fout, &info, out, GST_MAP_READ);
      fail_unless (pixel_changed (&fin, &fout, roi->x, roi->y + roi->h / 2),
          "expected the motion box's left edge drawn at %u,%u", roi->x,
          roi->y + roi->h / 2);
      /* the heatmap blends over the square too */
      fail_unless (pixel_changed (&fin, &fout, 100 + 6 * i + 16, 116),
          "expected the square's pixels blended with the motion heatmap");
      gst_video_frame_unmap (&fin);
      gst_video_frame_unmap (&fout);
      drawn++;
    }
    frames++;
    gst_buffer_unref (ref);
    gst_buffer_unref (out);
  }
  fail_unless (drawn >= 5, "expected the moving square drawn in most "
      "frames, got %u of %u", drawn, frames);
  gst_harness_teardown (h);
  g_rand_free (rand);
}

GST_END_TEST;

static Suite *
lensoverlay_suite (void)
{
  Suite *s = suite_create ("lensoverlay");
  TCase *tc;

  tc = tcase_create ("caps");
  tcase_add_loop_test (tc, test_caps, 0, G_N_ELEMENTS (formats));
  suite_add_tcase (s, tc);

  tc = tcase_create ("drawing");
  tcase_add_loop_test (tc, test_draws_where_metas_say, 0,
      G_N_ELEMENTS (formats));
  tcase_add_test (tc, test_hot_cell_only);
  tcase_add_loop_test (tc, test_nothing_to_draw, 0, G_N_ELEMENTS (formats));
  suite_add_tcase (s, tc);

  tc = tcase_create ("after-lensdetect");
  tcase_add_test (tc, test_after_motion);
  suite_add_tcase (s, tc);
  return s;
}

GST_CHECK_MAIN (lensoverlay);
