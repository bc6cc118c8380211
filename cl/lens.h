/* lens.h: the public API of liblens, the OpenCL operator library.
 *
 * Owns: status codes and error messages, OpenCL device selection and
 * contexts, tensors (device buffers with shape and strides), graph nodes
 * and the operator registry, the ONNX protobuf layer, and the self-test.
 *
 * Error convention (the whole of cl/): functions return a LensStatus and, on
 * failure, fill the optional LensError with a one-line message that names
 * what failed (the OpenCL call and CL error, the node, op and attribute,
 * the file).
 */
#ifndef LENS_H
#define LENS_H

#include <stdint.h>
#include <stddef.h>
#include <glib.h>
#include <CL/cl.h>

G_BEGIN_DECLS

/* ---- errors ------------------------------------------------------------ */

typedef enum
{
  LENS_OK = 0,
  LENS_ERROR_CL,                /* an OpenCL call failed */
  LENS_ERROR_BUILD,             /* a program failed to build; message holds the log */
  LENS_ERROR_NO_DEVICE,         /* no OpenCL device matches */
  LENS_ERROR_INVALID,           /* bad argument, shape or attribute value */
  LENS_ERROR_UNSUPPORTED,       /* op, attribute value or data type not supported */
  LENS_ERROR_IO,                /* file could not be read */
  LENS_ERROR_PARSE,             /* file is not what it claims to be */
  LENS_ERROR_NOMEM,             /* allocation failed or over a limit */
  LENS_ERROR_UNSUPPORTED_OP,    /* the operator itself is not implemented */
} LensStatus;

typedef struct
{
  LensStatus code;
  char *message;
} LensError;

#define LENS_ERROR_INIT { LENS_OK, NULL }

/* Sets @err (when non-NULL and not yet set) and returns @code. */
LensStatus lens_error_set (LensError *err, LensStatus code,
    const char *format, ...) G_GNUC_PRINTF (3, 4);
/* Prepends context ("node 'x' (Conv): ") to an already set message. */
void lens_error_prefix (LensError *err, const char *format, ...)
    G_GNUC_PRINTF (2, 3);
void lens_error_clear (LensError *err);
const char *lens_status_name (LensStatus code);
/* "CL_INVALID_WORK_GROUP_SIZE" for -54, etc. */
const char *lens_cl_error_name (cl_int code);

/* ---- data types (values are ONNX TensorProto.DataType) ------------------ */

typedef enum
{
  LENS_DTYPE_UNDEFINED = 0,
  LENS_DTYPE_FLOAT = 1,
  LENS_DTYPE_UINT8 = 2,
  LENS_DTYPE_INT8 = 3,
  LENS_DTYPE_UINT16 = 4,
  LENS_DTYPE_INT16 = 5,
  LENS_DTYPE_INT32 = 6,
  LENS_DTYPE_INT64 = 7,
  LENS_DTYPE_STRING = 8,
  LENS_DTYPE_BOOL = 9,
  LENS_DTYPE_FLOAT16 = 10,
  LENS_DTYPE_DOUBLE = 11,
  LENS_DTYPE_UINT32 = 12,
  LENS_DTYPE_UINT64 = 13,
  LENS_DTYPE_BFLOAT16 = 16,
} LensDType;

/* Size in bytes of one element; 0 for types without a fixed size. */
size_t lens_dtype_size (LensDType dtype);
const char *lens_dtype_name (LensDType dtype);
/* The OpenCL C type name that stores one element ("float", "uchar",
 * "ushort" for float16/bfloat16 bits, ...), NULL when unsupported. */
const char *lens_dtype_cl_type (LensDType dtype);
gboolean lens_dtype_is_float (LensDType dtype);

float lens_half_to_float (uint16_t h);
uint16_t lens_float_to_half (float f);        /* round to nearest even */
float lens_bfloat16_to_float (uint16_t b);
uint16_t lens_float_to_bfloat16 (float f);    /* round to nearest even */

/* ---- OpenCL context ------------------------------------------------------ */

typedef struct _LensContext LensContext;

