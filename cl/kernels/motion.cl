/* motion.cl: the motion engine's kernels (cl/motion.c drives them and holds
 * their plain-C references): luma from a frame plane, the separable 5-tap
 * Gaussian convolution that blurs and halves each pyramid level, the
 * difference against the running background, the thresholded heatmap with
 * the background update, and a 3x3 box count for the mask's morphology.
 * One work item per output cell; borders clamp to the edge. */

/* Luma of one plane: @bpp 1 reads the byte (the Y plane of I420/NV12),
 * 3 or 4 read packed R, G, B at byte offsets @r, @g, @b (BT.601 weights). */
__kernel void
lens_motion_luma (__global const uchar *src, __global float *dst,
    int width, int height, int stride, int bpp, int r, int g, int b)
{
  int i = get_global_id (0);
  __global const uchar *p;

  if (i >= width * height)
    return;
  p = src + (i / width) * stride + (i % width) * bpp;
  if (bpp == 1)
    dst[i] = (float) p[0];
  else
    dst[i] = 0.299f * (float) p[r] + 0.587f * (float) p[g]
        + 0.114f * (float) p[b];
}

/* One pass of the separable Gaussian [1 4 6 4 1] / 16 along x
 * (@horizontal) or y, sampling every @step-th source cell: step 2 both
 * blurs and halves that axis (out cell o reads around source 2*o). */
__kernel void
lens_motion_gauss5 (__global const float *src, __global float *dst,
    int src_w, int src_h, int dst_w, int dst_h, int horizontal, int step)
{
  int i = get_global_id (0);
  int x, y, cx, cy;
  float sum = 0.0f;
  const float w[5] = { 0.0625f, 0.25f, 0.375f, 0.25f, 0.0625f };

  if (i >= dst_w * dst_h)
    return;
  x = i % dst_w;
  y = i / dst_w;
  cx = horizontal ? x * step : x;
  cy = horizontal ? y : y * step;
  for (int k = -2; k <= 2; k++) {
    int sx = horizontal ? clamp (cx + k, 0, src_w - 1) : min (cx, src_w - 1);
    int sy = horizontal ? min (cy, src_h - 1) : clamp (cy + k, 0, src_h - 1);

    sum += w[k + 2] * src[sy * src_w + sx];
  }
  dst[i] = sum;
}

/* Signed differences of the level against its background (@diff) and
 * against a recent average of it (@change: what changed in the last few
 * frames, as opposed to what differs from the scene), then the recent
 * average's update at @rate_recent. @init (the first frame of a stream)
 * makes both averages the level itself. */
__kernel void
lens_motion_diff (__global const float *cur, __global float *bg,
    __global float *recent, __global float *diff, __global float *change,
    int n, int init, float rate_recent)
{
  int i = get_global_id (0);
  float c, r;

  if (i >= n)
    return;
  c = cur[i];
  if (init) {
    bg[i] = c;
    recent[i] = c;
  }
  r = recent[i];
  diff[i] = c - bg[i];
  change[i] = c - r;
  recent[i] = r + rate_recent * (c - r);
}

/* The heatmap |diff - offset| (offset: the frame's global brightness
 * change, so lighting drift is not motion), the mask of cells above
 * @threshold, and the background update. Where still it follows the scene
 * at @rate_bg. Where the level differs from the background it is
 * frozen while something there is changing (the largest |change -
 * change_offset| of the 3x3 neighbourhood above @change_threshold, so the
 * flat inside of a slow object counts too), so a passing object leaves no
 * trail; where it differs but nothing changes (the ghost of an object the
 * first frame held, an object that stopped) it fades in at @rate_fg. */
__kernel void
lens_motion_update (__global const float *cur, __global float *bg,
    __global const float *diff, __global const float *change,
    __global float *heat, __global uchar *mask, int width, int height,
    float offset, float threshold, float change_offset,
    float change_threshold, float rate_bg, float rate_fg)
{
  int i = get_global_id (0);
  int x, y, moving;
  float a, b, rate, c = 0.0f;

  if (i >= width * height)
    return;
  x = i % width;
  y = i / width;
  a = fabs (diff[i] - offset);
  moving = a > threshold;
  heat[i] = a;
  mask[i] = (uchar) moving;
  rate = rate_bg;
  if (moving) {
    for (int dy = -1; dy <= 1; dy++) {
      int sy = clamp (y + dy, 0, height - 1);

      for (int dx = -1; dx <= 1; dx++)
        c = fmax (c, fabs (change[sy * width + clamp (x + dx, 0, width - 1)]
                - change_offset));
    }
    rate = c > change_threshold ? 0.0f : rate_fg;
  }
  b = bg[i];
  bg[i] = b + rate * (cur[i] - b);
}

/* Morphology as a 3x3 box convolution of the 0/1 mask: a cell is set when
 * at least @need of its 9 neighbours (edges clamped) are: need 1 dilates,
 * need 9 erodes. */
__kernel void
lens_motion_box3 (__global const uchar *src, __global uchar *dst,
    int width, int height, int need)
{
  int i = get_global_id (0);
  int x, y, count = 0;

  if (i >= width * height)
    return;
  x = i % width;
  y = i / width;
  for (int dy = -1; dy <= 1; dy++) {
    int sy = clamp (y + dy, 0, height - 1);

    for (int dx = -1; dx <= 1; dx++)
      count += src[sy * width + clamp (x + dx, 0, width - 1)];
  }
  dst[i] = (uchar) (count >= need);
}
