/* conv.cl: Conv (float32, 1-D and 2-D, grouped, with an optional fused
 * activation) and ConvInteger (8-bit inputs, int32 accumulators).
 *
 * A 1-D convolution arrives as a 2-D one of height 1. Tensors are NCHW,
 * weights [M, C / group, kh, kw], all contiguous.
 *
 * lens_conv2d and lens_conv2d_integer give each work-item a register tile
 * of CONV_TM output channels (of one group) x CONV_TP neighbouring output
 * pixels of one row: every input value loaded feeds CONV_TM products and
 * every weight CONV_TP. The NDRange is (output rows x pixel tiles,
 * groups x channel tiles, batch). Tiles whose input window lies inside the
 * row horizontally read it without bounds checks; the rest (borders,
 * padding, partial tiles) clamp the column and mask the value. Rows
 * outside the input are skipped per work-item.
 *
 * lens_conv2d_depthwise handles one input channel per group (depthwise
 * convolution, channel multiplier below CONV_TM), where a channel tile
 * would waste work: each work-item computes CONV_TP pixels of one channel.
 *
 * Build options: -DCONV_TM, -DCONV_TP (tile, set and read back by the
 * host), -DACT (fused activation, see common.cl). */

#ifndef CONV_TM
#define CONV_TM 4
#endif
#ifndef CONV_TP
#define CONV_TP 4
#endif

/* The geometry every convolution kernel takes after its buffers, in this
 * order (all int, see LensConvParams in cl/ref/conv.h). */
#define CONV_GEOMETRY_ARGS \
    int in_c, int in_h, int in_w, int out_c, int out_h, int out_w, \
    int k_h, int k_w, int stride_h, int stride_w, int dil_h, int dil_w, \
    int pad_top, int pad_left, int in_per_group, int out_per_group

__kernel void
lens_conv2d (__global const float *x, __global const float *w,
    __global const float *bias, __global float *y, int has_bias,
    CONV_GEOMETRY_ARGS, int oc_tiles, int ow_tiles, float act_alpha,
    float act_beta)
{
  const int tile = get_global_id (0);
  const int oc_tile = get_global_id (1);
  const int n = get_global_id (2);
  const int groups = out_c / out_per_group;

  if (tile >= out_h * ow_tiles || oc_tile >= groups * oc_tiles)
    return;

  const int oy = tile / ow_tiles;
  const int ox0 = (tile - oy * ow_tiles) * CONV_TP;
  const int g = oc_tile / oc_tiles;
  const int m0 = (oc_tile - g * oc_tiles) * CONV_TM;    /* within the group */
  const int oc0 = g * out_per_group + m0;
  const int m_count = min (CONV_TM, out_per_group - m0);
  const int iy0 = oy * stride_h - pad_top;
  const int ix0 = ox0 * stride_w - pad_left;
  const int k_size = k_h * k_w;
  const int plane = in_h * in_w;
  /* the whole window of the tile lies inside the row: no column checks */
  const bool inside = ix0 >= 0 &&
      ix0 + (CONV_TP - 1) * stride_w + (k_w - 1) * dil_w < in_w;

  __global const float *xg = x +
      ((size_t) n * in_c + (size_t) g * in_per_group) * plane;
  __global const float *wg = w + (size_t) oc0 * in_per_group * k_size;
  /* channels past the end of a partial tile repeat the last one: their
   * results are computed but never stored */
  int w_off[CONV_TM];
  float acc[CONV_TM][CONV_TP];

#pragma unroll
  for (int m = 0; m < CONV_TM; m++) {
    w_off[m] = min (m, m_count - 1) * in_per_group * k_size;
#pragma unroll
    for (int p = 0; p < CONV_TP; p++)
      acc[m][p] = 0.0f;
  }

  for (int ic = 0; ic < in_per_group; ic++) {
    __global const float *xc = xg + (size_t) ic * plane;
    __global const float *wc = wg + ic * k_size;

    for (int ky = 0; ky < k_h; ky++) {
      const int iy = iy0 + ky * dil_h;
      if (iy < 0 || iy >= in_h)
        continue;
      __global const float *xrow = xc + iy * in_w;
      __global const float *wrow = wc + ky * k_w;

      for (int kx = 0; kx < k_w; kx++) {
        const int ix = ix0 + kx * dil_w;
        float xv[CONV_TP], wv[CONV_TM];

        if (inside) {
#pragma unroll
          for (int p = 0; p < CONV_TP; p++)
            xv[p] = xrow[ix + p * stride_w];
        } else {
#pragma unroll
          for (int p = 0; p < CONV_TP; p++) {
            const int c = ix + p * stride_w;
            const float v = xrow[clamp (c, 0, in_w - 1)];
            xv[p] = c >= 0 && c < in_w ? v : 0.0f;
          }
        }
#pragma unroll
        for (int m = 0; m < CONV_TM; m++)
          wv[m] = wrow[w_off[m] + kx];
#pragma unroll
        for (int m = 0; m < CONV_TM; m++)
#pragma unroll
          for (int p = 0; p < CONV_TP; p++)
            acc[m][p] += wv[m] * xv[p];
      }
    }
  }

#pragma unroll
  for (int m = 0; m < CONV_TM; m++) {
    const int oc = oc0 + m;
    if (m < m_count) {
      const float b = has_bias ? bias[oc] : 0.0f;
      __global float *yrow = y +
          (((size_t) n * out_c + oc) * out_h + oy) * out_w + ox0;
#pragma unroll
      for (int p = 0; p < CONV_TP; p++)
        if (ox0 + p < out_w)
          yrow[p] = lens_activate (acc[m][p] + b, act_alpha, act_beta);
    }
  }
}

