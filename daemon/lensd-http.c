/* lensd-http.c: the HTTP API of lensd on libmicrohttpd: the flat route
 * table (404/405), bearer-token checks, query and body validation, the
 * JSON documents and errors, images handed to MHD without a copy, the
 * waiting requests (long-poll, Server-Sent Events, MJPEG) that suspend
 * their connection and are resumed by stream listeners and a timer
 * thread, per-connection deadlines against clients that trickle their
 * requests, the embedded web page and the request counters of /metrics.
 *
 * Ownership: each request's state (LensdRequest) is made when MHD reads
 * the request line and freed by the completion callback; stream listeners,
 * timer sources and streaming responses hold references of their own and
 * let go of them when they are removed.
 */
#include <errno.h>
#include <string.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <gio/gio.h>
#include <microhttpd.h>

#include "lensd.h"

typedef struct
{
  const gchar *name;
  const gchar *content_type;
  const guint8 *data;
  gsize size;
} LensdWebFile;

#include "lensd-web.h"

/* POST bodies (a stream config) are small. */
#define MAX_BODY_BYTES (64 * 1024)
/* A body of unannounced length over the limit is read to its end (to
 * answer 413) up to this much. */
#define MAX_DISCARDED_BYTES (1024 * 1024)
/* The request line's URI, query included: beyond, 414. */
#define MAX_URI_BYTES 4096
/* Per connection: the request line and headers must fit (MHD answers
 * 414 or 431 beyond), and streaming responses are staged in it. */
#define CONNECTION_MEMORY_BYTES (64 * 1024)
#define MAX_WAIT_MS 60000
#define KEEPALIVE_S 15
#define MJPEG_DEFAULT_FPS 10
#define MJPEG_MAX_FPS 30
#define MJPEG_BOUNDARY "lensdframe"
/* A POST body nested deeper than this is refused before json-glib, whose
 * parser recurses once per level. */
#define MAX_JSON_DEPTH 16

typedef struct _LensdRequest LensdRequest;
typedef enum MHD_Result (*LensdRouteHandler) (LensdRequest * req);

typedef enum
{
  ROUTE_GET = 1 << 0,
  ROUTE_POST = 1 << 1,
  ROUTE_DELETE = 1 << 2,
} LensdRouteMethod;

typedef struct
{
  LensdRouteMethod method;
  const gchar *pattern;         /* segments; "{name}" and "{file}" match one */
  LensdRouteHandler handler;
  const gchar *const *params;   /* query parameters it takes, or NULL */
} LensdRoute;

/* "token" goes with every route (see the authentication below). */
static gboolean
route_takes_param (const LensdRoute * route, const gchar * key)
{
  if (strcmp (key, "token") == 0)
    return TRUE;
  for (guint i = 0; route->params && route->params[i]; i++)
    if (strcmp (key, route->params[i]) == 0)
      return TRUE;
  return FALSE;
}

struct _LensdHttp
{
  LensdDaemon *daemon;
  struct MHD_Daemon *mhd;
  gchar *token;                 /* NULL: no authentication */
  guint16 port;
  gint stopping;                /* atomic */

  /* timeouts of waiting requests: long-poll deadlines, keep-alives and
   * MJPEG pacing, on a context of their own */
  GMainContext *timer_context;
  GMainLoop *timer_loop;
  GThread *timer_thread;

  GMutex lock;
  GList *requests;              /* LensdRequest *, live ones */
  GHashTable *counters;         /* "route\tcode" -> guint64 * */
};

typedef enum
{
  REQUEST_NEW,                  /* the access handler has not run yet */
  REQUEST_HEADERS,              /* a request without a body, called again */
  REQUEST_BODY,                 /* receiving a POST body */
  REQUEST_LONG_POLL,            /* suspended until a frame or the deadline */
  REQUEST_STREAMING,            /* a response is queued */
} LensdRequestPhase;

typedef enum
{
  WAIT_NONE,
  WAIT_DETECTIONS,
  WAIT_EVENTS,
  WAIT_MJPEG,
} LensdWaitKind;

struct _LensdRequest
{
  gint ref_count;
  LensdHttp *http;
  struct MHD_Connection *connection;
  gsize uri_length;
  LensdRequestPhase phase;
  const LensdRoute *route;
  GHashTable *query;            /* key -> value (NULL: "?key") */
  gchar *name;                  /* the {name} or {file} segment */
  LensdStream *stream;
  GString *body;
  guint64 body_received;

  /* waiting requests; everything below is under @lock */
  GMutex lock;
  LensdWaitKind wait;
  guint listener_id;
  GSource *deadline;            /* long-poll timeout, MJPEG pacing */
  GSource *keepalive;
  gboolean suspended;           /* MHD_suspend_connection called */
  gboolean finished;            /* MHD completed it: never resume */
  gboolean removed;             /* the stream went away */
  gboolean timed_out;
  gboolean keepalive_due;
  LensdFrame *pending;          /* the newest frame not yet sent */
  guint64 since;                /* frames up to this seq are not news */
  /* MJPEG */
  gint64 interval_us;
  gint64 next_part_us;
  LensdFrame *last_sent;
  gboolean sent_any;
  /* what the content reader still has to hand over */
  GQueue chunks;                /* GBytes * */
  gsize chunk_offset;
};

/* ---- requests ------------------------------------------------------------ */

static LensdRequest *
request_ref (LensdRequest * req)
{
  g_atomic_int_inc (&req->ref_count);
  return req;
}

static void
request_unref (LensdRequest * req)
{
  if (!g_atomic_int_dec_and_test (&req->ref_count))
    return;
  if (req->query)
    g_hash_table_unref (req->query);
  g_free (req->name);
  if (req->stream)
    lensd_stream_unref (req->stream);
  if (req->body)
    g_string_free (req->body, TRUE);
  if (req->pending)
    lensd_frame_unref (req->pending);
  if (req->last_sent)
    lensd_frame_unref (req->last_sent);
  g_queue_clear_full (&req->chunks, (GDestroyNotify) g_bytes_unref);
  g_mutex_clear (&req->lock);
  g_free (req);
}

static void
request_unref_notify (gpointer data)
{
  request_unref (data);
}

/* Resumes the connection if it waits; called with @req->lock held. MHD
 * loses a resume that comes before the suspend, hence the flag: the
 * waiting side suspends and sets it under the same lock. */
static void
request_wake_locked (LensdRequest * req)
{
  if (req->suspended && !req->finished) {
    req->suspended = FALSE;
    MHD_resume_connection (req->connection);
  }
}

static void
request_suspend_locked (LensdRequest * req)
{
  req->suspended = TRUE;
  MHD_suspend_connection (req->connection);
}

static gboolean
http_is_stopping (LensdHttp * http)
{
  return g_atomic_int_get (&http->stopping) != 0;
}

/* ---- connections -------------------------------------------------------- */

/* A connection's own state: the deadline for each of its requests to
 * arrive whole (headers and body). MHD's idle timeout cannot give it: a
 * client that trickles a byte now and then (slowloris) never idles. */
typedef struct
{
  gint ref_count;
  GMutex lock;
  LensdHttp *http;
  int fd;
  gboolean closed;
  GSource *deadline;
} LensdConnection;

static LensdConnection *
connection_ref (LensdConnection * conn)
{
  g_atomic_int_inc (&conn->ref_count);
  return conn;
}

static void
connection_unref (gpointer data)
{
  LensdConnection *conn = data;

  if (!g_atomic_int_dec_and_test (&conn->ref_count))
    return;
  g_mutex_clear (&conn->lock);
  g_free (conn);
}

/* The deadline passed: the socket is shut down, so that MHD's next read
 * sees the end and closes the connection in its own thread. The fd is
 * still open: MHD tells us CLOSED before it closes it. */
static gboolean
connection_on_deadline (gpointer data)
{
  LensdConnection *conn = data;

  g_mutex_lock (&conn->lock);
  if (!conn->closed && conn->deadline == g_main_current_source ()) {
    g_info ("http: closing a connection that sent no whole request in "
        "%u s", lensd_daemon_get_config (conn->http->daemon)
        ->connection_timeout_s);
    shutdown (conn->fd, SHUT_RDWR);
    g_source_unref (conn->deadline);
    conn->deadline = NULL;
  }
  g_mutex_unlock (&conn->lock);
  return G_SOURCE_REMOVE;
}

static void
connection_set_deadline (LensdConnection * conn, gboolean armed)
{
  guint timeout_s = lensd_daemon_get_config (conn->http->daemon)
      ->connection_timeout_s;
  GSource *old, *source = NULL;
  gboolean installed;

  if (armed && timeout_s > 0) {
    source = g_timeout_source_new_seconds (timeout_s);
    g_source_set_callback (source, connection_on_deadline,
        connection_ref (conn), connection_unref);
  }
  g_mutex_lock (&conn->lock);
  old = conn->deadline;
  installed = source && !conn->closed;
  conn->deadline = installed ? source : NULL;
  /* attached under the lock: its callback must find it installed */
  if (installed)
    g_source_attach (source, conn->http->timer_context);
  g_mutex_unlock (&conn->lock);
  if (source && !installed)
    g_source_unref (source);
  if (old) {
    g_source_destroy (old);
    g_source_unref (old);
  }
}

static LensdConnection *
connection_of (struct MHD_Connection *connection)
{
  const union MHD_ConnectionInfo *info = MHD_get_connection_info (connection,
      MHD_CONNECTION_INFO_SOCKET_CONTEXT);

  return info ? info->socket_context : NULL;
}

