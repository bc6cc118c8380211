/* test-lensd-daemon.c: the daemon object (daemon/lensd-daemon.c) on live
 * test-pattern streams in motion mode: a reload applies added, removed
 * and changed streams and leaves unchanged and API-added ones running;
 * streams added and removed at runtime, with their errors; the sorted
 * list; the status line; a model that does not load. Needs the lensdetect
 * plugin built here (GST_PLUGIN_PATH) and an OpenCL device. */
#include "lens-check.h"

#include <glib/gstdio.h>
#include <string.h>

#include "lensd.h"

/* every wait here is bounded; a slow machine only takes longer */
#define WAIT_S 120

static GMainContext *context;
static gchar *tmp_dir;

/* a source whose last element has an always src pad, 10 fps of 64x48 */
#define PATTERN(p) "videotestsrc pattern=" p " is-live=true ! " \
  "video/x-raw,width=64,height=48,framerate=10/1 ! queue"

static void
daemon_setup (void)
{
  context = g_main_context_new ();
  tmp_dir = g_dir_make_tmp ("test-lensd-daemon-XXXXXX", NULL);
  ck_assert_ptr_nonnull (tmp_dir);
}

static void
daemon_teardown (void)
{
  /* let the streams' last bus messages go */
  while (g_main_context_iteration (context, FALSE));
  g_main_context_unref (context);
  context = NULL;
  g_rmdir (tmp_dir);
  g_clear_pointer (&tmp_dir, g_free);
}

static LensdConfig *
config_of (const gchar * text)
{
  GError *error = NULL;
  LensdConfig *config = lensd_config_parse (text, strlen (text), "test.conf",
      &error);

  ck_assert_msg (config != NULL, "config: %s", error ? error->message : "");
  return config;
}

static LensdDaemon *
daemon_of (const gchar * text)
{
  GError *error = NULL;
  LensdDaemon *daemon = lensd_daemon_new (config_of (text), context, &error);

  ck_assert_msg (daemon != NULL, "daemon: %s", error ? error->message : "");
  return daemon;
}

static LensdStreamState
state_of (LensdDaemon * daemon, const gchar * name)
{
  LensdStream *stream = lensd_daemon_get_stream (daemon, name);
  LensdStreamState state;

  ck_assert_msg (stream != NULL, "no stream %s", name);
  state = lensd_stream_get_state (stream);
  lensd_stream_unref (stream);
  return state;
}

/* Runs the daemon's context until @name streams (and has published a
 * frame), or fails after WAIT_S. */
static void
wait_streaming (LensdDaemon * daemon, const gchar * name)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_S * G_TIME_SPAN_SECOND;
  LensdStream *stream = lensd_daemon_get_stream (daemon, name);

  ck_assert_msg (stream != NULL, "no stream %s", name);
  for (;;) {
    LensdStreamStats stats = { 0 };
    gboolean done;

    lensd_stream_get_stats (stream, &stats);
    done = stats.state == LENSD_STREAM_STREAMING && stats.seq > 0;
    if (done || g_get_monotonic_time () > deadline) {
      ck_assert_msg (done, "stream %s is %s after %d s (last error: %s)",
          name, lensd_stream_state_name (stats.state), WAIT_S,
          stats.last_error ? stats.last_error : "none");
      lensd_stream_stats_clear (&stats);
      break;
    }
    lensd_stream_stats_clear (&stats);
    while (g_main_context_iteration (context, FALSE));
    g_usleep (20 * 1000);
  }
  lensd_stream_unref (stream);
}

static guint64
seq_of (LensdStream * stream)
{
  LensdStreamStats stats = { 0 };
  guint64 seq;

  lensd_stream_get_stats (stream, &stats);
  seq = stats.seq;
  lensd_stream_stats_clear (&stats);
  return seq;
}

