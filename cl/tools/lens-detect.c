/* lens-detect: runs a detection model on still images and prints, per
 * image, one JSON document (one line) on stdout:
 *
 *   {"image": PATH, "width": W, "height": H,
 *    "letterbox": {"scale_x": SX, "scale_y": SY, "pad_x": PX, "pad_y": PY},
 *    "inference_ms": T,
 *    "detections": [{"class_id": I, "label": L, "score": S,
 *                    "box": {"x": X, "y": Y, "w": W, "h": H}}, ...]}
 *
 * Boxes are in source-image pixels (top-left corner and size); scores are
 * rounded to 4 decimals and boxes to 2. The letterbox is where the image
 * landed in the model input (x_src = (x_in - pad_x) / scale_x), exact.
 *
 *   lens-detect --model M.onnx [--labels F] [--conf 0.25] [--iou 0.45]
 *               [--device D] [--family NAME] [--feature-tensors A,B,C]
 *               [--heatmap OUT.png] [--save-input DIR] IMAGE...
 *
 * Images are JPEG (libjpeg-turbo) or PNG (libpng), told apart by their
 * first bytes, decoded to 8-bit RGB (EXIF orientation is not applied).
 * --heatmap writes the fused multi-scale heatmap over the image as PNG:
 * each scale's score heatmap (or, where the family has none, its
 * activation heatmap scaled to 0..1 by its own minimum and maximum) is
 * sampled bilinearly at every image pixel through the letterbox, the
 * scales fused by their maximum, coloured with the jet colormap and
 * blended half and half over the image. With several images, image k
 * (counting from 0 in command-line order) goes to OUT-k.png (the index
 * goes before the extension).
 * --save-input writes each image's model input, as pre-processing made it
 * and the model computed on, to DIR/<image file name>.<model file name
 * without .onnx>.npy (float32 [1,3,H,W], also for a float16 model: lens
 * computes those in float32), e.g. to run another runtime on the very
 * same input; DIR is created if needed. Two images of the same file name
 * would write the same file: the second is refused.
 *
 * An image that cannot be read gives one line on stderr naming the file;
 * the others are still processed, and the exit status is then 1.
 */
#include "lens.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "lens-image.h"

#define HEATMAP_ALPHA 0.5f

/* ---- heatmap --------------------------------------------------------------- */

/* Bilinear sample of a @w x @h grid at cell coordinates (u, v), cell
 * centres at integers, clamped at the borders. */
static float
sample (const float *g, int w, int h, float u, float v)
{
  int x0, y0, x1, y1;
  float fx, fy;

  u = CLAMP (u, 0.0f, (float) (w - 1));
  v = CLAMP (v, 0.0f, (float) (h - 1));
  x0 = (int) u;
  y0 = (int) v;
  x1 = MIN (x0 + 1, w - 1);
  y1 = MIN (y0 + 1, h - 1);
  fx = u - x0;
  fy = v - y0;
  return (1 - fy) * ((1 - fx) * g[y0 * w + x0] + fx * g[y0 * w + x1])
      + fy * ((1 - fx) * g[y1 * w + x0] + fx * g[y1 * w + x1]);
}

/* jet: blue (0) through cyan, yellow to red (1) */
static void
jet (float v, float rgb[3])
{
  for (int c = 0; c < 3; c++)
    rgb[c] = CLAMP (1.5f - fabsf (4.0f * v - (3.0f - c)), 0.0f, 1.0f);
}

/* One scale as 0..1 values: the score heatmap, else the activation
 * heatmap over its own range; NULL when neither is there. */
static float *
scale_values (const LensFeatureMap * fm)
{
  int n = fm->width * fm->height;
  float lo = G_MAXFLOAT, hi = -G_MAXFLOAT, *v;

  if (fm->score != NULL)
    return g_memdup2 (fm->score, sizeof (float) * n);
  if (fm->activation == NULL || n == 0)
    return NULL;
  v = g_new (float, n);
  for (int i = 0; i < n; i++) {
    lo = MIN (lo, fm->activation[i]);
    hi = MAX (hi, fm->activation[i]);
  }
  for (int i = 0; i < n; i++)
    v[i] = hi > lo ? (fm->activation[i] - lo) / (hi - lo) : 0.0f;
  return v;
}

