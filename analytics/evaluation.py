"""How good is a retrieval method on the user's own data? Standard IR metrics from relevance
judgements (query id, document id, relevance), computed as trec_eval does (linear gain).

Judgements and queries are read in the layouts BEIR and MTEB publish: qrels as TSV/CSV with
columns query-id, corpus-id, score, or as JSON Lines, one ``{"query-id": ..., "corpus-id": ...,
"score": ...}`` object a line; queries as CSV (query-id, text) or JSON Lines
(``{"_id": ..., "text": ...}``, BEIR's queries.jsonl).
"""

from __future__ import annotations

import csv
import io
import json
from numbers import Integral
from pathlib import Path

import numpy as np

from .errors import CorpusError, ParameterError

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def _read_text(source, format: str | None, formats: tuple[str, ...], what: str) -> tuple[str, str, str]:
    """``(text, format, label)`` of a path or of an upload's bytes. An upload never touches the
    file system, so a name sent by a browser cannot choose a path; its ``format`` says how to
    parse it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if format not in formats:
            names = [f"'{f}'" for f in formats]
            raise ParameterError(
                f"Pass format={', '.join(names[:-1])} or {names[-1]} with {what} given as bytes."
            )
        label, data = f"the {what} file", bytes(source)
    else:
        path = Path(source)
        label = path.name
        suffix = path.suffix.lower()
        format = format or (
            "tsv" if suffix in (".tsv", ".tab") else "jsonl" if suffix in _JSONL_SUFFIXES else "csv"
        )
        if format not in formats:
            raise ParameterError(f"{label}: {what} are read from {', '.join(formats)}, not {format!r}.")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorpusError(f"{label}: cannot read it ({exc.strerror or exc}).") from None
    try:
        return data.decode("utf-8-sig"), format, label
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{label} is not UTF-8 (byte {exc.start}); save it as UTF-8.") from None


def _keys(names) -> dict[str, str]:
    """Column or key names by their normal form: lower case, ``_`` as ``-`` (``query_id`` is
    ``query-id``, BEIR's ``_id`` is ``-id``)."""
    return {str(n).strip().lower().replace("_", "-"): n for n in names or []}


def _jsonl_records(text: str, label: str, example: str):
    """``(line number, object)`` for each non-blank line; anything else names its line. Lines
    end at \\n, \\r or \\r\\n only (as in ``analytics.corpus``), so a raw U+2028 inside a JSON
    string does not split its line."""
    for line, raw in enumerate(io.StringIO(text, newline=None), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CorpusError(
                f"{label}, line {line}: not valid JSON ({exc.msg}); each line must be one object "
                f"such as {example}."
            ) from None
        if not isinstance(record, dict):
            raise CorpusError(
                f"{label}, line {line}: a JSON {type(record).__name__}, not an object such as {example}."
            )
        yield line, record


def _id(value, label: str, line: int, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise CorpusError(f"{label}, line {line}: {name} must be a string or an integer, got {value!r}.")
    return str(value)


def _score(value, label: str, line: int) -> int:
    if isinstance(value, bool):
        value = str(value)
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise CorpusError(f"{label}, line {line}: score {value!r} is not a number.") from None


_QRELS_EXAMPLE = '{"query-id": "q1", "corpus-id": "d7", "score": 1}'


def _qrels_jsonl(text: str, label: str):
    for line, record in _jsonl_records(text, label, _QRELS_EXAMPLE):
        keys = _keys(record)
        q, d = keys.get("query-id"), keys.get("corpus-id") or keys.get("doc-id")
        s = keys.get("score") or keys.get("relevance")
        if q is None or d is None:
            raise CorpusError(
                f"{label}, line {line}: needs query-id and corpus-id (and score), found keys "
                f"{sorted(record)}; e.g. {_QRELS_EXAMPLE}."
            )
        rel = _score(record[s], label, line) if s else 1
        yield _id(record[q], label, line, "query-id"), _id(record[d], label, line, "corpus-id"), rel


def _qrels_table(text: str, label: str, delimiter: str):
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    fields = _keys(reader.fieldnames)
    try:
        q, d = fields["query-id"], fields.get("corpus-id") or fields["doc-id"]
    except KeyError:
        raise CorpusError(
            f"{label}: need columns query-id, corpus-id (or doc-id) and score; found {reader.fieldnames}."
        ) from None
    s = fields.get("score") or fields.get("relevance")
    for line, row in enumerate(reader, start=2):
        if row.get(q) is None or row.get(d) is None:
            raise CorpusError(
                f"{label}, line {line}: too few columns; each row needs a query id, "
                "a document id and a score."
            )
        yield str(row[q]), str(row[d]), _score(row[s], label, line) if s else 1


def load_qrels(source, *, format: str | None = None) -> dict[str, dict[str, int]]:
    """Relevance judgements, query id -> document id -> relevance (an integer; > 0 relevant).

    Read from CSV/TSV with columns query-id, corpus-id, score (BEIR layout; ``query_id``,
    ``doc_id``/``doc-id`` and ``relevance`` also accepted; no score column means relevance 1),
    or from JSON Lines with the same keys, one judgement a line (MTEB's qrels). ``source`` is a
    path (the format from its suffix: .tsv/.tab, .jsonl/.ndjson/.json, else CSV) or the bytes of
    an upload with ``format`` ``"csv"``, ``"tsv"`` or ``"jsonl"``. A line that cannot be used
    raises :class:`CorpusError` naming it.
    """
    text, format, label = _read_text(source, format, ("csv", "tsv", "jsonl"), "judgements")
    if format == "jsonl":
        rows = _qrels_jsonl(text, label)
    else:
        rows = _qrels_table(text, label, "\t" if format == "tsv" else ",")
    qrels: dict[str, dict[str, int]] = {}
    for qid, doc, rel in rows:
        qrels.setdefault(qid, {})[doc] = rel
    if not qrels:
        raise CorpusError(f"{label} has no judgements.")
    return qrels


_QUERIES_EXAMPLE = '{"_id": "q1", "text": "who likes quokkas?"}'


def load_queries(source, *, format: str | None = None) -> dict[str, str]:
    """Queries, query id -> text, from CSV with columns query-id and text (``query_id``
    accepted), or JSON Lines with ``_id`` (or ``query-id``/``id``) and ``text`` a line (BEIR's
    queries.jsonl). ``source`` is a path (JSON Lines by its suffix, else CSV) or an upload's
    bytes (``format`` ``"csv"``, the default, or ``"jsonl"``). A file that cannot be used raises
    :class:`CorpusError`."""
    if isinstance(source, (bytes, bytearray, memoryview)) and format is None:
        format = "csv"
    text, format, label = _read_text(source, format, ("csv", "jsonl"), "queries")
    queries: dict[str, str] = {}
    if format == "jsonl":
        for line, record in _jsonl_records(text, label, _QUERIES_EXAMPLE):
            keys = _keys(record)
            q = keys.get("-id") or keys.get("query-id") or keys.get("id")
            if q is None or "text" not in keys:
                raise CorpusError(
                    f"{label}, line {line}: needs _id and text, found keys {sorted(record)}; "
                    f"e.g. {_QUERIES_EXAMPLE}."
                )
            value = record[keys["text"]]
            if not isinstance(value, str):
                raise CorpusError(f"{label}, line {line}: text must be a string, got {value!r}.")
            queries[_id(record[q], label, line, "_id")] = value
    else:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = _keys(reader.fieldnames)
        if "query-id" not in fields or "text" not in fields:
            raise CorpusError(f"{label}: need columns query-id and text; found {reader.fieldnames}.")
        q, t = fields["query-id"], fields["text"]
        for line, row in enumerate(reader, start=2):
            if row.get(q) is None or row.get(t) is None:
                raise CorpusError(
                    f"{label}, line {line}: too few columns; each row needs a query id and a text."
                )
            queries[str(row[q])] = row[t]
    if not queries:
        raise CorpusError(f"{label} has no queries.")
    return queries


def retrieve(index, queries: dict[str, str], doc_ids, *, embedder=None, k: int = 100) -> dict[str, list[str]]:
    """The run :func:`evaluate` scores: each query's top-k document ids from ``index`` (any
    index :func:`analytics.retrieval.search_text` takes; ``embedder`` embeds the queries for a
    dense or hybrid one). ``doc_ids[row]`` names the corpus row ``row`` as the judgements do."""
    from .retrieval import search_text

    doc_ids = [str(d) for d in doc_ids]
    if len(doc_ids) != len(index):
        raise ParameterError(f"Got {len(doc_ids)} document ids for an index of {len(index)} texts.")
    empty = [q for q, text in queries.items() if not str(text).strip()]
    if empty:
        raise CorpusError(f"Query {empty[0]!r} has no text; give every query a text or leave it out.")
    qids = list(queries)
    hits = search_text(embedder, index, [queries[q] for q in qids], k)
    return {q: [doc_ids[i] for i in row] for q, row in zip(qids, hits.ids)}


def evaluate_methods(
    indexes: dict, queries: dict[str, str], qrels, doc_ids, *, embedder=None, k_values=(2, 10, 100)
) -> list[dict]:
    """One row of :func:`evaluate`'s metrics per retrieval method, ``{"method": name, ...}``:
    ``indexes`` maps a name to its index (e.g. dense, BM25 and hybrid over one corpus), each
    searched to the largest k. Side by side they show where a weak embedder loses to words."""
    depth = max(_check_k_values(k_values))
    return [
        {
            "method": name,
            **evaluate(retrieve(ix, queries, doc_ids, embedder=embedder, k=depth), qrels, k_values=k_values),
        }
        for name, ix in indexes.items()
    ]


def _check_k_values(k_values) -> list[int]:
    try:
        ks = list(k_values)
    except TypeError:
        ks = [k_values]
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, Integral) or k < 1]
    if not ks or bad:
        raise ParameterError(f"k_values must be positive integers, such as (2, 10), got {k_values!r}.")
    return sorted({int(k) for k in ks})


def evaluate(
    run: dict[str, list[str]], qrels: dict[str, dict[str, int]], *, k_values=(1, 10, 100)
) -> dict[str, float]:
    """Mean recall@k, nDCG@k and MRR@k at every k of ``k_values`` (any positive k: recall@2
    is what a stress set of two relevant texts per query asks), over the judged queries that
    have a relevant document; nDCG@10 and MRR@10, the usual headline figures, always.

    ``run[qid]`` lists retrieved document ids, best first (a repeat counts once). A judged
    query missing from the run scores 0 (it retrieved nothing). nDCG uses the relevance as a
    linear gain, as trec_eval does.
    """
    ks = _check_k_values(k_values)
    cut = sorted({*ks, 10})
    per_query: dict[str, list[float]] = {}
    for name, at in (("recall", ks), ("ndcg", cut), ("mrr", cut)):
        per_query.update({f"{name}@{k}": [] for k in at})
    for qid, judged in qrels.items():
        relevant = {d: r for d, r in judged.items() if r > 0}
        if not relevant:
            continue
        ranked = list(dict.fromkeys(run.get(qid, [])))
        ideal = sorted(relevant.values(), reverse=True)
        first = next((i for i, d in enumerate(ranked) if d in relevant), None)
        for k in ks:
            per_query[f"recall@{k}"].append(len(relevant.keys() & set(ranked[:k])) / len(relevant))
        for k in cut:
            per_query[f"ndcg@{k}"].append(_dcg([relevant.get(d, 0) for d in ranked[:k]]) / _dcg(ideal[:k]))
            per_query[f"mrr@{k}"].append(0.0 if first is None or first >= k else 1.0 / (first + 1))
    if not per_query["ndcg@10"]:
        raise CorpusError("No judged query has a relevant document; check the relevance file.")
    out = {name: float(np.mean(v)) for name, v in per_query.items() if v}
    out["queries"] = len(per_query["ndcg@10"])
    return out


def _dcg(gains) -> float:
    return float(sum(g / np.log2(i + 2) for i, g in enumerate(gains)))
