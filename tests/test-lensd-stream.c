/* test-lensd-stream.c: lensd's engine, streams and frames
 * (daemon/lensd-engine.c, lensd-stream.c, lensd-frame.c) on real
 * pipelines: motion on a videotestsrc ball with the detections JSON, a
 * YOLO model on a file (../shared), failures that end in failed or
 * backoff without disturbing another stream, end of stream with and
 * without loop, stall detection and removal.
 *
 * Streams run their supervisors on a GMainContext of the test's, which
 * the test iterates while it waits (bounded, generous waits; nothing is
 * timed). Needs the lens plugin on GST_PLUGIN_PATH (tests/meson.build
 * sets it). Tests with a model need ../shared; without it they are left
 * out with a message. */
#include "lens-check.h"
#include "lensd.h"

#include <string.h>

static gchar *shared_dir;
static GMainContext *context;

#define YOLO_MODEL "ultralytics/yolo11n_int8_320.onnx"
#define VIDEO "pedestrians_overhead_vtest.avi"
/* the ball at a size every test affords on a shared CPU */
#define BALL_CAPS "video/x-raw,width=160,height=120,framerate=30/1"

/* ---- what the listeners saw ---- */

typedef struct
{
  GMutex lock;
  guint frames;
  guint states;
  guint removed;
  guint64 last_seq;
  gboolean seq_in_order;        /* every seq was the one before + 1 */
  guint motion_frames;          /* frames with a "motion" detection */
  guint person_frames;          /* frames with a "person" detection */
  GstClockTime last_pts;
  guint pts_wraps;              /* pts went backwards: the file looped */
} Seen;

static void
seen_init (Seen *seen)
{
  memset (seen, 0, sizeof *seen);
  g_mutex_init (&seen->lock);
  seen->seq_in_order = TRUE;
  seen->last_pts = GST_CLOCK_TIME_NONE;
}

static void
seen_clear (Seen *seen)
{
  g_mutex_clear (&seen->lock);
}

static void
on_event (LensdStream *stream, LensdStreamEvent event, LensdFrame *frame,
    gpointer user_data)
{
  Seen *seen = user_data;

  g_mutex_lock (&seen->lock);
  switch (event) {
    case LENSD_STREAM_EVENT_FRAME:
      seen->frames++;
      if (seen->last_seq != 0 && frame->seq != seen->last_seq + 1)
        seen->seq_in_order = FALSE;
      seen->last_seq = frame->seq;
      for (guint i = 0; i < frame->n_detections; i++) {
        if (g_strcmp0 (frame->detections[i].label, "motion") == 0) {
          seen->motion_frames++;
          break;
        }
      }
      for (guint i = 0; i < frame->n_detections; i++) {
        if (g_strcmp0 (frame->detections[i].label, "person") == 0) {
          seen->person_frames++;
          break;
        }
      }
      if (GST_CLOCK_TIME_IS_VALID (frame->pts)
          && GST_CLOCK_TIME_IS_VALID (seen->last_pts)
          && frame->pts < seen->last_pts)
        seen->pts_wraps++;
      seen->last_pts = frame->pts;
      break;
    case LENSD_STREAM_EVENT_STATE:
      seen->states++;
      break;
    case LENSD_STREAM_EVENT_REMOVED:
      seen->removed++;
      break;
  }
  g_mutex_unlock (&seen->lock);
}

static guint
seen_get (Seen *seen, const guint *field)
{
  guint v;

  g_mutex_lock (&seen->lock);
  v = *field;
  g_mutex_unlock (&seen->lock);
  return v;
}

/* ---- waiting on the context ---- */

typedef gboolean (*Condition) (gpointer data);

typedef struct
{
  GMainLoop *loop;
  Condition cond;
  gpointer data;
  gint64 end;
  gboolean met;
} Wait;

