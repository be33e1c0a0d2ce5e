#!/usr/bin/env python3
"""Writes the PyTorch reference states that tests/test_model.c checks cram's models against.

Two small models, written here from the behaviour in docs/SPEC.md (not imported from cramming):
  crammed: crammed-bert (pre-LN, scaled sinusoidal positions, per-head interleaved bias-free QKV,
           GLU-GELU FFN, final LN, tied decoder, sparse prediction of round(0.25*B*S) rows);
           L=2, H=64, 4 heads, I=256, V=512, B=2, S=16.
  bert:    post-LN BERT (BertForMaskedLM): learned positions, token type 0, biases, MLM head
           transform, tied decoder with bias, loss over all positions; L=2, H=32, 2 heads,
           I=128, V=512, 64 positions, B=2, S=16.
  classifier: crammed-bert encoder (L=1, H=32, 2 heads, I=64, V=128) with a padding mask, pooler
           zero_index, dense 32->48 + Tanh, head 48->3, cross-entropy; B=3, S=12; its fixture
           also holds "attention_mask" and its "logits" are the class logits.
Dropout is off (as in the bert-o4 pretraining recipe). Biases and norm affines are drawn at
random so that the forward pass exercises them. Masking follows the collator: 4 positions per
row (round(0.25*16)), 80/10/10 with mask id 6.

Per model, tests/fixtures/model/<name>.bin holds, in this order: the inputs ("input_ids",
"labels"), every parameter under its checkpoint name, "logits" (the decoded rows), "loss",
"grad.<param name>" for every parameter, and "step_losses" (the loss before each of 10 AdamW
steps: lr 1e-3, betas (0.9, 0.98), eps 1e-12, weight decay 0.01 except names containing bias,
LayerNorm.bias, LayerNorm.weight or norm; gradient clipping to global norm 0.5; same batch).

File format (little endian): magic "CRAMREF\\0", u32 version (1), u32 tensor count, then per
tensor: u32 name length, name bytes (no terminator), u32 dtype (0 float32, 1 int32), u32 ndim,
ndim x u32 dims, the data.

Run: /usr/bin/python3 scripts/make_model_reference.py  (PyTorch 1.13, CPU)
"""
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "model")
torch.manual_seed(0)
torch.set_num_threads(1)


