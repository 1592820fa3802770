"""Embedding Explorer's analytics library: everything the dashboard shows, usable from Python.

>>> import analytics
>>> depths = analytics.tte_depth(X)                  # depth of each row within X
>>> result = analytics.shift_test(F, G)             # has G shifted away from F?
>>> print(result.summary())
"""

from ._validate import EmbeddingError
from .corpus import Corpus, CorpusError, CorpusStream, load_corpus, load_vectors, stream_corpus
from .depth import (
    depth_order,
    depth_percentile,
    median_index,
    most_central,
    most_outlying,
    tte_depth,
)
from .embedding import Embedder, EmbedReport, ModelError, embed_corpus, import_vectors
from .shift import ShiftResult, q_reference, q_score, shift_test
from .store import Store, StoreError

__version__ = "0.1.0"

__all__ = [
    "Corpus",
    "CorpusError",
    "CorpusStream",
    "EmbedReport",
    "Embedder",
    "EmbeddingError",
    "ModelError",
    "Store",
    "StoreError",
    "embed_corpus",
    "import_vectors",
    "load_corpus",
    "load_vectors",
    "stream_corpus",
    "ShiftResult",
    "depth_order",
    "depth_percentile",
    "median_index",
    "most_central",
    "most_outlying",
    "q_reference",
    "q_score",
    "shift_test",
    "tte_depth",
]
