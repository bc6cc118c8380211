/* lensd-config.c: lensd's configuration file. GKeyFile parses it; this
 * file checks every group, key and value against what lensd understands
 * and words each error as "FILE:LINE: KEY: what is wrong". GKeyFile keeps
 * no line numbers, so a small scanner of the same text finds the line of
 * each group and key, only to point at it. Also the stream configuration
 * helpers that the HTTP API's POST shares with the file.
 *
 * The parser sees untrusted bytes (it is fuzzed): everything it reads is
 * bounded, files the config names are only stat()ed and opened, and only
 * the small ones (token, password) are read, up to a limit. */
#include "lensd.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

G_DEFINE_QUARK (lensd-config-error-quark, lensd_config_error)

/* a configuration is a few KiB; this only bounds what a mistake (or the
 * fuzzer) can make us hold */
#define LENSD_CONFIG_MAX_BYTES (1024 * 1024)
/* token and password files: one line */
#define LENSD_SECRET_MAX_BYTES (64 * 1024)
/* uri and pipeline strings, in the file and in POST bodies */
#define LENSD_SOURCE_MAX_CHARS 8192
#define LENSD_STREAM_NAME_MAX 64
/* shown in messages: enough to recognise a value, not a whole pipeline */
#define LENSD_MESSAGE_VALUE_MAX 80

#define DEFAULT_LISTEN_HOST "127.0.0.1"
#define DEFAULT_LISTEN_PORT 8080
#define DEFAULT_MAX_CONNECTIONS 1000
#define DEFAULT_MAX_CONNECTIONS_PER_IP 200
#define DEFAULT_CONNECTION_TIMEOUT_S 30
#define DEFAULT_FEATURE_CHANNELS 16
#define DEFAULT_CONF_THRESHOLD 0.25
#define DEFAULT_IOU_THRESHOLD 0.45
#define DEFAULT_INTERVAL 1
#define DEFAULT_LATENCY_MS 200
#define DEFAULT_STALL_TIMEOUT_S 10
#define DEFAULT_MQTT_PORT 1883
#define DEFAULT_MQTTS_PORT 8883
#define DEFAULT_TOPIC_PREFIX "lens"
#define DEFAULT_KEEPALIVE_S 30
#define DEFAULT_QUEUE_SIZE 1000

#define MAX_INTERVAL 10000
#define MAX_LATENCY_MS 60000
#define MAX_STALL_TIMEOUT_S 3600

static const gchar *const lensd_uri_schemes[] = {
  "rtsp", "rtsps", "file", "http", "https", NULL
};

/* ---- the parser's state ------------------------------------------------- */

typedef struct
{
  const gchar *name;            /* the file, for messages */
  GKeyFile *kf;
  GHashTable *group_lines;      /* group -> line */
  GHashTable *key_lines;        /* "group\nkey" -> line */
  GPtrArray *keys;              /* "group\nkey", file order: GKeyFile
                                 * does not list "key[locale]" */
  LensdConfig *config;
} LensdConfigParser;

static gint
lensd_config_group_line (LensdConfigParser * p, const gchar * group)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (p->group_lines, group));
}

/* The key's line, else its group's: a missing key is reported where it
 * belongs. */
static gint
lensd_config_key_line (LensdConfigParser * p, const gchar * group,
    const gchar * key)
{
  gchar *k = g_strconcat (group, "\n", key, NULL);
  gint line = GPOINTER_TO_INT (g_hash_table_lookup (p->key_lines, k));

  g_free (k);
  return line > 0 ? line : lensd_config_group_line (p, group);
}

static void
lensd_config_set_error (GError ** error, LensdConfigError code,
    const gchar * file, gint line, const gchar * key, const gchar * format,
    ...) G_GNUC_PRINTF (6, 7);

static void
lensd_config_set_error (GError ** error, LensdConfigError code,
    const gchar * file, gint line, const gchar * key, const gchar * format,
    ...)
{
  GString *s = g_string_new (file);
  va_list args;

  if (line > 0)
    g_string_append_printf (s, ":%d", line);
  g_string_append (s, ": ");
  if (key != NULL)
    g_string_append_printf (s, "%s: ", key);
  va_start (args, format);
  g_string_append_vprintf (s, format, args);
  va_end (args);
  g_set_error_literal (error, LENSD_CONFIG_ERROR, code, s->str);
  g_string_free (s, TRUE);
}

/* A value as messages quote it: shortened, control characters escaped. */
static gchar *
lensd_config_quote (const gchar * value)
{
  glong len = g_utf8_strlen (value, -1);
  /* g_utf8_substring reads past the end when asked for more */
  gchar *shown = g_utf8_substring (value, 0, MIN (len,
          LENSD_MESSAGE_VALUE_MAX));
  gchar *escaped = g_strescape (shown, "\"");
  gchar *quoted;

  quoted = g_strdup_printf ("\"%s%s\"", escaped,
      len > LENSD_MESSAGE_VALUE_MAX ? "..." : "");
  g_free (escaped);
  g_free (shown);
  return quoted;
}

/* ---- where each group and key is ----------------------------------------- */

static gboolean
lensd_config_line_is_group (const gchar * line, gsize len, gsize * name_len)
{
  gsize i;

  if (len == 0 || line[0] != '[')
    return FALSE;
  for (i = 1; i < len && line[i] != ']'; i++);
  if (i == len)
    return FALSE;
  *name_len = i - 1;
  /* GKeyFile accepts blanks after the ']' */
  for (i++; i < len && (line[i] == ' ' || line[i] == '\t'); i++);
  return i == len;
}

/* Records the line of every group and key of @data, which GKeyFile has
 * accepted (so every line is a comment, a group or key=value, with the
 * same rules as GKeyFile's). Groups and keys given twice are errors here:
 * GKeyFile would merge the groups and keep the last value. */
