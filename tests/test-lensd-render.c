/* test-lensd-render.c: lensd's renderings of frames (daemon/lensd-render.c)
 * on frames built by hand: JPEG snapshots of every raw format at odd
 * sizes with boxes, labels and heatmap drawn where they belong, heatmap
 * PNGs mapped through the letterbox geometry (one level, fused, one pixel
 * per cell), the feature-channel grid, the errors, and the cache (one
 * encoding per rendering, shared between threads). */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <check.h>
#include <jpeglib.h>
#include <png.h>

#include "lens.h"
#include "lensd.h"

/* ---- frames made by hand -------------------------------------------------- */

/* A frame of @format filled with grey (every RGB byte, or Y, 100; chroma
 * 128), geometry: the model input is the frame (scale 1, no pad). */
static LensdFrame *
test_frame_new (GstVideoFormat format, gint width, gint height)
{
  LensdFrame *frame = g_new0 (LensdFrame, 1);
  GstVideoFrame vf;

  frame->ref_count = 1;
  g_mutex_init (&frame->cache_lock);
  frame->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      (GDestroyNotify) g_bytes_unref);
  frame->stream = g_strdup ("test");
  frame->seq = 1;
  frame->pts = GST_CLOCK_TIME_NONE;
  frame->width = width;
  frame->height = height;
  frame->model_name = g_strdup ("yolo-test");
  frame->input_width = width;
  frame->input_height = height;
  frame->scale_x = frame->scale_y = 1.0f;
  frame->maps = g_new0 (GstLensHeatmap *, 1);

  ck_assert (gst_video_info_set_format (&frame->info, format, width,
          height));
  /* as frames from a live stream carry it */
  frame->info.fps_n = 25;
  frame->info.fps_d = 1;
  frame->buffer = gst_buffer_new_allocate (NULL, frame->info.size, NULL);
  ck_assert (gst_video_frame_map (&vf, &frame->info, frame->buffer,
          GST_MAP_WRITE));
  for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES (&vf); p++) {
    gboolean chroma = GST_VIDEO_INFO_IS_YUV (&frame->info) && p > 0;

    memset (GST_VIDEO_FRAME_PLANE_DATA (&vf, p), chroma ? 128 : 100,
        (gsize) GST_VIDEO_FRAME_PLANE_STRIDE (&vf, p)
        * GST_VIDEO_FRAME_COMP_HEIGHT (&vf, chroma ? 1 : 0));
  }
  gst_video_frame_unmap (&vf);
  return frame;
}

/* A heatmap of zeros, as gst_lens_heatmap_new makes them (the plugin is
 * not linked here); gst_lens_heatmap_unref frees it. */
static GstLensHeatmap *
test_map_new (gint stride, gint width, gint height, gboolean with_score)
{
  GstLensHeatmap *map = g_new0 (GstLensHeatmap, 1);

  map->ref_count = 1;
  map->tensor_name = g_strdup_printf ("test-%d", stride);
  map->stride = stride;
  map->width = width;
  map->height = height;
  map->activation = g_new0 (gfloat, width * height);
  if (with_score)
    map->score = g_new0 (gfloat, width * height);
  return map;
}

/* takes @map */
static GstLensHeatmap *
test_frame_add_map (LensdFrame *frame, GstLensHeatmap *map)
{
  frame->maps = g_renew (GstLensHeatmap *, frame->maps, frame->n_maps + 1);
  frame->maps[frame->n_maps++] = map;
  return map;
}

static void
test_frame_add_detection (LensdFrame *frame, gint class_id,
    const gchar *label, gdouble score, gint x, gint y, gint w, gint h)
{
  LensdDetection *d;

  frame->detections = g_renew (LensdDetection, frame->detections,
      frame->n_detections + 1);
  d = &frame->detections[frame->n_detections++];
  d->class_id = class_id;
  d->label = g_strdup (label);
  d->score = score;
  d->x = x;
  d->y = y;
  d->w = w;
  d->h = h;
}

static void
test_frame_set_geometry (LensdFrame *frame, gfloat scale_x, gfloat scale_y,
    gfloat pad_x, gfloat pad_y)
{
  frame->scale_x = scale_x;
  frame->scale_y = scale_y;
  frame->pad_x = pad_x;
  frame->pad_y = pad_y;
}

/* ---- decoding ----------------------------------------------------------- */

typedef struct
{
  gint width, height;
  guint8 *rgb;                  /* packed */
} TestImage;

typedef struct
{
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
} TestJpegError;

static void
test_jpeg_error_exit (j_common_ptr cinfo)
{
  longjmp (((TestJpegError *) cinfo->err)->jump, 1);
}

/* The decoding half, which libjpeg may leave by longjmp. */
static gboolean
test_jpeg_decompress (struct jpeg_decompress_struct *cinfo,
    TestJpegError *jerr, GBytes *bytes, TestImage *img)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  if (setjmp (jerr->jump) != 0)
    return FALSE;
  jpeg_create_decompress (cinfo);
  jpeg_mem_src (cinfo, data, size);
  jpeg_read_header (cinfo, TRUE);
  cinfo->out_color_space = JCS_RGB;
  jpeg_start_decompress (cinfo);
  img->width = (gint) cinfo->output_width;
  img->height = (gint) cinfo->output_height;
  img->rgb = g_malloc ((gsize) img->width * img->height * 3);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = img->rgb + (gsize) cinfo->output_scanline * img->width * 3;

    jpeg_read_scanlines (cinfo, &row, 1);
  }
  jpeg_finish_decompress (cinfo);
  return TRUE;
}

