"""crammed-bert (the reference's ScriptableCrammedBERT) for transformers.

`cram export` writes this file beside model.safetensors and config.json, so that
    AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True)
builds the model and loads the weights under the names cram and the reference give them:

  encoder.embedding.word_embedding.weight      [V, H], also the decoder matrix (tied)
  encoder.embedding.pos_embedding.scale_factor [1]     scaled-sinusoidal positions
  encoder.embedding.pos_embedding.embedding.weight     learned positions
  encoder.embedding.norm.{weight,bias}                 LayerNorm of the embedding sum
  encoder.layers.N.norm1, .norm2                       the two pre-block LayerNorms
  encoder.layers.N.attn.self_attention.query_key_value fused QKV, per head [q | k | v]
  encoder.layers.N.attn.dense                          attention output projection
  encoder.layers.N.ffn.dense_in, .dense_out            feed-forward (GELU, or GELU-gated GLU)
  encoder.final_norm                                   LayerNorm after the last block
  prediction_head.dense, .norm                         optional MLM transform
  decoder.weight (= word embedding), decoder.bias      MLM logits

The arithmetic is cram's (src/model/model_pass.c): every block is pre-LN,
    mid = x + attn(LN1(x));  x' = mid + ffn(LN2(mid)),
attention scores are q.k / sqrt(head_dim) plus (1 - mask) * -10000 on padded keys, GELU is the
exact (erf) one, and the GLU multiplies the first half of dense_in's output by GELU of the
second half. Dropout sits where cram has it (after the embedding norm, on the attention
probabilities, on both residual branches) and is active in train mode only.
"""
import math

import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput

from .configuration_crammed_bert import CrammedBertConfig, arch_value


class _Arch:
    """The architecture as cram reads it (src/model/model_config.c), defaults included."""

    def __init__(self, config):
        a = config.arch
        self.L = int(arch_value(a, "num_transformer_layers", 16))
        self.H = int(arch_value(a, "hidden_size", 768))
        self.I = int(arch_value(a, "intermed_size", 3072))
        self.NH = int(arch_value(a, "attention.num_attention_heads", 12))
        self.V = int(arch_value(a, "embedding.vocab_size", 0))
        self.eps = float(arch_value(a, "norm_eps", 1e-12))
        self.glu = arch_value(a, "nonlin", "GELUglu") == "GELUglu"
        pos = arch_value(a, "embedding.pos_embedding", "scaled-sinusoidal")
        self.pos = pos if pos in ("scaled-sinusoidal", "sinusoidal", "learned") else "none"
        self.max_pos = int(arch_value(a, "embedding.max_seq_length", 128))
        self.emb_norm = bool(arch_value(a, "embedding.normalization", True))
        self.emb_drop = float(arch_value(a, "embedding.dropout_prob", 0.1))
        self.pad_id = int(arch_value(a, "embedding.pad_token_id", 0))
        self.attn_drop = float(arch_value(a, "attention.dropout_prob", 0.1))
        self.hidden_drop = float(arch_value(a, "hidden_dropout_prob", 0.1))
        self.qkv_bias = bool(arch_value(a, "attention.qkv_bias", False))
        self.use_bias = bool(arch_value(a, "use_bias", False))
        self.final_norm = bool(arch_value(a, "final_norm", True))
        self.head_transform = not bool(arch_value(a, "skip_head_transform", True))
        self.decoder_bias = bool(arch_value(a, "decoder_bias", False))
        if self.H % self.NH:
            raise ValueError(f"hidden_size {self.H} is not a multiple of {self.NH} heads")
        if arch_value(a, "embedding.embedding_dim", self.H) != self.H:
            raise ValueError("embedding.embedding_dim must equal hidden_size")
        # the std a fresh parameter is drawn with (only used for weights the folder lacks)
        kind, std = arch_value(a, "init.type", "normal"), float(arch_value(a, "init.std", 0.02))
        self.init_std = {
            "small": math.sqrt(2.0 / (5.0 * self.H)),
            "megatron": math.sqrt(1.0 / (3.0 * self.H)),
            "wang": 2.0 / self.L / math.sqrt(self.H),
            "deepnorm": (8.0 * self.L) ** -0.25,
        }.get(kind, std)


