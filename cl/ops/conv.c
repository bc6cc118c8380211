/* conv.c: Conv (float32) and ConvInteger (uint8/int8 -> int32), 1-D and
 * 2-D, with groups (depthwise included), strides, dilations, explicit or
 * automatic padding, and for Conv an optional bias and a fused activation
 * (lens-specific "activation" attributes set by graph rewrites).
 *
 * ConvInteger may also carry its dequantization epilogue, fused by the
 * graph rewrite of cl/model.c (lens-specific): input 4 is a float scalar
 * scale s, input 5 an optional float bias of one value per output channel
 * (any shape), input 6 an optional second float scalar that s is
 * multiplied by first (the weights' scale, the Mul that made s folded in)
 * and "activation" an optional fused activation; the output is then
 * float, act ((float) acc * s + bias[oc]) with every operation rounded as
 * the separate Mul, Cast, Mul, Add (and Sigmoid, Mul) would.
 *
 * A fused ConvInteger may have a second output (lens-specific): the range
 * of the floats it stores, as two int32 keys in float order (the minimum,
 * then the maximum; NaN skipped), which a DynamicQuantizeLinear of y reads
 * instead of reducing y again (cl/ops/quant.c). The node resets it before
 * its kernel; with "range_accumulate" = 1 it merges into the range already
 * there instead, which the executor resets once per inference for all
 * ranges (several producers of one Concat share one). Input 7 (also
 * lens-specific, with the fused epilogue) is an optional residual of y's
 * shape, added last (a residual Add fused away; not for depthwise
 * convolutions).
 *
 * init parses the attributes into LensConvParams (cl/ref/conv.h); reshape
 * resolves the geometry against the input shapes; run enqueues the kernels
 * of kernels/conv.cl. Every one packs its weights (once when constant)
 * into a scratch buffer of the node. Depthwise convolutions read x
 * directly (with a program built for their kernel shape); so does a 1x1
 * convolution over the whole plane (lens_conv2d_1x1, and
 * lens_conv2d_1x1_integer converting the bytes as it loads them), and on
 * a CPU device every other one with a column stride of 1 or 2 and at
 * least CONV_STAGED_MIN_CHANNELS input channels per group
 * (lens_conv2d_staged*, each work-item staging its own input window), as
 * does a float stem on a few channels at column stride 2
 * (lens_conv2d_stem, see CONV_STEM_MAX_CHANNELS). The rest (GPUs, larger
 * strides) pack x (padded, as floats) into a scratch buffer and run the
 * vector-tiled packed kernel. The
 * channel tile shrinks to the group for groups narrower than
 * CONV_TILE_OC. The references are in cl/ref/conv.c. 3-D convolutions
 * are refused. */
#include "lens-private.h"
#include "ref/conv.h"

#include <string.h>

/* Register tile of the packed kernels: output channels x output pixels
 * (one float vector) per work-item, passed as -DCONV_TM/TP. 16 channels
 * measured best on yolov8n (PoCL, AVX-512). A vector costs the same at 8
 * and 16 lanes there (one register either way), so rows longer than 8
 * pixels take 16 (fewer vectors per row: on YOLOv5n, YOLOX-nano and
 * YOLO11n 10 to 40 % less time per node) and rows of 8 or fewer take 8
 * (16 was slower on YOLOv5n's 8x8 layers; the staged Conv kernel puts two
 * such rows in one vector, see is_row_paired). Flattened 1x1 rows are
 * whole planes. */
#define CONV_TILE_OC 16
#define CONV_TILE_PX 16
#define CONV_TILE_PX_SHORT 8

/* The same tile on a GPU: one output channel (a depthwise group's few,
 * see tile_oc) by 8 pixels a work-item. The CPU's 16 x 16 left an H100
 * (NVIDIA's OpenCL) a few hundred work-items per layer, each with 256
 * accumulators (more than a thread's registers): YOLO11n took 35.8 ms,
 * with 1 x 8 7.4 ms (2 x 8 8.1 ms, 4 x 8 9.8 ms, 8 x 8 13.5 ms, 2 x 16
 * 10.0 ms); of the eight benchmark models six ran faster with 1 channel
 * than with 2 and two (nanodet, yolov8n) 2-8 % slower. */
#define CONV_TILE_OC_GPU 1
#define CONV_TILE_PX_GPU 8

/* Convolutions with one input channel per group and fewer output
 * channels per group than this take the depthwise kernel. */
#define CONV_DEPTHWISE_MAX_MULTIPLIER 8
/* Work-items the depthwise kernel aims at on a CPU device (rows per
 * work-item grow to leave about this many). */
#define CONV_DEPTHWISE_CPU_ITEMS 128

/* Output rows the depthwise kernel computes together on a CPU device at
 * stride 1 (-DDW_OUT_ROWS: each input vector loaded once for them all;
 * single-threaded, 64x80x80 3x3 164 -> 117 us, 96x22x22 5x5 59 -> 43 us
 * with 4 against 1; 2 gave 128 and 46 us. At stride 2 they share a third
 * of the loads and were slower: 24x88x88 3x3 38 -> 43-54 us). */
#define CONV_DEPTHWISE_CPU_OUT_ROWS 4

/* Pixels per vector of the depthwise kernel: 16 on rows longer than
 * CONV_DEPTHWISE_WIDE_ROW whose 16-lane tiles cover at most a quarter
 * more columns than 8-lane ones, else 8 (half the vectors for nearly the
 * same columns. Single-threaded minimums, Intel Xeon: YOLOX-nano's 52-,
 * 104- and 26-wide rows 190 -> 167, 164 -> 136 and 62 -> 49 us, yunet's
 * 40-wide 61 -> 47 us; its 80- and 160-wide rows took 16 already. Rows of
 * 16 or fewer stay at 8: YOLOX-nano's 13-wide 87 -> 132 us and yunet's
 * 10-wide 12 -> 15 us with 16). */
#define CONV_DEPTHWISE_WIDE_ROW 16

/* Columns of the packed input per work-item of lens_conv_pack_input (as
 * in kernels/conv.cl). */
#define CONV_PACK_SPAN 16

/* Pixel vectors per tile and channels per tile of the flat 1x1 kernels
 * on a CPU device (-DCONV_PV, -DCONV_TM): one weight broadcast feeds
 * three multiply-adds, 24 accumulators (yunet's 64 -> 64 channels at
 * 80x80: 0.24 -> 0.18 ms; 4 vectors of 6 channels measured the same, 2 of
 * 12 or 14 slower). Planes of fewer pixels than CONV_FLAT_WIDE_MIN_PLANE
 * keep one vector of CONV_TILE_OC channels: too few tiles to share out
 * (YOLOX-nano's 13x13 layers were slower). The staged kernels likewise
 * take up to 3 output rows a tile (-DCONV_PR, see tile_rows) with
 * CONV_WIDE_TILE_OC_CPU channels, where the window of all the input
 * channels stays within CONV_STAGED_ROWS_MAX_FLOATS (32 KiB, in the L1
 * cache: YOLO11n's 3x3 layers 10-25 % faster, its 64-channel stride-2
 * layer at 20x20, whose 60 KiB window did not fit, 7 % slower; YOLOv5n's
 * 8x8 layers, on 8-lane vectors, 10 % slower: they keep one row). */
#define CONV_FLAT_VECTORS_CPU 3
#define CONV_WIDE_TILE_OC_CPU 8
#define CONV_FLAT_WIDE_MIN_PLANE 256
#define CONV_STAGED_ROWS_MAX_FLOATS 8192

/* Input channels the flat 1x1 kernels stage in private memory at once
 * (-DCONV_STAGE): on a CPU device enough for the channel counts of the
 * models (their tiles then stage once for all channel tiles), ConvInteger
 * at most CONV_INT_CHUNK (its float sums stay exact); on a GPU a few
 * registers' worth. With more channels than a stage a tile stages every
 * chunk again for each channel tile, one vector wide: FastestDet's two
 * 1x1s over 336 channels at 22x22 took 0.50 and 0.43 ms single-threaded
 * with stages of 256, 0.23-0.30 and 0.20-0.27 ms with 384. */
#define CONV_STAGE_CPU 384
#define CONV_STAGE_CPU_INTEGER 256
#define CONV_STAGE_GPU 8
/* Work-items per compute unit the flat 1x1 and staged kernels leave at
 * least, where channel tiles allow (see channel_tiles_per_item) */
#define CONV_FLAT_ITEMS_PER_UNIT 4

/* Floats of the input window the staged kernels hold in private memory
 * (-DCONV_STAGE_FLOATS, 64 KiB: the windows of YOLO11n's 3x3 layers with
 * up to 128 input channels at stride 2 and 256 at stride 1 in one
 * stage). */
#define CONV_STAGE_FLOATS 16384

/* The staged kernels take convolutions with at least this many input
 * channels per group: with fewer (stems on RGB, depthwise) a work-item
 * has too little to compute for the staging it does (FastestDet's 3 ->
 * 24 stem: 0.50 ms packed, 0.65 ms staged). */
#define CONV_STAGED_MIN_CHANNELS 8

/* lens_conv2d_stem (CPU devices) takes float convolutions of at most
 * this many input channels, one group, column stride 2, no dilation and
 * kernels at most CONV_STEM_MAX_KERNEL wide and high (its taps unroll):
 * the stems on RGB images, which the packed path spent more time packing
 * than computing. */
#define CONV_STEM_MAX_CHANNELS 4
#define CONV_STEM_MAX_KERNEL 7
/* so that no convolution is both a stem and staged */
G_STATIC_ASSERT (CONV_STEM_MAX_CHANNELS < CONV_STAGED_MIN_CHANNELS);

/* Work-items per work-group of the convolution kernels (at most). */
#define CONV_GROUP_SIZE 64

/* ConvInteger sums at most this many products per lane in float before
 * moving them to int32 (exact below 2^24, see kernels/conv.cl). */
#define CONV_INT_CHUNK 256
/* the flat 1x1 ConvInteger sums one stage in float */
G_STATIC_ASSERT (CONV_STAGE_CPU_INTEGER <= CONV_INT_CHUNK);
G_STATIC_ASSERT (CONV_STAGE_GPU <= CONV_INT_CHUNK);

enum
{
  SLOT_STAGED,
  SLOT_PACKED,
  SLOT_DEPTHWISE,
  SLOT_PACK_INPUT,
  SLOT_PACK_WEIGHTS,
  SLOT_DIRECT,
  SLOT_VNNI_PACK_INPUT,
  SLOT_VNNI,
  /* a stem never runs the packed kernel (LENS_NODE_MAX_KERNELS slots) */
  SLOT_STEM = SLOT_PACKED,
};

/* node->priv: the parameters first (the references read them as
 * LensConvParams), then the scratch buffers of the packed kernels. */
typedef struct
{
  LensConvParams p;
  LensTensor *x_packed;         /* padded float copy of x */
  LensTensor *w_packed;         /* weights in tile order */
  gboolean w_ready;             /* w_packed holds constant weights */
  /* ConvInteger on AVX-512 VNNI (see conv_vnni_run): the weights as 4
   * bytes a lane and their sums per channel, packed once (NULL where the
   * node does not qualify); vnni_checked once the node was looked at */
  LensTensor *vnni_w, *vnni_wsum;
  gboolean vnni_checked;
  gboolean range_accumulate;    /* output 1 is reset by the executor */
} ConvState;

/* ---- attributes --------------------------------------------------------- */

/* Reads an ints attribute of at most @max_n values into @out; *n is -1
 * when absent. More than two spatial values means a 3-D convolution. */
static LensStatus
parse_ints (LensNode * node, const char *name, int per_dim, int64_t min,
    int64_t *out, int *n, LensError *err)
{
  const int64_t *v;
  int count = lens_node_attr_ints (node, name, &v);

  *n = count;
  if (count < 0)
    return LENS_OK;
  if (count == 3 * per_dim)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: attribute '%s' has %d values: 3-D convolution is not supported",
        node->op_type, name, count);
  if (count != per_dim && count != 2 * per_dim)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: attribute '%s' has %d values, expected %d or %d (1-D or 2-D)",
        node->op_type, name, count, per_dim, 2 * per_dim);
  for (int i = 0; i < count; i++) {
    if (v[i] < min)
      return lens_error_set (err, min == 0 ? LENS_ERROR_UNSUPPORTED :
          LENS_ERROR_INVALID, "%s: attribute '%s' = %" G_GINT64_FORMAT
          " is not supported (must be >= %" G_GINT64_FORMAT ")",
          node->op_type, name, v[i], min);
    if (v[i] > G_MAXINT / 4)
      return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
          "%s: attribute '%s' = %" G_GINT64_FORMAT " is too large",
          node->op_type, name, v[i]);
    out[i] = v[i];
  }
  return LENS_OK;
}

