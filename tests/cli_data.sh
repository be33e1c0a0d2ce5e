#!/usr/bin/env bash
# Command-line behaviour of `cram data`: build, reuse, verify, inspect (and its refusal of bad
# row= and split= values), and the errors for a missing corpus, a corrupted store, a changed or
# missing tokenizer file, a corpus that is not text and forbid_dataset_preprocessing. Works in a
# temp folder on a small generated corpus (the KJV config pointed at it, with a small vocabulary).
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
has verify "tokenizer:   4 files verified"
run inspect 0 data inspect row=0 "${ARGS[@]}"
has inspect "train row 0 of"
has inspect "_"
run inspect_valid 0 data inspect split=valid row=1 "${ARGS[@]}"
has inspect_valid "valid row 1 of 8"
run inspect_range 2 data inspect row=99999 "${ARGS[@]}"
has inspect_range "row must be an integer in \[0, "
# bad values are refused, not read as row 0, a random row or the train split
run inspect_abc 2 data inspect row=abc "${ARGS[@]}"
has inspect_abc "row=abc: row must be an integer in \[0, "
run inspect_neg 2 data inspect row=-5 "${ARGS[@]}"
has inspect_neg "row=-5: row must be an integer"
run inspect_part 2 data inspect row=3x "${ARGS[@]}"
run inspect_empty 2 data inspect row= "${ARGS[@]}"
run inspect_vrange 2 data inspect split=valid row=8 "${ARGS[@]}"
has inspect_vrange "\[0, 8) for the valid split"
run inspect_split 2 data inspect split=test "${ARGS[@]}"
has inspect_split "split=test: split must be train or valid"
run inspect_train 0 data inspect split=train row=2 "${ARGS[@]}"
has inspect_train "train row 2 of"
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
# the tokenizer files are checked: one changed byte, a missing tokenizer.json
cp "$store/tokenizer/vocab.txt" "$tmp/vocab.orig"
printf 'Q' | dd of="$store/tokenizer/vocab.txt" bs=1 seek=20 conv=notrunc status=none
run tok_changed 1 data verify "${ARGS[@]}"
has tok_changed "tokenizer/vocab.txt changed after the store was built"
has tok_changed "rm -rf 'data/$(basename "$store")'"
cp "$tmp/vocab.orig" "$store/tokenizer/vocab.txt"
mv "$store/tokenizer/tokenizer.json" "$tmp/tokenizer.json.orig"
run tok_missing 1 data "${ARGS[@]}"
has tok_missing "tokenizer/tokenizer.json is missing"
mv "$tmp/tokenizer.json.orig" "$store/tokenizer/tokenizer.json"
run tok_restored 0 data verify "${ARGS[@]}"
# a version 1 store (no checksums) is still read, its tokenizer reported unchecked
sed -i 's/"store_version":\t2/"store_version":\t1/' "$store/meta.json"
run store_v1 0 data verify "${ARGS[@]}"
has store_v1 "tokenizer:   UNCHECKED: store version 1"
has store_v1 "its tokenizer is unchecked"
sed -i 's/"store_version":\t1/"store_version":\t2/' "$store/meta.json"

printf '\x01' | dd of="$store/train.bin" bs=1 seek=100 conv=notrunc status=none
run corrupt 1 data "${ARGS[@]}"
has corrupt "corrupted"
has corrupt "delete the folder"
has corrupt "$(basename "$store")"

# corpora that are not text stop the build at reading, naming the file
mkdir -p "$tmp/nt/corpora/kjv"
printf '\xff\xfe' >"$tmp/nt/corpora/kjv/text.txt"
iconv -f UTF-8 -t UTF-16LE "$tmp/data/corpora/kjv/text.txt" >>"$tmp/nt/corpora/kjv/text.txt"
run utf16 1 data "${ARGS[@]}" impl.path=nt
has utf16 "text.txt looks like UTF-16"
has utf16 "iconv -f UTF-16 -t UTF-8"
{ echo "a line of text"; head -c 300000 /dev/urandom; } >"$tmp/nt/corpora/kjv/text.txt"
run random 1 data "${ARGS[@]}" impl.path=nt
has random "text.txt does not look like text"
has random "offset "

finish
