#!/usr/bin/env python3
"""Writes tests/fixtures/optim/sched_reference.txt: learning rates of every LR schedule at many
points, evaluated with the reference's formulas in plain Python (float semantics of CPython,
LambdaLR semantics: lr = base_lr * factor(step), factor of step 0 at construction; budget
schedules see fake step 0 at step 0, else int(elapsed_h / budget * steps)). The formulas are
restated from SPEC.md section 3.5 and the reference's behaviour; budget-dive* and
budget-polynomial follow cram's fixed versions (docs/optim.md). No torch needed.

Line format: name steps warmup cooldown budget_h base_lr step elapsed_s lr
(lr as a hex float so the C test can compare bits). Usage:
    python3 scripts/make_sched_reference.py > tests/fixtures/optim/sched_reference.txt
"""
import math
import random


def steps_from_cfg(x, T):
    return int(x * T) if 0 < x < 1 else int(x)


def warm(k, W):
    return float(k) / float(max(1, W))


def cos_half(k, W, T):
    if k < W:
        return warm(k, W)
    p = float(k - W) / float(max(1, T - W))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * p)))


def lin(k, W, T):
    if k < W:
        return warm(k, W)
    return max(0.0, float(T - k) / float(max(1, T - W)))


def poly(k, W, T, lr_init, lr_end):
    if k < W:
        return warm(k, W)
    if k > T:
        return lr_end / lr_init
    pct = 1 - (k - W) / (T - W)
    return ((lr_init - lr_end) * pct ** 1.0 + lr_end) / lr_init


def tri(k, T, base, fall):
    return min(base + k * (1 - base) / (1 - fall) / T, float(1 / fall - k / (T * fall)))


def inv_sqrt(k, W, C, T, step_version):
    d = W ** 0.5
    dec = d * (T - C) ** -0.5
    if k < W:
        return float(k * (1 / W)) if step_version else float(k / W)
    if k > T - C:
        if C == 0:
            return 0.0  # the reference divides by zero here (past the end only)
        return max(0.0, float(dec * (T - k) / C))
    return float(d * k ** -0.5)


def one_cycle(k, T):
    return float(k / (T / 2)) if k < T / 2 else float(2 - k / (T / 2))


def ramp(k, C, T):
    top = (T - C) / T
    if k > T - C:
        return 0.0 if C == 0 else max(0.0, float(top * (T - k) / C))
    return float(k / T)


def multi(k, T):
    c = int(T / 8)
    j = k % c
    return float(j / (c / 2)) if j < c / 2 else float(2 - j / (c / 2))


def inv_cos(k, C, T):
    ult = T - C
    top = max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * (1 - ult / float(max(1, T))))))
    p = 1 - k / float(max(1, T))
    if k > T - C:
        return 0.0 if C == 0 else max(0.0, float(top * (T - k) / C))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * p)))


def constant_budget(k, W, C, T):
    if k < W:
        return float(k / W)
    if k > T - C:
        return 0.0 if C == 0 else max(0.0, float((T - k) / C))
    return 1.0


def anneal(k, W, T):
    if k < W:
        return warm(k, W)
    p = float(k - W) / float(max(1, T - W))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((4.0 * p) % 1.0))))


def restarts(k, W, T):
    if k < W:
        return warm(k, W)
    p = float(k - W) / float(max(1, T - W))
    if p >= 1.0:
        return 0.0
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((1.0 * p) % 1.0))))


def dive(k, W, T, fall):
    if k < W:
        return warm(k, W)
    return max(0.0, min(1.0, float(1 / fall - k / (T * fall))))


# name -> factor(k, W, C, T, lr)
FACTORS = {
    "none": lambda k, W, C, T, lr: 1.0,
    "polynomial-decay": lambda k, W, C, T, lr: poly(k, W, T, lr, 1e-7),
    "polynomial": lambda k, W, C, T, lr: poly(k, W, T, lr, 1e-7),
    "cosine-decay": lambda k, W, C, T, lr: cos_half(k, W, T),
    "cosine": lambda k, W, C, T, lr: cos_half(k, W, T),
    "cosine_with_restarts": lambda k, W, C, T, lr: restarts(k, W, T),
    "linear": lambda k, W, C, T, lr: lin(k, W, T),
    "constant": lambda k, W, C, T, lr: 1.0,
    "constant_with_warmup": lambda k, W, C, T, lr: float(k) / float(max(1.0, W)) if k < W else 1.0,
    "inverse-sqrt": lambda k, W, C, T, lr: inv_sqrt(k, W, C, T, True),
    "one-cycle": lambda k, W, C, T, lr: one_cycle(k, T),
    "ramp": lambda k, W, C, T, lr: ramp(k, C, T),
    "triangle2": lambda k, W, C, T, lr: tri(k, T, 0.25, 0.25),
    "budget-triangle1": lambda k, W, C, T, lr: tri(k, T, 0.5, 0.25),
    "budget-triangle2": lambda k, W, C, T, lr: tri(k, T, 0.25, 0.25),
    "budget-cosine-decay": lambda k, W, C, T, lr: cos_half(k, W, T),
    "budget-cosine-annealing": lambda k, W, C, T, lr: anneal(k, W, T),
    "budget-linear": lambda k, W, C, T, lr: lin(k, W, T),
    "budget-constant": lambda k, W, C, T, lr: constant_budget(k, W, C, T),
    "budget-inverse-sqrt": lambda k, W, C, T, lr: inv_sqrt(k, W, C, T, False),
    "budget-one-cycle": lambda k, W, C, T, lr: one_cycle(k, T),
    "budget-multi-cycle": lambda k, W, C, T, lr: multi(k, T),
    "budget-ramp": lambda k, W, C, T, lr: ramp(k, C, T),
    "budget-inv-cosine": lambda k, W, C, T, lr: inv_cos(k, C, T),
    "budget-polynomial": lambda k, W, C, T, lr: poly(k, W, T, lr, 0.0),
    "budget-dive": lambda k, W, C, T, lr: dive(k, W, T, 0.5),
    "budget-dive-slow": lambda k, W, C, T, lr: dive(k, W, T, 0.75),
    "budget-dive-fast": lambda k, W, C, T, lr: dive(k, W, T, 0.25),
}

