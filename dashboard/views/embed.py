"""Embed: only texts not already cached are embedded, in a background job that outlives the
page; its progress, speed, and a Cancel button."""

import signin
import streamlit as st
from common import executor, follow_job, job_outcome, pick_corpus, plain, requester, store

from analytics import ExplorerError
from analytics.embedding import embedding_key, resolve_model_device, stored_model_id
from analytics.inference import resolve_precision

st.title("Embed")
s = store()
name = pick_corpus()
model = (
    st.text_input(
        "Model",
        value="",
        placeholder="bundled all-MiniLM-L6-v2",
        help="A local sentence-transformers folder or a model in the local cache. Nothing is downloaded.",
    )
    or None
)
col_d, col_p = st.columns(2)
device = col_d.selectbox("Device", ["auto", "cpu", "cuda", "mps"])
precision = col_p.selectbox(
    "Precision",
    ["auto", "float32", "bfloat16", "float16"],
    help="auto: float16 on a GPU, bfloat16 on a CPU with native bf16 "
    "instructions, else float32 (cosine >= 0.9999 to float32). "
    "Each precision is stored under its own key, never mixed.",
)
try:
    found = resolve_model_device(device)
    st.caption(f"auto finds: {found} · {resolve_precision(precision, found)}")
    mid = embedding_key(model, device=device, precision=precision)
    if precision == "auto":  # vectors of this model in any precision already cover the corpus
        mid = stored_model_id(s, name, model) or mid
except ExplorerError as exc:
    st.error(plain(exc))
    st.stop()
n_docs = s.corpus_info(name).n_docs
done = s.embedded_count(name, mid)
# the embedding runs as a background job: it goes on when this page is left or reloaded, and
# this page (in any session) finds it again by what it computes
request = {"corpus": name, "model": model, "device": device, "precision": precision}
ex = executor()
job = ex.find("embed", request)
if job is None or not job.active:  # while a job runs, its panel counts instead
    st.metric("Already embedded", f"{done:,} of {n_docs:,}")
if job is not None and job.active:
    st.session_state["model_id"] = job.params["model_id"]
    follow_job(job, f"Embedding {name}")
elif done >= n_docs:
    st.session_state["model_id"] = mid
    if job is not None and job.state == "done" and job.message != "already computed":
        st.caption(plain(job.message))
    st.success(f"Every text is embedded ({plain(mid)}). Open the Map, Depth or Shift pages.")
else:
    job_outcome(job)
    if st.button("Embed", type="primary", help="Runs in the background; you can leave this page."):
        try:
            with signin.acting("embed", f"corpus {name!r}", store=s):
                job = ex.submit("embed", request, requested_by=requester())
        except ExplorerError as exc:
            st.error(plain(exc))
            st.stop()
        st.session_state["model_id"] = job.params["model_id"]
        st.rerun()
