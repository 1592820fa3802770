"""Hostile inputs: peak memory of the dashboard's server while decompression bombs, an overlong
cell and a large CSV go through the Upload page, and of ``embex ingest`` reading the bombs.

    .venv/bin/python benchmarks/bench_hostile.py [--csv-mb 190] [--files csv] [--tmp DIR]

Writes, into a temporary directory (never the repo; under --tmp when given):

  rows bomb       Parquet, 6M copies of one 100-character text, dictionary-encoded, zstd
  text bomb       Parquet, 20,000 copies of one 2M-character text (40 GB decoded)
  size bomb       Parquet, 200,000 copies of one 20,000-character text (4 GB decoded)
  20 MB cell      CSV, three rows, one of them 20 MB
  large CSV       CSV of --csv-mb MiB: AG News titles (as in bench_ingest.py) and a label

"upload page": each file goes through the real dashboard, as a user's would. A fresh server
(``embex serve``, its own store) is started; headless Chromium opens Upload, and once the page
has drawn, the server's RSS is read and its peak is reset (``/proc/PID/clear_refs``). The file is
dropped on the uploader; the bench waits for the preview or the refusal, then clicks "Save
corpus" and waits for "Saved". "peak" is the server's VmHWM over all of that, "+ over start" is
that peak less the RSS before the drop, "held" what the server still holds after the save (the
upload stays in the file uploader), and "ratio" is "+ over start" over the data kept: the
characters of the texts and metadata values stored (counted from the file with stream_corpus,
and checked against the stored corpus's size). The preview's own peak is shown too.

"stream": the bombs also as ``embex ingest`` reads them (``stream_corpus``, iterated in a fresh
subprocess, nothing stored); its VmHWM and RSS before reading. The large CSV also as ``embex
ingest`` stores it (``Store.add_corpus_stream`` into a fresh store, in a fresh subprocess), the
reference for what the store itself costs: DuckDB keeps the blocks it writes in its buffer
pool, up to ``EMBEX_DUCKDB_MEMORY`` (1GB by default; the server started here inherits it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import rss_mib  # noqa: E402

FILES = ("rows", "text", "size", "cell", "csv")


def parquet_bomb(path: Path, n_rows: int, text_chars: int) -> int:
    """Write the bomb; return its decompressed size in bytes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    col = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n_rows, dtype=np.int32)), pa.array(["x" * text_chars])
    )
    pq.write_table(pa.table({"text": col}), path, use_dictionary=True, compression="zstd")
    return n_rows * text_chars


def cell_csv(path: Path) -> int:
    path.write_text("text,label\nshort,a\n" + "y" * 20_000_000 + ",b\nlast,c\n", encoding="utf-8")
    return path.stat().st_size


def large_csv(path: Path, mib: float) -> int:
    import csv

    from bench_ingest import titles

    texts, labels = titles()
    target, i = int(mib * 2**20), 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        while f.tell() < target:
            for _ in range(10_000):
                j = i % len(texts)
                w.writerow([f"{texts[j]} #{i + 1}", labels[j]])
                i += 1
    return path.stat().st_size


def kept_chars(path: Path) -> tuple[int, int]:
    """``(documents, characters)`` that a read of ``path`` keeps: the texts and the metadata values
    that are strings, counted a chunk at a time."""
    from analytics.corpus import stream_corpus

    docs = chars = 0
    for chunk in stream_corpus(path):
        docs += len(chunk.texts)
        chars += sum(map(len, chunk.texts)) + sum(
            len(v) for m in chunk.metadata for v in m.values() if isinstance(v, str)
        )
    return docs, chars


