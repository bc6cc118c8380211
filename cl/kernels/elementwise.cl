/* elementwise.cl: the element-wise family (ops/elementwise.c) and Cast
 * (ops/misc.c): binary arithmetic with numpy broadcasting (Add, Sub, Mul,
 * Div, Pow, Mod), the unary activations (Sigmoid, Relu, LeakyRelu,
 * HardSigmoid, HardSwish, Exp, Floor), Clip and Cast.
 *
 * One build option, -DTA=n (an ONNX data type code), sets the element type
 * of the main input and of the output (of the input, for Cast). Everything
 * else is chosen by the kernel's name, so one program per element type
 * serves every op of the family: a float32 graph compiles this file once.
 * Where a second type is involved, one kernel exists per type code:
 * lens_pow_<exponent type> and lens_cast_to_<output type>.
 *
 * Per type code c: LENS_T_c is the storage type, LENS_C_c the type values
 * are computed in (float for float16 and bfloat16), lens_load_c () reads an
 * element. A_T, A_C, LOAD_A, STORE_A are those of TA; A_W is an unsigned
 * type at least as wide, for wrapping integer arithmetic. */

#ifdef cl_khr_fp64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#define LENS_HAS_FP64 1
#endif

/* The C references compute a * b + c in two roundings; a fused multiply-add
 * would differ from them in the last bit (and flip float16 roundings). */
#pragma OPENCL FP_CONTRACT OFF

#ifndef TA
#error "elementwise.cl needs -DTA=<ONNX data type>"
#endif

/* ---- per-type properties, by ONNX code --------------------------------- */

/* kinds: 1 float32, 2 float16, 3 bfloat16, 4 double, 5 signed integer,
 * 6 unsigned integer, 7 bool */
#define LENS_T_1 float
#define LENS_C_1 float
#define LENS_W_1 uint
#define LENS_KIND_1 1
#define LENS_T_2 uchar
#define LENS_C_2 uchar
#define LENS_W_2 uint
#define LENS_KIND_2 6
#define LENS_T_3 char
#define LENS_C_3 char
#define LENS_W_3 uint
#define LENS_KIND_3 5
#define LENS_T_4 ushort
#define LENS_C_4 ushort
#define LENS_W_4 uint
#define LENS_KIND_4 6
#define LENS_T_5 short
#define LENS_C_5 short
#define LENS_W_5 uint
#define LENS_KIND_5 5
#define LENS_T_6 int
#define LENS_C_6 int
#define LENS_W_6 uint
#define LENS_KIND_6 5
#define LENS_T_7 long
#define LENS_C_7 long
#define LENS_W_7 ulong
#define LENS_KIND_7 5
#define LENS_T_9 uchar
#define LENS_C_9 uchar
#define LENS_W_9 uint
#define LENS_KIND_9 7
#define LENS_T_10 half
#define LENS_C_10 float
#define LENS_W_10 uint
#define LENS_KIND_10 2
#define LENS_T_11 double
#define LENS_C_11 double
#define LENS_W_11 ulong
#define LENS_KIND_11 4
#define LENS_T_12 uint
#define LENS_C_12 uint
#define LENS_W_12 uint
#define LENS_KIND_12 6
#define LENS_T_13 ulong
#define LENS_C_13 ulong
#define LENS_W_13 ulong
#define LENS_KIND_13 6
#define LENS_T_16 ushort
#define LENS_C_16 float
#define LENS_W_16 uint
#define LENS_KIND_16 3

#define LENS_PASTE_(a, b) a##b
#define LENS_PASTE(a, b) LENS_PASTE_(a, b)

#define A_T LENS_PASTE (LENS_T_, TA)
#define A_C LENS_PASTE (LENS_C_, TA)
#define A_W LENS_PASTE (LENS_W_, TA)
#define A_KIND LENS_PASTE (LENS_KIND_, TA)

#define A_IS_FLOAT (A_KIND <= 4)
#define A_IS_DOUBLE (A_KIND == 4)
#define A_IS_SIGNED (A_KIND == 5)

#if A_IS_DOUBLE && !defined(LENS_HAS_FP64)
#error "float64 tensors need the cl_khr_fp64 extension"
#endif

