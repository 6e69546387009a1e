"""Cohere's embed API (/v2/embed, /v1/embed) driven by Cohere's own SDK against the real server.

One server: a copy of the MiniLM's folder with query/document prompts, at
-pooling_strategy MODEL -max_seq_len 256 (its own normalized embedding) and
-embedding_ranges from sentence-transformers' embeddings of the corpus below.
Floats are compared with sentence-transformers within 1e-4; each quantized form
with `quantize_embeddings` of those reference floats on the same ranges, where
a value may differ by one step when a coordinate sits within float error of a
step's edge (int8/uint8) or of zero (binary: then one bit). Observed: binary and
ubinary equal; int8 and uint8 one step off on a few values, as ranges computed
from these same texts put each dimension's extremes exactly on the edges.
The retrieval test prints recall@1 and @10 of float, int8 and binary.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from server_process import ServerProcess

from bert_serving.server.model.quantization import unit_vector_ranges

TOLERANCE = 1e-4
PROMPTS = {"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": None}

PAIRS = [  # (query, the passage that answers it)
    ("how do I reset a forgotten email password",
     "To recover your mail account, click 'Forgot password' and follow the link sent to your "
     "phone."),
    ("best time of year to visit Japan",
     "Spring, when the cherry blossoms bloom, and autumn are the most pleasant seasons to "
     "travel around Japan."),
    ("symptoms of vitamin D deficiency",
     "Low levels of vitamin D can cause tiredness, bone pain, muscle weakness and frequent "
     "infections."),
    ("how to boil an egg so the yolk stays soft",
     "For a runny yolk, lower the egg into simmering water for six minutes, then cool it in "
     "ice water."),
    ("why is the sky blue",
     "Sunlight is scattered by air molecules, and shorter blue wavelengths scatter much more "
     "than red ones."),
    ("what causes inflation",
     "Prices rise across an economy when demand outpaces supply or when the money supply "
     "grows quickly."),
    ("how many legs does a spider have",
     "Spiders are arachnids with eight legs, unlike insects, which have six."),
    ("tips for falling asleep faster",
     "Keep a regular bedtime, avoid screens before bed and keep your bedroom cool and dark."),
    ("who painted the Mona Lisa",
     "Leonardo da Vinci painted the famous portrait of Lisa Gherardini in the early sixteenth "
     "century."),
    ("how to change a flat bicycle tyre",
     "Remove the wheel, lever the tyre off the rim, replace the inner tube and pump it back up."),
    ("what is the capital of Australia",
     "Canberra, not Sydney, is the seat of the Australian federal government."),
    ("how does a vaccine work",
     "Vaccines train the immune system to recognise a pathogen so the body can fight it off "
     "later."),
    ("ways to save money on groceries",
     "Plan meals for the week, buy store brands and compare unit prices to cut your food bill."),
    ("how to learn to play the guitar",
     "Beginners should practise a few basic chords daily and learn simple strumming patterns."),
    ("what do pandas eat",
     "Giant pandas feed almost entirely on bamboo shoots and leaves, eating for hours each day."),
    ("how to remove a red wine stain",
     "Blot the spill, cover it with salt or baking soda, then wash the fabric in cold water."),
    ("how far is the moon from earth",
     "The Moon orbits at an average distance of about 384,000 kilometres from our planet."),
    ("how to write a good cover letter",
     "Address the hiring manager by name, show how your experience fits the role and keep it "
     "to one page."),
    ("what is photosynthesis",
     "Plants use light energy to turn carbon dioxide and water into glucose, releasing oxygen."),
    ("how to keep houseplants alive",
     "Most indoor plants need bright indirect light and watering only when the top of the "
     "soil is dry."),
    ("when did the Berlin Wall fall",
     "The wall dividing East and West Berlin was opened in November 1989."),
    ("how to make a website load faster",
     "Compress images, cache static files and reduce the number of scripts a page downloads."),
    ("what is the largest ocean",
     "The Pacific is the biggest and deepest of the Earth's oceans."),
    ("how to train a puppy not to bite",
     "When the puppy nips, stop playing and offer a chew toy so it learns that biting ends "
     "the fun."),
    ("benefits of regular exercise",
     "Physical activity strengthens the heart, improves mood and helps control body weight."),
    ("how do airplanes stay in the air",
     "Wings are shaped so that air flowing over them produces lift greater than the plane's "
     "weight."),
    ("what is a black hole",
     "A region of spacetime where gravity is so strong that not even light can escape."),
    ("how to brew good coffee at home",
     "Use freshly ground beans, water just off the boil and a ratio of about one to sixteen."),
    ("how to treat a minor burn",
     "Cool the burn under running water for twenty minutes and cover it with a clean dressing."),
    ("what language is spoken in Brazil",
     "Brazilians speak Portuguese, a legacy of the country's colonial history."),
]
DISTRACTORS = [
    "The stock market closed slightly higher on Friday after a volatile week.",
    "Our office will be closed on public holidays.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "He scored the winning goal in the final minute of the match.",
    "The museum's new wing houses a collection of modern sculpture.",
    "Please remember to bring your ID card to the exam.",
    "The train to the airport leaves every fifteen minutes.",
    "She adopted two cats from the local shelter last spring.",
    "Electric cars are becoming cheaper to buy and to run.",
    "The novel follows three generations of a fishing family.",
]

PASSAGES = [passage for _, passage in PAIRS] + DISTRACTORS
QUERIES = [query for query, _ in PAIRS]


@pytest.fixture(scope="module")
def folder(minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cohere") / "minilm"
    shutil.copytree(minilm_dir, folder)
    (folder / "config_sentence_transformers.json").write_text(json.dumps(PROMPTS))
    return folder


@pytest.fixture(scope="module")
def model(folder: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


@pytest.fixture(scope="module")
def ranges(model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the README tells users to do: each dimension's min and max over their corpus."""
    corpus = reference(model, PASSAGES, "document")
    path = tmp_path_factory.mktemp("ranges") / "ranges.npy"
    np.save(path, np.stack([corpus.min(0), corpus.max(0)]))
    return path


