"""Every text reaches the model exactly as the client sent it (issue 26), through the server.

A differential test: hypothesis draws texts with what a server is tempted to touch
(edge and inner whitespace of every kind, the literal '|||', control and zero-width
characters, combining marks, emoji, CJK, texts long enough to be cut at
-max_seq_len 128) and the real server (real ZeroMQ, real uvicorn, onnxruntime),
started once per model, must answer what transformers answers on torch CPU for
those texts as they are: tokenized by the folder's tokenizer.json itself
(`reference.file_tokenizer`, not AutoTokenizer), within 1e-4.

Models, tiny and random (scripts/make_random_classifier.py with `spread`, so a
one-token difference moves a score far past the tolerance): three cross-encoders,
one per tokenizer model a reranker ships (XLM-R's SentencePiece Unigram, RoBERTa's
byte-level BPE, ELECTRA's WordPiece), and one XLM-R embedding model
(scripts/make_random_family.py). Routes: TEI's /rerank, /predict, /tokenize and
/embed, Cohere's /v2/rerank, OpenAI's /v1/embeddings, and the 1.10 ZeroMQ protocol,
where 'a ||| b' still means the pair (a, b).

Scores are TEI's and Cohere's without raw_scores: the sigmoid of the one logit.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from make_random_classifier import write_random_classifier
from make_random_family import write_random_family
from reference import FileClassifierReference, FileReference, sigmoid
from server_process import ServerProcess

from bert_serving.client import BertClient

TOLERANCE = 1e-4
MAX_SEQ_LEN = 128
SPREAD = 1.0
"""The cross-encoders' logit std over their training texts: logits of other texts land
within about ±5, where the sigmoid still moves (2.0 put some at 0.9999)."""
SERVER_ARGS = ["-num_worker", "1", "-max_seq_len", str(MAX_SEQ_LEN)]
CROSS_ENCODERS = ("xlm-roberta", "roberta", "electra")
"""SentencePiece Unigram, byte-level BPE, WordPiece: the three tokenizer models."""
SPECIAL_NAMES = {"xlm-roberta": ("<s>", "</s>"), "roberta": ("<s>", "</s>"),
                 "electra": ("[CLS]", "[SEP]")}
"""What each vocabulary calls the tokens around a text, as /tokenize must name them."""

EXAMPLES = settings(
    deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)

# -- the texts ----------------------------------------------------------------------------------

SPACES = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\u3000", "\u00a0", "\u2009", "\u0085"]
INVISIBLE = ["\u200b", "\u200d", "\ufeff", "\u200e", "\u2060"]
CONTROLS = ["\x00", "\x07", "\x1b", "\x1c", "\x1f", "\x7f", "\x9f"]
PIECES = [
    "|||", " ||| ", "||||", "a|||b", "hello", "world", "The quick brown fox", "fox.", "42",
    "e\u0301", "\u0308", "\u0915\u094d\u0937", "😀", "👍🏽", "👨\u200d👩\u200d👧", "🇫🇷",
    "今天天气很好", "天", "Привет", "ÉCOLE", "Ångström", "ﬁ", "Ａ", "①", "<", "&", "\\",
    *SPACES, *INVISIBLE, *CONTROLS,
]
EDGES = st.lists(st.sampled_from(SPACES + INVISIBLE + CONTROLS), max_size=3).map("".join)
CHARS = st.characters(codec="utf-8")  # no lone surrogates (Cs): they are not text
WORDS = st.lists(st.one_of(st.sampled_from(PIECES), CHARS), min_size=1, max_size=20).map("".join)
SHORT_WORDS = st.lists(st.one_of(st.sampled_from(PIECES), CHARS), min_size=1,
                       max_size=6).map("".join)
LONG = st.builds(lambda unit, count: (unit + " quick brown fox ") * count,
                 WORDS, st.integers(min_value=45, max_value=120))
"""Over 128 tokens in every vocabulary here: the server must cut them where transformers does."""


def non_blank(text: str) -> bool:
    """What the HTTP routes accept: a character that is not white space (str.isspace)."""
    return bool(text.strip())


TEXTS = st.builds(lambda before, middle, after: before + middle + after,
                  EDGES, st.one_of(WORDS, WORDS, WORDS, LONG), EDGES).filter(non_blank)
QUERIES = st.builds(lambda before, middle, after: before + middle + after,
                    EDGES, SHORT_WORDS, EDGES).filter(non_blank)
"""Short: a pair is cut in its document only, where every truncation rule agrees (the
test assumes it); `test_a_pair_cut_on_both_sides_keeps_what_transformers_keeps` takes
the case where both sides are cut."""


def plain_edges(text: str) -> bool:
    """No white space, control, format or other invisible character at either end."""
    return all(not c.isspace() and unicodedata.category(c)[0] not in "CZ"
               for c in (text[0], text[-1]))


PAIR_PARTS = st.one_of(WORDS, WORDS, LONG).filter(lambda t: non_blank(t) and plain_edges(t))
"""Halves of a 1.10 'a ||| b', with `plain_edges`: the pair is (a, b) whatever the wire
drops around the separator."""


# -- the servers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """A model folder, the server started on it, an HTTP client of it, and its reference."""

    kind: str
    folder: Path
    server: ServerProcess
    http: httpx.Client
    reference: FileClassifierReference | FileReference

    def post(self, path: str, body: object) -> httpx.Response:
        return self.http.post(path, json=body)


@pytest.fixture(scope="module", params=CROSS_ENCODERS)
def cross_encoder_dir(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> Path:
    kind = str(request.param)
    folder = write_random_classifier(kind, tmp_path_factory.mktemp(f"exact-{kind}"),
                                     labels=("relevance",), spread=SPREAD)
    if kind == "xlm-roberta":
        normalize_as_xlm_r(folder)
    return folder


def normalize_as_xlm_r(folder: Path) -> None:
    """Give the file the normalizer a downloaded XLM-R's has: SentencePiece's Precompiled
    map (NFKC, written here as NFKC itself: the charsmap needs sentencepiece) and runs of
    spaces made one. transformers 5 writes none from a vocabulary; the server and the
    reference both read the file, so both then run it."""
    from tokenizers import Regex, Tokenizer, normalizers

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.save(str(folder / "tokenizer.json"))


@pytest.fixture(scope="module")
def cross_encoder(cross_encoder_dir: Path, graph_cache: Path) -> Iterator[Served]:
    """One server per cross-encoder for the whole module: starting one takes seconds."""
    kind = model_type(cross_encoder_dir)
    with (ServerProcess(["-model_dir", str(cross_encoder_dir), *SERVER_ARGS], graph_cache,
                        http=True) as server,
          httpx.Client(base_url=server.http_url, timeout=60) as http):
        yield Served(kind, cross_encoder_dir, server, http,
                     FileClassifierReference(cross_encoder_dir))


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory, graph_cache: Path) -> Iterator[Served]:
    """A random XLM-R embedding model: pooled by the server's default (REDUCE_MEAN of the
    second-to-last layer), since its folder declares no sentence-transformers pooling."""
    folder = write_random_family("xlm-roberta", tmp_path_factory.mktemp("exact-embedder"))
    normalize_as_xlm_r(folder)
    with (ServerProcess(["-model_dir", str(folder), *SERVER_ARGS], graph_cache,
                        http=True) as server,
          httpx.Client(base_url=server.http_url, timeout=60) as http):
        yield Served("xlm-roberta", folder, server, http, FileReference(folder))


def model_type(folder: Path) -> str:
    """config.json's model_type: here, the kind the folder was made as."""
    return str(json.loads((folder / "config.json").read_text())["model_type"])