static void
http_connection_notify (void *cls, struct MHD_Connection *connection,
    void **socket_context, enum MHD_ConnectionNotificationCode code)
{
  LensdHttp *http = cls;
  LensdConnection *conn = *socket_context;

  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info
        (connection, MHD_CONNECTION_INFO_CONNECTION_FD);

    conn = g_new0 (LensdConnection, 1);
    conn->ref_count = 1;
    g_mutex_init (&conn->lock);
    conn->http = http;
    conn->fd = info ? info->connect_fd : -1;
    *socket_context = conn;
    if (conn->fd >= 0)
      connection_set_deadline (conn, TRUE);
  } else if (conn) {
    g_mutex_lock (&conn->lock);
    conn->closed = TRUE;
    g_mutex_unlock (&conn->lock);
    connection_set_deadline (conn, FALSE);
    *socket_context = NULL;
    /* a deadline source still dispatching holds its own reference */
    connection_unref (conn);
  }
}

/* ---- counters ------------------------------------------------------------ */

static void
http_count (LensdHttp * http, const gchar * route, guint status)
{
  gchar *key = g_strdup_printf ("%s\t%u", route, status);
  guint64 *count;

  g_mutex_lock (&http->lock);
  count = g_hash_table_lookup (http->counters, key);
  if (!count) {
    count = g_new0 (guint64, 1);
    g_hash_table_insert (http->counters, key, count);
    key = NULL;
  }
  (*count)++;
  g_mutex_unlock (&http->lock);
  g_free (key);
}

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const gchar **) a, *(const gchar **) b);
}

static void
http_append_counters (LensdHttp * http, GString * out)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer key, value;

  g_mutex_lock (&http->lock);
  g_hash_table_iter_init (&iter, http->counters);
  while (g_hash_table_iter_next (&iter, &key, &value))
    g_ptr_array_add (keys, g_strdup_printf ("%s\t%" G_GUINT64_FORMAT,
            (const gchar *) key, *(guint64 *) value));
  g_mutex_unlock (&http->lock);
  g_ptr_array_sort (keys, compare_strings);

  g_string_append (out, "# HELP lensd_http_requests_total HTTP requests "
      "answered, by route and status code.\n"
      "# TYPE lensd_http_requests_total counter\n");
  for (guint i = 0; i < keys->len; i++) {
    gchar **parts = g_strsplit (g_ptr_array_index (keys, i), "\t", 3);

    /* routes are the table's patterns: nothing to escape */
    g_string_append_printf (out,
        "lensd_http_requests_total{route=\"%s\",code=\"%s\"} %s\n",
        parts[0], parts[1], parts[2]);
    g_strfreev (parts);
  }
  g_ptr_array_unref (keys);
}

/* ---- responses ----------------------------------------------------------- */

static void
bytes_release (void *cls)
{
  g_bytes_unref (cls);
}

/* A response over @bytes (taken) without a copy: MHD releases it. */
static struct MHD_Response *
response_from_bytes (GBytes * bytes, const gchar * content_type)
{
  gsize size;
  gconstpointer data = g_bytes_get_data (bytes, &size);
  struct MHD_Response *response;

  response = MHD_create_response_from_buffer_with_free_callback_cls (size,
      (void *) data, bytes_release, bytes);
  if (!response) {
    g_bytes_unref (bytes);
    return NULL;
  }
  MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
      content_type);
  return response;
}

static GBytes *
json_builder_to_bytes (JsonBuilder * builder)
{
  JsonGenerator *generator = json_generator_new ();
  JsonNode *root = json_builder_get_root (builder);
  gsize length;
  gchar *text;

  json_generator_set_root (generator, root);
  text = json_generator_to_data (generator, &length);
  json_node_unref (root);
  g_object_unref (generator);
  return g_bytes_new_take (text, length);
}

static struct MHD_Response *
response_from_builder (JsonBuilder * builder)
{
  return response_from_bytes (json_builder_to_bytes (builder),
      "application/json");
}

static const gchar *
status_error_name (guint status)
{
  switch (status) {
    case MHD_HTTP_BAD_REQUEST:
      return "bad request";
    case MHD_HTTP_UNAUTHORIZED:
      return "unauthorized";
    case MHD_HTTP_NOT_FOUND:
      return "not found";
    case MHD_HTTP_METHOD_NOT_ALLOWED:
      return "method not allowed";
    case MHD_HTTP_CONFLICT:
      return "conflict";
    case MHD_HTTP_CONTENT_TOO_LARGE:
      return "payload too large";
    case MHD_HTTP_URI_TOO_LONG:
      return "uri too long";
    case MHD_HTTP_SERVICE_UNAVAILABLE:
      return "unavailable";
    default:
      return "internal error";
  }
}

static struct MHD_Response *
response_error (guint status, const gchar * detail)
{
  JsonBuilder *builder = json_builder_new ();
  struct MHD_Response *response;
  /* details quote what the client sent (paths, names): any bytes */
  gchar *valid = g_utf8_make_valid (detail, -1);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "error");
  json_builder_add_string_value (builder, status_error_name (status));
  json_builder_set_member_name (builder, "detail");
  json_builder_add_string_value (builder, valid);
  json_builder_end_object (builder);
  response = response_from_builder (builder);
  g_object_unref (builder);
  g_free (valid);
  return response;
}

static const gchar *
request_route_label (LensdRequest * req)
{
  return req->route ? req->route->pattern : "unmatched";
}

/* Queues @response (taken) with @status and counts it. */
static enum MHD_Result
request_respond (LensdRequest * req, guint status,
    struct MHD_Response *response)
{
  enum MHD_Result ret;

  if (!response)
    return MHD_NO;
  MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL,
      "no-store");
  ret = MHD_queue_response (req->connection, status, response);
  MHD_destroy_response (response);
  http_count (req->http, request_route_label (req), status);
  return ret;
}

static enum MHD_Result G_GNUC_PRINTF (3, 4)
request_error (LensdRequest * req, guint status, const gchar * format, ...)
{
  va_list args;
  gchar *detail;
  struct MHD_Response *response;

  va_start (args, format);
  detail = g_strdup_vprintf (format, args);
  va_end (args);
  response = response_error (status, detail);
  g_free (detail);
  return request_respond (req, status, response);
}

static guint
status_for_error (const GError * error)
{
  if (error->domain == LENSD_ERROR) {
    switch (error->code) {
      case LENSD_ERROR_NOT_FOUND:
        return MHD_HTTP_NOT_FOUND;
      case LENSD_ERROR_EXISTS:
        return MHD_HTTP_CONFLICT;
      case LENSD_ERROR_INVALID:
        return MHD_HTTP_BAD_REQUEST;
      case LENSD_ERROR_UNAVAILABLE:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
      default:
        break;
    }
  }
  return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static enum MHD_Result
request_gerror (LensdRequest * req, const GError * error)
{
  return request_respond (req, status_for_error (error),
      response_error (status_for_error (error), error->message));
}

/* ---- query parameters ---------------------------------------------------- */

static const gchar *
request_param (LensdRequest * req, const gchar * key)
{
  return g_hash_table_lookup (req->query, key);
}

static gboolean
request_has_param (LensdRequest * req, const gchar * key)
{
  return g_hash_table_contains (req->query, key);
}

/* @value as an unsigned in [0, @max]; FALSE after answering 400. */
static gboolean
request_param_uint (LensdRequest * req, const gchar * key, guint64 max,
    gboolean clamp, guint64 * value, enum MHD_Result *ret)
{
  const gchar *text = request_param (req, key);

  if (!text || !g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT64, value,
          NULL) || (!clamp && *value > max)) {
    *ret = request_error (req, MHD_HTTP_BAD_REQUEST,
        "bad value for '%s': '%s' (expected an integer from 0 to %"
        G_GUINT64_FORMAT ")", key, text ? text : "", max);
    return FALSE;
  }
  *value = MIN (*value, max);
  return TRUE;
}

typedef struct
{
  GHashTable *query;
  gchar *bad;                   /* the first unusable key, for the message */
  gboolean duplicate;
} QueryCollect;

static enum MHD_Result
collect_query_arg (void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
  QueryCollect *qc = cls;

  if (strlen (key) != key_size || (value && strlen (value) != value_size)
      || !g_utf8_validate (key, key_size, NULL)
      || (value && !g_utf8_validate (value, value_size, NULL))) {
    qc->bad = g_strescape (key, NULL);
    return MHD_NO;
  }
  if (g_hash_table_contains (qc->query, key)) {
    qc->bad = g_strdup (key);
    qc->duplicate = TRUE;
    return MHD_NO;
  }
  g_hash_table_insert (qc->query, g_strdup (key), g_strdup (value));
  return MHD_YES;
}

/* Collects the query into @req->query and refuses what the route does not
 * take. */
