/* test-overlay.c: the overlay kernels (cl/overlay.c, cl/kernels/overlay.cl)
 * against their plain-C references for every pixel format at awkward
 * sizes and padded strides, and what the primitives and colours mean. */
#include <stdio.h>
#include <string.h>

#include <check.h>

#include "lens.h"
#include "lens-check.h"

static const LensPixelFormat formats[] = {
  LENS_PIXEL_RGB, LENS_PIXEL_BGR, LENS_PIXEL_RGBX, LENS_PIXEL_BGRX,
  LENS_PIXEL_XRGB, LENS_PIXEL_XBGR, LENS_PIXEL_I420, LENS_PIXEL_NV12,
};
static const char *format_names[] = {
  "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "I420", "NV12",
};
static const int sizes[][2] = {
  {1, 1}, {3, 5}, {7, 13}, {13, 7}, {97, 31}, {321, 83},
};

/* A layout with row padding and a gap between planes, so writes outside
 * the picture show. */
static void
padded_layout (LensPixelFormat f, int w, int h, LensOverlayLayout * layout)
{
  LensOverlayLayout tight;
  int strides[3];
  size_t offsets[3];
  int cw = (w + 1) / 2, ch = (h + 1) / 2;

  ck_assert (lens_overlay_layout_init (&tight, f, w, h, NULL, NULL, NULL)
      == LENS_OK);
  if (!tight.yuv) {
    strides[0] = tight.passes[0].stride + 5;
    offsets[0] = 3;
  } else {
    strides[0] = w + 3;
    strides[1] = strides[2] = (f == LENS_PIXEL_NV12 ? 2 * cw : cw) + 1;
    offsets[0] = 2;
    offsets[1] = offsets[0] + (size_t) strides[0] * h + 7;
    offsets[2] = offsets[1] + (size_t) strides[1] * ch + 4;
  }
  ck_assert (lens_overlay_layout_init (layout, f, w, h, strides, offsets,
          NULL) == LENS_OK);
}

static cl_mem
upload_frame (const guint8 * data, size_t size)
{
  cl_int rc;
  cl_mem m = clCreateBuffer (lens_context_get_cl_context (lens_check_ctx),
      CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, size, (void *) data, &rc);

  ck_assert_msg (rc == CL_SUCCESS, "expected a frame buffer, got %s",
      lens_cl_error_name (rc));
  return m;
}

static void
download_frame (cl_mem m, guint8 * data, size_t size)
{
  cl_int rc = clEnqueueReadBuffer (lens_context_get_queue (lens_check_ctx),
      m, CL_TRUE, 0, size, data, 0, NULL, NULL);

  ck_assert_msg (rc == CL_SUCCESS, "expected the frame read back, got %s",
      lens_cl_error_name (rc));
}

static guint8 *
random_frame (GRand * rand, size_t size)
{
  guint8 *d = g_malloc (size);

  for (size_t i = 0; i < size; i++)
    d[i] = (guint8) g_rand_int_range (rand, 0, 256);
  return d;
}

/* ---- kernels vs references ---------------------------------------------- */

