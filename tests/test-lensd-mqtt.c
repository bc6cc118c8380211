/* test-lensd-mqtt.c: MQTT publishing (daemon/lensd-mqtt.c) against a real
 * Mosquitto broker that each test starts on a free loopback port: topics
 * and JSON payloads, the retained status and stream states, the last will
 * of a client that dies, reconnection after the broker is killed and the
 * exact accounting of the bounded queue, TLS with a CA made at test time,
 * the publish-fps rate limit, and configurations that must be refused.
 *
 * Run with "--mqtt-client PORT INSTANCE" it is the client the last-will
 * test kills: it connects, says so on stdout and waits to be killed. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <check.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gst/video/gstvideometa.h>
#include <json-glib/json-glib.h>
#include <mosquitto.h>

#include "lensd.h"
#include "lens-check.h"

#ifndef MOSQUITTO_PATH
#define MOSQUITTO_PATH "/usr/sbin/mosquitto"
#endif

#define PREFIX "lens-test"
/* bounds on waits for things that must happen; generous for a loaded
 * machine, never what a test measures */
#define WAIT_US (30 * G_USEC_PER_SEC)
/* what the issue asks of a reconnection after the broker comes back */
#define RECONNECT_US (10 * G_USEC_PER_SEC)

/* ---- the broker ---------------------------------------------------------- */

typedef struct
{
  gchar *dir;                   /* config, log, passwords, certificates */
  gboolean tls;
  guint16 port;                 /* plain */
  guint16 tls_port;             /* server certificate only */
  guint16 mtls_port;            /* a client certificate required */
  GSubprocess *process;
} TestBroker;

static TestBroker broker;

static guint16
free_port (void)
{
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4,
      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *address = g_inet_socket_address_new (loopback, 0);
  GSocketAddress *bound;
  guint16 port;

  ck_assert_msg (socket != NULL && g_socket_bind (socket, address, TRUE,
          NULL), "expected a loopback socket on port 0");
  bound = g_socket_get_local_address (socket, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_object_unref (bound);
  g_object_unref (address);
  g_object_unref (loopback);
  g_object_unref (socket);
  return port;
}

/* Whatever the test process dies of, the processes it started die too. */
static void
die_with_parent (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *
spawn (const gchar * const *argv, GSubprocessFlags flags)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);
  GError *error = NULL;
  GSubprocess *process;

  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL,
      NULL);
  process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  ck_assert_msg (process != NULL, "expected %s to start: %s", argv[0],
      error != NULL ? error->message : "");
  g_object_unref (launcher);
  return process;
}

static void
run_or_fail (const gchar * const *argv)
{
  GSubprocess *process = spawn (argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE
      | G_SUBPROCESS_FLAGS_STDERR_MERGE);
  GError *error = NULL;

  ck_assert_msg (g_subprocess_wait_check (process, NULL, &error),
      "expected %s %s to succeed: %s", argv[0], argv[1], error->message);
  g_object_unref (process);
}

static gchar *
broker_path (const gchar *name)
{
  return g_build_filename (broker.dir, name, NULL);
}

static gchar *
read_log (void)
{
  gchar *path = broker_path ("mosquitto.log"), *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    text = g_strdup ("(no log)");
  g_free (path);
  return text;
}

/* A test CA, a server certificate from it for 127.0.0.1 and localhost, a
 * client certificate from it, and a second CA that signed none of them. */
static void
make_certificates (void)
{
  gchar *ext = broker_path ("server.ext");
  gchar *p[16];

#define P(i, name) (p[i] = broker_path (name))
  P (0, "ca.key"); P (1, "ca.crt"); P (2, "server.key"); P (3, "server.csr");
  P (4, "server.crt"); P (5, "client.key"); P (6, "client.csr");
  P (7, "client.crt"); P (8, "other-ca.key"); P (9, "other-ca.crt");
  P (10, "ca.srl");
#undef P
  ck_assert (g_file_set_contents (ext,
          "subjectAltName=IP:127.0.0.1,DNS:localhost\n", -1, NULL));
  {
    const gchar *ca[] = { "openssl", "req", "-x509", "-newkey", "ec",
      "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p[0],
      "-out", p[1], "-days", "2", "-subj", "/CN=lensd test CA", NULL
    };
    const gchar *other[] = { "openssl", "req", "-x509", "-newkey", "ec",
      "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p[8],
      "-out", p[9], "-days", "2", "-subj", "/CN=another CA", NULL
    };
    const gchar *server_req[] = { "openssl", "req", "-newkey", "ec",
      "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p[2],
      "-out", p[3], "-subj", "/CN=localhost", NULL
    };
    const gchar *server_sign[] = { "openssl", "x509", "-req", "-in", p[3],
      "-CA", p[1], "-CAkey", p[0], "-CAserial", p[10], "-CAcreateserial",
      "-out", p[4], "-days", "2", "-extfile", ext, NULL
    };
    const gchar *client_req[] = { "openssl", "req", "-newkey", "ec",
      "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p[5],
      "-out", p[6], "-subj", "/CN=lensd-client", NULL
    };
    const gchar *client_sign[] = { "openssl", "x509", "-req", "-in", p[6],
      "-CA", p[1], "-CAkey", p[0], "-CAserial", p[10], "-out", p[7], "-days",
      "2", NULL
    };

    run_or_fail (ca);
    run_or_fail (other);
    run_or_fail (server_req);
    run_or_fail (server_sign);
    run_or_fail (client_req);
    run_or_fail (client_sign);
  }
  for (guint i = 0; i <= 10; i++)
    g_free (p[i]);
  g_free (ext);
}

/* @anonymous: whether clients without a user name (the publishers) may
 * connect; the subscriber always logs in as "sub". */
static void
write_broker_config (gboolean tls, gboolean anonymous)
{
  GString *conf = g_string_new (NULL);
  gchar *path = broker_path ("mosquitto.conf");

  g_string_append_printf (conf,
      "user %s\n"
      "log_dest file %s/mosquitto.log\n"
      "log_type all\n"
      "allow_anonymous %s\n"
      "password_file %s/passwd\n"
      "listener %u 127.0.0.1\n", g_get_user_name (), broker.dir,
      anonymous ? "true" : "false", broker.dir, broker.port);
  if (tls)
    g_string_append_printf (conf,
        "listener %u 127.0.0.1\n"
        "cafile %s/ca.crt\ncertfile %s/server.crt\nkeyfile %s/server.key\n"
        "listener %u 127.0.0.1\n"
        "cafile %s/ca.crt\ncertfile %s/server.crt\nkeyfile %s/server.key\n"
        "require_certificate true\n", broker.tls_port, broker.dir,
        broker.dir, broker.dir, broker.mtls_port, broker.dir, broker.dir,
        broker.dir);
  ck_assert (g_file_set_contents (path, conf->str, -1, NULL));
  g_string_free (conf, TRUE);
  g_free (path);
}

