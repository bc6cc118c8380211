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
/* the same over @n values (SIMD where the CPU has it; NaN payloads may
 * differ) */
void lens_floats_to_halves (const float *src, uint16_t *dst, int64_t n);
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
/* Another context on @ctx's device: its own queue, the same cl_context,
 * program cache and buffers. */
LensStatus lens_context_new_like (LensContext *ctx, LensContext **out,
    LensError *err);

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
/* Compiled program binaries persist on disk, keyed by (platform, device,
 * driver version, source hash, build options), so a warm start compiles
 * nothing. The directory is @dir (NULL: no disk cache), else
 * $LENS_CACHE_DIR ("" turns it off), else $XDG_CACHE_HOME/lens. A directory
 * that cannot be written only means compiling again next time. */
void lens_program_cache_set_dir (const char *dir);
/* Programs loaded from the disk cache and binaries written, so far. */
void lens_program_cache_stats (guint *hits, guint *writes);
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

/* Measuring (lens-bench): kernels lens_context_enqueue launched on this
 * context so far, and wall time spent compiling programs (clBuildProgram)
 * on its device so far, in ms. */
guint64 lens_context_enqueue_count (LensContext *ctx);
double lens_context_build_ms (LensContext *ctx);
/* Kernel profiling, off by default (and then free of cost). On, every
 * launch keeps its OpenCL event under the tag last set (-1 after turning
 * it on); collect waits for the queue, adds each launch's device time
 * (CL_PROFILING_COMMAND_END - START, in ms) to ms[tag], the time the
 * device sat idle before it since the previous collected launch ended to
 * idle_ms[tag], and counts it in launches[tag] (any may be NULL; tags
 * outside 0..n_tags-1 are dropped), then releases the events. Turning it
 * off drops pending ones. */
void lens_context_set_profiling (LensContext *ctx, gboolean on);
void lens_context_set_profile_tag (LensContext *ctx, int tag);
LensStatus lens_context_profile_collect (LensContext *ctx, int n_tags,
    double *ms, double *idle_ms, int *launches, LensError *err);

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
  /* Whether output @i of this reshaped node is one contiguous run of
   * input 0, starting @elem_offset elements in: a model's memory plan
   * then makes it a sub-buffer of the input's storage and never runs the
   * node (Split, Slice, Gather). NULL for ops whose outputs never are. */
  gboolean (*output_in_input) (const LensNode *node, int i,
      size_t *elem_offset);
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
/* Copies every attribute of @src onto @dst (names and values duplicated). */
void lens_node_copy_attrs (LensNode *dst, const LensNode *src);
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
/* The kernel lens_node_kernel created in @slot, or NULL before the first
 * use: an op whose build options take formatting skips it on every later
 * run. */
cl_kernel lens_node_built_kernel (const LensNode *node, int slot);

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
  int *input_ndims;             /* declared rank, -1 when not given */
  int64_t (*input_shapes)[LENS_MAX_DIMS];       /* -1 for symbolic dims */
  int n_outputs;
  char **outputs;
  LensDType *output_dtypes;
  int n_metadata;               /* ModelProto.metadata_props */
  char **metadata_keys;
  char **metadata_values;
} LensOnnxModel;

LensStatus lens_onnx_model_load (const char *path, LensOnnxModel **out,
    LensError *err);
/* The same from @len bytes in memory; @path only names the model in
 * messages. */
LensStatus lens_onnx_model_load_data (const char *path, const void *data,
    size_t len, LensOnnxModel **out, LensError *err);

/* Loader limits. A model file is untrusted input: each size it declares is
 * checked before anything of that size is allocated, and a model over a
 * limit is refused with LENS_ERROR_NOMEM and a message naming the limit
 * and the tensor, node or file. */
#define LENS_MAX_MODEL_BYTES ((int64_t) 2 << 30)        /* the serialized
                                                         * model (protobuf's
                                                         * own limit) */
#define LENS_MAX_NODES 100000
#define LENS_MAX_TENSOR_BYTES ((int64_t) 2 << 30)       /* any one tensor:
                                                         * initializer,
                                                         * input, folded or
                                                         * computed value */
