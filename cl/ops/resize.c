/* resize.c: Resize (opsets 10, 11, 13).
 *
 * mode=nearest on any axes and mode=linear on the last one or two axes,
 * with every coordinate_transformation_mode and nearest_mode; scales or
 * sizes (and roi for tf_crop_and_resize) must be constants known at load
 * time. mode=cubic and the opset-18 attributes (antialias other than 0,
 * axes, keep_aspect_ratio_policy other than stretch) are refused.
 *
 * reshape maps every output coordinate of every axis back to the input
 * once, in double precision with the formulas of ref/resize.c, into a
 * small int table; run uploads it (only when it changed) and the kernels
 * of kernels/resize.cl gather or blend. A nearest doubling of the plane
 * (the FPN upsampling of detectors), which the table shows whatever the
 * modes that made it, takes a kernel of its own that needs no table. */
#include "ref/resize.h"

#include <math.h>
#include <string.h>

/* Work-group size of the 1-D launches. */
#define RESIZE_GROUP 64
/* Output elements of a row each work item of the plane kernels writes. */
#define RESIZE_ROW_SPAN 8

typedef struct
{
  LensResizeGeometry geometry;
  /* every leading axis maps each index to itself: the plane kernels */
  gboolean plane_path;
  /* ... and output pixel (oy, ox) reads input pixel (oy / 2, ox / 2): the
   * doubling kernel, for 4-byte elements */
  gboolean doubling;
  int64_t in_h, in_w, out_h, out_w;    /* of the plane kernels */
  /* the table (see kernels/resize.cl) and its device copy */
  gint32 *table;
  size_t table_len;
  gboolean table_changed;
  cl_mem table_mem;
  cl_context table_context;
  /* extrapolation_value as an element of the input's dtype */
  union
  {
    cl_uchar u8;
    cl_ushort u16;
    cl_uint u32;
    cl_ulong u64;
  } extrapolation_bits;
} ResizeState;

typedef struct
{
  const char *name;
  int value;
} ResizeName;

static const ResizeName coordinate_names[] = {
  {"half_pixel", LENS_RESIZE_HALF_PIXEL},
  {"asymmetric", LENS_RESIZE_ASYMMETRIC},
  {"pytorch_half_pixel", LENS_RESIZE_PYTORCH_HALF_PIXEL},
  {"tf_half_pixel_for_nn", LENS_RESIZE_TF_HALF_PIXEL_FOR_NN},
  {"align_corners", LENS_RESIZE_ALIGN_CORNERS},
  {"tf_crop_and_resize", LENS_RESIZE_TF_CROP_AND_RESIZE},
  {NULL, 0}
};

static const ResizeName nearest_names[] = {
  {"round_prefer_floor", LENS_RESIZE_ROUND_PREFER_FLOOR},
  {"round_prefer_ceil", LENS_RESIZE_ROUND_PREFER_CEIL},
  {"floor", LENS_RESIZE_FLOOR},
  {"ceil", LENS_RESIZE_CEIL},
  {NULL, 0}
};

static LensStatus
lookup_name (const LensNode * node, const char *attr, const char *value,
    const ResizeName * names, int *out, LensError *err)
{
  for (const ResizeName * n = names; n->name != NULL; n++)
    if (strcmp (n->name, value) == 0) {
      *out = n->value;
      return LENS_OK;
    }
  /* newer opsets add values (half_pixel_symmetric): not supported here */
  return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
      "Resize: attribute '%s' = '%s' is not supported", attr, value);
}

