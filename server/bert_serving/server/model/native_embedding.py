"""The model's own embedding, as a sentence-transformers folder describes it.

A sentence-transformers folder says how its model was trained to be used:
`modules.json` lists the modules (Transformer, then Pooling, then maybe
Normalize), `1_Pooling/config.json` names the pooling (CLS for bge, mean for e5
and MiniLM, max, last token), and `config_sentence_transformers.json` holds the
prompts (`query: ` / `passage: ` for e5). `-pooling_strategy MODEL` serves that:
the last encoder layer, the folder's pooling, and L2 normalization when the
folder has a Normalize module; this module reads the folder and says which
`PoolingSpec` that is. Nothing here touches the model itself.

Both layouts sentence-transformers writes are read: before 6.x, module types
``sentence_transformers.models.Pooling`` and one ``pooling_mode_*`` switch per
pooling; from 6.x, ``sentence_transformers.<package>.modules.pooling.Pooling`` and
``"pooling_mode": "mean"`` (a module is known by its class name, in their package).

Folders whose modules do more than that (a Dense projection, weighted or
sqrt-length means, pooling that leaves the prompt out) are refused with the
module named, rather than served with vectors the model was not trained for.

Usage::

    native = read_native_embedding(Path("./bge-small-en-v1.5"))   # None: not an ST folder
    spec = native.pooling_spec()   # PoolingSpec(layers=(-1,), strategy=FIRST_TOKEN)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .pooling import PoolingSpec, PoolingStrategy

__all__ = ["NativeEmbedding", "l2_normalize", "model_native_embedding", "read_native_embedding"]

_TRANSFORMER, _POOLING, _NORMALIZE = "Transformer", "Pooling", "Normalize"
"""Module class names (`_module_class`), whatever package path the version writes."""

# 1_Pooling/config.json's switches, and the strategy each one is here.
_POOLING_MODES = {
    "pooling_mode_cls_token": PoolingStrategy.FIRST_TOKEN,
    "pooling_mode_mean_tokens": PoolingStrategy.REDUCE_MEAN,
    "pooling_mode_max_tokens": PoolingStrategy.REDUCE_MAX,
    "pooling_mode_lasttoken": PoolingStrategy.LAST_TOKEN,
}
_UNSERVED_MODES = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens")
# sentence-transformers 6's `"pooling_mode"` values, as the switch each one replaces.
_MODE_SWITCHES = {
    "cls": "pooling_mode_cls_token", "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens", "lasttoken": "pooling_mode_lasttoken",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
}
# TEI's names for the poolings (what /info reports).
POOLING_NAMES = {
    PoolingStrategy.FIRST_TOKEN: "cls",
    PoolingStrategy.REDUCE_MEAN: "mean",
    PoolingStrategy.REDUCE_MAX: "max",
    PoolingStrategy.LAST_TOKEN: "last_token",
}


@dataclass(frozen=True)
class NativeEmbedding:
    """How the folder's model embeds: its pooling, whether it normalizes, its prompts."""

    strategy: PoolingStrategy
    normalize: bool
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    max_seq_length: int | None = None

    def pooling_spec(self) -> PoolingSpec:
        """The graph's pooling for this embedding: the last layer, nothing masked."""
        return PoolingSpec(layers=(-1,), strategy=self.strategy, mask_cls_sep=False)

    def is_pooled_by(self, pooling: PoolingSpec, normalize: bool) -> bool:
        """Whether a graph of that pooling and normalization computes this embedding
        already (-pooling_strategy MODEL, or flags that amount to it)."""
        return pooling == self.pooling_spec() and normalize == self.normalize

    @property
    def pooling_name(self) -> str:
        """TEI's name for the pooling: cls, mean, max or last_token."""
        return POOLING_NAMES[self.strategy]


