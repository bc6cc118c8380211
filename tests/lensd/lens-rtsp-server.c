/* lens-rtsp-server.c: a small RTSP server for lensd's integration and fault
 * tests. It decodes a video file in a loop, at its own pace (the clock),
 * and serves it as H.264 (x264enc) over RTSP on the loopback interface, as
 * a live camera would. A separate "producer" pipeline decodes and loops
 * the file; the RTSP media (one, shared by every client) takes its frames
 * through an appsrc, so a seek or a stall of the producer never touches
 * the RTSP sessions. Faults on demand: --stall-after stops sending frames
 * while keeping the sessions open, --change-size-after switches the
 * resolution mid-stream.
 *
 *   lens-rtsp-server --port N --file PATH [--mount /cam] [--width W
 *       --height H] [--stall-after S [--stall-for S]]
 *       [--change-size-after S [--change-size WxH]]
 *
 * Port 0 picks a free port. Once listening it prints the stream's URL
 * ("rtsp://127.0.0.1:PORT/cam") on a line of its own on stdout. SIGTERM
 * and SIGINT end it with exit code 0. A missing file exits with 77 (the
 * test suites' "skipped"), other errors with 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/rtsp-server/rtsp-server.h>

typedef struct
{
  GMainLoop *loop;
  GstElement *producer;
  GstElement *capsfilter;
  GstRTSPMediaFactory *factory;

  /* the appsrc of the media clients are watching, or NULL: frames are
   * dropped while nobody watches */
  GMutex lock;
  GstAppSrc *appsrc;

  gint64 start_us;
  gdouble stall_after_s;        /* < 0: never */
  gdouble stall_for_s;          /* <= 0: for good */
  gboolean stalling;
  gdouble change_size_after_s;  /* < 0: never */
  gint change_width, change_height;
  guint64 frames_sent;          /* to clients (the media's appsrc) */
  gint exit_code;
} LensRtspServer;

static gdouble
server_elapsed_s (LensRtspServer * server)
{
  return (g_get_monotonic_time () - server->start_us) / 1e6;
}

/* Whether frames are held back now (--stall-after, --stall-for). */
static gboolean
server_is_stalled (LensRtspServer * server)
{
  gdouble t = server_elapsed_s (server);

  if (server->stall_after_s < 0 || t < server->stall_after_s)
    return FALSE;
  if (server->stall_for_s > 0 && t >= server->stall_after_s +
      server->stall_for_s)
    return FALSE;
  return TRUE;
}

/* The producer's streaming thread: a decoded, scaled frame to hand on. */
static GstFlowReturn
on_new_sample (GstAppSink * sink, gpointer user_data)
{
  LensRtspServer *server = user_data;
  GstSample *sample = gst_app_sink_pull_sample (sink);
  GstAppSrc *appsrc = NULL;
  gboolean stalled;

  if (sample == NULL)
    return GST_FLOW_EOS;

  stalled = server_is_stalled (server);
  if (stalled != server->stalling) {
    server->stalling = stalled;
    g_printerr ("lens-rtsp-server: %s sending frames at %.1f s\n",
        stalled ? "stopped" : "resumed", server_elapsed_s (server));
  }

  g_mutex_lock (&server->lock);
  if (server->appsrc != NULL && !stalled)
    appsrc = gst_object_ref (server->appsrc);
  g_mutex_unlock (&server->lock);

  if (appsrc != NULL) {
    GstBuffer *buffer = gst_buffer_copy (gst_sample_get_buffer (sample));
    GstSample *out;

    /* the media's appsrc stamps it with its own running time
     * (do-timestamp): the producer's times restart on every loop */
    GST_BUFFER_PTS (buffer) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DTS (buffer) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DURATION (buffer) = GST_CLOCK_TIME_NONE;
    out = gst_sample_new (buffer, gst_sample_get_caps (sample), NULL, NULL);
    /* takes no ownership; sets the appsrc's caps when they changed */
    gst_app_src_push_sample (appsrc, out);
    gst_sample_unref (out);
    gst_buffer_unref (buffer);
    gst_object_unref (appsrc);
    server->frames_sent++;
  }
  gst_sample_unref (sample);
  return GST_FLOW_OK;
}

static void
on_media_unprepared (GstRTSPMedia * media, gpointer user_data)
{
  LensRtspServer *server = user_data;
  GstElement *element = gst_rtsp_media_get_element (media);
  GstElement *appsrc = gst_bin_get_by_name (GST_BIN (element), "src");

  g_mutex_lock (&server->lock);
  if (appsrc != NULL && server->appsrc == GST_APP_SRC (appsrc))
    g_clear_object (&server->appsrc);
  g_mutex_unlock (&server->lock);
  if (appsrc != NULL)
    gst_object_unref (appsrc);
  gst_object_unref (element);
}

