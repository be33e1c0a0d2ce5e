#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the build dependencies, build cram, build the
# embedded default corpus (English text from Debian packages), then pretrain a small crammed-bert
# (4 layers, hidden 256) on it for a few minutes of wall clock on the CPU, and report where the
# checkpoint went and its validation MLM loss. Run it from anywhere; outputs go to the repository
# (outputs/main/..., data/, tables/).
#
#   scripts/main-job.sh                 # about 5 minutes of training (budget=0.08 hours)
#   BUDGET=0.5 scripts/main-job.sh      # longer
#   THREADS=1 scripts/main-job.sh       # fewer threads (helps on a machine busy with other work)
#   scripts/main-job.sh train.optim.lr=2e-3 ...   # extra overrides go to `cram pretrain`
#
# The full-size recipe of the paper, for a GPU (CUDA backend: a later issue) or a long CPU run:
#   build/cram pretrain name=full arch=crammed-bert train=bert-o4 data=debian-english budget=24
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
BUDGET=${BUDGET:-0.08}
THREADS=${THREADS:-0}
BUILD=${BUILD:-build}

echo "== 1/4 dependencies"
scripts/install-deps.sh

echo "== 2/4 build ($BUILD)"
cmake -S . -B "$BUILD" >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cram

echo "== 3/4 corpus (data/corpora/debian-english; finished sources are kept)"
scripts/fetch-corpus

echo "== 4/4 pretraining for $BUDGET hours"
# Why these settings: a 4-layer/256 crammed-bert with the bert-o4 recipe (AdamW 1e-3, triangular
# lr over the budget, clipping 0.5, MLM 0.25), but the batch ramp ends at 64 rows instead of
# 8192, since a few minutes on 2 CPU cores see only a few hundred microbatches of 16: with 8192
# there would be a handful of updates. An 8192-word vocabulary keeps the decoder small.
export CRAM_CONFIG_PATH="$root/configs"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$BUILD"/cram pretrain name=main arch=crammed-bert train=bert-o4 data=debian-english impl=cpu \
    budget="$BUDGET" impl.threads="$THREADS" \
    arch.num_transformer_layers=4 arch.hidden_size=256 arch.intermed_size=1024 \
    arch.attention.num_attention_heads=4 \
    data.vocab_size=8192 data.validation_seqs=512 \
    train.batch_size=64 impl.microbatch_size=16 impl.print_loss_every_nth_step=10 \
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
echo "Evaluation on GLUE comes with the evaluation issue (cram eval); it is not run here."
exit "$status"
