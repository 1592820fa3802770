"""Outliers: the least representative texts, each with its nearest neighbours as evidence."""

import streamlit as st
from common import (
    csv_bytes,
    download,
    job_result,
    model_id,
    number_input,
    pick_corpus,
    plain,
    rule_value,
    set_url,
    slider,
    texts_and_metadata,
    vectors_or_stop,
)

from analytics.outliers import OutlierReport
from analytics.params import RULES
from analytics.results import from_bytes

#: how the page names each ranking (analytics/outliers.py explains them)
RANKINGS = {
    "local": "local depth (no near neighbours)",
    "global": "global depth (far from the corpus)",
    "combined": "combined (mean of both percentiles)",
}
SCORE_NAMES = {"local": "local depth", "global": "depth", "combined": "combined percentile"}


@st.cache_data(show_spinner=False, max_entries=8)
def read_report(payload: bytes) -> OutlierReport:
    return from_bytes(OutlierReport, payload)


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
by = st.radio(
    "Rank by",
    list(RANKINGS),
    index=list(RANKINGS).index(rule_value(rules["by"])),
    format_func=RANKINGS.get,
    key="outliers_by",
    horizontal=True,
    help="Local depth finds texts with no near neighbours, wherever they sit (stray queries among "
    "tight topics); global depth finds texts far from the corpus as a whole, including a small "
    "group of similar strays; combined needs both. The README's statistics section says more.",
)
set_url(by=by)
k = slider(rules["k"], label="Neighbours (local depth and evidence)")
# ranked by a background job (k nearest neighbours of every text: seconds to minutes), cached
# in the store under its inputs: leave the page and come back, and it is still there
request = {"corpus": name, "model_id": model_id(), "quantile": quantile, "count": count, "k": k, "by": by}
report = read_report(job_result("outliers", request, f"Finding the outliers of {name}"))
reviewed = st.session_state.setdefault("reviewed", {}).setdefault(name, set())
st.write(
    f"{len(report.flagged):,} outliers flagged by {RANKINGS[by]}, most outlying first; "
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
        "local depth": round(float(report.local_depths[i]), 5),
        "local percentile": round(float(report.local_percentiles[i]), 2),
        "knn rank": int(report.knn_rank[i]),
        "reviewed": i in reviewed,
        "text": texts[i],
        **metadata[i],
    }
    rows.append(row)
    score = f"{SCORE_NAMES[by]} {report.scores[i]:.4f}"
    label = f"#{rank + 1} · {score} · " + plain(" ".join(texts[i].split())[:90])
    with st.expander(label):
        st.text(texts[i])
        st.caption(
            f"global depth {row['depth']:.4f} (percentile {row['percentile']}) · local depth "
            f"{row['local depth']:.4f} (percentile {row['local percentile']}, k = {report.k}) · "
            f"k-NN isolation rank {row['knn rank']:,} of {len(texts):,}"
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
download(
    "Download outliers as CSV",
    csv_bytes(rows),
    "outliers.csv",
    "text/csv",
    what=f"outliers of corpus {name!r}",
)
