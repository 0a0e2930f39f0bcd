#include "abi/RuntimeAPI.h"

#include "runtime/BuildInfo.h"
#include "runtime/Plan.h"
#include "runtime/Run.h"
#include "runtime/Safetensors.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <functional>
#include <iostream>
#include <string>

namespace {

void copyOut(const std::string &s, char *buf, int size) {
  if (buf && size > 0) {
    size_t n = std::min(s.size(), static_cast<size_t>(size - 1));
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
}

/// Runs `f`, turning every exception into exit status 1 and a message:
/// nothing thrown may cross the C boundary.
int guarded(char *err, int errSize, const std::function<int()> &f) {
  using namespace unroll::runtime;
  try {
    return f();
  } catch (const RunError &e) {
    copyOut(e.what(), err, errSize);
  } catch (const PlanError &e) {
    copyOut(std::string("invalid program: ") + e.what(), err, errSize);
  } catch (const FileError &e) {
    copyOut(e.what(), err, errSize);
  } catch (const nlohmann::json::exception &e) {
    copyOut(std::string("malformed run file: ") + e.what(), err, errSize);
  } catch (const c10::Error &e) {
    copyOut(std::string("LibTorch: ") + e.what_without_backtrace(), err,
            errSize);
  } catch (const std::exception &e) {
    copyOut(std::string("runtime failure: ") + e.what(), err, errSize);
  }
  return 1;
}

} // namespace

extern "C" int unroll_runtime_abi_version(void) {
  return UNROLL_RUNTIME_ABI_VERSION;
}

extern "C" int unroll_runtime_describe(char *buf, int size) {
  std::string s;
  try {
    s = unroll::runtime::describeTorch();
  } catch (const std::exception &e) {
    s = std::string("LibTorch failed: ") + e.what();
  }
  copyOut(s, buf, size);
  return static_cast<int>(s.size());
}

extern "C" int unroll_runtime_cuda_devices(void) {
  try {
    return torch::cuda::is_available()
               ? static_cast<int>(torch::cuda::device_count())
               : 0;
  } catch (const std::exception &) {
    return 0;
  }
}

extern "C" int unroll_runtime_train(const char *planJson,
                                    const char *optionsJson,
                                    const unroll_kernels *kernels, char *err,
                                    int errSize) {
  return guarded(err, errSize, [&] {
    auto o = nlohmann::json::parse(optionsJson);
    unroll::runtime::TrainRunOptions opts;
    opts.runDir = o.at("run_dir").get<std::string>();
    opts.resume = o.value("resume", false);
    opts.spec = o.value("spec", "");
    opts.settings = o.value("settings", std::vector<std::string>{});
    opts.cacheDir = o.value("cache_dir", "");
    opts.interactive = o.value("interactive", false);
    opts.device = o.value("device", "auto");
    opts.kernels = kernels;
    opts.kernelLibrary = o.value("kernel_library", "");
    opts.tool = o.value("tool", "unrollc");
    return unroll::runtime::trainRun(planJson, opts, std::cerr);
  });
}

extern "C" int unroll_runtime_eval(const char *optionsJson,
                                   const unroll_kernels *kernels, char *err,
                                   int errSize) {
  return guarded(err, errSize, [&] {
    auto o = nlohmann::json::parse(optionsJson);
    unroll::runtime::EvalRunOptions opts;
    opts.runDir = o.at("run_dir").get<std::string>();
    opts.ood = o.value("ood", std::vector<double>{});
    opts.perturb = o.value("perturb", std::vector<double>{});
    opts.baseline = o.value("baseline", "");
    opts.cacheDir = o.value("cache_dir", "");
    opts.device = o.value("device", "auto");
    opts.kernels = kernels;
    opts.kernelLibrary = o.value("kernel_library", "");
    return unroll::runtime::evalRun(opts, std::cerr, std::cout);
  });
}

extern "C" int unroll_runtime_read_params(const char *runDir,
                                          unroll_param_fn fn, void *ctx,
                                          char *err, int errSize) {
  return guarded(err, errSize, [&] {
    for (auto &[name, t] : unroll::runtime::readRunParams(runDir)) {
      std::vector<int64_t> sizes = t.sizes().vec();
      fn(ctx, name.c_str(), static_cast<int32_t>(sizes.size()), sizes.data(),
         t.data_ptr<float>());
    }
    return 0;
  });
}
