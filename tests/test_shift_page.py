"""The Shift test page (dashboard/views/shift.py): F and G set up in place (column = values, the
selection vs the rest, each value vs the rest), a Run button (nothing runs on arrival or after a
pick; a result stays until the inputs change), the bundled sample's labels on a first start,
and, in Chromium, the oos-vs-in-scope test on a CLINC150 slice in at most 4 actions.

The numbers the page shows are compared with the library's on the same rows: shift_test and
values_vs_rest on the vectors the store holds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, settle, start_server

from analytics.groups import values_vs_rest
from analytics.jobs import executor_for
from analytics.sample import SAMPLE_CSV, SAMPLE_NAME, SAMPLE_VECTORS
from analytics.shift import shift_test

pytestmark = pytest.mark.slow  # the real app in-process (AppTest) with background jobs, or a browser

CHROMIUM = "/usr/bin/chromium"
PORT = 8720
ARTIFACTS = ROOT / "test-artifacts" / "shift"
CLINC = ROOT / "tests" / "fixtures" / "clinc150_slice.jsonl"


@pytest.fixture(scope="module")
def sample():
    X = np.load(SAMPLE_VECTORS)
    with open(SAMPLE_CSV, newline="", encoding="utf-8") as f:
        labels = np.array([r["label"] for r in csv.DictReader(f)])
    return X, labels


def first_start(path, monkeypatch, **query):
    """A newcomer's first start: Home adds the bundled sample (its vectors ship with it) to an
    empty store; then the Shift test page, opened from the menu (or a link with ``query``)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_STORE", str(path))
    monkeypatch.setenv("EMBEX_SAMPLE", "1")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
    at.run()
    at.switch_page("views/shift.py")
    at.query_params.update(query)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def run(at, path):
    next(b for b in at.button if b.label == "Run").click().run()
    return settle(at, path)


def test_a_newcomer_tests_a_label_of_the_sample_against_the_rest(tmp_path, monkeypatch, sample):
    path = tmp_path / "first.duckdb"
    at = first_start(path, monkeypatch)
    jobs = executor_for(path).jobs
    assert not any("No corpus yet" in i.value for i in at.info)
    # one corpus: groups of its rows, by its label column, are what there is to compare
    assert at.radio(key="shift_mode").value == "column"
    assert at.radio(key="shift_mode").options == ["Column = value(s)", "Each value vs the rest"]
    assert at.selectbox(key=f"shift_column-{SAMPLE_NAME}").value == "label"
    assert jobs() == []  # nothing runs on arrival
    at.multiselect[0].select("World").run()
    at.number_input(key="shift_permutations").set_value(99).run()
    assert jobs() == [] and not at.metric  # nor after a pick
    assert [i.value for i in at.info] == ["Set up F and G above, then press Run."]
    assert "G: 1,900 texts (label = World) · F: 5,700 texts (the rest)" in at.caption[-1].value
    run(at, path)
    X, labels = sample
    world = labels == "World"
    expected = shift_test(X[~world], X[world], permutations=99)
    shown = metrics(at)
    assert (shown["n F"], shown["n G"]) == ("5,700", "1,900")
    assert shown["Q"] == f"{expected.q:.3f}" and float(shown["Q"]) < 0.3
    assert shown["W"] == f"{expected.w:.2f}"
    assert shown["p (combined)"] == f"{expected.p_verdict:.3g}"
    assert shown["p (permutation)"] == f"{expected.p_permutation:.3g}"
    assert at.error[0].value.startswith("G has shifted away from F")
    assert len(jobs()) == 1
    # another pick: the result goes, and the page says why; nothing runs until Run
    at.multiselect[0].select("Sports").run()
    assert not at.metric and len(jobs()) == 1
    assert [i.value for i in at.info] == ["The inputs changed since the last run: press Run to test them."]
    at.multiselect[0].unselect("Sports").run()  # back to the tested inputs: the stored result
    assert metrics(at)["Q"] == shown["Q"] and len(jobs()) == 1
    # F as other values: World against Sports
    at.radio(key="shift_f_against").set_value("other values").run()
    at.multiselect[1].select("Sports").run()
    assert "F: 1,900 texts (label = Sports)" in at.caption[-1].value
    run(at, path)
    sports = labels == "Sports"
    expected = shift_test(X[sports], X[world], permutations=99)
    assert metrics(at)["Q"] == f"{expected.q:.3f}" and metrics(at)["n F"] == "1,900"
    assert [c.name for c in executor_for(path).store.list_corpora()] == [SAMPLE_NAME]  # none created


