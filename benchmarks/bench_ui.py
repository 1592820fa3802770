"""The Map page (dashboard/views/map.py) in Chromium, served by ``embex serve``, at 100k and 1M
texts; plotly's scattergl (what the page drew with before) on the same points; 5M synthetic
points in the WebGL component alone.

    .venv/bin/python benchmarks/bench_ui.py            # about 10 minutes once the store exists
    .venv/bin/python benchmarks/bench_ui.py --quick    # small sizes, a smoke run (a few minutes)

The store (benchmarks/.cache/ui_map.duckdb, made on the first run and kept) holds corpora of 300,
100,000 and 1,000,000 short texts with a label column of 25 Zipf-sized labels and 384-d unit
vectors under the bundled model's id, imported through ``Store.add_corpus_stream`` and
``Store.put_corpus_vectors`` a chunk at a time (the library's fast path, as ``embex
import-vectors`` writes). The vectors are the 20,000 real ones of benchmarks/.cache/engines.duckdb
tiled with small noise when that file exists (bench_engines.py makes it; labels are then not
tied to the vectors), else synthetic clusters (a centre per label, sub-centres, noise). Each
corpus's PCA map is computed once beforehand, so the page finds it cached, as a user reopening
a map would.

Timed through the real page, each from a user action on a page that is already open, on the
browser's clock (from the action's mouse-up to the moment the end condition holds, polled every
20 ms):

- choosing the corpus in the page's picker (on a Map page showing the 300-text corpus) until the
  map component says all its points are drawn: the first time after the server started (the
  server then reads the vectors from the store) and then in 3 fresh tabs (median);
- a lasso at 100k: mouse-up until the page's side column says "N of 100,000 texts selected";
- the interval between frames the map renders while the mouse drags it (panning);
- the server's resident memory (VmRSS of ``embex serve`` and its children, from /proc) at idle,
  after the 1M map is drawn, and its peak (VmHWM).

The peer, in the same run: a tiny Streamlit app that draws the same points with
``analytics.figures.map_figure`` (plotly scattergl, hover texts, coloured by label, no sample
cap) through ``st.plotly_chart``, as the Map page did before; timed from choosing the map in a
select box until the figure holds every point, its WebGL canvas exists and two animation
frames have passed. 5M points: the component alone in bench_ui_webgl.py's small app (synthetic
points; a 5M-text store is 7.5 GB of vectors). Chromium is Debian's, headless, software GL
(SwiftShader) on this machine's CPUs. The one-minute load average is printed with each number:
other work may share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))

import bench_ui_webgl as webgl  # noqa: E402
from _common import machine  # noqa: E402

from analytics import Store  # noqa: E402
from analytics.embedding import DEFAULT_MODEL  # noqa: E402
from analytics.projection import cached_projection, corpus_projection, projection_request  # noqa: E402
from analytics.screenshot import serving, wait_for_app  # noqa: E402

LABELS = (
    "banking", "travel", "kitchen", "weather", "music", "sports", "health", "auto", "credit",
    "home", "work", "meta", "small talk", "utility", "finance", "shopping", "movies", "books",
    "games", "news", "science", "pets", "garden", "fitness", "jobs",
)  # fmt: skip
WORDS = ("transfer", "flight", "recipe", "forecast", "playlist", "score", "doctor", "tyre", "limit", "lamp")
DIM = 384
START = "0-start"  # the corpus a fresh tab's Map page shows before the user picks another
ARGS = webgl.ARGS  # the project's Chromium flags and --enable-unsafe-swiftshader


@dataclass(frozen=True)
class Plan:
    """Sizes of one run: the start corpus, the lasso/"small" corpus, the big one, the synthetic
    map for the component alone; fresh tabs per timing; the peer's time limit for the big map."""

    start: int = 300
    small: int = 100_000
    big: int = 1_000_000
    huge: int = 5_000_000
    reps: int = 3
    peer_big_timeout_s: float = 120.0
    store_name: str = "ui_map.duckdb"


QUICK = Plan(start=300, small=3_000, big=20_000, huge=50_000, reps=1, peer_big_timeout_s=60.0,
             store_name="ui_map_quick.duckdb")  # fmt: skip


def size_name(n: int) -> str:
    return (
        f"{n // 1_000_000}M"
        if n >= 1_000_000 and n % 1_000_000 == 0
        else f"{n // 1000}k"
        if n >= 1000
        else str(n)
    )


