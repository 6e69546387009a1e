"""scripts/profile_server.py reads py-spy's raw output right: process, thread, busy and waiting.

py-spy writes one line per distinct stack, `frame;frame;... count`, with a
`process PID:"command line"` frame per process level under `--subprocesses`. A
command line may itself hold `;` (ours does: `-c "...start; import sys; ..."`),
which once put every sample under one bogus thread.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "profile_server.py"

SERVER = ('process 11:"python -c from bert_serving.server.cli import start; import sys; '
          'sys.exit(start()) -cpu"')
WORKER = ('process 12:"python -B -c from multiprocessing.spawn import spawn_main; '
          'spawn_main(tracker_fd=3)"')
WORKER_MAIN = ("<module> (<string>:1);spawn_main (multiprocessing/spawn.py:122);"
               "BaseProcess._bootstrap (multiprocessing/process.py:314);"
               "BaseProcess.run (multiprocessing/process.py:108);"
               "run_worker (bert_serving/server/pipeline/worker.py:110)")
RAW = "\n".join([
    f"{SERVER};{WORKER};{WORKER_MAIN};Session.run (onnxruntime/capi/session.py:220) 90",
    f"{SERVER};{WORKER};{WORKER_MAIN};Socket.send (zmq/sugar/socket.py:700) 4",
    f"{SERVER};Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982);"
    "Ventilator.serve (bert_serving/server/pipeline/ventilator.py:108);"
    "Poller.poll (zmq/sugar/poll.py:106) 30",
    f"{SERVER};Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982);"
    "Ventilator.serve (bert_serving/server/pipeline/ventilator.py:108);"
    "count_tokens (bert_serving/server/server.py:77) 6",
])


@pytest.fixture(scope="module")
def profile_tools() -> dict:
    return runpy.run_path(str(SCRIPT))


def test_samples_are_split_by_process_and_thread_despite_semicolons_in_commands(
        profile_tools: dict, tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(RAW)
    samples = profile_tools["parse"](raw)
    thread_name = profile_tools["thread_name"]
    assert [(role, thread_name(stack), count) for role, stack, count in samples] == [
        ("worker process", "worker.run_worker", 90),
        ("worker process", "worker.run_worker", 4),
        ("server process", "ventilator.Ventilator.serve", 30),
        ("server process", "ventilator.Ventilator.serve", 6),
    ]


def test_report_counts_polls_as_waiting_and_the_rest_as_work(
        profile_tools: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(RAW)
    profile_tools["report"](profile_tools["parse"](raw), wall_samples=100, per_thread=3)
    out = capsys.readouterr().out.splitlines()

    def line_with(text: str) -> str:
        return next(line for line in out if text in line)

    worker = line_with("worker process / worker.run_worker")
    assert "94.0%" in worker and "(waiting 0.0%)" in worker
    ventilator = line_with("server process / ventilator.Ventilator.serve")
    assert "6.0%" in ventilator and "(waiting 30.0%)" in ventilator
    assert "90.0%" in line_with("session.Session.run")
    assert not any("Poller.poll" in line for line in out)  # waits are not listed as work
