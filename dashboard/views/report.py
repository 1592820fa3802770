"""Report: the whole analysis of a corpus (and optionally a shift test) as one HTML file."""

import streamlit as st
from common import model_id, pick_corpus, plain, store, vectors_or_stop

from analytics import ExplorerError
from analytics.params import RULES
from analytics.report import build_report

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
if st.button("Build report", type="primary"):
    try:
        with st.spinner("Building the report…"):
            report = build_report(
                store(), name, model_id(), compare=None if compare == "(none)" else compare, method=method
            )
        st.session_state["report"] = report.html
        if report.shift is not None:
            st.text(report.shift.summary())
    except ExplorerError as exc:
        st.error(plain(exc))
if "report" in st.session_state:
    st.download_button("Download report (HTML)", st.session_state["report"], "report.html", "text/html")
