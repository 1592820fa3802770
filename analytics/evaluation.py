"""How good is a retrieval model on the user's own data? Standard IR metrics from relevance
judgements (query id, document id, relevance), computed as trec_eval does (linear gain)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .errors import CorpusError, ParameterError


def load_qrels(source, *, format: str | None = None) -> dict[str, dict[str, int]]:
    """Relevance judgements from CSV/TSV with columns query-id, corpus-id, score (BEIR layout;
    ``query_id``/``doc_id``/``relevance`` also accepted).

    ``source`` is a path, or the bytes of an upload with ``format`` ``"csv"`` or ``"tsv"``: an
    upload never touches the file system, so a name sent by a browser cannot choose a path.
    """
    import io

    if isinstance(source, (bytes, bytearray, memoryview)):
        if format not in ("csv", "tsv"):
            raise ParameterError("Pass format='csv' or 'tsv' with judgements given as bytes.")
        label = "the judgements file"
        try:
            text = bytes(source).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{label} is not UTF-8 (byte {exc.start}); save it as UTF-8.") from None
    else:
        path = Path(source)
        label = path.name
        format = format or ("tsv" if path.suffix.lower() in (".tsv", ".tab") else "csv")
        text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if format == "tsv" else ",")
    fields = {n.lower().replace("_", "-"): n for n in reader.fieldnames or []}
    try:
        q, d = fields["query-id"], fields.get("corpus-id") or fields["doc-id"]
    except KeyError:
        raise CorpusError(
            f"{label}: need columns query-id, corpus-id (or doc-id) and score; found {reader.fieldnames}."
        ) from None
    s = fields.get("score") or fields.get("relevance")
    qrels: dict[str, dict[str, int]] = {}
    for line, row in enumerate(reader, start=2):
        if row.get(q) is None or row.get(d) is None:
            raise CorpusError(
                f"{label}, line {line}: too few columns; each row needs a query id, "
                "a document id and a score."
            )
        try:
            rel = int(float(row[s])) if s else 1
        except (TypeError, ValueError, OverflowError):
            raise CorpusError(f"{label}, line {line}: score {row[s]!r} is not a number.") from None
        qrels.setdefault(str(row[q]), {})[str(row[d])] = rel
    return qrels


def load_queries(data) -> dict[str, str]:
    """Queries (query id -> text) from the bytes of a CSV upload with columns query-id and text
    (``query_id`` also accepted). A file that cannot be used raises :class:`CorpusError`."""
    import io

    label = "the queries file"
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{label} is not UTF-8 (byte {exc.start}); save it as UTF-8.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {n.lower().replace("_", "-"): n for n in reader.fieldnames or []}
    if "query-id" not in fields or "text" not in fields:
        raise CorpusError(f"{label}: need columns query-id and text; found {reader.fieldnames}.")
    q, t = fields["query-id"], fields["text"]
    queries: dict[str, str] = {}
    for line, row in enumerate(reader, start=2):
        if row.get(q) is None or row.get(t) is None:
            raise CorpusError(f"{label}, line {line}: too few columns; each row needs a query id and a text.")
        queries[str(row[q])] = row[t]
    if not queries:
        raise CorpusError(f"{label} has no queries.")
    return queries


def evaluate(
    run: dict[str, list[str]], qrels: dict[str, dict[str, int]], *, k_values=(1, 10, 100)
) -> dict[str, float]:
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
        raise CorpusError("No judged query has a relevant document; check the relevance file.")
    out = {name: float(np.mean(v)) for name, v in per_query.items()}
    out["queries"] = len(per_query["ndcg@10"])
    return out
