/* fuzz-http.c: libFuzzer target for lensd's HTTP request-body parsing
 * (lensd_http_parse_stream_config, daemon/lensd-http.c: the JSON body of
 * POST /api/v1/streams): bytes -> stream config or a message -> free. */
#include "lensd.h"

#include <stdint.h>
#include <stddef.h>

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  GError *error = NULL;
  LensdStreamConfig *config;

  config = lensd_http_parse_stream_config ((const gchar *) data, size,
      &error);
  if (config != NULL)
    lensd_stream_config_free (config);
  else if (error == NULL || error->message == NULL || *error->message == '\0')
    __builtin_trap ();          /* every refusal must say why */
  g_clear_error (&error);
  return 0;
}
