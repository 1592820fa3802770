"""Which texts don't belong? Outliers ranked by k-NN isolation, by global TTE depth, or by
both, and for each the nearest neighbours themselves (with their labels): the evidence an
analyst reads to decide whether an outlier is noise, a new topic, or a mistake.

Two notions of outlying, because they answer different questions:

- **k-NN isolation**, as a depth: **local depth** (:func:`local_depth`) is TTE depth taken with
  respect to the text's ``k`` nearest other texts only: ``D_k(x) = 2 - mean δ(x, h)`` over those
  ``k`` neighbours, on the same 0–2 scale (2: ``k`` exact duplicates; low: nothing near it).
  For cosine distance it is ``2 - (mean cosine distance to the k nearest)``, i.e. the k-NN
  isolation score turned into a depth: the two rank the texts identically. It flags what has
  no neighbours, wherever that is (a stray query among tight topics). ``by="local"``.
- **Global depth** (:func:`analytics.depth.tte_depth`) is depth with respect to the whole corpus.
  With cosine distance it orders texts exactly as the cosine to the corpus's mean direction
  does, so it flags what is far from the centre: the texts of a rare topic, the fringe of a
  broad corpus, a small group of similar strays. It does not see a text that sits between
  clusters, near no other text, if it is not far from the centre. ``by="global"``.

**Both** (``by="combined"``) ranks by the mean of the two depth percentiles (a rank average,
so neither scale dominates): a text must be outlying by both to come first.

Which to use: on CLINC150 (23,700 queries, 1,200 out of scope; ``benchmarks/outliers_oos.py``,
BENCHMARKS.md) k-NN isolation finds the out-of-scope queries best: AUROC 0.967, and 62.5% of
the lowest 5% out of scope at k = 10, against 0.810 and 30.5% for global depth; the
combination sits between (0.928, 54.9%). So ``"local"`` is the default. Global depth is the
better signal where the outliers come in groups that neighbour each other (four translations of
one sentence planted among news: tests/test_outliers.py).

Scope: depths are always taken with respect to the whole corpus; an analyst's selection only
restricts which of the flagged rows are listed (:func:`flagged_in`), so an outlier stays an
outlier of the corpus whatever is selected.
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
    progress=None,
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
    progress : callable ``(stage, fraction)``, optional
        Hears how far the work is (a job's progress bar; it may raise to stop): the depths
        first, then the nearest-neighbour search a batch of rows at a time, most of the time
        at 100,000 texts.
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
    tell = progress if progress is not None else (lambda stage, fraction: None)
    tell("depth of every text", 0.0)
    depths = tte_depth(X, distance=distance)
    n = depths.size
    n_flag = min(n, count if count is not None else max(1, int(np.ceil(quantile * n))))
    k = min(k, n - 1)
    search = "each text's nearest neighbours"
    tell(search, 0.05)
    ids, sims = nearest_neighbours(
        ExactIndex(X, device=device),
        k,
        progress=lambda done: tell(search, 0.05 + 0.9 * done / n if done < n else 0.95),
    )
    tell("local depth of every text", 0.95)
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


def nearest_neighbours(index: ExactIndex, k: int = 10, *, batch: int = 2048, progress=None):
    """The k nearest other rows of every row, nearest first: ``(ids, similarities)``, each
    (n, k). One search serves local depth, the k-NN isolation score and the outliers' evidence.
    ``progress(rows_done)`` hears after each batch."""
    n = len(index)
    ids = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, batch):
        rows = np.arange(start, min(start + batch, n))
        hits = index.search(index.vectors[rows], k, exclude=rows)
        ids[rows], sims[rows] = hits.ids, hits.scores
        if progress is not None:
            progress(int(rows[-1]) + 1)
    return ids, sims


# --- what the Outliers page and its CSV show (no streamlit here: the page only draws) -------------

#: the mark the Outliers page puts on rows an analyst has looked at (Store.set_marks / marks)
REVIEWED = "reviewed"
#: how a file name names each ranking
RANKING_TAGS = {"local": "knn", "global": "depth", "combined": "knn-depth"}
#: the CSV's columns before the metadata (a metadata column of the same name gets " (metadata)")
TABLE_COLUMNS = (
    "rank",
    "row",
    "label",
    "score",
    "depth",
    "depth percentile",
    "local depth",
    "local percentile",
    "knn distance",
    "knn rank",
    "reviewed",
    "reviewed by",
    "text",
    "neighbours",
    "neighbour labels",
    "neighbour similarities",
)


def flagged_in(report: OutlierReport, rows=None) -> np.ndarray:
    """Positions in ``report.flagged`` (rank - 1, so they also index ``report.neighbours``) of
    the flagged rows that are among ``rows`` (a selection's row ids; None: every row), in rank
    order. The depths stay those of the whole corpus: a selection narrows what is listed, not
    what an outlier is."""
    positions = np.arange(report.flagged.size)
    if rows is None:
        return positions
    rows = np.asarray(rows, dtype=np.int64).ravel()
    return positions[np.isin(report.flagged, rows)]


@dataclass(frozen=True)
class Page:
    """One page of a list: items ``start:stop`` of ``total``, page ``number`` (1-based) of ``pages``."""

    number: int
    pages: int
    start: int
    stop: int
    total: int


def paginate(total: int, number: int = 1, *, per_page: int = 50) -> Page:
    """Page ``number`` of ``total`` items, ``per_page`` at a time. A number past the last page
    gives the last one (the list shrank: reviewed rows hidden), below 1 the first; an empty list
    has one empty page."""
    total, per_page = int(total), int(per_page)
    if total < 0:
        raise ParameterError(f"A list cannot have {total} items.")
    if per_page < 1:
        raise ParameterError(f"per_page must be at least 1, got {per_page}.")
    pages = max(1, -(-total // per_page))
    number = min(max(int(number), 1), pages)
    start = (number - 1) * per_page
    return Page(number, pages, start, min(start + per_page, total), total)


def _cell(value):
    return "" if value is None else value


def outlier_table(
    report: OutlierReport,
    texts,
    metadata,
    *,
    positions=None,
    label_column: str | None = None,
    reviewed: dict | None = None,
) -> list[dict]:
    """One dict per flagged row (``positions`` in ``report.flagged``: all when None), in rank
    order, with the columns of :data:`TABLE_COLUMNS` then the row's metadata: what the page
    lists and its CSV holds. ``label`` is the row's value in ``label_column`` (the corpus's label
    column; empty when it has none), and ``neighbour labels`` theirs, nearest first, joined by
    "; " like ``neighbours`` (their row ids). ``reviewed``: {row: (user, time)} from
    ``Store.marks(name, "reviewed")``."""
    positions = np.arange(report.flagged.size) if positions is None else np.asarray(positions, dtype=np.int64)
    reviewed = reviewed or {}
    scores = report.scores if report.scores is not None else report.depths
    knn_rank = report.knn_rank
    labels = row_labels(metadata, label_column)
    rows = []
    for p in positions.tolist():
        i = int(report.flagged[p])
        ids = report.neighbours[p].tolist()
        mark = reviewed.get(i)
        row = {
            "rank": p + 1,
            "row": i,
            "label": labels[i] if labels is not None else "",
            "score": round(float(scores[i]), 6),
            "depth": round(float(report.depths[i]), 6),
            "depth percentile": round(float(report.percentiles[i]), 3),
            "local depth": round(float(report.local_depths[i]), 6) if report.local_depths is not None else "",
            "local percentile": round(float(report.local_percentiles[i]), 3)
            if report.local_percentiles is not None
            else "",
            "knn distance": round(float(report.knn_distance[i]), 6),
            "knn rank": int(knn_rank[i]),
            "reviewed": mark is not None,
            "reviewed by": mark[0] if mark else "",
            "text": texts[i],
            "neighbours": "; ".join(str(j) for j in ids),
            "neighbour labels": "; ".join(labels[j] for j in ids) if labels is not None else "",
            "neighbour similarities": "; ".join(f"{s:.4f}" for s in report.neighbour_similarity[p].tolist()),
        }
        for key, value in metadata[i].items():
            row[key if key not in row else f"{key} (metadata)"] = _cell(value)
        rows.append(row)
    return rows


def row_labels(metadata, label_column: str | None) -> list[str] | None:
    """Every row's label as text ("" where missing; as a selection's filter compares it), or
    None when there is no label column."""
    if not label_column:
        return None
    from .selection import cell_key

    cells = (
        metadata.column(label_column, None)
        if hasattr(metadata, "column")
        else [m.get(label_column) for m in metadata]
    )
    return [cell_key(v) for v in cells]


def label_summary(labels, *, top: int = 4) -> str:
    """Labels counted, most frequent first ("balance 6 · oos 3 · bill_due 1"), at most ``top``
    of them and "+N more": what an outlier's neighbours are, at a glance."""
    counts: dict[str, int] = {}
    for label in labels:
        key = str(label) if label not in (None, "") else "(no label)"
        counts[key] = counts.get(key, 0) + 1
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = " · ".join(f"{label} {n}" for label, n in order[:top])
    rest = len(order) - top
    return text + (f" · +{rest} more" if rest > 0 else "")


def export_name(
    corpus: str,
    *,
    by: str = "local",
    quantile: float | None = 0.05,
    count: int | None = None,
    k: int | None = None,
    scoped: bool = False,
    ext: str = "csv",
) -> str:
    """The file name of an outliers export, from the corpus and the view, so two downloads
    never overwrite each other: ``clinc150-outliers-knn-5pct.csv``, ``news-outliers-depth-top20.csv``,
    ``-k20`` when ``k`` (neighbours listed, and local depth's) is not the default, ``-selection``
    when scoped to a selection. Made safe by :func:`analytics.export.file_name` (a corpus name
    is data, never a path)."""
    from .export import file_name

    by = RULES["outliers"]["by"].check(by)
    if count is not None:
        threshold = f"top{int(count)}"
    else:
        threshold = f"{float(quantile) * 100:.3f}".rstrip("0").rstrip(".") + "pct"
    k_part = f"k{int(k)}" if k is not None and int(k) != RULES["outliers"]["k"].default else None
    return file_name(
        corpus, "outliers", RANKING_TAGS[by], threshold, k_part, "selection" if scoped else None, ext=ext
    )
