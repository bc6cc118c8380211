/* detector.c: a detection model ready to run on video frames.
 *
 * Owns LensDetector: the loaded model (shared, reference counted, between
 * the detectors of lens_detector_new_shared), one execution context and
 * one pre-processor per detector, the decode configuration, the per-family
 * pre-processing, and the choice and computation of the per-scale feature
 * maps and their heatmaps.
 *
 * Pre-processing per family (see ../shared/DATA.md and the upstream
 * demos):
 *   YOLOv5, YOLOv8/11, YOLO26  RGB, x/255, centred letterbox, pad 114
 *                              (Ultralytics LetterBox)
 *   YOLOX                      BGR, 0..255, letterbox at the top-left,
 *                              pad 114 (YOLOX's preproc)
 *   NanoDet                    BGR, (x - mean) / std with mean (103.53,
 *                              116.28, 123.675) and std (57.375, 57.12,
 *                              58.395), centred letterbox, pad 0 before
 *                              normalization: NanoDet's keep_ratio warp
 *                              and the hpc203 demo this export comes from
 *                              (resize_image with keep_ratio=True, border
 *                              value 0) both keep the aspect ratio and
 *                              centre the image on black
 *   FastestDet                 BGR, x/255, stretched to the input (the
 *                              upstream example's plain cv2.resize)
 *
 * Feature maps, auto-selected per detection stride s of the decode
 * configuration (grid gh x gw = ceil (H/s) x ceil (W/s)), among the
 * float32 tensors the graph computes per inference, in execution order:
 *   - the feature map (activation heatmap) is the LAST tensor of shape
 *     [1,C,gh,gw]: the deepest map at that scale, which for every family
 *     here is the detection head's output at that scale (YOLO11/26: its
 *     class branch; NanoDet: its sigmoided class map);
 *   - the score heatmap comes from the family's per-scale class scores:
 *       YOLOv8/11    the last [1,C,gh,gw] with C = nc (YOLO11's class
 *                    branch) or 64 + nc (YOLOv8's box DFL logits then
 *                    class logits concatenated), classes at C - nc,
 *                    through a sigmoid (they are logits);
 *       YOLO26       the same with C = nc or 4 + nc (no DFL);
 *       YOLOX        the last [1,5+nc,gh,gw] (box, objectness and
 *                    classes, already sigmoided in the graph): the
 *                    objectness channel 4, because YOLOX trains its class
 *                    scores on foreground cells only, so their maximum is
 *                    high on background too, while objectness is what
 *                    marks objects (its score is obj x cls);
 *       NanoDet      the class output [1,gh*gw,nc] itself (sigmoided in
 *                    the graph; channel-last);
 *       FastestDet   the last [1,5+nc,gh,gw] (the output): objectness,
 *                    channel 0, already sigmoided, for the same reason
 *                    as YOLOX: its classes are a softmax, whose maximum
 *                    is large on any cell (on bus.jpg and dog.jpg the
 *                    class maximum averages 0.18-0.35 over all cells and
 *                    is above 0.5 on 3-27 % of them; objectness
 *                    averages 0.003-0.10);
 *       YOLOv5       none: its per-scale head mixes 3 anchors of box,
 *                    objectness and classes as raw logits, and its score
 *                    (obj x cls) is no maximum over a channel range.
 * LensDetectorOptions.feature_tensors names the feature maps instead
 * (their stride is the input height over theirs); score heatmaps are then
 * still auto-selected for the strides that match the configuration's.
 * Every tensor read after a run is kept out of the memory plan's reuse
 * (lens_model_keep_tensor), which is why the choice is made when the model
 * is loaded and only when feature maps are asked for.
 */
#include "lens-private.h"

#include <string.h>

#define DEFAULT_CONF_THRESHOLD 0.25f
#define DEFAULT_IOU_THRESHOLD 0.45f
#define DEFAULT_MAX_DETECTIONS 300
/* YOLOv8/11's box branch: 4 sides x 16 distribution bins (reg_max 16) */
#define ULTRALYTICS_DFL_CHANNELS 64
#define MAX_MAPS 8

/* Where one scale's score heatmap comes from. */
typedef struct
{
  char *name;                   /* NULL: the family has none */
  gboolean channel_last;
  int width;                    /* cells per row when channel_last */
  int first, n_classes;
  gboolean sigmoid;
} ScoreSource;

