/* test-decode.c: decoding detection-model outputs (cl/decode.c).
 *
 * Hand-built output tensors for every family (a known box at a known cell
 * must decode to a known pixel box), NMS, thresholds and counts, the
 * letterbox mapping, label files and the 'names' metadata, family
 * detection on small synthetic ONNX models, the ONNX Runtime reference
 * outputs of tests/fixtures/ort decoded into the objects their images
 * show, and the configuration of every real model in ../shared (skipped
 * when ../shared is absent).
 */
#include "lens-check.h"
#include "onnx.pb-c.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

static LensTensor *
new_output (int ndim, const int64_t *shape)
{
  return lens_tensor_new_host (LENS_DTYPE_FLOAT, ndim, shape, NULL);
}

static float *
fdata (LensTensor *t)
{
  return (float *) t->host;
}

/* A configuration as lens_decode_config_init would make it, without a
 * model. */
static void
config_manual (LensDecodeConfig *c, LensFamily family, int w, int h,
    int n_classes)
{
  memset (c, 0, sizeof *c);
  c->family = family;
  c->input_width = w;
  c->input_height = h;
  c->n_classes = n_classes;
  c->conf_threshold = 0.25f;
  c->iou_threshold = 0.45f;
  c->max_detections = 300;
  c->n_strides = 3;
  c->strides[0] = 8;
  c->strides[1] = 16;
  c->strides[2] = 32;
}

static const LensLetterbox identity = { 1.0f, 1.0f, 0.0f, 0.0f };

static int
decode_ok (const LensDecodeConfig *c, LensTensor *const *outs, int n,
    const LensLetterbox *box, int sw, int sh, LensDetection **dets)
{
  LensError err = LENS_ERROR_INIT;
  int n_dets = -1;

  /* adding const at both levels: what lens_decode promises */
  ck_assert_msg (lens_decode (c, (const LensTensor * const *) outs, n, box,
          sw, sh, dets, &n_dets, &err)
      == LENS_OK, "decode (%s) failed: %s", lens_family_name (c->family),
      err.message);
  return n_dets;
}

#define assert_box(d, cls, sc, bx, by, bw, bh) \
  G_STMT_START { \
    ck_assert_msg ((d)->class_id == (cls), "expected class %d, got %d", \
        (cls), (d)->class_id); \
    ck_assert_msg (fabsf ((d)->score - (sc)) < 1e-4f, \
        "expected score %g, got %g", (double) (sc), (double) (d)->score); \
    ck_assert_msg (fabsf ((d)->x - (bx)) < 1e-3f \
        && fabsf ((d)->y - (by)) < 1e-3f \
        && fabsf ((d)->w - (bw)) < 1e-3f \
        && fabsf ((d)->h - (bh)) < 1e-3f, \
        "expected box %g,%g %gx%g, got %g,%g %gx%g", (double) (bx), \
        (double) (by), (double) (bw), (double) (bh), (double) (d)->x, \
        (double) (d)->y, (double) (d)->w, (double) (d)->h); \
  } G_STMT_END

static LensDetection
det (int cls, float score, float x, float y, float w, float h)
{
  LensDetection d = { cls, score, x, y, w, h };
  return d;
}

/* ---- family names ---- */

START_TEST (test_family_names)
{
  const LensFamily all[] = { LENS_FAMILY_YOLOV5, LENS_FAMILY_YOLOV8,
    LENS_FAMILY_END2END, LENS_FAMILY_YOLOX, LENS_FAMILY_NANODET,
    LENS_FAMILY_FASTESTDET
  };

  for (guint i = 0; i < G_N_ELEMENTS (all); i++)
    ck_assert_msg (lens_family_from_name (lens_family_name (all[i]))
        == all[i], "name '%s' should map back to family %d",
        lens_family_name (all[i]), all[i]);
  ck_assert_int_eq (lens_family_from_name ("yolo11"), LENS_FAMILY_YOLOV8);
  ck_assert_int_eq (lens_family_from_name ("YOLO26"), LENS_FAMILY_END2END);
  ck_assert_int_eq (lens_family_from_name ("YoloX"), LENS_FAMILY_YOLOX);
  ck_assert_int_eq (lens_family_from_name ("yolov9000"),
      LENS_FAMILY_UNKNOWN);
  ck_assert_int_eq (lens_family_from_name (NULL), LENS_FAMILY_UNKNOWN);
  ck_assert_str_eq (lens_family_name (LENS_FAMILY_UNKNOWN), "unknown");
}
END_TEST

/* ---- label files ---- */

static char *tmp_dir;

static void
tmp_setup (void)
{
  tmp_dir = g_dir_make_tmp ("lens-decode-XXXXXX", NULL);
  ck_assert_msg (tmp_dir != NULL, "could not make a temporary directory");
}

static void
tmp_teardown (void)
{
  GDir *d = g_dir_open (tmp_dir, 0, NULL);
  const char *name;

  while (d && (name = g_dir_read_name (d)) != NULL) {
    char *p = g_build_filename (tmp_dir, name, NULL);
    g_unlink (p);
    g_free (p);
  }
  if (d)
    g_dir_close (d);
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
  tmp_dir = NULL;
}

static char *
write_tmp (const char *name, const char *data, gssize len)
{
  char *p = g_build_filename (tmp_dir, name, NULL);

  ck_assert (g_file_set_contents (p, data, len, NULL));
  return p;
}

START_TEST (test_labels_valid)
{
  LensError err = LENS_ERROR_INIT;
  char *p = write_tmp ("a.names", "person\ntraffic light\ncaf\xc3\xa9\n", -1);
  char **labels;
  int n;

  ck_assert_msg (lens_labels_load (p, &labels, &n, &err) == LENS_OK,
      "%s", err.message);
  ck_assert_int_eq (n, 3);
  ck_assert_str_eq (labels[0], "person");
  ck_assert_str_eq (labels[1], "traffic light");
  ck_assert_str_eq (labels[2], "caf\xc3\xa9");
  ck_assert_msg (labels[3] == NULL, "label vector must be NULL-terminated");
  g_strfreev (labels);
  g_free (p);
}
END_TEST

START_TEST (test_labels_crlf_bom_trailing)
{
  LensError err = LENS_ERROR_INIT;
  char *p = write_tmp ("b.names", "\xef\xbb\xbf" "cat\r\ndog\r\n\r\n\n", -1);
  char *q = write_tmp ("c.names", "cat\ndog", -1);
  char **labels;
  int n;

  ck_assert_msg (lens_labels_load (p, &labels, &n, &err) == LENS_OK,
      "%s", err.message);
  ck_assert_msg (n == 2, "CRLF file with blank tail: expected 2 labels, "
      "got %d", n);
  ck_assert_str_eq (labels[0], "cat");
  ck_assert_str_eq (labels[1], "dog");
  g_strfreev (labels);

  /* no final newline */
  ck_assert (lens_labels_load (q, &labels, &n, &err) == LENS_OK);
  ck_assert_int_eq (n, 2);
  ck_assert_str_eq (labels[1], "dog");
  g_strfreev (labels);
  g_free (p);
  g_free (q);
}
END_TEST

