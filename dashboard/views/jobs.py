"""Jobs: what runs in the background and what ran, with progress, errors and Cancel."""

import time

import signin
import streamlit as st
from common import cancel_job, executor, job_progress_text, plain, requester

from analytics import ExplorerError

st.title("Jobs")
st.caption(
    "Embeddings and maps run here in the background: they go on when you leave a page, and "
    "a second request for the same result joins the running job or reads its cached result."
)


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


@st.fragment(run_every=2.0)
def jobs_table() -> None:
    ex = executor()
    jobs = ex.jobs(limit=100)
    active = [j for j in jobs if j.active]
    st.subheader(f"Running and queued ({len(active)})")
    if not active:
        st.caption("Nothing is running.")
    for job in active:
        with st.container(border=True):
            method = str(job.params.get("method", "")).upper()
            st.markdown(
                f"**#{job.id} {plain(job.kind)}{' ' + method if method else ''}** · "
                f"{plain(job.params.get('corpus', ''))} · asked by {plain(job.requested_by)}"
            )
            st.progress(job.fraction, text=plain(job_progress_text(job)))
            mine = job.requested_by == requester()
            if (mine or signin.can("cancel_others")) and st.button("Cancel", key=f"jobs-cancel-{job.id}"):
                try:
                    cancel_job(job)
                except ExplorerError as exc:
                    st.error(plain(exc))
    st.subheader("Recent")
    ended = [j for j in jobs if not j.active]
    if not ended:
        st.caption("No job has ended yet.")
        return
    st.dataframe(
        [
            {
                "job": j.id,
                "kind": j.kind + (f" {j.params['method']}" if j.params.get("method") else ""),
                "corpus": j.params.get("corpus", "")
                + (f" vs {j.params['compare']}" if j.params.get("compare") else ""),
                "state": j.state,
                "message or error": j.error or j.message,
                "seconds": round(j.elapsed, 1),
                "asked by": j.requested_by,
                "created": _when(j.created),
                "attempts": j.attempts,
            }
            for j in ended
        ],
        hide_index=True,
        width="stretch",
    )


jobs_table()
