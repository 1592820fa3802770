"""Which texts don't belong? Outliers ranked by global TTE depth, by local depth, or by both,
and for each the nearest neighbours themselves: the evidence an analyst reads to decide whether
an outlier is noise, a new topic, or a mistake.

Two notions of outlying, because they answer different questions:

- **Global depth** (:func:`analytics.depth.tte_depth`) is depth with respect to the whole corpus.
  With cosine distance it orders texts exactly as the cosine to the corpus's mean direction
  does, so it flags what is far from the centre: the texts of a rare topic, the fringe of a
  broad corpus. It does not see a text that sits between clusters, near no other text, if it is
  not far from the centre.
- **Local depth** (:func:`local_depth`) is the same depth taken with respect to the text's
  ``k`` nearest other texts only: ``D_k(x) = 2 - mean δ(x, h)`` over those ``k`` neighbours,
  on the same 0–2 scale (2: ``k`` exact duplicates; low: nothing near it). It flags what has no
  neighbours, wherever that is. For cosine distance it is ``1 + mean cos`` to the ``k``
  nearest, i.e. k-NN isolation (mean distance to the ``k`` nearest) turned into a depth.

``by="combined"`` ranks by the mean of the two depth percentiles (a rank average): a text must
be outlying by both to come first. On CLINC150, local depth finds the out-of-scope queries best
(AUROC 0.967 at k = 10 against 0.810 for global depth and 0.928 for the combination;
BENCHMARKS.md), so ``"local"`` is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._validate import as_embeddings, check_distance, checked_norms
from .depth import depth_percentile, most_outlying, tte_depth
from .errors import ParameterError
from .params import RULES
from .retrieval import ExactIndex

#: the rankings :func:`find_outliers` offers (analytics/params.py holds the rule and default)
RANKINGS = RULES["outliers"]["by"].choices
#: bytes one block of neighbour vectors (float64) may take when local depth is computed
_NEIGHBOUR_BLOCK_BYTES = 32 * 2**20


@dataclass(frozen=True)
class OutlierReport:
    """Everything the Outliers page shows. Indices refer to rows of the corpus."""

    flagged: np.ndarray
    """Rows flagged as outliers, most outlying first (by :attr:`by`)."""
    depths: np.ndarray = field(repr=False)
    """Global TTE depth of each row, with respect to the whole corpus."""
    percentiles: np.ndarray = field(repr=False)
    """Percent of the corpus at or below each row's global depth."""
    knn_distance: np.ndarray = field(repr=False)
    """Mean cosine distance of each row to its k nearest other rows (high = isolated)."""
    neighbours: np.ndarray = field(repr=False)
    """(n_flagged, k) nearest rows of each flagged row, nearest first."""
    neighbour_similarity: np.ndarray = field(repr=False)
    k: int = 10
    local_depths: np.ndarray | None = field(default=None, repr=False)
    """Local depth of each row: depth with respect to its k nearest other rows."""
    local_percentiles: np.ndarray | None = field(default=None, repr=False)
    """Percent of the corpus at or below each row's local depth."""
    by: str = "local"
    """The ranking that chose :attr:`flagged`: "global", "local" or "combined"."""
    scores: np.ndarray | None = field(default=None, repr=False)
    """Each row's score under :attr:`by` (see :func:`outlier_scores`); low = outlying."""

    @property
    def knn_rank(self) -> np.ndarray:
        """1-based rank of each row by k-NN distance (1 = most isolated)."""
        return _rank(-self.knn_distance)

    @property
    def rank(self) -> np.ndarray:
        """1-based rank of each row under :attr:`by` (1 = most outlying)."""
        return _rank(self.scores if self.scores is not None else self.depths)


