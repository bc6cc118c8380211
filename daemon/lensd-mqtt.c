/* lensd-mqtt.c: publishing detections and stream states to an MQTT broker
 * with libmosquitto: the connection (TLS, credentials, last will,
 * reconnection with backoff), the bounded queue between the frame path and
 * the broker, per-stream rate limiting, and the MQTT lines of /metrics.
 *
 * Threads: the frame path and the supervisors only take the lock for a
 * moment to queue. A network thread owns the connection and runs
 * mosquitto_loop () (threaded mode "external"); a sender thread moves
 * queued messages to libmosquitto while connected. Topics:
 *   <prefix>/<instance>/status               "online"/"offline", retained
 *   <prefix>/<instance>/<stream>/state       the state name, retained
 *   <prefix>/<instance>/<stream>/detections  lensd_frame_json ()
 */
#include "lensd.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>

/* qos 1 detections handed to libmosquitto and not yet acknowledged; the
 * rest wait in our queue, where the bound and the drop policy are ours */
#define LENSD_MQTT_MAX_INFLIGHT 20
#define LENSD_MQTT_BACKOFF_MIN_S 1
#define LENSD_MQTT_BACKOFF_MAX_S 30
/* how long one mosquitto_loop () may wait for the socket; publishing and
 * disconnecting wake it earlier */
#define LENSD_MQTT_LOOP_TIMEOUT_MS 500
#define LENSD_MQTT_STOP_WAIT_US (2 * G_USEC_PER_SEC)

typedef struct
{
  gchar *topic;
  GBytes *payload;
} LensdMqttMessage;

typedef struct
{
  LensdStreamState state;
  gboolean dirty;               /* not yet published on this connection */
} LensdMqttStreamState;

struct _LensdMqtt
{
  /* the owner and the network thread: lensd_mqtt_free () may give up
   * waiting for a network thread stuck in a name lookup, which then frees
   * what is left when it returns */
  gint ref_count;

  struct mosquitto *mosq;
  gchar *host;
  gint port;
  gint keepalive_s;
  gint qos;
  gchar *topic_base;            /* <prefix>/<instance> */
  gchar *status_topic;
  gint64 publish_period_us;     /* 0: every frame */
  guint queue_size;

  GMutex lock;
  GCond cond;                   /* anything below changed */
  GQueue queue;                 /* LensdMqttMessage *, oldest first */
  GHashTable *inflight;         /* mids of qos 1 detections not acked */
  GHashTable *next_due_us;      /* stream -> gint64 *, the rate limit */
  GHashTable *states;           /* stream -> LensdMqttStreamState * */
  guint n_dirty_states;
  gboolean connected;
  gboolean ever_connected;
  gboolean stopping;
  gint64 stop_deadline_us;
  guint failures;               /* connection attempts failed in a row */
  gboolean outage_reported;
  gboolean network_done;
  guint64 published, dropped, reconnects;

  GThread *network_thread, *sender_thread;
};

static void
lensd_mqtt_message_free (LensdMqttMessage *message)
{
  g_free (message->topic);
  g_bytes_unref (message->payload);
  g_free (message);
}

static LensdMqttMessage *
lensd_mqtt_message_new (gchar *topic, GBytes *payload)
{
  LensdMqttMessage *message = g_new (LensdMqttMessage, 1);

  message->topic = topic;
  message->payload = payload;
  return message;
}

static void
lensd_mqtt_unref (LensdMqtt *mqtt)
{
  if (!g_atomic_int_dec_and_test (&mqtt->ref_count))
    return;
  if (mqtt->mosq != NULL)
    mosquitto_destroy (mqtt->mosq);
  g_queue_clear_full (&mqtt->queue, (GDestroyNotify) lensd_mqtt_message_free);
  g_hash_table_unref (mqtt->inflight);
  g_hash_table_unref (mqtt->next_due_us);
  g_hash_table_unref (mqtt->states);
  g_mutex_clear (&mqtt->lock);
  g_cond_clear (&mqtt->cond);
  g_free (mqtt->host);
  g_free (mqtt->topic_base);
  g_free (mqtt->status_topic);
  g_free (mqtt);
}