static gboolean
request_check_query (LensdRequest * req, enum MHD_Result *ret)
{
  QueryCollect qc = { NULL, NULL, FALSE };
  GHashTableIter iter;
  gpointer key;

  req->query = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  qc.query = req->query;
  MHD_get_connection_values_n (req->connection, MHD_GET_ARGUMENT_KIND,
      collect_query_arg, &qc);
  if (qc.bad) {
    *ret = request_error (req, MHD_HTTP_BAD_REQUEST, qc.duplicate ?
        "query parameter '%s' given more than once" :
        "query parameter '%s' is not valid UTF-8 text", qc.bad);
    g_free (qc.bad);
    return FALSE;
  }
  g_hash_table_iter_init (&iter, req->query);
  while (g_hash_table_iter_next (&iter, &key, NULL)) {
    const gchar *const *params = req->route->params;

    if (!route_takes_param (req->route, key)) {
      gchar *allowed = params ? g_strjoinv (", ", (gchar **) params) :
          g_strdup ("none");

      *ret = request_error (req, MHD_HTTP_BAD_REQUEST,
          "unknown query parameter '%s' (this route takes: %s)",
          (const gchar *) key, allowed);
      g_free (allowed);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- authentication ------------------------------------------------------ */

/* Compares digests, so the time taken tells neither where the first
 * difference is nor the token's length. */
static gboolean
token_equal (const gchar * expected, const gchar * given, gsize given_length)
{
  guint8 a[32], b[32];
  gsize la = sizeof a, lb = sizeof b;
  GChecksum *ca = g_checksum_new (G_CHECKSUM_SHA256);
  GChecksum *cb = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 diff = 0;

  g_checksum_update (ca, (const guchar *) expected, strlen (expected));
  g_checksum_update (cb, (const guchar *) given, given_length);
  g_checksum_get_digest (ca, a, &la);
  g_checksum_get_digest (cb, b, &lb);
  g_checksum_free (ca);
  g_checksum_free (cb);
  for (gsize i = 0; i < sizeof a; i++)
    diff |= a[i] ^ b[i];
  return diff == 0;
}

/* The token from "Authorization: Bearer T" or, for what cannot set
 * headers (EventSource, <img>), from ?token=T. */
static gboolean
request_authorized (LensdRequest * req)
{
  const gchar *header = MHD_lookup_connection_value (req->connection,
      MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  const gchar *param = MHD_lookup_connection_value (req->connection,
      MHD_GET_ARGUMENT_KIND, "token");

  if (header && g_ascii_strncasecmp (header, "Bearer ", 7) == 0) {
    const gchar *t = header + 7;

    while (*t == ' ')
      t++;
    if (token_equal (req->http->token, t, strlen (t)))
      return TRUE;
  }
  return param && token_equal (req->http->token, param, strlen (param));
}

/* ---- JSON documents ------------------------------------------------------ */

static void
builder_add_string_or_null (JsonBuilder * builder, const gchar * member,
    const gchar * value)
{
  json_builder_set_member_name (builder, member);
  if (value)
    json_builder_add_string_value (builder, value);
  else
    json_builder_add_null_value (builder);
}

static void
builder_add_int (JsonBuilder * builder, const gchar * member, gint64 value)
{
  json_builder_set_member_name (builder, member);
  json_builder_add_int_value (builder, value);
}

static void
builder_add_double (JsonBuilder * builder, const gchar * member,
    gdouble value)
{
  json_builder_set_member_name (builder, member);
  json_builder_add_double_value (builder, value);
}

static void
builder_add_stream_source (JsonBuilder * builder,
    const LensdStreamConfig * config)
{
  if (config->uri)
    builder_add_string_or_null (builder, "uri", config->uri);
  else
    builder_add_string_or_null (builder, "pipeline", config->pipeline);
  builder_add_int (builder, "interval", config->interval);
  json_builder_set_member_name (builder, "loop");
  json_builder_add_boolean_value (builder, config->loop);
  json_builder_set_member_name (builder, "enabled");
  json_builder_add_boolean_value (builder, config->enabled);
  json_builder_set_member_name (builder, "from_api");
  json_builder_add_boolean_value (builder, config->from_api);
}

/* GET /api/v1/streams/{name}: configuration, state and counters; the
 * list has the short form. */
static void
builder_add_stream (JsonBuilder * builder, LensdStream * stream,
    gboolean full)
{
  LensdStreamStats st;
  gchar *since;

  lensd_stream_get_stats (stream, &st);
  json_builder_begin_object (builder);
  builder_add_string_or_null (builder, "name",
      lensd_stream_get_name (stream));
  builder_add_string_or_null (builder, "state",
      lensd_stream_state_name (st.state));
  builder_add_stream_source (builder, lensd_stream_get_config (stream));
  builder_add_double (builder, "fps_in", st.fps_in);
  builder_add_double (builder, "fps_out", st.fps_out);
  builder_add_int (builder, "seq", st.seq);
  if (full) {
    since = lensd_format_timestamp (st.state_since_us);
    builder_add_string_or_null (builder, "state_since", since);
    g_free (since);
    builder_add_int (builder, "width", st.width);
    builder_add_int (builder, "height", st.height);
    builder_add_int (builder, "frames_in", st.frames_in);
    builder_add_int (builder, "inferred", st.inferred);
    json_builder_set_member_name (builder, "dropped");
    json_builder_begin_object (builder);
    builder_add_int (builder, "busy", st.dropped_busy);
    builder_add_int (builder, "interval", st.dropped_interval);
    builder_add_int (builder, "failed", st.failed);
    json_builder_end_object (builder);
    builder_add_int (builder, "reconnects", st.reconnects);
    json_builder_set_member_name (builder, "latency");
    json_builder_begin_object (builder);
    builder_add_int (builder, "count", st.latency_count);
    builder_add_double (builder, "mean_ms", st.latency_count ?
        st.latency_sum_ms / st.latency_count : 0.0);
    builder_add_double (builder, "sum_ms", st.latency_sum_ms);
    json_builder_set_member_name (builder, "buckets");
    json_builder_begin_array (builder);
    for (guint b = 0; b < LENSD_LATENCY_BUCKETS; b++) {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "le_ms");
      if (b == LENSD_LATENCY_BUCKETS - 1)
        json_builder_add_string_value (builder, "+Inf");
      else
        json_builder_add_double_value (builder, lensd_latency_bucket_ms[b]);
      builder_add_int (builder, "count", st.latency_buckets[b]);
      json_builder_end_object (builder);
    }
    json_builder_end_array (builder);
    json_builder_end_object (builder);
    builder_add_string_or_null (builder, "last_error", st.last_error);
  }
  json_builder_end_object (builder);
  lensd_stream_stats_clear (&st);
}

/* Counts nesting outside strings; json-glib recurses once per level. */
static gboolean
json_depth_within (const gchar * text, gsize length, guint max_depth)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < length; i++) {
    gchar c = text[i];

    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return FALSE;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return TRUE;
}

static gboolean
member_string (JsonObject * object, const gchar * member, gchar ** out,
    GError ** error)
{
  JsonNode *node = json_object_get_member (object, member);

  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "\"%s\" must be a string", member);
    return FALSE;
  }
  g_free (*out);
  *out = json_node_dup_string (node);
  return TRUE;
}

static gboolean
member_uint (JsonObject * object, const gchar * member, guint * out,
    GError ** error)
{
  JsonNode *node = json_object_get_member (object, member);
  gint64 v;

  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64
      || (v = json_node_get_int (node)) < 0 || v > G_MAXUINT) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "\"%s\" must be an integer from 0 to %u", member, G_MAXUINT);
    return FALSE;
  }
  *out = (guint) v;
  return TRUE;
}

static gboolean
member_boolean (JsonObject * object, const gchar * member, gboolean * out,
    GError ** error)
{
  JsonNode *node = json_object_get_member (object, member);

  if (!JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_BOOLEAN) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "\"%s\" must be true or false", member);
    return FALSE;
  }
  *out = json_node_get_boolean (node);
  return TRUE;
}

LensdStreamConfig *
lensd_http_parse_stream_config (const gchar * body, gsize length,
    GError ** error)
{
  static const gchar *const members[] = {
    "name", "uri", "pipeline", "interval", "loop", "enabled", "latency_ms",
    "stall_timeout_s", NULL,
  };
  JsonParser *parser;
  JsonNode *root;
  JsonObject *object;
  LensdStreamConfig *config = NULL;
  GList *names = NULL;
  GError *parse_error = NULL;
  gchar *name = NULL;
  gboolean ok = TRUE;

  if (!g_utf8_validate (body, length, NULL)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "the body is not UTF-8 text");
    return NULL;
  }
  if (!json_depth_within (body, length, MAX_JSON_DEPTH)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "the body nests deeper than %d levels", MAX_JSON_DEPTH);
    return NULL;
  }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, body, length, &parse_error)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "the body is not JSON: %s", parse_error->message);
    g_error_free (parse_error);
    g_object_unref (parser);
    return NULL;
  }
  root = json_parser_get_root (parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "the body must be a JSON object {\"name\": ..., \"uri\": ...}");
    g_object_unref (parser);
    return NULL;
  }
  object = json_node_get_object (root);
  names = json_object_get_members (object);
  for (GList * l = names; l && ok; l = l->next) {
    if (!g_strv_contains (members, l->data)) {
      g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
          "unknown member \"%s\" (known: name, uri, pipeline, interval, "
          "loop, enabled, latency_ms, stall_timeout_s)",
          (const gchar *) l->data);
      ok = FALSE;
    }
  }
  g_list_free (names);
  if (ok && !json_object_has_member (object, "name")) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "\"name\" is missing");
    ok = FALSE;
  }
  ok = ok && member_string (object, "name", &name, error);
  if (ok) {
    config = lensd_stream_config_new (name);
    config->from_api = TRUE;
  }
  if (ok && json_object_has_member (object, "uri"))
    ok = member_string (object, "uri", &config->uri, error);
  if (ok && json_object_has_member (object, "pipeline"))
    ok = member_string (object, "pipeline", &config->pipeline, error);
  if (ok && json_object_has_member (object, "interval"))
    ok = member_uint (object, "interval", &config->interval, error);
  if (ok && json_object_has_member (object, "latency_ms"))
    ok = member_uint (object, "latency_ms", &config->latency_ms, error);
  if (ok && json_object_has_member (object, "stall_timeout_s"))
    ok = member_uint (object, "stall_timeout_s", &config->stall_timeout_s,
        error);
  if (ok && json_object_has_member (object, "loop"))
    ok = member_boolean (object, "loop", &config->loop, error);
  if (ok && json_object_has_member (object, "enabled"))
    ok = member_boolean (object, "enabled", &config->enabled, error);
  if (ok && !config->uri == !config->pipeline) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "exactly one of \"uri\" and \"pipeline\" must be given");
    ok = FALSE;
  }
  if (ok && !lensd_stream_config_validate (config, &parse_error)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID, "%s",
        parse_error->message);
    g_error_free (parse_error);
    ok = FALSE;
  }
  g_free (name);
  g_object_unref (parser);
  if (!ok && config) {
    lensd_stream_config_free (config);
    config = NULL;
  }
  return config;
}

