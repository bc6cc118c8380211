/* lensd.h: the one header of the lensd daemon (daemon/): configuration,
 * the shared inference engine, streams and their supervisors, inferred
 * frames and their renderings (JSON, JPEG, PNG), the HTTP API, MQTT
 * publishing and the daemon object that ties them together.
 *
 * Threads: the daemon's GMainContext (the main thread) runs the
 * supervisors, signals and systemd notifications; GStreamer streaming
 * threads publish frames; libmicrohttpd's threads serve requests; the
 * MQTT client has its own thread. Every object here that crosses threads
 * is refcounted and locks internally; published frames are immutable
 * apart from their render caches, which lock themselves.
 *
 * Errors: GError with the domains below, messages naming the thing that
 * is wrong (file:line: key: ... for configuration).
 */
#ifndef LENSD_H
#define LENSD_H

#include <glib.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <json-glib/json-glib.h>

#include "gstlens.h"

G_BEGIN_DECLS

/* ---- configuration (lensd-config.c) -------------------------------------- */

#define LENSD_CONFIG_ERROR (lensd_config_error_quark ())
GQuark lensd_config_error_quark (void);

typedef enum
{
  LENSD_CONFIG_ERROR_SYNTAX,    /* not a key file */
  LENSD_CONFIG_ERROR_UNKNOWN,   /* unknown group or key */
  LENSD_CONFIG_ERROR_VALUE,     /* a value of the wrong kind or range */
  LENSD_CONFIG_ERROR_MISSING,   /* a required key is absent */
  LENSD_CONFIG_ERROR_CONFLICT,  /* keys that exclude each other */
  LENSD_CONFIG_ERROR_DUPLICATE, /* a stream name given twice */
  LENSD_CONFIG_ERROR_FILE,      /* a file named by the config is unusable */
} LensdConfigError;

/* One [stream NAME] group, or the body of POST /api/v1/streams. Exactly
 * one of @uri and @pipeline is set. */
typedef struct
{
  gchar *name;                  /* [A-Za-z0-9_.-]{1,64} */
  gchar *uri;                   /* rtsp://, rtsps://, file://, http(s):// */
  gchar *pipeline;              /* gst-launch description of a source whose
                                 * last element has a video (raw or
                                 * encoded) src pad */
  guint interval;               /* infer every Nth frame, >= 1 */
  gboolean loop;                /* file sources start over at the end */
  gboolean enabled;             /* false: configured but not run */
  guint latency_ms;             /* rtspsrc jitterbuffer latency */
  guint stall_timeout_s;        /* no frame for this long: reconnect */
  gboolean from_api;            /* added by POST, not from the file: a
                                 * reload leaves it alone */
} LensdStreamConfig;

typedef struct
{
  gchar *host;
  guint16 port;                 /* default 1883, 8883 with TLS */
  gchar *client_id;             /* default lensd-<hostname> */
  gchar *instance;              /* topic level, default <hostname> */
  gchar *username;
  gchar *password;              /* read from password-file */
  gchar *password_file;
  gchar *ca_file;               /* TLS when set */
  gchar *cert_file, *key_file;  /* TLS client certificate, optional */
  gchar *topic_prefix;          /* default "lens" */
  guint qos;                    /* 0 or 1 */
  guint keepalive_s;            /* default 30 */
  gdouble publish_fps;          /* 0: every inferred frame */
  guint queue_size;             /* messages held while the broker is
                                 * away, oldest dropped; default 1000 */
} LensdMqttConfig;

typedef struct
{
  gchar *path;                  /* the file it was read from, or NULL */

  /* [server] */
  gchar *listen_host;           /* default 127.0.0.1 */
  guint16 listen_port;          /* default 8080; 0: any free port */
  gchar *token_file;
  gchar *token;                 /* the token-file's first line, or NULL:
                                 * no authentication */
  guint threads;                /* HTTP threads; 0: one per CPU */
  guint max_connections;        /* default 1000 */
  guint max_connections_per_ip; /* default 200 */
  guint connection_timeout_s;   /* idle connections closed, default 30 */

  /* [engine] */
  gchar *device;                /* lens device spec; NULL: auto */
  gchar *cache_dir;             /* program binaries; NULL: default */
  guint feature_channels;       /* channels per level kept for
                                 * featuremaps.png; default 16 */

  /* [model]; no path: motion mode */
  gchar *model_path;
  gchar *labels_path;
  gdouble conf_threshold;       /* default 0.25 */
  gdouble iou_threshold;        /* default 0.45 */

  GPtrArray *streams;           /* LensdStreamConfig *, file order */
  LensdMqttConfig *mqtt;        /* NULL: no [mqtt] group */
} LensdConfig;

