"""Map: a 2D projection drawn with WebGL (dashboard/scatter.py), coloured by label, depth or
metadata; hover for a text, click for its nearest neighbours, box or lasso to select texts.

Of what a user does on the map, only a box or lasso reruns this page (with the selected row
ids); pan, zoom and the legend stay in the browser, and a hover or click asks Python for one
row through a fragment. The plotly figure of
the same map is built only for the PNG/SVG export, when that is asked for.
"""

import hashlib

import numpy as np
import streamlit as st
from common import (
    chart_subtitle,
    corpus_vectors,
    depths,
    export_controls,
    fingerprint,
    get_store,
    job_result,
    model_id,
    pick_corpus,
    plain,
    rule_value,
    set_url,
    slider,
    store,
    texts_and_metadata,
    url_param,
    vector_cache,
    vectors_or_stop,
)
from scatter import encode_labels, scatter_map

from analytics import ExplorerError
from analytics.figures import map_figure
from analytics.params import RULES
from analytics.projection import cached_projection, projection_request
from analytics.retrieval import row_neighbours, row_norms
from analytics.tables import metadata_columns, save_subset

NEIGHBOURS = 10  # shown on a click
EXPORT_MAX_POINTS = 50_000  # the exported PNG/SVG draws a seeded sample of larger maps (and says so)
MAP_HEIGHT = 500  # with the controls above it, the map ends above the fold of a 1440x900 screen


@st.cache_data(show_spinner=False, max_entries=32)
def colour_column(path: str, name: str, fp: str, column: str):
    """A metadata column as the map colours it, computed once per corpus version (``fp``) and
    column: ``("values", float32 with NaN where missing)`` when every value present is a
    number, else ``("codes", int32 codes, categories)`` (missing values are the category "")."""
    _, metadata = vector_cache().corpus(get_store(path), name)
    cells = metadata.column(column, None)
    present = [v for v in cells if v is not None]
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "values", np.array([np.nan if v is None else v for v in cells], dtype=np.float32), None
    codes, categories = encode_labels(cells)
    return "codes", codes, categories


@st.cache_resource(show_spinner=False, max_entries=4)
def vector_norms(path: str, name: str, model: str, fp: str) -> np.ndarray:
    """The corpus's row norms (for cosine neighbours), once per corpus version and model."""
    norms = row_norms(corpus_vectors(path, name, model))
    norms.flags.writeable = False
    return norms


class LazyFigure:
    """The plotly figure of the map, built the first time anything asks for it (the export
    button): a page run that exports nothing builds no figure."""

    def __init__(self, build):
        self._build, self._figure = build, None

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._figure is None:
            self._figure = self._build()
        return getattr(self._figure, attr)


st.title("Map")
s = store()
path = str(s.path)
# two rows of controls (corpus, colour, search; method and its parameters), so that the map
# itself is above the fold on a laptop screen
top = st.columns([3, 2, 3])
with top[0]:
    name = pick_corpus()
X = vectors_or_stop(name)
texts, metadata = texts_and_metadata(name)
fp = fingerprint(name)
model = model_id()

