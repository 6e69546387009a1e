"""Graph transforms after building: ORT's transformer fusions, fp16 for GPUs, int8 for CPUs.

Measured on the MiniLM on 2 CPU cores, the fusions gave no speed-up on CPU, so
they are applied for GPU graphs only, where fused attention matters.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import onnx

from .bert_config import BertConfig

__all__ = ["INT8_ACCURACY_LEVEL", "INT8_BLOCK_SIZE", "PRECISIONS", "apply_fusions",
           "convert_to_fp16", "quantize_to_int8"]

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

INT8_ACCURACY_LEVEL = 1
"""MatMulNBits' compute type: 1 keeps activations in fp32 (int8 weights, dequantized
block by block inside the kernel); 4 quantizes activations to int8 per row and block.
Measured on the MiniLM (docs/benchmarks.md, scripts/int8_sensitivity.py): level 4's
activation rounding costs the two- and three-token texts their accuracy (worst row
0.9977 to fp32; no block size, zero point or handful of fp32 MatMuls brought it to
0.999 short of ~6 MatMuls in fp32), while level 1 holds 0.9994. On CPUs without an
int8 dot-product instruction (AVX2 without VNNI, as our CI VMs) level 1 is also the
faster of the two; level 4's int8 arithmetic pays only with VNNI."""


def quantize_to_int8(model_path: Path,
                     block_size: int = INT8_BLOCK_SIZE,
                     accuracy_level: int = INT8_ACCURACY_LEVEL,
                     keep_fp32: Collection[str] = ()) -> onnx.ModelProto:
    """Block-wise int8 weights (`MatMulNBits`, 8 bits, symmetric), every weight MatMul.

    Why not onnxruntime's dynamic quantization, used before: it scales activations
    per tensor, one scale for the whole batch, so a short text's vector depended on
    the long texts batched with it (cosine 0.985 between alone and batched). Here
    weights get one scale per `block_size` inputs of each output column and
    activations are never scaled across rows (fp32 at `accuracy_level` 1, per row
    and block at 4): a row's result does not depend on the other rows, and it is
    closer to fp32 (measured in docs/benchmarks.md). The weights take a quarter of
    fp32's memory. Only MatMuls with a constant weight are quantized;
    attention's activation x activation products stay fp32. The attention output
    projections, once kept in fp32 for the per-batch scale's sake, are quantized too.
    `keep_fp32` names MatMul nodes left as they are (a classifier's head). The graph
    comes back in memory, for the caller to save (graph_file decides one file or two).
    """
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    # it logs two INFO lines per node of the graph: hundreds, in the server's start-up log
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    model = onnx.load(str(model_path))
    quantizer = MatMulNBitsQuantizer(
        model, bits=8, block_size=block_size, is_symmetric=True,
        accuracy_level=accuracy_level, nodes_to_exclude=list(keep_fp32),
    )
    quantizer.process()
    quantized: onnx.ModelProto = quantizer.model.model
    quantized.ir_version = min(quantized.ir_version, model.ir_version)
    return quantized