def corpus_name(n: int) -> str:
    return f"ui-{size_name(n)}"


# ---------------------------------------------------------------- the store


def label_codes(n: int, seed: int) -> np.ndarray:
    """Row i's label: 25 labels with Zipf sizes (the largest about a quarter of the rows)."""
    p = 1.0 / np.arange(1, len(LABELS) + 1) ** 1.1
    return np.random.default_rng(seed).choice(len(LABELS), size=n, p=p / p.sum()).astype(np.int8)


def text_chunks(codes: np.ndarray, chunk: int = 65_536):
    """(texts, metadata) chunks: short unique texts and their label."""
    for a in range(0, len(codes), chunk):
        c = codes[a : a + chunk].tolist()
        texts = [f"note {a + j}: {LABELS[k]} {WORDS[(a + j) % len(WORDS)]}" for j, k in enumerate(c)]
        yield texts, [{"label": LABELS[k]} for k in c]


def vector_chunks(codes: np.ndarray, seed: int, tiled: np.ndarray | None = None, chunk: int = 65_536):
    """Unit float32 (m, 384) chunks. Synthetic: a centre per label, four sub-centres per label,
    and per-row noise; or ``tiled`` rows repeated with noise 0.01."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(LABELS), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    subs = rng.standard_normal((len(LABELS), 4, DIM)).astype(np.float32) * np.float32(0.5 / np.sqrt(DIM))
    for a in range(0, len(codes), chunk):
        r = np.random.default_rng([seed, a])
        c = codes[a : a + chunk].astype(np.int64)
        m = len(c)
        if tiled is None:
            V = centres[c] + subs[c, r.integers(0, 4, size=m)]
            V += r.normal(0, 0.6 / np.sqrt(DIM), size=(m, DIM)).astype(np.float32)
        else:
            V = tiled[np.arange(a, a + m) % len(tiled)] + r.normal(0, 0.01, size=(m, DIM)).astype(np.float32)
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        yield np.ascontiguousarray(V, dtype=np.float32)


def real_vectors() -> np.ndarray | None:
    """The 20,000 real vectors of bench_engines.py's store, when it has been run."""
    path = HERE / ".cache" / "engines.duckdb"
    if not path.exists():
        return None
    with Store(path) as src:
        names = [c.name for c in src.list_corpora() if c.name.startswith("bench-")]
        return src.vectors(names[0], DEFAULT_MODEL) if names else None


def prepare(path: Path, sizes: list[int], seed: int = 0) -> str:
    """Make the store's corpora, vectors and PCA maps where missing; returns what the vectors are."""
    tiled = real_vectors()
    kind = "synthetic clusters" if tiled is None else f"{len(tiled):,} real vectors tiled with noise"
    with Store(path) as s:
        have = {c.name: c.n_docs for c in s.list_corpora()}
        for n in sizes:
            name = START if n == sizes[0] else corpus_name(n)
            codes = label_codes(n, seed + n)
            t0 = time.perf_counter()
            if name not in have:
                s.add_corpus_stream(
                    name, text_chunks(codes), source="bench_ui", text_column="text", label_column="label"
                )
            if s.embedded_count(name, DEFAULT_MODEL) != n:
                s.put_corpus_vectors(name, DEFAULT_MODEL, vector_chunks(codes, seed, tiled))
            t1 = time.perf_counter()
            request = projection_request(s, name, DEFAULT_MODEL, "pca")
            if cached_projection(s, request) is None:
                corpus_projection(s, name, DEFAULT_MODEL, "pca")
                print(
                    f"stored {name} ({n:,} texts, {kind}) in {t1 - t0:.1f} s, "
                    f"its PCA map in {time.perf_counter() - t1:.1f} s"
                )
    return kind


def export_peer(path: Path, out: Path, sizes: list[int]) -> None:
    """The maps' coordinates, labels and texts as files the peer app loads (once per server)."""
    out.mkdir(parents=True, exist_ok=True)
    with Store(path) as s:
        for n in sizes:
            name = START if n == sizes[0] else corpus_name(n)
            if (out / f"{name}-texts.txt").exists():
                continue
            proj = cached_projection(s, projection_request(s, name, DEFAULT_MODEL, "pca"))
            np.save(out / f"{name}-xy.npy", np.asarray(proj.coords, dtype=np.float32))
            labels = [m.get("label", "") for m in s.metadata(name)]
            (out / f"{name}-labels.json").write_text(json.dumps(labels))
            (out / f"{name}-texts.txt").write_text("\n".join(s.texts(name)), encoding="utf-8")


