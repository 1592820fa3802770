"""Report: what the analyst has on screen as one self-contained HTML file: the map in the Map
page's colouring, depth and depth per label, every flagged outlier with its label, the session's
selection in a section of its own, and optionally a shift test with F and G on one map.

The report is known by every input on this page (analytics/report.py: ReportRequest), built by a
background job with real stages, and kept in the store. The download button serves exactly the
report built from the inputs on screen: when an input changes, the button is gone until that
report is built, and a button still drawn from an earlier run refuses to serve (the file is
produced on click, after checking that its inputs are still the ones on screen).

Its corpus pick has its own session key (``report_corpus``): choosing a corpus here does not
change the Map's. It reads the Map's view (``map_method``, ``map_color`` and the method's
parameters) and the Shift page's F and G to start from what the analyst looked at last, and
never writes them.
"""

import json
from datetime import datetime, timezone

import selection
import streamlit as st
from common import (
    download,
    executor,
    job_outcome,
    job_result,
    pick_corpus,
    plain,
    requester,
    store,
    texts_and_metadata,
)

from analytics import ExplorerError
from analytics.embedding import DEFAULT_MODEL, model_source, stored_model_id
from analytics.export import file_name, only_if_current
from analytics.params import RULES
from analytics.report import DEPTH_COLOUR, NO_COLOUR
from analytics.tables import metadata_columns

# The key of the report this run shows, for the download's check at click time. Cleared first
# thing in every run: while a run with new inputs is under way, the old button cannot serve.
live = st.session_state.setdefault("_report_live", {})
live["key"] = None

METHOD_NAMES = {"umap": "UMAP", "pca": "PCA", "tsne": "t-SNE"}
# the shift test's choices besides a second corpus (no corpus name holds a control character)
NO_SHIFT, SELECTION_VS_REST = "\x00none", "\x00selection"


def report_model_id(name: str) -> str:
    """The vectors' key for ``name``: the model last embedded in this session when it covers
    the corpus, else whichever precision of that model does (as common.model_id() does for the
    Map's corpus; this page may report on another one)."""
    s = store()
    chosen = st.session_state.get("model_id")
    if chosen and s.model_dim(chosen) and s.embedded_count(name, chosen) >= s.corpus_info(name).n_docs:
        return chosen
    return stored_model_id(s, name, model_source(chosen)[0] if chosen else None) or chosen or DEFAULT_MODEL


def map_view(name: str) -> tuple[str | None, dict, str | None]:
    """The Map page's method, its parameters and colouring when the Map shows ``name`` in this
    session (read, never written), else (None, {}, None)."""
    ss = st.session_state
    if ss.get("corpus") != name or "map_method" not in ss:
        return None, {}, ss.get("map_color") if ss.get("corpus") == name else None
    method = ss.get("map_method")
    if method not in RULES["projection"]["method"].choices:
        return None, {}, ss.get("map_color")
    wanted = {"umap": ("n_neighbors", "min_dist"), "tsne": ("perplexity",)}.get(method, ())
    params = {}
    for p in wanted:
        value = ss.get(f"map_{p}")
        if value is None:
            continue
        try:
            params[p] = RULES[method][p].check(value)
        except ExplorerError:  # a value the Map would not use either: the rule's default
            pass
    return method, params, ss.get("map_color")


st.title("Report")
st.write(
    "One self-contained HTML file of what is on screen: the map in its colouring, depth and depth "
    "per label, every flagged outlier with its label, the selection, and optionally a shift test "
    "with both corpora on one map. It opens anywhere, with no network."
)
# this page's own corpus pick, starting from the Map's: picking here leaves the Map as it is
if not st.session_state.get("report_corpus") and not st.query_params.get("report_corpus"):
    start = st.session_state.get("corpus") or st.query_params.get("corpus")
    if start:
        st.session_state["report_corpus"] = start
name = pick_corpus(key="report_corpus")
s = store()
model = report_model_id(name)
done, total = s.embedded_count(name, model), s.corpus_info(name).n_docs
if done < total:
    st.warning(
        f"{done:,} of {total:,} texts are embedded with {plain(model)}. Embed this corpus on the Embed page first."
    )
    st.page_link("views/embed.py", label="Go to Embed", icon=":material/memory:")
    st.stop()
texts, metadata = texts_and_metadata(name)
picked = selection.scope(name, texts, metadata, key="report-scope")
sel = selection.current(name)

