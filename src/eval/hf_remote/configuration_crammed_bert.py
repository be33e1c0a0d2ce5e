"""Configuration of a crammed-bert folder written by `cram export`.

config.json carries the architecture under "arch", in the layout of the reference
implementation's arch config (the same keys as the checkpoint's model_config.json).
CrammedBertConfig keeps that dictionary as it is and adds the names other transformers code
looks for (hidden_size, num_hidden_layers, vocab_size, ...), derived from it. The model reads
"arch" only; to change the model, change "arch".

This file is written by cram (src/eval/hf_remote/ in its repository) and loaded by transformers
with trust_remote_code=True.
"""
from transformers import PretrainedConfig


def arch_value(arch, path, default):
    """arch["a"]["b"] for path "a.b"; default when a key is missing or null."""
    node = arch
    for key in path.split("."):
        if not isinstance(node, dict) or node.get(key) is None:
            return default
        node = node[key]
    return node


class CrammedBertConfig(PretrainedConfig):
    model_type = "crammedBERT"

    def __init__(self, arch=None, **kwargs):
        arch = dict(arch or {})
        self.arch = arch
        # the common names, always recomputed from arch so that they cannot disagree with it
        kwargs["vocab_size"] = int(arch_value(arch, "embedding.vocab_size", 0))
        kwargs["hidden_size"] = int(arch_value(arch, "hidden_size", 768))
        kwargs["num_hidden_layers"] = int(arch_value(arch, "num_transformer_layers", 16))
        kwargs["num_attention_heads"] = int(arch_value(arch, "attention.num_attention_heads", 12))
        kwargs["intermediate_size"] = int(arch_value(arch, "intermed_size", 3072))
        kwargs["max_position_embeddings"] = int(arch_value(arch, "embedding.max_seq_length", 128))
        kwargs["layer_norm_eps"] = float(arch_value(arch, "norm_eps", 1e-12))
        kwargs["pad_token_id"] = int(arch_value(arch, "embedding.pad_token_id", 0))
        # the decoder always reuses the word embedding (cram accepts tie_weights=True only)
        kwargs["tie_word_embeddings"] = True
        super().__init__(**kwargs)
