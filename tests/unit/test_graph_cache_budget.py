"""The test session's graph-cache budget prunes whole entries, least recently used first."""

from __future__ import annotations

import os
from pathlib import Path

from graph_cache_budget import prune_graph_cache


def _entry(root: Path, key: str, size: int, used_s: int, *, external: bool = False) -> Path:
    graph = root / f"{key}.onnx"
    graph.write_bytes(b"g" * size)
    (root / f"{key}.lock").touch()
    if external:
        (root / f"{key}.onnx.data").write_bytes(b"d" * size)
    os.utime(graph, (used_s, 0))
    return graph


def test_the_least_recently_used_entries_go_whole_until_the_rest_fits(tmp_path: Path) -> None:
    old = _entry(tmp_path, "old", 100, used_s=1_000, external=True)  # 200 bytes with its data
    middle = _entry(tmp_path, "middle", 100, used_s=2_000)
    recent = _entry(tmp_path, "recent", 100, used_s=3_000)

    removed = prune_graph_cache(tmp_path, budget_bytes=150)

    assert removed == [old, middle]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["recent.lock", "recent.onnx"]
    assert recent.is_file()


def test_a_cache_within_its_budget_is_left_alone(tmp_path: Path) -> None:
    _entry(tmp_path, "only", 100, used_s=1_000)
    assert prune_graph_cache(tmp_path, budget_bytes=100) == []
    assert len(list(tmp_path.iterdir())) == 2