def child(mode: str, path: str) -> None:
    """Read ``path`` as ``embex ingest`` does (``stream_corpus``): only iterated ("stream"), or
    stored in a fresh store beside it ("ingest"); print the outcome and the memory."""
    import pyarrow  # noqa: F401  (loaded in the server already: not counted as the read's)

    from analytics.corpus import CorpusError, stream_corpus
    from analytics.store import Store

    store = None
    if mode == "ingest":
        store = Store(Path(path).with_suffix(".ingest.duckdb"))
    rss_before = rss_mib("VmRSS")
    rows = 0
    try:
        if store is None:
            for chunk in stream_corpus(path):
                rows += len(chunk.texts)
            outcome = f"loaded {rows:,} rows"
        else:
            outcome = f"saved {store.add_corpus_stream('ingest', stream_corpus(path)).n_docs:,} rows"
    except CorpusError as exc:
        outcome = f"refused: {exc}"
    peak = rss_mib("VmHWM")
    if store is not None:
        store.close()
        for leftover in Path(path).parent.glob("*.ingest.duckdb*"):
            leftover.unlink()
    print(json.dumps({"outcome": outcome, "before": rss_before, "peak": peak}))


def _status(pid: int, field: str) -> float:
    """A field of /proc/PID/status in MiB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def _reset_peak(pid: int) -> None:
    """Reset the process's VmHWM to its current RSS (Linux: ``echo 5 > /proc/PID/clear_refs``)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def _serve(store: Path, timeout: float = 120):
    """``embex serve`` on a free localhost port with its own store; (process, url) once it answers.
    ``embex serve`` execs the dashboard's server in its own process, so the pid is the server's."""
    import socket

    from analytics.screenshot import serving

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEX_SAMPLE": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "analytics.cli", "serve", "--store", str(store), "--port", str(port)]
        + ["--address", "127.0.0.1"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    if not serving(url, proc, timeout=timeout):
        proc.kill()
        raise RuntimeError(f"the dashboard did not come up on {url}")
    return proc, url


def through_page(path: Path, tmp: Path, browser) -> dict:
    """Drop ``path`` on the Upload page of a fresh server, save it if it is previewed; the server's
    memory before, at the preview, at its peak and after."""
    from analytics.screenshot import wait_for_app
    from analytics.store import Store

    store = tmp / f"{path.stem}.duckdb"
    proc, url = _serve(store)
    pid = proc.pid
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.goto(f"{url}/upload")
        wait_for_app(page, 180_000)
        page.wait_for_timeout(1000)
        before = _status(pid, "VmRSS")
        _reset_peak(pid)
        t0 = time.perf_counter()
        page.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(str(path))
        error, preview = page.get_by_test_id("stAlertContentError"), page.get_by_text("metadata columns:")
        error.or_(preview).first.wait_for(timeout=600_000)
        wait_for_app(page, 600_000)
        t_preview = time.perf_counter() - t0
        preview_peak = _status(pid, "VmHWM")
        if error.count():
            outcome = "refused: " + error.first.inner_text().strip()
            t_save = None
        else:
            t1 = time.perf_counter()
            page.get_by_role("button", name="Save corpus").click()
            page.get_by_test_id("stAlertContentError").or_(page.get_by_text("Saved ")).first.wait_for(
                timeout=600_000
            )
            wait_for_app(page, 600_000)
            t_save = time.perf_counter() - t1
            outcome = "saved" if page.get_by_text("Saved ").count() else "save failed"
        peak, held = _status(pid, "VmHWM"), _status(pid, "VmRSS")
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    stored = None
    if outcome == "saved":
        with Store(store, read_only=True) as s:
            stored = s.corpus_info(path.stem).n_docs
    store.unlink(missing_ok=True)
    return dict(
        outcome=outcome,
        before=before,
        preview_peak=preview_peak,
        peak=peak,
        held=held,
        stored=stored,
        t_preview=t_preview,
        t_save=t_save,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv-mb", type=float, default=190, help="size of the large CSV in MiB (190)")
    ap.add_argument("--files", nargs="+", choices=FILES, default=list(FILES), help="which files to run")
    ap.add_argument("--tmp", type=Path, default=None, help="where to write the files (a temp dir)")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    from _common import machine
    from playwright.sync_api import sync_playwright

    from analytics.screenshot import CHROMIUM_ARGS, SYSTEM_CHROMIUM

    print(f"machine: {machine()}\n")
    print(
        "| file | read as | on disk | decompressed | outcome | peak RSS (MiB) | + over start (MiB) "
        "| of which preview (MiB) | held after (MiB) | ratio | time (s) |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    if args.tmp:
        args.tmp.mkdir(parents=True, exist_ok=True)
    files = {
        "rows": ("rows bomb", "rows_bomb.parquet", lambda p: parquet_bomb(p, 6_000_000, 100), True),
        "text": ("text bomb", "text_bomb.parquet", lambda p: parquet_bomb(p, 20_000, 2_000_000), True),
        "size": ("size bomb", "size_bomb.parquet", lambda p: parquet_bomb(p, 200_000, 20_000), True),
        "cell": ("20 MB cell", "cell.csv", cell_csv, False),
        "csv": ("large CSV", "large.csv", lambda p: large_csv(p, args.csv_mb), False),
    }
    with (
        tempfile.TemporaryDirectory(prefix="bench_hostile_", dir=args.tmp) as tmp,
        sync_playwright() as pw,
    ):
        tmp = Path(tmp)
        browser = pw.chromium.launch(executable_path=SYSTEM_CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for key in args.files:
                label, filename, make, stream_too = files[key]
                path = tmp / filename
                decompressed = make(path)
                r = through_page(path, tmp, browser)
                ratio = "-"
                if r["outcome"] == "saved":
                    docs, kept = kept_chars(path)
                    if docs != r["stored"]:
                        r["outcome"] = f"saved {r['stored']:,} of {docs:,} documents"
                    else:
                        r["outcome"] = f"saved {docs:,} rows"
                    ratio = f"{(r['peak'] - r['before']) * 2**20 / kept:.2f}"
                took = f"{r['t_preview']:.0f}" + (f" + {r['t_save']:.0f}" if r["t_save"] is not None else "")
                _row(
                    label,
                    "upload page (server)",
                    path,
                    decompressed,
                    r["outcome"],
                    r["peak"],
                    r["peak"] - r["before"],
                    f"{r['preview_peak'] - r['before']:,.0f}",
                    f"{r['held'] - r['before']:,.0f}",
                    ratio,
                    took,
                )
                if stream_too or key == "csv":
                    mode = "stream" if stream_too else "ingest"
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True
                    )
                    if out.returncode:
                        s = {"outcome": f"crashed ({out.stderr.strip().splitlines()[-1]})"}
                        s.update(before=float("nan"), peak=float("nan"))
                    else:
                        s = json.loads(out.stdout)
                    ratio = "-"
                    if s["outcome"].startswith("saved"):
                        ratio = f"{(s['peak'] - s['before']) * 2**20 / kept_chars(path)[1]:.2f}"
                    how = "stream_corpus (embex ingest)" if stream_too else "embex ingest (stored)"
                    _row(
                        label,
                        how,
                        path,
                        decompressed,
                        s["outcome"],
                        s["peak"],
                        s["peak"] - s["before"],
                        "-",
                        "-",
                        ratio,
                        "-",
                    )
                path.unlink()
        finally:
            browser.close()


def _row(label, how, path, decompressed, outcome, peak, grew, preview, held, ratio, took) -> None:
    outcome = outcome if len(outcome) < 90 else outcome[:87] + "..."
    outcome = " ".join(outcome.split()).replace("|", "/")
    print(
        f"| {label} | {how} | {_size(path.stat().st_size)} | {_size(decompressed)} | {outcome} | "
        f"{peak:,.0f} | {grew:,.0f} | {preview} | {held} | {ratio} | {took} |",
        flush=True,
    )


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} B"


if __name__ == "__main__":
    main()
