"""The forms the embedding routes answer a vector in: float, int8, uint8, binary, ubinary.

OpenAI's `/v1/embeddings` and TEI's `/embed` take `output_dtype` (Voyage AI's
name for the same five values on its OpenAI-like embeddings API; OpenAI and TEI
have no such field), Cohere's embed `embedding_types`. The numbers are
sentence-transformers' `quantize_embeddings` (model/quantization.py, the one
rule, with its calibration): int8/uint8 one value per dimension, binary/ubinary
eight dimensions per value, packed as `numpy.packbits` packs them.

base64 (OpenAI's `encoding_format`) is the vector's own bytes: little-endian
float32 for float, one byte per value for the others (so int8 is 4 times, binary
32 times smaller than float's base64), which `numpy.frombuffer(b64decode(s),
dtype)` reads back with the dtype asked for. OpenAI's Python SDK asks for base64
when its caller names no `encoding_format` and reads it as float32: with a
quantized `output_dtype`, pass `encoding_format` yourself.

Usage::

    check_output_dtype("int8", param="output_dtype", unit_vectors=True, configured=None)
    rows = as_output_dtype(vectors, "int8", param="output_dtype", unit_vectors=True,
                           configured=None, cut=False)
"""

from __future__ import annotations

import base64

import numpy as np

from ..model.quantization import RANGED, missing_range, quantize, ranges_for
from .errors import GatewayError, invalid

__all__ = ["as_output_dtype", "base64_row", "check_output_dtype",
           "check_pooled"]

def base64_row(row: np.ndarray) -> str:
    """A row's own bytes as base64: float rows as little-endian float32 (OpenAI's form)."""
    if row.dtype.kind == "f":
        row = np.ascontiguousarray(row, dtype="<f4")
    return base64.b64encode(np.ascontiguousarray(row).tobytes()).decode("ascii")


def check_pooled(dtype: str, *, param: str, token_vectors: bool, route: str) -> None:
    """A quantized form is one text's vector: refuse it where the reply is token vectors."""
    if dtype != "float" and token_vectors:
        raise GatewayError(invalid(param, (
            f"{dtype} quantizes one vector per text, and {route} answers every token's vector "
            "(-pooling_strategy NONE): ask for float, or use a server started with a pooling")))


def check_output_dtype(dtype: str, *, param: str, unit_vectors: bool,
                       configured: np.ndarray | None, cut_to: int | None = None) -> None:
    """Refuse int8/uint8 where these vectors have no range (`ranges_for`'s None): before
    anything is encoded, and again once a Matryoshka cut (to `cut_to` dimensions) is known."""
    if dtype not in RANGED or unit_vectors:
        return
    if configured is None:
        raise GatewayError(invalid(param, missing_range(dtype)))
    if cut_to is not None:  # -embedding_ranges is for the uncut vectors
        raise GatewayError(invalid(param, (
            f"{dtype}: -embedding_ranges holds the model's full width, and these vectors are "
            f"cut to {cut_to} dimensions without renormalizing: ask for unit vectors with the "
            "cut (normalize), or for the full width")))


def as_output_dtype(vectors: np.ndarray, dtype: str, *, param: str, unit_vectors: bool,
                    configured: np.ndarray | None, cut: bool) -> np.ndarray:
    """`vectors` ([n, dim] floats, as served) in `dtype`; float gives them as they are.

    `cut`: a Matryoshka cut made them shorter than the model's, so -embedding_ranges
    (`configured`, the model's full width) does not apply to them.
    """
    if dtype == "float":
        return vectors
    check_output_dtype(dtype, param=param, unit_vectors=unit_vectors, configured=configured,
                       cut_to=vectors.shape[-1] if cut else None)
    try:
        ranges = ranges_for(vectors.shape[-1], unit_vectors=unit_vectors, configured=configured,
                            cut=cut)
    except ValueError as error:
        raise GatewayError(invalid(param, f"{dtype}: {error}")) from None
    return quantize(vectors, dtype, ranges)
