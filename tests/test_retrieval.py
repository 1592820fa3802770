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


# --- BM25 and the hybrid ---------------------------------------------------------------------


def okapi(corpus: list[str], query: str, k1: float = 1.2, b: float = 0.75) -> list[float]:
    """BM25 straight from its definition, one text and one query word at a time."""
    from collections import Counter

    from analytics.retrieval import tokenize

    docs = [tokenize(t) for t in corpus]
    n, avglen = len(docs), sum(map(len, docs)) / len(docs)
    scores = []
    for doc in docs:
        tf, score = Counter(doc), 0.0
        for word in tokenize(query):
            if tf[word]:
                df = sum(word in d for d in docs)
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                score += idf * tf[word] * (k1 + 1) / (tf[word] + k1 * (1 - b + b * len(doc) / avglen))
        scores.append(score)
    return scores


words = st.lists(st.sampled_from(["a", "b", "c", "dé", "E"]), max_size=7).map(" ".join)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(words, min_size=1, max_size=9),
    words,
    st.floats(0, 3),
    st.floats(0, 1),
    st.integers(1, 12),
)
def test_bm25_scores_equal_the_okapi_formula(corpus, query, k1, b, k):
    from analytics.retrieval import BM25Index

    index = BM25Index(corpus, k1=k1, b=b)
    scores = index.scores([query])[0]
    np.testing.assert_allclose(scores, okapi(corpus, query, k1, b), rtol=1e-9, atol=1e-12)
    hits = index.search(query, k)
    order = np.argsort(-scores, kind="stable")[: min(k, len(corpus))]  # ties: lower row first
    np.testing.assert_array_equal(hits.ids[0], order)
    np.testing.assert_array_equal(hits.scores[0], scores[order])


def test_tokenize_is_lowercased_unicode_words():
    from analytics.retrieval import tokenize

    assert tokenize("Who likes Quokkas?") == ["who", "likes", "quokkas"]
    assert tokenize("Don't STOP: café_au_lait, 3.5 Ünïcode") == [
        "don",
        "t",
        "stop",
        "café_au_lait",
        "3",
        "5",
        "ünïcode",
    ]
    assert tokenize("  ,;  ") == []


def test_bm25_edge_cases_are_answered_or_explained():
    from analytics import CorpusError
    from analytics.retrieval import BM25Index

    index = BM25Index(["", "pear", "pear pear apple"])
    assert index.search("kiwi", 5).ids.tolist() == [[0, 1, 2]]  # no shared word: all 0, corpus order
    assert index.search("kiwi", 5).scores.tolist() == [[0.0, 0.0, 0.0]]
    assert index.search(["pear", "apple"], 1).ids.tolist() == [[1], [2]]  # the shorter text first
    assert BM25Index(["", " "]).search("x", 2).scores.tolist() == [[0.0, 0.0]]  # no words at all
    with pytest.raises(CorpusError, match="at least one text"):
        BM25Index([])
    with pytest.raises(CorpusError, match=r"texts\[1\] is int, not text"):
        BM25Index(["a", 3])
    with pytest.raises(CorpusError, match="a list of texts, not one string"):
        BM25Index("one text")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search("pear", 0)
    with pytest.raises(ValueError, match="BM25 k1 must be a finite number between 0 and 3"):
        BM25Index(["a"], k1=-1)


def fusion_case():
    from analytics.retrieval import BM25Index

    corpus = ["red apple", "green pear", "pear pear tree"]
    X = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])  # cosine to the query [1, 0]: 1, 0.6, 0
    return corpus, ExactIndex(X), BM25Index(corpus), np.array([[1.0, 0.0]])


def test_convex_fusion_equals_hand_computed_scores():
    from analytics.retrieval import HybridIndex

    corpus, dense, words, q = fusion_case()
    bm = okapi(corpus, "pear")  # row 0 shares no word: left out of the BM25 list
    best = max(bm)
    expected = {0: 0.5 * 1.0, 1: 0.5 * 0.6 + 0.5 * bm[1] / best, 2: 0.5 * 0.0 + 0.5 * bm[2] / best}
    hits = HybridIndex(dense, words).search("pear", 3, query_vectors=q)
    ranked = sorted(expected, key=lambda i: (-expected[i], i))
    assert hits.ids[0].tolist() == ranked
    np.testing.assert_allclose(hits.scores[0], [expected[i] for i in ranked])
    dense_only = HybridIndex(dense, words, weight=1.0).search("pear", 3, query_vectors=q)
    assert dense_only.ids[0].tolist() == [0, 1, 2]


