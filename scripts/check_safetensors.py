#!/usr/bin/env python3
"""Compatibility of cram's safetensors files with the Python `safetensors` library.

    check_safetensors.py write OUT   writes the small fixture tests/fixtures/safetensors/python.safetensors
    check_safetensors.py check FILE  reads FILE (written by tests/test_safetensors.c) with the Python
                                     library and checks names, dtypes, shapes, values and metadata

Needs `safetensors` and `numpy` (pip install safetensors numpy). Exit 0 = all good, 1 = a
mismatch (printed), 77 = the libraries are missing (the C test then skips this part).
"""
import struct
import sys

try:
    import numpy as np
    import safetensors
    from safetensors import deserialize, safe_open
    from safetensors.numpy import save_file
except ImportError as e:  # the C test reports this as a skip
    print(f"python safetensors/numpy unavailable: {e}")
    sys.exit(77)


def expected_from_c():
    """What tests/test_safetensors.c writes (keep the two in sync)."""
    return {
        "encoder.weight": ("F32", [3, 4], np.arange(12, dtype=np.float32) * 0.5 - 1),
        "encoder.bias": ("F16", [5], (np.arange(5) - 2).astype(np.float16)),
        "scale": ("BF16", [], np.array([0x3FC0], dtype=np.uint16)),  # 1.5 as bf16 bits
        "ids": ("I64", [2, 3], np.arange(6, dtype=np.int64) * 1000000007 - 3),
        "mask": ("I32", [4], -np.arange(4, dtype=np.int32)),
        "empty": ("F32", [0, 3], np.zeros((0,), dtype=np.float32)),
    }, {"format": "pt", "note": 'cram "quoted" \\ \u00fc\n'}


def check(path):
    want, want_meta = expected_from_c()
    raw = open(path, "rb").read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    errors = []
    if (8 + hlen) % 8:
        errors.append(f"data does not start at a multiple of 8 (header {hlen} bytes)")
    got = dict(deserialize(raw))
    if set(got) != set(want):
        errors.append(f"names {sorted(got)} != {sorted(want)}")
    for name, (dt, shape, values) in want.items():
        if name not in got:
            continue
        g = got[name]
        # library versions differ in how they spell dtypes ("F32" or "float32")
        alias = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "int32": "I32"}
        if alias.get(str(g["dtype"]).lower(), str(g["dtype"]).upper()) != dt:
            errors.append(f"{name}: dtype {g['dtype']} != {dt}")
        if list(g["shape"]) != shape:
            errors.append(f"{name}: shape {g['shape']} != {shape}")
        if bytes(g["data"]) != values.tobytes():
            errors.append(f"{name}: data differs")
    with safe_open(path, framework="numpy") as f:
        meta = f.metadata() or {}
        if meta != want_meta:
            errors.append(f"metadata {meta!r} != {want_meta!r}")
        # numpy-typed reads of the dtypes numpy has
        w = f.get_tensor("encoder.weight")
        if w.dtype != np.float32 or w.shape != (3, 4) or not np.array_equal(w.reshape(-1), want["encoder.weight"][2]):
            errors.append("encoder.weight read through numpy differs")
    for e in errors:
        print("mismatch:", e)
    if not errors:
        print(f"{path}: read by safetensors {safetensors.__version__}: {len(got)} tensors and metadata match")
    return 1 if errors else 0


def write(path):
    tensors = {
        "a.weight": (np.arange(6, dtype=np.float32) * 0.25 - 0.5).reshape(2, 3),
        "b": np.array([1.0, -2.5, 65504.0, 2.0**-24], dtype=np.float16),
        "c": np.array([-(2**40), 0, 2**62], dtype=np.int64),
        "d": np.array([[1, -2], [3, 2**31 - 1]], dtype=np.int32),
        "e.scalar": np.array(3.0, dtype=np.float32),
    }
    save_file(tensors, path, metadata={"format": "np", "source": "python safetensors"})
    print(f"wrote {path} with safetensors {safetensors.__version__}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        print(__doc__)
        sys.exit(2)
    sys.exit(write(sys.argv[2]) if sys.argv[1] == "write" else check(sys.argv[2]))
