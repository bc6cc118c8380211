/* test-motion.c: the motion engine (cl/motion.c): every kernel against its
 * C reference at awkward sizes; synthetic scenes (a moving square on a
 * noisy static background in each pixel format, a static scene with fresh
 * sensor noise every frame, a global brightness drift); the per-level
 * heatmaps; options and frames refused; a size change mid-stream; real
 * video: the walking people of ../shared/videos/pedestrians_overhead_vtest.avi
 * and the ball of videotestsrc pattern=ball, decoded to raw frames by
 * gst-launch-1.0 (those cases are left out, with a message, when it or the
 * video is absent); and the time per 1280x720 frame. */
#include "lens-check.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- synthetic frames ------------------------------------------------------ */

/* A luma scene: a smooth gradient (texture for the drift test) plus
 * @brightness, a square of luma @square_luma at (@sx, @sy) when @side > 0,
 * and uniform integer noise in -noise..noise, clamped to 0..255. */
static void
paint_scene (guint8 * y, int w, int h, int brightness, int sx, int sy,
    int side, int square_luma, int noise, GRand * rand)
{
  for (int r = 0; r < h; r++)
    for (int c = 0; c < w; c++) {
      int v = 70 + (c * 40) / w + (r * 20) / h + brightness;

      if (side > 0 && c >= sx && c < sx + side && r >= sy && r < sy + side)
        v = square_luma;
      if (noise > 0)
        v += g_rand_int_range (rand, -noise, noise + 1);
      y[r * w + c] = (guint8) CLAMP (v, 0, 255);
    }
}

/* A frame of @format holding luma @y (grey: R = G = B = Y, chroma 128). */
typedef struct
{
  LensFrame frame;
  guint8 *data;
} TestFrame;

static void
test_frame_init (TestFrame * f, LensPixelFormat format, int w, int h)
{
  int bpp = format == LENS_PIXEL_RGB || format == LENS_PIXEL_BGR ? 3 :
      format == LENS_PIXEL_I420 || format == LENS_PIXEL_NV12 ? 1 : 4;
  /* rows padded past the pixels, as video buffers often are */
  int stride = w * bpp + 8;
  int cw = (w + 1) / 2, ch = (h + 1) / 2;

  memset (f, 0, sizeof *f);
  f->frame.format = format;
  f->frame.width = w;
  f->frame.height = h;
  f->data = g_malloc0 ((size_t) stride * h + (size_t) 2 * (cw + 8) * ch);
  f->frame.planes[0] = f->data;
  f->frame.strides[0] = stride;
  if (bpp == 1) {
    guint8 *chroma = f->data + (size_t) stride * h;

    memset (chroma, 128, (size_t) 2 * (cw + 8) * ch);
    f->frame.planes[1] = chroma;
    if (format == LENS_PIXEL_I420) {
      f->frame.strides[1] = f->frame.strides[2] = cw + 8;
      f->frame.planes[2] = chroma + (size_t) (cw + 8) * ch;
    } else {
      f->frame.strides[1] = 2 * (cw + 8);
    }
  }
}

static void
test_frame_set_luma (TestFrame * f, const guint8 * y)
{
  int bpp = f->frame.strides[0] - 8 == f->frame.width ? 1 :
      (f->frame.strides[0] - 8) / f->frame.width;

  for (int r = 0; r < f->frame.height; r++)
    for (int c = 0; c < f->frame.width; c++)
      for (int k = 0; k < bpp; k++)
        f->data[(size_t) r * f->frame.strides[0] + c * bpp + k] =
            y[r * f->frame.width + c];
}

static void
test_frame_clear (TestFrame * f)
{
  g_free (f->data);
}

static LensMotion *
new_motion (const LensMotionOptions * opt)
{
  LensError err = LENS_ERROR_INIT;
  LensMotion *m = NULL;

  ck_assert_msg (lens_motion_new (lens_check_ctx, opt, &m, &err) == LENS_OK,
      "lens_motion_new failed: %s", err.message);
  return m;
}

