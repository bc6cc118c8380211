/* lensd-metrics.c: the per-stream part of GET /metrics, in the Prometheus
 * text exposition format 0.0.4: fps gauges, frame counters by outcome, the
 * inference latency histogram, reconnects and the state of each stream.
 * lensd-http.c adds its request counters and MQTT's own families. */
#include <math.h>
#include <string.h>

#include "lensd.h"

typedef struct
{
  gchar *name;
  LensdStreamStats stats;
} StreamSample;

/* Label values are quoted; stream names are restricted to
 * [A-Za-z0-9_.-] but escaping costs nothing and keeps the text parseable
 * whatever a future name rule allows. */
static void
append_label_value (GString * out, const gchar * value)
{
  g_string_append_c (out, '"');
  for (const gchar * p = value; *p; p++) {
    if (*p == '\\')
      g_string_append (out, "\\\\");
    else if (*p == '"')
      g_string_append (out, "\\\"");
    else if (*p == '\n')
      g_string_append (out, "\\n");
    else
      g_string_append_c (out, *p);
  }
  g_string_append_c (out, '"');
}

/* Prometheus floats: locale-independent, +Inf/-Inf/NaN spelled its way. */
static void
append_double (GString * out, gdouble value)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (value))
    g_string_append (out, "NaN");
  else if (isinf (value))
    g_string_append (out, value > 0 ? "+Inf" : "-Inf");
  else
    g_string_append (out, g_ascii_formatd (buf, sizeof buf, "%.9g", value));
}

static void
append_family (GString * out, const gchar * name, const gchar * type,
    const gchar * help)
{
  g_string_append_printf (out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
      name, type);
}

static void
append_stream_sample_start (GString * out, const gchar * metric,
    const gchar * stream)
{
  g_string_append_printf (out, "%s{stream=", metric);
  append_label_value (out, stream);
}

static void
append_stream_gauge (GString * out, const gchar * metric,
    const gchar * stream, gdouble value)
{
  append_stream_sample_start (out, metric, stream);
  g_string_append (out, "} ");
  append_double (out, value);
  g_string_append_c (out, '\n');
}

static void
append_stream_counter (GString * out, const gchar * metric,
    const gchar * stream, const gchar * label, const gchar * label_value,
    guint64 value)
{
  append_stream_sample_start (out, metric, stream);
  if (label) {
    g_string_append_printf (out, ",%s=", label);
    append_label_value (out, label_value);
  }
  g_string_append_printf (out, "} %" G_GUINT64_FORMAT "\n", value);
}

static void
append_latency_histogram (GString * out, const StreamSample * samples,
    guint n_samples)
{
  append_family (out, "lensd_inference_seconds", "histogram",
      "Inference latency per inferred frame.");
  for (guint i = 0; i < n_samples; i++) {
    const LensdStreamStats *st = &samples[i].stats;

    for (guint b = 0; b < LENSD_LATENCY_BUCKETS; b++) {
      gdouble le_ms = lensd_latency_bucket_ms[b];
      /* the histogram's +Inf bucket must equal _count, whatever the
       * last configured bound is */
      gboolean last = b == LENSD_LATENCY_BUCKETS - 1;
      guint64 count = last ? st->latency_count : st->latency_buckets[b];

      append_stream_sample_start (out, "lensd_inference_seconds_bucket",
          samples[i].name);
      g_string_append (out, ",le=\"");
      append_double (out, last ? INFINITY : le_ms / 1000.0);
      g_string_append_printf (out, "\"} %" G_GUINT64_FORMAT "\n", count);
    }
    append_stream_gauge (out, "lensd_inference_seconds_sum", samples[i].name,
        st->latency_sum_ms / 1000.0);
    append_stream_counter (out, "lensd_inference_seconds_count",
        samples[i].name, NULL, NULL, st->latency_count);
  }
}

/* Appends every stream family of @daemon to @out. Families are emitted
 * whole (all streams of one family together), as the format requires. */
