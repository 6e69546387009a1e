"""The whole server against what users would otherwise run, on this CPU, in one run.

Contenders, all on the same 1,500 texts of 4-120 words, max_seq_len 128, mean of
hidden_states[-2], 2 threads:

- transformers on torch CPU, length-sorted batches of 32 (what sentence-transformers does);
- the raw onnxruntime session on our fp32 graph, fed the very batches the server's
  scheduler forms, tokenized beforehand (untimed): the floor for the server;
- the whole server, fp32 and int8 (`-cpu -num_worker 1 -max_seq_len 128`), end to end:
  one request of 1,500 texts from BertClient, through ventilator, worker and sink.

Rounds are interleaved so machine drift hits every contender alike; medians and
ratios are printed, plus the server's overhead over the raw session and int8's
per-row cosine to fp32.

Usage: python scripts/benchmark_compare.py [--texts 1500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

from benchmark_engine import make_texts, server_batches, transformers_runner  # noqa: E402
from scratch import scratch_dir  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from timing import interleaved_medians  # noqa: E402

from bert_serving.client import BertClient  # noqa: E402
from bert_serving.server.model.default_model import default_model_dir  # noqa: E402
from bert_serving.server.model.engine import Engine, EngineOptions  # noqa: E402
from bert_serving.server.model.runtime import OnnxRunner  # noqa: E402

MAX_SEQ_LEN = 128
THREADS = 2
Runner = Callable[[], np.ndarray]


def raw_session_runner(engine: Engine, texts: list[str], *, own_runner: bool = False) -> Runner:
    """The graph alone, on the batches the server's scheduler would form: in an onnxruntime
    session of THREADS threads, or (`own_runner`) in the engine's own runner (OpenVINO's)."""
    batches = server_batches(engine, texts)
    runner = engine.runner if own_runner else OnnxRunner(engine.graph.path, device="cpu",
                                                         intra_op_threads=THREADS)

    def run() -> np.ndarray:
        out = np.empty((len(texts), engine.output_width), np.float32)
        for rows, tokens in batches:
            out[rows] = runner.embed(tokens)
        return out

    return run


def server_runner(server: ServerProcess, texts: list[str]) -> Runner:
    client = BertClient(port=server.port, port_out=server.port_out, check_length=False,
                        chunk_size=len(texts), timeout=600_000)  # one request, as a user sends

    def run() -> np.ndarray:
        return client.encode(texts)

    return run


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    texts = make_texts(args.texts, seed=1)
    cache = scratch_dir("compare")
    model_dir = default_model_dir()
    engine = Engine.load(EngineOptions(model_dir=model_dir, graph_tmp_dir=cache,
                                       max_seq_len=MAX_SEQ_LEN, intra_op_threads=THREADS))
    real_tokens = engine.tokenize(texts).num_real_tokens
    flags = ["-num_worker", "1", "-max_seq_len", str(MAX_SEQ_LEN),
             "-intra_op_threads", str(THREADS)]
    with ServerProcess(flags, cache) as fp32, ServerProcess([*flags, "-int8"], cache) as int8:
        contenders: dict[str, Runner] = {
            "transformers (torch CPU)": transformers_runner(model_dir, texts, THREADS),
            "raw onnxruntime fp32": raw_session_runner(engine, texts),
            "bert-serving fp32 (server)": server_runner(fp32, texts),
            "bert-serving int8 (server)": server_runner(int8, texts),
        }
        medians, outputs = interleaved_medians(contenders, args.rounds)
    base = medians["transformers (torch CPU)"]
    print(f"{len(texts)} texts (4-120 words), {real_tokens} real tokens, max_seq_len "
          f"{MAX_SEQ_LEN}, {THREADS} threads, median of {args.rounds} interleaved rounds")
    print(f"{'contender':30} {'sent/s':>8} {'tokens/s':>9} {'vs transformers':>16}")
    for name, median in medians.items():
        print(f"{name:30} {len(texts) / median:8.1f} {real_tokens / median:9.0f} "
              f"{base / median:15.2f}x")
    overhead = medians["bert-serving fp32 (server)"] / medians["raw onnxruntime fp32"] - 1
    print(f"server overhead over the raw session: {overhead * 100:+.1f}%")
    fp32_rows = outputs["bert-serving fp32 (server)"]
    cosine = cosine_rows(outputs["bert-serving int8 (server)"], fp32_rows)
    print(f"int8 vs fp32 cosine per row: min {cosine.min():.4f}, mean {cosine.mean():.4f}")
    raw_gap = np.abs(outputs["raw onnxruntime fp32"] - fp32_rows).max()
    print(f"server fp32 vs raw session: max abs difference {raw_gap:.2e}")


if __name__ == "__main__":
    main()
