/* test-lensd-config.c: lensd's configuration (daemon/lensd-config.c):
 * one test per kind of error, each asserting the "FILE:LINE: KEY:" that
 * points at it and the error code; valid files and their defaults; the
 * stream configuration helpers the HTTP API uses; arbitrary bytes; and
 * `lensd --check-config` (the lensd built here, LENSD_PATH). */
#include "lens-check.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>

#include "lensd.h"

static gchar *tmp_dir;

static void
tmp_setup (void)
{
  GError *error = NULL;

  tmp_dir = g_dir_make_tmp ("test-lensd-config-XXXXXX", &error);
  ck_assert_msg (tmp_dir != NULL, "temporary directory: %s",
      error ? error->message : "");
}

static void
remove_tree (const gchar * path)
{
  GDir *dir = g_dir_open (path, 0, NULL);
  const gchar *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    gchar *child = g_build_filename (path, name, NULL);

    if (g_file_test (child, G_FILE_TEST_IS_DIR))
      remove_tree (child);
    else
      g_unlink (child);
    g_free (child);
  }
  if (dir != NULL)
    g_dir_close (dir);
  g_rmdir (path);
}

static void
tmp_teardown (void)
{
  remove_tree (tmp_dir);
  g_clear_pointer (&tmp_dir, g_free);
}

/* A file under tmp_dir with @contents; its path, to free. */
static gchar *
tmp_file (const gchar * name, const gchar * contents)
{
  gchar *path = g_build_filename (tmp_dir, name, NULL);
  GError *error = NULL;

  ck_assert_msg (g_file_set_contents (path, contents, -1, &error),
      "writing %s: %s", path, error ? error->message : "");
  return path;
}

static LensdConfig *
parse_ok (const gchar * text)
{
  GError *error = NULL;
  LensdConfig *config = lensd_config_parse (text, strlen (text), "test.conf",
      &error);

  ck_assert_msg (config != NULL, "expected a valid config, got: %s\n%s",
      error ? error->message : "(no error set)", text);
  ck_assert_ptr_null (error);
  return config;
}

/* @text fails with @code and a message that starts with @prefix. */
static void
assert_error (const gchar * text, LensdConfigError code, const gchar * prefix)
{
  GError *error = NULL;
  LensdConfig *config = lensd_config_parse (text, strlen (text), "test.conf",
      &error);

  ck_assert_msg (config == NULL, "expected \"%s...\", the config was "
      "accepted:\n%s", prefix, text);
  ck_assert_msg (error != NULL, "no error set for:\n%s", text);
  ck_assert_msg (g_str_has_prefix (error->message, prefix),
      "expected the message to start with\n  %s\ngot\n  %s", prefix,
      error->message);
  ck_assert_msg (error->domain == LENSD_CONFIG_ERROR && error->code == (gint) code,
      "\"%s\": expected code %d of LENSD_CONFIG_ERROR, got %d of %s",
      error->message, code, error->code, g_quark_to_string (error->domain));
  g_error_free (error);
}

/* ---- errors: syntax ---- */

START_TEST (test_syntax_not_a_key_file_line)
{
  assert_error ("[server]\nlisten=127.0.0.1:1\nthis is no key\n",
      LENSD_CONFIG_ERROR_SYNTAX, "test.conf:3: ");
  /* the line that fails, wherever it is, with the lines after it valid */
  assert_error ("# lensd\n\n[engine]\n\ndevice=cpu\n[server\n[model]\n",
      LENSD_CONFIG_ERROR_SYNTAX, "test.conf:6: ");
}
END_TEST

START_TEST (test_syntax_key_before_group)
{
  assert_error ("# comment\nlisten=127.0.0.1:1\n[server]\n",
      LENSD_CONFIG_ERROR_SYNTAX, "test.conf:2: ");
}
END_TEST

START_TEST (test_syntax_nul_byte)
{
  static const gchar text[] = "[server]\nlisten=1\0:2\n";
  GError *error = NULL;

  ck_assert_ptr_null (lensd_config_parse (text, sizeof text - 1, "test.conf",
          &error));
  ck_assert_msg (g_str_has_prefix (error->message,
          "test.conf:2: contains a NUL byte"), "got %s", error->message);
  ck_assert_int_eq (error->code, LENSD_CONFIG_ERROR_SYNTAX);
  g_error_free (error);
}
END_TEST

START_TEST (test_syntax_not_utf8)
{
  assert_error ("[server]\n\n[stream a]\nuri=rtsp://h/\xff\n",
      LENSD_CONFIG_ERROR_SYNTAX, "test.conf:4: not valid UTF-8");
}
END_TEST

START_TEST (test_syntax_bad_escape)
{
  /* GKeyFile reads escapes when the value is read: still a line to show */
  assert_error ("[stream a]\n\npipeline=videotestsrc \\q\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: pipeline: ");
}
END_TEST

/* ---- errors: unknown groups and keys ---- */

START_TEST (test_unknown_group)
{
  assert_error ("[server]\n\n[sever]\nlisten=127.0.0.1:1\n",
      LENSD_CONFIG_ERROR_UNKNOWN, "test.conf:3: [sever]: unknown group");
  assert_error ("[stream]\nuri=rtsp://h/\n", LENSD_CONFIG_ERROR_UNKNOWN,
      "test.conf:1: [stream]: a stream group is [stream NAME]");
}
END_TEST

