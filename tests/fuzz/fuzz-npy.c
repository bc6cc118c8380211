/* fuzz-npy.c: libFuzzer target for the .npy reader: bytes -> tensor ->
 * free. */
#include "lens.h"

#include <stdint.h>
#include <stddef.h>

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  LensError err = LENS_ERROR_INIT;
  LensTensor *t = NULL;

  if (lens_npy_load_data ("fuzz.npy", data, size, &t, &err) == LENS_OK) {
    /* the tensor is complete: touch every byte of it */
    volatile guint8 sum = 0;
    for (size_t i = 0; i < lens_tensor_nbytes (t); i++)
      sum += ((const guint8 *) t->host)[i];
    (void) sum;
    lens_tensor_free (t);
  } else if (err.message == NULL || err.message[0] == '\0') {
    __builtin_trap ();
  }
  lens_error_clear (&err);
  return 0;
}
