"""A scratch directory for one script run, removed when the script ends.

The benchmark and probe scripts write random models and converted graphs into it (30 to
170 MB a run); left in the temp dir, each CI run leaked about 400 MB of them, and a
person who runs the benchmarks now and then fills their /tmp.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

__all__ = ["PREFIX", "scratch_dir"]


PREFIX = "bert-serving-"
"""Every scratch directory's name starts so (as the server's own socket directories do)."""


def scratch_dir(purpose: str) -> Path:
    """A new `bert-serving-<purpose>-*` directory in the temp dir, deleted at the
    interpreter's exit (on an error too)."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{purpose}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