START_TEST (test_reload)
{
  LensdDaemon *daemon = daemon_of ("[server]\nlisten=127.0.0.1:0\n"
      "[stream a]\npipeline=" PATTERN ("ball") "\n"
      "[stream b]\npipeline=" PATTERN ("snow") "\n"
      "[stream c]\npipeline=" PATTERN ("smpte") "\nenabled=false\n");
  LensdStreamConfig *api = lensd_stream_config_new ("api");
  LensdStream *a, *b, *b2, *c, *s;
  GError *error = NULL;
  guint64 seq;

  api->pipeline = g_strdup (PATTERN ("red"));
  ck_assert_msg (lensd_daemon_add_stream (daemon, api, &error), "add: %s",
      error ? error->message : "");
  wait_streaming (daemon, "a");
  wait_streaming (daemon, "b");
  wait_streaming (daemon, "api");
  ck_assert_int_eq (state_of (daemon, "c"), LENSD_STREAM_STOPPED);

  a = lensd_daemon_get_stream (daemon, "a");
  b = lensd_daemon_get_stream (daemon, "b");
  c = lensd_daemon_get_stream (daemon, "c");
  seq = seq_of (a);

  /* a unchanged, b changed, c gone, d new, and the file now names a stream
   * "api" too: the API's keeps running */
  ck_assert (lensd_daemon_reload (daemon, config_of (
              "[server]\nlisten=127.0.0.1:0\n"
              "[stream a]\npipeline=" PATTERN ("ball") "\n"
              "[stream b]\npipeline=" PATTERN ("snow") "\ninterval=2\n"
              "[stream d]\npipeline=" PATTERN ("gamut") "\n"
              "[stream api]\npipeline=" PATTERN ("green") "\n"), &error));

  s = lensd_daemon_get_stream (daemon, "a");
  ck_assert_msg (s == a, "the unchanged stream a was replaced");
  lensd_stream_unref (s);
  ck_assert_int_eq (lensd_stream_get_state (a), LENSD_STREAM_STREAMING);

  b2 = lensd_daemon_get_stream (daemon, "b");
  ck_assert_msg (b2 != NULL && b2 != b, "the changed stream b was kept");
  ck_assert_uint_eq (lensd_stream_get_config (b2)->interval, 2);
  ck_assert_msg (lensd_stream_get_state (b) == LENSD_STREAM_STOPPED,
      "the old b is %s, not stopped",
      lensd_stream_state_name (lensd_stream_get_state (b)));
  lensd_stream_unref (b2);

  ck_assert_ptr_null (lensd_daemon_get_stream (daemon, "c"));
  ck_assert_int_eq (lensd_stream_get_state (c), LENSD_STREAM_STOPPED);

  s = lensd_daemon_get_stream (daemon, "api");
  ck_assert (lensd_stream_get_config (s)->from_api);
  ck_assert_str_eq (lensd_stream_get_config (s)->pipeline, PATTERN ("red"));
  lensd_stream_unref (s);

  wait_streaming (daemon, "b");
  wait_streaming (daemon, "d");
  /* a kept producing all along */
  ck_assert_msg (seq_of (a) > seq, "stream a stopped producing at %"
      G_GUINT64_FORMAT, seq);

  lensd_stream_unref (c);
  lensd_stream_unref (b);
  lensd_stream_unref (a);
  lensd_stream_config_free (api);
  lensd_daemon_free (daemon);
}
END_TEST