static void
test_decode_jpeg (GBytes *bytes, TestImage *img)
{
  struct jpeg_decompress_struct cinfo;
  TestJpegError jerr;
  gboolean ok;

  memset (&cinfo, 0, sizeof (cinfo));
  memset (img, 0, sizeof (*img));
  cinfo.err = jpeg_std_error (&jerr.mgr);
  jerr.mgr.error_exit = test_jpeg_error_exit;
  ok = test_jpeg_decompress (&cinfo, &jerr, bytes, img);
  jpeg_destroy_decompress (&cinfo);
  ck_assert_msg (ok, "expected a JPEG that libjpeg decodes");
}

static void
test_decode_png (GBytes *bytes, TestImage *img)
{
  png_image png;
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);

  memset (&png, 0, sizeof (png));
  png.version = PNG_IMAGE_VERSION;
  ck_assert_msg (png_image_begin_read_from_memory (&png, data, size),
      "expected a PNG that libpng reads: %s", png.message);
  ck_assert_msg ((png.format & PNG_FORMAT_FLAG_COLOR)
      && !(png.format & PNG_FORMAT_FLAG_ALPHA),
      "expected an RGB PNG without alpha, got format %x", png.format);
  png.format = PNG_FORMAT_RGB;
  img->width = (gint) png.width;
  img->height = (gint) png.height;
  img->rgb = g_malloc (PNG_IMAGE_SIZE (png));
  ck_assert_msg (png_image_finish_read (&png, NULL, img->rgb, 0, NULL),
      "expected the PNG's pixels: %s", png.message);
}

static const guint8 *
test_pixel (const TestImage *img, gint x, gint y)
{
  return img->rgb + ((gsize) y * img->width + x) * 3;
}

/* The colormap index @px is nearest to (0..255): the value a heatmap
 * pixel shows. */
static gint
test_lut_index (const guint8 *lut, const guint8 *px)
{
  gint best = 0, best_d = G_MAXINT;

  for (gint i = 0; i < 256; i++) {
    gint d = 0;

    for (gint c = 0; c < 3; c++)
      d += (lut[i * 4 + c] - px[c]) * (lut[i * 4 + c] - px[c]);
    if (d < best_d)
      best = i, best_d = d;
  }
  return best;
}

static gboolean
test_pixel_is (const guint8 *px, const guint8 *rgb)
{
  return px[0] == rgb[0] && px[1] == rgb[1] && px[2] == rgb[2];
}

/* ---- snapshots ---------------------------------------------------------- */

static const GstVideoFormat snapshot_formats[] = {
  GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR, GST_VIDEO_FORMAT_RGBx,
  GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_xRGB, GST_VIDEO_FORMAT_xBGR,
  GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12,
};

static const gint snapshot_sizes[][2] = { {97, 61}, {1, 1}, {64, 48} };

START_TEST (test_snapshot_formats)
{
  GstVideoFormat format = snapshot_formats[_i];

  for (guint s = 0; s < G_N_ELEMENTS (snapshot_sizes); s++) {
    gint w = snapshot_sizes[s][0], h = snapshot_sizes[s][1];
    LensdFrame *frame = test_frame_new (format, w, h);
    /* Y 100 is RGB 98 in BT.601 limited range */
    gint grey = GST_VIDEO_INFO_IS_YUV (&frame->info) ? 98 : 100;
    GError *error = NULL;
    GBytes *jpeg = lensd_frame_snapshot_jpeg (frame, 0, &error);
    TestImage img;

    ck_assert_msg (jpeg != NULL, "%s %dx%d: expected a snapshot, got %s",
        gst_video_format_to_string (format), w, h,
        error ? error->message : "nothing");
    test_decode_jpeg (jpeg, &img);
    ck_assert_msg (img.width == w && img.height == h,
        "%s: expected a JPEG of %dx%d, got %dx%d",
        gst_video_format_to_string (format), w, h, img.width, img.height);
    for (gint i = 0; i < w * h * 3; i++)
      ck_assert_msg (ABS (img.rgb[i] - grey) <= 4, "%s %dx%d: expected grey"
          " %d everywhere, got %u at byte %d",
          gst_video_format_to_string (format), w, h, grey, img.rgb[i], i);
    g_free (img.rgb);
    g_bytes_unref (jpeg);
    lensd_frame_unref (frame);
  }
}
END_TEST

/* Box edges in the class colour after decoding (2 px lines at even
 * positions survive 4:2:0 chroma), the inside untouched, the label band
 * above the box in the class colour with light text. */