static void
run_frame (LensMotion * m, const LensFrame * frame, LensDetectorResult * res)
{
  LensError err = LENS_ERROR_INIT;

  ck_assert_msg (lens_motion_run (m, frame, res, &err) == LENS_OK,
      "lens_motion_run failed: %s", err.message);
}

static double
iou (const LensDetection * d, double x, double y, double w, double h)
{
  double ix = MAX (0.0, MIN (d->x + d->w, x + w) - MAX (d->x, x));
  double iy = MAX (0.0, MIN (d->y + d->h, y + h) - MAX (d->y, y));
  double inter = ix * iy;

  return inter / (d->w * d->h + w * h - inter);
}

/* The detection that overlaps the box most, or NULL. */
static const LensDetection *
best_match (const LensDetectorResult * res, double x, double y, double w,
    double h, double *best)
{
  const LensDetection *found = NULL;

  *best = 0.0;
  for (int i = 0; i < res->n_detections; i++) {
    double v = iou (&res->detections[i], x, y, w, h);

    if (v > *best) {
      *best = v;
      found = &res->detections[i];
    }
  }
  return found;
}

/* ---- kernels ---------------------------------------------------------------- */

START_TEST (test_kernels_vs_reference)
{
  LensError err = LENS_ERROR_INIT;
  LensSelftestResult *results = NULL;
  int n = 0;

  ck_assert_msg (lens_motion_selftest (lens_check_ctx, 0x5eed + _i, &results,
          &n, &err) == LENS_OK, "lens_motion_selftest failed: %s",
      err.message);
  ck_assert_msg (n == 5, "expected 5 motion kernels, got %d", n);
  for (int i = 0; i < n; i++) {
    printf ("  %-20s %d/%d cases, max |diff| %.3g\n", results[i].op_type,
        results[i].passed, results[i].cases, results[i].max_abs_diff);
    ck_assert_msg (results[i].cases == 26,
        "%s: expected 26 cases, ran %d", results[i].op_type,
        results[i].cases);
    ck_assert_msg (results[i].passed == results[i].cases,
        "%s: kernel differs from the reference: %s", results[i].op_type,
        results[i].first_failure);
    lens_selftest_result_clear (&results[i]);
  }
  g_free (results);
}
END_TEST

/* ---- synthetic scenes ------------------------------------------------------- */

#define SW 320
#define SH 240
#define SIDE 24

/* A square moving (3, 2) px per frame on a static scene with +-2 noise,
 * already there on the first frame: once it has moved clear of where the
 * background first saw it (its size plus the blur's reach: frame 11) and
 * two frames more, one detection, on it (IoU >= 0.5: the box is quantized
 * to cells and widened by the blur), and none for the ghost it left, in
 * every pixel format. */
START_TEST (test_moving_square)
{
  static const LensPixelFormat formats[] = { LENS_PIXEL_I420,
    LENS_PIXEL_NV12, LENS_PIXEL_RGB, LENS_PIXEL_BGR, LENS_PIXEL_RGBX,
    LENS_PIXEL_BGRX, LENS_PIXEL_XRGB, LENS_PIXEL_XBGR
  };
  LensPixelFormat format = formats[_i];
  GRand *rand = g_rand_new_with_seed (17 + _i);
  guint8 *y = g_malloc ((size_t) SW * SH);
  LensMotion *m = new_motion (NULL);
  TestFrame f;
  int found = 0, checked = 0;
  double worst = 1.0;

  test_frame_init (&f, format, SW, SH);
  for (int t = 0; t < 24; t++) {
    int sx = 40 + 3 * t, sy = 60 + 2 * t;
    LensDetectorResult res;
    const LensDetection *d;
    double v;

    paint_scene (y, SW, SH, 0, sx, sy, SIDE, 160, 2, rand);
    test_frame_set_luma (&f, y);
    run_frame (m, &f.frame, &res);
    if (t == 0)
      ck_assert_msg (res.n_detections == 0,
          "the first frame only learns the background, got %d detections",
          res.n_detections);
    if (t >= 13) {
      checked++;
      d = best_match (&res, sx, sy, SIDE, SIDE, &v);
      worst = MIN (worst, v);
      if (d != NULL && v >= 0.5) {
        found++;
        ck_assert_msg (d->class_id == 0 && d->score > 0.0f
            && d->score <= 1.0f, "detection class %d score %g: expected "
            "class 0 and a score in (0, 1]", d->class_id, d->score);
      }
      ck_assert_msg (res.n_detections == 1, "frame %d: expected the square "
          "only, got %d detections", t, res.n_detections);
    }
    lens_detector_result_clear (&res);
  }
  ck_assert_msg (found == checked, "format %d: the square was found in %d "
      "of %d frames (worst IoU %.2f), expected all", (int) format, found,
      checked, worst);
  lens_motion_free (m);
  test_frame_clear (&f);
  g_free (y);
  g_rand_free (rand);
}
END_TEST

