#!/usr/bin/env bash
# Runs on a GPU machine that has the CUDA toolkit (nvcc), CMake and PyTorch but none of Debian's
# -dev packages: it builds cram there in build-gpu/ (nvcc and the CUDA libraries of that machine,
# the Debian libraries from .gpu-libs/, made here by scripts/gpu_prepare.sh), then
#   scripts/gpu_check.sh [test]   every GPU test, then the other tests while time is left (~4 min)
#   scripts/gpu_check.sh bench    each bench_gpu_* beside its PyTorch peer bench/gpu_*_peer.py,
#                                 then bench/loss_curves.sh while time is left (~5 min)
#   scripts/gpu_check.sh pretrain the token store of the carried debian-english corpus, then a
#                                 2-minute crammed-bert bert-o4 pretraining (budget=0.03) that
#                                 dumps its first 300 µsteps, then bench/pretrain_peer.py replays
#                                 them in PyTorch (bf16 autocast) in the time left (~5 min)
#   scripts/gpu_check.sh eval     cram eval of the carried half-precision all-MiniLM-L6-v2 on RTE
#                                 and MRPC, in fp32 and then bf16, each followed by its PyTorch +
#                                 transformers peer bench/glue_hf_peer.py in the time left (~5 min)
# What each mode carries (`run`'s carry list): scripts/gpu_carry.sh; test and bench need .gpu-blas
# (the CPU rows), pretrain .gpu-data-pretrain and eval .gpu-data-eval (scripts/gpu_prepare_data.sh).
# Results go to $OUT (default ./gpu-results): summary-<mode>.txt, info.txt, build.log and
# <mode>-logs.txt (the programs' output), a handful of files. Exit status 0 when all is well.
# CRAM_CHECK_S overrides the mode's time budget in seconds (the build included), CRAM_GPU_BUILD
# the build folder (default build-gpu). pretrain and eval: CRAM_CHECK_DEVICE=cpu runs their steps
# on the CPU instead (a check of this script's plumbing on a machine without a GPU; its numbers
# are the CPU's and the summary says so), CRAM_PRETRAIN_BUDGET (hours, default 0.03),
# CRAM_PRETRAIN_EVERY (µsteps between the loss lines of the log and the summary, default 100) and
# CRAM_PRETRAIN_ARGS / CRAM_EVAL_ARGS (more key=value overrides, split at spaces) change the runs,
# CRAM_EVAL_PRECISIONS the eval runs (default "fp32 bf16"); CRAM_PRETRAIN_PEER=0 leaves out the
# replay dump and its PyTorch peer, CRAM_EVAL_PEER=0 the eval's peer (bench/glue_hf_peer.py),
# CRAM_EVAL_PEER_ARGS adds options to it, CRAM_PEER_PYTHON names the peers' Python (default
# python3).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/gpu_carry.sh disable=SC1091
. scripts/gpu_carry.sh
mode=${1:-test}
build_targets=() # empty: everything
case "$mode" in
  test) budget=${CRAM_CHECK_S:-230} ;;
  bench) budget=${CRAM_CHECK_S:-290} ;;
  pretrain | eval)
    budget=${CRAM_CHECK_S:-290}
    build_targets=(--target cram) # the program alone: the tests and benches would take minutes
    ;;
  *)
    echo "usage: scripts/gpu_check.sh [test|bench|pretrain|eval]" >&2
    exit 2
    ;;
esac
deadline=$((SECONDS + budget))
left() { echo $((deadline - SECONDS)); }
bdir=${CRAM_GPU_BUILD:-build-gpu}
OUT=${OUT:-gpu-results}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
summary="$OUT/summary-$mode.txt"
logs="$OUT/$mode-logs.txt"
: >"$summary"
: >"$logs"
note() { echo "$*" | tee -a "$summary"; }
fail=0

# ---- the carried folders: the mode's own, and .gpu-blas wherever it came along ----
for f in $(gpu_carry_folders "$mode"); do
  if [ ! -d "$f" ]; then
    note "gpu_check: no $f/: run $(gpu_carry_prepare "$f") on the development machine, then carry $(gpu_carry_folders "$mode") (scripts/gpu_carry.sh $mode)"
    exit 1
  fi
