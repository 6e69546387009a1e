"""What bfloat16 matmuls would cost a model's vectors, emulated on a CPU that has no bf16.

`-dtype bfloat16` runs on OpenVINO only where the CPU has AVX512_BF16 or AMX (issue 28);
elsewhere its accuracy cannot be measured directly. bf16 keeps fp32's exponent and 8 of
its 24 significand bits; OpenVINO's bf16 kernels round both operands of each MatMul
to bf16 and accumulate in fp32. This script does the same rounding in the fp32 graph
(weights rounded in place, activations through a Cast to bf16 and back, which
onnxruntime rounds to nearest even) and runs it on onnxruntime, so the worst row to
fp32 can be read on any CPU, for each choice of what stays fp32:

- all MatMuls' operands in bf16 (the optimistic bound: OpenVINO also keeps some
  activations between layers in bf16);
- the same with every MatMul's output rounded too (the pessimistic bound: residual
  sums and LayerNorm inputs as bf16 tensors);
- attention's activation x activation products kept fp32; the first, or the last,
  layer kept fp32; the feed-forward output projections kept fp32;
- `--sensitivity`: all rounded but one weight MatMul, for each in turn;
- `--tensors`: every float tensor between operations rounded to bf16 (closer to
  OpenVINO's bf16 pipeline, which also stores LayerNorm, Softmax, GELU and residual sums
  in bf16), and the same with one kind of operation kept fp32 at a time, to find the
  ones whose bf16 output costs the worst row.

It is an emulation: the figures on a bf16 CPU come from OpenVINO itself
(`tests/integration/test_openvino_server.py` there, `scripts/benchmark_peers.py`).

Usage: python scripts/bf16_emulation.py [--model_dir DIR] [--pooling_layer -1] [--sensitivity]
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
from int8_sensitivity import cosine_rows, probe_texts, weight_matmuls  # noqa: E402
from scratch import scratch_dir  # noqa: E402

from bert_serving.server.model.engine import Engine, EngineOptions  # noqa: E402
from bert_serving.server.model.pooling import PoolingSpec  # noqa: E402
from bert_serving.server.model.runtime import OnnxRunner  # noqa: E402

__all__ = ["emulate_bf16", "to_bf16"]

THREADS = 2
Keep = Callable[[onnx.NodeProto], bool]
"""Which MatMuls stay fp32 in a variant."""


def to_bf16(values: np.ndarray) -> np.ndarray:
    """fp32 values rounded to the nearest bf16 (ties to even), held as fp32."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    return ((bits + rounding) & np.uint32(0xFFFF0000)).view(np.float32)


def _round_trip(name: str, nodes: list[onnx.NodeProto], done: dict[str, str]) -> str:
    """`name` through Cast to bf16 and back: the activation as a bf16 kernel reads it
    (once per activation, however many MatMuls read it)."""
    if name not in done:
        narrow, done[name] = f"{name}.bf16", f"{name}.bf16_fp32"
        nodes.append(helper.make_node("Cast", [name], [narrow], to=TensorProto.BFLOAT16))
        nodes.append(helper.make_node("Cast", [narrow], [done[name]], to=TensorProto.FLOAT))
    return done[name]


def _round_output(node: onnx.NodeProto, position: int, nodes: list[onnx.NodeProto]) -> None:
    """What reads `node`'s output `position` reads it rounded to bf16 (Casts after `node`)."""
    name = node.output[position]
    node.output[position] = f"{name}.exact"
    nodes.append(helper.make_node("Cast", [f"{name}.exact"], [f"{name}.b16"],
                                  to=TensorProto.BFLOAT16))
    nodes.append(helper.make_node("Cast", [f"{name}.b16"], [name], to=TensorProto.FLOAT))


def emulate_bf16(model: onnx.ModelProto, keep_fp32: Keep, *, round_outputs: bool = False
                 ) -> onnx.ModelProto:
    """A copy of `model` whose MatMuls (but those `keep_fp32` names) read bf16 operands."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    nodes: list[onnx.NodeProto] = []
    rounded_activations: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type != "MatMul" or keep_fp32(node):
            nodes.append(node)
            continue
        for position, name in enumerate(node.input):
            if name in weights:
                rounded = to_bf16(numpy_helper.to_array(weights[name]))
                weights[name].CopyFrom(numpy_helper.from_array(rounded, name))
            else:
                node.input[position] = _round_trip(name, nodes, rounded_activations)
        nodes.append(node)
        if round_outputs:
            _round_output(node, 0, nodes)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def float_outputs(model: onnx.ModelProto) -> set[str]:
    """The float32 tensors the graph's operations produce (by onnx's type inference)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    return {info.name for info in inferred.graph.value_info
            if info.type.tensor_type.elem_type == TensorProto.FLOAT}


