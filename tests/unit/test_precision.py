"""int8 (CPU) and fp16 (GPU) graphs: valid, runnable on CPU, and close to fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from reference import cosine_rows, heldout_texts

from bert_serving.server.convert.cache import GraphCache
from bert_serving.server.convert.optimize import INT8_ACCURACY_LEVEL, INT8_BLOCK_SIZE
from bert_serving.server.convert.prepare import ConversionOptions, prepare_graph
from bert_serving.server.convert.sources import detect_model_source
from bert_serving.server.model.engine import Engine, EngineOptions
from bert_serving.server.model.runtime import OnnxRunner, disabled_optimizers, parse_device

SHORT_TEXTS = ["ok", "yes", "no", "thanks", "a", "Hi!", "好"]
"""Two- and three-token texts: [CLS] and [SEP] weigh most in their mean, the hardest rows."""


def test_int8_is_block_wise_on_every_weight_matmul_and_close_to_fp32(
        minilm_dir: Path, graph_cache: Path) -> None:
    texts = [*SHORT_TEXTS, *heldout_texts()]
    fp32 = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache))
    int8 = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache, dtype="int8"))
    assert int8.graph.metadata.precision == "int8"
    graph = onnx.load(str(int8.graph.path)).graph
    nodes, weights = graph.node, {tensor.name for tensor in graph.initializer}
    blockwise = [n for n in nodes if n.op_type == "MatMulNBits"]
    # 5 built layers x (Q, K, V, attention output, FFN in, FFN out): all weight MatMuls
    assert len(blockwise) == 30
    for node in blockwise:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (
            8, INT8_BLOCK_SIZE, INT8_ACCURACY_LEVEL)
    # what stays fp32: attention's activation x activation products only
    assert all(n.input[1] not in weights for n in nodes if n.op_type == "MatMul")
    cosines = cosine_rows(int8.encode(texts), fp32.encode(texts))
    assert cosines.min() >= 0.999, dict(zip(texts, cosines, strict=True))


def test_fp16_gpu_graph_is_valid_and_runs_on_cpu(minilm_dir: Path, tmp_path: Path) -> None:
    """The GPU graph (fusions + fp16, float32 I/O) is checked and run where CI can: on CPU."""
    source = detect_model_source(minilm_dir)
    options = ConversionOptions(precision="fp16", fuse_for_gpu=True)
    graph = prepare_graph(source, options, GraphCache(tmp_path))
    model = onnx.load(str(graph.path))
    onnx.checker.check_model(model)
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    fp32 = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=tmp_path))
    runner = OnnxRunner(graph.path, device="cpu", use_io_binding=True)  # the guarded GPU path
    batch = fp32.tokenize(heldout_texts())
    cosines = cosine_rows(runner.embed(batch), fp32.embed(batch))
    assert cosines.min() >= 0.999, cosines


def _optimized_op_types(graph: Path, out: Path, disabled: list[str]) -> set[str]:
    """The operators of the graph onnxruntime runs after its own load-time fusions."""
    import onnxruntime as ort

    from bert_serving.server.model.runtime import session_options

    options = session_options()
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=disabled)
    return {node.op_type for node in onnx.load(str(out)).graph.node}


def test_cpu_sessions_leave_out_the_slow_skip_layer_norm_fusion(
        minilm_dir: Path, graph_cache: Path, tmp_path: Path) -> None:
    """On a dynamically quantized graph (our int8 before MatMulNBits; what optimum exports)."""
    from onnxruntime.quantization import quantize_dynamic

    fp32 = Engine.load(EngineOptions(model_dir=minilm_dir, graph_tmp_dir=graph_cache))
    graph = tmp_path / "dynamic-int8.onnx"
    quantize_dynamic(fp32.graph.path, graph, op_types_to_quantize=["MatMul"], per_channel=True,
                     extra_options={"MatMulConstBOnly": True})
    default = _optimized_op_types(graph, tmp_path / "default.onnx", [])
    assert "SkipLayerNormalization" in default  # onnxruntime would fuse it here...
    ours = _optimized_op_types(graph, tmp_path / "ours.onnx",
                               disabled_optimizers(parse_device("cpu")))
    assert "SkipLayerNormalization" not in ours  # ...and CPU runners do not let it
    assert "LayerNormalization" in ours
    assert disabled_optimizers(parse_device("cuda:0")) == []


def test_fp16_gpu_graph_with_the_native_view_loads_and_keeps_both_halves(
        minilm_dir: Path, tmp_path: Path) -> None:
    """The graph a GPU gets on a plain start with -http_port: [layer -2 mean | MiniLM's own,
    normalized in the graph]. Max in that normalization once stayed fp32 after the fp16
    conversion, which onnxruntime refused to load."""
    from bert_serving.server.config import parse_server_config

    options = parse_server_config(["-model_dir", str(minilm_dir), "-http_port", "1",
                                   "-graph_tmp_dir", str(tmp_path)]).engine
    assert options.native_view is not None
    graph = prepare_graph(detect_model_source(minilm_dir),
                          ConversionOptions(precision="fp16", fuse_for_gpu=True,
                                            native=options.native_view),
                          GraphCache(tmp_path))
    onnx.checker.check_model(onnx.load(str(graph.path)))
    fp32 = Engine.load(options)
    runner = OnnxRunner(graph.path, device="cpu", use_io_binding=True)
    batch = fp32.tokenize(heldout_texts())
    rows, want = runner.embed(batch), fp32.embed(batch)
    for half in (slice(0, 384), slice(384, 768)):
        assert cosine_rows(rows[:, half], want[:, half]).min() >= 0.999
    assert np.allclose(np.linalg.norm(rows[:, 384:], axis=1), 1, atol=1e-3)
