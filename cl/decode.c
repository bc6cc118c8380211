/* decode.c: turning detection-model outputs into boxes.
 *
 * Owns: model family names and detection (from Ultralytics metadata or
 * the output shapes), label lists (names files and the Python dict literal
 * of the 'names' metadata), the per-family decoders (YOLOv5, YOLOv8/11,
 * end-to-end YOLO26, YOLOX, NanoDet, FastestDet), class-aware NMS and the
 * mapping of boxes from model-input pixels back to the source image.
 *
 * Everything here is plain host C over host tensors: decoding is a few
 * thousand rows per frame and ends in a data-dependent NMS, which a device
 * would only slow down with a transfer and a synchronisation.
 */
#include "lens-private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONF_THRESHOLD 0.25f
#define DEFAULT_IOU_THRESHOLD 0.45f
#define DEFAULT_MAX_DETECTIONS 300
/* Candidates kept for NMS, as Ultralytics' max_nms: a cap on the quadratic
 * worst case when the threshold is very low. */
#define MAX_NMS_CANDIDATES 30000
/* NanoDet's distribution head: 4 sides x (reg_max + 1) bins, reg_max 7 in
 * every released NanoDet config. */
#define NANODET_DEFAULT_BOX_DIM 32

/* ---- family names ---------------------------------------------------------- */

static const struct
{
  const char *name;
  LensFamily family;
} family_names[] = {
  /* canonical names first: lens_family_name returns the first match */
  { "yolov5", LENS_FAMILY_YOLOV5 },
  { "yolov8", LENS_FAMILY_YOLOV8 },
  { "end2end", LENS_FAMILY_END2END },
  { "yolox", LENS_FAMILY_YOLOX },
  { "nanodet", LENS_FAMILY_NANODET },
  { "fastestdet", LENS_FAMILY_FASTESTDET },
  { "yolo11", LENS_FAMILY_YOLOV8 },
  { "yolo26", LENS_FAMILY_END2END },
};

const char *
lens_family_name (LensFamily family)
{
  for (guint i = 0; i < G_N_ELEMENTS (family_names); i++)
    if (family_names[i].family == family)
      return family_names[i].name;
  return "unknown";
}

LensFamily
lens_family_from_name (const char *name)
{
  if (name == NULL)
    return LENS_FAMILY_UNKNOWN;
  for (guint i = 0; i < G_N_ELEMENTS (family_names); i++)
    if (g_ascii_strcasecmp (name, family_names[i].name) == 0)
      return family_names[i].family;
  return LENS_FAMILY_UNKNOWN;
}

/* ---- label files ------------------------------------------------------------ */

static gboolean
is_blank (const char *s)
{
  for (; *s; s++)
    if (!g_ascii_isspace (*s))
      return FALSE;
  return TRUE;
}

LensStatus
lens_labels_load (const char *path, char ***labels, int *n, LensError *err)
{
  GError *gerr = NULL;
  char *contents = NULL;
  gsize length = 0;
  char **lines, **out;
  const char *text;
  int n_lines, last, count = 0;

  *labels = NULL;
  *n = 0;
  if (!g_file_get_contents (path, &contents, &length, &gerr)) {
    LensStatus s = lens_error_set (err, LENS_ERROR_IO,
        "labels file '%s': %s", path, gerr->message);
    g_error_free (gerr);
    return s;
  }
  if (memchr (contents, '\0', length) != NULL) {
    g_free (contents);
    return lens_error_set (err, LENS_ERROR_PARSE,
        "labels file '%s': contains a NUL byte; expected text, one label "
        "per line", path);
  }

  /* a UTF-8 byte order mark is an editor artefact, not part of label 0 */
  text = contents;
  if (length >= 3 && memcmp (text, "\xef\xbb\xbf", 3) == 0)
    text += 3;

  lines = g_strsplit (text, "\n", -1);
  g_free (contents);
  n_lines = (int) g_strv_length (lines);

  /* a final newline (and any blank lines after the last label) ends the
   * list; a blank line between labels would shift every later class id */
  last = n_lines - 1;
  while (last >= 0 && is_blank (lines[last]))
    last--;

  out = g_new0 (char *, last + 2);
  for (int i = 0; i <= last; i++) {
    const char *bad;

    if (!g_utf8_validate (lines[i], -1, &bad)) {
      int at = (int) (bad - lines[i]) + 1;

      g_strfreev (out);
      g_strfreev (lines);
      return lens_error_set (err, LENS_ERROR_PARSE,
          "labels file '%s' line %d: invalid UTF-8 at byte %d", path,
          i + 1, at);
    }
    /* strips the CR of CRLF files and stray surrounding spaces */
    g_strstrip (lines[i]);
    if (lines[i][0] == '\0') {
      g_strfreev (out);
      g_strfreev (lines);
      return lens_error_set (err, LENS_ERROR_PARSE,
          "labels file '%s' line %d: empty label (class ids are line "
          "numbers, so a blank line would shift every later class)", path,
          i + 1);
    }
    out[count++] = g_strdup (lines[i]);
  }
  g_strfreev (lines);

  if (count == 0) {
    g_free (out);
    return lens_error_set (err, LENS_ERROR_PARSE,
        "labels file '%s': no labels", path);
  }
  *labels = out;
  *n = count;
  return LENS_OK;
}

/* ---- the 'names' metadata: a Python literal --------------------------------- */

/* Ultralytics writes str(dict): "{0: 'person', 1: 'bicycle', ...}". Python
 * quotes each name with ' unless it holds a ' (then with "), and escapes
 * backslashes, quotes and non-printable characters. A list or tuple of
 * names, and keys written as quoted numbers, are accepted too. */

typedef struct
{
  const char *start, *p;
  char *error;                  /* g_strdup_printf'd, first error only */
} Scanner;

static gboolean
scan_fail (Scanner * sc, const char *what)
{
  if (sc->error == NULL)
    sc->error = g_strdup_printf ("%s at offset %d", what,
        (int) (sc->p - sc->start));
  return FALSE;
}

