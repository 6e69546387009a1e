"""The runner contract on OpenVINO's CPU plugin: the same fp32 graph, in bf16 or f32.

OpenVINO reads the ONNX graph the cache holds for onnxruntime (dynamic batch and
length as converted) and compiles it for this CPU. Every setting that changes what
runs or how fast is set explicitly rather than left to OpenVINO's defaults:

- INFERENCE_PRECISION_HINT: on a bf16-capable CPU the default is already bf16, so
  float32 must be asked for; on a CPU without bf16 the plugin runs f32 whatever is
  asked, so the precision that ran is read back from the compiled model's kernels;
- DYNAMIC_QUANTIZATION_GROUP_SIZE 0: otherwise activations may be quantized per group
  of 32, which makes a text's vector depend on its batch;
- INFERENCE_NUM_THREADS (the worker's share of the cores), NUM_STREAMS 1, LATENCY, and
  no CPU pinning: OpenVINO would otherwise size itself to the whole machine, and
  several workers would pin their threads to the same cores;
- CACHE_DIR: compiled blobs beside the converted graphs, so a second start (and every
  worker after the first) skips compilation.

Usage::

    runner = OpenVinoRunner(Path("graph.onnx"), threads=2, dtype="bfloat16",
                            cache_dir=Path("~/.cache/bert-serving/openvino"))
    vectors = runner.embed(batch)
    runner.precision   # 'bf16' or 'fp32': what the compiled model's matmuls run in
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .graph_contract import OUTPUT_NAME
from .padding import TokenBatch
from .runtime import feeds_for, runs_finite

__all__ = ["OPENVINO_HINTS", "OpenVinoRunner", "compiled_precision"]

OPENVINO_HINTS = {"float32": "f32", "bfloat16": "bf16"}
"""-dtype to OpenVINO's INFERENCE_PRECISION_HINT."""
_SHORT_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16", "i8": "int8", "u8": "int8"}
_MATMUL_LAYERS = ("FullyConnected", "MatMul")


def _compile_config(dtype: str, threads: int | None, cache_dir: Path) -> dict[str, Any]:
    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": OPENVINO_HINTS[dtype],
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False,
        "CACHE_DIR": str(cache_dir),
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def compiled_precision(compiled: Any) -> str:
    """What the weight matmuls of a compiled model run in: 'bf16', 'fp32', or both joined.

    Read from the runtime graph's kernels (each node's `runtimePrecision`), not from the
    hint asked for: on a CPU without bf16 the plugin runs f32 whatever the hint says.
    """
    found = set()
    for node in compiled.get_runtime_model().get_ops():
        info = node.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) in _MATMUL_LAYERS:
            ran = info["runtimePrecision"].astype(str)
            found.add(_SHORT_NAMES.get(ran, ran))
    return "+".join(sorted(found)) or "unknown"


class OpenVinoRunner:
    """One compiled model and one infer request over a prepared fp32 graph, on the CPU."""

    runtime = "openvino"

    def __init__(self, graph_path: Path, *, dtype: str, threads: int | None,
                 cache_dir: Path) -> None:
        import openvino as ov  # the optional extra: imported only when this runtime is chosen

        cache_dir.mkdir(parents=True, exist_ok=True)
        core = ov.Core()
        self.compiled = core.compile_model(str(graph_path), "CPU",
                                           _compile_config(dtype, threads, cache_dir))
        self.request = self.compiled.create_infer_request()
        # The graph's own inputs: DistilBERT's reads no token_type_ids.
        self.input_names = tuple(port.get_any_name() for port in self.compiled.inputs)
        self.precision = compiled_precision(self.compiled)

    def embed(self, batch: TokenBatch) -> np.ndarray:
        feeds = {name: np.ascontiguousarray(array)
                 for name, array in feeds_for(batch, self.input_names).items()}
        results = self.request.infer(feeds)
        # A copy: the request's output buffer is reused by its next inference.
        return np.array(results[OUTPUT_NAME], dtype=np.float32, copy=True)

    def health(self) -> bool:
        return runs_finite(self)
