"""Retrieval: exact top-k against brute force, approximate recall, "more like this",
and the evaluation metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.evaluation import evaluate, load_qrels
from analytics.retrieval import (
    ApproxIndex,
    ExactIndex,
    more_like_this,
    recall_at_k,
    search_text,
)


def brute_top_k(X, Q, k):
    Xu = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qu = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    S = Qu.astype(np.float64) @ Xu.T.astype(np.float64)
    return np.argsort(-S, axis=1, kind="stable")[:, :k], np.sort(S, axis=1)[:, ::-1][:, :k]


def test_exact_equals_brute_force_argsort_on_real_embeddings(label_embeddings):
    X = np.concatenate([label_embeddings["World"], label_embeddings["Sports"]])
    Q = X[::97] + 0.01
    ids, scores = brute_top_k(X, Q, 10)
    result = ExactIndex(X).search(Q, 10)
    np.testing.assert_array_equal(result.ids, ids)
    np.testing.assert_allclose(result.scores, scores, atol=1e-5)
    assert result.ranks[0].tolist() == list(range(1, 11))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 12), st.integers(0, 10_000))
def test_exact_search_blocks_equal_one_shot(n, k, seed):
    import analytics.retrieval as r

    rng = np.random.default_rng(seed)
    X, Q = rng.normal(size=(n, 6)), rng.normal(size=(3, 6))
    old = r._SCORE_BLOCK_BYTES
    r._SCORE_BLOCK_BYTES = 4 * 3 * 7  # 7-row blocks: many merges
    try:
        small = ExactIndex(X).search(Q, k)
    finally:
        r._SCORE_BLOCK_BYTES = old
    ids, _ = brute_top_k(X, Q, min(k, n))
    np.testing.assert_array_equal(small.ids, ids)


def test_torch_path_equals_numpy():
    rng = np.random.default_rng(1)
    X, Q = rng.normal(size=(500, 16)), rng.normal(size=(5, 16))
    cpu = ExactIndex(X).search(Q, 7)
    torch_idx = ExactIndex(X)
    import torch

    torch_idx.device, torch_idx._gpu = "cpu", torch.as_tensor(torch_idx.vectors)  # the CUDA code path
    np.testing.assert_array_equal(torch_idx.search(Q, 7).ids, cpu.ids)


def test_approximate_index_recall_on_real_embeddings(label_embeddings):
    pytest.importorskip("faiss")
    X = np.concatenate([label_embeddings["World"], label_embeddings["Sports"]])
    Q = X[::25]
    exact = ExactIndex(X).search(Q, 10)
    approx = ApproxIndex(X).search(Q, 10)
    recall = recall_at_k(approx.ids, exact.ids)
    print(f"HNSW recall@10 on {len(X)} real embeddings: {recall:.4f}")
    assert recall >= 0.95


def test_more_like_this_excludes_itself(label_embeddings):
    X = label_embeddings["World"][:300]
    idx = ExactIndex(X)
    hits = more_like_this(idx, 42, 5)
    assert 42 not in hits.ids[0] and hits.ids.shape == (1, 5)
    ids, _ = brute_top_k(X, X[42:43], 6)
    assert hits.ids[0].tolist() == [i for i in ids[0] if i != 42][:5]
    with pytest.raises(ValueError, match=r"row must be in 0\.\.299"):
        more_like_this(idx, 300)


def test_text_query_with_the_real_model(embedder, sample_rows):
    texts = [r["text"] for r in sample_rows[:400]]
    idx = ExactIndex(embedder.encode(texts))
    hits = search_text(embedder, idx, "Olympic swimming medals in Athens", k=5)
    assert sum("Olymp" in texts[i] or "Athens" in texts[i] for i in hits.ids[0]) >= 3
    with pytest.raises(ValueError, match="empty query"):
        search_text(embedder, idx, "   ")


def test_bad_queries_and_k():
    idx = ExactIndex(np.eye(4))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        idx.search(np.ones(4), 0)
    from analytics import EmbeddingError

    with pytest.raises(EmbeddingError, match="queries has dimension 3 but corpus has 4"):
        idx.search(np.ones(3), 2)
    assert idx.search(np.ones(4), 10).ids.shape == (1, 4)  # k larger than the corpus


# --- evaluation ------------------------------------------------------------------------------


def test_metrics_equal_hand_computed_values(tmp_path):
    path = tmp_path / "qrels.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\td9\t1\nq3\td5\t0\n")
    qrels = load_qrels(path)
    run = {"q1": ["d3", "d2", "d4", "d1"], "q2": ["d8", "d7"]}
    m = evaluate(run, qrels, k_values=(1, 2, 10))
    # q1: relevant d1 (1) at rank 4, d2 (2) at rank 2; q2: d9 never found; q3 judged non-relevant only
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert m["queries"] == 2
    assert m["ndcg@10"] == pytest.approx((dcg / idcg + 0.0) / 2)
    assert m["mrr@10"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["recall@1"] == 0.0
    assert m["recall@2"] == pytest.approx((0.5 + 0) / 2)
    assert m["recall@10"] == pytest.approx((1.0 + 0) / 2)


def test_perfect_run_scores_one_and_bad_qrels_are_explained(tmp_path):
    qrels = {"a": {"x": 1, "y": 1}, "b": {"z": 3}}
    m = evaluate({"a": ["y", "x"], "b": ["z"]}, qrels)
    assert m["ndcg@10"] == m["mrr@10"] == m["recall@10"] == 1.0
    bad = tmp_path / "bad.csv"
    bad.write_text("question,document\n1,2\n")
    with pytest.raises(ValueError, match="need columns query-id, corpus-id"):
        load_qrels(bad)


def test_uploaded_judgements_are_parsed_from_bytes_not_a_path(tmp_path):
    data = b"query-id\tcorpus-id\tscore\nq1\td1\t1\n"
    assert load_qrels(data, format="tsv") == {"q1": {"d1": 1}}
    assert load_qrels(data.replace(b"\t", b","), format="csv") == {"q1": {"d1": 1}}
    with pytest.raises(ValueError, match="line 3: score 'high' is not a number"):
        load_qrels(b"query-id,corpus-id,score\nq1,d1,1\nq1,d2,high\n", format="csv")
    with pytest.raises(ValueError, match="line 2: too few columns"):
        load_qrels(b"query-id,corpus-id,score\nq1\n", format="csv")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_qrels("query-id,corpus-id,score\nq1,d1,1\n".encode("utf-16"), format="csv")


def test_uploaded_queries_are_parsed_or_explained():
    from analytics.errors import CorpusError
    from analytics.evaluation import load_queries

    assert load_queries(b'\xef\xbb\xbfquery-id,text\nq1,first query\nq2,"a, b"\n') == {
        "q1": "first query",
        "q2": "a, b",
    }
    assert load_queries(b"query_id,text\n7,x\n") == {"7": "x"}
    with pytest.raises(CorpusError, match="need columns query-id and text"):
        load_queries(b"id,question\n1,x\n")
    with pytest.raises(CorpusError, match="line 3: too few columns"):
        load_queries(b"query-id,text\nq1,x\nq2\n")
    with pytest.raises(CorpusError, match="not UTF-8"):
        load_queries("query-id,text\nq1,x\n".encode("utf-16"))
    with pytest.raises(CorpusError, match="has no queries"):
        load_queries(b"query-id,text\n")


def test_no_page_joins_a_browser_file_name_to_a_path():
    """A file name sent by a browser (``UploadedFile.name``) must never reach the file system:
    an absolute or ``../`` name would write wherever the server can (issue 9, item 1)."""
    import re

    from conftest import ROOT

    for page in (ROOT / "dashboard").rglob("*.py"):
        source = page.read_text(encoding="utf-8")
        assert not re.search(r"/\s*\w+\.name\b", source), page
        assert "write_bytes" not in source and "open(" not in source.replace("st.page_link", ""), page
