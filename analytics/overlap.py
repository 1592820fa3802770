"""Do corpora F and G share texts? A check to run before a shift test.

A text in both corpora has the same embedding on both sides, and a near-copy nearly so: each
shared pair pulls the two depth distributions together, so every two-sample test (depth,
MMD, classifier) loses power and its p-value is conservative. A paired design (G = edited
copies of F) is the extreme case. The check finds three kinds of overlap, each text counted
under the first rule it meets:

1. **identical**: the same text on both sides, character for character (the store's key, the
   sha256 of the text, is equal exactly then, and so are the embeddings);
2. **same opening**: the same first ``opening_chars`` (50) characters once normalised (Unicode
   NFKC, case-folded, every run of punctuation, symbols and whitespace made one space), e.g.
   the same story with another ending, a changed byline, or a templated text;
3. **near-duplicate embedding** (only when the vectors are given): cosine similarity at least
   ``min_similarity`` (0.98) with some text of the other corpus, i.e. the same text up to
   formatting or a reworded headline (0.985-0.99 on AG News). Two wires' reports of one event
   are different texts and score lower (0.93-0.97 there), so they are not flagged.

What to do, when the check warns: drop the overlapping texts from one side (test F against
``G[report.disjoint_g]``: "is the new material different from F?"), or test on the disjoint
parts of both (``F[report.disjoint_f]`` against ``G[report.disjoint_g]``).

>>> from analytics.overlap import check_overlap
>>> report = check_overlap(texts_f, texts_g, F, G)   # vectors optional
>>> if not report.ok:
...     print(report.warning())
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from ._validate import as_embeddings, check_same_dim, checked_norms
from .errors import ParameterError
from .params import RULES

#: embedding comparisons (F rows x G rows) done in full; past this, G rows are a seeded sample
MAX_COMPARISONS = 1_000_000_000
#: G rows compared with all of F at once (bounds the similarity block to ~64 MiB at 16k rows of F)
_BLOCK_BYTES = 64 * 2**20

_SEPARATORS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class OverlapReport:
    """What :func:`check_overlap` found. Masks are per row of F (``*_f``) or G (``*_g``); each
    overlapping text is counted under the first rule it meets (identical, then same opening,
    then near-duplicate embedding)."""

    n_f: int
    n_g: int
    identical_f: np.ndarray = field(repr=False)
    identical_g: np.ndarray = field(repr=False)
    opening_f: np.ndarray = field(repr=False)
    opening_g: np.ndarray = field(repr=False)
    near_f: np.ndarray = field(repr=False)
    """All False when no vectors were given (see ``compared_g``)."""
    near_g: np.ndarray = field(repr=False)
    match_g: np.ndarray = field(repr=False)
    """For each G row, an F row it overlaps with (-1: none), for showing pairs."""
    opening_chars: int = 50
    min_similarity: float = 0.98
    compared_g: int = 0
    """G rows whose embeddings were compared with all of F: ``n_g``, fewer when the
    comparison was sampled (past ``max_comparisons``), 0 without vectors."""

    @property
    def overlap_f(self) -> np.ndarray:
        return self.identical_f | self.opening_f | self.near_f

    @property
    def overlap_g(self) -> np.ndarray:
        return self.identical_g | self.opening_g | self.near_g

    @property
    def n_overlap_f(self) -> int:
        return int(self.overlap_f.sum())

    @property
    def n_overlap_g(self) -> int:
        return int(self.overlap_g.sum())

    @property
    def ok(self) -> bool:
        """True when no text of either corpus overlaps the other."""
        return not (self.overlap_f.any() or self.overlap_g.any())

    @property
    def disjoint_f(self) -> np.ndarray:
        """Rows of F that overlap nothing in G."""
        return np.flatnonzero(~self.overlap_f)

    @property
    def disjoint_g(self) -> np.ndarray:
        """Rows of G that overlap nothing in F."""
        return np.flatnonzero(~self.overlap_g)

    def pairs(self, limit: int | None = 10) -> list[tuple[int, int, str]]:
        """Up to ``limit`` ``(row of F, row of G, rule)`` examples, in G's order; rule is
        ``"identical"``, ``"same opening"`` or ``"near-duplicate embedding"``."""
        rows = np.flatnonzero(self.match_g >= 0)[:limit]
        return [(int(self.match_g[j]), int(j), self._rule(j)) for j in rows]

    def _rule(self, j: int) -> str:
        if self.identical_g[j]:
            return "identical"
        return "same opening" if self.opening_g[j] else "near-duplicate embedding"

    def summary(self) -> str:
        """One line: the counts by rule, or that the corpora are disjoint."""
        if self.ok:
            how = "identical texts, same openings" + (
                f", embeddings with cosine ≥ {self.min_similarity:g}" if self.compared_g else ""
            )
            return f"F ({self.n_f:,}) and G ({self.n_g:,}) share no texts ({how} checked)."
        parts = [
            f"{int(self.identical_g.sum()):,} identical",
            f"{int(self.opening_g.sum()):,} with the same first {self.opening_chars} characters",
        ]
        if self.compared_g:
            sampled = "" if self.compared_g == self.n_g else f" (of {self.compared_g:,} G texts compared)"
            parts.append(
                f"{int(self.near_g.sum()):,} near-duplicate (cosine ≥ {self.min_similarity:g}){sampled}"
            )
        return (
            f"{self.n_overlap_g:,} of {self.n_g:,} G texts overlap F ({', '.join(parts)}); "
            f"{self.n_overlap_f:,} of {self.n_f:,} F texts overlap G."
        )

    def warning(self) -> str | None:
        """What to tell the analyst (how many, why it matters, what to do), or None when the
        corpora are disjoint. Plain text, for a page, the CLI's stderr or a report."""
        if self.ok:
            return None
        keep_f, keep_g = self.n_f - self.n_overlap_f, self.n_g - self.n_overlap_g
        return (
            f"F and G overlap: {self.summary()} Shared texts have the same depth on both sides, "
            "so every shift test is conservative (less power, p too large). Drop the "
            f"overlapping texts from one side (test F against the {keep_g:,} G texts that "
            f"overlap nothing), or test on the disjoint parts ({keep_f:,} F texts against "
            f"{keep_g:,} G texts)."
        )


