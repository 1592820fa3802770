"""Finding the texts nearest a query: exact cosine top-k over a corpus, an optional
approximate (FAISS HNSW) index for large corpora, with its recall measured against exact, a
BM25 word index, and a hybrid that fuses dense and BM25 hits.

The vector indexes normalise the corpus once, so a search is a matrix product plus a partial
sort. The exact search walks the corpus in row blocks, so memory stays bounded however many
queries come at once.

Why BM25 beside embeddings: a single-vector embedder cannot rank every combination of documents
first (Weller et al. 2025, "On the theoretical limitations of embedding-based retrieval"). On a
stress set where each query names one rare attribute shared by two documents, the bundled
model finds few of them where word matching finds nearly all (BENCHMARKS.md). The hybrid keeps
both: meaning from the embedding, exact words from BM25.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ._validate import as_embeddings, check_same_dim, checked_norms
from .errors import CorpusError, EmbeddingError, ParameterError
from .params import RULES, resolve

#: bytes one block of query x corpus scores may take
_SCORE_BLOCK_BYTES = 128 * 2**20


@dataclass(frozen=True)
class SearchResult:
    """Top-k hits for each query: ``ids[q, r]`` is the corpus row ranked ``r + 1`` for query q."""

    ids: np.ndarray
    scores: np.ndarray
    """Each hit's score, best first: cosine similarity (dense), BM25 score, or fused score."""

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


_WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """The words BM25 matches: runs of unicode word characters (letters, digits, underscore) of
    the lowercased text. No stemming, no stop words: ``"Who likes Quokkas?"`` gives
    ``["who", "likes", "quokkas"]`` and ``"don't"`` gives ``["don", "t"]``."""
    return _WORD.findall(text.lower())


def _texts(texts, name: str) -> list[str]:
    if isinstance(texts, str):
        raise CorpusError(f"{name} must be a list of texts, not one string.")
    texts = list(texts)
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise CorpusError(f"{name}[{bad}] is {type(texts[bad]).__name__}, not text; pass strings.")
    return texts


def _query_texts(query) -> list[str]:
    queries = [query] if isinstance(query, str) else list(query)
    if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
        raise ParameterError("Type a query: an empty query has nothing to search for.")
    return queries


