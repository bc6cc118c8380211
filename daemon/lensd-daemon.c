/* lensd-daemon.c: the daemon object the HTTP API and main work on. Owns
 * the configuration it started with, the one engine, the MQTT publisher
 * and the streams by name; adds and removes streams from any thread and
 * applies a reloaded configuration stream by stream (new ones started,
 * gone ones removed, changed ones restarted, the rest untouched).
 *
 * Locking: @lock guards the table and is held only to look up, insert or
 * take out, so listing never waits on a pipeline; @ops_lock serialises
 * whole operations (add, remove, reload), whose stream starts and stops
 * may take a while, so two of them never interleave on one name. */
#include "lensd.h"

#include <string.h>

typedef struct
{
  LensdStream *stream;
  guint mqtt_listener;          /* 0: no [mqtt] */
} LensdDaemonEntry;

struct _LensdDaemon
{
  LensdConfig *config;          /* as started: a reload applies only the
                                 * streams, and HTTP threads may hold
                                 * pointers into this one */
  GMainContext *context;
  LensdEngine *engine;
  LensdMqtt *mqtt;
  gint ready;                   /* atomic */

  GMutex ops_lock;
  GMutex lock;
  GHashTable *streams;          /* name -> LensdDaemonEntry */
};

/* ---- streams ------------------------------------------------------------- */

/* A stream listener: a frame or a state change goes to MQTT. Runs on
 * streaming threads; the publisher only queues. */
static void
lensd_daemon_on_stream_event (LensdStream * stream, LensdStreamEvent event,
    LensdFrame * frame, gpointer user_data)
{
  LensdMqtt *mqtt = user_data;

  switch (event) {
    case LENSD_STREAM_EVENT_FRAME:
      if (frame != NULL)
        lensd_mqtt_publish_frame (mqtt, frame);
      break;
    case LENSD_STREAM_EVENT_STATE:
      lensd_mqtt_publish_state (mqtt, lensd_stream_get_name (stream),
          lensd_stream_get_state (stream));
      break;
    case LENSD_STREAM_EVENT_REMOVED:
      break;
  }
}

static LensdDaemonEntry *
lensd_daemon_entry_new (LensdDaemon * daemon, const LensdStreamConfig * config)
{
  LensdDaemonEntry *entry = g_new0 (LensdDaemonEntry, 1);

  entry->stream = lensd_stream_new (config, daemon->engine, daemon->context);
  if (daemon->mqtt != NULL)
    entry->mqtt_listener = lensd_stream_add_listener (entry->stream,
        lensd_daemon_on_stream_event, daemon->mqtt);
  return entry;
}

/* Stops the stream for good (its listeners and waiters hear REMOVED) and
 * lets go of it; HTTP requests may hold it a while longer. Called without
 * @lock: stopping a pipeline takes time. */
static void
lensd_daemon_entry_remove (LensdDaemonEntry * entry)
{
  lensd_stream_stop (entry->stream, TRUE);
  if (entry->mqtt_listener != 0)
    lensd_stream_remove_listener (entry->stream, entry->mqtt_listener);
  lensd_stream_unref (entry->stream);
  g_free (entry);
}

/* Puts @entry in the table and starts it when enabled. With @ops_lock. */
static void
lensd_daemon_insert (LensdDaemon * daemon, LensdDaemonEntry * entry)
{
  const LensdStreamConfig *config = lensd_stream_get_config (entry->stream);

  g_mutex_lock (&daemon->lock);
  g_hash_table_insert (daemon->streams, g_strdup (config->name), entry);
  g_mutex_unlock (&daemon->lock);
  if (config->enabled)
    lensd_stream_start (entry->stream);
}

/* Takes @name's entry out of the table (NULL: none). With @ops_lock. */
static LensdDaemonEntry *
lensd_daemon_take (LensdDaemon * daemon, const gchar * name)
{
  LensdDaemonEntry *entry = NULL;
  gchar *key = NULL;

  g_mutex_lock (&daemon->lock);
  if (g_hash_table_steal_extended (daemon->streams, name, (gpointer *) & key,
          (gpointer *) & entry))
    g_free (key);
  g_mutex_unlock (&daemon->lock);
  return entry;
}

static LensdDaemonEntry *
lensd_daemon_lookup (LensdDaemon * daemon, const gchar * name)
{
  LensdDaemonEntry *entry;

  g_mutex_lock (&daemon->lock);
  entry = g_hash_table_lookup (daemon->streams, name);
  g_mutex_unlock (&daemon->lock);
  return entry;
}