/* A plain socket: GSocketClient would consult the proxy resolver. */
static gboolean
port_accepts (guint16 port)
{
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4,
      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  GInetAddress *loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  GSocketAddress *address = g_inet_socket_address_new (loopback, port);
  gboolean connected = g_socket_connect (socket, address, NULL, NULL);

  g_object_unref (address);
  g_object_unref (loopback);
  g_object_unref (socket);
  return connected;
}

/* Whether the broker started last wrote, after @offset of its log, that
 * it runs: all its listeners are open. (A port that accepts could be
 * another test's, had that one picked the same free port.) */
static gboolean
broker_says_running (gsize offset)
{
  gchar *log = read_log ();
  gboolean running = strlen (log) > offset
      && strstr (log + offset, " running") != NULL;

  g_free (log);
  return running;
}

/* FALSE when the port was taken meanwhile (the broker said so and left);
 * any other failure fails the test. */
static gboolean
broker_try_start (void)
{
  gchar *conf = broker_path ("mosquitto.conf");
  const gchar *argv[] = { MOSQUITTO_PATH, "-c", conf, NULL };
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  gchar *log = read_log ();
  gsize offset = g_str_has_prefix (log, "(no log)") ? 0 : strlen (log);

  g_free (log);
  broker.process = spawn (argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE
      | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_free (conf);
  while (!broker_says_running (offset) || !port_accepts (broker.port)) {
    if (g_subprocess_get_identifier (broker.process) == NULL) {
      log = read_log ();
      if (strstr (log + MIN (offset, strlen (log)), "Address already in use")
          != NULL) {
        g_free (log);
        g_clear_object (&broker.process);
        return FALSE;
      }
      ck_abort_msg ("expected the broker to run; its log:\n%s", log);
    }
    if (g_get_monotonic_time () > deadline) {
      log = read_log ();
      ck_abort_msg ("expected the broker to listen on %u; its log:\n%s",
          broker.port, log);
    }
    g_usleep (20000);
  }
  return TRUE;
}

static void
broker_start (void)
{
  ck_assert_msg (broker_try_start (), "expected the broker back on port %u "
      "(another process took it meanwhile)", broker.port);
}

/* SIGKILL, as a crash would: no goodbye to anyone. */
static void
broker_kill (void)
{
  if (broker.process == NULL)
    return;
  g_subprocess_send_signal (broker.process, SIGKILL);
  g_subprocess_wait (broker.process, NULL, NULL);
  g_clear_object (&broker.process);
}

/* ---- a subscriber -------------------------------------------------------- */

typedef struct
{
  gchar *topic;
  gchar *payload;
  gboolean retained;
} Received;

typedef struct
{
  struct mosquitto *mosq;
  gchar *filter;
  GMutex lock;
  GCond cond;
  GPtrArray *messages;          /* Received *, in arrival order */
  guint subscriptions;          /* SUBACKs: one per connection */
} Subscriber;

static void
received_free (Received *r)
{
  g_free (r->topic);
  g_free (r->payload);
  g_free (r);
}

static void
subscriber_on_connect (struct mosquitto *mosq, void *user_data, int rc)
{
  Subscriber *sub = user_data;

  if (rc == 0)
    mosquitto_subscribe (mosq, NULL, sub->filter, 1);
}

static void
subscriber_on_subscribe (struct mosquitto *mosq, void *user_data, int mid,
    int n, const int *granted)
{
  Subscriber *sub = user_data;

  g_mutex_lock (&sub->lock);
  sub->subscriptions++;
  g_cond_broadcast (&sub->cond);
  g_mutex_unlock (&sub->lock);
}

static void
subscriber_on_message (struct mosquitto *mosq, void *user_data,
    const struct mosquitto_message *message)
{
  Subscriber *sub = user_data;
  Received *r = g_new0 (Received, 1);

  r->topic = g_strdup (message->topic);
  r->payload = g_strndup (message->payload, message->payloadlen);
  r->retained = message->retain;
  g_mutex_lock (&sub->lock);
  g_ptr_array_add (sub->messages, r);
  g_cond_broadcast (&sub->cond);
  g_mutex_unlock (&sub->lock);
}

/* Subscribed to @filter (qos 1) on the plain listener when it returns;
 * after a lost connection it reconnects and subscribes again. */
static Subscriber *
subscriber_new (const gchar *filter)
{
  Subscriber *sub = g_new0 (Subscriber, 1);
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  int rc;

  sub->filter = g_strdup (filter);
  g_mutex_init (&sub->lock);
  g_cond_init (&sub->cond);
  sub->messages = g_ptr_array_new_with_free_func ((GDestroyNotify)
      received_free);
  sub->mosq = mosquitto_new (NULL, TRUE, sub);
  ck_assert (sub->mosq != NULL);
  ck_assert (mosquitto_username_pw_set (sub->mosq, "sub", "subpw")
      == MOSQ_ERR_SUCCESS);
  mosquitto_connect_callback_set (sub->mosq, subscriber_on_connect);
  mosquitto_subscribe_callback_set (sub->mosq, subscriber_on_subscribe);
  mosquitto_message_callback_set (sub->mosq, subscriber_on_message);
  mosquitto_reconnect_delay_set (sub->mosq, 1, 1, FALSE);
  rc = mosquitto_connect (sub->mosq, "127.0.0.1", broker.port, 30);
  ck_assert_msg (rc == MOSQ_ERR_SUCCESS, "expected the subscriber to "
      "connect: %s", mosquitto_strerror (rc));
  ck_assert (mosquitto_loop_start (sub->mosq) == MOSQ_ERR_SUCCESS);
  g_mutex_lock (&sub->lock);
  while (sub->subscriptions == 0 && g_cond_wait_until (&sub->cond,
          &sub->lock, deadline));
  g_mutex_unlock (&sub->lock);
  ck_assert_msg (sub->subscriptions > 0, "expected the subscription to %s",
      filter);
  return sub;
}

static guint
subscriber_subscriptions (Subscriber *sub)
{
  guint n;

  g_mutex_lock (&sub->lock);
  n = sub->subscriptions;
  g_mutex_unlock (&sub->lock);
  return n;
}

/* Waits until @sub subscribed again after a lost connection. */
static void
subscriber_wait_resubscribed (Subscriber *sub, guint before)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  g_mutex_lock (&sub->lock);
  while (sub->subscriptions == before && g_cond_wait_until (&sub->cond,
          &sub->lock, deadline));
  g_mutex_unlock (&sub->lock);
  ck_assert_msg (subscriber_subscriptions (sub) > before,
      "expected the subscriber back and subscribed");
}

