"""The map as a WebGL component: millions of points in any browser, interaction in the browser.

``scatter_map`` draws a 2D projection with regl-scatterplot (WebGL through regl, which every
browser and headless Chromium's software GL has: no WebGPU). Its JavaScript is the committed
bundle in ``components/scatter/build/`` (source and npm build beside it), so running it needs
no Node and loads nothing from the network.

What travels, and how:

- Down: one binary payload (``pack_payload``): a small JSON header (legend, colour bar,
  title) and typed arrays: coordinates as float32, colour codes as uint8 (the 20 largest
  categories, the rest "other"), values as float32, search hits as uint32 row ids. No JSON
  list of a million numbers, and no strings per point. It goes to a browser session once per
  map: later runs that draw the same map send a stub of a few hundred bytes.
- Pan, zoom, hover and the legend run in the browser with no Streamlit run at all.
- Up, only on a box or lasso (or a double-click that clears it): the selected row ids, once,
  as the component's ``selection`` state; that reruns the page, which reads it with
  :func:`last_event` before it draws anything (one run shows the selection everywhere).
- Hover text and click neighbours: the browser asks for one row at a time, after the pointer
  has rested 150 ms or on a click, through a tiny second component inside an ``st.fragment``.
  Only that fragment reruns; it calls ``hover`` / ``neighbors`` for that row and sends back a
  few hundred bytes of text. The map's data is not sent again and the page does not rerun.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from analytics.errors import ParameterError

BUILD = Path(__file__).resolve().parent / "components" / "scatter" / "build"
MAGIC = b"EXS1"
FORMAT_VERSION = 1
MAX_CATEGORIES = 20  # distinct colours; the rest of the categories are drawn grey as "other"
# Ten well-separated hues first (the largest categories get them), then ten darker or lighter
# ones from the same families of a Tableau-20-like set, with its greys taken out ("other" is grey).
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#393b79",
    "#ffbb78", "#637939", "#ff9896", "#7b4173", "#98df8a",
    "#8c6d31", "#aec7e8", "#843c39", "#c5b0d5", "#e7ba52",
)  # fmt: skip
OTHER_COLOR = "#b8b8b8"
# viridis at eleven stops; the browser interpolates a 256-colour ramp between them
RAMP = (
    "#440154", "#482475", "#414487", "#355f8d", "#2a788e", "#21918c",
    "#22a884", "#44bf70", "#7ad151", "#bddf26", "#fde725",
)  # fmt: skip
_DTYPES = {"f32": np.dtype("<f4"), "u8": np.dtype("u1"), "u32": np.dtype("<u4")}
TEXT_CHARS = 500  # hover text shown, at most
NEIGHBOUR_CHARS = 160
MAX_FIELDS = 12
FIELD_CHARS = 160


@dataclass(frozen=True)
class ScatterEvent:
    """What the map sent back. ``selection``: row ids inside the last box or lasso, sorted
    (empty when none or after a double-click cleared it); ``mode``: "lasso" or "box" (how they
    were chosen), or None; ``clicked``: the last clicked row, or None. A click does not rerun
    the page (only the small fragment that answers it), so a page sees a new ``clicked`` at its
    next run; ``on_click`` is called at once."""

    selection: tuple[int, ...] = ()
    mode: str | None = None
    clicked: int | None = None
    seq: int = 0  # the browser numbers each box or lasso: a new one differs from one sent again


@dataclass(frozen=True)
class Categories:
    """The 20 largest categories (``labels``, ``counts``, most frequent first) and how many
    points fall in the rest (``other``). ``wire``: per point, 0..19 for those categories and
    20 for "other", as uint8."""

    wire: np.ndarray
    labels: tuple[str, ...]
    counts: tuple[int, ...]
    other: int


def encode_labels(labels: Sequence[object]) -> tuple[np.ndarray, list[str]]:
    """Per-point labels (strings, numbers, None) as integer codes and the distinct labels, in
    order of first appearance: the ``codes`` and ``categories`` that ``scatter_map`` takes."""
    index: dict[str, int] = {}
    codes = np.fromiter(
        (index.setdefault("" if v is None else str(v), len(index)) for v in labels),
        dtype=np.int32,
        count=len(labels),
    )
    return codes, list(index)


def top_categories(codes, categories: Sequence[str], *, k: int = MAX_CATEGORIES) -> Categories:
    """Keep the ``k`` most frequent categories (ties: the earlier category first) and fold the
    rest into "other" (wire code ``k``), so that each kept category has its own colour."""
    codes = np.asarray(codes)
    if codes.ndim != 1 or not np.issubdtype(codes.dtype, np.integer):
        raise ParameterError("codes must be a 1-D array of integers (one category code per point).")
    if len(codes) and (codes.min() < 0 or codes.max() >= len(categories)):
        raise ParameterError(
            f"codes must lie in 0..{len(categories) - 1} (one per category); "
            f"got {int(codes.min())}..{int(codes.max())}."
        )
    counts = np.bincount(codes, minlength=len(categories))
    ranked = np.argsort(-counts, kind="stable")
    ranked = ranked[counts[ranked] > 0][:k]
    lut = np.full(len(categories), k, dtype=np.uint8)
    lut[ranked] = np.arange(len(ranked), dtype=np.uint8)
    wire = lut[codes] if len(codes) else np.zeros(0, dtype=np.uint8)
    kept = int(counts[ranked].sum())
    return Categories(
        wire=wire,
        labels=tuple(str(categories[i]) for i in ranked),
        counts=tuple(int(counts[i]) for i in ranked),
        other=len(codes) - kept,
    )


def normalize_xy(xy) -> tuple[np.ndarray, tuple[float, float], float]:
    """Coordinates scaled into [-1, 1] with one scale for both axes (so distances keep their
    meaning), as float32; with the centre and scale that map them back (``ndc*scale + centre``)."""
    xy = np.asarray(xy)
    if xy.dtype != np.float32:  # float32 maps (most projections) stay float32: half the work
        xy = xy.astype(np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ParameterError(f"xy must be an (n, 2) array of coordinates; got shape {xy.shape}.")
    if len(xy) == 0:
        raise ParameterError("The map has no points: xy is empty.")
    lo = np.array([xy[:, 0].min(), xy[:, 1].min()], dtype=np.float64)
    hi = np.array([xy[:, 0].max(), xy[:, 1].max()], dtype=np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):  # NaN and inf reach min or max
        bad = int((~np.isfinite(xy)).any(axis=1).sum())
        raise ParameterError(f"{bad:,} points have a missing or infinite coordinate; drop or fix them.")
    center = (lo + hi) / 2
    scale = float((hi - lo).max() / 2) or 1.0
    if xy.dtype == np.float32:
        ndc = xy - center.astype(np.float32)
        ndc /= np.float32(scale)
    else:
        ndc = ((xy - center) / scale).astype(np.float32)
    np.clip(ndc, -1, 1, out=ndc)  # float32 rounding may step a hair outside
    return ndc, (float(center[0]), float(center[1])), scale


def pack_payload(header: Mapping[str, Any], buffers: Mapping[str, np.ndarray]) -> bytes:
    """One binary message: ``EXS1``, the header's length (uint32 LE), the header as UTF-8 JSON,
    zero padding to 8 bytes, then each buffer at an 8-byte-aligned offset. The header gains
    ``buffers`` (name -> [offset, dtype, length], offsets from the end of the padding) and
    ``version`` (a hash of everything, so the browser skips data it already drew)."""
    layout, parts, offset = {}, [], 0
    for name, array in buffers.items():
        kind = next((k for k, d in _DTYPES.items() if np.asarray(array).dtype == d.newbyteorder("=")), None)
        if kind is None:
            raise ValueError(
                f"buffer {name}: dtype {np.asarray(array).dtype} is not float32, uint8 or uint32"
            )
        raw = np.ascontiguousarray(array, dtype=_DTYPES[kind]).tobytes()
        layout[name] = [offset, kind, int(np.asarray(array).size)]
        pad = -len(raw) % 8
        parts.append(raw + b"\0" * pad)
        offset += len(raw) + pad
    body = b"".join(parts)
    head = {**header, "buffers": layout}
    digest = hashlib.blake2b(json.dumps(head, sort_keys=True).encode(), digest_size=12)
    digest.update(body)
    head["version"] = digest.hexdigest()
    text = json.dumps(head, ensure_ascii=False).encode()
    text += b" " * (-(len(text) + 8) % 8)
    return MAGIC + struct.pack("<I", len(text)) + text + body


def unpack_payload(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The inverse of ``pack_payload`` (the browser's reader does the same in JavaScript)."""
    if data[:4] != MAGIC:
        raise ValueError("not a scatter payload")
    (length,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8 : 8 + length])
    start = 8 + length
    buffers = {
        name: np.frombuffer(data, dtype=_DTYPES[kind], count=count, offset=start + offset)
        for name, (offset, kind, count) in header["buffers"].items()
    }
    return header, buffers


