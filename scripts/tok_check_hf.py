#!/usr/bin/env python3
"""Checks that tokenizer folders written by cram load in Hugging Face `tokenizers` and `transformers`
and encode the fixture text to the ids cram produces (the C test checks cram against the same
fixtures). Usage:
  python3 scripts/tok_check_hf.py --cram-wp DIR   (cram-trained on tests/fixtures/tok/corpus.txt, vocab 8192)
                                  --bert DIR      (cram's conversion of the BERT uncased vocab.txt)
"""
import argparse
import struct
import subprocess
import sys

from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

FIX = "tests/fixtures/tok/"


def zread(p):
    return subprocess.run(["zstd", "-dc", p], capture_output=True, check=True).stdout


def fnv1a(b):
    h = 0x811C9DC5
    for x in b:
        h = ((h ^ x) * 0x01000193) & 0xFFFFFFFF
    return h


def lines():
    return zread(FIX + "corpus.txt.zst").decode().split("\n") + zread(FIX + "unicode.txt.zst").decode().split("\n")


def ids_u16(p):
    raw = zread(p)
    out, cur = [], []
    for (v,) in struct.iter_unpack("<H", raw):
        if v == 0xFFFF:
            out.append(cur)
            cur = []
        else:
            cur.append(v)
    return out


def check(folder, want, name, as_hash):
    tok = Tokenizer.from_file(folder + "/tokenizer.json")
    text = lines()
    encs = tok.encode_batch(text, add_special_tokens=False)
    if as_hash:
        got = [fnv1a(struct.pack(f"<{len(e.ids)}I", *e.ids)) for e in encs]
    else:
        got = [e.ids for e in encs]
    same = sum(a == b for a, b in zip(got, want))
    print(f"{name}: HF Tokenizer.from_file(cram tokenizer.json): {same}/{len(want)} lines with cram's ids")
    fast = PreTrainedTokenizerFast.from_pretrained(folder)
    sample = text[:2000]
    a = fast(sample)["input_ids"]
    b = [e.ids for e in tok.encode_batch(sample)]
    print(f"{name}: transformers PreTrainedTokenizerFast.from_pretrained: {sum(x == y for x, y in zip(a, b))}/"
          f"{len(sample)} identical with special tokens; model_max_length={fast.model_max_length} "
          f"pad={fast.pad_token}({fast.pad_token_id}) mask={fast.mask_token}({fast.mask_token_id})")
    return same == len(want)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cram-wp")
    ap.add_argument("--bert")
    a = ap.parse_args()
    ok = True
    if a.cram_wp:
        want = list(struct.unpack(f"<{len(zread(FIX + 'idhash_cram_wp.u32.zst')) // 4}I",
                                  zread(FIX + "idhash_cram_wp.u32.zst")))
        ok &= check(a.cram_wp, want, "cram_wp", True)
    if a.bert:
        ok &= check(a.bert, ids_u16(FIX + "ids_bert.u16.zst"), "bert", False)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