#define LENS_MAX_WEIGHT_BYTES ((int64_t) 2 << 30)       /* initializers and
                                                         * Constant tensors,
                                                         * summed */
void lens_onnx_model_free (LensOnnxModel *model);
/* The value of metadata_props entry @key, or NULL. */
const char *lens_onnx_model_metadata (const LensOnnxModel *model,
    const char *key);
/* Reads a serialized TensorProto (.pb) into a host tensor. */
LensStatus lens_onnx_tensor_load (const char *path, LensTensor **out,
    LensError *err);

/* ---- models: load once, run from many execution contexts ------------------ */

typedef struct _LensModel LensModel;
typedef struct _LensExec LensExec;

/* Loads an ONNX model for @ctx's device: parses it, folds constant and
 * shape subgraphs, converts float16 weights to float32, applies graph
 * rewrites (Conv+activation fusion, Identity and no-op Reshape removal),
 * infers every tensor's shape and plans intermediate memory by liveness.
 * @input_shape (NULL: as declared) gives the shape of the first input, for
 * exports with symbolic dimensions. Weights are uploaded once and shared
 * by every LensExec of the model. Errors name the file, the node, the op
 * and opset, or the tensor. */
LensStatus lens_model_load (LensContext *ctx, const char *path, int ndim,
    const int64_t *input_shape, LensModel **out, LensError *err);
/* The same from @len bytes in memory (@path only names the model in
 * messages). @ctx may be NULL: the model is then parsed, folded, shaped and
 * planned with nothing uploaded (validation, the fuzz harness), and
 * lens_exec_new refuses it. */
LensStatus lens_model_load_data (LensContext *ctx, const char *path,
    const void *data, size_t len, int ndim, const int64_t *input_shape,
    LensModel **out, LensError *err);
void lens_model_free (LensModel *model);

const char *lens_model_path (const LensModel *model);
/* ONNX metadata_props value, or NULL */
const char *lens_model_metadata (const LensModel *model, const char *key);
int lens_model_n_inputs (const LensModel *model);
int lens_model_n_outputs (const LensModel *model);
/* Name, declared dtype and (resolved) shape of input/output @i. The
 * tensors lens computes are float32 where the model declares float16. */
const char *lens_model_input_name (const LensModel *model, int i);
const char *lens_model_output_name (const LensModel *model, int i);
LensDType lens_model_input_dtype (const LensModel *model, int i);
LensDType lens_model_output_dtype (const LensModel *model, int i);
int lens_model_input_shape (const LensModel *model, int i, int64_t *shape);
int lens_model_output_shape (const LensModel *model, int i, int64_t *shape);
/* Shape of any named tensor of the graph (after rewrites); -1 if unknown. */
int lens_model_tensor_shape (const LensModel *model, const char *name,
    int64_t *shape);
/* Its computed dtype (float32 where the model says float16); UNDEFINED if
 * unknown. */
LensDType lens_model_tensor_dtype (const LensModel *model, const char *name);
/* Number of nodes left to run per inference after folding and rewrites. */
int lens_model_n_nodes (const LensModel *model);
/* The tensors computed per inference (outputs of the nodes left to run),
 * in execution order: how feature maps are found by shape. */
int lens_model_n_tensors (const LensModel *model);
const char *lens_model_tensor_name (const LensModel *model, int i);
/* Intermediates share buffers by liveness, so a feature map is overwritten
 * later in the run; this keeps the named tensor's buffer to itself for the
 * whole run, so that lens_exec_tensor reads it after lens_exec_run.
 * Re-plans memory: only before the model's first lens_exec_new. */
LensStatus lens_model_keep_tensor (LensModel *model, const char *name,
    LensError *err);
/* Device bytes: shared weights, and the planned peak of one LensExec's
 * intermediates (with liveness reuse) against the sum without reuse. */
