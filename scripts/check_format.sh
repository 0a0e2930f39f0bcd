#!/usr/bin/env bash
# Fails if any C++ file in the repository is not clang-format (LLVM style) clean.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.cpp' '*.h')
clang-format --dry-run -Werror "${files[@]}"
echo "check_format: ${#files[@]} files clean"