class CrammedBert(torch.nn.Module):
    def __init__(self, V=512, H=64, L=2, NH=4, I=256, max_pos=16, eps=1e-12):
        super().__init__()
        self.H, self.NH, self.eps = H, NH, eps
        self.emb = torch.nn.Embedding(V, H, padding_idx=0)
        pe = torch.zeros(max_pos, H)
        pos = torch.arange(0, max_pos, dtype=torch.float).unsqueeze(1)
        div = torch.exp(torch.arange(0, H, 2).float() * (-math.log(10000.0) / H))
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe)
        self.scale = torch.nn.Parameter(torch.tensor([1.0 / H**0.5]))
        self.emb_norm = torch.nn.LayerNorm(H, eps=eps)
        self.layers = torch.nn.ModuleList()
        for _ in range(L):
            layer = torch.nn.Module()
            layer.norm1 = torch.nn.LayerNorm(H, eps=eps)
            layer.norm2 = torch.nn.LayerNorm(H, eps=eps)
            layer.qkv = torch.nn.Linear(H, 3 * H, bias=False)
            layer.dense = torch.nn.Linear(H, H, bias=False)
            layer.dense_in = torch.nn.Linear(H, I, bias=False)
            layer.dense_out = torch.nn.Linear(I // 2, H, bias=False)
            self.layers.append(layer)
        self.final_norm = torch.nn.LayerNorm(H, eps=eps)

    def names(self):
        p = {
            "encoder.embedding.word_embedding.weight": self.emb.weight,
            "encoder.embedding.pos_embedding.scale_factor": self.scale,
            "encoder.embedding.norm.weight": self.emb_norm.weight,
            "encoder.embedding.norm.bias": self.emb_norm.bias,
        }
        for i, l in enumerate(self.layers):
            q = f"encoder.layers.{i}."
            p[q + "norm1.weight"] = l.norm1.weight
            p[q + "norm1.bias"] = l.norm1.bias
            p[q + "norm2.weight"] = l.norm2.weight
            p[q + "norm2.bias"] = l.norm2.bias
            p[q + "attn.self_attention.query_key_value.weight"] = l.qkv.weight
            p[q + "attn.dense.weight"] = l.dense.weight
            p[q + "ffn.dense_in.weight"] = l.dense_in.weight
            p[q + "ffn.dense_out.weight"] = l.dense_out.weight
        p["encoder.final_norm.weight"] = self.final_norm.weight
        p["encoder.final_norm.bias"] = self.final_norm.bias
        return p

    def attention(self, l, h, mask=None):
        B, S, H = h.shape
        NH, HD = self.NH, H // self.NH
        qkv = l.qkv(h).view(B, S, NH, 3 * HD)
        q, k, v = qkv[..., :HD], qkv[..., HD : 2 * HD], qkv[..., 2 * HD :]
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # B NH S HD
        scores = q @ k.transpose(-1, -2) * HD**-0.5
        if mask is not None:
            scores = scores + ((1.0 - mask) * -10000.0)[:, None, None, :]
        a = torch.softmax(scores, dim=-1)
        return l.dense((a @ v).transpose(1, 2).reshape(B, S, H))

    def encode(self, ids, mask=None):
        B, S = ids.shape
        x = self.emb(ids) + self.scale * self.pe[:S]
        x = self.emb_norm(x)
        for l in self.layers:
            x = x + self.attention(l, l.norm1(x), mask)
            u = l.dense_in(l.norm2(x))
            val, gate = u.chunk(2, dim=-1)
            x = x + l.dense_out(torch.nn.functional.gelu(gate) * val)
        return self.final_norm(x)

    def forward(self, ids, labels, sparse=0.25):
        B, S = ids.shape
        x = self.encode(ids).view(B * S, -1)
        lab = labels.view(-1)
        n = round(sparse * lab.shape[0])
        idx = torch.sort((lab != -100).int(), stable=True).indices[-n:]
        logits = x[idx] @ self.emb.weight.t()
        return logits, torch.nn.functional.cross_entropy(logits, lab[idx])


class CrammedClassifier(CrammedBert):
    """crammed-bert encoder + pooler (zero_index) + dense/Tanh + head, with a padding mask."""

    def __init__(self, num_labels=3, head_dim=48, **kw):
        super().__init__(**kw)
        self.pool_dense = torch.nn.Linear(self.H, head_dim)
        self.head = torch.nn.Linear(head_dim, num_labels)
        self.mask = None

    def names(self):
        p = super().names()
        p["pooler.dense.weight"] = self.pool_dense.weight
        p["pooler.dense.bias"] = self.pool_dense.bias
        p["head.weight"] = self.head.weight
        p["head.bias"] = self.head.bias
        return p

    def forward(self, ids, labels):
        x = self.encode(ids, self.mask)[:, 0]
        logits = self.head(torch.tanh(self.pool_dense(x)))
        return logits, torch.nn.functional.cross_entropy(logits, labels)


class PostLNBert(torch.nn.Module):
    def __init__(self, V=512, H=32, L=2, NH=2, I=128, max_pos=64, types=2, eps=1e-12):
        super().__init__()
        self.H, self.NH = H, NH
        self.word = torch.nn.Embedding(V, H)
        self.pos = torch.nn.Embedding(max_pos, H)
        self.ttype = torch.nn.Embedding(types, H)
        self.emb_ln = torch.nn.LayerNorm(H, eps=eps)
        self.layers = torch.nn.ModuleList()
        for _ in range(L):
            l = torch.nn.Module()
            l.q, l.k, l.v = (torch.nn.Linear(H, H) for _ in range(3))
            l.o = torch.nn.Linear(H, H)
            l.ln1 = torch.nn.LayerNorm(H, eps=eps)
            l.fi = torch.nn.Linear(H, I)
            l.fo = torch.nn.Linear(I, H)
            l.ln2 = torch.nn.LayerNorm(H, eps=eps)
            self.layers.append(l)
        self.t_dense = torch.nn.Linear(H, H)
        self.t_ln = torch.nn.LayerNorm(H, eps=eps)
        self.dec_bias = torch.nn.Parameter(torch.zeros(V))

    def names(self):
        e = "bert.embeddings."
        p = {
            e + "word_embeddings.weight": self.word.weight,
            e + "position_embeddings.weight": self.pos.weight,
            e + "token_type_embeddings.weight": self.ttype.weight,
            e + "LayerNorm.weight": self.emb_ln.weight,
            e + "LayerNorm.bias": self.emb_ln.bias,
        }
        for i, l in enumerate(self.layers):
            q = f"bert.encoder.layer.{i}."
            for nm, mod in (("attention.self.query", l.q), ("attention.self.key", l.k),
                            ("attention.self.value", l.v), ("attention.output.dense", l.o),
                            ("attention.output.LayerNorm", l.ln1), ("intermediate.dense", l.fi),
                            ("output.dense", l.fo), ("output.LayerNorm", l.ln2)):
                p[q + nm + ".weight"] = mod.weight
                p[q + nm + ".bias"] = mod.bias
        p["cls.predictions.transform.dense.weight"] = self.t_dense.weight
        p["cls.predictions.transform.dense.bias"] = self.t_dense.bias
        p["cls.predictions.transform.LayerNorm.weight"] = self.t_ln.weight
        p["cls.predictions.transform.LayerNorm.bias"] = self.t_ln.bias
        p["cls.predictions.bias"] = self.dec_bias
        return p

    def forward(self, ids, labels):
        B, S = ids.shape
        H, NH, HD = self.H, self.NH, self.H // self.NH
        x = self.word(ids) + self.pos.weight[:S] + self.ttype.weight[0]
        x = self.emb_ln(x)
        for l in self.layers:
            q, k, v = (m(x).view(B, S, NH, HD).transpose(1, 2) for m in (l.q, l.k, l.v))
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HD), dim=-1)
            x = l.ln1(x + l.o((a @ v).transpose(1, 2).reshape(B, S, H)))
            x = l.ln2(x + l.fo(torch.nn.functional.gelu(l.fi(x))))
        t = self.t_ln(torch.nn.functional.gelu(self.t_dense(x)))
        logits = (t @ self.word.weight.t() + self.dec_bias).view(B * S, -1)
        return logits, torch.nn.functional.cross_entropy(logits, labels.view(-1))


