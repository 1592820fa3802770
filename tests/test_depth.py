"""TTE depth: agreement with tte-depth 1.0.0, the maths as properties, and validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import special_ortho_group

import analytics
from analytics import EmbeddingError, tte_depth
from analytics.depth import chord_distance_sums, depth_percentile

tte_ref = pytest.importorskip("tte_depth")  # the reference implementation (test extra)


def reference_depths(F, G=None, distance="cosine"):
    sd = tte_ref.StatDepth(distance)
    return sd.depths(F) if G is None else sd.depths_paired(F, G)[1]


def brute_depths(X, R=None, distance="cosine"):
    """Depth straight from the definition, all pairs in float64."""
    X = np.asarray(X, np.float64)
    Xu = X / np.linalg.norm(X, axis=1, keepdims=True)
    Ru = Xu if R is None else np.asarray(R, np.float64) / np.linalg.norm(R, axis=1, keepdims=True)
    cos = Xu @ Ru.T
    dist = 1 - cos if distance == "cosine" else np.sqrt(np.clip(2 - 2 * cos, 0, None))
    if R is None:
        np.fill_diagonal(dist, 0.0)
        return 2 - dist.sum(1) / (len(X) - 1)
    return 2 - dist.mean(1)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- agreement with the reference ------------------------------------------------------------


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-9), (np.float32, 1e-6)])
def test_cosine_depth_matches_reference_on_random_data(dtype, tol):
    rng = np.random.default_rng(0)
    F = rng.normal(size=(160, 24)).astype(dtype)  # not unit length: both must normalise
    G = (rng.normal(size=(110, 24)) + 0.4).astype(dtype)
    np.testing.assert_allclose(tte_depth(F), reference_depths(F), rtol=0, atol=tol)
    np.testing.assert_allclose(tte_depth(G, reference=F), reference_depths(F, G), rtol=0, atol=tol)


def test_cosine_depth_matches_reference_on_real_embeddings(label_embeddings):
    F32 = label_embeddings["World"][:300]
    G32 = label_embeddings["Sports"][:200]
    np.testing.assert_allclose(tte_depth(F32), reference_depths(F32), rtol=0, atol=1e-6)
    np.testing.assert_allclose(tte_depth(G32, reference=F32), reference_depths(F32, G32), rtol=0, atol=1e-6)
    F64, G64 = F32.astype(np.float64), G32.astype(np.float64)
    np.testing.assert_allclose(tte_depth(F64), reference_depths(F64), rtol=0, atol=1e-9)
    np.testing.assert_allclose(tte_depth(G64, reference=F64), reference_depths(F64, G64), rtol=0, atol=1e-9)


def test_chord_depth_matches_reference_on_unit_rows(label_embeddings):
    # tte-depth's chord neither normalises nor keeps distances below 1e-5: unit, distinct rows
    F = label_embeddings["World"][:150].astype(np.float64)
    G = label_embeddings["Sports"][:90].astype(np.float64)
    F, G = unit(F), unit(G)
    np.testing.assert_allclose(
        tte_depth(F, distance="chord"), reference_depths(F, distance="chord"), atol=1e-9
    )
    np.testing.assert_allclose(
        tte_depth(G, reference=F, distance="chord"),
        reference_depths(F, G, distance="chord"),
        atol=1e-9,
    )


def test_equal_sizes_use_the_column_mean_where_the_reference_does_not():
    # tte-depth 1.0.0 averages the square F x G matrix over rows when |F| = |G|: a defect.
    rng = np.random.default_rng(1)
    F, G = rng.normal(size=(80, 12)), rng.normal(size=(80, 12)) + 0.5
    ours = tte_depth(G, reference=F)
    np.testing.assert_allclose(ours, brute_depths(G, F), atol=1e-12)
    theirs = reference_depths(F, G)
    assert np.abs(theirs - ours).max() > 1e-3
    # what it computes instead: depth of each F row w.r.t. G
    np.testing.assert_allclose(theirs, brute_depths(F, G), atol=1e-9)


# --- the closed form and chord blocks against the definition ---------------------------------


def test_closed_form_equals_all_pairs_definition():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(700, 32)) * rng.uniform(0.1, 10, size=(700, 1))
    np.testing.assert_allclose(tte_depth(X), brute_depths(X), atol=1e-12)
    np.testing.assert_allclose(tte_depth(X[:50], reference=X[50:]), brute_depths(X[:50], X[50:]), atol=1e-12)


def test_float32_large_n_agrees_with_float64(label_embeddings):
    # 40 copies of the real World embeddings: n = 76,000, where float32 accumulation would drift
    X32 = np.tile(label_embeddings["World"], (40, 1))
    d32 = tte_depth(X32)
    d64 = tte_depth(X32.astype(np.float64))
    assert d32.dtype == np.float64
    np.testing.assert_allclose(d32, d64, rtol=0, atol=1e-7)


def test_chord_blocks_and_torch_path_equal_definition():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 16))
    R = rng.normal(size=(120, 16))
    expected = brute_depths(X, distance="chord")
    np.testing.assert_allclose(tte_depth(X, distance="chord"), expected, atol=1e-12)
    # tiny blocks: many blocks, and a block boundary that cuts through the diagonal
    sums_small = chord_distance_sums(X, block_bytes=7 * 8 * 300)
    sums_torch = chord_distance_sums(X, backend="torch", device="cpu", block_bytes=7 * 8 * 300)
    np.testing.assert_allclose(2 - sums_small / 299, expected, atol=1e-12)
    np.testing.assert_allclose(2 - sums_torch / 299, expected, atol=1e-12)
    np.testing.assert_allclose(
        2 - chord_distance_sums(X, R, backend="torch", device="cpu") / 120,
        brute_depths(X, R, distance="chord"),
        atol=1e-12,
    )


# --- properties ------------------------------------------------------------------------------

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False, width=64)


def corpora(min_rows=3, max_rows=25):
    return st.tuples(st.integers(min_rows, max_rows), st.integers(2, 8)).flatmap(
        lambda nd: arrays(np.float64, nd, elements=finite).filter(
            lambda a: (np.linalg.norm(a, axis=1) > 1e-3).all()
        )
    )


@settings(max_examples=60, deadline=None)
@given(corpora(), st.integers(0, 2**32 - 1), st.sampled_from(["cosine", "chord"]))
def test_invariant_to_rotating_all_vectors(X, seed, distance):
    Q = special_ortho_group.rvs(X.shape[1], random_state=seed) if X.shape[1] > 1 else np.eye(1)
    np.testing.assert_allclose(
        tte_depth(X @ Q, distance=distance), tte_depth(X, distance=distance), atol=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(corpora(), st.data(), st.sampled_from(["cosine", "chord"]))
def test_invariant_to_scaling_any_vector(X, data, distance):
    scales = data.draw(arrays(np.float64, (X.shape[0], 1), elements=st.floats(1e-3, 1e3)))
    np.testing.assert_allclose(
        tte_depth(X * scales, distance=distance), tte_depth(X, distance=distance), atol=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(corpora(), st.randoms(use_true_random=False), st.sampled_from(["cosine", "chord"]))
def test_permutation_equivariant(X, rnd, distance):
    perm = list(range(X.shape[0]))
    rnd.shuffle(perm)
    np.testing.assert_allclose(
        tte_depth(X[perm], distance=distance), tte_depth(X, distance=distance)[perm], atol=1e-9
    )


@settings(max_examples=80, deadline=None)
@given(corpora(min_rows=2), corpora(min_rows=1), st.sampled_from(["cosine", "chord"]))
def test_depths_lie_in_0_2_and_median_is_argmax(X, R, distance):
    d = tte_depth(X, distance=distance)
    assert np.all(d >= -1e-12) and np.all(d <= 2 + 1e-12)
    assert analytics.median_index(d) == int(np.argmax(d))
    if R.shape[1] == X.shape[1]:
        dr = tte_depth(X, reference=R, distance=distance)
        assert np.all(dr >= -1e-12) and np.all(dr <= 2 + 1e-12)


def test_antipodal_pair_has_depth_zero_and_identical_rows_depth_two():
    assert np.allclose(tte_depth(np.array([[1.0, 0], [-1.0, 0]])), 0.0)
    assert np.allclose(tte_depth(np.array([[1.0, 2], [2.0, 4], [3, 6]])), 2.0)


# --- ranking helpers -------------------------------------------------------------------------


def test_ranking_helpers_on_real_embeddings(sample_rows, label_embeddings):
    X = label_embeddings["World"]
    d = tte_depth(X)
    order = analytics.depth_order(d)
    assert np.all(np.diff(d[order]) <= 0)
    assert analytics.median_index(d) == order[0]
    np.testing.assert_array_equal(analytics.most_central(d, 5), order[:5])
    np.testing.assert_array_equal(analytics.most_outlying(d, 5), order[::-1][:5])
    pct = depth_percentile(d)
    assert pct[order[0]] == 100.0 and pct[order[-1]] == pytest.approx(100 / len(d))


def test_ranking_helpers_reject_bad_k():
    with pytest.raises(ValueError, match="non-negative integer"):
        analytics.most_central([0.1, 0.2], -1)


# --- validation at the boundary --------------------------------------------------------------


@pytest.mark.parametrize(
    "X, match",
    [
        (np.ones(5), "must be 2-D"),
        (np.ones((2, 3, 4)), "must be 2-D"),
        (np.ones((1, 4)), "at least 2"),
        (np.ones((3, 0)), "length 0"),
        ([[1.0, 2.0], [3.0]], "could not be read"),
        (np.array([["a", "b"], ["c", "d"]]), "real numbers"),
        (
            np.array([[1.0, np.nan], [1.0, 2.0], [0.5, 0.5]]),
            r"NaN or infinite values in 1 row\(s\) \(first: \[0\]\)",
        ),
        (np.array([[1.0, 1.0], [np.inf, 2.0], [0.5, 0.5]]), "NaN or infinite"),
        (np.array([[1.0, 1.0], [0.0, 0.0], [0.5, 0.5]]), r"all-zero row\(s\) \(first: \[1\]\)"),
    ],
)
@pytest.mark.parametrize("distance", ["cosine", "chord"])
def test_bad_input_is_rejected_with_a_clear_message(X, match, distance):
    with pytest.raises(EmbeddingError, match=match):
        tte_depth(X, distance=distance)


def test_mismatched_dimensions_and_unknown_distance():
    with pytest.raises(EmbeddingError, match="dimension 3 but reference has 4"):
        tte_depth(np.ones((2, 3)), reference=np.ones((2, 4)))
    with pytest.raises(ValueError, match="distance must be one of"):
        tte_depth(np.eye(3), distance="euclidean")


def test_finite_huge_values_are_not_mistaken_for_nan():
    X = np.array([[1e200, 1e200], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(tte_depth(X), brute_depths([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), atol=1e-12)
    X32 = np.array([[3e30, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=np.float32)  # squares overflow float32
    np.testing.assert_allclose(tte_depth(X32), brute_depths(X32.astype(np.float64)), atol=1e-6)


def test_integer_and_list_input_work():
    np.testing.assert_allclose(
        tte_depth([[1, 0], [0, 1], [1, 1]]), brute_depths(np.array([[1, 0], [0, 1], [1, 1]]))
    )
