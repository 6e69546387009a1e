"""Which device each worker gets, and which onnxruntime providers a device asks for.

These are pure decisions (no GPU needed to check them), and the one place a
machine with one GPU and `-num_worker 2` could go wrong: a second worker sent to
a GPU that is not there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bert_serving.server.config import parse_server_config
from bert_serving.server.errors import ConfigError
from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.runtime import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    OnnxRunner,
    parse_device,
    select_providers,
    usable_gpu_count,
)
from bert_serving.server.server import assign_devices, threads_per_worker


def devices(flags: list[str], gpu_count: int) -> list[str]:
    return assign_devices(parse_server_config(flags), gpu_count=gpu_count)


def test_workers_share_the_only_gpu() -> None:
    assert devices(["-num_worker", "2"], gpu_count=1) == ["cuda:0", "cuda:0"]


def test_workers_cycle_over_every_visible_gpu() -> None:
    assert devices(["-num_worker", "3"], gpu_count=2) == ["cuda:0", "cuda:1", "cuda:0"]
    assert devices(["-num_worker", "2"], gpu_count=4) == ["cuda:0", "cuda:1"]


def test_device_map_chooses_and_cycles() -> None:
    flags = ["-num_worker", "3", "-device_map", "2", "1"]
    assert devices(flags, gpu_count=4) == ["cuda:2", "cuda:1", "cuda:2"]


def test_device_map_naming_an_absent_gpu_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"GPU 3 .* 2 GPU\(s\) are visible"):
        devices(["-device_map", "0", "3"], gpu_count=2)


def test_without_a_gpu_workers_run_on_cpu_unless_a_device_map_insists() -> None:
    assert devices(["-num_worker", "2"], gpu_count=0) == ["cpu", "cpu"]
    with pytest.raises(ConfigError, match="no CUDA GPU is usable"):
        devices(["-device_map", "0"], gpu_count=0)


def test_cpu_flag_wins_over_present_gpus() -> None:
    assert devices(["-cpu", "-num_worker", "2"], gpu_count=8) == ["cpu", "cpu"]


def test_providers_by_device() -> None:
    assert select_providers(parse_device("cpu")) == [CPU_PROVIDER]
    assert select_providers(parse_device("1")) == [
        (CUDA_PROVIDER, {"device_id": 1}), CPU_PROVIDER]


def test_a_cuda_runner_uses_the_gpu_when_there_is_one_and_falls_back_otherwise(
        minilm_dir: Path, graph_cache: Path) -> None:
    graph = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache)).graph
    runner = OnnxRunner(graph.path, device="cuda:0")
    on_gpu = usable_gpu_count() > 0
    assert runner.providers[0] == (CUDA_PROVIDER if on_gpu else CPU_PROVIDER)
    assert runner.use_io_binding is on_gpu
    assert runner.health()


def test_gpu_workers_get_one_cpu_thread_and_cpu_workers_share_the_usable_cores() -> None:
    cores = len(os.sched_getaffinity(0))
    two = parse_server_config(["-num_worker", "2"])
    assert threads_per_worker(two, "cuda:0") == 1
    assert threads_per_worker(two, "cpu") == max(1, cores // 2)
    many = parse_server_config(["-num_worker", str(cores + 1)])
    assert threads_per_worker(many, "cpu") == 1  # never 0: onnxruntime would take all cores
    chosen = parse_server_config(["-num_worker", "2", "-intra_op_threads", "3"])
    assert threads_per_worker(chosen, "cuda:0") == threads_per_worker(chosen, "cpu") == 3
