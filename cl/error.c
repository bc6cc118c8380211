/* error.c: status codes, error messages, CL error names, data types and
 * half/bfloat16 conversion. */
#include "lens-private.h"

#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#endif

LensStatus
lens_error_set (LensError *err, LensStatus code, const char *format, ...)
{
  va_list args;

  if (err == NULL || err->message != NULL)
    return code;
  va_start (args, format);
  err->message = g_strdup_vprintf (format, args);
  va_end (args);
  err->code = code;
  return code;
}

void
lens_error_prefix (LensError *err, const char *format, ...)
{
  va_list args;
  char *prefix, *joined;

  if (err == NULL || err->message == NULL)
    return;
  va_start (args, format);
  prefix = g_strdup_vprintf (format, args);
  va_end (args);
  joined = g_strconcat (prefix, err->message, NULL);
  g_free (prefix);
  g_free (err->message);
  err->message = joined;
}

void
lens_error_clear (LensError *err)
{
  if (err == NULL)
    return;
  g_clear_pointer (&err->message, g_free);
  err->code = LENS_OK;
}

const char *
lens_status_name (LensStatus code)
{
  switch (code) {
    case LENS_OK: return "ok";
    case LENS_ERROR_CL: return "OpenCL error";
    case LENS_ERROR_BUILD: return "program build failed";
    case LENS_ERROR_NO_DEVICE: return "no OpenCL device";
    case LENS_ERROR_INVALID: return "invalid";
    case LENS_ERROR_UNSUPPORTED: return "unsupported";
    case LENS_ERROR_IO: return "I/O error";
    case LENS_ERROR_PARSE: return "parse error";
    case LENS_ERROR_NOMEM: return "out of memory";
    case LENS_ERROR_UNSUPPORTED_OP: return "unsupported operator";
  }
  return "unknown status";
}