size_t lens_model_weight_bytes (const LensModel *model);
size_t lens_model_peak_bytes (const LensModel *model);
size_t lens_model_unplanned_bytes (const LensModel *model);
/* Operations of one inference, summed over the nodes left to run: 2 per
 * multiply-add for Conv/ConvInteger/MatMul/Gemm, 0 for data movement, 1
 * per output element for the rest (the rule is at step_flops () in
 * cl/model.c). What lens-bench's GFLOP/s divides. */
double lens_model_flops (const LensModel *model);

/* An execution context: its own command queue and intermediate buffers,
 * the model's weights shared. One per thread or stream. */
LensStatus lens_exec_new (LensModel *model, LensExec **out, LensError *err);
void lens_exec_free (LensExec *exec);
LensContext *lens_exec_get_context (LensExec *exec);
/* The device tensor of input @i (float32 where the model says float16),
 * for a kernel (pre-processing) to write into directly. */
LensTensor *lens_exec_input (LensExec *exec, int i);
/* Uploads host tensor @t as input @i; its dtype (float16 accepted for a
 * float16 input) and shape must match, else a one-line error. */
LensStatus lens_exec_set_input (LensExec *exec, int i, const LensTensor *t,
    LensError *err);
/* Enqueues the whole graph and the reads of every output with no host
 * synchronisation in between, then waits once. */
LensStatus lens_exec_run (LensExec *exec, LensError *err);
/* Output @i of the last run on the host, in the dtype the model declares:
 * owned by @exec, overwritten by its next run. */
const LensTensor *lens_exec_output (LensExec *exec, int i);
/* A new host tensor with a copy of lens_exec_output (@i). */
LensStatus lens_exec_get_output (LensExec *exec, int i, LensTensor **out,
    LensError *err);
/* The device tensor holding the named graph value after a run (feature
 * maps), or NULL when the name is unknown or was folded away. */
LensTensor *lens_exec_tensor (LensExec *exec, const char *name);

/* One node's share of a profiled run. */
typedef struct
{
  const char *name;             /* node name (borrowed from the model) */
  const char *op_type;
  const char *output;           /* its first output, for
                                 * lens_model_tensor_shape */
  double device_ms;             /* its kernels' execution time on the device
                                 * (OpenCL event profiling), summed */
  double idle_ms;               /* the device idle before each of them,
                                 * since the launch before ended, summed */
  int kernels;                  /* kernels it launched */
  double flops;                 /* as counted by lens_model_flops */
} LensNodeProfile;

/* Kernel profiling, off by default: each lens_exec_run then keeps every
 * kernel's OpenCL event under its node and collects the times after its
 * single wait (so a profiled run is a little slower). */
void lens_exec_set_profiling (LensExec *exec, gboolean on);
/* The last run's per-node profile: lens_model_n_nodes entries in execution
 * order, owned by @exec and valid until its next run; NULL (and *n_nodes
 * 0) when that run was not profiled. */
const LensNodeProfile *lens_exec_profile (LensExec *exec, int *n_nodes);

/* ---- .npy files (NumPy format 1.0-3.0, little-endian, C order) ------------- */

/* Reads float32/float16/float64/int8/uint8/int32/int64/bool arrays. */
LensStatus lens_npy_load (const char *path, LensTensor **out, LensError *err);
/* The same from @len bytes in memory; @path only names them in messages. */
LensStatus lens_npy_load_data (const char *path, const void *data,
    size_t len, LensTensor **out, LensError *err);
/* Writes @t's host data. */
LensStatus lens_npy_save (const char *path, const LensTensor *t,
    LensError *err);

/* ---- pre-processing: frames to model input, on the device ----------------- */

typedef enum
{
  LENS_PIXEL_RGB,               /* packed 8-bit, 3 bytes per pixel */
  LENS_PIXEL_BGR,
  LENS_PIXEL_RGBX,              /* packed, 4 bytes per pixel, 4th ignored */
  LENS_PIXEL_BGRX,
  LENS_PIXEL_I420,              /* planar Y, U, V (chroma halved both ways) */
  LENS_PIXEL_NV12,              /* planar Y, interleaved UV */
  LENS_PIXEL_XRGB,              /* packed, 4 bytes per pixel, 1st ignored */
  LENS_PIXEL_XBGR,
} LensPixelFormat;