typedef struct
{
  char *name;
  int ndim;
  int64_t shape[LENS_MAX_DIMS];
  int stride, width, height;
  ScoreSource score;
} MapSpec;

/* What detectors of one model share: the model and the choices made at
 * load time. Reference counted: the last detector frees it. */
typedef struct
{
  gint refs;
  LensModel *model;
  LensDecodeConfig config;      /* thresholds as the first detector's */
  LensPreprocess pre;
  gboolean feature_maps;
  int n_maps;
  MapSpec maps[MAX_MAPS];
} Shared;

struct _LensDetector
{
  Shared *shared;
  LensDecodeConfig config;      /* own copy: labels duplicated */
  LensExec *exec;
  LensContext *ctx;             /* the exec's: its queue runs everything */
  LensPreprocessor *pp;
  LensTensor *activation[MAX_MAPS];     /* [H,W] device outputs */
  LensTensor *score[MAX_MAPS];
  int feature_channels;         /* channels of each map copied per run */
};

void
lens_detector_options_init (LensDetectorOptions * options)
{
  memset (options, 0, sizeof *options);
  options->family = LENS_FAMILY_UNKNOWN;
  options->conf_threshold = DEFAULT_CONF_THRESHOLD;
  options->iou_threshold = DEFAULT_IOU_THRESHOLD;
  options->max_detections = DEFAULT_MAX_DETECTIONS;
}

/* ---- pre-processing per family ------------------------------------------------ */

static void
preprocess_for_family (LensFamily family, LensPreprocess * pre)
{
  memset (pre, 0, sizeof *pre);
  for (int c = 0; c < 3; c++)
    pre->std[c] = 1.0f;
  switch (family) {
    case LENS_FAMILY_YOLOX:
      pre->letterbox = TRUE;
      pre->center = FALSE;
      pre->bgr = TRUE;
      pre->pad_value = 114.0f;
      pre->scale = 1.0f;
      break;
    case LENS_FAMILY_NANODET:
      pre->letterbox = TRUE;
      pre->center = TRUE;
      pre->bgr = TRUE;
      pre->pad_value = 0.0f;
      pre->scale = 1.0f;
      /* in the model's channel order, B G R */
      pre->mean[0] = 103.53f;
      pre->mean[1] = 116.28f;
      pre->mean[2] = 123.675f;
      pre->std[0] = 57.375f;
      pre->std[1] = 57.12f;
      pre->std[2] = 58.395f;
      break;
    case LENS_FAMILY_FASTESTDET:
      pre->letterbox = FALSE;
      pre->bgr = TRUE;
      pre->scale = 1.0f / 255.0f;
      break;
    default:
      /* the Ultralytics families */
      pre->letterbox = TRUE;
      pre->center = TRUE;
      pre->bgr = FALSE;
      pre->pad_value = 114.0f;
      pre->scale = 1.0f / 255.0f;
      break;
  }
}

/* ---- feature-map selection ------------------------------------------------------ */

static void
map_spec_clear (MapSpec * m)
{
  g_free (m->name);
  g_free (m->score.name);
  memset (m, 0, sizeof *m);
}

/* Computed float32 tensor @i of the graph when it is [1,C,gh,gw]; its
 * channel count, else 0. */
static int64_t
grid_tensor (const LensModel * model, int i, int gh, int gw,
    const char **name)
{
  int64_t shape[LENS_MAX_DIMS];

  *name = lens_model_tensor_name (model, i);
  if (*name == NULL || lens_model_tensor_dtype (model, *name)
      != LENS_DTYPE_FLOAT)
    return 0;
  if (lens_model_tensor_shape (model, *name, shape) != 4 || shape[0] != 1
      || shape[2] != gh || shape[3] != gw)
    return 0;
  return shape[1];
}

