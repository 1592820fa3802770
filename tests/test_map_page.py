"""The Map page (dashboard/views/map.py) on the WebGL component (dashboard/scatter.py).

Fast: a click's neighbours (analytics.retrieval.row_neighbours) against brute force; the page
in AppTest on a real store with synthetic vectors (no model): the payload it sends (title,
legend, colour bar, search hits, the projection's coordinates), the provenance caption, the
selection that the component's state holds turned into the shared ``selection``, the table and
"Save selection". Slow: the real server and Chromium, at 1440x900: the map is drawn above the
fold, hover shows the label and then the text and metadata, a click lists the nearest
neighbours by cosine, and a lasso selects exactly the rows inside it (compared in numpy), which
the page lists and saves.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from conftest import ROOT, settle
from hypothesis import given, settings
from hypothesis import strategies as hs
from hypothesis.extra import numpy as hnp

from analytics import Store, import_vectors
from analytics.corpus import Corpus
from analytics.embedding import DEFAULT_MODEL
from analytics.errors import ParameterError
from analytics.retrieval import row_neighbours, row_norms

sys.path.insert(0, str(ROOT / "dashboard"))
from scatter import normalize_xy, unpack_payload  # noqa: E402

# ---------------------------------------------------------------- fast: a click's neighbours


def _brute_neighbours(X, row, k):
    """Cosine top-k by the book: normalised copies, every score, sorted (ties: lower row)."""
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1)
    ok = norms > 0
    if not ok[row]:
        return []
    scores = np.full(len(X), -np.inf)
    scores[ok] = (X[ok] / norms[ok, None]) @ (X[row] / norms[row])
    scores[row] = -np.inf
    order = np.lexsort((np.arange(len(X)), -scores))
    return [(int(i), float(scores[i])) for i in order[:k] if np.isfinite(scores[i])]


@settings(max_examples=80, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hs.tuples(hs.integers(2, 60), hs.integers(1, 6)),
        elements=hs.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]),  # ties and zero rows
    ),
    hs.integers(0, 10_000),
    hs.integers(1, 12),
)
def test_row_neighbours_are_the_cosine_top_k_without_the_row(X, seed, k):
    row = seed % len(X)
    want = _brute_neighbours(X, row, k)
    got = row_neighbours(X, row, k, norms=row_norms(X))
    ids, scores = got.ids[0].tolist(), got.scores[0].tolist()
    assert row not in ids and len(set(ids)) == len(ids)
    assert len(ids) == len(want)
    assert np.allclose(scores, [s for _, s in want], atol=1e-5)
    # the same rows, up to the order of rows whose scores tie within float error
    assert sorted(ids) == sorted(i for i, _ in want) or np.allclose(
        sorted(scores), sorted(s for _, s in want), atol=1e-5
    )
    assert scores == sorted(scores, reverse=True)
    same = row_neighbours(X, row, k)  # norms computed inside give the same answer
    assert same.ids.tolist() == got.ids.tolist()


def test_row_neighbours_break_ties_by_row_and_refuse_bad_input():
    X = np.array([[1, 0], [1, 0], [2, 0], [0, 1], [1, 0], [0, 0]], dtype=np.float32)
    hits = row_neighbours(X, 0, 3)
    assert hits.ids[0].tolist() == [1, 2, 4] and np.allclose(hits.scores, 1.0)
    assert row_neighbours(X, 5, 3).ids.shape == (1, 0)  # a zero vector has no neighbours
    assert 5 not in row_neighbours(X, 3, 10).ids[0]  # and is nobody's
    with pytest.raises(ParameterError, match="row must be in 0..5"):
        row_neighbours(X, 6)
    with pytest.raises(ParameterError, match="one norm per row"):
        row_neighbours(X, 0, norms=np.ones(3))


# ---------------------------------------------------------------- the test corpus

SIZES = (150, 90, 50, 25)
LABELS = ("World", "Sports", "<img src=x onerror=alert(1)>", "Sci/Tech")
HOSTILE_TEXT = "<script>alert(1)</script> a text about markets"
DIM = 16


def _corpus():
    """Four labelled clusters in 16 dimensions whose centres lie in one plane (so PCA shows
    four well separated blobs), a numeric and a text metadata column, one hostile text."""
    rng = np.random.default_rng(7)
    angles = np.deg2rad([45, 135, 225, 315])
    X, texts, meta = [], [], []
    for k, (size, label, a) in enumerate(zip(SIZES, LABELS, angles, strict=True)):
        centre = np.zeros(DIM)
        centre[:2] = 10 * np.cos(a), 10 * np.sin(a)
        centre[2] = 5  # off the origin: cosine neighbours are then not the same as "same side"
        X.append(centre + rng.normal(0, 0.6, size=(size, DIM)))
        for _ in range(size):
            n = len(texts)
            texts.append(HOSTILE_TEXT if n == 3 else f"text {n} of cluster {k}")
            meta.append({"label": label, "year": 2000 + n % 7, "source": f"src-{n % 3}"})
    return np.concatenate(X).astype(np.float32), texts, meta


@pytest.fixture(scope="module")
def map_store(tmp_path_factory):
    """A real store file with the corpus "c" (label column "label"), its vectors under the
    bundled model's key and its PCA map computed here (the page finds it cached); plus copies
    of the file for the servers (a DuckDB file has one writer process)."""
    from analytics.projection import corpus_projection

    d = tmp_path_factory.mktemp("mappage")
    path = d / "map.duckdb"
    X, texts, meta = _corpus()
    with Store(path) as s:
        s.add_corpus("c", Corpus(texts, meta, "text", "test"), label_column="label")
        import_vectors(s, "c", X, DEFAULT_MODEL)
        coords = np.asarray(corpus_projection(s, "c", DEFAULT_MODEL, "pca").coords)
        # a second corpus to draw on the same map: 40 texts near cluster 0
        s.add_corpus(
            "d", Corpus([f"other text {i}" for i in range(40)], [{"label": "D"}] * 40, "text", "test")
        )
        import_vectors(s, "d", X[:40] + 0.01, DEFAULT_MODEL)
    for copy in ("server", "lasso"):  # AppTest keeps its file open in this process: servers get their own
        shutil.copy(path, d / f"{copy}.duckdb")
    return {
        "path": path,
        "server": d / "server.duckdb",
        "copy": d / "lasso.duckdb",
        "X": X,
        "texts": texts,
        "meta": meta,
        "xy": coords,
    }


# ---------------------------------------------------------------- fast: the page in AppTest


@pytest.fixture
def open_map(map_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_STORE", str(map_store["path"]))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")

    def open_page(**query):
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
        at.session_state["corpus"] = "c"
        at.run()
        at.switch_page("views/map.py")
        at.query_params.update({"method": "pca", **query})
        at.run()
        settle(at, map_store["path"])
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def _map(at):
    """The map component's element and its payload (header, buffers)."""
    maps = [e for e in at.get("bidi_component") if not e.proto.id.endswith("-channel")]
    assert len(maps) == 1
    return maps[0], *unpack_payload(maps[0].proto.bytes)


