/* overlay.c: drawing on frames for lensoverlay: the frame layouts (one or
 * two plane passes per pixel format), colours in the frame's space, the
 * colormaps, the built-in bitmap font, box and text primitives, the
 * OpenCL launches of cl/kernels/overlay.cl and their plain-C references.
 */
#include <math.h>
#include <string.h>

#include "lens.h"
#include "lens-private.h"

/* A 5x7 font in 6x8 cells for ASCII 32 ('  ') to 95 ('_'): 7 rows per
 * glyph, bit 4 the leftmost column. Drawn for lens; lower case is shown
 * as upper case. */
#define FONT_FIRST 32
#define FONT_COUNT 64
static const guint8 font_5x7[FONT_COUNT * 7] = {
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,     /* space */
  0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04,     /* ! */
  0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00,     /* " */
  0x0A, 0x1F, 0x0A, 0x0A, 0x1F, 0x0A, 0x00,     /* # */
  0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04,     /* $ */
  0x19, 0x19, 0x02, 0x04, 0x08, 0x13, 0x13,     /* % */
  0x08, 0x14, 0x14, 0x08, 0x15, 0x12, 0x0D,     /* & */
  0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00,     /* ' */
  0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02,     /* ( */
  0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08,     /* ) */
  0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00,     /* * */
  0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00,     /* + */
  0x00, 0x00, 0x00, 0x00, 0x04, 0x04, 0x08,     /* , */
  0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00,     /* - */
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04,     /* . */
  0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10,     /* / */
  0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E,     /* 0 */
  0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E,     /* 1 */
  0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F,     /* 2 */
  0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E,     /* 3 */
  0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02,     /* 4 */
  0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E,     /* 5 */
  0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E,     /* 6 */
  0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08,     /* 7 */
  0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E,     /* 8 */
  0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C,     /* 9 */
  0x00, 0x00, 0x04, 0x00, 0x00, 0x04, 0x00,     /* : */
  0x00, 0x00, 0x04, 0x00, 0x04, 0x04, 0x08,     /* ; */
  0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02,     /* < */
  0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00,     /* = */
  0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08,     /* > */
  0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04,     /* ? */
  0x0E, 0x11, 0x17, 0x15, 0x17, 0x10, 0x0E,     /* @ */
  0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11,     /* A */
  0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E,     /* B */
  0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E,     /* C */
  0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E,     /* D */
  0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F,     /* E */
  0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10,     /* F */
  0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F,     /* G */
  0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11,     /* H */
  0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E,     /* I */
  0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C,     /* J */
  0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11,     /* K */
  0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F,     /* L */
  0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11,     /* M */
  0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11,     /* N */
  0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E,     /* O */
  0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10,     /* P */
  0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D,     /* Q */
  0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11,     /* R */
  0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E,     /* S */
  0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,     /* T */
  0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E,     /* U */
  0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04,     /* V */
  0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A,     /* W */
  0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11,     /* X */
  0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04,     /* Y */
  0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F,     /* Z */
  0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E,     /* [ */
  0x10, 0x10, 0x08, 0x04, 0x02, 0x01, 0x01,     /* \ */
  0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E,     /* ] */
  0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00,     /* ^ */
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F,     /* _ */
};

/* ---- layouts and colours ------------------------------------------------ */

static void
pass_set (LensOverlayPass * p, int width, int height, int base, int stride,
    int step, int sub, int n_channels, const int *offsets,
    const int *channels)
{
  p->width = width;
  p->height = height;
  p->base = base;
  p->stride = stride;
  p->step = step;
  p->sub = sub;
  p->n_channels = n_channels;
  for (int c = 0; c < 3; c++) {
    p->offsets[c] = c < n_channels ? offsets[c] : 0;
    p->channels[c] = c < n_channels ? channels[c] : 0;
  }
}