START_TEST (test_snapshot_boxes)
{
  struct
  {
    GstVideoFormat format;
    gint w, h;
    gint class_id;
    guint32 colour;
    gint x, y, bw, bh;
  } cases[] = {
    {GST_VIDEO_FORMAT_BGRx, 160, 720, 0, 0xff3838, 20, 100, 60, 200},
    {GST_VIDEO_FORMAT_I420, 97, 61, 1, 0x2c99a8, 10, 20, 40, 30},
    {GST_VIDEO_FORMAT_NV12, 97, 61, 21, 0x2c99a8, 30, 22, 50, 30},
  };

  for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
    LensdFrame *frame = test_frame_new (cases[k].format, cases[k].w,
        cases[k].h);
    GBytes *plain, *boxes;
    TestImage a, b;
    guint8 colour[3] = { cases[k].colour >> 16, (cases[k].colour >> 8) & 0xff,
      cases[k].colour & 0xff
    };
    gint ex = cases[k].x, ey = cases[k].y + cases[k].bh / 2;
    gint ix = cases[k].x + cases[k].bw / 2;
    gint band_y = cases[k].y - LENS_OVERLAY_GLYPH_H * MAX (1, cases[k].h
        / 360);
    gint coloured = 0, light = 0;

    test_frame_add_detection (frame, cases[k].class_id, "person", 0.87,
        cases[k].x, cases[k].y, cases[k].bw, cases[k].bh);
    plain = lensd_frame_snapshot_jpeg (frame, 0, NULL);
    boxes = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_BOXES, NULL);
    ck_assert (plain != NULL && boxes != NULL);
    ck_assert_msg (!g_bytes_equal (plain, boxes),
        "expected boxes to change the snapshot");
    test_decode_jpeg (plain, &a);
    test_decode_jpeg (boxes, &b);

    /* the left and right edges, 2 px wide */
    for (gint dx = 0; dx < 2; dx++) {
      const gint xs[2] = { ex + dx, cases[k].x + cases[k].bw - 1 - dx };

      for (gint e = 0; e < 2; e++) {
        const guint8 *p = test_pixel (&b, xs[e], ey);

        for (gint c = 0; c < 3; c++)
          ck_assert_msg (ABS (p[c] - colour[c]) <= 40, "case %u: expected "
              "the box colour %06x at %d,%d, got %02x%02x%02x", k,
              cases[k].colour, xs[e], ey, p[0], p[1], p[2]);
      }
    }
    for (gint c = 0; c < 3; c++)
      ck_assert_msg (ABS (test_pixel (&b, ix, ey)[c]
              - test_pixel (&a, ix, ey)[c]) <= 4,
          "case %u: expected the box's inside untouched at %d,%d", k, ix,
          ey);
    /* the label above the box: its colour as background, white glyphs
     * (the colours' luma is below 140) */
    for (gint y = band_y; y < cases[k].y; y++)
      for (gint x = cases[k].x; x < cases[k].x + 30 && x < b.width; x++) {
        const guint8 *p = test_pixel (&b, x, y);
        gint d = 0;

        for (gint c = 0; c < 3; c++)
          d = MAX (d, ABS (p[c] - colour[c]));
        coloured += d <= 48;
        light += p[0] > 200 && p[1] > 200 && p[2] > 200;
      }
    ck_assert_msg (coloured > 30 && light > 5, "case %u: expected the label"
        " band in the box colour with light text, got %d coloured and %d "
        "light pixels", k, coloured, light);

    g_free (a.rgb);
    g_free (b.rgb);
    g_bytes_unref (plain);
    g_bytes_unref (boxes);
    lensd_frame_unref (frame);
  }
}
END_TEST

/* Boxes are in the inferred frame's pixels; pixels of another size (the
 * caps changed since) get them scaled. */
START_TEST (test_snapshot_scaled_boxes)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_I420, 97, 61);
  GBytes *jpeg;
  TestImage img;
  const guint8 *edge, *old_edge;

  frame->width = 194;
  frame->height = 122;
  test_frame_add_detection (frame, 1, "dog", 0.5, 20, 40, 80, 60);
  jpeg = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_BOXES, NULL);
  ck_assert (jpeg != NULL);
  test_decode_jpeg (jpeg, &img);
  ck_assert_msg (img.width == 97 && img.height == 61,
      "expected the pixels' own size, got %dx%d", img.width, img.height);
  /* the left edge at x 10..11 of the pixels, not at 20 */
  edge = test_pixel (&img, 10, 35);
  old_edge = test_pixel (&img, 20, 35);
  ck_assert_msg (ABS (edge[0] - 0x2c) <= 40 && ABS (edge[1] - 0x99) <= 40
      && ABS (edge[2] - 0xa8) <= 40, "expected the box colour 2c99a8 at "
      "10,35, got %02x%02x%02x", edge[0], edge[1], edge[2]);
  ck_assert_msg (ABS (old_edge[0] - 98) <= 6 && ABS (old_edge[1] - 98) <= 6,
      "expected grey at 20,35, where the unscaled box would be");
  g_free (img.rgb);
  g_bytes_unref (jpeg);
  lensd_frame_unref (frame);
}
END_TEST

/* The finest level's score blended over the frame: red-ish over the hot
 * cell, blue-ish far from it; an activation-only map spans its range. */
START_TEST (test_snapshot_heatmap)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_RGB, 97, 61);
  GstLensHeatmap *fine = test_frame_add_map (frame, test_map_new (8, 13, 8,
          TRUE));
  GstLensHeatmap *coarse = test_frame_add_map (frame, test_map_new (16, 7, 4,
          TRUE));
  GBytes *jpeg;
  TestImage img;
  const guint8 *hot, *cold;

  fine->score[4 * 13 + 3] = 1.0f;
  /* the coarse level is not the one drawn */
  for (gint i = 0; i < 7 * 4; i++)
    coarse->score[i] = 1.0f;
  jpeg = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_HEATMAP, NULL);
  ck_assert (jpeg != NULL);
  test_decode_jpeg (jpeg, &img);
  hot = test_pixel (&img, 28, 36);
  cold = test_pixel (&img, 90, 5);
  ck_assert_msg (hot[0] > hot[1] + 30 && hot[0] > hot[2] + 30,
      "expected red over the hot cell, got %u,%u,%u", hot[0], hot[1], hot[2]);
  /* turbo's bottom, 48,18,59, at 0.45 over grey 100: 77,63,82 */
  ck_assert_msg (cold[2] > cold[1] + 8 && cold[0] < 90,
      "expected dark blue far from it, got %u,%u,%u", cold[0], cold[1],
      cold[2]);
  g_free (img.rgb);
  g_bytes_unref (jpeg);
  lensd_frame_unref (frame);
}
END_TEST

/* ---- heatmap PNGs ------------------------------------------------------- */

/* A 97x61 frame whose 10x9 stride-8 activation has one hot cell (3, 4),
 * placed by a geometry with scale and pad on both axes. */
