#!/usr/bin/env bash
# Command-line behaviour of `cram eval` and `cram export` on small committed fixtures (a random
# 1-layer BERT in Hugging Face layout and GLUE-format RTE/CoLA/STS-B files; written by
# scripts/make_eval_fixtures.py): a full run with its log lines, metrics file and table row, the
# errors for a missing data folder, a missing task folder, wrong columns, unknown labels, an empty
# split, another vocabulary size and a missing checkpoint, and the export round trip through
# transformers when Python with transformers is at hand (data/venv-eval or $PY). Then the
# integrity of what eval reads back: latest/smallest pass over half-written, empty and damaged
# folders and say why, a checksum mismatch and a non-finite weight are refused, a diverged task
# fails the run; and what pretraining leaves (no folder for a dry run, no temporary folder after
# a failed write, leftovers of killed writes removed). Also: --help, the progress report (lines
# when stdout is not a terminal, a bar when it is), the input check before the first step (every
# missing input at once, a command that runs with what is there) and no run folder after a run
# that stops before its first step.
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
evdir=$(ls -d "$tmp"/outputs/tiny/downstream/*/* 2>/dev/null | head -1)
ls "$evdir"/events.out.tfevents.* >/dev/null 2>&1 || fail "full: no TensorBoard event file in the run folder"
if python3 -c "import tensorboard" 2>/dev/null; then
    python3 scripts/check_tensorboard.py "$evdir" --require rte/accuracy,rte/train_loss,GLUE/amean >"$tmp/tb.out" 2>&1 ||
        fail "full: TensorBoard cannot read the events: $(tail -3 "$tmp/tb.out")"
fi
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
# none of these made a run folder (their runs are named "default" and "nobody")
for d in default nobody; do
    [ -e "$tmp/outputs/$d" ] && fail "bad input: left the folder outputs/$d ($(find "$tmp/outputs/$d" | tail -n 3 | tr '\n' ' '))"
done

# --help: the main keys and an example, in the program's own words
run help 0 eval --help
for k in "eval.checkpoint=latest" "eval.checkpoint=smallest" "eval.checkpoint=hf:FOLDER" \
    "eval.data_dir=DIR" "eval/tasks=" "impl.microbatch_size=N" "impl.precision=" "impl.device=" "Examples:"; do
    has help "$k"
done
grep -q "SPEC" "$tmp/help.out" && fail "help: cites a file the repository does not contain"

# progress: not a terminal, so log lines (the test hook sets their period to 0 s: after every
# step and validation batch); they go to the log file as well
CRAM_TEST_EVAL_PROGRESS_S=0 run progress 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=prog
has progress "Task rte: step 1/10 (epoch 1 of 2), loss avg [0-9.]*, [0-9]* t/s, ETA [0-9.hms]* for the task."
has progress "Task rte: step 9/10 (epoch 2 of 2), loss avg"
has progress "Task rte: validation on RTE/dev.tsv: 8/16 rows, [0-9.]* rows/s, ETA "
has progress "Task rte: 40 training rows (RTE/train.tsv), 16 validation rows (RTE/dev.tsv)."
grep -q $'\r' "$tmp/progress.out" && fail "progress: carriage returns in output that is not a terminal"
grep -q "Task rte: step 4/10" "$(ls "$tmp"/outputs/prog/downstream/*/*/prog_eval.log | head -1)" ||
    fail "progress: the lines are not in the log file"
# the default period (30 s) prints none on this short run
run progress_quiet 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=prog
grep -q "Task rte: step " "$tmp/progress_quiet.out" && fail "progress_quiet: a line before 30 s passed"
CRAM_TEST_EVAL_PROGRESS_S=soon run progress_bad 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=prog
has progress_bad "CRAM_TEST_EVAL_PROGRESS_S=soon ignored"
# on a terminal (script(1) provides one, where it can): a bar with the rate and the ETA
if command -v script >/dev/null 2>&1 && script -qec true /dev/null >/dev/null 2>&1; then
    (cd "$tmp" && script -qec "'$CRAM' eval eval.checkpoint=hf:$FIX/tiny_bert impl.microbatch_size=8 eval.epochs=2 seed=3 impl.threads=1 eval.data_dir=$FIX/glue_tiny eval/tasks=rte name=prog" /dev/null >"$tmp/tty.out" 2>&1) ||
        fail "tty: exit status $?"
    grep -q $'\rrte epoch 2 of 2, loss avg [0-9.]* \[#*\] 100.0% 5/5 (.*/s, ETA 0s)' "$tmp/tty.out" || fail "tty: no training bar"
    grep -q $'\rrte validation (RTE/dev.tsv) \[#*\] 100.0% 16/16' "$tmp/tty.out" || fail "tty: no validation bar"
    grep -q "Task rte: step " "$tmp/tty.out" && fail "tty: log lines besides the bar"
