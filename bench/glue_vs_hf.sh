#!/usr/bin/env bash
# GLUE fine-tuning of the imported all-MiniLM-L6-v2 by cram and by transformers + PyTorch with the
# same hyperparameters (GLUE_sane: lr 4e-5, batch 16, cosine with 10% warmup, dropout on, max
# length 128) and the same sequential data order, printed side by side.
#
# usage: bench/glue_vs_hf.sh [TASKS=rte,mrpc,stsb,cola] [EPOCHS=5] [SEED=1]
# env:   CRAM (binary, default build/cram), GLUE_DIR (default ../shared/glue),
#        MODEL (default data/hf/all-MiniLM-L6-v2), PY (python with torch+transformers,
#        default data/venv-eval/bin/python), THREADS (default 2), PARALLEL=1 runs the peer at the
#        same time as cram (give each THREADS=1 on a 2-core machine), TABLE_ONLY=1 prints the
#        table again from the logs in OUT without running anything
set -euo pipefail
cd "$(dirname "$0")/.."
TASKS=${1:-rte,mrpc,stsb,cola}
EPOCHS=${2:-5}
SEED=${3:-1}
CRAM=${CRAM:-build/cram}
GLUE_DIR=${GLUE_DIR:-$(cd ../shared/glue 2>/dev/null && pwd)}
MODEL=${MODEL:-data/hf/all-MiniLM-L6-v2}
PY=${PY:-data/venv-eval/bin/python}
THREADS=${THREADS:-2}
OUT=${OUT:-outputs/glue_vs_hf}
mkdir -p "$OUT"
[ -f "$MODEL/model.safetensors" ] || { echo "missing $MODEL: run scripts/make_hf_fixtures.py first" >&2; exit 77; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u)"
tasks_yaml=$(echo "$TASKS" | tr ',' '\n')
if [ "${TABLE_ONLY:-0}" != 1 ]; then
: >"$OUT/cram.txt"
peer() {
  /usr/bin/time -f "[hf] wall %e s" "$PY" bench/glue_hf_peer.py "$MODEL" "$GLUE_DIR" "$TASKS" "$EPOCHS" "$SEED" "$THREADS" \
    >"$OUT/hf.txt" 2>&1
}
peer_pid=
if [ "${PARALLEL:-0}" = 1 ]; then
  peer &
  peer_pid=$!
fi
for t in $tasks_yaml; do
  /usr/bin/time -f "[cram] $t wall %e s" "$CRAM" eval eval/tasks="$t" eval.checkpoint="hf:$MODEL" \
    eval.data_dir="$GLUE_DIR" eval.epochs="$EPOCHS" impl.microbatch_size=16 impl.threads="$THREADS" \
    seed="$SEED" base_dir="$OUT/runs" 2>&1 | tee -a "$OUT/cram.txt" | grep -E "Validation|Finetuning|wall|Train loss"
done
if [ -n "$peer_pid" ]; then wait "$peer_pid"; else peer; fi
grep -E "^\[hf\]" "$OUT/hf.txt"
fi
echo
echo "task   metric                  cram      transformers   (last epoch of $EPOCHS, seed $SEED)"
for t in $tasks_yaml; do
  hf=$(grep "RESULT $t " "$OUT/hf.txt" | cut -d' ' -f4-)
  cr=$(awk -v t="$t" '/Finetuning task/ {cur=$5} /Validation metric is/ && cur==t {line=$0} END {print line}' "$OUT/cram.txt" |
    sed 's/.*Validation metric is //; s/ after epoch.*//')
  printf "%-6s cram: %-34s hf: %s\n" "$t" "$cr" "$hf"
done
echo
echo "task   training min/epoch: cram  transformers  speedup (mean over epochs; same run)"
for t in $tasks_yaml; do
  cm=$(awk -v t="$t" '/Finetuning task/ {cur=$5} /Perf: / && cur==t {s=$0; sub(/.*Perf: /, "", s); sub(/min.*/, "", s); x+=s; n++}
    END {if (n) printf "%.2f", x/n}' "$OUT/cram.txt")
  hm=$(awk -v t="$t" '$1=="[hf]" && $2==t && $3=="epoch" {s=$0; sub(/ min;.*/, "", s); sub(/.*, /, "", s); x+=s; n++}
    END {if (n) printf "%.2f", x/n}' "$OUT/hf.txt")
  r=$(awk -v a="$cm" -v b="$hm" 'BEGIN {if (a > 0 && b > 0) printf "%.2fx", b / a; else print "-"}')
  printf "%-6s %32s  %12s  %7s\n" "$t" "${cm:--}" "${hm:--}" "$r"
done
