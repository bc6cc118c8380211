/* lensd.c: lensd's main: the command line, the main loop, and lensd as a
 * systemd service: socket activation, READY=1 once the model is loaded
 * and HTTP listens, a STATUS= line and WATCHDOG=1 from the main loop,
 * SIGHUP to reload the configuration and SIGTERM/SIGINT to stop. */
#include "lensd.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib-unix.h>
#include <systemd/sd-daemon.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define LENSD_DEFAULT_CONFIG "/etc/lensd/lensd.conf"
#define LENSD_STATUS_INTERVAL_S 2
/* SIGTERM to exit: systemd and the tests give 5 s; a stream that hangs in
 * its teardown must not make lensd miss that */
#define LENSD_STOP_DEADLINE_US (4 * G_TIME_SPAN_SECOND)

typedef struct
{
  gchar *config_path;
  GMainLoop *loop;
  LensdDaemon *daemon;
  LensdHttp *http;
  guint status_id;
  guint watchdog_id;
  gboolean stopping;
} LensdMain;

static void
lensd_main_notify_status (LensdMain * m, const gchar * extra)
{
  gchar *status = lensd_daemon_status_line (m->daemon);

  sd_notifyf (0, "%s%sSTATUS=%s", extra ? extra : "", extra ? "\n" : "",
      status);
  g_free (status);
}

/* Months unattended: glibc keeps memory freed by one thread in that
 * thread's arena, and every pipeline restart brings new streaming threads,
 * so frame-sized buffers freed by the old ones would stay counted in RSS
 * (tests/soak: +15 % over 30 minutes of camera restarts, none of it in
 * use). Frame-sized blocks are mapped directly and go back to the kernel
 * when freed, and what the arenas hold free is returned now and then. */
static void
lensd_main_tune_allocator (void)
{
#ifdef __GLIBC__
  mallopt (M_MMAP_THRESHOLD, 128 * 1024);
#endif
}

static void
lensd_main_release_free_memory (void)
{
#ifdef __GLIBC__
  malloc_trim (0);
#endif
}

#define LENSD_TRIM_EVERY_N_STATUS 30    /* a minute */

static gboolean
lensd_main_on_status_timer (gpointer user_data)
{
  static guint ticks;

  lensd_main_notify_status (user_data, NULL);
  if (++ticks % LENSD_TRIM_EVERY_N_STATUS == 0)
    lensd_main_release_free_memory ();
  return G_SOURCE_CONTINUE;
}

/* From the main loop on purpose: a main loop that hangs stops these, and
 * systemd restarts lensd. */