static LensStatus
parse_attributes (LensNode * node, LensConvParams * p, LensError *err)
{
  const char *auto_pad = lens_node_attr_string (node, "auto_pad", "NOTSET");
  LensStatus st;

  p->group = lens_node_attr_int (node, "group", 1);
  if (p->group < 1 || p->group > G_MAXINT)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: attribute 'group' = %" G_GINT64_FORMAT " is invalid",
        node->op_type, p->group);

  if (strcmp (auto_pad, "NOTSET") == 0)
    p->auto_pad = LENS_CONV_AUTO_PAD_NOTSET;
  else if (strcmp (auto_pad, "SAME_UPPER") == 0)
    p->auto_pad = LENS_CONV_AUTO_PAD_SAME_UPPER;
  else if (strcmp (auto_pad, "SAME_LOWER") == 0)
    p->auto_pad = LENS_CONV_AUTO_PAD_SAME_LOWER;
  else if (strcmp (auto_pad, "VALID") == 0)
    p->auto_pad = LENS_CONV_AUTO_PAD_VALID;
  else
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: attribute 'auto_pad' = %s is not supported", node->op_type,
        auto_pad);

  st = parse_ints (node, "kernel_shape", 1, 1, p->kernel_shape,
      &p->n_kernel_shape, err);
  if (st == LENS_OK)
    st = parse_ints (node, "strides", 1, 1, p->strides, &p->n_strides, err);
  if (st == LENS_OK)
    st = parse_ints (node, "dilations", 1, 1, p->dilations, &p->n_dilations,
        err);
  if (st == LENS_OK)
    st = parse_ints (node, "pads", 2, 0, p->pads, &p->n_pads, err);
  if (st != LENS_OK)
    return st;

  if (p->auto_pad != LENS_CONV_AUTO_PAD_NOTSET)
    for (int i = 0; i < p->n_pads; i++)
      if (p->pads[i] != 0)
        return lens_error_set (err, LENS_ERROR_INVALID,
            "%s: attribute 'pads' cannot be used with 'auto_pad' = %s",
            node->op_type, auto_pad);
  return LENS_OK;
}

static LensStatus
conv_init (LensNode * node, LensError *err)
{
  ConvState *state = g_new0 (ConvState, 1);
  LensConvParams *p = &state->p;
  LensStatus st;

  node->priv = state;
  st = parse_attributes (node, p, err);
  if (st != LENS_OK)
    return st;
  return lens_activation_from_node (node, &p->act, err);
}

static LensStatus
conv_integer_init (LensNode * node, LensError *err)
{
  ConvState *state = g_new0 (ConvState, 1);
  LensConvParams *p = &state->p;
  LensStatus st;

  node->priv = state;
  st = parse_attributes (node, p, err);
  if (st != LENS_OK)
    return st;
  state->range_accumulate = lens_node_attr_int (node, "range_accumulate",
      0) != 0;
  /* only with the fused epilogue (input 4), checked by reshape */
  return lens_activation_from_node (node, &p->act, err);
}

static void
conv_exit (LensNode * node)
{
  ConvState *state = node->priv;

  if (state == NULL)
    return;
  g_clear_pointer (&state->x_packed, lens_tensor_free);
  g_clear_pointer (&state->w_packed, lens_tensor_free);
  g_clear_pointer (&state->vnni_w, lens_tensor_free);
  g_clear_pointer (&state->vnni_wsum, lens_tensor_free);
  g_clear_pointer (&node->priv, g_free);
}

/* ---- geometry ------------------------------------------------------------ */

static gboolean
fits_int (const LensTensor * t)
{
  return lens_tensor_numel (t) <= G_MAXINT;
}

/* Output size and begin pad of one spatial dimension. */
static LensStatus
resolve_dim (const LensNode * node, const LensConvParams * p, int d,
    int spatial, int64_t in, int64_t k, int64_t *out, int64_t *pad_begin,
    LensError *err)
{
  int64_t stride = p->n_strides > 0 ? p->strides[d] : 1;
  int64_t dil = p->n_dilations > 0 ? p->dilations[d] : 1;
  int64_t extent = (k - 1) * dil + 1;   /* the dilated kernel */
  int64_t begin = 0, end = 0, total;

  switch (p->auto_pad) {
    case LENS_CONV_AUTO_PAD_NOTSET:
      if (p->n_pads > 0) {
        begin = p->pads[d];
        end = p->pads[d + spatial];
      }
      break;
    case LENS_CONV_AUTO_PAD_VALID:
      break;
    case LENS_CONV_AUTO_PAD_SAME_UPPER:
    case LENS_CONV_AUTO_PAD_SAME_LOWER:
      /* output = ceil (in / stride); the odd pad goes at the end (UPPER)
       * or at the beginning (LOWER) */
      total = ((in + stride - 1) / stride - 1) * stride + extent - in;
      total = MAX (total, 0);
      begin = p->auto_pad == LENS_CONV_AUTO_PAD_SAME_UPPER ? total / 2 :
          total - total / 2;
      end = total - begin;
      break;
  }
  if (in + begin + end < extent)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: spatial dimension %d: input %" G_GINT64_FORMAT " with pads %"
        G_GINT64_FORMAT "+%" G_GINT64_FORMAT " is smaller than the dilated "
        "kernel %" G_GINT64_FORMAT, node->op_type, d, in, begin, end, extent);
  *out = (in + begin + end - extent) / stride + 1;
  *pad_begin = begin;
  return LENS_OK;
}

/* Checks x and w and fills the geometry of @p; sets the output shape. */
static LensStatus
resolve_geometry (LensNode * node, LensConvParams * p, const LensTensor * x,
    const LensTensor * w, LensTensor * y, LensError *err)
{
  int spatial = x->ndim - 2;
  int64_t in[2], k[2], out[2], pad[2], shape[4];
  LensStatus st;

  if (x->ndim == 5)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: input X of rank 5 (3-D convolution) is not supported",
        node->op_type);
  if (x->ndim != 3 && x->ndim != 4)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: input X has rank %d, expected 3 (1-D) or 4 (2-D)",
        node->op_type, x->ndim);
  if (w->ndim != x->ndim)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: input W has rank %d, expected %d like X", node->op_type,
        w->ndim, x->ndim);
  if ((p->n_kernel_shape >= 0 && p->n_kernel_shape != spatial)
      || (p->n_strides >= 0 && p->n_strides != spatial)
      || (p->n_dilations >= 0 && p->n_dilations != spatial)
      || (p->n_pads >= 0 && p->n_pads != 2 * spatial))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: attributes kernel_shape/strides/dilations/pads do not match "
        "the %d spatial dimension(s) of X", node->op_type, spatial);
  if (x->shape[1] % p->group != 0 || w->shape[0] % p->group != 0
      || w->shape[1] * p->group != x->shape[1])
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: group %" G_GINT64_FORMAT " does not fit X channels %"
        G_GINT64_FORMAT ", W [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
        ", ...]", node->op_type, p->group, x->shape[1], w->shape[0],
        w->shape[1]);
  for (int d = 0; d < spatial; d++) {
    in[d] = x->shape[2 + d];
    k[d] = w->shape[2 + d];
    if (p->n_kernel_shape > 0 && p->kernel_shape[d] != k[d])
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: attribute 'kernel_shape'[%d] = %" G_GINT64_FORMAT " but W "
          "has %" G_GINT64_FORMAT, node->op_type, d, p->kernel_shape[d],
          k[d]);
    if (k[d] < 1)
      return lens_error_set (err, LENS_ERROR_INVALID,
          "%s: W has an empty kernel", node->op_type);
    st = resolve_dim (node, p, d, spatial, in[d], k[d], &out[d], &pad[d],
        err);
    if (st != LENS_OK)
      return st;
  }

  shape[0] = x->shape[0];
  shape[1] = w->shape[0];
  for (int d = 0; d < spatial; d++)
    shape[2 + d] = out[d];
  lens_tensor_set_shape (y, x->ndim, shape);
  if (!fits_int (x) || !fits_int (w) || !fits_int (y))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "%s: tensors of more than 2^31 elements are not supported",
        node->op_type);

  p->spatial = spatial;
  p->batch = (int) x->shape[0];
  p->in_c = (int) x->shape[1];
  p->out_c = (int) w->shape[0];
  p->in_per_group = (int) w->shape[1];
  p->out_per_group = (int) (w->shape[0] / p->group);
  /* a 1-D convolution is the 2-D one of height 1 */
  p->in_h = spatial == 2 ? (int) in[0] : 1;
  p->in_w = (int) in[spatial - 1];
  p->out_h = spatial == 2 ? (int) out[0] : 1;
  p->out_w = (int) out[spatial - 1];
  p->k_h = spatial == 2 ? (int) k[0] : 1;
  p->k_w = (int) k[spatial - 1];
  p->stride_h = spatial == 2 && p->n_strides > 0 ? (int) p->strides[0] : 1;
  p->stride_w = p->n_strides > 0 ? (int) p->strides[spatial - 1] : 1;
  p->dil_h = spatial == 2 && p->n_dilations > 0 ? (int) p->dilations[0] : 1;
  p->dil_w = p->n_dilations > 0 ? (int) p->dilations[spatial - 1] : 1;
  p->pad_top = spatial == 2 ? (int) pad[0] : 0;
  p->pad_left = (int) pad[spatial - 1];
  return LENS_OK;
}

static LensStatus
conv_reshape (LensNode * node, LensError *err)
{
  static const LensDType floats[] = { LENS_DTYPE_FLOAT, LENS_DTYPE_UNDEFINED };
  LensConvParams *p = node->priv;
  LensTensor *x = lens_node_input (node, 0), *w = lens_node_input (node, 1);
  LensTensor *b = lens_node_input (node, 2), *y = lens_node_output (node, 0);
  LensStatus st;

  if (x == NULL || w == NULL || y == NULL || node->n_inputs > 3)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Conv needs inputs X, W and an optional B, and one output");
  st = lens_node_check_dtype (node, "input X", x->dtype, floats, err);
  if (st == LENS_OK)
    st = lens_node_check_dtype (node, "input W", w->dtype, floats, err);
  if (st == LENS_OK && b != NULL)
    st = lens_node_check_dtype (node, "input B", b->dtype, floats, err);
  if (st != LENS_OK)
    return st;
  y->dtype = LENS_DTYPE_FLOAT;
  ((ConvState *) node->priv)->w_ready = FALSE;
  st = resolve_geometry (node, p, x, w, y, err);
  if (st != LENS_OK)
    return st;
  if (b != NULL && (b->ndim != 1 || b->shape[0] != p->out_c))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "Conv: input B must be 1-D of %d values (output channels)", p->out_c);
  return LENS_OK;
}

static gboolean is_depthwise (const LensConvParams * p, gboolean integer);

static LensStatus
conv_integer_reshape (LensNode * node, LensError *err)
{
  static const LensDType bytes[] = { LENS_DTYPE_UINT8, LENS_DTYPE_INT8,
    LENS_DTYPE_UNDEFINED
  };
  LensConvParams *p = node->priv;
  LensTensor *x = lens_node_input (node, 0), *w = lens_node_input (node, 1);
  LensTensor *x_zp = lens_node_input (node, 2);
  LensTensor *w_zp = lens_node_input (node, 3);
  LensTensor *scale = lens_node_input (node, 4);
  LensTensor *bias = lens_node_input (node, 5);
  LensTensor *scale2 = lens_node_input (node, 6);
  LensTensor *y = lens_node_output (node, 0);
  LensTensor *range = lens_node_output (node, 1);
  LensTensor *residual = lens_node_input (node, 7);
  LensStatus st;

  if (x == NULL || w == NULL || y == NULL || node->n_inputs > 8
      || node->n_outputs > 2)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConvInteger needs inputs x, w, optional x_zero_point and "
        "w_zero_point (and for the fused epilogue a scale, an optional "
        "bias and an optional second scale), and output y (and with the "
        "fused epilogue an optional range)");
  if ((range != NULL || residual != NULL) && scale == NULL)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConvInteger: the range output (output 1) and the residual (input "
        "7) need the fused epilogue (input 4)");
  if (scale == NULL && (bias != NULL || scale2 != NULL
          || p->act.kind != LENS_ACT_NONE))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConvInteger: a fused bias, second scale or activation needs the "
        "fused scale (input 4)");
  if (scale != NULL && (scale->dtype != LENS_DTYPE_FLOAT
          || lens_tensor_numel (scale) != 1))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConvInteger: the fused scale (input 4) must be a single float");
  if (scale2 != NULL && (scale2->dtype != LENS_DTYPE_FLOAT
          || lens_tensor_numel (scale2) != 1))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConvInteger: the fused second scale (input 6) must be a single "
        "float");
  st = lens_node_check_dtype (node, "input x", x->dtype, bytes, err);
  if (st == LENS_OK)
    st = lens_node_check_dtype (node, "input w", w->dtype, bytes, err);
  if (st != LENS_OK)
    return st;
  if (x_zp != NULL && (x_zp->dtype != x->dtype || lens_tensor_numel (x_zp)
          != 1))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "ConvInteger: input x_zero_point must be a single %s value "
        "(per-tensor)", lens_dtype_name (x->dtype));
  y->dtype = scale != NULL ? LENS_DTYPE_FLOAT : LENS_DTYPE_INT32;
  if (range != NULL) {
    int64_t two = 2;
    range->dtype = LENS_DTYPE_INT32;
    lens_tensor_set_shape (range, 1, &two);
  }
  ((ConvState *) node->priv)->w_ready = FALSE;
  st = resolve_geometry (node, p, x, w, y, err);
  if (st != LENS_OK)
    return st;
  if (bias != NULL && (bias->dtype != LENS_DTYPE_FLOAT
          || lens_tensor_numel (bias) != p->out_c))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConvInteger: the fused bias (input 5) must be %d floats (output "
        "channels)", p->out_c);
  if (residual != NULL && (residual->dtype != LENS_DTYPE_FLOAT
          || residual->ndim != y->ndim || memcmp (residual->shape, y->shape,
              sizeof (int64_t) * y->ndim) != 0))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConvInteger: the fused residual (input 7) must be float32 of the "
        "output's shape");
  if (residual != NULL && is_depthwise (p, TRUE))
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "ConvInteger: a fused residual (input 7) is not supported on a "
        "depthwise convolution");
  if (p->k_w > CONV_INT_CHUNK)
    return lens_error_set (err, LENS_ERROR_UNSUPPORTED,
        "ConvInteger: kernel width %d is not supported (at most %d)",
        p->k_w, CONV_INT_CHUNK);
  if (w_zp != NULL && (w_zp->dtype != w->dtype || w_zp->ndim > 1
          || (lens_tensor_numel (w_zp) != 1
              && lens_tensor_numel (w_zp) != p->out_c)))
    return lens_error_set (err, LENS_ERROR_INVALID,
        "ConvInteger: input w_zero_point must be a %s scalar or 1-D of %d "
        "values (output channels)", lens_dtype_name (w->dtype), p->out_c);
  return LENS_OK;
}

