"""Retrieval quality on SciFact (BEIR test = the 300 validation claims): dense search with the
default model (compare with the published figure), BM25, and the hybrid of the two, all
through our evaluation.

    .venv/bin/python benchmarks/eval_scifact.py

Documents are title + " " + abstract (BEIR's convention), embedded through the store (cached in
benchmarks/.cache/scifact.duckdb), queries are the claims, relevance = cited_doc_ids (binary).
"""

from __future__ import annotations

import ast
import csv
import io
import re
import sys
import tokenize
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import machine, metrics_table  # noqa: E402

from analytics.corpus import Corpus  # noqa: E402
from analytics.embedding import Embedder, embed_corpus  # noqa: E402
from analytics.evaluation import evaluate_methods  # noqa: E402
from analytics.retrieval import BM25Index, ExactIndex, HybridIndex  # noqa: E402
from analytics.store import Store  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "scifact"


def sentences(field: str) -> list[str]:
    """The abstract is a numpy-style list repr of strings with no commas: collect the strings."""
    toks = tokenize.generate_tokens(io.StringIO(field).readline)
    return [ast.literal_eval(t.string) for t in toks if t.type == tokenize.STRING]


def main() -> None:
    csv.field_size_limit(2**31 - 1)
    with open(DATA / "corpus_train.csv", newline="", encoding="utf-8") as f:
        docs = [
            (r["doc_id"], f"{r['title']} {' '.join(sentences(r['abstract']))}".strip())
            for r in csv.DictReader(f)
        ]
    qrels: dict[str, dict[str, int]] = {}
    claims: dict[str, str] = {}
    with open(DATA / "claims_validation.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            claims[r["id"]] = r["claim"]
            for doc in re.findall(r"\d+", r["cited_doc_ids"]):
                qrels.setdefault(r["id"], {})[doc] = 1
    print(
        f"{len(docs):,} documents, {len(claims)} claims, {sum(len(v) for v in qrels.values())} relevant pairs"
    )

    cache = HERE / ".cache"
    cache.mkdir(exist_ok=True)
    store = Store(cache / "scifact.duckdb")
    if "scifact" not in [c.name for c in store.list_corpora()]:
        store.add_corpus(
            "scifact",
            Corpus([t for _, t in docs], [{"doc_id": d} for d, _ in docs], "text", "SciFact corpus"),
        )
    embedder = Embedder(device="auto")
    report = embed_corpus(store, "scifact", embedder)
    print(report.summary())
    dense = ExactIndex(store.vectors("scifact", embedder.model_id))
    lexical = BM25Index([t for _, t in docs])
    indexes = {
        "dense (exact cosine)": dense,
        "BM25": lexical,
        "hybrid (convex, weight 0.5)": HybridIndex(dense, lexical),
        "hybrid (RRF, k 60)": HybridIndex(dense, lexical, fusion="rrf"),
    }
    rows = evaluate_methods(
        indexes, claims, qrels, [d for d, _ in docs], embedder=embedder, k_values=(2, 10, 100)
    )
    print(f"\nSciFact (BEIR test), {embedder.model_id}, {machine()}:")
    print(metrics_table(rows, ("ndcg@10", "recall@2", "recall@10", "recall@100", "mrr@10")))
    print(f"queries: {rows[0]['queries']}")
    store.close()


if __name__ == "__main__":
    main()
