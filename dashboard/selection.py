"""The analyst's one selection (analytics/selection.py), shared by every page of a session and
kept in the URL, so that what was picked on the Map scopes Depth, Outliers, Shift, Retrieval
and the Report, and a reload or a shared link finds the same rows.

In the session: one :class:`Selection` per corpus. In the URL: ``sel`` (a lasso, saved in the
store under a short id: a link cannot carry 80,000 row ids), ``filter`` (JSON: column -> values)
and ``q`` (a text search). Pages call :func:`current` and :func:`scope`; the Map page calls
:func:`remember` when the analyst picks something.
"""

from __future__ import annotations

import json

import numpy as np
import streamlit as st
from common import plain, store

from analytics import ExplorerError
from analytics.selection import Selection, resolve

_STATE = "_selections"
URL_KEYS = ("sel", "filter", "q")


def _from_url(name: str) -> Selection:
    """The selection a link describes, for corpus ``name`` (parts that do not apply to it, or
    that are malformed, are left out with a note)."""
    sel = Selection(name)
    params = st.query_params
    if st.query_params.get("corpus") not in (None, name):
        return sel
    sid = params.get("sel")
    if sid:
        found = store().selection(sid)
        if found is None or found[0] != name:
            st.warning(f"The link's selection {plain(sid)} is not in this store any more; showing all rows.")
        else:
            sel = sel.with_rows(found[1].tolist())
    raw = params.get("filter")
    if raw:
        try:
            filters = json.loads(raw)
            if not isinstance(filters, dict) or not all(isinstance(v, list) for v in filters.values()):
                raise ValueError
            for column, values in filters.items():
                sel = sel.with_filter(str(column), [str(v) for v in values])
        except ValueError:
            st.warning(f"Ignoring the link's filter={plain(raw)}: not a valid filter.")
    if params.get("q"):
        sel = Selection(name, sel.rows, sel.filters, str(params.get("q")))
    return sel


def current(name: str) -> Selection:
    """This session's selection in corpus ``name`` (from the link on a fresh session)."""
    held = st.session_state.setdefault(_STATE, {})
    if name not in held:
        held[name] = _from_url(name)
    return held[name]


def remember(sel: Selection) -> None:
    """Make ``sel`` this session's selection in its corpus, and put it in the URL."""
    st.session_state.setdefault(_STATE, {})[sel.corpus] = sel
    url = {
        "sel": None if sel.rows is None else store().save_selection(sel.corpus, sel.rows),
        "filter": json.dumps({c: list(v) for c, v in sel.filters}, ensure_ascii=False)
        if sel.filters
        else None,
        "q": sel.search or None,
    }
    for k, v in url.items():
        if v is None:
            st.query_params.pop(k, None)
        elif st.query_params.get(k) != v:
            st.query_params[k] = v


def clear(name: str) -> None:
    remember(Selection(name))


@st.cache_data(show_spinner=False, max_entries=64)
def _resolved(path: str, fp: str, sel_key: str, _sel: Selection, _texts, _metadata) -> np.ndarray:
    """Row ids of a selection, computed once per corpus version (``fp``) and selection (its
    digest ``sel_key``: the selection itself is not hashed)."""
    rows = resolve(_sel, _texts, _metadata)
    rows.flags.writeable = False
    return rows


def rows(name: str, texts, metadata, sel: Selection | None = None) -> np.ndarray | None:
    """The selected row ids in ``name`` (sorted), or None when the selection is every row."""
    sel = current(name) if sel is None else sel
    if sel.is_everything:
        return None
    s = store()
    return _resolved(str(s.path), s.corpus_fingerprint(name), sel.key, sel, texts, metadata)


def scope(name: str, texts, metadata, *, key: str = "scope") -> np.ndarray | None:
    """Draw what a page is scoped to (the selection made on the Map, or every row) with a button
    that clears it, and return the selected row ids (None: every row). A selection that no
    longer fits the corpus is cleared with a note."""
    sel = current(name)
    if sel.is_everything:
        return None
    try:
        picked = rows(name, texts, metadata, sel)
    except ExplorerError as exc:
        st.warning(plain(exc))
        clear(name)
        return None
    left, right = st.columns([5, 1], vertical_alignment="center")
    left.info(
        f"Scoped to the selection: {len(picked):,} of {len(texts):,} texts ({plain(sel.describe())}).",
        icon=":material/filter_alt:",
    )
    if right.button("Clear selection", key=f"{key}-clear"):
        clear(name)
        st.rerun()
    return picked
