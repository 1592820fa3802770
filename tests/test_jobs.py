"""The job layer on real DuckDB files, real worker processes and real (small) UMAP/PCA work:
identical requests share one job, limits hold, cancel stops work and keeps what was done, and a
job interrupted by a dead process is taken up by the next one."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import ROOT, make_corpus

from analytics.errors import ParameterError, StoreError
from analytics.jobs import (
    KINDS,
    Executor,
    JobKind,
    published_jobs,
    register,
    request_cancel,
)
from analytics.store import Store, text_hash


def _vectors(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _corpus(store: Store, name: str, n: int, model: str = "m", seed: int = 0) -> None:
    texts = [f"{name} text {i}" for i in range(n)]
    store.add_corpus(name, make_corpus(texts))
    store.register_model(model, 16)
    store.put_vectors(model, [text_hash(t) for t in texts], _vectors(n, seed=seed))


@pytest.fixture
def ex(tmp_path):
    store = Store(tmp_path / "jobs.duckdb")
    _corpus(store, "small", 300)
    executor = Executor(store)
    yield executor
    executor.shutdown()
    store.close()


UMAP = {"corpus": "small", "model_id": "m", "method": "umap"}
PCA = {"corpus": "small", "model_id": "m", "method": "pca"}


def _job_count(store: Store) -> int:
    return len(store.job_rows(limit=10_000))


# a kind whose run waits until the test lets it go: shows the executor's limits at work without
# timing anything. Its parameters carry the event's name; resource "model" for the GPU rule.
_GATES: dict[str, threading.Event] = {}


def _gate_prepare(store, params):
    return dict(params), "gate:" + params["gate"]


def _gate_run(ctx):
    gate = _GATES[ctx.params["gate"]]
    while not gate.wait(0.05):
        if ctx.cancelled():
            from analytics.pool import Cancelled

            raise Cancelled()
        ctx.progress("waiting at the gate", 0.5)


register(JobKind("gate", _gate_prepare, lambda store, params: False, _gate_run))
register(JobKind("gate-model", _gate_prepare, lambda store, params: False, _gate_run, resource="model"))


def _gate(name: str) -> threading.Event:
    return _GATES.setdefault(name, threading.Event())


def _until(predicate, what: str, timeout: float = 60):
    """Wait for a state (not a time: the timeout only bounds a broken run)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.02)


def test_a_map_job_computes_caches_and_is_not_run_twice(ex):
    job = ex.submit("project", UMAP, requested_by="a")
    done = ex.wait(job.id, timeout=300)
    assert done.state == "done" and done.fraction == 1.0 and done.attempts == 1
    assert "UMAP" in done.message
    assert ex.store.has_result(done.key)
    again = ex.submit("project", {**UMAP, "n_neighbors": 15}, requested_by="b")  # 15 is the default
    assert again.id == job.id and again.state == "done"
    assert _job_count(ex.store) == 1


