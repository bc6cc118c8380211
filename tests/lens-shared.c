/* lens-shared.c: the test-data lookup (see lens-shared.h). */
#include "lens-shared.h"

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
