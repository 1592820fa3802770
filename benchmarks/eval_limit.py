"""Dense, BM25 and hybrid search on the LIMIT-style stress set (tests/fixtures/limit/, made by
tests/fixtures/make_limit.py): 46 people and the things they like, 276 "Who likes X?" queries,
two relevant people each. A single-vector embedder must rank a different pair first for every
query (Weller et al. 2025); BM25 needs only the rare word.

    .venv/bin/python benchmarks/eval_limit.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import machine, metrics_table  # noqa: E402

from analytics.corpus import load_corpus  # noqa: E402
from analytics.embedding import Embedder  # noqa: E402
from analytics.evaluation import evaluate_methods, load_qrels, load_queries  # noqa: E402
from analytics.retrieval import BM25Index, ExactIndex, HybridIndex  # noqa: E402

LIMIT = ROOT / "tests" / "fixtures" / "limit"


def main() -> None:
    corpus = load_corpus(LIMIT / "corpus.jsonl")
    queries, qrels = load_queries(LIMIT / "queries.jsonl"), load_qrels(LIMIT / "qrels.jsonl")
    embedder = Embedder(device="cpu", precision="float32")  # what the test suite uses
    dense, words = ExactIndex(embedder.encode(corpus.texts)), BM25Index(corpus.texts)
    indexes = {
        "dense (exact cosine)": dense,
        "BM25": words,
        "hybrid (convex, weight 0.5)": HybridIndex(dense, words),
        "hybrid (RRF, k 60)": HybridIndex(dense, words, fusion="rrf"),
    }
    doc_ids = [m["_id"] for m in corpus.metadata]
    rows = evaluate_methods(indexes, queries, qrels, doc_ids, embedder=embedder, k_values=(2, 10, 20))
    print(
        f"LIMIT-style set: {len(doc_ids)} documents, {len(queries)} queries; {embedder.model_id}; {machine()}"
    )
    print(metrics_table(rows, ("recall@2", "recall@10", "recall@20", "ndcg@10", "mrr@10")))


if __name__ == "__main__":
    main()
