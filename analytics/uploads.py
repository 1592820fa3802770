"""Uploaded corpus files: their bytes written once to a private folder, named by their content
hash, and read once per text column into a :class:`~analytics.corpus.ColumnarCorpus` on disk.

A dashboard reruns its page on every widget interaction; an upload of a few hundred MB must not
be parsed again each time, nor held as Python objects while the user picks columns. So the
bytes go to disk once (``<sha256>.<format>``: never the browser's file name, which is only a
label in messages), :func:`~analytics.corpus.read_columnar` reads them once into an Arrow file
beside them, and only a small description stays in memory, shared by every session that
uploads the same bytes. A refusal is remembered too, so a bad file is not read again.

Files of precomputed vectors (``.npy``, ``.npz``, or Parquet with a list column of numbers) are
kept the same way (:meth:`UploadCache.read_vectors`): opened with the library's reader
(:func:`~analytics.corpus.open_vectors`), every value checked once, and, for a Parquet file that
also holds texts, those read as a corpus; :func:`save_vectors` and
:func:`save_corpus_with_vectors` store them as ``embex import-vectors`` does.

The folder is private to this process (``mkdtemp``: mode 0700) and removed when it exits; the
least recently used uploads beyond ``max_uploads`` are removed (their files too).
"""

from __future__ import annotations

import atexit
import hashlib
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

from .corpus import ColumnarCorpus, VectorFile, detect_format, open_vectors, read_columnar
from .errors import CorpusError, ParameterError

#: rows per chunk while an upload is read: the Python objects of one chunk are the read's
#: memory (190 MiB CSV of 3.3M short rows: +113 MiB peak at 100,000 rows, +68 MiB at 25,000,
#: the same speed)
UPLOAD_CHUNK_ROWS = 25_000
_HEX64 = re.compile(r"[0-9a-f]{64}")


def content_hash(data) -> str:
    """The sha256 of an upload's bytes (``bytes`` or a buffer; nothing is copied)."""
    return hashlib.sha256(data).hexdigest()