/* A topic level from a host name: MQTT gives '/', '+' and '#' meaning. */
static gchar *
lensd_mqtt_topic_level_from (const gchar *name)
{
  gchar *level = g_strdup (name != NULL && *name != '\0' ? name : "lensd");

  g_strdelimit (level, "/+#", '_');
  return level;
}

/* Stream names are checked by the configuration; this keeps a name that
 * somehow is not from turning into a wildcard or an extra level. */
static gboolean
lensd_mqtt_stream_level_valid (const gchar *stream)
{
  if (stream == NULL || *stream == '\0')
    return FALSE;
  for (const gchar *c = stream; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && *c != '_' && *c != '.' && *c != '-')
      return FALSE;
  return TRUE;
}

/* ---- libmosquitto callbacks (the network thread) ------------------------- */

static void
lensd_mqtt_on_connect (struct mosquitto *mosq, void *user_data, int rc)
{
  LensdMqtt *mqtt = user_data;
  GHashTableIter iter;
  LensdMqttStreamState *state;

  if (rc != 0) {
    /* the loop returns an error next and the network thread backs off */
    g_mutex_lock (&mqtt->lock);
    if (!mqtt->outage_reported)
      g_warning ("MQTT broker %s:%d refused the connection: %s", mqtt->host,
          mqtt->port, mosquitto_connack_string (rc));
    mqtt->outage_reported = TRUE;
    g_mutex_unlock (&mqtt->lock);
    return;
  }

  /* first in the outgoing queue, before any state or detections */
  mosquitto_publish (mosq, NULL, mqtt->status_topic, strlen ("online"),
      "online", 0, TRUE);

  g_mutex_lock (&mqtt->lock);
  if (mqtt->ever_connected)
    mqtt->reconnects++;
  mqtt->ever_connected = TRUE;
  mqtt->connected = TRUE;
  mqtt->failures = 0;
  mqtt->outage_reported = FALSE;
  /* retained states may have been lost with a broker without persistence */
  mqtt->n_dirty_states = 0;
  g_hash_table_iter_init (&iter, mqtt->states);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) & state)) {
    state->dirty = TRUE;
    mqtt->n_dirty_states++;
  }
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);
  g_message ("MQTT: connected to %s:%d", mqtt->host, mqtt->port);
}

static void
lensd_mqtt_on_disconnect (struct mosquitto *mosq, void *user_data, int rc)
{
  LensdMqtt *mqtt = user_data;
  gboolean was_connected;

  g_mutex_lock (&mqtt->lock);
  was_connected = mqtt->connected;
  mqtt->connected = FALSE;
  /* said once here; the retries that follow stay quiet */
  if (was_connected && rc != 0)
    mqtt->outage_reported = TRUE;
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);
  if (was_connected && rc != 0)
    g_warning ("MQTT: lost the connection to %s:%d (%s); reconnecting",
        mqtt->host, mqtt->port, mosquitto_strerror (rc));
}

/* qos 1: the broker acknowledged @mid. Status and state messages (qos 0)
 * come here too; they are not in the in-flight table. */
static void
lensd_mqtt_on_publish (struct mosquitto *mosq, void *user_data, int mid)
{
  LensdMqtt *mqtt = user_data;

  g_mutex_lock (&mqtt->lock);
  if (g_hash_table_remove (mqtt->inflight, GINT_TO_POINTER (mid))) {
    mqtt->published++;
    g_cond_broadcast (&mqtt->cond);
  }
  g_mutex_unlock (&mqtt->lock);
}

/* ---- the network thread -------------------------------------------------- */

/* Seconds before connection attempt @failures + 1: 1, 2, 4, ... 30, each
 * within +-25 %, so instances that lost one broker do not all come back in
 * the same instant. */
static gint64
lensd_mqtt_backoff_us (guint failures)
{
  gdouble s = LENSD_MQTT_BACKOFF_MIN_S * (gdouble) (1u << MIN (failures, 5));

  s = MIN (s, LENSD_MQTT_BACKOFF_MAX_S);
  return (gint64) (s * g_random_double_range (0.75, 1.25) * G_USEC_PER_SEC);
}