# ---------------------------------------------------------------- servers and memory


def wait_up(proc, url: str, log: Path, timeout: float = 180) -> None:
    if not serving(url, proc, timeout=timeout):
        proc.kill()
        raise SystemExit(f"the server on {url} did not come up: {log.read_text()[-2000:]}")


def start_dashboard(store: Path, port: int, log: Path):
    """``embex serve --store`` (server and job executor in one process) on localhost."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEX_SAMPLE": "0"}
    cmd = [sys.executable, "-m", "analytics.cli", "serve", "--store", str(store)]
    cmd += ["--port", str(port), "--address", "127.0.0.1"]
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_up(proc, url, log)
    return proc, url


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _status(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in KiB (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/*/stat)."""
    parents: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def rss_mib(pid: int) -> float:
    """VmRSS of the process and its children, MiB."""
    return sum(_status(p, "VmRSS") for p in tree(pid)) / 1024


def load() -> float:
    return os.getloadavg()[0]


# ---------------------------------------------------------------- the Map page

CONNECTED = "Object.values(window.__embexScatter || {}).find(h => h.view.root.isConnected)"
MAP_DRAWN = """([name, n]) => {
  const h = Object.values(window.__embexScatter || {}).find(
    (h) => h.view.root.isConnected && (h.view.header?.title || '').startsWith(name + ':'));
  return Boolean(h) && h.drawn() === n;
}"""
MAP_PHASES = """(name) => {
  const h = Object.values(window.__embexScatter || {}).find(
    (h) => h.view.root.isConnected && (h.view.header?.title || '').startsWith(name + ':'));
  return h.view.root.dataset.phases;
}"""
SCRIPT_DONE = """() => document.querySelector('[data-testid="stApp"]')
  ?.getAttribute('data-test-script-state') === 'notRunning'"""
SELECTED = """(total) => {
  const e = [...document.querySelectorAll('strong')].find(
    (e) => e.innerText.endsWith(' of ' + total + ' texts selected'));
  return e ? e.innerText : null;
}"""


@dataclass
class Row:
    """One measure: its values, the load average beside each, the goal it answers."""

    label: str
    unit: str = "s"
    goal: str = ""
    values: list = field(default_factory=list)
    loads: list = field(default_factory=list)
    note: str = ""

    def add(self, value) -> None:
        self.values.append(value)
        self.loads.append(load())


def open_map(browser, url: str, n_start: int):
    """A fresh tab on the Map page showing the start corpus, drawn and idle."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/map?corpus={START}&method=pca")
    page.wait_for_function(MAP_DRAWN, arg=[START, n_start], timeout=180_000, polling=50)
    wait_for_app(page, 180_000)
    return page


# Times are taken on the browser's clock: from the mouse-up of the user's action (a listener
# armed just before it) to the moment a polled condition holds (every 20 ms), so Playwright's own
# checks before a click and its round trips are not counted.
ARM = """() => { window.__up = null; document.addEventListener('mouseup',
  () => { window.__up = performance.now(); }, { capture: true, once: true }); }"""


def until(page, condition: str, arg, timeout_ms: float) -> float:
    """Wait until the JS ``condition(arg)`` holds; the browser's performance.now() then (ms)."""
    js = f"(a) => ({condition})(a) ? performance.now() : false"
    return float(page.wait_for_function(js, arg=arg, timeout=timeout_ms, polling=20).json_value())


def choose(page, select, name: str, drawn: str, arg, timeout_ms: float, painted: bool = False) -> float:
    """Pick ``name`` in the select box ``select`` (a locator); seconds from the mouse-up on the
    option until ``drawn(arg)`` holds (then, with ``painted``, two more animation frames).
    Raises playwright's TimeoutError past ``timeout_ms``."""
    select.click()
    option = page.get_by_role("option", name=name, exact=True)
    option.wait_for()
    page.evaluate(ARM)
    option.click()
    t_end = until(page, drawn, arg, timeout_ms)
    if painted:
        t_end = page.evaluate(FRAMES)
    return (t_end - page.evaluate("() => window.__up")) / 1000


