/* fuzz-http.c: libFuzzer target for lensd's HTTP request parsing
 * (daemon/lensd-http.c). The input's first line is a request line,
 * "METHOD PATH?QUERY": the path goes through the route table and the
 * query's parameter names (split by GLib's form decoder, as libmicrohttpd
 * would hand them over) through the route's parameter check. The rest is
 * the body of POST /api/v1/streams: bytes -> stream config or a message
 * -> free. */
#include "lensd.h"

#include <stdint.h>
#include <stddef.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

static void
fuzz_route (const gchar * line, gsize length)
{
  gchar *request = g_strndup (line, length);
  gchar *space = strchr (request, ' ');
  gchar *query;
  GHashTable *params = NULL;
  const gchar **names = NULL;
  guint status;

  if (space == NULL || strlen (space + 1) != length - (space + 1 - request))
    goto out;                   /* a NUL inside: not a request line */
  *space = '\0';
  query = strchr (space + 1, '?');
  if (query != NULL) {
    *query++ = '\0';
    params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
    if (params != NULL)
      names = (const gchar **) g_hash_table_get_keys_as_array (params, NULL);
  }
  status = lensd_http_route_status (request, space + 1, names);
  if (status != 200 && status != 400 && status != 404 && status != 405)
    __builtin_trap ();          /* routing answers only these */
out:
  g_free (names);
  if (params != NULL)
    g_hash_table_unref (params);
  g_free (request);
}

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  const uint8_t *newline = memchr (data, '\n', size);
  GError *error = NULL;
  LensdStreamConfig *config;

  if (newline != NULL) {
    fuzz_route ((const gchar *) data, newline - data);
    size -= newline + 1 - data;
    data = newline + 1;
  }
  config = lensd_http_parse_stream_config ((const gchar *) data, size,
      &error);
  if (config != NULL)
    lensd_stream_config_free (config);
  else if (error == NULL || error->message == NULL || *error->message == '\0')
    __builtin_trap ();          /* every refusal must say why */
  g_clear_error (&error);
  return 0;
}