done
libs="$PWD/.gpu-libs"
blas="$PWD/.gpu-blas"
if [ ! -f "$libs/lib/pkgconfig/yaml-0.1.pc" ]; then
  note "gpu_check: .gpu-libs/ is incomplete: run scripts/gpu_prepare.sh again and carry it"
  exit 1
fi
have_blas=0
[ -e "$blas/lib/libopenblas.so.0" ] && have_blas=1
if [ $have_blas -eq 0 ] && { [ "$mode" = test ] || [ "$mode" = bench ]; }; then
  note "gpu_check: .gpu-blas/ holds no libopenblas.so.0: run scripts/gpu_prepare.sh again and carry it"
  exit 1
fi
device=cuda
if [ "$mode" = pretrain ] || [ "$mode" = eval ]; then
  device=${CRAM_CHECK_DEVICE:-cuda}
  case "$device" in
    cuda) ;;
    cpu)
      note "gpu_check: CRAM_CHECK_DEVICE=cpu: the $mode steps run on the CPU, to check this script; no number below is a GPU's"
      [ $have_blas -eq 1 ] || note "gpu_check: no .gpu-blas: the CPU rows need an OpenBLAS of this machine"
      ;;
    *)
      note "gpu_check: CRAM_CHECK_DEVICE=$device: expected cuda or cpu"
      exit 2
      ;;
  esac
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
  -DCRAM_MPI=OFF "${extra[@]}" && cmake --build "$bdir" -j"$(nproc)" "${build_targets[@]}"; } \
  >"$OUT/build.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  note "build: FAILED (rc=$rc), see build.log"
  tail -n 40 "$OUT/build.log"
  exit 1
fi
if ! grep -q "cram: CUDA backend ON" "$OUT/build.log" && [ "$device" = cuda ]; then
  note "build: FAILED, CMake found no CUDA compiler (see build.log)"
  exit 1
fi
note "build: ok in $((SECONDS - t0)) s${build_targets[*]:+ (${build_targets[*]})}"

# cram's programs find the carried libraries by their RUNPATH; OpenBLAS (dlopened when a CPU
# backend opens) and its gfortran runtime by CRAM_OPENBLAS and LD_LIBRARY_PATH, set for them
# alone (not for PyTorch). Without .gpu-blas only CUDA work can run.
# CRAM_REQUIRE_GPU=1: on this machine a test that finds no usable GPU fails instead of skipping
ld_path="$libs/lib"
cram_env=(env)
if [ $have_blas -eq 1 ]; then
  ld_path="$blas/lib:$ld_path"
  cram_env+=("CRAM_OPENBLAS=$blas/lib/libopenblas.so.0")
fi
cram_env+=("LD_LIBRARY_PATH=$ld_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  "CRAM_CONFIG_PATH=$PWD/configs" "CRAM_BIN=$PWD/$bdir/cram")
[ "$device" = cuda ] && cram_env+=("CRAM_REQUIRE_GPU=1")

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv
  nvcc --version | tail -n 2
  cc --version | head -n 1
  "${cram_env[@]}" "$bdir/cram" info
  echo "OpenBLAS: $([ $have_blas -eq 1 ] && echo "$blas/lib/libopenblas.so.0" || echo "not carried")"
} >"$OUT/info.txt" 2>&1
cat "$OUT/info.txt"
# pretrain and eval on the GPU: stop here, before any data work, when cram sees no GPU
if [ "$device" = cuda ] && { [ "$mode" = pretrain ] || [ "$mode" = eval ]; } &&
  ! grep -q '^gpu 0:' "$OUT/info.txt"; then
  note "$mode: no usable GPU ($(grep -m1 '^cuda:' "$OUT/info.txt" || echo 'cram info failed')); CRAM_CHECK_DEVICE=cpu runs the steps on the CPU"
  exit 1
