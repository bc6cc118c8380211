/* lensd-render.c: the images lensd serves for an inferred frame: the JPEG
 * snapshot (the frame converted to RGB by GstVideoConverter, boxes,
 * labels and the heatmap drawn by liblens's plain-C overlay, encoded by
 * libjpeg-turbo), heatmap PNGs (one level or every level fused,
 * colormapped, at the frame's size or one pixel per cell) and the PNG grid
 * of a level's feature channels (libpng). Each is encoded once per frame,
 * on first request, and kept in the frame's cache; concurrent requests for
 * one rendering wait for the first instead of encoding it again.
 */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

#include "lens.h"
#include "lensd.h"

#define LENSD_JPEG_QUALITY 85
/* weight of the heatmap blended over a snapshot */
#define LENSD_SNAPSHOT_HEAT_ALPHA 0.45f
/* no PNG larger than this many pixels: a corrupt frame size or map must
 * not allocate without bound */
#define LENSD_RENDER_MAX_PIXELS (64 * 1024 * 1024)

/* ---- the cache ------------------------------------------------------------ */

/* Renderings being encoded, as "FRAME/KEY". Every MJPEG viewer asks for the
 * same new frame at the same moment: the first encodes, the others wait
 * for its result. Lock order: this lock, then a frame's cache_lock. */
static GMutex lensd_render_pending_lock;
static GCond lensd_render_pending_cond;
static GHashTable *lensd_render_pending;

typedef GBytes *(*LensdRenderFunc) (LensdFrame *frame, gconstpointer args,
    GError **error);

static GBytes *
lensd_render_cache_lookup (LensdFrame *frame, const gchar *key)
{
  GBytes *bytes = NULL;

  g_mutex_lock (&frame->cache_lock);
  if (frame->cache != NULL)
    bytes = g_hash_table_lookup (frame->cache, key);
  if (bytes != NULL)
    g_bytes_ref (bytes);
  g_mutex_unlock (&frame->cache_lock);
  return bytes;
}

/* Keeps @bytes (taken) under @key unless something is there already, and
 * returns a new reference to what the cache holds. */
static GBytes *
lensd_render_cache_insert (LensdFrame *frame, const gchar *key,
    GBytes *bytes)
{
  GBytes *kept;

  g_mutex_lock (&frame->cache_lock);
  if (frame->cache == NULL)
    frame->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
        (GDestroyNotify) g_bytes_unref);
  kept = g_hash_table_lookup (frame->cache, key);
  if (kept == NULL) {
    g_hash_table_insert (frame->cache, g_strdup (key), bytes);
    kept = bytes;
  } else {
    g_bytes_unref (bytes);
  }
  g_bytes_ref (kept);
  g_mutex_unlock (&frame->cache_lock);
  return kept;
}

/* The rendering @key of @frame: from the cache, or made by @render (outside
 * any lock) and cached. Failures are not cached: a later request tries
 * again. */
static GBytes *
lensd_render_cached (LensdFrame *frame, const gchar *key,
    LensdRenderFunc render, gconstpointer args, GError **error)
{
  gchar *pending_id = g_strdup_printf ("%p/%s", (gpointer) frame, key);
  GBytes *bytes;

  g_mutex_lock (&lensd_render_pending_lock);
  for (;;) {
    bytes = lensd_render_cache_lookup (frame, key);
    if (bytes != NULL) {
      g_mutex_unlock (&lensd_render_pending_lock);
      g_free (pending_id);
      return bytes;
    }
    if (lensd_render_pending == NULL
        || !g_hash_table_contains (lensd_render_pending, pending_id))
      break;
    g_cond_wait (&lensd_render_pending_cond, &lensd_render_pending_lock);
  }
  if (lensd_render_pending == NULL)
    lensd_render_pending = g_hash_table_new_full (g_str_hash, g_str_equal,
        g_free, NULL);
  /* the set owns pending_id from here */
  g_hash_table_add (lensd_render_pending, pending_id);
  g_mutex_unlock (&lensd_render_pending_lock);

  bytes = render (frame, args, error);
  if (bytes != NULL)
    bytes = lensd_render_cache_insert (frame, key, bytes);

  g_mutex_lock (&lensd_render_pending_lock);
  g_hash_table_remove (lensd_render_pending, pending_id);
  if (g_hash_table_size (lensd_render_pending) == 0)
    g_clear_pointer (&lensd_render_pending, g_hash_table_unref);
  g_cond_broadcast (&lensd_render_pending_cond);
  g_mutex_unlock (&lensd_render_pending_lock);
  return bytes;
}

/* ---- encoders ----------------------------------------------------------- */

typedef struct
{
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  gchar message[JMSG_LENGTH_MAX];
} LensdJpegError;

/* libjpeg's destination: the whole image into a growing GByteArray */
typedef struct
{
  struct jpeg_destination_mgr pub;
  GByteArray *out;
  JOCTET chunk[16384];
} LensdJpegDest;

static void
lensd_jpeg_error_exit (j_common_ptr cinfo)
{
  LensdJpegError *e = (LensdJpegError *) cinfo->err;

  e->mgr.format_message (cinfo, e->message);
  longjmp (e->jump, 1);
}