def _top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row, best first; ties go to the lower column, exactly (BM25
    gives many equal scores, often 0, so the cut must not pick among them at random)."""
    k = min(k, scores.shape[1])
    ids = np.empty((scores.shape[0], k), dtype=np.int64)
    for r, row in enumerate(scores):
        kth = np.partition(row, row.size - k)[row.size - k]  # the k-th best score
        cand = np.flatnonzero(row >= kth)
        ids[r] = cand[np.lexsort((cand, -row[cand]))[:k]]
    return ids, np.take_along_axis(scores, ids, axis=1)


class BM25Index:
    """Okapi BM25 over the words of each text (:func:`tokenize`): texts that share the query's
    rare words rank first. Scores, for each word occurrence t of the query::

        idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen))
        idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))

    with tf the word's count in the text, len the text's word count, avglen the corpus mean, N
    the texts, df the texts holding the word (Lucene's idf, never negative). A word repeated in
    the query counts each time. ``k1`` and ``b``: ``RULES["bm25"]`` (analytics/params.py).
    The index is a sparse word x text matrix of those weights, so a search is a sparse product.
    """

    def __init__(self, texts, *, k1: float = 1.2, b: float = 0.75):
        from scipy import sparse

        params = resolve("bm25", {"k1": k1, "b": b})
        self.k1, self.b = params["k1"], params["b"]
        texts = _texts(texts, "texts")
        if not texts:
            raise CorpusError("BM25 needs at least one text to index.")
        self.vocabulary: dict[str, int] = {}
        rows, cols, tf = [], [], []
        lengths = np.zeros(len(texts))
        for i, text in enumerate(texts):
            counts = Counter(tokenize(text))
            lengths[i] = sum(counts.values())
            for word, count in counts.items():
                cols.append(self.vocabulary.setdefault(word, len(self.vocabulary)))
                rows.append(i)
                tf.append(count)
        rows, cols, tf = np.asarray(rows, np.int64), np.asarray(cols, np.int64), np.asarray(tf, float)
        n = len(texts)
        df = np.bincount(cols, minlength=len(self.vocabulary))
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avglen = max(lengths.mean(), 1e-12)
        norm = self.k1 * (1 - self.b + self.b * lengths[rows] / avglen)
        weights = self.idf[cols] * tf * (self.k1 + 1) / (tf + norm)
        # word x text, so that query-word counts times this matrix are the texts' scores
        self._weights = sparse.csr_matrix((weights, (cols, rows)), shape=(len(self.vocabulary), n))
        self._n = n

    def __len__(self) -> int:
        return self._n

    def query_counts(self, queries):
        """Sparse (queries x vocabulary) counts of each query's words; unknown words drop out."""
        from scipy import sparse

        rows, cols = [], []
        for r, text in enumerate(queries):
            for word in tokenize(text):
                if word in self.vocabulary:
                    rows.append(r)
                    cols.append(self.vocabulary[word])
        data = np.ones(len(rows))
        return sparse.csr_matrix((data, (rows, cols)), shape=(len(queries), len(self.vocabulary)))

    def scores(self, queries) -> np.ndarray:
        """(queries x texts) BM25 scores, float64: 0 where a text shares no word with the query."""
        return (self.query_counts(_texts(queries, "queries")) @ self._weights).toarray()

    def search(self, queries, k: int = 10) -> SearchResult:
        """Top-k texts for each query text (a string or a list). Every row has k hits (at most
        the corpus size), so results line up with :class:`ExactIndex`'s; hits that share no
        word with the query score 0 and come last, in corpus order."""
        queries = [queries] if isinstance(queries, str) else _texts(queries, "queries")
        k = _check_k(k, len(self))
        if not queries:
            raise ParameterError("Pass at least one query.")
        block = max(1, _SCORE_BLOCK_BYTES // (8 * len(self)))
        parts = [_top_k_rows(self.scores(queries[i : i + block]), k) for i in range(0, len(queries), block)]
        return SearchResult(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


class HybridIndex:
    """Dense and BM25 search fused: each method's top ``candidates`` hits are pooled and
    re-scored, so a text found by either can rank first.

    ``fusion="convex"`` (default): ``weight * dense + (1 - weight) * bm25`` of normalised scores.
    Cosine is min-max scaled over the dense candidates; BM25 is divided by the query's best
    BM25 score, keeping its natural zero (no shared word), so a text that matches a rare word
    keeps its weight even when only two texts match (Bruch et al. 2023, "An analysis of fusion
    functions for hybrid retrieval"). ``fusion="rrf"``: reciprocal rank fusion,
    ``sum 1 / (rrf_k + rank)`` over the lists holding the text (Cormack et al. 2009). RRF ignores
    how far apart the scores are, so a confident BM25 match and the dense list's arbitrary first
    hit tie; convex keeps that difference. Either way BM25 hits that share no word with the
    query are left out of the pool, and ties go to the lower row. Parameters:
    ``RULES["hybrid"]``.
    """

    def __init__(
        self,
        dense,
        lexical: BM25Index,
        *,
        fusion: str = "convex",
        weight: float = 0.5,
        rrf_k: int = 60,
        candidates: int = 100,
    ):
        params = resolve(
            "hybrid", {"fusion": fusion, "weight": weight, "rrf_k": rrf_k, "candidates": candidates}
        )
        self.fusion, self.weight = params["fusion"], params["weight"]
        self.rrf_k, self.candidates = params["rrf_k"], params["candidates"]
        if len(dense) != len(lexical):
            raise ParameterError(
                f"The dense index holds {len(dense)} texts and the BM25 index {len(lexical)}; "
                "build both from the same corpus."
            )
        self.dense, self.lexical = dense, lexical

    def __len__(self) -> int:
        return len(self.dense)

    def search(self, queries, k: int = 10, *, query_vectors) -> SearchResult:
        """Top-k texts for each query: ``queries`` are the texts (for BM25), ``query_vectors``
        their embeddings by the corpus's model (for dense search), one row per query."""
        texts = [queries] if isinstance(queries, str) else _texts(queries, "queries")
        k = _check_k(k, len(self))
        depth = min(max(k, self.candidates), len(self))
        dense = self.dense.search(query_vectors, depth)
        if dense.ids.shape[0] != len(texts):
            raise ParameterError(f"Got {len(texts)} query texts but {dense.ids.shape[0]} query vectors.")
        lexical = self.lexical.search(texts, depth)
        rows = [
            self._fuse(dense.ids[q], dense.scores[q], lexical.ids[q], lexical.scores[q], k)
            for q in range(len(texts))
        ]
        return SearchResult(np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]))

    def _fuse(self, d_ids, d_scores, l_ids, l_scores, k):
        matched = l_scores > 0  # a BM25 "hit" that shares no word is no evidence
        l_ids, l_scores = l_ids[matched], l_scores[matched]
        if self.fusion == "rrf":
            d_part = 1.0 / (self.rrf_k + np.arange(1, d_ids.size + 1))
            l_part = 1.0 / (self.rrf_k + np.arange(1, l_ids.size + 1))
        else:
            low, high = float(d_scores.min()), float(d_scores.max())
            scaled = (d_scores - low) / (high - low) if high > low else np.ones(d_ids.size)
            d_part = self.weight * scaled
            l_part = (1 - self.weight) * (l_scores / l_scores.max() if l_ids.size else l_scores)
        ids = np.concatenate([d_ids, l_ids])
        pool, where = np.unique(ids, return_inverse=True)
        fused = np.bincount(where, weights=np.concatenate([d_part, l_part]), minlength=pool.size)
        order = np.lexsort((pool, -fused))[:k]
        return pool[order], fused[order]


def build_index(method: str = "dense", *, vectors=None, texts=None, device: str | None = "cpu", **params):
    """The index for a retrieval ``method`` (``RULES["retrieval"]["method"]``): ``"dense"``
    needs the corpus's ``vectors``, ``"bm25"`` its ``texts``, ``"hybrid"`` both. ``params``
    are BM25's (k1, b) and the hybrid's (fusion, weight, rrf_k, candidates)."""
    method = RULES["retrieval"]["method"].check(method)
    needs = {"dense": ("vectors",), "bm25": ("texts",), "hybrid": ("vectors", "texts")}[method]
    given = {"vectors": vectors, "texts": texts}
    missing = [n for n in needs if given[n] is None]
    if missing:
        raise ParameterError(f"Retrieval method {method!r} needs the corpus's {' and '.join(missing)}.")
    takes = {"dense": [], "bm25": [*RULES["bm25"]], "hybrid": [*RULES["bm25"], *RULES["hybrid"]]}[method]
    unknown = sorted(set(params) - set(takes))
    if unknown:
        raise ParameterError(
            f"Retrieval method {method!r} has no parameter {', '.join(unknown)} "
            f"(it takes {', '.join(takes) or 'none'})."
        )
    bm25 = {n: v for n, v in params.items() if n in RULES["bm25"]}
    fusion = {n: v for n, v in params.items() if n in RULES["hybrid"]}
    if method == "dense":
        return ExactIndex(vectors, device=device)
    if method == "bm25":
        return BM25Index(texts, **bm25)
    return HybridIndex(ExactIndex(vectors, device=device), BM25Index(texts, **bm25), **fusion)


def recall_at_k(approx_ids, exact_ids) -> float:
    """Mean fraction of the exact top-k that the approximate top-k found."""
    a, e = np.asarray(approx_ids), np.asarray(exact_ids)
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, e)]))


