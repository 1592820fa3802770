"""2D maps of an embedding space: PCA, UMAP and t-SNE, seeded so the same inputs draw the same
picture, and cached in the store so reopening a map costs nothing.

Above ``sample_threshold`` rows the method is fitted on a seeded sample and the remaining rows
are placed afterwards (UMAP and PCA by their own ``transform``; t-SNE, which has none, at the
similarity-weighted mean of each row's nearest sampled neighbours). ``Projection.note`` says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._validate import as_embeddings, checked_norms
from .errors import EmbeddingError
from .params import RULES, check_params, defaults

#: the fewest texts a map can be drawn from (UMAP and t-SNE need neighbours; PCA two axes)
MIN_TEXTS = 3

#: the methods; their parameters' ranges and defaults are the rules in :mod:`analytics.params`
METHODS = RULES["projection"]["method"].choices


def __getattr__(name):
    if name == "DEFAULTS":  # read from the rules on each access, so it never goes stale
        return {method: defaults(method) for method in RULES["projection"]["method"].choices}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Projection:
    coords: np.ndarray = field(repr=False)
    """(n, 2) float32 map coordinates, one row per text."""
    method: str
    params: dict
    n: int
    fitted_on: int
    """Rows the method was fitted on (< n when a large corpus was sampled)."""
    seconds: float
    cached: bool = False

    @property
    def note(self) -> str:
        if self.fitted_on >= self.n:
            return ""
        how = (
            "placed by transform"
            if self.method != "tsne"
            else "placed among their nearest sampled neighbours"
        )
        return (
            f"{self.method.upper()} was fitted on a random sample of {self.fitted_on:,} of "
            f"{self.n:,} texts; the other texts were {how}."
        )

    def describe(self) -> str:
        """Method and parameters in words, for chart titles."""
        ps = ", ".join(f"{k}={v}" for k, v in self.params.items() if k != "random_state")
        return (
            f"{self.method.upper()}"
            + (f" ({ps})" if ps else "")
            + f", seed {self.params.get('random_state', 0)}"
        )


def _params(method: str, random_state: int, overrides: dict) -> dict:
    """The method's defaults, updated with ``overrides``, each checked by its rule
    (:class:`~analytics.errors.ParameterError` names the parameter, its range and default)."""
    method = RULES["projection"]["method"].check(method)
    return {**defaults(method), **check_params(method, overrides), "random_state": int(random_state)}


def project(
    X,
    method: str = "umap",
    *,
    random_state: int = 0,
    sample_threshold: int = 50_000,
    sample_size: int = 20_000,
    progress=None,
    device: str | None = "cpu",
    **params,
) -> Projection:
    """Project the rows of X to 2D. ``progress(stage, fraction)`` hears about the slow steps."""
    X = as_embeddings(X, "X", min_rows=MIN_TEXTS, why=f"a 2-D map needs at least {MIN_TEXTS} texts")
    norms = checked_norms(X, "X")
    params = _params(method, random_state, params)
    n = X.shape[0]
    t0 = time.perf_counter()
    rng = np.random.default_rng(random_state)
    fit_rows = np.sort(rng.choice(n, sample_size, replace=False)) if n > sample_threshold else np.arange(n)
    report = progress or (lambda stage, fraction: None)
    report(f"fitting {method.upper()} on {fit_rows.size:,} texts", 0.0)
    coords = np.empty((n, 2), dtype=np.float32)
    rest = np.setdiff1d(np.arange(n), fit_rows)
    if method == "pca":  # normalises a block at a time: no second copy of a big X
        coords[:] = _pca(X, norms, fit_rows, device)
        report("done", 1.0)
        return Projection(coords, method, params, n, int(fit_rows.size), time.perf_counter() - t0)
    X = (X / norms[:, None]).astype(np.float32)
    if method == "umap":
        umap = _umap_module(device)
        kwargs = dict(
            n_components=2,
            n_neighbors=min(int(params["n_neighbors"]), fit_rows.size - 1),
            min_dist=float(params["min_dist"]),
            metric=params["metric"],
            random_state=random_state,
        )
        if fit_rows.size <= 3:  # the spectral start needs more than 3 points (scipy: k >= N)
            kwargs["init"] = "random"
        log = None
        if umap.__name__ == "umap":  # umap-learn only: cuML takes neither argument
            kwargs.update(transform_seed=random_state, n_jobs=1)
            if progress:  # its stages from its verbose lines, its epochs from its tqdm bar
                log = _UmapLog(report, fit_rows.size, end=0.85 if rest.size else 0.98)
                kwargs.update(verbose=True, tqdm_kwds=log.tqdm_kwds())
        model = umap.UMAP(**kwargs)
        with contextlib.redirect_stdout(log) if log else contextlib.nullcontext():
            coords[fit_rows] = model.fit_transform(X[fit_rows])
            if rest.size:
                report(f"placing the other {rest.size:,} texts on the map", 0.86)
                if log:
                    log.placing(rest.size, 0.86, 0.98)
                coords[rest] = model.transform(X[rest])
        if fit_rows.size >= _NN_DESCENT_ROWS:
            _compiled.add("nn-descent")
    else:
        from sklearn.manifold import TSNE

        perplexity = min(float(params["perplexity"]), (fit_rows.size - 1) / 3)
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            metric=params["metric"],
            init="pca",
            random_state=random_state,
            verbose=2 if progress else 0,
        )
        # with verbose=2 it prints "[t-SNE] Iteration n: ..." every 50 of its max_iter iterations
        log = _Counter(r"Iteration (\d+):", "t-SNE iteration", report, 0.05, 0.9 if rest.size else 0.98)
        log.total = getattr(tsne, "max_iter", None) or 1000
        with contextlib.redirect_stdout(log) if progress else contextlib.nullcontext():
            coords[fit_rows] = tsne.fit_transform(X[fit_rows])
        if rest.size:
            report("placing the other texts", 0.8)
            coords[rest] = _place_by_neighbours(X, fit_rows, rest, coords[fit_rows])
    report("done", 1.0)
    return Projection(coords, method, params, n, int(fit_rows.size), time.perf_counter() - t0)


class _Counter:
    """A file-like object that turns a library's progress lines ("12/200", "Iteration 50:")
    into ``report(stage, fraction)`` calls, the fraction mapped into [start, end]."""

    def __init__(self, pattern: str, what: str, report, start: float, end: float):
        self.pattern, self.what, self.report = re.compile(pattern, re.M), what, report
        self.start, self.end, self.total = start, end, None
        self._buffer = ""

    def write(self, s: str) -> int:
        # whole lines only: a library may write one line in several pieces
        *lines, self._buffer = re.split(r"[\r\n]", self._buffer + s)
        for m in self.pattern.finditer("\n".join(lines)):
            n = int(m.group(1))
            total = int(m.group(2)) if m.lastindex and m.lastindex > 1 else self.total
            if total:
                share = min(n / total, 1.0)
                self.report(f"{self.what} {n:,} of {total:,}", self.start + (self.end - self.start) * share)
        return len(s)

    def flush(self) -> None:
        pass


#: from this many rows UMAP finds neighbours by NN-descent (pynndescent) instead of computing
#: every distance; numba compiles that code on its first use in a process (up to a minute)
_NN_DESCENT_ROWS = 4096
#: which of UMAP's compiled paths this process has run once already
_compiled: set[str] = set()


class _UmapLog:
    """UMAP's own account of its work, turned into ``report(stage, fraction)`` calls: its
    verbose lines (stdout) name the stages and count the NN-descent rounds; its tqdm bar counts
    the layout epochs. The bar's shares are roughly those of a warm run: neighbours up to 20%,
    the neighbour graph and the spectral start to 30%, the epochs the rest (to ``end``)."""

    NEIGHBOURS, GRAPH, LAYOUT = (0.02, 0.2), 0.2, 0.3

    def __init__(self, report, rows: int, end: float = 0.98):
        self.report, self.end, self.rows, self.stdout = report, end, rows, sys.stdout
        self.rounds, self._buffer, self._last = None, "", 0.0
        self._epochs = _Counter(r"^\s*(\d+)/(\d+)", "UMAP epoch", self._report, self.LAYOUT, end)

    def placing(self, n: int, start: float, end: float) -> None:
        """From now on the epochs are those that place the ``n`` texts left out of the fit."""
        self._epochs.what = f"placing the other {n:,} texts: epoch"
        self._epochs.start, self._epochs.end = start, end

    def tqdm_kwds(self) -> dict:
        return {"file": self._epochs, "bar_format": "{n}/{total}\n", "disable": False, "mininterval": 0.25}

    def _report(self, stage: str, fraction: float) -> None:
        self._last = max(self._last, fraction)  # never backwards
        captured, sys.stdout = sys.stdout, self.stdout  # what the callback prints is not UMAP's
        try:
            self.report(stage, self._last)
        finally:
            sys.stdout = captured

    def write(self, s: str) -> int:
        self._buffer += s
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._line(line)
        return len(s)

    def flush(self) -> None:
        pass

    def _line(self, line: str) -> None:
        lo, hi = self.NEIGHBOURS
        if "Finding Nearest Neighbors" in line:
            self._report(f"finding each text's nearest neighbours among {self.rows:,}", lo)
        elif m := re.search(r"Building RP forest with (\d+) trees", line):
            self._report(f"nearest neighbours: {int(m.group(1))} random-projection trees", lo + 0.01)
        elif m := re.search(r"NN descent for (\d+) iterations", line):
            self.rounds = int(m.group(1))
            first = "nn-descent" not in _compiled
            note = " (the first large UMAP in this process compiles this step first: up to a minute)"
            self._report("nearest neighbours: NN-descent" + (note if first else ""), lo + 0.02)
        elif self.rounds and (m := re.match(r"^\s*(\d+)\s*/\s*(\d+)\s*$", line)):
            k, total = int(m.group(1)), int(m.group(2))
            share = (lo + 0.02) + (hi - lo - 0.02) * min(k / max(total, 1), 1.0)
            self._report(f"nearest neighbours: NN-descent round {k} of at most {total}", share)
        elif "Finished Nearest Neighbor Search" in line:
            self._report("building the neighbour graph", self.GRAPH)
        elif "Construct embedding" in line:
            self._report("laying out: spectral start", self.GRAPH + 0.05)


def warm_up() -> None:
    """Fit tiny UMAP and t-SNE maps, so that numba compiles UMAP's functions now (several
    seconds) rather than during the first map someone waits for. A worker process runs it when
    the server starts (``embex serve``), then :func:`warm_up_neighbours`."""
    X = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    project(X, "umap", n_neighbors=5)
    project(X, "tsne", perplexity=5)


def warm_up_neighbours() -> None:
    """Fit a UMAP map of 4,200 points, as every corpus of 4,096 texts or more is mapped: by
    NN-descent, whose code numba compiles on first use (up to a minute on a small machine)."""
    X = np.random.default_rng(0).normal(size=(_NN_DESCENT_ROWS + 104, 8)).astype(np.float32)
    project(X, "umap", n_neighbors=5)


def _umap_module(device):
    """cuML's GPU UMAP when running on CUDA and it is installed (it is not a dependency),
    else umap-learn."""
    if device not in (None, "cpu") and str(device).startswith("cuda"):
        try:
            from cuml import manifold as cuml_manifold

            return cuml_manifold
        except ImportError:
            pass  # no cuML here: umap-learn on the CPU is the fallback
    import umap

    return umap


def _pca(X, norms, fit_rows, device, block: int = 65536):
    """Top-2 principal components of the unit rows (X / norms) from the d x d covariance
    (float64, summed over row blocks), sign-fixed so the picture does not flip between runs.
    Deterministic, and O(n·d²) with BLAS doing the work: no SVD of the n x d matrix, and no
    normalised or centred copy of X (rows are normalised and projected a block at a time)."""

    def unit(rows):
        return (X[rows] / norms[rows, None]).astype(np.float32)

    F = unit(fit_rows)
    mean = F.mean(axis=0, dtype=np.float64)
    if device not in (None, "cpu"):
        import torch

        T = torch.as_tensor(F, device=device, dtype=torch.float32)
        cov = (T.T @ T).double().cpu().numpy()
    else:
        cov = np.zeros((X.shape[1], X.shape[1]))
        for start in range(0, F.shape[0], block):
            B = F[start : start + block]
            cov += B.T @ B
    cov = cov / F.shape[0] - np.outer(mean, mean)
    _, vecs = np.linalg.eigh(cov)
    components = vecs[:, ::-1][:, :2].T.copy()
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    components *= signs[:, None]
    out = np.empty((X.shape[0], 2), dtype=np.float32)
    for start in range(0, X.shape[0], block):
        rows = slice(start, start + block)
        out[rows] = (unit(rows) - mean) @ components.T
    return out


def _place_by_neighbours(X, fit_rows, rest, fit_coords, k: int = 10):
    from .retrieval import ExactIndex

    hits = ExactIndex(X[fit_rows]).search(X[rest], k)
    w = np.clip(hits.scores, 1e-6, None)
    return (fit_coords[hits.ids] * w[..., None]).sum(axis=1) / w.sum(axis=1, keepdims=True)


def require_texts(name: str, n_docs: int, what: str = "a map") -> None:
    """An :class:`EmbeddingError` that says how many texts are needed when corpus ``name``
    holds fewer than :data:`MIN_TEXTS`."""
    if n_docs < MIN_TEXTS:
        raise EmbeddingError(
            f"Corpus {name!r} has {n_docs} text{'s' * (n_docs != 1)}; {what} needs at least "
            f"{MIN_TEXTS}. Add texts to it, or pick a larger corpus."
        )


def projection_key(fingerprint: str, model_id: str, method: str, params: dict, sampling: tuple) -> str:
    blob = json.dumps([fingerprint, model_id, method, params, list(sampling)], sort_keys=True)
    return "projection:" + hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class ProjectionRequest:
    """What identifies a stored corpus's map: its texts (fingerprint), model, method and every
    parameter. ``key`` names the cached result; identical requests share it (and one job)."""

    name: str
    model_id: str
    method: str
    params: dict
    sample_threshold: int
    sample_size: int
    device: str
    key: str
    #: more corpora drawn on the same map (their rows follow ``name``'s, in this order)
    others: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every corpus on the map, in the order of its rows."""
        return (self.name, *self.others)

    def kwargs(self) -> dict:
        """:func:`project`'s keyword arguments for this request."""
        extra = {k: v for k, v in self.params.items() if k != "random_state"}
        return dict(
            method=self.method,
            random_state=self.params["random_state"],
            sample_threshold=self.sample_threshold,
            sample_size=self.sample_size,
            device=self.device,
            **extra,
        )


