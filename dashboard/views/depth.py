"""Depth: texts ranked from most representative to most outlying."""

import streamlit as st
from common import (
    chart_subtitle,
    corpus_vectors,
    csv_bytes,
    depths,
    download,
    export_controls,
    fingerprint,
    model_id,
    number_input,
    pick_corpus,
    set_url,
    slider,
    store,
    texts_and_metadata,
    url_param,
)

from analytics import median_index
from analytics.figures import depth_histogram
from analytics.params import RULES
from analytics.representatives import pick_representatives
from analytics.tables import depth_csv, depth_rows, label_summary, metadata_columns

#: a corpus up to this many texts is tabled whole; a larger one shows its two ends (the CSV has all)
TABLE_ALL, TABLE_END = 10_000, 1_000
DEPTH_FORMAT = {"depth": st.column_config.NumberColumn(format="%.4f")}

st.title("Depth")
name = pick_corpus()
distance = st.radio(
    "Distance",
    ["cosine", "chord"],
    horizontal=True,
    index=1 if url_param("distance", "cosine") == "chord" else 0,
)
set_url(distance=distance)
d = depths(name, distance)
texts, metadata = texts_and_metadata(name)
med = median_index(d)

st.subheader("The median text: the most representative of the corpus")
box = st.container(border=True)
box.text(texts[med])
box.caption(f"depth {d[med]:.4f} · row {med}")
hist = depth_histogram(
    d,
    title=f"{name}: TTE depth ({distance})",
    subtitle=chart_subtitle(name, len(d)),
    median_depth=float(d[med]),
)
st.plotly_chart(hist, width="stretch")
export_controls(hist, f"{name}-depth", "depth-export")
n = len(d)
st.subheader("All texts, most representative first")
if n > TABLE_ALL:
    rows = depth_rows(texts, metadata, d, head=TABLE_END, tail=TABLE_END)
    st.caption(
        f"Showing the {TABLE_END:,} most representative and the {TABLE_END:,} most outlying of "
        f"{n:,} texts; the CSV has every one."
    )
else:
    rows = depth_rows(texts, metadata, d)
st.dataframe(rows, hide_index=True, width="stretch", column_config=DEPTH_FORMAT)
download(
    "Download CSV",
    lambda: depth_csv(texts, metadata, d),  # built on click, not on every run
    f"depth-{distance}.csv",
    "text/csv",
    what=f"depth table of corpus {name!r}",
)
cols = metadata_columns(metadata)
label = store().corpus_info(name).label_column
if cols:
    col = st.selectbox("Depth by", cols, index=cols.index(label) if label in cols else 0)
    st.dataframe(label_summary(metadata, d, col), hide_index=True, width="stretch")


@st.cache_data(show_spinner="Picking representative texts…", max_entries=32)
def representatives(
    name: str, fp: str, model: str, column, k: int, method: str, spread: float, distance: str
):
    """The picks (small: indices, labels, depths), cached by the corpus fingerprint ``fp`` and
    every parameter; the vectors come from the process's shared cache."""
    labels = None if column is None else texts_and_metadata(name)[1].column(column)
    X = corpus_vectors(str(store().path), name, model)
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
reps = representatives(name, fingerprint(name), model_id(), per, reps_k, reps_method, spread, distance)
rows = reps.rows(texts)
if per is None:
    rows = [{k: v for k, v in r.items() if k != "label"} for r in rows]
else:  # the label column under its own name (unless that is one of the table's)
    head = f"{per} (label)" if per in ("rank", "row", "depth", "text") else per
    rows = [{head if k == "label" else k: v for k, v in r.items()} for r in rows]
st.dataframe(rows, hide_index=True, width="stretch", column_config=DEPTH_FORMAT)
download(
    "Download CSV",
    csv_bytes(rows),
    f"representatives-{reps_method}-k{reps_k}.csv",
    "text/csv",
    what=f"representatives of corpus {name!r}",
    key="reps_csv",
)
