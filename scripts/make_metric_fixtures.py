#!/usr/bin/env python3
"""Write tests/fixtures/eval/metrics.txt: random GLUE metric cases scored by scikit-learn and scipy
(the libraries HF `evaluate` calls), for tests/test_eval.c.

Run: python3 scripts/make_metric_fixtures.py   (needs numpy, scipy, scikit-learn)
Format, one case per block:
  case <kind> <n> <nclasses>        kind: cls (class ids) or reg (floats)
  pred <v0> <v1> ...
  ref <v0> <v1> ...
  want <accuracy> <f1> <mcc>        (cls)   or   want <pearson> <spearman>   (reg)
"""
import os
import sys

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

rng = np.random.default_rng(20260127)
out = []


def cls_case(pred, ref, ncls):
    acc = accuracy_score(ref, pred)
    f1 = f1_score(ref, pred, pos_label=1, average="binary", zero_division=0) if ncls == 2 else float("nan")
    mcc = matthews_corrcoef(ref, pred)
    out.append(f"case cls {len(pred)} {ncls}")
    out.append("pred " + " ".join(str(int(v)) for v in pred))
    out.append("ref " + " ".join(str(int(v)) for v in ref))
    out.append(f"want {acc!r} {f1!r} {mcc!r}")


def reg_case(pred, ref):
    p = pearsonr(pred, ref)[0]
    s = spearmanr(pred, ref)[0]
    out.append(f"case reg {len(pred)} 1")
    out.append("pred " + " ".join(repr(float(v)) for v in pred))
    out.append("ref " + " ".join(repr(float(v)) for v in ref))
    out.append(f"want {float(p)!r} {float(s)!r}")


for k in range(40):
    n = int(rng.integers(2, 120))
    ncls = 2 if k < 30 else 3
    ref = rng.integers(0, ncls, n)
    noise = rng.random()
    pred = np.where(rng.random(n) < noise, rng.integers(0, ncls, n), ref)
    cls_case(pred, ref, ncls)
# edge cases: all one class predicted, no positives at all, perfect, inverted
cls_case(np.zeros(10, int), np.array([0, 1] * 5), 2)
cls_case(np.zeros(6, int), np.zeros(6, int), 2)
cls_case(np.array([1, 0, 1, 1]), np.array([1, 0, 1, 1]), 2)
cls_case(np.array([0, 1]), np.array([1, 0]), 2)
for k in range(30):
    n = int(rng.integers(3, 150))
    ref = rng.random(n) * 5
    pred = ref + rng.normal(0, rng.random() * 3, n)
    if k % 3 == 0:  # heavy ties, as rounded STS-B scores have
        ref = np.round(ref * 2) / 2
        pred = np.round(pred)
    reg_case(pred.astype(np.float32).astype(float), ref.astype(np.float32).astype(float))

path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "eval", "metrics.txt")
with open(path, "w") as f:
    f.write("# written by scripts/make_metric_fixtures.py (scikit-learn, scipy); do not edit\n")
    f.write("\n".join(out) + "\n")
print(f"wrote {path}: {sum(1 for l in out if l.startswith('case'))} cases", file=sys.stderr)