@pytest.fixture(scope="module")
def server(folder: Path, ranges: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    args = ["-model_dir", str(folder), "-pooling_strategy", "MODEL", "-max_seq_len", "256",
            "-embedding_ranges", str(ranges)]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


def reference(model: Any, texts: list[str], prompt_name: str | None = None) -> np.ndarray:
    return np.asarray(model.encode(texts, prompt_name=prompt_name, convert_to_numpy=True),
                      dtype=np.float32)


def st_quantize(floats: np.ndarray, precision: str, ranges: np.ndarray) -> np.ndarray:
    from sentence_transformers.util.quantization import quantize_embeddings

    return np.asarray(quantize_embeddings(floats, precision=precision,  # type: ignore[arg-type]
                                          ranges=ranges))


def within_one_step(got: Any, want: np.ndarray, precision: str) -> None:
    got = np.asarray(got)
    assert got.shape == want.shape, precision
    if precision.endswith("binary"):  # one coordinate near zero flips one bit of a byte
        flipped = np.unpackbits(got.astype(np.uint8) ^ want.astype(np.uint8))
        assert flipped.sum() <= 1, precision
    else:
        assert np.abs(got.astype(np.int16) - want.astype(np.int16)).max() <= 1, precision


def test_v2_embed_matches_sentence_transformers_in_every_form(
        server: ServerProcess, model: Any, ranges: Path) -> None:
    import cohere

    client = cohere.ClientV2(api_key="unused", base_url=server.http_url)
    kinds = ["float", "int8", "uint8", "binary", "ubinary", "base64"]
    reply = client.embed(model="any", texts=PASSAGES, input_type="search_document",
                         embedding_types=kinds)  # type: ignore[arg-type]
    want = reference(model, PASSAGES, "document")
    embeddings = reply.embeddings
    np.testing.assert_allclose(embeddings.float_, want, atol=TOLERANCE, rtol=0)
    decoded = [np.frombuffer(base64.b64decode(row), dtype="<f4")
               for row in embeddings.base64 or []]
    np.testing.assert_allclose(decoded, want, atol=TOLERANCE, rtol=0)
    file_ranges = np.load(ranges)
    exact = 0
    for kind in ("int8", "uint8", "binary", "ubinary"):
        got, expected = getattr(embeddings, kind), st_quantize(want, kind, file_ranges)
        within_one_step(got, expected, kind)
        exact += int(np.array_equal(np.asarray(got), expected))
    print(f"quantized forms equal to sentence-transformers' bit for bit: {exact} of 4")
    assert reply.texts == PASSAGES and reply.response_type == "embeddings_by_type"
    assert reply.meta is not None and reply.meta.billed_units is not None
    tokens = sum(len(model.tokenizer("passage: " + text)["input_ids"]) for text in PASSAGES)
    assert reply.meta.billed_units.input_tokens == tokens


def test_v1_embed_floats_and_by_type(server: ServerProcess, model: Any) -> None:
    import cohere

    client = cohere.Client(api_key="unused", base_url=server.http_url)
    want = reference(model, QUERIES, "query")
    floats = client.embed(texts=QUERIES, model="any", input_type="search_query")
    assert floats.response_type == "embeddings_floats"
    np.testing.assert_allclose(floats.embeddings, want, atol=TOLERANCE, rtol=0)
    typed = client.embed(texts=QUERIES, model="any", input_type="search_query",
                         embedding_types=["binary"])
    assert typed.response_type == "embeddings_by_type"
    within_one_step(typed.embeddings.binary, st_quantize(want, "binary", unit_vector_ranges(1)),
                    "binary")


def test_input_types_pick_the_folders_prompts(server: ServerProcess, model: Any) -> None:
    import cohere

    client = cohere.ClientV2(api_key="unused", base_url=server.http_url)
    texts = QUERIES[:3]
    for input_type, prompt_name in [("search_query", "query"), ("search_document", "document"),
                                    ("classification", None), ("clustering", None)]:
        reply = client.embed(model="m", texts=texts, input_type=input_type,  # type: ignore[arg-type]
                             embedding_types=["float"])
        np.testing.assert_allclose(reply.embeddings.float_, reference(model, texts, prompt_name),
                                   atol=TOLERANCE, rtol=0, err_msg=input_type)


def test_output_dimension_quantizes_on_the_unit_vector_ranges(server: ServerProcess,
                                                              model: Any) -> None:
    reply = httpx.post(server.http_url + "/v2/embed", timeout=60, json={
        "texts": QUERIES, "input_type": "search_query", "output_dimension": 128,
        "embedding_types": ["float", "int8"]})
    assert reply.status_code == 200, reply.text
    cut = reference(model, QUERIES, "query")[:, :128]
    cut /= np.linalg.norm(cut, axis=1, keepdims=True)
    body = reply.json()["embeddings"]
    np.testing.assert_allclose(body["float"], cut, atol=TOLERANCE, rtol=0)
    within_one_step(body["int8"], st_quantize(cut, "int8", unit_vector_ranges(128)), "int8")


def test_a_texts_int8_does_not_depend_on_its_batch(server: ServerProcess) -> None:
    def int8(texts: list[str]) -> list[list[int]]:
        reply = httpx.post(server.http_url + "/v2/embed", timeout=60, json={
            "texts": texts, "embedding_types": ["int8"]})
        return list(reply.json()["embeddings"]["int8"])

    assert int8(PASSAGES[:1]) == int8(PASSAGES[:1] + DISTRACTORS)[:1]


def test_truncate_modes(server: ServerProcess, model: Any) -> None:
    head, tail = "alpha " * 300, "omega beta gamma"
    text = head + tail
    post = lambda body: httpx.post(server.http_url + "/v2/embed", timeout=60,  # noqa: E731
                                   json={"texts": [text], **body})
    tokenizer = model.tokenizer
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    end = reference(model, [tokenizer.decode(ids[:254])])
    start = reference(model, [tokenizer.decode(ids[-254:])])
    for truncate, want in [("END", end), (None, end), ("START", start)]:
        reply = post({"truncate": truncate} if truncate else {})
        assert reply.status_code == 200, reply.text
        np.testing.assert_allclose(reply.json()["embeddings"]["float"], want, atol=TOLERANCE,
                                   rtol=0, err_msg=str(truncate))
    refused = post({"truncate": "NONE"})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == "texts" and error["message"].startswith("texts[0]: has "), error


@pytest.mark.parametrize("path", ["/v1/embed", "/v2/embed"])
def test_bad_inputs_are_named_in_openais_shape(server: ServerProcess, path: str) -> None:
    cases = [({"texts": []}, "texts"), ({"texts": ["ok"], "embedding_types": ["int4"]},
                                         "embedding_types"),
             ({"texts": ["ok"], "embedding_types": []}, "embedding_types"),
             ({"texts": ["ok"], "input_type": "image"}, "input_type"),
             ({"texts": ["ok"], "truncate": "MIDDLE"}, "truncate"),
             ({"texts": ["ok"], "output_dimension": 1000}, "dimensions"),
             ({"texts": ["ok", "alpha " * 300], "truncate": "NONE"}, "texts[1]: has "),
             ({"embedding_types": ["float"]}, "texts")]
    for body, named in cases:
        reply = httpx.post(server.http_url + path, json=body, timeout=60)
        assert reply.status_code == 400, (body, reply.text)
        assert named in reply.json()["error"]["message"], (body, reply.text)


def recall_at(k: int, queries: np.ndarray, passages: np.ndarray, *, hamming: bool = False
              ) -> float:
    """Query i's relevant passage is passage i; the share of queries that find it in the top k."""
    if hamming:  # ubinary rows: fewer differing bits is closer
        bits = np.unpackbits(queries[:, None, :] ^ passages[None, :, :], axis=-1)
        scores = -bits.sum(-1).astype(np.float32)
    else:
        scores = queries.astype(np.float32) @ passages.astype(np.float32).T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([i in top[i] for i in range(len(queries))]))


