/* gstlens.c: the lens plugin: registers its elements. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#include "gstlensdetect.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  return gst_element_register (plugin, "lensdetect", GST_RANK_NONE,
      GST_TYPE_LENS_DETECT);
}

#ifndef PACKAGE
#define PACKAGE "lens"
#endif

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, lens,
    "Real-time video analytics: object detection and feature-map heatmaps "
    "on OpenCL", plugin_init, LENS_VERSION, "LGPL", "lens",
    "Unknown package origin")
