"""Every non-BERT family served by the whole server: the 1.10.0 client and the HTTP routes.

One server per family (a tiny random-weight model from scripts/make_random_family.py),
started as users start it (with -http_port), queried by bert-serving-client 1.10.0 from
PyPI in its own virtual environment, through tests/integration/legacy_client_script.py,
and over HTTP by `/encode`, huggingface_hub's InferenceClient (TEI's `/embed`) and the
openai package. Compared against transformers (tests/reference.py) within 1e-4.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from reference import FamilyReference, heldout_texts
from server_process import ServerProcess

TOLERANCE = 1e-4
SCRIPT = Path(__file__).with_name("legacy_client_script.py")


@pytest.fixture(scope="module")
def served(family_dir: Path, graph_cache: Path) -> Iterator[ServerProcess]:
    args = ["-model_dir", str(family_dir), "-show_tokens_to_client", "-max_seq_len", "NONE",
            "-num_worker", "1"]
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


def family_words(family_dir: Path) -> list[str]:
    """'hello world' in the family's own tokens: a vocabulary without an unknown token
    (Qwen's byte-level BPE) refuses words it lacks, as it should."""
    return list(FamilyReference(family_dir).tokenizer.tokenize("hello world"))


@pytest.fixture(scope="module")
def legacy_run(legacy_python: Path, served: ServerProcess, family_dir: Path) -> dict:
    done = subprocess.run(
        [str(legacy_python), str(SCRIPT), str(served.port), str(served.port_out),
         json.dumps(heldout_texts()), json.dumps(family_words(family_dir))],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_family_through_the_server_matches_transformers(legacy_run: dict,
                                                        family_dir: Path) -> None:
    reference = FamilyReference(family_dir)
    texts = heldout_texts()
    got = np.asarray(legacy_run["encode"], dtype=np.float32)
    np.testing.assert_allclose(got, reference.encode(texts, max_seq_len=None),
                               atol=TOLERANCE, rtol=0)
    async_rows = np.asarray(legacy_run["async"], dtype=np.float32)
    np.testing.assert_allclose(async_rows, got[:5], atol=TOLERANCE, rtol=0)
    tokenized = np.asarray(legacy_run["tokenized"], dtype=np.float32)
    np.testing.assert_allclose(tokenized, reference.encode_tokens(family_words(family_dir)),
                               atol=TOLERANCE, rtol=0)


def test_family_tokens_are_shown_to_the_client(legacy_run: dict, family_dir: Path) -> None:
    reference = FamilyReference(family_dir)
    for text, tokens in zip(heldout_texts()[:2], legacy_run["show_tokens"], strict=True):
        ids = reference.tokenizer(text)["input_ids"]
        assert tokens == reference.tokenizer.convert_ids_to_tokens(ids)


def test_family_bad_request_is_answered(legacy_run: dict) -> None:
    assert legacy_run["bad"].startswith("TypeError")
    assert "texts[1]" in legacy_run["bad"]


def test_unserved_model_type_stops_the_start_with_one_line(tmp_path: Path,
                                                           graph_cache: Path) -> None:
    import sys

    from safetensors.numpy import save_file

    config = {"model_type": "nomic_bert", "architectures": ["NomicBertModel"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_file({"embeddings.word_embeddings.weight": np.zeros((4, 8), np.float32)},
              str(tmp_path / "model.safetensors"))
    done = subprocess.run(
        [sys.executable, "-c", "from bert_serving.server.cli import start; "
         "import sys; sys.exit(start())", "-cpu", "-model_dir", str(tmp_path),
         "-graph_tmp_dir", str(graph_cache)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("bert-serving-start:")]
    assert len(errors) == 1, done.stderr
    assert "model_type 'nomic_bert'" in errors[0] and "xlm-roberta" in errors[0]


def test_family_over_http_matches_transformers(served: ServerProcess, family_dir: Path) -> None:
    """The folder declares no embedding of its own, so every route serves layer -2's mean:
    `/encode` and OpenAI's as it is, TEI's `/embed` unit-normalized (its default)."""
    from huggingface_hub import InferenceClient
    from openai import OpenAI

    texts = heldout_texts()[:6]
    want = FamilyReference(family_dir).encode(texts, max_seq_len=None)
    unit = want / np.linalg.norm(want, axis=1, keepdims=True)
    reply = httpx.post(f"{served.http_url}/encode", json={"id": 1, "texts": texts}, timeout=60)
    assert reply.status_code == 200, reply.text
    np.testing.assert_allclose(reply.json()["result"], want, atol=TOLERANCE, rtol=0)
    tei = InferenceClient(base_url=served.http_url).feature_extraction(texts)  # type: ignore[arg-type]
    np.testing.assert_allclose(tei, unit, atol=TOLERANCE, rtol=0)
    openai = OpenAI(base_url=served.http_url + "/v1", api_key="unused", max_retries=0)
    rows = [item.embedding for item in openai.embeddings.create(
        input=texts, model="m", encoding_format="float").data]
    np.testing.assert_allclose(rows, want, atol=TOLERANCE, rtol=0)
