/* lensd-engine.c: the one inference engine every stream shares. Loads the
 * model (or, without one, starts the motion engine) once at daemon start
 * by bringing a lensdetect of its own to PAUSED: that instance keeps the
 * plugin's process-wide model cache entry alive, so every stream's
 * lensdetect made here shares the loaded weights and never loads again.
 * Also sets the program cache directory and describes the engine for
 * /api/v1/info.
 */
#include "lensd.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "lens.h"

G_DEFINE_QUARK (lensd-error-quark, lensd_error);

struct _LensdEngine
{
  gchar *model_path;            /* NULL: motion mode */
  gchar *labels_path;
  gchar *device;
  gdouble conf_threshold, iou_threshold;
  guint feature_channels;

  GstElement *holder;           /* the engine's own lensdetect, PAUSED */
  GstStructure *info;           /* its model-info */
  gchar *model_name;
  gchar *model_sha256;
};

/* Points the program cache at @dir when it can be written; a directory
 * that cannot is reported and the disk cache is left off, which only
 * costs compile time. */
static void
lensd_engine_set_cache_dir (const gchar *dir)
{
  if (dir == NULL || *dir == '\0')
    return;
  if (g_mkdir_with_parents (dir, 0700) != 0) {
    g_warning ("cache-dir %s cannot be created (%s): compiled OpenCL "
        "programs are not kept", dir, g_strerror (errno));
    lens_program_cache_set_dir (NULL);
    return;
  }
  if (g_access (dir, W_OK | X_OK) != 0) {
    g_warning ("cache-dir %s is not writable (%s): compiled OpenCL "
        "programs are not kept", dir, g_strerror (errno));
    lens_program_cache_set_dir (NULL);
    return;
  }
  lens_program_cache_set_dir (dir);
}

static GstElement *
lensd_engine_new_lensdetect (const LensdEngine *engine, guint interval)
{
  GstElement *det = gst_element_factory_make ("lensdetect", NULL);

  if (det == NULL)
    return NULL;
  /* the model cache shares a model between instances whose model, labels,
   * device and feature-maps match: every instance gets the same */
  g_object_set (det,
      "model", engine->model_path,
      "labels", engine->labels_path,
      "device", engine->device,
      "conf-threshold", (gfloat) engine->conf_threshold,
      "iou-threshold", (gfloat) engine->iou_threshold,
      "feature-maps", TRUE,
      "feature-channels", engine->feature_channels,
      "interval", MAX (interval, 1), NULL);
  gst_util_set_object_arg (G_OBJECT (det), "mode",
      engine->model_path != NULL ? "detect" : "motion");
  return det;
}

/* The error lensdetect posted while starting, as "message: detail". */
static gchar *
lensd_engine_start_error (GstBus *bus)
{
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  GError *gerr = NULL;
  gchar *debug = NULL, *text;

  if (msg == NULL)
    return g_strdup ("lensdetect did not start");
  gst_message_parse_error (msg, &gerr, &debug);
  text = debug != NULL ? g_strdup_printf ("%s: %s", gerr->message, debug) :
      g_strdup (gerr->message);
  g_error_free (gerr);
  g_free (debug);
  gst_message_unref (msg);
  return text;
}

LensdEngine *
lensd_engine_new (const LensdConfig *config, GError **error)
{
  LensdEngine *engine;
  GstBus *bus;
  GstStateChangeReturn ret;

  g_return_val_if_fail (config != NULL, NULL);

  engine = g_new0 (LensdEngine, 1);
  engine->model_path = g_strdup (config->model_path);
  engine->labels_path = g_strdup (config->labels_path);
  engine->device = g_strdup (config->device);
  engine->conf_threshold = config->conf_threshold;
  engine->iou_threshold = config->iou_threshold;
  /* the plugin's range */
  engine->feature_channels = MIN (config->feature_channels, 4096);

  /* before anything is compiled */
  lensd_engine_set_cache_dir (config->cache_dir);

  engine->holder = lensd_engine_new_lensdetect (engine, 1);
  if (engine->holder == NULL) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_FAILED,
        "the lensdetect GStreamer element is not installed (is "
        "libgstlens.so on GST_PLUGIN_PATH?)");
    lensd_engine_free (engine);
    return NULL;
  }
  gst_object_ref_sink (engine->holder);
  bus = gst_bus_new ();
  gst_element_set_bus (engine->holder, bus);
  /* a lone element: PAUSED runs its start (), which loads the model; no
   * data ever flows through this one */
  ret = gst_element_set_state (engine->holder, GST_STATE_PAUSED);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    gchar *why = lensd_engine_start_error (bus);

    if (engine->model_path != NULL)
      g_set_error (error, LENSD_ERROR, LENSD_ERROR_MODEL,
          "model %s cannot be loaded: %s", engine->model_path, why);
    else
      g_set_error (error, LENSD_ERROR, LENSD_ERROR_MODEL,
          "motion detection cannot start on device %s: %s",
          engine->device != NULL ? engine->device : "auto", why);
    g_free (why);
    gst_element_set_bus (engine->holder, NULL);
    gst_object_unref (bus);
    lensd_engine_free (engine);
    return NULL;
  }
  gst_element_set_bus (engine->holder, NULL);
  gst_object_unref (bus);

  g_object_get (engine->holder, "model-info", &engine->info, NULL);
  if (engine->info == NULL) {
    g_set_error (error, LENSD_ERROR, LENSD_ERROR_MODEL,
        "lensdetect started without model information (plugin too old?)");
    lensd_engine_free (engine);
    return NULL;
  }
  engine->model_name = g_strdup (gst_structure_get_string (engine->info,
          "name"));
  engine->model_sha256 = g_strdup (gst_structure_get_string (engine->info,
          "sha256"));
  g_message ("engine: %s on %s (%s)", engine->model_name,
      gst_structure_get_string (engine->info, "device"),
      gst_structure_get_string (engine->info, "platform"));
  return engine;
}