/* ---- the daemon ------------------------------------------------------------ */

LensdDaemon *
lensd_daemon_new (LensdConfig * config, GMainContext * context,
    GError ** error)
{
  LensdDaemon *daemon;
  guint i, enabled = 0;

  g_return_val_if_fail (config != NULL, NULL);

  daemon = g_new0 (LensdDaemon, 1);
  daemon->config = config;
  daemon->context = g_main_context_ref (context ? context :
      g_main_context_default ());
  g_mutex_init (&daemon->ops_lock);
  g_mutex_init (&daemon->lock);
  /* the keys are freed by hand: a steal keeps them */
  daemon->streams = g_hash_table_new (g_str_hash, g_str_equal);

  daemon->engine = lensd_engine_new (config, error);
  if (daemon->engine == NULL) {
    lensd_daemon_free (daemon);
    return NULL;
  }
  if (config->mqtt != NULL) {
    daemon->mqtt = lensd_mqtt_new (config->mqtt, error);
    if (daemon->mqtt == NULL) {
      g_prefix_error (error, "[mqtt]: ");
      lensd_daemon_free (daemon);
      return NULL;
    }
  }

  g_mutex_lock (&daemon->ops_lock);
  for (i = 0; i < config->streams->len; i++) {
    const LensdStreamConfig *s = g_ptr_array_index (config->streams, i);

    lensd_daemon_insert (daemon, lensd_daemon_entry_new (daemon, s));
    enabled += s->enabled != FALSE;
  }
  g_mutex_unlock (&daemon->ops_lock);
  g_message ("%u stream%s configured, %u enabled; %s", config->streams->len,
      config->streams->len == 1 ? "" : "s", enabled,
      lensd_engine_is_motion (daemon->engine) ? "motion mode" :
      lensd_engine_model_name (daemon->engine));
  return daemon;
}

void
lensd_daemon_free (LensdDaemon * daemon)
{
  GPtrArray *entries;
  GHashTableIter iter;
  gpointer key, value;
  guint i;

  if (daemon == NULL)
    return;
  entries = g_ptr_array_new ();
  g_mutex_lock (&daemon->ops_lock);
  g_mutex_lock (&daemon->lock);
  g_hash_table_iter_init (&iter, daemon->streams);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    g_ptr_array_add (entries, value);
    g_hash_table_iter_steal (&iter);
    g_free (key);
  }
  g_mutex_unlock (&daemon->lock);
  for (i = 0; i < entries->len; i++)
    lensd_daemon_entry_remove (g_ptr_array_index (entries, i));
  g_ptr_array_free (entries, TRUE);
  g_mutex_unlock (&daemon->ops_lock);

  /* after the streams: no listener may publish to a freed publisher */
  g_clear_pointer (&daemon->mqtt, lensd_mqtt_free);
  g_clear_pointer (&daemon->engine, lensd_engine_free);
  g_hash_table_unref (daemon->streams);
  g_main_context_unref (daemon->context);
  lensd_config_free (daemon->config);
  g_mutex_clear (&daemon->lock);
  g_mutex_clear (&daemon->ops_lock);
  g_free (daemon);
}

const LensdConfig *
lensd_daemon_get_config (LensdDaemon * daemon)
{
  return daemon->config;
}

LensdEngine *
lensd_daemon_get_engine (LensdDaemon * daemon)
{
  return daemon->engine;
}

LensdMqtt *
lensd_daemon_get_mqtt (LensdDaemon * daemon)
{
  return daemon->mqtt;
}

gboolean
lensd_daemon_is_ready (LensdDaemon * daemon)
{
  return g_atomic_int_get (&daemon->ready);
}

void
lensd_daemon_set_ready (LensdDaemon * daemon, gboolean ready)
{
  g_atomic_int_set (&daemon->ready, ready ? 1 : 0);
}

static gint
lensd_daemon_compare_streams (gconstpointer a, gconstpointer b)
{
  LensdStream *sa = *(LensdStream **) a, *sb = *(LensdStream **) b;

  return strcmp (lensd_stream_get_name (sa), lensd_stream_get_name (sb));
}

GPtrArray *
lensd_daemon_list_streams (LensdDaemon * daemon)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify)
      lensd_stream_unref);
  GHashTableIter iter;
  gpointer value;

  g_mutex_lock (&daemon->lock);
  g_hash_table_iter_init (&iter, daemon->streams);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (list,
        lensd_stream_ref (((LensdDaemonEntry *) value)->stream));
  g_mutex_unlock (&daemon->lock);
  g_ptr_array_sort (list, lensd_daemon_compare_streams);
  return list;
}

