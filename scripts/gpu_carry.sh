#!/usr/bin/env bash
# What each scripts/gpu_check.sh mode needs carried to a GPU machine, and whether it fits. The
# device tool copies the working tree (tracked files and untracked ones git does not ignore) and
# at most 8 git-ignored paths, 64 MiB in all, so each mode names the ignored folders it needs:
#   test, bench   .gpu-libs .gpu-blas             (scripts/gpu_prepare.sh)
#   pretrain      .gpu-libs .gpu-data-pretrain    (scripts/gpu_prepare.sh, gpu_prepare_data.sh pretrain)
#   eval          .gpu-libs .gpu-data-eval        (scripts/gpu_prepare.sh, gpu_prepare_data.sh eval)
# Run:     scripts/gpu_carry.sh [MODE...]   one line per mode: the carry list and the sizes; exit 1
#          when a folder is missing or a mode's total passes the limit (default: every mode)
# Sourced: gpu_carry_folders MODE, gpu_carry_prepare MODE, gpu_carry_report MODE (the prepare
#          scripts use the last one as their size guard)
# The limit keeps 1 MiB of the 64 free for the tree to grow between preparing and running.

gpu_carry_limit_bytes=$(((64 - 1) * 1024 * 1024))

gpu_carry_folders() { # mode -> the ignored folders it carries, in carry order
  case "$1" in
    test | bench) echo ".gpu-libs .gpu-blas" ;;
    pretrain) echo ".gpu-libs .gpu-data-pretrain" ;;
    eval) echo ".gpu-libs .gpu-data-eval" ;;
    *) return 1 ;;
  esac
}

gpu_carry_prepare() { # folder -> the command that makes it
  case "$1" in
    .gpu-libs | .gpu-blas) echo "scripts/gpu_prepare.sh" ;;
    .gpu-data-pretrain) echo "scripts/gpu_prepare_data.sh pretrain" ;;
    .gpu-data-eval) echo "scripts/gpu_prepare_data.sh eval" ;;
  esac
}

# bytes of the files that travel without being named: tracked and untracked-but-not-ignored
gpu_carry_tree_bytes() {
  git ls-files -z --cached --others --exclude-standard |
    xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

gpu_carry_bytes() { # folder -> apparent bytes of its files (0 when missing)
  if [ -d "$1" ]; then
    find "$1" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'
  else
    echo 0
  fi
}

gpu_carry_mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }

# One line for a mode; returns 1 when a folder is missing, 2 when the total is over the limit.
# Run from the repository root.
gpu_carry_report() { # mode
  local mode=$1 folders f b total missing="" parts=""
  folders=$(gpu_carry_folders "$mode") || {
    echo "gpu_carry: unknown mode '$mode' (test, bench, pretrain, eval)" >&2
    return 1
  }
  total=$(gpu_carry_tree_bytes)
  parts="tree $(gpu_carry_mib "$total")"
  for f in $folders; do
    b=$(gpu_carry_bytes "$f")
    total=$((total + b))
    if [ -d "$f" ]; then
      parts="$parts + $f $(gpu_carry_mib "$b")"
    else
      parts="$parts + $f missing"
      missing="$missing $f ($(gpu_carry_prepare "$f"))"
    fi
  done
  local list=() carry
  read -ra list <<<"$folders"
  carry=$(printf '"%s", ' "${list[@]}")
  echo "$mode: carry [${carry%, }]: $parts = $(gpu_carry_mib "$total") MiB of $(gpu_carry_mib "$gpu_carry_limit_bytes") allowed"
  if [ "$total" -gt "$gpu_carry_limit_bytes" ]; then
    echo "gpu_carry: $mode needs $(gpu_carry_mib "$total") MiB, over the $(gpu_carry_mib "$gpu_carry_limit_bytes") MiB a carry can take" >&2
    return 2
  fi
  if [ -n "$missing" ]; then
    echo "gpu_carry: $mode: missing:$missing" >&2
    return 1
  fi
  return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  cd "$(dirname "$0")/.." || exit 1
  [ $# -gt 0 ] || set -- test bench pretrain eval
  rc=0
  for m in "$@"; do
    gpu_carry_report "$m" || rc=1
  done
  exit $rc
fi
