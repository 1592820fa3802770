"""Static images of figures (PNG at a chosen scale, SVG) through kaleido, which drives a
Chromium: the system one (/usr/bin/chromium) where kaleido has none of its own."""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

from .errors import DependencyError, ParameterError

SYSTEM_CHROMIUM = "/usr/bin/chromium"


def _use_system_chromium() -> None:
    if "BROWSER_PATH" not in os.environ and Path(SYSTEM_CHROMIUM).exists():
        os.environ["BROWSER_PATH"] = SYSTEM_CHROMIUM


def figure_image(
    fig, format: str = "png", *, width: int = 1200, height: int = 700, scale: float = 2.0
) -> bytes:
    """The figure as PNG (``width*scale`` x ``height*scale`` pixels) or SVG bytes."""
    if format not in ("png", "svg"):
        raise ParameterError(f"format must be 'png' or 'svg', got {format!r}.")
    if not (0 < scale <= 8):
        raise ParameterError(f"scale must be in (0, 8], got {scale}.")
    _use_system_chromium()
    try:
        return fig.to_image(format=format, width=width, height=height, scale=scale if format == "png" else 1)
    except (RuntimeError, ValueError, OSError) as exc:
        raise DependencyError(
            f"Static export failed ({exc}). It needs kaleido and a Chromium: install Debian's "
            "chromium, or set BROWSER_PATH to a Chrome/Chromium binary."
        ) from None


# -- file names ---------------------------------------------------------------------------------

#: the most UTF-8 bytes in a name :func:`file_name` returns (file systems allow 255; a browser's
#: "Save as" may add " (1)", and a letter of some scripts takes 3 or 4 bytes)
MAX_FILE_NAME = 120
_UNSAFE = re.compile(r"[^\w.-]+")  # \w: letters and digits of any script, and "_"
_DASHES = re.compile(r"-{2,}")
_DOTS = re.compile(r"\.{2,}")
_WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{i}" for i in range(10)),
    *(f"LPT{i}" for i in range(10)),
}


def _cut(text: str, max_bytes: int) -> str:
    """The longest start of ``text`` that is at most ``max_bytes`` in UTF-8 (whole characters)."""
    return text.encode("utf-8")[: max(max_bytes, 0)].decode("utf-8", errors="ignore")


def safe_file_part(text, *, max_len: int = 60, fallback: str = "corpus", whole: bool = True) -> str:
    """``text`` made safe inside a file name on every common system: letters and digits of any
    script, "_", "." and "-" kept, every other run of characters (path separators, spaces,
    control characters, quotes, emoji) one "-", runs of dots one dot, no leading or trailing
    dot or dash (no hidden files, no "..", nothing that looks like an option), at most ``max_len`` bytes of UTF-8;
    ``fallback`` when nothing is left. ``whole``: the part is a whole file name's stem, so a
    name Windows reserves (CON, NUL, COM1...) gets "_" before it."""
    text = unicodedata.normalize("NFKC", str(text))
    text = "".join(c if unicodedata.category(c)[0] not in "CZ" else "-" for c in text)
    text = _DOTS.sub(".", _DASHES.sub("-", _UNSAFE.sub("-", text)))
    text = _cut(text.strip(".-"), max_len).rstrip(".-")
    if not text:
        return fallback
    return _not_reserved(text, max_len) if whole else text


def _not_reserved(stem: str, max_len: int) -> str:
    """``stem`` with "_" before it when Windows reserves the name ("CON.csv" cannot be saved)."""
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        return _cut("_" + stem, max_len)
    return stem


def _extension(ext) -> str:
    """An extension: letters and digits only (no dots or dashes), at most 8, lower case."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", str(ext)))[:8].lower() or "bin"


def file_name(corpus, view: str, *parts, ext: str, max_len: int = MAX_FILE_NAME) -> str:
    """The name of an exported file, from what it holds: ``file_name("ag_news", "report",
    "2026-11-26", ext="html")`` is ``ag_news-report-2026-11-26.html``, ``file_name("clinc150",
    "depth", "cosine", ext="csv")`` is ``clinc150-depth-cosine.csv``. Every part goes through
    :func:`safe_file_part` (user text such as a corpus name is data, never a path); empty
    parts are left out; the whole is at most ``max_len`` bytes of UTF-8, the corpus name
    giving way first."""
    extension = _extension(ext)
    rest = [safe_file_part(p, fallback="", whole=False) for p in (view, *parts) if p is not None]
    tail = "-".join(p for p in rest if p)
    room = max_len - len(extension.encode("utf-8")) - 1  # bytes for the stem ("." before the extension)
    corpus_room = min(60, room - len(tail.encode("utf-8")) - 1)  # "-" before the tail
    stem = safe_file_part(corpus, max_len=max(corpus_room, 8), whole=False)
    if tail:
        stem = _cut(f"{stem}-{tail}", room).rstrip(".-")
    return f"{_not_reserved(stem, room)}.{extension}"


def safe_file_name(name: str, *, max_len: int = MAX_FILE_NAME) -> str:
    """A file name a page chose, made safe (:func:`safe_file_part` on the stem and on the
    extension): ``world (selection)-pca-map.png`` is ``world-selection-pca-map.png``."""
    stem, dot, ext = str(name).rpartition(".")
    if not dot or not stem or not ext or len(ext) > 8:
        stem, ext = str(name), "bin"
    extension = _extension(ext)
    room = max_len - len(extension.encode("utf-8")) - 1  # bytes for the stem
    return f"{safe_file_part(stem, max_len=room, fallback='export')}.{extension}"


def only_if_current(produce, is_current, *, what: str = "This file"):
    """``produce`` (a function of no arguments that returns a download's bytes) wrapped so that
    it raises :class:`ParameterError` instead, once ``is_current()`` says the inputs it was
    built from are no longer the ones on screen: a download button still drawn from an
    earlier page run (Streamlit keeps it until the new run ends) cannot serve a stale file."""

    def checked():
        if not is_current():
            raise ParameterError(
                f"{what} was built from inputs that are no longer on screen; build it again from the page."
            )
        return produce()

    return checked
