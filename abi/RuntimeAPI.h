#pragma once
// The C entry points of the runtime shared library. The `unrollc` driver
// loads the library with dlopen only for commands that run programs, so that
// checking and compiling never pay LibTorch's start-up cost, and so that a
// machine without MLIR/Halide can build and use the runtime on its own.

#define UNROLL_RUNTIME_API __attribute__((visibility("default")))

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Largest tensor rank passed to a generated kernel (batch axis included).
#define UNROLL_MAX_RANK 8

/// A float32 tensor crossing the C boundary: row-major sizes and strides
/// in elements (stride 0 along broadcast axes).
typedef struct unroll_tensor {
  float *data;
  int32_t rank;
  int64_t sizes[UNROLL_MAX_RANK];
  int64_t strides[UNROLL_MAX_RANK];
} unroll_tensor;

/// `operand` value asking a kernel for its value.
#define UNROLL_KERNEL_VALUE (-1)
/// `operand` value asking a kernel for every operand's adjoint in one pass:
/// `out` then points to `n_operands` tensors, one per operand.
#define UNROLL_KERNEL_ALL_ADJOINTS (-2)

/// Runs generated kernel number `kernel` (the plan's "kernel" of a fused
/// op): with `operand` UNROLL_KERNEL_VALUE its value; with `operand` >= 0
/// the adjoint of that operand given the result's adjoint `dresult`; with
/// UNROLL_KERNEL_ALL_ADJOINTS all of them. Operands, `dresult` and `out`
/// all have the result's full shape (batch first); `out` is dense. Returns
/// 0, or non-zero with a NUL-terminated message in `err`.
typedef int (*unroll_kernel_fn)(void *ctx, int64_t kernel, int32_t operand,
                                const unroll_tensor *operands,
                                int32_t n_operands,
                                const unroll_tensor *dresult,
                                const unroll_tensor *out, char *err,
                                int32_t err_size);

/// One Adam step's constants for unroll_adam_fn; t is the step number
/// (from 1), the bias corrections are the caller's.
typedef struct unroll_adam_step {
  float step_size;  ///< lr / (1 - beta1^t)
  float bias2_sqrt; ///< sqrt(1 - beta2^t)
  float beta1, beta2, eps, weight_decay;
  /// 1 - beta1 and 1 - beta2, rounded from double as LibTorch's are (in
  /// float, 1 - 0.999f is 1.3e-5 off relative).
  float one_minus_beta1, one_minus_beta2;
} unroll_adam_step;

/// Adam's update (LibTorch's, without amsgrad) of every element of the
/// dense rank-1 `param`, in place, with its moments `exp_avg` and
/// `exp_avg_sq` (updated in place) and gradient `grad`, all of one length.
/// Returns 0, or non-zero with a message in `err`.
typedef int (*unroll_adam_fn)(void *ctx, const unroll_tensor *param,
                              const unroll_tensor *grad,
                              const unroll_tensor *exp_avg,
                              const unroll_tensor *exp_avg_sq,
                              const unroll_adam_step *h, char *err,
                              int32_t err_size);

/// One draw for unroll_noise_fn: `out` = shift + scale * z, z standard
/// normal (`normal` = 1) or uniform in [0, 1) (`normal` = 0).
typedef struct unroll_noise_draw {
  int32_t normal;
  float shift, scale;
} unroll_noise_draw;

/// Turns `words`, 32-bit words of LibTorch's CPU generator in the order it
/// made them, into the draws torch::randn or torch::rand would make of them
/// for the dense rank-1 `out`, shifted and scaled (see unroll_noise_draw):
/// uniform, one word per element; normal (at least 16 elements),
/// LibTorch's Box-Muller transform of each group of 16 words, with 16 more
/// words for the last 16 elements where the length is not a multiple of
/// 16. `words` is dense rank 1 and holds the words' bits (not float
/// values). Returns 0, or non-zero with a message in `err`.
typedef int (*unroll_noise_fn)(void *ctx, const unroll_tensor *words,
                               const unroll_tensor *out,
                               const unroll_noise_draw *h, char *err,
                               int32_t err_size);

/// How many words unroll_noise_fn reads for an `out` of `n` elements: one
/// per element, and for a normal draw whose length is not a multiple of 16,
/// 16 more (torch::randn draws its last 16 elements again from them).
static inline int64_t unroll_noise_words(int32_t normal, int64_t n) {
  return normal && n % 16 ? n + 16 : n;
}

