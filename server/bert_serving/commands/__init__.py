"""The `bert-serving-*` console commands: check the environment, then run the real command.

The commands are installed by every install, the client-only one included, so
each entry point here imports nothing but the standard library until
`environment` has found nothing wrong; a problem is one line on stderr and
exit status 2 instead of a `ModuleNotFoundError` traceback. The commands live
outside `bert_serving.server` because a 1.10 `bert-serving-server` in the same
environment would replace that package's `__init__` and shadow its `cli`.

`bert-serving-terminate` and `bert-serving-benchmark` are clients: they need
only numpy and pyzmq, so they run on a client-only install too.

Usage (what pip's console scripts call)::

    sys.exit(start())
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from .environment import legacy_conflict, missing_server_extra, runtime_conflict

__all__ = ["benchmark", "export", "start", "terminate"]


def _refuse_if_broken(prog: str, *, server: bool) -> None:
    checks: list[Callable[[], str | None]] = [legacy_conflict]
    if server:
        checks += [runtime_conflict, missing_server_extra]
    for check in checks:
        problem = check()
        if problem:
            print(f"{prog}: {problem}", file=sys.stderr, flush=True)
            raise SystemExit(2)


def start(argv: Sequence[str] | None = None) -> int:
    """`bert-serving-start`."""
    _refuse_if_broken("bert-serving-start", server=True)
    from bert_serving.server.cli import start as run

    return run(argv)


def export(argv: Sequence[str] | None = None) -> int:
    """`bert-serving-export`."""
    _refuse_if_broken("bert-serving-export", server=True)
    from bert_serving.server.export_cli import main as run

    return run(None if argv is None else list(argv))


def terminate(argv: Sequence[str] | None = None) -> int:
    """`bert-serving-terminate`: needs only pyzmq."""
    _refuse_if_broken("bert-serving-terminate", server=False)
    from .terminate import main as run

    return run(argv)


def benchmark(argv: Sequence[str] | None = None) -> int:
    """`bert-serving-benchmark`: needs only the client."""
    _refuse_if_broken("bert-serving-benchmark", server=False)
    from bert_serving.server.benchmark import main as run

    return run(argv)
