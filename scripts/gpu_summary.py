#!/usr/bin/env python3
"""Short summaries of a cram run folder, for scripts/gpu_check.sh (and for reading one by hand).

    python3 scripts/gpu_summary.py pretrain RUN_DIR [--every 100]
    python3 scripts/gpu_summary.py eval RUN_DIR

pretrain: the backend and device lines of the log, the loss at every `--every`-th µstep from
metrics.jsonl (window mean and last µstep, with the window's tokens/s and the MFU the log printed
for it), then the whole loop's tokens/s and MFU, the peak device memory, the validation loss and
the keys of metrics_<name>.yaml that describe speed and memory.
eval: the backend line, each task's last-epoch metrics (metrics_<name>.yaml), its fine-tuning time
from the log's time stamps, and the per-epoch speed lines.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("pretrain", "eval"))
    ap.add_argument("run_dir")
    ap.add_argument("--every", type=int, default=100, help="pretrain: show every N-th µstep")
    a = ap.parse_args()
    if not os.path.isdir(a.run_dir):
        print("%s: no run folder %s" % (a.mode, a.run_dir))
        return 1
    return pretrain(a.run_dir, a.every) if a.mode == "pretrain" else evaluate(a.run_dir)


if __name__ == "__main__":
    sys.exit(main())
