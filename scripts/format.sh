#!/usr/bin/env bash
# clang-format over every C/CUDA source of the repository: `scripts/format.sh` rewrites the files,
# `scripts/format.sh --check` lists the ones that differ and fails (the test command runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "format: clang-format not found, skipped"; exit 0; }
mapfile -t files < <(git ls-files '*.c' '*.h' '*.cu' 2>/dev/null || find src tests tools fuzz bench -name '*.[ch]' -o -name '*.cu')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "not formatted: $f"; bad=1; }
  done
  [ $bad -eq 0 ] && echo "format: ${#files[@]} files formatted"
  exit $bad
fi
clang-format -i "${files[@]}"