static void
lensd_jpeg_output_nothing (j_common_ptr cinfo)
{
}

static void
lensd_jpeg_dest_init (j_compress_ptr cinfo)
{
  LensdJpegDest *dest = (LensdJpegDest *) cinfo->dest;

  dest->pub.next_output_byte = dest->chunk;
  dest->pub.free_in_buffer = sizeof (dest->chunk);
}

static boolean
lensd_jpeg_dest_empty (j_compress_ptr cinfo)
{
  LensdJpegDest *dest = (LensdJpegDest *) cinfo->dest;

  /* called with the chunk full, whatever free_in_buffer says */
  g_byte_array_append (dest->out, dest->chunk, sizeof (dest->chunk));
  dest->pub.next_output_byte = dest->chunk;
  dest->pub.free_in_buffer = sizeof (dest->chunk);
  return TRUE;
}

static void
lensd_jpeg_dest_term (j_compress_ptr cinfo)
{
  LensdJpegDest *dest = (LensdJpegDest *) cinfo->dest;

  g_byte_array_append (dest->out, dest->chunk,
      sizeof (dest->chunk) - dest->pub.free_in_buffer);
}

/* The part of the JPEG encoding that libjpeg may leave by longjmp: it
 * holds no locals of its own that outlive a jump. */
static gboolean
lensd_jpeg_compress (struct jpeg_compress_struct *cinfo, LensdJpegError *jerr,
    const guint8 *rgb, gint width, gint height, gint stride)
{
  if (setjmp (jerr->jump) != 0)
    return FALSE;
  jpeg_create_compress (cinfo);
  cinfo->dest = &((LensdJpegDest *) cinfo->client_data)->pub;
  cinfo->image_width = (JDIMENSION) width;
  cinfo->image_height = (JDIMENSION) height;
  cinfo->input_components = 3;
  cinfo->in_color_space = JCS_RGB;
  jpeg_set_defaults (cinfo);
  jpeg_set_quality (cinfo, LENSD_JPEG_QUALITY, TRUE);
  jpeg_start_compress (cinfo, TRUE);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = (JSAMPROW) (rgb + (gsize) cinfo->next_scanline * stride);

    jpeg_write_scanlines (cinfo, &row, 1);
  }
  jpeg_finish_compress (cinfo);
  return TRUE;
}

static GBytes *
lensd_encode_jpeg (const guint8 *rgb, gint width, gint height, gint stride,
    GError **error)
{
  struct jpeg_compress_struct cinfo;
  LensdJpegError jerr;
  LensdJpegDest dest;
  gboolean ok;

  memset (&cinfo, 0, sizeof (cinfo));
  memset (&dest, 0, sizeof (dest));
  jerr.message[0] = '\0';
  cinfo.err = jpeg_std_error (&jerr.mgr);
  jerr.mgr.error_exit = lensd_jpeg_error_exit;
  jerr.mgr.output_message = lensd_jpeg_output_nothing;
  dest.pub.init_destination = lensd_jpeg_dest_init;
  dest.pub.empty_output_buffer = lensd_jpeg_dest_empty;
  dest.pub.term_destination = lensd_jpeg_dest_term;
  dest.out = g_byte_array_sized_new ((guint) MIN ((gsize) width * height,
          (gsize) G_MAXUINT / 2) / 4 + 1024);
  cinfo.client_data = &dest;

  ok = lensd_jpeg_compress (&cinfo, &jerr, rgb, width, height, stride);
  jpeg_destroy_compress (&cinfo);
  if (!ok) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "JPEG encoding of %dx%d failed: %s", width, height, jerr.message);
    g_byte_array_unref (dest.out);
    return NULL;
  }
  return g_byte_array_free_to_bytes (dest.out);
}

typedef struct
{
  gchar message[256];
} LensdPngError;

static void
lensd_png_error (png_structp png, png_const_charp message)
{
  LensdPngError *e = png_get_error_ptr (png);

  g_strlcpy (e->message, message, sizeof (e->message));
  png_longjmp (png, 1);
}

static void
lensd_png_warning (png_structp png, png_const_charp message)
{
}

static void
lensd_png_write (png_structp png, png_bytep data, png_size_t length)
{
  g_byte_array_append (png_get_io_ptr (png), data, (guint) length);
}

static void
lensd_png_flush (png_structp png)
{
}

/* The part of the PNG encoding that libpng may leave by longjmp. */
static gboolean
lensd_png_compress (png_structp png, png_infop info, const guint8 *rgb,
    gint width, gint height)
{
  if (setjmp (png_jmpbuf (png)) != 0)
    return FALSE;
  png_set_IHDR (png, info, (png_uint_32) width, (png_uint_32) height, 8,
      PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
      PNG_FILTER_TYPE_DEFAULT);
  /* served on demand: speed matters more than the last bytes */
  png_set_compression_level (png, 3);
  png_write_info (png, info);
  for (gint y = 0; y < height; y++)
    png_write_row (png, (png_const_bytep) (rgb + (gsize) y * width * 3));
  png_write_end (png, NULL);
  return TRUE;
}

