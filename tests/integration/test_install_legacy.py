"""Beside the 1.10 originals: bert-serving-server and -client 1.10.0 in the same venv.

Both own files of the `bert_serving` package (`bert_serving/__init__.py`,
`bert_serving/client/__init__.py`, `bert_serving/server/__init__.py`, `benchmark.py`)
and the `bert-serving-start/-terminate/-benchmark` commands. pip lets the last
install overwrite them and lets an uninstall delete them, whoever wrote them last:
uninstalling an original after installing ours breaks ours, and no file layout on our
side can stop that for the shared `__init__.py` and commands. So ours says so, in one
line naming the uninstall and the reinstall, and this test follows that line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fresh_venv import REPO, FreshVenv
from server_process import free_port

IMPORT_CLIENT = "from bert_serving.client import BertClient; print(BertClient.__module__)"


@pytest.fixture(scope="module")
def mixed_venv(module_tmp_path: Path) -> Iterator[FreshVenv]:
    """The migration path: an old environment with both originals, then ours on top."""
    venv = FreshVenv.create(module_tmp_path / "venv")
    # The server's own dependencies (tensorflow, GPUtil, termcolor) are not needed to
    # own the files: --no-deps keeps the venv small.
    venv.pip("install", "--no-deps", "bert-serving-server==1.10.0", "bert-serving-client==1.10.0")
    venv.pip("install", str(REPO))
    yield venv


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_commands_name_the_originals_to_uninstall(mixed_venv: FreshVenv) -> None:
    for command in ("bert-serving-start", "bert-serving-export", "bert-serving-terminate"):
        result = mixed_venv.run(command, "-h")
        assert result.returncode == 2, result
        line = _one_line(result.stderr)
        assert "bert-serving-server 1.10.0 and bert-serving-client 1.10.0" in line
        assert "pip uninstall -y bert-serving-server bert-serving-client" in line
        assert f"pip install --force-reinstall --no-deps {REPO}" in line


def test_the_client_warns_at_import(mixed_venv: FreshVenv) -> None:
    result = mixed_venv.run("python", "-c", IMPORT_CLIENT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "bert_serving.client._client"  # ours, installed last
    line = _one_line(result.stderr)
    assert "RuntimeWarning" in line and "pip uninstall -y bert-serving-server" in line


def test_following_the_line_leaves_ours_working(mixed_venv: FreshVenv) -> None:
    """Runs last: it uninstalls the originals as the message says."""
    line = _one_line(mixed_venv.run("bert-serving-start").stderr)
    instruction = re.search(r"`([^`]+)`", line)
    assert instruction is not None, line
    uninstall, reinstall = instruction.group(1).split(" && ")
    # pip's limit, which the message exists for: the uninstall alone deletes our shared files.
    assert mixed_venv.shell(uninstall).returncode == 0
    broken = mixed_venv.run("python", "-c", IMPORT_CLIENT)
    assert broken.returncode != 0 and "BertClient" in broken.stderr
    assert not (mixed_venv.bin / "bert-serving-start").exists()

    done = mixed_venv.shell(reinstall)
    assert done.returncode == 0, done.stderr
    fixed = mixed_venv.run("python", "-c", IMPORT_CLIENT)
    assert fixed.returncode == 0 and fixed.stderr == "", fixed.stderr
    port = str(free_port())
    terminate = mixed_venv.run("bert-serving-terminate", "-port", port, timeout=30)
    assert terminate.returncode == 1 and "no server is listening" in terminate.stderr
    start = mixed_venv.run("bert-serving-start", "-h")  # a client-only install now
    assert start.returncode == 2 and "client-only install" in start.stderr
