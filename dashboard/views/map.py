"""Map: a 2D projection, coloured by label, depth or metadata; select texts with box or lasso."""

import numpy as np
import streamlit as st
from common import (
    chart_subtitle,
    depths,
    export_controls,
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
    vectors_or_stop,
)

from analytics import ExplorerError
from analytics.figures import map_figure
from analytics.params import RULES
from analytics.projection import cached_projection, projection_request
from analytics.tables import metadata_columns, save_subset

st.title("Map")
s = store()
name = pick_corpus()
vectors_or_stop(name)
texts, metadata = texts_and_metadata(name)

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
color_by = st.selectbox(
    "Colour by", options, index=options.index(wanted) if wanted in options else 0, key="map_color"
)
set_url(color=color_by)
query = st.text_input("Highlight texts containing", key="map_search")

# the map is computed by a background job, shared by every session that asks for the same map
# and cached in the store: a page that is left or reloaded finds it again
request = projection_request(s, name, model_id(), method, **params)
job_result(
    "project",
    {"corpus": name, "model_id": model_id(), "method": method, **params},
    f"Computing the {method.upper()} map of {name}",
)
proj = cached_projection(s, request)
if proj.note:
    st.caption(plain(proj.note))
color = None
if color_by == "depth":
    color = depths(name)
elif color_by != "none":
    color = metadata.column(color_by, "")
highlight = None
if query:
    q = query.lower()
    highlight = np.array([i for i, t in enumerate(texts) if q in t.lower()], dtype=int)
    st.caption(f"{len(highlight):,} texts contain the search text.")
fig = map_figure(
    proj.coords,
    texts,
    color=color,
    color_name="" if color_by == "none" else color_by,
    highlight=highlight,
    title=f"{name}: {method.upper()} map",
    subtitle=chart_subtitle(name, len(texts), proj.describe()),
)
event = st.plotly_chart(
    fig,
    width="stretch",
    on_select="rerun",
    selection_mode=("box", "lasso"),
    key="map_chart",
    config={"toImageButtonOptions": {"format": "png", "scale": 2}},
)
export_controls(fig, f"{name}-{method}-map", "map-export")
rows = sorted({int(p["customdata"]) for p in (event.selection.points if event else []) if "customdata" in p})
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
    st.caption("Drag a box or lasso on the map to select texts.")
