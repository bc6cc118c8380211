/* test-detect.c: LensDetector on the real models of ../shared (what each
 * finds on the sample photos, the feature maps it picks per family and
 * their heatmaps, detectors sharing a model, the executor accessors it
 * relies on) and the lens-detect tool (its JSON, its heatmap PNG, its
 * errors). Skips (77) when ../shared is absent.
 *
 * ../shared is $LENS_SHARED_DIR, else ../shared from the working
 * directory, else <source root>/../shared. */
#include "lens-check.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lens-image.h"
/* jpeglib.h needs stdio.h's FILE first */

static char *shared_dir;
static LensContext *ctx;

/* ---- the models and what they should find ---- */

typedef struct
{
  const char *path;             /* under models/ */
  const char *family;           /* lens_family_name of the detected family */
  int input;                    /* square input size */
  int n_strides;
  int strides[3];
  gboolean has_score;           /* score heatmaps expected */
} ModelCase;

static const ModelCase models[] = {
  {"ultralytics/yolov8n_int8.onnx", "yolov8", 640, 3, {8, 16, 32}, TRUE},
  {"ultralytics/yolo11n_int8_320.onnx", "yolov8", 320, 3, {8, 16, 32}, TRUE},
  {"ultralytics/yolo26n_int8.onnx", "end2end", 640, 3, {8, 16, 32}, TRUE},
  {"ultralytics/yolov5n_fp16_256.onnx", "yolov5", 256, 3, {8, 16, 32}, FALSE},
  {"yolox_nano.onnx", "yolox", 416, 3, {8, 16, 32}, TRUE},
  {"nanodet_m_416.onnx", "nanodet", 416, 3, {8, 16, 32}, TRUE},
  {"FastestDet.onnx", "fastestdet", 352, 1, {16}, TRUE},
};

static LensImage
load_jpeg (const char *name)
{
  char *path = g_build_filename (shared_dir, "images", name, NULL);
  char *error = NULL;
  LensImage img;

  ck_assert_msg (lens_image_load (path, &img, &error), "%s: %s", path, error);
  g_free (path);
  return img;
}

static LensFrame
frame_of (const LensImage * img)
{
  LensFrame frame = { 0 };

  frame.format = LENS_PIXEL_RGB;
  frame.width = img->width;
  frame.height = img->height;
  frame.planes[0] = img->rgb;
  frame.strides[0] = img->width * 3;
  return frame;
}

static LensDetector *
new_detector (const char *rel, gboolean feature_maps, const char *tensors)
{
  LensError err = LENS_ERROR_INIT;
  LensDetectorOptions opts;
  LensDetector *det = NULL;
  char *path = g_build_filename (shared_dir, "models", rel, NULL);
  char *labels = g_build_filename (shared_dir, "models", "coco.names", NULL);

  lens_detector_options_init (&opts);
  opts.model_path = path;
  opts.labels_path = labels;
  opts.feature_maps = feature_maps;
  opts.feature_tensors = tensors;
  ck_assert_msg (lens_detector_new (ctx, &opts, &det, &err) == LENS_OK,
      "detector on %s: %s", rel, err.message);
  g_free (path);
  g_free (labels);
  return det;
}

static void
ctx_setup (void)
{
  LensError err = LENS_ERROR_INIT;

  if (lens_context_new (NULL, &ctx, &err) != LENS_OK)
    ck_abort_msg ("no OpenCL device: %s", err.message);
}

static void
ctx_teardown (void)
{
  lens_context_free (ctx);
  ctx = NULL;
}

static int
count_label (const LensDetector * det, const LensDetectorResult * r,
    const char *label)
{
  const LensDecodeConfig *c = lens_detector_config (det);
  int n = 0;

  for (int i = 0; i < r->n_detections; i++)
    n += strcmp (c->labels[r->detections[i].class_id], label) == 0;
  return n;
}

