#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for the given number of seconds
# (default 60), starting from the committed seed corpus. Fails on any crash, leak or UB report.
#   scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCRAM_FUZZ=ON -DCRAM_CUDA=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" >/dev/null
# A UndefinedBehaviorSanitizer report (clang's -fsanitize=undefined includes float-cast-overflow)
# only prints and carries on unless told to stop; stopping makes libFuzzer keep the input.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/${t#fuzz_}"
  work="build-fuzz/corpus-${t#fuzz_}"
  mkdir -p "$work"
  rm -f build-fuzz/"$t"-crash-* build-fuzz/"$t"-leak-* build-fuzz/"$t"-timeout-*
  echo "fuzzing $t for ${secs}s"
  (cd "$PWD" && "build-fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
     -artifact_prefix="build-fuzz/$t-" "$work" $( [ -d "$seeds" ] && echo "$seeds" ) 2>&1 |
     grep -E '^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|INFO: Seed)' || true)
  if ls build-fuzz/"$t"-crash-* build-fuzz/"$t"-leak-* build-fuzz/"$t"-timeout-* 2>/dev/null | grep -q .; then
    echo "fuzz: $t found a failure; the input is in build-fuzz/" >&2
    exit 1
  fi
done
