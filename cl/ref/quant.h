/* quant.h: the plain-C reference of DynamicQuantizeLinear (cl/ref/quant.c),
 * used by cl/ops/quant.c. */
#ifndef LENS_REF_QUANT_H
#define LENS_REF_QUANT_H

#include "lens-private.h"

G_BEGIN_DECLS

LensStatus lens_ref_dynamic_quantize_linear (LensNode * node, LensError *err);

/* A range as ConvInteger's range output and DynamicQuantizeLinear's range
 * input carry it: each float as an int32 key in the same order (negative
 * floats with their magnitude bits flipped; conv_range_key in
 * kernels/conv.cl), and back. */
int32_t lens_ref_range_key (float f);
float lens_ref_range_value (int32_t key);

G_END_DECLS

#endif /* LENS_REF_QUANT_H */
