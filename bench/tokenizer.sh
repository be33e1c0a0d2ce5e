#!/usr/bin/env bash
# Tokenizer benchmark, cram vs Hugging Face tokenizers on the same text in the same run:
# WordPiece training time (reference settings) and encode throughput with one thread and all threads.
# Usage: bench/tokenizer.sh [TEXT_FILE] [VOCAB=32768]
# Without TEXT_FILE the text is the KJV corpus of scripts/fetch-corpus (data/corpora/kjv), or the
# 1 MB test corpus when that is missing. BUILD=dir names the CMake build folder (default build).
# Needs: python3 with `tokenizers` (pip install tokenizers).
set -euo pipefail
cd "$(dirname "$0")/.."
TEXT=${1:-}
VOCAB=${2:-32768}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "$TEXT" ]; then
  # the KJV corpus of scripts/fetch-corpus when it is there, else the 1 MB test corpus
  TEXT=$WORK/text.txt
  if [ -f data/corpora/kjv/kjv.txt ]; then
    cp data/corpora/kjv/kjv.txt "$TEXT"
  else
    zstd -dc tests/fixtures/tok/corpus.txt.zst > "$TEXT"
  fi
fi
# the benchmark program is a CMake target like the others
BUILD=${BUILD:-build}
cmake --build "$BUILD" --target bench_tokenizer_bench >/dev/null
cp "$BUILD/bench_tokenizer_bench" "$WORK/tokbench"
echo "text: $(wc -c < "$TEXT") bytes, $(wc -l < "$TEXT") lines; $(nproc) cores; vocab $VOCAB"
"$WORK/tokbench" train "$TEXT" "$VOCAB" 0 WordPiece "$WORK/cram_tok"
"$WORK/tokbench" train "$TEXT" "$VOCAB" 1 WordPiece
python3 bench/tokenizer_hf.py train "$TEXT" "$VOCAB" "$WORK/hf_tok.json"
RAYON_RS_NUM_CPUS=1 python3 bench/tokenizer_hf.py train "$TEXT" "$VOCAB" "$WORK/hf_tok1.json"
# both encode with cram's vocabulary (cram's tokenizer.json, loaded by HF)
"$WORK/tokbench" encode "$WORK/cram_tok" "$TEXT" 3
RAYON_RS_NUM_CPUS=1 python3 bench/tokenizer_hf.py encode "$WORK/cram_tok/tokenizer.json" "$TEXT" 3
python3 bench/tokenizer_hf.py encode "$WORK/cram_tok/tokenizer.json" "$TEXT" 3
