"""A disk cache of converted graphs, keyed by content, safe for several servers at once.

Each entry is `<root>/<key>.onnx`, with `<key>.onnx.data` beside it when the graph's
weights are external (see graph_file). A build writes the data file under its final
name and the graph to a temporary file in the same folder, then renames the graph
into place (atomic on POSIX) last, under an exclusive file lock per key, so two
servers starting together convert once and never read half a graph or its data.

Every graph holds a full copy of its model's weights, and each new model or graph option
adds one, so the folder only grows. A hit refreshes the entry's access time (its graph and
data file), whatever the mount's atime setting, so graphs no start has used for a while can
be pruned by age (`find <root> -name '*.onnx*' -atime +30 -delete`, see the README), while
no server runs from them: a running server's restarted worker reloads its graph from here,
without a second hit. An entry pruned is converted again at the next start that needs it.

Usage::

    cache = GraphCache(default_cache_dir())
    path, built = cache.get_or_build(key, lambda tmp, data: save_graph(model, tmp,
                                                                       data_name=data))
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..model.graph_contract import default_cache_dir
from .graph_file import data_file_name

__all__ = ["GraphCache", "default_cache_dir", "digest_files", "entry_files"]

_CHUNK = 8 << 20


def digest_files(paths: Iterable[Path]) -> str:
    """A content hash of the files, in order; names do not count, bytes do."""
    digest = hashlib.blake2b(digest_size=20)
    for path in paths:
        with path.open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0file\0")
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an advisory lock on `path` (POSIX flock; a no-op where there is none)."""
    try:
        import fcntl
    except ImportError:  # Windows: conversions may race, the atomic rename still holds
        yield
        return
    with path.open("a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def entry_files(graph: Path) -> tuple[Path, Path, Path]:
    """One entry's files, which go (and are pruned) together: the graph, the data file of
    its weights when they are external, and the lock its builds hold."""
    return graph, graph.with_name(data_file_name(graph.name)), graph.with_suffix(".lock")


class GraphCache:
    """Converted graphs under `root`, one file per key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        return self.root / f"{key}.onnx"

    def get_or_build(self, key: str,
                     build: Callable[[Path, str], None]) -> tuple[Path, bool]:
        """The cached graph for `key`, building it first if absent; says whether it built.

        `build(temporary, data_name)` writes the graph at `temporary` and, if its weights
        go external, names their file `data_name` (in the same folder): the name that pairs
        with the entry once the graph is renamed.
        """
        target, data, lock = entry_files(self.path_for(key))
        if target.is_file():
            _mark_used(target)
            return target, False
        self.root.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(lock):
            if target.is_file():  # another process built it while we waited
                _mark_used(target)
                return target, False
            _remove_killed_builds(self.root, key)
            temporary = self.root / f".{key}.{os.getpid()}.tmp"
            try:
                build(temporary, data.name)
                for written in (data, temporary):
                    _sync(written)
                os.replace(temporary, target)
            except BaseException:
                data.unlink(missing_ok=True)  # half a conversion's weights
                raise
            finally:
                temporary.unlink(missing_ok=True)
        return target, True


def _remove_killed_builds(root: Path, key: str) -> None:
    """Delete what a build of `key` killed mid-way left: its temporary graph, as large as the
    model (a pod killed at the end of its grace period while converting leaves one), and the
    fp32 graph an int8 build quantizes from (`.tmp.fp32`, with its `.data`).

    Called under the key's lock, which every build of it holds while writing, so no live
    build's file can match. A killed build's data file needs nothing: the next one
    overwrites it under the same name.
    """
    for leftover in root.glob(f".{key}.*.tmp*"):
        leftover.unlink(missing_ok=True)


def _mark_used(graph: Path) -> None:
    """Set the access time of `graph` and its data file to now, keeping their modification
    times; best effort, since a read-only cache (a mounted volume) is still a usable one."""
    graph, data, _lock = entry_files(graph)
    for path in (graph, data):
        with contextlib.suppress(OSError):
            os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))


def _sync(path: Path) -> None:
    """Flush `path` to disk before the rename publishes it (absent files are skipped)."""
    if not path.is_file():
        return
    with path.open("rb") as file:
        os.fsync(file.fileno())