static char *
describe (const LensDetector * det, const LensDetectorResult * r)
{
  const LensDecodeConfig *c = lens_detector_config (det);
  GString *s = g_string_new (NULL);

  for (int i = 0; i < r->n_detections; i++)
    g_string_append_printf (s, "%s%s %.2f", i ? ", " : "",
        c->labels[r->detections[i].class_id], r->detections[i].score);
  return g_string_free (s, FALSE);
}

/* Detections are sorted, above the threshold and inside the image. */
static void
check_detections (const char *what, const LensDetector * det,
    const LensDetectorResult * r)
{
  const LensDecodeConfig *c = lens_detector_config (det);

  for (int i = 0; i < r->n_detections; i++) {
    const LensDetection *d = &r->detections[i];

    ck_assert_msg (d->class_id >= 0 && d->class_id < c->n_classes,
        "%s: detection %d has class %d of %d", what, i, d->class_id,
        c->n_classes);
    ck_assert_msg (d->score > c->conf_threshold && d->score <= 1.0f,
        "%s: detection %d score %g outside (%g, 1]", what, i, d->score,
        c->conf_threshold);
    ck_assert_msg (i == 0 || d->score <= r->detections[i - 1].score,
        "%s: detections not sorted by score at %d", what, i);
    ck_assert_msg (d->x >= 0 && d->y >= 0 && d->w > 0 && d->h > 0
        && d->x + d->w <= r->source_width + 0.01f
        && d->y + d->h <= r->source_height + 0.01f,
        "%s: detection %d box %g,%g %gx%g is not inside the %dx%d image",
        what, i, d->x, d->y, d->w, d->h, r->source_width, r->source_height);
  }
}

/* Feature maps: one per expected stride, grid sizes, finite heatmaps,
 * scores in 0..1 where the family has them, and the strongest score cell
 * on a detected object. */
static void
check_feature_maps (const char *what, const ModelCase * mc,
    const LensDetectorResult * r)
{
  float best = -1.0f;
  float px = 0, py = 0, margin = 0;
  gboolean on_object = FALSE;

  ck_assert_msg (r->n_feature_maps == mc->n_strides,
      "%s: %d feature maps, expected %d", what, r->n_feature_maps,
      mc->n_strides);
  for (int m = 0; m < r->n_feature_maps; m++) {
    const LensFeatureMap *fm = &r->feature_maps[m];
    int cells = (mc->input + mc->strides[m] - 1) / mc->strides[m];

    ck_assert_msg (fm->stride == mc->strides[m], "%s: map %d ('%s') has "
        "stride %d, expected %d", what, m, fm->tensor_name, fm->stride,
        mc->strides[m]);
    ck_assert_msg (fm->width == cells && fm->height == cells
        && fm->ndim == 4 && fm->shape[0] == 1 && fm->shape[2] == cells
        && fm->shape[3] == cells, "%s: map %d ('%s') is %dx%d (rank %d), "
        "expected [1,C,%d,%d]", what, m, fm->tensor_name, fm->width,
        fm->height, fm->ndim, cells, cells);
    ck_assert_msg (fm->activation != NULL, "%s: map %d has no activation",
        what, m);
    ck_assert_msg ((fm->score != NULL) == mc->has_score,
        "%s: map %d score heatmap %s, expected %s", what, m,
        fm->score ? "present" : "absent",
        mc->has_score ? "present" : "absent");
    for (int i = 0; i < cells * cells; i++) {
      ck_assert_msg (isfinite (fm->activation[i]) && fm->activation[i] >= 0,
          "%s: map %d activation[%d] = %g, expected finite >= 0", what, m,
          i, fm->activation[i]);
      if (fm->score == NULL)
        continue;
      ck_assert_msg (fm->score[i] >= 0.0f && fm->score[i] <= 1.0f,
          "%s: map %d score[%d] = %g outside 0..1", what, m, i,
          fm->score[i]);
      if (fm->score[i] > best) {
        /* the cell centre in source pixels, through the letterbox */
        float xi = (i % cells + 0.5f) * fm->stride;
        float yi = (i / cells + 0.5f) * fm->stride;

        best = fm->score[i];
        px = (xi - r->letterbox.pad_x) / r->letterbox.scale_x;
        py = (yi - r->letterbox.pad_y) / r->letterbox.scale_y;
        margin = fm->stride / r->letterbox.scale_x;
      }
    }
  }
  if (!mc->has_score)
    return;
  for (int i = 0; i < r->n_detections && !on_object; i++) {
    const LensDetection *d = &r->detections[i];

    on_object = px >= d->x - margin && px <= d->x + d->w + margin
        && py >= d->y - margin && py <= d->y + d->h + margin;
  }
  ck_assert_msg (on_object, "%s: the score heatmap peaks (%.2f) at %.0f,%.0f"
      ", on no detected object", what, best, px, py);
}

