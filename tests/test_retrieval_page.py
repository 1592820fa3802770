"""The Retrieval page on the analyst's own map, and "more like this" with text in the query box.

Store: the CLINC150 slice (tests/fixtures/clinc150_slice.jsonl) with vectors, its PCA map and a
different map of the default method (UMAP) in the projection cache.

Fast (AppTest, no model: BM25 queries and "more like this" need none): with the session's Map
method PCA, the hits are drawn on the cached PCA map (the component's coordinates and
highlighted rows, read from its payload, against numpy); without one, on the default method's
map; a corpus with no map gets a note and no map job. "Find texts like this one" works while the
query box has text (it empties the box and shows the row's exact cosine neighbours), "Back to
the results" brings the query back, and "Select these hits" makes them the session's selection.

Slow (the real server, Chromium and model, dense queries): the analyst opens the Map (its UMAP
computed by a job), then Retrieval; a query's hits are drawn on that map, read back from the
browser's component and compared with the map the store holds; "more like this" with the
query still typed shows the first hit's neighbours.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import ROOT, make_corpus

from analytics import import_vectors
from analytics.embedding import DEFAULT_MODEL
from analytics.jobs import Job
from analytics.projection import (
    Projection,
    cached_projection,
    project,
    projection_request,
    save_projection,
)
from analytics.retrieval import BM25Index, ExactIndex, more_like_this
from analytics.store import Store

sys.path.insert(0, str(ROOT / "dashboard"))
from scatter import normalize_xy, unpack_payload  # noqa: E402

SLICE = ROOT / "tests" / "fixtures" / "clinc150_slice.jsonl"
QUERY = "freeze my bank account"
K = 10


def _slice():
    rows = [json.loads(line) for line in SLICE.read_text(encoding="utf-8").splitlines()]
    return [r["text"] for r in rows], [r["intent"] for r in rows]


@pytest.fixture(scope="module")
def retrieval_store(tmp_path_factory):
    """Synthetic vectors clustered by intent (the page's maths does not care where they come
    from), the PCA map as the Map page computes it, and a decoy map of the default method."""
    texts, labels = _slice()
    rng = np.random.default_rng(7)
    centres = {label: rng.normal(size=24) for label in sorted(set(labels))}
    X = np.stack([centres[label] + 0.6 * rng.normal(size=24) for label in labels]).astype(np.float32)
    d = tmp_path_factory.mktemp("retrievalpage")
    path = d / "retrieval.duckdb"
    with Store(path) as s:
        s.add_corpus("clinc", make_corpus(texts, labels), label_column="label")
        import_vectors(s, "clinc", X, DEFAULT_MODEL)
        X = s.vectors("clinc", DEFAULT_MODEL)  # unit rows, as the page reads them
        pca = project(X, "pca")
        save_projection(s, projection_request(s, "clinc", DEFAULT_MODEL, "pca"), pca)
        decoy = rng.normal(size=(len(texts), 2)).astype(np.float32)
        umap = projection_request(s, "clinc", DEFAULT_MODEL, "umap")
        save_projection(s, umap, Projection(decoy, "umap", umap.params, len(texts), len(texts), 0.0))
        s.add_corpus("unmapped", make_corpus(texts[:100]))  # the same texts: embedded too
    return {"path": path, "X": X, "texts": texts, "pca": pca.coords, "decoy": decoy, "dir": d}


@pytest.fixture
def open_retrieval(retrieval_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_STORE", str(retrieval_store["path"]))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")

    def open_page(corpus="clinc", **state):
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
        at.session_state["corpus"] = corpus
        for key, value in state.items():  # what the Map page leaves in the session
            at.session_state[key] = value
        at.run()
        at.switch_page("views/retrieval.py")
        at.query_params["method"] = "bm25"  # no model needed
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def _results_map(at):
    """The results map's payload (header, buffers), or None when the page drew none."""
    maps = [
        e
        for e in at.get("bidi_component")
        if not e.proto.id.endswith("-channel") and "retrieval-map-" in e.proto.id
    ]
    assert len(maps) <= 1
    return unpack_payload(maps[0].proto.bytes) if maps else None