/* The family's score source at one scale (see the top of the file). */
static void
find_score (const LensModel * model, const LensDecodeConfig * c, int gh,
    int gw, ScoreSource * out)
{
  int n = lens_model_n_tensors (model), nc = c->n_classes;
  const char *name, *found = NULL;
  int first = 0;

  memset (out, 0, sizeof *out);
  switch (c->family) {
    case LENS_FAMILY_YOLOV8:
    case LENS_FAMILY_END2END:
      for (int i = 0; i < n; i++) {
        int64_t ch = grid_tensor (model, i, gh, gw, &name);
        int64_t box = ch - nc;

        if (ch > 0 && (box == 0 || (c->family == LENS_FAMILY_YOLOV8
                    && box == ULTRALYTICS_DFL_CHANNELS)
                || (c->family == LENS_FAMILY_END2END && box == 4))) {
          found = name;
          first = (int) box;
        }
      }
      if (found != NULL) {
        out->name = g_strdup (found);
        out->first = first;
        out->n_classes = nc;
        out->sigmoid = TRUE;
      }
      break;
    case LENS_FAMILY_YOLOX:
    case LENS_FAMILY_FASTESTDET:
      for (int i = 0; i < n; i++)
        if (grid_tensor (model, i, gh, gw, &name) == 5 + nc)
          found = name;
      if (found != NULL) {
        out->name = g_strdup (found);
        /* objectness: YOLOX [x,y,w,h,obj,cls...], FastestDet
         * [obj,x,y,w,h,cls...] */
        out->first = c->family == LENS_FAMILY_YOLOX ? 4 : 0;
        out->n_classes = 1;
      }
      break;
    case LENS_FAMILY_NANODET:
      for (int i = 0; i < lens_model_n_outputs (model); i++) {
        int64_t shape[LENS_MAX_DIMS];
        const char *oname = lens_model_output_name (model, i);

        if (lens_model_output_shape (model, i, shape) == 3 && shape[0] == 1
            && shape[1] == (int64_t) gh * gw && shape[2] == nc
            && lens_model_tensor_dtype (model, oname) == LENS_DTYPE_FLOAT) {
          out->name = g_strdup (oname);
          out->channel_last = TRUE;
          out->width = gw;
          out->n_classes = nc;
          break;
        }
      }
      break;
    default:
      break;
  }
}

static int
grid_size (int size, int stride)
{
  return (size + stride - 1) / stride;
}

/* Fills sh->maps from the options or automatically; keeps the tensors. */
static LensStatus
select_maps (Shared * sh, const char *names, LensError *err)
{
  const LensDecodeConfig *c = &sh->config;
  const char *path = lens_model_path (sh->model);
  LensStatus st = LENS_OK;

  sh->n_maps = 0;
  if (names != NULL && *names != '\0') {
    char **list = g_strsplit (names, ",", -1);

    for (int k = 0; list[k] != NULL && st == LENS_OK; k++) {
      MapSpec *m;
      char *name = g_strstrip (list[k]);
      int64_t shape[LENS_MAX_DIMS];
      int nd = lens_model_tensor_shape (sh->model, name, shape);
      int stride = 0;

      if (sh->n_maps == MAX_MAPS) {
        st = lens_error_set (err, LENS_ERROR_INVALID,
            "model '%s': more than %d feature tensors given", path,
            MAX_MAPS);
        break;
      }
      if (nd < 0) {
        st = lens_error_set (err, LENS_ERROR_INVALID,
            "model '%s': feature tensor '%s' is not in the graph", path,
            name);
        break;
      }
      if (nd != 4 || shape[0] != 1 || shape[2] <= 0 || shape[3] <= 0
          || lens_model_tensor_dtype (sh->model, name) != LENS_DTYPE_FLOAT) {
        char desc[128];
        LensTensor *t = lens_tensor_new (lens_model_tensor_dtype (sh->model,
                name), MAX (nd, 0), shape);

        st = lens_error_set (err, LENS_ERROR_INVALID,
            "model '%s': feature tensor '%s' is %s, expected a float32 "
            "[1,C,H,W] map", path, name,
            lens_tensor_describe (t, desc, sizeof desc));
        lens_tensor_free (t);
        break;
      }
      /* the stride whose grid it is, ceil as the decoder counts cells */
      for (int s = 1; s <= c->input_height; s++)
        if (grid_size (c->input_height, s) == shape[2]
            && grid_size (c->input_width, s) == shape[3]) {
          stride = s;
          break;
        }
      if (stride == 0) {
        st = lens_error_set (err, LENS_ERROR_INVALID,
            "model '%s': feature tensor '%s' (%" G_GINT64_FORMAT "x%"
            G_GINT64_FORMAT ") is no grid of the %dx%d input", path, name,
            shape[3], shape[2], c->input_width, c->input_height);
        break;
      }
      m = &sh->maps[sh->n_maps++];
      m->name = g_strdup (name);
      m->ndim = nd;
      memcpy (m->shape, shape, sizeof m->shape);
      m->stride = stride;
      m->height = (int) shape[2];
      m->width = (int) shape[3];
      for (int i = 0; i < c->n_strides; i++)
        if (c->strides[i] == stride)
          find_score (sh->model, c, m->height, m->width, &m->score);
    }
    g_strfreev (list);
  } else {
    int n = lens_model_n_tensors (sh->model);

    for (int i = 0; i < c->n_strides && sh->n_maps < MAX_MAPS; i++) {
      int s = c->strides[i];
      int gh = grid_size (c->input_height, s), gw = grid_size (c->input_width,
          s);
      const char *name, *found = NULL;
      MapSpec *m;

      for (int k = 0; k < n; k++)
        if (grid_tensor (sh->model, k, gh, gw, &name) > 0)
          found = name;
      if (found == NULL)
        continue;               /* a scale with no map of its own */
      m = &sh->maps[sh->n_maps++];
      m->name = g_strdup (found);
      m->ndim = lens_model_tensor_shape (sh->model, found, m->shape);
      m->stride = s;
      m->height = gh;
      m->width = gw;
      find_score (sh->model, c, gh, gw, &m->score);
    }
  }

  for (int i = 0; i < sh->n_maps && st == LENS_OK; i++) {
    st = lens_model_keep_tensor (sh->model, sh->maps[i].name, err);
    if (st == LENS_OK && sh->maps[i].score.name != NULL)
      st = lens_model_keep_tensor (sh->model, sh->maps[i].score.name, err);
  }
  return st;
}