START_TEST (test_labels_refused)
{
  LensError err = LENS_ERROR_INIT;
  char *bad = write_tmp ("bad.names", "person\nbi\xff" "cycle\ncar\n", -1);
  char *gap = write_tmp ("gap.names", "person\n\ncar\n", -1);
  char *empty = write_tmp ("empty.names", "\n\n", -1);
  char *missing = g_build_filename (tmp_dir, "missing.names", NULL);
  char **labels = NULL;
  int n = -1;

  ck_assert_int_eq (lens_labels_load (bad, &labels, &n, &err),
      LENS_ERROR_PARSE);
  ck_assert_msg (strstr (err.message, "bad.names") != NULL
      && strstr (err.message, "line 2") != NULL
      && strstr (err.message, "UTF-8") != NULL,
      "message should name the file, line 2 and UTF-8: %s", err.message);
  ck_assert_msg (labels == NULL && n == 0, "nothing returned on failure");
  lens_error_clear (&err);

  ck_assert_int_eq (lens_labels_load (gap, &labels, &n, &err),
      LENS_ERROR_PARSE);
  ck_assert_msg (strstr (err.message, "line 2") != NULL,
      "a blank line between labels must be named: %s", err.message);
  lens_error_clear (&err);

  ck_assert_int_eq (lens_labels_load (empty, &labels, &n, &err),
      LENS_ERROR_PARSE);
  lens_error_clear (&err);

  ck_assert_int_eq (lens_labels_load (missing, &labels, &n, &err),
      LENS_ERROR_IO);
  ck_assert_msg (strstr (err.message, "missing.names") != NULL,
      "message should name the file: %s", err.message);
  lens_error_clear (&err);
  g_free (bad);
  g_free (gap);
  g_free (empty);
  g_free (missing);
}
END_TEST

/* ---- NMS ---- */

START_TEST (test_iou)
{
  LensDetection a = det (0, 1, 0, 0, 4, 1), b = det (0, 1, 0, 0, 2, 1);
  LensDetection c = det (0, 1, 10, 10, 2, 2), e = det (0, 1, 2, 0, 4, 1);

  ck_assert_msg (lens_iou (&a, &b) == 0.5f, "nested half: expected 0.5, "
      "got %g", (double) lens_iou (&a, &b));
  ck_assert_msg (lens_iou (&a, &a) == 1.0f, "self IoU must be 1");
  ck_assert_msg (lens_iou (&a, &c) == 0.0f, "disjoint boxes: 0");
  ck_assert_msg (fabsf (lens_iou (&a, &e) - 2.0f / 6.0f) < 1e-6f,
      "half-shifted: expected 1/3, got %g", (double) lens_iou (&a, &e));
  ck_assert_msg (lens_iou (&a, &e) == lens_iou (&e, &a), "IoU symmetric");
}
END_TEST

START_TEST (test_nms_class_aware)
{
  LensDetection d[4];
  int n = 4;

  d[0] = det (0, 0.6f, 1, 0, 10, 10);   /* overlaps d[1] heavily */
  d[1] = det (0, 0.9f, 0, 0, 10, 10);
  d[2] = det (1, 0.8f, 0, 0, 10, 10);   /* same place, other class */
  d[3] = det (0, 0.7f, 50, 50, 10, 10); /* same class, elsewhere */
  lens_nms (d, &n, 0.45f, 300);
  ck_assert_msg (n == 3, "expected 3 survivors, got %d", n);
  ck_assert_msg (d[0].score == 0.9f && d[1].score == 0.8f
      && d[2].score == 0.7f, "survivors sorted by score: %g %g %g",
      (double) d[0].score, (double) d[1].score, (double) d[2].score);
  ck_assert_msg (d[1].class_id == 1, "the other class must not be "
      "suppressed");
}
END_TEST

START_TEST (test_nms_threshold_edge)
{
  LensDetection d[2];
  int n;

  /* IoU exactly 0.5: kept at threshold 0.5 (suppression needs more),
   * suppressed just below it */
  d[0] = det (2, 0.9f, 0, 0, 4, 1);
  d[1] = det (2, 0.8f, 0, 0, 2, 1);
  n = 2;
  lens_nms (d, &n, 0.5f, 0);
  ck_assert_msg (n == 2, "IoU == threshold must be kept, got %d", n);
  n = 2;
  lens_nms (d, &n, 0.4999f, 0);
  ck_assert_msg (n == 1 && d[0].score == 0.9f, "IoU above threshold: the "
      "lower score must go, got %d", n);
}
END_TEST

START_TEST (test_nms_max_and_order)
{
  LensDetection d[6];
  int n = 6;

  for (int i = 0; i < 6; i++)
    d[i] = det (0, 0.1f * (float) (i + 1), 20.0f * i, 0, 10, 10);
  lens_nms (d, &n, 0.45f, 4);
  ck_assert_msg (n == 4, "max_detections 4: got %d", n);
  for (int i = 0; i < 4; i++)
    ck_assert_msg (fabsf (d[i].score - 0.1f * (6 - i)) < 1e-6f,
        "rank %d: expected score %g, got %g", i, 0.1 * (6 - i),
        (double) d[i].score);
  n = 0;
  lens_nms (d, &n, 0.45f, 4);
  ck_assert_int_eq (n, 0);
}
END_TEST

/* ---- decoders ---- */

/* YOLOv5: [1,N,5+C] cx,cy,w,h (input px), obj, class probabilities */
START_TEST (test_decode_yolov5)
{
  const int64_t shape[] = { 1, 252, 8 };
  LensTensor *t = new_output (3, shape), *h;
  LensDecodeConfig c;
  LensDetection *d;
  float *p = fdata (t);
  int n;

  config_manual (&c, LENS_FAMILY_YOLOV5, 64, 64, 3);
  /* row 10: the box; row 11: same class, overlapping, lower; row 12:
   * objectness below the threshold; row 13: high obj, low class */
  memcpy (p + 10 * 8, (float[8]) { 20, 30, 10, 8, 0.9f, 0.1f, 0.8f, 0.2f },
      sizeof (float[8]));
  memcpy (p + 11 * 8, (float[8]) { 21, 30, 10, 8, 0.8f, 0.1f, 0.8f, 0.2f },
      sizeof (float[8]));
  memcpy (p + 12 * 8, (float[8]) { 50, 50, 10, 8, 0.2f, 1.0f, 1.0f, 1.0f },
      sizeof (float[8]));
  memcpy (p + 13 * 8, (float[8]) { 50, 10, 10, 8, 0.9f, 0.2f, 0.1f, 0.0f },
      sizeof (float[8]));
  n = decode_ok (&c, &t, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 1, "expected 1 detection, got %d", n);
  assert_box (&d[0], 1, 0.72f, 15, 26, 10, 8);
  g_free (d);

  /* float16 outputs (YOLOv5 --half exports) decode the same */
  h = lens_tensor_new_host (LENS_DTYPE_FLOAT16, 3, shape, NULL);
  for (int64_t i = 0; i < lens_tensor_numel (t); i++)
    lens_tensor_set_f64 (h, i, p[i]);
  n = decode_ok (&c, &h, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 1 && d[0].class_id == 1
      && fabsf (d[0].x - 15) < 0.05f && fabsf (d[0].score - 0.72f) < 1e-3f,
      "float16 output: expected the same box, got %d", n);
  g_free (d);
  lens_tensor_free (h);
  lens_tensor_free (t);
}
END_TEST

