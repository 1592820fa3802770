"""Map: a 2D projection drawn with WebGL (dashboard/scatter.py), coloured by label, depth or
metadata; hover for a text, click for its nearest neighbours, box or lasso to select texts;
beside it, per-column counts of the selection (click a bar to filter) and the selected rows.

What the analyst picks here (a lasso, a search, column = value filters) is the session's one
selection (dashboard/selection.py): it stays when the colouring or method changes, is in the
URL, and scopes the other pages. Of what a user does on the map, only a box or lasso reruns
this page (with the selected row ids); pan, zoom and the legend stay in the browser, and a
hover or click asks Python for one row through a fragment. Other corpora can be drawn on the
same map (projected together), coloured by corpus. The plotly figure of the same map is built
only for the PNG/SVG export, when that is asked for.
"""

import hashlib

import numpy as np
import plotly.graph_objects as go
import selection
import streamlit as st
from common import (
    LazyFigure,
    chart_subtitle,
    corpus_vectors,
    csv_bytes,
    depths,
    download,
    embedded_corpora,
    embedded_or_stop,
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
)
from scatter import MAX_CATEGORIES, encode_labels, last_event, scatter_map

from analytics import ExplorerError
from analytics.figures import map_figure, plotly_text
from analytics.params import RULES
from analytics.projection import cached_projection, projection_request
from analytics.retrieval import row_neighbours, row_norms
from analytics.selection import Selection, column_keys, facet_counts
from analytics.tables import metadata_columns, save_subset

NEIGHBOURS = 10  # shown on a click
EXPORT_MAX_POINTS = 50_000  # the exported PNG/SVG draws a seeded sample of larger maps (and says so)
MAP_HEIGHT = 500  # with the controls above it, the map ends above the fold of a 1440x900 screen
FACET_BARS = 12  # values per column beside the map (the rest are counted as "other values")
FACET_MAX_DISTINCT = 200  # columns with more values (free text, ids) get no bars
TABLE_ROWS = 1_000  # selected rows listed under the map (the CSV has them all)


@st.cache_data(show_spinner=False, max_entries=32)
def colour_column(path: str, name: str, fp: str, column: str):
    """A metadata column as the map colours it, computed once per corpus version (``fp``) and
    column: ``("values", float32 with NaN where missing)`` when every value present is a
    number, else ``("codes", int32 codes, categories)`` (missing values are the category "")."""
    _, metadata = vector_cache().corpus(get_store(path), name)
    held = metadata.coded(column)
    if held is not None:  # labels held as codes by the cache: no list of a million cells
        distinct = [v for v in held[1] if v is not None]
        if not distinct or not all(isinstance(v, int) and not isinstance(v, bool) for v in distinct):
            codes, categories = column_keys(metadata, column)
            return "codes", codes, categories
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


st.title("Map")
s = store()
path = str(s.path)
# two rows of controls (corpus, other corpora, colour, search; method and its parameters), so
# that the map itself is above the fold on a laptop screen
top = st.columns([3, 3, 2, 3])
with top[0]:
    name = pick_corpus()
model = model_id()  # the key of this corpus's vectors: read once the corpus is known
embedded_or_stop(name)  # the vectors themselves are read only for a click's neighbours
texts, metadata = texts_and_metadata(name)
fp = fingerprint(name)
sel = selection.current(name)

# other corpora on the same map: only those embedded with the same model
versions = tuple((c.name, s.corpus_fingerprint(c.name), c.n_docs) for c in s.list_corpora() if c.name != name)
embedded = embedded_corpora(path, model, versions)
if "map_others" in st.session_state:
    st.session_state["map_others"] = [o for o in st.session_state["map_others"] if o in embedded]
others = top[1].multiselect(
    "Draw with",
    embedded,
    key="map_others",
    persist_state="session",
    placeholder="other corpora",
    help="Project other corpora together with this one onto one map (say, a shift test's F and G), "
    "coloured by corpus.",
)

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
    persist_state="session",
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
options = [
    *(["corpus"] if others else []),
    *([label] if label in cols else []),
    *[c for c in cols if c != label],
    "depth",
    "none",
]
wanted = url_param("color", options[0])
if others and st.session_state.get("_map_color_for") != tuple(others):
    wanted = "corpus"  # a newly joined map starts coloured by corpus
    st.session_state.pop("map_color", None)
st.session_state["_map_color_for"] = tuple(others)
if st.session_state.get("map_color") not in options:
    st.session_state.pop("map_color", None)