static LensdFrame *
test_letterboxed_frame (void)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_I420, 97, 61);
  GstLensHeatmap *map = test_frame_add_map (frame, test_map_new (8, 10, 9,
          FALSE));

  test_frame_set_geometry (frame, 0.5f, 0.75f, 6.0f, 10.0f);
  frame->input_width = 80;
  frame->input_height = 72;
  for (gint i = 0; i < 10 * 9; i++)
    map->activation[i] = 1.0f;
  map->activation[4 * 10 + 3] = 5.0f;
  return frame;
}

START_TEST (test_heatmap_letterbox)
{
  LensdFrame *frame = test_letterboxed_frame ();
  GError *error = NULL;
  GBytes *png = lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_ACTIVATION,
      FALSE, &error);
  guint8 lut[256 * 4];
  TestImage img;
  gint best = -1, bx = -1, by = -1;

  ck_assert_msg (png != NULL, "expected a heatmap, got %s",
      error ? error->message : "nothing");
  lens_overlay_colormap_lut (LENS_COLORMAP_TURBO, FALSE, lut);
  test_decode_png (png, &img);
  ck_assert_msg (img.width == 97 && img.height == 61,
      "expected the frame's size 97x61, got %dx%d", img.width, img.height);
  for (gint y = 0; y < img.height; y++)
    for (gint x = 0; x < img.width; x++) {
      gint v = test_lut_index (lut, test_pixel (&img, x, y));
      /* the model input point this pixel's centre is at */
      gfloat ix = (x + 0.5f) * 0.5f + 6.0f, iy = (y + 0.5f) * 0.75f + 10.0f;

      if (v > best)
        best = v, bx = x, by = y;
      /* bilinear between cell centres: only within one cell of the hot
       * cell's centre (28, 36) is anything above the minimum */
      if (fabsf (ix - 28.0f) >= 8.0f || fabsf (iy - 36.0f) >= 8.0f)
        ck_assert_msg (test_pixel_is (test_pixel (&img, x, y), lut),
            "expected the colormap's bottom at %d,%d (input %.1f,%.1f), "
            "got index %d", x, y, ix, iy, v);
    }
  /* the hot cell's centre, input (28, 36), is frame ((28 - 6) / 0.5,
   * (36 - 10) / 0.75) = (44, 34.7) */
  ck_assert_msg (best >= 240, "expected the hot cell near the top of the "
      "colormap, got index %d", best);
  ck_assert_msg (fabsf (bx + 0.5f - 44.0f) <= 1.0f
      && fabsf (by + 0.5f - 34.67f) <= 1.0f,
      "expected the hottest pixel at 44,34.7, got %d,%d", bx, by);
  g_free (img.rgb);
  g_bytes_unref (png);
  lensd_frame_unref (frame);
}
END_TEST

START_TEST (test_heatmap_grid_scale)
{
  LensdFrame *frame = test_letterboxed_frame ();
  GBytes *png = lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_ACTIVATION,
      TRUE, NULL);
  guint8 lut[256 * 4];
  TestImage img;

  ck_assert (png != NULL);
  lens_overlay_colormap_lut (LENS_COLORMAP_TURBO, FALSE, lut);
  test_decode_png (png, &img);
  ck_assert_msg (img.width == 10 && img.height == 9,
      "expected one pixel per cell, 10x9, got %dx%d", img.width, img.height);
  for (gint y = 0; y < 9; y++)
    for (gint x = 0; x < 10; x++) {
      gboolean hot = x == 3 && y == 4;

      ck_assert_msg (test_pixel_is (test_pixel (&img, x, y),
              lut + (hot ? 255 * 4 : 0)), "expected the colormap's %s at "
          "cell %d,%d", hot ? "top" : "bottom", x, y);
    }
  g_free (img.rgb);
  g_bytes_unref (png);
  lensd_frame_unref (frame);
}
END_TEST

/* Scores keep their 0..1 scale; activations span their own range. */
START_TEST (test_heatmap_ranges)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_RGB, 32, 16);
  GstLensHeatmap *map = test_frame_add_map (frame, test_map_new (8, 4, 2,
          TRUE));
  const gfloat act[8] = { 2, 3, 4, 6, 2, 2, 2, 2 };
  const gfloat score[8] = { 0.5f, 0, 0, 0, 0, 0, 0, 0.25f };
  GBytes *png;
  TestImage img;
  guint8 lut[256 * 4];

  memcpy (map->activation, act, sizeof (act));
  memcpy (map->score, score, sizeof (score));
  lens_overlay_colormap_lut (LENS_COLORMAP_TURBO, FALSE, lut);

  png = lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_SCORE, TRUE, NULL);
  ck_assert (png != NULL);
  test_decode_png (png, &img);
  ck_assert_msg (test_pixel_is (test_pixel (&img, 0, 0), lut + 128 * 4)
      && test_pixel_is (test_pixel (&img, 3, 1), lut + 64 * 4)
      && test_pixel_is (test_pixel (&img, 1, 0), lut),
      "expected scores 0.5, 0.25 and 0 at indices 128, 64 and 0");
  g_free (img.rgb);
  g_bytes_unref (png);

  png = lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_ACTIVATION, TRUE,
      NULL);
  ck_assert (png != NULL);
  test_decode_png (png, &img);
  ck_assert_msg (test_pixel_is (test_pixel (&img, 0, 0), lut)
      && test_pixel_is (test_pixel (&img, 2, 0), lut + 128 * 4)
      && test_pixel_is (test_pixel (&img, 3, 0), lut + 255 * 4),
      "expected activations 2, 4, 6 of 2..6 at indices 0, 128 and 255");
  g_free (img.rgb);
  g_bytes_unref (png);
  lensd_frame_unref (frame);
}
END_TEST

