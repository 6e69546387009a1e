"""What the native view costs the 1.10 protocol's path: one graph pooling both, or one pooling.

A plain start with -http_port on a sentence-transformers folder (the default MiniLM)
builds one graph whose rows are [layer -2 mean | the model's own embedding]: the
encoder runs once for both, but to the last layer, where layer -2's mean alone
would stop one layer short. This times the two graphs on the same length-sorted
batches (raw sessions, interleaved rounds, medians) and checks that the 1.10
columns are the same vectors either way.

Usage: python scripts/benchmark_native_view.py [--texts 1500] [--rounds 5] [--max-seq-len 25]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests"), str(Path(__file__).parent)]
from benchmark_engine import engine_runner, make_texts  # noqa: E402
from scratch import scratch_dir  # noqa: E402
from timing import interleaved_medians  # noqa: E402

from bert_serving.server.config import parse_server_config  # noqa: E402
from bert_serving.server.model.engine import Engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-seq-len", type=int, default=25,
                        help="25 is the server's default; 128 weighs the encoder more")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cache = str(scratch_dir("native"))
    flags = ["-http_port", "1", "-max_seq_len", str(args.max_seq_len), "-graph_tmp_dir", cache]
    both_options = dataclasses.replace(parse_server_config(flags).engine,
                                       intra_op_threads=args.threads)
    assert both_options.native_view is not None, "the default model declares its own pooling"
    one_options = dataclasses.replace(both_options, native_view=None)
    both, one = Engine.load(both_options), Engine.load(one_options)
    texts = make_texts(args.texts)
    alone_name, shared_name = ("layer -2 mean alone (no -http_port)",
                               "both poolings, one graph (-http_port)")
    contenders = {alone_name: engine_runner(one, texts), shared_name: engine_runner(both, texts)}
    medians, outputs = interleaved_medians(contenders, args.rounds)
    metadata = one.graph.metadata
    width, layers = metadata.output_width, metadata.num_hidden_layers
    alone, shared = outputs[alone_name], outputs[shared_name]
    print(f"{len(texts)} texts, -max_seq_len {args.max_seq_len}, {args.threads} threads, "
          f"median of {args.rounds} interleaved rounds, encoder layers run: "
          f"{metadata.pooling.deepest_layer(layers)} vs {layers}")
    for name, median in medians.items():
        print(f"{name:40} {len(texts) / median:9.1f} sent/s")
    ratio = medians[shared_name] / medians[alone_name]
    print(f"cost of the native view to the 1.10 path: {100 * (ratio - 1):+.1f}% time")
    gap = float(np.abs(shared[:, :width] - alone).max())
    print(f"1.10 columns, shared graph vs alone: max abs difference {gap:.2e}")


if __name__ == "__main__":
    main()