static gboolean
write_heatmap (const char *path, const LensImage * img,
    const LensDetectorResult * res, char **error)
{
  const LensLetterbox *box = &res->letterbox;
  LensImage out = { img->width, img->height, NULL };
  float **values = g_new0 (float *, MAX (res->n_feature_maps, 1));
  gboolean ok;

  for (int m = 0; m < res->n_feature_maps; m++)
    values[m] = scale_values (&res->feature_maps[m]);
  out.rgb = g_malloc ((gsize) img->width * img->height * 3);
  for (int y = 0; y < img->height; y++) {
    /* the pixel centre in model-input pixels */
    float yi = (y + 0.5f) * box->scale_y + box->pad_y;

    for (int x = 0; x < img->width; x++) {
      float xi = (x + 0.5f) * box->scale_x + box->pad_x;
      float v = 0.0f, color[3];
      gsize at = ((gsize) y * img->width + x) * 3;

      for (int m = 0; m < res->n_feature_maps; m++) {
        const LensFeatureMap *fm = &res->feature_maps[m];

        if (values[m] != NULL)
          v = MAX (v, sample (values[m], fm->width, fm->height,
                  xi / fm->stride - 0.5f, yi / fm->stride - 0.5f));
      }
      jet (CLAMP (v, 0.0f, 1.0f), color);
      for (int c = 0; c < 3; c++)
        out.rgb[at + c] = (guint8) lrintf ((1.0f - HEATMAP_ALPHA)
            * img->rgb[at + c] + HEATMAP_ALPHA * 255.0f * color[c]);
    }
  }
  ok = lens_image_write_png (path, &out, error);
  for (int m = 0; m < res->n_feature_maps; m++)
    g_free (values[m]);
  g_free (values);
  g_free (out.rgb);
  return ok;
}

/* OUT.png for one image; OUT-k.png for image k of several. */
static char *
heatmap_path (const char *base, int index, int n_images)
{
  const char *slash = strrchr (base, '/');
  const char *dot = strrchr (base, '.');

  if (n_images == 1)
    return g_strdup (base);
  if (dot == NULL || (slash != NULL && dot < slash) || dot == base
      || (slash != NULL && dot == slash + 1))
    return g_strdup_printf ("%s-%d", base, index);
  return g_strdup_printf ("%.*s-%d%s", (int) (dot - base), base, index, dot);
}

/* ---- JSON ------------------------------------------------------------------ */

/* @v to @digits decimals: dividing by the power of ten (not multiplying by
 * its inverse, which is inexact) gives the double nearest the decimal. */
static double
round_to (double v, int digits)
{
  double scale = pow (10.0, digits);

  return round (v * scale) / scale;
}

/* JsonGenerator prints every double with 17 digits (0.90869999999999995
 * for 0.9087); this prints the tree the same way but each double in the
 * fewest digits that read back as the same value. Strings, integers and
 * literals are still json-glib's. */
static void
append_json (GString * out, JsonNode * node)
{
  switch (JSON_NODE_TYPE (node)) {
    case JSON_NODE_OBJECT:{
      JsonObject *obj = json_node_get_object (node);
      GList *members = json_object_get_members (obj);

      g_string_append_c (out, '{');
      for (GList * l = members; l != NULL; l = l->next) {
        JsonNode *key = json_node_init_string (json_node_alloc (), l->data);
        char *text = json_to_string (key, FALSE);

        g_string_append_printf (out, "%s%s:", l == members ? "" : ",",
            text);
        append_json (out, json_object_get_member (obj, l->data));
        g_free (text);
        json_node_unref (key);
      }
      g_string_append_c (out, '}');
      g_list_free (members);
      break;
    }
    case JSON_NODE_ARRAY:{
      JsonArray *arr = json_node_get_array (node);

      g_string_append_c (out, '[');
      for (guint i = 0; i < json_array_get_length (arr); i++) {
        if (i > 0)
          g_string_append_c (out, ',');
        append_json (out, json_array_get_element (arr, i));
      }
      g_string_append_c (out, ']');
      break;
    }
    default:
      if (json_node_get_value_type (node) == G_TYPE_DOUBLE) {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        double v = json_node_get_double (node);

        /* every number lens-detect prints started as a float: the fewest
         * digits that read back as the same float, whole numbers without
         * an exponent */
        if (v == floor (v) && fabs (v) < 1e15) {
          g_ascii_formatd (buf, sizeof buf, "%.0f", v);
        } else {
          for (int digits = 1; digits <= 9; digits++) {
            char format[8];

            g_snprintf (format, sizeof format, "%%.%dg", digits);
            g_ascii_formatd (buf, sizeof buf, format, v);
            if ((float) g_ascii_strtod (buf, NULL) == (float) v)
              break;
          }
        }
        g_string_append (out, buf);
      } else {
        char *text = json_to_string (node, FALSE);

        g_string_append (out, text);
        g_free (text);
      }
      break;
  }
}

