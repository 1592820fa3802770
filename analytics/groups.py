"""Shift tests between groups of rows of one corpus, so that no corpus has to be split first.

Two questions are asked of a corpus with a column such as ``intent``:

- is one group (``intent = oos``, the analyst's selection) shifted away from another (the rest
  of the corpus, or ``intent = greet, weather``)? :func:`group_rows` turns a description of the
  two groups into row ids, and the ``shift_groups`` job runs :func:`analytics.shift_test` on
  those rows of the corpus's vectors (indexed in memory: no corpus is created);
- which values of the column stand out from the rest? :func:`values_vs_rest` tests each of the
  largest values against every other row, and adjusts the p-values for the number of values
  tested with :func:`holm`, so that a table of 30 tests does not find a shift by chance.

In both, F (the reference) is the rest and G is the group picked: Q < 0.5 means the group is
more outlying than the rest's own texts.

>>> table = values_vs_rest(X, labels, column="intent", permutations=999)
>>> [(r.value, r.p_holm, r.verdict) for r in table.rows]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import ranksums

from ._validate import as_embeddings, checked_norms
from .depth import tte_depth
from .errors import ParameterError
from .params import RULES
from .selection import MISSING, Selection, cell_key, resolve
from .shift import SMALL_SAMPLE, name_kind, q_reference, q_score
from .twosample import all_p, min_p, run_permutations

#: values of a column tested against the rest, the largest first (the rest stay in "the rest")
TOP_VALUES = 30
#: the most a page may ask for (each value costs a full permutation test)
MAX_TOP_VALUES = 200
#: what a value's kind of shift is called in a table's verdict
VERDICTS = {
    "outlying": "shift: more outlying than the rest",
    "concentrated": "shift: more concentrated than the rest",
    "location": "shift: in a different place",
    "none": "no evidence of a shift",
}


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of ``m`` p-values (same order as given): the i-th smallest
    p becomes ``max over j <= i of min(1, (m - j + 1) p_(j))``. Rejecting where the adjusted p
    is below alpha controls the chance of any false finding at alpha, whatever the dependence
    between the tests (the values of one column share their "rest")."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ParameterError("Holm's adjustment needs p-values between 0 and 1 (no NaN).")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


# -- groups of rows, as job parameters ------------------------------------------------------------


def group_spec(filters: dict | None = None, *, sel: str | None = None, search: str = "") -> dict:
    """A group of rows of one corpus as plain JSON (what a job's parameters hold): ``filters``
    column -> values (a row matches any value of each column), ``sel`` the id of a selection
    saved with :meth:`Store.save_selection` (a lasso), ``search`` texts containing it."""
    return normalise_spec({"filter": filters or {}, "sel": sel, "q": search})


def normalise_spec(spec) -> dict:
    """The same group in one canonical form (sorted values), or :class:`ParameterError`."""
    if not isinstance(spec, dict) or set(spec) - {"filter", "sel", "q"}:
        raise ParameterError(
            f"A group of rows is a dict with 'filter', 'sel' and 'q', got {spec!r:.200}; "
            "build it with analytics.groups.group_spec."
        )
    filters = spec.get("filter") or {}
    if not isinstance(filters, dict) or not all(
        isinstance(v, list | tuple) and all(isinstance(x, str | int | float) for x in v)
        for v in filters.values()
    ):
        raise ParameterError(f"A group's filter maps a column to a list of values, got {filters!r:.200}.")
    sel, search = spec.get("sel"), spec.get("q") or ""
    if sel is not None and not isinstance(sel, str):
        raise ParameterError(f"A group's selection id is text, got {sel!r:.100}.")
    if not isinstance(search, str):
        raise ParameterError(f"A group's search is text, got {search!r:.100}.")
    clean = {str(c): sorted({cell_key(v) for v in values}) for c, values in filters.items() if values}
    return {"filter": dict(sorted(clean.items())), "sel": sel or None, "q": search}


def spec_selection(store, name: str, spec: dict) -> Selection:
    """The :class:`~analytics.selection.Selection` a group describes."""
    spec = normalise_spec(spec)
    rows = None
    if spec["sel"]:
        found = store.selection(spec["sel"])
        if found is None or found[0] != name:
            raise ParameterError(
                f"The saved selection {spec['sel']!r} is not a selection of {name!r} in this store "
                "(any more); select the rows again on the Map page."
            )
        rows = found[1].tolist()
    return Selection(name, rows, tuple((c, tuple(v)) for c, v in spec["filter"].items()), spec["q"])


def describe_spec(spec) -> str:
    """A group in words: "intent = oos", "the rest"."""
    if spec == "rest":
        return "the rest"
    spec = normalise_spec(spec)
    parts = []
    if spec["sel"]:
        parts.append("rows picked on the map")
    for column, values in spec["filter"].items():
        shown = ", ".join(v if v != MISSING else "(missing)" for v in values[:5])
        parts.append(f"{column} = {shown}" + (f" and {len(values) - 5} more" if len(values) > 5 else ""))
    if spec["q"]:
        parts.append(f"texts containing {spec['q']!r}")
    return " · ".join(parts) or "every row"


def group_rows(store, name: str, g: dict, f, texts: Sequence[str], metadata) -> tuple[np.ndarray, np.ndarray]:
    """Row ids of F and G (sorted) in corpus ``name``: G from its description, F likewise or
    ``"rest"`` (every row not in G). Raises :class:`ParameterError` when the groups overlap
    or one has fewer than 2 rows (a shift test needs two texts on each side)."""
    rows_g = resolve(spec_selection(store, name, g), texts, metadata)
    if f == "rest":
        rows_f = np.setdiff1d(np.arange(len(texts)), rows_g)
    else:
        rows_f = resolve(spec_selection(store, name, f), texts, metadata)
        shared = np.intersect1d(rows_f, rows_g).size
        if shared:
            raise ParameterError(
                f"F ({describe_spec(f)}) and G ({describe_spec(g)}) share {shared:,} rows; "
                "pick groups that do not overlap."
            )
    for side, rows, spec in (("G", rows_g, g), ("F", rows_f, f)):
        if rows.size < 2:
            raise ParameterError(
                f"{side} ({describe_spec(spec)}) has {rows.size:,} text(s) in {name!r}; a shift test "
                "needs at least 2 on each side. Pick a larger group."
            )
    return rows_f, rows_g


# -- each value of a column against the rest -------------------------------------------------------


@dataclass(frozen=True)
class ValueShift:
    """One value of a column tested against every other row: G = the value's rows, F = the
    rest (the reference). Q, W and the asymptotic p are the paper's one-sided test (is the
    value more outlying w.r.t. the rest?); ``p_permutation`` is the depth test in both
    directions (min-p, calibrated), and ``p_holm`` that p adjusted over the values tested."""

    value: str
    n: int
    q: float
    q_reference: float
    """``tte-depth``'s pooled-rank Q, for comparison with that package."""
    w: float
    p: float
    """Asymptotic one-sided p of the rank-sum test (slightly liberal)."""
    p_permutation: float | None
    p_outlying: float | None
    p_concentrated: float | None
    z_outlying: float | None
    z_concentrated: float | None
    p_holm: float
    kind: str
    """Key of :data:`VERDICTS`, decided by ``p_holm`` at the table's alpha."""

    @property
    def verdict(self) -> str:
        few = f" (fewer than {SMALL_SAMPLE} texts: unreliable)" if self.n < SMALL_SAMPLE else ""
        return VERDICTS[self.kind] + few


