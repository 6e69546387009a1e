"""Writing a graph to disk, whatever its size: one file, or a file and its weights beside it.

A protobuf message cannot pass 2 GiB, so a graph whose weights come near that (a
fp32 Qwen3-Embedding-0.6B holds 2.4 GB) cannot be one `.onnx` file. ONNX's answer
is external data: the `.onnx` keeps the graph and names a data file in the same
folder that holds the tensors. onnxruntime and OpenVINO read it by that name,
relative to the `.onnx`, so the two files must travel together and the name
recorded inside must be the name on disk.

Graphs below `EXTERNAL_DATA_ABOVE` stay one file, as users of small models expect
of an export.

Usage::

    save_graph(model, tmp_path, data_name="abc.onnx.data")  # written as it will be named
    copy_graph(cached_path, Path("model.onnx"))              # model.onnx + model.onnx.data
"""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
from onnx.external_data_helper import uses_external_data

__all__ = ["EXTERNAL_DATA_ABOVE", "copy_graph", "data_file_name", "external_data_files",
           "save_graph", "tensor_bytes"]

EXTERNAL_DATA_ABOVE = 1 << 30
"""Tensor bytes above which a graph's weights go to a data file. Well under protobuf's
2 GiB, since the graph's other fields and the converters' copies (fp16, int8) add to it."""


def data_file_name(graph_name: str) -> str:
    """The data file's name for a graph saved as `graph_name`: `model.onnx.data`."""
    return f"{graph_name}.data"


def tensor_bytes(model: onnx.ModelProto) -> int:
    """The bytes the graph's initializers hold in memory (raw or typed fields)."""
    total = 0
    for tensor in model.graph.initializer:
        if tensor.HasField("raw_data"):
            total += len(tensor.raw_data)
        else:
            total += tensor.ByteSize()
    return total


def save_graph(model: onnx.ModelProto, path: Path, *, data_name: str | None = None) -> None:
    """Write `model` at `path`; past EXTERNAL_DATA_ABOVE its weights go to `data_name`.

    `data_name` is the data file's name in `path`'s folder and the name recorded in the
    graph: pass the name the graph's final file will pair with when `path` is a temporary
    to be renamed (the graph cache does). The default pairs with `path` itself. A stale
    data file of that name is replaced, never appended to. Saving with external data
    empties the tensors of `model` in memory: do not use `model` afterwards.
    """
    if tensor_bytes(model) <= EXTERNAL_DATA_ABOVE:
        onnx.save_model(model, str(path))
        return
    name = data_name or data_file_name(path.name)
    (path.parent / name).unlink(missing_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=name, size_threshold=1024)
    # onnx creates the data file owner-only (0600); the graph beside it has the umask's
    # mode. An image that exports as root and serves as another user needs both readable.
    (path.parent / name).chmod(path.stat().st_mode & 0o777)


def external_data_files(path: Path) -> list[Path]:
    """The data files the graph at `path` reads its weights from (none for one-file graphs)."""
    model = onnx.load(str(path), load_external_data=False)
    names = {entry.value for tensor in _tensors(model) if uses_external_data(tensor)
             for entry in tensor.external_data if entry.key == "location"}
    return [path.parent / name for name in sorted(names)]


def copy_graph(source: Path, target: Path) -> None:
    """Copy a graph and its data file; the copy's data file is named after `target`.

    The location recorded in the graph is rewritten to the new name, so `model.onnx`
    reads `model.onnx.data` and not the cache's hashed name.
    """
    data_files = external_data_files(source)
    if not data_files:
        shutil.copyfile(source, target)
        return
    if len(data_files) > 1:  # we write one; a user's graph with several is copied as is
        for data in data_files:
            shutil.copyfile(data, target.parent / data.name)
        shutil.copyfile(source, target)
        return
    name = data_file_name(target.name)
    shutil.copyfile(data_files[0], target.parent / name)  # copyfile: the umask's mode
    model = onnx.load(str(source), load_external_data=False)
    for tensor in _tensors(model):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = name
    onnx.save_model(model, str(target))


def _tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """The initializers: where save_graph (and exporters' defaults) put external data."""
    return list(model.graph.initializer)
