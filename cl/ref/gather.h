/* gather.h: plain-C references of Gather and GatherElements, called by
 * ops/gather.c. They take the node after reshape and copy whole elements
 * as bytes, so every fixed-size data type works; an index out of range
 * (after counting negative ones from the end) is an error. */
#ifndef LENS_REF_GATHER_H
#define LENS_REF_GATHER_H

#include "lens-private.h"

G_BEGIN_DECLS

/* output[a, j, b] = data[a, indices[j], b] with a over data[:axis], j over
 * the indices' shape and b over data[axis+1:]. */
LensStatus lens_ref_gather (LensNode * node, int axis, LensError *err);
/* output[c] = data[c with c[axis] = indices[c]] over the indices' shape. */
LensStatus lens_ref_gather_elements (LensNode * node, int axis,
    LensError *err);

G_END_DECLS

#endif /* LENS_REF_GATHER_H */
