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
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path

import numpy as np

from .errors import CorpusError, ParameterError

#: refuse in-memory inputs (uploads, load_corpus) over this size unless the caller raises the
#: limit; streamed files (stream_corpus) need no limit, as they never sit in memory whole
DEFAULT_MAX_BYTES = 200 * 2**20
#: rows per chunk when a file is streamed: bounds the Python objects alive at any time
DEFAULT_CHUNK_ROWS = 100_000
#: refuse in-memory inputs with more rows than this (max_rows=, None: no limit); streamed files
#: have no row limit unless the caller gives one
DEFAULT_MAX_ROWS = 5_000_000
#: refuse a value (a text, or a metadata cell) longer than this many characters, with its row
#: number, in every reader (max_text_chars=, None: no limit). A longer text is refused rather
#: than cut: embedding models read a few thousand tokens at most, and a cut the user did not ask
#: for would change what is embedded without a word
DEFAULT_MAX_TEXT_CHARS = 1_000_000
#: refuse in-memory inputs whose data, decompressed, exceed this (max_decompressed_bytes=,
#: None: no limit): a few hundred KB of dictionary-encoded, compressed Parquet can hold GBs.
#: Parquet is checked from its metadata before any column is read, then batch by batch before
#: a batch is decoded; text formats count their decoded characters while parsed
DEFAULT_MAX_DECOMPRESSED_BYTES = 1 * 2**30
#: a streamed chunk (and a decoded Parquet batch) ends once its values hold this many
#: characters (bytes for Parquet), whatever chunk_rows says: long texts do not multiply memory
_CHUNK_CHARS = 32 * 2**20
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
    max_rows: int | None = DEFAULT_MAX_ROWS,
    max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS,
    max_decompressed_bytes: int | None = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> Corpus:
    """Read a corpus from a path, or from bytes (an upload) with ``format`` or ``name`` given.

    Parameters
    ----------
    text_column : the column holding the texts; inferred when omitted (see ``Corpus.notes``).
    encoding : the file's text encoding; UTF-8 (with or without BOM) by default.
    max_bytes : larger inputs are refused before they are parsed: the whole input is held in
        memory, several times over while parsed. Files too large for that: :func:`stream_corpus`.
    empty : ``"skip"`` drops empty or whitespace-only texts and reports them; ``"error"`` refuses.
    max_rows, max_text_chars, max_decompressed_bytes : an input over one of these limits is
        refused with :class:`CorpusError` naming the limit, while it is read (Parquet: from its
        metadata, before any column is read), never after it sits in memory whole. ``None``
        lifts a limit. ``max_text_chars`` applies to every value, text or metadata.
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

    limits = _Limits(label, max_rows, max_text_chars, max_decompressed_bytes, len(data))
    try:
        if fmt == "parquet":
            import pyarrow as pa

            with _parquet_rows(pa.BufferReader(data), label, limits) as (columns, rows, _, _):
                return _corpus_of(columns, limits.guard(rows), text_column, label, empty)
        _check_text_head(data, encoding, label)
        # decoded as parsed, never whole: the input is held once, as bytes
        lines = io.TextIOWrapper(io.BytesIO(data), encoding=_codec(encoding), newline="")
        columns, rows = _text_rows(fmt, limits.counting(lines), label)
        return _corpus_of(columns, limits.guard(rows), text_column, label, empty)
    except UnicodeDecodeError:
        raise _decode_error_in(data, encoding, label) from None


def _corpus_of(columns, rows, text_column, label, empty) -> Corpus:
    """The corpus of ``rows`` (an iterator, consumed once): the text column is chosen from the
    first rows, exactly as a stream chooses it."""
    sample = list(islice(rows, _SAMPLE_ROWS))
    if not sample:
        raise CorpusError(f"{label} has a header but no rows; add at least one document.")
    seen = None
    if columns is None:  # JSONL: the columns are the keys the rows have
        columns = _keys(sample)
        if text_column is not None and text_column not in columns:
            seen = dict.fromkeys(columns)  # checked once every row's keys are known
            rows = _noting_keys(rows, seen)
            columns = [*columns, text_column]
    notes: list[str] = []
    col = _choose_text_column(columns, sample, text_column, label, notes)
    picker = _TextPicker(col, label, empty, explicit=text_column is not None)
    texts, metadata = picker.take(chain(sample, rows))
    if seen is not None and col not in seen:
        _choose_text_column(list(seen), [], col, label, [])  # raises
    notes += picker.finish()
    return Corpus(texts, metadata, col, label, picker.skipped_rows, notes)


class _Limits:
    """The limits of one read, checked as rows are parsed; the refusal names the limit, the
    file's value and the keyword (and flag) that raises it."""

    def __init__(self, label, max_rows=None, max_text_chars=None, max_decompressed_bytes=None, size=None):
        for key, v in (
            ("max_rows", max_rows),
            ("max_text_chars", max_text_chars),
            ("max_decompressed_bytes", max_decompressed_bytes),
        ):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ParameterError(f"{key} must be a positive integer or None, got {v!r}.")
        self.label, self.size = label, size
        self.max_rows, self.max_text_chars, self.max_bytes = max_rows, max_text_chars, max_decompressed_bytes
        self.chars = 0  # characters of the values seen so far (a stream's chunks use it)

    def too_many_rows(self, n: int, exact: bool = False) -> CorpusError:
        has = f"has {n:,} rows" if exact else f"has more than {self.max_rows:,} rows"
        return CorpusError(
            f"{self.label} {has}, over the limit of {self.max_rows:,} rows (max_rows=, --max-rows). "
            "Split it, or raise the limit if this machine has the memory."
        )

    def too_long(self, row: int, column, n: int) -> CorpusError:
        return CorpusError(
            f"{self.label}, row {row:,}: the value in column {column!r} has {n:,} characters, over "
            f"the limit of {self.max_text_chars:,} characters per text (max_text_chars=, "
            "--max-text-chars). Shorten or split it, or raise the limit."
        )

    def too_big(self, n: int, exact: bool = False) -> CorpusError:
        disk = ""
        if self.size is not None:
            disk = (
                f" from {self.size / 2**20:,.1f} MiB" if self.size >= 2**20 else f" from {self.size:,} bytes"
            )
        has = f"{n / 2**20:,.0f} MiB" if exact else f"more than {n / 2**20:,.0f} MiB"
        return CorpusError(
            f"{self.label} decompresses to {has} of data{disk}, over the limit of "
            f"{self.max_bytes / 2**20:,.0f} MiB (max_decompressed_bytes=). Split it, or raise the "
            "limit if this machine has the memory."
        )

    def guard(self, rows: Iterable[dict]) -> Iterator[dict]:
        """``rows``, refused at the first row over max_rows or value over max_text_chars."""
        max_rows, max_chars = self.max_rows, self.max_text_chars
        n = 0
        for row in rows:
            n += 1
            if max_rows is not None and n > max_rows:
                raise self.too_many_rows(n)
            chars = 0
            for k, v in row.items():
                if type(v) is str:
                    chars += len(v)
                    if max_chars is not None and len(v) > max_chars:
                        raise self.too_long(n, k, len(v))
            self.chars += chars
            yield row

    def counting(self, lines: Iterable[str]) -> Iterable[str]:
        """``lines``, refused once their characters (the decompressed text) pass max_decompressed_bytes."""
        if self.max_bytes is None:
            return lines

        def counted():
            total, limit = 0, self.max_bytes
            for line in lines:
                total += len(line)
                if total > limit:
                    raise self.too_big(limit)
                yield line

        return counted()

    def check_parquet(self, metadata) -> None:
        """Refuse from the file's metadata alone: rows, and the uncompressed size of its pages."""
        if self.max_rows is not None and metadata.num_rows > self.max_rows:
            raise self.too_many_rows(metadata.num_rows, exact=True)
        if self.max_bytes is not None:
            size = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
            if size > self.max_bytes:
                raise self.too_big(size, exact=True)


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


