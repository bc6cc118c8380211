/* lensd-stream.c: LensdStream, one camera or file and its supervisor.
 *
 * Each stream runs its own pipeline
 *   source ! decode ! videoconvert ! capsfilter ! lensdetect ! appsink
 * where the source is uridecodebin for a uri (rtspsrc inside for
 * rtsp://, configured through source-setup: jitterbuffer latency, UDP
 * with TCP fallback, a connect timeout) or the configured gst-launch
 * description followed by decodebin. The appsink callback (streaming
 * thread) turns every buffer that carries a new lensdetect result into a
 * LensdFrame, publishes it as the latest and tells the listeners.
 *
 * The supervisor lives on the daemon's GMainContext: the pipeline's bus
 * watch, a one-second tick (stall detection, fps window, backoff reset)
 * and the backoff timer. Errors that retrying cannot fix (no source for
 * the uri scheme, a local file that is not there, a missing decoder, a
 * pipeline description that does not parse) end in FAILED; everything
 * else (a camera that is down, a dropped connection, a stall) reconnects
 * with jittered exponential backoff from 1 s to 30 s.
 *
 * Locks: ctl_lock serialises the pipeline's life (start, stop and the
 * supervisor's callbacks); lock guards what the streaming thread and
 * readers share (state, counters, the latest frame); listeners_lock
 * (recursive) is held while listeners run, so that once
 * lensd_stream_remove_listener returns that listener is never called
 * again. Listeners run with neither ctl_lock nor lock held.
 */
#include "lensd.h"

#include <math.h>
#include <string.h>

#include <gst/app/gstappsink.h>

const gdouble lensd_latency_bucket_ms[LENSD_LATENCY_BUCKETS] = {
  5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, G_MAXDOUBLE
};

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define BACKOFF_GROWTH 1.5
/* streaming this long without trouble starts the backoff over */
#define STABLE_AFTER_US (30 * G_USEC_PER_SEC)
/* how long stop waits for a pipeline to reach NULL; rtspsrc can take far
 * longer on a host that is gone, and is then left to finish alone */
#define TEARDOWN_WAIT_US (1500 * G_TIME_SPAN_MILLISECOND)
/* rtspsrc: how long a TCP connection attempt may take */
#define RTSP_TCP_TIMEOUT_US (5 * G_USEC_PER_SEC)
/* the fps window: one sample per tick */
#define FPS_SAMPLES 6

#define LENSDETECT_FORMATS \
    "video/x-raw, format=(string){ I420, NV12, RGB, BGR, RGBx, BGRx, " \
    "xRGB, xBGR }"

typedef struct
{
  guint id;
  LensdStreamListener func;
  gpointer user_data;
} LensdListener;

typedef struct
{
  gint64 time_us;
  guint64 frames_in;
  guint64 inferred;
} LensdFpsSample;

/* Counters of lensdetect's stats property. */
typedef struct
{
  guint64 frames_in, inferred, failed, dropped_busy, dropped_interval;
} LensdDetectCounters;

/* What a pipeline's callbacks know of their stream: a reference and the
 * incarnation they belong to, so a pipeline being torn down can no longer
 * publish or steer. */
typedef struct
{
  LensdStream *stream;
  guint generation;
} LensdPipelineRef;

struct _LensdStream
{
  gint ref_count;
  LensdStreamConfig *config;
  LensdEngine *engine;
  GMainContext *context;
  gboolean network;             /* rtsp(s) or http(s): EOS means reconnect */

  GMutex ctl_lock;
  /* under ctl_lock */
  gboolean running;             /* between start and stop (or the end) */
  gboolean removed;
  GstElement *pipeline;
  GSource *bus_source;
  GSource *tick_source;
  GSource *retry_source;
  guint attempt;                /* failures since the last stable run */
  guint64 buffers_at_seek;      /* buffers seen when we last looped */

  GMutex lock;
  /* under lock */
  LensdStreamState state;
  gint64 state_since_us;
  guint pending_state_events;
  gchar *last_error;
  guint generation;
  LensdFrame *latest;
  guint64 seq;
  guint64 buffers;              /* that reached the appsink, all pipelines */
  gint64 started_us;            /* monotonic: the pipeline was built */
  gint64 last_buffer_us;        /* monotonic */
  gint64 streaming_since_us;    /* monotonic */
  GstElement *detect;           /* the current pipeline's lensdetect */
  LensdDetectCounters base;     /* counters of earlier pipelines */
  guint64 reconnects;
  guint64 latency_count;
  gdouble latency_sum_ms;
  guint64 latency_buckets[LENSD_LATENCY_BUCKETS];
  LensdFpsSample samples[FPS_SAMPLES];
  guint n_samples;
  gdouble fps_in, fps_out;

  GRecMutex listeners_lock;
  GArray *listeners;            /* LensdListener */
  guint next_listener_id;
};

static void lensd_stream_teardown (LensdStream *stream, gboolean wait);
static void lensd_stream_schedule_retry (LensdStream *stream,
    const gchar *reason);
static void lensd_stream_fail (LensdStream *stream, const gchar *reason);
static gboolean lensd_stream_build (LensdStream *stream, GError **error);

const gchar *
lensd_stream_state_name (LensdStreamState state)
{
  switch (state) {
    case LENSD_STREAM_CONNECTING:
      return "connecting";
    case LENSD_STREAM_STREAMING:
      return "streaming";
    case LENSD_STREAM_BACKOFF:
      return "backoff";
    case LENSD_STREAM_FAILED:
      return "failed";
    case LENSD_STREAM_STOPPED:
      return "stopped";
  }
  return "unknown";
}