static void
subscriber_free (Subscriber *sub)
{
  if (sub == NULL)
    return;
  mosquitto_disconnect (sub->mosq);
  mosquitto_loop_stop (sub->mosq, FALSE);
  mosquitto_destroy (sub->mosq);
  g_ptr_array_unref (sub->messages);
  g_mutex_clear (&sub->lock);
  g_cond_clear (&sub->cond);
  g_free (sub->filter);
  g_free (sub);
}

/* The messages on @topic so far (copies of the payloads, in order). */
static GPtrArray *
subscriber_payloads (Subscriber *sub, const gchar *topic)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  g_mutex_lock (&sub->lock);
  for (guint i = 0; i < sub->messages->len; i++) {
    Received *r = g_ptr_array_index (sub->messages, i);

    if (g_strcmp0 (r->topic, topic) == 0)
      g_ptr_array_add (out, g_strdup (r->payload));
  }
  g_mutex_unlock (&sub->lock);
  return out;
}

static guint
subscriber_count (Subscriber *sub, const gchar *topic)
{
  GPtrArray *payloads = subscriber_payloads (sub, topic);
  guint n = payloads->len;

  g_ptr_array_unref (payloads);
  return n;
}

/* Waits until @n messages came on @topic; returns how many did. */
static guint
subscriber_wait (Subscriber *sub, const gchar *topic, guint n)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  guint have;

  while ((have = subscriber_count (sub, topic)) < n
      && g_get_monotonic_time () < deadline) {
    g_mutex_lock (&sub->lock);
    g_cond_wait_until (&sub->cond, &sub->lock,
        g_get_monotonic_time () + 50 * G_TIME_SPAN_MILLISECOND);
    g_mutex_unlock (&sub->lock);
  }
  return have;
}

/* Waits for a message on @topic with @payload; whether it came retained
 * through *retained. */
static gboolean
subscriber_wait_payload (Subscriber *sub, const gchar *topic,
    const gchar *payload, gboolean *retained)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  gboolean found = FALSE;

  g_mutex_lock (&sub->lock);
  while (!found) {
    for (guint i = 0; i < sub->messages->len && !found; i++) {
      Received *r = g_ptr_array_index (sub->messages, i);

      if (g_strcmp0 (r->topic, topic) == 0
          && g_strcmp0 (r->payload, payload) == 0) {
        found = TRUE;
        if (retained != NULL)
          *retained = r->retained;
      }
    }
    if (!found && !g_cond_wait_until (&sub->cond, &sub->lock, deadline))
      break;
  }
  g_mutex_unlock (&sub->lock);
  return found;
}

/* A broker back after a crash, with the publishers kept out (anonymous
 * connections refused) until the subscriber is back and subscribed: what
 * they send then reaches it live, whichever reconnects first on its own.
 * Returns when the publishers may connect. */
static void
broker_restart_gated (Subscriber *subscriber)
{
  guint before = subscriber_subscriptions (subscriber);

  write_broker_config (broker.tls, FALSE);
  broker_start ();
  subscriber_wait_resubscribed (subscriber, before);
  write_broker_config (broker.tls, TRUE);
  /* allow_anonymous is reloaded on SIGHUP */
  g_subprocess_send_signal (broker.process, SIGHUP);
}

/* ---- frames and the publisher -------------------------------------------- */

/* A frame as lensdetect would leave it: a feature-map meta and one
 * detection, through lensd_frame_new_from_buffer. */
static LensdFrame *
make_frame (const gchar *stream, guint64 seq, gint64 timestamp_us)
{
  GstVideoInfo info;
  GstBuffer *buffer;
  GstLensFeatureMapMeta *meta;
  GstVideoRegionOfInterestMeta *roi;
  LensdFrame *frame;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, 64, 48);
  buffer = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&info), NULL);
  gst_buffer_memset (buffer, 0, 0, GST_VIDEO_INFO_SIZE (&info));
  meta = gst_buffer_add_lens_feature_map_meta (buffer, "test-model", NULL,
      NULL);
  meta->pts = seq * 40 * GST_MSECOND;
  meta->frame_width = 64;
  meta->frame_height = 48;
  meta->inference_ms = 1.5;
  roi = gst_buffer_add_video_region_of_interest_meta (buffer, "person", 8, 4,
      16, 32);
  gst_video_region_of_interest_meta_add_param (roi,
      gst_structure_new ("detection", "class-id", G_TYPE_INT, 0,
          "confidence", G_TYPE_DOUBLE, 0.875, "label", G_TYPE_STRING,
          "person", NULL));
  frame = lensd_frame_new_from_buffer (stream, seq, buffer, &info);
  gst_buffer_unref (buffer);
  ck_assert_msg (frame != NULL, "expected a frame from a buffer with a "
      "feature-map meta");
  frame->timestamp_us = timestamp_us;
  return frame;
}

/* Frames @first .. @first + @n - 1 of @stream, @step_us apart. */
static void
publish_frames (LensdMqtt *mqtt, const gchar *stream, guint64 first, guint n,
    gint64 t0_us, gint64 step_us)
{
  for (guint i = 0; i < n; i++) {
    LensdFrame *frame = make_frame (stream, first + i, t0_us + i * step_us);

    lensd_mqtt_publish_frame (mqtt, frame);
    lensd_frame_unref (frame);
  }
}

static LensdMqttConfig
test_config (guint16 port, guint qos, guint queue_size)
{
  LensdMqttConfig config = { 0 };

  config.host = (gchar *) "127.0.0.1";
  config.port = port;
  config.client_id = (gchar *) "lensd-unit-test";
  config.instance = (gchar *) "unit";
  config.topic_prefix = (gchar *) PREFIX;
  config.qos = qos;
  config.keepalive_s = 30;
  config.queue_size = queue_size;
  return config;
}

