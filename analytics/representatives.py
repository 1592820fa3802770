"""Representative texts: k examples per label (or for the whole corpus) that stand for it.

The paper's in-context-learning use of TTE depth: the deepest texts of a class are its most
typical members, so they make good few-shot examples. Three ways to pick them:

``"depth"``
    The k deepest texts of each group (depth taken within the group), deepest first. Deep texts
    sit near the group's centre, so the deepest few can be near-copies of each other (a story
    syndicated twice, a templated query); a copy adds nothing to a prompt. With
    ``max_similarity`` below 1, picks are *spread*: walking down the depth order, a text whose
    cosine similarity to a text already picked is at least ``max_similarity`` is passed over
    for the next deepest. When fewer than k texts survive, the passed-over ones fill the rest,
    deepest first, so a group of n texts still gives ``min(k, n)``. ``max_similarity=1``: no
    spreading, exactly the k deepest.
``"medoid"``
    k-means within each group (k clusters on unit rows; k-means++ seeded by ``random_state``,
    one start, as scikit-learn's default), and the member nearest each cluster's centre,
    largest cluster first: a baseline that covers the group's modes rather than its centre.
    Groups above 20,000 texts are clustered on a seeded sample of 20,000, and every member is
    then assigned to its nearest centre.
``"random"``
    ``min(k, n)`` texts of each group drawn without replacement, seeded: the baseline any
    picking rule must beat.

Which to use (``benchmarks/representatives.py``, BENCHMARKS.md): for one example per label the
deepest text is the best pick (nearest-centroid accuracy 0.74 vs 0.55 for a random one on AG
News); for several, the deepest all sit on the label's main mode, and k-means medoids, which
cover its modes, classify better (from k = 5 on AG News, k = 2 on CLINC150's 150 intents). On
AG News the default ``max_similarity`` (0.95) passes over only near-copies: apart from one story
that appears twice (0.99), the 10 deepest texts of each topic are at most 0.6 similar.

>>> from analytics.representatives import pick_representatives
>>> reps = pick_representatives(X, k=5, labels=labels)        # 5 deepest texts per label
>>> reps.groups()                                              # {label: row indices}
>>> pick_representatives(X, k=5, method="medoid", random_state=0).indices
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from ._validate import as_embeddings, check_distance, checked_norms
from .depth import depth_order, tte_depth
from .errors import ParameterError
from .params import RULES

METHODS = RULES["representatives"]["method"].choices
#: groups above this many texts are clustered (method="medoid") on a seeded sample this size
KMEANS_SAMPLE = 20_000
#: candidates compared at once with the picks while spreading
_SPREAD_BLOCK = 1024


@dataclass(frozen=True)
class Representatives:
    """The picks of :func:`pick_representatives`. Indices are rows of ``X``."""

    indices: np.ndarray
    """Picked rows, group by group (groups in order of first appearance), best first within
    a group for ``"depth"`` (deepest) and ``"medoid"`` (largest cluster); in draw order for
    ``"random"``."""
    labels: list | None
    """The label of each pick, aligned with ``indices``; ``None`` when picked overall."""
    depths: np.ndarray = field(repr=False)
    """The depth of each pick within its group, whatever the method (NaN in a group of one)."""
    method: str = "depth"
    k: int = 5
    max_similarity: float = RULES["representatives"]["max_similarity"].default

    def groups(self) -> dict:
        """``{label: row indices}`` in pick order (one key, ``None``, when picked overall)."""
        if self.labels is None:
            return {None: self.indices}
        out: dict = {}
        for label, i in zip(self.labels, self.indices.tolist(), strict=True):
            out.setdefault(_label_key(label), (label, []))[1].append(i)
        return {label: np.asarray(rows, dtype=np.int64) for label, rows in out.values()}

    def rows(self, texts) -> list[dict]:
        """One dict per pick for tables and JSON: ``label`` (None overall), ``rank`` within
        its group (1 = best), ``row``, ``depth`` (None in a group of one) and ``text``."""
        labels = self.labels if self.labels is not None else [None] * self.indices.size
        ranks: dict = {}
        out = []
        for label, i, depth in zip(labels, self.indices.tolist(), self.depths.tolist(), strict=True):
            key = _label_key(label)
            ranks[key] = ranks.get(key, 0) + 1
            depth = None if math.isnan(depth) else depth
            out.append({"label": label, "rank": ranks[key], "row": i, "depth": depth, "text": texts[i]})
        return out


def pick_representatives(
    X,
    k: int = 5,
    *,
    labels=None,
    method: str = "depth",
    max_similarity: float = RULES["representatives"]["max_similarity"].default,
    distance: str = "cosine",
    random_state: int | None = 0,
) -> Representatives:
    """Pick ``k`` representative rows of ``X`` per label, or overall when ``labels`` is None.

    Parameters
    ----------
    X : array of shape (n, d)
        Embeddings, one row per text (normalised here; all-zero rows are an error).
    k : int
        Texts per group; a group of n texts gives ``min(k, n)``.
    labels : sequence of length n, optional
        One label per row (any hashable values; NaN is one label). Omitted: one group.
    method : {"depth", "medoid", "random"}
        See the module's docstring.
    max_similarity : float
        ``"depth"`` only: pass over a text whose cosine similarity to a pick is at least this
        (1 = no spreading: the k deepest).
    distance : {"cosine", "chord"}
        The distance of the depth that ranks (``"depth"``) and scores every pick.
    random_state : int or None
        Seed of k-means (``"medoid"``) and of the draw (``"random"``).

    Returns
    -------
    Representatives
    """
    rules = RULES["representatives"]  # ranges and defaults: analytics/params.py
    k = rules["k"].check(k)
    method = rules["method"].check(method)
    max_similarity = rules["max_similarity"].check(max_similarity)
    check_distance(distance)
    if random_state is not None and (
        isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer)) or random_state < 0
    ):
        raise ParameterError(
            f"random_state must be a non-negative integer (or None), got {random_state!r}; "
            "pass a seed such as 0 to get the same picks every time."
        )
    X = as_embeddings(X, "X", why="there must be a text to pick")
    norms = checked_norms(X, "X")
    rng = np.random.default_rng(random_state)
    picked, picked_labels, picked_depths = [], [], []
    for label, rows in _groups(labels, X.shape[0]):
        # the whole corpus is used in place: a million rows are never copied
        Xg, ng = (X, norms) if rows is None else (X[rows], norms[rows])
        depths = _group_depths(Xg, distance)
        if method == "depth":
            local = _spread(Xg, ng, depth_order(depths), k, max_similarity)
        elif method == "medoid":
            local = _medoids(Xg, ng, depths, k, random_state)
        else:
            local = rng.choice(Xg.shape[0], size=min(k, Xg.shape[0]), replace=False)
        picked.append(local if rows is None else rows[local])
        picked_labels += [label] * local.size
        picked_depths.append(depths[local])
    return Representatives(
        indices=np.concatenate(picked).astype(np.int64),
        labels=None if labels is None else picked_labels,
        depths=np.concatenate(picked_depths),
        method=method,
        k=k,
        max_similarity=max_similarity,
    )


def _groups(labels, n: int) -> list[tuple[object, np.ndarray | None]]:
    """``[(label, rows)]`` in order of first appearance; ``[(None, None)]`` (all rows) without
    labels."""
    if labels is None:
        return [(None, None)]
    labels = list(labels)
    if len(labels) != n:
        raise ParameterError(
            f"labels has {len(labels):,} values but X has {n:,} rows; pass one label per row "
            "(or none, to pick from the whole corpus)."
        )
    groups: dict = {}
    try:
        for i, label in enumerate(labels):
            groups.setdefault(_label_key(label), (label, []))[1].append(i)
    except TypeError:
        raise ParameterError(
            f"labels must be hashable values (strings, numbers), got {type(label).__name__} at "
            f"row {i}; convert them with str() first."
        ) from None
    return [(label, np.asarray(rows, dtype=np.int64)) for label, rows in groups.values()]


_NAN = object()


def _label_key(label):
    """``label`` as a dict key: every NaN is one label (NaN != NaN would make each its own)."""
    return _NAN if isinstance(label, float) and math.isnan(label) else label


def _group_depths(Xg: np.ndarray, distance: str) -> np.ndarray:
    if Xg.shape[0] < 2:  # depth within one text is undefined
        return np.full(Xg.shape[0], np.nan)
    return tte_depth(Xg, distance=distance, device="cpu")


def _unit(X: np.ndarray, norms: np.ndarray, rows) -> np.ndarray:
    return X[rows] / norms[rows, None].astype(X.dtype)


def _spread(X: np.ndarray, norms: np.ndarray, order: np.ndarray, k: int, max_similarity: float) -> np.ndarray:
    """The first ``k`` of ``order`` (rows of ``X``) that are not near-copies of earlier picks
    (cosine ≥ ``max_similarity``); passed-over rows fill up to ``k``, in order. Rows are
    normalised a block at a time, only as far down the order as the walk goes."""
    k = min(k, order.size)
    if max_similarity >= 1.0:
        return order[:k]
    picks: list[int] = []
    P = np.empty((0, X.shape[1]), dtype=X.dtype)  # the picks' unit rows
    passed: list[int] = []
    for start in range(0, order.size, _SPREAD_BLOCK):
        block = order[start : start + _SPREAD_BLOCK]
        U = _unit(X, norms, block)
        near = (U @ P.T).max(axis=1) >= max_similarity if picks else np.zeros(block.size, dtype=bool)
        before = len(picks)
        for j, (i, is_near) in enumerate(zip(block.tolist(), near.tolist(), strict=True)):
            if is_near or (len(picks) > before and float((P[before:] @ U[j]).max()) >= max_similarity):
                passed.append(i)
                continue
            picks.append(i)
            if len(picks) == k:
                return np.asarray(picks, dtype=np.int64)
            P = np.vstack([P, U[j]])
    return np.asarray(picks + passed[: k - len(picks)], dtype=np.int64)


def _medoids(X: np.ndarray, norms: np.ndarray, depths: np.ndarray, k: int, random_state) -> np.ndarray:
    """The member nearest each of k k-means centres, largest cluster first; where clusters
    come out empty (fewer distinct texts than k), the deepest others fill up to ``min(k, n)``.
    Members are assigned and compared a block at a time (no normalised copy of ``X``)."""
    from sklearn.cluster import KMeans

    n = X.shape[0]
    if k >= n:
        return depth_order(depths) if n > 1 else np.arange(n)
    fit = np.arange(n)
    if n > KMEANS_SAMPLE:
        fit = np.sort(np.random.default_rng(random_state).choice(n, KMEANS_SAMPLE, replace=False))
    with warnings.catch_warnings():  # fewer distinct texts than k: handled below
        warnings.simplefilter("ignore")
        km = KMeans(n_clusters=k, n_init=1, random_state=random_state).fit(_unit(X, norms, fit))
    centres = km.cluster_centers_.astype(X.dtype)
    sizes = np.zeros(k, dtype=np.int64)
    best_sim, best_row = np.full(k, -np.inf), np.full(k, -1, dtype=np.int64)
    for start in range(0, n, _SPREAD_BLOCK * 16):
        rows = np.arange(start, min(start + _SPREAD_BLOCK * 16, n))
        sims = _unit(X, norms, rows) @ centres.T
        assign = sims.argmax(axis=1)
        sizes += np.bincount(assign, minlength=k)
        mine = sims[np.arange(rows.size), assign]
        for c in np.unique(assign):
            at = np.flatnonzero(assign == c)
            top = at[np.argmax(mine[at])]
            if mine[top] > best_sim[c]:
                best_sim[c], best_row[c] = mine[top], rows[top]
    picks = [int(best_row[c]) for c in np.argsort(-sizes, kind="stable") if sizes[c]]
    if len(picks) < k:
        taken = set(picks)
        picks += [int(i) for i in depth_order(depths) if i not in taken][: k - len(picks)]
    return np.asarray(picks, dtype=np.int64)


__all__ = ["KMEANS_SAMPLE", "METHODS", "Representatives", "pick_representatives"]