/* ---- per model: detections and feature maps ---- */

START_TEST (test_model)
{
  const ModelCase *mc = &models[_i];
  LensDetector *det = new_detector (mc->path, TRUE, NULL);
  const LensDecodeConfig *c = lens_detector_config (det);
  LensError err = LENS_ERROR_INIT;
  LensImage bus = load_jpeg ("bus.jpg"), dog = load_jpeg ("dog.jpg");
  LensFrame frame;
  LensDetectorResult r;
  char *what, *found;

  ck_assert_msg (strcmp (lens_family_name (c->family), mc->family) == 0,
      "%s: family %s, expected %s", mc->path, lens_family_name (c->family),
      mc->family);
  ck_assert_msg (c->input_width == mc->input && c->input_height == mc->input,
      "%s: input %dx%d, expected %d", mc->path, c->input_width,
      c->input_height, mc->input);

  /* bus.jpg: the bus and at least 3 of its 4 people. DATA.md's
   * ONNX Runtime run calls the bus a train with FastestDet. */
  frame = frame_of (&bus);
  ck_assert_msg (lens_detector_run (det, &frame, &r, &err) == LENS_OK,
      "%s on bus.jpg: %s", mc->path, err.message);
  what = g_strdup_printf ("%s on bus.jpg", mc->path);
  found = describe (det, &r);
  printf ("detect: %-36s bus.jpg %7.1f ms: %s\n", mc->path, r.inference_ms,
      found);
  for (int m = 0; m < r.n_feature_maps; m++)
    printf ("detect: %-36s   stride %2d: '%s' [%" G_GINT64_FORMAT ",%"
        G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
        "], score from %s\n", mc->path, r.feature_maps[m].stride,
        r.feature_maps[m].tensor_name, r.feature_maps[m].shape[0],
        r.feature_maps[m].shape[1], r.feature_maps[m].shape[2],
        r.feature_maps[m].shape[3],
        r.feature_maps[m].score_tensor_name ?
        r.feature_maps[m].score_tensor_name : "(none)");
  ck_assert_msg (r.source_width == bus.width
      && r.source_height == bus.height, "%s: source %dx%d", what,
      r.source_width, r.source_height);
  ck_assert_msg (count_label (det, &r, "bus") + count_label (det, &r,
          "train") >= 1, "%s: no bus among: %s", what, found);
  ck_assert_msg (count_label (det, &r, "person") >= 3,
      "%s: fewer than 3 people among: %s", what, found);
  ck_assert_msg (r.inference_ms > 0, "%s: inference_ms %g", what,
      r.inference_ms);
  check_detections (what, det, &r);
  check_feature_maps (what, mc, &r);
  lens_detector_result_clear (&r);
  g_free (what);
  g_free (found);

  /* dog.jpg: the dog and the bicycle */
  frame = frame_of (&dog);
  ck_assert_msg (lens_detector_run (det, &frame, &r, &err) == LENS_OK,
      "%s on dog.jpg: %s", mc->path, err.message);
  what = g_strdup_printf ("%s on dog.jpg", mc->path);
  found = describe (det, &r);
  printf ("detect: %-36s dog.jpg %7.1f ms: %s\n", mc->path, r.inference_ms,
      found);
  ck_assert_msg (count_label (det, &r, "dog") >= 1, "%s: no dog among: %s",
      what, found);
  ck_assert_msg (count_label (det, &r, "bicycle") >= 1,
      "%s: no bicycle among: %s", what, found);
  check_detections (what, det, &r);
  check_feature_maps (what, mc, &r);
  lens_detector_result_clear (&r);
  g_free (what);
  g_free (found);

  lens_detector_free (det);
  lens_image_clear (&bus);
  lens_image_clear (&dog);
}
END_TEST

