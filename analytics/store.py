"""The DuckDB store: one file holding corpora, their documents, and a content-addressed cache of
embeddings keyed by (model id, sha256 of the text), so a text is embedded once per model however
many corpora hold it.

This is the only module that speaks SQL. Every value is a bound parameter; the only identifiers
built in code are vector table names, made from a validated integer dimension. Writes run in
transactions, one writer at a time; each thread reads through its own cursor.
"""

from __future__ import annotations

import functools
import hashlib
import json
import mmap
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from pathlib import Path

import numpy as np

from .corpus import Corpus
from .errors import StoreError, StoreLockedError

SCHEMA_VERSION = 7
_MAX_NAME = 200
_MAX_DIM = 65536
#: the quick scan on open reads every vector table whole up to this many floats (~256 MB, a
#: fraction of a second), and only its first rows beyond; ``Store.check()`` reads everything
_QUICK_SCAN_FLOATS = 64_000_000
#: words in a DuckDB error that mean the file itself is bad (checksums, short reads, garbage)
_DAMAGE_MARKERS = (
    "corrupt",
    "checksum",
    "could not read",
    "not a valid duckdb",
    "serializ",
    "internal error",
    "invalid block",
)


@dataclass(frozen=True)
class CorpusInfo:
    name: str
    n_docs: int
    source: str | None
    text_column: str | None
    created: datetime
    label_column: str | None = None


