/* lens-shared.h: where the test data (../shared) lives, for every test
 * (Check suites and GstHarness suites alike). */
#ifndef LENS_SHARED_H
#define LENS_SHARED_H

#include <glib.h>

/* The test data directory: $LENS_SHARED_DIR when set (and nothing else
 * then), else ../shared from the working directory, else ../shared beside
 * the source tree; it must hold models/ and images/. NULL when absent:
 * tests that need it skip (exit 77) with a message. */
char *lens_check_shared_dir (void);

#endif /* LENS_SHARED_H */
