"""Quantized embeddings as sentence-transformers defines them, with ranges fixed per server.

`quantize(vectors, precision, ranges)` gives sentence-transformers'
`quantize_embeddings` result on the same vectors and ranges, bit for bit:

    binary   packbits(x > 0) - 128, as int8 (8 dimensions per value)
    ubinary  packbits(x > 0), as uint8
    uint8    clip(floor((x - min) / ((max - min) / 255)), 0, 255), per dimension
    int8     the uint8 value - 128

**Calibration rule.** A text's quantized vector must not depend on what else is
in its request (sentence-transformers calibrates on the batch when it has no
ranges; Cohere's SDK splits a request into batches of 96 and merges them). So
int8 and uint8 use ranges fixed when the server starts:

- `-embedding_ranges FILE.npy`, a float32 array of shape [2, dim]: each
  dimension's min (row 0) and max (row 1), which a user computes from their own
  corpus's embeddings, e.g. `np.save("ranges.npy", np.stack([e.min(0), e.max(0)]))`
  for `e` the float vectors of a few thousand of their documents;
- without it, for unit vectors (a model that normalizes, or a Matryoshka cut,
  which renormalizes): `unit_vector_ranges(dim)`, [-r, r] on every dimension
  with r = min(1, 4 / sqrt(dim)). A unit vector's coordinates have a root mean
  square of 1 / sqrt(dim); 4 times that clips almost none of them (the MiniLM's
  largest coordinate over 70 varied texts is 0.19, r is 0.204 at dim 384) while
  keeping 255 steps over the range that matters. It needs no data and is the
  same on every start.
- vectors of any length without a file have no defined range: int8 and uint8
  are refused (`ranges_for` returns None).

One rule for every front end: the HTTP routes quantize what they serve with it
(after a Matryoshka cut or normalize), and the sink quantizes a `BertClient`
reply that asked for a precision (the *ext* payload's ``"precision"``) with the
ranges its view got at start (`view_ranges`).

Usage::

    ranges = ranges_for(dim=384, unit_vectors=True, configured=None)
    rows = quantize(vectors, "int8", ranges)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bert_serving.proto.inputs import PRECISIONS, Precision

from ..errors import ConfigError

__all__ = ["PRECISIONS", "RANGED", "Precision", "PrecisionRule", "configured_ranges",
           "load_ranges", "missing_range", "quantize", "ranges_for", "unit_vector_ranges"]

RANGED: frozenset[str] = frozenset({"int8", "uint8"})
"""The precisions that need per-dimension ranges."""

UNIT_RANGE_SIGMAS = 4.0
"""The default range's half-width, in root-mean-squares of a unit vector's coordinates."""


def unit_vector_ranges(dim: int) -> np.ndarray:
    """[-r, r] on each of `dim` dimensions, r = min(1, 4 / sqrt(dim)): for unit vectors."""
    r = min(1.0, UNIT_RANGE_SIGMAS / float(np.sqrt(dim)))
    return np.stack([np.full(dim, -r), np.full(dim, r)]).astype(np.float32)


def ranges_for(dim: int, *, unit_vectors: bool, configured: np.ndarray | None,
               cut: bool = False) -> np.ndarray | None:
    """The ranges int8/uint8 use for vectors of `dim` dimensions, or None if none is defined.

    `configured` (-embedding_ranges) is for the model's full vectors: it applies
    unless they were cut (`cut`, a Matryoshka cut, which renormalizes to unit vectors).
    Raises ValueError when `configured` does not match `dim`.
    """
    if configured is not None and not cut:
        if configured.shape[1] != dim:
            raise ValueError(f"-embedding_ranges holds {configured.shape[1]} dimensions; "
                             f"this server's vectors have {dim}")
        return configured
    return unit_vector_ranges(dim) if unit_vectors else None


UNIT_VECTORS_HTTP = "ask for unit vectors (normalized, or a Matryoshka cut, which renormalizes)"
"""How an HTTP request gets vectors with a default range (`missing_range`'s `instead`)."""


def missing_range(precision: str, instead: str = UNIT_VECTORS_HTTP) -> str:
    """Why `precision` has no range here, and what to do: the refusal every front end gives."""
    return (f"{precision} needs each dimension's range, and these vectors are not unit "
            "length: start the server with -embedding_ranges FILE.npy (each dimension's min "
            f"and max over your corpus's float vectors), or {instead}")


@dataclass(frozen=True)
class PrecisionRule:
    """What one kind of reply may be quantized to, decided when the server starts.

    `ranges`: int8/uint8's per-dimension ranges (`ranges_for`); None refuses those two.
    `refusal`: why these rows take no precision at all (token vectors, logits, sparse
    weights: quantizing is for one embedding per text). `instead`: how to get ranges.

        rule = PrecisionRule(unit_vector_ranges(384)); rule.check("int8")
        rows = rule.apply(vectors, "int8")
    """

    ranges: np.ndarray | None = None
    refusal: str | None = None
    instead: str = UNIT_VECTORS_HTTP

    def check(self, precision: Precision) -> None:
        """ValueError naming why `precision` cannot be had here; nothing when it can."""
        if self.refusal is not None:
            raise ValueError(f"precision {precision}: {self.refusal}")
        if precision in RANGED and self.ranges is None:
            raise ValueError(missing_range(precision, self.instead))

    def apply(self, vectors: np.ndarray, precision: Precision) -> np.ndarray:
        """The rows in `precision` (`check` it first)."""
        return quantize(vectors, precision, self.ranges)


def load_ranges(path: Path) -> np.ndarray:
    """-embedding_ranges: a [2, dim] array of finite mins (row 0) <= maxes (row 1), as float32.

    Raises ValueError naming what is wrong (OSError if the file cannot be read).
    """
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2 or array.shape[0] != 2 or array.shape[1] == 0:
        raise ValueError(f"{path}: holds an array of shape {list(array.shape)}; it must be "
                         "[2, dim]: each dimension's min, then its max")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise ValueError(f"{path}: must hold finite numbers")
    ranges = array.astype(np.float32)
    if (ranges[0] > ranges[1]).any():
        raise ValueError(f"{path}: row 0 (the mins) exceeds row 1 (the maxes) at dimension "
                         f"{int(np.argmax(ranges[0] > ranges[1]))}")
    return ranges


def configured_ranges(path: Path | None) -> np.ndarray | None:
    """-embedding_ranges' array, checked at start; ConfigError naming the flag if unusable."""
    if path is None:
        return None
    try:
        return load_ranges(path)
    except (OSError, ValueError) as error:
        raise ConfigError(f"-embedding_ranges: {error}") from None


def quantize(vectors: np.ndarray, precision: Precision,
             ranges: np.ndarray | None = None) -> np.ndarray:
    """sentence-transformers' `quantize_embeddings(vectors, precision, ranges=ranges)`.

    `vectors`: float rows [n, dim]; `ranges` [2, dim] is needed for int8 and uint8.
    """
    if precision == "ubinary":
        return np.packbits(vectors > 0, axis=-1)
    if precision == "binary":
        # uint8 wraps below 0: 0 -> 128 -> -128 as int8, as sentence-transformers computes it.
        return (np.packbits(vectors > 0, axis=-1) - np.uint8(128)).astype(np.int8)
    if ranges is None:
        raise ValueError(f"{precision} needs per-dimension ranges")
    ranges = ranges.astype(np.float32, copy=False)
    starts = ranges[0, :]
    steps = (ranges[1, :] - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    levels = np.clip(np.floor((vectors - starts) / steps), 0, 255)
    return levels.astype(np.uint8) if precision == "uint8" else (levels - 128).astype(np.int8)