fi

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
# the newest run folder <root>/<date>/<time> made after a stamp file, or nothing
newest_since() { # stamp, root
  find "$2" -mindepth 2 -maxdepth 2 -type d -newer "$1" -printf '%T@ %p\n' 2>/dev/null |
    sort -n | tail -n 1 | cut -d' ' -f2-
}
# pretrain and eval run from a folder in the build folder, which holds their token store, run
# folders and tables/: out of the carried folders, kept between calls on a warm machine, never
# sent back whole (a full-size checkpoint is ~0.5 GB)
runs="$(realpath -m "$bdir")/runs"
cram_bin="$(realpath -m "$bdir")/cram"
in_runs() { # seconds, command...: run_logged from $runs
  mkdir -p "$runs"
  (cd "$runs" && run_logged "$@")
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
elif [ "$mode" = bench ]; then
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
    # the memory plan beside the measured peaks, and the largest microbatch per card
    grep -E '^(# memory plan|#   microbatch [0-9]+: planned|RESULT gpu_memory)' "$last" |
      sed -e "s/^# /bench $name: /" -e "s/^#   /bench $name:   /" -e "s/^RESULT /bench $name: /" |
      tee -a "$summary"
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
elif [ "$mode" = pretrain ]; then
  # 1. the tokenizer and token store, read from the carried .zst files as they are (cram
  # decompresses *.zst while reading); the store goes to $runs/data (impl.path)
  corpus="$PWD/.gpu-data-pretrain/debian-english"
  pbudget=${CRAM_PRETRAIN_BUDGET:-0.03}
  every=${CRAM_PRETRAIN_EVERY:-100} # µsteps between the loss lines (impl.print_loss_every_nth_step)
  data_args=(data=debian-english "data.sources.debian_english.path=$corpus")
  t0=$SECONDS
  in_runs "$(left)" "${cram_env[@]}" "$cram_bin" data "${data_args[@]}"
  rc=$?
  if [ $rc -ne 0 ]; then
    note "data: FAILED (rc=$rc) after $((SECONDS - t0)) s: $(tail -n 3 "$last" | tr '\n' ' ')"
    exit 1
  fi
  note "data: token store ready in $((SECONDS - t0)) s"
  grep -iE '^(train|valid|tokens|rows|vocab|store)' "$last" | head -n 8 | sed 's/^/data: /' |
    tee -a "$summary"
  # 2. the pretraining run. The recipe's schedules follow the budget, so it is not shortened to
  # fit what is left; a run the time limit stops still leaves its metrics (flushed at each print)
  s=$(left)
  need=$(awk -v b="$pbudget" 'BEGIN {printf "%d", b * 3600 + 45}')
  [ "$s" -lt "$need" ] &&
    note "pretrain: $s s left for a run that needs about $need s: it may be cut short (CRAM_CHECK_S raises the limit)"
  [ "$s" -lt 20 ] && s=20
  stamp="$runs/.started-$$"
  touch "$stamp"
  # the run dumps its first 300 microbatches with their lr and losses (CRAM_DUMP_BATCHES, a
  # benchmark hook of cram pretrain) for the PyTorch replay below; an older dump must not stand in
  dump="$runs/replay"
  rm -rf "$dump"
  dump_env=()
  [ "${CRAM_PRETRAIN_PEER:-1}" = 0 ] || dump_env=("CRAM_DUMP_BATCHES=$dump" "CRAM_DUMP_STEPS=300")
  t0=$SECONDS
  # shellcheck disable=SC2086 # CRAM_PRETRAIN_ARGS is a list of overrides
  in_runs "$s" "${cram_env[@]}" "${dump_env[@]}" "$cram_bin" pretrain name=gpu arch=crammed-bert \
    train=bert-o4 "${data_args[@]}" budget="$pbudget" impl.device="$device" \
    impl.print_loss_every_nth_step="$every" ${CRAM_PRETRAIN_ARGS:-}
  rc=$?
  case $rc in
    0) status=ok ;;
    124 | 137) status="stopped by the time limit" && fail=1 ;;
    *) status="FAILED (rc=$rc): $(grep -m1 -iE 'error|cannot' "$last")" && fail=1 ;;
  esac
  note "pretrain: $status after $((SECONDS - t0)) s on $device (budget=$pbudget h)"
  # the precision the run used, for the peer: bf16 autocast against cram's bf16, else fp32
  peer_dtype=fp32
  grep -qE 'Backend: [a-z0-9-]+, bf16' "$last" && peer_dtype=bf16
  rundir=$(newest_since "$stamp" "$runs/outputs/gpu/pretrain")
  rm -f "$stamp"
  if [ -n "$rundir" ]; then
    python3 scripts/gpu_summary.py pretrain "$rundir" --every "$every" | tee -a "$summary" || fail=1
    # the run folder's small files come back (the checkpoint stays)
    mkdir -p "$OUT/pretrain-run"
    for f in "$rundir"/*; do
      case "$f" in *.log | *.jsonl | *.yaml | *.png) cp "$f" "$OUT/pretrain-run/" ;; esac
    done
  else
    note "pretrain: no run folder was made (see $mode-logs.txt)"
    fail=1
  fi
  # 3. the same µsteps in PyTorch: same initial weights, microbatches and lr per update; the
  # losses side by side every $every µsteps. It informs (a difference does not fail the check);
  # it stops cleanly at its time limit with the µsteps it managed
  s=$(left)
  if [ "${CRAM_PRETRAIN_PEER:-1}" = 0 ]; then
    note "peer: not run (CRAM_PRETRAIN_PEER=0)"
  elif [ ! -f "$dump/batches.bin" ]; then
    note "peer: no replay dump in $dump (see $mode-logs.txt)"
  elif [ "$s" -lt 40 ]; then
    note "peer: not run: $s s left of the $budget s budget, the replay needs 40 s or more (CRAM_CHECK_S raises it)"
  else
    t0=$SECONDS
    run_logged "$s" "${CRAM_PEER_PYTHON:-python3}" bench/pretrain_peer.py "$dump" \
      --device "$device" --dtype "$peer_dtype" --every "$every" --time-limit $((s - 10))
    rc=$?
    # the table (its header, the first µsteps, every $every-th) and the RESULT line
    grep -E '^( *µstep| *[0-9]+ \||RESULT|# )' "$last" | sed 's/^/peer /' | tee -a "$summary"
    case $rc in
      0) note "peer: replayed in $((SECONDS - t0)) s ($device, $peer_dtype)" ;;
      77) note "peer: skipped ($(grep -m1 -i skip "$last"))" ;;
      124 | 137) note "peer: killed at the time limit after $((SECONDS - t0)) s" ;;
      *) note "peer: exit $rc after $((SECONDS - t0)) s: $(tail -n 1 "$last")" ;;
    esac
  fi
else
  # cram eval of the carried half-precision MiniLM on RTE and MRPC (the GLUE_sane recipe: 5
  # epochs, batch 16, lr 4e-5; seed 1), once per precision: fp32 is the row docs/gpu-notes.md
  # compares with the CPU's, bf16 what a GPU run uses by default. After each, its PyTorch +
  # transformers peer (bench/glue_hf_peer.py) on the same card, checkpoint, tasks, epochs, seed
  # and precision (bf16: autocast), when time is left: both times, their ratio and both scores
  # in the summary. The peer informs: its failure is reported and never fails the check
  model=$(find "$PWD/.gpu-data-eval" -mindepth 1 -maxdepth 1 -type d -name 'all-MiniLM-L6-v2-*' |
    sort | head -n 1)
  glue="$PWD/.gpu-data-eval/glue"
  tasks=rte,mrpc
  if [ -z "$model" ] || [ ! -d "$glue/RTE" ] || [ ! -d "$glue/MRPC" ]; then
    note "eval: .gpu-data-eval lacks the checkpoint or glue/RTE, glue/MRPC: run $(gpu_carry_prepare .gpu-data-eval) again"
    exit 1
  fi
  peer_py=${CRAM_PEER_PYTHON:-python3}
  cram_out=$(mktemp)
  trap 'rm -f "$last" "$cram_out"' EXIT
  read -ra precs <<<"${CRAM_EVAL_PRECISIONS:-fp32 bf16}"
  for i in "${!precs[@]}"; do
    prec=${precs[$i]}
    s=$(left)
    if [ "$s" -lt 30 ]; then
      note "eval $prec: not run (time budget spent)"
      fail=1
      continue
    fi
    name="minilm-$prec"
    stamp="$runs/.started-$$"
    mkdir -p "$runs" && touch "$stamp"
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086 # CRAM_EVAL_ARGS is a list of overrides
    in_runs "$s" "${cram_env[@]}" "$cram_bin" eval "eval/tasks=[$tasks]" \
      "eval.checkpoint=hf:$model" "eval.data_dir=$glue" impl.device="$device" \
      impl.precision="$prec" seed=1 name="$name" ${CRAM_EVAL_ARGS:-}
    rc=$?
    wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    cp "$last" "$cram_out"
    [ $rc -eq 0 ] || fail=1
    note "eval $prec: exit $rc, wall $wall s on $device ($(basename "$model"), RTE and MRPC)"
    [ $rc -eq 0 ] || note "eval $prec: $(grep -m1 -iE 'error|cannot' "$last")"
    rundir=$(newest_since "$stamp" "$runs/outputs/$name/downstream")
    rm -f "$stamp"
    mkdir -p "$OUT/eval-$prec"
    if [ -n "$rundir" ]; then
      python3 scripts/gpu_summary.py eval "$rundir" | sed "s/^eval:/eval $prec:/" | tee -a "$summary"
      for f in "$rundir"/*; do
        case "$f" in *.log | *.yaml) cp "$f" "$OUT/eval-$prec/" ;; esac
      done
    fi

    # the peer: what is left, less what the precisions still to come need (this run's wall
    # each, and 15 s), under a time limit; a peer stopped there keeps the tasks it finished
    later=$((${#precs[@]} - i - 1))
    keep=$((later * (${wall%.*} + 15)))
    s=$(($(left) - keep))
    if [ "${CRAM_EVAL_PEER:-1}" = 0 ]; then
      note "eval $prec peer: not run (CRAM_EVAL_PEER=0)"
      continue
    elif [ "$s" -lt 40 ]; then
      kept=""
      [ "$later" -gt 0 ] && kept=", $keep s of them kept for the $later cram run(s) still to come"
      note "eval $prec peer: not run: $(left) s left of the $budget s budget$kept; the peer needs 40 s or more (CRAM_CHECK_S raises it)"
      continue
    fi
    # the epochs, seed and dryrun the cram run resolved (CRAM_EVAL_ARGS may change them); the
    # precision from its Backend line (bf16 -> autocast), else the one asked for
    cfg="$rundir/config.yaml"
    epochs=$(awk '/^eval:/ {e = 1; next} /^[^ ]/ {e = 0} e && /^  epochs:/ {print $2; exit}' \
      "$cfg" 2>/dev/null)
    seed=$(awk '/^seed:/ {print $2; exit}' "$cfg" 2>/dev/null)
    peer_args=()
    what="${epochs:-5} epochs"
    if grep -qiE '^dryrun: *true' "$cfg" 2>/dev/null; then
      peer_args+=(--dryrun)
      what="dryrun: one step per task"
    fi
    peer_dtype=fp32
    if grep -qE 'Backend: [a-z0-9-]+, bf16' "$cram_out"; then
      peer_dtype=bf16
    elif ! grep -qE 'Backend: ' "$cram_out" && [ "$prec" = bf16 ]; then
      peer_dtype=bf16
    fi
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086 # CRAM_EVAL_PEER_ARGS: more options of the peer
    run_logged "$s" "$peer_py" bench/glue_hf_peer.py "$model" "$glue" "$tasks" "${epochs:-5}" \
      "${seed:-1}" "$(nproc)" --device "$device" --dtype "$peer_dtype" "${peer_args[@]}" \
      ${CRAM_EVAL_PEER_ARGS:-}
    rc=$?
    pwall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    cp "$last" "$OUT/eval-$prec/peer.txt"
    case $rc in
      0) note "eval $prec peer: exit 0, wall $pwall s on $device ($peer_dtype, $what, seed ${seed:-1}; output in eval-$prec/peer.txt)" ;;
      77) note "eval $prec peer: skipped ($(grep -m1 '^PEER skip' "$last" || tail -n 1 "$last"))" ;;
      124 | 137) note "eval $prec peer: stopped by the time limit ($s s); the tasks it finished are below" ;;
      *) note "eval $prec peer: failed (exit $rc after $pwall s; the check does not fail for it): $(grep -v '^\s*$' "$last" | tail -n 1)" ;;
    esac
    if [ $rc -ne 77 ]; then
      # the peer's whole wall time only when it ran to its end
      pw=()
      [ $rc -eq 0 ] && pw=(--peer-wall "$pwall")
      python3 scripts/gpu_summary.py peer "$rundir" "$last" --cram-output "$cram_out" \
        --cram-wall "$wall" "${pw[@]}" | sed "s/^peer:/eval $prec peer:/" | tee -a "$summary"
    fi
  done
fi

echo "---- summary ($mode, $((SECONDS + budget - deadline)) s)"
cat "$summary"
exit $fail
