#include "runtime/Memory.h"

#include <cstdlib>
#include <cstring>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace unroll::runtime {

bool mallocTunedByEnvironment() {
  const char *tunables = std::getenv("GLIBC_TUNABLES");
  return (tunables && std::strstr(tunables, "glibc.malloc.")) ||
         std::getenv("MALLOC_MMAP_THRESHOLD_") ||
         std::getenv("MALLOC_TRIM_THRESHOLD_");
}

void retainFreedMemory() {
#ifdef __GLIBC__
  static const bool done = [] {
    if (mallocTunedByEnvironment())
      return false;
    // Blocks up to 1 GiB come from the heap, and up to 1 GiB of free heap
    // is kept rather than trimmed.
    constexpr int kThreshold = 1 << 30;
    mallopt(M_MMAP_THRESHOLD, kThreshold);
    mallopt(M_TRIM_THRESHOLD, kThreshold);
    return true;
  }();
  (void)done;
#endif
}

} // namespace unroll::runtime
