"""What the served graph is, for everything that answers with it: decided once, at start.

The graph's metadata says what it computes (head, widths, pooling, a native
view, its longest row); the folder says how the model embeds on its own (its
pooling and Normalize) and the server's flags whether vectors are normalized.
The facts read from those together (token vectors or one per text, whether the
TEI and OpenAI routes' vectors are the model's own) are worked out here, once,
and the server passes this object to the ventilator, the reply views, the
ready line and the gateway's `ServedModel`, so they cannot come to differ. A
new family or head adds its facts here.

Plain data: no sockets, no onnx.

Usage::

    served = ServedGraph.of(graph.metadata, normalize=config.engine.normalize,
                            native=config.native_embedding)
    shape = "(N, max_seq_len, d)" if served.token_level else "(N, d)"
"""

from __future__ import annotations

from dataclasses import dataclass

from .graph_contract import GraphMetadata
from .head import ModelHead
from .native_embedding import NativeEmbedding
from .pooling import PoolingStrategy

__all__ = ["ServedGraph"]


@dataclass(frozen=True)
class ServedGraph:
    """The served graph's metadata and the facts derived from it and the folder.

    `normalize`: the server's pooling is L2-normalized (-pooling_strategy MODEL of a
    folder with a Normalize module). `own_embedding`: the TEI and OpenAI routes'
    vectors are the model's own, because the graph pools them beside the server's
    pooling (`metadata.native`) or because the server's pooling already is the
    folder's (-pooling_strategy MODEL, or flags that amount to it).
    """

    metadata: GraphMetadata
    normalize: bool = False
    own_embedding: bool = False

    @classmethod
    def of(cls, metadata: GraphMetadata, *, normalize: bool,
           native: NativeEmbedding | None) -> ServedGraph:
        """The facts of a prepared graph's `metadata`, the server's `normalize` and the
        folder's own embedding (`native`, None for a folder that declares none)."""
        pooled = native is not None and native.is_pooled_by(metadata.pooling, normalize)
        return cls(metadata, normalize, metadata.native is not None or pooled)

    @property
    def token_level(self) -> bool:
        """One vector per token (-pooling_strategy NONE), not one per text."""
        return self.metadata.pooling.strategy is PoolingStrategy.NONE

    @property
    def sparse(self) -> bool:
        """Rows are SPLADE term weights (-head sparse): requests may ask for their nonzeros."""
        return self.metadata.head is ModelHead.SPARSE

    @property
    def has_native_view(self) -> bool:
        """The graph pools the model's own embedding beside the server's pooling."""
        return self.metadata.native is not None