class UploadCache:
    """Uploads by content hash, and each one read once per (file name, text column).

    ``parses`` counts the reads done (not the answers served from the cache): a page that
    reruns must leave it unchanged."""

    def __init__(self, folder: str | Path | None = None, *, max_uploads: int = 2):
        if folder is None:
            folder = tempfile.mkdtemp(prefix="embex-uploads-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.max_uploads = max_uploads
        self.parses = 0
        self._lock = threading.Lock()
        # digest -> {(name, text_column): ColumnarCorpus or _Refusal}, least recent first
        self._uploads: OrderedDict[str, dict] = OrderedDict()
        self._key_locks: dict[tuple, threading.Lock] = {}

    def cached(
        self, digest: str, name: str, text_column: str | None = None, *, vectors: bool = False
    ) -> bool:
        """Whether :meth:`read` (or :meth:`read_vectors`, with ``vectors``) would answer from the
        cache (a page shows a progress bar otherwise)."""
        key = (name, "\0vectors", text_column) if vectors else (name, text_column)
        with self._lock:
            return key in self._uploads.get(digest, {})

    def read(
        self,
        data,
        *,
        name: str,
        text_column: str | None = None,
        digest: str | None = None,
        progress=None,
        **limits,
    ) -> ColumnarCorpus:
        """The upload ``data`` (bytes) named ``name`` by the browser, read with ``text_column``
        (inferred when None): from the cache, or written (once per content) and read now.
        Raises :class:`CorpusError` for a file that cannot be used, the same error each time.
        ``digest`` is ``content_hash(data)`` when the caller has it already; ``limits`` go to
        :func:`~analytics.corpus.read_columnar` (its defaults are an upload's)."""
        fmt = detect_format(name)  # from the browser's name: the format, never a path
        limits.setdefault("chunk_rows", UPLOAD_CHUNK_ROWS)

        def make(raw: Path, out: Path):
            return read_columnar(raw, out, text_column, name=name, progress=progress, **limits)

        return self._cached(data, digest, fmt, (name, text_column), make)

    def read_vectors(
        self,
        data,
        *,
        name: str,
        text_column: str | None = None,
        digest: str | None = None,
        progress=None,
    ) -> VectorUpload:
        """The vector file ``data`` named ``name`` by the browser (``.npy``, ``.npz``, or Parquet
        with a list column of numbers), opened and every value checked now (NaN, inf, zero rows,
        rows of different lengths: :class:`CorpusError` naming the rows, with the browser's file
        name), from the cache when it was before. A Parquet file that also holds texts (a string
        column) gives them as a corpus too (``text_column`` or inferred, the vector column left
        out of its metadata); its rows' vectors then go with its own texts, in order."""
        fmt = vector_format(name)

        def make(raw: Path, out: Path) -> VectorUpload:
            try:
                column = schema = None
                if fmt == "parquet":
                    import pyarrow as pa
                    import pyarrow.parquet as pq

                    try:
                        schema = pq.read_schema(raw)
                    except (pa.ArrowException, OSError) as exc:
                        raise CorpusError(f"{name} could not be read as Parquet ({exc}).") from None
                    # the first list of numbers (a list of strings, such as tags, is metadata)
                    column = next((f.name for f in schema if _is_number_list(f.type)), None)
                vectors = replace(open_vectors(raw, format=fmt, vector_column=column), source=name)
                for _ in vectors.chunks():  # every value checked once, here, not at save
                    pass
                if fmt != "parquet":
                    return VectorUpload(vectors, None, None, path=raw)
                try:
                    texts = _texts_beside(raw, out, schema, column, name, text_column, progress)
                except CorpusError as exc:  # the vectors may still go to a stored corpus
                    return VectorUpload(vectors, None, column, texts_problem=str(exc), path=raw)
                if texts is None:
                    return VectorUpload(vectors, None, column, path=raw)
                if texts.n_skipped:
                    rows = ", ".join(map(str, texts.skipped_rows[:5]))
                    problem = (
                        f"{name}: {texts.n_skipped:,} row(s) have an empty text in column "
                        f"{texts.text_column!r} (rows {rows}), and each row's vector goes with its text. "
                        "Fill them in or drop those rows to store the file's texts with its vectors."
                    )
                    return VectorUpload(vectors, None, column, texts_problem=problem, path=raw)
                # each row's vector goes with the text in the same row: an id column is metadata
                return VectorUpload(replace(vectors, ids=None), texts, column, path=raw)
            except CorpusError as exc:  # the kept file's name is the hash: say the browser's
                raise CorpusError(str(exc).replace(raw.name, name)) from None

        return self._cached(data, digest, fmt, (name, "\0vectors", text_column), make)

    def columns(self, data, *, name: str, digest: str | None = None) -> list[str]:
        """The columns of a corpus upload, from its header (CSV, TSV), schema (Parquet) or the
        keys of its first rows (JSONL), for a page to offer when the text column it inferred
        could not be used; [] when even these cannot be read."""
        fmt = detect_format(name)

        def make(raw: Path, out: Path) -> list[str]:
            return _file_columns(raw, fmt)

        try:
            return self._cached(data, digest, fmt, (name, "\0columns"), make)
        except CorpusError:
            return []

    def _cached(self, data, digest: str | None, fmt: str, key: tuple, make):
        """``make(raw, out)``'s answer for ``key`` of the upload ``data``: from the cache, or
        with the bytes written once to ``raw`` (named by their hash) and ``make`` run now (its
        own files beside it, from ``out``); a :class:`CorpusError` is remembered as a refusal."""
        digest = digest or content_hash(data)
        if not _HEX64.fullmatch(digest):  # it names files: a sha256 in hex, nothing else
            raise ParameterError(f"digest must be a sha256 in hex, got {digest!r}.")
        with self._lock:
            lock = self._key_locks.setdefault((digest, *key), threading.Lock())
        with lock:  # one read per key at a time; other sessions wait for it, then share it
            with self._lock:
                entry = self._uploads.get(digest)
                if entry is not None:
                    self._uploads.move_to_end(digest)
                    if key in entry:
                        return _answer(entry[key])
            raw = self.folder / f"{digest}.{fmt}"
            which = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
            out = self.folder / f"{digest}.{fmt}.{which}.arrow"
            with self._lock:
                self.parses += 1
            try:
                if not raw.exists():
                    fd, part = tempfile.mkstemp(dir=self.folder, prefix=f"{digest}.", suffix=".part")
                    try:
                        with open(fd, "wb") as f:
                            f.write(data)
                        Path(part).replace(raw)
                    finally:
                        Path(part).unlink(missing_ok=True)
                result = make(raw, out)
            except CorpusError as exc:
                result = _Refusal(str(exc))  # the message, not the exception: its traceback holds frames
            except OSError as exc:  # not the file's fault, so not remembered: a later try may work
                raise CorpusError(
                    f"{key[0]} could not be kept on the server while it is read ({exc.strerror or exc}); "
                    f"the folder {self.folder} may be full. Free some space, or ingest the file with "
                    "`embex ingest`."
                ) from None
            with self._lock:
                self._uploads.setdefault(digest, {})[key] = result
                self._uploads.move_to_end(digest)
                evicted = []
                while len(self._uploads) > self.max_uploads:
                    old, _ = self._uploads.popitem(last=False)
                    evicted.append(old)
                    self._key_locks = {k: v for k, v in self._key_locks.items() if k[0] != old}
            for old in evicted:
                for path in self.folder.glob(f"{old}.*"):
                    path.unlink(missing_ok=True)
            return _answer(result)


def _file_columns(raw: Path, fmt: str, rows: int = 100) -> list[str]:
    import csv
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    if fmt == "txt":
        return ["text"]
    try:
        if fmt == "parquet":
            return list(pq.read_schema(raw).names)
        with open(raw, encoding="utf-8-sig", newline="") as f:
            if fmt in ("csv", "tsv"):
                header = next(csv.reader(f, delimiter="\t" if fmt == "tsv" else ","), [])
                return [h.strip() for h in header if h.strip()]
            keys: dict[str, None] = {}
            for line, _ in zip(f, range(rows)):
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    keys.update(dict.fromkeys(map(str, obj)))
            return list(keys)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, pa.ArrowException):
        return []


