"""The TEI and OpenAI routes' pure steps: prompts, truncation, Matryoshka cuts; the server's view.

Run on the MiniLM's real tokenizer; no server.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from reference import TransformersReference
from transformers import AutoTokenizer

from bert_serving.proto.inputs import Dual, Ids
from bert_serving.server.config import parse_server_config
from bert_serving.server.http.errors import GatewayError
from bert_serving.server.http.preparation import (
    ServedModel,
    Truncation,
    admit_rows,
    prepare_texts,
    prompt_for,
    shape_vectors,
)
from bert_serving.server.http.served_model import native_embedding_notes, served_model
from bert_serving.server.model.admission import LengthRule
from bert_serving.server.model.graph_contract import GraphMetadata
from bert_serving.server.model.pooling import NativeView, PoolingSpec, PoolingStrategy
from bert_serving.server.model.served_graph import ServedGraph
from bert_serving.server.model.wordpiece import WordPieceTokenizer


@pytest.fixture(scope="module")
def tokenizer(minilm_dir: Path) -> WordPieceTokenizer:
    return WordPieceTokenizer(minilm_dir / "vocab.txt", max_seq_len=6)


def served(tokenizer: WordPieceTokenizer, truncation: Truncation = "truncate") -> ServedModel:
    """The routes' view of a server of this tokenizer under this -truncation."""
    return ServedModel(name="m", tools=tokenizer, truncation=truncation)


def ids(tokenizer: WordPieceTokenizer, text: str) -> Ids:
    return Ids(tuple(piece.id for piece in tokenizer.pieces(text)))


def test_plain_texts_go_as_text(tokenizer: WordPieceTokenizer) -> None:
    assert prepare_texts(["hello world"], prompt="q: ", model=served(tokenizer), truncate=None,
                         direction="right") == ["q: hello world"]


def test_texts_go_verbatim_bars_and_whitespace_included(tokenizer: WordPieceTokenizer) -> None:
    texts = ["a ||| b", "  c\t", "|||"]
    assert prepare_texts(texts, prompt="", model=served(tokenizer), truncate=True,
                         direction="right") == texts


def test_left_truncation_keeps_the_end_as_ids(tokenizer: WordPieceTokenizer) -> None:
    inputs = prepare_texts(["one two three four five six"], prompt="", model=served(tokenizer),
                           truncate=None, direction="left")
    assert inputs == [ids(tokenizer, "three four five six")]
    assert prepare_texts(["a ||| b"], prompt="", model=served(tokenizer), truncate=None,
                         direction="left") == [ids(tokenizer, "| | | b")]  # its last 4 pieces


def test_truncate_false_refuses_long_texts(tokenizer: WordPieceTokenizer) -> None:
    assert prepare_texts(["one two three four"], prompt="", model=served(tokenizer),
                         truncate=False, direction="right") == [ids(tokenizer,
                                                                    "one two three four")]
    with pytest.raises(GatewayError, match=r"inputs\[1\]: has 7 tokens \(special tokens "
                                           r"included\), more than .* 6"):
        prepare_texts(["ok", "one two three four five"], prompt="", model=served(tokenizer),
                      truncate=False, direction="right")


def test_the_length_rule_counts_berts_specials(tokenizer: WordPieceTokenizer,
                                              minilm_dir: Path) -> None:
    """[CLS] a [SEP] and [CLS] a [SEP] b [SEP], as transformers counts them."""
    reference = AutoTokenizer.from_pretrained(minilm_dir)
    rule = LengthRule.of(tokenizer)
    assert (rule.max_len, rule.single_specials, rule.pair_specials) == (
        6, reference.num_special_tokens_to_add(pair=False),
        reference.num_special_tokens_to_add(pair=True))


def test_a_long_pair_is_refused_or_cut_by_the_pair_rule(tokenizer: WordPieceTokenizer) -> None:
    """/rerank and /predict's rows: 6 positions, 3 specials, Google's rule keeps 2 and 1."""
    pair = Dual("one two three", "four five")
    with pytest.raises(GatewayError, match=r"texts\[0\]: has 8 tokens \(special tokens "
                                           r"included\), .*-max_seq_len\): send truncate: "
                                           r"true, or start the server with a larger "
                                           r"-max_seq_len$"):
        admit_rows([pair], model=served(tokenizer), mode="error", direction="right",
                   field="texts")
    assert admit_rows([pair], model=served(tokenizer, "error"), mode="truncate",
                      direction="right") == [Dual(ids(tokenizer, "one two"), ids(tokenizer,
                                                                                 "four"))]
    assert admit_rows([pair], model=served(tokenizer), mode="truncate",
                      direction="right") == [pair]  # the server cuts it the same way


def test_admission_counts_and_cuts_the_servers_own_ids(
    tokenizer: WordPieceTokenizer, reference: TransformersReference
) -> None:
    """Each Σ's case as the server (and Google's tokenizer) decides it, on the cleaned text:
    'İ ΟΔΟΣ' is 4 pieces (ο ##δ ##ος) and fits 6; a cut sends ##σ where a control
    character stood between Σ and a letter."""
    fits = "İ ΟΔΟΣ"
    assert prepare_texts([fits], prompt="", model=served(tokenizer, "error"), truncate=False,
                         direction="right") == [
        Ids(tuple(reference.tokenizer(fits, add_special_tokens=False)["input_ids"]))]
    long = "one two ΑΣ\x01Α ΟΔΟΣ"
    wanted = reference.tokenizer(long, add_special_tokens=False)["input_ids"]
    assert [reference.tokenizer.convert_ids_to_tokens(i) for i in wanted[-6:-2]] == [
        "α", "##σ", "##α", "ο"]
    for direction, kept in (("left", wanted[-4:]), ("right", wanted[:4])):
        assert prepare_texts([long], prompt="", model=served(tokenizer, "error"), truncate=True,
                             direction=direction) == [Ids(tuple(kept))]


