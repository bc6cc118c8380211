/* test-preprocess.c: frame pre-processing (geometry and rounding
 * conventions, pixel formats and colour conversion, the kernel against the
 * C reference on random frames, a synthetic photo-sized letterbox round
 * trip, argument errors) and the activation/score heatmaps (kernel
 * against reference on awkward shapes and strides, known values). */
#include "lens-check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static const char *format_names[] = {
  "RGB", "BGR", "RGBx", "BGRx", "I420", "NV12", "xRGB", "xBGR"
};

static gboolean
is_packed (LensPixelFormat format)
{
  return format != LENS_PIXEL_I420 && format != LENS_PIXEL_NV12;
}

/* A frame with its own planes; strides are the packed row size plus
 * @extra bytes of garbage that must never be read as pixels. */
typedef struct
{
  LensFrame frame;
  uint8_t *data[3];
} TestFrame;

static int
plane_rows (LensPixelFormat format, int height, int p)
{
  return (p == 0 || (format != LENS_PIXEL_I420 && format != LENS_PIXEL_NV12))
      ? height : (height + 1) / 2;
}

static int
plane_row_bytes (LensPixelFormat format, int width, int p)
{
  switch (format) {
    case LENS_PIXEL_RGB:
    case LENS_PIXEL_BGR:
      return 3 * width;
    case LENS_PIXEL_RGBX:
    case LENS_PIXEL_BGRX:
    case LENS_PIXEL_XRGB:
    case LENS_PIXEL_XBGR:
      return 4 * width;
    case LENS_PIXEL_I420:
      return p == 0 ? width : (width + 1) / 2;
    default:
      return p == 0 ? width : 2 * ((width + 1) / 2);
  }
}

static int
n_planes (LensPixelFormat format)
{
  return format == LENS_PIXEL_I420 ? 3 : format == LENS_PIXEL_NV12 ? 2 : 1;
}

static TestFrame *
test_frame_new (LensPixelFormat format, int width, int height, int extra,
    GRand * rand)
{
  TestFrame *t = g_new0 (TestFrame, 1);

  t->frame.format = format;
  t->frame.width = width;
  t->frame.height = height;
  for (int p = 0; p < n_planes (format); p++) {
    int stride = plane_row_bytes (format, width, p) + extra;
    size_t size = (size_t) stride * plane_rows (format, height, p);

    t->data[p] = g_malloc (size);
    for (size_t i = 0; i < size; i++)
      t->data[p][i] = rand ? (uint8_t) g_rand_int_range (rand, 0, 256) : 0;
    t->frame.planes[p] = t->data[p];
    t->frame.strides[p] = stride;
  }
  return t;
}

static void
test_frame_free (TestFrame * t)
{
  for (int p = 0; p < 3; p++)
    g_free (t->data[p]);
  g_free (t);
}

/* Fills every pixel of a packed frame with one RGB colour. */
static void
fill_packed (TestFrame * t, uint8_t r, uint8_t g, uint8_t b)
{
  LensFrame *f = &t->frame;
  gboolean bgr = f->format == LENS_PIXEL_BGR || f->format == LENS_PIXEL_BGRX
      || f->format == LENS_PIXEL_XBGR;
  int bpp = (f->format == LENS_PIXEL_RGB || f->format == LENS_PIXEL_BGR) ?
      3 : 4;
  /* xRGB/xBGR: the ignored byte first */
  int skip = (f->format == LENS_PIXEL_XRGB || f->format == LENS_PIXEL_XBGR);

  for (int y = 0; y < f->height; y++)
    for (int x = 0; x < f->width; x++) {
      uint8_t *p = t->data[0] + (size_t) y * f->strides[0] + x * bpp;
      if (bpp == 4)
        p[skip ? 0 : 3] = 0xa5;
      p += skip;
      p[0] = bgr ? b : r;
      p[1] = g;
      p[2] = bgr ? r : b;
    }
}

/* Fills a YUV frame with one Y, U, V. */
static void
fill_yuv (TestFrame * t, uint8_t y, uint8_t u, uint8_t v)
{
  LensFrame *f = &t->frame;
  int cw = (f->width + 1) / 2, ch = (f->height + 1) / 2;

  for (int r = 0; r < f->height; r++)
    memset (t->data[0] + (size_t) r * f->strides[0], y, f->width);
  for (int r = 0; r < ch; r++)
    for (int x = 0; x < cw; x++) {
      if (f->format == LENS_PIXEL_I420) {
        t->data[1][(size_t) r * f->strides[1] + x] = u;
        t->data[2][(size_t) r * f->strides[2] + x] = v;
      } else {
        t->data[1][(size_t) r * f->strides[1] + 2 * x] = u;
        t->data[1][(size_t) r * f->strides[1] + 2 * x + 1] = v;
      }
    }
}

