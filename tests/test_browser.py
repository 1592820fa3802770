"""End to end in a real browser: the real server on a free port, Debian chromium driven by
Playwright, a walk through every page as a user would, a screenshot of each page under
test-artifacts/ (git-ignored), and hostile texts that must show as text and never run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from conftest import ROOT, streamlit_server

from analytics.screenshot import wait_for_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
XSS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
MAP = "Object.values(window.__embexScatter || {}).find(h => h.view.root.isConnected)"  # the page's map

if not Path(CHROMIUM).exists():
    pytest.skip(
        f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing (scripts/test installs Debian chromium where it can).",
        allow_module_level=True,
    )
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    with streamlit_server(tmp / "e2e.duckdb") as url:
        yield url, tmp


@pytest.fixture(scope="module")
def corpus_file(server, sample_rows):
    _, tmp = server
    path = tmp / "e2e news.csv"
    world = [r["text"] for r in sample_rows if r["label"] == "World"][:40]
    sports = [r["text"] for r in sample_rows if r["label"] == "Sports"][:40]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(
            [(t, "World") for t in world] + [(t, "Sports") for t in sports] + [(x, "World") for x in XSS]
        )
    return path


def go(page, title: str) -> None:
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=title if title != "Home" else "Embedding Explorer").first.wait_for()


def choose(page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def idle(page, timeout: float = 120_000) -> None:
    """Wait until the app has finished running the page's script."""
    page.wait_for_timeout(300)  # a rerun triggered by the last action has started
    wait_for_app(page, timeout)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_walk_every_page(server, corpus_file, browser):
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    # nothing but the server: no CDN font, favicon, script or tracker (a hosted instance may
    # have no internet, and an analyst's corpus must not leak through referrers)
    outside: list[str] = []
    page.on(
        "request", lambda r: outside.append(r.url) if not r.url.startswith((url, "data:", "blob:")) else None
    )
    page.goto(url)
    page.get_by_role("heading", name="Embedding Explorer").wait_for(timeout=60_000)
    shot(page, "01-home")

    go(page, "Upload")
    bad = corpus_file.with_name("bad.csv")
    bad.write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    page.locator('input[type="file"]').set_input_files(str(bad))
    page.get_by_text("is not valid utf-8").wait_for()
    page.locator('input[type="file"]').set_input_files(str(corpus_file))
    page.get_by_role("button", name="Save corpus").wait_for()
    page.get_by_label("Corpus name").fill("e2e")
    page.get_by_label("Corpus name").press("Enter")
    idle(page)
    page.get_by_role("button", name="Save corpus").click()
    page.get_by_text("Saved e2e: 82 texts").wait_for()
    page.get_by_text("Split a corpus by a metadata column").click()
    page.get_by_role("button", name="Split").click()
    page.get_by_text("Made 2 corpora").wait_for(state="attached")  # inside the (re-collapsed) expander
    shot(page, "02-upload")

    go(page, "Embed")
    page.get_by_role("button", name="Embed", exact=True).click()
    page.get_by_text("new text(s) on").wait_for(timeout=180_000)
    assert "82 new text(s)" in page.get_by_text("new text(s) on").inner_text()
    shot(page, "03-embed")

    go(page, "Map")
    # the WebGL map (dashboard/scatter.py): drawn when its component says so
    page.wait_for_function(f"() => {{ const h = {MAP}; return h && h.drawn() > 0; }}", timeout=180_000)
    idle(page)
    page.get_by_text("e2e: UMAP map").first.wait_for()
    assert page.evaluate(f"() => {MAP}.drawn()") == 82
    shot(page, "04-map")
    page.locator(".exs-root").screenshot(path=str(ARTIFACTS / "map-chart.png"))
    # a laptop screen, as docs/screenshots/map.png shows it: the map ends above the fold
    page.set_viewport_size({"width": 1440, "height": 900})
    page.wait_for_timeout(500)
    assert page.evaluate(f"() => {MAP}.view.canvas.getBoundingClientRect().bottom") <= 900
    page.screenshot(path=str(ARTIFACTS / "map-1440x900.png"))
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.wait_for_timeout(300)
    # a lasso (shift-drag) just inside the canvas's edges takes every point
    box = page.evaluate(
        f"() => {{ const r = {MAP}.view.canvas.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }}"
    )
    x0, y0, w, h = box
    page.keyboard.down("Shift")
    page.mouse.move(x0 + 4, y0 + 4)
    page.mouse.down()
    for fx, fy in ((0.99, 0.01), (0.99, 0.99), (0.01, 0.99), (0.01, 0.01)):
        page.mouse.move(x0 + fx * w, y0 + fy * h, steps=8)
        page.wait_for_timeout(40)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.get_by_text("selected texts").first.wait_for(timeout=60_000)
    selected = page.get_by_role("heading", name="selected texts").inner_text()
    assert selected == "82 selected texts"
    shot(page, "05-map-selection")

    go(page, "Depth")  # scoped to the selection made on the map, which it says
    page.get_by_text("Scoped to the selection: 82 of 82 texts").wait_for(timeout=60_000)
    page.get_by_text("The median text").wait_for(timeout=60_000)
    idle(page)
    page.get_by_text("TTE depth within the selection (cosine)").first.wait_for()
    page.get_by_role("button", name="Clear selection").click()
    page.get_by_text("Scoped to the selection").wait_for(state="detached", timeout=60_000)
    idle(page)
    page.get_by_text("TTE depth (cosine)").first.wait_for()
    shot(page, "06-depth")

    go(page, "Outliers")
    page.get_by_text("5 outliers flagged").wait_for(timeout=60_000)
    page.locator('[data-testid="stExpander"]').nth(4).wait_for()
    idle(page)
    shot(page, "07-outliers")
    shown = page.locator('[data-testid="stMain"]').inner_text()
    for hostile in XSS:  # shown as the text it is
        assert hostile in shown

    go(page, "Shift test")
    idle(page)
    choose(page, "Reference corpus F", "e2e [label=World]")
    idle(page)
    choose(page, "Comparison corpus G", "e2e [label=Sports]")
    idle(page)
    page.get_by_role("button", name="Run", exact=True).click()  # nothing runs before Run
    page.get_by_test_id("stAlertContentError").get_by_text("G has shifted away from F").wait_for(
        timeout=60_000
    )
    q = float(
        page.locator('[data-testid="stMetric"]')
        .filter(has_text="Q")
        .first.locator('[data-testid="stMetricValue"]')
        .inner_text()
    )
    assert q < 0.3
    idle(page)
    # the cross-checks and the two example tables, nothing else
    assert page.locator('[data-testid="stDataFrame"]').count() == 3
    shot(page, "08-shift")
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.locator('[data-testid="stMain"]').screenshot(path=str(ARTIFACTS / "shift-page.png"))

    go(page, "Retrieval")
    idle(page)
    page.get_by_label("Query").fill("Olympic gold medal")
    page.get_by_label("Query").press("Enter")
    page.get_by_text("Top 10 for the query").wait_for(timeout=60_000)
    idle(page)
    shot(page, "09-retrieval")

    assert dialogs == [], f"user text ran as code: {dialogs}"
    assert outside == [], f"the pages fetched from outside the server: {outside[:5]}"