def _highlight_rows(highlight, n: int) -> np.ndarray:
    h = np.asarray(highlight)
    if h.dtype == bool:
        if h.shape != (n,):
            raise ParameterError(f"A highlight mask must have one entry per point ({n:,}); got {h.shape}.")
        return np.flatnonzero(h).astype(np.uint32)
    h = h.astype(np.int64).ravel()
    if len(h) and (h.min() < 0 or h.max() >= n):
        raise ParameterError(f"Highlighted rows must lie in 0..{n - 1}.")
    return np.unique(h).astype(np.uint32)


def build_payload(
    xy,
    *,
    codes=None,
    categories: Sequence[str] | None = None,
    values=None,
    value_name: str = "value",
    highlight=None,
    highlight_name: str = "search hits",
    title: str = "",
    height: int = 600,
    point_size: float | None = None,
    key: str = "scatter_map",
    hover: bool = False,
    neighbors: bool = False,
) -> bytes:
    """The map's payload for ``scatter_map`` (see the module docstring); pure numpy, testable
    without a server."""
    ndc, center, scale = normalize_xy(xy)
    n = len(ndc)
    buffers: dict[str, np.ndarray] = {"xy": ndc.ravel()}
    header: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "key": key,
        "n": n,
        "title": title,
        "height": int(height),
        "point_size": float(point_size) if point_size else _point_size(n),
        "center": list(center),
        "scale": scale,
        "mode": "none",
        "legend": [],
        "other": None,
        "value": None,
        "highlight": None,
        "hover": bool(hover),
        "neighbors": bool(neighbors),
        "palette": list(PALETTE),
        "other_color": OTHER_COLOR,
    }
    if codes is not None:
        if categories is None:
            raise ParameterError("codes need categories: the label of each code.")
        cats = top_categories(codes, categories)
        if len(cats.wire) != n:
            raise ParameterError(f"codes has {len(cats.wire):,} entries for {n:,} points.")
        buffers["codes"] = cats.wire
        header["mode"] = "category"
        header["legend"] = [
            {"label": label, "count": count, "color": PALETTE[i]}
            for i, (label, count) in enumerate(zip(cats.labels, cats.counts, strict=True))
        ]
        header["other"] = {"count": cats.other, "color": OTHER_COLOR} if cats.other else None
    if values is not None:
        v = np.asarray(values, dtype=np.float32).ravel()
        if len(v) != n:
            raise ParameterError(f"values has {len(v):,} entries for {n:,} points.")
        finite = v[np.isfinite(v)]
        buffers["values"] = v
        header["mode"] = "value"
        header["value"] = {
            "name": value_name,
            "min": float(finite.min()) if len(finite) else 0.0,
            "max": float(finite.max()) if len(finite) else 0.0,
            "missing": int(n - len(finite)),
            "ramp": list(RAMP),
        }
    if highlight is not None:
        rows = _highlight_rows(highlight, n)
        buffers["highlight"] = rows
        header["highlight"] = {"count": len(rows), "name": str(highlight_name)}
    return pack_payload(header, buffers)


