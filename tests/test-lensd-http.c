/* test-lensd-http.c: lensd's HTTP API (daemon/lensd-http.c,
 * lensd-metrics.c) over loopback with a raw socket client: every route
 * and error code, 405 with Allow, the size limits (body, URI, headers),
 * unknown and bad query parameters, the bearer token, long-polls that
 * return on a new frame or time out with 204, Server-Sent Events, MJPEG
 * parts, a stream removed while clients wait on it, the metrics text and
 * the embedded web files. The daemon serves one stream, "ball", that
 * publishes frames continuously. */
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "lens-check.h"
#include <gio/gio.h>
#include <glib/gstdio.h>

#include "lensd.h"

#define READ_TIMEOUT_S 20
#define CONN_LIFETIME_S 45

/* ---- the daemon under test ------------------------------------------------ */

typedef struct
{
  GMainContext *context;
  GMainLoop *loop;
  GThread *thread;
  LensdDaemon *daemon;
  LensdHttp *http;
  guint16 port;
  const gchar *host;            /* to connect to */
  gchar *token_path;
} TestServer;

static TestServer server;

static const gchar *base_config =
    "[server]\n"
    "listen=%s\n"
    "threads=2\n"
    "%s"
    "[stream ball]\n"
    "pipeline=videotestsrc pattern=ball is-live=true ! "
    "video/x-raw,width=160,height=120,framerate=25/1\n";

static gpointer
loop_main (gpointer data)
{
  g_main_context_push_thread_default (server.context);
  g_main_loop_run (server.loop);
  g_main_context_pop_thread_default (server.context);
  return NULL;
}

/* FALSE when HTTP cannot listen on @listen and @may_fail. @server_keys:
 * more [server] lines; @token: written to a token-file. */
static gboolean
server_start_on (const gchar * listen, const gchar * host,
    const gchar * server_keys, const gchar * token, gboolean may_fail)
{
  GError *error = NULL;
  gchar *extra;
  gchar *text;
  LensdConfig *config;

  memset (&server, 0, sizeof server);
  server.host = host;
  if (token) {
    gint fd = g_file_open_tmp ("lensd-token-XXXXXX", &server.token_path,
        &error);

    ck_assert_msg (fd >= 0, "expected a temporary file: %s",
        error ? error->message : "");
    close (fd);
    ck_assert (g_file_set_contents (server.token_path, token, -1, NULL));
    extra = g_strdup_printf ("%stoken-file=%s\n", server_keys,
        server.token_path);
  } else {
    extra = g_strdup (server_keys);
  }
  text = g_strdup_printf (base_config, listen, extra);
  config = lensd_config_parse (text, strlen (text), "test.conf", &error);
  ck_assert_msg (config != NULL, "expected the test config to parse: %s",
      error ? error->message : "");
  g_free (text);
  g_free (extra);

  server.context = g_main_context_new ();
  server.loop = g_main_loop_new (server.context, FALSE);
  server.thread = g_thread_new ("test-loop", loop_main, NULL);
  server.daemon = lensd_daemon_new (config, server.context, &error);
  ck_assert_msg (server.daemon != NULL, "expected a daemon: %s",
      error ? error->message : "");
  server.http = lensd_http_new (server.daemon, -1, &error);
  if (!server.http && may_fail) {
    g_printerr ("HTTP cannot listen on %s, skipped: %s\n", listen,
        error->message);
    g_error_free (error);
    return FALSE;
  }
  ck_assert_msg (server.http != NULL, "expected HTTP to listen: %s",
      error ? error->message : "");
  server.port = lensd_http_get_port (server.http);
  ck_assert_msg (server.port != 0, "expected the real port of :0");
  return TRUE;
}

static void
server_start (const gchar * server_keys, const gchar * token)
{
  server_start_on ("127.0.0.1:0", "127.0.0.1", server_keys, token, FALSE);
}

static void
setup (void)
{
  server_start ("", NULL);
  lensd_daemon_set_ready (server.daemon, TRUE);
}

static void
setup_token (void)
{
  server_start ("", "s3cret-token\n");
  lensd_daemon_set_ready (server.daemon, TRUE);
}

static void
setup_not_ready (void)
{
  server_start ("", NULL);
}

/* short timeouts and a small per-address limit */
static void
setup_protections (void)
{
  server_start ("connection-timeout=2\nmax-connections-per-ip=3\n", NULL);
  lensd_daemon_set_ready (server.daemon, TRUE);
}

/* the per-address limit alone: connections held open must not be cut by
 * the idle timeout however slowly the test runs (sanitizers, a busy CI
 * machine) */
static void
setup_ip_limit (void)
{
  server_start ("connection-timeout=60\nmax-connections-per-ip=3\n", NULL);
  lensd_daemon_set_ready (server.daemon, TRUE);
}

