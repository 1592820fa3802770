"""Outliers: the least representative texts, each with its nearest neighbours as evidence."""

import streamlit as st
from common import (
    csv_bytes,
    fingerprint,
    model_id,
    number_input,
    pick_corpus,
    plain,
    slider,
    store,
    texts_and_metadata,
    vectors_or_stop,
)

from analytics.outliers import find_outliers
from analytics.params import RULES


@st.cache_data(show_spinner="Finding outliers…", max_entries=8)
def outliers(path, name, model, fp, quantile, count, k):
    from common import corpus_vectors

    return find_outliers(corpus_vectors(path, name, model, fp), quantile=quantile, count=count, k=k)


st.title("Outliers")
name = pick_corpus()
vectors_or_stop(name)
texts, metadata = texts_and_metadata(name)
mode = st.radio("Threshold", ["lowest share", "lowest count"], horizontal=True)
rules = RULES["outliers"]  # ranges, defaults and help: analytics/params.py
if mode == "lowest share":
    quantile, count = slider(rules["quantile"], label="Share of the corpus (%)", scale=100), None
else:
    quantile, count = None, number_input(rules["count"], label="Number of texts")
k = slider(rules["k"], label="Neighbours shown")
report = outliers(str(store().path), name, model_id(), fingerprint(name), quantile, count, k)
reviewed = st.session_state.setdefault("reviewed", {}).setdefault(name, set())
st.write(
    f"{len(report.flagged):,} outliers flagged, most outlying first; "
    f"{len(reviewed & set(report.flagged.tolist())):,} marked reviewed."
)
rows = []
for rank, i in enumerate(report.flagged[:200]):
    i = int(i)
    row = {
        "rank": rank + 1,
        "row": i,
        "depth": round(float(report.depths[i]), 5),
        "percentile": round(float(report.percentiles[i]), 2),
        "knn rank": int(report.knn_rank[i]),
        "reviewed": i in reviewed,
        "text": texts[i],
        **metadata[i],
    }
    rows.append(row)
    label = f"#{rank + 1} · depth {row['depth']:.4f} · " + plain(" ".join(texts[i].split())[:90])
    with st.expander(label):
        st.text(texts[i])
        st.caption(
            f"depth percentile {row['percentile']} · k-NN isolation rank {row['knn rank']:,} of {len(texts):,}"
        )
        st.dataframe(
            [
                {"neighbour": int(j), "similarity": round(float(sim), 4), "text": texts[j]}
                for j, sim in zip(report.neighbours[rank], report.neighbour_similarity[rank])
            ],
            hide_index=True,
            width="stretch",
        )
        if st.checkbox("Reviewed", value=i in reviewed, key=f"rev-{name}-{i}"):
            reviewed.add(i)
        else:
            reviewed.discard(i)
st.download_button("Download outliers as CSV", csv_bytes(rows), file_name="outliers.csv", mime="text/csv")
