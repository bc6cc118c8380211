/* gstlens.c: the lens plugin: registers its elements. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#include "gstlens.h"
#include "gstlensdetect.h"
#include "gstlensoverlay.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  /* the meta is registered with the plugin, so that other elements and
   * applications find it by name (gst_meta_get_info) and can attach it */
  gst_lens_feature_map_meta_get_info ();
  if (!gst_element_register (plugin, "lensdetect", GST_RANK_NONE,
          GST_TYPE_LENS_DETECT))
    return FALSE;
  return gst_element_register (plugin, "lensoverlay", GST_RANK_NONE,
      GST_TYPE_LENS_OVERLAY);
}

#ifndef PACKAGE
#define PACKAGE "lens"
#endif

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, lens,
    "Real-time video analytics: object detection and feature-map heatmaps "
    "on OpenCL", plugin_init, LENS_VERSION, "LGPL", "lens",
    "Unknown package origin")
