#!/usr/bin/env bash
# Data-parallel pretraining under mpirun: 2 ranks with microbatch 4 must end with the weights of
# one process with microbatch 8 (the same global batches: rank r reads rows r, r+2, ...), up to
# the order of the fp32 gradient sums; then a 2-rank run stopped by SIGTERM and resumed with
# 2 ranks must equal an uninterrupted 2-rank run. Masking is off (objective.disable_mlm) and every
# row is decoded (arch.sparse_prediction=0) in those; a last pair runs the full MLM objective with
# 2 ranks at microbatch 3 (updates of 3 + 3 + 2 rows per rank): each row's masks follow its place
# in the data stream, not the rank or microbatch, so it too must end with the one process's weights.
# Usage: tests/cli_dist_train.sh path/to/cram   (run from the repository root)
set -u
CRAM=${1:?usage: $0 path/to/cram}
case $CRAM in /*) ;; *) CRAM="$PWD/$CRAM" ;; esac
command -v mpirun >/dev/null || { echo "skipped: mpirun not found"; exit 77; }
command -v python3 >/dev/null || { echo "skipped: python3 not found (compares the weights)"; exit 77; }
export CRAM_CONFIG_PATH="$PWD/configs" CRAM_PEAK_GFLOPS=100
corpus="$PWD/tests/fixtures/tok/corpus.txt.zst"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=""
[ "$(id -u)" -eq 0 ] && root="--allow-run-as-root"
# Open MPI's own allocations outlive MPI_Finalize: no leak report for the mpirun runs
MPI=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
     timeout 300 mpirun -np 2 $root --oversubscribe --bind-to none)
ARGS=(data=kjv data.vocab_size=2000 data.validation_seqs=64 "data.sources.kjv.path=$corpus"
      arch=crammed-bert arch.num_transformer_layers=2 arch.hidden_size=64 arch.intermed_size=256
      arch.attention.num_attention_heads=4 arch.sparse_prediction=0 train=bert-o4
      train.objective.disable_mlm=True train.batch_size=16 train.batch_size_ramp=0 train.steps=8
      impl=cpu impl.threads=1 budget=1000 seed=11 impl.print_loss_every_nth_step=1)
run() { # name, then the command; output kept in $tmp/name.log
    local name=$1
    shift
    (cd "$tmp" && "$@" >"$tmp/$name.log" 2>&1) || {
        echo "FAIL: $name exited $?:"; tail -20 "$tmp/$name.log"; exit 1; }
}
ckpt() { ls -d "$tmp"/outputs/"$1"/checkpoints/*/ | head -1; }
run single "$CRAM" pretrain "${ARGS[@]}" name=single impl.microbatch_size=8
run ranks2 "${MPI[@]}" "$CRAM" pretrain "${ARGS[@]}" name=ranks2 impl.microbatch_size=4
grep -q "Data-parallel processes: 2" "$tmp/ranks2.log" || { echo "FAIL: mpirun did not give 2 ranks"; exit 1; }

compare() { # a b tolerance: relative L2 distance of all float tensors
    python3 - "$1/model.safetensors" "$2/model.safetensors" "$3" <<'PY'
import json, math, struct, sys
def load(p):
    b = open(p, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); base = 8 + n; out = {}
    for k, v in h.items():
        if k == "__metadata__" or v["dtype"] != "F32": continue
        s, e = v["data_offsets"]
        out[k] = struct.unpack("<%df" % ((e - s) // 4), b[base + s:base + e])
    return out
a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
assert a.keys() == b.keys(), "different tensors"
num = sum((x - y) ** 2 for k in a for x, y in zip(a[k], b[k]))
den = sum(x * x for k in a for x in a[k])
rel = math.sqrt(num / den)
print(f"relative L2 distance {rel:.3e} (tolerance {tol:g})")
sys.exit(0 if rel <= tol else 1)
PY
}
compare "$(ckpt single)" "$(ckpt ranks2)" 1e-5 || { echo "FAIL: 2 ranks differ from 1 process"; exit 1; }

MLM=()
for a in "${ARGS[@]}"; do
    case $a in train.objective.disable_mlm=* | arch.sparse_prediction=*) ;; *) MLM+=("$a") ;; esac
done
run single_mlm "$CRAM" pretrain "${MLM[@]}" name=single_mlm impl.microbatch_size=8
run ranks2_mlm "${MPI[@]}" "$CRAM" pretrain "${MLM[@]}" name=ranks2_mlm impl.microbatch_size=3 \
    train.steps=12
grep -q "Trained 12 microbatches (4 updates)" "$tmp/ranks2_mlm.log" ||
    { echo "FAIL: 2 ranks at microbatch 3 did not make 4 updates in 12 µsteps"; grep Trained "$tmp/ranks2_mlm.log"; exit 1; }
compare "$(ckpt single_mlm)" "$(ckpt ranks2_mlm)" 1e-5 ||
    { echo "FAIL: MLM with 2 ranks at microbatch 3 differs from 1 process at 8"; exit 1; }

# resume with 2 ranks: stop after a periodic state at microbatch 4, resume, compare with ranks2
R=("${ARGS[@]}" impl.microbatch_size=4 impl.save_intermediate_checkpoints=True impl.save_every_nth_step=4)
run part1 "${MPI[@]}" "$CRAM" pretrain "${R[@]}" name=resumed train.steps=4
run part2 "${MPI[@]}" "$CRAM" pretrain "${R[@]}" name=resumed impl.resume_run_after_preempt=True
grep -q -i "resum" "$tmp/part2.log" || { echo "FAIL: the second run did not resume"; tail "$tmp/part2.log"; exit 1; }
compare "$(ckpt ranks2)" "$(ls -td "$tmp"/outputs/resumed/checkpoints/*/ | head -1)" 0 ||
    { echo "FAIL: a resumed 2-rank run differs from an uninterrupted one"; exit 1; }
echo "ok"