START_TEST (test_unknown_key)
{
  assert_error ("[server]\nlisten=127.0.0.1:1\nlisen=127.0.0.1:2\n",
      LENSD_CONFIG_ERROR_UNKNOWN,
      "test.conf:3: lisen: unknown key in [server]");
  assert_error ("[stream a]\nuri=rtsp://h/\nintervall=2\n",
      LENSD_CONFIG_ERROR_UNKNOWN,
      "test.conf:3: intervall: unknown key in [stream a]");
  assert_error ("[mqtt]\nhost=h\ntls=true\n", LENSD_CONFIG_ERROR_UNKNOWN,
      "test.conf:3: tls: unknown key in [mqtt]");
  /* localised keys are GKeyFile syntax, not lensd's */
  assert_error ("[engine]\ndevice[de]=cpu\n", LENSD_CONFIG_ERROR_UNKNOWN,
      "test.conf:2: device[de]: unknown key in [engine]");
}
END_TEST

/* ---- errors: duplicates ---- */

START_TEST (test_duplicate_stream)
{
  assert_error ("[stream a]\nuri=rtsp://h/1\n\n[stream a]\nuri=rtsp://h/2\n",
      LENSD_CONFIG_ERROR_DUPLICATE,
      "test.conf:4: [stream a]: stream \"a\" is already defined at line 1");
}
END_TEST

START_TEST (test_duplicate_group)
{
  assert_error ("[server]\nthreads=2\n[server]\nthreads=3\n",
      LENSD_CONFIG_ERROR_DUPLICATE,
      "test.conf:3: [server]: group \"server\" is already given at line 1");
}
END_TEST

START_TEST (test_duplicate_key)
{
  assert_error ("[stream a]\nuri=rtsp://h/1\ninterval=2\ninterval = 3\n",
      LENSD_CONFIG_ERROR_DUPLICATE,
      "test.conf:4: interval: already given at line 3 in [stream a]");
}
END_TEST

/* ---- errors: values of each kind ---- */

START_TEST (test_bad_integer)
{
  assert_error ("[stream a]\nuri=rtsp://h/\ninterval=0\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: interval: expected a whole "
      "number from 1 to 10000, got \"0\"");
  assert_error ("[stream a]\nuri=rtsp://h/\ninterval=two\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: interval: expected a whole "
      "number");
  assert_error ("[server]\nthreads=-1\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: threads: expected a whole number from 0 to 1024");
  assert_error ("[server]\nmax-connections=0\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: max-connections: ");
  assert_error ("[server]\nconnection-timeout=1.5\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:2: connection-timeout: ");
  assert_error ("[stream a]\nuri=rtsp://h/\nlatency=60001\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: latency: ");
  assert_error ("[stream a]\nuri=rtsp://h/\nstall-timeout=0\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: stall-timeout: ");
  assert_error ("[engine]\nfeature-channels=99999999999999999999\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:2: feature-channels: ");
}
END_TEST

START_TEST (test_bad_threshold)
{
  assert_error ("[model]\nconf-threshold=0\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: conf-threshold: expected a number in (0, 1], got \"0\"");
  assert_error ("[model]\niou-threshold=1.5\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: iou-threshold: expected a number in (0, 1]");
  assert_error ("[model]\nconf-threshold=nan\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: conf-threshold: ");
  assert_error ("[model]\nconf-threshold=0.5x\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: conf-threshold: ");
  assert_error ("[mqtt]\nhost=h\npublish-fps=-1\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:3: publish-fps: expected a number in [0, 1000]");
}
END_TEST

START_TEST (test_bad_boolean)
{
  assert_error ("[stream a]\nuri=file:///v.mp4\nloop=maybe\n",
      LENSD_CONFIG_ERROR_VALUE,
      "test.conf:3: loop: expected true or false, got \"maybe\"");
  assert_error ("[stream a]\nuri=file:///v.mp4\nenabled=2\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: enabled: ");
}
END_TEST

START_TEST (test_bad_listen)
{
  static const struct
  {
    const gchar *listen, *why;
  } cases[] = {
    {"127.0.0.1", "expected HOST:PORT"},
    {"::1:8080", "an IPv6 address goes in brackets, e.g. [::1]:8080"},
    {"[::1]8080", "expected [ADDRESS]:PORT"},
    {"[::1", "expected [ADDRESS]:PORT"},
    {"[127.0.0.1]:80", "\"127.0.0.1\" in brackets is not an IPv6 address"},
    {"127.0.0.1:65536", "port \"65536\" is not a number from 0 to 65535"},
    {"127.0.0.1:http", "port \"http\" is not a number"},
    {"127.0.0.1:", "port \"\" is not a number"},
    {":8080", "\"\" is not a host name or an address"},
    {"bad host!:80", "\"bad host!\" is not a host name"},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gchar *text = g_strdup_printf ("[server]\nthreads=1\nlisten=%s\n",
        cases[i].listen);
    gchar *prefix = g_strdup_printf ("test.conf:3: listen: %s",
        cases[i].why);

    assert_error (text, LENSD_CONFIG_ERROR_VALUE, prefix);
    g_free (prefix);
    g_free (text);
  }
}
END_TEST

START_TEST (test_bad_uri)
{
  assert_error ("[stream a]\nuri=ftp://h/v.mp4\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: uri: \"ftp://h/v.mp4\" is not an rtsp://, rtsps://, "
      "file://, http:// or https:// URI");
  assert_error ("[stream a]\nuri=/videos/v.mp4\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: uri: \"/videos/v.mp4\" is not an rtsp://");
  assert_error ("[stream a]\nuri=rtsp:///path\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: uri: a rtsp URI needs a host");
  assert_error ("[stream a]\nuri=file://v.mp4\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: uri: a file URI is file:///absolute/path");
  assert_error ("[stream a]\nuri=rtsp://h/a b\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: uri: contains blanks");
  assert_error ("[stream a]\nuri=http://h:99999/\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: uri: not a valid URI: ");
}
END_TEST