/* Reads and validates @path. Errors are "FILE:LINE: KEY: what is wrong"
 * (LINE and KEY where they apply). */
LensdConfig *lensd_config_load (const gchar *path, GError **error);
/* The same on a buffer; @path only names it in messages (may be NULL).
 * Files the config names (token-file, labels, ...) are still read. */
LensdConfig *lensd_config_parse (const gchar *data, gsize length,
    const gchar *path, GError **error);
void lensd_config_free (LensdConfig *config);

LensdStreamConfig *lensd_stream_config_new (const gchar *name);
LensdStreamConfig *lensd_stream_config_copy (const LensdStreamConfig *config);
void lensd_stream_config_free (LensdStreamConfig *config);
/* Whether running @a as @b needs a restart (from_api is not compared). */
gboolean lensd_stream_config_equal (const LensdStreamConfig *a,
    const LensdStreamConfig *b);
/* Checks a stream config made elsewhere (the POST body). */
gboolean lensd_stream_config_validate (const LensdStreamConfig *config,
    GError **error);
gboolean lensd_stream_name_valid (const gchar *name);

/* ---- the engine: one model (or motion) shared by every stream
 * (lensd-engine.c) ---------------------------------------------------------- */

#define LENSD_ERROR (lensd_error_quark ())
GQuark lensd_error_quark (void);

typedef enum
{
  LENSD_ERROR_FAILED,
  LENSD_ERROR_MODEL,            /* the model cannot be loaded */
  LENSD_ERROR_NOT_FOUND,        /* no such stream */
  LENSD_ERROR_EXISTS,           /* a stream of that name exists */
  LENSD_ERROR_INVALID,          /* a bad argument */
  LENSD_ERROR_UNAVAILABLE,      /* not there yet (no frame, no map) */
} LensdErrorCode;

typedef struct _LensdEngine LensdEngine;

/* Loads the model of @config (blocking; none: motion mode) on its device,
 * sets the program cache directory (an unwritable one is reported and
 * skipped, not fatal). */
LensdEngine *lensd_engine_new (const LensdConfig *config, GError **error);
void lensd_engine_free (LensdEngine *engine);
/* A new lensdetect configured for the engine (model, labels, device,
 * thresholds, feature maps on), sharing its loaded model. */
GstElement *lensd_engine_make_detector (LensdEngine *engine, guint interval);
gboolean lensd_engine_is_motion (const LensdEngine *engine);
/* /api/v1/info's "engine" and "model" members: platform, device; name,
 * path, sha256, family, input width/height, classes. */
void lensd_engine_describe (const LensdEngine *engine, JsonBuilder *builder);
const gchar *lensd_engine_model_name (const LensdEngine *engine);
const gchar *lensd_engine_model_sha256 (const LensdEngine *engine);

/* ---- inferred frames (lensd-frame.c: made; lensd-render.c: rendered) ---- */

typedef struct
{
  gint class_id;
  gchar *label;
  gdouble score;
  gint x, y, w, h;              /* frame pixels */
} LensdDetection;

typedef enum
{
  LENSD_OVERLAY_BOXES = 1 << 0,
  LENSD_OVERLAY_HEATMAP = 1 << 1,
} LensdOverlayFlags;

typedef enum
{
  LENSD_HEATMAP_ACTIVATION,
  LENSD_HEATMAP_SCORE,
  LENSD_HEATMAP_MOTION,
} LensdHeatmapKind;

#define LENSD_LEVEL_FUSED 0     /* a level of 0: every level, fused */

typedef struct _LensdFrame LensdFrame;

/* One inferred result with the video frame that carried it. Immutable once
 * published; renderings are computed on first use and cached. */
struct _LensdFrame
{
  gchar *stream;
  guint64 seq;                  /* 1, 2, ... per stream */
  GstClockTime pts;             /* of the inferred frame, or NONE */
  gint64 timestamp_us;          /* wall clock when the result came */
  gint width, height;           /* frame pixels */
  gdouble inference_ms;
  gchar *model_name;            /* "motion" in motion mode */
  gchar *model_sha256;          /* NULL in motion mode */
  guint n_detections;
  LensdDetection *detections;
  /* feature maps: the meta's geometry and one heatmap per level */
  gint input_width, input_height;
  gfloat scale_x, scale_y, pad_x, pad_y;
  guint n_maps;
  GstLensHeatmap **maps;
  /* the pixels, in whatever raw format the pipeline carries */
  GstBuffer *buffer;
  GstVideoInfo info;