def test_map_page_sends_the_projection_with_its_title_legend_and_caption(open_map, map_store):
    at = open_map()
    el, header, buffers = _map(at)
    assert at.title[0].value == "Map"
    assert at.radio(key="map_method").value == "pca"
    assert at.selectbox(key="map_color").options == ["label", "year", "source", "depth", "none"]
    assert at.selectbox(key="map_color").value == "label"
    assert at.text_input(key="map_search").value == ""
    assert header["title"] == "c: PCA map" and header["n"] == sum(SIZES)
    assert [(e["label"], e["count"]) for e in header["legend"]] == list(zip(LABELS, SIZES, strict=True))
    assert header["hover"] and header["neighbors"] and header["highlight"] is None
    # the coordinates are the stored PCA map's, as the component scales them
    assert np.array_equal(buffers["xy"], normalize_xy(map_store["xy"])[0].ravel())
    captions = [c.value.replace("\\", "") for c in at.caption]
    subtitle = f"corpus: c · model: {DEFAULT_MODEL} · n = {sum(SIZES)} · PCA"
    assert any(c.startswith(subtitle) for c in captions), captions
    assert "Drag a box or lasso on the map to select texts" in captions[-1]
    assert at.session_state["_selections"]["c"].is_everything
    assert [e.label for e in at.expander] == ["Export this chart"]
    # beside the map: counts of the label, every value of it, largest first
    facet = at.selectbox(key="map_facet")
    assert facet.value == "label" and facet.options == ["label", "year", "source"]
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [b["x"] for b in bars] == [sorted(SIZES, reverse=True)]


