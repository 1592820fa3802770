"""Rows for the dashboard's tables and CSV exports, and corpus subsets made from them.
Plain lists of dicts: a page turns them into a dataframe, a script into CSV."""

from __future__ import annotations

import numpy as np

from .depth import depth_order, depth_percentile
from .errors import ParameterError
from .store import Store


def depth_rows(texts, metadata, depths) -> list[dict]:
    """One row per text, most representative first: rank, depth, percentile, text, metadata."""
    pct = depth_percentile(depths)
    return [
        {
            "rank": r + 1,
            "row": int(i),
            "depth": round(float(depths[i]), 6),
            "percentile": round(float(pct[i]), 2),
            "text": texts[i],
            **metadata[i],
        }
        for r, i in enumerate(depth_order(depths))
    ]


def label_summary(metadata, depths, column: str) -> list[dict]:
    """Depth by the values of one metadata column: which groups are typical, which outlying."""
    groups: dict[str, list[float]] = {}
    for m, d in zip(metadata, depths):
        groups.setdefault(str(m.get(column, "")), []).append(float(d))
    rows = [
        {
            column: k,
            "texts": len(v),
            "mean depth": round(float(np.mean(v)), 5),
            "median depth": round(float(np.median(v)), 5),
            "min depth": round(min(v), 5),
        }
        for k, v in groups.items()
    ]
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