def sinusoid_table(S, H, device):
    """[S, H] positions: column 2i holds sin(p * w_i), column 2i+1 cos(p * w_i), with
    w_i = exp(-2i * ln(10000) / H), computed in float32 as cram does."""
    i = torch.arange(H // 2, dtype=torch.float32, device=device)
    w = torch.exp(2.0 * i * (-math.log(10000.0) / H))
    angle = torch.arange(S, dtype=torch.float32, device=device)[:, None] * w[None, :]
    table = torch.zeros(S, H, dtype=torch.float32, device=device)
    table[:, 0 : 2 * (H // 2) : 2] = torch.sin(angle)
    table[:, 1 : 2 * (H // 2) : 2] = torch.cos(angle)
    return table


class LearnedPositions(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.embedding = nn.Embedding(arch.max_pos, arch.H)

    def forward(self, S, device):
        return self.embedding.weight[:S]


class ScaledSinusoidalPositions(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.H = arch.H
        self.scale_factor = nn.Parameter(torch.full((1,), 1.0 / math.sqrt(arch.H)))

    def forward(self, S, device):
        return self.scale_factor * sinusoid_table(S, self.H, device)


class SinusoidalPositions(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.H = arch.H

    def forward(self, S, device):
        return sinusoid_table(S, self.H, device)


class CrammedEmbedding(nn.Module):
    def __init__(self, arch):
        super().__init__()
        # the pad row gets no gradient, as in cram and the reference
        pad = arch.pad_id if 0 <= arch.pad_id < arch.V else None
        self.word_embedding = nn.Embedding(arch.V, arch.H, padding_idx=pad)
        positions = {"learned": LearnedPositions, "scaled-sinusoidal": ScaledSinusoidalPositions,
                     "sinusoidal": SinusoidalPositions}.get(arch.pos)
        self.pos_embedding = positions(arch) if positions else None
        self.norm = nn.LayerNorm(arch.H, eps=arch.eps) if arch.emb_norm else None
        self.dropout = nn.Dropout(arch.emb_drop)

    def forward(self, input_ids):
        x = self.word_embedding(input_ids)
        if self.pos_embedding is not None:
            x = x + self.pos_embedding(input_ids.shape[1], input_ids.device).to(x.dtype)
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)


class FusedQKV(nn.Module):
    """Holds the fused projection under the reference's name (attn.self_attention.*)."""

    def __init__(self, arch):
        super().__init__()
        self.query_key_value = nn.Linear(arch.H, 3 * arch.H, bias=arch.qkv_bias)


class CrammedAttention(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.NH, self.HD = arch.NH, arch.H // arch.NH
        self.self_attention = FusedQKV(arch)
        self.dense = nn.Linear(arch.H, arch.H, bias=arch.use_bias)
        self.dropout = nn.Dropout(arch.attn_drop)

    def forward(self, x, key_bias):
        B, S, H = x.shape
        qkv = self.self_attention.query_key_value(x).view(B, S, self.NH, 3 * self.HD)
        q, k, v = (t.transpose(1, 2) for t in qkv.split(self.HD, dim=-1))  # [B, NH, S, HD]
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.HD))
        if key_bias is not None:
            scores = scores + key_bias
        probs = self.dropout(torch.softmax(scores, dim=-1))
        y = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, H)
        return self.dense(y)


class CrammedFFN(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.glu = arch.glu
        self.dense_in = nn.Linear(arch.H, arch.I, bias=arch.use_bias)
        self.dense_out = nn.Linear(arch.I // 2 if arch.glu else arch.I, arch.H, bias=arch.use_bias)

    def forward(self, x):
        u = self.dense_in(x)
        if self.glu:
            value, gate = u.chunk(2, dim=-1)
            u = value * F.gelu(gate)
        else:
            u = F.gelu(u)
        return self.dense_out(u)


class CrammedBlock(nn.Module):
    def __init__(self, arch):
        super().__init__()
        self.norm1 = nn.LayerNorm(arch.H, eps=arch.eps)
        self.attn = CrammedAttention(arch)
        self.norm2 = nn.LayerNorm(arch.H, eps=arch.eps)
        self.ffn = CrammedFFN(arch)
        self.dropout = nn.Dropout(arch.hidden_drop)

    def forward(self, x, key_bias):
        x = x + self.dropout(self.attn(self.norm1(x), key_bias))
        return x + self.dropout(self.ffn(self.norm2(x)))


class CrammedBertPreTrainedModel(PreTrainedModel):
    config_class = CrammedBertConfig
    base_model_prefix = "encoder"
    supports_gradient_checkpointing = False
    _no_split_modules = ["CrammedBlock"]

    def _init_weights(self, module):
        # fresh values only for what the folder does not hold (transformers loads the rest)
        std = _Arch(self.config).init_std
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, ScaledSinusoidalPositions):
            nn.init.constant_(module.scale_factor, 1.0 / math.sqrt(module.H))


def padding_bias(attention_mask, dtype):
    """[B, S] mask (1 keep, 0 pad) -> [B, 1, 1, S] additive bias on the keys, as cram adds it."""
    if attention_mask is None:
        return None
    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * -10000.0


class CrammedBertModel(CrammedBertPreTrainedModel):
    """The encoder: embedding, the pre-LN blocks and the final norm. last_hidden_state is what
    the MLM head reads."""

    # the MLM parts of a folder, when only the encoder is loaded (AutoModel)
    _keys_to_ignore_on_load_unexpected = [r"^decoder\.", r"^prediction_head\."]

    def __init__(self, config):
        super().__init__(config)
        arch = _Arch(config)
        self.embedding = CrammedEmbedding(arch)
        self.layers = nn.ModuleList(CrammedBlock(arch) for _ in range(arch.L))
        self.final_norm = nn.LayerNorm(arch.H, eps=arch.eps) if arch.final_norm else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embedding.word_embedding

    def set_input_embeddings(self, value):
        self.embedding.word_embedding = value

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        # token_type_ids: crammed-bert has no segment embedding; tokenizers may still send them
        x = self.embedding(input_ids)
        bias = padding_bias(attention_mask, x.dtype)
        states = [x] if output_hidden_states else None
        for block in self.layers:
            x = block(x, bias)
            if states is not None:
                states.append(x)
        if self.final_norm is not None:
            x = self.final_norm(x)
        if return_dict is False:
            return (x,) + ((tuple(states),) if states is not None else ())
        return BaseModelOutput(last_hidden_state=x,
                               hidden_states=tuple(states) if states is not None else None)


class CrammedPredictionHead(nn.Module):
    """dense -> GELU -> LayerNorm before the decoder (skip_head_transform=False)."""

    def __init__(self, arch):
        super().__init__()
        self.dense = nn.Linear(arch.H, arch.H, bias=arch.use_bias)
        self.norm = nn.LayerNorm(arch.H, eps=arch.eps)

    def forward(self, x):
        return self.norm(F.gelu(self.dense(x)))


_TIED = {"decoder.weight": "encoder.embedding.word_embedding.weight"}


class CrammedBertForMaskedLM(CrammedBertPreTrainedModel):
    # transformers 5 maps each tied parameter to its source; 4.x lists the tied parameters
    _tied_weights_keys = _TIED if int(transformers.__version__.split(".")[0]) >= 5 else list(_TIED)

    def __init__(self, config):
        super().__init__(config)
        arch = _Arch(config)
        self.encoder = CrammedBertModel(config)
        self.prediction_head = CrammedPredictionHead(arch) if arch.head_transform else None
        self.decoder = nn.Linear(arch.H, arch.V, bias=arch.decoder_bias)
        self.decoder.weight = self.encoder.embedding.word_embedding.weight
        self.post_init()

    def get_input_embeddings(self):
        return self.encoder.embedding.word_embedding

    def set_input_embeddings(self, value):
        self.encoder.embedding.word_embedding = value

    def get_output_embeddings(self):
        return self.decoder

    def set_output_embeddings(self, value):
        self.decoder = value

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None, return_dict=None, **kwargs):
        out = self.encoder(input_ids, attention_mask=attention_mask,
                           output_hidden_states=output_hidden_states)
        h = out.last_hidden_state
        if self.prediction_head is not None:
            h = self.prediction_head(h)
        logits = self.decoder(h)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1),
                                   ignore_index=-100)
        if return_dict is False:
            rest = (logits,) + ((out.hidden_states,) if out.hidden_states is not None else ())
            return ((loss,) + rest) if loss is not None else rest
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=out.hidden_states)
