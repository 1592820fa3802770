"""Outliers: the least representative texts, each with its label and its nearest neighbours (and
theirs) as evidence; every flagged row listed page by page and in the CSV; reviewed marks kept
in the store; the flagged rows sent to the Map as the session's selection."""

import numpy as np
import signin
import streamlit as st
from common import (
    csv_bytes,
    download,
    embedded_or_stop,
    job_result,
    model_id,
    number_input,
    pick_corpus,
    plain,
    requester,
    rule_value,
    set_url,
    slider,
    store,
    texts_and_metadata,
)
from selection import remember, scope

from analytics.export import only_if_current
from analytics.outliers import (
    REVIEWED,
    OutlierReport,
    export_name,
    flagged_in,
    label_summary,
    outlier_table,
    paginate,
    row_labels,
)
from analytics.params import RULES
from analytics.results import from_bytes
from analytics.selection import Selection, rows_key

#: how the page names each ranking (analytics/outliers.py explains them)
RANKINGS = {
    "local": "k-NN isolation",
    "global": "depth",
    "combined": "both",
}
RANKING_HELP = (
    "**k-NN isolation** (local depth): 2 minus the mean cosine distance to the text's k nearest "
    "other texts. It finds texts with no near neighbours wherever they sit, such as a stray "
    "query among tight topics; on CLINC150 it finds the out-of-scope queries best (AUROC 0.97), "
    "so it is the default. **Depth** (global TTE depth): how central the text is in the whole "
    "corpus; it finds what is far from the centre, including a small group of similar strays. "
    "**Both**: the mean of the two depth percentiles (a rank average), so a text comes first "
    "only if it is outlying by both. Depths are always taken over the whole corpus, also when a "
    "selection narrows the list."
)
SCORE_NAMES = {"local": "local depth", "global": "depth", "combined": "combined percentile"}
PER_PAGE = (25, 50, 100, 200)


@st.cache_data(show_spinner=False, max_entries=8)
def read_report(payload: bytes) -> OutlierReport:
    return from_bytes(OutlierReport, payload)


def set_page(number: int) -> None:
    st.session_state["outliers_page"] = number


def page_buttons(previous, following, page, suffix: str = "") -> None:
    """Previous and Next, in these two columns (above the list, and again below it)."""
    previous.button(
        "Previous",
        key=f"outliers_prev{suffix}",
        on_click=set_page,
        args=(page.number - 1,),
        disabled=page.number <= 1,
    )
    following.button(
        "Next",
        key=f"outliers_next{suffix}",
        on_click=set_page,
        args=(page.number + 1,),
        disabled=page.number >= page.pages,
    )


def mark(name: str, rows: list[int], on: bool) -> None:
    """Put or take off the reviewed mark (an editor's change, checked and audited here)."""
    what = f"{len(rows):,} row{'s' * (len(rows) != 1)} of corpus {name!r}"
    with signin.acting("review", what, "reviewed" if on else "not reviewed", store=store()):
        store().set_marks(name, rows, REVIEWED, user=requester(), on=on)


st.title("Outliers")
name = pick_corpus()
embedded_or_stop(name)
texts, metadata = texts_and_metadata(name)
scoped = scope(name, texts, metadata, key="outliers-scope")
label_column = store().corpus_info(name).label_column

rules = RULES["outliers"]  # ranges, defaults and help: analytics/params.py
left, mid, right = st.columns([2, 3, 2])
with left:
    modes = ["lowest share", "lowest count"]
    mode = st.radio(
        "Threshold",
        modes,
        index=int("count" in st.query_params),
        horizontal=True,
        key="outliers_mode",
        persist_state="session",
    )
    if mode == "lowest share":
        quantile = slider(
            rules["quantile"], label="Share of the corpus (%)", scale=100, url=True, key="outliers_quantile"
        )
        count = None
    else:
        quantile = None
        count = number_input(rules["count"], label="Number of texts", url=True, key="outliers_count")
