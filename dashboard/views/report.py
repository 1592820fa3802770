"""Report: the whole analysis of a corpus (and optionally a shift test) as one HTML file."""

import json

import streamlit as st
from common import (
    download,
    executor,
    job_outcome,
    job_result,
    model_id,
    pick_corpus,
    plain,
    requester,
    store,
    vectors_or_stop,
)

from analytics import ExplorerError
from analytics.params import RULES

st.title("Report")
st.write(
    "One self-contained HTML file: summary, map, depth histogram, median and most outlying "
    "texts, and optionally a shift test. It opens anywhere, with no network."
)
name = pick_corpus()
vectors_or_stop(name)
others = ["(none)", *[c.name for c in store().list_corpora() if c.name != name]]
compare = st.selectbox("Compare with (shift test)", others)
method_rule = RULES["projection"]["method"]  # analytics/params.py
method = st.radio("Map", method_rule.choices, horizontal=True, help=method_rule.help)
request = {
    "corpus": name,
    "compare": None if compare == "(none)" else compare,
    "model_id": model_id(),
    "method": method,
}
# built by a background job (its map may take minutes) and kept in the store: leaving the page
# does not lose it, and asking again for the same report downloads the one already built
building = executor().find("report", request)
if executor().result("report", request) is None and not (building and building.active):
    job_outcome(building)  # how the last attempt ended, if it failed or was cancelled
    if not st.button("Build report", type="primary"):
        st.stop()
    try:
        executor().submit("report", request, requested_by=requester())
    except ExplorerError as exc:
        st.error(plain(exc))
        st.stop()
report = json.loads(job_result("report", request, f"Building the report on {name}"))
if report["shift"]:
    st.text(report["shift"])
download(
    "Download report (HTML)", report["html"], "report.html", "text/html", what=f"report on corpus {name!r}"
)
