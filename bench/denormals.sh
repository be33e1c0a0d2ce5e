#!/usr/bin/env bash
# Fine-tuning speed of a trained checkpoint with subnormal floats flushed to zero (the default,
# impl.flush_denormals=True) against kept (False), in the same run: the same RTE microbatches
# (160 training rows = 10 steps of 16, 50 dev rows), one thread, so the ratio is the cost of the
# x86 microcode assists on subnormal operands, not of scheduling. Prints both epoch times, the
# speedup, and both runs' loss and accuracy (they should agree: flushed values are < 1.2e-38).
#   bench/denormals.sh CHECKPOINT_DIR [GLUE_DIR] [build-dir]
# CHECKPOINT_DIR: a cram checkpoint folder (outputs/<name>/checkpoints/<...>/), e.g. the main
# job's; GLUE_DIR defaults to data/glue_data.
set -euo pipefail
cd "$(dirname "$0")/.."
ckpt=${1:?usage: bench/denormals.sh CHECKPOINT_DIR [GLUE_DIR] [build-dir]}
glue=${2:-data/glue_data}
bin=${3:-build}/cram
[ -x "$bin" ] || { echo "bench/denormals.sh: no $bin (build first)" >&2; exit 2; }
[ -f "$glue/RTE/train.tsv" ] || { echo "bench/denormals.sh: no $glue/RTE/train.tsv" >&2; exit 2; }
ckpt=$(cd "$ckpt" && pwd)
export CRAM_CONFIG_PATH=${CRAM_CONFIG_PATH:-$PWD/configs}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/glue/RTE"
head -n 161 "$glue/RTE/train.tsv" >"$work/glue/RTE/train.tsv"
head -n 51 "$glue/RTE/dev.tsv" >"$work/glue/RTE/dev.tsv"
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), 1 thread, checkpoint $(basename "$ckpt")"
run() { # flush: True|False
  (cd "$work" && "$OLDPWD/$bin" eval name=bench_$1 eval.checkpoint="$ckpt" eval.data_dir="$work/glue" \
    eval/tasks=rte eval.epochs=1 impl.microbatch_size=16 impl.threads=1 seed=1 \
    impl.flush_denormals=$1 >"$work/$1.log" 2>&1) || { tail -5 "$work/$1.log"; exit 1; }
  local t s
  t=$(grep -o 'Perf: [0-9.]*min per epoch' "$work/$1.log" | awk '{print $2}' | sed 's/min//')
  s=$(awk "BEGIN {print $t * 60}")
  echo "RESULT denormals flush=$1 epoch_seconds=$s $(grep -o 'Train loss [0-9.]*' "$work/$1.log" | tail -1 | tr ' ' '_') $(grep -o 'Validation metric is accuracy: [0-9.]*' "$work/$1.log" | tail -1 | awk '{print "accuracy=" $NF}')" >&2
  echo "$s"
}
on=$(run True)
off=$(run False)
awk -v a="$off" -v b="$on" 'BEGIN {printf "RESULT denormals speedup_flush_over_keep=%.2f (kept %.1f s, flushed %.1f s per 10 steps)\n", a / b, a, b}'
