"""Reading corpora from files: CSV, TSV, JSONL, Parquet and plain text (one document a line),
and precomputed vectors for users who embed elsewhere.

Everything here reads and checks; nothing writes. A file that cannot be used raises
:class:`CorpusError` with what was wrong and what to do, before anything reaches the store.

Two readers share one set of parsers and checks: :func:`load_corpus` reads a whole input into
memory (uploads arrive as bytes anyway), and :func:`stream_corpus` reads a file on disk in chunks
of rows, for corpora of any size (``Store.add_corpus_stream`` writes them). A file gives the same
texts, metadata, skipped rows and errors through either.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np

from .errors import CorpusError, ParameterError

#: refuse in-memory inputs (uploads, load_corpus) over this size unless the caller raises the
#: limit; streamed files (stream_corpus) need no limit, as they never sit in memory whole
DEFAULT_MAX_BYTES = 200 * 2**20
#: rows per chunk when a file is streamed: bounds the Python objects alive at any time
DEFAULT_CHUNK_ROWS = 100_000
#: the rows that text-column inference looks at (names and string lengths)
_SAMPLE_ROWS = 500
#: a stream remembers this many skipped row numbers (it counts them all)
_MAX_LISTED_SKIPS = 1000
FORMATS = ("csv", "tsv", "jsonl", "parquet", "txt")
_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "txt",
    ".text": "txt",
}
#: column names tried in order when the caller does not name the text column
_TEXT_NAMES = (
    "text",
    "texts",
    "document",
    "content",
    "body",
    "sentence",
    "abstract",
    "description",
    "review",
    "message",
    "query",
    "question",
    "title",
)


@dataclass
class Corpus:
    """Texts with their metadata, as read from one file."""

    texts: list[str]
    metadata: list[dict] = field(repr=False)
    text_column: str | None
    source: str
    skipped_rows: list[int] = field(default_factory=list, repr=False)
    """1-based row numbers (after any header) dropped because their text was empty."""
    notes: list[str] = field(default_factory=list)
    """What the loader decided on the user's behalf (column inferred, rows skipped...)."""

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def columns(self) -> list[str]:
        keys: dict[str, None] = {}
        for m in self.metadata[:1000]:
            keys.update(dict.fromkeys(m))
        return list(keys)


