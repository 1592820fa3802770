"""An analyst's selection: the rows of one corpus picked by a lasso, a text search and
column = value filters, kept across pages so that Depth, Outliers, Shift, Retrieval and the
Report can act on exactly those rows.

A :class:`Selection` is a small, hashable description; :func:`resolve` turns it into row ids
against a corpus's texts and metadata (every part must hold: a lasso, then a filter, narrows
it). :func:`facet_counts` gives per-column counts of any set of rows, as the bars beside the map
show them. Row ids are positions in the corpus, which never change after it is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from .errors import ParameterError

MISSING = ""  # how a row without the column counts and filters (as the map's colouring shows it)


def cell_key(value) -> str:
    """A metadata value as selections compare it: its text ("" when missing), so that a filter
    written in a URL (always text) matches numbers and labels alike."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Selection:
    """Rows of ``corpus`` picked by any of: ``rows`` (a lasso or box on the map: sorted row ids,
    or None for no such pick), ``filters`` (column = any of the values, for each column), and
    ``search`` (texts containing it, case-insensitively). A row is selected when every part
    that is set holds; a selection with no part set is the whole corpus."""

    corpus: str
    rows: tuple[int, ...] | None = None
    filters: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())
    search: str = ""

    def __post_init__(self):
        if self.rows is not None:
            object.__setattr__(self, "rows", tuple(sorted({int(r) for r in self.rows})))
        clean = []
        for column, values in self.filters:
            values = tuple(sorted({cell_key(v) for v in values}))
            if values:
                clean.append((str(column), values))
        object.__setattr__(self, "filters", tuple(sorted(clean)))

    @cached_property
    def key(self) -> str:
        """A short digest of the whole selection, for caches to key on: hashing 16 bytes is
        free where hashing a tuple of 80,000 row ids (as Streamlit's cache does with its
        arguments) takes most of a second."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.corpus, self.filters, self.search, self.rows is None)).encode("utf-8"))
        if self.rows is not None:
            h.update(np.asarray(self.rows, dtype=np.int64).tobytes())
        return h.hexdigest()

    @property
    def is_everything(self) -> bool:
        """True when nothing narrows it: the whole corpus."""
        return self.rows is None and not self.filters and not self.search

    def with_rows(self, rows) -> Selection:
        """The same selection with a new lasso (``None`` removes it)."""
        return replace(self, rows=None if rows is None else tuple(int(r) for r in rows))

    def with_filter(self, column: str, values) -> Selection:
        """The same selection with ``column`` = any of ``values`` (empty values: no filter on it)."""
        rest = [(c, v) for c, v in self.filters if c != column]
        return replace(self, filters=tuple([*rest, (column, tuple(values))]))

    def toggle(self, column: str, value) -> Selection:
        """Add ``value`` to the filter on ``column``, or take it off when it is there already
        (a click on a facet bar)."""
        current = set(dict(self.filters).get(column, ()))
        current ^= {cell_key(value)}
        return self.with_filter(column, current)

    def describe(self) -> str:
        """In words, for a caption: "812 rows picked on the map · intent = oos, greet · texts
        containing 'refund'"."""
        parts = []
        if self.rows is not None:
            parts.append(f"{len(self.rows):,} rows picked on the map")
        for column, values in self.filters:
            shown = ", ".join(v if v != MISSING else "(missing)" for v in values[:5])
            more = f" and {len(values) - 5} more" if len(values) > 5 else ""
            parts.append(f"{column} = {shown}{more}")
        if self.search:
            parts.append(f"texts containing {self.search!r}")
        return " · ".join(parts) if parts else "all rows"


def rows_key(rows) -> str:
    """A short digest of a set of row ids (sorted array or sequence), for caches to key on."""
    return hashlib.blake2b(np.asarray(rows, dtype=np.int64).tobytes(), digest_size=16).hexdigest()


def search_rows(texts: Sequence[str], query: str) -> np.ndarray:
    """Rows whose text contains ``query``, ignoring case (sorted ids)."""
    q = query.casefold()
    if not q:
        return np.arange(len(texts), dtype=np.int64)
    return np.fromiter((i for i, t in enumerate(texts) if q in t.casefold()), dtype=np.int64)