def test_rrf_fusion_equals_hand_computed_scores():
    from analytics.retrieval import HybridIndex

    corpus, dense, words, q = fusion_case()
    bm = okapi(corpus, "pear")
    bm_rank = {i: r for r, i in enumerate(sorted((1, 2), key=lambda i: -bm[i]), start=1)}
    expected = {i: 1 / (60 + i + 1) + (1 / (60 + bm_rank[i]) if i in bm_rank else 0) for i in range(3)}
    hits = HybridIndex(dense, words, fusion="rrf").search(["pear"], 2, query_vectors=q)
    ranked = sorted(expected, key=lambda i: (-expected[i], i))[:2]
    assert hits.ids[0].tolist() == ranked
    np.testing.assert_allclose(hits.scores[0], [expected[i] for i in ranked])


def test_hybrid_and_build_index_refuse_mismatched_inputs():
    from analytics.retrieval import BM25Index, HybridIndex, build_index

    corpus, dense, words, q = fusion_case()
    with pytest.raises(ValueError, match="dense index holds 3 texts and the BM25 index 2"):
        HybridIndex(dense, BM25Index(corpus[:2]))
    with pytest.raises(ValueError, match="Got 1 query texts but 2 query vectors"):
        HybridIndex(dense, words).search("pear", 2, query_vectors=np.ones((2, 2)))
    with pytest.raises(ValueError, match="hybrid fusion must be one of convex, rrf"):
        HybridIndex(dense, words, fusion="max")
    X = dense.vectors
    assert isinstance(build_index("dense", vectors=X), ExactIndex)
    assert isinstance(build_index("bm25", texts=corpus, k1=0.9), BM25Index)
    hybrid = build_index("hybrid", vectors=X, texts=corpus, b=0.5, fusion="rrf", rrf_k=10)
    assert (hybrid.fusion, hybrid.rrf_k, hybrid.lexical.b) == ("rrf", 10, 0.5)
    with pytest.raises(ValueError, match="Retrieval method 'hybrid' needs the corpus's texts"):
        build_index("hybrid", vectors=X)
    with pytest.raises(ValueError, match=r"'bm25' has no parameter weight \(it takes k1, b\)"):
        build_index("bm25", texts=corpus, weight=0.2)
    with pytest.raises(ValueError, match="retrieval method must be one of dense, bm25, hybrid"):
        build_index("splade", texts=corpus)


def test_search_text_sends_bm25_words_not_vectors():
    from analytics.retrieval import BM25Index

    hits = search_text(None, BM25Index(["red apple", "green pear"]), "Pear?", k=1)  # no model needed
    assert hits.ids.tolist() == [[1]]


def test_signature_defaults_are_the_rules_defaults():
    import inspect

    from analytics.params import RULES
    from analytics.retrieval import BM25Index, HybridIndex, build_index

    def defaults(fn):
        return {n: p.default for n, p in inspect.signature(fn).parameters.items()}

    assert defaults(build_index)["method"] == RULES["retrieval"]["method"].default
    for fn, table in ((BM25Index, "bm25"), (HybridIndex, "hybrid")):
        for name, rule in RULES[table].items():
            assert defaults(fn)[name] == rule.default, (table, name)


def test_embex_search_with_bm25_needs_no_model(tmp_path, capsys):
    import json

    from conftest import make_corpus

    from analytics.cli import main
    from analytics.store import Store

    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        s.add_corpus("fruit", make_corpus(["red apple", "green pear", "pear tree", "plum"]))
    assert (
        main(["search", "fruit", "pear", "--method", "bm25", "-k", "2", "--store", str(path), "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert [h["position"] for h in out["hits"]] == [1, 2] and out["method"] == "bm25"
    assert main(["search", "fruit", "pear", "--method", "bm25", "--store", str(path)]) == 0
    assert "Top 4 in 'fruit' for 'pear' by bm25:" in capsys.readouterr().out
    assert main(["search", "fruit", "  ", "--method", "bm25", "--store", str(path)]) == 2
    assert "embex: error: Type a query" in capsys.readouterr().err
