#!/usr/bin/env bash
# Builds the CUDA flavour of cram here (Hopper and Ampere code) and gathers the shared libraries
# its programs need, so that a GPU machine without Debian's -dev packages can run them:
#   scripts/gpu_prepare.sh      -> build-gpu/ and .gpu-libs/ (both git-ignored)
# then carry both to the GPU machine and run scripts/gpu_check.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nvcc >/dev/null || { echo "gpu_prepare: nvcc not found" >&2; exit 1; }
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="80;90" >/dev/null
cmake --build build-gpu -j"$(nproc)"
rm -rf .gpu-libs && mkdir -p .gpu-libs
for exe in build-gpu/cram build-gpu/test_* build-gpu/bench_*; do
  [ -x "$exe" ] || continue
  ldd "$exe" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*) ;;
    *) cp -L "$lib" .gpu-libs/ ;;
  esac
done
ls .gpu-libs