/* YOLOv8/11: [1,4+C,N], one column per anchor */
START_TEST (test_decode_yolov8)
{
  const int64_t shape[] = { 1, 7, 84 };
  LensTensor *t = new_output (3, shape);
  LensDecodeConfig c;
  LensDetection *d;
  float *p = fdata (t);
  const int N = 84;
  int n;

#define SET8(col, cx, cy, w, h, c0, c1, c2) \
  G_STMT_START { p[0 * N + (col)] = (cx); p[1 * N + (col)] = (cy); \
    p[2 * N + (col)] = (w); p[3 * N + (col)] = (h); \
    p[4 * N + (col)] = (c0); p[5 * N + (col)] = (c1); \
    p[6 * N + (col)] = (c2); } G_STMT_END
  config_manual (&c, LENS_FAMILY_YOLOV8, 64, 64, 3);
  SET8 (5, 32, 16, 20, 10, 0.1f, 0.2f, 0.9f);
  SET8 (70, 10, 50, 8, 8, 0.6f, 0.0f, 0.0f);
  SET8 (71, 40, 40, 8, 8, 0.25f, 0.0f, 0.0f);  /* at the threshold: out */
  n = decode_ok (&c, &t, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 2, "expected 2 detections, got %d", n);
  assert_box (&d[0], 2, 0.9f, 22, 11, 20, 10);
  assert_box (&d[1], 0, 0.6f, 6, 46, 8, 8);
  g_free (d);

  /* the threshold is strict and configurable */
  c.conf_threshold = 0.7f;
  n = decode_ok (&c, &t, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 1 && d[0].class_id == 2, "threshold 0.7 keeps the "
      "0.9 box only, got %d", n);
  g_free (d);
  c.conf_threshold = 0.95f;
  n = decode_ok (&c, &t, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 0 && d == NULL, "threshold 0.95: nothing, got %d", n);
#undef SET8
  lens_tensor_free (t);
}
END_TEST

/* YOLO26: [1,K,6] x1,y1,x2,y2,score,class; no NMS */
START_TEST (test_decode_end2end)
{
  const int64_t shape[] = { 1, 5, 6 };
  LensTensor *t = new_output (3, shape);
  LensDecodeConfig c;
  LensDetection *d;
  float *p = fdata (t);
  const float rows[5][6] = {
    { 10, 10, 30, 40, 0.5f, 1 },
    { 11, 10, 31, 40, 0.8f, 1 },        /* overlaps row 0: both stay */
    { 0, 0, 5, 5, 0.1f, 0 },            /* below the threshold */
    { 0, 0, 5, 5, 0.9f, 7 },            /* class outside the labels */
    { 40, 40, 60, 50, 0.3f, 2 },
  };
  int n;

  memcpy (p, rows, sizeof rows);
  config_manual (&c, LENS_FAMILY_END2END, 64, 64, 3);
  n = decode_ok (&c, &t, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 3, "expected 3 detections (no NMS), got %d", n);
  assert_box (&d[0], 1, 0.8f, 11, 10, 20, 30);
  assert_box (&d[1], 1, 0.5f, 10, 10, 20, 30);
  assert_box (&d[2], 2, 0.3f, 40, 40, 20, 10);
  g_free (d);

  c.max_detections = 2;
  n = decode_ok (&c, &t, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 2 && d[1].score == 0.5f, "max_detections 2 keeps "
      "the best 2, got %d", n);
  g_free (d);
  lens_tensor_free (t);
}
END_TEST

/* YOLOX: raw rows per cell, strides 8, 16, 32 */
START_TEST (test_decode_yolox)
{
  /* 64x64 input: 8x8 + 4x4 + 2x2 = 84 cells */
  const int64_t shape[] = { 1, 84, 8 };
  LensTensor *t = new_output (3, shape);
  LensDecodeConfig c;
  LensDetection *d;
  float *p = fdata (t);
  int n;

  config_manual (&c, LENS_FAMILY_YOLOX, 64, 64, 3);
  /* stride 16 level, cell gx 2, gy 1: row 64 + 1 * 4 + 2 */
  memcpy (p + 70 * 8, (float[8]) { 0.5f, 0.25f, logf (2.0f), 0.0f, 0.8f,
        0.0f, 0.0f, 0.5f }, sizeof (float[8]));
  /* stride 8 level, cell (7, 0), on the stride-32 level (1, 1) */
  memcpy (p + 7 * 8, (float[8]) { 0, 0, 0, 0, 0.9f, 1.0f, 0, 0 },
      sizeof (float[8]));
  memcpy (p + 83 * 8, (float[8]) { 0, 0, 0, 0, 0.5f, 0, 0.9f, 0 },
      sizeof (float[8]));
  n = decode_ok (&c, &t, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 3, "expected 3 detections, got %d", n);
  /* centre ((0 + 7) * 8, 0), 8x8, clipped at the top */
  assert_box (&d[0], 0, 0.9f, 52, 0, 8, 4);
  /* centre (32, 32), 32x32 */
  assert_box (&d[1], 1, 0.45f, 16, 16, 32, 32);
  /* centre ((0.5 + 2) * 16, (0.25 + 1) * 16) = (40, 20), 32x16 */
  assert_box (&d[2], 2, 0.4f, 24, 12, 32, 16);
  g_free (d);
  lens_tensor_free (t);
}
END_TEST

/* NanoDet: per level class maps and 4 x 8-bin distance distributions */
static void
nanodet_set_side (float *cell, int side, float logit_bin_a, int a, int b)
{
  /* all mass on bin a, or split evenly between a and b */
  for (int i = 0; i < 8; i++)
    cell[side * 8 + i] = (i == a || i == b) ? logit_bin_a : 0.0f;
}

START_TEST (test_decode_nanodet)
{
  const int64_t cs8[] = { 1, 64, 3 }, cs16[] = { 1, 16, 3 },
      cs32[] = { 1, 4, 3 }, bs8[] = { 1, 64, 32 }, bs16[] = { 1, 16, 32 },
      bs32[] = { 1, 4, 32 };
  LensTensor *outs[6] = { new_output (3, cs8), new_output (3, cs16),
    new_output (3, cs32), new_output (3, bs8), new_output (3, bs16),
    new_output (3, bs32)
  };
  LensTensor *shuffled[6];
  LensDecodeConfig c;
  LensDetection *d;
  float *cell;
  int n;

  config_manual (&c, LENS_FAMILY_NANODET, 64, 64, 3);
  /* stride 8, cell (3, 2) = index 19: class 1 at 0.7; distances l 2, t 1,
   * r 3, b 0 bins (x 8 px) from the centre (3.5 * 8, 2.5 * 8) */
  fdata (outs[0])[19 * 3 + 1] = 0.7f;
  cell = fdata (outs[3]) + 19 * 32;
  nanodet_set_side (cell, 0, 60.0f, 2, 2);
  nanodet_set_side (cell, 1, 60.0f, 1, 1);
  nanodet_set_side (cell, 2, 60.0f, 3, 3);
  nanodet_set_side (cell, 3, 60.0f, 0, 0);
  /* stride 32, cell (1, 0) = index 1: class 2 at 0.4; each side split
   * between bins 0 and 1: 0.5 bins = 16 px; centre (48, 16) */
  fdata (outs[2])[1 * 3 + 2] = 0.4f;
  cell = fdata (outs[5]) + 1 * 32;
  for (int s = 0; s < 4; s++)
    nanodet_set_side (cell, s, 60.0f, 0, 1);
  /* below the threshold */
  fdata (outs[1])[5 * 3 + 0] = 0.2f;

  n = decode_ok (&c, outs, 6, &identity, 64, 64, &d);
  ck_assert_msg (n == 2, "expected 2 detections, got %d", n);
  assert_box (&d[0], 1, 0.7f, 12, 12, 40, 8);
  assert_box (&d[1], 2, 0.4f, 32, 0, 32, 32);
  g_free (d);

  /* pairing is by cell count and class count, not by output order */
  shuffled[0] = outs[5];
  shuffled[1] = outs[0];
  shuffled[2] = outs[4];
  shuffled[3] = outs[2];
  shuffled[4] = outs[3];
  shuffled[5] = outs[1];
  n = decode_ok (&c, shuffled, 6, &identity, 64, 64, &d);
  ck_assert_msg (n == 2, "shuffled outputs: expected 2 detections, got %d",
      n);
  assert_box (&d[0], 1, 0.7f, 12, 12, 40, 8);
  g_free (d);
  for (int i = 0; i < 6; i++)
    lens_tensor_free (outs[i]);
}
END_TEST