@dataclass(frozen=True)
class ValueTable:
    """Each of the largest values of ``column`` against the rest (:func:`values_vs_rest`)."""

    column: str
    n_rows: int
    n_values: int
    """Distinct values of the column (a missing value counts as one, "(missing)")."""
    rows: tuple = ()
    """:class:`ValueShift` per value tested, the largest first."""
    permutations: int = 0
    alpha: float = 0.05
    distance: str = "cosine"
    untested_values: int = 0
    """Values not tested (beyond ``top``, or with fewer than 2 texts): they stay in the rest."""
    untested_rows: int = 0
    notes: tuple = ()

    def significant(self) -> list[ValueShift]:
        return [r for r in self.rows if r.kind != "none"]

    def summary(self) -> str:
        """In words: how many values were tested, and how many stand out after Holm."""
        tested = len(self.rows)
        found = self.significant()
        lines = [
            f"{len(found)} of {tested} values of {self.column} differ from the rest "
            f"(Holm-adjusted p < {self.alpha:g}, over the {tested} values tested)."
        ]
        if self.untested_values:
            lines.append(
                f"{self.untested_values:,} smaller values ({self.untested_rows:,} rows) were not tested; "
                "their rows count in the rest."
            )
        lines.extend(self.notes)
        return "\n".join(lines)

    def csv_rows(self) -> list[dict]:
        """One dict per value: every number, for a CSV."""
        return [
            {
                "value": r.value if r.value != MISSING else "(missing)",
                "n": r.n,
                "Q": r.q,
                "Q (tte-depth)": r.q_reference,
                "W": r.w,
                "p (asymptotic)": r.p,
                "p (permutation)": r.p_permutation,
                "p (more outlying)": r.p_outlying,
                "p (more concentrated)": r.p_concentrated,
                "p (Holm)": r.p_holm,
                "verdict": r.verdict,
            }
            for r in self.rows
        ]

    def to_bytes(self) -> bytes:
        from .results import to_bytes

        return to_bytes(self)

    @classmethod
    def from_bytes(cls, payload: bytes) -> ValueTable:
        from .results import from_bytes

        return from_bytes(cls, payload, nested={"rows": ValueShift}, tuples=("notes",))