@contextmanager
def _parquet_rows(source, label: str, limits: _Limits, batch_rows: int = 8192):
    """Open Parquet ``source`` (a path or a pyarrow buffer reader); yield ``(columns, rows,
    rows_read(), num_rows)``; close it. The limits are checked from the metadata before any column is
    read, then (with max_decompressed_bytes) over all batches while still dictionary-encoded,
    before any is decoded, and on each batch before it is decoded: a few KB of repeated
    dictionary entries cannot become GBs of Python strings. A batch is
    decoded a slice of at most ~32 MiB at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def unreadable(exc):
        return CorpusError(f"{label} could not be read as Parquet ({exc}). Is it really a .parquet file?")

    try:
        schema = pq.read_schema(source)
        # string columns are read as dictionaries, so their decoded size is known before decoding
        strings = [
            f.name
            for f in schema
            if pa.types.is_string(f.type)
            or pa.types.is_large_string(f.type)
            or pa.types.is_binary(f.type)
            or pa.types.is_large_binary(f.type)
        ]
        # pre_buffer=False: with it, pyarrow keeps every row group read until closed
        pf = pq.ParquetFile(source, pre_buffer=False, read_dictionary=strings)
    except (pa.ArrowException, OSError) as exc:
        raise unreadable(exc) from None
    limits.check_parquet(pf.metadata)
    if limits.max_bytes is not None:
        # a first pass over the dictionary-encoded batches (indices and dictionaries only, a batch
        # at a time) measures what the file decodes to: a bomb is refused before any is decoded
        total, offset = 0, 0
        try:
            for batch in pf.iter_batches(batch_size=batch_rows):
                total += int(_checked_batch(batch, limits, offset).sum())
                offset += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(exc) from None
        if total > limits.max_bytes:
            raise limits.too_big(total, exact=True)
    done = [0]

    def rows():
        total = 0
        try:
            for batch in pf.iter_batches(batch_size=batch_rows):
                sizes = _checked_batch(batch, limits, done[0])
                total += int(sizes.sum())
                if limits.max_bytes is not None and total > limits.max_bytes:
                    raise limits.too_big(limits.max_bytes)
                start, ends = 0, _slice_ends(sizes)
                for end in ends:
                    yield from _decoded(batch.slice(start, end - start)).to_pylist()
                    start = end
                done[0] += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise unreadable(exc) from None

    try:
        yield schema.names, rows(), lambda: done[0], pf.metadata.num_rows
    finally:
        pf.close()


def _checked_batch(batch, limits: _Limits, offset: int) -> np.ndarray:
    """The decoded bytes of each row of ``batch`` (rows ``offset + 1`` on), refusing a value over
    max_text_chars, both computed on the dictionaries, not on decoded values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sizes = np.zeros(batch.num_rows, dtype=np.int64)
    for name, col in zip(batch.schema.names, batch.columns):
        if pa.types.is_dictionary(col.type) and (
            pa.types.is_string(col.type.value_type) or pa.types.is_large_string(col.type.value_type)
        ):
            lengths = pc.binary_length(col.dictionary).take(col.indices).fill_null(0).to_numpy()
            sizes += lengths + 8
            if limits.max_text_chars is not None and len(lengths) and lengths.max() > limits.max_text_chars:
                chars = pc.utf8_length(col.dictionary).take(col.indices).fill_null(0).to_numpy()
                over = np.flatnonzero(chars > limits.max_text_chars)
                if over.size:
                    i = int(over[0])
                    raise limits.too_long(offset + i + 1, name, int(chars[i]))
        elif pa.types.is_dictionary(col.type):
            sizes += pc.binary_length(col.dictionary).take(col.indices).fill_null(0).to_numpy() + 8
        elif batch.num_rows:
            sizes += -(-col.nbytes // batch.num_rows)
    return sizes


def _slice_ends(sizes: np.ndarray) -> list[int]:
    """Where to cut a batch whose rows decode to ``sizes`` bytes so each slice holds ~_CHUNK_CHARS."""
    if not len(sizes):
        return []
    cum = np.cumsum(sizes)
    ends = np.searchsorted(cum, np.arange(_CHUNK_CHARS, int(cum[-1]), _CHUNK_CHARS), side="right")
    return sorted({max(int(e), 1) for e in ends} | {len(sizes)})


def _decoded(batch):
    """``batch`` with its dictionary columns decoded back to their value type."""
    import pyarrow as pa

    if not any(pa.types.is_dictionary(f.type) for f in batch.schema):
        return batch
    cols = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)