/* A square entering a static noisy scene (not in the first frame), moving
 * (3, 2) px per frame: from the next frame on, exactly one detection, on
 * it (IoU >= 0.5). */
START_TEST (test_square_enters)
{
  GRand *rand = g_rand_new_with_seed (23);
  guint8 *y = g_malloc ((size_t) SW * SH);
  LensMotion *m = new_motion (NULL);
  TestFrame f;

  test_frame_init (&f, LENS_PIXEL_I420, SW, SH);
  for (int t = 0; t < 16; t++) {
    int sx = 40 + 3 * t, sy = 60 + 2 * t;
    LensDetectorResult res;
    double v = 0.0;

    paint_scene (y, SW, SH, 0, sx, sy, t > 0 ? SIDE : 0, 160, 2, rand);
    test_frame_set_luma (&f, y);
    run_frame (m, &f.frame, &res);
    if (t > 0) {
      best_match (&res, sx, sy, SIDE, SIDE, &v);
      ck_assert_msg (res.n_detections == 1 && v >= 0.5, "frame %d: "
          "expected one detection on the square, got %d (best IoU %.2f)", t,
          res.n_detections, v);
    }
    lens_detector_result_clear (&res);
  }
  lens_motion_free (m);
  test_frame_clear (&f);
  g_free (y);
  g_rand_free (rand);
}
END_TEST

/* The same static scene with fresh sensor noise every frame (+-2 levels,
 * and heavy +-8) for 30 frames: nothing. */
START_TEST (test_static_scene)
{
  int noise = _i == 0 ? 2 : 8;
  GRand *rand = g_rand_new_with_seed (99 + _i);
  guint8 *y = g_malloc ((size_t) SW * SH);
  LensMotion *m = new_motion (NULL);
  TestFrame f;

  test_frame_init (&f, LENS_PIXEL_I420, SW, SH);
  for (int t = 0; t < 31; t++) {
    LensDetectorResult res;

    /* a square that stays put is scene, not motion */
    paint_scene (y, SW, SH, 0, 100, 100, SIDE, 200, noise, rand);
    test_frame_set_luma (&f, y);
    run_frame (m, &f.frame, &res);
    ck_assert_msg (res.n_detections == 0, "static scene with +-%d noise, "
        "frame %d: expected no detections, got %d (first at %g,%g %gx%g)",
        noise, t, res.n_detections,
        res.n_detections ? res.detections[0].x : 0,
        res.n_detections ? res.detections[0].y : 0,
        res.n_detections ? res.detections[0].w : 0,
        res.n_detections ? res.detections[0].h : 0);
    lens_detector_result_clear (&res);
  }
  lens_motion_free (m);
  test_frame_clear (&f);
  g_free (y);
  g_rand_free (rand);
}
END_TEST

/* Global brightness drifting 3 levels per frame (up, or down) with +-2
 * noise for 30 frames: a lighting change, not motion. */