/* the float type of float formulas: double for float64 tensors */
#if A_IS_DOUBLE
#define A_F double
#else
#define A_F float
#endif

/* the widest float: where integers meet floats (Pow, Cast) */
#ifdef LENS_HAS_FP64
#define LENS_WIDE double
#else
#define LENS_WIDE float
#endif

/* ---- loads and stores ------------------------------------------------------ */

#define LENS_PLAIN_LOAD(c) \
inline LENS_C_##c \
lens_load_##c (__global const LENS_T_##c * p, int i) \
{ \
  return p[i]; \
}

LENS_PLAIN_LOAD (1)
LENS_PLAIN_LOAD (2)
LENS_PLAIN_LOAD (3)
LENS_PLAIN_LOAD (4)
LENS_PLAIN_LOAD (5)
LENS_PLAIN_LOAD (6)
LENS_PLAIN_LOAD (7)
LENS_PLAIN_LOAD (9)
LENS_PLAIN_LOAD (12)
LENS_PLAIN_LOAD (13)
#ifdef LENS_HAS_FP64
LENS_PLAIN_LOAD (11)
#endif

inline float
lens_load_10 (__global const half * p, int i)
{
  return vload_half (i, p);
}

inline float
lens_load_16 (__global const ushort * p, int i)
{
  return as_float ((uint) p[i] << 16);
}

/* float32 to bfloat16 by truncation (the bits ONNX 1.12's test data holds
 * for Cast), keeping NaN a quiet NaN */
inline ushort
lens_bfloat16_truncate (float v)
{
  uint bits = as_uint (v);

  if ((bits & 0x7fffffffu) > 0x7f800000u)
    return (ushort) ((bits >> 16) | 0x40u);
  return (ushort) (bits >> 16);
}

#define LOAD_A(p, i) LENS_PASTE (lens_load_, TA) ((p), (i))

#if A_KIND == 2
#define STORE_A(p, i, v) vstore_half_rte ((v), (i), (p))
#elif A_KIND == 3
#define STORE_A(p, i, v) ((p)[i] = lens_bfloat16_truncate ((float) (v)))
#else
#define STORE_A(p, i, v) ((p)[i] = (A_T) (v))
#endif

/* ---- index helpers ------------------------------------------------------ */

/* Offsets into a and b of output element @i, over the last @rank of the
 * 8 collapsed dimensions (broadcast dimensions have stride 0). Same-shape
 * and scalar operands collapse to rank 1, which needs no division. */
inline void
lens_broadcast_offsets (int i, int rank, int8 shape, int8 a_strides,
    int8 b_strides, int *ia, int *ib)
{
  int dims[8], sa[8], sb[8];
  int rem = i, oa = 0, ob = 0;

  if (rank <= 1) {
    *ia = i * a_strides.s7;
    *ib = i * b_strides.s7;
    return;
  }
  vstore8 (shape, 0, dims);
  vstore8 (a_strides, 0, sa);
  vstore8 (b_strides, 0, sb);
  for (int d = 7; d >= 8 - rank; d--) {
    int c = rem % dims[d];
    rem /= dims[d];
    oa += c * sa[d];
    ob += c * sb[d];
  }
  *ia = oa;
  *ib = ob;
}

/* float-to-integer conversions as numpy does them on the usual hardware:
 * through int64, truncating toward zero; NaN gives 0, out of range
 * INT64_MIN */
inline long
lens_float_to_long (LENS_WIDE v)
{
  if (isnan (v))
    return 0;
  if (v >= (LENS_WIDE) 9223372036854775808.0 ||
      v < (LENS_WIDE) -9223372036854775808.0)
    return (long) 0x8000000000000000ul;
  return (long) v;
}

inline ulong
lens_float_to_ulong (LENS_WIDE v)
{
  if (v >= (LENS_WIDE) 9223372036854775808.0 &&
      v < (LENS_WIDE) 18446744073709551616.0)
    return (ulong) v;
  return (ulong) lens_float_to_long (v);
}

/* ---- binary operators: y = op (a, b), all of type TA ------------------------ */

/* Integer arithmetic wraps around, as numpy's does: it is done in an
 * unsigned type, where overflow is defined. */
inline A_C
lens_op_add (A_C a, A_C b)
{
#if A_IS_FLOAT
  return a + b;
#else
  return (A_C) ((A_W) a + (A_W) b);
#endif
}

