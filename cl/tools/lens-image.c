/* lens-image.c: JPEG and PNG to packed RGB, and PNG out (see
 * lens-image.h). */
#include "lens-image.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

/* jpeglib.h needs stdio.h's FILE first */
#include <jpeglib.h>
#include <png.h>

/* Refuses images larger than this: a corrupt header must not make us
 * allocate gigabytes. */
#define MAX_PIXELS (1 << 28)


/* ---- JPEG ------------------------------------------------------------------ */

typedef struct
{
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} JpegError;

static void
jpeg_error_exit (j_common_ptr cinfo)
{
  JpegError *e = (JpegError *) cinfo->err;

  e->mgr.format_message (cinfo, e->message);
  longjmp (e->jump, 1);
}

/* libjpeg's warnings (e.g. "premature end of data") go nowhere: a
 * truncated file still decodes, grey at the bottom, as in other viewers */
static void
jpeg_output_nothing (j_common_ptr cinfo)
{
}

static gboolean
decode_jpeg (const guint8 * data, gsize size, LensImage * img, char **error)
{
  struct jpeg_decompress_struct cinfo;
  JpegError jerr;
  /* volatile: assigned between setjmp and longjmp */
  guint8 *volatile rgb = NULL;

  memset (&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error (&jerr.mgr);
  jerr.mgr.error_exit = jpeg_error_exit;
  jerr.mgr.output_message = jpeg_output_nothing;
  if (setjmp (jerr.jump)) {
    *error = g_strdup_printf ("corrupt JPEG: %s", jerr.message);
    jpeg_destroy_decompress (&cinfo);
    g_free (rgb);
    return FALSE;
  }
  jpeg_create_decompress (&cinfo);
  jpeg_mem_src (&cinfo, data, size);
  jpeg_read_header (&cinfo, TRUE);
  /* libjpeg converts greyscale and YCbCr; CMYK/YCCK it cannot */
  cinfo.out_color_space = JCS_RGB;
  if ((guint64) cinfo.image_width * cinfo.image_height > MAX_PIXELS) {
    *error = g_strdup_printf ("JPEG of %ux%u pixels is too large",
        cinfo.image_width, cinfo.image_height);
    jpeg_destroy_decompress (&cinfo);
    return FALSE;
  }
  jpeg_start_decompress (&cinfo);
  rgb = g_malloc ((gsize) cinfo.output_width * cinfo.output_height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = rgb + (gsize) cinfo.output_scanline * cinfo.output_width
        * 3;

    jpeg_read_scanlines (&cinfo, &row, 1);
  }
  jpeg_finish_decompress (&cinfo);
  img->width = (int) cinfo.output_width;
  img->height = (int) cinfo.output_height;
  img->rgb = rgb;
  jpeg_destroy_decompress (&cinfo);
  return TRUE;
}

/* ---- PNG ------------------------------------------------------------------- */

static gboolean
decode_png (const guint8 * data, gsize size, LensImage * img, char **error)
{
  png_image image;
  /* transparent pixels are composited on black */
  png_color black = { 0, 0, 0 };

  memset (&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory (&image, data, size)) {
    *error = g_strdup_printf ("corrupt PNG: %s", image.message);
    png_image_free (&image);
    return FALSE;
  }
  if ((guint64) image.width * image.height > MAX_PIXELS) {
    *error = g_strdup_printf ("PNG of %ux%u pixels is too large",
        image.width, image.height);
    png_image_free (&image);
    return FALSE;
  }
  image.format = PNG_FORMAT_RGB;
  img->rgb = g_malloc (PNG_IMAGE_SIZE (image));
  if (!png_image_finish_read (&image, &black, img->rgb, 0, NULL)) {
    *error = g_strdup_printf ("corrupt PNG: %s", image.message);
    png_image_free (&image);
    g_clear_pointer (&img->rgb, g_free);
    return FALSE;
  }
  img->width = (int) image.width;
  img->height = (int) image.height;
  return TRUE;
}

gboolean
lens_image_write_png (const char *path, const LensImage * img, char **error)
{
  png_image image;

  memset (&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = (png_uint_32) img->width;
  image.height = (png_uint_32) img->height;
  image.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file (&image, path, 0, img->rgb, 0, NULL)) {
    *error = g_strdup (image.message);
    png_image_free (&image);
    return FALSE;
  }
  return TRUE;
}

/* ---- images ---------------------------------------------------------------- */

gboolean
lens_image_load (const char *path, LensImage * img, char **error)
{
  static const guint8 jpeg_magic[] = { 0xff, 0xd8, 0xff };
  static const guint8 png_magic[] = { 0x89, 'P', 'N', 'G', '\r', '\n',
    0x1a, '\n'
  };
  GError *gerr = NULL;
  char *data = NULL;
  gsize size = 0;
  gboolean ok;

  memset (img, 0, sizeof *img);
  if (!g_file_get_contents (path, &data, &size, &gerr)) {
    *error = g_strdup (gerr->message);
    g_error_free (gerr);
    return FALSE;
  }
  if (size >= sizeof jpeg_magic
      && memcmp (data, jpeg_magic, sizeof jpeg_magic) == 0)
    ok = decode_jpeg ((const guint8 *) data, size, img, error);
  else if (size >= sizeof png_magic
      && memcmp (data, png_magic, sizeof png_magic) == 0)
    ok = decode_png ((const guint8 *) data, size, img, error);
  else {
    *error = g_strdup (size == 0 ? "empty file" :
        "not a JPEG or PNG image");
    ok = FALSE;
  }
  g_free (data);
  return ok;
}

void
lens_image_clear (LensImage * img)
{
  g_clear_pointer (&img->rgb, g_free);
  img->width = img->height = 0;
}
