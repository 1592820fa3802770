"""Screenshot-ready output: static images, the HTML report (opened offline in Chromium),
deep links that reproduce a view, presentation mode, and the screenshot command."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, make_corpus, streamlit_server

from analytics import Store, embed_corpus
from analytics.export import figure_image
from analytics.figures import depth_histogram
from analytics.report import build_report
from analytics.screenshot import CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    not Path("/usr/bin/chromium").exists(), reason="EXPORT TESTS SKIPPED: /usr/bin/chromium is missing"
)
EMBEX = Path(sys.executable).with_name("embex")


def pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)


@pytest.fixture(scope="module")
def report_store(tmp_path_factory, sample_rows, embedder):
    path = tmp_path_factory.mktemp("report") / "report.duckdb"
    world = [r["text"] for r in sample_rows if r["label"] == "World"][:80]
    sports = [r["text"] for r in sample_rows if r["label"] == "Sports"][:80]
    with Store(path) as s:
        s.add_corpus(
            "world", make_corpus(world + ["<script>alert(1)</script>"], ["World"] * 81), label_column="label"
        )
        s.add_corpus("sports", make_corpus(sports, ["Sports"] * 80), label_column="label")
        for name in ("world", "sports"):
            embed_corpus(s, name, embedder)
    return path


def test_png_has_the_requested_size_and_is_not_blank_and_svg_parses():
    fig = depth_histogram(np.random.default_rng(0).normal(1, 0.05, 500), title="t", subtitle="s")
    png = figure_image(fig, "png", width=600, height=400, scale=2)
    img = pixels(png)
    assert img.shape == (800, 1200)
    assert img.std() > 5  # not one flat colour
    svg = figure_image(fig, "svg", width=600, height=400)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.get("width") == "600"
    with pytest.raises(ValueError, match="format must be"):
        figure_image(fig, "gif")


def test_report_opens_offline_with_its_figures_and_the_shift_numbers(report_store, tmp_path):
    from playwright.sync_api import sync_playwright

    with Store(report_store) as s:
        report = build_report(
            s,
            "world",
            "sentence-transformers/all-MiniLM-L6-v2",
            compare="sports",
            method="pca",
            permutations=199,
        )
    path = tmp_path / "report.html"
    path.write_text(report.html, encoding="utf-8")
    r = report.shift
    assert (
        f"{r.q:.4f}" in report.html
        and f"{r.w:.4f}" in report.html
        and f"{r.p_permutation:.4g}" in report.html
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report.html
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True)
        requests: list[str] = []
        page = context.new_page()
        page.on("request", lambda req: requests.append(req.url))
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(path.as_uri())
        page.locator("#fig-shift .main-svg").first.wait_for(timeout=30_000)
        assert page.locator(".js-plotly-plot").count() == 4  # with F and G on one map
        for fig_id in ("fig-map", "fig-depth", "fig-joint", "fig-shift"):
            assert page.locator(f"#{fig_id} .main-svg").count() >= 1
        assert "G has shifted away from F" in page.inner_text("body")
        assert all(u.startswith(("file:", "data:", "blob:")) for u in requests), requests
        assert dialogs == []
        browser.close()


def test_cli_report_writes_html_and_pngs(report_store, tmp_path):
    out = tmp_path / "out" / "report.html"
    proc = subprocess.run(
        [
            str(EMBEX),
            "--store",
            str(report_store),
            "report",
            "world",
            "--compare",
            "sports",
            "--out",
            str(out),
            "--png-dir",
            str(tmp_path / "png"),
            "--method",
            "pca",
            "--permutations",
            "199",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert out.exists() and data["q"] < 0.3
    for name in ("map", "depth", "shift"):
        img = pixels((tmp_path / "png" / f"{name}.png").read_bytes())
        assert img.shape == (1400, 2400) and img.std() > 5


@pytest.fixture(scope="module")
def server(report_store):
    with streamlit_server(report_store) as url:
        yield url


def test_deep_link_reproduces_the_view_and_presentation_hides_chrome(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server}/map?corpus=sports&method=pca&color=label")
        page.get_by_text("sports: PCA map").first.wait_for(timeout=60_000)
        assert page.get_by_role("radio", name="PCA").is_checked()
        assert page.locator('[data-testid="stSidebar"]').is_visible()
        page.goto(f"{server}/map?corpus=world&method=umap&n_neighbors=7&color=label&presentation=1")
        page.get_by_text("world: UMAP map").first.wait_for(timeout=120_000)
        # the map's provenance caption (above the WebGL map) names the link's parameters
        caption = page.locator('[data-testid="stCaptionContainer"]').filter(has_text="corpus: world")
        assert "UMAP (n_neighbors=7," in caption.first.inner_text()
        assert not page.locator('[data-testid="stSidebar"]').is_visible()
        browser.close()


def test_screenshot_command_saves_nonblank_pngs_of_each_page(server, report_store, tmp_path):
    pages = [
        "",
        "upload",
        "embed?corpus=world",
        "map?corpus=world&method=pca",
        "depth?corpus=world&distance=chord",
        "outliers?corpus=world",
        "shift?shift_f=world&shift_g=sports",
        "retrieval?corpus=world",
        "report?corpus=world",
    ]
    urls = [f"{server}/{p}" for p in pages]
    proc = subprocess.run(
        [
            str(EMBEX),
            "--store",
            str(report_store),
            "screenshot",
            *urls,
            "--out",
            str(tmp_path),
            "--width",
            "1200",
            "--height",
            "800",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "EMBEX_STORE": str(report_store)},
    )
    assert proc.returncode == 0, proc.stderr
    files = json.loads(proc.stdout)["files"]
    assert len(files) == len(pages)
    for f in files:
        img = pixels(Path(f).read_bytes())
        assert img.shape == (800, 1200) and img.std() > 5, f
    shots = ROOT / "test-artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    for f in files:
        Path(shots / Path(f).name).write_bytes(Path(f).read_bytes())