START_TEST (test_brightness_drift)
{
  int step = _i == 0 ? 3 : -3;
  GRand *rand = g_rand_new_with_seed (7 + _i);
  guint8 *y = g_malloc ((size_t) SW * SH);
  LensMotion *m = new_motion (NULL);
  TestFrame f;

  test_frame_init (&f, LENS_PIXEL_NV12, SW, SH);
  for (int t = 0; t < 31; t++) {
    LensDetectorResult res;

    paint_scene (y, SW, SH, 40 + step * t - (step < 0 ? 0 : 40), 0, 0, 0,
        0, 2, rand);
    test_frame_set_luma (&f, y);
    run_frame (m, &f.frame, &res);
    ck_assert_msg (res.n_detections == 0, "brightness drift of %+d per "
        "frame, frame %d: expected no detections, got %d", step, t,
        res.n_detections);
    lens_detector_result_clear (&res);
  }
  lens_motion_free (m);
  test_frame_clear (&f);
  g_free (y);
  g_rand_free (rand);
}
END_TEST

/* One heatmap per level, finest first, strides 2, 4, 8, sizes halved
 * (rounding up), hottest where the square that entered the scene is. */
START_TEST (test_heatmaps)
{
  GRand *rand = g_rand_new_with_seed (5);
  const int w = 97, h = 61;     /* odd sizes at every level */
  guint8 *y = g_malloc ((size_t) w * h);
  LensMotion *m = new_motion (NULL);
  LensDetectorResult res;
  TestFrame f;
  int ew = w, eh = h;

  test_frame_init (&f, LENS_PIXEL_I420, w, h);
  for (int t = 0; t < 3; t++) {
    paint_scene (y, w, h, 0, 10 + 8 * t, 20, t > 0 ? 16 : 0, 200, 2, rand);
    test_frame_set_luma (&f, y);
    run_frame (m, &f.frame, &res);
    if (t < 2)
      lens_detector_result_clear (&res);
  }
  ck_assert_msg (res.source_width == w && res.source_height == h,
      "source size %dx%d, expected %dx%d", res.source_width,
      res.source_height, w, h);
  ck_assert_msg (res.n_feature_maps == 3, "expected 3 levels, got %d",
      res.n_feature_maps);
  ck_assert_msg (res.inference_ms > 0.0, "inference_ms %g, expected > 0",
      res.inference_ms);
  for (int k = 0; k < 3; k++) {
    const LensFeatureMap *fm = &res.feature_maps[k];
    int best = 0;

    ew = (ew + 1) / 2;
    eh = (eh + 1) / 2;
    ck_assert_msg (fm->stride == 2 << k && fm->width == ew
        && fm->height == eh, "level %d: stride %d size %dx%d, expected "
        "stride %d size %dx%d", k, fm->stride, fm->width, fm->height,
        2 << k, ew, eh);
    ck_assert_msg (fm->activation != NULL && fm->score != NULL,
        "level %d: expected activation and score maps", k);
    for (int i = 0; i < fm->width * fm->height; i++) {
      ck_assert_msg (fm->score[i] >= 0.0f && fm->score[i] <= 1.0f,
          "level %d cell %d: score %g outside 0..1", k, i, fm->score[i]);
      if (fm->activation[i] > fm->activation[best])
        best = i;
    }
    /* the square now covers x 26..41, y 20..35 */
    ck_assert_msg (fabs ((best % fm->width + 0.5) * fm->stride - 34) <= 12
        && fabs ((best / fm->width + 0.5) * fm->stride - 28) <= 12,
        "level %d: hottest cell (%d,%d) is not near the moving square", k,
        best % fm->width, best / fm->width);
  }
  lens_detector_result_clear (&res);
  lens_motion_free (m);
  test_frame_clear (&f);
  g_free (y);
  g_rand_free (rand);
}
END_TEST

/* A new frame size mid-stream restarts the background: no detections on
 * its first frame, the moving square found after; so does a reset. */
