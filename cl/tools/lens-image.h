/* lens-image.h: the image files lens's tools and tests read and write:
 * JPEG (libjpeg-turbo) and PNG (libpng) decoded to packed RGB, PNG
 * written. Shared so that lens-detect and the tests that compare with it
 * see the same pixels. */
#ifndef LENS_IMAGE_H
#define LENS_IMAGE_H

#include <glib.h>

typedef struct
{
  int width, height;
  guint8 *rgb;                  /* width * height * 3, rows packed */
} LensImage;

/* Decodes a JPEG or PNG file (told apart by their first bytes) to RGB;
 * on failure *error names what is wrong (the caller adds the path). */
gboolean lens_image_load (const char *path, LensImage *img, char **error);
gboolean lens_image_write_png (const char *path, const LensImage *img,
    char **error);
void lens_image_clear (LensImage *img);

#endif /* LENS_IMAGE_H */
