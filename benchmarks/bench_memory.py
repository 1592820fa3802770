"""Peak resident memory of the dashboard server with 1,000,000 x 384 float32 vectors imported.

    .venv/bin/python benchmarks/bench_memory.py                       # this checkout
    .venv/bin/python benchmarks/bench_memory.py --root /path/to/other/checkout --label before

Builds (once) a store under /tmp/bench_memory/ holding one corpus of 1,000,000 short texts
(CLINC150 utterances from ../shared/data, each made unique by a row number, with their intent
and split as metadata) and 1,000,000 random unit vectors imported for the bundled model's id.
Each run copies that pristine store (so no run finds a map cached by an earlier one), starts
the real server from ``--root`` on port 8611, and drives Chromium (Playwright, headless) to:

1. the Map page with PCA, waiting (up to 15 minutes) for the plotly chart;
2. the Depth page, waiting for its histogram and table;
3. 20 more page views, alternating Map and Depth, reading the server's VmRSS after each.

``--report LABEL ...`` prints the table again from the runs' JSON files.

The server's memory is read from /proc/<pid>/status: VmHWM (its peak resident set) and VmRSS
(now). A sampler thread also sums VmRSS over the server and any child processes (a process pool),
every 0.2 s, so work moved out of the server process is not hidden. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import machine, unit_rows  # noqa: E402

from analytics import Store, import_vectors  # noqa: E402
from analytics.embedding import DEFAULT_MODEL  # noqa: E402
from analytics.screenshot import CHROMIUM_ARGS, serving, wait_for_app  # noqa: E402

WORK = Path("/tmp/bench_memory")
PORT = 8611
N, DIM = 1_000_000, 384
NAME = "million"
DATA = ROOT.parent / "shared" / "data"
VIEWS = 20


def build(path: Path, data: Path = DATA, n: int = N, dim: int = DIM) -> None:
    """The pristine store: ``n`` texts streamed in chunks, then ``n`` unit vectors imported."""
    if path.exists():
        return
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    with open(data / "clinc150" / "data_full.json") as f:
        data = json.load(f)
    base = [(t, label, split) for split, rows in data.items() for t, label in rows]

    def chunks(size: int = 100_000):
        for start in range(0, n, size):
            rows = range(start, min(start + size, n))
            texts = [f"{base[i % len(base)][0]} (#{i})" for i in rows]
            meta = [{"label": base[i % len(base)][1], "split": base[i % len(base)][2]} for i in rows]
            yield texts, meta

    t0 = time.perf_counter()
    with Store(tmp) as s:
        s.add_corpus_stream(NAME, chunks(), source="bench_memory", text_column="text", label_column="label")
        X = unit_rows(n, dim, seed=0)
        import_vectors(s, NAME, X, DEFAULT_MODEL)
    os.replace(tmp, path)
    print(f"built {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.0f} s")


def _status(pid: int) -> dict[str, float]:
    """VmHWM and VmRSS of a process in MiB (empty when it has gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmHWM", "VmRSS")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return out


def _descendants(pid: int) -> list[int]:
    kids, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                found = [int(c) for c in f.read().split()]
        except OSError:
            found = []
        kids += found
        todo += found
    return kids


class Sampler(threading.Thread):
    """Largest sum of VmRSS over the server and its children, sampled every 0.2 s."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_tree, self.peak_children = pid, 0.0, 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            kids = sum(_status(k).get("VmRSS", 0.0) for k in _descendants(self.pid))
            total = _status(self.pid).get("VmRSS", 0.0) + kids
            self.peak_tree = max(self.peak_tree, total)
            self.peak_children = max(self.peak_children, kids)
            self.stop.wait(0.2)


def start_server(root: Path, store: Path, log) -> subprocess.Popen:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "EMBEX_STORE": str(store),
        "EMBEX_SAMPLE": "0",
        "PYTHONPATH": str(root),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import analytics; print(analytics.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not where.startswith(str(root)):
        raise SystemExit(f"the server would import analytics from {where}, not from {root}")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard/app.py",
            "--server.port",
            str(PORT),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    if not serving(f"http://127.0.0.1:{PORT}", proc, timeout=120):
        proc.kill()
        raise SystemExit(f"the server did not come up on port {PORT}; see {log.name}")
    return proc


def _shown_error(page) -> str | None:
    for sel in ('[data-testid="stException"]', '[data-testid="stAlertContentError"]'):
        loc = page.locator(sel)
        if loc.count():
            return loc.first.inner_text()[:500]
    return None


def view(page, url: str, wait_for: list[str], timeout_s: float) -> float:
    """Open ``url``, wait for each selector and for the script run to end; seconds taken."""
    t0 = time.perf_counter()
    page.goto(url, timeout=timeout_s * 1000)
    for sel in wait_for:
        page.locator(sel).first.wait_for(timeout=timeout_s * 1000)
    wait_for_app(page, timeout_s * 1000)
    error = _shown_error(page)
    if error:
        raise SystemExit(f"{url} shows an error: {error}")
    return time.perf_counter() - t0


MAP = ['[data-testid="stPlotlyChart"]']
DEPTH = ['[data-testid="stPlotlyChart"]', '[data-testid="stDataFrame"]']


def run(root: Path, label: str, pristine: Path) -> dict:
    from playwright.sync_api import sync_playwright

    store = WORK / f"{label}.duckdb"
    for p in (store, store.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    shutil.copyfile(pristine, store)
    vector_mib = N * DIM * 4 / 2**20
    log = open(WORK / f"{label}-server.log", "w")
    proc = start_server(root, store, log)
    sampler = Sampler(proc.pid)
    sampler.start()
    result = {"label": label, "root": str(root), "vector_mib": vector_mib, "views": []}
    url = f"http://127.0.0.1:{PORT}"
    try:
        result["idle_mib"] = _status(proc.pid)["VmRSS"]
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            map_url = f"{url}/map?corpus={NAME}&method=pca"
            depth_url = f"{url}/depth?corpus={NAME}"
            result["map_s"] = view(page, map_url, MAP, 900)
            result["after_map"] = _status(proc.pid)
            result["depth_s"] = view(page, depth_url, DEPTH, 900)
            result["after_depth"] = _status(proc.pid)
            print(
                f"[{label}] map {result['map_s']:.0f} s, depth {result['depth_s']:.0f} s, "
                f"peak {result['after_depth']['VmHWM']:,.0f} MiB",
                flush=True,
            )
            for i in range(VIEWS):
                target, sels = (map_url, MAP) if i % 2 == 0 else (depth_url, DEPTH)
                seconds = view(page, target, sels, 600)
                result["views"].append(
                    {"page": target.split("?")[0].rsplit("/", 1)[1], "s": seconds, **_status(proc.pid)}
                )
            browser.close()
        result["final"] = _status(proc.pid)
    finally:
        sampler.stop.set()
        sampler.join()
        result["tree_peak_mib"] = sampler.peak_tree
        result["children_peak_mib"] = sampler.peak_children
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    for p in (store, store.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    shutil.rmtree(store.with_suffix(".duckdb.tmp"), ignore_errors=True)  # DuckDB's spill folder
    return result


def slope_mib_per_view(views: list[dict]) -> float:
    rss = np.array([v["VmRSS"] for v in views])
    return float(np.polyfit(np.arange(rss.size), rss, 1)[0]) if rss.size > 1 else 0.0


def table(results: list[dict]) -> str:
    lines = [
        "| run | peak server RSS (VmHWM) | peak ÷ vector bytes | peak RSS, server + children | "
        "RSS after view 1 → 20 | mean RSS, views 1-10 → 11-20 | trend | PCA map opened in | "
        "Depth page in | a later view |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        views = r["views"]
        rss = [v["VmRSS"] for v in views]
        half = len(rss) // 2
        peak = r["final"]["VmHWM"]
        lines.append(
            f"| {r['label']} | {peak / 1024:.2f} GiB | {peak / r['vector_mib']:.2f}× | "
            f"{r['tree_peak_mib'] / 1024:.2f} GiB | {rss[0] / 1024:.2f} → {rss[-1] / 1024:.2f} GiB | "
            f"{np.mean(rss[:half]) / 1024:.2f} → {np.mean(rss[half:]) / 1024:.2f} GiB | "
            f"{slope_mib_per_view(views):+.1f} MiB/view | {r['map_s']:.0f} s | {r['depth_s']:.0f} s | "
            f"{np.median([v['s'] for v in views]):.0f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, action="append", help="checkout(s) to run the server from")
    ap.add_argument("--label", action="append", help="a name for each --root in the table")
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder (CLINC150)")
    ap.add_argument("--build-only", action="store_true", help="build the store and stop")
    ap.add_argument("--report", nargs="+", metavar="LABEL", help="print the table of earlier runs")
    args = ap.parse_args()
    if args.report:
        print(table([json.loads((WORK / f"{label}.json").read_text()) for label in args.report]))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    pristine = WORK / "pristine.duckdb"
    build(pristine, args.data)
    if args.build_only:
        return
    roots = args.root or [ROOT]
    labels = args.label or [r.name for r in roots]
    print(f"machine: {machine()}\n")
    results = []
    for root, label in zip(roots, labels):
        r = run(root.resolve(), label, pristine)
        (WORK / f"{label}.json").write_text(json.dumps(r, indent=1))
        results.append(r)
    print(f"{N:,} x {DIM} float32 = {N * DIM * 4 / 2**30:.2f} GiB of vectors\n")
    print(table(results))


if __name__ == "__main__":
    main()
