/* replay.c: runs a libFuzzer target's LLVMFuzzerTestOneInput over files
 * and directories of inputs (the committed seed corpus and every crash
 * found, kept as regression inputs), so that make check replays them with
 * gcc and no libFuzzer. A crash or sanitizer report fails the test. */
#include <glib.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t * data, size_t size);

static int
replay_file (const char *path)
{
  GError *error = NULL;
  gchar *data;
  gsize len;

  if (!g_file_get_contents (path, &data, &len, &error)) {
    fprintf (stderr, "%s\n", error->message);
    g_error_free (error);
    return 1;
  }
  LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
  g_free (data);
  return 0;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

int
main (int argc, char **argv)
{
  int failures = 0, replayed = 0;

  if (argc < 2) {
    fprintf (stderr, "usage: %s CORPUS-DIR-OR-FILE...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    GPtrArray *files = g_ptr_array_new_with_free_func (g_free);
    GDir *dir = g_dir_open (argv[i], 0, NULL);

    if (dir == NULL) {
      g_ptr_array_add (files, g_strdup (argv[i]));
    } else {
      const char *name;
      while ((name = g_dir_read_name (dir)) != NULL)
        g_ptr_array_add (files, g_build_filename (argv[i], name, NULL));
      g_dir_close (dir);
      g_ptr_array_sort (files, compare_names);
    }
    for (guint k = 0; k < files->len; k++) {
      failures += replay_file (g_ptr_array_index (files, k));
      replayed++;
    }
    g_ptr_array_unref (files);
  }
  printf ("%d inputs replayed, %d unreadable\n", replayed, failures);
  return failures == 0 && replayed > 0 ? 0 : 1;
}
