"""A newcomer's first start: a fresh store, the dashboard opens Home, which stores the bundled
sample with its shipped vectors and its shipped default map (or embeds it, with a progress
bar, where they are missing); then the Map page draws it (WebGL), from the cache. Times each
step in Chromium at 1440x900.

    .venv/bin/python benchmarks/bench_first_start.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402
from conftest import streamlit_server  # noqa: E402

from analytics.screenshot import CHROMIUM_ARGS  # noqa: E402

MAP = "Object.values(window.__embexScatter || {}).find(h => h.view.root.isConnected)"  # the WebGL map


def main() -> None:
    from playwright.sync_api import sync_playwright

    print(f"machine: {machine()}\n")
    with tempfile.TemporaryDirectory() as tmp:
        t_start = time.perf_counter()
        with streamlit_server(Path(tmp) / "first.duckdb", sample=True) as url, sync_playwright() as p:
            t_server = time.perf_counter() - t_start
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            t0 = time.perf_counter()
            page.goto(url)
            page.get_by_text("Corpora in this store").wait_for(timeout=600_000)
            t_home = time.perf_counter() - t0
            t1 = time.perf_counter()
            page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Map", exact=True).click()
            page.wait_for_function(
                f"() => {{ const h = {MAP}; return h && h.drawn() === 7600; }}", timeout=600_000
            )
            t_map = time.perf_counter() - t0
            t_click = time.perf_counter() - t1
            (HERE / ".cache").mkdir(exist_ok=True)
            page.screenshot(path=str(HERE / ".cache" / "first-start-map.png"))
            browser.close()
        from analytics.store import Store

        with Store(Path(tmp) / "first.duckdb", read_only=True) as store:  # the server has stopped
            computed = any(row["kind"] == "project" for row in store.job_rows())
    print("| first start, fresh store, 7,600 sample texts | seconds |")
    print("|---|---:|")
    print(f"| server up (health check answers) | {t_server:.1f} |")
    print(f"| page open to Home ready (sample stored with its vectors and map) | {t_home:.1f} |")
    print(f"| click on Map to the UMAP map of the sample drawn | {t_click:.1f} |")
    print(f"| page open to the map drawn | {t_map:.1f} |")
    print(
        f"\nthe map was {'computed by a job' if computed else 'read from the cache (the shipped map): no job'}"
    )


if __name__ == "__main__":
    main()