/* ---- detectors sharing one model ---- */

static void
assert_same_result (const LensDetectorResult * a,
    const LensDetectorResult * b, const char *what)
{
  ck_assert_msg (a->n_detections == b->n_detections && (a->n_detections == 0
          || memcmp (a->detections, b->detections,
              sizeof (LensDetection) * a->n_detections) == 0),
      "%s: detections differ (%d vs %d)", what, a->n_detections,
      b->n_detections);
  ck_assert_msg (a->n_feature_maps == b->n_feature_maps,
      "%s: feature map counts differ", what);
  for (int m = 0; m < a->n_feature_maps; m++) {
    size_t bytes = sizeof (float) * a->feature_maps[m].width
        * a->feature_maps[m].height;

    ck_assert_msg (memcmp (a->feature_maps[m].activation,
            b->feature_maps[m].activation, bytes) == 0
        && (a->feature_maps[m].score == NULL
            || memcmp (a->feature_maps[m].score, b->feature_maps[m].score,
                bytes) == 0), "%s: heatmaps of map %d differ", what, m);
  }
}

typedef struct
{
  LensDetector *det;
  const LensFrame *frame;
  LensDetectorResult result;
  LensStatus status;
  LensError err;
} RunJob;

static gpointer
run_job (gpointer data)
{
  RunJob *job = data;

  job->status = lens_detector_run (job->det, job->frame, &job->result,
      &job->err);
  return NULL;
}

START_TEST (test_shared)
{
  LensDetector *a = new_detector ("yolox_nano.onnx", TRUE, NULL), *b = NULL;
  LensError err = LENS_ERROR_INIT;
  LensImage bus = load_jpeg ("bus.jpg"), dog = load_jpeg ("dog.jpg");
  LensFrame fbus = frame_of (&bus), fdog = frame_of (&dog);
  LensDetectorResult ra, rb;
  RunJob jobs[2];
  GThread *threads[2];

  ck_assert_msg (lens_detector_new_shared (a, &b, &err) == LENS_OK,
      "shared detector: %s", err.message);
  ck_assert_msg (lens_detector_model (a) == lens_detector_model (b),
      "a shared detector should use the same model");
  ck_assert_msg (lens_detector_config (a) != lens_detector_config (b)
      && lens_detector_config (b)->n_classes == 80,
      "a shared detector should have its own configuration");

  /* one after the other: identical */
  ck_assert (lens_detector_run (a, &fbus, &ra, &err) == LENS_OK);
  ck_assert (lens_detector_run (b, &fbus, &rb, &err) == LENS_OK);
  ck_assert_msg (ra.n_detections >= 4, "expected the bus and 3 people");
  assert_same_result (&ra, &rb, "shared detectors, same frame");

  /* at the same time, on two threads, two frames: each result as alone */
  jobs[0] = (RunJob) { a, &fdog, {0}, LENS_OK, LENS_ERROR_INIT };
  jobs[1] = (RunJob) { b, &fbus, {0}, LENS_OK, LENS_ERROR_INIT };
  for (int i = 0; i < 2; i++)
    threads[i] = g_thread_new ("detect", run_job, &jobs[i]);
  for (int i = 0; i < 2; i++)
    g_thread_join (threads[i]);
  for (int i = 0; i < 2; i++)
    ck_assert_msg (jobs[i].status == LENS_OK, "threaded run %d: %s", i,
        jobs[i].err.message);
  assert_same_result (&jobs[1].result, &ra, "threaded bus.jpg");
  ck_assert_msg (jobs[0].result.n_detections >= 2
      && jobs[0].result.source_width == dog.width,
      "threaded dog.jpg: %d detections", jobs[0].result.n_detections);

  /* freeing the first leaves the second working on the model */
  lens_detector_free (a);
  lens_detector_result_clear (&rb);
  ck_assert_msg (lens_detector_run (b, &fbus, &rb, &err) == LENS_OK,
      "shared detector after the first is freed: %s", err.message);
  assert_same_result (&ra, &rb, "after freeing the first");

  for (int i = 0; i < 2; i++)
    lens_detector_result_clear (&jobs[i].result);
  lens_detector_result_clear (&ra);
  lens_detector_result_clear (&rb);
  lens_detector_free (b);
  lens_image_clear (&bus);
  lens_image_clear (&dog);
}
END_TEST