def query_settings(key: str, device: str | None = "auto") -> tuple[str | None, str]:
    """(model, precision) to embed queries for vectors stored under cache ``key``: the corpus's
    own model and precision, except float16 vectors (made on a GPU) queried where there is no
    GPU, which get float32 (they agree to about 1e-4)."""
    from .embedding import model_source, resolve_model_device

    model, precision, _ = model_source(key)
    if precision == "float16" and not resolve_model_device(device).startswith("cuda"):
        precision = "float32"
    return model, precision


def search_text(embedder, index, query: str | list[str], k: int = 10) -> SearchResult:
    """Search ``index`` for one query text or a list: a vector index gets the queries embedded
    by ``embedder`` (the corpus's own model), a :class:`BM25Index` their words (``embedder``
    may be None), a :class:`HybridIndex` both."""
    queries = _query_texts(query)
    k = RULES["retrieval"]["k"].check(k)  # range: analytics/params.py
    if isinstance(index, BM25Index):
        return index.search(queries, k)
    if isinstance(index, HybridIndex):
        return index.search(queries, k, query_vectors=embedder.encode(queries))
    return index.search(embedder.encode(queries), k)


def more_like_this(index: ExactIndex, row: int, k: int = 10) -> SearchResult:
    """The k texts nearest corpus row ``row``, itself left out."""
    if not 0 <= int(row) < len(index):
        raise ParameterError(f"row must be in 0..{len(index) - 1}, got {row}.")
    k = RULES["retrieval"]["k"].check(k)
    return index.search(index.vectors[int(row)], k, exclude=[int(row)])


