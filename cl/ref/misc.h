/* ref/misc.h: the plain-C references of BatchNormalization, Tile and Cast
 * (ref/misc.c), which ops/misc.c checks its kernels against. Private to
 * the misc family. */
#ifndef LENS_REF_MISC_H
#define LENS_REF_MISC_H

#include "lens-private.h"

G_BEGIN_DECLS

/* y = (x - mean) / sqrt (var + epsilon) * scale + bias, the per-channel
 * vectors indexed by dimension 1 of x; float32. */
void lens_ref_batch_normalization (const LensTensor * x,
    const LensTensor * scale, const LensTensor * bias,
    const LensTensor * mean, const LensTensor * var, float epsilon,
    LensTensor * y);

/* y (shape x's times the repeats) holds copies of x: element (i_0, ...)
 * is x's element (i_0 mod x_0, ...). Any dtype. */
void lens_ref_tile (const LensTensor * x, LensTensor * y);

/* y = x converted to y's dtype as numpy's astype does it (float to integer
 * truncates through int64, to bool is x != 0, float16 rounds to nearest
 * even), except float to bfloat16, which truncates as ONNX 1.12's test
 * data does. */
void lens_ref_cast (const LensTensor * x, LensTensor * y);

G_END_DECLS

#endif /* LENS_REF_MISC_H */