def _decode_error_in(data: bytes, encoding: str, label: str) -> CorpusError:
    """Where the first undecodable byte of ``data`` is (only on this error path)."""
    try:
        data.decode(_codec(encoding))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return _undecodable(label, encoding, data[exc.start], line)
    return CorpusError(f"{label} is not valid {encoding}. Re-save the file as UTF-8, or pass its encoding.")


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
    if not columns:
        raise CorpusError(
            f"{label} has no columns (its records hold no fields); give each record a text field, "
            'e.g. {"text": "..."}.'
        )
    if len(columns) == 1:
        return columns[0]
    lower = {str(c).lower(): c for c in columns}
    for candidate in _TEXT_NAMES:
        if candidate in lower:
            notes.append(f"Using column {lower[candidate]!r} as the text.")
            return lower[candidate]
    sample = rows[:_SAMPLE_ROWS]
    lengths = {c: np.mean([len(r[c]) if isinstance(r.get(c), str) else 0 for r in sample]) for c in columns}
    best = max(lengths, key=lengths.get)
    if lengths[best] == 0:
        raise CorpusError(f"{label} has no column of text; name one with text_column=.")
    notes.append(f"Using column {best!r}, the one with the longest strings, as the text.")
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
        max_rows: int | None = None,
        max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS,
        max_decompressed_bytes: int | None = None,
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
        self._limits = (max_rows, max_text_chars, max_decompressed_bytes)
        _Limits(self.source, *self._limits)  # checks the values
        self.total_rows: int | None = None  # known up front for Parquet only
        self._check_content()
        if self.format != "parquet":
            _codec(encoding)

        with self._reading() as (columns, rows, _, _):
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
        """Open the file; yield ``(columns or None, rows, bytes_read(), limits)``; close it. Decode
        and Parquet errors become :class:`CorpusError`; the limits are checked as rows are read."""
        limits = _Limits(self.source, *self._limits, size=self.total_bytes)
        if self.format == "parquet":
            with _parquet_rows(self.path, self.source, limits, min(self.chunk_rows, 8192)) as (
                columns,
                rows,
                rows_read,
                total,
            ):
                self.total_rows = total

                def bytes_read():
                    return round(self.total_bytes * rows_read() / total) if total else self.total_bytes

                yield columns, limits.guard(rows), bytes_read, limits
            return
        try:
            with open(self.path, encoding=_codec(self.encoding), newline="") as f:
                columns, rows = _text_rows(self.format, limits.counting(f), self.source)
                yield columns, limits.guard(rows), f.buffer.tell, limits
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
        with self._reading() as (_, rows, bytes_read, limits):
            if self._columns_at_end:
                rows = _noting_keys(rows, seen)
            while True:
                before = picker.n_rows
                texts, metadata = picker.take(_chunk(rows, self.chunk_rows, limits))
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


