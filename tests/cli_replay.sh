#!/usr/bin/env bash
# The replay dump of `cram pretrain` (CRAM_DUMP_BATCHES / CRAM_DUMP_STEPS, a benchmark hook for
# bench/pretrain_peer.py): init.safetensors and batches.bin with one record per µstep up to the
# count asked for, fewer when the run ends first, none when the count is not a number or the run
# resumes from a saved state; nothing without the variable; refused under mpirun. When a Python with PyTorch is at hand
# ($CRAM_TORCH_PYTHON, build/pyenv/bin/python or python3), the peer replays the dump in fp32 and
# its losses must agree with cram's to 1e-4 relative.
# Usage: tests/cli_replay.sh path/to/cram   (run from the repository root)
set -u

# shellcheck source=tests/lib_cli.sh
. "$(dirname "$0")/lib_cli.sh"
export CRAM_PEAK_GFLOPS=100 # no matmul measurement at start-up
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"
peer="$PWD/bench/pretrain_peer.py"
unset CRAM_DUMP_BATCHES CRAM_DUMP_STEPS # set per run below

# the tiny model of cli_train.sh; a fixed batch of 32 (4 microbatches of 8) so that the dump
# holds µsteps with and without an update, and a short budget so that the lr moves
ARGS=(data=kjv data.vocab_size=2000 data.validation_seqs=64 "data.sources.kjv.path=$corpus"
      arch=crammed-bert arch.num_transformer_layers=2 arch.hidden_size=64 arch.intermed_size=256
      arch.attention.num_attention_heads=4 train=bert-o4 train.batch_size=32
      train.batch_size_ramp=0 impl=cpu impl.threads=1 impl.microbatch_size=8 budget=0.001 seed=7)

pyinfo=""
command -v python3 >/dev/null && pyinfo=python3
info() { # dump folder: the peer's --info line (no PyTorch needed)
    [ -n "$pyinfo" ] && "$pyinfo" "$peer" --info "$1" 2>&1
}

# 1. 20 µsteps asked, 24 run
CRAM_DUMP_BATCHES="$tmp/dump" CRAM_DUMP_STEPS=20 run dump 0 pretrain "${ARGS[@]}" name=dump \
    train.steps=24
has dump "CRAM_DUMP_BATCHES: 20 µsteps in"
[ -s "$tmp/dump/init.safetensors" ] || fail "dump: no init.safetensors"
[ -s "$tmp/dump/batches.bin" ] || fail "dump: no batches.bin"
[ ! -e "$tmp/dump/batches.bin.tmp" ] || fail "dump: the temporary file is left"
[ "$(head -c 8 "$tmp/dump/batches.bin" | tr -d '\0')" = CRAMRPL ] || fail "dump: bad magic"
# the record count in the header (bytes 12..15)
count=$(od -An -tu4 -j12 -N4 "$tmp/dump/batches.bin" | tr -d ' ')
[ "$count" = 20 ] || fail "dump: header count $count, expected 20"
if [ -n "$pyinfo" ]; then
    out=$(info "$tmp/dump") || fail "dump: pretrain_peer.py --info: $out"
    case "$out" in "records 20 of 20; microbatch 8x128;"*"updates 5;"*) ;;
        *) fail "dump: pretrain_peer.py --info says: $out" ;; esac
fi
# the initial weights are the checkpoint's names with the same values the model starts from:
# the final checkpoint must differ from them (the run trained), the file must open
if [ -n "$pyinfo" ]; then
    "$pyinfo" - "$tmp/dump/init.safetensors" <<'PY' || fail "dump: init.safetensors unreadable"
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(f.read(n))
assert "encoder.embedding.word_embedding.weight" in meta, sorted(meta)[:5]
assert "encoder.layers.1.ffn.dense_out.weight" in meta
PY
fi

# 2. a run shorter than the count: what it ran; 3. the default count
CRAM_DUMP_BATCHES="$tmp/short" CRAM_DUMP_STEPS=50 run short 0 pretrain "${ARGS[@]}" name=short \
    train.steps=6