else
    echo "progress bar on a terminal: skipped (script(1) cannot open a terminal here)"
fi

# every input is checked before the first step: a folder that lacks five of GLUE_sane's tasks
# stops at once, lists them all and says how to run the tasks that are there
cp -r "$FIX/glue_tiny" "$tmp/g3"
FF=(eval=GLUE_sane eval.checkpoint="hf:$FIX/tiny_bert" eval.data_dir="$tmp/g3" impl.microbatch_size=8 eval.epochs=1 seed=3 impl.threads=1 name=ff)
run failfast 2 eval "${FF[@]}"
for t in MNLI MRPC QNLI QQP SST-2; do
    has failfast "$tmp/g3/$t: task folder of"
done
has failfast "cram eval cannot start: 5 problem(s) with its inputs"
has failfast "The configured tasks whose files are all present: cola, rte, stsb. To run those:"
has failfast "'eval/tasks=\[cola,rte,stsb\]'"
grep -q "Finetuning task" "$tmp/failfast.out" && fail "failfast: trained before stopping"
[ -e "$tmp/outputs/ff" ] && fail "failfast: left a run folder"
# the command it suggests runs
sugg=$(sed -n 's/.*error:   cram eval //p' "$tmp/failfast.err")
eval "sargs=($sugg)"
run failfast_ok 0 eval "${sargs[@]}"
has failfast_ok "Validation metric is pearson"
# everything at once: a dev file, a task folder, an unknown task, the checkpoint's tokenizer and
# weights
mkdir -p "$tmp/g5/RTE" && cp -r "$FIX/glue_tiny/CoLA" "$tmp/g5/" && cp "$FIX/glue_tiny/RTE/train.tsv" "$tmp/g5/RTE/"
mkdir -p "$tmp/bare" && cp "$FIX/tiny_bert/config.json" "$tmp/bare/"
run allatonce 2 eval "eval.checkpoint=hf:$tmp/bare" eval.data_dir="$tmp/g5" 'eval/tasks=[rte,cola,mnli,boolq]' impl.microbatch_size=8 name=ff2
has allatonce "cram eval cannot start: 5 problem(s)"
has allatonce "$tmp/g5/RTE/dev.tsv: cannot open"
has allatonce "$tmp/g5/MNLI: task folder of mnli not found"
has allatonce "eval.tasks.boolq: not a GLUE task"
has allatonce "$tmp/bare: cannot load the tokenizer"
has allatonce "$tmp/bare: no weights file (model.safetensors)"
has allatonce "To run that one once the other problems are fixed:"
has allatonce "'eval/tasks=\[cola\]'"
[ -e "$tmp/outputs/ff2" ] && fail "allatonce: left a run folder"
mkdir -p "$tmp/emptyck"
run emptyck 2 eval eval.checkpoint="$tmp/emptyck" "eval.data_dir=$FIX/glue_tiny" eval/tasks=rte impl.microbatch_size=8
has emptyck "$tmp/emptyck: neither model_config.json (cram) nor config.json"
has emptyck "$tmp/emptyck: no tokenizer (tokenizer.json or vocab.txt)"
has emptyck "$tmp/emptyck: no weights file (model.safetensors)"
run nodata2 2 eval "${common[@]}" eval.data_dir="$tmp/nowhere" eval/tasks=rte eval.checkpoint=/no/such/folder
has nodata2 "$tmp/nowhere: GLUE data folder (eval.data_dir) not found"
has nodata2 "/no/such/folder: checkpoint folder not found"

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

# ---- integrity of the files eval reads back
hdr_len() { od -An -t u8 -N8 "$1" | tr -d ' '; }
# poke FILE OFFSET BYTES: overwrite bytes in place (BYTES in printf's \x notation)
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
E1=(eval.data_dir="$FIX/glue_tiny" eval/tasks=rte impl.microbatch_size=8 eval.epochs=1 seed=1 impl.threads=1)

# a checkpoint cram writes carries a checksum of its tensor data; one changed byte is refused
run exp_sum 0 export "$FIX/tiny_crammed" "$tmp/summed"
grep -q '"cram_data_fnv1a64":"[0-9a-f]\{16\}"' "$tmp/summed/model.safetensors" || fail "export: no checksum in __metadata__"
run sum_ok 0 eval eval.checkpoint="$tmp/summed" "${E1[@]}" name=sum
grep -q "carries no cram_data_fnv1a64" "$tmp/sum_ok.out" && fail "sum_ok: a checksummed file reported as unchecked"
cp -r "$tmp/summed" "$tmp/flipped"
poke "$tmp/flipped/model.safetensors" $(($(hdr_len "$tmp/flipped/model.safetensors") + 8 + 20)) '\x5a\x5a\x5a\x5a'
run sum_bad 2 eval eval.checkpoint="$tmp/flipped" "${E1[@]}" name=sum
has sum_bad "$tmp/flipped/model.safetensors: checksum mismatch"
has sum_bad "re-export or re-train"
run sum_bad_export 2 export "$tmp/flipped" "$tmp/flipped_out"
has sum_bad_export "checksum mismatch"
# files without the key (Hugging Face, older cram checkpoints) load as before, with a note
run sum_none 0 eval eval.checkpoint="$FIX/tiny_crammed" "${E1[@]}" name=sum
has sum_none "tiny_crammed/model.safetensors carries no cram_data_fnv1a64 checksum"

