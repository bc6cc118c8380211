/* npy.c: NumPy .npy files, the exchange format of lens-run: reads format
 * versions 1.0 to 3.0 (little-endian, C order, numeric dtypes), writes 1.0. */
#include "lens-private.h"

#include <stdio.h>
#include <errno.h>
#include <string.h>

static const struct
{
  const char *descr;
  LensDType dtype;
} npy_types[] = {
  { "<f4", LENS_DTYPE_FLOAT }, { "<f2", LENS_DTYPE_FLOAT16 },
  { "<f8", LENS_DTYPE_DOUBLE }, { "|u1", LENS_DTYPE_UINT8 },
  { "|i1", LENS_DTYPE_INT8 }, { "<i2", LENS_DTYPE_INT16 },
  { "<u2", LENS_DTYPE_UINT16 }, { "<i4", LENS_DTYPE_INT32 },
  { "<u4", LENS_DTYPE_UINT32 }, { "<i8", LENS_DTYPE_INT64 },
  { "<u8", LENS_DTYPE_UINT64 }, { "|b1", LENS_DTYPE_BOOL },
};

/* The value text of @key in the header dict, e.g. "'<f4'" or "(1, 3)". */
static char *
header_value (const char *header, const char *key)
{
  char *quoted = g_strdup_printf ("'%s':", key);
  const char *p = strstr (header, quoted);
  const char *end;

  g_free (quoted);
  if (p == NULL)
    return NULL;
  p += strlen (key) + 3;
  while (*p == ' ')
    p++;
  if (*p == '(')
    end = strchr (p, ')');
  else if (*p == '\'')
    end = strchr (p + 1, '\'');
  else
    end = p + strcspn (p, ",}");
  if (end == NULL)
    return NULL;
  return g_strndup (p, end - p + (*p == '(' || *p == '\'' ? 1 : 0));
}

LensStatus
lens_npy_load (const char *path, LensTensor ** out, LensError *err)
{
  GError *gerr = NULL;
  LensStatus st;
  char *data;
  gsize len;

  if (!g_file_get_contents (path, &data, &len, &gerr)) {
    st = lens_error_set (err, LENS_ERROR_IO, "%s: %s", path, gerr->message);
    g_error_free (gerr);
    return st;
  }
  st = lens_npy_load_data (path, data, len, out, err);
  g_free (data);
  return st;
}

