"""Shift test: has G moved away from the reference F?

F and G are set up in place: two corpora; a column's value(s) of one corpus against the rest of
it or against other values (intent = oos vs in-scope); the session's selection against the
rest; or each value of a column against the rest, as a table with Holm-adjusted p-values. No
corpus is created: the rows are picked from the corpus's vectors in memory. Tests run as
background jobs when Run is pressed, never on arrival or after each pick; a result stays shown
until the inputs change.
"""

import selection as picked
import streamlit as st
from common import (
    chart_subtitle,
    csv_bytes,
    distance_radio,
    download,
    embedded_or_stop,
    executor,
    export_controls,
    follow_job,
    followed_result,
    job_outcome,
    model_id,
    number_input,
    pick_corpus,
    plain,
    requester,
    set_url,
    store,
    texts_and_metadata,
    url_param,
)

from analytics.export import file_name
from analytics.figures import shift_histogram
from analytics.groups import TOP_VALUES, ValueTable, describe_spec, group_rows, group_spec
from analytics.params import RULES
from analytics.selection import MISSING, facet_counts
from analytics.shift import KINDS, SMALL_SAMPLE, ShiftResult
from analytics.tables import metadata_columns

MODES = {
    "corpora": "Two corpora",
    "column": "Column = value(s)",
    "values": "Each value vs the rest",
    "selection": "Selection vs the rest",
}
#: values offered in a column's pickers, the largest first (a column of ids has no use here)
MAX_OPTIONS = 1000
RAN = "shift-ran"  # the (kind, params) of this session's last Run


@st.cache_data(show_spinner=False, max_entries=16)
def read_result(payload: bytes) -> ShiftResult:
    return ShiftResult.from_bytes(payload)


@st.cache_data(show_spinner=False, max_entries=16)
def read_table(payload: bytes) -> ValueTable:
    return ValueTable.from_bytes(payload)


def shown(value: str) -> str:
    return "(missing)" if value == MISSING else value


def stem(*parts) -> str:
    """A file stem from what the export holds (corpus and view), safe on every system."""
    return file_name(*parts, ext="x").removesuffix(".x")


def result_or_stop(kind: str, params: dict, what: str, *, ready: bool = True) -> bytes:
    """The Run button, and the stored result of ``params`` when there is one (computed in this
    session or by anyone before: nothing is computed for it). Otherwise: the job of this
    request when it runs (followed in place), or the job started by a press of Run, or a
    note that the inputs changed since the last run, and the end of this page run."""
    ex = executor()
    clicked = st.button(
        "Run",
        type="primary",
        key="shift-run",
        disabled=not ready,
        help="Runs the test in the background; the result stays here until the inputs change.",
    )
    if clicked:
        st.session_state[RAN] = (kind, params)
    if not ready:
        st.stop()
    payload = ex.result(kind, params)
    if payload is not None:
        return payload
    job = ex.find(kind, params)
    if job is not None and job.active:  # asked before (a reload, another session): follow it
        follow_job(job, what)
        st.stop()
    ran = st.session_state.get(RAN)
    if ran != (kind, params):
        if ran is None:
            st.info("Set up F and G above, then press Run.", icon=":material/play_arrow:")
        else:
            st.info("The inputs changed since the last run: press Run to test them.", icon=":material/sync:")
        st.stop()
    if not clicked and job is not None and job.state in ("failed", "cancelled"):
        job_outcome(job)
        st.stop()
    return followed_result(ex.submit(kind, params, requested_by=requester()), kind, params, what)


def distance_and_permutations(*, cosine_only: bool = False) -> tuple[str, int]:
    c1, c2 = st.columns(2)
    if cosine_only:
        distance = "cosine"
        c1.caption("Distance: cosine (its closed form keeps a test of every value affordable).")
    else:
        distance = distance_radio(key="shift_distance", container=c1)
    permutations = number_input(
        RULES["shift"]["permutations"], label="Permutations", key="shift_permutations", container=c2
    )
    return distance, permutations


