"""Retrieval quality of the default model on SciFact (BEIR test = the 300 validation claims),
with our exact search and our evaluation: compare with the published figure.

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

from analytics.corpus import Corpus  # noqa: E402
from analytics.embedding import Embedder, embed_corpus  # noqa: E402
from analytics.evaluation import evaluate  # noqa: E402
from analytics.retrieval import ExactIndex  # noqa: E402
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
    index = ExactIndex(store.vectors("scifact", embedder.model_id))
    qids = list(claims)
    hits = index.search(embedder.encode([claims[q] for q in qids]), 100)
    run = {q: [docs[i][0] for i in row] for q, row in zip(qids, hits.ids)}
    m = evaluate(run, qrels, k_values=(10, 100))
    print(f"\nSciFact (BEIR test), {embedder.model_id}, exact cosine search:")
    for key in ("ndcg@10", "recall@10", "recall@100", "mrr@10"):
        print(f"  {key:11s} {m[key]:.4f}")
    print(f"  queries     {m['queries']}")
    store.close()


if __name__ == "__main__":
    main()