LensStatus
lens_npy_load_data (const char *path, const void *bytes, size_t len,
    LensTensor ** out, LensError *err)
{
  const char *data = bytes;
  char *header = NULL, *descr = NULL, *order = NULL, *shape_text = NULL;
  LensDType dtype = LENS_DTYPE_UNDEFINED;
  int64_t shape[LENS_MAX_DIMS];
  int64_t nbytes;
  int ndim = 0;
  size_t header_len, offset;
  LensTensor *t;
  LensStatus st = LENS_OK;

  if (len < 10 || memcmp (data, "\x93NUMPY", 6) != 0) {
    st = lens_error_set (err, LENS_ERROR_PARSE, "%s: not a .npy file", path);
    goto done;
  }
  if (data[6] == 1) {
    header_len = (guint8) data[8] | ((guint8) data[9] << 8);
    offset = 10;
  } else if ((data[6] == 2 || data[6] == 3) && len >= 12) {
    header_len = (guint8) data[8] | ((guint8) data[9] << 8) |
        ((size_t) (guint8) data[10] << 16) | ((size_t) (guint8) data[11] << 24);
    offset = 12;
  } else {
    st = lens_error_set (err, LENS_ERROR_PARSE,
        "%s: unsupported .npy format version %d", path, data[6]);
    goto done;
  }
  if (offset + header_len > len) {
    st = lens_error_set (err, LENS_ERROR_PARSE, "%s: truncated header", path);
    goto done;
  }
  header = g_strndup (data + offset, header_len);
  descr = header_value (header, "descr");
  order = header_value (header, "fortran_order");
  shape_text = header_value (header, "shape");
  if (descr == NULL || order == NULL || shape_text == NULL) {
    st = lens_error_set (err, LENS_ERROR_PARSE,
        "%s: header lacks descr, fortran_order or shape", path);
    goto done;
  }
  for (guint i = 0; i < G_N_ELEMENTS (npy_types); i++) {
    char *quoted = g_strdup_printf ("'%s'", npy_types[i].descr);
    if (strcmp (descr, quoted) == 0)
      dtype = npy_types[i].dtype;
    g_free (quoted);
  }
  if (dtype == LENS_DTYPE_UNDEFINED) {
    st = lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: dtype %s is not supported (little-endian numeric only)", path,
        descr);
    goto done;
  }
  if (strcmp (order, "False") != 0) {
    st = lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: Fortran-order arrays are not supported", path);
    goto done;
  }
  {
    char **dims = g_strsplit_set (shape_text, "(), ", -1);
    for (char **d = dims; *d && st == LENS_OK; d++) {
      char *end;
      gint64 v;
      if (**d == '\0')
        continue;
      v = g_ascii_strtoll (*d, &end, 10);
      if (*end != '\0' || v < 0 || ndim == LENS_MAX_DIMS)
        st = lens_error_set (err, LENS_ERROR_PARSE,
            "%s: invalid shape %s", path, shape_text);
      else
        shape[ndim++] = v;
    }
    g_strfreev (dims);
    if (st != LENS_OK)
      goto done;
  }
  offset += header_len;
  /* the shape is checked against the bytes present before any allocation */
  nbytes = lens_shape_bytes (dtype, ndim, shape);
  if (nbytes < 0) {
    st = lens_error_set (err, LENS_ERROR_PARSE,
        "%s: shape %s is larger than 64-bit sizes can hold", path,
        shape_text);
    goto done;
  }
  if ((guint64) nbytes != (guint64) (len - offset)) {
    st = lens_error_set (err, LENS_ERROR_PARSE,
        "%s: %zu data bytes, shape %s needs %" G_GINT64_FORMAT, path,
        len - offset, shape_text, nbytes);
    goto done;
  }
  t = lens_tensor_new_host (dtype, ndim, shape, data + offset);
  *out = t;

done:
  g_free (header);
  g_free (descr);
  g_free (order);
  g_free (shape_text);
  return st;
}

LensStatus
lens_npy_save (const char *path, const LensTensor * t, LensError *err)
{
  const char *descr = NULL;
  GString *header = g_string_new (NULL);
  size_t padded;
  FILE *f;
  gboolean ok;

  for (guint i = 0; i < G_N_ELEMENTS (npy_types); i++)
    if (npy_types[i].dtype == t->dtype)
      descr = npy_types[i].descr;
  if (descr == NULL || t->host == NULL) {
    g_string_free (header, TRUE);
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: cannot write a tensor of type %s%s", path,
        lens_dtype_name (t->dtype), t->host ? "" : " without host data");
  }
  g_string_append_printf (header, "{'descr': '%s', 'fortran_order': False, "
      "'shape': (", descr);
  for (int d = 0; d < t->ndim; d++)
    g_string_append_printf (header, "%" G_GINT64_FORMAT "%s", t->shape[d],
        t->ndim == 1 || d + 1 < t->ndim ? ", " : "");
  g_string_append (header, "), }");
  /* pad with spaces so that data starts on a 64-byte boundary */
  padded = (10 + header->len + 1 + 63) / 64 * 64;
  while (10 + header->len + 1 < padded)
    g_string_append_c (header, ' ');
  g_string_append_c (header, '\n');

  f = fopen (path, "wb");
  if (f == NULL) {
    g_string_free (header, TRUE);
    return lens_error_set (err, LENS_ERROR_IO, "%s: %s", path,
        g_strerror (errno));
  }
  {
    guint8 preamble[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
      (guint8) (header->len & 0xff), (guint8) (header->len >> 8)
    };
    ok = fwrite (preamble, 1, 10, f) == 10
        && fwrite (header->str, 1, header->len, f) == header->len
        && fwrite (t->host, 1, lens_tensor_nbytes (t), f) ==
        lens_tensor_nbytes (t);
  }
  ok = fclose (f) == 0 && ok;
  g_string_free (header, TRUE);
  if (!ok)
    return lens_error_set (err, LENS_ERROR_IO, "%s: write failed", path);
  return LENS_OK;
}