static gboolean
lensd_config_map_lines (LensdConfigParser * p, const gchar * data,
    gsize length, GError ** error)
{
  const gchar *line = data, *end = data + length;
  gchar *group = NULL;
  gint number = 0;
  gboolean ok = TRUE;

  while (ok && line < end) {
    const gchar *nl = memchr (line, '\n', end - line);
    const gchar *line_end = nl ? nl : end;
    const gchar *next = nl ? nl + 1 : end;
    gsize len, name_len;

    number++;
    while (line < line_end && g_ascii_isspace (*line))
      line++;
    len = line_end - line;
    if (len > 0 && line[len - 1] == '\r')
      len--;
    if (len == 0 || line[0] == '#') {
      line = next;
      continue;
    }
    if (lensd_config_line_is_group (line, len, &name_len)) {
      gint first;

      g_free (group);
      group = g_strndup (line + 1, name_len);
      first = lensd_config_group_line (p, group);
      if (first > 0) {
        gchar *shown = g_strdup_printf ("[%s]", group);

        lensd_config_set_error (error, LENSD_CONFIG_ERROR_DUPLICATE,
            p->name, number, shown,
            g_str_has_prefix (group, "stream ") ?
            "stream \"%s\" is already defined at line %d" :
            "group \"%s\" is already given at line %d",
            g_str_has_prefix (group, "stream ") ? group + strlen ("stream ") :
            group, first);
        g_free (shown);
        ok = FALSE;
      } else {
        g_hash_table_insert (p->group_lines, g_strdup (group),
            GINT_TO_POINTER (number));
      }
    } else {
      const gchar *eq = memchr (line, '=', len);

      if (eq != NULL && group != NULL) {
        gchar *key = g_strchomp (g_strndup (line, eq - line));
        gchar *k = g_strconcat (group, "\n", key, NULL);
        gint first = GPOINTER_TO_INT (g_hash_table_lookup (p->key_lines, k));

        if (first > 0) {
          lensd_config_set_error (error, LENSD_CONFIG_ERROR_DUPLICATE,
              p->name, number, key, "already given at line %d in [%s]",
              first, group);
          g_free (k);
          ok = FALSE;
        } else {
          g_hash_table_insert (p->key_lines, k, GINT_TO_POINTER (number));
          g_ptr_array_add (p->keys, g_strdup (k));
        }
        g_free (key);
      }
    }
    line = next;
  }
  g_free (group);
  return ok;
}

static gboolean
lensd_config_keyfile_accepts (const gchar * data, gsize length)
{
  GKeyFile *kf = g_key_file_new ();
  gboolean ok = g_key_file_load_from_data (kf, data, length, G_KEY_FILE_NONE,
      NULL);

  g_key_file_free (kf);
  return ok;
}

/* The line GKeyFile stopped at. It reads line by line and stops at the
 * first bad one, so whether a prefix of the text parses is monotonic in
 * its length: a bisection on prefixes finds the line with GKeyFile's own
 * judgement, in a few parses. */
static gint
lensd_config_find_syntax_error (const gchar * data, gsize length)
{
  GArray *ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  gint lo = 1, hi, line;
  gsize i;

  for (i = 0; i < length; i++)
    if (data[i] == '\n')
      g_array_append_val (ends, i);
  if (length > 0 && data[length - 1] != '\n')
    g_array_append_val (ends, length);

  hi = ends->len;
  if (hi == 0 || lensd_config_keyfile_accepts (data, length)) {
    g_array_free (ends, TRUE);
    return 0;
  }
  /* invariant: the first hi lines fail, the first lo - 1 lines parse */
  while (lo < hi) {
    gint mid = lo + (hi - lo) / 2;
    gsize upto = g_array_index (ends, gsize, mid - 1);

    if (lensd_config_keyfile_accepts (data, MIN (upto + 1, length)))
      lo = mid + 1;
    else
      hi = mid;
  }
  line = lo;
  g_array_free (ends, TRUE);
  return line;
}

static gint
lensd_config_line_at (const gchar * data, const gchar * at)
{
  gint line = 1;

  for (; data < at; data++)
    line += *data == '\n';
  return line;
}

/* ---- typed values ----------------------------------------------------------
 * Each getter leaves *out alone when the key is absent or empty: an empty
 * value means the default, as in "token-file=". */

/* The raw value, stripped; NULL when absent or empty. */
static gchar *
lensd_config_raw (LensdConfigParser * p, const gchar * group,
    const gchar * key)
{
  gchar *value = g_key_file_get_value (p->kf, group, key, NULL);

  if (value != NULL && *g_strstrip (value) == '\0')
    g_clear_pointer (&value, g_free);
  return value;
}

static gboolean
lensd_config_get_string (LensdConfigParser * p, const gchar * group,
    const gchar * key, gchar ** out, GError ** error)
{
  GError *local = NULL;
  gchar *value;

  if (!g_key_file_has_key (p->kf, group, key, NULL))
    return TRUE;
  /* GLib may return a value and an error (a bad escape): the error wins */
  value = g_key_file_get_string (p->kf, group, key, &local);
  if (local != NULL || value == NULL) {
    g_free (value);
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_VALUE, p->name,
        lensd_config_key_line (p, group, key), key, "%s",
        local ? local->message : "cannot be read");
    g_clear_error (&local);
    return FALSE;
  }
  if (*g_strstrip (value) == '\0') {
    g_free (value);
    return TRUE;
  }
  g_free (*out);
  *out = value;
  return TRUE;
}

static gboolean
lensd_config_get_uint (LensdConfigParser * p, const gchar * group,
    const gchar * key, guint min, guint max, guint * out, GError ** error)
{
  gchar *value = lensd_config_raw (p, group, key);
  guint64 n;

  if (value == NULL)
    return TRUE;
  if (!g_ascii_string_to_unsigned (value, 10, min, max, &n, NULL)) {
    gchar *q = lensd_config_quote (value);

    lensd_config_set_error (error, LENSD_CONFIG_ERROR_VALUE, p->name,
        lensd_config_key_line (p, group, key), key,
        "expected a whole number from %u to %u, got %s", min, max, q);
    g_free (q);
    g_free (value);
    return FALSE;
  }
  *out = n;
  g_free (value);
  return TRUE;
}

