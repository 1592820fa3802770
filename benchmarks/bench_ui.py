"""Time from navigation to a rendered map in Chromium, at 10k and 100k points.

    .venv/bin/python benchmarks/bench_ui.py

The vectors are real: the 20,000 embedded by bench_engines.py (run it first), tiled with small
noise up to 100k, imported as precomputed vectors into benchmarks/.cache/ui.duckdb. Maps are
projected once beforehand (cached in the store), as a user reopening a map would find them, so
this measures the page: reading texts and coordinates, building the WebGL figure, sending it,
and the browser drawing it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402
from conftest import streamlit_server  # noqa: E402

from analytics import Store, import_vectors  # noqa: E402
from analytics.corpus import Corpus  # noqa: E402
from analytics.embedding import DEFAULT_MODEL  # noqa: E402
from analytics.projection import corpus_projection  # noqa: E402
from analytics.screenshot import CHROMIUM_ARGS, wait_for_app  # noqa: E402

SIZES = (10_000, 100_000)


def prepare(path: Path) -> None:
    with Store(HERE / ".cache" / "engines.duckdb") as src:
        texts = src.texts("bench-20000")
        X = src.vectors("bench-20000", DEFAULT_MODEL)
    rng = np.random.default_rng(0)
    with Store(path) as s:
        have = {c.name for c in s.list_corpora()}
        if "0-start" not in have:  # created first, so a fresh session's map opens on it
            s.add_corpus("0-start", Corpus(texts[:50], [{"copy": "0"}] * 50, "text", "bench_ui"))
            import_vectors(s, "0-start", X[:50], DEFAULT_MODEL)
            corpus_projection(s, "0-start", DEFAULT_MODEL, "umap")
        for n in SIZES:
            name = f"ui-{n // 1000}k"
            if name in have:
                continue
            reps = -(-n // len(X))
            V = np.tile(X, (reps, 1))[:n] + rng.normal(0, 0.01, size=(n, X.shape[1])).astype(np.float32)
            T = [f"{texts[i % len(texts)]} ({i // len(texts)})" for i in range(n)]
            labels = [{"copy": str(i // len(texts))} for i in range(n)]
            s.add_corpus(name, Corpus(T, labels, "text", "bench_ui"))
            import_vectors(s, name, V, DEFAULT_MODEL)
            t0 = time.perf_counter()
            corpus_projection(s, name, DEFAULT_MODEL, "umap")
            print(f"projected {name} once in {time.perf_counter() - t0:.1f} s (cached for the timings)")


def main() -> None:
    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}\n")
    store = HERE / ".cache" / "ui.duckdb"
    prepare(store)
    results = {}
    with streamlit_server(store) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        for n in SIZES:
            name = f"ui-{n // 1000}k"
            times = []
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url)  # a fresh session: the map opens on the tiny corpus, then we pick ours
                page.get_by_role("heading", name="Embedding Explorer").wait_for(timeout=60_000)
                page.locator('[data-testid="stSidebarNav"]').get_by_role(
                    "link", name="Map", exact=True
                ).click()
                page.get_by_text("0-start: UMAP map").first.wait_for(timeout=60_000)
                wait_for_app(page, 60_000)
                t0 = time.perf_counter()
                page.locator('[data-testid="stSelectbox"]').filter(has_text="Corpus").first.click()
                page.get_by_role("option", name=name, exact=True).click()
                page.get_by_text(f"{name}: UMAP map").first.wait_for(timeout=300_000)
                page.locator(".js-plotly-plot .gl-container canvas").first.wait_for(timeout=300_000)
                wait_for_app(page, 300_000)
                times.append(time.perf_counter() - t0)
                page.close()
            results[n] = times
        browser.close()
    print("| map page, Chromium (headless, software GL) | best (s) | median of 3 (s) |")
    print("|---|---:|---:|")
    for n, times in results.items():
        print(
            f"| {n:,} points, UMAP map (cached), coloured by label | {min(times):.2f} | {statistics.median(times):.2f} |"
        )


if __name__ == "__main__":
    main()
