"""Backups while serving, on real DuckDB and SQLite files and real processes: a copy made
directly, or by the process that holds the store (an executor in this process, or a real
``embex serve``), opens as a store with the same tables, row for row; an ingest or an embedding
in flight is in the copy whole or not at all; and a copy that cannot be made says why."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pytest
from conftest import ROOT, make_corpus, start_server
from hypothesis import given
from hypothesis import strategies as st

from analytics.backup import backup_instance, backup_path, backup_store, utc_stamp, write_backup
from analytics.errors import ParameterError, StoreError
from analytics.jobs import KINDS, Executor, published_jobs, sidecar
from analytics.store import Store, text_hash

NAME = re.compile(r"^(?P<stem>.+)-\d{8}T\d{6}Z(-\d+)?\.duckdb$")


def _populate(
    store: Store, name: str, n: int, *, dim: int = 16, seed: int = 0, model: str = "m"
) -> list[str]:
    texts = [f"{name} text {i}" for i in range(n)]
    store.add_corpus(name, make_corpus(texts, [f"l{i % 3}" for i in range(n)]), label_column="label")
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    store.put_vectors(model, [text_hash(t) for t in texts], vectors)
    return texts


def _embex(*args, timeout: float = 120, as_nobody: bool = False, env: dict | None = None):
    """Run ``embex`` in a process of its own; ``as_nobody``: as the unprivileged user nobody
    (for a permission test run as root, who may write anywhere)."""
    cmd = [sys.executable, "-m", "analytics.cli", *map(str, args)]
    if as_nobody:
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    return subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def _rows(path: Path) -> dict[str, set[str]]:
    """Every table's rows, as a set of md5s of their text (a row per element)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {
            t: {r[0] for r in con.execute(f'SELECT md5(CAST(x AS VARCHAR)) FROM "{t}" x').fetchall()}
            for t in tables
        }
    finally:
        con.close()


def _in_order(path: Path, table: str) -> list[str]:
    """A table's rows (md5 of their text) in the order they were written."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [
            r[0]
            for r in con.execute(f'SELECT md5(CAST(x AS VARCHAR)) FROM "{table}" x ORDER BY rowid').fetchall()
        ]
    finally:
        con.close()


def _only_backups(out: Path) -> list[Path]:
    """The backups in ``out``; fails if anything else (a temporary, half-written file) is there."""
    files = sorted(out.iterdir())
    assert all(NAME.match(f.name) for f in files), [f.name for f in files]
    return files


class _Gate:
    """Chunks of a corpus for ``add_corpus_stream`` that stop half-way until released: the
    ingest's transaction is open, with half its documents written, for as long as the test likes."""

    def __init__(self, name: str, chunks: int = 6, rows: int = 50):
        self.name, self.chunks, self.rows = name, chunks, rows
        self.halfway, self.release = threading.Event(), threading.Event()

    def __iter__(self):
        for c in range(self.chunks):
            if c == self.chunks // 2:
                self.halfway.set()
                assert self.release.wait(60)
            yield [f"{self.name} {c} {i}" for i in range(self.rows)], [{"label": "x"}] * self.rows

    def ingest(self, store: Store) -> threading.Thread:
        thread = threading.Thread(target=store.add_corpus_stream, args=(self.name, self), daemon=True)
        thread.start()
        assert self.halfway.wait(30)
        return thread


def test_a_direct_backup_opens_as_the_same_store(tmp_path):
    path = tmp_path / "team.duckdb"
    with Store(path) as store:
        texts = _populate(store, "news", 500, dim=384, model="m384")
        _populate(store, "other", 40, seed=1)
        store.put_result("key", "shift", b"\x00payload")
        store.add_job("embed", "{}", "embed:x", "alice", time.time())
        digest, corpora = store.digest(), store.list_corpora()
        vectors = store.vectors("news", "m384")
    result = backup_store(path, tmp_path / "out")
    (copy,) = _only_backups(tmp_path / "out")
    assert Path(result.path) == copy and NAME.match(copy.name)["stem"] == "team"
    assert result.how == "direct" and result.bytes == copy.stat().st_size
    assert result.rows["documents"] == 540 and result.rows["embeddings_384"] == 500
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with Store(copy) as back:
        assert back.digest() == digest  # every table, row for row
        assert back.list_corpora() == corpora
        assert np.array_equal(back.vectors("news", "m384"), vectors)
        assert back.texts("news") == texts and back.get_result("key") == b"\x00payload"
        assert back.check().ok
        # the sequences came along: new rows get new ids, not ones the copy already uses
        assert back.add_job("embed", "{}", "embed:y", "bob", time.time()) == 2
        assert back.add_corpus("third", make_corpus(["a"])).n_docs == 1
    with Store(path, read_only=True) as store:
        assert store.digest() == digest  # the original is as it was


