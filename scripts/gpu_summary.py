#!/usr/bin/env python3
"""Short summaries of a cram run folder, for scripts/gpu_check.sh (and for reading one by hand).

    python3 scripts/gpu_summary.py pretrain RUN_DIR [--every 100]
    python3 scripts/gpu_summary.py eval RUN_DIR
    python3 scripts/gpu_summary.py peer RUN_DIR PEER_OUTPUT [--cram-output FILE]
                                   [--cram-wall S] [--peer-wall S]

pretrain: the backend and device lines of the log, the loss at every `--every`-th µstep from
metrics.jsonl (window mean and last µstep, with the window's tokens/s and the MFU the log printed
for it), then the whole loop's tokens/s and MFU, the peak device memory, the validation loss and
the keys of metrics_<name>.yaml that describe speed and memory.
eval: the backend line, each task's last-epoch metrics (metrics_<name>.yaml), its fine-tuning time
from the log's time stamps, and the per-epoch speed lines.
peer: `cram eval` beside its PyTorch peer bench/glue_hf_peer.py (its output, PEER_OUTPUT): per
task cram's and the peer's seconds of fine-tuning + validation (cram's from the closing table of
its output, --cram-output; the peer's from its PEER lines), their ratio peer/cram (above 1: cram
is faster), the same for the training alone (cram's from the log's per-epoch Perf lines) and both
sides' metrics (cram's from metrics_<name>.yaml); then both whole commands' wall times as measured
by the caller (--cram-wall, --peer-wall). A missing side shows as "-".
Every line starts with the mode's name, so that the lines can be appended to a summary file.
Exit status 1 when the folder lacks what the summary needs. Standard library only.
"""

import argparse
import datetime
import glob
import json
import os
import re
import sys

STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] (.*)$")


def log_lines(run_dir, suffix):
    """(time stamp or None, message) for each line of the run's log file."""
    logs = sorted(glob.glob(os.path.join(run_dir, "*_%s.log" % suffix)))
    if not logs:
        return None, []
    out = []
    with open(logs[0], encoding="utf-8", errors="replace") as f:
        for line in f:
            m = STAMP.match(line.rstrip("\n"))
            if m:
                out.append((datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"),
                            m.group(2)))
    return logs[0], out