def _point_size(n: int) -> float:
    """Smaller points as the map fills, so that dense regions keep some structure."""
    return float(np.clip(9 - 1.3 * math.log10(max(n, 1)), 1.0, 8.0))


@lru_cache(maxsize=2)
def _asset(name: str) -> str:
    path = BUILD / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the map's bundle is committed in the repository; rebuild it with "
            "`cd dashboard/components/scatter && npm ci && npm run build`."
        )
    text = path.read_text(encoding="utf-8")
    # Streamlit reads a one-line string as a file path; the build's banner line avoids that
    return text if "\n" in text.strip() else f"/* {name} */\n{text}"


@lru_cache(maxsize=1)
def _components():
    """The two components, registered once per process: the map (the bundle) and the channel
    (a few lines that carry one hover or click request up and its answer back)."""
    mount_map = st.components.v2.component(
        "embex_scatter", js=_asset("scatter.js"), css=_asset("scatter.css"), isolate_styles=True
    )
    mount_channel = st.components.v2.component("embex_scatter_channel", js=_asset("channel.js"))
    return mount_map, mount_channel


def _noop() -> None:
    """Registers a state or trigger name with Streamlit (v2 components need a callback)."""


def _clip(text: object, limit: int) -> str:
    s = "" if text is None else str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _row_info(hover, row: int) -> tuple[str, list[list[str]]]:
    """Text and metadata of one row from ``hover`` (a callable returning a mapping, whose
    ``text`` entry is the main text, or a sequence of texts)."""
    if hover is None:
        return "", []
    item = hover(row) if callable(hover) else hover[row]
    if isinstance(item, Mapping):
        fields = [[_clip(k, 60), _clip(v, FIELD_CHARS)] for k, v in item.items() if k != "text"]
        return _clip(item.get("text", ""), TEXT_CHARS), fields[:MAX_FIELDS]
    return _clip(item, TEXT_CHARS), []