/* A number in [min, max], or in (min, max] with @min_open. */
static gboolean
lensd_config_get_double (LensdConfigParser * p, const gchar * group,
    const gchar * key, gdouble min, gboolean min_open, gdouble max,
    gdouble * out, GError ** error)
{
  gchar *value = lensd_config_raw (p, group, key);
  gchar *end = NULL;
  gdouble d;

  if (value == NULL)
    return TRUE;
  errno = 0;
  d = g_ascii_strtod (value, &end);
  if (end == value || *end != '\0' || errno != 0 || !isfinite (d)
      || (min_open ? d <= min : d < min) || d > max) {
    gchar *q = lensd_config_quote (value);

    lensd_config_set_error (error, LENSD_CONFIG_ERROR_VALUE, p->name,
        lensd_config_key_line (p, group, key), key,
        "expected a number in %s%g, %g], got %s", min_open ? "(" : "[", min,
        max, q);
    g_free (q);
    g_free (value);
    return FALSE;
  }
  *out = d;
  g_free (value);
  return TRUE;
}

static gboolean
lensd_config_get_boolean (LensdConfigParser * p, const gchar * group,
    const gchar * key, gboolean * out, GError ** error)
{
  static const gchar *const yes[] = { "true", "yes", "on", "1", NULL };
  static const gchar *const no[] = { "false", "no", "off", "0", NULL };
  gchar *value = lensd_config_raw (p, group, key);
  gint i;

  if (value == NULL)
    return TRUE;
  for (i = 0; yes[i] != NULL; i++)
    if (g_ascii_strcasecmp (value, yes[i]) == 0) {
      *out = TRUE;
      g_free (value);
      return TRUE;
    }
  for (i = 0; no[i] != NULL; i++)
    if (g_ascii_strcasecmp (value, no[i]) == 0) {
      *out = FALSE;
      g_free (value);
      return TRUE;
    }
  {
    gchar *q = lensd_config_quote (value);

    lensd_config_set_error (error, LENSD_CONFIG_ERROR_VALUE, p->name,
        lensd_config_key_line (p, group, key), key,
        "expected true or false, got %s", q);
    g_free (q);
  }
  g_free (value);
  return FALSE;
}

/* Every key of @group is one of @known. */
static gboolean
lensd_config_check_keys (LensdConfigParser * p, const gchar * group,
    const gchar * const *known, GError ** error)
{
  gsize group_len = strlen (group);
  guint i;

  for (i = 0; i < p->keys->len; i++) {
    const gchar *k = g_ptr_array_index (p->keys, i);
    const gchar *key = k + group_len + 1;
    gchar *list;

    if (strncmp (k, group, group_len) != 0 || k[group_len] != '\n'
        || g_strv_contains (known, key))
      continue;
    list = g_strjoinv (", ", (gchar **) known);
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_UNKNOWN, p->name,
        lensd_config_key_line (p, group, key), key,
        "unknown key in [%s] (known: %s)", group, list);
    g_free (list);
    return FALSE;
  }
  return TRUE;
}

/* ---- checks shared by several keys -------------------------------------- */

static gboolean
lensd_config_has_control_chars (const gchar * s)
{
  for (; *s != '\0'; s++)
    if (g_ascii_iscntrl (*s))
      return TRUE;
  return FALSE;
}

/* A host name or an IP address (IPv6 without brackets). */
static gboolean
lensd_config_host_valid (const gchar * host)
{
  gsize len = strlen (host);
  const gchar *c;

  if (len == 0 || len > 253)
    return FALSE;
  if (g_hostname_is_ip_address (host))
    return TRUE;
  for (c = host; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && *c != '-' && *c != '.' && *c != '_')
      return FALSE;
  return host[0] != '-' && host[0] != '.';
}

/* HOST:PORT or [IPV6]:PORT into @host and @port; @what says why not. */
static gboolean
lensd_config_parse_listen (const gchar * value, gchar ** host,
    guint16 * port, gchar ** what)
{
  const gchar *port_str;
  gchar *h;
  guint64 n;

  if (value[0] == '[') {
    const gchar *close = strchr (value, ']');

    if (close == NULL || close[1] != ':') {
      *what = g_strdup ("expected [ADDRESS]:PORT for IPv6, e.g. [::1]:8080");
      return FALSE;
    }
    h = g_strndup (value + 1, close - value - 1);
    if (!g_hostname_is_ip_address (h) || strchr (h, ':') == NULL) {
      *what = g_strdup_printf ("\"%s\" in brackets is not an IPv6 address",
          h);
      g_free (h);
      return FALSE;
    }
    port_str = close + 2;
  } else {
    const gchar *colon = strrchr (value, ':');

    if (colon == NULL) {
      *what = g_strdup ("expected HOST:PORT, e.g. 127.0.0.1:8080");
      return FALSE;
    }
    h = g_strndup (value, colon - value);
    if (strchr (h, ':') != NULL) {
      *what = g_strdup ("an IPv6 address goes in brackets, e.g. [::1]:8080");
      g_free (h);
      return FALSE;
    }
    if (!lensd_config_host_valid (h)) {
      gchar *q = lensd_config_quote (h);

      *what = g_strdup_printf ("%s is not a host name or an address", q);
      g_free (q);
      g_free (h);
      return FALSE;
    }
    port_str = colon + 1;
  }
  if (!g_ascii_string_to_unsigned (port_str, 10, 0, 65535, &n, NULL)) {
    gchar *q = lensd_config_quote (port_str);

    *what = g_strdup_printf ("port %s is not a number from 0 to 65535", q);
    g_free (q);
    g_free (h);
    return FALSE;
  }
  *host = h;
  *port = n;
  return TRUE;
}

/* A regular file we may open: what the model, labels and TLS keys must
 * be. Only opened, never read: a model is large. */