START_TEST (test_missing_uri)
{
  assert_error ("[server]\n\n[stream a]\ninterval=2\n",
      LENSD_CONFIG_ERROR_MISSING,
      "test.conf:3: uri: [stream a] needs uri= or pipeline=");
  /* an empty value is no value */
  assert_error ("[stream a]\nuri=\n", LENSD_CONFIG_ERROR_MISSING,
      "test.conf:2: uri: [stream a] needs uri= or pipeline=");
}
END_TEST

START_TEST (test_uri_pipeline_conflict)
{
  assert_error ("[stream a]\nuri=rtsp://h/\ninterval=1\n"
      "pipeline=videotestsrc\n", LENSD_CONFIG_ERROR_CONFLICT,
      "test.conf:4: pipeline: uri and pipeline exclude each other");
}
END_TEST

START_TEST (test_bad_stream_name)
{
  gchar *long_name = g_strnfill (65, 'x');
  gchar *text = g_strdup_printf ("[stream %s]\nuri=rtsp://h/\n", long_name);

  assert_error ("[stream front door]\nuri=rtsp://h/\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:1: [stream front door]: stream "
      "name \"front door\" is not 1 to 64 of A-Z a-z 0-9 _ . -");
  assert_error ("[stream ..]\nuri=rtsp://h/\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:1: [stream ..]: stream name");
  assert_error ("[stream caf\xc3\xa9]\nuri=rtsp://h/\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:1: [stream caf\xc3\xa9]: ");
  assert_error (text, LENSD_CONFIG_ERROR_VALUE, "test.conf:1: [stream xxx");
  g_free (text);
  g_free (long_name);
}
END_TEST

START_TEST (test_token_file)
{
  gchar *empty = tmp_file ("empty-token", "\n  \nsecond line\n");
  gchar *missing = g_build_filename (tmp_dir, "no-such-token", NULL);
  gchar *text;

  text = g_strdup_printf ("[server]\ntoken-file=%s\n", missing);
  {
    gchar *prefix = g_strdup_printf ("test.conf:2: token-file: %s: ",
        missing);

    assert_error (text, LENSD_CONFIG_ERROR_FILE, prefix);
    g_free (prefix);
  }
  g_free (text);

  text = g_strdup_printf ("[server]\ntoken-file=%s\n", empty);
  assert_error (text, LENSD_CONFIG_ERROR_FILE, "test.conf:2: token-file: ");
  g_free (text);

  /* a directory is no file */
  text = g_strdup_printf ("[server]\n\ntoken-file=%s\n", tmp_dir);
  assert_error (text, LENSD_CONFIG_ERROR_FILE, "test.conf:3: token-file: ");
  g_free (text);

  g_free (missing);
  g_free (empty);
}
END_TEST

START_TEST (test_model_files)
{
  gchar *missing = g_build_filename (tmp_dir, "no-model.onnx", NULL);
  gchar *labels = tmp_file ("coco.names", "person\n");
  gchar *text, *prefix;

  text = g_strdup_printf ("[model]\npath=%s\n", missing);
  prefix = g_strdup_printf ("test.conf:2: path: %s: No such file", missing);
  assert_error (text, LENSD_CONFIG_ERROR_FILE, prefix);
  g_free (prefix);
  g_free (text);

  text = g_strdup_printf ("[model]\nlabels=%s\n", missing);
  assert_error (text, LENSD_CONFIG_ERROR_FILE, "test.conf:2: labels: ");
  g_free (text);

  /* labels without a model: motion mode has no labels */
  text = g_strdup_printf ("[model]\nlabels=%s\n", labels);
  assert_error (text, LENSD_CONFIG_ERROR_MISSING, "test.conf:1: path: ");
  g_free (text);

  g_free (labels);
  g_free (missing);
}
END_TEST

START_TEST (test_bad_mqtt)
{
  gchar *cert = tmp_file ("client.crt", "cert\n");
  gchar *ca = tmp_file ("ca.crt", "ca\n");
  gchar *password = tmp_file ("password", "secret\n");
  gchar *text;

  assert_error ("[mqtt]\nhost=broker\nqos=2\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:3: qos: expected a whole number from 0 to 1, got \"2\"");
  assert_error ("[server]\n[mqtt]\nport=1883\n", LENSD_CONFIG_ERROR_MISSING,
      "test.conf:2: host: [mqtt] needs the broker's host=");
  assert_error ("[mqtt]\nhost=broker\nport=0\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:3: port: ");
  assert_error ("[mqtt]\nhost=broker\nkeepalive=1\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:3: keepalive: ");
  assert_error ("[mqtt]\nhost=broker\nqueue-size=0\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: queue-size: ");
  assert_error ("[mqtt]\nhost=bad host\n", LENSD_CONFIG_ERROR_VALUE,
      "test.conf:2: host: \"bad host\" is not a host name");
  assert_error ("[mqtt]\nhost=broker\ninstance=site/cam\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: instance: \"site/cam\" is not "
      "a topic level");
  assert_error ("[mqtt]\nhost=broker\ntopic-prefix=lens/#\n",
      LENSD_CONFIG_ERROR_VALUE, "test.conf:3: topic-prefix: ");

  text = g_strdup_printf ("[mqtt]\nhost=broker\npassword-file=%s\n",
      password);
  assert_error (text, LENSD_CONFIG_ERROR_MISSING,
      "test.conf:3: username: password-file= needs username= as well");
  g_free (text);

  text = g_strdup_printf ("[mqtt]\nhost=broker\nca-file=%s\ncert-file=%s\n",
      ca, cert);
  assert_error (text, LENSD_CONFIG_ERROR_MISSING, "test.conf:4: key-file: ");
  g_free (text);

  text = g_strdup_printf ("[mqtt]\nhost=broker\ncert-file=%s\nkey-file=%s\n",
      cert, cert);
  assert_error (text, LENSD_CONFIG_ERROR_MISSING, "test.conf:3: ca-file: ");
  g_free (text);

  text = g_strdup_printf ("[mqtt]\nhost=broker\nca-file=%s/none.crt\n",
      tmp_dir);
  assert_error (text, LENSD_CONFIG_ERROR_FILE, "test.conf:3: ca-file: ");
  g_free (text);

  g_free (password);
  g_free (ca);
  g_free (cert);
}
END_TEST