#define LENS_PIXEL_N_FORMATS (LENS_PIXEL_XBGR + 1)

typedef struct
{
  LensPixelFormat format;
  int width, height;
  const uint8_t *planes[3];     /* host memory */
  int strides[3];               /* bytes per row of each plane */
} LensFrame;

typedef struct
{
  gboolean letterbox;           /* keep aspect ratio and pad (else stretch) */
  gboolean center;              /* pad both sides (else image top-left) */
  gboolean bgr;                 /* channel order of the model input */
  float pad_value;              /* in 0..255 units, e.g. 114 */
  float scale;                  /* multiply 0..255 values, e.g. 1/255 */
  float mean[3], std[3];        /* after scale: (v - mean) / std */
} LensPreprocess;

/* Where the frame landed in the model input: source pixel
 * x_src = (x_in - pad_x) / scale_x, y likewise. */
typedef struct
{
  float scale_x, scale_y;
  float pad_x, pad_y;
} LensLetterbox;

/* Uploads @frame and resizes it (bilinear, with YUV to RGB conversion for
 * I420/NV12, BT.601 limited range) into @input, a float32 [1,3,H,W] device
 * tensor, padding and normalizing per @pre. Enqueued, not waited on.
 * The exact conventions (rounding, padding, sampling) are documented at
 * the top of cl/preprocess.c. mean[c]/std[c] apply to channel c of the
 * model input (after the RGB/BGR choice). One-shot convenience: it builds
 * and drops a LensPreprocessor per call; use one per stream instead. */
LensStatus lens_preprocess_frame (LensContext *ctx, const LensFrame *frame,
    const LensPreprocess *pre, LensTensor *input, LensLetterbox *box,
    LensError *err);
/* The plain-C reference of the same, writing host data of @input
 * (allocated when it has none). */
LensStatus lens_preprocess_frame_reference (const LensFrame *frame,
    const LensPreprocess *pre, LensTensor *input, LensLetterbox *box,
    LensError *err);

/* A pre-processor for one stream: keeps the kernels, the device frame
 * buffer, a host staging copy and the sampling table between frames, so a
 * frame costs one host copy, one upload and one kernel. Not thread-safe:
 * one per thread or stream. */
typedef struct _LensPreprocessor LensPreprocessor;

LensStatus lens_preprocessor_new (LensContext *ctx, LensPreprocessor **out,
    LensError *err);
void lens_preprocessor_free (LensPreprocessor *pp);
/* As lens_preprocess_frame. @frame's memory is copied before this returns
 * (the caller may reuse it at once); upload and kernel are enqueued, not
 * waited on. */
LensStatus lens_preprocessor_run (LensPreprocessor *pp,
    const LensFrame *frame, const LensPreprocess *pre, LensTensor *input,
    LensLetterbox *box, LensError *err);

/* ---- heatmaps of multi-scale feature maps ---------------------------------- */

/* Activation heatmap: the mean over channels of |x| for every cell of a
 * [1,C,H,W] device tensor, into a [H,W] float32 device tensor @out.
 * @x is float32 with any strides; @out is reshaped to [H,W] (contiguous
 * from its offset) and given a device buffer when it lacks one. Enqueued,
 * not waited on. */
LensStatus lens_heatmap_activation (LensContext *ctx, const LensTensor *x,
    LensTensor *out, LensError *err);
/* Score heatmap: the maximum over @n_classes channels starting at channel
 * @first of a [1,C,H,W] tensor (channel_last FALSE) or of a [1,H*W,C]
 * tensor (channel_last TRUE, @width cells per row), optionally through a
 * sigmoid, into [H,W]. Same rules for @x and @out as above. */
LensStatus lens_heatmap_score (LensContext *ctx, const LensTensor *x,
    gboolean channel_last, int width, int first, int n_classes,
    gboolean apply_sigmoid, LensTensor *out, LensError *err);
/* The plain-C references of the same, on host data (@out's host data is
 * (re)allocated). */
LensStatus lens_heatmap_activation_reference (const LensTensor *x,
    LensTensor *out, LensError *err);