static gboolean
lensd_config_file_usable (const gchar * path, gchar ** what)
{
  GStatBuf st;
  int fd;

  if (g_stat (path, &st) != 0) {
    *what = g_strdup_printf ("%s: %s", path, g_strerror (errno));
    return FALSE;
  }
  if (!S_ISREG (st.st_mode)) {
    *what = g_strdup_printf ("%s: not a regular file", path);
    return FALSE;
  }
  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
  if (fd < 0) {
    *what = g_strdup_printf ("%s: %s", path, g_strerror (errno));
    return FALSE;
  }
  close (fd);
  return TRUE;
}

static gsize
lensd_config_line_length (const gchar * text, gsize length)
{
  gsize i;

  for (i = 0; i < length && text[i] != '\n' && text[i] != '\r'; i++);
  return i;
}

/* The first line of a small file: a token or a password. @trim strips
 * blanks around it, else only the line end goes. Reads at most the limit:
 * a /proc file says it has size 0 and may have no end. */
static gchar *
lensd_config_read_first_line (const gchar * path, gboolean trim,
    gchar ** what)
{
  gchar *contents, *line;
  gsize length = 0;
  int fd;

  if (!lensd_config_file_usable (path, what))
    return NULL;
  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
  if (fd < 0) {
    *what = g_strdup_printf ("%s: %s", path, g_strerror (errno));
    return NULL;
  }
  contents = g_malloc (LENSD_SECRET_MAX_BYTES + 1);
  while (length <= LENSD_SECRET_MAX_BYTES) {
    gssize n = read (fd, contents + length, LENSD_SECRET_MAX_BYTES + 1 -
        length);

    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      *what = g_strdup_printf ("%s: %s", path, g_strerror (errno));
      close (fd);
      g_free (contents);
      return NULL;
    }
    if (n == 0)
      break;
    length += n;
  }
  close (fd);
  if (length > LENSD_SECRET_MAX_BYTES) {
    *what = g_strdup_printf ("%s: larger than %d bytes", path,
        LENSD_SECRET_MAX_BYTES);
    g_free (contents);
    return NULL;
  }
  if (memchr (contents, '\0', length) != NULL
      || !g_utf8_validate_len (contents, length, NULL)) {
    *what = g_strdup_printf ("%s: not a text file", path);
    g_free (contents);
    return NULL;
  }
  line = g_strndup (contents, lensd_config_line_length (contents, length));
  g_free (contents);
  if (trim)
    g_strstrip (line);
  if (*line == '\0') {
    *what = g_strdup_printf ("%s: the first line is empty", path);
    g_free (line);
    return NULL;
  }
  return line;
}

/* An MQTT topic level (instance) or prefix (levels joined by '/'). */
static gboolean
lensd_config_topic_valid (const gchar * s, gboolean levels)
{
  gsize len = strlen (s);

  if (len == 0 || len > 256 || lensd_config_has_control_chars (s)
      || strpbrk (s, "+#") != NULL)
    return FALSE;
  if (!levels)
    return strchr (s, '/') == NULL;
  return s[0] != '/' && s[len - 1] != '/' && strstr (s, "//") == NULL;
}

/* ---- streams -------------------------------------------------------------- */

gboolean
lensd_stream_name_valid (const gchar * name)
{
  gsize len;
  const gchar *c;

  if (name == NULL)
    return FALSE;
  len = strlen (name);
  if (len == 0 || len > LENSD_STREAM_NAME_MAX)
    return FALSE;
  for (c = name; *c != '\0'; c++)
    if (!g_ascii_isalnum (*c) && *c != '_' && *c != '.' && *c != '-')
      return FALSE;
  /* "." and ".." would be path segments in the API's URLs */
  return strcmp (name, ".") != 0 && strcmp (name, "..") != 0;
}

LensdStreamConfig *
lensd_stream_config_new (const gchar * name)
{
  LensdStreamConfig *config = g_new0 (LensdStreamConfig, 1);

  config->name = g_strdup (name);
  config->interval = DEFAULT_INTERVAL;
  config->loop = FALSE;
  config->enabled = TRUE;
  config->latency_ms = DEFAULT_LATENCY_MS;
  config->stall_timeout_s = DEFAULT_STALL_TIMEOUT_S;
  return config;
}

LensdStreamConfig *
lensd_stream_config_copy (const LensdStreamConfig * config)
{
  LensdStreamConfig *copy;

  g_return_val_if_fail (config != NULL, NULL);
  copy = g_new (LensdStreamConfig, 1);
  *copy = *config;
  copy->name = g_strdup (config->name);
  copy->uri = g_strdup (config->uri);
  copy->pipeline = g_strdup (config->pipeline);
  return copy;
}

void
lensd_stream_config_free (LensdStreamConfig * config)
{
  if (config == NULL)
    return;
  g_free (config->name);
  g_free (config->uri);
  g_free (config->pipeline);
  g_free (config);
}

gboolean
lensd_stream_config_equal (const LensdStreamConfig * a,
    const LensdStreamConfig * b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);
  return g_strcmp0 (a->name, b->name) == 0
      && g_strcmp0 (a->uri, b->uri) == 0
      && g_strcmp0 (a->pipeline, b->pipeline) == 0
      && a->interval == b->interval
      && !a->loop == !b->loop
      && !a->enabled == !b->enabled
      && a->latency_ms == b->latency_ms
      && a->stall_timeout_s == b->stall_timeout_s;
}