@dataclass
class CheckReport:
    """What :meth:`Store.check` found: rows per table (None where they could not be counted),
    one line per problem, and notes that are not problems (orphan vectors)."""

    path: str
    ok: bool
    rows: dict[str, int | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def tables_checked(self) -> int:
        return len(self.rows)


def _is_damage(exc: BaseException) -> bool:
    """Whether a DuckDB error says the file is damaged (rather than a query being wrong)."""
    import duckdb

    if isinstance(exc, duckdb.OutOfMemoryException):  # a limit reached, whatever the message says
        return False
    return isinstance(exc, duckdb.Error) and any(m in str(exc).lower() for m in _DAMAGE_MARKERS)


def _out_of_memory(exc: BaseException) -> StoreError:
    """DuckDB reached its memory limit: a limit to raise, not a damaged file."""
    limit = os.environ.get("EMBEX_DUCKDB_MEMORY", "1GB")
    return StoreError(
        f"The store ran out of memory ({str(exc).splitlines()[0][:200]}); DuckDB may use {limit} "
        "(EMBEX_DUCKDB_MEMORY). Raise that limit, or free memory, and try again. Nothing in the "
        "store was changed."
    )


def _lookup_name(name):
    """A name as it is stored: names are stripped when written, so they are when looked up."""
    return name.strip() if isinstance(name, str) else name


def _claim_name(cur, name: str, replace: bool) -> None:
    """Inside a write transaction: free ``name`` for a new corpus, dropping the corpus that has
    it when ``replace``, else refusing."""
    exists = _one(cur, "SELECT corpus_id FROM corpora WHERE name = ?", [name])
    if exists and not replace:
        raise StoreError(f"A corpus named {name!r} already exists; pick another name or replace it.")
    if exists:
        cur.execute("DELETE FROM documents WHERE corpus_id = ?", [exists[0]])
        cur.execute("DELETE FROM corpora WHERE corpus_id = ?", [exists[0]])


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_store_path() -> Path:
    """``$EMBEX_STORE``, else ``store.duckdb`` in the user's data directory."""
    if os.environ.get("EMBEX_STORE"):
        return Path(os.environ["EMBEX_STORE"]).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "embedding-explorer" / "store.duckdb"


def _v1(cur) -> None:
    cur.execute("CREATE SEQUENCE corpus_ids START 1")
    cur.execute(
        """CREATE TABLE corpora (
            corpus_id INTEGER PRIMARY KEY DEFAULT nextval('corpus_ids'),
            name VARCHAR NOT NULL UNIQUE,
            source VARCHAR,
            text_column VARCHAR,
            created TIMESTAMP NOT NULL DEFAULT current_timestamp,
            n_docs INTEGER NOT NULL)"""
    )
    cur.execute(
        """CREATE TABLE documents (
            corpus_id INTEGER NOT NULL,
            position INTEGER NOT NULL,
            text_hash VARCHAR NOT NULL,
            text VARCHAR NOT NULL,
            metadata VARCHAR)"""
    )
    cur.execute("CREATE TABLE models (model_id VARCHAR PRIMARY KEY, dim INTEGER NOT NULL)")


def _v2(cur) -> None:
    # cached results (projections, tests) keyed by a hash of their inputs and parameters
    cur.execute(
        """CREATE TABLE results (
            key VARCHAR PRIMARY KEY,
            kind VARCHAR NOT NULL,
            created TIMESTAMP NOT NULL DEFAULT current_timestamp,
            payload BLOB NOT NULL)"""
    )


def _v3(cur) -> None:
    # which metadata column holds the label (colours the map, groups depth summaries)
    cur.execute("ALTER TABLE corpora ADD COLUMN label_column VARCHAR")


def _v4(cur) -> None:
    # a corpus's texts never change after it is written, so its fingerprint (the cache key of
    # everything computed from it) is computed once here instead of on every read
    cur.execute("ALTER TABLE corpora ADD COLUMN fingerprint VARCHAR")
    cur.execute(
        "UPDATE corpora SET fingerprint = (SELECT sha256(string_agg(d.text_hash, ',' "
        "ORDER BY d.position)) FROM documents d WHERE d.corpus_id = corpora.corpus_id)"
    )


def _fingerprint(hashes: list[str]) -> str:
    """The same value as the v4 migration's SQL: sha256 of the text hashes in order."""
    return hashlib.sha256(",".join(hashes).encode()).hexdigest()


def _v5(cur) -> None:
    # background jobs (analytics.jobs): durable state and progress, so a job outlives the page
    # that asked for it and is resumed after a crash. Times are Unix seconds.
    cur.execute("CREATE SEQUENCE job_ids START 1")
    cur.execute(
        """CREATE TABLE jobs (
            job_id INTEGER PRIMARY KEY DEFAULT nextval('job_ids'),
            kind VARCHAR NOT NULL,
            params VARCHAR NOT NULL,
            key VARCHAR NOT NULL,
            state VARCHAR NOT NULL,
            stage VARCHAR NOT NULL DEFAULT '',
            fraction DOUBLE NOT NULL DEFAULT 0,
            message VARCHAR NOT NULL DEFAULT '',
            requested_by VARCHAR NOT NULL,
            created DOUBLE NOT NULL,
            started DOUBLE,
            finished DOUBLE,
            error VARCHAR,
            attempts INTEGER NOT NULL DEFAULT 0)"""
    )


def _v6(cur) -> None:
    # the audit log of a workspace (analytics.audit): who did what to what, and when (Unix
    # seconds, UTC). Rows are only ever added
    cur.execute("CREATE SEQUENCE audit_ids START 1")
    cur.execute(
        """CREATE TABLE audit (
            audit_id INTEGER PRIMARY KEY DEFAULT nextval('audit_ids'),
            time DOUBLE NOT NULL,
            user_name VARCHAR NOT NULL,
            action VARCHAR NOT NULL,
            target VARCHAR NOT NULL,
            detail VARCHAR NOT NULL DEFAULT '')"""
    )


def _v7(cur) -> None:
    # an analyst's saved selections (a lasso, filters: the rows they resolve to), so a link or a
    # reload finds the same rows; and marks on rows ("reviewed" outliers) that outlive a session.
    # Rows are positions in a corpus, whose documents never change after it is written.
    cur.execute(
        """CREATE TABLE selections (
            selection_id VARCHAR PRIMARY KEY,
            corpus_id INTEGER NOT NULL,
            created DOUBLE NOT NULL,
            rows BLOB NOT NULL)"""
    )
    cur.execute(
        """CREATE TABLE marks (
            corpus_id INTEGER NOT NULL,
            position INTEGER NOT NULL,
            mark VARCHAR NOT NULL,
            user_name VARCHAR NOT NULL,
            time DOUBLE NOT NULL,
            PRIMARY KEY (corpus_id, position, mark))"""
    )


#: MIGRATIONS[i] takes a store from version i to i + 1
MIGRATIONS = (_v1, _v2, _v3, _v4, _v5, _v6, _v7)

#: the jobs table's columns, in order; the only column names job updates may name
JOB_COLUMNS = (
    "job_id kind params key state stage fraction message requested_by created started finished error attempts"
).split()


def _one(cur, sql: str, params=()):
    """First row of a query or None (reads the whole result: DuckDB wants results finished)."""
    rows = cur.execute(sql, list(params)).fetchall()
    return rows[0] if rows else None


def _vector_table(dim: int) -> str:
    """The table holding vectors of dimension ``dim``: an identifier made from a checked int."""
    if not isinstance(dim, (int, np.integer)) or not 0 < dim <= _MAX_DIM:
        raise StoreError(f"Vector dimension must be an integer in 1..{_MAX_DIM}, got {dim!r}.")
    return "embeddings_" + str(int(dim))


#: DuckDB's memory limit while a write of more than this runs (see _bulk_write_settings);
#: raised for long vectors, as DuckDB moves 2,048 rows at a time: room for 8 such batches
_WRITE_BUFFER_POOL = 256 * 2**20
_WRITE_BATCHES = 8 * 2048


def _import_plan(cur, cid: int, n_docs: int, model_id: str):
    """What an import into corpus ``cid`` needs to know, read in its transaction: the text
    hashes in document order (Arrow), for each document the first document with its text (a
    repeated text is one cache entry), which of those have a vector for ``model_id`` already,
    and the model's dimension (None: new)."""
    hashes = (
        cur.sql(
            "SELECT text_hash FROM documents WHERE corpus_id = $cid ORDER BY position", params={"cid": cid}
        )
        .to_arrow_table()
        .column(0)
        .combine_chunks()
    )
    first = np.arange(n_docs, dtype=np.int64)
    repeats = cur.sql(
        "SELECT position, min(position) OVER (PARTITION BY text_hash) FROM documents "
        "WHERE corpus_id = $cid AND text_hash IN (SELECT text_hash FROM documents "
        "WHERE corpus_id = $cid GROUP BY text_hash HAVING count(*) > 1)",
        params={"cid": cid},
    ).to_arrow_table()
    first[repeats.column(0).to_numpy()] = repeats.column(1).to_numpy()
    has = np.zeros(n_docs, dtype=bool)
    known = _one(cur, "SELECT dim FROM models WHERE model_id = ?", [model_id])
    dim = None if known is None else int(known[0])
    if dim is not None:
        cached = cur.sql(
            "SELECT d.position FROM documents d WHERE d.corpus_id = $cid AND EXISTS (SELECT 1 FROM "
            + _vector_table(dim)
            + " e WHERE e.model_id = $model AND e.text_hash = d.text_hash)",
            params={"cid": cid, "model": model_id},
        ).to_arrow_table()
        has[first[cached.column(0).to_numpy()]] = True
    return hashes, first, has, dim


#: DuckDB's memory limit while a corpus streams in: text chunks are small, and what it writes
#: need not stay resident (190 MiB CSV through the Upload page: +454 MiB peak at 256 MiB)
_TEXT_BUFFER_POOL = 128 * 2**20


def _bulk_write_settings(con, width: int, pool: int | None = None):
    """Set DuckDB up for a big write of vectors ``width`` bytes long, and return the function
    that sets it back (these are settings of the whole database, so of every thread's writes
    meanwhile, which they do not harm):

    - the memory limit held to :data:`_WRITE_BUFFER_POOL` (or room for :data:`_WRITE_BATCHES`
      vectors) where it is higher: else the blocks just written stay resident up to the store's
      limit, most of an import's RSS (1M x 384: peak RSS 1.5 GB, 0.78 GB held so);
    - no ALP compression of floats: on embeddings it saves 4% of the space and takes 40% of
      the write's time (1M x 384: 14.9 s of inserts against 8.9 s).
    """
    cur = con.cursor()
    try:
        memory, methods = cur.execute(
            "SELECT current_setting('memory_limit'), current_setting('disabled_compression_methods')"
        ).fetchall()[0]
        limit = max(pool or _WRITE_BUFFER_POOL, _WRITE_BATCHES * width)
        if _setting_bytes(memory) > limit:  # unless as low already (EMBEX_DUCKDB_MEMORY)
            cur.execute("SET memory_limit = ?", [f"{limit // 2**20}MB"])
        disabled = {m for m in methods.lower().split(",") if m} | {"alp", "alprd"}
        cur.execute("SET disabled_compression_methods = ?", [",".join(sorted(disabled))])
    finally:
        cur.close()

    def restore() -> None:
        cur = con.cursor()
        try:
            cur.execute("SET memory_limit = ?", [memory])
            cur.execute("SET disabled_compression_methods = ?", [methods])
        finally:
            cur.close()

    return restore


def _setting_bytes(text: str) -> float:
    """A DuckDB memory setting as it prints ("953.6 MiB", "1.5 GB", "0 bytes") in bytes;
    infinity when it cannot be read (no limit known)."""
    import re

    match = re.fullmatch(r"\s*([0-9.]+)\s*(bytes?|[KMGTP]i?B)\s*", str(text))
    if not match:
        return float("inf")
    unit = match.group(2)
    power = 0 if unit.startswith("byte") else "KMGTP".index(unit[0]) + 1
    return float(match.group(1)) * (1024 if "i" in unit else 1000) ** power


#: rows per Arrow batch when vectors are read back: small enough (12 MiB at 384-d) that the
#: allocator reuses one batch's memory for the next (65,536 rows: 0.3 s more of page faults)
_READ_BATCH_ROWS = 8_192


def _empty_rows(n: int, dim: int) -> np.ndarray:
    """An uninitialised float32 (n, dim) array for a read; a big one (64 MiB and more) gets its
    pages from the kernel at once and in ordinary 4 KiB pages. NumPy asks for transparent huge
    pages for big arrays, and on a VM whose memory is fragmented the kernel then stalls in
    compaction: 1.5 GB took 5 to 10 s that way on this 2-core VM under load, 1.4 to 2.3 s this way."""
    nbytes = n * dim * 4
    populate = getattr(mmap, "MAP_POPULATE", None)  # Linux
    if nbytes < 64 * 2**20 or populate is None:
        return np.empty((n, dim), dtype=np.float32)
    pages = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    return np.frombuffer(pages, dtype=np.float32).reshape(n, dim)  # freed with the array


def _row_places(rows: np.ndarray, positions: np.ndarray, lo: int, hi: int, *, force_sparse: bool = False):
    """For a read: ``(where, placed)``. ``where(rowids)`` gives, per vector row, the document
    position it fills (-1: none of this corpus's); ``placed[i]`` is the position that the row of
    pair i fills, which differs from ``positions[i]`` where documents share a text (one row)."""
    if hi - lo < 2 * len(rows) + 65_536 and not force_sparse:  # dense: a slot per row id in range
        slot = np.full(hi - lo + 1, -1, dtype=np.int64)
        slot[rows - lo] = positions
        return (lambda ids: slot[ids - lo]), slot[rows - lo]
    # sparse (a small corpus among many vectors): sorted row ids, searched
    unique, first = np.unique(rows, return_index=True)
    fills = positions[first]

    def where(ids: np.ndarray) -> np.ndarray:
        i = np.minimum(np.searchsorted(unique, ids), len(unique) - 1)
        return np.where(unique[i] == ids, fills[i], -1)

    return where, fills[np.searchsorted(unique, rows)]


class _Ahead:
    """``fn(*args)`` computed in a thread from now on; :meth:`result` waits for it (and raises
    its error). For work that releases the GIL (a syscall, DuckDB) alongside other such work."""

    def __init__(self, fn, *args):
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embex-ahead")
        self._future = pool.submit(fn, *args)
        pool.shutdown(wait=False)

    def result(self):
        return self._future.result()


def _prefetched(batches):
    """Iterate ``batches`` (an Arrow reader) while a thread fetches the next one: DuckDB
    releases the GIL while it works, so the next batch is made while the caller uses this one.
    The reader's error is raised here; leaving early waits for the fetch in flight, no more."""
    from concurrent.futures import ThreadPoolExecutor

    batches = iter(batches)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="embex-read-ahead") as ahead:
        pending = ahead.submit(next, batches, None)
        while True:
            batch = pending.result()
            if batch is None:
                return
            pending = ahead.submit(next, batches, None)
            yield batch


