"""The bundled sample and the vectors shipped with it."""

from __future__ import annotations

import numpy as np

from analytics.embedding import DEFAULT_MODEL
from analytics.sample import SAMPLE_NAME, SAMPLE_VECTORS, add_sample


def test_shipped_vectors_are_the_bundled_models_output(sample_rows, embedder):
    V = np.load(SAMPLE_VECTORS)
    assert V.shape == (7600, 384) and V.dtype == np.float32
    rows = list(range(0, 7600, 190))  # 40 rows across the file
    np.testing.assert_allclose(embedder.encode([sample_rows[i]["text"] for i in rows]), V[rows], atol=2e-5)


def test_add_sample_stores_texts_labels_and_vectors(store):
    assert add_sample(store) is True
    info = store.corpus_info(SAMPLE_NAME)
    assert (info.n_docs, info.label_column) == (7600, "label")
    assert store.embedded_count(SAMPLE_NAME, DEFAULT_MODEL) == 7600
    np.testing.assert_allclose(store.vectors(SAMPLE_NAME, DEFAULT_MODEL), np.load(SAMPLE_VECTORS), atol=1e-6)
