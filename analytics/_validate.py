"""Checks at the library boundary: bad arrays fail here, with a message that says what to do."""

from __future__ import annotations

import numpy as np

from .errors import EmbeddingError, ParameterError

DISTANCES = ("cosine", "chord")


def as_embeddings(
    x, name: str = "X", *, min_rows: int = 1, why: str = "depth compares each text with the others"
) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32/float64 2-D array, or raise :class:`EmbeddingError`.

    float32 stays float32 (a million 384-d vectors should not silently double in size);
    every other real dtype becomes float64.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged nested lists land here
        raise EmbeddingError(
            f"{name} could not be read as a 2-D array of numbers ({exc}); "
            "pass one row per text, every row the same length."
        ) from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_
    ):
        raise EmbeddingError(
            f"{name} must hold real numbers, got dtype {arr.dtype}; "
            "pass a numeric array of shape (n_texts, dim)."
        )
    if arr.ndim != 2:
        hint = " (a single vector? use X.reshape(1, -1))" if arr.ndim == 1 else ""
        raise EmbeddingError(f"{name} must be 2-D (n_texts, dim), got shape {arr.shape}{hint}.")
    n, d = arr.shape
    if d == 0:
        raise EmbeddingError(f"{name} has rows of length 0; embeddings need at least one dimension.")
    if n < min_rows:
        raise EmbeddingError(f"{name} has {n} row(s); at least {min_rows} are needed ({why}).")
    if arr.dtype != np.float32:
        arr = arr.astype(np.float64)
    return np.ascontiguousarray(arr)


def checked_norms(x: np.ndarray, name: str = "X") -> np.ndarray:
    """Euclidean norm of each row as float64, raising on NaN/inf rows and on all-zero rows.

    One pass does both jobs: a row holding NaN or inf has a non-finite squared norm, so the
    array is never scanned separately (that scan alone costs 0.3 s at 1M x 384). A finite row
    whose squares overflow is recomputed with scaling.
    """
    norms = np.sqrt(np.einsum("ij,ij->i", x, x).astype(np.float64, copy=False))
    odd = np.flatnonzero(~np.isfinite(norms))
    if odd.size:
        rows = x[odd].astype(np.float64)
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            bad = odd[~finite]
            raise EmbeddingError(
                f"{name} has NaN or infinite values in {bad.size} row(s) "
                f"(first: {bad[:5].tolist()}); re-embed those texts or drop them."
            )
        scale = np.abs(rows).max(axis=1)
        norms[odd] = scale * np.linalg.norm(rows / scale[:, None], axis=1)
    zero = norms == 0
    if zero.any():
        bad = np.flatnonzero(zero)
        raise EmbeddingError(
            f"{name} has {bad.size} all-zero row(s) (first: {bad[:5].tolist()}); cosine and chord "
            "depth need a direction. Drop them or re-embed those texts."
        )
    return norms


def check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ParameterError(f"distance must be one of {DISTANCES}, got {distance!r}.")
    return distance


def check_same_dim(a: np.ndarray, b: np.ndarray, a_name: str, b_name: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise EmbeddingError(
            f"{a_name} has dimension {a.shape[1]} but {b_name} has {b.shape[1]}; "
            "both must be embedded with the same model."
        )