# a non-finite weight is refused, naming the tensor and the file (embeddings.LayerNorm.bias
# is the first tensor of the fixture's data section)
cp -r "$FIX/tiny_bert" "$tmp/nanw"
poke "$tmp/nanw/model.safetensors" $(($(hdr_len "$tmp/nanw/model.safetensors") + 8 + 4)) '\x00\x00\xc0\x7f'
run nanw 2 eval eval.checkpoint="hf:$tmp/nanw" "${E1[@]}" name=nanw
has nanw "$tmp/nanw/model.safetensors: tensor embeddings.LayerNorm.bias holds a non-finite value (NaN at element 1"
[ -e "$tmp/tables/table_downstream_reports.csv" ] && grep -q "^nanw" "$tmp/tables/table_downstream_reports.csv" &&
    fail "nanw: a table row for a refused checkpoint"
# it stopped before its first step, so it leaves no run folder
has nanw "No step ran: removing the run folder"
[ -e "$tmp/outputs/nanw" ] && fail "nanw: left $(find "$tmp/outputs/nanw" | tail -n 1)"

# a task whose training diverges fails: no score, no means, no table row, exit status 1
rows_before=$(cat "$tmp/tables/table_downstream_reports.csv" 2>/dev/null | wc -l)
run diverge 1 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=diverge eval.optim.lr=1e20
has diverge "Non-finite train loss (nan) at step 2 of task rte (epoch 0): the task failed and gets no score."
has diverge "No overall average metric on evaluation GLUE: 1 task(s) failed (rte)."
has diverge "rte      FAILED"
grep -q "Validation metric is" "$tmp/diverge.out" && fail "diverge: a score for a failed task"
[ "$(cat "$tmp/tables/table_downstream_reports.csv" 2>/dev/null | wc -l)" -eq "$rows_before" ] || fail "diverge: wrote a table row"

# latest/smallest consider complete folders only and say which ones they skipped and why
H="$tmp/outputs/half/checkpoints"
mkdir -p "$H"
cp -r "$tmp/summed" "$H/ScriptableCrammedBERT_2026-01-01_3.0000"         # complete, oldest
mkdir "$H/ScriptableCrammedBERT_2026-01-02_2.5000"                         # empty (a dry run's)
cp -r "$tmp/flipped" "$H/ScriptableCrammedBERT_2026-01-02_1.0000"          # damaged
cp -r "$tmp/summed" "$H/ScriptableCrammedBERT_2026-01-03_0.5000.tmp.4242"  # a killed save ...
head -c 3000 "$tmp/summed/model.safetensors" >"$H/ScriptableCrammedBERT_2026-01-03_0.5000.tmp.4242/model.safetensors"
touch -d '2026-01-01' "$H/ScriptableCrammedBERT_2026-01-01_3.0000"
touch -d '2026-01-02' "$H/ScriptableCrammedBERT_2026-01-02_2.5000"
touch -d '2026-01-03' "$H/ScriptableCrammedBERT_2026-01-02_1.0000"         # ... newest of all
run half_latest 0 eval name=half eval.checkpoint=latest "${E1[@]}"
has half_latest "ScriptableCrammedBERT_2026-01-01_3.0000 (cram)"
has half_latest "Skipping checkpoint folder .*_0.5000.tmp.4242: half-written"
has half_latest "Skipping checkpoint folder .*_1.0000: .*checksum mismatch"
has half_latest "Skipping checkpoint folder .*_2.5000: neither model_config.json nor config.json"
has half_latest "eval.checkpoint=latest: 3 folder(s) skipped"
run half_smallest 0 eval name=half eval.checkpoint=smallest "${E1[@]}"
has half_smallest "ScriptableCrammedBERT_2026-01-01_3.0000 (cram)"
has half_smallest "Skipping checkpoint folder .*_1.0000: .*checksum mismatch"
rm -rf "$H/ScriptableCrammedBERT_2026-01-01_3.0000"
run half_none 2 eval name=half eval.checkpoint=latest "${E1[@]}"
has half_none "no complete checkpoint folder for eval.checkpoint=latest (3 skipped"