/* @rgb: packed rows of @width * 3 bytes */
static GBytes *
lensd_encode_png (const guint8 *rgb, gint width, gint height, GError **error)
{
  LensdPngError perr = { "" };
  GByteArray *out = g_byte_array_sized_new (4096);
  png_structp png;
  png_infop info = NULL;
  gboolean ok = FALSE;

  png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &perr,
      lensd_png_error, lensd_png_warning);
  if (png != NULL)
    info = png_create_info_struct (png);
  if (png != NULL && info != NULL) {
    png_set_write_fn (png, out, lensd_png_write, lensd_png_flush);
    ok = lensd_png_compress (png, info, rgb, width, height);
  } else {
    g_strlcpy (perr.message, "out of memory", sizeof (perr.message));
  }
  png_destroy_write_struct (&png, &info);
  if (!ok) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "PNG encoding of %dx%d failed: %s", width, height, perr.message);
    g_byte_array_unref (out);
    return NULL;
  }
  return g_byte_array_free_to_bytes (out);
}

/* ---- maps: picking, ranges, geometry -------------------------------------- */

/* "8, 16, 32": the frame's levels, for messages */
static gchar *
lensd_render_level_list (LensdFrame *frame)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < frame->n_maps; i++)
    g_string_append_printf (s, "%s%d", i ? ", " : "",
        frame->maps[i]->stride);
  return g_string_free (s, FALSE);
}

static GstLensHeatmap *
lensd_render_find_level (LensdFrame *frame, gint level, GError **error)
{
  gchar *levels;

  if (frame->n_maps == 0) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_UNAVAILABLE,
        "frame %" G_GUINT64_FORMAT " of stream %s has no feature maps",
        frame->seq, frame->stream ? frame->stream : "?");
    return NULL;
  }
  for (guint i = 0; i < frame->n_maps; i++)
    if (frame->maps[i]->stride == level)
      return frame->maps[i];
  levels = lensd_render_level_list (frame);
  g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
      "level %d does not exist (levels: %s)", level, levels);
  g_free (levels);
  return NULL;
}

static const gchar *
lensd_heatmap_kind_name (LensdHeatmapKind kind)
{
  switch (kind) {
    case LENSD_HEATMAP_ACTIVATION:
      return "activation";
    case LENSD_HEATMAP_SCORE:
      return "score";
    case LENSD_HEATMAP_MOTION:
      return "motion";
  }
  return "?";
}

/* The grid @kind shows of @map, or NULL. Motion: the motion engine's
 * strength (|difference| over 4 thresholds, at most 1) where the map has
 * it, as lensoverlay shows it, else the difference (the activation of
 * motion maps). */
static const gfloat *
lensd_render_map_values (const GstLensHeatmap *map, LensdHeatmapKind kind)
{
  switch (kind) {
    case LENSD_HEATMAP_SCORE:
      return map->score;
    case LENSD_HEATMAP_MOTION:
      return map->score != NULL ? map->score : map->activation;
    case LENSD_HEATMAP_ACTIVATION:
    default:
      return map->activation;
  }
}

/* The range of @v (a grid of @map) that maps to the colormap's ends:
 * scores are 0..1 already, and a fixed range keeps a still scene dark;
 * activations have no scale, so each grid spans its own minimum to
 * maximum. Values that are not finite are left out. */
static void
lensd_render_value_range (const GstLensHeatmap *map, const gfloat *v,
    gsize n, gfloat *lo, gfloat *hi)
{
  gboolean any = FALSE;

  if (map != NULL && v == map->score) {
    *lo = 0.0f;
    *hi = 1.0f;
    return;
  }
  *lo = 0.0f;
  *hi = 0.0f;
  for (gsize i = 0; i < n; i++) {
    if (!isfinite (v[i]))
      continue;
    if (!any || v[i] < *lo)
      *lo = v[i];
    if (!any || v[i] > *hi)
      *hi = v[i];
    any = TRUE;
  }
}

/* @v mapped to 0..1 by [lo, hi] (a flat grid is all 0) */
static gfloat *
lensd_render_normalise (const gfloat *v, gsize n, gfloat lo, gfloat hi)
{
  gfloat *out = g_new (gfloat, n);
  gfloat inv = hi - lo > 1e-12f ? 1.0f / (hi - lo) : 0.0f;

  for (gsize i = 0; i < n; i++) {
    gfloat t = (v[i] - lo) * inv;

    out[i] = isfinite (t) ? CLAMP (t, 0.0f, 1.0f) : 0.0f;
  }
  return out;
}

/* Where the frame lies in the model input: input x = frame x * scale_x +
 * pad_x. Frames without the meta's geometry (none recorded) are taken as
 * stretched over the input, or over @map's grid. */
typedef struct
{
  gfloat scale_x, scale_y, pad_x, pad_y;
} LensdRenderGeometry;