/* A value from lensd_mqtt_append_metrics (): the sample line of @name. */
static gdouble
metric (LensdMqtt *mqtt, const gchar *name)
{
  GString *text = g_string_new (NULL);
  gchar **lines;
  gdouble value = -1;
  gsize name_len = strlen (name);

  lensd_mqtt_append_metrics (mqtt, text);
  lines = g_strsplit (text->str, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], name, name_len) == 0 && lines[i][name_len] == ' ')
      value = g_ascii_strtod (lines[i] + name_len + 1, NULL);
  g_strfreev (lines);
  g_string_free (text, TRUE);
  ck_assert_msg (value >= 0, "expected a %s sample in the metrics", name);
  return value;
}

static gboolean
wait_metric (LensdMqtt *mqtt, const gchar *name, gdouble value,
    gint64 timeout_us)
{
  gint64 deadline = g_get_monotonic_time () + timeout_us;

  while (metric (mqtt, name) != value) {
    if (g_get_monotonic_time () > deadline)
      return FALSE;
    g_usleep (10000);
  }
  return TRUE;
}

static LensdMqtt *
publisher_new (const LensdMqttConfig *config)
{
  GError *error = NULL;
  LensdMqtt *mqtt = lensd_mqtt_new (config, &error);

  ck_assert_msg (mqtt != NULL, "expected an MQTT publisher: %s",
      error != NULL ? error->message : "");
  return mqtt;
}

static void
publisher_wait_connected (LensdMqtt *mqtt)
{
  if (!wait_metric (mqtt, "lensd_mqtt_connected", 1, WAIT_US)) {
    gchar *log = read_log ();

    ck_abort_msg ("expected the publisher to connect; broker log:\n%s", log);
  }
}

/* ---- fixture ------------------------------------------------------------- */

/* what a failed test leaves behind, for the teardown */
static LensdMqtt *mqtt;
static Subscriber *sub, *sub2;

static void
broker_setup_with (gboolean tls)
{
  GError *error = NULL;

  broker.dir = g_dir_make_tmp ("lensd-mqtt-XXXXXX", &error);
  ck_assert_msg (broker.dir != NULL, "expected a temporary directory: %s",
      error != NULL ? error->message : "");
  broker.tls = tls;
  if (tls)
    make_certificates ();
  {
    gchar *passwd = broker_path ("passwd");
    const gchar *argv[] = { "mosquitto_passwd", "-c", "-b", passwd, "sub",
      "subpw", NULL
    };

    run_or_fail (argv);
    g_free (passwd);
  }
  /* a free port can be taken by another process before the broker binds
   * it: then other ports */
  for (guint attempt = 0;; attempt++) {
    broker.port = free_port ();
    if (tls) {
      broker.tls_port = free_port ();
      broker.mtls_port = free_port ();
    }
    write_broker_config (tls, TRUE);
    if (broker_try_start ())
      break;
    ck_assert_msg (attempt < 5, "expected a free port for the broker");
  }
}

static void
broker_setup (void)
{
  broker_setup_with (FALSE);
}

static void
tls_broker_setup (void)
{
  broker_setup_with (TRUE);
}

static void
remove_tree (const gchar *path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  if (dir != NULL) {
    while ((name = g_dir_read_name (dir)) != NULL) {
      gchar *child = g_build_filename (path, name, NULL);

      remove_tree (child);
      g_free (child);
    }
    g_dir_close (dir);
  }
  g_remove (path);
}

static void
broker_teardown (void)
{
  lensd_mqtt_free (mqtt);
  mqtt = NULL;
  subscriber_free (sub);
  subscriber_free (sub2);
  sub = sub2 = NULL;
  broker_kill ();
  if (broker.dir != NULL)
    remove_tree (broker.dir);
  g_clear_pointer (&broker.dir, g_free);
}

/* ---- publishing ---------------------------------------------------------- */

START_TEST (test_detections_topic_and_json)
{
  LensdMqttConfig config = test_config (broker.port, 0, 100);
  const gchar *topic = PREFIX "/unit/cam.1-a_b/detections";
  GPtrArray *payloads;
  guint n;

  sub = subscriber_new (PREFIX "/#");
  mqtt = publisher_new (&config);
  publisher_wait_connected (mqtt);
  publish_frames (mqtt, "cam.1-a_b", 1, 5, g_get_real_time (), 40000);

  n = subscriber_wait (sub, topic, 5);
  ck_assert_msg (n == 5, "expected 5 messages on %s, got %u", topic, n);
  payloads = subscriber_payloads (sub, topic);
  for (guint i = 0; i < payloads->len; i++) {
    JsonParser *parser = json_parser_new ();
    GError *error = NULL;
    JsonObject *root, *det, *box;
    JsonArray *dets;

    ck_assert_msg (json_parser_load_from_data (parser,
            g_ptr_array_index (payloads, i), -1, &error),
        "expected JSON, got %s: %s", (gchar *) g_ptr_array_index (payloads,
            i), error != NULL ? error->message : "");
    ck_assert (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
    root = json_node_get_object (json_parser_get_root (parser));
    ck_assert_str_eq (json_object_get_string_member (root, "stream"),
        "cam.1-a_b");
    ck_assert_msg (json_object_get_int_member (root, "seq") == i + 1,
        "expected the frames in order, got seq %" G_GINT64_FORMAT " at %u",
        json_object_get_int_member (root, "seq"), i);
    dets = json_object_get_array_member (root, "detections");
    ck_assert_uint_eq (json_array_get_length (dets), 1);
    det = json_array_get_object_element (dets, 0);
    ck_assert_str_eq (json_object_get_string_member (det, "label"),
        "person");
    box = json_object_get_object_member (det, "box");
    ck_assert_int_eq (json_object_get_int_member (box, "w"), 16);
    g_object_unref (parser);
  }
  g_ptr_array_unref (payloads);

  /* qos 0: counted as handed over */
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_published_total", 5, WAIT_US),
      "expected 5 published in the metrics, got %g",
      metric (mqtt, "lensd_mqtt_published_total"));
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_queued"), 0);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_dropped_total"), 0);
}
END_TEST

START_TEST (test_qos1_published_on_acknowledgement)
{
  LensdMqttConfig config = test_config (broker.port, 1, 100);
  const gchar *topic = PREFIX "/unit/s/detections";
  guint n;

  sub = subscriber_new (PREFIX "/+/s/detections");
  mqtt = publisher_new (&config);
  publisher_wait_connected (mqtt);
  /* more than the in-flight limit of libmosquitto, to go through it */
  publish_frames (mqtt, "s", 1, 60, g_get_real_time (), 40000);
  n = subscriber_wait (sub, topic, 60);
  ck_assert_msg (n == 60, "expected 60 messages, got %u", n);
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_published_total", 60,
          WAIT_US), "expected 60 acknowledged, got %g",
      metric (mqtt, "lensd_mqtt_published_total"));
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_queued"), 0);
}
END_TEST

