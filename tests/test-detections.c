/* test-detections.c: the detection acceptance test of issue 3: on every
 * image in ../shared/images, lens-detect finds what decoding ONNX
 * Runtime's outputs finds, for every COCO model.
 *
 * Owns: running lens-detect (one process per model, all images at once)
 * and comparing its JSON against tests/fixtures/ort/detections.ini (made
 * by tests/ort/regenerate-detections) in both directions, lens-detect
 * at its defaults (--conf 0.25, as the fixtures): every box with score >=
 * 0.3 on one side needs a box of the same class on the other side with
 * IoU >= 0.9. The fixtures come from ONNX Runtime run on the very input
 * tensors lens-detect made (its --save-input), which the generator checks
 * against its own pre-processing, so both sides compute on the same
 * numbers. A failure names the unmatched box and the best candidates;
 * every model prints a summary line (boxes compared, minimum IoU, largest
 * score difference of the matched pairs at the 4 decimals lens-detect
 * prints). One TCase per model (CK_RUN_CASE=<model id> runs one) plus a
 * coverage case: every image in ../shared/images and every COCO model in
 * ../shared/models must have fixtures, decoded at lens-detect's default
 * threshold.
 *
 * lens-detect is the one built with this test (LENS_DETECT_PATH), or
 * $LENS_DETECT. ../shared is found through $LENS_SHARED_DIR, else
 * ../shared from the working directory (meson runs this in the source
 * root), else next to the source root; without it the test is skipped
 * (exit 77).
 */
#include "lens-check.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LENS_SOURCE_ROOT
#define LENS_SOURCE_ROOT "."
#endif
#ifndef LENS_DETECT_PATH
#define LENS_DETECT_PATH "lens-detect"
#endif

/* the acceptance criterion of issue 3 */
#define MATCH_SCORE 0.3
#define MATCH_IOU 0.9
/* lens-detect's default threshold, which the fixtures must be decoded at */
#define DEFAULT_CONF 0.25
/* lens-detect prints scores to 4 decimals */
#define SCORE_DIGITS 4

typedef struct
{
  int class_id;
  double score;
  double x, y, w, h;
} Box;

static char *shared_dir;
static char *fixtures_path;
static GKeyFile *fixtures;
static char **model_ids;
static char **image_paths;      /* relative to shared_dir */

/* ---- fixtures ---- */

static char *
fixture_string (const char *group, const char *key)
{
  GError *error = NULL;
  char *v = g_key_file_get_string (fixtures, group, key, &error);

  ck_assert_msg (v != NULL, "%s: [%s] lacks %s: %s", fixtures_path, group,
      key, error ? error->message : "?");
  return v;
}

/* "class_id score x y w h" entries of list @key of @group */
static GArray *
parse_boxes (const char *group, const char *key)
{
  GArray *boxes = g_array_new (FALSE, FALSE, sizeof (Box));
  char **list;
  gsize n = 0, i;

  list = g_key_file_get_string_list (fixtures, group, key, &n, NULL);
  for (i = 0; list != NULL && i < n; i++) {
    Box b;
    char **f;

    if (*g_strstrip (list[i]) == '\0')
      continue;
    f = g_strsplit_set (list[i], " ", -1);
    ck_assert_msg (g_strv_length (f) == 6, "%s: [%s] %s entry '%s' is not "
        "'class_id score x y w h'", fixtures_path, group, key, list[i]);
    b.class_id = atoi (f[0]);
    b.score = g_ascii_strtod (f[1], NULL);
    b.x = g_ascii_strtod (f[2], NULL);
    b.y = g_ascii_strtod (f[3], NULL);
    b.w = g_ascii_strtod (f[4], NULL);
    b.h = g_ascii_strtod (f[5], NULL);
    g_array_append_val (boxes, b);
    g_strfreev (f);
  }
  g_strfreev (list);
  return boxes;
}

/* What ONNX Runtime found on one image. */
typedef struct
{
  int width, height;
  GArray *boxes;
} Reference;

static void
reference_load (const char *model, const char *image, Reference * ref)
{
  char *group = g_strdup_printf ("%s %s", model, image);
  char *size = fixture_string (group, "image_size");

  ck_assert_msg (sscanf (size, "%dx%d", &ref->width, &ref->height) == 2,
      "%s: [%s] image_size '%s' is not WxH", fixtures_path, group, size);
  ref->boxes = parse_boxes (group, "detections");
  ck_assert_msg ((int) ref->boxes->len == g_key_file_get_integer (fixtures,
          group, "n", NULL), "%s: [%s] n does not match its detections",
      fixtures_path, group);
  g_free (size);
  g_free (group);
}