static gboolean
wait_check (gpointer user_data)
{
  Wait *w = user_data;

  if (w->cond (w->data)) {
    w->met = TRUE;
    g_main_loop_quit (w->loop);
    return G_SOURCE_REMOVE;
  }
  if (g_get_monotonic_time () >= w->end) {
    g_main_loop_quit (w->loop);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

/* Runs the streams' context until @cond holds or @seconds pass. */
static gboolean
wait_for (Condition cond, gpointer data, gdouble seconds)
{
  Wait w = { NULL };
  GSource *source;

  w.loop = g_main_loop_new (context, FALSE);
  w.cond = cond;
  w.data = data;
  w.end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);
  source = g_timeout_source_new (20);
  g_source_set_callback (source, wait_check, &w, NULL);
  g_source_attach (source, context);
  if (!cond (data))
    g_main_loop_run (w.loop);
  else
    w.met = TRUE;
  g_source_destroy (source);
  g_source_unref (source);
  g_main_loop_unref (w.loop);
  return w.met;
}

typedef struct
{
  LensdStream *stream;
  LensdStreamState state;
  Seen *seen;
  guint count;
  gboolean (*stats_cond) (const LensdStreamStats *stats, guint count);
} Until;

static gboolean
until_state (gpointer data)
{
  Until *u = data;

  return lensd_stream_get_state (u->stream) == u->state;
}

static gboolean
until_frames (gpointer data)
{
  Until *u = data;

  return seen_get (u->seen, &u->seen->frames) >= u->count;
}

static gboolean
until_stats (gpointer data)
{
  Until *u = data;
  LensdStreamStats stats;
  gboolean met;

  lensd_stream_get_stats (u->stream, &stats);
  met = u->stats_cond (&stats, u->count);
  lensd_stream_stats_clear (&stats);
  return met;
}

static void
wait_state (LensdStream *stream, LensdStreamState state, gdouble seconds)
{
  Until u = { stream, state };
  LensdStreamStats stats;

  if (wait_for (until_state, &u, seconds))
    return;
  lensd_stream_get_stats (stream, &stats);
  ck_abort_msg ("stream %s: expected state %s within %g s, it is %s "
      "(last error: %s)", lensd_stream_get_name (stream),
      lensd_stream_state_name (state), seconds,
      lensd_stream_state_name (stats.state),
      stats.last_error ? stats.last_error : "none");
}

static void
wait_frames (LensdStream *stream, Seen *seen, guint n, gdouble seconds)
{
  Until u = { stream, 0, seen, n };
  LensdStreamStats stats;

  if (wait_for (until_frames, &u, seconds))
    return;
  lensd_stream_get_stats (stream, &stats);
  ck_abort_msg ("stream %s: expected %u frames within %g s, got %u (state "
      "%s, last error: %s)", lensd_stream_get_name (stream), n, seconds,
      seen_get (seen, &seen->frames), lensd_stream_state_name (stats.state),
      stats.last_error ? stats.last_error : "none");
}

/* ---- set-up ---- */

static LensdEngine *
engine_new (const gchar *model)
{
  LensdConfig config = { 0 };
  LensdEngine *engine;
  GError *error = NULL;
  gchar *path = model ? g_build_filename (shared_dir, "models", model,
      NULL) : NULL;

  config.model_path = path;
  config.conf_threshold = 0.25;
  config.iou_threshold = 0.45;
  config.feature_channels = 4;
  engine = lensd_engine_new (&config, &error);
  ck_assert_msg (engine != NULL, "expected the engine to start (%s): %s",
      model ? model : "motion", error ? error->message : "");
  g_free (path);
  return engine;
}

static LensdStream *
stream_new (LensdEngine *engine, const gchar *name, const gchar *uri,
    const gchar *pipeline, gboolean loop, Seen *seen)
{
  LensdStreamConfig *config = lensd_stream_config_new (name);
  LensdStream *stream;

  config->uri = g_strdup (uri);
  config->pipeline = g_strdup (pipeline);
  config->loop = loop;
  stream = lensd_stream_new (config, engine, context);
  lensd_stream_config_free (config);
  if (seen != NULL)
    lensd_stream_add_listener (stream, on_event, seen);
  return stream;
}

static void
stream_finish (LensdStream *stream)
{
  lensd_stream_stop (stream, TRUE);
  lensd_stream_unref (stream);
}

static void
setup (void)
{
  context = g_main_context_new ();
}

static void
teardown (void)
{
  /* what the stopped streams left on it */
  while (g_main_context_iteration (context, FALSE));
  g_main_context_unref (context);
  context = NULL;
}

/* ---- the detections document ---- */

static JsonObject *
member_object (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  ck_assert_msg (n != NULL && JSON_NODE_HOLDS_OBJECT (n),
      "expected an object \"%s\"", name);
  return json_node_get_object (n);
}

static gint64
member_int (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  ck_assert_msg (n != NULL && JSON_NODE_HOLDS_VALUE (n)
      && json_node_get_value_type (n) == G_TYPE_INT64,
      "expected an integer \"%s\"", name);
  return json_node_get_int (n);
}

static gdouble
member_number (JsonObject *o, const gchar *name)
{
  JsonNode *n = json_object_get_member (o, name);

  ck_assert_msg (n != NULL && JSON_NODE_HOLDS_VALUE (n)
      && (json_node_get_value_type (n) == G_TYPE_DOUBLE
          || json_node_get_value_type (n) == G_TYPE_INT64),
      "expected a number \"%s\"", name);
  return json_node_get_double (n);
}

static void
check_box (JsonObject *det, const gchar *name, gdouble max_x, gdouble max_y)
{
  JsonObject *box = member_object (det, name);
  gdouble x = member_number (box, "x"), y = member_number (box, "y");
  gdouble w = member_number (box, "w"), h = member_number (box, "h");

  ck_assert_msg (x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= max_x
      + 1e-6 && y + h <= max_y + 1e-6, "%s (%g,%g %gx%g) is outside "
      "%gx%g", name, x, y, w, h, max_x, max_y);
}

/* Parses @frame's JSON and checks every field of issue 6's document. */
static void
check_frame_json (LensdFrame *frame, const gchar *stream,
    const gchar *model_name, gboolean with_sha256)
{
  GBytes *bytes = lensd_frame_json (frame), *again;
  JsonParser *parser = json_parser_new ();
  GError *error = NULL;
  JsonObject *root, *o;
  JsonArray *dets;
  JsonNode *n;
  GRegex *rfc3339;
  const gchar *ts;
  gint64 width, height;
  gsize size;
  const gchar *data = g_bytes_get_data (bytes, &size);

  ck_assert_msg (size > 0 && data[size - 1] != '\n',
      "expected compact JSON without a trailing newline");
  ck_assert_msg (json_parser_load_from_data (parser, data, size, &error),
      "expected the detections to parse as JSON: %s", error ?
      error->message : "");
  root = json_node_get_object (json_parser_get_root (parser));
  ck_assert_str_eq (json_object_get_string_member (root, "stream"), stream);
  ck_assert_msg (member_int (root, "seq") == (gint64) frame->seq,
      "expected seq %" G_GUINT64_FORMAT, frame->seq);
  n = json_object_get_member (root, "pts");
  ck_assert_msg (n != NULL && (JSON_NODE_HOLDS_NULL (n)
          || json_node_get_value_type (n) == G_TYPE_INT64),
      "expected pts as integer nanoseconds or null");
  ts = json_object_get_string_member (root, "timestamp");
  rfc3339 = g_regex_new ("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d"
      "\\.\\d{3}Z$", 0, 0, NULL);
  ck_assert_msg (ts != NULL && g_regex_match (rfc3339, ts, 0, NULL),
      "expected an RFC 3339 UTC timestamp with ms, got %s", ts);
  g_regex_unref (rfc3339);

  o = member_object (root, "frame");
  width = member_int (o, "width");
  height = member_int (o, "height");
  ck_assert_msg (width == frame->width && height == frame->height
      && width > 0, "expected the frame size %dx%d", frame->width,
      frame->height);
  o = member_object (root, "model");
  ck_assert_str_eq (json_object_get_string_member (o, "name"), model_name);
  n = json_object_get_member (o, "sha256");
  if (with_sha256)
    ck_assert_msg (n != NULL && JSON_NODE_HOLDS_VALUE (n)
        && strlen (json_node_get_string (n)) == 64,
        "expected the model's sha256");
  else
    ck_assert_msg (n != NULL && JSON_NODE_HOLDS_NULL (n),
        "expected a null sha256 in motion mode");
  ck_assert_msg (member_number (root, "inference_ms") >= 0,
      "expected inference_ms");

  dets = json_object_get_array_member (root, "detections");
  ck_assert_msg (dets != NULL, "expected a detections array");
  ck_assert_uint_eq (json_array_get_length (dets), frame->n_detections);
  for (guint i = 0; i < json_array_get_length (dets); i++) {
    JsonObject *d = json_array_get_object_element (dets, i);
    gdouble score;

    ck_assert_msg (member_int (d, "class_id") == frame->detections[i].class_id,
        "expected class_id %d", frame->detections[i].class_id);
    ck_assert_str_eq (json_object_get_string_member (d, "label"),
        frame->detections[i].label);
    score = member_number (d, "score");
    ck_assert_msg (score > 0 && score <= 1, "expected a score in (0,1], "
        "got %g", score);
    check_box (d, "box", width, height);
    check_box (d, "box_norm", 1, 1);
  }

  /* built once: the cache hands out the same bytes */
  again = lensd_frame_json (frame);
  ck_assert_msg (again == bytes, "expected the cached JSON the second time");
  g_bytes_unref (again);
  g_bytes_unref (bytes);
  g_object_unref (parser);
}

/* ---- motion on a videotestsrc ball ---- */

static gboolean
stats_fps (const LensdStreamStats *s, guint unused)
{
  return s->fps_in > 0 && s->fps_out > 0;
}

START_TEST (test_motion_frames)
{
  LensdEngine *engine = engine_new (NULL);
  Seen seen;
  LensdStream *stream;
  LensdFrame *frame;
  LensdStreamStats stats;
  Until u;

  ck_assert_msg (lensd_engine_is_motion (engine), "expected motion mode");
  ck_assert_str_eq (lensd_engine_model_name (engine), "motion");
  ck_assert_msg (lensd_engine_model_sha256 (engine) == NULL,
      "expected no sha256 in motion mode");

  seen_init (&seen);
  stream = stream_new (engine, "ball", NULL,
      "videotestsrc pattern=ball ! " BALL_CAPS, FALSE, &seen);
  ck_assert_int_eq (lensd_stream_get_state (stream), LENSD_STREAM_STOPPED);
  lensd_stream_start (stream);
  wait_state (stream, LENSD_STREAM_STREAMING, 60);
  wait_frames (stream, &seen, 30, 120);

  ck_assert_msg (seen.seq_in_order, "expected seq to grow by one per frame");
  ck_assert_msg (seen_get (&seen, &seen.motion_frames) >= 10,
      "expected the moving ball in most of 30 frames, got %u",
      seen_get (&seen, &seen.motion_frames));
  ck_assert_msg (seen_get (&seen, &seen.states) >= 2,
      "expected STATE events for connecting and streaming");

  frame = lensd_stream_get_latest (stream);
  ck_assert_msg (frame != NULL, "expected a latest frame");
  ck_assert_msg (frame->width == 160 && frame->height == 120,
      "expected a 160x120 frame, got %dx%d", frame->width, frame->height);
  ck_assert_msg (frame->buffer != NULL && frame->n_maps > 0,
      "expected the pixels and the motion heatmaps");
  ck_assert_msg (frame->maps[0]->n_channels == 1, "expected one channel per "
      "motion level (feature-channels), got %d", frame->maps[0]->n_channels);
  check_frame_json (frame, "ball", "motion", FALSE);
  lensd_frame_unref (frame);

  /* the fps window fills within a few ticks */
  u.stream = stream;
  u.stats_cond = stats_fps;
  u.count = 0;
  ck_assert_msg (wait_for (until_stats, &u, 30), "expected fps in and out");
  lensd_stream_get_stats (stream, &stats);
  ck_assert_int_eq (stats.state, LENSD_STREAM_STREAMING);
  ck_assert_msg (stats.frames_in >= stats.inferred && stats.inferred >= 30,
      "expected frames in (%" G_GUINT64_FORMAT ") >= inferred (%"
      G_GUINT64_FORMAT ") >= 30", stats.frames_in, stats.inferred);
  ck_assert_msg (stats.seq >= 30 && stats.width == 160,
      "expected the latest frame's seq and size in the stats");
  ck_assert_msg (stats.latency_count >= 30
      && stats.latency_buckets[LENSD_LATENCY_BUCKETS - 1] ==
      stats.latency_count && stats.latency_sum_ms > 0,
      "expected every inference in the +Inf bucket");
  for (guint i = 1; i < LENSD_LATENCY_BUCKETS; i++)
    ck_assert_msg (stats.latency_buckets[i] >= stats.latency_buckets[i - 1],
        "expected cumulative latency buckets");
  ck_assert_msg (stats.reconnects == 0 && stats.last_error == NULL,
      "expected no reconnect and no error, got %" G_GUINT64_FORMAT " (%s)",
      stats.reconnects, stats.last_error);
  lensd_stream_stats_clear (&stats);

  /* removal: STOPPED, then REMOVED, once */
  lensd_stream_stop (stream, TRUE);
  ck_assert_int_eq (lensd_stream_get_state (stream), LENSD_STREAM_STOPPED);
  ck_assert_uint_eq (seen_get (&seen, &seen.removed), 1);
  lensd_stream_stop (stream, TRUE);
  ck_assert_uint_eq (seen_get (&seen, &seen.removed), 1);
  lensd_stream_unref (stream);
  lensd_engine_free (engine);
  seen_clear (&seen);
}
END_TEST

/* A listener that removes itself is never called again. */
typedef struct
{
  LensdStream *stream;
  guint id;
  guint calls;
} SelfRemoving;

static void
on_event_remove_self (LensdStream *stream, LensdStreamEvent event,
    LensdFrame *frame, gpointer user_data)
{
  SelfRemoving *r = user_data;

  g_atomic_int_inc (&r->calls);
  lensd_stream_remove_listener (stream, r->id);
}

START_TEST (test_listener_removal)
{
  LensdEngine *engine = engine_new (NULL);
  Seen seen;
  SelfRemoving r = { NULL };
  LensdStream *stream;

  seen_init (&seen);
  stream = stream_new (engine, "ball", NULL,
      "videotestsrc pattern=ball ! " BALL_CAPS, FALSE, &seen);
  r.stream = stream;
  r.id = lensd_stream_add_listener (stream, on_event_remove_self, &r);
  ck_assert_msg (r.id > 0, "expected a listener id");
  lensd_stream_start (stream);
  wait_frames (stream, &seen, 5, 120);
  ck_assert_int_eq (g_atomic_int_get (&r.calls), 1);
  stream_finish (stream);
  lensd_engine_free (engine);
  seen_clear (&seen);
}
END_TEST

/* ---- failures ---- */

static void
check_last_error (LensdStream *stream, const gchar *expected)
{
  LensdStreamStats stats;

  lensd_stream_get_stats (stream, &stats);
  ck_assert_msg (stats.last_error != NULL
      && strstr (stats.last_error, expected) != NULL,
      "stream %s: expected the last error to name %s, got: %s",
      lensd_stream_get_name (stream), expected, stats.last_error);
  lensd_stream_stats_clear (&stats);
}

static gboolean
until_failed_or_backoff (gpointer data)
{
  LensdStreamState state = lensd_stream_get_state (data);

  return state == LENSD_STREAM_FAILED || state == LENSD_STREAM_BACKOFF;
}

START_TEST (test_bad_sources)
{
  LensdEngine *engine = engine_new (NULL);
  Seen seen;
  LensdStream *good, *missing, *scheme, *parse;
  guint frames;

  seen_init (&seen);
  good = stream_new (engine, "good", NULL,
      "videotestsrc pattern=ball ! " BALL_CAPS, FALSE, &seen);
  missing = stream_new (engine, "missing", "file:///nonexistent/video.mp4",
      NULL, FALSE, NULL);
  scheme = stream_new (engine, "scheme", "nosuchscheme://camera/1", NULL,
      FALSE, NULL);
  parse = stream_new (engine, "parse", NULL, "nosuchelement ! videoconvert",
      FALSE, NULL);
  lensd_stream_start (good);
  wait_state (good, LENSD_STREAM_STREAMING, 60);
  lensd_stream_start (missing);
  lensd_stream_start (scheme);
  lensd_stream_start (parse);

  ck_assert_msg (wait_for (until_failed_or_backoff, missing, 60),
      "expected file:///nonexistent to end failed or in backoff, it is %s",
      lensd_stream_state_name (lensd_stream_get_state (missing)));
  check_last_error (missing, "/nonexistent/video.mp4");
  /* retrying cannot fix these */
  wait_state (scheme, LENSD_STREAM_FAILED, 10);
  check_last_error (scheme, "nosuchscheme");
  wait_state (parse, LENSD_STREAM_FAILED, 10);
  check_last_error (parse, "nosuchelement");

  /* the good one never noticed */
  frames = seen_get (&seen, &seen.frames);
  wait_frames (good, &seen, frames + 10, 120);
  ck_assert_int_eq (lensd_stream_get_state (good), LENSD_STREAM_STREAMING);

  stream_finish (missing);
  stream_finish (scheme);
  stream_finish (parse);
  stream_finish (good);
  lensd_engine_free (engine);
  seen_clear (&seen);
}
END_TEST

START_TEST (test_bad_model)
{
  LensdConfig config = { 0 };
  GError *error = NULL;
  LensdEngine *engine;

  config.model_path = (gchar *) "/nonexistent/model.onnx";
  config.conf_threshold = 0.25;
  config.iou_threshold = 0.45;
  engine = lensd_engine_new (&config, &error);
  ck_assert_msg (engine == NULL, "expected no engine without a model");
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_MODEL),
      "expected LENSD_ERROR_MODEL");
  ck_assert_msg (strstr (error->message, "/nonexistent/model.onnx") != NULL,
      "expected the error to name the model, got: %s", error->message);
  g_error_free (error);
}
END_TEST