START_TEST (test_status_online_then_offline_retained)
{
  LensdMqttConfig config = test_config (broker.port, 0, 100);
  const gchar *topic = PREFIX "/unit/status";
  gboolean retained = FALSE;

  sub = subscriber_new (topic);
  mqtt = publisher_new (&config);
  ck_assert_msg (subscriber_wait_payload (sub, topic, "online", NULL),
      "expected \"online\" on %s", topic);
  /* a subscriber that comes later still learns it: retained */
  sub2 = subscriber_new (topic);
  ck_assert_msg (subscriber_wait_payload (sub2, topic, "online", &retained),
      "expected a late subscriber to get \"online\"");
  ck_assert_msg (retained, "expected \"online\" to be retained");

  lensd_mqtt_free (mqtt);
  mqtt = NULL;
  ck_assert_msg (subscriber_wait_payload (sub, topic, "offline", NULL),
      "expected \"offline\" on %s after lensd_mqtt_free", topic);
  subscriber_free (sub2);
  sub2 = subscriber_new (topic);
  ck_assert_msg (subscriber_wait_payload (sub2, topic, "offline", &retained),
      "expected a late subscriber to get \"offline\"");
  ck_assert_msg (retained, "expected \"offline\" to be retained");
}
END_TEST

START_TEST (test_state_retained_and_updated)
{
  LensdMqttConfig config = test_config (broker.port, 0, 100);
  const gchar *topic = PREFIX "/unit/door/state";
  gboolean retained = TRUE;

  sub = subscriber_new (PREFIX "/+/door/state");
  mqtt = publisher_new (&config);
  /* most likely before the connection: kept, and sent once connected */
  lensd_mqtt_publish_state (mqtt, "door", LENSD_STREAM_CONNECTING);
  lensd_mqtt_publish_state (mqtt, "door", LENSD_STREAM_STREAMING);
  ck_assert_msg (subscriber_wait_payload (sub, topic, "streaming", NULL),
      "expected \"streaming\" on %s", topic);
  sub2 = subscriber_new (topic);
  ck_assert_msg (subscriber_wait_payload (sub2, topic, "streaming",
          &retained), "expected a late subscriber to get \"streaming\"");
  ck_assert_msg (retained, "expected the state to be retained");

  lensd_mqtt_publish_state (mqtt, "door", LENSD_STREAM_BACKOFF);
  ck_assert_msg (subscriber_wait_payload (sub2, topic, "backoff", &retained),
      "expected \"backoff\" on %s", topic);
  ck_assert_msg (!retained, "expected a live update, not a retained one");
  /* states never go through the detections queue or its counters */
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_published_total"), 0);

  /* the daemon stops its streams, then frees the publisher: the last
   * states still go out, before "offline" */
  lensd_mqtt_publish_state (mqtt, "door", LENSD_STREAM_STOPPED);
  lensd_mqtt_free (mqtt);
  mqtt = NULL;
  ck_assert_msg (subscriber_wait_payload (sub, topic, "stopped", NULL),
      "expected \"stopped\" on %s before the publisher went", topic);
}
END_TEST

/* ---- the last will ------------------------------------------------------- */

START_TEST (test_last_will_on_kill)
{
  const gchar *topic = PREFIX "/child/status";
  gchar *exe = g_file_read_link ("/proc/self/exe", NULL);
  gchar *port = g_strdup_printf ("%u", broker.port);
  const gchar *argv[] = { exe, "--mqtt-client", port, "child", NULL };
  GSubprocess *child;
  GDataInputStream *out;
  gchar *line;
  gboolean retained;

  sub = subscriber_new (topic);
  child = spawn (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (child));
  line = g_data_input_stream_read_line (out, NULL, NULL, NULL);
  ck_assert_msg (g_strcmp0 (line, "connected") == 0,
      "expected the child client to connect, it said %s", line);
  ck_assert_msg (subscriber_wait_payload (sub, topic, "online", NULL),
      "expected the child's \"online\"");

  g_subprocess_send_signal (child, SIGKILL);
  g_subprocess_wait (child, NULL, NULL);
  ck_assert_msg (subscriber_wait_payload (sub, topic, "offline", NULL),
      "expected the last will \"offline\" once the child was killed");
  sub2 = subscriber_new (topic);
  ck_assert_msg (subscriber_wait_payload (sub2, topic, "offline", &retained)
      && retained, "expected the last will to be retained");

  g_free (line);
  g_object_unref (out);
  g_object_unref (child);
  g_free (port);
  g_free (exe);
}
END_TEST

/* The child of test_last_will_on_kill. */
static int
run_client (const gchar *port, const gchar *instance)
{
  LensdMqttConfig config = test_config ((guint16) atoi (port), 0, 10);
  GError *error = NULL;
  LensdMqtt *client;
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  config.instance = (gchar *) instance;
  config.client_id = (gchar *) "lensd-unit-test-child";
  client = lensd_mqtt_new (&config, &error);
  if (client == NULL) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  while (TRUE) {
    GString *text = g_string_new (NULL);
    gboolean up;

    lensd_mqtt_append_metrics (client, text);
    up = strstr (text->str, "\nlensd_mqtt_connected 1\n") != NULL;
    g_string_free (text, TRUE);
    if (up)
      break;
    if (g_get_monotonic_time () > deadline) {
      g_printerr ("no connection\n");
      return 1;
    }
    g_usleep (10000);
  }
  printf ("connected\n");
  fflush (stdout);
  /* killed here; the bound only matters if the parent is gone */
  g_usleep (WAIT_US);
  lensd_mqtt_free (client);
  return 0;
}

/* ---- reconnection and the queue ------------------------------------------ */

/* _i: the qos. The broker is killed while nothing is in flight, frames
 * come while it is away, and it comes back (gated: the subscriber first),
 * so what arrives is exactly what the publisher delivered. */