static LensStatus
resize_init (LensNode * node, LensError *err)
{
  ResizeState *s = g_new0 (ResizeState, 1);
  LensResizeGeometry *g = &s->geometry;
  /* opset 10 had neither attribute: its Resize is asymmetric and takes
   * the floor, as Upsample did */
  const char *mode = lens_node_attr_string (node, "mode", "nearest");
  const char *coordinates = lens_node_attr_string (node,
      "coordinate_transformation_mode",
      node->opset >= 11 ? "half_pixel" : "asymmetric");
  const char *nearest = lens_node_attr_string (node, "nearest_mode",
      node->opset >= 11 ? "round_prefer_floor" : "floor");
  const char *policy = lens_node_attr_string (node,
      "keep_aspect_ratio_policy", "stretch");
  int64_t antialias = lens_node_attr_int (node, "antialias", 0);
  int value = 0;
  LensStatus st;

  node->priv = s;
  if (strcmp (mode, "cubic") == 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: attribute 'mode' = 'cubic' is not supported (mode=cubic; "
        "only nearest and linear)");
  if (strcmp (mode, "nearest") == 0)
    g->mode = LENS_RESIZE_NEAREST;
  else if (strcmp (mode, "linear") == 0)
    g->mode = LENS_RESIZE_LINEAR;
  else
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: attribute 'mode' = '%s' is not supported", mode);
  if (antialias != 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: attribute 'antialias' = %" G_GINT64_FORMAT " is not "
        "supported", antialias);
  if (lens_node_attr (node, "axes") != NULL)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: attribute 'axes' is not supported (scales and sizes must "
        "cover every axis)");
  if (strcmp (policy, "stretch") != 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: attribute 'keep_aspect_ratio_policy' = '%s' is not "
        "supported (only stretch)", policy);
  st = lookup_name (node, "coordinate_transformation_mode", coordinates,
      coordinate_names, &value, err);
  if (st != LENS_OK)
    return st;
  g->coordinates = value;
  st = lookup_name (node, "nearest_mode", nearest, nearest_names, &value,
      err);
  if (st != LENS_OK)
    return st;
  g->nearest_mode = value;
  /* exclude_outside and cubic_coeff_a only change cubic sampling */
  g->extrapolation_value = lens_node_attr_float (node, "extrapolation_value",
      0.0f);
  return LENS_OK;
}

static void
resize_exit (LensNode * node)
{
  ResizeState *s = node->priv;

  if (s == NULL)
    return;
  if (s->table_mem != NULL)
    clReleaseMemObject (s->table_mem);
  g_free (s->table);
  g_free (s);
  node->priv = NULL;
}

/* Input @i unless omitted or empty (opset 11 passes an empty scales
 * tensor when sizes are given). */
static LensTensor *
given_input (const LensNode * node, int i)
{
  LensTensor *t = i >= 0 ? lens_node_input (node, i) : NULL;

  return t != NULL && lens_tensor_numel (t) > 0 ? t : NULL;
}

static LensStatus
read_scales (const LensNode * node, const LensTensor * t,
    LensResizeGeometry * g, LensError *err)
{
  if (t->host == NULL)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: input 'scales' must be a constant known at load time");
  if (!lens_dtype_is_float (t->dtype))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize: input 'scales' must be float, not %s",
        lens_dtype_name (t->dtype));
  if (lens_tensor_numel (t) != g->ndim)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize: input 'scales' has %" G_GINT64_FORMAT " values for an "
        "input of rank %d", lens_tensor_numel (t), g->ndim);
  for (int d = 0; d < g->ndim; d++) {
    double scale = lens_tensor_get_f64 (t, d);
    if (!(scale > 0))
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Resize: input 'scales' value %g on axis %d is not positive",
          scale, d);
    g->scale[d] = scale;
    g->length_resized[d] = g->in[d] * scale;
    /* checked as a double: the conversion of a larger one is undefined */
    if (!(g->length_resized[d] < (double) G_MAXINT))
      return lens_error_set (err, LENS_ERROR_INVALID,
          "Resize: input 'scales' value %g on axis %d makes it larger than "
          "%d", scale, d, G_MAXINT);
    g->out[d] = (int64_t) floor (g->length_resized[d]);
  }
  return LENS_OK;
}

static LensStatus
read_sizes (const LensNode * node, int index, LensResizeGeometry * g,
    LensError *err)
{
  int64_t *sizes, n;
  LensStatus st = lens_node_input_ints (node, index, &sizes, &n, err);

  if (st != LENS_OK)
    return st;
  if (n != g->ndim) {
    g_free (sizes);
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize: input 'sizes' has %" G_GINT64_FORMAT " values for an input "
        "of rank %d", n, g->ndim);
  }
  for (int d = 0; d < g->ndim && st == LENS_OK; d++) {
    if (sizes[d] < 0)
      st = lens_error_set (err, LENS_ERROR_INVALID,
          "Resize: input 'sizes' value %" G_GINT64_FORMAT " on axis %d is "
          "negative", sizes[d], d);
    g->out[d] = sizes[d];
    g->length_resized[d] = (double) sizes[d];
    g->scale[d] = (double) sizes[d] / g->in[d];
  }
  g_free (sizes);
  return st;
}

