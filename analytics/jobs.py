"""Background jobs: long work runs outside the page that asked for it, survives page changes,
reloads and restarts, and is computed once.

A job is a row in the store's ``jobs`` table (kind, parameters, content key, state, stage,
fraction, message, who asked, times, error), so its progress is durable and any page, session
or ``embex jobs`` can follow it. The :class:`Executor` belongs to the process that owns the
store file (DuckDB allows one writer process): it runs jobs in threads (I/O, torch, numpy),
sends CPU-bound pure work (UMAP, t-SNE) to a :class:`~analytics.pool.ProcessPool`, bounds how
many run at once (in total, per requester, and one model job at a time), cancels, and on start
takes up the jobs that were running when the last process died.

A job is known by its content key (what it computes from what): asking again for the same
thing joins the job that is running or returns the finished one, whose result is cached.

>>> ex = executor_for("explorer.duckdb")
>>> job = ex.submit("project", {"corpus": "news", "model_id": DEFAULT_MODEL, "method": "umap"})
>>> ex.wait(job.id).state
'done'
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ExplorerError, ParameterError, StoreError
from .pool import Cancelled, ProcessPool, WorkerError
from .store import Store, default_store_path

log = logging.getLogger("embex.jobs")

#: a job's life: queued -> running -> done | failed | cancelled (a restart puts running back
#: to queued)
STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
#: the most queued or running jobs one requester may have
MAX_QUEUED_PER_REQUESTER = 20


@dataclass(frozen=True)
class Job:
    """One row of the jobs table."""

    id: int
    kind: str
    params: dict
    key: str
    state: str
    stage: str
    fraction: float
    message: str
    requested_by: str
    created: float
    started: float | None
    finished: float | None
    error: str | None
    attempts: int

    @classmethod
    def from_row(cls, row: dict) -> Job:
        return cls(
            id=int(row["job_id"]),
            kind=row["kind"],
            params=json.loads(row["params"]),
            key=row["key"],
            state=row["state"],
            stage=row["stage"],
            fraction=float(row["fraction"]),
            message=row["message"],
            requested_by=row["requested_by"],
            created=row["created"],
            started=row["started"],
            finished=row["finished"],
            error=row["error"],
            attempts=int(row["attempts"]),
        )

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def elapsed(self) -> float:
        """Seconds it has run (so far, or in all)."""
        if self.started is None:
            return 0.0
        return max(0.0, (self.finished or time.time()) - self.started)

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, once there is a rate to go by."""
        if self.state != "running" or self.fraction < 0.05 or self.elapsed < 2:
            return None
        return self.elapsed * (1 - self.fraction) / self.fraction

    def describe(self) -> str:
        """One line: what, on what, and how far."""
        what = self.params.get("corpus") or ""
        if self.kind == "project":
            what += f" · {str(self.params.get('method', '')).upper()}"
        line = f"#{self.id} {self.kind} {what} · {self.state}"
        if self.state == "running":
            line += f" · {self.stage} · {self.fraction:.0%}"
        if self.error:
            line += f" · {self.error}"
        elif self.message:
            line += f" · {self.message}"
        return line