START_TEST (test_broker_restart_accounting)
{
  guint qos = _i;
  const guint queue_size = 5, before = 3, during = 12;
  LensdMqttConfig config = test_config (broker.port, qos, queue_size);
  const gchar *topic = PREFIX "/unit/cam/detections";
  gint64 t0 = g_get_real_time (), restarted;
  GPtrArray *payloads;
  guint n, expected;

  sub = subscriber_new (PREFIX "/#");
  mqtt = publisher_new (&config);
  lensd_mqtt_publish_state (mqtt, "cam", LENSD_STREAM_STREAMING);
  publisher_wait_connected (mqtt);
  publish_frames (mqtt, "cam", 1, before, t0, 40000);
  n = subscriber_wait (sub, topic, before);
  ck_assert_msg (n == before, "expected %u messages before the kill, got %u",
      before, n);
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_published_total", before,
          WAIT_US), "expected %u published before the kill", before);

  broker_kill ();
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_connected", 0, WAIT_US),
      "expected the publisher to notice the broker is gone");

  /* the queue keeps the newest queue_size; the rest are dropped */
  publish_frames (mqtt, "cam", before + 1, during, t0 + before * 40000, 40000);
  lensd_mqtt_publish_state (mqtt, "cam", LENSD_STREAM_BACKOFF);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_queued"), queue_size);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_dropped_total"),
      during - queue_size);

  broker_restart_gated (sub);
  restarted = g_get_monotonic_time ();
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_connected", 1,
          RECONNECT_US), "expected a reconnection within 10 s of the "
      "broker's restart");
  ck_assert_msg (g_get_monotonic_time () - restarted <= RECONNECT_US,
      "expected the reconnection within 10 s, took %" G_GINT64_FORMAT " us",
      g_get_monotonic_time () - restarted);

  expected = before + queue_size;
  n = subscriber_wait (sub, topic, expected);
  ck_assert_msg (n == expected, "expected %u messages in all, got %u",
      expected, n);
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_published_total", expected,
          WAIT_US), "expected %u published, got %g", expected,
      metric (mqtt, "lensd_mqtt_published_total"));
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_queued"), 0);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_reconnects_total"), 1);
  /* loss is what the queue dropped, as counted */
  ck_assert_int_eq ((gint) (before + during - n),
      (gint) metric (mqtt, "lensd_mqtt_dropped_total"));

  /* which ones: the first ones, then the newest queue_size, in order */
  payloads = subscriber_payloads (sub, topic);
  for (guint i = 0; i < payloads->len; i++) {
    guint64 want = i < before ? i + 1 : before + during - queue_size + 1
        + (i - before);
    gchar *seq = g_strdup_printf ("\"seq\":%" G_GUINT64_FORMAT ",", want);

    ck_assert_msg (strstr (g_ptr_array_index (payloads, i), seq) != NULL,
        "expected message %u to carry %s: %s", i, seq,
        (gchar *) g_ptr_array_index (payloads, i));
    g_free (seq);
  }
  g_ptr_array_unref (payloads);

  /* the state that changed while away, and the status, are back */
  ck_assert_msg (subscriber_wait_payload (sub, PREFIX "/unit/cam/state",
          "backoff", NULL), "expected the state changed during the outage");
  sub2 = subscriber_new (PREFIX "/unit/status");
  ck_assert_msg (subscriber_wait_payload (sub2, PREFIX "/unit/status",
          "online", NULL), "expected \"online\" after the reconnection");
}
END_TEST

/* qos 1 messages the broker never acknowledged (it was stopped, then
 * killed) are sent again after the reconnection and counted once. */
START_TEST (test_inflight_resent_after_broker_death)
{
  const guint n_frames = 30;
  LensdMqttConfig config = test_config (broker.port, 1, 100);
  const gchar *topic = PREFIX "/unit/cam/detections";
  GPtrArray *payloads;
  GHashTable *seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  guint n;

  sub = subscriber_new (PREFIX "/#");
  mqtt = publisher_new (&config);
  publisher_wait_connected (mqtt);
  /* frozen: the publishes reach its socket, no acknowledgement comes */
  g_subprocess_send_signal (broker.process, SIGSTOP);
  publish_frames (mqtt, "cam", 1, n_frames, g_get_real_time (), 40000);
  g_usleep (200000);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_published_total"), 0);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_queued"), n_frames);
  broker_kill ();
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_connected", 0, WAIT_US),
      "expected the publisher to notice the broker is gone");

  broker_restart_gated (sub);
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_published_total", n_frames,
          WAIT_US), "expected all %u acknowledged after the restart, got %g",
      n_frames, metric (mqtt, "lensd_mqtt_published_total"));
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_queued"), 0);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_dropped_total"), 0);
  n = subscriber_wait (sub, topic, n_frames);
  ck_assert_msg (n >= n_frames, "expected %u messages, got %u", n_frames, n);
  /* qos 1 is at least once: duplicates are allowed, gaps are not */
  payloads = subscriber_payloads (sub, topic);
  for (guint i = 0; i < payloads->len; i++) {
    const gchar *seq = strstr (g_ptr_array_index (payloads, i), "\"seq\":");

    ck_assert (seq != NULL);
    g_hash_table_add (seen, g_strndup (seq, strcspn (seq, ",")));
  }
  ck_assert_uint_eq (g_hash_table_size (seen), n_frames);
  g_hash_table_unref (seen);
  g_ptr_array_unref (payloads);
}
END_TEST

START_TEST (test_no_broker_never_blocks)
{
  guint16 port = free_port ();
  LensdMqttConfig config = test_config (port, 1, 10);
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed;

  /* nothing listens there: everything still returns at once */
  mqtt = publisher_new (&config);
  publish_frames (mqtt, "cam", 1, 50, g_get_real_time (), 40000);
  lensd_mqtt_publish_state (mqtt, "cam", LENSD_STREAM_STREAMING);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_connected"), 0);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_queued"), 10);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_dropped_total"), 40);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_published_total"), 0);
  /* a bound, not a measurement: free waits at most 2 s */
  lensd_mqtt_free (mqtt);
  mqtt = NULL;
  elapsed = g_get_monotonic_time () - start;
  ck_assert_msg (elapsed < 10 * G_USEC_PER_SEC, "expected new, publishing "
      "and free without a broker to return, took %" G_GINT64_FORMAT " us",
      elapsed);
}
END_TEST

/* A name that never resolves: looked up on the publisher's own thread,
 * retried, and nothing waits for it. */
