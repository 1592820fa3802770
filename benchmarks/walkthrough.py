"""The analyst's walkthrough (issue 14): one path through the dashboard, as a new analyst takes it,
with its actions counted and its steps timed in a real browser.

    .venv/bin/python benchmarks/walkthrough.py            # CLINC150 slice of 3,300 queries
    .venv/bin/python benchmarks/walkthrough.py --quick    # 170 queries and a PCA map (a smoke run)

The path: Upload a CSV → Embed it → the Map → a selection (the "oos" bar of the counts beside
the map) → Shift test (the selection vs the rest, Run; Q and p read off the page) → Outliers
(how many of the flagged are out of scope) → Report (build, download) → back to the Map and
export the chart as PNG. Each step checks what the page shows (the label column the page
guessed, the embedded count, the map drawn, 300 selected, Q and p, the report's file name and
that it covers the selection, the PNG's magic bytes and file name).

Data: a CLINC150 slice (Larson et al., EMNLP 2019, CC BY 3.0; ../shared/data/clinc150) made
here: the first ``--per-intent`` queries of each of the 150 intents of the test split and the
first ``--oos`` out-of-scope test queries, columns text, intent, domain (from domains.json;
"oos" for the out-of-scope queries), written as a CSV into the cache directory.

The setting: a fresh store (no bundled sample) in a temporary directory (or ``--tmp``), the
real server (``embex serve``, as tests/conftest.py starts it) on ``--port``, Debian's Chromium
driven by Playwright, headless, 1440x900. The map is the page's default method (UMAP), or the
one ``--method`` names, chosen on the page's radio (one more action).

How actions are counted: one action each time a user clicks (a button, a link in the sidebar,
a bar, a radio option, an expander), types into a box, picks a file, or chooses an option (a
select box opened and an option picked is one action for a single choice). Reading the page,
waiting and scrolling are not actions. A value the page preselects correctly costs nothing;
where it preselects something else the script changes it and counts that.

How time is measured: each step from its first action until the page shows that step's
result (the job's end included: embedding, the map's projection, the shift test, the
outliers' ranking, the report); there is no think time between actions, so the numbers are
the machine's waits plus Streamlit's reruns. The whole path is timed too. The one-minute load
average is printed before and after: other work may share the cores.

A screenshot of the viewport (what the analyst sees at 1440x900) is saved after each step into
``--out`` (benchmarks/.cache/walkthrough/ by default), with the downloaded report and PNG, the
server's log, and two screenshots outside the path (the Outliers page without the selection,
the report opened from disk). The exit status is 1 when the report or PNG checks fail or the
browser saw a page error.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402

from analytics.screenshot import CHROMIUM_ARGS, serving  # noqa: E402

CLINC = ROOT.parent / "shared" / "data" / "clinc150"
CACHE = HERE / ".cache" / "walkthrough"
CORPUS = "clinc150_walkthrough"  # the CSV's stem: the Upload page names the corpus after it
VIEWPORT = {"width": 1440, "height": 900}
#: the map component's handle (dashboard/components/scatter): the one on the page now
HANDLE = "Object.values(window.__embexScatter || {}).find(h => h.view.root.isConnected)"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METHODS = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}  # as the Map's radio names them
LONG = 1_800_000  # ms: a job on a loaded 2-core machine (embedding, UMAP, the report)


# -- the data -----------------------------------------------------------------------------------


def make_slice(out_dir: Path, *, per_intent: int = 20, oos: int = 300, source: Path = CLINC) -> Path:
    """The CLINC150 slice as ``out_dir/clinc150_walkthrough.csv`` (text, intent, domain): the first
    ``per_intent`` test queries of each intent in file order, then the first ``oos`` oos_test ones."""
    data = json.loads((source / "data_full.json").read_text(encoding="utf-8"))
    domains = json.loads((source / "domains.json").read_text(encoding="utf-8"))
    domain_of = {intent: d for d, intents in domains.items() for intent in intents}
    taken: dict[str, int] = defaultdict(int)
    rows = []
    for text, intent in data["test"]:
        if taken[intent] < per_intent:
            taken[intent] += 1
            rows.append((text, intent, domain_of[intent]))
    rows += [(text, "oos", "oos") for text, _ in data["oos_test"][:oos]]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{CORPUS}.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "intent", "domain"])
        writer.writerows(rows)
    return path


# -- the server ---------------------------------------------------------------------------------


def start_server(store: Path, port: int, log: Path, timeout: float = 180):
    """``embex serve`` on a fresh store, as tests/conftest.py's start_server runs it (no sample),
    its output drained into ``log`` (a full pipe would stall the server); (process, URL)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEX_SAMPLE": "0"}
    cmd = [sys.executable, "-m", "analytics.cli", "serve", "--store", str(store)]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--address", "127.0.0.1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )

    def drain():
        with open(log, "wb") as f:
            for line in proc.stdout:
                f.write(line)
                f.flush()

    threading.Thread(target=drain, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    if not serving(url, proc, timeout=timeout):
        proc.kill()
        raise RuntimeError(f"the dashboard did not come up on {url}; see {log}")
    return proc, url


# -- the walk -----------------------------------------------------------------------------------


@dataclass
class Step:
    name: str
    actions: list[str] = field(default_factory=list)
    seconds: float = 0.0
    result: str = ""
    screenshot: str = ""


class Walk:
    """The browser page, the steps so far and their actions. :meth:`act` counts one action
    (and starts the step's clock at the first); :meth:`done` stops it and takes the screenshot."""

    def __init__(self, page, out: Path):
        self.page, self.out = page, out
        self.steps: list[Step] = []
        self.notes: list[str] = []
        self._t0 = 0.0

    def step(self, name: str) -> Step:
        self.steps.append(Step(name))
        return self.steps[-1]

    def act(self, what: str) -> None:
        step = self.steps[-1]
        if not step.actions:
            self._t0 = time.perf_counter()
        step.actions.append(what)

    def done(self, result: str) -> None:
        step = self.steps[-1]
        step.seconds = time.perf_counter() - self._t0
        step.result = result
        self.page.mouse.move(5, 5)  # no tooltip of the last button hovered over the page
        self.page.wait_for_timeout(600)  # plotly and the map finish drawing (not timed)
        shot = (
            self.out / f"{len(self.steps):02d}-{re.sub(r'[^a-z0-9]+', '-', step.name.lower()).strip('-')}.png"
        )
        self.page.screenshot(path=str(shot))
        step.screenshot = str(shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot)
        print(f"  {step.name}: {len(step.actions)} actions, {step.seconds:.1f} s · {result}", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  note: {text}", flush=True)

    def download(self, label: str, button) -> Path:
        """Wait for ``button`` (its name ``label``), click it (one action) and save the file it
        downloads under its suggested name in the output folder."""
        button.wait_for(timeout=LONG)
        script_done(self.page)
        self.act(label)
        with self.page.expect_download(timeout=LONG) as info:
            button.click()
        path = self.out / info.value.suggested_filename
        info.value.save_as(path)
        return path

    def nav(self, title: str) -> None:
        """A click on a page's link in the sidebar."""
        self.act(f"sidebar: {title}")
        self.page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()


def script_done(page, timeout: float = LONG) -> None:
    from analytics.screenshot import wait_for_app

    page.wait_for_timeout(300)  # the rerun a click starts has begun
    wait_for_app(page, timeout)


def choose(page, box: str, option: str, tries: int = 5) -> None:
    """Open the select box labelled ``box`` and pick ``option`` (one action). A rerun that lands
    while the list is open closes it: then open it again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(tries):
        page.locator('[data-testid="stSelectbox"]').filter(has_text=box).first.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            script_done(page)


def checked_method(page) -> str:
    """The Map's method as its radio shows it."""
    return next((m for m in METHODS.values() if page.get_by_role("radio", name=m).is_checked()), "none")


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True))
    return box.first.locator('[data-testid="stMetricValue"]').inner_text()