static gboolean
lensd_main_on_watchdog_timer (gpointer user_data)
{
  sd_notify (0, "WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

static gboolean
lensd_main_on_sighup (gpointer user_data)
{
  LensdMain *m = user_data;
  GError *error = NULL;
  LensdConfig *config;

  /* MONOTONIC_USEC: what Type=notify-reload (systemd 253) expects with
   * RELOADING=1; older systemd ignores it */
  sd_notifyf (0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading "
      "%s", (guint64) g_get_monotonic_time (), m->config_path);
  g_message ("reloading %s", m->config_path);
  config = lensd_config_load (m->config_path, &error);
  if (config == NULL) {
    g_warning ("reload: %s; keeping the running configuration",
        error->message);
    g_clear_error (&error);
  } else if (!lensd_daemon_reload (m->daemon, config, &error)) {
    g_warning ("reload: %s", error->message);
    g_clear_error (&error);
  }
  lensd_main_notify_status (m, "READY=1");
  return G_SOURCE_CONTINUE;
}

static gboolean
lensd_main_on_stop_signal (gpointer user_data)
{
  LensdMain *m = user_data;

  if (!m->stopping) {
    m->stopping = TRUE;
    sd_notify (0, "STOPPING=1\nSTATUS=stopping");
    g_message ("stopping");
    g_main_loop_quit (m->loop);
  }
  return G_SOURCE_CONTINUE;
}

/* The bounded stop: if freeing the streams, HTTP and MQTT has not returned
 * by the deadline, exit anyway. Nothing lensd holds needs flushing. */
static GMutex lensd_stop_lock;
static GCond lensd_stop_cond;
static gboolean lensd_stopped;

static gpointer
lensd_main_stop_guard (gpointer user_data)
{
  gint64 deadline = g_get_monotonic_time () + LENSD_STOP_DEADLINE_US;
  gboolean stopped;

  g_mutex_lock (&lensd_stop_lock);
  while (!lensd_stopped)
    if (!g_cond_wait_until (&lensd_stop_cond, &lensd_stop_lock, deadline))
      break;
  stopped = lensd_stopped;
  g_mutex_unlock (&lensd_stop_lock);
  if (!stopped) {
    g_printerr ("lensd: stopping took longer than %d s; exiting without "
        "waiting for the rest\n", (int) (LENSD_STOP_DEADLINE_US /
            G_TIME_SPAN_SECOND));
    _exit (EXIT_SUCCESS);
  }
  return NULL;
}

/* Where to point a browser: the socket's own address under socket
 * activation, else the configured one with the port HTTP got. */
static gchar *
lensd_main_url (LensdMain * m, int listen_fd)
{
  const LensdConfig *config = lensd_daemon_get_config (m->daemon);
  guint16 port = lensd_http_get_port (m->http);
  gchar host[INET6_ADDRSTRLEN] = "";
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  const gchar *h = config->listen_host;

  if (listen_fd >= 0
      && getsockname (listen_fd, (struct sockaddr *) &ss, &len) == 0) {
    if (ss.ss_family == AF_INET)
      inet_ntop (AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, host,
          sizeof host);
    else if (ss.ss_family == AF_INET6)
      inet_ntop (AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, host,
          sizeof host);
    if (*host != '\0')
      h = host;
  }
  if (strchr (h, ':') != NULL)
    return g_strdup_printf ("http://[%s]:%u/", h, port);
  return g_strdup_printf ("http://%s:%u/", h, port);
}

/* The one socket systemd passed, -1 without socket activation. */
static gboolean
lensd_main_listen_fd (int *fd, GError ** error)
{
  int n = sd_listen_fds (TRUE);

  *fd = -1;
  if (n < 0) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "socket activation: %s", g_strerror (-n));
    return FALSE;
  }
  if (n > 1) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "socket activation passed %d sockets; lensd serves one", n);
    return FALSE;
  }
  if (n == 1)
    *fd = SD_LISTEN_FDS_START;
  return TRUE;
}

static int
lensd_main_check_config (const gchar * path)
{
  GError *error = NULL;
  LensdConfig *config = lensd_config_load (path, &error);

  if (config == NULL) {
    g_printerr ("%s\n", error->message);
    g_error_free (error);
    return EXIT_FAILURE;
  }
  g_print ("%s: ok\n", path);
  lensd_config_free (config);
  return EXIT_SUCCESS;
}