/* ---- run ----------------------------------------------------------------- */

static LensStatus
require_plain (const LensNode * node, const LensTensor * t, const char *what,
    LensError *err)
{
  /* optional inputs may be absent */
  return t == NULL ? LENS_OK : lens_node_require_dense (node, t, what, err);
}

/* Sets @n int arguments from argument @first on; *next is the index after
 * them. */
static LensStatus
set_int_args (cl_kernel k, cl_uint first, const cl_int * values, guint n,
    cl_uint *next, LensError *err)
{
  for (guint i = 0; i < n; i++) {
    LensStatus st = lens_kernel_set_arg (k, first + i, sizeof (cl_int),
        &values[i], err);
    if (st != LENS_OK)
      return st;
  }
  *next = first + n;
  return LENS_OK;
}

/* A work-group of up to CONV_GROUP_SIZE items, filling dimension 0 (the
 * output pixels, which neighbouring items read contiguously) first and
 * dimension 1 (output channels) when dimension 0 is short. */
static void
pick_local_size (LensContext * ctx, cl_kernel k, const size_t *global,
    size_t *local)
{
  size_t budget = MIN ((size_t) CONV_GROUP_SIZE,
      lens_kernel_max_work_group (ctx, k));

  local[0] = local[1] = local[2] = 1;
  while (local[0] * 2 <= budget && local[0] < global[0])
    local[0] *= 2;
  while (local[0] * local[1] * 2 <= budget && local[1] < global[1])
    local[1] *= 2;
}

/* A 1x1, stride-1, unpadded convolution: one over the flattened plane
 * (see PackedGeometry). */
static gboolean
is_flat (const LensConvParams * p)
{
  return p->k_h == 1 && p->k_w == 1 && p->stride_h == 1 && p->stride_w == 1
      && p->pad_top == 0 && p->pad_left == 0 && p->out_h == p->in_h
      && p->out_w == p->in_w;
}

/* Whether @p takes the depthwise kernels: one input channel per group, a
 * small channel multiplier; for ConvInteger (@integer) also at most
 * CONV_INT_CHUNK taps, whose float sums stay exact. */
static gboolean
is_depthwise (const LensConvParams * p, gboolean integer)
{
  return p->in_per_group == 1
      && p->out_per_group < CONV_DEPTHWISE_MAX_MULTIPLIER
      && (!integer || p->k_h * p->k_w <= CONV_INT_CHUNK);
}

/* Pixels per vector of the packed kernels (see CONV_TILE_PX). */
static int
tile_px (LensContext * ctx, const LensConvParams * p)
{
  if (lens_context_is_gpu (ctx))
    return CONV_TILE_PX_GPU;
  return is_flat (p) || p->out_w > CONV_TILE_PX_SHORT ? CONV_TILE_PX :
      CONV_TILE_PX_SHORT;
}

/* Whether @p runs a staged kernel (see kernels/conv.cl): on a CPU
 * device, neither flat nor depthwise, a column stride of 1 or 2 and at
 * least CONV_STAGED_MIN_CHANNELS input channels per group. */
static gboolean
is_staged (LensContext * ctx, const LensConvParams * p)
{
  return !lens_context_is_gpu (ctx) && !is_flat (p)
      && (p->stride_w == 1 || p->stride_w == 2)
      && p->in_per_group >= CONV_STAGED_MIN_CHANNELS;
}

/* Whether the float convolution @p runs lens_conv2d_stem (see
 * CONV_STEM_MAX_CHANNELS); never a flat 1x1, whose column stride is 1. */
static gboolean
is_stem (LensContext * ctx, const LensConvParams * p)
{
  return !lens_context_is_gpu (ctx) && p->group == 1
      && p->in_c <= CONV_STEM_MAX_CHANNELS && !is_depthwise (p, FALSE)
      && p->stride_w == 2 && p->dil_h == 1 && p->dil_w == 1
      && p->k_h <= CONV_STEM_MAX_KERNEL && p->k_w <= CONV_STEM_MAX_KERNEL;
}

/* Whether the float convolution @p runs the staged kernel on row pairs
 * (see CONV_ROW_PAIRS in kernels/conv.cl): staged, on rows of at most
 * CONV_TILE_PX_SHORT pixels, at least two of them. Single-threaded on
 * YOLOv5n's 3x3 layers at 8x8 (Intel Xeon, AVX-512): 128 -> 256 channels
 * at stride 2 1158 -> 677 us, 128 -> 128 at stride 1 587 -> 338 us. */
static gboolean
is_row_paired (LensContext * ctx, const LensConvParams * p)
{
  return is_staged (ctx, p) && tile_px (ctx, p) == CONV_TILE_PX_SHORT
      && p->out_h >= 2;
}

/* Floats a staged kernel holds per input channel for a tile of @rows
 * output rows of @tile_px pixels (as CONV_STAGED_BEGIN in
 * kernels/conv.cl): the window's rows, each split by column phase. */
static int
staged_channel_floats (const LensConvParams * p, int tile_px, int rows)
{
  int phase_len = tile_px + (p->k_w - 1) * p->dil_w / p->stride_w;
  int win_h = (rows - 1) * p->stride_h + (p->k_h - 1) * p->dil_h + 1;

  return win_h * p->stride_w * phase_len;
}

/* Input channels per stage of the flat 1x1 kernels (see CONV_STAGE_CPU)
 * for Conv, or for ConvInteger (@integer). */
static int
stage_channels (LensContext * ctx, gboolean integer)
{
  if (lens_context_is_gpu (ctx))
    return CONV_STAGE_GPU;
  return integer ? CONV_STAGE_CPU_INTEGER : CONV_STAGE_CPU;
}

/* Pixel vectors per tile: CONV_FLAT_VECTORS_CPU for a flat 1x1 on a CPU
 * device whose channels fit one stage and whose plane is large enough,
 * else 1. */
static int
tile_vectors (LensContext * ctx, const LensConvParams * p, gboolean integer)
{
  if (lens_context_is_gpu (ctx) || !is_flat (p) || p->in_per_group >
      stage_channels (ctx, integer)
      || p->out_h * p->out_w < CONV_FLAT_WIDE_MIN_PLANE)
    return 1;
  return CONV_FLAT_VECTORS_CPU;
}

/* Output rows per tile of the staged kernels: 3, or 2 where 3 would leave
 * rows past the end of short columns, for rows of 16-lane vectors whose
 * window, all channels staged at once, fits CONV_STAGED_ROWS_MAX_FLOATS;
 * else 1. */
static int
tile_rows (LensContext * ctx, const LensConvParams * p)
{
  int rows = p->out_h % 3 == 0 || p->out_h >= 24 ? 3 : 2;

  if (!is_staged (ctx, p) || tile_px (ctx, p) != CONV_TILE_PX
      || p->in_per_group * staged_channel_floats (p, CONV_TILE_PX, rows) >
      CONV_STAGED_ROWS_MAX_FLOATS)
    return 1;
  return rows;
}

/* Output channels per work-item of the packed kernels: CONV_TILE_OC
 * (CONV_WIDE_TILE_OC_CPU with @vectors or @rows > 1, CONV_TILE_OC_GPU on
 * a GPU), or for groups with fewer channels the smallest power of two
 * that holds them (a depthwise ConvInteger would otherwise compute 16
 * channels to keep one); a depthwise group's channels always in one tile,
 * as its kernel computes them. */
static int
tile_oc (LensContext * ctx, const LensConvParams * p, int vectors, int rows)
{
  int full = lens_context_is_gpu (ctx) ? CONV_TILE_OC_GPU :
      vectors > 1 || rows > 1 ? CONV_WIDE_TILE_OC_CPU : CONV_TILE_OC;
  int tile = 1;

  if (is_depthwise (p, FALSE))
    while (full < p->out_per_group)
      full *= 2;

  /* 24 channels (FastestDet, ShuffleNets) in one tile of 24, not two of
   * 16 of which 8 channels would be computed for nothing */
  if (full == CONV_TILE_OC && p->out_per_group == CONV_TILE_OC * 3 / 2)
    return p->out_per_group;
  if (p->out_per_group >= full)
    return full;
  while (tile < p->out_per_group)
    tile *= 2;
  return tile;
}

/* The form of ConvInteger's fused epilogue (see the top of this file),
 * part of its build options: none (int32 out), a scale (input 4), or the
 * product of two (inputs 4 and 6). */
typedef enum
{
  EPILOGUE_FORM_NONE,
  EPILOGUE_FORM_SCALE,
  EPILOGUE_FORM_SCALES,
} EpilogueForm;

static EpilogueForm
epilogue_form (LensNode * node)
{
  if (lens_node_input (node, 4) == NULL)
    return EPILOGUE_FORM_NONE;
  return lens_node_input (node, 6) != NULL ? EPILOGUE_FORM_SCALES :
      EPILOGUE_FORM_SCALE;
}

/* @range: the ConvInteger kernels also find the range of what they store
 * (output 1); @residual: they add input 7 (see the top of this file). */
static char *
conv_options (LensContext * ctx, gboolean integer, LensActivationKind act,
    EpilogueForm form, gboolean range, gboolean residual, int tile_oc,
    int tile_px, int vectors, int rows)
{
  /* a CPU device's compiler is clang: prefetch and under-aligned vector
   * types (see kernels/conv.cl) */
  gboolean cpu = !lens_context_is_gpu (ctx);

  return g_strdup_printf ("-DACT=%d -DCONV_TM=%d -DCONV_TP=%d -DCONV_PV=%d "
      "-DCONV_PR=%d -DCONV_STAGE=%d -DCONV_STAGE_FLOATS=%d "
      "-DCONV_PREFETCH=%d -DCONV_UNALIGNED_VECTORS=%d%s%s%s%s", (int) act,
      tile_oc, tile_px, vectors, rows, stage_channels (ctx, integer),
      CONV_STAGE_FLOATS, cpu, cpu,
      form != EPILOGUE_FORM_NONE ? " -DCONV_INT_FUSED=1" : "",
      form == EPILOGUE_FORM_SCALES ? " -DCONV_INT_SCALES=1" : "",
      range ? " -DCONV_INT_RANGE=1" : "",
      residual ? " -DCONV_INT_RESIDUAL=1" : "");
}

/* Device scratch of @bytes in *@t (kept and reused between runs). */
static LensStatus
ensure_scratch (LensContext * ctx, LensTensor ** t, size_t bytes,
    LensError *err)
{
  int64_t n = (int64_t) (bytes / sizeof (float));

  if (*t == NULL) {
    *t = lens_tensor_new (LENS_DTYPE_FLOAT, 1, &n);
    lens_tensor_set_name (*t, "conv scratch");
  } else {
    lens_tensor_set_shape (*t, 1, &n);
  }
  return lens_tensor_alloc_device (ctx, *t, err);
}

/* The geometry the packed kernels run: a 1x1, stride-1, unpadded 2-D
 * convolution is a 1-D one over the flattened plane, which fills whole
 * pixel tiles where rows are short. */
typedef struct
{
  int in_h, in_w, out_h, out_w;
  int h_p, w_p, pad_top, pad_left;      /* the packed input */
  int tile_oc, tile_px, oc_tiles, ow_tiles;
  int vectors;                  /* pixel vectors (of tile_px) per tile */
  int rows, oh_tiles;           /* output rows per tile, tiles a column */
  gboolean flat;                /* the 1-D case above */
  gboolean vnni;                /* the kernels of -DCONV_VNNI */
  gboolean stem;                /* lens_conv2d_stem (-DSTEM_KH, -DSTEM_KW) */
  gboolean pairs;               /* row pairs (-DCONV_ROW_PAIRS, see
                                 * is_row_paired): 2 rows of tile_px */
} PackedGeometry;

