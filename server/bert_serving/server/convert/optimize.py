"""Graph transforms after building: ORT's transformer fusions, fp16 for GPUs, int8 for CPUs.

Measured on the MiniLM on 2 CPU cores, the fusions gave no speed-up on CPU, so
they are applied for GPU graphs only, where fused attention matters.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from .bert_config import BertConfig

__all__ = ["PRECISIONS", "apply_fusions", "convert_to_fp16", "quantize_to_int8"]

log = logging.getLogger(__name__)
PRECISIONS = ("fp32", "fp16", "int8")


def apply_fusions(model: onnx.ModelProto, config: BertConfig, *, use_gpu: bool) -> onnx.ModelProto:
    """Fuse attention, LayerNorm and GELU patterns into ORT's contrib kernels."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        model,
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,  # our fusions only; ORT applies its own graph optimizations at load
        use_gpu=use_gpu,
    )
    log.info("ORT fusions: %s", optimized.get_fused_operator_statistics())
    fused = optimized.model
    domains = {node.domain for node in fused.graph.node if node.domain}
    declared = {opset.domain for opset in fused.opset_import}
    for domain in sorted(domains - declared):  # contrib ops need their domain declared
        fused.opset_import.append(onnx.helper.make_opsetid(domain, 1))
    return fused


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Half-precision weights and compute, float32 inputs and outputs kept."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True)


def quantize_to_int8(model_path: Path, output_path: Path) -> None:
    """Dynamic int8 quantization of the MatMul weights, per output channel.

    Per-tensor scales lose too much on BERT embeddings (outlier channels);
    per-channel keeps cosine to fp32 above 0.99 on our test set. Only MatMuls
    with a constant weight are quantized: quantizing attention's activation x
    activation products as well was 1.75x instead of 2.4x over fp32 on a
    2-core AVX-512 VNNI machine, for the same accuracy. The attention output
    projections (1/12 of the MatMul work) stay in fp32: activation scales are per
    batch, and with 4096-token CPU batches quantizing them left one row in 1,500
    at cosine 0.988 to fp32; kept in fp32, the worst row is 0.992 (speed 1.58x
    instead of 1.66x over fp32, same machine).
    """
    kept_fp32 = [
        node.name
        for node in onnx.load(str(model_path), load_external_data=False).graph.node
        if node.op_type == "MatMul" and ".attention.output.dense." in node.name
    ]
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        model_path,
        output_path,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        reduce_range=False,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=kept_fp32,
        extra_options={"MatMulConstBOnly": True},
    )