START_TEST (test_draw_vs_reference)
{
  LensOverlay *ov = NULL;
  LensError err = LENS_ERROR_INIT;
  GRand *rand = g_rand_new_with_seed (11);

  ck_assert_msg (lens_overlay_new (lens_check_ctx, &ov, &err) == LENS_OK,
      "expected an overlay, got %s", err.message);
  for (guint fi = 0; fi < G_N_ELEMENTS (formats); fi++)
    for (guint si = 0; si < G_N_ELEMENTS (sizes); si++) {
      int w = sizes[si][0], h = sizes[si][1];
      LensOverlayLayout layout;
      LensOverlayPrim prims[64];
      int n = 0;
      guint8 *host, *dev;
      size_t size;
      cl_mem m;

      padded_layout (formats[fi], w, h, &layout);
      size = layout.size + 9;
      /* boxes inside, across the edges and off the frame, text with and
       * without background, overlapping (order matters) */
      n += lens_overlay_box (prims + n, 1, 1, w / 2 + 2, h / 2 + 2, 1,
          lens_overlay_colour (&layout, 0xff0000));
      n += lens_overlay_box (prims + n, -3, -2, w + 1, h + 4, 2,
          lens_overlay_colour (&layout, 0x00ff00));
      n += lens_overlay_box (prims + n, w + 5, h + 5, 10, 10, 3,
          lens_overlay_colour (&layout, 0x0000ff));
      n += lens_overlay_text (prims + n, 20, 0, h / 3, "person 0.87", 1,
          lens_overlay_colour (&layout, 0xffffff),
          (gint32) lens_overlay_colour (&layout, 0x202080));
      n += lens_overlay_text (prims + n, 20, w / 4 - 2, -3, "Car~9%", 2,
          lens_overlay_colour (&layout, 0xffff00), -1);
      host = random_frame (rand, size);
      dev = g_memdup2 (host, size);
      m = upload_frame (host, size);
      ck_assert_msg (lens_overlay_draw (ov, m, &layout, prims, n, &err)
          == LENS_OK, "expected drawing to run, got %s", err.message);
      download_frame (m, dev, size);
      lens_overlay_draw_ref (host, &layout, prims, n);
      for (size_t i = 0; i < size; i++)
        ck_assert_msg (dev[i] == host[i], "%s %dx%d: expected byte %zu "
            "= %u as the reference, got %u", format_names[fi], w, h, i,
            host[i], dev[i]);
      clReleaseMemObject (m);
      g_free (host);
      g_free (dev);
    }
  lens_overlay_free (ov);
  g_rand_free (rand);
}
END_TEST

START_TEST (test_heatmap_vs_reference)
{
  LensOverlay *ov = NULL;
  LensError err = LENS_ERROR_INIT;
  GRand *rand = g_rand_new_with_seed (23 + _i);
  LensColormap cm = (LensColormap) _i;
  int worst = 0;

  ck_assert_msg (lens_overlay_new (lens_check_ctx, &ov, &err) == LENS_OK,
      "expected an overlay, got %s", err.message);
  for (guint fi = 0; fi < G_N_ELEMENTS (formats); fi++)
    for (guint si = 0; si < G_N_ELEMENTS (sizes); si++) {
      int w = sizes[si][0], h = sizes[si][1];
      LensOverlayLayout layout;
      LensOverlayHeatmap hm;
      float *grid;
      guint8 *host, *dev;
      size_t size;
      cl_mem m;

      padded_layout (formats[fi], w, h, &layout);
      size = layout.size + 9;
      /* a letterboxed frame: the model input is 64 wide, stride 8 */
      memset (&hm, 0, sizeof (hm));
      hm.stride = 8.0f;
      hm.scale_x = hm.scale_y = 64.0f / MAX (w, h);
      hm.pad_x = (64.0f - w * hm.scale_x) / 2.0f;
      hm.pad_y = (64.0f - h * hm.scale_y) / 2.0f;
      hm.width = hm.height = 8;
      grid = g_new (float, 64);
      for (int i = 0; i < 64; i++)
        grid[i] = (float) g_rand_double_range (rand, -0.5, 3.0);
      hm.grid = grid;
      hm.lo = 0.0f;
      hm.hi = 2.5f;
      host = random_frame (rand, size);
      dev = g_memdup2 (host, size);
      m = upload_frame (host, size);
      ck_assert_msg (lens_overlay_heatmap (ov, m, &layout, &hm, cm, 0.6f,
              &err) == LENS_OK, "expected the heatmap to run, got %s",
          err.message);
      download_frame (m, dev, size);
      lens_overlay_heatmap_ref (host, &layout, &hm, cm, 0.6f);
      /* float rounding may move a value across a colormap step: a few
       * levels at most, and bytes outside the picture exactly */
      for (size_t i = 0; i < size; i++) {
        int d = ABS ((int) dev[i] - (int) host[i]);

        worst = MAX (worst, d);
        ck_assert_msg (d <= 4, "%s %dx%d: expected byte %zu within 4 of "
            "the reference %u, got %u", format_names[fi], w, h, i, host[i],
            dev[i]);
      }
      clReleaseMemObject (m);
      g_free (host);
      g_free (dev);
      g_free (grid);
    }
  printf ("heatmap colormap %d: worst difference %d levels\n", _i, worst);
  lens_overlay_free (ov);
  g_rand_free (rand);
}
END_TEST

