"""Depth: texts ranked from most representative to most outlying."""

import streamlit as st
from common import (
    chart_subtitle,
    depths,
    export_controls,
    pick_corpus,
    set_url,
    store,
    texts_and_metadata,
    url_param,
)

from analytics import median_index
from analytics.figures import depth_histogram
from analytics.tables import depth_csv, depth_rows, label_summary, metadata_columns

#: a corpus up to this many texts is tabled whole; a larger one shows its two ends (the CSV has all)
TABLE_ALL, TABLE_END = 10_000, 1_000

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
st.dataframe(
    rows,
    hide_index=True,
    width="stretch",
    column_config={"depth": st.column_config.NumberColumn(format="%.4f")},
)
st.download_button(
    "Download CSV",
    lambda: depth_csv(texts, metadata, d),  # built on click, not on every run
    file_name=f"depth-{distance}.csv",
    mime="text/csv",
)
cols = metadata_columns(metadata)
label = store().corpus_info(name).label_column
if cols:
    col = st.selectbox("Depth by", cols, index=cols.index(label) if label in cols else 0)
    st.dataframe(label_summary(metadata, d, col), hide_index=True, width="stretch")
