"""Embed: only texts not already cached are embedded, in a background job that outlives the
page. Before: what it will do (rows, distinct texts, already cached, to embed) and how long it
should take at the speed measured on this server. During: its progress, speed, and a Cancel
button. After: the final count, and the page says so by itself."""

import signin
import streamlit as st
from common import (
    executor,
    fingerprint,
    follow_job,
    get_store,
    job_outcome,
    pick_corpus,
    plain,
    requester,
    store,
    vector_cache,
)

from analytics import ExplorerError
from analytics.embedding import embedding_key, resolve_model_device, stored_model_id
from analytics.inference import resolve_precision
from analytics.jobs import EmbedEstimate, embed_estimate


@st.cache_data(show_spinner=False, max_entries=16)
def distinct_line(path: str, name: str, fp: str) -> str:
    """Rows against distinct texts, once per corpus version (``fp``): the model embeds each
    distinct text once, so a progress count of texts can be lower than the rows."""
    texts = vector_cache().corpus(get_store(path), name)[0]
    rows, distinct = len(texts), len(set(texts))
    if rows == distinct:
        return f"{rows:,} rows, every text distinct."
    return f"{rows:,} rows, {distinct:,} distinct texts: repeated texts are embedded once."


@st.cache_data(show_spinner="Counting the texts to embed…", max_entries=16, ttl=60)
def estimate_for(path: str, name: str, fp: str, model: str, device: str, done: int) -> EmbedEstimate:
    """What embedding will do and take (analytics.jobs.embed_estimate), once per corpus
    version, model, device and count already embedded."""
    s = get_store(path)
    return embed_estimate(s, name, model, device, texts=vector_cache().corpus(s, name)[0])


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
rows_line = distinct_line(str(s.path), name, fingerprint(name))
# the embedding runs as a background job: it goes on when this page is left or reloaded, and
# this page (in any session) finds it again by what it computes; when it ends, the page runs
# again (dashboard/common.py: follow_job) and shows the final count, without a Cancel button
request = {"corpus": name, "model": model, "device": device, "precision": precision}
ex = executor()
job = ex.find("embed", request)
if job is not None and job.active:
    st.session_state["model_id"] = job.params["model_id"]
    st.caption(plain(rows_line))
    follow_job(job, f"Embedding {name}")
elif done >= n_docs:
    st.session_state["model_id"] = mid
    st.metric("Embedded", f"{done:,} of {n_docs:,} rows")
    st.caption(plain(rows_line))
    if job is not None and job.state == "done" and job.message != "already computed":
        st.caption(plain(job.message))
    st.success(f"Every text is embedded ({plain(mid)}). Open the Map, Depth or Shift pages.")
else:
    st.metric("Already embedded", f"{done:,} of {n_docs:,} rows")
    estimate = estimate_for(str(s.path), name, fingerprint(name), mid, found, done)
    st.info(plain(estimate.describe()), icon=":material/schedule:")
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