/* Opens a device. @device_spec selects it; NULL means the LENS_DEVICE
 * environment variable, and if that is unset too, "auto":
 *   "auto"        the first GPU, else the first CPU, else anything
 *   "gpu", "cpu"  the first device of that type
 *   "P:D"         platform index P, device index D (as clinfo -l lists them)
 *   other text    the first device whose platform or device name contains
 *                 it (case-insensitive)
 * Contexts on the same device share one cl_context and one program cache;
 * each context has its own in-order command queue. */
LensStatus lens_context_new (const char *device_spec, LensContext **out,
    LensError *err);
void lens_context_free (LensContext *ctx);

cl_context lens_context_get_cl_context (LensContext *ctx);
cl_command_queue lens_context_get_queue (LensContext *ctx);
cl_device_id lens_context_get_device (LensContext *ctx);
const char *lens_context_get_device_name (LensContext *ctx);
const char *lens_context_get_platform_name (LensContext *ctx);
gboolean lens_context_is_gpu (LensContext *ctx);
LensStatus lens_context_finish (LensContext *ctx, LensError *err);

/* Returns a new kernel (caller releases it) from program @program (the base
 * name of a cl/kernels/NAME.cl file) built with @options. Programs are
 * compiled once per process per (device, source hash, options); a failed
 * build returns LENS_ERROR_BUILD with the build log in the message. */
LensStatus lens_context_create_kernel (LensContext *ctx, const char *program,
    const char *options, const char *kernel_name, cl_kernel *out,
    LensError *err);
/* Number of programs compiled so far on this context's device. */
guint lens_context_programs_built (LensContext *ctx);

/* Checked wrappers: the message names the call, the kernel and the CL error. */
LensStatus lens_kernel_set_arg (cl_kernel kernel, cl_uint index, size_t size,
    const void *value, LensError *err);
/* Enqueues @kernel over @global (rounded up to a multiple of @local when
 * @local is non-NULL). */
LensStatus lens_context_enqueue (LensContext *ctx, cl_kernel kernel,
    cl_uint work_dim, const size_t *global, const size_t *local,
    LensError *err);
/* Largest work-group size this device allows for @kernel. */
size_t lens_kernel_max_work_group (LensContext *ctx, cl_kernel kernel);

/* ---- tensors ------------------------------------------------------------- */

#define LENS_MAX_DIMS 8

typedef struct _LensTensor
{
  char *name;
  LensDType dtype;
  int ndim;
  int64_t shape[LENS_MAX_DIMS];
  int64_t strides[LENS_MAX_DIMS];       /* in elements */
  size_t offset;                        /* in elements, into buffer */
  cl_mem buffer;                        /* device storage, or NULL */
  size_t buffer_bytes;                  /* capacity of buffer */
  void *host;                           /* host storage, or NULL; owned */
  gboolean is_constant;                 /* host holds the value for good */
} LensTensor;

/* A tensor with metadata only: no storage yet. A NULL @shape with
 * @ndim 0 makes a scalar. */
LensTensor *lens_tensor_new (LensDType dtype, int ndim, const int64_t *shape);
/* A tensor with host storage holding a copy of @data (or zeros if NULL). */
LensTensor *lens_tensor_new_host (LensDType dtype, int ndim,
    const int64_t *shape, const void *data);
void lens_tensor_free (LensTensor *t);
void lens_tensor_set_name (LensTensor *t, const char *name);
/* Sets shape and contiguous strides; storage is kept for reuse. */
void lens_tensor_set_shape (LensTensor *t, int ndim, const int64_t *shape);
int64_t lens_tensor_numel (const LensTensor *t);
size_t lens_tensor_nbytes (const LensTensor *t);
gboolean lens_tensor_is_contiguous (const LensTensor *t);
/* "[1,3,224,224] float32" into @buf */
const char *lens_tensor_describe (const LensTensor *t, char *buf, size_t len);

/* Device buffer of at least nbytes; an existing large-enough one is reused. */
LensStatus lens_tensor_alloc_device (LensContext *ctx, LensTensor *t,
    LensError *err);
/* Host storage of nbytes (zeroed); an existing one is reallocated. */
void lens_tensor_alloc_host (LensTensor *t);
/* Blocking copies between host and device storage (allocating the target). */
LensStatus lens_tensor_upload (LensContext *ctx, LensTensor *t, LensError *err);
LensStatus lens_tensor_download (LensContext *ctx, LensTensor *t,
    LensError *err);