static LensStatus
read_roi (const LensNode * node, const LensTensor * t,
    LensResizeGeometry * g, LensError *err)
{
  if (t == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize: coordinate_transformation_mode=tf_crop_and_resize needs "
        "input 'roi'");
  if (t->host == NULL)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: input 'roi' must be a constant known at load time");
  if (!lens_dtype_is_float (t->dtype) || lens_tensor_numel (t) != 2 * g->ndim)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize: input 'roi' must hold %d floats (starts, then ends), not %"
        G_GINT64_FORMAT " of %s", 2 * g->ndim, lens_tensor_numel (t),
        lens_dtype_name (t->dtype));
  for (int d = 0; d < g->ndim; d++) {
    g->roi_start[d] = lens_tensor_get_f64 (t, d);
    g->roi_end[d] = lens_tensor_get_f64 (t, g->ndim + d);
  }
  return LENS_OK;
}

/* Does axis @d leave every index where it is? */
static gboolean
axis_is_identity (const LensResizeGeometry * g, int d)
{
  if (g->out[d] != g->in[d])
    return FALSE;
  for (int64_t x = 0; x < g->out[d]; x++) {
    int64_t i0, i1;
    double w;
    if (g->mode == LENS_RESIZE_NEAREST) {
      if (lens_ref_resize_nearest (g, d, x) != x)
        return FALSE;
    } else if (!lens_ref_resize_linear (g, d, x, &i0, &i1, &w) || i0 != x
        || w != 0) {
      return FALSE;
    }
  }
  return TRUE;
}

/* Three ints per output coordinate of axis @d: first index (-1:
 * extrapolate), second index, float bits of the second's weight. An
 * axis of -1 stands for the missing height of a rank-1 input. */
static void
fill_plane_entries (const LensResizeGeometry * g, int d, gint32 * t)
{
  int64_t n = d < 0 ? 1 : g->out[d];

  for (int64_t x = 0; x < n; x++, t += 3) {
    int64_t i0 = 0, i1 = 0;
    double w = 0;
    float wf;
    if (d >= 0 && g->mode == LENS_RESIZE_NEAREST) {
      i0 = i1 = lens_ref_resize_nearest (g, d, x);
    } else if (d >= 0 && !lens_ref_resize_linear (g, d, x, &i0, &i1, &w)) {
      i0 = i1 = -1;
    }
    wf = (float) w;
    t[0] = (gint32) i0;
    t[1] = (gint32) i1;
    memcpy (&t[2], &wf, sizeof (gint32));
  }
}

/* Builds the table for the current geometry; notes whether it changed
 * since the last upload. */
static void
build_table (ResizeState * s)
{
  LensResizeGeometry *g = &s->geometry;
  int nd = g->ndim, h = nd - 2, w = nd - 1;
  gint32 *table;
  size_t len;

  s->plane_path = TRUE;
  for (int d = 0; d < nd - 2; d++)
    s->plane_path = s->plane_path && axis_is_identity (g, d);
  s->in_h = h >= 0 ? g->in[h] : 1;
  s->out_h = h >= 0 ? g->out[h] : 1;
  s->in_w = g->in[w];
  s->out_w = g->out[w];

  if (s->plane_path) {
    len = 3 * (size_t) (s->out_h + s->out_w);
    table = g_new0 (gint32, MAX (len, 1));
    fill_plane_entries (g, h, table);
    fill_plane_entries (g, w, table + 3 * s->out_h);
  } else {
    int64_t stride = 1;
    size_t offset = 3 * (size_t) nd;
    len = offset;
    for (int d = 0; d < nd; d++)
      len += (size_t) g->out[d];
    table = g_new0 (gint32, MAX (len, 1));
    for (int d = nd - 1; d >= 0; d--) {
      table[3 * d] = (gint32) g->out[d];
      table[3 * d + 1] = (gint32) stride;
      stride *= g->in[d];
    }
    for (int d = 0; d < nd; d++) {
      table[3 * d + 2] = (gint32) offset;
      for (int64_t x = 0; x < g->out[d]; x++)
        table[offset++] = (gint32) lens_ref_resize_nearest (g, d, x);
    }
  }
  s->doubling = s->plane_path && g->mode == LENS_RESIZE_NEAREST
      && s->out_h == 2 * s->in_h && s->out_w == 2 * s->in_w;
  for (int64_t i = 0; s->doubling && i < s->out_h + s->out_w; i++)
    s->doubling = table[3 * i] == (i < s->out_h ? i : i - s->out_h) / 2;
  /* sticky until run uploads it: two reshapes may come before a run */
  s->table_changed = s->table_changed || s->table == NULL ||
      len != s->table_len ||
      memcmp (table, s->table, len * sizeof (gint32)) != 0;
  g_free (s->table);
  s->table = table;
  s->table_len = len;
}

