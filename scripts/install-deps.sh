#!/usr/bin/env bash
# Installs every Debian package Unroll needs (build, tests, fuzzing, data).
# Idempotent: re-running it on a machine that has everything is quick.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache git python3 clang-format
  llvm-19-dev llvm-19-tools libmlir-19-dev mlir-19-tools
  clang-19 libclang-rt-19-dev libfuzzer-19-dev
  libhalide14-0-dev
  libtorch-dev libopenblas0-openmp
  catch2 nlohmann-json3-dev libcli11-dev zlib1g-dev
  dataset-fashion-mnist
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
