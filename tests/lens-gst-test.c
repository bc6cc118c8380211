/* lens-gst-test.c: frames the GstHarness suites share (see
 * lens-gst-test.h). */
#include "lens-gst-test.h"

#include <gst/video/video.h>
#include <string.h>

GstBuffer *
lens_gst_test_motion_frame (GRand * rand, gint x, GstClockTime pts)
{
  GstVideoInfo info;
  GstBuffer *buf;
  GstMapInfo map;
  gint stride;

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGB, 320, 240);
  stride = GST_VIDEO_INFO_PLANE_STRIDE (&info, 0);
  buf = gst_buffer_new_allocate (NULL, info.size, NULL);
  gst_buffer_map (buf, &map, GST_MAP_WRITE);
  for (gint r = 0; r < 240; r++)
    for (gint c = 0; c < 320 * 3; c++)
      map.data[r * stride + c] = (guint8) (100 + g_rand_int_range (rand, -2,
              3));
  if (x >= 0)
    for (gint r = 100; r < 132; r++)
      memset (map.data + r * stride + x * 3, 255, 32 * 3);
  gst_buffer_unmap (buf, &map);
  GST_BUFFER_PTS (buf) = pts;
  return buf;
}
