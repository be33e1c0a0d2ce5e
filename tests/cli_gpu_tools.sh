#!/usr/bin/env bash
# The helpers of the GPU checks, on the CPU: scripts/hf_to_half.py writes F16 and BF16 copies of
# a Hugging Face BERT folder that cram eval loads and runs; a corpus folder of *.zst files builds a
# token store as the plain files do (the pretrain mode reads .gpu-data-pretrain that way);
# scripts/gpu_summary.py reads a pretraining and an eval run folder; scripts/gpu_carry.sh knows
# each mode's folders and refuses an unknown mode. Needs python3 and zstd (skips without them).
# Usage: tests/cli_gpu_tools.sh path/to/cram   (run from the repository root)
# shellcheck disable=SC2154 # tmp comes from lib_cli.sh
set -u

# shellcheck source=tests/lib_cli.sh disable=SC1091
. "$(dirname "$0")/lib_cli.sh"
for tool in python3 zstd; do
    command -v $tool >/dev/null || { echo "skipped: no $tool" >&2; exit 77; }
done
export CRAM_PEAK_GFLOPS=100 # no matmul measurement at start-up
ROOT=$PWD
FIX="$ROOT/tests/fixtures/eval"

# dtypes of a safetensors file, as "name:dtype" lines
dtypes() {
    python3 - "$1" <<'EOF'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    h = json.loads(f.read(n))
for k, v in sorted(h.items()):
    if k != "__metadata__":
        print("%s:%s" % (k, v["dtype"]))
EOF
}

