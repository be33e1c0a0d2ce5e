#!/usr/bin/env python3
"""The PyTorch peer of bench/cpu_train.c: the same crammed-bert (scripts/make_model_reference.py's
model class, fp32, eager), the same shapes and thread count, random MLM batches, one training step
= forward + backward + clip_grad_norm_(0.5) + AdamW. Prints a RESULT line with tokens/s."""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
from make_model_reference import CrammedBert, mlm_batch  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--hidden", type=int, default=256)
ap.add_argument("--intermed", type=int, default=1024)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--microbatch", type=int, default=16)
ap.add_argument("--steps", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--vocab", type=int, default=32768)
a = ap.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(0)
model = CrammedBert(V=a.vocab, H=a.hidden, L=a.layers, NH=a.heads, I=a.intermed, max_pos=128)
with torch.no_grad():  # the crammed init: N(0, 0.02) matrices, LN 1/0
    for p in model.parameters():
        if p.dim() == 2:
            p.normal_(0.0, 0.02)
params = list(model.parameters())
opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.98), eps=1e-12, weight_decay=0.01)
S = 128
t0 = None
for step in range(a.steps + 1):
    if step == 1:
        t0 = time.time()
    ids, labels = mlm_batch(a.microbatch, S, a.vocab)
    opt.zero_grad()
    _, loss = model(ids, labels)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 0.5)
    opt.step()
tps = a.steps * a.microbatch * S / (time.time() - t0)
print(f"# pytorch {torch.__version__}, {torch.get_num_threads()} threads, loss {loss.item():.3f}")
print(f"RESULT cpu_train_peer tokens_per_s={tps:.1f}")