def expected_scores(reference: FileClassifierReference | FileReference,
                    items: list[str | tuple[str, str]]) -> np.ndarray:
    """transformers' sigmoid score of each text or (query, document), cut at 128 tokens."""
    assert isinstance(reference, FileClassifierReference)
    return sigmoid(reference.logits(items, max_seq_len=MAX_SEQ_LEN)[:, 0])


def check_close(got: dict[int, float], expected: np.ndarray, what: str) -> None:
    """Every index answered once, each score within the tolerance of transformers'."""
    assert sorted(got) == list(range(len(expected))), (what, got)
    for index, want in enumerate(expected):
        assert abs(got[index] - want) < TOLERANCE, (
            f"{what}: item {index} scored {got[index]:.6f}, transformers {want:.6f}")


# -- the models, and what their scores can tell apart ---------------------------------------------


def test_the_tokenizer_files_are_the_three_kinds_rerankers_ship(cross_encoder_dir: Path) -> None:
    """What each tokenizer.json holds, read from the file (not what a class rebuilds).

    XLM-R's is written by transformers 5's XLMRobertaTokenizer from the trained Unigram
    vocabulary, with the pre-tokenizer WhitespaceSplit then Metaspace('▁', prepend
    always), and given XLM-R's normalizer here (`normalize_as_xlm_r`: NFKC, then runs of
    spaces made one), as a downloaded XLM-R's file has it.
    """
    spec = json.loads((cross_encoder_dir / "tokenizer.json").read_text(encoding="utf-8"))
    kind = model_type(cross_encoder_dir)
    pre = spec["pre_tokenizer"]
    if kind == "xlm-roberta":
        assert spec["model"]["type"] == "Unigram"
        assert [n["type"] for n in spec["normalizer"]["normalizers"]] == ["NFKC", "Replace"]
        assert [p["type"] for p in pre["pretokenizers"]] == ["WhitespaceSplit", "Metaspace"]
        assert pre["pretokenizers"][1]["prepend_scheme"] == "always"
    elif kind == "roberta":
        assert spec["model"]["type"] == "BPE" and spec["normalizer"] is None
        assert pre["type"] == "ByteLevel" and not pre["add_prefix_space"]
    else:
        assert spec["model"]["type"] == "WordPiece"
        assert spec["normalizer"]["type"] == "BertNormalizer" and spec["normalizer"]["lowercase"]
        assert pre["type"] == "BertPreTokenizer"


