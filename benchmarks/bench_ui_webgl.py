"""The WebGL map (dashboard/scatter.py) in Chromium: time to drawn at 1M and 5M points, the
lasso round trip at 100k, hover round trip, and frame times while panning.

    .venv/bin/python benchmarks/bench_ui_webgl.py [--skip-5m]

A small Streamlit app (written to benchmarks/.cache/ui_webgl/) calls ``scatter_map`` on
synthetic maps (25 Zipf-sized Gaussian blobs, labelled, so the 20 largest get colours and the
rest "other"), loaded once per server process from .npy files: a map the server already
holds, as a reopened map in the dashboard is. Each timing starts at a user action on a page
that is already open (choosing the map in a select box, releasing the mouse after a lasso)
and ends when the browser reports the points drawn or shows Python's answer, as
benchmarks/bench_ui.py does for the Plotly map. Chromium is Debian's, headless, software GL
(SwiftShader) on this machine's CPUs: a GPU draws far faster; these numbers are the floor.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402

from analytics.screenshot import CHROMIUM_ARGS, serving, wait_for_app  # noqa: E402

CACHE = HERE / ".cache" / "ui_webgl"
SIZES = {"tiny": 2_000, "100k": 100_000, "1M": 1_000_000, "5M": 5_000_000}
ARGS = [*CHROMIUM_ARGS, "--enable-unsafe-swiftshader"]
HANDLE = "window.__embexScatter && window.__embexScatter.m"

APP = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import streamlit as st
    sys.path.insert(0, {dashboard!r})
    from scatter import scatter_map

    st.set_page_config(layout="wide")

    @st.cache_resource
    def load(name):
        xy = np.load({cache!r} + f"/{{name}}-xy.npy")
        codes = np.load({cache!r} + f"/{{name}}-codes.npy")
        return xy, codes, [f"topic {{i}}" for i in range(int(codes.max()) + 1)]

    name = st.selectbox("Map", {names!r}, key="name")
    xy, codes, cats = load(name)
    t0 = time.perf_counter()
    event = scatter_map(xy, codes=codes, categories=cats, hover=lambda r: {{"text": f"row {{r}}"}},
                        title=f"{{name}} map", height=620, key="m")
    st.write(f"python saw {{len(event.selection)}} selected rows")
    st.caption(f"payload built in {{time.perf_counter() - t0:.3f}} s")
    """
)


def make(name: str, n: int, cache: Path = CACHE) -> None:
    """The synthetic map ``name`` of ``n`` points as .npy files in ``cache`` (kept: made once)."""
    if (cache / f"{name}-xy.npy").exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    k = 25
    centres = rng.uniform(-10, 10, size=(k, 2))
    sizes = rng.zipf(1.6, size=k).astype(float)
    codes = rng.choice(k, size=n, p=sizes / sizes.sum()).astype(np.int32)
    xy = (centres[codes] + rng.normal(0, 0.8, size=(n, 2))).astype(np.float32)
    np.save(cache / f"{name}-xy.npy", xy)
    np.save(cache / f"{name}-codes.npy", codes)