def projection_request(
    store,
    name: str,
    model_id: str,
    method: str = "umap",
    *,
    random_state: int = 0,
    sample_threshold: int = 50_000,
    sample_size: int = 20_000,
    device: str | None = "cpu",
    others: Sequence[str] = (),
    **params,
) -> ProjectionRequest:
    """Check a map request (parameters by their rules, enough texts) and name its result.
    ``others``: more corpora projected together with ``name`` onto one map (the shift test's F
    and G on one picture), their rows after ``name``'s."""
    full = _params(method, random_state, params)
    others = tuple(dict.fromkeys(o for o in others if o != name))
    require_texts(name, sum(store.corpus_info(n).n_docs for n in (name, *others)))
    device = device or "cpu"
    fingerprint = store.corpus_fingerprint(name)
    if others:  # a joint map is another picture: its key names every corpus's texts, in order
        fingerprint = "+".join([fingerprint, *(store.corpus_fingerprint(o) for o in others)])
    # the device is in the key: cuML's UMAP on a GPU draws a different picture than umap-learn
    key = projection_key(fingerprint, model_id, method, full, (sample_threshold, sample_size, device))
    return ProjectionRequest(name, model_id, method, full, sample_threshold, sample_size, device, key, others)


def cached_projection(store, request: ProjectionRequest) -> Projection | None:
    """The stored map for ``request``, or None when it has not been computed."""
    payload = store.get_result(request.key)
    if payload is None:
        return None
    with np.load(io.BytesIO(payload), allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return Projection(
            z["coords"], request.method, request.params, meta["n"], meta["fitted_on"], meta["seconds"], True
        )


def save_projection(store, request: ProjectionRequest, proj: Projection) -> None:
    buf = io.BytesIO()
    meta = {"n": proj.n, "fitted_on": proj.fitted_on, "seconds": proj.seconds}
    np.savez(buf, coords=proj.coords, meta=np.array(json.dumps(meta)))
    store.put_result(request.key, "projection", buf.getvalue())


def corpus_projection(store, name: str, model_id: str, method: str = "umap", *, progress=None, **kwargs):
    """:func:`project` a stored corpus, cached in the store by (corpus texts, model, method,
    parameters): the second call with the same inputs reads the map instead of computing it.
    Keyword arguments: :func:`projection_request`'s. (The dashboard runs the same computation
    as a background job: :mod:`analytics.jobs`.)"""
    request = projection_request(store, name, model_id, method, **kwargs)
    cached = cached_projection(store, request)
    if cached is not None:
        return cached
    from .memory import shared_cache  # the process's one read-only copy, not another

    proj = project(shared_cache().vectors(store, name, model_id), progress=progress, **request.kwargs())
    save_projection(store, request, proj)
    return proj