/* ---- service routes ------------------------------------------------------ */

/* 200 with {"status": @status} */
static enum MHD_Result
respond_status (LensdRequest * req, const char *status)
{
  JsonBuilder *builder = json_builder_new ();
  struct MHD_Response *response;

  json_builder_begin_object (builder);
  builder_add_string_or_null (builder, "status", status);
  json_builder_end_object (builder);
  response = response_from_builder (builder);
  g_object_unref (builder);
  return request_respond (req, MHD_HTTP_OK, response);
}

static enum MHD_Result
handle_healthz (LensdRequest * req)
{
  return respond_status (req, "ok");
}

static enum MHD_Result
handle_readyz (LensdRequest * req)
{
  if (!lensd_daemon_is_ready (req->http->daemon))
    return request_error (req, MHD_HTTP_SERVICE_UNAVAILABLE,
        "lensd is starting: the model is not loaded or HTTP does not "
        "listen yet");
  return respond_status (req, "ready");
}

static enum MHD_Result
handle_metrics (LensdRequest * req)
{
  GString *out = g_string_new (NULL);
  LensdMqtt *mqtt = lensd_daemon_get_mqtt (req->http->daemon);
  gsize length;

  lensd_metrics_append_streams (req->http->daemon, out);
  http_append_counters (req->http, out);
  if (mqtt)
    lensd_mqtt_append_metrics (mqtt, out);
  length = out->len;
  return request_respond (req, MHD_HTTP_OK,
      response_from_bytes (g_bytes_new_take (g_string_free (out, FALSE),
              length), "text/plain; version=0.0.4; charset=utf-8"));
}

static enum MHD_Result
handle_info (LensdRequest * req)
{
  JsonBuilder *builder = json_builder_new ();
  LensdEngine *engine = lensd_daemon_get_engine (req->http->daemon);
  struct MHD_Response *response;

  json_builder_begin_object (builder);
  builder_add_string_or_null (builder, "name", "lensd");
  builder_add_string_or_null (builder, "version", LENSD_VERSION);
  json_builder_set_member_name (builder, "ready");
  json_builder_add_boolean_value (builder,
      lensd_daemon_is_ready (req->http->daemon));
  if (engine)
    lensd_engine_describe (engine, builder);
  json_builder_end_object (builder);
  response = response_from_builder (builder);
  g_object_unref (builder);
  return request_respond (req, MHD_HTTP_OK, response);
}

/* ---- stream routes ------------------------------------------------------- */

static enum MHD_Result
handle_streams_list (LensdRequest * req)
{
  GPtrArray *streams = lensd_daemon_list_streams (req->http->daemon);
  JsonBuilder *builder = json_builder_new ();
  struct MHD_Response *response;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "streams");
  json_builder_begin_array (builder);
  for (guint i = 0; streams && i < streams->len; i++)
    builder_add_stream (builder, g_ptr_array_index (streams, i), FALSE);
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  response = response_from_builder (builder);
  g_object_unref (builder);
  if (streams)
    g_ptr_array_unref (streams);
  return request_respond (req, MHD_HTTP_OK, response);
}

static enum MHD_Result
respond_stream (LensdRequest * req, LensdStream * stream, guint status)
{
  JsonBuilder *builder = json_builder_new ();
  struct MHD_Response *response;

  builder_add_stream (builder, stream, TRUE);
  response = response_from_builder (builder);
  g_object_unref (builder);
  if (response && status == MHD_HTTP_CREATED) {
    gchar *location = g_strdup_printf ("/api/v1/streams/%s",
        lensd_stream_get_name (stream));

    MHD_add_response_header (response, MHD_HTTP_HEADER_LOCATION, location);
    g_free (location);
  }
  return request_respond (req, status, response);
}

static enum MHD_Result
handle_streams_add (LensdRequest * req)
{
  GError *error = NULL;
  LensdStreamConfig *config;
  LensdStream *stream;
  enum MHD_Result ret;

  config = lensd_http_parse_stream_config (req->body ? req->body->str : "",
      req->body ? req->body->len : 0, &error);
  if (!config || !lensd_daemon_add_stream (req->http->daemon, config,
          &error)) {
    ret = request_gerror (req, error);
    g_error_free (error);
    if (config)
      lensd_stream_config_free (config);
    return ret;
  }
  stream = lensd_daemon_get_stream (req->http->daemon, config->name);
  if (stream) {
    ret = respond_stream (req, stream, MHD_HTTP_CREATED);
    lensd_stream_unref (stream);
  } else {
    /* removed again between the two calls */
    ret = request_error (req, MHD_HTTP_NOT_FOUND,
        "stream '%s' was removed right after it was added", config->name);
  }
  lensd_stream_config_free (config);
  return ret;
}

static enum MHD_Result
handle_stream_get (LensdRequest * req)
{
  return respond_stream (req, req->stream, MHD_HTTP_OK);
}

static enum MHD_Result
handle_stream_delete (LensdRequest * req)
{
  GError *error = NULL;
  enum MHD_Result ret;

  if (!lensd_daemon_remove_stream (req->http->daemon, req->name, &error)) {
    ret = request_gerror (req, error);
    g_error_free (error);
    return ret;
  }
  return request_respond (req, MHD_HTTP_NO_CONTENT,
      MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT));
}

/* ---- images -------------------------------------------------------------- */

static enum MHD_Result
respond_no_frame (LensdRequest * req)
{
  return request_error (req, MHD_HTTP_SERVICE_UNAVAILABLE,
      "stream '%s' has no inferred frame yet", req->name);
}

static enum MHD_Result
respond_image (LensdRequest * req, LensdFrame * frame, GBytes * bytes,
    GError * error, const gchar * content_type)
{
  struct MHD_Response *response;
  gchar seq[24];
  enum MHD_Result ret;

  if (!bytes) {
    ret = request_gerror (req, error);
    g_error_free (error);
    return ret;
  }
  response = response_from_bytes (bytes, content_type);
  if (response) {
    g_snprintf (seq, sizeof seq, "%" G_GUINT64_FORMAT, frame->seq);
    MHD_add_response_header (response, "X-Lensd-Seq", seq);
  }
  return request_respond (req, MHD_HTTP_OK, response);
}

static gboolean
parse_overlay (const gchar * text, LensdOverlayFlags * flags, gchar ** bad)
{
  gchar **items = g_strsplit (text, ",", -1);
  gboolean ok = TRUE;

  *flags = 0;
  for (guint i = 0; ok && items[i]; i++) {
    if (strcmp (items[i], "boxes") == 0)
      *flags |= LENSD_OVERLAY_BOXES;
    else if (strcmp (items[i], "heatmap") == 0)
      *flags |= LENSD_OVERLAY_HEATMAP;
    else if (items[i][0] != '\0') {
      *bad = g_strdup (items[i]);
      ok = FALSE;
    }
  }
  g_strfreev (items);
  return ok;
}

/* ?overlay=boxes,heatmap (either, both or empty); FALSE after a 400. */
static gboolean
request_overlay (LensdRequest * req, LensdOverlayFlags default_flags,
    LensdOverlayFlags * flags, enum MHD_Result *ret)
{
  const gchar *text = request_param (req, "overlay");
  gchar *bad = NULL;

  *flags = default_flags;
  if (!request_has_param (req, "overlay"))
    return TRUE;
  if (!parse_overlay (text ? text : "", flags, &bad)) {
    *ret = request_error (req, MHD_HTTP_BAD_REQUEST,
        "bad value for 'overlay': '%s' (expected a comma-separated list of "
        "boxes, heatmap)", bad);
    g_free (bad);
    return FALSE;
  }
  return TRUE;
}

/* ?level=8|16|32|...|fused; FALSE after a 400. */
static gboolean
request_level (LensdRequest * req, gint default_level, gint * level,
    enum MHD_Result *ret)
{
  const gchar *text = request_param (req, "level");
  guint64 v;

  *level = default_level;
  if (!request_has_param (req, "level"))
    return TRUE;
  if (text && strcmp (text, "fused") == 0) {
    *level = LENSD_LEVEL_FUSED;
    return TRUE;
  }
  if (!text || !g_ascii_string_to_unsigned (text, 10, 1, 4096, &v, NULL)) {
    *ret = request_error (req, MHD_HTTP_BAD_REQUEST,
        "bad value for 'level': '%s' (expected a stride such as 8, 16 or 32, "
        "or fused)", text ? text : "");
    return FALSE;
  }
  *level = (gint) v;
  return TRUE;
}

static enum MHD_Result
handle_snapshot (LensdRequest * req)
{
  LensdOverlayFlags overlay;
  LensdFrame *frame;
  GError *error = NULL;
  GBytes *bytes;
  enum MHD_Result ret;

  if (!request_overlay (req, 0, &overlay, &ret))
    return ret;
  if (!(frame = lensd_stream_get_latest (req->stream)))
    return respond_no_frame (req);
  bytes = lensd_frame_snapshot_jpeg (frame, overlay, &error);
  ret = respond_image (req, frame, bytes, error, "image/jpeg");
  lensd_frame_unref (frame);
  return ret;
}

