"""Serving does not import conversion: a worker, the config and `--help` load neither onnx
nor `bert_serving.server.convert` (nor, through it, any checkpoint reader).

Each check runs in a fresh interpreter, since this test process has long imported
everything. A control check shows the probe sees conversion when it is imported.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bert_serving.server.config import EngineOptions
from bert_serving.server.model.graph_contract import GraphMetadata, PreparedGraph
from bert_serving.server.model.padding import Padder
from bert_serving.server.model.pooling import PoolingSpec
from bert_serving.server.pipeline.worker import WorkerSpec

WORKER_MODULE = "bert_serving.server.pipeline.worker"
"""Where the worker process's code lives (the spawn target's module)."""
SERVING_MODULES = [WORKER_MODULE, "bert_serving.server.cli", "bert_serving.server.config",
                   "bert_serving.server.model.engine", "bert_serving.server.model.runtime"]
CONVERSION = ("onnx", "bert_serving.server.convert")

TOKENIZING = ("tokenizers", "bert_serving.server.model.tokenization",
              "bert_serving.server.model.text_normalizer", "bert_serving.server.model.wordpiece")
"""What a tokenizer brings (the Rust library, WordPiece's Unicode tables); a Padder needs none."""

_PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {roots!r}
                        or m.startswith({prefixes!r}))))
"""


def modules_loaded_by(body: str, names: tuple[str, ...]) -> list[str]:
    """The modules named by `names` (top-level packages or dotted prefixes) that a fresh
    interpreter holds after running `body`."""
    roots = [name for name in names if "." not in name]
    prefixes = tuple(name for name in names if "." in name)
    probe = _PROBE.format(body=body, roots=roots, prefixes=prefixes)
    done = subprocess.run([sys.executable, "-c", probe],
                          capture_output=True, text=True, timeout=120, check=True)
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def conversion_modules_loaded_by(body: str) -> list[str]:
    """The onnx and convert modules a fresh interpreter holds after running `body`."""
    return modules_loaded_by(body, CONVERSION)


def test_the_probe_sees_conversion_when_it_is_imported() -> None:
    loaded = conversion_modules_loaded_by("import bert_serving.server.convert.prepare")
    assert set(CONVERSION) <= set(loaded)


@pytest.mark.parametrize("module", SERVING_MODULES)
def test_serving_modules_do_not_import_conversion(module: str) -> None:
    assert conversion_modules_loaded_by(f"import {module}") == []


def test_start_help_does_not_import_conversion() -> None:
    body = ("from bert_serving.commands import start\n"
            "try:\n    start(['--help'])\nexcept SystemExit as stop:\n    assert stop.code == 0")
    assert conversion_modules_loaded_by(body) == []


def test_a_worker_spec_unpickles_without_conversion(tmp_path: Path) -> None:
    """What a spawned worker receives (graph, options, padder) brings no conversion with it."""
    metadata = GraphMetadata(PoolingSpec(), 384, 6, 512, 384)
    spec = WorkerSpec(
        worker_id=b"worker-0-0", engine=EngineOptions(),
        graph=PreparedGraph(tmp_path / "g.onnx", metadata, tmp_path / "vocab.txt", False),
        padder=Padder(0, 25), ventilator_address="tcp://127.0.0.1:1",
        sink_address="tcp://127.0.0.1:2", prefetch_size=2, max_batch_tokens=4096,
        max_batch_size=256, fp16_replies=False, show_tokens=False,
    )
    pickled = tmp_path / "spec.pickle"
    pickled.write_bytes(pickle.dumps(spec))
    body = (f"import pickle, pathlib\nspec = pickle.loads(pathlib.Path({str(pickled)!r})"
            ".read_bytes())\nassert spec.padder.max_len == 25")
    assert conversion_modules_loaded_by(body) == []


def test_the_probe_sees_a_tokenizer_when_it_is_imported() -> None:
    loaded = modules_loaded_by("import bert_serving.server.model.wordpiece", TOKENIZING)
    assert set(TOKENIZING) <= set(loaded)


def test_a_padder_unpickles_without_a_tokenizer(tmp_path: Path) -> None:
    """A worker's padder (pad id, max_len, id -> token table) loads no tokenizer code."""
    pickled = tmp_path / "padder.pickle"
    pickled.write_bytes(pickle.dumps(Padder(0, 25, np.array(["[PAD]", "a"], dtype=object))))
    body = (f"import pickle, pathlib\npadder = pickle.loads(pathlib.Path({str(pickled)!r})"
            ".read_bytes())\nassert padder.max_len == 25")
    assert modules_loaded_by(body, TOKENIZING) == []
