"""The bundled sample corpus (AG News test split) and its precomputed vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
SAMPLE_CSV = SAMPLE_DIR / "ag_news.csv"
SAMPLE_VECTORS = SAMPLE_DIR / "ag_news.vectors.npy"
SAMPLE_NAME = "AG News (sample)"


def add_sample(store, name: str = SAMPLE_NAME) -> bool:
    """Store the sample as corpus ``name``, with its vectors from the bundled model when they
    ship beside it. Returns True when the vectors were imported (nothing left to embed)."""
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
    return True