START_TEST (test_unresolvable_host_never_blocks)
{
  LensdMqttConfig config = test_config (1883, 0, 10);
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed;

  config.host = (gchar *) "lensd-test.invalid";
  mqtt = publisher_new (&config);
  publish_frames (mqtt, "cam", 1, 15, g_get_real_time (), 40000);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_queued"), 10);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_dropped_total"), 5);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_connected"), 0);
  lensd_mqtt_free (mqtt);
  mqtt = NULL;
  elapsed = g_get_monotonic_time () - start;
  ck_assert_msg (elapsed < 10 * G_USEC_PER_SEC, "expected new, publishing "
      "and free with an unresolvable host to return, took %"
      G_GINT64_FORMAT " us", elapsed);
}
END_TEST

START_TEST (test_metrics_text)
{
  LensdMqttConfig config = test_config (broker.port, 0, 100);
  const gchar *names[] = { "lensd_mqtt_published_total",
    "lensd_mqtt_dropped_total", "lensd_mqtt_queued", "lensd_mqtt_connected",
    "lensd_mqtt_reconnects_total"
  };
  const gchar *types[] = { "counter", "counter", "gauge", "gauge",
    "counter"
  };
  GString *text = g_string_new ("lensd_other 1\n");

  mqtt = publisher_new (&config);
  publisher_wait_connected (mqtt);
  lensd_mqtt_append_metrics (mqtt, text);
  ck_assert_msg (g_str_has_prefix (text->str, "lensd_other 1\n"),
      "expected the metrics appended to what was there");
  for (guint i = 0; i < G_N_ELEMENTS (names); i++) {
    gchar *help = g_strdup_printf ("\n# HELP %s ", names[i]);
    gchar *type = g_strdup_printf ("\n# TYPE %s %s\n", names[i], types[i]);

    ck_assert_msg (strstr (text->str, help) != NULL, "expected %s", help + 1);
    ck_assert_msg (strstr (text->str, type) != NULL, "expected %s", type + 1);
    g_free (help);
    g_free (type);
  }
  ck_assert_msg (g_str_has_suffix (text->str, "\n"), "expected a final "
      "newline");
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_connected"), 1);
  lensd_mqtt_append_metrics (NULL, text);
  g_string_free (text, TRUE);
}
END_TEST

/* ---- TLS ----------------------------------------------------------------- */

START_TEST (test_tls_with_test_ca)
{
  LensdMqttConfig config = test_config (broker.tls_port, 1, 100);
  gchar *ca = broker_path ("ca.crt");
  const gchar *topic = PREFIX "/unit/tls/detections";

  sub = subscriber_new (topic);
  config.ca_file = ca;
  mqtt = publisher_new (&config);
  publisher_wait_connected (mqtt);
  publish_frames (mqtt, "tls", 1, 3, g_get_real_time (), 40000);
  ck_assert_uint_eq (subscriber_wait (sub, topic, 3), 3);
  g_free (ca);
}
END_TEST

START_TEST (test_tls_client_certificate)
{
  LensdMqttConfig config = test_config (broker.mtls_port, 0, 100);
  gchar *ca = broker_path ("ca.crt"), *cert = broker_path ("client.crt");
  gchar *key = broker_path ("client.key");
  const gchar *topic = PREFIX "/unit/mtls/detections";

  sub = subscriber_new (topic);
  config.ca_file = ca;
  config.cert_file = cert;
  config.key_file = key;
  mqtt = publisher_new (&config);
  publisher_wait_connected (mqtt);
  publish_frames (mqtt, "mtls", 1, 2, g_get_real_time (), 40000);
  ck_assert_uint_eq (subscriber_wait (sub, topic, 2), 2);
  g_free (ca);
  g_free (cert);
  g_free (key);
}
END_TEST

/* A broker whose certificate the configured CA did not sign is never
 * trusted, however long it is tried. */
START_TEST (test_tls_wrong_ca_refused)
{
  LensdMqttConfig config = test_config (broker.tls_port, 0, 100);
  gchar *other = broker_path ("other-ca.crt");
  gchar *log;

  config.ca_file = other;
  mqtt = publisher_new (&config);
  /* the broker saw the handshake fail, so an attempt was made */
  for (gint64 deadline = g_get_monotonic_time () + WAIT_US;;) {
    log = read_log ();
    if (strstr (log, "OpenSSL Error") != NULL || strstr (log,
            "protocol error") != NULL || strstr (log, "Client <unknown> "
            "disconnected") != NULL)
      break;
    g_free (log);
    log = NULL;
    ck_assert_msg (g_get_monotonic_time () < deadline,
        "expected a refused TLS handshake in the broker's log");
    g_usleep (50000);
  }
  g_free (log);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_connected"), 0);
  g_free (other);
}
END_TEST

/* ---- rate limit ---------------------------------------------------------- */

START_TEST (test_publish_fps)
{
  LensdMqttConfig config = test_config (broker.port, 0, 1000);
  const gchar *topic = PREFIX "/unit/fast/detections";
  const gchar *other_topic = PREFIX "/unit/other/detections";
  gint64 t0 = g_get_real_time ();
  GPtrArray *payloads;
  guint n;

  config.publish_fps = 5;
  sub = subscriber_new (PREFIX "/#");
  mqtt = publisher_new (&config);
  publisher_wait_connected (mqtt);
  /* 2 s of results at 50 fps, by their own clock: one per 200 ms */
  publish_frames (mqtt, "fast", 1, 100, t0, 20000);
  /* per stream: another stream has its own budget */
  publish_frames (mqtt, "other", 1, 3, t0, 20000);
  n = subscriber_wait (sub, other_topic, 1);
  ck_assert_uint_eq (n, 1);
  n = subscriber_wait (sub, topic, 10);
  ck_assert_msg (n == 10, "expected 10 messages at 5 fps over 2 s, got %u",
      n);
  payloads = subscriber_payloads (sub, topic);
  for (guint i = 0; i < payloads->len; i++) {
    gchar *seq = g_strdup_printf ("\"seq\":%u,", 1 + 10 * i);

    ck_assert_msg (strstr (g_ptr_array_index (payloads, i), seq) != NULL,
        "expected message %u to be frame %s", i, seq);
    g_free (seq);
  }
  g_ptr_array_unref (payloads);
  /* after a pause, one frame goes at once, not a burst to catch up */
  publish_frames (mqtt, "fast", 101, 3, t0 + 10 * G_USEC_PER_SEC, 20000);
  ck_assert_msg (wait_metric (mqtt, "lensd_mqtt_published_total", 12,
          WAIT_US), "expected 12 published, got %g",
      metric (mqtt, "lensd_mqtt_published_total"));
  ck_assert_uint_eq (subscriber_wait (sub, topic, 11), 11);
  ck_assert_uint_eq (subscriber_count (sub, other_topic), 1);
}
END_TEST

