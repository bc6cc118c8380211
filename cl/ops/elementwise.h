/* ops/elementwise.h: what ops/elementwise.c shares with ops/misc.c, whose
 * Cast runs lens_cast from the elementwise program. Private to the two. */
#ifndef LENS_OPS_ELEMENTWISE_H
#define LENS_OPS_ELEMENTWISE_H

#include "lens-private.h"

G_BEGIN_DECLS

/* Gets kernel @kernel_name of the elementwise program built for element
 * type @ta (elementwise.cl's -DTA), in @slot of @node. @tb is the kernel's
 * other element type (Pow's exponent, Cast's output; else @ta): float64 on
 * either side is refused on a device without cl_khr_fp64. */
LensStatus lens_elementwise_kernel (LensContext * ctx, LensNode * node,
    int slot, LensDType ta, LensDType tb, const char *kernel_name,
    cl_kernel * out, LensError *err);

/* Refuses element counts the kernels' int indices cannot address. */
LensStatus lens_elementwise_check_count (const LensNode * node, int64_t n,
    LensError *err);

G_END_DECLS

#endif /* LENS_OPS_ELEMENTWISE_H */
