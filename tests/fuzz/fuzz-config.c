/* fuzz-config.c: libFuzzer target for lensd's configuration parser
 * (lensd_config_parse, daemon/lensd-config.c): bytes -> config or a
 * message -> free. */
#include "lensd.h"

#include <stdint.h>
#include <stddef.h>

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  GError *error = NULL;
  LensdConfig *config;

  config = lensd_config_parse ((const gchar *) data, size, "fuzz.conf",
      &error);
  if (config != NULL)
    lensd_config_free (config);
  else if (error == NULL || error->message == NULL || *error->message == '\0')
    __builtin_trap ();          /* every refusal must say why */
  g_clear_error (&error);
  return 0;
}
