"""ServedGraph: the served graph's facts, built as `BertServer.start` builds them, from real
graphs (the MiniLM and splade-tiny converted here) and the flags and folder they came from.

Each fact is checked against what the graph itself computes (its output's shape and
columns from onnxruntime), not only against the flags that asked for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from splade_reference import splade_tiny_dir

from bert_serving.server.config import parse_server_config
from bert_serving.server.convert.prepare import prepare_engine_graph
from bert_serving.server.model.engine import Engine
from bert_serving.server.model.head import ModelHead
from bert_serving.server.model.native_embedding import l2_normalize
from bert_serving.server.model.served_graph import ServedGraph

TEXTS = ["the cat sat on the mat", "a longer sentence about nothing in particular"]


def start(argv: list[str], cache: Path) -> tuple[ServedGraph, Engine]:
    """What a start of `argv` serves: its ServedGraph and an engine over the same graph."""
    config = parse_server_config([*argv, "-graph_tmp_dir", str(cache), "-max_seq_len", "32"])
    graph = prepare_engine_graph(config.engine)
    served = ServedGraph.of(graph.metadata, normalize=config.engine.normalize,
                            native=config.native_embedding)
    return served, Engine.from_graph(graph, config.engine)


def test_a_gateway_start_pools_the_model_own_embedding_beside(minilm_dir: Path,
                                                                graph_cache: Path) -> None:
    served, engine = start(["-model_dir", str(minilm_dir), "-http_port", "1"], graph_cache)
    assert (served.token_level, served.sparse, served.normalize) == (False, False, False)
    assert served.has_native_view and served.own_embedding
    rows = engine.encode(TEXTS)
    metadata = served.metadata
    assert rows.shape == (len(TEXTS), metadata.row_width) == (len(TEXTS), 2 * 384)
    native = rows[:, metadata.output_width:]  # the model's own: MiniLM normalizes
    np.testing.assert_allclose(np.linalg.norm(native, axis=1), 1.0, atol=1e-5)


def test_without_the_gateway_the_server_pooling_is_not_the_model_own(
        minilm_dir: Path, graph_cache: Path) -> None:
    served, engine = start(["-model_dir", str(minilm_dir)], graph_cache)
    assert not served.has_native_view and not served.own_embedding
    assert engine.encode(TEXTS).shape == (len(TEXTS), served.metadata.output_width)


def test_model_pooling_is_the_model_own_without_a_second_view(minilm_dir: Path,
                                                               graph_cache: Path) -> None:
    served, engine = start(["-model_dir", str(minilm_dir), "-http_port", "1",
                            "-pooling_strategy", "MODEL"], graph_cache)
    assert served.own_embedding and served.normalize and not served.has_native_view
    rows = engine.encode(TEXTS)
    assert rows.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(rows, l2_normalize(rows), atol=1e-6)


def test_token_vectors_are_token_level(minilm_dir: Path, graph_cache: Path) -> None:
    """The graph's rows have a token axis exactly when the fact says so."""
    served, engine = start(["-model_dir", str(minilm_dir), "-http_port", "1",
                            "-pooling_strategy", "NONE"], graph_cache)
    assert served.token_level and not served.own_embedding and not served.has_native_view
    assert engine.encode(TEXTS).ndim == 3


def test_a_sparse_graph_is_sparse(graph_cache: Path) -> None:
    served, engine = start(["-model_dir", str(splade_tiny_dir()), "-head", "sparse"],
                           graph_cache)
    assert served.sparse and served.metadata.head is ModelHead.SPARSE
    assert not served.token_level and not served.own_embedding
    rows = engine.encode(TEXTS)
    assert rows.shape[1] == served.metadata.output_width and (rows >= 0).all()
