# Shared by the tests/cli_*.sh scripts (sourced, not run): the cram binary from $1, a temp folder
# removed on exit, and the helpers that run cram there and collect failures.
#   run NAME WANT ARGS...   runs cram ARGS in $tmp; stdout/stderr kept in $tmp/NAME.{out,err};
#                           a failure when the exit status is not WANT
#   has NAME TEXT           a failure when TEXT is in neither output of run NAME
#   gpu_usable              true when the binary sees a CUDA GPU
#   fail MESSAGE            counts a failure
#   finish                  prints the verdict and exits 0 or 1
CRAM=${1:?usage: $0 path/to/cram}
case $CRAM in /*) ;; *) CRAM="$PWD/$CRAM" ;; esac
if [ ! -x "$CRAM" ]; then
    echo "skipped: cram binary not found: $CRAM" >&2
    exit 77
fi
export CRAM_CONFIG_PATH="$PWD/configs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

run() {
    local name=$1 want=$2
    shift 2
    (cd "$tmp" && "$CRAM" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err")
    local rc=$?
    if [ "$rc" -ne "$want" ]; then
        fail "$name: cram $* exited $rc, expected $want"
        tail -n 5 "$tmp/$name.err" | sed 's/^/    stderr: /' >&2
    fi
}

has() { grep -q -- "$2" "$tmp/$1.out" "$tmp/$1.err" || fail "$1: no '$2' in the output"; }

# true when this cram sees a CUDA GPU it can use ("cuda: runtime R, driver D, N device(s)", N > 0)
gpu_usable() { "$CRAM" info 2>/dev/null | grep -Eq '^cuda: .* [1-9][0-9]* device\(s\)'; }

finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$(basename "$0"): $failures check(s) failed" >&2
        exit 1
    fi
    echo "$(basename "$0"): all checks passed"
    exit 0
}
