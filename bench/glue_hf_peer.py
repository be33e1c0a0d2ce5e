#!/usr/bin/env python3
"""The PyTorch + transformers peer of `cram eval`: fine-tune a local Hugging Face BERT folder on
GLUE tasks with the GLUE_sane hyperparameters (AdamW lr 4e-5, betas 0.9/0.98, eps 1e-6, wd 0,
cosine decay with 10% warmup stepped per microbatch, batch 16, dropout on, max length 128,
dynamic padding to a multiple of 8, no token types, sequential loader with drop_last), validate
after every epoch (batches of 16, dropout off) and print the last epoch's metrics.
bench/glue_vs_hf.sh runs it on the CPU beside cram, scripts/gpu_check.sh eval on the GPU.

usage: glue_hf_peer.py MODEL_DIR GLUE_DIR TASKS(comma) EPOCHS SEED [THREADS]
                       [--device cpu|cuda] [--dtype fp32|bf16] [--dryrun]

--device cuda puts the model and every batch on the GPU. --dtype bf16 runs the forward and the
loss under torch.autocast(bfloat16), weights, gradients and AdamW state staying fp32 (cram's bf16
keeps fp32 masters too); fp32 keeps torch's default matmul precision (no TF32, as cram's fp32).
The weights load as fp32 whatever the folder stores: transformers 5 would otherwise keep an F16
folder in F16. --dryrun mirrors `cram eval dryrun=True`: one epoch of one training step and
three validation batches. Besides the `[hf]` lines, one machine-readable line per task:

    PEER task=rte seconds=S train_seconds=T steps=N accuracy=...

S runs from the first training step to the end of the last validation (the span `cram eval`
reports per task in its closing table), T is the epochs' training alone; both read the clock
after a device synchronisation. Like cram, the loss is read back at every step. A first line
`PEER info ...` names the versions, the device and the precision. Exit status 77 (and a
`PEER skip` line) when torch or transformers is missing or --device cuda finds no GPU.
Needs torch and transformers only (the metrics are computed here, as sklearn and scipy define them).
"""
import argparse
import math
import sys
import time

try:
    import torch
    import transformers
    from transformers import AutoTokenizer, BertForSequenceClassification
except ImportError as e:  # the summary of gpu_check.sh reports this line
    print(f"PEER skip: missing Python package ({e})", flush=True)
    sys.exit(77)

DTYPE_ARG = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"

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


def pearson(x, y):
    n = len(x)
    if n < 2:
        return math.nan
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan


def ranks(x):
    """1-based ranks, ties sharing their average rank (scipy's rankdata)."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def metric(name, pred, ref):
    """sklearn's accuracy, binary F1 (0 without a true positive) and MCC (0 when undefined),
    scipy's Pearson and Spearman (nan for a constant input)."""
    n = len(ref)
    if name == "accuracy":
        return sum(p == r for p, r in zip(pred, ref)) / n if n else math.nan
    if name == "f1":
        tp = sum(p == 1 and r == 1 for p, r in zip(pred, ref))
        fp = sum(p == 1 and r != 1 for p, r in zip(pred, ref))
        fn = sum(p != 1 and r == 1 for p, r in zip(pred, ref))
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    if name == "matthews_correlation":
        classes = sorted(set(pred) | set(ref))
        correct = sum(p == r for p, r in zip(pred, ref))
        t = [sum(r == c for r in ref) for c in classes]
        p = [sum(q == c for q in pred) for c in classes]
        cov_tp = correct * n - sum(a * b for a, b in zip(t, p))
        cov_pp = n * n - sum(b * b for b in p)
        cov_tt = n * n - sum(a * a for a in t)
        return cov_tp / math.sqrt(cov_tt * cov_pp) if cov_tt * cov_pp else 0.0
    if name == "pearson":
        return pearson(pred, ref)
    return pearson(ranks(pred), ranks(ref))