static LensPreprocess
params_ultralytics (void)
{
  LensPreprocess p = { TRUE, TRUE, FALSE, 114.0f, 1.0f / 255.0f,
    {0, 0, 0}, {1, 1, 1}
  };
  return p;
}

static LensTensor *
input_tensor (int width, int height)
{
  int64_t shape[4] = { 1, 3, height, width };

  return lens_tensor_new (LENS_DTYPE_FLOAT, 4, shape);
}

static float
at (const LensTensor * t, int c, int y, int x)
{
  return ((const float *) t->host)[(c * t->shape[2] + y) * t->shape[3] + x];
}

/* Runs the reference into a new tensor; aborts on error. */
static LensTensor *
run_reference (const LensFrame * f, const LensPreprocess * pre, int width,
    int height, LensLetterbox * box)
{
  LensError err = LENS_ERROR_INIT;
  LensTensor *t = input_tensor (width, height);

  ck_assert_msg (lens_preprocess_frame_reference (f, pre, t, box, &err)
      == LENS_OK, "reference failed: %s", err.message);
  return t;
}

/* ---- geometry: Ultralytics, YOLOX and stretch conventions ---- */

/* Channel 0 of row @y (or column when @column) is all pad value. */
static gboolean
line_is_pad (const LensTensor * t, gboolean column, int i, float pad)
{
  int n = column ? t->shape[2] : t->shape[3];

  for (int j = 0; j < n; j++)
    for (int c = 0; c < 3; c++)
      if (fabsf (at (t, c, column ? j : i, column ? i : j) - pad) > 1e-6f)
        return FALSE;
  return TRUE;
}

START_TEST (test_geometry_ultralytics)
{
  /* (frame, input) -> expected content size and padding, worked out with
   * Ultralytics' LetterBox formulas (Python round: half to even) */
  static const struct
  {
    int w, h, in_w, in_h;
    int content_w, content_h, pad_x, pad_y;
  } cases[] = {
    {810, 1080, 640, 640, 480, 640, 80, 0},     /* bus.jpg */
    {773, 512, 640, 640, 640, 424, 0, 108},     /* horses.jpg */
    {100, 31, 320, 320, 320, 99, 0, 110},       /* odd padding: 110 + 111 */
    {4, 2, 5, 100, 5, 2, 0, 49},        /* 2.5 rounds to 2 */
    {4, 6, 100, 5, 3, 5, 48, 0},        /* 3.333 -> 3 */
    {3, 7, 640, 640, 274, 640, 183, 0},
    {1, 1, 7, 3, 3, 3, 2, 0},
  };
  GRand *rand = g_rand_new_with_seed (11);
  float pad = 114.0f / 255.0f;

  for (guint k = 0; k < G_N_ELEMENTS (cases); k++) {
    TestFrame *tf = test_frame_new (LENS_PIXEL_RGB, cases[k].w, cases[k].h,
        0, rand);
    LensPreprocess pre = params_ultralytics ();
    LensLetterbox box;
    LensTensor *t;
    int x0 = cases[k].pad_x, y0 = cases[k].pad_y;
    int x1 = x0 + cases[k].content_w, y1 = y0 + cases[k].content_h;

    /* make the content distinguishable from the pad everywhere */
    fill_packed (tf, 3, 200, 30);
    t = run_reference (&tf->frame, &pre, cases[k].in_w, cases[k].in_h, &box);
    ck_assert_msg (box.pad_x == x0 && box.pad_y == y0,
        "case %u: expected pad (%d, %d), got (%g, %g)", k, x0, y0,
        box.pad_x, box.pad_y);
    ck_assert_msg (fabsf (box.scale_x - (float) cases[k].content_w /
            cases[k].w) < 1e-6f && fabsf (box.scale_y -
            (float) cases[k].content_h / cases[k].h) < 1e-6f,
        "case %u: expected scale %d/%d, %d/%d, got %g, %g", k,
        cases[k].content_w, cases[k].w, cases[k].content_h, cases[k].h,
        box.scale_x, box.scale_y);
    for (int y = 0; y < cases[k].in_h; y++)
      ck_assert_msg (line_is_pad (t, FALSE, y, pad) == (y < y0 || y >= y1),
          "case %u: row %d should be %s", k, y,
          (y < y0 || y >= y1) ? "padding" : "image");
    for (int x = 0; x < cases[k].in_w; x++)
      ck_assert_msg (line_is_pad (t, TRUE, x, pad) == (x < x0 || x >= x1),
          "case %u: column %d should be %s", k, x,
          (x < x0 || x >= x1) ? "padding" : "image");
    ck_assert_msg (fabsf (at (t, 1, y0, x0) - 200.0f / 255.0f) < 1e-6f,
        "case %u: content should hold the frame colour", k);
    lens_tensor_free (t);
    test_frame_free (tf);
  }
  g_rand_free (rand);
}
END_TEST

