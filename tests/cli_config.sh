#!/usr/bin/env bash
# Command-line behaviour of `cram config` (and the top-level command table): the printed YAML,
# exit codes (0 ok, 2 bad input) and the messages that point at the mistake.
# Usage: tests/cli_config.sh path/to/cram   (run from the repository root)
set -u

. "$(dirname "$0")/lib_cli.sh"
FIX="$PWD/tests/fixtures/config"

# has NAME out|err PATTERN (grep -E, whole line unless the pattern says otherwise)
has() {
    if ! grep -qE -- "$3" "$tmp/$1.$2"; then
        fail "$1: std$2 has no line matching /$3/"
        sed 's/^/    got: /' "$tmp/$1.$2" | head -8 >&2
    fi
}

hasnt() {
    if grep -qE -- "$3" "$tmp/$1.$2"; then
        fail "$1: std$2 unexpectedly matches /$3/"
    fi
}

empty() {
    if [ -s "$tmp/$1.$2" ]; then
        fail "$1: std$2 should be empty"
        sed 's/^/    got: /' "$tmp/$1.$2" | head -5 >&2
    fi
}

# --- the issue's example ------------------------------------------------------------------
run issue 0 config pretrain arch=crammed-bert train=bert-o4 train.optim.lr=1e-4 budget=48
has issue out '^    lr: 0\.0001$'
has issue out '^budget: 48$'
has issue out '^  budget: 48$'            # train.budget follows ${budget}
has issue out '^  sparse_prediction: 0\.25$'
has issue out '^    embedding_dim: 768$'
has issue out '^  name: bert-o4$'
has issue out '^  - ScriptableCrammedBERT$'
has issue out '^  - LayerNorm\.weight$'
has issue out '^seed: null$'
has issue out '^  norm_eps: 1\.0e-12$'
hasnt issue out '\$\{'                    # everything is resolved
empty issue err

# the printed YAML is a config cram reads back: it composes as a primary config unchanged
mkdir -p "$tmp/back"
cp "$tmp/issue.out" "$tmp/back/pretrain.yaml"
run back 0 config pretrain --config-dir="$tmp/back"
if ! cmp -s "$tmp/issue.out" "$tmp/back.out"; then
    fail "back: the printed config does not read back to the same YAML"
    diff "$tmp/issue.out" "$tmp/back.out" | head -10 >&2
fi

# --- defaults, eval, group choices ----------------------------------------------------------
run defaults 0 config pretrain
has defaults out '^budget: 24$'
has defaults out '^name: default$'
has defaults out '^  name: bert-base$'
has defaults out '^  microbatch_size: 128$'

run eval 0 config eval eval/tasks=[rte,cola] impl.microbatch_size=16
has eval out '^    rte:$'
has eval out '^    cola:$'
hasnt eval out '^    mnli:$'
has eval out '^  microbatch_size: 16$'
has eval out '^  project: cramming-eval$'
has eval out '^    lr: 4\.0e-05$'

run quoted 0 config pretrain name=123 "+train.note='1e-3'" seed=7
has quoted out "^name: '123'$"
has quoted out "^  note: '1e-3'$"
has quoted out '^seed: 7$'

run extra 0 config pretrain --config-dir "$FIX/cli" arch=tiny-test
has extra out '^  - TinyTest$'

# --- errors -------------------------------------------------------------------------------------
run lrr 2 config pretrain train.optim.lrr=1
has lrr err 'did you mean train\.optim\.lr\?'
empty lrr out

run bret 2 config pretrain arch=crammed-bret
has bret err 'did you mean arch=crammed-bert\?'
has bret err 'crammed-bert-simple'
empty bret out

run abc 2 config pretrain train.optim.lr=abc
has abc err "train\.optim\.lr takes a number .*not the string 'abc'"

run unknown 2 config pretrain foo=1
has unknown err 'unknown key foo'

run addexisting 2 config pretrain +train.optim.lr=1
has addexisting err 'already exists'

run addgroup 2 config pretrain +wandb=default
has addgroup err 'already in the defaults list'

run badjob 2 config train
has badjob err "unknown job 'train'"

run nojob 2 config
has nojob err 'usage: cram config'

run nodir 2 config pretrain --config-dir=/nonexistent/cram-configs
has nodir err '/nonexistent/cram-configs'

run brokengroup 2 config pretrain --config-dir="$FIX/cli" arch=broken
has brokengroup err 'cli/arch/broken\.yaml:4:6: malformed YAML'

run brokenprimary 2 config pretrain --config-dir "$FIX/cli_bad"
has brokenprimary err 'cli_bad/pretrain\.yaml:3:9: malformed YAML'
empty brokenprimary out

