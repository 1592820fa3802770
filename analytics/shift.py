"""Has corpus G shifted away from reference corpus F? The TTE depth rank test.

Depths of F's and G's texts are both taken with respect to F. If G is like F its texts are as
deep as F's own; if G has drifted they are shallower. ``Q = P[D(X,F) <= D(Y,F)]`` measures how
far (0.5: no shift, 0: every G text more outlying than every F text), and the one-sided
Wilcoxon rank-sum test of F depths > G depths says whether the difference is more than chance.

The asymptotic rank-sum p is only approximately calibrated, because F depths leave each text out
of its own mean while G depths do not; the permutation p (re-split the pooled texts, recompute
F-relative depths) is exact, and cheap thanks to the closed form for cosine depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata, ranksums

from ._validate import as_embeddings, check_distance, check_same_dim, checked_norms
from .depth import most_central, most_outlying, tte_depth
from .params import RULES

#: below this many texts on either side Q and the p-values are too noisy to lean on
SMALL_SAMPLE = 30
#: bytes one chunk of permutations may take (an N x chunk float64 matrix)
_PERM_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class ShiftResult:
    """Outcome of :func:`shift_test`. Depths are all with respect to F."""

    depths_f: np.ndarray = field(repr=False)
    depths_g: np.ndarray = field(repr=False)
    q: float
    """The paper's Q, P[D(X,F) <= D(Y,F)] over all (x, y) pairs: 0.5 no shift, 0 complete."""
    q_reference: float
    """``tte-depth``'s pooled-rank Q: ~0.5(N-1)/N under no shift, never near 0. For comparison."""
    w: float
    """Wilcoxon rank-sum statistic (scipy ``ranksums``, F depths greater than G depths)."""
    p: float
    """Asymptotic one-sided p of the rank-sum test; slightly liberal (see module docs)."""
    p_permutation: float | None
    """Permutation p, (b + 1) / (B + 1); ``None`` when ``permutations=0``."""
    permutations: int
    distance: str

    @property
    def n_f(self) -> int:
        return int(self.depths_f.size)

    @property
    def n_g(self) -> int:
        return int(self.depths_g.size)

    @property
    def small_sample(self) -> bool:
        """True when either corpus has fewer than ``SMALL_SAMPLE`` texts."""
        return min(self.n_f, self.n_g) < SMALL_SAMPLE

    def significant(self, alpha: float = 0.05) -> bool:
        """Decided by the permutation p when there is one (it is calibrated), else the asymptotic p."""
        alpha = RULES["shift"]["alpha"].check(alpha)
        p = self.p if self.p_permutation is None else self.p_permutation
        return p < alpha

    def summary(self, alpha: float = 0.05) -> str:
        """A plain-language verdict with the numbers behind it."""
        if self.significant(alpha):
            verdict = (
                f"G has shifted away from F: its texts are less typical of F than F's own texts "
                f"(Q = {self.q:.3f})."
            )
        elif self.q > 0.5:
            verdict = (
                f"No sign that G has shifted away from F; its texts are if anything more central "
                f"to F than F's own (Q = {self.q:.3f})."
            )
        else:
            verdict = f"No significant evidence that G has shifted away from F (Q = {self.q:.3f})."
        lines = [
            verdict,
            "Q is the chance that an F text is no deeper in F than a G text: 0.5 means G looks "
            "like F, 0 means every G text is more outlying than every F text.",
            f"One-sided Wilcoxon rank-sum: W = {self.w:.3f}, asymptotic p = {self.p:.3g} "
            "(approximate; slightly liberal).",
        ]
        if self.p_permutation is not None:
            floor = 1.0 / (self.permutations + 1)
            at_floor = " (the smallest possible)" if self.p_permutation <= floor else ""
            lines.append(
                f"Permutation p = {self.p_permutation:.3g} from {self.permutations} permutations"
                f"{at_floor}; this one is calibrated and decides the verdict at alpha = {alpha}."
            )
        lines.append(f"Sample sizes: F = {self.n_f:,} texts, G = {self.n_g:,} texts.")
        if self.small_sample:
            lines.append(f"Warning: fewer than {SMALL_SAMPLE} texts on one side; Q and p are unreliable.")
        return "\n".join(lines)

    def to_bytes(self) -> bytes:
        """The result as bytes for the store's result cache: arrays in an ``.npz``, the rest
        as JSON (no pickle, so a cached result can never run code when read)."""
        import dataclasses
        import io
        import json

        arrays, scalars = {}, {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            (arrays if isinstance(value, np.ndarray) else scalars)[f.name] = value
        buf = io.BytesIO()
        np.savez(buf, **arrays, _scalars=np.array(json.dumps(scalars)))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes) -> ShiftResult:
        import io
        import json

        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            fields = {k: z[k] for k in z.files if k != "_scalars"}
            fields.update(json.loads(str(z["_scalars"])))
        return cls(**fields)

    def examples(self, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """What the shift looks like: indices of the ``k`` most representative F texts and of
        the ``k`` most outlying G texts (both with respect to F)."""
        return most_central(self.depths_f, k), most_outlying(self.depths_g, k)


def q_score(depths_f, depths_g) -> float:
    """The paper's Q: fraction of (x, y) pairs, x from F and y from G, with ``D(x) <= D(y)``."""
    f = np.sort(np.asarray(depths_f, dtype=np.float64))
    g = np.asarray(depths_g, dtype=np.float64)
    return float(np.searchsorted(f, g, side="right").sum() / (f.size * g.size))


def q_reference(depths_f, depths_g) -> float:
    """Q as ``tte-depth`` 1.0.0 computes it: for each G depth, the fraction of all pooled depths
    whose rank is strictly lower, averaged over G. Near 0.5·(N-1)/N under no shift."""
    f = np.asarray(depths_f, dtype=np.float64)
    g = np.asarray(depths_g, dtype=np.float64)
    ranks = rankdata(np.concatenate([f, g]))
    pooled = np.sort(ranks)
    return float(np.mean(np.searchsorted(pooled, ranks[f.size :], side="left") / ranks.size))


def shift_test(
    F,
    G,
    distance: str = "cosine",
    *,
    permutations: int = 999,
    random_state: int | None = 0,
    device: str | None = None,
    progress=None,
) -> ShiftResult:
    """Test whether corpus G has shifted away from reference corpus F.

    Parameters
    ----------
    F, G : arrays of shape (m, d) and (n, d)
        Embeddings of the reference and comparison corpora (same model, so same d).
    distance : {"cosine", "chord"}
    permutations : int
        Permutations for ``p_permutation`` (0 skips it). With cosine each costs O(N·d).
    random_state : int or None
        Seed for the permutations, so the same inputs give the same p.
    device : str, optional
        Passed to :func:`analytics.tte_depth` for chord distance.
    progress : callable ``(stage, fraction)``, optional
        Hears about the permutations as they run (a job's progress bar; it may raise to stop).
    """
    check_distance(distance)
    F = as_embeddings(F, "F", min_rows=2)
    G = as_embeddings(G, "G", min_rows=2)
    check_same_dim(F, G, "F", "G")
    checked_norms(F, "F"), checked_norms(G, "G")  # so a bad row is reported under its corpus
    permutations = RULES["shift"]["permutations"].check(permutations)  # range: analytics/params.py

    depths_f = tte_depth(F, distance=distance, device=device)
    depths_g = tte_depth(G, reference=F, distance=distance, device=device)
    w, p = ranksums(depths_f, depths_g, alternative="greater")

    p_perm = None
    if permutations:
        observed = _f_rank_sum(
            np.concatenate([depths_f, depths_g])[:, None], np.arange(depths_f.size)[:, None]
        )[0]
        perm_sums = _permutation_rank_sums(
            F, G, distance, permutations, np.random.default_rng(random_state), progress
        )
        b = int(np.count_nonzero(perm_sums >= observed - 1e-9))
        p_perm = (b + 1) / (permutations + 1)

    return ShiftResult(
        depths_f=depths_f,
        depths_g=depths_g,
        q=q_score(depths_f, depths_g),
        q_reference=q_reference(depths_f, depths_g),
        w=float(w),
        p=float(p),
        p_permutation=p_perm,
        permutations=int(permutations),
        distance=distance,
    )


def _f_rank_sum(depths: np.ndarray, f_rows: np.ndarray) -> np.ndarray:
    """Rank sum of the F rows of each column of ``depths`` (N x B); ``f_rows`` is m x B.
    The rank-sum z that ``ranksums`` reports is increasing in it, so it orders the same."""
    ranks = rankdata(depths, axis=0)
    return np.take_along_axis(ranks, f_rows, axis=0).sum(axis=0)


def _permutation_rank_sums(F, G, distance, permutations, rng, progress=None) -> np.ndarray:
    m = F.shape[0]
    Z = np.concatenate([F.astype(np.float64), G.astype(np.float64)])
    N = Z.shape[0]
    Z /= checked_norms(Z, "F and G")[:, None]
    chunk = max(1, min(permutations, _PERM_CHUNK_BYTES // (8 * N)))
    out = np.empty(permutations)
    for start in range(0, permutations, chunk):
        c = min(chunk, permutations - start)
        f_rows = np.sort(rng.permuted(np.tile(np.arange(N), (c, 1)), axis=1)[:, :m], axis=1).T
        member = np.zeros((N, c))
        np.put_along_axis(member, f_rows, 1.0, axis=0)
        if distance == "cosine":
            # sum over j in F' of (1 - z_i·z_j) = m - z_i·s', s' = sum of F' rows
            dist_sums = m - Z @ (Z.T @ member)
        else:
            dist_sums = _chord_matrix_product(Z, member)
        depths = np.where(member > 0, 2.0 - dist_sums / (m - 1), 2.0 - dist_sums / m)
        out[start : start + c] = _f_rank_sum(depths, f_rows)
        if progress is not None:
            progress(f"permutation {start + c:,} of {permutations:,}", (start + c) / permutations)
    return out


def _chord_matrix_product(Z: np.ndarray, member: np.ndarray) -> np.ndarray:
    """``D @ member`` for the pooled chord distance matrix D, one block of D's rows at a time."""
    N = Z.shape[0]
    rows = max(1, _PERM_CHUNK_BYTES // (8 * N))
    out = np.empty_like(member)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        block = np.sqrt(np.maximum(2.0 - 2.0 * (Z[start:stop] @ Z.T), 0.0))
        idx = np.arange(start, stop)
        block[idx - start, idx] = 0.0
        out[start:stop] = block @ member
    return out
