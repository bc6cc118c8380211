/* gstlensdetect.h: the lensdetect element (an in-place video filter that
 * runs a lens detector on frames and attaches the results as metas and
 * bus messages). */
#ifndef __GST_LENS_DETECT_H__
#define __GST_LENS_DETECT_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

#include "lens.h"

G_BEGIN_DECLS

#define GST_TYPE_LENS_DETECT (gst_lens_detect_get_type ())
G_DECLARE_FINAL_TYPE (GstLensDetect, gst_lens_detect, GST, LENS_DETECT,
    GstVideoFilter);

typedef enum
{
  GST_LENS_DETECT_MODE_AUTO,    /* detect with a model, else motion */
  GST_LENS_DETECT_MODE_DETECT,
  GST_LENS_DETECT_MODE_MOTION,
} GstLensDetectMode;

#define GST_TYPE_LENS_DETECT_MODE (gst_lens_detect_mode_get_type ())
GType gst_lens_detect_mode_get_type (void);

/* A frame copied for the worker, and what came of it. */
typedef struct _GstLensDetectJob GstLensDetectJob;
typedef struct _GstLensDetectResult GstLensDetectResult;
typedef struct _GstLensModelEntry GstLensModelEntry;

struct _GstLensDetect
{
  GstVideoFilter parent;

  /* properties, under the object lock */
  gchar *model;
  gchar *labels;
  gchar *device;
  gfloat conf_threshold;
  gfloat iou_threshold;
  guint interval;
  GstLensDetectMode mode;
  gboolean feature_maps;
  gboolean sync_inference;
  guint feature_channels;
  GstStructure *model_info;     /* from start () to stop (), else NULL */

  /* from start () to stop () */
  GstLensModelEntry *entry;     /* the shared model (mode=detect) */
  LensDetector *detector;       /* this instance's (own queue, buffers) */
  LensContext *motion_ctx;      /* mode=motion: this instance's context */
  LensMotion *motion;           /* mode=motion: the engine (no model) */
  gboolean sync;                /* sync-inference as it was at start */
  gboolean feature_maps_on;
  guint feature_channels_on;    /* with feature maps on, else 0 */
  guint64 frame_index;

  /* from set_info () */
  LensPixelFormat pixel_format;

  /* the worker and its single-slot mailbox, under lock */
  GMutex lock;
  GCond cond;
  GThread *worker;
  gboolean stopping;
  gboolean busy;                /* the worker is running a job */
  GstLensDetectJob *pending;    /* the newest frame not yet taken */
  GstLensDetectJob *spare;      /* a finished job kept for reuse */
  GstLensDetectResult *ready;   /* the newest result not yet attached */
  gboolean failed;              /* the worker hit an error */

  /* counters, under lock */
  guint64 frames_in;
  guint64 inferred;
  guint64 failed_count;
  guint64 dropped_busy;
  guint64 dropped_interval;
};

G_END_DECLS

#endif /* __GST_LENS_DETECT_H__ */
