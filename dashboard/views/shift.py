"""Shift test: has corpus G moved away from reference corpus F? (Run as a background job.)"""

import streamlit as st
from common import (
    chart_subtitle,
    export_controls,
    job_result,
    model_id,
    number_input,
    pick_corpus,
    plain,
    set_url,
    store,
    texts_and_metadata,
    url_param,
    vectors_or_stop,
)

from analytics.figures import shift_histogram
from analytics.params import RULES
from analytics.shift import KINDS, SMALL_SAMPLE, ShiftResult


@st.cache_data(show_spinner=False, max_entries=16)
def read_result(payload: bytes) -> ShiftResult:
    return ShiftResult.from_bytes(payload)


st.title("Shift test")
c1, c2 = st.columns(2)
with c1:
    f_name = pick_corpus("Reference corpus F", key="shift_f")
with c2:
    g_name = pick_corpus("Comparison corpus G", key="shift_g", exclude=f_name)
distance = st.radio(
    "Distance",
    ["cosine", "chord"],
    horizontal=True,
    key="shift_distance",
    index=1 if url_param("distance", "cosine") == "chord" else 0,
)
set_url(distance=distance)
permutations = number_input(RULES["shift"]["permutations"], label="Permutations", key="shift_permutations")
vectors_or_stop(f_name)
vectors_or_stop(g_name)
s = store()
# the test runs as a background job (its permutations take a while on big corpora); its result
# is cached in the store under its inputs, so every session reads the same numbers
request = {
    "corpus": f_name,
    "compare": g_name,
    "model_id": model_id(),
    "distance": distance,
    "permutations": permutations,
}
r = read_result(job_result("shift", request, f"Testing {g_name} against {f_name}"))

verdict = r.summary().splitlines()[0]
(st.error if r.significant() else st.success)(plain(verdict))
st.caption(f"Kind of shift: {KINDS[r.kind()]}")
top = st.columns(3)  # the direction-aware test: every p here is a calibrated permutation p
top[0].metric("p (combined)", f"{r.p_verdict:.3g}", help="Depth both ways, MMD and mean embedding (min-p)")
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
        [{"test": c.name, "statistic": round(c.statistic, 5), "p": c.p, "how": c.detail} for c in r.checks],
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
    name_f=f_name,
    name_g=g_name,
    title=f"Depth with respect to {f_name}: {f_name} vs {g_name}",
    subtitle=chart_subtitle(
        f_name, r.n_f + r.n_g, f"{distance} · {KINDS[r.kind()]} · p = {r.p_verdict:.3g} · Q = {r.q:.3f}"
    ),
)
st.plotly_chart(overlay, width="stretch")
export_controls(overlay, "shift-test", "shift-export")
texts_f, _ = texts_and_metadata(f_name)
texts_g, _ = texts_and_metadata(g_name)
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
