/* heatmap.cl: per-cell heatmaps of feature maps, one work item per cell.
 * A cell (iy, ix) of channel c sits at x[offset + c*sc + iy*sh + ix*sw],
 * which covers [1,C,H,W] maps and [1,H*W,C] (channel-last) outputs alike
 * and any strides. The C references are in heatmap.c. */

/* The mean over channels of |x|. */
__kernel void
lens_heatmap_activation (__global const float *x, __global float *y,
    int x_offset, int y_offset, int channels, int height, int width,
    int sc, int sh, int sw)
{
  int i = get_global_id (0);
  __global const float *p;
  float sum = 0.0f;

  if (i >= height * width)
    return;
  p = x + x_offset + (i / width) * sh + (i % width) * sw;
  for (int c = 0; c < channels; c++)
    sum += fabs (p[c * sc]);
  y[y_offset + i] = sum / (float) channels;
}

/* The maximum over channels first .. first + n - 1, optionally through a
 * sigmoid (monotonic, so applied once to the maximum). */
__kernel void
lens_heatmap_score (__global const float *x, __global float *y,
    int x_offset, int y_offset, int first, int n, int height, int width,
    int sc, int sh, int sw, int apply_sigmoid)
{
  int i = get_global_id (0);
  __global const float *p;
  float m;

  if (i >= height * width)
    return;
  p = x + x_offset + (i / width) * sh + (i % width) * sw + first * sc;
  m = p[0];
  for (int c = 1; c < n; c++)
    m = fmax (m, p[c * sc]);
  if (apply_sigmoid)
    m = 1.0f / (1.0f + exp (-m));
  y[y_offset + i] = m;
}