/* @vectors, @rows: from tile_vectors and tile_rows */
static void
packed_geometry (LensContext * ctx, const LensConvParams * p, int vectors,
    int rows, PackedGeometry * pg)
{
  gboolean flat = is_flat (p);

  pg->flat = flat;
  pg->vnni = FALSE;
  pg->stem = FALSE;
  pg->pairs = FALSE;
  pg->in_h = flat ? 1 : p->in_h;
  pg->in_w = flat ? p->in_h * p->in_w : p->in_w;
  pg->out_h = flat ? 1 : p->out_h;
  pg->out_w = flat ? p->out_h * p->out_w : p->out_w;
  pg->pad_top = p->pad_top;
  pg->pad_left = p->pad_left;
  pg->tile_px = tile_px (ctx, p);
  pg->vectors = vectors;
  pg->ow_tiles = (pg->out_w + pg->tile_px * vectors - 1) /
      (pg->tile_px * vectors);
  pg->rows = rows;
  pg->oh_tiles = (pg->out_h + rows - 1) / rows;
  pg->tile_oc = tile_oc (ctx, p, vectors, rows);
  pg->oc_tiles = (p->out_per_group + pg->tile_oc - 1) / pg->tile_oc;
  /* every row the tiles read, and every column of whole tiles; stride 2
   * splits the columns by phase, each half reaching half the window */
  pg->h_p = (pg->out_h - 1) * p->stride_h + (p->k_h - 1) * p->dil_h + 1;
  if (p->stride_w == 2)
    pg->w_p = 2 * (pg->ow_tiles * pg->tile_px + (p->k_w - 1) * p->dil_w / 2);
  else
    pg->w_p = pg->ow_tiles * pg->tile_px * p->stride_w +
        (p->k_w - 1) * p->dil_w;
}

/* @pg: the tiles of the node's geometry */
static LensStatus
get_kernel (LensContext * ctx, LensNode * node, const PackedGeometry * pg,
    LensActivationKind act, EpilogueForm form, int slot, const char *name,
    cl_kernel *k, LensError *err)
{
  char *options;
  LensStatus st;

  *k = lens_node_built_kernel (node, slot);
  if (*k != NULL)
    return LENS_OK;
  /* a node's kernels share one program: the tiles of its geometry (row
   * pairs: one vector of both rows' pixels) */
  options = conv_options (ctx, node->inputs[0]->dtype != LENS_DTYPE_FLOAT,
      act, form, lens_node_output (node, 1) != NULL,
      lens_node_input (node, 7) != NULL, pg->tile_oc,
      pg->pairs ? 2 * pg->tile_px : pg->tile_px, pg->vectors,
      pg->pairs ? 1 : pg->rows);
  if (pg->vnni) {
    char *vnni = g_strconcat (options, " -DCONV_VNNI=1", NULL);

    g_free (options);
    options = vnni;
  }
  if (pg->pairs) {
    char *pairs = g_strconcat (options, " -DCONV_ROW_PAIRS=1", NULL);

    g_free (options);
    options = pairs;
  }
  if (pg->stem) {
    const LensConvParams *p = node->priv;
    char *stem = g_strdup_printf ("%s -DSTEM_KH=%d -DSTEM_KW=%d", options,
        p->k_h, p->k_w);

    g_free (options);
    options = stem;
  }
  st = lens_node_kernel (ctx, node, slot, "conv", options, name, k, err);
  g_free (options);
  return st;
}

/* Enqueues the packing of x (when @pack_x) and (unless already done for
 * constant weights) w. x_zp / w_zp are ConvInteger's optional zero
 * points. */
static LensStatus
pack_inputs (LensContext * ctx, LensNode * node, const PackedGeometry * pg,
    gboolean pack_x, LensTensor * x, LensTensor * w, LensTensor * x_zp,
    LensTensor * w_zp, LensError *err)
{
  ConvState *state = node->priv;
  const LensConvParams *p = &state->p;
  cl_int is_int = x->dtype != LENS_DTYPE_FLOAT;
  cl_int x_sign = x->dtype == LENS_DTYPE_INT8 ? 0x80 : 0;
  cl_int w_sign = w->dtype == LENS_DTYPE_INT8 ? 0x80 : 0;
  cl_int has_x_zp = x_zp != NULL;
  cl_int w_zp_count = w_zp ? (cl_int) lens_tensor_numel (w_zp) : 0;
  cl_int planes = p->batch * p->in_c;
  cl_int k_size = p->in_per_group * p->k_h * p->k_w;
  cl_int tiles = (cl_int) p->group * pg->oc_tiles;
  /* absent zero points are never read: x stands in for their buffers */
  cl_mem x_zp_buffer = x_zp ? x_zp->buffer : x->buffer;
  cl_mem w_zp_buffer = w_zp ? w_zp->buffer : x->buffer;
  /* the same build options as the node's main kernel: one program */
  EpilogueForm form = epilogue_form (node);
  size_t global[3], local[3];
  cl_uint next;
  cl_kernel k;
  LensStatus st;

  if (!pack_x)
    goto weights;
  st = ensure_scratch (ctx, &state->x_packed, (size_t) planes * pg->h_p *
      pg->w_p * sizeof (float), err);
  if (st == LENS_OK)
    st = get_kernel (ctx, node, pg, state->p.act.kind, form,
        SLOT_PACK_INPUT, "lens_conv_pack_input", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 7, LENS_ARG (x->buffer),
        LENS_ARG (x_zp_buffer), LENS_ARG (state->x_packed->buffer),
        LENS_ARG (is_int), LENS_ARG (x_sign), LENS_ARG (has_x_zp),
        LENS_ARG (planes));
  if (st == LENS_OK) {
    const cl_int geometry[] = { pg->in_h, pg->in_w, pg->h_p, pg->w_p,
      pg->pad_top, pg->pad_left, p->stride_w == 2
    };
    st = set_int_args (k, 7, geometry, G_N_ELEMENTS (geometry), &next, err);
  }
  if (st != LENS_OK)
    return st;
  /* a CPU device packs a whole row per work-item (fewer, longer items:
   * 5-10 % less time on YOLO11n's and YOLOv5n's packings), a GPU one span
   * per work-item */
  global[0] = lens_context_is_gpu (ctx) ?
      (pg->w_p + CONV_PACK_SPAN - 1) / CONV_PACK_SPAN : 1;
  global[1] = pg->h_p;
  global[2] = planes;
  pick_local_size (ctx, k, global, local);
  st = lens_context_enqueue (ctx, k, 3, global, local, err);
  if (st != LENS_OK)
    return st;

weights:
  if (state->w_ready)
    return LENS_OK;

  st = ensure_scratch (ctx, &state->w_packed, (size_t) tiles * k_size *
      pg->tile_oc * sizeof (float), err);
  if (st == LENS_OK)
    st = get_kernel (ctx, node, pg, state->p.act.kind, form,
        SLOT_PACK_WEIGHTS, "lens_conv_pack_weights", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 10, LENS_ARG (w->buffer),
        LENS_ARG (w_zp_buffer), LENS_ARG (state->w_packed->buffer),
        LENS_ARG (is_int), LENS_ARG (w_sign), LENS_ARG (w_zp_count),
        LENS_ARG (k_size), LENS_ARG (p->out_per_group),
        LENS_ARG (pg->oc_tiles), LENS_ARG (tiles));
  if (st != LENS_OK)
    return st;
  global[0] = pg->tile_oc;
  global[1] = k_size;
  global[2] = tiles;
  pick_local_size (ctx, k, global, local);
  st = lens_context_enqueue (ctx, k, 3, global, local, err);
  /* weights of a model never change: pack them once */
  state->w_ready = st == LENS_OK && w->is_constant
      && (w_zp == NULL || w_zp->is_constant);
  return st;
}

/* Sets the geometry of the packed kernels from argument @first on. */
static LensStatus
set_packed_args (cl_kernel k, cl_uint first, const LensConvParams * p,
    const PackedGeometry * pg, cl_uint *next, LensError *err)
{
  const cl_int geometry[] = {
    p->in_c, pg->h_p, pg->w_p, p->out_c, pg->out_h, pg->out_w,
    p->k_h, p->k_w, p->stride_h, p->stride_w, p->dil_h, p->dil_w,
    p->in_per_group, p->out_per_group, pg->oc_tiles, pg->ow_tiles,
  };

  return set_int_args (k, first, geometry, G_N_ELEMENTS (geometry), next,
      err);
}

/* Input channels one stage of the staged kernels holds: 0 where they do
 * not apply (a GPU, column strides past 2, fewer than
 * CONV_STAGED_MIN_CHANNELS channels per group; see kernels/conv.cl). */
static int
staged_channels (LensContext * ctx, const LensConvParams * p,
    const PackedGeometry * pg)
{
  if (!is_staged (ctx, p))
    return 0;
  return MIN (p->in_per_group, CONV_STAGE_FLOATS /
      staged_channel_floats (p, pg->tile_px, pg->rows));
}

/* Sets the convolution's geometry as the kernels that read x itself take
 * it (CONV_GEOMETRY_ARGS in kernels/conv.cl) from argument @first on. */
static LensStatus
set_geometry_args (cl_kernel k, cl_uint first, const LensConvParams * p,
    cl_uint *next, LensError *err)
{
  const cl_int geometry[] = {
    p->in_c, p->in_h, p->in_w, p->out_c, p->out_h, p->out_w,
    p->k_h, p->k_w, p->stride_h, p->stride_w, p->dil_h, p->dil_w,
    p->pad_top, p->pad_left, p->in_per_group, p->out_per_group,
  };

  return set_int_args (k, first, geometry, G_N_ELEMENTS (geometry), next,
      err);
}

/* Sets the geometry of the staged kernels (CONV_STAGED_ARGS: the
 * convolution's, then its tile counts) from argument @first on. */
static LensStatus
set_staged_args (cl_kernel k, cl_uint first, const LensConvParams * p,
    const PackedGeometry * pg, cl_uint *next, LensError *err)
{
  const cl_int tiles[] = { pg->oc_tiles, pg->ow_tiles };
  LensStatus st = set_geometry_args (k, first, p, next, err);

  if (st == LENS_OK)
    st = set_int_args (k, *next, tiles, G_N_ELEMENTS (tiles), next, err);
  return st;
}

/* Sets the fused epilogue's arguments of a ConvInteger kernel from
 * argument @first on: scale, scale2, bias (inputs 4, 6 and 5; any valid
 * buffer for those it never reads) and has_bias; *@next is the argument
 * after them. */
static LensStatus
set_epilogue_args (cl_kernel k, cl_uint first, LensNode * node,
    cl_uint *next, LensError *err)
{
  static const int inputs[3] = { 4, 6, 5 };
  LensTensor *w = node->inputs[1];
  cl_int has_bias = lens_node_input (node, 5) != NULL;
  LensStatus st = LENS_OK;

  for (int i = 0; i < 3 && st == LENS_OK; i++) {
    LensTensor *t = lens_node_input (node, inputs[i]);
    cl_mem buffer = t != NULL ? t->buffer : w->buffer;

    st = lens_kernel_set_arg (k, first + i, sizeof (cl_mem), &buffer, err);
  }
  if (st == LENS_OK)
    st = lens_kernel_set_arg (k, first + 3, sizeof (cl_int), &has_bias, err);
  *next = first + 4;
  return st;
}

/* Sets the first arguments of the ConvInteger kernels that read x itself
 * (flat 1x1, staged, depthwise; CONV_INTEGER_ARGS in kernels/conv.cl): x
 * with its zero point and sign, the packed weights, y, the fused
 * epilogue's scales and bias, has_bias. */
static LensStatus
set_integer_args (cl_kernel k, LensNode * node, cl_uint *next,
    LensError *err)
{
  ConvState *state = node->priv;
  LensTensor *x = node->inputs[0];
  LensTensor *x_zp = lens_node_input (node, 2);
  /* a buffer the kernel never reads (no zero point): any valid one */
  cl_mem x_zp_buffer = x_zp ? x_zp->buffer : x->buffer;
  cl_int x_sign = x->dtype == LENS_DTYPE_INT8 ? 0x80 : 0;
  cl_int has_x_zp = x_zp != NULL;
  LensStatus st;

  st = lens_kernel_set_args (k, err, 6, LENS_ARG (x->buffer),
      LENS_ARG (x_zp_buffer), LENS_ARG (x_sign), LENS_ARG (has_x_zp),
      LENS_ARG (state->w_packed->buffer),
      LENS_ARG (node->outputs[0]->buffer));
  if (st == LENS_OK)
    st = set_epilogue_args (k, 6, node, next, err);
  return st;
}

LensStatus
lens_ranges_reset (LensContext * ctx, cl_mem buffer, size_t bytes,
    const char *what, LensError *err)
{
  static const cl_int empty[2] = { G_MAXINT32, G_MININT32 };
  cl_int rc = clEnqueueFillBuffer (lens_context_get_queue (ctx), buffer,
      empty, sizeof empty, 0, bytes, 0, NULL, NULL);

  if (rc != CL_SUCCESS)
    return lens_error_set (err, LENS_ERROR_CL,
        "clEnqueueFillBuffer (%s): %s", what, lens_cl_error_name (rc));
  return LENS_OK;
}

/* The range output of a fused ConvInteger (output 1, if any) as argument
 * @index, the kernels' last (CONV_RANGE_ARG): reset to the empty range
 * first, unless the executor resets it (range_accumulate). */
