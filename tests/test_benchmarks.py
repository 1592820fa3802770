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


@pytest.mark.skipif(
    not (ROOT.parent / "shared" / "data" / "clinc150" / "data_full.json").exists(),
    reason="the walkthrough reads CLINC150 from ../shared/data, which this checkout does not have beside it",
)
def test_walkthrough_quick_takes_the_analysts_path_and_counts_it(tmp_path):
    """benchmarks/walkthrough.py --quick (issue 14): a real `embex serve` on a fresh store and
    Chromium take the path upload -> embed -> map -> selection -> shift -> outliers -> report ->
    PNG on 170 CLINC150 queries; every step is counted and timed, and what each shows is right."""
    out = subprocess.run(
        [
            sys.executable,
            "benchmarks/walkthrough.py",
            "--quick",
            *("--out", str(tmp_path / "out"), "--tmp", str(tmp_path / "tmp"), "--port", "8774"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-4000:]
    rows = [line.split(" | ") for line in out.stdout.splitlines() if line.startswith("| ")][1:]
    steps = {r[0][2:]: (int(r[1]), float(r[-1].rstrip(" |"))) for r in rows if not r[0].startswith("| **")}
    assert list(steps) == [
        "Upload", "Embed", "Map", "Selection (oos bar)", "Shift test", "Outliers", "Report", "PNG of the map",
    ]  # fmt: skip
    assert all(actions >= 1 and seconds > 0 for actions, seconds in steps.values()), steps
    total = next(r for r in rows if r[0].startswith("| **total"))
    assert int(total[1].strip("*")) == sum(a for a, _ in steps.values())
    checks = dict(
        line.strip().split(": ", 1)
        for line in out.stdout.split("\nchecks:\n")[1].split("\n\n")[0].splitlines()
        if ": " in line
    )
    assert checks["embedded"] == "170 of 170 rows" and checks["selected"] == "20"
    assert float(checks["Q"]) < 0.5 and float(checks["p (permutation)"]) <= 0.05  # oos vs in-scope: a shift
    assert checks["report name ok"] == checks["report covers the selection"] == checks["png ok"] == "True"
    assert checks["png name"] == "clinc150_walkthrough-selection-pca-map.png"
    assert len(list((tmp_path / "out").glob("0[1-8]-*.png"))) == 8
