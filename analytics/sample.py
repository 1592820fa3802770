"""The bundled sample corpus (AG News test split), its precomputed vectors and its default map.

Both precomputed files make a first start fast: with the vectors nothing is embedded, and with
the map (the default method's coordinates, computed by this package's own
:func:`~analytics.projection.corpus_projection`) the Map page opens on a cache hit instead of
a first UMAP (about 40 s on a small machine, most of it numba compiling).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
SAMPLE_CSV = SAMPLE_DIR / "ag_news.csv"
SAMPLE_VECTORS = SAMPLE_DIR / "ag_news.vectors.npy"
SAMPLE_MAP = SAMPLE_DIR / "ag_news.map.npz"
SAMPLE_NAME = "AG News (sample)"


def add_sample(store, name: str = SAMPLE_NAME) -> bool:
    """Store the sample as corpus ``name``, with its vectors from the bundled model when they
    ship beside it, and its default map (:func:`add_sample_map`). Returns True when the vectors
    were imported (nothing left to embed)."""
    from .corpus import load_corpus
    from .embedding import DEFAULT_MODEL, import_vectors

    corpus = load_corpus(SAMPLE_CSV, "text")
    store.add_corpus(name, corpus, label_column="label")
    if not SAMPLE_VECTORS.exists():
        return False
    vectors = np.load(SAMPLE_VECTORS, allow_pickle=False)
    if vectors.shape != (len(corpus), 384):
        return False  # stale file: embed instead
    import_vectors(store, name, vectors, DEFAULT_MODEL)
    add_sample_map(store, name)
    return True


def sample_map_request(store, name: str = SAMPLE_NAME):
    """The request the Map page makes first for the sample: the default method at its default
    parameters, on the shipped vectors (:data:`~analytics.embedding.DEFAULT_MODEL`)."""
    from .embedding import DEFAULT_MODEL
    from .params import RULES
    from .projection import projection_request

    return projection_request(store, name, DEFAULT_MODEL, RULES["projection"]["method"].default)


def read_sample_map(path=None) -> tuple[np.ndarray, dict] | None:
    """The shipped map: (coordinates, what they are: key, method, parameters, n, fitted_on,
    seconds), or None when the file is missing or unreadable."""
    try:
        with np.load(SAMPLE_MAP if path is None else path, allow_pickle=False) as z:
            return np.asarray(z["coords"], dtype=np.float32), json.loads(str(z["meta"]))
    except (OSError, KeyError, ValueError):
        return None


def add_sample_map(store, name: str = SAMPLE_NAME, path=None) -> bool:
    """Put the shipped map of the sample into the store's projection cache, so the first map
    is a cache hit. Only when it is the map this code would compute: its key (texts, model,
    method, every parameter, sampling, device) must be the current request's, else nothing is
    stored and the map is computed as usual. Returns True when the cache holds it."""
    from .projection import Projection, cached_projection, save_projection

    shipped = read_sample_map(SAMPLE_MAP if path is None else path)
    if shipped is None:
        return False
    coords, meta = shipped
    request = sample_map_request(store, name)
    n = store.corpus_info(name).n_docs
    if meta.get("key") != request.key or coords.shape != (n, 2) or not np.isfinite(coords).all():
        return False  # another version's map: compute it instead
    if cached_projection(store, request) is None:
        proj = Projection(
            coords, request.method, request.params, n, int(meta["fitted_on"]), float(meta["seconds"])
        )
        save_projection(store, request, proj)
    return True


def write_sample_map(path=None, progress=None) -> dict:
    """Compute the sample's default map with the code the Map page runs (a temporary store
    holding the sample and its shipped vectors, :func:`~analytics.projection.corpus_projection`)
    and write it to ``path`` with its key. Returns the metadata written."""
    import tempfile

    from .projection import corpus_projection
    from .store import Store

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "sample.duckdb") as store:
        from .corpus import load_corpus
        from .embedding import DEFAULT_MODEL, import_vectors

        store.add_corpus(SAMPLE_NAME, load_corpus(SAMPLE_CSV, "text"), label_column="label")
        import_vectors(store, SAMPLE_NAME, np.load(SAMPLE_VECTORS, allow_pickle=False), DEFAULT_MODEL)
        request = sample_map_request(store)
        kwargs = {k: v for k, v in request.kwargs().items() if k != "method"}
        proj = corpus_projection(
            store, SAMPLE_NAME, DEFAULT_MODEL, request.method, progress=progress, **kwargs
        )
    meta = {
        "key": request.key,
        "method": request.method,
        "params": request.params,
        "n": proj.n,
        "fitted_on": proj.fitted_on,
        "seconds": round(proj.seconds, 1),
    }
    np.savez_compressed(
        SAMPLE_MAP if path is None else path,
        coords=proj.coords.astype(np.float32),
        meta=np.array(json.dumps(meta)),
    )
    return meta