START_TEST (test_geometry_top_left_and_stretch)
{
  TestFrame *tf = test_frame_new (LENS_PIXEL_BGR, 100, 31, 5, NULL);
  LensPreprocess pre = params_ultralytics ();
  LensLetterbox box;
  LensTensor *t;

  fill_packed (tf, 10, 20, 30);
  /* YOLOX: image top-left, pad right and bottom, 0..255 values */
  pre.center = FALSE;
  pre.scale = 1.0f;
  t = run_reference (&tf->frame, &pre, 320, 320, &box);
  ck_assert_msg (box.pad_x == 0 && box.pad_y == 0,
      "top-left padding should be 0, got (%g, %g)", box.pad_x, box.pad_y);
  ck_assert_msg (at (t, 0, 0, 0) == 10.0f && at (t, 2, 98, 319) == 30.0f,
      "top-left image should start at (0, 0)");
  ck_assert_msg (line_is_pad (t, FALSE, 99, 114.0f)
      && line_is_pad (t, FALSE, 319, 114.0f) && !line_is_pad (t, FALSE, 98,
          114.0f), "rows 99.. should be padding, 98 image");
  lens_tensor_free (t);

  /* FastestDet: stretch, no padding */
  pre.letterbox = FALSE;
  t = run_reference (&tf->frame, &pre, 64, 48, &box);
  ck_assert_msg (box.pad_x == 0 && box.pad_y == 0
      && fabsf (box.scale_x - 0.64f) < 1e-6f
      && fabsf (box.scale_y - 48.0f / 31.0f) < 1e-6f,
      "stretch: expected scale (0.64, 1.548), pad 0; got (%g, %g), (%g, %g)",
      box.scale_x, box.scale_y, box.pad_x, box.pad_y);
  for (int y = 0; y < 48; y++)
    for (int x = 0; x < 64; x++)
      ck_assert_msg (fabsf (at (t, 0, y, x) - 10.0f) < 1e-4f
          && fabsf (at (t, 2, y, x) - 30.0f) < 1e-4f,
          "stretch: (%d, %d) should be the frame colour (10, 30), got "
          "(%g, %g)", x, y, at (t, 0, y, x), at (t, 2, y, x));
  lens_tensor_free (t);
  test_frame_free (tf);
}
END_TEST

/* ---- values: sampling, channel order, normalization, colour ---- */

START_TEST (test_bilinear_matches_opencv)
{
  /* cv2.resize (INTER_LINEAR) results: [0, 100] to 4 wide is
   * [0, 25, 75, 100]; a 4x4 to 2x2 averages 2x2 blocks */
  TestFrame *tf = test_frame_new (LENS_PIXEL_RGB, 2, 1, 0, NULL);
  LensPreprocess pre = params_ultralytics ();
  LensTensor *t;
  static const float up[4] = { 0, 25, 75, 100 };

  pre.letterbox = FALSE;
  pre.scale = 1.0f;
  tf->data[0][3] = 100;
  t = run_reference (&tf->frame, &pre, 4, 1, NULL);
  for (int x = 0; x < 4; x++)
    ck_assert_msg (fabsf (at (t, 0, 0, x) - up[x]) < 1e-4f,
        "upscale column %d: expected %g, got %g", x, up[x], at (t, 0, 0, x));
  lens_tensor_free (t);
  test_frame_free (tf);

  tf = test_frame_new (LENS_PIXEL_RGB, 4, 4, 0, NULL);
  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      tf->data[0][(y * 4 + x) * 3] = (uint8_t) (y * 40 + x * 7);
  t = run_reference (&tf->frame, &pre, 2, 2, NULL);
  for (int y = 0; y < 2; y++)
    for (int x = 0; x < 2; x++) {
      float e = ((2 * y) * 40 + (2 * x) * 7 + (2 * y) * 40 + (2 * x + 1) * 7
          + (2 * y + 1) * 40 + (2 * x) * 7 + (2 * y + 1) * 40
          + (2 * x + 1) * 7) / 4.0f;
      ck_assert_msg (fabsf (at (t, 0, y, x) - e) < 1e-4f,
          "downscale (%d, %d): expected %g, got %g", x, y, e,
          at (t, 0, y, x));
    }
  lens_tensor_free (t);
  test_frame_free (tf);
}
END_TEST