def pick(page, name: str, n: int, timeout_ms: float = 300_000) -> tuple[float, dict]:
    """Choose ``name`` in the Map page's corpus picker: seconds until its map has drawn all
    ``n`` points, and the browser's phases (ms; "wait": mouse-up to the payload's arrival)."""
    picker = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Corpus", exact=True))
    dt = choose(page, picker.first, name, MAP_DRAWN, [name, n], timeout_ms)
    phases = json.loads(page.evaluate(MAP_PHASES, name) or "{}")
    if "start" in phases:
        phases["wait"] = round(phases.pop("start") - page.evaluate("() => window.__up"))
    return dt, phases


def lasso_trip(page, total: int, right: bool) -> tuple[float, float, int]:
    """Shift-drag a lasso over the left (or ``right``) half of the map; seconds from mouse-up to
    the page's "N of M texts selected", to the page idle, and N. Then the page's Clear selection
    button clears it. The page acts on a lasso that differs from the last one it saw, so
    successive trips alternate halves (a nudged lasso can enclose the same rows)."""
    box = page.evaluate(
        f"() => {{ const r = {CONNECTED}.view.plot.getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; }"
    )
    x0, y0, w, h = box
    x0 += 0.47 * w * right
    pts = [(x0 + 0.05 * w, y0 + 0.05 * h), (x0 + 0.5 * w, y0 + 0.08 * h), (x0 + 0.45 * w, y0 + 0.95 * h)]
    pts.append((x0 + 0.08 * w, y0 + 0.9 * h))
    fmt = f"{total:,}"
    page.keyboard.down("Shift")
    page.mouse.move(*pts[0])
    page.mouse.down()
    for p in [*pts[1:], pts[0]]:
        page.mouse.move(*p, steps=6)
        page.wait_for_timeout(40)
    page.evaluate(ARM)
    page.mouse.up()
    page.keyboard.up("Shift")
    t_shown = until(page, SELECTED, fmt, 120_000)
    t_idle = until(page, SCRIPT_DONE, None, 120_000)
    t_up = page.evaluate("() => window.__up")
    dt, idle = (t_shown - t_up) / 1000, (t_idle - t_up) / 1000
    text = page.evaluate(SELECTED, fmt)
    # the page's Clear button (the map keeps its lasso drawn as the page's highlight: Escape
    # has nothing of its own to clear); the next lasso is nudged, so it is a new one
    page.locator('[data-testid="stButton"] button').filter(has_text="Clear selection").click()
    page.wait_for_function(f"(t) => !({SELECTED})(t)", arg=fmt, timeout=120_000)
    wait_for_app(page, 120_000)
    return dt, idle, int(text.split()[0].replace(",", ""))


def run_page(browser, store: Path, plan: Plan, port: int, logs: Path, shots: Path) -> list[Row]:
    rows: list[Row] = []
    small, big = corpus_name(plan.small), corpus_name(plan.big)
    proc, url = start_dashboard(store, port, logs / "dashboard.log")
    try:
        rss = Row("server RSS (embex serve + children), just started", "MiB")
        rss.add(rss_mib(proc.pid))
        page = open_map(browser, url, plan.start)
        rss_idle = Row(f"server RSS, idle: Map page open on the {plan.start}-text corpus", "MiB")
        rss_idle.add(rss_mib(proc.pid))
        first = {}
        for n, name in ((plan.small, small), (plan.big, big)):
            first[n] = Row(
                f"{n:,} texts: first open after the server started (vectors read from the store) -> drawn",
                goal="≤ 3 s at 1M" if n == plan.big else "",
            )
            dt, phases = pick(page, name, n)
            first[n].add(dt)
            first[n].note = f"phases (ms) {phases}"
            print(f"first open of {name}: {dt:.2f} s, phases {phases} (load {load():.1f})", flush=True)
            wait_for_app(page, 300_000)
            if n == plan.big:
                rss_big = Row(f"server RSS, {n:,}-point map drawn", "MiB")
                rss_big.add(rss_mib(proc.pid))
                page.screenshot(path=str(shots / f"map-{name}.png"))
            page.close()
            page = open_map(browser, url, plan.start)
        page.close()
        rows += [rss, rss_idle, first[plan.small], first[plan.big], rss_big]
        for n, name in ((plan.small, small), (plan.big, big)):
            row = Row(
                f"{n:,} texts: corpus chosen in the picker (fresh tab) -> map drawn",
                goal="≤ 3 s at 1M" if n == plan.big else "",
            )
            notes = []
            frames = Row(f"{n:,} texts, Map page: time per frame while panning (2 s after each open)")
            for _ in range(plan.reps):
                page = open_map(browser, url, plan.start)
                dt, phases = pick(page, name, n)
                row.add(dt)
                notes.append(phases)
                print(f"{name}: {dt:.2f} s, phases {phases} (load {load():.1f})", flush=True)
                wait_for_app(page, 300_000)
                if n == plan.big:
                    for f in webgl.pan_frames(page, 2.0, CONNECTED):
                        frames.add(f / 1000)
                page.close()
            row.note = f"phases (ms) {notes}"
            rows += [row, frames] if frames.values else [row]
        rss_after = Row(f"server RSS after {plan.reps} more opens of each map", "MiB")
        rss_after.add(rss_mib(proc.pid))
        peak = Row("server peak RSS (VmHWM, the server process alone)", "MiB")
        peak.add(_status(proc.pid, "VmHWM") / 1024)
        rows += [rss_after, peak]
        rows += lassos(browser, url, plan, "")
    finally:
        stop(proc)
    return rows