static gboolean
lensd_mqtt_network_should_quit (LensdMqtt *mqtt)
{
  gboolean quit;

  g_mutex_lock (&mqtt->lock);
  /* connected: the DISCONNECT lensd_mqtt_free queued is still to go out */
  quit = mqtt->stopping && (!mqtt->connected
      || g_get_monotonic_time () >= mqtt->stop_deadline_us);
  g_mutex_unlock (&mqtt->lock);
  return quit;
}

/* Our own loop instead of mosquitto_loop_start (): that thread returns for
 * good on errors it deems fatal (a failed name lookup, a TLS error) and
 * mosquitto_connect_async () resolves the host in the caller. Here every
 * failure is retried with backoff, the host is resolved on this thread,
 * and stopping never waits out a backoff. */
static gpointer
lensd_mqtt_network_main (gpointer data)
{
  LensdMqtt *mqtt = data;
  int rc, saved_errno;

  g_mutex_lock (&mqtt->lock);
  while (!mqtt->stopping) {
    gint64 retry_at;

    g_mutex_unlock (&mqtt->lock);
    rc = mosquitto_connect_async (mqtt->mosq, mqtt->host, mqtt->port,
        mqtt->keepalive_s);
    while (rc == MOSQ_ERR_SUCCESS && !lensd_mqtt_network_should_quit (mqtt))
      rc = mosquitto_loop (mqtt->mosq, LENSD_MQTT_LOOP_TIMEOUT_MS, 1);
    saved_errno = errno;
    g_mutex_lock (&mqtt->lock);
    mqtt->connected = FALSE;
    if (mqtt->stopping)
      break;
    if (!mqtt->outage_reported) {
      g_warning ("MQTT: cannot reach the broker %s:%d (%s); retrying",
          mqtt->host, mqtt->port, rc == MOSQ_ERR_ERRNO
          ? g_strerror (saved_errno) : mosquitto_strerror (rc));
      mqtt->outage_reported = TRUE;
    }
    retry_at = g_get_monotonic_time () + lensd_mqtt_backoff_us (mqtt->failures);
    mqtt->failures++;
    while (!mqtt->stopping
        && g_cond_wait_until (&mqtt->cond, &mqtt->lock, retry_at));
  }
  mqtt->network_done = TRUE;
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);
  lensd_mqtt_unref (mqtt);
  return NULL;
}

/* ---- the sender thread --------------------------------------------------- */

/* Publishes one stream state that this connection has not seen yet; the
 * lock held. qos 0 is enough: every connection republishes every state. */
static void
lensd_mqtt_send_dirty_state (LensdMqtt *mqtt)
{
  GHashTableIter iter;
  const gchar *stream;
  LensdMqttStreamState *state;

  g_hash_table_iter_init (&iter, mqtt->states);
  while (g_hash_table_iter_next (&iter, (gpointer *) & stream,
          (gpointer *) & state)) {
    const gchar *name = lensd_stream_state_name (state->state);
    gchar *topic;
    int rc;

    if (!state->dirty)
      continue;
    topic = g_strdup_printf ("%s/%s/state", mqtt->topic_base, stream);
    rc = mosquitto_publish (mqtt->mosq, NULL, topic, (int) strlen (name),
        name, 0, TRUE);
    g_free (topic);
    if (rc != MOSQ_ERR_SUCCESS) {
      /* the connection went away: on_connect marks it dirty again */
      g_cond_wait_until (&mqtt->cond, &mqtt->lock,
          g_get_monotonic_time () + 100 * G_TIME_SPAN_MILLISECOND);
      return;
    }
    state->dirty = FALSE;
    mqtt->n_dirty_states--;
    return;
  }
  mqtt->n_dirty_states = 0;
}

static gboolean
lensd_mqtt_can_send_detections (LensdMqtt *mqtt)
{
  return mqtt->queue.length > 0 && (mqtt->qos == 0
      || g_hash_table_size (mqtt->inflight) < LENSD_MQTT_MAX_INFLIGHT);
}