__kernel void
lens_conv2d_depthwise (__global const float *x, __global const float *w,
    __global const float *bias, __global float *y, int has_bias,
    CONV_GEOMETRY_ARGS, int ow_tiles, float act_alpha, float act_beta)
{
  const int tile = get_global_id (0);
  const int oc = get_global_id (1);
  const int n = get_global_id (2);

  if (tile >= out_h * ow_tiles || oc >= out_c)
    return;

  const int oy = tile / ow_tiles;
  const int ox0 = (tile - oy * ow_tiles) * CONV_TP;
  const int ic = oc / out_per_group;
  const int iy0 = oy * stride_h - pad_top;
  const int ix0 = ox0 * stride_w - pad_left;
  const bool inside = ix0 >= 0 &&
      ix0 + (CONV_TP - 1) * stride_w + (k_w - 1) * dil_w < in_w;

  __global const float *xc = x + ((size_t) n * in_c + ic) * in_h * in_w;
  __global const float *wc = w + (size_t) oc * k_h * k_w;
  float acc[CONV_TP];

#pragma unroll
  for (int p = 0; p < CONV_TP; p++)
    acc[p] = 0.0f;

  for (int ky = 0; ky < k_h; ky++) {
    const int iy = iy0 + ky * dil_h;
    if (iy < 0 || iy >= in_h)
      continue;
    __global const float *xrow = xc + iy * in_w;

    for (int kx = 0; kx < k_w; kx++) {
      const int ix = ix0 + kx * dil_w;
      const float wv = wc[ky * k_w + kx];

      if (inside) {
#pragma unroll
        for (int p = 0; p < CONV_TP; p++)
          acc[p] += wv * xrow[ix + p * stride_w];
      } else {
#pragma unroll
        for (int p = 0; p < CONV_TP; p++) {
          const int c = ix + p * stride_w;
          const float v = xrow[clamp (c, 0, in_w - 1)];
          acc[p] += wv * (c >= 0 && c < in_w ? v : 0.0f);
        }
      }
    }
  }

  const float b = has_bias ? bias[oc] : 0.0f;
  __global float *yrow = y +
      (((size_t) n * out_c + oc) * out_h + oy) * out_w + ox0;
#pragma unroll
  for (int p = 0; p < CONV_TP; p++)
    if (ox0 + p < out_w)
      yrow[p] = lens_activate (acc[p] + b, act_alpha, act_beta);
}

/* ---- ConvInteger --------------------------------------------------------- */

/* An 8-bit element as int: @sign is 0x80 for int8 (sign extension by
 * flipping and subtracting the top bit) and 0 for uint8. */
inline int
conv_int8_value (uchar bits, int sign)
{
  return ((int) bits ^ sign) - sign;
}

/* x and w are read as raw bytes and converted with x_sign / w_sign, so one
 * kernel serves the four uint8/int8 combinations. The zero points stay on
 * the device (DynamicQuantizeLinear may have just computed them):
 * x_zero_point is a scalar (has_x_zp), w_zero_point has w_zp_count
 * values: 0 (absent), 1 or out_c. */
