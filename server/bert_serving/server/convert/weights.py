"""One naming for BERT weights, Google's, whatever the checkpoint format or family.

Google's TF names are the canonical ones (kernels stored [in, out], LayerNorm
`gamma`/`beta`); Hugging Face state dicts are renamed and transposed into them.
RoBERTa, XLM-R and CamemBERT use BERT's names under `roberta.`; ELECTRA adds
`embeddings_project`; DistilBERT's own names (`transformer.layer.N.attention.q_lin`,
`sa_layer_norm`, `ffn.lin1` ...) are mapped onto BERT's, which they mirror, and so
are MPNet's (`attention.attn.q`, `attention.LayerNorm` ...), whose one tensor of its
own, the relative attention bias table, is kept as `RELATIVE_ATTENTION_BIAS`.
ModernBERT's layers are not BERT's: its names (`layers.N.attn.Wqkv`, `mlp.Wi`,
`attn_norm`, `final_norm` ...) keep their own leaves under `bert/encoder/layer_N/`
(`bert/encoder/final_norm`), norms as `gamma`/`beta`; its token embeddings and their
norm take BERT's `word_embeddings` and `LayerNorm` names. Qwen3's and Qwen2's
(`embed_tokens`, `layers.N.self_attn.q_proj`, `input_layernorm`, `mlp.gate_proj`,
`norm` ...) likewise: `word_embeddings`, their own leaves under `bert/encoder/layer_N/`,
and the final `norm` as `bert/encoder/final_norm`; RMSNorm weights as `gamma`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import UnsupportedModelError
from .bert_config import BertConfig

__all__ = ["CLASSIFIER", "RELATIVE_ATTENTION_BIAS", "BertWeights", "from_google_names",
           "from_hf_state_dict"]

EMBEDDINGS = "bert/embeddings"
EMBEDDINGS_PROJECT = "bert/embeddings_project"
"""ELECTRA's Linear from its embedding width to the hidden size."""
POOLER = "bert/pooler/dense"
RELATIVE_ATTENTION_BIAS = "bert/encoder/relative_attention_bias"
"""MPNet's [num_buckets, num_heads] table, shared by every layer."""
CLASSIFIER = "classifier"
"""Sequence-classification heads keep their own names: `classifier/kernel` (BERT's Linear),
`classifier/dense/...` and `classifier/out_proj/...` (the RoBERTa family's and ELECTRA's),
`pre_classifier/...` then `classifier/...` (DistilBERT's)."""


def layer_prefix(index: int) -> str:
    return f"bert/encoder/layer_{index}"


@dataclass(frozen=True)
class BertWeights:
    """Float32 arrays under Google's names, checked against a `BertConfig`."""

    tensors: Mapping[str, np.ndarray]
    source: str

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name]
        except KeyError:
            raise UnsupportedModelError(
                f"{self.source} has no weight {name!r}: is it a BERT checkpoint of the "
                "size its config says?"
            ) from None

    def has(self, name: str) -> bool:
        return name in self.tensors

    def check_shapes(self, config: BertConfig, num_layers: int) -> None:
        """Fail early, naming the tensor, if shapes disagree with the config."""
        hidden, inner = config.hidden_size, config.intermediate_size
        width = config.embedding_width
        expected = {
            f"{EMBEDDINGS}/word_embeddings": (config.vocab_size, width),
            f"{EMBEDDINGS}/position_embeddings": (config.max_position_embeddings, width),
        }
        if config.type_vocab_size:
            expected[f"{EMBEDDINGS}/token_type_embeddings"] = (config.type_vocab_size, width)
        if width != hidden:
            expected[f"{EMBEDDINGS_PROJECT}/kernel"] = (width, hidden)
        if config.relative_attention_num_buckets:
            expected[RELATIVE_ATTENTION_BIAS] = (config.relative_attention_num_buckets,
                                                 config.num_attention_heads)
        for i in range(num_layers):
            p = layer_prefix(i)
            for name in ("query", "key", "value"):
                expected[f"{p}/attention/self/{name}/kernel"] = (hidden, hidden)
            expected[f"{p}/attention/output/dense/kernel"] = (hidden, hidden)
            expected[f"{p}/intermediate/dense/kernel"] = (hidden, inner)
            expected[f"{p}/output/dense/kernel"] = (inner, hidden)
        self.check_named_shapes(expected)

    def check_named_shapes(self, expected: Mapping[str, tuple[int, ...]]) -> None:
        """Fail, naming the tensor, if one of `expected` is missing or shaped otherwise."""
        for name, shape in expected.items():
            actual = tuple(self[name].shape)
            if actual != shape:
                raise UnsupportedModelError(
                    f"{self.source}: weight {name!r} has shape {actual}, but the config "
                    f"implies {shape}: do the config and the weights belong together?"
                )


