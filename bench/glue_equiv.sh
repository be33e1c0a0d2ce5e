#!/usr/bin/env bash
# A deterministic cross-check of the fine-tuning math against transformers + PyTorch: the
# imported all-MiniLM-L6-v2 with dropout switched off (in a copied config.json) and the SAME
# classifier head (written into a copied model.safetensors with `bert.`-prefixed encoder keys,
# the BertForSequenceClassification layout, so both sides load it), on the first
# ROWS rows of RTE train, for EPOCHS epochs, validated on the first DEV rows of RTE dev. With no
# randomness left, the per-epoch losses and the validation accuracy must agree to float noise.
# usage: bench/glue_equiv.sh [ROWS=80] [EPOCHS=3] [DEV=64]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-80}
EPOCHS=${2:-3}
DEV=${3:-64}
CRAM=${CRAM:-build/cram}
PY=${PY:-data/venv-eval/bin/python}
GLUE_DIR=${GLUE_DIR:-$(cd ../shared/glue && pwd)}
MODEL=${MODEL:-data/hf/all-MiniLM-L6-v2}
W=${OUT:-outputs/glue_equiv}
rm -rf "$W" && mkdir -p "$W/glue/RTE" "$W/model"
head -n $((ROWS + 1)) "$GLUE_DIR/RTE/train.tsv" >"$W/glue/RTE/train.tsv"
head -n $((DEV + 1)) "$GLUE_DIR/RTE/dev.tsv" >"$W/glue/RTE/dev.tsv"
cp "$MODEL"/{vocab.txt,tokenizer.json,tokenizer_config.json,special_tokens_map.json} "$W/model/"
"$PY" - "$MODEL" "$W/model" <<'PY'
import json, sys, torch
from safetensors.torch import load_file, save_file
src, dst = sys.argv[1:3]
cfg = json.load(open(f"{src}/config.json"))
cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
json.dump(cfg, open(f"{dst}/config.json", "w"), indent=2)
st = {("" if k.startswith("bert.") else "bert.") + k: v for k, v in load_file(f"{src}/model.safetensors").items()}
g = torch.Generator().manual_seed(0)
st["classifier.weight"] = torch.randn(2, cfg["hidden_size"], generator=g) * 0.02
st["classifier.bias"] = torch.zeros(2)
save_file({k: v.contiguous() for k, v in st.items()}, f"{dst}/model.safetensors", metadata={"format": "pt"})
PY
"$CRAM" eval eval/tasks=rte eval.checkpoint="hf:$W/model" eval.data_dir="$W/glue" eval.epochs="$EPOCHS" \
  impl.microbatch_size=16 seed=1 base_dir="$W/runs" 2>&1 | grep -E "Train loss|Validation" | sed 's/^\[[^]]*\] /[cram] /'
"$PY" bench/glue_hf_peer.py "$W/model" "$W/glue" rte "$EPOCHS" 1 2 2>&1 | grep -E "^\[hf\] rte epoch"