const char *
lens_cl_error_name (cl_int code)
{
#define CASE(x) case x: return #x
  switch (code) {
    CASE (CL_SUCCESS);
    CASE (CL_DEVICE_NOT_FOUND);
    CASE (CL_DEVICE_NOT_AVAILABLE);
    CASE (CL_COMPILER_NOT_AVAILABLE);
    CASE (CL_MEM_OBJECT_ALLOCATION_FAILURE);
    CASE (CL_OUT_OF_RESOURCES);
    CASE (CL_OUT_OF_HOST_MEMORY);
    CASE (CL_PROFILING_INFO_NOT_AVAILABLE);
    CASE (CL_MEM_COPY_OVERLAP);
    CASE (CL_IMAGE_FORMAT_MISMATCH);
    CASE (CL_IMAGE_FORMAT_NOT_SUPPORTED);
    CASE (CL_BUILD_PROGRAM_FAILURE);
    CASE (CL_MAP_FAILURE);
    CASE (CL_MISALIGNED_SUB_BUFFER_OFFSET);
    CASE (CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
    CASE (CL_COMPILE_PROGRAM_FAILURE);
    CASE (CL_LINKER_NOT_AVAILABLE);
    CASE (CL_LINK_PROGRAM_FAILURE);
    CASE (CL_DEVICE_PARTITION_FAILED);
    CASE (CL_KERNEL_ARG_INFO_NOT_AVAILABLE);
    CASE (CL_INVALID_VALUE);
    CASE (CL_INVALID_DEVICE_TYPE);
    CASE (CL_INVALID_PLATFORM);
    CASE (CL_INVALID_DEVICE);
    CASE (CL_INVALID_CONTEXT);
    CASE (CL_INVALID_QUEUE_PROPERTIES);
    CASE (CL_INVALID_COMMAND_QUEUE);
    CASE (CL_INVALID_HOST_PTR);
    CASE (CL_INVALID_MEM_OBJECT);
    CASE (CL_INVALID_IMAGE_FORMAT_DESCRIPTOR);
    CASE (CL_INVALID_IMAGE_SIZE);
    CASE (CL_INVALID_SAMPLER);
    CASE (CL_INVALID_BINARY);
    CASE (CL_INVALID_BUILD_OPTIONS);
    CASE (CL_INVALID_PROGRAM);
    CASE (CL_INVALID_PROGRAM_EXECUTABLE);
    CASE (CL_INVALID_KERNEL_NAME);
    CASE (CL_INVALID_KERNEL_DEFINITION);
    CASE (CL_INVALID_KERNEL);
    CASE (CL_INVALID_ARG_INDEX);
    CASE (CL_INVALID_ARG_VALUE);
    CASE (CL_INVALID_ARG_SIZE);
    CASE (CL_INVALID_KERNEL_ARGS);
    CASE (CL_INVALID_WORK_DIMENSION);
    CASE (CL_INVALID_WORK_GROUP_SIZE);
    CASE (CL_INVALID_WORK_ITEM_SIZE);
    CASE (CL_INVALID_GLOBAL_OFFSET);
    CASE (CL_INVALID_EVENT_WAIT_LIST);
    CASE (CL_INVALID_EVENT);
    CASE (CL_INVALID_OPERATION);
    CASE (CL_INVALID_GL_OBJECT);
    CASE (CL_INVALID_BUFFER_SIZE);
    CASE (CL_INVALID_MIP_LEVEL);
    CASE (CL_INVALID_GLOBAL_WORK_SIZE);
    CASE (CL_INVALID_PROPERTY);
    CASE (CL_INVALID_IMAGE_DESCRIPTOR);
    CASE (CL_INVALID_COMPILER_OPTIONS);
    CASE (CL_INVALID_LINKER_OPTIONS);
    CASE (CL_INVALID_DEVICE_PARTITION_COUNT);
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
  }
#undef CASE
  return "CL_UNKNOWN_ERROR";
}

const char *
lens_cl_call_name (const char *expression)
{
  static GHashTable *names;
  static GMutex lock;
  const char *name;

  /* Interned so callers get a stable string without freeing. */
  g_mutex_lock (&lock);
  if (names == NULL)
    names = g_hash_table_new (g_str_hash, g_str_equal);
  name = g_hash_table_lookup (names, expression);
  if (name == NULL) {
    size_t len = strcspn (expression, " (");
    char *copy = g_strndup (expression, len);
    name = g_intern_string (copy);
    g_free (copy);
    g_hash_table_insert (names, (gpointer) expression, (gpointer) name);
  }
  g_mutex_unlock (&lock);
  return name;
}

size_t
lens_dtype_size (LensDType dtype)
{
  switch (dtype) {
    case LENS_DTYPE_FLOAT: case LENS_DTYPE_INT32: case LENS_DTYPE_UINT32:
      return 4;
    case LENS_DTYPE_UINT8: case LENS_DTYPE_INT8: case LENS_DTYPE_BOOL:
      return 1;
    case LENS_DTYPE_UINT16: case LENS_DTYPE_INT16: case LENS_DTYPE_FLOAT16:
    case LENS_DTYPE_BFLOAT16:
      return 2;
    case LENS_DTYPE_INT64: case LENS_DTYPE_UINT64: case LENS_DTYPE_DOUBLE:
      return 8;
    default:
      return 0;
  }
}

const char *
lens_dtype_name (LensDType dtype)
{
  switch (dtype) {
    case LENS_DTYPE_UNDEFINED: return "undefined";
    case LENS_DTYPE_FLOAT: return "float32";
    case LENS_DTYPE_UINT8: return "uint8";
    case LENS_DTYPE_INT8: return "int8";
    case LENS_DTYPE_UINT16: return "uint16";
    case LENS_DTYPE_INT16: return "int16";
    case LENS_DTYPE_INT32: return "int32";
    case LENS_DTYPE_INT64: return "int64";
    case LENS_DTYPE_STRING: return "string";
    case LENS_DTYPE_BOOL: return "bool";
    case LENS_DTYPE_FLOAT16: return "float16";
    case LENS_DTYPE_DOUBLE: return "float64";
    case LENS_DTYPE_UINT32: return "uint32";
    case LENS_DTYPE_UINT64: return "uint64";
    case LENS_DTYPE_BFLOAT16: return "bfloat16";
  }
  return "unknown";
}

const char *
lens_dtype_cl_type (LensDType dtype)
{
  switch (dtype) {
    case LENS_DTYPE_FLOAT: return "float";
    case LENS_DTYPE_UINT8: return "uchar";
    case LENS_DTYPE_INT8: return "char";
    case LENS_DTYPE_UINT16: return "ushort";
    case LENS_DTYPE_INT16: return "short";
    case LENS_DTYPE_INT32: return "int";
    case LENS_DTYPE_INT64: return "long";
    case LENS_DTYPE_BOOL: return "uchar";
    case LENS_DTYPE_FLOAT16: return "ushort";
    case LENS_DTYPE_DOUBLE: return "double";
    case LENS_DTYPE_UINT32: return "uint";
    case LENS_DTYPE_UINT64: return "ulong";
    case LENS_DTYPE_BFLOAT16: return "ushort";
    default: return NULL;
  }
}

gboolean
lens_dtype_is_float (LensDType dtype)
{
  return dtype == LENS_DTYPE_FLOAT || dtype == LENS_DTYPE_FLOAT16 ||
      dtype == LENS_DTYPE_DOUBLE || dtype == LENS_DTYPE_BFLOAT16;
}

float
lens_half_to_float (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  float f;

  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      /* subnormal: renormalize */
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        exp--;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  memcpy (&f, &bits, 4);
  return f;
}

uint16_t
lens_float_to_half (float f)
{
  uint32_t x, sign, mant;
  int32_t exp;

  memcpy (&x, &f, 4);
  sign = (x >> 16) & 0x8000;
  exp = (int32_t) ((x >> 23) & 0xff) - 127 + 15;
  mant = x & 0x7fffff;

  if (((x >> 23) & 0xff) == 0xff)       /* inf or nan */
    return sign | 0x7c00 | (mant ? 0x200 : 0);
  if (exp >= 31)
    return sign | 0x7c00;
  if (exp <= 0) {
    uint32_t shift, half_bits, rem, halfway;
    if (exp < -10)
      return sign;
    mant |= 0x800000;
    shift = (uint32_t) (14 - exp);
    half_bits = mant >> shift;
    rem = mant & ((1u << shift) - 1);
    halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_bits & 1)))
      half_bits++;
    return sign | half_bits;
  }
  {
    uint32_t h = sign | ((uint32_t) exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    /* carries into the exponent correctly, up to infinity */
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
      h++;
    return (uint16_t) h;
  }
}