def test_an_ingest_in_flight_is_in_the_copy_whole_or_not_at_all(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with Store(tmp_path / "live.duckdb") as store:
        _populate(store, "base", 200)
        before = store.digest()
        gate = _Gate("incoming")
        thread = gate.ingest(store)  # half of "incoming" written, not committed
        mid = write_backup(store, out / "live-mid.duckdb")
        gate.release.set()
        thread.join(30)
        after = write_backup(store, out / "live-after.duckdb")
    with Store(mid.path, read_only=True) as copy:
        assert copy.digest() == before and [c.name for c in copy.list_corpora()] == ["base"]
    with Store(after.path, read_only=True) as copy:
        assert copy.corpus_info("incoming").n_docs == 300 and len(copy.texts("incoming")) == 300


def test_copies_taken_while_writes_go_on_are_snapshots(tmp_path):
    """A writer ingests corpora and caches their vectors, one transaction each, without pause;
    every copy holds whole corpora and whole vector batches, row for row as the live store."""
    live = tmp_path / "busy.duckdb"
    out = tmp_path / "out"
    out.mkdir()
    stop = threading.Event()
    with Store(live) as store:
        _populate(store, "base", 100)

        def write() -> None:
            k = 0
            while not stop.is_set():
                texts = [f"w{k} {i}" for i in range(400)]
                chunks = [(texts[i : i + 100], [{"label": "x"}] * 100) for i in range(0, 400, 100)]
                store.add_corpus_stream(f"w{k}", iter(chunks))
                store.put_vectors("m", [text_hash(t) for t in texts], np.ones((400, 16), np.float32) * k)
                k += 1

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        copies = []
        for i in range(6):
            time.sleep(0.1)
            copies.append(write_backup(store, out / f"busy-{i}.duckdb"))
        stop.set()
        writer.join(30)
    final = _rows(live)
    grew = set()
    for result in copies:
        with Store(result.path, read_only=True) as copy:
            assert copy.check().ok  # every corpus holds the documents it says
            sizes = {c.name: c.n_docs for c in copy.list_corpora()}
            assert all(n == 400 for name, n in sizes.items() if name != "base")
            n_vectors = result.rows["embeddings_16"]
            assert (n_vectors - 100) % 400 == 0  # whole batches only
            grew.add(len(sizes))
        for table, rows in _rows(Path(result.path)).items():
            assert rows <= final[table], table  # nothing in a copy that the store never held
    assert len(grew) > 1  # the copies were taken while the store grew


def test_embex_backup_asks_the_process_that_holds_the_store(tmp_path):
    """An executor (as in ``embex serve``) holds the store with an ingest half written; ``embex
    backup`` in another process gets the copy from it, as of before the ingest."""
    path = tmp_path / "held.duckdb"
    store = Store(path)
    _populate(store, "base", 300)
    executor = Executor(store)
    try:
        before = store.digest()
        gate = _Gate("incoming")
        thread = gate.ingest(store)
        out = _embex("backup", "--store", path, "--out", tmp_path / "out", "--json")
        gate.release.set()
        thread.join(30)
        assert out.returncode == 0, out.stderr
        (result,) = json.loads(out.stdout)["backups"]
        assert result["how"] == f"copied by the server, pid {os.getpid()}"
        (copy,) = _only_backups(tmp_path / "out")
        assert str(copy) == result["path"]
        assert not list(sidecar(path).glob("backup-*"))  # request, claim and answer are gone
    finally:
        executor.shutdown()
        store.close()
    with Store(copy, read_only=True) as back:
        assert back.digest() == before


def test_no_server_answering_is_said_and_nothing_is_left_behind(tmp_path):
    path = tmp_path / "held.duckdb"
    with Store(path) as store:
        _populate(store, "base", 10)
    holder = subprocess.Popen(  # holds the file as an embex command would: no executor
        [
            sys.executable,
            "-c",
            f"from analytics.store import Store\ns = Store({str(path)!r})\nprint('ready', flush=True)\ninput()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        t0 = time.monotonic()
        out = _embex("backup", "--store", path, "--out", tmp_path / "out", "--wait-for-server", "1")
        assert time.monotonic() - t0 < 30
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no embex server answered the backup request within 1 s" in out.stderr
    assert not list((tmp_path / "out").iterdir())
    assert not list(sidecar(path).glob("*backup-*"))  # the request was withdrawn


def test_a_copy_that_fails_part_way_leaves_nothing_in_the_folder(tmp_path, monkeypatch):
    """A block of the vector table is damaged beyond what the quick scan on open reads (here
    its first rows), so the copy fails half-way: the message says so, and no file is left."""
    import analytics.store

    path = tmp_path / "damaged.duckdb"
    with Store(path) as store:
        _populate(store, "big", 20_000, dim=384)
    with open(path, "r+b") as f:  # the middle of the file: vector blocks
        f.seek(path.stat().st_size // 2)
        f.write(b"\xff" * 32_768)
    monkeypatch.setattr(analytics.store, "_QUICK_SCAN_FLOATS", 384 * 10)
    with pytest.raises(StoreError, match="could not be copied .*checksum"):
        backup_store(path, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


def test_a_folder_that_cannot_be_written_is_refused_before_copying(tmp_path):
    path = tmp_path / "ws.duckdb"
    with Store(path) as store:
        _populate(store, "base", 10)
    (tmp_path / "a-file").write_text("not a folder")
    out = _embex("backup", "--store", path, "--out", tmp_path / "a-file")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"Cannot write backups to {tmp_path / 'a-file'}" in out.stderr
    with Store(path, read_only=True) as store:
        write_backup(store, tmp_path / "once.duckdb")
        with pytest.raises(ParameterError, match="already exists; a backup never replaces a file"):
            write_backup(store, tmp_path / "once.duckdb")
        with pytest.raises(ParameterError, match="ending in .duckdb"):
            write_backup(store, tmp_path / "once.db")


def test_a_write_protected_out_folder_is_refused_with_a_message():
    """A folder the backup's user may not write (0555; as root, the command runs as nobody,
    since root may write anywhere)."""
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        path = root / "ws.duckdb"
        with Store(path) as store:
            _populate(store, "base", 10)
        path.chmod(0o644)
        out = root / "protected"
        out.mkdir(mode=0o555)
        out.chmod(0o555)
        as_nobody = os.geteuid() == 0
        if as_nobody and not shutil.which("setpriv"):
            pytest.skip("run as root, and no setpriv (util-linux) to run the command as another user")
        result = _embex("backup", "--store", path, "--out", out, as_nobody=as_nobody)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"Cannot write backups to {out}: Permission denied" in result.stderr
        assert not list(out.iterdir())


def _instance(root: Path) -> None:
    (root / "workspaces").mkdir(parents=True)
    (root / "settings.toml").write_text("max_upload_mb = 500\n")
    (root / "secrets.toml").write_text('[auth]\nclient_secret = "s3cret"\n')
    con = sqlite3.connect(root / "accounts.sqlite")
    con.execute("PRAGMA journal_mode = wal")
    con.execute("CREATE TABLE users (name TEXT PRIMARY KEY, hash TEXT)")
    con.executemany("INSERT INTO users VALUES (?, ?)", [(f"user{i}", "$argon2id$x") for i in range(50)])
    con.commit()
    con.close()
    for i, name in enumerate(["alpha", "beta"]):
        with Store(root / "workspaces" / f"{name}.duckdb") as store:
            _populate(store, name, 50 + i, seed=i)


def test_an_instance_backup_copies_every_workspace_the_accounts_and_settings(tmp_path):
    root, out = tmp_path / "srv", tmp_path / "backups"
    _instance(root)
    digests = {}
    for name in ("alpha", "beta"):
        with Store(root / "workspaces" / f"{name}.duckdb", read_only=True) as s:
            digests[name] = s.digest()
    held = Store(root / "workspaces" / "beta.duckdb")  # served: beta is copied by its executor
    executor = Executor(held)
    writer = sqlite3.connect(root / "accounts.sqlite")  # a write in flight, not committed
    writer.execute("BEGIN")
    writer.execute("INSERT INTO users VALUES ('mallory', 'x')")
    try:
        out_run = _embex("backup", "--instance", root, "--out", out, "--json")
    finally:
        writer.rollback()
        writer.close()
        executor.shutdown()
        held.close()
    assert out_run.returncode == 0, out_run.stderr
    backups = json.loads(out_run.stdout)["backups"]
    hows = {Path(b["source"]).name: b["how"] for b in backups}
    assert hows["alpha.duckdb"] == "direct" and hows["beta.duckdb"].startswith("copied by the server")
    files = sorted(p.name for p in out.iterdir())
    stamps = {re.search(r"\d{8}T\d{6}Z", f).group() for f in files}
    assert len(files) == 4 and len(stamps) == 1  # one time for the whole instance
    stamp = stamps.pop()
    assert files == sorted(
        [
            f"alpha-{stamp}.duckdb",
            f"beta-{stamp}.duckdb",
            f"accounts-{stamp}.sqlite",
            f"settings-{stamp}.toml",
        ]
    )
    assert all(stat.S_IMODE((out / f).stat().st_mode) == 0o600 for f in files)
    for name in ("alpha", "beta"):
        with Store(out / f"{name}-{stamp}.duckdb", read_only=True) as s:
            assert s.digest() == digests[name]
    con = sqlite3.connect(out / f"accounts-{stamp}.sqlite")
    assert con.execute("SELECT count(*), min(name) FROM users").fetchone() == (50, "user0")
    con.close()
    assert (out / f"settings-{stamp}.toml").read_text() == (root / "settings.toml").read_text()
    # $EMBEX_INSTANCE stands for --instance, as for embex serve
    again = _embex("backup", "--out", tmp_path / "again", "--json", env={"EMBEX_INSTANCE": str(root)})
    assert again.returncode == 0, again.stderr
    assert len(json.loads(again.stdout)["backups"]) == 4 and len(list((tmp_path / "again").iterdir())) == 4


def test_an_instance_folder_is_checked_and_both_targets_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="not an embex instance folder"):
        backup_instance(tmp_path, tmp_path / "out")
    _instance(tmp_path / "srv")
    with pytest.raises(ParameterError, match="outside the instance folder"):
        backup_instance(tmp_path / "srv", tmp_path / "srv" / "backups")
    out = _embex(
        "backup", "--store", tmp_path / "x.duckdb", "--instance", tmp_path / "srv", "--out", tmp_path / "o"
    )
    assert out.returncode == 2 and "not both" in out.stderr


@given(
    st.datetimes(timezones=st.just(timezone.utc)), st.timedeltas(timedelta(seconds=1), timedelta(days=3650))
)
def test_backup_names_sort_as_their_times(when, later):
    """Retention scripts (and people) sort backups by name: that is their order in time."""
    if when + later > datetime.max.replace(tzinfo=timezone.utc):
        return
    assert utc_stamp(when) < utc_stamp(when + later)
    assert re.fullmatch(r"\d{8}T\d{6}Z", utc_stamp(when))


def test_a_name_already_taken_gets_a_number(tmp_path):
    first = backup_path(tmp_path, "ws", "20260101T000000Z")
    first.touch()
    second = backup_path(tmp_path, "ws", "20260101T000000Z")
    second.touch()
    assert (first.name, second.name) == ("ws-20260101T000000Z.duckdb", "ws-20260101T000000Z-2.duckdb")
    assert backup_path(tmp_path, "ws", "20260101T000000Z").name == "ws-20260101T000000Z-3.duckdb"


@pytest.mark.slow
def test_a_backup_of_a_store_that_embex_serve_holds_while_an_embedding_writes(tmp_path, sample_rows):
    """The real dashboard server holds the store and embeds 1,500 texts, committed a few
    hundred at a time; backups taken meanwhile through ``embex backup`` open as stores and hold
    the first vectors written, each as the final store has it (that a transaction is in a
    copy whole or not at all is shown above, on an ingest held open half-way)."""
    path = tmp_path / "served.duckdb"
    texts = list(dict.fromkeys(r["text"] for r in sample_rows))[:1500]
    with Store(path) as store:
        store.add_corpus("news", make_corpus(texts))
        params, key = KINDS["embed"].prepare(
            store, {"corpus": "news", "device": "cpu", "precision": "float32"}
        )
        store.add_job("embed", json.dumps(params, sort_keys=True), key, "test", time.time())
    proc, _ = start_server(path)  # its executor starts the queued job
    copies = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            published = published_jobs(path)
            state = published[2][0].state if published and published[2] else "queued"
            if state not in ("queued", "running"):
                break
            if state == "running":
                out = _embex("backup", "--store", path, "--out", tmp_path / "out", "--json")
                assert out.returncode == 0, out.stderr
                copies.append(json.loads(out.stdout)["backups"][0])
            time.sleep(0.5)
        assert published[2][0].state == "done", published
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    final = _rows(path)
    vector_table = next(t for t in final if t.startswith("embeddings_"))
    order = _in_order(path, vector_table)
    mid_job, counts = 0, []
    for result in copies:
        assert "copied by the server" in result["how"]
        with Store(result["path"], read_only=True) as copy:
            assert copy.check().ok and copy.corpus_info("news").n_docs == len(texts)
            counts.append(copy.embedded_count("news", params["model_id"]))
            mid_job += copy.job_rows(limit=1)[0]["state"] == "running"
        rows = _rows(Path(result["path"]))
        assert rows["documents"] == final["documents"]
        # the vectors are appended by one writer, so a snapshot holds the first ones, each as
        # it ended up: no vector half written, none missing in between
        if vector_table in rows:
            held = _in_order(Path(result["path"]), vector_table)
            assert held == order[: len(held)]
    assert mid_job >= 1 and any(0 < n < len(texts) for n in counts), counts  # copies taken mid-job
    print(f"{len(copies)} copies while the job ran; vectors in each: {counts}")