def row_norms(X) -> np.ndarray:
    """Each row's Euclidean norm as float64 (zero for an all-zero row), without a copy of ``X``:
    compute it once per corpus and pass it to :func:`row_neighbours`."""
    X = np.asarray(X)
    return np.sqrt(np.einsum("ij,ij->i", X, X).astype(np.float64, copy=False))


def row_neighbours(X, row: int, k: int = 10, *, norms=None) -> SearchResult:
    """The ``k`` rows of ``X`` most cosine-similar to row ``row``, itself left out, best first
    (ties: the lower row id first). One matrix-vector product over ``X`` as it is: no
    normalised copy and no index, so a map of a million texts can ask for one point's
    neighbours on a click. ``norms``: :func:`row_norms` of ``X``, computed once by the caller
    (else here, on every call). An all-zero row is nobody's neighbour and has none."""
    X = np.asarray(X)
    n = len(X)
    if not 0 <= int(row) < n:
        raise ParameterError(f"row must be in 0..{n - 1}, got {row}.")
    row = int(row)
    k = min(int(k), n - 1)
    if k < 1:
        return SearchResult(np.empty((1, 0), dtype=np.int64), np.empty((1, 0), dtype=np.float32))
    norms = row_norms(X) if norms is None else np.asarray(norms)
    if norms.shape != (n,):
        raise ParameterError(f"norms must hold one norm per row ({n:,}); got shape {norms.shape}.")
    if norms[row] == 0:
        return SearchResult(np.empty((1, 0), dtype=np.int64), np.empty((1, 0), dtype=np.float32))
    scores = (X @ X[row]).astype(np.float64, copy=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = scores / (norms * norms[row])
    scores[~(norms > 0)] = -np.inf
    scores[row] = -np.inf
    kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
    part = np.flatnonzero(scores >= kth) if np.isfinite(kth) else np.flatnonzero(np.isfinite(scores))
    ids = part[np.lexsort((part, -scores[part]))][:k].astype(np.int64)  # ties at the k-th too
    return SearchResult(ids[None, :], scores[ids].astype(np.float32)[None, :])