def lassos(browser, url: str, plan: Plan, where: str) -> list[Row]:
    """Panning and 3 lassos at the small size, on one tab of the Map page at ``url``."""
    small = corpus_name(plan.small)
    page = open_map(browser, url, plan.start)
    pick(page, small, plan.small)
    wait_for_app(page, 300_000)
    frames = Row(f"{plan.small:,} texts, Map page{where}: time per frame while panning")
    for f in webgl.pan_frames(page, 2.0, CONNECTED):
        frames.add(f / 1000)
    trip = Row(
        f"{plan.small:,} texts{where}: lasso mouse-up -> page shows 'N of {plan.small:,} texts selected'",
        goal="≤ 1 s at 100k",
    )
    idle = Row(f"{plan.small:,} texts{where}: lasso mouse-up -> page idle (table, facets, map redrawn)")
    counts = []
    for i in range(3):
        dt, t_idle, k = lasso_trip(page, plan.small, right=i % 2 == 1)
        trip.add(dt)
        idle.add(t_idle)
        counts.append(k)
        print(
            f"lasso {i + 1}{where}: {dt:.3f} s to the count ({k:,} rows), {t_idle:.3f} s to idle", flush=True
        )
    trip.note = f"rows selected {counts}"
    page.close()
    return [frames, trip, idle] if not where else [trip, idle]


def run_alone(browser, store: Path, plan: Plan, port: int, logs: Path) -> list[Row]:
    """The lassos again on a store that holds only the start and the small corpus: each run of
    the Map page counts the embedded texts of every other corpus (its "Draw with" list), which
    in the main store includes the big corpus."""
    proc, url = start_dashboard(store, port, logs / "dashboard-alone.log")
    try:
        return lassos(browser, url, plan, f" (store without the {size_name(plan.big)} corpus)")
    finally:
        stop(proc)


# ---------------------------------------------------------------- the peer: plotly scattergl

