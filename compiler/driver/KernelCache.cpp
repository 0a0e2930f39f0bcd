#include "KernelCache.h"

#include "abi/Cache.h"
#include "abi/Plan.h"
#include "abi/PlanHash.h"
#include "compiler/export/KernelLibrary.h"
#include "compiler/export/Tool.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <iomanip>
#include <iostream>

namespace unroll::driver {

namespace {

/// Before `name` (PLAN-TARGET-BUILD.so) is built into the kernel cache
/// `dir`: the libraries an earlier unrollc build made for the same program
/// and target go (they would never be loaded again), and so do the scratch
/// folders and temporary files of compiles whose process has died.
void pruneKernelCache(const std::filesystem::path &dir,
                      const std::string &name) {
  namespace fs = std::filesystem;
  const std::string same = name.substr(0, name.rfind('-') + 1);
  std::error_code ec;
  for (const fs::directory_entry &e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    // ".unroll-kernels-PID" and "X.so.tmpPID" name the process that made them.
    size_t at = f.rfind(".tmp");
    std::string pid = f.rfind(".unroll-kernels-", 0) == 0 ? f.substr(16)
                      : at != std::string::npos           ? f.substr(at + 4)
                                                          : "";
    bool dead = !pid.empty() &&
                pid.find_first_not_of("0123456789") == std::string::npos &&
                ::kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 &&
                errno == ESRCH;
    bool stale = f != name && f.rfind(same, 0) == 0 && f.size() > 3 &&
                 f.compare(f.size() - 3, 3, ".so") == 0;
    if (dead || stale)
      fs::remove_all(e.path(), ec);
  }
}

} // namespace

std::string kernelLibraryFor(const std::string &planText,
                             const std::string &backend,
                             const std::string &device,
                             const std::string &cacheDir, int gpus,
                             std::unique_ptr<compiler::JitKernels> &jit) {
  namespace fs = std::filesystem;
  if (backend != "compiled")
    return "";
  const bool cuda = device.rfind("cuda", 0) == 0;
  // Without a GPU the runtime refuses --device cuda: no kernels to build.
  if (cuda && gpus < 1)
    return "";
  compiler::KernelLibraryOptions ko;
  ko.target = cuda ? "host-cuda" : "host";
  ko.command = "kernels";
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  uint64_t id = abi::hashString(abi::kFnvBasis, self.string());
  if (!ec) {
    auto size = fs::file_size(self, ec);
    auto time = fs::last_write_time(self, ec).time_since_epoch().count();
    id = abi::fnv(id, &size, sizeof size);
    id = abi::fnv(id, &time, sizeof time);
  }
  fs::path dir = fs::path(abi::cacheDirectory(cacheDir)) / "kernels";
  fs::path lib = dir / (abi::planHash(planText) + "-" + ko.target + "-" +
                        abi::hexHash(id) + ".so");
  if (fs::exists(lib, ec)) {
    std::cerr << "kernels: " << lib.string() << " (compiled earlier for the "
              << (cuda ? "GPU" : "host") << ")\n";
    return lib.string();
  }
  auto t0 = std::chrono::steady_clock::now();
  try {
    fs::create_directories(dir, ec);
    pruneKernelCache(dir, lib.filename().string());
    compiler::KernelLibrarySummary s =
        compiler::buildKernelLibrary(planText, lib.string(), ko, std::cerr);
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    std::cerr << "kernels: " << s.kernels << " compiled with Halide for the "
              << (cuda ? "GPU" : "host") << " in " << std::fixed
              << std::setprecision(1) << secs << " s, kept in " << lib.string()
              << "\n"
              << std::defaultfloat;
    return lib.string();
  } catch (const compiler::ExportError &e) {
    if (cuda)
      throw;
    // The tool's output, not its long command line.
    const auto *tool = dynamic_cast<const compiler::ToolError *>(&e);
    std::string why =
        tool ? "the C++ compiler failed: " + tool->output : e.what();
    while (!why.empty() && why.back() == '\n')
      why.pop_back();
    std::cerr << "warning: no kernel library (" << why
              << "); compiling the kernels in process\n";
  }
  t0 = std::chrono::steady_clock::now();
  jit = std::make_unique<compiler::JitKernels>(
      abi::readPlan(nlohmann::json::parse(planText)));
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  std::cerr << "kernels: " << jit->size() << " compiled with Halide for the "
            << "host in " << std::fixed << std::setprecision(1) << secs
            << " s\n"
            << std::defaultfloat;
  return "";
}

} // namespace unroll::driver