  /*< private >*/
  gint ref_count;
  GMutex cache_lock;
  GHashTable *cache;            /* rendering key -> GBytes */
};

/* A frame from a buffer that carries a GstLensFeatureMapMeta (NULL when
 * it carries none: no new result), its ROI metas as detections. */
LensdFrame *lensd_frame_new_from_buffer (const gchar *stream, guint64 seq,
    GstBuffer * buffer, const GstVideoInfo * info);
LensdFrame *lensd_frame_ref (LensdFrame *frame);
void lensd_frame_unref (LensdFrame *frame);

/* A wall-clock time (g_get_real_time) as RFC 3339 in UTC with
 * milliseconds: 2026-11-25T09:30:00.123Z */
gchar *lensd_format_timestamp (gint64 timestamp_us);
/* The detections document of the HTTP API, MQTT and SSE (compact JSON,
 * no trailing newline). */
GBytes *lensd_frame_json (LensdFrame *frame);
/* The frame as JPEG, with @overlay drawn. */
GBytes *lensd_frame_snapshot_jpeg (LensdFrame *frame, LensdOverlayFlags
    overlay, GError **error);
/* A level's heatmap (@level: stride, or LENSD_LEVEL_FUSED) colormapped,
 * as PNG at the frame's size or, with @grid_scale, one pixel per cell. */
GBytes *lensd_frame_heatmap_png (LensdFrame *frame, gint level,
    LensdHeatmapKind kind, gboolean grid_scale, GError **error);
/* A grid of the level's channels, each normalised to its own range. */
GBytes *lensd_frame_featuremaps_png (LensdFrame *frame, gint level,
    GError **error);

/* ---- streams and their supervisors (lensd-stream.c) ---------------------- */

typedef enum
{
  LENSD_STREAM_CONNECTING,
  LENSD_STREAM_STREAMING,
  LENSD_STREAM_BACKOFF,
  LENSD_STREAM_FAILED,          /* gave up: an error retrying cannot fix */
  LENSD_STREAM_STOPPED,         /* disabled, removed or daemon stopping */
} LensdStreamState;

const gchar *lensd_stream_state_name (LensdStreamState state);

typedef enum
{
  LENSD_STREAM_EVENT_FRAME,     /* a new frame was published */
  LENSD_STREAM_EVENT_STATE,     /* the state changed */
  LENSD_STREAM_EVENT_REMOVED,   /* stopped for good: let go of it */
} LensdStreamEvent;

typedef struct _LensdStream LensdStream;

/* Called from any thread, without the stream's lock held; @frame is the
 * new frame for FRAME, else NULL. Must not block. */
typedef void (*LensdStreamListener) (LensdStream *stream,
    LensdStreamEvent event, LensdFrame *frame, gpointer user_data);

#define LENSD_LATENCY_BUCKETS 12
/* upper bounds of the inference latency histogram, in ms (the last: +Inf) */
extern const gdouble lensd_latency_bucket_ms[LENSD_LATENCY_BUCKETS];

typedef struct
{
  LensdStreamState state;
  gint64 state_since_us;        /* wall clock */
  gdouble fps_in;               /* frames into lensdetect, last seconds */
  gdouble fps_out;              /* inferred frames */
  guint64 frames_in;
  guint64 inferred;
  guint64 dropped_busy;         /* newer frame replaced it */
  guint64 dropped_interval;     /* skipped by interval */
  guint64 failed;               /* inference errors */
  guint64 reconnects;
  guint64 latency_count;
  gdouble latency_sum_ms;
  guint64 latency_buckets[LENSD_LATENCY_BUCKETS];  /* cumulative */
  gchar *last_error;            /* or NULL; free with _stats_clear */
  guint64 seq;                  /* of the latest frame, 0: none yet */
  gint width, height;           /* of the latest frame */
} LensdStreamStats;

/* A stream (stopped until _start) running @config on @engine; its bus and
 * timers are attached to @context. */
LensdStream *lensd_stream_new (const LensdStreamConfig *config,
    LensdEngine *engine, GMainContext *context);
LensdStream *lensd_stream_ref (LensdStream *stream);
void lensd_stream_unref (LensdStream *stream);
void lensd_stream_start (LensdStream *stream);
/* Stops the pipeline (state STOPPED); with @removed, listeners get
 * REMOVED and waiters wake. */
