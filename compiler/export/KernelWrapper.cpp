// The model-independent part of the C++ wrapper that `unrollc compile`
// puts around a program's Halide kernels (compiler/export/KernelLibrary.cpp
// writes the rest): tensors as Halide buffers (host or wrapped device
// pointers), errors into the caller's buffer, parallel loops on OpenMP's
// pool (LibTorch's), and on CUDA the context of the device that holds the
// data (LibTorch's primary context) on the default stream, which LibTorch's
// ops use too. Embedded in unrollc as text and compiled into every kernel
// library after `#define UNROLL_CUDA 0|1` and the runtime's C interface;
// the `kernel-wrapper` test compiles it on its own.
#include <HalideRuntime.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#if UNROLL_CUDA
#include <HalideRuntimeCuda.h>
#include <dlfcn.h>
#else
#include <omp.h>
#endif

namespace {

thread_local char *errOut = nullptr;
thread_local int32_t errSize = 0;

void onError(void *, const char *msg) {
  if (errOut && errSize > 0)
    std::snprintf(errOut, static_cast<size_t>(errSize), "%s", msg);
}

int fail(const char *what) {
  onError(nullptr, what);
  return 1;
}

/// Where a call's errors go, for its duration.
struct Call {
  Call(char *err, int32_t size) {
    errOut = err;
    errSize = size;
    if (err && size > 0)
      err[0] = '\0';
  }
  ~Call() { errOut = nullptr; }
};

#if UNROLL_CUDA
using cuInit_t = int (*)(unsigned);
using cuCtxGetCurrent_t = int (*)(void **);
using cuCtxGetDevice_t = int (*)(int *);
using cuPointerGetAttribute_t = int (*)(void *, int, unsigned long long);
using cuDeviceGet_t = int (*)(int *, int);
using cuDevicePrimaryCtxRetain_t = int (*)(void **, int);
const int kPointerDeviceOrdinal = 9; // CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL

thread_local void *callContext = nullptr;

int acquireContext(void *, void **ctx, bool) {
  *ctx = callContext;
  return callContext ? 0 : fail("no CUDA context for the kernel's data");
}
int releaseContext(void *) { return 0; }
int getStream(void *, void *, void **stream) {
  *stream = nullptr; // the legacy default stream, LibTorch's default
  return 0;
}

/// Sets callContext to the context of the device holding `ptr`: the
/// thread's current context where it is that device's (LibTorch makes its
/// primary context current), else that device's primary context (an
/// autograd thread may have none current).
int contextFor(const void *ptr) {
  static void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  if (!lib)
    return fail("cannot load libcuda.so.1: the CUDA driver is missing");
  static auto init = reinterpret_cast<cuInit_t>(dlsym(lib, "cuInit"));
  static auto current =
      reinterpret_cast<cuCtxGetCurrent_t>(dlsym(lib, "cuCtxGetCurrent"));
  static auto currentDevice =
      reinterpret_cast<cuCtxGetDevice_t>(dlsym(lib, "cuCtxGetDevice"));
  static auto attribute = reinterpret_cast<cuPointerGetAttribute_t>(
      dlsym(lib, "cuPointerGetAttribute"));
  static auto deviceGet =
      reinterpret_cast<cuDeviceGet_t>(dlsym(lib, "cuDeviceGet"));
  static auto retain = reinterpret_cast<cuDevicePrimaryCtxRetain_t>(
      dlsym(lib, "cuDevicePrimaryCtxRetain_v2"));
  static void *primary[64] = {nullptr};
  if (!init || !current || !currentDevice || !attribute || !deviceGet ||
      !retain || init(0) != 0)
    return fail("the CUDA driver lacks an entry point the kernels need");
  int ordinal = -1;
  if (attribute(&ordinal, kPointerDeviceOrdinal,
                static_cast<unsigned long long>(
                    reinterpret_cast<uintptr_t>(ptr))) != 0 ||
      ordinal < 0 || ordinal >= 64)
    return fail("a kernel operand is not in CUDA device memory");
  void *ctx = nullptr;
  int dev = -1;
  if (current(&ctx) == 0 && ctx && currentDevice(&dev) == 0 && dev == ordinal) {
    callContext = ctx;
    return 0;
  }
  if (!primary[ordinal]) {
    int device = 0;
    if (deviceGet(&device, ordinal) != 0 ||
        retain(&primary[ordinal], device) != 0)
      return fail("cannot retain the GPU's primary CUDA context");
  }
  callContext = primary[ordinal];
  return 0;
}
#else
/// Halide's parallel loops on OpenMP's threads: LibTorch and OpenBLAS use
/// the same pool, and a second pool of spinning threads beside it made
/// small kernels several times slower.
int parallelFor(void *uc, halide_task_t task, int min, int extent,
                uint8_t *closure) {
  int status = 0;
#pragma omp parallel for schedule(static) if (extent > 1 && !omp_in_parallel())
  for (int i = min; i < min + extent; ++i)
    if (int r = task(uc, i, closure)) {
#pragma omp atomic write
      status = r;
    }
  return status;
}
#endif

/// Tensors viewed as Halide buffers (no copy) for one call; Halide's
/// dimension 0 is the innermost, so the axes are reversed. Device pointers
/// are wrapped, and detached again when the call ends.
class Views {
public:
  explicit Views(size_t n) : views_(n) {}
  Views(const Views &) = delete;
  ~Views() {
    for (size_t i = 0; i < used_; ++i) {
      View &v = views_[i];
#if UNROLL_CUDA
      if (v.owned && v.buf.device)
        halide_device_free(nullptr, &v.buf);
      else if (v.buf.device)
        halide_cuda_detach_device_ptr(nullptr, &v.buf);
#else
      if (v.owned)
        std::free(v.buf.host);
#endif
    }
  }
  /// `t` as a buffer of rank `rank`, or null after recording why not.
  halide_buffer_t *bind(const unroll_tensor &t, int rank, const char *what) {
    if (t.rank != rank || used_ == views_.size()) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "%s has rank %d, expected %d", what,
                    static_cast<int>(t.rank), rank);
      fail(msg);
      return nullptr;
    }
    View &v = views_[used_++];
    v = View{};
    v.buf.type.code = halide_type_float;
    v.buf.type.bits = 32;
    v.buf.type.lanes = 1;
    v.buf.dimensions = t.rank;
    v.buf.dim = v.dim;
    for (int d = 0; d < t.rank; ++d) {
      const int64_t extent = t.sizes[t.rank - 1 - d],
                    stride = t.strides[t.rank - 1 - d];
      if (extent > INT32_MAX || stride > INT32_MAX || stride < 0) {
        fail("a kernel operand is too large for 32-bit indexing");
        return nullptr;
      }
      v.dim[d].min = 0;
      v.dim[d].extent = static_cast<int32_t>(extent);
      v.dim[d].stride = static_cast<int32_t>(stride);
    }
#if UNROLL_CUDA
    if (contextFor(t.data) != 0 ||
        halide_cuda_wrap_device_ptr(
            nullptr, &v.buf,
            static_cast<uint64_t>(reinterpret_cast<uintptr_t>(t.data))) != 0)
      return nullptr;
#else
    v.buf.host = reinterpret_cast<uint8_t *>(t.data);
#endif
    return &v.buf;
  }

  /// A scratch buffer of the shape of `t` (an adjoint the caller did not
  /// ask for), freed when the call ends; null after recording why not.
  halide_buffer_t *scratch(const unroll_tensor &t, int rank) {
    halide_buffer_t *b = bind(t, rank, "an adjoint");
    if (!b)
      return nullptr;
    View &v = views_[used_ - 1];
#if UNROLL_CUDA
    halide_cuda_detach_device_ptr(nullptr, &v.buf);
#endif
    v.buf.host = nullptr;
    // Dense, whatever the strides of `t`.
    int64_t n = 1;
    for (int d = 0; d < rank; ++d) {
      v.dim[d].stride = static_cast<int32_t>(n);
      n *= v.dim[d].extent;
    }
    v.owned = true;
#if UNROLL_CUDA
    if (halide_device_malloc(nullptr, &v.buf, halide_cuda_device_interface()) !=
        0)
      return nullptr;
#else
    v.buf.host = static_cast<uint8_t *>(std::malloc(n * sizeof(float) + 1));
    if (!v.buf.host) {
      fail("out of memory for an adjoint");
      return nullptr;
    }
#endif
    return &v.buf;
  }

private:
  struct View {
    halide_buffer_t buf;
    halide_dimension_t dim[UNROLL_MAX_RANK];
    bool owned; ///< scratch this call allocated
  };
  std::vector<View> views_;
  size_t used_ = 0;
};

} // namespace