static gboolean
lensd_config_uri_valid (const gchar * uri, gchar ** what)
{
  GError *local = NULL;
  const gchar *scheme;
  GUri *parsed;
  gboolean ok = TRUE;

  if (*uri == '\0') {
    *what = g_strdup ("is empty");
    return FALSE;
  }
  if (strlen (uri) > LENSD_SOURCE_MAX_CHARS) {
    *what = g_strdup_printf ("longer than %d characters",
        LENSD_SOURCE_MAX_CHARS);
    return FALSE;
  }
  if (lensd_config_has_control_chars (uri) || strchr (uri, ' ') != NULL) {
    *what = g_strdup ("contains blanks or control characters "
        "(escape them as %XX)");
    return FALSE;
  }
  /* lowercase, interned: no free */
  scheme = g_uri_peek_scheme (uri);
  if (scheme == NULL || !g_strv_contains (lensd_uri_schemes, scheme)) {
    gchar *q = lensd_config_quote (uri);

    *what = g_strdup_printf ("%s is not an rtsp://, rtsps://, file://, "
        "http:// or https:// URI", q);
    g_free (q);
    return FALSE;
  }
  parsed = g_uri_parse (uri, G_URI_FLAGS_ENCODED, &local);
  if (parsed == NULL) {
    *what = g_strdup_printf ("not a valid URI: %s", local->message);
    g_error_free (local);
    return FALSE;
  }
  if (strcmp (scheme, "file") == 0) {
    const gchar *host = g_uri_get_host (parsed);

    if (g_uri_get_path (parsed)[0] != '/'
        || (host != NULL && *host != '\0' && strcmp (host, "localhost"))) {
      *what = g_strdup ("a file URI is file:///absolute/path");
      ok = FALSE;
    }
  } else if (g_uri_get_host (parsed) == NULL
      || *g_uri_get_host (parsed) == '\0') {
    *what = g_strdup_printf ("a %s URI needs a host", scheme);
    ok = FALSE;
  }
  g_uri_unref (parsed);
  return ok;
}

/* What is wrong with @config, if anything: the key and why (@what, to
 * free). Shared by the file, which adds FILE:LINE, and the POST body. */
static gboolean
lensd_stream_config_check (const LensdStreamConfig * config,
    const gchar ** key, LensdConfigError * code, gchar ** what)
{
  *code = LENSD_CONFIG_ERROR_VALUE;
  if (!lensd_stream_name_valid (config->name)) {
    *key = "name";
    *what = g_strdup_printf ("must be 1 to %d of A-Z a-z 0-9 _ . - "
        "(and not . or ..)", LENSD_STREAM_NAME_MAX);
    return FALSE;
  }
  if (config->uri != NULL && config->pipeline != NULL) {
    *key = "pipeline";
    *code = LENSD_CONFIG_ERROR_CONFLICT;
    *what = g_strdup ("uri and pipeline exclude each other: give one");
    return FALSE;
  }
  if (config->uri == NULL && config->pipeline == NULL) {
    *key = "uri";
    *code = LENSD_CONFIG_ERROR_MISSING;
    *what = g_strdup ("a stream needs a uri or a pipeline");
    return FALSE;
  }
  if (config->uri != NULL && !lensd_config_uri_valid (config->uri, what)) {
    *key = "uri";
    return FALSE;
  }
  if (config->pipeline != NULL) {
    *key = "pipeline";
    if (*config->pipeline == '\0' || g_ascii_isspace (*config->pipeline)) {
      /* the file strips values; only a POST body can get here */
      *what = g_strdup ("is empty or starts with a blank");
      return FALSE;
    }
    if (strlen (config->pipeline) > LENSD_SOURCE_MAX_CHARS) {
      *what = g_strdup_printf ("longer than %d characters",
          LENSD_SOURCE_MAX_CHARS);
      return FALSE;
    }
  }
  if (config->interval < 1 || config->interval > MAX_INTERVAL) {
    *key = "interval";
    *what = g_strdup_printf ("must be from 1 to %d, got %u", MAX_INTERVAL,
        config->interval);
    return FALSE;
  }
  if (config->latency_ms > MAX_LATENCY_MS) {
    *key = "latency";
    *what = g_strdup_printf ("must be from 0 to %d ms, got %u",
        MAX_LATENCY_MS, config->latency_ms);
    return FALSE;
  }
  if (config->stall_timeout_s < 1
      || config->stall_timeout_s > MAX_STALL_TIMEOUT_S) {
    *key = "stall-timeout";
    *what = g_strdup_printf ("must be from 1 to %d s, got %u",
        MAX_STALL_TIMEOUT_S, config->stall_timeout_s);
    return FALSE;
  }
  return TRUE;
}

gboolean
lensd_stream_config_validate (const LensdStreamConfig * config,
    GError ** error)
{
  const gchar *key = NULL;
  LensdConfigError code;
  gchar *what = NULL;

  g_return_val_if_fail (config != NULL, FALSE);
  if (lensd_stream_config_check (config, &key, &code, &what))
    return TRUE;
  if (config->name != NULL && lensd_stream_name_valid (config->name)) {
    g_set_error (error, LENSD_CONFIG_ERROR, code, "stream %s: %s: %s",
        config->name, key, what);
  } else {
    gchar *q = config->name ? lensd_config_quote (config->name) :
        g_strdup ("(none)");

    g_set_error (error, LENSD_CONFIG_ERROR, code, "stream %s: %s: %s", q,
        key, what);
    g_free (q);
  }
  g_free (what);
  return FALSE;
}

/* ---- the groups ------------------------------------------------------------- */

static gboolean
lensd_config_parse_server (LensdConfigParser * p, GError ** error)
{
  static const gchar *const keys[] = { "listen", "token-file", "threads",
    "max-connections", "max-connections-per-ip", "connection-timeout", NULL
  };
  const gchar *g = "server";
  LensdConfig *c = p->config;
  gchar *listen = NULL, *what = NULL;

  if (!lensd_config_check_keys (p, g, keys, error)
      || !lensd_config_get_string (p, g, "listen", &listen, error))
    return FALSE;
  if (listen != NULL) {
    gchar *host = NULL;
    guint16 port;
    gboolean ok = lensd_config_parse_listen (listen, &host, &port, &what);

    g_free (listen);
    if (!ok) {
      lensd_config_set_error (error, LENSD_CONFIG_ERROR_VALUE, p->name,
          lensd_config_key_line (p, g, "listen"), "listen", "%s", what);
      g_free (what);
      return FALSE;
    }
    g_free (c->listen_host);
    c->listen_host = host;
    c->listen_port = port;
  }

  if (!lensd_config_get_string (p, g, "token-file", &c->token_file, error))
    return FALSE;
  if (c->token_file != NULL) {
    c->token = lensd_config_read_first_line (c->token_file, TRUE, &what);
    if (c->token == NULL) {
      lensd_config_set_error (error, LENSD_CONFIG_ERROR_FILE, p->name,
          lensd_config_key_line (p, g, "token-file"), "token-file", "%s",
          what);
      g_free (what);
      return FALSE;
    }
  }

  return lensd_config_get_uint (p, g, "threads", 0, 1024, &c->threads, error)
      && lensd_config_get_uint (p, g, "max-connections", 1, 1000000,
      &c->max_connections, error)
      && lensd_config_get_uint (p, g, "max-connections-per-ip", 0, 1000000,
      &c->max_connections_per_ip, error)
      && lensd_config_get_uint (p, g, "connection-timeout", 1, 86400,
      &c->connection_timeout_s, error);
}