VARIANTS = [("hello world", " hello world"), ("hello world", "hello world\n"),
            ("hello world", "hello\u3000world"), ("hello world", "hello\u200bworld"),
            ("a b", "a ||| b"), ("hello world", "\x1chello world"), ("fox", "fox\u0301")]


def test_scores_tell_texts_apart(cross_encoder_dir: Path) -> None:
    """The differential test has teeth: unrelated texts score far apart, and two texts the
    tokenizer reads differently score more than 10x the tolerance apart."""
    reference = FileClassifierReference(cross_encoder_dir)
    tokenizer = reference.tokenizer
    unrelated = ["The quick brown fox jumps over the lazy dog.", "hello world", "今天天气很好",
                 "Привет, как дела?", "Numbers like 3.14 and 42", "x"]
    scores = expected_scores(reference, [("what is a fox", text) for text in unrelated])
    assert np.ptp(scores) > 0.1, scores
    assert ((scores > 0.005) & (scores < 0.995)).all(), scores  # not where sigmoid is flat
    differing = 0
    for a, b in VARIANTS:
        if tokenizer("what is a fox", a)["input_ids"] == tokenizer("what is a fox", b)["input_ids"]:
            continue
        differing += 1
        pair_scores = expected_scores(reference, [("what is a fox", a), ("what is a fox", b)])
        assert abs(pair_scores[0] - pair_scores[1]) > 10 * TOLERANCE, (a, b, pair_scores)
    assert differing >= 2  # WordPiece reads every white space alike: '|||' and U+200B differ


# -- cross-encoders: /rerank, /v2/rerank, /predict ----------------------------------------------


@settings(EXAMPLES, max_examples=50)
@given(query=QUERIES, documents=st.lists(TEXTS, min_size=1, max_size=3))
@example(query=" what is a fox ", documents=["  hello world", "hello world\n", "\u3000x\u00a0y\t",
                                             "\u200bfox\ufeff", "\x1cfox\x1f"])