/* Hands one queued detections message to libmosquitto; the lock held (so
 * that a qos 1 acknowledgement cannot come before its mid is recorded;
 * mosquitto_publish () only queues and wakes the network thread). */
static void
lensd_mqtt_send_detections (LensdMqtt *mqtt)
{
  LensdMqttMessage *message = g_queue_pop_head (&mqtt->queue);
  gsize length;
  gconstpointer data = g_bytes_get_data (message->payload, &length);
  int mid = 0;
  int rc;

  rc = mosquitto_publish (mqtt->mosq, &mid, message->topic, (int) length,
      data, mqtt->qos, FALSE);
  if (rc == MOSQ_ERR_SUCCESS) {
    /* libmosquitto has its own copy, also for resending */
    if (mqtt->qos == 0)
      mqtt->published++;
    else
      g_hash_table_add (mqtt->inflight, GINT_TO_POINTER (mid));
    lensd_mqtt_message_free (message);
    return;
  }
  if (rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST) {
    /* retrying would not help this one */
    g_warning ("MQTT: cannot publish to %s: %s; dropped", message->topic,
        mosquitto_strerror (rc));
    mqtt->dropped++;
    lensd_mqtt_message_free (message);
    return;
  }
  /* the connection went away under us: back to the head, to go first
   * once it is back (the queue has room: the lock was held since the pop),
   * and wait for the network thread to notice rather than spin */
  g_queue_push_head (&mqtt->queue, message);
  g_cond_wait_until (&mqtt->cond, &mqtt->lock,
      g_get_monotonic_time () + 100 * G_TIME_SPAN_MILLISECOND);
}

static gpointer
lensd_mqtt_sender_main (gpointer data)
{
  LensdMqtt *mqtt = data;

  g_mutex_lock (&mqtt->lock);
  while (!mqtt->stopping) {
    if (mqtt->connected && mqtt->n_dirty_states > 0) {
      lensd_mqtt_send_dirty_state (mqtt);
    } else if (mqtt->connected && lensd_mqtt_can_send_detections (mqtt)) {
      lensd_mqtt_send_detections (mqtt);
    } else {
      g_cond_wait (&mqtt->cond, &mqtt->lock);
    }
  }
  g_mutex_unlock (&mqtt->lock);
  return NULL;
}

/* ---- public -------------------------------------------------------------- */

static void
lensd_mqtt_lib_init (void)
{
  static gsize initialised = 0;

  /* process-wide, and never undone: other clients may still run */
  if (g_once_init_enter (&initialised)) {
    mosquitto_lib_init ();
    g_once_init_leave (&initialised, 1);
  }
}

static gboolean
lensd_mqtt_check (int rc, const gchar *what, GError **error)
{
  if (rc == MOSQ_ERR_SUCCESS)
    return TRUE;
  g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID, "mqtt: %s: %s", what,
      rc == MOSQ_ERR_ERRNO ? g_strerror (errno) : mosquitto_strerror (rc));
  return FALSE;
}

static gboolean
lensd_mqtt_file_readable (const gchar *key, const gchar *path, GError **error)
{
  FILE *file = fopen (path, "r");

  if (file == NULL) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID, "mqtt: %s: %s: %s",
        key, path, g_strerror (errno));
    return FALSE;
  }
  fclose (file);
  return TRUE;
}