static void
scan_space (Scanner * sc)
{
  while (*sc->p && g_ascii_isspace (*sc->p))
    sc->p++;
}

static gboolean
scan_hex (Scanner * sc, int digits, gunichar * out)
{
  gunichar v = 0;

  for (int i = 0; i < digits; i++) {
    int d = g_ascii_xdigit_value (sc->p[i]);

    if (d < 0)
      return scan_fail (sc, "bad hexadecimal escape");
    v = v * 16 + (gunichar) d;
  }
  sc->p += digits;
  *out = v;
  return TRUE;
}

/* A Python string literal (single or double quoted, with escapes) into a
 * new UTF-8 string. */
static gboolean
scan_string (Scanner * sc, char **out)
{
  GString *s;
  char quote = *sc->p;

  if (quote != '\'' && quote != '"')
    return scan_fail (sc, "expected a quoted name");
  sc->p++;
  s = g_string_new (NULL);
  while (*sc->p != quote) {
    gunichar u;
    char c = *sc->p;

    if (c == '\0') {
      g_string_free (s, TRUE);
      return scan_fail (sc, "unterminated string");
    }
    if (c != '\\') {
      g_string_append_c (s, c);
      sc->p++;
      continue;
    }
    sc->p++;
    c = *sc->p++;
    switch (c) {
      case '\\': case '\'': case '"':
        g_string_append_c (s, c);
        break;
      case 'n': g_string_append_c (s, '\n'); break;
      case 't': g_string_append_c (s, '\t'); break;
      case 'r': g_string_append_c (s, '\r'); break;
      case 'a': g_string_append_c (s, '\a'); break;
      case 'b': g_string_append_c (s, '\b'); break;
      case 'f': g_string_append_c (s, '\f'); break;
      case 'v': g_string_append_c (s, '\v'); break;
      case '\n': break;         /* line continuation */
      case 'x': case 'u': case 'U':
        if (!scan_hex (sc, c == 'x' ? 2 : c == 'u' ? 4 : 8, &u)
            || !g_unichar_validate (u)) {
          g_string_free (s, TRUE);
          return scan_fail (sc, "bad character escape");
        }
        g_string_append_unichar (s, u);
        break;
      case '0': case '1': case '2': case '3':
      case '4': case '5': case '6': case '7':
        u = (gunichar) (c - '0');
        for (int i = 0; i < 2 && *sc->p >= '0' && *sc->p <= '7'; i++)
          u = u * 8 + (gunichar) (*sc->p++ - '0');
        g_string_append_unichar (s, u);
        break;
      case '\0':
        g_string_free (s, TRUE);
        sc->p--;
        return scan_fail (sc, "unterminated string");
      default:
        /* Python keeps unknown escapes as written */
        g_string_append_c (s, '\\');
        g_string_append_c (s, c);
        break;
    }
  }
  sc->p++;
  if (!g_utf8_validate (s->str, s->len, NULL)) {
    g_string_free (s, TRUE);
    return scan_fail (sc, "name is not valid UTF-8");
  }
  *out = g_string_free (s, FALSE);
  return TRUE;
}

static gboolean
scan_key (Scanner * sc, int *key)
{
  char *text = NULL, *end;
  const char *digits;
  gint64 v;

  if (*sc->p == '\'' || *sc->p == '"') {
    if (!scan_string (sc, &text))
      return FALSE;
    digits = text;
  } else {
    digits = sc->p;
  }
  if (!g_ascii_isdigit (*digits)) {
    g_free (text);
    return scan_fail (sc, "expected a class number");
  }
  v = g_ascii_strtoll (digits, &end, 10);
  if (v > 65535 || (text != NULL && *end != '\0')) {
    g_free (text);
    return scan_fail (sc, "bad class number");
  }
  if (text == NULL)
    sc->p = end;
  g_free (text);
  *key = (int) v;
  return TRUE;
}

/* Parses @text into a NULL-terminated vector indexed by class id; NULL and
 * *error set on failure. */
static char **
parse_names (const char *text, int *n, char **error)
{
  Scanner sc = { text, text, NULL };
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  gboolean is_dict, ok = TRUE;
  char close;
  int next = 0;

  scan_space (&sc);
  is_dict = *sc.p == '{';
  if (*sc.p != '{' && *sc.p != '[' && *sc.p != '(') {
    ok = scan_fail (&sc, "expected '{', '[' or '('");
    goto out;
  }
  close = *sc.p == '{' ? '}' : *sc.p == '[' ? ']' : ')';
  sc.p++;
  for (;;) {
    char *name = NULL;
    int key = next;

    scan_space (&sc);
    if (*sc.p == close)
      break;
    if (is_dict) {
      if (!(ok = scan_key (&sc, &key)))
        goto out;
      scan_space (&sc);
      if (*sc.p != ':') {
        ok = scan_fail (&sc, "expected ':'");
        goto out;
      }
      sc.p++;
      scan_space (&sc);
    }
    if (!(ok = scan_string (&sc, &name)))
      goto out;
    if (key >= (int) names->len)
      g_ptr_array_set_size (names, key + 1);
    if (g_ptr_array_index (names, key) != NULL) {
      g_free (name);
      sc.error = g_strdup_printf ("class %d is named twice", key);
      ok = FALSE;
      goto out;
    }
    g_ptr_array_index (names, key) = name;
    next++;
    scan_space (&sc);
    if (*sc.p == ',')
      sc.p++;
    else if (*sc.p != close) {
      ok = scan_fail (&sc, "expected ',' or the closing bracket");
      goto out;
    }
  }
  sc.p++;
  scan_space (&sc);
  if (*sc.p != '\0') {
    ok = scan_fail (&sc, "unexpected text after the closing bracket");
    goto out;
  }
  if (names->len == 0) {
    ok = FALSE;
    sc.error = g_strdup ("no names");
    goto out;
  }
  for (guint i = 0; i < names->len; i++) {
    if (g_ptr_array_index (names, i) == NULL) {
      ok = FALSE;
      sc.error = g_strdup_printf ("class %u has no name (ids must run "
          "0..%u)", i, names->len - 1);
      goto out;
    }
  }

out:
  if (!ok) {
    g_ptr_array_free (names, TRUE);
    *error = sc.error;
    *n = 0;
    return NULL;
  }
  *n = (int) names->len;
  g_ptr_array_add (names, NULL);
  g_ptr_array_set_free_func (names, NULL);
  return (char **) g_ptr_array_free (names, FALSE);
}