/* an unwritable cache-dir is reported and skipped, not fatal */
START_TEST (test_unwritable_cache_dir)
{
  LensdConfig config = { 0 };
  GError *error = NULL;
  LensdEngine *engine;

  config.cache_dir = (gchar *) "/proc/lensd-cache";
  engine = lensd_engine_new (&config, &error);
  ck_assert_msg (engine != NULL, "expected the engine to start anyway: %s",
      error ? error->message : "");
  lensd_engine_free (engine);
  /* the later tests keep their compiled programs again */
  lens_program_cache_set_dir (g_getenv ("LENS_CACHE_DIR"));
}
END_TEST

/* ---- end of stream and loop ---- */

START_TEST (test_end_of_stream)
{
  LensdEngine *engine = engine_new (NULL);
  Seen seen;
  LensdStream *stream;
  LensdFrame *frame;

  seen_init (&seen);
  stream = stream_new (engine, "short", NULL,
      "videotestsrc pattern=ball num-buffers=20 ! " BALL_CAPS, FALSE, &seen);
  lensd_stream_start (stream);
  wait_state (stream, LENSD_STREAM_STREAMING, 60);
  wait_state (stream, LENSD_STREAM_STOPPED, 120);
  check_last_error (stream, "end of stream");
  frame = lensd_stream_get_latest (stream);
  ck_assert_msg (frame != NULL && frame->seq >= 1 && frame->seq <= 20,
      "expected the last frame kept after the end");
  lensd_frame_unref (frame);
  stream_finish (stream);
  lensd_engine_free (engine);
  seen_clear (&seen);
}
END_TEST