def test_identical_requests_at_once_share_one_job(ex):
    ids, barrier = [], threading.Barrier(4)

    def ask(who):
        barrier.wait()
        ids.append(ex.submit("project", {**UMAP, "method": "tsne"}, requested_by=who).id)

    threads = [threading.Thread(target=ask, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert ex.wait(ids[0], timeout=300).state == "done"
    assert _job_count(ex.store) == 1


def test_a_result_computed_elsewhere_is_recorded_once_as_done(ex):
    from analytics.projection import corpus_projection

    corpus_projection(ex.store, "small", "m", "pca")  # as the CLI or a report would
    job = ex.submit("project", PCA)
    assert job.state == "done" and job.message == "already computed"
    assert ex.submit("project", PCA).id == job.id


@pytest.mark.parametrize(
    "method, word",
    [pytest.param("umap", "UMAP epoch", marks=pytest.mark.slow), ("tsne", "t-SNE iteration")],
)
def test_umap_and_tsne_report_their_iterations(method, word):
    """What a map job's progress bar shows: UMAP by epoch, t-SNE by iteration, never backwards."""
    from analytics.projection import project

    seen = []
    project(_vectors(200), method, progress=lambda stage, f: seen.append((stage, f)))
    steps = [stage for stage, _ in seen if stage.startswith(word)]
    assert steps, seen
    n, total = steps[-1].removeprefix(word).split(" of ")
    assert n.strip() == total.strip()  # the last report is the last epoch or iteration
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancel_a_running_map_kills_its_worker_and_stores_nothing(tmp_path):
    store = Store(tmp_path / "big.duckdb")
    _corpus(store, "big", 4000, seed=1)
    ex = Executor(store)
    try:
        job = ex.submit("project", {"corpus": "big", "model_id": "m", "method": "tsne"})
        _until(lambda: ex.get(job.id).state == "running", "the t-SNE job runs")
        ex.cancel(job.id)
        ended = ex.wait(job.id, timeout=60)
        assert ended.state == "cancelled" and ended.finished is not None
        assert not store.has_result(job.key)
        # the next request is a new job, which computes
        again = ex.submit("project", {"corpus": "big", "model_id": "m", "method": "pca"})
        assert ex.wait(again.id, timeout=120).state == "done"
    finally:
        ex.shutdown()
        store.close()


def test_an_outliers_job_shows_its_neighbour_search_and_stops_in_it_when_cancelled(tmp_path):
    """The k-NN search is most of an outliers job: its bar moves through it a batch at a time,
    and a cancel stops it there (nothing stored); the same request then runs to the end."""
    store = Store(tmp_path / "outliers.duckdb")
    _corpus(store, "big", 40_000, seed=2)
    ex = Executor(store)
    try:
        job = ex.submit("outliers", {"corpus": "big", "model_id": "m"})
        stages = []

        def searching():
            now = ex.get(job.id)
            stages.append((now.stage, now.fraction))
            return now.stage == "each text's nearest neighbours" or now.state != "queued" and now.finished

        _until(searching, "the neighbour search reports", timeout=120)
        ex.cancel(job.id)
        ended = ex.wait(job.id, timeout=120)
        assert ended.state == "cancelled", (ended.state, stages)
        assert 0.1 < ended.fraction < 1.0 and not store.has_result(job.key)
        again = ex.submit("outliers", {"corpus": "big", "model_id": "m"})
        assert ex.wait(again.id, timeout=300).state == "done" and store.has_result(again.key)
    finally:
        ex.shutdown()
        store.close()


def test_cancel_a_queued_job_and_it_never_starts(ex):
    gate = _gate("q")
    first = ex.submit("gate", {"gate": "q"}, requested_by="same")
    second = ex.submit("gate", {"gate": "q2"}, requested_by="same")  # one per requester at a time
    _until(lambda: ex.get(first.id).state == "running", "the first runs")
    assert ex.get(second.id).state == "queued"
    assert ex.cancel(second.id).state == "cancelled"
    gate.set()
    _GATES["q2"] = threading.Event()
    assert ex.wait(first.id, timeout=60).state == "done"
    time.sleep(ex.poll * 3)  # give the dispatcher rounds in which it could wrongly start it
    assert ex.get(second.id).state == "cancelled" and ex.get(second.id).started is None


def test_limits_per_requester_in_total_and_one_model_job_at_a_time(tmp_path):
    store = Store(tmp_path / "limits.duckdb")
    ex = Executor(store, max_running=2, max_per_requester=1)
    try:
        for name in ("a1", "a2", "b1", "c1", "m1", "m2"):
            _gate(name).clear()
        a1 = ex.submit("gate", {"gate": "a1"}, requested_by="alice")
        a2 = ex.submit("gate", {"gate": "a2"}, requested_by="alice")
        b1 = ex.submit("gate", {"gate": "b1"}, requested_by="bob")
        c1 = ex.submit("gate", {"gate": "c1"}, requested_by="carol")
        _until(lambda: ex.get(a1.id).state == ex.get(b1.id).state == "running", "alice's and bob's first run")
        time.sleep(ex.poll * 3)
        assert ex.get(a2.id).state == "queued"  # alice already has one running
        assert ex.get(c1.id).state == "queued"  # two run in total
        for name in ("a1", "b1", "a2", "c1"):
            _gate(name).set()
        for job in (a1, a2, b1, c1):
            assert ex.wait(job.id, timeout=60).state == "done"

        m1 = ex.submit("gate-model", {"gate": "m1"}, requested_by="alice")
        m2 = ex.submit("gate-model", {"gate": "m2"}, requested_by="bob")
        _until(lambda: ex.get(m1.id).state == "running", "the first model job runs")
        time.sleep(ex.poll * 3)
        assert ex.get(m2.id).state == "queued"  # the model (the GPU) takes one job at a time
        _gate("m1").set()
        _until(lambda: ex.get(m2.id).state == "running", "the second model job runs after it")
        _gate("m2").set()
        assert ex.wait(m2.id, timeout=60).state == "done"
    finally:
        for gate in _GATES.values():
            gate.set()
        ex.shutdown()
        store.close()


def test_the_limits_hold_across_the_workspaces_of_one_server(tmp_path):
    """A team server has an executor per workspace store: one person's jobs in two workspaces
    still run one at a time, and the total holds across them."""
    from analytics.jobs import executor_for

    one = executor_for(tmp_path / "news.duckdb", max_running=2, max_per_requester=1)
    two = executor_for(tmp_path / "legal.duckdb", max_running=2, max_per_requester=1)
    try:
        for name in ("x1", "x2", "y1", "z1"):
            _gate(name).clear()
        x1 = one.submit("gate", {"gate": "x1"}, requested_by="alice")
        _until(lambda: one.get(x1.id).state == "running", "alice's job in news runs")
        x2 = two.submit("gate", {"gate": "x2"}, requested_by="alice")
        y1 = two.submit("gate", {"gate": "y1"}, requested_by="bob")
        _until(lambda: two.get(y1.id).state == "running", "bob's job in legal runs")
        z1 = one.submit("gate", {"gate": "z1"}, requested_by="carol")
        time.sleep(one.poll * 4)
        assert two.get(x2.id).state == "queued"  # alice runs one already, in the other workspace
        assert one.get(z1.id).state == "queued"  # two run in total on this server
        _gate("x1").set()
        _until(lambda: two.get(x2.id).state == "running" or one.get(z1.id).state == "running", "a slot frees")
        for name in ("x2", "y1", "z1"):
            _gate(name).set()
        assert one.wait(z1.id, timeout=60).state == "done" and two.wait(x2.id, timeout=60).state == "done"
    finally:
        for gate in _GATES.values():
            gate.set()
        for ex in (one, two):
            ex.shutdown()
            ex.store.close()


def test_a_requester_cannot_fill_the_queue(ex):
    from analytics.jobs import MAX_QUEUED_PER_REQUESTER

    _gate("fill").clear()
    for i in range(MAX_QUEUED_PER_REQUESTER):
        _gate(f"fill{i}").clear()
        ex.submit("gate", {"gate": f"fill{i}"}, requested_by="greedy")
    with pytest.raises(ParameterError, match="queued or running"):
        ex.submit("gate", {"gate": "fill"}, requested_by="greedy")
    ex.submit("gate", {"gate": "fill"}, requested_by="someone else")  # others still get in
    for gate in _GATES.values():
        gate.set()


def test_bad_requests_are_refused_at_submit_with_a_message(ex):
    with pytest.raises(ParameterError, match="Unknown job kind"):
        ex.submit("mine bitcoin", {})
    with pytest.raises(StoreError, match="No corpus named .nope."):
        ex.submit("project", {**UMAP, "corpus": "nope"})
    with pytest.raises(ParameterError, match="n_neighbors"):
        ex.submit("project", {**UMAP, "n_neighbors": 10**6})
    assert _job_count(ex.store) == 0


def test_a_job_that_fails_records_the_message(ex):
    ex.store.add_corpus("unembedded", make_corpus(["x one", "x two", "x three"]))
    job = ex.submit("project", {"corpus": "unembedded", "model_id": "m", "method": "pca"})
    ended = ex.wait(job.id, timeout=60)
    assert ended.state == "failed" and "embed" in ended.error


def test_a_job_running_when_its_process_died_is_taken_up_at_the_next_start(tmp_path):
    path = tmp_path / "crash.duckdb"
    with Store(path) as store:
        _corpus(store, "small", 300)
        # what a killed process leaves behind: a job marked running that nothing runs
        job_id = store.add_job("project", json.dumps(_params(store, PCA)), _key(store, PCA), "x", time.time())
        store.update_job(job_id, state="running", started=time.time(), attempts=1)
    store = Store(path)
    ex = Executor(store)
    try:
        ended = ex.wait(job_id, timeout=120)
        assert ended.state == "done" and ended.attempts == 2
        assert store.has_result(ended.key)
        assert _job_count(store) == 1
    finally:
        ex.shutdown()
        store.close()


def _params(store, params):
    return KINDS["project"].prepare(store, dict(params))[0]


def _key(store, params):
    return KINDS["project"].prepare(store, dict(params))[1]


def test_the_jobs_list_is_published_beside_the_store_and_cancel_requests_are_taken(ex):
    _gate("side").clear()
    job = ex.submit("gate", {"gate": "side"}, requested_by="cli test")
    _until(lambda: ex.get(job.id).state == "running", "the job runs")
    _until(lambda: (published_jobs(ex.store.path) or (0, 0, []))[2], "the list is published")
    pid, _, jobs = published_jobs(ex.store.path)
    assert jobs[0].id == job.id and jobs[0].requested_by == "cli test"
    request_cancel(ex.store.path, job.id)
    assert ex.wait(job.id, timeout=60).state == "cancelled"
    _until(lambda: published_jobs(ex.store.path)[2][0].state == "cancelled", "the list says so")


def _embex(*args, store):
    return subprocess.run(
        [sys.executable, "-m", "analytics.cli", *args, "--store", str(store)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embex_jobs_lists_and_cancels_with_no_server(tmp_path):
    path = tmp_path / "cli.duckdb"
    with Store(path) as store:
        _corpus(store, "small", 300)
        job_id = store.add_job("project", json.dumps(_params(store, PCA)), _key(store, PCA), "x", time.time())
    out = _embex("jobs", store=path)
    assert out.returncode == 0 and f"{job_id:>5}  project  queued" in out.stdout
    out = _embex("jobs", "cancel", str(job_id), store=path)
    assert out.returncode == 0, out.stderr
    with Store(path) as store:
        assert store.job_rows(job_id=job_id)[0]["state"] == "cancelled"
    out = _embex("jobs", "cancel", store=path)
    assert out.returncode == 2 and "Which job?" in out.stderr and "Traceback" not in out.stderr


def test_embex_jobs_while_another_process_holds_the_store(tmp_path):
    """The dashboard holds the file: list what it published, leave it a cancel request; the
    writing commands say who holds the store (one line, no traceback)."""
    path = tmp_path / "held.duckdb"
    with Store(path) as store:
        _corpus(store, "small", 300)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\n"
            "from analytics.jobs import JobKind, executor_for, register\n"
            "from analytics.pool import Cancelled\n"
            "def run(ctx):\n"
            "    while not ctx.cancelled():\n"
            "        time.sleep(0.05)\n"
            "    raise Cancelled()\n"
            "register(JobKind('wait', lambda s, p: (p, 'wait'), lambda s, p: False, run))\n"
            f"ex = executor_for({str(path)!r})\n"
            "job = ex.submit('wait', {})\n"
            "print('ready', job.id, flush=True)\n"
            "print(ex.wait(job.id, timeout=100).state, flush=True)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().split()[0] == "ready"
        _until(lambda: (published_jobs(path) or (0, 0, []))[2], "the holder publishes its jobs")
        out = _embex("jobs", store=path)
        assert out.returncode == 0 and f"held by process {holder.pid}" in out.stdout
        assert "wait" in out.stdout
        out = _embex("gc", store=path)
        assert out.returncode == 2 and "open in another process" in out.stderr
        assert "Traceback" not in out.stderr
        out = _embex("jobs", "cancel", "1", store=path)
        assert out.returncode == 0 and "Asked the process" in out.stdout
        assert holder.stdout.readline().strip() == "cancelled"
    finally:
        holder.kill()
        holder.wait()


def test_a_shift_job_gives_the_numbers_of_shift_test_and_caches_them(ex):
    from analytics.shift import ShiftResult, shift_test

    _corpus(ex.store, "other", 200, seed=7)
    request = {"corpus": "small", "compare": "other", "model_id": "m", "permutations": 99}
    job = ex.wait(ex.submit("shift", request).id, timeout=120)
    assert job.state == "done" and job.stage == "done"
    cached = ShiftResult.from_bytes(ex.result("shift", request))
    direct = shift_test(ex.store.vectors("small", "m"), ex.store.vectors("other", "m"), permutations=99)
    assert (cached.q, cached.w, cached.p, cached.p_permutation) == (
        direct.q,
        direct.w,
        direct.p,
        direct.p_permutation,
    )
    np.testing.assert_array_equal(cached.depths_g, direct.depths_g)
    assert ex.submit("shift", request).id == job.id  # computed once
    with pytest.raises(ParameterError, match="two different corpora"):
        ex.submit("shift", {**request, "compare": "small"})


def test_a_report_job_stores_the_html_and_the_map_it_drew(ex):
    _corpus(ex.store, "other", 200, seed=7)
    request = {"corpus": "small", "compare": "other", "model_id": "m", "method": "pca"}
    job = ex.wait(ex.submit("report", request).id, timeout=300)
    assert job.state == "done", job
    report = json.loads(ex.result("report", request))
    assert "<h1>Embedding Explorer report: small vs other</h1>" in report["html"]
    assert report["shift"].startswith(("G has shifted", "No "))
    assert (
        ex.submit("project", {"corpus": "small", "model_id": "m", "method": "pca"}).message
        == "already computed"
    )


def test_a_shift_job_warns_when_f_and_g_share_texts(ex):
    from analytics.shift import ShiftResult

    texts = [f"small text {i}" for i in range(300)]  # the texts of the fixture's corpus "small"
    ex.store.add_corpus("half of small", make_corpus(texts[:150]))
    request = {"corpus": "small", "compare": "half of small", "model_id": "m", "permutations": 49}
    assert ex.wait(ex.submit("shift", request).id, timeout=120).state == "done"
    notes = ShiftResult.from_bytes(ex.result("shift", request)).notes
    assert any(n.startswith("F and G overlap: 150 of 150 G texts overlap F (150 identical") for n in notes)


def test_an_outliers_job_ranks_as_find_outliers_does_and_caches_it(ex):
    from analytics.outliers import OutlierReport, find_outliers
    from analytics.results import from_bytes

    request = {"corpus": "small", "model_id": "m", "count": 7, "k": 5, "by": "combined"}
    job = ex.wait(ex.submit("outliers", request).id, timeout=120)
    assert job.state == "done" and "7 outliers flagged by combined depth" in job.message
    cached = from_bytes(OutlierReport, ex.result("outliers", request))
    direct = find_outliers(ex.store.vectors("small", "m"), count=7, k=5, by="combined")
    np.testing.assert_array_equal(cached.flagged, direct.flagged)
    np.testing.assert_array_equal(cached.neighbours, direct.neighbours)
    assert (cached.by, cached.k) == ("combined", 5)
    assert ex.submit("outliers", request).id == job.id
    with pytest.raises(ParameterError, match="by"):
        ex.submit("outliers", {**request, "by": "vibes"})


def test_several_corpora_on_one_map_are_projected_together(ex):
    """A joint map (the shift test's F and G on one picture): its rows are each corpus's in
    order, its key differs from either corpus's own map, and PCA of the stacked vectors is what
    the job drew."""
    from analytics.projection import cached_projection, project, projection_request

    _corpus(ex.store, "other", 120, seed=1)
    job = ex.submit("project", {**PCA, "others": ["other", "small"]})  # "small" itself is dropped
    _until(lambda: ex.get(job.id).state == "done", "the joint map is drawn")
    request = projection_request(ex.store, "small", "m", "pca", others=["other"])
    assert request.names == ("small", "other")
    assert request.key != projection_request(ex.store, "small", "m", "pca").key
    coords = cached_projection(ex.store, request).coords
    assert coords.shape == (420, 2)
    X = np.concatenate([_vectors(300), _vectors(120, seed=1)])
    expected = project(X, method="pca").coords
    assert np.allclose(np.abs(coords), np.abs(expected), atol=1e-4)
    assert cached_projection(ex.store, projection_request(ex.store, "small", "m", "pca")) is None