class _Refusal(str):
    """A cached refusal: the message of the CorpusError that refused the file."""


def _answer(result):
    if isinstance(result, _Refusal):
        raise CorpusError(str(result))
    return result


_default: UploadCache | None = None
_default_lock = threading.Lock()


def upload_cache() -> UploadCache:
    """This process's upload cache (the dashboard's server shares one across sessions)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = UploadCache()
        return _default


# --- vector files ------------------------------------------------------------------------------

#: vector files by extension (the formats :func:`~analytics.corpus.open_vectors` reads)
VECTOR_FORMATS = {".npy": "npy", ".npz": "npz", ".parquet": "parquet", ".pq": "parquet"}
#: the model id of uploaded vectors starts with this (see :func:`default_model_id`)
UPLOADED_PREFIX = "uploaded:"


@dataclass(frozen=True)
class VectorUpload:
    """A vector file read by :meth:`UploadCache.read_vectors`: its vectors (every value checked),
    and the texts it carries when it is a Parquet file with a text column."""

    vectors: VectorFile
    texts: ColumnarCorpus | None
    """The file's own texts (then row i's vector is text i's), or None: the vectors are for a
    corpus already stored, one row per text in its order (or as the file's ids say)."""
    vector_column: str | None
    """The Parquet column that holds the vectors (None for .npy and .npz)."""
    texts_problem: str | None = None
    """Why the file's texts cannot be used, where it has a text column that could not be read."""
    path: Path | None = None
    """The file as kept on the server (named by its hash)."""

    def check_kept(self) -> None:
        """:class:`CorpusError` when the kept files were removed meanwhile (another session's
        uploads pushed this one out of the cache): the file must be dropped again."""
        kept = [p for p in (self.path, self.texts.path if self.texts is not None else None) if p is not None]
        if not all(p.exists() for p in kept):
            raise CorpusError(
                f"{self.vectors.source} was cleared from the server meanwhile (other uploads took its "
                "place); drop it again."
            )


def vector_format(name: str) -> str:
    """``npy``, ``npz`` or ``parquet`` from a file name's extension, or :class:`CorpusError`."""
    fmt = VECTOR_FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise CorpusError(f"{name}: vector files are .npy, .npz or .parquet; this one is not.")
    return fmt


def _is_number_list(typ) -> bool:
    import pyarrow as pa

    lists = pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)
    return lists and (pa.types.is_floating(typ.value_type) or pa.types.is_integer(typ.value_type))


