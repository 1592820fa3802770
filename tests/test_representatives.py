"""Representative sampling: the k deepest texts per label, k-means medoids, seeded random.

Fast tier: properties on random data, and the sample's shipped vectors (real embeddings of AG
News by the bundled model, read from sample_data/, so no model is loaded). The Depth page's
section runs in the full tier."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, make_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import EmbeddingError, ParameterError, tte_depth
from analytics.representatives import pick_representatives

VECTORS = ROOT / "sample_data" / "ag_news.vectors.npy"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


@st.composite
def labelled_data(draw, max_rows=40):
    """Random embeddings (some rows repeated, so ties and copies occur) with 1-4 labels."""
    n = draw(st.integers(1, max_rows))
    d = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n, d))
    copies = draw(st.integers(0, n // 3))
    if copies:
        X[rng.choice(n, copies)] = X[rng.choice(n, copies)]
    labels = rng.choice(["a", "b", "c", "d"][: draw(st.integers(1, 4))], n).tolist()
    return X, labels, draw(st.integers(1, 8))


def _group_rows(labels):
    groups = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return {label: np.array(rows) for label, rows in groups.items()}


@settings(max_examples=60, deadline=None)
@given(labelled_data())
def test_without_spreading_depth_picks_are_the_k_deepest_of_each_label(data):
    X, labels, k = data
    reps = pick_representatives(X, k, labels=labels, max_similarity=1.0)
    picked = reps.groups()
    for label, rows in _group_rows(labels).items():
        got = picked[label]
        assert got.size == min(k, rows.size)
        assert set(got) <= set(rows)
        if rows.size > 1:
            depths = tte_depth(X[rows])
            want = np.sort(depths)[::-1][: got.size]
            mine = tte_depth(X[rows])[np.searchsorted(rows, got)]
            np.testing.assert_allclose(mine, want, atol=1e-12)  # the k deepest (ties: any of them)
            assert np.all(np.diff(mine) <= 1e-12)  # deepest first
            np.testing.assert_allclose(reps.depths[np.isin(reps.indices, got)], mine, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled_data(), st.floats(0.5, 0.999))
def test_spread_picks_are_not_near_copies_unless_the_label_runs_out(data, threshold):
    X, labels, k = data
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    picked = pick_representatives(X, k, labels=labels, max_similarity=threshold).groups()
    for label, rows in _group_rows(labels).items():
        got = picked[label]
        assert got.size == min(k, rows.size) and len(set(got)) == got.size and set(got) <= set(rows)
        S = U[got] @ U[got].T
        np.fill_diagonal(S, -1)
        if (S >= threshold).any():  # then the label ran out: every text left is a near-copy of a pick
            rest = np.setdiff1d(rows, got)
            assert ((U[rest] @ U[got].T).max(axis=1) >= threshold - 1e-9).all()


@settings(max_examples=40, deadline=None)
@given(labelled_data(max_rows=30))
def test_medoids_are_distinct_members_of_their_label(data):
    X, labels, k = data
    reps = pick_representatives(X, k, labels=labels, method="medoid", random_state=3)
    assert reps.indices.size == len(set(reps.indices.tolist()))
    for label, rows in _group_rows(labels).items():
        got = reps.groups()[label]
        assert got.size == min(k, rows.size) and set(got) <= set(rows)
    again = pick_representatives(X, k, labels=labels, method="medoid", random_state=3)
    np.testing.assert_array_equal(reps.indices, again.indices)


@settings(max_examples=60, deadline=None)
@given(labelled_data(), st.integers(0, 2**31))
def test_random_is_reproducible_by_seed_and_gives_each_label_its_share(data, seed):
    X, labels, k = data
    a = pick_representatives(X, k, labels=labels, method="random", random_state=seed)
    b = pick_representatives(X, k, labels=labels, method="random", random_state=seed)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.labels == b.labels == [labels[i] for i in a.indices]
    for label, rows in _group_rows(labels).items():
        got = a.groups()[label]
        assert got.size == min(k, rows.size) and len(set(got)) == got.size and set(got) <= set(rows)


def test_overall_picks_and_groups_in_order_of_first_appearance():
    X = np.random.default_rng(0).normal(size=(30, 4))
    overall = pick_representatives(X, 4, max_similarity=1.0)
    assert overall.labels is None and list(overall.groups()) == [None]
    np.testing.assert_array_equal(overall.indices, np.argsort(-tte_depth(X), kind="stable")[:4])
    labels = ["z"] * 10 + [2] * 10 + [float("nan")] * 9 + [np.nan]  # every NaN is one label
    reps = pick_representatives(X, 3, labels=labels)
    assert list(reps.groups())[:2] == ["z", 2] and len(reps.groups()) == 3
    assert reps.indices.size == 9


def test_a_label_of_one_text_gives_that_text_with_no_depth():
    X = np.random.default_rng(1).normal(size=(5, 3))
    for method in ("depth", "medoid", "random"):
        reps = pick_representatives(X, 3, labels=["a"] * 4 + ["b"], method=method)
        assert reps.groups()["b"].tolist() == [4]
        assert np.isnan(reps.depths[reps.indices == 4]).all()


def test_bad_input_says_what_to_do():
    X = np.random.default_rng(0).normal(size=(6, 3))
    with pytest.raises(ParameterError, match="representatives k must be an integer between 1 and 1000"):
        pick_representatives(X, 0)
    with pytest.raises(ParameterError, match="method must be one of depth, medoid, random"):
        pick_representatives(X, method="centroid")
    with pytest.raises(ParameterError, match="max_similarity must be a finite number between 0.5 and 1"):
        pick_representatives(X, max_similarity=1.5)
    with pytest.raises(ParameterError, match="labels has 5 values but X has 6 rows; pass one label per row"):
        pick_representatives(X, labels=list("abcde"))
    with pytest.raises(ParameterError, match="labels must be hashable"):
        pick_representatives(X, labels=[[1]] * 6)
    with pytest.raises(ParameterError, match="random_state must be a non-negative integer"):
        pick_representatives(X, method="random", random_state=-1)
    X[2] = 0
    with pytest.raises(EmbeddingError, match="all-zero row"):
        pick_representatives(X)


@pytest.fixture(scope="module")
def ag_news(sample_rows):
    """The sample's shipped real embeddings (7,600 AG News texts) and their topics."""
    return np.load(VECTORS), [r["label"] for r in sample_rows], [r["text"] for r in sample_rows]


