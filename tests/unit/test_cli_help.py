"""Every flag of every `bert-serving-*` command says what it does in `-h`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from bert_serving.commands.terminate import build_parser as terminate_parser
from bert_serving.server.benchmark import build_parser as benchmark_parser
from bert_serving.server.config import build_parser as start_parser
from bert_serving.server.export_cli import build_parser as export_parser

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "bert-serving-start": start_parser,
    "bert-serving-export": export_parser,
    "bert-serving-benchmark": benchmark_parser,
    "bert-serving-terminate": terminate_parser,
}


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_every_flag_has_help(prog: str) -> None:
    parser = PARSERS[prog]()
    assert parser.prog == prog
    flags = [action for action in parser._actions if action.option_strings]
    assert len(flags) > 3
    undocumented = [action.option_strings[0] for action in flags
                    if not action.help or action.help == argparse.SUPPRESS]
    assert undocumented == []


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_every_command_prints_its_version(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        PARSERS[prog]().parse_args(["-version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.startswith("bert-serving ")
