#include "compiler/export/KernelLibrary.h"

#include "compiler/export/Export.h"
#include "compiler/kernels/CudaKernels.h"
#include "compiler/kernels/HalideKernels.h"
#include "compiler/kernels/TrainingKernels.h"
#include "dsl/Diagnostics.h"
#include "runtime/Plan.h"
#include "runtime/RuntimeAPI.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace unroll::compiler {

namespace fs = std::filesystem;
using nlohmann::json;

/// runtime/RuntimeAPI.h, built into the compiler (RuntimeAPIText.cpp.in):
/// the generated wrapper is compiled against it, also where no source
/// tree is at hand.
extern const char *const kRuntimeAPIHeader;

namespace {

/// The C++ wrapper's parts that do not depend on the program: tensors as
/// Halide buffers (host or wrapped device pointers), errors into the
/// caller's buffer, parallel loops on OpenMP's pool (LibTorch's), and on
/// CUDA the context of the device that holds the data (LibTorch's primary
/// context) on the default stream, which LibTorch's ops use too.
const char *const kWrapperPrelude = R"cpp(
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
  if (current(&ctx) == 0 && ctx && currentDevice(&dev) == 0 &&
      dev == ordinal) {
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
    std::memset(&v, 0, sizeof v);
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
    if (halide_device_malloc(nullptr, &v.buf,
                             halide_cuda_device_interface()) != 0)
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

)cpp";

/// The C++ text of one fused kernel's dispatch: operand checks, then the
/// pipeline for the value, all adjoints or one operand's adjoint.
std::string dispatchOf(const FusedKernel &k) {
  const size_t n = k.inputs.size();
  const std::string fn = "unroll_k" + std::to_string(k.id);
  std::ostringstream os;
  std::string ins;
  for (size_t i = 0; i < n; ++i)
    ins += "a[" + std::to_string(i) + "], ";
  os << "int run" << k.id
     << "(int32_t operand, const unroll_tensor *in, int32_t n,\n"
     << "         const unroll_tensor *g, const unroll_tensor *out) {\n"
     << "  if (n != " << n << ")\n"
     << "    return fail(\"kernel " << k.name << " takes " << n
     << " operands\");\n"
     << "  Views v(" << 2 * n + 2 << ");\n"
     << "  halide_buffer_t *a[" << n << "];\n"
     << "  for (int i = 0; i < " << n << "; ++i)\n"
     << "    if (!(a[i] = v.bind(in[i], " << k.operandRank
     << ", \"an operand of " << k.name << "\")))\n"
     << "      return 1;\n"
     << "  if (operand == UNROLL_KERNEL_VALUE) {\n"
     << "    halide_buffer_t *o = v.bind(out[0], " << k.rank
     << ", \"the value of " << k.name << "\");\n"
     << "    return o ? " << fn << "_forward(" << ins << "o) : 1;\n"
     << "  }\n"
     << "  halide_buffer_t *d = g ? v.bind(*g, " << k.rank
     << ", \"the result adjoint of " << k.name << "\") : nullptr;\n"
     << "  if (!d)\n"
     << "    return g ? 1 : fail(\"no result adjoint\");\n"
     << "  if (operand == UNROLL_KERNEL_ALL_ADJOINTS) {\n"
     << "    halide_buffer_t *o[" << n << "];\n"
     << "    for (int i = 0; i < " << n << "; ++i)\n"
     << "      if (!(o[i] = v.bind(out[i], " << k.operandRank
     << ", \"an adjoint of " << k.name << "\")))\n"
     << "        return 1;\n"
     << "    return " << fn << "_adjoints(" << ins << "d";
  for (size_t i = 0; i < n; ++i)
    os << ", o[" << i << "]";
  os << ");\n"
     << "  }\n"
     << "  if (operand < 0 || operand >= " << n << ")\n"
     << "    return fail(\"kernel " << k.name << ": no such operand\");\n"
     << "  // One adjoint: all of them in one pass, the others into scratch.\n"
     << "  halide_buffer_t *o[" << n << "];\n"
     << "  for (int i = 0; i < " << n << "; ++i)\n"
     << "    if (!(o[i] = i == operand ? v.bind(out[0], " << k.operandRank
     << ", \"an adjoint of " << k.name << "\")\n"
     << "                             : v.scratch(out[0], " << k.operandRank
     << ")))\n"
     << "      return 1;\n"
     << "  return " << fn << "_adjoints(" << ins << "d";
  for (size_t i = 0; i < n; ++i)
    os << ", o[" << i << "]";
  os << ");\n"
     << "}\n\n";
  return os.str();
}

/// The whole wrapper: declarations of the pipelines, the dispatch of every
/// kernel, Adam's and the noise draws on the host, and the library's entry
/// point.
std::string wrapperText(const std::vector<FusedKernel> &kernels, bool cuda,
                        const std::string &planHash,
                        const std::string &target) {
  std::ostringstream os;
  os << "// Generated by unrollc compile: the training kernels of one "
        "program\n// behind the runtime's kernel-library interface.\n"
     << "#define UNROLL_CUDA " << (cuda ? 1 : 0) << "\n"
     << "#include \"unroll_runtime_api.h\"\n"
     << kWrapperPrelude << "} // namespace\n\nextern \"C\" {\n";
  auto decl = [&](const std::string &name, size_t buffers) {
    os << "int " << name << "(";
    for (size_t i = 0; i < buffers; ++i)
      os << (i ? ", " : "") << "halide_buffer_t *";
    os << ");\n";
  };
  for (const FusedKernel &k : kernels) {
    const size_t n = k.inputs.size();
    const std::string fn = "unroll_k" + std::to_string(k.id);
    decl(fn + "_forward", n + 1);
    decl(fn + "_adjoints", 2 * n + 1);
  }
  if (!cuda) {
    // param, grad, exp_avg, exp_avg_sq, then the outputs (the same three
    // buffers, updated in place); the floats come between them.
    os << "int unroll_adam(halide_buffer_t *, halide_buffer_t *, "
          "halide_buffer_t *,\n                halide_buffer_t *, float, "
          "float, float, float, float, float,\n                float, "
          "float, halide_buffer_t *, halide_buffer_t *,\n                "
          "halide_buffer_t *);\n"
       << "int unroll_noise_normal(halide_buffer_t *, float, float, int32_t,\n"
          "                        halide_buffer_t *);\n"
       << "int unroll_noise_uniform(halide_buffer_t *, float, float, "
          "halide_buffer_t *);\n";
  }
  os << "}\n\nnamespace {\n\n";
  for (const FusedKernel &k : kernels)
    os << dispatchOf(k);
  os << "int run(void *, int64_t kernel, int32_t operand,\n"
        "        const unroll_tensor *in, int32_t n, const unroll_tensor "
        "*g,\n        const unroll_tensor *out, char *err, int32_t size) {\n"
        "  Call call(err, size);\n"
        "  switch (kernel) {\n";
  for (const FusedKernel &k : kernels)
    os << "  case " << k.id << ":\n    return run" << k.id
       << "(operand, in, n, g, out);\n";
  os << "  }\n  return fail(\"no such kernel in this library\");\n}\n\n";
  if (!cuda)
    os << R"cpp(int adam(void *, const unroll_tensor *p, const unroll_tensor *g,
         const unroll_tensor *m, const unroll_tensor *v,
         const unroll_adam_step *h, char *err, int32_t size) {
  Call call(err, size);
  Views views(7);
  halide_buffer_t *b[7];
  const unroll_tensor *t[7] = {p, g, m, v, p, m, v};
  for (int i = 0; i < 7; ++i)
    if (!(b[i] = views.bind(*t[i], 1, "an Adam operand")))
      return 1;
  return unroll_adam(b[0], b[1], b[2], b[3], h->step_size, h->bias2_sqrt,
                     h->beta1, h->beta2, h->eps, h->weight_decay,
                     h->one_minus_beta1, h->one_minus_beta2, b[4], b[5],
                     b[6]);
}

int noise(void *, const unroll_tensor *w, const unroll_tensor *o,
          const unroll_noise_draw *h, char *err, int32_t size) {
  Call call(err, size);
  const int64_t n = o->sizes[0];
  if (o->rank != 1 || w->rank != 1 || (h->normal && n < 16) ||
      w->sizes[0] != unroll_noise_words(h->normal, n))
    return fail("the noise kernel takes a rank-1 output (of at least 16 "
                "elements for a normal draw) and as many words as the draw "
                "takes");
  Views views(2);
  halide_buffer_t *b[2];
  if (!(b[0] = views.bind(*w, 1, "the noise words")) ||
      !(b[1] = views.bind(*o, 1, "the noise output")))
    return 1;
  if (!h->normal)
    return unroll_noise_uniform(b[0], h->shift, h->scale, b[1]);
  return unroll_noise_normal(b[0], h->shift, h->scale,
                             static_cast<int32_t>(n - (w->sizes[0] - n)), b[1]);
}

)cpp";
  os << "} // namespace\n\n"
     << "extern \"C\" __attribute__((visibility(\"default\"))) const "
        "unroll_kernel_library *\nunroll_kernel_library_get(void) {\n"
     << "  static const unroll_kernel_library library = [] {\n"
     << "    halide_set_error_handler(onError);\n";
  if (cuda)
    os << "    halide_set_cuda_acquire_context(acquireContext);\n"
       << "    halide_set_cuda_release_context(releaseContext);\n"
       << "    halide_set_cuda_get_stream(getStream);\n";
  else
    os << "    halide_set_custom_do_par_for(parallelFor);\n";
  os << "    unroll_kernel_library l{};\n"
     << "    l.abi_version = UNROLL_RUNTIME_ABI_VERSION;\n"
     << "    l.plan_hash = \"" << planHash << "\";\n"
     << "    l.target = \"" << target << "\";\n"
     << "    l.kernels.run = run;\n"
     << "    l.kernels.adam = " << (cuda ? "nullptr" : "adam") << ";\n"
     << "    l.kernels.noise = " << (cuda ? "nullptr" : "noise") << ";\n"
     << "    l.kernels.device = "
     << (cuda ? "UNROLL_KERNELS_CUDA" : "UNROLL_KERNELS_CPU") << ";\n"
     << "    return l;\n  }();\n  return &library;\n}\n";
  return os.str();
}

} // namespace