color_by = top[2].selectbox(
    "Colour by",
    options,
    index=options.index(wanted) if wanted in options else 0,
    key="map_color",
    persist_state="session",
)
set_url(color=color_by)
if st.session_state.get("_map_search_seen") != (name, sel.search):  # set here or on another page
    st.session_state["map_search"] = sel.search
query = top[3].text_input("Select texts containing", key="map_search", persist_state="session")
if query != sel.search:
    sel = Selection(name, sel.rows, sel.filters, query)
    selection.remember(sel)
st.session_state["_map_search_seen"] = (name, sel.search)

# the map is computed by a background job, shared by every session that asks for the same map
# and cached in the store: a page that is left or reloaded finds it again
request = projection_request(s, name, model, method, others=others, **params)
job_result(
    "project",
    {"corpus": name, "model_id": model, "method": method, **params, **({"others": others} if others else {})},
    f"Computing the {method.upper()} map of {' + '.join([name, *others])}",
)
proj = cached_projection(s, request)
if proj.note:
    st.caption(plain(proj.note))

# the corpora on the map, their rows one after another: row r of the map is row r - start of
# corpus names[i] where starts[i] <= r < starts[i + 1]
names = [name, *others]
parts = [(texts, metadata)] + [texts_and_metadata(o) for o in others]
starts = np.cumsum([0] + [len(t) for t, _ in parts])
n_map = int(starts[-1])


def locate(row: int) -> tuple[int, int]:
    """(index of the corpus, its row) of a row of the map."""
    i = int(np.searchsorted(starts, row, side="right")) - 1
    return i, int(row - starts[i])


def joined(column_of) -> list:
    """A per-row list over every corpus on the map, ``column_of(i)`` giving corpus i's."""
    out: list = []
    for i in range(len(names)):
        out.extend(column_of(i))
    return out


# One component per map (corpora, their versions, model, method, parameters): a new colouring or
# selection is new data for the same component, so the view is kept. The selection lives in the
# session (dashboard/selection.py), not in the component: it survives a new map.
view = "\x1f".join(map(str, (names, [fingerprint(o) for o in names], model, method, sorted(params.items()))))
key = "map-" + hashlib.blake2b(view.encode(), digest_size=8).hexdigest()

# A box or lasso the user drew since the last run becomes the selection before anything is
# drawn, so that this one run shows it everywhere (map, counts, table). The component keeps its
# last one: a run for any other reason reads it again, and must not undo a filter or a cleared
# selection, hence the comparison with the last one seen (each lasso has a new number).
event = last_event(key, n_map)
lasso = (event.selection, event.mode, event.seq)
seen = st.session_state.get(f"{key}-seen")
st.session_state[f"{key}-seen"] = lasso
map_note = ""
if seen is not None and lasso != seen:
    rows = [r for r in event.selection if r < len(texts)]  # of this corpus (a joint map holds others)
    if event.selection and len(rows) < len(event.selection):
        map_note = (
            f"The selection keeps the {len(rows):,} texts of {name}; the other corpora's "
            f"{len(event.selection) - len(rows):,} are not part of it."
        )
    sel = sel.with_rows(rows if event.selection else None)
    selection.remember(sel)

colour: dict = {}
if color_by == "corpus":
    colour = {"codes": np.repeat(np.arange(len(names), dtype=np.int32), np.diff(starts)), "categories": names}
elif color_by == "depth":
    values = depths(name)
    if others:  # each corpus's own depth (depth within one's own corpus)
        values = np.concatenate([values, *(depths(o) for o in others)])
    colour = {"values": values, "value_name": "depth"}
    if label in cols and not others:  # the hover label then names the label as well as the depth
        kind, data, categories = colour_column(path, name, fp, label)
        if kind == "codes":
            colour.update(codes=data, categories=categories)
elif color_by != "none":
    if others:
        cells = joined(lambda i: parts[i][1].column(color_by, None))
        present = [v for v in cells if v is not None]
        if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            colour = {
                "values": np.array([np.nan if v is None else v for v in cells], np.float32),
                "value_name": color_by,
            }
        else:
            codes, categories = encode_labels(cells)
            colour = {"codes": codes, "categories": categories}
    else:
        kind, data, categories = colour_column(path, name, fp, color_by)
        colour = (
            {"values": data, "value_name": color_by}
            if kind == "values"
            else {"codes": data, "categories": categories}
        )

try:
    picked = selection.rows(name, texts, metadata, sel)
except ExplorerError as exc:  # a lasso saved for another version of the corpus
    st.warning(plain(exc))
    selection.clear(name)
    sel, picked = selection.current(name), None
if picked is not None and sel.search and sel.rows is None and not sel.filters:
    highlight_name = "search hits"