static LensStatus
resize_reshape (LensNode * node, LensError *err)
{
  ResizeState *s = node->priv;
  LensResizeGeometry *g = &s->geometry;
  LensTensor *x = lens_node_input (node, 0), *y, *scales, *sizes, *value;
  gboolean opset10 = node->opset < 11;
  size_t elem;
  LensStatus st;

  if (x == NULL || node->n_outputs < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize needs input X and output Y");
  elem = lens_dtype_size (x->dtype);
  if (x->dtype == LENS_DTYPE_STRING || (elem != 1 && elem != 2 && elem != 4
          && elem != 8))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: input X of type %s is not supported",
        lens_dtype_name (x->dtype));
  if (g->mode == LENS_RESIZE_LINEAR && x->dtype != LENS_DTYPE_FLOAT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: mode=linear on input X of type %s is not supported (only "
        "float32)", lens_dtype_name (x->dtype));
  if (x->ndim < 1)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize: input X is a scalar");
  g->ndim = x->ndim;
  for (int d = 0; d < x->ndim; d++) {
    if (x->shape[d] <= 0)
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "Resize: input X has an empty axis %d", d);
    g->in[d] = x->shape[d];
    g->roi_start[d] = 0;
    g->roi_end[d] = 1;
  }

  scales = given_input (node, opset10 ? 1 : 2);
  sizes = opset10 ? NULL : given_input (node, 3);
  if (scales != NULL && sizes != NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize: inputs 'scales' and 'sizes' are both given");
  if (scales == NULL && sizes == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Resize: one of inputs 'scales' and 'sizes' is required");
  st = scales ? read_scales (node, scales, g, err) :
      read_sizes (node, 3, g, err);
  if (st == LENS_OK && g->coordinates == LENS_RESIZE_TF_CROP_AND_RESIZE)
    st = read_roi (node, opset10 ? NULL : given_input (node, 1), g, err);
  if (st != LENS_OK)
    return st;

  y = node->outputs[0];
  y->dtype = x->dtype;
  /* element counts of one byte each: -1 when the product overflows, which
   * a plain numel would wrap past this check */
  if (lens_shape_bytes (LENS_DTYPE_UINT8, x->ndim, x->shape) > G_MAXINT
      || lens_shape_bytes (LENS_DTYPE_UINT8, x->ndim, g->out) < 0
      || lens_shape_bytes (LENS_DTYPE_UINT8, x->ndim, g->out) > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: tensors of more than %d elements are not supported",
        G_MAXINT);
  {
    /* the output and the index table (3 entries per output coordinate)
     * are sized from the file: held to the loader's per-tensor limit */
    int64_t coords = x->ndim;
    gboolean over = lens_shape_bytes (x->dtype, x->ndim, g->out) >
        lens_loader_limits.max_tensor_bytes;
    /* an empty axis leaves the others unbounded by the element count */
    for (int d = 0; d < x->ndim && !over; d++) {
      over = g->out[d] > lens_loader_limits.max_tensor_bytes;
      coords += g->out[d];
    }
    if (over || 3 * coords * (int64_t) sizeof (gint32) >
        lens_loader_limits.max_tensor_bytes) {
      char *limit = lens_limit_text (lens_loader_limits.max_tensor_bytes);
      st = lens_error_set (err, LENS_ERROR_NOMEM,
          "Resize: the output is over the limit of %s per tensor", limit);
      g_free (limit);
      return st;
    }
  }
  lens_tensor_set_shape (y, x->ndim, g->out);

  build_table (s);
  if (!s->plane_path && g->mode == LENS_RESIZE_LINEAR) {
    for (int d = 0; d < g->ndim - 2; d++)
      if (!axis_is_identity (g, d))
        return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
            "Resize: mode=linear interpolates only the last two axes; axis "
            "%d (%" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT ", scale %g) is "
            "not supported", d, g->in[d], g->out[d], g->scale[d]);
  }

  /* extrapolation_value converted to the element type, as bits */
  value = lens_tensor_new_host (x->dtype, 0, NULL, NULL);
  lens_tensor_set_f64 (value, 0, g->extrapolation_value);
  memset (&s->extrapolation_bits, 0, sizeof (s->extrapolation_bits));
  memcpy (&s->extrapolation_bits, value->host, elem);
  lens_tensor_free (value);
  return LENS_OK;
}

static LensStatus
upload_table (LensContext * ctx, ResizeState * s, LensError *err)
{
  cl_context context = lens_context_get_cl_context (ctx);
  cl_int rc;

  if (s->table_mem != NULL && !s->table_changed &&
      s->table_context == context)
    return LENS_OK;
  /* kernels already queued keep the old buffer alive until they finish */
  if (s->table_mem != NULL)
    clReleaseMemObject (s->table_mem);
  s->table_mem = clCreateBuffer (context,
      CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, s->table_len * sizeof (gint32),
      s->table, &rc);
  if (rc != CL_SUCCESS) {
    s->table_mem = NULL;
    return lens_error_set (err, LENS_ERROR_CL,
        "Resize: clCreateBuffer (coordinate table, %zu bytes): %s",
        s->table_len * sizeof (gint32), lens_cl_error_name (rc));
  }
  s->table_context = context;
  s->table_changed = FALSE;
  return LENS_OK;
}

/* Runs lens_resize_nearest_double_4 (see ResizeState.doubling). */
static LensStatus
resize_double (LensContext * ctx, LensNode * node, LensError *err)
{
  ResizeState *s = node->priv;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  cl_int rows = (cl_int) (lens_tensor_numel (x) / s->in_w);
  cl_int in_w = (cl_int) s->in_w;
  size_t global = rows, local;
  cl_kernel k;
  LensStatus st;

  st = lens_node_kernel (ctx, node, 2, "resize", "",
      "lens_resize_nearest_double_4", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 4, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (rows), LENS_ARG (in_w));
  if (st != LENS_OK)
    return st;
  local = MIN ((size_t) RESIZE_GROUP, lens_kernel_max_work_group (ctx, k));
  return lens_context_enqueue (ctx, k, 1, &global, &local, err);
}

static LensStatus
resize_run (LensContext * ctx, LensNode * node, LensError *err)
{
  ResizeState *s = node->priv;
  LensResizeGeometry *g = &s->geometry;
  LensTensor *x = node->inputs[0], *y = node->outputs[0];
  cl_int total = (cl_int) lens_tensor_numel (y);
  cl_int in_h = (cl_int) s->in_h, in_w = (cl_int) s->in_w;
  cl_int out_h = (cl_int) s->out_h, out_w = (cl_int) s->out_w;
  cl_int ndim = g->ndim;
  /* work items per output row of the plane kernels */
  cl_int chunks = (cl_int) ((s->out_w + RESIZE_ROW_SPAN - 1) /
      RESIZE_ROW_SPAN);
  cl_int rows = s->out_w > 0 ? (cl_int) (total / s->out_w) : 0;
  cl_float extrapolation = (cl_float) g->extrapolation_value;
  size_t elem = lens_dtype_size (x->dtype), global, local;
  size_t extrapolation_size;
  const void *extrapolation_arg;
  char name[64];
  cl_kernel k;
  LensStatus st;

  if (total == 0)
    return LENS_OK;
  st = lens_tensor_require_device (x, "input X", err);
  if (st == LENS_OK)
    st = lens_tensor_require_device (y, "output Y", err);
  if (st != LENS_OK)
    return st;
  if (x->offset != 0 || y->offset != 0)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "Resize: input X and output Y must start at offset 0 of their "
        "buffers");
  if (s->doubling && elem == 4)
    return resize_double (ctx, node, err);
  st = upload_table (ctx, s, err);
  if (st != LENS_OK)
    return st;

  if (g->mode == LENS_RESIZE_LINEAR)
    g_strlcpy (name, "lens_resize_linear_plane", sizeof (name));
  else
    g_snprintf (name, sizeof (name), "lens_resize_nearest_%s_%zu",
        s->plane_path ? "plane" : "nd", elem);
  /* slot per path: a later reshape may switch between them */
  st = lens_node_kernel (ctx, node, s->plane_path ? 0 : 1, "resize", "",
      name, &k, err);
  if (st != LENS_OK)
    return st;
  if (g->mode == LENS_RESIZE_LINEAR) {
    extrapolation_size = sizeof (cl_float);
    extrapolation_arg = &extrapolation;
  } else {
    extrapolation_size = elem;
    extrapolation_arg = &s->extrapolation_bits;
  }
  if (s->plane_path) {
    st = lens_kernel_set_args (k, err, 10, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (s->table_mem), LENS_ARG (rows),
        LENS_ARG (chunks), LENS_ARG (in_h), LENS_ARG (in_w), LENS_ARG (out_h),
        LENS_ARG (out_w), extrapolation_size, extrapolation_arg);
    global = (size_t) rows * chunks;
  } else {
    st = lens_kernel_set_args (k, err, 6, LENS_ARG (x->buffer),
        LENS_ARG (y->buffer), LENS_ARG (s->table_mem), LENS_ARG (total),
        LENS_ARG (ndim), extrapolation_size, extrapolation_arg);
    global = (size_t) total;
  }
  if (st != LENS_OK)
    return st;
  local = MIN ((size_t) RESIZE_GROUP, lens_kernel_max_work_group (ctx, k));
  return lens_context_enqueue (ctx, k, 1, &global, &local, err);
}