static int
lensd_main_run (LensdMain * m)
{
  GError *error = NULL;
  LensdConfig *config;
  guint hup_id, term_id, int_id;
  GThread *guard;
  guint64 watchdog_us = 0;
  int fd;
  gchar *url;

  config = lensd_config_load (m->config_path, &error);
  if (config == NULL) {
    g_printerr ("lensd: %s\n", error->message);
    g_error_free (error);
    return EXIT_FAILURE;
  }
  if (!lensd_main_listen_fd (&fd, &error)) {
    g_printerr ("lensd: %s\n", error->message);
    g_error_free (error);
    lensd_config_free (config);
    return EXIT_FAILURE;
  }

  lensd_main_tune_allocator ();
  gst_init (NULL, NULL);
  m->loop = g_main_loop_new (NULL, FALSE);
  /* signals first: a SIGTERM while the model loads is not lost */
  hup_id = g_unix_signal_add (SIGHUP, lensd_main_on_sighup, m);
  term_id = g_unix_signal_add (SIGTERM, lensd_main_on_stop_signal, m);
  int_id = g_unix_signal_add (SIGINT, lensd_main_on_stop_signal, m);

  sd_notify (0, "STATUS=loading the model");
  /* takes config */
  m->daemon = lensd_daemon_new (config, g_main_context_default (), &error);
  if (m->daemon == NULL) {
    g_printerr ("lensd: %s\n", error->message);
    g_error_free (error);
    goto fail;
  }
  m->http = lensd_http_new (m->daemon, fd, &error);
  if (m->http == NULL) {
    g_printerr ("lensd: %s\n", error->message);
    g_error_free (error);
    goto fail;
  }
  url = lensd_main_url (m, fd);
  g_message ("lensd %s serving %s", LENSD_VERSION, url);
  g_free (url);

  lensd_daemon_set_ready (m->daemon, TRUE);
  lensd_main_notify_status (m, "READY=1");
  m->status_id = g_timeout_add_seconds (LENSD_STATUS_INTERVAL_S,
      lensd_main_on_status_timer, m);
  if (sd_watchdog_enabled (0, &watchdog_us) > 0 && watchdog_us > 0)
    m->watchdog_id = g_timeout_add (MAX (watchdog_us / 2000, 1),
        lensd_main_on_watchdog_timer, m);

  if (!m->stopping)
    g_main_loop_run (m->loop);

  guard = g_thread_new ("lensd-stop", lensd_main_stop_guard, NULL);
  lensd_daemon_set_ready (m->daemon, FALSE);
  g_clear_handle_id (&m->status_id, g_source_remove);
  g_clear_handle_id (&m->watchdog_id, g_source_remove);
  /* HTTP first: no request may reach a daemon being freed */
  g_clear_pointer (&m->http, lensd_http_free);
  g_clear_pointer (&m->daemon, lensd_daemon_free);
  g_source_remove (hup_id);
  g_source_remove (term_id);
  g_source_remove (int_id);
  g_main_loop_unref (m->loop);
  g_mutex_lock (&lensd_stop_lock);
  lensd_stopped = TRUE;
  g_cond_signal (&lensd_stop_cond);
  g_mutex_unlock (&lensd_stop_lock);
  g_thread_join (guard);
  g_message ("stopped");
  return EXIT_SUCCESS;

fail:
  g_clear_pointer (&m->daemon, lensd_daemon_free);
  g_source_remove (hup_id);
  g_source_remove (term_id);
  g_source_remove (int_id);
  g_main_loop_unref (m->loop);
  return EXIT_FAILURE;
}

int
main (int argc, char **argv)
{
  gchar *config_path = NULL, *check_path = NULL;
  gboolean version = FALSE;
  GOptionEntry entries[] = {
    {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
        "The configuration file (default " LENSD_DEFAULT_CONFIG ")", "FILE"},
    {"check-config", 0, 0, G_OPTION_ARG_FILENAME, &check_path,
        "Check FILE, say what is wrong, and exit (0: valid)", "FILE"},
    {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL},
    {NULL}
  };
  GOptionContext *context;
  GError *error = NULL;
  LensdMain m = { 0 };
  int status;

  context = g_option_context_new ("- object detection on camera streams, "
      "served over HTTP");
  g_option_context_add_main_entries (context, entries, NULL);
  /* GStreamer's options are not offered: gst_init comes later, only when
   * lensd runs (--check-config needs no registry scan) */
  if (!g_option_context_parse (context, &argc, &argv, &error)) {
    g_printerr ("lensd: %s\n", error->message);
    g_error_free (error);
    g_option_context_free (context);
    return EXIT_FAILURE;
  }
  g_option_context_free (context);
  if (argc > 1) {
    g_printerr ("lensd: unexpected argument \"%s\" (see --help)\n", argv[1]);
    status = EXIT_FAILURE;
  } else if (version) {
    g_print ("lensd %s\n", LENSD_VERSION);
    status = EXIT_SUCCESS;
  } else if (check_path != NULL) {
    status = lensd_main_check_config (check_path);
  } else {
    m.config_path = config_path ? g_strdup (config_path) :
        g_strdup (LENSD_DEFAULT_CONFIG);
    status = lensd_main_run (&m);
    g_free (m.config_path);
  }
  g_free (config_path);
  g_free (check_path);
  return status;
}
