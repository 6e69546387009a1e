"""-head sparse on the real splade-tiny, in-process: the graph against transformers.

The engine (conversion, tokenizer.json, onnxruntime) computes SPLADE's weights;
tests/splade_reference.py computes them with AutoModelForMaskedLM on torch CPU.
Tolerance 1e-4 per value over the whole vocabulary; the nonzero sets agree except
for weights under SUPPORT_THRESHOLD in either, where a logit within float error of
0 may fall on either side of relu.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reference import heldout_texts
from splade_reference import SpladeReference, splade_tiny_dir

from bert_serving.client import SparseVector
from bert_serving.client._sparse import to_sparse_vectors
from bert_serving.server.config import parse_server_config
from bert_serving.server.errors import ConfigError, UnsupportedModelError
from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.head import ModelHead

TOLERANCE = 1e-4
SUPPORT_THRESHOLD = 1e-4
VOCAB_SIZE = 30522


@pytest.fixture(scope="module")
def splade_engine(graph_cache: Path) -> Engine:
    return Engine.load(EngineOptions(model_dir=splade_tiny_dir(), head=ModelHead.SPARSE,
                                     max_seq_len=None, graph_tmp_dir=graph_cache))


def assert_same_support(got: np.ndarray, want: np.ndarray) -> None:
    for row, (g, w) in enumerate(zip(got, want, strict=True)):
        missing = np.flatnonzero((w > SUPPORT_THRESHOLD) & (g == 0))
        extra = np.flatnonzero((g > SUPPORT_THRESHOLD) & (w == 0))
        assert not missing.size and not extra.size, (row, missing, extra)


def test_sparse_graph_matches_transformers(splade_engine: Engine) -> None:
    texts = heldout_texts()
    got = splade_engine.encode(texts)
    want = SpladeReference(splade_tiny_dir()).encode(texts, max_seq_len=None)
    assert got.shape == (len(texts), VOCAB_SIZE) == want.shape
    np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)
    assert_same_support(got, want)
    assert (got >= 0).all() and (got > 0).any(axis=1).all()


def test_sparse_graph_records_its_head(splade_engine: Engine) -> None:
    metadata = splade_engine.graph.metadata
    assert metadata.head is ModelHead.SPARSE
    assert metadata.output_width == VOCAB_SIZE


def test_padding_does_not_change_a_text_s_weights(splade_engine: Engine) -> None:
    alone = splade_engine.encode(["hi"])
    batched = splade_engine.encode(["hi", "a much longer text that pads the first one well"])
    np.testing.assert_allclose(batched[:1], alone, atol=1e-6, rtol=0)


def test_head_sparse_on_a_folder_without_a_masked_lm_head_names_the_weight(
        minilm_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"cls\.predictions\.transform"):
        Engine.load(EngineOptions(model_dir=minilm_dir, head=ModelHead.SPARSE,
                                  graph_tmp_dir=tmp_path))


@pytest.mark.parametrize("flags", [["-pooling_strategy", "CLS_TOKEN"], ["-pooling_layer", "-1"],
                                   ["-mask_cls_sep"]])
def test_head_sparse_refuses_pooling_flags(flags: list[str]) -> None:
    with pytest.raises(ConfigError, match=f"{flags[0]} does not apply to -head sparse"):
        parse_server_config(["-head", "sparse", *flags])


def test_head_sparse_chunks_long_texts() -> None:
    config = parse_server_config(["-head", "sparse", "-truncation", "chunk"])
    assert config.truncation == "chunk" and config.engine.head is ModelHead.SPARSE


def test_head_defaults_to_the_folder_s_kind() -> None:
    assert parse_server_config([]).engine.head is None
    assert parse_server_config(["-head", "sparse"]).engine.head is ModelHead.SPARSE


def test_sparse_vectors_keep_the_nonzero_entries_in_index_order() -> None:
    rows = np.array([[0, 1.5, 0, 0.25], [0, 0, 0, 0]], np.float32)
    first, empty = to_sparse_vectors(rows)
    assert isinstance(first, SparseVector)
    assert first.indices.tolist() == [1, 3] and first.values.tolist() == [1.5, 0.25]
    assert first.indices.dtype == np.int64 and first.values.dtype == np.float32
    assert first.to_dict() == {1: 1.5, 3: 0.25}
    assert empty.indices.size == 0 and empty.values.size == 0


def test_exported_sparse_graph_is_served_as_sparse_without_the_flag(
        splade_engine: Engine, tmp_path: Path) -> None:
    from bert_serving.server.export_cli import main

    out = tmp_path / "export" / "model.onnx"
    assert main(["-model_dir", str(splade_tiny_dir()), "-head", "sparse", "-o", str(out),
                 "-graph_tmp_dir", str(tmp_path / "cache")]) == 0
    served = Engine.load(EngineOptions(model_dir=out, graph_tmp_dir=tmp_path / "cache"))
    assert served.graph.metadata.head is ModelHead.SPARSE
    texts = ["hello sparse world", "a"]
    np.testing.assert_array_equal(served.encode(texts), splade_engine.encode(texts))


def test_head_sparse_refuses_an_exported_embedding_graph(minilm_dir: Path,
                                                          tmp_path: Path) -> None:
    from bert_serving.server.export_cli import main

    out = tmp_path / "model.onnx"
    assert main(["-model_dir", str(minilm_dir), "-o", str(out),
                 "-graph_tmp_dir", str(tmp_path / "cache")]) == 0
    with pytest.raises(UnsupportedModelError, match="outputs embedding vectors, not sparse"):
        Engine.load(EngineOptions(model_dir=out, head=ModelHead.SPARSE,
                                  graph_tmp_dir=tmp_path / "cache"))


@pytest.mark.parametrize(("precision", "min_cosine"), [("fp16", 0.9999), ("int8", 0.997)])
def test_sparse_graph_in_other_precisions(splade_engine: Engine, tmp_path: Path,
                                          precision: str, min_cosine: float) -> None:
    """The GPU graph (fp16, fused; run here on CPU) and -int8 keep SPLADE's weights close."""
    from bert_serving.server.convert.cache import GraphCache
    from bert_serving.server.convert.prepare import ConversionOptions, prepare_graph
    from bert_serving.server.convert.sources import detect_model_source

    options = ConversionOptions(head=ModelHead.SPARSE, precision=precision,
                                fuse_for_gpu=precision == "fp16")
    graph = prepare_graph(detect_model_source(splade_tiny_dir()), options, GraphCache(tmp_path))
    engine = Engine.from_graph(graph, EngineOptions(head=ModelHead.SPARSE, max_seq_len=None))
    texts = heldout_texts()
    got, want = engine.encode(texts), splade_engine.encode(texts)
    assert graph.metadata.head is ModelHead.SPARSE and np.isfinite(got).all()
    cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosine.min() >= min_cosine