static void
reference_clear (Reference * ref)
{
  g_array_unref (ref->boxes);
}

/* ---- lens-detect ---- */

typedef struct
{
  char *image;                  /* base name */
  int width, height;
  GArray *boxes;
} DetectResult;

static void
detect_result_clear (gpointer p)
{
  DetectResult *r = p;

  g_free (r->image);
  g_array_unref (r->boxes);
}

static double
member_double (JsonObject * o, const char *name, const char *what)
{
  JsonNode *n = json_object_get_member (o, name);

  ck_assert_msg (n != NULL && JSON_NODE_HOLDS_VALUE (n), "lens-detect "
      "output: %s lacks number '%s'", what, name);
  return json_node_get_double (n);
}

/* One image's object: {"image","width","height","detections":[{"class_id",
 * "label","score","box":{"x","y","w","h"}}]} */
static void
parse_image_object (JsonNode * node, GArray * results)
{
  JsonObject *o, *bo;
  JsonArray *dets;
  DetectResult r;
  guint i;

  ck_assert_msg (JSON_NODE_HOLDS_OBJECT (node), "lens-detect output: "
      "expected one object per image");
  o = json_node_get_object (node);
  ck_assert_msg (json_object_has_member (o, "image") &&
      json_object_has_member (o, "detections"), "lens-detect output: an "
      "image object lacks 'image' or 'detections'");
  r.image = g_path_get_basename (json_object_get_string_member (o,
          "image"));
  r.width = (int) member_double (o, "width", r.image);
  r.height = (int) member_double (o, "height", r.image);
  r.boxes = g_array_new (FALSE, FALSE, sizeof (Box));
  dets = json_object_get_array_member (o, "detections");
  for (i = 0; dets != NULL && i < json_array_get_length (dets); i++) {
    JsonObject *d = json_array_get_object_element (dets, i);
    Box b;

    ck_assert_msg (d != NULL && json_object_has_member (d, "box"),
        "lens-detect output: %s detection %u has no box", r.image, i);
    bo = json_object_get_object_member (d, "box");
    b.class_id = (int) member_double (d, "class_id", r.image);
    b.score = member_double (d, "score", r.image);
    b.x = member_double (bo, "x", r.image);
    b.y = member_double (bo, "y", r.image);
    b.w = member_double (bo, "w", r.image);
    b.h = member_double (bo, "h", r.image);
    g_array_append_val (r.boxes, b);
  }
  g_array_append_val (results, r);
}

/* lens-detect's stdout: one object per line (JSON Lines), or one
 * document holding an object or an array of objects. Lines are tried
 * first: json-glib accepts a text of several documents as its first. */
static GArray *
parse_detect_output (const char *text)
{
  GArray *results = g_array_new (FALSE, FALSE, sizeof (DetectResult));
  JsonParser *parser = json_parser_new ();
  char **lines = g_strsplit (text, "\n", -1);
  gboolean per_line = TRUE;
  GError *error = NULL;
  JsonNode *root;

  g_array_set_clear_func (results, detect_result_clear);
  for (int i = 0; lines[i] != NULL && per_line; i++) {
    if (*g_strstrip (lines[i]) == '\0')
      continue;
    per_line = json_parser_load_from_data (parser, lines[i], -1, NULL) &&
        JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser));
  }
  for (int i = 0; lines[i] != NULL && per_line; i++) {
    if (*lines[i] == '\0')
      continue;
    json_parser_load_from_data (parser, lines[i], -1, NULL);
    parse_image_object (json_parser_get_root (parser), results);
  }
  if (!per_line) {
    ck_assert_msg (json_parser_load_from_data (parser, text, -1, &error),
        "lens-detect output is not JSON (%s): %.300s",
        error ? error->message : "?", text);
    root = json_parser_get_root (parser);
    if (JSON_NODE_HOLDS_ARRAY (root)) {
      JsonArray *a = json_node_get_array (root);

      for (guint i = 0; i < json_array_get_length (a); i++)
        parse_image_object (json_array_get_element (a, i), results);
    } else {
      parse_image_object (root, results);
    }
  }
  g_strfreev (lines);
  g_object_unref (parser);
  return results;
}