/// Where a kernel's tensors live: host memory, or CUDA device memory (the
/// `data` pointers of unroll_tensor are then device pointers).
#define UNROLL_KERNELS_CPU 0
#define UNROLL_KERNELS_CUDA 1

/// Compiled kernels for the fused ops of a program; a null pointer where
/// one is expected means eager LibTorch execution of the fused bodies.
/// `adam` may be null (then LibTorch's Adam is used), and so may `noise`
/// (then LibTorch draws the noise). `device` is
/// UNROLL_KERNELS_CPU or UNROLL_KERNELS_CUDA: the runtime keeps the tensors
/// there.
typedef struct unroll_kernels {
  unroll_kernel_fn run;
  void *ctx;
  unroll_adam_fn adam;
  unroll_noise_fn noise;
  int32_t device;
} unroll_kernels;

/// A kernel library written by `unrollc compile` (a shared object that the
/// runtime loads, so that a machine without MLIR and Halide runs generated
/// kernels): its exported function UNROLL_KERNEL_LIBRARY_SYMBOL returns
/// this description, valid while the library is loaded.
typedef struct unroll_kernel_library {
  /// UNROLL_RUNTIME_ABI_VERSION of the compiler that wrote it.
  int32_t abi_version;
  /// The program it was generated from (runtime's plan hash, hex).
  const char *plan_hash;
  /// The Halide target it was compiled for ("x86-64-linux-avx2-...").
  const char *target;
  unroll_kernels kernels;
} unroll_kernel_library;

/// The name of a kernel library's entry point, of type
/// `const unroll_kernel_library *(*)(void)`.
#define UNROLL_KERNEL_LIBRARY_SYMBOL "unroll_kernel_library_get"

/// Version of this C interface; the driver refuses a library with another.
#define UNROLL_RUNTIME_ABI_VERSION 9
UNROLL_RUNTIME_API int unroll_runtime_abi_version(void);

/// Writes a NUL-terminated description of the LibTorch in use (after
/// exercising it once) into `buf` of `size` bytes; returns the length it
/// needed, excluding the NUL.
UNROLL_RUNTIME_API int unroll_runtime_describe(char *buf, int size);

/// The number of CUDA devices the runtime's LibTorch can use: 0 when it
/// was built without CUDA or sees no GPU.
UNROLL_RUNTIME_API int unroll_runtime_cuda_devices(void);

/// `unrollc train`: trains the plan (JSON text) into a run directory.
/// `options_json` holds run_dir, resume, spec, settings, cache_dir,
/// interactive, device, kernel_library and tool (see runtime/Run.h); `kernels`
/// runs the fused ops (null: eagerly). Progress goes to stderr. Returns the
/// exit status: 0 done, 1 error (message in `err`, NUL-terminated, truncated to
/// `err_size`), 130 interrupted with the last checkpoint kept.
UNROLL_RUNTIME_API int unroll_runtime_train(const char *plan_json,
                                            const char *options_json,
                                            const unroll_kernels *kernels,
                                            char *err, int err_size);

/// `unrollc eval`: `options_json` holds run_dir, ood, perturb, baseline,
/// cache_dir, device and kernel_library. Same conventions as
/// unroll_runtime_train; both load the kernel library `kernel_library`
/// names when `kernels` is null.
UNROLL_RUNTIME_API int unroll_runtime_eval(const char *options_json,
                                           const unroll_kernels *kernels,
                                           char *err, int err_size);

/// Receives one parameter tensor: its checkpoint name ("param.Wu.3"),
/// row-major sizes and dense float32 data (valid during the call).
typedef void (*unroll_param_fn)(void *ctx, const char *name, int32_t rank,
                                const int64_t *sizes, const float *data);

/// `unrollc export`: reads the best checkpoint of the run in `run_dir`,
/// checked against the run's plan.json, and passes every parameter to `fn`,
/// then each given value the run recorded as "given.NAME".
/// Returns 0, or 1 with a message in `err`.
UNROLL_RUNTIME_API int unroll_runtime_read_params(const char *run_dir,
                                                  unroll_param_fn fn, void *ctx,
                                                  char *err, int err_size);

#ifdef __cplusplus
}
#endif
