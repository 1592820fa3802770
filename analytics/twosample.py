"""Two-sample tests on embeddings, sharing one seeded permutation engine.

The depth rank test asks one question: is G more outlying with respect to F? A G that is more
*concentrated* than F (templated or machine-made text, near-duplicates, a narrowed topic), or one
that has moved without becoming more or less outlying, passes it unseen. So the shift test
(:func:`analytics.shift_test`) runs, on the same permutations of the pooled texts:

- the depth test in both directions: G more outlying w.r.t. F, and F more outlying w.r.t. G
  (that is, G more concentrated);
- MMD with an RBF kernel (bandwidth: the median pairwise distance, a label-free choice);
- the mean-embedding test: the squared distance between the two corpora's mean unit vectors;

and combines them by the min-p method (Westfall & Young): each permutation's smallest p over the
tests is compared with the observed smallest p, so the combined p is exact under exchangeability
however the tests correlate. A classifier two-sample test (logistic regression, trained on one
half and scored on the other, its p from permuting the held-out labels) is a further cross-check
with a calibrated p of its own.

Every p here is ``(1 + #{permutations at least as extreme}) / (1 + B)``: never 0, calibrated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

#: bytes one chunk of permutations may take (an N x chunk float64 matrix)
PERM_CHUNK_BYTES = 64 * 2**20
#: MMD's kernel is N x N: above this many pooled texts it is computed on a seeded random subset
#: of the pool (chosen without looking at the labels, so the test stays valid)
MMD_MAX_ROWS = 3000
#: the classifier test trains on at most this many texts (a seeded random subset)
CLASSIFIER_MAX_ROWS = 20000


@dataclass(frozen=True)
class CrossCheck:
    """One two-sample test beside the depth test."""

    name: str
    statistic: float
    p: float
    detail: str = ""


def all_p(observed: float, null: np.ndarray) -> np.ndarray:
    """The permutation p of the observed value and of every permutation, each among all
    ``B + 1`` values (larger is more extreme): entry 0 is the observed p."""
    values = np.concatenate([[observed], np.asarray(null, dtype=np.float64)])
    ordered = np.sort(values)
    tol = 1e-9 * max(1.0, float(np.abs(values).max()))
    at_least = values.size - np.searchsorted(ordered, values - tol, side="left")
    return at_least / values.size


def min_p(observed: dict[str, float], null: dict[str, np.ndarray]) -> float:
    """Min-p combination: how often a permutation's smallest p (over the tests) is at most the
    observed smallest p. Exact whatever the dependence between the tests."""
    ps = np.vstack([all_p(observed[name], null[name]) for name in observed])
    smallest = ps.min(axis=0)
    return float(np.count_nonzero(smallest <= smallest[0] + 1e-12) / smallest.size)


def run_permutations(
    N: int,
    m: int,
    statistics: dict[str, Callable[[np.ndarray], np.ndarray]],
    permutations: int,
    rng: np.random.Generator,
    progress=None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Evaluate each statistic on the observed split (the first ``m`` of ``N`` pooled rows are
    F) and on ``permutations`` random re-splits, in chunks of bounded memory.

    A statistic takes a 0/1 float matrix ``member`` (N x c: 1 where a row is in F for that
    split) and returns c values, larger meaning "more different"."""
    identity = np.zeros((N, 1))
    identity[:m] = 1.0
    observed = {name: float(f(identity)[0]) for name, f in statistics.items()}
    null = {name: np.empty(permutations) for name in statistics}
    chunk = max(1, min(permutations, PERM_CHUNK_BYTES // (8 * N)))
    for start in range(0, permutations, chunk):
        c = min(chunk, permutations - start)
        f_rows = rng.permuted(np.tile(np.arange(N), (c, 1)), axis=1)[:, :m].T
        member = np.zeros((N, c))
        np.put_along_axis(member, f_rows, 1.0, axis=0)
        for name, f in statistics.items():
            null[name][start : start + c] = f(member)
        if progress is not None:
            progress(f"permutation {start + c:,} of {permutations:,}", (start + c) / permutations)
    return observed, null


# -- statistics on pooled unit rows Z (N x d), for a 0/1 membership matrix (N x c) ----------------


def depth_rank_statistic(Z: np.ndarray, distance: str, reference: str, chord_product=None):
    """The depth rank-sum statistic with respect to F (``reference="f"``: large when G is more
    outlying w.r.t. F, the paper's test) or to G (``"g"``: large when F is more outlying
    w.r.t. G, i.e. G is more concentrated). Depths of the reference's own rows leave the row
    out, as in :func:`analytics.tte_depth`."""

    def statistic(member: np.ndarray) -> np.ndarray:
        ref = member if reference == "f" else 1.0 - member
        k = ref[:, 0].sum()
        if distance == "cosine":  # sum over j in the reference of (1 - z_i·z_j)
            dist_sums = k - Z @ (Z.T @ ref)
        else:
            dist_sums = chord_product(Z, ref)
        depths = np.where(ref > 0, 2.0 - dist_sums / (k - 1), 2.0 - dist_sums / k)
        return (rankdata(depths, axis=0) * ref).sum(axis=0)

    return statistic


def mean_embedding_statistic(Z: np.ndarray):
    """Squared distance between the two corpora's mean unit vectors."""
    total = Z.sum(axis=0)

    def statistic(member: np.ndarray) -> np.ndarray:
        m = member[:, 0].sum()
        n = Z.shape[0] - m
        s_f = Z.T @ member  # d x c
        diff = s_f / m - (total[:, None] - s_f) / n
        return (diff * diff).sum(axis=0)

    return statistic


def rbf_kernel(Z: np.ndarray) -> tuple[np.ndarray, float]:
    """RBF kernel matrix and its bandwidth: the median pairwise distance (label-free)."""
    sq = np.maximum(2.0 - 2.0 * (Z @ Z.T), 0.0)  # unit rows: |a - b|^2 = 2 - 2 a·b
    iu = np.triu_indices(Z.shape[0], 1)
    bandwidth = float(np.median(np.sqrt(sq[iu]))) or 1.0
    return np.exp(-sq / (2.0 * bandwidth**2)), bandwidth


def mmd_statistic(K: np.ndarray, rows: np.ndarray | None = None):
    """Unbiased MMD² between the F and G rows of the pool; ``rows``: the pooled rows K covers
    (a subset when the pool is big)."""
    K0 = K - np.diag(np.diag(K))

    def statistic(member: np.ndarray) -> np.ndarray:
        a = member if rows is None else member[rows]
        b = 1.0 - a
        m, n = a.sum(axis=0), b.sum(axis=0)
        Ka = K0 @ a
        ff = (a * Ka).sum(axis=0)
        fg = (b * Ka).sum(axis=0)
        gg = (b * (K0 @ b)).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = ff / (m * (m - 1)) + gg / (n * (n - 1)) - 2.0 * fg / (m * n)
        return np.where((m >= 2) & (n >= 2), value, 0.0)

    return statistic


def classifier_test(
    F: np.ndarray,
    G: np.ndarray,
    *,
    permutations: int = 999,
    random_state: int | None = 0,
    max_rows: int = CLASSIFIER_MAX_ROWS,
) -> CrossCheck | None:
    """Can a linear classifier tell F's texts from G's? Logistic regression is trained on a
    stratified half and scored (balanced accuracy) on the other half; the p comes from
    permuting the held-out labels, so it is calibrated (a k-fold binomial p is not: the folds
    share training data). None when a side has fewer than 4 texts."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(random_state)
    if min(len(F), len(G)) < 4:
        return None
    Z = np.concatenate([F, G]).astype(np.float32)
    y = np.r_[np.zeros(len(F), dtype=np.int8), np.ones(len(G), dtype=np.int8)]
    note = ""
    if Z.shape[0] > max_rows:  # a random subset, stratified, of at most max_rows texts
        keep = np.concatenate(
            [
                rng.choice(np.flatnonzero(y == c), max(2, round(max_rows * np.mean(y == c))), replace=False)
                for c in (0, 1)
            ]
        )
        Z, y = Z[keep], y[keep]
        note = f"; trained and scored on a random {Z.shape[0]:,} of {len(F) + len(G):,} texts"
    test = np.zeros(y.size, dtype=bool)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        test[rng.choice(idx, idx.size // 2, replace=False)] = True
    model = LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced")
    model.fit(Z[~test], y[~test])
    pred, truth = model.predict(Z[test]), y[test]

    def balanced_accuracy(labels: np.ndarray) -> np.ndarray:
        """For a (B x t) stack of label vectors: the mean of the per-class recalls."""
        hit = labels == pred
        recall = [(hit & (labels == c)).sum(axis=-1) / (labels == c).sum(axis=-1) for c in (0, 1)]
        return (recall[0] + recall[1]) / 2

    observed = float(balanced_accuracy(truth[None, :])[0])
    shuffled = rng.permuted(np.tile(truth, (permutations, 1)), axis=1) if permutations else truth[None, :0]
    null = balanced_accuracy(shuffled) if permutations else np.empty(0)
    p = float(all_p(observed, null)[0]) if permutations else float("nan")
    return CrossCheck(
        "classifier",
        observed,
        p,
        f"logistic regression, balanced accuracy {observed:.3f} on {int(test.sum()):,} held-out texts "
        f"(chance 0.5){note}",
    )