def _neighbour_rows(neighbors, row: int) -> list[tuple[int, float | None]]:
    out = []
    for item in list(neighbors(row))[:50]:
        if isinstance(item, tuple | list):
            out.append((int(item[0]), float(item[1]) if item[1] is not None else None))
        else:
            out.append((int(item), None))
    return [(r, s) for r, s in out if r != row]


def answer(request: Mapping[str, Any], *, n: int, hover=None, neighbors=None) -> dict[str, Any] | None:
    """The reply to one request from the browser: ``{"kind": "hover"|"click", "row", "seq"}`` ->
    the row's text and metadata (and, for a click, its nearest neighbours with their texts).
    Requests for rows out of range get None: they come from a browser, so they are input."""
    try:
        row, seq, kind = int(request["row"]), int(request["seq"]), str(request["kind"])
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 <= row < n or kind not in ("hover", "click"):
        return None
    text, fields = _row_info(hover, row)
    reply: dict[str, Any] = {"seq": seq, "kind": kind, "row": row, "text": text, "fields": fields}
    if kind == "click" and neighbors is not None:
        reply["neighbors"] = [
            {"row": r, "score": s, "text": _clip(_row_info(hover, r)[0], NEIGHBOUR_CHARS)}
            for r, s in _neighbour_rows(neighbors, row)
            if 0 <= r < n
        ]
    return reply


def _on_request(key: str, kind: str, n: int, hover, neighbors, on_click) -> None:
    """Callback of the channel (runs before its fragment reruns): answer the request and keep
    the answer, the latest of each kind, for the fragment to send. Hover and click are two
    triggers, so a click made while a hover is asked for is not lost."""
    state = st.session_state.get(f"{key}-channel") or {}
    request = state.get(kind) if isinstance(state, Mapping) else None
    if not isinstance(request, Mapping):
        return
    reply = answer({**request, "kind": kind}, n=n, hover=hover, neighbors=neighbors)
    if reply is None:
        return
    replies = st.session_state.setdefault(f"{key}-replies", {})
    replies[kind] = reply
    if kind == "click":
        st.session_state[f"{key}-clicked"] = reply["row"]
        if on_click is not None:
            on_click(reply["row"])


@st.fragment
def _channel(key: str, n: int, hover, neighbors, on_click) -> None:
    """The channel lives in its own fragment: answering a hover reruns this alone. It sends the
    latest answer of each kind; the map ignores those it is not waiting for (by sequence)."""
    _, mount_channel = _components()
    replies = st.session_state.get(f"{key}-replies", {})
    mount_channel(
        key=f"{key}-channel",
        data={"key": key, "replies": [replies[k] for k in ("hover", "click") if k in replies]},
        on_hover_change=lambda: _on_request(key, "hover", n, hover, neighbors, on_click),
        on_click_change=lambda: _on_request(key, "click", n, hover, neighbors, on_click),
        height=1,
    )


def read_header(data: bytes) -> dict[str, Any]:
    """A payload's JSON header, read without touching its buffers."""
    if data[:4] != MAGIC:
        raise ValueError("not a scatter payload")
    (length,) = struct.unpack("<I", data[4:8])
    return json.loads(data[8 : 8 + length])


def stub_payload(header: Mapping[str, Any]) -> bytes:
    """A payload without points that stands for ``header["version"]``: "keep what you drew"."""
    head = {**header, "stub": True, "buffers": {}}
    text = json.dumps(head, ensure_ascii=False).encode()
    text += b" " * (-(len(text) + 8) % 8)
    return MAGIC + struct.pack("<I", len(text)) + text