/* ---- layouts: what the output shapes say ------------------------------------ */

typedef struct
{
  int ndim;
  int64_t shape[LENS_MAX_DIMS];
} Shape;

/* Cells of the grid at @stride over a @w x @h input: ceil (size / stride),
 * what a chain of stride-2 convolutions with "same" padding produces. */
static int64_t
grid_cells (int w, int h, int stride)
{
  return (int64_t) ((w + stride - 1) / stride) * ((h + stride - 1) / stride);
}

/* Finds the strides s, s/2, s/4, ... down to 8 at the finest (P3, as
 * every family here) (s = @max_stride, or 32 then 64 when 0) whose grids,
 * @anchors each, add up to @n rows. */
static gboolean
strides_from_rows (int w, int h, int64_t n, int anchors, int max_stride,
    int *strides, int *n_strides)
{
  const int tries[] = { 32, 64 };

  for (int t = 0; t < 2; t++) {
    int top = max_stride > 0 ? max_stride : tries[t];
    int64_t sum = 0;
    int k = 0, tmp[8];

    for (int s = top; s >= 8 && k < 8; s /= 2) {
      sum += anchors * grid_cells (w, h, s);
      tmp[k++] = s;
      if (sum == n) {
        /* finest first, the order the rows come in */
        for (int i = 0; i < k; i++)
          strides[i] = tmp[k - 1 - i];
        *n_strides = k;
        return TRUE;
      }
      if (sum > n)
        break;
    }
    if (max_stride > 0)
      break;
  }
  return FALSE;
}

/* The stride whose grid over the input has @hw cells, or 0. */
static int
stride_from_cells (int w, int h, int64_t hw)
{
  for (int s = 1; s <= 256; s *= 2)
    if (grid_cells (w, h, s) == hw)
      return s;
  return 0;
}

static const char *
shape_str (const Shape * s, char *buf, size_t len)
{
  GString *g = g_string_new ("[");

  for (int i = 0; i < s->ndim; i++)
    g_string_append_printf (g, "%s%" G_GINT64_FORMAT, i ? "," : "",
        s->shape[i]);
  g_string_append_c (g, ']');
  g_strlcpy (buf, g->str, len);
  g_string_free (g, TRUE);
  return buf;
}

/* One NanoDet level: which outputs hold its class scores and its box
 * distributions. */
typedef struct
{
  int cls, box;
  int64_t hw;
  int stride, grid_w, bins;
} NanoLevel;

/* Pairs NanoDet outputs by cell count. The class map is the one with
 * @n_classes channels when that is known (> 0); otherwise the box map is
 * the one with 32 channels (reg_max 7, NanoDet's only released setting),
 * and failing that the later one (NanoDet exports list class maps first).
 * Levels come out finest first. */
static LensStatus
nanodet_levels (const Shape * shapes, int n, int in_w, int in_h,
    int n_classes, NanoLevel * levels, int *n_levels, int *classes_out,
    LensError *err)
{
  gboolean used[16] = { FALSE };
  int count = 0, classes = n_classes;
  char buf[64];

  if (n < 2 || n % 2 != 0 || n > 16)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "nanodet: expected pairs of class and box outputs, got %d outputs",
        n);
  for (int i = 0; i < n; i++) {
    if (shapes[i].ndim != 3 || shapes[i].shape[0] != 1)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "nanodet: output %d is %s, expected [1,HW,C]", i,
          shape_str (&shapes[i], buf, sizeof buf));
  }
  for (int i = 0; i < n; i++) {
    int j, a, b, cls, box;
    int64_t da, db;

    if (used[i])
      continue;
    for (j = i + 1; j < n; j++)
      if (!used[j] && shapes[j].shape[1] == shapes[i].shape[1])
        break;
    if (j == n)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "nanodet: output %d (%s) has no partner with %" G_GINT64_FORMAT
          " cells", i, shape_str (&shapes[i], buf, sizeof buf),
          shapes[i].shape[1]);
    used[i] = used[j] = TRUE;
    a = i;
    b = j;
    da = shapes[a].shape[2];
    db = shapes[b].shape[2];
    if (classes > 0 && (da == classes || db == classes)) {
      cls = da == classes ? a : b;
    } else if ((da == NANODET_DEFAULT_BOX_DIM) != (db == NANODET_DEFAULT_BOX_DIM)) {
      cls = da == NANODET_DEFAULT_BOX_DIM ? b : a;
    } else {
      cls = a;
    }
    box = cls == a ? b : a;
    if (classes <= 0)
      classes = (int) shapes[cls].shape[2];
    if (shapes[cls].shape[2] != classes)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "nanodet: class output %d has %" G_GINT64_FORMAT " classes, "
          "other levels %d", cls, shapes[cls].shape[2], classes);
    if (shapes[box].shape[2] % 4 != 0 || shapes[box].shape[2] < 8)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "nanodet: box output %d is %s: the last dimension must be "
          "4 x bins (at least 2 bins)", box,
          shape_str (&shapes[box], buf, sizeof buf));
    levels[count].cls = cls;
    levels[count].box = box;
    levels[count].hw = shapes[cls].shape[1];
    levels[count].bins = (int) (shapes[box].shape[2] / 4);
    levels[count].stride = stride_from_cells (in_w, in_h, levels[count].hw);
    if (levels[count].stride == 0)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "nanodet: %" G_GINT64_FORMAT " cells (outputs %d and %d) is no "
          "grid of a %dx%d input", levels[count].hw, cls, box, in_w, in_h);
    levels[count].grid_w = (in_w + levels[count].stride - 1)
        / levels[count].stride;
    count++;
  }
  /* finest first */
  for (int i = 1; i < count; i++)
    for (int k = i; k > 0 && levels[k].stride < levels[k - 1].stride; k--) {
      NanoLevel t = levels[k];
      levels[k] = levels[k - 1];
      levels[k - 1] = t;
    }
  *n_levels = count;
  *classes_out = classes;
  return LENS_OK;
}