static void
lensd_render_geometry (LensdFrame *frame, gint width, gint height,
    const GstLensHeatmap *map, LensdRenderGeometry *g)
{
  gint fw = frame->width > 0 ? frame->width : width;
  gint fh = frame->height > 0 ? frame->height : height;

  if (frame->scale_x > 0.0f && frame->scale_y > 0.0f) {
    g->scale_x = frame->scale_x;
    g->scale_y = frame->scale_y;
    g->pad_x = frame->pad_x;
    g->pad_y = frame->pad_y;
  } else {
    gint iw = frame->input_width > 0 ? frame->input_width
        : map->width * map->stride;
    gint ih = frame->input_height > 0 ? frame->input_height
        : map->height * map->stride;

    g->scale_x = (gfloat) iw / fw;
    g->scale_y = (gfloat) ih / fh;
    g->pad_x = g->pad_y = 0.0f;
  }
  /* the geometry is for frame->width x height; an image of another size
   * (the buffer's caps differ) is scaled onto it */
  g->scale_x *= (gfloat) fw / width;
  g->scale_y *= (gfloat) fh / height;
}

static GstLensHeatmap *
lensd_render_finest (LensdFrame *frame)
{
  GstLensHeatmap *finest = NULL;

  for (guint i = 0; i < frame->n_maps; i++)
    if (frame->maps[i]->stride > 0 && (finest == NULL
            || frame->maps[i]->stride < finest->stride))
      finest = frame->maps[i];
  return finest;
}

/* ---- the JPEG snapshot ---------------------------------------------------- */

/* Draws each primitive through a layout covering only its own rectangle
 * (clipped to the frame): the reference visits every pixel of its layout
 * for every primitive, which over a whole frame would cost pixels times
 * primitives. */
static void
lensd_render_draw_prims (guint8 *rgb, gint stride, gint width, gint height,
    const LensOverlayPrim *prims, guint n)
{
  for (guint i = 0; i < n; i++) {
    LensOverlayLayout sub;
    LensOverlayPrim q = prims[i];
    gint x0 = CLAMP (q.x0, 0, width), x1 = CLAMP (q.x1, 0, width);
    gint y0 = CLAMP (q.y0, 0, height), y1 = CLAMP (q.y1, 0, height);
    gsize offset = (gsize) y0 * stride + (gsize) x0 * 3;

    if (x0 >= x1 || y0 >= y1)
      continue;
    if (lens_overlay_layout_init (&sub, LENS_PIXEL_RGB, x1 - x0, y1 - y0,
            &stride, &offset, NULL) != LENS_OK)
      continue;
    q.x0 -= x0;
    q.x1 -= x0;
    q.y0 -= y0;
    q.y1 -= y0;
    lens_overlay_draw_ref (rgb, &sub, &q, 1);
  }
}

/* Boxes in their class's colour, "label 0.87" above each (inside it at
 * the top of the frame), in dark or light text by the colour's luma. */
static void
lensd_render_draw_detections (LensdFrame *frame, guint8 *rgb, gint stride,
    gint width, gint height)
{
  GArray *prims = g_array_new (FALSE, FALSE, sizeof (LensOverlayPrim));
  /* 1 px colour lines do not survive JPEG's chroma subsampling */
  gint thick = MAX (2, height / 360);
  gint scale = MAX (1, height / 360);
  gint cell_h = LENS_OVERLAY_GLYPH_H * scale;
  /* boxes are in frame->width x height pixels; the buffer may have
   * another size (its caps changed since the inference) */
  gdouble sx = frame->width > 0 ? (gdouble) width / frame->width : 1.0;
  gdouble sy = frame->height > 0 ? (gdouble) height / frame->height : 1.0;

  for (guint i = 0; i < frame->n_detections; i++) {
    const LensdDetection *d = &frame->detections[i];
    gint x = (gint) lround (d->x * sx), y = (gint) lround (d->y * sy);
    gint w = (gint) lround (d->w * sx), h = (gint) lround (d->h * sy);
    guint32 colour = lens_overlay_class_colour (d->class_id);
    guint luma = (((colour >> 16) & 0xff) * 299 + ((colour >> 8) & 0xff) * 587
        + (colour & 0xff) * 114) / 1000;
    gchar *text = d->label != NULL
        ? g_strdup_printf ("%s %.2f", d->label, d->score)
        : g_strdup_printf ("%d %.2f", d->class_id, d->score);
    gint ty = y - cell_h >= 0 ? y - cell_h : y;
    /* a label that would run off the right edge moves left */
    gint tx = MAX (0, MIN (x, width - (gint) strlen (text)
            * LENS_OVERLAY_GLYPH_W * scale));
    LensOverlayPrim p[4 + 64];
    gint n;

    n = lens_overlay_box (p, x, y, w, h, thick, colour);
    n += lens_overlay_text (p + n, G_N_ELEMENTS (p) - n, tx, ty, text,
        scale, luma > 140 ? 0x000000 : 0xffffff, (gint32) colour);
    g_array_append_vals (prims, p, n);
    g_free (text);
  }
  lensd_render_draw_prims (rgb, stride, width, height,
      (const LensOverlayPrim *) prims->data, prims->len);
  g_array_unref (prims);
}

/* The finest level blended over the frame: its score where the model has
 * one (0..1), else its activation over its own range. */
