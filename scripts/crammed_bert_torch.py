#!/usr/bin/env python3
"""A small PyTorch module for crammed-bert checkpoints written by cram (`cram export` of a cram
checkpoint, or a cram checkpoint folder itself): model_config.json plus model.safetensors with
the reference's key names (SPEC §2.5). It implements the forward pass of SPEC §2.2 (pre-LN,
scaled sinusoidal positions, per-head interleaved fused QKV, GELU-GLU FFN, final LayerNorm,
decoder tied to the word embedding, no biases) and returns MLM logits for every position.
It needs no transformers; the folder `cram export` writes also loads in transformers with
AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True), through the
modeling_crammed_bert.py written beside it (src/eval/hf_remote/), which covers every variant.

usage as a check: crammed_bert_torch.py FOLDER LOGITS_FILE
  compares with the logits `cram export ... --reference-logits=LOGITS_FILE` wrote
  (exit 1 when max |diff| >= 1e-4).
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


class CrammedBert(torch.nn.Module):
    def __init__(self, cfg, state):
        super().__init__()
        self.H = cfg["hidden_size"]
        self.L = cfg["num_transformer_layers"]
        self.NH = cfg["attention"]["num_attention_heads"]
        self.eps = cfg.get("norm_eps", 1e-12)
        self.glu = cfg.get("nonlin", "GELUglu") == "GELUglu"
        self.max_pos = cfg["embedding"].get("max_seq_length", 128)
        if cfg["embedding"].get("pos_embedding", "scaled-sinusoidal") != "scaled-sinusoidal":
            raise ValueError("this small module implements scaled-sinusoidal positions only")
        if "encoder.embedding.word_embedding.weight" not in state:
            state["encoder.embedding.word_embedding.weight"] = state["decoder.weight"]
        self.p = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v) for k, v in state.items()})
        pos = torch.arange(self.max_pos, dtype=torch.float).unsqueeze(1)
        div = torch.exp(torch.arange(0, self.H, 2, dtype=torch.float) * (-math.log(10000.0) / self.H))
        pe = torch.zeros(self.max_pos, self.H)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe, persistent=False)

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def ln(self, x, name):
        return F.layer_norm(x, (self.H,), self.w(name + ".weight"), self.w(name + ".bias"), self.eps)

    def forward(self, ids, mask=None):
        B, S = ids.shape
        E = self.w("encoder.embedding.word_embedding.weight")
        x = E[ids] + self.w("encoder.embedding.pos_embedding.scale_factor") * self.pe[:S]
        x = self.ln(x, "encoder.embedding.norm")
        bias = 0.0 if mask is None else (1.0 - mask[:, None, None, :].float()) * -10000.0
        d = self.H // self.NH
        for l in range(self.L):
            p = f"encoder.layers.{l}."
            h = self.ln(x, p + "norm1")
            qkv = (h @ self.w(p + "attn.self_attention.query_key_value.weight").T).view(B, S, self.NH, 3 * d)
            q, k, v = qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:]
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, -1)
            y = (a @ v).transpose(1, 2).reshape(B, S, self.H)
            x = x + y @ self.w(p + "attn.dense.weight").T
            u = self.ln(x, p + "norm2") @ self.w(p + "ffn.dense_in.weight").T
            if self.glu:
                val, gate = u.chunk(2, dim=-1)
                u = val * F.gelu(gate)
            else:
                u = F.gelu(u)
            x = x + u @ self.w(p + "ffn.dense_out.weight").T
        x = self.ln(x, "encoder.final_norm")
        return x @ E.T


def load(folder):
    with open(os.path.join(folder, "model_config.json")) as f:
        cfg = json.load(f)
    state = {k: v.float() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()
             if not k.endswith("norm_factor")}
    return CrammedBert(cfg, state).eval()


if __name__ == "__main__":
    folder, ref = sys.argv[1], sys.argv[2]
    r = load_file(ref)
    model = load(folder)
    with torch.no_grad():
        out = model(r["ids"].long(), r["mask"])
    keep = r["mask"].bool()
    diff = (out - r["logits"])[keep].abs().max().item()
    print(f"crammed_bert_torch vs cram MLM logits ({int(keep.sum())} positions): max |diff| {diff:.3g}")
    sys.exit(0 if diff < 1e-4 else 1)
