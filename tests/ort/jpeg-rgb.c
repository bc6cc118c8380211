/* jpeg-rgb.c: decodes a JPEG to a binary PPM (8-bit RGB) on stdout, for
 * tests/ort/regenerate-detections.
 *
 * Owns nothing but the decode: the script checks lens-detect's model
 * inputs against its own pre-processing of the very pixels lens-detect
 * decodes, and lens-detect uses libjpeg(-turbo) with its defaults
 * (accurate integer IDCT, fancy chroma upsampling); jpeg-js differs from
 * it by up to ~40 levels on chroma edges. The script compiles this file
 * with the system's cc and libjpeg (both build dependencies of lens) on
 * first use.
 *
 * Usage: jpeg-rgb FILE.jpg > FILE.ppm; jpeg-rgb --version prints the
 * libjpeg-turbo version number (e.g. 2001005 for 2.1.5), or 0.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* jpeglib.h needs stdio.h's FILE first */
#include <jpeglib.h>

typedef struct
{
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
} DecodeError;

static void
error_exit (j_common_ptr cinfo)
{
  DecodeError *e = (DecodeError *) cinfo->err;

  (*cinfo->err->output_message) (cinfo);
  longjmp (e->jump, 1);
}

int
main (int argc, char **argv)
{
  struct jpeg_decompress_struct cinfo;
  DecodeError err;
  unsigned char *row;
  FILE *f;

  if (argc == 2 && strcmp (argv[1], "--version") == 0) {
#ifdef LIBJPEG_TURBO_VERSION_NUMBER
    printf ("%d\n", LIBJPEG_TURBO_VERSION_NUMBER);
#else
    printf ("0\n");
#endif
    return 0;
  }
  if (argc != 2) {
    fprintf (stderr, "usage: jpeg-rgb FILE.jpg > FILE.ppm\n");
    return 2;
  }
  f = fopen (argv[1], "rb");
  if (f == NULL) {
    perror (argv[1]);
    return 1;
  }
  memset (&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error (&err.mgr);
  err.mgr.error_exit = error_exit;
  if (setjmp (err.jump)) {
    fprintf (stderr, "jpeg-rgb: cannot decode %s\n", argv[1]);
    jpeg_destroy_decompress (&cinfo);
    fclose (f);
    return 1;
  }
  jpeg_create_decompress (&cinfo);
  jpeg_stdio_src (&cinfo, f);
  jpeg_read_header (&cinfo, TRUE);
  /* the same request as lens-detect: RGB, every other setting default */
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress (&cinfo);
  printf ("P6\n%u %u\n255\n", cinfo.output_width, cinfo.output_height);
  row = malloc ((size_t) cinfo.output_width * 3);
  if (row == NULL)
    return 1;
  while (cinfo.output_scanline < cinfo.output_height) {
    jpeg_read_scanlines (&cinfo, &row, 1);
    fwrite (row, 3, cinfo.output_width, stdout);
  }
  jpeg_finish_decompress (&cinfo);
  jpeg_destroy_decompress (&cinfo);
  free (row);
  fclose (f);
  return fflush (stdout) == 0 ? 0 : 1;
}