LensStatus
lens_overlay_layout_init (LensOverlayLayout * layout, LensPixelFormat format,
    int width, int height, const int *strides, const size_t *offsets,
    LensError * err)
{
  int cw = (width + 1) / 2, ch = (height + 1) / 2;
  int st[3], bpp = 0, r = 0, g = 0, b = 0;
  size_t off[3];
  const int rgb[3] = { 0, 1, 2 };

  if (width <= 0 || height <= 0)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "overlay: invalid frame size %dx%d", width, height);
  memset (layout, 0, sizeof (*layout));
  layout->format = format;
  layout->width = width;
  layout->height = height;
  switch (format) {
    case LENS_PIXEL_RGB:
      bpp = 3, r = 0, g = 1, b = 2;
      break;
    case LENS_PIXEL_BGR:
      bpp = 3, r = 2, g = 1, b = 0;
      break;
    case LENS_PIXEL_RGBX:
      bpp = 4, r = 0, g = 1, b = 2;
      break;
    case LENS_PIXEL_BGRX:
      bpp = 4, r = 2, g = 1, b = 0;
      break;
    case LENS_PIXEL_XRGB:
      bpp = 4, r = 1, g = 2, b = 3;
      break;
    case LENS_PIXEL_XBGR:
      bpp = 4, r = 3, g = 2, b = 1;
      break;
    case LENS_PIXEL_I420:
    case LENS_PIXEL_NV12:
      layout->yuv = TRUE;
      break;
    default:
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "overlay: unsupported pixel format %d", (int) format);
  }

  if (!layout->yuv) {
    const int o[3] = { r, g, b };

    st[0] = strides ? strides[0] : width * bpp;
    off[0] = offsets ? offsets[0] : 0;
    if (st[0] < width * bpp)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "overlay: stride %d below %d pixels of %d bytes", st[0], width,
          bpp);
    layout->n_passes = 1;
    pass_set (&layout->passes[0], width, height, (int) off[0], st[0], bpp, 1,
        3, o, rgb);
    layout->size = off[0] + (size_t) st[0] * height;
  } else {
    gboolean nv12 = format == LENS_PIXEL_NV12;
    const int y_off[1] = { 0 };
    int uv_off[2];
    const int uv_ch[2] = { 1, 2 };
    int n_planes = nv12 ? 2 : 3;

    st[0] = strides ? strides[0] : width;
    st[1] = strides ? strides[1] : (nv12 ? 2 * cw : cw);
    st[2] = nv12 ? st[1] : (strides ? strides[2] : cw);
    off[0] = offsets ? offsets[0] : 0;
    off[1] = offsets ? offsets[1] : (size_t) st[0] * height;
    off[2] = nv12 ? off[1] : (offsets ? offsets[2]
        : off[1] + (size_t) st[1] * ch);
    if (st[0] < width || st[1] < (nv12 ? 2 * cw : cw))
      return lens_error_set (err, LENS_ERROR_INVALID,
          "overlay: strides %d, %d too small for width %d", st[0], st[1],
          width);
    /* I420's V plane is reached from the U sample at a fixed distance,
     * which needs equal chroma strides */
    if (!nv12 && st[2] != st[1])
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "overlay: I420 with U stride %d and V stride %d", st[1], st[2]);
    uv_off[0] = 0;
    uv_off[1] = nv12 ? 1 : (int) ((gint64) off[2] - (gint64) off[1]);
    layout->n_passes = 2;
    pass_set (&layout->passes[0], width, height, (int) off[0], st[0], 1, 1,
        1, y_off, rgb);
    pass_set (&layout->passes[1], cw, ch, (int) off[1], st[1], nv12 ? 2 : 1,
        2, 2, uv_off, uv_ch);
    layout->size = 0;
    for (int p = 0; p < n_planes; p++)
      layout->size = MAX (layout->size, off[p] + (size_t) st[p]
          * (p == 0 ? height : ch));
  }
  return LENS_OK;
}

static guint8
clamp_u8 (double v)
{
  return (guint8) CLAMP ((int) floor (v + 0.5), 0, 255);
}

/* BT.601 limited range, as the pre-processor reads it */
static guint32
rgb_to_yuv (guint32 rgb)
{
  double r = (rgb >> 16) & 0xff, g = (rgb >> 8) & 0xff, b = rgb & 0xff;
  guint8 y = clamp_u8 (16.0 + (65.481 * r + 128.553 * g + 24.966 * b)
      / 255.0);
  guint8 u = clamp_u8 (128.0 + (-37.797 * r - 74.203 * g + 112.0 * b)
      / 255.0);
  guint8 v = clamp_u8 (128.0 + (112.0 * r - 93.786 * g - 18.214 * b)
      / 255.0);

  return ((guint32) y << 16) | ((guint32) u << 8) | v;
}

guint32
lens_overlay_colour (const LensOverlayLayout * layout, guint32 rgb)
{
  rgb &= 0xffffff;
  return layout->yuv ? rgb_to_yuv (rgb) : rgb;
}