def test_colour_by_depth_a_number_or_a_text_column_and_search_hits(open_map, map_store):
    from analytics import tte_depth

    at = open_map(color="depth")
    _, header, buffers = _map(at)
    depth = tte_depth(map_store["X"])
    assert header["mode"] == "value" and header["value"]["name"] == "depth"
    assert np.allclose(buffers["values"], depth, atol=1e-6)
    assert header["value"]["min"] == pytest.approx(depth.min(), abs=1e-6)
    assert [e["label"] for e in header["legend"]] == list(LABELS)  # the hover names the label too
    at.selectbox(key="map_color").set_value("year").run()
    _, header, buffers = _map(at)
    years = np.array([m["year"] for m in map_store["meta"]], dtype=np.float32)
    assert header["mode"] == "value" and header["value"]["name"] == "year"
    assert np.array_equal(buffers["values"], years) and header["value"]["missing"] == 0
    assert at.query_params["color"] == "year"
    at.selectbox(key="map_color").set_value("source").run()
    _, header, buffers = _map(at)
    assert header["mode"] == "category" and {e["label"] for e in header["legend"]} == {
        "src-0",
        "src-1",
        "src-2",
    }
    at.selectbox(key="map_color").set_value("none").run()
    assert _map(at)[1]["mode"] == "none"
    at.text_input(key="map_search").input("OF CLUSTER 3").run()
    _, header, buffers = _map(at)
    want = [i for i, t in enumerate(map_store["texts"]) if "of cluster 3" in t]
    assert len(want) == SIZES[3] and buffers["highlight"].tolist() == want
    assert header["highlight"]["name"] == "search hits"
    assert f"**{len(want):,} of {sum(SIZES):,} texts selected**" in [m.value for m in at.markdown]
    assert at.query_params["q"] == "OF CLUSTER 3"


def test_a_selection_in_the_map_becomes_the_shared_selection_table_and_a_new_corpus(open_map, map_store):
    from analytics.jobs import executor_for

    at = open_map()
    el, _, _ = _map(at)
    rows = [3, 17, 200, 310]
    # what the component's state holds after a lasso (AppTest cannot draw one: Chromium does, below)
    at.session_state[el.key] = {
        "selection": {"rows": [200, 3, 17, 310, 310, 9999], "mode": "lasso", "seq": 1}
    }
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["_selections"]["c"].rows == tuple(rows)  # sorted, in range
    assert [h.value for h in at.subheader] == ["4 selected texts"]
    assert _map(at)[2]["highlight"].tolist() == rows and _map(at)[1]["highlight"]["name"] == "selected"
    sid = at.query_params["sel"]  # the link names the selection, saved in the store
    assert executor_for(map_store["path"]).store.selection(sid)[1].tolist() == rows
    table = at.dataframe[0].value
    assert table["row"].tolist() == rows
    assert table["text"].tolist() == [map_store["texts"][i] for i in rows]
    assert table["label"].tolist() == [map_store["meta"][i]["label"] for i in rows]
    at.text_input[-1].input("c picked").run()  # the save name: the last text input
    next(b for b in at.button if b.label == "Save selection").click().run()
    assert any("Saved 4 texts as c picked" in s.value.replace("\\", "") for s in at.success)
    assert executor_for(map_store["path"]).store.texts("c picked") == [map_store["texts"][i] for i in rows]
    # another colouring keeps the selection (it is the session's, not the drawing's)
    at.selectbox(key="map_color").set_value("source").run()
    assert [h.value for h in at.subheader] == ["4 selected texts"]
    assert _map(at)[2]["highlight"].tolist() == rows
    # a filter narrows it: the lasso and label = b must both hold
    b_rows = [r for r in rows if map_store["meta"][r]["label"] == LABELS[1]]
    assert b_rows and len(b_rows) < len(rows)
    at.query_params["filter"] = json.dumps({"label": [LABELS[1]]})
    at.session_state["_selections"] = {}  # a fresh session opening the link
    at.run()
    assert at.session_state["_selections"]["c"].rows == tuple(rows)
    assert _map(at)[2]["highlight"].tolist() == b_rows
    assert [h.value for h in at.subheader] == [f"{len(b_rows)} selected texts"]
    next(b for b in at.button if b.label == "Clear selection").click().run()
    assert not at.subheader and "sel" not in at.query_params and _map(at)[1]["highlight"] is None