LensStatus lens_heatmap_score_reference (const LensTensor *x,
    gboolean channel_last, int width, int first, int n_classes,
    gboolean apply_sigmoid, LensTensor *out, LensError *err);

/* ---- detection: decoding model outputs ------------------------------------- */

typedef enum
{
  LENS_FAMILY_UNKNOWN = 0,
  LENS_FAMILY_YOLOV5,           /* [1,N,5+C]: cx,cy,w,h,obj,classes */
  LENS_FAMILY_YOLOV8,           /* [1,4+C,N]: cx,cy,w,h,classes (also YOLO11) */
  LENS_FAMILY_END2END,          /* [1,K,6]: x1,y1,x2,y2,score,class (YOLO26) */
  LENS_FAMILY_YOLOX,            /* [1,N,5+C] raw grid outputs */
  LENS_FAMILY_NANODET,          /* per level [1,HW,C] scores + [1,HW,4*(R+1)] */
  LENS_FAMILY_FASTESTDET,       /* [1,5+C,H,W] */
} LensFamily;

const char *lens_family_name (LensFamily family);
/* "yolov5", "yolov8", "yolo11", "end2end", "yolo26", "yolox", "nanodet",
 * "fastestdet"; LENS_FAMILY_UNKNOWN otherwise */
LensFamily lens_family_from_name (const char *name);

typedef struct
{
  int class_id;
  float score;
  float x, y, w, h;             /* source-image pixels, top-left + size */
} LensDetection;

typedef struct
{
  LensFamily family;
  int input_width, input_height;        /* model input, pixels */
  int n_classes;
  int n_strides;
  int strides[8];               /* detection scales, e.g. 8, 16, 32 */
  char **labels;                /* n_classes names (NULL-terminated) */
  float conf_threshold;         /* default 0.25 */
  float iou_threshold;          /* default 0.45 */
  int max_detections;           /* default 300 */
} LensDecodeConfig;

/* Fills @config from the model: family from metadata (Ultralytics 'task',
 * 'end2end', 'names', 'stride', 'imgsz') else from the output shapes;
 * labels from 'names' metadata. @family_override (UNKNOWN = auto) and
 * @labels_path (NULL = metadata, a coco.names-style file otherwise)
 * override. */
LensStatus lens_decode_config_init (LensDecodeConfig *config,
    const LensModel *model, LensFamily family_override,
    const char *labels_path, LensError *err);
void lens_decode_config_clear (LensDecodeConfig *config);
/* Reads a names file: one label per line, UTF-8. */
LensStatus lens_labels_load (const char *path, char ***labels, int *n,
    LensError *err);

/* Decodes host output tensors (in model output order, float32) into
 * detections in source pixels (through @box), applying the confidence
 * threshold, class-aware NMS where the family needs it, and the maximum
 * count; sorted by descending score. *out is g_new'd. */
LensStatus lens_decode (const LensDecodeConfig *config,
    const LensTensor *const *outputs, int n_outputs, const LensLetterbox *box,
    int source_width, int source_height, LensDetection **out, int *n_out,
    LensError *err);
/* Class-aware NMS in place over @dets (sorted by score on return). */
void lens_nms (LensDetection *dets, int *n, float iou_threshold,
    int max_detections);
float lens_iou (const LensDetection *a, const LensDetection *b);

/* ---- detector: model + pre-processing + decoding + feature maps ----------- */

typedef struct
{
  const char *model_path;
  const char *labels_path;      /* NULL: model metadata names */
  LensFamily family;            /* LENS_FAMILY_UNKNOWN: auto */
  float conf_threshold;         /* <= 0: 0.25 */
  float iou_threshold;          /* <= 0: 0.45 */
  int max_detections;           /* <= 0: 300 */
  /* Feature-map tensors to expose, one per scale, finest first, separated
   * by commas; NULL or "": auto-selected for the family. */
  const char *feature_tensors;
  gboolean feature_maps;        /* compute heatmaps on every run */
  /* With feature_maps: host copies of the first this-many channels of
   * every feature map (LensFeatureMap.channels); 0: none. Per detector
   * (lens_detector_set_feature_channels), not shared with the model. */
  int feature_channels;
} LensDetectorOptions;

