"""Depth: texts ranked from most representative to most outlying; of the session's selection
when there is one (depth within the selection, or the corpus's depth of the selected texts)."""

import selection
import streamlit as st
from common import (
    chart_subtitle,
    corpus_vectors,
    csv_bytes,
    depths,
    distance_radio,
    download,
    export_controls,
    fingerprint,
    model_id,
    number_input,
    pick_corpus,
    slider,
    store,
    texts_and_metadata,
)

from analytics import median_index, tte_depth
from analytics.figures import depth_histogram
from analytics.params import RULES
from analytics.representatives import pick_representatives
from analytics.selection import rows_key as rows_key_of
from analytics.tables import depth_csv, depth_rows, label_summary, metadata_columns

#: a corpus up to this many texts is tabled whole; a larger one shows its two ends (the CSV has all)
TABLE_ALL, TABLE_END = 10_000, 1_000
DEPTH_FORMAT = {"depth": st.column_config.NumberColumn(format="%.4f")}

st.title("Depth")
name = pick_corpus()
distance = distance_radio()
d = depths(name, distance)
texts, metadata = texts_and_metadata(name)
full_texts, full_metadata = texts, metadata
picked = selection.scope(name, texts, metadata, key="depth-scope")
row_ids = None
title = f"{name}: TTE depth ({distance})"


@st.cache_data(show_spinner="Computing the depth of the selection…", max_entries=16)
def selection_depth(path: str, name: str, fp: str, model: str, _rows, rows_key: str, distance: str):
    """TTE depth of the selected texts with respect to the selection itself (its own median
    and outliers), cached by corpus version and selection."""
    X = corpus_vectors(path, name, model)
    return tte_depth(X[_rows], distance=distance)


if picked is not None:
    if len(picked) < 2:
        st.warning("Select at least two texts to rank them by depth; showing the whole corpus.")
    else:
        within = st.radio(
            "Depth within",
            ["the selection", "the whole corpus"],
            horizontal=True,
            key="depth_within",
            persist_state="session",
            help="Within the selection: how central each selected text is among the selected texts "
            "(the selection's own median and outliers). Within the whole corpus: each selected "
            "text's depth in the corpus, ranked.",
        )
        if within == "the selection":
            rows_key = rows_key_of(picked)
            d = selection_depth(
                str(store().path), name, fingerprint(name), model_id(), picked, rows_key, distance
            )
            title = f"{name}, {len(picked):,} selected texts: TTE depth within the selection ({distance})"
        else:
            d = d[picked]
            title = f"{name}, {len(picked):,} selected texts: TTE depth in the corpus ({distance})"
        texts = [full_texts[i] for i in picked.tolist()]
        metadata = [full_metadata[i] for i in picked.tolist()]
        row_ids = picked
med = median_index(d)

whole = "selection" if row_ids is not None else "corpus"
st.subheader(f"The median text: the most representative of the {whole}")
box = st.container(border=True)
box.text(texts[med])
box.caption(f"depth {d[med]:.4f} · row {med if row_ids is None else int(row_ids[med])}")
hist = depth_histogram(
    d,
    title=title,
    subtitle=chart_subtitle(name, len(d)),
    median_depth=float(d[med]),
)
st.plotly_chart(hist, width="stretch")
export_controls(hist, f"{name}-depth", "depth-export")
n = len(d)
st.subheader("All texts, most representative first")
if n > TABLE_ALL:
    rows = depth_rows(texts, metadata, d, head=TABLE_END, tail=TABLE_END, row_ids=row_ids)
    st.caption(
        f"Showing the {TABLE_END:,} most representative and the {TABLE_END:,} most outlying of "
        f"{n:,} texts; the CSV has every one."
    )
else:
    rows = depth_rows(texts, metadata, d, row_ids=row_ids)
st.dataframe(rows, hide_index=True, width="stretch", column_config=DEPTH_FORMAT)
scope_name = "" if row_ids is None else "-selection"
download(
    "Download CSV",
    lambda: depth_csv(texts, metadata, d, row_ids=row_ids),  # built on click, not on every run
    f"{name}{scope_name}-depth-{distance}.csv",
    "text/csv",
    what=f"depth table of corpus {name!r}"
    + ("" if row_ids is None else f" ({len(row_ids):,} selected texts)"),
)
cols = metadata_columns(full_metadata)
label = store().corpus_info(name).label_column
if cols:
    col = st.selectbox("Depth by", cols, index=cols.index(label) if label in cols else 0)
    st.dataframe(label_summary(metadata, d, col), hide_index=True, width="stretch")


@st.cache_data(show_spinner="Picking representative texts…", max_entries=32)
def representatives(
    name: str, fp: str, model: str, column, k: int, method: str, spread: float, distance: str, _rows, rows_key
):
    """The picks (small: indices, labels, depths), cached by the corpus fingerprint ``fp``, the
    selection (``rows_key``) and every parameter; the vectors come from the process's shared
    cache. Indices are into the selection's rows when there is one."""
    labels = None if column is None else texts_and_metadata(name)[1].column(column)
    X = corpus_vectors(str(store().path), name, model)
    if _rows is not None:
        X = X[_rows]
        labels = None if labels is None else [labels[i] for i in _rows.tolist()]
    return pick_representatives(
        X, k, labels=labels, method=method, max_similarity=spread, distance=distance, random_state=0
    )


REPS = RULES["representatives"]
st.subheader("Representative examples")
st.caption(
    "k texts of each label (or of the whole corpus), e.g. few-shot examples for a prompt: the "
    "deepest within the label (most typical; near-copies passed over), the text nearest each "
    "k-means centre (covers the label's modes), or a random draw (the baseline). Seeds are fixed. "
    "Measured (BENCHMARKS.md): depth gives the best single example; medoids make better sets "
    "of several."
)
left, mid, right = st.columns(3)
reps_k = number_input(REPS["k"], label="k per group", key="reps_k", container=left)
reps_method = mid.radio(
    "Picked by", REPS["method"].choices, horizontal=True, key="reps_method", help=REPS["method"].help
)
groups = [None, *cols]
per = right.selectbox(
    "Per",
    groups,
    index=groups.index(label) if label in cols else 0,
    format_func=lambda c: "the whole corpus" if c is None else c,
    key="reps_per",
)
spread = REPS["max_similarity"].default
if reps_method == "depth":
    spread = slider(
        REPS["max_similarity"], label="Pass over picks more similar than (cosine)", key="reps_spread"
    )
reps = representatives(
    name,
    fingerprint(name),
    model_id(),
    per,
    reps_k,
    reps_method,
    spread,
    distance,
    row_ids,
    None if row_ids is None else rows_key_of(row_ids),
)
rows = reps.rows(texts)
if row_ids is not None:
    rows = [{**r, "row": int(row_ids[r["row"]])} for r in rows]
if per is None:
    rows = [{k: v for k, v in r.items() if k != "label"} for r in rows]
else:  # the label column under its own name (unless that is one of the table's)
    head = f"{per} (label)" if per in ("rank", "row", "depth", "text") else per
    rows = [{head if k == "label" else k: v for k, v in r.items()} for r in rows]
st.dataframe(rows, hide_index=True, width="stretch", column_config=DEPTH_FORMAT)
download(
    "Download CSV",
    csv_bytes(rows),
    f"{name}{scope_name}-representatives-{reps_method}-k{reps_k}.csv",
    "text/csv",
    what=f"representatives of corpus {name!r}",
    key="reps_csv",
)
