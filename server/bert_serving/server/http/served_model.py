"""The one place the gateway's view of the served model (`ServedModel`) is built from the config.

One server, one graph, one pooling: the TEI and OpenAI routes serve what the
server computes. They serve the model's own embedding when the server runs
-pooling_strategy MODEL (or flags that amount to it); with the original
defaults (layer -2, masked mean, for the 1.10.0 client) they serve those, and
the server says so at start when the folder has sentence-transformers modules.

Usage::

    model = served_model(config, tokenizer)
    for line in native_embedding_notes(config): log.warning(line)
"""

from __future__ import annotations

from pathlib import Path

from ..config import ServerConfig
from ..errors import ConfigError
from ..model.default_model import default_model_dir
from ..model.head import ModelHead
from ..model.native_embedding import POOLING_NAMES, NativeEmbedding, read_native_embedding
from ..model.pooling import PoolingStrategy
from .preparation import ServedModel, TextTools
from .settings import GatewaySettings

__all__ = ["SPLADE_POOLING", "native_embedding_notes", "served_model"]

SPLADE_POOLING = "splade"
"""What TEI's /info calls a SPLADE model's pooling (`model_type.embedding.pooling`)."""


def _folder_native(config: ServerConfig) -> NativeEmbedding | None:
    folder: Path = config.engine.model_dir or default_model_dir()
    folder = folder.parent if folder.suffix == ".onnx" else folder
    try:
        return read_native_embedding(folder)
    except ConfigError:  # modules this server does not compute: no native embedding to offer
        return None


def _is_native(config: ServerConfig, native: NativeEmbedding | None) -> bool:
    engine = config.engine
    return (native is not None and engine.pooling == native.pooling_spec()
            and engine.normalize == native.normalize)


def served_model(config: ServerConfig, tokenizer: TextTools,
                 head: ModelHead = ModelHead.EMBEDDING,
                 labels: tuple[str, ...] = ()) -> ServedModel:
    """What the TEI and OpenAI routes need to know, from the config, the server's tokenizer
    and the head (and a classifier's labels) of the graph it serves."""
    native = _folder_native(config)
    strategy = config.engine.pooling.strategy
    pooling = POOLING_NAMES.get(strategy, strategy.name.lower())
    return ServedModel(
        name=GatewaySettings.from_config(config).model_name,
        pooling=SPLADE_POOLING if head is ModelHead.SPARSE else pooling,
        native=_is_native(config, native),
        normalized=config.engine.normalize,
        token_level=strategy is PoolingStrategy.NONE,
        prompts=dict(native.prompts) if native else {},
        default_prompt_name=native.default_prompt_name if native else None,
        dtype="float16" if config.fp16 else "float32",
        max_batch_tokens=config.max_batch_tokens,
        tools=tokenizer,
        truncation=config.truncation,
        head=head,
        labels=labels,
    )


def native_embedding_notes(config: ServerConfig) -> list[str]:
    """Warnings for a gateway whose routes will not give the model's own embedding in full."""
    native = _folder_native(config)
    if native is None:
        return []
    notes = []
    if not _is_native(config, native):
        pooling = config.engine.pooling
        notes.append(
            f"the TEI and OpenAI routes serve this server's pooling (layers "
            f"{list(pooling.layers)}, {pooling.strategy.name}), not the model's own embedding "
            f"({native.pooling_name} of the last layer"
            f"{', normalized' if native.normalize else ''}): start with -pooling_strategy MODEL "
            "for that")
    max_len = config.engine.max_seq_len
    if native.max_seq_length and (max_len is None or max_len < native.max_seq_length):
        notes.append(
            f"-max_seq_len {max_len} cuts texts the model reads up to {native.max_seq_length} "
            f"tokens: start with -max_seq_len {native.max_seq_length} to embed longer texts "
            "as the model would")
    return notes
