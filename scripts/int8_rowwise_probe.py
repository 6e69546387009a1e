"""Could int8 arithmetic be fast on AVX2 and keep a text's vector its own? A probe.

onnxruntime's fast int8 on CPUs without VNNI is MLAS's U8S8 GEMM behind `MatMulInteger`:
uint8 activations times int8 weights, accumulated in int32 over the whole row. The peers'
int8 (optimum's dynamic quantization) feeds it one activation scale per tensor, i.e. per
batch, which is why their vectors depend on the batch. This probe gives it one scale per
token row instead, built in the graph (`Abs`, `ReduceMax` over the hidden axis, round to
uint8 around 128), with int8 weights scaled per output column; the int32 result is scaled
back by row scale x column scale. Integer accumulation is exact, so a row's result cannot
depend on the other rows of its batch.

Optionally, SmoothQuant-style per-channel smoothing: each MatMul's input channel j is
divided by s_j and the weight's row j multiplied by it (exact in real arithmetic), with
s_j = absmax(x_j)^alpha / absmax(W_j)^(1 - alpha) from calibration texts, so outlier
channels (the [CLS] row's channel 99, ~19x the row's RMS) take less of the row's range.
MatMuls can be left in fp32 by role.

It prints each variant's worst cosine to fp32 over the probe texts of
`int8_sensitivity.py` (short texts, held-out rows, long texts; each text alone) and the
worst cosine between a text alone and inside one batch of all of them; `--speed` adds
the raw session's time against fp32 and the served MatMulNBits int8 on the server's
batches. Results are in docs/benchmarks.md (int8 section).

Usage: python scripts/int8_rowwise_probe.py [--speed] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]
from benchmark_engine import make_texts, server_batches  # noqa: E402
from int8_sensitivity import (  # noqa: E402
    Scheme,
    cosine_rows,
    print_speeds,
    probe_texts,
    quantize,
    weight_matmuls,
)
from scratch import scratch_dir  # noqa: E402

from bert_serving.server.model.engine import Engine, EngineOptions  # noqa: E402
from bert_serving.server.model.pooling import PoolingSpec  # noqa: E402
from bert_serving.server.model.runtime import OnnxRunner  # noqa: E402

__all__ = ["channel_absmax", "rowwise_int8"]

THREADS = 2


def _weight_matmul_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    names = set(weight_matmuls(model))
    return [node for node in model.graph.node if node.name in names]


def channel_absmax(fp32: Path, feeds: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each weight MatMul's input, abs max per channel over the calibration batches."""
    import onnxruntime as ort

    model = onnx.load(str(fp32))
    outputs = []
    for node in _weight_matmul_nodes(model):
        absolute, peak = f"{node.name}__abs", f"{node.name}__absmax"
        model.graph.node.extend([
            helper.make_node("Abs", [node.input[0]], [absolute]),
            helper.make_node("ReduceMax", [absolute], [peak], axes=[0, 1], keepdims=0),
        ])
        model.graph.output.append(helper.make_tensor_value_info(peak, TensorProto.FLOAT, None))
        outputs.append((node.name, peak))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    peaks: dict[str, np.ndarray] = {}
    for feed in feeds:
        for (name, _), value in zip(outputs, session.run([o for _, o in outputs], feed),
                                    strict=True):
            peaks[name] = np.maximum(peaks.get(name, 0.0), value)
    return peaks


def rowwise_int8(model: onnx.ModelProto, *, absmax: dict[str, np.ndarray] | None = None,
                 alpha: float = 0.5, keep_fp32: Callable[[str], bool] = lambda name: False,
                 ) -> onnx.ModelProto:
    """Every weight MatMul (but those kept) as per-row uint8 x per-column int8 `MatMulInteger`."""
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    constants = [numpy_helper.from_array(np.array(128, np.uint8), "rowq_zero_u8"),
                 numpy_helper.from_array(np.array(128, np.int32), "rowq_zero_i32"),
                 numpy_helper.from_array(np.array(127.0, np.float32), "rowq_127"),
                 numpy_helper.from_array(np.array(1e-12, np.float32), "rowq_eps")]
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights or keep_fp32(node.name):
            nodes.append(node)
            continue
        p = node.name.replace("/", "_")
        weight = numpy_helper.to_array(weights[node.input[1]]).astype(np.float32)
        x = node.input[0]
        if absmax is not None:  # smoothing: x / s and diag(s) W
            smooth = (np.maximum(absmax[node.name], 1e-5) ** alpha
                      / np.maximum(np.abs(weight).max(1), 1e-5) ** (1 - alpha))
            smooth /= np.exp(np.log(smooth).mean())
            weight = weight * smooth[:, None]
            constants.append(numpy_helper.from_array((1 / smooth).astype(np.float32),
                                                     f"{p}_inverse_smooth"))
            nodes.append(helper.make_node("Mul", [x, f"{p}_inverse_smooth"], [f"{p}_smoothed"]))
            x = f"{p}_smoothed"
        column_scale = np.maximum(np.abs(weight).max(0), 1e-12) / 127
        quantized = np.clip(np.round(weight / column_scale), -127, 127).astype(np.int8)
        constants += [numpy_helper.from_array(quantized, f"{p}_w_int8"),
                      numpy_helper.from_array(column_scale.astype(np.float32), f"{p}_w_scale")]
        nodes += [
            helper.make_node("Abs", [x], [f"{p}_abs"]),
            helper.make_node("ReduceMax", [f"{p}_abs"], [f"{p}_rowmax"], axes=[-1], keepdims=1),
            helper.make_node("Max", [f"{p}_rowmax", "rowq_eps"], [f"{p}_rowmax_pos"]),
            helper.make_node("Div", [f"{p}_rowmax_pos", "rowq_127"], [f"{p}_row_scale"]),
            helper.make_node("Div", [x, f"{p}_row_scale"], [f"{p}_scaled"]),
            helper.make_node("Round", [f"{p}_scaled"], [f"{p}_rounded"]),
            helper.make_node("Cast", [f"{p}_rounded"], [f"{p}_i32"], to=TensorProto.INT32),
            helper.make_node("Add", [f"{p}_i32", "rowq_zero_i32"], [f"{p}_shifted"]),
            helper.make_node("Cast", [f"{p}_shifted"], [f"{p}_u8"], to=TensorProto.UINT8),
            helper.make_node("MatMulInteger", [f"{p}_u8", f"{p}_w_int8", "rowq_zero_u8"],
                             [f"{p}_acc"]),
            helper.make_node("Cast", [f"{p}_acc"], [f"{p}_accf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{p}_accf", f"{p}_row_scale"], [f"{p}_by_row"]),
            helper.make_node("Mul", [f"{p}_by_row", f"{p}_w_scale"], [node.output[0]]),
        ]
    used = {name for node in nodes for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept + constants)
    del graph.node[:]
    graph.node.extend(nodes)
    return model


