"""What the server's pipeline costs per text when the forward pass is nearly free, as on a GPU.

On the MiniLM on a CPU the forward pass is ~97% of the server's time, so the
pipeline around it (client, ventilator, worker, sink, tokenizing twice) hides.
A GPU makes the forward pass ~100x cheaper, and then that pipeline is what caps
tokens/s. This script measures it on any machine: a 1-layer, hidden-64 random
BERT with BERT-base's vocabulary, texts of `--seq` tokens, and

- the raw onnxruntime session on batches tokenized beforehand (the engine alone);
- tokenize + session in this process, batches of 256 (what serving must do once per text);
- the whole server with 1 and 2 workers, requests of 256 texts sent back to back;

interleaved, medians printed, with the server's share of the in-process rate.

Usage: python scripts/benchmark_pipeline.py [--texts 4096] [--seq 128] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

from benchmark_gpu import make_texts  # noqa: E402
from make_random_bert import write_random_bert  # noqa: E402
from scratch import scratch_dir  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from timing import interleaved_medians  # noqa: E402

from bert_serving.client import BertClient  # noqa: E402
from bert_serving.server.model.engine import Engine, EngineOptions  # noqa: E402

REQUEST_TEXTS = 256
Runner = Callable[[], object]


def in_process_runners(engine: Engine, texts: list[str]) -> dict[str, Runner]:
    chunks = [texts[i:i + REQUEST_TEXTS] for i in range(0, len(texts), REQUEST_TEXTS)]
    batches = [engine.tokenize(chunk) for chunk in chunks]
    return {
        "raw session (pre-tokenized)": lambda: [engine.embed(batch) for batch in batches],
        "tokenize + session": lambda: [engine.encode(chunk) for chunk in chunks],
    }


def server_runner(client: BertClient, texts: list[str]) -> Runner:
    def run() -> None:
        for i in range(0, len(texts), REQUEST_TEXTS):
            client.encode(texts[i:i + REQUEST_TEXTS], blocking=False)
        client.fetch_all()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=4096)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = scratch_dir("pipeline")
    model = write_random_bert(work / "near-free", layers=1, hidden=64, heads=1, inner=128)
    cache = work / "cache"
    engine = Engine.load(EngineOptions(model_dir=model, graph_tmp_dir=cache,
                                       max_seq_len=args.seq, intra_op_threads=1))
    texts = make_texts(args.texts, args.seq, seed=2)
    real_tokens = engine.tokenize(texts).num_real_tokens
    runners = in_process_runners(engine, texts)
    with ExitStack() as stack:
        for workers in (1, 2):
            flags = ["-model_dir", str(model), "-num_worker", str(workers),
                     "-max_seq_len", str(args.seq)]
            server = stack.enter_context(ServerProcess(flags, cache))
            client = stack.enter_context(BertClient(
                port=server.port, port_out=server.port_out, check_length=False,
                timeout=600_000))
            runners[f"server, {workers} worker(s)"] = server_runner(client, texts)
        medians, _ = interleaved_medians(runners, args.rounds)
    in_process = medians["tokenize + session"]
    print(f"{len(texts)} texts of {args.seq} tokens ({real_tokens} real), near-free model "
          f"(1 layer, hidden 64), requests of {REQUEST_TEXTS}, median of {args.rounds} rounds")
    print(f"{'contender':30} {'sent/s':>9} {'M tokens/s':>11} {'vs tokenize + session':>22}")
    for name, median in medians.items():
        print(f"{name:30} {len(texts) / median:9.0f} {real_tokens / median / 1e6:11.2f} "
              f"{in_process / median:21.2f}x")


if __name__ == "__main__":
    main()