/* ---- colormaps ---------------------------------------------------------- */

/* Control points (position 0..1, r, g, b), interpolated linearly: a
 * turbo-like rainbow and an inferno-like dark-to-bright ramp. */
static const float turbo_points[][4] = {
  {0.00f, 48, 18, 59}, {0.10f, 70, 107, 227}, {0.20f, 40, 170, 250},
  {0.35f, 26, 228, 182}, {0.50f, 120, 254, 80}, {0.62f, 200, 239, 52},
  {0.72f, 250, 186, 57}, {0.85f, 240, 100, 20}, {1.00f, 122, 4, 3},
};
static const float inferno_points[][4] = {
  {0.00f, 0, 0, 4}, {0.15f, 31, 12, 72}, {0.30f, 85, 15, 109},
  {0.45f, 136, 34, 106}, {0.60f, 186, 54, 85}, {0.72f, 227, 89, 51},
  {0.85f, 249, 140, 10}, {0.95f, 245, 219, 76}, {1.00f, 252, 255, 164},
};
static const float gray_points[][4] = {
  {0.0f, 0, 0, 0}, {1.0f, 255, 255, 255},
};

void
lens_overlay_colormap_lut (LensColormap colormap, gboolean yuv,
    guint8 lut[256 * 4])
{
  const float (*pts)[4];
  int n;

  switch (colormap) {
    case LENS_COLORMAP_INFERNO:
      pts = inferno_points, n = G_N_ELEMENTS (inferno_points);
      break;
    case LENS_COLORMAP_GRAY:
      pts = gray_points, n = G_N_ELEMENTS (gray_points);
      break;
    case LENS_COLORMAP_TURBO:
    default:
      pts = turbo_points, n = G_N_ELEMENTS (turbo_points);
      break;
  }
  for (int i = 0; i < 256; i++) {
    float t = i / 255.0f;
    int k = 0;
    guint32 rgb, c;

    while (k < n - 2 && t > pts[k + 1][0])
      k++;
    float f = (t - pts[k][0]) / (pts[k + 1][0] - pts[k][0]);
    f = CLAMP (f, 0.0f, 1.0f);
    rgb = 0;
    for (int j = 1; j <= 3; j++)
      rgb = (rgb << 8) | clamp_u8 (pts[k][j] + (pts[k + 1][j] - pts[k][j])
          * f);
    c = yuv ? rgb_to_yuv (rgb) : rgb;
    lut[i * 4 + 0] = (c >> 16) & 0xff;
    lut[i * 4 + 1] = (c >> 8) & 0xff;
    lut[i * 4 + 2] = c & 0xff;
    lut[i * 4 + 3] = 0;
  }
}

/* ---- primitives --------------------------------------------------------- */

int
lens_overlay_box (LensOverlayPrim * out, int x, int y, int w, int h,
    int thickness, guint32 colour)
{
  int t = MAX (1, thickness);
  const int r[4][4] = {
    {x, y, x + w, y + t}, {x, y + h - t, x + w, y + h},
    {x, y, x + t, y + h}, {x + w - t, y, x + w, y + h},
  };

  for (int i = 0; i < 4; i++) {
    out[i].x0 = r[i][0];
    out[i].y0 = r[i][1];
    out[i].x1 = r[i][2];
    out[i].y1 = r[i][3];
    out[i].fg = (gint32) colour;
    out[i].bg = -1;
    out[i].glyph = -1;
    out[i].scale = 1;
  }
  return 4;
}

int
lens_overlay_text (LensOverlayPrim * out, int max, int x, int y,
    const char *text, int scale, guint32 fg, gint32 bg)
{
  int n = 0, s = MAX (1, scale);

  for (const char *c = text; *c != '\0' && n < max; c++, n++) {
    int ch = g_ascii_toupper (*c);

    if (ch < FONT_FIRST || ch >= FONT_FIRST + FONT_COUNT)
      ch = '?';
    out[n].x0 = x + n * LENS_OVERLAY_GLYPH_W * s;
    out[n].y0 = y;
    out[n].x1 = out[n].x0 + LENS_OVERLAY_GLYPH_W * s;
    out[n].y1 = y + LENS_OVERLAY_GLYPH_H * s;
    out[n].fg = (gint32) fg;
    out[n].bg = bg;
    out[n].glyph = ch - FONT_FIRST;
    out[n].scale = s;
  }
  return n;
}