class _LabelCheck:
    """Whether ``label_column`` is a key of a stream's first 1,000 metadata rows (the rows
    ``Corpus.columns`` looks at), checked as soon as those rows have passed."""

    def __init__(self, label_column: str | None):
        self.label_column, self.rows, self.found = label_column, 0, label_column is None

    def see(self, metadata: list[dict]) -> None:
        if self.found or self.rows >= 1000:
            return
        head = metadata[: 1000 - self.rows]
        self.rows += len(head)
        self.found = any(self.label_column in m for m in head)
        if self.rows >= 1000:
            self.finish()

    def finish(self) -> None:
        if not self.found:
            raise StoreError(f"The corpus has no metadata column {self.label_column!r} to use as its label.")


class Store:
    """A DuckDB file of corpora and embeddings. Safe to share between threads.

    >>> store = Store("explorer.duckdb")
    >>> store.add_corpus("news", load_corpus("news.csv"))
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        read_only: bool = False,
        migrate_to: int = SCHEMA_VERSION,
        on_damage: str = "raise",
    ):
        """Open (or create) the store. ``read_only`` opens an existing file without writing to
        it. On open a quick integrity scan reads the store's tables (DuckDB verifies each
        block's checksum as it reads it); a damaged file raises :class:`StoreError`, or with
        ``on_damage="allow"`` opens with every write refused, so what still reads can be read
        (``embex check`` opens it so)."""
        import duckdb

        if on_damage not in ("raise", "allow"):
            raise StoreError(f"on_damage must be 'raise' or 'allow', not {on_damage!r}.")
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        self._damage: str | None = None
        if str(self.path) != ":memory:":
            if read_only and not self.path.exists():
                raise StoreError(f"There is no store at {self.path} yet (ingest a corpus to create one).")
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # DuckDB's buffer pool would otherwise keep up to 80% of RAM of table blocks
            # resident (the whole vector table once read); past the limit it spills to disk
            limit = os.environ.get("EMBEX_DUCKDB_MEMORY", "1GB")
            self._con = duckdb.connect(str(self.path), read_only=read_only, config={"memory_limit": limit})
        except duckdb.Error as exc:
            locked = "lock" in str(exc).lower()
            raise (StoreLockedError if locked else StoreError)(self._open_failure(exc)) from None
        self._local = threading.local()
        self._write_lock = threading.RLock()
        problems = self._scan(quick=True)
        if problems:
            self._damage = problems[0]
            if on_damage == "raise":
                self._con.close()
                raise StoreError(self._damage_message())
            return  # no migration: nothing is written to a damaged file
        if read_only and self.schema_version() < migrate_to:
            version = self.schema_version()
            self._con.close()
            raise StoreError(
                f"The store {self.path} is in an older format (schema {version}; this version "
                f"uses {migrate_to}) and must be upgraded before it can be read, which needs "
                "a writable open: run any writing command on it once (embex gc) or open it "
                "with the dashboard. The file was not changed."
            )
        self._migrate(migrate_to)

    def _open_failure(self, exc) -> str:
        """What to say when DuckDB cannot open the file: what happened, never 'start over'."""
        text = str(exc)
        low = text.lower()
        if "lock" in low:
            return (
                f"The store {self.path} is open in another process (the dashboard, or another "
                "embex command). Stop it, or use a different --store file."
            )
        if "permission denied" in low or "read-only file system" in low:
            how = "read" if self.read_only else "open for writing"
            return (
                f"The store {self.path} cannot be {how} here: {text}. Check the file's "
                "permissions (read-only commands such as list and check only need to read "
                "it), or copy it somewhere writable. The file was not changed."
            )
        if "is a directory" in low:
            return f"{self.path} is a directory, not a store file; point --store or EMBEX_STORE at the file."
        if "not a valid duckdb" in low or _is_damage(exc):
            return (
                f"{self.path} cannot be opened as a store: it is not a DuckDB file, or its "
                f"header is damaged ({text}). If it is your store, restore it from a backup; "
                "if not, point --store or EMBEX_STORE at your store file. The file was not changed."
            )
        return (
            f"The store {self.path} could not be opened ({text}). The file was not changed; "
            "check that it is a store file and that it can be read."
        )

    def _damage_message(self) -> str:
        return (
            f"The store file {self.path} is damaged ({self._damage}). Restore it from a backup; "
            f"`embex check --store {self.path}` lists what can still be read. Nothing was written "
            "to it: the file was not changed."
        )

    def _mark_damaged(self, exc) -> StoreError:
        if self._damage is None:
            self._damage = f"reads failed: {exc}"
        return StoreError(self._damage_message())

    @property
    def damaged(self) -> str | None:
        """What the integrity scan (or a later read) found wrong with the file, or None."""
        return self._damage

    def _tables(self, cur) -> list[tuple[str, list[tuple[str, str]]]]:
        """(table, [(column, type)]) of every table in the store."""
        rows = cur.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND schema_name = 'main' "
            "ORDER BY table_name, column_index"
        ).fetchall()
        out: dict[str, list] = {}
        for t, c, typ in rows:
            if not (t.isidentifier() and t.isascii() and c.isidentifier() and c.isascii()):
                raise StoreError(f"Unexpected table or column name {t!r}.{c!r} in the store.")
            out.setdefault(t, []).append((c, typ))
        return list(out.items())

    def _scan(self, quick: bool, report: CheckReport | None = None) -> list[str]:
        """Read the store's tables so DuckDB verifies their blocks; one line per failure.
        Quick: metadata tables whole, vector tables whole up to ``_QUICK_SCAN_FLOATS`` floats
        and their first rows beyond. Full: every column of every table, separately, so the
        report says which still read."""
        import duckdb

        cur = self._con.cursor()
        problems: list[str] = []
        try:
            tables = self._tables(cur)
        except duckdb.OutOfMemoryException as exc:
            raise _out_of_memory(exc) from None
        except duckdb.Error as exc:
            return [f"the list of tables could not be read: {exc}"]
        for table, columns in tables:
            try:
                n = int(cur.execute('SELECT count(*) FROM "' + table + '"').fetchall()[0][0])
            except duckdb.OutOfMemoryException as exc:
                raise _out_of_memory(exc) from None
            except duckdb.Error as exc:
                problems.append(f"table {table}: its rows could not be counted: {exc}")
                if report is not None:
                    report.rows[table] = None
                continue
            if report is not None:
                report.rows[table] = n
            limit = ""
            if quick and table.startswith("embeddings_"):
                dim = int(table.split("_", 1)[1]) if table.split("_", 1)[1].isdigit() else 1
                if n * dim > _QUICK_SCAN_FLOATS:
                    limit = " LIMIT " + str(max(1, _QUICK_SCAN_FLOATS // dim))
            groups = [columns] if quick else [[c] for c in columns]
            for group in groups:
                exprs = ", ".join('sum(hash("' + c + '"))' for c, _ in group)
                names = ", ".join('"' + c + '"' for c, _ in group)
                try:
                    cur.execute(
                        "SELECT " + exprs + " FROM (SELECT " + names + ' FROM "' + table + '"' + limit + ")"
                    ).fetchall()
                except duckdb.OutOfMemoryException as exc:
                    raise _out_of_memory(exc) from None
                except duckdb.Error as exc:
                    what = "table " + table if quick else "column " + table + "." + group[0][0]
                    problems.append(f"{what} could not be read: {exc}")
                    if quick:
                        break
            if quick and problems:
                break
        return problems

    def check(self) -> CheckReport:
        """Read every column of every table whole (DuckDB verifies every block's checksum) and
        check that each corpus holds the documents it says; nothing is written."""
        import duckdb

        report = CheckReport(path=str(self.path), ok=True)
        report.problems = self._scan(quick=False, report=report)
        cur = self._con.cursor()
        try:
            bad = cur.execute(
                "SELECT c.name, c.n_docs, count(d.position) FROM corpora c LEFT JOIN documents d "
                "ON d.corpus_id = c.corpus_id GROUP BY c.name, c.n_docs HAVING count(d.position) <> c.n_docs"
            ).fetchall()
            for name, n_docs, found in bad:
                report.problems.append(f"corpus {name!r} should hold {n_docs:,} documents; {found:,} found")
        except duckdb.Error:
            pass  # the tables' own problems are reported above
        try:
            orphans = self._orphan_vectors(cur)
            if orphans:
                report.notes.append(
                    f"{orphans:,} cached vector(s) belong to no corpus (embex gc removes them)"
                )
        except duckdb.Error:
            pass
        report.ok = not report.problems
        if report.problems and self._damage is None:
            self._damage = report.problems[0]
        return report

    def _orphan_vectors(self, cur) -> int:
        n = 0
        for (dim,) in cur.execute("SELECT DISTINCT dim FROM models").fetchall():
            n += _one(
                cur,
                "SELECT count(*) FROM " + _vector_table(dim) + " e WHERE NOT EXISTS "
                "(SELECT 1 FROM documents d WHERE d.text_hash = e.text_hash)",
            )[0]
        return int(n)

    # -- connection plumbing --------------------------------------------------------------------

    def _cur(self):
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self._con.cursor()
        return cur

    @contextmanager
    def transaction(self):
        """One writer at a time; everything inside commits together or not at all."""
        if self._damage is not None:
            raise StoreError(self._damage_message())
        if self.read_only:
            raise StoreError(f"The store {self.path} is open read-only here; nothing was written.")
        with self._write_lock:
            cur = self._cur()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def schema_version(self) -> int:
        cur = self._cur()
        exists = _one(
            cur, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        )[0]
        if not exists:
            return 0
        row = _one(cur, "SELECT max(version) FROM schema_version")
        return int(row[0] or 0)

    def _migrate(self, target: int) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer Embedding Explorer (schema {version}; this one "
                f"knows {SCHEMA_VERSION}). Upgrade, or use another store file."
            )
        for v in range(version, target):
            with self.transaction() as cur:
                if v == 0:
                    cur.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                MIGRATIONS[v](cur)
                cur.execute("DELETE FROM schema_version")
                cur.execute("INSERT INTO schema_version VALUES (?)", [v + 1])

    # -- corpora --------------------------------------------------------------------------------

    @staticmethod
    def check_name(name) -> str:
        if not isinstance(name, str) or not name.strip():
            raise StoreError("A corpus name must be a non-empty string.")
        if len(name) > _MAX_NAME or any(ord(c) < 32 for c in name):
            raise StoreError(f"A corpus name must be at most {_MAX_NAME} printable characters.")
        return name.strip()

    def _corpus_id(self, name: str, cur=None) -> int:
        name = _lookup_name(name)
        row = _one((cur or self._cur()), "SELECT corpus_id FROM corpora WHERE name = ?", [name])
        if row is None:
            known = [c.name for c in self.list_corpora()]
            raise StoreError(
                f"No corpus named {name!r}. Known corpora: "
                + (", ".join(repr(k) for k in known[:20]) if known else "none yet (ingest one first)")
                + "."
            )
        return int(row[0])

    def add_corpus(
        self, name: str, corpus: Corpus, *, replace: bool = False, label_column: str | None = None
    ) -> CorpusInfo:
        """Store ``corpus`` under ``name`` in one transaction. ``label_column`` names the metadata
        column that labels the texts (the map colours by it)."""
        import pyarrow as pa

        name = self.check_name(name)
        if label_column is not None and label_column not in corpus.columns:
            raise StoreError(f"The corpus has no metadata column {label_column!r} to use as its label.")
        if not len(corpus):
            raise StoreError("The corpus has no documents; nothing was stored.")
        hashes = [text_hash(t) for t in corpus.texts]
        docs = pa.table(
            {
                "position": pa.array(range(len(corpus)), pa.int32()),
                "text_hash": pa.array(hashes),
                "text": pa.array(corpus.texts, pa.string()),
                "metadata": pa.array(
                    [json.dumps(m, ensure_ascii=False, default=str) for m in corpus.metadata], pa.string()
                ),
            }
        )
        with self.transaction() as cur:
            _claim_name(cur, name, replace)
            cid = _one(
                cur,
                "INSERT INTO corpora (name, source, text_column, n_docs, label_column, "
                "fingerprint) VALUES (?, ?, ?, ?, ?, ?) RETURNING corpus_id",
                [name, corpus.source, corpus.text_column, len(corpus), label_column, _fingerprint(hashes)],
            )[0]
            cur.register("incoming_docs", docs)
            try:
                cur.execute(
                    "INSERT INTO documents SELECT ?, position, text_hash, text, metadata FROM incoming_docs",
                    [cid],
                )
            finally:
                cur.unregister("incoming_docs")
        return self.corpus_info(name)

    def add_corpus_stream(
        self,
        name: str,
        chunks,
        *,
        source: str | None = None,
        text_column: str | None = None,
        replace: bool = False,
        label_column: str | None = None,
        progress=None,
    ) -> CorpusInfo:
        """Store a corpus that arrives in chunks (``stream_corpus(path)``, or any iterable of
        ``(texts, metadata)`` pairs or objects with ``.texts`` and ``.metadata``, or of Arrow
        record batches with a ``text`` column and a ``metadata`` column of JSON objects, as a
        ``ColumnarCorpus`` yields), one chunk in memory at a time, so a corpus may be larger
        than memory.

        Every chunk is written inside ONE transaction: if reading fails part-way (a bad byte
        or row deep in the file, Ctrl-C), the store is left exactly as it was, and a corpus of
        the same name is untouched even with ``replace``. The transaction holds the store's
        write lock until the last chunk, so other writers in this process wait.

        ``n_docs`` and the fingerprint are computed as the chunks pass: the fingerprint is an
        incremental sha256 over the same bytes :func:`_fingerprint` hashes at once.
        ``source`` and ``text_column`` default to the stream's own (a :class:`CorpusStream`
        has them). ``label_column`` must be a key of the first 1,000 metadata rows, as in
        :meth:`add_corpus`. ``progress(docs_stored, bytes_read or None)`` is called after each
        chunk is written.
        """
        name = self.check_name(name)
        source = source if source is not None else getattr(chunks, "source", None)
        text_column = text_column if text_column is not None else getattr(chunks, "text_column", None)
        # a stream is as big as it turns out to be: hold DuckDB's buffer pool down while it is
        # written (the written blocks would otherwise stay resident, as for a vector import)
        restore = _bulk_write_settings(self._con, width=0, pool=_TEXT_BUFFER_POOL)
        try:
            return self._add_corpus_stream(name, chunks, source, text_column, replace, label_column, progress)
        finally:
            if restore is not None:
                restore()

    def _add_corpus_stream(self, name, chunks, source, text_column, replace, label_column, progress):
        import pyarrow as pa

        with self.transaction() as cur:
            _claim_name(cur, name, replace)
            cid = int(_one(cur, "SELECT nextval('corpus_ids')")[0])
            fingerprint, n = hashlib.sha256(), 0
            label_check = _LabelCheck(label_column)
            for chunk in chunks:
                if isinstance(chunk, (pa.RecordBatch, pa.Table)):
                    # Arrow (a ColumnarCorpus's batches): a text column and the metadata as JSON
                    text_col, meta_col = chunk.column("text"), chunk.column("metadata")
                    texts, metadata = text_col.to_pylist(), None
                    bytes_read, rows = None, chunk.num_rows
                    if label_check.rows < 1000 and not label_check.found:
                        head = meta_col.slice(0, 1000 - label_check.rows).to_pylist()
                        label_check.see([json.loads(m) if m else {} for m in head])
                else:
                    texts, metadata = chunk if isinstance(chunk, tuple) else (chunk.texts, chunk.metadata)
                    bytes_read, rows = getattr(chunk, "bytes_read", None), len(metadata)
                    text_col = meta_col = None
                del chunk  # else it keeps this chunk alive while the stream reads the next
                if len(texts) != rows:
                    raise StoreError(f"A chunk has {len(texts):,} texts but {rows:,} metadata rows.")
                if not texts:
                    continue
                if metadata is not None:
                    label_check.see(metadata)
                    text_col = pa.array(texts, pa.string())
                    meta_col = pa.array(
                        [json.dumps(m, ensure_ascii=False, default=str) for m in metadata], pa.string()
                    )
                hashes = [text_hash(t) for t in texts]
                fingerprint.update(("," if n else "").encode() + ",".join(hashes).encode())
                # the documents table's columns, in order; a relation, not cur.register(): a
                # registered table stays referenced (in memory) until the transaction ends
                docs = pa.table(
                    {
                        "corpus_id": pa.array(np.full(len(texts), cid, np.int32)),
                        "position": pa.array(np.arange(n, n + len(texts), dtype=np.int32)),
                        "text_hash": pa.array(hashes, pa.string()),
                        "text": text_col,
                        "metadata": meta_col,
                    }
                )
                del hashes, texts, metadata, text_col, meta_col  # one chunk of objects at a time
                cur.from_arrow(docs).insert_into("documents")
                n += docs.num_rows
                del docs
                if progress is not None:
                    progress(n, bytes_read)
            if not n:
                raise StoreError("The corpus has no documents; nothing was stored.")
            label_check.finish()
            cur.execute(
                "INSERT INTO corpora (corpus_id, name, source, text_column, n_docs, "
                "label_column, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [cid, name, source, text_column, n, label_column, fingerprint.hexdigest()],
            )
        return self.corpus_info(name)

    def corpus_info(self, name: str) -> CorpusInfo:
        row = _one(
            self._cur(),
            "SELECT name, n_docs, source, text_column, created, label_column FROM corpora WHERE name = ?",
            [_lookup_name(name)],
        )
        if row is None:
            self._corpus_id(name)  # raises with the list of known corpora
        return CorpusInfo(*row)

    def list_corpora(self) -> list[CorpusInfo]:
        rows = (
            self._cur()
            .execute(
                "SELECT name, n_docs, source, text_column, created, label_column FROM corpora "
                "ORDER BY created, name"
            )
            .fetchall()
        )
        return [CorpusInfo(*r) for r in rows]

    def texts(self, name: str) -> list[str]:
        cid = self._corpus_id(name)
        rows = (
            self._cur()
            .execute("SELECT text FROM documents WHERE corpus_id = ? ORDER BY position", [cid])
            .fetchall()
        )
        return [r[0] for r in rows]

    def metadata(self, name: str, *, limit: int | None = None) -> list[dict]:
        """Each document's metadata, in order; only the first ``limit`` rows when given (the
        columns of a corpus of millions need not load them all)."""
        cid = self._corpus_id(name)
        sql, params = "SELECT metadata FROM documents WHERE corpus_id = ? ORDER BY position", [cid]
        if limit is not None:
            sql, params = sql + " LIMIT ?", [cid, int(limit)]
        rows = self._cur().execute(sql, params).fetchall()
        return [json.loads(r[0]) if r[0] else {} for r in rows]

    def delete_corpus(self, name: str) -> None:
        """Remove a corpus and its documents. Cached vectors stay: other corpora may share them,
        and a re-ingest of the same texts is then free (see :meth:`prune_vectors`)."""
        with self.transaction() as cur:
            cid = self._corpus_id(name, cur)
            cur.execute("DELETE FROM documents WHERE corpus_id = ?", [cid])
            cur.execute("DELETE FROM selections WHERE corpus_id = ?", [cid])
            cur.execute("DELETE FROM marks WHERE corpus_id = ?", [cid])
            cur.execute("DELETE FROM corpora WHERE corpus_id = ?", [cid])

    def rename_corpus(self, old: str, new: str) -> None:
        new = self.check_name(new)
        with self.transaction() as cur:
            cid = self._corpus_id(old, cur)
            if _one(cur, "SELECT 1 FROM corpora WHERE name = ?", [new]):
                raise StoreError(f"A corpus named {new!r} already exists.")
            cur.execute("UPDATE corpora SET name = ? WHERE corpus_id = ?", [new, cid])

    # -- vectors --------------------------------------------------------------------------------

    def model_dim(self, model_id: str) -> int | None:
        row = _one(self._cur(), "SELECT dim FROM models WHERE model_id = ?", [model_id])
        return None if row is None else int(row[0])

    def model_ids(self) -> list[str]:
        """Every model id (cache key) with vectors in this store."""
        return [r[0] for r in self._cur().execute("SELECT model_id FROM models ORDER BY model_id").fetchall()]

    def register_model(self, model_id: str, dim: int) -> None:
        table = _vector_table(dim)
        known = self.model_dim(model_id)
        if known is not None and known != dim:
            raise StoreError(f"Model {model_id!r} has {known}-d vectors in this store, not {dim}-d.")
        if known is None:
            with self.transaction() as cur:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS "
                    + table
                    + " (model_id VARCHAR NOT NULL, text_hash VARCHAR NOT NULL, vector FLOAT["
                    + str(int(dim))
                    + "] NOT NULL)"
                )
                cur.execute("INSERT INTO models VALUES (?, ?) ON CONFLICT DO NOTHING", [model_id, dim])

    def missing_texts(self, name: str, model_id: str) -> list[tuple[str, str]]:
        """(hash, text) of each distinct text of the corpus with no vector for ``model_id``."""
        cid = self._corpus_id(name)
        dim = self.model_dim(model_id)
        if dim is None:
            sql = "SELECT DISTINCT text_hash, text FROM documents WHERE corpus_id = ?"
            return self._cur().execute(sql, [cid]).fetchall()
        sql = (
            "SELECT DISTINCT d.text_hash, d.text FROM documents d WHERE d.corpus_id = ? "
            "AND NOT EXISTS (SELECT 1 FROM "
            + _vector_table(dim)
            + " e WHERE e.model_id = ? AND e.text_hash = d.text_hash)"
        )
        return self._cur().execute(sql, [cid, model_id]).fetchall()

    def put_vectors(self, model_id: str, hashes: list[str], vectors: np.ndarray) -> int:
        """Cache vectors for texts (by hash) in one transaction; ones already cached are kept
        as they are. Returns how many were added."""
        import pyarrow as pa

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(hashes):
            raise StoreError(f"Expected {len(hashes)} vectors, got an array of shape {vectors.shape}.")
        dim = vectors.shape[1]
        self.register_model(model_id, dim)
        table = _vector_table(dim)
        batch = pa.table(
            {
                "text_hash": pa.array(hashes, pa.string()),
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
            }
        )
        with self.transaction() as cur:
            before = _one(cur, "SELECT count(*) FROM " + table + " WHERE model_id = ?", [model_id])[0]
            cur.register("incoming_vectors", batch)
            try:
                cur.execute(
                    "INSERT INTO " + table + " SELECT ?, b.text_hash, b.vector FROM "
                    "(SELECT DISTINCT ON (text_hash) * FROM incoming_vectors) b "
                    "WHERE NOT EXISTS (SELECT 1 FROM "
                    + table
                    + " e WHERE e.model_id = ? AND e.text_hash = b.text_hash)",
                    [model_id, model_id],
                )
            finally:
                cur.unregister("incoming_vectors")
            after = _one(cur, "SELECT count(*) FROM " + table + " WHERE model_id = ?", [model_id])[0]
        return int(after - before)

    def put_vectors_from_parquet(self, model_id: str, paths) -> int:
        """Cache the vectors in Parquet shards (columns ``text_hash`` and ``vector``, a list of
        floats) under ``model_id``, as :meth:`put_vectors` does: in one transaction, one row per
        text hash (duplicates inside the shards, and hashes already cached, are skipped).

        ``paths`` is a file, a glob (``"shards/*.parquet"``) or a list of files. Every vector
        must have the same length, which must match the model's vectors already stored;
        otherwise nothing is stored. Returns how many vectors were added.
        """
        import duckdb

        if isinstance(paths, (str, os.PathLike)):
            paths = str(paths)
        else:
            paths = [str(p) for p in paths]
            if not paths:
                return 0
        cur = self._cur()
        try:
            row = _one(
                cur,
                "SELECT count(*), min(len(vector)), max(len(vector)), "
                "count(*) FILTER (WHERE text_hash IS NULL OR vector IS NULL) "
                "FROM read_parquet(?)",
                [paths],
            )
        except duckdb.Error as exc:
            raise StoreError(
                f"Could not read the vector shards {paths!r} ({exc}); they need "
                "columns text_hash and vector (a list of floats)."
            ) from None
        n, lo, hi, nulls = row
        if not n:
            return 0
        if nulls:
            raise StoreError(
                f"{nulls:,} row(s) of the vector shards have no text_hash or no vector; nothing was stored."
            )
        if lo != hi:
            raise StoreError(
                f"The vector shards hold vectors of different lengths ({lo} to {hi}); nothing was stored."
            )
        dim = int(lo)
        table = _vector_table(dim)
        with self.transaction() as cur:
            known = _one(cur, "SELECT dim FROM models WHERE model_id = ?", [model_id])
            if known is not None and int(known[0]) != dim:
                raise StoreError(
                    f"Model {model_id!r} has {int(known[0])}-d vectors in this store; the "
                    f"shards hold {dim}-d vectors. Nothing was stored."
                )
            if known is None:
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS " + table + " (model_id VARCHAR NOT NULL, "
                    "text_hash VARCHAR NOT NULL, vector FLOAT[" + str(dim) + "] NOT NULL)"
                )
                cur.execute("INSERT INTO models VALUES (?, ?) ON CONFLICT DO NOTHING", [model_id, dim])
            before = _one(cur, "SELECT count(*) FROM " + table + " WHERE model_id = ?", [model_id])[0]
            cur.execute(
                "INSERT INTO "
                + table
                + " SELECT ?, b.text_hash, CAST(b.vector AS FLOAT["
                + str(dim)
                + "]) FROM (SELECT DISTINCT ON (text_hash) text_hash, vector FROM read_parquet(?)) b "
                "WHERE NOT EXISTS (SELECT 1 FROM "
                + table
                + " e WHERE e.model_id = ? AND e.text_hash = b.text_hash)",
                [model_id, paths, model_id],
            )
            after = _one(cur, "SELECT count(*) FROM " + table + " WHERE model_id = ?", [model_id])[0]
        return int(after - before)

    def put_corpus_vectors(self, name: str, model_id: str, chunks, *, positions=None, progress=None) -> int:
        """Cache vectors for corpus ``name``'s documents that arrive in chunks (float32 ``(m, dim)``
        arrays, already checked and normalised): row i of the stream belongs to the document at
        ``positions[i]`` (default: document i) and is kept under that document's text hash.

        Every chunk is written inside ONE transaction: if the stream fails part-way (a bad row
        deep in a file, Ctrl-C), the store is left exactly as it was, without even the model's
        vector table. A row whose text has a vector for ``model_id`` already (cached before, or
        given by an earlier row: a repeated text or id) adds nothing; the first vector is kept.
        Each chunk is copied into DuckDB before the next is asked for, so a stream may reuse
        its buffers. Memory: the corpus's text hashes, a chunk, and DuckDB's buffer pool, held
        to :data:`_WRITE_BUFFER_POOL` while a write bigger than it runs (see
        :func:`_bulk_write_settings`).
        ``progress(rows_done, rows_total)`` is called after each chunk. Returns how many vectors
        were added.
        """
        import pyarrow as pa

        n_docs = self.corpus_info(name).n_docs
        if positions is None:
            positions = np.arange(n_docs, dtype=np.int64)
        else:
            positions = np.asarray(positions, dtype=np.int64)
            inside = positions.size == 0 or 0 <= positions.min() <= positions.max() < n_docs
            if positions.ndim != 1 or not inside:
                raise StoreError(f"positions must be document positions in 0..{n_docs - 1}.")
        total = len(positions)
        chunks = iter(chunks)
        head = next(chunks, None)  # the first chunk tells the width before anything is written
        if head is None:
            if total:
                raise StoreError(f"No vectors came for the {total:,} expected; nothing was stored.")
            return 0
        width = 4 * int(np.prod(head.shape[1:]))
        big = total * width > _WRITE_BUFFER_POOL
        restore = _bulk_write_settings(self._con, width) if big else None
        try:
            with self.transaction() as cur:
                cid = self._corpus_id(name, cur)
                if int(_one(cur, "SELECT n_docs FROM corpora WHERE corpus_id = ?", [cid])[0]) != n_docs:
                    raise StoreError(f"Corpus {name!r} was replaced meanwhile; nothing was stored.")
                hashes, first, has, dim = _import_plan(cur, cid, n_docs, model_id)
                added = done = 0
                for chunk in chain([head], chunks):
                    if chunk.ndim != 2 or (dim is not None and chunk.shape[1] != dim):
                        raise StoreError(
                            f"Model {model_id!r} has {dim}-d vectors in this store, not an array of "
                            f"shape {chunk.shape}; nothing was stored."
                        )
                    if dim is None:
                        dim = int(chunk.shape[1])
                        cur.execute(
                            "CREATE TABLE IF NOT EXISTS " + _vector_table(dim) + " (model_id VARCHAR NOT "
                            "NULL, text_hash VARCHAR NOT NULL, vector FLOAT[" + str(dim) + "] NOT NULL)"
                        )
                        cur.execute("INSERT INTO models VALUES (?, ?)", [model_id, dim])
                    m = len(chunk)
                    if done + m > total:
                        raise StoreError(
                            f"More vectors came than the {total:,} expected; nothing was stored."
                        )
                    at = positions[done : done + m]
                    texts = first[at]
                    new = np.flatnonzero(~has[texts])
                    # the first row of each text new in this chunk, in the chunk's order
                    keep = new[np.sort(np.unique(texts[new], return_index=True)[1])]
                    if keep.size:
                        has[texts[keep]] = True
                        rows = np.ascontiguousarray(
                            chunk if keep.size == m else chunk[keep], dtype=np.float32
                        )
                        batch = pa.table(
                            {
                                "model_id": pa.repeat(pa.scalar(model_id, pa.string()), keep.size),
                                "text_hash": hashes.take(pa.array(at[keep])),
                                "vector": pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), dim),
                            }
                        )
                        # a relation, not cur.register(): a registered table stays referenced
                        # until the transaction ends (and the chunk's buffer is reused after this)
                        cur.from_arrow(batch).insert_into(_vector_table(dim))
                        added += int(keep.size)
                        del batch, rows
                    done += m
                    if progress is not None:
                        progress(done, total)
                if done != total:
                    raise StoreError(f"{done:,} vectors came for {total:,} rows; nothing was stored.")
        finally:
            if restore is not None:  # after the commit, which writes what is left
                restore()
        return added

    def embedded_count(self, name: str, model_id: str) -> int:
        """How many documents of the corpus have a cached vector for ``model_id``."""
        cid = self._corpus_id(name)
        dim = self.model_dim(model_id)
        if dim is None:
            return 0
        sql = (
            "SELECT count(*) FROM documents d JOIN "
            + _vector_table(dim)
            + " e ON e.text_hash = d.text_hash AND e.model_id = ? WHERE d.corpus_id = ?"
        )
        return int(_one(self._cur(), sql, [model_id, cid])[0])

    def vectors(self, name: str, model_id: str) -> np.ndarray:
        """The corpus's vectors for ``model_id`` as float32 (n_docs, dim), in document order.

        Read in two steps, in one snapshot: which vector table row (rowid) each document's
        text has (a join of hashes only), then a scan of the vector rows, each placed by its
        document's position, a batch at a time while a thread fetches the next. One join that
        carried the vectors made DuckDB build its hash table on the vector side, a copy of every
        vector (1M x 384 on a 2-core VM: 3.9 s of CPU that way, 1.9 s this way).
        """
        info = self.corpus_info(name)
        cid = self._corpus_id(name)
        dim = self.model_dim(model_id)
        if dim is None:
            raise StoreError(f"Nothing in this store is embedded with {model_id!r}; embed {name!r} first.")
        table = _vector_table(dim)
        n = info.n_docs
        cur = self._con.cursor()  # its own transaction: a snapshot that no writer moves
        ahead = _Ahead(_empty_rows, n, dim)  # the kernel faults the result in meanwhile
        batches = None
        try:
            cur.execute("BEGIN TRANSACTION")
            pairs = cur.sql(
                "SELECT d.position, e.rowid FROM documents d JOIN "
                + table
                + " e ON e.text_hash = d.text_hash AND e.model_id = $model WHERE d.corpus_id = $cid",
                params={"model": model_id, "cid": cid},
            ).to_arrow_table()
            positions = pairs.column(0).to_numpy().astype(np.int64)
            rows = pairs.column(1).to_numpy()
            found = np.zeros(n, dtype=bool)
            found[positions] = True
            missing = n - int(found.sum())
            if missing:
                raise StoreError(
                    f"{missing:,} of {n:,} texts in {name!r} have no vector for {model_id!r}; run "
                    "embed on it first (it resumes where it stopped)."
                )
            lo, hi = int(rows.min()), int(rows.max())
            where, placed = _row_places(rows, positions, lo, hi)
            copies = np.flatnonzero(placed != positions)  # other documents with the same text
            out = ahead.result()
            reader = cur.sql(
                "SELECT rowid, vector FROM " + table + " WHERE rowid BETWEEN $lo AND $hi",
                params={"lo": lo, "hi": hi},
            ).to_arrow_reader(_READ_BATCH_ROWS)
            batches = _prefetched(reader)
            for batch in batches:
                at = where(batch.column(0).to_numpy())
                lists = batch.column(1)
                block = lists.values.slice(lists.offset * dim, len(lists) * dim).to_numpy(
                    zero_copy_only=False
                )
                block = block.reshape(-1, dim)
                keep = at >= 0
                if not keep.all():
                    at, block = at[keep], block[keep]
                if len(at) and at[-1] - at[0] == len(at) - 1 and (np.diff(at) == 1).all():
                    out[at[0] : at[-1] + 1] = block  # a run of documents (an import's rows): one copy
                elif len(at):
                    out[at] = block
            out[positions[copies]] = out[placed[copies]]
            cur.execute("COMMIT")
        finally:
            if batches is not None:
                batches.close()  # no fetch left in flight on the cursor
            cur.close()  # (and its transaction)
        return out

    def prune_vectors(self, *, hashes=None, model_id: str | None = None) -> int:
        """Drop cached vectors no corpus refers to; returns how many were dropped. ``hashes``
        (and ``model_id``): only among these texts' vectors (an embedding whose corpus was
        deleted under it), leaving other unused vectors for a re-ingest."""
        dropped = 0
        with self.transaction() as cur:
            for (dim,) in cur.execute("SELECT DISTINCT dim FROM models").fetchall():
                table = _vector_table(dim)
                sql = (
                    "DELETE FROM " + table + " e WHERE NOT EXISTS "
                    "(SELECT 1 FROM documents d WHERE d.text_hash = e.text_hash)"
                )
                params: list = []
                if model_id is not None:
                    sql += " AND e.model_id = ?"
                    params.append(model_id)
                if hashes is not None:
                    sql += " AND e.text_hash IN (SELECT unnest(?))"
                    params.append(list(hashes))
                dropped += len(cur.execute(sql + " RETURNING 1", params).fetchall())
        return dropped

    # -- cached results (projections, tests) -----------------------------------------------------

    def corpus_fingerprint(self, name: str) -> str:
        """A hash of the corpus's texts in order: it changes when, and only when, they change."""
        row = _one(self._cur(), "SELECT fingerprint FROM corpora WHERE name = ?", [_lookup_name(name)])
        if row is None:
            self._corpus_id(name)  # raises with the list of known corpora
        return row[0]

    def get_result(self, key: str) -> bytes | None:
        row = _one(self._cur(), "SELECT payload FROM results WHERE key = ?", [key])
        return None if row is None else bytes(row[0])

    def put_result(self, key: str, kind: str, payload: bytes) -> None:
        """Cache a result; a store open read-only (or damaged) skips it: it is only a cache."""
        if self.read_only or self._damage is not None:
            return
        with self.transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO results (key, kind, payload) VALUES (?, ?, ?)", [key, kind, payload]
            )

    def has_result(self, key: str) -> bool:
        return _one(self._cur(), "SELECT 1 FROM results WHERE key = ?", [key]) is not None

    # -- jobs (analytics.jobs keeps their meaning; this keeps their rows) -----------------------

    def add_job(self, kind: str, params: str, key: str, requested_by: str, created: float) -> int:
        with self.transaction() as cur:
            row = cur.execute(
                "INSERT INTO jobs (kind, params, key, state, requested_by, created) "
                "VALUES (?, ?, ?, 'queued', ?, ?) RETURNING job_id",
                [kind, params, key, requested_by, created],
            ).fetchall()
        return int(row[0][0])

    def update_job(self, job_id: int, **fields) -> None:
        """Set some of a job's columns (names from :data:`JOB_COLUMNS` only; values bound)."""
        bad = set(fields) - set(JOB_COLUMNS[4:])
        if bad or not fields:
            raise StoreError(f"Cannot set job column(s) {sorted(bad) or 'none'}.")
        names = list(fields)
        sql = "UPDATE jobs SET " + ", ".join(n + " = ?" for n in names) + " WHERE job_id = ?"
        with self.transaction() as cur:
            cur.execute(sql, [fields[n] for n in names] + [int(job_id)])

    def job_rows(
        self, *, job_id: int | None = None, key: str | None = None, states=None, limit: int = 200
    ) -> list[dict]:
        """Jobs as dicts of :data:`JOB_COLUMNS`, newest first, filtered by id, key or state."""
        where, params = [], []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(int(job_id))
        if key is not None:
            where.append("key = ?")
            params.append(key)
        if states:
            where.append("state IN (" + ", ".join("?" for _ in states) + ")")
            params.extend(states)
        sql = (
            "SELECT "
            + ", ".join(JOB_COLUMNS)
            + " FROM jobs"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY job_id DESC LIMIT ?"
        )
        rows = self._cur().execute(sql, params + [int(limit)]).fetchall()
        return [dict(zip(JOB_COLUMNS, r)) for r in rows]

    # -- the audit log (analytics.audit keeps its meaning; this keeps its rows) ------------------

    def add_audit(self, time: float, user: str, action: str, target: str, detail: str = "") -> int:
        """Add one audit row (values bound as given); returns its id."""
        with self.transaction() as cur:
            row = cur.execute(
                "INSERT INTO audit (time, user_name, action, target, detail) VALUES (?, ?, ?, ?, ?) "
                "RETURNING audit_id",
                [float(time), user, action, target, detail],
            ).fetchall()
        return int(row[0][0])

    def audit_rows(
        self, *, limit: int = 100, user: str | None = None, action: str | None = None
    ) -> list[dict]:
        """Audit rows as dicts (id, time, user, action, target, detail), newest first,
        filtered by user or action."""
        where, params = [], []
        if user is not None:
            where.append("user_name = ?")
            params.append(user)
        if action is not None:
            where.append("action = ?")
            params.append(action)
        sql = (
            "SELECT audit_id, time, user_name, action, target, detail FROM audit"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY audit_id DESC LIMIT ?"
        )
        rows = self._cur().execute(sql, params + [int(limit)]).fetchall()
        return [dict(zip(("id", "time", "user", "action", "target", "detail"), r)) for r in rows]

    # -- selections and marks (analytics.selection keeps their meaning) -------------------------

    def save_selection(self, name: str, rows) -> str:
        """Keep a selection of rows of corpus ``name``; returns its id (a hash of the corpus and
        rows: the same selection saved twice is one row). Rows are checked against the corpus."""
        ids = np.unique(np.asarray(rows, dtype=np.int64).ravel())
        with self.transaction() as cur:
            cid = self._corpus_id(name, cur)
            n = int(_one(cur, "SELECT n_docs FROM corpora WHERE corpus_id = ?", [cid])[0])
            if ids.size and (ids[0] < 0 or ids[-1] >= n):
                raise StoreError(f"A selection of {name!r} names rows outside 0..{n - 1}.")
            blob = ids.astype("<u4").tobytes()
            sid = hashlib.blake2b(str(cid).encode() + b"\x1f" + blob, digest_size=8).hexdigest()
            if not _one(cur, "SELECT 1 FROM selections WHERE selection_id = ?", [sid]):
                cur.execute("INSERT INTO selections VALUES (?, ?, ?, ?)", [sid, cid, time.time(), blob])
        return sid

    def selection(self, selection_id: str) -> tuple[str, np.ndarray] | None:
        """A saved selection as (corpus name, sorted row ids), or None when there is no such
        selection (or its corpus was deleted)."""
        row = _one(
            self._cur(),
            "SELECT c.name, s.rows FROM selections s JOIN corpora c USING (corpus_id) "
            "WHERE s.selection_id = ?",
            [str(selection_id)],
        )
        if row is None:
            return None
        return row[0], np.frombuffer(row[1], dtype="<u4").astype(np.int64)

    def set_marks(self, name: str, rows, mark: str, *, user: str, on: bool = True) -> None:
        """Put (``on``) or take off a mark such as "reviewed" on rows of corpus ``name``."""
        ids = sorted({int(r) for r in np.asarray(rows, dtype=np.int64).ravel()})
        with self.transaction() as cur:
            cid = self._corpus_id(name, cur)
            n = int(_one(cur, "SELECT n_docs FROM corpora WHERE corpus_id = ?", [cid])[0])
            if ids and (ids[0] < 0 or ids[-1] >= n):
                raise StoreError(f"Marks on {name!r} name rows outside 0..{n - 1}.")
            for r in ids:
                cur.execute(
                    "DELETE FROM marks WHERE corpus_id = ? AND position = ? AND mark = ?", [cid, r, mark]
                )
                if on:
                    cur.execute("INSERT INTO marks VALUES (?, ?, ?, ?, ?)", [cid, r, mark, user, time.time()])

    def marks(self, name: str, mark: str) -> dict[int, tuple[str, float]]:
        """Rows of corpus ``name`` that carry ``mark``: {row: (user, time)}."""
        cid = self._corpus_id(name)
        rows = (
            self._cur()
            .execute(
                "SELECT position, user_name, time FROM marks WHERE corpus_id = ? AND mark = ? "
                "ORDER BY position",
                [cid, mark],
            )
            .fetchall()
        )
        return {int(p): (u, float(t)) for p, u, t in rows}

    def digest(self) -> dict[str, str]:
        """A content checksum of every table, order-independent: equal digests, equal contents."""
        out = {}
        cur = self._cur()
        tables = [
            r[0]
            for r in cur.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY table_name"
            ).fetchall()
        ]
        for t in tables:
            if not (t.isidentifier() and t.isascii()):
                raise StoreError(f"Unexpected table name {t!r} in the store.")
            rows = cur.execute('SELECT md5(CAST(x AS VARCHAR)) FROM "' + t + '" x').fetchall()
            out[t] = hashlib.sha256("".join(sorted(r[0] for r in rows)).encode()).hexdigest()
        return out

    def backup_to(self, path: str | os.PathLike) -> None:
        """Write a consistent copy of the whole store to a new DuckDB file at ``path`` while
        other threads go on reading and writing it (the dashboard keeps serving).

        The copy runs in one transaction on a cursor of its own, so it holds the store as of
        one instant (DuckDB's MVCC): a write committed during the copy is in the live store
        but not in the copy, and a transaction still open (an ingest half done) is in neither.
        ``COPY FROM DATABASE`` writes every table, constraint and sequence (with its next
        value) into a fresh file, reading each block of this one, which verifies its
        checksum. ``path`` must not exist; :mod:`analytics.backup` names it, checks the copy
        and renames it into place.

        Why not CHECKPOINT and a byte copy, which is faster (a 752 MiB store, 500,000 384-d
        vectors, on a busy 2-core VM: 0.9-1.9 s against 20-24 s here): it must hold every
        writer for its whole length (the dashboard's clicks that write would wait), and it
        copies free blocks and any damage as they are. Here a writer's commits waited at most
        ~150 ms during the copy, and the copy is compacted.
        """
        import secrets

        import duckdb

        target = Path(path)
        if target.exists() or Path(str(target) + ".wal").exists():
            raise StoreError(f"{target} already exists; a backup is only written to a new file.")
        alias = "embex_backup_" + secrets.token_hex(4)  # an identifier made of hex digits only
        cur = self._con.cursor()
        try:
            source = cur.execute("SELECT current_database()").fetchall()[0][0]
            cur.execute("ATTACH ? AS " + alias + " (READ_WRITE)", [str(target)])
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    cur.execute('COPY FROM DATABASE "' + source.replace('"', '""') + '" TO ' + alias)
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            finally:
                cur.execute("DETACH " + alias)  # writes the copy's last blocks and closes it
        except duckdb.Error as exc:
            raise StoreError(
                f"The store {self.path} could not be copied ({exc}). The store was not changed; "
                "if the message names a damaged block, `embex check` says more."
            ) from None
        finally:
            cur.close()


def _guarded(method):
    """A DuckDB error that says the file is damaged becomes a StoreError that says so (and
    every later write is refused); any other error passes as it was."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        import duckdb

        try:
            return method(self, *args, **kwargs)
        except duckdb.OutOfMemoryException as exc:
            raise _out_of_memory(exc) from None
        except duckdb.Error as exc:
            if not _is_damage(exc):
                raise
            raise self._mark_damaged(exc) from None

    return wrapper


for _name in (
    "schema_version add_corpus add_corpus_stream corpus_info list_corpora texts metadata "
    "delete_corpus rename_corpus model_dim model_ids register_model missing_texts put_vectors "
    "put_vectors_from_parquet put_corpus_vectors embedded_count vectors prune_vectors corpus_fingerprint get_result "
    "put_result has_result add_job update_job job_rows add_audit audit_rows save_selection selection "
    "set_marks marks digest"
).split():
    setattr(Store, _name, _guarded(getattr(Store, _name)))
del _name
