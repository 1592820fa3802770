"""Each dashboard page's logic with streamlit's AppTest, on a real store and the real model."""

from __future__ import annotations

import pytest
from conftest import ROOT, make_corpus, settle

from analytics import Store, embed_corpus

XSS = ["<script>alert(1)</script> breaking news", "<img src=x onerror=alert(1)> markets rally"]


@pytest.fixture(scope="module")
def dash_store(tmp_path_factory, sample_rows, embedder):
    path = tmp_path_factory.mktemp("dash") / "dash.duckdb"
    world = [r["text"] for r in sample_rows if r["label"] == "World"][:60]
    sports = [r["text"] for r in sample_rows if r["label"] == "Sports"][:60]
    with Store(path) as s:
        s.add_corpus(
            "news", make_corpus(world + sports + XSS, ["World"] * 60 + ["Sports"] * 60 + ["evil"] * 2)
        )
        s.add_corpus("world", make_corpus(world, ["World"] * 60))
        s.add_corpus("sports", make_corpus(sports, ["Sports"] * 60))
        s.add_corpus("not embedded", make_corpus(["one text", "another text"]))
        s.add_corpus(
            "to embed", make_corpus([f"a text the Embed page embeds, number {i}" for i in range(40)])
        )
        for name in ("news", "world", "sports"):
            embed_corpus(s, name, embedder)
    return path


@pytest.fixture
def app(dash_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_STORE", str(dash_store))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")

    def open_page(page: str, **state):
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
        for k, v in state.items():
            at.session_state[k] = v
        at.run()
        at.switch_page(page)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return settle(at, dash_store)  # a page that started a job shows its result

    return open_page


def test_home_lists_the_corpora(app):
    at = app("views/home.py")
    assert at.title[0].value == "Embedding Explorer"
    assert set(at.dataframe[0].value["name"]) == {"news", "world", "sports", "not embedded", "to embed"}


def test_embed_page_shows_cache_hits(app):
    at = app("views/embed.py", corpus="news")
    assert at.metric[0].value == "122 of 122 rows"
    assert "Every text is embedded" in at.success[0].value
    assert not [b for b in at.button if b.label == "Embed"]  # nothing to embed, nothing to press


def test_embed_page_runs_a_background_job_and_finds_it_again(app, dash_store):
    from analytics.jobs import executor_for

    at = app("views/embed.py", corpus="to embed")
    at.selectbox[1].set_value("cpu").run()  # Device
    at.selectbox[2].set_value("float32").run()  # Precision
    assert at.metric[0].value == "0 of 40 rows"
    next(b for b in at.button if b.label == "Embed").click().run()
    job = executor_for(dash_store).find(
        "embed", {"corpus": "to embed", "device": "cpu", "precision": "float32"}
    )
    assert job is not None and job.requested_by.startswith("session ")
    settle(at, dash_store)
    assert at.metric[0].value == "40 of 40 rows"
    assert "Every text is embedded" in at.success[0].value
    with Store(dash_store) as s:
        assert s.embedded_count("to embed", job.params["model_id"]) == 40


def test_pages_point_to_embed_when_vectors_are_missing(app):
    for page in ("views/map.py", "views/depth.py", "views/shift.py"):
        at = app(page, corpus="not embedded", shift_f="not embedded")
        assert any("Embed this corpus on the Embed page first" in w.value for w in at.warning), page


def test_map_page_draws_and_searches(app, dash_store):
    """The WebGL map's payload (dashboard/scatter.py): AppTest cannot draw it, but it can read
    what the page sends (tests/test_map_page.py drives it in Chromium)."""
    import sys

    sys.path.insert(0, str(ROOT / "dashboard"))
    from scatter import unpack_payload

    at = app("views/map.py", corpus="news")
    at.radio(key="map_method").set_value("pca").run()
    settle(at, dash_store)
    at.text_input(key="map_search").input("Olympic").run()
    assert not at.exception
    assert any(m.value.endswith(" of 122 texts selected**") for m in at.markdown)
    (element,) = [e for e in at.get("bidi_component") if not e.proto.id.endswith("-channel")]
    header, buffers = unpack_payload(element.proto.bytes)
    assert header["title"] == "news: PCA map" and header["n"] == 122
    captions = [c.value.replace("\\", "") for c in at.caption]
    assert any(
        c.startswith("corpus: news · model: sentence-transformers/all-MiniLM-L6-v2 · n = 122 · PCA")
        for c in captions
    )
    # labels travel once, in the legend, as data (the browser shows them with textContent)
    assert [(e["label"], e["count"]) for e in header["legend"]] == [
        ("World", 60),
        ("Sports", 60),
        ("evil", 2),
    ]
    from analytics.jobs import executor_for

    texts = executor_for(dash_store).store.texts("news")
    hits = [i for i, t in enumerate(texts) if "olympic" in t.lower()]
    assert (
        hits
        and buffers["highlight"].tolist() == hits
        and header["highlight"] == {"count": len(hits), "name": "search hits"}
    )
    assert header["hover"] and header["neighbors"]


