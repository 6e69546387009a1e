"""-runtime openvino through the whole server: the 1.10.0 client, /encode, /v1/embeddings,
SHOW_CONFIG and /info; and what -dtype bfloat16 and a plain start do on this machine's CPU.

On a CPU without bf16 (CI's) OpenVINO runs f32 and every route must match transformers
(and sentence-transformers for the model's own embedding) within 1e-4 absolute, as the
onnxruntime server does. `-dtype bfloat16` must be refused there in one line naming the
CPU's flags; on a CPU with AVX512_BF16 or AMX it must serve, reporting bf16, within
cosine 0.999 of fp32. A plain start must pick what the README says `auto` picks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from reference import TransformersReference, cosine_rows, heldout_texts
from server_process import ServerProcess, port_flags

from bert_serving.client import BertClient
from bert_serving.server.model.cpu_features import cpu_flags, has_bf16

TOLERANCE = 1e-4
GATEWAY_ARGS = ["-runtime", "openvino", "-dtype", "float32", "-show_tokens_to_client"]
SCRIPT = Path(__file__).with_name("legacy_client_script.py")
SHORT_TEXTS = ["ok", "thanks", "yes", "好"]


def client_of(server: ServerProcess) -> BertClient:
    return BertClient(port=server.port, port_out=server.port_out, check_length=False)


@pytest.fixture(scope="module")
def bert_client(gateway: ServerProcess) -> Iterator[BertClient]:
    with client_of(gateway) as client:
        yield client


def test_the_start_line_show_config_and_info_say_openvino_f32(
        gateway: ServerProcess, bert_client: BertClient, http: httpx.Client) -> None:
    assert "(openvino fp32)" in gateway.output
    config = bert_client.server_config
    assert (config["runtime"], config["dtype"], config["inference_precision"]) == (
        "openvino", "float32", "fp32")
    info = http.get("/info").json()
    assert (info["runtime"], info["inference_precision"]) == ("openvino", "fp32")


def test_the_1_10_client_gets_transformers_vectors(
        gateway: ServerProcess, legacy_python: Path, reference: TransformersReference) -> None:
    texts = heldout_texts()
    done = subprocess.run([str(legacy_python), str(SCRIPT), str(gateway.port),
                           str(gateway.port_out), json.dumps(texts)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = np.asarray(json.loads(done.stdout.strip().splitlines()[-1])["encode"], np.float32)
    np.testing.assert_allclose(got, reference.encode(texts), atol=TOLERANCE, rtol=0)


def test_encode_and_v1_embeddings_match_the_references(
        http: httpx.Client, reference: TransformersReference, minilm_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    texts = [*heldout_texts(), *SHORT_TEXTS]
    reply = http.post("/encode", json={"id": 1, "texts": texts})
    assert reply.status_code == 200, reply.text
    np.testing.assert_allclose(np.asarray(reply.json()["result"]), reference.encode(texts),
                               atol=TOLERANCE, rtol=0)
    model = SentenceTransformer(str(minilm_dir), device="cpu")
    model.max_seq_length = 25  # where the server cuts (-max_seq_len 25)
    reply = http.post("/v1/embeddings", json={"input": texts, "model": "any"})
    assert reply.status_code == 200, reply.text
    got = np.asarray([row["embedding"] for row in reply.json()["data"]], np.float32)
    np.testing.assert_allclose(got, model.encode(texts), atol=TOLERANCE, rtol=0)


def test_a_texts_vector_does_not_depend_on_its_batch(bert_client: BertClient) -> None:
    texts = [*SHORT_TEXTS, *heldout_texts()]
    alone = np.concatenate([bert_client.encode([text]) for text in texts])
    batched = bert_client.encode(list(reversed(texts)))[::-1]
    assert cosine_rows(alone, batched).min() >= 0.99999


def start(graph_cache: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """A start that is expected to fail before serving (bounded: it never binds for long)."""
    return subprocess.run(
        [sys.executable, "-c", "from bert_serving.server.cli import start; import sys; "
         "sys.exit(start())", "-cpu", "-bind_ip", "127.0.0.1", *port_flags(),
         "-graph_tmp_dir", str(graph_cache), *flags],
        capture_output=True, text=True, timeout=300)


def test_bfloat16_serves_where_the_cpu_has_it_and_is_refused_where_not(
        graph_cache: Path, gateway: ServerProcess) -> None:
    if not has_bf16(cpu_flags()):
        done = start(graph_cache, "-dtype", "bfloat16")
        assert done.returncode == 1, done.stdout + done.stderr
        refusal = [line for line in done.stderr.splitlines() if "bert-serving-start:" in line]
        assert len(refusal) == 1 and "-dtype bfloat16 needs a CPU with AVX512_BF16 or " \
            "AMX-BF16" in refusal[0] and "-dtype float32" in refusal[0], done.stderr
        return
    texts = [*SHORT_TEXTS, *heldout_texts()]
    with ServerProcess(["-dtype", "bfloat16"], graph_cache) as bf16, client_of(bf16) as client:
        assert client.server_config["inference_precision"] == "bf16"
        with client_of(gateway) as fp32:
            assert cosine_rows(client.encode(texts), fp32.encode(texts)).min() >= 0.999


def readme_auto_choice() -> dict[str, Any]:
    """The README's rule for a CPU: float32 on onnxruntime, bf16 CPU and extra or not."""
    return {"runtime": "onnxruntime", "dtype": "float32", "inference_precision": "fp32"}


def test_a_plain_start_picks_what_the_readme_says(graph_cache: Path) -> None:
    with ServerProcess([], graph_cache) as plain, client_of(plain) as client:
        config = client.server_config
    assert {key: config[key] for key in ("runtime", "dtype", "inference_precision")} == \
        readme_auto_choice()