def _chunk(rows: Iterator[dict], n: int, limits: _Limits) -> Iterator[dict]:
    """The next ``n`` rows, or fewer once their values hold _CHUNK_CHARS characters (checked
    before a row is pulled, so none is lost)."""
    start = limits.chars
    for _ in range(n):
        if limits.chars - start >= _CHUNK_CHARS:
            return
        row = next(rows, None)
        if row is None:
            return
        yield row


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
    max_rows: int | None = None,
    max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS,
    max_decompressed_bytes: int | None = None,
) -> CorpusStream:
    """A corpus file on disk, read in chunks of ``chunk_rows`` rows: CSV and TSV (quoted fields
    may span lines), JSONL and .txt line by line, Parquet batch by batch. Memory holds one chunk
    at a time, so no size limit is needed (``max_bytes`` sets one if a caller wants a guard), and
    no row or decompressed-size limit unless given (``max_rows``, ``max_decompressed_bytes``);
    ``max_text_chars`` (1,000,000 by default) refuses an overlong value with its row number, as
    :func:`load_corpus` does. A chunk also ends once its values hold ~32M characters.
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
        max_rows=max_rows,
        max_text_chars=max_text_chars,
        max_decompressed_bytes=max_decompressed_bytes,
    )


# --- columnar: a file read once, kept on disk as Arrow -----------------------------------------

#: the rows of a columnar corpus kept in memory for a preview
_HEAD_ROWS = 50


@dataclass(frozen=True)
class ColumnarCorpus:
    """A corpus file read once into an Arrow IPC file on disk (``path``): a ``text`` column and a
    ``metadata`` column holding each row's metadata as the JSON the store keeps, one record batch
    per chunk read. Only this description and the first rows stay in memory, so a large upload
    costs its text once, on disk, not as Python strings and dicts; the batches are read back one
    at a time (iterate it, or pass it to ``Store.add_corpus_stream``).

    Metadata is one JSON column, not one Arrow column per key: the store keeps a row's metadata
    as JSON, and JSONL rows may lack keys or hold lists and objects, which typed columns would
    change."""

    path: Path
    source: str
    text_column: str
    columns: list[str]
    """Metadata columns: the keys of the first 1,000 metadata rows, as ``Corpus.columns``."""
    n_docs: int
    n_rows: int
    """Rows read, empty ones included."""
    n_skipped: int
    skipped_rows: list[int] = field(repr=False)
    """The first 1,000 row numbers skipped for an empty text."""
    notes: list[str]
    chars: int
    """Characters of the texts and of the metadata values that are strings (the data kept)."""
    head: list[tuple[str, dict]] = field(repr=False)
    """The first rows, ``(text, metadata)``, the metadata as stored (JSON types)."""
    column_summaries: dict[str, ColumnSummary] = field(default_factory=dict, repr=False)
    """Per metadata column, its filled rows and distinct values over every row read (for
    :func:`label_columns`)."""

    def __len__(self) -> int:
        return self.n_docs

    def __iter__(self) -> Iterator:
        """The record batches, read from disk one at a time (not memory-mapped: a batch's memory
        is freed once the next is read)."""
        import pyarrow as pa

        with pa.OSFile(str(self.path), "rb") as f:
            reader = pa.ipc.open_file(f)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)

    def to_corpus(self) -> Corpus:
        """The whole corpus in memory as a :class:`Corpus` (small corpora and tests)."""
        texts: list[str] = []
        metadata: list[dict] = []
        for batch in self:
            texts += batch.column("text").to_pylist()
            metadata += [json.loads(m) for m in batch.column("metadata").to_pylist()]
        return Corpus(
            texts, metadata, self.text_column, self.source, list(self.skipped_rows), list(self.notes)
        )


def read_columnar(
    path,
    out,
    text_column: str | None = None,
    *,
    format: str | None = None,
    name: str | None = None,
    encoding: str = "utf-8",
    empty: str = "skip",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    max_rows: int | None = DEFAULT_MAX_ROWS,
    max_text_chars: int | None = DEFAULT_MAX_TEXT_CHARS,
    max_decompressed_bytes: int | None = DEFAULT_MAX_DECOMPRESSED_BYTES,
    progress=None,
) -> ColumnarCorpus:
    """Read the corpus file ``path`` once, as :func:`stream_corpus` does (same parsers, inference,
    checks and messages, a chunk of rows in memory at a time), into an Arrow IPC file at ``out``;
    return its :class:`ColumnarCorpus`. The limits default to :func:`load_corpus`'s (an upload's)
    and are checked while reading. ``out`` appears only once the whole file was read: a
    refused file (:class:`CorpusError`) leaves nothing behind. ``progress(bytes_read, total_bytes)``
    is called after each chunk.

    The stored corpus is the one :func:`load_corpus` or ``embex ingest`` gives for the same file:
    the same texts, metadata (the JSON ``Store.add_corpus`` writes), order, skips and notes.
    """
    import pyarrow as pa

    stream = stream_corpus(
        path,
        text_column,
        format=format,
        name=name,
        encoding=encoding,
        chunk_rows=chunk_rows,
        empty=empty,
        max_bytes=max_bytes,
        max_rows=max_rows,
        max_text_chars=max_text_chars,
        max_decompressed_bytes=max_decompressed_bytes,
    )
    out = Path(out)
    part = out.with_name(out.name + ".part")
    schema = pa.schema([("text", pa.large_string()), ("metadata", pa.large_string())])
    head: list[tuple[str, dict]] = []
    keys: dict[str, None] = {}
    n_meta = chars = 0
    values = _ColumnCounter()
    try:
        with pa.OSFile(str(part), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for chunk in stream:
                texts, metadata = chunk.texts, chunk.metadata
                bytes_read = chunk.bytes_read
                del chunk  # else it keeps this chunk alive while the stream reads the next
                for m in metadata[: 1000 - n_meta]:
                    keys.update(dict.fromkeys(m))
                n_meta = min(1000, n_meta + len(metadata))
                values.update(metadata)
                chars += sum(map(len, texts)) + sum(
                    len(v) for m in metadata for v in m.values() if type(v) is str
                )
                encoded = [json.dumps(m, ensure_ascii=False, default=str) for m in metadata]
                del metadata
                head += [(t, json.loads(m)) for t, m in zip(texts[: _HEAD_ROWS - len(head)], encoded)]
                batch = pa.record_batch(
                    [pa.array(texts, pa.large_string()), pa.array(encoded, pa.large_string())], schema=schema
                )
                del texts, encoded  # one chunk of Python objects at a time
                writer.write_batch(batch)
                del batch
                if progress is not None:
                    progress(bytes_read, stream.total_bytes)
        part.replace(out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return ColumnarCorpus(
        path=out,
        source=stream.source,
        text_column=stream.text_column,
        columns=list(keys),
        n_docs=stream.n_docs,
        n_rows=stream.n_rows,
        n_skipped=stream.n_skipped,
        skipped_rows=list(stream.skipped_rows),
        notes=list(stream.notes),
        chars=chars,
        head=head,
        column_summaries=values.summaries(),
    )


# --- label columns: guessed by how many distinct values a column holds -------------------------

#: distinct values counted per column, at most: a column with more is no label (no map can show
#: that many colours, no test compares that many groups)
LABEL_MAX_VALUES = 1000
#: names tried first, in this order, among the columns that pass the cardinality test
_LABEL_NAMES = (
    "label",
    "labels",
    "category",
    "class",
    "topic",
    "intent",
    "sentiment",
    "genre",
    "tag",
    "type",
)
#: id-like names (``id``, ``doc_id``, ``index``, ``uuid``, ``docId``...): never labels
_ID_NAME = re.compile(r"(?:^|[\W_])(?:id|ids|idx|index|uuid|guid|key|hash|row|line|position)$", re.IGNORECASE)
_CAMEL_ID = re.compile(r"[a-z0-9]Id$")


@dataclass(frozen=True)
class ColumnSummary:
    """One metadata column over a corpus: how many rows hold a value (not missing, not the empty
    string), how many distinct values there are (counted up to :data:`LABEL_MAX_VALUES` + 1),
    and whether every value was a string or a boolean."""

    n_filled: int
    """Rows with a value (counted until the column had more than LABEL_MAX_VALUES distinct)."""
    n_distinct: int
    categorical: bool
    """True when no value was a number, list or object (strings and booleans only)."""


class _ColumnCounter:
    """Distinct values per metadata column, a chunk of rows at a time (a column's values gathered
    into one list, then counted by C-level set and list operations: no per-cell Python branch).
    A column with more than LABEL_MAX_VALUES distinct values is no label: it is dropped from
    the count once it has that many, so it costs a bounded set however many rows go by."""

    def __init__(self):
        self.filled: dict[str, int] = {}
        self.seen: dict[str, set] = {}
        self.other: set[str] = set()
        self.full: set[str] = set()

    def update(self, metadata: list[dict]) -> None:
        cap = LABEL_MAX_VALUES + 1
        for key in dict.fromkeys(chain.from_iterable(metadata)):
            if key in self.full:
                continue
            values = [m.get(key) for m in metadata]
            try:
                distinct = set(values)
            except TypeError:  # lists or objects: never a label
                self.other.add(key)
                self.full.add(key)
                self.seen.setdefault(key, set())
                continue
            distinct.discard(None)
            distinct.discard("")
            self.filled[key] = self.filled.get(key, 0) + len(values) - values.count(None) - values.count("")
            if any(type(v) is not str and type(v) is not bool for v in distinct):
                self.other.add(key)
            seen = self.seen.setdefault(key, set())
            seen |= distinct
            if len(seen) >= cap:
                self.seen[key] = set(islice(seen, cap))
                self.full.add(key)

    def summaries(self) -> dict[str, ColumnSummary]:
        return {
            k: ColumnSummary(self.filled.get(k, 0), len(seen), k not in self.other)
            for k, seen in self.seen.items()
        }


def summarize_columns(metadata: Iterable[dict]) -> dict[str, ColumnSummary]:
    """The :class:`ColumnSummary` of every metadata column of these rows."""
    counter = _ColumnCounter()
    counter.update(metadata)
    return counter.summaries()


def label_limit(n_rows: int) -> int:
    """The most distinct values a label column of a corpus of ``n_rows`` texts may have:
    max(200, 1% of the rows), and never more than :data:`LABEL_MAX_VALUES` (CLINC150's 151
    intents are a label in a slice of 3,300 queries as in all 23,700)."""
    return min(max(200, n_rows // 100), LABEL_MAX_VALUES)


def is_id_name(column: str) -> bool:
    """Whether a column's name says it identifies rows (``id``, ``doc_id``, ``index``, ``docId``...)."""
    return bool(_ID_NAME.search(column) or _CAMEL_ID.search(column))


