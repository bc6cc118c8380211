/* lens-check.c: the fixture, runner and test-data lookup shared by the
 * Check suites (see lens-check.h). */
#include "lens-check.h"

#include <stdlib.h>

LensContext *lens_check_ctx;

void
lens_check_setup (void)
{
  LensError err = LENS_ERROR_INIT;

  if (lens_context_new (NULL, &lens_check_ctx, &err) != LENS_OK)
    ck_abort_msg ("no OpenCL device: %s", err.message);
}

void
lens_check_teardown (void)
{
  lens_context_free (lens_check_ctx);
  lens_check_ctx = NULL;
}

int
lens_check_run (Suite * suite)
{
  SRunner *sr = srunner_create (suite);
  int failed;

  srunner_set_fork_status (sr, CK_NOFORK);
  srunner_run_all (sr, CK_NORMAL);
  failed = srunner_ntests_failed (sr);
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