inline A_C
lens_op_sub (A_C a, A_C b)
{
#if A_IS_FLOAT
  return a - b;
#else
  return (A_C) ((A_W) a - (A_W) b);
#endif
}

inline A_C
lens_op_mul (A_C a, A_C b)
{
#if A_IS_FLOAT
  return a * b;
#else
  return (A_C) ((A_W) a * (A_W) b);
#endif
}

/* Integers divide truncating toward zero, like C; x / 0 gives 0 and
 * MIN / -1 wraps to MIN, where hardware would trap. */
inline A_C
lens_op_div (A_C a, A_C b)
{
#if A_IS_FLOAT
  return a / b;
#else
  if (b == 0)
    return 0;
#if A_IS_SIGNED
  if (b == -1)
    return (A_C) ((A_W) 0 - (A_W) a);
#endif
  return a / b;
#endif
}

/* C's fmod: the remainder has the sign of the dividend. */
inline A_C
lens_op_fmod (A_C a, A_C b)
{
#if A_IS_FLOAT
  return fmod (a, b);
#else
  if (b == 0)
    return 0;
#if A_IS_SIGNED
  if (b == -1)
    return 0;
#endif
  return a % b;
#endif
}

/* Python's %: the remainder has the sign of the divisor (integers only;
 * ONNX requires fmod=1 for floats). */
inline A_C
lens_op_mod (A_C a, A_C b)
{
  A_C r = lens_op_fmod (a, b);

#if A_IS_SIGNED
  if (r != 0 && ((r < 0) != (b < 0)))
    r = (A_C) ((A_W) r + (A_W) b);
#endif
  return r;
}

/* One kernel per op, over the output's elements, with the collapsed
 * shape and the broadcast strides of both inputs. @BC is the type code
 * of b. */
#define LENS_BINARY_KERNEL(NAME, OP, BC) \
__kernel void \
lens_##NAME (__global const A_T * a, \
    __global const LENS_PASTE (LENS_T_, BC) * b, __global A_T * y, int n, \
    int rank, int8 shape, int8 a_strides, int8 b_strides) \
{ \
  int i = get_global_id (0), ia, ib; \
  if (i >= n) \
    return; \
  lens_broadcast_offsets (i, rank, shape, a_strides, b_strides, &ia, &ib); \
  STORE_A (y, i, OP (LOAD_A (a, ia), LENS_PASTE (lens_load_, BC) (b, ib))); \
}

LENS_BINARY_KERNEL (add, lens_op_add, TA)
LENS_BINARY_KERNEL (sub, lens_op_sub, TA)
LENS_BINARY_KERNEL (mul, lens_op_mul, TA)
LENS_BINARY_KERNEL (div, lens_op_div, TA)
LENS_BINARY_KERNEL (mod, lens_op_mod, TA)
LENS_BINARY_KERNEL (fmod, lens_op_fmod, TA)

/* ---- Pow: base of type TA, exponent of any type, output the base's ------- */

#if !A_IS_FLOAT
/* a ** e for an integer base and a non-negative integer exponent, by
 * squaring, wrapping like the other integer ops */
inline A_C
lens_int_pow (A_C a, ulong e)
{
  A_W result = 1, base = (A_W) a;

  while (e != 0) {
    if (e & 1)
      result *= base;
    base *= base;
    e >>= 1;
  }
  return (A_C) result;
}

/* a ** e for a negative exponent, truncated toward zero: only 1 and -1
 * have a magnitude of at least 1 */
inline A_C
lens_int_pow_negative (A_C a, int odd)
{
  if (a == 1)
    return 1;
#if A_IS_SIGNED
  if (a == -1)
    return odd ? -1 : 1;
#endif
  return 0;
}
#endif

/* One function per class of exponent type. */
inline A_C
lens_pow_float_exponent (A_C a, LENS_WIDE e)
{
#if A_IS_FLOAT
  return pow (a, (A_C) e);
#else
  /* numpy computes in float64 and truncates; integral exponents take the
   * exact integer path instead */
  if (e == floor (e) && fabs (e) < (LENS_WIDE) 9.0e18) {
    long n = (long) e;
    if (n >= 0)
      return lens_int_pow (a, (ulong) n);
    return lens_int_pow_negative (a, (int) (n & 1));
  }
  return (A_C) lens_float_to_long (pow ((LENS_WIDE) a, e));
#endif
}