/* A new media (the first client, or the first after the last one left):
 * its appsrc becomes the one frames go to. */
static void
on_media_configure (GstRTSPMediaFactory * factory, GstRTSPMedia * media,
    gpointer user_data)
{
  LensRtspServer *server = user_data;
  GstElement *element = gst_rtsp_media_get_element (media);
  GstElement *appsrc = gst_bin_get_by_name (GST_BIN (element), "src");
  GstPad *pad = gst_element_get_static_pad (server->capsfilter, "src");
  GstCaps *caps = gst_pad_get_current_caps (pad);

  if (caps != NULL) {
    gst_app_src_set_caps (GST_APP_SRC (appsrc), caps);
    gst_caps_unref (caps);
  }
  gst_object_unref (pad);

  g_mutex_lock (&server->lock);
  g_clear_object (&server->appsrc);
  server->appsrc = GST_APP_SRC (appsrc);        /* takes the reference */
  g_mutex_unlock (&server->lock);

  g_signal_connect (media, "unprepared", G_CALLBACK (on_media_unprepared),
      server);
  gst_object_unref (element);
}

static gboolean
on_producer_message (GstBus * bus, GstMessage * message, gpointer user_data)
{
  LensRtspServer *server = user_data;

  switch (GST_MESSAGE_TYPE (message)) {
    case GST_MESSAGE_EOS:
      /* start over: the loop a camera never ends */
      if (!gst_element_seek_simple (server->producer, GST_FORMAT_TIME,
              GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT, 0)) {
        gst_element_set_state (server->producer, GST_STATE_READY);
        gst_element_set_state (server->producer, GST_STATE_PLAYING);
      }
      break;
    case GST_MESSAGE_ERROR:{
      GError *error = NULL;
      gchar *debug = NULL;

      gst_message_parse_error (message, &error, &debug);
      g_printerr ("lens-rtsp-server: %s: %s (%s)\n",
          GST_OBJECT_NAME (GST_MESSAGE_SRC (message)), error->message,
          debug ? debug : "");
      g_clear_error (&error);
      g_free (debug);
      server->exit_code = 1;
      g_main_loop_quit (server->loop);
      break;
    }
    default:
      break;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_change_size (gpointer user_data)
{
  LensRtspServer *server = user_data;
  GstCaps *caps = gst_caps_new_simple ("video/x-raw",
      "format", G_TYPE_STRING, "I420",
      "width", G_TYPE_INT, server->change_width,
      "height", G_TYPE_INT, server->change_height,
      "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, NULL);

  g_printerr ("lens-rtsp-server: size changed to %dx%d at %.1f s\n",
      server->change_width, server->change_height, server_elapsed_s (server));
  g_object_set (server->capsfilter, "caps", caps, NULL);
  gst_caps_unref (caps);
  return G_SOURCE_REMOVE;
}

static gboolean
on_quit_signal (gpointer user_data)
{
  LensRtspServer *server = user_data;

  g_main_loop_quit (server->loop);
  return G_SOURCE_CONTINUE;
}

/* decodebin's pads: the video one goes on to @convert, others stay
 * unlinked */
static void
on_decoded_pad (GstElement * decode, GstPad * pad, gpointer user_data)
{
  GstElement *convert = user_data;
  GstPad *sink = gst_element_get_static_pad (convert, "sink");
  GstCaps *caps = gst_pad_get_current_caps (pad);

  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  if (!gst_pad_is_linked (sink) && g_str_has_prefix
      (gst_structure_get_name (gst_caps_get_structure (caps, 0)),
          "video/x-raw"))
    gst_pad_link (pad, sink);
  gst_caps_unref (caps);
  gst_object_unref (sink);
}

static GstElement *
make_producer (LensRtspServer * server, const gchar * file, gint width,
    gint height, GError ** error)
{
  GstElement *pipeline, *src, *decode, *convert, *scale, *sink;
  GstCaps *caps;
  GstAppSinkCallbacks callbacks = { NULL, NULL, on_new_sample };

  pipeline = gst_pipeline_new ("producer");
  src = gst_element_factory_make ("filesrc", NULL);
  decode = gst_element_factory_make ("decodebin", NULL);
  convert = gst_element_factory_make ("videoconvert", NULL);
  scale = gst_element_factory_make ("videoscale", NULL);
  server->capsfilter = gst_element_factory_make ("capsfilter", NULL);
  sink = gst_element_factory_make ("appsink", NULL);
  if (!src || !decode || !convert || !scale || !server->capsfilter || !sink) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "GStreamer elements missing (filesrc, decodebin, videoconvert, "
        "videoscale, capsfilter, appsink)");
    gst_object_unref (pipeline);
    return NULL;
  }

  g_object_set (src, "location", file, NULL);
  /* only the video is decoded: the audio stays encoded, unlinked */
  caps = gst_caps_from_string ("video/x-raw");
  g_object_set (decode, "caps", caps, NULL);
  gst_caps_unref (caps);

  caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING,
      "I420", "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, NULL);
  if (width > 0 && height > 0)
    gst_caps_set_simple (caps, "width", G_TYPE_INT, width, "height",
        G_TYPE_INT, height, NULL);
  g_object_set (server->capsfilter, "caps", caps, NULL);
  gst_caps_unref (caps);

  /* in real time, as a camera; never more than a frame behind */
  g_object_set (sink, "sync", TRUE, "max-buffers", 2, "drop", TRUE,
      "emit-signals", FALSE, NULL);
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &callbacks, server, NULL);

  gst_bin_add_many (GST_BIN (pipeline), src, decode, convert, scale,
      server->capsfilter, sink, NULL);
  if (!gst_element_link (src, decode) ||
      !gst_element_link_many (convert, scale, server->capsfilter, sink,
          NULL)) {
    g_set_error (error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "cannot link the decoding pipeline");
    gst_object_unref (pipeline);
    return NULL;
  }
  g_signal_connect_object (decode, "pad-added",
      G_CALLBACK (on_decoded_pad), convert, 0);
  return pipeline;
}