/* ---- references --------------------------------------------------------- */

static float
sample_ref (const float *grid, int w, int h, float gx, float gy)
{
  int x0, y0, x1, y1;
  float fx, fy, top, bot;

  gx = CLAMP (gx, 0.0f, (float) (w - 1));
  gy = CLAMP (gy, 0.0f, (float) (h - 1));
  x0 = (int) gx, y0 = (int) gy;
  x1 = MIN (x0 + 1, w - 1), y1 = MIN (y0 + 1, h - 1);
  fx = gx - (float) x0, fy = gy - (float) y0;
  top = grid[y0 * w + x0] * (1.0f - fx) + grid[y0 * w + x1] * fx;
  bot = grid[y1 * w + x0] * (1.0f - fx) + grid[y1 * w + x1] * fx;
  return top * (1.0f - fy) + bot * fy;
}

static float
inv_range (const LensOverlayHeatmap * hm)
{
  float d = hm->hi - hm->lo;

  return fabsf (d) > 1e-12f ? 1.0f / d : 0.0f;
}

void
lens_overlay_heatmap_ref (guint8 * frame, const LensOverlayLayout * layout,
    const LensOverlayHeatmap * hm, LensColormap colormap, float alpha)
{
  guint8 lut[256 * 4];
  float inv = inv_range (hm), inv_stride = 1.0f / hm->stride;

  lens_overlay_colormap_lut (colormap, layout->yuv, lut);
  for (int k = 0; k < layout->n_passes; k++) {
    const LensOverlayPass *p = &layout->passes[k];

    for (int y = 0; y < p->height; y++)
      for (int x = 0; x < p->width; x++) {
        float fx = ((float) x + 0.5f) * (float) p->sub;
        float fy = ((float) y + 0.5f) * (float) p->sub;
        float gx = (fx * hm->scale_x + hm->pad_x) * inv_stride - 0.5f;
        float gy = (fy * hm->scale_y + hm->pad_y) * inv_stride - 0.5f;
        float v = (sample_ref (hm->grid, hm->width, hm->height, gx, gy)
            - hm->lo) * inv;
        int idx;
        guint8 *px = frame + p->base + (size_t) y * p->stride
            + (size_t) x * p->step;

        v = CLAMP (v, 0.0f, 1.0f);
        idx = (int) (v * 255.0f + 0.5f);
        for (int c = 0; c < p->n_channels; c++) {
          float src = px[p->offsets[c]];
          float col = lut[idx * 4 + p->channels[c]];
          float out = src + (col - src) * alpha;

          px[p->offsets[c]] = (guint8) CLAMP ((int) (out + 0.5f), 0, 255);
        }
      }
  }
}

void
lens_overlay_draw_ref (guint8 * frame, const LensOverlayLayout * layout,
    const LensOverlayPrim * prims, int n)
{
  for (int k = 0; k < layout->n_passes; k++) {
    const LensOverlayPass *p = &layout->passes[k];

    for (int y = 0; y < p->height; y++)
      for (int x = 0; x < p->width; x++) {
        int px = x * p->sub, py = y * p->sub;
        gint32 colour = -1;
        guint8 *d;

        for (int i = 0; i < n; i++) {
          const LensOverlayPrim *q = &prims[i];

          if (px < q->x0 || py < q->y0 || px >= q->x1 || py >= q->y1)
            continue;
          if (q->glyph < 0) {
            colour = q->fg;
          } else {
            int s = MAX (q->scale, 1);
            int cx = (px - q->x0) / s, cy = (py - q->y0) / s;
            gboolean on = cx < 5 && cy < 7
                && ((font_5x7[q->glyph * 7 + cy] >> (4 - cx)) & 1);

            if (on)
              colour = q->fg;
            else if (q->bg >= 0)
              colour = q->bg;
          }
        }
        if (colour < 0)
          continue;
        d = frame + p->base + (size_t) y * p->stride + (size_t) x * p->step;
        for (int c = 0; c < p->n_channels; c++)
          d[p->offsets[c]] = (colour >> (16 - 8 * p->channels[c])) & 0xff;
      }
  }
}

/* ---- OpenCL ------------------------------------------------------------- */

