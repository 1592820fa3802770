"""Has corpus G shifted away from reference corpus F? The TTE depth rank test.

Depths of F's and G's texts are both taken with respect to F. If G is like F its texts are as
deep as F's own; if G has drifted they are shallower. ``Q = P[D(X,F) <= D(Y,F)]`` measures how
far (0.5: no shift, 0: every G text more outlying than every F text), and the one-sided
Wilcoxon rank-sum test of F depths > G depths says whether the difference is more than chance.

The asymptotic rank-sum p is only approximately calibrated, because F depths leave each text out
of its own mean while G depths do not; the permutation p (re-split the pooled texts, recompute
F-relative depths) is exact, and cheap thanks to the closed form for cosine depth.

That test is one-sided: a G more *concentrated* than F (templated or machine-made text,
near-duplicates, a narrowed topic) or one that moved without becoming more outlying passes it.
So :func:`shift_test` also runs, on the same permutations, the depth test the other way round
(F's texts w.r.t. G), an MMD test and a mean-embedding test, combines them into one calibrated
p (min-p), names the kind of shift, and adds a classifier two-sample test as a cross-check
(:mod:`analytics.twosample`). The paper's one-sided Q, W and p stay, labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata, ranksums

from ._validate import as_embeddings, check_distance, check_same_dim, checked_norms
from .depth import most_central, most_outlying, tte_depth
from .errors import ParameterError
from .params import RULES
from .twosample import (
    MMD_MAX_ROWS,
    PERM_CHUNK_BYTES,
    CrossCheck,
    all_p,
    classifier_test,
    depth_rank_statistic,
    mean_embedding_statistic,
    min_p,
    mmd_statistic,
    rbf_kernel,
    run_permutations,
)

#: below this many texts on either side Q and the p-values are too noisy to lean on
SMALL_SAMPLE = 30
#: the cross-checks shift_test runs by default
CHECKS = ("mmd", "mean", "classifier")
#: what a kind of shift is called in a verdict
KINDS = {
    "outlying": "G is more outlying",
    "concentrated": "G is more concentrated (less diverse)",
    "location": "G differs in location",
    "none": "no evidence of a shift",
}


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
    q_concentrated: float | None = None
    """Q the other way round, P[D(Y,G) <= D(X,G)]: near 0.5 when F is as typical of G as G's own
    texts, small when F is more outlying w.r.t. G, i.e. G is more concentrated."""
    p_concentrated: float | None = None
    """Permutation p of the depth test the other way round (G more concentrated than F)."""
    p_two_sided: float | None = None
    """Both directions of the depth test combined (min-p): calibrated."""
    p_any: float | None = None
    """Every permutation test combined (depth both ways, MMD, mean embedding; min-p): the p
    that decides the verdict, calibrated."""
    checks: tuple = ()
    """:class:`~analytics.twosample.CrossCheck` results: MMD, mean embedding, classifier."""
    z_outlying: float | None = None
    """How far the observed "G more outlying" statistic sits in its permutation distribution,
    in standard deviations (an effect size, for naming the kind; the p values decide)."""
    z_concentrated: float | None = None
    """The same for "G more concentrated"."""
    notes: tuple = ()
    """What a reader should know: a subsampled test, tests that disagree."""

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

    @property
    def p_verdict(self) -> float:
        """The p that decides: every test combined when permutations ran, else the paper's."""
        if self.p_any is not None:
            return self.p_any
        return self.p if self.p_permutation is None else self.p_permutation

    def significant(self, alpha: float = 0.05) -> bool:
        """Decided by :attr:`p_verdict` (calibrated when there were permutations)."""
        alpha = RULES["shift"]["alpha"].check(alpha)
        return self.p_verdict < alpha

    def with_notes(self, *notes) -> ShiftResult:
        """The same result with notes added (an overlap warning, say); empty notes are skipped."""
        import dataclasses

        return dataclasses.replace(self, notes=(*self.notes, *[n for n in notes if n]))

    def check(self, name: str) -> CrossCheck | None:
        return next((c for c in self.checks if c.name == name), None)

    def kind(self, alpha: float = 0.05) -> str:
        """Which shift was found: "outlying", "concentrated", "location" or "none" (keys of
        :data:`KINDS`). Significance comes from :attr:`p_verdict`; the name from the depth test's
        two directions, by their effect sizes (z in the permutation distribution): one direction
        clearly stronger names it (G atypical of F: more outlying, broader or with texts from
        elsewhere; F atypical of G: G more concentrated); both comparable (the weaker at least
        half the stronger), or neither notable (z < 1.645, only MMD or the mean embedding saw
        it), is a location shift, such as a change of topic or of the mix of topics."""
        if not self.significant(alpha):
            return "none"
        if self.p_concentrated is None:  # the paper's one-sided test alone
            return "outlying"
        if self.z_outlying is None:  # a result cached before effect sizes were kept
            outlying, concentrated = self.p_permutation < alpha, self.p_concentrated < alpha
            return ("outlying" if outlying else "concentrated") if outlying != concentrated else "location"
        return name_kind(self.z_outlying, self.z_concentrated)

    def summary(self, alpha: float = 0.05) -> str:
        """A plain-language verdict naming the kind of shift, with the numbers behind it."""
        kind = self.kind(alpha)
        pv = self.p_verdict
        if kind == "outlying":
            verdict = (
                f"G has shifted away from F: G is more outlying, its texts less typical of F than "
                f"F's own (Q = {self.q:.3f}, p = {pv:.3g})."
            )
        elif kind == "concentrated":
            verdict = (
                f"G is more concentrated than F (less diverse): F's texts are less typical of G than "
                f"G's own (reverse Q = {self.q_concentrated:.3f}, p = {pv:.3g}). Templated or "
                "machine-made text, near-duplicates or a narrowed topic look like this."
            )
        elif kind == "location":
            verdict = (
                "G has shifted away from F in location: the two corpora sit in different places, "
                "neither more outlying nor more concentrated than the other (as with a change of "
                f"topic, or of the mix of topics) (Q = {self.q:.3f}, p = {pv:.3g})."
            )
        else:
            verdict = f"No evidence of a shift between F and G (p = {pv:.3g} at alpha = {alpha})."
        lines = [verdict]
        if self.p_any is not None:
            lines.append(
                f"Combined p = {self.p_any:.3g}: the depth test both ways, MMD and the mean embedding "
                f"on the same {self.permutations:,} permutations (min-p; calibrated)."
            )
            lines.append(
                f"Depth test, G more outlying w.r.t. F: p = {self.p_permutation:.3g}; G more "
                f"concentrated (F more outlying w.r.t. G): p = {self.p_concentrated:.3g}; both "
                f"directions: p = {self.p_two_sided:.3g}."
            )
        for c in self.checks:
            lines.append(f"Cross-check, {c.name}: p = {c.p:.3g} ({c.detail}).")
        lines.append(
            "The paper's one-sided test (is G more outlying w.r.t. F?): Q is the chance that an F "
            "text is no deeper in F than a G text (0.5: G looks like F; 0: every G text is more "
            f"outlying); Q = {self.q:.3f}, W = {self.w:.3f}, asymptotic p = {self.p:.3g} "
            "(slightly liberal)"
            + (f", permutation p = {self.p_permutation:.3g}" if self.p_permutation is not None else "")
            + "."
        )
        if self.p_permutation is not None and self.p_permutation <= 1.0 / (self.permutations + 1):
            lines.append("A permutation p at 1/(B+1) is the smallest possible with these permutations.")
        lines.extend(self.notes)
        lines.extend(self._disagreements(alpha, kind))
        lines.append(f"Sample sizes: F = {self.n_f:,} texts, G = {self.n_g:,} texts.")
        if self.small_sample:
            lines.append(f"Warning: fewer than {SMALL_SAMPLE} texts on one side; Q and p are unreliable.")
        return "\n".join(lines)

    def _disagreements(self, alpha: float, kind: str) -> list[str]:
        out = []
        clf = self.check("classifier")
        if clf is not None and not np.isnan(clf.p) and (clf.p < alpha) != (kind != "none"):
            side = "finds a difference" if clf.p < alpha else "finds none"
            out.append(
                f"The tests disagree: the classifier {side} (p = {clf.p:.3g}) where the combined "
                "test says otherwise. Look at the example texts before trusting either."
            )
        if kind == "none" and self.p_permutation is not None and self.p_permutation < alpha:
            out.append(
                f"The paper's one-sided test alone would call this a shift (p = {self.p_permutation:.3g}); "
                "combined with the other tests the evidence is not enough."
            )
        return out

    def to_bytes(self) -> bytes:
        """The result as bytes for the store's result cache (no pickle: :mod:`analytics.results`)."""
        from .results import to_bytes

        return to_bytes(self)

    @classmethod
    def from_bytes(cls, payload: bytes) -> ShiftResult:
        from .results import from_bytes

        return from_bytes(cls, payload, nested={"checks": CrossCheck}, tuples=("notes",))

    def examples(self, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """What the shift looks like: indices of the ``k`` most representative F texts and of
        the ``k`` most outlying G texts (both with respect to F)."""
        return most_central(self.depths_f, k), most_outlying(self.depths_g, k)


def name_kind(z_outlying: float, z_concentrated: float) -> str:
    """The kind of a significant shift from the depth test's two effect sizes (z of each
    direction's statistic in its permutation distribution): one direction clearly stronger
    names it; both comparable (the weaker at least half the stronger), or neither notable
    (z < 1.645), is a shift of location. See :meth:`ShiftResult.kind`."""
    strong, weak = max(z_outlying, z_concentrated), min(z_outlying, z_concentrated)
    if strong < 1.645 or weak >= 0.5 * strong:
        return "location"
    return "outlying" if z_outlying > z_concentrated else "concentrated"


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
    checks=CHECKS,
    progress=None,
) -> ShiftResult:
    """Test whether corpus G has shifted away from reference corpus F, and how.

    Parameters
    ----------
    F, G : arrays of shape (m, d) and (n, d)
        Embeddings of the reference and comparison corpora (same model, so same d).
    distance : {"cosine", "chord"}
    permutations : int
        Permutations for every permutation p (0: only the paper's asymptotic p). With cosine
        each costs O(N·d) for the depth tests.
    random_state : int or None
        Seed for the permutations, so the same inputs give the same p.
    device : str, optional
        Passed to :func:`analytics.tte_depth` for chord distance.
    checks : the cross-checks to run, from ``("mmd", "mean", "classifier")``. MMD and the
        mean embedding join the combined p; the classifier has its own.
    progress : callable ``(stage, fraction)``, optional
        Hears about the permutations as they run (a job's progress bar; it may raise to stop).
    """
    check_distance(distance)
    F = as_embeddings(F, "F", min_rows=2)
    G = as_embeddings(G, "G", min_rows=2)
    check_same_dim(F, G, "F", "G")
    checked_norms(F, "F"), checked_norms(G, "G")  # so a bad row is reported under its corpus
    permutations = RULES["shift"]["permutations"].check(permutations)  # range: analytics/params.py
    checks = tuple(checks)
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ParameterError(f"Unknown cross-check(s) {sorted(unknown)}; choose from {CHECKS}.")

    depths_f = tte_depth(F, distance=distance, device=device)
    depths_g = tte_depth(G, reference=F, distance=distance, device=device)
    w, p = ranksums(depths_f, depths_g, alternative="greater")
    # the other direction: G's texts in G (leave-one-out), F's texts w.r.t. G
    depths_gg = tte_depth(G, distance=distance, device=device)
    depths_fg = tte_depth(F, reference=G, distance=distance, device=device)
    fields: dict = {"q_concentrated": q_score(depths_gg, depths_fg)}

    if permutations:
        rng = np.random.default_rng(random_state)
        Z = np.concatenate([F.astype(np.float64), G.astype(np.float64)])
        Z /= checked_norms(Z, "F and G")[:, None]
        statistics = {
            "outlying": depth_rank_statistic(Z, distance, "f", _chord_matrix_product),
            "concentrated": depth_rank_statistic(Z, distance, "g", _chord_matrix_product),
        }
        notes = []
        mmd_detail = ""
        if "mean" in checks:
            statistics["mean"] = mean_embedding_statistic(Z)
        if "mmd" in checks:
            rows = None
            if Z.shape[0] > MMD_MAX_ROWS:  # label-free subset: the test stays valid
                rows = np.sort(
                    np.random.default_rng(random_state).choice(Z.shape[0], MMD_MAX_ROWS, replace=False)
                )
                mmd_detail = f"; on a random {MMD_MAX_ROWS:,} of the {Z.shape[0]:,} pooled texts"
            K, bandwidth = rbf_kernel(Z if rows is None else Z[rows])
            statistics["mmd"] = mmd_statistic(K, rows)
            mmd_detail = f"RBF kernel, bandwidth {bandwidth:.3f} (median heuristic){mmd_detail}"
        observed, null = run_permutations(Z.shape[0], F.shape[0], statistics, permutations, rng, progress)
        p_of = {name: float(all_p(observed[name], null[name])[0]) for name in statistics}
        z_of = {
            name: float((observed[name] - null[name].mean()) / (null[name].std() or 1.0))
            for name in ("outlying", "concentrated")
        }
        fields.update(
            p_permutation=p_of["outlying"],
            p_concentrated=p_of["concentrated"],
            p_two_sided=min_p(
                {k: observed[k] for k in ("outlying", "concentrated")},
                {k: null[k] for k in ("outlying", "concentrated")},
            ),
            p_any=min_p(observed, null),
            z_outlying=z_of["outlying"],
            z_concentrated=z_of["concentrated"],
        )
        found = []
        if "mmd" in checks:
            found.append(CrossCheck("MMD", observed["mmd"], p_of["mmd"], mmd_detail))
        if "mean" in checks:
            found.append(
                CrossCheck(
                    "mean embedding",
                    observed["mean"],
                    p_of["mean"],
                    f"squared distance between the mean unit vectors {observed['mean']:.4g}",
                )
            )
        if "classifier" in checks:
            clf = classifier_test(F, G, permutations=permutations, random_state=random_state)
            if clf is None:
                notes.append("The classifier test needs at least 4 texts on each side; it was skipped.")
            else:
                found.append(clf)
        fields.update(checks=tuple(found), notes=tuple(notes))

    return ShiftResult(
        depths_f=depths_f,
        depths_g=depths_g,
        q=q_score(depths_f, depths_g),
        q_reference=q_reference(depths_f, depths_g),
        w=float(w),
        p=float(p),
        p_permutation=fields.pop("p_permutation", None),
        permutations=int(permutations),
        distance=distance,
        **fields,
    )


def _chord_matrix_product(Z: np.ndarray, member: np.ndarray) -> np.ndarray:
    """``D @ member`` for the pooled chord distance matrix D, one block of D's rows at a time."""
    N = Z.shape[0]
    rows = max(1, PERM_CHUNK_BYTES // (8 * N))
    out = np.empty_like(member)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        block = np.sqrt(np.maximum(2.0 - 2.0 * (Z[start:stop] @ Z.T), 0.0))
        idx = np.arange(start, stop)
        block[idx - start, idx] = 0.0
        out[start:stop] = block @ member
    return out