/* ---- options and the executor accessors ---- */

START_TEST (test_feature_tensor_override)
{
  LensDetector *det;
  LensDetectorResult r;
  LensError err = LENS_ERROR_INIT;
  LensDetectorOptions opts;
  LensImage dog = load_jpeg ("dog.jpg");
  LensFrame frame = frame_of (&dog);
  char *path = g_build_filename (shared_dir, "models", "FastestDet.onnx",
      NULL);
  const LensModel *model;
  const char *deep = NULL;
  int64_t shape[LENS_MAX_DIMS];
  char *names;

  /* a deeper 44x44 map (stride 8) and the 22x22 output, by name */
  det = new_detector ("FastestDet.onnx", FALSE, NULL);
  model = lens_detector_model (det);
  ck_assert_msg (lens_model_n_tensors (model) > 0, "no computed tensors");
  for (int i = 0; i < lens_model_n_tensors (model); i++) {
    const char *name = lens_model_tensor_name (model, i);

    ck_assert_msg (name != NULL && lens_model_tensor_shape (model, name,
            shape) >= 0, "tensor %d has no name or shape", i);
    if (lens_model_tensor_shape (model, name, shape) == 4 && shape[2] == 44
        && lens_model_tensor_dtype (model, name) == LENS_DTYPE_FLOAT)
      deep = name;
  }
  ck_assert_msg (deep != NULL, "FastestDet has no 44x44 float map");
  names = g_strdup_printf ("%s, 758", deep);
  lens_detector_free (det);

  det = new_detector ("FastestDet.onnx", TRUE, names);
  ck_assert (lens_detector_run (det, &frame, &r, &err) == LENS_OK);
  ck_assert_msg (r.n_feature_maps == 2, "%d maps, expected 2",
      r.n_feature_maps);
  ck_assert_msg (r.feature_maps[0].stride == 8
      && r.feature_maps[0].width == 44 && r.feature_maps[0].score == NULL,
      "map 0: stride %d, width %d, expected 8 and 44 with no score (no "
      "detection scale)", r.feature_maps[0].stride, r.feature_maps[0].width);
  ck_assert_msg (r.feature_maps[1].stride == 16
      && strcmp (r.feature_maps[1].tensor_name, "758") == 0
      && r.feature_maps[1].score != NULL,
      "map 1: stride %d '%s', expected 16 '758' with a score",
      r.feature_maps[1].stride, r.feature_maps[1].tensor_name);
  lens_detector_result_clear (&r);
  lens_detector_free (det);

  /* a name the graph lacks: the error names it */
  lens_detector_options_init (&opts);
  opts.model_path = path;
  opts.feature_maps = TRUE;
  opts.feature_tensors = "no_such_tensor";
  ck_assert_msg (lens_detector_new (ctx, &opts, &det, &err)
      == LENS_ERROR_INVALID && strstr (err.message, "no_such_tensor"),
      "an unknown feature tensor should fail naming it: %s",
      err.message ? err.message : "(succeeded)");
  lens_error_clear (&err);

  g_free (names);
  g_free (path);
  lens_image_clear (&dog);
}
END_TEST