PEER_APP = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import streamlit as st
    sys.path.insert(0, {root!r})
    from analytics.figures import map_figure

    st.set_page_config(layout="wide")

    @st.cache_resource
    def load(name):
        xy = np.load({data!r} + f"/{{name}}-xy.npy")
        labels = json.loads(open({data!r} + f"/{{name}}-labels.json").read())
        texts = open({data!r} + f"/{{name}}-texts.txt", encoding="utf-8").read().split("\\n")
        return xy, labels, texts

    name = st.selectbox("Map", {names!r}, key="name")
    xy, labels, texts = load(name)
    fig = map_figure(xy, texts, color=labels, color_name="label", title=f"{{name}}: PCA map",
                     subtitle=f"n = {{len(xy):,}}", max_points=None)
    st.plotly_chart(fig, key=f"map-{{name}}")
    """
)
PLOTLY_DRAWN = """([title, n]) => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')].find(
    (g) => g._fullLayout && String(g._fullLayout.title?.text || '').includes(title));
  if (!gd || !gd.calcdata || !gd.querySelector('canvas')) return false;
  return (gd._fullData || []).reduce((a, t) => a + (t._length || 0), 0) === n;
}"""
FRAMES = (
    "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now()))))"
)


def plotly_pick(page, name: str, n: int, timeout_ms: float) -> float | None:
    """Choose ``name`` in the peer app's select box: seconds until plotly holds all ``n`` points
    and has painted, or None if not within the time limit."""
    select = page.locator('[data-testid="stSelectbox"]').first
    try:
        return choose(page, select, name, PLOTLY_DRAWN, [f"{name}: PCA map", n], timeout_ms, painted=True)
    except Exception as exc:  # playwright's TimeoutError
        if "Timeout" not in type(exc).__name__:
            raise
        return None


def run_peer(browser, store: Path, plan: Plan, cache: Path, port: int, shots: Path) -> list[Row]:
    data = cache / "ui_peer"
    export_peer(store, data, [plan.start, plan.small, plan.big])
    names = [START, corpus_name(plan.small), corpus_name(plan.big)]
    app = data / "peer_app.py"
    app.write_text(PEER_APP.format(root=str(ROOT), data=str(data), names=names))
    proc, url = webgl.start(app, port)
    rows = []
    try:
        row = Row(f"{plan.small:,} texts, plotly scattergl (the page before): chosen -> drawn")
        for _ in range(plan.reps):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function(PLOTLY_DRAWN, arg=[f"{START}: PCA map", plan.start], timeout=180_000)
            wait_for_app(page, 180_000)
            dt = plotly_pick(page, names[1], plan.small, 300_000)
            row.add(dt)
            print(f"plotly {names[1]}: {dt:.2f} s (load {load():.1f})", flush=True)
            page.screenshot(path=str(shots / f"plotly-{names[1]}.png"))
            page.close()
        rows.append(row)
        big = Row(
            f"{plan.big:,} texts, plotly scattergl: chosen -> drawn (limit {plan.peer_big_timeout_s:.0f} s)"
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_function(PLOTLY_DRAWN, arg=[f"{START}: PCA map", plan.start], timeout=180_000)
        wait_for_app(page, 180_000)
        dt = plotly_pick(page, names[2], plan.big, plan.peer_big_timeout_s * 1000)
        if dt is None:
            body = page.locator("body").inner_text()[-400:].replace("\n", " ")
            big.note = f"not drawn within {plan.peer_big_timeout_s:.0f} s; the page's text ends: {body!r}"
            big.loads.append(load())
        else:
            big.add(dt)
        print(f"plotly {names[2]}: {dt} (load {load():.1f}) {big.note}", flush=True)
        page.screenshot(path=str(shots / f"plotly-{names[2]}.png"))
        page.close()
        rows.append(big)
    finally:
        stop(proc)
    return rows


# ---------------------------------------------------------------- 5M: the component alone


LAST_PHASES: dict = {}


def component_pick(page, name: str, n: int) -> float:
    """Choose a map in bench_ui_webgl.py's app; seconds from the mouse-up until drawn."""
    drawn = f"(n) => {webgl.HANDLE} && {webgl.HANDLE}.drawn() === n"
    dt = choose(page, page.locator('[data-testid="stSelectbox"]').first, name, drawn, n, 600_000)
    phases = json.loads(page.evaluate(f"() => {webgl.HANDLE}.view.root.dataset.phases"))
    phases["wait"] = round(phases.pop("start") - page.evaluate("() => window.__up"))
    LAST_PHASES.clear()
    LAST_PHASES.update(phases)
    return dt