static LensStatus
resize_reference (LensNode * node, LensError *err)
{
  ResizeState *s = node->priv;

  lens_ref_resize (node->inputs[0], node->outputs[0], &s->geometry);
  return LENS_OK;
}

/* ---- self-test cases ---------------------------------------------------- */

static LensTensor *
constant_input (LensDType dtype, int64_t n, const void *data)
{
  LensTensor *t = lens_tensor_new_host (dtype, 1, &n, data);

  t->is_constant = TRUE;
  return t;
}

/* Cases 24-26: nearest doublings of the last two axes (the doubling
 * kernel): rows of one element, of whole vectors and a tail, of several
 * planes; float, int32 and (the table kernel) float16 elements. */
static LensNode *
doubling_case (int index, GRand * rand)
{
  static const int64_t shapes[3][4] = {
    {1, 1, 7, 1}, {1, 3, 5, 13}, {2, 7, 3, 97},
  };
  static const LensDType dtypes[3] = {
    LENS_DTYPE_FLOAT, LENS_DTYPE_INT32, LENS_DTYPE_FLOAT16,
  };
  const float scales[4] = { 1, 1, 2, 2 };
  int i = index - 24;
  LensTensor *inputs[3] = { NULL, NULL, NULL };
  LensNode *node;

  if (i >= 3)
    return NULL;
  inputs[0] = lens_tensor_new_random (dtypes[i], 4, shapes[i], rand, -100,
      100);
  inputs[2] = constant_input (LENS_DTYPE_FLOAT, 4, scales);
  node = lens_case_node_new ("Resize", 13, 3, inputs, 1);
  lens_node_set_attr_string (node, "mode", "nearest");
  /* both give pixel ox / 2 */
  lens_node_set_attr_string (node, "coordinate_transformation_mode",
      i == 1 ? "half_pixel" : "asymmetric");
  return node;
}

