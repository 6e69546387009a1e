"""Read a `pytorch_model.bin` state dict without torch, and without running its pickle.

torch.save writes a zip: `*/data.pkl` (a pickle whose tensors point at storages
by key) and `*/data/<key>` (raw little-endian bytes). A restricted unpickler
rebuilds the tensors as numpy arrays and refuses every other global, so a
hostile checkpoint cannot execute code.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError, UnsupportedModelError

__all__ = ["read_torch_state_dict"]

_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # widened to float32 after reading
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _Storage:
    array: np.ndarray
    bfloat16: bool


def _rebuild_tensor(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> np.ndarray:
    data = storage.array
    view = np.lib.stride_tricks.as_strided(
        data[offset:], shape=tuple(size), strides=[s * data.itemsize for s in stride]
    )
    array = np.array(view)  # own the memory, contiguous
    if storage.bfloat16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _rebuild_parameter(data: np.ndarray, *_: Any) -> np.ndarray:
    return data


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str, source: Path) -> None:
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsupportedModelError(
            f"{self._source} refers to {module}.{name}, which a plain BERT state dict does "
            "not need; refusing to unpickle it. Save the model as model.safetensors instead."
        )

    def persistent_load(self, pid: Any) -> _Storage:
        _, storage_type, key, _location, _numel = pid
        dtype = _STORAGE_DTYPES[storage_type.name]
        raw = self._archive.read(f"{self._prefix}/data/{key}")
        array: np.ndarray = np.frombuffer(raw, dtype=dtype)
        return _Storage(array, storage_type.name == "BFloat16Storage")


def read_torch_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a zip-format `torch.save` state dict, as numpy arrays."""
    if not zipfile.is_zipfile(path):
        raise UnsupportedModelError(
            f"{path} is not a zip-format torch checkpoint (torch >= 1.6 writes zip files; "
            "this one is older, truncated or not a checkpoint): re-save it with a recent "
            "torch, or as model.safetensors"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            pickle_name = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            prefix = pickle_name[: -len("/data.pkl")]
            with archive.open(pickle_name) as file:
                state = _StateDictUnpickler(file, archive, prefix, path).load()
    except (zipfile.BadZipFile, StopIteration, KeyError, EOFError, pickle.UnpicklingError) as e:
        raise ModelError(f"{path} is truncated or corrupt ({e!r}): re-download it") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