def randomize(model):
    with torch.no_grad():
        for name, p in model.names().items():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
            elif "scale_factor" not in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn_like(p))


def mlm_batch(B, S, V, mask_id=6, rate=0.25):
    ids = torch.randint(7, V, (B, S))
    labels = torch.full((B, S), -100)
    m = round(rate * S)
    n_mask, n_rand = round(0.8 * m), round(0.9 * m) - round(0.8 * m)
    for b in range(B):
        pos = torch.randperm(S)[:m]
        labels[b, pos] = ids[b, pos]
        ids[b, pos[:n_mask]] = mask_id
        ids[b, pos[n_mask : n_mask + n_rand]] = torch.randint(0, V, (n_rand,))
    ids[0, 3] = 0  # one pad token, to exercise padding_idx
    return ids, labels


def write(path, tensors):
    with open(path, "wb") as f:
        f.write(b"CRAMREF\0")
        f.write(struct.pack("<II", 1, len(tensors)))
        for name, t in tensors:
            t = t.detach().contiguous()
            is_int = t.dtype in (torch.int64, torch.int32)
            t = t.to(torch.int32 if is_int else torch.float32)
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)) + nb)
            f.write(struct.pack("<II", 1 if is_int else 0, t.dim()))
            f.write(struct.pack(f"<{t.dim()}I", *t.shape))
            f.write(t.numpy().tobytes())


def make(name, model, ids, labels, extra=()):
    randomize(model)
    params = model.names()
    tensors = [("input_ids", ids), ("labels", labels)] + list(extra)
    tensors += [(n, p.detach().clone()) for n, p in params.items()]
    logits, loss = model(ids, labels)
    loss.backward()
    tensors += [("logits", logits.detach().clone()), ("loss", loss.detach().reshape(1))]
    tensors += [("grad." + n, p.grad.clone()) for n, p in params.items()]
    keys = ["bias", "LayerNorm.bias", "LayerNorm.weight", "norm"]
    decay = [p for n, p in params.items() if not any(k in n for k in keys)]
    no_decay = [p for n, p in params.items() if any(k in n for k in keys)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.98), eps=1e-12, foreach=False)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        _, loss = model(ids, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 0.5)
        opt.step()
        losses.append(loss.item())
    tensors.append(("step_losses", torch.tensor(losses)))
    os.makedirs(OUT, exist_ok=True)
    write(os.path.join(OUT, name + ".bin"), tensors)
    print(name, "loss", tensors[-1][1].tolist())


if __name__ == "__main__":
    ids, labels = mlm_batch(2, 16, 512)
    make("crammed", CrammedBert(), ids, labels)
    ids, labels = mlm_batch(2, 16, 512)
    make("bert", PostLNBert(), ids, labels)
    cls = CrammedClassifier(V=128, H=32, L=1, NH=2, I=64, max_pos=16)
    ids = torch.randint(7, 128, (3, 12))
    mask = torch.ones(3, 12)
    mask[1, 8:] = 0.0
    mask[2, 5:] = 0.0
    ids[mask == 0] = 0
    cls.mask = mask
    make("classifier", cls, ids, torch.tensor([2, 0, 1]), extra=[("attention_mask", mask)])