/* ---- life cycle ----------------------------------------------------------------- */

static void
shared_unref (Shared * sh)
{
  if (sh == NULL || !g_atomic_int_dec_and_test (&sh->refs))
    return;
  for (int i = 0; i < sh->n_maps; i++)
    map_spec_clear (&sh->maps[i]);
  lens_decode_config_clear (&sh->config);
  lens_model_free (sh->model);
  g_free (sh);
}

/* A detector of @sh: its own execution context, pre-processor, copy of
 * the configuration and heatmap outputs. Takes a reference on @sh. */
static LensStatus
detector_new (Shared * sh, LensDetector ** out, LensError *err)
{
  LensDetector *det = g_new0 (LensDetector, 1);
  LensStatus st;

  g_atomic_int_inc (&sh->refs);
  det->shared = sh;
  det->config = sh->config;
  det->config.labels = g_strdupv (sh->config.labels);
  st = lens_exec_new (sh->model, &det->exec, err);
  if (st == LENS_OK) {
    det->ctx = lens_exec_get_context (det->exec);
    st = lens_preprocessor_new (det->ctx, &det->pp, err);
  }
  for (int i = 0; i < sh->n_maps && st == LENS_OK; i++) {
    int64_t hw[2] = { sh->maps[i].height, sh->maps[i].width };

    det->activation[i] = lens_tensor_new (LENS_DTYPE_FLOAT, 2, hw);
    if (sh->maps[i].score.name != NULL)
      det->score[i] = lens_tensor_new (LENS_DTYPE_FLOAT, 2, hw);
  }
  if (st != LENS_OK) {
    lens_detector_free (det);
    return st;
  }
  *out = det;
  return LENS_OK;
}

