/* preprocess.cl: one kernel from an 8-bit video frame to the float32
 * [1,3,H,W] model input: pixel fetch (packed RGB/BGR/RGBx/BGRx/xRGB/xBGR, or
 * I420/NV12 with BT.601 limited-range conversion), bilinear resize,
 * letterbox padding and per-channel normalization, in one pass.
 *
 * The host (preprocess.c) uploads one buffer: the sampling table first,
 * then the frame planes (rows packed without stride padding). The table
 * holds 3 ints per output column, then 3 per output row: first source
 * index (-1: padding), second source index, weight of the second (float
 * bits). It is computed once on the host in double precision, so that this
 * kernel and the C reference use exactly the same taps and weights.
 *
 * The pixel format is a build option, -DFORMAT=n (numbered as
 * LensPixelFormat in lens.h): one program per format keeps the per-tap
 * fetch free of branches (faster on CPU devices, where the switch on a
 * runtime format kept the loop from vectorizing). */

#define FMT_RGB 0
#define FMT_BGR 1
#define FMT_RGBX 2
#define FMT_BGRX 3
#define FMT_I420 4
#define FMT_NV12 5
#define FMT_XRGB 6
#define FMT_XBGR 7

/* BT.601 limited range (Y 16..235, UV 16..240) to RGB 0..255, unrounded;
 * the same expression as yuv_to_rgb () in preprocess.c */
inline float3
lens_yuv_to_rgb (float y, float u, float v)
{
  float c = (y - 16.0f) * 1.164383f;
  float d = u - 128.0f;
  float e = v - 128.0f;
  float3 rgb;

  rgb.x = c + 1.596027f * e;
  rgb.y = c - 0.391762f * d - 0.812968f * e;
  rgb.z = c + 2.017232f * d;
  return clamp (rgb, 0.0f, 255.0f);
}

/* Pixel (x, y) of the frame as RGB 0..255. Offsets are in bytes into
 * data; strides are the packed row sizes of each plane. */
inline float3
lens_fetch (__global const uchar * data, int x, int y,
    int off0, int stride0, int off1, int stride1, int off2, int stride2)
{
#if FORMAT == FMT_RGB || FORMAT == FMT_BGR || FORMAT == FMT_RGBX || FORMAT == FMT_BGRX || FORMAT == FMT_XRGB || FORMAT == FMT_XBGR
#if FORMAT == FMT_RGB || FORMAT == FMT_BGR
  __global const uchar *p = data + off0 + (long) y * stride0 + x * 3;
#elif FORMAT == FMT_XRGB || FORMAT == FMT_XBGR
  /* the ignored byte comes first */
  __global const uchar *p = data + off0 + (long) y * stride0 + x * 4 + 1;
#else
  __global const uchar *p = data + off0 + (long) y * stride0 + x * 4;
#endif
#if FORMAT == FMT_RGB || FORMAT == FMT_RGBX || FORMAT == FMT_XRGB
  return convert_float3 ((uchar3) (p[0], p[1], p[2]));
#else
  return convert_float3 ((uchar3) (p[2], p[1], p[0]));
#endif
#elif FORMAT == FMT_I420
  return lens_yuv_to_rgb ((float) data[off0 + (long) y * stride0 + x],
      (float) data[off1 + (long) (y / 2) * stride1 + x / 2],
      (float) data[off2 + (long) (y / 2) * stride2 + x / 2]);
#elif FORMAT == FMT_NV12
  __global const uchar *p = data + off1 + (long) (y / 2) * stride1
      + (x / 2) * 2;
  return lens_yuv_to_rgb ((float) data[off0 + (long) y * stride0 + x],
      (float) p[0], (float) p[1]);
#else
#error "FORMAT must be a LensPixelFormat"
#endif
}

/* One work item per output pixel, writing its 3 channels. */
__kernel void
lens_preprocess (__global const uchar * data, __global float *out,
    int out_offset, int out_w, int out_h,
    int off0, int stride0, int off1, int stride1, int off2, int stride2,
    int bgr, float pad_value, float scale, float4 mean, float4 std)
{
  int i = get_global_id (0);
  __global const int *table = (__global const int *) data;
  __global const int *col, *row;
  int plane = out_w * out_h;
  float3 v;

  if (i >= plane)
    return;
  col = table + 3 * (i % out_w);
  row = table + 3 * (out_w + i / out_w);
  if (col[0] < 0 || row[0] < 0) {
    v = (float3) (pad_value);
  } else {
    float wx = as_float (col[2]);
    float wy = as_float (row[2]);
    float3 p00 = lens_fetch (data, col[0], row[0], off0, stride0,
        off1, stride1, off2, stride2);
    float3 p01 = lens_fetch (data, col[1], row[0], off0, stride0,
        off1, stride1, off2, stride2);
    float3 p10 = lens_fetch (data, col[0], row[1], off0, stride0,
        off1, stride1, off2, stride2);
    float3 p11 = lens_fetch (data, col[1], row[1], off0, stride0,
        off1, stride1, off2, stride2);
    float3 top = p00 * (1.0f - wx) + p01 * wx;
    float3 bottom = p10 * (1.0f - wx) + p11 * wx;
    v = top * (1.0f - wy) + bottom * wy;
  }
  if (bgr)
    v = v.zyx;
  out += out_offset + i;
  out[0] = (v.x * scale - mean.x) / std.x;
  out[plane] = (v.y * scale - mean.y) / std.y;
  out[2 * plane] = (v.z * scale - mean.z) / std.z;
}
