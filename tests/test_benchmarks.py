"""The GPU scripts run on a lent machine whose image lacks DuckDB, rarely and with rationed
time: a signature changed under them is found there, too late. These run the same code paths
on the CPU (and the Parquet sink the GPU image uses), so CI finds it first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _run(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout


def test_gpu_check_runs_every_check_on_the_cpu():
    out = _run("benchmarks/gpu_check.py", "--device", "cpu", "--texts", "60")
    lines = [line for line in out.splitlines() if line.startswith(("ok", "FAIL"))]
    assert len(lines) == 5 and all(line.startswith("ok") for line in lines), out


def test_bench_embed_runs_through_the_parquet_sink_of_the_gpu_image():
    out = _run(
        "benchmarks/bench_embed.py",
        *("--texts", "60", "--repeat", "1", "--sink", "parquet", "--device", "cpu"),
        *("--precisions", "float32"),
    )
    assert "store: Parquet shards" in out
    row = next(line for line in out.splitlines() if line.startswith("| ours, float32"))
    assert "1.000000 / 1.000000" in row, row  # the shards read back the same vectors as encode