START_TEST (test_identity_channel_order_normalization)
{
  GRand *rand = g_rand_new_with_seed (5);
  TestFrame *tf = test_frame_new (LENS_PIXEL_RGBX, 13, 7, 3, rand);
  /* NanoDet: BGR, mean/std in BGR order */
  LensPreprocess pre = { TRUE, TRUE, TRUE, 114.0f, 1.0f,
    {103.53f, 116.28f, 123.675f}, {57.375f, 57.12f, 58.395f}
  };
  LensTensor *t = run_reference (&tf->frame, &pre, 13, 7, NULL);

  /* same size: every output pixel is its source pixel, exactly */
  for (int y = 0; y < 7; y++)
    for (int x = 0; x < 13; x++) {
      const uint8_t *p = tf->data[0] + y * tf->frame.strides[0] + x * 4;
      for (int c = 0; c < 3; c++) {
        float e = (p[2 - c] - pre.mean[c]) / pre.std[c];
        ck_assert_msg (fabsf (at (t, c, y, x) - e) < 1e-6f,
            "(%d, %d) channel %d: expected %g, got %g", x, y, c, e,
            at (t, c, y, x));
      }
    }
  lens_tensor_free (t);
  test_frame_free (tf);
  g_rand_free (rand);
}
END_TEST

START_TEST (test_yuv_colours)
{
  /* BT.601 limited range: white, black, grey, red, and values clamped
   * at 0 and 255 */
  static const struct
  {
    uint8_t y, u, v;
    float r, g, b;
  } colours[] = {
    {235, 128, 128, 255, 255, 255},
    {16, 128, 128, 0, 0, 0},
    {126, 128, 128, 128.08f, 128.08f, 128.08f},
    {81, 90, 240, 254.44f, 0, 0},
    {145, 54, 34, 0.179f, 255, 0.930f},
    {40, 200, 10, 0, 95.669f, 173.186f},
  };

  for (int f = LENS_PIXEL_I420; f <= LENS_PIXEL_NV12; f++)
    for (guint k = 0; k < G_N_ELEMENTS (colours); k++) {
      TestFrame *tf = test_frame_new (f, 5, 3, 2, NULL);
      LensPreprocess pre = params_ultralytics ();
      LensTensor *t;

      pre.scale = 1.0f;
      fill_yuv (tf, colours[k].y, colours[k].u, colours[k].v);
      t = run_reference (&tf->frame, &pre, 5, 3, NULL);
      ck_assert_msg (fabsf (at (t, 0, 2, 4) - colours[k].r) < 0.05f
          && fabsf (at (t, 1, 2, 4) - colours[k].g) < 0.05f
          && fabsf (at (t, 2, 2, 4) - colours[k].b) < 0.05f,
          "%s YUV (%d, %d, %d): expected RGB (%g, %g, %g), got (%g, %g, %g)",
          format_names[f], colours[k].y, colours[k].u, colours[k].v,
          colours[k].r, colours[k].g, colours[k].b, at (t, 0, 2, 4),
          at (t, 1, 2, 4), at (t, 2, 2, 4));
      lens_tensor_free (t);
      test_frame_free (tf);
    }
}
END_TEST

START_TEST (test_packed_formats_agree)
{
  /* one colour in every packed format gives the same RGB input */
  for (int f = 0; f < LENS_PIXEL_N_FORMATS; f++) {
    LensPreprocess pre = params_ultralytics ();
    TestFrame *tf;
    LensTensor *t;

    if (!is_packed (f))
      continue;
    tf = test_frame_new (f, 3, 7, 1, NULL);
    pre.scale = 1.0f;
    fill_packed (tf, 250, 128, 4);
    t = run_reference (&tf->frame, &pre, 9, 9, NULL);
    ck_assert_msg (at (t, 0, 4, 4) == 250.0f && at (t, 1, 4, 4) == 128.0f
        && at (t, 2, 4, 4) == 4.0f, "%s: expected RGB (250, 128, 4), got "
        "(%g, %g, %g)", format_names[f], at (t, 0, 4, 4), at (t, 1, 4, 4),
        at (t, 2, 4, 4));
    lens_tensor_free (t);
    test_frame_free (tf);
  }
}
END_TEST

/* ---- the kernel against the reference ---- */

