/* fuzz-onnx.c: libFuzzer target for the ONNX loader: bytes -> model load
 * (protobuf parse, limits, constant folding through the C references,
 * shape inference, rewrites, memory plan) -> free. No OpenCL device: the
 * model is loaded with a NULL context, so nothing is uploaded. */
#include "lens-private.h"

#include <stdint.h>
#include <stddef.h>

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t * data, size_t size)
{
  LensError err = LENS_ERROR_INIT;
  LensModel *model = NULL;

  /* A legal model may still ask to fold a tensor of the default 2 GiB
   * limit; that is refused by size at 16 MiB here instead, so that
   * libFuzzer's memory limit only ever reports a real leak or bomb. */
  lens_loader_limits.max_tensor_bytes = 16 << 20;
  lens_loader_limits.max_weight_bytes = 16 << 20;
  lens_loader_limits.max_nodes = 4096;
  if (lens_model_load_data (NULL, "fuzz.onnx", data, size, 0, NULL, &model,
          &err) == LENS_OK)
    lens_model_free (model);
  else if (err.message == NULL || err.message[0] == '\0')
    __builtin_trap ();          /* every refusal must say why */
  lens_error_clear (&err);
  return 0;
}