void lens_detector_options_init (LensDetectorOptions *options);

/* One detection scale's feature map and its heatmaps (host copies). */
typedef struct
{
  char *tensor_name;
  int ndim;
  int64_t shape[LENS_MAX_DIMS];
  int stride;                   /* input pixels per cell */
  int width, height;            /* cells */
  float *activation;            /* width*height: channel mean of |x| */
  float *score;                 /* width*height: confidence in 0..1 (max
                                 * class score, or objectness where the
                                 * family's classes are unreliable alone;
                                 * see cl/detector.c), or NULL where the
                                 * family has none */
  char *score_tensor_name;      /* the tensor @score comes from, or NULL */
  int n_channels;               /* channels copied (feature_channels) */
  float *channels;              /* n_channels*height*width, channel-major:
                                 * the map's first channels as computed,
                                 * or NULL */
} LensFeatureMap;

typedef struct
{
  int source_width, source_height;
  LensLetterbox letterbox;
  int n_detections;
  LensDetection *detections;
  int n_feature_maps;
  LensFeatureMap *feature_maps;
  double inference_ms;          /* upload to outputs on the host */
} LensDetectorResult;

typedef struct _LensDetector LensDetector;

/* Loads the model on @ctx's device, picks the family, labels, input size
 * and pre-processing (per family: Ultralytics RGB/255 centered letterbox,
 * YOLOX BGR 0-255 top-left, NanoDet BGR mean/std centered letterbox,
 * FastestDet BGR/255 stretch) and, when options->feature_maps, the
 * feature-map tensors (the rules are at the top of cl/detector.c); without
 * it results have no feature maps. @ctx must outlive every detector of
 * the model. One detector per stream or thread (each has its own queue);
 * detectors of one model may share it through lens_detector_new_shared. */
LensStatus lens_detector_new (LensContext *ctx,
    const LensDetectorOptions *options, LensDetector **out, LensError *err);
void lens_detector_free (LensDetector *det);
/* A second detector on the same loaded model (weights, configuration and
 * feature-map choice shared; its own execution context and
 * pre-processor). The model is freed with the last of its detectors. */
LensStatus lens_detector_new_shared (LensDetector *like, LensDetector **out,
    LensError *err);
const LensDecodeConfig *lens_detector_config (const LensDetector *det);
/* Changes this detector's confidence and NMS thresholds (values <= 0 keep
 * the current one); detectors sharing a model keep their own. */
void lens_detector_set_thresholds (LensDetector *det, float conf_threshold,
    float iou_threshold);
const LensModel *lens_detector_model (const LensDetector *det);
/* How many channels of each feature map this detector copies to the host
 * per run (LensDetectorOptions.feature_channels); no effect on a model
 * loaded without feature maps. */
void lens_detector_set_feature_channels (LensDetector *det, int n);
/* Runs one frame: pre-processing on the device, inference, decoding and
 * (when enabled) heatmaps. Fills @result (clear it with
 * lens_detector_result_clear). */
LensStatus lens_detector_run (LensDetector *det, const LensFrame *frame,
    LensDetectorResult *result, LensError *err);
void lens_detector_result_clear (LensDetectorResult *result);
/* A new host tensor with the model input of the last lens_detector_run:
 * float32 [1,3,H,W] exactly as pre-processing wrote it and the model
 * computed on (float32 also where the model declares float16), to check
 * or replay it elsewhere. Blocking. */
LensStatus lens_detector_get_input (LensDetector *det, LensTensor **out,
    LensError *err);

/* ---- motion: frame differencing on a Gaussian pyramid ------------------- */

/* The motion engine (lensdetect mode=motion; no model). Per frame, on the
 * device: luma, a Gaussian pyramid (separable 5-tap convolution, halving
 * each level: level k has stride 2^(k+1) source pixels), the difference of
 * each level against a running background (exponential average, so slow
 * changes and sensor noise are absorbed), less the frame's median
 * difference (global brightness changes are not motion), a threshold
 * max (threshold, noise_factor * robust noise sigma of that level), and a
 * 3x3 closing of the detection level's mask. Its 8-connected regions that
 * also changed in the last few frames are the detections (a ghost of the
 * first frame, or an object that stopped, is not motion). The pipeline is
 * described at the top of cl/motion.c. */