START_TEST (test_error_without_path)
{
  GError *error = NULL;
  const gchar *text = "[server]\nbogus=1\n";

  ck_assert_ptr_null (lensd_config_parse (text, strlen (text), NULL,
          &error));
  ck_assert_str_eq (error->message,
      "(config):2: bogus: unknown key in [server] (known: listen, "
      "token-file, threads, max-connections, max-connections-per-ip, "
      "connection-timeout)");
  g_error_free (error);
}
END_TEST

START_TEST (test_load_errors)
{
  GError *error = NULL;
  gchar *missing = g_build_filename (tmp_dir, "none.conf", NULL);
  gchar *prefix = g_strdup_printf ("%s: No such file", missing);
  gchar *bad = tmp_file ("bad.conf", "[server]\n\nlisten=nowhere\n");
  gchar *bad_prefix = g_strdup_printf ("%s:3: listen: ", bad);

  ck_assert_ptr_null (lensd_config_load (missing, &error));
  ck_assert_msg (g_str_has_prefix (error->message, prefix), "got %s",
      error->message);
  ck_assert_int_eq (error->code, LENSD_CONFIG_ERROR_FILE);
  g_clear_error (&error);

  ck_assert_ptr_null (lensd_config_load (tmp_dir, &error));
  ck_assert_msg (g_str_has_suffix (error->message, "not a regular file"),
      "got %s", error->message);
  g_clear_error (&error);

  /* the file's path names it in messages */
  ck_assert_ptr_null (lensd_config_load (bad, &error));
  ck_assert_msg (g_str_has_prefix (error->message, bad_prefix), "got %s",
      error->message);
  g_clear_error (&error);

  g_free (bad_prefix);
  g_free (bad);
  g_free (prefix);
  g_free (missing);
}
END_TEST

/* ---- valid files ---- */

START_TEST (test_defaults)
{
  LensdConfig *c = parse_ok ("");

  ck_assert_str_eq (c->listen_host, "127.0.0.1");
  ck_assert_uint_eq (c->listen_port, 8080);
  ck_assert_ptr_null (c->token_file);
  ck_assert_ptr_null (c->token);
  ck_assert_uint_eq (c->threads, 0);
  ck_assert_uint_eq (c->max_connections, 1000);
  ck_assert_uint_eq (c->max_connections_per_ip, 200);
  ck_assert_uint_eq (c->connection_timeout_s, 30);
  ck_assert_ptr_null (c->device);
  ck_assert_ptr_null (c->cache_dir);
  ck_assert_uint_eq (c->feature_channels, 16);
  ck_assert_ptr_null (c->model_path);
  ck_assert_ptr_null (c->labels_path);
  ck_assert_double_eq_tol (c->conf_threshold, 0.25, 1e-9);
  ck_assert_double_eq_tol (c->iou_threshold, 0.45, 1e-9);
  ck_assert_uint_eq (c->streams->len, 0);
  ck_assert_ptr_null (c->mqtt);
  ck_assert_str_eq (c->path, "test.conf");
  lensd_config_free (c);
}
END_TEST