map_method, map_params, map_color = map_view(name)
c1, c2, c3 = st.columns(3)
# what the shift test compares: nothing, the selection against the rest of this corpus (when
# there is a selection), or a second corpus G (the options are values, shown by their words)
corpora = [c.name for c in s.list_corpora() if c.name != name]
others = [NO_SHIFT, *([SELECTION_VS_REST] if picked is not None else []), *corpora]
compare_default = None
if st.session_state.get("shift_mode") == "selection" and picked is not None:
    compare_default = SELECTION_VS_REST  # the Shift page's last test: the selection vs the rest
elif st.session_state.get("shift_f") == name and st.session_state.get("shift_g") in corpora:
    compare_default = st.session_state["shift_g"]  # the Shift page's F and G
elif st.session_state.get("corpus") == name and st.session_state.get("map_others"):
    compare_default = next((o for o in st.session_state["map_others"] if o in corpora), None)
if st.session_state.get("report_compare") not in others:
    st.session_state.pop("report_compare", None)  # the selection was cleared, or a corpus deleted
compare = c1.selectbox(
    "Compare with (shift test)",
    others,
    index=others.index(compare_default) if compare_default else 0,
    format_func=lambda o: {NO_SHIFT: "(none)", SELECTION_VS_REST: "the selection vs the rest"}.get(o, o),
    key="report_compare",
    help="A second corpus G: the report tests whether it has shifted away from this one (F) and "
    "draws both on one map. Or, with a selection, whether the selection has shifted away from "
    "the rest of this corpus.",
)
methods = list(RULES["projection"]["method"].choices)
method = c2.radio(
    "Map",
    methods,
    index=methods.index(map_method or RULES["projection"]["method"].default),
    horizontal=True,
    format_func=METHOD_NAMES.get,
    key="report_method",
    help=RULES["projection"]["method"].help,
)
label = s.corpus_info(name).label_column
cols = metadata_columns(metadata)
colours = [*([label] if label in cols else []), *[c for c in cols if c != label], DEPTH_COLOUR, NO_COLOUR]
color = c3.selectbox(
    "Colour the map by",
    colours,
    index=colours.index(map_color) if map_color in colours else 0,
    key="report_color",
)
params = map_params if method == map_method else {}
if params:
    st.caption(
        "Map parameters as on the Map page: " + plain(", ".join(f"{k} = {v}" for k, v in params.items()))
    )

sid = None if picked is None else s.save_selection(name, picked)  # content-addressed: same rows, same id
request = {
    "corpus": name,
    "compare": None if compare in (NO_SHIFT, SELECTION_VS_REST) else compare,
    "shift_selection": compare == SELECTION_VS_REST,
    "model_id": model,
    "method": method,
    "map_params": params,
    "color": color,
    "selection": sid,
    "selection_note": "" if picked is None else sel.describe(),
}
ex = executor()
try:
    _, _, key = ex.prepare("report", request)
except ExplorerError as exc:
    st.error(plain(exc))
    st.stop()
# built by a background job (its maps may take minutes) and kept in the store: leaving the page
# does not lose it, and the same inputs again download the report already built
if ex.result("report", request) is None:
    building = ex.find("report", request)
    if not (building and building.active):
        job_outcome(building)  # how the last attempt ended, if it failed or was cancelled
        st.info("The report for these inputs has not been built yet.", icon=":material/description:")
        if st.button("Build report", type="primary"):
            try:
                ex.submit("report", request, requested_by=requester())
            except ExplorerError as exc:
                st.error(plain(exc))
                st.stop()
            st.rerun()  # the next run shows the job's progress in place of this button
        st.stop()
report = json.loads(job_result("report", request, f"Building the report on {name}"))
if report["shift"]:
    st.text(report["shift"])
created = report.get("created") or datetime.now(timezone.utc).isoformat()
what = f"report on corpus {name!r}" + (f" vs {request['compare']!r}" if request["compare"] else "")
fname = file_name(
    name, "report", *(["vs", request["compare"]] if request["compare"] else []), created[:10], ext="html"
)
st.caption(f"Built {plain(created[:16].replace('T', ' '))} UTC from the inputs above · {plain(fname)}")
html = report["html"].encode("utf-8")
download(
    "Download report (HTML)",
    only_if_current(lambda: html, lambda: live.get("key") == key, what="This report"),
    fname,
    "text/html",
    what=what,
    key=f"report-dl-{key[-16:]}",  # another report is another button
)
live["key"] = key  # the run ended showing this report: its button may serve it
