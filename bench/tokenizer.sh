#!/usr/bin/env bash
# Tokenizer benchmark, cram vs Hugging Face tokenizers on the same text in the same run:
# WordPiece training time (reference settings) and encode throughput with one thread and all threads.
# Usage: bench/tokenizer.sh [TEXT_FILE] [VOCAB=32768]
# Without TEXT_FILE the text is the KJV Bible + fortunes (apt-get install bible-kjv fortunes).
# Needs: python3 with `tokenizers` (pip install tokenizers).
set -euo pipefail
cd "$(dirname "$0")/.."
TEXT=${1:-}
VOCAB=${2:-32768}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [ -z "$TEXT" ]; then
  TEXT=$WORK/text.txt
  bible Gen1:1-Rev22:21 | sed -e 's/^[^ ]* //' -e '/^$/d' > "$TEXT"
  for f in /usr/share/games/fortunes/*.u8; do
    awk 'BEGIN{RS="\n%\n"} {gsub(/\n/," "); if (length($0)) print}' "$f"
  done >> "$TEXT"
fi
# the tokenizer needs only src/tok and core's file helpers: build them directly (as cmake would, -O2)
cc -O2 -fopenmp -D_GNU_SOURCE -Isrc bench/tokenizer_bench.c src/tok/*.c src/core/fileio.c \
   -lutf8proc -lcjson -lzstd -lm -o "$WORK/tokbench"
echo "text: $(wc -c < "$TEXT") bytes, $(wc -l < "$TEXT") lines; $(nproc) cores; vocab $VOCAB"
"$WORK/tokbench" train "$TEXT" "$VOCAB" 0 WordPiece "$WORK/cram_tok"
"$WORK/tokbench" train "$TEXT" "$VOCAB" 1 WordPiece
python3 bench/tokenizer_hf.py train "$TEXT" "$VOCAB" "$WORK/hf_tok.json"
RAYON_RS_NUM_CPUS=1 python3 bench/tokenizer_hf.py train "$TEXT" "$VOCAB" "$WORK/hf_tok1.json"
# both encode with cram's vocabulary (cram's tokenizer.json, loaded by HF)
"$WORK/tokbench" encode "$WORK/cram_tok" "$TEXT" 3
RAYON_RS_NUM_CPUS=1 python3 bench/tokenizer_hf.py encode "$WORK/cram_tok/tokenizer.json" "$TEXT" 3
python3 bench/tokenizer_hf.py encode "$WORK/cram_tok/tokenizer.json" "$TEXT" 3