with mid:
    by = st.radio(
        "Rank by",
        list(RANKINGS),
        index=list(RANKINGS).index(rule_value(rules["by"])),
        format_func=RANKINGS.get,
        key="outliers_by",
        persist_state="session",
        horizontal=True,
        help=RANKING_HELP,
    )
    st.caption(
        {
            "local": "No near neighbours: mean cosine distance to the k nearest texts (as local depth).",
            "global": "Far from the corpus as a whole: low TTE depth.",
            "combined": "Outlying by both: the mean of the two depth percentiles.",
        }[by]
    )
with right:
    k = slider(rules["k"], label="Neighbours (k-NN isolation and evidence)", url=True, key="outliers_k")
set_url(by=by, k=k, **({"quantile": f"{quantile:g}"} if count is None else {"count": count}))
st.query_params.pop("count" if count is None else "quantile", None)  # the link names one threshold

# ranked by a background job over the whole corpus (k nearest neighbours of every text: seconds
# to minutes), cached in the store under its inputs: leave the page and come back, it is there
request = {"corpus": name, "model_id": model_id(), "quantile": quantile, "count": count, "k": k, "by": by}
report = read_report(job_result("outliers", request, f"Finding the outliers of {name}"))
reviewed = store().marks(name, REVIEWED)
may_review = signin.can("review")

in_scope = flagged_in(report, scoped)
flagged_rows = report.flagged[in_scope]
n_reviewed = sum(int(i) in reviewed for i in flagged_rows.tolist())
how = f"by {RANKINGS[by]} (k = {report.k})" if by != "global" else "by depth"
if scoped is None:
    st.write(
        f"**{len(in_scope):,} outliers flagged** {how} among {len(texts):,} texts, most outlying "
        f"first; {n_reviewed:,} marked reviewed."
    )
else:
    st.write(
        f"**{len(in_scope):,} of the {len(report.flagged):,} outliers** flagged {how} in the whole "
        f"corpus are in the selection, most outlying first; {n_reviewed:,} marked reviewed. "
        "Depths are taken over the whole corpus."
    )

c1, c2, c3 = st.columns([2, 2, 3], vertical_alignment="center")
hide = c1.toggle(
    "Hide reviewed", key="outliers_hide", persist_state="session", help="Leave out the rows marked reviewed."
)
unreviewed = np.array([int(i) not in reviewed for i in flagged_rows.tolist()], dtype=bool)
listed = in_scope[unreviewed] if hide else in_scope
if c2.button(
    f"Show on the map ({len(listed):,})",
    key="outliers_to_map",
    icon=":material/scatter_plot:",
    disabled=not len(listed),
    help="Make the listed outliers the selection and open the Map, where they are highlighted.",
):
    remember(Selection(name, rows=report.flagged[listed].tolist()))
    keep = {key: st.query_params[key] for key in ("ws", "corpus", "sel") if key in st.query_params}
    st.switch_page("views/map.py", query_params=keep)
csv_view = (name, repr(sorted(request.items())), None if scoped is None else rows_key(scoped))
live = st.session_state.setdefault("_outliers_csv_live", {})


def csv_now() -> bytes:
    """Every flagged row in scope, built on the click from the marks as they are then."""
    marks = store().marks(name, REVIEWED)
    return csv_bytes(
        outlier_table(report, texts, metadata, positions=in_scope, label_column=label_column, reviewed=marks)
    )


with c3:
    download(
        f"Download all {len(in_scope):,} as CSV",
        # a button still drawn from an earlier run (other inputs) refuses instead of serving them
        only_if_current(csv_now, lambda: live.get("view") == csv_view, what="This list of outliers"),
        export_name(name, by=by, quantile=quantile, count=count, k=report.k, scoped=scoped is not None),
        "text/csv",
        what=f"outliers of corpus {name!r}",
        key="outliers_csv",
    )

