#!/usr/bin/env python3
"""Copies a Hugging Face BERT folder with its fp32 weights stored as F16 (or BF16) safetensors.

    python3 scripts/hf_to_half.py SRC_DIR DST_DIR [--dtype f16|bf16]

Half the bytes, for a GPU check that must carry the checkpoint in a small folder
(scripts/gpu_prepare_data.sh). cram's Hugging Face import widens F16 and BF16 to fp32 on load
(src/eval/hf.c), so the copy evaluates like the original up to the rounding of each weight.
Tensors of other dtypes (the I64 position_ids) are copied as they are; the tokenizer and config
files come along. Rounding is to nearest, ties to even. A weight outside the F16 range stops the
conversion; weights below the smallest normal number are kept as subnormals or become zero, and the
summary counts them. Uses the standard library only: struct packs IEEE half precision itself.
"""

import argparse
import array
import json
import math
import os
import shutil
import struct
import sys

SIDE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "vocab.txt")
DTYPE_SIZE = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "U8": 1,
              "I8": 1, "BOOL": 1}
CHUNK = 1 << 20  # elements converted per struct call


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", None) or {}
    return meta, header, data


def to_f16(raw):
    """fp32 little-endian bytes -> fp16 bytes (round to nearest even; overflow raises)."""
    out = bytearray()
    count = len(raw) // 4
    for k in range(0, count, CHUNK):
        m = min(CHUNK, count - k)
        vals = struct.unpack_from("<%df" % m, raw, 4 * k)
        out += struct.pack("<%de" % m, *vals)
    return bytes(out)


def to_bf16(raw):
    """fp32 little-endian bytes -> bf16 bytes (the upper 16 bits, rounded to nearest even)."""
    words = array.array("I")
    words.frombytes(raw)
    if sys.byteorder != "little":
        words.byteswap()
    half = array.array("H", (((w + 0x7FFF + ((w >> 16) & 1)) >> 16) & 0xFFFF for w in words))
    if sys.byteorder != "little":
        half.byteswap()
    return half.tobytes()


def widen(raw, dtype):
    """F16 / BF16 bytes -> a tuple of Python floats, to measure the rounding."""
    if dtype == "F16":
        return struct.unpack("<%de" % (len(raw) // 2), raw)
    half = array.array("H")
    half.frombytes(raw)
    if sys.byteorder != "little":
        half.byteswap()
    words = array.array("I", (h << 16 for h in half))
    return struct.unpack("<%df" % len(words), words.tobytes())


def convert(src, dst, dtype):
    meta, header, data = read_safetensors(os.path.join(src, "model.safetensors"))
    names = sorted(header, key=lambda k: header[k]["data_offsets"][0])
    tensors = []  # (name, dtype, shape, bytes)
    stats = {"converted": 0, "kept": 0, "elements": 0, "to_zero": 0, "subnormal": 0,
             "max_rel": 0.0}
    smallest_normal = 2.0 ** -14 if dtype == "F16" else 2.0 ** -126
    for name in names:
        t = header[name]
        b, e = t["data_offsets"]
        raw = data[b:e]
        if t["dtype"] != "F32":
            tensors.append((name, t["dtype"], t["shape"], raw))
            stats["kept"] += 1
            continue
        try:
            half = to_f16(raw) if dtype == "F16" else to_bf16(raw)
        except (OverflowError, struct.error) as exc:
            sys.exit("hf_to_half: %s: a weight does not fit %s (%s); use --dtype bf16"
                     % (name, dtype, exc))
        orig = struct.unpack("<%df" % (len(raw) // 4), raw)
        back = widen(half, dtype)
        for x, y in zip(orig, back):
            if not math.isfinite(y):
                sys.exit("hf_to_half: %s: %r became %r in %s" % (name, x, y, dtype))
            if x != 0.0 and y == 0.0:
                stats["to_zero"] += 1
            elif abs(x) < smallest_normal and x != 0.0:
                stats["subnormal"] += 1
            elif x != 0.0:
                stats["max_rel"] = max(stats["max_rel"], abs(y - x) / abs(x))
        stats["elements"] += len(orig)
        tensors.append((name, dtype, t["shape"], half))
        stats["converted"] += 1

    # widest elements first, so every tensor starts at a multiple of its element size (the
    # header is padded to 8 bytes, as the safetensors writers do)
    tensors.sort(key=lambda t: -DTYPE_SIZE.get(t[1], 1))
    out_header = {"__metadata__": dict(meta, converted_by="scripts/hf_to_half.py",
                                       converted_from="F32")}
    offset = 0
    for name, dt, shape, raw in tensors:
        out_header[name] = {"dtype": dt, "shape": shape,
                            "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(out_header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)

    tmp = dst + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(tmp, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)
    for name in SIDE_FILES:
        if os.path.exists(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(tmp, name))
    shutil.rmtree(dst, ignore_errors=True)
    os.rename(tmp, dst)  # the folder appears complete or not at all
    return stats


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", help="Hugging Face folder with config.json and fp32 model.safetensors")
    ap.add_argument("dst", help="folder to write (replaced)")
    ap.add_argument("--dtype", choices=("f16", "bf16"), default="f16",
                    help="f16 (default: 10 mantissa bits, enough range for BERT weights) or bf16")
    a = ap.parse_args()
    if not os.path.isfile(os.path.join(a.src, "model.safetensors")):
        sys.exit("hf_to_half: %s has no model.safetensors" % a.src)
    if not os.path.isfile(os.path.join(a.src, "config.json")):
        sys.exit("hf_to_half: %s has no config.json" % a.src)
    dtype = a.dtype.upper()
    s = convert(a.src, a.dst, dtype)
    before = os.path.getsize(os.path.join(a.src, "model.safetensors"))
    after = os.path.getsize(os.path.join(a.dst, "model.safetensors"))
    print("hf_to_half: %s -> %s: %d tensors to %s, %d kept; %d -> %d bytes" %
          (a.src, a.dst, s["converted"], dtype, s["kept"], before, after))
    print("hf_to_half: %d weights: largest relative rounding error %.3g among normal numbers; "
          "%d became subnormal, %d became zero" %
          (s["elements"], s["max_rel"], s["subnormal"], s["to_zero"]))


if __name__ == "__main__":
    main()
