#!/usr/bin/env bash
# The rule of src/ops/ops.h that callers reach backend memory only through the ops, held on the
# CPU: with CRAM_GUARD_BACKEND=1 every backend buffer is an inaccessible page except while an op
# runs (src/ops/cpu/ops_guard.c), so a direct host read or write dies here as it would on a GPU,
# and an op handed host memory stops. Every command that runs a model, in fp32 and bf16:
# pretraining with periodic saves, a signal's save and the resume from it, GLUE fine-tuning of
# the pretrained checkpoint and of a Hugging Face BERT, and export with reference logits (export
# takes no config: it runs fp32). The guard changes no number: a guarded run's losses are the
# plain run's.
# Usage: tests/cli_guard.sh path/to/cram   (run from the repository root)
set -u

. "$(dirname "$0")/lib_cli.sh"
export CRAM_PEAK_GFLOPS=100 # no matmul measurement at start-up
export CRAM_GUARD_BACKEND=1
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"
FIX="$PWD/tests/fixtures/eval"

ARGS=(data=kjv data.vocab_size=2000 data.validation_seqs=16 "data.sources.kjv.path=$corpus"
      arch=crammed-bert arch.num_transformer_layers=2 arch.hidden_size=64 arch.intermed_size=256
      arch.attention.num_attention_heads=4 train=bert-o4 impl=cpu impl.threads=1
      impl.microbatch_size=8 budget=1000 seed=7 impl.print_loss_every_nth_step=1 train.steps=6)
EVAL=(eval.data_dir="$FIX/glue_tiny" eval.epochs=1 impl.microbatch_size=8 impl.threads=1 seed=3)

for p in fp32 bf16; do
    run "pt_$p" 0 pretrain "${ARGS[@]}" name="g$p" impl.precision=$p \
        impl.save_intermediate_checkpoints=True impl.save_every_nth_step=2
    has "pt_$p" "guard backend: backend memory is inaccessible outside ops"
    has "pt_$p" "(guarded: backend memory inaccessible outside ops)"
    has "pt_$p" "Validation MLM loss"
    has "pt_$p" "Final checkpoint:"

    # stopped by SIGINT after step 3 (the test hook of src/train/train.c), then resumed
    CRAM_TEST_KILL_AT=step:3 CRAM_TEST_KILL_SIGNAL=INT run "sig_$p" 0 pretrain "${ARGS[@]}" \
        name="s$p" impl.precision=$p
    has "sig_$p" "Received signal 2: saved the training state at step 3"
    run "resume_$p" 0 pretrain "${ARGS[@]}" name="s$p" impl.precision=$p \
        impl.resume_run_after_preempt=True
    has "resume_$p" "Successfully loaded state with metadata {step: 3,"
    has "resume_$p" "Final checkpoint:"

    # fine-tuning: the checkpoint just written (classification, single sentence, regression),
    # and a Hugging Face BERT, two microbatches a step and a partial last batch
    run "ev_$p" 0 eval "${EVAL[@]}" name="g$p" eval.checkpoint=latest 'eval/tasks=[rte,cola,stsb]' \
        impl.precision=$p
    has "ev_$p" "(guarded: backend memory inaccessible outside ops)"
    has "ev_$p" "Overall average metric on evaluation GLUE is"
    run "evhf_$p" 0 eval "${EVAL[@]}" name="h$p" eval.checkpoint="hf:$FIX/tiny_bert" \
        'eval/tasks=[rte,stsb]' impl.precision=$p impl.microbatch_size=7 eval.batch_size=14
    has "evhf_$p" "Overall average metric on evaluation GLUE is"
done

ckpt=$(ls -d "$tmp"/outputs/gfp32/checkpoints/*/ 2>/dev/null | head -1)
if [ -n "$ckpt" ]; then
    run ex_cr 0 export "$ckpt" "$tmp/ex_cr" --reference-logits="$tmp/ex_cr.safetensors"
    has ex_cr "guard backend: backend memory is inaccessible outside ops"
    [ -s "$tmp/ex_cr.safetensors" ] || fail "ex_cr: no reference logits"
else
    fail "pt_fp32: no checkpoint to export"
fi
run ex_bert 0 export "hf:$FIX/tiny_bert" "$tmp/ex_bert" --reference-logits="$tmp/ex_bert.safetensors"
[ -s "$tmp/ex_bert.safetensors" ] || fail "ex_bert: no reference logits"

# the same run without the guard: the same losses
CRAM_GUARD_BACKEND=0 run plain 0 pretrain "${ARGS[@]}" name=plain impl.precision=bf16
grep -q "guard backend" "$tmp/plain.err" && fail "plain: guarded with CRAM_GUARD_BACKEND=0"
losses() { grep -o "Train loss [0-9.]* at step [0-9]*\|Validation MLM loss [0-9.]*" "$tmp/$1.out"; }
[ -n "$(losses plain)" ] && [ "$(losses plain)" = "$(losses pt_bf16)" ] ||
    fail "the guarded bf16 run's losses differ from the plain run's"

if [ "$failures" -ne 0 ]; then
    echo "A crash (exit status 139) under the guard is a host access to backend memory; run the" \
        "command under gdb or the sanitizer build for the line. A 'guard backend: ... is not" \
        "backend memory' stop names the op and the argument." >&2
fi
finish
