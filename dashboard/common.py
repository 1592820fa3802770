"""What every page shares: the store and model (created once per process), cached results
keyed by the corpus fingerprint, the corpus picker, and safe display of user text."""

from __future__ import annotations

import logging
import os
import re
import secrets

import numpy as np
import signin  # noqa: E402  (dashboard/ is on the path: app.py puts it there)
import streamlit as st
from streamlit.errors import FragmentHandledException
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from analytics import ExplorerError, Store, StoreError, audit
from analytics.embedding import DEFAULT_MODEL, Embedder, model_source, shared_embedder, stored_model_id
from analytics.errors import ParameterError
from analytics.jobs import Executor, Job, executor_for
from analytics.memory import VectorCache, shared_cache
from analytics.params import Rule

log = logging.getLogger("embex.dashboard")

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text) -> str:
    """User text made safe for widgets that render markdown (errors, captions, labels)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def run_page(page) -> None:
    """Run one page (``st.navigation``'s page, or any callable) so that no traceback reaches
    the user: an :class:`ExplorerError` shows its message; anything else is a bug, logged here
    with its traceback under a short id that the page shows instead. ``st.stop()``,
    ``st.rerun()`` and ``st.switch_page()`` (script-control exceptions) pass through."""
    try:
        page.run() if hasattr(page, "run") else page()
    except (ScriptControlException, FragmentHandledException):
        raise
    except ExplorerError as exc:
        st.error(plain(exc))
    except Exception:
        incident = secrets.token_hex(4)
        log.exception("Unexpected error in a dashboard page (error id %s)", incident)
        st.error(f"Something went wrong (error id {incident}). The details are in the server log.")


def get_store(path: str) -> Store:
    """The process's one Store for ``path``: the job executor's, which owns the file."""
    return executor_for(path).store


def store() -> Store:
    """The store of the workspace this page works in (the one local store without an instance)."""
    return get_store(str(signin.workspace().path))


def executor() -> Executor:
    """The job executor of the current workspace's store (one per process, shared by every session)."""
    return executor_for(signin.workspace().path)


def get_embedder(model: str | None, device: str, precision: str = "auto") -> Embedder:
    """The process's one Embedder for these settings, shared with the embedding jobs."""
    with st.spinner("Loading the embedding model…"):
        return shared_embedder(model, device, precision)


@st.cache_data(show_spinner=False, ttl=5)
def _complete_key(path: str, name: str, fp: str, chosen: str | None) -> str | None:
    s = get_store(path)
    n_docs = s.corpus_info(name).n_docs
    if chosen and s.model_dim(chosen) and s.embedded_count(name, chosen) >= n_docs:
        return chosen
    key = stored_model_id(s, name, model_source(chosen)[0] if chosen else None)
    if key is None and not chosen:  # vectors uploaded or imported for it under a name of their own
        key = next((m for m in s.model_ids() if s.embedded_count(name, m) >= n_docs), None)
    return key


def model_id() -> str:
    """The cache key of the current corpus's vectors: the one last embedded in this session
    when it covers the corpus, else whichever precision of that model covers it all."""
    chosen = st.session_state.get("model_id")
    name = st.session_state.get("corpus")
    if name:
        try:
            key = _complete_key(str(store().path), name, fingerprint(name), chosen)
        except StoreError:  # an unknown corpus falls back to the default key
            key = None
        if key:
            return key
    return chosen or DEFAULT_MODEL


def fingerprint(name: str) -> str:
    return store().corpus_fingerprint(name)


@st.cache_resource(show_spinner=False)
def vector_cache() -> VectorCache:
    """The process's one cache of vectors, depths, texts and metadata (analytics.memory): every
    session gets the same read-only arrays, none copied per call. Budget: $EMBEX_MEMORY_BUDGET."""
    return shared_cache()


def corpus_vectors(path: str, name: str, model: str, fp: str | None = None) -> np.ndarray:
    """The corpus's vectors, read-only and shared (``fp`` is ignored: the cache reads the
    corpus's fingerprint itself; kept for the pages that pass it into their own cache keys)."""
    return vector_cache().vectors(get_store(path), name, model)


def texts_and_metadata(name: str):
    return vector_cache().corpus(store(), name)


def embedded_or_stop(name: str) -> None:
    """Return when every text of the corpus has a vector; else a message pointing at the Embed
    page and the end of this run. Reads no vectors (a page whose work runs in a job, or that
    needs them only on a click, should not wait seconds for a million of them)."""
    s = store()
    done, total = s.embedded_count(name, model_id()), s.corpus_info(name).n_docs
    if done < total:
        st.warning(
            f"{done:,} of {total:,} texts are embedded with {plain(model_id())}. "
            "Embed this corpus on the Embed page first."
        )
        st.page_link("views/embed.py", label="Go to Embed", icon=":material/memory:")
        st.stop()


def vectors_or_stop(name: str) -> np.ndarray:
    """The corpus's vectors, or a message pointing at the Embed page and the end of this run."""
    embedded_or_stop(name)
    return vector_cache().vectors(store(), name, model_id())


@st.cache_data(show_spinner=False, ttl=10)
def embedded_corpora(path: str, model: str, versions: tuple[tuple[str, str, int], ...]) -> list[str]:
    """The corpora (``versions``: name, fingerprint, size) whose every text has a vector for
    ``model``. Counting joins each corpus's documents with the vectors (a second at a million
    texts), so the answer is kept for a few seconds: a page run that lists them (the Map's
    "Draw with") does not pay for it on every click."""
    s = get_store(path)
    return [name for name, _, n in versions if n and s.embedded_count(name, model) == n]


def depths(name: str, distance: str = "cosine") -> np.ndarray:
    vectors_or_stop(name)
    return vector_cache().depths(store(), name, model_id(), distance)


def first_start_sample(s: Store) -> None:
    """On a store's first start, add the bundled sample with its shipped vectors and map
    (analytics/sample.py), whichever page is opened first: a link to the Map finds the sample
    as Home does. In a team's workspace only someone who may upload adds it; EMBEX_SAMPLE=0
    leaves a new store empty."""
    from analytics.sample import SAMPLE_NAME, add_sample

    if not s.list_corpora() and os.environ.get("EMBEX_SAMPLE", "1") != "0" and signin.can("upload"):
        with signin.acting("upload", f"corpus {SAMPLE_NAME!r}", "the bundled sample", store=s):
            add_sample(s)


def pick_corpus(label: str = "Corpus", key: str = "corpus", exclude: str | None = None) -> str:
    names = [c.name for c in store().list_corpora() if c.name != exclude]
    if not names and exclude is None:
        first_start_sample(store())
        names = [c.name for c in store().list_corpora()]
    if not names:
        st.info("No corpus yet. Add one on the Upload page.")
        st.page_link("views/upload.py", label="Go to Upload", icon=":material/upload:")
        st.stop()
    current = st.session_state.get(key) or st.query_params.get(key)
    index = names.index(current) if current in names else 0
    if current and current not in names and current != exclude:  # a stale link or a deleted corpus
        st.warning(f"There is no corpus named {plain(current)} in this store; showing {plain(names[0])}.")
    choice = st.selectbox(label, names, index=index, key=f"_{key}_select")
    st.session_state[key] = choice
    set_url(**{key: choice})
    return choice


def chart_subtitle(name: str, n: int, extra: str = "") -> str:
    """A chart's subtitle as raw text: the figure builders escape it (analytics.figures.plotly_text),
    so escaping it here too would show ``&amp;`` on the chart."""
    return f"corpus: {name} · model: {model_id()} · n = {n:,}" + (f" · {extra}" if extra else "")


def csv_bytes(rows: list[dict]) -> bytes:
    import csv
    import io

    if not rows:
        return b""
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def url_param(key: str, default, cast=str):
    """A view parameter from the URL (deep links); a malformed one is reported and ignored."""
    raw = st.query_params.get(key)
    if raw is None:
        return default
    try:
        return cast(raw)
    except (TypeError, ValueError):
        st.warning(f"Ignoring the link's {plain(key)}={plain(raw)}: not a valid value.")
        return default


def rule_value(rule: Rule, key: str | None = None):
    """A parameter from the URL (deep links) checked by its rule: a value out of range, NaN or
    not a number is reported, and the rule's default used instead."""
    key = key or rule.name
    raw = st.query_params.get(key)
    if raw is None:
        return rule.default
    try:
        return rule.parse(raw)
    except ParameterError as exc:
        st.warning(f"Ignoring the link's {plain(key)}={plain(raw)}: {plain(exc)}")
        return rule.default


def _widget_args(rule: Rule, label, url: bool, scale: float, help):
    """Range, start, step and help of a number widget, from the rule (times ``scale``)."""
    cast = int if rule.kind == "int" and scale == 1 else float
    start = rule_value(rule) if url else rule.default
    step = rule.step or (1 if rule.kind == "int" else (rule.high - rule.low) / 100)
    text = help or rule.help
    return dict(
        label=label or rule.name,
        min_value=None if rule.low is None else cast(rule.low * scale),
        max_value=None if rule.high is None else cast(rule.high * scale),
        value=cast(start * scale),
        step=cast(step * scale),
        help=f"{text[:1].upper()}{text[1:]} ({rule.describe()}).",
    )


def _from_widget(rule: Rule, value, scale: float):
    if scale != 1:  # back from the widget's unit (a percent, say), inside the range despite rounding
        value = min(max(value / scale, rule.low), rule.high)
    return rule.check(int(value) if rule.kind == "int" else float(value))


def _kept(key: str | None) -> dict:
    """A keyed widget keeps its value for the session, across pages (Streamlit forgets an
    unrendered widget's value otherwise): the analyst finds a page as they left it."""
    return {"persist_state": "session"} if key else {}


def slider(
    rule: Rule,
    *,
    label: str | None = None,
    key: str | None = None,
    url: bool = False,
    scale: float = 1,
    help: str | None = None,
    container=None,
):
    """A slider whose range, default, step and help come from ``rule`` (analytics/params.py), so
    pages never restate them. ``url``: start from the link's ``rule.name`` (checked by the
    rule); ``scale``: show values times this (100 for a share shown in percent)."""
    value = (container or st).slider(**_widget_args(rule, label, url, scale, help), key=key, **_kept(key))
    return _from_widget(rule, value, scale)


def number_input(
    rule: Rule,
    *,
    label: str | None = None,
    key: str | None = None,
    url: bool = False,
    scale: float = 1,
    help: str | None = None,
    container=None,
):
    """:func:`slider`'s twin for ranges a slider cannot show (no upper bound, thousands of steps)."""
    value = (container or st).number_input(
        **_widget_args(rule, label, url, scale, help), key=key, **_kept(key)
    )
    return _from_widget(rule, value, scale)


def set_url(**params) -> None:
    """Keep the view's parameters in the URL, so copying it reproduces the view."""
    for k, v in params.items():
        if st.query_params.get(k) != str(v):
            st.query_params[k] = str(v)


def distance_radio(*, key: str | None = None, container=None) -> str:
    """The depth's distance (cosine or chord), starting from the link's ``distance`` and kept
    in it; with a ``key``, kept for the session as well."""
    distance = (container or st).radio(
        "Distance",
        ["cosine", "chord"],
        horizontal=True,
        index=1 if url_param("distance", "cosine") == "chord" else 0,
        key=key,
        **_kept(key),
    )
    set_url(distance=distance)
    return distance


class LazyFigure:
    """A plotly figure built the first time anything asks for it (the export button): a page
    run that exports nothing builds no figure."""

    def __init__(self, build):
        self._build, self._figure = build, None

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._figure is None:
            self._figure = self._build()
        return getattr(self._figure, attr)


def export_controls(fig, stem: str, key: str) -> None:
    """PNG (at a chosen scale) and SVG downloads of a figure, rendered by kaleido on request."""
    from analytics.export import figure_image

    with st.expander("Export this chart"):
        scale = st.select_slider("PNG scale", [1, 2, 3, 4], value=2, key=f"{key}-scale")
        if st.button("Prepare PNG and SVG", key=f"{key}-prepare"):
            try:
                st.session_state[f"{key}-png"] = figure_image(fig, "png", scale=scale)
                st.session_state[f"{key}-svg"] = figure_image(fig, "svg")
            except ExplorerError as exc:
                st.error(plain(exc))
        if f"{key}-png" in st.session_state:
            c1, c2 = st.columns(2)
            with c1:
                download(
                    "Download PNG",
                    st.session_state[f"{key}-png"],
                    f"{stem}.png",
                    "image/png",
                    what=f"chart {stem}",
                    key=f"{key}-dl-png",
                )
            with c2:
                download(
                    "Download SVG",
                    st.session_state[f"{key}-svg"],
                    f"{stem}.svg",
                    "image/svg+xml",
                    what=f"chart {stem}",
                    key=f"{key}-dl-svg",
                )


def download(label: str, data, file_name: str, mime: str, *, what: str, key: str | None = None) -> None:
    """A download button whose click is written to the workspace's audit log as an export of
    ``what`` (a viewer may export what it sees; the log says who took what). The file name is
    made safe (analytics.export.safe_file_name). ``data`` may be a function of no arguments:
    it then runs on the click (Streamlit's deferred download), may refuse by raising (nothing
    is served then, nor recorded), and the click does not rerun the page."""
    from analytics.export import safe_file_name

    file_name = safe_file_name(file_name)
    if callable(data):
        s, actor, produce = store(), signin.actor(), data

        def served():
            payload = produce()
            audit.record(s, actor, "export", what, file_name)
            return payload

        st.download_button(label, served, file_name=file_name, mime=mime, key=key, on_click="ignore")
        return

    def record() -> None:
        audit.record(store(), signin.actor(), "export", what, file_name)

    st.download_button(label, data, file_name=file_name, mime=mime, key=key, on_click=record)


def delete_corpus(name: str) -> None:
    """Delete a corpus of the current workspace: an editor's action, checked here whatever the
    page showed. Jobs working on it stop first (an embedding would otherwise end in vain)."""
    s = store()
    with signin.acting("delete", f"corpus {name!r}", store=s):
        for job in executor().jobs(active=True):
            if name in (job.params.get("corpus"), job.params.get("compare")):
                executor().cancel(job.id)
        s.delete_corpus(name)


def rename_corpus(name: str, new: str) -> None:
    """Rename a corpus of the current workspace (an editor's action, checked here)."""
    s = store()
    with signin.acting("rename", f"corpus {name!r}", f"to {new!r}", store=s):
        s.rename_corpus(name, new)


def requester() -> str:
    """Who asks for a job: the signed-in person, or this browser session where there is no
    sign-in. Jobs are bounded per requester, so one person cannot fill the queue."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if signin.mode() in ("accounts", "oidc"):
        return signin.user() or "unknown"
    ctx = get_script_run_ctx()
    return "session " + (ctx.session_id[:8] if ctx else "local")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def job_progress_text(job: Job) -> str:
    """Stage, share done, time so far and an estimate of the rest, in words."""
    if job.state == "queued":
        return f"Waiting to start (job #{job.id})" + (f": {job.message}" if job.message else "")
    text = f"{job.stage} · {job.fraction:.0%} · {_duration(job.elapsed)} elapsed"
    if job.eta is not None:
        text += f" · about {_duration(job.eta)} left"
    if job.message and job.kind == "embed":
        text += f" · {job.message}"
    return text


def follow_job(job: Job, what: str) -> None:
    """Follow a background job in place: its progress (polled each second), a Cancel button,
    and when it ends a rerun of the page, which then reads the result. Leaving the page or
    reloading it does not stop the job: the page finds it again by its content key."""
    job_id = job.id

    @st.fragment(run_every=1.0)
    def panel() -> None:
        current = executor().get(job_id)
        if not current.active:
            st.rerun(scope="app")
        with st.container(border=True):
            st.markdown(f"**{plain(what)}** · job #{current.id} · runs in the background")
            st.progress(current.fraction, text=plain(job_progress_text(current)))
            if current.attempts > 1:
                how = "resumed where it stopped" if current.kind == "embed" else "restarted"
                st.caption(
                    f"The server stopped while this job ran; it was {how} (attempt {current.attempts})."
                )
            if st.button(
                "Cancel", key=f"cancel-job-{job_id}", help="Stops within one batch; what is done is kept."
            ):
                try:
                    cancel_job(current)
                except ExplorerError as exc:
                    st.error(plain(exc))
            st.page_link("views/jobs.py", label="All jobs", icon=":material/pending_actions:")

    panel()


def cancel_job(job: Job) -> None:
    """Cancel a job: one's own, or anyone's for a role that may (checked here, not only by
    hiding the button), and say so in the audit log."""
    what = f"job #{job.id} ({job.kind})"
    if job.requested_by != requester():
        signin.actor().require("cancel_others", what)
    executor().cancel(job.id)
    audit.record(store(), signin.actor(), "cancel", what)


def job_outcome(job: Job | None) -> None:
    """Say how the last job for this request ended, when it did not end well."""
    if job is None or job.active or job.state == "done":
        return
    if job.state == "failed":
        st.error(f"Job #{job.id} failed: {plain(job.error or 'no reason recorded')}")
    elif job.state == "cancelled":
        st.warning(f"Job #{job.id} was cancelled: {plain(job.message)}")


def job_result(kind: str, params: dict, what: str) -> bytes:
    """The stored result of a job request; when there is none yet, submit the job (or join the
    one running), follow it in place and end this page run: the page runs again when it ends.
    A job that failed or was cancelled says so and waits for the user to ask again."""
    ex = executor()
    payload = ex.result(kind, params)
    if payload is not None:
        return payload
    last = ex.find(kind, params)
    if last is not None and last.state in ("failed", "cancelled"):
        job_outcome(last)
        if not st.button("Run it again", key=f"again-{kind}-{last.id}", type="primary"):
            st.stop()
        last = None
    job = last if last is not None and last.active else ex.submit(kind, params, requested_by=requester())
    return followed_result(job, kind, params, what)


def followed_result(job: Job, kind: str, params: dict, what: str) -> bytes:
    """``job``'s stored result; while it runs, its progress in place and the end of this page
    run (the page runs again when it ends); when it ended without a result, how, and the end."""
    if job.active:
        follow_job(job, what)
        st.stop()
    payload = executor().result(kind, params)
    if payload is None:  # it ended without a result: say how
        job_outcome(job)
        st.stop()
    return payload


def jobs_badge() -> None:
    """In the sidebar, on every page: how many jobs run now, linking to the Jobs page."""

    @st.fragment(run_every=5.0)
    def badge() -> None:
        try:
            n = len(executor().jobs(active=True))
        except ExplorerError:  # no store to ask (the page says why)
            return
        if n:
            st.page_link(
                "views/jobs.py", label=f"{n} job{'s' * (n != 1)} running", icon=":material/pending_actions:"
            )

    with st.sidebar:
        badge()