START_TEST (test_loop)
{
  LensdEngine *engine = engine_new (NULL);
  Seen seen;
  LensdStream *stream;
  LensdStreamStats stats;

  seen_init (&seen);
  stream = stream_new (engine, "looping", NULL,
      "videotestsrc pattern=ball num-buffers=20 ! " BALL_CAPS, TRUE, &seen);
  lensd_stream_start (stream);
  /* more frames than the source has: it started over, more than once */
  wait_frames (stream, &seen, 50, 180);
  ck_assert_msg (seen.seq_in_order, "expected seq to keep growing by one");
  lensd_stream_get_stats (stream, &stats);
  ck_assert_msg (stats.seq >= 50 && stats.state != LENSD_STREAM_STOPPED
      && stats.state != LENSD_STREAM_FAILED, "expected the stream looping, "
      "seq %" G_GUINT64_FORMAT ", state %s", stats.seq,
      lensd_stream_state_name (stats.state));
  lensd_stream_stats_clear (&stats);
  stream_finish (stream);
  lensd_engine_free (engine);
  seen_clear (&seen);
}
END_TEST

/* ---- stall detection ---- */

static gboolean
stats_reconnected (const LensdStreamStats *s, guint n)
{
  return s->reconnects >= n;
}

/* identity datarate=1 stamps the second frame 4608 s (its size in bytes)
 * after the first, so the paced appsink waits for it "forever": a source
 * that stops producing without an EOS or an error. */