static gboolean
lensd_config_parse_engine (LensdConfigParser * p, GError ** error)
{
  static const gchar *const keys[] = { "device", "cache-dir",
    "feature-channels", NULL
  };
  const gchar *g = "engine";
  LensdConfig *c = p->config;

  if (!lensd_config_check_keys (p, g, keys, error)
      || !lensd_config_get_string (p, g, "device", &c->device, error)
      || !lensd_config_get_string (p, g, "cache-dir", &c->cache_dir, error)
      || !lensd_config_get_uint (p, g, "feature-channels", 1, 1024,
          &c->feature_channels, error))
    return FALSE;
  if (c->device != NULL && g_ascii_strcasecmp (c->device, "auto") == 0)
    g_clear_pointer (&c->device, g_free);
  /* cache-dir is not checked: lensd runs without a writable cache, only
   * slower to start */
  return TRUE;
}

static gboolean
lensd_config_get_file (LensdConfigParser * p, const gchar * group,
    const gchar * key, gchar ** out, GError ** error)
{
  gchar *what = NULL;

  if (!lensd_config_get_string (p, group, key, out, error))
    return FALSE;
  if (*out != NULL && !lensd_config_file_usable (*out, &what)) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_FILE, p->name,
        lensd_config_key_line (p, group, key), key, "%s", what);
    g_free (what);
    return FALSE;
  }
  return TRUE;
}

static gboolean
lensd_config_parse_model (LensdConfigParser * p, GError ** error)
{
  static const gchar *const keys[] = { "path", "labels", "conf-threshold",
    "iou-threshold", NULL
  };
  const gchar *g = "model";
  LensdConfig *c = p->config;

  if (!lensd_config_check_keys (p, g, keys, error)
      || !lensd_config_get_file (p, g, "path", &c->model_path, error)
      || !lensd_config_get_file (p, g, "labels", &c->labels_path, error)
      || !lensd_config_get_double (p, g, "conf-threshold", 0, TRUE, 1,
          &c->conf_threshold, error)
      || !lensd_config_get_double (p, g, "iou-threshold", 0, TRUE, 1,
          &c->iou_threshold, error))
    return FALSE;
  if (c->labels_path != NULL && c->model_path == NULL) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_MISSING, p->name,
        lensd_config_group_line (p, g), "path",
        "labels= is given without a model path= (no path is motion mode)");
    return FALSE;
  }
  return TRUE;
}

static gboolean
lensd_config_check_string (LensdConfigParser * p, const gchar * group,
    const gchar * key, const gchar * value, gboolean valid,
    const gchar * expected, GError ** error)
{
  gchar *q;

  if (value == NULL || valid)
    return TRUE;
  q = lensd_config_quote (value);
  lensd_config_set_error (error, LENSD_CONFIG_ERROR_VALUE, p->name,
      lensd_config_key_line (p, group, key), key, "%s is not %s", q,
      expected);
  g_free (q);
  return FALSE;
}

