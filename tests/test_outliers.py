"""Outliers: texts planted from other domains must surface, local depth must agree with its
definition and find what has no neighbours, and the rankings' parameters are checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT, settle
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import roc_auc_score
from test_params import open_page, tiny_store, warnings  # noqa: F401 (tiny_store: the page's store)

from analytics import EmbeddingError, ParameterError, tte_depth
from analytics.depth import depth_percentile
from analytics.outliers import find_outliers, local_depth, outlier_scores

PLANTED = ROOT / "tests" / "fixtures" / "planted_outliers.jsonl"
CLINC_SLICE = ROOT / "tests" / "fixtures" / "clinc150_slice.jsonl"


@pytest.fixture(scope="module")
def planted_corpus(sample_rows, embed_cached):
    news = [r["text"] for r in sample_rows if r["label"] in ("World", "Business")][:400]
    planted = [json.loads(line)["text"] for line in PLANTED.read_text(encoding="utf-8").splitlines()]
    texts = news + planted
    return embed_cached(texts), list(range(len(news), len(texts)))


def test_planted_texts_rank_among_the_lowest_depths(planted_corpus):
    X, planted = planted_corpus
    report = find_outliers(X, count=25, by="global")
    # measured: the 8 planted texts rank 1-23 of 408. The SQL query (customers, orders,
    # amounts) is the least outlying; it sits nearest Business news.
    assert set(planted) <= set(report.flagged.tolist()), report.percentiles[planted]
    assert report.percentiles[planted].max() <= 6.0  # all in the lowest 6% of depths
    assert np.median(report.percentiles[planted]) <= 3.0  # half in the lowest 3%


def test_local_and_combined_rankings_also_put_the_planted_texts_low(planted_corpus):
    X, planted = planted_corpus
    local = find_outliers(X, count=25, by="local", k=10)
    combined = find_outliers(X, count=25, by="combined", k=10)
    # measured (of 408): local ranks the four code snippets 1, 2, 4 and 12, better than global
    # depth (4, 10, 11, 23), but the four translations of one sentence 11-47: they neighbour
    # each other, a small group of strays that global depth finds (1-21). Combined: 2-28.
    assert local.rank[planted].max() <= 61  # all in the lowest 15%
    assert np.median(local.rank[planted]) <= 20
    assert combined.rank[planted].max() <= 41  # all in the lowest 10%


def test_knn_is_a_second_opinion_that_agrees_on_the_planted_texts(planted_corpus):
    X, planted = planted_corpus
    report = find_outliers(X, quantile=0.05, k=10)
    assert len(report.flagged) == int(np.ceil(0.05 * len(X)))
    assert np.median(report.knn_rank[planted]) <= 40  # most isolated 10% by k-NN as well
    # each flagged text comes with its nearest neighbours, nearest first, never itself
    assert report.neighbours.shape == (len(report.flagged), 10)
    assert not (report.neighbours == report.flagged[:, None]).any()
    assert np.all(np.diff(report.neighbour_similarity, axis=1) <= 1e-6)


def test_threshold_arguments_are_checked():
    X = np.random.default_rng(0).normal(size=(30, 5))
    with pytest.raises(ValueError, match="outliers quantile must be a finite number between 0.001 and 0.5"):
        find_outliers(X, quantile=1.5)
    with pytest.raises(ValueError, match="outliers count must be an integer, at least 1"):
        find_outliers(X, count=0)
    assert len(find_outliers(X, count=100).flagged) == 30


# --- local depth: the definition, brute force ------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)


def corpora(min_rows=2, max_rows=25):
    return st.tuples(st.integers(min_rows, max_rows), st.integers(2, 8)).flatmap(
        lambda nd: arrays(np.float64, nd, elements=finite).filter(
            lambda a: (np.linalg.norm(a, axis=1) > 1e-3).all()
        )
    )


def brute_local_depth(X, k, distance="cosine"):
    """2 - the mean distance to the k nearest other rows, from all pairs in float64."""
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = np.clip(U @ U.T, -1.0, 1.0)
    dist = 1.0 - cos if distance == "cosine" else np.sqrt(2.0 - 2.0 * cos)
    np.fill_diagonal(dist, np.inf)  # a text is not its own neighbour
    return 2.0 - np.sort(dist, axis=1)[:, :k].mean(axis=1)


@settings(max_examples=80, deadline=None)
@given(corpora(), st.data(), st.sampled_from(["cosine", "chord"]))
def test_local_depth_is_depth_over_the_k_nearest_neighbours(X, data, distance):
    k = data.draw(st.integers(1, X.shape[0] - 1))
    # neighbours are ranked in float32, so a near tie may pick the other of two rows whose
    # distances differ by float32 rounding; the distances themselves are float64
    np.testing.assert_allclose(
        local_depth(X, k, distance=distance), brute_local_depth(X, k, distance), rtol=0, atol=1e-6
    )


@settings(max_examples=40, deadline=None)
@given(corpora(), st.sampled_from(["cosine", "chord"]))
def test_with_every_other_text_as_neighbour_local_depth_is_global_depth(X, distance):
    n = X.shape[0]
    # global chord depth takes sqrt(2 - 2 cos), ~1e-8 off for (near) duplicates; local depth
    # takes |x - h| in float64
    atol = 1e-9 if distance == "cosine" else 1e-7
    np.testing.assert_allclose(
        local_depth(X, n - 1, distance=distance), tte_depth(X, distance=distance), rtol=0, atol=atol
    )


def test_k_above_the_corpus_is_capped_at_every_other_text():
    X = np.random.default_rng(1).normal(size=(6, 4))
    np.testing.assert_allclose(local_depth(X, 50), tte_depth(X), atol=1e-12)


# --- local depth: properties ----------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(corpora(min_rows=3), st.randoms(use_true_random=False), st.sampled_from(["cosine", "chord"]))
def test_local_depth_does_not_depend_on_row_order(X, rnd, distance):
    perm = list(range(X.shape[0]))
    rnd.shuffle(perm)
    k = min(3, X.shape[0] - 1)
    np.testing.assert_allclose(
        local_depth(X[perm], k, distance=distance), local_depth(X, k, distance=distance)[perm], atol=1e-6
    )


@settings(max_examples=40, deadline=None)
@given(corpora(min_rows=3), st.integers(1, 5), st.data())
def test_a_text_with_k_exact_duplicates_has_the_greatest_local_depth(X, k, data):
    i = data.draw(st.integers(0, X.shape[0] - 1))
    Y = np.vstack([X, np.repeat(X[i : i + 1], k, axis=0)])
    local = local_depth(Y, k)
    copies = [i, *range(X.shape[0], Y.shape[0])]
    # its k neighbours are its copies (or a row so nearly parallel that float32 ties it with them)
    np.testing.assert_allclose(local[copies], 2.0, atol=1e-7)
    assert local.max() <= 2.0
    assert 0.0 <= local.min()


def clustered(rng, n_clusters, per_cluster, d, spread=0.05):
    """Tight clusters around random directions in the first d - 1 coordinates."""
    centres = rng.normal(size=(n_clusters, d))
    centres[:, -1] = 0.0
    points = np.repeat(centres, per_cluster, axis=0) + spread * rng.normal(size=(n_clusters * per_cluster, d))
    points[:, -1] = 0.0
    return points


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 4),
    st.integers(3, 8),
    st.integers(1, 3),
    st.sampled_from(["cosine", "chord"]),
)
def test_a_planted_isolated_text_is_the_most_outlying_locally(seed, n_clusters, d, k, distance):
    rng = np.random.default_rng(seed)
    X = clustered(rng, n_clusters, k + 4, d)
    lone = np.zeros(d)
    lone[-1] = 1.0  # orthogonal to every other text: it has no neighbours
    where = int(rng.integers(0, len(X) + 1))
    X = np.insert(X, where, lone, axis=0)
    assert np.argmin(local_depth(X, k, distance=distance)) == where
    report = find_outliers(X, count=1, k=k, by="local", distance=distance)
    assert report.flagged.tolist() == [where] and report.rank[where] == 1


def test_local_and_global_depth_flag_different_texts():
    """A small tight topic far from the bulk is outlying globally, not locally; a lone text
    between the two has no neighbours, so local depth puts it first."""
    rng = np.random.default_rng(0)
    d = 16
    e0, e1 = np.eye(d)[0], np.eye(d)[1]
    bulk = e0 + 0.1 * rng.normal(size=(300, d))
    topic = e1 + 0.02 * rng.normal(size=(12, d))  # twelve near-paraphrases of one question
    lone = (e0 + e1) / np.sqrt(2) + 0.02 * rng.normal(size=d)
    X = np.vstack([bulk, topic, lone])
    topic_rows, lone_row = set(range(300, 312)), 312
    assert set(find_outliers(X, count=12, by="global").flagged.tolist()) == topic_rows
    local = find_outliers(X, count=12, k=5, by="local")
    assert local.flagged[0] == lone_row and not topic_rows & set(local.flagged.tolist())
    assert local.local_percentiles[sorted(topic_rows)].min() > 50  # deep in its own neighbourhood


# --- the rankings --------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(corpora(min_rows=3), st.sampled_from(["local", "global", "combined"]))
def test_each_ranking_flags_its_lowest_scores(X, by):
    report = find_outliers(X, count=2, k=2, by=by)
    assert report.by == by and report.k == 2
    expected = {"global": report.depths, "local": report.local_depths}.get(
        by, (depth_percentile(report.depths) + depth_percentile(report.local_depths)) / 2
    )
    np.testing.assert_array_equal(report.scores, expected)
    assert report.scores[report.flagged].max() <= np.delete(report.scores, report.flagged).min()
    assert sorted(report.rank[report.flagged]) == [1, 2]
    np.testing.assert_allclose(report.local_depths, local_depth(X, 2), atol=1e-12)
    np.testing.assert_allclose(report.knn_distance, 2.0 - report.local_depths, atol=1e-6)


def test_the_default_ranking_is_local():
    X = np.random.default_rng(2).normal(size=(40, 6))
    assert find_outliers(X).by == "local"
    np.testing.assert_array_equal(outlier_scores([3.0, 1.0], [1.0, 2.0]), [1.0, 2.0])


def test_combined_is_the_mean_of_the_two_depth_percentiles():
    depths = np.array([0.1, 0.2, 0.3, 0.4])
    local = np.array([0.4, 0.1, 0.3, 0.2])
    np.testing.assert_array_equal(outlier_scores(depths, local, by="combined"), [62.5, 37.5, 75.0, 75.0])


# --- parameters -------------------------------------------------------------------------------


def test_ranking_and_local_depth_arguments_are_checked():
    X = np.random.default_rng(0).normal(size=(30, 5))
    with pytest.raises(
        ParameterError, match="outliers by must be one of local, global, combined, got 'median'"
    ):
        find_outliers(X, by="median")
    with pytest.raises(ParameterError, match="outliers by must be one of"):
        outlier_scores(np.ones(3), np.ones(3), by="max")
    with pytest.raises(ParameterError, match="outliers k must be an integer between 1 and 50, got 0"):
        local_depth(X, 0)
    with pytest.raises(ParameterError, match="outliers k must be an integer"):
        local_depth(X, 2.5)
    with pytest.raises(ParameterError, match="distance must be one of"):
        local_depth(X, 3, distance="euclidean")
    with pytest.raises(EmbeddingError, match="X has 1 row.*at least 2 are needed"):
        local_depth(X[:1], 3)
    with pytest.raises(EmbeddingError, match="all-zero row"):
        local_depth(np.vstack([X, np.zeros(5)]), 3)
    with pytest.raises(EmbeddingError, match="NaN or infinite"):
        local_depth(np.vstack([X, np.full(5, np.nan)]), 3)
    with pytest.raises(ParameterError, match="same length"):
        outlier_scores(np.ones(3), np.ones(4), by="combined")


# --- real data: CLINC150 out-of-scope queries --------------------------------------------------


@pytest.fixture(scope="module")
def clinc_slice(embed_cached):
    rows = [json.loads(line) for line in CLINC_SLICE.read_text(encoding="utf-8").splitlines()]
    return embed_cached([r["text"] for r in rows]), np.array([r["intent"] == "oos" for r in rows])


def test_local_depth_finds_out_of_scope_queries_that_global_depth_misses(clinc_slice):
    X, oos = clinc_slice  # 400 queries of 20 intents and 40 out-of-scope ones
    auroc = {
        by: roc_auc_score(oos, -find_outliers(X, by=by).scores) for by in ("local", "global", "combined")
    }
    # measured: local 0.989, global 0.872, combined 0.958 (k = 10)
    assert auroc["local"] >= 0.95
    assert auroc["global"] <= auroc["combined"] <= auroc["local"]
    assert auroc["local"] - auroc["global"] >= 0.05
    flagged = find_outliers(X, count=20).flagged  # the default: local
    assert oos[flagged].mean() >= 0.8  # measured: 19 of 20


# --- the Outliers page -------------------------------------------------------------------------


@pytest.mark.slow
def test_outliers_page_ranks_as_the_link_says_and_keeps_the_choice_in_the_url(tiny_store, monkeypatch):  # noqa: F811
    at = settle(open_page(tiny_store, monkeypatch, "views/outliers.py"), tiny_store)  # a background job
    assert at.radio(key="outliers_by").value == "local"
    assert any("flagged by local depth" in m.value for m in at.markdown)
    assert at.expander[0].label.startswith("#1 · local depth ")
    at.radio(key="outliers_by").set_value("combined").run()
    settle(at, tiny_store)
    assert at.query_params["by"] == "combined"
    assert at.expander[0].label.startswith("#1 · combined percentile ")

    at = settle(open_page(tiny_store, monkeypatch, "views/outliers.py", by="global"), tiny_store)
    assert at.radio(key="outliers_by").value == "global"
    assert at.expander[0].label.startswith("#1 · depth ")
    at = open_page(tiny_store, monkeypatch, "views/outliers.py", by="median")
    assert "by=median" in warnings(at)[0] and "must be one of local, global, combined" in warnings(at)[0]
    assert at.radio(key="outliers_by").value == "local"


# --- embex outliers ----------------------------------------------------------------------------


def test_embex_outliers_ranks_as_asked_and_agrees_with_the_library(tiny_store, capsys):  # noqa: F811
    from analytics import Store
    from analytics.cli import main

    common = ["--store", str(tiny_store), "--model", "rand"]
    with Store(tiny_store, read_only=True) as s:
        X = s.vectors("tiny", "rand")
    for by in ("local", "global", "combined"):
        assert main(["outliers", "tiny", *common, "--by", by, "--count", "4", "--k", "5", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        expected = find_outliers(X, count=4, k=5, by=by)
        assert (data["by"], data["k"], data["n"]) == (by, 5, 60)
        assert [o["position"] for o in data["outliers"]] == expected.flagged.tolist()
        first = data["outliers"][0]
        assert first["local_depth"] == pytest.approx(expected.local_depths[expected.flagged[0]])
        assert len(first["neighbours"]) == 5 and first["text"].startswith("text number")
    assert main(["outliers", "tiny", *common]) == 0  # defaults: local, the lowest 5%
    out = capsys.readouterr().out
    assert out.startswith("3 of 60 texts in 'tiny' flagged by local (cosine, k = 10)")
    with pytest.raises(SystemExit) as exc:
        main(["outliers", "tiny", *common, "--by", "max"])
    assert exc.value.code == 2
    assert "outliers by must be one of local, global, combined, got 'max'" in capsys.readouterr().err