def _once_per_session(key: str, payload: bytes) -> bytes:
    """The points go to a browser session once: a rerun that draws the same map (after a
    lasso, a widget change) sends a stub of a few hundred bytes instead of megabytes. A
    browser that lacks that version (a new tab, a remount) asks through the map's ``need``
    state, whose callback clears the mark, and the rerun sends everything again."""
    header = read_header(payload)
    version = header["version"]
    mark = f"{key}-sent"
    if st.session_state.get(mark) == version:
        return stub_payload({k: header[k] for k in ("format", "key", "n", "height", "version")})
    st.session_state[mark] = version
    return payload


def scatter_map(
    xy,
    *,
    codes=None,
    categories: Sequence[str] | None = None,
    values=None,
    value_name: str = "value",
    highlight=None,
    highlight_name: str = "search hits",
    hover: Callable[[int], Mapping[str, Any]] | Sequence[str] | None = None,
    neighbors: Callable[[int], Sequence[int] | Sequence[tuple[int, float]]] | None = None,
    on_click: Callable[[int], None] | None = None,
    title: str = "",
    height: int = 600,
    point_size: float | None = None,
    key: str = "scatter_map",
) -> ScatterEvent:
    """Draw ``xy`` ((n, 2) coordinates) as a WebGL map and return what the user selected.

    Colour: ``codes`` (n integers) with ``categories`` (their labels): the 20 largest get
    distinct colours, the rest grey "other", rare ones drawn on top, a legend with counts; or
    ``values`` (n floats, NaN = missing) on a viridis colour bar named ``value_name``.
    ``highlight``: search hits (row ids or an n-long boolean mask), drawn on top, others dimmed;
    the legend names them ``highlight_name``.
    ``hover``: a row's text and metadata, asked for only when the pointer rests on it: a
    callable ``row -> {"text": ..., field: value, ...}``, or a sequence of texts. ``neighbors``:
    ``row -> row ids`` (or ``(row id, similarity)`` pairs), shown and highlighted on a click.
    Box, lasso (or shift-drag) send the selected row ids once; the page reruns with them.
    """
    if "__" in key:
        raise ParameterError(f"The map's key may not contain '__' (Streamlit reserves it); got {key!r}.")
    payload = build_payload(
        xy,
        codes=codes,
        categories=categories,
        values=values,
        value_name=value_name,
        highlight=highlight,
        highlight_name=highlight_name,
        title=title,
        height=height,
        point_size=point_size,
        key=key,
        hover=hover is not None,
        neighbors=neighbors is not None,
    )
    n = len(xy)
    mount_map, _ = _components()
    result = mount_map(
        key=key,
        data=_once_per_session(key, payload),
        default={"selection": None, "need": None},
        on_selection_change=_noop,
        on_need_change=lambda: st.session_state.pop(f"{key}-sent", None),
        height=int(height),
    )
    _channel(key, n, hover, neighbors, on_click)
    return _event(key, n, result.get("selection") if result is not None else None)


def last_event(key: str, n: int) -> ScatterEvent:
    """What the map under ``key`` sent last (its box or lasso), read before the map is drawn
    in this run: a page that acts on a new lasso can then draw the map, the counts and the
    table with it in this same run, where reading it from :func:`scatter_map`'s return value
    would need a second run (at 100,000 points, most of a lasso's round trip)."""
    state = st.session_state.get(key) if key in st.session_state else None
    return _event(key, n, state.get("selection") if isinstance(state, Mapping) else None)


def _event(key: str, n: int, selection) -> ScatterEvent:
    """A :class:`ScatterEvent` from the component's ``selection`` state (checked: it comes
    from the browser) and the last click."""
    rows: tuple[int, ...] = ()
    mode, seq = None, 0
    if isinstance(selection, Mapping) and isinstance(selection.get("rows"), list):
        rows = tuple(sorted({int(r) for r in selection["rows"] if isinstance(r, int) and 0 <= r < n}))
        mode = selection.get("mode") if selection.get("mode") in ("lasso", "box") else None
        seq = selection.get("seq") if isinstance(selection.get("seq"), int) else 0
    clicked = st.session_state.get(f"{key}-clicked")
    return ScatterEvent(
        selection=rows,
        mode=mode if rows else None,
        clicked=clicked if isinstance(clicked, int) else None,
        seq=seq,
    )
