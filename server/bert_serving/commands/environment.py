"""What this environment has installed, checked before a command imports the server.

Three things break a command in ways its traceback does not explain, so each
is found here and turned into one line saying what to do:

- the 1.10 originals (`bert-serving-server`, `bert-serving-client`) in the same
  environment: they own files of the same `bert_serving` package, and their
  `bert_serving/server/cli/` package shadows ours;
- both `onnxruntime` and `onnxruntime-gpu`: one module name, two owners;
- a client-only install (`pip install .`) running a server command.

Only the standard library is used: this must run where nothing else works.

Usage::

    problem = legacy_conflict() or runtime_conflict() or missing_server_extra()
"""

from __future__ import annotations

import json
from importlib import metadata
from importlib.util import find_spec

__all__ = [
    "DISTRIBUTION",
    "LEGACY_DISTRIBUTIONS",
    "SERVER_MODULES",
    "install_source",
    "installed_version",
    "legacy_conflict",
    "missing_server_extra",
    "runtime_conflict",
]

DISTRIBUTION = "bert-serving-onnx"
LEGACY_DISTRIBUTIONS = ("bert-serving-server", "bert-serving-client")
# What a server command imports beyond the client's numpy and pyzmq (import names).
SERVER_MODULES = ("onnxruntime", "onnx", "tokenizers", "safetensors", "fastapi", "uvicorn",
                  "pydantic", "orjson", "fastapi_offline")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def installed_version() -> str:
    """This distribution's version, as pip recorded it."""
    return _version(DISTRIBUTION) or "(not installed)"


def install_source() -> str:
    """Where this package was installed from (pip records it), so a message can repeat it."""
    try:
        record = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        record = None
    url = json.loads(record).get("url", "") if record else ""
    return url.removeprefix("file://") if url.startswith("file://") else "."


def legacy_conflict() -> str | None:
    """One line naming the 1.10 packages to uninstall, or None when there are none.

    pip cannot keep both: uninstalling an original deletes the files it shares
    with this package (`bert_serving/client/__init__.py`, the `bert-serving-*`
    commands), so the message says to reinstall this one afterwards.
    """
    found = [f"{name} {version}" for name in LEGACY_DISTRIBUTIONS
             if (version := _version(name)) is not None]
    if not found:
        return None
    names = " ".join(name.split()[0] for name in found)
    return (f"{' and '.join(found)} (bert-as-service 1.x) is installed in this environment "
            f"and shares the bert_serving package with {DISTRIBUTION}: run "
            f"`pip uninstall -y {names} && pip install --force-reinstall --no-deps "
            f"{install_source()}` (the uninstall deletes files both own)")


def runtime_conflict() -> str | None:
    """One line when both onnxruntime builds are installed: they share one module."""
    if _version("onnxruntime") is None or _version("onnxruntime-gpu") is None:
        return None
    return ("onnxruntime and onnxruntime-gpu are both installed and share the onnxruntime "
            "module: run `pip uninstall -y onnxruntime onnxruntime-gpu`, then install one "
            f"again with `pip install '{install_source()}[server]'` (CPU) or '[gpu]' (GPU)")


def missing_server_extra() -> str | None:
    """One line naming the extra to install when a server module is missing, else None."""
    missing = [name for name in SERVER_MODULES if find_spec(name) is None]
    if not missing:
        return None
    source = install_source()
    return (f"this is a client-only install (missing {', '.join(missing)}): install the "
            f"server with `pip install '{source}[server]'` (CPU) or "
            f"`pip install '{source}[gpu]'` (NVIDIA GPU)")