/* ---- listeners ------------------------------------------------------------ */

static void
lensd_stream_dispatch (LensdStream *stream, LensdStreamEvent event,
    LensdFrame *frame)
{
  g_rec_mutex_lock (&stream->listeners_lock);
  /* by index: a listener may remove itself (or another) meanwhile */
  for (guint i = 0; i < stream->listeners->len; i++) {
    LensdListener *l = &g_array_index (stream->listeners, LensdListener, i);
    guint id = l->id;

    l->func (stream, event, frame, l->user_data);
    if (i < stream->listeners->len
        && g_array_index (stream->listeners, LensdListener, i).id != id)
      i--;
  }
  g_rec_mutex_unlock (&stream->listeners_lock);
}

/* Sends the STATE events recorded under lock; called with no lock held. */
static void
lensd_stream_flush_events (LensdStream *stream)
{
  guint n;

  g_mutex_lock (&stream->lock);
  n = stream->pending_state_events;
  stream->pending_state_events = 0;
  g_mutex_unlock (&stream->lock);
  for (guint i = 0; i < n; i++)
    lensd_stream_dispatch (stream, LENSD_STREAM_EVENT_STATE, NULL);
}

guint
lensd_stream_add_listener (LensdStream *stream, LensdStreamListener listener,
    gpointer user_data)
{
  LensdListener l;

  g_return_val_if_fail (stream != NULL && listener != NULL, 0);

  g_rec_mutex_lock (&stream->listeners_lock);
  l.id = ++stream->next_listener_id;
  l.func = listener;
  l.user_data = user_data;
  g_array_append_val (stream->listeners, l);
  g_rec_mutex_unlock (&stream->listeners_lock);
  return l.id;
}

/* Waits for a dispatch in progress on another thread: do not call it
 * holding a lock the listener takes. */
void
lensd_stream_remove_listener (LensdStream *stream, guint id)
{
  g_return_if_fail (stream != NULL);

  g_rec_mutex_lock (&stream->listeners_lock);
  for (guint i = 0; i < stream->listeners->len; i++)
    if (g_array_index (stream->listeners, LensdListener, i).id == id) {
      g_array_remove_index (stream->listeners, i);
      break;
    }
  g_rec_mutex_unlock (&stream->listeners_lock);
}

/* ---- state ----------------------------------------------------------------- */

/* Under lock. */
static void
lensd_stream_set_state_locked (LensdStream *stream, LensdStreamState state)
{
  if (stream->state == state)
    return;
  g_message ("stream %s: %s -> %s%s%s", stream->config->name,
      lensd_stream_state_name (stream->state),
      lensd_stream_state_name (state),
      state == LENSD_STREAM_STREAMING || stream->last_error == NULL ? "" :
      ": ", state == LENSD_STREAM_STREAMING || stream->last_error == NULL ?
      "" : stream->last_error);
  stream->state = state;
  stream->state_since_us = g_get_real_time ();
  stream->pending_state_events++;
}

static void
lensd_stream_set_state (LensdStream *stream, LensdStreamState state,
    const gchar *error)
{
  g_mutex_lock (&stream->lock);
  if (error != NULL) {
    g_free (stream->last_error);
    stream->last_error = g_strdup (error);
  }
  lensd_stream_set_state_locked (stream, state);
  g_mutex_unlock (&stream->lock);
}

/* ---- the appsink: frames in ------------------------------------------------ */

static void
lensd_stream_record_latency_locked (LensdStream *stream, gdouble ms)
{
  stream->latency_count++;
  stream->latency_sum_ms += ms;
  for (guint i = 0; i < LENSD_LATENCY_BUCKETS; i++)
    if (ms <= lensd_latency_bucket_ms[i])
      stream->latency_buckets[i]++;
}

/* Streaming thread: must be quick. */
static GstFlowReturn
lensd_stream_on_new_sample (GstAppSink *appsink, gpointer user_data)
{
  LensdPipelineRef *ref = user_data;
  LensdStream *stream = ref->stream;
  GstSample *sample = gst_app_sink_pull_sample (appsink);
  GstBuffer *buffer;
  GstCaps *caps;
  GstVideoInfo info;
  LensdFrame *frame = NULL, *old = NULL;
  gboolean has_result;
  guint64 seq = 0;

  if (sample == NULL)
    return GST_FLOW_OK;
  buffer = gst_sample_get_buffer (sample);
  caps = gst_sample_get_caps (sample);
  has_result = buffer != NULL
      && gst_buffer_get_lens_feature_map_meta (buffer) != NULL;

  g_mutex_lock (&stream->lock);
  if (ref->generation != stream->generation) {
    g_mutex_unlock (&stream->lock);
    gst_sample_unref (sample);
    return GST_FLOW_OK;
  }
  stream->buffers++;
  stream->last_buffer_us = g_get_monotonic_time ();
  if (stream->state == LENSD_STREAM_CONNECTING) {
    stream->streaming_since_us = stream->last_buffer_us;
    lensd_stream_set_state_locked (stream, LENSD_STREAM_STREAMING);
  }
  if (has_result)
    seq = ++stream->seq;
  g_mutex_unlock (&stream->lock);

  if (has_result && caps != NULL && gst_video_info_from_caps (&info, caps))
    frame = lensd_frame_new_from_buffer (stream->config->name, seq, buffer,
        &info);
  gst_sample_unref (sample);

  if (frame != NULL) {
    g_mutex_lock (&stream->lock);
    if (ref->generation == stream->generation) {
      old = stream->latest;
      stream->latest = lensd_frame_ref (frame);
      lensd_stream_record_latency_locked (stream, frame->inference_ms);
    }
    g_mutex_unlock (&stream->lock);
    if (old != NULL)
      lensd_frame_unref (old);
  }

  lensd_stream_flush_events (stream);
  if (frame != NULL) {
    lensd_stream_dispatch (stream, LENSD_STREAM_EVENT_FRAME, frame);
    lensd_frame_unref (frame);
  }
  return GST_FLOW_OK;
}