float
lens_bfloat16_to_float (uint16_t b)
{
  uint32_t bits = (uint32_t) b << 16;
  float f;

  memcpy (&f, &bits, 4);
  return f;
}

uint16_t
lens_float_to_bfloat16 (float f)
{
  uint32_t x;

  memcpy (&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000)
    return (uint16_t) ((x >> 16) | 0x40);       /* quiet NaN */
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t) (x >> 16);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* F16C (CPUID.1:ECX), whose 256-bit form also needs the OS to save AVX
 * state, which __builtin_cpu_supports ("avx") checks (clang's builtin
 * knows no "f16c") */
static gboolean
cpu_has_f16c (void)
{
  static gint known = -1;
  unsigned int a, b, c, d;

  if (known < 0)
    g_atomic_int_set (&known, __builtin_cpu_supports ("avx")
        && __get_cpuid (1, &a, &b, &c, &d) && (c & bit_F16C) != 0);
  return g_atomic_int_get (&known);
}

/* F16C rounds to nearest even like lens_float_to_half, eight at a time */
__attribute__ ((target ("avx,f16c")))
static int64_t
floats_to_halves_f16c (const float *src, uint16_t *dst, int64_t n)
{
  int64_t i = 0;

  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128 ((__m128i *) (dst + i),
        _mm256_cvtps_ph (_mm256_loadu_ps (src + i), _MM_FROUND_TO_NEAREST_INT));
  return i;
}
#endif

void
lens_floats_to_halves (const float *src, uint16_t *dst, int64_t n)
{
  int64_t i = 0;

#if defined(__x86_64__) && defined(__GNUC__)
  /* a model's float16 outputs pass here on every inference: 340k values
   * for YOLOv5n at 256, half a millisecond one by one */
  if (cpu_has_f16c ())
    i = floats_to_halves_f16c (src, dst, n);
#endif
  for (; i < n; i++)
    dst[i] = lens_float_to_half (src[i]);
}