def _search(at, query: str):
    at.text_input(key="retrieval_query").input(query).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_hits_are_drawn_on_the_analysts_map(open_retrieval, retrieval_store):
    at = _search(open_retrieval(map_method="pca"), QUERY)
    header, buffers = _results_map(at)
    want = BM25Index(retrieval_store["texts"]).search(QUERY, K).ids[0]
    assert buffers["highlight"].tolist() == sorted(want.tolist())
    assert header["highlight"] == {"count": K, "name": "hits"}
    assert np.array_equal(buffers["xy"], normalize_xy(retrieval_store["pca"])[0].ravel())
    assert header["title"] == f"clinc: results for {QUERY!r} on the PCA map"
    assert [e["label"] for e in header["legend"]][:1] and header["mode"] == "category"


def test_without_a_map_method_in_the_session_the_default_methods_map_is_used(open_retrieval, retrieval_store):
    header, buffers = _results_map(_search(open_retrieval(), QUERY))
    assert np.array_equal(buffers["xy"], normalize_xy(retrieval_store["decoy"])[0].ravel())
    assert header["title"].endswith("on the UMAP map")


def test_a_corpus_without_a_map_gets_a_note_and_no_map_job(open_retrieval, retrieval_store):
    from analytics.jobs import executor_for

    at = _search(open_retrieval("unmapped", map_method="pca"), QUERY)
    assert _results_map(at) is None
    assert any("There is no map of this corpus yet" in i.value for i in at.info)
    jobs = executor_for(retrieval_store["path"]).jobs()
    assert not [j for j in jobs if j.kind == "project" and j.params["corpus"] == "unmapped"]
    store = executor_for(retrieval_store["path"]).store  # and none was computed behind its back
    assert cached_projection(store, projection_request(store, "unmapped", DEFAULT_MODEL)) is None


def test_more_like_this_works_while_the_query_box_has_text(open_retrieval, retrieval_store):
    at = _search(open_retrieval(map_method="pca"), QUERY)
    first = BM25Index(retrieval_store["texts"]).search(QUERY, K).ids[0][0]
    assert at.selectbox(key="retrieval-pick-clinc").value == first
    at.button(key="retrieval-more").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.text_input(key="retrieval_query").value == ""  # the box no longer overrides it
    assert any(f"The {K} texts most like row {first}" in c.value for c in at.caption)
    header, buffers = _results_map(at)
    like = more_like_this(ExactIndex(retrieval_store["X"]), first, K).ids[0]
    assert first not in like.tolist()
    assert buffers["highlight"].tolist() == sorted(like.tolist())
    assert header["title"] == f"clinc: more like row {first} on the PCA map"
    # more like one of those: the row picked is the next centre
    second = int(like[3])
    at.selectbox(key="retrieval-pick-clinc").set_value(second).run()
    at.button(key="retrieval-more").click().run()
    _, buffers = _results_map(at)
    assert buffers["highlight"].tolist() == sorted(
        more_like_this(ExactIndex(retrieval_store["X"]), second, K).ids[0]
    )
    # and back to the query's results
    back = next(b for b in at.button if b.label.startswith("Back to the results for"))
    assert QUERY in back.label
    back.click().run()
    assert at.text_input(key="retrieval_query").value == QUERY
    _, buffers = _results_map(at)
    assert buffers["highlight"].tolist() == sorted(
        BM25Index(retrieval_store["texts"]).search(QUERY, K).ids[0]
    )


def test_a_new_query_ends_more_like_this(open_retrieval, retrieval_store):
    at = _search(open_retrieval(map_method="pca"), QUERY)
    at.button(key="retrieval-more").click().run()
    _search(at, "what is my credit limit")
    header, buffers = _results_map(at)
    want = BM25Index(retrieval_store["texts"]).search("what is my credit limit", K).ids[0]
    assert buffers["highlight"].tolist() == sorted(want.tolist())
    assert header["title"].startswith("clinc: results for")