START_TEST (test_stall)
{
  LensdEngine *engine = engine_new (NULL);
  LensdStreamConfig *config = lensd_stream_config_new ("stalling");
  LensdStream *stream;
  Seen seen;
  Until u = { NULL };

  seen_init (&seen);
  config->pipeline = g_strdup ("videotestsrc ! video/x-raw,format=I420,"
      "width=64,height=48,framerate=30/1 ! identity datarate=1");
  config->stall_timeout_s = 2;
  stream = lensd_stream_new (config, engine, context);
  lensd_stream_config_free (config);
  lensd_stream_add_listener (stream, on_event, &seen);
  lensd_stream_start (stream);
  wait_state (stream, LENSD_STREAM_STREAMING, 60);

  u.stream = stream;
  u.stats_cond = stats_reconnected;
  u.count = 2;
  ck_assert_msg (wait_for (until_stats, &u, 120),
      "expected the stalled stream reconnected twice");
  check_last_error (stream, "stalled");
  /* and every reconnect streams again (one frame) */
  wait_state (stream, LENSD_STREAM_STREAMING, 60);
  stream_finish (stream);
  lensd_engine_free (engine);
  seen_clear (&seen);
}
END_TEST

/* ---- a YOLO model on a file ---- */

START_TEST (test_file_persons)
{
  LensdEngine *engine = engine_new (YOLO_MODEL);
  gchar *video = g_build_filename (shared_dir, "videos", VIDEO, NULL);
  gchar *uri = gst_filename_to_uri (video, NULL);
  JsonBuilder *builder = json_builder_new ();
  JsonNode *root;
  JsonObject *info, *model;
  JsonArray *classes;
  LensdStream *stream;
  LensdFrame *frame;
  Seen seen;

  /* /api/v1/info's members */
  json_builder_begin_object (builder);
  lensd_engine_describe (engine, builder);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);
  info = json_node_get_object (root);
  ck_assert_msg (json_object_has_member (member_object (info, "engine"),
          "device"), "expected the engine's device");
  model = member_object (info, "model");
  ck_assert_str_eq (json_object_get_string_member (model, "name"),
      "yolo11n_int8_320.onnx");
  ck_assert_uint_eq (strlen (json_object_get_string_member (model,
              "sha256")), 64);
  ck_assert_int_eq (member_int (member_object (model, "input"), "width"),
      320);
  classes = json_object_get_array_member (model, "classes");
  ck_assert_msg (classes != NULL && json_array_get_length (classes) == 80
      && g_strcmp0 (json_array_get_string_element (classes, 0), "person")
      == 0, "expected the 80 COCO classes, person first");
  json_node_unref (root);
  g_object_unref (builder);

  seen_init (&seen);
  stream = stream_new (engine, "plaza", uri, NULL, FALSE, &seen);
  lensd_stream_start (stream);
  wait_state (stream, LENSD_STREAM_STREAMING, 120);
  wait_frames (stream, &seen, 5, 180);
  ck_assert_msg (seen_get (&seen, &seen.person_frames) >= 3,
      "expected persons on the plaza in most frames, got %u of %u",
      seen_get (&seen, &seen.person_frames), seen_get (&seen, &seen.frames));
  frame = lensd_stream_get_latest (stream);
  ck_assert_msg (frame->width == 1280 && frame->height == 720,
      "expected 1280x720 frames, got %dx%d", frame->width, frame->height);
  ck_assert_msg (frame->input_width == 320 && frame->n_maps == 3,
      "expected the model's 3 maps at 320x320");
  ck_assert_msg (frame->maps[0]->n_channels == 4
      && frame->maps[0]->channels != NULL,
      "expected 4 channels per map (feature-channels), got %d",
      frame->maps[0]->n_channels);
  check_frame_json (frame, "plaza", "yolo11n_int8_320.onnx", TRUE);
  lensd_frame_unref (frame);

  stream_finish (stream);
  lensd_engine_free (engine);
  seen_clear (&seen);
  g_free (uri);
  g_free (video);
}
END_TEST