/* FastestDet: [1,5+C,H,W], stride 16 single level */
START_TEST (test_decode_fastestdet)
{
  const int64_t shape[] = { 1, 8, 4, 4 };
  LensTensor *t = new_output (4, shape);
  LensDecodeConfig c;
  LensDetection *d;
  float *p = fdata (t);
  const int P = 16;
  int cellx = 1, celly = 2, at = celly * 4 + cellx;
  float score;
  int n;

  config_manual (&c, LENS_FAMILY_FASTESTDET, 64, 64, 3);
  p[0 * P + at] = 0.5f;                         /* objectness */
  p[1 * P + at] = 0.0f;                         /* tanh 0 = 0 */
  p[2 * P + at] = atanhf (0.5f);                /* y offset 0.5 cell */
  p[3 * P + at] = 0.0f;                         /* sigmoid 0.5: w 32 */
  p[4 * P + at] = logf (0.25f / 0.75f);         /* sigmoid 0.25: h 16 */
  p[5 * P + at] = 0.1f;
  p[6 * P + at] = 0.3f;
  p[7 * P + at] = 0.6f;
  /* high class, no objectness: out */
  p[5 * P + 0] = 1.0f;
  n = decode_ok (&c, &t, 1, &identity, 64, 64, &d);
  ck_assert_msg (n == 1, "expected 1 detection, got %d", n);
  score = powf (0.5f, 0.6f) * powf (0.6f, 0.4f);
  /* centre ((0 + 1) / 4 * 64, (0.5 + 2) / 4 * 64) = (16, 40) */
  assert_box (&d[0], 2, score, 0, 32, 32, 16);
  g_free (d);
  lens_tensor_free (t);
}
END_TEST

/* Boxes go from input pixels to source pixels through the letterbox and
 * are clipped to the source; boxes wholly in the padding vanish. */
START_TEST (test_decode_letterbox)
{
  const int64_t shape[] = { 1, 5, 84 };
  LensTensor *t = new_output (3, shape);
  /* a 128x96 source into 64x64: scale 0.5, 8 px of padding above */
  const LensLetterbox box = { 0.5f, 0.5f, 0.0f, 8.0f };
  LensDecodeConfig c;
  LensDetection *d;
  float *p = fdata (t);
  const int N = 84;
  int n;

  config_manual (&c, LENS_FAMILY_YOLOV8, 64, 64, 1);
  /* input box (10, 18) 20x12 -> source (20, 20) 40x24 */
  p[0 * N + 0] = 20; p[1 * N + 0] = 24; p[2 * N + 0] = 20;
  p[3 * N + 0] = 12; p[4 * N + 0] = 0.9f;
  /* input box (54, 50) 20x10 spills past the right edge: clipped */
  p[0 * N + 1] = 64; p[1 * N + 1] = 55; p[2 * N + 1] = 20;
  p[3 * N + 1] = 10; p[4 * N + 1] = 0.8f;
  /* input box (30, 0) 4x6: wholly in the top padding */
  p[0 * N + 2] = 32; p[1 * N + 2] = 3; p[2 * N + 2] = 4;
  p[3 * N + 2] = 6; p[4 * N + 2] = 0.7f;
  n = decode_ok (&c, &t, 1, &box, 128, 96, &d);
  ck_assert_msg (n == 2, "expected 2 detections in the image, got %d", n);
  assert_box (&d[0], 0, 0.9f, 20, 20, 40, 24);
  /* x 108..148 clipped to 108..128; y 84..104 clipped to 84..96 */
  assert_box (&d[1], 0, 0.8f, 108, 84, 20, 12);
  g_free (d);

  /* NULL letterbox: input pixels are source pixels */
  n = decode_ok (&c, &t, 1, NULL, 64, 64, &d);
  ck_assert_msg (n == 3, "no letterbox: expected 3, got %d", n);
  assert_box (&d[0], 0, 0.9f, 10, 18, 20, 12);
  g_free (d);
  lens_tensor_free (t);
}
END_TEST

START_TEST (test_decode_errors)
{
  const int64_t shape[] = { 1, 9, 84 };
  LensTensor *t = new_output (3, shape);
  const LensTensor *outputs[] = { t };
  LensError err = LENS_ERROR_INIT;
  LensDecodeConfig c;
  LensDetection *d;
  int n;

  /* outputs with 5 classes against a 3-class configuration */
  config_manual (&c, LENS_FAMILY_YOLOV8, 64, 64, 3);
  ck_assert_int_eq (lens_decode (&c, outputs, 1, NULL, 64, 64, &d, &n, &err),
      LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "5 classes") != NULL
      && strstr (err.message, "3") != NULL,
      "message should give both class counts: %s", err.message);
  lens_error_clear (&err);

  /* a YOLOv8 tensor handed to a YOLOX configuration */
  config_manual (&c, LENS_FAMILY_YOLOX, 64, 64, 3);
  ck_assert_int_eq (lens_decode (&c, outputs, 1, NULL, 64, 64, &d, &n, &err),
      LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "[1,9,84]") != NULL,
      "message should give the shape: %s", err.message);
  lens_error_clear (&err);

  /* an uninitialised configuration */
  memset (&c, 0, sizeof c);
  ck_assert_int_eq (lens_decode (&c, outputs, 1, NULL, 64, 64, &d, &n, &err),
      LENS_ERROR_INVALID);
  lens_error_clear (&err);
  lens_tensor_free (t);
}
END_TEST

/* ---- family detection and 'names' on synthetic ONNX models ---- */

static LensContext *ctx;

static void
ctx_setup (void)
{
  LensError err = LENS_ERROR_INIT;

  tmp_setup ();
  if (lens_context_new (NULL, &ctx, &err) != LENS_OK)
    ck_abort_msg ("no OpenCL device: %s", err.message);
}

static void
ctx_teardown (void)
{
  lens_context_free (ctx);
  ctx = NULL;
  tmp_teardown ();
}

static Onnx__ValueInfoProto *
value_info (const char *name, int ndim, const int64_t *shape)
{
  Onnx__ValueInfoProto *v = g_new (Onnx__ValueInfoProto, 1);
  Onnx__TypeProto *type = g_new (Onnx__TypeProto, 1);
  Onnx__TypeProto__Tensor *tt = g_new (Onnx__TypeProto__Tensor, 1);
  Onnx__TensorShapeProto *sp = g_new (Onnx__TensorShapeProto, 1);

  onnx__value_info_proto__init (v);
  onnx__type_proto__init (type);
  onnx__type_proto__tensor__init (tt);
  onnx__tensor_shape_proto__init (sp);
  v->name = g_strdup (name);
  v->type = type;
  type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  type->tensor_type = tt;
  tt->has_elem_type = TRUE;
  tt->elem_type = LENS_DTYPE_FLOAT;
  tt->shape = sp;
  sp->n_dim = ndim;
  sp->dim = g_new (Onnx__TensorShapeProto__Dimension *, ndim);
  for (int i = 0; i < ndim; i++) {
    sp->dim[i] = g_new (Onnx__TensorShapeProto__Dimension, 1);
    onnx__tensor_shape_proto__dimension__init (sp->dim[i]);
    sp->dim[i]->value_case =
        ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    sp->dim[i]->dim_value = shape[i];
  }
  return v;
}

static void
value_info_free (Onnx__ValueInfoProto *v)
{
  Onnx__TensorShapeProto *sp = v->type->tensor_type->shape;

  for (size_t i = 0; i < sp->n_dim; i++)
    g_free (sp->dim[i]);
  g_free (sp->dim);
  g_free (sp);
  g_free (v->type->tensor_type);
  g_free (v->type);
  g_free (v->name);
  g_free (v);
}