static LensStatus
set_range_arg (LensContext * ctx, LensNode * node, cl_kernel k,
    cl_uint index, LensError *err)
{
  ConvState *state = node->priv;
  LensTensor *range = lens_node_output (node, 1);
  LensStatus st = LENS_OK;

  if (range == NULL)
    return LENS_OK;
  if (!state->range_accumulate)
    st = lens_ranges_reset (ctx, range->buffer, 2 * sizeof (cl_int),
        "ConvInteger: range", err);
  if (st == LENS_OK)
    st = lens_kernel_set_arg (k, index, sizeof (cl_mem), &range->buffer,
        err);
  return st;
}

/* Channel tiles per work-item of the flat 1x1 and staged kernels on a CPU
 * device, where the input channels fit one stage of @stage (see
 * kernels/conv.cl): all of a group's, halved until there are
 * CONV_FLAT_ITEMS_PER_UNIT work-items per compute unit (small planes
 * would leave cores idle); else one. */
static cl_int
channel_tiles_per_item (LensContext * ctx, const LensConvParams * p,
    const PackedGeometry * pg, int stage)
{
  int64_t want = (int64_t) CONV_FLAT_ITEMS_PER_UNIT *
      lens_context_compute_units (ctx);
  int64_t tiles = (int64_t) pg->oh_tiles * pg->ow_tiles * p->group *
      p->batch;
  int per_item = pg->oc_tiles;

  if (lens_context_is_gpu (ctx) || p->in_per_group > stage)
    return 1;
  while (per_item > 1 && tiles * ((pg->oc_tiles + per_item - 1) / per_item)
      < want)
    per_item = (per_item + 1) / 2;
  return per_item;
}

/* Enqueues a packed, flat or staged kernel over (pixel tiles, group x blocks of
 * @tiles_per_item channel tiles, batch). Its work-items share nothing, so
 * a CPU device runs each alone (the kernel's vectors are the SIMD width);
 * a GPU gets full groups. */
static LensStatus
enqueue_packed (LensContext * ctx, cl_kernel k, const LensConvParams * p,
    const PackedGeometry * pg, int tiles_per_item, LensError *err)
{
  size_t global[3], local[3] = { 1, 1, 1 };

  /* the stem kernel's work-items take whole rows */
  global[0] = pg->stem ? (size_t) pg->out_h :
      (size_t) pg->oh_tiles * pg->ow_tiles;
  global[1] = (size_t) p->group *
      ((pg->oc_tiles + tiles_per_item - 1) / tiles_per_item);
  global[2] = p->batch;
  if (lens_context_is_gpu (ctx))
    pick_local_size (ctx, k, global, local);
  return lens_context_enqueue (ctx, k, 3, global, local, err);
}

static int
depthwise_lanes (int out_w)
{
  return out_w > CONV_DEPTHWISE_WIDE_ROW
      && (out_w + 15) / 16 * 16 * 4 <= (out_w + 7) / 8 * 8 * 5 ? 16 : 8;
}

/* Runs lens_conv2d_depthwise, or for ConvInteger (@integer: inputs x, w,
 * x_zp, w_zp, the fused scale and bias) lens_conv2d_depthwise_integer on
 * its packed weights. */
static LensStatus
conv_depthwise_run (LensContext * ctx, LensNode * node, gboolean integer,
    LensError *err)
{
  ConvState *state = node->priv;
  const LensConvParams *p = &state->p;
  LensTensor *x = node->inputs[0], *w = node->inputs[1];
  cl_float alpha = p->act.alpha, beta = p->act.beta;
  gboolean gpu = lens_context_is_gpu (ctx);
  /* a CPU device pays per work-group: few, long work-items (enough to
   * keep every core busy); a GPU wants one row per work-item */
  int blocks = gpu ? p->out_h : CLAMP ((CONV_DEPTHWISE_CPU_ITEMS +
          p->out_c * p->batch - 1) / (p->out_c * p->batch), 1, p->out_h);
  int out_rows = !gpu && p->stride_h == 1 ? CONV_DEPTHWISE_CPU_OUT_ROWS : 1;
  /* whole groups of out_rows per work-item but the last */
  cl_int rows = ((p->out_h + blocks - 1) / blocks + out_rows - 1) /
      out_rows * out_rows;
  /* columns per phase of the kernel's row buffers (whole vectors): room
   * for every tap's read and every column written, see kernels/conv.cl */
  int lanes = depthwise_lanes (p->out_w);
  int phase_len = MAX (MAX (p->out_w, lanes) + (p->k_w - 1) *
      p->dil_w / p->stride_w, (p->pad_left + p->in_w) / p->stride_w + 1);
  char *base, *options;
  size_t global[3], local[3] = { 1, 1, 1 };
  cl_uint next;
  cl_kernel k;
  LensStatus st;

  if (integer) {
    LensTensor *x_zp = lens_node_input (node, 2);
    PackedGeometry pg;

    packed_geometry (ctx, p, 1, 1, &pg);
    st = pack_inputs (ctx, node, &pg, FALSE, x, w, x_zp,
        lens_node_input (node, 3), err);
    if (st != LENS_OK)
      return st;
  }
  /* the kernel shape is fixed at build time (see kernels/conv.cl): one
   * program per shape */
  k = lens_node_built_kernel (node, SLOT_DEPTHWISE);
  if (k == NULL) {
    /* ConvInteger's weights come packed in channel tiles of tile_oc */
    base = conv_options (ctx, integer, p->act.kind, integer ?
        epilogue_form (node) :
        EPILOGUE_FORM_NONE, lens_node_output (node, 1) != NULL, FALSE,
        integer ? tile_oc (ctx, p, 1, 1) : CONV_TILE_OC, lanes, 1, 1);
    options = g_strdup_printf ("%s -DDW_KH=%d -DDW_KW=%d -DDW_SH=%d "
        "-DDW_SW=%d -DDW_DH=%d -DDW_DW=%d -DDW_PHASE_LEN=%d -DDW_OUT_ROWS=%d",
        base, p->k_h, p->k_w, p->stride_h, p->stride_w, p->dil_h, p->dil_w,
        (phase_len + lanes - 1) / lanes * lanes, out_rows);
    g_free (base);
    st = lens_node_kernel (ctx, node, SLOT_DEPTHWISE, "conv", options,
        integer ? "lens_conv2d_depthwise_integer" : "lens_conv2d_depthwise",
        &k, err);
    g_free (options);
    if (st != LENS_OK)
      return st;
  }
  if (integer) {
    st = set_integer_args (k, node, &next, err);
  } else {
    LensTensor *b = lens_node_input (node, 2);
    /* without a bias the kernel never reads it: any valid buffer will do */
    cl_mem bias = b ? b->buffer : w->buffer;
    cl_int has_bias = b != NULL;

    st = lens_kernel_set_args (k, err, 5, LENS_ARG (x->buffer),
        LENS_ARG (w->buffer), LENS_ARG (bias),
        LENS_ARG (node->outputs[0]->buffer), LENS_ARG (has_bias));
    next = 5;
  }
  if (st == LENS_OK)
    st = set_geometry_args (k, next, p, &next, err);
  if (st == LENS_OK)
    st = lens_kernel_set_arg (k, next++, sizeof (cl_int), &rows, err);
  if (st == LENS_OK && !integer)
    st = lens_kernel_set_arg (k, next++, sizeof (cl_float), &alpha, err);
  if (st == LENS_OK && !integer)
    st = lens_kernel_set_arg (k, next++, sizeof (cl_float), &beta, err);
  if (st == LENS_OK && integer)
    st = set_range_arg (ctx, node, k, next++, err);
  if (st != LENS_OK)
    return st;

  /* vectorized inside: alone on a CPU device */
  global[0] = (p->out_h + rows - 1) / rows;
  global[1] = p->out_c;
  global[2] = p->batch;
  if (gpu)
    pick_local_size (ctx, k, global, local);
  return lens_context_enqueue (ctx, k, 3, global, local, err);
}

static LensStatus
conv_run (LensContext * ctx, LensNode * node, LensError *err)
{
  const LensConvParams *p = node->priv;
  LensTensor *x = node->inputs[0], *w = node->inputs[1];
  LensTensor *b = lens_node_input (node, 2), *y = node->outputs[0];
  ConvState *state = node->priv;
  cl_int has_bias = b != NULL;
  cl_float alpha = p->act.alpha, beta = p->act.beta;
  PackedGeometry pg;
  gboolean direct;
  int stage;
  cl_int tiles_per_item = 1;
  cl_mem x_in, bias;
  cl_uint next;
  cl_kernel k;
  LensStatus st;

  st = require_plain (node, x, "input X", err);
  if (st == LENS_OK)
    st = require_plain (node, w, "input W", err);
  if (st == LENS_OK)
    st = require_plain (node, b, "input B", err);
  if (st == LENS_OK)
    st = require_plain (node, y, "output Y", err);
  if (st != LENS_OK)
    return st;
  if (is_depthwise (p, FALSE))
    return conv_depthwise_run (ctx, node, FALSE, err);

  packed_geometry (ctx, p, tile_vectors (ctx, p, FALSE), tile_rows (ctx, p),
      &pg);
  if (is_row_paired (ctx, p)) {
    /* tile_rows gave 1 row (8-lane vectors): the channel tile stays
     * CONV_TILE_OC wide */
    pg.pairs = TRUE;
    pg.rows = 2;
    pg.oh_tiles = (pg.out_h + 1) / 2;
  }
  /* a flat 1x1 convolution's packed input would be a copy of x: the
   * direct kernel reads x itself; so do the staged and stem kernels */
  direct = pg.flat;
  pg.stem = is_stem (ctx, p);
  stage = staged_channels (ctx, p, &pg);
  st = pack_inputs (ctx, node, &pg, !direct && !pg.stem && stage == 0, x, w,
      NULL, NULL, err);
  if (st == LENS_OK && pg.stem)
    st = get_kernel (ctx, node, &pg, p->act.kind, EPILOGUE_FORM_NONE,
        SLOT_STEM, "lens_conv2d_stem", &k, err);
  else if (st == LENS_OK)
    st = get_kernel (ctx, node, &pg, p->act.kind, EPILOGUE_FORM_NONE,
        direct ? SLOT_DIRECT : stage ? SLOT_STAGED : SLOT_PACKED,
        direct ? "lens_conv2d_1x1" : stage ? "lens_conv2d_staged" :
        "lens_conv2d_packed", &k, err);
  if (st != LENS_OK)
    return st;
  x_in = direct || stage || pg.stem ? x->buffer : state->x_packed->buffer;
  /* x has exactly in_w (the plane) columns per channel */
  if (direct)
    pg.w_p = pg.in_w;
  if (direct || stage)
    tiles_per_item = channel_tiles_per_item (ctx, p, &pg,
        direct ? stage_channels (ctx, FALSE) : stage);
  /* without a bias the kernel never reads it: any valid buffer will do */
  bias = b ? b->buffer : w->buffer;
  st = lens_kernel_set_args (k, err, 5,
      LENS_ARG (x_in),
      LENS_ARG (state->w_packed->buffer),
      LENS_ARG (bias), LENS_ARG (y->buffer), LENS_ARG (has_bias));
  if (st == LENS_OK)
    st = stage || pg.stem ? set_staged_args (k, 5, p, &pg, &next, err) :
        set_packed_args (k, 5, p, &pg, &next, err);
  if (st == LENS_OK)
    st = lens_kernel_set_arg (k, next++, sizeof (cl_float), &alpha, err);
  if (st == LENS_OK)
    st = lens_kernel_set_arg (k, next++, sizeof (cl_float), &beta, err);
  if (st == LENS_OK && (direct || stage))
    st = lens_kernel_set_arg (k, next++, sizeof (cl_int), &tiles_per_item,
        err);
  if (st != LENS_OK)
    return st;
  return enqueue_packed (ctx, k, p, &pg, tiles_per_item, err);
}

/* The last arguments of a fused ConvInteger's kernel, from argument @next
 * on: its range output (CONV_RANGE_ARG) and residual input
 * (CONV_RESIDUAL_ARG), where it has them. */
static LensStatus
set_trailing_args (LensContext * ctx, LensNode * node, cl_kernel k,
    cl_uint next, LensError *err)
{
  LensStatus st = LENS_OK;

  if (lens_node_output (node, 1) != NULL)
    st = set_range_arg (ctx, node, k, next++, err);
  if (st == LENS_OK && lens_node_input (node, 7) != NULL)
    st = lens_kernel_set_arg (k, next++, sizeof (cl_mem),
        &node->inputs[7]->buffer, err);
  return st;
}

/* ---- ConvInteger on AVX-512 VNNI ------------------------------------------ */

/* Products per output channel at most on the VNNI kernel: each of its
 * int32 terms (see kernels/conv.cl) then stays within 255 * 255 * 8192,
 * and so does any sum of three of them. */
#define CONV_VNNI_MAX_K 8192

/* Whether @ctx's device can run the VNNI kernels (see kernels/conv.cl):
 * PoCL 3's CPU device, which runs kernels on this processor, and this
 * processor an x86 one with AVX-512 VNNI. Only PoCL 3 (Debian 12 has
 * 3.1): the kernels rely on it keeping a noinline function out of line,
 * and LLVM aborts the process where that fails. LENS_CONV_VNNI=0 turns
 * them off (the float kernels then run, as on any other device). */