/* ---- building the pipeline -------------------------------------------------- */

static gboolean
lensd_caps_is_raw_video (GstCaps *caps)
{
  const GstStructure *s;

  if (caps == NULL || gst_caps_is_empty (caps) || gst_caps_is_any (caps))
    return FALSE;
  s = gst_caps_get_structure (caps, 0);
  return gst_structure_has_name (s, "video/x-raw");
}

/* Decoded pads of the source: the first raw video one feeds the detector;
 * any other (audio left undecoded, a second video) ends in a fakesink so
 * that nothing upstream fails as not linked. */
static void
lensd_stream_on_pad_added (GstElement *decoder, GstPad *pad,
    gpointer user_data)
{
  GstElement *convert = user_data;
  GstPad *sinkpad = gst_element_get_static_pad (convert, "sink");
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstObject *parent;

  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  if (lensd_caps_is_raw_video (caps) && !gst_pad_is_linked (sinkpad)
      && GST_PAD_LINK_SUCCESSFUL (gst_pad_link (pad, sinkpad)))
    goto done;

  parent = gst_element_get_parent (convert);
  if (parent != NULL) {
    GstElement *sink = gst_element_factory_make ("fakesink", NULL);

    if (sink != NULL) {
      GstPad *fpad;

      g_object_set (sink, "sync", FALSE, "async", FALSE, NULL);
      gst_bin_add (GST_BIN (parent), sink);
      fpad = gst_element_get_static_pad (sink, "sink");
      gst_pad_link (pad, fpad);
      gst_object_unref (fpad);
      gst_element_sync_state_with_parent (sink);
    }
    gst_object_unref (parent);
  }

done:
  if (caps != NULL)
    gst_caps_unref (caps);
  gst_object_unref (sinkpad);
}

/* Audio, subtitles and the like are not decoded: nobody looks at them. */
static gboolean
lensd_stream_on_autoplug_continue (GstElement *bin, GstPad *pad,
    GstCaps *caps, gpointer user_data)
{
  const gchar *name;

  if (caps == NULL || gst_caps_is_empty (caps) || gst_caps_is_any (caps))
    return TRUE;
  name = gst_structure_get_name (gst_caps_get_structure (caps, 0));
  return !(g_str_has_prefix (name, "audio/") || g_str_has_prefix (name,
          "text/") || g_str_has_prefix (name, "subpicture/")
      || g_str_has_prefix (name, "closedcaption/"));
}

static void
lensd_set_if_present (GObject *object, const gchar *property,
    const GValue *value)
{
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (object),
          property) != NULL)
    g_object_set_property (object, property, value);
}

/* uridecodebin made its source: configure rtspsrc. */
static void
lensd_stream_on_source_setup (GstElement *bin, GstElement *source,
    gpointer user_data)
{
  LensdStream *stream = user_data;
  GObject *object = G_OBJECT (source);
  GValue v = G_VALUE_INIT;

  if (g_object_class_find_property (G_OBJECT_GET_CLASS (object),
          "tcp-timeout") == NULL)
    return;
  /* rtspsrc: UDP first, TCP when no UDP arrives (its default protocols);
   * a connect that hangs gives up and lets the supervisor retry */
  g_value_init (&v, G_TYPE_UINT);
  g_value_set_uint (&v, stream->config->latency_ms);
  lensd_set_if_present (object, "latency", &v);
  g_value_unset (&v);
  g_value_init (&v, G_TYPE_UINT64);
  g_value_set_uint64 (&v, RTSP_TCP_TIMEOUT_US);
  lensd_set_if_present (object, "tcp-timeout", &v);
  g_value_unset (&v);
  /* late packets are dropped, not waited for: latency stays bounded */
  g_value_init (&v, G_TYPE_BOOLEAN);
  g_value_set_boolean (&v, TRUE);
  lensd_set_if_present (object, "drop-on-latency", &v);
  g_value_unset (&v);
}

static gboolean lensd_stream_on_bus_message (GstBus *bus, GstMessage *msg,
    gpointer user_data);

static LensdPipelineRef *
lensd_pipeline_ref_new (LensdStream *stream, guint generation)
{
  LensdPipelineRef *ref = g_new0 (LensdPipelineRef, 1);

  ref->stream = lensd_stream_ref (stream);
  ref->generation = generation;
  return ref;
}

static void
lensd_pipeline_ref_free (gpointer data)
{
  LensdPipelineRef *ref = data;

  lensd_stream_unref (ref->stream);
  g_free (ref);
}

/* Under ctl_lock: makes and starts the pipeline. An error means retrying
 * cannot help (the configuration is wrong or a plugin is missing). */