static const char *
detect_binary (void)
{
  const char *env = g_getenv ("LENS_DETECT");

  return env && *env ? env : LENS_DETECT_PATH;
}

/* Runs lens-detect on every image with @model; returns its results. */
static GArray *
run_detect (const char *model_path, double *seconds)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  char *out = NULL, *errout = NULL, *cmd;
  GError *error = NULL;
  int status = 0;
  gint64 t0;
  GArray *results;

  g_ptr_array_add (argv, g_strdup (detect_binary ()));
  g_ptr_array_add (argv, g_strdup ("--model"));
  g_ptr_array_add (argv, g_strdup (model_path));
  for (int i = 0; image_paths[i] != NULL; i++)
    g_ptr_array_add (argv, g_build_filename (shared_dir, image_paths[i],
            NULL));
  g_ptr_array_add (argv, NULL);
  cmd = g_strjoinv (" ", (char **) argv->pdata);

  t0 = g_get_monotonic_time ();
  ck_assert_msg (g_spawn_sync (NULL, (char **) argv->pdata, NULL,
          G_SPAWN_DEFAULT, NULL, NULL, &out, &errout, &status, &error),
      "cannot run %s: %s", cmd, error ? error->message : "?");
  *seconds = (g_get_monotonic_time () - t0) / 1e6;
  ck_assert_msg (g_spawn_check_wait_status (status, NULL), "%s failed "
      "(wait status %d): %s", cmd, status, errout);
  results = parse_detect_output (out);

  g_free (cmd);
  g_free (out);
  g_free (errout);
  g_ptr_array_unref (argv);
  return results;
}

/* ---- comparison ---- */

static double
iou (const Box * a, const Box * b)
{
  double x1 = MAX (a->x, b->x), y1 = MAX (a->y, b->y);
  double x2 = MIN (a->x + a->w, b->x + b->w);
  double y2 = MIN (a->y + a->h, b->y + b->h);
  double inter, uni;

  if (x2 <= x1 || y2 <= y1)
    return 0.0;
  inter = (x2 - x1) * (y2 - y1);
  uni = a->w * a->h + b->w * b->h - inter;
  return uni > 0.0 ? inter / uni : 0.0;
}

/* Index of the box in @others overlapping @b most, same class only
 * (@same_class) or any class; -1 if none overlaps. */
static int
best_match (const Box * b, GArray * others, gboolean same_class,
    double *best_iou)
{
  int best = -1;

  *best_iou = 0.0;
  for (guint i = 0; i < others->len; i++) {
    const Box *o = &g_array_index (others, Box, i);
    double v;

    if (same_class && o->class_id != b->class_id)
      continue;
    v = iou (b, o);
    if (v > *best_iou || (best < 0 && same_class)) {
      *best_iou = v;
      best = (int) i;
    }
  }
  return best;
}

static void
append_box (GString * s, const Box * b)
{
  g_string_append_printf (s, "class %d score %.3f box (%.1f, %.1f, %.1f x "
      "%.1f)", b->class_id, b->score, b->x, b->y, b->w, b->h);
}

typedef struct
{
  int compared;                 /* boxes >= MATCH_SCORE, both directions */
  double min_iou;               /* over the boxes held to the criterion */
  char *min_where;
  double max_score_diff;        /* of the matched pairs */
  int failures;
  GString *report;              /* the failures */
} Tally;

static void
track_min (Tally * t, double v, const char *image, const char *side,
    const Box * b)
{
  if (v >= t->min_iou)
    return;
  t->min_iou = v;
  g_free (t->min_where);
  t->min_where = g_strdup_printf ("%s, %s class %d score %.3f", image, side,
      b->class_id, b->score);
}

/* Explains an unmatched @b: the best candidate of its class in @to and,
 * when another class overlaps it more, that one too. */