START_TEST (test_full)
{
  gchar *token = tmp_file ("token", "  s3cret-token \t\nignored\n");
  gchar *model = tmp_file ("model.onnx", "not really a model");
  gchar *labels = tmp_file ("coco.names", "person\n");
  gchar *password = tmp_file ("password", " pass word \r\n");
  gchar *ca = tmp_file ("ca.crt", "ca\n");
  gchar *cert = tmp_file ("client.crt", "cert\n");
  gchar *key = tmp_file ("client.key", "key\n");
  gchar *text = g_strdup_printf ("# every key\r\n"
      "[server]\r\n"
      "listen = 0.0.0.0:9090\r\n"
      "token-file=%s\r\n"
      "threads=4\r\n"
      "max-connections=50\r\n"
      "max-connections-per-ip=0\r\n"
      "connection-timeout=5\r\n"
      "\r\n"
      "[engine]\n"
      "device=cpu\n"
      "cache-dir=/nonexistent/cache\n"
      "feature-channels=8\n"
      "[model]\n"
      "path=%s\n"
      "labels=%s\n"
      "conf-threshold=0.5\n"
      "iou-threshold=1\n"
      "[stream zeta]\n"
      "uri=rtsps://user:pw@cam.example:322/live?x=1\n"
      "interval=3\n"
      "loop=no\n"
      "enabled=false\n"
      "latency=0\n"
      "stall-timeout=60\n"
      "[stream alpha.1_-]\n"
      "pipeline=videotestsrc pattern=ball ! video/x-raw,width=64\n"
      "[stream file]\n"
      "uri=file:///videos/a%%20b.mp4\n"
      "loop=TRUE\n"
      "[mqtt]\n"
      "host=::1\n"
      "port=1884\n"
      "client-id=cam-box-1\n"
      "instance=box1\n"
      "username=lens\n"
      "password-file=%s\n"
      "ca-file=%s\n"
      "cert-file=%s\n"
      "key-file=%s\n"
      "topic-prefix=site/lens\n"
      "qos=1\n"
      "keepalive=60\n"
      "publish-fps=2.5\n"
      "queue-size=10\n", token, model, labels, password, ca, cert, key);
  LensdConfig *c = parse_ok (text);
  LensdStreamConfig *s;

  ck_assert_str_eq (c->listen_host, "0.0.0.0");
  ck_assert_uint_eq (c->listen_port, 9090);
  ck_assert_str_eq (c->token_file, token);
  ck_assert_str_eq (c->token, "s3cret-token");
  ck_assert_uint_eq (c->threads, 4);
  ck_assert_uint_eq (c->max_connections, 50);
  ck_assert_uint_eq (c->max_connections_per_ip, 0);
  ck_assert_uint_eq (c->connection_timeout_s, 5);
  ck_assert_str_eq (c->device, "cpu");
  ck_assert_str_eq (c->cache_dir, "/nonexistent/cache");
  ck_assert_uint_eq (c->feature_channels, 8);
  ck_assert_str_eq (c->model_path, model);
  ck_assert_str_eq (c->labels_path, labels);
  ck_assert_double_eq_tol (c->conf_threshold, 0.5, 1e-9);
  ck_assert_double_eq_tol (c->iou_threshold, 1.0, 1e-9);

  /* streams in file order, not sorted */
  ck_assert_uint_eq (c->streams->len, 3);
  s = g_ptr_array_index (c->streams, 0);
  ck_assert_str_eq (s->name, "zeta");
  ck_assert_str_eq (s->uri, "rtsps://user:pw@cam.example:322/live?x=1");
  ck_assert_ptr_null (s->pipeline);
  ck_assert_uint_eq (s->interval, 3);
  ck_assert (!s->loop);
  ck_assert (!s->enabled);
  ck_assert_uint_eq (s->latency_ms, 0);
  ck_assert_uint_eq (s->stall_timeout_s, 60);
  ck_assert (!s->from_api);
  s = g_ptr_array_index (c->streams, 1);
  ck_assert_str_eq (s->name, "alpha.1_-");
  ck_assert_ptr_null (s->uri);
  ck_assert_str_eq (s->pipeline,
      "videotestsrc pattern=ball ! video/x-raw,width=64");
  s = g_ptr_array_index (c->streams, 2);
  ck_assert_str_eq (s->uri, "file:///videos/a%20b.mp4");
  ck_assert (s->loop);

  ck_assert_ptr_nonnull (c->mqtt);
  ck_assert_str_eq (c->mqtt->host, "::1");
  ck_assert_uint_eq (c->mqtt->port, 1884);
  ck_assert_str_eq (c->mqtt->client_id, "cam-box-1");
  ck_assert_str_eq (c->mqtt->instance, "box1");
  ck_assert_str_eq (c->mqtt->username, "lens");
  /* a password keeps its blanks: only the line end goes */
  ck_assert_str_eq (c->mqtt->password, " pass word ");
  ck_assert_str_eq (c->mqtt->password_file, password);
  ck_assert_str_eq (c->mqtt->ca_file, ca);
  ck_assert_str_eq (c->mqtt->cert_file, cert);
  ck_assert_str_eq (c->mqtt->key_file, key);
  ck_assert_str_eq (c->mqtt->topic_prefix, "site/lens");
  ck_assert_uint_eq (c->mqtt->qos, 1);
  ck_assert_uint_eq (c->mqtt->keepalive_s, 60);
  ck_assert_double_eq_tol (c->mqtt->publish_fps, 2.5, 1e-9);
  ck_assert_uint_eq (c->mqtt->queue_size, 10);

  lensd_config_free (c);
  g_free (text);
  g_free (key);
  g_free (cert);
  g_free (ca);
  g_free (password);
  g_free (labels);
  g_free (model);
  g_free (token);
}
END_TEST

START_TEST (test_listen_forms)
{
  static const struct
  {
    const gchar *listen, *host;
    guint port;
  } cases[] = {
    {"[::1]:8080", "::1", 8080},
    {"[::]:0", "::", 0},
    {"localhost:65535", "localhost", 65535},
    {"cam-box.local:80", "cam-box.local", 80},
    {"127.0.0.1:0", "127.0.0.1", 0},
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gchar *text = g_strdup_printf ("[server]\nlisten=%s\n", cases[i].listen);
    LensdConfig *c = parse_ok (text);

    ck_assert_str_eq (c->listen_host, cases[i].host);
    ck_assert_uint_eq (c->listen_port, cases[i].port);
    lensd_config_free (c);
    g_free (text);
  }
}
END_TEST

START_TEST (test_empty_means_default)
{
  LensdConfig *c = parse_ok ("[server]\nlisten=\ntoken-file=\nthreads=\n"
      "[engine]\ndevice=auto\ncache-dir=\n[model]\npath=\n"
      "[stream a]\nuri=rtsp://h/\ninterval=\nlatency= \n");
  LensdStreamConfig *s = g_ptr_array_index (c->streams, 0);

  ck_assert_str_eq (c->listen_host, "127.0.0.1");
  ck_assert_uint_eq (c->listen_port, 8080);
  ck_assert_ptr_null (c->token);
  ck_assert_uint_eq (c->threads, 0);
  ck_assert_ptr_null (c->device);
  ck_assert_ptr_null (c->cache_dir);
  ck_assert_ptr_null (c->model_path);
  ck_assert_uint_eq (s->interval, 1);
  ck_assert_uint_eq (s->latency_ms, 200);
  lensd_config_free (c);
}
END_TEST