static void
lensd_render_draw_heatmap (LensdFrame *frame, guint8 *rgb,
    const LensOverlayLayout *layout)
{
  GstLensHeatmap *map = lensd_render_finest (frame);
  LensOverlayHeatmap hm;
  LensdRenderGeometry g;
  const gfloat *v;
  gsize n;
  gfloat lo, hi, *norm;

  if (map == NULL || map->activation == NULL || map->width <= 0
      || map->height <= 0)
    return;
  v = map->score != NULL ? map->score : map->activation;
  n = (gsize) map->width * map->height;
  lensd_render_value_range (map, v, n, &lo, &hi);
  /* normalised here, where values that are not finite are taken care of */
  norm = lensd_render_normalise (v, n, lo, hi);
  memset (&hm, 0, sizeof (hm));
  hm.grid = norm;
  hm.width = map->width;
  hm.height = map->height;
  hm.stride = (float) map->stride;
  hm.lo = 0.0f;
  hm.hi = 1.0f;
  lensd_render_geometry (frame, layout->width, layout->height, map, &g);
  hm.scale_x = g.scale_x;
  hm.scale_y = g.scale_y;
  hm.pad_x = g.pad_x;
  hm.pad_y = g.pad_y;
  lens_overlay_heatmap_ref (rgb, layout, &hm, LENS_COLORMAP_TURBO,
      LENSD_SNAPSHOT_HEAT_ALPHA);
  g_free (norm);
}

/* The frame's pixels as RGB in @rgb (a new buffer of @rgb_info). */
static gboolean
lensd_render_to_rgb (LensdFrame *frame, GstVideoInfo *rgb_info,
    GstBuffer **rgb, GError **error)
{
  GstVideoInfo *info = &frame->info;
  GstVideoFrame src, dst;
  GstVideoConverter *converter;
  gint width = GST_VIDEO_INFO_WIDTH (info);
  gint height = GST_VIDEO_INFO_HEIGHT (info);

  if (frame->buffer == NULL) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_UNAVAILABLE,
        "frame %" G_GUINT64_FORMAT " of stream %s has no pixels",
        frame->seq, frame->stream ? frame->stream : "?");
    return FALSE;
  }
  if (GST_VIDEO_INFO_FORMAT (info) == GST_VIDEO_FORMAT_UNKNOWN
      || GST_VIDEO_INFO_FORMAT (info) == GST_VIDEO_FORMAT_ENCODED
      || width <= 0 || height <= 0
      || (gint64) width * height > LENSD_RENDER_MAX_PIXELS) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "frame %" G_GUINT64_FORMAT " of stream %s is not raw video of a "
        "usable size (%s %dx%d)", frame->seq,
        frame->stream ? frame->stream : "?", GST_VIDEO_INFO_NAME (info)
        ? GST_VIDEO_INFO_NAME (info) : "no format", width, height);
    return FALSE;
  }
  gst_video_info_init (rgb_info);
  if (!gst_video_info_set_format (rgb_info, GST_VIDEO_FORMAT_RGB, width,
          height)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "no RGB layout for %dx%d", width, height);
    return FALSE;
  }
  /* the converter only converts pixels: it refuses infos that differ in
   * timing or interlacing, which frames from real streams carry */
  GST_VIDEO_INFO_FPS_N (rgb_info) = GST_VIDEO_INFO_FPS_N (info);
  GST_VIDEO_INFO_FPS_D (rgb_info) = GST_VIDEO_INFO_FPS_D (info);
  GST_VIDEO_INFO_INTERLACE_MODE (rgb_info) =
      GST_VIDEO_INFO_INTERLACE_MODE (info);
  if (!gst_video_frame_map (&src, info, frame->buffer, GST_MAP_READ)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "the buffer of frame %" G_GUINT64_FORMAT " (%" G_GSIZE_FORMAT
        " bytes) does not hold %s %dx%d", frame->seq,
        gst_buffer_get_size (frame->buffer), GST_VIDEO_INFO_NAME (info),
        width, height);
    return FALSE;
  }
  converter = gst_video_converter_new (info, rgb_info, NULL);
  if (converter == NULL) {
    gst_video_frame_unmap (&src);
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "no conversion from %s to RGB", GST_VIDEO_INFO_NAME (info));
    return FALSE;
  }
  *rgb = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (rgb_info),
      NULL);
  if (*rgb == NULL || !gst_video_frame_map (&dst, rgb_info, *rgb,
          GST_MAP_WRITE)) {
    gst_video_converter_free (converter);
    gst_video_frame_unmap (&src);
    g_clear_pointer (rgb, gst_buffer_unref);
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "cannot allocate an RGB frame of %dx%d", width, height);
    return FALSE;
  }
  gst_video_converter_frame (converter, &src, &dst);
  gst_video_frame_unmap (&dst);
  gst_video_frame_unmap (&src);
  gst_video_converter_free (converter);
  return TRUE;
}

