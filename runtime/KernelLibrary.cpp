#include "runtime/KernelLibrary.h"

#include "runtime/Plan.h"
#include "runtime/Run.h"

#include <dlfcn.h>

#include <filesystem>

namespace unroll::runtime {

std::unique_ptr<KernelLibrary>
KernelLibrary::open(const std::string &path, const std::string &planText) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw RunError("kernel library '" + path +
                   "' does not exist; compile the program with `unrollc "
                   "compile SPEC -o DIR`, or run it with --backend=eager");
  // dlopen needs a path with a slash to not search the library path.
  std::string abs = std::filesystem::absolute(path).string();
  void *handle = dlopen(abs.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    throw RunError("cannot load kernel library '" + path +
                   "': " + (why ? why : "unknown error") +
                   " (is it damaged, or built for another machine?)");
  }
  using Get = const unroll_kernel_library *(*)();
  auto get = reinterpret_cast<Get>(dlsym(handle, UNROLL_KERNEL_LIBRARY_SYMBOL));
  if (!get)
    throw RunError("'" + path + "' is not an Unroll kernel library (no " +
                   UNROLL_KERNEL_LIBRARY_SYMBOL + ")");
  const unroll_kernel_library *lib = get();
  if (!lib || lib->abi_version != UNROLL_RUNTIME_ABI_VERSION)
    throw RunError("kernel library '" + path +
                   "' was built for runtime "
                   "interface " +
                   std::to_string(lib ? lib->abi_version : -1) +
                   "; this runtime has " +
                   std::to_string(UNROLL_RUNTIME_ABI_VERSION) +
                   ": recompile it with this version's `unrollc compile`");
  if (planHash(planText) != lib->plan_hash)
    throw RunError("kernel library '" + path +
                   "' was compiled from another program (the spec or its "
                   "settings differ); recompile it with `unrollc compile`");
  if (!lib->kernels.run || (lib->kernels.device != UNROLL_KERNELS_CPU &&
                            lib->kernels.device != UNROLL_KERNELS_CUDA))
    throw RunError("kernel library '" + path + "' is malformed");
  return std::unique_ptr<KernelLibrary>(new KernelLibrary(path, lib));
}

} // namespace unroll::runtime
