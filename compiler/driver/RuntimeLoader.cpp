#include "RuntimeLoader.h"

#include "abi/RuntimeAPI.h"

#include <dlfcn.h>
#include <filesystem>
#include <vector>

namespace fs = std::filesystem;

namespace unroll::driver {

namespace {
std::vector<std::string> candidates() {
  std::vector<std::string> out;
  if (const char *env = std::getenv("UNROLL_RUNTIME_LIB"); env && *env)
    out.push_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    out.push_back((dir / "lib" / "libunroll_runtime.so").string());
    out.push_back(
        (dir.parent_path() / "lib" / "libunroll_runtime.so").string());
  }
  return out;
}
} // namespace

RuntimeLibrary *RuntimeLibrary::get(std::string &err) {
  static RuntimeLibrary lib;
  if (lib.handle_)
    return &lib;
  std::string tried;
  for (const std::string &path : candidates()) {
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      tried += "\n  " + path + " (not found)";
      continue;
    }
    void *h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      tried += "\n  " + path + " (" + dlerror() + ")";
      continue;
    }
    auto abi =
        reinterpret_cast<int (*)()>(dlsym(h, "unroll_runtime_abi_version"));
    auto describe = reinterpret_cast<int (*)(char *, int)>(
        dlsym(h, "unroll_runtime_describe"));
    auto train = reinterpret_cast<int (*)(const char *, const char *,
                                          const unroll_kernels *, char *, int)>(
        dlsym(h, "unroll_runtime_train"));
    auto eval =
        reinterpret_cast<int (*)(const char *, const unroll_kernels *, char *,
                                 int)>(dlsym(h, "unroll_runtime_eval"));
    auto readParams =
        reinterpret_cast<int (*)(const char *, unroll_param_fn, void *, char *,
                                 int)>(dlsym(h, "unroll_runtime_read_params"));
    auto cudaDevices =
        reinterpret_cast<int (*)()>(dlsym(h, "unroll_runtime_cuda_devices"));
    if (!abi || !describe || !train || !eval || !readParams || !cudaDevices ||
        abi() != UNROLL_RUNTIME_ABI_VERSION) {
      tried += "\n  " + path + " (not a compatible Unroll runtime)";
      dlclose(h);
      continue;
    }
    lib.handle_ = h;
    lib.describe_ = describe;
    lib.train_ = train;
    lib.eval_ = eval;
    lib.readParams_ = readParams;
    lib.cudaDevices_ = cudaDevices;
    return &lib;
  }
  err = "cannot load the Unroll runtime library; tried:" + tried +
        "\nset UNROLL_RUNTIME_LIB to its path";
  return nullptr;
}

int RuntimeLibrary::cudaDevices() const { return cudaDevices_(); }

std::string RuntimeLibrary::describe() const {
  std::string s(256, '\0');
  int n = describe_(s.data(), static_cast<int>(s.size()));
  if (n >= static_cast<int>(s.size())) {
    s.assign(n + 1, '\0');
    describe_(s.data(), n + 1);
  }
  s.resize(n);
  return s;
}

int RuntimeLibrary::train(const std::string &plan, const std::string &options,
                          const unroll_kernels *kernels,
                          std::string &err) const {
  std::vector<char> buf(8192, '\0');
  int rc = train_(plan.c_str(), options.c_str(), kernels, buf.data(),
                  static_cast<int>(buf.size()));
  err = buf.data();
  return rc;
}

int RuntimeLibrary::eval(const std::string &options,
                         const unroll_kernels *kernels,
                         std::string &err) const {
  std::vector<char> buf(8192, '\0');
  int rc =
      eval_(options.c_str(), kernels, buf.data(), static_cast<int>(buf.size()));
  err = buf.data();
  return rc;
}

int RuntimeLibrary::readParams(const std::string &runDir, unroll_param_fn fn,
                               void *ctx, std::string &err) const {
  std::vector<char> buf(8192, '\0');
  int rc = readParams_(runDir.c_str(), fn, ctx, buf.data(),
                       static_cast<int>(buf.size()));
  err = buf.data();
  return rc;
}

} // namespace unroll::driver
