/* registry.c: the one table of operators liblens implements. */
#include "lens-private.h"

#include <string.h>

static const LensOp *const registry[] = {
  /* convolution (ops/conv.c, ops/quant.c) */
  &lens_op_conv, &lens_op_conv_integer, &lens_op_dynamic_quantize_linear,
  /* pooling (ops/pool.c) */
  &lens_op_max_pool, &lens_op_average_pool, &lens_op_global_average_pool,
  /* resize (ops/resize.c) */
  &lens_op_resize,
  /* layout (ops/layout.c) */
  &lens_op_concat, &lens_op_split, &lens_op_slice, &lens_op_pad,
  &lens_op_transpose,
  /* element-wise (ops/elementwise.c) */
  &lens_op_add, &lens_op_sub, &lens_op_mul, &lens_op_div, &lens_op_pow,
  &lens_op_mod, &lens_op_sigmoid, &lens_op_relu, &lens_op_leaky_relu,
  &lens_op_hard_sigmoid, &lens_op_hard_swish, &lens_op_clip, &lens_op_exp,
  &lens_op_floor,
  /* reductions (ops/reduce.c) */
  &lens_op_softmax, &lens_op_reduce_max, &lens_op_top_k,
  /* matrix products (ops/matmul.c) */
  &lens_op_mat_mul, &lens_op_gemm,
  /* indexing (ops/gather.c) */
  &lens_op_gather, &lens_op_gather_elements,
  /* other compute (ops/misc.c) */
  &lens_op_batch_normalization, &lens_op_tile, &lens_op_cast,
  /* views and shapes (ops/views.c) */
  &lens_op_reshape, &lens_op_flatten, &lens_op_squeeze, &lens_op_unsqueeze,
  &lens_op_identity, &lens_op_constant, &lens_op_shape,
  &lens_op_constant_of_shape, &lens_op_range,
  NULL
};

const LensOp *
lens_op_lookup (const char *op_type)
{
  for (int i = 0; registry[i] != NULL; i++)
    if (strcmp (registry[i]->op_type, op_type) == 0)
      return registry[i];
  return NULL;
}

const LensOp *const *
lens_op_list (void)
{
  return registry;
}