# what pretraining leaves behind
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"
PRE=(data=kjv data.vocab_size=2000 data.validation_seqs=64 "data.sources.kjv.path=$corpus"
     arch=crammed-bert arch.num_transformer_layers=2 arch.hidden_size=64 arch.intermed_size=256
     arch.attention.num_attention_heads=4 train=bert-o4 impl=cpu impl.threads=1
     impl.microbatch_size=8 budget=1000 seed=7)
export CRAM_PEAK_GFLOPS=100
# a dry run writes no checkpoint folder, so latest has nothing half-made to pick
run pre_dry 0 pretrain "${PRE[@]}" name=dry dryrun=True
has pre_dry "Dry run: no model files"
[ -z "$(ls -A "$tmp/outputs/dry/checkpoints" 2>/dev/null)" ] || fail "pre_dry: a dry run created a checkpoint folder"
run pre_dry_eval 2 eval name=dry eval.checkpoint=latest "${E1[@]}"
has pre_dry_eval "outputs/dry/checkpoints: no checkpoints of run 'dry'"
# a failed final write (the file size limit stands in for a full disk) leaves no temporary folder
(cd "$tmp" && trap '' XFSZ && ulimit -f 1024 && exec "$CRAM" pretrain "${PRE[@]}" name=full train.steps=2) >"$tmp/pre_full.out" 2>"$tmp/pre_full.err"
[ $? -eq 1 ] || fail "pre_full: a failed final write should exit 1"
has pre_full "final checkpoint not written: .*model.safetensors: write failed: File too large"
[ -z "$(ls -A "$tmp/outputs/full/checkpoints" 2>/dev/null)" ] || fail "pre_full: left $(ls "$tmp/outputs/full/checkpoints")"
# leftovers of killed writes go when the next run of the name saves: a gone pid, or written
# before this run started; a live writer's (this shell's, touched in the future) stays
S="$tmp/outputs/st"
mkdir -p "$S/checkpoints/X_2026-01-01_3.0000.tmp.99999999" "$S/checkpoints/X_2026-01-01_3.0000.tmp.$$" \
    "$S/checkpoints/Y_2026-01-01_3.0000.tmp.$$"
echo x >"$S/checkpoints/X_2026-01-01_3.0000.tmp.99999999/model.safetensors"
head -c 100000 /dev/zero >"$S/intermediate_state.bin.tmp.99999999"
echo x >"$S/intermediate_state.bin.grads-5.tmp.99999999"
touch -d '-1 hour' "$S/checkpoints/Y_2026-01-01_3.0000.tmp.$$"
touch -d '+1 hour' "$S/checkpoints/X_2026-01-01_3.0000.tmp.$$"
run pre_stale 0 pretrain "${PRE[@]}" name=st train.steps=2 impl.save_intermediate_checkpoints=True impl.save_every_nth_step=1
has pre_stale "Removed the leftover of an interrupted write: folder .*X_2026-01-01_3.0000.tmp.99999999 (process 99999999 is gone"
has pre_stale "Removed the leftover of an interrupted write: folder .*Y_2026-01-01_3.0000.tmp.$$ ("
has pre_stale "Removed the leftover of an interrupted write: file .*intermediate_state.bin.tmp.99999999 (process 99999999 is gone; 0.1 MB)"
has pre_stale "Removed the leftover of an interrupted write: file .*intermediate_state.bin.grads-5.tmp.99999999"
[ -d "$S/checkpoints/X_2026-01-01_3.0000.tmp.$$" ] || fail "pre_stale: removed a live writer's folder"
[ -n "$(find "$S/checkpoints" -name model.safetensors ! -path '*.tmp.*')" ] || fail "pre_stale: no final model"
# a pretrained checkpoint carries the checksum and evaluates
run pre_eval 0 eval name=st eval.checkpoint=latest "${E1[@]}"
has pre_eval "Skipping checkpoint folder .*X_2026-01-01_3.0000.tmp.$$: half-written"
grep -q "carries no cram_data_fnv1a64" "$tmp/pre_eval.out" && fail "pre_eval: the pretrained checkpoint has no checksum"

# the same fine-tuning on the bf16-emulating row, and a device that cannot run here
run bf16 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=stsb name=tinybf impl.precision=bf16
has bf16 "Backend: cpu-bf16"
has bf16 "Validation metric is pearson: "
if gpu_usable; then # fine-tuning and scoring on the GPU
  run cudarun 0 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=tinycuda impl.device=cuda
  has cudarun "Backend: cuda"
  has cudarun "Validation metric is accuracy: "
else
  run cuda 2 eval "${common[@]}" eval.data_dir="$FIX/glue_tiny" eval/tasks=rte name=tinycuda impl.device=cuda
  has cuda "impl.device=cuda: "
fi
finish
