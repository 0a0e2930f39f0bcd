#pragma once
// A small pool for independent, coarse work items (the per-layer Halide
// compiles of an export): a failure stops the items not yet started and
// reaches the caller as the original exception, after every thread joined.

#include <cstdint>
#include <functional>

namespace unroll::compiler {

/// Runs fn(0) .. fn(count - 1) on up to `jobs` threads (the caller's one
/// included; jobs <= 0: one per core), each item once, in no set order.
/// When an item throws, no further item starts; the first exception is
/// rethrown once the items already running have finished.
void parallelFor(int64_t count, int64_t jobs,
                 const std::function<void(int64_t)> &fn);

} // namespace unroll::compiler
