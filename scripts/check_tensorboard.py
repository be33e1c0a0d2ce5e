#!/usr/bin/env python3
"""Reads cram's TensorBoard event files with the `tensorboard` package, the way
`tensorboard --logdir` does, and lists what it finds.

    check_tensorboard.py LOGDIR [--require TAG,TAG,...]

Every folder under LOGDIR that holds event files (`*tfevents*`) is one TensorBoard run. For
each file, every record goes through TensorBoard's own record reader (length and data CRCs
checked; a damaged or cut-off record is an error here, where TensorBoard would only stop
reading quietly) and is parsed as an Event. Then the run is loaded with EventAccumulator and its
scalar tags are printed with their number of points, step range and last value.

Needs `tensorboard` (pip install tensorboard; not on the training path). Exit 0 = scalars were
found (and every --require tag is there), 1 = no scalars, a damaged file or a missing tag,
77 = tensorboard is not installed.
"""
import argparse
import os
import sys

try:
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors, pywrap_tensorflow
except ImportError as e:
    print(f"tensorboard unavailable: {e}")
    sys.exit(77)


def read_records(path):
    """The records of one event file as bytes; raises on a CRC mismatch or a cut-off record."""
    reader = pywrap_tensorflow.PyRecordReader_New(path)
    out = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            return out
        out.append(reader.record())


def check_run(run_dir, files, logdir):
    """Prints the run and returns ({tag: points}, problems)."""
    problems = []
    nevents = 0
    for f in files:
        path = os.path.join(run_dir, f)
        try:
            records = read_records(path)
        except errors.OpError as e:
            problems.append(f"{path}: {e.message}")
            continue
        for i, rec in enumerate(records):
            ev = event_pb2.Event.FromString(rec)
            if i == 0 and ev.file_version != "brain.Event:2":
                problems.append(f"{path}: first record has file_version {ev.file_version!r}")
        nevents += len(records)
    acc = EventAccumulator(run_dir, size_guidance={SCALARS: 0})  # 0: keep every point
    acc.Reload()
    tags = sorted(acc.Tags().get("scalars", []))
    name = os.path.relpath(run_dir, logdir)
    print(f"run {name}: {len(files)} event file(s), {nevents} record(s), {len(tags)} scalar tag(s)")
    counts = {}
    for tag in tags:
        pts = acc.Scalars(tag)
        counts[tag] = len(pts)
        print(
            f"  {tag:<28} {len(pts):>6} point(s)  steps {pts[0].step}..{pts[-1].step}"
            f"  last {pts[-1].value:.6g}"
        )
    return counts, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logdir")
    ap.add_argument("--require", default="", help="comma-separated tags that must be present")
    args = ap.parse_args()
    if not os.path.isdir(args.logdir):
        print(f"{args.logdir}: not a folder")
        return 1
    all_counts, problems, runs = {}, [], 0
    for root, dirs, files in os.walk(args.logdir):
        dirs.sort()
        ev = sorted(f for f in files if "tfevents" in f)
        if not ev:
            continue
        runs += 1
        counts, p = check_run(root, ev, args.logdir)
        problems += p
        for tag, n in counts.items():
            all_counts[tag] = all_counts.get(tag, 0) + n
    for p in problems:
        print(f"error: {p}")
    missing = [t for t in args.require.split(",") if t and t not in all_counts]
    for t in missing:
        print(f"error: required tag {t} not found")
    total = sum(all_counts.values())
    print(f"{runs} run(s), {len(all_counts)} scalar tag(s), {total} point(s)")
    if total == 0:
        print("error: no scalars found")
    return 1 if problems or missing or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
