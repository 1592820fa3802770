"""Embedding Explorer: Streamlit entry point (``streamlit run dashboard/app.py``).

Pages are thin: read state, call one analytics function, draw.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "ag_news.csv"

st.set_page_config(page_title="Embedding Explorer", layout="wide")


@st.cache_data
def sample_overview(path: str) -> dict[str, int]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        counts: dict[str, int] = {}
        for row in csv.DictReader(f):
            counts[row["label"]] = counts.get(row["label"], 0) + 1
    return counts


def home() -> None:
    st.title("Embedding Explorer")
    st.write(
        "Upload a corpus, embed it, and explore it: a 2D map, TTE depth (most representative "
        "first, outliers last), a shift test between two corpora, and a retrieval playground."
    )
    counts = sample_overview(str(SAMPLE))
    st.subheader("Bundled sample: AG News (test split)")
    st.metric("Texts", f"{sum(counts.values()):,}")
    st.dataframe({"label": list(counts), "texts": list(counts.values())}, hide_index=True)
    st.info("The Upload, Embed, Map, Depth, Shift test and Retrieval pages are on their way.")


st.navigation([st.Page(home, title="Home", icon=":material/home:", default=True)]).run()
