"""The one -max_seq_len rule (model/admission.py): what fits, what a cut keeps, the refusals.

The pure rule against a statement of it written out here (a row as the list of
its tokens, specials placed as the family places them); then the rule of every
non-BERT family's tokenizer.json (BERT's WordPiece: test_http_preparation.py)
against transformers' fast tokenizer of the same folder: a row's count with
special tokens, and what `truncation=True, max_length=L` keeps from either side
(`truncation_side`), through the routes' `admit_rows` and the server's layout.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from make_random_family import MAX_TOKENS
from reference import heldout_texts
from transformers import AutoTokenizer

from bert_serving.proto.inputs import Dual, Ids
from bert_serving.server.http.errors import GatewayError
from bert_serving.server.http.preparation import ServedModel, admit_rows
from bert_serving.server.model.admission import (
    COHERE_WORDS,
    LengthRule,
    TooLong,
    cut,
    request_refusal,
    wire_refusal,
)
from bert_serving.server.model.hf_tokenizer import HfTokenizer


def first_part_first(budget: int) -> Callable[[int, int], tuple[int, int]]:
    """A pair rule (the rule is the family's; this one fills the first part, then the second)."""
    def keeps(len_a: int, len_b: int) -> tuple[int, int]:
        keep_a = min(len_a, budget)
        return keep_a, min(len_b, budget - keep_a)
    return keeps


@st.composite
def rules(draw: st.DrawFn) -> tuple[LengthRule, tuple[int, int, int]]:
    """A rule of some family's specials (prefix, middle, suffix), and those counts."""
    prefix, middle, suffix = (draw(st.integers(0, 2)) for _ in range(3))
    pair = prefix + middle + suffix
    max_len = draw(st.integers(max(1, pair), 40))
    model_max = draw(st.none() | st.integers(max_len, 60))
    rule = LengthRule(max_len, prefix + suffix, pair, first_part_first(max_len - pair), model_max)
    return rule, (prefix, middle, suffix)


def laid_out(specials: tuple[int, int, int], first: list[int],
             second: list[int] | None) -> list[int]:
    """The row the model reads: -1 for each special token, the parts' ids between."""
    prefix, middle, suffix = specials
    inner = first if second is None else [*first, *[-1] * middle, *second]
    return [*[-1] * prefix, *inner, *[-1] * suffix]


parts = st.lists(st.integers(0, 999), max_size=50)


@given(rules(), parts, st.none() | parts, st.sampled_from(["left", "right"]))
def test_a_row_fits_when_its_laid_out_tokens_do_and_a_cut_makes_it_fit(
        drawn: tuple[LengthRule, tuple[int, int, int]], first: list[int],
        second: list[int] | None, side: Any) -> None:
    rule, specials = drawn
    row = laid_out(specials, first, second)
    len_b = None if second is None else len(second)
    assert rule.tokens(len(first), len_b) == len(row)
    assert rule.fits(len(first), len_b) == (len(row) <= rule.max_len)
    too_long = rule.check(7, len(first), len_b)
    assert (too_long is None) == (len(row) <= rule.max_len)
    if too_long is not None:
        assert too_long == TooLong(7, len(row), rule.max_len, second is not None)
    keep_a, keep_b = rule.keeps(len(first), len_b)
    kept_a = cut(first, keep_a, side)
    kept_b = None if second is None else cut(second, keep_b, side)
    kept = laid_out(specials, list(kept_a), None if kept_b is None else list(kept_b))
    # A cut row fits, loses nothing it need not (fills the limit), and keeps its own
    # tokens in order from the side asked: the start for right, the end for left.
    assert len(kept) == min(len(row), rule.max_len)
    for whole, part in ((first, kept_a), (second, kept_b)):
        if whole is not None and part is not None:
            at = 0 if side == "right" else len(whole) - len(part)
            assert list(part) == whole[at:at + len(part)]


@given(rules(), st.lists(st.integers(0, 60), max_size=8))
def test_the_first_row_over_the_limit_is_named(
        drawn: tuple[LengthRule, tuple[int, int, int]], totals: list[int]) -> None:
    rule = drawn[0]
    over = [i for i, total in enumerate(totals) if total > rule.max_len]
    found = rule.first_too_long(totals)
    assert found == (TooLong(over[0], totals[over[0]], rule.max_len) if over else None)


def test_cut_takes_from_the_side_asked() -> None:
    ids = [1, 2, 3, 4, 5]
    assert cut(ids, 2, "right") == (1, 2) and cut(ids, 2, "left") == (4, 5)
    assert cut(ids, 0, "left") == () and cut(ids, 9, "left") == (1, 2, 3, 4, 5)


def rule_of(max_len: int, model_max: int | None) -> LengthRule:
    return LengthRule(max_len, 2, 3, first_part_first(max_len - 3), model_max)


def test_the_wire_refusal_names_the_text_and_the_flags() -> None:
    assert wire_refusal(TooLong(1, 30, 25)) == (
        "text 1 has 30 tokens, more than the 25 of -max_seq_len (the server runs -truncation "
        "error): shorten it, or start the server with -truncation chunk or truncate")


@pytest.mark.parametrize(("too_long", "model_max", "server_chunks", "offers"), [
    (TooLong(1, 30, 25), 512, False,
     "send truncate: true, or start the server with a larger -max_seq_len or -truncation chunk"),
    (TooLong(1, 30, 25, is_pair=True), None, False,
     "send truncate: true, or start the server with a larger -max_seq_len"),
    # -max_seq_len NONE (or the model's own limit): no larger one to offer
    (TooLong(0, 600, 512), 512, False,
     "send truncate: true, or start the server with -truncation chunk"),
    (TooLong(0, 600, 512, is_pair=True), 512, False, "send truncate: true"),
    (TooLong(0, 30, 25), 512, True,
     'send truncate: true, or send truncation: "chunk", or start the server with a larger '
     "-max_seq_len"),
])
def test_a_request_refusal_offers_only_what_would_help(
        too_long: TooLong, model_max: int | None, server_chunks: bool, offers: str) -> None:
    message = request_refusal(too_long, rule_of(too_long.limit, model_max), "texts",
                              server_chunks=server_chunks)
    assert message == (f"texts[{too_long.index}]: has {too_long.tokens} tokens (special tokens "
                       f"included), more than this server's limit of {too_long.limit} "
                       f"(-max_seq_len): {offers}")


def test_a_route_names_its_own_request_fields() -> None:
    message = request_refusal(TooLong(0, 30, 25), rule_of(25, 512), "texts",
                              server_chunks=True, words=COHERE_WORDS)
    assert message.endswith(': send truncate: "END" or "START", or send no truncate, or start '
                            "the server with a larger -max_seq_len")


# -- the rule of real tokenizers, against transformers --------------------------------------


MAX_SEQ_LEN = 12
PAIRS = [("a short one", "and its partner"),
         ("Le chat dort sur le canapé pendant qu'il pleut dehors.", "The cat sleeps."),
         ("one two three four five six seven", "eight nine ten eleven twelve thirteen")]


@pytest.fixture(scope="module")
def family_tokenizers(family_dir: Path) -> tuple[HfTokenizer, Any]:
    ours = HfTokenizer(family_dir / "tokenizer.json", max_seq_len=MAX_SEQ_LEN,
                       max_position_embeddings=MAX_TOKENS)
    return ours, AutoTokenizer.from_pretrained(family_dir)


def test_every_family_counts_its_own_specials(family_tokenizers: tuple[HfTokenizer, Any]) -> None:
    """RoBERTa's <s> a </s></s> b </s>, Qwen's one appended end-of-text, ...: counted as
    transformers lays the row out, by the routes (pieces) and the ventilator (full_lengths)."""
    ours, reference = family_tokenizers
    rule = LengthRule.of(ours, model_max_len=MAX_TOKENS)
    rows: list[tuple[str, str | None]] = [(t, None) for t in heldout_texts()[:20]] + list(PAIRS)
    want = [len(reference(a, b)["input_ids"]) for a, b in rows]
    pieces = [rule.tokens(len(ours.pieces(a)), None if b is None else len(ours.pieces(b)))
              for a, b in rows]
    assert pieces == want
    assert ours.full_lengths([a if b is None else Dual(a, b) for a, b in rows]) == want


@pytest.mark.parametrize("side", ["left", "right"])
def test_every_family_cuts_as_transformers_from_either_side(
        family_tokenizers: tuple[HfTokenizer, Any], side: Any) -> None:
    ours, reference = family_tokenizers
    rows: list[str | Dual] = [*heldout_texts()[:20], *(Dual(a, b) for a, b in PAIRS)]
    admitted = admit_rows(rows, model=ServedModel(name="m", tools=ours), mode="truncate",
                          direction=side)
    got = ours.tokenize_rows(admitted)
    starts = [0, *got.lengths.cumsum().tolist()]
    ids = [got.ids[a:b].tolist() for a, b in itertools.pairwise(starts)]
    reference.truncation_side = side
    want = [reference(*((row.first, row.second) if isinstance(row, Dual) else (row,)),
                      truncation=True, max_length=MAX_SEQ_LEN)["input_ids"] for row in rows]
    assert ids == want
    assert any(isinstance(row, Ids) for row in admitted) == (side == "left")


def test_truncate_false_refuses_a_long_pair_naming_it(
        family_tokenizers: tuple[HfTokenizer, Any]) -> None:
    ours, reference = family_tokenizers
    rows: list[str | Dual] = [Dual("a", "b"), Dual(*PAIRS[2])]
    count = len(reference(*PAIRS[2])["input_ids"])
    assert len(reference("a", "b")["input_ids"]) <= MAX_SEQ_LEN < count
    model = ServedModel(name="m", tools=ours, max_tokens=MAX_TOKENS)
    with pytest.raises(GatewayError) as refused:
        admit_rows(rows, model=model, mode="error", direction="right", field="texts")
    assert refused.value.problem.status == 422
    assert refused.value.problem.message.startswith(
        f"texts[1]: has {count} tokens (special tokens included), more than this server's "
        f"limit of {MAX_SEQ_LEN} (-max_seq_len)")
    assert refused.value.problem.param == "texts"
    # a row that fits travels as the ids counted here, so the server does not tokenize it again
    assert admit_rows(rows[:1], model=model, mode="error", direction="left") == [
        Dual(Ids(tuple(ours.part_ids("a"))), Ids(tuple(ours.part_ids("b"))))]