struct _LensOverlay
{
  LensContext *ctx;
  cl_kernel heatmap;
  cl_kernel prims;
  cl_mem font;
  cl_mem luts[3][2];            /* [colormap][yuv], made on first use */
  cl_mem grid;
  size_t grid_bytes;
  cl_mem prim_buf;
  size_t prim_bytes;
};

LensStatus
lens_overlay_new (LensContext * ctx, LensOverlay ** out, LensError * err)
{
  LensOverlay *ov = g_new0 (LensOverlay, 1);
  cl_int rc;
  LensStatus st;

  ov->ctx = ctx;
  st = lens_context_create_kernel (ctx, "overlay", "",
      "lens_overlay_heatmap", &ov->heatmap, err);
  if (st == LENS_OK)
    st = lens_context_create_kernel (ctx, "overlay", "",
        "lens_overlay_prims", &ov->prims, err);
  if (st != LENS_OK) {
    lens_overlay_free (ov);
    return st;
  }
  ov->font = clCreateBuffer (lens_context_get_cl_context (ctx),
      CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof (font_5x7),
      (void *) font_5x7, &rc);
  if (rc != CL_SUCCESS) {
    lens_overlay_free (ov);
    return lens_error_set (err, LENS_ERROR_CL,
        "overlay: clCreateBuffer (font): %s", lens_cl_error_name (rc));
  }
  *out = ov;
  return LENS_OK;
}

void
lens_overlay_free (LensOverlay * ov)
{
  if (ov == NULL)
    return;
  if (ov->heatmap)
    clReleaseKernel (ov->heatmap);
  if (ov->prims)
    clReleaseKernel (ov->prims);
  if (ov->font)
    clReleaseMemObject (ov->font);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 2; j++)
      if (ov->luts[i][j])
        clReleaseMemObject (ov->luts[i][j]);
  if (ov->grid)
    clReleaseMemObject (ov->grid);
  if (ov->prim_buf)
    clReleaseMemObject (ov->prim_buf);
  g_free (ov);
}

/* Grows *@buf to @bytes and copies @data into it before returning (the
 * caller's memory may go away once we return). */
static LensStatus
upload (LensOverlay * ov, cl_mem * buf, size_t * cap, const void *data,
    size_t bytes, const char *what, LensError * err)
{
  cl_int rc;

  if (*buf == NULL || *cap < bytes) {
    if (*buf)
      clReleaseMemObject (*buf);
    *cap = MAX (bytes, 2 * *cap);
    *buf = clCreateBuffer (lens_context_get_cl_context (ov->ctx),
        CL_MEM_READ_ONLY, *cap, NULL, &rc);
    if (rc != CL_SUCCESS) {
      *buf = NULL;
      *cap = 0;
      return lens_error_set (err, LENS_ERROR_CL,
          "overlay: clCreateBuffer (%s, %zu bytes): %s", what, bytes,
          lens_cl_error_name (rc));
    }
  }
  /* blocking, so the host data is free again on return; it is small
   * next to the frame */
  rc = clEnqueueWriteBuffer (lens_context_get_queue (ov->ctx), *buf, CL_TRUE,
      0, bytes, data, 0, NULL, NULL);
  if (rc != CL_SUCCESS)
    return lens_error_set (err, LENS_ERROR_CL,
        "overlay: clEnqueueWriteBuffer (%s): %s", what,
        lens_cl_error_name (rc));
  return LENS_OK;
}

static LensStatus
set_pass_args (cl_kernel k, cl_mem frame, const LensOverlayPass * p,
    LensError * err)
{
  cl_int4 offs = { {p->offsets[0], p->offsets[1], p->offsets[2], 0} };
  cl_int4 chs = { {p->channels[0], p->channels[1], p->channels[2], 0} };

  return lens_kernel_set_args (k, err, 10, LENS_ARG (frame),
      LENS_ARG (p->width), LENS_ARG (p->height), LENS_ARG (p->base),
      LENS_ARG (p->stride), LENS_ARG (p->step), LENS_ARG (p->sub),
      LENS_ARG (p->n_channels), LENS_ARG (offs), LENS_ARG (chs));
}