static gboolean
vnni_device (LensContext * ctx)
{
  const char *env = g_getenv ("LENS_CONV_VNNI");
  cl_device_id device = lens_context_get_device (ctx);
  cl_device_type type = 0;
  cl_platform_id platform = NULL;
  char version[256] = "";

  if (env != NULL && strcmp (env, "0") == 0)
    return FALSE;
  if (clGetDeviceInfo (device, CL_DEVICE_TYPE, sizeof type, &type,
          NULL) != CL_SUCCESS || !(type & CL_DEVICE_TYPE_CPU)
      || clGetDeviceInfo (device, CL_DEVICE_PLATFORM, sizeof platform,
          &platform, NULL) != CL_SUCCESS
      || clGetPlatformInfo (platform, CL_PLATFORM_VERSION,
          sizeof version - 1, version, NULL) != CL_SUCCESS
      || strstr (version, " PoCL 3.") == NULL)
    return FALSE;
#if defined (__x86_64__) && defined (__GNUC__)
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx512f")
      && __builtin_cpu_supports ("avx512vl")
      && __builtin_cpu_supports ("avx512vnni");
#else
  return FALSE;
#endif
}

/* An 8-bit element of @t's host data as int (int8 or uint8) */
static int
byte_value (const LensTensor * t, int64_t i)
{
  const guint8 b = ((const guint8 *) t->host)[i];

  return t->dtype == LENS_DTYPE_INT8 ? (int) (gint8) b : (int) b;
}

/* Packs the node's weights for lens_conv2d_vnni_integer once, as
 * kernels/conv.cl lays them out, where the node qualifies: one group, a
 * column stride of 1 or 2, 8-bit x, constant weights (and zero points),
 * few enough products per channel. state->vnni_w says whether it did. */
static LensStatus
vnni_prepare (LensContext * ctx, LensNode * node, LensError *err)
{
  ConvState *state = node->priv;
  const LensConvParams *p = &state->p;
  PackedGeometry geometry, *pg = &geometry;
  LensTensor *x = node->inputs[0], *w = node->inputs[1];
  LensTensor *w_zp = lens_node_input (node, 3);
  int quads = (p->in_c + 3) / 4, taps = p->k_h * p->k_w;
  int bias = w->dtype == LENS_DTYPE_UINT8 ? 128 : 0;
  int64_t k_size = (int64_t) p->in_c * taps;
  int64_t n_zp = w_zp ? lens_tensor_numel (w_zp) : 0;
  int64_t n_w, n_sums, n_both;
  gint32 *packed, *sums;
  LensStatus st;

  if (state->vnni_checked)
    return LENS_OK;
  state->vnni_checked = TRUE;
  if (p->group != 1 || (p->stride_w != 1 && p->stride_w != 2)
      || (x->dtype != LENS_DTYPE_UINT8 && x->dtype != LENS_DTYPE_INT8)
      || !w->is_constant || w->host == NULL
      || (w_zp != NULL && (!w_zp->is_constant || w_zp->host == NULL))
      || k_size > CONV_VNNI_MAX_K || !vnni_device (ctx))
    return LENS_OK;

  /* the packed kernel's tiles, one vector by one row */
  packed_geometry (ctx, p, 1, 1, pg);
  n_w = (int64_t) pg->oc_tiles * quads * taps * pg->tile_oc;
  n_sums = (int64_t) pg->oc_tiles * pg->tile_oc;
  n_both = 2 * n_sums;
  packed = g_new0 (gint32, n_w);
  /* wsum, then b - w_zp, per channel (see kernels/conv.cl) */
  sums = g_new0 (gint32, n_both);
  for (int oc = 0; oc < p->out_c; oc++) {
    int zp = n_zp == 0 ? 0 : byte_value (w_zp, n_zp == 1 ? 0 : oc);
    int tile = oc / pg->tile_oc, m = oc % pg->tile_oc;

    for (int c = 0; c < p->in_c; c++)
      for (int t = 0; t < taps; t++) {
        int v = byte_value (w, ((int64_t) oc * p->in_c + c) * taps + t);
        int64_t at = (((int64_t) tile * quads + c / 4) * taps + t) *
            pg->tile_oc + m;

        packed[at] = (gint32) ((guint32) packed[at] |
            (guint32) (guint8) (gint8) (v - bias) << (8 * (c % 4)));
        sums[oc] += v - zp;
      }
    sums[n_sums + oc] = bias - zp;
  }
  state->vnni_w = lens_tensor_new_host (LENS_DTYPE_INT32, 1, &n_w, packed);
  state->vnni_wsum = lens_tensor_new_host (LENS_DTYPE_INT32, 1, &n_both,
      sums);
  g_free (packed);
  g_free (sums);
  lens_tensor_set_name (state->vnni_w, "ConvInteger: VNNI weights");
  lens_tensor_set_name (state->vnni_wsum, "ConvInteger: VNNI weight sums");
  st = lens_tensor_upload (ctx, state->vnni_w, err);
  if (st == LENS_OK)
    st = lens_tensor_upload (ctx, state->vnni_wsum, err);
  if (st != LENS_OK) {
    /* the float kernels take the next run */
    g_clear_pointer (&state->vnni_w, lens_tensor_free);
    g_clear_pointer (&state->vnni_wsum, lens_tensor_free);
  }
  return st;
}

/* Runs a ConvInteger that vnni_prepare packed: lens_conv_pack_input_vnni
 * (except for a flat 1x1, whose kernel reads x itself), then
 * lens_conv2d_vnni_integer (see kernels/conv.cl). */
static LensStatus
conv_vnni_run (LensContext * ctx, LensNode * node, LensError *err)
{
  ConvState *state = node->priv;
  const LensConvParams *p = &state->p;
  PackedGeometry geometry, *pg = &geometry;
  LensTensor *x = node->inputs[0], *x_zp = lens_node_input (node, 2);
  LensConvParams quads = *p;
  cl_mem x_zp_buffer = x_zp ? x_zp->buffer : x->buffer, x_in = x->buffer;
  cl_int x_flip = x->dtype == LENS_DTYPE_INT8 ? 0x80 : 0;
  cl_int has_x_zp = x_zp != NULL, direct = is_flat (p), channels = p->in_c;
  cl_int planes;
  size_t global[3], local[3] = { 1, 1, 1 };
  cl_uint next;
  cl_kernel k;
  LensStatus st = LENS_OK;

  /* vnni_prepare's tiles */
  packed_geometry (ctx, p, 1, 1, pg);
  /* the kernels count input channels in groups of 4 */
  quads.in_c = quads.in_per_group = (p->in_c + 3) / 4;
  planes = p->batch * quads.in_c;
  pg->vnni = TRUE;
  if (direct)
    goto convolve;
  st = ensure_scratch (ctx, &state->x_packed, (size_t) planes * pg->h_p *
      pg->w_p * sizeof (cl_uint), err);
  if (st == LENS_OK)
    st = get_kernel (ctx, node, pg, p->act.kind, epilogue_form (node),
        SLOT_VNNI_PACK_INPUT, "lens_conv_pack_input_vnni", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 6, LENS_ARG (x->buffer),
        LENS_ARG (x_zp_buffer), LENS_ARG (state->x_packed->buffer),
        LENS_ARG (x_flip), LENS_ARG (has_x_zp), LENS_ARG (planes));
  if (st == LENS_OK) {
    const cl_int geometry[] = { p->in_c, pg->in_h, pg->in_w, pg->h_p,
      pg->w_p, pg->pad_top, pg->pad_left, p->stride_w == 2
    };
    st = set_int_args (k, 6, geometry, G_N_ELEMENTS (geometry), &next, err);
  }
  if (st != LENS_OK)
    return st;
  global[0] = 1;
  global[1] = pg->h_p;
  global[2] = planes;
  st = lens_context_enqueue (ctx, k, 3, global, local, err);
  x_in = state->x_packed->buffer;

convolve:
  if (st == LENS_OK)
    st = get_kernel (ctx, node, pg, p->act.kind, epilogue_form (node),
        SLOT_VNNI, "lens_conv2d_vnni_integer", &k, err);
  if (st == LENS_OK)
    st = lens_kernel_set_args (k, err, 9, LENS_ARG (x_in), LENS_ARG (direct),
        LENS_ARG (channels), LENS_ARG (state->vnni_w->buffer),
        LENS_ARG (state->vnni_wsum->buffer), LENS_ARG (x_zp_buffer),
        LENS_ARG (x_flip), LENS_ARG (has_x_zp),
        LENS_ARG (node->outputs[0]->buffer));
  if (st == LENS_OK)
    st = set_epilogue_args (k, 9, node, &next, err);
  if (st == LENS_OK)
    st = set_packed_args (k, next, &quads, pg, &next, err);
  if (st == LENS_OK)
    st = set_trailing_args (ctx, node, k, next, err);
  if (st != LENS_OK)
    return st;
  return enqueue_packed (ctx, k, p, pg, 1, err);
}

static LensStatus
conv_integer_run (LensContext * ctx, LensNode * node, LensError *err)
{
  const LensConvParams *p = node->priv;
  ConvState *state = node->priv;
  LensTensor *x = node->inputs[0], *w = node->inputs[1];
  LensTensor *x_zp = lens_node_input (node, 2);
  LensTensor *w_zp = lens_node_input (node, 3);
  LensTensor *scale = lens_node_input (node, 4);
  LensTensor *bias = lens_node_input (node, 5);
  LensTensor *y = node->outputs[0];
  /* whole kernel rows per float chunk (resolve_geometry keeps k_w within
   * CONV_INT_CHUNK) */
  cl_int rows_per_chunk = CONV_INT_CHUNK / p->k_w;
  cl_int tiles_per_item = 1;
  PackedGeometry pg;
  gboolean direct;
  int stage;
  cl_uint next;
  cl_kernel k;
  LensStatus st;

  st = require_plain (node, x, "input x", err);
  if (st == LENS_OK)
    st = require_plain (node, w, "input w", err);
  if (st == LENS_OK)
    st = require_plain (node, x_zp, "input x_zero_point", err);
  if (st == LENS_OK)
    st = require_plain (node, w_zp, "input w_zero_point", err);
  if (st == LENS_OK)
    st = require_plain (node, scale, "input scale (fused)", err);
  if (st == LENS_OK)
    st = require_plain (node, lens_node_input (node, 6),
        "input second scale (fused)", err);
  if (st == LENS_OK)
    st = require_plain (node, bias, "input bias (fused)", err);
  if (st == LENS_OK)
    st = require_plain (node, y, "output y", err);
  if (st == LENS_OK)
    st = require_plain (node, lens_node_output (node, 1), "output range",
        err);
  if (st == LENS_OK)
    st = require_plain (node, lens_node_input (node, 7),
        "input residual (fused)", err);
  if (st != LENS_OK)
    return st;

  if (is_depthwise (p, TRUE))
    return conv_depthwise_run (ctx, node, TRUE, err);

  st = vnni_prepare (ctx, node, err);
  if (st != LENS_OK)
    return st;
  if (state->vnni_w != NULL)
    return conv_vnni_run (ctx, node, err);

  packed_geometry (ctx, p, tile_vectors (ctx, p, TRUE), tile_rows (ctx, p),
      &pg);
  /* a flat 1x1 reads and converts the bytes of x itself, and so do the
   * staged kernels */
  direct = pg.flat;
  stage = staged_channels (ctx, p, &pg);
  st = pack_inputs (ctx, node, &pg, !direct && stage == 0, x, w, x_zp, w_zp,
      err);
  if (st == LENS_OK)
    st = get_kernel (ctx, node, &pg, p->act.kind, epilogue_form (node),
        direct ? SLOT_DIRECT : stage ? SLOT_STAGED : SLOT_PACKED,
        direct ? "lens_conv2d_1x1_integer" : stage ?
        "lens_conv2d_staged_integer" : "lens_conv2d_packed_integer", &k,
        err);
  if (st != LENS_OK)
    return st;
  /* x has exactly in_w (the plane) columns per channel */
  if (direct)
    pg.w_p = pg.in_w;
  if (direct || stage) {
    tiles_per_item = channel_tiles_per_item (ctx, p, &pg,
        direct ? stage_channels (ctx, TRUE) : stage);
    st = set_integer_args (k, node, &next, err);
  } else {
    st = lens_kernel_set_args (k, err, 3,
        LENS_ARG (state->x_packed->buffer),
        LENS_ARG (state->w_packed->buffer), LENS_ARG (y->buffer));
    if (st == LENS_OK)
      st = set_epilogue_args (k, 3, node, &next, err);
  }
  if (st == LENS_OK)
    st = stage ? set_staged_args (k, next, p, &pg, &next, err) :
        set_packed_args (k, next, p, &pg, &next, err);
  /* the flat kernel sums in float a chunk of CONV_STAGE channels (at most
   * CONV_INT_CHUNK) at a time, the others rows_per_chunk kernel rows */
  if (st == LENS_OK && !direct)
    st = lens_kernel_set_arg (k, next++, sizeof (cl_int), &rows_per_chunk,
        err);
  if (st == LENS_OK && (direct || stage))
    st = lens_kernel_set_arg (k, next++, sizeof (cl_int), &tiles_per_item,
        err);
  if (st == LENS_OK)
    st = set_trailing_args (ctx, node, k, next, err);
  if (st != LENS_OK)
    return st;
  return enqueue_packed (ctx, k, p, &pg, tiles_per_item, err);
}