static double
compare_device (LensPreprocessor * pp, const LensFrame * f,
    const LensPreprocess * pre, int in_w, int in_h, const char *label)
{
  LensError err = LENS_ERROR_INIT;
  LensTensor *dev = input_tensor (in_w, in_h);
  LensTensor *ref;
  LensLetterbox box_dev, box_ref;
  LensCompareResult res;
  LensStatus st;

  st = pp ? lens_preprocessor_run (pp, f, pre, dev, &box_dev, &err) :
      lens_preprocess_frame (lens_check_ctx, f, pre, dev, &box_dev, &err);
  ck_assert_msg (st == LENS_OK, "%s: device pre-processing failed: %s",
      label, err.message);
  ck_assert_msg (lens_tensor_download (lens_check_ctx, dev, &err) == LENS_OK,
      "%s: download failed: %s", label, err.message);
  ref = run_reference (f, pre, in_w, in_h, &box_ref);
  ck_assert_msg (memcmp (&box_dev, &box_ref, sizeof box_dev) == 0,
      "%s: letterbox differs between device and reference", label);
  st = lens_tensor_compare (dev, ref, 1e-4, 1e-6, &res, &err);
  ck_assert_msg (st == LENS_OK, "%s: kernel and reference differ "
      "(expected within 1e-4): %s", label, err.message);
  lens_tensor_free (dev);
  lens_tensor_free (ref);
  return res.max_abs_diff;
}

START_TEST (test_device_matches_reference)
{
  static const int sizes[][2] = {
    {1, 1}, {3, 7}, {97, 13}, {641, 479}, {2, 2}, {13, 97}
  };
  static const int inputs[][2] = {
    {64, 64}, {97, 61}, {1, 1}, {33, 200}
  };
  GRand *rand = g_rand_new_with_seed (1234);
  LensError err = LENS_ERROR_INIT;
  LensPreprocessor *pp;
  double worst = 0.0;
  int runs = 0;

  ck_assert_msg (lens_preprocessor_new (lens_check_ctx, &pp, &err) == LENS_OK,
      "preprocessor: %s", err.message);
  for (int f = 0; f < LENS_PIXEL_N_FORMATS; f++)
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      for (int mode = 0; mode < 3; mode++) {
        int extra = (s + mode) % 2 ? g_rand_int_range (rand, 1, 14) : 0;
        TestFrame *tf = test_frame_new (f, sizes[s][0], sizes[s][1], extra,
            rand);
        const int *in = inputs[(s + mode + f) % G_N_ELEMENTS (inputs)];
        LensPreprocess pre = params_ultralytics ();
        char *label;

        pre.letterbox = mode != 2;
        pre.center = mode == 0;
        pre.bgr = (f + s + mode) % 2;
        if (mode == 1) {        /* YOLOX: 0..255 */
          pre.scale = 1.0f;
        } else if (s % 2) {     /* NanoDet-style mean/std */
          pre.scale = 1.0f;
          pre.mean[0] = 103.53f;
          pre.mean[1] = 116.28f;
          pre.mean[2] = 123.675f;
          pre.std[0] = 57.375f;
          pre.std[1] = 57.12f;
          pre.std[2] = 58.395f;
        }
        label = g_strdup_printf ("%s %dx%d (stride +%d) -> %dx%d %s%s",
            format_names[f], sizes[s][0], sizes[s][1], extra, in[0], in[1],
            mode == 0 ? "centred" : mode == 1 ? "top-left" : "stretch",
            pre.bgr ? " BGR" : " RGB");
        /* one preprocessor across sizes and formats (buffer reuse and
         * growth); every 7th case through the one-shot wrapper */
        worst = MAX (worst, compare_device (runs % 7 == 6 ? NULL : pp,
                &tf->frame, &pre, in[0], in[1], label));
        /* the big frame also into a full-size model input */
        if (sizes[s][0] == 641)
          worst = MAX (worst, compare_device (pp, &tf->frame, &pre, 640,
                  640, label));
        runs++;
        g_free (label);
        test_frame_free (tf);
      }
  lens_preprocessor_free (pp);
  g_rand_free (rand);
  g_print ("preprocess: %d random frames, kernel vs reference max |diff| "
      "%.3g\n", runs, worst);
}
END_TEST