#define LENS_MOTION_MAX_LEVELS 8

typedef struct
{
  int levels;                   /* pyramid levels, 1..8; default 3 (strides
                                 * 2, 4, 8) */
  int detect_level;             /* level whose mask gives the detections;
                                 * -1 (default): the coarsest at least 160
                                 * cells wide (stride 8 at 1280x720, 4 at
                                 * 640x360), so people stay apart */
  float threshold;              /* least |difference| that is motion, in
                                 * luma levels (0..255); default 12 */
  float noise_factor;           /* the threshold is at least this many
                                 * robust noise sigmas; default 5 */
  float background_rate;        /* background update per frame where
                                 * still, (0, 1]; default 0.05 */
  float foreground_rate;        /* where the scene differs from the
                                 * background but nothing changes (a ghost
                                 * of the first frame, an object that
                                 * stopped): how fast it fades into the
                                 * background, [0, 1]; default 0.03. Where
                                 * something moves it is frozen. */
  int min_area;                 /* least region box area, source pixels;
                                 * default 256 */
  int max_detections;           /* default 100 */
} LensMotionOptions;

void lens_motion_options_init (LensMotionOptions *options);

/* One engine per stream (not thread-safe); it keeps the background. */
typedef struct _LensMotion LensMotion;

/* @options NULL: the defaults. Refuses out-of-range options. */
LensStatus lens_motion_new (LensContext *ctx,
    const LensMotionOptions *options, LensMotion **out, LensError *err);
void lens_motion_free (LensMotion *motion);
const LensMotionOptions *lens_motion_options (const LensMotion *motion);
/* Forgets the background: the next frame starts the stream again (as a
 * new frame size or pixel format does by itself). */
void lens_motion_reset (LensMotion *motion);
/* Runs one frame (any LensFrame format; only its luma is used) and waits
 * for it. Fills @result (clear it with lens_detector_result_clear):
 * detections with class_id 0 ("motion"), score = the region's mean motion
 * strength in 0..1, boxes in source pixels; one feature map per level,
 * finest first, named "motion-STRIDE", with activation = |difference| in
 * luma levels and score = the strength (|difference| / (4 * threshold),
 * at most 1); inference_ms = the whole call. The first frame of a stream
 * only learns the background and reports no detections. */
LensStatus lens_motion_run (LensMotion *motion, const LensFrame *frame,
    LensDetectorResult *result, LensError *err);

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
/* Every motion kernel (see "motion" above) against its plain-C reference
 * on random data at awkward sizes (1, 3, 7, 13, 97 in each direction, and
 * 321x83): one result per kernel (kernel_ms: wall time of the passed
 * cases); *results is g_new'd: clear each and g_free it. */
LensStatus lens_motion_selftest (LensContext *ctx, guint32 seed,
    LensSelftestResult **results, int *n_results, LensError *err);

/* ---- overlay: drawing boxes, text and heatmaps on frames ----------------- */

typedef enum
{
  LENS_COLORMAP_TURBO,          /* blue, cyan, green, yellow, red */
  LENS_COLORMAP_INFERNO,        /* black, purple, red, orange, pale yellow */
  LENS_COLORMAP_GRAY,
} LensColormap;

/* One pass over one plane: @n_channels bytes per sample at @offsets from
 * the sample's address (base + y * stride + x * step), taking channels
 * @channels (0..2) of the colour; a sample covers @sub x @sub pixels. */
typedef struct
{
  int width, height;            /* samples */
  int base, stride, step, sub;  /* bytes, bytes, bytes, pixels */
  int n_channels;
  int offsets[3];
  int channels[3];
} LensOverlayPass;

/* Where a frame lies in a buffer and how to draw on it. Colours are in
 * the frame's space: 0xRRGGBB for the RGB family, 0xYYUUVV (BT.601
 * limited range) for I420/NV12; lens_overlay_colour converts. */