def column_keys(metadata, column: str) -> tuple[np.ndarray, list[str]]:
    """A column as integer codes into a list of its distinct values as text (see
    :func:`cell_key`), so that counting and filtering a million rows is array work."""
    held = metadata.coded(column) if hasattr(metadata, "coded") else None
    if held is not None:  # a million labelled rows: array work on the codes the cache holds
        codes, values = held
        table: dict[str, int] = {}
        remap = np.array([table.setdefault(cell_key(v), len(table)) for v in values] + [-1], dtype=np.int32)
        remap[-1] = table.setdefault(MISSING, len(table)) if (codes < 0).any() else -1
        return remap[codes], list(table)
    cells = (
        metadata.column(column, None) if hasattr(metadata, "column") else [m.get(column) for m in metadata]
    )
    table = {}
    codes = np.fromiter((table.setdefault(cell_key(v), len(table)) for v in cells), np.int32, len(cells))
    return codes, list(table)


def resolve(selection: Selection, texts: Sequence[str], metadata) -> np.ndarray:
    """The selected row ids, sorted. Raises :class:`ParameterError` when a lasso names rows the
    corpus does not have (a selection saved for another version of it)."""
    n = len(texts)
    keep = np.ones(n, dtype=bool)
    if selection.rows is not None:
        rows = np.asarray(selection.rows, dtype=np.int64)
        if rows.size and (rows[0] < 0 or rows[-1] >= n):
            raise ParameterError(
                f"The selection names rows outside this corpus of {n:,} rows; it was made on another "
                "corpus or version. Clear it and select again on the Map page."
            )
        picked = np.zeros(n, dtype=bool)
        picked[rows] = True
        keep &= picked
    for column, values in selection.filters:
        codes, table = column_keys(metadata, column)
        wanted = np.array([i for i, v in enumerate(table) if v in set(values)], dtype=np.int32)
        keep &= np.isin(codes, wanted)
    if selection.search:
        hits = np.zeros(n, dtype=bool)
        hits[search_rows(texts, selection.search)] = True
        keep &= hits
    return np.flatnonzero(keep)


@dataclass(frozen=True)
class Facet:
    """Counts of one column over some rows: ``values`` the largest first as (value, count),
    at most ``top`` of them; ``other`` how many rows hold the rest; ``distinct`` how many
    values there are among those rows; ``total`` the column's count over every row, for the
    same values (to show "12 of 150")."""

    column: str
    values: tuple[tuple[str, int], ...]
    other: int
    distinct: int
    totals: tuple[int, ...] = ()


def facet_counts(
    metadata,
    rows=None,
    *,
    columns: Sequence[str] | None = None,
    top: int = 12,
    max_distinct: int | None = None,
    include_empty: bool = False,
) -> list[Facet]:
    """Per-column counts of ``rows`` (all rows when None), one :class:`Facet` per column, in the
    order given (default: every metadata column). Columns with more than ``max_distinct``
    distinct values over all rows (free text, ids) are left out when it is given.
    ``include_empty``: also list values none of ``rows`` has (count 0, after the others, the
    commonest in the corpus first), so that a bar can be clicked to add them."""
    if top < 1:
        raise ParameterError(f"top must be at least 1, got {top}.")
    if columns is None:
        columns = (
            metadata.columns
            if hasattr(metadata, "columns")
            else list(dict.fromkeys(k for m in metadata for k in m))
        )
    out = []
    for column in columns:
        codes, table = column_keys(metadata, column)
        if max_distinct is not None and len(table) > max_distinct:
            continue
        every = np.bincount(codes, minlength=len(table))
        part = codes if rows is None else codes[np.asarray(rows, dtype=np.int64)]
        counts = np.bincount(part, minlength=len(table))
        order = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
        shown = order[:top]
        if include_empty and len(shown) < top:
            empty = [int(i) for i in np.argsort(-every, kind="stable") if counts[i] == 0 and every[i] > 0]
            shown += empty[: top - len(shown)]
        out.append(
            Facet(
                column=column,
                values=tuple((table[i], int(counts[i])) for i in shown),
                other=int(sum(int(counts[i]) for i in order[top:])),
                distinct=len(order),
                totals=tuple(int(every[i]) for i in shown),
            )
        )
    return out
