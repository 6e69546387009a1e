"""What the TEI and OpenAI routes do around the server's vectors: prompts, truncation, shaping.

Pure functions over plain values; routes call them, the service sends the
result through the shared BertClient like any other request.

Texts reach the server as text, except in two cases where they go as word
pieces (our client's tokenized input, mapped to ids one for one, so the model
reads exactly the same ids): a text holding '|||', which the ZeroMQ protocol
reads as a sentence pair but TEI and OpenAI clients mean as text; and
`truncation_direction: left`, which keeps a text's last pieces where the server
keeps its first. `truncate: false` checks each text against the server's
-max_seq_len and refuses the longer ones (the server itself always truncates,
TEI's `auto_truncate`).

Usage::

    payload, tokenized = prepare_texts(["hi ||| there"], prompt="", tools=tokenizer,
                                       truncate=None, direction="right")
    rows = shape_vectors(vectors, dimensions=128, normalize=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from ..native_embedding import l2_normalize
from ..tokenization import PAIR_SEPARATOR, Piece
from .errors import GatewayError, Problem, invalid

__all__ = ["ServedModel", "TextTools", "prepare_texts", "prompt_for", "shape_vectors"]

Direction = Literal["right", "left"]
_SPECIALS = 2  # [CLS] and [SEP], which the server adds to every text


class TextTools(Protocol):
    """The server's tokenizer, as the routes that show or cut tokens need it."""

    @property
    def max_len(self) -> int: ...

    @property
    def cls_id(self) -> int: ...

    @property
    def sep_id(self) -> int: ...

    def pieces(self, text: str) -> list[Piece]: ...

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str: ...


@dataclass(frozen=True)
class ServedModel:
    """What the TEI and OpenAI routes know of the model behind the server.

    `native`: the server's vectors are the model's own embedding (it runs
    -pooling_strategy MODEL, or flags that amount to it). `pooling` is TEI's
    name for the server's pooling; `normalized`: the server's vectors are unit
    length already.
    """

    name: str
    pooling: str = "mean"
    native: bool = False
    normalized: bool = False
    token_level: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    dtype: str = "float32"
    max_batch_tokens: int | None = None
    tools: TextTools | None = None


def prompt_for(model: ServedModel, prompt_name: str | None) -> str:
    """The prompt text to put before each input: the named one, else the folder's default."""
    name = prompt_name if prompt_name is not None else model.default_prompt_name
    if name is None:
        return ""
    if name not in model.prompts:
        known = ", ".join(sorted(model.prompts)) or "none"
        raise GatewayError(invalid("prompt_name", f"{name!r} is not one of this model's "
                                   f"prompts (config_sentence_transformers.json has: {known})"))
    return model.prompts[name]


def prepare_texts(texts: Sequence[str], *, prompt: str, tools: TextTools | None,
                  truncate: bool | None, direction: Direction) -> tuple[list[Any], bool]:
    """The payload for the client and whether it is tokenized (see the module's docstring)."""
    prompted = [prompt + text for text in texts]
    if tools is None:
        return prompted, False
    pieces: list[list[Piece]] | None = None
    if truncate is False:
        pieces = [tools.pieces(text) for text in prompted]
        _check_lengths(pieces, tools.max_len)
    if direction == "right" and not any(PAIR_SEPARATOR in text for text in prompted):
        return prompted, False
    pieces = pieces or [tools.pieces(text) for text in prompted]
    keep = tools.max_len - _SPECIALS
    return [_kept([p.token for p in row], keep, direction) for row in pieces], True


def _kept(tokens: list[str], keep: int, direction: Direction) -> list[str]:
    kept = tokens[-keep:] if direction == "left" else tokens[:keep]
    return kept or ["[UNK]"]  # a text of only dropped characters still gets its row


def _check_lengths(pieces: list[list[Piece]], max_len: int) -> None:
    for index, row in enumerate(pieces):
        count = len(row) + _SPECIALS
        if count > max_len:
            raise GatewayError(Problem(
                "ValidationError", 422,
                f"inputs[{index}]: has {count} tokens, more than this server's limit of "
                f"{max_len} (-max_seq_len): send truncate: true, or start the server with a "
                "larger -max_seq_len", "inputs"))


def shape_vectors(vectors: np.ndarray, *, dimensions: int | None, normalize: bool) -> np.ndarray:
    """Cut to the first `dimensions` (Matryoshka), then L2-normalize if asked."""
    if dimensions is not None:
        width = vectors.shape[-1]
        if not 0 < dimensions <= width:
            raise GatewayError(invalid("dimensions", f"must be between 1 and this model's "
                                       f"{width} dimensions, not {dimensions}"))
        vectors = vectors[..., :dimensions]
    return np.ascontiguousarray(l2_normalize(vectors) if normalize else vectors)