static gboolean
lensd_mqtt_configure (LensdMqtt *mqtt, const LensdMqttConfig *config,
    GError **error)
{

  if (config->password != NULL && config->username == NULL) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "mqtt: a password needs a username");
    return FALSE;
  }
  if (config->username != NULL && !lensd_mqtt_check (mosquitto_username_pw_set
          (mqtt->mosq, config->username, config->password), "username",
          error))
    return FALSE;

  if ((config->cert_file != NULL || config->key_file != NULL)
      && config->ca_file == NULL) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "mqtt: a client certificate needs ca-file (TLS)");
    return FALSE;
  }
  if ((config->cert_file == NULL) != (config->key_file == NULL)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "mqtt: cert-file and key-file go together");
    return FALSE;
  }
  if (config->ca_file != NULL) {
    /* the broker's certificate and host name are verified on connection;
     * unreadable files are an error now, with their names */
    if (!lensd_mqtt_file_readable ("ca-file", config->ca_file, error)
        || (config->cert_file != NULL && (!lensd_mqtt_file_readable
                ("cert-file", config->cert_file, error)
                || !lensd_mqtt_file_readable ("key-file", config->key_file,
                    error))))
      return FALSE;
    if (!lensd_mqtt_check (mosquitto_tls_set (mqtt->mosq, config->ca_file,
                NULL, config->cert_file, config->key_file, NULL), "TLS",
            error))
      return FALSE;
  }

  if (!lensd_mqtt_check (mosquitto_will_set (mqtt->mosq, mqtt->status_topic,
              strlen ("offline"), "offline", mqtt->qos, TRUE), "last will",
          error))
    return FALSE;
  /* mosquitto_max_inflight_messages_set () by its current name */
  if (!lensd_mqtt_check (mosquitto_int_option (mqtt->mosq,
              MOSQ_OPT_SEND_MAXIMUM, LENSD_MQTT_MAX_INFLIGHT),
          "in-flight limit", error))
    return FALSE;
  if (!lensd_mqtt_check (mosquitto_threaded_set (mqtt->mosq, TRUE),
          "threads", error))
    return FALSE;
  mosquitto_connect_callback_set (mqtt->mosq, lensd_mqtt_on_connect);
  mosquitto_disconnect_callback_set (mqtt->mosq, lensd_mqtt_on_disconnect);
  mosquitto_publish_callback_set (mqtt->mosq, lensd_mqtt_on_publish);
  return TRUE;
}

LensdMqtt *
lensd_mqtt_new (const LensdMqttConfig *config, GError **error)
{
  LensdMqtt *mqtt;
  const gchar *hostname = g_get_host_name ();
  gchar *instance, *client_id;
  const gchar *prefix;

  g_return_val_if_fail (config != NULL, NULL);

  if (config->host == NULL || *config->host == '\0') {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "mqtt: host: no broker given");
    return NULL;
  }
  if (config->qos > 1) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "mqtt: qos: %u is not 0 or 1", config->qos);
    return NULL;
  }
  if (config->queue_size == 0) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "mqtt: queue-size: must be at least 1");
    return NULL;
  }
  if (!(config->publish_fps >= 0.0)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "mqtt: publish-fps: %g is negative", config->publish_fps);
    return NULL;
  }

  lensd_mqtt_lib_init ();
  mqtt = g_new0 (LensdMqtt, 1);
  mqtt->ref_count = 1;
  g_mutex_init (&mqtt->lock);
  g_cond_init (&mqtt->cond);
  g_queue_init (&mqtt->queue);
  mqtt->inflight = g_hash_table_new (NULL, NULL);
  mqtt->next_due_us = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  mqtt->states = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      g_free);
  mqtt->host = g_strdup (config->host);
  mqtt->port = config->port != 0 ? config->port
      : config->ca_file != NULL ? 8883 : 1883;
  mqtt->keepalive_s = config->keepalive_s != 0 ? (gint) config->keepalive_s
      : 30;
  mqtt->qos = (gint) config->qos;
  mqtt->queue_size = config->queue_size;
  mqtt->publish_period_us = config->publish_fps > 0.0
      ? (gint64) (G_USEC_PER_SEC / config->publish_fps) : 0;

  prefix = config->topic_prefix != NULL ? config->topic_prefix : "lens";
  instance = lensd_mqtt_topic_level_from (config->instance != NULL
      ? config->instance : hostname);
  mqtt->topic_base = g_strdup_printf ("%s/%s", prefix, instance);
  mqtt->status_topic = g_strdup_printf ("%s/status", mqtt->topic_base);
  g_free (instance);
  if (mosquitto_pub_topic_check (mqtt->status_topic) != MOSQ_ERR_SUCCESS) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "mqtt: topic-prefix: \"%s\" makes no valid topic (no '+' or '#')",
        prefix);
    lensd_mqtt_unref (mqtt);
    return NULL;
  }

  client_id = config->client_id != NULL ? g_strdup (config->client_id)
      : g_strdup_printf ("lensd-%s", hostname);
  /* a clean session: what went unsent belongs to our queue, not to a
   * session the broker keeps */
  mqtt->mosq = mosquitto_new (client_id, TRUE, mqtt);
  g_free (client_id);
  if (mqtt->mosq == NULL) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "mqtt: cannot create a client: %s", g_strerror (errno));
    lensd_mqtt_unref (mqtt);
    return NULL;
  }
  if (!lensd_mqtt_configure (mqtt, config, error)) {
    lensd_mqtt_unref (mqtt);
    return NULL;
  }

  g_atomic_int_inc (&mqtt->ref_count);
  mqtt->network_thread = g_thread_new ("lensd-mqtt-net",
      lensd_mqtt_network_main, mqtt);
  mqtt->sender_thread = g_thread_new ("lensd-mqtt-send",
      lensd_mqtt_sender_main, mqtt);
  return mqtt;
}

