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
which does the windows. /rerank, /predict and Cohere's rerank (which always cuts)
send their pairs through the same step (`admit_rows`); what fits, what is cut and
the refusal's words are `model.admission`'s, the rule the ventilator applies too.

Usage::

    inputs = prepare_texts(["hi ||| there "], model=served, prompt="", truncate=None,
                           direction="right")
    # or, with a request's own choice:  ..., truncation="error")
    rows = admit_rows([Dual("query", "text")], model=served, mode="error", direction="left",
                      field="texts")
    rows = shape_vectors(vectors, dimensions=128, normalize=True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Protocol

import numpy as np

from bert_serving.proto.inputs import Dual, Ids, TextInput

from ..model.admission import TEI_WORDS, LengthRule, RequestWords, cut, request_refusal
from ..model.head import ModelHead
from ..model.native_embedding import l2_normalize
from ..model.precision import Running
from ..model.tokenization import Piece
from .errors import GatewayError, Problem, invalid

__all__ = ["ServedModel", "TextTools", "admit_rows", "prepare_texts", "prompt_for",
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

    def part_ids(self, part: str | Ids) -> Sequence[int]: ...

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
    max_tokens: int | None = None
    """The longest row the served graph takes (-max_seq_len NONE's limit); None: unknown."""

    @cached_property
    def length_rule(self) -> LengthRule | None:
        """The one length rule (`model.admission`) over the server's tokenizer, built on
        first use and kept: every request that is checked or cut reads the same one."""
        return None if self.tools is None else LengthRule.of(self.tools,
                                                              model_max_len=self.max_tokens)


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


def prepare_texts(texts: Sequence[str], *, model: ServedModel, prompt: str,
                  truncate: bool | None, direction: Direction,
                  truncation: Truncation | None = None, field: str = "inputs",
                  words: RequestWords = TEI_WORDS) -> list[TextInput]:
    """The rows for the client's `encode_inputs` (see the module's docstring); a refusal
    names `field[i]`, the request's own field (TEI's `inputs`, OpenAI's `input`, Cohere's
    `texts`)."""
    prompted: list[str | Dual] = [prompt + text for text in texts]
    mode = request_truncation(truncation, truncate, model.truncation)
    return admit_rows(prompted, model=model, mode=mode, direction=direction, field=field,
                      words=words)


def admit_rows(rows: Sequence[str | Dual], *, model: ServedModel, mode: Truncation,
               direction: Direction, field: str = "inputs",
               words: RequestWords = TEI_WORDS) -> list[TextInput]:
    """Texts and pairs as the server is to get them, by the one length rule (`admission`).

    `error` refuses the first row over -max_seq_len (422, naming `field[i]`, offering
    what the route's request can say: `words`); `truncate` cuts here the rows the
    server would not cut so (`left`, or a server that refuses or chunks long rows).
    A row tokenized here travels as its ids, so the ventilator does not tokenize it
    again; every other row goes as sent.
    """
    tools, rule, server = model.tools, model.length_rule, model.truncation
    cut_here = mode == "truncate" and (direction == "left" or server != "truncate")
    if tools is None or rule is None or not (mode == "error" or cut_here):
        return list(rows)
    parts = [_part_ids(row, tools) for row in rows]
    if mode == "error":
        _refuse_long(parts, rule, field, server_chunks=server == "chunk", words=words)
        return [_as_ids(first, second) for first, second in parts]
    return [_cut_row(first, second, rule, direction) for first, second in parts]


_Parts = tuple[list[int], list[int] | None]


def _part_ids(row: str | Dual, tools: TextTools) -> _Parts:
    """A row's untruncated ids, as the server tokenizes them: one text's, or each part's."""
    if isinstance(row, Dual):
        return list(tools.part_ids(row.first)), list(tools.part_ids(row.second))
    return list(tools.part_ids(row)), None


def _refuse_long(parts: Sequence[_Parts], rule: LengthRule, field: str, *,
                 server_chunks: bool, words: RequestWords) -> None:
    for index, (first, second) in enumerate(parts):
        too_long = rule.check(index, len(first), None if second is None else len(second))
        if too_long is not None:
            raise GatewayError(Problem("ValidationError", 422, request_refusal(
                too_long, rule, field, server_chunks=server_chunks, words=words), field))


def _as_ids(first: Sequence[int], second: Sequence[int] | None) -> TextInput:
    """A row's part ids as the row the server reads: one text's `Ids`, or a pair of them."""
    if second is None:
        return Ids(tuple(first))
    return Dual(Ids(tuple(first)), Ids(tuple(second)))


def _cut_row(first: list[int], second: list[int] | None, rule: LengthRule,
             side: Direction) -> TextInput:
    """A row's ids: whole if it fits, else what the rule keeps, from `side`.

    A pair keeps what the family's pair rule keeps of each part (`pair_keeps`), from
    each part's end for `left`, as transformers does with `truncation_side="left"`."""
    len_second = None if second is None else len(second)
    if rule.fits(len(first), len_second):
        return _as_ids(first, second)
    keep_first, keep_second = rule.keeps(len(first), len_second)
    return _as_ids(cut(first, keep_first, side),
                   None if second is None else cut(second, keep_second, side))


def shape_vectors(vectors: np.ndarray, *, dimensions: int | None, normalize: bool) -> np.ndarray:
    """Cut to the first `dimensions` (Matryoshka), then L2-normalize if asked."""
    if dimensions is not None:
        width = vectors.shape[-1]
        if not 0 < dimensions <= width:
            raise GatewayError(invalid("dimensions", f"must be between 1 and this model's "
                                       f"{width} dimensions, not {dimensions}"))
        vectors = vectors[..., :dimensions]
    return np.ascontiguousarray(l2_normalize(vectors) if normalize else vectors)
