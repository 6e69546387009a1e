"""The unmodified bert-serving-client 1.10.0 from PyPI against our server.

It is installed into a virtual environment of its own (it ships its own
`bert_serving.client`), with pip from PyPI, and driven by a script there.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from reference import TransformersReference, heldout_texts
from server_process import ServerProcess

from bert_serving.client import BertClient

TOLERANCE = 1e-4
SCRIPT = Path(__file__).with_name("legacy_client_script.py")


@pytest.fixture(scope="module")
def server(graph_cache: Path) -> Iterator[ServerProcess]:
    with ServerProcess(["-show_tokens_to_client"], graph_cache) as process:
        yield process


@pytest.fixture(scope="module")
def legacy_run(legacy_python: Path, server: ServerProcess) -> dict:
    texts = heldout_texts()
    done = subprocess.run(
        [str(legacy_python), str(SCRIPT), str(server.port), str(server.port_out),
         json.dumps(texts)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_legacy_encode_matches_transformers(legacy_run: dict,
                                            reference: TransformersReference) -> None:
    texts = heldout_texts()
    got = np.asarray(legacy_run["encode"], dtype=np.float32)
    np.testing.assert_allclose(got, reference.encode(texts), atol=TOLERANCE, rtol=0)
    async_rows = np.asarray(legacy_run["async"], dtype=np.float32)
    np.testing.assert_allclose(async_rows, got[:5], atol=TOLERANCE, rtol=0)
    chunks = [np.asarray(c, dtype=np.float32) for c in legacy_run["encode_async"]]
    np.testing.assert_allclose(np.concatenate(chunks), got[:4], atol=TOLERANCE, rtol=0)


def test_legacy_tokens_and_tokenized_input(legacy_run: dict,
                                           reference: TransformersReference) -> None:
    assert legacy_run["show_tokens"][0][0] == "[CLS]"
    assert legacy_run["show_tokens"][0][-1] == "[SEP]"
    want = reference.encode(["hello world"])
    np.testing.assert_allclose(np.asarray(legacy_run["tokenized"], np.float32), want,
                               atol=TOLERANCE, rtol=0)


def test_legacy_config_status_and_errors(legacy_run: dict) -> None:
    assert legacy_run["config"]["server_version"] == "1.10.0"
    assert legacy_run["status"]["statistic"]["num_data_request"] >= 4
    assert legacy_run["bad"].startswith("TypeError")
    assert "texts[1]" in legacy_run["bad"]


def test_the_token_counts_the_legacy_client_ignored_are_there_for_ours(
        legacy_run: dict, server: ServerProcess, reference: TransformersReference) -> None:
    """The same server, the same texts: its headers carry `token_counts` (an ext field)."""
    texts = heldout_texts()
    assert len(legacy_run["encode"]) == len(texts)  # the 1.10.0 client read those headers
    with BertClient(port=server.port, port_out=server.port_out, check_length=False) as client:
        vectors, counts = client.encode_with_token_counts(texts)
    want = reference.features(texts, 25)["attention_mask"].sum(axis=1).tolist()
    assert counts == want
    np.testing.assert_allclose(vectors, np.asarray(legacy_run["encode"], np.float32),
                               atol=TOLERANCE, rtol=0)


def test_legacy_client_works_from_an_address_allow_ip_admits(
        legacy_python: Path, graph_cache: Path, reference: TransformersReference) -> None:
    """-allow_ip needs nothing from the client: the unmodified 1.10.0 one still encodes."""
    texts = heldout_texts()
    with ServerProcess(["-allow_ip", "10.0.0.0/8,127.0.0.1", "-show_tokens_to_client"],
                       graph_cache) as allowed:
        done = subprocess.run(
            [str(legacy_python), str(SCRIPT), str(allowed.port), str(allowed.port_out),
             json.dumps(texts)],
            capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 0, done.stderr
    got = np.asarray(json.loads(done.stdout.strip().splitlines()[-1])["encode"], np.float32)
    np.testing.assert_allclose(got, reference.encode(texts), atol=TOLERANCE, rtol=0)
