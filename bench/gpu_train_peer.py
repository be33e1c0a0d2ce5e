#!/usr/bin/env python3
"""The PyTorch peer of bench/gpu_train.c: the same crammed-bert training microstep (forward,
backward, clip_grad_norm_ to 0.5 and AdamW every --accum microsteps, dropout off: bert-o4) in
the configurations a PyTorch user would pick, each timed after its warm-up (and compilation):

  eager-bf16      bf16 autocast, torch.optim.AdamW(fused=True)
  compiled-bf16   the same under torch.compile with the reference's inductor settings
  reference-fp16  the reference's setting: torch.compile as above, fp16 autocast with
                  torch.amp.GradScaler, AdamW as the reference builds it (fused unset)
  eager-fp16      fp16 autocast with GradScaler, fused AdamW

The reference's inductor settings (configs/impl/_default.yaml, _inductor_vars) are max-autotune
GEMMs, no pointwise autotuning, CUDA graphs, permute fusion and shape padding; --compile-mode
max-autotune uses torch.compile(mode="max-autotune") instead. The model is
scripts/make_model_reference.py's CrammedBert (the trainable one the CPU peer and the model
tests use; scripts/crammed_bert_torch.py is an inference module built from a checkpoint). Batches:
uniform random ids masked like cram's collator (25% of each row, 80/10/10), made on the device
beforehand. Prints tokens/s, MFU, torch.cuda.max_memory_allocated per configuration, then per
microbatch `RESULT gpu_train_peer <best tokens/s> config=<name> ...`.
--time-limit (default $CRAM_PEER_TIME_LIMIT, else 170 s) bounds the whole run: configurations
that no longer fit are skipped and say so, and one still running at the limit is stopped.
Without CUDA, --device cpu runs a small smoke test of the same code."""
import time

_T0 = time.time()  # the time limit counts from here, importing torch included

import argparse  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402

_threads = torch.get_num_threads()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from make_model_reference import CrammedBert  # noqa: E402

torch.set_num_threads(_threads)  # the module sets one thread for its fixtures

MASK_ID = 6  # <mask> in cram's tokenizers, as bench/gpu_train.c uses
# configs/train/bert-o4.yaml and train/optim/adam.yaml
LR, BETAS, EPS, WEIGHT_DECAY, CLIP = 1e-3, (0.9, 0.98), 1e-12, 0.01, 0.5
NO_DECAY_KEYS = ("bias", "LayerNorm.bias", "LayerNorm.weight", "norm")
# configs/impl/_default.yaml: the inductor options the reference compiles with
REFERENCE_INDUCTOR = {
    "max_autotune_gemm": True,
    "max_autotune_pointwise": False,
    "triton.cudagraphs": True,
    "triton.cudagraph_trees": False,
    "permute_fusion": True,
    "shape_padding": True,
}
CONFIGS = {
    "eager-bf16": dict(compiled=False, dtype=torch.bfloat16, scaler=False, fused=True),
    "compiled-bf16": dict(compiled=True, dtype=torch.bfloat16, scaler=False, fused=True),
    "reference-fp16": dict(compiled=True, dtype=torch.float16, scaler=True, fused=None),
    "eager-fp16": dict(compiled=False, dtype=torch.float16, scaler=True, fused=True),
}


class TimeLimit(BaseException):
    """Raised by the alarm; a BaseException, so that no `except Exception` inside torch's
    compiler swallows it."""


def on_alarm(signum, frame):
    raise TimeLimit()


def flops_per_token(L, H, I, V, S, sparse=0.25):
    """train_flops_per_token of src/train/train_report.c for crammed-bert (GLU FFN, no head
    transform): 6 N_eff + 12 L S H."""
    n_eff = L * (4.0 * H * H + 1.5 * H * I) + sparse * V * H
    return 6.0 * n_eff + 12.0 * L * S * H


class LossOnly(torch.nn.Module):
    """The training graph returns the loss alone, so the logits are not kept as an output."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, ids, labels):
        return self.model(ids, labels)[1]


def make_batches(n, B, S, V, device, seed):
    """Random rows masked as cram's collator does: round(0.25 S) positions per row, of which
    round(0.8 m) become <mask>, round(0.9 m) - round(0.8 m) a random id, the rest kept."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    m = round(0.25 * S)
    n_mask = round(0.8 * m)
    n_rand = round(0.9 * m) - n_mask
    out = []
    for _ in range(n):
        ids = torch.randint(7, V, (B, S), generator=g, device=device)
        pos = torch.rand(B, S, generator=g, device=device).argsort(dim=1)[:, :m]
        labels = torch.full_like(ids, -100)
        labels.scatter_(1, pos, ids.gather(1, pos))
        ids.scatter_(1, pos[:, :n_mask], MASK_ID)
        rand = torch.randint(0, V, (B, n_rand), generator=g, device=device)
        ids.scatter_(1, pos[:, n_mask : n_mask + n_rand], rand)
        out.append((ids, labels))
    return out


