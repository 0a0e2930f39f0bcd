#!/usr/bin/env bash
# Runs the whole test suite: builds what changed, then every ctest test
# (unit, mutation, lit golden/error/driver tests, fuzzing).
#   scripts/test.sh [extra ctest arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${UNROLL_BUILD_DIR:-build}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j "${UNROLL_JOBS:-$(nproc)}"
ctest --test-dir "$build" --output-on-failure -j 2 "$@"
