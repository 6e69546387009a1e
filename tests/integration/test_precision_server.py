"""Each precision through the whole server: a text's vector is that text's, whatever its batch.

The real server (`-cpu -num_worker 1 -max_seq_len 128 -pooling_layer -1`, fp32 and
`-int8`) answers the held-out texts, short ones such as "ok" among them, once each
alone and once inside one request with long texts, which the scheduler batches
together. Bars: fp32 alone vs batched within 1e-5 (absolute); int8 alone vs batched
at cosine >= 0.9999; int8 against fp32 at cosine >= 0.999 on every short, held-out
and long row (two- and three-token texts such as "yes" are the hardest: see
docs/benchmarks.md).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from reference import cosine_rows, heldout_texts
from server_process import ServerProcess

from bert_serving.client import BertClient

FLAGS = ["-num_worker", "1", "-max_seq_len", "128", "-pooling_layer", "-1"]
PRECISION_FLAGS = {"fp32": [], "int8": ["-int8"]}
SHORT_TEXTS = ["ok", "yes", "no", "thanks", "a", "Hi!", "好"]


def short_and_held_out() -> list[str]:
    return [*SHORT_TEXTS, *heldout_texts()]


def long_texts(count: int = 12) -> list[str]:
    """Texts of 60-110 words from the held-out vocabulary: the batch's large activations."""
    words = " ".join(heldout_texts()).split()
    rng = random.Random(7)
    return [" ".join(rng.choices(words, k=rng.randint(60, 110))) for _ in range(count)]


@pytest.fixture(scope="module")
def servers(graph_cache: Path) -> Iterator[dict[str, ServerProcess]]:
    """One server per precision, side by side."""
    with ServerProcess([*FLAGS, *PRECISION_FLAGS["fp32"]], graph_cache) as fp32, \
            ServerProcess([*FLAGS, *PRECISION_FLAGS["int8"]], graph_cache) as int8:
        yield {"fp32": fp32, "int8": int8}


def encode(server: ServerProcess, texts: list[str]) -> np.ndarray:
    with BertClient(port=server.port, port_out=server.port_out, check_length=False) as client:
        return client.encode(texts)


def alone_and_batched(server: ServerProcess) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of `short_and_held_out()`: one request per text, then one mixed request."""
    texts = short_and_held_out()
    mixed = [*long_texts(), *texts]
    random.Random(3).shuffle(mixed)
    alone = np.concatenate([encode(server, [text]) for text in texts])
    batched = encode(server, mixed)
    return alone, batched[[mixed.index(text) for text in texts]]


@pytest.mark.parametrize("precision", sorted(PRECISION_FLAGS))
def test_a_texts_vector_does_not_depend_on_its_batch(
        precision: str, servers: dict[str, ServerProcess]) -> None:
    alone, batched = alone_and_batched(servers[precision])
    if precision == "fp32":
        np.testing.assert_allclose(batched, alone, atol=1e-5, rtol=0)
    else:
        cosines = cosine_rows(batched, alone)
        assert cosines.min() >= 0.9999, dict(zip(short_and_held_out(), cosines, strict=True))


def test_int8_every_short_and_held_out_row_at_cosine_0_999_to_fp32(
        servers: dict[str, ServerProcess]) -> None:
    texts = [*short_and_held_out(), *long_texts()]
    cosines = cosine_rows(encode(servers["int8"], texts), encode(servers["fp32"], texts))
    assert cosines.min() >= 0.999, dict(zip(texts, cosines, strict=True))