START_TEST (test_device_input_offset)
{
  /* a tensor that starts inside its buffer: the kernel writes from there */
  GRand *rand = g_rand_new_with_seed (8);
  TestFrame *tf = test_frame_new (LENS_PIXEL_NV12, 31, 17, 3, rand);
  LensPreprocess pre = params_ultralytics ();
  LensError err = LENS_ERROR_INIT;
  LensTensor *big = input_tensor (16, 16);
  LensTensor *dev, *ref;
  int64_t shape[4] = { 1, 3, 8, 8 };
  float *all;

  ck_assert (lens_tensor_alloc_device (lens_check_ctx, big, &err) == LENS_OK);
  dev = lens_tensor_new_view (big, 4, (int64_t[4]) { 1, 3, 16, 16 });
  lens_tensor_set_shape (dev, 4, shape);
  dev->offset = 100;
  ck_assert_msg (lens_preprocess_frame (lens_check_ctx, &tf->frame, &pre, dev, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_tensor_download (lens_check_ctx, big, &err) == LENS_OK);
  ref = run_reference (&tf->frame, &pre, 8, 8, NULL);
  all = big->host;
  for (int i = 0; i < 3 * 64; i++)
    ck_assert_msg (fabsf (all[100 + i] - ((float *) ref->host)[i]) < 1e-4f,
        "element %d at offset 100: expected %g, got %g", i,
        ((float *) ref->host)[i], all[100 + i]);
  lens_tensor_free (dev);
  lens_tensor_free (big);
  lens_tensor_free (ref);
  test_frame_free (tf);
  g_rand_free (rand);
}
END_TEST

/* ---- a photo-sized frame: letterbox and map a box back ---- */

START_TEST (test_letterbox_round_trip)
{
  /* bus.jpg's 810x1080 as I420 (what a decoder hands over): dark grey,
   * with a white rectangle at known source pixels */
  const int w = 810, h = 1080, rx0 = 200, ry0 = 300, rx1 = 520, ry1 = 900;
  TestFrame *tf = test_frame_new (LENS_PIXEL_I420, w, h, 16, NULL);
  LensPreprocess pre = params_ultralytics ();
  LensError err = LENS_ERROR_INIT;
  LensTensor *t = input_tensor (640, 640);
  LensLetterbox box;
  int bx0 = 640, by0 = 640, bx1 = -1, by1 = -1;
  float pad = 114.0f / 255.0f;

  fill_yuv (tf, 40, 128, 128);
  for (int y = ry0; y < ry1; y++)
    memset (tf->data[0] + (size_t) y * tf->frame.strides[0] + rx0, 235,
        rx1 - rx0);
  ck_assert_msg (lens_preprocess_frame (lens_check_ctx, &tf->frame, &pre, t, &box,
          &err) == LENS_OK, "%s", err.message);
  ck_assert (lens_tensor_download (lens_check_ctx, t, &err) == LENS_OK);
  ck_assert_msg (box.pad_x == 80 && box.pad_y == 0
      && fabsf (box.scale_x - 480.0f / 810.0f) < 1e-6f,
      "expected pad (80, 0), scale 0.5926; got (%g, %g), %g", box.pad_x,
      box.pad_y, box.scale_x);
  for (int y = 0; y < 640; y++)
    for (int x = 0; x < 640; x++) {
      float v = at (t, 0, y, x);
      if (x < 80 || x >= 560)
        ck_assert_msg (fabsf (v - pad) < 1e-6f,
            "(%d, %d) should be padding %g, got %g", x, y, pad, v);
      if (v > 0.5f) {
        bx0 = MIN (bx0, x);
        by0 = MIN (by0, y);
        bx1 = MAX (bx1, x + 1);
        by1 = MAX (by1, y + 1);
      }
    }
  /* the bright box, mapped back, lands on the rectangle within a pixel
   * of the source */
  {
    float sx0 = (bx0 - box.pad_x) / box.scale_x;
    float sy0 = (by0 - box.pad_y) / box.scale_y;
    float sx1 = (bx1 - box.pad_x) / box.scale_x;
    float sy1 = (by1 - box.pad_y) / box.scale_y;
    float tol = 1.0f / box.scale_x + 0.5f;

    ck_assert_msg (fabsf (sx0 - rx0) <= tol && fabsf (sy0 - ry0) <= tol
        && fabsf (sx1 - rx1) <= tol && fabsf (sy1 - ry1) <= tol,
        "box maps back to (%g, %g)-(%g, %g), expected (%d, %d)-(%d, %d) "
        "within %g", sx0, sy0, sx1, sy1, rx0, ry0, rx1, ry1, tol);
  }
  lens_tensor_free (t);
  test_frame_free (tf);
}
END_TEST

/* ---- errors ---- */

START_TEST (test_errors_named)
{
  TestFrame *tf = test_frame_new (LENS_PIXEL_NV12, 9, 5, 0, NULL);
  LensPreprocess pre = params_ultralytics ();
  LensError err = LENS_ERROR_INIT;
  LensTensor *t = input_tensor (8, 8);
  int64_t bad_shape[4] = { 1, 4, 8, 8 };
  LensTensor *bad = lens_tensor_new (LENS_DTYPE_FLOAT, 4, bad_shape);

  tf->frame.strides[1] = 9;     /* UV rows need 10 bytes */
  ck_assert_int_eq (lens_preprocess_frame_reference (&tf->frame, &pre, t,
          NULL, &err), LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "stride 9 of plane 1") != NULL
      && strstr (err.message, "NV12") != NULL,
      "message should name the plane and format: %s", err.message);
  lens_error_clear (&err);
  tf->frame.strides[1] = 10;

  lens_tensor_set_name (bad, "images");
  ck_assert_int_eq (lens_preprocess_frame (lens_check_ctx, &tf->frame, &pre, bad, NULL,
          &err), LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "'images'") != NULL
      && strstr (err.message, "[1,3,H,W]") != NULL,
      "message should name the tensor and the expected shape: %s",
      err.message);
  lens_error_clear (&err);

  pre.std[2] = 0.0f;
  ck_assert_int_eq (lens_preprocess_frame_reference (&tf->frame, &pre, t,
          NULL, &err), LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "std[2]") != NULL,
      "message should name std[2]: %s", err.message);
  lens_error_clear (&err);

  lens_tensor_free (t);
  lens_tensor_free (bad);
  test_frame_free (tf);
}
END_TEST