START_TEST (test_size_change)
{
  GRand *rand = g_rand_new_with_seed (3);
  LensMotion *m = new_motion (NULL);
  static const int sizes[2][2] = { {SW, SH}, {200, 150} };

  for (int s = 0; s < 2; s++) {
    int w = sizes[s][0], h = sizes[s][1];
    guint8 *y = g_malloc ((size_t) w * h);
    TestFrame f;
    double v = 0.0;

    test_frame_init (&f, LENS_PIXEL_I420, w, h);
    for (int t = 0; t < 8; t++) {
      LensDetectorResult res;

      paint_scene (y, w, h, 0, 30 + 4 * t, 40, SIDE, 180, 2, rand);
      test_frame_set_luma (&f, y);
      run_frame (m, &f.frame, &res);
      if (t == 0)
        ck_assert_msg (res.n_detections == 0, "%dx%d: expected a fresh "
            "background on the first frame, got %d detections", w, h,
            res.n_detections);
      if (t == 7)
        best_match (&res, 30 + 4 * t, 40, SIDE, SIDE, &v);
      lens_detector_result_clear (&res);
    }
    ck_assert_msg (v >= 0.3, "%dx%d: the square was not found after the "
        "size change (best IoU %.2f)", w, h, v);
    /* lens_motion_reset forgets the background likewise */
    if (s == 1) {
      LensDetectorResult res;

      lens_motion_reset (m);
      run_frame (m, &f.frame, &res);
      ck_assert_msg (res.n_detections == 0, "expected no detections on the "
          "first frame after a reset, got %d", res.n_detections);
      lens_detector_result_clear (&res);
    }
    test_frame_clear (&f);
    g_free (y);
  }
  lens_motion_free (m);
  g_rand_free (rand);
}
END_TEST

/* Frames smaller than the pyramid (1x1, 3x7, 13x1): every level keeps at
 * least one cell, and nothing moves. */
START_TEST (test_tiny_frames)
{
  static const int sizes[3][2] = { {1, 1}, {3, 7}, {13, 1} };
  LensMotion *m = new_motion (NULL);

  for (int s = 0; s < 3; s++) {
    TestFrame f;
    guint8 y[13 * 7];

    memset (y, 90, sizeof y);
    test_frame_init (&f, LENS_PIXEL_BGRX, sizes[s][0], sizes[s][1]);
    test_frame_set_luma (&f, y);
    for (int t = 0; t < 3; t++) {
      LensDetectorResult res;

      run_frame (m, &f.frame, &res);
      ck_assert_msg (res.n_detections == 0 && res.n_feature_maps == 3
          && res.feature_maps[2].width >= 1
          && res.feature_maps[2].height >= 1, "%dx%d frame: expected no "
          "detections and 3 non-empty levels", sizes[s][0], sizes[s][1]);
      lens_detector_result_clear (&res);
    }
    test_frame_clear (&f);
  }
  lens_motion_free (m);
}
END_TEST

/* ---- refused input ------------------------------------------------------------ */

START_TEST (test_bad_options)
{
  LensError err = LENS_ERROR_INIT;
  LensMotionOptions opt;
  LensMotion *m = NULL;

  lens_motion_options_init (&opt);
  opt.levels = 0;
  ck_assert_msg (lens_motion_new (lens_check_ctx, &opt, &m, &err)
      == LENS_ERROR_INVALID && m == NULL, "levels 0 must be refused");
  ck_assert_msg (strstr (err.message, "levels") != NULL,
      "message '%s' should name the levels", err.message);
  lens_error_clear (&err);

  lens_motion_options_init (&opt);
  opt.background_rate = 0.0f;
  ck_assert_msg (lens_motion_new (lens_check_ctx, &opt, &m, &err)
      == LENS_ERROR_INVALID, "background rate 0 must be refused");
  lens_error_clear (&err);

  lens_motion_options_init (&opt);
  opt.detect_level = 3;
  ck_assert_msg (lens_motion_new (lens_check_ctx, &opt, &m, &err)
      == LENS_ERROR_INVALID, "detect level 3 of 3 levels must be refused");
  lens_error_clear (&err);
}
END_TEST