void
lensd_metrics_append_streams (LensdDaemon * daemon, GString * out)
{
  GPtrArray *streams = lensd_daemon_list_streams (daemon);
  guint n = streams ? streams->len : 0;
  StreamSample *samples = g_new0 (StreamSample, MAX (n, 1));
  static const LensdStreamState states[] = {
    LENSD_STREAM_CONNECTING, LENSD_STREAM_STREAMING, LENSD_STREAM_BACKOFF,
    LENSD_STREAM_FAILED, LENSD_STREAM_STOPPED,
  };

  for (guint i = 0; i < n; i++) {
    LensdStream *stream = g_ptr_array_index (streams, i);

    samples[i].name = g_strdup (lensd_stream_get_name (stream));
    lensd_stream_get_stats (stream, &samples[i].stats);
  }

  append_family (out, "lensd_ready", "gauge",
      "1 once the model is loaded and HTTP listens.");
  g_string_append_printf (out, "lensd_ready %d\n",
      lensd_daemon_is_ready (daemon) ? 1 : 0);
  append_family (out, "lensd_streams", "gauge", "Streams configured.");
  g_string_append_printf (out, "lensd_streams %u\n", n);

  append_family (out, "lensd_stream_fps_in", "gauge",
      "Frames per second into the detector, over the last seconds.");
  for (guint i = 0; i < n; i++)
    append_stream_gauge (out, "lensd_stream_fps_in", samples[i].name,
        samples[i].stats.fps_in);
  append_family (out, "lensd_stream_fps_out", "gauge",
      "Inferred frames per second, over the last seconds.");
  for (guint i = 0; i < n; i++)
    append_stream_gauge (out, "lensd_stream_fps_out", samples[i].name,
        samples[i].stats.fps_out);

  append_family (out, "lensd_frames_total", "counter",
      "Frames that reached the detector.");
  for (guint i = 0; i < n; i++)
    append_stream_counter (out, "lensd_frames_total", samples[i].name, NULL,
        NULL, samples[i].stats.frames_in);
  append_family (out, "lensd_frames_inferred_total", "counter",
      "Frames with an inference result.");
  for (guint i = 0; i < n; i++)
    append_stream_counter (out, "lensd_frames_inferred_total",
        samples[i].name, NULL, NULL, samples[i].stats.inferred);
  append_family (out, "lensd_frames_dropped_total", "counter",
      "Frames not inferred: busy (a newer frame replaced it), interval "
      "(skipped by the stream's interval), failed (inference error).");
  for (guint i = 0; i < n; i++) {
    append_stream_counter (out, "lensd_frames_dropped_total", samples[i].name,
        "reason", "busy", samples[i].stats.dropped_busy);
    append_stream_counter (out, "lensd_frames_dropped_total", samples[i].name,
        "reason", "interval", samples[i].stats.dropped_interval);
    append_stream_counter (out, "lensd_frames_dropped_total", samples[i].name,
        "reason", "failed", samples[i].stats.failed);
  }

  append_latency_histogram (out, samples, n);

  append_family (out, "lensd_stream_reconnects_total", "counter",
      "Times the stream's source was reconnected.");
  for (guint i = 0; i < n; i++)
    append_stream_counter (out, "lensd_stream_reconnects_total",
        samples[i].name, NULL, NULL, samples[i].stats.reconnects);

  append_family (out, "lensd_stream_state", "gauge",
      "1 for the state the stream is in, 0 for the others.");
  for (guint i = 0; i < n; i++)
    for (guint s = 0; s < G_N_ELEMENTS (states); s++)
      append_stream_counter (out, "lensd_stream_state", samples[i].name,
          "state", lensd_stream_state_name (states[s]),
          samples[i].stats.state == states[s] ? 1 : 0);

  for (guint i = 0; i < n; i++) {
    g_free (samples[i].name);
    lensd_stream_stats_clear (&samples[i].stats);
  }
  g_free (samples);
  if (streams)
    g_ptr_array_unref (streams);
}
