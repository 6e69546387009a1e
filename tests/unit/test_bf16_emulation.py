"""scripts/bf16_emulation.py rounds as bf16 does, and its graphs compute what they claim.

Its figures (docs/benchmarks.md) stand on two facts checked here: `to_bf16` rounds to
the nearest bf16, ties to even, as onnxruntime's Cast does; and an emulated MatMul is
the fp32 product of the two operands so rounded.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from bf16_emulation import emulate_bf16, to_bf16
from onnx import TensorProto, helper, numpy_helper


def cast_through_onnxruntime(values: np.ndarray) -> np.ndarray:
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["b"], to=TensorProto.BFLOAT16),
         helper.make_node("Cast", ["b"], ["y"], to=TensorProto.FLOAT)], "cast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": values})[0])


def test_rounding_is_nearest_even_as_onnxruntime_casts() -> None:
    exact = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-7, 3.14159, -2.5e-3], np.float32)
    assert to_bf16(exact).tolist() == [1.0, 1.0, 1 + 2**-6, 1 + 2**-7, 3.140625,
                                       float(np.float32(-0.002502441406))]
    rng = np.random.default_rng(0)
    values = (rng.standard_normal(10_000) * 10.0 ** rng.integers(-6, 6, 10_000)).astype(
        np.float32)
    np.testing.assert_array_equal(to_bf16(values), cast_through_onnxruntime(values))


def test_an_emulated_matmul_is_the_product_of_rounded_operands() -> None:
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((16, 8)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="dense.matmul")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    x = rng.standard_normal((4, 16)).astype(np.float32)

    def run(built: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(built.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        return np.asarray(session.run(None, {"x": x})[0])

    emulated = run(emulate_bf16(model, lambda node: False))
    np.testing.assert_allclose(emulated, to_bf16(x) @ to_bf16(weight), rtol=1e-6, atol=1e-6)
    assert not np.allclose(emulated, x @ weight, rtol=1e-6, atol=1e-6), "nothing was rounded"
    np.testing.assert_array_equal(run(emulate_bf16(model, lambda node: True)), run(model))
