"""Which texts don't belong? Outliers ranked by TTE depth, with a second opinion from the mean
distance to the k nearest neighbours, and for each the neighbours themselves: the evidence an
analyst reads to decide whether an outlier is noise, a new topic, or a mistake."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .depth import depth_percentile, most_outlying, tte_depth
from .errors import ParameterError
from .params import RULES
from .retrieval import ExactIndex


@dataclass(frozen=True)
class OutlierReport:
    """Everything the Outliers page shows. Indices refer to rows of the corpus."""

    flagged: np.ndarray
    """Rows flagged as outliers, most outlying (lowest depth) first."""
    depths: np.ndarray = field(repr=False)
    percentiles: np.ndarray = field(repr=False)
    knn_distance: np.ndarray = field(repr=False)
    """Mean cosine distance of each row to its k nearest other rows (high = isolated)."""
    neighbours: np.ndarray = field(repr=False)
    """(n_flagged, k) nearest rows of each flagged row, nearest first."""
    neighbour_similarity: np.ndarray = field(repr=False)
    k: int = 10

    @property
    def knn_rank(self) -> np.ndarray:
        """1-based rank of each row by k-NN distance (1 = most isolated)."""
        ranks = np.empty(self.knn_distance.size, dtype=np.int64)
        ranks[np.argsort(-self.knn_distance, kind="stable")] = np.arange(1, self.knn_distance.size + 1)
        return ranks


def find_outliers(
    X,
    *,
    quantile: float | None = 0.05,
    count: int | None = None,
    k: int = 10,
    distance: str = "cosine",
    device: str | None = "cpu",
) -> OutlierReport:
    """Flag the least deep texts: the lowest ``quantile`` of depths, or the ``count`` lowest."""
    if count is None and quantile is None:
        raise ParameterError("Give quantile= (e.g. 0.05) or count= (e.g. 20).")
    rules = RULES["outliers"]  # ranges and defaults: analytics/params.py
    if count is None:
        quantile = rules["quantile"].check(quantile)
    else:
        count = rules["count"].check(count)
    k = rules["k"].check(k)
    depths = tte_depth(X, distance=distance)
    n = depths.size
    n_flag = min(n, count if count is not None else max(1, int(np.ceil(quantile * n))))
    flagged = most_outlying(depths, n_flag)
    k = min(k, n - 1)
    ids, sims = nearest_neighbours(ExactIndex(X, device=device), k)
    return OutlierReport(
        flagged, depths, depth_percentile(depths), 1.0 - sims.mean(axis=1), ids[flagged], sims[flagged], k
    )


def nearest_neighbours(index: ExactIndex, k: int = 10, *, batch: int = 2048):
    """The k nearest other rows of every row, nearest first: ``(ids, similarities)``, each
    (n, k). One search serves both the k-NN isolation score and the outliers' evidence."""
    n = len(index)
    ids = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, batch):
        rows = np.arange(start, min(start + batch, n))
        hits = index.search(index.vectors[rows], k, exclude=rows)
        ids[rows], sims[rows] = hits.ids, hits.scores
    return ids, sims