/* The file loops: its pts start over while seq keeps growing. */
START_TEST (test_file_loop)
{
  LensdEngine *engine = engine_new (NULL);
  gchar *video = g_build_filename (shared_dir, "videos",
      "office_people_indoor_720p.mp4", NULL);
  gchar *uri = gst_filename_to_uri (video, NULL);
  LensdStream *stream;
  Seen seen;
  Until u = { NULL };
  guint frames;

  seen_init (&seen);
  stream = stream_new (engine, "office", uri, NULL, TRUE, &seen);
  lensd_stream_start (stream);
  wait_state (stream, LENSD_STREAM_STREAMING, 120);
  u.seen = &seen;
  /* a 6 s file: its 182 frames are long gone before 2000 frames */
  while (seen_get (&seen, &seen.pts_wraps) == 0) {
    u.count = seen_get (&seen, &seen.frames) + 1;
    ck_assert_msg (u.count < 2000, "expected the file to start over");
    if (!wait_for (until_frames, &u, 60))
      ck_abort_msg ("expected frames to keep coming, state %s",
          lensd_stream_state_name (lensd_stream_get_state (stream)));
  }
  frames = seen_get (&seen, &seen.frames);
  wait_frames (stream, &seen, frames + 5, 60);
  ck_assert_msg (seen.seq_in_order, "expected seq to keep growing by one");
  stream_finish (stream);
  lensd_engine_free (engine);
  seen_clear (&seen);
  g_free (uri);
  g_free (video);
}
END_TEST