def label_columns(
    summaries: dict[str, ColumnSummary], n_rows: int, *, text_column: str | None = None
) -> list[str]:
    """The metadata columns that look like labels, best guess first.

    A label column holds few distinct values relative to the rows: 2 to :func:`label_limit`
    (max(200, 1% of rows)), each value on about two rows or more (distinct at most half the
    filled rows), filled in at least half the rows; its values are strings or booleans (numbers
    too when the column has a usual label name, such as AG News's 1..4 ``label``). The text
    column and id-like names never qualify. Order: usual label names first (label, category,
    class, topic, intent, ...: CLINC150's ``intent`` before its ``domain``), then the others by
    their number of distinct values, most first (a finer grouping), ties in column order.
    """
    limit = label_limit(n_rows)
    named = {name: i for i, name in enumerate(_LABEL_NAMES)}
    found = []
    for order, (column, summary) in enumerate(summaries.items()):
        rank = named.get(str(column).lower())
        if column == text_column or is_id_name(str(column)):
            continue
        if not summary.categorical and rank is None:
            continue
        k = summary.n_distinct
        if not (2 <= k <= limit and 2 * k <= summary.n_filled and 2 * summary.n_filled >= n_rows):
            continue
        found.append(((0, rank, 0, order) if rank is not None else (1, 0, -k, order), column))
    return [column for _, column in sorted(found)]


def label_candidates(corpus) -> list[str]:
    """:func:`label_columns` of a :class:`Corpus` (its metadata counted now) or a
    :class:`ColumnarCorpus` (counted while it was read)."""
    if isinstance(corpus, ColumnarCorpus):
        summaries = corpus.column_summaries
    else:
        summaries = summarize_columns(corpus.metadata)
    return label_columns(summaries, len(corpus), text_column=corpus.text_column)


# --- precomputed vectors -----------------------------------------------------------------------

#: rows of vectors read, checked and written at a time (65,536 x 384 float32 is 96 MiB), fewer
#: for longer vectors: a chunk holds at most DEFAULT_VECTOR_CHUNK_BYTES of float32
DEFAULT_VECTOR_CHUNK_ROWS = 65_536
DEFAULT_VECTOR_CHUNK_BYTES = 96 * 2**20
#: the largest vector dimension the store takes (the store's ``_MAX_DIM``; a test keeps them equal)
MAX_VECTOR_DIM = 65_536
#: Parquet vectors are decoded this many rows at a time whatever the chunk size: Arrow's allocator
#: keeps what a batch used, so small batches keep the reader small (measured at 1M x 384: peak
#: RSS 0.21 GB with 8,192-row batches, 0.78 GB with 65,536)
_PARQUET_BATCH_ROWS = 8_192
#: how many bad row numbers an error lists
_LISTED_ROWS = 5
_VECTOR_FORMATS = {"npy": "npy", "npz": "npz", "parquet": "parquet", "pq": "parquet"}