START_TEST (test_keep_tensor)
{
  LensError err = LENS_ERROR_INIT;
  char *path = g_build_filename (shared_dir, "models", "FastestDet.onnx",
      NULL);
  LensModel *model;
  LensExec *exec;
  const char *last;

  ck_assert (lens_model_load (ctx, path, 0, NULL, &model, &err) == LENS_OK);
  last = lens_model_tensor_name (model, lens_model_n_tensors (model) - 1);
  ck_assert_msg (lens_model_tensor_name (model, -1) == NULL
      && lens_model_tensor_name (model, lens_model_n_tensors (model))
      == NULL, "out-of-range tensor indices should give NULL");
  ck_assert_msg (lens_model_keep_tensor (model, "nope", &err)
      == LENS_ERROR_INVALID && strstr (err.message, "nope"),
      "keeping an unknown tensor should fail naming it");
  lens_error_clear (&err);
  ck_assert (lens_model_keep_tensor (model, last, &err) == LENS_OK);
  ck_assert (lens_exec_new (model, &exec, &err) == LENS_OK);
  ck_assert_msg (lens_model_keep_tensor (model, last, &err)
      == LENS_ERROR_INVALID, "keeping after lens_exec_new should fail");
  lens_error_clear (&err);
  lens_exec_free (exec);
  /* with no execution context left, the plan may change again */
  ck_assert_msg (lens_model_keep_tensor (model,
          lens_model_tensor_name (model, 0), &err) == LENS_OK,
      "keeping once the execution contexts are gone: %s", err.message);
  ck_assert (lens_exec_new (model, &exec, &err) == LENS_OK);
  lens_exec_free (exec);
  lens_model_free (model);
  g_free (path);
}
END_TEST

/* ---- the lens-detect tool ---- */

static char *tmp_dir;

static void
tmp_setup (void)
{
  tmp_dir = g_dir_make_tmp ("lens-detect-XXXXXX", NULL);
  ck_assert (tmp_dir != NULL);
}

static void
tmp_teardown (void)
{
  GDir *d = g_dir_open (tmp_dir, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    char *p = g_build_filename (tmp_dir, name, NULL);

    g_unlink (p);
    g_free (p);
  }
  if (d != NULL)
    g_dir_close (d);
  g_rmdir (tmp_dir);
  g_free (tmp_dir);
}

