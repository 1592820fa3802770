"""The README's examples run: every Python block, in order, in one namespace, and every `embex`
line of its command-line blocks, against the real model and a fresh store. A renamed function,
a changed flag or a wrong path in the README fails here.

The examples name input files a reader would have (``reviews.jsonl``, ``world.csv``...): the
test writes them from the bundled sample. A few lines need what a test machine has not (a GPU,
a Ray cluster, a running dashboard); they are listed below with the reason, and the list itself
is checked, so it cannot silently grow stale.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")

# fragment of a line or block -> why it does not run here (each is tested elsewhere)
NOT_HERE = {
    "--device cuda": "needs a GPU (CI has none); the CUDA path is checked by benchmarks/gpu_check.py",
    "embex screenshot": "needs a running dashboard; tests/test_export.py shoots a real server",
    "embex serve": "runs a server until stopped; tests/test_jobs_browser.py starts and kills real ones",
    "--engine ray": "needs a Ray cluster at an address; tests/test_distributed.py runs a local one",
    "embed_corpus_ray(": "needs a Ray cluster at address='auto'; tests/test_distributed.py",
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def reason_to_skip(text: str) -> str | None:
    return next((why for frag, why in NOT_HERE.items() if frag in text), None)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, sample_rows):
    """A folder holding the files the README's examples name, made from the sample."""
    d = tmp_path_factory.mktemp("readme")
    (d / "sample_data").symlink_to(ROOT / "sample_data")
    rows = sample_rows
    with open(d / "reviews.jsonl", "w", encoding="utf-8") as f:
        for r in rows[:300]:
            f.write(json.dumps({"text": r["text"], "label": r["label"]}) + "\n")
    for name, label in (("world.csv", "World"), ("sports.csv", "Sports")):
        with open(d / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows([r["text"], r["label"]] for r in rows if r["label"] == label)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": [r["text"] for r in rows[300:600]]}), d / "logs.parquet")
    (d / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t0\t1\nq1\t7\t1\n")
    return d


def test_every_skip_reason_matches_something_in_the_readme():
    for fragment in NOT_HERE:
        assert fragment in README, f"{fragment!r} is no longer in the README; drop it from NOT_HERE"


def test_python_blocks_run(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    namespace: dict = {"__name__": "readme"}
    ran = 0
    for code in blocks("python"):
        if reason_to_skip(code):
            continue
        exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
        ran += 1
    assert ran >= 3
    # what the examples promise, checked on what they produced
    assert namespace["F"].shape[1] == 384 and namespace["result"].p <= 1
    assert namespace["X"].shape == (300, 384)
    assert namespace["proj"].coords.shape == (300, 2)
    assert namespace["hits"].ids.shape == (1, 10)


def test_cli_lines_run(workdir):
    env = {
        **os.environ,
        "EMBEX_STORE": str(workdir / "cli.duckdb"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    lines = [
        ln.strip() for code in blocks("bash") for ln in code.splitlines() if ln.strip().startswith("embex ")
    ]
    assert len(lines) >= 10
    ran = 0
    for line in lines:
        if reason_to_skip(line):
            continue
        args = shlex.split(line, comments=True)[1:]
        out = subprocess.run(
            [sys.executable, "-m", "analytics.cli", *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, f"{line}\n{out.stderr[-2000:]}"
        ran += 1
    assert ran >= 12
    assert (workdir / "report.html").stat().st_size > 10_000