/* Checks that @shapes fit @family and returns the class count. For the
 * families decoded in-graph the strides are informational; YOLOX needs
 * them to rebuild its grid. */
static LensStatus
layout_check (LensFamily family, const Shape * shapes, int n, int in_w,
    int in_h, int max_stride, int n_classes_hint, int *n_classes,
    int *strides, int *n_strides, LensError *err)
{
  const char *fname = lens_family_name (family);
  char buf[64];
  const Shape *s = &shapes[0];
  NanoLevel levels[8];
  int64_t rows;

  *n_strides = 0;
  if (family == LENS_FAMILY_NANODET) {
    int n_levels;
    LensStatus st = nanodet_levels (shapes, n, in_w, in_h, n_classes_hint,
        levels, &n_levels, n_classes, err);

    if (st != LENS_OK)
      return st;
    for (int i = 0; i < n_levels; i++)
      strides[i] = levels[i].stride;
    *n_strides = n_levels;
    return LENS_OK;
  }

  if (n != 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: expected 1 output, got %d", fname, n);

  switch (family) {
    case LENS_FAMILY_YOLOV5:
    case LENS_FAMILY_YOLOX:
      if (s->ndim != 3 || s->shape[0] != 1 || s->shape[2] < 6)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "%s: output is %s, expected [1,N,5+classes]", fname,
            shape_str (s, buf, sizeof buf));
      *n_classes = (int) s->shape[2] - 5;
      rows = s->shape[1];
      if (family == LENS_FAMILY_YOLOX) {
        if (!strides_from_rows (in_w, in_h, rows, 1, max_stride, strides,
                n_strides))
          return lens_error_set (err, LENS_ERROR_INVALID,
              "yolox: output %s: %" G_GINT64_FORMAT " rows match no "
              "stride pyramid over a %dx%d input (one row per cell of "
              "strides 8, 16, 32)", shape_str (s, buf, sizeof buf), rows,
              in_w, in_h);
      } else {
        /* 3 anchors per cell; boxes are decoded in-graph, so a miss
         * only leaves the strides unknown */
        strides_from_rows (in_w, in_h, rows, 3, max_stride, strides,
            n_strides);
      }
      return LENS_OK;
    case LENS_FAMILY_YOLOV8:
      if (s->ndim != 3 || s->shape[0] != 1 || s->shape[1] < 5)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "yolov8: output is %s, expected [1,4+classes,N]",
            shape_str (s, buf, sizeof buf));
      *n_classes = (int) s->shape[1] - 4;
      strides_from_rows (in_w, in_h, s->shape[2], 1, max_stride, strides,
          n_strides);
      return LENS_OK;
    case LENS_FAMILY_END2END:
      if (s->ndim != 3 || s->shape[0] != 1 || s->shape[2] != 6)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "end2end: output is %s, expected [1,K,6] (x1,y1,x2,y2,score,"
            "class)", shape_str (s, buf, sizeof buf));
      /* the class count is not in the shape: the labels say it */
      *n_classes = n_classes_hint;
      if (*n_classes <= 0)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "end2end: the output does not say how many classes there are; "
            "give labels (metadata 'names' or a labels file)");
      {
        int top = max_stride > 0 ? max_stride : 32;

        /* Ultralytics' P3-P5 heads */
        for (int i = 0; i < 3 && (top >> (2 - i)) > 0; i++)
          strides[(*n_strides)++] = top >> (2 - i);
      }
      return LENS_OK;
    case LENS_FAMILY_FASTESTDET:
      if (s->ndim != 4 || s->shape[0] != 1 || s->shape[1] < 6)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "fastestdet: output is %s, expected [1,5+classes,H,W]",
            shape_str (s, buf, sizeof buf));
      *n_classes = (int) s->shape[1] - 5;
      if (s->shape[3] > 0 && in_w % s->shape[3] == 0)
        strides[(*n_strides)++] = in_w / (int) s->shape[3];
      return LENS_OK;
    default:
      return lens_error_set (err, LENS_ERROR_INVALID,
          "no detection family given");
  }
}

/* ---- configuration from a model --------------------------------------------- */

static gboolean
metadata_true (const char *v)
{
  return v != NULL && (g_ascii_strcasecmp (v, "true") == 0
      || strcmp (v, "1") == 0);
}

/* 'imgsz' is "[h, w]" or "n". */
static gboolean
parse_imgsz (const char *v, int *w, int *h)
{
  gint64 a, b;
  char *end;

  while (*v == ' ' || *v == '[' || *v == '(')
    v++;
  a = g_ascii_strtoll (v, &end, 10);
  if (end == v || a <= 0)
    return FALSE;
  v = end;
  while (*v == ' ' || *v == ',')
    v++;
  b = a;
  if (g_ascii_isdigit (*v)) {
    b = g_ascii_strtoll (v, &end, 10);
    if (b <= 0)
      return FALSE;
  }
  *h = (int) a;
  *w = (int) b;
  return TRUE;
}