# -- the list, page by page -----------------------------------------------------------------------
view = (*csv_view, hide)
if st.session_state.get("_outliers_view") != view:  # another list: start at its first page
    st.session_state["_outliers_view"] = view
    st.session_state["outliers_page"] = 1
p1, p2, p3, p4, _ = st.columns([1, 1, 1.5, 1.5, 4], vertical_alignment="bottom")
per_page = p4.selectbox("Per page", PER_PAGE, index=1, key="outliers_per_page", persist_state="session")
page = paginate(len(listed), st.session_state.get("outliers_page", 1), per_page=per_page)
st.session_state["outliers_page"] = page.number
page_buttons(p1, p2, page)
p3.number_input("Page", min_value=1, max_value=page.pages, step=1, key="outliers_page")
st.caption(
    f"Page {page.number} of {page.pages} · outliers {page.start + 1 if page.total else 0:,}–{page.stop:,} "
    f"of {page.total:,}" + (" (reviewed hidden)" if hide else "")
)
shown = listed[page.start : page.stop]
by_rank = {
    r["rank"]: r
    for r in outlier_table(
        report, texts, metadata, positions=shown, label_column=label_column, reviewed=reviewed
    )
}
if may_review and len(shown):
    todo = [int(report.flagged[p]) for p in shown.tolist() if int(report.flagged[p]) not in reviewed]
    if st.button(
        f"Mark the {len(todo):,} unreviewed on this page reviewed",
        key="outliers_mark_page",
        disabled=not todo,
    ):
        mark(name, todo, True)
        st.rerun()

all_labels = row_labels(metadata, label_column)  # None without a label column
for position in shown.tolist():
    row = by_rank[position + 1]
    i = row["row"]
    neighbour_ids = report.neighbours[position].tolist()
    neighbour_labels = [all_labels[j] for j in neighbour_ids] if all_labels is not None else None
    with st.container(border=True):
        top, tick = st.columns([5, 1], vertical_alignment="center")
        score = f"{SCORE_NAMES[by]} {report.scores[i]:.4f}"
        head = f"**#{row['rank']:,}**" + (f" · {plain(row['label'] or '(no label)')}" if label_column else "")
        top.markdown(f"{head} · {score} · row {i:,}")
        was = i in reviewed
        # the key holds the stored state, so a change made elsewhere (another tab, the page's
        # button) draws a fresh box instead of writing this session's stale one back
        now = tick.checkbox(
            "Reviewed" + (f" by {plain(reviewed[i][0])}" if was else ""),
            value=was,
            key=f"outliers-rev-{name}-{i}-{int(was)}",
            disabled=not may_review,
            help=None if may_review else "Your role here does not allow marking rows reviewed.",
        )
        if now != was:
            mark(name, [i], now)
            st.rerun()
        st.text(texts[i])
        st.caption(
            f"depth {row['depth']:.4f} (percentile {row['depth percentile']:.1f}) · local depth "
            f"{row['local depth']:.4f} (percentile {row['local percentile']:.1f}, k = {report.k}) · "
            f"k-NN isolation rank {row['knn rank']:,} of {len(texts):,}"
            + (f" · neighbours: {plain(label_summary(neighbour_labels))}" if neighbour_labels else "")
        )
        with st.expander(f"Its {len(neighbour_ids)} nearest texts"):
            st.dataframe(
                [
                    {
                        "neighbour": int(j),
                        **({label_column: neighbour_labels[n]} if neighbour_labels else {}),
                        "similarity": round(float(sim), 4),
                        "text": texts[j],
                    }
                    for n, (j, sim) in enumerate(
                        zip(neighbour_ids, report.neighbour_similarity[position].tolist())
                    )
                ],
                hide_index=True,
                width="stretch",
            )

if page.pages > 1:
    b1, b2, _ = st.columns([1, 1, 6])
    page_buttons(b1, b2, page, "_bottom")

live["view"] = csv_view  # the run ended showing this list: its CSV button may serve it
