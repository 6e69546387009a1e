"""The graph cache: two servers starting at once convert once and read only whole files."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import onnx

from bert_serving.server.convert.prepare import prepare_engine_graph
from bert_serving.server.model.engine import EngineOptions


def _prepare(args: tuple[str, str]) -> tuple[str, bool]:
    model_dir, cache = args
    options = EngineOptions(model_dir=Path(model_dir), graph_tmp_dir=Path(cache))
    graph = prepare_engine_graph(options)
    return str(graph.path), graph.converted_now


def test_concurrent_starts_convert_once(minilm_dir: Path, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        results = pool.map(_prepare, [(str(minilm_dir), str(tmp_path))] * 3)
    paths = {path for path, _ in results}
    assert len(paths) == 1
    assert sum(converted for _, converted in results) == 1  # the others waited, then reused it
    onnx.checker.check_model(onnx.load(next(iter(paths))))
    leftovers = [p.name for p in tmp_path.iterdir() if p.suffix not in (".onnx", ".lock")]
    assert leftovers == []  # no temporary files left behind