START_TEST (test_bad_frame)
{
  LensError err = LENS_ERROR_INIT;
  LensMotion *m = new_motion (NULL);
  LensDetectorResult res;
  guint8 pixels[64];
  LensFrame f = { LENS_PIXEL_RGB, 8, 2, {pixels}, {8} };

  /* RGB rows of 8 pixels need 24 bytes */
  ck_assert_msg (lens_motion_run (m, &f, &res, &err) == LENS_ERROR_INVALID,
      "a stride under the row size must be refused");
  ck_assert_msg (strstr (err.message, "stride") != NULL,
      "message '%s' should name the stride", err.message);
  ck_assert_msg (res.n_detections == 0 && res.feature_maps == NULL,
      "a refused frame leaves an empty result");
  lens_error_clear (&err);
  f.width = 0;
  ck_assert_msg (lens_motion_run (m, &f, &res, &err) == LENS_ERROR_INVALID,
      "width 0 must be refused");
  lens_error_clear (&err);
  lens_motion_free (m);
}
END_TEST

/* ---- real video through gst-launch-1.0 ---------------------------------------- */

/* Runs gst-launch-1.0 with @pipeline (a string; it gets
 * "! filesink location=PATH" appended) and returns the raw file's contents,
 * or NULL (with a message) when it cannot. */
static guint8 *
decode_frames (const char *pipeline, gsize * len)
{
  char *dir = g_dir_make_tmp ("lens-motion-XXXXXX", NULL);
  char *path = g_build_filename (dir, "frames.raw", NULL);
  char *cmd = g_strdup_printf ("%s ! filesink location=\"%s\"", pipeline,
      path);
  char *launch = g_find_program_in_path ("gst-launch-1.0");
  char **argv = NULL, *err_out = NULL, *contents = NULL;
  char *full;
  int status = -1;
  GError *error = NULL;

  full = g_strdup_printf ("%s -q %s", launch, cmd);
  if (g_shell_parse_argv (full, NULL, &argv, &error)
      && g_spawn_sync (NULL, argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
          NULL, NULL, &err_out, &status, &error)
      && g_spawn_check_wait_status (status, &error))
    g_file_get_contents (path, &contents, len, &error);
  if (error != NULL) {
    printf ("  gst-launch-1.0 %s: %s %s\n", cmd, error->message,
        err_out ? err_out : "");
    g_error_free (error);
  }
  g_unlink (path);
  g_rmdir (dir);
  g_strfreev (argv);
  g_free (err_out);
  g_free (full);
  g_free (launch);
  g_free (cmd);
  g_free (path);
  g_free (dir);
  return (guint8 *) contents;
}

static char *shared_dir;

#define VW 640
#define VH 360
#define VFRAMES 150

/* Frame sizes of packed I420 as GStreamer lays it out for these sizes
 * (every row a multiple of 4 bytes). */
static void
i420_frame (LensFrame * f, guint8 * data, int w, int h)
{
  memset (f, 0, sizeof *f);
  f->format = LENS_PIXEL_I420;
  f->width = w;
  f->height = h;
  f->planes[0] = data;
  f->strides[0] = w;
  f->planes[1] = data + w * h;
  f->strides[1] = w / 2;
  f->planes[2] = data + w * h + (w / 2) * (h / 2);
  f->strides[2] = w / 2;
}

/* The walking people: from frame 10 on, motion in most frames, each
 * region a plausible size (not the whole frame). */
