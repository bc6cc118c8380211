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

static gboolean
holds_test_data (const char *dir)
{
  char *models = g_build_filename (dir, "models", NULL);
  char *images = g_build_filename (dir, "images", NULL);
  gboolean ok = g_file_test (models, G_FILE_TEST_IS_DIR)
      && g_file_test (images, G_FILE_TEST_IS_DIR);

  g_free (models);
  g_free (images);
  return ok;
}

char *
lens_check_shared_dir (void)
{
  const char *env = g_getenv ("LENS_SHARED_DIR");
  char *candidates[2];
  char *found = NULL;

  if (env != NULL && *env != '\0')
    return holds_test_data (env) ? g_canonicalize_filename (env, NULL) : NULL;
  candidates[0] = g_canonicalize_filename ("../shared", NULL);
  candidates[1] = g_canonicalize_filename (LENS_SOURCE_ROOT "/../shared",
      NULL);
  for (int i = 0; i < 2; i++) {
    if (found == NULL && holds_test_data (candidates[i]))
      found = g_strdup (candidates[i]);
    g_free (candidates[i]);
  }
  return found;
}