static void
print_json (const char *path, const LensDetectorResult * res,
    const LensDecodeConfig * config)
{
  JsonBuilder *b = json_builder_new ();
  JsonNode *root;
  GString *text;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "image");
  json_builder_add_string_value (b, path);
  json_builder_set_member_name (b, "width");
  json_builder_add_int_value (b, res->source_width);
  json_builder_set_member_name (b, "height");
  json_builder_add_int_value (b, res->source_height);
  json_builder_set_member_name (b, "letterbox");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "scale_x");
  json_builder_add_double_value (b, res->letterbox.scale_x);
  json_builder_set_member_name (b, "scale_y");
  json_builder_add_double_value (b, res->letterbox.scale_y);
  json_builder_set_member_name (b, "pad_x");
  json_builder_add_double_value (b, res->letterbox.pad_x);
  json_builder_set_member_name (b, "pad_y");
  json_builder_add_double_value (b, res->letterbox.pad_y);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "inference_ms");
  json_builder_add_double_value (b, round_to (res->inference_ms, 2));
  json_builder_set_member_name (b, "detections");
  json_builder_begin_array (b);
  for (int i = 0; i < res->n_detections; i++) {
    const LensDetection *d = &res->detections[i];

    json_builder_begin_object (b);
    json_builder_set_member_name (b, "class_id");
    json_builder_add_int_value (b, d->class_id);
    json_builder_set_member_name (b, "label");
    json_builder_add_string_value (b, d->class_id < config->n_classes ?
        config->labels[d->class_id] : "");
    json_builder_set_member_name (b, "score");
    json_builder_add_double_value (b, round_to (d->score, 4));
    json_builder_set_member_name (b, "box");
    json_builder_begin_object (b);
    json_builder_set_member_name (b, "x");
    json_builder_add_double_value (b, round_to (d->x, 2));
    json_builder_set_member_name (b, "y");
    json_builder_add_double_value (b, round_to (d->y, 2));
    json_builder_set_member_name (b, "w");
    json_builder_add_double_value (b, round_to (d->w, 2));
    json_builder_set_member_name (b, "h");
    json_builder_add_double_value (b, round_to (d->h, 2));
    json_builder_end_object (b);
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);

  root = json_builder_get_root (b);
  text = g_string_new (NULL);
  append_json (text, root);
  printf ("%s\n", text->str);
  fflush (stdout);
  g_string_free (text, TRUE);
  json_node_unref (root);
  g_object_unref (b);
}

/* ---- --save-input ---------------------------------------------------------- */

/* DIR/<image file name>.<model file name without .onnx>.npy */
static char *
input_path (const char *dir, const char *image, const char *model)
{
  char *image_name = g_path_get_basename (image);
  char *model_name = g_path_get_basename (model);
  char *file, *path;

  if (g_str_has_suffix (model_name, ".onnx"))
    model_name[strlen (model_name) - strlen (".onnx")] = '\0';
  file = g_strconcat (image_name, ".", model_name, ".npy", NULL);
  path = g_build_filename (dir, file, NULL);
  g_free (file);
  g_free (model_name);
  g_free (image_name);
  return path;
}