def emulate_bf16_tensors(model: onnx.ModelProto, keep_fp32_ops: frozenset[str]
                         ) -> onnx.ModelProto:
    """All MatMul operands, and every float output of an operation not in `keep_fp32_ops`,
    rounded to bf16 (the graph's own output excepted)."""
    rounded = emulate_bf16(model, lambda node: False)
    floats = float_outputs(model) - {output.name for output in model.graph.output}
    nodes: list[onnx.NodeProto] = []
    for node in rounded.graph.node:
        nodes.append(node)
        if node.op_type in keep_fp32_ops or node.op_type == "Cast":
            continue
        for position, name in enumerate(node.output):
            if name in floats:
                _round_output(node, position, nodes)
    del rounded.graph.node[:]
    rounded.graph.node.extend(nodes)
    return rounded


TENSOR_VARIANTS = {
    "every tensor bf16": frozenset(),
    "every tensor bf16 but LayerNorm outputs": frozenset({"LayerNormalization"}),
    "every tensor bf16 but Softmax outputs": frozenset({"Softmax"}),
    "every tensor bf16 but Add outputs (residuals, biases)": frozenset({"Add"}),
    "every tensor bf16 but GELU (Erf, Mul, Div)": frozenset({"Erf", "Mul", "Div"}),
    "every tensor bf16 but pooling (ReduceSum, Div)": frozenset({"ReduceSum", "Div"}),
}
"""label -> operation types whose outputs stay fp32, for `--tensors`."""


def variants(model: onnx.ModelProto, sensitivity: bool) -> dict[str, tuple[Keep, bool]]:
    """label -> (MatMuls kept fp32, round MatMul outputs too)."""
    names = weight_matmuls(model)
    weights = set(names)
    layers = sorted({name.split("layer_")[1].split(".")[0] for name in names if "layer_" in name},
                    key=int)
    first, last = f"layer_{layers[0]}.", f"layer_{layers[-1]}."

    def named(*parts: str) -> Keep:
        return lambda node: any(part in node.name for part in parts)

    found: dict[str, tuple[Keep, bool]] = {
        "all MatMul operands bf16": (lambda node: False, False),
        "operands and outputs bf16 (pessimistic)": (lambda node: False, True),
        "attention's products fp32": (lambda node: node.name not in weights, False),
        "first layer fp32": (named(first), False),
        "last layer fp32": (named(last), False),
        "feed-forward output fp32": (lambda node: node.name in weights and "output" in node.name
                                     and "attention" not in node.name, False),
    }
    if sensitivity:
        for name in names:
            found[f"all but {name}"] = (lambda node, kept=name: node.name == kept, False)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model_dir", type=Path, default=None,
                        help="a model folder (default: the embedded MiniLM)")
    parser.add_argument("--pooling_layer", type=int, default=-1,
                        help="the layer pooled (mean); -1, the harder case, by default")
    parser.add_argument("--sensitivity", action="store_true")
    parser.add_argument("--tensors", action="store_true")
    args = parser.parse_args()
    work = scratch_dir("bf16-emulation")
    engine = Engine.load(EngineOptions(model_dir=args.model_dir, graph_tmp_dir=work / "graphs",
                                       max_seq_len=128, intra_op_threads=THREADS,
                                       pooling=PoolingSpec(layers=(args.pooling_layer,))))
    fp32 = onnx.load(str(engine.graph.path))
    texts = probe_texts()
    batches = [engine.tokenize([text]) for text in texts]
    expected = np.concatenate([engine.runner.embed(batch) for batch in batches])
    print(f"{engine.graph.path.name}: {len(weight_matmuls(fp32))} weight MatMuls, "
          f"{len(texts)} texts (short, held-out, long), each alone; cosine to fp32")
    graphs: dict[str, Callable[[], onnx.ModelProto]] = {
        label: lambda keep=keep, outputs=outputs: emulate_bf16(fp32, keep, round_outputs=outputs)
        for label, (keep, outputs) in variants(fp32, args.sensitivity).items()}
    if args.tensors:
        graphs |= {label: lambda kept=kept: emulate_bf16_tensors(fp32, kept)
                   for label, kept in TENSOR_VARIANTS.items()}
    for label, make in graphs.items():
        path = work / "variant.onnx"
        onnx.save(make(), str(path))
        runner = OnnxRunner(path, device="cpu", intra_op_threads=THREADS)
        cosines = cosine_rows(np.concatenate([runner.embed(b) for b in batches]), expected)
        worst = int(cosines.argmin())
        print(f"{label:55} worst {cosines[worst]:.5f} ({texts[worst][:20]!r}), "
              f"1st percentile {np.percentile(cosines, 1):.5f}", flush=True)


if __name__ == "__main__":
    main()