START_TEST (test_pedestrians_video)
{
  char *video = g_build_filename (shared_dir, "videos",
      "pedestrians_overhead_vtest.avi", NULL);
  char *pipeline = g_strdup_printf ("filesrc location=\"%s\" ! decodebin ! "
      "videoconvert ! videoscale ! video/x-raw,format=I420,width=%d,"
      "height=%d ! identity eos-after=%d", video, VW, VH, VFRAMES);
  size_t frame_bytes = VW * VH * 3 / 2;
  gsize len = 0;
  guint8 *data = decode_frames (pipeline, &len);
  LensMotion *m;
  int frames, with_motion = 0, checked = 0, total = 0;
  double ms = 0.0;

  ck_assert_msg (data != NULL && len >= frame_bytes * 50,
      "decoding %s gave %zu bytes, expected at least 50 frames", video,
      (size_t) len);
  frames = (int) (len / frame_bytes);
  m = new_motion (NULL);
  for (int t = 0; t < frames; t++) {
    LensFrame f;
    LensDetectorResult res;

    i420_frame (&f, data + (size_t) t * frame_bytes, VW, VH);
    run_frame (m, &f, &res);
    if (t >= 10) {
      checked++;
      with_motion += res.n_detections > 0;
      total += res.n_detections;
      ms += res.inference_ms;
      /* people, or a few walking together: never a quarter of the frame */
      for (int i = 0; i < res.n_detections; i++)
        ck_assert_msg (res.detections[i].w * res.detections[i].h
            < 0.25 * VW * VH, "frame %d: a region of %gx%g is a quarter of "
            "the frame: not people walking", t, res.detections[i].w,
            res.detections[i].h);
    }
    lens_detector_result_clear (&res);
  }
  printf ("  pedestrians: %d frames %dx%d, motion in %d of %d after "
      "warm-up, %.2f regions per frame, %.2f ms per frame\n", frames, VW, VH,
      with_motion, checked, (double) total / checked, ms / checked);
  ck_assert_msg (with_motion >= checked * 0.9, "motion found in %d of %d "
      "frames of walking people, expected at least 90%%", with_motion,
      checked);
  lens_motion_free (m);
  g_free (data);
  g_free (pipeline);
  g_free (video);
}
END_TEST

/* videotestsrc pattern=ball: a white ball on black; its true position is
 * the centroid of the bright pixels. Found (a detection containing that
 * centre) in every frame after the first two. */
START_TEST (test_videotestsrc_ball)
{
  char *pipeline = g_strdup_printf ("videotestsrc pattern=ball "
      "num-buffers=60 ! video/x-raw,format=I420,width=%d,height=%d", 320,
      240);
  size_t frame_bytes = 320 * 240 * 3 / 2;
  gsize len = 0;
  guint8 *data = decode_frames (pipeline, &len);
  LensMotion *m;
  int frames, found = 0, checked = 0;

  ck_assert_msg (data != NULL && len == frame_bytes * 60,
      "videotestsrc gave %zu bytes, expected 60 I420 frames",
      (size_t) len);
  frames = 60;
  m = new_motion (NULL);
  for (int t = 0; t < frames; t++) {
    LensFrame f;
    LensDetectorResult res;
    double cx = 0, cy = 0, n = 0;

    i420_frame (&f, data + (size_t) t * frame_bytes, 320, 240);
    for (int r = 0; r < 240; r++)
      for (int c = 0; c < 320; c++)
        if (f.planes[0][r * 320 + c] > 128) {
          cx += c;
          cy += r;
          n++;
        }
    ck_assert_msg (n > 0, "frame %d: no ball in the test pattern", t);
    cx /= n;
    cy /= n;
    run_frame (m, &f, &res);
    if (t >= 2) {
      checked++;
      for (int i = 0; i < res.n_detections; i++) {
        const LensDetection *d = &res.detections[i];

        if (cx >= d->x && cx < d->x + d->w && cy >= d->y && cy < d->y + d->h) {
          found++;
          break;
        }
      }
    }
    lens_detector_result_clear (&res);
  }
  printf ("  ball: found in %d of %d frames\n", found, checked);
  ck_assert_msg (found == checked, "the ball was found in %d of %d frames, "
      "expected all", found, checked);
  lens_motion_free (m);
  g_free (data);
  g_free (pipeline);
}
END_TEST