static enum MHD_Result
handle_heatmap (LensdRequest * req)
{
  const gchar *kind_text = request_param (req, "kind");
  const gchar *scale = request_param (req, "scale");
  LensdEngine *engine;
  LensdHeatmapKind kind;
  LensdFrame *frame;
  GError *error = NULL;
  GBytes *bytes;
  gint level;
  enum MHD_Result ret;

  if (!request_level (req, LENSD_LEVEL_FUSED, &level, &ret))
    return ret;
  engine = lensd_daemon_get_engine (req->http->daemon);
  kind = engine && lensd_engine_is_motion (engine) ? LENSD_HEATMAP_MOTION :
      LENSD_HEATMAP_ACTIVATION;
  if (request_has_param (req, "kind")) {
    if (g_strcmp0 (kind_text, "activation") == 0)
      kind = LENSD_HEATMAP_ACTIVATION;
    else if (g_strcmp0 (kind_text, "score") == 0)
      kind = LENSD_HEATMAP_SCORE;
    else if (g_strcmp0 (kind_text, "motion") == 0)
      kind = LENSD_HEATMAP_MOTION;
    else
      return request_error (req, MHD_HTTP_BAD_REQUEST,
          "bad value for 'kind': '%s' (expected activation, score or motion)",
          kind_text ? kind_text : "");
  }
  if (request_has_param (req, "scale") && g_strcmp0 (scale, "grid") != 0
      && g_strcmp0 (scale, "frame") != 0)
    return request_error (req, MHD_HTTP_BAD_REQUEST,
        "bad value for 'scale': '%s' (expected grid or frame)",
        scale ? scale : "");
  if (!(frame = lensd_stream_get_latest (req->stream)))
    return respond_no_frame (req);
  bytes = lensd_frame_heatmap_png (frame, level, kind,
      g_strcmp0 (scale, "grid") == 0, &error);
  ret = respond_image (req, frame, bytes, error, "image/png");
  lensd_frame_unref (frame);
  return ret;
}

static enum MHD_Result
handle_featuremaps (LensdRequest * req)
{
  LensdFrame *frame;
  GError *error = NULL;
  GBytes *bytes;
  gint level = -1;
  enum MHD_Result ret;

  if (!request_level (req, -1, &level, &ret))
    return ret;
  if (!(frame = lensd_stream_get_latest (req->stream)))
    return respond_no_frame (req);
  /* default: the finest level the frame has */
  if (level < 0)
    level = frame->n_maps > 0 ? frame->maps[0]->stride : LENSD_LEVEL_FUSED;
  bytes = lensd_frame_featuremaps_png (frame, level, &error);
  ret = respond_image (req, frame, bytes, error, "image/png");
  lensd_frame_unref (frame);
  return ret;
}

/* ---- waiting requests ---------------------------------------------------- */

static void
request_on_stream_event (LensdStream * stream, LensdStreamEvent event,
    LensdFrame * frame, gpointer user_data)
{
  LensdRequest *req = user_data;

  g_mutex_lock (&req->lock);
  if (event == LENSD_STREAM_EVENT_FRAME && frame && frame->seq > req->since) {
    if (req->pending)
      lensd_frame_unref (req->pending);
    req->pending = lensd_frame_ref (frame);
    request_wake_locked (req);
  } else if (event == LENSD_STREAM_EVENT_REMOVED) {
    req->removed = TRUE;
    request_wake_locked (req);
  }
  g_mutex_unlock (&req->lock);
}

static gboolean
request_on_deadline (gpointer data)
{
  LensdRequest *req = data;

  g_mutex_lock (&req->lock);
  req->timed_out = TRUE;
  /* unless the completion took it already */
  if (req->deadline && req->deadline == g_main_current_source ()) {
    g_source_unref (req->deadline);
    req->deadline = NULL;
  }
  request_wake_locked (req);
  g_mutex_unlock (&req->lock);
  return G_SOURCE_REMOVE;
}

static gboolean
request_on_keepalive (gpointer data)
{
  LensdRequest *req = data;

  g_mutex_lock (&req->lock);
  req->keepalive_due = TRUE;
  request_wake_locked (req);
  g_mutex_unlock (&req->lock);
  return G_SOURCE_CONTINUE;
}

static GSource *
request_add_timer (LensdRequest * req, guint ms, GSourceFunc func)
{
  GSource *source = g_timeout_source_new (ms);

  g_source_set_callback (source, func, request_ref (req),
      request_unref_notify);
  g_source_attach (source, req->http->timer_context);
  return source;
}

/* Registers the listener, then checks the stream is still the daemon's:
 * one removed in between would never send REMOVED to us. */
static void
request_listen (LensdRequest * req, LensdWaitKind wait)
{
  LensdStream *current;

  req->wait = wait;
  req->listener_id = lensd_stream_add_listener (req->stream,
      request_on_stream_event, request_ref (req));
  current = lensd_daemon_get_stream (req->http->daemon, req->name);
  if (current != req->stream) {
    g_mutex_lock (&req->lock);
    req->removed = TRUE;
    g_mutex_unlock (&req->lock);
  }
  if (current)
    lensd_stream_unref (current);
}

/* Called from the completion callback. */
static void
request_stop_waiting (LensdRequest * req)
{
  GSource *deadline, *keepalive;

  g_mutex_lock (&req->lock);
  req->finished = TRUE;
  deadline = req->deadline;
  keepalive = req->keepalive;
  req->deadline = req->keepalive = NULL;
  g_mutex_unlock (&req->lock);
  if (deadline) {
    g_source_destroy (deadline);
    g_source_unref (deadline);
  }
  if (keepalive) {
    g_source_destroy (keepalive);
    g_source_unref (keepalive);
  }
  if (req->listener_id) {
    lensd_stream_remove_listener (req->stream, req->listener_id);
    req->listener_id = 0;
    /* the listener's reference */
    request_unref (req);
  }
}

static struct MHD_Response *
response_frame_json (LensdFrame * frame)
{
  struct MHD_Response *response = response_from_bytes (lensd_frame_json
      (frame), "application/json");
  gchar seq[24];

  if (response) {
    g_snprintf (seq, sizeof seq, "%" G_GUINT64_FORMAT, frame->seq);
    MHD_add_response_header (response, "X-Lensd-Seq", seq);
  }
  return response;
}

/* What a suspended long-poll answers once woken; with nothing to answer
 * yet, it suspends again. */
static enum MHD_Result
long_poll_answer (LensdRequest * req)
{
  LensdFrame *frame = NULL;
  gboolean removed, timed_out, stopping;

  g_mutex_lock (&req->lock);
  frame = req->pending;
  req->pending = NULL;
  removed = req->removed;
  timed_out = req->timed_out;
  stopping = http_is_stopping (req->http);
  if (!frame && !removed && !timed_out && !stopping) {
    request_suspend_locked (req);
    g_mutex_unlock (&req->lock);
    return MHD_YES;
  }
  g_mutex_unlock (&req->lock);
  req->phase = REQUEST_STREAMING;
  if (frame) {
    enum MHD_Result ret = request_respond (req, MHD_HTTP_OK,
        response_frame_json (frame));

    lensd_frame_unref (frame);
    return ret;
  }
  if (removed)
    return request_error (req, MHD_HTTP_NOT_FOUND,
        "stream '%s' was removed while waiting", req->name);
  if (stopping)
    return request_error (req, MHD_HTTP_SERVICE_UNAVAILABLE,
        "lensd is stopping");
  /* the time ran out with no newer frame */
  return request_respond (req, MHD_HTTP_NO_CONTENT,
      MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT));
}

static enum MHD_Result
handle_detections (LensdRequest * req)
{
  guint64 since = 0, wait_ms = 0;
  LensdFrame *latest;
  enum MHD_Result ret;

  if (request_has_param (req, "since")
      && !request_param_uint (req, "since", G_MAXUINT64, FALSE, &since, &ret))
    return ret;
  if (request_has_param (req, "wait")
      && !request_param_uint (req, "wait", MAX_WAIT_MS, TRUE, &wait_ms, &ret))
    return ret;
  latest = lensd_stream_get_latest (req->stream);
  if (!request_has_param (req, "since") && !request_has_param (req, "wait")) {
    if (!latest)
      return respond_no_frame (req);
    ret = request_respond (req, MHD_HTTP_OK, response_frame_json (latest));
    lensd_frame_unref (latest);
    return ret;
  }
  /* ?wait without ?since: the next frame after the current one */
  if (!request_has_param (req, "since"))
    since = latest ? latest->seq : 0;
  if (latest && latest->seq > since) {
    ret = request_respond (req, MHD_HTTP_OK, response_frame_json (latest));
    lensd_frame_unref (latest);
    return ret;
  }
  if (latest)
    lensd_frame_unref (latest);
  req->since = since;
  if (wait_ms == 0)
    return request_respond (req, MHD_HTTP_NO_CONTENT,
        MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT));

  request_listen (req, WAIT_DETECTIONS);
  g_mutex_lock (&req->lock);
  req->deadline = request_add_timer (req, (guint) wait_ms,
      request_on_deadline);
  g_mutex_unlock (&req->lock);
  /* a frame may have come between get_latest and the listener */
  latest = lensd_stream_get_latest (req->stream);
  g_mutex_lock (&req->lock);
  if (latest && latest->seq > since && !req->pending)
    req->pending = lensd_frame_ref (latest);
  g_mutex_unlock (&req->lock);
  if (latest)
    lensd_frame_unref (latest);
  req->phase = REQUEST_LONG_POLL;
  return long_poll_answer (req);
}

