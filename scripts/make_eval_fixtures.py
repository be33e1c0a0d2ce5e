#!/usr/bin/env python3
"""Small fixtures for tests/cli_eval.sh, so `cram eval` runs end to end anywhere:
  tests/fixtures/eval/tiny_bert/   a random 1-layer post-LN BERT (H=16) in Hugging Face layout
                                   (config.json, vocab.txt, model.safetensors)
  tests/fixtures/eval/tiny_crammed/ a random 1-layer crammed-bert (H=16) as cram writes it
                                   (model_config.json, model.safetensors with the reference's
                                   names, vocab.txt)
  tests/fixtures/eval/glue_tiny/   RTE, CoLA and STS-B in the standard glue_data layout,
                                   40 train / 16 dev rows each, made of the vocabulary's words
Run: python3 scripts/make_eval_fixtures.py   (numpy, safetensors)
"""
import json
import os

import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "eval")
rng = np.random.default_rng(7)
words = ("the a cat dog sat ran on under mat table big small red blue is was not and "
         "bird sings loud quiet house tree old new").split()
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ","] + words
H, I, L, P = 16, 32, 1, 136


def sent():
    return " ".join(rng.choice(words, int(rng.integers(3, 12)))) + " ."


def w(*shape):
    return (rng.normal(0, 0.02, shape)).astype(np.float32)


def tiny_bert():
    d = os.path.join(ROOT, "tiny_bert")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    cfg = dict(architectures=["BertForMaskedLM"], model_type="bert", hidden_size=H, num_hidden_layers=L,
               num_attention_heads=2, intermediate_size=I, vocab_size=len(vocab), max_position_embeddings=P,
               type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu", hidden_dropout_prob=0.1,
               attention_probs_dropout_prob=0.1, initializer_range=0.02, pad_token_id=0)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    t = {"embeddings.word_embeddings.weight": w(len(vocab), H), "embeddings.position_embeddings.weight": w(P, H),
         "embeddings.token_type_embeddings.weight": w(2, H),
         "embeddings.LayerNorm.weight": np.ones(H, np.float32), "embeddings.LayerNorm.bias": np.zeros(H, np.float32)}
    for l in range(L):
        p = f"encoder.layer.{l}."
        for n in ["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"]:
            t[p + n + ".weight"], t[p + n + ".bias"] = w(H, H), np.zeros(H, np.float32)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = w(I, H), np.zeros(I, np.float32)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = w(H, I), np.zeros(H, np.float32)
        for n in ["attention.output.LayerNorm", "output.LayerNorm"]:
            t[p + n + ".weight"], t[p + n + ".bias"] = np.ones(H, np.float32), np.zeros(H, np.float32)
    save_file(t, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})


def glue_tiny():
    g = os.path.join(ROOT, "glue_tiny")
    for task in ["RTE", "CoLA", "STS-B"]:
        os.makedirs(os.path.join(g, task), exist_ok=True)
        for split, n in [("train", 40), ("dev", 16)]:
            rows = []
            for i in range(n):
                a, b = sent(), sent()
                if task == "RTE":
                    rows.append(f"{i}\t{a}\t{b}\t{rng.choice(['entailment', 'not_entailment'])}")
                elif task == "CoLA":
                    rows.append(f"tiny\t{int(rng.integers(0, 2))}\t\t{a}")
                else:
                    rows.append(f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{a}\t{b}\t{rng.random() * 5:.3f}")
            head = {"RTE": "index\tsentence1\tsentence2\tlabel\n", "CoLA": "",
                    "STS-B": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"}[task]
            with open(os.path.join(g, task, f"{split}.tsv"), "w") as f:
                f.write(head + "\n".join(rows) + "\n")


def tiny_crammed():
    d = os.path.join(ROOT, "tiny_crammed")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    cfg = dict(architectures=["ScriptableCrammedBERT"], num_transformer_layers=L, hidden_size=H,
               intermed_size=I, hidden_dropout_prob=0.1, norm="LayerNorm", norm_eps=1e-12, nonlin="GELUglu",
               tie_weights=True, decoder_bias=False, sparse_prediction=0.25, loss="cross-entropy",
               objective_layout="MLM", final_norm=True, skip_head_transform=True, use_bias=False,
               embedding=dict(vocab_size=len(vocab), pos_embedding="scaled-sinusoidal", dropout_prob=0.1,
                              pad_token_id=0, max_seq_length=128, embedding_dim=H, normalization=True),
               attention=dict(type="self-attention", causal_attention=False, num_attention_heads=2,
                              dropout_prob=0.1, skip_output_projection=False, qkv_bias=False,
                              rotary_embedding=False, sequence_op="torch-softmax"),
               init=dict(type="normal", std=0.02), ffn_layer_frequency=1, num_labels=None,
               classification_head=dict(pooler="avg", include_ff_layer=True, head_dim=24, nonlin="Tanh",
                                        classifier_dropout=0.1))
    with open(os.path.join(d, "model_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
    e = w(len(vocab), H)
    t = {"encoder.embedding.word_embedding.weight": e, "decoder.weight": e.copy(),
         "encoder.embedding.pos_embedding.scale_factor": np.array([H ** -0.5], np.float32),
         "encoder.embedding.norm.weight": 1 + w(H), "encoder.embedding.norm.bias": w(H),
         "encoder.final_norm.weight": 1 + w(H), "encoder.final_norm.bias": w(H)}
    for l in range(L):
        p = f"encoder.layers.{l}."
        for n in ["norm1", "norm2"]:
            t[p + n + ".weight"], t[p + n + ".bias"] = 1 + w(H), w(H)
        t[p + "attn.self_attention.query_key_value.weight"] = w(3 * H, H) * 10
        t[p + "attn.self_attention.norm_factor"] = np.array(1 / np.sqrt(H // 2), np.float32)
        t[p + "attn.dense.weight"] = w(H, H) * 10
        t[p + "ffn.dense_in.weight"] = w(I, H) * 10
        t[p + "ffn.dense_out.weight"] = w(H, I // 2) * 10
    save_file(t, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})


tiny_bert()
tiny_crammed()
glue_tiny()
print("wrote", ROOT + "/tiny_bert and glue_tiny")