def test_a_lasso_is_acted_on_in_the_run_it_arrives_and_once(open_map, map_store):
    """The page reads the component's state before it draws (one run per lasso, not two); a
    run for another reason sees the same lasso again and leaves a cleared selection cleared;
    the same rows lassoed again (a new number from the browser) select again."""
    at = open_map()
    el, _, _ = _map(at)
    at.session_state[el.key] = {"selection": {"rows": [5, 1], "mode": "lasso", "seq": 1}}
    at.run()
    assert at.session_state["_selections"]["c"].rows == (1, 5)
    assert _map(at)[2]["highlight"].tolist() == [1, 5]  # drawn in that same run
    assert [h.value for h in at.subheader] == ["2 selected texts"]
    next(b for b in at.button if b.label == "Clear selection").click().run()
    assert at.session_state["_selections"]["c"].is_everything and _map(at)[1]["highlight"] is None
    at.selectbox(key="map_color").set_value("source").run()  # the component still holds lasso 1
    assert at.session_state["_selections"]["c"].is_everything
    at.session_state[el.key] = {"selection": {"rows": [5, 1], "mode": "lasso", "seq": 2}}
    at.run()
    assert at.session_state["_selections"]["c"].rows == (1, 5)


def test_other_corpora_are_drawn_on_the_same_map_coloured_by_corpus(open_map, map_store):
    at = open_map()
    assert "d" in at.multiselect(key="map_others").options  # every corpus embedded with the model
    at.multiselect(key="map_others").set_value(["d"]).run()
    settle(at, map_store["path"])  # the joint map is a job of its own
    _, header, buffers = _map(at)
    n = sum(SIZES)
    assert header["n"] == n + 40 and header["title"] == "c vs d: PCA map"
    assert at.selectbox(key="map_color").value == "corpus"
    assert [(e["label"], e["count"]) for e in header["legend"]] == [("c", n), ("d", 40)]
    assert buffers["codes"][:n].tolist() == [0] * n and buffers["codes"][n:].tolist() == [1] * 40
    at.selectbox(key="map_color").set_value("label").run()
    _, header, _ = _map(at)
    assert {e["label"] for e in header["legend"]} == {*LABELS, "D"}


# ---------------------------------------------------------------- slow: server + Chromium

HANDLE = "Object.values(window.__embexScatter || {}).find(h => h.view.root.isConnected)"


def _open(browser, url, **query):
    from analytics.screenshot import wait_for_app

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
    q = "&".join(f"{k}={v}" for k, v in {"corpus": "c", "method": "pca", **query}.items())
    page.goto(f"{url}/map?{q}")
    page.wait_for_function(f"() => {{ const h = {HANDLE}; return h && h.drawn() > 0; }}", timeout=120_000)
    wait_for_app(page)
    return page, errors


@pytest.fixture(scope="module")
def map_server(map_store):
    from conftest import streamlit_server

    with streamlit_server(map_store["server"]) as url:
        yield url