has short "CRAM_DUMP_BATCHES: 6 µsteps in"
count=$(od -An -tu4 -j12 -N4 "$tmp/short/batches.bin" 2>/dev/null | tr -d ' ')
[ "$count" = 6 ] || fail "short: header count '$count', expected 6"
CRAM_DUMP_BATCHES="$tmp/dflt" run dflt 0 pretrain "${ARGS[@]}" name=dflt train.steps=2
has dflt "the first 300 µsteps go to"

# 4. a count that is not one: a warning, the run goes on without a dump
CRAM_DUMP_BATCHES="$tmp/bad" CRAM_DUMP_STEPS=abc run badn 0 pretrain "${ARGS[@]}" name=badn \
    train.steps=2
has badn "CRAM_DUMP_STEPS=abc: expected a positive count; no replay dump"
[ ! -e "$tmp/bad" ] || fail "badn: made the dump folder"

# 5. without the variable: no dump, no word of it
run off 0 pretrain "${ARGS[@]}" name=off train.steps=2
grep -q CRAM_DUMP "$tmp/off.out" "$tmp/off.err" && fail "off: mentions the dump"

# 5b. a resumed run starts from a saved state, not from its initial weights: no dump
run first 0 pretrain "${ARGS[@]}" name=res train.steps=4 impl.save_intermediate_checkpoints=True \
    impl.save_every_nth_step=2
CRAM_DUMP_BATCHES="$tmp/res" run resumed 0 pretrain "${ARGS[@]}" name=res train.steps=8 \
    impl.save_intermediate_checkpoints=True impl.save_every_nth_step=2 \
    impl.resume_run_after_preempt=True
has resumed "Successfully loaded state"
has resumed "a resumed run does not start from its initial weights"
[ ! -e "$tmp/res" ] || fail "resumed: made the dump folder"

# 6. under mpirun (an MPI build): refused before anything is written
if command -v mpirun >/dev/null; then
    root=()
    [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
    (cd "$tmp" && env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        CRAM_DUMP_BATCHES="$tmp/mpi" timeout 120 mpirun -np 2 "${root[@]}" --oversubscribe \
        --bind-to none "$CRAM" pretrain "${ARGS[@]}" name=mpi train.steps=2 >"$tmp/mpi.out" 2>&1)
    rc=$?
    if grep -q "records one process's microbatches" "$tmp/mpi.out"; then
        [ "$rc" -ne 0 ] || fail "mpi: refused, but mpirun exited 0"
        [ ! -e "$tmp/mpi" ] || fail "mpi: made the dump folder"
    elif grep -q "Data-parallel processes: 1" "$tmp/mpi.out"; then
        echo "note: this cram has no MPI backend; the mpirun refusal is not checked"
    else
        fail "mpi: CRAM_DUMP_BATCHES under mpirun was not refused (rc=$rc)"
        tail -n 5 "$tmp/mpi.out" | sed 's/^/    /' >&2
    fi
fi

# 7. the PyTorch peer on the 20 µsteps, fp32 on the CPU
torchpy=""
for py in "${CRAM_TORCH_PYTHON:-}" build/pyenv/bin/python python3; do
    [ -n "$py" ] && "$py" -c "import torch" 2>/dev/null && torchpy=$py && break
done
if [ -n "$torchpy" ]; then
    "$torchpy" "$peer" "$tmp/dump" --threads 1 --every 5 --tolerance 1e-4 >"$tmp/peer.out" 2>&1 ||
        { fail "peer: pretrain_peer.py disagrees or failed"; tail -n 30 "$tmp/peer.out" >&2; }
    grep -q "^RESULT pretrain_peer .* steps=20 of=20" "$tmp/peer.out" ||
        fail "peer: no RESULT line for 20 µsteps"
    grep "^RESULT" "$tmp/peer.out"
else
    echo "note: no Python with PyTorch; the peer's replay is not checked"
fi

finish
