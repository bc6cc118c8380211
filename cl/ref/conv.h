/* conv.h: the parameters of Conv and ConvInteger, shared by the host side
 * (cl/ops/conv.c parses the attributes and resolves the geometry against
 * the input shapes) and the plain-C references (cl/ref/conv.c). */
#ifndef LENS_REF_CONV_H
#define LENS_REF_CONV_H

#include "lens-private.h"

G_BEGIN_DECLS

typedef enum
{
  LENS_CONV_AUTO_PAD_NOTSET,
  LENS_CONV_AUTO_PAD_SAME_UPPER,
  LENS_CONV_AUTO_PAD_SAME_LOWER,
  LENS_CONV_AUTO_PAD_VALID,
} LensConvAutoPad;

/* node->priv of Conv and ConvInteger */
typedef struct
{
  /* attributes, parsed once by init; counts are -1 when absent */
  int64_t group;
  LensConvAutoPad auto_pad;
  int n_kernel_shape, n_strides, n_dilations, n_pads;
  int64_t kernel_shape[2], strides[2], dilations[2], pads[4];
  LensActivation act;           /* Conv, and ConvInteger with a fused
                                 * dequantize epilogue */

  /* geometry resolved by reshape; a 1-D convolution is a 2-D one whose
   * height, kernel height, stride, dilation are 1 and top pad is 0 */
  int spatial;                  /* 1 or 2 */
  int batch, in_c, in_h, in_w;
  int out_c, out_h, out_w;
  int k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
  int in_per_group, out_per_group;
} LensConvParams;

LensStatus lens_ref_conv (LensNode * node, LensError *err);
LensStatus lens_ref_conv_integer (LensNode * node, LensError *err);

G_END_DECLS

#endif /* LENS_REF_CONV_H */