static gboolean
lensd_stream_build (LensdStream *stream, GError **error)
{
  const LensdStreamConfig *config = stream->config;
  GstElement *pipeline, *source, *decoder = NULL, *convert, *filter, *detect,
      *sink;
  GstAppSinkCallbacks callbacks = { NULL };
  GstCaps *caps;
  GstBus *bus;
  guint generation;
  GError *gerr = NULL;

  g_assert (stream->pipeline == NULL);

  if (config->uri != NULL) {
    gchar *scheme = g_uri_parse_scheme (config->uri);

    if (scheme == NULL || !gst_uri_protocol_is_supported (GST_URI_SRC,
            scheme)) {
      g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
          "no GStreamer source for the uri %s (scheme %s)", config->uri,
          scheme != NULL ? scheme : "missing");
      g_free (scheme);
      return FALSE;
    }
    g_free (scheme);
    source = gst_element_factory_make ("uridecodebin", "source");
    if (source == NULL)
      goto missing_element;
    g_object_set (source, "uri", config->uri, NULL);
  } else {
    /* a tail of ours gives the bin one always src pad to ghost, whether
     * the description ends in caps or in an element with sometimes pads
     * (rtspsrc, a demuxer) */
    gchar *desc = g_strdup_printf ("%s ! identity name=lensd-tail silent=true",
        config->pipeline);

    source = gst_parse_bin_from_description_full (desc, TRUE, NULL,
        GST_PARSE_FLAG_FATAL_ERRORS, &gerr);
    g_free (desc);
    if (source == NULL) {
      g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
          "pipeline \"%s\": %s", config->pipeline, gerr->message);
      g_clear_error (&gerr);
      return FALSE;
    }
    gst_object_set_name (GST_OBJECT (source), "source");
    decoder = gst_element_factory_make ("decodebin", "decode");
    if (decoder == NULL) {
      gst_object_unref (gst_object_ref_sink (source));
      goto missing_element;
    }
  }

  convert = gst_element_factory_make ("videoconvert", "convert");
  filter = gst_element_factory_make ("capsfilter", "formats");
  detect = lensd_engine_make_detector (stream->engine, config->interval);
  sink = gst_element_factory_make ("appsink", "results");
  if (convert == NULL || filter == NULL || detect == NULL || sink == NULL) {
    GstElement *parts[] = { source, decoder, convert, filter, detect, sink };

    for (guint i = 0; i < G_N_ELEMENTS (parts); i++)
      if (parts[i] != NULL)
        gst_object_unref (gst_object_ref_sink (parts[i]));
    goto missing_element;
  }
  gst_object_set_name (GST_OBJECT (detect), "detect");

  pipeline = gst_pipeline_new (config->name);
  gst_bin_add_many (GST_BIN (pipeline), source, convert, filter, detect, sink,
      NULL);
  if (decoder != NULL) {
    gst_bin_add (GST_BIN (pipeline), decoder);
    gst_element_link (source, decoder);
  } else {
    decoder = source;
    g_signal_connect (source, "source-setup",
        G_CALLBACK (lensd_stream_on_source_setup), stream);
  }
  g_signal_connect (decoder, "autoplug-continue",
      G_CALLBACK (lensd_stream_on_autoplug_continue), NULL);
  g_signal_connect (decoder, "pad-added",
      G_CALLBACK (lensd_stream_on_pad_added), convert);

  caps = gst_caps_from_string (LENSDETECT_FORMATS);
  g_object_set (filter, "caps", caps, NULL);
  gst_caps_unref (caps);
  gst_element_link_many (convert, filter, detect, sink, NULL);

  /* a camera's frames are shown as they come; a file or a test source is
   * played at its own rate, as a camera would deliver it, not as fast as
   * it decodes */
  g_object_set (sink, "sync", !stream->network,
      "max-buffers", 1, "drop", TRUE, "enable-last-sample", FALSE, NULL);

  g_mutex_lock (&stream->lock);
  generation = stream->generation;
  stream->detect = gst_object_ref (detect);
  stream->started_us = g_get_monotonic_time ();
  g_mutex_unlock (&stream->lock);

  callbacks.new_sample = lensd_stream_on_new_sample;
  gst_app_sink_set_callbacks (GST_APP_SINK (sink), &callbacks,
      lensd_pipeline_ref_new (stream, generation), lensd_pipeline_ref_free);

  bus = gst_pipeline_get_bus (GST_PIPELINE (pipeline));
  stream->bus_source = gst_bus_create_watch (bus);
  g_source_set_callback (stream->bus_source,
      (GSourceFunc) G_CALLBACK (lensd_stream_on_bus_message),
      lensd_pipeline_ref_new (stream, generation), lensd_pipeline_ref_free);
  g_source_attach (stream->bus_source, stream->context);
  gst_object_unref (bus);

  stream->pipeline = pipeline;
  /* a failure here comes to the bus as an error message */
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  return TRUE;

missing_element:
  g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
      "a GStreamer element is missing (uridecodebin, decodebin, "
      "videoconvert, capsfilter, appsink or lensdetect)");
  return FALSE;
}

/* ---- tearing down -------------------------------------------------------- */

typedef struct
{
  gint refs;
  GstElement *pipeline;
  GMutex lock;
  GCond cond;
  gboolean done;
} LensdTeardown;

static void
lensd_teardown_unref (LensdTeardown *t)
{
  if (!g_atomic_int_dec_and_test (&t->refs))
    return;
  g_mutex_clear (&t->lock);
  g_cond_clear (&t->cond);
  g_free (t);
}

