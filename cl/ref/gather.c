/* ref/gather.c: plain-C references of Gather and GatherElements, written
 * element by element from the ONNX definitions. Indices are read as int64
 * whatever their type; a negative index counts from the end of the axis,
 * and one still outside the axis is reported as an error. */
#include "gather.h"

#include <string.h>

/* Index @i of @indices, made non-negative against @size, or an error. */
static LensStatus
read_index (const LensNode * node, const LensTensor * indices, int64_t i,
    int64_t size, int64_t *out, LensError *err)
{
  int64_t k = lens_tensor_get_i64 (indices, i);

  if (k < -size || k >= size)
    return lens_error_set (err, LENS_ERROR_INVALID,
        "%s: index %" G_GINT64_FORMAT " (element %" G_GINT64_FORMAT
        " of 'indices') is out of range for an axis of size %"
        G_GINT64_FORMAT, node->op_type, k, i, size);
  *out = k < 0 ? k + size : k;
  return LENS_OK;
}

LensStatus
lens_ref_gather (LensNode * node, int axis, LensError *err)
{
  const LensTensor *data = node->inputs[0], *indices = node->inputs[1];
  LensTensor *y = node->outputs[0];
  size_t size = lens_dtype_size (y->dtype);
  int64_t n = lens_tensor_numel (y), coord[LENS_MAX_DIMS],
      data_coord[LENS_MAX_DIMS];
  int q = indices->ndim;

  for (int64_t i = 0; i < n; i++) {
    int64_t index_pos = 0, k = 0;
    LensStatus st;

    /* output coordinates: data[:axis], then the indices' own, then
     * data[axis+1:] */
    lens_unravel_index (i, y->ndim, y->shape, coord);
    for (int d = 0; d < q; d++)
      index_pos = index_pos * indices->shape[d] + coord[axis + d];
    st = read_index (node, indices, index_pos, data->shape[axis], &k, err);
    if (st != LENS_OK)
      return st;
    for (int d = 0; d < data->ndim; d++)
      data_coord[d] = d < axis ? coord[d] : d == axis ? k :
          coord[d - 1 + q];
    memcpy ((uint8_t *) y->host + i * size,
        (const uint8_t *) data->host + lens_tensor_offset_of (data, data_coord) * size,
        size);
  }
  return LENS_OK;
}

LensStatus
lens_ref_gather_elements (LensNode * node, int axis, LensError *err)
{
  const LensTensor *data = node->inputs[0], *indices = node->inputs[1];
  LensTensor *y = node->outputs[0];
  size_t size = lens_dtype_size (y->dtype);
  int64_t n = lens_tensor_numel (y), coord[LENS_MAX_DIMS];

  for (int64_t i = 0; i < n; i++) {
    LensStatus st;

    lens_unravel_index (i, y->ndim, y->shape, coord);
    st = read_index (node, indices, i, data->shape[axis], &coord[axis], err);
    if (st != LENS_OK)
      return st;
    memcpy ((uint8_t *) y->host + i * size,
        (const uint8_t *) data->host + lens_tensor_offset_of (data, coord) * size, size);
  }
  return LENS_OK;
}