static gboolean
loop_quit (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
teardown (void)
{
  GSource *quit;

  lensd_http_free (server.http);
  lensd_daemon_free (server.daemon);
  /* through the context: a quit before the loop runs would be lost */
  quit = g_idle_source_new ();
  g_source_set_callback (quit, loop_quit, server.loop, NULL);
  g_source_attach (quit, server.context);
  g_source_unref (quit);
  g_thread_join (server.thread);
  g_main_loop_unref (server.loop);
  g_main_context_unref (server.context);
  if (server.token_path) {
    g_unlink (server.token_path);
    g_free (server.token_path);
  }
}

/* ---- a raw HTTP client ----------------------------------------------------- */

typedef struct
{
  GSocketConnection *connection;
  GSocket *socket;
  GString *raw;                 /* everything read */
  gsize body_start;             /* in @raw, once the head is in */
  guint status;
  gchar *head;
  gboolean chunked;
  GString *body;                /* de-chunked */
  gsize raw_used;               /* of @raw, decoded into @body */
  gboolean eof;
  gint64 deadline;              /* monotonic: reading gives up then */
} TestConn;

static TestConn *
conn_open (void)
{
  GSocketClient *client = g_socket_client_new ();
  GError *error = NULL;
  TestConn *c = g_new0 (TestConn, 1);

  /* loopback only: no proxy lookups */
  g_socket_client_set_enable_proxy (client, FALSE);
  c->connection = g_socket_client_connect_to_host (client, server.host,
      server.port, NULL, &error);
  ck_assert_msg (c->connection != NULL, "expected to connect to port %u: %s",
      server.port, error ? error->message : "");
  g_object_unref (client);
  c->socket = g_socket_connection_get_socket (c->connection);
  g_socket_set_timeout (c->socket, READ_TIMEOUT_S);
  /* a bound for loops that read while data keeps coming */
  c->deadline = g_get_monotonic_time () + CONN_LIFETIME_S * G_USEC_PER_SEC;
  c->raw = g_string_new (NULL);
  c->body = g_string_new (NULL);
  return c;
}

static void
conn_close (TestConn * c)
{
  g_object_unref (c->connection);
  g_string_free (c->raw, TRUE);
  g_string_free (c->body, TRUE);
  g_free (c->head);
  g_free (c);
}

static void
conn_send (TestConn * c, const gchar * data, gsize length)
{
  GError *error = NULL;
  gsize done = 0;

  while (done < length) {
    gssize n = g_socket_send (c->socket, data + done, length - done, NULL,
        &error);

    if (n <= 0) {
      /* the server may answer and close before it has read everything
       * (an early 413): that is not the client's failure */
      g_clear_error (&error);
      return;
    }
    done += n;
  }
}

/* Decodes what has arrived of a chunked body into @c->body. */
static void
conn_dechunk (TestConn * c)
{
  while (c->raw_used < c->raw->len) {
    const gchar *p = c->raw->str + c->raw_used;
    const gchar *eol = g_strstr_len (p, c->raw->len - c->raw_used, "\r\n");
    guint64 size;
    gchar *line;

    if (!eol)
      return;
    line = g_strndup (p, eol - p);
    size = g_ascii_strtoull (line, NULL, 16);
    g_free (line);
    if (size == 0) {
      c->eof = TRUE;
      return;
    }
    if ((gsize) (eol + 2 - c->raw->str) + size + 2 > c->raw->len)
      return;
    g_string_append_len (c->body, eol + 2, size);
    c->raw_used = (eol + 2 - c->raw->str) + size + 2;
  }
}

/* Reads once more (up to the timeout); FALSE at the end or a timeout. */
static gboolean
conn_read_more (TestConn * c)
{
  gchar buf[16384];
  GError *error = NULL;
  gssize n;

  if (c->eof || g_get_monotonic_time () > c->deadline)
    return FALSE;
  n = g_socket_receive (c->socket, buf, sizeof buf, NULL, &error);
  if (n <= 0) {
    g_clear_error (&error);
    c->eof = TRUE;
    return FALSE;
  }
  g_string_append_len (c->raw, buf, n);
  if (!c->head) {
    const gchar *end = strstr (c->raw->str, "\r\n\r\n");

    if (!end)
      return TRUE;
    c->head = g_strndup (c->raw->str, end + 2 - c->raw->str);
    c->body_start = c->raw_used = end + 4 - c->raw->str;
    ck_assert_msg (sscanf (c->head, "HTTP/1.%*d %u", &c->status) == 1,
        "expected a status line, got %.40s", c->head);
    c->chunked = strstr (c->head, "Transfer-Encoding: chunked") != NULL;
  }
  if (c->chunked) {
    conn_dechunk (c);
  } else {
    g_string_append_len (c->body, c->raw->str + c->raw_used,
        c->raw->len - c->raw_used);
    c->raw_used = c->raw->len;
  }
  return TRUE;
}

static void
conn_read_head (TestConn * c)
{
  while (!c->head && conn_read_more (c));
  ck_assert_msg (c->head != NULL, "expected a response head, got %" G_GSIZE_FORMAT
      " bytes", c->raw->len);
}

static void
conn_read_all (TestConn * c)
{
  while (conn_read_more (c));
  ck_assert_msg (c->head != NULL, "expected a response, got %" G_GSIZE_FORMAT
      " bytes", c->raw->len);
}

/* The value of header @name in @c's head, or NULL (a new string). */
static gchar *
conn_header (TestConn * c, const gchar * name)
{
  gchar **lines = g_strsplit (c->head, "\r\n", -1);
  gchar *value = NULL;
  gsize n = strlen (name);

  for (guint i = 1; lines[i] && !value; i++)
    if (g_ascii_strncasecmp (lines[i], name, n) == 0 && lines[i][n] == ':')
      value = g_strstrip (g_strdup (lines[i] + n + 1));
  g_strfreev (lines);
  return value;
}

static void
conn_request (TestConn * c, const gchar * method, const gchar * path,
    const gchar * version, const gchar * headers, const gchar * body,
    gsize body_length)
{
  gchar *length = body ? g_strdup_printf ("Content-Length: %" G_GSIZE_FORMAT
      "\r\n", body_length) : g_strdup ("");
  gchar *request = g_strdup_printf ("%s %s %s\r\nHost: 127.0.0.1\r\n%s%s\r\n",
      method, path, version, headers ? headers : "", length);

  g_free (length);

  conn_send (c, request, strlen (request));
  if (body)
    conn_send (c, body, body_length);
  g_free (request);
}

/* One request over its own connection, read to the end (HTTP/1.0, so
 * the server closes after it). */
static TestConn *
request (const gchar * method, const gchar * path, const gchar * headers,
    const gchar * body)
{
  TestConn *c = conn_open ();

  conn_request (c, method, path, "HTTP/1.0", headers, body,
      body ? strlen (body) : 0);
  conn_read_all (c);
  return c;
}

static JsonNode *
parse_json (TestConn * c)
{
  JsonParser *parser = json_parser_new ();
  GError *error = NULL;
  JsonNode *root;

  ck_assert_msg (json_parser_load_from_data (parser, c->body->str,
          c->body->len, &error), "expected JSON, got '%.200s': %s",
      c->body->str, error ? error->message : "");
  root = json_node_copy (json_parser_get_root (parser));
  g_object_unref (parser);
  return root;
}

/* Asserts @c answered @status with an error document whose detail
 * contains @needle (when given). */
static void
assert_error (TestConn * c, guint status, const gchar * needle)
{
  JsonNode *root;
  JsonObject *o;

  ck_assert_msg (c->status == status, "expected %u, got %u: %.200s", status,
      c->status, c->body->str);
  root = parse_json (c);
  ck_assert_msg (JSON_NODE_HOLDS_OBJECT (root), "expected an error object");
  o = json_node_get_object (root);
  ck_assert_msg (json_object_has_member (o, "error")
      && json_object_has_member (o, "detail"),
      "expected {error, detail}, got %s", c->body->str);
  if (needle)
    ck_assert_msg (strstr (json_object_get_string_member (o, "detail"),
            needle) != NULL, "expected the detail to name '%s': %s", needle,
        c->body->str);
  json_node_unref (root);
}

static void
expect_error (const gchar * method, const gchar * path, const gchar * headers,
    const gchar * body, guint status, const gchar * needle)
{
  TestConn *c = request (method, path, headers, body);

  assert_error (c, status, needle);
  conn_close (c);
}

/* The seq of the next frame of @stream (a long-poll from now). */
static guint64
wait_frame (const gchar * stream, guint64 since)
{
  gchar *path = g_strdup_printf ("/api/v1/streams/%s/detections?since=%"
      G_GUINT64_FORMAT "&wait=30000", stream, since);
  TestConn *c = request ("GET", path, NULL, NULL);
  JsonNode *root;
  guint64 seq;

  ck_assert_msg (c->status == 200, "expected a frame of %s after %"
      G_GUINT64_FORMAT ", got %u: %s", stream, since, c->status,
      c->body->str);
  root = parse_json (c);
  seq = json_object_get_int_member (json_node_get_object (root), "seq");
  ck_assert_msg (seq > since, "expected seq > %" G_GUINT64_FORMAT ", got %"
      G_GUINT64_FORMAT, since, seq);
  json_node_unref (root);
  conn_close (c);
  g_free (path);
  return seq;
}

static guint count (const gchar * haystack, gsize length,
    const gchar * needle);

/* ---- service -------------------------------------------------------------- */

START_TEST (test_healthz)
{
  TestConn *c = request ("GET", "/healthz", NULL, NULL);
  gchar *type = conn_header (c, "Content-Type");

  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  ck_assert_str_eq (type, "application/json");
  ck_assert_msg (strstr (c->body->str, "\"status\":\"ok\"") != NULL,
      "expected status ok, got %s", c->body->str);
  g_free (type);
  conn_close (c);
}
END_TEST

START_TEST (test_readyz)
{
  TestConn *c;

  expect_error ("GET", "/readyz", NULL, NULL, 503, "starting");
  lensd_daemon_set_ready (server.daemon, TRUE);
  c = request ("GET", "/readyz", NULL, NULL);
  ck_assert_msg (c->status == 200, "expected 200 once ready, got %u",
      c->status);
  conn_close (c);
}
END_TEST

START_TEST (test_info)
{
  TestConn *c = request ("GET", "/api/v1/info", NULL, NULL);
  JsonNode *root;

  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  root = parse_json (c);
  ck_assert_str_eq (json_object_get_string_member (json_node_get_object
          (root), "version"), LENSD_VERSION);
  json_node_unref (root);
  conn_close (c);
}
END_TEST

/* Every line a comment or "name{labels} value"; the families the API
 * promises are there. */
START_TEST (test_metrics)
{
  GRegex *sample = g_regex_new ("^[a-zA-Z_:][a-zA-Z0-9_:]*"
      "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\\n]|\\\\.)*\""
      "(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\\n]|\\\\.)*\")*\\})? "
      "(NaN|[+-]Inf|[-+]?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?)$", 0, 0, NULL);
  GRegex *comment = g_regex_new ("^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$",
      0, 0, NULL);
  static const gchar *expected[] = {
    "lensd_stream_fps_in{stream=\"ball\"} ",
    "lensd_stream_fps_out{stream=\"ball\"} ",
    "lensd_frames_total{stream=\"ball\"} ",
    "lensd_frames_dropped_total{stream=\"ball\",reason=\"busy\"} ",
    "lensd_frames_dropped_total{stream=\"ball\",reason=\"interval\"} ",
    "lensd_frames_dropped_total{stream=\"ball\",reason=\"failed\"} ",
    "lensd_inference_seconds_bucket{stream=\"ball\",le=\"+Inf\"} ",
    "lensd_inference_seconds_sum{stream=\"ball\"} ",
    "lensd_inference_seconds_count{stream=\"ball\"} ",
    "lensd_stream_reconnects_total{stream=\"ball\"} ",
    "lensd_stream_state{stream=\"ball\",state=\"streaming\"} ",
    "lensd_http_requests_total{route=\"/healthz\",code=\"200\"} 1\n",
    "# TYPE lensd_inference_seconds histogram\n",
  };
  TestConn *c;
  gchar **lines;
  gchar *type;

  /* one counted request, and a frame so the histogram has samples */
  conn_close (request ("GET", "/healthz", NULL, NULL));
  wait_frame ("ball", 0);
  c = request ("GET", "/metrics", NULL, NULL);
  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  type = conn_header (c, "Content-Type");
  ck_assert_msg (g_str_has_prefix (type, "text/plain; version=0.0.4"),
      "expected the Prometheus text type, got %s", type);
  g_free (type);
  lines = g_strsplit (c->body->str, "\n", -1);
  for (guint i = 0; lines[i]; i++) {
    if (lines[i][0] == '\0' && !lines[i + 1])
      break;
    ck_assert_msg (g_regex_match (sample, lines[i], 0, NULL)
        || g_regex_match (comment, lines[i], 0, NULL),
        "expected a sample or a comment on line %u: '%s'", i + 1, lines[i]);
  }
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    ck_assert_msg (strstr (c->body->str, expected[i]) != NULL,
        "expected '%s' in the metrics", expected[i]);
  g_strfreev (lines);
  g_regex_unref (sample);
  g_regex_unref (comment);
  conn_close (c);
}
END_TEST

/* ---- routing and limits ------------------------------------------------- */

START_TEST (test_not_found)
{
  expect_error ("GET", "/nope", NULL, NULL, 404, "/nope");
  expect_error ("GET", "/api/v1/streams/", NULL, NULL, 404, NULL);
  expect_error ("GET", "/api/v1/streams/nope", NULL, NULL, 404, "nope");
  expect_error ("GET", "/api/v1/streams/nope/detections", NULL, NULL, 404,
      "nope");
  expect_error ("DELETE", "/api/v1/streams/nope", NULL, NULL, 404, "nope");
  /* bytes that are not UTF-8 still give a JSON document */
  expect_error ("GET", "/api/v1/streams/%ff%fe", NULL, NULL, 404, NULL);
  expect_error ("GET", "/%c3%28", NULL, NULL, 404, NULL);
}
END_TEST

/* HTTP/1.1 connections stay open for the next request. */
START_TEST (test_keep_alive)
{
  TestConn *c = conn_open ();
  const gchar *two = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /api/v1/streams HTTP/1.1\r\nHost: x\r\n\r\n";

  conn_send (c, two, strlen (two));
  while (count (c->raw->str, c->raw->len, "HTTP/1.1 200 OK\r\n") < 2
      && conn_read_more (c));
  ck_assert_msg (count (c->raw->str, c->raw->len, "HTTP/1.1 200 OK\r\n") == 2,
      "expected two answers on one connection, got '%s'", c->raw->str);
  ck_assert_msg (strstr (c->raw->str, "Connection: close") == NULL,
      "expected the connection kept alive");
  conn_close (c);
}
END_TEST

START_TEST (test_method_not_allowed)
{
  static const struct
  {
    const gchar *method, *path, *allow;
  } cases[] = {
    {"DELETE", "/api/v1/streams", "GET, HEAD, POST"},
    {"PUT", "/api/v1/streams/ball", "GET, HEAD, DELETE"},
    {"POST", "/healthz", "GET, HEAD"},
    {"POST", "/api/v1/streams/ball/snapshot.jpg", "GET, HEAD"},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    TestConn *c = request (cases[i].method, cases[i].path, NULL, NULL);
    gchar *allow;

    assert_error (c, 405, cases[i].method);
    allow = conn_header (c, "Allow");
    ck_assert_msg (g_strcmp0 (allow, cases[i].allow) == 0,
        "expected Allow: %s for %s %s, got %s", cases[i].allow,
        cases[i].method, cases[i].path, allow);
    g_free (allow);
    conn_close (c);
  }
}
END_TEST

START_TEST (test_query_parameters)
{
  expect_error ("GET", "/api/v1/streams?bogus=1", NULL, NULL, 400, "bogus");
  expect_error ("GET", "/api/v1/streams/ball/snapshot.jpg?overlay=boxes&x=1",
      NULL, NULL, 400, "'x'");
  expect_error ("GET", "/api/v1/streams/ball/snapshot.jpg?overlay=kittens",
      NULL, NULL, 400, "kittens");
  expect_error ("GET", "/api/v1/streams/ball/detections?since=abc", NULL,
      NULL, 400, "'since': 'abc'");
  expect_error ("GET", "/api/v1/streams/ball/detections?since=1&wait=-5",
      NULL, NULL, 400, "'wait': '-5'");
  expect_error ("GET", "/api/v1/streams/ball/heatmap.png?level=7x", NULL,
      NULL, 400, "'level': '7x'");
  expect_error ("GET", "/api/v1/streams/ball/heatmap.png?kind=nope", NULL,
      NULL, 400, "'kind': 'nope'");
  expect_error ("GET", "/api/v1/streams/ball/heatmap.png?scale=huge", NULL,
      NULL, 400, "'scale': 'huge'");
  expect_error ("GET", "/api/v1/streams/ball/mjpeg?fps=0", NULL, NULL, 400,
      "'fps': '0'");
  expect_error ("GET", "/api/v1/streams/ball/mjpeg?fps=31", NULL, NULL, 400,
      "'fps': '31'");
  expect_error ("GET", "/api/v1/streams/ball/detections?since=1&since=2",
      NULL, NULL, 400, "more than once");
}
END_TEST

START_TEST (test_limits)
{
  GString *path = g_string_new ("/api/v1/streams?");
  gchar *big = g_malloc (70 * 1024 + 1);
  gchar *header, *filler;
  TestConn *c;

  /* a URI over 4 KiB: ours; far over the connection memory: MHD's */
  while (path->len < 5000)
    g_string_append (path, "a");
  expect_error ("GET", path->str, NULL, NULL, 414, "4096");
  while (path->len < 100000)
    g_string_append (path, "a");
  c = request ("GET", path->str, NULL, NULL);
  ck_assert_msg (c->status == 414 || c->status == 431 || c->status == 413,
      "expected a huge URI refused, got %u", c->status);
  conn_close (c);

  /* headers beyond the connection memory */
  filler = g_strnfill (80000, 'h');
  header = g_strdup_printf ("X-Big: %s\r\n", filler);
  c = request ("GET", "/healthz", header, NULL);
  ck_assert_msg (c->status == 431 || c->status == 413,
      "expected huge headers refused, got %u", c->status);
  conn_close (c);

  /* a body over 64 KiB, announced or not */
  memset (big, ' ', 70 * 1024);
  big[70 * 1024] = '\0';
  expect_error ("POST", "/api/v1/streams", NULL, big, 413, "65536");
  c = conn_open ();
  conn_request (c, "POST", "/api/v1/streams", "HTTP/1.1",
      "Transfer-Encoding: chunked\r\nConnection: close\r\n", NULL, 0);
  for (guint i = 0; i < 70; i++) {
    gchar chunk[1024 + 16];

    memset (chunk, ' ', sizeof chunk);
    memcpy (chunk, "400\r\n", 5);
    memcpy (chunk + 5 + 1024, "\r\n", 3);
    conn_send (c, chunk, strlen (chunk));
  }
  conn_send (c, "0\r\n\r\n", 5);
  conn_read_all (c);
  assert_error (c, 413, "65536");
  conn_close (c);
  g_string_free (path, TRUE);
  g_free (header);
  g_free (filler);
  g_free (big);
}
END_TEST

START_TEST (test_web_files)
{
  TestConn *c = request ("GET", "/", NULL, NULL);
  gchar *type = conn_header (c, "Content-Type");

  ck_assert_msg (c->status == 200, "expected the page, got %u", c->status);
  ck_assert_str_eq (type, "text/html; charset=utf-8");
  ck_assert_msg (strstr (c->body->str, "static/app.js") != NULL,
      "expected the page to load app.js");
  g_free (type);
  conn_close (c);

  c = request ("GET", "/static/app.js", NULL, NULL);
  ck_assert_msg (c->status == 200, "expected app.js, got %u", c->status);
  ck_assert_msg (strstr (c->body->str, "EventSource") != NULL,
      "expected the script");
  conn_close (c);
  c = request ("GET", "/static/style.css", NULL, NULL);
  ck_assert_msg (c->status == 200, "expected style.css, got %u", c->status);
  conn_close (c);

  /* names outside the embedded table, however spelled */
  expect_error ("GET", "/static/nope.js", NULL, NULL, 404, "nope.js");
  expect_error ("GET", "/static/../lensd.conf", NULL, NULL, 404, NULL);
  expect_error ("GET", "/static/..%2F..%2Fetc%2Fpasswd", NULL, NULL, 404,
      NULL);
  expect_error ("GET", "/static/%2e%2e", NULL, NULL, 404, NULL);
  expect_error ("GET", "/static/index.html", NULL, NULL, 404, NULL);
  expect_error ("GET", "/index.html", NULL, NULL, 404, NULL);
}
END_TEST

/* ---- streams ------------------------------------------------------------ */

START_TEST (test_streams_list_and_get)
{
  TestConn *c = request ("GET", "/api/v1/streams", NULL, NULL);
  JsonNode *root = parse_json (c);
  JsonArray *streams;
  JsonObject *o;

  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  streams = json_object_get_array_member (json_node_get_object (root),
      "streams");
  ck_assert_msg (json_array_get_length (streams) == 1, "expected 1 stream");
  o = json_array_get_object_element (streams, 0);
  ck_assert_str_eq (json_object_get_string_member (o, "name"), "ball");
  ck_assert_msg (json_object_has_member (o, "pipeline"),
      "expected the pipeline");
  json_node_unref (root);
  conn_close (c);

  wait_frame ("ball", 0);
  c = request ("GET", "/api/v1/streams/ball", NULL, NULL);
  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  root = parse_json (c);
  o = json_node_get_object (root);
  ck_assert_str_eq (json_object_get_string_member (o, "state"), "streaming");
  ck_assert_msg (json_object_get_int_member (o, "seq") >= 1,
      "expected a frame counted");
  ck_assert_msg (json_object_has_member (o, "fps_in")
      && json_object_has_member (o, "fps_out")
      && json_object_has_member (o, "latency")
      && json_object_has_member (o, "dropped")
      && json_object_has_member (o, "last_error"),
      "expected fps, latency, counters and last error: %s", c->body->str);
  ck_assert_msg (json_array_get_length (json_object_get_array_member
          (json_object_get_object_member (o, "latency"), "buckets"))
      == LENSD_LATENCY_BUCKETS, "expected the latency histogram");
  json_node_unref (root);
  conn_close (c);
}
END_TEST

START_TEST (test_streams_add_and_delete)
{
  const gchar *body = "{\"name\":\"extra\",\"pipeline\":\"videotestsrc "
      "pattern=ball is-live=true\",\"interval\":2}";
  TestConn *c = request ("POST", "/api/v1/streams", NULL, body);
  gchar *location;
  JsonNode *root;

  ck_assert_msg (c->status == 201, "expected 201, got %u: %s", c->status,
      c->body->str);
  location = conn_header (c, "Location");
  ck_assert_str_eq (location, "/api/v1/streams/extra");
  root = parse_json (c);
  ck_assert_msg (json_object_get_int_member (json_node_get_object (root),
          "interval") == 2, "expected the interval taken");
  ck_assert_msg (json_object_get_boolean_member (json_node_get_object (root),
          "from_api"), "expected from_api");
  json_node_unref (root);
  g_free (location);
  conn_close (c);

  expect_error ("POST", "/api/v1/streams", NULL, body, 409, "extra");
  wait_frame ("extra", 0);

  c = request ("DELETE", "/api/v1/streams/extra", NULL, NULL);
  ck_assert_msg (c->status == 204, "expected 204, got %u", c->status);
  conn_close (c);
  expect_error ("GET", "/api/v1/streams/extra", NULL, NULL, 404, "extra");
  expect_error ("DELETE", "/api/v1/streams/extra", NULL, NULL, 404, "extra");
}
END_TEST

START_TEST (test_streams_add_invalid)
{
  static const struct
  {
    const gchar *body, *needle;
  } cases[] = {
    {"", "JSON"},
    {"{", "JSON"},
    {"[1,2]", "object"},
    {"{\"uri\":\"file:///x.mp4\"}", "name"},
    {"{\"name\":\"a\"}", "uri"},
    {"{\"name\":\"a\",\"uri\":\"file:///x\",\"pipeline\":\"videotestsrc\"}",
        "uri"},
    {"{\"name\":\"a\",\"uri\":\"file:///x\",\"colour\":1}", "colour"},
    {"{\"name\":7,\"uri\":\"file:///x\"}", "name"},
    {"{\"name\":\"a\",\"uri\":\"file:///x\",\"interval\":\"2\"}", "interval"},
    {"{\"name\":\"a\",\"uri\":\"file:///x\",\"interval\":-1}", "interval"},
    {"{\"name\":\"a\",\"uri\":\"file:///x\",\"loop\":1}", "loop"},
    {"{\"name\":\"no/slash\",\"uri\":\"file:///x\"}", NULL},
    {"{\"name\":\"a\",\"uri\":\"gopher://x\"}", NULL},
    {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "nests"},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    expect_error ("POST", "/api/v1/streams", NULL, cases[i].body, 400,
        cases[i].needle);
}
END_TEST

/* ---- detections and images ---------------------------------------------- */

START_TEST (test_detections)
{
  guint64 seq = wait_frame ("ball", 0), next;
  TestConn *c = request ("GET", "/api/v1/streams/ball/detections", NULL,
      NULL);
  JsonNode *root;
  JsonObject *o;

  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  root = parse_json (c);
  o = json_node_get_object (root);
  ck_assert_str_eq (json_object_get_string_member (o, "stream"), "ball");
  ck_assert_msg (json_object_get_int_member (o, "seq") >= (gint64) seq,
      "expected the latest frame");
  ck_assert_msg (json_object_has_member (o, "detections"),
      "expected detections: %s", c->body->str);
  json_node_unref (root);
  conn_close (c);

  /* a long-poll returns with the next frame */
  next = wait_frame ("ball", seq);
  ck_assert_msg (next > seq, "expected a newer frame");
  /* ?wait alone waits for the frame after the current one */
  c = request ("GET", "/api/v1/streams/ball/detections?wait=30000", NULL,
      NULL);
  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  conn_close (c);
}
END_TEST

START_TEST (test_long_poll_timeout)
{
  TestConn *c;

  wait_frame ("ball", 0);
  /* nothing newer than a seq far ahead: 204 when the time runs out */
  c = request ("GET", "/api/v1/streams/ball/detections?since="
      "1000000000000&wait=300", NULL, NULL);
  ck_assert_msg (c->status == 204, "expected 204 on timeout, got %u",
      c->status);
  ck_assert_msg (c->body->len == 0, "expected no body");
  conn_close (c);
  /* no wait: at once */
  c = request ("GET", "/api/v1/streams/ball/detections?since="
      "1000000000000", NULL, NULL);
  ck_assert_msg (c->status == 204, "expected 204 at once, got %u", c->status);
  conn_close (c);
}
END_TEST

/* A stream that never ran (enabled=false) has no frame: 503, not 404. */
START_TEST (test_no_frame_yet)
{
  TestConn *c = request ("POST", "/api/v1/streams", NULL,
      "{\"name\":\"idle\",\"pipeline\":\"videotestsrc\","
      "\"enabled\":false}");
  JsonNode *root;

  ck_assert_msg (c->status == 201, "expected 201, got %u: %s", c->status,
      c->body->str);
  root = parse_json (c);
  ck_assert_str_eq (json_object_get_string_member (json_node_get_object
          (root), "state"), "stopped");
  json_node_unref (root);
  conn_close (c);
  expect_error ("GET", "/api/v1/streams/idle/detections", NULL, NULL, 503,
      "no inferred frame");
  expect_error ("GET", "/api/v1/streams/idle/snapshot.jpg", NULL, NULL, 503,
      "no inferred frame");
  expect_error ("GET", "/api/v1/streams/idle/heatmap.png", NULL, NULL, 503,
      "no inferred frame");
  expect_error ("GET", "/api/v1/streams/idle/featuremaps.png", NULL, NULL,
      503, "no inferred frame");
  /* a long-poll on it times out like any other */
  c = request ("GET", "/api/v1/streams/idle/detections?wait=200", NULL, NULL);
  ck_assert_msg (c->status == 204, "expected 204, got %u", c->status);
  conn_close (c);
}
END_TEST

static void
expect_image (const gchar * path, const guint8 * magic, gsize magic_length,
    const gchar * type)
{
  TestConn *c = request ("GET", path, NULL, NULL);
  gchar *content_type = conn_header (c, "Content-Type");

  ck_assert_msg (c->status == 200, "expected %s, got %u: %s", path,
      c->status, c->body->str);
  ck_assert_str_eq (content_type, type);
  ck_assert_msg (c->body->len > magic_length
      && memcmp (c->body->str, magic, magic_length) == 0,
      "expected %s to be %s", path, type);
  g_free (content_type);
  conn_close (c);
}

START_TEST (test_images)
{
  static const guint8 jpeg[] = { 0xff, 0xd8, 0xff };
  static const guint8 png[] = { 0x89, 'P', 'N', 'G' };

  wait_frame ("ball", 0);
  expect_image ("/api/v1/streams/ball/snapshot.jpg", jpeg, 3, "image/jpeg");
  expect_image ("/api/v1/streams/ball/snapshot.jpg?overlay=boxes,heatmap",
      jpeg, 3, "image/jpeg");
  expect_image ("/api/v1/streams/ball/heatmap.png", png, 4, "image/png");
  expect_image ("/api/v1/streams/ball/heatmap.png?level=fused&kind=motion"
      "&scale=grid", png, 4, "image/png");
  expect_image ("/api/v1/streams/ball/featuremaps.png", png, 4, "image/png");
  /* a level the frame does not have: the renderer's INVALID, as 400 */
  expect_error ("GET", "/api/v1/streams/ball/heatmap.png?level=1024", NULL,
      NULL, 400, "1024");
  expect_error ("GET", "/api/v1/streams/ball/featuremaps.png?level=7", NULL,
      NULL, 400, "7");
}
END_TEST

/* ---- streaming ---------------------------------------------------------- */

static guint
count (const gchar * haystack, gsize length, const gchar * needle)
{
  guint n = 0;
  gsize nl = strlen (needle);

  for (const gchar * p = haystack; p && p + nl <= haystack + length;) {
    p = g_strstr_len (p, haystack + length - p, needle);
    if (p) {
      n++;
      p += nl;
    }
  }
  return n;
}

START_TEST (test_events)
{
  TestConn *c = conn_open ();
  gchar *type;

  /* HTTP/1.1 as browsers do: a chunked body */
  conn_request (c, "GET", "/api/v1/streams/ball/events", "HTTP/1.1", NULL,
      NULL, 0);
  conn_read_head (c);
  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  type = conn_header (c, "Content-Type");
  ck_assert_str_eq (type, "text/event-stream");
  g_free (type);
  while (count (c->body->str, c->body->len, "\n\n") < 2 && conn_read_more (c));
  ck_assert_msg (count (c->body->str, c->body->len, "event: detections\n")
      >= 2, "expected 2 events, got '%s'", c->body->str);
  ck_assert_msg (strstr (c->body->str, "\ndata: {") != NULL
      && strstr (c->body->str, "\nid: ") != NULL,
      "expected data and id fields: %s", c->body->str);
  conn_close (c);
}
END_TEST

/* Complete multipart parts (boundary, headers, a whole JPEG) in @body. */
static guint
mjpeg_parts (GString * body)
{
  guint parts = 0;
  const gchar *p = body->str, *end = body->str + body->len;

  while ((p = g_strstr_len (p, end - p, "--lensdframe\r\n"))) {
    const gchar *head_end = g_strstr_len (p, end - p, "\r\n\r\n");
    const gchar *cl;
    guint64 length;

    if (!head_end)
      break;
    cl = g_strstr_len (p, head_end - p, "Content-Length: ");
    ck_assert_msg (cl != NULL, "expected a Content-Length in each part");
    length = g_ascii_strtoull (cl + 16, NULL, 10);
    if ((guint64) (end - (head_end + 4)) < length + 2)
      break;
    ck_assert_msg ((guint8) head_end[4] == 0xff
        && (guint8) head_end[5] == 0xd8, "expected a JPEG part");
    parts++;
    p = head_end + 4 + length;
  }
  return parts;
}

START_TEST (test_mjpeg)
{
  TestConn *c = conn_open ();
  gchar *type;

  conn_request (c, "GET", "/api/v1/streams/ball/mjpeg?fps=30", "HTTP/1.1",
      NULL, NULL, 0);
  conn_read_head (c);
  ck_assert_msg (c->status == 200, "expected 200, got %u", c->status);
  type = conn_header (c, "Content-Type");
  ck_assert_str_eq (type, "multipart/x-mixed-replace; boundary=lensdframe");
  g_free (type);
  while (mjpeg_parts (c->body) < 3 && conn_read_more (c));
  ck_assert_msg (mjpeg_parts (c->body) >= 3, "expected 3 JPEG parts, got %u",
      mjpeg_parts (c->body));
  conn_close (c);
}
END_TEST

/* A stream removed while an SSE, a long-poll and an MJPEG client wait on
 * it: each ends cleanly (the event stream with a "removed" event). */
START_TEST (test_remove_while_waiting)
{
  TestConn *events = conn_open (), *mjpeg = conn_open (), *poll = conn_open ();
  TestConn *c;

  conn_request (events, "GET", "/api/v1/streams/ball/events", "HTTP/1.1",
      NULL, NULL, 0);
  conn_read_head (events);
  while (count (events->body->str, events->body->len, "\n\n") < 1
      && conn_read_more (events));
  conn_request (mjpeg, "GET", "/api/v1/streams/ball/mjpeg", "HTTP/1.0",
      NULL, NULL, 0);
  conn_read_head (mjpeg);
  while (mjpeg_parts (mjpeg->body) < 1 && conn_read_more (mjpeg));
  ck_assert_msg (mjpeg_parts (mjpeg->body) >= 1, "expected a first part");
  conn_request (poll, "GET", "/api/v1/streams/ball/detections?"
      "since=1000000000000&wait=60000", "HTTP/1.0", NULL, NULL, 0);

  c = request ("DELETE", "/api/v1/streams/ball", NULL, NULL);
  ck_assert_msg (c->status == 204, "expected 204, got %u", c->status);
  conn_close (c);

  conn_read_all (poll);
  assert_error (poll, 404, "ball");
  conn_read_all (events);
  ck_assert_msg (events->eof && strstr (events->body->str, "event: removed")
      != NULL, "expected a removed event and the end: %s",
      events->body->str);
  ck_assert_msg (events->raw->len == events->raw_used
      || g_str_has_suffix (events->raw->str, "0\r\n\r\n"),
      "expected the chunked body terminated");
  conn_read_all (mjpeg);
  ck_assert_msg (mjpeg->eof, "expected the MJPEG response ended");
  conn_close (events);
  conn_close (mjpeg);
  conn_close (poll);
}
END_TEST

/* Freeing the server while clients wait must not hang or crash: waiting
 * connections are woken and closed. */
START_TEST (test_free_while_waiting)
{
  TestConn *events = conn_open (), *poll = conn_open ();

  conn_request (events, "GET", "/api/v1/streams/ball/events", "HTTP/1.1",
      NULL, NULL, 0);
  conn_read_head (events);
  conn_request (poll, "GET", "/api/v1/streams/ball/detections?"
      "since=1000000000000&wait=60000", "HTTP/1.0", NULL, NULL, 0);
  g_usleep (100 * 1000);
  lensd_http_free (server.http);
  server.http = NULL;
  conn_read_all (events);
  ck_assert_msg (events->eof, "expected the event stream ended");
  while (conn_read_more (poll));
  ck_assert_msg (poll->eof, "expected the long-poll ended");
  conn_close (events);
  conn_close (poll);
}
END_TEST

/* ---- protections ---------------------------------------------------------- */

/* Whether the server closed @c: an end of stream (or a reset) within the
 * read timeout. */
static gboolean
conn_closed_by_server (TestConn * c)
{
  gchar buf[256];
  GError *error = NULL;
  gssize n = g_socket_receive (c->socket, buf, sizeof buf, NULL, &error);
  gboolean timed_out = g_error_matches (error, G_IO_ERROR,
      G_IO_ERROR_TIMED_OUT);

  g_clear_error (&error);
  if (n > 0)
    g_string_append_len (c->raw, buf, n);
  return n == 0 || (n < 0 && !timed_out);
}

START_TEST (test_idle_timeout)
{
  TestConn *c = conn_open ();

  /* nothing sent: closed after connection-timeout, well within the read
   * timeout */
  ck_assert_msg (conn_closed_by_server (c) && c->raw->len == 0,
      "expected an idle connection closed without an answer");
  conn_close (c);
}
END_TEST

START_TEST (test_slowloris)
{
  TestConn *c = conn_open ();
  gint64 start = g_get_monotonic_time ();
  gboolean closed = FALSE;

  g_socket_set_timeout (c->socket, 1);
  conn_send (c, "GET /healthz HTTP/1.1\r\nHost: x\r\n", 33);
  /* a header byte every 200 ms never lets the connection idle */
  while (!closed && g_get_monotonic_time () - start < 30 * G_USEC_PER_SEC) {
    GError *error = NULL;

    g_usleep (200 * 1000);
    if (g_socket_send (c->socket, "X", 1, NULL, &error) < 0) {
      g_clear_error (&error);
      closed = TRUE;
    } else if (g_socket_condition_check (c->socket, G_IO_IN | G_IO_HUP |
            G_IO_ERR)) {
      closed = conn_closed_by_server (c);
    }
  }
  ck_assert_msg (closed, "expected a trickling request cut off");
  conn_close (c);
}
END_TEST

/* Event streams and MJPEG are not cut by the idle timeout. */
START_TEST (test_streams_outlive_timeout)
{
  TestConn *c = conn_open ();
  gint64 start;
  guint events;

  wait_frame ("ball", 0);
  conn_request (c, "GET", "/api/v1/streams/ball/events", "HTTP/1.1", NULL,
      NULL, 0);
  conn_read_head (c);
  start = g_get_monotonic_time ();
  while (g_get_monotonic_time () - start < 5 * G_USEC_PER_SEC
      && conn_read_more (c));
  events = count (c->body->str, c->body->len, "event: detections\n");
  ck_assert_msg (!c->eof, "expected the event stream open after 5 s with a "
      "2 s timeout");
  /* and still delivering */
  while (count (c->body->str, c->body->len, "event: detections\n") == events
      && conn_read_more (c));
  ck_assert_msg (count (c->body->str, c->body->len, "event: detections\n")
      > events, "expected events after the timeout");
  conn_close (c);
}
END_TEST

START_TEST (test_per_ip_limit)
{
  TestConn *held[3], *c;
  gboolean served = FALSE;

  /* one at a time, each answered before the next opens: MHD's workers
   * race from accept to counting, so three opened at once could leave
   * the 4th counted before the 3rd; kept alive, they stay counted */
  for (guint i = 0; i < 3; i++) {
    held[i] = conn_open ();
    conn_request (held[i], "GET", "/healthz", "HTTP/1.1", NULL, NULL, 0);
    conn_read_head (held[i]);
    ck_assert_msg (held[i]->status == 200, "expected connection %u served, "
        "got %u", i + 1, held[i]->status);
  }
  c = conn_open ();
  conn_request (c, "GET", "/healthz", "HTTP/1.0", NULL, NULL, 0);
  ck_assert_msg (conn_closed_by_server (c) && c->raw->len == 0,
      "expected a 4th connection from one address refused, got '%.100s'",
      c->raw->str);
  conn_close (c);
  for (guint i = 0; i < 3; i++)
    conn_close (held[i]);
  /* the server may take a moment to notice the closed ones */
  for (guint i = 0; i < 100 && !served; i++) {
    c = conn_open ();
    conn_request (c, "GET", "/healthz", "HTTP/1.0", NULL, NULL, 0);
    while (conn_read_more (c));
    served = c->status == 200;
    conn_close (c);
    if (!served)
      g_usleep (100 * 1000);
  }
  ck_assert_msg (served, "expected connections served again");
}
END_TEST

/* An IPv6 listen address (where the machine has ::1). */
START_TEST (test_ipv6)
{
  TestConn *c;

  if (!server_start_on ("[::1]:0", "::1", "", NULL, TRUE)) {
    teardown ();
    return;
  }
  c = request ("GET", "/healthz", NULL, NULL);
  ck_assert_msg (c->status == 200, "expected 200 over IPv6, got %u",
      c->status);
  conn_close (c);
  teardown ();
}
END_TEST

/* A listening socket handed over (socket activation): served, its port
 * reported, and closed with the server. */
START_TEST (test_listen_fd)
{
  GSocket *sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
      G_SOCKET_PROTOCOL_TCP, NULL);
  GInetAddress *lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *any = g_inet_socket_address_new (lo, 0), *local;
  GError *error = NULL;
  TestConn *c;
  int fd;

  ck_assert (sock != NULL);
  ck_assert_msg (g_socket_bind (sock, any, TRUE, &error)
      && g_socket_listen (sock, &error), "expected a listening socket: %s",
      error ? error->message : "");
  local = g_socket_get_local_address (sock, NULL);
  /* the server's own descriptor: it closes it */
  fd = dup (g_socket_get_fd (sock));
  lensd_http_free (server.http);
  server.http = lensd_http_new (server.daemon, fd, &error);
  ck_assert_msg (server.http != NULL, "expected HTTP on fd %d: %s", fd,
      error ? error->message : "");
  server.port = lensd_http_get_port (server.http);
  ck_assert_msg (server.port == g_inet_socket_address_get_port
      (G_INET_SOCKET_ADDRESS (local)), "expected the socket's port %u, got "
      "%u", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)),
      server.port);
  c = request ("GET", "/healthz", NULL, NULL);
  ck_assert_msg (c->status == 200, "expected 200 on the handed-over socket, "
      "got %u", c->status);
  conn_close (c);
  lensd_http_free (server.http);
  server.http = NULL;
  ck_assert_msg (fcntl (fd, F_GETFD) == -1, "expected fd %d closed", fd);
  g_object_unref (local);
  g_object_unref (any);
  g_object_unref (lo);
  g_object_unref (sock);
}
END_TEST