LONG = "one two three four five six"


def test_a_request_may_ask_a_chunking_server_to_truncate_or_refuse(
    tokenizer: WordPieceTokenizer
) -> None:
    """Under -truncation chunk, raw texts go to be chunked, unless the request says otherwise."""
    def prepare(**options: object) -> list[object]:
        return prepare_texts([LONG], model=served(tokenizer, "chunk"), prompt="",
                             direction="right", **options)  # type: ignore[arg-type]

    assert prepare(truncate=None) == [LONG]
    assert prepare(truncate=None, truncation="chunk") == [LONG]
    cut = [ids(tokenizer, "one two three four")]
    assert prepare(truncate=True) == cut  # TEI's truncate: cut here, the server would chunk
    assert prepare(truncate=False, truncation="truncate") == cut  # truncation wins
    with pytest.raises(GatewayError, match=r"inputs\[0\]: has 8 tokens"):
        prepare(truncate=None, truncation="error")


def test_chunk_needs_a_chunking_server_and_error_servers_refuse_by_default(
    tokenizer: WordPieceTokenizer
) -> None:
    with pytest.raises(GatewayError, match="chunk needs the server started with -truncation "
                                           "chunk; this one runs -truncation truncate"):
        prepare_texts([LONG], prompt="", model=served(tokenizer), truncate=None,
                      direction="right", truncation="chunk")
    with pytest.raises(GatewayError, match=r"inputs\[0\]: has 8 tokens"):
        prepare_texts([LONG], prompt="", model=served(tokenizer, "error"), truncate=None,
                      direction="right")
    assert prepare_texts([LONG], prompt="", model=served(tokenizer, "error"), truncate=True,
                         direction="right") == [ids(tokenizer, "one two three four")]


def test_prompts_by_name_default_and_unknown() -> None:
    model = ServedModel(name="m", prompts={"query": "query: "}, default_prompt_name="query")
    assert prompt_for(model, None) == "query: "
    assert prompt_for(ServedModel(name="m"), None) == ""
    with pytest.raises(GatewayError, match="'doc' is not one of .* query"):
        prompt_for(model, "doc")


def test_shape_vectors_cuts_then_normalizes() -> None:
    rows = np.array([[3.0, 4.0, 12.0], [1.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(shape_vectors(rows, dimensions=2, normalize=True),
                               [[0.6, 0.8], [1.0, 0.0]], atol=1e-7)
    np.testing.assert_array_equal(shape_vectors(rows, dimensions=None, normalize=False), rows)
    for bad in (0, 4):
        with pytest.raises(GatewayError, match="between 1 and this model's 3"):
            shape_vectors(rows, dimensions=bad, normalize=True)


def test_served_model_and_notes(minilm_dir: Path, tokenizer: WordPieceTokenizer) -> None:
    """A plain start pools the model's own embedding beside layer -2's mean for the routes;
    only a graph without that view (a ready .onnx) leaves them the server's pooling."""
    default = parse_server_config(["-http_port", "1"])
    view = default.engine.native_view
    assert view == NativeView(PoolingSpec((-1,), PoolingStrategy.REDUCE_MEAN), normalize=True)
    assert parse_server_config([]).engine.native_view is None  # no gateway: no second pooling
    metadata = GraphMetadata(default.engine.pooling, 384, 6, 512, 384, native=view,
                             native_width=384)
    graph = ServedGraph.of(metadata, normalize=False, native=default.native_embedding)
    model = served_model(default, tokenizer, graph)
    assert (model.native, model.ask_native, model.pooling, model.normalized) == (
        True, True, "mean", True)
    assert model.server_pooling == "REDUCE_MEAN of layer -2"
    assert model.max_tokens == 512  # the graph's own limit: no larger -max_seq_len to offer
    notes = native_embedding_notes(default, graph)
    assert not any("-pooling_strategy MODEL" in note for note in notes)
    assert any("-max_seq_len 256" in note for note in notes)
    plain = ServedGraph.of(dataclasses.replace(metadata, native=None, native_width=0),
                           normalize=False, native=default.native_embedding)
    without_view = served_model(default, tokenizer, plain)
    assert (without_view.native, without_view.ask_native, without_view.normalized) == (
        False, False, False)
    assert any("-pooling_strategy MODEL" in note for note in native_embedding_notes(default,
                                                                                    plain))
    native = parse_server_config(["-http_port", "1", "-pooling_strategy", "MODEL",
                                  "-max_seq_len", "256"])
    assert native.engine.native_view is None  # its pooling is the model's own already
    own = ServedGraph.of(GraphMetadata(native.engine.pooling, 384, 6, 512, 384),
                         normalize=native.engine.normalize, native=native.native_embedding)
    assert served_model(native, tokenizer, own).native
    assert not served_model(native, tokenizer, own).ask_native
    assert native_embedding_notes(native, own) == []