/* Cells that are not finite (a diverging model) show as the bottom and
 * leave the range to the others. */
START_TEST (test_heatmap_not_finite)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_RGB, 32, 8);
  GstLensHeatmap *map = test_frame_add_map (frame, test_map_new (8, 4, 1,
          FALSE));
  const gfloat act[4] = { NAN, INFINITY, 1.0f, 3.0f };
  guint8 lut[256 * 4];
  GBytes *png, *jpeg;
  TestImage img;

  memcpy (map->activation, act, sizeof (act));
  lens_overlay_colormap_lut (LENS_COLORMAP_TURBO, FALSE, lut);
  png = lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_ACTIVATION, TRUE,
      NULL);
  ck_assert (png != NULL);
  test_decode_png (png, &img);
  for (gint x = 0; x < 4; x++)
    ck_assert_msg (test_pixel_is (test_pixel (&img, x, 0),
            lut + (x == 3 ? 255 * 4 : 0)), "expected cell %d at the %s", x,
        x == 3 ? "top" : "bottom");
  g_free (img.rgb);
  g_bytes_unref (png);
  jpeg = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_HEATMAP, NULL);
  ck_assert_msg (jpeg != NULL, "expected a snapshot over such a map");
  g_bytes_unref (jpeg);
  lensd_frame_unref (frame);
}
END_TEST

/* Two levels, each with its own hot cell: fused, both show, each at its
 * place; one pixel per cell is the finest grid. */
START_TEST (test_heatmap_fused)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_NV12, 97, 61);
  GstLensHeatmap *fine = test_frame_add_map (frame, test_map_new (8, 13, 8,
          FALSE));
  GstLensHeatmap *coarse = test_frame_add_map (frame, test_map_new (16, 7, 4,
          TRUE));
  guint8 lut[256 * 4];
  GBytes *png;
  TestImage img;
  gint v;

  lens_overlay_colormap_lut (LENS_COLORMAP_TURBO, FALSE, lut);
  fine->activation[2 * 13 + 7] = 3.0f;  /* input centre (60, 20) */
  coarse->activation[2 * 7 + 1] = 0.5f; /* input centre (24, 40) */
  coarse->score[2 * 7 + 1] = 0.5f;

  png = lensd_frame_heatmap_png (frame, LENSD_LEVEL_FUSED,
      LENSD_HEATMAP_ACTIVATION, TRUE, NULL);
  ck_assert (png != NULL);
  test_decode_png (png, &img);
  ck_assert_msg (img.width == 13 && img.height == 8,
      "expected the finest grid, 13x8, got %dx%d", img.width, img.height);
  ck_assert_msg (test_pixel_is (test_pixel (&img, 7, 2), lut + 255 * 4),
      "expected the fine level's hot cell at the top");
  /* fine cell (2, 4), input (20, 36), is 3/4 of the way to the coarse
   * cell's centre on both axes: 0.5625 */
  v = test_lut_index (lut, test_pixel (&img, 2, 4));
  ck_assert_msg (ABS (v - 143) <= 1, "expected index 143 (0.5625) where "
      "the coarse cell reaches, got %d", v);
  ck_assert_msg (test_pixel_is (test_pixel (&img, 0, 0), lut)
      && test_pixel_is (test_pixel (&img, 12, 7), lut),
      "expected the bottom far from both");
  g_free (img.rgb);
  g_bytes_unref (png);

  png = lensd_frame_heatmap_png (frame, LENSD_LEVEL_FUSED,
      LENSD_HEATMAP_ACTIVATION, FALSE, NULL);
  ck_assert (png != NULL);
  test_decode_png (png, &img);
  ck_assert_msg (img.width == 97 && img.height == 61,
      "expected the frame's size, got %dx%d", img.width, img.height);
  /* pixel centres are half a pixel off the cells' centres: 0.88 of the
   * fine cell (a sixteenth of a cell on each axis), 0.94 of the coarse */
  ck_assert_msg (test_lut_index (lut, test_pixel (&img, 60, 20)) >= 215
      && test_lut_index (lut, test_pixel (&img, 24, 40)) >= 230,
      "expected both hot cells near the top, at 60,20 and 24,40, got "
      "indices %d and %d", test_lut_index (lut, test_pixel (&img, 60, 20)),
      test_lut_index (lut, test_pixel (&img, 24, 40)));
  ck_assert_msg (test_pixel_is (test_pixel (&img, 90, 58), lut),
      "expected the bottom far from both");
  g_free (img.rgb);
  g_bytes_unref (png);

  /* score: only the level that has one */
  png = lensd_frame_heatmap_png (frame, LENSD_LEVEL_FUSED,
      LENSD_HEATMAP_SCORE, TRUE, NULL);
  ck_assert_msg (png != NULL, "expected a fused score from the one level "
      "that has scores");
  test_decode_png (png, &img);
  ck_assert_msg (img.width == 7 && img.height == 4,
      "expected the grid of the level with scores, 7x4, got %dx%d",
      img.width, img.height);
  ck_assert_msg (test_pixel_is (test_pixel (&img, 1, 2), lut + 128 * 4),
      "expected its score 0.5 at index 128");
  g_free (img.rgb);
  g_bytes_unref (png);
  lensd_frame_unref (frame);
}
END_TEST

