"""Reading corpora from files: CSV, TSV, JSONL, Parquet and plain text (one document a line),
and precomputed vectors for users who embed elsewhere.

Everything here reads and checks; nothing writes. A file that cannot be used raises
:class:`CorpusError` with what was wrong and what to do, before anything reaches the store.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: refuse files over this size unless the caller raises the limit (matches the upload limit)
DEFAULT_MAX_BYTES = 200 * 2**20
FORMATS = ("csv", "tsv", "jsonl", "parquet", "txt")
_EXTENSIONS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet", ".txt": "txt", ".text": "txt",
}
#: column names tried in order when the caller does not name the text column
_TEXT_NAMES = ("text", "texts", "document", "content", "body", "sentence", "abstract",
               "description", "review", "message", "query", "question", "title")


class CorpusError(ValueError):
    """A corpus or vector file that cannot be used as given; the message says what to do."""


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
    max_bytes : larger inputs are refused before they are parsed.
    empty : ``"skip"`` drops empty or whitespace-only texts and reports them; ``"error"`` refuses.
    """
    if empty not in ("skip", "error"):
        raise ValueError(f"empty must be 'skip' or 'error', got {empty!r}.")
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
        if fmt == "txt":
            columns, rows = ["text"], [{"text": line} for line in text.splitlines()]
        elif fmt == "jsonl":
            columns, rows = _read_jsonl(text, label)
        else:
            columns, rows = _read_delimited(text, "\t" if fmt == "tsv" else ",", label)
    if not rows:
        raise CorpusError(f"{label} has a header but no rows; add at least one document.")

    notes: list[str] = []
    col = _choose_text_column(columns, rows, text_column, label, notes)
    texts, metadata, skipped = [], [], []
    for i, row in enumerate(rows, start=1):
        value = row.get(col)
        t = "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
        if not t.strip():
            skipped.append(i)
            continue
        texts.append(t)
        metadata.append({k: v for k, v in row.items() if k != col})
    if skipped:
        where = ", ".join(map(str, skipped[:10])) + (" ..." if len(skipped) > 10 else "")
        if empty == "error" or not texts:
            raise CorpusError(
                f"{label}: {len(skipped):,} of {len(rows):,} rows have an empty text in column "
                f"{col!r} (rows {where}). Fill them in or drop them"
                + (", or pick another text column." if not texts else ".")
            )
        notes.append(f"Skipped {len(skipped):,} row(s) with empty text (rows {where}).")
    return Corpus(texts, metadata, col, label, skipped, notes)


def _check_size(size: int, max_bytes: int, label: str) -> None:
    if size > max_bytes:
        raise CorpusError(
            f"{label} is {size / 2**20:,.1f} MiB, over the {max_bytes / 2**20:,.0f} MiB limit. "
            "Split it, or raise the limit (max_bytes=, --max-mb) if this machine has the memory."
        )


def _decode(data: bytes, encoding: str, label: str) -> str:
    if b"\x00" in data[:65536] and encoding.lower().replace("-", "") in ("utf8", "utf8sig"):
        raise CorpusError(
            f"{label} does not look like a text file (it contains NUL bytes). If it is UTF-16, "
            "re-save it as UTF-8; if it is Parquet, give it a .parquet extension."
        )
    try:
        return data.decode("utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CorpusError(
            f"{label} is not valid {encoding}: byte 0x{data[exc.start]:02x} at line {line} cannot "
            "be decoded. Re-save the file as UTF-8, or pass its encoding (e.g. encoding='latin-1', "
            "--encoding cp1252)."
        ) from None
    except LookupError:
        raise CorpusError(f"Unknown encoding {encoding!r}; use a Python codec name such as 'latin-1'.") from None


def _read_delimited(text: str, delimiter: str, label: str) -> tuple[list[str], list[dict]]:
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        header = _clean_header(header, label)
        rows = []
        for line_no, values in enumerate(reader, start=2):
            if not values:
                continue
            if len(values) != len(header):
                raise CorpusError(
                    f"{label}, line {reader.line_num}: {len(values)} fields where the header has "
                    f"{len(header)}. Check the quoting and the delimiter "
                    f"({'tab' if delimiter == chr(9) else 'comma'}) on that line."
                )
            rows.append(dict(zip(header, values)))
    except csv.Error as exc:
        raise CorpusError(f"{label} is not well-formed {'TSV' if delimiter == chr(9) else 'CSV'} "
                          f"near line {reader.line_num}: {exc}. Check its quoting.") from None
    return header, rows


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


def _read_jsonl(text: str, label: str) -> tuple[list[str], list[dict]]:
    rows, columns = [], {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{label}, line {line_no}: not valid JSON ({exc.msg}). "
                              "JSONL needs one JSON object per line.") from None
        if not isinstance(obj, dict):
            raise CorpusError(f"{label}, line {line_no}: expected a JSON object like "
                              f'{{"text": "..."}}, got {type(obj).__name__}.')
        columns.update(dict.fromkeys(obj))
        rows.append(obj)
    return list(columns), rows


def _read_parquet(data: bytes, label: str) -> tuple[list[str], list[dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise CorpusError(f"{label} could not be read as Parquet ({exc}). Is it really a .parquet file?") from None
    return table.column_names, table.to_pylist()


def _choose_text_column(columns, rows, text_column, label, notes) -> str:
    if text_column is not None:
        if text_column not in columns:
            raise CorpusError(
                f"{label} has no column {text_column!r}; its columns are: "
                + ", ".join(repr(c) for c in columns[:30]) + "."
            )
        return text_column
    if len(columns) == 1:
        return columns[0]
    lower = {str(c).lower(): c for c in columns}
    for candidate in _TEXT_NAMES:
        if candidate in lower:
            notes.append(f"Using column {lower[candidate]!r} as the text (pass text_column= to change).")
            return lower[candidate]
    sample = rows[:500]
    lengths = {
        c: np.mean([len(r[c]) if isinstance(r.get(c), str) else 0 for r in sample]) for c in columns
    }
    best = max(lengths, key=lengths.get)
    if lengths[best] == 0:
        raise CorpusError(f"{label} has no column of text; name one with text_column=.")
    notes.append(f"Using column {best!r}, the one with the longest strings, as the text "
                 "(pass text_column= to change).")
    return best


# --- precomputed vectors -----------------------------------------------------------------------


def load_vectors(source, *, format: str | None = None, vector_column: str | None = None,
                 id_column: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
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
    lists = [f.name for f in table.schema if pa.types.is_list(f.type) or pa.types.is_large_list(f.type)
             or pa.types.is_fixed_size_list(f.type)]
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
    try:
        arr = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError):
        raise CorpusError(f"{label}: rows have different lengths or are not numbers; "
                          "every vector must have the same dimension.") from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise CorpusError(f"{label}: expected a 2-D array (n_texts, dim), got shape {arr.shape}.")
    if dim is not None and arr.shape[1] != dim:
        raise CorpusError(f"{label}: vectors have dimension {arr.shape[1]}, but this model's are {dim}.")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise CorpusError(f"{label}: {rows.size} vector(s) contain NaN or inf (rows {rows[:5].tolist()}); "
                          "fix or drop them before importing.")
    zero = ~arr.any(axis=1)
    if zero.any():
        rows = np.flatnonzero(zero)
        raise CorpusError(f"{label}: {rows.size} vector(s) are all zeros (rows {rows[:5].tolist()}).")
    return arr.astype(np.float32)
