#!/usr/bin/env python3
"""Replays a `cram pretrain` run in PyTorch and compares the losses, µstep by µstep.

cram writes the replay dump when CRAM_DUMP_BATCHES=<dir> is set (CRAM_DUMP_STEPS=<n>, default
300; see the comment above replay_open in src/train/train.c for the format): init.safetensors, the
weights before the first µstep, and batches.bin, the first n microbatches (input ids and MLM
labels as cram's collator made them), each with the gradient scale of its backward (1/accum),
whether an optimizer update follows, the lr that update used, and cram's loss. This script builds
the trainable crammed-bert of scripts/make_model_reference.py (the module tests/test_model.c is
checked against), loads the same weights (every tensor of the file accounted for), and trains on
the same microbatches: loss * scale backward, and at each update record the global gradient norm
clipped to the dump's value and AdamW (or Adam) with the dump's betas, eps, weight decay, decay
groups (cram's own per-parameter flags) and the recorded lr. No dropout: bert-o4 pretrains with
it off (train.pretrain_in_train_mode: False); a dump made with it on is compared anyway and says so.

Prints µstep | cram loss | torch loss | difference for the first few µsteps and every --every
µsteps, then `RESULT pretrain_peer max_rel_diff=... at=... steps=...`.
  --device cpu|cuda, --dtype fp32|bf16 (bf16: torch.autocast to bfloat16; the weights, grads and
  optimizer stay fp32, as cram's bf16 keeps fp32 masters), --time-limit seconds (stops cleanly,
  printing what it has), --tolerance R (exit 1 when a relative difference exceeds R).
--info reads the dump without PyTorch and prints its shape and record count.
"""
import time

_T0 = time.time()  # the time limit counts from here, importing torch included

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
from array import array  # noqa: E402

MAGIC = b"CRAMRPL\0"
VERSION = 1
HEAD_I32 = ("L", "H", "NH", "I", "V", "max_pos", "pad_id", "glu", "final_norm", "train_mode",
            "coupled")
HEAD_F64 = ("norm_eps", "sparse_pred", "clip", "beta1", "beta2", "adam_eps", "weight_decay")


class DumpError(Exception):
    pass


def read_header(f):
    if f.read(8) != MAGIC:
        raise DumpError("not a replay dump (bad magic)")
    version, count = struct.unpack("<II", f.read(8))
    if version != VERSION:
        raise DumpError(f"replay dump version {version}; this script reads {VERSION}")
    h = dict(zip(HEAD_I32, struct.unpack(f"<{len(HEAD_I32)}i", f.read(4 * len(HEAD_I32)))))
    (nparams,) = struct.unpack("<I", f.read(4))
    h.update(zip(HEAD_F64, struct.unpack(f"<{len(HEAD_F64)}d", f.read(8 * len(HEAD_F64)))))
    h["count"] = count
    decay = {}
    for _ in range(nparams):
        (n,) = struct.unpack("<I", f.read(4))
        name = f.read(n).decode()
        (d,) = struct.unpack("<I", f.read(4))
        decay[name] = bool(d)
    h["decay"] = decay
    return h


def read_records(f, count):
    """Yields dicts: step, rows, seq, ids and labels (array('i')), lr, update, scale, loss."""
    for k in range(count):
        head = f.read(16)
        if len(head) != 16:
            raise DumpError(f"batches.bin ends inside record {k + 1} of {count}")
        step, rows, seq = struct.unpack("<qii", head)
        n = rows * seq
        ids, labels = array("i"), array("i")
        ids.fromfile(f, n)
        labels.fromfile(f, n)
        if sys.byteorder != "little":
            ids.byteswap()
            labels.byteswap()
        lr, update, scale, loss = struct.unpack("<dIfd", f.read(24))
        yield dict(step=step, rows=rows, seq=seq, ids=ids, labels=labels, lr=lr,
                   update=bool(update), scale=scale, loss=loss)


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} of a safetensors file, read without the safetensors package."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        meta = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in meta.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], data[a:b])
    return out