START_TEST (test_heatmap_motion)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_I420, 64, 32);
  GstLensHeatmap *map = test_frame_add_map (frame, test_map_new (4, 16, 8,
          TRUE));
  GError *error = NULL;
  GBytes *png;
  TestImage img;
  guint8 lut[256 * 4];

  map->activation[3 * 16 + 5] = 40.0f;  /* luma levels */
  map->score[3 * 16 + 5] = 0.5f;
  png = lensd_frame_heatmap_png (frame, 4, LENSD_HEATMAP_MOTION, TRUE,
      &error);
  ck_assert_msg (png == NULL && g_error_matches (error, LENSD_ERROR,
          LENSD_ERROR_INVALID) && strstr (error->message, "motion"),
      "expected kind motion refused for a model's frames, got %s",
      error ? error->message : "a heatmap");
  g_clear_error (&error);

  g_free (frame->model_name);
  frame->model_name = g_strdup ("motion");
  png = lensd_frame_heatmap_png (frame, 4, LENSD_HEATMAP_MOTION, TRUE,
      &error);
  ck_assert_msg (png != NULL, "expected motion in motion mode, got %s",
      error ? error->message : "nothing");
  lens_overlay_colormap_lut (LENS_COLORMAP_TURBO, FALSE, lut);
  test_decode_png (png, &img);
  /* the strength, in its fixed 0..1 range: a still scene stays dark */
  ck_assert_msg (test_pixel_is (test_pixel (&img, 5, 3), lut + 128 * 4)
      && test_pixel_is (test_pixel (&img, 6, 3), lut),
      "expected the moving cell's strength 0.5 at index 128 and the still "
      "ones at the bottom");
  g_free (img.rgb);
  g_bytes_unref (png);

  /* a map without the strength: the difference over its own range (a new
   * frame: published frames do not change, and this one cached its map) */
  lensd_frame_unref (frame);
  frame = test_frame_new (GST_VIDEO_FORMAT_I420, 64, 32);
  g_free (frame->model_name);
  frame->model_name = g_strdup ("motion");
  map = test_frame_add_map (frame, test_map_new (4, 16, 8, FALSE));
  map->activation[3 * 16 + 5] = 40.0f;
  png = lensd_frame_heatmap_png (frame, 4, LENSD_HEATMAP_MOTION, TRUE,
      NULL);
  ck_assert (png != NULL);
  test_decode_png (png, &img);
  ck_assert_msg (test_pixel_is (test_pixel (&img, 5, 3), lut + 255 * 4)
      && test_pixel_is (test_pixel (&img, 6, 3), lut),
      "expected the moving cell at the top and the still ones at the "
      "bottom");
  g_free (img.rgb);
  g_bytes_unref (png);
  lensd_frame_unref (frame);
}
END_TEST

START_TEST (test_heatmap_errors)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_RGB, 32, 32);
  GError *error = NULL;

  ck_assert_msg (lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_ACTIVATION,
          FALSE, &error) == NULL && g_error_matches (error, LENSD_ERROR,
          LENSD_ERROR_UNAVAILABLE), "expected no heatmap without maps");
  g_clear_error (&error);

  test_frame_add_map (frame, test_map_new (8, 4, 4, FALSE));
  test_frame_add_map (frame, test_map_new (16, 2, 2, FALSE));
  ck_assert (lensd_frame_heatmap_png (frame, 64, LENSD_HEATMAP_ACTIVATION,
          FALSE, &error) == NULL);
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_INVALID)
      && strcmp (error->message, "level 64 does not exist (levels: 8, 16)")
      == 0, "expected the levels there are listed, got %s", error->message);
  g_clear_error (&error);

  ck_assert (lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_SCORE, FALSE,
          &error) == NULL);
  ck_assert_msg (g_error_matches (error, LENSD_ERROR,
          LENSD_ERROR_UNAVAILABLE) && strstr (error->message, "score"),
      "expected a missing score map named, got %s", error->message);
  g_clear_error (&error);
  ck_assert_msg (lensd_frame_heatmap_png (frame, LENSD_LEVEL_FUSED,
          LENSD_HEATMAP_SCORE, FALSE, &error) == NULL
      && g_error_matches (error, LENSD_ERROR, LENSD_ERROR_UNAVAILABLE),
      "expected no fused score without any score map");
  g_clear_error (&error);

  ck_assert_msg (lensd_frame_heatmap_png (frame, -8, LENSD_HEATMAP_ACTIVATION,
          FALSE, &error) == NULL && g_error_matches (error, LENSD_ERROR,
          LENSD_ERROR_INVALID), "expected a negative level refused");
  g_clear_error (&error);
  ck_assert_msg (lensd_frame_heatmap_png (frame, 8, (LensdHeatmapKind) 7,
          FALSE, &error) == NULL && g_error_matches (error, LENSD_ERROR,
          LENSD_ERROR_INVALID), "expected an unknown kind refused");
  g_clear_error (&error);
  ck_assert_msg (g_hash_table_size (frame->cache) == 0,
      "expected nothing cached for refused requests");
  lensd_frame_unref (frame);
}
END_TEST

/* ---- feature maps ------------------------------------------------------- */

static const gint fmap_channels[] = { 1, 3, 16 };

