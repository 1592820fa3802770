"""How good is a retrieval model on the user's own data? Standard IR metrics from relevance
judgements (query id, document id, relevance), computed as trec_eval does (linear gain)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def load_qrels(path) -> dict[str, dict[str, int]]:
    """Relevance judgements from CSV/TSV with columns query-id, corpus-id, score (BEIR layout;
    ``query_id``/``doc_id``/``relevance`` also accepted)."""
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    qrels: dict[str, dict[str, int]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        fields = {n.lower().replace("_", "-"): n for n in reader.fieldnames or []}
        try:
            q, d = fields["query-id"], fields.get("corpus-id") or fields["doc-id"]
        except KeyError:
            raise ValueError(f"{path.name}: need columns query-id, corpus-id (or doc-id) and "
                             f"score; found {reader.fieldnames}.") from None
        s = fields.get("score") or fields.get("relevance")
        for row in reader:
            rel = int(float(row[s])) if s else 1
            qrels.setdefault(str(row[q]), {})[str(row[d])] = rel
    return qrels


def evaluate(run: dict[str, list[str]], qrels: dict[str, dict[str, int]],
             *, k_values=(1, 10, 100)) -> dict[str, float]:
    """Mean recall@k, nDCG@10 and MRR@10 over the judged queries that have a relevant document.

    ``run[qid]`` lists retrieved document ids, best first. A judged query missing from the run
    scores 0 (it retrieved nothing).
    """
    per_query = {f"recall@{k}": [] for k in k_values}
    per_query.update({"ndcg@10": [], "mrr@10": []})
    for qid, judged in qrels.items():
        relevant = {d: r for d, r in judged.items() if r > 0}
        if not relevant:
            continue
        ranked = list(run.get(qid, []))
        for k in k_values:
            per_query[f"recall@{k}"].append(len(relevant.keys() & set(ranked[:k])) / len(relevant))
        gains = [relevant.get(d, 0) for d in ranked[:10]]
        dcg = sum(g / np.log2(i + 2) for i, g in enumerate(gains))
        ideal = sorted(relevant.values(), reverse=True)[:10]
        idcg = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
        per_query["ndcg@10"].append(dcg / idcg)
        first = next((i for i, d in enumerate(ranked[:10]) if d in relevant), None)
        per_query["mrr@10"].append(0.0 if first is None else 1.0 / (first + 1))
    if not per_query["ndcg@10"]:
        raise ValueError("No judged query has a relevant document; check the relevance file.")
    out = {name: float(np.mean(v)) for name, v in per_query.items()}
    out["queries"] = len(per_query["ndcg@10"])
    return out
