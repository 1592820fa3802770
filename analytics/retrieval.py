"""Finding the texts nearest a query: exact cosine top-k over a corpus, and an optional
approximate (FAISS HNSW) index for large corpora, with its recall measured against exact.

Both indexes normalise the corpus once, so a search is a matrix product plus a partial sort.
The exact search walks the corpus in row blocks, so memory stays bounded however many queries
come at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ._validate import as_embeddings, check_same_dim, checked_norms
from .errors import EmbeddingError, ParameterError
from .params import RULES

#: bytes one block of query x corpus scores may take
_SCORE_BLOCK_BYTES = 128 * 2**20


@dataclass(frozen=True)
class SearchResult:
    """Top-k hits for each query: ``ids[q, r]`` is the corpus row ranked ``r + 1`` for query q."""

    ids: np.ndarray
    scores: np.ndarray
    """Cosine similarity of each hit, best first."""

    @property
    def ranks(self) -> np.ndarray:
        return np.broadcast_to(np.arange(1, self.ids.shape[1] + 1), self.ids.shape)


def _unit(X, name: str) -> np.ndarray:
    X = as_embeddings(X, name)
    return (X / checked_norms(X, name)[:, None]).astype(np.float32)


def _check_k(k: int, n: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ParameterError(f"k must be a positive integer, got {k!r}.")
    return min(int(k), n)


class ExactIndex:
    """Exact cosine search: numpy blocks on CPU, torch on CUDA when present (or asked for)."""

    def __init__(self, X, *, device: str | None = "cpu"):
        from .depth import resolve_device

        self.vectors = _unit(X, "corpus")
        self.device = resolve_device(device)
        self._gpu = None
        if self.device != "cpu":
            import torch

            self._gpu = torch.as_tensor(self.vectors, device=self.device)

    def __len__(self) -> int:
        return self.vectors.shape[0]

    def search(self, queries, k: int = 10, *, exclude=None) -> SearchResult:
        """Top-k corpus rows for each query row. ``exclude`` (one row id per query, or None)
        drops that row from its query's hits: "more like this" should not return itself."""
        Q = _unit(np.atleast_2d(queries), "queries")
        check_same_dim(Q, self.vectors, "queries", "corpus")
        kk = _check_k(k + (exclude is not None), len(self))
        if self._gpu is not None:
            ids, scores = self._search_torch(Q, kk)
        else:
            ids, scores = self._search_numpy(Q, kk)
        if exclude is not None:
            ids, scores = _drop(ids, scores, np.asarray(exclude).reshape(-1), min(k, len(self) - 1))
        return SearchResult(ids, scores)

    def _search_numpy(self, Q, k):
        n = len(self)
        rows = max(k, _SCORE_BLOCK_BYTES // (4 * max(1, Q.shape[0])))
        best_ids = np.empty((Q.shape[0], 0), dtype=np.int64)
        best = np.empty((Q.shape[0], 0), dtype=np.float32)
        for start in range(0, n, rows):
            block = Q @ self.vectors[start : start + rows].T
            kb = min(k, block.shape[1])
            part = np.argpartition(-block, kb - 1, axis=1)[:, :kb]
            best = np.concatenate([best, np.take_along_axis(block, part, axis=1)], axis=1)
            best_ids = np.concatenate([best_ids, part + start], axis=1)
            if best.shape[1] > k:
                keep = np.argpartition(-best, k - 1, axis=1)[:, :k]
                best = np.take_along_axis(best, keep, axis=1)
                best_ids = np.take_along_axis(best_ids, keep, axis=1)
        # best first; ties broken by lower row id, so results are deterministic
        order = np.lexsort((best_ids, -best), axis=1)
        return np.take_along_axis(best_ids, order, axis=1), np.take_along_axis(best, order, axis=1)

    def _search_torch(self, Q, k):
        import torch

        with torch.inference_mode():
            scores, ids = torch.topk(torch.as_tensor(Q, device=self.device) @ self._gpu.T, k, dim=1)
        return ids.cpu().numpy().astype(np.int64), scores.cpu().numpy()


def _drop(ids, scores, exclude, k):
    keep = ids != exclude[:, None]
    # every row keeps its first k hits that are not the excluded id
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)


class ApproxIndex:
    """Approximate cosine search with a FAISS HNSW graph (``pip install faiss-cpu``): build once,
    then a query costs ~log n instead of n. Check its quality with :func:`recall_at_k`."""

    def __init__(self, X, *, m: int = 32, ef_construction: int = 200, ef_search: int = 128):
        try:
            import faiss
        except ImportError:
            raise ImportError(
                "The approximate index needs FAISS: pip install faiss-cpu (or the 'ann' extra). "
                "Exact search works without it."
            ) from None
        t0 = time.perf_counter()
        vectors = _unit(X, "corpus")
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = ef_construction
        self.index.hnsw.efSearch = ef_search
        self.index.add(vectors)
        self.dim = vectors.shape[1]
        self.build_seconds = time.perf_counter() - t0

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries, k: int = 10) -> SearchResult:
        Q = _unit(np.atleast_2d(queries), "queries")
        if Q.shape[1] != self.dim:
            raise EmbeddingError(f"queries have dimension {Q.shape[1]} but the index has {self.dim}.")
        scores, ids = self.index.search(Q, _check_k(k, len(self)))
        return SearchResult(ids.astype(np.int64), scores)


def recall_at_k(approx_ids, exact_ids) -> float:
    """Mean fraction of the exact top-k that the approximate top-k found."""
    a, e = np.asarray(approx_ids), np.asarray(exact_ids)
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, e)]))


def search_text(embedder, index, query: str | list[str], k: int = 10) -> SearchResult:
    """Embed ``query`` with the corpus's own model and search ``index``."""
    queries = [query] if isinstance(query, str) else list(query)
    if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
        raise ParameterError("Type a query: an empty query has nothing to search for.")
    k = RULES["retrieval"]["k"].check(k)  # range: analytics/params.py
    return index.search(embedder.encode(queries), k)


def more_like_this(index: ExactIndex, row: int, k: int = 10) -> SearchResult:
    """The k texts nearest corpus row ``row``, itself left out."""
    if not 0 <= int(row) < len(index):
        raise ParameterError(f"row must be in 0..{len(index) - 1}, got {row}.")
    k = RULES["retrieval"]["k"].check(k)
    return index.search(index.vectors[int(row)], k, exclude=[int(row)])
