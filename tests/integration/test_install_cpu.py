"""The CPU server install (`pip install '.[server]'` + the default model), in a fresh venv.

What the README's first command does, without torch or transformers: start on the
embedded default model, encode with the venv's client, export fp32 and int8 graphs.
Then the `openvino` extra added to it (`pip install '.[server,openvino]'`), served with
-runtime openvino. The vectors are checked against the test venv's engine on the same MiniLM.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from fresh_venv import REPO, FreshVenv, VenvServer, encode_with

from bert_serving.server.model.engine import Engine, EngineOptions

TEXTS = ["a CPU server from a fresh venv", "hello world"]
TOLERANCE = 1e-4  # fp32 on the same onnxruntime build; a looser bound would hide a wrong graph


@pytest.fixture(scope="module")
def cpu_venv(module_tmp_path: Path) -> FreshVenv:
    return FreshVenv.with_checkout(module_tmp_path / "venv", "server")


def test_the_cpu_extra_installs_the_cpu_runtime_only(cpu_venv: FreshVenv) -> None:
    installed = cpu_venv.distributions()
    assert "onnxruntime" in installed
    for absent in ("onnxruntime-gpu", "torch", "transformers", "sentence-transformers",
                   "openvino"):
        assert absent not in installed, installed


def test_start_on_the_default_model_and_encode(cpu_venv: FreshVenv, graph_cache: Path,
                                               minilm_dir: Path) -> None:
    with VenvServer(cpu_venv, [], graph_cache) as server:
        got = encode_with(cpu_venv, server, TEXTS)
        assert "embedded default" in server.output
        assert server.stop() == 0, server.output
    expected = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache))
    np.testing.assert_allclose(got, expected.encode(TEXTS), atol=TOLERANCE, rtol=0)


def _op_types(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


def test_export_fp32_and_int8(cpu_venv: FreshVenv, tmp_path: Path, minilm_dir: Path) -> None:
    for flags, folder in (([], "fp32"), (["-int8"], "int8")):
        output = tmp_path / folder / "model.onnx"
        result = cpu_venv.run("bert-serving-export", *flags, "-o", str(output),
                              "-graph_tmp_dir", str(tmp_path / "cache"))
        assert result.returncode == 0, result.stderr
        assert (output.parent / "vocab.txt").is_file()
    assert "MatMulNBits" in _op_types(tmp_path / "int8" / "model.onnx")
    assert "MatMulNBits" not in _op_types(tmp_path / "fp32" / "model.onnx")
    # The exported fp32 graph is the default model's: same vectors as from the checkpoint.
    exported = Engine.load(EngineOptions(model_dir=tmp_path / "fp32" / "model.onnx"))
    from_checkpoint = Engine.load(EngineOptions(model_dir=minilm_dir,
                                                graph_tmp_dir=tmp_path / "cache"))
    np.testing.assert_allclose(exported.encode(TEXTS), from_checkpoint.encode(TEXTS),
                               atol=TOLERANCE, rtol=0)


def test_the_openvino_extra_installs_and_serves(cpu_venv: FreshVenv, graph_cache: Path,
                                                minilm_dir: Path) -> None:
    """Last in this module: it adds the extra to the venv the tests above ran without it."""
    cpu_venv.pip("install", f"{REPO}[server,openvino]")
    assert "openvino" in cpu_venv.distributions()
    with VenvServer(cpu_venv, ["-runtime", "openvino", "-dtype", "float32"],
                    graph_cache) as server:
        got = encode_with(cpu_venv, server, TEXTS)
        assert "(openvino fp32)" in server.output
        assert server.stop() == 0, server.output
    expected = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache))
    np.testing.assert_allclose(got, expected.encode(TEXTS), atol=TOLERANCE, rtol=0)
