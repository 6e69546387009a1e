"""-max_seq_len admission: does a row fit, by how much not, what a cut keeps, and the refusal.

The one rule every front end applies: the ventilator under -truncation error,
the TEI, OpenAI and Cohere routes (`truncate: false`, `truncation: "error"`,
`truncation_direction: left`) and /rerank and /predict. A row is one text or a
pair; it counts its parts' tokens plus the special tokens the model's family
places around them (BERT's ``[CLS] a [SEP] b [SEP]``, RoBERTa's ``<s> a </s></s>
b </s>``, Qwen's one appended end-of-text), so a row fits when that total is at
most -max_seq_len (with -max_seq_len NONE, the model's own limit). A single
text over it keeps ``max_len - single_specials`` tokens, a pair what the
family's pair rule keeps of each part (`pair_keeps`); `cut` takes them from the
right (the server's own truncation) or the left (the last tokens).

No tokenizer and no transport here: the counts come from the server's tokenizer
(`LengthRule.of` reads what it needs once), and a front end turns a `TooLong`
into its own error with the message made here (`wire_refusal`,
`request_refusal`).

Usage::

    rule = LengthRule.of(tokenizer)
    too_long = rule.first_too_long(tokenizer.full_lengths(rows))
    if too_long is not None:
        raise ValueError(wire_refusal(too_long))
    keep, _ = rule.keeps(len(ids))
    kept = cut(ids, keep, "left")               # TEI's truncation_direction: left
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from bert_serving.proto.inputs import Dual, Ids, TextInput

__all__ = ["COHERE_WORDS", "OPENAI_WORDS", "TEI_SPARSE_WORDS", "TEI_WORDS", "LengthRule",
           "RequestWords", "Side", "Sizes", "TooLong", "cut", "request_refusal", "wire_refusal"]

Side = Literal["right", "left"]


class Sizes(Protocol):
    """What the rule reads of the server's tokenizer (`TextTokenizer` has all of it)."""

    @property
    def max_len(self) -> int: ...

    @property
    def single_specials(self) -> int: ...

    def pair_keeps(self, len_a: int, len_b: int) -> tuple[int, int]: ...

    def full_lengths(self, texts: Sequence[TextInput]) -> list[int]: ...


@dataclass(frozen=True)
class TooLong:
    """Row `index` has `tokens` tokens, special tokens included, over the `limit`."""

    index: int
    tokens: int
    limit: int
    is_pair: bool = False


@dataclass(frozen=True)
class LengthRule:
    """The longest row the server takes and how a longer one is cut.

    `max_len`: -max_seq_len, or the model's limit under NONE (specials included).
    `model_max_len`: the longest row the model could take (its position table);
    None where unknown. `pair_keeps`: the family's rule for a pair's two parts.
    """

    max_len: int
    single_specials: int
    pair_specials: int
    pair_keeps: Callable[[int, int], tuple[int, int]]
    model_max_len: int | None = None

    @classmethod
    def of(cls, tokenizer: Sizes, *, model_max_len: int | None = None) -> LengthRule:
        """The rule of a tokenizer; its pair specials are those of a pair of empty parts."""
        empty_pair = Dual(Ids(()), Ids(()))
        return cls(tokenizer.max_len, tokenizer.single_specials,
                   tokenizer.full_lengths([empty_pair])[0], tokenizer.pair_keeps,
                   model_max_len)

    def tokens(self, first: int, second: int | None = None) -> int:
        """A row's tokens, specials included: one text of `first`, or a pair."""
        if second is None:
            return first + self.single_specials
        return first + second + self.pair_specials

    def fits(self, first: int, second: int | None = None) -> bool:
        """Whether the row goes as it is: its tokens, specials included, within `max_len`."""
        return self.tokens(first, second) <= self.max_len

    def keeps(self, first: int, second: int | None = None) -> tuple[int, int]:
        """Tokens a cut keeps of each part (0 of an absent second): all of a row that fits."""
        if second is None:
            return min(first, self.max_len - self.single_specials), 0
        return self.pair_keeps(first, second)

    def check(self, index: int, first: int, second: int | None = None) -> TooLong | None:
        """Row `index` (one text of `first` tokens, or a pair) as a `TooLong`, if it is."""
        if self.fits(first, second):
            return None
        return TooLong(index, self.tokens(first, second), self.max_len, second is not None)

    def first_too_long(self, totals: Iterable[int]) -> TooLong | None:
        """The first row whose total (specials included) is over `max_len`, if any."""
        for index, total in enumerate(totals):
            if total > self.max_len:
                return TooLong(index, total, self.max_len)
        return None

    @property
    def can_grow(self) -> bool:
        """Whether a larger -max_seq_len exists: not where the model's limit is reached."""
        return self.model_max_len is None or self.max_len < self.model_max_len


def cut(ids: Sequence[int], keep: int, side: Side) -> tuple[int, ...]:
    """`keep` of `ids` from the start (`right`: the end goes) or from the end (`left`)."""
    keep = max(0, min(keep, len(ids)))
    return tuple(ids[len(ids) - keep:] if side == "left" else ids[:keep])


def wire_refusal(too_long: TooLong) -> str:
    """The 1.10 protocol's refusal under -truncation error (the ventilator's BadRequest)."""
    return (f"text {too_long.index} has {too_long.tokens} tokens, more than the "
            f"{too_long.limit} of -max_seq_len (the server runs -truncation error): shorten "
            "it, or start the server with -truncation chunk or truncate")


class RequestWords(NamedTuple):
    """How a route's request asks for a cut (`cut`) and for a chunking server's windows."""

    cut: str
    chunk: str


TEI_WORDS = RequestWords("send truncate: true", 'send truncation: "chunk"')
TEI_SPARSE_WORDS = RequestWords("send truncate: true", "send no truncate")
"""/embed_sparse has no `truncation` field: on a chunking server, leaving `truncate` out chunks."""
OPENAI_WORDS = RequestWords('send truncation: "truncate"', 'send truncation: "chunk"')
COHERE_WORDS = RequestWords('send truncate: "END" or "START"', "send no truncate")


def request_refusal(too_long: TooLong, rule: LengthRule, field: str, *,
                    server_chunks: bool, words: RequestWords = TEI_WORDS) -> str:
    """An HTTP route's refusal of row `field[index]`, with what the sender can change.

    A cut always helps (`words.cut`); a larger -max_seq_len only below the model's own
    limit; chunks only for single texts (a pair is one row: which window of one part
    goes with which of the other has no answer), asked of the request (`words.chunk`)
    where the server chunks already, else of the start.
    """
    options = [words.cut]
    start = ["a larger -max_seq_len"] if rule.can_grow else []
    if not too_long.is_pair:
        if server_chunks:
            options.append(words.chunk)
        else:
            start.append("-truncation chunk")
    if start:
        options.append("start the server with " + " or ".join(start))
    return (f"{field}[{too_long.index}]: has {too_long.tokens} tokens (special tokens "
            f"included), more than this server's limit of {too_long.limit} (-max_seq_len): "
            + ", or ".join(options))
