#pragma once
#include <string>

namespace unroll::driver {

/// The runtime shared library, loaded with dlopen on first use.
class RuntimeLibrary {
public:
  /// Loads it from $UNROLL_RUNTIME_LIB, else next to the driver
  /// (build/lib/ or ../lib/). Returns null and sets `err` on failure.
  static RuntimeLibrary *get(std::string &err);

  /// LibTorch's description, from unroll_runtime_describe.
  std::string describe() const;

private:
  void *handle_ = nullptr;
  int (*describe_)(char *, int) = nullptr;
};

} // namespace unroll::driver
