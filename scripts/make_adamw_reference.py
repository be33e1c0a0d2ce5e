#!/usr/bin/env python3
"""Writes tests/fixtures/optim/adamw_reference.txt: a few steps of torch.optim.AdamW and
torch.optim.Adam (coupled L2, as bert-original) on three small parameter tensors in two
weight-decay groups, with torch.nn.utils.clip_grad_norm_ before each step where the case clips.
Every float is written as a hex float so the C test reads exact values.

Needs PyTorch (Debian's python3-torch is enough):
    /usr/bin/python3 scripts/make_adamw_reference.py > tests/fixtures/optim/adamw_reference.txt

Format, one record per line:
    case NAME coupled BETA1 BETA2 EPS WD CLIP NSTEPS N      (CLIP 0 = no clipping)
    span OFFSET COUNT DECAY                                  (flat-buffer layout, in order)
    init N floats                                            (initial parameters)
    step T LR                                                (then the lines below)
    grad N floats      norm NORM (when clipping; the norm before clipping)
    param N floats     m N floats     v N floats             (state after the step)
"""
import torch

SHAPES = [(7, 5), (11,), (3, 3)]
DECAY = [True, False, True]
LRS = [1e-3, 8e-4, 5e-4, 1e-3, 2e-4, 3e-4]


def hexs(t):
    return " ".join(float(x).hex() for x in t.detach().reshape(-1).tolist())


def run(name, opt_cls, coupled, beta1, beta2, eps, wd, clip, grad_scales):
    gen = torch.Generator().manual_seed(len(name) * 7919)
    params = [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float32) * 0.5)
              for s in SHAPES]
    groups = [{"params": [p for p, d in zip(params, DECAY) if d], "weight_decay": wd},
              {"params": [p for p, d in zip(params, DECAY) if not d], "weight_decay": 0.0}]
    opt = opt_cls(groups, lr=LRS[0], betas=(beta1, beta2), eps=eps, weight_decay=wd)
    n = sum(p.numel() for p in params)
    print("case", name, int(coupled), beta1.hex(), beta2.hex(), eps.hex(), wd.hex(),
          float(clip).hex(), len(grad_scales), n)
    off = 0
    for p, d in zip(params, DECAY):
        print("span", off, p.numel(), int(d))
        off += p.numel()
    print("init", hexs(torch.cat([p.reshape(-1) for p in params])))
    for t, gs in enumerate(grad_scales, start=1):
        lr = LRS[(t - 1) % len(LRS)]
        for g in opt.param_groups:
            g["lr"] = lr
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float32) * gs
        print("step", t, float(lr).hex())
        print("grad", hexs(torch.cat([p.grad.reshape(-1) for p in params])))
        if clip:
            norm = torch.nn.utils.clip_grad_norm_(params, clip, norm_type=2.0)
            print("norm", float(norm).hex())
        opt.step()
        st = [opt.state[p] for p in params]
        print("param", hexs(torch.cat([p.reshape(-1) for p in params])))
        print("m", hexs(torch.cat([s["exp_avg"].reshape(-1) for s in st])))
        print("v", hexs(torch.cat([s["exp_avg_sq"].reshape(-1) for s in st])))


def main():
    torch.set_num_threads(1)
    print("# torch", torch.__version__)
    # bert-o4: AdamW, clipping at 0.5 (the first steps clip, the small-gradient step does not)
    run("adamw_o4", torch.optim.AdamW, False, 0.9, 0.98, 1e-12, 0.01, 0.5,
        [1.0, 1.0, 0.01, 2.0, 0.001, 1.0])
    # GLUE: AdamW without clipping, larger decay
    run("adamw_glue", torch.optim.AdamW, False, 0.9, 0.98, 1e-6, 0.1, 0.0,
        [1.0, 0.5, 0.1, 1.0, 3.0])
    # bert-original: Adam with L2 added to the gradient
    run("adam_classic", torch.optim.Adam, True, 0.9, 0.999, 1e-8, 0.01, 0.0,
        [1.0, 0.3, 1.0, 0.01, 1.0])


if __name__ == "__main__":
    main()