def pick_column(name: str, metadata) -> str:
    cols = metadata_columns(metadata)
    if not cols:
        st.info(
            f"{plain(name)} has no metadata columns to form groups from. Compare it with another "
            "corpus, or make a selection on the Map page and compare it with the rest."
        )
        st.stop()
    label = store().corpus_info(name).label_column
    wanted = url_param("column", label if label in cols else cols[0])
    column = st.selectbox(
        "Column", cols, index=cols.index(wanted) if wanted in cols else 0, key=f"shift_column-{name}"
    )
    set_url(column=column)
    return column


def draw_shift(r: ShiftResult, *, corpus: str, name_f: str, name_g: str, texts_f, texts_g, distance: str):
    """A shift test's verdict, numbers, chart and example texts."""
    verdict = r.summary().splitlines()[0]
    (st.error if r.significant() else st.success)(plain(verdict))
    st.caption(f"F: {plain(name_f)} · G: {plain(name_g)} · kind of shift: {KINDS[r.kind()]}")
    top = st.columns(3)  # the direction-aware test: every p here is a calibrated permutation p
    top[0].metric(
        "p (combined)", f"{r.p_verdict:.3g}", help="Depth both ways, MMD and mean embedding (min-p)"
    )
    top[1].metric(
        "p: G more outlying",
        f"{r.p_permutation:.3g}" if r.p_permutation is not None else "–",
        help="Depth test: are G's texts less typical of F than F's own? (the paper's test)",
    )
    top[2].metric(
        "p: G more concentrated",
        f"{r.p_concentrated:.3g}" if r.p_concentrated is not None else "–",
        help="Depth test the other way: are F's texts less typical of G than G's own?",
    )
    sizes = st.columns(3)
    sizes[0].metric("n F", f"{r.n_f:,}")
    sizes[1].metric("n G", f"{r.n_g:,}")
    if r.checks:
        st.markdown("**Cross-checks**")
        st.dataframe(
            [
                {"test": c.name, "statistic": round(c.statistic, 5), "p": c.p, "how": c.detail}
                for c in r.checks
            ],
            hide_index=True,
            width="stretch",
        )
    for note in r.notes:  # an overlap between F and G, a subsampled or skipped test
        st.warning(plain(note))
    for line in r.summary().splitlines():
        if line.startswith("The tests disagree") or line.startswith("The paper's one-sided test alone"):
            st.warning(plain(line))
    st.markdown("**The paper's one-sided test** (is G more outlying with respect to F?)")
    m = st.columns(4)
    m[0].metric("Q", f"{r.q:.3f}", help="P[D(F text) ≤ D(G text)]: 0.5 no shift, 0 complete shift")
    m[1].metric("W", f"{r.w:.2f}", help="Wilcoxon rank-sum statistic, F depths > G depths")
    m[2].metric("p (asymptotic)", f"{r.p:.2g}" if r.p > 0 else "< 1e-300")
    m[3].metric("p (permutation)", f"{r.p_permutation:.3g}" if r.p_permutation is not None else "–")
    with st.expander("What the numbers mean"):
        st.text(r.summary())
    if r.small_sample:
        st.warning(f"Fewer than {SMALL_SAMPLE} texts on one side: Q and p are unreliable.")
    overlay = shift_histogram(
        r.depths_f,
        r.depths_g,
        name_f=name_f,
        name_g=name_g,
        title=f"Depth with respect to {name_f}: {name_f} vs {name_g}",
        subtitle=chart_subtitle(
            corpus, r.n_f + r.n_g, f"{distance} · {KINDS[r.kind()]} · p = {r.p_verdict:.3g} · Q = {r.q:.3f}"
        ),
    )
    st.plotly_chart(overlay, width="stretch")
    export_controls(overlay, stem(corpus, "shift", name_g, "vs", name_f), "shift-export")
    deep_f, out_g = r.examples(5)
    a, b = st.columns(2)
    a.subheader("Most representative of F")
    a.dataframe(
        [{"depth": round(float(r.depths_f[i]), 4), "text": texts_f[i]} for i in deep_f],
        hide_index=True,
        width="stretch",
    )
    b.subheader("Most outlying of G (w.r.t. F)")
    b.dataframe(
        [{"depth": round(float(r.depths_g[i]), 4), "text": texts_g[i]} for i in out_g],
        hide_index=True,
        width="stretch",
    )