c1, c2, c3 = st.columns(3)
# ranges, defaults and help: analytics/params.py (the library and `embex report` use the same)
method_rule = RULES["projection"]["method"]
methods = list(method_rule.choices)
method = c1.radio(
    "Method",
    methods,
    index=methods.index(rule_value(method_rule)),
    horizontal=True,
    format_func={"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}.get,
    key="map_method",
    help=method_rule.help,
)
params = {}
if method == "umap":
    params["n_neighbors"] = slider(
        RULES["umap"]["n_neighbors"], url=True, key="map_n_neighbors", container=c2
    )
    params["min_dist"] = slider(RULES["umap"]["min_dist"], url=True, key="map_min_dist", container=c3)
elif method == "tsne":
    params["perplexity"] = slider(RULES["tsne"]["perplexity"], url=True, key="map_perplexity", container=c2)
set_url(method=method, **params)
label = s.corpus_info(name).label_column
cols = metadata_columns(metadata)
options = [*([label] if label in cols else []), *[c for c in cols if c != label], "depth", "none"]
wanted = url_param("color", options[0])
color_by = top[1].selectbox(
    "Colour by", options, index=options.index(wanted) if wanted in options else 0, key="map_color"
)
set_url(color=color_by)
query = top[2].text_input("Highlight texts containing", key="map_search")

# the map is computed by a background job, shared by every session that asks for the same map
# and cached in the store: a page that is left or reloaded finds it again
request = projection_request(s, name, model, method, **params)
job_result(
    "project",
    {"corpus": name, "model_id": model, "method": method, **params},
    f"Computing the {method.upper()} map of {name}",
)
proj = cached_projection(s, request)
if proj.note:
    st.caption(plain(proj.note))

colour: dict = {}
if color_by == "depth":
    colour = {"values": depths(name), "value_name": "depth"}
    if label in cols:  # the hover label then names the label as well as the depth
        kind, data, categories = colour_column(path, name, fp, label)
        if kind == "codes":
            colour.update(codes=data, categories=categories)
elif color_by != "none":
    kind, data, categories = colour_column(path, name, fp, color_by)
    colour = (
        {"values": data, "value_name": color_by}
        if kind == "values"
        else {"codes": data, "categories": categories}
    )
highlight = None
if query:
    q = query.lower()
    highlight = np.array([i for i, t in enumerate(texts) if q in t.lower()], dtype=int)
    st.caption(f"{len(highlight):,} texts contain the search text.")

title = f"{name}: {method.upper()} map"
subtitle = chart_subtitle(name, len(texts), proj.describe())
shown_depth = colour.get("values") if color_by == "depth" else None


def hover(row: int) -> dict:
    """A row's text, its label first, then the rest of its metadata (and its depth)."""
    md = metadata[row]
    out = {"text": texts[row]}
    if label in md:
        out[label] = md[label]
    out.update((k, v) for k, v in md.items() if k != "text")  # a column named "text" is not the text
    if shown_depth is not None:
        out["depth"] = f"{float(shown_depth[row]):.4f}"
    return out


def neighbours(row: int) -> list[tuple[int, float]]:
    """The texts nearest a clicked one by cosine similarity of their vectors: one
    matrix-vector product over the shared read-only vectors, no copy and no index."""
    hits = row_neighbours(X, row, NEIGHBOURS, norms=vector_norms(path, name, model, fp))
    return list(zip(hits.ids[0].tolist(), hits.scores[0].tolist(), strict=True))


# A new map (another corpus, method, parameter, colouring or search) is a new component: its
# selection starts empty, as the points it draws do, so the rows Python holds are always the
# rows the map shows selected.
view = "\x1f".join(map(str, (name, fp, model, method, sorted(params.items()), color_by, query)))
key = "map-" + hashlib.blake2b(view.encode(), digest_size=8).hexdigest()
st.caption(plain(subtitle))
event = scatter_map(
    proj.coords,
    **colour,
    highlight=highlight,
    hover=hover,
    neighbors=neighbours,
    title=title,
    height=MAP_HEIGHT,
    key=key,
)


def export_figure():
    if color_by == "depth":
        color = depths(name)
    elif color_by == "none":
        color = None
    else:
        color = metadata.column(color_by, "")
    return map_figure(
        proj.coords,
        texts,
        color=color,
        color_name="" if color_by == "none" else color_by,
        highlight=highlight,
        title=title,
        subtitle=subtitle,
        max_points=EXPORT_MAX_POINTS,
    )


export_controls(LazyFigure(export_figure), f"{name}-{method}-map", "map-export")
rows = list(event.selection)
st.session_state["selection"] = {"corpus": name, "rows": rows}
if rows:
    st.subheader(f"{len(rows):,} selected texts")
    st.dataframe(
        [{"row": i, "text": texts[i], **metadata[i]} for i in rows], hide_index=True, width="stretch"
    )
    new = st.text_input("Save the selection as a new corpus named", value=f"{name} (selection)")
    if st.button("Save selection"):
        try:
            save_subset(s, name, new, rows)
            st.success(f"Saved {len(rows):,} texts as {plain(new)}.")
        except ExplorerError as exc:
            st.error(plain(exc))
else:
    st.caption("Drag a box or lasso on the map to select texts (or shift-drag a lasso in any mode).")