/* ---- meaning ------------------------------------------------------------ */

START_TEST (test_box_pixels)
{
  LensOverlayLayout layout;
  LensOverlayPrim prims[4];
  guint8 *frame;

  ck_assert (lens_overlay_layout_init (&layout, LENS_PIXEL_BGRX, 20, 10,
          NULL, NULL, NULL) == LENS_OK);
  frame = g_malloc0 (layout.size);
  lens_overlay_box (prims, 2, 3, 8, 5, 1, lens_overlay_colour (&layout,
          0x102030));
  lens_overlay_draw_ref (frame, &layout, prims, 4);
  for (int y = 0; y < 10; y++)
    for (int x = 0; x < 20; x++) {
      guint8 *p = frame + y * 80 + x * 4;
      gboolean edge = x >= 2 && x < 10 && y >= 3 && y < 8
          && (x == 2 || x == 9 || y == 3 || y == 7);

      if (edge)
        ck_assert_msg (p[0] == 0x30 && p[1] == 0x20 && p[2] == 0x10
            && p[3] == 0, "expected the outline BGR 30,20,10 at %d,%d",
            x, y);
      else
        ck_assert_msg (p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 0,
            "expected untouched pixels off the outline at %d,%d", x, y);
    }
  g_free (frame);
}
END_TEST

START_TEST (test_yuv_colours)
{
  LensOverlayLayout layout;
  guint8 lut[256 * 4];

  ck_assert (lens_overlay_layout_init (&layout, LENS_PIXEL_NV12, 4, 4, NULL,
          NULL, NULL) == LENS_OK);
  ck_assert_msg (lens_overlay_colour (&layout, 0xffffff) == 0xeb8080,
      "expected white as Y 235 U 128 V 128");
  ck_assert_msg (lens_overlay_colour (&layout, 0x000000) == 0x108080,
      "expected black as Y 16 U 128 V 128");
  ck_assert_msg (lens_overlay_colour (&layout, 0xff0000) == 0x515af0,
      "expected red as Y 81 U 90 V 240, got %06x",
      lens_overlay_colour (&layout, 0xff0000));
  /* inferno runs from dark to bright */
  lens_overlay_colormap_lut (LENS_COLORMAP_INFERNO, TRUE, lut);
  for (int i = 8; i < 256; i += 8)
    ck_assert_msg (lut[i * 4] + 1 >= lut[(i - 8) * 4], "expected inferno's "
        "luma not to fall, at %d", i);
  ck_assert_msg (lut[0] < 30 && lut[255 * 4] > 200,
      "expected inferno from dark to bright");
  /* turbo: blue-ish at the bottom, red at the top */
  lens_overlay_colormap_lut (LENS_COLORMAP_TURBO, FALSE, lut);
  ck_assert_msg (lut[2] > lut[0] && lut[255 * 4] > lut[255 * 4 + 2],
      "expected turbo from blue to red");
}
END_TEST