/* Cases 0-13 are nearest (every coordinate mode with every nearest_mode
 * over the cycle, several dtypes, leading axes resized on every third),
 * 14-23 linear on the last one or two axes. Scales or sizes at random,
 * upsampling and downsampling; case 13 is opset 10 and case 12 passes
 * the opset-11 empty scales. */
static LensNode *
resize_case (int index, GRand * rand)
{
  static const LensDType nearest_dtypes[] = {
    LENS_DTYPE_FLOAT, LENS_DTYPE_UINT8, LENS_DTYPE_FLOAT16, LENS_DTYPE_INT64,
    LENS_DTYPE_INT8
  };
  static const float factors[] = { 0.5f, 0.6f, 0.75f, 1.5f, 2.0f, 3.0f };
  gboolean linear = index >= 14;
  int coordinates = index % 6, nearest = (index / 2) % 4;
  int opset = index == 13 ? 10 : index == 12 ? 11 : 13;
  LensDType dtype = linear ? LENS_DTYPE_FLOAT : nearest_dtypes[index % 5];
  int ndim, resized_from;
  int64_t shape[LENS_MAX_DIMS], sizes[LENS_MAX_DIMS];
  float scales[LENS_MAX_DIMS], roi[2 * LENS_MAX_DIMS];
  gboolean use_sizes = g_rand_boolean (rand) && opset > 10;
  LensTensor *inputs[4] = { NULL, NULL, NULL, NULL };
  LensNode *node;

  if (index >= 24)
    return doubling_case (index, rand);
  if (opset == 10)
    coordinates = LENS_RESIZE_ASYMMETRIC;
  /* tf_half_pixel_for_nn moves even unscaled axes: linear keeps it to
   * the resized ones */
  ndim = g_rand_int_range (rand, 1, linear ? 5 : 6);
  if (linear && coordinates == LENS_RESIZE_TF_HALF_PIXEL_FOR_NN)
    ndim = MIN (ndim, 2);
  if (!linear && index % 3 == 0)
    ndim = g_rand_int_range (rand, 3, 6);
  resized_from = linear || index % 3 != 0 ? MAX (ndim - 2, 0) : 0;
  if (linear && g_rand_boolean (rand))
    resized_from = ndim - 1;
  for (int d = 0; d < ndim; d++) {
    shape[d] = lens_awkward_size (rand, d == ndim - 1);
    if (d < resized_from) {
      scales[d] = 1;
      sizes[d] = shape[d];
    } else {
      scales[d] = factors[g_rand_int_range (rand, 0, 6)];
      if (floorf (shape[d] * scales[d]) < 1)
        scales[d] = factors[g_rand_int_range (rand, 3, 6)];
      sizes[d] = g_rand_int_range (rand, 1, 2 * (gint32) shape[d] + 4);
    }
    roi[d] = d < resized_from ? 0 : (float) g_rand_double_range (rand, -0.3,
        0.5);
    roi[ndim + d] = d < resized_from ? 1 : (float) g_rand_double_range (rand,
        0.5, 1.3);
  }

  inputs[0] = lens_dtype_is_float (dtype) ?
      lens_tensor_new_random (dtype, ndim, shape, rand, -4, 4) :
      lens_tensor_new_random (dtype, ndim, shape, rand, 0, 100);
  if (opset == 10) {
    inputs[1] = constant_input (LENS_DTYPE_FLOAT, ndim, scales);
    node = lens_case_node_new ("Resize", opset, 2, inputs, 1);
  } else {
    if (coordinates == LENS_RESIZE_TF_CROP_AND_RESIZE)
      inputs[1] = constant_input (LENS_DTYPE_FLOAT, 2 * ndim, roi);
    if (use_sizes)
      inputs[3] = constant_input (LENS_DTYPE_INT64, ndim, sizes);
    else
      inputs[2] = constant_input (LENS_DTYPE_FLOAT, ndim, scales);
    if (opset == 11 && inputs[1] == NULL)
      inputs[1] = constant_input (LENS_DTYPE_FLOAT, 0, NULL);
    if (opset == 11 && inputs[2] == NULL)
      inputs[2] = constant_input (LENS_DTYPE_FLOAT, 0, NULL);
    node = lens_case_node_new ("Resize", opset, use_sizes ? 4 : 3, inputs, 1);
  }
  lens_node_set_attr_string (node, "mode", linear ? "linear" : "nearest");
  if (opset > 10) {
    lens_node_set_attr_string (node, "coordinate_transformation_mode",
        coordinate_names[coordinates].name);
    if (!linear)
      lens_node_set_attr_string (node, "nearest_mode",
          nearest_names[nearest].name);
  }
  if (coordinates == LENS_RESIZE_TF_CROP_AND_RESIZE)
    lens_node_set_attr_float (node, "extrapolation_value",
        lens_dtype_is_float (dtype) ? -7.5f : 7.0f);
  return node;
}

const LensOp lens_op_resize = {
  .op_type = "Resize",
  .init = resize_init,
  .reshape = resize_reshape,
  .run = resize_run,
  .reference = resize_reference,
  .exit = resize_exit,
  .make_case = resize_case,
  .atol = 1e-5,
  .rtol = 1e-5,
};