static Suite *
lensd_stream_suite (void)
{
  Suite *s = suite_create ("lensd-stream");
  TCase *tc_frames = tcase_create ("frames");
  TCase *tc_failures = tcase_create ("failures");
  TCase *tc_eos = tcase_create ("end-of-stream");
  TCase *tc_stall = tcase_create ("stall");
  TCase *tc_model = tcase_create ("model");
  TCase *all[] = { tc_frames, tc_failures, tc_eos, tc_stall, tc_model };

  for (guint i = 0; i < G_N_ELEMENTS (all); i++) {
    tcase_add_checked_fixture (all[i], setup, teardown);
    tcase_set_timeout (all[i], 600);
  }
  tcase_add_test (tc_frames, test_motion_frames);
  tcase_add_test (tc_frames, test_listener_removal);
  suite_add_tcase (s, tc_frames);
  tcase_add_test (tc_failures, test_bad_sources);
  tcase_add_test (tc_failures, test_bad_model);
  tcase_add_test (tc_failures, test_unwritable_cache_dir);
  suite_add_tcase (s, tc_failures);
  tcase_add_test (tc_eos, test_end_of_stream);
  tcase_add_test (tc_eos, test_loop);
  suite_add_tcase (s, tc_eos);
  tcase_add_test (tc_stall, test_stall);
  suite_add_tcase (s, tc_stall);
  if (shared_dir == NULL) {
    g_print ("lensd-stream: ../shared not found (set LENS_SHARED_DIR): "
        "model and video tests skipped\n");
    return s;
  }
  tcase_add_test (tc_model, test_file_persons);
  tcase_add_test (tc_eos, test_file_loop);
  suite_add_tcase (s, tc_model);
  return s;
}

int
main (int argc, char **argv)
{
  int status;

  gst_init (&argc, &argv);
  shared_dir = lens_check_shared_dir ();
  status = lens_check_run (lensd_stream_suite ());
  g_free (shared_dir);
  return status;
}