/* ---- self-test cases ------------------------------------------------------ */

/* One case: sizes, then attributes. in_h is ignored in 1-D; pads are
 * top, left, bottom, right (1-D: begin = [1], end = [3]); 0 sizes are
 * drawn with lens_awkward_size. */
typedef struct
{
  int spatial, batch, c, m, group, k_h, k_w, in_h, in_w, stride, dil;
  int pads[4];
  const char *auto_pad;         /* NULL: attribute absent */
  const char *act;              /* NULL: no fused activation */
  gboolean bias, kernel_shape;
} ConvCase;

static const ConvCase conv_cases[] = {
  /* spatial, batch, C, M, group, kh, kw, H, W, stride, dilation, pads,
   * auto_pad, activation, bias, kernel_shape attribute */
  { 2, 1, 3, 7, 1, 3, 3, 13, 13, 1, 1, {1, 1, 1, 1}, NULL, NULL, TRUE, TRUE },
  /* depthwise, stride 2, asymmetric pads */
  { 2, 1, 13, 13, 13, 3, 3, 13, 97, 2, 1, {0, 1, 1, 0}, NULL, "Relu", TRUE },
  /* 1x1 on a large plane */
  { 2, 1, 7, 13, 1, 1, 1, 97, 97, 1, 1, {0}, NULL, "SiLU", TRUE },
  /* 5x5, dilation 2, batch 2 */
  { 2, 2, 3, 7, 1, 5, 5, 13, 7, 1, 2, {2, 2, 2, 2}, NULL, "LeakyRelu",
      FALSE, TRUE },
  /* 6x6 stride 2 (YOLOv5 stem) */
  { 2, 1, 3, 13, 1, 6, 6, 97, 97, 2, 1, {2, 2, 2, 2}, NULL, "HardSwish",
      TRUE, TRUE },
  /* 1-D */
  { 1, 1, 7, 3, 1, 1, 3, 1, 97, 2, 1, {0}, "SAME_UPPER", "Clip", TRUE },
  { 1, 3, 13, 7, 1, 1, 5, 1, 13, 1, 2, {0, 3, 0, 1}, NULL, NULL, FALSE,
      TRUE },
  /* two groups, partial channel tiles */
  { 2, 1, 6, 14, 2, 3, 3, 13, 13, 2, 1, {0}, "SAME_LOWER", "Sigmoid", TRUE },
  /* depthwise, channel multiplier 2 */
  { 2, 1, 7, 14, 7, 3, 3, 7, 13, 1, 1, {1, 1, 1, 1}, NULL, "HardSigmoid",
      TRUE },
  { 2, 1, 3, 7, 1, 3, 3, 13, 7, 1, 2, {0}, "VALID", NULL, TRUE },
  /* a 1x1 input that only padding makes convolvable */
  { 2, 1, 3, 7, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, "Relu", TRUE },
  { 2, 1, 13, 7, 1, 3, 3, 3, 97, 2, 2, {2, 0, 1, 3}, NULL, "Clip", FALSE },
  /* depthwise 5x5 */
  { 2, 1, 13, 13, 13, 5, 5, 13, 13, 1, 1, {2, 2, 2, 2}, NULL, "SiLU", TRUE },
  /* grouped 1x1, 3 output channels per group (one partial tile) */
  { 2, 1, 12, 9, 3, 1, 1, 7, 13, 1, 1, {0}, NULL, NULL, TRUE },
  { 2, 2, 7, 13, 1, 3, 3, 7, 7, 1, 1, {0}, "SAME_UPPER", "LeakyRelu", TRUE },
  /* one input channel, many outputs: tiled, not depthwise */
  { 2, 1, 1, 13, 1, 3, 3, 13, 13, 1, 1, {1, 1, 1, 1}, NULL, "Relu", TRUE },
  /* non-square kernel, stride 3 */
  { 2, 1, 5, 7, 1, 2, 3, 6, 9, 3, 1, {0}, NULL, NULL, TRUE },
  /* random sizes */
  { 2, 1, 0, 0, 1, 3, 3, 0, 0, 1, 1, {1, 1, 1, 1}, NULL, "HardSwish", TRUE },
  { 2, 1, 0, 0, 1, 1, 1, 0, 0, 2, 1, {0}, NULL, NULL, FALSE },
  { 1, 1, 0, 0, 1, 1, 3, 1, 0, 1, 1, {0, 1, 0, 1}, NULL, "SiLU", TRUE },
  /* depthwise 5x5, stride 2, even left pad, odd width */
  { 2, 1, 7, 7, 7, 5, 5, 13, 13, 2, 1, {2, 2, 2, 2}, NULL, "HardSwish",
      TRUE },
  /* depthwise, stride 2 over rows longer than two vectors, no left pad */
  { 2, 1, 3, 3, 3, 3, 3, 7, 97, 2, 1, {0, 0, 1, 1}, NULL, NULL, TRUE },
  /* depthwise, dilation 2, rows narrower than a vector, batch 2 */
  { 2, 2, 3, 3, 3, 3, 3, 7, 3, 1, 2, {2, 2, 2, 2}, NULL, NULL, FALSE },
  /* depthwise on a 1x1 input (padding only) and with stride 3 */
  { 2, 1, 13, 13, 13, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, "Relu", TRUE },
  { 2, 1, 5, 5, 5, 3, 3, 13, 97, 3, 1, {1, 0, 0, 2}, NULL, "Clip", TRUE },
  /* depthwise on rows long enough for 16-lane vectors */
  { 2, 1, 3, 3, 3, 3, 3, 7, 64, 1, 1, {1, 1, 1, 1}, NULL, "SiLU", TRUE },
  { 2, 1, 3, 3, 3, 5, 5, 5, 127, 2, 1, {2, 2, 2, 2}, NULL, NULL, TRUE },
  /* depthwise 1-D */
  { 1, 1, 7, 7, 7, 1, 5, 1, 97, 1, 1, {0, 2, 0, 2}, NULL, NULL, TRUE },
  /* 24 output channels: one tile of 24 (a stride-2 stem, a 1x1) */
  { 2, 1, 3, 24, 1, 3, 3, 97, 13, 2, 1, {1, 1, 1, 1}, NULL, "Relu", TRUE },
  { 2, 1, 13, 24, 1, 1, 1, 7, 13, 1, 1, {0}, NULL, "SiLU", TRUE },
  /* 3x3 stride 1 on rows of several packing spans */
  { 2, 1, 5, 9, 1, 3, 3, 7, 97, 1, 1, {1, 1, 1, 1}, NULL, "SiLU", TRUE },
  /* flat 1x1: several channel tiles per work-item, the last partial; more
   * input channels than one stage (CONV_STAGE_CPU); groups of several
   * tiles */
  { 2, 1, 97, 40, 1, 1, 1, 13, 7, 1, 1, {0}, NULL, "SiLU", TRUE },
  { 2, 2, 400, 19, 1, 1, 1, 3, 7, 1, 1, {0}, NULL, NULL, TRUE },
  { 2, 1, 26, 70, 2, 1, 1, 7, 13, 1, 1, {0}, NULL, "Relu", TRUE },
  /* staged (CPU): 3x3 stride 2 over more input channels than one stage
   * holds; stride 1, several tiles per work-item, the last partial, rows
   * whose tiles cross both ends; two groups, batch 2 (the window at the
   * ends of the whole tensor) */
  { 2, 1, 170, 20, 1, 3, 3, 7, 19, 2, 1, {1, 1, 1, 1}, NULL, "SiLU", TRUE },
  { 2, 1, 40, 40, 1, 3, 3, 5, 21, 1, 1, {1, 1, 1, 1}, NULL, NULL, TRUE },
  { 2, 2, 18, 12, 2, 3, 3, 6, 17, 1, 1, {1, 1, 1, 1}, NULL, "Relu", FALSE },
  /* flat 1x1 with tiles of several vectors (CPU): the last tile's
   * vectors partly and wholly past the plane (323 and 256 pixels),
   * partial channel tiles, two groups, batch 2 */
  { 2, 1, 13, 21, 1, 1, 1, 17, 19, 1, 1, {0}, NULL, "SiLU", TRUE },
  { 2, 2, 10, 14, 2, 1, 1, 16, 16, 1, 1, {0}, NULL, "Relu", FALSE },
  /* staged with tiles of 3 output rows (CPU), stride 2, the last tile's
   * rows partly past the end (25 rows) */
  { 2, 1, 9, 20, 1, 3, 3, 50, 40, 2, 1, {1, 1, 1, 1}, NULL, "SiLU", TRUE },
  /* stems (lens_conv2d_stem on a CPU): one input channel, 7x7, a partial
   * channel tile and a partial pixel tile, asymmetric pads, no bias,
   * batch 2; four channels, 2x5 on rows narrower than a vector; 1x1 over
   * two channel tiles; rows of many tiles, the last of one pixel */
  { 2, 2, 1, 9, 1, 7, 7, 19, 41, 2, 1, {3, 0, 2, 3}, NULL, "SiLU", FALSE },
  { 2, 1, 4, 16, 1, 2, 5, 7, 5, 2, 1, {0, 2, 1, 1}, NULL, "Relu", TRUE },
  { 2, 1, 3, 20, 1, 1, 1, 13, 97, 2, 1, {0}, NULL, NULL, TRUE },
  { 2, 1, 3, 16, 1, 3, 3, 9, 130, 2, 1, {1, 1, 1, 1}, NULL, "HardSwish",
      TRUE },
  /* depthwise, channel multiplier 5: a group's channels in one tile of 8
   * (on a GPU too, whose tiles are of one channel) */
  { 2, 1, 3, 15, 3, 3, 3, 7, 13, 1, 1, {1, 1, 1, 1}, NULL, "SiLU", TRUE },
  /* staged on row pairs (CPU, Conv: rows of at most 8 pixels, two to a
   * vector): 3x3 stride 2 to 8x8 over more input channels than one stage
   * holds, a partial channel tile, batch 2; an odd number of rows, 5
   * pixels wide, no bias; two groups, dilation 2 */
  { 2, 2, 300, 19, 1, 3, 3, 15, 15, 2, 1, {1, 1, 1, 1}, NULL, "SiLU", TRUE },
  { 2, 1, 9, 16, 1, 3, 3, 7, 5, 1, 1, {1, 1, 1, 1}, NULL, "Relu", FALSE },
  { 2, 1, 24, 10, 2, 3, 3, 9, 6, 1, 2, {2, 2, 2, 2}, NULL, NULL, TRUE },
};

/* Makes the X, W (and optional B) tensors of @c with random values and sets
 * its attributes on a new node of @op_type. */
static LensNode *
build_case (const char *op_type, int opset, const ConvCase * c, int n_extra,
    LensDType x_dtype, LensDType w_dtype, GRand * rand)
{
  int channels = c->c ? c->c : (int) lens_awkward_size (rand, FALSE);
  int out_channels = c->m ? c->m : (int) lens_awkward_size (rand, FALSE);
  int64_t x_shape[4], w_shape[4];
  int64_t strides[2] = { c->stride, c->stride };
  int64_t dilations[2] = { c->dil, c->dil };
  int64_t kernel[2] = { c->k_h, c->k_w };
  int64_t pads[4];
  int ndim = c->spatial + 2;
  gboolean is_float = x_dtype == LENS_DTYPE_FLOAT;
  /* x, w and up to six more: ConvInteger's zero points, scales, bias,
   * residual */
  LensTensor *inputs[8] = { NULL };
  int n_inputs = 2;
  LensNode *node;

  x_shape[0] = c->batch;
  x_shape[1] = channels;
  w_shape[0] = out_channels;
  w_shape[1] = channels / c->group;
  if (c->spatial == 2) {
    x_shape[2] = c->in_h ? c->in_h : lens_awkward_size (rand, TRUE);
    x_shape[3] = c->in_w ? c->in_w : lens_awkward_size (rand, TRUE);
    w_shape[2] = c->k_h;
    w_shape[3] = c->k_w;
    for (int i = 0; i < 4; i++)
      pads[i] = c->pads[i];
  } else {
    x_shape[2] = c->in_w ? c->in_w : lens_awkward_size (rand, TRUE);
    w_shape[2] = c->k_w;
    kernel[0] = c->k_w;
    pads[0] = c->pads[1];
    pads[1] = c->pads[3];
  }
  /* awkward sizes may be smaller than the kernel: pad enough to fit */
  if (c->auto_pad == NULL)
    for (int d = 0; d < c->spatial; d++) {
      int64_t extent = (kernel[d] - 1) * c->dil + 1;
      int64_t have = x_shape[2 + d] + pads[d] + pads[d + c->spatial];
      if (have < extent)
        pads[d + c->spatial] += extent - have;
    }

  if (is_float) {
    inputs[0] = lens_tensor_new_random (x_dtype, ndim, x_shape, rand, -1, 1);
    inputs[1] = lens_tensor_new_random (w_dtype, ndim, w_shape, rand, -1, 1);
    if (c->bias) {
      inputs[2] = lens_tensor_new_random (LENS_DTYPE_FLOAT, 1,
          &w_shape[0], rand, -1, 1);
      n_inputs = 3;
    }
  } else {
    double x_lo = x_dtype == LENS_DTYPE_INT8 ? -128 : 0;
    double w_lo = w_dtype == LENS_DTYPE_INT8 ? -128 : 0;
    inputs[0] = lens_tensor_new_random (x_dtype, ndim, x_shape, rand, x_lo,
        x_lo + 255);
    inputs[1] = lens_tensor_new_random (w_dtype, ndim, w_shape, rand, w_lo,
        w_lo + 255);
    g_assert (n_extra <= (int) G_N_ELEMENTS (inputs) - 2);
    n_inputs = 2 + n_extra;
  }
  node = lens_case_node_new (op_type, opset, n_inputs, inputs, 1);
  if (c->group != 1)
    lens_node_set_attr_int (node, "group", c->group);
  if (c->kernel_shape)
    lens_node_set_attr_ints (node, "kernel_shape", c->spatial, kernel);
  if (c->stride != 1 || g_rand_boolean (rand))
    lens_node_set_attr_ints (node, "strides", c->spatial, strides);
  if (c->dil != 1)
    lens_node_set_attr_ints (node, "dilations", c->spatial, dilations);
  if (c->auto_pad != NULL)
    lens_node_set_attr_string (node, "auto_pad", c->auto_pad);
  else
    lens_node_set_attr_ints (node, "pads", 2 * c->spatial, pads);
  return node;
}