def draw_table(table: ValueTable, *, corpus: str) -> None:
    found = table.significant()
    (st.error if found else st.success)(plain(table.summary().splitlines()[0]))
    for line in table.summary().splitlines()[1:]:
        st.caption(plain(line))
    st.dataframe(
        [
            {
                "value": shown(r.value),
                "n": r.n,
                "Q": r.q,
                "W": r.w,
                "p (permutation)": r.p_permutation if r.p_permutation is not None else r.p,
                "p (Holm)": r.p_holm,
                "verdict": r.verdict,
            }
            for r in table.rows
        ],
        hide_index=True,
        width="stretch",
        column_config={
            "Q": st.column_config.NumberColumn(
                format="%.3f", help="P[D(rest text) ≤ D(value text)]: 0.5 no shift"
            ),
            "W": st.column_config.NumberColumn(format="%.2f", help="Wilcoxon rank-sum statistic"),
            "p (permutation)": st.column_config.NumberColumn(
                format="%.4f", help="The depth test both ways (min-p), calibrated"
            ),
            "p (Holm)": st.column_config.NumberColumn(
                format="%.4f", help=f"Adjusted over the {len(table.rows)} values tested (Holm, step-down)"
            ),
        },
    )
    download(
        "Download CSV",
        csv_bytes(table.csv_rows()),
        file_name(corpus, "shift-each-value", table.column, ext="csv"),
        "text/csv",
        what=f"shift test of each value of {table.column!r} in corpus {corpus!r}",
        key="shift-values-csv",
    )
    st.caption(
        "F is the rest (every other row), G the value's rows. Q and W are the paper's one-sided "
        "test (is the value more outlying?); the permutation p tests both directions, and the "
        "verdict comes from the Holm-adjusted p: more outlying (its texts atypical of the rest), more "
        "concentrated (narrower than the rest) or in a different place (both ways)."
    )


st.title("Shift test")
names = [c.name for c in store().list_corpora()]
if not names:
    st.info("No corpus yet. Add one on the Upload page (Home loads the bundled sample on a first start).")
    st.page_link("views/upload.py", label="Go to Upload", icon=":material/upload:")
    st.stop()

# the selection made on the Map (of the corpus this session works on, or one held for another)
current = st.session_state.get("corpus") or st.query_params.get("corpus")
held = st.session_state.get("_selections", {})
with_selection = [n for n in names if (n == current or n in held) and not picked.current(n).is_everything]
modes = [
    *(["corpora"] if len(names) > 1 else []),
    "column",
    "values",
    *(["selection"] if with_selection else []),
]
wanted = url_param("mode", "corpora" if len(names) > 1 else "column")
mode = st.radio(
    "Compare",
    modes,
    index=modes.index(wanted) if wanted in modes else 0,
    format_func=MODES.get,
    horizontal=True,
    key="shift_mode",
    persist_state="session",
    help="Two corpora; groups of one corpus's rows by a column; each value of a column against "
    "the rest (a table); or the selection made on the Map against the rest of its corpus.",
)
set_url(mode=mode)

if mode == "corpora":
    c1, c2 = st.columns(2)
    with c1:
        f_name = pick_corpus("Reference corpus F", key="shift_f")
    with c2:
        g_name = pick_corpus("Comparison corpus G", key="shift_g", exclude=f_name)
    distance, permutations = distance_and_permutations()
    embedded_or_stop(f_name)
    embedded_or_stop(g_name)
    params = {
        "corpus": f_name,
        "compare": g_name,
        "model_id": model_id(),
        "distance": distance,
        "permutations": permutations,
    }
    r = read_result(result_or_stop("shift", params, f"Testing {g_name} against {f_name}"))
    draw_shift(
        r,
        corpus=f_name,
        name_f=f_name,
        name_g=g_name,
        texts_f=texts_and_metadata(f_name)[0],
        texts_g=texts_and_metadata(g_name)[0],
        distance=distance,
    )
    st.stop()

if mode == "selection":
    name = st.selectbox(
        "Corpus",
        with_selection,
        index=with_selection.index(current) if current in with_selection else 0,
        key="shift_selection_corpus",
    )
    st.session_state["corpus"] = name  # the corpus this session works on (its vectors' model)
else:
    name = pick_corpus("Corpus", key="corpus")
embedded_or_stop(name)
texts, metadata = texts_and_metadata(name)

