#!/usr/bin/env python3
"""Export round trip: load a folder written by `cram export` with transformers'
AutoModelForMaskedLM and compare its MLM logits with the ones cram computed itself
(`cram export SRC DST --reference-logits=FILE`).

A BERT folder must load without remote code (as BertForMaskedLM); a crammed-bert folder loads
the modeling_crammed_bert.py written beside it (trust_remote_code=True). When FILE carries the
sentences (metadata text0..text3, written by cram since the remote-code export), the folder's
tokenizer (AutoTokenizer) must also give cram's token ids for them.

usage: check_export.py EXPORTED_DIR LOGITS_FILE [EXPORTED_DIR LOGITS_FILE ...] [--tol REL]
         exit 1 when, for any pair, max |diff| / max |cram logit| over the unpadded positions
         exceeds REL (default 1e-4), or the token ids differ
       check_export.py --perturb SEED CHECKPOINT_DIR [CHECKPOINT_DIR ...]
         rewrite each CHECKPOINT_DIR/model.safetensors with every tensor replaced by random
         values of a typical size (tied tensors stay equal), so that a round trip exercises every
         weight and not an almost fresh initialization; the file then has no cram checksum
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def perturb(folder, seed):
    path = os.path.join(folder, "model.safetensors")
    tensors = load_file(path)
    g = torch.Generator().manual_seed(seed)
    out, done = {}, []  # done: (original, replacement) to keep tied tensors tied
    for name in sorted(tensors):
        t = tensors[name].float()
        # tied matrices are stored twice with equal values (norms and biases start equal too,
        # but are not tied: only matrices are matched)
        same = next((n for o, n in done if o.shape == t.shape and torch.equal(o, t)), None)
        if same is not None and t.dim() == 2:
            out[name] = same.clone()  # equal values, separate storage (safetensors)
            continue
        r = torch.randn(t.shape, generator=g)
        if name.endswith("norm_factor"):
            new = t  # a buffer of the reference, unused by cram
        elif name.endswith("scale_factor"):
            new = 0.5 + torch.rand(t.shape, generator=g)
        elif t.dim() == 1 and ("norm" in name or "LayerNorm" in name) and name.endswith("weight"):
            new = 1.0 + 0.3 * r
        elif t.dim() == 1:
            new = 0.2 * r  # biases
        elif "embedding" in name or "embeddings" in name or name.endswith("decoder.weight"):
            new = 0.5 * r
        else:
            new = r / t.shape[1] ** 0.5  # weights [out, in]
        new = new.contiguous()
        done.append((t, new))
        out[name] = new
    save_file(out, path, metadata={"format": "pt"})
    print(f"perturbed {len(out)} tensors of {path} (seed {seed})")


def check(folder, ref, tol):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    with open(os.path.join(folder, "config.json")) as f:
        remote = "auto_map" in json.load(f)
    r = load_file(ref)
    with safe_open(ref, "pt") as f:
        meta = f.metadata() or {}
    model = AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=remote).eval()
    kind = type(model).__name__
    name = os.path.basename(os.path.normpath(folder))
    if not remote and kind != "BertForMaskedLM":
        print(f"FAIL: {name}: loaded as {kind}, expected BertForMaskedLM")
        return 1
    ids, mask = r["ids"].long(), r["mask"].long()
    extra = {} if remote else {"token_type_ids": torch.zeros_like(ids)}
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, **extra).logits
    keep = mask.bool()
    want = r["logits"][keep]
    diff = (out[keep] - want).abs().max().item()
    rel = diff / max(want.abs().max().item(), 1e-30)
    print(f"{name}: {kind} ({'remote code' if remote else 'transformers'}) vs cram MLM logits "
          f"({int(keep.sum())} positions x {out.shape[-1]}): max |diff| {diff:.3g}, "
          f"max |cram logit| {want.abs().max().item():.3g}, relative {rel:.3g} (limit {tol:g})")
    failed = not rel <= tol
    texts = [meta.get(f"text{k}") for k in range(ids.shape[0])]
    if all(t is not None for t in texts):
        # cram encodes each sentence as the pair (text, ""): <cls> text <sep> <sep>, truncated
        # to the row length; transformers drops an empty second text, so build that layout here
        tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote)
        S = ids.shape[1]
        for k, text in enumerate(texts):
            words = tok(text, add_special_tokens=False)["input_ids"][: S - 3]
            got = [tok.cls_token_id] + words + [tok.sep_token_id] * 2
            n = int(mask[k].sum())
            if got != ids[k, :n].tolist():
                print(f"FAIL: {name}: AutoTokenizer gives {got} for {text!r}, "
                      f"cram {ids[k, :n].tolist()}")
                failed = True
        if not failed:
            print(f"{name}: AutoTokenizer ({type(tok).__name__}) gives cram's ids for the "
                  f"{len(texts)} sentences")
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "--perturb":
        for folder in args[2:]:
            perturb(folder, int(args[1]))
        sys.exit(0)
    tol = 1e-4
    if "--tol" in args:
        i = args.index("--tol")
        tol = float(args[i + 1])
        del args[i : i + 2]
    if len(args) < 2 or len(args) % 2:
        sys.exit(__doc__)
    failed = 0
    for k in range(0, len(args), 2):
        failed |= check(args[k], args[k + 1], tol)
    sys.exit(failed)
