"""The encoder hyper-parameters the graph builder needs, read from either config format.

Besides BERT, the families that are BERT with small changes are read here:
RoBERTa, XLM-RoBERTa and CamemBERT (positions counted from `pad_token_id + 1`),
DistilBERT (its own key names, no token types), ELECTRA (an embedding width of
its own, projected to the hidden size) and MPNet (RoBERTa's positions, no token
types, and a relative position bias added to every layer's attention scores).
ModernBERT's layers are its own (rotary positions, local and global attention, a
GeGLU feed-forward, pre-norm; see `modernbert_graph`); what they need is read here
too (`_modernbert_config`), and so is what the decoder-only Qwen3 and Qwen2 embedding
models need (`_qwen_config`; their layers are in `qwen_graph`). Any other
`model_type` is refused, in one line naming it and the families served.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelNotFoundError, UnsupportedModelError

__all__ = ["FAMILY_OF_MODEL_TYPE", "BertConfig", "model_family", "read_bert_config"]

# Activation names as transformers spells them. Google's bert_config.json says
# "gelu"; we follow transformers and read it as the exact (erf) GELU.
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu")

FAMILY_OF_MODEL_TYPE = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "camembert": "roberta",
    "distilbert": "distilbert",
    "electra": "electra",
    "mpnet": "mpnet",
    "modernbert": "modernbert",
    "qwen3": "qwen3",
    "qwen2": "qwen2",
}
"""Hugging Face `model_type` -> the graph family that builds it."""


@dataclass(frozen=True)
class BertConfig:
    """Hyper-parameters of one BERT encoder."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    family: str = "bert"
    """A value of FAMILY_OF_MODEL_TYPE."""
    embedding_size: int = 0
    """ELECTRA's embedding width, projected to hidden_size; 0: the hidden size."""
    pad_token_id: int = 0
    relative_attention_num_buckets: int = 0
    """MPNet's relative position buckets (T5-style, bidirectional); 0: no relative bias."""
    local_attention: int = 0
    """ModernBERT's sliding window: a local layer's token sees those within
    local_attention // 2 positions either side (0: not ModernBERT)."""
    local_layers: tuple[int, ...] = ()
    """ModernBERT's layers that attend within the window; the others attend globally."""
    global_rope_theta: float = 0.0
    """ModernBERT's rotary base of the global layers."""
    local_rope_theta: float = 0.0
    """ModernBERT's rotary base of the local layers."""
    head_dim: int = 0
    """Qwen's width of one attention head, which need not be hidden / heads (0: that)."""
    num_key_value_heads: int = 0
    """Qwen's key/value heads, each shared by heads / num_key_value_heads query heads."""
    rope_theta: float = 0.0
    """Qwen's rotary base."""

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @property
    def embedding_width(self) -> int:
        return self.embedding_size or self.hidden_size

    @property
    def position_offset(self) -> int:
        """RoBERTa (and MPNet) count positions from padding_idx + 1, so that many table rows
        never serve."""
        return self.pad_token_id + 1 if self.family in ("roberta", "mpnet") else 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def model_family(path: Path) -> str:
    """The family of the config at `path` ("bert" for Google configs, which name none)."""
    return FAMILY_OF_MODEL_TYPE[_checked_model_type(_read_json(path), path)]