static void
describe_unmatched (GString * s, const char *image, const char *from_name,
    const Box * b, const char *to_name, GArray * to)
{
  double v, any_v;
  int k = best_match (b, to, TRUE, &v);
  int any = best_match (b, to, FALSE, &any_v);

  g_string_append_printf (s, "\n  %s: %s ", image, from_name);
  append_box (s, b);
  if (k >= 0) {
    g_string_append_printf (s, "\n    best %s candidate of the class: "
        "IoU %.3f, ", to_name, v);
    append_box (s, &g_array_index (to, Box, k));
  } else {
    g_string_append_printf (s, "\n    %s has no box of class %d", to_name,
        b->class_id);
  }
  if (any >= 0 && g_array_index (to, Box, any).class_id != b->class_id) {
    g_string_append_printf (s, "\n    best %s box of any class: IoU %.3f, ",
        to_name, any_v);
    append_box (s, &g_array_index (to, Box, any));
  }
}

/* @v rounded as lens-detect prints scores */
static double
printed_score (double v)
{
  double scale = pow (10.0, SCORE_DIGITS);

  return round (v * scale) / scale;
}

/* Every box of @from (named @from_name) with score >= MATCH_SCORE needs a
 * box of the same class in @to with IoU >= MATCH_IOU. */
static void
match_boxes (const char *image, const char *from_name, GArray * from,
    const char *to_name, GArray * to, Tally * t)
{
  for (guint i = 0; i < from->len; i++) {
    const Box *b = &g_array_index (from, Box, i);
    double v;
    int k;

    if (b->score < MATCH_SCORE)
      continue;
    t->compared++;
    k = best_match (b, to, TRUE, &v);
    track_min (t, k >= 0 ? v : 0.0, image, from_name, b);
    if (k >= 0 && v >= MATCH_IOU) {
      t->max_score_diff = MAX (t->max_score_diff,
          fabs (printed_score (b->score)
              - printed_score (g_array_index (to, Box, k).score)));
    } else {
      t->failures++;
      describe_unmatched (t->report, image, from_name, b, to_name, to);
    }
  }
}

START_TEST (test_model)
{
  const char *id = model_ids[_i];
  char *rel_model = fixture_string (id, "model");
  char *model_path = g_build_filename (shared_dir, rel_model, NULL);
  Tally t = { 0, 1.0, NULL, 0.0, 0, g_string_new (NULL) };
  double seconds;
  GArray *results;
  int n_images = 0, n_ref = 0, n_lens = 0;

  results = run_detect (model_path, &seconds);
  for (int i = 0; image_paths[i] != NULL; i++, n_images++) {
    char *image = g_path_get_basename (image_paths[i]);
    DetectResult *r = NULL;
    Reference ref;

    for (guint k = 0; k < results->len && r == NULL; k++)
      if (strcmp (g_array_index (results, DetectResult, k).image, image) == 0)
        r = &g_array_index (results, DetectResult, k);
    ck_assert_msg (r != NULL, "%s: lens-detect printed no result for %s",
        id, image);
    reference_load (id, image, &ref);
    ck_assert_msg (r->width == ref.width && r->height == ref.height, "%s: "
        "lens-detect says %s is %dx%d, the fixture %dx%d", id, image,
        r->width, r->height, ref.width, ref.height);
    match_boxes (image, "ORT", ref.boxes, "lens", r->boxes, &t);
    match_boxes (image, "lens", r->boxes, "ORT", ref.boxes, &t);
    for (guint k = 0; k < ref.boxes->len; k++)
      n_ref += g_array_index (ref.boxes, Box, k).score >= MATCH_SCORE;
    for (guint k = 0; k < r->boxes->len; k++)
      n_lens += g_array_index (r->boxes, Box, k).score >= MATCH_SCORE;
    reference_clear (&ref);
    g_free (image);
  }

  printf ("%-17s %d images, lens-detect %.1f s: %d ORT + %d lens boxes "
      ">= %.1f compared, min IoU %.4f (%s), max |score diff| %.4f, "
      "%d unmatched\n", id, n_images, seconds, n_ref, n_lens, MATCH_SCORE,
      t.min_iou, t.min_where ? t.min_where : "-", t.max_score_diff,
      t.failures);
  fflush (stdout);
  ck_assert_msg (t.failures == 0, "%s: %d boxes with score >= %.1f have no "
      "box of the same class with IoU >= %.1f on the other side:%s", id,
      t.failures, MATCH_SCORE, MATCH_IOU, t.report->str);

  g_free (t.min_where);
  g_string_free (t.report, TRUE);
  g_array_unref (results);
  g_free (model_path);
  g_free (rel_model);
}
END_TEST

/* ---- coverage: every image and every COCO model has fixtures ---- */