void
lensd_mqtt_free (LensdMqtt *mqtt)
{
  gboolean connected, network_done;
  gint64 deadline;

  if (mqtt == NULL)
    return;

  g_mutex_lock (&mqtt->lock);
  mqtt->stopping = TRUE;
  deadline = mqtt->stop_deadline_us = g_get_monotonic_time ()
      + LENSD_MQTT_STOP_WAIT_US;
  connected = mqtt->connected;
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);
  g_thread_join (mqtt->sender_thread);

  /* the last states first (streams stop before the publisher goes), then
   * "offline" by hand: a clean DISCONNECT tells the broker not to send the
   * will. qos 0 goes out in order, ahead of the DISCONNECT queued last. */
  if (connected) {
    g_mutex_lock (&mqtt->lock);
    while (mqtt->n_dirty_states > 0 && mqtt->connected
        && g_get_monotonic_time () < deadline)
      lensd_mqtt_send_dirty_state (mqtt);
    g_mutex_unlock (&mqtt->lock);
    mosquitto_publish (mqtt->mosq, NULL, mqtt->status_topic,
        strlen ("offline"), "offline", 0, TRUE);
    mosquitto_disconnect (mqtt->mosq);
  }

  g_mutex_lock (&mqtt->lock);
  while (!mqtt->network_done
      && g_cond_wait_until (&mqtt->cond, &mqtt->lock, deadline));
  network_done = mqtt->network_done;
  g_mutex_unlock (&mqtt->lock);
  if (network_done) {
    g_thread_join (mqtt->network_thread);
  } else {
    g_warning ("MQTT: the connection to %s:%d did not close in time; "
        "leaving it behind", mqtt->host, mqtt->port);
    g_thread_unref (mqtt->network_thread);
  }
  lensd_mqtt_unref (mqtt);
}

/* Whether @frame is due under publish-fps; the lock held. The frames' own
 * wall-clock times decide, so the rate follows the results, not when the
 * streaming thread got to call us. */
static gboolean
lensd_mqtt_frame_due (LensdMqtt *mqtt, LensdFrame *frame)
{
  gint64 now = frame->timestamp_us != 0 ? frame->timestamp_us
      : g_get_real_time ();
  gint64 *next_due;

  if (mqtt->publish_period_us == 0)
    return TRUE;
  next_due = g_hash_table_lookup (mqtt->next_due_us, frame->stream);
  if (next_due == NULL) {
    next_due = g_new (gint64, 1);
    *next_due = now;
    g_hash_table_insert (mqtt->next_due_us, g_strdup (frame->stream),
        next_due);
  }
  /* a clock stepped back by more than a period starts over */
  if (now < *next_due - mqtt->publish_period_us)
    *next_due = now;
  if (now < *next_due)
    return FALSE;
  /* keeps the average rate when frames come at a rate that is not a
   * multiple of it, without a burst after a pause */
  *next_due += mqtt->publish_period_us;
  if (*next_due <= now)
    *next_due = now + mqtt->publish_period_us;
  return TRUE;
}

