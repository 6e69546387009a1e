"""The benchmark scripts run, end to end, on a clean checkout: their small modes, in CI.

They start real servers and real transformers; the figures they print are checked
for form and for correctness (int8's cosine, the server's vectors against the raw
session's), never for speed: timings belong in their output, not in assertions.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import scratch

from bert_serving.server.pipeline import internal_endpoints

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
OURS = (scratch.PREFIX, internal_endpoints.DIRECTORY_PREFIX)
"""How a script's scratch directories and its servers' socket directories are named."""
NUMBER = r"[0-9]+(?:\.[0-9]+)?"


def run_script(name: str, *args: str) -> str:
    """The script's output. It must leave none of its directories in the temp dir (its
    graphs and models are 30-170 MB a run: each CI run once leaked about 400 MB), nor
    its servers theirs; torch's and other libraries' small caches are not ours."""
    with tempfile.TemporaryDirectory() as temp:
        done = subprocess.run([sys.executable, str(SCRIPTS / name), *args],
                              capture_output=True, text=True, timeout=900,
                              env={**os.environ, "TMPDIR": temp})
        assert done.returncode == 0, done.stdout + done.stderr
        left = sorted(path.name for path in Path(temp).iterdir()
                      if path.name.startswith(OURS))
    assert left == [], f"{name} left {left} in its temp dir"
    return done.stdout


def test_benchmark_compare_prints_every_contender_and_the_accuracy_figures() -> None:
    out = run_script("benchmark_compare.py", "--texts", "48", "--rounds", "1")
    for name in ("transformers (torch CPU)", "raw onnxruntime fp32",
                 "bert-serving fp32 (server)", "bert-serving int8 (server)"):
        assert re.search(rf"^{re.escape(name)} +{NUMBER} +{NUMBER} +{NUMBER}x$", out, re.M), out
    assert re.search(rf"server overhead over the raw session: [+-]{NUMBER}%", out), out
    cosine = re.search(rf"int8 vs fp32 cosine per row: min ({NUMBER})", out)
    assert cosine and float(cosine.group(1)) >= 0.99, out
    gap = re.search(r"server fp32 vs raw session: max abs difference (\S+)", out)
    assert gap and float(gap.group(1)) <= 1e-5, out


def test_benchmark_gpu_dry_run_on_cpu_covers_every_path() -> None:
    """Every GPU contender built and run on the CPU, the GPU's fp16 fused graph included,
    and each one's vectors within cosine 0.999 of transformers fp32 (the script exits 1
    otherwise; the figures are checked here too, so a silent skip cannot pass)."""
    out = run_script("benchmark_gpu.py", "--dry-run")
    assert "onnxruntime 1." in out.splitlines()[0], out
    assert re.search(r"^seq 32: graph fp16 on CPUExecutionProvider; bert-serving ready: .*"
                     r"model=\S+bert-base ", out, re.M), out
    names = ("onnxruntime raw", "onnxruntime IOBinding", "bert-serving server", "transformers")
    for batch in (1, 8):
        for name in names:
            row = rf"^ +32 +{batch} {re.escape(name)} +{NUMBER} +{NUMBER} +{NUMBER}x$"
            assert re.search(row, out, re.M), out
        checked = re.search(rf"^ +32 +{batch} worst row cosine to transformers fp32: (.*)$",
                            out, re.M)
        assert checked, out
        cosines = dict(re.findall(rf"([a-zA-Z -]+?) ({NUMBER})(?:, |$)", checked.group(1)))
        assert sorted(cosines) == sorted(names), checked.group(1)
        assert all(float(cosine) >= 0.999 for cosine in cosines.values()), checked.group(1)
    assert re.search(rf"seq 32: single-sentence latency through the server p50 {NUMBER} ms",
                     out), out


def test_int8_rowwise_probe_builds_row_independent_int8_graphs() -> None:
    """The probe behind docs/benchmarks.md's per-row int8 figures keeps running, and its
    graphs are what it says: one activation scale per token row, so a text alone and
    inside a batch of all the probe texts agree to 1e-6 (a per-tensor scale gives ~0.98),
    and they compute the same vectors as fp32 to within int8's rounding."""
    out = run_script("int8_rowwise_probe.py", "--quick")
    rows = re.findall(rf"^(per row.*?|MatMulNBits.*?) +worst ({NUMBER}) .* alone vs batched "
                      rf"({NUMBER})$", out, re.M)
    assert [row[0] for row in rows] == [
        "MatMulNBits block 32, level 1 (served -int8)", "per row", "per row, smoothed 0.5"], out
    for _, worst, alone_vs_batched in rows:
        assert float(alone_vs_batched) >= 0.999999, out
        assert 0.9 <= float(worst) <= 1.0, out


def test_benchmark_native_view_times_both_graphs_and_their_1_10_columns_agree() -> None:
    out = run_script("benchmark_native_view.py", "--texts", "64", "--rounds", "1")
    assert re.search(rf"cost of the native view to the 1.10 path: [+-]{NUMBER}% time", out), out
    assert "encoder layers run: 5 vs 6" in out, out
    gap = re.search(r"1.10 columns, shared graph vs alone: max abs difference (\S+)", out)
    assert gap and float(gap.group(1)) <= 1e-5, out


def test_benchmark_sparse_replies_counts_both_replies_and_they_agree() -> None:
    out = run_script("benchmark_sparse_replies.py", "--texts", "8", "--batch", "4",
                     "--rounds", "1", "--max-seq-len", "25", "--worker-batch", "4")
    sizes = {mode: float(size) for mode, size in re.findall(
        rf"^(dense|compact) +({NUMBER}) bytes/text on the wire +peak RSS: server +{NUMBER} MiB, "
        rf"worker +{NUMBER} MiB$", out, re.M)}
    assert sizes.keys() == {"dense", "compact"}, out
    assert sizes["dense"] > 30522 * 4 and sizes["compact"] < sizes["dense"] / 20, out
    assert "compact replies equal the dense rows: True" in out, out
    assert len(re.findall(rf"^reply path, .* {NUMBER} MiB allocated at peak$", out, re.M)) == 4