def run_huge(browser, plan: Plan, cache: Path, port: int, shots: Path) -> list[Row]:
    data = cache / "ui_webgl"
    huge = size_name(plan.huge)
    sizes = {"tiny": 2_000, huge: plan.huge}
    for name, n in sizes.items():
        webgl.make(name, n, data)
    app = data / "app_bench_ui.py"
    app.write_text(webgl.APP.format(dashboard=str(ROOT / "dashboard"), cache=str(data), names=list(sizes)))
    proc, url = webgl.start(app, port)
    rows = []
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_function(f"() => {webgl.HANDLE} && {webgl.HANDLE}.drawn() === 2000", timeout=180_000)
        wait_for_app(page)
        first = Row(
            f"{plan.huge:,} synthetic points, component app: first choice (server loads the .npy) -> drawn"
        )
        first.add(component_pick(page, huge, plan.huge))
        first.note = f"phases (ms) {LAST_PHASES}"
        print(f"{huge} first: {first.values[0]:.2f} s {first.note} (load {load():.1f})", flush=True)
        wait_for_app(page, 600_000)
        component_pick(page, "tiny", 2_000)
        wait_for_app(page)
        again = Row(f"{plan.huge:,} synthetic points, component app: chosen again -> drawn")
        again.add(component_pick(page, huge, plan.huge))
        again.note = f"phases (ms) {LAST_PHASES}"
        print(f"{huge} again: {again.values[0]:.2f} s {again.note} (load {load():.1f})", flush=True)
        wait_for_app(page, 600_000)
        page.screenshot(path=str(shots / f"component-{huge}.png"))
        frames = Row(f"{plan.huge:,} synthetic points, component app: time per frame while panning")
        for f in webgl.pan_frames(page, 3.0):
            frames.add(f / 1000)
        page.close()
        rows += [first, again, frames]
    finally:
        stop(proc)
    return rows


# ---------------------------------------------------------------- report


def cell(row: Row, v: float) -> str:
    return f"{v:,.0f} MiB" if row.unit == "MiB" else f"{v:.3f} s"


def table(rows: list[Row]) -> str:
    out = [
        "| measure | n | median | min – max | load (1 min) | goal |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        load_s = f"{min(r.loads):.1f}–{max(r.loads):.1f}" if r.loads else ""
        if not r.values:
            out.append(f"| {r.label} | 0 | – | – | {load_s} | {r.goal} |")
            continue
        v = np.array(r.values, dtype=float)
        spread = f"{cell(r, v.min())} – {cell(r, v.max())}" if len(v) > 1 else ""
        out.append(
            f"| {r.label} | {len(v)} | {cell(r, statistics.median(v))} | {spread} | {load_s} | {r.goal} |"
        )
    return "\n".join(out)


def main(argv=None) -> int:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="small sizes (3k, 20k, 50k), one tab each: a smoke run"
    )
    ap.add_argument("--cache", type=Path, default=HERE / ".cache", help="where the store and data files live")
    ap.add_argument("--port-base", type=int, default=8760, help="ports used: this and the next three")
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["page", "alone", "peer", "huge"], help="parts to leave out"
    )
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    cache = args.cache.resolve()
    logs, shots = cache / "ui_logs", cache / "ui_shots"
    for d in (cache, logs, shots):
        d.mkdir(parents=True, exist_ok=True)
    store = cache / plan.store_name
    print(f"machine: {machine()}; load average {os.getloadavg()}", flush=True)
    t0 = time.perf_counter()
    kind = prepare(store, [plan.start, plan.small, plan.big])
    alone = cache / plan.store_name.replace(".duckdb", "_alone.duckdb")
    if "alone" not in args.skip:
        prepare(alone, [plan.start, plan.small])
    print(f"stores ready ({kind}) in {time.perf_counter() - t0:.1f} s: {store}", flush=True)
    rows: list[Row] = []
    t_run = time.perf_counter()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=ARGS)
        print(f"browser: Chromium {browser.version} (headless, {' '.join(ARGS)})", flush=True)
        try:
            if "page" not in args.skip:
                rows += run_page(browser, store, plan, args.port_base, logs, shots)
            if "alone" not in args.skip:
                rows += run_alone(browser, alone, plan, args.port_base + 3, logs)
            if "peer" not in args.skip:
                rows += run_peer(browser, store, plan, cache, args.port_base + 1, shots)
            if "huge" not in args.skip:
                rows += run_huge(browser, plan, cache, args.port_base + 2, shots)
        finally:
            browser.close()
    print(f"\nmeasured in {time.perf_counter() - t_run:.0f} s; screenshots in {shots}\n")
    print(table(rows))
    mine = next((r for r in rows if r.label.startswith(f"{plan.small:,} texts: corpus chosen")), None)
    peer = next((r for r in rows if r.label.startswith(f"{plan.small:,} texts, plotly")), None)
    if mine and peer and mine.values and peer.values:
        ratio = statistics.median(peer.values) / statistics.median(mine.values)
        print(f"\nat {plan.small:,} texts: plotly scattergl / the WebGL Map page = {ratio:.1f}x (medians)")
    for r in rows:
        if r.note:
            print(f"- {r.label}: {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