void lensd_stream_stop (LensdStream *stream, gboolean removed);
const gchar *lensd_stream_get_name (LensdStream *stream);
const LensdStreamConfig *lensd_stream_get_config (LensdStream *stream);
LensdStreamState lensd_stream_get_state (LensdStream *stream);
void lensd_stream_get_stats (LensdStream *stream, LensdStreamStats *stats);
void lensd_stream_stats_clear (LensdStreamStats *stats);
/* The latest frame (a new reference) or NULL. */
LensdFrame *lensd_stream_get_latest (LensdStream *stream);
/* A listener id (> 0) for lensd_stream_remove_listener. */
guint lensd_stream_add_listener (LensdStream *stream,
    LensdStreamListener listener, gpointer user_data);
void lensd_stream_remove_listener (LensdStream *stream, guint id);

/* ---- the daemon (lensd-daemon.c), what the HTTP API works on ------------ */

typedef struct _LensdDaemon LensdDaemon;
typedef struct _LensdMqtt LensdMqtt;

/* Loads the engine, connects MQTT and starts the enabled streams. Takes
 * @config, also on failure. */
LensdDaemon *lensd_daemon_new (LensdConfig *config, GMainContext *context,
    GError **error);
void lensd_daemon_free (LensdDaemon *daemon);
/* The configuration lensd started with: a reload applies only the streams
 * (list them with lensd_daemon_list_streams), so its ->streams may be
 * stale. */
const LensdConfig *lensd_daemon_get_config (LensdDaemon *daemon);
LensdEngine *lensd_daemon_get_engine (LensdDaemon *daemon);
/* The model is loaded and HTTP listens. */
gboolean lensd_daemon_is_ready (LensdDaemon *daemon);
void lensd_daemon_set_ready (LensdDaemon *daemon, gboolean ready);
/* The streams (new references), sorted by name. */
GPtrArray *lensd_daemon_list_streams (LensdDaemon *daemon);
LensdStream *lensd_daemon_get_stream (LensdDaemon *daemon,
    const gchar *name);
/* Any thread. LENSD_ERROR_EXISTS / _INVALID / _NOT_FOUND. */
gboolean lensd_daemon_add_stream (LensdDaemon *daemon,
    const LensdStreamConfig *config, GError **error);
gboolean lensd_daemon_remove_stream (LensdDaemon *daemon, const gchar *name,
    GError **error);
/* Applies @config (SIGHUP): streams added, removed and changed; unchanged
 * ones untouched. Takes @config. */
gboolean lensd_daemon_reload (LensdDaemon *daemon, LensdConfig *config,
    GError **error);
/* The MQTT publisher, or NULL without [mqtt]. */
LensdMqtt *lensd_daemon_get_mqtt (LensdDaemon *daemon);
/* "3/4 streams streaming, 24.8 fps" */
gchar *lensd_daemon_status_line (LensdDaemon *daemon);

/* ---- HTTP API (lensd-http.c) --------------------------------------------- */

typedef struct _LensdHttp LensdHttp;

/* Serves @daemon on @listen_fd (socket activation) or, when -1, on the
 * config's listen address. */
LensdHttp *lensd_http_new (LensdDaemon *daemon, int listen_fd,
    GError **error);
void lensd_http_free (LensdHttp *http);
guint16 lensd_http_get_port (LensdHttp *http);
/* The body of POST /api/v1/streams as a stream config (from_api set,
 * validated); LENSD_ERROR_INVALID naming the member that is wrong. */
LensdStreamConfig *lensd_http_parse_stream_config (const gchar *body,
    gsize length, GError **error);
/* Routing alone, without a connection (fuzzing, tests): 404 (no such
 * path), 405 (not that method), 400 (a query parameter in @params, a
 * NULL-terminated list of names, that the route does not take), else 200. */
guint lensd_http_route_status (const gchar *method, const gchar *path,
    const gchar *const *params);
/* The per-stream families of GET /metrics (lensd-metrics.c). */
void lensd_metrics_append_streams (LensdDaemon *daemon, GString *out);

/* ---- MQTT publishing (lensd-mqtt.c) -------------------------------------- */

/* Connects in the background (never blocks on the broker); publishes
 * <prefix>/<instance>/status "online" (retained, last will "offline"). */
LensdMqtt *lensd_mqtt_new (const LensdMqttConfig *config, GError **error);
/* Publishes "offline" and disconnects (bounded wait). */
void lensd_mqtt_free (LensdMqtt *mqtt);
/* Queues; never blocks. Rate-limited by publish-fps per stream. */
void lensd_mqtt_publish_frame (LensdMqtt *mqtt, LensdFrame *frame);
void lensd_mqtt_publish_state (LensdMqtt *mqtt, const gchar *stream,
    LensdStreamState state);
/* Prometheus text: published, dropped, queued, connected. */
void lensd_mqtt_append_metrics (LensdMqtt *mqtt, GString *out);

G_END_DECLS

#endif /* LENSD_H */
