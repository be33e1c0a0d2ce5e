#!/usr/bin/env bash
# Command-line behaviour of `cram pretrain`: help, configuration errors, a dryrun's outputs
# (config.yaml equal to what `cram config pretrain` prints, no model files, no table row),
# SIGINT: the state is saved, the process exits cleanly, and a resumed run continues from it;
# settings that would train on nothing, the device-memory refusal (through its test hook), a
# signal whose state cannot be written, and the lock that keeps a second run of a running name
# out.
# A tiny crammed-bert on the 1 MB fixture corpus, in a temp folder.
# Usage: tests/cli_train.sh path/to/cram   (run from the repository root)
set -u

. "$(dirname "$0")/lib_cli.sh"
export CRAM_PEAK_GFLOPS=100 # no matmul measurement at start-up
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"

ARGS=(data=kjv data.vocab_size=2000 data.validation_seqs=64 "data.sources.kjv.path=$corpus"
      arch=crammed-bert arch.num_transformer_layers=2 arch.hidden_size=64 arch.intermed_size=256
      arch.attention.num_attention_heads=4 train=bert-o4 impl=cpu impl.threads=1
      impl.microbatch_size=8 budget=1000 seed=7)

run help 0 pretrain --help
has help "resume_run_after_preempt"
run mbs 2 pretrain "${ARGS[@]}" name=mbs impl.microbatch_size=32 train.batch_size=16
has mbs "MBS is 32, but BS is only 16."
if gpu_usable; then # the same tiny run on the GPU, in both precisions
  run cudarun 0 pretrain "${ARGS[@]}" name=cuda impl.device=cuda impl.precision=fp32 train.steps=40
  has cudarun "Backend: cuda, fp32"
  has cudarun "Validation MLM loss"
  run cudabf 0 pretrain "${ARGS[@]}" name=cudabf impl.device=cuda impl.precision=bf16 train.steps=40
  has cudabf "Backend: cuda, bf16"
else
  run cuda 2 pretrain "${ARGS[@]}" name=cuda impl.device=cuda
  has cuda "impl.device=cuda: " # with the reason no CUDA backend can run here
fi
run prec 2 pretrain "${ARGS[@]}" name=prec impl.precision=fp8
has prec "impl.precision=fp8: expected auto, fp32 or bf16"
# the backend is chosen in one place and the log says which and why
run auto 0 pretrain "${ARGS[@]}" name=auto impl.device=auto dryrun=True
has auto "Backend: cpu, fp32 activations and weights, 1 thread(s)"
has auto "impl.device=auto: "
run bf16 0 pretrain "${ARGS[@]}" name=bf16 impl.precision=bf16 dryrun=True
has bf16 "Backend: cpu-bf16, bf16 activations and weights"
has bf16 "Validation MLM loss"
run badkey 2 pretrain "${ARGS[@]}" train.optim.lrr=1
has badkey "lrr"

# ---- the reference's first commands, offline: its hub corpus is replaced by a generated stand-in
run refdry 0 pretrain dryrun=True
has refdry "using the generated stand-in"
has refdry "Shutdown complete"
run refcheck 0 pretrain name=test arch=hf-bert-base train=bert-base data=sanity-check-2 dryrun=True impl.microbatch_size=2
has refcheck "Finished running job test"

# ---- dryrun
DRY=("${ARGS[@]}" name=dry dryrun=True impl.print_loss_every_nth_step=1)
run dry 0 pretrain "${DRY[@]}"
for s in "Seeding with random seed 7" "Launching pretraining run!" \
    "Model with architecture ScriptableCrammedBERT loaded with" "Random training row" \
    "Train loss [0-9.]* at step 3 with lr" "Validation MLM loss" "Finished running job dry" \
    "Shutdown complete"; do
    has dry "$s"
