"""The depth shift test: agreement with tte-depth, Q against brute force, calibration, power."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import analytics
from analytics import EmbeddingError, q_reference, q_score, shift_test

tte_ref = pytest.importorskip("tte_depth")


def reference_test(F, G, distance="cosine"):
    return tte_ref.StatDepth(distance).depth_rank_test(F, G)


def assert_matches_reference(F, G, tol, distance="cosine"):
    df, dg, q, w, p = reference_test(F, G, distance)
    r = shift_test(F, G, distance=distance, permutations=0)
    np.testing.assert_allclose(r.depths_f, df, rtol=0, atol=tol)
    np.testing.assert_allclose(r.depths_g, dg, rtol=0, atol=tol)
    assert abs(r.q_reference - q) <= tol
    assert abs(r.w - w) <= tol
    assert abs(r.p - p) <= tol
    return r


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 1e-6)])
@pytest.mark.parametrize("shift", [0.0, 0.15])
def test_agrees_with_reference_on_random_data(dtype, tol, shift):
    rng = np.random.default_rng(10)
    F = rng.normal(size=(140, 20)).astype(dtype)
    G = (rng.normal(size=(95, 20)) + shift).astype(dtype)
    assert_matches_reference(F, G, tol)


def test_agrees_with_reference_on_real_embeddings(label_embeddings):
    world, sports = label_embeddings["World"], label_embeddings["Sports"]
    # a mixed G (real drift in part) keeps p away from 0, so it is compared meaningfully
    G = np.concatenate([world[1000:1150], sports[:40]])
    r = assert_matches_reference(world[:260], G, 1e-6)
    assert 1e-12 < r.p < 0.5
    assert_matches_reference(world[:260].astype(np.float64), G.astype(np.float64), 1e-9)


def test_chord_agrees_with_reference_on_unit_rows(label_embeddings):
    F = label_embeddings["World"][:120].astype(np.float64)
    G = label_embeddings["World"][500:590].astype(np.float64)
    F /= np.linalg.norm(F, axis=1, keepdims=True)
    G /= np.linalg.norm(G, axis=1, keepdims=True)
    assert_matches_reference(F, G, 1e-9, distance="chord")


# --- Q ---------------------------------------------------------------------------------------

depth_values = arrays(
    np.float64, st.integers(1, 40), elements=st.sampled_from([0.5, 0.7, 0.9, 1.1, 1.3, 1.5])
)  # few distinct values: plenty of ties


@settings(max_examples=200, deadline=None)
@given(depth_values, depth_values)
def test_q_is_the_pair_count(df, dg):
    brute = sum(x <= y for x, y in itertools.product(df, dg)) / (df.size * dg.size)
    assert q_score(df, dg) == pytest.approx(brute, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(depth_values, depth_values)
def test_q_reference_is_tte_depths_q_score(df, dg):
    assert q_reference(df, dg) == pytest.approx(tte_ref.StatDepth().q_score(df, dg), abs=1e-12)


def test_q_extremes_and_no_shift_levels():
    assert q_score([2.0, 3.0], [0.0, 1.0]) == 0.0  # every G text shallower than every F text
    assert q_score([0.0, 1.0], [2.0, 3.0]) == 1.0
    rng = np.random.default_rng(0)
    f, g = rng.normal(size=4000), rng.normal(size=4000)
    assert q_score(f, g) == pytest.approx(0.5, abs=0.02)
    N = 8000
    assert q_reference(f, g) == pytest.approx(0.5 * (N - 1) / N, abs=0.02)
    assert q_reference([2.0, 3.0], [0.0, 1.0]) == pytest.approx(0.125)  # never near 0


# --- permutation p ---------------------------------------------------------------------------


def exact_permutation_p(F, G, distance):
    """p over every re-split of the pooled rows, from the definition of depth."""
    Z = np.concatenate([F, G])
    m, N = len(F), len(Z)

    def rank_sum(f_idx):
        g_idx = [i for i in range(N) if i not in f_idx]
        r = shift_test(Z[list(f_idx)], Z[g_idx], distance=distance, permutations=0)
        from scipy.stats import rankdata

        return rankdata(np.concatenate([r.depths_f, r.depths_g]))[:m].sum()

    observed = rank_sum(tuple(range(m)))
    sums = [rank_sum(c) for c in itertools.combinations(range(N), m)]
    return np.mean(np.array(sums) >= observed - 1e-9)


@pytest.mark.parametrize("distance", ["cosine", "chord"])
def test_permutation_p_converges_to_the_exact_permutation_p(distance):
    rng = np.random.default_rng(5)
    F = rng.normal(size=(5, 6))
    G = rng.normal(size=(4, 6)) + 0.6
    exact = exact_permutation_p(F, G, distance)  # 126 splits
    r = shift_test(F, G, distance=distance, permutations=20000, random_state=1)
    assert 0.02 < exact < 0.9
    assert r.p_permutation == pytest.approx(exact, abs=0.012)  # ~4 sd of Monte Carlo error


def test_permutation_p_is_reproducible_bounded_and_optional():
    rng = np.random.default_rng(6)
    F, G = rng.normal(size=(60, 8)), rng.normal(size=(50, 8))
    a = shift_test(F, G, permutations=199, random_state=3)
    b = shift_test(F, G, permutations=199, random_state=3)
    assert a.p_permutation == b.p_permutation
    assert 1 / 200 <= a.p_permutation <= 1
    assert shift_test(F, G, permutations=0).p_permutation is None
    # relative to an isotropic F every direction is equally deep: concentrate F, oppose G
    far = shift_test(F + 3.0, G - 3.0, permutations=199)
    assert far.p_permutation == pytest.approx(1 / 200)


def test_false_positive_rates_on_isotropic_data():
    """Why the permutation p exists: on isotropic data the asymptotic p rejects a true null
    too often (~8% at 0.05 here); the permutation p does not."""
    rng = np.random.default_rng(123)
    n, d = 150, 128
    asym = [shift_test(*np.split(rng.standard_normal((2 * n, d)), 2), permutations=0).p for _ in range(1000)]
    asym_rate = np.mean(np.array(asym) < 0.05)
    perm = [
        shift_test(
            *np.split(rng.standard_normal((2 * n, d)), 2), permutations=199, random_state=i
        ).p_permutation
        for i in range(300)
    ]
    perm_rate = np.mean(np.array(perm) < 0.05)
    print(f"isotropic d={d}, n={n}: asymptotic FPR {asym_rate:.3f}, permutation FPR {perm_rate:.3f}")
    assert 0.06 <= asym_rate <= 0.12  # measurably liberal (sd of the estimate: 0.007)
    assert 0.02 <= perm_rate <= 0.09


# --- calibration and power on the real sample corpus -----------------------------------------


def test_permutation_p_is_calibrated_on_real_data(label_embeddings):
    X = label_embeddings["World"]
    rng = np.random.default_rng(2026)
    p_perm, p_asym = [], []
    for i in range(200):
        idx = rng.choice(len(X), 500, replace=False)
        r = shift_test(X[idx[:250]], X[idx[250:]], permutations=999, random_state=i)
        p_perm.append(r.p_permutation)
        p_asym.append(r.p)
    perm_rate = np.mean(np.array(p_perm) < 0.05)
    asym_rate = np.mean(np.array(p_asym) < 0.05)
    print(
        f"AG News World, 200 equal splits of 250: permutation FPR {perm_rate:.3f}, asymptotic FPR {asym_rate:.3f}"
    )
    assert 0.02 <= perm_rate <= 0.09
    assert 0.0 <= asym_rate <= 0.15  # reported, not a guarantee
    # under the null a permutation p is uniform: its median sits near 0.5
    assert 0.35 <= np.median(p_perm) <= 0.65


def test_world_vs_sports_is_a_clear_shift(label_embeddings):
    F, G = label_embeddings["World"][:500], label_embeddings["Sports"][:500]
    r = shift_test(F, G, permutations=999)
    assert r.q < 0.3
    assert r.p < 1e-6
    assert r.p_permutation == pytest.approx(1 / 1000)  # the floor
    assert r.significant()
    assert "G has shifted away from F" in r.summary()
    assert "smallest possible" in r.summary()


# --- the result object -----------------------------------------------------------------------


def test_result_summary_examples_and_small_sample_warning(sample_rows, label_embeddings):
    world_texts = [row["text"] for row in sample_rows if row["label"] == "World"]
    F, G = label_embeddings["World"][:300], label_embeddings["Sports"][:20]
    r = shift_test(F, G, permutations=99)
    assert (r.n_f, r.n_g) == (300, 20)
    assert r.small_sample and "unreliable" in r.summary()
    assert f"W = {r.w:.3f}" in r.summary() and "F = 300 texts, G = 20 texts" in r.summary()
    deepest_f, outlying_g = r.examples(3)
    np.testing.assert_array_equal(deepest_f, analytics.most_central(r.depths_f, 3))
    np.testing.assert_array_equal(outlying_g, np.argsort(r.depths_g)[:3])
    assert r.depths_f[deepest_f[0]] == r.depths_f.max()
    assert isinstance(world_texts[deepest_f[0]], str)

    # two random halves of one label (contiguous slices of AG News differ: MMD, the mean
    # embedding and a classifier all tell World[:150] from World[1000:1150])
    world = label_embeddings["World"][np.random.default_rng(4).permutation(len(label_embeddings["World"]))]
    same = shift_test(world[:150], world[150:300], permutations=199)
    assert not same.significant() and same.kind() == "none"
    assert same.summary().startswith("No evidence of a shift")


@pytest.mark.parametrize(
    "F, G, exc, match",
    [
        (np.ones((1, 3)), np.ones((3, 3)), EmbeddingError, "F has 1 row"),
        (np.eye(3), np.ones((1, 3)), EmbeddingError, "G has 1 row"),
        (np.eye(3), np.ones((3, 4)), EmbeddingError, "F has dimension 3 but G has 4"),
        (np.eye(3), np.array([[1.0, np.nan, 0], [1, 1, 1]]), EmbeddingError, "G has NaN"),
        (np.eye(3), np.array([[0.0, 0, 0], [1, 1, 1]]), EmbeddingError, "G has 1 all-zero"),
    ],
)
def test_bad_input_names_the_corpus(F, G, exc, match):
    with pytest.raises(exc, match=match):
        shift_test(F, G)


def test_bad_permutations_argument():
    with pytest.raises(ValueError, match="permutations must be an integer between 0 and 100000, got -5"):
        shift_test(np.eye(3), np.eye(3), permutations=-5)


def test_the_kind_is_named_from_both_directions_effect_sizes():
    """One direction clearly stronger names the shift; comparable ones, or none notable
    (z < 1.645), a shift of location. The page's table of values uses the same rule."""
    from analytics.shift import name_kind

    assert name_kind(5.0, 2.4) == "outlying" and name_kind(2.4, 5.0) == "concentrated"
    assert name_kind(5.0, 2.5) == "location"  # the weaker at least half the stronger
    assert name_kind(1.6, -3.0) == "location"  # neither notable
    assert name_kind(1.645, -3.0) == "outlying"
