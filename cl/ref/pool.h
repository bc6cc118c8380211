/* ref/pool.h: the window geometry the pooling ops derive in reshape
 * (ops/pool.c) and the plain-C pooling references (ref/pool.c) that
 * consume it. Private to the pool family. */
#ifndef LENS_REF_POOL_H
#define LENS_REF_POOL_H

#include "lens-private.h"

G_BEGIN_DECLS

/* 1-D and 2-D windows; 3-D pooling is refused by the ops. */
#define LENS_POOL_MAX_SPATIAL 2

typedef struct
{
  int spatial;                  /* number of spatial dimensions */
  int64_t in[LENS_POOL_MAX_SPATIAL];
  int64_t out[LENS_POOL_MAX_SPATIAL];
  int64_t kernel[LENS_POOL_MAX_SPATIAL];
  int64_t stride[LENS_POOL_MAX_SPATIAL];
  int64_t dilation[LENS_POOL_MAX_SPATIAL];
  /* effective pads after auto_pad; pad_end bounds the region that
   * count_include_pad counts (windows that ceil_mode lets run past it
   * do not count the overhang) */
  int64_t pad_begin[LENS_POOL_MAX_SPATIAL];
  int64_t pad_end[LENS_POOL_MAX_SPATIAL];
  gboolean count_include_pad;
  int storage_order;            /* MaxPool Indices: 0 row major, 1 column */
} LensPoolGeometry;

/* @x is [N, C, spatial...]; @y (and @indices, int64, when non-NULL) have
 * the output shape. Inputs of any dtype lens_tensor_get_f64 reads. */
void lens_ref_max_pool (const LensTensor * x, LensTensor * y,
    LensTensor * indices, const LensPoolGeometry * g);
void lens_ref_average_pool (const LensTensor * x, LensTensor * y,
    const LensPoolGeometry * g);
/* Mean over every dimension after N and C. */
void lens_ref_global_average_pool (const LensTensor * x, LensTensor * y);

G_END_DECLS

#endif /* LENS_REF_POOL_H */