LensStatus
lens_detector_new (LensContext * ctx, const LensDetectorOptions * options,
    LensDetector ** out, LensError *err)
{
  LensDetectorOptions defaults;
  Shared *sh;
  LensStatus st;
  int64_t in_shape[LENS_MAX_DIMS];
  int in_ndim;

  *out = NULL;
  if (options == NULL) {
    lens_detector_options_init (&defaults);
    options = &defaults;
  }
  if (options->model_path == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "detector: no model path given");

  sh = g_new0 (Shared, 1);
  sh->refs = 1;
  st = lens_model_load (ctx, options->model_path, 0, NULL, &sh->model, err);
  if (st != LENS_OK) {
    g_free (sh);
    return st;
  }
  in_ndim = lens_model_input_shape (sh->model, 0, in_shape);
  if (lens_model_n_inputs (sh->model) != 1 || in_ndim != 4
      || in_shape[0] != 1 || in_shape[1] != 3) {
    st = lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "model '%s': a detector takes one [1,3,H,W] image input, the model "
        "has %d inputs, the first of rank %d", options->model_path,
        lens_model_n_inputs (sh->model), in_ndim);
    goto error;
  }
  st = lens_decode_config_init (&sh->config, sh->model, options->family,
      options->labels_path, err);
  if (st != LENS_OK)
    goto error;
  if (sh->config.input_width != in_shape[3]
      || sh->config.input_height != in_shape[2]) {
    st = lens_error_set (err, LENS_ERROR_INVALID,
        "model '%s': the decoder expects a %dx%d input, the model takes "
        "%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, options->model_path,
        sh->config.input_width, sh->config.input_height, in_shape[3],
        in_shape[2]);
    goto error;
  }
  sh->config.conf_threshold = options->conf_threshold > 0.0f ?
      options->conf_threshold : DEFAULT_CONF_THRESHOLD;
  sh->config.iou_threshold = options->iou_threshold > 0.0f ?
      options->iou_threshold : DEFAULT_IOU_THRESHOLD;
  sh->config.max_detections = options->max_detections > 0 ?
      options->max_detections : DEFAULT_MAX_DETECTIONS;
  preprocess_for_family (sh->config.family, &sh->pre);

  sh->feature_maps = options->feature_maps;
  if (sh->feature_maps) {
    st = select_maps (sh, options->feature_tensors, err);
    if (st != LENS_OK)
      goto error;
  }

  st = detector_new (sh, out, err);
  if (st == LENS_OK)
    lens_detector_set_feature_channels (*out, options->feature_channels);
  /* the detector holds its own reference (or freed it on failure) */
  shared_unref (sh);
  return st;

error:
  shared_unref (sh);
  return st;
}

LensStatus
lens_detector_new_shared (LensDetector * like, LensDetector ** out,
    LensError *err)
{
  LensStatus st;

  *out = NULL;
  st = detector_new (like->shared, out, err);
  if (st == LENS_OK) {
    /* the thresholds of @like, which may differ from the first one's */
    (*out)->config.conf_threshold = like->config.conf_threshold;
    (*out)->config.iou_threshold = like->config.iou_threshold;
    (*out)->config.max_detections = like->config.max_detections;
    (*out)->feature_channels = like->feature_channels;
  }
  return st;
}

void
lens_detector_set_feature_channels (LensDetector * det, int n)
{
  det->feature_channels = MAX (n, 0);
}

void
lens_detector_set_thresholds (LensDetector * det, float conf_threshold,
    float iou_threshold)
{
  /* decoding is per detector: sharing a model never shares these */
  if (conf_threshold > 0)
    det->config.conf_threshold = conf_threshold;
  if (iou_threshold > 0)
    det->config.iou_threshold = iou_threshold;
}

void
lens_detector_free (LensDetector * det)
{
  if (det == NULL)
    return;
  for (int i = 0; i < MAX_MAPS; i++) {
    lens_tensor_free (det->activation[i]);
    lens_tensor_free (det->score[i]);
  }
  lens_preprocessor_free (det->pp);
  lens_exec_free (det->exec);
  lens_decode_config_clear (&det->config);
  shared_unref (det->shared);
  g_free (det);
}

const LensDecodeConfig *
lens_detector_config (const LensDetector * det)
{
  return &det->config;
}

const LensModel *
lens_detector_model (const LensDetector * det)
{
  return det->shared->model;
}

/* ---- running ----------------------------------------------------------------- */

/* Copies the first det->feature_channels channels of feature map @x
 * ([1,C,H,W] float32, any strides) into fm->channels, channel-major, with
 * one blocking read: of the channels themselves when they are contiguous,
 * else of the span that holds them, gathered on the host. */