inline A_C
lens_pow_signed_exponent (A_C a, long e)
{
#if A_IS_FLOAT
  return pow (a, (A_C) e);
#else
  if (e < 0)
    return lens_int_pow_negative (a, (int) (e & 1));
  return lens_int_pow (a, (ulong) e);
#endif
}

inline A_C
lens_pow_unsigned_exponent (A_C a, ulong e)
{
#if A_IS_FLOAT
  return pow (a, (A_C) e);
#else
  return lens_int_pow (a, e);
#endif
}

#define LENS_POW_1 lens_pow_float_exponent
#define LENS_POW_2 lens_pow_unsigned_exponent
#define LENS_POW_3 lens_pow_signed_exponent
#define LENS_POW_4 lens_pow_unsigned_exponent
#define LENS_POW_5 lens_pow_signed_exponent
#define LENS_POW_6 lens_pow_signed_exponent
#define LENS_POW_7 lens_pow_signed_exponent
#define LENS_POW_10 lens_pow_float_exponent
#define LENS_POW_11 lens_pow_float_exponent
#define LENS_POW_12 lens_pow_unsigned_exponent
#define LENS_POW_13 lens_pow_unsigned_exponent
#define LENS_POW_16 lens_pow_float_exponent

#define LENS_POW_KERNEL(c) \
inline A_C \
lens_op_pow_##c (A_C a, LENS_C_##c e) \
{ \
  return LENS_POW_##c (a, e); \
} \
LENS_BINARY_KERNEL (pow_##c, lens_op_pow_##c, c)

LENS_POW_KERNEL (1)
LENS_POW_KERNEL (2)
LENS_POW_KERNEL (3)
LENS_POW_KERNEL (4)
LENS_POW_KERNEL (5)
LENS_POW_KERNEL (6)
LENS_POW_KERNEL (7)
LENS_POW_KERNEL (10)
LENS_POW_KERNEL (12)
LENS_POW_KERNEL (13)
LENS_POW_KERNEL (16)
#ifdef LENS_HAS_FP64
LENS_POW_KERNEL (11)
#endif

/* ---- unary operators: y = f (x), x and y of type TA ------------------------ */

#define LENS_UNARY_KERNEL(NAME, EXPR) \
__kernel void \
lens_##NAME (__global const A_T * x, __global A_T * y, int n, float alpha, \
    float beta) \
{ \
  int i = get_global_id (0); \
  A_C v; \
  if (i >= n) \
    return; \
  v = LOAD_A (x, i); \
  STORE_A (y, i, (EXPR)); \
}

/* float formulas, in double for float64 tensors */
#define LENS_FV ((A_F) v)
#define LENS_ALPHA ((A_F) alpha)
#define LENS_BETA ((A_F) beta)

LENS_UNARY_KERNEL (relu, v < 0 ? (A_C) 0 : v)
LENS_UNARY_KERNEL (leaky_relu, LENS_FV >= 0 ? LENS_FV : LENS_FV * LENS_ALPHA)
#if A_IS_DOUBLE
LENS_UNARY_KERNEL (sigmoid, (A_F) 1 / ((A_F) 1 + exp (-LENS_FV)))
#else
LENS_UNARY_KERNEL (sigmoid, lens_logistic (LENS_FV))
#endif
LENS_UNARY_KERNEL (hard_sigmoid,
    fmin (fmax (LENS_ALPHA * LENS_FV + LENS_BETA, (A_F) 0), (A_F) 1))
LENS_UNARY_KERNEL (hard_swish, LENS_FV * fmin (fmax (LENS_FV / (A_F) 6 +
            (A_F) 0.5, (A_F) 0), (A_F) 1))
LENS_UNARY_KERNEL (exp, exp (LENS_FV))
LENS_UNARY_KERNEL (floor, floor (LENS_FV))

/* ---- Clip -------------------------------------------------------------------- */

#define LENS_CLIP_HAS_MIN 1     /* a lower bound applies ... */
#define LENS_CLIP_MIN_BUFFER 2  /* ... read from min_value[0], else min_attr */
#define LENS_CLIP_HAS_MAX 4
#define LENS_CLIP_MAX_BUFFER 8