def from_google_names(tensors: Mapping[str, np.ndarray], source: str) -> BertWeights:
    """Keep the `bert/...` tensors of a Google checkpoint (drop `cls/...`, `global_step`)."""
    kept = {
        name: np.asarray(array, dtype=np.float32)
        for name, array in tensors.items()
        if name.startswith("bert/")
    }
    if not kept:
        raise UnsupportedModelError(
            f"{source} holds no 'bert/...' variables: not a Google BERT checkpoint"
        )
    return BertWeights(kept, source)


_HF_PREFIX = re.compile(r"^(bert|model|roberta|electra|distilbert|mpnet)\.")
_HF_LAYER = re.compile(r"^encoder/layer/(\d+)/")
# DistilBERT's names for the parts of a BERT layer (same maths, post-LayerNorm).
_DISTILBERT_NAMES = (
    (re.compile(r"^transformer\.layer\."), "encoder.layer."),
    (re.compile(r"\.attention\.q_lin\."), ".attention.self.query."),
    (re.compile(r"\.attention\.k_lin\."), ".attention.self.key."),
    (re.compile(r"\.attention\.v_lin\."), ".attention.self.value."),
    (re.compile(r"\.attention\.out_lin\."), ".attention.output.dense."),
    (re.compile(r"\.sa_layer_norm\."), ".attention.output.LayerNorm."),
    (re.compile(r"\.ffn\.lin1\."), ".intermediate.dense."),
    (re.compile(r"\.ffn\.lin2\."), ".output.dense."),
    (re.compile(r"\.output_layer_norm\."), ".output.LayerNorm."),
)
# ModernBERT's names: its embeddings onto BERT's, its layers kept under BERT's prefixes.
_MODERNBERT_NAMES = (
    (re.compile(r"^embeddings\.tok_embeddings\."), "embeddings.word_embeddings."),
    (re.compile(r"^embeddings\.norm\."), "embeddings.LayerNorm."),
    (re.compile(r"^layers\."), "encoder.layer."),
    (re.compile(r"^final_norm\."), "encoder.final_norm."),
)
# Qwen's names outside its layers (`layers.N.` is renamed as ModernBERT's is).
_QWEN_NAMES = (
    (re.compile(r"^embed_tokens\."), "embeddings.word_embeddings."),
    (re.compile(r"^norm\."), "encoder.final_norm."),
)
# ModernBERT's classification head (beside `model.`): its Linear and LayerNorm before
# `classifier`, under the names heads.py reads (`pre_classifier`, as DistilBERT's).
_MODERNBERT_HEAD_NAMES = (
    (re.compile(r"^head\.dense\."), "pre_classifier."),
    (re.compile(r"^head\.norm\."), "pre_classifier.norm."),
)
# MPNet's names for the attention parts of a BERT layer (the rest is BERT's own).
_MPNET_NAMES = (
    (re.compile(r"\.attention\.attn\.q\."), ".attention.self.query."),
    (re.compile(r"\.attention\.attn\.k\."), ".attention.self.key."),
    (re.compile(r"\.attention\.attn\.v\."), ".attention.self.value."),
    (re.compile(r"\.attention\.attn\.o\."), ".attention.output.dense."),
    (re.compile(r"\.attention\.LayerNorm\."), ".attention.output.LayerNorm."),
)


