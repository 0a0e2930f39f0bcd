#!/usr/bin/env bash
# One-command set-up on a fresh Debian 12 machine: installs every dependency
# (apt-get), configures and builds Unroll, and checks the flagship specs.
#   scripts/setup.sh            # Release-with-asserts build in build/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/install-deps.sh

build=${UNROLL_BUILD_DIR:-build}
jobs=${UNROLL_JOBS:-$(nproc)}
echo "setup: configuring $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "setup: building with $jobs jobs"
cmake --build "$build" -j "$jobs"
echo "setup: checking the examples"
"$build/unrollc" check examples/lista.unroll examples/glow_prox.unroll examples/surf.unroll examples/fista.unroll examples/box_ls.unroll examples/gd_mlp.unroll examples/admm_tv.unroll
echo "setup: done. Try: $build/unrollc --emit=ast examples/lista.unroll"