/* ---- token -------------------------------------------------------------- */

START_TEST (test_token)
{
  static const gchar *guarded[] = {
    "/api/v1/info", "/api/v1/streams", "/api/v1/streams/ball",
    "/api/v1/streams/ball/detections", "/api/v1/streams/ball/snapshot.jpg",
    "/api/v1/streams/ball/heatmap.png", "/api/v1/streams/ball/mjpeg",
    "/api/v1/streams/ball/events", "/api/v1/nope",
  };
  static const gchar *open_paths[] = {
    "/healthz", "/readyz", "/metrics", "/", "/static/app.js",
  };
  TestConn *c;
  gchar *auth;

  for (guint i = 0; i < G_N_ELEMENTS (guarded); i++) {
    c = request ("GET", guarded[i], NULL, NULL);
    assert_error (c, 401, "Bearer");
    auth = conn_header (c, "WWW-Authenticate");
    ck_assert_msg (auth && g_str_has_prefix (auth, "Bearer"),
        "expected WWW-Authenticate: Bearer on %s, got %s", guarded[i], auth);
    g_free (auth);
    conn_close (c);
  }
  /* wrong tokens: shorter, same length, longer, a prefix; wrong scheme */
  expect_error ("GET", "/api/v1/streams", "Authorization: Bearer s3\r\n",
      NULL, 401, NULL);
  expect_error ("GET", "/api/v1/streams",
      "Authorization: Bearer s3cret-tokeN\r\n", NULL, 401, NULL);
  expect_error ("GET", "/api/v1/streams",
      "Authorization: Bearer s3cret-token-and-more\r\n", NULL, 401, NULL);
  expect_error ("GET", "/api/v1/streams",
      "Authorization: Basic s3cret-token\r\n", NULL, 401, NULL);
  expect_error ("GET", "/api/v1/streams?token=wrong", NULL, NULL, 401, NULL);
  expect_error ("POST", "/api/v1/streams", NULL, "{}", 401, NULL);

  c = request ("GET", "/api/v1/streams",
      "Authorization: Bearer s3cret-token\r\n", NULL);
  ck_assert_msg (c->status == 200, "expected the header token accepted, "
      "got %u", c->status);
  conn_close (c);
  c = request ("GET", "/api/v1/streams?token=s3cret-token", NULL, NULL);
  ck_assert_msg (c->status == 200, "expected ?token= accepted, got %u",
      c->status);
  conn_close (c);
  for (guint i = 0; i < G_N_ELEMENTS (open_paths); i++) {
    c = request ("GET", open_paths[i], NULL, NULL);
    ck_assert_msg (c->status == 200, "expected %s open, got %u",
        open_paths[i], c->status);
    conn_close (c);
  }
}
END_TEST

