#!/usr/bin/env python3
"""Export round trip: load a folder written by `cram export` with transformers' BertForMaskedLM
and compare its MLM logits with the ones cram wrote (`--reference-logits=FILE`).

usage: check_export.py EXPORTED_DIR LOGITS_FILE   (exit 1 when max |diff| >= 1e-4)
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import BertForMaskedLM

folder, ref = sys.argv[1], sys.argv[2]
r = load_file(ref)
model = BertForMaskedLM.from_pretrained(folder).eval()
ids, mask = r["ids"].long(), r["mask"].long()
with torch.no_grad():
    out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
keep = mask.bool()
diff = (out - r["logits"])[keep].abs().max().item()
print(f"transformers BertForMaskedLM vs cram MLM logits ({int(keep.sum())} positions, vocab "
      f"{out.shape[-1]}): max |diff| {diff:.3g}")
sys.exit(0 if diff < 1e-4 else 1)