@dataclass(frozen=True)
class VectorFile:
    """Precomputed vectors whose shape (and ids) are known and checked, and whose values are read
    a chunk of rows at a time, so a file of any size is imported in bounded memory.

    :func:`open_vectors` makes one from a file: a ``.npy`` is memory-mapped (never read whole,
    never unpickled), Parquet is decoded a few thousand rows at a time, and ``.npz`` arrays are
    loaded (NumPy cannot map the members of a zip). :meth:`from_array` wraps an array in memory.
    The values are checked by :meth:`chunks` as it reads them.
    """

    source: str
    n: int
    dim: int
    #: per row, the document position it belongs to (as the file gave them), or None
    ids: list | None = field(default=None, repr=False)
    #: ``batches(rows)``: the raw rows (any real dtype) in order, about ``rows`` at a time
    batches: Callable[[int], Iterator[np.ndarray]] = field(default=None, repr=False, compare=False)
    #: ``mapped()``: the whole file as a read-only float32 array without a copy, where it is one
    mapped: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_array(cls, vectors, source: str = "vectors", ids=None) -> VectorFile:
        """An (n, d) array (or nested lists) of real numbers, read in chunks (no copy here)."""
        try:
            arr = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
        except (TypeError, ValueError):  # ragged nested lists
            arr = np.empty(0, dtype=object)
        if arr.dtype.kind == "O":
            raise CorpusError(
                f"{source}: rows have different lengths or are not numbers; "
                "every vector must have the same dimension."
            )
        _check_dtype(arr.dtype, source)
        n, dim = _check_shape(arr.shape, source)

        def batches(rows: int) -> Iterator[np.ndarray]:
            for start in range(0, n, rows):
                yield arr[start : start + rows]

        return cls(source, n, dim, ids, batches)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.dim)

    def __len__(self) -> int:
        return self.n

    def chunks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """The vectors in order as float32 ``(m, dim)`` arrays of about ``rows`` rows (default:
        :data:`DEFAULT_VECTOR_CHUNK_ROWS`, fewer for vectors longer than 384), each
        checked before it is given: NaN or inf, values beyond float32's range and all-zero rows
        raise :class:`CorpusError` naming the rows (the rest of the file is read to count them
        all). An array may be a read-only view of the file, or a buffer that the next chunk
        reuses: copy one to change or keep it."""
        if rows is None:
            rows = max(1, min(DEFAULT_VECTOR_CHUNK_ROWS, DEFAULT_VECTOR_CHUNK_BYTES // (4 * self.dim)))
        if not isinstance(rows, (int, np.integer)) or isinstance(rows, bool) or rows < 1:
            raise ParameterError(f"rows must be a positive integer, not {rows!r}.")
        batches = self.batches(int(rows))
        start = 0
        for raw in batches:
            chunk, problem = _float32_rows(raw)
            if problem is not None:
                raise _bad_rows_error(self.source, problem, start, len(raw), batches)
            yield chunk
            start += len(chunk)
        if start != self.n:
            raise CorpusError(
                f"{self.source}: expected {self.n:,} vectors but read {start:,}; the file changed "
                "while it was read, or is damaged."
            )

    def read(self) -> np.ndarray:
        """Every vector as one float32 ``(n, dim)`` array, checked. A float32 ``.npy`` comes back
        memory-mapped, read-only (as ``np.load(mmap_mode="r")``: no copy in memory; copy it before
        overwriting the file); anything else is converted a chunk at a time into one array."""
        whole = self.mapped() if self.mapped is not None else None
        if whole is not None:
            for _ in self.chunks():  # every row checked; the mapping keeps no page resident
                pass
            return whole
        out = np.empty((self.n, self.dim), dtype=np.float32)
        at = 0
        for chunk in self.chunks():
            out[at : at + len(chunk)] = chunk
            at += len(chunk)
        return out


def open_vectors(
    source,
    *,
    format: str | None = None,
    vector_column: str | None = None,
    id_column: str | None = None,
    max_bytes: int | None = None,
) -> VectorFile:
    """Open a file of precomputed vectors without reading its values: ``.npy`` (an (n, d) array
    of real numbers, in document order; memory-mapped), ``.npz`` (arrays ``vectors`` (or
    ``embeddings``) and optionally ``ids``) or Parquet (a list column of numbers, one vector a
    row, and optionally an id column, ``id`` unless ``id_column`` names another).

    The shape, dtype and ids are checked here; the values as the returned :class:`VectorFile`
    is read. There is no size limit unless ``max_bytes`` sets one: the file is read a chunk at a
    time. Pickled (object) arrays are refused, never loaded.
    """
    path = Path(source)
    if not path.is_file():
        raise CorpusError(f"No such file: {path}.")
    label = path.name
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise CorpusError(
            f"{label} is {size / 2**20:,.1f} MiB, over the {max_bytes / 2**20:,.1f} MiB limit "
            "(max_bytes=). Vector files are read a chunk at a time, so no limit is needed for memory."
        )
    fmt = _VECTOR_FORMATS.get((format or path.suffix.lstrip(".")).lower())
    if fmt is None:
        raise CorpusError(f"Vectors must be .npy, .npz or .parquet, not {path.suffix or 'no extension'}.")
    try:
        if fmt == "npy":
            return _npy_vectors(path, label)
        if fmt == "npz":
            with np.load(path, allow_pickle=False) as z:
                key = "vectors" if "vectors" in z else ("embeddings" if "embeddings" in z else None)
                if key is None:
                    raise CorpusError(f"{label} has arrays {list(z)}; name the vectors 'vectors'.")
                ids = z["ids"].tolist() if "ids" in z else None
                return VectorFile.from_array(z[key], label, ids)
        return _parquet_vectors(path, label, vector_column, id_column)
    except CorpusError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CorpusError(f"{label} could not be read as vectors ({exc}).") from None


def load_vectors(
    source,
    *,
    format: str | None = None,
    vector_column: str | None = None,
    id_column: str | None = None,
    max_bytes: int | None = None,
):
    """Read precomputed vectors (the formats of :func:`open_vectors`): ``(vectors float32 (n, d),
    ids or None)``, shape and every value checked. A float32 ``.npy`` is returned memory-mapped
    and read-only (no copy; see :meth:`VectorFile.read`). To import a big file, pass
    ``open_vectors(path)`` to :func:`~analytics.embedding.import_vectors` instead: it is read
    one chunk at a time.
    """
    vf = open_vectors(
        source, format=format, vector_column=vector_column, id_column=id_column, max_bytes=max_bytes
    )
    return vf.read(), vf.ids


def check_vectors(vectors, label: str = "vectors", *, dim: int | None = None) -> np.ndarray:
    """Vectors as a new float32 (n, d) array, or :class:`CorpusError` saying what is wrong with
    them (and ``dim``: that they do not have this dimension)."""
    vf = VectorFile.from_array(vectors, label)
    check_dimension(vf, dim)
    return vf.read()


def check_dimension(vectors: VectorFile, dim: int | None) -> None:
    """:class:`CorpusError` unless the vectors have dimension ``dim`` (None: any)."""
    if dim is not None and vectors.dim != dim:
        raise CorpusError(
            f"{vectors.source}: vectors have dimension {vectors.dim}, but this model's are {dim}."
        )


def _complex_error(label: str) -> CorpusError:
    return CorpusError(
        f"{label}: the vectors are complex numbers; embeddings are real. Convert them "
        "(e.g. take the real part, or stack real and imaginary parts) before importing."
    )


def _check_dtype(dtype: np.dtype, label: str) -> None:
    """Real numbers (floats, ints) pass; anything else is refused by what it is."""
    kind = dtype.kind
    if kind == "c":
        raise _complex_error(label)
    if kind == "O":
        raise CorpusError(
            f"{label} could not be read as vectors: it holds Python objects (a pickled array), "
            "which are never loaded. Save a numeric array: np.save(path, np.asarray(X, dtype=np.float32))."
        )
    if kind in "US":
        raise CorpusError(f"{label}: the vectors are text ({dtype}), not numbers; save them as floats.")
    if dtype.names is not None:
        raise CorpusError(
            f"{label}: a structured array (fields {list(dtype.names)[:5]}) is not an (n_texts, dim) array "
            "of numbers; save the vectors alone."
        )
    if kind not in "fiu":
        raise CorpusError(f"{label}: the vectors are {dtype} values, not numbers (floats or integers).")


def _check_shape(shape: tuple, label: str) -> tuple[int, int]:
    if len(shape) != 2:
        raise CorpusError(f"{label}: expected a 2-D array (n_texts, dim), got shape {tuple(shape)}.")
    n, dim = int(shape[0]), int(shape[1])
    if n == 0:
        raise CorpusError(f"{label}: holds no vectors (shape {tuple(shape)}); give one row per text.")
    if dim == 0:
        raise CorpusError(f"{label}: the vectors are empty (shape {tuple(shape)}); each needs its numbers.")
    if dim > MAX_VECTOR_DIM:
        raise CorpusError(
            f"{label}: vectors of dimension {dim:,} are longer than the store takes "
            f"({MAX_VECTOR_DIM:,}); is the array transposed? It should be (n_texts, dim)."
        )
    return n, dim


def _float32_rows(raw: np.ndarray) -> tuple[np.ndarray, tuple[str, np.ndarray] | None]:
    """``(rows as float32, None)``, or ``(_, (problem, bad row indices))`` for the first kind of
    bad row found: "nonfinite", "overflow" (finite, but not as float32) or "zero"."""
    if raw.dtype.kind == "f":
        # a row holding NaN or inf has a sum that is not finite (so does a row of huge finite
        # values, whose elements are then looked at): one pass, no (m, dim) temporary
        with np.errstate(over="ignore", invalid="ignore"):
            suspect = np.flatnonzero(~np.isfinite(np.add.reduce(raw, axis=1)))
        if suspect.size:
            bad = suspect[~np.isfinite(raw[suspect]).all(axis=1)]
            if bad.size:
                return raw, ("nonfinite", bad)
    if raw.dtype == np.float32:
        rows = np.ascontiguousarray(raw)
    elif raw.dtype.kind in "iu":  # through float64, as earlier versions did: the same float32s
        rows = np.ascontiguousarray(raw, dtype=np.float64).astype(np.float32)
    else:
        with np.errstate(over="ignore"):
            rows = np.ascontiguousarray(raw, dtype=np.float32)
        if raw.dtype.itemsize > 4:
            bad = ~np.isfinite(rows).all(axis=1)
            if bad.any():
                return rows, ("overflow", np.flatnonzero(bad))
    zero = ~rows.any(axis=1)
    if zero.any():
        return rows, ("zero", np.flatnonzero(zero))
    return rows, None


def _bad_rows_error(label: str, problem: tuple[str, np.ndarray], start: int, size: int, rest) -> CorpusError:
    """The error for the bad rows of the ``size`` rows from row ``start``, counting the same
    problem in the batches still to come (so the message gives their number over the file)."""
    kind, rows = problem
    listed = (rows[:_LISTED_ROWS] + start).tolist()
    count, at = len(rows), start + size
    for raw in rest:
        _, found = _float32_rows(raw)
        if found is not None and found[0] == kind:
            count += len(found[1])
            listed += (found[1][: _LISTED_ROWS - len(listed)] + at).tolist()
        at += len(raw)
    if kind == "nonfinite":
        return CorpusError(
            f"{label}: {count:,} vector(s) contain NaN or inf (rows {listed}); fix or drop them before importing."
        )
    if kind == "overflow":
        return CorpusError(
            f"{label}: {count:,} vector(s) hold values too large for float32, which the store keeps "
            f"(rows {listed}); scale them down (vectors are normalised to unit length anyway)."
        )
    return CorpusError(
        f"{label}: {count:,} vector(s) are all zeros (rows {listed}); a zero vector has no direction "
        "to compare. Drop those rows, or embed their texts."
    )


def _npy_vectors(path: Path, label: str) -> VectorFile:
    """A ``.npy`` file: its header read and checked, its data memory-mapped when read."""
    import mmap

    fmt = np.lib.format
    with open(path, "rb") as f:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
        else:  # 3.0 is written only for structured arrays with non-latin-1 field names
            raise CorpusError(
                f"{label} is a .npy of format version {version[0]}.{version[1]} (arrays with named "
                "fields); save the vectors as a plain (n_texts, dim) array of numbers."
            )
        offset = f.tell()
    _check_dtype(dtype, label)
    n, dim = _check_shape(shape, label)
    need = n * dim * dtype.itemsize
    have = path.stat().st_size - offset
    if have < need:
        raise CorpusError(
            f"{label} is cut short: its header promises {n:,} x {dim:,} {dtype} values "
            f"({need:,} bytes) but it holds {have:,}. Copy or save the file again."
        )
    order = "F" if fortran else "C"

    def mapped_array() -> np.ndarray:
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        # the array keeps the mapping alive, and the mapping is closed when the last view goes
        return mm, np.ndarray((n, dim), dtype=dtype, buffer=mm, offset=offset, order=order)

    def batches(rows: int) -> Iterator[np.ndarray]:
        mm, arr = mapped_array()
        release = getattr(mmap, "MADV_DONTNEED", None)
        for start in range(0, n, rows):
            yield arr[start : start + rows]
            if release is not None:
                # drop the pages read so far from this process (the OS keeps them cached):
                # else the whole file would count in its resident memory once read
                mm.madvise(release)

    def mapped() -> np.ndarray | None:
        if dtype != np.float32 or fortran:
            return None
        return mapped_array()[1]

    return VectorFile(label, n, dim, None, batches, mapped)


def _is_list(typ) -> bool:
    import pyarrow as pa

    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def _parquet_vectors(path: Path, label: str, vector_column: str | None, id_column: str | None) -> VectorFile:
    """A Parquet file: the vector column found and its type checked from the schema, the
    dimension from the first row, the ids read whole; the vectors decoded when read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def open_file():
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 23)

    try:
        with open_file() as pf:
            schema, n = pf.schema_arrow, pf.metadata.num_rows
            lists = [f.name for f in schema if _is_list(f.type)]
            col = vector_column or (lists[0] if len(lists) == 1 else None)
            if col is None or col not in schema.names:
                raise CorpusError(f"{label}: name the vector column (list columns found: {lists or 'none'}).")
            typ = schema.field(col).type
            if not _is_list(typ):
                raise CorpusError(
                    f"{label}: column {col!r} holds {typ} values, not a list of numbers per row."
                )
            value = typ.value_type
            if not (pa.types.is_floating(value) or pa.types.is_integer(value)):
                what = "text" if pa.types.is_string(value) or pa.types.is_large_string(value) else str(value)
                raise CorpusError(f"{label}: the vectors in {col!r} are lists of {what}, not numbers.")
            if n == 0:
                raise CorpusError(f"{label}: holds no vectors (0 rows); give one row per text.")
            if pa.types.is_fixed_size_list(typ):
                dim = typ.list_size
            else:
                first = next(pf.iter_batches(batch_size=1, columns=[col])).column(0)
                if first.null_count:
                    raise CorpusError(f"{label}: row 0 has no vector in {col!r}; every row needs one.")
                dim = len(first[0])
            _check_shape((n, dim), label)
            ids = None
            id_name = id_column or ("id" if "id" in schema.names else None)
            if id_name is not None:
                if id_name not in schema.names:
                    raise CorpusError(f"{label} has no column {id_name!r} (columns: {schema.names}).")
                column = pf.read(columns=[id_name]).column(0)
                if column.null_count:
                    raise CorpusError(f"{label}: {column.null_count:,} row(s) have no {id_name!r}.")
                ids = column.to_pylist()
    except CorpusError:
        raise
    except (pa.ArrowException, OSError, StopIteration) as exc:
        raise CorpusError(f"{label} could not be read as Parquet ({exc}).") from None

    def batches(rows: int) -> Iterator[np.ndarray]:
        # the decoded rows are copied into one buffer, reused for every chunk: fresh memory for
        # each would cost page faults, and Arrow's allocator keeps what a batch used
        buffer, held, start = None, 0, 0
        try:
            with open_file() as pf:
                for batch in pf.iter_batches(
                    batch_size=min(rows, _PARQUET_BATCH_ROWS), columns=[col], use_threads=False
                ):
                    block = _parquet_block(batch.column(0), dim, col, label, start)
                    start += len(block)
                    if buffer is None:
                        buffer = np.empty((min(rows, n), dim), dtype=block.dtype)
                    while len(block):
                        take = min(len(buffer) - held, len(block))
                        buffer[held : held + take] = block[:take]
                        held, block = held + take, block[take:]
                        if held == len(buffer):
                            yield buffer
                            held = 0
        except (pa.ArrowException, OSError) as exc:
            raise CorpusError(f"{label} could not be read as Parquet near row {start:,} ({exc}).") from None
        if held:
            yield buffer[:held]

    return VectorFile(label, n, dim, ids, batches)


def _parquet_block(arr, dim: int, col: str, label: str, start: int) -> np.ndarray:
    """One decoded batch of a list column as an (m, dim) array, or the error for its first
    missing or ragged row (rows numbered from 0 over the file)."""
    import pyarrow.compute as pc

    if arr.null_count:
        rows = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False)) + start
        raise CorpusError(
            f"{label}: row(s) {rows[:_LISTED_ROWS].tolist()} have no vector in {col!r}; every row needs one."
        )
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    ragged = np.flatnonzero(lengths != dim)
    if ragged.size:
        row = int(ragged[0])
        raise CorpusError(
            f"{label}: the vectors in {col!r} have different lengths (row {start + row:,} has "
            f"{int(lengths[row]):,} numbers, row 0 has {dim:,}); every row needs a vector of the "
            "same dimension."
        )
    values = arr.flatten()
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // dim
        raise CorpusError(f"{label}: the vector in row {start + row:,} has a missing number (null).")
    return values.to_numpy(zero_copy_only=False).reshape(len(arr), dim)