def read_bert_config(path: Path) -> BertConfig:
    """Read a Google `bert_config.json` or a Hugging Face `config.json` of a served family.

    Anything else is refused with a message saying what was found.
    """
    raw = _read_json(path)
    family = FAMILY_OF_MODEL_TYPE[_checked_model_type(raw, path)]
    _check_positions(raw, path)
    try:
        if family == "modernbert":
            config = _modernbert_config(raw, path)
        elif family in ("qwen3", "qwen2"):
            config = _qwen_config(raw, path, family)
        else:
            config = _family_config(raw, family)
    except KeyError as missing:
        raise UnsupportedModelError(f"model config {path} lacks the key {missing}") from None
    if config.hidden_act not in SUPPORTED_ACTIVATIONS:
        raise UnsupportedModelError(
            f"model config {path}: hidden_act {config.hidden_act!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})"
        )
    if config.hidden_size % config.num_attention_heads and not config.head_dim:
        raise UnsupportedModelError(
            f"model config {path}: hidden_size {config.hidden_size} is not a multiple "
            f"of num_attention_heads {config.num_attention_heads}"
        )
    return config


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelNotFoundError(f"model config {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UnsupportedModelError(f"model config {path} is not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise UnsupportedModelError(f"model config {path} is not a JSON object")
    return raw


def _family_config(raw: dict[str, Any], family: str) -> BertConfig:
    """BERT's keys, which RoBERTa, XLM-R, CamemBERT and ELECTRA share, or DistilBERT's.

    DistilBERT names its keys differently, has no token types, and its LayerNorms use
    1e-12 whatever the config. Sinusoidal positions (`sinusoidal_pos_embds`) are saved
    as a table like learned ones.
    """
    distil = family == "distilbert"
    typeless = distil or family == "mpnet"  # neither has token type embeddings

    def key(bert: str, distilbert: str) -> str:
        return distilbert if distil else bert

    return BertConfig(
        vocab_size=int(raw["vocab_size"]),
        hidden_size=int(raw[key("hidden_size", "dim")]),
        num_hidden_layers=int(raw[key("num_hidden_layers", "n_layers")]),
        num_attention_heads=int(raw[key("num_attention_heads", "n_heads")]),
        intermediate_size=int(raw[key("intermediate_size", "hidden_dim")]),
        max_position_embeddings=int(raw.get("max_position_embeddings", 512)),
        type_vocab_size=0 if typeless else int(raw.get("type_vocab_size", 2)),
        hidden_act=str(raw.get(key("hidden_act", "activation"), "gelu")),
        layer_norm_eps=1e-12 if distil else float(raw.get("layer_norm_eps", 1e-12)),
        family=family,
        embedding_size=int(raw.get("embedding_size") or 0) if family == "electra" else 0,
        pad_token_id=_pad_token_id(raw, default=1 if family in ("roberta", "mpnet") else 0),
        relative_attention_num_buckets=int(raw.get("relative_attention_num_buckets", 32))
        if family == "mpnet" else 0,
    )


def _modernbert_config(raw: dict[str, Any], path: Path) -> BertConfig:
    """ModernBERT's keys, read as transformers' ModernBertConfig reads them.

    Hub config.json files say `global_attn_every_n_layers` (layer 0 global) and
    `global_rope_theta`/`local_rope_theta`; transformers 5 saves `layer_types` and
    `rope_parameters` instead, which win where both are present.
    """
    layers = int(raw["num_hidden_layers"])
    layer_types = raw.get("layer_types") or [
        "full_attention" if i % int(raw.get("global_attn_every_n_layers", 3)) == 0
        else "sliding_attention" for i in range(layers)]
    unknown = set(layer_types) - {"full_attention", "sliding_attention"}
    if len(layer_types) != layers or unknown:
        raise UnsupportedModelError(f"model config {path}: layer_types {layer_types} are not "
                                    f"{layers} of full_attention and sliding_attention")
    return BertConfig(
        vocab_size=int(raw["vocab_size"]),
        hidden_size=int(raw["hidden_size"]),
        num_hidden_layers=layers,
        num_attention_heads=int(raw["num_attention_heads"]),
        intermediate_size=int(raw["intermediate_size"]),
        max_position_embeddings=int(raw.get("max_position_embeddings", 8192)),
        type_vocab_size=0,
        hidden_act=str(raw.get("hidden_activation", "gelu")),
        layer_norm_eps=float(raw.get("norm_eps", 1e-5)),
        family="modernbert",
        pad_token_id=_pad_token_id(raw, default=50283),
        local_attention=int(raw.get("local_attention", 128)),
        local_layers=tuple(i for i, kind in enumerate(layer_types)
                           if kind == "sliding_attention"),
        global_rope_theta=_rope_theta(raw, path, "full_attention", "global_rope_theta", 160_000.0),
        local_rope_theta=_rope_theta(raw, path, "sliding_attention", "local_rope_theta", 10_000.0),
    )


def _qwen_config(raw: dict[str, Any], path: Path, family: str) -> BertConfig:
    """Qwen3's (and Qwen2's) keys, read as transformers' Qwen3Config and Qwen2Config read them.

    head_dim: Qwen3Config's default is 128 whatever the width, Qwen2's hidden / heads.
    The rotary base is `rope_parameters.rope_theta` as transformers 5 saves it, else the
    hub's top-level `rope_theta`. Sliding-window layers are refused (no Qwen embedding
    model uses them), and so are scaled rotary types.
    """
    layers = int(raw["num_hidden_layers"])
    sliding = raw.get("use_sliding_window") or "sliding_attention" in (raw.get("layer_types")
                                                                        or [])
    if sliding:
        raise UnsupportedModelError(
            f"model config {path}: sliding-window attention (use_sliding_window, layer_types) "
            f"is not supported for {family}; every layer must attend to all earlier tokens")
    heads = int(raw["num_attention_heads"])
    kv_heads = int(raw.get("num_key_value_heads") or heads)
    if heads % kv_heads:
        raise UnsupportedModelError(f"model config {path}: num_attention_heads {heads} is not "
                                    f"a multiple of num_key_value_heads {kv_heads}")
    hidden = int(raw["hidden_size"])
    default_head_dim = 128 if family == "qwen3" else hidden // heads
    return BertConfig(
        vocab_size=int(raw["vocab_size"]),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=int(raw["intermediate_size"]),
        max_position_embeddings=int(raw.get("max_position_embeddings", 32768)),
        type_vocab_size=0,
        hidden_act=str(raw.get("hidden_act", "silu")),
        layer_norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
        family=family,
        pad_token_id=_pad_token_id(raw, default=0),
        head_dim=int(raw.get("head_dim") or default_head_dim),
        num_key_value_heads=kv_heads,
        rope_theta=_rope_theta(raw, path, None, "rope_theta", 10_000.0, family),
    )


def _rope_theta(raw: dict[str, Any], path: Path, layer_type: str | None, key: str,
                default: float, family: str = "ModernBERT") -> float:
    """One layer type's rotary base (None: the one of every layer); scaled rotary variants
    (YaRN ...) are refused."""
    parameters = raw.get("rope_parameters") or {}
    nested = (parameters.get(layer_type) if layer_type else parameters) or {}
    scaling = raw.get("rope_scaling") or {}
    rope_type = nested.get("rope_type") or scaling.get("rope_type") or scaling.get("type")
    if rope_type not in (None, "default"):
        raise UnsupportedModelError(f"model config {path}: rope_type {rope_type!r} is not "
                                    f"supported for {family} (only the default rotary)")
    return float(nested.get("rope_theta") or raw.get(key) or default)


def _pad_token_id(raw: dict[str, Any], default: int) -> int:
    value = raw.get("pad_token_id")
    return default if value is None else int(value)


def _checked_model_type(raw: dict[str, Any], path: Path) -> str:
    """The config's model_type if a family here serves it; Google configs carry none."""
    model_type = raw.get("model_type")
    if model_type is None:
        return "bert"
    if model_type in FAMILY_OF_MODEL_TYPE:
        return str(model_type)
    architectures = raw.get("architectures") or []
    found = f"model_type {model_type!r}" + (
        f" ({', '.join(map(str, architectures))})" if architectures else ""
    )
    raise UnsupportedModelError(
        f"{path} describes {found}, which bert-serving does not serve; it serves the "
        f"model_types {', '.join(FAMILY_OF_MODEL_TYPE)} (BERT, MiniLM, bge, e5, RoBERTa, "
        "XLM-RoBERTa, CamemBERT, DistilBERT, ELECTRA, MPNet, ModernBERT, Qwen3 ...)"
    )


def _check_positions(raw: dict[str, Any], path: Path) -> None:
    position_type = raw.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise UnsupportedModelError(
            f"{path}: position_embedding_type {position_type!r} is not supported (only 'absolute')"
        )