static GBytes *
lensd_render_snapshot (LensdFrame *frame, gconstpointer args,
    GError **error)
{
  LensdOverlayFlags overlay = GPOINTER_TO_UINT (args);
  GstVideoInfo rgb_info;
  GstBuffer *rgb = NULL;
  GstMapInfo map;
  LensOverlayLayout layout;
  gint width, height, stride;
  GBytes *jpeg = NULL;

  if (!lensd_render_to_rgb (frame, &rgb_info, &rgb, error))
    return NULL;
  width = GST_VIDEO_INFO_WIDTH (&rgb_info);
  height = GST_VIDEO_INFO_HEIGHT (&rgb_info);
  stride = GST_VIDEO_INFO_PLANE_STRIDE (&rgb_info, 0);
  if (!gst_buffer_map (rgb, &map, GST_MAP_READWRITE)) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "cannot map the RGB frame");
    gst_buffer_unref (rgb);
    return NULL;
  }
  if (lens_overlay_layout_init (&layout, LENS_PIXEL_RGB, width, height,
          &stride, NULL, NULL) == LENS_OK) {
    /* the heatmap first: boxes and labels stay legible over it */
    if (overlay & LENSD_OVERLAY_HEATMAP)
      lensd_render_draw_heatmap (frame, map.data, &layout);
    if (overlay & LENSD_OVERLAY_BOXES)
      lensd_render_draw_detections (frame, map.data, stride, width, height);
    jpeg = lensd_encode_jpeg (map.data, width, height, stride, error);
  } else {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "no overlay layout for RGB %dx%d", width, height);
  }
  gst_buffer_unmap (rgb, &map);
  gst_buffer_unref (rgb);
  return jpeg;
}

GBytes *
lensd_frame_snapshot_jpeg (LensdFrame *frame, LensdOverlayFlags overlay,
    GError **error)
{
  gchar key[32];

  g_return_val_if_fail (frame != NULL, NULL);

  overlay &= LENSD_OVERLAY_BOXES | LENSD_OVERLAY_HEATMAP;
  g_snprintf (key, sizeof (key), "jpeg:%u", (guint) overlay);
  return lensd_render_cached (frame, key, lensd_render_snapshot,
      GUINT_TO_POINTER (overlay), error);
}

/* ---- heatmap PNGs --------------------------------------------------------- */

typedef struct
{
  gint level;
  LensdHeatmapKind kind;
  gboolean grid_scale;
} LensdHeatmapArgs;

/* Bilinear samples of @grid (cells of @stride input pixels, values at
 * cell centres) at input coordinates @xs x @ys, kept where larger than
 * what @out holds. */
static void
lensd_render_sample_max (gfloat *out, const gfloat *xs, gint out_w,
    const gfloat *ys, gint out_h, const gfloat *grid, gint w, gint h,
    gint stride)
{
  gint *x0 = g_new (gint, out_w), *x1 = g_new (gint, out_w);
  gfloat *fx = g_new (gfloat, out_w);

  for (gint x = 0; x < out_w; x++) {
    gfloat gx = CLAMP (xs[x] / stride - 0.5f, 0.0f, (gfloat) (w - 1));

    x0[x] = (gint) gx;
    x1[x] = MIN (x0[x] + 1, w - 1);
    fx[x] = gx - (gfloat) x0[x];
  }
  for (gint y = 0; y < out_h; y++) {
    gfloat gy = CLAMP (ys[y] / stride - 0.5f, 0.0f, (gfloat) (h - 1));
    gint y0 = (gint) gy, y1 = MIN (y0 + 1, h - 1);
    gfloat fy = gy - (gfloat) y0;
    const gfloat *r0 = grid + (gsize) y0 * w, *r1 = grid + (gsize) y1 * w;
    gfloat *o = out + (gsize) y * out_w;

    for (gint x = 0; x < out_w; x++) {
      gfloat top = r0[x0[x]] + (r0[x1[x]] - r0[x0[x]]) * fx[x];
      gfloat bot = r1[x0[x]] + (r1[x1[x]] - r1[x0[x]]) * fx[x];
      gfloat v = top + (bot - top) * fy;

      o[x] = MAX (o[x], v);
    }
  }
  g_free (x0);
  g_free (x1);
  g_free (fx);
}

/* The maps a heatmap request shows, checked: the one level asked for, or
 * every level with a grid of @kind for LENSD_LEVEL_FUSED. */
