"""Retrieval: query the corpus by meaning (dense), by words (BM25) or both (hybrid), see hits on
the map, "more like this", and evaluation of the methods side by side."""

import streamlit as st
from common import (
    chart_subtitle,
    export_controls,
    fingerprint,
    get_embedder,
    model_id,
    pick_corpus,
    plain,
    rule_value,
    set_url,
    slider,
    store,
    texts_and_metadata,
    vectors_or_stop,
)

from analytics import ExplorerError
from analytics.evaluation import evaluate_methods, load_qrels, load_queries
from analytics.figures import map_figure
from analytics.params import RULES
from analytics.projection import corpus_projection
from analytics.retrieval import (
    BM25Index,
    ExactIndex,
    HybridIndex,
    more_like_this,
    query_settings,
    search_text,
)
from analytics.tables import metadata_columns


@st.cache_resource(show_spinner="Indexing…", max_entries=4)
def index_for(path, name, model, fp):
    from common import corpus_vectors

    return ExactIndex(corpus_vectors(path, name, model, fp))


@st.cache_resource(show_spinner="Indexing words…", max_entries=4)
def words_index_for(path, name, fp):
    from common import get_store, vector_cache

    return BM25Index(vector_cache().corpus(get_store(path), name)[0])


METHOD_NAMES = {"dense": "Dense", "bm25": "BM25", "hybrid": "Hybrid"}
SCORED_BY = {
    "dense": "cosine similarity of the embeddings",
    "bm25": "BM25 score (shared words, rare ones weigh most)",
    "hybrid": "fused score (dense and BM25, analytics/params.py: hybrid)",
}


def upload_format(file) -> str:
    """The upload's format from its name's suffix: the browser's name only picks the parser and
    never reaches the file system."""
    suffix = file.name.lower().rpartition(".")[2]
    return {"tsv": "tsv", "tab": "tsv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "jsonl"}.get(
        suffix, "csv"
    )


st.title("Retrieval")
name = pick_corpus()
vectors_or_stop(name)
texts, metadata = texts_and_metadata(name)
s = store()
index = index_for(str(s.path), name, model_id(), fingerprint(name))


def index_of(method: str):
    """The index a method searches; the word index is built only when a method needs it."""
    if method == "dense":
        return index
    words = words_index_for(str(s.path), name, fingerprint(name))
    return words if method == "bm25" else HybridIndex(index, words)


query_model, query_precision = query_settings(model_id())  # the corpus's own model and precision
embedder = get_embedder(query_model, "auto", query_precision)
# ranges, defaults and help: analytics/params.py
method_rule = RULES["retrieval"]["method"]
methods = list(method_rule.choices)
method = st.radio(
    "Method",
    methods,
    index=methods.index(rule_value(method_rule)),
    horizontal=True,
    format_func=METHOD_NAMES.get,
    key="retrieval_method",
    help=method_rule.help,
)
k = slider(RULES["retrieval"]["k"], label="Results", url=True)
set_url(method=method, k=k)
query = st.text_input("Query", placeholder="e.g. oil prices and the economy")
row = st.session_state.get("more_like_this", {}).get(name)
hits = None
if query.strip():
    hits = search_text(embedder, index_of(method), query, k)
    st.caption(f"Top {k} for the query, by {SCORED_BY[method]}.")
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
        'Upload queries (CSV: query-id, text; or BEIR JSONL: one {"_id", "text"} a line) and '
        'judgements (CSV/TSV: query-id, corpus-id, score; or JSONL: one {"query-id", '
        '"corpus-id", "score"} a line). Document ids come from a metadata column, or the '
        f"row number. Metrics at k = {k} (the Results slider), 10 and 100."
    )
    qfile = st.file_uploader("Queries", type=["csv", "jsonl"], key="eval_queries")
    jfile = st.file_uploader("Judgements", type=["csv", "tsv", "jsonl"], key="eval_qrels")
    id_col = st.selectbox("Document id column", ["row", *metadata_columns(metadata)])
    compared = st.multiselect(
        "Methods", methods, default=methods, format_func=METHOD_NAMES.get, key="eval_methods"
    )
    if qfile and jfile and compared and st.button("Evaluate"):
        try:
            queries = load_queries(qfile.getvalue(), format=upload_format(qfile))
            qrels = load_qrels(jfile.getvalue(), format=upload_format(jfile))
            doc_ids = [str(i) if id_col == "row" else str(m.get(id_col, "")) for i, m in enumerate(metadata)]
            rows = evaluate_methods(
                {METHOD_NAMES[m]: index_of(m) for m in compared},
                queries,
                qrels,
                doc_ids,
                embedder=embedder,
                k_values=(k, 10, 100),
            )
            st.dataframe(rows, hide_index=True)
        except ExplorerError as exc:
            st.error(plain(f"Could not evaluate: {exc}"))
