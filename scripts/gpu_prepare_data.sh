#!/usr/bin/env bash
# Makes, here, the data folders that the scripts/gpu_check.sh modes `pretrain` and `eval` carry to
# a GPU machine (git-ignored; each travels with the tree and .gpu-libs, see scripts/gpu_carry.sh):
#   scripts/gpu_prepare_data.sh pretrain   -> .gpu-data-pretrain/
#   scripts/gpu_prepare_data.sh eval       -> .gpu-data-eval/
#   scripts/gpu_prepare_data.sh all        both
# .gpu-data-pretrain/debian-english/  the default corpus, each file compressed with zstd -19 as
#                                     NAME.zst: cram's reader decompresses *.zst while reading
#                                     (docs/data.md), so nothing is unpacked on the GPU machine
# .gpu-data-eval/all-MiniLM-L6-v2-f16/  the MiniLM checkpoint with F16 weights (scripts/hf_to_half.py;
#                                     cram's Hugging Face import reads F16 and BF16)
# .gpu-data-eval/glue/RTE, glue/MRPC  the two GLUE tasks the eval mode scores
# Sources (environment): CORPUS_DIR (default data/corpora/debian-english, made by
# scripts/fetch-corpus), MINILM_DIR (default data/hf/all-MiniLM-L6-v2, scripts/fetch-minilm.sh),
# GLUE_DIR (default data/glue_data, a folder in the standard glue_data layout), HALF_DTYPE (f16 or
# bf16, default f16), CRAM (a cram binary for the eval folder's load check; default build/cram,
# skipped when there is none). Both folders fit the carry with the tree and .gpu-libs, not together;
# the size guard is scripts/gpu_carry.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/gpu_carry.sh disable=SC1091
. scripts/gpu_carry.sh

usage() {
  echo "usage: scripts/gpu_prepare_data.sh pretrain|eval|all" >&2
  exit 2
}
[ $# -eq 1 ] || usage
case "$1" in
  pretrain | eval) what=$1 ;;
  all) what="pretrain eval" ;;
  *) usage ;;
esac

die() {
  echo "gpu_prepare_data: $*" >&2
  exit 1
}

# The mode's carry must fit; a folder that would not is removed again. A missing .gpu-libs is
# only reported (scripts/gpu_prepare.sh makes it; the total above counts it as empty).
guard() { # mode folder
  local rc=0
  gpu_carry_report "$1" || rc=$?
  if [ $rc -eq 2 ]; then
    rm -rf "$2"
    die "$2 removed: with the tree and .gpu-libs it would not fit a carry"
  fi
}

prepare_pretrain() {
  local src=${CORPUS_DIR:-data/corpora/debian-english} dst=.gpu-data-pretrain
  local tmp=$dst.tmp n=0
  [ -d "$src" ] || die "no corpus folder $src (scripts/fetch-corpus builds it, or set CORPUS_DIR)"
  command -v zstd >/dev/null || die "zstd not found (apt-get install zstd)"
  rm -rf "$tmp"
  mkdir -p "$tmp/debian-english"
  # the files cram would read from the folder: regular files, hidden names (the build's markers)
  # left out; a file that is already compressed travels as it is
  while IFS= read -r -d '' f; do
    rel=${f#"$src"/}
    case "$rel" in .* | */.*) continue ;; esac
    out="$tmp/debian-english/$rel"
    mkdir -p "$(dirname "$out")"
    case "$f" in
      *.zst) cp "$f" "$out" ;;
      *)
        zstd -q -19 -T0 "$f" -o "$out.zst"
        # what cram will read back must be the text itself
        zstd -dc "$out.zst" | cmp -s - "$f" || die "$out.zst does not decompress to $f"
        ;;
    esac
    n=$((n + 1))
  done < <(find "$src" -type f -print0 | sort -z)
  [ $n -gt 0 ] || die "$src holds no corpus files"
  rm -rf "$dst"
  mv "$tmp" "$dst"
  echo "gpu_prepare_data: $dst: $n files from $src, $(du -sh "$src" | cut -f1) of text in $(du -sh "$dst" | cut -f1)"
  guard pretrain "$dst"
}

prepare_eval() {
  local minilm=${MINILM_DIR:-data/hf/all-MiniLM-L6-v2} glue=${GLUE_DIR:-data/glue_data}
  local dst=.gpu-data-eval dtype=${HALF_DTYPE:-f16}
  local tmp=$dst.tmp model=all-MiniLM-L6-v2-$dtype
  [ -f "$minilm/model.safetensors" ] ||
    die "no $minilm/model.safetensors (scripts/fetch-minilm.sh fetches it, or set MINILM_DIR)"
  for f in RTE/train.tsv RTE/dev.tsv MRPC/train.tsv MRPC/dev.tsv; do
    [ -f "$glue/$f" ] || die "no $glue/$f (set GLUE_DIR to a folder in the glue_data layout)"
  done
  command -v python3 >/dev/null || die "python3 not found (scripts/hf_to_half.py needs it)"
  rm -rf "$tmp"
  mkdir -p "$tmp/glue"
  python3 scripts/hf_to_half.py "$minilm" "$tmp/$model" --dtype "$dtype"
  for t in RTE MRPC; do
    mkdir -p "$tmp/glue/$t"
    cp "$glue/$t/train.tsv" "$glue/$t/dev.tsv" "$tmp/glue/$t/"
  done
  # the converted folder loads and trains: one step per task on the CPU (dryrun), in a scratch
  # base_dir and launch folder so that no table row or run folder is left behind
  local cram=${CRAM:-$PWD/build/cram} root=$PWD scratch
  if [ -x "$cram" ]; then
    cram=$(realpath "$cram")
    scratch=$(mktemp -d)
    if ! (cd "$scratch" && CRAM_CONFIG_PATH="$root/configs" "$cram" eval 'eval/tasks=[rte,mrpc]' \
      "eval.checkpoint=hf:$root/$tmp/$model" "eval.data_dir=$root/$tmp/glue" dryrun=True \
      impl.device=cpu base_dir="$scratch/outputs" >"$scratch/eval.log" 2>&1); then
      tail -n 20 "$scratch/eval.log" >&2
      rm -rf "$scratch" "$tmp"
      die "cram eval (dryrun, CPU) of the converted checkpoint failed"
    fi
    grep -q "Loaded .* tensors from" "$scratch/eval.log" ||
      { rm -rf "$scratch" "$tmp"; die "the dryrun did not load the converted weights"; }
    echo "gpu_prepare_data: $cram eval (dryrun, CPU) loads $model and runs RTE and MRPC"
    rm -rf "$scratch"
  else
    echo "gpu_prepare_data: no cram at $cram (set CRAM): the converted folder was not test-loaded"
  fi
  rm -rf "$dst"
  mv "$tmp" "$dst"
  echo "gpu_prepare_data: $dst: $model, glue/RTE, glue/MRPC in $(du -sh "$dst" | cut -f1)"
  guard eval "$dst"
}

for w in $what; do
  "prepare_$w"
done
