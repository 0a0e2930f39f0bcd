#include "runtime/RuntimeAPI.h"

#include "runtime/BuildInfo.h"

#include <cstring>
#include <string>

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
  if (buf && size > 0) {
    size_t n = std::min(s.size(), static_cast<size_t>(size - 1));
    std::memcpy(buf, s.data(), n);
    buf[n] = '\0';
  }
  return static_cast<int>(s.size());
}
