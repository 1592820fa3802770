"""The direction-aware shift test and its cross-checks, on the sample's shipped real vectors
(the bundled model's embeddings of AG News) and on small exact cases."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from analytics import ParameterError, shift_test, tte_depth
from analytics.shift import ShiftResult
from analytics.twosample import (
    all_p,
    depth_rank_statistic,
    mean_embedding_statistic,
    min_p,
    mmd_statistic,
    rbf_kernel,
)


@pytest.fixture(scope="module")
def news():
    """AG News vectors by label (the sample ships them: no model needed)."""
    X = np.load(ROOT / "sample_data" / "ag_news.vectors.npy")
    with open(ROOT / "sample_data" / "ag_news.csv", newline="", encoding="utf-8") as f:
        labels = np.array([r["label"] for r in csv.DictReader(f)])
    return {label: X[labels == label] for label in np.unique(labels)}


def _draw(X, n, rng):
    return X[rng.choice(len(X), n, replace=False)]


# -- the kinds of shift ----------------------------------------------------------------------------


def test_a_concentrated_g_is_found_and_named_where_the_one_sided_test_sees_nothing(news):
    world = news["World"]
    rng = np.random.default_rng(1)
    deepest = world[np.argsort(-tte_depth(world))[:400]]  # the most typical World texts: narrow
    r = shift_test(_draw(world, 150, rng), _draw(deepest, 150, rng), permutations=499)
    assert r.p_permutation > 0.5  # the paper's test: "G is not more outlying" (true, and blind)
    assert r.p_concentrated <= 0.01 and r.significant()
    assert r.kind() == "concentrated"
    assert r.summary().startswith("G is more concentrated than F (less diverse)")


def test_a_change_of_topic_is_a_location_shift_seen_both_ways(news):
    rng = np.random.default_rng(2)
    r = shift_test(_draw(news["World"], 120, rng), _draw(news["Sports"], 120, rng), permutations=199)
    assert r.p_any == pytest.approx(1 / 200) and r.kind() == "location"
    assert r.p_permutation < 0.05 and r.p_concentrated < 0.05
    assert all(c.p < 0.05 for c in r.checks) and {c.name for c in r.checks} == {
        "MMD",
        "mean embedding",
        "classifier",
    }


def test_texts_from_elsewhere_make_g_more_outlying(news):
    rng = np.random.default_rng(3)
    world = news["World"][rng.permutation(len(news["World"]))]
    G = np.concatenate([world[200:360], _draw(news["Sci/Tech"], 40, rng)])  # 20% from another topic
    r = shift_test(world[:200], G, permutations=499)
    assert r.kind() == "outlying" and r.p_permutation < 0.05 and r.p_concentrated > 0.05


def test_no_shift_says_so(news):
    world = news["World"][np.random.default_rng(4).permutation(len(news["World"]))]
    r = shift_test(world[:100], world[100:180], permutations=199)
    assert r.kind() == "none" and not r.significant()
    assert r.summary().startswith("No evidence of a shift")


def test_the_result_survives_the_store_round_trip(news):
    rng = np.random.default_rng(5)
    r = shift_test(_draw(news["World"], 60, rng), _draw(news["Business"], 50, rng), permutations=99)
    back = ShiftResult.from_bytes(r.to_bytes())
    assert back.checks == r.checks and back.notes == r.notes and back.p_any == r.p_any
    np.testing.assert_array_equal(back.depths_g, r.depths_g)
    assert back.summary() == r.summary()


def test_cross_checks_can_be_chosen_and_unknown_ones_are_refused(news):
    F, G = news["World"][:40], news["Sports"][:40]
    r = shift_test(F, G, permutations=49, checks=("mean",))
    assert [c.name for c in r.checks] == ["mean embedding"] and r.p_any is not None
    assert shift_test(F, G, permutations=0).p_any is None  # no permutations: the paper's p decides
    small = shift_test(F[:3], G[:30], permutations=19)
    assert small.check("classifier") is None and any("at least 4 texts" in n for n in small.notes)
    with pytest.raises(ParameterError, match="Unknown cross-check"):
        shift_test(F, G, checks=("t-test",))


# -- the statistics, against their definitions ---------------------------------------------------


def _unit(rng, n, d=8):
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _split(m, N):
    member = np.zeros((N, 1))
    member[:m] = 1.0
    return member


@pytest.mark.parametrize("distance", ["cosine", "chord"])
def test_the_depth_statistic_both_ways_is_the_rank_sum_of_tte_depths(distance):
    from analytics.shift import _chord_matrix_product

    rng = np.random.default_rng(0)
    F, G = _unit(rng, 12), _unit(rng, 9) + 0.3
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    Z = np.concatenate([F, G])
    wrt_f = rankdata(np.r_[tte_depth(F, distance=distance), tte_depth(G, reference=F, distance=distance)])
    wrt_g = rankdata(np.r_[tte_depth(F, reference=G, distance=distance), tte_depth(G, distance=distance)])
    out = depth_rank_statistic(Z, distance, "f", _chord_matrix_product)(_split(12, 21))[0]
    conc = depth_rank_statistic(Z, distance, "g", _chord_matrix_product)(_split(12, 21))[0]
    assert out == pytest.approx(wrt_f[:12].sum()) and conc == pytest.approx(wrt_g[12:].sum())


def test_mmd_and_mean_embedding_statistics_match_their_formulas():
    rng = np.random.default_rng(1)
    F, G = _unit(rng, 7), _unit(rng, 5)
    Z = np.concatenate([F, G])
    K, bandwidth = rbf_kernel(Z)
    dist = np.linalg.norm(Z[:, None] - Z[None], axis=-1)
    assert bandwidth == pytest.approx(np.median(dist[np.triu_indices(12, 1)]))
    k = np.exp(-(dist**2) / (2 * bandwidth**2))
    ff = (k[:7, :7].sum() - 7) / (7 * 6)
    gg = (k[7:, 7:].sum() - 5) / (5 * 4)
    fg = k[:7, 7:].mean()
    assert mmd_statistic(K)(_split(7, 12))[0] == pytest.approx(ff + gg - 2 * fg)
    mean = np.sum((F.mean(axis=0) - G.mean(axis=0)) ** 2)
    assert mean_embedding_statistic(Z)(_split(7, 12))[0] == pytest.approx(mean)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=40),
    st.floats(-5, 5),
    st.integers(1, 4),
)
def test_permutation_p_values_and_min_p(null, observed, tests):
    null = np.array(null)
    p = all_p(observed, null)
    assert p[0] == pytest.approx((1 + np.count_nonzero(null >= observed - 1e-9)) / (null.size + 1))
    assert (p > 0).all() and (p <= 1).all()
    rng = np.random.default_rng(len(null))
    nulls = {str(i): (null if i == 0 else rng.normal(size=null.size)) for i in range(tests)}
    obs = {str(i): (observed if i == 0 else float(rng.normal())) for i in range(tests)}
    combined = min_p(obs, nulls)
    singles = [all_p(obs[k], nulls[k])[0] for k in obs]
    assert min(singles) - 1e-12 <= combined <= 1  # never smaller than the smallest single p
    if tests == 1:
        assert combined == pytest.approx(singles[0])


# -- calibration on real no-shift splits (small draws; benchmarks/calibration.py has the big ones)


@pytest.mark.slow  # 120 shift tests with every cross-check
def test_every_p_is_calibrated_on_real_no_shift_splits(news):
    rng = np.random.default_rng(2026)
    world = news["World"]
    ps: dict[str, list] = {}
    for i in range(120):
        m, n = (40, 40) if i % 2 else (25, 70)  # equal and unequal sizes
        idx = rng.choice(len(world), m + n, replace=False)
        r = shift_test(world[idx[:m]], world[idx[m:]], permutations=99, random_state=i)
        values = {"one-sided": r.p_permutation, "concentrated": r.p_concentrated, "two-sided": r.p_two_sided}
        values.update({"combined": r.p_any, **{c.name: c.p for c in r.checks}})
        for k, v in values.items():
            ps.setdefault(k, []).append(v)
    se = np.sqrt(0.1 * 0.9 / 120)
    rates = {k: float(np.mean(np.array(v) < 0.1)) for k, v in ps.items()}
    print("false-positive rates at alpha = 0.10:", rates)
    for k, rate in rates.items():
        assert abs(rate - 0.1) <= 3 * se, (k, rate)