typedef struct
{
  int ndim;
  int64_t shape[4];
} OutSpec;

/* Writes a model with a [1,3,h,w] 'images' input and one Sigmoid per
 * output, fed by an input of that output's shape, plus @meta (key, value
 * pairs, NULL-terminated), and loads it. */
static LensModel *
synthetic_model (const char *file, int w, int h, const OutSpec *outs,
    int n_outs, const char *const *meta)
{
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto opset, *opsets[1] = { &opset };
  Onnx__NodeProto *nodes[16];
  Onnx__ValueInfoProto *inputs[17], *outputs[16];
  Onnx__StringStringEntryProto *props[16];
  const int64_t in_shape[] = { 1, 3, h, w };
  LensError err = LENS_ERROR_INIT;
  LensModel *m = NULL;
  char *path = g_build_filename (tmp_dir, file, NULL);
  guint8 *buf;
  size_t len;
  int n_meta = 0;

  onnx__model_proto__init (&model);
  onnx__graph_proto__init (&graph);
  onnx__operator_set_id_proto__init (&opset);
  opset.domain = (char *) "";
  opset.has_version = TRUE;
  opset.version = 13;
  model.has_ir_version = TRUE;
  model.ir_version = 7;
  model.n_opset_import = 1;
  model.opset_import = opsets;
  model.graph = &graph;
  graph.name = (char *) "synthetic";

  inputs[0] = value_info ("images", 4, in_shape);
  for (int i = 0; i < n_outs; i++) {
    char *in_name = g_strdup_printf ("head%d", i);
    char *out_name = g_strdup_printf ("out%d", i);

    inputs[i + 1] = value_info (in_name, outs[i].ndim, outs[i].shape);
    outputs[i] = value_info (out_name, outs[i].ndim, outs[i].shape);
    nodes[i] = g_new (Onnx__NodeProto, 1);
    onnx__node_proto__init (nodes[i]);
    nodes[i]->op_type = g_strdup ("Sigmoid");
    nodes[i]->name = g_strdup_printf ("sigmoid%d", i);
    nodes[i]->n_input = 1;
    nodes[i]->input = g_new (char *, 1);
    nodes[i]->input[0] = in_name;
    nodes[i]->n_output = 1;
    nodes[i]->output = g_new (char *, 1);
    nodes[i]->output[0] = out_name;
  }
  graph.n_node = n_outs;
  graph.node = nodes;
  graph.n_input = n_outs + 1;
  graph.input = inputs;
  graph.n_output = n_outs;
  graph.output = outputs;
  for (; meta && meta[2 * n_meta]; n_meta++) {
    props[n_meta] = g_new (Onnx__StringStringEntryProto, 1);
    onnx__string_string_entry_proto__init (props[n_meta]);
    props[n_meta]->key = (char *) meta[2 * n_meta];
    props[n_meta]->value = (char *) meta[2 * n_meta + 1];
  }
  model.n_metadata_props = n_meta;
  model.metadata_props = props;

  len = onnx__model_proto__get_packed_size (&model);
  buf = g_malloc (len);
  onnx__model_proto__pack (&model, buf);
  ck_assert (g_file_set_contents (path, (const char *) buf, len, NULL));
  g_free (buf);

  for (int i = 0; i < n_meta; i++)
    g_free (props[i]);
  value_info_free (inputs[0]);
  for (int i = 0; i < n_outs; i++) {
    value_info_free (inputs[i + 1]);
    value_info_free (outputs[i]);
    g_free (nodes[i]->input[0]);
    g_free (nodes[i]->input);
    g_free (nodes[i]->output[0]);
    g_free (nodes[i]->output);
    g_free (nodes[i]->op_type);
    g_free (nodes[i]->name);
    g_free (nodes[i]);
  }

  ck_assert_msg (lens_model_load (ctx, path, 0, NULL, &m, &err) == LENS_OK,
      "synthetic model %s did not load: %s", file, err.message);
  g_free (path);
  return m;
}

static const char *const ultra_meta[] = {
  "task", "detect", "stride", "32", "imgsz", "[64, 64]",
  "names", "{0: 'person', 1: \"it's\", 2: 'back\\\\slash \\'q\\' caf\\xe9'}",
  NULL
};

START_TEST (test_config_ultralytics)
{
  const OutSpec v8[] = { { 3, { 1, 7, 84 } } };
  const OutSpec v5[] = { { 3, { 1, 252, 8 } } };
  const OutSpec e2e[] = { { 3, { 1, 300, 6 } } };
  const char *const e2e_meta[] = { "end2end", "True", "stride", "32",
    "names", "{0: 'a', 1: 'b', 2: 'c', 3: 'd'}", NULL
  };
  LensError err = LENS_ERROR_INIT;
  LensDecodeConfig c;
  LensModel *m;

  m = synthetic_model ("v8.onnx", 64, 64, v8, 1, ultra_meta);
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (c.family == LENS_FAMILY_YOLOV8, "[1,7,84]: expected "
      "yolov8, got %s", lens_family_name (c.family));
  ck_assert_int_eq (c.n_classes, 3);
  ck_assert_int_eq (c.input_width, 64);
  ck_assert_int_eq (c.input_height, 64);
  ck_assert_msg (c.n_strides == 3 && c.strides[0] == 8
      && c.strides[2] == 32, "84 anchors over 64x64: strides 8,16,32");
  ck_assert_str_eq (c.labels[0], "person");
  ck_assert_str_eq (c.labels[1], "it's");
  ck_assert_str_eq (c.labels[2], "back\\slash 'q' caf\xc3\xa9");
  ck_assert (c.labels[3] == NULL);
  ck_assert_msg (c.conf_threshold == 0.25f && c.iou_threshold == 0.45f
      && c.max_detections == 300, "defaults 0.25 / 0.45 / 300");
  lens_decode_config_clear (&c);
  ck_assert (c.labels == NULL);
  lens_model_free (m);

  m = synthetic_model ("v5.onnx", 64, 64, v5, 1, ultra_meta);
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (c.family == LENS_FAMILY_YOLOV5, "[1,252,8] with "
      "Ultralytics metadata: expected yolov5, got %s",
      lens_family_name (c.family));
  ck_assert_msg (c.n_strides == 3 && c.strides[0] == 8
      && c.strides[2] == 32, "252 rows = 3 anchors x 84 cells");
  lens_decode_config_clear (&c);
  lens_model_free (m);

  m = synthetic_model ("e2e.onnx", 64, 64, e2e, 1, e2e_meta);
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (c.family == LENS_FAMILY_END2END, "end2end metadata: got "
      "%s", lens_family_name (c.family));
  ck_assert_msg (c.n_classes == 4, "end2end classes come from the names, "
      "got %d", c.n_classes);
  lens_decode_config_clear (&c);
  lens_model_free (m);
}
END_TEST