/* A view sharing @src's storage with another shape of the same element
 * count (device buffer retained, host data copied). */
LensTensor *lens_tensor_new_view (const LensTensor *src, int ndim,
    const int64_t *shape);
/* Element @i (row-major over the shape) of host data, converted. */
double lens_tensor_get_f64 (const LensTensor *t, int64_t i);
int64_t lens_tensor_get_i64 (const LensTensor *t, int64_t i);
void lens_tensor_set_f64 (LensTensor *t, int64_t i, double v);

typedef struct
{
  double max_abs_diff;          /* largest |a - b| */
  double max_rel_diff;          /* largest |a - b| / max(|b|, tiny) */
  int64_t worst_index;          /* where the first tolerance violation is */
  int64_t mismatches;
} LensCompareResult;

/* Compares host data of @actual against @expected: same dtype and shape,
 * and |a - e| <= atol + rtol * |e| for every element (NaN matches NaN).
 * Integer types compare exactly. On mismatch returns LENS_ERROR_INVALID
 * with a message that names the first bad element. */
LensStatus lens_tensor_compare (const LensTensor *actual,
    const LensTensor *expected, double atol, double rtol,
    LensCompareResult *result, LensError *err);

/* ---- graph nodes and operators ------------------------------------------- */

typedef enum
{
  LENS_ATTR_UNDEFINED = 0,
  LENS_ATTR_FLOAT = 1,
  LENS_ATTR_INT = 2,
  LENS_ATTR_STRING = 3,
  LENS_ATTR_TENSOR = 4,
  LENS_ATTR_FLOATS = 6,
  LENS_ATTR_INTS = 7,
  LENS_ATTR_STRINGS = 8,
} LensAttrType;               /* values are ONNX AttributeProto.AttributeType */

typedef struct
{
  char *name;
  LensAttrType type;
  float f;
  int64_t i;
  char *s;
  LensTensor *t;
  int n;                        /* element count of floats/ints/strings */
  float *floats;
  int64_t *ints;
  char **strings;
} LensAttr;

typedef struct _LensNode LensNode;
typedef struct _LensOp LensOp;

#define LENS_NODE_MAX_KERNELS 8

struct _LensNode
{
  char *name;
  char *op_type;
  int opset;                    /* opset of the default domain */
  int n_attrs;
  LensAttr *attrs;
  /* Tensors are borrowed: whoever builds the node owns them. A NULL input
   * is an omitted optional input. */
  int n_inputs;
  LensTensor **inputs;
  int n_outputs;
  LensTensor **outputs;
  /* set by lens_node_init () */
  const LensOp *op;
  void *priv;                   /* op state from init, freed by op->exit */
  cl_kernel kernels[LENS_NODE_MAX_KERNELS];     /* released by lens_node_free */
  gboolean owns_tensors;        /* self-test nodes free their tensors */
};

/* One operator: init parses attributes once and refuses what it does not
 * support; reshape derives output dtypes and shapes from the inputs (and the
 * host values of constant inputs such as shapes or pads); run enqueues the
 * OpenCL kernels; reference computes the same on the host in plain C. */
struct _LensOp
{
  const char *op_type;
  LensStatus (*init) (LensNode *node, LensError *err);
  LensStatus (*reshape) (LensNode *node, LensError *err);
  LensStatus (*run) (LensContext *ctx, LensNode *node, LensError *err);
  LensStatus (*reference) (LensNode *node, LensError *err);
  void (*exit) (LensNode *node);
  /* Self-test: builds random case @index (random attributes, awkward
   * shapes, host inputs) or returns NULL past the last case. */
  LensNode *(*make_case) (int index, GRand *rand);
  double atol, rtol;            /* kernel vs reference tolerance */
  /* run makes outputs share the input's device buffer (no copy), so
   * lens_node_run allocates nothing for them */
  gboolean is_view;
};

const LensOp *lens_op_lookup (const char *op_type);
/* NULL-terminated table of every registered operator. */
const LensOp *const *lens_op_list (void);

LensNode *lens_node_new (const char *op_type, const char *name, int opset);
void lens_node_free (LensNode *node);
/* The node owns its own copies of attribute names and values. */
LensAttr *lens_node_add_attr (LensNode *node, const char *name,
    LensAttrType type);
