/* lens-selftest: runs every operator's kernel against its C reference on
 * random awkward shapes, on the selected OpenCL device, and prints a per-op
 * table. `make demo` runs it.
 *
 *   lens-selftest [--device SPEC] [--op NAME] [--seed N] */
#include "lens.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
  const char *device = NULL, *only = NULL;
  guint32 seed = 20261125;
  LensError err = LENS_ERROR_INIT;
  LensContext *ctx;
  int total_cases = 0, total_passed = 0, ops_failed = 0;

  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--device") == 0 && i + 1 < argc)
      device = argv[++i];
    else if (strcmp (argv[i], "--op") == 0 && i + 1 < argc)
      only = argv[++i];
    else if (strcmp (argv[i], "--seed") == 0 && i + 1 < argc)
      seed = (guint32) strtoul (argv[++i], NULL, 10);
    else {
      fprintf (stderr, "usage: %s [--device SPEC] [--op NAME] [--seed N]\n",
          argv[0]);
      return 2;
    }
  }

  if (lens_context_new (device, &ctx, &err) != LENS_OK) {
    fprintf (stderr, "lens-selftest: %s\n", err.message);
    lens_error_clear (&err);
    return 1;
  }
  printf ("lens operator self-test: OpenCL kernel vs C reference\n");
  printf ("device: %s (%s), seed %u\n\n", lens_context_get_device_name (ctx),
      lens_context_get_platform_name (ctx), seed);
  printf ("%-22s %6s %6s %12s %10s  %s\n", "op", "cases", "pass",
      "max|diff|", "ms", "status");

  for (const LensOp * const *op = lens_op_list (); *op; op++) {
    LensSelftestResult r;

    if (only && strcmp (only, (*op)->op_type) != 0)
      continue;
    if (lens_selftest_op (ctx, *op, seed, &r, &err) != LENS_OK) {
      printf ("%-22s %s\n", (*op)->op_type, err.message);
      lens_error_clear (&err);
      ops_failed++;
      continue;
    }
    printf ("%-22s %6d %6d %12.3g %10.2f  %s\n", r.op_type, r.cases,
        r.passed, r.max_abs_diff, r.kernel_ms,
        r.passed == r.cases ? "ok" : "FAILED");
    if (r.first_failure)
      printf ("    %s\n", r.first_failure);
    total_cases += r.cases;
    total_passed += r.passed;
    if (r.passed != r.cases)
      ops_failed++;
    lens_selftest_result_clear (&r);
  }
  printf ("\n%d of %d cases passed; %d operator(s) failed; %u programs "
      "built\n", total_passed, total_cases, ops_failed,
      lens_context_programs_built (ctx));
  lens_context_free (ctx);
  return ops_failed ? 1 : 0;
}