static gpointer
lensd_teardown_thread (gpointer data)
{
  LensdTeardown *t = data;

  gst_element_set_state (t->pipeline, GST_STATE_NULL);
  gst_object_unref (t->pipeline);
  g_mutex_lock (&t->lock);
  t->done = TRUE;
  g_cond_signal (&t->cond);
  g_mutex_unlock (&t->lock);
  lensd_teardown_unref (t);
  return NULL;
}

static void
lensd_stream_take_counters (LensdDetectCounters *c, GstElement *detect)
{
  GstStructure *s = NULL;

  memset (c, 0, sizeof *c);
  if (detect == NULL)
    return;
  g_object_get (detect, "stats", &s, NULL);
  if (s == NULL)
    return;
  gst_structure_get_uint64 (s, "frames-in", &c->frames_in);
  gst_structure_get_uint64 (s, "inferred", &c->inferred);
  gst_structure_get_uint64 (s, "failed", &c->failed);
  gst_structure_get_uint64 (s, "dropped-busy", &c->dropped_busy);
  gst_structure_get_uint64 (s, "dropped-interval", &c->dropped_interval);
  gst_structure_free (s);
}

/* Under ctl_lock: the pipeline stops publishing at once and goes to NULL
 * on a thread of its own (an element stuck on a dead host never blocks
 * the main context); @wait: for at most TEARDOWN_WAIT_US. */
static void
lensd_stream_teardown (LensdStream *stream, gboolean wait)
{
  LensdDetectCounters c;
  LensdTeardown *t;
  GstElement *detect;
  GThread *thread;

  if (stream->bus_source != NULL) {
    g_source_destroy (stream->bus_source);
    g_source_unref (stream->bus_source);
    stream->bus_source = NULL;
  }
  if (stream->pipeline == NULL)
    return;

  g_mutex_lock (&stream->lock);
  stream->generation++;
  detect = stream->detect;
  stream->detect = NULL;
  g_mutex_unlock (&stream->lock);
  /* the counters start over with the next lensdetect: keep the totals */
  lensd_stream_take_counters (&c, detect);
  g_mutex_lock (&stream->lock);
  stream->base.frames_in += c.frames_in;
  stream->base.inferred += c.inferred;
  stream->base.failed += c.failed;
  stream->base.dropped_busy += c.dropped_busy;
  stream->base.dropped_interval += c.dropped_interval;
  g_mutex_unlock (&stream->lock);
  gst_clear_object (&detect);

  t = g_new0 (LensdTeardown, 1);
  t->refs = 2;
  t->pipeline = stream->pipeline;
  stream->pipeline = NULL;
  g_mutex_init (&t->lock);
  g_cond_init (&t->cond);
  thread = g_thread_new ("lensd-teardown", lensd_teardown_thread, t);
  g_thread_unref (thread);
  if (wait) {
    gint64 end = g_get_monotonic_time () + TEARDOWN_WAIT_US;

    g_mutex_lock (&t->lock);
    while (!t->done)
      if (!g_cond_wait_until (&t->cond, &t->lock, end))
        break;
    if (!t->done)
      g_warning ("stream %s: the pipeline did not stop within %d ms; "
          "left to finish on its own", stream->config->name,
          (gint) (TEARDOWN_WAIT_US / 1000));
    g_mutex_unlock (&t->lock);
  }
  lensd_teardown_unref (t);
}

/* ---- the supervisor -------------------------------------------------------- */

static gboolean
lensd_stream_source_is_current (void)
{
  GSource *source = g_main_current_source ();

  return source == NULL || !g_source_is_destroyed (source);
}

/* Under ctl_lock: a new pipeline now, or FAILED. */
static void
lensd_stream_connect (LensdStream *stream)
{
  GError *error = NULL;

  lensd_stream_set_state (stream, LENSD_STREAM_CONNECTING, NULL);
  if (!lensd_stream_build (stream, &error)) {
    lensd_stream_fail (stream, error->message);
    g_error_free (error);
  }
}

static gboolean
lensd_stream_on_retry (gpointer user_data)
{
  LensdStream *stream = user_data;

  g_mutex_lock (&stream->ctl_lock);
  if (lensd_stream_source_is_current () && stream->running
      && stream->pipeline == NULL) {
    g_clear_pointer (&stream->retry_source, g_source_unref);
    g_mutex_lock (&stream->lock);
    stream->reconnects++;
    g_mutex_unlock (&stream->lock);
    lensd_stream_connect (stream);
  }
  g_mutex_unlock (&stream->ctl_lock);
  lensd_stream_flush_events (stream);
  return G_SOURCE_REMOVE;
}

/* The delay before attempt @attempt (0-based): 1 s growing by half each
 * time to 30 s (a camera back after a few seconds is found again within
 * a few seconds), each drawn from [0.75, 1.25] of that so that streams
 * that broke together do not come back together. */