# (name, steps, warmup as configured, cooldown as configured, budget hours, base lr)
CASES = [
    ("budget-triangle2", 900_000, 0, 0, 24, 1e-3),
    ("budget-triangle2", 900_000, 0, 0, 0.25, 1e-3),
    ("budget-triangle1", 900_000, 0, 0, 24, 1e-3),
    ("budget-cosine-decay", 900_000, 30_000, 0, 24, 5e-4),
    ("budget-cosine-annealing", 900_000, 0.06, 0, 8, 5e-4),
    ("budget-linear", 900_000, 0.06, 0, 24, 2e-3),
    ("budget-constant", 900_000, 1000, 0.1, 24, 1e-3),
    ("budget-constant", 900_000, 1000, 0, 24, 1e-3),
    ("budget-inverse-sqrt", 900_000, 10_000, 50_000, 24, 1e-3),
    ("budget-one-cycle", 600_000, 0, 0, 24, 1e-3),
    ("budget-multi-cycle", 900_000, 0, 0, 24, 1e-3),
    ("budget-ramp", 900_000, 0, 0.2, 24, 1e-3),
    ("budget-inv-cosine", 900_000, 0, 0.1, 24, 1e-3),
    ("budget-polynomial", 900_000, 0.06, 0, 24, 1e-3),
    ("budget-dive", 900_000, 1000, 0, 24, 1e-3),
    ("budget-dive-slow", 900_000, 0, 0, 24, 1e-3),
    ("budget-dive-fast", 900_000, 0.05, 0, 1.5, 1e-3),
    ("polynomial-decay", 8_000_000, 80_000, 0, 24, 1e-4),
    ("polynomial", 1000, 100, 0, 24, 5e-4),
    ("cosine-decay", 2670, 0.1, 0, 24, 4e-5),
    ("cosine", 2670, 267, 0, 24, 4e-5),
    ("cosine_with_restarts", 1000, 100, 0, 24, 4e-5),
    ("linear", 1000, 0.06, 0, 24, 2e-5),
    ("constant", 1000, 100, 0, 24, 2e-5),
    ("constant_with_warmup", 1000, 100, 0, 24, 2e-5),
    ("none", 1000, 0, 0, 24, 1e-3),
    ("inverse-sqrt", 1000, 100, 200, 24, 1e-3),
    ("one-cycle", 1000, 0, 0, 24, 1e-3),
    ("ramp", 1000, 0, 100, 24, 1e-3),
    ("triangle2", 1000, 0, 0, 24, 1e-3),
]

FRACS = [0, 1e-9, 1e-6, 1e-3, 0.01, 0.0333, 0.06, 0.1, 0.125, 0.2, 0.25, 0.3, 0.5, 0.59, 0.6,
         0.7, 0.74999, 0.75, 0.75001, 0.8, 0.9, 0.95, 0.99, 0.999999, 1.0, 1.000001, 1.1]


def main():
    rng = random.Random(1234)
    for name, T, wcfg, ccfg, budget, lr in CASES:
        W, C = steps_from_cfg(wcfg, T), steps_from_cfg(ccfg, T)
        f = FACTORS[name]
        if name.startswith("budget-"):
            fr = FRACS + [rng.random() * 1.05 for _ in range(10)]
            for x in fr:
                elapsed = x * budget * 3600.0
                for step in (0, 12345):
                    k = 0 if step == 0 else int((elapsed / 60 / 60) / budget * T)
                    print(name, T, repr(wcfg), repr(ccfg), repr(budget), repr(lr), step,
                          repr(elapsed), (lr * f(k, W, C, T, lr)).hex())
        else:
            ks = sorted(set([0, 1, 2, W - 1, W, W + 1, C, T - C - 1, T - C, T - C + 1, T // 2,
                             T // 2 + 1, T - 1, T, T + 1, T + 100] +
                            [rng.randrange(0, T + 2) for _ in range(30)]))
            for k in ks:
                if k < 0:
                    continue
                print(name, T, repr(wcfg), repr(ccfg), repr(budget), repr(lr), k, "0.0",
                      (lr * f(k, W, C, T, lr)).hex())


if __name__ == "__main__":
    main()
