"""Rows for the dashboard's tables and CSV exports, and corpus subsets made from them.
Plain lists of dicts: a page turns them into a dataframe, a script into CSV. For a corpus of a
million texts, :func:`depth_rows` takes ``head``/``tail`` (the table a page shows) and
:func:`depth_csv` writes every row a chunk at a time, so no million dicts exist at once."""

from __future__ import annotations

import csv
import io

import numpy as np

from .depth import depth_order, depth_percentile
from .errors import ParameterError
from .store import Store


def _depth_row(rank: int, i: int, texts, metadata, depths, pct, row_ids=None) -> dict:
    return {
        "rank": rank,
        "row": int(i if row_ids is None else row_ids[i]),
        "depth": round(float(depths[i]), 6),
        "percentile": round(float(pct[i]), 2),
        "text": texts[i],
        **metadata[i],
    }


def depth_rows(
    texts, metadata, depths, *, head: int | None = None, tail: int | None = None, row_ids=None
) -> list[dict]:
    """One row per text, most representative first: rank, depth, percentile, text, metadata.

    ``head`` and ``tail`` bound it: only the ``head`` most representative and the ``tail``
    most outlying texts (each row once when they overlap); either alone keeps just that end.
    ``row_ids``: the corpus row of each text, when they are a selection of a corpus (the
    "row" column then names the corpus's rows).
    """
    pct = depth_percentile(depths)
    order = depth_order(depths)
    n = order.size
    if head is None and tail is None:
        ranks = range(n)
    else:
        first = min(max(int(head or 0), 0), n)
        last = max(n - max(int(tail or 0), 0), first)
        ranks = [*range(first), *range(last, n)]
    return [_depth_row(r + 1, order[r], texts, metadata, depths, pct, row_ids) for r in ranks]


def _column_names(metadata) -> list[str]:
    if hasattr(metadata, "columns"):  # analytics.memory.Metadata knows them without a scan
        return list(metadata.columns)
    keys: dict[str, None] = {}
    for m in metadata:
        keys.update(dict.fromkeys(m))
    return list(keys)


def depth_csv(texts, metadata, depths, *, chunk_rows: int = 50_000, row_ids=None) -> bytes:
    """Every row of :func:`depth_rows` as UTF-8 CSV, built ``chunk_rows`` rows at a time.

    Columns: rank, row, depth, percentile, text, then each metadata column in order of first
    appearance (a row without one leaves it empty). ``row_ids``: as for :func:`depth_rows`."""
    pct = depth_percentile(depths)
    order = depth_order(depths)
    fields = list(dict.fromkeys(["rank", "row", "depth", "percentile", "text", *_column_names(metadata)]))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fields)
    writer.writeheader()
    for start in range(0, order.size, chunk_rows):
        stop = min(start + chunk_rows, order.size)
        writer.writerows(
            _depth_row(r + 1, order[r], texts, metadata, depths, pct, row_ids) for r in range(start, stop)
        )
    return buf.getvalue().encode("utf-8")


def _values(metadata, column: str, default="") -> list:
    if hasattr(metadata, "column"):  # analytics.memory.Metadata: no dict per row
        return metadata.column(column, default)
    return [m.get(column, default) for m in metadata]


def label_summary(metadata, depths, column: str) -> list[dict]:
    """Depth by the values of one metadata column: which groups are typical, which outlying."""
    d = np.asarray(depths, dtype=np.float64)
    keys = np.array([str(v) for v in _values(metadata, column)], dtype=object)
    if not keys.size:
        return []
    groups, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    by_group = np.lexsort((d, inverse))  # each group's depths together, ascending
    parts = np.split(d[by_group], np.cumsum(np.bincount(inverse, minlength=groups.size))[:-1])
    rows = []
    for g in np.argsort(first, kind="stable"):  # groups in order of first appearance
        v = parts[g]
        rows.append(
            {
                column: groups[g],
                "texts": int(v.size),
                "mean depth": round(float(np.mean(v)), 5),
                "median depth": round(float(np.median(v)), 5),
                "min depth": round(float(v[0]), 5),
            }
        )
    return sorted(rows, key=lambda r: -r["mean depth"])


def metadata_columns(metadata, limit: int = 1000) -> list[str]:
    keys: dict[str, None] = {}
    for m in metadata[:limit]:
        keys.update(dict.fromkeys(m))
    return list(keys)


def save_subset(store: Store, name: str, new_name: str, rows) -> int:
    """Store the given rows of corpus ``name`` as a new corpus (vectors stay cached)."""
    from .corpus import Corpus

    rows = sorted({int(r) for r in rows})
    if not rows:
        raise ParameterError("Select at least one text first.")
    texts, metadata = store.texts(name), store.metadata(name)
    info = store.corpus_info(name)
    store.add_corpus(
        new_name,
        Corpus([texts[i] for i in rows], [metadata[i] for i in rows], info.text_column, f"{name} (subset)"),
        label_column=info.label_column,
    )
    return len(rows)


def split_corpus(store: Store, name: str, column: str, *, max_groups: int = 20) -> list[str]:
    """One new corpus per value of a metadata column, named ``"name [column=value]"``."""
    metadata = store.metadata(name)
    values = [str(m.get(column, "")) for m in metadata]
    groups = list(dict.fromkeys(values))
    if column not in metadata_columns(metadata):
        raise ParameterError(f"{name!r} has no metadata column {column!r}.")
    if len(groups) > max_groups:
        raise ParameterError(
            f"{column!r} has {len(groups)} values; splitting makes at most {max_groups} corpora."
        )
    names = []
    for g in groups:
        new = f"{name} [{column}={g}]"[:200]
        save_subset(store, name, new, [i for i, v in enumerate(values) if v == g])
        names.append(new)
    return names