def test_depth_page_ranks_and_exports(app):
    at = app("views/depth.py", corpus="news")
    ranked = at.dataframe[0].value
    assert len(ranked) == 122 and list(ranked["rank"][:3]) == [1, 2, 3]
    assert ranked["depth"].is_monotonic_decreasing
    assert at.get("download_button")
    summary = at.dataframe[1].value
    assert set(summary["label"]) == {"World", "Sports", "evil"}


def test_outliers_page_flags_and_explains(app):
    at = app("views/outliers.py", corpus="news")
    assert any("outliers flagged" in m.value for m in at.markdown)
    assert len(at.expander) == 7  # 5% of 122, rounded up


def run_shift(at, dash_store):
    """Press the Shift page's Run (nothing runs before) and wait for its job."""
    next(b for b in at.button if b.label == "Run").click().run()
    return settle(at, dash_store)


def test_shift_page_detects_a_topic_shift(app, dash_store):
    at = run_shift(app("views/shift.py", shift_f="world", shift_g="sports"), dash_store)
    values = {m.label: m.value for m in at.metric}
    assert float(values["Q"]) < 0.3 and values["n F"] == "60" and values["n G"] == "60"
    assert "G has shifted away from F" in at.error[0].value


def test_shift_page_names_a_concentrated_g(app, dash_store):
    """G = the World half of F (World + Sports): not more outlying, which is all the paper's
    one-sided test asks (it said "no shift" here), but narrower: G is more concentrated."""
    at = run_shift(app("views/shift.py", shift_f="news", shift_g="world"), dash_store)
    assert at.error[0].value.startswith("G is more concentrated than F")
    assert "more concentrated" in at.caption[0].value
    values = {m.label: m.value for m in at.metric}
    assert float(values["p: G more outlying"]) > 0.05 and float(values["p: G more concentrated"]) < 0.01
    checks = at.dataframe[0].value
    assert set(checks["test"]) == {"MMD", "mean embedding", "classifier"}


def test_retrieval_page_finds_sports_for_a_sports_query(app):
    at = app("views/retrieval.py", corpus="news")
    at.text_input[0].input("Olympic gold medal swimming").run()
    hits = at.dataframe[0].value
    assert len(hits) == 10 and list(hits["rank"]) == list(range(1, 11))
    assert (hits["label"] == "Sports").sum() >= 7


def test_retrieval_page_searches_by_bm25_and_hybrid(app):
    at = app("views/retrieval.py", corpus="news")
    at.radio(key="retrieval_method").set_value("bm25").run()
    at.text_input[0].input("Olympic").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("by BM25 score" in c.value for c in at.caption)
    hits = at.dataframe[0].value
    assert hits["text"].str.contains("Olympic").iloc[0]  # the word itself ranks first
    assert at.query_params["method"] == "bm25"  # a copied link reopens this method
    at.radio(key="retrieval_method").set_value("hybrid").run()
    assert any("by fused score" in c.value for c in at.caption)
    assert len(at.dataframe[0].value) == 10


def test_upload_page_lists_corpora_and_splits(app, dash_store):
    at = app("views/upload.py")
    assert len(at.dataframe[0].value) == 5
    at.selectbox(key="split_source").set_value("news").run()
    at.button[2].click().run()  # Split
    assert "Made 3 corpora" in at.success[0].value
    with Store(dash_store) as s:
        names = [c.name for c in s.list_corpora()]
        assert "news [label=Sports]" in names
        for n in ("news [label=World]", "news [label=Sports]", "news [label=evil]"):
            s.delete_corpus(n)


def test_an_unknown_corpus_in_a_link_is_named_not_silently_replaced(dash_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_STORE", str(dash_store))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
    at.switch_page("views/embed.py")
    at.query_params["corpus"] = "<b>gone</b>"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning]
    assert any("There is no corpus named" in w and "gone" in w for w in warnings), warnings