/* Writes the model input of @det's last run for @image; @written holds
 * the files of earlier images, so that a name clash is refused rather
 * than silently overwriting one. */
static gboolean
save_input (LensDetector * det, const char *dir, const char *image,
    const char *model, GHashTable * written, char **error)
{
  LensError err = LENS_ERROR_INIT;
  LensTensor *t = NULL;
  char *path = input_path (dir, image, model);
  gboolean ok = FALSE;

  if (g_hash_table_contains (written, path))
    *error = g_strdup_printf ("--save-input: %s was written for an earlier "
        "image of the same file name", path);
  else if (lens_detector_get_input (det, &t, &err) != LENS_OK
      || lens_npy_save (path, t, &err) != LENS_OK)
    *error = g_strdup_printf ("--save-input: %s", err.message);
  else
    ok = TRUE;
  if (ok)
    g_hash_table_add (written, path);
  else
    g_free (path);
  lens_tensor_free (t);
  lens_error_clear (&err);
  return ok;
}

/* ---- main ------------------------------------------------------------------ */

int
main (int argc, char **argv)
{
  char *model_path = NULL, *labels_path = NULL, *device = NULL,
      *family_name = NULL, *heatmap = NULL, *feature_tensors = NULL,
      *save_dir = NULL;
  double conf = 0.25, iou = 0.45;
  char **images = NULL;
  GOptionEntry entries[] = {
    {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
        "ONNX detection model", "M.onnx"},
    {"labels", 'l', 0, G_OPTION_ARG_FILENAME, &labels_path,
        "class names, one per line (default: the model's metadata)", "F"},
    {"conf", 0, 0, G_OPTION_ARG_DOUBLE, &conf,
        "confidence threshold, in (0, 1] (default 0.25)", "C"},
    {"iou", 0, 0, G_OPTION_ARG_DOUBLE, &iou,
        "NMS IoU threshold, in (0, 1] (default 0.45)", "I"},
    {"device", 'd', 0, G_OPTION_ARG_STRING, &device,
        "OpenCL device: auto, gpu, cpu, P:D or a name (default $LENS_DEVICE)",
        "D"},
    {"family", 0, 0, G_OPTION_ARG_STRING, &family_name,
        "model family (yolov5, yolov8, yolo11, yolo26, yolox, nanodet, "
          "fastestdet; default: detected)", "NAME"},
    {"feature-tensors", 0, 0, G_OPTION_ARG_STRING, &feature_tensors,
        "feature-map tensors, finest first, comma-separated (default: "
          "auto)", "A,B,C"},
    {"heatmap", 0, 0, G_OPTION_ARG_FILENAME, &heatmap,
        "write the fused heatmap over the image as PNG (OUT-k.png for "
          "image k of several)", "OUT.png"},
    {"save-input", 0, 0, G_OPTION_ARG_FILENAME, &save_dir,
          "write each image's model input (float32 [1,3,H,W], as the model "
          "computed on it) to DIR/IMAGE.MODEL.npy", "DIR"},
    {G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &images, NULL,
        "IMAGE..."},
    {NULL}
  };
  GOptionContext *octx;
  GError *gerr = NULL;
  LensError err = LENS_ERROR_INIT;
  LensDetectorOptions opts;
  LensContext *ctx = NULL;
  LensDetector *det = NULL;
  LensFamily family = LENS_FAMILY_UNKNOWN;
  GHashTable *written = g_hash_table_new_full (g_str_hash, g_str_equal,
      g_free, NULL);
  int n_images, failures = 0, status = 1;

  octx = g_option_context_new ("- detect objects in images");
  g_option_context_set_summary (octx, "Prints one JSON document per image "
      "(one line): image, width, height, inference_ms and detections\n"
      "(class_id, label, score, box x/y/w/h in image pixels). Images are "
      "JPEG or PNG.");
  g_option_context_add_main_entries (octx, entries, NULL);
  if (!g_option_context_parse (octx, &argc, &argv, &gerr)) {
    fprintf (stderr, "lens-detect: %s\n", gerr->message);
    g_error_free (gerr);
    g_option_context_free (octx);
    return 2;
  }
  g_option_context_free (octx);
  n_images = images ? (int) g_strv_length (images) : 0;
  if (model_path == NULL || n_images == 0) {
    fprintf (stderr, "usage: lens-detect --model M.onnx [--labels F] "
        "[--conf C] [--iou I] [--device D] [--family NAME] "
        "[--feature-tensors A,B,C] [--heatmap OUT.png] [--save-input DIR] "
        "IMAGE...\n");
    goto out_usage;
  }
  if (!(conf > 0.0 && conf <= 1.0) || !(iou > 0.0 && iou <= 1.0)) {
    fprintf (stderr, "lens-detect: --conf %g / --iou %g: thresholds must "
        "be in (0, 1]\n", conf, iou);
    goto out_usage;
  }
  if (family_name != NULL
      && (family = lens_family_from_name (family_name))
      == LENS_FAMILY_UNKNOWN) {
    fprintf (stderr, "lens-detect: --family '%s': unknown (yolov5, yolov8, "
        "yolo11, yolo26, end2end, yolox, nanodet, fastestdet)\n",
        family_name);
    goto out_usage;
  }

  if (save_dir != NULL && g_mkdir_with_parents (save_dir, 0777) != 0) {
    fprintf (stderr, "lens-detect: --save-input: cannot create %s: %s\n",
        save_dir, g_strerror (errno));
    goto out;
  }

  if (lens_context_new (device, &ctx, &err) != LENS_OK) {
    fprintf (stderr, "lens-detect: %s\n", err.message);
    goto out;
  }
  lens_detector_options_init (&opts);
  opts.model_path = model_path;
  opts.labels_path = labels_path;
  opts.family = family;
  opts.conf_threshold = (float) conf;
  opts.iou_threshold = (float) iou;
  opts.feature_tensors = feature_tensors;
  opts.feature_maps = heatmap != NULL;
  if (lens_detector_new (ctx, &opts, &det, &err) != LENS_OK) {
    fprintf (stderr, "lens-detect: %s\n", err.message);
    goto out;
  }

  for (int i = 0; i < n_images; i++) {
    const char *path = images[i];
    LensImage img;
    char *msg = NULL;
    LensFrame frame = { 0 };
    LensDetectorResult res;

    if (!lens_image_load (path, &img, &msg)) {
      fprintf (stderr, "lens-detect: %s: %s\n", path, msg);
      g_free (msg);
      failures++;
      continue;
    }
    frame.format = LENS_PIXEL_RGB;
    frame.width = img.width;
    frame.height = img.height;
    frame.planes[0] = img.rgb;
    frame.strides[0] = img.width * 3;
    if (lens_detector_run (det, &frame, &res, &err) != LENS_OK) {
      fprintf (stderr, "lens-detect: %s: %s\n", path, err.message);
      lens_error_clear (&err);
      lens_image_clear (&img);
      failures++;
      continue;
    }
    print_json (path, &res, lens_detector_config (det));
    if (save_dir != NULL
        && !save_input (det, save_dir, path, model_path, written, &msg)) {
      fprintf (stderr, "lens-detect: %s: %s\n", path, msg);
      g_free (msg);
      failures++;
    }
    if (heatmap != NULL) {
      char *out_path = heatmap_path (heatmap, i, n_images);

      if (!write_heatmap (out_path, &img, &res, &msg)) {
        fprintf (stderr, "lens-detect: %s: writing heatmap %s: %s\n", path,
            out_path, msg);
        g_free (msg);
        failures++;
      }
      g_free (out_path);
    }
    lens_detector_result_clear (&res);
    lens_image_clear (&img);
  }
  status = failures == 0 ? 0 : 1;

out:
  lens_detector_free (det);
  lens_context_free (ctx);
  lens_error_clear (&err);
  g_free (model_path);
  g_free (labels_path);
  g_free (device);
  g_free (family_name);
  g_free (feature_tensors);
  g_free (heatmap);
  g_free (save_dir);
  g_hash_table_unref (written);
  g_strfreev (images);
  return status;

out_usage:
  status = 2;
  goto out;
}