START_TEST (test_planar_colours)
{
  /* a red rectangle over the left half of odd-sized I420 and NV12 frames:
   * Y 81 where it is, U 90 and V 240 in the chroma samples it covers */
  for (int f = 0; f < 2; f++) {
    LensOverlayLayout layout;
    LensOverlayPrim prim = { 0, 0, 4, 5, 0, -1, -1, 1 };
    guint8 *frame;
    const guint8 *u, *v;
    int cstep = f == 0 ? 1 : 2;

    ck_assert (lens_overlay_layout_init (&layout, f == 0 ? LENS_PIXEL_I420
            : LENS_PIXEL_NV12, 7, 5, NULL, NULL, NULL) == LENS_OK);
    prim.fg = (gint32) lens_overlay_colour (&layout, 0xff0000);
    frame = g_malloc (layout.size);
    memset (frame, 50, layout.size);
    lens_overlay_draw_ref (frame, &layout, &prim, 1);
    for (int y = 0; y < 5; y++)
      for (int x = 0; x < 7; x++)
        ck_assert_msg (frame[y * 7 + x] == (x < 4 ? 81 : 50),
            "expected Y %d at %d,%d, got %u", x < 4 ? 81 : 50, x, y,
            frame[y * 7 + x]);
    u = frame + layout.passes[1].base;
    v = u + layout.passes[1].offsets[1];
    for (int y = 0; y < 3; y++)
      for (int x = 0; x < 4; x++) {
        int i = y * layout.passes[1].stride + x * cstep;
        gboolean in = x < 2;

        ck_assert_msg (u[i] == (in ? 90 : 50) && v[i] == (in ? 240 : 50),
            "%s: expected chroma %s at %d,%d, got U %u V %u",
            f == 0 ? "I420" : "NV12", in ? "red" : "untouched", x, y, u[i],
            v[i]);
      }
    g_free (frame);
  }
}
END_TEST

START_TEST (test_text)
{
  LensOverlayLayout layout;
  LensOverlayPrim prims[8];
  guint8 *frame;
  int n, on = 0, bg = 0;

  ck_assert (lens_overlay_layout_init (&layout, LENS_PIXEL_RGB, 40, 10, NULL,
          NULL, NULL) == LENS_OK);
  n = lens_overlay_text (prims, 8, 1, 1, "i1\x7f", 1, 0xffffff, 0x0000ff);
  ck_assert_msg (n == 3, "expected 3 glyphs, got %d", n);
  ck_assert_msg (prims[0].glyph == 'I' - 32 && prims[2].glyph == '?' - 32,
      "expected lower case drawn upper case and unknown characters as ?");
  ck_assert_msg (prims[1].x0 == 7 && prims[1].x1 == 13 && prims[1].y1 == 9,
      "expected 6x8 cells side by side");
  frame = g_malloc0 (layout.size);
  lens_overlay_draw_ref (frame, &layout, prims, n);
  for (int i = 0; i < 40 * 10; i++) {
    on += frame[3 * i] == 255 && frame[3 * i + 2] == 255;
    bg += frame[3 * i] == 0 && frame[3 * i + 2] == 255;
  }
  /* I: 3 + 5 + 3 bits; 1: 2+1+1+1+1+3+... */
  ck_assert_msg (on > 15 && bg > 60 && on + bg == 3 * 6 * 8,
      "expected glyph cells of foreground and background, got %d and %d",
      on, bg);
  g_free (frame);
}
END_TEST

START_TEST (test_refused)
{
  LensOverlayLayout layout;
  LensError err = LENS_ERROR_INIT;
  int strides[3] = { 5, 2, 2 };

  ck_assert (lens_overlay_layout_init (&layout, LENS_PIXEL_RGB, 0, 4, NULL,
          NULL, &err) == LENS_ERROR_INVALID);
  lens_error_clear (&err);
  ck_assert_msg (lens_overlay_layout_init (&layout, LENS_PIXEL_RGB, 4, 4,
          strides, NULL, &err) == LENS_ERROR_INVALID,
      "expected a stride below the row refused");
  ck_assert_msg (strstr (err.message, "stride") != NULL,
      "expected the message to name the stride: %s", err.message);
  lens_error_clear (&err);
}
END_TEST

static Suite *
overlay_suite (void)
{
  Suite *s = suite_create ("overlay");
  TCase *tc;

  tc = tcase_create ("kernels");
  tcase_add_checked_fixture (tc, lens_check_setup, lens_check_teardown);
  tcase_add_test (tc, test_draw_vs_reference);
  tcase_add_loop_test (tc, test_heatmap_vs_reference, 0, 3);
  suite_add_tcase (s, tc);

  tc = tcase_create ("meaning");
  tcase_add_test (tc, test_box_pixels);
  tcase_add_test (tc, test_yuv_colours);
  tcase_add_test (tc, test_planar_colours);
  tcase_add_test (tc, test_text);
  tcase_add_test (tc, test_refused);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  return lens_check_run (overlay_suite ());
}
