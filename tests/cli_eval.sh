#!/usr/bin/env bash
# Command-line behaviour of `cram eval` and `cram export` on small committed fixtures (a random
# 1-layer BERT in Hugging Face layout and GLUE-format RTE/CoLA/STS-B files; written by
# scripts/make_eval_fixtures.py): a full run with its log lines, metrics file and table row, the
# errors for a missing data folder, a missing task folder, wrong columns, unknown labels, an empty
# split, another vocabulary size and a missing checkpoint, and the export round trip through
# transformers when Python with transformers is at hand (data/venv-eval or $PY).
# Usage: tests/cli_eval.sh path/to/cram   (run from the repository root)
set -u

. "$(dirname "$0")/lib_cli.sh"
FIX="$PWD/tests/fixtures/eval"

common=(eval.checkpoint="hf:$FIX/tiny_bert" impl.microbatch_size=8 eval.epochs=2 seed=3 impl.threads=1)

# a full run on three tasks (classification, single sentence, regression)
run full 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" 'eval/tasks=[rte,cola,stsb]' name=tiny
has full "Finetuning task rte with 2 classes for 10 steps."
has full "Finetuning task stsb with 1 classes for 10 steps."
has full "Validation metric is accuracy: "
has full "Validation metric is matthews_correlation: "
has full "Validation metric is pearson: .* spearmanr: "
has full "after epoch 1."
has full "Overall average metric on evaluation GLUE is"
has full "Backend: cpu, fp32 activations and weights"
m=$(ls "$tmp"/outputs/tiny/downstream/*/*/metrics_tiny.yaml 2>/dev/null | head -1)
[ -n "$m" ] && grep -q "^rte_accuracy: " "$m" && grep -q "^GLUE_amean: " "$m" && grep -q "^stsb_spearmanr: " "$m" ||
    fail "metrics_tiny.yaml missing or incomplete"
ls "$tmp"/outputs/tiny/downstream/*/*/tiny_eval.log >/dev/null 2>&1 || fail "no tiny_eval.log"
[ "$(wc -l <"$tmp/tables/table_downstream_reports.csv")" -eq 2 ] || fail "table_downstream_reports.csv: want header + 1 row"

# the same seed gives the same scores
run again 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=tiny
run again2 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=tiny
[ "$(grep 'Validation metric' "$tmp/again.out" | sed 's/.*\] //')" = "$(grep 'Validation metric' "$tmp/again2.out" | sed 's/.*\] //')" ] ||
    fail "two runs with seed 3 differ"

# a cram (crammed-bert) checkpoint found by name: latest by mtime, smallest by the whole loss
mkdir -p "$tmp/outputs/cr/checkpoints"
cp -r "$FIX/tiny_crammed" "$tmp/outputs/cr/checkpoints/ScriptableCrammedBERT_2026-01-01_3.2000"
cp -r "$FIX/tiny_crammed" "$tmp/outputs/cr/checkpoints/ScriptableCrammedBERT_2026-01-02_2.9000"
touch -d '2026-01-01' "$tmp/outputs/cr/checkpoints/ScriptableCrammedBERT_2026-01-02_2.9000"
run latest 0 eval name=cr eval.checkpoint=latest eval.data_dir="$FIX/glue_tiny" eval/tasks=rte impl.microbatch_size=8 eval.epochs=1 seed=1
has latest "ScriptableCrammedBERT_2026-01-01_3.2000 (cram)"
run smallest 0 eval name=cr eval.checkpoint=smallest eval.data_dir="$FIX/glue_tiny" eval/tasks=rte impl.microbatch_size=8 eval.epochs=1 seed=1
has smallest "ScriptableCrammedBERT_2026-01-02_2.9000 (cram)"
run sub 0 eval name=cr eval.checkpoint=ScriptableCrammedBERT_2026-01-02_2.9000 eval.data_dir="$FIX/glue_tiny" eval/tasks=stsb impl.microbatch_size=8 eval.epochs=1 seed=1
has sub "Validation metric is pearson"

# bad input: each names the file or folder
run nodata 2 eval "${common[@]}" eval.data_dir="$tmp/nowhere" eval/tasks=rte
has nodata "$tmp/nowhere"
mkdir -p "$tmp/g1"
run notask 2 eval "${common[@]}" eval.data_dir="$tmp/g1" eval/tasks=rte
has notask "$tmp/g1/RTE"
mkdir -p "$tmp/g2/RTE" && cp "$FIX/glue_tiny/RTE/dev.tsv" "$tmp/g2/RTE/"
printf 'index\tpremise\thypothesis\tlabel\n0\ta\tb\tentailment\n' >"$tmp/g2/RTE/train.tsv"
run columns 2 eval "${common[@]}" eval.data_dir="$tmp/g2" eval/tasks=rte
has columns "$tmp/g2/RTE/train.tsv:1: wrong columns"
printf 'index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n' >"$tmp/g2/RTE/train.tsv"
run labels 2 eval "${common[@]}" eval.data_dir="$tmp/g2" eval/tasks=rte
has labels "$tmp/g2/RTE/train.tsv:2: task rte: unknown label 'maybe'"
printf 'index\tsentence1\tsentence2\tlabel\n' >"$tmp/g2/RTE/train.tsv"
run empty 2 eval "${common[@]}" eval.data_dir="$tmp/g2" eval/tasks=rte
has empty "$tmp/g2/RTE/train.tsv: task rte: the split is empty"
cp -r "$FIX/tiny_bert" "$tmp/vocab" && echo "extra" >>"$tmp/vocab/vocab.txt"
run vocab 2 eval eval.checkpoint="hf:$tmp/vocab" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte impl.microbatch_size=8
has vocab "$tmp/vocab"
has vocab "vocabulary"
run nockpt 2 eval name=nobody eval.data_dir="$FIX/glue_tiny" eval/tasks=rte
has nockpt "outputs/nobody/checkpoints"

# export round trip through transformers
run export 0 export "hf:$FIX/tiny_bert" "$tmp/exported" --reference-logits="$tmp/logits.safetensors"
for f in config.json model.safetensors vocab.txt tokenizer.json; do
    [ -f "$tmp/exported/$f" ] || fail "export: no $f"
done
PY=${PY:-data/venv-eval/bin/python}
if [ -x "$PY" ] && "$PY" -c "import transformers, torch" 2>/dev/null; then
    "$PY" scripts/check_export.py "$tmp/exported" "$tmp/logits.safetensors" || fail "export round trip"
else
    echo "export round trip through transformers skipped: no Python with transformers and torch ($PY)"
fi

run export_cr 0 export "$FIX/tiny_crammed" "$tmp/exported_cr" --reference-logits="$tmp/logits_cr.safetensors"
[ -f "$tmp/exported_cr/model_config.json" ] || fail "crammed export: no model_config.json"
if [ -x "$PY" ] && "$PY" -c "import torch, safetensors" 2>/dev/null; then
    "$PY" scripts/crammed_bert_torch.py "$tmp/exported_cr" "$tmp/logits_cr.safetensors" || fail "crammed export round trip"
fi

# the same fine-tuning on the bf16-emulating row, and a device that cannot run here
run bf16 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=stsb name=tinybf impl.precision=bf16
has bf16 "Backend: cpu-bf16"
has bf16 "Validation metric is pearson: "
run cuda 2 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=tinycuda impl.device=cuda
has cuda "impl.device=cuda: "
finish
