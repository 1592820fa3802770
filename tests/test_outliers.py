"""Outliers: texts planted from other domains must surface, local depth must agree with its
definition and find what has no neighbours, and the rankings' parameters are checked. What the
page lists (every flagged row, page by page, with labels; restricted to a selection; reviewed
marks in the store; the CSV's name) in the library and in the page (AppTest, real store).
The page in a real browser: tests/test_outliers_page.py."""

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
from analytics.outliers import (
    REVIEWED,
    TABLE_COLUMNS,
    export_name,
    find_outliers,
    flagged_in,
    label_summary,
    local_depth,
    outlier_scores,
    outlier_table,
    paginate,
    row_labels,
)

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


def test_progress_names_each_step_moves_forward_and_stops_when_asked():
    """A job's progress bar for outliers: depth, then the neighbour search a batch at a time
    (most of the time), never backwards; a hook that raises (a cancelled job) stops the work."""
    from analytics.outliers import nearest_neighbours
    from analytics.retrieval import ExactIndex

    X = np.random.default_rng(3).normal(size=(5000, 8))
    seen = []
    report = find_outliers(X, progress=lambda stage, f: seen.append((stage, f)))
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] >= 0.95
    stages = [stage for stage, _ in seen]
    assert stages[0] == "depth of every text" and stages[-1] == "local depth of every text"
    assert stages.count("each text's nearest neighbours") == 1 + 3  # 5,000 rows in batches of 2,048
    assert len(report.flagged) == 250

    class Stop(Exception):
        pass

    def stop(stage, f):
        if f > 0.5:
            raise Stop

    with pytest.raises(Stop):
        find_outliers(X, progress=stop)
    done = []
    nearest_neighbours(ExactIndex(X), 3, batch=1000, progress=done.append)
    assert done == [1000, 2000, 3000, 4000, 5000]


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


# --- what the page lists: every flagged row, paged, labelled, scoped -----------------------------