/* The family the shapes suggest when the caller gives none. */
static LensFamily
guess_family (const LensModel * model, const Shape * shapes, int n,
    int in_w, int in_h, int max_stride, int n_classes_hint)
{
  gboolean ultralytics = lens_model_metadata (model, "stride") != NULL
      || lens_model_metadata (model, "names") != NULL;
  int tmp[8], k;

  if (metadata_true (lens_model_metadata (model, "end2end")))
    return LENS_FAMILY_END2END;
  if (n == 1 && shapes[0].ndim == 4)
    return LENS_FAMILY_FASTESTDET;
  if (n >= 2 && n % 2 == 0) {
    NanoLevel levels[8];
    int n_levels, classes;

    /* only when the outputs really pair up as class and box maps */
    if (nanodet_levels (shapes, n, in_w, in_h, n_classes_hint, levels,
            &n_levels, &classes, NULL) == LENS_OK)
      return LENS_FAMILY_NANODET;
    return LENS_FAMILY_UNKNOWN;
  }
  if (n != 1 || shapes[0].ndim != 3 || shapes[0].shape[0] != 1)
    return LENS_FAMILY_UNKNOWN;

  {
    /* channels first ([1,4+C,N]) or rows first ([1,N,5+C]): the side that
     * counts the anchors of a stride pyramid says, else the longer one */
    gboolean cols_grid = strides_from_rows (in_w, in_h, shapes[0].shape[2],
        1, max_stride, tmp, &k);
    gboolean rows_grid = strides_from_rows (in_w, in_h, shapes[0].shape[1],
        1, max_stride, tmp, &k)
        || strides_from_rows (in_w, in_h, shapes[0].shape[1], 3, max_stride,
        tmp, &k);

    if (cols_grid && !rows_grid)
      return LENS_FAMILY_YOLOV8;
    if (cols_grid == rows_grid && shapes[0].shape[1] < shapes[0].shape[2])
      return LENS_FAMILY_YOLOV8;
  }
  /* [1,K,6] is also a one-class YOLOv5 or YOLOX; those have a row per
   * anchor and cell */
  if (shapes[0].shape[2] == 6
      && !strides_from_rows (in_w, in_h, shapes[0].shape[1], 1, max_stride,
          tmp, &k)
      && !strides_from_rows (in_w, in_h, shapes[0].shape[1], 3, max_stride,
          tmp, &k))
    return LENS_FAMILY_END2END;
  /* Ultralytics (YOLOv5) exports carry 'stride'/'names' and decode in the
   * graph; YOLOX exports carry no metadata and leave the grid raw. */
  if (ultralytics)
    return LENS_FAMILY_YOLOV5;
  if (strides_from_rows (in_w, in_h, shapes[0].shape[1], 1, max_stride,
          tmp, &k))
    return LENS_FAMILY_YOLOX;
  return LENS_FAMILY_YOLOV5;
}

LensStatus
lens_decode_config_init (LensDecodeConfig * config, const LensModel * model,
    LensFamily family_override, const char *labels_path, LensError *err)
{
  Shape shapes[16];
  int64_t in_shape[LENS_MAX_DIMS];
  int n_out, in_ndim, in_w = 0, in_h = 0, max_stride = 0, n_labels = 0;
  int n_classes = 0;
  char **labels = NULL;
  const char *path = lens_model_path (model);
  const char *task = lens_model_metadata (model, "task");
  const char *v;
  LensFamily family;
  LensStatus st;

  memset (config, 0, sizeof *config);
  config->conf_threshold = DEFAULT_CONF_THRESHOLD;
  config->iou_threshold = DEFAULT_IOU_THRESHOLD;
  config->max_detections = DEFAULT_MAX_DETECTIONS;

  if (task != NULL && strcmp (task, "detect") != 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "model '%s': task '%s' is not supported (only 'detect')", path,
        task);

  /* input size: the resolved input shape, else 'imgsz' */
  in_ndim = lens_model_input_shape (model, 0, in_shape);
  if (in_ndim == 4 && in_shape[1] == 3) {
    in_h = (int) in_shape[2];
    in_w = (int) in_shape[3];
  } else if (in_ndim == 4 && in_shape[3] == 3) {
    in_h = (int) in_shape[1];
    in_w = (int) in_shape[2];
  }
  if ((in_w <= 0 || in_h <= 0)
      && ((v = lens_model_metadata (model, "imgsz")) == NULL
          || !parse_imgsz (v, &in_w, &in_h)))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "model '%s': input '%s' has no fixed height and width and no "
        "'imgsz' metadata", path, lens_model_input_name (model, 0));

  if ((v = lens_model_metadata (model, "stride")) != NULL) {
    gint64 s = g_ascii_strtoll (v, NULL, 10);

    if (s <= 0 || s > 1024 || (s & (s - 1)) != 0)
      return lens_error_set (err, LENS_ERROR_PARSE,
          "model '%s': metadata 'stride' is '%s', expected a power of 2",
          path, v);
    max_stride = (int) s;
  }

  n_out = lens_model_n_outputs (model);
  if (n_out <= 0 || n_out > (int) G_N_ELEMENTS (shapes))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "model '%s': %d outputs is no detection layout lens decodes", path,
        n_out);
  for (int i = 0; i < n_out; i++) {
    shapes[i].ndim = lens_model_output_shape (model, i, shapes[i].shape);
    if (shapes[i].ndim < 0)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "model '%s': output %d ('%s') has no known shape", path, i,
          lens_model_output_name (model, i));
  }

  /* labels first: their count settles layouts the shapes leave open */
  if (labels_path != NULL) {
    if ((st = lens_labels_load (labels_path, &labels, &n_labels, err))
        != LENS_OK)
      return st;
  } else if ((v = lens_model_metadata (model, "names")) != NULL) {
    char *msg = NULL;

    labels = parse_names (v, &n_labels, &msg);
    if (labels == NULL) {
      st = lens_error_set (err, LENS_ERROR_PARSE,
          "model '%s': metadata 'names': %s", path, msg);
      g_free (msg);
      return st;
    }
  }

  family = family_override;
  if (family == LENS_FAMILY_UNKNOWN)
    family = guess_family (model, shapes, n_out, in_w, in_h, max_stride,
        n_labels);
  if (family == LENS_FAMILY_UNKNOWN) {
    GString *desc = g_string_new (NULL);
    char buf[64];

    for (int i = 0; i < n_out; i++)
      g_string_append_printf (desc, "%s%s %s", i ? ", " : "",
          lens_model_output_name (model, i),
          shape_str (&shapes[i], buf, sizeof buf));
    st = lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "model '%s': outputs (%s) match no detection family; name one",
        path, desc->str);
    g_string_free (desc, TRUE);
    g_strfreev (labels);
    return st;
  }

  st = layout_check (family, shapes, n_out, in_w, in_h, max_stride,
      n_labels, &n_classes, config->strides, &config->n_strides, err);
  if (st != LENS_OK) {
    lens_error_prefix (err, "model '%s': ", path);
    g_strfreev (labels);
    return st;
  }

  if (labels != NULL && n_labels != n_classes) {
    st = lens_error_set (err, LENS_ERROR_INVALID,
        "model '%s': %d labels (%s) but the %s output has %d classes", path,
        n_labels, labels_path ? labels_path : "metadata 'names'",
        lens_family_name (family), n_classes);
    g_strfreev (labels);
    return st;
  }
  if (labels == NULL) {
    /* no names anywhere: the class ids are the labels */
    labels = g_new0 (char *, n_classes + 1);
    for (int i = 0; i < n_classes; i++)
      labels[i] = g_strdup_printf ("%d", i);
  }

  config->family = family;
  config->input_width = in_w;
  config->input_height = in_h;
  config->n_classes = n_classes;
  config->labels = labels;
  return LENS_OK;
}

