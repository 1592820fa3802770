"""The Outliers page in a real browser (the real server, ``embex serve``, and Chromium) on a
CLINC150 slice (tests/fixtures/clinc150_slice.jsonl: 400 in-scope queries of 20 intents, 40
out-of-scope): every flagged row is in the downloaded CSV under a name from the corpus and the
view, with its label; the list pages; a reviewed mark survives a reload (it is in the store,
not in the session); "Show on the map" opens the Map with the flagged rows as the selection.
One server start. The page's logic in AppTest: tests/test_outliers.py."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, start_server

from analytics import Store, import_vectors
from analytics.corpus import Corpus
from analytics.embedding import DEFAULT_MODEL
from analytics.outliers import find_outliers

CLINC_SLICE = ROOT / "tests" / "fixtures" / "clinc150_slice.jsonl"
PORTS = range(8710, 8720)  # this test's own ports (one free one is taken)
SHOTS = Path("/tmp/h1/shots")


@pytest.fixture(scope="module")
def clinc_store(tmp_path_factory, embed_cached):
    """A store holding the slice as corpus "clinc150" (label column "intent"), its vectors from
    the bundled model (cached on disk by conftest) under the model's key: no embedding here."""
    rows = [json.loads(line) for line in CLINC_SLICE.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows]
    X = embed_cached(texts)
    path = tmp_path_factory.mktemp("outliers_page") / "clinc.duckdb"
    with Store(path) as s:
        corpus = Corpus(texts, [{"intent": r["intent"]} for r in rows], "text", "CLINC150 slice")
        s.add_corpus("clinc150", corpus, label_column="intent")
        import_vectors(s, "clinc150", X, DEFAULT_MODEL)
    return path, X, [r["intent"] for r in rows]


def _free_port() -> int:
    import socket

    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def _headings(page) -> list[str]:
    """The listed outliers' headings ("#1 · oos · local depth 1.2345 · row 417"), in order."""
    texts = page.locator('[data-testid="stMarkdownContainer"] p').all_inner_texts()
    return [t for t in texts if re.match(r"#\d", t)]


def _review_boxes(page):
    """Each listed outlier's "Reviewed" box (not the "Hide reviewed" toggle), in order."""
    return page.locator('[data-testid="stCheckbox"]').filter(has_text=re.compile(r"^Reviewed"))


@pytest.mark.slow
def test_every_outlier_is_in_the_csv_the_list_pages_and_a_reviewed_mark_survives_a_reload(
    clinc_store, browser, tmp_path
):
    from analytics.screenshot import wait_for_app

    path, X, intents = clinc_store
    served = tmp_path / "server.duckdb"
    shutil.copy(path, served)  # the server's own file: a DuckDB file has one writer process
    report = find_outliers(X, quantile=0.25, k=10)  # what the page must list: 110 of 440
    flagged = report.flagged.tolist()
    assert len(flagged) == 110
    proc, url = start_server(served, port=_free_port())
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/outliers?corpus=clinc150&quantile=0.25")
        page.get_by_text("110 outliers flagged", exact=False).wait_for(timeout=180_000)
        wait_for_app(page)
        _shot(page, "01-outliers-page-1")
        heads = _headings(page)
        assert len(heads) == 50  # 50 a page
        assert heads[0].startswith(f"#1 · {intents[flagged[0]]} · local depth ")
        assert [int(h.rsplit("row ", 1)[1].replace(",", "")) for h in heads] == flagged[:50]

        # the CSV: every flagged row, in rank order, with its label and its neighbours' labels
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download all 110 as CSV").click()
        download = dl.value
        assert download.suggested_filename == "clinc150-outliers-knn-25pct.csv"
        with open(download.path(), encoding="utf-8", newline="") as f:
            table = list(csv.DictReader(f))
        assert [int(r["row"]) for r in table] == flagged
        assert [r["label"] for r in table] == [intents[i] for i in flagged]
        assert [r["intent"] for r in table] == [intents[i] for i in flagged]
        first_ids = [int(j) for j in table[0]["neighbours"].split("; ")]
        assert first_ids == report.neighbours[0].tolist()
        assert table[0]["neighbour labels"].split("; ") == [intents[j] for j in first_ids]
        assert np.mean([r["label"] == "oos" for r in table[:20]]) >= 0.8  # k-NN isolation finds them

        # a reviewed mark: stored, so a reload (a new session) still shows it
        _review_boxes(page).first.click()
        page.get_by_text("1 marked reviewed", exact=False).wait_for(timeout=60_000)
        wait_for_app(page)
        assert page.get_by_text("Reviewed by session ", exact=False).count() == 1

        # paging
        page.get_by_role("button", name="Next").first.click()
        page.get_by_text("Page 2 of 3 · outliers 51–100 of 110").wait_for(timeout=60_000)
        wait_for_app(page)
        heads = _headings(page)
        assert heads[0].startswith("#51 · ") and heads[-1].startswith("#100 · ")
        page.get_by_role("button", name="Next").first.click()
        page.get_by_text("Page 3 of 3 · outliers 101–110 of 110").wait_for(timeout=60_000)
        wait_for_app(page)
        assert [int(h.rsplit("row ", 1)[1].replace(",", "")) for h in _headings(page)] == flagged[100:]
        _shot(page, "02-outliers-page-3")

        page.reload()
        page.get_by_text("1 marked reviewed", exact=False).wait_for(timeout=120_000)
        wait_for_app(page)
        box = _review_boxes(page).first
        assert box.locator("input").is_checked()
        assert box.inner_text().startswith("Reviewed by session ")
        _shot(page, "03-after-reload")

        # the flagged rows on the map: the selection, in the URL, on the Map page
        page.get_by_role("button", name="Show on the map (110)").click()
        page.wait_for_url(re.compile(r"/map\?.*sel="), timeout=60_000)
        page.get_by_text("Map", exact=True).first.wait_for(timeout=60_000)
        assert not errors, errors
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