LensStatus
lens_overlay_heatmap (LensOverlay * ov, cl_mem frame,
    const LensOverlayLayout * layout, const LensOverlayHeatmap * hm,
    LensColormap colormap, float alpha, LensError * err)
{
  LensStatus st;
  int cm = CLAMP ((int) colormap, 0, 2), yuv = layout->yuv ? 1 : 0;
  cl_float4 geo = { {hm->scale_x, hm->scale_y, hm->pad_x, hm->pad_y} };
  cl_float4 range;

  if (hm->width <= 0 || hm->height <= 0 || hm->stride <= 0.0f)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "overlay: heatmap %dx%d with stride %g", hm->width, hm->height,
        hm->stride);
  range.s[0] = hm->lo;
  range.s[1] = inv_range (hm);
  range.s[2] = 1.0f / hm->stride;
  range.s[3] = alpha;
  if (ov->luts[cm][yuv] == NULL) {
    guint8 lut[256 * 4];
    size_t cap = 0;

    lens_overlay_colormap_lut ((LensColormap) cm, layout->yuv, lut);
    st = upload (ov, &ov->luts[cm][yuv], &cap, lut, sizeof (lut), "colormap",
        err);
    if (st != LENS_OK)
      return st;
  }
  st = upload (ov, &ov->grid, &ov->grid_bytes, hm->grid,
      (size_t) hm->width * hm->height * sizeof (float), "heatmap grid", err);
  if (st != LENS_OK)
    return st;
  for (int k = 0; k < layout->n_passes; k++) {
    const LensOverlayPass *p = &layout->passes[k];
    size_t global[2] = { p->width, p->height };
    cl_int gw = hm->width, gh = hm->height;

    st = set_pass_args (ov->heatmap, frame, p, err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->heatmap, 10, sizeof (cl_mem), &ov->grid,
          err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->heatmap, 11, sizeof (gw), &gw, err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->heatmap, 12, sizeof (gh), &gh, err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->heatmap, 13, sizeof (geo), &geo, err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->heatmap, 14, sizeof (range), &range,
          err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->heatmap, 15, sizeof (cl_mem),
          &ov->luts[cm][yuv], err);
    if (st == LENS_OK)
      st = lens_context_enqueue (ov->ctx, ov->heatmap, 2, global, NULL, err);
    if (st != LENS_OK)
      return st;
  }
  return LENS_OK;
}

LensStatus
lens_overlay_draw (LensOverlay * ov, cl_mem frame,
    const LensOverlayLayout * layout, const LensOverlayPrim * prims, int n,
    LensError * err)
{
  LensStatus st;
  cl_int *packed;
  cl_int count = n;

  if (n <= 0)
    return LENS_OK;
  /* the kernel reads 8 plain ints per primitive */
  packed = g_new (cl_int, 8 * (size_t) n);
  for (int i = 0; i < n; i++) {
    cl_int *q = packed + 8 * i;

    q[0] = prims[i].x0;
    q[1] = prims[i].y0;
    q[2] = prims[i].x1;
    q[3] = prims[i].y1;
    q[4] = prims[i].fg;
    q[5] = prims[i].bg;
    q[6] = prims[i].glyph;
    q[7] = prims[i].scale;
  }
  st = upload (ov, &ov->prim_buf, &ov->prim_bytes, packed,
      8 * sizeof (cl_int) * (size_t) n, "primitives", err);
  g_free (packed);
  if (st != LENS_OK)
    return st;
  for (int k = 0; k < layout->n_passes; k++) {
    const LensOverlayPass *p = &layout->passes[k];
    size_t global[2] = { p->width, p->height };

    st = set_pass_args (ov->prims, frame, p, err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->prims, 10, sizeof (cl_mem),
          &ov->prim_buf, err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->prims, 11, sizeof (count), &count, err);
    if (st == LENS_OK)
      st = lens_kernel_set_arg (ov->prims, 12, sizeof (cl_mem), &ov->font,
          err);
    if (st == LENS_OK)
      st = lens_context_enqueue (ov->ctx, ov->prims, 2, global, NULL, err);
    if (st != LENS_OK)
      return st;
  }
  return LENS_OK;
}

guint32
lens_overlay_class_colour (int class_id)
{
  static const guint32 palette[] = {
    0xff3838, 0x2c99a8, 0xff9d97, 0x48f90a, 0xff701f, 0x92cc17, 0x3ddb86,
    0x1a9334, 0x00d4bb, 0xffb21d, 0x00c2ff, 0x344593, 0x6473ff, 0x0018ec,
    0x8438ff, 0xcf3ff2, 0xff95c8, 0xff37c7, 0xcfd231, 0x520085,
  };

  return palette[(guint) ABS (class_id) % G_N_ELEMENTS (palette)];
}
