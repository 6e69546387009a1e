"""The -int8 graph and the fp16 GPU graph of a model folder, each against its fp32 graph.

test_families.py runs it for every family, test_qwen.py for Qwen2 (made by
make_random_family.py but not one of the session's `family_dir` families). The
graphs' own nodes are checked as well, so that a precision silently not applied (a
graph identical to fp32) cannot pass.
"""

from __future__ import annotations

from pathlib import Path

from reference import cosine_rows, heldout_texts

__all__ = ["SHORT_TEXTS", "precision_cosines"]

SHORT_TEXTS = ["ok", "yes", "no", "thanks", "a", "Hi!", "好"]
"""Two- and three-token texts, where the specials weigh most in a mean: the hardest rows."""


def precision_cosines(model_dir: Path, graph_cache: Path) -> dict[str, dict[str, float]]:
    """Each text's cosine to fp32 (SHORT_TEXTS and the held-out set), by graph: `int8`
    (the CPU graph, MatMulNBits) and `fp16` (the GPU graph, FLOAT16 initializers, run on
    CPU as CI has no GPU). Asserts the nodes; the caller asserts the cosines."""
    import onnx

    from bert_serving.server.convert.cache import GraphCache
    from bert_serving.server.convert.prepare import ConversionOptions, prepare_graph
    from bert_serving.server.convert.sources import detect_model_source
    from bert_serving.server.model.engine import Engine, EngineOptions
    from bert_serving.server.model.runtime import OnnxRunner

    def load(**overrides: object) -> Engine:
        return Engine.load(EngineOptions(model_dir=model_dir, graph_tmp_dir=graph_cache,
                                         max_seq_len=None, **overrides))  # type: ignore[arg-type]

    texts = [*SHORT_TEXTS, *heldout_texts()]
    fp32, int8 = load(), load(dtype="int8")
    assert any(node.op_type == "MatMulNBits" for node in onnx.load(str(int8.graph.path)).graph.node)
    fp16 = prepare_graph(detect_model_source(model_dir),
                         ConversionOptions(precision="fp16", fuse_for_gpu=True),
                         GraphCache(graph_cache))
    assert any(tensor.data_type == onnx.TensorProto.FLOAT16
               for tensor in onnx.load(str(fp16.path)).graph.initializer)
    batch = fp32.tokenize(texts)
    want = fp32.embed(batch)
    gpu_graph_on_cpu = OnnxRunner(fp16.path, device="cpu", use_io_binding=True)
    return {name: dict(zip(texts, cosine_rows(got, want).tolist(), strict=True))
            for name, got in (("int8", int8.embed(batch)),
                              ("fp16", gpu_graph_on_cpu.embed(batch)))}
