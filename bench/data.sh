#!/usr/bin/env bash
# Preprocessing throughput (MB/s of raw text) and peak RSS of `cram data` on the default corpus
# and on a 10x replicated copy of it: memory must not grow with the corpus size (beyond the
# tokenizer's capped training sample, see docs/data.md).
#   [CORPUS=dir] bench/data.sh [build-dir] [replicas]        (defaults: build, 10)
# The corpus is data/corpora/debian-english (scripts/fetch-corpus) when present, or
# outputs/data/corpora/debian-english; otherwise a stand-in is assembled from Debian text
# found on this machine (GCIDE, FOLDOC, the KJV Bible), and the output says so.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
reps=${2:-10}
bin=$build/cram
[ -x "$bin" ] || { echo "bench/data.sh: no $bin (build first)" >&2; exit 2; }
export CRAM_CONFIG_PATH=${CRAM_CONFIG_PATH:-$PWD/configs}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/cram-bench-data}
mkdir -p "$work"

corpus=${CORPUS:-}   # CORPUS=/path/to/debian-english overrides the search below
[ -n "$corpus" ] && corpus=$(cd "$corpus" && pwd)
for c in data/corpora/debian-english outputs/data/corpora/debian-english; do
  [ -n "$corpus" ] && break
  if [ -d "$c" ] && [ -n "$(ls -A "$c")" ]; then corpus=$(cd "$c" && pwd); break; fi
done
if [ -z "$corpus" ]; then
  corpus=$work/standin
  if [ ! -d "$corpus" ]; then
    mkdir -p "$corpus.tmp"
    for d in gcide foldoc devil; do
      f=/usr/share/dictd/$d.dict.dz
      [ -r "$f" ] && zcat "$f" > "$corpus.tmp/$d.txt"
    done
    command -v bible >/dev/null && bible -f -l 100000 gen1:1-rev22:21 > "$corpus.tmp/kjv.txt" 2>/dev/null || true
    if [ -z "$(ls -A "$corpus.tmp")" ]; then  # anything readable: the licenses, replicated
      for i in $(seq 1 200); do cat /usr/share/common-licenses/* > "$corpus.tmp/lic$i.txt"; done
    fi
    mv "$corpus.tmp" "$corpus"
  fi
  echo "note: no debian-english corpus found; using a stand-in from local Debian text ($corpus)"
fi
big=$work/x$reps
rm -rf "$big" && mkdir -p "$big"
for i in $(seq 1 "$reps"); do
  for f in $(find "$corpus" -type f -not -name ".*" | sort); do ln -s "$f" "$big/r$i-$(basename "$f")"; done
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %10s %10s %9s %9s %10s %11s\n' corpus "text MB" "wall s" "MB/s" "cpu s" "rows" "peak RSS MB"
for c in "$corpus" "$big"; do
  store=$work/store
  rm -rf "$store"
  log=$work/log.txt
  /usr/bin/time -v "$bin" data data=debian-english impl.path="$store" \
      data.sources.debian_english.path="$c" > "$log" 2>&1 || { cat "$log"; exit 1; }
  mb=$(grep -m1 '^text:' "$log" | awk '{print $2}')
  wall=$(grep -m1 '^build:' "$log" | awk '{print $2}')
  rate=$(grep -m1 '^build:' "$log" | awk '{print $4}')
  rows=$(grep -m1 '^rows:' "$log" | awk '{print $2}')
  user=$(grep 'User time' "$log" | awk '{print $NF}')
  sys=$(grep 'System time' "$log" | awk '{print $NF}')
  rss=$(grep 'Maximum resident' "$log" | awk '{printf "%.0f", $NF/1024}')
  name=$([ "$c" = "$corpus" ] && echo 1x || echo "${reps}x")
  printf '%-10s %10s %10s %9s %9.1f %10s %11s\n' "$name" "$mb" "$wall" "$rate" \
      "$(echo "$user + $sys" | bc)" "$rows" "$rss"
  # the second run reuses the store
  t0=$(date +%s.%N)
  "$bin" data data=debian-english impl.path="$store" data.sources.debian_english.path="$c" > /dev/null
  echo "           reuse: $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"
done
rm -rf "$work/store" "$big"