/* ---- heatmaps ---- */

/* Uploads host tensor @x (any strides: the whole element range is
 * copied), runs the device heatmap and compares it with the reference. */
static double
compare_heatmap (LensTensor * x, gboolean score, gboolean channel_last,
    int width, int first, int n, gboolean sigmoid, const char *label)
{
  LensError err = LENS_ERROR_INIT;
  LensTensor *dev = lens_tensor_new (LENS_DTYPE_FLOAT, 0, NULL);
  LensTensor *ref = lens_tensor_new (LENS_DTYPE_FLOAT, 0, NULL);
  LensCompareResult res;
  LensStatus st;

  ck_assert_msg (lens_tensor_upload (lens_check_ctx, x, &err) == LENS_OK, "%s: %s",
      label, err.message);
  st = score ? lens_heatmap_score (lens_check_ctx, x, channel_last, width, first, n,
      sigmoid, dev, &err) : lens_heatmap_activation (lens_check_ctx, x, dev, &err);
  ck_assert_msg (st == LENS_OK, "%s: device heatmap failed: %s", label,
      err.message);
  ck_assert (lens_tensor_download (lens_check_ctx, dev, &err) == LENS_OK);
  st = score ? lens_heatmap_score_reference (x, channel_last, width, first,
      n, sigmoid, ref, &err) : lens_heatmap_activation_reference (x, ref,
      &err);
  ck_assert_msg (st == LENS_OK, "%s: reference failed: %s", label,
      err.message);
  ck_assert_msg (dev->ndim == 2 && ref->ndim == 2
      && dev->shape[0] == ref->shape[0] && dev->shape[1] == ref->shape[1],
      "%s: device and reference shapes differ", label);
  st = lens_tensor_compare (dev, ref, 1e-5, 1e-5, &res, &err);
  ck_assert_msg (st == LENS_OK, "%s: kernel and reference differ "
      "(expected within 1e-5): %s", label, err.message);
  lens_tensor_free (dev);
  lens_tensor_free (ref);
  return res.max_abs_diff;
}

START_TEST (test_heatmaps_device_matches_reference)
{
  static const int channels[] = { 1, 3, 97 };
  static const int cells[] = { 1, 7, 13 };
  GRand *rand = g_rand_new_with_seed (77);
  double worst = 0.0;
  int runs = 0;

  for (guint ci = 0; ci < G_N_ELEMENTS (channels); ci++)
    for (guint hi = 0; hi < G_N_ELEMENTS (cells); hi++)
      for (guint wi = 0; wi < G_N_ELEMENTS (cells); wi++)
        for (int layout = 0; layout < 3; layout++) {
          int c = channels[ci], h = cells[hi], w = cells[wi];
          int first = c > 1 ? g_rand_int_range (rand, 0, c - 1) : 0;
          int n = g_rand_int_range (rand, 1, c - first + 1);
          gboolean sigmoid = (ci + hi + wi + layout) % 2;
          gboolean channel_last = layout == 2;
          LensTensor *x;
          float *data;
          char *label;

          if (channel_last) {
            x = lens_tensor_new_host (LENS_DTYPE_FLOAT, 3,
                (int64_t[3]) { 1, h * w, c }, NULL);
          } else {
            x = lens_tensor_new_host (LENS_DTYPE_FLOAT, 4,
                (int64_t[4]) { 1, c, h, w }, NULL);
            if (layout == 1) {
              /* an NHWC buffer seen as [1,C,H,W] through its strides */
              x->strides[1] = 1;
              x->strides[2] = (int64_t) w * c;
              x->strides[3] = c;
            }
          }
          data = x->host;
          for (int i = 0; i < c * h * w; i++)
            data[i] = (float) g_rand_double_range (rand, -6.0, 6.0);
          label = g_strdup_printf ("C=%d H=%d W=%d %s", c, h, w,
              layout == 0 ? "NCHW" : layout == 1 ? "NCHW (NHWC strides)" :
              "[1,HW,C]");
          if (!channel_last)
            worst = MAX (worst, compare_heatmap (x, FALSE, FALSE, 0, 0, 0,
                    FALSE, label));
          worst = MAX (worst, compare_heatmap (x, TRUE, channel_last, w,
                  first, n, sigmoid, label));
          runs++;
          g_free (label);
          lens_tensor_free (x);
        }
  g_rand_free (rand);
  g_print ("heatmaps: %d shapes, kernel vs reference max |diff| %.3g\n",
      runs, worst);
}
END_TEST