def labelled_corpus(seed=0, n_clusters=4, per_cluster=40, strays=10, d=16):
    """Tight clusters labelled "topic-<c>" and lone random directions labelled "stray"."""
    rng = np.random.default_rng(seed)
    X = np.vstack([clustered(rng, n_clusters, per_cluster, d, spread=0.15), rng.normal(size=(strays, d))])
    labels = [f"topic-{c}" for c in range(n_clusters) for _ in range(per_cluster)] + ["stray"] * strays
    return X.astype(np.float32), labels


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 300), st.integers(1, 60))
def test_paging_shows_every_item_once_in_order(total, number, per_page):
    total %= 500
    pages = [
        paginate(total, n, per_page=per_page) for n in range(1, paginate(total, per_page=per_page).pages + 1)
    ]
    covered = [i for page in pages for i in range(page.start, page.stop)]
    assert covered == list(range(total))  # every item, once, in order
    assert all(0 < page.stop - page.start <= per_page for page in pages) or total == 0
    assert pages[-1].pages == max(1, -(-total // per_page)) and all(p.total == total for p in pages)
    asked = paginate(total, number, per_page=per_page)  # past the end: the last page
    assert asked.number == min(number, asked.pages) and asked == pages[asked.number - 1]
    assert paginate(total, -3, per_page=per_page).number == 1


def test_paging_arguments_are_checked():
    assert paginate(0) == paginate(0, 5)  # one empty page
    assert (paginate(0).pages, paginate(0).start, paginate(0).stop) == (1, 0, 0)
    assert paginate(1185, 24).start == 1150 and paginate(1185, 24).stop == 1185
    with pytest.raises(ParameterError, match="per_page must be at least 1"):
        paginate(10, per_page=0)
    with pytest.raises(ParameterError, match="cannot have -1 items"):
        paginate(-1)


@settings(max_examples=40, deadline=None)
@given(corpora(min_rows=6, max_rows=30), st.sets(st.integers(0, 29)), st.sampled_from(["local", "global"]))
def test_a_selection_lists_the_flagged_rows_inside_it_in_rank_order(X, picked, by):
    report = find_outliers(X, count=5, k=3, by=by)
    rows = np.array(sorted(r for r in picked if r < len(X)), dtype=np.int64)
    positions = flagged_in(report, rows)
    assert report.flagged[positions].tolist() == [
        r for r in report.flagged.tolist() if r in set(rows.tolist())
    ]
    assert np.all(np.diff(positions) > 0)  # rank order kept
    assert flagged_in(report, None).tolist() == list(range(len(report.flagged)))
    # the scores stay those of the whole corpus: a selection narrows the list, not the ranking
    np.testing.assert_array_equal(report.scores, find_outliers(X, count=5, k=3, by=by).scores)


def test_the_table_holds_every_flagged_row_with_its_label_and_its_neighbours_labels():
    X, labels = labelled_corpus()
    texts = [f"text {i}" for i in range(len(X))]
    metadata = [
        {"label": lab, "source": f"s{i % 3}", "rank": "from the metadata"} for i, lab in enumerate(labels)
    ]
    report = find_outliers(X, quantile=0.3, k=5)
    table = outlier_table(
        report, texts, metadata, label_column="label", reviewed={int(report.flagged[1]): ("ann", 1.0)}
    )
    assert len(table) == len(report.flagged) == int(np.ceil(0.3 * len(X)))  # every one, not a first 200
    assert [r["row"] for r in table] == report.flagged.tolist()
    assert [r["rank"] for r in table] == list(range(1, len(table) + 1))
    assert list(table[0])[: len(TABLE_COLUMNS)] == list(TABLE_COLUMNS)
    for position, r in enumerate(table):
        i = r["row"]
        assert r["label"] == labels[i] and r["text"] == texts[i]
        ids = [int(j) for j in r["neighbours"].split("; ")]
        assert ids == report.neighbours[position].tolist() and len(ids) == 5
        assert r["neighbour labels"].split("; ") == [labels[j] for j in ids]
        assert r["score"] == pytest.approx(report.local_depths[i], abs=1e-6)
        assert r["knn rank"] == report.knn_rank[i]
        assert r["source"] == f"s{i % 3}" and r["rank (metadata)"] == "from the metadata"
    assert [r["reviewed"] for r in table[:3]] == [False, True, False] and table[1]["reviewed by"] == "ann"
    # the lone strays come first, and their neighbours are other topics' texts
    assert {r["label"] for r in table[:10]} == {"stray"}
    # a selection: the same rows, fewer of them; no label column: empty labels
    few = outlier_table(report, texts, metadata, positions=[2, 0])
    assert [r["rank"] for r in few] == [3, 1] and few[0]["label"] == few[0]["neighbour labels"] == ""


def test_labels_are_read_as_text_from_either_kind_of_metadata():
    from analytics.memory import Metadata

    rows = [{"label": "a"}, {"label": 3.0}, {}, {"label": None}, {"label": True}]
    assert row_labels(rows, "label") == ["a", "3", "", "", "true"]
    assert row_labels(Metadata(rows), "label") == ["a", "3", "", "", "true"]
    assert row_labels(rows, None) is None


def test_neighbour_labels_are_summarised_most_frequent_first():
    assert label_summary(["b", "a", "b", "c", "", None]) == "(no label) 2 · b 2 · a 1 · c 1"
    assert label_summary(list("aabbcdef"), top=2) == "a 2 · b 2 · +4 more"
    assert label_summary([]) == ""


def test_the_export_is_named_after_the_corpus_and_the_view():
    assert export_name("clinc150", by="local", quantile=0.05) == "clinc150-outliers-knn-5pct.csv"
    assert (
        export_name("CLINC 150", by="global", count=20, quantile=None) == "CLINC-150-outliers-depth-top20.csv"
    )
    assert (
        export_name("c", by="combined", quantile=0.025, k=20, scoped=True)
        == "c-outliers-knn-depth-2.5pct-k20-selection.csv"
    )
    assert export_name("c", quantile=0.051000000000000004, k=10) == "c-outliers-knn-5.1pct.csv"
    with pytest.raises(ParameterError, match="outliers by must be one of"):
        export_name("c", by="median")


@given(st.text(max_size=300))
def test_any_corpus_name_gives_a_safe_file_name(name):
    out = export_name(name, by="local", quantile=0.1, scoped=True)
    assert out.endswith("-outliers-knn-10pct-selection.csv") and len(out.encode("utf-8")) <= 120
    stem = out.removesuffix("-outliers-knn-10pct-selection.csv")
    assert stem and not stem.startswith((".", "-")) and not stem.endswith((".", "-"))
    assert not {"/", "\\", "\x00", " "} & set(stem) and ".." not in stem


# --- the Outliers page -------------------------------------------------------------------------


@pytest.mark.slow
def test_outliers_page_ranks_as_the_link_says_and_keeps_the_choice_in_the_url(tiny_store, monkeypatch):  # noqa: F811
    at = settle(open_page(tiny_store, monkeypatch, "views/outliers.py"), tiny_store)  # a background job
    assert at.radio(key="outliers_by").value == "local"
    assert any("outliers flagged** by k-NN isolation" in m.value for m in at.markdown)
    assert _heads(at)[0].startswith("**#1** · local depth ")
    at.radio(key="outliers_by").set_value("combined").run()
    settle(at, tiny_store)
    assert at.query_params["by"] == "combined"
    assert _heads(at)[0].startswith("**#1** · combined percentile ")

    at = settle(open_page(tiny_store, monkeypatch, "views/outliers.py", by="global"), tiny_store)
    assert at.radio(key="outliers_by").value == "global"
    assert _heads(at)[0].startswith("**#1** · depth ")
    at = open_page(tiny_store, monkeypatch, "views/outliers.py", by="median")
    assert "by=median" in warnings(at)[0] and "must be one of local, global, combined" in warnings(at)[0]
    assert at.radio(key="outliers_by").value == "local"


def _heads(at) -> list[str]:
    """The heading of each listed outlier ("**#3** · label · score · row i"), in order, as read
    (markdown escapes removed)."""
    return [m.value.replace("\\", "") for m in at.markdown if m.value.startswith("**#")]


def _listed_rows(at) -> list[int]:
    return [int(h.rsplit("row ", 1)[1].replace(",", "")) for h in _heads(at)]


@pytest.fixture
def labelled_store(tmp_path):
    """A real store with corpus "c": four labelled topics and ten lone "stray" texts (170 rows,
    label column "label"), random vectors imported under model id "rand": no model."""
    from analytics import Store, import_vectors
    from analytics.corpus import Corpus

    X, labels = labelled_corpus()
    path = tmp_path / "labelled.duckdb"
    with Store(path) as s:
        corpus = Corpus(
            [f"query {i}" for i in range(len(X))], [{"label": lab} for lab in labels], "text", "t"
        )
        s.add_corpus("c", corpus, label_column="label")
        import_vectors(s, "c", X, "rand")
    return path, X, labels


def open_outliers(path, monkeypatch, **query):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_STORE", str(path))
    monkeypatch.setenv("EMBEX_SAMPLE", "0")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=240)
    at.session_state["corpus"] = "c"
    at.session_state["model_id"] = "rand"
    at.run()
    at.switch_page("views/outliers.py")
    at.query_params.update(query)
    at.run()
    return settle(at, path)


@pytest.mark.slow
def test_every_flagged_row_is_listed_page_by_page_with_its_label(labelled_store, monkeypatch):
    path, X, labels = labelled_store
    at = open_outliers(path, monkeypatch, quantile="0.5")
    expected = find_outliers(X, quantile=0.5, k=10).flagged.tolist()  # 85 of 170
    assert any(m.value.startswith("**85 outliers flagged** by k-NN isolation") for m in at.markdown)
    assert at.get("download_button")[0].proto.label == "Download all 85 as CSV"
    assert _listed_rows(at) == expected[:50]  # 50 a page by default
    at.selectbox(key="outliers_per_page").set_value(25).run()
    seen = []
    for number in range(1, 5):
        assert any(
            c.value == f"Page {number} of 4 · outliers {25 * number - 24}–{min(25 * number, 85)} of 85"
            for c in at.caption
        ), [c.value for c in at.caption]
        seen += _listed_rows(at)
        assert at.button(key="outliers_next").disabled == (number == 4)
        if number < 4:
            at.button(key="outliers_next").click().run()
    assert seen == expected  # every flagged row, once, in rank order
    heads = _heads(at)
    assert (
        heads[0]
        == f"**#76** · {labels[expected[75]]} · local depth {find_outliers(X, quantile=0.5).scores[expected[75]]:.4f} · row {expected[75]}"
    )
    at.number_input(key="outliers_page").set_value(2).run()
    assert _listed_rows(at) == expected[25:50]
    at.button(key="outliers_prev").click().run()
    assert _listed_rows(at) == expected[:25] and at.button(key="outliers_prev").disabled
    # the lone strays come first, and their neighbours are named by label
    assert {labels[r] for r in expected[:10]} == {"stray"}
    assert heads and all(" · stray · " in h for h in _heads(at)[:10])
    assert any("neighbours: topic-" in c.value.replace("\\", "") for c in at.caption)
    # another view is another list: it starts at its first page
    at.number_input(key="outliers_page").set_value(3).run()
    at.radio(key="outliers_by").set_value("global").run()
    settle(at, path)
    assert _listed_rows(at) == find_outliers(X, quantile=0.5, by="global").flagged.tolist()[:25]
    assert at.query_params["by"] == "global" and at.query_params["quantile"] == "0.5"


@pytest.mark.slow
def test_reviewed_marks_are_kept_in_the_store_and_can_be_hidden(labelled_store, monkeypatch):
    from analytics.jobs import executor_for

    path, X, _ = labelled_store
    flagged = find_outliers(X, quantile=0.1, k=10).flagged.tolist()  # 17
    s = executor_for(path).store
    at = open_outliers(path, monkeypatch, quantile="0.1")
    at.checkbox(key=f"outliers-rev-c-{flagged[0]}-0").check().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    marks = s.marks("c", REVIEWED)
    assert list(marks) == [flagged[0]] and marks[flagged[0]][0].startswith("session ")
    assert any("1 marked reviewed" in m.value for m in at.markdown)
    assert s.audit_rows()[0]["action"] == "review"

    # a new session (a reload) finds the mark in the store
    at = open_outliers(path, monkeypatch, quantile="0.1")
    box = at.checkbox(key=f"outliers-rev-c-{flagged[0]}-1")
    assert box.value and box.label.startswith("Reviewed by session ")
    assert any("17 outliers flagged" in m.value and "1 marked reviewed" in m.value for m in at.markdown)
    at.toggle(key="outliers_hide").set_value(True).run()
    assert _listed_rows(at) == flagged[1:]
    assert any(c.value == "Page 1 of 1 · outliers 1–16 of 16 (reviewed hidden)" for c in at.caption)
    assert at.get("download_button")[0].proto.label == "Download all 17 as CSV"  # the CSV keeps them all
    next(b for b in at.button if b.label.startswith("Mark the 16 unreviewed")).click().run()
    assert sorted(s.marks("c", REVIEWED)) == sorted(flagged)
    assert _listed_rows(at) == [] and any("0 of 0" in c.value for c in at.caption)
    at.toggle(key="outliers_hide").set_value(False).run()
    at.checkbox(key=f"outliers-rev-c-{flagged[3]}-1").uncheck().run()  # a mark taken off
    assert sorted(s.marks("c", REVIEWED)) == sorted(set(flagged) - {flagged[3]})


@pytest.mark.slow
def test_a_selection_narrows_the_list_and_the_flagged_rows_go_to_the_map(labelled_store, monkeypatch):
    from analytics.jobs import executor_for

    path, X, labels = labelled_store
    # the selection (intent = "stray" in a link): depth stays the whole corpus's
    at = open_outliers(path, monkeypatch, quantile="0.1", filter='{"label": ["stray"]}')
    flagged = find_outliers(X, quantile=0.1, k=10).flagged.tolist()
    inside = [r for r in flagged if labels[r] == "stray"]
    assert 0 < len(inside) < len(flagged)
    assert any("Scoped to the selection: 10 of 170 texts" in i.value for i in at.info)
    assert any(
        m.value.startswith(f"**{len(inside)} of the {len(flagged)} outliers** flagged") for m in at.markdown
    )
    assert _listed_rows(at) == inside
    assert at.get("download_button")[0].proto.label == f"Download all {len(inside)} as CSV"
    at.button(key="outliers_to_map").click().run()
    sel = at.session_state["_selections"]["c"]
    assert sel.rows == tuple(sorted(inside)) and not sel.filters
    assert executor_for(path).store.selection(at.query_params["sel"]) is not None
    assert at.title[0].value == "Map"
    ex = executor_for(path)
    for job in ex.jobs(active=True):  # the map it asked for is not what this test is about
        ex.cancel(job.id)


@pytest.mark.slow
def test_only_an_editor_may_mark_rows_reviewed(tmp_path, monkeypatch):
    """On a team instance a viewer sees the marks but cannot set one, even by a forged click
    (the server checks the role); an editor's mark names them and is in the audit log."""
    from streamlit.testing.v1 import AppTest

    from analytics import Store, import_vectors
    from analytics.corpus import Corpus
    from analytics.instance import Instance
    from analytics.jobs import executor_for

    inst = Instance(tmp_path / "team", create=True)
    inst.create_workspace("ws")
    for user, role in (("vera", "viewer"), ("eddie", "editor")):
        inst.accounts.add_user(user, f"{user}-secret-pass-1")
        inst.accounts.set_role(user, "ws", role)
    X, labels = labelled_corpus()
    with Store(inst.workspace_path("ws")) as s:
        s.add_corpus(
            "c", Corpus([f"q {i}" for i in range(len(X))], [{"label": v} for v in labels], "text", "t")
        )
        import_vectors(s, "c", X, "rand")
    monkeypatch.setenv("EMBEX_INSTANCE", str(tmp_path / "team"))
    monkeypatch.setenv("EMBEX_AUTH", "accounts")
    monkeypatch.setenv("EMBEX_SAMPLE", "0")
    monkeypatch.delenv("EMBEX_STORE", raising=False)
    first = int(find_outliers(X).flagged[0])

    def signed_in(user):
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=240)
        at.session_state["corpus"] = "c"
        at.session_state["model_id"] = "rand"
        at.run()
        at.text_input[0].input(user)
        at.text_input[1].input(f"{user}-secret-pass-1")
        at.button[0].click().run()
        at.switch_page("views/outliers.py").run()
        return settle(at, inst.workspace_path("ws"))

    at = signed_in("vera")
    box = at.checkbox(key=f"outliers-rev-c-{first}-0")
    assert box.disabled and not any(b.label.startswith("Mark the") for b in at.button)
    box.proto.disabled = False  # a forged click: the widget message a browser could send anyway
    box.check().run()
    assert not at.checkbox(key=f"outliers-rev-c-{first}-0").value  # Streamlit discards it
    store = executor_for(inst.workspace_path("ws")).store
    assert store.marks("c", REVIEWED) == {}

    def forged():  # the page's marking run for the viewer's session: the role check refuses it
        import signin
        import streamlit as st
        from common import run_page, store

        st.session_state["_embex_signed_in"] = signin._SignedIn("vera")

        def mark():
            with signin.acting("review", "1 row of corpus 'c'", store=store()):
                store().set_marks("c", [0], "reviewed", user="vera")  # from_function: no closure

        run_page(mark)

    f = AppTest.from_function(forged, default_timeout=60)
    f.query_params["ws"] = "ws"
    f.run()
    assert any("(viewer) does not allow marking" in e.value.replace("\\", "") for e in f.error), f.error
    assert store.marks("c", REVIEWED) == {}

    at = signed_in("eddie")
    at.checkbox(key=f"outliers-rev-c-{first}-0").check().run()
    assert store.marks("c", REVIEWED)[first][0] == "eddie"
    entry = store.audit_rows(action="review")[0]
    assert entry["user"] == "eddie" and "corpus 'c'" in entry["target"] and entry["detail"] == "reviewed"


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