/* ---- speed ----------------------------------------------------------------------- */

/* Per-frame time at 1280x720 (reported; the first frames, which compile
 * nothing but allocate, are left out). */
START_TEST (test_timing_720p)
{
  const int w = 1280, h = 720, frames = 30;
  GRand *rand = g_rand_new_with_seed (11);
  guint8 *y = g_malloc ((size_t) w * h);
  LensMotion *m = new_motion (NULL);
  TestFrame f;
  double ms = 0.0, best = G_MAXDOUBLE;

  test_frame_init (&f, LENS_PIXEL_I420, w, h);
  for (int t = 0; t < frames + 3; t++) {
    LensDetectorResult res;

    paint_scene (y, w, h, 0, 100 + 6 * t, 200, 80, 200, 2, rand);
    test_frame_set_luma (&f, y);
    run_frame (m, &f.frame, &res);
    if (t >= 3) {
      ms += res.inference_ms;
      best = MIN (best, res.inference_ms);
    }
    lens_detector_result_clear (&res);
  }
  printf ("  1280x720 I420 on %s: %.2f ms per frame (best %.2f)\n",
      lens_context_get_device_name (lens_check_ctx), ms / frames, best);
  lens_motion_free (m);
  test_frame_clear (&f);
  g_free (y);
  g_rand_free (rand);
}
END_TEST

static Suite *
motion_suite (gboolean with_video, gboolean with_gst)
{
  Suite *s = suite_create ("motion");
  TCase *tc;

  tc = tcase_create ("kernels");
  tcase_add_checked_fixture (tc, lens_check_setup, lens_check_teardown);
  tcase_add_loop_test (tc, test_kernels_vs_reference, 0, 2);
  suite_add_tcase (s, tc);

  tc = tcase_create ("synthetic");
  tcase_add_checked_fixture (tc, lens_check_setup, lens_check_teardown);
  tcase_add_loop_test (tc, test_moving_square, 0, 8);
  tcase_add_test (tc, test_square_enters);
  tcase_add_loop_test (tc, test_static_scene, 0, 2);
  tcase_add_loop_test (tc, test_brightness_drift, 0, 2);
  tcase_add_test (tc, test_heatmaps);
  tcase_add_test (tc, test_size_change);
  tcase_add_test (tc, test_tiny_frames);
  suite_add_tcase (s, tc);

  tc = tcase_create ("refused");
  tcase_add_checked_fixture (tc, lens_check_setup, lens_check_teardown);
  tcase_add_test (tc, test_bad_options);
  tcase_add_test (tc, test_bad_frame);
  suite_add_tcase (s, tc);

  if (with_gst) {
    tc = tcase_create ("video");
    tcase_add_checked_fixture (tc, lens_check_setup, lens_check_teardown);
    if (with_video)
      tcase_add_test (tc, test_pedestrians_video);
    tcase_add_test (tc, test_videotestsrc_ball);
    suite_add_tcase (s, tc);
  }

  tc = tcase_create ("speed");
  tcase_add_checked_fixture (tc, lens_check_setup, lens_check_teardown);
  tcase_add_test (tc, test_timing_720p);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  char *launch = g_find_program_in_path ("gst-launch-1.0");
  gboolean with_video = FALSE;
  int rc;

  shared_dir = lens_check_shared_dir ();
  if (shared_dir != NULL) {
    char *video = g_build_filename (shared_dir, "videos",
        "pedestrians_overhead_vtest.avi", NULL);

    with_video = g_file_test (video, G_FILE_TEST_IS_REGULAR);
    g_free (video);
  }
  if (launch == NULL)
    printf ("gst-launch-1.0 not found: the real-video cases are left out\n");
  else if (!with_video)
    printf ("../shared/videos/pedestrians_overhead_vtest.avi not found: "
        "the pedestrians case is left out\n");
  rc = lens_check_run (motion_suite (with_video, launch != NULL));
  g_free (launch);
  g_free (shared_dir);
  return rc;
}