def test_each_value_against_the_rest_is_a_table_with_holm_adjusted_p(tmp_path, monkeypatch, sample):
    path = tmp_path / "values.duckdb"
    at = first_start(path, monkeypatch, mode="values")
    assert at.radio(key="shift_mode").value == "values"
    assert "Tests each of the 4 largest of the 4 values of label" in at.caption[0].value
    at.number_input(key="shift_permutations").set_value(99).run()
    assert executor_for(path).jobs() == []
    run(at, path)
    X, labels = sample
    expected = values_vs_rest(X, labels.tolist(), column="label", permutations=99)
    table = at.dataframe[0].value
    assert table["value"].tolist() == ["Business", "Sci/Tech", "Sports", "World"]  # ties by name
    assert table["n"].tolist() == [1900] * 4
    np.testing.assert_allclose(table["Q"], [r.q for r in expected.rows], rtol=1e-12)
    np.testing.assert_allclose(table["p (Holm)"], [r.p_holm for r in expected.rows], rtol=1e-12)
    assert table["verdict"].tolist() == [r.verdict for r in expected.rows]
    assert at.error[0].value.startswith("4 of 4 values of label differ from the rest")
    assert [b.proto.label for b in at.get("download_button")][-1] == "Download CSV"


def test_the_selection_against_the_rest_is_offered_only_with_a_selection(tmp_path, monkeypatch, sample):
    path = tmp_path / "selection.duckdb"
    at = first_start(path, monkeypatch)
    assert "Selection vs the rest" not in at.radio(key="shift_mode").options
    # a link with a selection made on the Map: label = Sports, texts containing "game"
    at.query_params.update(corpus=SAMPLE_NAME, filter=json.dumps({"label": ["Sports"]}), q="game")
    at.session_state["_selections"] = {}  # a fresh session opening the link
    at.run()
    mode = at.radio(key="shift_mode")
    assert mode.options[-1] == "Selection vs the rest"
    mode.set_value("selection").run()
    X, labels = sample
    with open(SAMPLE_CSV, newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    chosen = np.array(
        [lab == "Sports" and "game" in t.casefold() for lab, t in zip(labels, texts, strict=True)]
    )
    assert f"G: {chosen.sum():,} texts (the selection)" in at.caption[-1].value
    at.number_input(key="shift_permutations").set_value(99).run()
    run(at, path)
    expected = shift_test(X[~chosen], X[chosen], permutations=99)
    assert metrics(at)["Q"] == f"{expected.q:.3f}" and metrics(at)["n G"] == f"{chosen.sum():,}"
    assert metrics(at)["p (combined)"] == f"{expected.p_verdict:.3g}"


# -- in Chromium: the CLINC150 slice --------------------------------------------------------------


@pytest.fixture(scope="module")
def clinc(tmp_path_factory, embed_cached):
    """A store with the CLINC150 slice (400 in-scope queries of 20 intents, 40 out-of-scope;
    real vectors of the bundled model) and a second corpus, so that the page opens on "Two
    corpora" and the analyst has to choose the column mode; and the library's numbers for
    oos against in-scope on the same vectors, computed before the server owns the file."""
    from analytics import Store
    from analytics.corpus import Corpus, load_corpus
    from analytics.embedding import DEFAULT_MODEL, import_vectors

    path = tmp_path_factory.mktemp("shift-page") / "clinc.duckdb"
    corpus = load_corpus(CLINC, "text")
    X = embed_cached(list(corpus.texts))
    intents = np.array([m["intent"] for m in corpus.metadata])
    oos = intents == "oos"
    with Store(path) as s:
        s.add_corpus("clinc150 slice", corpus)
        import_vectors(s, "clinc150 slice", X, DEFAULT_MODEL)
        keep = np.flatnonzero(oos)
        only_oos = Corpus([corpus.texts[i] for i in keep], [corpus.metadata[i] for i in keep], "text", "test")
        s.add_corpus("clinc150 oos", only_oos)
        import_vectors(s, "clinc150 oos", X[oos], DEFAULT_MODEL)
    expected = shift_test(X[~oos], X[oos], permutations=999)
    table = values_vs_rest(X, intents.tolist(), column="intent", permutations=999)
    return path, expected, table


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing")
def test_oos_against_in_scope_in_four_actions_in_chromium(clinc, browser):
    from analytics.screenshot import wait_for_app

    path, expected, table = clinc
    proc, url = start_server(path, port=PORT)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})

        def idle():
            page.wait_for_timeout(300)
            wait_for_app(page, 120_000)

        page.goto(f"{url}/shift")
        page.get_by_role("heading", name="Shift test").wait_for(timeout=60_000)
        idle()
        assert page.get_by_role("radio", name="Two corpora").is_checked()
        actions = 0
        page.get_by_text("Column = value(s)", exact=True).click()  # 1: the kind of comparison
        actions += 1
        idle()
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Column").click()  # 2: the column
        page.get_by_role("option", name="intent", exact=True).click()
        actions += 1
        idle()
        values = page.locator('[data-testid="stMultiSelect"]').filter(has_text="G: rows where intent is")
        values.click()  # 3: the value
        page.get_by_role("option", name="oos (40)").click()
        page.keyboard.press("Escape")
        actions += 1
        idle()
        page.get_by_text("G: 40 texts (intent = oos) · F: 400 texts (the rest)").wait_for()
        assert page.get_by_text("Set up F and G above, then press Run.").is_visible()
        assert page.locator('[data-testid="stMetric"]').count() == 0  # nothing ran yet
        page.get_by_role("button", name="Run", exact=True).click()  # 4: Run
        actions += 1
        assert actions <= 4
        page.mouse.move(0, 0)  # no tooltip over the screenshot
        q = page.locator('[data-testid="stMetric"]').filter(has_text="Q").first
        q.wait_for(timeout=120_000)
        idle()

        def metric(label: str) -> str:
            box = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True))
            return box.first.locator('[data-testid="stMetricValue"]').inner_text()

        assert metric("Q") == f"{expected.q:.3f}" and expected.q < 0.3
        assert metric("W") == f"{expected.w:.2f}"
        assert metric("p (permutation)") == f"{expected.p_permutation:.3g}"
        assert metric("p (combined)") == f"{expected.p_verdict:.3g}"
        assert (metric("n F"), metric("n G")) == ("400", "40")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "oos-vs-in-scope.png"), full_page=True)

        # each intent against the rest: a table of 21 rows (20 intents and oos), oos first
        page.get_by_text("Each value vs the rest", exact=True).click()
        idle()
        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_text("values of intent differ from the rest").first.wait_for(timeout=180_000)
        idle()
        found = len(table.significant())
        assert page.get_by_text(f"{found} of 21 values of intent differ from the rest").is_visible()
        assert table.rows[0].value == "oos" and table.rows[0].kind != "none"
        with page.expect_download() as download:
            page.get_by_role("button", name="Download CSV").click()
        assert download.value.suggested_filename == "clinc150-slice-shift-each-value-intent.csv"
        rows = list(csv.DictReader(open(download.value.path(), encoding="utf-8")))
        assert [r["value"] for r in rows] == [r.value for r in table.rows]
        assert [float(r["p (Holm)"]) for r in rows] == pytest.approx([r.p_holm for r in table.rows])
        assert float(rows[0]["Q"]) == pytest.approx(expected.q)  # oos vs the rest, both ways
        page.screenshot(path=str(ARTIFACTS / "each-intent.png"), full_page=True)
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