/* ---- the body parser (also the fuzzer's entry) ---------------------------- */

START_TEST (test_parse_stream_config)
{
  GError *error = NULL;
  const gchar *body = "{\"name\":\"cam\",\"uri\":\"rtsp://10.0.0.1/s\","
      "\"interval\":3,\"loop\":false,\"enabled\":false}";
  LensdStreamConfig *config = lensd_http_parse_stream_config (body,
      strlen (body), &error);

  ck_assert_msg (config != NULL, "expected a config: %s",
      error ? error->message : "");
  ck_assert_str_eq (config->name, "cam");
  ck_assert_str_eq (config->uri, "rtsp://10.0.0.1/s");
  ck_assert_msg (config->pipeline == NULL && config->interval == 3
      && !config->enabled && config->from_api, "expected the members taken");
  lensd_stream_config_free (config);

  ck_assert (lensd_http_parse_stream_config ("{\"name\":\"a\xff\"}", 12,
          &error) == NULL);
  ck_assert_msg (g_error_matches (error, LENSD_ERROR, LENSD_ERROR_INVALID),
      "expected INVALID for bad UTF-8");
  g_clear_error (&error);
}
END_TEST

START_TEST (test_route_status)
{
  static const gchar *none[] = { NULL };
  static const gchar *overlay[] = { "overlay", "token", NULL };
  static const gchar *bogus[] = { "since", "bogus", NULL };
  static const struct
  {
    const gchar *method, *path;
    const gchar *const *params;
    guint status;
  } cases[] = {
    {"GET", "/", none, 200},
    {"HEAD", "/healthz", NULL, 200},
    {"GET", "/static/app.js", none, 200},
    {"GET", "/api/v1/streams/x/snapshot.jpg", overlay, 200},
    {"GET", "/api/v1/streams/x/detections", bogus, 400},
    {"GET", "/api/v1/streams", overlay, 400},
    {"POST", "/api/v1/streams", none, 200},
    {"DELETE", "/api/v1/streams/x", none, 200},
    {"PATCH", "/api/v1/streams/x", none, 405},
    {"GET", "/api/v1/streams/", none, 404},
    {"GET", "/api/v1/streams/x/y/z", none, 404},
    {"GET", "", none, 404},
    {"GET", "//", none, 404},
    {"", "/", none, 405},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    ck_assert_msg (lensd_http_route_status (cases[i].method, cases[i].path,
            cases[i].params) == cases[i].status, "expected %u for %s %s",
        cases[i].status, cases[i].method, cases[i].path);
}
END_TEST

static Suite *
http_suite (void)
{
  Suite *s = suite_create ("lensd-http");
  TCase *tc;

  tc = tcase_create ("service");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_healthz);
  tcase_add_test (tc, test_info);
  tcase_add_test (tc, test_metrics);
  suite_add_tcase (s, tc);

  tc = tcase_create ("readiness");
  tcase_add_checked_fixture (tc, setup_not_ready, teardown);
  tcase_add_test (tc, test_readyz);
  suite_add_tcase (s, tc);

  tc = tcase_create ("routing");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_not_found);
  tcase_add_test (tc, test_keep_alive);
  tcase_add_test (tc, test_method_not_allowed);
  tcase_add_test (tc, test_query_parameters);
  tcase_add_test (tc, test_limits);
  tcase_add_test (tc, test_web_files);
  suite_add_tcase (s, tc);

  tc = tcase_create ("streams");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_streams_list_and_get);
  tcase_add_test (tc, test_streams_add_and_delete);
  tcase_add_test (tc, test_streams_add_invalid);
  suite_add_tcase (s, tc);

  tc = tcase_create ("frames");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_detections);
  tcase_add_test (tc, test_long_poll_timeout);
  tcase_add_test (tc, test_no_frame_yet);
  tcase_add_test (tc, test_images);
  suite_add_tcase (s, tc);

  tc = tcase_create ("streaming");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_events);
  tcase_add_test (tc, test_mjpeg);
  tcase_add_test (tc, test_remove_while_waiting);
  tcase_add_test (tc, test_free_while_waiting);
  suite_add_tcase (s, tc);

  tc = tcase_create ("token");
  tcase_add_checked_fixture (tc, setup_token, teardown);
  tcase_add_test (tc, test_token);
  suite_add_tcase (s, tc);

  tc = tcase_create ("protections");
  tcase_add_checked_fixture (tc, setup_protections, teardown);
  tcase_add_test (tc, test_idle_timeout);
  tcase_add_test (tc, test_slowloris);
  tcase_add_test (tc, test_streams_outlive_timeout);
  suite_add_tcase (s, tc);

  tc = tcase_create ("connection limit");
  tcase_add_checked_fixture (tc, setup_ip_limit, teardown);
  tcase_add_test (tc, test_per_ip_limit);
  suite_add_tcase (s, tc);

  tc = tcase_create ("listen");
  tcase_add_test (tc, test_ipv6);
  suite_add_tcase (s, tc);

  tc = tcase_create ("socket activation");
  tcase_add_checked_fixture (tc, setup, teardown);
  tcase_add_test (tc, test_listen_fd);
  suite_add_tcase (s, tc);

  tc = tcase_create ("parsing");
  tcase_add_test (tc, test_parse_stream_config);
  tcase_add_test (tc, test_route_status);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  gst_init (&argc, &argv);
  return lens_check_run (http_suite ());
}