def value_counts(labels: Sequence) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Codes per row, the distinct values (as text, :func:`~analytics.selection.cell_key`) and
    the count of each."""
    table: dict[str, int] = {}
    codes = np.fromiter((table.setdefault(cell_key(v), len(table)) for v in labels), np.int64, len(labels))
    return codes, list(table), np.bincount(codes, minlength=len(table))


def values_vs_rest(
    X,
    labels: Sequence,
    *,
    column: str = "value",
    top: int = TOP_VALUES,
    permutations: int = 999,
    alpha: float = 0.05,
    random_state: int | None = 0,
    progress=None,
) -> ValueTable:
    """Test each of the ``top`` largest values of a column against every other row.

    For a value v, G = its rows and F = the rest; the numbers are those of
    :func:`analytics.shift_test` (cosine distance, no cross-checks) on ``X[rest]`` and
    ``X[v]``, with the same seed: Q, W and the asymptotic p of the paper's one-sided test, and
    the calibrated permutation p of the depth test in both directions. Those p-values are then
    Holm-adjusted over the values tested, and the verdict is taken from the adjusted p.

    Each permutation costs one N x d product (both directions share it) and a sort of the N
    depths, not the four products and two full rankings of a general two-sample test.

    Parameters
    ----------
    X : array (N, d), the corpus's vectors; ``labels``: the column's value for each row.
    top : how many values to test, the largest first (ties: by value); the others stay in the
        rest and are counted in the table.
    permutations : for each value's permutation p (0: the asymptotic p is adjusted instead).
    progress : callable ``(stage, fraction)``, optional (a job's progress; may raise to stop).
    """
    X = as_embeddings(X, "X", min_rows=4)
    if len(labels) != X.shape[0]:
        raise ParameterError(f"{len(labels):,} labels for {X.shape[0]:,} rows; give one label per row.")
    if not 1 <= int(top) <= MAX_TOP_VALUES:
        raise ParameterError(f"top must be between 1 and {MAX_TOP_VALUES}, got {top}.")
    permutations = RULES["shift"]["permutations"].check(permutations)
    alpha = RULES["shift"]["alpha"].check(alpha)
    N = X.shape[0]
    codes, values, counts = value_counts(labels)
    order = sorted(range(len(values)), key=lambda i: (-counts[i], values[i]))
    testable = [i for i in order if counts[i] >= 2 and N - counts[i] >= 2]
    tested = testable[: int(top)]
    if not tested:
        raise ParameterError(
            f"No value of {column!r} can be tested against the rest: each needs at least 2 texts, "
            f"and the rest at least 2 (the column has {len(values):,} distinct values in {N:,} rows)."
        )
    Z_all = X.astype(np.float64)
    Z_all /= checked_norms(Z_all, "X")[:, None]
    found = []
    for k, i in enumerate(tested):
        g_idx = np.flatnonzero(codes == i)
        f_idx = np.flatnonzero(codes != i)

        def step(stage: str, fraction: float, k=k, value=values[i]) -> None:
            if progress is not None:
                shown = value if value != MISSING else "(missing)"
                progress(
                    f"value {k + 1} of {len(tested)} ({column} = {shown}): {stage}",
                    (k + fraction) / len(tested),
                )

        step("depths", 0.0)
        found.append(_one_value(X, Z_all, f_idx, g_idx, values[i], permutations, random_state, step))
    raw = [r["p_permutation"] if permutations else r["p"] for r in found]
    adjusted = holm(raw)
    rows = []
    for r, p_adj in zip(found, adjusted, strict=True):
        if p_adj >= alpha:
            kind = "none"
        elif not permutations:
            kind = "outlying"
        else:
            kind = name_kind(r["z_outlying"], r["z_concentrated"])
        rows.append(ValueShift(**r, p_holm=float(p_adj), kind=kind))
    chosen = set(tested)
    untested = [i for i in order if i not in chosen]
    notes = []
    if not permutations:
        notes.append("No permutations: the asymptotic one-sided p (slightly liberal) was adjusted.")
    elif len(tested) / (permutations + 1) >= alpha:
        notes.append(
            f"With {permutations:,} permutations the smallest Holm-adjusted p possible is "
            f"{len(tested) / (permutations + 1):.3g}, not below alpha = {alpha:g}: use more permutations."
        )
    return ValueTable(
        column=column,
        n_rows=N,
        n_values=len(values),
        rows=tuple(rows),
        permutations=permutations,
        alpha=alpha,
        untested_values=len(untested),
        untested_rows=int(sum(counts[i] for i in untested)),
        notes=tuple(notes),
    )


def _one_value(X, Z_all, f_idx, g_idx, value, permutations, random_state, step) -> dict:
    """The numbers of :func:`analytics.shift_test` (cosine, ``checks=()``) on F = ``X[f_idx]``
    and G = ``X[g_idx]``, from the pooled unit rows in the same order and with the same seed."""
    F, G = X[f_idx], X[g_idx]
    depths_f = tte_depth(F)
    depths_g = tte_depth(G, reference=F)
    w, p = ranksums(depths_f, depths_g, alternative="greater")
    out = {
        "value": value,
        "n": int(g_idx.size),
        "q": q_score(depths_f, depths_g),
        "q_reference": q_reference(depths_f, depths_g),
        "w": float(w),
        "p": float(p),
        "p_permutation": None,
        "p_outlying": None,
        "p_concentrated": None,
        "z_outlying": None,
        "z_concentrated": None,
    }
    if not permutations:
        return out
    Z = Z_all[np.concatenate([f_idx, g_idx])]
    statistics = depth_rank_statistics(Z)
    observed, null = run_permutations(
        Z.shape[0], f_idx.size, statistics, permutations, np.random.default_rng(random_state), step
    )
    z = {n: float((observed[n] - null[n].mean()) / (null[n].std() or 1.0)) for n in statistics}
    out.update(
        p_permutation=min_p(observed, null),
        p_outlying=float(all_p(observed["outlying"], null["outlying"])[0]),
        p_concentrated=float(all_p(observed["concentrated"], null["concentrated"])[0]),
        z_outlying=z["outlying"],
        z_concentrated=z["concentrated"],
    )
    return out


def depth_rank_statistics(Z: np.ndarray) -> dict:
    """The two cosine depth rank statistics of :func:`analytics.twosample.depth_rank_statistic`
    ("outlying": F as the reference, the sum of F's ranks; "concentrated": G as the reference,
    the sum of G's ranks), for pooled unit rows ``Z`` and 0/1 membership matrices (1 = F),
    sharing one product per permutation: with ``t = Z s`` (s the sum of every row) and
    ``e = Z s_G``, the sums of cosines to F and to G are ``t - e`` and ``e``; ``s_G`` sums the
    rows of the smaller side only. A rank sum needs the ranks of one side only: that side's
    depths are looked up in the sorted row (midranks, as ``rankdata`` gives ties). The work is
    laid out one permutation per row (contiguous sorts)."""
    N = Z.shape[0]
    t = Z @ Z.sum(axis=0)
    last: dict = {}

    def both(member: np.ndarray) -> dict:
        if last.get("member") is not member:
            in_f = np.ascontiguousarray(member.T > 0)  # c x N
            k_f = int(in_f[0].sum())
            k_g = N - k_f
            small = ~in_f if k_g <= k_f else in_f
            s_small = sparse.csr_matrix(small, dtype=np.float64) @ Z  # c x d: the smaller side's sums
            e_g = s_small @ Z.T  # c x N
            if k_g > k_f:
                np.subtract(t, e_g, out=e_g)
            e_f = t - e_g
            last.update(
                member=member,
                outlying=_rank_sum(_depth(e_f, in_f, k_f), in_f),
                concentrated=_rank_sum(_depth(e_g, ~in_f, k_g), ~in_f),
            )
        return last

    return {
        "outlying": lambda member: both(member)["outlying"],
        "concentrated": lambda member: both(member)["concentrated"],
    }


def _depth(e: np.ndarray, own: np.ndarray, k: int) -> np.ndarray:
    """Cosine depth (less 1, which ranks the same) from ``e``, each row's sum of cosines to the
    reference's k rows; ``own`` marks the reference's rows, which leave themselves out."""
    out = e - own
    out /= np.where(own, k - 1.0, float(k))
    return out


def _rank_sum(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row (one permutation each), the sum of the midranks (1-based, ties averaged) of the
    entries in ``mask`` among all entries: ranks of the smaller side only, then the total
    N(N+1)/2 minus them."""
    c, N = values.shape
    k = int(mask[0].sum())
    if k > N - k:
        return N * (N + 1) / 2.0 - _rank_sum(values, ~mask)
    ordered = np.sort(values, axis=1)
    picked = values[mask].reshape(c, k)
    out = np.empty(c)
    for j in range(c):
        lo = np.searchsorted(ordered[j], picked[j], side="left")
        hi = np.searchsorted(ordered[j], picked[j], side="right")
        out[j] = (lo + hi + 1).sum() / 2.0
    return out


# -- the jobs: a shift test between groups of rows, and the table of values --------------------------


def _prepare_group_shift(store, params: dict):
    from ._validate import check_distance
    from .jobs import _content_key

    name, model_id = params.get("corpus"), params.get("model_id")
    if not model_id:
        raise ParameterError("A shift job needs model_id: the key of the vectors to compare.")
    fp = store.corpus_fingerprint(name)  # an unknown corpus raises here, naming the known ones
    f = params.get("f", "rest")
    out = {
        "corpus": name,
        "model_id": model_id,
        "g": normalise_spec(params.get("g")),
        "f": "rest" if f == "rest" else normalise_spec(f),
        "distance": check_distance(params.get("distance", "cosine")),
        "permutations": RULES["shift"]["permutations"].check(
            params.get("permutations", RULES["shift"]["permutations"].default)
        ),
    }
    if out["f"] == out["g"]:
        raise ParameterError("F and G are the same rows; pick two different groups to compare.")
    return out, _content_key(
        "shift_groups", fp, model_id, out["g"], out["f"], out["distance"], out["permutations"]
    )


def _run_group_shift(ctx) -> None:
    from .memory import shared_cache
    from .overlap import check_overlap
    from .shift import shift_test

    p = ctx.params
    ctx.progress("reading the vectors", 0.0)
    cache = shared_cache()  # the pages' one read-only copy of the corpus
    X = cache.vectors(ctx.store, p["corpus"], p["model_id"])
    texts, metadata = cache.corpus(ctx.store, p["corpus"])
    rows_f, rows_g = group_rows(ctx.store, p["corpus"], p["g"], p["f"], texts, metadata)
    F, G = X[rows_f], X[rows_g]  # copies of those rows, for this job only
    ctx.checkpoint("depths with respect to F", 0.02)
    result = shift_test(F, G, p["distance"], permutations=p["permutations"], progress=ctx.checkpoint)
    ctx.progress("checking whether F and G share texts", 0.99)
    overlap = check_overlap([texts[i] for i in rows_f], [texts[i] for i in rows_g], F, G)
    result = result.with_notes(overlap.warning())
    ctx.store.put_result(ctx.job.key, "shift_groups", result.to_bytes())
    ctx.say(result.summary().splitlines()[0])


def _prepare_value_table(store, params: dict):
    from .jobs import _content_key

    name, model_id, column = params.get("corpus"), params.get("model_id"), params.get("column")
    if not model_id:
        raise ParameterError("A shift job needs model_id: the key of the vectors to compare.")
    if not isinstance(column, str) or not column:
        raise ParameterError(f"Name the column whose values to test, got {column!r:.100}.")
    fp = store.corpus_fingerprint(name)
    top = params.get("top", TOP_VALUES)
    if not isinstance(top, int) or not 1 <= top <= MAX_TOP_VALUES:
        raise ParameterError(f"top must be a whole number between 1 and {MAX_TOP_VALUES}, got {top!r:.50}.")
    out = {
        "corpus": name,
        "model_id": model_id,
        "column": column,
        "top": top,
        "permutations": RULES["shift"]["permutations"].check(
            params.get("permutations", RULES["shift"]["permutations"].default)
        ),
    }
    return out, _content_key("shift_values", fp, model_id, column, top, out["permutations"])


def _run_value_table(ctx) -> None:
    from .memory import shared_cache

    p = ctx.params
    ctx.progress("reading the vectors", 0.0)
    cache = shared_cache()
    X = cache.vectors(ctx.store, p["corpus"], p["model_id"])
    _, metadata = cache.corpus(ctx.store, p["corpus"])
    if p["column"] not in metadata.columns:
        raise ParameterError(
            f"{p['corpus']!r} has no column {p['column']!r}; its columns: {', '.join(metadata.columns) or 'none'}."
        )
    table = values_vs_rest(
        X,
        metadata.column(p["column"]),
        column=p["column"],
        top=p["top"],
        permutations=p["permutations"],
        progress=ctx.checkpoint,
    )
    ctx.store.put_result(ctx.job.key, "shift_values", table.to_bytes())
    ctx.say(table.summary().splitlines()[0])


def _register() -> None:
    from .jobs import JobKind, register

    register(JobKind("shift_groups", _prepare_group_shift, None, _run_group_shift))
    register(JobKind("shift_values", _prepare_value_table, None, _run_value_table))


_register()
