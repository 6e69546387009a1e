"""Read TensorFlow V2 checkpoints (tensor bundles) without TensorFlow.

Google's BERT releases ship `bert_model.ckpt.index` + `bert_model.ckpt.data-00000-of-00001`.
Installing TensorFlow (~600 MB, its own protobuf pin) just to read ~200 float arrays is
not worth it, so this module parses the format directly:

- `PREFIX.index` is a LevelDB-style SSTable. Its 48-byte footer points at an index block,
  whose entries point at data blocks; block entries map a key to a value. Key ``""``
  holds a `BundleHeaderProto`; every other key is a tensor name whose value is a
  `BundleEntryProto` (dtype, shape, shard, offset, size). TensorFlow's `BundleWriter`
  always writes these blocks uncompressed (`table::kNoCompression`), so snappy is not
  needed.
- `PREFIX.data-0000S-of-0000N` holds the raw little-endian tensor bytes.

The protobufs are decoded by a small wire-format parser: no protobuf dependency.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError, ModelNotFoundError, UnsupportedModelError

__all__ = ["list_tensors", "read_tensor_bundle"]

_FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes, then an 8-byte magic
_TABLE_MAGIC = 0xDB4775248B80FB57
_BLOCK_TRAILER_SIZE = 5  # compression type byte + masked crc32c
_NO_COMPRESSION = 0
_CRC_MASK_DELTA = 0xA282EAD8

# TensorFlow DataType enum -> numpy dtype of the stored bytes (little-endian).
# bfloat16 (14) is stored as the upper 16 bits of a float32 and widened on read.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    9: np.dtype("<i8"),  # DT_INT64
    14: np.dtype("<u2"),  # DT_BFLOAT16
    19: np.dtype("<f2"),  # DT_HALF
}
_DT_BFLOAT16 = 14
_DTYPE_NAMES: dict[int, str] = {
    1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8",
    7: "string", 8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 19: "float16",
}  # fmt: skip
_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")


class _CorruptError(ValueError):
    """Internal: the bytes do not parse; turned into a `ModelError` naming the file."""


@dataclass(frozen=True)
class _Entry:
    """The fields of a `BundleEntryProto` that locating a tensor needs."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    sliced: bool