def build(a, device):
    torch.manual_seed(a.seed)
    model = CrammedBert(V=a.vocab, H=a.hidden, L=a.layers, NH=a.heads, I=a.intermed, max_pos=a.seq)
    with torch.no_grad():  # the crammed init: N(0, 0.02) matrices, LayerNorm 1/0
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
    model.to(device)
    decay, no_decay = [], []
    named = model.names()  # the reference's parameter names, which the decay keys match
    assert len(named) == len(list(model.parameters())), "a parameter without a reference name"
    for name, p in named.items():
        (no_decay if any(k in name for k in NO_DECAY_KEYS) else decay).append(p)
    return model, [{"params": decay, "weight_decay": WEIGHT_DECAY},
                   {"params": no_decay, "weight_decay": 0.0}]


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def run_config(cfg, mode, a, B, device, batches):
    """Returns a dict of results; raises TimeLimit when the alarm rings. mode: "reference" (the
    reference's inductor options) or a torch.compile mode, for compiled configurations."""
    model, groups = build(a, device)
    params = [p for g in groups for p in g["params"]]
    kw = {} if cfg["fused"] is None else {"fused": cfg["fused"]}
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, **kw)
    fwd = LossOnly(model)
    if cfg["compiled"]:
        if mode == "reference":
            fwd = torch.compile(fwd, options=dict(REFERENCE_INDUCTOR))
        else:
            fwd = torch.compile(fwd, mode=mode)
    scaler = torch.amp.GradScaler(device) if cfg["scaler"] else None
    dtype = cfg["dtype"]
    k = [0]

    def microstep(ids, labels):
        with torch.autocast(device, dtype=dtype):
            loss = fwd(ids, labels)
        scaled = loss / a.accum
        (scaler.scale(scaled) if scaler else scaled).backward()
        k[0] += 1
        if k[0] % a.accum == 0:
            if scaler:
                scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, CLIP)
            if scaler:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            opt.zero_grad(set_to_none=True)
        return loss

    t0 = time.time()
    for s in range(a.warmup):
        loss = microstep(*batches[s % len(batches)])
    sync(device)
    warm_s = time.time() - t0
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    for s in range(a.steps):
        loss = microstep(*batches[s % len(batches)])
    sync(device)
    dt = time.time() - t0
    res = dict(tok_s=a.steps * B * a.seq / dt, step_ms=1e3 * dt / a.steps, warm_s=warm_s,
               loss=float(loss.item()),
               peak_gib=torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None)
    return res