void
lens_decode_config_clear (LensDecodeConfig * config)
{
  if (config == NULL)
    return;
  g_strfreev (config->labels);
  memset (config, 0, sizeof *config);
}

/* ---- NMS -------------------------------------------------------------------- */

float
lens_iou (const LensDetection * a, const LensDetection * b)
{
  float x1 = MAX (a->x, b->x), y1 = MAX (a->y, b->y);
  float x2 = MIN (a->x + a->w, b->x + b->w);
  float y2 = MIN (a->y + a->h, b->y + b->h);
  float inter, uni;

  if (x2 <= x1 || y2 <= y1)
    return 0.0f;
  inter = (x2 - x1) * (y2 - y1);
  uni = a->w * a->h + b->w * b->h - inter;
  return uni > 0.0f ? inter / uni : 0.0f;
}

typedef struct
{
  LensDetection d;
  int index;
} Ranked;

static int
compare_ranked (const void *pa, const void *pb)
{
  const Ranked *a = pa, *b = pb;

  if (a->d.score != b->d.score)
    return a->d.score > b->d.score ? -1 : 1;
  /* equal scores keep their input order: results do not depend on qsort */
  return a->index - b->index;
}

static void
sort_by_score (LensDetection * dets, int n)
{
  Ranked *r;

  if (n < 2)
    return;
  r = g_new (Ranked, n);
  for (int i = 0; i < n; i++) {
    r[i].d = dets[i];
    r[i].index = i;
  }
  qsort (r, n, sizeof *r, compare_ranked);
  for (int i = 0; i < n; i++)
    dets[i] = r[i].d;
  g_free (r);
}

/* Greedy NMS: a box survives unless a higher-scored survivor of its class
 * overlaps it by more than @iou_threshold. Comparing against survivors
 * only (at most max_detections of them) keeps it O(n * kept). */
void
lens_nms (LensDetection * dets, int *n, float iou_threshold,
    int max_detections)
{
  int kept = 0;

  sort_by_score (dets, *n);
  for (int i = 0; i < *n; i++) {
    gboolean keep = TRUE;

    if (max_detections > 0 && kept >= max_detections)
      break;
    for (int j = 0; j < kept && keep; j++)
      if (dets[j].class_id == dets[i].class_id
          && lens_iou (&dets[j], &dets[i]) > iou_threshold)
        keep = FALSE;
    if (keep)
      dets[kept++] = dets[i];
  }
  *n = kept;
}

/* ---- decoders ----------------------------------------------------------------- */

/* Output data as float32, converted once when the model produced another
 * float type (YOLOv5 fp16 exports). */
typedef struct
{
  const float *data;
  float *owned;
} Floats;

static LensStatus
floats_get (const LensTensor * t, int index, Floats * f, LensError *err)
{
  int64_t n = lens_tensor_numel (t);

  f->owned = NULL;
  if (t->host == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "output %d ('%s') has no host data (download it first)", index,
        t->name ? t->name : "");
  if (t->dtype == LENS_DTYPE_FLOAT) {
    f->data = t->host;
    return LENS_OK;
  }
  if (!lens_dtype_is_float (t->dtype))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "output %d ('%s') is %s, expected a float type", index,
        t->name ? t->name : "", lens_dtype_name (t->dtype));
  f->owned = g_new (float, n);
  for (int64_t i = 0; i < n; i++)
    f->owned[i] = (float) lens_tensor_get_f64 (t, i);
  f->data = f->owned;
  return LENS_OK;
}

static inline float
sigmoidf (float x)
{
  return 1.0f / (1.0f + expf (-x));
}

/* Adds a candidate given by its corners in input pixels. */
static inline void
add_box (GArray * cands, int class_id, float score, float x1, float y1,
    float x2, float y2)
{
  LensDetection d;

  if (!isfinite (x1) || !isfinite (y1) || !isfinite (x2) || !isfinite (y2))
    return;
  d.class_id = class_id;
  d.score = score;
  d.x = x1;
  d.y = y1;
  d.w = x2 - x1;
  d.h = y2 - y1;
  g_array_append_val (cands, d);
}

/* argmax over @n values @stride apart */
static inline int
best_class (const float *p, int n, int64_t stride, float *score)
{
  int best = 0;
  float bs = p[0];

  for (int c = 1; c < n; c++) {
    float v = p[c * stride];

    if (v > bs) {
      bs = v;
      best = c;
    }
  }
  *score = bs;
  return best;
}

/* [1,N,5+C]: cx,cy,w,h in input pixels, objectness, class probabilities */
static void
decode_yolov5 (const LensDecodeConfig * c, const float *p, int64_t rows,
    GArray * cands)
{
  int64_t cols = 5 + c->n_classes;

  for (int64_t r = 0; r < rows; r++, p += cols) {
    float obj = p[4], cls, score;
    int k;

    /* score = obj * cls <= obj: most rows stop here */
    if (!(obj > c->conf_threshold))
      continue;
    k = best_class (p + 5, c->n_classes, 1, &cls);
    score = obj * cls;
    if (score > c->conf_threshold)
      add_box (cands, k, score, p[0] - p[2] / 2, p[1] - p[3] / 2,
          p[0] + p[2] / 2, p[1] + p[3] / 2);
  }
}

