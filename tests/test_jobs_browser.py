"""Jobs as a user meets them: the real server (``embex serve``), Debian chromium, the real
model. An embedding goes on while its page is left; two sessions asking for one map share one
job; a SIGKILLed server takes its job up again by itself; Cancel stops within one batch. Every
check reads the store afterwards: exactly one vector per text, nothing lost."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from conftest import ROOT, make_corpus, start_server

from analytics.embedding import DEFAULT_MODEL
from analytics.jobs import Executor, Job, published_jobs
from analytics.screenshot import wait_for_app
from analytics.store import Store, text_hash

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "jobs"
N = 3000
MAP = "Object.values(window.__embexScatter || {}).find(h => h.view.root.isConnected)"  # the page's map

if not Path(CHROMIUM).exists():
    pytest.skip(f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing.", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def long_texts(sample_rows):
    """3,000 distinct news articles from the sample (numbered: no vector of them is cached)."""
    return [f"{r['text']} ({i})" for i, r in enumerate(sample_rows[:N])]


def _new_store(path, texts, name="big") -> None:
    with Store(path) as s:
        s.add_corpus(name, make_corpus(texts))


def _stop(proc) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def _one_vector_per_text(path, name: str) -> int:
    """How many of the corpus's texts have a vector, after checking that none has two."""
    with Store(path, read_only=True) as s:
        model_id = next(Job.from_row(r) for r in s.job_rows() if r["kind"] == "embed").params["model_id"]
        table = f"embeddings_{int(s.model_dim(model_id))}"
        sql = f"SELECT count(*), count(DISTINCT text_hash) FROM {table} WHERE model_id = ?"
        rows, distinct = s._cur().execute(sql, [model_id]).fetchall()[0]
        assert rows == distinct, "a text has two vectors"
        return s.embedded_count(name, model_id)


def _start_embedding(page, url: str, name: str) -> None:
    page.goto(f"{url}/embed?corpus={name}")
    wait_for_app(page, 120_000)
    page.get_by_role("button", name="Embed", exact=True).click()
    page.get_by_text("runs in the background").first.wait_for(timeout=120_000)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_embedding_goes_on_while_its_page_is_left(tmp_path, long_texts, browser):
    path = tmp_path / "away.duckdb"
    _new_store(path, long_texts)
    proc, url = start_server(path)
    try:
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        _start_embedding(page, url, "big")
        _shot(page, "embed-running")
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Map", exact=True).click()
        page.get_by_role("heading", name="Map").first.wait_for()
        page.get_by_text("Embed this corpus on the Embed page first").wait_for(timeout=60_000)
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Embed", exact=True).click()
        # back on Embed: the same job, still running, with its progress
        panel = page.get_by_text(re.compile(r"Embedding big · job #1"))
        panel.wait_for(timeout=60_000)
        progress = page.get_by_text(re.compile(r"embedding · \d+% · .* elapsed")).first
        progress.wait_for(timeout=60_000)
        _shot(page, "embed-after-coming-back")
        page.get_by_text("Every text is embedded").wait_for(timeout=600_000)
        published = published_jobs(path)
    finally:
        _stop(proc)
    assert [j.state for j in published[2]] == ["done"]  # one job, and it finished
    n = _one_vector_per_text(path, "big")
    assert n == N


def test_two_sessions_asking_for_one_map_share_one_job(tmp_path, sample_rows, embed_cached, browser):
    path = tmp_path / "shared.duckdb"
    texts = [r["text"] for r in sample_rows[:400]]
    with Store(path) as s:
        s.add_corpus("news", make_corpus(texts))
        s.register_model(DEFAULT_MODEL, 384)
        s.put_vectors(DEFAULT_MODEL, [text_hash(t) for t in texts], embed_cached(texts))
    proc, url = start_server(path)
    try:
        pages = [browser.new_context().new_page() for _ in range(2)]
        for page in pages:  # both ask before either has a map
            page.goto(f"{url}/map?corpus=news&method=umap&n_neighbors=11", wait_until="commit")
        maps = []
        for i, page in enumerate(pages):
            # the WebGL map (dashboard/scatter.py) once drawn: its data version and coordinates
            page.wait_for_function(
                f"() => {{ const h = {MAP}; return h && h.drawn() > 0; }}", timeout=300_000
            )
            maps.append(
                page.evaluate(f"() => {{ const h = {MAP}; return [h.view.version, Array.from(h.view.xy)]; }}")
            )
            _shot(page, f"shared-map-session-{i}")
        published = published_jobs(path)
    finally:
        _stop(proc)
    assert maps[0] == maps[1] and len(maps[0][1]) == 2 * 400  # the same coordinates in both sessions
    projects = [j for j in published[2] if j.kind == "project"]
    assert len(projects) == 1 and projects[0].state == "done"
    assert projects[0].params["n_neighbors"] == 11
    with Store(path, read_only=True) as s:
        assert len([r for r in s.job_rows() if r["kind"] == "project"]) == 1


