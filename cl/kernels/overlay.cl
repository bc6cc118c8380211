/* overlay.cl: drawing on frames in device memory (lensoverlay): heatmap
 * blending through a colormap and solid or glyph rectangles. Both kernels
 * run over one plane pass (see LensOverlayPass in lens.h), so one kernel
 * serves packed RGB-family frames, the Y plane and the chroma planes;
 * colours arrive already in the frame's colour space. The plain-C
 * references are in cl/overlay.c and must stay in step. */

/* Bilinear sample of a w x h grid at cell coordinates (gx, gy), clamped
 * at the edges. */
static float
lens_overlay_sample (__global const float *grid, int w, int h, float gx,
    float gy)
{
  gx = clamp (gx, 0.0f, (float) (w - 1));
  gy = clamp (gy, 0.0f, (float) (h - 1));
  int x0 = (int) gx, y0 = (int) gy;
  int x1 = min (x0 + 1, w - 1), y1 = min (y0 + 1, h - 1);
  float fx = gx - (float) x0, fy = gy - (float) y0;
  float top = grid[y0 * w + x0] * (1.0f - fx) + grid[y0 * w + x1] * fx;
  float bot = grid[y1 * w + x0] * (1.0f - fx) + grid[y1 * w + x1] * fx;
  return top * (1.0f - fy) + bot * fy;
}

/* geo: scale_x, scale_y, pad_x, pad_y; range: lo, 1 / (hi - lo),
 * 1 / stride, alpha. lut: 256 colours of 4 bytes. */
__kernel void
lens_overlay_heatmap (__global uchar *frame, int width, int height,
    int base, int stride, int step, int sub, int n_channels, int4 offsets,
    int4 channels, __global const float *grid, int gw, int gh, float4 geo,
    float4 range, __global const uchar *lut)
{
  int x = get_global_id (0), y = get_global_id (1);
  if (x >= width || y >= height)
    return;
  /* the centre of the sample in frame pixels, then in model input pixels,
   * then in cells */
  float fx = ((float) x + 0.5f) * (float) sub;
  float fy = ((float) y + 0.5f) * (float) sub;
  float gx = (fx * geo.x + geo.z) * range.z - 0.5f;
  float gy = (fy * geo.y + geo.w) * range.z - 0.5f;
  float v = (lens_overlay_sample (grid, gw, gh, gx, gy) - range.x) * range.y;
  v = clamp (v, 0.0f, 1.0f);
  int idx = (int) (v * 255.0f + 0.5f);
  float a = range.w;
  __global uchar *p = frame + base + y * stride + x * step;
  int offs[3] = { offsets.x, offsets.y, offsets.z };
  int chs[3] = { channels.x, channels.y, channels.z };
  for (int c = 0; c < n_channels; c++) {
    float src = (float) p[offs[c]];
    float col = (float) lut[idx * 4 + chs[c]];
    float out = src + (col - src) * a;
    p[offs[c]] = (uchar) clamp ((int) (out + 0.5f), 0, 255);
  }
}

/* prims: 8 ints each (x0, y0, x1, y1, fg, bg, glyph, scale); font: 7 rows
 * of 5 bits (bit 4 leftmost) per glyph. The last primitive covering a
 * pixel decides it, so the result does not depend on scheduling. */
__kernel void
lens_overlay_prims (__global uchar *frame, int width, int height,
    int base, int stride, int step, int sub, int n_channels, int4 offsets,
    int4 channels, __global const int *prims, int n_prims,
    __global const uchar *font)
{
  int x = get_global_id (0), y = get_global_id (1);
  if (x >= width || y >= height)
    return;
  /* a chroma sample takes the colour of its top-left pixel */
  int px = x * sub, py = y * sub;
  int colour = -1;
  for (int i = 0; i < n_prims; i++) {
    __global const int *q = prims + 8 * i;
    if (px < q[0] || py < q[1] || px >= q[2] || py >= q[3])
      continue;
    if (q[6] < 0) {
      colour = q[4];
    } else {
      int s = max (q[7], 1);
      int cx = (px - q[0]) / s, cy = (py - q[1]) / s;
      int on = cx < 5 && cy < 7
          && ((font[q[6] * 7 + cy] >> (4 - cx)) & 1);
      if (on)
        colour = q[4];
      else if (q[5] >= 0)
        colour = q[5];
    }
  }
  if (colour < 0)
    return;
  __global uchar *p = frame + base + y * stride + x * step;
  int offs[3] = { offsets.x, offsets.y, offsets.z };
  int chs[3] = { channels.x, channels.y, channels.z };
  for (int c = 0; c < n_channels; c++)
    p[offs[c]] = (uchar) ((colour >> (16 - 8 * chs[c])) & 0xff);
}