# --- strict types: integer keys, ranges, key rules --------------------------------------------
run mbs_frac 2 config pretrain impl.microbatch_size=1.5
has mbs_frac err 'impl\.microbatch_size=1\.5: impl\.microbatch_size takes an integer from 1 to 2147483647 .*not the fraction 1\.5$'
empty mbs_frac out
run mbs_frac16 2 config eval impl.microbatch_size=16.5
has mbs_frac16 err 'not the fraction 16\.5$'
run mbs_huge 2 config pretrain impl.microbatch_size=1e30
has mbs_huge err 'impl\.microbatch_size=1e30: .*from 1 to 2147483647 .*not 1e30$'
run seed_huge 2 config pretrain seed=1e300
has seed_huge err 'seed=1e300: seed takes an integer from -9223372036854775808 to 9223372036854775807 or null, not 1e300$'
run seed_abc 2 config pretrain seed=abc
has seed_abc err "seed=abc: seed takes an integer or null, not the string 'abc'$"
run budget_neg 2 config pretrain budget=-1
has budget_neg err 'budget=-1: budget takes a number greater than 0, not -1$'
run budget_run 2 pretrain budget=-1 dryrun=True
has budget_run err '^cram pretrain: budget=-1: budget takes a number greater than 0'
run whole 0 config pretrain impl.microbatch_size=1e3 seed=7.0 budget=0.5 train.warmup_steps=0.06
has whole out '^  microbatch_size: 1000$'
has whole out '^seed: 7$'
has whole out '^budget: 0\.5$'
has whole out '^  warmup_steps: 0\.06$'
run emptykey 2 config pretrain '+arch.extra={: b}'
has emptykey err "cannot read the value '\{: b\}': empty key$"
run twicekey 2 config pretrain '+arch.extra={a: 1, a: 2}'
has twicekey err "key 'a' appears twice$"
run quotedkey 0 config pretrain "+arch.extra={'a b': 1}"
has quotedkey out '^    a b: 1$'

# --- groups given twice, unknown options, files cut short ---------------------------------------
run archtwice 2 config pretrain arch=crammed-bert arch=hf-bert-tiny
has archtwice err 'arch=crammed-bert and arch=hf-bert-tiny: the group arch is chosen twice; keep one$'
hasnt archtwice err 'defaults'
run datanope 2 config pretrain data=kjv data=nope
has datanope err "unknown option 'nope' for data; .*kjv"
mkdir -p "$tmp/emptycfg"
: >"$tmp/emptycfg/pretrain.yaml"
run emptyprimary 2 config pretrain --config-dir="$tmp/emptycfg" name=x
has emptyprimary err 'emptycfg/pretrain\.yaml: the file is empty'
hasnt emptyprimary err 'unknown key'
mkdir -p "$tmp/cut/impl"
sed '/^microbatch_size:/,$d' configs/impl/_default.yaml >"$tmp/cut/impl/_default.yaml"
run cutimpl 2 config pretrain --config-dir="$tmp/cut"
has cutimpl err 'has no impl\.microbatch_size, which cram reads; it should be set by .*cut/impl/_default\.yaml.*\(is a file cut short\?\)$'
run cutimpl_eval 2 eval --config-dir="$tmp/cut" dryrun=True
has cutimpl_eval err '^cram eval: the composed eval config has no impl\.microbatch_size'

# --- hydra's --cfg on the run commands: the same YAML as `cram config`, no run ----------------
run cfgjob 0 pretrain --cfg job arch=crammed-bert train=bert-o4 train.optim.lr=1e-4 budget=48
if ! cmp -s "$tmp/issue.out" "$tmp/cfgjob.out"; then
    fail "cfgjob: pretrain --cfg job differs from config pretrain"
    diff "$tmp/issue.out" "$tmp/cfgjob.out" | head -10 >&2
fi
[ -e "$tmp/outputs" ] && fail "cfgjob: --cfg job made a run folder"
run cfgall 0 eval eval=GLUE_sane --cfg=all --resolve
has cfgall out '^    lr: 4\.0e-05$'
run cfgshort 0 pretrain -c job budget=2
has cfgshort out '^budget: 2$'
run cfghydra 0 pretrain --cfg hydra
has cfghydra out 'no hydra section'
run cfgbad 2 pretrain --cfg jobs
has cfgbad err "^cram pretrain: --cfg takes job, all or hydra, not 'jobs'$"
run cfgwrong 2 pretrain --cfg job arch=crammed-bret
has cfgwrong err '^cram pretrain: unknown option .crammed-bret. for arch'

# --- the command table ------------------------------------------------------------------------
run nosuch 2 nosuchcommand
has nosuch err "unknown command 'nosuchcommand'"

run help 0 --help
has help out '^  config +'

run confighelp 0 config --help
has confighelp out 'usage: cram config pretrain\|eval'

run none 2

finish