done
rundir=$(ls -d "$tmp"/outputs/dry/pretrain/*/* 2>/dev/null | head -1)
if [ -z "$rundir" ]; then
    fail "dry: no run folder"
else
    (cd "$tmp" && "$CRAM" config pretrain "${DRY[@]}") >"$tmp/dry.cfg"
    cmp -s "$tmp/dry.cfg" "$rundir/config.yaml" || fail "dry: config.yaml differs from cram config"
    grep -q "Train loss [0-9.]* at step 3" "$rundir/dry_pretrain.log" || fail "dry: log file"
    [ "$(wc -l <"$rundir/metrics.jsonl")" -eq 3 ] || fail "dry: metrics.jsonl should have 3 lines"
    ls "$rundir"/events.out.tfevents.* >/dev/null 2>&1 || fail "dry: no TensorBoard event file"
    [ "$(head -c 8 "$rundir/loss.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
        fail "dry: no loss.png"
    if python3 -c "import tensorboard" 2>/dev/null; then
        python3 scripts/check_tensorboard.py "$rundir" --require train/loss,train/lr,val/loss >"$tmp/tb.out" 2>&1 ||
            fail "dry: TensorBoard cannot read the events: $(tail -3 "$tmp/tb.out")"
    fi
fi
[ -z "$(find "$tmp/outputs/dry/checkpoints" -type f 2>/dev/null)" ] || fail "dry: model files"
[ ! -e "$tmp/tables" ] || fail "dry: wrote a table"

# ---- a dry run on the CPU gets a small microbatch unless the command line names one
run drymbs 0 pretrain data=kjv data.vocab_size=2000 data.validation_seqs=64 "data.sources.kjv.path=$corpus" \
    arch=crammed-bert arch.num_transformer_layers=1 arch.hidden_size=32 arch.intermed_size=64 \
    arch.attention.num_attention_heads=2 impl=cpu impl.threads=1 name=drymbs dryrun=True seed=7
has drymbs "Dry run on the CPU: microbatch 8 instead of impl.microbatch_size=16"

# ---- a budget run's estimate of the total is bounded by its budget (3.6 s here)
run est 0 pretrain "${ARGS[@]}" name=est budget=0.001 train.steps=100000 impl.print_loss_every_nth_step=5
has est "Estimated Total Train: 0:00:03.600000"

# ---- SIGINT, then resume
(cd "$tmp" && exec "$CRAM" pretrain "${ARGS[@]}" name=sig train.steps=100000 \
    impl.print_loss_every_nth_step=5 >"$tmp/sig.out" 2>"$tmp/sig.err") &
pid=$!
for _ in $(seq 1 600); do
    grep -q "Train loss" "$tmp/sig.out" 2>/dev/null && break
    sleep 0.1
done
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 0 ] || fail "sig: exit $rc after SIGINT: $(tail -3 "$tmp/sig.err")"
has sig "Received signal 2: saved the training state at step"
[ -s "$tmp/outputs/sig/intermediate_state.bin" ] || fail "sig: no intermediate_state.bin"
[ -z "$(find "$tmp/outputs/sig/checkpoints" -type f 2>/dev/null)" ] || fail "sig: final model"
step=$(sed -n 's/.*saved the training state at step \([0-9]*\).*/\1/p' "$tmp/sig.out")
if [ -n "$step" ]; then
    run resume 0 pretrain "${ARGS[@]}" name=sig train.steps=$((step + 3)) \
        impl.print_loss_every_nth_step=1 impl.resume_run_after_preempt=True
    has resume "Successfully loaded state with metadata {step: $step,"
    has resume "at step $((step + 1)) with lr"
    has resume "Final checkpoint:"
    [ -n "$(find "$tmp/outputs/sig/checkpoints" -name model.safetensors)" ] ||
        fail "resume: no final model"
    grep -q "^sig	" "$tmp/tables/table_pretrain_reports.csv" 2>/dev/null || fail "resume: no table row"
else
    fail "sig: no step in the signal message"
fi

# ---- settings that would train on nothing are refused up front
run mlm0 2 pretrain "${ARGS[@]}" name=mlm0 train.objective.mlm_probability=0 \
    train.steps=3
has mlm0 "train.objective.mlm_probability=0 masks no token"
run valneg 2 pretrain "${ARGS[@]}" name=valneg data.validation_seqs=-1 train.steps=3
has valneg "data.validation_seqs=-1: the number of held-out rows must be >= 0"
[ ! -e "$tmp/outputs/mlm0" ] && [ ! -e "$tmp/outputs/valneg" ] || fail "refused runs left folders"

# ---- the device-memory check before anything is allocated, reached on the CPU through its test
# hook (a free figure of the 512 MiB reserve + 8 MiB): the bytes needed and free, and the largest
# microbatch that fits; a figure that fits trains as usual and logs the plan
CRAM_TEST_DEVICE_FREE_BYTES=$(((512 + 8) << 20)) run mem 2 pretrain "${ARGS[@]}" name=mem train.steps=3
has mem "not enough memory on the test device of CRAM_TEST_DEVICE_FREE_BYTES for impl.microbatch_size=8 at sequence length 128: the run needs"
has mem "(545259520 bytes) are free"
has mem "The largest microbatch that fits is 2: set impl.microbatch_size=2"
CRAM_TEST_DEVICE_FREE_BYTES=$((1 << 40)) run memok 0 pretrain "${ARGS[@]}" name=memok train.steps=2
has memok "Device memory: impl.microbatch_size=8 at sequence length 128 needs"

# ---- SIGTERM (the test hook raises it after µstep 2) while the state cannot be written: a
# folder stands where the file should go. Exit 1 with the reason, not 0.
mkdir -p "$tmp/outputs/unw/intermediate_state.bin"
CRAM_TEST_KILL_AT=step:2 CRAM_TEST_KILL_SIGNAL=TERM run unw 1 pretrain "${ARGS[@]}" name=unw \
    train.steps=5
has unw "Received signal 15, but the training state of step 2 was NOT saved"

# ---- one run per name: a second run of a running name is refused; a killed run's lock goes
# with it, so its resume starts
(cd "$tmp" && exec "$CRAM" pretrain "${ARGS[@]}" name=busy train.steps=100000 \
    impl.print_loss_every_nth_step=5 >"$tmp/busy1.out" 2>&1) &
pid=$!
for _ in $(seq 1 600); do
    grep -q "Train loss" "$tmp/busy1.out" 2>/dev/null && break
    sleep 0.1
done
run busy2 2 pretrain "${ARGS[@]}" name=busy train.steps=3
has busy2 "another run named busy is still running in outputs/busy (process $pid holds"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
run busy3 0 pretrain "${ARGS[@]}" name=busy train.steps=3 impl.resume_run_after_preempt=True
has busy3 "Final checkpoint:"

finish