@pytest.mark.slow
def test_the_map_page_draws_every_point_above_the_fold(map_server, map_store, browser):
    page, errors = _open(browser, map_server)
    n = sum(SIZES)
    assert page.evaluate(f"() => {HANDLE}.drawn()") == n
    legend = [" ".join(t.split()) for t in page.locator(".exs-legend-item").all_inner_texts()]
    assert legend == [f"{label} {size}" for label, size in zip(LABELS, SIZES, strict=True)]
    assert page.locator(".exs-title").inner_text() == "c: PCA map"
    page.get_by_text(f"corpus: c · model: {DEFAULT_MODEL} · n = {n} · PCA").wait_for()
    painted = page.evaluate(
        f"""() => {{ const c = {HANDLE}.view.canvas;
            const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let k = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) k++; return k; }}"""
    )
    assert painted > 1000
    top, bottom = page.evaluate(
        f"() => {{ const r = {HANDLE}.view.canvas.getBoundingClientRect(); return [r.top, r.bottom]; }}"
    )
    assert 0 < top and bottom <= 900, (top, bottom)  # the whole map shows without scrolling
    assert page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
    assert not errors
    page.close()


def _isolated_row(xy, cluster: int) -> int:
    """The row of ``cluster`` whose nearest other point is farthest away (nothing drawn over it)."""
    rows = np.arange(sum(SIZES[:cluster]), sum(SIZES[: cluster + 1]))
    d = np.linalg.norm(xy[rows, None] - xy[None], axis=2)
    d[np.arange(len(rows)), rows] = np.inf
    return int(rows[np.argmax(d.min(axis=1))])


def _client(page, xy, row: int) -> tuple[float, float]:
    """Where ``row`` is on the screen, after checking that no other point is within 6 pixels."""
    x, y = page.evaluate(f"() => {HANDLE}.rowToClient({row})")
    x1, _ = page.evaluate(f"() => {HANDLE}.dataToClient({float(xy[row, 0]) + 1.0}, {float(xy[row, 1])})")
    gap = np.sort(np.linalg.norm(xy - xy[row], axis=1))[1]
    assert abs(x1 - x) * gap > 6, "the point is not isolated enough to point at"
    return x, y


@pytest.mark.slow
def test_hover_shows_the_label_then_the_text_and_metadata(map_server, map_store, browser):
    page, errors = _open(browser, map_server)
    row = _isolated_row(map_store["xy"], 2)  # the cluster with the hostile label
    x, y = _client(page, map_store["xy"], row)
    page.mouse.move(x - 40, y - 40)
    page.mouse.move(x, y, steps=4)
    tip = page.locator(".exs-tooltip")
    tip.wait_for(state="visible", timeout=10_000)
    assert page.locator(".exs-tip-label").inner_text() == LABELS[2]  # the label, before Python answers
    page.wait_for_function(f"() => {HANDLE}.view.tooltip.dataset.loaded === '{row}'", timeout=20_000)
    text = tip.inner_text()
    meta = map_store["meta"][row]
    assert map_store["texts"][row] in text
    for key in ("label", "year", "source"):
        assert key in text and str(meta[key]) in text
    assert page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0
    assert not errors
    page.close()


@pytest.mark.slow
def test_a_click_lists_the_nearest_texts_by_cosine(map_server, map_store, browser):
    page, errors = _open(browser, map_server)
    xy, X = map_store["xy"], map_store["X"]
    row = _isolated_row(xy, 3)
    x, y = _client(page, xy, row)
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function(f"() => {HANDLE}.view.panel.dataset.row === '{row}'", timeout=20_000)
    shown = page.locator(".exs-neighbour").evaluate_all("els => els.map(e => Number(e.dataset.row))")
    want = [i for i, _ in _brute_neighbours(X, row, 10)]
    assert shown == want
    assert map_store["texts"][want[0]] in page.locator(".exs-panel").inner_text()
    assert not errors
    page.close()


