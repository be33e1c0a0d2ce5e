#!/usr/bin/env python3
"""HF tokenizers side of bench/tokenizer.sh: train a WordPiece tokenizer with the reference's settings
on FILE (one document per line) and time encode_batch on the same text.
  python3 bench/tokenizer_hf.py train FILE VOCAB OUT.json
  python3 bench/tokenizer_hf.py encode TOKENIZER.json FILE [reps]
Thread count: RAYON_RS_NUM_CPUS (set by bench/tokenizer.sh)."""
import os
import sys
import time

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "<cls>", "<sep>", "<mask>"]


def cram_default_normalizer():
    return normalizers.Sequence([
        normalizers.Replace("``", '"'), normalizers.Replace("''", '"'), normalizers.NFD(), normalizers.Lowercase(),
        normalizers.StripAccents(), normalizers.Replace(Regex(" {2,}"), " "),
        normalizers.Replace(Regex(r"[^\x00-\x7F]+"), "")])


def main():
    mode = sys.argv[1]
    threads = os.environ.get("RAYON_RS_NUM_CPUS", "all")
    if mode == "train":
        text = open(sys.argv[2], encoding="utf-8", errors="replace").read().split("\n")
        tok = Tokenizer(models.WordPiece(unk_token="<unk>"))
        tok.normalizer = cram_default_normalizer()
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.decoder = decoders.WordPiece(prefix="##")
        tr = trainers.WordPieceTrainer(vocab_size=int(sys.argv[3]), special_tokens=SPECIALS, show_progress=False)
        t0 = time.perf_counter()
        tok.train_from_iterator(text, trainer=tr)
        dt = time.perf_counter() - t0
        tok.save(sys.argv[4])
        print(f"hf   train   threads={threads}  {dt:.3f} s  vocab {tok.get_vocab_size()}")
    else:
        tok = Tokenizer.from_file(sys.argv[2])
        raw = open(sys.argv[3], "rb").read()
        text = raw.decode("utf-8", errors="replace").split("\n")
        reps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
        best = 1e30
        for _ in range(reps):
            t0 = time.perf_counter()
            encs = tok.encode_batch(text, add_special_tokens=False)
            best = min(best, time.perf_counter() - t0)
        ntok = sum(len(e.ids) for e in encs)
        print(f"hf   encode  threads={threads}  {best:.3f} s  {len(raw) / best / 1e6:.1f} MB/s  "
              f"{ntok / best / 1e6:.2f} Mtok/s  ({ntok} tokens, {len(raw)} bytes)")


if __name__ == "__main__":
    main()