@example(query="what is a fox", documents=["a ||| b", "|||", "hello ||| world ||| again"])
@example(query="q ||| q", documents=["hello world"])
def test_rerank_and_predict_score_the_texts_as_sent(cross_encoder: Served, query: str,
                                                    documents: list[str]) -> None:
    """TEI's /rerank and /predict and Cohere's /v2/rerank against transformers' sigmoid of
    tok(query, document, truncation=True, max_length=128): whitespace, '|||' and every
    other character count; /rerank's `text` is the document as sent."""
    tokenizer = cross_encoder.reference.tokenizer
    assume(len(tokenizer(query, add_special_tokens=False)["input_ids"]) <= (MAX_SEQ_LEN - 4) // 2)
    pairs: list[str | tuple[str, str]] = [(query, document) for document in documents]
    expected = expected_scores(cross_encoder.reference, [*pairs, documents[0]])
    what = f"{cross_encoder.kind} {query!r} {documents!r}"

    reply = cross_encoder.post("/rerank", {"query": query, "texts": documents,
                                           "raw_scores": False, "return_text": True})
    assert reply.status_code == 200, (what, reply.text)
    ranks = reply.json()
    assert all(rank["text"] == documents[rank["index"]] for rank in ranks), (what, ranks)
    check_close({r["index"]: r["score"] for r in ranks}, expected[:-1], f"/rerank {what}")

    reply = cross_encoder.post("/v2/rerank", {"query": query, "documents": documents})
    assert reply.status_code == 200, (what, reply.text)
    results = reply.json()["results"]
    check_close({r["index"]: r["relevance_score"] for r in results}, expected[:-1],
                f"/v2/rerank {what}")

    inputs = [[query, document] for document in documents] + [[documents[0]]]
    reply = cross_encoder.post("/predict", {"inputs": inputs})
    assert reply.status_code == 200, (what, reply.text)
    check_close({i: row[0]["score"] for i, row in enumerate(reply.json())}, expected,
                f"/predict {what}")


def test_a_pair_cut_on_both_sides_keeps_what_transformers_keeps(cross_encoder: Served) -> None:
    """A query over half of -max_seq_len against documents shorter, longer, and much longer.

    When both sides must shrink, transformers (tokenizers' longest_first) gives the odd
    token of an odd budget to the longer side: the query keeps floor(budget / 2) against
    a longer document. Google's _truncate_seq_pair gives it to the first text. The budget
    is even for XLM-R and RoBERTa (4 special tokens), odd for WordPiece (3).
    """
    query = "the quick brown fox " * 20
    documents = ["hello world " * 20, "hello world " * 35, query + "jumps", "hello world " * 100]
    expected = expected_scores(cross_encoder.reference, [(query, d) for d in documents])
    reply = cross_encoder.post("/rerank", {"query": query, "texts": documents})
    assert reply.status_code == 200, reply.text
    check_close({r["index"]: r["score"] for r in reply.json()}, expected,
                f"/rerank {cross_encoder.kind}, documents of {[len(d) for d in documents]} "
                "characters")


# -- /tokenize ----------------------------------------------------------------------------------


def test_tokenize_names_the_vocabularys_own_specials(cross_encoder: Served) -> None:
    """/tokenize's special tokens carry the vocabulary's names: <s> and </s> for XLM-R and
    RoBERTa, [CLS] and [SEP] for WordPiece (TEI shows the tokenizer's own)."""
    first, last = SPECIAL_NAMES[cross_encoder.kind]
    reply = cross_encoder.post("/tokenize", {"inputs": "hello world", "add_special_tokens": True})
    assert reply.status_code == 200, reply.text
    [tokens] = reply.json()
    specials = [(t["text"], t["special"]) for t in tokens if t["special"]]
    assert specials == [(first, True), (last, True)], tokens
    assert tokens[0]["text"] == first and tokens[-1]["text"] == last


@settings(EXAMPLES, max_examples=60)
@given(texts=st.lists(TEXTS, min_size=1, max_size=3))
@example(texts=["  hello world  ", "a ||| b", "\u3000\u00a0x\t\n"])
def test_tokenize_gives_the_files_ids(cross_encoder: Served, texts: list[str]) -> None:
    """TEI's /tokenize: tok(text)["input_ids"] untruncated, specials where the file puts
    them and named by the vocabulary, and each other token's text the bytes it covers."""
    tokenizer = cross_encoder.reference.tokenizer
    reply = cross_encoder.post("/tokenize", {"inputs": texts, "add_special_tokens": True})
    assert reply.status_code == 200, (texts, reply.text)
    for text, tokens in zip(texts, reply.json(), strict=True):
        want = tokenizer(text, return_special_tokens_mask=True)
        assert [t["id"] for t in tokens] == want["input_ids"], (cross_encoder.kind, text)
        assert [int(t["special"]) for t in tokens] == want["special_tokens_mask"], text
        for token in tokens:
            if token["special"]:
                assert token["text"] == tokenizer.convert_ids_to_tokens(token["id"]), token
            else:
                covered = text.encode("utf-8")[token["start"]:token["stop"]]
                assert token["text"] == covered.decode("utf-8"), (text, token)


# -- blank texts ----------------------------------------------------------------------------------

BLANK = " \t\n\u3000\u00a0"


def test_blank_texts_are_refused_by_name(cross_encoder: Served, embedder: Served) -> None:
    """A blank text is a 422 (TEI's routes) or a 400 (OpenAI's and Cohere's shape) naming
    the text and why, never a crash or a score."""
    tei: list[tuple[Served, str, dict[str, Any], str]] = [
        (cross_encoder, "/rerank", {"query": "q", "texts": ["ok", BLANK]}, "texts"),
        (cross_encoder, "/rerank", {"query": BLANK, "texts": ["ok"]}, "query"),
        (cross_encoder, "/predict", {"inputs": [["q", "ok"], ["q", BLANK]]}, "inputs"),
        (cross_encoder, "/tokenize", {"inputs": ["ok", BLANK]}, "inputs"),
        (embedder, "/embed", {"inputs": ["ok", BLANK]}, "inputs"),
    ]
    for served, path, body, named in tei:
        reply = served.post(path, body)
        assert reply.status_code == 422, (path, body, reply.text)
        error = reply.json()["error"]
        assert named in error and "non-blank" in error, (path, body, error)
    openai: list[tuple[Served, str, dict[str, Any], str]] = [
        (cross_encoder, "/v2/rerank", {"query": "q", "documents": ["ok", BLANK]}, "documents"),
        (embedder, "/v1/embeddings", {"input": ["ok", BLANK]}, "input"),
    ]
    for served, path, body, named in openai:
        reply = served.post(path, body)
        assert reply.status_code in (400, 422), (path, body, reply.text)
        message = reply.json()["error"]["message"]
        assert named in message and "non-blank" in message, (path, body, message)


# -- an embedding model: /embed, /v1/embeddings, and the 1.10 protocol --------------------------


@settings(EXAMPLES, max_examples=40)
@given(texts=st.lists(TEXTS, min_size=1, max_size=4))
@example(texts=["a ||| b", " ||| b", "  hello world  ", "hello ||| world ||| again"])
def test_embeddings_read_the_texts_as_sent(embedder: Served, texts: list[str]) -> None:
    """/embed (normalize false) and /v1/embeddings against REDUCE_MEAN of hidden_states[-2]
    of tok(text, truncation=True, max_length=128): '|||' is three characters here."""
    reference = embedder.reference
    assert isinstance(reference, FileReference)
    expected = reference.embed(texts, max_seq_len=MAX_SEQ_LEN)
    reply = embedder.post("/embed", {"inputs": texts, "normalize": False})
    assert reply.status_code == 200, (texts, reply.text)
    np.testing.assert_allclose(np.asarray(reply.json()), expected, atol=TOLERANCE, rtol=0,
                               err_msg=f"/embed {texts!r}")
    reply = embedder.post("/v1/embeddings", {"input": texts})
    assert reply.status_code == 200, (texts, reply.text)
    got = np.asarray([item["embedding"] for item in reply.json()["data"]])
    np.testing.assert_allclose(unit(got), unit(expected), atol=TOLERANCE, rtol=0,
                               err_msg=f"/v1/embeddings {texts!r}")


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def zeromq(embedder: Served) -> Iterator[BertClient]:
    with BertClient(port=embedder.server.port, port_out=embedder.server.port_out,
                    check_length=False) as client:
        yield client


@settings(EXAMPLES, max_examples=30)
@given(first=PAIR_PARTS.filter(lambda t: "|||" not in t), second=PAIR_PARTS,
       single=TEXTS.filter(lambda t: "|||" not in t))
@example(first="a", second="b", single="  hello world\t")
def test_zeromq_reads_a_110_pair_as_its_two_texts(embedder: Served, zeromq: BertClient,
                                                  first: str, second: str, single: str) -> None:
    """The 1.10 wire is unchanged: 'a ||| b' is the pair (a, b), split on the first '|||'
    with only the spaces that write the separator dropped; a text without one is a text,
    its edges kept."""
    reference = embedder.reference
    assert isinstance(reference, FileReference)
    got = zeromq.encode([f"{first} ||| {second}", single])
    expected = reference.embed([(first, second), single], max_seq_len=MAX_SEQ_LEN)
    np.testing.assert_allclose(got, expected, atol=TOLERANCE, rtol=0,
                               err_msg=f"{first!r} ||| {second!r}; {single!r}")