def test_a_killed_server_takes_its_job_up_again_by_itself(tmp_path, long_texts, browser):
    path = tmp_path / "killed.duckdb"
    texts = [t + " (again)" for t in long_texts]
    _new_store(path, texts)
    proc, url = start_server(path)
    try:
        page = browser.new_page()
        _start_embedding(page, url, "big")
        deadline = time.monotonic() + 600
        while True:  # until part of it is committed, and part is not
            jobs = (published_jobs(path) or (0, 0, []))[2]
            if jobs and jobs[0].fraction >= 0.2:
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.2)
        page.close()
    finally:
        proc.kill()  # SIGKILL: no shutdown, no cleanup
        proc.wait()
    assert jobs[0].state == "running" and jobs[0].fraction < 1
    proc, url = start_server(path)  # nobody opens a page: the server takes the job up itself
    try:
        deadline = time.monotonic() + 600
        while True:
            published = published_jobs(path)
            job = published[2][0] if published and published[0] == proc.pid else None
            if job is not None and not job.active:
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
    finally:
        _stop(proc)
    assert job.state == "done" and job.attempts == 2, job
    n = _one_vector_per_text(path, "big")
    assert n == N
    with Store(path, read_only=True) as s:
        assert len(s.job_rows()) == 1


def test_cancel_stops_within_one_batch_and_keeps_what_was_done(tmp_path, long_texts):
    store = Store(tmp_path / "cancel.duckdb")
    store.add_corpus("big", make_corpus([t + " (cancel)" for t in long_texts]))
    ex = Executor(store)
    try:
        job = ex.submit("embed", {"corpus": "big", "device": "cpu", "precision": "float32"})
        while True:
            current = ex.get(job.id)
            done = re.match(r"([\d,]+) of", current.message or "")
            if done and int(done.group(1).replace(",", "")) > 0:
                break
            assert current.active, current
            time.sleep(0.05)
        at_cancel = int(done.group(1).replace(",", ""))
        ex.cancel(job.id)
        ended = ex.wait(job.id, timeout=300)
        kept = store.embedded_count("big", ended.params["model_id"])
    finally:
        ex.shutdown()
        store.close()
    assert ended.state == "cancelled"
    assert at_cancel <= kept < N
    assert kept - at_cancel <= 2 * 256  # the batch that was reported and the one in flight
    assert f"({kept:,} of {N:,} distinct texts)" in ended.message  # it says what it kept


def test_a_corpus_deleted_while_it_is_embedded_leaves_no_orphans_and_says_so(
    tmp_path, long_texts, embed_cached
):
    store = Store(tmp_path / "deleted.duckdb")
    texts = [t + " (deleted)" for t in long_texts]
    store.add_corpus("big", make_corpus(texts))
    kept = ["a text another corpus keeps", "and its second text"]
    earlier = ["a text whose corpus was deleted earlier"]  # unused, kept for a re-ingest
    store.add_corpus("keep", make_corpus(kept))
    store.add_corpus("earlier", make_corpus(earlier))
    store.register_model(DEFAULT_MODEL, 384)
    store.put_vectors(DEFAULT_MODEL, [text_hash(t) for t in kept + earlier], embed_cached(kept + earlier))
    store.delete_corpus("earlier")
    ex = Executor(store)
    try:
        job = ex.submit("embed", {"corpus": "big", "device": "cpu", "precision": "float32"})
        while not re.match(r"[1-9][\d,]* of", ex.get(job.id).message or ""):
            assert ex.get(job.id).active
            time.sleep(0.05)
        store.delete_corpus("big")
        ended = ex.wait(job.id, timeout=300)
        in_store = {
            h
            for (h,) in store._cur()
            .execute("SELECT text_hash FROM embeddings_384 WHERE model_id = ?", [DEFAULT_MODEL])
            .fetchall()
        }
    finally:
        ex.shutdown()
        store.close()
    assert ended.state == "failed" and "deleted or replaced while it was being embedded" in ended.error
    assert in_store == {text_hash(t) for t in kept + earlier}  # none of big's; the rest untouched