def cleanup(device):
    torch._dynamo.reset()
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--microbatch", default="128", help="comma-separated sizes (default 128)")
    ap.add_argument("--steps", type=int, default=20, help="timed microsteps per configuration")
    ap.add_argument("--warmup", type=int, default=3, help="untimed microsteps (and compilation)")
    ap.add_argument("--accum", type=int, default=1, help="optimizer update every A microsteps")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--intermed", type=int, default=3072)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help="which configurations, in this order (default: %(default)s)")
    ap.add_argument("--compile-mode", default="reference",
                    help="reference (the reference's inductor options) or a torch.compile mode")
    env_limit = os.environ.get("CRAM_PEER_TIME_LIMIT")
    ap.add_argument("--time-limit", type=float, default=float(env_limit) if env_limit else 170.0,
                    help="seconds for the whole run (default $CRAM_PEER_TIME_LIMIT, else 170)")
    ap.add_argument("--compile-reserve", type=float, default=60.0,
                    help="seconds a compiled configuration needs to be started (default 60)")
    ap.add_argument("--verbose", action="store_true", help="keep inductor's autotuning tables")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # lines reach a log even if the run is killed
    t_start = _T0
    mbs = [int(x) for x in a.microbatch.split(",") if x]
    names = [x for x in a.configs.split(",") if x]
    for n in names:
        if n not in CONFIGS:
            ap.error(f"unknown configuration {n}; known: {', '.join(CONFIGS)}")
    device = a.device
    if device == "cuda" and not torch.cuda.is_available():
        print("skipped: torch sees no GPU (--device cpu runs a small smoke test)")
        return 77
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # impl.tf32_allowed
        torch.backends.cudnn.allow_tf32 = True
        card = torch.cuda.get_device_name(0)
    else:
        card = f"CPU, {torch.get_num_threads()} threads"
    peak = float(os.environ.get("CRAM_PEAK_TFLOPS", "989" if device == "cuda" else "0"))
    fpt = flops_per_token(a.layers, a.hidden, a.intermed, a.vocab, a.seq)
    print(f"# gpu_train_peer: torch {torch.__version__} on {card}; crammed-bert {a.layers} layers, "
          f"hidden {a.hidden}, {a.heads} heads, FFN {a.intermed}, vocabulary {a.vocab}, "
          f"sequence {a.seq}, 25% of rows decoded")
    print(f"# microstep: forward + backward (dropout off), clip_grad_norm_ {CLIP} and AdamW "
          f"lr {LR} "
          f"every {a.accum} microstep(s); {a.warmup} warm-up + {a.steps} timed microsteps; "
          f"time limit {a.time_limit:.0f} s")
    if peak > 0:
        print(f"# MFU: {fpt / 1e6:.1f} MFLOP per token against {peak:.0f} TFLOP/s "
              f"(CRAM_PEAK_TFLOPS overrides)")
    else:
        print(f"# MFU: n/a on the CPU ({fpt / 1e6:.1f} MFLOP per token)")
    sys.stdout.flush()
    if not a.verbose:
        try:  # inductor prints a table per autotuned GEMM: dozens of them
            import torch._inductor.select_algorithm as select_algorithm

            select_algorithm.PRINT_AUTOTUNE = False
            import torch._inductor.config as inductor_config

            if hasattr(inductor_config, "max_autotune_report_choices_stats"):
                inductor_config.max_autotune_report_choices_stats = False
        except (ImportError, AttributeError):
            pass
    signal.signal(signal.SIGALRM, on_alarm)

    def mfu_of(r):
        return f"{100 * r['tok_s'] * fpt / (peak * 1e12):.1f}%" if peak > 0 else "n/a"

    def mem_of(r, unit=""):
        return f"{r['peak_gib']:.2f}{unit}" if r["peak_gib"] is not None else "n/a"

    results = {}  # (mb, name) -> dict, or a string saying why there is none
    for B in mbs:
        batches = make_batches(4, B, a.seq, a.vocab, device, a.seed)
        for name in names:
            cfg = CONFIGS[name]
            # a compiled configuration that fails with the reference's inductor options (which
            # a newer torch may refuse) is tried once more with mode="max-autotune"
            modes = [a.compile_mode] if cfg["compiled"] else [None]
            if cfg["compiled"] and a.compile_mode == "reference":
                modes.append("max-autotune")
            for mode in modes:
                label = name if mode in (None, a.compile_mode) else f"{name} (mode={mode})"
                left = a.time_limit - (time.time() - t_start)
                need = a.compile_reserve if cfg["compiled"] else 5.0
                if left < need:
                    why = (f"skipped: {max(left, 0):.0f} s left of the {a.time_limit:.0f} s limit, "
                           f"needs ~{need:.0f} s")
                    results.setdefault((B, name), why)
                    print(f"# microbatch {B} {label}: {why}")
                    break
                signal.alarm(max(1, int(left)))
                try:
                    r = run_config(cfg, mode, a, B, device, batches)
                    signal.alarm(0)
                    r["label"] = label
                    results[(B, name)] = r
                    print(f"# microbatch {B} {label}: {r['tok_s']:.0f} tokens/s, MFU {mfu_of(r)}, "
                          f"{r['step_ms']:.3f} ms per microstep, peak memory {mem_of(r, ' GiB')}, "
                          f"loss {r['loss']:.4f}, warm-up (and compilation) {r['warm_s']:.1f} s")
                except TimeLimit:
                    results[(B, name)] = f"stopped at the {a.time_limit:.0f} s time limit"
                    print(f"# microbatch {B} {label}: {results[(B, name)]}")
                except Exception as e:  # one failing configuration must not hide the others
                    signal.alarm(0)
                    msg = str(e).strip().splitlines()
                    results[(B, name)] = f"failed: {type(e).__name__}: {msg[0] if msg else ''}"
                    print(f"# microbatch {B} {label}: {results[(B, name)]}")
                finally:
                    signal.alarm(0)
                    cleanup(device)
                    sys.stdout.flush()
                if isinstance(results.get((B, name)), dict) or "time limit" in results[(B, name)]:
                    break
        del batches

    print("# summary: tokens/s (MFU, peak memory GiB) per microbatch and configuration")
    for B in mbs:
        for name in names:
            r = results.get((B, name), "not run")
            if isinstance(r, dict):
                print(f"#   {B:6d} {r['label']:30s} {r['tok_s']:12.0f} ({mfu_of(r)}, {mem_of(r)})")
            else:
                print(f"#   {B:6d} {name:30s} {r}")
    ok = False
    for B in mbs:
        done = [r for (b, n), r in results.items() if b == B and isinstance(r, dict)]
        if not done:
            print(f"# microbatch {B}: no configuration finished")
            continue
        r = max(done, key=lambda x: x["tok_s"])
        print(f"RESULT gpu_train_peer {r['tok_s']:.0f} config={r['label'].replace(' ', '')} "
              f"microbatch={B} mfu={mfu_of(r)} step_ms={r['step_ms']:.3f} "
              f"peak_mem_gib={mem_of(r)}")
        ok = True
    print(f"# gpu_train_peer: {time.time() - t_start:.0f} s in all")
    return 0 if ok else 1


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # compile workers of a configuration stopped at the time limit can hold a normal exit for
    # tens of seconds; everything is printed, so leave at once
    os._exit(rc)