static LensStatus
read_channels (LensDetector * det, const LensTensor * x, LensFeatureMap * fm,
    LensError *err)
{
  cl_command_queue queue = lens_context_get_queue (det->ctx);
  int64_t c = x->shape[1], h = x->shape[2], w = x->shape[3];
  int64_t n = MIN ((int64_t) det->feature_channels, c);
  const int64_t *sd = x->strides;
  size_t plane = (size_t) h * w, span;
  const float *src;
  float *tmp = NULL;
  cl_int rc;

  if (n <= 0 || x->ndim != 4 || x->dtype != LENS_DTYPE_FLOAT
      || h != fm->height || w != fm->width)
    return LENS_OK;
  if (sd[1] < 0 || sd[2] < 0 || sd[3] < 0)
    return LENS_OK;             /* no view the runtime makes; nothing read */
  fm->channels = g_new (float, (size_t) n * plane);
  fm->n_channels = (int) n;
  if (sd[3] == 1 && sd[2] == w && sd[1] == (int64_t) plane)
    span = (size_t) n * plane;
  else
    span = (size_t) ((n - 1) * sd[1] + (h - 1) * sd[2] + (w - 1) * sd[3]) + 1;

  if (x->buffer == NULL) {
    if (x->host == NULL)
      goto no_data;
    src = (const float *) x->host + x->offset;
  } else {
    float *dst = span == (size_t) n * plane ? fm->channels :
        (tmp = g_new (float, span));

    rc = clEnqueueReadBuffer (queue, x->buffer, CL_TRUE,
        x->offset * sizeof (float), span * sizeof (float), dst, 0, NULL,
        NULL);
    if (rc != CL_SUCCESS) {
      g_free (tmp);
      g_clear_pointer (&fm->channels, g_free);
      fm->n_channels = 0;
      return lens_error_set (err, LENS_ERROR_CL,
          "clEnqueueReadBuffer (channels of '%s'): %s", fm->tensor_name,
          lens_cl_error_name (rc));
    }
    if (dst == fm->channels)
      return LENS_OK;
    src = tmp;
  }
  for (int64_t k = 0; k < n; k++)
    for (int64_t y = 0; y < h; y++)
      for (int64_t i = 0; i < w; i++)
        fm->channels[(k * h + y) * w + i] =
            src[k * sd[1] + y * sd[2] + i * sd[3]];
  g_free (tmp);
  return LENS_OK;

no_data:
  g_clear_pointer (&fm->channels, g_free);
  fm->n_channels = 0;
  return lens_error_set (err, LENS_ERROR_INVALID,
      "feature tensor '%s' has no data after the run", fm->tensor_name);
}

/* Enqueues every heatmap and non-blocking reads of them into @result,
 * then waits once. */
static LensStatus
run_heatmaps (LensDetector * det, LensDetectorResult * result,
    LensError *err)
{
  Shared *sh = det->shared;
  cl_command_queue queue = lens_context_get_queue (det->ctx);
  LensStatus st = LENS_OK;

  result->feature_maps = g_new0 (LensFeatureMap, sh->n_maps);
  result->n_feature_maps = sh->n_maps;
  for (int i = 0; i < sh->n_maps && st == LENS_OK; i++) {
    const MapSpec *m = &sh->maps[i];
    LensFeatureMap *fm = &result->feature_maps[i];
    size_t cells = (size_t) m->width * m->height;
    LensTensor *x = lens_exec_tensor (det->exec, m->name);
    cl_int rc;

    fm->tensor_name = g_strdup (m->name);
    fm->score_tensor_name = g_strdup (m->score.name);
    fm->ndim = m->ndim;
    memcpy (fm->shape, m->shape, sizeof fm->shape);
    fm->stride = m->stride;
    fm->width = m->width;
    fm->height = m->height;
    if (x == NULL) {
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "feature tensor '%s' is not computed by the model", m->name);
      break;
    }
    st = lens_heatmap_activation (det->ctx, x, det->activation[i], err);
    if (st != LENS_OK)
      break;
    fm->activation = g_new (float, cells);
    rc = clEnqueueReadBuffer (queue, det->activation[i]->buffer, CL_FALSE,
        det->activation[i]->offset * sizeof (float), cells * sizeof (float),
        fm->activation, 0, NULL, NULL);
    if (rc != CL_SUCCESS) {
      st = lens_error_set (err, LENS_ERROR_CL,
          "clEnqueueReadBuffer (activation heatmap of '%s'): %s", m->name,
          lens_cl_error_name (rc));
      break;
    }

    if (m->score.name == NULL)
      continue;
    x = lens_exec_tensor (det->exec, m->score.name);
    if (x == NULL) {
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "score tensor '%s' is not computed by the model", m->score.name);
      break;
    }
    st = lens_heatmap_score (det->ctx, x, m->score.channel_last,
        m->score.width, m->score.first, m->score.n_classes,
        m->score.sigmoid, det->score[i], err);
    if (st != LENS_OK)
      break;
    fm->score = g_new (float, cells);
    rc = clEnqueueReadBuffer (queue, det->score[i]->buffer, CL_FALSE,
        det->score[i]->offset * sizeof (float), cells * sizeof (float),
        fm->score, 0, NULL, NULL);
    if (rc != CL_SUCCESS) {
      st = lens_error_set (err, LENS_ERROR_CL,
          "clEnqueueReadBuffer (score heatmap of '%s'): %s", m->score.name,
          lens_cl_error_name (rc));
      break;
    }
  }
  /* the reads target @result's memory: wait for them even after a failure
   * to enqueue a later one */
  if (lens_context_finish (det->ctx, st == LENS_OK ? err : NULL) != LENS_OK
      && st == LENS_OK)
    st = LENS_ERROR_CL;
  /* kept tensors stay valid until the next run */
  for (int i = 0; i < sh->n_maps && st == LENS_OK
      && det->feature_channels > 0; i++)
    st = read_channels (det, lens_exec_tensor (det->exec, sh->maps[i].name),
        &result->feature_maps[i], err);
  return st;
}

