"""Projections on real embeddings: deterministic, cached in the store, and faithful enough."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_corpus
from sklearn.manifold import trustworthiness

from analytics.errors import ParameterError
from analytics.projection import corpus_projection, project
from analytics.store import text_hash


@pytest.fixture(scope="module")
def two_topics(label_embeddings):
    X = np.concatenate([label_embeddings["World"][:300], label_embeddings["Sports"][:300]])
    return X, np.array([0] * 300 + [1] * 300)


def same_label_closer(coords, labels) -> float:
    d = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    same = labels[:, None] == labels[None]
    np.fill_diagonal(same, False)
    return d[same].mean() / d[~(labels[:, None] == labels[None])].mean()


@pytest.mark.parametrize("method, min_trust", [("pca", 0.70), ("umap", 0.88), ("tsne", 0.88)])
def test_maps_are_deterministic_and_keep_neighbours(two_topics, method, min_trust):
    X, labels = two_topics
    a = project(X, method, random_state=7)
    b = project(X, method, random_state=7)
    np.testing.assert_array_equal(a.coords, b.coords)
    trust = trustworthiness(X, a.coords, n_neighbors=10, metric="cosine")
    ratio = same_label_closer(a.coords, labels)
    print(f"{method}: trustworthiness@10 {trust:.3f}, same/different-label distance {ratio:.3f}")
    assert trust >= min_trust
    assert ratio < 0.8  # same-topic texts sit closer together than different-topic texts
    assert a.coords.shape == (600, 2) and a.coords.dtype == np.float32


def test_large_corpora_are_fitted_on_a_sample_and_say_so(two_topics):
    X, _ = two_topics
    for method in ("umap", "tsne", "pca"):
        p = project(X, method, sample_threshold=400, sample_size=300, random_state=1)
        assert p.fitted_on == 300 and p.n == 600 and np.isfinite(p.coords).all()
        assert "fitted on a random sample of 300 of 600 texts" in p.note


def test_projection_is_cached_in_the_store(store, two_topics, monkeypatch):
    X, _ = two_topics
    texts = [f"text {i}" for i in range(len(X))]
    store.add_corpus("c", make_corpus(texts))
    store.put_vectors("m", [text_hash(t) for t in texts], X)
    stages = []
    first = corpus_projection(store, "c", "m", "umap", n_neighbors=10, progress=lambda s, f: stages.append(s))
    assert not first.cached and stages[0].startswith("fitting UMAP") and stages[-1] == "done"

    import analytics.projection as projection

    def fail(*a, **k):
        raise AssertionError("a cached projection must not be recomputed")

    monkeypatch.setattr(projection, "project", fail)
    second = corpus_projection(store, "c", "m", "umap", n_neighbors=10)
    assert second.cached
    np.testing.assert_array_equal(second.coords, first.coords)
    with pytest.raises(AssertionError, match="must not be recomputed"):
        corpus_projection(store, "c", "m", "umap", n_neighbors=11)  # other parameters: new work


def test_bad_parameters_are_explained(two_topics):
    X, _ = two_topics
    with pytest.raises(ParameterError, match="projection method must be one of umap, pca, tsne, got 'mds'"):
        project(X, "mds")
    with pytest.raises(ParameterError, match="UMAP n_neighbors must be an integer between 2 and 200, got 1"):
        project(X, "umap", n_neighbors=1)
    with pytest.raises(
        ParameterError, match="UMAP min_dist must be a finite number between 0 and 1, got nan"
    ):
        project(X, "umap", min_dist=float("nan"))  # a NaN from a URL once crashed the Map page
    with pytest.raises(ParameterError, match=r"PCA has no parameter perplexity \(it takes none\)"):
        project(X, "pca", perplexity=5)
    with pytest.raises(
        ParameterError, match=r"t-SNE has no parameter n_neighbors \(it takes perplexity, metric\)"
    ):
        project(X, "tsne", n_neighbors=5)


def test_pca_equals_scikit_learn_up_to_sign(two_topics):
    from sklearn.decomposition import PCA

    X, _ = two_topics
    ours = project(X, "pca").coords.astype(np.float64)
    Xu = X / np.linalg.norm(X, axis=1, keepdims=True)
    theirs = PCA(2, svd_solver="full").fit_transform(Xu.astype(np.float64))
    for j in range(2):
        sign = np.sign(ours[:, j] @ theirs[:, j])
        np.testing.assert_allclose(ours[:, j], sign * theirs[:, j], atol=1e-4)
