"""The GPU server install (`pip install '.[gpu]'` + the default model), in a fresh venv.

On this CPU machine: the extra installs onnxruntime-gpu with CUDA and cuDNN from pip
and no CPU onnxruntime, the GPU conversion (fused attention, fp16) runs without torch
bringing sympy, and a start without -cpu falls back to the CPU with one warning line
and no onnxruntime noise, also once the NVIDIA packages are gone (onnxruntime-gpu
alone). Last, a CPU onnxruntime installed beside it is refused. The tests that change
the venv run in file order, after the ones that need it whole.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import onnx
import pytest
from fresh_venv import FreshVenv, VenvServer, encode_with

from bert_serving.server.model.engine import Engine, EngineOptions

TEXTS = ["a GPU install on a machine without a GPU", "hello world"]
TOLERANCE = 1e-4  # the fallback serves the fp32 CPU graph, as the CPU install does


def _host_has_a_gpu() -> bool:
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 \
        and count.value > 0


@pytest.fixture(scope="module")
def gpu_venv(module_tmp_path: Path) -> FreshVenv:
    return FreshVenv.with_checkout(module_tmp_path / "venv", "gpu")


def test_the_gpu_extra_brings_cuda_from_pip_and_no_cpu_runtime(gpu_venv: FreshVenv) -> None:
    installed = gpu_venv.distributions()
    for present in ("onnxruntime-gpu", "sympy", "nvidia-cudnn-cu13", "nvidia-cublas"):
        assert present in installed, installed
    for absent in ("onnxruntime", "torch", "transformers"):
        assert absent not in installed, installed
    probe = gpu_venv.run("python", "-c", "import onnxruntime, bert_serving.server.model.engine; "
                         "print(onnxruntime.get_available_providers())")
    assert probe.returncode == 0, probe.stderr
    assert "CUDAExecutionProvider" in probe.stdout


def test_export_gpu_builds_the_fused_fp16_graph(gpu_venv: FreshVenv, tmp_path: Path) -> None:
    output = tmp_path / "gpu" / "model.onnx"
    result = gpu_venv.run("bert-serving-export", "-gpu", "-o", str(output),
                          "-graph_tmp_dir", str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    graph = onnx.load(str(output)).graph
    assert "Attention" in {node.op_type for node in graph.node}  # ORT's fused attention
    weights = [init for init in graph.initializer if len(init.dims) == 2]
    assert weights and all(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)


@pytest.mark.skipif(_host_has_a_gpu(), reason="this host has a GPU: nothing to fall back from")
def test_a_start_without_cpu_falls_back_with_one_warning(gpu_venv: FreshVenv, graph_cache: Path,
                                                         minilm_dir: Path) -> None:
    with VenvServer(gpu_venv, [], graph_cache, cpu=False) as server:
        got = encode_with(gpu_venv, server, TEXTS)
        assert server.stop() == 0, server.output
    lines = server.output.splitlines()
    warnings = [line for line in lines if "WARNING" in line or "[W:" in line]
    assert len(warnings) == 1 and "no CUDA GPU is usable" in warnings[0], server.output
    noise = [line for line in lines
             if any(mark in line for mark in ("[E:", "Failed to load", "libcu", "Traceback"))]
    assert noise == [], server.output
    assert "workers=cpu" in server.output
    expected = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache))
    np.testing.assert_allclose(got, expected.encode(TEXTS), atol=TOLERANCE, rtol=0)


@pytest.mark.skipif(_host_has_a_gpu(), reason="this host has a GPU: nothing to fall back from")
def test_without_the_nvidia_packages_the_fallback_is_still_one_line(
        gpu_venv: FreshVenv, graph_cache: Path) -> None:
    """onnxruntime-gpu alone, as a CPU user who installed it by hand has it: no CUDA
    libraries to load, and still no "Failed to load libcublasLt" before the warning."""
    nvidia = sorted(name for name in gpu_venv.distributions() if name.startswith("nvidia-"))
    gpu_venv.pip("uninstall", "-y", *nvidia)
    with VenvServer(gpu_venv, [], graph_cache, cpu=False) as server:
        assert server.stop() == 0, server.output
    lines = server.output.splitlines()
    assert [line for line in lines if "WARNING" in line or "Failed" in line] == [
        line for line in lines if "no CUDA GPU is usable" in line], server.output
    assert len([line for line in lines if "WARNING" in line]) == 1, server.output


def test_both_onnxruntime_builds_are_refused_in_one_line(gpu_venv: FreshVenv) -> None:
    """Runs last: it breaks the venv on purpose, as `pip install onnxruntime` would."""
    gpu_venv.pip("install", "--no-deps", "onnxruntime==1.31.1")
    for command in ("bert-serving-start", "bert-serving-export"):
        result = gpu_venv.run(command, "-h")
        assert result.returncode == 2
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert "onnxruntime and onnxruntime-gpu are both installed" in lines[0]
        assert "pip uninstall -y onnxruntime onnxruntime-gpu" in lines[0]
