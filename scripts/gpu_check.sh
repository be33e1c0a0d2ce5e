#!/usr/bin/env bash
# Runs on a GPU machine that has the CUDA toolkit (nvcc), CMake and PyTorch but none of Debian's
# -dev packages: it builds cram there in build-gpu/ (nvcc and the CUDA libraries of that machine,
# the Debian libraries from .gpu-libs/, made here by scripts/gpu_prepare.sh), then
#   scripts/gpu_check.sh [test]   every GPU test, then the other tests while time is left (~4 min)
#   scripts/gpu_check.sh bench    each bench_gpu_* beside its PyTorch peer bench/gpu_*_peer.py,
#                                 then bench/loss_curves.sh while time is left (~5 min)
# Results go to $OUT (default ./gpu-results): summary-<mode>.txt, info.txt, build.log and
# <mode>-logs.txt (the programs' output), a handful of files. Exit status 0 when all is well.
# CRAM_CHECK_S overrides the mode's time budget in seconds (the build included), CRAM_GPU_BUILD
# the build folder (default build-gpu).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
mode=${1:-test}
case "$mode" in
  test) budget=${CRAM_CHECK_S:-230} ;;
  bench) budget=${CRAM_CHECK_S:-290} ;;
  *)
    echo "usage: scripts/gpu_check.sh [test|bench]" >&2
    exit 2
    ;;
esac
deadline=$((SECONDS + budget))
left() { echo $((deadline - SECONDS)); }
bdir=${CRAM_GPU_BUILD:-build-gpu}
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
summary="$OUT/summary-$mode.txt"
logs="$OUT/$mode-logs.txt"
: >"$summary"
: >"$logs"
note() { echo "$*" | tee -a "$summary"; }
fail=0

libs="$PWD/.gpu-libs"
if [ ! -f "$libs/lib/pkgconfig/yaml-0.1.pc" ]; then
  note "gpu_check: no .gpu-libs/: run scripts/gpu_prepare.sh before, and carry .gpu-libs"
  exit 1
fi

# ---- build: the carried Debian libraries first, CUDA from this machine ----
export PKG_CONFIG_PATH="$libs/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export CMAKE_PREFIX_PATH="$libs${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
extra=()
command -v pkg-config >/dev/null || extra+=("-DPKG_CONFIG_EXECUTABLE=$libs/tools/pkg-config")
# OpenMPI is not carried (see gpu_prepare.sh): one GPU, one rank, no MPI backend
t0=$SECONDS
{ cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCRAM_MPI=OFF "${extra[@]}" && cmake --build "$bdir" -j"$(nproc)"; } >"$OUT/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  note "build: FAILED (rc=$rc), see build.log"
  tail -n 40 "$OUT/build.log"
  exit 1
fi
if ! grep -q "cram: CUDA backend ON" "$OUT/build.log"; then
  note "build: FAILED, CMake found no CUDA compiler (see build.log)"
  exit 1
fi
note "build: ok in $((SECONDS - t0)) s"

# cram's programs find the carried libraries by their RUNPATH; OpenBLAS (dlopened) and its
# gfortran runtime by CRAM_OPENBLAS and LD_LIBRARY_PATH, set for them alone (not for PyTorch)
# CRAM_REQUIRE_GPU=1: on this machine a test that finds no usable GPU fails instead of skipping
cram_env=(env "LD_LIBRARY_PATH=$libs/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  "CRAM_OPENBLAS=$libs/lib/libopenblas.so.0" "CRAM_CONFIG_PATH=$PWD/configs"
  "CRAM_BIN=$PWD/$bdir/cram" "CRAM_REQUIRE_GPU=1")

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  nvcc --version | tail -n 2
  cc --version | head -n 1
  "${cram_env[@]}" "$bdir/cram" info
} >"$OUT/info.txt" 2>&1
cat "$OUT/info.txt"

# one program under a time limit: its output in $last and appended to the logs; returns its
# exit status (124 or 137: out of time)
last=$(mktemp)
trap 'rm -f "$last"' EXIT
run_logged() { # seconds, command...
  local s=$1 rc
  shift
  timeout -k 5 "$s" "$@" >"$last" 2>&1
  rc=$?
  { echo "==== $* (limit ${s} s, rc=$rc)"; cat "$last"; } >>"$logs"
  return $rc
}