def test_select_these_hits_makes_them_the_sessions_selection(open_retrieval, retrieval_store):
    from analytics.jobs import executor_for

    at = _search(open_retrieval(map_method="pca"), QUERY)
    want = sorted(BM25Index(retrieval_store["texts"]).search(QUERY, K).ids[0].tolist())
    at.button(key="retrieval-select").click().run()
    assert not at.exception, [e.value for e in at.exception]
    sel = at.session_state["_selections"]["clinc"]
    assert sel.rows == tuple(want) and not sel.filters and not sel.search
    assert any(f"The selection is now these {K} texts" in s.value for s in at.success)
    corpus, rows = executor_for(retrieval_store["path"]).store.selection(at.query_params["sel"])
    assert corpus == "clinc" and rows.tolist() == want  # the link names it


# ---------------------------------------------------------------- slow: server + Chromium + model

RESULTS_MAP = (
    "Object.entries(window.__embexScatter || {})"
    ".filter(([k, h]) => k.startsWith('retrieval-map-') && h.view.root.isConnected)"
    ".map(([k, h]) => h)[0]"
)
ANY_MAP = "Object.values(window.__embexScatter || {}).find(h => h.view.root.isConnected)"


def _wait_for_hits(page, rows) -> None:
    want = json.dumps(sorted(int(r) for r in rows), separators=(",", ":"))
    page.wait_for_function(
        f"() => {{ const h = {RESULTS_MAP}; if (!h || !h.view.isHit || !h.drawn()) return false;"
        " const out = []; h.view.isHit.forEach((v, i) => { if (v) out.push(i); });"
        f" return JSON.stringify(out) === '{want}'; }}",
        timeout=120_000,
    )


@pytest.mark.slow
def test_in_the_browser_hits_land_on_the_map_the_analyst_opened(retrieval_store, embed_cached, browser):
    from conftest import start_server

    from analytics.retrieval import search_text
    from analytics.screenshot import wait_for_app

    texts, labels = _slice()
    path = retrieval_store["dir"] / "browser.duckdb"
    with Store(path) as s:  # real embeddings this time, and no map yet: the Map page makes it
        s.add_corpus("clinc", make_corpus(texts, labels), label_column="label")
        import_vectors(s, "clinc", embed_cached(texts), DEFAULT_MODEL)
        X = s.vectors("clinc", DEFAULT_MODEL)
        pca = projection_request(s, "clinc", DEFAULT_MODEL, "pca")  # what the old page drew
        save_projection(s, pca, project(X, "pca"))
    query = "please block my bank card"
    proc, url = start_server(path, port=8752)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/map?corpus=clinc")  # the default method: a UMAP job
        page.wait_for_function(
            f"() => {{ const h = {ANY_MAP}; return h && h.drawn() > 0; }}", timeout=300_000
        )
        wait_for_app(page)
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Retrieval", exact=True).click()
        box = page.get_by_label("Query")
        box.wait_for(timeout=120_000)
        wait_for_app(page)
        box.fill(query)
        box.press("Enter")  # dense: the model embeds the query
        from analytics.embedding import Embedder

        hits = search_text(Embedder(device="cpu", precision="float32"), ExactIndex(X), query, K).ids[0]
        _wait_for_hits(page, hits)
        wait_for_app(page)
        drawn = np.array(page.evaluate(f"() => Array.from({RESULTS_MAP}.view.xy)"), dtype=np.float32)
        title = page.evaluate(f"() => {RESULTS_MAP}.view.header.title")
        assert title == f"clinc: results for {query!r} on the UMAP map"
        page.screenshot(path=str(retrieval_store["dir"] / "retrieval-browser.png"), full_page=True)
        # "more like this" on the first hit, the query still in the box
        assert box.input_value() == query
        page.get_by_role("button", name="Find texts like this one").click()
        first = int(hits[0])
        page.get_by_text(f"The {K} texts most like row {first}").wait_for(timeout=60_000)
        _wait_for_hits(page, more_like_this(ExactIndex(X), first, K).ids[0])
        assert box.input_value() == ""
        assert not errors
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    with Store(path, read_only=True) as s:
        umap = cached_projection(s, projection_request(s, "clinc", DEFAULT_MODEL, "umap"))
        jobs = [Job.from_row(r) for r in s.job_rows()]
    assert umap is not None  # the Map page's job made it, and the results were drawn on it
    np.testing.assert_allclose(drawn, normalize_xy(umap.coords)[0].ravel(), atol=1e-6)
    assert [(j.kind, j.params["method"]) for j in jobs] == [("project", "umap")]
