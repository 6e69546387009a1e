"""Print the requirements of the project's base install plus one extra, one per line.

The image installs its dependencies in a layer of their own, before the source is copied,
so a code change does not reinstall them; this reads them from pyproject.toml alone (the
only project file that layer sees). The standard library only (tomllib: Python 3.11+).

    python deploy/requirements.py PROJECT_DIR EXTRA   # e.g. . server
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

__all__ = ["requirements"]


def requirements(project_dir: Path, extra: str) -> list[str]:
    """`dependencies` plus `optional-dependencies[extra]`; an unknown extra is an error."""
    with (project_dir / "pyproject.toml").open("rb") as file:
        project = tomllib.load(file)["project"]
    extras = project.get("optional-dependencies", {})
    if extra not in extras:
        raise SystemExit(f"pyproject.toml has no extra {extra!r}; it has {sorted(extras)}")
    return [*project.get("dependencies", []), *extras[extra]]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: python deploy/requirements.py PROJECT_DIR EXTRA")
    print("\n".join(requirements(Path(sys.argv[1]), sys.argv[2])))