/* Runs lens-detect with @args (NULL-terminated) after the model options. */
static int
run_tool (const char *const *args, char **out, char **errout)
{
  GPtrArray *argv = g_ptr_array_new ();
  char *model = g_build_filename (shared_dir, "models", "yolox_nano.onnx",
      NULL);
  char *labels = g_build_filename (shared_dir, "models", "coco.names", NULL);
  GError *gerr = NULL;
  int wait_status = 0;

  g_ptr_array_add (argv, (gpointer) LENS_DETECT_PATH);
  g_ptr_array_add (argv, (gpointer) "--model");
  g_ptr_array_add (argv, model);
  g_ptr_array_add (argv, (gpointer) "--labels");
  g_ptr_array_add (argv, labels);
  for (int i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  ck_assert_msg (g_spawn_sync (NULL, (char **) argv->pdata, NULL, 0, NULL,
          NULL, out, errout, &wait_status, &gerr), "cannot run %s: %s",
      LENS_DETECT_PATH, gerr ? gerr->message : "");
  g_ptr_array_free (argv, TRUE);
  g_free (model);
  g_free (labels);
  return WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : -1;
}

/* The labels of the detections in one JSON line, checking its shape. */
static char *
parse_line (const char *line, const char *image, int width, int height)
{
  JsonParser *parser = json_parser_new ();
  GError *gerr = NULL;
  JsonObject *root;
  JsonArray *dets;
  GString *labels = g_string_new (",");

  ck_assert_msg (json_parser_load_from_data (parser, line, -1, &gerr),
      "lens-detect printed invalid JSON (%s): %s", gerr ? gerr->message : "",
      line);
  ck_assert_msg (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)),
      "the JSON document is no object: %s", line);
  root = json_node_get_object (json_parser_get_root (parser));
  ck_assert_msg (strcmp (json_object_get_string_member (root, "image"),
          image) == 0, "image member: %s", line);
  ck_assert_msg (json_object_get_int_member (root, "width") == width
      && json_object_get_int_member (root, "height") == height,
      "width/height: %s", line);
  dets = json_object_get_array_member (root, "detections");
  ck_assert_msg (dets != NULL, "no detections array: %s", line);
  for (guint i = 0; i < json_array_get_length (dets); i++) {
    JsonObject *d = json_array_get_object_element (dets, i);
    JsonObject *box = json_object_get_object_member (d, "box");
    double score = json_object_get_double_member (d, "score");
    double x = json_object_get_double_member (box, "x");
    double y = json_object_get_double_member (box, "y");
    double w = json_object_get_double_member (box, "w");
    double h = json_object_get_double_member (box, "h");

    ck_assert_msg (json_object_has_member (d, "class_id")
        && score > 0.25 && score <= 1.0 && x >= 0 && y >= 0 && w > 0
        && h > 0 && x + w <= width + 0.01 && y + h <= height + 0.01,
        "detection %u malformed: %s", i, line);
    g_string_append_printf (labels, "%s,",
        json_object_get_string_member (d, "label"));
  }
  g_object_unref (parser);
  return g_string_free (labels, FALSE);
}

START_TEST (test_tool_json)
{
  char *bus = g_build_filename (shared_dir, "images", "bus.jpg", NULL);
  char *dog = g_build_filename (shared_dir, "images", "dog.jpg", NULL);
  char *heat = g_build_filename (tmp_dir, "heat.png", NULL);
  char *heat0 = g_build_filename (tmp_dir, "heat-0.png", NULL);
  char *heat1 = g_build_filename (tmp_dir, "heat-1.png", NULL);
  const char *args[] = { "--heatmap", heat, bus, dog, NULL };
  char *out = NULL, *errout = NULL, **lines, *labels, *png = NULL;
  gsize png_len = 0;
  int rc = run_tool (args, &out, &errout);

  ck_assert_msg (rc == 0, "lens-detect exited %d: %s", rc, errout);
  lines = g_strsplit (out, "\n", -1);
  ck_assert_msg (g_strv_length (lines) == 3 && *lines[2] == '\0',
      "expected one JSON line per image: %s", out);
  labels = parse_line (lines[0], bus, 810, 1080);
  ck_assert_msg (strstr (labels, ",bus,") && strstr (labels, ",person,"),
      "bus.jpg: expected a bus and people, got %s", labels);
  g_free (labels);
  labels = parse_line (lines[1], dog, 768, 576);
  ck_assert_msg (strstr (labels, ",dog,") && strstr (labels, ",bicycle,"),
      "dog.jpg: expected a dog and a bicycle, got %s", labels);
  g_free (labels);

  /* two images: heat-0.png and heat-1.png, real PNGs */
  ck_assert_msg (!g_file_test (heat, G_FILE_TEST_EXISTS),
      "with two images the heatmap name should get the index");
  for (int i = 0; i < 2; i++) {
    ck_assert_msg (g_file_get_contents (i ? heat1 : heat0, &png, &png_len,
            NULL) && png_len > 1000 && memcmp (png, "\x89PNG\r\n\x1a\n", 8)
        == 0, "heatmap %d is not a PNG", i);
    g_free (png);
  }

  g_strfreev (lines);
  g_free (out);
  g_free (errout);

  /* a PNG input: the heatmap of bus.jpg, same size */
  {
    const char *png_args[] = { heat0, NULL };

    rc = run_tool (png_args, &out, &errout);
    ck_assert_msg (rc == 0, "lens-detect on a PNG exited %d: %s", rc,
        errout);
    g_free (parse_line (out, heat0, 810, 1080));
    g_free (out);
    g_free (errout);
  }

  g_free (bus);
  g_free (dog);
  g_free (heat);
  g_free (heat0);
  g_free (heat1);
}
END_TEST

