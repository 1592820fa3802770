"""Retrieval: query the corpus, see hits on the map, "more like this", and evaluation."""

import streamlit as st
from common import (
    chart_subtitle,
    export_controls,
    fingerprint,
    get_embedder,
    model_id,
    pick_corpus,
    plain,
    slider,
    store,
    texts_and_metadata,
    vectors_or_stop,
)

from analytics import ExplorerError
from analytics.embedding import model_source, resolve_model_device
from analytics.evaluation import evaluate, load_qrels, load_queries
from analytics.figures import map_figure
from analytics.params import RULES
from analytics.projection import corpus_projection
from analytics.retrieval import ExactIndex, more_like_this, search_text
from analytics.tables import metadata_columns


@st.cache_resource(show_spinner="Indexing…", max_entries=4)
def index_for(path, name, model, fp):
    from common import corpus_vectors

    return ExactIndex(corpus_vectors(path, name, model, fp))


st.title("Retrieval")
name = pick_corpus()
vectors_or_stop(name)
texts, metadata = texts_and_metadata(name)
s = store()
index = index_for(str(s.path), name, model_id(), fingerprint(name))
query_model, query_precision, _ = model_source(model_id())  # queries in the corpus's precision
if query_precision == "float16" and not resolve_model_device("auto").startswith("cuda"):
    query_precision = "float32"  # vectors made on a GPU, queried here: float32 agrees to 1e-4
embedder = get_embedder(query_model, "auto", query_precision)
k = slider(RULES["retrieval"]["k"], label="Results")  # range and default: analytics/params.py
query = st.text_input("Query", placeholder="e.g. oil prices and the economy")
row = st.session_state.get("more_like_this", {}).get(name)
hits = None
if query.strip():
    hits = search_text(embedder, index, query, k)
    st.caption(f"Top {k} for the query, by cosine similarity.")
elif row is not None:
    hits = more_like_this(index, row, k)
    st.caption(f"More like row {row}:")
    st.text(texts[row])
if hits is not None:
    ids = hits.ids[0]
    st.dataframe(
        [
            {"rank": r + 1, "row": int(i), "score": round(float(sc), 4), "text": texts[i], **metadata[i]}
            for r, (i, sc) in enumerate(zip(ids, hits.scores[0]))
        ],
        hide_index=True,
        width="stretch",
    )
    pick = st.selectbox(
        "More like this",
        [int(i) for i in ids],
        format_func=lambda i: f"row {i}: " + " ".join(texts[i].split())[:80],
    )
    if st.button("Find texts like this one"):
        st.session_state.setdefault("more_like_this", {})[name] = pick
        st.session_state.pop("query", None)
        st.rerun()
    try:
        proj = corpus_projection(s, name, model_id(), "pca")
    except ExplorerError as exc:  # too few texts for a map: the results above still stand
        st.warning(plain(f"No results map: {exc}"))
    else:
        hits_map = map_figure(
            proj.coords,
            texts,
            highlight=ids,
            title=f"{name}: results on the map",
            subtitle=chart_subtitle(name, len(texts), proj.describe()),
        )
        st.plotly_chart(hits_map, width="stretch")
        export_controls(hits_map, f"{name}-results-map", "retrieval-export")

with st.expander("Evaluate with relevance judgements"):
    st.caption(
        "Upload queries (CSV: query-id, text) and judgements (CSV/TSV: query-id, corpus-id, "
        "score). Document ids come from a metadata column, or the row number."
    )
    qfile = st.file_uploader("Queries", type=["csv"], key="eval_queries")
    jfile = st.file_uploader("Judgements", type=["csv", "tsv"], key="eval_qrels")
    id_col = st.selectbox("Document id column", ["row", *metadata_columns(metadata)])
    if qfile and jfile and st.button("Evaluate"):
        try:
            queries = load_queries(qfile.getvalue())
            # the browser's file name only picks the delimiter; it never reaches the file system
            qrels = load_qrels(
                jfile.getvalue(), format="tsv" if jfile.name.lower().endswith((".tsv", ".tab")) else "csv"
            )
            doc_ids = [str(i) if id_col == "row" else str(m.get(id_col, "")) for i, m in enumerate(metadata)]
            qids = list(queries)
            res = index.search(embedder.encode([queries[q] for q in qids]), 100)
            run = {q: [doc_ids[i] for i in r] for q, r in zip(qids, res.ids)}
            st.dataframe([evaluate(run, qrels, k_values=(10, 100))], hide_index=True)
        except ExplorerError as exc:
            st.error(plain(f"Could not evaluate: {exc}"))
