#!/usr/bin/env bash
# Builds the front-end fuzz target with clang-19 (libFuzzer + ASan + UBSan)
# and runs it for a fixed time budget, seeded with the examples and stdlib.
#   scripts/fuzz.sh [--seconds N] [--build-dir DIR] [--jobs N]
# Exit status 0: no crash found. A crashing input is saved in the build dir.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=60
build="$root/build/fuzz"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

CXX=${FUZZ_CXX:-clang++-19}
if ! command -v "$CXX" >/dev/null; then
  echo "fuzz.sh: $CXX not found (install clang-19 and libfuzzer-19-dev)" >&2
  exit 1
fi
launcher=""
command -v ccache >/dev/null && launcher=ccache

# The sources are the ones dsl/CMakeLists.txt lists, so the two never drift.
mapfile -t srcs < <(sed -n '/add_library(UnrollDSL/,/)/p' "$root/dsl/CMakeLists.txt" |
  grep -oE '[A-Za-z]+\.cpp')
mkdir -p "$build/obj" "$build/corpus"
flags=(-std=c++17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined
       -fno-sanitize-recover=undefined -I"$root"
       -DUNROLL_STDLIB_DIR="\"$root/stdlib\"")
objs=()
echo "fuzz.sh: compiling ${#srcs[@]} front-end sources with $CXX"
for s in "${srcs[@]}" ; do
  o="$build/obj/${s%.cpp}.o"
  $launcher "$CXX" "${flags[@]}" -c "$root/dsl/$s" -o "$o" &
  objs+=("$o")
  # two at a time: the machines have two cores
  [ "$(jobs -r | wc -l)" -ge 2 ] && wait -n
done
wait
$launcher "$CXX" "${flags[@]}" -c "$root/tests/fuzz/FuzzFrontend.cpp" -o "$build/obj/FuzzFrontend.o"
"$CXX" -fsanitize=fuzzer,address,undefined "${objs[@]}" "$build/obj/FuzzFrontend.o" -o "$build/fuzz_frontend"

cp "$root"/examples/*.unroll "$root"/stdlib/*.unroll "$build/corpus/"
echo "fuzz.sh: fuzzing for ${seconds}s"
cd "$build"
./fuzz_frontend -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=8192 -print_final_stats=1 corpus 2>&1 | tail -n 25
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "fuzz.sh: FAILED (crash input saved in $build)" >&2
  exit 1
fi
echo "fuzz.sh: no crash in ${seconds}s"