LensdStream *
lensd_daemon_get_stream (LensdDaemon * daemon, const gchar * name)
{
  LensdDaemonEntry *entry;
  LensdStream *stream = NULL;

  g_return_val_if_fail (name != NULL, NULL);
  g_mutex_lock (&daemon->lock);
  entry = g_hash_table_lookup (daemon->streams, name);
  if (entry != NULL)
    stream = lensd_stream_ref (entry->stream);
  g_mutex_unlock (&daemon->lock);
  return stream;
}

/* A stream added at runtime (POST): marked from_api, so that a reload of
 * the file leaves it alone. */
gboolean
lensd_daemon_add_stream (LensdDaemon * daemon,
    const LensdStreamConfig * config, GError ** error)
{
  LensdStreamConfig *copy;
  GError *local = NULL;

  g_return_val_if_fail (config != NULL, FALSE);
  if (!lensd_stream_config_validate (config, &local)) {
    g_set_error_literal (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        local->message);
    g_error_free (local);
    return FALSE;
  }

  g_mutex_lock (&daemon->ops_lock);
  if (lensd_daemon_lookup (daemon, config->name) != NULL) {
    g_mutex_unlock (&daemon->ops_lock);
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_EXISTS,
        "stream %s exists", config->name);
    return FALSE;
  }
  copy = lensd_stream_config_copy (config);
  copy->from_api = TRUE;
  lensd_daemon_insert (daemon, lensd_daemon_entry_new (daemon, copy));
  g_mutex_unlock (&daemon->ops_lock);
  g_message ("stream %s added (%s)", copy->name,
      copy->uri ? copy->uri : copy->pipeline);
  lensd_stream_config_free (copy);
  return TRUE;
}

gboolean
lensd_daemon_remove_stream (LensdDaemon * daemon, const gchar * name,
    GError ** error)
{
  LensdDaemonEntry *entry;

  g_return_val_if_fail (name != NULL, FALSE);
  g_mutex_lock (&daemon->ops_lock);
  entry = lensd_daemon_take (daemon, name);
  if (entry == NULL) {
    g_mutex_unlock (&daemon->ops_lock);
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_NOT_FOUND,
        "no stream %s", name);
    return FALSE;
  }
  /* @name may be the stream's own */
  g_message ("stream %s removed", name);
  lensd_daemon_entry_remove (entry);
  g_mutex_unlock (&daemon->ops_lock);
  return TRUE;
}

/* ---- reload ------------------------------------------------------------------ */

static gboolean
lensd_mqtt_config_equal (const LensdMqttConfig * a, const LensdMqttConfig * b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_strcmp0 (a->host, b->host) == 0 && a->port == b->port
      && g_strcmp0 (a->client_id, b->client_id) == 0
      && g_strcmp0 (a->instance, b->instance) == 0
      && g_strcmp0 (a->username, b->username) == 0
      && g_strcmp0 (a->password, b->password) == 0
      && g_strcmp0 (a->ca_file, b->ca_file) == 0
      && g_strcmp0 (a->cert_file, b->cert_file) == 0
      && g_strcmp0 (a->key_file, b->key_file) == 0
      && g_strcmp0 (a->topic_prefix, b->topic_prefix) == 0
      && a->qos == b->qos && a->keepalive_s == b->keepalive_s
      && a->publish_fps == b->publish_fps && a->queue_size == b->queue_size;
}

/* What a reload cannot apply to a running lensd: the engine is shared by
 * every stream and its model is loaded once, HTTP threads read the server
 * settings and the publisher lives as long as the daemon. Said, not
 * hidden: the old values stay in force until a restart. */
static void
lensd_daemon_warn_unapplied (const LensdConfig * old, const LensdConfig * new)
{
  if (g_strcmp0 (old->listen_host, new->listen_host) != 0
      || old->listen_port != new->listen_port
      || g_strcmp0 (old->token, new->token) != 0
      || old->threads != new->threads
      || old->max_connections != new->max_connections
      || old->max_connections_per_ip != new->max_connections_per_ip
      || old->connection_timeout_s != new->connection_timeout_s)
    g_warning ("reload: [server] changed; restart lensd to apply it");
  if (g_strcmp0 (old->device, new->device) != 0
      || g_strcmp0 (old->cache_dir, new->cache_dir) != 0
      || old->feature_channels != new->feature_channels
      || g_strcmp0 (old->model_path, new->model_path) != 0
      || g_strcmp0 (old->labels_path, new->labels_path) != 0
      || old->conf_threshold != new->conf_threshold
      || old->iou_threshold != new->iou_threshold)
    g_warning ("reload: [engine] or [model] changed; restart lensd to "
        "load the new model (the streams keep the running one)");
  if (!lensd_mqtt_config_equal (old->mqtt, new->mqtt))
    g_warning ("reload: [mqtt] changed; restart lensd to apply it");
}

