#!/usr/bin/env bash
# Runs on a GPU machine: the GPU tests, the CPU tests as a sanity check, and the GPU benchmarks
# with their PyTorch peers in the same run. Results go to $OUT (default ./gpu-results).
# Expects build-gpu/ and .gpu-libs/ from scripts/gpu_prepare.sh; builds in place when missing
# and the machine has the build dependencies.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
if [ ! -x build-gpu/cram ]; then
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 &&
    cmake --build build-gpu -j"$(nproc)" || { echo "gpu_check: build failed" >&2; exit 1; }
fi
export LD_LIBRARY_PATH="$PWD/.gpu-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export CRAM_CONFIG_PATH="$PWD/configs" CRAM_BIN="$PWD/build-gpu/cram"
summary="$OUT/summary.txt"
: >"$summary"
fail=0

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv || true
  build-gpu/cram info; } 2>&1 | tee "$OUT/info.txt"

for t in build-gpu/test_*; do
  name=$(basename "$t")
  timeout 300 "$t" >"$OUT/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=pass ;;
    77) status="skip ($(grep -m1 skipped "$OUT/$name.log"))" ;;
    *) status="FAIL (rc=$rc)"; fail=1 ;;
  esac
  echo "test  $name: $status" | tee -a "$summary"
done

bench() { # name, cram command, peer command
  local name=$1 cram_cmd=$2 peer_cmd=$3
  $cram_cmd >"$OUT/bench_$name.log" 2>&1 || fail=1
  python3 $peer_cmd >"$OUT/bench_${name}_peer.log" 2>&1 || fail=1
  local c p
  c=$(awk '/^RESULT/ {print $3}' "$OUT/bench_$name.log")
  p=$(awk '/^RESULT/ {print $3}' "$OUT/bench_${name}_peer.log")
  if [ -n "$c" ] && [ -n "$p" ]; then
    echo "bench $name: cram $c vs torch $p (ratio $(python3 -c "print(f'{$c/$p:.3f}')"))" | tee -a "$summary"
  else
    echo "bench $name: missing result (see bench logs)" | tee -a "$summary"
    fail=1
  fi
}
bench axpy_gbs "build-gpu/bench_gpu_axpy $((1 << 28)) 50" "bench/gpu_axpy_peer.py $((1 << 28)) 50"

echo "---- summary"
cat "$summary"
exit $fail