if mode == "values":
    column = pick_column(name, metadata)
    (facet,) = facet_counts(metadata, columns=[column], top=TOP_VALUES)
    counts = [c for _, c in facet.values]
    testable = sum(1 for c in counts if c >= 2 and len(texts) - c >= 2)
    st.caption(
        f"Tests each of the {min(TOP_VALUES, facet.distinct):,} largest of the {facet.distinct:,} values of "
        f"{plain(column)} against every other row of {plain(name)}"
        + (
            f" (the {facet.distinct - TOP_VALUES:,} smaller values stay in the rest)"
            if facet.distinct > TOP_VALUES
            else ""
        )
        + "; p-values are Holm-adjusted over the values tested."
    )
    if not testable:
        st.warning(f"No value of {plain(column)} has 2 texts or more (with 2 or more left for the rest).")
    _, permutations = distance_and_permutations(cosine_only=True)
    params = {
        "corpus": name,
        "model_id": model_id(),
        "column": column,
        "top": TOP_VALUES,
        "permutations": permutations,
    }
    payload = result_or_stop(
        "shift_values", params, f"Testing each value of {column} in {name}", ready=testable > 0
    )
    draw_table(read_table(payload), corpus=name)
    st.stop()

if mode == "column":
    column = pick_column(name, metadata)
    (facet,) = facet_counts(metadata, columns=[column], top=MAX_OPTIONS)
    count = dict(facet.values)
    options = list(count)
    if facet.other:
        st.caption(
            f"The {MAX_OPTIONS:,} largest of {facet.distinct:,} values of {plain(column)} are offered."
        )
    c1, c2 = st.columns(2)
    g_values = c1.multiselect(
        f"G: rows where {column} is",
        options,
        key=f"shift_g_values-{name}-{column}",
        format_func=lambda v: f"{shown(v)} ({count[v]:,})",
        placeholder="Pick one or more values",
    )
    against = c2.radio(
        "F (the reference)",
        ["the rest", "other values"],
        horizontal=True,
        key="shift_f_against",
        persist_state="session",
    )
    f_values = []
    if against == "other values":
        f_values = c2.multiselect(
            f"F: rows where {column} is",
            [v for v in options if v not in g_values],
            key=f"shift_f_values-{name}-{column}",
            format_func=lambda v: f"{shown(v)} ({count[v]:,})",
            placeholder="Pick one or more values",
        )
    if not g_values:
        st.info(f"Pick the value(s) of {plain(column)} that make G, such as the label to look at.")
    n_g = sum(count[v] for v in g_values)
    n_f = sum(count[v] for v in f_values) if against == "other values" else len(texts) - n_g
    g = group_spec({column: g_values})
    f = group_spec({column: f_values}) if against == "other values" else "rest"
else:  # the selection against the rest of its corpus
    sel = picked.current(name)
    chosen = picked.rows(name, texts, metadata, sel)
    n_g = len(texts) if chosen is None else len(chosen)
    n_f = len(texts) - n_g
    sid = None if sel.rows is None else store().save_selection(name, sel.rows)
    g = group_spec({c: list(v) for c, v in sel.filters}, sel=sid, search=sel.search)
    f = "rest"
    st.caption(f"G = the selection: {plain(sel.describe())}.")

distance, permutations = distance_and_permutations()
name_g, name_f = describe_spec(g), describe_spec(f)
if mode == "selection":
    name_g = "the selection"
ready = n_g >= 2 and n_f >= 2
if n_g:
    st.caption(
        f"G: {n_g:,} texts ({plain(name_g)}) · F: {n_f:,} texts ({plain(name_f)}) · corpus {plain(name)}"
    )
if n_g and not ready:
    st.warning("A shift test needs at least 2 texts in F and in G.")
params = {
    "corpus": name,
    "model_id": model_id(),
    "g": g,
    "f": f,
    "distance": distance,
    "permutations": permutations,
}
r = read_result(
    result_or_stop("shift_groups", params, f"Testing {name_g} against {name_f} in {name}", ready=ready)
)
rows_f, rows_g = group_rows(store(), name, g, f, texts, metadata)
draw_shift(
    r,
    corpus=name,
    name_f=name_f,
    name_g=name_g,
    texts_f=[texts[i] for i in rows_f],
    texts_g=[texts[i] for i in rows_g],
    distance=distance,
)
