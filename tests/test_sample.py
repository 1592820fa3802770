"""The bundled sample and the vectors shipped with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from analytics.embedding import DEFAULT_MODEL
from analytics.sample import SAMPLE_NAME, SAMPLE_VECTORS, add_sample


def test_shipped_vectors_are_the_bundled_models_output(sample_rows, embedder):
    V = np.load(SAMPLE_VECTORS)
    assert V.shape == (7600, 384) and V.dtype == np.float32
    rows = list(range(0, 7600, 190))  # 40 rows across the file
    np.testing.assert_allclose(embedder.encode([sample_rows[i]["text"] for i in rows]), V[rows], atol=2e-5)


def test_add_sample_stores_texts_labels_and_vectors(store):
    assert add_sample(store) is True
    info = store.corpus_info(SAMPLE_NAME)
    assert (info.n_docs, info.label_column) == (7600, "label")
    assert store.embedded_count(SAMPLE_NAME, DEFAULT_MODEL) == 7600
    np.testing.assert_allclose(store.vectors(SAMPLE_NAME, DEFAULT_MODEL), np.load(SAMPLE_VECTORS), atol=1e-6)


# ---------------------------------------------------------------- the shipped map (issue 14)


def test_add_sample_caches_the_map_the_map_page_asks_for_first(store):
    from analytics.jobs import Executor
    from analytics.projection import cached_projection
    from analytics.sample import read_sample_map, sample_map_request

    coords, meta = read_sample_map()
    assert coords.shape == (7600, 2) and coords.dtype == np.float32 and np.isfinite(coords).all()
    assert add_sample(store) is True
    request = sample_map_request(store)
    assert meta["key"] == request.key  # the texts, model, method and every parameter of today's code
    assert (meta["method"], meta["params"]) == (request.method, request.params)
    proj = cached_projection(store, request)
    np.testing.assert_array_equal(proj.coords, coords)
    # the Map page's own request (method and sliders at their defaults) is answered from the
    # cache: no job, no UMAP
    ex = Executor(store, resume=False)
    try:
        page_request = {"corpus": SAMPLE_NAME, "model_id": DEFAULT_MODEL, "method": "umap"}
        assert ex.result("project", {**page_request, "n_neighbors": 15, "min_dist": 0.1}) is not None
        assert ex.submit("project", page_request).message == "already computed"
    finally:
        ex.shutdown()


def test_a_shipped_map_of_another_version_is_not_used(store, tmp_path):
    from analytics.corpus import load_corpus
    from analytics.embedding import import_vectors
    from analytics.projection import cached_projection
    from analytics.sample import SAMPLE_CSV, add_sample_map, read_sample_map, sample_map_request

    store.add_corpus(SAMPLE_NAME, load_corpus(SAMPLE_CSV, "text"), label_column="label")
    import_vectors(store, SAMPLE_NAME, np.load(SAMPLE_VECTORS), DEFAULT_MODEL)
    coords, meta = read_sample_map()
    stale = tmp_path / "stale.npz"
    np.savez(stale, coords=coords, meta=np.array(json.dumps({**meta, "key": "projection:older"})))
    short = tmp_path / "short.npz"
    np.savez(short, coords=coords[:100], meta=np.array(json.dumps(meta)))
    for path in (stale, short, tmp_path / "missing.npz"):
        assert add_sample_map(store, path=path) is False
        assert cached_projection(store, sample_map_request(store)) is None
    assert add_sample_map(store) is True
    assert cached_projection(store, sample_map_request(store)) is not None


def test_the_shipped_map_is_what_the_code_computes(tmp_path):
    """Recompute the sample's default map with today's code (a first UMAP: about a minute)."""
    from analytics.sample import read_sample_map, write_sample_map

    meta = write_sample_map(tmp_path / "again.npz")
    shipped, shipped_meta = read_sample_map()
    again, _ = read_sample_map(tmp_path / "again.npz")
    assert meta["key"] == shipped_meta["key"]
    # UMAP is seeded and single-threaded here: the same inputs give the same picture, up to
    # float rounding that another CPU's BLAS may add (then neighbourhoods still agree)
    if not np.allclose(again, shipped, atol=1e-3):
        d_new = np.linalg.norm(again[:, None] - again[None, ::7], axis=2)
        d_old = np.linalg.norm(shipped[:, None] - shipped[None, ::7], axis=2)
        agree = np.mean(
            [
                len(set(a) & set(b)) / 10
                for a, b in zip(
                    np.argsort(d_new, axis=1)[:, :10], np.argsort(d_old, axis=1)[:, :10], strict=True
                )
            ]
        )
        assert agree > 0.9, (
            f"the shipped map is not the one this code draws ({agree:.0%} of neighbours agree)"
        )


@pytest.mark.slow
def test_first_start_opens_the_samples_map_from_the_cache(tmp_path, browser):
    """A fresh store, the dashboard's first start: Home stores the sample with its vectors and
    map; the Map page then draws the shipped coordinates, and no map job ever runs."""
    import sys
    import time

    from conftest import ROOT, start_server

    from analytics.jobs import Job
    from analytics.sample import read_sample_map
    from analytics.screenshot import wait_for_app
    from analytics.store import Store

    sys.path.insert(0, str(ROOT / "dashboard"))
    from scatter import normalize_xy

    handle = "Object.values(window.__embexScatter || {}).find(h => h.view.root.isConnected)"
    path = tmp_path / "first.duckdb"
    proc, url = start_server(path, sample=True, port=8753)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        t0 = time.perf_counter()
        page.goto(url)
        page.get_by_text("Corpora in this store").wait_for(timeout=120_000)
        wait_for_app(page)
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Map", exact=True).click()
        page.wait_for_function(
            f"() => {{ const h = {handle}; return h && h.drawn() === 7600; }}", timeout=120_000
        )
        seconds = time.perf_counter() - t0
        assert page.get_by_text("Computing the UMAP map").count() == 0
        xy = np.array(page.evaluate(f"() => Array.from({handle}.view.xy)"), dtype=np.float32)
        np.testing.assert_allclose(xy, normalize_xy(read_sample_map()[0])[0].ravel(), atol=1e-6)
        assert page.evaluate(f"() => {handle}.view.header.title") == f"{SAMPLE_NAME}: UMAP map"
        page.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    with Store(path, read_only=True) as s:
        assert [Job.from_row(r).kind for r in s.job_rows()] == []  # no embedding, no map job
    print(f"first start: the sample's map drawn {seconds:.1f} s after the page was opened")


def test_a_first_start_that_opens_the_map_directly_finds_the_sample(tmp_path, monkeypatch):
    """A shared link to the Map on a fresh store: the Map adds the sample as Home would, and
    draws its shipped map from the cache (no job), instead of "No corpus yet"."""
    import sys

    from conftest import ROOT
    from streamlit.testing.v1 import AppTest

    sys.path.insert(0, str(ROOT / "dashboard"))
    from scatter import normalize_xy, unpack_payload

    from analytics.jobs import executor_for
    from analytics.sample import read_sample_map

    path = tmp_path / "fresh.duckdb"
    monkeypatch.setenv("EMBEX_STORE", str(path))
    monkeypatch.delenv("EMBEX_SAMPLE", raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
    at.switch_page("views/map.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [i.value for i in at.info if "No corpus yet" in i.value]
    assert at.selectbox(key="_corpus_select").value == SAMPLE_NAME
    assert [c.name for c in executor_for(path).store.list_corpora()] == [SAMPLE_NAME]
    assert not [j for j in executor_for(path).jobs() if j.kind == "project"]  # the shipped map
    (el,) = [e for e in at.get("bidi_component") if not e.proto.id.endswith("-channel")]
    header, buffers = unpack_payload(el.proto.bytes)
    assert header["title"] == f"{SAMPLE_NAME}: UMAP map" and header["n"] == 7600
    np.testing.assert_allclose(buffers["xy"], normalize_xy(read_sample_map()[0])[0].ravel(), atol=1e-6)
