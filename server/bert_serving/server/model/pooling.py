"""Which encoder layers are pooled, and how: the original's -pooling_layer / -pooling_strategy.

Pooling runs inside the ONNX graph (see `convert.graph`); this module only
names and validates the choice, so config parsing and the graph builder agree.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["NativeView", "PoolingSpec", "PoolingStrategy", "parse_pooling_strategy"]


class PoolingStrategy(enum.IntEnum):
    """The original bert-as-service enum; the integer values go on the wire in SHOW_CONFIG."""

    NONE = 0
    REDUCE_MAX = 1
    REDUCE_MEAN = 2
    REDUCE_MEAN_MAX = 3
    FIRST_TOKEN = 4
    LAST_TOKEN = 5
    CLS_POOLED = 6

    # The original's aliases.
    CLS_TOKEN = 4
    SEP_TOKEN = 5

    def __str__(self) -> str:
        return self.name


def parse_pooling_strategy(value: str | int | PoolingStrategy) -> PoolingStrategy:
    """Parse a strategy by name (any case) or enum value, naming the choices on error."""
    if isinstance(value, PoolingStrategy):
        return value
    if isinstance(value, int):
        return PoolingStrategy(value)
    try:
        return PoolingStrategy[value.strip().upper()]
    except KeyError:
        choices = ", ".join(PoolingStrategy.__members__)
        raise ConfigError(
            f"-pooling_strategy {value!r} is not one of: {choices}"
        ) from None


@dataclass(frozen=True)
class PoolingSpec:
    """What the graph outputs: pooled `layers` (negative = from the top) with `strategy`.

    Several layers are concatenated along the hidden axis before pooling, as the
    original did. `mask_cls_sep` drops [CLS]/[SEP] from pooling only; unlike the
    original it leaves them visible to attention, so the encoder's states are
    those the model was trained to produce.
    """

    layers: tuple[int, ...] = (-2,)
    strategy: PoolingStrategy = PoolingStrategy.REDUCE_MEAN
    mask_cls_sep: bool = False

    def resolved_layers(self, num_hidden_layers: int) -> tuple[int, ...]:
        """Layer indices into transformers' `hidden_states` (0 = embeddings, L = last layer).

        -1 is the last encoder layer, -2 the one below it, as `hidden_states[-2]`.
        """
        resolved = []
        for layer in self.layers:
            index = layer + num_hidden_layers + 1 if layer < 0 else layer
            if not 0 <= index <= num_hidden_layers:
                raise ConfigError(
                    f"-pooling_layer {layer} is out of range for a model with "
                    f"{num_hidden_layers} encoder layers: use -1 .. -{num_hidden_layers + 1} "
                    f"or 0 .. {num_hidden_layers}"
                )
            resolved.append(index)
        return tuple(resolved)

    def deepest_layer(self, num_hidden_layers: int) -> int:
        """How many encoder layers the graph must build for this spec."""
        if self.strategy is PoolingStrategy.CLS_POOLED:
            return num_hidden_layers
        return max(self.resolved_layers(num_hidden_layers))

    def output_width(self, hidden_size: int) -> int:
        """Width of one output vector (per token for NONE)."""
        if self.strategy is PoolingStrategy.CLS_POOLED:
            return hidden_size
        width = hidden_size * len(self.layers)
        return 2 * width if self.strategy is PoolingStrategy.REDUCE_MEAN_MAX else width

    @staticmethod
    def from_flags(
        pooling_layer: Sequence[int], pooling_strategy: str | int, mask_cls_sep: bool
    ) -> PoolingSpec:
        """Build from the CLI's values, validating what can be checked without a model."""
        if not pooling_layer:
            raise ConfigError("-pooling_layer needs at least one layer index, e.g. -2")
        return PoolingSpec(
            tuple(int(x) for x in pooling_layer),
            parse_pooling_strategy(pooling_strategy),
            mask_cls_sep,
        )


@dataclass(frozen=True)
class NativeView:
    """The model's own embedding, pooled in the same graph beside the server's pooling.

    A plain start keeps bert-as-service's pooling for the 1.10 protocol and /encode,
    while the TEI and OpenAI routes owe a sentence-transformers folder's users the
    vectors the model was trained for. Both come out of one encoder run: each graph
    row is ``[server pooling | native]`` (`GraphMetadata.native_width` columns at the
    end), and the sink hands a request the columns it asked for.
    """

    pooling: PoolingSpec
    normalize: bool
    """L2-normalized in the graph (the folder's Normalize module)."""
