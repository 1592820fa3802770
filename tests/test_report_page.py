"""The Report page: it reports what is on screen (the Map's colouring and method, the session's
selection, the Shift page's F and G), its corpus pick is its own, and a stale report cannot be
downloaded. In-process page runs (Streamlit's AppTest, real store and job executor) and one
browser test against the real server (Chromium, full tier)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import ROOT, settle, start_server
from test_report import MODEL, clinc_rows, clinc_store, section, table_rows

from analytics.jobs import executor_for
from analytics.selection import Selection

PORT = 8741  # this part's port range: 8740-8749


@pytest.fixture(scope="module")
def store_template(tmp_path_factory):
    return clinc_store(tmp_path_factory.mktemp("report-page") / "template.duckdb")


@pytest.fixture
def store_path(store_template, tmp_path):
    path = tmp_path / "store.duckdb"
    shutil.copy(store_template, path)
    return path


@pytest.fixture
def open_report(store_path, monkeypatch):
    """The Report page in a session that already holds ``state`` (what other pages left)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_STORE", str(store_path))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")

    def run(**state):
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
        at.session_state["model_id"] = MODEL
        for k, v in state.items():
            at.session_state[k] = v
        at.run()
        at.switch_page("views/report.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def build(at, store_path):
    """Click "Build report" and wait for its job; returns the report's HTML (the job's result)."""
    (button,) = [b for b in at.button if b.label == "Build report"]
    button.click().run()
    settle(at, store_path)
    assert [d.proto.label for d in at.get("download_button")] == ["Download report (HTML)"]
    ex = executor_for(store_path)
    job = next(j for j in ex.jobs() if j.kind == "report" and j.state == "done")
    return json.loads(ex.result("report", job.params))["html"]


def test_the_report_pick_is_its_own_and_starts_from_the_maps(open_report):
    at = open_report(corpus="banking")
    assert at.selectbox(key="_report_corpus_select").value == "banking"  # starts from the Map's
    at.selectbox(key="_report_corpus_select").set_value("travel").run()
    assert not at.exception
    assert at.session_state["report_corpus"] == "travel"
    assert at.session_state["corpus"] == "banking"  # the Map's pick is untouched
    assert at.query_params.get("corpus") in (None, "banking", ["banking"])
    at.switch_page("views/map.py").run()
    assert at.selectbox(key="_corpus_select").value == "banking"
    at.switch_page("views/report.py").run()  # and back: the Report keeps its own
    assert at.selectbox(key="_report_corpus_select").value == "travel"


def test_the_report_takes_the_maps_view_and_the_shift_pages_f_and_g_without_writing_them(
    open_report, store_path
):
    state = {
        "corpus": "banking",
        "map_method": "pca",
        "map_color": "domain",
        "shift_f": "banking",
        "shift_g": "travel",
    }
    at = open_report(**state)
    assert at.radio(key="report_method").value == "pca"
    assert at.selectbox(key="report_color").value == "domain"
    assert at.selectbox(key="report_compare").value == "travel"
    html = build(at, store_path)
    inputs = dict(table_rows(section(html, "Inputs")))
    assert inputs["map colour"] == "domain" and inputs["map"].startswith("PCA")
    assert inputs["compared with"] == "travel"
    assert 'id="fig-joint"' in html  # F and G on one map
    for k, v in state.items():  # read, never written
        assert at.session_state[k] == v, k


def test_a_changed_input_takes_the_download_away_until_the_report_is_rebuilt(open_report, store_path):
    at = open_report(corpus="banking", map_method="pca")
    first = build(at, store_path)
    assert dict(table_rows(section(first, "Inputs")))["map colour"] == "intent"
    (caption,) = [c.value for c in at.caption if "Built" in c.value]
    assert "banking\\-report\\-" in caption  # the file's name: corpus, view and date
    at.selectbox(key="report_color").set_value("depth").run()
    assert not at.get("download_button")  # the old report is not offered for the new inputs
    assert [b.label for b in at.button] == ["Build report"]
    assert any("has not been built yet" in i.value for i in at.info)
    second = build(at, store_path)
    assert dict(table_rows(section(second, "Inputs")))["map colour"] == "depth"
    at.selectbox(key="report_color").set_value("intent").run()  # back: that report exists already
    assert [d.proto.label for d in at.get("download_button")] == ["Download report (HTML)"]
    assert not [b for b in at.button if b.label == "Build report"]


def test_the_sessions_selection_scopes_a_section_of_the_report(open_report, store_path):
    sel = Selection("banking", filters=(("intent", ("oos",)),))
    at = open_report(corpus="banking", map_method="pca", _selections={"banking": sel})
    assert any("Scoped to the selection: 20 of 121 texts" in i.value for i in at.info)
    html = build(at, store_path)
    assert "This section covers the selection only: 20 of 121 texts (intent = oos)" in html
    assert dict(table_rows(section(html, "Inputs")))["selection"] == "20 of 121 texts: intent = oos"


def test_the_selection_vs_the_rest_is_offered_with_a_selection_and_taken_from_the_shift_page(
    open_report, store_path
):
    sel = Selection("banking", filters=(("intent", ("oos",)),))
    at = open_report(corpus="banking", map_method="pca", _selections={"banking": sel}, shift_mode="selection")
    compare = at.selectbox(key="report_compare")
    assert compare.options[:2] == ["(none)", "the selection vs the rest"] and "travel" in compare.options
    assert compare.value == "\x00selection"  # the Shift page's last test was the selection vs the rest
    html = build(at, store_path)
    assert dict(table_rows(section(html, "Inputs")))["compared with"] == "the selection vs the rest"
    part = section(html, "Shift test: has the selection shifted away from the rest of banking?")
    stats = dict(table_rows(part))
    assert (stats["n F"], stats["n G"]) == ("101", "20")
    # without a selection the choice is not offered (a choice left from before falls back to none)
    next(b for b in at.button if b.label == "Clear selection").click().run()
    assert not at.exception
    compare = at.selectbox(key="report_compare")
    assert "the selection vs the rest" not in compare.options and compare.value == "\x00none"


@pytest.mark.slow  # a server and a browser
def test_browser_a_stale_report_cannot_be_downloaded(tmp_path, embed_cached):
    """Build, download, change an input: the old report is gone from the page; rebuild and the
    new download holds the new inputs. The downloaded file opens offline and runs no user text."""
    from playwright.sync_api import sync_playwright

    from analytics import Store
    from analytics.corpus import Corpus
    from analytics.embedding import DEFAULT_MODEL, import_vectors
    from analytics.screenshot import CHROMIUM_ARGS

    path = tmp_path / "browser.duckdb"
    rows = [r for r in clinc_rows() if r["domain"] == "banking"]
    rows.append({"text": "<script>alert(1)</script> refund", "intent": "oos", "domain": "banking"})
    with Store(path) as s:
        texts = [r["text"] for r in rows]
        s.add_corpus(
            "clinc150",
            Corpus(texts, [{"intent": r["intent"], "domain": r["domain"]} for r in rows], "text", "test"),
            label_column="intent",
        )
        import_vectors(s, "clinc150", embed_cached(texts), DEFAULT_MODEL)  # the bundled model's vectors
    proc, url = start_server(path, port=PORT)
    shots = ROOT / "test-artifacts" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1440, "height": 900}, accept_downloads=True)
            page.goto(f"{url}/report?report_corpus=clinc150")
            page.get_by_role("button", name="Build report").wait_for(timeout=60_000)
            page.get_by_role("button", name="Build report").click()
            page.get_by_text("Building the report on clinc150").wait_for(timeout=60_000)  # its progress
            page.get_by_text(re.compile(r"\d+% · \d+ s elapsed")).first.wait_for(timeout=60_000)  # a stage
            assert page.get_by_role("button", name="Build report").count() == 0
            page.screenshot(path=str(shots / "report-building.png"))
            dl = page.get_by_role("button", name="Download report (HTML)")
            dl.wait_for(timeout=180_000)
            page.screenshot(path=str(shots / "report-built.png"), full_page=True)
            with page.expect_download() as info:
                dl.click()
            first = info.value
            assert first.suggested_filename.startswith(
                "clinc150-report-"
            ) and first.suggested_filename.endswith(".html")
            first_html = open(first.path(), encoding="utf-8").read()
            assert dict(table_rows(section(first_html, "Inputs")))["map colour"] == "intent"

            # change an input: the old report cannot be downloaded any more
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Colour the map by").first.click()
            page.get_by_role("option", name="domain", exact=True).click()
            page.get_by_role("button", name="Build report").wait_for(timeout=60_000)
            assert page.get_by_role("button", name="Download report (HTML)").count() == 0
            page.screenshot(path=str(shots / "report-stale.png"), full_page=True)

            page.get_by_role("button", name="Build report").click()
            dl = page.get_by_role("button", name="Download report (HTML)")
            dl.wait_for(timeout=180_000)
            with page.expect_download() as info:
                dl.click()
            second_html = open(info.value.path(), encoding="utf-8").read()
            assert dict(table_rows(section(second_html, "Inputs")))["map colour"] == "domain"
            assert second_html != first_html

            # the file opens offline, draws its figures and runs nothing from user text
            context = browser.new_context(offline=True)
            report = context.new_page()
            dialogs: list[str] = []
            report.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            saved = tmp_path / info.value.suggested_filename
            saved.write_text(second_html, encoding="utf-8")
            report.goto(saved.as_uri())
            report.locator("#fig-map .main-svg").first.wait_for(timeout=30_000)
            assert "<script>alert(1)</script>" not in second_html  # only ever escaped
            assert report.locator("script").count() == 1 + second_html.count('<div id="fig-')
            assert dialogs == []
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # each download served is in the audit log, under the file's name
    from analytics import audit

    with Store(path) as s:
        exports = [e for e in audit.recent(s, action="export") if e.target.startswith("report on corpus")]
    assert len(exports) == 2
    assert all(re.fullmatch(r"clinc150-report-\d{4}-\d\d-\d\d\.html", e.detail) for e in exports), exports