void
lensd_mqtt_publish_frame (LensdMqtt *mqtt, LensdFrame *frame)
{
  GBytes *payload;
  gchar *topic;
  gboolean due;

  if (mqtt == NULL || frame == NULL)
    return;
  if (!lensd_mqtt_stream_level_valid (frame->stream)) {
    g_warning ("MQTT: stream name \"%s\" makes no topic level; not "
        "published", frame->stream != NULL ? frame->stream : "(null)");
    return;
  }

  g_mutex_lock (&mqtt->lock);
  due = !mqtt->stopping && lensd_mqtt_frame_due (mqtt, frame);
  g_mutex_unlock (&mqtt->lock);
  if (!due)
    return;

  payload = lensd_frame_json (frame);
  if (payload == NULL)
    return;
  topic = g_strdup_printf ("%s/%s/detections", mqtt->topic_base,
      frame->stream);

  g_mutex_lock (&mqtt->lock);
  while (mqtt->queue.length >= mqtt->queue_size) {
    lensd_mqtt_message_free (g_queue_pop_head (&mqtt->queue));
    mqtt->dropped++;
  }
  g_queue_push_tail (&mqtt->queue, lensd_mqtt_message_new (topic, payload));
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);
}

void
lensd_mqtt_publish_state (LensdMqtt *mqtt, const gchar *stream,
    LensdStreamState state)
{
  LensdMqttStreamState *entry;

  if (mqtt == NULL)
    return;
  if (!lensd_mqtt_stream_level_valid (stream)) {
    g_warning ("MQTT: stream name \"%s\" makes no topic level; not "
        "published", stream != NULL ? stream : "(null)");
    return;
  }

  g_mutex_lock (&mqtt->lock);
  entry = g_hash_table_lookup (mqtt->states, stream);
  if (entry == NULL) {
    entry = g_new0 (LensdMqttStreamState, 1);
    g_hash_table_insert (mqtt->states, g_strdup (stream), entry);
  }
  entry->state = state;
  if (!entry->dirty) {
    entry->dirty = TRUE;
    mqtt->n_dirty_states++;
  }
  /* a stopped stream's rate limit starts over when it comes back */
  if (state == LENSD_STREAM_STOPPED)
    g_hash_table_remove (mqtt->next_due_us, stream);
  g_cond_broadcast (&mqtt->cond);
  g_mutex_unlock (&mqtt->lock);
}

void
lensd_mqtt_append_metrics (LensdMqtt *mqtt, GString *out)
{
  guint64 published, dropped, reconnects;
  guint queued;
  gboolean connected;

  if (mqtt == NULL || out == NULL)
    return;

  g_mutex_lock (&mqtt->lock);
  published = mqtt->published;
  dropped = mqtt->dropped;
  reconnects = mqtt->reconnects;
  queued = mqtt->queue.length + g_hash_table_size (mqtt->inflight);
  connected = mqtt->connected;
  g_mutex_unlock (&mqtt->lock);

  g_string_append_printf (out,
      "# HELP lensd_mqtt_published_total Detections messages handed to the "
      "broker (qos 0) or acknowledged by it (qos 1).\n"
      "# TYPE lensd_mqtt_published_total counter\n"
      "lensd_mqtt_published_total %" G_GUINT64_FORMAT "\n"
      "# HELP lensd_mqtt_dropped_total Detections messages dropped: the "
      "oldest when the queue was full (or one libmosquitto refused).\n"
      "# TYPE lensd_mqtt_dropped_total counter\n"
      "lensd_mqtt_dropped_total %" G_GUINT64_FORMAT "\n"
      "# HELP lensd_mqtt_queued Detections messages waiting for the broker "
      "or for its acknowledgement.\n"
      "# TYPE lensd_mqtt_queued gauge\n"
      "lensd_mqtt_queued %u\n"
      "# HELP lensd_mqtt_connected Whether the broker connection is up.\n"
      "# TYPE lensd_mqtt_connected gauge\n"
      "lensd_mqtt_connected %d\n"
      "# HELP lensd_mqtt_reconnects_total Connections to the broker after "
      "the first.\n"
      "# TYPE lensd_mqtt_reconnects_total counter\n"
      "lensd_mqtt_reconnects_total %" G_GUINT64_FORMAT "\n",
      published, dropped, queued, connected ? 1 : 0, reconnects);
}
