"""The one place the gateway's view of the served model (`ServedModel`) is built from the config.

The TEI and OpenAI routes serve the model's own embedding whenever the folder
declares one (sentence-transformers' Pooling and Normalize): on a plain start
the graph pools it beside the 1.10 protocol's layer -2 mean (`NativeView`, the
graph's `native` metadata), and the routes ask for those columns; under
-pooling_strategy MODEL the server's vectors are the model's own already. The
1.10 protocol and /encode keep bert-as-service's pooling either way.

Usage::

    model = served_model(config, tokenizer, graph.metadata)
    for line in native_embedding_notes(config, graph.metadata.native): log.warning(line)
"""

from __future__ import annotations

from ..config import ServerConfig
from ..model.graph_contract import GraphMetadata
from ..model.head import ModelHead
from ..model.native_embedding import POOLING_NAMES, NativeEmbedding
from ..model.pooling import NativeView, PoolingSpec, PoolingStrategy
from ..model.precision import Running
from .preparation import ServedModel, TextTools
from .settings import GatewaySettings

__all__ = ["SPLADE_POOLING", "native_embedding_notes", "served_model"]

SPLADE_POOLING = "splade"
"""What TEI's /info calls a SPLADE model's pooling (`model_type.embedding.pooling`)."""


def _is_native(config: ServerConfig, native: NativeEmbedding | None) -> bool:
    engine = config.engine
    return native is not None and native.is_pooled_by(engine.pooling, engine.normalize)


def served_model(config: ServerConfig, tokenizer: TextTools,
                 graph: GraphMetadata | None = None,
                 running: Running | None = None) -> ServedModel:
    """What the TEI and OpenAI routes need to know, from the config, the server's tokenizer,
    the served graph's metadata (its head, a classifier's labels, its native view) and
    what its runtime reports it computes in (`running`; /info shows it)."""
    native = config.native_embedding
    head = graph.head if graph else ModelHead.EMBEDDING
    view = graph.native if graph else None
    strategy = config.engine.pooling.strategy
    pooling = _pooling_name(view.pooling if view else config.engine.pooling)
    return ServedModel(
        name=GatewaySettings.from_config(config).model_name,
        pooling=SPLADE_POOLING if head is ModelHead.SPARSE else pooling,
        native=view is not None or _is_native(config, native),
        ask_native=view is not None,
        server_pooling=_describe(config.engine.pooling, config.engine.normalize),
        normalized=view.normalize if view else config.engine.normalize,
        token_level=strategy is PoolingStrategy.NONE,
        prompts=dict(native.prompts) if native else {},
        default_prompt_name=native.default_prompt_name if native else None,
        dtype="float16" if config.fp16 else "float32",
        max_batch_tokens=config.max_batch_tokens,
        tools=tokenizer,
        truncation=config.truncation,
        head=head,
        labels=graph.labels if graph else (),
        max_tokens=graph.max_tokens if graph else None,
        embedding_ranges=config.loaded_ranges,
        running=running or Running(),
    )


def _pooling_name(spec: PoolingSpec) -> str:
    """TEI's name for a pooling (mean, cls ...), else ours in lower case."""
    return POOLING_NAMES.get(spec.strategy, spec.strategy.name.lower())


def _describe(spec: PoolingSpec, normalize: bool) -> str:
    """`REDUCE_MEAN of layer -2`: what the 1.10 protocol and /encode get, for /info."""
    layers = ", ".join(str(layer) for layer in spec.layers)
    masked = ", [CLS]/[SEP] masked" if spec.mask_cls_sep else ""
    plural = "s" if len(spec.layers) > 1 else ""
    return (f"{spec.strategy.name} of layer{plural} {layers}{masked}"
            f"{', normalized' if normalize else ''}")


def native_embedding_notes(config: ServerConfig, view: NativeView | None = None,
                           head: ModelHead = ModelHead.EMBEDDING) -> list[str]:
    """Warnings for a gateway whose routes will not give the model's own embedding in full
    (`view`: the one the served graph pools beside the server's, if any; a classifier or
    sparse graph embeds nothing, so it gets none)."""
    native = config.native_embedding
    if native is None or head is not ModelHead.EMBEDDING:
        return []
    notes = []
    if view is None and not _is_native(config, native):
        pooling = config.engine.pooling
        why = ("token vectors (-pooling_strategy NONE) share no rows with it"
               if pooling.strategy is PoolingStrategy.NONE
               else "this graph computes no second pooling (a ready .onnx graph, or no "
                    "-http_port when it was built)")
        notes.append(
            f"the TEI and OpenAI routes serve this server's pooling (layers "
            f"{list(pooling.layers)}, {pooling.strategy.name}), not the model's own embedding "
            f"({native.pooling_name} of the last layer"
            f"{', normalized' if native.normalize else ''}): {why}; start with "
            "-pooling_strategy MODEL for that")
    max_len = config.engine.max_seq_len
    if native.max_seq_length and (max_len is None or max_len < native.max_seq_length):
        notes.append(
            f"-max_seq_len {max_len} cuts texts the model reads up to {native.max_seq_length} "
            f"tokens: start with -max_seq_len {native.max_seq_length} to embed longer texts "
            "as the model would")
    return notes