/* Copies queued chunks into @buf; with @req->lock held. */
static gsize
request_drain_chunks_locked (LensdRequest * req, char *buf, size_t max)
{
  gsize done = 0;

  while (done < max && !g_queue_is_empty (&req->chunks)) {
    GBytes *chunk = g_queue_peek_head (&req->chunks);
    gsize size;
    const guint8 *data = g_bytes_get_data (chunk, &size);
    gsize n = MIN (max - done, size - req->chunk_offset);

    memcpy (buf + done, data + req->chunk_offset, n);
    done += n;
    req->chunk_offset += n;
    if (req->chunk_offset == size) {
      g_bytes_unref (g_queue_pop_head (&req->chunks));
      req->chunk_offset = 0;
    }
  }
  return done;
}

static void
request_push_string (LensdRequest * req, GString * text)
{
  gsize length = text->len;

  g_queue_push_tail (&req->chunks,
      g_bytes_new_take (g_string_free (text, FALSE), length));
}

/* Stages the next Server-Sent Event, if there is one to send. */
static void
events_fill_locked (LensdRequest * req)
{
  if (req->pending) {
    LensdFrame *frame = req->pending;
    GBytes *json = lensd_frame_json (frame);
    gsize size;
    const gchar *data = g_bytes_get_data (json, &size);
    GString *event = g_string_sized_new (size + 64);

    req->pending = NULL;
    req->since = frame->seq;
    /* lensd_frame_json is one line: one data field carries it */
    g_string_append_printf (event, "event: detections\nid: %"
        G_GUINT64_FORMAT "\ndata: ", frame->seq);
    g_string_append_len (event, data, size);
    g_string_append (event, "\n\n");
    request_push_string (req, event);
    g_bytes_unref (json);
    lensd_frame_unref (frame);
  } else if (req->removed) {
    GString *event = g_string_new (NULL);
    JsonBuilder *builder = json_builder_new ();
    GBytes *json;

    json_builder_begin_object (builder);
    builder_add_string_or_null (builder, "stream", req->name);
    json_builder_end_object (builder);
    json = json_builder_to_bytes (builder);
    g_string_append (event, "event: removed\ndata: ");
    g_string_append_len (event, g_bytes_get_data (json, NULL),
        g_bytes_get_size (json));
    g_string_append (event, "\n\n");
    request_push_string (req, event);
    g_bytes_unref (json);
    g_object_unref (builder);
    /* sent once; then the reader ends the response */
    req->wait = WAIT_NONE;
  } else if (req->keepalive_due) {
    req->keepalive_due = FALSE;
    g_queue_push_tail (&req->chunks, g_bytes_new_static (": keep-alive\n\n",
            14));
  }
}

static void
mjpeg_push_part_locked (LensdRequest * req, LensdFrame * frame)
{
  GError *error = NULL;
  GBytes *jpeg = lensd_frame_snapshot_jpeg (frame, LENSD_OVERLAY_BOXES,
      &error);
  GString *head;

  if (!jpeg) {
    g_debug ("mjpeg of stream '%s': frame %" G_GUINT64_FORMAT
        " skipped: %s", req->name, frame->seq, error->message);
    g_error_free (error);
    return;
  }
  head = g_string_new (NULL);
  g_string_append_printf (head, "--" MJPEG_BOUNDARY "\r\n"
      "Content-Type: image/jpeg\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n"
      "X-Lensd-Seq: %" G_GUINT64_FORMAT "\r\n\r\n", g_bytes_get_size (jpeg),
      frame->seq);
  request_push_string (req, head);
  g_queue_push_tail (&req->chunks, jpeg);
  g_queue_push_tail (&req->chunks, g_bytes_new_static ("\r\n", 2));
  req->sent_any = TRUE;
}

/* Stages the next MJPEG part: a new frame once the pacing allows it, or
 * the last one again as a keep-alive (the only way to notice a client that
 * went away while nothing moves). */
static void
mjpeg_fill_locked (LensdRequest * req)
{
  gint64 now = g_get_monotonic_time ();

  if (req->pending) {
    if (now < req->next_part_us) {
      if (!req->deadline)
        req->deadline = request_add_timer (req,
            (guint) ((req->next_part_us - now + 999) / 1000),
            request_on_deadline);
      return;
    }
    if (req->last_sent)
      lensd_frame_unref (req->last_sent);
    req->last_sent = req->pending;
    req->pending = NULL;
    req->since = req->last_sent->seq;
    req->next_part_us = now + req->interval_us;
    req->keepalive_due = FALSE;
    mjpeg_push_part_locked (req, req->last_sent);
  } else if (req->keepalive_due) {
    req->keepalive_due = FALSE;
    if (req->last_sent)
      mjpeg_push_part_locked (req, req->last_sent);
    if (!req->sent_any)
      /* before the first boundary: preamble, which clients ignore */
      g_queue_push_tail (&req->chunks, g_bytes_new_static ("\r\n", 2));
  }
}

static ssize_t
streaming_read (void *cls, uint64_t pos, char *buf, size_t max)
{
  LensdRequest *req = cls;
  ssize_t n;

  g_mutex_lock (&req->lock);
  if (g_queue_is_empty (&req->chunks)) {
    if (req->wait == WAIT_EVENTS)
      events_fill_locked (req);
    else if (req->wait == WAIT_MJPEG && !req->removed)
      mjpeg_fill_locked (req);
  }
  if (!g_queue_is_empty (&req->chunks)) {
    n = (ssize_t) request_drain_chunks_locked (req, buf, max);
  } else if (req->removed || req->wait == WAIT_NONE
      || http_is_stopping (req->http)) {
    n = MHD_CONTENT_READER_END_OF_STREAM;
  } else {
    /* nothing to send: MHD must not poll us, a listener or timer wakes */
    request_suspend_locked (req);
    n = 0;
  }
  g_mutex_unlock (&req->lock);
  return n;
}

static void
streaming_release (void *cls)
{
  request_unref (cls);
}

static enum MHD_Result
start_streaming (LensdRequest * req, LensdWaitKind wait,
    const gchar * content_type)
{
  struct MHD_Response *response;
  LensdFrame *latest;

  /* these last: the idle timeout must not cut them */
  MHD_set_connection_option (req->connection, MHD_CONNECTION_OPTION_TIMEOUT,
      (unsigned int) 0);
  request_listen (req, wait);
  latest = lensd_stream_get_latest (req->stream);
  g_mutex_lock (&req->lock);
  if (latest && latest->seq > req->since && !req->pending)
    req->pending = lensd_frame_ref (latest);
  req->keepalive = request_add_timer (req, KEEPALIVE_S * 1000,
      request_on_keepalive);
  g_mutex_unlock (&req->lock);
  if (latest)
    lensd_frame_unref (latest);

  response = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 32 * 1024,
      streaming_read, request_ref (req), streaming_release);
  if (!response) {
    request_unref (req);
    return MHD_NO;
  }
  MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
      content_type);
  /* no proxy buffering of a live stream */
  MHD_add_response_header (response, "X-Accel-Buffering", "no");
  req->phase = REQUEST_STREAMING;
  return request_respond (req, MHD_HTTP_OK, response);
}

static enum MHD_Result
handle_events (LensdRequest * req)
{
  const gchar *last = MHD_lookup_connection_value (req->connection,
      MHD_HEADER_KIND, "Last-Event-ID");
  guint64 since = 0;

  /* a reconnecting EventSource says what it saw last */
  if (last && g_ascii_string_to_unsigned (last, 10, 0, G_MAXUINT64, &since,
          NULL))
    req->since = since;
  return start_streaming (req, WAIT_EVENTS, "text/event-stream");
}

static enum MHD_Result
handle_mjpeg (LensdRequest * req)
{
  guint64 fps = MJPEG_DEFAULT_FPS;
  enum MHD_Result ret;

  if (request_has_param (req, "fps")) {
    if (!request_param_uint (req, "fps", MJPEG_MAX_FPS, FALSE, &fps, &ret))
      return ret;
    if (fps == 0)
      return request_error (req, MHD_HTTP_BAD_REQUEST,
          "bad value for 'fps': '0' (expected an integer from 1 to %d)",
          MJPEG_MAX_FPS);
  }
  req->interval_us = G_USEC_PER_SEC / (gint64) fps;
  req->next_part_us = 0;
  return start_streaming (req, WAIT_MJPEG,
      "multipart/x-mixed-replace; boundary=" MJPEG_BOUNDARY);
}

/* ---- the web page -------------------------------------------------------- */

static const LensdWebFile *
web_file_lookup (const gchar * name)
{
  for (const LensdWebFile * f = lensd_web_files; f->name; f++)
    if (strcmp (f->name, name) == 0)
      return f;
  return NULL;
}

static enum MHD_Result
respond_web_file (LensdRequest * req, const LensdWebFile * file)
{
  struct MHD_Response *response = MHD_create_response_from_buffer
      (file->size, (void *) file->data, MHD_RESPMEM_PERSISTENT);

  if (!response)
    return MHD_NO;
  MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE,
      file->content_type);
  MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
  return request_respond (req, MHD_HTTP_OK, response);
}

static enum MHD_Result
handle_index (LensdRequest * req)
{
  return respond_web_file (req, web_file_lookup ("index.html"));
}

static enum MHD_Result
handle_static (LensdRequest * req)
{
  const LensdWebFile *file = web_file_lookup (req->name);

  if (!file || strcmp (file->name, "index.html") == 0)
    return request_error (req, MHD_HTTP_NOT_FOUND, "no file '%s'", req->name);
  return respond_web_file (req, file);
}

/* ---- routing ------------------------------------------------------------- */