START_TEST (test_coverage)
{
  char *images = g_build_filename (shared_dir, "images", NULL);
  char *version = fixture_string ("ort", "version");
  GDir *d = g_dir_open (images, 0, NULL);
  const char *name;
  const char *coco[] = { "models/ultralytics/yolov8n_int8.onnx",
    "models/ultralytics/yolo11n_int8_320.onnx",
    "models/ultralytics/yolo26n_int8.onnx",
    "models/ultralytics/yolov5n_fp16_256.onnx", "models/yolox_nano.onnx",
    "models/nanodet_m_416.onnx", "models/FastestDet.onnx"
  };

  ck_assert_msg (g_str_has_prefix (version, "1.30."), "fixtures come from "
      "ONNX Runtime %s, expected 1.30", version);
  ck_assert_msg (g_key_file_get_double (fixtures, "ort", "conf_threshold",
          NULL) == DEFAULT_CONF, "%s: [ort] conf_threshold is not "
      "lens-detect's default %.2f, which the test runs it with: re-run "
      "tests/ort/regenerate-detections", fixtures_path, DEFAULT_CONF);
  ck_assert_msg (d != NULL, "cannot list %s", images);
  while ((name = g_dir_read_name (d)) != NULL) {
    char *rel = g_strconcat ("images/", name, NULL);

    if (g_str_has_suffix (name, ".jpg") || g_str_has_suffix (name, ".jpeg"))
      ck_assert_msg (g_strv_contains ((const char *const *) image_paths, rel),
          "%s/%s has no detection fixtures: re-run "
          "tests/ort/regenerate-detections", shared_dir, rel);
    g_free (rel);
  }
  g_dir_close (d);
  for (guint i = 0; i < G_N_ELEMENTS (coco); i++) {
    gboolean listed = FALSE;
    char *path = g_build_filename (shared_dir, coco[i], NULL);

    if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
      g_free (path);
      continue;
    }
    for (int k = 0; model_ids[k] != NULL && !listed; k++) {
      char *m = fixture_string (model_ids[k], "model");

      listed = strcmp (m, coco[i]) == 0;
      g_free (m);
    }
    ck_assert_msg (listed, "%s has no detection fixtures: add it to "
        "tests/ort/regenerate-detections", path);
    g_free (path);
  }
  g_free (version);
  g_free (images);
}
END_TEST

/* ---- set-up ---- */

static Suite *
detections_suite (void)
{
  Suite *s = suite_create ("detections");
  TCase *tc;

  tc = tcase_create ("coverage");
  tcase_add_test (tc, test_coverage);
  suite_add_tcase (s, tc);
  for (int i = 0; model_ids[i] != NULL; i++) {
    tc = tcase_create (model_ids[i]);
    tcase_set_timeout (tc, 600);
    tcase_add_loop_test (tc, test_model, i, i + 1);
    suite_add_tcase (s, tc);
  }
  return s;
}

int
main (void)
{
  GError *error = NULL;
  int status;

  shared_dir = lens_check_shared_dir ();
  if (shared_dir == NULL) {
    printf ("SKIP: no shared test data (set LENS_SHARED_DIR, or put it in "
        "../shared next to the source tree)\n");
    return 77;
  }
  fixtures_path = g_build_filename (LENS_SOURCE_ROOT, "tests", "fixtures",
      "ort", "detections.ini", NULL);
  fixtures = g_key_file_new ();
  if (!g_key_file_load_from_file (fixtures, fixtures_path, G_KEY_FILE_NONE,
          &error)) {
    fprintf (stderr, "cannot read %s: %s\n", fixtures_path, error->message);
    return 1;
  }
  model_ids = g_key_file_get_string_list (fixtures, "ort", "models", NULL,
      &error);
  if (model_ids != NULL)
    image_paths = g_key_file_get_string_list (fixtures, "ort", "images",
        NULL, &error);
  if (model_ids == NULL || image_paths == NULL) {
    fprintf (stderr, "%s: [ort]: %s\n", fixtures_path, error->message);
    return 1;
  }
  printf ("detections: shared data %s, fixtures %s, lens-detect %s\n",
      shared_dir, fixtures_path, detect_binary ());

  status = lens_check_run (detections_suite ());

  g_strfreev (image_paths);
  g_strfreev (model_ids);
  g_key_file_free (fixtures);
  g_free (fixtures_path);
  g_free (shared_dir);
  return status;
}