def _bert_dotted_name(hf_name: str) -> str:
    """A family's dotted name as BERT's, without the model prefix."""
    name = _HF_PREFIX.sub("", hf_name)
    if name.startswith("transformer.layer."):
        for pattern, replacement in _DISTILBERT_NAMES:
            name = pattern.sub(replacement, name)
    elif name.startswith(("embed_tokens.", "norm.")):
        for pattern, replacement in _QWEN_NAMES:
            name = pattern.sub(replacement, name)
    elif name.startswith(("layers.", "final_norm.", "embeddings.tok_embeddings.",
                          "embeddings.norm.")):
        for pattern, replacement in _MODERNBERT_NAMES:
            name = pattern.sub(replacement, name)
    elif name.startswith("head."):
        for pattern, replacement in _MODERNBERT_HEAD_NAMES:
            name = pattern.sub(replacement, name)
    elif ".attention.attn." in name or ".attention.LayerNorm." in name:
        for pattern, replacement in _MPNET_NAMES:
            name = pattern.sub(replacement, name)
    return name


def _google_name(hf_name: str) -> str | None:
    """`encoder.layer.0.attention.self.query.weight` -> `bert/encoder/layer_0/.../kernel`.

    Returns None for tensors that are not part of the encoder (position_ids
    buffers, masked-LM heads, ...); a sequence-classification head keeps its names
    under `classifier/`.
    """
    path = _bert_dotted_name(hf_name).replace(".", "/")
    if path == "encoder/relative_attention_bias/weight":
        return RELATIVE_ATTENTION_BIAS
    if path.startswith((f"{CLASSIFIER}/", f"pre_{CLASSIFIER}/")):
        head, _, leaf = path.rpartition("/")
        if head.endswith("/norm"):  # ModernBERT's head LayerNorm
            return f"{head}/{ {'weight': 'gamma', 'bias': 'beta'}.get(leaf, leaf)}"
        return f"{head}/{'kernel' if leaf == 'weight' else leaf}"
    if not path.startswith(("embeddings/", "embeddings_project/", "encoder/layer/",
                            "encoder/final_norm/", "pooler/dense/")):
        return None
    path = _HF_LAYER.sub(r"encoder/layer_\1/", path)
    head, _, leaf = path.rpartition("/")
    if head.endswith("_embeddings"):
        return f"bert/{head}"  # embedding tables have no leaf in Google's names
    if head.endswith(("LayerNorm", "_norm", "layernorm")):  # ModernBERT's, Qwen's norms
        leaf = {"weight": "gamma", "bias": "beta"}.get(leaf, leaf)
    elif leaf == "weight":
        leaf = "kernel"
    return f"bert/{head}/{leaf}"


def from_hf_state_dict(state: Mapping[str, np.ndarray], source: str) -> BertWeights:
    """Rename a Hugging Face BERT state dict to Google's names, transposing dense kernels."""
    renamed: dict[str, np.ndarray] = {}
    for hf_name, array in state.items():
        name = _google_name(hf_name)
        if name is None:
            continue  # position_ids buffers, MLM heads, ...
        array = np.asarray(array, dtype=np.float32)
        if name.endswith("/kernel"):
            array = np.ascontiguousarray(array.T)  # torch Linear stores [out, in]
        renamed[name] = array
    if f"{EMBEDDINGS}/word_embeddings" not in renamed:
        raise UnsupportedModelError(
            f"{source} has no BERT embeddings (looked for 'embeddings.word_embeddings.weight', "
            "optionally prefixed 'bert.', 'roberta.', 'electra.' or 'distilbert.'): not a "
            "state dict of a served family"
        )
    return BertWeights(renamed, source)
