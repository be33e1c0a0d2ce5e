#!/usr/bin/env bash
# `cmake --install` puts cram and its config tree under a prefix, and the installed program finds
# its configs from any working directory, without CRAM_CONFIG_PATH.
# Usage: tests/cli_install.sh path/to/build/cram   (run from the repository root)
set -u

. "$(dirname "$0")/lib_cli.sh"
build=$(cd "$(dirname "$CRAM")" && pwd)
command -v cmake >/dev/null || { echo "skipped: no cmake"; exit 77; }
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || fail "cmake --install failed: $(tail -3 "$tmp/install.log")"
[ -x "$tmp/prefix/bin/cram" ] || fail "no bin/cram under the prefix"
[ -f "$tmp/prefix/share/cram/configs/pretrain.yaml" ] || fail "no share/cram/configs/pretrain.yaml"
(cd / && env -u CRAM_CONFIG_PATH "$tmp/prefix/bin/cram" config pretrain arch=crammed-bert >"$tmp/cfg.out" 2>"$tmp/cfg.err") ||
    fail "installed cram config pretrain failed: $(cat "$tmp/cfg.err")"
grep -q "embedding_dim: 768" "$tmp/cfg.out" || fail "installed cram: the resolved config lacks arch.embedding.embedding_dim"
# a program built outside the source tree (cmake -B /elsewhere) finds the source tree's configs
mkdir -p "$tmp/elsewhere" && cp "$CRAM" "$tmp/elsewhere/cram"
(cd / && env -u CRAM_CONFIG_PATH "$tmp/elsewhere/cram" config pretrain budget=3 >"$tmp/else.out" 2>"$tmp/else.err") ||
    fail "cram outside the source tree: config pretrain failed: $(cat "$tmp/else.err")"
grep -q "^budget: 3$" "$tmp/else.out" || fail "cram outside the source tree: no budget: 3 in the config"
finish
