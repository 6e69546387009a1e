"""How a config field is set from the command line and shown: the `Setting` in its metadata.

A flag is declared once, on the dataclass field it sets (`config.EngineOptions`,
`config.ServerConfig`), with `setting(...)`; the parser, the parsing, the
SHOW_CONFIG dict and the start banner are all derived from those fields, so adding
a flag is one edit. Single-dash spelling as the original (`-model_dir`); the
double-dash spelling is accepted too.

Usage::

    port: int = setting(5555, group="serving", flags=(flag("port", type=int, default=5555,
                        help="port clients push requests to"),))
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MODEL_POOLING",
    "Flag",
    "Setting",
    "add_flag",
    "as_is",
    "flag",
    "parse_max_seq_len",
    "setting",
    "setting_of",
]

MODEL_POOLING = "MODEL"
"""-pooling_strategy MODEL: the model's own embedding, from its sentence-transformers modules."""

Shown = Callable[[str, Any], dict[str, Any]]
"""(field name, value) -> the keys and JSON values it shows as (SHOW_CONFIG, banner)."""


def parse_max_seq_len(value: str) -> int | None:
    """An int, or NONE for 'pad to the longest text of each batch'.

    How short is too short is the tokenizer's decision, which knows the model's
    special tokens (-no_special_token allows 1; a RoBERTa pair needs 4).
    """
    if value.strip().upper() == "NONE":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"-max_seq_len must be an integer or NONE, not {value!r}"
        ) from None


def add_flag(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str,
             **kwargs: Any) -> None:
    """Add a flag under the original single-dash spelling(s), double-dash accepted too."""
    spelled = [f"-{n}" for n in names] + [f"--{n}" for n in names]
    parser.add_argument(*spelled, **kwargs)


@dataclass(frozen=True)
class Flag:
    """One flag: its names (the first one, or `dest`, names its value) and argparse keywords."""

    names: tuple[str, ...]
    options: Mapping[str, Any]

    @property
    def dest(self) -> str:
        return str(self.options.get("dest", self.names[0]))

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
        add_flag(parser, *self.names, **self.options)


def flag(*names: str, **options: Any) -> Flag:
    """A flag, spelled and keyworded as for `argparse.add_argument` (without the dashes)."""
    return Flag(names, options)


def as_is(name: str, value: Any) -> dict[str, Any]:
    """The field under its own name; paths as strings and tuples as lists, for JSON."""
    if isinstance(value, Path):
        value = str(value)
    elif isinstance(value, tuple):
        value = list(value)
    return {name: value}


def _same_as_wire(name: str, value: Any) -> dict[str, Any]:
    """A sentinel for `Setting.banner`: show in the banner what SHOW_CONFIG shows."""
    raise AssertionError("never called")


_SAME_AS_WIRE: Shown = _same_as_wire


@dataclass(frozen=True)
class Setting:
    """How a field is set (its flags, or `read` from the parsed flags) and shown."""

    group: str = ""
    """The flags' heading in `-h` and the README: model, serving, devices."""
    flags: tuple[Flag, ...] = ()
    read: Callable[[argparse.Namespace], Any] | None = None
    """The field's value from the parsed flags; None: the one flag's value as is."""
    wire: Shown | None = as_is
    """What SHOW_CONFIG shows of it; None: nothing (not one of the original's flags)."""
    banner: Shown | None = _SAME_AS_WIRE
    """What the start banner shows of it; by default what SHOW_CONFIG does."""
    nested: type | None = None
    """A dataclass of settings of its own (ServerConfig.engine is an EngineOptions)."""

    def shown(self, name: str, value: Any, *, banner: bool) -> dict[str, Any]:
        show = self.wire if not banner or self.banner is _SAME_AS_WIRE else self.banner
        return show(name, value) if show is not None else {}


def setting(default: Any = dataclasses.MISSING, *,
            default_factory: Any = dataclasses.MISSING, **how: Any) -> Any:
    """A dataclass field with its `Setting` (the keywords of `Setting`) in its metadata."""
    metadata = {"setting": Setting(**how)}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def setting_of(item: dataclasses.Field[Any]) -> Setting | None:
    found = item.metadata.get("setting")
    return found if isinstance(found, Setting) else None
