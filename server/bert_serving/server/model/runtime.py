"""The model runner contract and its onnxruntime implementation.

A runner turns one `TokenBatch` into one float32 array; nothing else. Workers
own one runner each. Device strings are `cpu` or `cuda:N`. OpenVINO's runner
(`openvino_runner`, the optional extra) keeps the same contract.

Usage::

    runner = OnnxRunner(Path("graph.onnx"), device="cpu", intra_op_threads=2)
    vectors = runner.embed(batch)
    runner.runtime, runner.precision   # 'onnxruntime', 'fp32': what runs, read back
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..errors import ConfigError
from .graph_contract import OUTPUT_NAME
from .padding import TokenBatch

if TYPE_CHECKING:
    import onnxruntime

__all__ = ["OnnxRunner", "Runner", "disabled_optimizers", "feeds_for", "parse_device",
           "preload_cuda_libraries", "runs_finite", "select_providers", "session_options",
           "usable_gpu_count"]

log = logging.getLogger(__name__)

CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"

CPU_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)
"""onnxruntime's own fusions that slow the CPU down. On the int8 graph, fusing the
residual Add into LayerNorm gave a kernel ~2.5x slower than the pair it replaced:
disabled, the int8 forward pass was 1.12x faster (median of 6 interleaved rounds,
2-core AVX-512 VNNI). It fires on dynamically quantized graphs (our int8 before
MatMulNBits, optimum's int8 exports a user may serve), not on our fp32 or MatMulNBits
int8 graphs; GPU graphs keep the fused nodes the offline optimizer put there."""


class Runner(Protocol):
    """What an engine needs of a runtime: vectors for a batch, a health probe, and what ran.

    `runtime` names the library; `precision` is what the loaded model computes in, read
    back from it (fp32, bf16, fp16, int8), so logs and /info never repeat a mere request.
    """

    runtime: str
    precision: str

    def embed(self, batch: TokenBatch) -> np.ndarray: ...

    def health(self) -> bool: ...


def feeds_for(batch: TokenBatch, input_names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The batch's arrays the graph reads, by input name."""
    arrays = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask,
              "token_type_ids": batch.token_type_ids}
    return {name: arrays[name] for name in input_names}


def runs_finite(runner: Runner) -> bool:
    """Run a one-token batch; True when the runner answers with finite numbers."""
    ids = np.array([[0]], dtype=np.int64)
    probe = TokenBatch(ids, np.ones_like(ids), np.zeros_like(ids), None)
    return bool(np.isfinite(runner.embed(probe)).all())


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" or "cuda"
    index: int = 0

    def __str__(self) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{self.index}"


def parse_device(text: str) -> Device:
    """`cpu`, `cuda`, `cuda:N` or a bare GPU index `N` (as -device_map gives them)."""
    text = text.strip().lower()
    if text == "cpu":
        return Device("cpu")
    if text == "cuda":
        return Device("cuda", 0)
    index = text.removeprefix("cuda:").removeprefix("gpu:")
    if not index.isdigit():
        raise ConfigError(f"device {text!r} is not 'cpu', 'cuda' or 'cuda:N'")
    return Device("cuda", int(index))


def usable_gpu_count() -> int:
    """CUDA GPUs onnxruntime here can run on: 0 without the GPU build, its libraries or a driver.

    The driver is asked first, so a host without a GPU never reaches onnxruntime's CUDA
    loading and its "Failed to load libcublasLt" lines. The count respects
    CUDA_VISIBLE_DEVICES, so ids 0..count-1 are what the CUDA provider's `device_id` accepts.
    """
    import onnxruntime as ort

    if CUDA_PROVIDER not in ort.get_available_providers():
        return 0
    count = _cuda_device_count()
    if count and not preload_cuda_libraries():
        return 0
    return count


def preload_cuda_libraries() -> bool:
    """Load CUDA and cuDNN from the `gpu` extra's NVIDIA pip packages; False if any is missing.

    Each process that opens a CUDA session needs it, spawned workers included: without it
    the CUDA provider looks for the libraries on the system path only. onnxruntime prints
    what it could not load; that goes to one warning line here instead of stdout.
    """
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return True
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            preload()
    except Exception as error:  # an unusable install: report, fall back
        printed.write(f"Failed to load CUDA libraries: {error}\n")
    failures = [line for line in printed.getvalue().splitlines() if "Failed to load" in line]
    if failures:
        log.warning("CUDA libraries missing (%s): install the gpu extra, which brings them "
                    "(pip install '.[gpu]')", "; ".join(failures)[:300])
    return not failures


def _cuda_device_count() -> int:
    import ctypes

    try:
        cuda = ctypes.CDLL("libcuda.so.1")  # the driver API: no toolkit needed
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def select_providers(device: Device) -> list[str | tuple[str, dict[str, object]]]:
    """CPU alone under `cpu` (no CUDA noise in the logs); CUDA with CPU fallback otherwise."""
    if device.kind == "cpu":
        return [CPU_PROVIDER]
    return [(CUDA_PROVIDER, {"device_id": device.index}), CPU_PROVIDER]


def session_options(intra_op_threads: int | None = None) -> onnxruntime.SessionOptions:
    """Every optimization onnxruntime has, quiet logs, and the thread count asked for."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    options.log_severity_level = 3
    return options


def disabled_optimizers(device: Device) -> list[str]:
    """The session-time fusions to leave out on this device (see CPU_DISABLED_OPTIMIZERS)."""
    return list(CPU_DISABLED_OPTIMIZERS) if device.kind == "cpu" else []


class OnnxRunner:
    """One onnxruntime session over a prepared graph, on one device."""

    runtime = "onnxruntime"

    def __init__(
        self,
        graph_path: Path,
        *,
        device: Device | str = "cpu",
        intra_op_threads: int | None = None,
        use_io_binding: bool | None = None,
    ) -> None:
        import onnxruntime as ort

        self.device = parse_device(device) if isinstance(device, str) else device
        if self.device.kind == "cuda":
            preload_cuda_libraries()
        self.session = ort.InferenceSession(
            str(graph_path),
            session_options(intra_op_threads),
            providers=select_providers(self.device),
            disabled_optimizers=disabled_optimizers(self.device),
        )
        self.providers = self.session.get_providers()
        # ORT's fusions drop inputs a graph never reads (DistilBERT's token_type_ids).
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        # IOBinding saves a host copy on CUDA; on CPU it buys nothing but stays testable.
        on_gpu = self.providers[0] == CUDA_PROVIDER
        self.use_io_binding = on_gpu if use_io_binding is None else use_io_binding
        # The graph's own record of its weights' precision (fp32, fp16, int8).
        props = self.session.get_modelmeta().custom_metadata_map
        self.precision = props.get("bert_serving.precision", "fp32")

    def embed(self, batch: TokenBatch) -> np.ndarray:
        feeds = feeds_for(batch, self.input_names)
        if self.use_io_binding:
            return self._run_bound(feeds)
        output: np.ndarray = self.session.run([OUTPUT_NAME], feeds)[0]
        return output

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        binding.bind_output(OUTPUT_NAME, "cpu")
        self.session.run_with_iobinding(binding)
        output: np.ndarray = binding.copy_outputs_to_cpu()[0]
        return output

    def health(self) -> bool:
        return runs_finite(self)
