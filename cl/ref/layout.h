/* layout.h: plain-C references of the layout operators (Concat, Split,
 * Slice, Pad, Transpose), called by ops/layout.c. Each takes the node
 * after reshape (input and output host data and shapes set) plus the
 * attribute values the op resolved; they copy whole elements as bytes, so
 * every fixed-size data type works. */
#ifndef LENS_REF_LAYOUT_H
#define LENS_REF_LAYOUT_H

#include "lens-private.h"

G_BEGIN_DECLS

/* Numbered as LENS_PAD_* in kernels/layout.cl. */
typedef enum
{
  LENS_PAD_MODE_CONSTANT = 0,
  LENS_PAD_MODE_EDGE = 1,
  LENS_PAD_MODE_REFLECT = 2,
  LENS_PAD_MODE_WRAP = 3,
} LensPadMode;

/* Output 0 = the inputs joined along @axis. */
LensStatus lens_ref_concat (LensNode * node, int axis, LensError *err);
/* Output k = input 0 along @axis from sum(sizes[0..k-1]), sizes[k] long. */
LensStatus lens_ref_split (LensNode * node, int axis, const int64_t *sizes,
    LensError *err);
/* Output element at c reads input element starts[d] + c[d] * steps[d] in
 * every input dimension d. */
LensStatus lens_ref_slice (LensNode * node, const int64_t *starts,
    const int64_t *steps, LensError *err);
/* Negative pads first crop the input; the positive ones then add
 * elements: output element at c reads the cropped input at c[d] -
 * pads_begin[d], mapped back into it by @mode, or is @value (one element)
 * in constant mode. */
LensStatus lens_ref_pad (LensNode * node, const int64_t *pads_begin,
    const int64_t *pads_end, LensPadMode mode, const void *value,
    LensError *err);
/* Output dimension d is input dimension perm[d]. */
LensStatus lens_ref_transpose (LensNode * node, const int *perm,
    LensError *err);

G_END_DECLS

#endif /* LENS_REF_LAYOUT_H */