def load_weights(model, path, h, torch):
    """Copies init.safetensors into the model's parameters; fails unless every parameter gets
    exactly one tensor and every other tensor is one the checkpoint is known to hold besides
    (the per-layer norm_factor scalars, the tied decoder's second copy), with the right value."""
    tensors = read_safetensors(path)
    names = model.names()
    used = set()
    with torch.no_grad():
        for name, p in names.items():
            if name not in tensors:
                raise DumpError(f"{path}: no tensor {name}")
            dtype, shape, raw = tensors[name]
            if dtype != "F32" or list(shape) != list(p.shape):
                raise DumpError(f"{path}: {name} is {dtype} {shape}, expected F32 {list(p.shape)}")
            p.copy_(torch.frombuffer(bytearray(raw), dtype=torch.float32).view(p.shape))
            used.add(name)
        word = names["encoder.embedding.word_embedding.weight"]
        hd = h["H"] // h["NH"]
        for name, (dtype, shape, raw) in tensors.items():
            if name in used:
                continue
            t = torch.frombuffer(bytearray(raw), dtype=torch.float32).view(shape)
            if name.endswith(".attn.self_attention.norm_factor"):
                if abs(float(t) - 1.0 / math.sqrt(hd)) > 1e-6:
                    raise DumpError(f"{path}: {name} = {float(t)}, expected 1/sqrt({hd})")
            elif list(shape) == list(word.shape) and torch.equal(t, word):
                pass  # the tied decoder, a copy of the word embedding
            else:
                raise DumpError(f"{path}: tensor {name} {shape} has no place in the model")
            used.add(name)
    missing = set(h["decay"]) - set(names)
    if missing:
        raise DumpError(f"cram's parameters {sorted(missing)} have no counterpart in the model")
    return len(names), len(tensors)


class TimeLimit(BaseException):
    """Raised by the alarm, the backstop of the per-µstep time check."""


