/* lens-check.h: what every Check suite of lens shares: an OpenCL context
 * fixture, the runner, and where the test data (../shared) lives. */
#ifndef LENS_CHECK_H
#define LENS_CHECK_H

#include "lens.h"

#include <check.h>

/* The context opened by lens_check_setup (a checked fixture) and closed by
 * lens_check_teardown; the test aborts when no OpenCL device exists. */
extern LensContext *lens_check_ctx;
void lens_check_setup (void);
void lens_check_teardown (void);

/* Runs @suite in this process (PoCL's compiled programs are then reused
 * across tests; fixtures may hold threads and sockets), prints every
 * failure again on stderr at the end, and returns the exit status for
 * main (). */
int lens_check_run (Suite *suite);

/* lens_check_shared_dir () is in lens-shared.h: GStreamer tests, which
 * cannot link Check, use it too. */
#include "lens-shared.h"

#endif /* LENS_CHECK_H */