class JobContext:
    """What a running job sees: its parameters, the store, progress reporting and the cancel flag."""

    def __init__(self, executor: Executor, job: Job):
        self.executor, self.job, self.params = executor, job, job.params
        self.store = executor.store
        self.cancel_event = threading.Event()
        self._last_write = 0.0
        self._last_stage = None

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def progress(self, stage: str, fraction: float, message: str | None = None) -> None:
        """Report progress; written to the store at most every half second (the first report
        at once). Pages in this process read the freshest value from memory."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        self.executor._live[self.job.id] = (stage, fraction, message)
        now = time.monotonic()
        if self._last_stage is None or now - self._last_write >= 0.5:
            self._last_write, self._last_stage = now, stage
            fields = {"stage": stage, "fraction": fraction}
            if message is not None:
                fields["message"] = message
            self.store.update_job(self.job.id, **fields)

    def checkpoint(self, stage: str, fraction: float) -> None:
        """:meth:`progress`, and the place where a cancelled job stops (raises Cancelled):
        the progress hook of work that has no stop flag of its own."""
        self.progress(stage, fraction)
        if self.cancelled():
            raise Cancelled()

    def say(self, message: str) -> None:
        self.executor._live.pop(self.job.id, None)
        self.store.update_job(self.job.id, message=message)


@dataclass(frozen=True)
class JobKind:
    """What a kind of job computes. ``prepare(store, params)`` checks the parameters (raising
    an :class:`ExplorerError` that says what is wrong) and returns them normalised with the
    content key; ``done(store, params)`` says whether the result is already there (None: it is
    when the store's result cache holds the content key); ``run(ctx)``
    computes it, reporting progress and stopping when cancelled. ``resource``: jobs of the same
    resource "model" run one at a time (the model, the GPU). ``on_restart``: what happens to a
    job that was running when its process died ("resumed" keeps what was done)."""

    name: str
    prepare: Callable
    done: Callable | None
    run: Callable
    resource: str = "cpu"
    on_restart: str = "restarted"


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    KINDS[kind.name] = kind
    return kind


class Executor:
    """Runs the jobs of one store; owned by the process that owns the store file.

    max_running : jobs running at once in total.
    max_per_requester : jobs of one requester running at once (the rest wait, queued).
    max_queued_per_requester : jobs of one requester queued or running; past it a request is
        refused with a message.
    processes : worker processes for CPU-bound pure work (UMAP, t-SNE).
    resume : take up the jobs that were queued or running when the last process stopped.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_running: int = 2,
        max_per_requester: int = 1,
        max_queued_per_requester: int = MAX_QUEUED_PER_REQUESTER,
        processes: int = 1,
        resume: bool = True,
        poll: float = 0.25,
    ):
        self.store = store
        self.max_running, self.max_per_requester = int(max_running), int(max_per_requester)
        self.max_queued_per_requester = int(max_queued_per_requester)
        self.pool = ProcessPool(processes)
        self.poll = poll
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._running: dict[int, tuple[JobContext, threading.Thread]] = {}
        self._live: dict[int, tuple] = {}
        self._closed = False
        self._dirty, self._published = True, 0.0
        self._pool_wanted = threading.Event()  # a job has asked for the worker pool
        self._sidecar = None if str(store.path) == ":memory:" else sidecar(store.path)
        if resume and not store.read_only:
            self._take_up_interrupted()
        self._dispatcher = threading.Thread(target=self._dispatch, name="embex-jobs", daemon=True)
        self._dispatcher.start()

    # -- asking ----------------------------------------------------------------------------------

    def prepare(self, kind: str, params: dict | None = None) -> tuple[JobKind, dict, str]:
        """The kind, the checked parameters and the content key of a request (nothing runs)."""
        if kind not in KINDS:
            raise ParameterError(f"Unknown job kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}.")
        spec = KINDS[kind]
        params, key = spec.prepare(self.store, dict(params or {}))
        return spec, params, key

    def find(self, kind: str, params: dict | None = None) -> Job | None:
        """The newest job for this request (running, or finished), or None."""
        _, _, key = self.prepare(kind, params)
        rows = self.store.job_rows(key=key, limit=1)
        return self._with_live(Job.from_row(rows[0])) if rows else None

    def result(self, kind: str, params: dict | None = None) -> bytes | None:
        """The cached result of a request (kinds whose result is a stored payload), or None."""
        _, _, key = self.prepare(kind, params)
        return self.store.get_result(key)

    def submit(self, kind: str, params: dict | None = None, *, requested_by: str = "local") -> Job:
        """Ask for a job. The same request as a queued or running job joins it; one whose
        result is already there returns the finished job (recorded once, if the result came
        from elsewhere: the CLI, an older version)."""
        spec, params, key = self.prepare(kind, params)
        requested_by = str(requested_by)[:200]
        with self._lock:
            active = self.store.job_rows(key=key, states=ACTIVE, limit=1)
            if active:
                return self._with_live(Job.from_row(active[0]))
            if spec.done(self.store, params) if spec.done else self.store.has_result(key):
                done = self.store.job_rows(key=key, states=("done",), limit=1)
                if done:
                    return Job.from_row(done[0])
                job_id = self._insert(spec, params, key, requested_by)
                now = time.time()
                self.store.update_job(
                    job_id, state="done", fraction=1.0, started=now, finished=now, message="already computed"
                )
                return self.get(job_id)
            mine = [
                r
                for r in self.store.job_rows(states=ACTIVE, limit=10_000)
                if r["requested_by"] == requested_by
            ]
            if len(mine) >= self.max_queued_per_requester:
                raise ParameterError(
                    f"{len(mine)} of your jobs are queued or running; wait for some to finish, "
                    "or cancel some on the Jobs page (embex jobs cancel ID)."
                )
            job_id = self._insert(spec, params, key, requested_by)
            self._dirty = True
            self._wake.notify_all()
        return self.get(job_id)

    def _insert(self, spec: JobKind, params: dict, key: str, requested_by: str) -> int:
        return self.store.add_job(
            spec.name, json.dumps(params, sort_keys=True), key, requested_by, time.time()
        )

    def get(self, job_id: int) -> Job:
        rows = self.store.job_rows(job_id=int(job_id), limit=1)
        if not rows:
            raise StoreError(f"There is no job {job_id} in this store.")
        return self._with_live(Job.from_row(rows[0]))

    def jobs(self, *, active: bool | None = None, limit: int = 50) -> list[Job]:
        """Newest first: the active ones (active=True), the ended ones (False), or all."""
        states = ACTIVE if active else (("done", "failed", "cancelled") if active is False else None)
        return [self._with_live(Job.from_row(r)) for r in self.store.job_rows(states=states, limit=limit)]

    def _with_live(self, job: Job) -> Job:
        """The row, with the freshest progress of a job running in this process."""
        live = self._live.get(job.id) if job.state == "running" else None
        if live is None:
            return job
        stage, fraction, message = live
        return Job(
            **{**job.__dict__, "stage": stage, "fraction": fraction, "message": message or job.message}
        )

    def cancel(self, job_id: int) -> Job:
        """Stop a job: a queued one never starts; a running one stops within one batch (an
        embedding keeps what it committed) or at once (work in a worker process)."""
        with self._lock:
            self._cancel(int(job_id))
        return self.get(job_id)

    def _cancel(self, job_id: int) -> None:  # with the lock held
        job = self.get(job_id)
        if job.state == "queued":
            self.store.update_job(
                job.id, state="cancelled", finished=time.time(), message="cancelled before it started"
            )
        elif job.state == "running" and job.id in self._running:
            self._running[job.id][0].cancel_event.set()
            self.store.update_job(job.id, message="cancelling…")
        self._dirty = True

    def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """Block until the job has ended (or ``timeout`` seconds passed); returns it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if not job.active or (deadline is not None and time.monotonic() > deadline):
                return job
            time.sleep(0.05)

    # -- running ---------------------------------------------------------------------------------

    def _take_up_interrupted(self) -> None:
        for row in self.store.job_rows(states=ACTIVE, limit=10_000):
            if row["state"] == "running":
                how = KINDS[row["kind"]].on_restart if row["kind"] in KINDS else "restarted"
                self.store.update_job(
                    row["job_id"],
                    state="queued",
                    message=f"{how} after a restart (the server stopped while it ran)",
                )
                log.info("job %s (%s) will be %s after a restart", row["job_id"], row["kind"], how)

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                self._wake.wait(self.poll)
                if self._closed:
                    return
                try:
                    self._take_requests()
                    self._start_what_fits()
                    self._publish()
                except ExplorerError as exc:  # a damaged or read-only store: nothing can start
                    log.warning("jobs cannot start: %s", exc)
                except OSError as exc:  # the sidecar folder: jobs still run without it
                    log.warning("the jobs snapshot could not be written: %s", exc)

    def _publish(self) -> None:
        """Write the jobs list beside the store (``embex jobs`` reads it while this process
        holds the file): after each change, and each second while jobs run."""
        if self._sidecar is None or not (
            self._dirty or (self._running and time.time() - self._published >= 1)
        ):
            return
        self._sidecar.mkdir(exist_ok=True)
        if not self._published:  # first: the audit log as it stands (audit.record keeps it fresh)
            from .audit import publish

            publish(self.store)
        rows = [self._with_live(Job.from_row(r)).__dict__ for r in self.store.job_rows(limit=100)]
        tmp = self._sidecar / f"jobs.json.{os.getpid()}"
        tmp.write_text(json.dumps({"pid": os.getpid(), "written": time.time(), "jobs": rows}))
        os.replace(tmp, self._sidecar / "jobs.json")
        self._dirty, self._published = False, time.time()

    def _take_requests(self) -> None:
        """Cancel requests that ``embex jobs cancel`` left beside the store, and backup requests
        from ``embex backup`` (each copied in a thread of its own: :mod:`analytics.backup`)."""
        if self._sidecar is None or not self._sidecar.is_dir():
            return
        from .backup import take_requests as take_backup_requests

        take_backup_requests(self.store, self._sidecar)
        for entry in self._sidecar.glob("cancel-*"):
            job_id = entry.name.removeprefix("cancel-")
            entry.unlink(missing_ok=True)
            if job_id.isdigit() and self.store.job_rows(job_id=int(job_id), limit=1):
                self._cancel(int(job_id))

    def _start_what_fits(self) -> None:
        # the limits hold for the whole process (a server with several workspaces, each with
        # its executor), not per store: count the jobs the other executors run too
        elsewhere = _running_elsewhere(self)
        if len(self._running) + len(elsewhere) >= self.max_running:
            return
        queued = sorted(self.store.job_rows(states=("queued",), limit=1000), key=lambda r: r["job_id"])
        for row in queued:
            if len(self._running) + len(elsewhere) >= self.max_running:
                return
            job = Job.from_row(row)
            spec = KINDS.get(job.kind)
            if spec is None:
                self.store.update_job(
                    job.id, state="failed", finished=time.time(), error=f"unknown job kind {job.kind!r}"
                )
                continue
            busy = [ctx.job for ctx, _ in self._running.values()] + elsewhere
            if sum(j.requested_by == job.requested_by for j in busy) >= self.max_per_requester:
                continue
            if spec.resource == "model" and any(KINDS[j.kind].resource == "model" for j in busy):
                continue
            ctx = JobContext(self, job)
            self.store.update_job(
                job.id, state="running", started=time.time(), attempts=job.attempts + 1, stage="starting"
            )
            thread = threading.Thread(
                target=self._run, args=(ctx, spec), name=f"embex-job-{job.id}", daemon=True
            )
            self._running[job.id] = (ctx, thread)
            thread.start()

    def _run(self, ctx: JobContext, spec: JobKind) -> None:
        job_id = ctx.job.id
        fields: dict = {}
        try:
            spec.run(ctx)  # raises Cancelled when it stopped early for a cancel
            fields = {"state": "done", "fraction": 1.0, "stage": "done"}
        except Cancelled:
            done = self._live.get(job_id, (None, None, None))[2]
            fields = {
                "state": "cancelled",
                "message": "cancelled; what was done is kept" + (f" ({done})" if done else ""),
            }
        except ExplorerError as exc:
            fields = {"state": "failed", "error": str(exc)}
        except Exception:  # noqa: BLE001 - a bug: logged with its traceback under an id
            incident = secrets.token_hex(4)
            log.exception("job %s (%s) failed (error id %s)", job_id, spec.name, incident)
            fields = {
                "state": "failed",
                "error": f"unexpected error (error id {incident}); see the server log",
            }
        finally:
            with self._lock:
                self._live.pop(job_id, None)
                try:
                    self.store.update_job(job_id, finished=time.time(), **fields)
                except ExplorerError as exc:
                    log.warning("job %s ended (%s) but could not be recorded: %s", job_id, fields, exc)
                self._running.pop(job_id, None)
                self._dirty = True
                self._wake.notify_all()

    def warm(self, delay: float = 10.0) -> None:
        """Start a worker process and compile UMAP's functions in it, in the background, so the
        first map a visitor asks for does not wait for them (``embex serve`` calls this).
        It starts ``delay`` seconds after the call: the first pages someone opens (the
        sample's map among them) do not share the CPU with it; a map job asked for before then
        starts the worker itself, and the warm-up is skipped."""

        def run() -> None:
            if self._pool_wanted.wait(delay) or self._closed:
                return
            try:
                self.pool.run("analytics.projection:warm_up")
                # NN-descent (corpora of 4,096 texts or more) compiles for up to a minute: a map
                # job that wants the worker meanwhile stops it, rather than wait behind it
                if not self._pool_wanted.is_set():
                    self.pool.run(
                        "analytics.projection:warm_up_neighbours", cancelled=self._pool_wanted.is_set
                    )
            except Cancelled:
                log.info("worker warm-up gave way to a map job")
            except (WorkerError, ExplorerError) as exc:  # the pool shut down, or the worker died
                log.info("worker warm-up skipped: %s", exc)

        threading.Thread(target=run, name="embex-warm-up", daemon=True).start()

    def shutdown(self, wait: bool = True) -> None:
        """Stop starting jobs, cancel the running ones (they stay resumable), stop the workers."""
        with self._lock:
            self._closed = True
            running = list(self._running.values())
            self._wake.notify_all()
        for ctx, _ in running:
            ctx.cancel_event.set()
        if wait:
            for _, thread in running:
                thread.join(timeout=30)
        self.pool.shutdown()


# -- beside the store: what embex jobs reads and writes while another process holds the file --


def sidecar(store_path) -> Path:
    """The folder beside a store file where its executor publishes the jobs list and takes
    cancel requests (file names made here from integers only)."""
    return Path(str(store_path) + ".jobs")


def published_jobs(store_path) -> tuple[int, float, list[Job]] | None:
    """(pid, when written, jobs) as the process that holds the store last published them."""
    path = sidecar(store_path) / "jobs.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return int(data["pid"]), float(data["written"]), [Job(**j) for j in data["jobs"]]


def request_cancel(store_path, job_id: int) -> Path:
    """Ask the process that holds the store to cancel a job (it looks every quarter second)."""
    folder = sidecar(store_path)
    folder.mkdir(exist_ok=True)
    path = folder / f"cancel-{int(job_id)}"
    path.touch()
    return path


# -- one executor per store file in this process ---------------------------------------------------

_executors: dict[str, Executor] = {}
_registry_lock = threading.Lock()
_defaults: dict = {}


def _running_elsewhere(this: Executor) -> list[Job]:
    """The jobs that the process's other executors run now."""
    with _registry_lock:
        others = [ex for ex in _executors.values() if ex is not this]
    return [ctx.job for ex in others for ctx, _ in list(ex._running.values())]


def set_executor_defaults(**options) -> None:
    """Options (``max_running``, ``max_per_requester``, ...) for every executor this process
    creates from now on: ``embex serve`` sets them from the instance's settings file."""
    with _registry_lock:
        _defaults.update(options)


def executor_for(path: str | os.PathLike | None = None, **options) -> Executor:
    """The process's executor (and so its one Store) for a store file, created on first use:
    the dashboard's pages, its server start (``embex serve``) and the tests all share it."""
    resolved = str(Path(path if path is not None else default_store_path()).expanduser().resolve())
    with _registry_lock:
        ex = _executors.get(resolved)
        if ex is None or ex._closed:
            ex = _executors[resolved] = Executor(Store(resolved), **{**_defaults, **options})
        return ex


@atexit.register
def shutdown_all() -> None:
    """Stop every executor of this process (at exit too: no thread reads a store mid-teardown)."""
    with _registry_lock:
        executors = list(_executors.values())
        _executors.clear()
    for ex in executors:
        ex.shutdown(wait=True)
        ex.store.close()


# -- the kinds of job -----------------------------------------------------------------------------


def _prepare_embed(store: Store, params: dict):
    from .embedding import embedding_key

    name = params.get("corpus")
    store.corpus_info(name)  # an unknown corpus raises, naming the known ones
    model = params.get("model") or None
    device, precision = params.get("device") or "auto", params.get("precision") or "auto"
    model_id = embedding_key(model, device=device, precision=precision)
    out = {"corpus": name, "model": model, "device": device, "precision": precision, "model_id": model_id}
    return out, f"embed:{store.corpus_fingerprint(name)}:{model_id}"


def _embed_done(store: Store, params: dict) -> bool:
    return (
        store.embedded_count(params["corpus"], params["model_id"])
        >= store.corpus_info(params["corpus"]).n_docs
    )


def _run_embed(ctx: JobContext) -> None:
    from .embedding import embed_corpus, shared_embedder

    p = ctx.params
    ctx.progress("loading the model", 0.0)
    embedder = shared_embedder(p["model"], p["device"], p["precision"])

    def progress(done: int, total: int) -> None:
        ctx.progress("embedding", done / max(total, 1), f"{done:,} of {total:,} distinct texts")

    report = embed_corpus(ctx.store, p["corpus"], embedder, progress=progress, should_stop=ctx.cancel_event)
    if report.stopped:
        raise Cancelled()
    try:
        _record_embed_rate(ctx.store, report)
    except ExplorerError as exc:  # only an estimate's input: the embedding itself is done
        log.info("the speed of job %s was not kept: %s", ctx.job.id, exc)
    ctx.say(_embed_message(report))


def _embed_message(r) -> str:
    """What a finished embedding did, as the Embed page shows it under the final count (the
    count before the run is said so, not as a count that a reader could take for the result)."""
    before = "no row had a vector" if r.n_cached == 0 else f"{r.n_cached:,} rows had one already"
    rate = r.n_computed / r.seconds if r.seconds > 0 else float("inf")
    line = (
        f"This run embedded {r.n_computed:,} new text(s) on {r.device} in {r.seconds:.1f} s "
        f"({rate:,.0f} texts/s); before it, {before}."
    )
    if r.n_truncated:
        line += (
            f" {r.n_truncated:,} text(s) were longer than the model's {r.max_seq_length}-token "
            "limit; only their beginning was embedded."
        )
    return line


register(JobKind("embed", _prepare_embed, _embed_done, _run_embed, resource="model", on_restart="resumed"))

#: characters of a text that count for what embedding it costs: the default model reads at
#: most 256 word pieces (about 1,000 characters of English); the rest is cut off
COST_CHARS = 1000


def _cost_chars(texts, *, most: int = 10_000) -> float:
    """Mean characters per text that the model reads, over at most ``most`` evenly spaced texts."""
    if not len(texts):
        return 0.0
    step = max(1, len(texts) // most)
    picked = [texts[i] for i in range(0, len(texts), step)]
    return sum(min(len(t), COST_CHARS) for t in picked) / len(picked)


def _rate_key(model_id: str, device: str) -> str:
    return f"embed-rate:{model_id}:{str(device).partition(':')[0]}"


def _record_embed_rate(store: Store, report) -> None:
    """Keep the speed of a finished embedding (characters read per second, and texts per
    second) under its model and device, for the next estimate (:func:`embed_estimate`). Runs too
    short to time well are not kept."""
    from .memory import shared_cache

    if report.n_computed < 64 or report.seconds < 1:
        return
    mean = _cost_chars(shared_cache().corpus(store, report.corpus)[0])
    rate = {
        "chars_per_s": report.n_computed * mean / report.seconds,
        "texts_per_s": report.n_computed / report.seconds,
        "texts": report.n_computed,
        "corpus": report.corpus,
        "when": time.time(),
    }
    store.put_result(_rate_key(report.model_id, report.device), "embed-rate", json.dumps(rate).encode())


@dataclass(frozen=True)
class EmbedEstimate:
    """What embedding a corpus will do, before it starts: ``rows`` documents hold ``distinct``
    texts (a repeated text is embedded once), ``cached`` of those have a vector for the model
    already, ``to_embed`` are left. ``seconds``: how long those should take at the speed last
    measured on this store for the model and device (scaled by the texts' lengths), or None
    when none was measured; ``rate`` is that speed in texts per second for these texts and
    ``measured`` says where it comes from."""

    rows: int
    distinct: int
    cached: int
    to_embed: int
    seconds: float | None = None
    rate: float | None = None
    measured: str = ""

    def describe(self) -> str:
        """One line: rows, distinct texts, cached, and the time it should take."""
        if self.rows == self.distinct:
            line = f"{self.rows:,} rows, every text distinct"
        else:
            line = f"{self.rows:,} rows, {self.distinct:,} distinct texts: repeated texts are embedded once"
        line += f". {self.cached:,} already have a vector; {self.to_embed:,} to embed"
        if self.to_embed and self.seconds is not None:
            line += f", about {_duration(self.seconds)} at {self.rate:,.0f} texts/s ({self.measured})"
        elif self.to_embed:
            line += " (no speed measured yet on this server: the progress bar will estimate it)"
        return line + "."


def _duration(seconds: float) -> str:
    seconds = max(1, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def embed_estimate(store: Store, name: str, model_id: str, device: str, texts=None) -> EmbedEstimate:
    """:class:`EmbedEstimate` of embedding corpus ``name`` under ``model_id`` on ``device``
    ("cpu", "cuda", ...). ``texts``: the corpus's texts when the caller holds them already."""
    texts = store.texts(name) if texts is None else texts
    missing = store.missing_texts(name, model_id)
    distinct = len(set(texts))
    estimate = EmbedEstimate(len(texts), distinct, distinct - len(missing), len(missing))
    payload = store.get_result(_rate_key(model_id, device))
    if not missing or payload is None:
        return estimate
    measured = json.loads(payload)
    chars = _cost_chars([t for _, t in missing]) * len(missing)
    seconds = chars / measured["chars_per_s"]
    return EmbedEstimate(
        estimate.rows,
        distinct,
        estimate.cached,
        len(missing),
        seconds,
        len(missing) / seconds if seconds > 0 else None,
        f"measured embedding {measured['texts']:,} texts of {measured['corpus']!r} on "
        f"{str(device).partition(':')[0]}",
    )


def _prepare_project(store: Store, params: dict):
    from .projection import projection_request

    params = dict(params)
    name, model_id = params.pop("corpus", None), params.pop("model_id", None)
    if not model_id:
        raise ParameterError("A map job needs model_id: the key of the vectors to project.")
    request = projection_request(store, name, model_id, **params)
    out = {
        "corpus": request.name,
        "model_id": request.model_id,
        **request.kwargs(),
    }
    if request.others:
        out["others"] = list(request.others)
    return out, request.key


def _project_request(store: Store, params: dict):
    from .projection import projection_request

    p = dict(params)
    return projection_request(store, p.pop("corpus"), p.pop("model_id"), **p)


def _run_project(ctx: JobContext) -> None:
    _ensure_projection(ctx, _project_request(ctx.store, ctx.params))


def _ensure_projection(ctx: JobContext, request, share: float = 1.0, start: float = 0.0) -> None:
    """Compute and store the map of ``request`` unless it is stored already. UMAP and t-SNE
    run in a worker process: they hold the GIL, which would stall every page of the server.
    Its progress fills ``start`` to ``start + share`` of the job's bar."""
    from .memory import shared_cache
    from .projection import cached_projection, project, save_projection

    if cached_projection(ctx.store, request) is not None:
        return
    progress = (
        ctx.progress
        if (share, start) == (1.0, 0.0)
        else (lambda stage, f: ctx.progress(stage, start + f * share))
    )
    progress("reading the vectors", 0.0)
    X = shared_cache().vectors(ctx.store, request.name, request.model_id)  # the pages' one copy
    if request.others:  # a joint map: every corpus's rows, in order (one copy, for this job)
        import numpy as np

        X = np.concatenate(
            [X, *(shared_cache().vectors(ctx.store, o, request.model_id) for o in request.others)]
        )
    if request.method == "pca":  # BLAS does the work and releases the GIL: a thread will do
        proj = project(X, progress=progress, **request.kwargs())
    else:  # the pool may be busy (with the warm-up that compiles UMAP after a start): say so
        progress(f"waiting for a worker process to run {request.method.upper()}", 0.0)
        ctx.executor._pool_wanted.set()
        proj = ctx.executor.pool.run(
            "analytics.projection:project",
            X=X,
            progress=progress,
            cancelled=ctx.cancelled,
            **request.kwargs(),
        )
    del X
    save_projection(ctx.store, request, proj)
    ctx.say(f"{proj.describe()} in {proj.seconds:,.1f} s")


register(JobKind("project", _prepare_project, None, _run_project, on_restart="restarted"))


def _content_key(kind: str, *parts) -> str:
    import hashlib

    from . import __version__

    blob = json.dumps([kind, __version__, *parts], sort_keys=True, default=str)
    return f"{kind}:" + hashlib.sha256(blob.encode()).hexdigest()


def _prepare_shift(store: Store, params: dict):
    from ._validate import check_distance
    from .params import RULES

    f, g, model_id = params.get("corpus"), params.get("compare"), params.get("model_id")
    if not model_id:
        raise ParameterError("A shift job needs model_id: the key of the vectors to compare.")
    if f == g:
        raise ParameterError("Pick two different corpora to compare.")
    out = {
        "corpus": f,
        "compare": g,
        "model_id": model_id,
        "distance": check_distance(params.get("distance", "cosine")),
        "permutations": RULES["shift"]["permutations"].check(
            params.get("permutations", RULES["shift"]["permutations"].default)
        ),
    }
    fps = [store.corpus_fingerprint(f), store.corpus_fingerprint(g)]  # unknown names raise here
    return out, _content_key("shift", fps, model_id, out["distance"], out["permutations"])


def _run_shift(ctx: JobContext) -> None:
    from .overlap import check_overlap
    from .shift import shift_test

    p = ctx.params
    ctx.progress("reading the vectors", 0.0)
    from .memory import shared_cache

    cache = shared_cache()  # the pages' one read-only copy of each corpus
    F, G = (
        cache.vectors(ctx.store, p["corpus"], p["model_id"]),
        cache.vectors(ctx.store, p["compare"], p["model_id"]),
    )
    ctx.checkpoint("depths with respect to F", 0.02)
    result = shift_test(F, G, p["distance"], permutations=p["permutations"], progress=ctx.checkpoint)
    ctx.progress("checking whether F and G share texts", 0.99)
    overlap = check_overlap(ctx.store.texts(p["corpus"]), ctx.store.texts(p["compare"]), F, G)
    result = result.with_notes(overlap.warning())
    ctx.store.put_result(ctx.job.key, "shift", result.to_bytes())
    ctx.say(result.summary().splitlines()[0])


register(JobKind("shift", _prepare_shift, None, _run_shift))


def _prepare_report(store: Store, params: dict):
    from .report import report_request

    request = report_request(store, params)  # checks every input (analytics/report.py)
    return request.params(), _content_key("report", *request.key_parts(store))


def _run_report(ctx: JobContext) -> None:
    from .report import build_request, report_request

    request = report_request(ctx.store, ctx.params)
    # the maps not drawn yet (UMAP and t-SNE in a worker process) fill the first half of the bar
    todo = [m for m in request.map_requests(ctx.store) if not ctx.store.has_result(m.key)]
    share = 0.5 / len(todo) if todo else 0.0
    for i, m in enumerate(todo):
        what = "F and G on one map: " if m.others else f"the {m.method.upper()} map: "
        _ensure_projection(_Named(ctx, what), m, share, i * share)
    first = share * len(todo)
    report = build_request(
        ctx.store, request, progress=lambda stage, f: ctx.checkpoint(stage, first + (1 - first) * f)
    )
    payload = {
        "html": report.html,
        "shift": report.shift.summary() if report.shift else None,
        "created": report.created,
    }
    ctx.store.put_result(ctx.job.key, "report", json.dumps(payload).encode())
    ctx.say(f"{len(report.html) / 1e6:,.1f} MB of HTML")


class _Named:
    """A job context whose progress stages start with ``prefix`` (which map is being drawn)."""

    def __init__(self, ctx: JobContext, prefix: str):
        self._ctx, self._prefix = ctx, prefix

    def __getattr__(self, attr):
        return getattr(self._ctx, attr)

    def progress(self, stage: str, fraction: float, message: str | None = None) -> None:
        self._ctx.progress(self._prefix + stage, fraction, message)


register(JobKind("report", _prepare_report, None, _run_report))


def _prepare_outliers(store: Store, params: dict):
    from .params import RULES

    rules = RULES["outliers"]
    name, model_id = params.get("corpus"), params.get("model_id")
    if not model_id:
        raise ParameterError("An outliers job needs model_id: the key of the vectors to rank.")
    count = params.get("count")
    out = {
        "corpus": name,
        "model_id": model_id,
        "quantile": None if count is not None else rules["quantile"].check(params.get("quantile", 0.05)),
        "count": None if count is None else rules["count"].check(count),
        "k": rules["k"].check(params.get("k", rules["k"].default)),
        "by": rules["by"].check(params.get("by", rules["by"].default)),
    }
    return out, _content_key("outliers", store.corpus_fingerprint(name), out)


def _run_outliers(ctx: JobContext) -> None:
    from .memory import shared_cache
    from .outliers import find_outliers
    from .results import to_bytes

    p = ctx.params
    ctx.progress("reading the vectors", 0.0)
    X = shared_cache().vectors(ctx.store, p["corpus"], p["model_id"])
    ctx.checkpoint("finding each text's nearest neighbours and depths", 0.1)
    report = find_outliers(
        X,
        quantile=p["quantile"],
        count=p["count"],
        k=p["k"],
        by=p["by"],
        progress=lambda stage, f: ctx.checkpoint(stage, 0.1 + 0.9 * f),
    )
    ctx.store.put_result(ctx.job.key, "outliers", to_bytes(report))
    ctx.say(f"{len(report.flagged):,} outliers flagged by {p['by']} depth")


register(JobKind("outliers", _prepare_outliers, None, _run_outliers))

# shift tests on groups of rows of one corpus (column = values, a selection, each value vs the
# rest) are kinds of their own, defined beside that code
from . import groups as _groups  # noqa: E402,F401