int
main (int argc, char **argv)
{
  LensRtspServer server = { 0 };
  gint port = 8554, width = 0, height = 0;
  gchar *file = NULL, *mount = NULL, *change_size = NULL;
  gdouble stall_after = -1, stall_for = 0, change_size_after = -1;
  GOptionEntry entries[] = {
    {"port", 0, 0, G_OPTION_ARG_INT, &port,
        "TCP port to listen on (0: any free port)", "N"},
    {"file", 0, 0, G_OPTION_ARG_FILENAME, &file, "the video to serve",
        "PATH"},
    {"mount", 0, 0, G_OPTION_ARG_STRING, &mount,
        "the stream's path (default /cam)", "PATH"},
    {"width", 0, 0, G_OPTION_ARG_INT, &width,
        "scale to this width (with --height)", "W"},
    {"height", 0, 0, G_OPTION_ARG_INT, &height,
        "scale to this height (with --width)", "H"},
    {"stall-after", 0, 0, G_OPTION_ARG_DOUBLE, &stall_after,
        "stop sending frames after this many seconds, sessions kept open",
        "S"},
    {"stall-for", 0, 0, G_OPTION_ARG_DOUBLE, &stall_for,
        "resume sending after a stall of this many seconds (default: never)",
        "S"},
    {"change-size-after", 0, 0, G_OPTION_ARG_DOUBLE, &change_size_after,
        "change the resolution after this many seconds", "S"},
    {"change-size", 0, 0, G_OPTION_ARG_STRING, &change_size,
        "the resolution changed to (default: half of the first)", "WxH"},
    {NULL}
  };
  GOptionContext *context;
  GError *error = NULL;
  GstRTSPServer *rtsp;
  GstRTSPMountPoints *mounts;
  GstBus *bus;
  gchar *launch;
  guint bus_watch;

  context = g_option_context_new ("- serve a video file in a loop over RTSP");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_group (context, gst_init_get_option_group ());
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("lens-rtsp-server: %s\n", error->message);
    return 1;
  }
  g_option_context_free (context);
  if (file == NULL) {
    g_printerr ("lens-rtsp-server: --file is required\n");
    return 1;
  }
  if (!g_file_test (file, G_FILE_TEST_IS_REGULAR)) {
    g_printerr ("lens-rtsp-server: %s: no such file; skipped\n", file);
    return 77;
  }
  if (port < 0 || port > 65535 || width < 0 || height < 0 ||
      (width > 0) != (height > 0)) {
    g_printerr ("lens-rtsp-server: bad --port, --width or --height\n");
    return 1;
  }
  if (mount == NULL)
    mount = g_strdup ("/cam");
  if (mount[0] != '/') {
    g_printerr ("lens-rtsp-server: --mount must start with '/'\n");
    return 1;
  }

  g_mutex_init (&server.lock);
  server.loop = g_main_loop_new (NULL, FALSE);
  server.start_us = g_get_monotonic_time ();
  server.stall_after_s = stall_after;
  server.stall_for_s = stall_for;
  server.change_size_after_s = change_size_after;

  server.producer = make_producer (&server, file, width, height, &error);
  if (server.producer == NULL) {
    g_printerr ("lens-rtsp-server: %s\n", error->message);
    return 1;
  }
  bus = gst_element_get_bus (server.producer);
  bus_watch = gst_bus_add_watch (bus, on_producer_message, &server);
  gst_object_unref (bus);

  if (change_size_after >= 0) {
    if (change_size != NULL) {
      if (sscanf (change_size, "%dx%d", &server.change_width,
              &server.change_height) != 2 || server.change_width < 16 ||
          server.change_height < 16) {
        g_printerr ("lens-rtsp-server: --change-size: expected WxH\n");
        return 1;
      }
    } else {
      /* half of the first size; the file's own when not scaled */
      GstElement *probe = NULL;
      gint w = width, h = height;

      if (w == 0) {
        gchar *desc = g_strdup_printf ("filesrc location=\"%s\" ! decodebin "
            "caps=video/x-raw ! video/x-raw ! fakesink name=sink", file);
        GstElement *fakesink;
        GstSample *sample;

        probe = gst_parse_launch (desc, NULL);
        g_free (desc);
        if (probe == NULL) {
          g_printerr ("lens-rtsp-server: cannot probe %s's size\n", file);
          return 1;
        }
        fakesink = gst_bin_get_by_name (GST_BIN (probe), "sink");
        gst_element_set_state (probe, GST_STATE_PAUSED);
        gst_element_get_state (probe, NULL, NULL, 10 * GST_SECOND);
        g_object_get (fakesink, "last-sample", &sample, NULL);
        gst_object_unref (fakesink);
        if (sample != NULL) {
          GstStructure *s = gst_caps_get_structure (gst_sample_get_caps
              (sample), 0);
          gst_structure_get_int (s, "width", &w);
          gst_structure_get_int (s, "height", &h);
          gst_sample_unref (sample);
        }
        gst_element_set_state (probe, GST_STATE_NULL);
        gst_object_unref (probe);
      }
      server.change_width = MAX (16, (w / 2) & ~1);
      server.change_height = MAX (16, (h / 2) & ~1);
    }
    g_timeout_add ((guint) (change_size_after * 1000), on_change_size,
        &server);
  }

  rtsp = gst_rtsp_server_new ();
  gst_rtsp_server_set_address (rtsp, "127.0.0.1");
  {
    gchar *service = g_strdup_printf ("%d", port);
    gst_rtsp_server_set_service (rtsp, service);
    g_free (service);
  }
  server.factory = gst_rtsp_media_factory_new ();
  launch = g_strdup ("( appsrc name=src is-live=true format=time "
      "do-timestamp=true max-bytes=8000000 leaky-type=downstream ! "
      "queue max-size-buffers=2 leaky=downstream ! videoconvert ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 "
      "threads=1 ! video/x-h264,profile=constrained-baseline ! "
      "rtph264pay name=pay0 pt=96 config-interval=-1 )");
  gst_rtsp_media_factory_set_launch (server.factory, launch);
  g_free (launch);
  /* one encoder for every client, as a camera has */
  gst_rtsp_media_factory_set_shared (server.factory, TRUE);
  g_signal_connect (server.factory, "media-configure",
      G_CALLBACK (on_media_configure), &server);
  mounts = gst_rtsp_server_get_mount_points (rtsp);
  gst_rtsp_mount_points_add_factory (mounts, mount,
      g_object_ref (server.factory));
  g_object_unref (mounts);

  if (gst_rtsp_server_attach (rtsp, NULL) == 0) {
    g_printerr ("lens-rtsp-server: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  if (gst_element_set_state (server.producer, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_printerr ("lens-rtsp-server: cannot play %s\n", file);
    return 1;
  }

  g_unix_signal_add (SIGTERM, on_quit_signal, &server);
  g_unix_signal_add (SIGINT, on_quit_signal, &server);

  g_print ("rtsp://127.0.0.1:%d%s\n", gst_rtsp_server_get_bound_port (rtsp),
      mount);
  fflush (stdout);

  g_main_loop_run (server.loop);

  /* the streaming thread has stopped: frames_sent is ours to read */
  gst_element_set_state (server.producer, GST_STATE_NULL);
  g_printerr ("lens-rtsp-server: %" G_GUINT64_FORMAT " frames sent\n",
      server.frames_sent);
  g_source_remove (bus_watch);
  g_mutex_lock (&server.lock);
  g_clear_object (&server.appsrc);
  g_mutex_unlock (&server.lock);
  gst_object_unref (server.producer);
  g_object_unref (server.factory);
  g_object_unref (rtsp);
  g_main_loop_unref (server.loop);
  g_mutex_clear (&server.lock);
  g_free (file);
  g_free (mount);
  g_free (change_size);
  return server.exit_code;
}