def on_alarm(signum, frame):
    raise TimeLimit()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump", help="the folder CRAM_DUMP_BATCHES named")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--every", type=int, default=100, help="table row every N µsteps (100)")
    ap.add_argument("--first", type=int, default=5, help="and the first N µsteps (5)")
    ap.add_argument("--steps", type=int, default=0, help="replay at most N µsteps (0: all)")
    ap.add_argument("--time-limit", type=float, default=0.0,
                    help="seconds for the whole run, from start-up (0: none); the replay stops "
                    "cleanly before it and reports the µsteps done")
    ap.add_argument("--tolerance", type=float, default=0.0,
                    help="exit 1 when |torch - cram| / |cram| exceeds this at any µstep (0: off)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: its default)")
    ap.add_argument("--info", action="store_true", help="print the dump's header and record count "
                    "(no PyTorch needed)")
    a = ap.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # lines reach a log even if the run is killed
    bpath = os.path.join(a.dump, "batches.bin")
    ipath = os.path.join(a.dump, "init.safetensors")
    try:
        f = open(bpath, "rb")
        h = read_header(f)
    except (OSError, DumpError, struct.error) as e:
        print(f"pretrain_peer: {bpath}: {e}", file=sys.stderr)
        return 2
    if a.info:
        recs = updates = 0
        try:
            for r in read_records(f, h["count"]):
                recs += 1
                updates += r["update"]
                last = r
        except (DumpError, struct.error, EOFError) as e:
            print(f"pretrain_peer: {bpath}: {e}", file=sys.stderr)
            return 2
        extra = len(f.read(1))
        shape = f"{last['rows']}x{last['seq']}" if recs else "-"
        print(f"records {recs} of {h['count']}; microbatch {shape}; L={h['L']} H={h['H']} "
              f"NH={h['NH']} I={h['I']} V={h['V']} parameters={len(h['decay'])}; "
              f"updates {updates}; clip {h['clip']:g}")
        return 0 if recs == h["count"] and not extra else 2
    if not (h["glu"] and h["final_norm"]):
        print("pretrain_peer: the dump is not a crammed-bert (GLU FFN and final norm); the "
              "peer model has no other shape", file=sys.stderr)
        return 2

    import torch

    threads = a.threads or torch.get_num_threads()
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
    from make_model_reference import CrammedBert

    torch.set_num_threads(threads)  # the module sets one thread for its fixtures
    if a.device == "cuda" and not torch.cuda.is_available():
        print("skipped: torch sees no GPU")
        return 77
    dev = torch.device(a.device)
    torch.manual_seed(0)
    model = CrammedBert(V=h["V"], H=h["H"], L=h["L"], NH=h["NH"], I=h["I"],
                        max_pos=h["max_pos"], eps=h["norm_eps"])
    if h["pad_id"] != 0:  # the module's embedding leaves row 0 without lookup gradient
        model.emb.padding_idx = h["pad_id"] if h["pad_id"] >= 0 else None
    try:
        nparam, ntens = load_weights(model, ipath, h, torch)
    except (OSError, DumpError, ValueError, KeyError) as e:
        print(f"pretrain_peer: {e}", file=sys.stderr)
        return 2
    model.to(dev)
    names = model.names()
    if len(names) != len(list(model.parameters())):
        print("pretrain_peer: a model parameter without a checkpoint name", file=sys.stderr)
        return 2
    groups = [{"params": [p for n, p in names.items() if h["decay"][n]],
               "weight_decay": h["weight_decay"]},
              {"params": [p for n, p in names.items() if not h["decay"][n]],
               "weight_decay": 0.0}]
    params = [p for g in groups for p in g["params"]]
    Opt = torch.optim.Adam if h["coupled"] else torch.optim.AdamW
    # the CPU replay takes the single-tensor loop, the order of cram's update; CUDA the default
    opt = Opt(groups, lr=0.0, betas=(h["beta1"], h["beta2"]), eps=h["adam_eps"],
              foreach=False if a.device == "cpu" else None)
    autocast = a.dtype == "bf16"
    card = torch.cuda.get_device_name(0) if a.device == "cuda" else f"CPU, {threads} threads"
    print(f"# pretrain_peer: torch {torch.__version__} on {card}, {a.dtype}"
          f"{' (autocast)' if autocast else ''}; crammed-bert L={h['L']} H={h['H']} "
          f"NH={h['NH']} I={h['I']} V={h['V']}, {nparam} parameters from {ntens} tensors of "
          f"init.safetensors")
    print(f"# {h['count']} µsteps in the dump; {'Adam' if h['coupled'] else 'AdamW'} betas "
          f"({h['beta1']:g}, {h['beta2']:g}) eps {h['adam_eps']:g} weight decay "
          f"{h['weight_decay']:g} ({sum(h['decay'].values())} of {len(h['decay'])} tensors); "
          f"clip {h['clip']:g}; sparse prediction {h['sparse_pred']:g}")
    if h["train_mode"]:
        print("# note: cram ran with dropout on (train.pretrain_in_train_mode); this peer has none, "
              "so the losses are not expected to agree")

    limit = a.time_limit
    signal.signal(signal.SIGALRM, on_alarm)
    if limit > 0:
        signal.alarm(max(1, int(limit - (time.time() - _T0))))
    rows_out = []  # (step, cram, torch)
    worst = (0.0, 0)
    done, stopped, t_loop, step_s = 0, "", time.time(), 0.0
    print(f"{'µstep':>7} | {'cram loss':>10} | {'torch loss':>10} | {'difference':>11} | "
          f"{'relative':>9}")
    try:
        for r in read_records(f, h["count"]):
            if a.steps and done >= a.steps:
                break
            if limit > 0:
                left = limit - (time.time() - _T0)
                if left < max(2.0, 3 * step_s):
                    stopped = f"stopped {left:.0f} s before the {limit:.0f} s time limit"
                    break
            t1 = time.time()
            shape = (r["rows"], r["seq"])
            ids = torch.tensor(r["ids"], dtype=torch.long).view(shape).to(dev)
            labels = torch.tensor(r["labels"], dtype=torch.long).view(shape).to(dev)
            with torch.autocast(a.device, dtype=torch.bfloat16, enabled=autocast):
                _, loss = model(ids, labels, sparse=h["sparse_pred"])
            (loss.float() * r["scale"]).backward()
            if r["update"]:
                if h["clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(params, h["clip"])
                for g in opt.param_groups:
                    g["lr"] = r["lr"]
                opt.step()
                opt.zero_grad(set_to_none=True)
            tl = float(loss.item())
            done += 1
            step_s = 0.8 * step_s + 0.2 * (time.time() - t1) if done > 1 else time.time() - t1
            c = r["loss"]
            rel = abs(tl - c) / abs(c) if c != 0 else abs(tl - c)
            if not math.isfinite(rel):
                rel = math.inf
            if rel > worst[0] or (rel == worst[0] == math.inf and not worst[1]):
                worst = (rel, r["step"])
            rows_out.append((r["step"], c, tl))
            if r["step"] <= a.first or (a.every > 0 and r["step"] % a.every == 0):
                print(f"{r['step']:7d} | {c:10.5f} | {tl:10.5f} | {tl - c:+11.2e} | {rel:9.2e}")
    except TimeLimit:
        stopped = f"stopped by the {limit:.0f} s time limit"
    except (DumpError, struct.error, EOFError) as e:
        stopped = f"unreadable dump: {e}"
    signal.alarm(0)
    if rows_out:
        s, c, tl = rows_out[-1]
        if not (s <= a.first or (a.every > 0 and s % a.every == 0)):
            rel = abs(tl - c) / abs(c) if c else abs(tl - c)
            print(f"{s:7d} | {c:10.5f} | {tl:10.5f} | {tl - c:+11.2e} | {rel:9.2e}  (last)")
    if stopped:
        print(f"# {stopped} after {done} of {h['count']} µsteps")
    loop_s = time.time() - t_loop
    print(f"# {done} µsteps in {loop_s:.1f} s ({1e3 * loop_s / max(done, 1):.1f} ms each); "
          f"{time.time() - _T0:.0f} s in all")
    diff = f"{worst[0]:.3e}" if done else "n/a"
    print(f"RESULT pretrain_peer max_rel_diff={diff} at={worst[1]} steps={done} "
          f"of={h['count']} device={a.device} dtype={a.dtype}"
          f"{' stopped=time' if 'time limit' in stopped else ''}")
    if not done:
        return 1
    if a.tolerance > 0 and not worst[0] <= a.tolerance:
        print(f"# the relative difference {worst[0]:.3e} at µstep {worst[1]} exceeds "
              f"--tolerance {a.tolerance:g}")
        return 1
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
