"""The graph cache: two servers starting at once convert once and read only whole files."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import onnx

from bert_serving.server.convert.cache import GraphCache, entry_files
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


def _build_tiny(temporary: Path, data_name: str) -> None:
    """A stand-in conversion: the cache's contract is about files, not what is in them."""
    temporary.write_bytes(b"graph")
    (temporary.parent / data_name).write_bytes(b"weights")


def test_a_hit_refreshes_the_access_time_and_keeps_the_modification_time(
        tmp_path: Path) -> None:
    """What `find -atime` pruning (README, the graph cache) relies on, on any atime mount."""
    cache = GraphCache(tmp_path)
    graph, built = cache.get_or_build("key", _build_tiny)
    _graph, data, _lock = entry_files(graph)
    assert built and data.is_file()
    long_ago = 1_000_000_000_000_000_000  # 2001, in ns
    for path in (graph, data):
        os.utime(path, ns=(long_ago, long_ago))
    before = time.time_ns() - 10**9  # a second of slack for coarse file system clocks

    again, built = cache.get_or_build("key", _build_tiny)

    assert again == graph and not built
    for path in (graph, data):
        seen = path.stat()
        assert seen.st_atime_ns >= before, path  # refreshed to now
        assert seen.st_mtime_ns == long_ago, path  # the conversion's own time is kept


def test_a_killed_builds_temporary_graph_is_removed_by_the_next_build(tmp_path: Path) -> None:
    """A server SIGKILLed while converting (a pod past its grace period) leaves a temporary
    graph as large as the model; nothing else would ever remove it."""
    killed = [tmp_path / ".key.4242.tmp",  # the graph being written
              tmp_path / ".key.4242.tmp.fp32",  # what an int8 build quantizes from
              tmp_path / ".key.4242.tmp.fp32.data"]  # its external weights
    for path in killed:
        path.write_bytes(b"half a graph")
    other_key = tmp_path / ".other.4242.tmp"  # another key's build may be live: not ours
    other_key.write_bytes(b"being written")

    GraphCache(tmp_path).get_or_build("key", _build_tiny)

    assert [path for path in killed if path.exists()] == []
    assert other_key.exists()
