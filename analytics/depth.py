"""TTE depth (Seegmiller & Preum, EMNLP 2023): how representative each text is of a corpus.

``D(x, F) = 2 - E[δ(x, H)]``, H uniform over F, for a distance δ bounded by 2. High depth means
central and representative (the deepest text is the corpus median); low depth means outlier.

Cosine depth has a closed form: with unit rows and ``s`` the sum of F's rows, the mean cosine
distance from x to F is ``1 - x·s/n`` (``1 - (x·s - 1)/(n - 1)`` when x is in F and left out),
so depth for a million vectors is one matrix-vector product. Chord distance
``sqrt(2 - 2 cos)`` has no such form; it is computed over all pairs in row blocks of bounded
memory, with torch on a GPU when one is present.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_embeddings, check_distance, check_same_dim, checked_norms
from .errors import ParameterError

#: rows summed in float32 before the running sum (float64) takes them, in the closed form
_SUM_BLOCK = 1024
#: bytes one block of the pairwise chord matrix may take
_CHORD_BLOCK_BYTES = 64 * 2**20


def tte_depth(
    X,
    reference=None,
    distance: str = "cosine",
    *,
    device: str | None = None,
) -> np.ndarray:
    """Depth of each row of ``X`` with respect to ``X`` itself or to ``reference``.

    Parameters
    ----------
    X : array of shape (n, d)
        Embeddings, one row per text. Rows need not be unit length (they are normalised, as
        the reference implementation's cosine does pair by pair); all-zero rows are an error.
    reference : array of shape (m, d), optional
        The corpus F to measure against. When omitted, depth is within ``X`` and each row is
        left out of its own mean (divide by n - 1).
    distance : {"cosine", "chord"}
        ``1 - cos`` or ``sqrt(2 - 2 cos)``; both are bounded by 2, so depth lies in [0, 2].
    device : str, optional
        Chord distance only: ``"cpu"`` (numpy), ``"cuda"``/``"mps"`` (torch). Default: CUDA when
        torch sees one, else CPU. Cosine depth is one memory-bound pass and always runs on CPU.

    Returns
    -------
    depths : float64 array of shape (n,)
    """
    check_distance(distance)
    X = as_embeddings(X, "X", min_rows=2 if reference is None else 1)
    x_norms = checked_norms(X, "X")
    if reference is None:
        R, r_norms = X, x_norms
    else:
        R = as_embeddings(reference, "reference", min_rows=1)
        check_same_dim(X, R, "X", "reference")
        r_norms = checked_norms(R, "reference")
    self_depth = reference is None
    m = R.shape[0]

    if distance == "cosine":
        s = _unit_row_sum(R, r_norms)
        dots = _unit_dots(X, x_norms, s)  # x·s for unit x: sum of cosines to every row of F
        if self_depth:
            # leave x out: its cosine with itself is exactly 1
            return 1.0 + (dots - 1.0) / (m - 1)
        return 1.0 + dots / m

    sums = chord_distance_sums(X, None if self_depth else R, device=device)
    return 2.0 - sums / ((m - 1) if self_depth else m)


def _blocks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _unit_row_sum(R: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """Sum of the unit-normalised rows of R as float64.

    float32 input: BLAS sums ``_SUM_BLOCK`` rows at a time in float32 and the blocks are added
    in float64, so the sum over n rows never accumulates in float32 beyond one block. (Casting
    all of R to float64 would cost 2.5x the time for a difference of ~1e-10 in depth.)
    """
    inv = 1.0 / norms
    if R.dtype == np.float64:
        return R.T @ inv
    inv32 = inv.astype(np.float32)
    s = np.zeros(R.shape[1])
    for b in _blocks(R.shape[0], _SUM_BLOCK):
        s += R[b].T @ inv32[b]
    return s


def _unit_dots(X: np.ndarray, norms: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``(x / |x|) · s`` for every row x, as float64 (one BLAS pass in X's precision)."""
    return (X @ s.astype(X.dtype)).astype(np.float64) / norms


def resolve_device(device: str | None = None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others unchanged."""
    if device not in (None, "auto"):
        return str(device)
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def chord_distance_sums(
    X: np.ndarray,
    R: np.ndarray | None = None,
    *,
    device: str | None = None,
    backend: str | None = None,
    block_bytes: int = _CHORD_BLOCK_BYTES,
) -> np.ndarray:
    """For each row x of X, the sum of chord distances to every row of R (to the other rows of X
    when R is None). Rows are normalised first; memory stays within ``block_bytes`` per block.

    ``backend`` is ``"numpy"`` or ``"torch"``; by default torch is used only off the CPU, so
    tests can run the torch path on CPU by asking for it.
    """
    X = as_embeddings(X, "X")
    exclude_self = R is None
    R = X if R is None else as_embeddings(R, "reference")
    check_same_dim(X, R, "X", "reference")
    dev = resolve_device(device)
    backend = backend or ("numpy" if dev == "cpu" else "torch")
    rows = max(1, block_bytes // (8 * R.shape[0]))
    if backend == "torch":
        return _chord_sums_torch(X, R, exclude_self, dev, rows)
    Xu = X / checked_norms(X, "X")[:, None]
    Ru = Xu if exclude_self else R / checked_norms(R, "reference")[:, None]
    Xu = Xu.astype(np.float64, copy=False)
    Ru = Ru.astype(np.float64, copy=False)
    out = np.empty(X.shape[0])
    for b in _blocks(X.shape[0], rows):
        block = Xu[b] @ Ru.T
        block *= -2.0
        block += 2.0
        np.maximum(block, 0.0, out=block)
        np.sqrt(block, out=block)
        if exclude_self:  # the diagonal is 0 exactly, not sqrt of rounding error
            idx = np.arange(b.start, b.stop)
            block[idx - b.start, idx] = 0.0
        out[b] = block.sum(axis=1)
    return out


def _chord_sums_torch(X, R, exclude_self: bool, device: str, rows: int) -> np.ndarray:
    import torch

    dtype = torch.float64 if X.dtype == np.float64 else torch.float32
    Xt = torch.nn.functional.normalize(torch.as_tensor(X, device=device, dtype=dtype), dim=1)
    Rt = (
        Xt
        if exclude_self
        else torch.nn.functional.normalize(torch.as_tensor(R, device=device, dtype=dtype), dim=1)
    )
    out = torch.empty(X.shape[0], dtype=torch.float64, device=device)
    with torch.inference_mode():
        for b in _blocks(X.shape[0], rows):
            block = (2.0 - 2.0 * (Xt[b] @ Rt.T)).clamp_(min=0.0).sqrt_()
            if exclude_self:
                idx = torch.arange(b.start, b.stop, device=device)
                block[idx - b.start, idx] = 0.0
            out[b] = block.sum(dim=1, dtype=torch.float64)
    return out.cpu().numpy()


# --- ranking helpers: what an analyst reads off a depth vector -------------------------------


def depth_order(depths) -> np.ndarray:
    """Indices from most representative to most outlying (ties keep input order)."""
    return np.argsort(-np.asarray(depths, dtype=np.float64), kind="stable")


def median_index(depths) -> int:
    """Index of the deepest text: the corpus's depth median."""
    return int(depth_order(depths)[0])


def most_central(depths, k: int = 10) -> np.ndarray:
    """Indices of the ``k`` deepest texts, deepest first."""
    return depth_order(depths)[: _check_k(k)]


def most_outlying(depths, k: int = 10) -> np.ndarray:
    """Indices of the ``k`` shallowest texts, most outlying first."""
    return np.argsort(np.asarray(depths, dtype=np.float64), kind="stable")[: _check_k(k)]


def depth_percentile(depths) -> np.ndarray:
    """Percent of the corpus at or below each text's depth (100 = the median, near 0 = outlier)."""
    d = np.asarray(depths, dtype=np.float64)
    return 100.0 * np.searchsorted(np.sort(d), d, side="right") / d.size


def _check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 0:
        raise ParameterError(f"k must be a non-negative integer, got {k!r}.")
    return int(k)