def flat_yaml(path):
    """The top-level `key: value` lines of cram's metrics files."""
    d = {}
    for path in glob.glob(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if ":" in line and not line.startswith((" ", "#")):
                    k, v = line.split(":", 1)
                    d[k.strip()] = v.strip().strip("'")
    return d


def short(v):
    """A metric as 4 decimals; anything that is not a number as it is."""
    try:
        return "%.4f" % float(v)
    except ValueError:
        return v


def first(lines, prefix):
    for _, msg in lines:
        if msg.startswith(prefix):
            return msg
    return None


def pretrain(run_dir, every):
    log, lines = log_lines(run_dir, "pretrain")
    mpath = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(mpath):
        print("pretrain: no metrics.jsonl in %s" % run_dir)
        return 1
    for prefix in ("Platform:", "GPU :", "GPU 0", "MFU reference:"):
        msg = first(lines, prefix)
        if msg:
            print("pretrain: %s" % msg)
    # the MFU each print line gives, by µstep
    mfu = {}
    for _, msg in lines:
        m = re.match(r"Train loss \S+ at step (\d+) .* MFU: (.*)\.$", msg)
        if m:
            mfu[int(m.group(1))] = m.group(2)
    rows = []
    with open(mpath, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    print("pretrain: %7s %10s %10s %10s %6s %10s  %s" %
          ("µstep", "loss(mean)", "last_loss", "lr", "batch", "tok/s", "MFU (window)"))
    shown = 0
    for r in rows:
        if r["step"] % every:
            continue
        shown += 1
        print("pretrain: %7d %10.4f %10.4f %10.3g %6d %10.0f  %s" %
              (r["step"], r["loss"], r["last_loss"], r["lr"], r["batch_size"], r["tok_per_s"],
               mfu.get(r["step"], "-")))
    if not rows:
        print("pretrain: no loss line in metrics.jsonl (the run ended before its first print)")
    elif shown == 0:
        print("pretrain: no µstep divisible by %d among the %d printed (last: %d)" %
              (every, len(rows), rows[-1]["step"]))
    for prefix in ("Reached deadline", "Trained ", "Max. Mem allocated", "Validation MLM loss",
                   "Final checkpoint", "Finished running job"):
        msg = first(lines, prefix)
        if msg:
            print("pretrain: %s" % msg)
    y = flat_yaml(os.path.join(run_dir, "metrics_*.yaml"))
    keys = ("GPU", "VRAM", "VRAM_device", "RAM", "tok_per_s", "mfu_percent", "val_loss",
            "val_acc", "steps")
    if y:
        print("pretrain: metrics yaml: " + ", ".join("%s=%s" % (k, y[k]) for k in keys if k in y))
    if log is None:
        print("pretrain: no *_pretrain.log in %s" % run_dir)
    return 0 if rows else 1


def evaluate(run_dir):
    log, lines = log_lines(run_dir, "eval")
    if log is None:
        print("eval: no *_eval.log in %s" % run_dir)
        return 1
    msg = first(lines, "Backend:")
    if msg:
        print("eval: %s" % msg)
    msg = first(lines, "GPU :")
    if msg:
        print("eval: %s" % msg)
    # each task from its "Finetuning task" line to its last line before the next task
    start, last, order = {}, {}, []
    task = None
    for t, msg in lines:
        m = re.match(r"Finetuning task (\S+) ", msg)
        if m:
            task = m.group(1)
            order.append(task)
            start[task] = t
        if task:
            last[task] = t
            if msg.startswith("Train loss") and "Perf:" in msg:
                print("eval: %s %s" % (task, msg[msg.index("after epoch"):]))
    y = flat_yaml(os.path.join(run_dir, "metrics_*.yaml"))
    for task in order:
        scores = ", ".join("%s %s" % (k[len(task) + 1:], short(y[k])) for k in sorted(y)
                           if k.startswith(task + "_"))
        secs = (last[task] - start[task]).total_seconds()
        print("eval: %s: %s; %.0f s from its first to its last log line" %
              (task, scores or "no score (failed?)", secs))
    for k in ("GLUE_amean", "VRAM", "VRAM_device", "RAM"):
        if k in y:
            print("eval: %s %s" % (k, short(y[k])))
    msg = first(lines, "Max. Mem allocated")
    if msg:
        print("eval: %s" % msg)
    return 0 if y else 1


# cram eval's closing table: task, metric, value, steps, time as H:MM:SS.f (cut to 9 characters)
TABLE_ROW = re.compile(r"^(\S+) +(\S+) +-?[0-9.]+ +\d+ +(\d+):(\d\d):(\d\d(?:\.\d*)?)\s*$")


def peer_lines(path):
    """info dict, skip reason, and {task: {key: value}} from the PEER lines of the peer's output."""
    info, skip, tasks = {}, None, {}
    if path and os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("PEER skip"):
                    skip = line.split(":", 1)[-1].strip()
                elif line.startswith("PEER "):
                    kv = dict(re.findall(r"(\w+)=(\S+)", line))
                    if line.startswith("PEER info"):
                        info = kv
                    elif "task" in kv:
                        tasks[kv.pop("task")] = kv
    return info, skip, tasks


def cram_task_seconds(path):
    """{task: seconds of fine-tuning + validation} from cram eval's closing table."""
    out = {}
    if path and os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = TABLE_ROW.match(line)
                if m:
                    h, mi, sec = int(m.group(3)), int(m.group(4)), float(m.group(5).rstrip("."))
                    out[m.group(1)] = h * 3600 + mi * 60 + sec
    return out


def cram_train_seconds(lines):
    """{task: training seconds}, the sum of its epochs' Perf lines (minutes, 4 decimals)."""
    out, task = {}, None
    for _, msg in lines:
        m = re.match(r"Finetuning task (\S+) ", msg)
        if m:
            task = m.group(1)
        m = re.search(r"Perf: ([0-9.]+)min per epoch", msg)
        if m and task:
            out[task] = out.get(task, 0.0) + 60 * float(m.group(1))
    return out


def secs(v):
    return "-" if v is None else "%.1f s" % v


def ratio(peer_s, cram_s):
    return "%.2f" % (peer_s / cram_s) if peer_s and cram_s else "-"


def compare(run_dir, peer_out, cram_out, cram_wall, peer_wall):
    info, skip, ptasks = peer_lines(peer_out)
    have_run = bool(run_dir) and os.path.isdir(run_dir)
    lines = log_lines(run_dir, "eval")[1] if have_run else []
    y = flat_yaml(os.path.join(run_dir, "metrics_*.yaml")) if have_run else {}
    ctime, ctrain = cram_task_seconds(cram_out), cram_train_seconds(lines)
    if info:
        print("peer: torch %s, transformers %s, %s, %s%s, fp32 matmul precision %s%s" %
              (info.get("torch", "?"), info.get("transformers", "?"), info.get("device", "?"),
               info.get("dtype", "?"), " (autocast)" if info.get("dtype") == "bf16" else "",
               info.get("fp32_matmul", "?"),
               ", " + info["gpu"].replace("_", " ") if info.get("gpu", "-") != "-" else ""))
    if skip:
        print("peer: skipped: %s" % skip)
    order = [t for t in ctime] + [t for t in ptasks if t not in ctime]
    for t in order:
        p = ptasks.get(t, {})
        ps = float(p["seconds"]) if "seconds" in p else None
        pt = float(p["train_seconds"]) if "train_seconds" in p else None
        print("peer: %s: fine-tuning + validation cram %s, torch %s, ratio %s (torch/cram; "
              "above 1: cram is faster); training alone cram %s, torch %s, ratio %s" %
              (t, secs(ctime.get(t)), secs(ps), ratio(ps, ctime.get(t)),
               secs(ctrain.get(t)), secs(pt), ratio(pt, ctrain.get(t))))
        names = [k for k in p if k not in ("seconds", "train_seconds", "steps")]
        names += [k[len(t) + 1:] for k in sorted(y) if k.startswith(t + "_") and
                  k[len(t) + 1:] not in names]
        scores = ["%s cram %s, torch %s" % (k, short(y.get(t + "_" + k, "-")), short(p.get(k, "-")))
                  for k in names]
        if not p:
            scores.append("no torch result (the peer stopped or failed before this task ended)")
        print("peer: %s: %s" % (t, "; ".join(scores)))
    if not order:
        print("peer: no task finished on either side")
    print("peer: whole command: cram %s, torch %s, ratio %s (each with its start-up, loading and "
          "tokenising)" % (secs(cram_wall), secs(peer_wall), ratio(peer_wall, cram_wall)))
    return 0 if ptasks else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("pretrain", "eval", "peer"))
    ap.add_argument("run_dir")
    ap.add_argument("peer_output", nargs="?", help="peer: the output of bench/glue_hf_peer.py")
    ap.add_argument("--every", type=int, default=100, help="pretrain: show every N-th µstep")
    ap.add_argument("--cram-output", help="peer: the output of cram eval (its closing table)")
    ap.add_argument("--cram-wall", type=float, help="peer: seconds of the whole cram eval")
    ap.add_argument("--peer-wall", type=float, help="peer: seconds of the whole peer")
    a = ap.parse_args()
    if a.mode == "peer":  # a side that is missing shows as "-"
        return compare(a.run_dir, a.peer_output, a.cram_output, a.cram_wall, a.peer_wall)
    if not os.path.isdir(a.run_dir):
        print("%s: no run folder %s" % (a.mode, a.run_dir))
        return 1
    return pretrain(a.run_dir, a.every) if a.mode == "pretrain" else evaluate(a.run_dir)


if __name__ == "__main__":
    sys.exit(main())
