"""What the TEI and OpenAI routes do around the server's vectors: prompts, truncation, shaping.

Pure functions over plain values; routes call them, the service sends the
result through the shared BertClient like any other request.

Texts reach the server exactly as the client sent them (the *ext* payload:
'|||' is text there, and no whitespace is touched), except where they are cut
here and go as the kept token ids (`Ids`, which the model reads as they are):
`truncation_direction: left`, which keeps a text's last pieces where the server
keeps its first; and a request that asks to truncate a server that does not
(-truncation error or chunk). `truncate: false`, or `truncation: "error"`,
checks each text against the server's -max_seq_len and refuses the longer
ones. `truncation: "chunk"` needs a server started with -truncation chunk,
which does the windows.

Usage::

    inputs = prepare_texts(["hi ||| there "], prompt="", tools=tokenizer,
                           truncate=None, direction="right")
    # or, with a request's own choice:  ..., truncation="error", server_truncation="chunk")
    rows = shape_vectors(vectors, dimensions=128, normalize=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from bert_serving.proto.inputs import Dual, Ids, TextInput

from ..model.head import ModelHead
from ..model.native_embedding import l2_normalize
from ..model.precision import Running
from ..model.tokenization import Piece
from .errors import GatewayError, Problem, invalid

__all__ = ["ServedModel", "TextTools", "cut_left", "prepare_texts", "prompt_for",
           "request_truncation", "shape_vectors"]

Direction = Literal["right", "left"]
Truncation = Literal["truncate", "error", "chunk"]


class TextTools(Protocol):
    """The server's tokenizer, as the routes that show or cut tokens need it."""

    @property
    def max_len(self) -> int: ...

    @property
    def cls_id(self) -> int: ...

    @property
    def sep_id(self) -> int: ...

    @property
    def single_specials(self) -> int: ...

    def specials_around_text(self) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]: ...

    def pieces(self, text: str) -> list[Piece]: ...

    def full_lengths(self, texts: Sequence[TextInput]) -> list[int]: ...

    def pair_keeps(self, len_a: int, len_b: int) -> tuple[int, int]: ...

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str: ...


@dataclass(frozen=True)
class ServedModel:
    """What the TEI and OpenAI routes know of the model behind the server.

    `native`: the routes' vectors are the model's own embedding, either because the
    graph pools it beside the server's pooling (`ask_native`: the routes ask for those
    columns) or because the server runs -pooling_strategy MODEL. `pooling` is TEI's
    name for the routes' pooling; `normalized`: their vectors are unit length already;
    `server_pooling`: what the 1.10 protocol and /encode get.
    """

    name: str
    pooling: str = "mean"
    native: bool = False
    ask_native: bool = False
    server_pooling: str = ""
    normalized: bool = False
    token_level: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    dtype: str = "float32"
    max_batch_tokens: int | None = None
    tools: TextTools | None = None
    truncation: Truncation = "truncate"
    """The server's -truncation: what a request that does not say gets."""
    head: ModelHead = ModelHead.EMBEDDING
    """What the served graph outputs; routes for another head refuse (see `model_head`)."""
    labels: tuple[str, ...] = ()
    """A classifier's label names by logit index (id2label); () for other heads."""
    embedding_ranges: np.ndarray | None = field(default=None, compare=False)
    """-embedding_ranges: [2, dim] per-dimension min and max for int8 and uint8."""
    running: Running = field(default_factory=Running)
    """The runtime and the precision it reports it computes in (/info)."""


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


def request_truncation(truncation: Truncation | None, truncate: bool | None,
                       server: Truncation) -> Truncation:
    """What this request gets: its `truncation`, else TEI's `truncate`, else the server's."""
    mode: Truncation = (truncation if truncation is not None else "error" if truncate is False
                        else "truncate" if truncate else server)
    if mode == "chunk" and server != "chunk":
        raise GatewayError(invalid("truncation", f"chunk needs the server started with "
                                   f"-truncation chunk; this one runs -truncation {server}"))
    return mode


def prepare_texts(texts: Sequence[str], *, prompt: str, tools: TextTools | None,
                  truncate: bool | None, direction: Direction,
                  truncation: Truncation | None = None,
                  server_truncation: Truncation = "truncate") -> list[TextInput]:
    """The rows for the client's `encode_inputs` (see the module's docstring)."""
    prompted: list[TextInput] = [prompt + text for text in texts]
    mode = request_truncation(truncation, truncate, server_truncation)
    if tools is None:
        return prompted
    pieces: list[list[Piece]] | None = None
    if mode == "error":
        pieces = [tools.pieces(text) for text in prompted]
        _check_lengths(pieces, tools.max_len, tools.single_specials)
    cut_here = mode == "truncate" and server_truncation != "truncate"
    if (direction == "right" or mode == "chunk") and not cut_here:
        return prompted
    pieces = pieces or [tools.pieces(text) for text in prompted]
    keep = tools.max_len - tools.single_specials
    return [_kept([p.id for p in row], keep, direction) for row in pieces]


def cut_left(rows: Sequence[str | Dual], tools: TextTools | None) -> list[TextInput]:
    """TEI's `truncation_direction: left` for /rerank and /predict: each row over
    -max_seq_len as the ids of its last tokens. A pair keeps as many tokens of each part
    as the server's own pair rule keeps (`pair_keeps`), from each part's end, as
    transformers does with `truncation_side="left"`. Rows that fit go as they are."""
    if tools is None:
        return list(rows)
    return [_cut_pair_left(row, tools) if isinstance(row, Dual)
            else _cut_text_left(row, tools) for row in rows]


def _cut_text_left(text: str, tools: TextTools) -> TextInput:
    ids = [piece.id for piece in tools.pieces(text)]
    keep = tools.max_len - tools.single_specials
    return _kept(ids, keep, "left") if len(ids) > keep else text


def _cut_pair_left(pair: Dual, tools: TextTools) -> TextInput:
    first, second = ([piece.id for piece in tools.pieces(part)] if isinstance(part, str)
                     else list(part.ids) for part in pair)
    keep_first, keep_second = tools.pair_keeps(len(first), len(second))
    if (keep_first, keep_second) == (len(first), len(second)):
        return pair
    return Dual(_kept(first, keep_first, "left"), _kept(second, keep_second, "left"))


def _kept(ids: list[int], keep: int, direction: Direction) -> Ids:
    return Ids(tuple(ids[max(0, len(ids) - keep):] if direction == "left" else ids[:keep]))


def _check_lengths(pieces: list[list[Piece]], max_len: int, specials: int) -> None:
    for index, row in enumerate(pieces):
        count = len(row) + specials
        if count > max_len:
            raise GatewayError(Problem(
                "ValidationError", 422,
                f"inputs[{index}]: has {count} tokens, more than this server's limit of "
                f"{max_len} (-max_seq_len): send truncate: true, or start the server with a "
                "larger -max_seq_len or -truncation chunk", "inputs"))


def shape_vectors(vectors: np.ndarray, *, dimensions: int | None, normalize: bool) -> np.ndarray:
    """Cut to the first `dimensions` (Matryoshka), then L2-normalize if asked."""
    if dimensions is not None:
        width = vectors.shape[-1]
        if not 0 < dimensions <= width:
            raise GatewayError(invalid("dimensions", f"must be between 1 and this model's "
                                       f"{width} dimensions, not {dimensions}"))
        vectors = vectors[..., :dimensions]
    return np.ascontiguousarray(l2_normalize(vectors) if normalize else vectors)