else:
    highlight_name = "selected"

title = f"{' vs '.join(names)}: {method.upper()} map" if others else f"{name}: {method.upper()} map"
subtitle = chart_subtitle(" + ".join(names), n_map, proj.describe())
shown_depth = colour.get("values") if color_by == "depth" else None


def hover(row: int) -> dict:
    """A row's text, its corpus (on a joint map), its label first, then the rest of its
    metadata (and its depth)."""
    i, r = locate(row)
    t, m = parts[i]
    md = m[r]
    out = {"text": t[r]}
    if others:
        out["corpus"] = names[i]
    if label in md:
        out[label] = md[label]
    out.update((k, v) for k, v in md.items() if k != "text")  # a column named "text" is not the text
    if shown_depth is not None:
        out["depth"] = f"{float(shown_depth[row]):.4f}"
    return out


def neighbours(row: int) -> list[tuple[int, float]]:
    """The texts nearest a clicked one by cosine similarity of their vectors, in its own corpus:
    one matrix-vector product over the shared read-only vectors, no copy and no index."""
    i, r = locate(row)
    own = names[i]
    Xi = corpus_vectors(path, own, model)
    hits = row_neighbours(Xi, r, NEIGHBOURS, norms=vector_norms(path, own, model, fingerprint(own)))
    return [(int(j) + int(starts[i]), float(sc)) for j, sc in zip(hits.ids[0], hits.scores[0], strict=True)]


st.caption(plain(subtitle))
if map_note:
    st.caption(plain(map_note))
map_col, side = st.columns([3, 1])
with map_col:
    scatter_map(
        proj.coords,
        **colour,
        highlight=picked,
        highlight_name=highlight_name,
        hover=hover,
        neighbors=neighbours,
        title=title,
        height=MAP_HEIGHT,
        key=key,
    )


def facet_clicked(corpus: str, column: str, chart_key: str) -> None:
    """A click on a count bar toggles ``column`` = its value in the session's selection. A
    callback: it runs before the page does, so the one run that follows draws the map, counts
    and table filtered. The next chart gets a new key (a key seen before would bring its old
    click back and apply it again)."""
    points = ((st.session_state.get(chart_key) or {}).get("selection") or {}).get("points") or []
    value = points[0].get("customdata") if points else None
    if isinstance(value, list):
        value = value[0] if value else None
    if value is not None:
        refilter(selection.current(corpus).toggle(column, value))


def unfilter(corpus: str, column: str) -> None:
    """The ✕ beside a filter: remove it (a callback, like a bar's click)."""
    refilter(selection.current(corpus).with_filter(column, ()))


def refilter(sel: Selection) -> None:
    """Make ``sel`` (new filters) the session's selection; the count charts get new keys."""
    selection.remember(sel)
    st.session_state["_facet_generation"] = st.session_state.get("_facet_generation", 0) + 1


@st.cache_data(show_spinner=False, max_entries=64)
def facets(path: str, fp: str, columns: tuple, sel_key, _metadata, _rows):
    """Per-column counts of the selection (``sel_key`` names it in the cache)."""
    return facet_counts(
        _metadata,
        _rows,
        columns=list(columns),
        top=FACET_BARS,
        max_distinct=FACET_MAX_DISTINCT,
        include_empty=_rows is not None,
    )


def facet_chart(facet, selected: set[str], any_selection: bool):
    """Horizontal bars, largest first: the selection's count of each value over its count in
    the whole corpus (light), values filtered on outlined."""
    values = [v for v, _ in facet.values]
    shown = [plotly_text(v if v else "(missing)", 40) for v in values]
    fig = go.Figure()
    if any_selection:
        fig.add_bar(
            y=shown, x=list(facet.totals), orientation="h", marker_color="rgba(140,140,140,0.25)",
            name="all", customdata=values, hovertemplate="%{y}: %{x:,} in the corpus<extra></extra>",
        )  # fmt: skip
    fig.add_bar(
        y=shown,
        x=[c for _, c in facet.values],
        orientation="h",
        marker_color=["#d62728" if v in selected else "#2c5d8f" for v in values],
        name="selected" if any_selection else "all",
        customdata=values,
        hovertemplate="%{y}: %{x:,}" + (" selected" if any_selection else "") + "<extra></extra>",
        text=[f"{c:,}" for _, c in facet.values],
        textposition="auto",
    )
    fig.update_layout(
        barmode="overlay",
        height=40 + 22 * len(values),
        margin=dict(l=0, r=0, t=0, b=0),
        showlegend=False,
        yaxis=dict(autorange="reversed", automargin=True),
        xaxis=dict(visible=False),
        clickmode="event+select",
        dragmode=False,
    )
    return fig