START_TEST (test_featuremaps_grid)
{
  gint n = fmap_channels[_i], w = 6, h = 4;
  /* near-square: 1x1, 2x2 (one tile empty), 4x4 */
  gint cols = n == 1 ? 1 : n == 3 ? 2 : 4, rows = cols;
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_RGB, 48, 32);
  GstLensHeatmap *map = test_frame_add_map (frame, test_map_new (8, w, h,
          FALSE));
  const guint8 border[3] = { 0x80, 0x80, 0x80 };
  GError *error = NULL;
  guint8 lut[256 * 4];
  GBytes *png;
  TestImage img;

  map->n_channels = n;
  map->channels = g_new (gfloat, n * w * h);
  /* channel c: a ramp over its cells, from 10 c - 5 in steps of
   * (c + 1) / 2, each channel's range its own and none in 0..1 */
  for (gint c = 0; c < n; c++)
    for (gint i = 0; i < w * h; i++)
      map->channels[c * w * h + i] = 10.0f * c - 5.0f + i * 0.5f * (c + 1);
  png = lensd_frame_featuremaps_png (frame, 8, &error);
  ck_assert_msg (png != NULL, "expected feature maps, got %s",
      error ? error->message : "nothing");
  test_decode_png (png, &img);
  ck_assert_msg (img.width == cols * (w + 1) + 1
      && img.height == rows * (h + 1) + 1, "%d channels: expected a %dx%d "
      "grid of %dx%d tiles with 1 px borders (%dx%d), got %dx%d", n, cols,
      rows, w, h, cols * (w + 1) + 1, rows * (h + 1) + 1, img.width,
      img.height);
  lens_overlay_colormap_lut (LENS_COLORMAP_INFERNO, FALSE, lut);
  for (gint t = 0; t < cols * rows; t++) {
    gint tx = 1 + (t % cols) * (w + 1), ty = 1 + (t / cols) * (h + 1);

    ck_assert_msg (test_pixel_is (test_pixel (&img, tx - 1, ty - 1), border),
        "expected a border left of and above tile %d", t);
    if (t >= n) {
      ck_assert_msg (test_pixel_is (test_pixel (&img, tx, ty), border),
          "expected tile %d empty", t);
      continue;
    }
    /* each channel over its own range: its first cell the bottom, its
     * last the top */
    ck_assert_msg (test_pixel_is (test_pixel (&img, tx, ty), lut)
        && test_pixel_is (test_pixel (&img, tx + w - 1, ty + h - 1),
            lut + 255 * 4), "expected channel %d normalised to its range",
        t);
    /* cell 10 of 0..23: 10/23 of the way, index 111 */
    ck_assert_msg (test_pixel_is (test_pixel (&img, tx + 10 % w,
                ty + 10 / w), lut + 111 * 4),
        "expected channel %d's cell 10 at index 111, got %d", t,
        test_lut_index (lut, test_pixel (&img, tx + 10 % w, ty + 10 / w)));
  }
  g_free (img.rgb);
  g_bytes_unref (png);
  lensd_frame_unref (frame);
}
END_TEST

START_TEST (test_featuremaps_errors)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_RGB, 32, 32);
  GError *error = NULL;

  test_frame_add_map (frame, test_map_new (8, 4, 4, FALSE));
  ck_assert (lensd_frame_featuremaps_png (frame, 8, &error) == NULL);
  ck_assert_msg (g_error_matches (error, LENSD_ERROR,
          LENSD_ERROR_UNAVAILABLE) && strstr (error->message, "channels"),
      "expected a level without channels named, got %s", error->message);
  g_clear_error (&error);
  ck_assert (lensd_frame_featuremaps_png (frame, 32, &error) == NULL);
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_INVALID)
      && strstr (error->message, "levels: 8"),
      "expected a missing level refused, got %s", error->message);
  g_clear_error (&error);
  ck_assert (lensd_frame_featuremaps_png (frame, LENSD_LEVEL_FUSED,
          &error) == NULL);
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_INVALID),
      "expected fused refused: feature maps are per level");
  g_clear_error (&error);
  lensd_frame_unref (frame);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

START_TEST (test_snapshot_errors)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_I420, 32, 32);
  GstBuffer *small;
  GError *error = NULL;

  /* a buffer shorter than the caps say */
  small = gst_buffer_new_allocate (NULL, 100, NULL);
  gst_buffer_replace (&frame->buffer, small);
  gst_buffer_unref (small);
  ck_assert (lensd_frame_snapshot_jpeg (frame, 0, &error) == NULL);
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_FAILED)
      && strstr (error->message, "100 bytes"),
      "expected a short buffer named, got %s", error->message);
  g_clear_error (&error);

  gst_clear_buffer (&frame->buffer);
  ck_assert (lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_BOXES,
          &error) == NULL);
  ck_assert_msg (g_error_matches (error, LENSD_ERROR,
          LENSD_ERROR_UNAVAILABLE) && strstr (error->message, "no pixels"),
      "expected a frame without pixels refused, got %s", error->message);
  g_clear_error (&error);
  lensd_frame_unref (frame);
}
END_TEST

/* ---- the cache ---------------------------------------------------------- */

static LensdFrame *
test_full_frame (void)
{
  LensdFrame *frame = test_frame_new (GST_VIDEO_FORMAT_NV12, 97, 61);
  GstLensHeatmap *map = test_frame_add_map (frame, test_map_new (8, 13, 8,
          TRUE));

  test_frame_add_map (frame, test_map_new (16, 7, 4, TRUE));
  map->score[20] = 0.9f;
  map->n_channels = 3;
  map->channels = g_new0 (gfloat, 3 * 13 * 8);
  test_frame_add_detection (frame, 2, "car", 0.5, 10, 10, 30, 20);
  return frame;
}

