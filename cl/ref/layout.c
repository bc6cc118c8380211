/* ref/layout.c: plain-C references of Concat, Split, Slice, Pad and
 * Transpose, written element by element from the ONNX definitions: every
 * output element's coordinates are computed, mapped to the input element
 * it copies, and that element's bytes are copied. Slow and obvious on
 * purpose: the kernels are tested against these. */
#include "layout.h"

#include <string.h>

static void
copy_element (LensTensor * dst, int64_t dst_index, const LensTensor * src,
    int64_t src_index)
{
  size_t size = lens_dtype_size (dst->dtype);

  memcpy ((uint8_t *) dst->host + dst_index * size,
      (const uint8_t *) src->host + src_index * size, size);
}

LensStatus
lens_ref_concat (LensNode * node, int axis, LensError *err)
{
  LensTensor *y = node->outputs[0];
  int64_t n = lens_tensor_numel (y), coord[LENS_MAX_DIMS];

  for (int64_t i = 0; i < n; i++) {
    int64_t start = 0;
    lens_unravel_index (i, y->ndim, y->shape, coord);
    for (int k = 0; k < node->n_inputs; k++) {
      const LensTensor *x = node->inputs[k];
      if (coord[axis] < start + x->shape[axis]) {
        coord[axis] -= start;
        copy_element (y, i, x, lens_tensor_offset_of (x, coord));
        break;
      }
      start += x->shape[axis];
    }
  }
  return LENS_OK;
}

LensStatus
lens_ref_split (LensNode * node, int axis, const int64_t *sizes,
    LensError *err)
{
  const LensTensor *x = node->inputs[0];
  int64_t start = 0, coord[LENS_MAX_DIMS];

  for (int k = 0; k < node->n_outputs; k++) {
    LensTensor *y = node->outputs[k];
    int64_t n = lens_tensor_numel (y);

    for (int64_t i = 0; y != NULL && i < n; i++) {
      lens_unravel_index (i, y->ndim, y->shape, coord);
      coord[axis] += start;
      copy_element (y, i, x, lens_tensor_offset_of (x, coord));
    }
    start += sizes[k];
  }
  return LENS_OK;
}

LensStatus
lens_ref_slice (LensNode * node, const int64_t *starts, const int64_t *steps,
    LensError *err)
{
  const LensTensor *x = node->inputs[0];
  LensTensor *y = node->outputs[0];
  int64_t n = lens_tensor_numel (y), coord[LENS_MAX_DIMS];

  for (int64_t i = 0; i < n; i++) {
    lens_unravel_index (i, y->ndim, y->shape, coord);
    for (int d = 0; d < x->ndim; d++) {
      coord[d] = starts[d] + coord[d] * steps[d];
      if (coord[d] < 0 || coord[d] >= x->shape[d])
        return lens_error_set (err, LENS_ERROR_INVALID,
            "Slice: output element %" G_GINT64_FORMAT " reads index %"
            G_GINT64_FORMAT " of input dimension %d (size %" G_GINT64_FORMAT
            ")", i, coord[d], d, x->shape[d]);
    }
    copy_element (y, i, x, lens_tensor_offset_of (x, coord));
  }
  return LENS_OK;
}

/* Where output coordinate @c (shifted by the begin pad) reads in an input
 * dimension of @size, or -1 for the constant value. */
static int64_t
pad_source (int64_t c, int64_t size, LensPadMode mode)
{
  if (c >= 0 && c < size)
    return c;
  switch (mode) {
    case LENS_PAD_MODE_EDGE:
      return c < 0 ? 0 : size - 1;
    case LENS_PAD_MODE_REFLECT:
      /* mirror at the first and last element (not repeating them) until
       * inside, as numpy.pad (mode="reflect") does */
      if (size == 1)
        return 0;
      while (c < 0 || c >= size) {
        if (c < 0)
          c = -c;
        if (c >= size)
          c = 2 * (size - 1) - c;
      }
      return c;
    case LENS_PAD_MODE_WRAP:
      c %= size;
      return c < 0 ? c + size : c;
    case LENS_PAD_MODE_CONSTANT:
    default:
      return -1;
  }
}

LensStatus
lens_ref_pad (LensNode * node, const int64_t *pads_begin,
    const int64_t *pads_end, LensPadMode mode, const void *value,
    LensError *err)
{
  const LensTensor *x = node->inputs[0];
  LensTensor *y = node->outputs[0];
  size_t size = lens_dtype_size (y->dtype);
  int64_t n = lens_tensor_numel (y), coord[LENS_MAX_DIMS];

  for (int64_t i = 0; i < n; i++) {
    gboolean inside = TRUE;

    lens_unravel_index (i, y->ndim, y->shape, coord);
    for (int d = 0; d < x->ndim && inside; d++) {
      /* the part of the input that negative pads leave */
      int64_t crop_begin = MAX (-pads_begin[d], 0);
      int64_t kept = x->shape[d] - crop_begin - MAX (-pads_end[d], 0);
      int64_t c = pad_source (coord[d] - MAX (pads_begin[d], 0), kept, mode);

      inside = c >= 0;
      coord[d] = c + crop_begin;
    }
    if (inside)
      copy_element (y, i, x, lens_tensor_offset_of (x, coord));
    else
      memcpy ((uint8_t *) y->host + i * size, value, size);
  }
  return LENS_OK;
}

LensStatus
lens_ref_transpose (LensNode * node, const int *perm, LensError *err)
{
  const LensTensor *x = node->inputs[0];
  LensTensor *y = node->outputs[0];
  int64_t n = lens_tensor_numel (y), coord[LENS_MAX_DIMS],
      in_coord[LENS_MAX_DIMS];

  for (int64_t i = 0; i < n; i++) {
    lens_unravel_index (i, y->ndim, y->shape, coord);
    for (int d = 0; d < y->ndim; d++)
      in_coord[perm[d]] = coord[d];
    copy_element (y, i, x, lens_tensor_offset_of (x, in_coord));
  }
  return LENS_OK;
}