with side:
    if picked is not None:
        st.markdown(f"**{len(picked):,} of {len(texts):,} texts selected**")
        st.caption(plain(sel.describe()))
        st.button(
            "Clear selection",
            key="map-clear",
            icon=":material/filter_alt_off:",
            on_click=selection.clear,
            args=(name,),
        )
    facet_cols = [c for c in ([label] if label in cols else []) + [c for c in cols if c != label]]
    picked_rows = picked if picked is not None else None
    all_facets = facets(path, fp, tuple(facet_cols), sel.key, metadata, picked_rows)
    if not all_facets:
        st.caption("No metadata column with few enough values to count.")
    else:
        names_f = [f.column for f in all_facets]
        wanted_f = color_by if color_by in names_f else names_f[0]
        column = st.selectbox(
            "Counts by", names_f, index=names_f.index(wanted_f), key="map_facet", persist_state="session",
            help="How many of the selected texts (all texts when none are selected) have each value. "
            "Click a bar to keep only texts with that value; click it again to remove the filter.",
        )  # fmt: skip
        facet = next(f for f in all_facets if f.column == column)
        chosen = set(dict(sel.filters).get(column, ()))
        counted = facet.distinct - len(facet.values) if facet.other else 0
        more = f" ({facet.other:,} texts with {counted:,} other values)" if facet.other else ""
        word = "value" if facet.distinct == 1 else "values"
        among = " among the selected texts" if picked is not None else ""
        st.caption(plain(f"{facet.distinct:,} {word}{among}{more}"))
        # a new chart after every filter change: a key seen before would bring back its old click
        generation = st.session_state.setdefault("_facet_generation", 0)
        chart_key = (
            f"facet-{generation}-" + hashlib.blake2b(repr((key, column)).encode(), digest_size=8).hexdigest()
        )
        st.plotly_chart(
            facet_chart(facet, chosen, picked is not None),
            key=chart_key,
            on_select=lambda: facet_clicked(name, column, chart_key),
            selection_mode="points",
            config={"displayModeBar": False},
        )
        for col, values in sel.filters:
            st.button(
                f"✕ {col} = {', '.join(values)[:40]}",
                key=f"unfilter-{col}",
                help="Remove this filter",
                on_click=unfilter,
                args=(name, col),
            )


def export_figure():
    if color_by == "depth":
        color = colour["values"]
    elif color_by == "none":
        color = None
    elif color_by == "corpus":
        color = joined(lambda i: [names[i]] * len(parts[i][0]))
    else:
        color = joined(lambda i: parts[i][1].column(color_by, ""))
    return map_figure(
        proj.coords,
        joined(lambda i: parts[i][0]) if others else texts,
        color=color,
        color_name="" if color_by == "none" else color_by,
        highlight=picked,
        highlight_name=highlight_name,
        title=title,
        subtitle=subtitle if picked is None else f"{subtitle} · circled: {sel.describe()}",
        max_points=EXPORT_MAX_POINTS,
        max_categories=MAX_CATEGORIES,
    )


export_controls(
    LazyFigure(export_figure),
    f"{'-'.join(names)}{'' if picked is None else '-selection'}-{method}-map",
    "map-export",
)
if picked is not None:
    st.subheader(f"{len(picked):,} selected texts")
    shown_rows = picked[:TABLE_ROWS].tolist()
    if len(picked) > TABLE_ROWS:
        st.caption(f"The first {TABLE_ROWS:,} are listed; the CSV has all {len(picked):,}.")
    table = [{"row": i, "text": texts[i], **metadata[i]} for i in shown_rows]
    st.dataframe(table, hide_index=True, width="stretch")
    download(
        "Download the selection (CSV)",
        lambda: csv_bytes([{"row": int(i), "text": texts[i], **metadata[int(i)]} for i in picked]),
        f"{name}-selection.csv",
        "text/csv",
        what=f"selection of {name}",
        key="map-selection-csv",
    )
    new = st.text_input("Save the selection as a new corpus named", value=f"{name} (selection)")
    if st.button("Save selection"):
        try:
            save_subset(s, name, new, picked.tolist())
            st.success(f"Saved {len(picked):,} texts as {plain(new)}.")
        except ExplorerError as exc:
            st.error(plain(exc))
else:
    st.caption(
        "Drag a box or lasso on the map to select texts (or shift-drag a lasso in any mode), search "
        "for texts, or click a bar beside the map. The selection scopes the Depth, Outliers, Shift "
        "test, Retrieval and Report pages."
    )