static gboolean
lensd_config_parse_mqtt (LensdConfigParser * p, GError ** error)
{
  static const gchar *const keys[] = { "host", "port", "client-id",
    "instance", "username", "password-file", "ca-file", "cert-file",
    "key-file", "topic-prefix", "qos", "keepalive", "publish-fps",
    "queue-size", NULL
  };
  const gchar *g = "mqtt";
  LensdMqttConfig *m = g_new0 (LensdMqttConfig, 1);
  guint port = 0;
  gchar *what = NULL;

  p->config->mqtt = m;
  m->qos = 0;
  m->keepalive_s = DEFAULT_KEEPALIVE_S;
  m->publish_fps = 0;
  m->queue_size = DEFAULT_QUEUE_SIZE;

  if (!lensd_config_check_keys (p, g, keys, error)
      || !lensd_config_get_string (p, g, "host", &m->host, error)
      || !lensd_config_get_uint (p, g, "port", 1, 65535, &port, error)
      || !lensd_config_get_string (p, g, "client-id", &m->client_id, error)
      || !lensd_config_get_string (p, g, "instance", &m->instance, error)
      || !lensd_config_get_string (p, g, "username", &m->username, error)
      || !lensd_config_get_string (p, g, "password-file", &m->password_file,
          error)
      || !lensd_config_get_file (p, g, "ca-file", &m->ca_file, error)
      || !lensd_config_get_file (p, g, "cert-file", &m->cert_file, error)
      || !lensd_config_get_file (p, g, "key-file", &m->key_file, error)
      || !lensd_config_get_string (p, g, "topic-prefix", &m->topic_prefix,
          error)
      || !lensd_config_get_uint (p, g, "qos", 0, 1, &m->qos, error)
      || !lensd_config_get_uint (p, g, "keepalive", 5, 65535,
          &m->keepalive_s, error)
      || !lensd_config_get_double (p, g, "publish-fps", 0, FALSE, 1000,
          &m->publish_fps, error)
      || !lensd_config_get_uint (p, g, "queue-size", 1, 1000000,
          &m->queue_size, error))
    return FALSE;

  if (m->host == NULL) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_MISSING, p->name,
        lensd_config_group_line (p, g), "host", "[mqtt] needs the broker's "
        "host=");
    return FALSE;
  }
  if (!lensd_config_check_string (p, g, "host", m->host,
          lensd_config_host_valid (m->host), "a host name or an address",
          error)
      || !lensd_config_check_string (p, g, "client-id", m->client_id,
          strlen (m->client_id ? m->client_id : "") <= 256
          && !lensd_config_has_control_chars (m->client_id ?
              m->client_id : ""), "an MQTT client id (up to 256 "
          "characters)", error)
      || !lensd_config_check_string (p, g, "instance", m->instance,
          m->instance && lensd_config_topic_valid (m->instance, FALSE),
          "a topic level (no /, + or #)", error)
      || !lensd_config_check_string (p, g, "topic-prefix", m->topic_prefix,
          m->topic_prefix && lensd_config_topic_valid (m->topic_prefix,
              TRUE), "a topic prefix (levels joined by /, no + or #)",
          error)
      || !lensd_config_check_string (p, g, "username", m->username,
          m->username && !lensd_config_has_control_chars (m->username),
          "a user name", error))
    return FALSE;

  if (m->password_file != NULL) {
    if (m->username == NULL) {
      lensd_config_set_error (error, LENSD_CONFIG_ERROR_MISSING, p->name,
          lensd_config_key_line (p, g, "password-file"), "username",
          "password-file= needs username= as well");
      return FALSE;
    }
    m->password = lensd_config_read_first_line (m->password_file, FALSE,
        &what);
    if (m->password == NULL) {
      lensd_config_set_error (error, LENSD_CONFIG_ERROR_FILE, p->name,
          lensd_config_key_line (p, g, "password-file"), "password-file",
          "%s", what);
      g_free (what);
      return FALSE;
    }
  }
  if ((m->cert_file != NULL) != (m->key_file != NULL)) {
    const gchar *absent = m->cert_file ? "key-file" : "cert-file";

    lensd_config_set_error (error, LENSD_CONFIG_ERROR_MISSING, p->name,
        lensd_config_key_line (p, g, m->cert_file ? "cert-file" :
            "key-file"), absent, "a TLS client certificate needs both "
        "cert-file= and key-file=");
    return FALSE;
  }
  if (m->cert_file != NULL && m->ca_file == NULL) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_MISSING, p->name,
        lensd_config_key_line (p, g, "cert-file"), "ca-file",
        "TLS (cert-file=) needs the broker's CA in ca-file=");
    return FALSE;
  }

  m->port = port ? port : m->ca_file ? DEFAULT_MQTTS_PORT : DEFAULT_MQTT_PORT;
  if (m->instance == NULL)
    m->instance = g_strdup (g_get_host_name ());
  if (m->client_id == NULL)
    m->client_id = g_strdup_printf ("lensd-%s", g_get_host_name ());
  if (m->topic_prefix == NULL)
    m->topic_prefix = g_strdup (DEFAULT_TOPIC_PREFIX);
  return TRUE;
}

static gboolean
lensd_config_parse_stream (LensdConfigParser * p, const gchar * group,
    GError ** error)
{
  static const gchar *const keys[] = { "uri", "pipeline", "interval",
    "loop", "enabled", "latency", "stall-timeout", NULL
  };
  const gchar *name = group + strlen ("stream ");
  LensdStreamConfig *s;
  const gchar *key = NULL;
  LensdConfigError code;
  gchar *what = NULL;

  if (!lensd_stream_name_valid (name)) {
    gchar *shown = g_strdup_printf ("[%s]", group);
    gchar *q = lensd_config_quote (name);

    lensd_config_set_error (error, LENSD_CONFIG_ERROR_VALUE, p->name,
        lensd_config_group_line (p, group), shown, "stream name %s is not "
        "1 to %d of A-Z a-z 0-9 _ . - (and not . or ..)", q,
        LENSD_STREAM_NAME_MAX);
    g_free (q);
    g_free (shown);
    return FALSE;
  }
  if (!lensd_config_check_keys (p, group, keys, error))
    return FALSE;

  s = lensd_stream_config_new (name);
  if (!lensd_config_get_string (p, group, "uri", &s->uri, error)
      || !lensd_config_get_string (p, group, "pipeline", &s->pipeline, error)
      || !lensd_config_get_uint (p, group, "interval", 1, MAX_INTERVAL,
          &s->interval, error)
      || !lensd_config_get_boolean (p, group, "loop", &s->loop, error)
      || !lensd_config_get_boolean (p, group, "enabled", &s->enabled, error)
      || !lensd_config_get_uint (p, group, "latency", 0, MAX_LATENCY_MS,
          &s->latency_ms, error)
      || !lensd_config_get_uint (p, group, "stall-timeout", 1,
          MAX_STALL_TIMEOUT_S, &s->stall_timeout_s, error)) {
    lensd_stream_config_free (s);
    return FALSE;
  }
  if (!lensd_stream_config_check (s, &key, &code, &what)) {
    gint line = lensd_config_key_line (p, group, key);

    if (code == LENSD_CONFIG_ERROR_MISSING)
      lensd_config_set_error (error, code, p->name, line, key,
          "[%s] needs uri= or pipeline=", group);
    else
      lensd_config_set_error (error, code, p->name, line, key, "%s", what);
    g_free (what);
    lensd_stream_config_free (s);
    return FALSE;
  }
  g_ptr_array_add (p->config->streams, s);
  return TRUE;
}

/* ---- the whole file --------------------------------------------------------- */

static LensdConfig *
lensd_config_new_defaults (const gchar * path)
{
  LensdConfig *c = g_new0 (LensdConfig, 1);

  c->path = g_strdup (path);
  c->listen_host = g_strdup (DEFAULT_LISTEN_HOST);
  c->listen_port = DEFAULT_LISTEN_PORT;
  c->threads = 0;
  c->max_connections = DEFAULT_MAX_CONNECTIONS;
  c->max_connections_per_ip = DEFAULT_MAX_CONNECTIONS_PER_IP;
  c->connection_timeout_s = DEFAULT_CONNECTION_TIMEOUT_S;
  c->feature_channels = DEFAULT_FEATURE_CHANNELS;
  c->conf_threshold = DEFAULT_CONF_THRESHOLD;
  c->iou_threshold = DEFAULT_IOU_THRESHOLD;
  c->streams = g_ptr_array_new_with_free_func ((GDestroyNotify)
      lensd_stream_config_free);
  return c;
}