@pytest.mark.slow
def test_a_click_on_a_count_bar_filters_the_map_and_a_second_click_removes_it(map_server, map_store, browser):
    page, errors = _open(browser, map_server)
    bars = page.locator('[data-testid="stPlotlyChart"] .bars .point path')
    bars.first.wait_for(timeout=30_000)
    assert bars.count() == len(LABELS)
    box = bars.nth(1).bounding_box()  # the second largest label; plotly's drag layer takes the click
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    heading = page.get_by_role("heading", name="selected texts")
    heading.wait_for(timeout=60_000)
    assert heading.inner_text() == f"{SIZES[1]} selected texts"
    page.wait_for_function(
        f"() => {{ const h = {HANDLE}; return h && h.view.header.highlight && h.view.header.highlight.count === {SIZES[1]}; }}",
        timeout=30_000,
    )
    assert "label=" not in page.url and "filter=" in page.url
    page.get_by_role("button", name=f"✕ label = {LABELS[1]}").click()
    heading.wait_for(state="detached", timeout=60_000)
    assert not errors
    page.close()


@pytest.mark.slow
def test_a_lasso_selects_exactly_the_rows_inside_it_and_they_can_be_saved(map_store, browser):
    """Its own server on a copy of the store: the saved corpus is read back once it stops."""
    from conftest import streamlit_server
    from test_scatter_component import _drag_polygon, _edge_distance, _inside

    xy = map_store["xy"]
    path = map_store["copy"]
    with streamlit_server(path) as url:
        page, errors = _open(browser, url)
        # a pentagon around clusters 1 and 2 (the two on the left of the square), edges in empty space
        left = np.arange(SIZES[0], sum(SIZES[:3]))
        lo, hi = xy[left].min(axis=0), xy[left].max(axis=0)
        pad = 0.25 * (xy.max(axis=0) - xy.min(axis=0)).min() / 2
        (lx, ly), (hx, hy) = lo - pad, hi + pad
        mx = (lx + hx) / 2
        poly = np.array([[lx, ly], [hx, ly], [hx, hy], [mx, hy + pad / 2], [lx, hy]])
        vertices = page.evaluate(f"(p) => p.map(([x, y]) => {HANDLE}.dataToClient(x, y))", poly.tolist())
        px_per_unit = abs(vertices[1][0] - vertices[0][0]) / abs(poly[1, 0] - poly[0, 0])
        assert _edge_distance(xy, poly).min() * px_per_unit > 2, "test data too close to the lasso"
        want = np.flatnonzero(_inside(xy, poly)).tolist()
        assert len(want) == SIZES[1] + SIZES[2]
        _drag_polygon(page, vertices, shift=True)
        heading = page.get_by_role("heading", name="selected texts")
        heading.wait_for(timeout=60_000)
        assert heading.inner_text() == f"{len(want)} selected texts"
        grid = page.locator('[data-testid="stDataFrame"] [role="grid"]').first
        assert grid.get_attribute("aria-rowcount") == str(len(want) + 1)  # rows and the header
        page.get_by_label("Save the selection as a new corpus named").fill("lassoed")
        page.get_by_label("Save the selection as a new corpus named").press("Enter")
        page.wait_for_timeout(500)
        page.get_by_role("button", name="Save selection").click()
        page.get_by_text(f"Saved {len(want)} texts as lassoed").wait_for(timeout=60_000)
        assert not errors
        page.close()
    with Store(path, read_only=True) as s:
        assert s.texts("lassoed") == [map_store["texts"][i] for i in want]


@pytest.mark.slow  # kaleido renders the images with Chromium
def test_export_builds_the_plotly_figure_only_when_asked_and_it_carries_the_titles(
    open_map, map_store, monkeypatch
):
    import analytics.figures

    built = []
    real = analytics.figures.map_figure

    def counting(*args, **kwargs):  # the real figure, counted
        built.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(analytics.figures, "map_figure", counting)
    at = open_map()
    at.selectbox(key="map_color").set_value("source").run()
    assert built == []  # page runs that export nothing build no plotly figure
    next(b for b in at.button if b.label == "Prepare PNG and SVG").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(built) == 1 and built[0]["max_points"] == 50_000
    png, svg = at.session_state["map-export-png"], at.session_state["map-export-svg"].decode()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "c: PCA map" in svg and f"corpus: c · model: {DEFAULT_MODEL} · n = {sum(SIZES)} · PCA" in svg
    assert "src-0" in svg and "showing a random" not in svg  # coloured by source; every point drawn
    assert [b.label for b in at.get("download_button")] == ["Download PNG", "Download SVG"]


