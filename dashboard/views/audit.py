"""Audit: who uploaded, embedded, deleted, imported and exported what in this workspace, and when."""

import signin
import streamlit as st
from common import csv_bytes, download, store

from analytics import audit

ws = signin.workspace()
signin.actor().require("audit", f"the audit log of workspace {ws.name!r}")
st.title("Audit")
st.caption(f"Workspace {ws.name}: every change, newest first. Times are UTC.")
limit = st.select_slider("Rows", [100, 500, 2000, 10000], value=500)
rows = [
    {"time": e.when, "who": e.user, "action": e.action, "what": e.target, "detail": e.detail}
    for e in audit.recent(store(), limit)
]
if not rows:
    st.info("Nothing has been recorded in this workspace yet.")
    st.stop()
st.dataframe(rows, hide_index=True, width="stretch")  # a table shows text as text: no markup
download("Download as CSV", csv_bytes(rows), f"audit-{ws.name}.csv", "text/csv", what="the audit log")
