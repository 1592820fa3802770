"""Outliers on real embeddings: texts planted from other domains must surface."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ROOT

from analytics.outliers import find_outliers

PLANTED = ROOT / "tests" / "fixtures" / "planted_outliers.jsonl"


@pytest.fixture(scope="module")
def planted_corpus(sample_rows, embed_cached):
    news = [r["text"] for r in sample_rows if r["label"] in ("World", "Business")][:400]
    planted = [json.loads(line)["text"] for line in PLANTED.read_text(encoding="utf-8").splitlines()]
    texts = news + planted
    return embed_cached(texts), list(range(len(news), len(texts)))


def test_planted_texts_rank_among_the_lowest_depths(planted_corpus):
    X, planted = planted_corpus
    report = find_outliers(X, count=25)
    # measured: the 8 planted texts rank 1-23 of 408. The SQL query (customers, orders,
    # amounts) is the least outlying; it sits nearest Business news.
    assert set(planted) <= set(report.flagged.tolist()), report.percentiles[planted]
    assert report.percentiles[planted].max() <= 6.0  # all in the lowest 6% of depths
    assert np.median(report.percentiles[planted]) <= 3.0  # half in the lowest 3%


def test_knn_is_a_second_opinion_that_agrees_on_the_planted_texts(planted_corpus):
    X, planted = planted_corpus
    report = find_outliers(X, quantile=0.05, k=10)
    assert len(report.flagged) == int(np.ceil(0.05 * len(X)))
    assert np.median(report.knn_rank[planted]) <= 40  # most isolated 10% by k-NN as well
    # each flagged text comes with its nearest neighbours, nearest first, never itself
    assert report.neighbours.shape == (len(report.flagged), 10)
    assert not (report.neighbours == report.flagged[:, None]).any()
    assert np.all(np.diff(report.neighbour_similarity, axis=1) <= 1e-6)


def test_threshold_arguments_are_checked():
    X = np.random.default_rng(0).normal(size=(30, 5))
    with pytest.raises(ValueError, match="outliers quantile must be a finite number between 0.001 and 0.5"):
        find_outliers(X, quantile=1.5)
    with pytest.raises(ValueError, match="outliers count must be an integer, at least 1"):
        find_outliers(X, count=0)
    assert len(find_outliers(X, count=100).flagged) == 30