def normalised_opening(text: str, chars: int = 50) -> str:
    """The first ``chars`` characters of ``text`` after NFKC, case-folding, and turning every
    run of non-word characters into one space (stripped at both ends)."""
    norm = _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", str(text)).casefold()).strip()
    return norm[:chars]


def check_overlap(
    texts_f,
    texts_g,
    F=None,
    G=None,
    *,
    opening_chars: int = RULES["overlap"]["opening_chars"].default,
    min_similarity: float = RULES["overlap"]["min_similarity"].default,
    max_comparisons: int = MAX_COMPARISONS,
    random_state: int = 0,
) -> OverlapReport:
    """Which texts of corpora F and G overlap: identical, same opening, or (with the vectors
    ``F`` and ``G``, rows aligned with the texts) near-duplicate embeddings. See the module's
    docstring for the rules and what to do.

    The embedding rule compares every G row with every F row in blocks, O(n_f·n_g·d); past
    ``max_comparisons`` pairs (1e9: about 15 s on two cores) it compares a sample of G rows
    (seeded by ``random_state``) with all of F; the report's ``compared_g`` says how many, and
    ``near_*`` covers that sample only. The text rules always cover every text.
    """
    rules = RULES["overlap"]  # ranges and defaults: analytics/params.py
    opening_chars = rules["opening_chars"].check(opening_chars)
    min_similarity = rules["min_similarity"].check(min_similarity)
    if (
        isinstance(max_comparisons, bool)
        or not isinstance(max_comparisons, (int, np.integer))
        or max_comparisons < 1
    ):
        raise ParameterError(
            f"max_comparisons must be a positive integer, got {max_comparisons!r}; leave it out for "
            f"the default ({MAX_COMPARISONS:,})."
        )
    texts_f, texts_g = _texts(texts_f, "texts_f"), _texts(texts_g, "texts_g")
    n_f, n_g = len(texts_f), len(texts_g)
    if (F is None) != (G is None):
        raise ParameterError(
            "Pass the vectors of both corpora (F and G) or of neither; the embedding rule "
            "compares one with the other."
        )

    match_g = np.full(n_g, -1, dtype=np.int64)
    identical_f, identical_g = _same_keys(texts_f, texts_g, lambda t: t, match_g)
    opening_f, opening_g = _same_keys(
        texts_f, texts_g, lambda t: normalised_opening(t, opening_chars) or None, match_g
    )
    opening_f &= ~identical_f
    opening_g &= ~identical_g

    near_f, near_g, compared = np.zeros(n_f, dtype=bool), np.zeros(n_g, dtype=bool), 0
    if F is not None:
        Uf, Ug = _unit(F, "F", n_f, "texts_f"), _unit(G, "G", n_g, "texts_g")
        check_same_dim(Uf, Ug, "F", "G")
        rows_g = np.arange(n_g)
        if n_f * n_g > max_comparisons:
            m = max(1, max_comparisons // max(n_f, 1))
            rows_g = np.sort(np.random.default_rng(random_state).choice(n_g, m, replace=False))
        compared = rows_g.size
        near_f, near_g = _near_pairs(Uf, Ug, rows_g, min_similarity, match_g)
        near_f &= ~(identical_f | opening_f)
        near_g &= ~(identical_g | opening_g)

    return OverlapReport(
        n_f=n_f,
        n_g=n_g,
        identical_f=identical_f,
        identical_g=identical_g,
        opening_f=opening_f,
        opening_g=opening_g,
        near_f=near_f,
        near_g=near_g,
        match_g=match_g,
        opening_chars=opening_chars,
        min_similarity=min_similarity,
        compared_g=compared,
    )


def _texts(texts, name: str) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise ParameterError(f"{name} must be a list of texts, not one string; wrap it: [{name}].")
    try:
        texts = list(texts)
    except TypeError:
        raise ParameterError(f"{name} must be a list of texts, got {type(texts).__name__}.") from None
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ParameterError(
            f"{name} must hold strings; row {bad} is {type(texts[bad]).__name__}. Convert the "
            "texts with str(), or drop the empty rows, first."
        )
    return texts


def _same_keys(texts_f, texts_g, key, match_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the F and G texts whose ``key`` (None: no key) occurs on the other side;
    fills ``match_g`` where it is still -1 with the first F row of that key."""
    keys_f = [key(t) for t in texts_f]
    keys_g = [key(t) for t in texts_g]
    first_f: dict[str, int] = {}
    for i, k in enumerate(keys_f):
        if k is not None:
            first_f.setdefault(k, i)
    set_g = {k for k in keys_g if k is not None}
    in_f = np.fromiter((k is not None and k in set_g for k in keys_f), dtype=bool, count=len(keys_f))
    in_g = np.zeros(len(keys_g), dtype=bool)
    for j, k in enumerate(keys_g):
        i = first_f.get(k) if k is not None else None
        if i is not None:
            in_g[j] = True
            if match_g[j] < 0:
                match_g[j] = i
    return in_f, in_g


def _unit(X, name: str, n: int, texts_name: str) -> np.ndarray:
    X = as_embeddings(X, name, why="one vector per text")
    if X.shape[0] != n:
        raise ParameterError(
            f"{name} has {X.shape[0]:,} rows but {texts_name} has {n:,} texts; pass the vectors "
            "of those texts, row for row."
        )
    return X / checked_norms(X, name)[:, None].astype(X.dtype)


def _near_pairs(Uf, Ug, rows_g, min_similarity: float, match_g: np.ndarray):
    """Masks of F and G rows with a cosine ≥ ``min_similarity`` across (G: ``rows_g`` only);
    each such G row's most similar F row goes into ``match_g`` where it is still -1."""
    near_f = np.zeros(Uf.shape[0], dtype=bool)
    near_g = np.zeros(Ug.shape[0], dtype=bool)
    step = max(1, _BLOCK_BYTES // (4 * max(Uf.shape[0], 1)))
    for start in range(0, rows_g.size, step):
        rows = rows_g[start : start + step]
        S = Ug[rows] @ Uf.T
        best = S.argmax(axis=1)
        hit = S[np.arange(rows.size), best] >= min_similarity
        near_g[rows] = hit
        near_f |= (S >= min_similarity).any(axis=0)
        unset = hit & (match_g[rows] < 0)
        match_g[rows[unset]] = best[unset]
    return near_f, near_g


__all__ = ["MAX_COMPARISONS", "OverlapReport", "check_overlap", "normalised_opening"]
