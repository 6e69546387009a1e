"""What a served graph is, without onnx: its inputs and output, its metadata, where it lies.

The contract between conversion (`convert/`, which writes graphs and imports this
module) and serving (engine, runtime, worker, which read them and never import
`convert/` or onnx). A worker process gets a `PreparedGraph` from the server and
loads it with onnxruntime alone, so it starts without onnx's Python package or any
checkpoint reader in memory.

Usage::

    metadata = GraphMetadata.from_props(props)   # props: the ONNX file's metadata_props
    prepared = PreparedGraph(path, metadata, vocab_path, converted_now=False)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .head import ModelHead
from .pooling import NativeView, PoolingSpec, PoolingStrategy

__all__ = [
    "INPUT_NAMES",
    "OUTPUT_NAME",
    "TOKENIZER_JSON_NAME",
    "GraphMetadata",
    "PreparedGraph",
    "SpecialIds",
    "default_cache_dir",
]

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "embeddings"
TOKENIZER_JSON_NAME = "tokenizer.json"
"""A `PreparedGraph.vocab_path` of this name is a Hugging Face tokenizer, else a vocab.txt."""


def default_cache_dir() -> Path:
    """`$BERT_SERVING_CACHE`, else `$XDG_CACHE_HOME/bert-serving`, else `~/.cache/bert-serving`.

    Conversion writes its graphs there; serving keeps OpenVINO's compiled blobs there too.
    """
    explicit = os.environ.get("BERT_SERVING_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bert-serving"


@dataclass(frozen=True)
class SpecialIds:
    """Vocabulary ids the graph needs for -mask_cls_sep."""

    cls_id: int
    sep_id: int


@dataclass(frozen=True)
class GraphMetadata:
    """What a graph computes, stored in the ONNX file so a ready graph can be checked."""

    pooling: PoolingSpec
    hidden_size: int
    num_hidden_layers: int
    max_position_embeddings: int
    output_width: int
    precision: str = "fp32"
    num_attention_heads: int = 0  # 0: unknown (graphs exported before it was recorded)
    position_offset: int = 0
    """Position table rows no token uses (RoBERTa: pad_token_id + 1)."""
    head: ModelHead = ModelHead.EMBEDDING
    """What the graph outputs: pooled embeddings, classifier logits or sparse term weights."""
    labels: tuple[str, ...] = ()
    """A classifier's label names by logit index (config.json's id2label); () otherwise."""
    native: NativeView | None = None
    """The model's own embedding, in `native_width` columns after `output_width`; None: none."""
    native_width: int = 0

    @property
    def row_width(self) -> int:
        """Columns of each output row: the server's pooling, then the native view's."""
        return self.output_width + self.native_width

    @property
    def max_tokens(self) -> int:
        """The longest row the graph can take: RoBERTa's is max_position_embeddings - 2."""
        return self.max_position_embeddings - self.position_offset

    def as_props(self) -> dict[str, str]:
        return {
            "bert_serving.pooling_layers": ",".join(str(x) for x in self.pooling.layers),
            "bert_serving.pooling_strategy": self.pooling.strategy.name,
            "bert_serving.mask_cls_sep": str(int(self.pooling.mask_cls_sep)),
            "bert_serving.hidden_size": str(self.hidden_size),
            "bert_serving.num_hidden_layers": str(self.num_hidden_layers),
            "bert_serving.max_position_embeddings": str(self.max_position_embeddings),
            "bert_serving.output_width": str(self.output_width),
            "bert_serving.precision": self.precision,
            "bert_serving.num_attention_heads": str(self.num_attention_heads),
            "bert_serving.position_offset": str(self.position_offset),
            "bert_serving.head": self.head.value,
            "bert_serving.labels": json.dumps(list(self.labels)),
            **(_native_props(self.native, self.native_width) if self.native else {}),
        }

    @staticmethod
    def from_props(props: dict[str, str]) -> GraphMetadata | None:
        """Read back `as_props`; None for graphs bert-serving did not make."""
        try:
            pooling = PoolingSpec(
                tuple(int(x) for x in props["bert_serving.pooling_layers"].split(",")),
                PoolingStrategy[props["bert_serving.pooling_strategy"]],
                props["bert_serving.mask_cls_sep"] == "1",
            )
            return GraphMetadata(
                pooling,
                int(props["bert_serving.hidden_size"]),
                int(props["bert_serving.num_hidden_layers"]),
                int(props["bert_serving.max_position_embeddings"]),
                int(props["bert_serving.output_width"]),
                props.get("bert_serving.precision", "fp32"),
                int(props.get("bert_serving.num_attention_heads", "0")),
                int(props.get("bert_serving.position_offset", "0")),
                ModelHead(props.get("bert_serving.head", ModelHead.EMBEDDING.value)),
                tuple(str(x) for x in json.loads(props.get("bert_serving.labels", "[]"))),
                *_native_from_props(props),
            )
        except (KeyError, ValueError, TypeError):  # TypeError: labels that are not a list
            return None


def _native_props(native: NativeView, width: int) -> dict[str, str]:
    spec = native.pooling
    return {"bert_serving.native_pooling": json.dumps(
        {"layers": list(spec.layers), "strategy": spec.strategy.name,
         "mask_cls_sep": spec.mask_cls_sep, "normalize": native.normalize, "width": width})}


def _native_from_props(props: dict[str, str]) -> tuple[NativeView | None, int]:
    """(view, width) from `_native_props`; (None, 0) for graphs without a native view."""
    if "bert_serving.native_pooling" not in props:
        return None, 0
    found = json.loads(props["bert_serving.native_pooling"])
    spec = PoolingSpec(tuple(int(x) for x in found["layers"]),
                       PoolingStrategy[found["strategy"]], bool(found["mask_cls_sep"]))
    return NativeView(spec, bool(found["normalize"])), int(found["width"])


@dataclass(frozen=True)
class PreparedGraph:
    """A graph on disk that is ready to load, and what it computes."""

    path: Path
    metadata: GraphMetadata
    vocab_path: Path
    converted_now: bool