/* [1,4+C,N]: rows cx,cy,w,h then class scores, one column per anchor.
 * The argmax runs row by row: a column walk would stride N floats. */
static void
decode_yolov8 (const LensDecodeConfig * c, const float *p, int64_t n,
    GArray * cands)
{
  float *best = g_new (float, n);
  int *cls = g_new0 (int, n);

  memcpy (best, p + 4 * n, n * sizeof (float));
  for (int k = 1; k < c->n_classes; k++) {
    const float *row = p + (4 + k) * n;

    for (int64_t i = 0; i < n; i++) {
      if (row[i] > best[i]) {
        best[i] = row[i];
        cls[i] = k;
      }
    }
  }
  for (int64_t i = 0; i < n; i++) {
    float cx = p[i], cy = p[n + i], w = p[2 * n + i], h = p[3 * n + i];

    if (best[i] > c->conf_threshold)
      add_box (cands, cls[i], best[i], cx - w / 2, cy - h / 2, cx + w / 2,
          cy + h / 2);
  }
  g_free (best);
  g_free (cls);
}

/* [1,K,6]: x1,y1,x2,y2, score, class id; the graph already ran NMS */
static void
decode_end2end (const LensDecodeConfig * c, const float *p, int64_t rows,
    GArray * cands)
{
  for (int64_t r = 0; r < rows; r++, p += 6) {
    float id = p[5];

    if (!(p[4] > c->conf_threshold))
      continue;
    /* an id outside the labels is a broken export, not a detection */
    if (!(id >= 0.0f && id < (float) c->n_classes))
      continue;
    add_box (cands, (int) lrintf (id), p[4], p[0], p[1], p[2], p[3]);
  }
}

/* [1,N,5+C] raw, one row per cell, strides finest first:
 * x = (tx + gx) * s, w = exp (tw) * s (centre and size) */
static void
decode_yolox (const LensDecodeConfig * c, const float *p, GArray * cands)
{
  int64_t cols = 5 + c->n_classes;

  for (int l = 0; l < c->n_strides; l++) {
    int s = c->strides[l];
    int gw = (c->input_width + s - 1) / s, gh = (c->input_height + s - 1) / s;

    for (int gy = 0; gy < gh; gy++) {
      for (int gx = 0; gx < gw; gx++, p += cols) {
        float obj = p[4], cls, score, cx, cy, w, h;
        int k;

        if (!(obj > c->conf_threshold))
          continue;
        k = best_class (p + 5, c->n_classes, 1, &cls);
        score = obj * cls;
        if (!(score > c->conf_threshold))
          continue;
        cx = (p[0] + gx) * s;
        cy = (p[1] + gy) * s;
        w = expf (p[2]) * s;
        h = expf (p[3]) * s;
        add_box (cands, k, score, cx - w / 2, cy - h / 2, cx + w / 2,
            cy + h / 2);
      }
    }
  }
}

/* Expected value of a softmax over @bins logits, in bins. */
static float
distribution_mean (const float *logits, int bins)
{
  float m = logits[0], sum = 0.0f, acc = 0.0f;

  for (int i = 1; i < bins; i++)
    m = MAX (m, logits[i]);
  for (int i = 0; i < bins; i++) {
    float e = expf (logits[i] - m);

    sum += e;
    acc += e * i;
  }
  return acc / sum;
}

/* per level [1,HW,C] sigmoided class scores and [1,HW,4*bins] distances
 * (l,t,r,b as distributions over 0..bins-1 strides) from the cell centre
 * ((x + 0.5) * stride: NanoDet's GFL head) */
static void
decode_nanodet (const LensDecodeConfig * c, const Floats * data,
    const NanoLevel * levels, int n_levels, GArray * cands)
{
  for (int l = 0; l < n_levels; l++) {
    const NanoLevel *lv = &levels[l];
    const float *cls = data[lv->cls].data, *box = data[lv->box].data;
    int s = lv->stride;

    for (int64_t i = 0; i < lv->hw; i++) {
      float score, cx, cy, d[4];
      int k = best_class (cls + i * c->n_classes, c->n_classes, 1, &score);

      if (!(score > c->conf_threshold))
        continue;
      for (int side = 0; side < 4; side++)
        d[side] = distribution_mean (box + i * 4 * lv->bins + side * lv->bins,
            lv->bins) * s;
      cx = ((float) (i % lv->grid_w) + 0.5f) * s;
      cy = ((float) (i / lv->grid_w) + 0.5f) * s;
      add_box (cands, k, score, cx - d[0], cy - d[1], cx + d[2], cy + d[3]);
    }
  }
}

/* [1,5+C,H,W]: objectness, tx,ty,tw,th, class probabilities. As the
 * upstream FastestDet example: centre ((tanh (tx) + gx) / W) and size
 * (sigmoid (tw)) are fractions of the input; score obj^0.6 * cls^0.4. */
static void
decode_fastestdet (const LensDecodeConfig * c, const float *p, int gh,
    int gw, GArray * cands)
{
  int64_t plane = (int64_t) gh * gw;

  for (int gy = 0; gy < gh; gy++) {
    for (int gx = 0; gx < gw; gx++) {
      const float *q = p + (int64_t) gy * gw + gx;
      float obj = q[0], cls, score, cx, cy, w, h;
      int k;

      if (!(obj > 0.0f))
        continue;
      k = best_class (q + 5 * plane, c->n_classes, plane, &cls);
      if (!(cls > 0.0f))
        continue;
      score = powf (obj, 0.6f) * powf (cls, 0.4f);
      if (!(score > c->conf_threshold))
        continue;
      cx = (tanhf (q[plane]) + gx) / gw * c->input_width;
      cy = (tanhf (q[2 * plane]) + gy) / gh * c->input_height;
      w = sigmoidf (q[3 * plane]) * c->input_width;
      h = sigmoidf (q[4 * plane]) * c->input_height;
      add_box (cands, k, score, cx - w / 2, cy - h / 2, cx + w / 2,
          cy + h / 2);
    }
  }
}

