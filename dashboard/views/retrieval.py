"""Retrieval: query the corpus by meaning (dense), by words (BM25) or both (hybrid), see the hits
on the analyst's own map (the one the Map page drew, from the store's cache: this page computes
no map), "more like this" on any hit, make the hits the session's selection, and evaluate the
methods side by side."""

import hashlib

import selection
import streamlit as st
from common import (
    LazyFigure,
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
from scatter import encode_labels, scatter_map

from analytics import ExplorerError
from analytics.evaluation import evaluate_methods, load_qrels, load_queries
from analytics.figures import map_figure
from analytics.params import RULES
from analytics.projection import cached_projection, projection_request
from analytics.retrieval import (
    BM25Index,
    ExactIndex,
    HybridIndex,
    more_like_this,
    query_settings,
    search_text,
)
from analytics.selection import Selection
from analytics.tables import metadata_columns

MAP_HEIGHT = 450


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


def analysts_map(s, name: str, model: str):
    """The map the analyst built on the Map page for this corpus, from the store's cache:
    this session's method and parameters (and other corpora drawn with it), else the default
    method's map. Returns (projection, request) or (None, None): this page computes no map."""
    default = RULES["projection"]["method"].default
    method = st.session_state.get("map_method") or default
    params = {
        "umap": {"n_neighbors": "map_n_neighbors", "min_dist": "map_min_dist"},
        "tsne": {"perplexity": "map_perplexity"},
    }.get(method, {})
    params = {p: st.session_state[key] for p, key in params.items() if key in st.session_state}
    others = tuple(st.session_state.get("map_others") or ())
    wanted = [(method, params, others), (method, params, ()), (default, {}, ())]
    for m, p, o in dict.fromkeys((m, tuple(sorted(p.items())), o) for m, p, o in wanted):
        try:
            request = projection_request(s, name, model, m, others=o, **dict(p))
        except ExplorerError:  # a parameter or corpus that no longer fits: try the next
            continue
        proj = cached_projection(s, request)
        if proj is not None:
            return proj, request
    return None, None


@st.cache_data(show_spinner=False, max_entries=8)
def label_codes(path: str, name: str, fp: str, column: str):
    """The label column as the map colours it, once per corpus version (``fp``)."""
    from common import get_store, vector_cache

    return encode_labels(vector_cache().corpus(get_store(path), name)[1].column(column, None))


def draw_on_analysts_map(ids: list[int], scores: dict[int, float], what: str, stem: str) -> None:
    """The hits, highlighted on the analyst's own map (WebGL), coloured by the corpus's label."""
    proj, request = analysts_map(s, name, model_id())
    if proj is None:
        st.info(
            "There is no map of this corpus yet, so the results are not drawn on one: this page "
            "computes no map. Open the Map page to draw it; the results above do not need it."
        )
        st.page_link("views/map.py", label="Go to the Map", icon=":material/scatter_plot:")
        return
    coords = proj.coords[: len(texts)]  # on a joint map, this corpus's rows come first
    label = s.corpus_info(name).label_column
    colour = {}
    if label and label in metadata_columns(metadata):
        codes, categories = label_codes(str(s.path), name, fingerprint(name), label)
        colour = {"codes": codes, "categories": categories}
    rank = {i: r + 1 for r, i in enumerate(ids)}

    def hover(i: int) -> dict:
        md = metadata[i]
        out = {"text": texts[i]}
        if i in rank:
            out["rank"] = f"{rank[i]} (score {scores[i]:.4f})"
        if label in md:
            out[label] = md[label]
        out.update((c, v) for c, v in md.items() if c not in ("text", label))
        return out

    drawn = f"{request.method.upper()} map" + (
        " (drawn with " + ", ".join(request.others) + ")" if request.others else ""
    )
    title = f"{name}: {what} on the {drawn}"
    subtitle = chart_subtitle(name, len(texts), proj.describe())
    st.caption(plain(f"{subtitle} · the map from the Map page, {len(ids)} hits highlighted"))
    scatter_map(
        coords,
        **colour,
        highlight=ids,
        highlight_name="hits",
        hover=hover,
        title=title,
        height=MAP_HEIGHT,
        key="retrieval-map-" + hashlib.blake2b(request.key.encode(), digest_size=8).hexdigest(),
    )

    def figure():
        color = metadata.column(label, "") if colour else None
        return map_figure(
            coords, texts, color=color, color_name=label or "", highlight=ids, title=title, subtitle=subtitle
        )

    stem = f"{name}-{stem}-{request.method}-map"
    export_controls(LazyFigure(figure), stem, "retrieval-export")


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


def query_embedder(methods=None):
    """The model that embeds queries, loaded only when a method needs it (BM25 and "more like
    this" search without it)."""
    if methods is not None and set(methods) <= {"bm25"}:
        return None
    return get_embedder(query_model, "auto", query_precision)


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

# "More like this" takes over from the query until the query is changed; its button empties
# the query box (a callback: it runs before the box is drawn) and keeps the query to go back to
MORE = "more_like_this"  # corpus -> the row whose neighbours are shown
QUERY = "retrieval_query"


def more_like(row: int) -> None:
    st.session_state.setdefault(MORE, {})[name] = int(row)
    if st.session_state.get(QUERY, "").strip():  # from the query's results (not from another row's)
        st.session_state["retrieval_last_query"] = st.session_state[QUERY]
    st.session_state[QUERY] = ""


def back_to_query() -> None:
    st.session_state.get(MORE, {}).pop(name, None)
    st.session_state[QUERY] = st.session_state.get("retrieval_last_query", "")


def query_changed() -> None:
    st.session_state.get(MORE, {}).pop(name, None)


query = st.text_input(
    "Query", placeholder="e.g. oil prices and the economy", key=QUERY, on_change=query_changed
)
row = st.session_state.get(MORE, {}).get(name)
if row is not None and not 0 <= row < len(texts):  # a row of an older version of the corpus
    st.session_state[MORE].pop(name)
    row = None
hits, what, stem = None, "", ""
if row is not None:
    hits = more_like_this(index, row, k)
    what, stem = f"more like row {row}", f"like-row-{row}"
    st.caption(f"The {k} texts most like row {row} (cosine similarity of the embeddings):")
    st.text(texts[row])
    last = st.session_state.get("retrieval_last_query", "")
    st.button(
        f"Back to the results for “{plain(last)}”" if last else "Back to the query",
        on_click=back_to_query,
        key="retrieval-back",
    )
elif query.strip():
    hits = search_text(query_embedder([method]), index_of(method), query, k)
    what, stem = f"results for {query.strip()!r}", "-".join(query.split())[:60]
    st.caption(f"Top {k} for the query, by {SCORED_BY[method]}.")

if hits is not None:
    ids = [int(i) for i in hits.ids[0]]
    scores = {int(i): float(sc) for i, sc in zip(hits.ids[0], hits.scores[0], strict=True)}
    st.dataframe(
        [
            {"rank": r + 1, "row": i, "score": round(scores[i], 4), "text": texts[i], **metadata[i]}
            for r, i in enumerate(ids)
        ],
        hide_index=True,
        width="stretch",
    )
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    pick = left.selectbox(
        "More like this",
        ids,
        format_func=lambda i: f"row {i}: " + " ".join(texts[i].split())[:80],
        key=f"retrieval-pick-{name}",
    )
    right.button("Find texts like this one", on_click=more_like, args=(pick,), key="retrieval-more")
    if st.button(
        f"Select these {len(ids)} hits",
        key="retrieval-select",
        help="Make them the selection that the Map, Depth, Outliers, Shift and Report pages act on.",
    ):
        selection.remember(Selection(name).with_rows(ids))
        st.success(f"The selection is now these {len(ids)} texts; the other pages act on them.")
        st.page_link("views/map.py", label="See them on the Map", icon=":material/scatter_plot:")
    draw_on_analysts_map(ids, scores, what, stem)

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
                embedder=query_embedder(compared),
                k_values=(k, 10, 100),
            )
            st.dataframe(rows, hide_index=True)
        except ExplorerError as exc:
            st.error(plain(f"Could not evaluate: {exc}"))
