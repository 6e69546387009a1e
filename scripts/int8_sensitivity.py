"""Which int8 choices cost short texts their accuracy: schemes and per-MatMul sensitivity.

The served int8 graph is MatMulNBits (see convert/optimize.py). Its worst rows are
the shortest texts ("ok", "yes"), whose [CLS]/[SEP] activations dominate. This
script quantizes the MiniLM's fp32 graph (all 6 layers, last-layer mean, the
harder setting) in several ways and prints, for each, the worst cosine to fp32 over
short texts + the held-out file + long texts (each text alone, which for these
row-independent kernels is the same as batched), and the raw session's time
against fp32 on the mixed texts in the server's batches (interleaved rounds).

- `--schemes`: block sizes, symmetric or not, accuracy levels, MatMuls kept fp32
  by role (attention output, FFN output, first/last layer);
- `--sensitivity`: all weight MatMuls quantized but one, for each one in turn
  (the MatMul whose fp32 return lifts the worst row most is the sensitive one).

Usage: python scripts/int8_sensitivity.py [--schemes] [--sensitivity] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

from benchmark_engine import make_texts, server_batches  # noqa: E402
from reference import heldout_texts  # noqa: E402
from scratch import scratch_dir  # noqa: E402
from timing import interleaved_medians  # noqa: E402

from bert_serving.server.model.engine import Engine, EngineOptions  # noqa: E402
from bert_serving.server.model.pooling import PoolingSpec  # noqa: E402
from bert_serving.server.model.runtime import OnnxRunner  # noqa: E402

__all__ = ["Scheme", "print_speeds", "quantize"]

SHORT_TEXTS = ["ok", "yes", "a", "Hi!", "好", "no", "thanks", "OK."]
THREADS = 2


@dataclass(frozen=True)
class Scheme:
    """One way to quantize: MatMulNBits settings and the MatMuls left in fp32."""

    block_size: int = 32
    symmetric: bool = True
    accuracy_level: int = 4
    keep_fp32: Callable[[str], bool] = field(default=lambda name: False)
    fp32_compute: Callable[[str], bool] = field(default=lambda name: False)
    """MatMuls quantized but set to accuracy_level 1 (int8 weights, fp32 activations)."""


def weight_matmuls(model: onnx.ModelProto) -> list[str]:
    weights = {tensor.name for tensor in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and node.input[1] in weights]


def quantize(fp32: Path, out: Path, scheme: Scheme) -> Path:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(fp32))
    kept = [name for name in weight_matmuls(model) if scheme.keep_fp32(name)]
    quantizer = MatMulNBitsQuantizer(model, bits=8, block_size=scheme.block_size,
                                     is_symmetric=scheme.symmetric,
                                     accuracy_level=scheme.accuracy_level,
                                     nodes_to_exclude=kept)
    quantizer.process()
    quantized: onnx.ModelProto = quantizer.model.model
    quantized.ir_version = min(quantized.ir_version, model.ir_version)
    for node in quantized.graph.node:
        if node.op_type == "MatMulNBits" and scheme.fp32_compute(node.name):
            for attribute in node.attribute:
                if attribute.name == "accuracy_level":
                    attribute.i = 1
    onnx.save(quantized, str(out))
    return out


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def probe_texts() -> list[str]:
    words = " ".join(heldout_texts()).split()
    rng = random.Random(7)
    long = [" ".join(rng.choices(words, k=rng.randint(60, 110))) for _ in range(6)]
    return [*SHORT_TEXTS, *heldout_texts(), *long]


def worst_row(runner: OnnxRunner, engine: Engine, texts: list[str],
              expected: np.ndarray) -> tuple[float, str]:
    got = np.concatenate([runner.embed(engine.tokenize([text])) for text in texts])
    cosines = cosine_rows(got, expected)
    return float(cosines.min()), texts[int(cosines.argmin())]


def print_speeds(runners: dict[str, OnnxRunner], engine: Engine, rounds: int,
                 speed_texts: int, width: int) -> None:
    """Each runner's raw session time on the server's batches of mixed texts, against fp32."""
    batches = [tokens for _, tokens in server_batches(engine, make_texts(speed_texts, seed=1))]

    def timed(runner: OnnxRunner) -> Callable[[], None]:
        def run() -> None:
            for batch in batches:
                runner.embed(batch)
        return run

    medians, _ = interleaved_medians({k: timed(r) for k, r in runners.items()}, rounds)
    for label, seconds in medians.items():
        print(f"{label:{width}} {seconds:7.2f} s  {medians['fp32'] / seconds:.2f}x fp32")


def schemes(names: list[str]) -> dict[str, Scheme]:
    """The variants worth comparing, by the node names of our graph."""
    def part(*words: str) -> Callable[[str], bool]:
        return lambda name: any(word in name for word in words)

    first, last = names[:6], names[-6:]
    value = part("self.value")
    late_value = part("layer_4.attention.self.value", "layer_5.attention.self.value")
    top4 = part("layer_5.attention.self.value", "layer_4.intermediate",
                "layer_4.attention.self.value", "layer_3.output")
    return {
        "block 32 sym level 4 (served)": Scheme(),
        "block 16 sym level 4": Scheme(block_size=16),
        "block 64 sym level 4": Scheme(block_size=64),
        "block 128 sym level 4": Scheme(block_size=128),
        "block 32 asym level 4": Scheme(symmetric=False),
        "block 16 asym level 4": Scheme(block_size=16, symmetric=False),
        "block 32 sym level 1 (fp32 compute)": Scheme(accuracy_level=1),
        "block 128 sym level 1": Scheme(block_size=128, accuracy_level=1),
        "block 32 sym level 2 (fp16 compute)": Scheme(accuracy_level=2),
        "block 32, first layer fp32": Scheme(keep_fp32=lambda n: n in first),
        "block 32, last layer fp32": Scheme(keep_fp32=lambda n: n in last),
        "block 32, first+last layer fp32": Scheme(keep_fp32=lambda n: n in first + last),
        "block 32, attention output fp32": Scheme(keep_fp32=part("attention/output")),
        "block 32, FFN output fp32": Scheme(keep_fp32=lambda n: "output" in n
                                             and "attention" not in n),
        "block 32, value projections fp32": Scheme(keep_fp32=value),
        "block 32, value projections level 1": Scheme(fp32_compute=value),
        "block 32, layers 4-5 value fp32": Scheme(keep_fp32=late_value),
        "block 32, 4 most sensitive fp32": Scheme(keep_fp32=top4),
        "block 32, 4 most sensitive level 1": Scheme(fp32_compute=top4),
        "block 16, value projections level 1": Scheme(block_size=16, fp32_compute=value),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--schemes", action="store_true")
    parser.add_argument("--sensitivity", action="store_true")
    parser.add_argument("--only", nargs="*", help="scheme names to run (substring match)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--speed-texts", type=int, default=300)
    args = parser.parse_args()
    logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
    work = scratch_dir("int8-sensitivity")
    engine = Engine.load(EngineOptions(graph_tmp_dir=work / "graphs", max_seq_len=128,
                                       pooling=PoolingSpec(layers=(-1,)),
                                       intra_op_threads=THREADS))
    fp32 = engine.graph.path
    names = weight_matmuls(onnx.load(str(fp32)))
    texts = probe_texts()
    expected = np.concatenate([engine.embed(engine.tokenize([t])) for t in texts])
    print(f"{len(names)} weight MatMuls; {len(texts)} probe texts; worst cosine to fp32")
    variants: dict[str, Scheme] = schemes(names) if args.schemes else {}
    if args.only:
        variants = {k: v for k, v in variants.items() if any(o in k for o in args.only)}
    if args.sensitivity:
        for name in names:
            variants[f"all but {name}"] = Scheme(keep_fp32=lambda n, kept=name: n == kept)
    runners = {"fp32": engine.runner}
    for index, (label, scheme) in enumerate(variants.items()):
        graph = quantize(fp32, work / f"variant-{index}.onnx", scheme)
        runner = OnnxRunner(graph, device="cpu", intra_op_threads=THREADS)
        worst, text = worst_row(runner, engine, texts, expected)
        print(f"{label:55} worst {worst:.5f} ({text[:20]!r})", flush=True)
        if not args.sensitivity:
            runners[label] = runner
    if len(runners) > 1 and args.rounds:
        print_speeds(runners, engine, args.rounds, args.speed_texts, width=55)

if __name__ == "__main__":
    main()