LensStatus
lens_detector_run (LensDetector * det, const LensFrame * frame,
    LensDetectorResult * result, LensError *err)
{
  Shared *sh = det->shared;
  int n_out = lens_model_n_outputs (sh->model);
  const LensTensor *outputs[16] = { NULL };
  LensStatus st;
  gint64 start;

  memset (result, 0, sizeof *result);
  if (n_out > (int) G_N_ELEMENTS (outputs))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "model '%s': %d outputs", lens_model_path (sh->model), n_out);
  result->source_width = frame->width;
  result->source_height = frame->height;

  start = g_get_monotonic_time ();
  st = lens_preprocessor_run (det->pp, frame, &sh->pre,
      lens_exec_input (det->exec, 0), &result->letterbox, err);
  if (st == LENS_OK)
    st = lens_exec_run (det->exec, err);
  for (int i = 0; i < n_out && st == LENS_OK; i++)
    outputs[i] = lens_exec_output (det->exec, i);
  result->inference_ms = (g_get_monotonic_time () - start) / 1000.0;

  if (st == LENS_OK)
    st = lens_decode (&det->config, outputs, n_out, &result->letterbox,
        frame->width, frame->height, &result->detections,
        &result->n_detections, err);
  if (st == LENS_OK && sh->feature_maps)
    st = run_heatmaps (det, result, err);

  if (st != LENS_OK)
    lens_detector_result_clear (result);
  return st;
}

LensStatus
lens_detector_get_input (LensDetector * det, LensTensor ** out,
    LensError *err)
{
  LensTensor *in = lens_exec_input (det->exec, 0);
  LensTensor *host = lens_tensor_new (in->dtype, in->ndim, in->shape);
  LensStatus st;

  *out = NULL;
  lens_tensor_set_name (host, in->name);
  /* borrowed for the download: @host must not release the exec's buffer */
  host->buffer = in->buffer;
  host->offset = in->offset;
  st = lens_tensor_download (det->ctx, host, err);
  host->buffer = NULL;
  if (st != LENS_OK) {
    lens_tensor_free (host);
    return st;
  }
  *out = host;
  return LENS_OK;
}

void
lens_detector_result_clear (LensDetectorResult * result)
{
  if (result == NULL)
    return;
  g_free (result->detections);
  for (int i = 0; i < result->n_feature_maps; i++) {
    g_free (result->feature_maps[i].tensor_name);
    g_free (result->feature_maps[i].score_tensor_name);
    g_free (result->feature_maps[i].activation);
    g_free (result->feature_maps[i].score);
    g_free (result->feature_maps[i].channels);
  }
  g_free (result->feature_maps);
  memset (result, 0, sizeof *result);
}