void lens_node_set_attr_int (LensNode *node, const char *name, int64_t v);
void lens_node_set_attr_float (LensNode *node, const char *name, float v);
void lens_node_set_attr_string (LensNode *node, const char *name,
    const char *v);
void lens_node_set_attr_ints (LensNode *node, const char *name, int n,
    const int64_t *v);
void lens_node_set_attr_floats (LensNode *node, const char *name, int n,
    const float *v);
void lens_node_set_attr_tensor (LensNode *node, const char *name,
    LensTensor *t);             /* takes ownership of @t */
void lens_node_set_io (LensNode *node, int n_inputs, LensTensor **inputs,
    int n_outputs, LensTensor **outputs);

const LensAttr *lens_node_attr (const LensNode *node, const char *name);
int64_t lens_node_attr_int (const LensNode *node, const char *name,
    int64_t def);
float lens_node_attr_float (const LensNode *node, const char *name,
    float def);
const char *lens_node_attr_string (const LensNode *node, const char *name,
    const char *def);
/* Returns the element count, or -1 when absent; *values borrowed. */
int lens_node_attr_ints (const LensNode *node, const char *name,
    const int64_t **values);
int lens_node_attr_floats (const LensNode *node, const char *name,
    const float **values);
/* Input @i, or NULL when absent or omitted. */
LensTensor *lens_node_input (const LensNode *node, int i);
LensTensor *lens_node_output (const LensNode *node, int i);

/* Reads a host-known integer input (shape, pads, axes, repeats...) as
 * int64. Fails with a message naming the input when it has no host value. */
LensStatus lens_node_input_ints (const LensNode *node, int i,
    int64_t **values, int64_t *n, LensError *err);

/* Looks the op up and calls its init; messages are prefixed with the node. */
LensStatus lens_node_init (LensNode *node, LensError *err);
LensStatus lens_node_reshape (LensNode *node, LensError *err);
/* Allocates device outputs and enqueues the op (inputs must be on device). */
LensStatus lens_node_run (LensContext *ctx, LensNode *node, LensError *err);
/* Allocates host outputs and runs the C reference (inputs on host). */
LensStatus lens_node_run_reference (LensNode *node, LensError *err);
/* The node's kernel in @slot, created on first use from the program cache. */
LensStatus lens_node_kernel (LensContext *ctx, LensNode *node, int slot,
    const char *program, const char *options, const char *kernel_name,
    cl_kernel *out, LensError *err);

/* ---- ONNX ---------------------------------------------------------------- */

typedef struct
{
  char *path;
  int64_t ir_version;
  int opset;                    /* default domain */
  int n_nodes;
  LensNode **nodes;             /* with attributes; inputs/outputs unset */
  char ***node_inputs;          /* per node, n_inputs names ("" = omitted) */
  char ***node_outputs;
  int n_initializers;
  LensTensor **initializers;    /* host, constant, named */
  int n_inputs;
  char **inputs;                /* graph input names (initializers excluded) */
  LensDType *input_dtypes;      /* as declared; UNDEFINED when not given */
  int n_outputs;
  char **outputs;
  LensDType *output_dtypes;
} LensOnnxModel;

LensStatus lens_onnx_model_load (const char *path, LensOnnxModel **out,
    LensError *err);
void lens_onnx_model_free (LensOnnxModel *model);
/* Reads a serialized TensorProto (.pb) into a host tensor. */
LensStatus lens_onnx_tensor_load (const char *path, LensTensor **out,
    LensError *err);

/* ---- self-test: every kernel against its C reference ---------------------- */

typedef struct
{
  const char *op_type;
  int cases;
  int passed;
  double max_abs_diff;
  double kernel_ms;             /* total OpenCL time of the passed cases */
  char *first_failure;          /* message of the first failing case, or NULL */
} LensSelftestResult;

/* Runs every random case of @op on @ctx and on the reference, comparing
 * with the op's tolerance. @seed makes it reproducible. */
LensStatus lens_selftest_op (LensContext *ctx, const LensOp *op, guint32 seed,
    LensSelftestResult *result, LensError *err);
void lens_selftest_result_clear (LensSelftestResult *result);

G_END_DECLS

#endif /* LENS_H */