if [ "$mode" = test ]; then
  # the GPU tests are those whose source mentions the GPU; the others follow as a sanity check
  # of the carried libraries while time is left
  # the GPU tests, the most telling first: the device, every op against the CPU rows, the model,
  # the training loop; then any other test source that mentions the GPU
  gpu_tests=$(
    {
      printf '%s\n' test_gpu test_ops test_model test_train
      grep -liE 'cuda|gpu' tests/test_*.c | xargs -n1 basename | sed 's/\.c$//'
    } | awk '!seen[$0]++'
  )
  other_tests=""
  for f in tests/test_*.c; do
    name=$(basename "$f" .c)
    grep -qxF "$name" <<<"$gpu_tests" || other_tests="$other_tests $name"
  done
  [ -x "$bdir/test_gpu" ] || { note "test: no test programs were built (cmocka?)"; exit 1; }
  # the command-line tests of pretraining and fine-tuning run on the GPU too (impl.device=auto
  # picks it): the whole product, end to end, after the unit tests
  gpu_tests="$gpu_tests cli_train cli_eval"
  for name in $gpu_tests $other_tests; do
    is_gpu=0
    grep -qxF "$name" <<<"$(tr ' ' '\n' <<<"$gpu_tests")" && is_gpu=1
    s=$(left)
    if [ "$s" -lt 10 ]; then
      note "test  $name: not run (time budget spent)"
      [ $is_gpu -eq 1 ] && fail=1
      continue
    fi
    [ "$s" -gt 180 ] && s=180
    t0=$SECONDS
    if [[ $name == cli_* ]]; then
      run_logged "$s" "${cram_env[@]}" bash "tests/$name.sh" "$PWD/$bdir/cram"
    else
      run_logged "$s" "${cram_env[@]}" "$bdir/$name"
    fi
    rc=$?
    case $rc in
      0) status=pass ;;
      77)
        status="skip ($(grep -m1 -i skip "$last"))"
        # on a GPU machine a GPU test has no reason to skip
        [ $is_gpu -eq 1 ] && status="FAIL, on a GPU machine: $status" && fail=1
        ;;
      124 | 137) status="FAIL (out of time after $((SECONDS - t0)) s)" && fail=1 ;;
      *) status="FAIL (rc=$rc)" && fail=1 ;;
    esac
    note "test  $name$([ $is_gpu -eq 1 ] && echo ' [gpu]'): $status ($((SECONDS - t0)) s)"
    # each CUDA op's measured error against its CPU row, for docs/gpu-notes.md
    [ "$name" = test_ops ] && grep '^# cuda/' "$last" >"$OUT/op-errors.txt"
  done
else
  # each GPU benchmark beside its PyTorch peer, both with their default sizes; the first RESULT
  # line of each is compared. A peer may use what is left of the pair's share: it learns its
  # limit from CRAM_PEER_TIME_LIMIT (gpu_train_peer.py skips the configurations that no longer
  # fit, and stops one still compiling, 15 s before the hard limit)
  found=0
  for exe in "$bdir"/bench_gpu_*; do
    [ -x "$exe" ] || continue
    name=${exe#"$bdir"/bench_gpu_}
    peer=bench/gpu_${name}_peer.py
    found=1
    s=$(left)
    if [ "$s" -lt 20 ]; then
      note "bench $name: not run (time budget spent)"
      fail=1
      continue
    fi
    [ "$s" -gt 240 ] && s=240
    run_logged $((s / 2)) "${cram_env[@]}" "$exe" || fail=1
    c=$(awk '/^RESULT/ {print $3; exit}' "$last")
    cx=$(awk '/^RESULT/ {$1 = $2 = $3 = ""; sub(/^ +/, ""); print; exit}' "$last")
    p=""
    if [ -f "$peer" ]; then
      sp=$(left)
      [ "$sp" -gt 240 ] && sp=240
      [ "$sp" -lt 20 ] && sp=20
      run_logged "$sp" env CRAM_PEER_TIME_LIMIT=$((sp - 15)) python3 "$peer" || fail=1
      p=$(awk '/^RESULT/ {print $3; exit}' "$last")
      px=$(awk '/^RESULT/ {$1 = $2 = $3 = ""; sub(/^ +/, ""); print; exit}' "$last")
    fi
    if [ -n "$c" ] && [ -n "$p" ]; then
      note "bench $name: cram $c vs torch $p (ratio $(python3 -c "print(f'{$c/$p:.3f}')"))"
      [ -n "$cx$px" ] && note "      cram: ${cx:--}; torch: ${px:--}"
    elif [ -n "$c" ]; then
      note "bench $name: cram $c (no PyTorch peer result)"
      fail=1
    else
      note "bench $name: missing result (see $mode-logs.txt)"
      fail=1
    fi
  done
  [ $found -eq 1 ] || { note "bench: no bench_gpu_* program was built"; fail=1; }

  # the first microsteps' losses on CPU fp32, CUDA fp32 and CUDA bf16 side by side, in what is
  # left of the budget (the CPU row stops where the time ends); it informs, it does not fail
  s=$(left)
  if [ "$s" -ge 40 ]; then
    run_logged "$s" "${cram_env[@]}" TIME_S=$((s - 10)) THREADS=0 bench/loss_curves.sh
    rc=$?
    # the header, every 50th µstep and the notes under the table (the whole table is in the logs)
    awk '/^µstep/ || /^# / || ($1 ~ /^[0-9]+$/ && ($1 == 1 || $1 % 50 == 0)) {
      print "curves " $0 }' "$last" | sed 's/^curves # /curves /' | tee -a "$summary"
    [ $rc -eq 0 ] || note "curves: loss_curves.sh exit $rc (see $mode-logs.txt)"
  else
    note "curves: not run ($s s left; bench/loss_curves.sh needs ~40 s or more)"
  fi
fi

echo "---- summary ($mode, $((SECONDS + budget - deadline)) s)"
cat "$summary"
exit $fail