def first_page_labels(page) -> list[str]:
    """The labels of the outliers listed on the page ("#1 · oos · local depth ..." per card)."""
    texts = page.locator('[data-testid="stMarkdownContainer"] p').all_inner_texts()
    return [m.group(1) for t in texts if (m := re.match(r"^#[\d,]+ · (.+?) · ", t))]


def map_drawn(page, timeout: float = LONG) -> int:
    page.wait_for_function(f"() => {{ const h = {HANDLE}; return h && h.drawn() > 0; }}", timeout=timeout)
    return page.evaluate(f"() => {HANDLE}.drawn()")


def walk(page, url: str, csv_path: Path, out: Path, *, n_rows: int, n_oos: int, method: str) -> Walk:
    w = Walk(page, out)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.get_by_text("Corpora in this store").wait_for(timeout=LONG)
    script_done(page)

    # 1. Upload: the file, the label column (the page guesses it), Save
    w.step("Upload")
    w.nav("Upload")
    drop = page.locator('[data-testid="stFileUploader"] input[type=file]')
    drop.wait_for(state="attached", timeout=LONG)
    w.act("pick the CSV")
    drop.set_input_files(str(csv_path))
    page.get_by_text(f"{n_rows:,} texts; metadata columns: intent, domain").wait_for(timeout=LONG)
    script_done(page)
    guessed = page.get_by_role("combobox", name="Label column (colours the map)").input_value()
    if guessed != "intent":
        w.note(f"the Upload page preselected {guessed!r} as the label column, not 'intent'; changed it")
        w.act("label column: intent")
        choose(page, "Label column", "intent")
        page.wait_for_function(
            "() => [...document.querySelectorAll('input[role=combobox]')].some(e => e.value === 'intent')"
        )
        script_done(page)
    w.act("Save corpus")
    page.get_by_role("button", name="Save corpus").click()
    page.get_by_text(f"Saved {CORPUS}: {n_rows:,} texts").wait_for(timeout=LONG)
    w.done(f"saved {n_rows:,} texts; label column preselected: {guessed}")

    # 2. Embed: the page's link, Embed, until the job has ended and the page says so
    w.step("Embed")
    w.act("link: Go to Embed")
    page.get_by_role("link", name="Go to Embed").click()
    button = page.get_by_role("button", name="Embed", exact=True)
    button.wait_for(timeout=LONG)
    script_done(page)
    w.act("Embed")
    button.click()
    page.get_by_text("Every text is embedded").wait_for(timeout=LONG)
    script_done(page)
    shown = metric(page, "Embedded")
    cancel = page.get_by_role("button", name="Cancel").count()
    w.done(f"'Embedded {shown}'" + ("; a Cancel button is still shown" if cancel else ""))
    if shown != f"{n_rows:,} of {n_rows:,} rows":
        w.note(f"the Embed page says {shown!r} after the run")

    # 3. Map: the page's default method (or PCA by its radio, --method pca), until drawn
    w.step("Map")
    w.nav("Map")
    if method != "default":
        shown_as = METHODS[method]
        page.get_by_text("UMAP", exact=True).wait_for(timeout=LONG)
        w.act(f"method: {shown_as}")
        page.get_by_text(shown_as, exact=True).click()
        page.wait_for_function(f"() => location.search.includes('method={method}')", timeout=LONG)
    points = map_drawn(page)
    script_done(page)
    map_method = checked_method(page)
    bottom = page.evaluate(f"() => {HANDLE}.view.root.getBoundingClientRect().bottom")
    fold = f"map bottom at {bottom:.0f} px of {VIEWPORT['height']}"
    w.done(f"{points:,} points drawn ({map_method}); {fold}")

    # 4. Selection: a click on the "oos" bar of "Counts by" beside the map (plotly bars: the
    #    drag layer takes element clicks, so the mouse clicks the bar's centre)
    w.step("Selection (oos bar)")
    counts_by = page.get_by_role("combobox", name="Counts by").input_value()
    bars = page.locator('[data-testid="stPlotlyChart"] .bars .point path')
    bars.first.wait_for(timeout=LONG)
    ys = page.evaluate(
        "() => document.querySelector('[data-testid=\"stPlotlyChart\"] .js-plotly-plot').data.at(-1).y"
    )
    if "oos" not in ys:
        raise AssertionError(f"no 'oos' bar beside the map (Counts by {counts_by}): {ys}")
    box = bars.nth(ys.index("oos")).bounding_box()
    w.act("click the 'oos' bar")
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    heading = page.get_by_role("heading", name="selected texts")
    heading.wait_for(timeout=LONG)
    page.wait_for_function(
        f"() => {{ const h = {HANDLE}; return h && h.view.header.highlight && "
        f"h.view.header.highlight.count === {n_oos}; }}",
        timeout=LONG,
    )
    script_done(page)
    w.done(f"'{heading.inner_text()}' (Counts by {counts_by}); {n_oos:,} highlighted on the map")

    # 5. Shift test: the selection vs the rest, Run; Q and p read off the page
    w.step("Shift test")
    w.nav("Shift test")
    option = page.get_by_text("Selection vs the rest", exact=True)
    option.wait_for(timeout=LONG)
    script_done(page)
    w.act("Compare: Selection vs the rest")
    option.click()
    page.get_by_text("G = the selection", exact=False).wait_for(timeout=LONG)
    script_done(page)
    w.act("Run")
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text("Q", exact=True)).first.wait_for(
        timeout=LONG
    )
    script_done(page)
    q, p_perm, p_comb = metric(page, "Q"), metric(page, "p (permutation)"), metric(page, "p (combined)")
    n_g = metric(page, "n G")
    w.done(f"n G = {n_g}, Q = {q}, p (permutation) = {p_perm}, p (combined) = {p_comb}")

    # 6. Outliers: the page's default ranking (k-NN isolation), scoped to the selection
    w.step("Outliers")
    w.nav("Outliers")
    line = page.get_by_text(re.compile(r"outliers flagged|of the [\d,]+ outliers"))
    line.first.wait_for(timeout=LONG)
    script_done(page)
    said = line.first.inner_text()
    labels = first_page_labels(page)
    w.done(f"'{said.split(';')[0]}'; first page: {labels.count('oos')} of {len(labels)} oos")

    # 7. Report: build it, download it; its name and that it covers the selection
    w.step("Report")
    w.nav("Report")
    build = page.get_by_role("button", name="Build report")
    build.wait_for(timeout=LONG)
    script_done(page)
    scoped = page.get_by_text("Scoped to the selection", exact=False).count()
    w.act("Build report")
    build.click()
    label = "Download report (HTML)"
    report_path = w.download(label, page.get_by_role("button", name=label))
    html = report_path.read_text(encoding="utf-8")
    today = datetime.now(timezone.utc).date().isoformat()
    name_ok = report_path.name == f"{CORPUS}-report-{today}.html"
    covers = f"{n_oos:,} of {n_rows:,} texts: intent = oos" in html
    w.done(
        f"{report_path.name} ({len(html) / 1e6:.1f} MB); name from corpus and date: {name_ok}; "
        f"page scoped to the selection: {bool(scoped)}; report has the selection section: {covers}"
    )

    # 8. PNG: back to the Map (as the analyst left it), "Export this chart", download the PNG
    w.step("PNG of the map")
    w.nav("Map")
    map_drawn(page)
    script_done(page)
    back = checked_method(page)
    if back != map_method:
        w.note(f"back on the Map its method is {back}, not the {map_method} the analyst left it at")
    w.act("expand: Export this chart")
    page.get_by_text("Export this chart", exact=True).click()
    w.act("Prepare PNG and SVG")
    page.get_by_role("button", name="Prepare PNG and SVG").click()
    png_path = w.download("Download PNG", page.get_by_role("button", name="Download PNG"))
    data = png_path.read_bytes()
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    w.done(
        f"{png_path.name}: {len(data) / 1e3:.0f} kB, {width}x{height}, "
        f"PNG magic bytes: {data[:8] == PNG_MAGIC}"
    )

    w.report_html, w.png_path, w.errors = report_path, png_path, errors
    w.checks = {
        "label column preselected": guessed,
        "embedded": shown,
        "selected": n_oos,
        "Q": q,
        "p (permutation)": p_perm,
        "p (combined)": p_comb,
        "outliers line": said,
        "first page oos": (labels.count("oos"), len(labels)),
        "report name ok": name_ok,
        "report covers the selection": covers,
        "png ok": data[:8] == PNG_MAGIC,
        "png name": png_path.name,
    }
    return w


