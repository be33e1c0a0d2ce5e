#!/usr/bin/env bash
# `cram export`: the errors for a missing or wrong SRC; the files of a crammed-bert folder
# (config.json with auto_map, the remote code, equal to src/eval/hf_remote, also from a copy of
# the binary away from the source tree) and of a BERT folder; a crammed-bert export read back by
# cram. Then the round trip through transformers: small models of each architecture variant are
# pretrained for a few steps, their weights replaced by random values of a typical size
# (scripts/check_export.py --perturb), exported with --reference-logits, and loaded with
# AutoModelForMaskedLM (crammed-bert with trust_remote_code=True, BERT without); logits within
# 1e-4 relative of cram's, AutoTokenizer giving cram's ids.
#
# The Python side needs torch, transformers and safetensors: $PY when set, else a venv already
# there (pyenv/ beside the binary, build/pyenv, data/venv-eval), else one created beside the
# binary from PyPI, once (the PyPI torch wheel for Linux pulls its CUDA libraries: about 3 GB of
# downloads and 5.5 GB on disk; CRAM_EXPORT_PYPI=0 skips creating it). Without one the round
# trip is skipped with the reason; the checks before it still run.
# Usage: tests/cli_export.sh path/to/cram   (run from the repository root)
set -u

. "$(dirname "$0")/lib_cli.sh"
FIX="$PWD/tests/fixtures/eval"
ROOT="$PWD"

# ---- errors: SRC must be a folder
run nosrc 2 export "$tmp/nowhere" "$tmp/out"
has nosrc "$tmp/nowhere: no such folder"
grep -q "config.json" "$tmp/nosrc.err" && fail "nosrc: the message is about config.json"
run nosrc_hf 2 export "hf:$tmp/nowhere" "$tmp/out"
has nosrc_hf "$tmp/nowhere: no such folder"
[ -e "$tmp/out" ] && fail "a failed export created DST"
: >"$tmp/afile"
run notdir 2 export "$tmp/afile" "$tmp/out"
has notdir "$tmp/afile: not a folder"
mkdir -p "$tmp/empty"
run empty 2 export "$tmp/empty" "$tmp/out"
has empty "$tmp/empty/config.json"

# ---- crammed-bert: config.json names the remote code written beside the weights
run cr 0 export "$FIX/tiny_crammed" "$tmp/cr"
has cr "trust_remote_code=True"
for f in config.json model.safetensors model_config.json configuration_crammed_bert.py \
    modeling_crammed_bert.py tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt; do
    [ -f "$tmp/cr/$f" ] || fail "crammed export: no $f"
done
for s in '"auto_map"' '"AutoModelForMaskedLM": "modeling_crammed_bert.CrammedBertForMaskedLM"' \
    '"AutoConfig": "configuration_crammed_bert.CrammedBertConfig"' '"model_type": "crammedBERT"' \
    '"arch": {"architectures":\["ScriptableCrammedBERT"\]' '"vocab_size":33'; do
    grep -q -- "$s" "$tmp/cr/config.json" || fail "crammed config.json: no $s"