def test_quantized_retrieval_keeps_recall(server: ServerProcess) -> None:
    """recall@10 of int8 within 0.05 of float's, binary within 0.15. Measured through the
    server on these 30 queries over 40 passages: recall@10 1.0 for all three; recall@1
    float 1.0, int8 1.0, binary (Hamming) 0.97. The margins are the issue's, looser than
    needed here; the corpus is small, so they guard against a broken form, not a 1% loss."""
    def embed(texts: list[str], input_type: str) -> dict[str, Any]:
        reply = httpx.post(server.http_url + "/v2/embed", timeout=60, json={
            "texts": texts, "input_type": input_type,
            "embedding_types": ["float", "int8", "ubinary"]})
        assert reply.status_code == 200, reply.text
        return {kind: np.asarray(rows) for kind, rows in reply.json()["embeddings"].items()}

    queries, passages = embed(QUERIES, "search_query"), embed(PASSAGES, "search_document")
    recall = {}
    for kind, hamming in [("float", False), ("int8", False), ("ubinary", True)]:
        q, p = queries[kind], passages[kind]
        if kind == "ubinary":
            q, p = q.astype(np.uint8), p.astype(np.uint8)
        recall[kind] = {k: recall_at(k, q, p, hamming=hamming) for k in (1, 10)}
    print("recall@k by form:", recall)
    assert recall["int8"][10] >= recall["float"][10] - 0.05
    assert recall["ubinary"][10] >= recall["float"][10] - 0.15
