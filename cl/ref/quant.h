/* quant.h: the plain-C reference of DynamicQuantizeLinear (cl/ref/quant.c),
 * used by cl/ops/quant.c. */
#ifndef LENS_REF_QUANT_H
#define LENS_REF_QUANT_H

#include "lens-private.h"

G_BEGIN_DECLS

LensStatus lens_ref_dynamic_quantize_linear (LensNode * node, LensError *err);

G_END_DECLS

#endif /* LENS_REF_QUANT_H */