def batches(enc, idx, pad):
    S = max(len(enc[i]) for i in idx)
    S = (S + 7) // 8 * 8
    ids = torch.full((len(idx), S), pad, dtype=torch.long)
    mask = torch.zeros((len(idx), S), dtype=torch.long)
    for j, i in enumerate(idx):
        ids[j, : len(enc[i])] = torch.tensor(enc[i])
        mask[j, : len(enc[i])] = 1
    return ids, mask


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("glue_dir")
    ap.add_argument("tasks", help="comma-separated: " + ",".join(TASKS))
    ap.add_argument("epochs", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("threads", type=int, nargs="?", default=2, help="CPU threads (default 2)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: torch.autocast(bfloat16) around forward and loss")
    ap.add_argument("--dryrun", action="store_true",
                    help="one epoch of one training step, three validation batches")
    a = ap.parse_args()
    if a.epochs < 1:
        ap.error("EPOCHS must be 1 or more")
    for t in a.tasks.split(","):
        if t not in TASKS:
            ap.error(f"unknown task {t!r} (known: {', '.join(TASKS)})")
    return a


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        print("PEER skip: torch sees no GPU (--device cuda)", flush=True)
        return 77
    dev = torch.device(a.device)
    bf16 = a.dtype == "bf16"

    def sync():  # before every clock read: CUDA work is asynchronous
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def autocast():
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16)

    transformers.utils.logging.disable_progress_bar()  # the weight-loading bar, in a log file
    gpu = torch.cuda.get_device_name(dev).replace(" ", "_") if dev.type == "cuda" else "-"
    print(f"PEER info torch={torch.__version__} transformers={transformers.__version__} "
          f"device={a.device} dtype={a.dtype} gpu={gpu} "
          f"fp32_matmul={torch.get_float32_matmul_precision()} dryrun={int(a.dryrun)}", flush=True)
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    for task in a.tasks.split(","):
        spec = TASKS[task]
        files = [f"{a.glue_dir}/{spec[0]}/train.tsv", f"{a.glue_dir}/{spec[0]}/dev.tsv"]
        data = []
        for f in files:
            ta, tb, y = read(f, spec)
            enc = tok(ta, tb, truncation="longest_first", max_length=128)["input_ids"]
            data.append((enc, y))
        nl = 1 if spec[4] is None else len(spec[4])
        torch.manual_seed(a.seed)
        # fp32 named: transformers 5 loads in the checkpoint's dtype by default ("auto"), which
        # would train the F16 folder in F16; transformers 4 spells the argument torch_dtype
        model = BertForSequenceClassification.from_pretrained(a.model_dir, num_labels=nl,
                                                              **{DTYPE_ARG: torch.float32})
        model = model.to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=4e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0)
        B = 16
        nb = len(data[0][0]) // B
        epochs = 1 if a.dryrun else a.epochs
        steps = nb * epochs
        warm = int(0.1 * steps)

        def lam(s):  # HF get_cosine_schedule_with_warmup, half a cycle
            if s < warm:
                return s / max(1, warm)
            p = (s - warm) / max(1, steps - warm)
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * p)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
        print(f"[hf] Finetuning task {task} with {nl} classes for {steps} steps.", flush=True)
        run_nb = 1 if a.dryrun else nb
        n_dev = min(len(data[1][0]), 3 * B) if a.dryrun else len(data[1][0])
        sync()
        t_task = time.perf_counter()
        train_s = 0.0
        for ep in range(epochs):
            model.train()
            t0 = time.perf_counter()
            tot = 0.0
            for k in range(run_nb):
                idx = list(range(k * B, (k + 1) * B))
                ids, mask = batches(data[0][0], idx, tok.pad_token_id)
                y = torch.tensor([data[0][1][i] for i in idx], dtype=torch.float if nl == 1 else torch.long)
                ids, mask, y = ids.to(dev), mask.to(dev), y.to(dev)
                with autocast():
                    out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids), labels=y)
                out.loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad()
                tot += out.loss.item()
            sync()
            train_s += time.perf_counter() - t0
            model.eval()
            preds = []
            with torch.no_grad(), autocast():
                for k in range(0, n_dev, B):
                    idx = list(range(k, min(n_dev, k + B)))
                    ids, mask = batches(data[1][0], idx, tok.pad_token_id)
                    ids, mask = ids.to(dev), mask.to(dev)
                    lg = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
                    preds += lg[:, 0].float().tolist() if nl == 1 else lg.argmax(-1).tolist()
            ref = data[1][1][:n_dev]
            sync()
            msg = " ".join(f"{m}: {metric(m, preds, ref):.4f}" for m in spec[5])
            print(f"[hf] {task} epoch {ep}: train loss {out.loss.item():.4f} avg {tot / run_nb:.4f}, "
                  f"{(time.perf_counter() - t0) / 60:.2f} min; Validation metric is {msg}", flush=True)
        secs = time.perf_counter() - t_task
        scores = {m: metric(m, preds, ref) for m in spec[5]}
        print(f"[hf] RESULT {task} " + " ".join(f"{m}={v:.4f}" for m, v in scores.items()), flush=True)
        print(f"PEER task={task} seconds={secs:.3f} train_seconds={train_s:.3f} steps={run_nb * epochs} "
              + " ".join(f"{m}={v:.6f}" for m, v in scores.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