def read_native_embedding(folder: Path) -> NativeEmbedding | None:
    """The folder's own embedding; None when it has no `modules.json` (not a ST folder).

    Raises ConfigError when the modules ask for something this server does not compute.
    """
    modules_path = folder / "modules.json"
    if not modules_path.is_file():
        return None
    modules = _read_json(modules_path)
    if not isinstance(modules, list):
        raise ConfigError(f"{modules_path} is not a list of modules")
    types = [_module_class(module) for module in modules]
    _check_modules(modules_path, types)
    pooling = modules[types.index(_POOLING)]
    settings = _switches(_read_json(folder / str(pooling.get("path", "1_Pooling"))
                                    / "config.json"))
    prompts_config = _optional_json(folder / "config_sentence_transformers.json")
    bert_config = _optional_json(folder / "sentence_bert_config.json")
    prompts = prompts_config.get("prompts") or {}
    if not isinstance(prompts, dict):
        raise ConfigError(f"{folder / 'config_sentence_transformers.json'}: its prompts are "
                          "not a mapping of names to prompts")
    max_len = bert_config.get("max_seq_length")
    return NativeEmbedding(
        strategy=_strategy(folder, settings),
        normalize=_NORMALIZE in types,
        prompts={str(k): str(v) for k, v in prompts.items()},
        default_prompt_name=str(prompts_config.get("default_prompt_name") or "") or None,
        max_seq_length=int(max_len) if isinstance(max_len, int) else None,
    )


def model_native_embedding(model_dir: Path) -> NativeEmbedding:
    """`read_native_embedding` for -pooling_strategy MODEL: a folder without modules is an error.

    For an exported `.onnx` file, its folder is read.
    """
    folder = model_dir.parent if model_dir.suffix == ".onnx" else model_dir
    native = read_native_embedding(folder)
    if native is None:
        raise ConfigError(
            f"-pooling_strategy MODEL needs a sentence-transformers folder (modules.json and "
            f"1_Pooling/config.json) but {folder} has no modules.json: pick a strategy "
            "instead, e.g. -pooling_strategy REDUCE_MEAN -pooling_layer -1"
        )
    return native


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Each row (the last axis) scaled to unit length; all-zero rows stay zero (as torch's)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(vectors.dtype, copy=False)


def _module_class(module: Any) -> str:
    """`Pooling` for ``sentence_transformers.models.Pooling`` (5.x) and for
    ``sentence_transformers.sentence_transformer.modules.pooling.Pooling`` (6.x); a class
    from another package keeps its whole name, so it is never taken for one of these."""
    kind = str(module.get("type", "")) if isinstance(module, dict) else ""
    package, _, name = kind.rpartition(".")
    return name if package.split(".")[0] == "sentence_transformers" else kind


def _switches(settings: Any) -> dict[str, Any]:
    """1_Pooling/config.json as 5.x's switches: 6.x's `"pooling_mode"` (a name or a list of
    names) turns on the switch each name replaced."""
    if not isinstance(settings, dict):
        return {}
    modes = settings.get("pooling_mode")
    if modes is None:
        return settings
    names = [modes] if isinstance(modes, str) else list(modes) if isinstance(modes, list) else []
    switches = {key: value for key, value in settings.items() if key != "pooling_mode"}
    for name in names:
        switches[_MODE_SWITCHES.get(str(name), f"pooling_mode {name}")] = True
    return switches


def _check_modules(path: Path, types: list[str]) -> None:
    if _POOLING not in types:
        raise ConfigError(f"{path} has no Pooling module: the model's own pooling is unknown, "
                          "pick a -pooling_strategy instead of MODEL")
    served = (_TRANSFORMER, _POOLING, _NORMALIZE)
    others = [t for t in types if t not in served]
    if others or types[:2] != [_TRANSFORMER, _POOLING]:
        found = ", ".join(t.rsplit(".", 1)[-1] for t in types)
        raise ConfigError(
            f"{path} lists the modules {found}: -pooling_strategy MODEL serves Transformer, "
            "Pooling and an optional Normalize, in that order; pick a -pooling_strategy instead"
        )


def _strategy(folder: Path, settings: dict[str, Any]) -> PoolingStrategy:
    unserved = [mode for mode in _UNSERVED_MODES if settings.get(mode)]
    unserved += [key for key in settings if key.startswith("pooling_mode ")]  # unknown names
    if settings.get("include_prompt") is False:
        unserved.append("include_prompt false")
    chosen = [strategy for mode, strategy in _POOLING_MODES.items() if settings.get(mode)]
    if unserved or len(chosen) != 1:
        found = ", ".join(unserved + [m for m in _POOLING_MODES if settings.get(m)]) or "none"
        raise ConfigError(
            f"{folder}'s pooling config sets {found}: -pooling_strategy MODEL serves exactly "
            "one of cls, mean, max or last token pooling"
        )
    return chosen[0]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: the sentence-transformers folder is incomplete") \
            from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path} cannot be read: {error}") from None


def _optional_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    loaded = _read_json(path)
    return loaded if isinstance(loaded, dict) else {}