def _ffn_output(name: str) -> bool:
    return "output.dense" in name and "attention" not in name


def _attention_output(name: str) -> bool:
    return "attention.output.dense" in name


def _ffn(name: str) -> bool:
    return _ffn_output(name) or "intermediate.dense" in name


def variants(fp32: Path, absmax: dict[str, np.ndarray], quick: bool
             ) -> dict[str, Callable[[], onnx.ModelProto]]:
    """label -> graph builder; `quick` keeps the first two (the test's smoke run)."""
    def build(**kwargs: object) -> Callable[[], onnx.ModelProto]:
        return lambda: rowwise_int8(onnx.load(str(fp32)), **kwargs)  # type: ignore[arg-type]

    made = {
        "per row": build(),
        "per row, smoothed 0.5": build(absmax=absmax),
        "per row, smoothed 0.7": build(absmax=absmax, alpha=0.7),
        "per row, smoothed, FFN output fp32": build(absmax=absmax, keep_fp32=_ffn_output),
        "per row, smoothed, attention + FFN outputs fp32": build(
            absmax=absmax, keep_fp32=lambda n: _ffn_output(n) or _attention_output(n)),
        "per row, smoothed, FFN fp32 (only Q, K, V, attention output int8)": build(
            absmax=absmax, keep_fp32=_ffn),
    }
    return dict(list(made.items())[:2]) if quick else made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--speed", action="store_true", help="also time the raw sessions")
    parser.add_argument("--quick", action="store_true", help="two variants (the test's run)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = scratch_dir("int8-rowwise")
    engine = Engine.load(EngineOptions(graph_tmp_dir=work / "graphs", max_seq_len=128,
                                       pooling=PoolingSpec(layers=(-1,)),
                                       intra_op_threads=THREADS))
    fp32 = engine.graph.path
    texts = probe_texts()
    expected = np.concatenate([engine.embed(engine.tokenize([t])) for t in texts])
    calibration = [{"input_ids": b.input_ids, "attention_mask": b.attention_mask,
                    "token_type_ids": b.token_type_ids}
                   for _, b in server_batches(engine, make_texts(256, seed=99))]
    absmax = channel_absmax(fp32, calibration)
    runners = {"fp32": engine.runner}
    served = quantize(fp32, work / "served.onnx", Scheme(accuracy_level=1))
    builders = {"MatMulNBits block 32, level 1 (served -int8)": lambda: onnx.load(str(served)),
                **variants(fp32, absmax, args.quick)}
    print(f"{len(texts)} probe texts; worst cosine to fp32 (each text alone), "
          "and worst cosine of a text alone vs inside one batch of all of them")
    for index, (label, make) in enumerate(builders.items()):
        path = work / f"variant-{index}.onnx"
        onnx.save(make(), str(path))
        runner = OnnxRunner(path, device="cpu", intra_op_threads=THREADS)
        alone = np.concatenate([runner.embed(engine.tokenize([text])) for text in texts])
        batched = runner.embed(engine.tokenize(texts))
        to_fp32, batch = cosine_rows(alone, expected), cosine_rows(alone, batched)
        print(f"{label:66} worst {to_fp32.min():.5f} ({texts[int(to_fp32.argmin())][:12]!r}) "
              f"alone vs batched {batch.min():.7f}", flush=True)
        runners[label] = runner
    if args.speed:
        print_speeds(runners, engine, args.rounds, speed_texts=300, width=66)

if __name__ == "__main__":
    main()
