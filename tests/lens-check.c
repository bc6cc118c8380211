/* lens-check.c: the fixture, runner and test-data lookup shared by the
 * Check suites (see lens-check.h). */
#include "lens-check.h"

#include <stdio.h>
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
  if (failed > 0) {
    /* again on stderr, after whatever the code under test logged there: a
     * test log shown by its tail (meson --print-errorlogs) would otherwise
     * lose Check's summary, printed on stdout before it */
    TestResult **results = srunner_failures (sr);

    for (int i = 0; i < failed; i++)
      fprintf (stderr, "FAILED %s:%d (%s): %s\n", tr_lfile (results[i]),
          tr_lno (results[i]), tr_tcname (results[i]), tr_msg (results[i]));
    free (results);
  }
  srunner_free (sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
