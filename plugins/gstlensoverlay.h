/* gstlensoverlay.h: the lensoverlay element (an in-place video filter that
 * draws the detections and a heatmap from the metas on each frame). */
#ifndef __GST_LENS_OVERLAY_H__
#define __GST_LENS_OVERLAY_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

#include "lens.h"

G_BEGIN_DECLS

#define GST_TYPE_LENS_OVERLAY (gst_lens_overlay_get_type ())
G_DECLARE_FINAL_TYPE (GstLensOverlay, gst_lens_overlay, GST, LENS_OVERLAY,
    GstVideoFilter);

typedef enum
{
  GST_LENS_OVERLAY_KIND_ACTIVATION,
  GST_LENS_OVERLAY_KIND_SCORE,
  GST_LENS_OVERLAY_KIND_MOTION,
} GstLensOverlayKind;

#define GST_TYPE_LENS_OVERLAY_KIND (gst_lens_overlay_kind_get_type ())
GType gst_lens_overlay_kind_get_type (void);
#define GST_TYPE_LENS_OVERLAY_COLORMAP (gst_lens_overlay_colormap_get_type ())
GType gst_lens_overlay_colormap_get_type (void);

struct _GstLensOverlay
{
  GstVideoFilter parent;

  /* properties, under the object lock */
  gchar *level;
  GstLensOverlayKind kind;
  LensColormap colormap;
  gfloat alpha;
  gboolean show_boxes;
  gboolean show_labels;
  gchar *device;

  /* from start () to stop () */
  LensContext *ctx;
  LensOverlay *overlay;
  cl_mem frame;                 /* the frame on the device */
  size_t frame_bytes;
  GArray *prims;                /* LensOverlayPrim, reused */
  GArray *fused;                /* gfloat, reused */

  /* from set_info () */
  LensPixelFormat pixel_format;
};

G_END_DECLS

#endif /* __GST_LENS_OVERLAY_H__ */