done
for f in src/eval/hf_remote/*.py; do
    cmp -s "$f" "$tmp/cr/$(basename "$f")" || fail "exported $(basename "$f") differs from $f"
done
# the files are compiled in: a copy of the binary, run away from the source tree, writes them
mkdir -p "$tmp/bin" && cp "$CRAM" "$tmp/bin/cram"
(cd / && "$tmp/bin/cram" export "$FIX/tiny_crammed" "$tmp/cr_copy" >/dev/null 2>&1) ||
    fail "a copy of the binary could not export"
for f in configuration_crammed_bert.py modeling_crammed_bert.py config.json; do
    cmp -s "$tmp/cr/$f" "$tmp/cr_copy/$f" || fail "the copied binary wrote another $f"
done
# cram reads the exported folder back as a cram checkpoint: exporting it again gives the same file
run cr_again 0 export "$tmp/cr" "$tmp/cr_again"
cmp -s "$tmp/cr/model.safetensors" "$tmp/cr_again/model.safetensors" ||
    fail "re-exported model.safetensors differs"

# ---- BERT: config.json for BertForMaskedLM, no remote code
run bert 0 export "hf:$FIX/tiny_bert" "$tmp/bert"
has bert "BertForMaskedLM"
grep -q '"architectures": \["BertForMaskedLM"\]' "$tmp/bert/config.json" || fail "bert config.json"
grep -q '"auto_map"' "$tmp/bert/config.json" && fail "bert config.json names remote code"
[ -e "$tmp/bert/modeling_crammed_bert.py" ] && fail "bert export wrote the crammed-bert code"

# ---- the round trip through transformers
pyok() { [ -x "$1" ] && "$1" -c "import torch, transformers, safetensors" >/dev/null 2>&1; }
find_python() {
    if [ -n "${PY:-}" ]; then
        pyok "$PY" && return 0
        why="\$PY=$PY cannot import torch, transformers and safetensors"
        return 1
    fi
    local venv build
    build=$(dirname "$CRAM")
    venv="$build/pyenv"
    for PY in "$venv/bin/python" "$ROOT/build/pyenv/bin/python" "$ROOT/data/venv-eval/bin/python"; do
        pyok "$PY" && return 0
    done
    PY="$venv/bin/python"
    if [ "${CRAM_EXPORT_PYPI:-1}" = 0 ]; then
        why="no Python with torch and transformers, and CRAM_EXPORT_PYPI=0"
        return 1
    fi
    echo "creating $venv with torch, transformers and safetensors from PyPI (once; log in $build/pyenv-install.log)"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >"$build/pyenv-install.log" 2>&1; then
        why="python3 -m venv failed (see $build/pyenv-install.log)"
        rm -rf "$venv"
        return 1
    fi
    if ! "$PY" -m pip install --quiet --retries 2 --timeout 60 torch transformers safetensors >>"$build/pyenv-install.log" 2>&1 ||
        ! pyok "$PY"; then
        why="PyPI not reachable or the install failed: $(tail -n 1 "$build/pyenv-install.log")"
        rm -rf "$venv"
        return 1
    fi
}

if ! find_python; then
    echo "export round trip through transformers skipped: $why"
    finish
fi
echo "Python for the round trip: $PY ($("$PY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
export HF_HOME="$tmp/hf" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

export CRAM_PEAK_GFLOPS=100 # no matmul measurement at start-up
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"
TRAIN=(data=kjv data.vocab_size=2000 data.validation_seqs=16 "data.sources.kjv.path=$corpus"
       train=bert-o4 train.steps=4 impl=cpu impl.threads=1 impl.microbatch_size=8 budget=1000 seed=5)
SMALL=(arch.num_transformer_layers=2 arch.hidden_size=64 arch.intermed_size=256
       arch.attention.num_attention_heads=4)
# name, then the arch overrides: every switch modeling_crammed_bert.py has is set in one of them
variants=(
    "crammed arch=crammed-bert"
    "simple arch=crammed-bert-simple"
    "mixed arch=crammed-bert arch.embedding.pos_embedding=sinusoidal arch.embedding.normalization=False arch.skip_head_transform=False arch.decoder_bias=True arch.use_bias=True arch.attention.qkv_bias=True arch.norm_eps=1e-6 arch.final_norm=False"
    "nopos arch=crammed-bert arch.embedding.pos_embedding=none arch.nonlin=GELU"
    "bert arch=hf-bert-tiny"
)
names=()
for v in "${variants[@]}"; do
    read -r -a words <<<"$v"
    name=${words[0]}
    arch=("${words[@]:1}")
    [ "$name" = bert ] || arch+=("${SMALL[@]}")
    run "pt_$name" 0 pretrain name="$name" "${TRAIN[@]}" "${arch[@]}"
    ckpt=$(ls -d "$tmp/outputs/$name/checkpoints/"*/ 2>/dev/null | head -1)
    if [ -z "$ckpt" ]; then
        fail "$name: pretraining wrote no checkpoint"
    else
        names+=("$name")
        ln -s "$ckpt" "$tmp/ckpt_$name"
    fi
done
[ ${#names[@]} -gt 0 ] || finish
"$PY" scripts/check_export.py --perturb 7 "${names[@]/#/$tmp/ckpt_}" >/dev/null ||
    fail "perturbing the weights failed"
pairs=()
for name in "${names[@]}"; do
    run "ex_$name" 0 export "$tmp/ckpt_$name" "$tmp/ex_$name" --reference-logits="$tmp/logits_$name.safetensors"
    pairs+=("$tmp/ex_$name" "$tmp/logits_$name.safetensors")
done
if ! "$PY" scripts/check_export.py "${pairs[@]}" 2>"$tmp/check.err"; then
    fail "transformers round trip"
    tail -n 5 "$tmp/check.err" | sed 's/^/    stderr: /' >&2
fi

finish
