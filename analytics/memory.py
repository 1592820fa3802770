"""Big arrays held once per process: a corpus's vectors, its depths, its texts and metadata.

A server that shows a million-text corpus must not copy its 1.5 GB of vectors for every page
run (``st.cache_data`` pickles and unpickles its value on every hit). A :class:`VectorCache`
keeps one copy of each, hands out the same read-only arrays to every caller (any thread), and
forgets the least recently used corpora when their bytes pass a budget.

>>> cache = VectorCache()                   # budget: $EMBEX_MEMORY_BUDGET, else half the RAM
>>> X = cache.vectors(store, "news", model_id)      # read-only float32 (n, dim)
>>> d = cache.depths(store, "news", model_id)       # read-only float64 (n,)
>>> texts, metadata = cache.corpus(store, "news")   # a tuple of str, a columnar Metadata

Entries are keyed by the store file, the corpus name, its fingerprint (a hash of its texts in
order, :meth:`Store.corpus_fingerprint`) and, for vectors and depths, the model id: a corpus
replaced under the same name gets fresh entries, and the stale ones age out.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

#: the environment variable that sets the default budget ("4GB", "512MB", "1.5GiB", bytes)
BUDGET_ENV = "EMBEX_MEMORY_BUDGET"

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.I)


def parse_budget(value) -> int:
    """Bytes from ``"4GB"``, ``"512 MB"``, ``"1.5GiB"``, ``"2g"`` or plain ``"1000000"``.

    K, M, G and T are powers of 1024 with or without ``B``/``iB`` (``4GB`` = ``4GiB`` =
    4 * 2**30 bytes). ``0`` keeps nothing. Anything else raises :class:`ParameterError`."""
    if isinstance(value, bool):
        raise ParameterError(f"A memory budget must be a size such as 4GB, not {value!r}.")
    if isinstance(value, (int, np.integer)):
        number, unit = float(value), ""
    else:
        m = _BUDGET.match(str(value))
        if not m:
            raise ParameterError(
                f"Cannot read the memory budget {str(value)[:60]!r}: give a size such as 4GB, "
                "512MB, 1.5GiB or a number of bytes (K, M, G, T are powers of 1024; B and iB "
                "are optional)."
            )
        number, unit = float(m.group(1)), m.group(2).lower()
    if not math.isfinite(number) or number < 0:
        raise ParameterError(f"A memory budget must be zero or more bytes, not {value!r}.")
    return int(number * _UNITS[unit])


def physical_memory() -> int | None:
    """This machine's RAM in bytes, lowered to the cgroup's limit when a container sets one."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                limit = int(f.read().strip())
        except (OSError, ValueError):  # absent, or "max": no limit
            continue
        if 0 < limit < (total or sys.maxsize):
            total = limit
    return total