static gboolean
lensd_config_parse_groups (LensdConfigParser * p, GError ** error)
{
  gchar **groups = g_key_file_get_groups (p->kf, NULL);
  gboolean ok = TRUE;
  gint i;

  for (i = 0; ok && groups[i] != NULL; i++) {
    const gchar *g = groups[i];

    if (strcmp (g, "server") == 0)
      ok = lensd_config_parse_server (p, error);
    else if (strcmp (g, "engine") == 0)
      ok = lensd_config_parse_engine (p, error);
    else if (strcmp (g, "model") == 0)
      ok = lensd_config_parse_model (p, error);
    else if (strcmp (g, "mqtt") == 0)
      ok = lensd_config_parse_mqtt (p, error);
    else if (g_str_has_prefix (g, "stream "))
      ok = lensd_config_parse_stream (p, g, error);
    else {
      gchar *shown = g_strdup_printf ("[%s]", g);

      lensd_config_set_error (error, LENSD_CONFIG_ERROR_UNKNOWN, p->name,
          lensd_config_group_line (p, g), shown, strcmp (g, "stream") == 0 ?
          "a stream group is [stream NAME]" : "unknown group (known: "
          "[server], [engine], [model], [mqtt], [stream NAME])");
      g_free (shown);
      ok = FALSE;
    }
  }
  g_strfreev (groups);
  return ok;
}

LensdConfig *
lensd_config_parse (const gchar * data, gsize length, const gchar * path,
    GError ** error)
{
  LensdConfigParser p = { 0 };
  GError *local = NULL;
  const gchar *bad;
  gboolean ok;

  g_return_val_if_fail (data != NULL || length == 0, NULL);
  if (data == NULL)
    data = "";
  p.name = path ? path : "(config)";

  if (length > LENSD_CONFIG_MAX_BYTES) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_SYNTAX, p.name, 0,
        NULL, "larger than %d bytes: not a lensd configuration",
        LENSD_CONFIG_MAX_BYTES);
    return NULL;
  }
  bad = memchr (data, '\0', length);
  if (bad != NULL) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_SYNTAX, p.name,
        lensd_config_line_at (data, bad), NULL, "contains a NUL byte: "
        "not a text file");
    return NULL;
  }
  if (!g_utf8_validate_len (data, length, &bad)) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_SYNTAX, p.name,
        lensd_config_line_at (data, bad), NULL, "not valid UTF-8");
    return NULL;
  }

  p.kf = g_key_file_new ();
  if (!g_key_file_load_from_data (p.kf, data, length, G_KEY_FILE_NONE,
          &local)) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_SYNTAX, p.name,
        lensd_config_find_syntax_error (data, length), NULL, "%s",
        local->message);
    g_error_free (local);
    g_key_file_free (p.kf);
    return NULL;
  }

  p.group_lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  p.key_lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
      NULL);
  p.keys = g_ptr_array_new_with_free_func (g_free);
  p.config = lensd_config_new_defaults (path);
  ok = lensd_config_map_lines (&p, data, length, error)
      && lensd_config_parse_groups (&p, error);

  g_hash_table_unref (p.group_lines);
  g_hash_table_unref (p.key_lines);
  g_ptr_array_unref (p.keys);
  g_key_file_free (p.kf);
  if (!ok)
    g_clear_pointer (&p.config, lensd_config_free);
  return p.config;
}

LensdConfig *
lensd_config_load (const gchar * path, GError ** error)
{
  GError *local = NULL;
  LensdConfig *config;
  gchar *contents;
  gsize length;
  GStatBuf st;

  g_return_val_if_fail (path != NULL, NULL);
  if (g_stat (path, &st) != 0) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_FILE, path, 0, NULL,
        "%s", g_strerror (errno));
    return NULL;
  }
  /* a pipe or a device could feed us forever */
  if (!S_ISREG (st.st_mode)) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_FILE, path, 0, NULL,
        "not a regular file");
    return NULL;
  }
  if (st.st_size > LENSD_CONFIG_MAX_BYTES) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_FILE, path, 0, NULL,
        "larger than %d bytes: not a lensd configuration",
        LENSD_CONFIG_MAX_BYTES);
    return NULL;
  }
  if (!g_file_get_contents (path, &contents, &length, &local)) {
    lensd_config_set_error (error, LENSD_CONFIG_ERROR_FILE, path, 0, NULL,
        "%s", local->message);
    g_error_free (local);
    return NULL;
  }
  config = lensd_config_parse (contents, length, path, error);
  g_free (contents);
  return config;
}

/* Frees a secret read from a file, wiping it first. */
static void
free_secret (char *secret)
{
  if (secret != NULL)
    memset (secret, 0, strlen (secret));
  g_free (secret);
}

static void
lensd_mqtt_config_free (LensdMqttConfig * m)
{
  if (m == NULL)
    return;
  g_free (m->host);
  g_free (m->client_id);
  g_free (m->instance);
  g_free (m->username);
  free_secret (m->password);
  g_free (m->password_file);
  g_free (m->ca_file);
  g_free (m->cert_file);
  g_free (m->key_file);
  g_free (m->topic_prefix);
  g_free (m);
}

void
lensd_config_free (LensdConfig * config)
{
  if (config == NULL)
    return;
  g_free (config->path);
  g_free (config->listen_host);
  g_free (config->token_file);
  free_secret (config->token);
  g_free (config->device);
  g_free (config->cache_dir);
  g_free (config->model_path);
  g_free (config->labels_path);
  g_ptr_array_unref (config->streams);
  lensd_mqtt_config_free (config->mqtt);
  g_free (config);
}