KernelLibrarySummary buildKernelLibrary(const std::string &planText,
                                        const std::string &soPath,
                                        const KernelLibraryOptions &opts,
                                        std::ostream &log) {
  const bool cuda = opts.target == "host-cuda";
  if (!cuda && opts.target != "host")
    throw ExportError("unknown kernel target '" + opts.target +
                      "': expected host or host-cuda");
  // For CUDA, no CPU features: the host part only launches kernels, and
  // the library may run on another machine (a GPU box).
  Halide::Target target =
      cuda ? cudaTarget(opts.cudaCapability, false) : Halide::get_host_target();
  // Halide's runtime once, in an object of its own.
  const Halide::Target pipelineTarget =
      target.with_feature(Halide::Target::NoRuntime);
  const json plan = json::parse(planText);

  fs::path out = fs::absolute(soPath);
  fs::path build =
      out.parent_path() / (".unroll-kernels-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::create_directories(build, ec);
  if (ec)
    throw ExportError("cannot create '" + build.string() +
                      "': " + ec.message());
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{build};

  KernelLibrarySummary summary;
  summary.target = target.to_string();
  std::vector<std::string> objects;
  auto compile = [&](Halide::Func f, const std::string &name,
                     const std::vector<Halide::Argument> &args) {
    std::string obj = (build / (name + ".o")).string();
    f.compile_to_object(obj, args, name, pipelineTarget);
    objects.push_back(obj);
    ++summary.pipelines;
    if (!cuda)
      return;
    // Operands are device pointers without host memory: a pipeline that
    // copied one to the host (a stage left on the CPU) would fail there.
    std::string stmt = (build / (name + ".stmt")).string();
    f.compile_to_lowered_stmt(stmt, args, Halide::Text, pipelineTarget);
    std::ifstream in(stmt);
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find("halide_copy_to_host") != std::string::npos)
      throw dsl::InternalError("kernel pipeline " + name +
                               " runs a stage on the host");
  };

  std::vector<FusedKernel> kernels = buildKernels(plan);
  log << opts.command << ": compiling " << kernels.size()
      << " kernel(s) with Halide for " << summary.target << "\n";
  for (FusedKernel &k : kernels) {
    const std::string fn = "unroll_k" + std::to_string(k.id);
    std::vector<Halide::Argument> args(k.inputs.begin(), k.inputs.end());
    if (cuda)
      scheduleForwardGpu(k);
    else
      scheduleForwardCpu(k, target);
    compile(k.forward, fn + "_forward", args);
    // The backward pipeline from fresh Funcs, scheduled for itself: every
    // operand's adjoint in one pass (one operand's alone is computed with
    // the others into scratch, as the JIT does; the runtime asks for all).
    FusedKernel b = buildKernelOf(plan, k.id);
    std::vector<Halide::Argument> withGrad(b.inputs.begin(), b.inputs.end());
    withGrad.push_back(b.gradOutput);
    compile(cuda ? adjointsGpu(b) : adjointsCpu(b, target), fn + "_adjoints",
            withGrad);
    ++summary.kernels;
  }
  if (!cuda) {
    AdamKernel adam;
    scheduleAdamCpu(adam, target);
    compile(adam.update, "unroll_adam",
            {adam.param, adam.grad, adam.expAvg, adam.expAvgSq, adam.stepSize,
             adam.bias2Sqrt, adam.beta1, adam.beta2, adam.eps, adam.weightDecay,
             adam.oneMinusBeta1, adam.oneMinusBeta2});
    NoiseKernel noise;
    scheduleNoiseCpu(noise, target);
    compile(noise.normal, "unroll_noise_normal",
            {noise.words, noise.shift, noise.scale, noise.tailStart});
    compile(noise.uniform, "unroll_noise_uniform",
            {noise.words, noise.shift, noise.scale});
  }
  const std::string runtimeObj = (build / "halide_runtime.o").string();
  Halide::compile_standalone_runtime(runtimeObj, target);
  objects.push_back(runtimeObj);

  writeText(build / "unroll_runtime_api.h", kRuntimeAPIHeader);
  writeText(
      build / "kernels.cpp",
      wrapperText(kernels, cuda, runtime::planHash(planText), summary.target));
  // Only the entry point is exported, and every reference inside binds
  // inside: the process may hold another Halide runtime (the driver's JIT).
  writeText(build / "exports.map",
            "{ global: unroll_kernel_library_get; local: *; };\n");
  // Per process: two runs may build the same cached library at once.
  fs::path tmp = out.parent_path() / (out.filename().string() + ".tmp" +
                                      std::to_string(::getpid()));
  std::vector<std::string> cmd =
      cxxCompiler() +
      std::vector<std::string>{"-std=c++17", "-O2", "-fPIC", "-shared"};
  if (!cuda)
    cmd.push_back("-fopenmp");
  cmd = cmd + std::vector<std::string>{
                  "-fvisibility=hidden", "-I" + build.string(),
                  "-I/usr/include/halide14", (build / "kernels.cpp").string()};
  cmd = cmd + objects +
        std::vector<std::string>{"-Wl,--version-script=" +
                                     (build / "exports.map").string(),
                                 "-Wl,-Bsymbolic",
                                 "-o",
                                 tmp.string(),
                                 "-ldl",
                                 "-lpthread"};
  runTool(cmd, build / "tools.log");
  fs::rename(tmp, out, ec);
  if (ec)
    throw ExportError("cannot write '" + out.string() + "': " + ec.message());
  return summary;
}

} // namespace unroll::compiler
