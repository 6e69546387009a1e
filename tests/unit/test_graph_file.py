"""Graphs too large for one protobuf file: weights in a data file beside the graph.

A real Qwen3-Embedding-0.6B (2.4 GB in fp32) crosses protobuf's 2 GiB limit; making
one here would take minutes and gigabytes, so these tests lower the size at which
weights go external (`EXTERNAL_DATA_ABOVE`) and run the same code path on a random
Qwen3 model: conversion into the cache, fp32 and int8, the export, and serving an
exported two-file graph, each checked against transformers (fp32, within 1e-4) or
against the one-file graph of the same conversion (int8, identical).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from make_random_family import write_random_family
from reference import FamilyReference, heldout_texts

from bert_serving.server import export_cli
from bert_serving.server.convert import graph_file
from bert_serving.server.convert.cache import GraphCache
from bert_serving.server.model.engine import Engine, EngineOptions

TOLERANCE = 1e-4
TEXTS = [*heldout_texts()[:12], "ok", "今天天气很好", "a longer text " * 20]


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_family("qwen3", tmp_path_factory.mktemp("qwen3-external"))


@pytest.fixture()
def external_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every graph's weights go external, as a > 2 GiB model's must."""
    monkeypatch.setattr(graph_file, "EXTERNAL_DATA_ABOVE", 0)


def load(model_dir: Path, cache: Path, **options: object) -> Engine:
    return Engine.load(EngineOptions(model_dir=model_dir, graph_tmp_dir=cache,  # type: ignore[arg-type]
                                     max_seq_len=None, **options))


def entries(cache: Path) -> list[str]:
    return sorted(path.name.split(".", 1)[1] for path in cache.iterdir()
                  if not path.name.endswith(".lock"))


@pytest.mark.usefixtures("external_always")
def test_a_converted_graph_with_external_weights_matches_transformers(
        qwen_dir: Path, tmp_path: Path) -> None:
    engine = load(qwen_dir, tmp_path)
    assert entries(tmp_path) == ["onnx", "onnx.data"], "the graph and its weights, no temporaries"
    graph = next(tmp_path.glob("*.onnx"))
    data = tmp_path / f"{graph.name}.data"
    assert graph.stat().st_size < data.stat().st_size, "the weights are in the data file"
    assert data.stat().st_mode & 0o777 == graph.stat().st_mode & 0o777, (
        "a server running as another user than the converter's reads both or neither")
    want = FamilyReference(qwen_dir).encode(TEXTS, layers=(-2,), strategy="REDUCE_MEAN",
                                            max_seq_len=None, mask_cls_sep=False)
    np.testing.assert_allclose(engine.encode(TEXTS), want, atol=TOLERANCE, rtol=0)
    assert entries(tmp_path) == ["onnx", "onnx.data"]
    load(qwen_dir, tmp_path)  # found in the cache: the pair is read back as it was written
    assert entries(tmp_path) == ["onnx", "onnx.data"]


def test_int8_with_external_weights_is_the_one_file_int8_graph(
        qwen_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one_file = load(qwen_dir, tmp_path / "one", dtype="int8").encode(TEXTS)
    monkeypatch.setattr(graph_file, "EXTERNAL_DATA_ABOVE", 0)
    two_files = load(qwen_dir, tmp_path / "two", dtype="int8").encode(TEXTS)
    assert entries(tmp_path / "one") == ["onnx"]
    assert entries(tmp_path / "two") == ["onnx", "onnx.data"], "no fp32 leftovers of the int8 step"
    np.testing.assert_array_equal(two_files, one_file)


@pytest.mark.usefixtures("external_always")
def test_the_export_carries_its_weights_under_its_own_name(
        qwen_dir: Path, tmp_path: Path) -> None:
    cache, out = tmp_path / "cache", tmp_path / "export" / "model.onnx"
    exit_code = export_cli.main(["-model_dir", str(qwen_dir), "-graph_tmp_dir", str(cache),
                                 "-o", str(out)])
    assert exit_code == 0
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "model.onnx", "model.onnx.data", "tokenizer.json"]
    graph = onnx.load(str(out), load_external_data=False)
    locations = {entry.value for tensor in graph.graph.initializer
                 for entry in tensor.external_data if entry.key == "location"}
    assert locations == {"model.onnx.data"}
    want = load(qwen_dir, cache).encode(TEXTS)
    for path in cache.iterdir():  # the export must not lean on the cache's files
        path.unlink()
    served = load(out, tmp_path / "serve-cache")
    np.testing.assert_array_equal(served.encode(TEXTS), want)
    assert not (tmp_path / "serve-cache").exists() or not any(
        (tmp_path / "serve-cache").iterdir()), "a ready fp32 graph is served as is"
    int8 = load(out, tmp_path / "serve-cache", dtype="int8")  # converted from the two files
    assert entries(tmp_path / "serve-cache") == ["onnx", "onnx.data"]
    assert int8.encode(TEXTS).shape == want.shape


def test_a_failed_conversion_leaves_no_weights_behind(tmp_path: Path) -> None:
    cache = GraphCache(tmp_path)

    def build(temporary: Path, data_name: str) -> None:
        (temporary.parent / data_name).write_bytes(b"half of the weights")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        cache.get_or_build("abc", build)
    assert [p.name for p in tmp_path.iterdir()] == ["abc.lock"]
