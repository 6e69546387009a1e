"""Graph transforms after building: ORT's transformer fusions, fp16 for GPUs, int8 for CPUs.

Measured on the MiniLM on 2 CPU cores, the fusions gave no speed-up on CPU, so
they are applied for GPU graphs only, where fused attention matters.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx

from .bert_config import BertConfig

__all__ = ["INT8_BLOCK_SIZE", "PRECISIONS", "apply_fusions", "convert_to_fp16", "quantize_to_int8"]

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


INT8_BLOCK_SIZE = 32
"""Weights per int8 scale along a MatMul's input axis (see `quantize_to_int8`)."""


def quantize_to_int8(model_path: Path, output_path: Path,
                     block_size: int = INT8_BLOCK_SIZE) -> None:
    """Block-wise int8 MatMuls (`MatMulNBits`, 8 bits, symmetric), every weight MatMul.

    Why not onnxruntime's dynamic quantization, used before: it scales activations
    per tensor, one scale for the whole batch, so a short text's vector depended on
    the long texts batched with it (cosine 0.985 between alone and batched). Here
    weights get one scale per `block_size` inputs of each output column, and with
    `accuracy_level=4` the kernel quantizes activations per row and block: a row's
    result no longer depends on the other rows, and it is closer to fp32 (measured
    in docs/benchmarks.md). Only MatMuls with a constant weight are quantized;
    attention's activation x activation products stay fp32. The attention output
    projections, once kept in fp32 for the per-batch scale's sake, are quantized too.
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    # it logs two INFO lines per node of the graph: hundreds, in the server's start-up log
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    model = onnx.load(str(model_path))
    quantizer = MatMulNBitsQuantizer(
        model, bits=8, block_size=block_size, is_symmetric=True, accuracy_level=4,
    )
    quantizer.process()
    quantized: onnx.ModelProto = quantizer.model.model
    quantized.ir_version = min(quantized.ir_version, model.ir_version)
    onnx.save(quantized, str(output_path))