static LensNode *
conv_case (int index, GRand * rand)
{
  const ConvCase *c;
  LensNode *node;

  if (index >= (int) G_N_ELEMENTS (conv_cases))
    return NULL;
  c = &conv_cases[index];
  node = build_case ("Conv", 11, c, 0, LENS_DTYPE_FLOAT, LENS_DTYPE_FLOAT,
      rand);
  if (c->act != NULL) {
    lens_node_set_attr_string (node, "activation", c->act);
    if (strcmp (c->act, "LeakyRelu") == 0)
      lens_node_set_attr_float (node, "activation_alpha", 0.1f);
    if (strcmp (c->act, "Clip") == 0) {
      lens_node_set_attr_float (node, "activation_alpha", 0.0f);
      lens_node_set_attr_float (node, "activation_beta", 0.5f);
    }
  }
  return node;
}

/* The fused epilogue of a ConvInteger case */
enum
{
  EPILOGUE_NONE,                /* int32 output */
  EPILOGUE_SCALE,               /* (float) acc * s */
  EPILOGUE_BIAS,                /* (float) acc * s + B */
  EPILOGUE_SILU,                /* SiLU ((float) acc * s + B) */
};

/* ConvInteger cases: the geometry of a ConvCase (activation and bias
 * unused) with element types, zero points and the fused epilogue. */
typedef struct
{
  int geometry;                 /* index into conv_cases */
  LensDType x_dtype, w_dtype;
  gboolean x_zp;
  int w_zp;                     /* 0 absent, 1 scalar, 2 per output channel */
  int epilogue;
  gboolean scale2;              /* the epilogue's second scale (input 6) */
  gboolean range;               /* output 1, the range of y */
  gboolean residual;            /* input 7 (2-D geometries with explicit
                                 * sizes and pads only) */
} ConvIntegerCase;

static const ConvIntegerCase conv_integer_cases[] = {
  { 0, LENS_DTYPE_UINT8, LENS_DTYPE_UINT8, TRUE, 1 },
  { 1, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 2 },
  { 2, LENS_DTYPE_INT8, LENS_DTYPE_INT8, TRUE, 0 },
  { 3, LENS_DTYPE_INT8, LENS_DTYPE_UINT8, FALSE, 1 },
  { 5, LENS_DTYPE_UINT8, LENS_DTYPE_UINT8, TRUE, 2 },
  { 6, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, FALSE, 0 },
  { 7, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 2 },
  { 8, LENS_DTYPE_INT8, LENS_DTYPE_UINT8, TRUE, 1 },
  { 10, LENS_DTYPE_UINT8, LENS_DTYPE_UINT8, TRUE, 0 },
  { 11, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1 },
  { 13, LENS_DTYPE_INT8, LENS_DTYPE_INT8, FALSE, 2 },
  { 16, LENS_DTYPE_UINT8, LENS_DTYPE_UINT8, TRUE, 2 },
  { 17, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1 },
  /* fused epilogues (the int8 Ultralytics models: uint8 x with its zero
   * point, int8 weights) */
  { 0, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU },
  { 2, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 0, EPILOGUE_SILU },
  { 4, LENS_DTYPE_UINT8, LENS_DTYPE_UINT8, TRUE, 2, EPILOGUE_BIAS },
  { 5, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, FALSE, 0, EPILOGUE_SILU },
  { 7, LENS_DTYPE_INT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_BIAS },
  { 13, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 0, EPILOGUE_SCALE },
  { 17, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU },
  /* depthwise (one channel per tile), as in YOLO11's heads */
  { 1, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU },
  { 12, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 2, EPILOGUE_BIAS },
  /* one tile of 24 channels */
  { 28, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU },
  { 29, LENS_DTYPE_INT8, LENS_DTYPE_INT8, TRUE, 2 },
  { 30, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU },
  { 30, LENS_DTYPE_INT8, LENS_DTYPE_UINT8, FALSE, 0 },
  /* flat 1x1: tiles per work-item, stages, groups (see conv_cases) */
  { 31, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU },
  { 32, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 2, EPILOGUE_BIAS },
  { 32, LENS_DTYPE_INT8, LENS_DTYPE_INT8, FALSE, 0 },
  { 33, LENS_DTYPE_UINT8, LENS_DTYPE_UINT8, TRUE, 2 },
  /* staged: stages, float sums moved to int32 within a stage, groups */
  { 34, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU },
  { 35, LENS_DTYPE_INT8, LENS_DTYPE_INT8, TRUE, 2 },
  { 36, LENS_DTYPE_UINT8, LENS_DTYPE_UINT8, FALSE, 1, EPILOGUE_BIAS },
  /* the weights' scale folded in (input 6): packed, depthwise, flat,
   * staged, and without a bias */
  { 0, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, TRUE },
  { 1, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, TRUE },
  { 31, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_BIAS, TRUE },
  { 34, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 2, EPILOGUE_SILU, TRUE },
  { 13, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 0, EPILOGUE_SCALE, TRUE },
  /* the range of y as a second output: packed, depthwise, flat (partial
   * last tile), staged (rows whose tiles cross both ends), and a partial
   * channel tile */
  { 0, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, TRUE, TRUE },
  { 1, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, TRUE, TRUE },
  { 31, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_BIAS, TRUE,
      TRUE },
  { 35, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 2, EPILOGUE_SILU, TRUE,
      TRUE },
  { 13, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 0, EPILOGUE_SCALE, FALSE,
      TRUE },
  /* a residual added last (input 7): packed, flat, staged (stride 2;
   * stride 1 with partial tiles), with the range too */
  { 0, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, TRUE, FALSE,
      TRUE },
  { 31, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, TRUE, TRUE,
      TRUE },
  { 34, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 2, EPILOGUE_BIAS, TRUE, TRUE,
      TRUE },
  { 35, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, FALSE,
      FALSE, TRUE },
  /* flat 1x1 with tiles of several vectors (CPU): int32 out, the fused
   * epilogue, the range, the residual */
  { 37, LENS_DTYPE_INT8, LENS_DTYPE_INT8, TRUE, 2 },
  { 38, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, FALSE, 1, EPILOGUE_SCALE, TRUE,
      TRUE },
  { 37, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, TRUE, TRUE,
      TRUE },
  { 38, LENS_DTYPE_UINT8, LENS_DTYPE_UINT8, TRUE, 0, EPILOGUE_BIAS, FALSE,
      FALSE, TRUE },
  /* staged with tiles of several rows (CPU; cases 35 and 36 take 2 and 3
   * rows): 3 rows, the last tile partial, range and residual */
  { 39, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 1, EPILOGUE_SILU, TRUE, TRUE,
      TRUE },
  { 39, LENS_DTYPE_INT8, LENS_DTYPE_UINT8, FALSE, 2 },
  /* depthwise, channel multiplier 5 */
  { 40, LENS_DTYPE_UINT8, LENS_DTYPE_INT8, TRUE, 2, EPILOGUE_BIAS, FALSE,
      TRUE },
};

static LensNode *
conv_integer_case (int index, GRand * rand)
{
  const ConvIntegerCase *ic;
  const ConvCase *c;
  LensNode *node;
  LensTensor *w;
  int n_extra;

  if (index >= (int) G_N_ELEMENTS (conv_integer_cases))
    return NULL;
  ic = &conv_integer_cases[index];
  c = &conv_cases[ic->geometry];
  n_extra = ic->w_zp ? 2 : ic->x_zp ? 1 : 0;
  if (ic->epilogue != EPILOGUE_NONE)
    n_extra = ic->scale2 ? 5 : ic->epilogue == EPILOGUE_SCALE ? 3 : 4;
  node = build_case ("ConvInteger", 10, c, n_extra, ic->x_dtype, ic->w_dtype,
      rand);
  w = node->inputs[1];
  /* the weights and their zero points are constant, as a model's are:
   * where the device has AVX-512 VNNI they take its kernels (see
   * vnni_prepare; LENS_CONV_VNNI=0 keeps the float ones) */
  w->is_constant = TRUE;
  if (ic->x_zp) {
    double lo = ic->x_dtype == LENS_DTYPE_INT8 ? -128 : 0;
    node->inputs[2] = lens_tensor_new_random (ic->x_dtype, 0, NULL, rand, lo,
        lo + 255);
  }
  if (ic->w_zp) {
    double lo = ic->w_dtype == LENS_DTYPE_INT8 ? -128 : 0;
    node->inputs[3] = lens_tensor_new_random (ic->w_dtype,
        ic->w_zp == 2 ? 1 : 0, &w->shape[0], rand, lo, lo + 255);
    node->inputs[3]->is_constant = TRUE;
  }
  if (ic->epilogue != EPILOGUE_NONE) {
    /* a scale as DynamicQuantizeLinear's times a weight scale gives:
     * products of the outputs are large, their floats rounded; split in
     * two factors of that size with a second scale */
    int64_t one = 1;
    node->inputs[4] = lens_tensor_new_random (LENS_DTYPE_FLOAT, 1, &one,
        rand, ic->scale2 ? 1e-3 : 1e-5, ic->scale2 ? 0.05 : 1e-3);
    if (ic->scale2)
      node->inputs[6] = lens_tensor_new_random (LENS_DTYPE_FLOAT, 1, &one,
          rand, 1e-3, 0.05);
  }
  if (ic->epilogue >= EPILOGUE_BIAS) {
    /* the [1, M, 1, 1] bias of the models (one value per channel) */
    int64_t b_shape[4] = { 1, w->shape[0], 1, 1 };
    node->inputs[5] = lens_tensor_new_random (LENS_DTYPE_FLOAT,
        c->spatial + 2, b_shape, rand, -2, 2);
  }
  if (ic->epilogue == EPILOGUE_SILU)
    lens_node_set_attr_string (node, "activation", "SiLU");
  if (ic->residual) {
    /* y's shape, from the case's explicit sizes and pads */
    int64_t y_shape[4] = { c->batch, w->shape[0],
      (c->in_h + c->pads[0] + c->pads[2] - c->k_h) / c->stride + 1,
      (c->in_w + c->pads[1] + c->pads[3] - c->k_w) / c->stride + 1
    };
    LensTensor **inputs = g_new0 (LensTensor *, 8);
    LensTensor *y = node->outputs[0];
    memcpy (inputs, node->inputs, sizeof (LensTensor *) * node->n_inputs);
    inputs[7] = lens_tensor_new_random (LENS_DTYPE_FLOAT, 4, y_shape, rand,
        -3, 3);
    lens_node_set_io (node, 8, inputs, 1, &y);
    g_free (inputs);
  }
  if (ic->range) {
    LensTensor **inputs = g_memdup2 (node->inputs,
        sizeof (LensTensor *) * node->n_inputs);
    LensTensor *outputs[2] = { node->outputs[0],
      lens_tensor_new (LENS_DTYPE_UNDEFINED, 0, NULL)
    };
    lens_node_set_io (node, node->n_inputs, inputs, 2, outputs);
    g_free (inputs);
  }
  return node;
}

const LensOp lens_op_conv = {
  .op_type = "Conv",
  .init = conv_init,
  .reshape = conv_reshape,
  .run = conv_run,
  .reference = lens_ref_conv,
  .exit = conv_exit,
  .make_case = conv_case,
  .atol = 1e-4,
  .rtol = 1e-4,
};

const LensOp lens_op_conv_integer = {
  .op_type = "ConvInteger",
  .init = conv_integer_init,
  .reshape = conv_integer_reshape,
  .run = conv_integer_run,
  .reference = lens_ref_conv_integer,
  .exit = conv_exit,
  .make_case = conv_integer_case,
  .atol = 0,
  .rtol = 0,
};
