"""Embedding Explorer's analytics library: everything the dashboard shows, usable from Python.

>>> import analytics
>>> depths = analytics.tte_depth(X)                  # depth of each row within X
>>> result = analytics.shift_test(F, G)             # has G shifted away from F?
>>> print(result.summary())
"""

from .corpus import Corpus, CorpusStream, load_corpus, load_vectors, stream_corpus
from .depth import (
    depth_order,
    depth_percentile,
    median_index,
    most_central,
    most_outlying,
    tte_depth,
)
from .embedding import Embedder, EmbedReport, embed_corpus, import_vectors
from .errors import (
    AccessError,
    CorpusError,
    DependencyError,
    EmbeddingError,
    ExplorerError,
    ModelError,
    ParameterError,
    SettingsError,
    SignInError,
    StoreError,
    StoreLockedError,
)
from .shift import ShiftResult, q_reference, q_score, shift_test
from .store import Store

__version__ = "0.1.0"

__all__ = [
    "AccessError",
    "Corpus",
    "CorpusError",
    "CorpusStream",
    "DependencyError",
    "EmbedReport",
    "Embedder",
    "EmbeddingError",
    "ExplorerError",
    "ModelError",
    "ParameterError",
    "SettingsError",
    "SignInError",
    "Store",
    "StoreError",
    "StoreLockedError",
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