void
lensd_engine_free (LensdEngine *engine)
{
  if (engine == NULL)
    return;
  if (engine->holder != NULL) {
    gst_element_set_state (engine->holder, GST_STATE_NULL);
    gst_object_unref (engine->holder);
  }
  if (engine->info != NULL)
    gst_structure_free (engine->info);
  g_free (engine->model_path);
  g_free (engine->labels_path);
  g_free (engine->device);
  g_free (engine->model_name);
  g_free (engine->model_sha256);
  g_free (engine);
}

GstElement *
lensd_engine_make_detector (LensdEngine *engine, guint interval)
{
  g_return_val_if_fail (engine != NULL, NULL);

  return lensd_engine_new_lensdetect (engine, interval);
}

gboolean
lensd_engine_is_motion (const LensdEngine *engine)
{
  g_return_val_if_fail (engine != NULL, TRUE);

  return engine->model_path == NULL;
}

const gchar *
lensd_engine_model_name (const LensdEngine *engine)
{
  g_return_val_if_fail (engine != NULL, NULL);

  return engine->model_name;
}

const gchar *
lensd_engine_model_sha256 (const LensdEngine *engine)
{
  g_return_val_if_fail (engine != NULL, NULL);

  return engine->model_sha256;
}

static void
lensd_builder_add_string_or_null (JsonBuilder *b, const gchar *name,
    const gchar *value)
{
  json_builder_set_member_name (b, name);
  if (value != NULL)
    json_builder_add_string_value (b, value);
  else
    json_builder_add_null_value (b);
}

void
lensd_engine_describe (const LensdEngine *engine, JsonBuilder *builder)
{
  const GstStructure *info;
  const GValue *classes;
  gint width = 0, height = 0;

  g_return_if_fail (engine != NULL);
  g_return_if_fail (JSON_IS_BUILDER (builder));

  info = engine->info;
  json_builder_set_member_name (builder, "engine");
  json_builder_begin_object (builder);
  lensd_builder_add_string_or_null (builder, "platform",
      gst_structure_get_string (info, "platform"));
  lensd_builder_add_string_or_null (builder, "device",
      gst_structure_get_string (info, "device"));
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "model");
  json_builder_begin_object (builder);
  lensd_builder_add_string_or_null (builder, "name", engine->model_name);
  lensd_builder_add_string_or_null (builder, "path",
      gst_structure_get_string (info, "path"));
  lensd_builder_add_string_or_null (builder, "sha256", engine->model_sha256);
  lensd_builder_add_string_or_null (builder, "family",
      gst_structure_get_string (info, "family"));
  json_builder_set_member_name (builder, "input");
  if (gst_structure_get_int (info, "input-width", &width)
      && gst_structure_get_int (info, "input-height", &height)) {
    json_builder_begin_object (builder);
    json_builder_set_member_name (builder, "width");
    json_builder_add_int_value (builder, width);
    json_builder_set_member_name (builder, "height");
    json_builder_add_int_value (builder, height);
    json_builder_end_object (builder);
  } else {
    /* motion works on the frame as it comes */
    json_builder_add_null_value (builder);
  }
  json_builder_set_member_name (builder, "classes");
  json_builder_begin_array (builder);
  classes = gst_structure_get_value (info, "classes");
  if (classes != NULL && GST_VALUE_HOLDS_ARRAY (classes)) {
    for (guint i = 0; i < gst_value_array_get_size (classes); i++)
      json_builder_add_string_value (builder,
          g_value_get_string (gst_value_array_get_value (classes, i)));
  } else if (engine->model_path == NULL) {
    json_builder_add_string_value (builder, "motion");
  }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
}