static const gchar *const detections_params[] = { "since", "wait", NULL };
static const gchar *const snapshot_params[] = { "overlay", NULL };
static const gchar *const heatmap_params[] = { "level", "kind", "scale",
  NULL
};
static const gchar *const featuremaps_params[] = { "level", NULL };
static const gchar *const mjpeg_params[] = { "fps", NULL };

static const LensdRoute routes[] = {
  {ROUTE_GET, "/", handle_index, NULL},
  {ROUTE_GET, "/static/{file}", handle_static, NULL},
  {ROUTE_GET, "/healthz", handle_healthz, NULL},
  {ROUTE_GET, "/readyz", handle_readyz, NULL},
  {ROUTE_GET, "/metrics", handle_metrics, NULL},
  {ROUTE_GET, "/api/v1/info", handle_info, NULL},
  {ROUTE_GET, "/api/v1/streams", handle_streams_list, NULL},
  {ROUTE_POST, "/api/v1/streams", handle_streams_add, NULL},
  {ROUTE_GET, "/api/v1/streams/{name}", handle_stream_get, NULL},
  {ROUTE_DELETE, "/api/v1/streams/{name}", handle_stream_delete, NULL},
  {ROUTE_GET, "/api/v1/streams/{name}/detections", handle_detections,
      detections_params},
  {ROUTE_GET, "/api/v1/streams/{name}/events", handle_events, NULL},
  {ROUTE_GET, "/api/v1/streams/{name}/snapshot.jpg", handle_snapshot,
      snapshot_params},
  {ROUTE_GET, "/api/v1/streams/{name}/heatmap.png", handle_heatmap,
      heatmap_params},
  {ROUTE_GET, "/api/v1/streams/{name}/featuremaps.png", handle_featuremaps,
      featuremaps_params},
  {ROUTE_GET, "/api/v1/streams/{name}/mjpeg", handle_mjpeg, mjpeg_params},
};

/* Whether @path matches @pattern segment by segment; the one variable
 * segment (a name or file) goes to @variable. */
static gboolean
route_matches (const gchar * pattern, const gchar * path, gchar ** variable)
{
  gchar **ps = g_strsplit (pattern, "/", -1);
  gchar **us = g_strsplit (path, "/", -1);
  gboolean ok = g_strv_length (ps) == g_strv_length (us);

  *variable = NULL;
  for (guint i = 0; ok && ps[i]; i++) {
    if (ps[i][0] == '{') {
      ok = us[i][0] != '\0';
      if (ok) {
        g_free (*variable);
        *variable = g_strdup (us[i]);
      }
    } else {
      ok = strcmp (ps[i], us[i]) == 0;
    }
  }
  if (!ok)
    g_clear_pointer (variable, g_free);
  g_strfreev (ps);
  g_strfreev (us);
  return ok;
}

static LensdRouteMethod
method_from_string (const gchar * method)
{
  if (strcmp (method, MHD_HTTP_METHOD_GET) == 0
      || strcmp (method, MHD_HTTP_METHOD_HEAD) == 0)
    return ROUTE_GET;
  if (strcmp (method, MHD_HTTP_METHOD_POST) == 0)
    return ROUTE_POST;
  if (strcmp (method, MHD_HTTP_METHOD_DELETE) == 0)
    return ROUTE_DELETE;
  return 0;
}

/* The route for @method on @path, its variable segment in @variable; NULL
 * when none, @allowed then saying which methods the path takes (0: no
 * such path). */
static const LensdRoute *
route_lookup (const gchar * method, const gchar * path,
    LensdRouteMethod * allowed, gchar ** variable)
{
  LensdRouteMethod want = method_from_string (method);
  const LensdRoute *found = NULL;

  *allowed = 0;
  *variable = NULL;
  for (guint i = 0; i < G_N_ELEMENTS (routes); i++) {
    gchar *v = NULL;

    if (!route_matches (routes[i].pattern, path, &v))
      continue;
    *allowed |= routes[i].method;
    if (routes[i].method == want && !found) {
      found = &routes[i];
      *variable = v;
    } else {
      g_free (v);
    }
  }
  return found;
}

guint
lensd_http_route_status (const gchar * method, const gchar * path,
    const gchar * const *params)
{
  LensdRouteMethod allowed;
  gchar *variable;
  const LensdRoute *route;
  guint status = MHD_HTTP_OK;

  g_return_val_if_fail (method != NULL && path != NULL, 0);
  route = route_lookup (method, path, &allowed, &variable);
  g_free (variable);
  if (!route)
    return allowed ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
  for (guint i = 0; params && params[i] && status == MHD_HTTP_OK; i++)
    if (!route_takes_param (route, params[i]))
      status = MHD_HTTP_BAD_REQUEST;
  return status;
}

static enum MHD_Result
respond_method_not_allowed (LensdRequest * req, const gchar * method,
    const gchar * path, LensdRouteMethod allowed)
{
  GString *allow = g_string_new (NULL);
  struct MHD_Response *response;
  gchar *detail;

  if (allowed & ROUTE_GET)
    g_string_append (allow, "GET, HEAD");
  if (allowed & ROUTE_POST)
    g_string_append_printf (allow, "%sPOST", allow->len ? ", " : "");
  if (allowed & ROUTE_DELETE)
    g_string_append_printf (allow, "%sDELETE", allow->len ? ", " : "");
  detail = g_strdup_printf ("%s is not allowed on %s (allowed: %s)", method,
      path, allow->str);
  response = response_error (MHD_HTTP_METHOD_NOT_ALLOWED, detail);
  if (response)
    MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, allow->str);
  g_free (detail);
  g_string_free (allow, TRUE);
  return request_respond (req, MHD_HTTP_METHOD_NOT_ALLOWED, response);
}

static enum MHD_Result
respond_unauthorized (LensdRequest * req)
{
  struct MHD_Response *response = response_error (MHD_HTTP_UNAUTHORIZED,
      "this route needs 'Authorization: Bearer <token>' (or ?token=)");

  if (response)
    MHD_add_response_header (response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
        "Bearer realm=\"lensd\"");
  return request_respond (req, MHD_HTTP_UNAUTHORIZED, response);
}

/* The checks every request goes through, on its first call: size, route,
 * method, token, query, stream. TRUE: go on to the handler (for POST:
 * once the body is in); FALSE: answered (in @ret). */
static gboolean
request_route (LensdRequest * req, const gchar * url, const gchar * method,
    enum MHD_Result *ret)
{
  LensdRouteMethod want = method_from_string (method);
  LensdRouteMethod allowed;
  gchar *variable;