def is_vector_upload(data, name: str) -> bool:
    """Whether an upload is a file of vectors rather than of texts: a ``.npy`` or ``.npz``, or a
    Parquet file with a list column of numbers (only its footer is read). A Parquet file that
    cannot be read is not: the corpus reader then says what is wrong with it."""
    fmt = VECTOR_FORMATS.get(Path(name).suffix.lower())
    if fmt != "parquet":
        return fmt is not None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError):
        return False
    return any(_is_number_list(f.type) for f in schema)


def _texts_beside(raw: Path, out: Path, schema, column: str, name: str, text_column, progress):
    """The texts of a vector Parquet file as a :class:`ColumnarCorpus` (read like any upload,
    from a copy without the vector column), or None when it has no string column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    if not strings:
        return None
    keep = [f.name for f in schema if f.name != column]
    texts = out.with_name(out.name + ".texts.parquet")
    try:
        with (
            pq.ParquetFile(raw, pre_buffer=False) as pf,
            pq.ParquetWriter(
                texts, pf.schema_arrow.remove(pf.schema_arrow.get_field_index(column))
            ) as writer,
        ):
            for batch in pf.iter_batches(batch_size=8192, columns=keep):
                writer.write_batch(batch)
        return read_columnar(
            texts,
            out,
            text_column,
            format="parquet",
            name=name,
            progress=progress,
            chunk_rows=UPLOAD_CHUNK_ROWS,
        )
    except pa.ArrowException as exc:
        raise CorpusError(f"{name} could not be read as Parquet ({exc}).") from None
    finally:
        texts.unlink(missing_ok=True)


def default_model_id(file_name: str) -> str:
    """The model id offered for uploaded vectors: ``uploaded:<file stem>`` (``#``, which ends a
    model id in the store's keys, and white space made ``-``)."""
    stem = re.sub(r"[#\s]+", "-", Path(file_name).stem).strip("-")[:100]
    return UPLOADED_PREFIX + (stem or "vectors")


def check_model_id(model_id: str) -> str:
    """The model id given for uploaded vectors, stripped, or :class:`ParameterError`: it must be
    a name of its own, not an embedding model's (the default model's id, a ``path:`` key), so
    that uploaded vectors never stand in for a model's in the cache."""
    from .embedding import DEFAULT_MODEL, model_id_for

    model_id = str(model_id or "").strip()
    if not model_id:
        raise ParameterError("Give the vectors a model name (e.g. uploaded:my-vectors).")
    if len(model_id) > 200 or "#" in model_id or any(c < " " for c in model_id):
        raise ParameterError(
            "A model name for vectors is at most 200 characters, without '#' or control characters."
        )
    if model_id.startswith("path:") or model_id_for(model_id) == DEFAULT_MODEL:
        raise ParameterError(
            f"{model_id!r} names a model this tool embeds with; give uploaded vectors a name of their "
            "own (e.g. uploaded:my-vectors), so they never replace that model's vectors."
        )
    return model_id


def save_vectors(store, upload: VectorUpload, *, corpus: str, model_id: str, progress=None) -> int:
    """Store ``upload``'s vectors for the stored corpus ``corpus`` under ``model_id`` (as
    ``embex import-vectors`` does: one transaction, nothing stored if any row is bad). Without
    ids in the file, it must hold one vector per text of the corpus, in order. Returns how many
    vectors were added."""
    from .embedding import import_vectors

    model_id = check_model_id(model_id)
    upload.check_kept()
    vectors = upload.vectors
    n_docs = store.corpus_info(corpus).n_docs
    if vectors.ids is None and vectors.n != n_docs:
        raise CorpusError(
            f"{vectors.source} holds {vectors.n:,} vectors, but corpus {corpus!r} has {n_docs:,} texts: "
            "a vector file needs one row per text, in the corpus's order. Choose the corpus they were "
            "made from."
        )
    try:
        return import_vectors(store, corpus, vectors, model_id, progress=progress)
    except FileNotFoundError:  # removed between check_kept and the read: the same as there
        raise CorpusError(
            f"{vectors.source} was cleared from the server meanwhile (other uploads took its place); "
            "drop it again."
        ) from None
    except CorpusError as exc:  # say the browser's file name, not the kept file's hash name
        if upload.path is None or upload.path.name not in str(exc):
            raise
        raise CorpusError(str(exc).replace(upload.path.name, vectors.source)) from None


def save_corpus_with_vectors(
    store, upload: VectorUpload, *, name: str, model_id: str, label_column: str | None = None, progress=None
):
    """Store the texts of a vector Parquet file as corpus ``name`` and its vectors under
    ``model_id``: ``(CorpusInfo, vectors added)``. Everything that can be checked is checked
    first; should the vectors still fail, the new corpus is removed again, so the store is left
    as it was."""
    from .corpus import check_dimension

    if upload.texts is None:
        raise CorpusError(
            f"{upload.vectors.source} holds no texts; choose the stored corpus the vectors are for."
        )
    model_id = check_model_id(model_id)
    upload.check_kept()
    check_dimension(upload.vectors, store.model_dim(model_id))
    if upload.vectors.n != upload.texts.n_docs:  # read_vectors refuses skipped rows: a safeguard
        raise CorpusError(
            f"{upload.vectors.source}: {upload.vectors.n:,} vectors for {upload.texts.n_docs:,} texts."
        )
    info = store.add_corpus_stream(name, upload.texts, label_column=label_column)
    try:
        added = save_vectors(store, upload, corpus=info.name, model_id=model_id, progress=progress)
    except BaseException:
        store.delete_corpus(info.name)
        raise
    return info, added


def sample_texts(corpus: ColumnarCorpus, n: int = 400) -> list[str]:
    """Up to ``n`` texts spread evenly over an uploaded corpus (first and last rows included),
    read from its Arrow file without reading the rest; [] when that file is gone (evicted)."""
    import numpy as np
    import pyarrow as pa

    if n < 1 or not corpus.n_docs:
        return []
    at = np.unique(np.linspace(0, corpus.n_docs - 1, min(n, corpus.n_docs)).round().astype(np.int64))
    try:
        with pa.memory_map(str(corpus.path)) as source:
            column = pa.ipc.open_file(source).read_all().column("text")
            return column.take(pa.array(at)).to_pylist()
    except (OSError, pa.ArrowException):
        return []


# --- the page's words --------------------------------------------------------------------------

_INGEST = "ingest it from the command line (embex ingest), where the limit can be raised."
_API_HINT = re.compile(r" \((?:[a-z_]+=|--[a-z-]+)(?:,\s*(?:[a-z_]+=|--[a-z-]+))*\)")
#: (pattern, words where the page offers the text column, words where it does not)
_PAGE_WORDS = [
    (re.compile(r"Name the column that holds the texts\."), "Choose the text column below.", ""),
    (re.compile(r"name one with text_column=\."), "choose the text column below.", "it needs one."),
    (re.compile(r", or pick another text column\."), ", or choose another text column below.", "."),
    (re.compile(r" or pass format="), "", ""),
    (re.compile(r", or pass its encoding \(e\.g\. [^)]*\)"), "", ""),
    (re.compile(r" \(pass text_column= to change\)"), "", ""),
    (re.compile(r"raise the limit(?: if this machine has the memory)?\."), _INGEST, _INGEST),
]


def needs_text_column(message: str) -> bool:
    """Whether a refusal of an upload is about the text column read from it (the column
    inferred holds no usable text), so that choosing another column may help."""
    return "text_column=" in message or "another text column" in message


def for_page(message: str, *, choose: bool = True) -> str:
    """A loader's message in the Upload page's words: its hints at keyword arguments and
    command-line options (``text_column=``, ``--max-rows``) become what to do on the page
    ("Choose the text column below", where ``choose`` says the page offers the choice), or
    from the command line where the page cannot (raising a limit)."""
    message = _API_HINT.sub("", message)
    for pattern, offered, not_offered in _PAGE_WORDS:
        message = pattern.sub(offered if choose else not_offered, message)
    return message.strip()