def test_leaving_the_map_keeps_its_method_colour_and_selection(open_map, map_store):
    at = open_map()
    at.selectbox(key="map_color").set_value("source").run()
    at.text_input(key="map_search").input("cluster 2").run()
    at.switch_page("views/home.py").run()
    for k in list(at.query_params):  # a page link carries no view parameters
        del at.query_params[k]
    at.switch_page("views/map.py").run()
    settle(at, map_store["path"])
    assert at.selectbox(key="map_color").value == "source"
    assert at.radio(key="map_method").value == "pca"
    assert at.text_input(key="map_search").value == "cluster 2"
    assert at.session_state["_selections"]["c"].search == "cluster 2"
    assert f"**{SIZES[2]} of {sum(SIZES)} texts selected**" in [m.value for m in at.markdown]


def test_a_selection_made_on_the_map_scopes_the_depth_page(open_map, map_store):
    from analytics import tte_depth

    at = open_map()
    el, _, _ = _map(at)
    rows = list(range(SIZES[0], SIZES[0] + SIZES[1]))  # cluster 1, as a lasso round it would
    at.session_state[el.key] = {"selection": {"rows": rows, "mode": "lasso", "seq": 1}}
    at.run()
    at.switch_page("views/depth.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"Scoped to the selection: {len(rows)} of {sum(SIZES)} texts" in i.value for i in at.info)
    table = at.dataframe[0].value
    X = map_store["X"]
    within = tte_depth(X[rows])
    assert sorted(table["row"].tolist()) == rows  # every selected text, and only those
    by_row = dict(zip(table["row"], table["depth"], strict=True))
    assert np.allclose([by_row[r] for r in rows], within, atol=1e-5)
    assert at.subheader[0].value == "The median text: the most representative of the selection"
    at.radio(key="depth_within").set_value("the whole corpus").run()
    table = at.dataframe[0].value
    by_row = dict(zip(table["row"], table["depth"], strict=True))
    assert np.allclose([by_row[r] for r in rows], tte_depth(X)[rows], atol=1e-5)
    next(b for b in at.button if b.label == "Clear selection").click().run()
    assert len(at.dataframe[0].value) == sum(SIZES)


@pytest.mark.slow
def test_in_a_browser_the_map_keeps_its_colour_and_search_across_pages(map_server, browser):
    """The real thing (AppTest runs no timed fragments, such as the sidebar's jobs badge, which
    made Streamlit forget an unrendered widget's value before persist_state)."""
    from analytics.screenshot import wait_for_app

    page, errors = _open(browser, map_server)
    colour = page.locator('[data-testid="stSelectbox"]').filter(has_text="Colour by").first
    colour.click()
    page.get_by_role("option", name="source", exact=True).click()
    box = page.get_by_label("Select texts containing")
    box.fill("cluster 2")
    box.press("Enter")
    page.get_by_text(f"{SIZES[2]} of {sum(SIZES)} texts selected").wait_for(timeout=60_000)
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_role("link", name="Depth", exact=True).click()
    page.get_by_role("heading", name="Depth", exact=True).wait_for(timeout=60_000)
    page.get_by_text(f"Scoped to the selection: {SIZES[2]} of {sum(SIZES)} texts").wait_for(timeout=60_000)
    nav.get_by_role("link", name="Map", exact=True).click()
    page.wait_for_function(f"() => {{ const h = {HANDLE}; return h && h.drawn() > 0; }}", timeout=120_000)
    wait_for_app(page)
    legend = page.evaluate(f"() => {HANDLE}.view.header.legend.map(e => e.label)")
    assert sorted(legend) == ["src-0", "src-1", "src-2"]  # still coloured by source
    assert page.get_by_label("Select texts containing").input_value() == "cluster 2"
    page.get_by_text(f"{SIZES[2]} of {sum(SIZES)} texts selected").wait_for(timeout=30_000)
    assert not errors
    page.close()
