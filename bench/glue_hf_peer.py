#!/usr/bin/env python3
"""The PyTorch + transformers peer of `cram eval` for bench/glue_vs_hf.sh: fine-tune a local
Hugging Face BERT folder on GLUE tasks with the GLUE_sane hyperparameters (AdamW lr 4e-5, betas
0.9/0.98, eps 1e-6, wd 0, cosine decay with 10% warmup stepped per microbatch, batch 16, dropout
on, max length 128, dynamic padding to a multiple of 8, no token types, sequential loader with
drop_last), validate after every epoch and print the last epoch's metrics.

usage: glue_hf_peer.py MODEL_DIR GLUE_DIR TASKS(comma) EPOCHS SEED [THREADS]
"""
import math
import sys
import time

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from transformers import AutoTokenizer, BertForSequenceClassification

# task: folder, (text cols by header name or index), label col, labels (None = regression), metrics
TASKS = {
    "cola": ("CoLA", None, (3, None), 1, ["0", "1"], ["matthews_correlation"]),
    "sst2": ("SST-2", True, ("sentence", None), "label", ["0", "1"], ["accuracy"]),
    "mrpc": ("MRPC", True, ("#1 String", "#2 String"), "Quality", ["0", "1"], ["f1", "accuracy"]),
    "stsb": ("STS-B", True, ("sentence1", "sentence2"), "score", None, ["pearson", "spearmanr"]),
    "qnli": ("QNLI", True, ("question", "sentence"), "label", ["entailment", "not_entailment"], ["accuracy"]),
    "rte": ("RTE", True, ("sentence1", "sentence2"), "label", ["entailment", "not_entailment"], ["accuracy"]),
    "wnli": ("WNLI", True, ("sentence1", "sentence2"), "label", ["0", "1"], ["accuracy"]),
}


def read(path, spec):
    _, header, (ca, cb), cl, labels, _ = spec
    rows = open(path, encoding="utf-8-sig").read().split("\n")
    if header:
        h = rows[0].split("\t")
        ca, cl = h.index(ca), h.index(cl)
        cb = h.index(cb) if cb else None
        rows = rows[1:]
    a, b, y = [], [], []
    for r in rows:
        if not r:
            continue
        f = r.split("\t")
        a.append(f[ca])
        b.append(f[cb] if cb is not None else "")
        y.append(float(f[cl]) if labels is None else labels.index(f[cl]))
    return a, b, y


def metric(name, pred, ref):
    if name == "accuracy":
        return accuracy_score(ref, pred)
    if name == "f1":
        return f1_score(ref, pred)
    if name == "matthews_correlation":
        return matthews_corrcoef(ref, pred)
    if name == "pearson":
        return float(pearsonr(pred, ref)[0])
    return float(spearmanr(pred, ref)[0])


def batches(enc, idx, pad):
    S = max(len(enc[i]) for i in idx)
    S = (S + 7) // 8 * 8
    ids = torch.full((len(idx), S), pad, dtype=torch.long)
    mask = torch.zeros((len(idx), S), dtype=torch.long)
    for j, i in enumerate(idx):
        ids[j, : len(enc[i])] = torch.tensor(enc[i])
        mask[j, : len(enc[i])] = 1
    return ids, mask


def main():
    model_dir, glue, tasks, epochs, seed = sys.argv[1:6]
    torch.set_num_threads(int(sys.argv[6]) if len(sys.argv) > 6 else 2)
    epochs, seed = int(epochs), int(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    for task in tasks.split(","):
        spec = TASKS[task]
        files = [f"{glue}/{spec[0]}/train.tsv", f"{glue}/{spec[0]}/dev.tsv"]
        data = []
        for f in files:
            a, b, y = read(f, spec)
            enc = tok(a, b, truncation="longest_first", max_length=128)["input_ids"]
            data.append((enc, y))
        nl = 1 if spec[4] is None else len(spec[4])
        torch.manual_seed(seed)
        model = BertForSequenceClassification.from_pretrained(model_dir, num_labels=nl)
        opt = torch.optim.AdamW(model.parameters(), lr=4e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0)
        B = 16
        nb = len(data[0][0]) // B
        steps = nb * epochs
        warm = int(0.1 * steps)

        def lam(s):  # HF get_cosine_schedule_with_warmup, half a cycle
            if s < warm:
                return s / max(1, warm)
            p = (s - warm) / max(1, steps - warm)
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * p)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
        print(f"[hf] Finetuning task {task} with {nl} classes for {steps} steps.", flush=True)
        for ep in range(epochs):
            model.train()
            t0 = time.time()
            tot = 0.0
            for k in range(nb):
                idx = list(range(k * B, (k + 1) * B))
                ids, mask = batches(data[0][0], idx, tok.pad_token_id)
                y = torch.tensor([data[0][1][i] for i in idx], dtype=torch.float if nl == 1 else torch.long)
                out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids), labels=y)
                out.loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad()
                tot += out.loss.item()
            model.eval()
            preds = []
            with torch.no_grad():
                n = len(data[1][0])
                for k in range(0, n, B):
                    idx = list(range(k, min(n, k + B)))
                    ids, mask = batches(data[1][0], idx, tok.pad_token_id)
                    lg = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
                    preds += lg[:, 0].tolist() if nl == 1 else lg.argmax(-1).tolist()
            ref = data[1][1]
            msg = " ".join(f"{m}: {metric(m, preds, ref):.4f}" for m in spec[5])
            print(f"[hf] {task} epoch {ep}: train loss {out.loss.item():.4f} avg {tot / nb:.4f}, {(time.time() - t0) / 60:.2f} min; "
                  f"Validation metric is {msg}", flush=True)
        print(f"[hf] RESULT {task} " + " ".join(f"{m}={metric(m, preds, ref):.4f}" for m in spec[5]), flush=True)


if __name__ == "__main__":
    main()