static GPtrArray *
lensd_render_pick_maps (LensdFrame *frame, gint level, LensdHeatmapKind kind,
    GError **error)
{
  GPtrArray *maps;

  if (kind != LENSD_HEATMAP_ACTIVATION && kind != LENSD_HEATMAP_SCORE
      && kind != LENSD_HEATMAP_MOTION) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "unknown heatmap kind %d (kinds: activation, score, motion)",
        (gint) kind);
    return NULL;
  }
  if (level < 0) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "level %d is not a stride", level);
    return NULL;
  }
  if (kind == LENSD_HEATMAP_MOTION
      && g_strcmp0 (frame->model_name, "motion") != 0) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "kind motion needs the motion engine; the frames come from model %s",
        frame->model_name ? frame->model_name : "(unnamed)");
    return NULL;
  }
  if (frame->n_maps == 0) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_UNAVAILABLE,
        "frame %" G_GUINT64_FORMAT " of stream %s has no feature maps",
        frame->seq, frame->stream ? frame->stream : "?");
    return NULL;
  }

  maps = g_ptr_array_new ();
  if (level != LENSD_LEVEL_FUSED) {
    GstLensHeatmap *map = lensd_render_find_level (frame, level, error);

    if (map == NULL) {
      g_ptr_array_unref (maps);
      return NULL;
    }
    g_ptr_array_add (maps, map);
  } else {
    for (guint i = 0; i < frame->n_maps; i++)
      if (frame->maps[i]->stride > 0)
        g_ptr_array_add (maps, frame->maps[i]);
  }
  for (guint i = 0; i < maps->len; i++) {
    GstLensHeatmap *map = g_ptr_array_index (maps, i);

    if (map->width > 0 && map->height > 0
        && lensd_render_map_values (map, kind) != NULL)
      continue;
    if (level != LENSD_LEVEL_FUSED) {
      if (map->width > 0 && map->height > 0)
        g_set_error (error, LENSD_ERROR, LENSD_ERROR_UNAVAILABLE,
            "level %d has no %s map (model %s computes none)", level,
            lensd_heatmap_kind_name (kind),
            frame->model_name ? frame->model_name : "(unnamed)");
      else
        g_set_error (error, LENSD_ERROR, LENSD_ERROR_UNAVAILABLE,
            "level %d has an empty grid (%dx%d)", level, map->width,
            map->height);
      g_ptr_array_unref (maps);
      return NULL;
    }
    /* fused: the levels that have one */
    g_ptr_array_remove_index (maps, i--);
  }
  if (maps->len == 0) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_UNAVAILABLE,
        "no level has a %s map (model %s computes none)",
        lensd_heatmap_kind_name (kind),
        frame->model_name ? frame->model_name : "(unnamed)");
    g_ptr_array_unref (maps);
    return NULL;
  }
  return maps;
}

/* Values 0..1 through turbo into packed RGB */
static guint8 *
lensd_render_colormap (const gfloat *v, gsize n, LensColormap colormap)
{
  guint8 lut[256 * 4];
  guint8 *rgb = g_new (guint8, n * 3);

  lens_overlay_colormap_lut (colormap, FALSE, lut);
  for (gsize i = 0; i < n; i++) {
    gint idx = (gint) (CLAMP (v[i], 0.0f, 1.0f) * 255.0f + 0.5f);

    memcpy (rgb + i * 3, lut + idx * 4, 3);
  }
  return rgb;
}

static GBytes *
lensd_render_heatmap (LensdFrame *frame, gconstpointer args, GError **error)
{
  const LensdHeatmapArgs *a = args;
  GPtrArray *maps;
  GstLensHeatmap *finest = NULL;
  gfloat *xs, *ys, *values;
  gint out_w, out_h;
  guint8 *rgb;
  GBytes *png;

  maps = lensd_render_pick_maps (frame, a->level, a->kind, error);
  if (maps == NULL)
    return NULL;
  for (guint i = 0; i < maps->len; i++) {
    GstLensHeatmap *map = g_ptr_array_index (maps, i);

    if (finest == NULL || map->stride < finest->stride)
      finest = map;
  }

  /* where each output pixel lies in the model input */
  if (a->grid_scale) {
    out_w = finest->width;
    out_h = finest->height;
  } else {
    out_w = frame->width > 0 ? frame->width
        : GST_VIDEO_INFO_WIDTH (&frame->info);
    out_h = frame->height > 0 ? frame->height
        : GST_VIDEO_INFO_HEIGHT (&frame->info);
  }
  if (out_w <= 0 || out_h <= 0
      || (gint64) out_w * out_h > LENSD_RENDER_MAX_PIXELS) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "no heatmap of %dx%d pixels", out_w, out_h);
    g_ptr_array_unref (maps);
    return NULL;
  }
  xs = g_new (gfloat, out_w);
  ys = g_new (gfloat, out_h);
  if (a->grid_scale) {
    for (gint x = 0; x < out_w; x++)
      xs[x] = ((gfloat) x + 0.5f) * finest->stride;
    for (gint y = 0; y < out_h; y++)
      ys[y] = ((gfloat) y + 0.5f) * finest->stride;
  } else {
    LensdRenderGeometry g;

    lensd_render_geometry (frame, out_w, out_h, finest, &g);
    for (gint x = 0; x < out_w; x++)
      xs[x] = ((gfloat) x + 0.5f) * g.scale_x + g.pad_x;
    for (gint y = 0; y < out_h; y++)
      ys[y] = ((gfloat) y + 0.5f) * g.scale_y + g.pad_y;
  }

  /* each level normalised on its own, resampled, fused by maximum */
  values = g_new0 (gfloat, (gsize) out_w * out_h);
  for (guint i = 0; i < maps->len; i++) {
    GstLensHeatmap *map = g_ptr_array_index (maps, i);
    const gfloat *v = lensd_render_map_values (map, a->kind);
    gsize n = (gsize) map->width * map->height;
    gfloat lo, hi, *norm;

    lensd_render_value_range (map, v, n, &lo, &hi);
    norm = lensd_render_normalise (v, n, lo, hi);
    lensd_render_sample_max (values, xs, out_w, ys, out_h, norm, map->width,
        map->height, map->stride);
    g_free (norm);
  }
  rgb = lensd_render_colormap (values, (gsize) out_w * out_h,
      LENS_COLORMAP_TURBO);
  png = lensd_encode_png (rgb, out_w, out_h, error);
  g_free (rgb);
  g_free (values);
  g_free (xs);
  g_free (ys);
  g_ptr_array_unref (maps);
  return png;
}

