"""Which runtime runs the graph, in which precision: `-dtype` and `-runtime`, decided once at start.

`-dtype auto` (the default) picks, for the workers' device:

- a GPU: float16 on onnxruntime (the fused fp16 graph, as before `-dtype` existed);
- a CPU: float32, on onnxruntime (on OpenVINO with `-runtime openvino`).

Not bfloat16, even where the CPU has AVX512_BF16 or AMX-BF16 and the `openvino` extra
is installed: `auto` may only pick what holds the accuracy we promise (worst row >=
0.999 cosine to fp32), and bf16 has not yet been shown to on BERT-base-size models. The
probe that motivated it measured 0.99992 on the MiniLM but 0.99828 on all-mpnet-base-v2
through OpenVINO's bf16 (our bf16-matmul emulation, scripts/bf16_emulation.py, gives
0.99998 there, so the loss is in what OpenVINO keeps in bf16 besides the matmuls), and no
bf16 CPU has run our tests. `-dtype bfloat16` asks for it explicitly; `auto` takes it
once a bf16 CPU shows >= 0.999 on both (issue 28).

An explicit `-dtype` the machine cannot honour is refused with one line saying why and
what to do, never served slower or in another precision than asked.

Usage::

    resolve_inference("auto", "auto", "cpu")   # Inference('onnxruntime', 'float32') on AVX2
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ConfigError
from .cpu_features import cpu_flags, describe_cpu_flags, has_bf16

__all__ = ["DTYPES", "GRAPH_PRECISIONS", "OPENVINO_EXTRA", "RUNTIMES", "Inference", "Running",
           "choose_inference", "openvino_installed", "resolve_inference"]

DTYPES = ("auto", "float32", "bfloat16", "float16", "int8")
RUNTIMES = ("auto", "onnxruntime", "openvino")
OPENVINO_EXTRA = "pip install 'bert-serving-onnx[server,openvino]'"
GRAPH_PRECISIONS = {"float32": "fp32", "bfloat16": "fp32", "float16": "fp16", "int8": "int8"}
"""The converted graph each dtype runs: bfloat16 is OpenVINO's choice at compile time, over
the same fp32 graph, so the graph cache holds one fp32 graph for both."""


@dataclass(frozen=True)
class Inference:
    """A resolved choice: `runtime` is onnxruntime or openvino, `dtype` one of DTYPES but auto."""

    runtime: str
    dtype: str

    @property
    def graph_precision(self) -> str:
        return GRAPH_PRECISIONS[self.dtype]


@dataclass(frozen=True)
class Running:
    """What a loaded runner reports it runs: `runtime`, and `precision` read back from it
    (fp32, bf16, fp16, int8), for the start line, SHOW_CONFIG and /info."""

    runtime: str = "onnxruntime"
    precision: str = "fp32"

    def __str__(self) -> str:
        return f"{self.runtime} {self.precision}"


def openvino_installed() -> bool:
    """The `openvino` extra is importable (found, not imported: that costs 0.3 s)."""
    return importlib.util.find_spec("openvino") is not None


def resolve_inference(dtype: str, runtime: str, device: str) -> Inference:
    """`choose_inference` for a device string (`cpu`, `cuda:N`) on this machine."""
    return choose_inference(dtype, runtime, on_gpu=device != "cpu", flags=cpu_flags(),
                            openvino=openvino_installed())


def choose_inference(dtype: str, runtime: str, *, on_gpu: bool, flags: Iterable[str],
                     openvino: bool) -> Inference:
    """`-dtype` and `-runtime` as given, resolved for this device; ConfigError if refused."""
    if dtype not in DTYPES or runtime not in RUNTIMES:
        raise ConfigError(f"-dtype {dtype} -runtime {runtime}: -dtype is one of "
                          f"{', '.join(DTYPES)}; -runtime one of {', '.join(RUNTIMES)}")
    if on_gpu:
        return _on_gpu(dtype, runtime)
    flags = frozenset(flags)
    if runtime == "openvino" and not openvino:
        raise ConfigError(f"-runtime openvino: OpenVINO is not installed here; {OPENVINO_EXTRA}")
    if dtype == "auto":
        dtype = "float32"  # not bfloat16 yet: see the module's docstring
    if dtype == "float16":
        raise ConfigError("-dtype float16 is for GPUs; on a CPU use -dtype float32, or "
                          "bfloat16 where the CPU has AVX512_BF16 or AMX")
    if dtype == "int8":
        return _int8(runtime)
    if dtype == "bfloat16":
        return _bfloat16(runtime, flags, openvino)
    return Inference("openvino" if runtime == "openvino" else "onnxruntime", "float32")


def _on_gpu(dtype: str, runtime: str) -> Inference:
    if runtime == "openvino":
        raise ConfigError("-runtime openvino runs on the CPU here: add -cpu, or drop -runtime")
    if dtype not in ("auto", "float16"):
        raise ConfigError(f"-dtype {dtype} is a CPU precision: on a GPU the graph runs in "
                          f"float16; add -cpu to run {dtype} on the CPU, or drop -dtype")
    return Inference("onnxruntime", "float16")


def _int8(runtime: str) -> Inference:
    if runtime == "openvino":
        raise ConfigError("-dtype int8 (-int8) is onnxruntime's MatMulNBits graph: drop "
                          "-runtime openvino, or use -dtype bfloat16 or float32 with it")
    return Inference("onnxruntime", "int8")


def _bfloat16(runtime: str, flags: frozenset[str], openvino: bool) -> Inference:
    if not has_bf16(flags):
        raise ConfigError(
            f"-dtype bfloat16 needs a CPU with AVX512_BF16 or AMX-BF16, and this one has "
            f"neither ({describe_cpu_flags(flags)}): bf16 would be emulated, slower than "
            "float32; start with -dtype float32 (or auto), or on a CPU that has them")
    if runtime == "onnxruntime":
        raise ConfigError("-dtype bfloat16 runs on OpenVINO (onnxruntime's CPU kernels have "
                          "no bf16 matmuls): drop -runtime onnxruntime")
    if not openvino:
        raise ConfigError(f"-dtype bfloat16 runs on OpenVINO, which is not installed here: "
                          f"{OPENVINO_EXTRA}")
    return Inference("openvino", "bfloat16")
