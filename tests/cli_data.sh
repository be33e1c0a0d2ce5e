#!/usr/bin/env bash
# Command-line behaviour of `cram data`: build, reuse, verify, inspect, and the errors for a
# missing corpus, a corrupted store and forbid_dataset_preprocessing. Works in a temp folder on a
# small generated corpus (the KJV config pointed at it, with a small vocabulary).
# Usage: tests/cli_data.sh path/to/cram   (run from the repository root)
set -u

. "$(dirname "$0")/lib_cli.sh"

ARGS=(data=kjv data.vocab_size=200 data.validation_seqs=8)

run missing 1 data "${ARGS[@]}"
has missing "data/corpora/kjv"

mkdir -p "$tmp/data/corpora/kjv"
for i in $(seq 1 400); do
    echo "Verse $i of the generated text: and the words went on, $((i * 7 % 13)) times over."
    echo "A second line in paragraph $i; the end."
    echo
done >"$tmp/data/corpora/kjv/text.txt"

run build 0 data "${ARGS[@]}"
has build "(built)"
has build "documents:   400 kept of 400 read"
has build "peak RSS"
run reuse 0 data "${ARGS[@]}"
has reuse "(reused)"
run verify 0 data verify "${ARGS[@]}"
has verify "verified"
run inspect 0 data inspect row=0 "${ARGS[@]}"
has inspect "train row 0 of"
has inspect "_"
run inspect_valid 0 data inspect split=valid row=1 "${ARGS[@]}"
has inspect_valid "valid row 1 of 8"
run inspect_range 2 data inspect row=99999 "${ARGS[@]}"
# the tokenizer a store build trains, trained alone from the same data config
run tok 0 tokenizer train "${ARGS[@]}" out="$tmp/tok"
has tok "tokenizer: 200 tokens"
[ -f "$tmp/tok/tokenizer.json" ] || fail "tok: no tokenizer.json"
run tok_noout 2 tokenizer train "${ARGS[@]}"
run enc 0 tokenizer encode tokenizer="$tmp/tok" text="and the words went on"
has enc "ids:"
run forbid 1 data "${ARGS[@]}" data.seq_length=64 impl.forbid_dataset_preprocessing=True
has forbid "forbid_dataset_preprocessing"

store=$(ls -d "$tmp"/data/kjv_WordPiecex200_* | head -1)
printf '\x01' | dd of="$store/train.bin" bs=1 seek=100 conv=notrunc status=none
run corrupt 1 data "${ARGS[@]}"
has corrupt "corrupted"
has corrupt "delete the folder"
has corrupt "$(basename "$store")"

finish