/* The bounds are read on the device, so a bound computed by an earlier
 * kernel needs no host round trip. NaN inputs stay NaN, as in numpy. */
__kernel void
lens_clip (__global const A_T * x, __global A_T * y, int n,
    __global const A_T * min_value, __global const A_T * max_value,
    int flags, float min_attr, float max_attr)
{
  int i = get_global_id (0);
  A_C v;

  if (i >= n)
    return;
  v = LOAD_A (x, i);
  if (flags & LENS_CLIP_HAS_MIN) {
    A_C lo = (flags & LENS_CLIP_MIN_BUFFER) ? LOAD_A (min_value, 0) :
        (A_C) min_attr;
    v = v < lo ? lo : v;
  }
  if (flags & LENS_CLIP_HAS_MAX) {
    A_C hi = (flags & LENS_CLIP_MAX_BUFFER) ? LOAD_A (max_value, 0) :
        (A_C) max_attr;
    v = v > hi ? hi : v;
  }
  STORE_A (y, i, v);
}

/* ---- Cast: y (type c) = x (type TA), numpy's astype ------------------------- */

/* float to integer truncates through int64; integers keep their low bits */
#if A_IS_FLOAT
#define LENS_TO_INTEGER(v) lens_float_to_long ((LENS_WIDE) (v))
#define LENS_TO_UINT64(v) lens_float_to_ulong ((LENS_WIDE) (v))
#else
#define LENS_TO_INTEGER(v) (v)
#define LENS_TO_UINT64(v) (v)
#endif

#define LENS_CAST_TO_INTEGER(c) \
inline void \
lens_cast_store_##c (__global LENS_T_##c * p, int i, A_C v) \
{ \
  p[i] = (LENS_T_##c) LENS_TO_INTEGER (v); \
}

LENS_CAST_TO_INTEGER (2)
LENS_CAST_TO_INTEGER (3)
LENS_CAST_TO_INTEGER (4)
LENS_CAST_TO_INTEGER (5)
LENS_CAST_TO_INTEGER (6)
LENS_CAST_TO_INTEGER (7)
LENS_CAST_TO_INTEGER (12)

inline void
lens_cast_store_13 (__global ulong * p, int i, A_C v)
{
  p[i] = (ulong) LENS_TO_UINT64 (v);
}

/* integers convert to float in one rounding, never through double */
inline void
lens_cast_store_1 (__global float *p, int i, A_C v)
{
  p[i] = (float) v;
}

inline void
lens_cast_store_9 (__global uchar * p, int i, A_C v)
{
  p[i] = v != 0 ? 1 : 0;
}

/* vstore_half_rte rounds once from float or from double */
inline void
lens_cast_store_10 (__global half * p, int i, A_C v)
{
#if A_IS_DOUBLE
  vstore_half_rte (v, i, p);
#else
  vstore_half_rte ((float) v, i, p);
#endif
}

inline void
lens_cast_store_16 (__global ushort * p, int i, A_C v)
{
  p[i] = lens_bfloat16_truncate ((float) v);
}

#ifdef LENS_HAS_FP64
inline void
lens_cast_store_11 (__global double *p, int i, A_C v)
{
  p[i] = (double) v;
}
#endif

#define LENS_CAST_KERNEL(c) \
__kernel void \
lens_cast_to_##c (__global const A_T * x, __global LENS_T_##c * y, int n) \
{ \
  int i = get_global_id (0); \
  if (i >= n) \
    return; \
  lens_cast_store_##c (y, i, LOAD_A (x, i)); \
}

LENS_CAST_KERNEL (1)
LENS_CAST_KERNEL (2)
LENS_CAST_KERNEL (3)
LENS_CAST_KERNEL (4)
LENS_CAST_KERNEL (5)
LENS_CAST_KERNEL (6)
LENS_CAST_KERNEL (7)
LENS_CAST_KERNEL (9)
LENS_CAST_KERNEL (10)
LENS_CAST_KERNEL (12)
LENS_CAST_KERNEL (13)
LENS_CAST_KERNEL (16)
#ifdef LENS_HAS_FP64
LENS_CAST_KERNEL (11)
#endif