START_TEST (test_add_remove)
{
  LensdDaemon *daemon = daemon_of ("[server]\nlisten=127.0.0.1:0\n"
      "[stream zeta]\npipeline=" PATTERN ("ball") "\nenabled=false\n");
  LensdStreamConfig *config = lensd_stream_config_new ("alpha");
  GError *error = NULL;
  GPtrArray *list;
  LensdStream *alpha;

  config->pipeline = g_strdup (PATTERN ("snow"));
  ck_assert (lensd_daemon_add_stream (daemon, config, &error));
  alpha = lensd_daemon_get_stream (daemon, "alpha");
  ck_assert (lensd_stream_get_config (alpha)->from_api);

  ck_assert (!lensd_daemon_add_stream (daemon, config, &error));
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_EXISTS),
      "adding twice: %s", error->message);
  g_clear_error (&error);

  g_free (config->name);
  config->name = g_strdup ("bad name");
  ck_assert (!lensd_daemon_add_stream (daemon, config, &error));
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_INVALID),
      "a bad name: %s", error->message);
  ck_assert_msg (g_str_has_prefix (error->message, "stream \"bad name\": "
          "name: "), "got %s", error->message);
  g_clear_error (&error);

  /* sorted by name, not by order of addition */
  list = lensd_daemon_list_streams (daemon);
  ck_assert_uint_eq (list->len, 2);
  ck_assert_str_eq (lensd_stream_get_name (list->pdata[0]), "alpha");
  ck_assert_str_eq (lensd_stream_get_name (list->pdata[1]), "zeta");
  g_ptr_array_unref (list);

  wait_streaming (daemon, "alpha");
  ck_assert (lensd_daemon_remove_stream (daemon, "alpha", &error));
  ck_assert_ptr_null (lensd_daemon_get_stream (daemon, "alpha"));
  ck_assert_int_eq (lensd_stream_get_state (alpha), LENSD_STREAM_STOPPED);
  ck_assert (!lensd_daemon_remove_stream (daemon, "alpha", &error));
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_NOT_FOUND),
      "removing twice: %s", error->message);
  g_clear_error (&error);

  lensd_stream_unref (alpha);
  lensd_stream_config_free (config);
  lensd_daemon_free (daemon);
}
END_TEST

START_TEST (test_status_and_ready)
{
  LensdDaemon *daemon = daemon_of ("[server]\nlisten=127.0.0.1:0\n"
      "[stream a]\npipeline=" PATTERN ("ball") "\n"
      "[stream off]\npipeline=" PATTERN ("ball") "\nenabled=false\n");
  GRegex *format = g_regex_new ("^1/2 streams streaming, [0-9]+\\.[0-9] fps$",
      0, 0, NULL);
  gchar *line;

  ck_assert (!lensd_daemon_is_ready (daemon));
  lensd_daemon_set_ready (daemon, TRUE);
  ck_assert (lensd_daemon_is_ready (daemon));
  ck_assert_ptr_nonnull (lensd_daemon_get_engine (daemon));
  ck_assert (lensd_engine_is_motion (lensd_daemon_get_engine (daemon)));
  ck_assert_ptr_null (lensd_daemon_get_mqtt (daemon));
  ck_assert_uint_eq (lensd_daemon_get_config (daemon)->streams->len, 2);

  wait_streaming (daemon, "a");
  line = lensd_daemon_status_line (daemon);
  ck_assert_msg (g_regex_match (format, line, 0, NULL),
      "status line \"%s\"", line);
  g_free (line);
  g_regex_unref (format);
  lensd_daemon_free (daemon);
}
END_TEST

START_TEST (test_model_error)
{
  gchar *model = g_build_filename (tmp_dir, "bad.onnx", NULL);
  gchar *text = g_strdup_printf ("[model]\npath=%s\n", model);
  GError *error = NULL;

  g_file_set_contents (model, "not a model", -1, NULL);
  /* the config is taken, also on failure: valgrind sees a leak or a
   * double free */
  ck_assert_ptr_null (lensd_daemon_new (config_of (text), context, &error));
  ck_assert_msg (error != NULL && strstr (error->message, model) != NULL,
      "expected the model's path in \"%s\"", error ? error->message : "");
  g_clear_error (&error);
  g_unlink (model);
  g_free (text);
  g_free (model);
}
END_TEST

static Suite *
lensd_daemon_suite (void)
{
  Suite *s = suite_create ("lensd-daemon");
  TCase *tc;

  tc = tcase_create ("streams");
  tcase_add_checked_fixture (tc, daemon_setup, daemon_teardown);
  tcase_set_timeout (tc, 600);
  tcase_add_test (tc, test_reload);
  tcase_add_test (tc, test_add_remove);
  tcase_add_test (tc, test_status_and_ready);
  tcase_add_test (tc, test_model_error);
  suite_add_tcase (s, tc);
  return s;
}

int
main (void)
{
  gst_init (NULL, NULL);
  return lens_check_run (lensd_daemon_suite ());
}