START_TEST (test_tool_errors)
{
  char *bus = g_build_filename (shared_dir, "images", "bus.jpg", NULL);
  char *corrupt = g_build_filename (tmp_dir, "corrupt.jpg", NULL);
  char *missing = g_build_filename (tmp_dir, "missing.png", NULL);
  /* a JPEG start of image, then garbage */
  static const char bad[] = "\xff\xd8\xff\xe0 this is not a JPEG stream";
  const char *args[] = { corrupt, bus, missing, NULL };
  char *out = NULL, *errout = NULL, **lines;
  int rc, n_errors;

  ck_assert (g_file_set_contents (corrupt, bad, sizeof bad - 1, NULL));
  rc = run_tool (args, &out, &errout);
  ck_assert_msg (rc != 0, "lens-detect should fail on a corrupt image");
  ck_assert_msg (strstr (errout, corrupt) != NULL,
      "the error should name %s: %s", corrupt, errout);
  ck_assert_msg (strstr (errout, missing) != NULL,
      "the error should name %s: %s", missing, errout);
  /* one line per bad image (other lines, from the OpenCL platform or a
   * sanitizer, are not the tool's) */
  lines = g_strsplit (errout, "\n", -1);
  n_errors = 0;
  for (int i = 0; lines[i] != NULL; i++)
    n_errors += g_str_has_prefix (lines[i], "lens-detect: ");
  ck_assert_msg (n_errors == 2, "expected one line per bad image: %s",
      errout);
  g_strfreev (lines);
  /* the good image in between is still processed */
  lines = g_strsplit (out, "\n", -1);
  ck_assert_msg (g_strv_length (lines) == 2, "expected one JSON line for "
      "bus.jpg: %s", out);
  g_free (parse_line (lines[0], bus, 810, 1080));
  g_strfreev (lines);

  g_free (out);
  g_free (errout);
  g_free (bus);
  g_free (corrupt);
  g_free (missing);
}
END_TEST

/* ---- set-up ---- */

static Suite *
detect_suite (void)
{
  Suite *s = suite_create ("detect");
  TCase *tc;

  tc = tcase_create ("models");
  tcase_add_checked_fixture (tc, ctx_setup, ctx_teardown);
  tcase_set_timeout (tc, 600);
  tcase_add_loop_test (tc, test_model, 0, G_N_ELEMENTS (models));
  suite_add_tcase (s, tc);

  tc = tcase_create ("shared");
  tcase_add_checked_fixture (tc, ctx_setup, ctx_teardown);
  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_shared);
  suite_add_tcase (s, tc);

  tc = tcase_create ("options");
  tcase_add_checked_fixture (tc, ctx_setup, ctx_teardown);
  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_feature_tensor_override);
  tcase_add_test (tc, test_keep_tensor);
  suite_add_tcase (s, tc);

  tc = tcase_create ("tool");
  tcase_add_checked_fixture (tc, tmp_setup, tmp_teardown);
  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_tool_json);
  tcase_add_test (tc, test_tool_errors);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  int status;

  shared_dir = lens_check_shared_dir ();
  if (shared_dir == NULL) {
    printf ("SKIP: no shared test data (set LENS_SHARED_DIR, or put it in "
        "../shared next to the source tree)\n");
    return 77;
  }
  printf ("detect: shared data %s\n", shared_dir);
  status = lens_check_run (detect_suite ());
  g_free (shared_dir);
  return status;
}