# --- protobuf wire format ---------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at `pos`; returns (value, next position)."""
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _CorruptError("unterminated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """Yield (field number, value) of a serialized message; varints as int, bytes as bytes."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wire = tag >> 3, tag & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise _CorruptError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise _CorruptError("protobuf field runs past its message")
        yield field, value


def _as_int(value: int | bytes) -> int:
    if isinstance(value, bytes):
        raise _CorruptError("expected a varint field, found bytes")
    return value


def _as_bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise _CorruptError("expected a length-delimited field, found a number")
    return value


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    """TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 }."""
    dims: list[int] = []
    for field, value in _proto_fields(buf):
        if field == 2:
            size = 0
            for dim_field, dim_value in _proto_fields(_as_bytes(value)):
                if dim_field == 1:
                    size = _as_int(dim_value)
            dims.append(size)
    return tuple(dims)


def _parse_entry(buf: bytes) -> _Entry:
    """BundleEntryProto: dtype=1 shape=2 shard_id=3 offset=4 size=5 crc32c=6 slices=7."""
    ints = {1: 0, 3: 0, 4: 0, 5: 0}
    shape: tuple[int, ...] = ()
    sliced = False
    for field, value in _proto_fields(buf):
        if field in ints:
            ints[field] = _as_int(value)
        elif field == 2:
            shape = _parse_shape(_as_bytes(value))
        elif field == 7:
            sliced = True
    return _Entry(ints[1], shape, ints[3], ints[4], ints[5], sliced)


def _parse_header(buf: bytes) -> tuple[int, int]:
    """BundleHeaderProto: num_shards=1, endianness=2 (0 little, 1 big); returns both."""
    num_shards = endianness = 0
    for field, value in _proto_fields(buf):
        if field == 1:
            num_shards = _as_int(value)
        elif field == 2:
            endianness = _as_int(value)
    return num_shards, endianness


# --- SSTable ------------------------------------------------------------------------


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """LevelDB's masked CRC-32C; pure Python, which is fine for the few-KB index file."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    """A BlockHandle is two varints (offset, size); returns (offset, size, next position)."""
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _read_block(table: bytes, offset: int, size: int) -> bytes:
    """Slice out one block and check its trailer (compression type, crc)."""
    end = offset + size
    if end + _BLOCK_TRAILER_SIZE > len(table):
        raise _CorruptError(f"block at {offset} runs past the end of the file")
    block, compression = table[offset:end], table[end]
    (stored_crc,) = struct.unpack_from("<I", table, end + 1)
    if _masked_crc32c(table[offset : end + 1]) != stored_crc:
        raise _CorruptError(f"checksum mismatch in block at {offset}")
    if compression != _NO_COMPRESSION:
        raise _CorruptError(
            f"block at {offset} has compression type {compression}; TensorFlow writes "
            "tensor-bundle indexes uncompressed"
        )
    return block


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield (key, value) of a block: prefix-compressed keys, restart array at the end."""
    if len(block) < 4:
        raise _CorruptError("block too short for its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise _CorruptError("restart array larger than its block")
    key, pos = b"", 0
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise _CorruptError("block entry runs past its block")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_len]
        pos += value_len


def _table_entries(table: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Yield every (key, value) of an SSTable in key order: index block -> data blocks."""
    if len(table) < _FOOTER_SIZE:
        raise _CorruptError("file shorter than the 48-byte table footer")
    footer = table[-_FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != _TABLE_MAGIC:
        raise _CorruptError("bad table magic number (not a TensorFlow V2 checkpoint index)")
    _, _, pos = _block_handle(footer, 0)  # metaindex: empty in tensor bundles
    index_offset, index_size, _ = _block_handle(footer, pos)
    for _, handle in _block_entries(_read_block(table, index_offset, index_size)):
        offset, size, _ = _block_handle(handle, 0)
        yield from _block_entries(_read_block(table, offset, size))


# --- bundle -------------------------------------------------------------------------


def _normalize_prefix(prefix: Path) -> Path:
    """Accept `model.ckpt`, `model.ckpt.index` or a data shard path for the same checkpoint."""
    name = _DATA_SUFFIX.sub("", prefix.name)
    name = name.removesuffix(".index")
    return prefix.with_name(name)


def _index_path(prefix: Path) -> Path:
    index = prefix.with_name(prefix.name + ".index")
    if index.is_file():
        return index
    found = sorted(p.name for p in prefix.parent.glob("*.index")) if prefix.parent.is_dir() else []
    raise ModelNotFoundError(
        f"TensorFlow checkpoint index {index} not found: check -ckpt_name (the checkpoint "
        f"prefix, e.g. bert_model.ckpt); .index files in {prefix.parent}: "
        f"{', '.join(found) or 'none'}"
    )


def _read_index(index: Path) -> tuple[int, dict[str, _Entry]]:
    """Parse the index file into (num_shards, tensor name -> entry)."""
    num_shards: int | None = None
    endianness = 0
    entries: dict[str, _Entry] = {}
    try:
        for key, value in _table_entries(index.read_bytes()):
            if key == b"":
                num_shards, endianness = _parse_header(value)
            elif not key.startswith(b"\x00"):  # \x00-prefixed keys: slices of partitioned vars
                entries[key.decode("utf-8")] = _parse_entry(value)
    except (_CorruptError, UnicodeDecodeError) as exc:
        raise ModelError(f"{index} is truncated or corrupt ({exc}): re-download it") from None
    if num_shards is None:
        raise ModelError(f"{index} has no bundle header: truncated or corrupt, re-download it")
    if endianness != 0:
        raise UnsupportedModelError(
            f"{index} was written on a big-endian machine; re-save it on a little-endian one"
        )
    return num_shards, entries


def _shard_path(prefix: Path, shard: int, num_shards: int) -> Path:
    path = prefix.with_name(f"{prefix.name}.data-{shard:05d}-of-{num_shards:05d}")
    if not path.is_file():
        raise ModelNotFoundError(
            f"TensorFlow checkpoint data file {path} not found: it must sit next to "
            f"{prefix.name}.index (copy every {prefix.name}.data-* file of the checkpoint)"
        )
    return path


def _tensor_from(buffer: mmap.mmap | bytes, entry: _Entry, path: Path) -> np.ndarray:
    """Copy one tensor out of a shard, so nothing keeps the file mapped afterwards."""
    dtype = _DTYPES[entry.dtype]
    count = int(np.prod(entry.shape, dtype=np.int64))
    if entry.offset + entry.size > len(buffer):
        raise ModelError(
            f"{path} is truncated or corrupt (a tensor ends at byte {entry.offset + entry.size}"
            f", the file has {len(buffer)}): re-download it"
        )
    if entry.size != count * dtype.itemsize:
        raise ModelError(
            f"{path} is corrupt (a tensor of shape {entry.shape} is stored in "
            f"{entry.size} bytes): re-download it"
        )
    if count == 0:
        native = np.float32 if entry.dtype == _DT_BFLOAT16 else dtype.newbyteorder("=")
        return np.zeros(entry.shape, dtype=native)
    array = np.frombuffer(buffer, dtype=dtype, count=count, offset=entry.offset)
    if entry.dtype == _DT_BFLOAT16:  # the high half of a float32: widen exactly
        return (array.astype(np.uint32) << 16).view(np.float32).reshape(entry.shape)
    return array.astype(dtype.newbyteorder("="), copy=True).reshape(entry.shape)


def _read_shard(path: Path, entries: dict[str, _Entry]) -> dict[str, np.ndarray]:
    """Map one data file once and copy out the given tensors."""
    with path.open("rb") as file:
        if path.stat().st_size == 0:  # mmap refuses empty files
            return {name: _tensor_from(b"", entry, path) for name, entry in entries.items()}
        with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            return {name: _tensor_from(buffer, entry, path) for name, entry in entries.items()}


def read_tensor_bundle(
    prefix: Path, include: Callable[[str], bool] | None = None
) -> dict[str, np.ndarray]:
    """Read the numeric tensors of a V2 checkpoint, e.g. `.../bert_model.ckpt`.

    float32/float64/float16/int32/int64 come back as stored (native byte order);
    bfloat16 comes back as float32. Strings, other dtypes and partitioned (sliced)
    variables are skipped: BERT has none that matter. `include`, if given, picks tensor
    names to read, so that e.g. optimizer slots (`.../adam_m`) are never copied.
    """
    prefix = _normalize_prefix(Path(prefix))
    index = _index_path(prefix)
    num_shards, entries = _read_index(index)
    by_shard: dict[int, dict[str, _Entry]] = {}
    for name, entry in entries.items():
        if entry.dtype not in _DTYPES or entry.sliced or (include and not include(name)):
            continue
        if entry.shard_id >= num_shards:
            raise ModelError(
                f"{index} is corrupt (tensor {name!r} in shard {entry.shard_id} of "
                f"{num_shards}): re-download it"
            )
        by_shard.setdefault(entry.shard_id, {})[name] = entry
    tensors: dict[str, np.ndarray] = {}
    for shard, shard_entries in sorted(by_shard.items()):
        tensors.update(_read_shard(_shard_path(prefix, shard, num_shards), shard_entries))
    return tensors


def list_tensors(prefix: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Name -> (dtype name, shape) of every tensor in the index, reading no tensor data.

    Lists all entries, strings and unsupported dtypes included, to help explain a
    checkpoint that does not load.
    """
    prefix = _normalize_prefix(Path(prefix))
    _, entries = _read_index(_index_path(prefix))
    return {
        name: (_DTYPE_NAMES.get(entry.dtype, f"dtype{entry.dtype}"), entry.shape)
        for name, entry in entries.items()
    }