# ---- hf_to_half.py: F16 and BF16 copies that load and fine-tune ----
for dt in f16 bf16; do
    DT=$(tr '[:lower:]' '[:upper:]' <<<"$dt")
    python3 scripts/hf_to_half.py "$FIX/tiny_bert" "$tmp/half_$dt" --dtype "$dt" >"$tmp/conv_$dt.out" 2>&1 ||
        fail "hf_to_half $dt: $(tail -n 2 "$tmp/conv_$dt.out")"
    for f in config.json vocab.txt model.safetensors; do
        [ -f "$tmp/half_$dt/$f" ] || fail "hf_to_half $dt: no $f in the copy"
    done
    src=$(dtypes "$FIX/tiny_bert/model.safetensors")
    out=$(dtypes "$tmp/half_$dt/model.safetensors")
    [ "$(cut -d: -f1 <<<"$src")" = "$(cut -d: -f1 <<<"$out")" ] || fail "hf_to_half $dt: other tensor names"
    # every F32 tensor became $DT, every other dtype stayed
    want=${src//:F32/:$DT}
    [ "$out" = "$want" ] || fail "hf_to_half $dt: dtypes $(diff <(echo "$want") <(echo "$out") | tr '\n' ' ')"
    a=$(stat -c %s "$FIX/tiny_bert/model.safetensors")
    b=$(stat -c %s "$tmp/half_$dt/model.safetensors")
    [ $((b * 10)) -lt $((a * 6)) ] || fail "hf_to_half $dt: $b bytes from $a, not about half"
    run "eval_$dt" 0 eval "eval.checkpoint=hf:$tmp/half_$dt" "eval.data_dir=$FIX/glue_tiny" eval/tasks=rte \
        impl.microbatch_size=8 eval.epochs=1 seed=3 impl.threads=1 name="half_$dt"
    has "eval_$dt" "Loaded .* tensors from $tmp/half_$dt/model.safetensors"
    has "eval_$dt" "Validation metric is accuracy: "
done
python3 scripts/hf_to_half.py "$tmp/nowhere" "$tmp/x" >"$tmp/conv_missing.out" 2>&1 &&
    fail "hf_to_half: a folder without weights was accepted"
grep -q "has no model.safetensors" "$tmp/conv_missing.out" || fail "hf_to_half: no reason for a missing file"

# ---- a corpus folder of .zst files builds the same token store as the plain text ----
mkdir -p "$tmp/plain" "$tmp/zst"
zstd -dcq "$ROOT/tests/fixtures/tok/corpus.txt.zst" >"$tmp/plain/corpus.txt"
cp "$ROOT/tests/fixtures/tok/corpus.txt.zst" "$tmp/zst/"
DATA=(data=kjv data.vocab_size=2000 data.validation_seqs=64)
run store_plain 0 data "${DATA[@]}" "data.sources.kjv.path=$tmp/plain" impl.path="$tmp/d_plain"
run store_zst 0 data "${DATA[@]}" "data.sources.kjv.path=$tmp/zst" impl.path="$tmp/d_zst"
stats() { grep -E '^ *(tokens|rows):' "$tmp/$1.out" "$tmp/$1.err" | sed 's/^[^:]*://'; }
if [ -z "$(stats store_plain)" ] || [ "$(stats store_plain)" != "$(stats store_zst)" ]; then
    fail "store from .zst files: '$(stats store_zst)' vs plain '$(stats store_plain)'"
fi

# ---- gpu_summary.py on a tiny pretraining run and on an eval run ----
run pre 0 pretrain "${DATA[@]}" "data.sources.kjv.path=$tmp/zst" impl.path="$tmp/d_zst" \
    arch=crammed-bert arch.num_transformer_layers=2 arch.hidden_size=64 arch.intermed_size=256 \
    arch.attention.num_attention_heads=4 train=bert-o4 impl=cpu impl.threads=1 impl.microbatch_size=8 \
    budget=1000 train.steps=12 impl.print_loss_every_nth_step=2 seed=7 name=pre
run_dir() { find "$tmp/outputs/$1" -mindepth 2 -maxdepth 2 -type d 2>/dev/null | head -n 1; }
pre_dir=$(run_dir pre/pretrain)
python3 scripts/gpu_summary.py pretrain "$pre_dir" --every 4 >"$tmp/sum_pre.out" 2>&1 ||
    fail "gpu_summary pretrain: exit $? ($(tail -n 2 "$tmp/sum_pre.out"))"
for step in 4 8 12; do
    grep -Eq "^pretrain: +$step +[0-9.]+ +[0-9.]+ " "$tmp/sum_pre.out" || fail "gpu_summary pretrain: no row for µstep $step"
done
grep -Eq "^pretrain: +(2|6|10) " "$tmp/sum_pre.out" && fail "gpu_summary pretrain: a row off the 4-step grid"
for line in "Trained 12 microbatches" "Validation MLM loss" "metrics yaml: .*tok_per_s="; do
    grep -q "$line" "$tmp/sum_pre.out" || fail "gpu_summary pretrain: no '$line'"
done
ev_dir=$(run_dir half_f16/downstream)
python3 scripts/gpu_summary.py eval "$ev_dir" >"$tmp/sum_ev.out" 2>&1 ||
    fail "gpu_summary eval: exit $? ($(tail -n 2 "$tmp/sum_ev.out"))"
grep -Eq '^eval: rte: accuracy [0-9]\.[0-9]{4}; [0-9]+ s from' "$tmp/sum_ev.out" || fail "gpu_summary eval: no RTE score line"
grep -q '^eval: Backend: cpu' "$tmp/sum_ev.out" || fail "gpu_summary eval: no backend line"
python3 scripts/gpu_summary.py eval "$tmp/nowhere" >/dev/null 2>&1 && fail "gpu_summary: a missing folder passed"

# ---- gpu_carry.sh: each mode's folders, and an unknown mode refused ----
(
    # shellcheck source=scripts/gpu_carry.sh disable=SC1091
    . "$ROOT/scripts/gpu_carry.sh"
    [ "$(gpu_carry_folders test)" = ".gpu-libs .gpu-blas" ] || echo "test: $(gpu_carry_folders test)"
    [ "$(gpu_carry_folders pretrain)" = ".gpu-libs .gpu-data-pretrain" ] || echo "pretrain"
    [ "$(gpu_carry_folders eval)" = ".gpu-libs .gpu-data-eval" ] || echo "eval"
    gpu_carry_folders nonsense && echo "nonsense accepted"
) >"$tmp/carry.out" 2>&1
[ -s "$tmp/carry.out" ] && fail "gpu_carry_folders: $(cat "$tmp/carry.out")"
"$ROOT/scripts/gpu_carry.sh" nonsense >"$tmp/carry2.out" 2>&1 && fail "gpu_carry.sh: an unknown mode passed"
grep -q "unknown mode 'nonsense'" "$tmp/carry2.out" || fail "gpu_carry.sh: no message for an unknown mode"

finish
