"""Home: what this is, and on first start the bundled sample, stored with its shipped vectors
and default map (analytics/sample.py), so its map opens at once; embedded here only where the
vectors are missing."""

import signin
import streamlit as st
from common import executor, first_start_sample, follow_job, job_outcome, plain, store

from analytics.embedding import DEFAULT_MODEL, stored_model_id
from analytics.sample import SAMPLE_NAME

st.title("Embedding Explorer")
st.write(
    "Understand a corpus through its text embeddings: a 2D map, TTE depth (most "
    "representative first, outliers last), a shift test between two corpora, and a "
    "retrieval playground."
)

s = store()
first_start_sample(s)  # with its precomputed vectors and map, as any page's first open would
info = s.list_corpora()
sample = next((c for c in info if c.name == SAMPLE_NAME), None)
# the shipped vectors (and map) are the bundled model's float32 ones: when they are all there,
# the pages use that key without asking which precision this machine would embed in (that
# question loads torch, a second of a first start)
shipped = sample is not None and s.embedded_count(SAMPLE_NAME, DEFAULT_MODEL) >= sample.n_docs
if shipped:
    st.session_state.setdefault("model_id", DEFAULT_MODEL)
if sample is not None and not shipped and stored_model_id(s, SAMPLE_NAME) is None and signin.can("embed"):
    st.subheader("First start: embedding the bundled sample")
    job = executor().submit("embed", {"corpus": SAMPLE_NAME}, requested_by="first start")
    if job.active:
        follow_job(job, f"Embedding {SAMPLE_NAME}")
    else:
        job_outcome(job)

st.subheader("Corpora in this workspace" if signin.instance() else "Corpora in this store")
st.dataframe(
    [{"name": c.name, "texts": c.n_docs, "source": c.source, "created": c.created} for c in s.list_corpora()],
    hide_index=True,
    width="stretch",
)
if signin.instance() is None:  # a team's server keeps its file paths to itself
    st.caption(f"Store: {plain(s.path)}")
col1, col2, col3 = st.columns(3)
col1.page_link("views/map.py", label="See the map", icon=":material/scatter_plot:")
col2.page_link("views/depth.py", label="Rank by depth", icon=":material/stacked_bar_chart:")
col3.page_link("views/shift.py", label="Test for a shift", icon=":material/compare_arrows:")