LensStatus
lens_decode (const LensDecodeConfig * config,
    const LensTensor * const *outputs, int n_outputs,
    const LensLetterbox * box, int source_width, int source_height,
    LensDetection ** out, int *n_out, LensError *err)
{
  Shape shapes[16];
  Floats data[16];
  NanoLevel levels[8];
  int n_levels = 0, n_classes = 0, strides[8] = { 0 }, n_strides = 0, n;
  LensDecodeConfig c;
  GArray *cands;
  LensStatus st = LENS_OK;
  float sx, sy, px, py;

  *out = NULL;
  *n_out = 0;
  if (config->family == LENS_FAMILY_UNKNOWN || config->n_classes <= 0
      || config->input_width <= 0 || config->input_height <= 0)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "decode: the configuration is not initialised (family %s, %d "
        "classes, input %dx%d)", lens_family_name (config->family),
        config->n_classes, config->input_width, config->input_height);
  if (n_outputs <= 0 || n_outputs > (int) G_N_ELEMENTS (shapes))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "decode: %d outputs", n_outputs);
  if (source_width <= 0 || source_height <= 0)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "decode: source image is %dx%d", source_width, source_height);
  if (box != NULL && (!(box->scale_x > 0.0f) || !(box->scale_y > 0.0f)))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "decode: letterbox scale %gx%g", box->scale_x, box->scale_y);

  for (int i = 0; i < n_outputs; i++) {
    shapes[i].ndim = outputs[i]->ndim;
    memcpy (shapes[i].shape, outputs[i]->shape, sizeof shapes[i].shape);
  }
  /* the same layout rules as at configuration, against the config */
  c = *config;
  if (c.family == LENS_FAMILY_NANODET) {
    st = nanodet_levels (shapes, n_outputs, c.input_width, c.input_height,
        c.n_classes, levels, &n_levels, &n_classes, err);
  } else {
    st = layout_check (c.family, shapes, n_outputs, c.input_width,
        c.input_height, c.n_strides ? c.strides[c.n_strides - 1] : 0,
        c.n_classes, &n_classes, strides, &n_strides, err);
    if (st == LENS_OK && c.family == LENS_FAMILY_YOLOX) {
      /* the grid must be the one the rows were checked against */
      memcpy (c.strides, strides, sizeof strides);
      c.n_strides = n_strides;
    }
  }
  if (st != LENS_OK) {
    lens_error_prefix (err, "decode: ");
    return st;
  }
  if (n_classes != c.n_classes)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "decode: outputs have %d classes, the configuration %d",
        n_classes, c.n_classes);

  for (int i = 0; i < n_outputs; i++)
    data[i].owned = NULL;
  for (int i = 0; i < n_outputs && st == LENS_OK; i++)
    st = floats_get (outputs[i], i, &data[i], err);
  if (st != LENS_OK) {
    for (int i = 0; i < n_outputs; i++)
      g_free (data[i].owned);
    lens_error_prefix (err, "decode: ");
    return st;
  }

  cands = g_array_new (FALSE, FALSE, sizeof (LensDetection));
  switch (c.family) {
    case LENS_FAMILY_YOLOV5:
      decode_yolov5 (&c, data[0].data, shapes[0].shape[1], cands);
      break;
    case LENS_FAMILY_YOLOV8:
      decode_yolov8 (&c, data[0].data, shapes[0].shape[2], cands);
      break;
    case LENS_FAMILY_END2END:
      decode_end2end (&c, data[0].data, shapes[0].shape[1], cands);
      break;
    case LENS_FAMILY_YOLOX:
      decode_yolox (&c, data[0].data, cands);
      break;
    case LENS_FAMILY_NANODET:
      decode_nanodet (&c, data, levels, n_levels, cands);
      break;
    case LENS_FAMILY_FASTESTDET:
      decode_fastestdet (&c, data[0].data, (int) shapes[0].shape[2],
          (int) shapes[0].shape[3], cands);
      break;
    default:
      break;
  }
  for (int i = 0; i < n_outputs; i++)
    g_free (data[i].owned);

  n = (int) cands->len;
  if (c.family == LENS_FAMILY_END2END) {
    sort_by_score ((LensDetection *) cands->data, n);
  } else {
    if (n > MAX_NMS_CANDIDATES) {
      sort_by_score ((LensDetection *) cands->data, n);
      n = MAX_NMS_CANDIDATES;
    }
    lens_nms ((LensDetection *) cands->data, &n, c.iou_threshold,
        c.max_detections);
  }
  if (c.max_detections > 0 && n > c.max_detections)
    n = c.max_detections;

  /* input pixels to source pixels, clipped to the source image */
  sx = box ? box->scale_x : 1.0f;
  sy = box ? box->scale_y : 1.0f;
  px = box ? box->pad_x : 0.0f;
  py = box ? box->pad_y : 0.0f;
  {
    LensDetection *d = (LensDetection *) cands->data;
    int kept = 0;

    for (int i = 0; i < n; i++) {
      float x1 = (d[i].x - px) / sx, y1 = (d[i].y - py) / sy;
      float x2 = (d[i].x + d[i].w - px) / sx;
      float y2 = (d[i].y + d[i].h - py) / sy;

      x1 = CLAMP (x1, 0.0f, (float) source_width);
      x2 = CLAMP (x2, 0.0f, (float) source_width);
      y1 = CLAMP (y1, 0.0f, (float) source_height);
      y2 = CLAMP (y2, 0.0f, (float) source_height);
      /* wholly in the padding: nothing of it is in the image */
      if (!(x2 > x1) || !(y2 > y1))
        continue;
      d[kept] = d[i];
      d[kept].x = x1;
      d[kept].y = y1;
      d[kept].w = x2 - x1;
      d[kept].h = y2 - y1;
      kept++;
    }
    n = kept;
  }

  *n_out = n;
  *out = (LensDetection *) g_array_free (cands, FALSE);
  if (n == 0) {
    g_free (*out);
    *out = NULL;
  }
  return LENS_OK;
}