START_TEST (test_heatmap_values)
{
  /* [1,3,1,2]: channels (-1, 2), (4, -8), (0.5, 0) */
  float data[6] = { -1, 2, 4, -8, 0.5f, 0 };
  LensTensor *x = lens_tensor_new_host (LENS_DTYPE_FLOAT, 4,
      (int64_t[4]) { 1, 3, 1, 2 }, data);
  LensTensor *out = lens_tensor_new (LENS_DTYPE_FLOAT, 0, NULL);
  LensError err = LENS_ERROR_INIT;
  float *o;

  ck_assert (lens_heatmap_activation_reference (x, out, &err) == LENS_OK);
  o = out->host;
  ck_assert_msg (fabsf (o[0] - 5.5f / 3) < 1e-6f && fabsf (o[1] - 10.0f / 3)
      < 1e-6f, "activation: expected (1.833, 3.333), got (%g, %g)", o[0],
      o[1]);
  ck_assert (lens_heatmap_score_reference (x, FALSE, 0, 1, 2, FALSE, out,
          &err) == LENS_OK);
  o = out->host;
  ck_assert_msg (o[0] == 4.0f && o[1] == 0.0f,
      "score over channels 1..2: expected (4, 0), got (%g, %g)", o[0], o[1]);
  ck_assert (lens_heatmap_score_reference (x, FALSE, 0, 0, 1, TRUE, out,
          &err) == LENS_OK);
  o = out->host;
  ck_assert_msg (fabsf (o[0] - 1.0f / (1.0f + expf (1.0f))) < 1e-6f,
      "sigmoid score: expected 0.269, got %g", o[0]);

  ck_assert_int_eq (lens_heatmap_score_reference (x, FALSE, 0, 2, 2, FALSE,
          out, &err), LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "channels 2..3") != NULL,
      "message should name the channel range: %s", err.message);
  lens_error_clear (&err);
  ck_assert_int_eq (lens_heatmap_score_reference (x, TRUE, 4, 0, 1, FALSE,
          out, &err), LENS_ERROR_INVALID);
  lens_error_clear (&err);
  lens_tensor_free (x);
  lens_tensor_free (out);
}
END_TEST

static Suite *
preprocess_suite (void)
{
  Suite *s = suite_create ("preprocess");
  TCase *tc_geometry = tcase_create ("geometry");
  TCase *tc_values = tcase_create ("values");
  TCase *tc_device = tcase_create ("device");
  TCase *tc_errors = tcase_create ("errors");
  TCase *tc_heatmaps = tcase_create ("heatmaps");

  tcase_add_test (tc_geometry, test_geometry_ultralytics);
  tcase_add_test (tc_geometry, test_geometry_top_left_and_stretch);
  suite_add_tcase (s, tc_geometry);

  tcase_add_test (tc_values, test_bilinear_matches_opencv);
  tcase_add_test (tc_values, test_identity_channel_order_normalization);
  tcase_add_test (tc_values, test_yuv_colours);
  tcase_add_test (tc_values, test_packed_formats_agree);
  suite_add_tcase (s, tc_values);

  tcase_add_checked_fixture (tc_device, lens_check_setup,
      lens_check_teardown);
  tcase_set_timeout (tc_device, 600);
  tcase_add_test (tc_device, test_device_matches_reference);
  tcase_add_test (tc_device, test_device_input_offset);
  tcase_add_test (tc_device, test_letterbox_round_trip);
  suite_add_tcase (s, tc_device);

  tcase_add_checked_fixture (tc_errors, lens_check_setup,
      lens_check_teardown);
  tcase_add_test (tc_errors, test_errors_named);
  suite_add_tcase (s, tc_errors);

  tcase_add_checked_fixture (tc_heatmaps, lens_check_setup,
      lens_check_teardown);
  tcase_set_timeout (tc_heatmaps, 300);
  tcase_add_test (tc_heatmaps, test_heatmaps_device_matches_reference);
  tcase_add_test (tc_heatmaps, test_heatmap_values);
  suite_add_tcase (s, tc_heatmaps);
  return s;
}

int
main (void)
{
  return lens_check_run (preprocess_suite ());
}
