/* lens-gst-test.h: frames the GstHarness suites (lensdetect,
 * lensoverlay) share. */
#ifndef LENS_GST_TEST_H
#define LENS_GST_TEST_H

#include <gst/gst.h>

/* A grey 320x240 RGB frame with noise of +-2 levels and, when @x >= 0, a
 * white 32x32 square at (@x, 100). */
GstBuffer *lens_gst_test_motion_frame (GRand *rand, gint x, GstClockTime pts);

#endif /* LENS_GST_TEST_H */
