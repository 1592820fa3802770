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
