"""Uploaded corpus files: their bytes written once to a private folder, named by their content
hash, and read once per text column into a :class:`~analytics.corpus.ColumnarCorpus` on disk.

A dashboard reruns its page on every widget interaction; an upload of a few hundred MB must not
be parsed again each time, nor held as Python objects while the user picks columns. So the
bytes go to disk once (``<sha256>.<format>``: never the browser's file name, which is only a
label in messages), :func:`~analytics.corpus.read_columnar` reads them once into an Arrow file
beside them, and only a small description stays in memory, shared by every session that
uploads the same bytes. A refusal is remembered too, so a bad file is not read again.

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
from pathlib import Path

from .corpus import ColumnarCorpus, detect_format, read_columnar
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

    def cached(self, digest: str, name: str, text_column: str | None = None) -> bool:
        """Whether :meth:`read` would answer from the cache (a page shows a spinner otherwise)."""
        with self._lock:
            return (name, text_column) in self._uploads.get(digest, {})

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
        digest = digest or content_hash(data)
        if not _HEX64.fullmatch(digest):  # it names files: a sha256 in hex, nothing else
            raise ParameterError(f"digest must be a sha256 in hex, got {digest!r}.")
        key = (name, text_column)
        with self._lock:
            lock = self._key_locks.setdefault((digest, *key), threading.Lock())
        with lock:  # one read per key at a time; other sessions wait for it, then share it
            with self._lock:
                entry = self._uploads.get(digest)
                if entry is not None:
                    self._uploads.move_to_end(digest)
                    if key in entry:
                        return _answer(entry[key])
            fmt = detect_format(name)  # from the browser's name: the format, never a path
            raw = self.folder / f"{digest}.{fmt}"
            which = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
            out = self.folder / f"{digest}.{fmt}.{which}.arrow"
            with self._lock:
                self.parses += 1
            limits.setdefault("chunk_rows", UPLOAD_CHUNK_ROWS)
            try:
                if not raw.exists():
                    fd, part = tempfile.mkstemp(dir=self.folder, prefix=f"{digest}.", suffix=".part")
                    try:
                        with open(fd, "wb") as f:
                            f.write(data)
                        Path(part).replace(raw)
                    finally:
                        Path(part).unlink(missing_ok=True)
                result = read_columnar(raw, out, text_column, name=name, progress=progress, **limits)
            except CorpusError as exc:
                result = _Refusal(str(exc))  # the message, not the exception: its traceback holds frames
            except OSError as exc:  # not the file's fault, so not remembered: a later try may work
                raise CorpusError(
                    f"{name} could not be kept on the server while it is read ({exc.strerror or exc}); "
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