def whole_corpus_outliers(browser, url: str, out: Path) -> tuple[str, list[str]]:
    """Not part of the path (no action counted): the Outliers page in a fresh tab without the
    selection, to read the whole corpus's first page of outliers."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(f"{url}/outliers?corpus={CORPUS}")
        line = page.get_by_text("outliers flagged", exact=False).first
        line.wait_for(timeout=LONG)
        script_done(page)
        page.get_by_role("button", name=re.compile(r"^Download all")).wait_for(timeout=LONG)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "extra-outliers-whole-corpus.png"))
        return line.inner_text(), first_page_labels(page)
    finally:
        page.close()


def look_at_report(browser, report: Path, out: Path) -> None:
    """Not part of the path: the downloaded report opened from disk, for a screenshot."""
    page = browser.new_page(viewport=VIEWPORT)
    try:
        page.goto(report.as_uri())
        page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out / "extra-report-opened.png"))
    finally:
        page.close()


def table(w: Walk) -> str:
    lines = ["| step | actions | what the analyst does | seconds |", "|---|---:|---|---:|"]
    for s in w.steps:
        lines.append(f"| {s.name} | {len(s.actions)} | {'; '.join(s.actions)} | {s.seconds:.1f} |")
    total_a = sum(len(s.actions) for s in w.steps)
    total_s = sum(s.seconds for s in w.steps)
    lines.append(f"| **total** | **{total_a}** | | **{total_s:.1f}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 query per intent and 20 oos, a PCA map")
    ap.add_argument("--per-intent", type=int, default=None, help="test queries per intent (default 20)")
    ap.add_argument("--oos", type=int, default=None, help="out-of-scope test queries (default 300)")
    ap.add_argument(
        "--method", choices=("default", "pca", "umap", "tsne"), default=None, help="the map's method"
    )
    ap.add_argument("--port", type=int, default=8770)
    ap.add_argument("--out", type=Path, default=CACHE, help="screenshots, the slice and the downloads")
    ap.add_argument(
        "--tmp", type=Path, default=None, help="where the fresh store goes (default: a temporary directory)"
    )
    args = ap.parse_args(argv)
    per_intent = args.per_intent or (1 if args.quick else 20)
    n_oos = args.oos or (20 if args.quick else 300)
    method = args.method or ("pca" if args.quick else "default")

    from playwright.sync_api import sync_playwright

    # a kill (timeout, Ctrl-C) still stops the server: it holds the store and the port
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    own_tmp = args.tmp is None
    tmp = Path(tempfile.mkdtemp(prefix="embex-walkthrough-")) if own_tmp else args.tmp
    tmp.mkdir(parents=True, exist_ok=True)
    csv_path = make_slice(out, per_intent=per_intent, oos=n_oos)
    n_rows = per_intent * 150 + n_oos
    store = tmp / "walkthrough.duckdb"
    for stale in (store, store.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    log = out / "server.log"

    load_before = os.getloadavg()[0]
    started = datetime.now(timezone.utc)
    print(f"machine: {machine()}; load average (1 min) {load_before:.1f}")
    print(f"slice: {csv_path} ({n_rows:,} queries: {per_intent} per intent x 150, {n_oos} oos)")
    proc, url = start_server(store, args.port, log)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
                t0 = time.perf_counter()
                try:
                    w = walk(page, url, csv_path, out, n_rows=n_rows, n_oos=n_oos, method=method)
                except Exception:
                    page.screenshot(path=str(out / "failed.png"))  # where it stopped, to look at
                    raise
                wall = time.perf_counter() - t0
                whole_line, whole_labels = whole_corpus_outliers(browser, url, out)
                look_at_report(browser, w.report_html, out)
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()[0]
    server_errors = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if "Traceback" in line or "Error" in line
    ]

    print()
    print(
        f"date {started:%Y-%m-%d %H:%M} UTC; load average (1 min) {load_before:.1f} before, {load_after:.1f} after"
    )
    print(table(w))
    print(f"\nwall clock from the first action to the PNG (with the untimed screenshot pauses): {wall:.1f} s")
    print("\nchecks:")
    for k, v in w.checks.items():
        print(f"  {k}: {v}")
    print(
        f"  outliers of the whole corpus (fresh tab, not counted): '{whole_line.split(';')[0]}'; first page "
        f"{whole_labels.count('oos')} of {len(whole_labels)} oos"
    )
    for n in w.notes:
        print(f"  note: {n}")
    print(f"  browser page errors: {w.errors or 'none'}")
    print(f"  server log lines with Error/Traceback: {len(server_errors)} ({log})")
    for line in server_errors[:10]:
        print(f"    {line}")
    print("\nscreenshots:")
    for s in w.steps:
        print(f"  {s.screenshot}")
    ok = (
        all(
            v for k, v in w.checks.items() if k in ("report name ok", "report covers the selection", "png ok")
        )
        and not w.errors
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
