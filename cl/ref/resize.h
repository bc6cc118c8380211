/* ref/resize.h: Resize's sampling geometry (what ops/resize.c derives from
 * the attributes and the scales/sizes/roi inputs), the ONNX coordinate
 * formulas, and the plain-C reference. Private to the resize family. */
#ifndef LENS_REF_RESIZE_H
#define LENS_REF_RESIZE_H

#include "lens-private.h"

G_BEGIN_DECLS

typedef enum
{
  LENS_RESIZE_NEAREST,
  LENS_RESIZE_LINEAR,
} LensResizeMode;

typedef enum
{
  LENS_RESIZE_HALF_PIXEL,
  LENS_RESIZE_ASYMMETRIC,
  LENS_RESIZE_PYTORCH_HALF_PIXEL,
  LENS_RESIZE_TF_HALF_PIXEL_FOR_NN,
  LENS_RESIZE_ALIGN_CORNERS,
  LENS_RESIZE_TF_CROP_AND_RESIZE,
} LensResizeCoordinates;

typedef enum
{
  LENS_RESIZE_ROUND_PREFER_FLOOR,
  LENS_RESIZE_ROUND_PREFER_CEIL,
  LENS_RESIZE_FLOOR,
  LENS_RESIZE_CEIL,
} LensResizeNearestMode;

typedef struct
{
  /* from the attributes */
  LensResizeMode mode;
  LensResizeCoordinates coordinates;
  LensResizeNearestMode nearest_mode;
  double extrapolation_value;
  /* from the inputs, per axis */
  int ndim;
  int64_t in[LENS_MAX_DIMS];
  int64_t out[LENS_MAX_DIMS];
  double scale[LENS_MAX_DIMS];          /* as given, or out / in from sizes */
  /* in * scale: the resized length the align_corners and
   * tf_crop_and_resize formulas divide by (the given size with sizes; with
   * scales, unrounded, as ONNX's reference computes it) */
  double length_resized[LENS_MAX_DIMS];
  double roi_start[LENS_MAX_DIMS];      /* tf_crop_and_resize only */
  double roi_end[LENS_MAX_DIMS];
} LensResizeGeometry;

/* x_original of output coordinate @x on axis @d (the ONNX formula of the
 * coordinate_transformation_mode). Sets *outside when tf_crop_and_resize
 * samples outside [0, in - 1] (the output is then extrapolation_value). */
double lens_ref_resize_source (const LensResizeGeometry * g, int d,
    int64_t x, gboolean * outside);
/* mode=nearest: the input index of output coordinate @x on axis @d, or -1
 * where tf_crop_and_resize extrapolates. */
int64_t lens_ref_resize_nearest (const LensResizeGeometry * g, int d,
    int64_t x);
/* mode=linear: the two input indices and the weight of the second (the
 * source clamped into [0, in - 1]); FALSE where tf_crop_and_resize
 * extrapolates. */
gboolean lens_ref_resize_linear (const LensResizeGeometry * g, int d,
    int64_t x, int64_t * i0, int64_t * i1, double *weight);

/* @y has the output shape; every dtype for nearest, float types for
 * linear (interpolated in double over every axis). */
void lens_ref_resize (const LensTensor * x, LensTensor * y,
    const LensResizeGeometry * g);

G_END_DECLS

#endif /* LENS_REF_RESIZE_H */