def start(app: Path, port: int | None = None):
    """``streamlit run app`` on localhost (``port``, else a free one); (process, URL) once it answers."""
    import os
    import subprocess

    from conftest import free_port

    port = port or free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port)]
    cmd += [
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(
        cmd, cwd=app.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ
    )
    url = f"http://127.0.0.1:{port}"
    if not serving(url, proc, timeout=120):
        proc.kill()
        raise SystemExit("streamlit did not start")
    return proc, url


LAST = {}


def choose(page, name: str, n: int, timeout_ms: float = 600_000) -> float:
    """Pick a map in the select box; seconds until the browser has drawn all its points.
    LAST["phases"]: the browser's phases (ms), with "wait": click to the payload's arrival
    (the rerun, building and sending the payload, decoding it)."""
    version = page.evaluate(f"() => {HANDLE} ? {HANDLE}.view.version : null")
    page.locator('[data-testid="stSelectbox"]').first.click()
    option = page.get_by_role("option", name=name, exact=True)
    option.wait_for()
    t_click = page.evaluate("() => performance.now()")
    t0 = time.perf_counter()
    option.click()
    page.wait_for_function(
        f"([v, n]) => {HANDLE} && {HANDLE}.view.version !== v && {HANDLE}.drawn() === n",
        arg=[version, n],
        timeout=timeout_ms,
        polling=20,
    )
    dt = time.perf_counter() - t0
    phases = json.loads(page.evaluate(f"() => {HANDLE}.view.root.dataset.phases"))
    phases["wait"] = round(phases.pop("start") - t_click)
    LAST["phases"] = phases
    return dt


def lasso(page, n_expected_min: int = 1) -> tuple[float, int]:
    """Shift-drag a lasso over the left half of the map; seconds from releasing the mouse to
    Python's answer on the page, and how many rows it saw."""
    box = page.locator(".exs-plot").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    pts = [(x0 + 0.05 * w, y0 + 0.05 * h), (x0 + 0.5 * w, y0 + 0.08 * h), (x0 + 0.45 * w, y0 + 0.95 * h)]
    pts.append((x0 + 0.08 * w, y0 + 0.9 * h))
    before = page.locator("text=python saw").first.inner_text()
    page.keyboard.down("Shift")
    page.mouse.move(*pts[0])
    page.mouse.down()
    for p in [*pts[1:], pts[0]]:
        page.mouse.move(*p, steps=4)
        page.wait_for_timeout(40)
    t0 = time.perf_counter()
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_function(
        "(b) => { const e = [...document.querySelectorAll('p')].find(p => p.innerText.startsWith('python saw'));"
        " return e && e.innerText !== b && !e.innerText.startsWith('python saw 0 '); }",
        arg=before,
        timeout=60_000,
        polling=10,
    )
    dt = time.perf_counter() - t0
    wait_for_app(page, 60_000)
    text = page.locator("text=python saw").first.inner_text()
    page.keyboard.press("Escape")  # clear, so the next lasso is a change again
    page.wait_for_function(
        "() => [...document.querySelectorAll('p')].some(p => p.innerText.startsWith('python saw 0 '))",
        timeout=60_000,
    )
    wait_for_app(page, 60_000)
    return dt, int(text.split()[2])


def pan_frames(page, seconds: float = 2.0, handle: str = HANDLE) -> list[float]:
    """Drag the map around for ``seconds``; the intervals (ms) between the frames the map
    rendered (regl-scatterplot's 'draw' events: one per frame it drew). ``handle``: a JS
    expression for the map's handle (window.__embexScatter[key])."""
    box = page.evaluate(
        f"() => {{ const r = {handle}.view.plot.getBoundingClientRect();"
        " return {x: r.left, y: r.top, width: r.width, height: r.height}; }"
    )
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate(
        f"() => {{ window.__frames = []; window.__panning = true; window.__panned = {handle};"
        f" window.__sub = window.__panned.view.sp.subscribe('draw', () => {{ if (window.__panning)"
        " window.__frames.push(performance.now()); }); }"
    )
    page.mouse.move(cx, cy)
    page.mouse.down()
    t_end = time.perf_counter() + seconds
    k = 0
    while time.perf_counter() < t_end:
        a = k * 0.35
        page.mouse.move(cx + 150 * np.cos(a), cy + 100 * np.sin(a))
        k += 1
    page.mouse.up()
    frames = page.evaluate(
        "() => { window.__panning = false; window.__panned.view.sp.unsubscribe(window.__sub);"
        " return window.__frames; }"
    )
    return list(np.diff(frames))


def hover_round_trips(page, k: int = 5) -> list[float]:
    rows = [int(r) for r in np.linspace(10, 90_000, k)]
    for row in rows:
        x, y = page.evaluate(f"(r) => {HANDLE}.rowToClient(r)", row)
        page.mouse.move(x + 30, y + 30)
        page.mouse.move(x, y, steps=3)
        try:
            page.wait_for_function(
                f"() => {HANDLE}.view.tooltip.dataset.loaded !== undefined"
                f" && {HANDLE}.view.tooltip.dataset.loaded === {HANDLE}.view.tooltip.dataset.row",
                timeout=10_000,
            )
        except Exception:  # the pointer landed between points: no tooltip, no request
            pass
        page.mouse.move(5, 5)
    return page.evaluate(f"() => {HANDLE}.timings().hover")


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-5m", action="store_true", help="leave out the 5M map (most memory and time)")
    args = ap.parse_args()
    sizes = {k: v for k, v in SIZES.items() if not (args.skip_5m and k == "5M")}
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, n in sizes.items():
        make(name, n)
    app = CACHE / "app.py"
    app.write_text(APP.format(dashboard=str(ROOT / "dashboard"), cache=str(CACHE), names=list(sizes)))
    print(f"machine: {machine()}")
    proc, url = start(app)
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
            print(f"browser: Chromium {browser.version} (headless, {' '.join(ARGS)})\n")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_function(f"() => {HANDLE} && {HANDLE}.drawn() === {sizes['tiny']}", timeout=120_000)
            print(f"first page load to a drawn 2k map: {time.perf_counter() - t0:.2f} s")
            wait_for_app(page)
            # warm: the server loads each map once (st.cache_resource), as a reopened map would be
            for name in [k for k in sizes if k != "tiny"]:
                choose(page, name, sizes[name])
                wait_for_app(page, 600_000)
                choose(page, "tiny", sizes["tiny"])
                wait_for_app(page)
            for name in ("100k", "1M"):
                times = []
                for _ in range(3):
                    times.append(choose(page, name, sizes[name]))
                    phases = LAST["phases"]
                    wait_for_app(page)
                    choose(page, "tiny", sizes["tiny"])
                    wait_for_app(page)
                rows.append((f"{sizes[name]:,} points: choose the map -> drawn", times, "s"))
                print(f"{name}: {[round(t, 2) for t in times]} s; phases of the last (ms): {phases}")
            if "5M" in sizes:
                t = choose(page, "5M", sizes["5M"])
                phases = LAST["phases"]
                rows.append(("5,000,000 points: choose the map -> drawn", [t], "s"))
                print(f"5M: {t:.2f} s; phases (ms): {phases}")
                wait_for_app(page, 600_000)
                frames = pan_frames(page)
                rows.append(
                    (
                        "5,000,000 points: time per rendered frame while panning",
                        [f / 1000 for f in frames],
                        "s",
                    )
                )
                choose(page, "tiny", sizes["tiny"])
                wait_for_app(page)
            choose(page, "100k", sizes["100k"])
            wait_for_app(page)
            trips = [lasso(page) for _ in range(3)]
            rows.append(
                ("100,000 points: lasso released -> Python's answer shown", [t for t, _ in trips], "s")
            )
            print(f"lasso at 100k: {[(round(t, 3), k) for t, k in trips]} (s, rows selected)")
            hover = hover_round_trips(page)
            rows.append(
                (
                    "100,000 points: hover text asked -> shown (after the 150 ms rest)",
                    [h / 1000 for h in hover],
                    "s",
                )
            )
            frames = pan_frames(page)
            rows.append(
                ("100,000 points: time per rendered frame while panning", [f / 1000 for f in frames], "s")
            )
            choose(page, "1M", sizes["1M"])
            wait_for_app(page)
            frames = pan_frames(page)
            rows.append(
                ("1,000,000 points: time per rendered frame while panning", [f / 1000 for f in frames], "s")
            )
            t0 = time.perf_counter()
            fresh = browser.new_page(viewport={"width": 1400, "height": 1000})
            fresh.goto(url)
            wait_for_app(fresh)
            choose(fresh, "1M", sizes["1M"])
            rows.append(
                (
                    "1,000,000 points: new tab opened -> drawn (page load included)",
                    [time.perf_counter() - t0],
                    "s",
                )
            )
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print("\n| WebGL map, Chromium headless, software GL | n | best | median | p95 |")
    print("|---|---:|---:|---:|---:|")
    for label, values, _ in rows:
        v = np.array(values)
        print(
            f"| {label} | {len(v)} | {v.min():.3f} s | {statistics.median(v):.3f} s | {np.percentile(v, 95):.3f} s |"
        )


if __name__ == "__main__":
    main()
