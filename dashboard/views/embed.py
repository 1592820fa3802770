"""Embed: only texts not already cached are embedded; progress, speed, and a stop button."""

import time

import streamlit as st
from common import get_embedder, pick_corpus, plain, store

from analytics import ExplorerError, ModelError, embed_corpus
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
st.metric("Already embedded", f"{done:,} of {n_docs:,}")

if st.button("Embed", type="primary", disabled=done >= n_docs):
    try:
        embedder = get_embedder(model, device, precision)
    except ModelError as exc:
        st.error(plain(exc))
        st.stop()
    st.session_state["model_id"] = embedder.model_id
    st.button("Stop", help="Stops after the batch in flight; what is embedded is kept.")
    bar = st.progress(0.0, text="Starting…")
    t0 = time.perf_counter()

    def progress(d: int, t: int) -> None:
        rate = d / max(time.perf_counter() - t0, 1e-9)
        eta = (t - d) / rate if rate > 0 else float("inf")
        bar.progress(d / max(t, 1), text=f"{d:,} of {t:,} texts · {rate:,.0f} texts/s · ETA {eta:,.0f} s")

    report = embed_corpus(s, name, embedder, progress=progress)
    st.success(plain(report.summary()))
elif done >= n_docs:
    st.session_state["model_id"] = mid
    st.success(f"Every text is embedded ({plain(mid)}). Open the Map, Depth or Shift pages.")
