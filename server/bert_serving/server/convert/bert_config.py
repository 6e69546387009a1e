"""The BERT hyper-parameters the graph builder needs, read from either config format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelNotFoundError, UnsupportedModelError

__all__ = ["BertConfig", "read_bert_config"]

# Activation names as transformers spells them. Google's bert_config.json says
# "gelu"; we follow transformers and read it as the exact (erf) GELU.
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


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

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_bert_config(path: Path) -> BertConfig:
    """Read a Google `bert_config.json` or a Hugging Face `config.json`.

    Anything that is not a BERT encoder is refused with a message saying what was found.
    """
    if not path.is_file():
        raise ModelNotFoundError(f"model config {path} does not exist")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UnsupportedModelError(f"model config {path} is not valid JSON: {error}") from None
    _check_is_bert(raw, path)
    try:
        config = BertConfig(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_hidden_layers=int(raw["num_hidden_layers"]),
            num_attention_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_position_embeddings=int(raw.get("max_position_embeddings", 512)),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
            hidden_act=str(raw.get("hidden_act", "gelu")),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        )
    except KeyError as missing:
        raise UnsupportedModelError(f"model config {path} lacks the key {missing}") from None
    if config.hidden_act not in SUPPORTED_ACTIVATIONS:
        raise UnsupportedModelError(
            f"model config {path}: hidden_act {config.hidden_act!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_ACTIVATIONS)})"
        )
    if config.hidden_size % config.num_attention_heads:
        raise UnsupportedModelError(
            f"model config {path}: hidden_size {config.hidden_size} is not a multiple "
            f"of num_attention_heads {config.num_attention_heads}"
        )
    return config


def _check_is_bert(raw: dict[str, Any], path: Path) -> None:
    """Refuse non-BERT Hugging Face configs; Google configs carry no model_type."""
    model_type = raw.get("model_type")
    architectures = raw.get("architectures") or []
    if model_type is not None and model_type != "bert":
        found = f"model_type {model_type!r}" + (
            f" ({', '.join(architectures)})" if architectures else ""
        )
        raise UnsupportedModelError(
            f"{path} describes {found}, not a BERT: bert-serving serves BERT-architecture "
            "encoders only (BERT, MiniLM, bge, e5, arctic-embed ...)"
        )
    position_type = raw.get("position_embedding_type", "absolute")
    if position_type != "absolute":
        raise UnsupportedModelError(
            f"{path}: position_embedding_type {position_type!r} is not supported (only 'absolute')"
        )
