#!/usr/bin/env bash
# Data parallelism across processes: runs the test_dist binary (built beside cram) under
# `mpirun -np 2`, where it checks sum, average, broadcast, MIN/MAX, the stop vote and the ZeRO-1
# pair across the ranks, then checks that a job with a failing rank ends instead of hanging.
# Skips (exit 77, with the reason) without mpirun or without MPI in the build. Every mpirun runs
# under a timeout, so a misbehaving MPI cannot hang CI.
# Usage: tests/cli_dist.sh path/to/cram   (run from the repository root)
#   CRAM_DIST_NP=4 runs 4 ranks; CRAM_DIST_BENCH_FLOATS=n also times an all-reduce of n floats.
set -u

. "$(dirname "$0")/lib_cli.sh"
TEST="$(dirname "$CRAM")/test_dist"
NP=${CRAM_DIST_NP:-2}
LIMIT=${CRAM_DIST_TIMEOUT:-300}

if [ ! -x "$TEST" ]; then
    echo "skipped: $TEST not built (cmocka missing?)"
    exit 77
fi
if ! command -v mpirun >/dev/null 2>&1; then
    echo "skipped: mpirun not found (apt-get install openmpi-bin)"
    exit 77
fi
if ! ldd "$TEST" 2>/dev/null | grep -q libmpi; then
    echo "skipped: this build has no MPI backend (libopenmpi-dev was missing at build time)"
    exit 77
fi

# Open MPI refuses root without --allow-run-as-root; --oversubscribe lets the ranks share fewer
# cores; --tag-output prefixes each line with [job,rank].
MPIRUN=(mpirun -np "$NP" --oversubscribe --tag-output)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
# no InfiniBand/UCX probing on CI machines: shared memory and TCP on one host
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
# OpenMPI's own allocations are not ours to account for (sanitizer builds)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
# each rank would otherwise start as many OpenMP threads as the machine has cores
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

# 1. the collectives across ranks
timeout -k 10 "$LIMIT" "${MPIRUN[@]}" "$TEST" >"$tmp/ranks.out" 2>&1
rc=$?
cat "$tmp/ranks.out"
case $rc in
0) ;;
124 | 137) fail "mpirun -np $NP test_dist did not finish in ${LIMIT}s (hung collective?)" ;;
*)
    if grep -qiE "no (network|btl)|not enough slots|ORTE|PMIx.*(fail|error)|could not (be )?(start|launch)" "$tmp/ranks.out" &&
        ! grep -q "dist across ranks" "$tmp/ranks.out"; then
        echo "skipped: mpirun cannot start ranks on this machine (see above)"
        exit 77
    fi
    fail "mpirun -np $NP test_dist exited $rc"
    ;;
esac
if [ "$rc" -eq 0 ]; then
    [ "$(grep -c "PASSED" "$tmp/ranks.out")" -eq "$NP" ] || fail "not every rank reported PASSED"
    grep -q "FAILED" "$tmp/ranks.out" && fail "a test failed on some rank"
    grep -q "mpi: rank 0 of $NP" "$tmp/ranks.out" || fail "rank 0 did not describe an MPI job of $NP"
fi

# 2. a rank that dies (core_die) while the other waits in a collective: the die hook's MPI_Abort
#    (or, failing that, mpirun noticing the exit) ends the whole job at once instead of leaving
#    rank 0 in its barrier until the timeout. (Open MPI 4.1 sometimes garbles its MPI_ABORT
#    banner with --tag-output, so only the exit and the time are checked.)
start=$(date +%s)
CRAM_DIST_TEST_DIE=1 timeout -k 10 120 "${MPIRUN[@]}" "$TEST" >"$tmp/die.out" 2>&1
rc=$?
took=$(($(date +%s) - start))
if [ "$rc" -eq 0 ]; then
    fail "a job with a failing rank exited 0"
elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "a job with a failing rank hung until the timeout"
else
    grep -q "planned failure on rank 1" "$tmp/die.out" || fail "the failing rank's message is missing"
    [ "$took" -le 60 ] || fail "a job with a failing rank took ${took}s to end"
    echo "ok: a job with a failing rank ended in ${took}s with exit $rc"
fi

# 3. dist_abort(code) on one rank: the job ends with that status, the others do not hang
CRAM_DIST_TEST_DIE=abort timeout -k 10 120 "${MPIRUN[@]}" "$TEST" >"$tmp/abort.out" 2>&1
rc=$?
if [ "$rc" -ne 5 ]; then
    fail "dist_abort(5) on rank 1: the job exited $rc, expected 5"
    sed 's/^/    /' "$tmp/abort.out" | head -8 >&2
else
    echo "ok: dist_abort(5) on one rank ended the job with status 5"
fi

finish
