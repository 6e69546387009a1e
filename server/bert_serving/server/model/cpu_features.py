"""The CPU's instruction-set flags, read from /proc/cpuinfo: what `-dtype bfloat16` needs.

bfloat16 pays only where the CPU multiplies bf16 natively (AVX512_BF16's dot products,
or AMX's tiles); elsewhere OpenVINO would emulate it or fall back to f32. The benchmark
scripts print the same flags in their headers, so a figure always names its CPU.

Usage::

    flags = cpu_flags()
    has_bf16(flags), describe_cpu_flags(flags)   # False, 'AVX2 yes, AVX-512 no, ...'
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["BF16_FLAGS", "SHOWN_FLAGS", "cpu_flags", "cpu_model_name", "describe_cpu_flags",
           "has_bf16"]

CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""Either gives native bf16 arithmetic (Zen 4+, Cooper Lake; Sapphire Rapids+ for AMX)."""
SHOWN_FLAGS: dict[str, tuple[str, ...]] = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "AVX512_BF16": ("avx512_bf16",),
    "AMX": ("amx_bf16", "amx_int8", "amx_tile"),
}
"""The benchmark header's names, each with the /proc/cpuinfo flags that count as it."""


def _field(name: str, cpuinfo: Path) -> str:
    """The first `name : value` line's value; '' where the file is absent (not Linux)."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() == name:
                    return value.strip()
    except OSError:
        return ""
    return ""


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The first CPU's flags (all cores of a host share them); empty where unknown."""
    return frozenset(_field("flags", cpuinfo).split())


def cpu_model_name(cpuinfo: Path = CPUINFO) -> str:
    return _field("model name", cpuinfo) or "unknown CPU"


def has_bf16(flags: Iterable[str]) -> bool:
    """Native bf16 arithmetic: AVX512_BF16 or AMX-BF16."""
    return not set(BF16_FLAGS).isdisjoint(flags)


def describe_cpu_flags(flags: Iterable[str]) -> str:
    """`AVX2 yes, AVX-512 no, VNNI no, AVX512_BF16 no, AMX no`: one line for logs and headers."""
    present = set(flags)
    return ", ".join(f"{name} {'yes' if present.intersection(names) else 'no'}"
                     for name, names in SHOWN_FLAGS.items())