START_TEST (test_cache_same_bytes)
{
  LensdFrame *frame = test_full_frame ();
  GBytes *a, *b, *c;

  a = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_BOXES, NULL);
  b = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_BOXES, NULL);
  c = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_BOXES
      | LENSD_OVERLAY_HEATMAP, NULL);
  ck_assert_msg (a != NULL && a == b, "expected the cached snapshot again");
  ck_assert_msg (c != NULL && c != a, "expected another overlay to be "
      "another rendering");
  g_bytes_unref (a);
  g_bytes_unref (b);
  g_bytes_unref (c);

  a = lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_SCORE, FALSE, NULL);
  b = lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_SCORE, FALSE, NULL);
  c = lensd_frame_heatmap_png (frame, 8, LENSD_HEATMAP_SCORE, TRUE, NULL);
  ck_assert_msg (a != NULL && a == b, "expected the cached heatmap again");
  ck_assert_msg (c != NULL && c != a, "expected the grid scale to be "
      "another rendering");
  g_bytes_unref (a);
  g_bytes_unref (b);
  g_bytes_unref (c);

  a = lensd_frame_featuremaps_png (frame, 8, NULL);
  b = lensd_frame_featuremaps_png (frame, 8, NULL);
  ck_assert_msg (a != NULL && a == b, "expected the cached feature maps "
      "again");
  g_bytes_unref (a);
  g_bytes_unref (b);
  ck_assert_msg (g_hash_table_size (frame->cache) == 5,
      "expected 5 renderings cached, got %u",
      g_hash_table_size (frame->cache));
  lensd_frame_unref (frame);
}
END_TEST

#define CACHE_THREADS 8
#define CACHE_ROUNDS 20

typedef struct
{
  GMutex lock;
  GCond cond;
  gint waiting;                 /* threads not yet at the gate */
  LensdFrame *frame;
  GBytes *seen[3];              /* the first of each rendering, borrowed */
  gint mismatches;
  gint failures;
} CacheRace;

static void
cache_race_note (CacheRace *race, gint what, GBytes *bytes)
{
  g_mutex_lock (&race->lock);
  if (bytes == NULL)
    race->failures++;
  else if (race->seen[what] == NULL)
    race->seen[what] = bytes;
  else if (race->seen[what] != bytes)
    race->mismatches++;
  g_mutex_unlock (&race->lock);
}

static gpointer
cache_race_thread (gpointer data)
{
  CacheRace *race = data;
  LensdFrame *frame;

  /* everyone starts at once, so the first requests collide */
  g_mutex_lock (&race->lock);
  frame = lensd_frame_ref (race->frame);
  if (--race->waiting == 0)
    g_cond_broadcast (&race->cond);
  while (race->waiting > 0)
    g_cond_wait (&race->cond, &race->lock);
  g_mutex_unlock (&race->lock);

  for (gint i = 0; i < CACHE_ROUNDS; i++) {
    GBytes *b[3];

    b[0] = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_BOXES
        | LENSD_OVERLAY_HEATMAP, NULL);
    b[1] = lensd_frame_heatmap_png (frame, LENSD_LEVEL_FUSED,
        LENSD_HEATMAP_SCORE, FALSE, NULL);
    b[2] = lensd_frame_featuremaps_png (frame, 8, NULL);
    for (gint k = 0; k < 3; k++) {
      cache_race_note (race, k, b[k]);
      /* the frame's cache keeps the first alive */
      if (b[k] != NULL)
        g_bytes_unref (b[k]);
    }
  }
  lensd_frame_unref (frame);
  return NULL;
}

START_TEST (test_cache_threads)
{
  for (gint round = 0; round < 3; round++) {
    CacheRace race;
    GThread *threads[CACHE_THREADS];

    memset (&race, 0, sizeof (race));
    g_mutex_init (&race.lock);
    g_cond_init (&race.cond);
    race.waiting = CACHE_THREADS;
    race.frame = test_full_frame ();
    for (gint t = 0; t < CACHE_THREADS; t++)
      threads[t] = g_thread_new ("render", cache_race_thread, &race);
    for (gint t = 0; t < CACHE_THREADS; t++)
      g_thread_join (threads[t]);
    ck_assert_msg (race.failures == 0, "expected every rendering made, %d "
        "failed", race.failures);
    ck_assert_msg (race.mismatches == 0, "expected every thread to get the "
        "one cached rendering, %d got another", race.mismatches);
    ck_assert_msg (g_hash_table_size (race.frame->cache) == 3,
        "expected 3 renderings cached, got %u",
        g_hash_table_size (race.frame->cache));
    lensd_frame_unref (race.frame);
    g_mutex_clear (&race.lock);
    g_cond_clear (&race.cond);
  }
}
END_TEST

static Suite *
lensd_render_suite (void)
{
  Suite *s = suite_create ("lensd-render");
  TCase *tc;

  tc = tcase_create ("snapshot");
  tcase_add_loop_test (tc, test_snapshot_formats, 0,
      G_N_ELEMENTS (snapshot_formats));
  tcase_add_test (tc, test_snapshot_boxes);
  tcase_add_test (tc, test_snapshot_scaled_boxes);
  tcase_add_test (tc, test_snapshot_heatmap);
  tcase_add_test (tc, test_snapshot_errors);
  suite_add_tcase (s, tc);

  tc = tcase_create ("heatmap");
  tcase_add_test (tc, test_heatmap_letterbox);
  tcase_add_test (tc, test_heatmap_grid_scale);
  tcase_add_test (tc, test_heatmap_ranges);
  tcase_add_test (tc, test_heatmap_not_finite);
  tcase_add_test (tc, test_heatmap_fused);
  tcase_add_test (tc, test_heatmap_motion);
  tcase_add_test (tc, test_heatmap_errors);
  suite_add_tcase (s, tc);

  tc = tcase_create ("featuremaps");
  tcase_add_loop_test (tc, test_featuremaps_grid, 0,
      G_N_ELEMENTS (fmap_channels));
  tcase_add_test (tc, test_featuremaps_errors);
  suite_add_tcase (s, tc);

  tc = tcase_create ("cache");
  tcase_add_test (tc, test_cache_same_bytes);
  tcase_add_test (tc, test_cache_threads);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  SRunner *sr;
  int failed;

  gst_init (NULL, NULL);
  sr = srunner_create (lensd_render_suite ());
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? 0 : 1;
}
