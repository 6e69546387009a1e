"""The one place the gateway's view of the served model (`ServedModel`) is built.

The TEI and OpenAI routes serve the model's own embedding whenever the folder
declares one (sentence-transformers' Pooling and Normalize): on a plain start
the graph pools it beside the 1.10 protocol's layer -2 mean (`NativeView`, the
graph's `native` metadata), and the routes ask for those columns; under
-pooling_strategy MODEL the server's vectors are the model's own already (which
of the two: `ServedGraph.own_embedding`, decided once at start). The 1.10
protocol and /encode keep bert-as-service's pooling either way.

Usage::

    served = ServedGraph.of(graph.metadata, normalize=..., native=config.native_embedding)
    model = served_model(config, tokenizer, served)
    for line in native_embedding_notes(config, served): log.warning(line)
"""

from __future__ import annotations

from ..config import ServerConfig
from ..model.head import ModelHead
from ..model.native_embedding import POOLING_NAMES
from ..model.pooling import PoolingSpec
from ..model.precision import Running
from ..model.served_graph import ServedGraph
from .preparation import ServedModel, TextTools
from .settings import GatewaySettings

__all__ = ["SPLADE_POOLING", "native_embedding_notes", "served_model"]

SPLADE_POOLING = "splade"
"""What TEI's /info calls a SPLADE model's pooling (`model_type.embedding.pooling`)."""


def served_model(config: ServerConfig, tokenizer: TextTools, graph: ServedGraph,
                 running: Running | None = None) -> ServedModel:
    """What the TEI and OpenAI routes need to know, from the config, the server's tokenizer,
    the served graph (its head, a classifier's labels, its native view, whether its vectors
    are the model's own) and what its runtime reports it computes in (`running`; /info)."""
    native = config.native_embedding
    metadata = graph.metadata
    head, view = metadata.head, metadata.native
    pooling = _pooling_name(view.pooling if view else metadata.pooling)
    return ServedModel(
        name=GatewaySettings.from_config(config).model_name,
        pooling=SPLADE_POOLING if head is ModelHead.SPARSE else pooling,
        native=graph.own_embedding,
        ask_native=graph.has_native_view,
        server_pooling=_describe(metadata.pooling, graph.normalize),
        normalized=view.normalize if view else graph.normalize,
        token_level=graph.token_level,
        prompts=dict(native.prompts) if native else {},
        default_prompt_name=native.default_prompt_name if native else None,
        dtype="float16" if config.fp16 else "float32",
        max_batch_tokens=config.max_batch_tokens,
        tools=tokenizer,
        truncation=config.truncation,
        head=head,
        labels=metadata.labels,
        max_tokens=metadata.max_tokens,
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


def native_embedding_notes(config: ServerConfig, graph: ServedGraph) -> list[str]:
    """Warnings for a gateway whose routes will not give the model's own embedding in full
    (a classifier or sparse graph embeds nothing, so it gets none)."""
    native = config.native_embedding
    if native is None or graph.metadata.head is not ModelHead.EMBEDDING:
        return []
    notes = []
    if not graph.own_embedding:
        pooling = graph.metadata.pooling
        why = ("token vectors (-pooling_strategy NONE) share no rows with it"
               if graph.token_level
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
