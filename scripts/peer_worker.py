"""One peer embedding library, loaded once, timed on command: run by benchmark_peers.py.

This file runs inside the peers' own venv (sentence-transformers, infinity-emb,
fastembed, optimum: never bert-serving's dependencies), so it imports nothing from
bert_serving. Protocol on stdin/stdout, one line each way:

    benchmark_peers.py -> worker: "run\\n" (all texts in one call) or "alone N\\n" (each of
                                  the first N texts in a call of its own)
    worker -> benchmark_peers.py: "done\\n" after writing the vectors to --out (.npy)

Usage: python peer_worker.py CONTENDER --model DIR --texts texts.json --out vectors.npy
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["CONTENDERS", "export_onnx"]

BATCH = 32
MAX_SEQ_LEN = 128
Encode = Callable[[list[str]], np.ndarray]


def session_options(threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return options


def export_onnx(model_dir: Path, out: Path, int8: bool) -> None:
    """The folder as optimum exports it: model.onnx (and model_quantized.onnx) at its root.

    int8 is optimum's dynamic quantization with the config for this CPU (what
    sentence-transformers' `export_dynamic_quantized_onnx_model` uses too).
    """
    from optimum.onnxruntime import ORTModelForFeatureExtraction, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig
    from transformers import AutoTokenizer

    model = ORTModelForFeatureExtraction.from_pretrained(str(model_dir), export=True)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out))
    if int8:
        flags = Path("/proc/cpuinfo").read_text()
        config = (AutoQuantizationConfig.avx512_vnni if "avx512_vnni" in flags
                  else AutoQuantizationConfig.avx2)(is_static=False)
        ORTQuantizer.from_pretrained(str(out)).quantize(save_dir=str(out),
                                                        quantization_config=config)


def sentence_transformers_onnx(model_dir: Path, threads: int, int8: bool) -> Encode:
    from sentence_transformers import SentenceTransformer

    file_name = "model_quantized.onnx" if int8 else "model.onnx"
    model = SentenceTransformer(str(model_dir), backend="onnx", device="cpu", model_kwargs={
        "file_name": file_name, "provider": "CPUExecutionProvider",
        "session_options": session_options(threads)})
    model.max_seq_length = MAX_SEQ_LEN

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=BATCH))

    return encode


def infinity_optimum(model_dir: Path, threads: int, int8: bool) -> Encode:
    """infinity's AsyncEmbeddingEngine in process (its batching queue, its optimum engine).

    On CPU infinity picks a `*quantize*` ONNX file when the folder has one: the int8
    folder has both, the fp32 folder only model.onnx.
    """
    from infinity_emb import AsyncEmbeddingEngine, EngineArgs

    os.chdir(model_dir)  # infinity 0.0.78 needs the ONNX file at the folder's root, as "."
    engine = AsyncEmbeddingEngine.from_args(EngineArgs(
        model_name_or_path=".", engine="optimum", device="cpu", pooling_method="mean",
        batch_size=BATCH, model_warmup=False, onnx_do_not_prefer_quantized=not int8))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(engine.astart())

    def encode(texts: list[str]) -> np.ndarray:
        vectors, _ = loop.run_until_complete(engine.embed(sentences=texts))
        return np.asarray(vectors)

    return encode


def fastembed_onnx(model_dir: Path, threads: int, int8: bool) -> Encode:
    from fastembed import TextEmbedding

    model = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", threads=threads,
                          specific_model_path=str(model_dir))

    def encode(texts: list[str]) -> np.ndarray:  # fastembed's default batches of 256
        return np.stack(list(model.embed(texts)))

    return encode


def sentence_transformers_torch(model_dir: Path, threads: int, int8: bool) -> Encode:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = MAX_SEQ_LEN

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.encode(texts, batch_size=BATCH))

    return encode


CONTENDERS: dict[str, Callable[[Path, int, bool], Encode]] = {
    "sentence-transformers-torch": sentence_transformers_torch,
    "sentence-transformers-onnx": sentence_transformers_onnx,
    "infinity-optimum": infinity_optimum,
    "fastembed": fastembed_onnx,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("contender", choices=[*CONTENDERS, "export"])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--texts", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args()
    if args.contender == "export":
        export_onnx(args.model, args.out, args.int8)
        return
    texts = json.loads(args.texts.read_text(encoding="utf-8"))
    out = args.out.resolve()  # infinity changes the working folder
    encode = CONTENDERS[args.contender](args.model.resolve(), args.threads, args.int8)
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command == ["run"]:
            vectors = encode(texts)
        elif len(command) == 2 and command[0] == "alone":
            vectors = np.concatenate([encode([text]) for text in texts[:int(command[1])]])
        else:
            break
        np.save(out, vectors.astype(np.float32))
        print("done", flush=True)


if __name__ == "__main__":
    main()