START_TEST (test_publish_fps_zero_is_every_frame)
{
  LensdMqttConfig config = test_config (broker.port, 0, 1000);
  const gchar *topic = PREFIX "/unit/all/detections";

  sub = subscriber_new (topic);
  mqtt = publisher_new (&config);
  publisher_wait_connected (mqtt);
  /* same timestamps even: nothing is skipped */
  publish_frames (mqtt, "all", 1, 20, g_get_real_time (), 0);
  ck_assert_uint_eq (subscriber_wait (sub, topic, 20), 20);
}
END_TEST

/* ---- configurations refused ---------------------------------------------- */

START_TEST (test_bad_configs)
{
  LensdMqttConfig config;
  GError *error = NULL;
  LensdMqtt *bad;

#define EXPECT_REFUSED(what, fragment) \
  G_STMT_START { \
    bad = lensd_mqtt_new (&config, &error); \
    ck_assert_msg (bad == NULL, "expected %s to be refused", what); \
    ck_assert_msg (error != NULL && strstr (error->message, fragment), \
        "expected an error about %s naming \"%s\", got %s", what, fragment, \
        error != NULL ? error->message : "none"); \
    g_clear_error (&error); \
  } G_STMT_END

  config = test_config (1883, 2, 10);
  EXPECT_REFUSED ("qos 2", "qos");
  config = test_config (1883, 0, 0);
  EXPECT_REFUSED ("an empty queue", "queue-size");
  config = test_config (1883, 0, 10);
  config.host = NULL;
  EXPECT_REFUSED ("no host", "host");
  config = test_config (1883, 0, 10);
  config.topic_prefix = (gchar *) "lens/#";
  EXPECT_REFUSED ("a wildcard in the prefix", "topic-prefix");
  config = test_config (1883, 0, 10);
  config.password = (gchar *) "secret";
  EXPECT_REFUSED ("a password without username", "username");
  config = test_config (1883, 0, 10);
  config.publish_fps = -1;
  EXPECT_REFUSED ("a negative rate", "publish-fps");
  config = test_config (1883, 0, 10);
  config.ca_file = (gchar *) "/nonexistent/ca.crt";
  EXPECT_REFUSED ("a missing CA file", "/nonexistent/ca.crt");
  config = test_config (1883, 0, 10);
  config.cert_file = (gchar *) "/nonexistent/client.crt";
  config.key_file = (gchar *) "/nonexistent/client.key";
  EXPECT_REFUSED ("a client certificate without TLS", "ca-file");
#undef EXPECT_REFUSED
}
END_TEST

/* The instance level: a host name with MQTT's special characters becomes
 * one plain level. */
START_TEST (test_instance_sanitised)
{
  LensdMqttConfig config = test_config (broker.port, 0, 100);
  const gchar *topic = PREFIX "/a_b_c_d/status";

  config.instance = (gchar *) "a/b+c#d";
  sub = subscriber_new (PREFIX "/#");
  mqtt = publisher_new (&config);
  ck_assert_msg (subscriber_wait_payload (sub, topic, "online", NULL),
      "expected \"online\" on %s", topic);
  /* a frame of a stream whose name makes no level is not published */
  publish_frames (mqtt, "bad/name", 1, 1, g_get_real_time (), 0);
  publish_frames (mqtt, "good", 1, 1, g_get_real_time (), 0);
  ck_assert_uint_eq (subscriber_wait (sub, PREFIX "/a_b_c_d/good/detections",
          1), 1);
  ck_assert_int_eq ((gint) metric (mqtt, "lensd_mqtt_published_total"), 1);
}
END_TEST

static Suite *
lensd_mqtt_suite (void)
{
  Suite *s = suite_create ("lensd-mqtt");
  TCase *tc;

  tc = tcase_create ("publishing");
  tcase_add_checked_fixture (tc, broker_setup, broker_teardown);
  tcase_add_test (tc, test_detections_topic_and_json);
  tcase_add_test (tc, test_qos1_published_on_acknowledgement);
  tcase_add_test (tc, test_status_online_then_offline_retained);
  tcase_add_test (tc, test_state_retained_and_updated);
  tcase_add_test (tc, test_instance_sanitised);
  tcase_add_test (tc, test_metrics_text);
  suite_add_tcase (s, tc);

  tc = tcase_create ("last-will");
  tcase_add_checked_fixture (tc, broker_setup, broker_teardown);
  tcase_add_test (tc, test_last_will_on_kill);
  suite_add_tcase (s, tc);

  tc = tcase_create ("reconnection");
  tcase_add_checked_fixture (tc, broker_setup, broker_teardown);
  tcase_add_loop_test (tc, test_broker_restart_accounting, 0, 2);
  tcase_add_test (tc, test_inflight_resent_after_broker_death);
  tcase_add_test (tc, test_no_broker_never_blocks);
  tcase_add_test (tc, test_unresolvable_host_never_blocks);
  suite_add_tcase (s, tc);

  tc = tcase_create ("tls");
  tcase_add_checked_fixture (tc, tls_broker_setup, broker_teardown);
  tcase_add_test (tc, test_tls_with_test_ca);
  tcase_add_test (tc, test_tls_client_certificate);
  tcase_add_test (tc, test_tls_wrong_ca_refused);
  suite_add_tcase (s, tc);

  tc = tcase_create ("rate-limit");
  tcase_add_checked_fixture (tc, broker_setup, broker_teardown);
  tcase_add_test (tc, test_publish_fps);
  tcase_add_test (tc, test_publish_fps_zero_is_every_frame);
  suite_add_tcase (s, tc);

  tc = tcase_create ("config");
  tcase_add_test (tc, test_bad_configs);
  suite_add_tcase (s, tc);
  return s;
}

int
main (int argc, char **argv)
{
  gst_init (NULL, NULL);
  mosquitto_lib_init ();
  if (argc == 4 && strcmp (argv[1], "--mqtt-client") == 0)
    return run_client (argv[2], argv[3]);

  if (!g_file_test (MOSQUITTO_PATH, G_FILE_TEST_IS_EXECUTABLE)) {
    printf ("SKIP: no Mosquitto broker at " MOSQUITTO_PATH " (Debian "
        "package mosquitto)\n");
    return 77;
  }
  return lens_check_run (lensd_mqtt_suite ());
}
