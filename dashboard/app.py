"""Embedding Explorer: Streamlit entry point (``streamlit run dashboard/app.py``).

The store file comes from ``EMBEX_STORE`` like the CLI. Pages are thin: read state, call one
analytics function, draw.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import signin  # noqa: E402  (dashboard/ on the path first)
from common import jobs_badge, run_page  # noqa: E402

PRESENTATION = st.query_params.get("presentation") in ("1", "true")
# a local favicon: a ":material/...:" page icon is fetched from a font CDN by every page
st.set_page_config(
    page_title="Embedding Explorer",
    page_icon=str(Path(__file__).resolve().parent / "static" / "icon.png"),
    layout="wide",
    initial_sidebar_state="collapsed" if PRESENTATION else "auto",
)
if PRESENTATION:  # clean screenshots: no sidebar, header, toolbar or footer (static CSS, no user text)
    st.html(
        "<style>[data-testid='stSidebar'],[data-testid='stSidebarCollapsedControl'],"
        "[data-testid='stHeader'],[data-testid='stToolbar'],[data-testid='stDecoration'],"
        "footer{display:none !important}</style>"
    )


def gate() -> None:
    """Sign-in (where the instance has it) and the workspace, before any page: a run that ends
    here shows the sign-in form, or "workspace not found" for a link into someone else's."""
    signin.require_sign_in()
    signin.workspace()
    if not PRESENTATION:
        signin.sidebar()


pages = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/upload.py", title="Upload", icon=":material/upload:"),
    st.Page("views/embed.py", title="Embed", icon=":material/memory:"),
    st.Page("views/map.py", title="Map", icon=":material/scatter_plot:"),
    st.Page("views/depth.py", title="Depth", icon=":material/stacked_bar_chart:"),
    st.Page("views/outliers.py", title="Outliers", icon=":material/report:"),
    st.Page("views/shift.py", title="Shift test", icon=":material/compare_arrows:"),
    st.Page("views/retrieval.py", title="Retrieval", icon=":material/search:"),
    st.Page("views/report.py", title="Report", icon=":material/description:"),
    st.Page("views/jobs.py", title="Jobs", icon=":material/pending_actions:"),
    # listed for admins; the page checks the role itself whoever opens its URL
    st.Page(
        "views/audit.py",
        title="Audit",
        icon=":material/history:",
        visibility="visible" if signin.allowed("audit") else "hidden",
    ),
]
# The pages are registered before the sign-in form, so a deep link (/map?ws=...) survives it.
# A user error shows its message, a bug an error id (the traceback goes to the server log).
signed_in = signin.user() is not None
navigation = st.navigation(pages, position="sidebar" if signed_in and not PRESENTATION else "hidden")
run_page(gate)
if not PRESENTATION:
    jobs_badge()
run_page(navigation)