START_TEST (test_config_from_shapes)
{
  const OutSpec yolox[] = { { 3, { 1, 84, 8 } } };
  const OutSpec nano[] = { { 3, { 1, 64, 3 } }, { 3, { 1, 16, 3 } },
    { 3, { 1, 4, 3 } }, { 3, { 1, 64, 32 } }, { 3, { 1, 16, 32 } },
    { 3, { 1, 4, 32 } }
  };
  const OutSpec fastest[] = { { 4, { 1, 8, 4, 4 } } };
  const OutSpec tiny_yolox[] = { { 3, { 1, 21, 85 } } };
  const OutSpec nms_export[] = { { 3, { 1, 100, 6 } } };
  LensError err = LENS_ERROR_INIT;
  LensDecodeConfig c;
  LensModel *m;

  m = synthetic_model ("yolox.onnx", 64, 64, yolox, 1, NULL);
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (c.family == LENS_FAMILY_YOLOX, "[1,84,8] without "
      "metadata: expected yolox, got %s", lens_family_name (c.family));
  ck_assert_int_eq (c.n_classes, 3);
  ck_assert_msg (c.n_strides == 3 && c.strides[1] == 16, "yolox strides");
  ck_assert_msg (strcmp (c.labels[2], "2") == 0, "no names: labels are "
      "the class ids, got '%s'", c.labels[2]);
  lens_decode_config_clear (&c);

  /* the caller's family wins */
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_YOLOV5, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_int_eq (c.family, LENS_FAMILY_YOLOV5);
  lens_decode_config_clear (&c);
  /* and is checked against the shapes */
  ck_assert_int_eq (lens_decode_config_init (&c, m, LENS_FAMILY_FASTESTDET,
          NULL, &err), LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "yolox.onnx") != NULL
      && strstr (err.message, "[1,84,8]") != NULL,
      "message should name the model and shape: %s", err.message);
  lens_error_clear (&err);
  lens_model_free (m);

  /* a small input makes YOLOX rows (16 + 4 + 1) fewer than its 85
   * columns: the anchor count still tells rows from columns */
  m = synthetic_model ("tiny.onnx", 32, 32, tiny_yolox, 1, NULL);
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (c.family == LENS_FAMILY_YOLOX && c.n_classes == 80,
      "[1,21,85] over 32x32: expected yolox with 80 classes, got %s with "
      "%d", lens_family_name (c.family), c.n_classes);
  lens_decode_config_clear (&c);
  lens_model_free (m);

  m = synthetic_model ("nano.onnx", 64, 64, nano, 6, NULL);
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (c.family == LENS_FAMILY_NANODET, "six [1,HW,C] outputs: "
      "expected nanodet, got %s", lens_family_name (c.family));
  ck_assert_msg (c.n_classes == 3, "the 32-channel maps are the boxes: "
      "expected 3 classes, got %d", c.n_classes);
  ck_assert_msg (c.n_strides == 3 && c.strides[0] == 8
      && c.strides[1] == 16 && c.strides[2] == 32, "nanodet strides");
  lens_decode_config_clear (&c);
  lens_model_free (m);

  m = synthetic_model ("fastest.onnx", 64, 64, fastest, 1, NULL);
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) == LENS_OK, "%s", err.message);
  ck_assert_msg (c.family == LENS_FAMILY_FASTESTDET, "[1,8,4,4]: expected "
      "fastestdet, got %s", lens_family_name (c.family));
  ck_assert_msg (c.n_classes == 3 && c.n_strides == 1
      && c.strides[0] == 16, "fastestdet: 3 classes at stride 16");
  lens_decode_config_clear (&c);
  lens_model_free (m);

  /* [1,100,6] is no anchor grid of 64x64: an NMS export; its class count
   * must come from labels */
  m = synthetic_model ("nms.onnx", 64, 64, nms_export, 1, NULL);
  ck_assert_int_eq (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN,
          NULL, &err), LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "labels") != NULL,
      "message should ask for labels: %s", err.message);
  lens_error_clear (&err);
  {
    char *p = write_tmp ("two.names", "x\ny\n", -1);

    ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, p,
            &err) == LENS_OK, "%s", err.message);
    ck_assert_int_eq (c.family, LENS_FAMILY_END2END);
    ck_assert_int_eq (c.n_classes, 2);
    ck_assert_str_eq (c.labels[1], "y");
    lens_decode_config_clear (&c);
    g_free (p);
  }
  lens_model_free (m);
}
END_TEST

START_TEST (test_config_refused)
{
  const OutSpec v8[] = { { 3, { 1, 7, 84 } } };
  const char *const seg_meta[] = { "task", "segment", NULL };
  const char *const bad_names[][2] = {
    { "{0: 'a', 1: 'b', 2: 'c", "unterminated" },
    { "{0: 'a', 2: 'b', 3: 'c'}", "class 1" },
    { "{0: 'a', 0: 'b', 1: 'c'}", "twice" },
    { "person, bicycle", "expected" },
  };
  LensError err = LENS_ERROR_INIT;
  LensDecodeConfig c;
  LensModel *m;
  char *labels;

  m = synthetic_model ("seg.onnx", 64, 64, v8, 1, seg_meta);
  ck_assert_int_eq (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN,
          NULL, &err), LENS_ERROR_UNSUPPORTED);
  ck_assert_msg (strstr (err.message, "segment") != NULL,
      "message should name the task: %s", err.message);
  lens_error_clear (&err);
  lens_model_free (m);

  for (guint i = 0; i < G_N_ELEMENTS (bad_names); i++) {
    const char *meta[] = { "names", bad_names[i][0], NULL };

    m = synthetic_model ("names.onnx", 64, 64, v8, 1, meta);
    ck_assert_int_eq (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN,
            NULL, &err), LENS_ERROR_PARSE);
    ck_assert_msg (strstr (err.message, "'names'") != NULL
        && strstr (err.message, bad_names[i][1]) != NULL,
        "names \"%s\": message should name the metadata and say '%s': %s",
        bad_names[i][0], bad_names[i][1], err.message);
    lens_error_clear (&err);
    lens_model_free (m);
  }

  /* other accepted spellings: a list, quoted keys, keys out of order */
  {
    const char *meta[] = { "names", " ['x', \"y\", 'z'] ", NULL };
    const char *meta2[] = { "names", "{'2': 'z', '0': 'x', '1': 'y',}",
      NULL
    };

    m = synthetic_model ("list.onnx", 64, 64, v8, 1, meta);
    ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN,
            NULL, &err) == LENS_OK, "list names: %s", err.message);
    ck_assert_str_eq (c.labels[2], "z");
    lens_decode_config_clear (&c);
    lens_model_free (m);
    m = synthetic_model ("keys.onnx", 64, 64, v8, 1, meta2);
    ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN,
            NULL, &err) == LENS_OK, "quoted keys: %s", err.message);
    ck_assert_str_eq (c.labels[0], "x");
    ck_assert_str_eq (c.labels[2], "z");
    lens_decode_config_clear (&c);
    lens_model_free (m);
  }

  /* a labels file whose count disagrees with the output */
  m = synthetic_model ("v8b.onnx", 64, 64, v8, 1, ultra_meta);
  labels = write_tmp ("four.names", "a\nb\nc\nd\n", -1);
  ck_assert_int_eq (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN,
          labels, &err), LENS_ERROR_INVALID);
  ck_assert_msg (strstr (err.message, "4 labels") != NULL
      && strstr (err.message, "3 classes") != NULL
      && strstr (err.message, "four.names") != NULL,
      "message should give both counts and the file: %s", err.message);
  lens_error_clear (&err);
  g_free (labels);
  lens_model_free (m);
}
END_TEST

/* ---- where the data is ---- */

static char *shared_dir;
static char *fixtures_dir;

/* ---- ONNX Runtime reference outputs of real images ---- */

typedef struct
{
  int cls;
  float x1, y1, x2, y2;
} Object;

typedef struct
{
  const char *id;
  LensFamily family;
  int n_strides;
  int strides[3];
  /* classes that must be found (class id, minimum count) */
  struct { int cls, min_count; } expect[4];
  int forbidden_cls;            /* must not appear; -1: none */
  /* objects that must be found, in source pixels: the boxes an
   * independent decode (numpy, following each upstream demo) of the same
   * fixture gives */
  Object objects[2];
} FixtureCase;