typedef struct
{
  LensPixelFormat format;
  int width, height;
  gboolean yuv;
  int n_passes;
  LensOverlayPass passes[2];
  size_t size;                  /* bytes the frame spans in the buffer */
} LensOverlayLayout;

/* Fills @layout for a frame of @format; plane p starts at @offsets[p] with
 * rows of @strides[p] bytes (either NULL: planes packed tightly, in order,
 * rows without padding). */
LensStatus lens_overlay_layout_init (LensOverlayLayout *layout,
    LensPixelFormat format, int width, int height, const int *strides,
    const size_t *offsets, LensError *err);
/* The colour (0xRRGGBB) boxes of class @class_id are drawn in: a fixed
 * palette, so a class looks the same in every element, page and image. */
guint32 lens_overlay_class_colour (int class_id);
/* @rgb (0xRRGGBB) in @layout's colour space. */
guint32 lens_overlay_colour (const LensOverlayLayout *layout, guint32 rgb);

/* A rectangle [x0,x1) x [y0,y1) of frame pixels: solid @fg when @glyph is
 * -1, else character @glyph of the built-in font in cells of 6x8 * @scale
 * pixels (set bits @fg, the others @bg; @bg -1 leaves them). Later
 * primitives cover earlier ones. */
typedef struct
{
  int x0, y0, x1, y1;
  gint32 fg, bg;
  int glyph, scale;
} LensOverlayPrim;

#define LENS_OVERLAY_GLYPH_W 6
#define LENS_OVERLAY_GLYPH_H 8

/* The 4 primitives of a box outline @thickness pixels wide inside
 * (x, y, w, h) into @out; returns 4. */
int lens_overlay_box (LensOverlayPrim *out, int x, int y, int w, int h,
    int thickness, guint32 colour);
/* One primitive per character of @text (at most @max) at (x, y); lower
 * case is drawn as upper case, characters the font lacks as '?'. Returns
 * the number written. */
int lens_overlay_text (LensOverlayPrim *out, int max, int x, int y,
    const char *text, int scale, guint32 fg, gint32 bg);

/* A heatmap grid and where it lies on the frame: cell (i, j) covers model
 * input pixels [i*stride, (i+1)*stride); frame x = (input x - pad_x) /
 * scale_x. Values map linearly from [lo, hi] to the colormap. */
typedef struct
{
  const float *grid;
  int width, height;
  float stride;
  float scale_x, scale_y, pad_x, pad_y;
  float lo, hi;
} LensOverlayHeatmap;

/* @colormap as 256 colours (4 bytes each, the 4th 0) in the space of a
 * yuv or RGB frame. */
void lens_overlay_colormap_lut (LensColormap colormap, gboolean yuv,
    guint8 lut[256 * 4]);

typedef struct _LensOverlay LensOverlay;

LensStatus lens_overlay_new (LensContext *ctx, LensOverlay **out,
    LensError *err);
void lens_overlay_free (LensOverlay *ov);
/* Blends @heatmap (bilinear, colormapped) over the frame in @frame with
 * weight @alpha. The grid is copied before return; the work is enqueued
 * on @ov's context. */
LensStatus lens_overlay_heatmap (LensOverlay *ov, cl_mem frame,
    const LensOverlayLayout *layout, const LensOverlayHeatmap *heatmap,
    LensColormap colormap, float alpha, LensError *err);
/* Draws @prims in order. They are copied before return. */
LensStatus lens_overlay_draw (LensOverlay *ov, cl_mem frame,
    const LensOverlayLayout *layout, const LensOverlayPrim *prims, int n,
    LensError *err);
/* The plain-C references of both, on a frame in host memory. */
void lens_overlay_heatmap_ref (guint8 *frame, const LensOverlayLayout *layout,
    const LensOverlayHeatmap *heatmap, LensColormap colormap, float alpha);
void lens_overlay_draw_ref (guint8 *frame, const LensOverlayLayout *layout,
    const LensOverlayPrim *prims, int n);

G_END_DECLS

#endif /* LENS_H */
