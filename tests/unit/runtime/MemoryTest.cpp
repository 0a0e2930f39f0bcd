// The runtime's malloc setting: large blocks freed during training stay in
// the process for the next step instead of being unmapped and faulted in
// again (runtime/Memory.h).
#include "runtime/Memory.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>

#ifdef __GLIBC__
#include <malloc.h>
#endif

using namespace unroll;

TEST_CASE("a large freed block stays in the heap for the next step",
          "[runtime]") {
#ifndef __GLIBC__
  WARN("not glibc: retainFreedMemory does nothing here");
#else
  if (runtime::mallocTunedByEnvironment()) {
    WARN("malloc is tuned by the environment, which the runtime leaves be");
    return;
  }
  runtime::retainFreedMemory();
  runtime::retainFreedMemory(); // idempotent
  // Above glibc's largest dynamic mmap threshold (32 MiB): by default such
  // a block is always mapped on its own and unmapped when freed.
  const size_t size = size_t{64} << 20;
  struct mallinfo2 before = mallinfo2();
  auto *p = static_cast<char *>(std::malloc(size));
  REQUIRE(p);
  std::memset(p, 1, size);
  struct mallinfo2 held = mallinfo2();
  CHECK(held.hblkhd == before.hblkhd); // from the heap, not mapped
  std::free(p);
  struct mallinfo2 after = mallinfo2();
  // Kept, not trimmed (the block may have been carved from free heap that
  // earlier tests left, so the heap need not have grown for it).
  CHECK(after.arena == held.arena);
  CHECK(after.fordblks >= size);
  // The next step's block of the same size reuses it.
  auto *q = static_cast<char *>(std::malloc(size));
  REQUIRE(q);
  CHECK(mallinfo2().hblkhd == before.hblkhd);
  std::free(q);
#endif
}