static const FixtureCase fixture_cases[] = {
  /* bus.jpg: a bus and 4 people */
  { "yolov8n_int8", LENS_FAMILY_YOLOV8, 3, { 8, 16, 32 },
    { { 5, 1 }, { 0, 3 } }, 17,
    { { 5, 34.0f, 230.7f, 796.3f, 766.4f },
      { 0, 671.8f, 371.2f, 807.1f, 875.9f } } },
  /* dog.jpg: dog, bicycle, car or truck */
  { "yolo11n_int8_320", LENS_FAMILY_YOLOV8, 3, { 8, 16, 32 },
    { { 16, 1 }, { 1, 1 } }, 0,
    { { 16, 131.1f, 192.0f, 310.1f, 542.4f },
      { 1, 135.3f, 136.4f, 563.8f, 426.1f } } },
  /* person.jpg: person, horse, dog */
  { "yolo26n_int8", LENS_FAMILY_END2END, 3, { 8, 16, 32 },
    { { 0, 1 }, { 17, 1 }, { 16, 1 } }, 5,
    { { 17, 406.2f, 137.1f, 597.8f, 351.6f },
      { 0, 193.9f, 96.1f, 275.4f, 376.6f } } },
  /* horses.jpg: horses */
  { "yolov5n_fp16_256", LENS_FAMILY_YOLOV5, 3, { 8, 16, 32 },
    { { 17, 2 } }, 0,
    { { 17, 422.7f, 213.4f, 600.2f, 346.0f } } },
  /* dog.jpg */
  { "yolox_nano", LENS_FAMILY_YOLOX, 3, { 8, 16, 32 },
    { { 16, 1 }, { 1, 1 }, { 2, 1 } }, 0,
    { { 16, 132.8f, 206.5f, 326.8f, 543.2f },
      { 1, 58.1f, 137.1f, 572.0f, 423.9f } } },
  /* person.jpg */
  { "nanodet_m_416", LENS_FAMILY_NANODET, 3, { 8, 16, 32 },
    { { 16, 1 }, { 17, 1 }, { 0, 1 } }, 5,
    { { 0, 189.7f, 103.2f, 274.5f, 376.6f },
      { 16, 64.8f, 264.0f, 201.9f, 352.1f } } },
  /* horses.jpg (FastestDet mixes up horse, sheep and cow) */
  { "FastestDet", LENS_FAMILY_FASTESTDET, 1, { 16 },
    { { 17, 2 } }, 0,
    { { 17, 426.9f, 214.0f, 595.9f, 349.8f } } },
};

static gboolean
inside (const LensDetection *d, int sw, int sh)
{
  return d->x > 0 && d->y > 0 && d->x + d->w < sw && d->y + d->h < sh;
}

/* Decodes the ORT outputs with the letterbox the fixture records and
 * checks the objects of the photo, their boxes inside the picture. */
START_TEST (test_fixture_outputs)
{
  const FixtureCase *fc = &fixture_cases[_i];
  LensError err = LENS_ERROR_INIT;
  GKeyFile *kf = g_key_file_new ();
  char *manifest = g_build_filename (fixtures_dir, "manifest.ini", NULL);
  char *size, *place, *shape, **files;
  LensTensor *outs[16];
  LensDecodeConfig c;
  LensLetterbox box;
  LensDetection *d;
  int sw, sh, px, py, pw, ph, iw, ih, n_files, n, counts[80] = { 0 };

  ck_assert_msg (g_key_file_load_from_file (kf, manifest, 0, NULL),
      "cannot read %s", manifest);
  size = g_key_file_get_string (kf, fc->id, "image_size", NULL);
  place = g_key_file_get_string (kf, fc->id, "placement", NULL);
  shape = g_key_file_get_string (kf, fc->id, "input_shape", NULL);
  files = g_key_file_get_string_list (kf, fc->id, "output_files", NULL,
      NULL);
  ck_assert_msg (size && place && shape && files, "manifest section [%s] "
      "incomplete", fc->id);
  ck_assert (sscanf (size, "%dx%d", &sw, &sh) == 2);
  ck_assert (sscanf (place, "%d;%d;%d;%d", &px, &py, &pw, &ph) == 4);
  ck_assert (sscanf (shape, "1x3x%dx%d", &ih, &iw) == 2);
  n_files = (int) g_strv_length (files);
  for (int i = 0; i < n_files; i++) {
    char *p = g_build_filename (fixtures_dir, files[i], NULL);

    ck_assert_msg (lens_npy_load (p, &outs[i], &err) == LENS_OK, "%s",
        err.message);
    g_free (p);
  }

  config_manual (&c, fc->family, iw, ih, 80);
  c.n_strides = fc->n_strides;
  memcpy (c.strides, fc->strides, sizeof c.strides);
  box.scale_x = (float) pw / sw;
  box.scale_y = (float) ph / sh;
  box.pad_x = px;
  box.pad_y = py;
  n = decode_ok (&c, outs, n_files, &box, sw, sh, &d);

  for (int i = 0; i < n; i++) {
    ck_assert_msg (d[i].class_id >= 0 && d[i].class_id < 80, "class id");
    ck_assert_msg (i == 0 || d[i].score <= d[i - 1].score, "sorted");
    ck_assert_msg (d[i].score > 0.25f && d[i].score <= 1.0f, "score %g",
        (double) d[i].score);
    ck_assert_msg (d[i].x >= 0 && d[i].y >= 0 && d[i].w > 0 && d[i].h > 0
        && d[i].x + d[i].w <= sw + 1e-3f && d[i].y + d[i].h <= sh + 1e-3f,
        "box %g,%g %gx%g outside the %dx%d image", (double) d[i].x,
        (double) d[i].y, (double) d[i].w, (double) d[i].h, sw, sh);
    /* real objects are more than a few pixels wide */
    ck_assert_msg (d[i].w > 8 && d[i].h > 8, "%s: degenerate box %gx%g",
        fc->id, (double) d[i].w, (double) d[i].h);
    counts[d[i].class_id]++;
  }
  for (int k = 0; k < 4 && fc->expect[k].min_count > 0; k++)
    ck_assert_msg (counts[fc->expect[k].cls] >= fc->expect[k].min_count,
        "%s: expected at least %d of class %d, found %d (%d detections)",
        fc->id, fc->expect[k].min_count, fc->expect[k].cls,
        counts[fc->expect[k].cls], n);
  if (fc->forbidden_cls >= 0)
    ck_assert_msg (counts[fc->forbidden_cls] == 0, "%s: class %d is not "
        "in the picture", fc->id, fc->forbidden_cls);
  for (int k = 0; k < 2 && fc->objects[k].x2 > 0; k++) {
    const Object *o = &fc->objects[k];
    LensDetection want = det (o->cls, 1, o->x1, o->y1, o->x2 - o->x1,
        o->y2 - o->y1);
    float best = 0;

    for (int i = 0; i < n; i++)
      if (d[i].class_id == o->cls)
        best = MAX (best, lens_iou (&d[i], &want));
    ck_assert_msg (best > 0.8f, "%s: class %d at %g,%g-%g,%g not found "
        "(best IoU %g)", fc->id, o->cls, (double) o->x1, (double) o->y1,
        (double) o->x2, (double) o->y2, (double) best);
  }
  /* no two survivors of one class overlap beyond the NMS threshold (NMS
   * runs before clipping to the image, so clipped boxes are left out) */
  if (fc->family != LENS_FAMILY_END2END)
    for (int i = 0; i < n; i++)
      for (int j = i + 1; j < n; j++)
        ck_assert_msg (d[i].class_id != d[j].class_id
            || !inside (&d[i], sw, sh) || !inside (&d[j], sw, sh)
            || lens_iou (&d[i], &d[j]) <= 0.45f + 1e-3f,
            "%s: NMS left overlapping boxes %d and %d", fc->id, i, j);

  g_free (d);
  for (int i = 0; i < n_files; i++)
    lens_tensor_free (outs[i]);
  g_strfreev (files);
  g_free (size);
  g_free (place);
  g_free (shape);
  g_free (manifest);
  g_key_file_free (kf);
}
END_TEST