__kernel void
lens_conv2d_integer (__global const uchar *x, __global const uchar *w,
    __global const uchar *x_zero_point, __global const uchar *w_zero_point,
    __global int *y, int x_sign, int w_sign, int has_x_zp, int w_zp_count,
    CONV_GEOMETRY_ARGS, int oc_tiles, int ow_tiles)
{
  const int tile = get_global_id (0);
  const int oc_tile = get_global_id (1);
  const int n = get_global_id (2);
  const int groups = out_c / out_per_group;

  if (tile >= out_h * ow_tiles || oc_tile >= groups * oc_tiles)
    return;

  const int oy = tile / ow_tiles;
  const int ox0 = (tile - oy * ow_tiles) * CONV_TP;
  const int g = oc_tile / oc_tiles;
  const int m0 = (oc_tile - g * oc_tiles) * CONV_TM;
  const int oc0 = g * out_per_group + m0;
  const int m_count = min (CONV_TM, out_per_group - m0);
  const int iy0 = oy * stride_h - pad_top;
  const int ix0 = ox0 * stride_w - pad_left;
  const int k_size = k_h * k_w;
  const int plane = in_h * in_w;
  const bool inside = ix0 >= 0 &&
      ix0 + (CONV_TP - 1) * stride_w + (k_w - 1) * dil_w < in_w;
  const int x_zp = has_x_zp ? conv_int8_value (x_zero_point[0], x_sign) : 0;

  __global const uchar *xg = x +
      ((size_t) n * in_c + (size_t) g * in_per_group) * plane;
  __global const uchar *wg = w + (size_t) oc0 * in_per_group * k_size;
  int w_off[CONV_TM], w_zp[CONV_TM];
  int acc[CONV_TM][CONV_TP];

#pragma unroll
  for (int m = 0; m < CONV_TM; m++) {
    const int mc = min (m, m_count - 1);
    w_off[m] = mc * in_per_group * k_size;
    w_zp[m] = w_zp_count == 0 ? 0 :
        conv_int8_value (w_zero_point[w_zp_count == 1 ? 0 : oc0 + mc],
        w_sign);
#pragma unroll
    for (int p = 0; p < CONV_TP; p++)
      acc[m][p] = 0;
  }

  for (int ic = 0; ic < in_per_group; ic++) {
    __global const uchar *xc = xg + (size_t) ic * plane;
    __global const uchar *wc = wg + ic * k_size;

    for (int ky = 0; ky < k_h; ky++) {
      const int iy = iy0 + ky * dil_h;
      if (iy < 0 || iy >= in_h)
        continue;
      __global const uchar *xrow = xc + iy * in_w;
      __global const uchar *wrow = wc + ky * k_w;

      for (int kx = 0; kx < k_w; kx++) {
        const int ix = ix0 + kx * dil_w;
        int xv[CONV_TP], wv[CONV_TM];

        if (inside) {
#pragma unroll
          for (int p = 0; p < CONV_TP; p++)
            xv[p] = conv_int8_value (xrow[ix + p * stride_w], x_sign) - x_zp;
        } else {
          /* padding reads as x_zero_point: 0 once it is subtracted */
#pragma unroll
          for (int p = 0; p < CONV_TP; p++) {
            const int c = ix + p * stride_w;
            const int v = conv_int8_value (xrow[clamp (c, 0, in_w - 1)],
                x_sign) - x_zp;
            xv[p] = c >= 0 && c < in_w ? v : 0;
          }
        }
#pragma unroll
        for (int m = 0; m < CONV_TM; m++)
          wv[m] = conv_int8_value (wrow[w_off[m] + kx], w_sign) - w_zp[m];
#pragma unroll
        for (int m = 0; m < CONV_TM; m++)
#pragma unroll
          for (int p = 0; p < CONV_TP; p++)
            acc[m][p] += wv[m] * xv[p];
      }
    }
  }

#pragma unroll
  for (int m = 0; m < CONV_TM; m++) {
    if (m < m_count) {
      __global int *yrow = y +
          (((size_t) n * out_c + oc0 + m) * out_h + oy) * out_w + ox0;
#pragma unroll
      for (int p = 0; p < CONV_TP; p++)
        if (ox0 + p < out_w)
          yrow[p] = acc[m][p];
    }
  }
}
