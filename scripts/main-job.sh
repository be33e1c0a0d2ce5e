#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the build dependencies, build cram, build the
# embedded default corpus (English text from Debian packages), then pretrain a small crammed-bert
# (4 layers, hidden 256) on it for a few minutes of wall clock on the CPU, report where the
# checkpoint went and its validation MLM loss, and fine-tune and score it on GLUE when a GLUE
# folder is available. Run it from anywhere; outputs go to the repository (outputs/main/...,
# data/, tables/).
#
#   scripts/main-job.sh                 # about 5 minutes of training (budget=0.08 hours)
#   BUDGET=0.5 scripts/main-job.sh      # longer
#   THREADS=1 scripts/main-job.sh       # fewer threads (helps on a machine busy with other work)
#   scripts/main-job.sh train.optim.lr=2e-3 ...   # extra overrides go to `cram pretrain`
#   GLUE_DIR=/path/to/glue_data scripts/main-job.sh   # evaluate on this GLUE folder (default:
#                                       # data/glue_data when it exists); EVAL_EPOCHS=5 for the
#                                       # recipe's 5 epochs (default 1, to keep the job short);
#                                       # EVAL_TASKS=rte,mrpc,stsb,cola picks the tasks
#
# The full-size recipe of the paper, for a GPU (CUDA backend: a later issue) or a long CPU run:
#   build/cram pretrain name=full arch=crammed-bert train=bert-o4 data=debian-english budget=24
set -euo pipefail
case "${1:-}" in
-h | --help)
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" # the comment block above
    exit 0
    ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
BUDGET=${BUDGET:-0.08}
# each stage's wall time, printed when the next one starts and at the end
stage_name="" stage_start=$SECONDS
stage() {
    [ -n "$stage_name" ] && echo "   ($stage_name took $((SECONDS - stage_start)) s)"
    stage_name=$1 stage_start=$SECONDS
    echo "== $1"
}
trap '[ -n "$stage_name" ] && echo "   ($stage_name took $((SECONDS - stage_start)) s)"' EXIT
THREADS=${THREADS:-0}
BUILD=${BUILD:-build}

stage "1/5 dependencies"
scripts/install-deps.sh

stage "2/5 build ($BUILD)"
cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cram

stage "3/5 corpus (data/corpora/debian-english; finished sources are kept)"
scripts/fetch-corpus

stage "4/5 pretraining for $BUDGET hours"
# Why these settings: a 4-layer/256 crammed-bert with the bert-o4 recipe (AdamW 1e-3, triangular
# lr over the budget, clipping 0.5, MLM 0.25), but the batch ramp ends at 64 rows instead of
# 8192, since a few minutes on 2 CPU cores see only a few hundred microbatches of 16: with 8192
# there would be a handful of updates. It grows in steps of 16 rows (the recipe's 128 would be
# the whole 64 at once). An 8192-word vocabulary keeps the decoder small.
export CRAM_CONFIG_PATH="$root/configs"
log=$(mktemp)
trap 'rm -f "$log"; [ -n "$stage_name" ] && echo "   ($stage_name took $((SECONDS - stage_start)) s)"' EXIT
"$BUILD"/cram pretrain name=main arch=crammed-bert train=bert-o4 data=debian-english impl=cpu \
    budget="$BUDGET" impl.threads="$THREADS" \
    arch.num_transformer_layers=4 arch.hidden_size=256 arch.intermed_size=1024 \
    arch.attention.num_attention_heads=4 \
    data.vocab_size=8192 data.validation_seqs=512 \
    train.batch_size=64 train.batch_size_quantum=16 impl.microbatch_size=16 \
    impl.print_loss_every_nth_step=10 \
    "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

echo
echo "== result"
grep -E "Train loss .* at step " "$log" | head -1 | sed 's/^\[[^]]*\] /first print: /' || true
grep -E "Train loss .* at step " "$log" | tail -1 | sed 's/^\[[^]]*\] /last print:  /' || true
grep -E "Trained [0-9]+ microbatches" "$log" | sed 's/^\[[^]]*\] //' || true
grep -E "Validation MLM loss" "$log" | sed 's/^\[[^]]*\] //' || true
grep -E "Final checkpoint:" "$log" | sed 's/^\[[^]]*\] //' || true
grep -E "Run folder:" "$log" | sed 's/^\[[^]]*\] //' || true
[ "$status" -eq 0 ] || exit "$status"

echo
GLUE_DIR=${GLUE_DIR:-data/glue_data}
if [ ! -f "$GLUE_DIR/RTE/train.tsv" ]; then
    stage "5/5 evaluation: skipped, no GLUE folder at $GLUE_DIR"
    echo "GLUE is not in Debian or PyPI: download it in the standard glue_data layout"
    echo "(CoLA/, MRPC/, RTE/, STS-B/, ... each with train.tsv and dev.tsv) and rerun with"
    echo "GLUE_DIR=/path/to/glue_data, or evaluate this checkpoint later with:"
    echo "  $BUILD/cram eval name=main eval.checkpoint=latest eval.data_dir=/path/to/glue_data impl.microbatch_size=16"
    exit 0
fi
GLUE_DIR=$(cd "$GLUE_DIR" && pwd)
EVAL_EPOCHS=${EVAL_EPOCHS:-1}
EVAL_TASKS=${EVAL_TASKS:-}
if [ -z "$EVAL_TASKS" ]; then # the small tasks whose files are there
    for t in rte:RTE mrpc:MRPC stsb:STS-B cola:CoLA; do
        [ -f "$GLUE_DIR/${t#*:}/train.tsv" ] && EVAL_TASKS="$EVAL_TASKS${EVAL_TASKS:+,}${t%%:*}"
    done
fi
stage "5/5 evaluation on $EVAL_TASKS ($EVAL_EPOCHS epoch(s); GLUE_sane settings otherwise)"
"$BUILD"/cram eval name=main eval.checkpoint=latest eval.data_dir="$GLUE_DIR" \
    "eval/tasks=[$EVAL_TASKS]" eval.epochs="$EVAL_EPOCHS" impl.microbatch_size=16 \
    impl.shuffle_in_dataloader=True impl.threads="$THREADS"