/* ---- real models in ../shared ---- */

typedef struct
{
  const char *path;
  LensFamily family;
  int width, height;
  int n_strides;
  int max_stride;
  gboolean labels_in_metadata;
} RealCase;

static const RealCase real_cases[] = {
  { "models/ultralytics/yolov8n_int8.onnx", LENS_FAMILY_YOLOV8, 640, 640,
    3, 32, TRUE },
  { "models/ultralytics/yolo11n_int8_320.onnx", LENS_FAMILY_YOLOV8, 320,
    320, 3, 32, TRUE },
  { "models/ultralytics/yolo26n_int8.onnx", LENS_FAMILY_END2END, 640, 640,
    3, 32, TRUE },
  { "models/ultralytics/yolov5n_fp16_256.onnx", LENS_FAMILY_YOLOV5, 256,
    256, 3, 32, TRUE },
  { "models/yolox_nano.onnx", LENS_FAMILY_YOLOX, 416, 416, 3, 32, FALSE },
  { "models/nanodet_m_416.onnx", LENS_FAMILY_NANODET, 416, 416, 3, 32,
    FALSE },
  { "models/FastestDet.onnx", LENS_FAMILY_FASTESTDET, 352, 352, 1, 16,
    FALSE },
};

START_TEST (test_real_model_config)
{
  const RealCase *rc = &real_cases[_i];
  LensError err = LENS_ERROR_INIT;
  char *path = g_build_filename (shared_dir, rc->path, NULL);
  char *names = g_build_filename (shared_dir, "models", "coco.names", NULL);
  LensDecodeConfig c;
  LensModel *m;

  ck_assert_msg (lens_model_load (ctx, path, 0, NULL, &m, &err) == LENS_OK,
      "%s", err.message);
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) == LENS_OK, "%s: %s", rc->path, err.message);
  ck_assert_msg (c.family == rc->family, "%s: expected %s, got %s",
      rc->path, lens_family_name (rc->family), lens_family_name (c.family));
  ck_assert_msg (c.n_classes == 80, "%s: expected 80 classes, got %d",
      rc->path, c.n_classes);
  ck_assert_msg (c.input_width == rc->width && c.input_height == rc->height,
      "%s: expected input %dx%d, got %dx%d", rc->path, rc->width,
      rc->height, c.input_width, c.input_height);
  ck_assert_msg (c.n_strides == rc->n_strides
      && c.strides[c.n_strides - 1] == rc->max_stride,
      "%s: expected %d strides up to %d, got %d (last %d)", rc->path,
      rc->n_strides, rc->max_stride, c.n_strides,
      c.n_strides ? c.strides[c.n_strides - 1] : 0);
  if (rc->labels_in_metadata) {
    ck_assert_str_eq (c.labels[0], "person");
    ck_assert_str_eq (c.labels[79], "toothbrush");
  } else {
    ck_assert_str_eq (c.labels[79], "79");
  }
  lens_decode_config_clear (&c);

  /* coco.names gives the same labels to every model */
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, names,
          &err) == LENS_OK, "%s with coco.names: %s", rc->path,
      err.message);
  ck_assert_str_eq (c.labels[0], "person");
  ck_assert_str_eq (c.labels[79], "toothbrush");
  ck_assert (c.labels[80] == NULL);
  lens_decode_config_clear (&c);
  lens_model_free (m);
  g_free (names);
  g_free (path);
}
END_TEST

START_TEST (test_real_model_not_detector)
{
  LensError err = LENS_ERROR_INIT;
  char *path = g_build_filename (shared_dir, "models", "face",
      "yunet_n_320_320.onnx", NULL);
  LensDecodeConfig c;
  LensModel *m;

  ck_assert_msg (lens_model_load (ctx, path, 0, NULL, &m, &err) == LENS_OK,
      "%s", err.message);
  /* twelve outputs (cls, obj, bbox, kps per stride): no family here */
  ck_assert_msg (lens_decode_config_init (&c, m, LENS_FAMILY_UNKNOWN, NULL,
          &err) != LENS_OK, "YuNet is not a layout lens_decode knows");
  ck_assert_msg (strstr (err.message, "yunet_n_320_320.onnx") != NULL,
      "message should name the model: %s", err.message);
  lens_error_clear (&err);
  lens_model_free (m);
  g_free (path);
}
END_TEST

static Suite *
decode_suite (void)
{
  Suite *s = suite_create ("decode");
  TCase *tc;

  tc = tcase_create ("names");
  tcase_add_test (tc, test_family_names);
  suite_add_tcase (s, tc);

  tc = tcase_create ("labels");
  tcase_add_checked_fixture (tc, tmp_setup, tmp_teardown);
  tcase_add_test (tc, test_labels_valid);
  tcase_add_test (tc, test_labels_crlf_bom_trailing);
  tcase_add_test (tc, test_labels_refused);
  suite_add_tcase (s, tc);

  tc = tcase_create ("nms");
  tcase_add_test (tc, test_iou);
  tcase_add_test (tc, test_nms_class_aware);
  tcase_add_test (tc, test_nms_threshold_edge);
  tcase_add_test (tc, test_nms_max_and_order);
  suite_add_tcase (s, tc);

  tc = tcase_create ("families");
  tcase_add_test (tc, test_decode_yolov5);
  tcase_add_test (tc, test_decode_yolov8);
  tcase_add_test (tc, test_decode_end2end);
  tcase_add_test (tc, test_decode_yolox);
  tcase_add_test (tc, test_decode_nanodet);
  tcase_add_test (tc, test_decode_fastestdet);
  tcase_add_test (tc, test_decode_letterbox);
  tcase_add_test (tc, test_decode_errors);
  suite_add_tcase (s, tc);

  tc = tcase_create ("config");
  tcase_add_checked_fixture (tc, ctx_setup, ctx_teardown);
  tcase_add_test (tc, test_config_ultralytics);
  tcase_add_test (tc, test_config_from_shapes);
  tcase_add_test (tc, test_config_refused);
  suite_add_tcase (s, tc);

  if (fixtures_dir != NULL) {
    tc = tcase_create ("ort-fixtures");
    tcase_add_loop_test (tc, test_fixture_outputs, 0,
        G_N_ELEMENTS (fixture_cases));
    suite_add_tcase (s, tc);
  } else {
    printf ("SKIP ort-fixtures: tests/fixtures/ort/manifest.ini not "
        "found\n");
  }

  if (shared_dir != NULL) {
    tc = tcase_create ("real-models");
    tcase_add_checked_fixture (tc, ctx_setup, ctx_teardown);
    tcase_set_timeout (tc, 300);
    tcase_add_loop_test (tc, test_real_model_config, 0,
        G_N_ELEMENTS (real_cases));
    tcase_add_test (tc, test_real_model_not_detector);
    suite_add_tcase (s, tc);
  } else {
    printf ("SKIP real-models: ../shared not found (set LENS_SHARED_DIR)\n");
  }
  return s;
}

int
main (void)
{
  char *manifest = g_build_filename (LENS_SOURCE_ROOT, "tests", "fixtures",
      "ort", "manifest.ini", NULL);
  int status;

  shared_dir = lens_check_shared_dir ();
  if (g_file_test (manifest, G_FILE_TEST_EXISTS))
    fixtures_dir = g_build_filename (LENS_SOURCE_ROOT, "tests", "fixtures",
        "ort", NULL);
  status = lens_check_run (decode_suite ());
  g_free (shared_dir);
  g_free (fixtures_dir);
  g_free (manifest);
  return status;
}