GBytes *
lensd_frame_heatmap_png (LensdFrame *frame, gint level, LensdHeatmapKind kind,
    gboolean grid_scale, GError **error)
{
  LensdHeatmapArgs args = { level, kind, grid_scale != FALSE };
  GPtrArray *maps;
  gchar key[64];

  g_return_val_if_fail (frame != NULL, NULL);

  /* refused requests fail fast, outside the cache */
  maps = lensd_render_pick_maps (frame, level, kind, error);
  if (maps == NULL)
    return NULL;
  g_ptr_array_unref (maps);
  g_snprintf (key, sizeof (key), "heat:%d:%d:%d", level, (gint) kind,
      args.grid_scale);
  return lensd_render_cached (frame, key, lensd_render_heatmap, &args,
      error);
}

/* ---- the feature-map grid ------------------------------------------------- */

#define LENSD_FMAP_BORDER 0x808080

/* Columns and rows of a near-square grid of @n tiles */
static void
lensd_render_grid_shape (gint n, gint *cols, gint *rows)
{
  *cols = (gint) ceil (sqrt ((double) n));
  while (*cols > 1 && (*cols - 1) * (*cols - 1) >= n)
    (*cols)--;
  *rows = (n + *cols - 1) / *cols;
}

static GBytes *
lensd_render_featuremaps (LensdFrame *frame, gconstpointer args,
    GError **error)
{
  GstLensHeatmap *map = (GstLensHeatmap *) args;
  gint n = map->n_channels, w = map->width, h = map->height;
  gint cols, rows, out_w, out_h;
  gsize cells = (gsize) w * h;
  guint8 lut[256 * 4];
  guint8 *rgb;
  GBytes *png;

  lensd_render_grid_shape (n, &cols, &rows);
  out_w = cols * (w + 1) + 1;
  out_h = rows * (h + 1) + 1;
  rgb = g_new (guint8, (gsize) out_w * out_h * 3);
  for (gsize i = 0; i < (gsize) out_w * out_h; i++) {
    rgb[i * 3 + 0] = (LENSD_FMAP_BORDER >> 16) & 0xff;
    rgb[i * 3 + 1] = (LENSD_FMAP_BORDER >> 8) & 0xff;
    rgb[i * 3 + 2] = LENSD_FMAP_BORDER & 0xff;
  }
  lens_overlay_colormap_lut (LENS_COLORMAP_INFERNO, FALSE, lut);
  for (gint c = 0; c < n; c++) {
    const gfloat *v = map->channels + c * cells;
    gint tx = 1 + (c % cols) * (w + 1), ty = 1 + (c / cols) * (h + 1);
    gfloat lo, hi, *norm;

    lensd_render_value_range (NULL, v, cells, &lo, &hi);
    norm = lensd_render_normalise (v, cells, lo, hi);
    for (gint y = 0; y < h; y++)
      for (gint x = 0; x < w; x++) {
        gint idx = (gint) (norm[(gsize) y * w + x] * 255.0f + 0.5f);

        memcpy (rgb + ((gsize) (ty + y) * out_w + tx + x) * 3, lut + idx * 4,
            3);
      }
    g_free (norm);
  }
  png = lensd_encode_png (rgb, out_w, out_h, error);
  g_free (rgb);
  return png;
}

GBytes *
lensd_frame_featuremaps_png (LensdFrame *frame, gint level, GError **error)
{
  GstLensHeatmap *map;
  gint cols, rows;
  gchar key[32];

  g_return_val_if_fail (frame != NULL, NULL);

  if (level <= 0) {
    gchar *levels = lensd_render_level_list (frame);

    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "feature maps are per level, not %s (levels: %s)",
        level == LENSD_LEVEL_FUSED ? "fused" : "a negative stride", levels);
    g_free (levels);
    return NULL;
  }
  map = lensd_render_find_level (frame, level, error);
  if (map == NULL)
    return NULL;
  if (map->n_channels <= 0 || map->channels == NULL || map->width <= 0
      || map->height <= 0) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_UNAVAILABLE,
        "level %d has no feature channels (the engine keeps none)", level);
    return NULL;
  }
  lensd_render_grid_shape (map->n_channels, &cols, &rows);
  if ((gint64) (cols * ((gint64) map->width + 1) + 1)
      * (rows * ((gint64) map->height + 1) + 1) > LENSD_RENDER_MAX_PIXELS) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_INVALID,
        "level %d: %d channels of %dx%d make too large an image", level,
        map->n_channels, map->width, map->height);
    return NULL;
  }
  g_snprintf (key, sizeof (key), "fmap:%d", level);
  return lensd_render_cached (frame, key, lensd_render_featuremaps, map,
      error);
}
