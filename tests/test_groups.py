"""Shift tests between groups of one corpus's rows (analytics/groups.py): Holm's adjustment
against its definition, each value of a column against the rest (the numbers of shift_test on
the same rows, and of tte-depth), groups described as column = values or a saved selection,
and the two jobs, on real DuckDB files and the sample's real vectors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import ROOT, make_corpus
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.errors import ParameterError
from analytics.groups import (
    MAX_TOP_VALUES,
    ValueTable,
    depth_rank_statistics,
    describe_spec,
    group_rows,
    group_spec,
    holm,
    values_vs_rest,
)
from analytics.jobs import Executor
from analytics.shift import ShiftResult, shift_test
from analytics.store import Store, text_hash
from analytics.twosample import depth_rank_statistic

tte_ref = pytest.importorskip("tte_depth")


@pytest.fixture(scope="module")
def news():
    """600 rows of AG News (the sample's shipped vectors of the bundled model) and labels."""
    X = np.load(ROOT / "sample_data" / "ag_news.vectors.npy")
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        labels = [r["label"] for r in csv.DictReader(f)]
    rows = np.sort(np.random.default_rng(0).choice(len(X), 600, replace=False))
    return X[rows], [labels[i] for i in rows]


# -- Holm ------------------------------------------------------------------------------------------


def holm_by_definition(p: list[float]) -> list[float]:
    """Holm's adjusted p of each hypothesis: the smallest level alpha at which the step-down
    procedure (reject the j-th smallest p while p_(j) <= alpha / (m - j + 1)) rejects it; 1
    when it is not rejected even at alpha = 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    candidates = sorted({min(1.0, (m - j) * p[order[j]]) for j in range(m)} | {1.0})

    def rejected(alpha: float) -> set[int]:
        out = set()
        for j, i in enumerate(order):
            if (m - j) * p[i] > alpha:  # p_(j) > alpha / (m - j + 1), 1-based, without rounding
                break
            out.add(i)
        return out

    return [next((a for a in candidates if i in rejected(a)), 1.0) for i in range(m)]


p_lists = st.lists(
    st.one_of(st.sampled_from([0.0, 0.001, 0.01, 0.02, 0.05, 0.5, 1.0]), st.floats(0, 1)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=300)
@given(p_lists)
def test_holm_is_the_step_down_definition(p):
    adjusted = holm(p)
    np.testing.assert_array_equal(adjusted, holm_by_definition(p))
    assert np.all(adjusted >= np.asarray(p) - 1e-15) and np.all(adjusted <= 1.0)
    order = np.argsort(p, kind="stable")  # monotone: a smaller p never gets a larger adjusted p
    assert np.all(np.diff(adjusted[order]) >= -1e-15)
    assert np.all(holm(p) == adjusted)  # and the order given does not matter
    perm = np.random.default_rng(len(p)).permutation(len(p))
    np.testing.assert_array_equal(holm(np.asarray(p)[perm]), adjusted[perm])


def test_holm_by_hand_and_bad_input():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept at 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    assert holm([]).size == 0
    for bad in ([np.nan], [1.5], [-0.1]):
        with pytest.raises(ParameterError, match="between 0 and 1"):
            holm(bad)


# -- each value against the rest -----------------------------------------------------------------


@pytest.mark.parametrize("member_f", [200, 40])  # G the smaller side, then the larger
def test_the_shared_statistics_equal_the_general_ones(member_f):
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(240, 8))
    Z[10:15] = Z[0]  # duplicate rows: tied depths
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    member = np.zeros((240, 25))
    for j in range(25):
        member[rng.choice(240, member_f, replace=False), j] = 1.0
    fast = depth_rank_statistics(Z)
    for name, reference in (("outlying", "f"), ("concentrated", "g")):
        general = depth_rank_statistic(Z, "cosine", reference)(member)
        np.testing.assert_allclose(fast[name](member), general, rtol=0, atol=1e-6)


def test_each_value_has_the_numbers_of_shift_test_on_its_rows():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 12))
    X[:40] += 0.4  # "a" has moved
    X[200:203] = X[100]  # duplicates across values
    labels = ["a"] * 40 + ["b"] * 100 + ["c"] * 150 + ["d"] * 8 + [None] * 2
    table = values_vs_rest(X, labels, column="group", permutations=999, random_state=5)
    assert [(r.value, r.n) for r in table.rows] == [("c", 150), ("b", 100), ("a", 40), ("d", 8), ("", 2)]
    for r in table.rows:
        g = np.array([(v or "") == r.value for v in labels])
        s = shift_test(X[~g], X[g], checks=(), permutations=999, random_state=5)
        assert (r.q, r.q_reference, r.w, r.p) == (s.q, s.q_reference, s.w, s.p)
        assert (r.p_outlying, r.p_concentrated, r.p_permutation) == (
            s.p_permutation,
            s.p_concentrated,
            s.p_any,
        )
        assert r.z_outlying == pytest.approx(s.z_outlying) and r.z_concentrated == pytest.approx(
            s.z_concentrated
        )
    raw = [r.p_permutation for r in table.rows]
    np.testing.assert_array_equal([r.p_holm for r in table.rows], holm(raw))
    a = next(r for r in table.rows if r.value == "a")
    # the smallest p of the table: times 5 (two directions' min-p: its floor is about 2 / (B + 1))
    assert a.p_permutation <= 2 / 1000 and a.p_holm == pytest.approx(5 * a.p_permutation)
    assert a.kind != "none" and a.verdict.startswith("shift")
    d = next(r for r in table.rows if r.value == "d")
    assert d.verdict.endswith("(fewer than 30 texts: unreliable)")
    assert [r.value for r in table.significant()] == ["a"]
    assert table.summary().startswith("1 of 5 values of group differ from the rest")


def test_each_label_agrees_with_tte_depth_and_is_found(news):
    X, labels = news
    table = values_vs_rest(X, labels, column="label", permutations=199)
    assert [r.value for r in table.rows] == sorted(set(labels), key=lambda v: (-labels.count(v), v))
    for r in table.rows[:2]:  # the reference package on the same rows: its Q, W and p
        g = np.array([v == r.value for v in labels])
        _, _, q, w, p = tte_ref.StatDepth("cosine").depth_rank_test(X[~g], X[g])
        assert abs(r.q_reference - q) <= 1e-6 and abs(r.w - w) <= 1e-6 and abs(r.p - p) <= 1e-6
    # four news topics: each stands apart from the other three, at the permutation floor
    assert all(r.p_permutation <= 2 / 200 for r in table.rows)
    assert all(r.p_holm <= 8 / 200 and r.kind != "none" for r in table.rows)
    # random "labels" of the same texts: no value differs once adjusted
    shuffled = np.random.default_rng(9).choice(["u", "v", "w"], size=len(labels)).tolist()
    null = values_vs_rest(X, shuffled, column="random", permutations=199)
    assert not null.significant()


def test_only_the_largest_values_are_tested_and_the_table_says_so():
    rng = np.random.default_rng(2)
    labels = [f"v{i:02d}" for i in range(40) for _ in range(40 - i)] + ["lonely"]  # 40 values, one of 1
    X = rng.normal(size=(len(labels), 6))
    table = values_vs_rest(X, labels, column="topic", top=30, permutations=0)
    assert [r.value for r in table.rows] == [f"v{i:02d}" for i in range(30)]
    assert (table.n_values, table.untested_values, table.untested_rows) == (41, 11, sum(range(1, 11)) + 1)
    assert "11 smaller values (56 rows) were not tested" in table.summary()
    assert any("asymptotic" in n for n in table.notes)  # no permutations: the asymptotic p is adjusted
    np.testing.assert_array_equal([r.p_holm for r in table.rows], holm([r.p for r in table.rows]))
    few = values_vs_rest(X, labels, column="topic", top=30, permutations=99)
    assert any("smallest Holm-adjusted p possible is 0.3" in n for n in few.notes)
    back = ValueTable.from_bytes(few.to_bytes())
    assert back == few
    rows = back.csv_rows()
    assert len(rows) == 30 and rows[0]["value"] == "v00" and rows[0]["n"] == 40
    assert set(rows[0]) >= {"Q", "W", "p (permutation)", "p (Holm)", "verdict"}


def test_bad_value_tables():
    X = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ParameterError, match="No value of 'id' can be tested"):
        values_vs_rest(X, [str(i) for i in range(10)], column="id")
    with pytest.raises(ParameterError, match="9 labels for 10 rows"):
        values_vs_rest(X, ["a"] * 9)
    with pytest.raises(ParameterError, match=f"top must be between 1 and {MAX_TOP_VALUES}"):
        values_vs_rest(X, ["a", "b"] * 5, top=0)


# -- groups of rows ---------------------------------------------------------------------------------


def _vectors(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.fixture
def ex(tmp_path):
    """A real store with a labelled corpus of 300 texts (vectors under model id "m") and its executor."""
    store = Store(tmp_path / "groups.duckdb")
    texts = [f"query {i}" for i in range(300)]
    labels = ["oos"] * 30 + ["greet"] * 70 + ["weather"] * 200
    store.add_corpus("intents", make_corpus(texts, labels), label_column="label")
    X = _vectors(300)
    X[:30] += 0.5  # the out-of-scope queries sit apart
    store.register_model("m", 16)
    store.put_vectors("m", [text_hash(t) for t in texts], X)
    executor = Executor(store)
    yield executor
    executor.shutdown()
    store.close()


def test_groups_by_column_values_and_by_a_saved_selection(ex):
    s = ex.store
    texts, metadata = s.texts("intents"), s.metadata("intents")
    oos = group_spec({"label": ["oos"]})
    f, g = group_rows(s, "intents", oos, "rest", texts, metadata)
    np.testing.assert_array_equal(g, np.arange(30))
    np.testing.assert_array_equal(f, np.arange(30, 300))
    f, g = group_rows(s, "intents", oos, group_spec({"label": ["greet"]}), texts, metadata)
    np.testing.assert_array_equal(f, np.arange(30, 100))
    sid = s.save_selection("intents", [5, 6, 7, 40, 41])
    f, g = group_rows(s, "intents", group_spec({"label": ["oos"]}, sel=sid), "rest", texts, metadata)
    np.testing.assert_array_equal(g, [5, 6, 7])  # the lasso and the filter both hold
    assert describe_spec(group_spec({"label": ["oos", "greet"]}, search="rain")) == (
        "label = greet, oos · texts containing 'rain'"
    )
    assert describe_spec("rest") == "the rest"
    with pytest.raises(ParameterError, match="share 30 rows"):
        group_rows(s, "intents", oos, group_spec({"label": ["oos", "greet"]}), texts, metadata)
    with pytest.raises(ParameterError, match=r"G \(label = nothing\) has 0 text\(s\)"):
        group_rows(s, "intents", group_spec({"label": ["nothing"]}), "rest", texts, metadata)
    with pytest.raises(ParameterError, match="not a selection of 'intents'"):
        group_rows(s, "intents", group_spec(sel="0123456789abcdef"), "rest", texts, metadata)
    with pytest.raises(ParameterError, match="a dict with 'filter'"):
        group_rows(s, "intents", {"rows": [1]}, "rest", texts, metadata)


def test_a_group_shift_job_tests_the_rows_and_creates_no_corpus(ex):
    request = {
        "corpus": "intents",
        "model_id": "m",
        "g": {"filter": {"label": ["oos"]}},
        "f": "rest",
        "permutations": 99,
    }
    job = ex.wait(ex.submit("shift_groups", request).id, timeout=120)
    assert job.state == "done", job
    cached = ShiftResult.from_bytes(ex.result("shift_groups", request))
    X = ex.store.vectors("intents", "m")
    direct = shift_test(X[30:], X[:30], permutations=99)
    assert (cached.q, cached.w, cached.p, cached.p_permutation, cached.p_verdict) == (
        direct.q,
        direct.w,
        direct.p,
        direct.p_permutation,
        direct.p_verdict,
    )
    assert cached.significant() and (cached.n_f, cached.n_g) == (270, 30)
    assert [c.name for c in ex.store.list_corpora()] == ["intents"]
    # the same groups written another way are the same request: computed once
    same = {**request, "g": {"filter": {"label": ["oos", "oos"]}, "sel": None, "q": ""}}
    assert ex.submit("shift_groups", same).id == job.id
    with pytest.raises(ParameterError, match="F and G are the same rows"):
        ex.submit("shift_groups", {**request, "f": request["g"]})
    other = {**request, "g": {"filter": {"label": ["nothing"]}}}
    failed = ex.wait(ex.submit("shift_groups", other).id, timeout=60)
    assert failed.state == "failed" and "has 0 text(s)" in failed.error


def test_a_value_table_job_gives_the_numbers_of_values_vs_rest(ex):
    request = {"corpus": "intents", "model_id": "m", "column": "label", "permutations": 199}
    job = ex.wait(ex.submit("shift_values", request).id, timeout=120)
    assert job.state == "done", job
    table = ValueTable.from_bytes(ex.result("shift_values", request))
    labels = [m["label"] for m in ex.store.metadata("intents")]
    direct = values_vs_rest(ex.store.vectors("intents", "m"), labels, column="label", permutations=199)
    assert table == direct
    assert [r.value for r in table.rows] == ["weather", "greet", "oos"]
    oos = table.rows[2]
    assert oos in table.significant() and oos.p_holm <= 6 / 200
    missing = ex.wait(ex.submit("shift_values", {**request, "column": "nope"}).id, timeout=60)
    assert missing.state == "failed" and "no column 'nope'" in missing.error
    with pytest.raises(ParameterError, match="top must be a whole number"):
        ex.submit("shift_values", {**request, "top": 0})


def test_specs_are_checked():
    assert group_spec({"label": ["b", "a", "a"], "empty": []}) == {
        "filter": {"label": ["a", "b"]},
        "sel": None,
        "q": "",
    }
    for bad in ({"filter": {"label": "oos"}}, {"filter": [1]}, {"sel": 5}, {"q": 3}, "oos"):
        with pytest.raises(ParameterError):
            group_rows(None, "x", bad, "rest", [], [])