def _rank(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each row, lowest score first (ties keep row order)."""
    ranks = np.empty(scores.size, dtype=np.int64)
    ranks[np.argsort(scores, kind="stable")] = np.arange(1, scores.size + 1)
    return ranks


def find_outliers(
    X,
    *,
    quantile: float | None = 0.05,
    count: int | None = None,
    k: int = 10,
    by: str = "local",
    distance: str = "cosine",
    device: str | None = "cpu",
) -> OutlierReport:
    """Flag the most outlying texts: the lowest ``quantile`` of scores, or the ``count`` lowest.

    Parameters
    ----------
    X : array of shape (n, d)
        Embeddings, one row per text (normalised here; all-zero rows are an error).
    quantile, count : float or int
        Flag this share of the corpus, or this many texts (``count`` wins when given).
    k : int
        Nearest neighbours per text: local depth is measured over them, and they are returned
        as each outlier's evidence. Capped at n - 1.
    by : {"local", "global", "combined"}
        What ranks the texts: local depth (no near neighbours), global TTE depth (far from the
        corpus as a whole), or the mean of the two depth percentiles (outlying by both). See
        the module docstring for when each is right.
    distance : {"cosine", "chord"}
        The distance of both depths.
    device : str, optional
        Where the exact k-NN search runs (``"cpu"``, or ``"cuda"`` through torch).
    """
    if count is None and quantile is None:
        raise ParameterError("Give quantile= (e.g. 0.05) or count= (e.g. 20).")
    rules = RULES["outliers"]  # ranges and defaults: analytics/params.py
    if count is None:
        quantile = rules["quantile"].check(quantile)
    else:
        count = rules["count"].check(count)
    k = rules["k"].check(k)
    by = rules["by"].check(by)
    depths = tte_depth(X, distance=distance)
    n = depths.size
    n_flag = min(n, count if count is not None else max(1, int(np.ceil(quantile * n))))
    k = min(k, n - 1)
    ids, sims = nearest_neighbours(ExactIndex(X, device=device), k)
    local = _local_depths(X, ids, distance)
    scores = outlier_scores(depths, local, by=by)
    flagged = most_outlying(scores, n_flag)
    return OutlierReport(
        flagged=flagged,
        depths=depths,
        percentiles=depth_percentile(depths),
        knn_distance=1.0 - sims.mean(axis=1, dtype=np.float64),
        neighbours=ids[flagged],
        neighbour_similarity=sims[flagged],
        k=k,
        local_depths=local,
        local_percentiles=depth_percentile(local),
        by=by,
        scores=scores,
    )


def local_depth(X, k: int = 10, *, distance: str = "cosine", device: str | None = "cpu") -> np.ndarray:
    """Depth of each row of ``X`` with respect to its ``k`` nearest other rows.

    ``D_k(x) = 2 - mean δ(x, h)`` over the ``k`` rows h nearest x (x itself left out; an exact
    duplicate of x counts as a neighbour at distance 0): TTE depth with the corpus replaced by
    the text's own neighbourhood. Low local depth means no near neighbours, wherever the text
    sits; global depth (:func:`analytics.depth.tte_depth`) instead means far from the corpus
    as a whole. The neighbours come from an exact search (:class:`analytics.retrieval.ExactIndex`),
    O(n² d) in bounded-memory blocks: about 10 s for 23,700 × 384 on two CPU cores.

    Parameters
    ----------
    X : array of shape (n, d), n ≥ 2
    k : int
        Neighbours per text (``RULES["outliers"]["k"]``), capped at n - 1.
    distance : {"cosine", "chord"}
        ``1 - cos`` or ``sqrt(2 - 2 cos)``; both order neighbours alike, so only the average
        differs.

    Returns
    -------
    depths : float64 array of shape (n,), in [0, 2]
    """
    check_distance(distance)
    k = RULES["outliers"]["k"].check(k)
    X = as_embeddings(X, "X", min_rows=2, why="local depth compares each text with its neighbours")
    ids, _ = nearest_neighbours(ExactIndex(X, device=device), min(k, X.shape[0] - 1))
    return _local_depths(X, ids, distance)


def _local_depths(X, ids: np.ndarray, distance: str) -> np.ndarray:
    """``2 - mean δ(x, h)`` over each row's neighbours ``ids`` (n, k), in float64.

    The search ranks in float32; the distances to the neighbours it found are taken again in
    float64 (O(n·k·d), in blocks), so local depth is as exact as global depth: float32 cosines
    near 1 would put an error of ~3e-4 into a chord distance."""
    X = as_embeddings(X, "X")
    norms = checked_norms(X, "X")
    n, k = ids.shape
    out = np.empty(n)
    rows = max(1, _NEIGHBOUR_BLOCK_BYTES // (8 * k * X.shape[1]))
    for start in range(0, n, rows):
        block = slice(start, min(start + rows, n))
        x = X[block].astype(np.float64) / norms[block, None]
        h = X[ids[block]].astype(np.float64) / norms[ids[block]][..., None]
        if distance == "cosine":
            dist = 1.0 - np.clip(np.einsum("id,ikd->ik", x, h), -1.0, 1.0)
        else:
            dist = np.linalg.norm(h - x[:, None, :], axis=2)
        out[block] = 2.0 - dist.mean(axis=1)
    return out


def outlier_scores(depths, local_depths, *, by: str = "local") -> np.ndarray:
    """One score per text under the ranking ``by``; the lowest is the most outlying.

    ``"global"`` and ``"local"`` return those depths as they are. ``"combined"`` returns the
    mean of the two depth percentiles (percent of the corpus at or below the text, 0–100): a
    rank average, so neither scale dominates, and a text comes first only if it is outlying
    by both.
    """
    by = RULES["outliers"]["by"].check(by)
    depths = np.asarray(depths, dtype=np.float64)
    local_depths = np.asarray(local_depths, dtype=np.float64)
    if depths.shape != local_depths.shape or depths.ndim != 1:
        raise ParameterError(
            f"depths and local_depths must be 1-D and the same length, got shapes "
            f"{depths.shape} and {local_depths.shape}; pass one value per text for each."
        )
    if by == "global":
        return depths
    if by == "local":
        return local_depths
    return (depth_percentile(depths) + depth_percentile(local_depths)) / 2.0


def nearest_neighbours(index: ExactIndex, k: int = 10, *, batch: int = 2048):
    """The k nearest other rows of every row, nearest first: ``(ids, similarities)``, each
    (n, k). One search serves local depth, the k-NN isolation score and the outliers' evidence."""
    n = len(index)
    ids = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, batch):
        rows = np.arange(start, min(start + batch, n))
        hits = index.search(index.vectors[rows], k, exclude=rows)
        ids[rows], sims[rows] = hits.ids, hits.scores
    return ids, sims
