#!/usr/bin/env bash
# Crash consistency of `cram pretrain`: a tiny job with a periodic state every 3 µsteps is
# stopped at many exact points (the test hook CRAM_TEST_KILL_AT, docs/train.md): by SIGKILL
# during a microbatch, in the middle of a periodic state write, during validation and in the
# middle of or right after the final checkpoint write, and by SIGTERM at some of those points.
# Each stopped run is resumed with impl.resume_run_after_preempt=True (again and again when a
# row stops the resumed run too), and the final model.safetensors must equal the uninterrupted
# run's byte for byte. After a SIGKILL the newest state may be older than the kill point: the
# resumed run trains those µsteps again, and exact resume makes them the same.
# The job: 21 µsteps of 8 rows, batch 16 (so the odd µsteps, the cap among them, fall between
# two updates and states there carry a gradient file), dropout on, an lr that is not 0 at the cap.
# Usage: tests/cli_crash.sh path/to/cram   (run from the repository root)
set -u

. "$(dirname "$0")/lib_cli.sh"
export CRAM_PEAK_GFLOPS=100 # no matmul measurement at start-up
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"

ARGS=(data=kjv data.vocab_size=2000 data.validation_seqs=64 "data.sources.kjv.path=$corpus"
      arch=crammed-bert arch.num_transformer_layers=2 arch.hidden_size=64 arch.intermed_size=256
      arch.attention.num_attention_heads=4 train=bert-o4 impl=cpu impl.threads=1
      impl.microbatch_size=8 budget=1000 seed=7 train.batch_size=16 train.batch_size_ramp=0
      train.pretrain_in_train_mode=True train.scheduler=inverse-sqrt train.warmup_steps=4
      train.steps=21 impl.print_loss_every_nth_step=3 impl.save_intermediate_checkpoints=True
      impl.save_every_nth_step=3)

# pretrain NAME OUTFILE [KILL_AT [SIGNAL]] [overrides...]: one run in $tmp; prints its exit status
pretrain() {
    local name=$1 out=$2 at=$3 sig=$4
    shift 4
    (cd "$tmp" && CRAM_TEST_KILL_AT=$at CRAM_TEST_KILL_SIGNAL=$sig \
        exec "$CRAM" pretrain "${ARGS[@]}" "name=$name" "$@" >"$out" 2>&1)
    echo $?
}

# the model a run wrote, from its log
final_model() {
    local dir
    dir=$(sed -n 's/.*Final checkpoint: \(.*\)$/\1/p' "$1" | tail -1)
    [ -n "$dir" ] && echo "$tmp/$dir/model.safetensors"
}

rc=$(pretrain straight "$tmp/straight.out" "" "")
ref=$(final_model "$tmp/straight.out")
if [ "$rc" -ne 0 ] || [ ! -s "$ref" ]; then
    fail "the uninterrupted run: exit $rc, no model"
    tail -5 "$tmp/straight.out" >&2
    finish
fi

# Each row: the stops, one after the other ("SIG:phase:n", SIG KILL or TERM); every stopped run
# is resumed, and the last resumed run must finish. "rerun" resumes the finished job again.
ROWS=(
    "KILL:step:1" "KILL:step:4" "KILL:step:8" "KILL:step:15" "KILL:step:21"
    "KILL:save:9" "KILL:save-state:9" "KILL:save:12" "KILL:save-state:18"
    "KILL:save:21" "KILL:save-state:21"
    "KILL:valid:1" "KILL:valid:8"
    "KILL:final:0" "KILL:final:64" "KILL:final:100000"
    "TERM:step:10" "TERM:step:21" "TERM:valid:3" "TERM:final:100000"
    "KILL:step:5 KILL:step:16" "KILL:save-state:15 KILL:valid:2 KILL:final:64"
    "rerun"
)
table=$(printf '%-46s %-12s %-18s %-24s %s' "stopped at" "exit" "left behind" "resumed from" "matched")
matched=0
i=0
for row in "${ROWS[@]}"; do
    i=$((i + 1))
    name="k$i"
    exits="" left="" from="" bad=""
    if [ "$row" = rerun ]; then
        # the finished job once more with resume: its last state is at the cap
        cp -r "$tmp/outputs/straight" "$tmp/outputs/$name"
        exits="-"
    else
        for stop in $row; do
            sig=${stop%%:*} at=${stop#*:}
            want=137
            [ "$sig" = TERM ] && want=0
            rc=$(pretrain "$name" "$tmp/$name.stop.out" "$at" "$sig" \
                impl.resume_run_after_preempt=True)
            exits="$exits${exits:+,}$rc"
            [ "$rc" -eq "$want" ] || bad="stopped run exited $rc, not $want"
            grep -q "Test hook CRAM_TEST_KILL_AT=$at" "$tmp/$name.stop.out" || bad="hook not armed"
            n=$(find "$tmp/outputs/$name" -name '*.tmp.*' -prune | wc -l)
            left="$left${left:+,}$n tmp"
        done
    fi
    rc=$(pretrain "$name" "$tmp/$name.out" "" "" impl.resume_run_after_preempt=True)
    [ "$rc" -eq 0 ] || bad="resumed run exited $rc"
    from=$(sed -n 's/.*Successfully loaded state with metadata {step: \([0-9]*\),.*/step \1/p' \
        "$tmp/$name.out")
    [ -n "$from" ] || from="nothing (fresh)"
    grep -q "nothing left to train" "$tmp/$name.out" && from="$from (at the end)"
    model=$(final_model "$tmp/$name.out")
    if [ -z "$bad" ] && [ -n "$model" ] && cmp -s "$ref" "$model"; then
        ok=yes
        matched=$((matched + 1))
    else
        ok="NO${bad:+ ($bad)}"
        fail "$row: the resumed run's model differs from the uninterrupted run's ($bad)"
        tail -3 "$tmp/$name.out" | sed 's/^/    /' >&2
    fi
    table="$table
$(printf '%-46s %-12s %-18s %-24s %s' "$row" "$exits" "$left" "$from" "$ok")"
done
echo "$table"
echo "$matched of ${#ROWS[@]} resumed runs wrote the uninterrupted run's model.safetensors"
finish