def test_on_ag_news_the_deepest_of_a_topic_repeat_a_story_and_spreading_drops_the_copy(ag_news):
    X, labels, texts = ag_news
    plain = pick_representatives(X, 10, labels=labels, max_similarity=1.0).groups()["Sports"]
    spread = pick_representatives(X, 10, labels=labels).groups()["Sports"]  # default 0.95
    # measured: among the 10 deepest Sports texts, one Talladega story appears twice (cos 0.99);
    # every other pair of the 40 picks is below 0.6
    S = X[plain] @ X[plain].T
    np.fill_diagonal(S, 0)
    assert S.max() > 0.98
    copies = np.unravel_index(S.argmax(), S.shape)
    assert {texts[plain[i]][:30].lower() for i in copies} == {"jeff gordon leads contenders a"}
    S = X[spread] @ X[spread].T
    np.fill_diagonal(S, 0)
    assert S.max() < 0.95 and len(set(plain) & set(spread)) == 9


def test_on_ag_news_depth_picks_are_deeper_than_medoids_and_random(ag_news):
    X, labels, _ = ag_news
    mean_depth = {
        m: np.mean(pick_representatives(X, 5, labels=labels, method=m, random_state=0).depths)
        for m in ("depth", "medoid", "random")
    }
    assert mean_depth["depth"] > mean_depth["medoid"] > mean_depth["random"], mean_depth


def test_embex_representatives_per_label_and_overall(tmp_path, ag_news, capsys):
    from analytics import Corpus, Store, import_vectors
    from analytics.cli import main

    X, labels, texts = ag_news
    rows = np.r_[0:40, 3000:3040]
    path = tmp_path / "store.duckdb"
    with Store(path) as s:
        s.add_corpus(
            "news", make_corpus([texts[i] for i in rows], [labels[i] for i in rows]), label_column="label"
        )
        s.add_corpus("plain", make_corpus([texts[i] for i in rows], [labels[i] for i in rows]))
        s.add_corpus("bare", Corpus([texts[i] for i in rows], [{}] * rows.size, "text", "test"))
        import_vectors(s, "news", X[rows], MODEL_ID)
        import_vectors(s, "plain", X[rows], MODEL_ID)
    store = ["--store", str(path)]
    assert main(["representatives", "news", "-k", "2", "--per-label", "--json", *store]) == 0
    data = json.loads(capsys.readouterr().out)
    want = pick_representatives(X[rows], 2, labels=[labels[i] for i in rows])
    assert [p["position"] for p in data["picks"]] == want.indices.tolist()
    assert [p["rank"] for p in data["picks"]] == [1, 2] * len(set(want.labels))
    assert data["label_column"] == "label" and data["method"] == "depth"
    assert main(["representatives", "news", "-k", "3", "--method", "random", "--seed", "7", *store]) == 0
    out = capsys.readouterr().out
    assert (
        "3 representative text(s) overall in 'news' by random" in out and "all of 'news' (80 texts):" in out
    )
    # no label column set (as after embex ingest): its metadata column "label"
    assert main(["representatives", "plain", "-k", "2", "--per-label", "--json", *store]) == 0
    assert json.loads(capsys.readouterr().out)["picks"] == data["picks"]
    assert main(["representatives", "bare", "--per-label", *store]) == 2
    assert "has no label column (its metadata columns: none); name one with --label-column" in (
        capsys.readouterr().err
    )
    assert main(["representatives", "news", "--label-column", "topic", *store]) == 2
    assert "has no metadata column 'topic' (its metadata columns: label)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["representatives", "news", "--method", "centroid", *store])
    assert "method must be one of depth, medoid, random" in capsys.readouterr().err


@pytest.mark.slow  # a Streamlit script run of the whole page (~20 s): the full tier
def test_depth_page_section_picks_per_label_and_overall(tmp_path, ag_news, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from analytics import Store, import_vectors

    X, labels, texts = ag_news
    rows = np.r_[0:60, 4000:4060]
    path = tmp_path / "page.duckdb"
    with Store(path) as s:
        corpus = make_corpus([texts[i] for i in rows], [labels[i] for i in rows])
        s.add_corpus("news", corpus, label_column="label")
        import_vectors(s, "news", X[rows], MODEL_ID)
    monkeypatch.setenv("EMBEX_STORE", str(path))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["corpus"] = "news"
    at.run()
    at.switch_page("views/depth.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[-1].value
    want = pick_representatives(X[rows], 5, labels=[labels[i] for i in rows])
    assert table["row"].tolist() == want.indices.tolist()
    assert table["label"].tolist() == want.labels and table["rank"].tolist()[:5] == [1, 2, 3, 4, 5]
    at.radio(key="reps_method").set_value("medoid").run()
    at.number_input(key="reps_k").set_value(3).run()
    at.selectbox(key="reps_per").select_index(0).run()  # the whole corpus
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[-1].value
    medoids = pick_representatives(X[rows], 3, method="medoid", random_state=0)
    assert table["row"].tolist() == medoids.indices.tolist() and "label" not in table.columns