START_TEST (test_stream_defaults)
{
  LensdConfig *c = parse_ok ("[stream cam]\nuri=rtsp://10.0.0.2:554/s\n");
  LensdStreamConfig *s = g_ptr_array_index (c->streams, 0);

  ck_assert_str_eq (s->name, "cam");
  ck_assert_uint_eq (s->interval, 1);
  ck_assert (!s->loop);
  ck_assert (s->enabled);
  ck_assert_uint_eq (s->latency_ms, 200);
  ck_assert_uint_eq (s->stall_timeout_s, 10);
  ck_assert (!s->from_api);
  lensd_config_free (c);
}
END_TEST

START_TEST (test_mqtt_defaults)
{
  gchar *ca = tmp_file ("ca.crt", "ca\n");
  gchar *text = g_strdup_printf ("[mqtt]\nhost=broker\nca-file=%s\n", ca);
  gchar *client_id = g_strdup_printf ("lensd-%s", g_get_host_name ());
  LensdConfig *c = parse_ok ("[mqtt]\nhost=broker.example\n");
  LensdConfig *tls;

  ck_assert_str_eq (c->mqtt->host, "broker.example");
  ck_assert_uint_eq (c->mqtt->port, 1883);
  ck_assert_str_eq (c->mqtt->client_id, client_id);
  ck_assert_str_eq (c->mqtt->instance, g_get_host_name ());
  ck_assert_str_eq (c->mqtt->topic_prefix, "lens");
  ck_assert_ptr_null (c->mqtt->username);
  ck_assert_ptr_null (c->mqtt->password);
  ck_assert_ptr_null (c->mqtt->ca_file);
  ck_assert_uint_eq (c->mqtt->qos, 0);
  ck_assert_uint_eq (c->mqtt->keepalive_s, 30);
  ck_assert_double_eq_tol (c->mqtt->publish_fps, 0, 1e-9);
  ck_assert_uint_eq (c->mqtt->queue_size, 1000);

  /* TLS moves the default port */
  tls = parse_ok (text);
  ck_assert_uint_eq (tls->mqtt->port, 8883);
  ck_assert_str_eq (tls->mqtt->ca_file, ca);

  lensd_config_free (tls);
  lensd_config_free (c);
  g_free (client_id);
  g_free (text);
  g_free (ca);
}
END_TEST

/* ---- stream configurations (the POST body) ---- */

