"""Errors a user can act on.

The hierarchy, drawn once::

    BertServingError
    ├── ConfigError        a flag or option value that cannot work (bad -pooling_layer, ...)
    └── ModelError         the model folder or file cannot be served
        ├── ModelNotFoundError     a file the model needs is missing
        └── UnsupportedModelError  the files are there but are not a BERT we can serve

Every message names the file or flag at fault and says what to do about it.
"""

from __future__ import annotations

__all__ = [
    "BertServingError",
    "ConfigError",
    "ModelError",
    "ModelNotFoundError",
    "UnsupportedModelError",
]


class BertServingError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(BertServingError, ValueError):
    """An option value that cannot work; the message names the flag."""


class ModelError(BertServingError):
    """The model cannot be loaded or converted; the message names the file."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A file the model needs is missing."""


class UnsupportedModelError(ModelError):
    """The files exist but describe something other than a BERT we can serve."""
