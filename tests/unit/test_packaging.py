"""The wheel ships every package folder: pyproject.toml names its packages one by one.

An explicit list (the namespace spans three top-level folders) misses a new folder
silently until an install outside the checkout fails; this catches it at once.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_named_in_pyproject() -> None:
    import tomllib  # Python 3.11+, as in test_deploy

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    named = set(setuptools["packages"])
    found = {
        ".".join(init.parent.relative_to(top).parts)
        for top in (ROOT / "server", ROOT / "client", ROOT / "proto")
        for init in top.glob("bert_serving/**/__init__.py")
    }
    assert found == named, f"missing from pyproject: {sorted(found - named)}, " \
                           f"named but absent: {sorted(named - found)}"
    for package in named:
        assert (ROOT / setuptools["package-dir"][package] / "__init__.py").is_file(), package