gboolean
lensd_daemon_reload (LensdDaemon * daemon, LensdConfig * config,
    GError ** error)
{
  GHashTable *wanted;
  GPtrArray *names;
  GHashTableIter iter;
  gpointer key, value;
  guint i, added = 0, removed = 0, restarted = 0, unchanged = 0;

  g_return_val_if_fail (config != NULL, FALSE);
  lensd_daemon_warn_unapplied (daemon->config, config);

  wanted = g_hash_table_new (g_str_hash, g_str_equal);
  for (i = 0; i < config->streams->len; i++) {
    LensdStreamConfig *s = g_ptr_array_index (config->streams, i);

    g_hash_table_insert (wanted, s->name, s);
  }

  g_mutex_lock (&daemon->ops_lock);

  /* the file's streams that are running: gone or changed */
  names = g_ptr_array_new_with_free_func (g_free);
  g_mutex_lock (&daemon->lock);
  g_hash_table_iter_init (&iter, daemon->streams);
  while (g_hash_table_iter_next (&iter, &key, &value)) {
    const LensdStreamConfig *running =
        lensd_stream_get_config (((LensdDaemonEntry *) value)->stream);

    if (!running->from_api)
      g_ptr_array_add (names, g_strdup (key));
  }
  g_mutex_unlock (&daemon->lock);

  for (i = 0; i < names->len; i++) {
    const gchar *name = g_ptr_array_index (names, i);
    LensdStreamConfig *next = g_hash_table_lookup (wanted, name);
    LensdDaemonEntry *entry = lensd_daemon_lookup (daemon, name);

    if (next != NULL && lensd_stream_config_equal (next,
            lensd_stream_get_config (entry->stream))) {
      unchanged++;
      continue;
    }
    entry = lensd_daemon_take (daemon, name);
    lensd_daemon_entry_remove (entry);
    if (next != NULL) {
      lensd_daemon_insert (daemon, lensd_daemon_entry_new (daemon, next));
      g_message ("reload: stream %s changed: restarted", name);
      restarted++;
    } else {
      g_message ("reload: stream %s removed", name);
      removed++;
    }
  }

  /* new in the file */
  for (i = 0; i < config->streams->len; i++) {
    LensdStreamConfig *s = g_ptr_array_index (config->streams, i);
    LensdDaemonEntry *entry = lensd_daemon_lookup (daemon, s->name);

    if (entry == NULL) {
      lensd_daemon_insert (daemon, lensd_daemon_entry_new (daemon, s));
      g_message ("reload: stream %s added", s->name);
      added++;
    } else if (lensd_stream_get_config (entry->stream)->from_api) {
      g_warning ("reload: stream %s of the file has the name of a stream "
          "added through the API; that one keeps running (delete it and "
          "reload to run the file's)", s->name);
    }
  }
  g_mutex_unlock (&daemon->ops_lock);

  g_message ("reload: %u stream%s added, %u removed, %u restarted, %u "
      "unchanged", added, added == 1 ? "" : "s", removed, restarted,
      unchanged);
  g_ptr_array_unref (names);
  g_hash_table_unref (wanted);
  lensd_config_free (config);
  return TRUE;
}

gchar *
lensd_daemon_status_line (LensdDaemon * daemon)
{
  GPtrArray *streams = lensd_daemon_list_streams (daemon);
  gchar fps[G_ASCII_DTOSTR_BUF_SIZE];
  guint i, streaming = 0;
  gdouble total = 0;
  gchar *line;

  for (i = 0; i < streams->len; i++) {
    LensdStreamStats stats = { 0 };

    lensd_stream_get_stats (g_ptr_array_index (streams, i), &stats);
    streaming += stats.state == LENSD_STREAM_STREAMING;
    total += stats.fps_out;
    lensd_stream_stats_clear (&stats);
  }
  /* the C locale's point, whatever the locale */
  g_ascii_formatd (fps, sizeof fps, "%.1f", total);
  line = g_strdup_printf ("%u/%u streams streaming, %s fps", streaming,
      streams->len, fps);
  g_ptr_array_unref (streams);
  return line;
}