  if (req->uri_length > MAX_URI_BYTES) {
    *ret = request_error (req, MHD_HTTP_URI_TOO_LONG,
        "the URI is %" G_GSIZE_FORMAT " bytes long (at most %d)",
        req->uri_length, MAX_URI_BYTES);
    return FALSE;
  }
  /* the token guards /api before anything else, so that without it not
   * even which names exist can be probed */
  if (req->http->token && (g_str_has_prefix (url, "/api/")
          || strcmp (url, "/api") == 0) && !request_authorized (req)) {
    *ret = respond_unauthorized (req);
    return FALSE;
  }
  req->route = route_lookup (method, url, &allowed, &variable);
  if (!req->route) {
    if (allowed)
      *ret = respond_method_not_allowed (req, method, url, allowed);
    else
      *ret = request_error (req, MHD_HTTP_NOT_FOUND, "no route %s", url);
    return FALSE;
  }
  req->name = variable;
  if (!request_check_query (req, ret))
    return FALSE;
  if (strstr (req->route->pattern, "{name}")) {
    req->stream = lensd_daemon_get_stream (req->http->daemon, req->name);
    if (!req->stream) {
      *ret = request_error (req, MHD_HTTP_NOT_FOUND, "no stream '%s'",
          req->name);
      return FALSE;
    }
  }
  if (want == ROUTE_POST) {
    const gchar *length = MHD_lookup_connection_value (req->connection,
        MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    guint64 n;

    if (length && g_ascii_string_to_unsigned (length, 10, 0, G_MAXUINT64, &n,
            NULL) && n > MAX_BODY_BYTES) {
      *ret = request_error (req, MHD_HTTP_CONTENT_TOO_LARGE,
          "the body is %" G_GUINT64_FORMAT " bytes (at most %d)", n,
          MAX_BODY_BYTES);
      return FALSE;
    }
    req->body = g_string_new (NULL);
  }
  return TRUE;
}

static gboolean
request_has_body (struct MHD_Connection *connection)
{
  const gchar *length = MHD_lookup_connection_value (connection,
      MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

  return (length && strcmp (length, "0") != 0)
      || MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
      MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
}

static enum MHD_Result http_access_phase (LensdRequest * req,
    const char *url, const char *method, const char *upload_data,
    size_t *upload_data_size);

static enum MHD_Result
http_access (void *cls, struct MHD_Connection *connection, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
  LensdRequest *req = *con_cls;
  LensdConnection *conn;
  enum MHD_Result ret;

  if (!req)
    return MHD_NO;
  req->connection = connection;
  ret = http_access_phase (req, url, method, upload_data, upload_data_size);
  /* the request is whole (or answered): its deadline is over */
  if (req->phase != REQUEST_BODY && (conn = connection_of (connection)))
    connection_set_deadline (conn, FALSE);
  return ret;
}

static enum MHD_Result
http_access_phase (LensdRequest * req, const char *url, const char *method,
    const char *upload_data, size_t *upload_data_size)
{
  enum MHD_Result ret = MHD_YES;

  switch (req->phase) {
    case REQUEST_NEW:
      /* libmicrohttpd keeps a connection alive only for answers queued
       * after the first call; one with a body is checked at once, so
       * that a refused body is not read (and the connection closes) */
      if (!request_has_body (req->connection)) {
        req->phase = REQUEST_HEADERS;
        return MHD_YES;
      }
      /* fall through */
    case REQUEST_HEADERS:
      if (!request_route (req, url, method, &ret))
        return ret;
      if (req->body && req->phase == REQUEST_NEW) {
        req->phase = REQUEST_BODY;
        return MHD_YES;
      }
      req->phase = REQUEST_STREAMING;
      return req->route->handler (req);
    case REQUEST_BODY:
      if (*upload_data_size > 0) {
        req->body_received += *upload_data_size;
        /* MHD cannot answer in the middle of a body: what is over the
         * limit is read and dropped, up to a point, then the connection
         * is closed without an answer */
        if (req->body_received > MAX_DISCARDED_BYTES)
          return MHD_NO;
        if (req->body_received <= MAX_BODY_BYTES)
          g_string_append_len (req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
      }
      req->phase = REQUEST_STREAMING;
      if (req->body_received > MAX_BODY_BYTES)
        return request_error (req, MHD_HTTP_CONTENT_TOO_LARGE,
            "the body is over %d bytes", MAX_BODY_BYTES);
      return req->route->handler (req);
    case REQUEST_LONG_POLL:
      return long_poll_answer (req);
    case REQUEST_STREAMING:
    default:
      /* MHD calls again only while no response is queued */
      *upload_data_size = 0;
      return MHD_YES;
  }
}

/* MHD reads the request line: the request's state starts here, with the
 * URI's full length (query included) for the 414 check. */
static void *
http_request_start (void *cls, const char *uri, struct MHD_Connection *con)
{
  LensdHttp *http = cls;
  LensdRequest *req = g_new0 (LensdRequest, 1);

  req->ref_count = 1;
  req->http = http;
  req->connection = con;
  req->uri_length = strlen (uri);
  g_mutex_init (&req->lock);
  g_queue_init (&req->chunks);
  g_mutex_lock (&http->lock);
  http->requests = g_list_prepend (http->requests, req);
  g_mutex_unlock (&http->lock);
  return req;
}

static void
http_request_completed (void *cls, struct MHD_Connection *connection,
    void **con_cls, enum MHD_RequestTerminationCode toe)
{
  LensdHttp *http = cls;
  LensdRequest *req = *con_cls;
  LensdConnection *conn;

  if (!req)
    return;
  *con_cls = NULL;
  g_mutex_lock (&http->lock);
  http->requests = g_list_remove (http->requests, req);
  g_mutex_unlock (&http->lock);
  request_stop_waiting (req);
  request_unref (req);
  /* a kept-alive connection's next request has its own deadline */
  if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK
      && (conn = connection_of (connection)))
    connection_set_deadline (conn, TRUE);
}

static void
http_log (void *cls, const char *format, va_list args)
{
  gchar *text = g_strdup_vprintf (format, args);

  g_strchomp (text);
  /* clients can provoke these (oversized requests, resets): info, not
   * a warning each time */
  g_info ("http: %s", text);
  g_free (text);
}

static gboolean
timer_loop_quit (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static gpointer
timer_thread_main (gpointer data)
{
  LensdHttp *http = data;

  g_main_context_push_thread_default (http->timer_context);
  g_main_loop_run (http->timer_loop);
  g_main_context_pop_thread_default (http->timer_context);
  return NULL;
}

/* The listen address of the config as a socket address. */
static GSocketAddress *
listen_address (const LensdConfig * config, GError ** error)
{
  const gchar *host = config->listen_host ? config->listen_host : "127.0.0.1";
  GInetAddress *address = g_inet_address_new_from_string (host);
  GSocketAddress *sa;

  if (!address) {
    GResolver *resolver = g_resolver_get_default ();
    GList *list = g_resolver_lookup_by_name (resolver, host, NULL, error);

    g_object_unref (resolver);
    if (!list) {
      g_prefix_error (error, "listen address %s: ", host);
      return NULL;
    }
    address = g_object_ref (list->data);
    g_resolver_free_addresses (list);
  }
  sa = g_inet_socket_address_new (address, config->listen_port);
  g_object_unref (address);
  return sa;
}

static guint16
socket_port (int fd, gboolean * ipv6)
{
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;

  *ipv6 = FALSE;
  if (fd < 0 || getsockname (fd, (struct sockaddr *) &ss, &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET6) {
    *ipv6 = TRUE;
    return g_ntohs (((struct sockaddr_in6 *) &ss)->sin6_port);
  }
  if (ss.ss_family == AF_INET)
    return g_ntohs (((struct sockaddr_in *) &ss)->sin_port);
  return 0;
}

/* A @listen_fd (socket activation) belongs to the server once it runs:
 * libmicrohttpd closes it when it stops. */
LensdHttp *
lensd_http_new (LensdDaemon * daemon, int listen_fd, GError ** error)
{
  const LensdConfig *config = lensd_daemon_get_config (daemon);
  LensdHttp *http = g_new0 (LensdHttp, 1);
  struct sockaddr_storage ss;
  GSocketAddress *sa = NULL;
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL
      | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  guint threads = config->threads ? config->threads : g_get_num_processors ();
  gboolean ipv6 = FALSE;
  const union MHD_DaemonInfo *info;

  http->daemon = daemon;
  http->token = config->token && config->token[0] ?
      g_strdup (config->token) : NULL;
  g_mutex_init (&http->lock);
  http->counters = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  http->timer_context = g_main_context_new ();
  http->timer_loop = g_main_loop_new (http->timer_context, FALSE);
  http->timer_thread = g_thread_new ("lensd-http-timer", timer_thread_main,
      http);

  if (listen_fd < 0) {
    if (!(sa = listen_address (config, error)))
      goto failed;
    if (!g_socket_address_to_native (sa, &ss, sizeof ss, error))
      goto failed;
    ipv6 = ss.ss_family == AF_INET6;
  } else {
    socket_port (listen_fd, &ipv6);
  }
  if (ipv6)
    flags |= MHD_USE_IPv6;

  /* the same options either way; the listen socket's comes last */
#define LENSD_HTTP_OPTIONS \
      MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL, \
      MHD_OPTION_NOTIFY_COMPLETED, http_request_completed, http, \
      MHD_OPTION_NOTIFY_CONNECTION, http_connection_notify, http, \
      MHD_OPTION_URI_LOG_CALLBACK, http_request_start, http, \
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int) (config->max_connections ? \
          config->max_connections : 1000), \
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, \
          (unsigned int) config->max_connections_per_ip, \
      MHD_OPTION_CONNECTION_TIMEOUT, \
          (unsigned int) config->connection_timeout_s, \
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY_BYTES, \
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) (threads > 1 ? threads : 0)
  if (listen_fd >= 0)
    http->mhd = MHD_start_daemon (flags, 0, NULL, NULL, http_access, http,
        LENSD_HTTP_OPTIONS, MHD_OPTION_LISTEN_SOCKET, (MHD_socket) listen_fd,
        MHD_OPTION_END);
  else
    http->mhd = MHD_start_daemon (flags, 0, NULL, NULL, http_access, http,
        LENSD_HTTP_OPTIONS, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
        MHD_OPTION_END);
#undef LENSD_HTTP_OPTIONS
  if (!http->mhd) {
    gchar *where = listen_fd >= 0 ? g_strdup_printf ("socket fd %d",
        listen_fd) : g_strdup_printf ("%s:%u", config->listen_host ?
        config->listen_host : "127.0.0.1", config->listen_port);

    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "HTTP cannot listen on %s (address in use, not permitted, or no "
        "such address)", where);
    g_free (where);
    goto failed;
  }
  info = MHD_get_daemon_info (http->mhd, MHD_DAEMON_INFO_BIND_PORT);
  http->port = info ? info->port : 0;
  if (http->port == 0) {
    info = MHD_get_daemon_info (http->mhd, MHD_DAEMON_INFO_LISTEN_FD);
    if (info)
      http->port = socket_port (info->listen_fd, &ipv6);
  }
  g_clear_object (&sa);
  return http;

failed:
  g_clear_object (&sa);
  lensd_http_free (http);
  return NULL;
}

void
lensd_http_free (LensdHttp * http)
{
  GList *waiting = NULL;
  GSource *quit;

  if (!http)
    return;
  /* MHD must not be stopped with suspended connections: every waiting
   * request is woken and, seeing @stopping, ends */
  g_mutex_lock (&http->lock);
  g_atomic_int_set (&http->stopping, 1);
  for (GList * l = http->requests; l; l = l->next)
    waiting = g_list_prepend (waiting, request_ref (l->data));
  g_mutex_unlock (&http->lock);
  for (GList * l = waiting; l; l = l->next) {
    LensdRequest *req = l->data;

    g_mutex_lock (&req->lock);
    request_wake_locked (req);
    g_mutex_unlock (&req->lock);
  }
  g_list_free_full (waiting, request_unref_notify);
  if (http->mhd)
    MHD_stop_daemon (http->mhd);

  /* through the context: a quit before the thread runs the loop would
   * be lost */
  quit = g_idle_source_new ();
  g_source_set_callback (quit, timer_loop_quit, http->timer_loop, NULL);
  g_source_attach (quit, http->timer_context);
  g_source_unref (quit);
  g_thread_join (http->timer_thread);
  g_main_loop_unref (http->timer_loop);
  g_main_context_unref (http->timer_context);
  g_hash_table_unref (http->counters);
  g_list_free (http->requests);
  g_mutex_clear (&http->lock);
  g_free (http->token);
  g_free (http);
}

guint16
lensd_http_get_port (LensdHttp * http)
{
  return http->port;
}