static guint
lensd_backoff_ms (guint attempt)
{
  gdouble base = BACKOFF_MIN_MS * pow (BACKOFF_GROWTH, MIN (attempt, 16u));
  gdouble ms = base * g_random_double_range (0.75, 1.25);

  return (guint) CLAMP (ms, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
}

/* Under ctl_lock: the pipeline goes, BACKOFF, a new one after the delay. */
static void
lensd_stream_schedule_retry (LensdStream *stream, const gchar *reason)
{
  guint delay;

  lensd_stream_teardown (stream, FALSE);
  g_mutex_lock (&stream->lock);
  /* a run that streamed long enough was not part of a failing streak */
  if (stream->state == LENSD_STREAM_STREAMING
      && g_get_monotonic_time () - stream->streaming_since_us >=
      STABLE_AFTER_US)
    stream->attempt = 0;
  g_mutex_unlock (&stream->lock);
  delay = lensd_backoff_ms (stream->attempt);
  stream->attempt++;
  lensd_stream_set_state (stream, LENSD_STREAM_BACKOFF, reason);
  g_message ("stream %s: retrying in %.1f s", stream->config->name,
      delay / 1000.0);

  if (stream->retry_source != NULL) {
    g_source_destroy (stream->retry_source);
    g_source_unref (stream->retry_source);
  }
  stream->retry_source = g_timeout_source_new (delay);
  g_source_set_callback (stream->retry_source, lensd_stream_on_retry,
      lensd_stream_ref (stream), (GDestroyNotify) lensd_stream_unref);
  g_source_attach (stream->retry_source, stream->context);
}

/* Under ctl_lock: no more supervision until started again. */
static void
lensd_stream_halt (LensdStream *stream)
{
  stream->running = FALSE;
  for (guint i = 0; i < 2; i++) {
    GSource **source = i == 0 ? &stream->tick_source : &stream->retry_source;

    if (*source != NULL) {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
  }
}

/* Under ctl_lock: gives up until started again. */
static void
lensd_stream_fail (LensdStream *stream, const gchar *reason)
{
  lensd_stream_halt (stream);
  lensd_stream_teardown (stream, FALSE);
  lensd_stream_set_state (stream, LENSD_STREAM_FAILED, reason);
}

/* Whether retrying cannot fix @error: a missing plugin or decoder, and,
 * for a local file, a file that is not there or not a video. A network
 * source always retries: the camera may come back. */
static gboolean
lensd_stream_error_is_permanent (LensdStream *stream, const GError *error)
{
  gboolean local_file = stream->config->uri != NULL
      && g_str_has_prefix (stream->config->uri, "file:");

  if (error->domain == GST_CORE_ERROR)
    return error->code == GST_CORE_ERROR_MISSING_PLUGIN;
  if (error->domain == GST_STREAM_ERROR)
    return error->code == GST_STREAM_ERROR_CODEC_NOT_FOUND
        || (local_file && (error->code == GST_STREAM_ERROR_TYPE_NOT_FOUND
            || error->code == GST_STREAM_ERROR_WRONG_TYPE));
  if (error->domain == GST_RESOURCE_ERROR)
    return local_file && (error->code == GST_RESOURCE_ERROR_NOT_FOUND
        || error->code == GST_RESOURCE_ERROR_OPEN_READ);
  return FALSE;
}

/* "element: message (detail)", detail being the debug string's reason
 * without its source location. */
static gchar *
lensd_describe_error (GstMessage *msg, GError *error, const gchar *debug)
{
  gchar *name = GST_MESSAGE_SRC (msg) != NULL ?
      gst_object_get_name (GST_MESSAGE_SRC (msg)) : g_strdup ("pipeline");
  const gchar *detail = NULL;
  gchar *text;

  if (debug != NULL) {
    const gchar *nl = strrchr (debug, '\n');

    detail = nl != NULL ? nl + 1 : debug;
    if (*detail == '\0' || strstr (error->message, detail) != NULL)
      detail = NULL;
  }
  if (detail != NULL)
    text = g_strdup_printf ("%s: %s (%.200s)", name, error->message, detail);
  else
    text = g_strdup_printf ("%s: %s", name, error->message);
  g_free (name);
  return text;
}

/* Under ctl_lock. */
static void
lensd_stream_on_eos (LensdStream *stream)
{
  guint64 buffers;

  g_mutex_lock (&stream->lock);
  buffers = stream->buffers;
  g_mutex_unlock (&stream->lock);

  if (stream->config->loop) {
    /* back to the start; a source that cannot seek (or ends at once
     * again) is made anew */
    if (buffers != stream->buffers_at_seek
        && gst_element_seek_simple (stream->pipeline, GST_FORMAT_TIME,
            GST_SEEK_FLAG_FLUSH, 0)) {
      stream->buffers_at_seek = buffers;
      return;
    }
    stream->buffers_at_seek = buffers;
    lensd_stream_teardown (stream, FALSE);
    lensd_stream_connect (stream);
    return;
  }
  if (stream->network) {
    lensd_stream_schedule_retry (stream, "end of stream from the server");
    return;
  }
  /* a file that ended: the last frame stays */
  lensd_stream_halt (stream);
  lensd_stream_teardown (stream, FALSE);
  lensd_stream_set_state (stream, LENSD_STREAM_STOPPED, "end of stream");
}

static gboolean
lensd_stream_on_bus_message (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  LensdPipelineRef *ref = user_data;
  LensdStream *stream = ref->stream;

  g_mutex_lock (&stream->ctl_lock);
  if (!lensd_stream_source_is_current () || stream->pipeline == NULL) {
    g_mutex_unlock (&stream->ctl_lock);
    return G_SOURCE_REMOVE;
  }

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:{
      GError *error = NULL;
      gchar *debug = NULL, *text;

      gst_message_parse_error (msg, &error, &debug);
      text = lensd_describe_error (msg, error, debug);
      g_debug ("stream %s: %s", stream->config->name, debug);
      if (lensd_stream_error_is_permanent (stream, error))
        lensd_stream_fail (stream, text);
      else
        lensd_stream_schedule_retry (stream, text);
      g_free (text);
      g_free (debug);
      g_error_free (error);
      break;
    }
    case GST_MESSAGE_WARNING:{
      GError *error = NULL;
      gchar *debug = NULL;

      gst_message_parse_warning (msg, &error, &debug);
      g_debug ("stream %s: warning from %s: %s (%s)", stream->config->name,
          GST_MESSAGE_SRC_NAME (msg), error->message, debug);
      g_free (debug);
      g_error_free (error);
      break;
    }
    case GST_MESSAGE_EOS:
      lensd_stream_on_eos (stream);
      break;
    case GST_MESSAGE_LATENCY:
      gst_bin_recalculate_latency (GST_BIN (stream->pipeline));
      break;
    case GST_MESSAGE_CLOCK_LOST:
      /* a new clock is chosen going through PAUSED */
      gst_element_set_state (stream->pipeline, GST_STATE_PAUSED);
      gst_element_set_state (stream->pipeline, GST_STATE_PLAYING);
      break;
    default:
      break;
  }
  g_mutex_unlock (&stream->ctl_lock);
  lensd_stream_flush_events (stream);
  return G_SOURCE_CONTINUE;
}

/* Under lock: fps over the samples' window. */
static void
lensd_stream_add_sample_locked (LensdStream *stream, gint64 now,
    guint64 frames_in, guint64 inferred)
{
  LensdFpsSample *oldest;
  gdouble dt;

  if (stream->n_samples == FPS_SAMPLES) {
    memmove (&stream->samples[0], &stream->samples[1],
        (FPS_SAMPLES - 1) * sizeof (LensdFpsSample));
    stream->n_samples--;
  }
  stream->samples[stream->n_samples].time_us = now;
  stream->samples[stream->n_samples].frames_in = frames_in;
  stream->samples[stream->n_samples].inferred = inferred;
  stream->n_samples++;

  oldest = &stream->samples[0];
  dt = (now - oldest->time_us) / (gdouble) G_USEC_PER_SEC;
  if (stream->n_samples < 2 || dt <= 0) {
    stream->fps_in = stream->fps_out = 0;
    return;
  }
  stream->fps_in = (frames_in - oldest->frames_in) / dt;
  stream->fps_out = (inferred - oldest->inferred) / dt;
}

/* Every second: the fps window, stall detection. */
static gboolean
lensd_stream_on_tick (gpointer user_data)
{
  LensdStream *stream = user_data;
  LensdDetectCounters c;
  GstElement *detect;
  gint64 now = g_get_monotonic_time (), idle_since;
  LensdStreamState state;
  guint stall_s = stream->config->stall_timeout_s;

  g_mutex_lock (&stream->ctl_lock);
  if (!lensd_stream_source_is_current ()) {
    g_mutex_unlock (&stream->ctl_lock);
    return G_SOURCE_REMOVE;
  }

  g_mutex_lock (&stream->lock);
  detect = stream->detect != NULL ? gst_object_ref (stream->detect) : NULL;
  g_mutex_unlock (&stream->lock);
  lensd_stream_take_counters (&c, detect);
  gst_clear_object (&detect);

  g_mutex_lock (&stream->lock);
  lensd_stream_add_sample_locked (stream, now,
      stream->base.frames_in + c.frames_in,
      stream->base.inferred + c.inferred);
  state = stream->state;
  idle_since = MAX (stream->started_us, stream->last_buffer_us);
  g_mutex_unlock (&stream->lock);

  if (stream->pipeline != NULL && stall_s > 0
      && (state == LENSD_STREAM_CONNECTING
          || state == LENSD_STREAM_STREAMING)
      && now - idle_since >= (gint64) stall_s * G_USEC_PER_SEC) {
    gchar *reason = g_strdup_printf ("stalled: no frame for %u s%s", stall_s,
        state == LENSD_STREAM_CONNECTING ? " since connecting" : "");

    lensd_stream_schedule_retry (stream, reason);
    g_free (reason);
  }
  g_mutex_unlock (&stream->ctl_lock);
  lensd_stream_flush_events (stream);
  return G_SOURCE_CONTINUE;
}

/* ---- life cycle -------------------------------------------------------------- */

LensdStream *
lensd_stream_new (const LensdStreamConfig *config, LensdEngine *engine,
    GMainContext *context)
{
  LensdStream *stream;

  g_return_val_if_fail (config != NULL && config->name != NULL, NULL);
  g_return_val_if_fail (engine != NULL, NULL);

  stream = g_new0 (LensdStream, 1);
  stream->ref_count = 1;
  stream->config = lensd_stream_config_copy (config);
  if (stream->config->interval == 0)
    stream->config->interval = 1;
  stream->engine = engine;
  stream->context = context != NULL ? g_main_context_ref (context) :
      g_main_context_ref_thread_default ();
  stream->network = config->uri != NULL
      && (g_str_has_prefix (config->uri, "rtsp://")
      || g_str_has_prefix (config->uri, "rtsps://")
      || g_str_has_prefix (config->uri, "http://")
      || g_str_has_prefix (config->uri, "https://"));
  g_mutex_init (&stream->ctl_lock);
  g_mutex_init (&stream->lock);
  g_rec_mutex_init (&stream->listeners_lock);
  stream->listeners = g_array_new (FALSE, FALSE, sizeof (LensdListener));
  stream->state = LENSD_STREAM_STOPPED;
  stream->state_since_us = g_get_real_time ();
  return stream;
}

LensdStream *
lensd_stream_ref (LensdStream *stream)
{
  g_return_val_if_fail (stream != NULL, NULL);

  g_atomic_int_inc (&stream->ref_count);
  return stream;
}

void
lensd_stream_unref (LensdStream *stream)
{
  if (stream == NULL || !g_atomic_int_dec_and_test (&stream->ref_count))
    return;

  /* every pipeline and source holds a reference: none is left */
  g_assert (stream->pipeline == NULL);
  if (stream->latest != NULL)
    lensd_frame_unref (stream->latest);
  gst_clear_object (&stream->detect);
  g_free (stream->last_error);
  g_array_unref (stream->listeners);
  g_rec_mutex_clear (&stream->listeners_lock);
  g_mutex_clear (&stream->lock);
  g_mutex_clear (&stream->ctl_lock);
  g_main_context_unref (stream->context);
  lensd_stream_config_free (stream->config);
  g_free (stream);
}

void
lensd_stream_start (LensdStream *stream)
{
  g_return_if_fail (stream != NULL);

  g_mutex_lock (&stream->ctl_lock);
  if (stream->running || stream->removed) {
    g_mutex_unlock (&stream->ctl_lock);
    return;
  }
  stream->running = TRUE;
  stream->attempt = 0;
  g_mutex_lock (&stream->lock);
  g_clear_pointer (&stream->last_error, g_free);
  stream->n_samples = 0;
  g_mutex_unlock (&stream->lock);

  stream->tick_source = g_timeout_source_new_seconds (1);
  g_source_set_callback (stream->tick_source, lensd_stream_on_tick,
      lensd_stream_ref (stream), (GDestroyNotify) lensd_stream_unref);
  g_source_attach (stream->tick_source, stream->context);

  lensd_stream_connect (stream);
  g_mutex_unlock (&stream->ctl_lock);
  lensd_stream_flush_events (stream);
}

void
lensd_stream_stop (LensdStream *stream, gboolean removed)
{
  gboolean notify_removed;

  g_return_if_fail (stream != NULL);

  g_mutex_lock (&stream->ctl_lock);
  lensd_stream_halt (stream);
  lensd_stream_teardown (stream, TRUE);
  /* last_error stays: why it stopped before, if it did */
  lensd_stream_set_state (stream, LENSD_STREAM_STOPPED, NULL);
  notify_removed = removed && !stream->removed;
  if (removed)
    stream->removed = TRUE;
  g_mutex_unlock (&stream->ctl_lock);

  lensd_stream_flush_events (stream);
  if (notify_removed)
    lensd_stream_dispatch (stream, LENSD_STREAM_EVENT_REMOVED, NULL);
}

const gchar *
lensd_stream_get_name (LensdStream *stream)
{
  g_return_val_if_fail (stream != NULL, NULL);

  return stream->config->name;
}

const LensdStreamConfig *
lensd_stream_get_config (LensdStream *stream)
{
  g_return_val_if_fail (stream != NULL, NULL);

  return stream->config;
}

LensdStreamState
lensd_stream_get_state (LensdStream *stream)
{
  LensdStreamState state;

  g_return_val_if_fail (stream != NULL, LENSD_STREAM_STOPPED);

  g_mutex_lock (&stream->lock);
  state = stream->state;
  g_mutex_unlock (&stream->lock);
  return state;
}

void
lensd_stream_get_stats (LensdStream *stream, LensdStreamStats *stats)
{
  LensdDetectCounters c;
  GstElement *detect;

  g_return_if_fail (stream != NULL && stats != NULL);

  g_mutex_lock (&stream->lock);
  detect = stream->detect != NULL ? gst_object_ref (stream->detect) : NULL;
  g_mutex_unlock (&stream->lock);
  /* outside the lock: lensdetect takes its own */
  lensd_stream_take_counters (&c, detect);
  gst_clear_object (&detect);

  memset (stats, 0, sizeof *stats);
  g_mutex_lock (&stream->lock);
  stats->state = stream->state;
  stats->state_since_us = stream->state_since_us;
  stats->fps_in = stream->fps_in;
  stats->fps_out = stream->fps_out;
  stats->frames_in = stream->base.frames_in + c.frames_in;
  stats->inferred = stream->base.inferred + c.inferred;
  stats->dropped_busy = stream->base.dropped_busy + c.dropped_busy;
  stats->dropped_interval = stream->base.dropped_interval
      + c.dropped_interval;
  stats->failed = stream->base.failed + c.failed;
  stats->reconnects = stream->reconnects;
  stats->latency_count = stream->latency_count;
  stats->latency_sum_ms = stream->latency_sum_ms;
  memcpy (stats->latency_buckets, stream->latency_buckets,
      sizeof stats->latency_buckets);
  stats->last_error = g_strdup (stream->last_error);
  if (stream->latest != NULL) {
    stats->seq = stream->latest->seq;
    stats->width = stream->latest->width;
    stats->height = stream->latest->height;
  }
  g_mutex_unlock (&stream->lock);
}

void
lensd_stream_stats_clear (LensdStreamStats *stats)
{
  if (stats == NULL)
    return;
  g_clear_pointer (&stats->last_error, g_free);
}

LensdFrame *
lensd_stream_get_latest (LensdStream *stream)
{
  LensdFrame *frame;

  g_return_val_if_fail (stream != NULL, NULL);

  g_mutex_lock (&stream->lock);
  frame = stream->latest != NULL ? lensd_frame_ref (stream->latest) : NULL;
  g_mutex_unlock (&stream->lock);
  return frame;
}