def detect_format(path: str | Path, format: str | None = None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise CorpusError(f"Unknown format {format!r}; use one of {', '.join(FORMATS)}.")
        return format
    ext = Path(path).suffix.lower()
    if ext not in _EXTENSIONS:
        raise CorpusError(
            f"Cannot tell the format of {Path(path).name!r} from its extension; rename it to "
            f"one of {', '.join(sorted(_EXTENSIONS))} or pass format=."
        )
    return _EXTENSIONS[ext]


def load_corpus(
    source,
    text_column: str | None = None,
    *,
    format: str | None = None,
    name: str | None = None,
    encoding: str = "utf-8",
    max_bytes: int = DEFAULT_MAX_BYTES,
    empty: str = "skip",
) -> Corpus:
    """Read a corpus from a path, or from bytes (an upload) with ``format`` or ``name`` given.

    Parameters
    ----------
    text_column : the column holding the texts; inferred when omitted (see ``Corpus.notes``).
    encoding : the file's text encoding; UTF-8 (with or without BOM) by default.
    max_bytes : larger inputs are refused before they are parsed: the whole input is held in
        memory, several times over while parsed. Files too large for that: :func:`stream_corpus`.
    empty : ``"skip"`` drops empty or whitespace-only texts and reports them; ``"error"`` refuses.
    """
    if empty not in ("skip", "error"):
        raise ParameterError(f"empty must be 'skip' or 'error', got {empty!r}.")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "upload"
        fmt = detect_format(label, format) if (format or name) else None
        if fmt is None:
            raise CorpusError("Pass format= (or the file name) with bytes input.")
    else:
        path = Path(source)
        label = name or path.name
        if not path.is_file():
            raise CorpusError(f"No such file: {path}.")
        fmt = detect_format(path, format)
        size = path.stat().st_size
        _check_size(size, max_bytes, label)
        data = path.read_bytes()
    _check_size(len(data), max_bytes, label)
    if not data.strip():
        raise CorpusError(f"{label} is empty (0 bytes or only whitespace); there is nothing to load.")

    if fmt == "parquet":
        columns, rows = _read_parquet(data, label)
    else:
        text = _decode(data, encoding, label)
        columns, row_iter = _text_rows(fmt, io.StringIO(text, newline=""), label)
        rows = list(row_iter)
        if columns is None:  # JSONL: the columns are the keys the rows have
            columns = _keys(rows if text_column is not None else rows[:_SAMPLE_ROWS])
    if not rows:
        raise CorpusError(f"{label} has a header but no rows; add at least one document.")

    notes: list[str] = []
    col = _choose_text_column(columns, rows[:_SAMPLE_ROWS], text_column, label, notes)
    picker = _TextPicker(col, label, empty, explicit=text_column is not None)
    texts, metadata = picker.take(rows)
    notes += picker.finish()
    return Corpus(texts, metadata, col, label, picker.skipped_rows, notes)


class _TextPicker:
    """Turns rows (dicts) into texts and metadata, skipping empty texts; shared by the in-memory
    and the streaming reader so both decide and report exactly alike. It keeps counts, not rows,
    so a stream can feed it one chunk at a time."""

    def __init__(
        self, column: str, label: str, empty: str, max_listed: int | None = None, explicit: bool = True
    ):
        self.column, self.label, self.empty, self.max_listed = column, label, empty, max_listed
        self.explicit = explicit
        self.n_rows = self.n_texts = self.n_skipped = 0
        self.skipped_rows: list[int] = []
        self.n_not_str = 0  # non-empty values that were not strings (numbers, booleans...)
        self.first_not_str: tuple[int, object] | None = None

    def take(self, rows: Iterable[dict]) -> tuple[list[str], list[dict]]:
        """The texts and metadata of ``rows``, the next rows of the file. Once ``empty="error"``
        has seen an empty text, it only counts: the read will be refused at :meth:`finish`."""
        col, texts, metadata = self.column, [], []
        for row in rows:
            self.n_rows += 1
            value = row.get(col)
            t = _text_of(value)
            if t.strip() and not isinstance(value, str):
                self.n_not_str += 1
                if self.first_not_str is None:
                    self.first_not_str = (self.n_rows, value)
            if not t.strip():
                self.n_skipped += 1
                if self.max_listed is None or len(self.skipped_rows) < self.max_listed:
                    self.skipped_rows.append(self.n_rows)
                continue
            self.n_texts += 1
            if self.empty == "error" and self.n_skipped:
                continue
            texts.append(t)
            metadata.append({k: v for k, v in row.items() if k != col})
        return texts, metadata

    def finish(self) -> list[str]:
        """Notes for the user once every row is taken, or :class:`CorpusError` when the empty
        texts make the corpus unusable (``empty="error"``, or no text at all). Values that
        were not text (a numeric column, say) are never turned into text silently: a note says
        so, and an inferred column holding no text at all is refused."""
        notes = []
        if self.n_not_str:
            row, example = self.first_not_str
            if self.n_not_str == self.n_texts and not self.explicit:
                raise CorpusError(
                    f"{self.label}: column {self.column!r}, taken as the text column, holds "
                    f"{type(example).__name__} values, not text (e.g. {example!r} in row {row}). "
                    "Name the column that holds the texts (text_column=, --text-column)."
                )
            notes.append(
                f"{self.n_not_str:,} value(s) in column {self.column!r} were not text "
                f"(e.g. {type(example).__name__} {example!r} in row {row}); they were stored as text."
            )
        if not self.n_skipped:
            return notes
        shown = self.skipped_rows[:10]
        where = ", ".join(map(str, shown)) + (" ..." if self.n_skipped > len(shown) else "")
        if self.empty == "error" or not self.n_texts:
            raise CorpusError(
                f"{self.label}: {self.n_skipped:,} of {self.n_rows:,} rows have an empty text in "
                f"column {self.column!r} (rows {where}). Fill them in or drop them"
                + (", or pick another text column." if not self.n_texts else ".")
            )
        return [*notes, f"Skipped {self.n_skipped:,} row(s) with empty text (rows {where})."]


def _text_of(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _keys(rows: Iterable[dict]) -> list[str]:
    """Every key of the rows, in order of first appearance."""
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    return list(keys)


def _check_size(size: int, max_bytes: int, label: str) -> None:
    if size > max_bytes:
        raise CorpusError(
            f"{label} is {size / 2**20:,.1f} MiB, over the {max_bytes / 2**20:,.0f} MiB limit. "
            "Split it, or raise the limit (max_bytes=, --max-mb) if this machine has the memory."
        )


def _codec(encoding: str) -> str:
    """The Python codec for ``encoding``: UTF-8 reads with or without a BOM."""
    name = "utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding
    try:
        codecs.lookup(name)
    except LookupError:
        raise CorpusError(
            f"Unknown encoding {encoding!r}; use a Python codec name such as 'latin-1'."
        ) from None
    return name


def _check_text_head(head: bytes, encoding: str, label: str) -> None:
    """Refuse binary files early: NUL bytes in the first 64 KiB of a file read as UTF-8."""
    if b"\x00" in head[:65536] and encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        raise CorpusError(
            f"{label} does not look like a text file (it contains NUL bytes). If it is UTF-16, "
            "re-save it as UTF-8; if it is Parquet, give it a .parquet extension."
        )


def _undecodable(label: str, encoding: str, byte: int, line: int) -> CorpusError:
    return CorpusError(
        f"{label} is not valid {encoding}: byte 0x{byte:02x} at line {line} cannot "
        "be decoded. Re-save the file as UTF-8, or pass its encoding (e.g. encoding='latin-1', "
        "--encoding cp1252)."
    )


def _decode(data: bytes, encoding: str, label: str) -> str:
    _check_text_head(data, encoding, label)
    codec = _codec(encoding)
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _undecodable(label, encoding, data[exc.start], line) from None


def _text_rows(fmt: str, lines: Iterable[str], label: str):
    """``(columns, rows)`` of a text format read from ``lines`` (a text file opened with
    ``newline=""``, or a StringIO over the decoded text): the header's columns (None for JSONL,
    whose columns are the keys its rows have) and an iterator of row dicts, read lazily."""
    if fmt == "txt":
        # a "line" is what str.splitlines() splits on, as when the whole text is split at once
        return ["text"], ({"text": piece} for line in lines for piece in line.splitlines())
    if fmt == "jsonl":
        return None, _jsonl_rows(lines, label)
    return _delimited_rows(lines, "\t" if fmt == "tsv" else ",", label)


def _delimited_rows(lines: Iterable[str], delimiter: str, label: str):
    """The header (read now) and an iterator of the rows as dicts (read as they are asked for).
    Quoted fields may span lines; a row with the wrong number of fields is refused with its
    line number."""
    csv.field_size_limit(2**31 - 1)
    kind, sep = ("TSV", "tab") if delimiter == "\t" else ("CSV", "comma")
    reader = csv.reader(lines, delimiter=delimiter, strict=True)

    def malformed(exc):
        return CorpusError(
            f"{label} is not well-formed {kind} near line {reader.line_num}: {exc}. Check its quoting."
        )

    try:
        header = next(reader)
    except StopIteration:
        raise CorpusError(
            f"{label} is empty (0 bytes or only whitespace); there is nothing to load."
        ) from None
    except csv.Error as exc:
        raise malformed(exc) from None
    header = _clean_header(header, label)

    def rows():
        try:
            for values in reader:
                if not values:
                    continue
                if len(values) != len(header):
                    raise CorpusError(
                        f"{label}, line {reader.line_num}: {len(values)} fields where the header has "
                        f"{len(header)}. Check the quoting and the delimiter ({sep}) on that line."
                    )
                yield dict(zip(header, values))
        except csv.Error as exc:
            raise malformed(exc) from None

    return header, rows()


def _clean_header(header: list[str], label: str) -> list[str]:
    names = [h.strip() for h in header]
    if not any(names):
        raise CorpusError(f"{label} has an empty header row; the first line must name the columns.")
    seen: set[str] = set()
    for i, h in enumerate(names):
        if not h:
            names[i] = h = f"column_{i + 1}"
        if h in seen:
            raise CorpusError(f"{label} has two columns named {h!r}; give every column its own name.")
        seen.add(h)
    return names


def _jsonl_rows(lines: Iterable[str], label: str) -> Iterator[dict]:
    """One JSON object per line (blank lines ignored). Lines end at \\n, \\r or \\r\\n only,
    so a raw U+2028 inside a JSON string (valid JSON) does not split its line."""
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(
                f"{label}, line {line_no}: not valid JSON ({exc.msg}). JSONL needs one JSON object per line."
            ) from None
        if not isinstance(obj, dict):
            raise CorpusError(
                f"{label}, line {line_no}: expected a JSON object like "
                f'{{"text": "..."}}, got {type(obj).__name__}.'
            )
        yield obj


def _read_parquet(data: bytes, label: str) -> tuple[list[str], list[dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(
            f"{label} could not be read as Parquet ({exc}). Is it really a .parquet file?"
        ) from None
    return table.column_names, table.to_pylist()


def _choose_text_column(columns, rows, text_column, label, notes) -> str:
    """The text column: the one named, else the only one, else a usual name, else the column
    with the longest strings in the first rows. What was inferred is added to ``notes``."""
    if text_column is not None:
        if text_column not in columns:
            raise CorpusError(
                f"{label} has no column {text_column!r}; its columns are: "
                + ", ".join(repr(c) for c in columns[:30])
                + "."
            )
        return text_column
    if len(columns) == 1:
        return columns[0]
    lower = {str(c).lower(): c for c in columns}
    for candidate in _TEXT_NAMES:
        if candidate in lower:
            notes.append(f"Using column {lower[candidate]!r} as the text (pass text_column= to change).")
            return lower[candidate]
    sample = rows[:_SAMPLE_ROWS]
    lengths = {c: np.mean([len(r[c]) if isinstance(r.get(c), str) else 0 for r in sample]) for c in columns}
    best = max(lengths, key=lengths.get)
    if lengths[best] == 0:
        raise CorpusError(f"{label} has no column of text; name one with text_column=.")
    notes.append(
        f"Using column {best!r}, the one with the longest strings, as the text (pass text_column= to change)."
    )
    return best


# --- streaming: files of any size --------------------------------------------------------------


@dataclass
class CorpusChunk:
    """The next rows of a streamed file, as texts and their metadata (empty texts left out)."""

    texts: list[str]
    metadata: list[dict] = field(repr=False)
    rows_read: int
    """Rows of the file read so far, this chunk's included (skipped rows count)."""
    bytes_read: int | None
    """Bytes of the file read so far: the read position for text formats, an estimate from the
    rows read for Parquet; None when unknown."""


class CorpusStream:
    """A corpus file read in chunks of rows, so its size is bounded by the disk, not by memory.

    Opening it checks what can be checked up front (the file, its format, encoding, header and
    first rows) and decides the text column from the first rows, exactly as :func:`load_corpus`
    would; iterating reads the file from the start and yields :class:`CorpusChunk` objects. An
    error further in (bad bytes, a malformed row, empty texts with ``empty="error"``) is raised
    while iterating, so the consumer must be ready to undo what it did with earlier chunks:
    ``Store.add_corpus_stream`` writes all chunks in one transaction for that reason.

    After a complete iteration, ``n_rows``, ``n_docs``, ``n_skipped``, ``skipped_rows`` (the first
    1,000 row numbers) and ``notes`` describe the whole file.
    """

    def __init__(
        self,
        path,
        text_column: str | None = None,
        *,
        format: str | None = None,
        name: str | None = None,
        encoding: str = "utf-8",
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        empty: str = "skip",
        max_bytes: int | None = None,
    ):
        if empty not in ("skip", "error"):
            raise ParameterError(f"empty must be 'skip' or 'error', got {empty!r}.")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ParameterError(f"chunk_rows must be a positive integer, got {chunk_rows!r}.")
        if isinstance(path, (bytes, bytearray, memoryview)):
            raise TypeError("stream_corpus reads files on disk; use load_corpus for bytes.")
        self.path = Path(path)
        self.source = name or self.path.name
        if not self.path.is_file():
            raise CorpusError(f"No such file: {self.path}.")
        self.format = detect_format(self.path, format)
        self.encoding, self.chunk_rows, self.empty = encoding, chunk_rows, empty
        self.total_bytes = self.path.stat().st_size
        if max_bytes is not None:
            _check_size(self.total_bytes, max_bytes, self.source)
        self.total_rows: int | None = None  # known up front for Parquet only
        self._check_content()
        if self.format != "parquet":
            _codec(encoding)

        with self._reading() as (columns, rows, _):
            sample = list(islice(rows, _SAMPLE_ROWS))
            whole = next(rows, None) is None
        if not sample:
            raise CorpusError(f"{self.source} has a header but no rows; add at least one document.")
        # JSONL has no header: its columns are the keys of its rows, known for the sample now
        # and for the whole file once it is read, so a named column first seen after the
        # sample is checked at the end (as load_corpus, which sees all rows, would accept it)
        self._columns_at_end = False
        if columns is None:
            columns = _keys(sample)
            self._columns_at_end = text_column is not None and text_column not in columns and not whole
        self._initial_notes: list[str] = []
        self._explicit = text_column is not None
        self.text_column = (
            text_column
            if self._columns_at_end
            else _choose_text_column(columns, sample, text_column, self.source, self._initial_notes)
        )
        self.columns = [c for c in columns if c != self.text_column]
        """The metadata columns: the header's (Parquet's schema's) or, for JSONL, the first rows' keys."""
        self.notes = list(self._initial_notes)
        self.n_rows = self.n_docs = self.n_skipped = 0
        self.skipped_rows: list[int] = []

    def __repr__(self) -> str:
        return (
            f"CorpusStream({self.source!r}, format={self.format!r}, "
            f"text_column={self.text_column!r}, chunk_rows={self.chunk_rows})"
        )

    def _check_content(self) -> None:
        """Refuse a file of nothing but whitespace, and text that looks binary, before parsing
        (read block by block: a real file stops at its first block)."""
        with open(self.path, "rb") as f:
            head = f.read(65536)
            block = head
            while block and not block.strip():
                block = f.read(2**20)
        if not block.strip():
            raise CorpusError(
                f"{self.source} is empty (0 bytes or only whitespace); there is nothing to load."
            )
        if self.format != "parquet":
            _check_text_head(head, self.encoding, self.source)

    @contextmanager
    def _reading(self):
        """Open the file; yield ``(columns or None, rows, bytes_read())``; close it. Decode and
        Parquet errors become :class:`CorpusError`."""
        if self.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            def unreadable(exc):
                return CorpusError(
                    f"{self.source} could not be read as Parquet ({exc}). Is it really a .parquet file?"
                )

            try:
                # pre_buffer=False: with it, pyarrow keeps every row group read until closed
                pf = pq.ParquetFile(self.path, pre_buffer=False)
            except (pa.ArrowException, OSError) as exc:
                raise unreadable(exc) from None
            self.total_rows = total = pf.metadata.num_rows
            done = [0]

            def rows():
                try:
                    # small batches: the rows of one batch are Python objects beside the chunk's
                    for batch in pf.iter_batches(batch_size=min(self.chunk_rows, 8192)):
                        done[0] += batch.num_rows
                        yield from batch.to_pylist()
                except (pa.ArrowException, OSError) as exc:
                    raise unreadable(exc) from None

            try:
                yield (
                    pf.schema_arrow.names,
                    rows(),
                    lambda: round(self.total_bytes * done[0] / total) if total else self.total_bytes,
                )
            finally:
                pf.close()
            return
        try:
            with open(self.path, encoding=_codec(self.encoding), newline="") as f:
                columns, rows = _text_rows(self.format, f, self.source)
                yield columns, rows, f.buffer.tell
        except UnicodeDecodeError:
            raise self._decode_error() from None

    def _decode_error(self) -> CorpusError:
        """Where the first undecodable byte is: the text reader's error does not say where in
        the file it was, so read the file again up to it (only on this error path)."""
        decoder = codecs.getincrementaldecoder(_codec(self.encoding))("strict")
        lines = 0
        with open(self.path, "rb") as f:
            while True:
                block = f.read(2**20)
                try:
                    decoder.decode(block, final=not block)
                except UnicodeDecodeError as exc:
                    # exc.object is this block, after any bytes of a character the last block
                    # began (those hold no newline)
                    line = lines + exc.object[: exc.start].count(b"\n") + 1
                    return _undecodable(self.source, self.encoding, exc.object[exc.start], line)
                if not block:
                    return CorpusError(
                        f"{self.source} is not valid {self.encoding}. Re-save the "
                        "file as UTF-8, or pass its encoding."
                    )
                lines += block.count(b"\n")

    def __iter__(self) -> Iterator[CorpusChunk]:
        picker = _TextPicker(
            self.text_column, self.source, self.empty, max_listed=_MAX_LISTED_SKIPS, explicit=self._explicit
        )
        seen: dict[str, None] = {}
        self.n_rows = self.n_docs = 0
        with self._reading() as (_, rows, bytes_read):
            if self._columns_at_end:
                rows = _noting_keys(rows, seen)
            while True:
                before = picker.n_rows
                texts, metadata = picker.take(islice(rows, self.chunk_rows))
                if picker.n_rows == before:
                    break
                self.n_rows, self.n_docs = picker.n_rows, self.n_docs + len(texts)
                if texts:
                    yield CorpusChunk(texts, metadata, picker.n_rows, bytes_read())
                del texts, metadata  # not alive while the next chunk is read
        if self._columns_at_end and self.text_column not in seen:
            _choose_text_column(list(seen), [], self.text_column, self.source, [])  # raises
        self.n_skipped, self.skipped_rows = picker.n_skipped, picker.skipped_rows
        self.notes = [*self._initial_notes, *picker.finish()]


def _noting_keys(rows: Iterable[dict], seen: dict) -> Iterator[dict]:
    for row in rows:
        seen.update(dict.fromkeys(row))
        yield row


def stream_corpus(
    path,
    text_column: str | None = None,
    *,
    format: str | None = None,
    name: str | None = None,
    encoding: str = "utf-8",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    empty: str = "skip",
    max_bytes: int | None = None,
) -> CorpusStream:
    """A corpus file on disk, read in chunks of ``chunk_rows`` rows: CSV and TSV (quoted fields
    may span lines), JSONL and .txt line by line, Parquet batch by batch. Memory holds one chunk
    at a time, so no size limit is needed (``max_bytes`` sets one if a caller wants a guard).
    Same parameters, inference, checks and messages as :func:`load_corpus`; pass the result to
    ``Store.add_corpus_stream``.

    >>> stream = stream_corpus("big.parquet")
    >>> store.add_corpus_stream("big", stream, progress=print)
    """
    return CorpusStream(
        path,
        text_column,
        format=format,
        name=name,
        encoding=encoding,
        chunk_rows=chunk_rows,
        empty=empty,
        max_bytes=max_bytes,
    )


# --- precomputed vectors -----------------------------------------------------------------------


def load_vectors(
    source,
    *,
    format: str | None = None,
    vector_column: str | None = None,
    id_column: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
):
    """Read precomputed vectors: ``.npy`` (an (n, d) array, in document order), ``.npz`` (arrays
    ``vectors`` and optionally ``ids``) or Parquet (a list column of floats, optionally an id
    column). Returns ``(vectors float32 (n, d), ids or None)``; shape and values are checked.
    """
    path = Path(source)
    if not path.is_file():
        raise CorpusError(f"No such file: {path}.")
    _check_size(path.stat().st_size, max_bytes, path.name)
    fmt = format or path.suffix.lower().lstrip(".")
    ids = None
    try:
        if fmt == "npy":
            vectors = np.load(path, allow_pickle=False)
        elif fmt == "npz":
            with np.load(path, allow_pickle=False) as z:
                key = "vectors" if "vectors" in z else ("embeddings" if "embeddings" in z else None)
                if key is None:
                    raise CorpusError(f"{path.name} has arrays {list(z)}; name the vectors 'vectors'.")
                vectors = z[key]
                ids = z["ids"].tolist() if "ids" in z else None
        elif fmt in ("parquet", "pq"):
            vectors, ids = _vectors_from_parquet(path, vector_column, id_column)
        else:
            raise CorpusError(f"Vectors must be .npy, .npz or .parquet, not {path.suffix or 'no extension'}.")
    except ValueError as exc:
        if isinstance(exc, CorpusError):
            raise
        raise CorpusError(f"{path.name} could not be read as vectors ({exc}).") from None
    return check_vectors(vectors, path.name), ids


def _vectors_from_parquet(path, vector_column, id_column):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{path.name} could not be read as Parquet ({exc}).") from None
    lists = [
        f.name
        for f in table.schema
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type) or pa.types.is_fixed_size_list(f.type)
    ]
    col = vector_column or (lists[0] if len(lists) == 1 else None)
    if col is None or col not in table.column_names:
        raise CorpusError(f"{path.name}: name the vector column (list columns found: {lists or 'none'}).")
    values = table.column(col).to_pylist()
    lengths = {len(v) if v is not None else 0 for v in values}
    if len(lengths) != 1 or 0 in lengths:
        raise CorpusError(
            f"{path.name}: the vectors in {col!r} have different lengths ({sorted(lengths)[:5]}) "
            "or are missing; every row needs a vector of the same dimension."
        )
    ids = None
    if id_column or "id" in table.column_names:
        ids = table.column(id_column or "id").to_pylist()
    return np.asarray(values, dtype=np.float64), ids


def check_vectors(vectors, label: str = "vectors", *, dim: int | None = None) -> np.ndarray:
    """Vectors as float32 (n, d), or :class:`CorpusError` saying what is wrong with them."""
    if np.iscomplexobj(vectors):  # casting would drop the imaginary part without a word
        raise CorpusError(
            f"{label}: the vectors are complex numbers; embeddings are real. Convert them "
            "(e.g. take the real part, or stack real and imaginary parts) before importing."
        )
    try:
        arr = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise CorpusError(
            f"{label}: rows have different lengths or are not numbers; "
            "every vector must have the same dimension."
        ) from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise CorpusError(f"{label}: expected a 2-D array (n_texts, dim), got shape {arr.shape}.")
    if dim is not None and arr.shape[1] != dim:
        raise CorpusError(f"{label}: vectors have dimension {arr.shape[1]}, but this model's are {dim}.")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise CorpusError(
            f"{label}: {rows.size} vector(s) contain NaN or inf (rows {rows[:5].tolist()}); "
            "fix or drop them before importing."
        )
    zero = ~arr.any(axis=1)
    if zero.any():
        rows = np.flatnonzero(zero)
        raise CorpusError(f"{label}: {rows.size} vector(s) are all zeros (rows {rows[:5].tolist()}).")
    return arr.astype(np.float32)