def default_budget() -> int:
    """``$EMBEX_MEMORY_BUDGET`` when set, else half of :func:`physical_memory` (4 GiB when
    that cannot be read)."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if raw:
        try:
            return parse_budget(raw)
        except ParameterError as exc:
            raise ParameterError(f"{BUDGET_ENV}: {exc}") from None
    ram = physical_memory()
    return ram // 2 if ram else 4 * 2**30


# -- compact metadata -------------------------------------------------------------------------

_MISSING = object()
_CODED = (str, int, bool, type(None))  # hashable and equal only to their own kind (no 1 == 1.0 == True)


class _Column:
    """One metadata column: codes into a table of distinct values when there are few of them
    (a label: 4 bytes a row), else the values themselves. A row without the key is missing."""

    __slots__ = ("codes", "values")

    def __init__(self, cells: list):
        n = len(cells)
        table: dict = {}
        codes = np.empty(n, dtype=np.int32)
        most = max(256, n // 4)
        try:
            for i, v in enumerate(cells):
                if v is _MISSING:
                    codes[i] = -1
                    continue
                if v.__class__ not in _CODED:
                    raise TypeError  # floats (-0.0 == 0.0), lists, dicts: kept as they are
                codes[i] = table.setdefault((v.__class__, v), len(table))
                if len(table) > most:
                    raise TypeError
        except TypeError:
            self.codes, self.values = None, cells
            return
        self.codes, self.values = codes, [v for _, v in table]

    def get(self, i: int):
        if self.codes is None:
            return self.values[i]
        c = self.codes[i]
        return _MISSING if c < 0 else self.values[c]

    def nbytes(self) -> int:
        size = sum(sys.getsizeof(v) for v in self.values[:1000])
        per_value = size / max(1, min(len(self.values), 1000))
        if self.codes is None:
            return int(len(self.values) * (8 + per_value))
        return int(self.codes.nbytes + len(self.values) * (8 + per_value))


class Metadata(Sequence):
    """Per-row metadata (what :meth:`Store.metadata` returns as a list of dicts), stored by
    column: a million rows labelled from a few hundred values cost 4 MB, not the ~300 MB of a
    million dicts. It reads as that list does (``len``, ``m[i]``, slices, iteration give dicts
    with the keys each row had), and :meth:`column` gives one column without building dicts.
    Read-only."""

    def __init__(self, rows: Sequence[dict]):
        n = len(rows)
        cells: dict[str, list] = {}
        for i, row in enumerate(rows):
            for k, v in row.items():
                col = cells.get(k)
                if col is None:
                    col = cells[k] = [_MISSING] * n
                col[i] = v
        self._n = n
        self._columns = {k: _Column(v) for k, v in cells.items()}

    @property
    def columns(self) -> list[str]:
        """Every key any row has, in order of first appearance."""
        return list(self._columns)

    def column(self, name: str, default=None) -> list:
        """The column's value for every row (``default`` where a row lacks it)."""
        col = self._columns.get(name)
        if col is None:
            return [default] * self._n
        if col.codes is None:
            return [default if v is _MISSING else v for v in col.values]
        table = np.empty(len(col.values) + 1, dtype=object)
        table[:-1] = col.values
        table[-1] = default
        return table[col.codes].tolist()  # code -1 picks the default

    def coded(self, name: str) -> tuple[np.ndarray, list] | None:
        """A column held as codes: (int32 codes, -1 where a row lacks it; its distinct values),
        without a list per row; None when the column is not coded (many distinct values, or
        floats) or absent. Read-only views of what is held."""
        col = self._columns.get(name)
        if col is None or col.codes is None:
            return None
        codes = col.codes.view()
        codes.flags.writeable = False
        return codes, list(col.values)

    def _row(self, i: int) -> dict:
        out = {}
        for k, col in self._columns.items():
            v = col.get(i)
            if v is not _MISSING:
                out[k] = v
        return out

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(self._n))]
        j = int(i)
        if j < 0:
            j += self._n
        if not 0 <= j < self._n:
            raise IndexError(f"row {i} is out of range for {self._n:,} rows")
        return self._row(j)

    def __iter__(self):
        for i in range(self._n):
            yield self._row(i)

    def __eq__(self, other) -> bool:
        if isinstance(other, (Metadata, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None

    @property
    def nbytes(self) -> int:
        """About how many bytes it holds (the values sampled for their size)."""
        return sum(c.nbytes() for c in self._columns.values()) + 64 * len(self._columns)

    def __repr__(self) -> str:
        return f"Metadata({self._n:,} rows, columns={self.columns})"


def _texts_nbytes(texts: tuple) -> int:
    return sys.getsizeof(texts) + sum(map(sys.getsizeof, texts))


# -- the cache --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheStats:
    budget_bytes: int
    bytes: int
    entries: int
    hits: int
    misses: int
    """Loads started (one per missing entry, however many threads asked for it at once)."""
    joined: int
    """Calls that found their entry being loaded by another thread and waited for that load."""
    evictions: int
    not_kept: int
    """Entries loaded but not kept, each bigger than the whole budget."""
    keys: tuple = ()


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.flags.writeable = False
    return a


def _store_key(store) -> str:
    path = str(store.path)
    return f"{path}#{id(store)}" if path == ":memory:" else os.path.realpath(path)


class VectorCache:
    """Corpora's vectors, depths, texts and metadata, held once per process and shared.

    Arrays come back read-only (``flags.writeable`` is False): the same object for every
    caller, so nobody may change it; copy one (``X.copy()``) to modify it. Texts come back as
    a tuple, metadata as a read-only :class:`Metadata`.

    ``budget_bytes`` bounds what is kept (default: :func:`default_budget`). When a new entry
    would pass it, the least recently used entries are dropped first (a caller still holding
    one keeps it alive until done). An entry bigger than the whole budget is still returned,
    but not kept: the next call loads it again.

    Thread-safe: when several threads ask for the same missing entry at once, one loads it
    and the others wait for that load (a failed load raises in each of them, and is not kept).
    """

    def __init__(self, budget_bytes: int | str | None = None):
        self.budget_bytes = default_budget() if budget_bytes is None else parse_budget(budget_bytes)
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._loading: dict[tuple, Future] = {}
        self._bytes = 0
        self._hits = self._misses = self._joined = self._evictions = self._not_kept = 0

    # -- public ---------------------------------------------------------------------------------

    def vectors(self, store, name: str, model_id: str) -> np.ndarray:
        """The corpus's vectors for ``model_id``: float32 (n_docs, dim), read-only, in
        document order (:meth:`Store.vectors`; it raises when some are missing)."""
        key = ("vectors", _store_key(store), name, store.corpus_fingerprint(name), model_id)

        def load():
            X = _readonly(store.vectors(name, model_id))
            return X, X.nbytes

        return self._get(key, load)

    def depths(self, store, name: str, model_id: str, distance: str = "cosine") -> np.ndarray:
        """TTE depth of each text within its corpus (:func:`analytics.tte_depth`), read-only."""
        from .depth import tte_depth

        key = ("depths", _store_key(store), name, store.corpus_fingerprint(name), model_id, distance)

        def load():
            d = _readonly(tte_depth(self.vectors(store, name, model_id), distance=distance))
            return d, d.nbytes

        return self._get(key, load)

    def corpus(self, store, name: str) -> tuple[tuple[str, ...], Metadata]:
        """The corpus's texts (a tuple of str) and metadata (a :class:`Metadata`), in order."""
        key = ("corpus", _store_key(store), name, store.corpus_fingerprint(name))

        def load():
            texts = tuple(store.texts(name))
            metadata = Metadata(store.metadata(name))
            return (texts, metadata), _texts_nbytes(texts) + metadata.nbytes

        return self._get(key, load)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                self.budget_bytes,
                self._bytes,
                len(self._entries),
                self._hits,
                self._misses,
                self._joined,
                self._evictions,
                self._not_kept,
                tuple(self._entries),
            )

    def clear(self) -> None:
        """Forget every entry (arrays already handed out stay valid)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    # -- the mechanism --------------------------------------------------------------------------

    def _get(self, key: tuple, load):
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self._hits += 1
                return hit[0]
            pending = self._loading.get(key)
            if pending is None:
                pending = self._loading[key] = Future()
                self._misses += 1
                mine = True
            else:
                self._joined += 1
                mine = False
        if not mine:
            return pending.result()  # raises the loader's exception too
        loaded = False
        try:
            value, nbytes = load()
            loaded = True
        finally:
            if not loaded:  # the load raised (it goes on up): its waiters raise it too, none kept
                with self._lock:
                    del self._loading[key]
                pending.set_exception(sys.exc_info()[1])
        with self._lock:
            del self._loading[key]
            self._keep(key, value, int(nbytes))
        pending.set_result(value)
        return value

    def _keep(self, key: tuple, value, nbytes: int) -> None:
        """Under the lock: keep ``value``, dropping the least recently used to stay in budget."""
        if nbytes > self.budget_bytes:
            self._not_kept += 1
            return
        while self._entries and self._bytes + nbytes > self.budget_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= dropped
            self._evictions += 1
        self._entries[key] = (value, nbytes)
        self._bytes += nbytes


_shared: VectorCache | None = None
_shared_lock = threading.Lock()


def shared_cache() -> VectorCache:
    """The process's one :class:`VectorCache` (budget from ``$EMBEX_MEMORY_BUDGET`` when first
    asked), shared by the dashboard's pages and anything else in the process that reads a
    corpus's vectors (jobs), so each corpus is held once."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = VectorCache()
        return _shared
