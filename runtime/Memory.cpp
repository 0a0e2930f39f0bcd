#include "runtime/Memory.h"

#include <cstdlib>
#include <cstring>

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace unroll::runtime {

void retainFreedMemory() {
#ifdef __GLIBC__
  static const bool done = [] {
    const char *tunables = std::getenv("GLIBC_TUNABLES");
    if ((tunables && std::strstr(tunables, "glibc.malloc.")) ||
        std::getenv("MALLOC_MMAP_THRESHOLD_") ||
        std::getenv("MALLOC_TRIM_THRESHOLD_"))
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