START_TEST (test_stream_config_copy_equal)
{
  LensdStreamConfig *a = lensd_stream_config_new ("cam");
  LensdStreamConfig *b;

  a->uri = g_strdup ("rtsp://h/");
  b = lensd_stream_config_copy (a);
  ck_assert_ptr_ne (a->uri, b->uri);
  ck_assert_msg (lensd_stream_config_equal (a, b), "a copy differs");
  b->from_api = TRUE;
  ck_assert_msg (lensd_stream_config_equal (a, b),
      "from_api must not make a restart");

#define CHANGED(field, value) do { \
    LensdStreamConfig *c = lensd_stream_config_copy (a); \
    c->field = value; \
    ck_assert_msg (!lensd_stream_config_equal (a, c), \
        "a changed " #field " compares equal"); \
    ck_assert_msg (!lensd_stream_config_equal (c, a), \
        "a changed " #field " compares equal (reversed)"); \
    lensd_stream_config_free (c); \
  } while (0)
  CHANGED (interval, 2);
  CHANGED (loop, TRUE);
  CHANGED (enabled, FALSE);
  CHANGED (latency_ms, 100);
  CHANGED (stall_timeout_s, 3);
#undef CHANGED
  {
    LensdStreamConfig *c = lensd_stream_config_copy (a);

    g_free (c->uri);
    c->uri = g_strdup ("rtsp://h/other");
    ck_assert (!lensd_stream_config_equal (a, c));
    g_clear_pointer (&c->uri, g_free);
    c->pipeline = g_strdup ("videotestsrc");
    ck_assert (!lensd_stream_config_equal (a, c));
    g_free (c->name);
    c->name = g_strdup ("other");
    ck_assert (!lensd_stream_config_equal (a, c));
    lensd_stream_config_free (c);
  }
  lensd_stream_config_free (b);
  lensd_stream_config_free (a);
  lensd_stream_config_free (NULL);
}
END_TEST

static void
assert_invalid (LensdStreamConfig * config, LensdConfigError code,
    const gchar * message)
{
  GError *error = NULL;

  ck_assert_msg (!lensd_stream_config_validate (config, &error),
      "expected \"%s\", it was accepted", message);
  ck_assert_msg (g_str_has_prefix (error->message, message),
      "expected \"%s...\", got \"%s\"", message, error->message);
  ck_assert_int_eq (error->code, code);
  g_error_free (error);
}

START_TEST (test_stream_config_validate)
{
  LensdStreamConfig *c = lensd_stream_config_new ("cam");
  GError *error = NULL;

  assert_invalid (c, LENSD_CONFIG_ERROR_MISSING,
      "stream cam: uri: a stream needs a uri or a pipeline");
  c->uri = g_strdup ("rtsp://h/");
  ck_assert_msg (lensd_stream_config_validate (c, &error), "%s",
      error ? error->message : "");
  c->pipeline = g_strdup ("videotestsrc");
  assert_invalid (c, LENSD_CONFIG_ERROR_CONFLICT, "stream cam: pipeline: ");
  g_clear_pointer (&c->uri, g_free);
  ck_assert (lensd_stream_config_validate (c, NULL));

  g_free (c->pipeline);
  c->pipeline = g_strdup ("");
  assert_invalid (c, LENSD_CONFIG_ERROR_VALUE, "stream cam: pipeline: ");
  g_clear_pointer (&c->pipeline, g_free);

  c->uri = g_strdup ("gopher://h/");
  assert_invalid (c, LENSD_CONFIG_ERROR_VALUE, "stream cam: uri: ");
  g_free (c->uri);
  c->uri = g_strdup ("rtsp://h/\n");
  assert_invalid (c, LENSD_CONFIG_ERROR_VALUE, "stream cam: uri: ");
  g_free (c->uri);
  c->uri = g_strdup ("http://h/");

  c->interval = 0;
  assert_invalid (c, LENSD_CONFIG_ERROR_VALUE,
      "stream cam: interval: must be from 1 to 10000, got 0");
  c->interval = 1;
  c->latency_ms = 60001;
  assert_invalid (c, LENSD_CONFIG_ERROR_VALUE, "stream cam: latency: ");
  c->latency_ms = 0;
  c->stall_timeout_s = 0;
  assert_invalid (c, LENSD_CONFIG_ERROR_VALUE, "stream cam: stall-timeout: ");
  c->stall_timeout_s = 1;
  ck_assert (lensd_stream_config_validate (c, NULL));

  g_free (c->name);
  c->name = g_strdup ("a/b");
  assert_invalid (c, LENSD_CONFIG_ERROR_VALUE, "stream \"a/b\": name: ");
  g_clear_pointer (&c->name, g_free);
  assert_invalid (c, LENSD_CONFIG_ERROR_VALUE, "stream (none): name: ");
  lensd_stream_config_free (c);
}
END_TEST

START_TEST (test_stream_name_valid)
{
  gchar *max = g_strnfill (64, 'a');
  gchar *over = g_strnfill (65, 'a');

  ck_assert (lensd_stream_name_valid ("front-door"));
  ck_assert (lensd_stream_name_valid ("Cam_2.hd"));
  ck_assert (lensd_stream_name_valid ("..."));
  ck_assert (lensd_stream_name_valid (max));
  ck_assert (!lensd_stream_name_valid (over));
  ck_assert (!lensd_stream_name_valid (""));
  ck_assert (!lensd_stream_name_valid (NULL));
  ck_assert (!lensd_stream_name_valid ("."));
  ck_assert (!lensd_stream_name_valid (".."));
  ck_assert (!lensd_stream_name_valid ("a b"));
  ck_assert (!lensd_stream_name_valid ("a/b"));
  ck_assert (!lensd_stream_name_valid ("a%20"));
  ck_assert (!lensd_stream_name_valid ("caf\xc3\xa9"));
  g_free (over);
  g_free (max);
}
END_TEST

/* ---- arbitrary bytes ---- */

/* Random bytes and random edits of a valid file: each is either a config
 * or an error that names the file; never a crash (valgrind and the
 * sanitizer builds see the leaks). The fuzzer of tests/fuzz goes further;
 * this keeps the basics in every make check. */
START_TEST (test_arbitrary_bytes)
{
  static const gchar base[] = "[server]\nlisten=[::1]:0\nthreads=2\n"
      "[engine]\ndevice=auto\n[stream a]\nuri=rtsp://h:554/x\ninterval=2\n"
      "[stream b]\npipeline=videotestsrc ! video/x-raw\nloop=true\n"
      "[mqtt]\nhost=localhost\nqos=1\n";
  static const gchar alphabet[] = "[]=#\n\r \\:/.-ab0\xc3\xa9\xff";
  GRand *rand = g_rand_new_with_seed (6);
  guint accepted = 0;

  for (guint round = 0; round < 3000; round++) {
    GString *s = g_string_new_len (base, sizeof base - 1);
    GError *error = NULL;
    LensdConfig *c;
    guint edits = g_rand_int_range (rand, 1, 6);

    if (round % 3 == 0)
      g_string_truncate (s, 0);
    for (guint e = 0; e < edits || s->len == 0; e++) {
      guint at = s->len ? g_rand_int_range (rand, 0, s->len + 1) : 0;
      gchar ch = round % 2 ? alphabet[g_rand_int_range (rand, 0,
              sizeof alphabet - 1)] : (gchar) g_rand_int_range (rand, 0, 256);

      switch (g_rand_int_range (rand, 0, 3)) {
        case 0:
          g_string_insert_c (s, at, ch);
          break;
        case 1:
          if (at < s->len)
            g_string_erase (s, at, 1);
          break;
        default:
          if (at < s->len)
            s->str[at] = ch;
          break;
      }
      if (e > 64)
        break;
    }
    c = lensd_config_parse (s->str, s->len, "fuzz.conf", &error);
    ck_assert_msg ((c == NULL) != (error == NULL),
        "a config and an error, or neither");
    if (c != NULL) {
      accepted++;
      lensd_config_free (c);
    } else {
      ck_assert_msg (g_str_has_prefix (error->message, "fuzz.conf"),
          "the message does not name the file: %s", error->message);
      ck_assert_msg (g_utf8_validate (error->message, -1, NULL),
          "the message is not UTF-8");
      g_error_free (error);
    }
    g_string_free (s, TRUE);
  }
  /* the edits are small: some of them must still be valid */
  ck_assert_msg (accepted > 0, "no edited config was accepted");
  g_rand_free (rand);
}
END_TEST

/* ---- lensd --check-config ---- */

static gint
run_lensd (const gchar * const *args, gchar ** out, gchar ** err)
{
  GPtrArray *argv = g_ptr_array_new ();
  GError *error = NULL;
  gint status;

  g_ptr_array_add (argv, (gpointer) LENSD_PATH);
  for (; *args != NULL; args++)
    g_ptr_array_add (argv, (gpointer) * args);
  g_ptr_array_add (argv, NULL);
  ck_assert_msg (g_spawn_sync (NULL, (gchar **) argv->pdata, NULL, 0, NULL,
          NULL, out, err, &status, &error), "running %s: %s", LENSD_PATH,
      error ? error->message : "");
  g_ptr_array_free (argv, TRUE);
  ck_assert_msg (WIFEXITED (status), "lensd did not exit normally");
  return WEXITSTATUS (status);
}

START_TEST (test_check_config_ok)
{
  gchar *path = tmp_file ("good.conf", "[server]\nlisten=127.0.0.1:0\n"
      "[stream demo]\npipeline=videotestsrc is-live=true\n");
  gchar *expected = g_strdup_printf ("%s: ok\n", path);
  const gchar *args[] = { "--check-config", path, NULL };
  gchar *out, *err;

  ck_assert_int_eq (run_lensd (args, &out, &err), 0);
  ck_assert_str_eq (out, expected);
  ck_assert_str_eq (err, "");
  g_free (out);
  g_free (err);
  g_free (expected);
  g_free (path);
}
END_TEST

START_TEST (test_check_config_error)
{
  gchar *path = tmp_file ("bad.conf", "[server]\nlisten=127.0.0.1:0\n"
      "\n[stream demo]\npipeline=videotestsrc\nintervall=2\n");
  gchar *expected = g_strdup_printf ("%s:6: intervall: unknown key in "
      "[stream demo]", path);
  gchar *missing = g_build_filename (tmp_dir, "missing.conf", NULL);
  const gchar *args[] = { "--check-config", path, NULL };
  const gchar *args_missing[] = { "--check-config", missing, NULL };
  const gchar *args_run[] = { "--config", missing, NULL };
  gchar *out, *err;

  ck_assert_int_eq (run_lensd (args, &out, &err), 1);
  ck_assert_msg (strstr (err, expected) != NULL, "expected \"%s\" on "
      "stderr, got \"%s\"", expected, err);
  ck_assert_str_eq (out, "");
  g_free (out);
  g_free (err);

  ck_assert_int_eq (run_lensd (args_missing, &out, &err), 1);
  ck_assert_msg (strstr (err, missing) != NULL, "expected the path on "
      "stderr, got \"%s\"", err);
  g_free (out);
  g_free (err);

  /* running with a bad config fails the same way, before anything starts */
  ck_assert_int_eq (run_lensd (args_run, &out, &err), 1);
  ck_assert_msg (strstr (err, missing) != NULL, "expected the path on "
      "stderr, got \"%s\"", err);
  g_free (out);
  g_free (err);

  g_free (missing);
  g_free (expected);
  g_free (path);
}
END_TEST

START_TEST (test_version)
{
  const gchar *args[] = { "--version", NULL };
  gchar *out, *err;

  ck_assert_int_eq (run_lensd (args, &out, &err), 0);
  ck_assert_msg (g_str_has_prefix (out, "lensd "), "got \"%s\"", out);
  g_free (out);
  g_free (err);
}
END_TEST

static Suite *
lensd_config_suite (void)
{
  Suite *s = suite_create ("lensd-config");
  TCase *tc;

  tc = tcase_create ("syntax");
  tcase_add_test (tc, test_syntax_not_a_key_file_line);
  tcase_add_test (tc, test_syntax_key_before_group);
  tcase_add_test (tc, test_syntax_nul_byte);
  tcase_add_test (tc, test_syntax_not_utf8);
  tcase_add_test (tc, test_syntax_bad_escape);
  suite_add_tcase (s, tc);

  tc = tcase_create ("structure");
  tcase_add_test (tc, test_unknown_group);
  tcase_add_test (tc, test_unknown_key);
  tcase_add_test (tc, test_duplicate_stream);
  tcase_add_test (tc, test_duplicate_group);
  tcase_add_test (tc, test_duplicate_key);
  tcase_add_test (tc, test_missing_uri);
  tcase_add_test (tc, test_uri_pipeline_conflict);
  tcase_add_test (tc, test_error_without_path);
  suite_add_tcase (s, tc);

  tc = tcase_create ("values");
  tcase_add_checked_fixture (tc, tmp_setup, tmp_teardown);
  tcase_add_test (tc, test_bad_integer);
  tcase_add_test (tc, test_bad_threshold);
  tcase_add_test (tc, test_bad_boolean);
  tcase_add_test (tc, test_bad_listen);
  tcase_add_test (tc, test_bad_uri);
  tcase_add_test (tc, test_bad_stream_name);
  tcase_add_test (tc, test_token_file);
  tcase_add_test (tc, test_model_files);
  tcase_add_test (tc, test_bad_mqtt);
  tcase_add_test (tc, test_load_errors);
  suite_add_tcase (s, tc);

  tc = tcase_create ("valid");
  tcase_add_checked_fixture (tc, tmp_setup, tmp_teardown);
  tcase_add_test (tc, test_defaults);
  tcase_add_test (tc, test_full);
  tcase_add_test (tc, test_listen_forms);
  tcase_add_test (tc, test_empty_means_default);
  tcase_add_test (tc, test_stream_defaults);
  tcase_add_test (tc, test_mqtt_defaults);
  suite_add_tcase (s, tc);

  tc = tcase_create ("streams");
  tcase_add_test (tc, test_stream_config_copy_equal);
  tcase_add_test (tc, test_stream_config_validate);
  tcase_add_test (tc, test_stream_name_valid);
  suite_add_tcase (s, tc);

  tc = tcase_create ("robustness");
  tcase_set_timeout (tc, 300);
  tcase_add_test (tc, test_arbitrary_bytes);
  suite_add_tcase (s, tc);

  tc = tcase_create ("tool");
  tcase_add_checked_fixture (tc, tmp_setup, tmp_teardown);
  tcase_set_timeout (tc, 120);
  tcase_add_test (tc, test_check_config_ok);
  tcase_add_test (tc, test_check_config_error);
  tcase_add_test (tc, test_version);
  suite_add_tcase (s, tc);

  return s;
}

int
main (void)
{
  return lens_check_run (lensd_config_suite ());
}
