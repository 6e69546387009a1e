"""Read Hugging Face weight files: safetensors (single or sharded) or pytorch_model.bin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ModelError, ModelNotFoundError
from .torch_pickle import read_torch_state_dict

__all__ = ["HF_WEIGHT_FILES", "find_hf_weight_files", "read_hf_weights"]

# In order of preference; the index files name shards.
HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def find_hf_weight_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face folder, shards resolved; [] if there are none."""
    for name in HF_WEIGHT_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if not name.endswith(".index.json"):
            return [path]
        try:
            weight_map = json.loads(path.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError) as error:
            raise ModelError(f"{path} is not a valid shard index ({error!r})") from None
        return [folder / shard for shard in sorted(set(weight_map.values()))]
    return []


def _read_one(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ModelNotFoundError(f"weight shard {path} is missing: re-download the model")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as error:
            raise ModelError(
                f"{path} is truncated or corrupt ({error}): re-download it"
            ) from None
    return read_torch_state_dict(path)


def read_hf_weights(files: list[Path]) -> dict[str, np.ndarray]:
    """All tensors of the given weight files, merged."""
    tensors: dict[str, np.ndarray] = {}
    for path in files:
        tensors.update(_read_one(path))
    return tensors
