#!/usr/bin/env bash
# The training loss of the first STEPS microsteps of `cram pretrain` on each backend, side by
# side: the 4-layer/256-wide crammed-bert (bert-o4: AdamW 1e-3, clipping 0.5, MLM 0.25) on the
# tests' fixture corpus, one optimizer update per microbatch, the same seed and data order on
# every row. The learning rate follows train.steps (scheduler triangle2) instead of the
# recipe's wall clock, so that a faster backend does not see another schedule.
#   bench/loss_curves.sh            table: µstep, then one loss column per backend
# Environment: CRAM (the binary; default $CRAM_BIN, else build/cram), STEPS (300), MBS
# (microbatch, 16), BACKENDS ("cpu-fp32 cuda-fp32 cuda-bf16"), THREADS (CPU threads, 0 = all),
# TIME_S (seconds for all rows together; a row stopped by it shows the microsteps it finished),
# KEEP (a folder to keep the runs in; default a temporary one, removed at the end).
# A backend that cannot run here gets a column of n/a and the reason under the table.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
CRAM=${CRAM:-${CRAM_BIN:-build/cram}}
STEPS=${STEPS:-300}
MBS=${MBS:-16}
BACKENDS=${BACKENDS:-cpu-fp32 cuda-fp32 cuda-bf16}
THREADS=${THREADS:-0}
TIME_S=${TIME_S:-0}
[ -x "$CRAM" ] || { echo "loss_curves: no cram binary at $CRAM (set CRAM)" >&2; exit 2; }
CRAM=$(cd "$(dirname "$CRAM")" && pwd)/$(basename "$CRAM")
if [ -n "${KEEP:-}" ]; then
  work=$KEEP
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
deadline=$((SECONDS + TIME_S))
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"
export CRAM_PEAK_GFLOPS=${CRAM_PEAK_GFLOPS:-100} # no matmul measurement at start-up
export CRAM_CONFIG_PATH=${CRAM_CONFIG_PATH:-$PWD/configs}

DATA=(data=kjv data.vocab_size=2000 data.validation_seqs=64 "data.sources.kjv.path=$corpus"
  "impl.path=$work/data")
ARGS=("${DATA[@]}" arch=crammed-bert arch.num_transformer_layers=4 arch.hidden_size=256
  arch.intermed_size=1024 arch.attention.num_attention_heads=4 train=bert-o4
  train.scheduler=triangle2 "train.steps=$STEPS" "train.batch_size=$MBS" train.batch_size_ramp=0
  "impl.microbatch_size=$MBS" impl.print_loss_every_nth_step=1 "impl.threads=$THREADS"
  budget=1000 seed=7 "base_dir=$work/outputs")

# the token store once, so that no row's time or log holds its build
if ! (cd "$work" && "$CRAM" data "${DATA[@]}") >"$work/data.log" 2>&1; then
  echo "loss_curves: building the token store failed:" >&2
  tail -n 5 "$work/data.log" >&2
  exit 1
fi

declare -A why
# the GPU rows first: they are quick, and the CPU row then gets what is left of TIME_S
order=$(for b in $BACKENDS; do [ "${b%%-*}" = cuda ] && echo "$b"; done
  for b in $BACKENDS; do [ "${b%%-*}" = cuda ] || echo "$b"; done)
for b in $order; do
  dev=${b%-*}
  prec=${b#*-}
  lim=()
  if [ "$TIME_S" -gt 0 ]; then
    left=$((deadline - SECONDS))
    if [ "$left" -lt 5 ]; then
      why[$b]="not run: TIME_S=$TIME_S spent"
      continue
    fi
    lim=(timeout -s TERM -k 10 "$left")
  fi
  t0=$SECONDS
  : >"$work/$b.loss"
  (cd "$work" && "${lim[@]}" "$CRAM" pretrain "${ARGS[@]}" "name=curve-$b" "impl.device=$dev" \
    "impl.precision=$prec") >"$work/$b.log" 2>&1
  rc=$?
  m=""
  for f in "$work"/outputs/curve-"$b"/pretrain/*/*/metrics.jsonl; do [ -f "$f" ] && m=$f; done
  if [ -n "$m" ]; then
    sed -n 's/.*"step": \([0-9]*\),.*"last_loss": \([-0-9.eE+naif]*\),.*/\1 \2/p' "$m" \
      >"$work/$b.loss"
  fi
  n=$(wc -l <"$work/$b.loss")
  if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
    msg=$(grep -m1 -E "cram pretrain: |error|ERROR" "$work/$b.log" | sed 's/^\[[^]]*\] //')
    why[$b]="unavailable (exit $rc): ${msg:-see $b.log}"
  elif [ "$rc" -ne 0 ]; then
    why[$b]="stopped after $n µsteps (exit $rc$([ "$rc" -eq 124 ] && echo ', out of time'))"
  else
    why[$b]="$n µsteps in $((SECONDS - t0)) s"
  fi
done

# the table: one row per µstep, one column per backend in the order asked for
printf '%s ' "µstep" # µ is two bytes: printf would pad by bytes
for b in $BACKENDS; do printf ' %12s' "$b"; done
echo
files=()
for b in $BACKENDS; do
  [ -f "$work/$b.loss" ] || : >"$work/$b.loss"
  files+=("$work/$b.loss")
done
awk -v steps="$STEPS" -v names="$BACKENDS" '
  BEGIN { nb = split(names, nm, " "); for (i = 1; i < ARGC; i++) col[ARGV[i]] = i }
  { loss[col[FILENAME], $1] = $2 }
  END {
    for (s = 1; s <= steps; s++) {
      line = sprintf("%-6d", s)
      for (k = 1; k <= nb; k++)
        line = line sprintf(" %12s", ((k, s) in loss) ? sprintf("%.4f", loss[k, s]) : "n/a")
      print line
    }
    # each row against the first one over the µsteps both have
    for (k = 2; k <= nb; k++) {
      mx = 0; n = 0; last = ""
      for (s = 1; s <= steps; s++)
        if (((1, s) in loss) && ((k, s) in loss)) {
          d = loss[k, s] - loss[1, s]; if (d < 0) d = -d
          if (d > mx) mx = d
          n++; last = d
        }
      if (n)
        printf "# %s vs %s: max |difference| %.4f over %d µsteps, %.4f at the last\n",
          nm[k], nm[1], mx, n, last
    }
  }' "${files[@]}"
for b in $BACKENDS; do echo "# $b: ${why[$b]:-not run}"; done
