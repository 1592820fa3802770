"""The audit log of a workspace (analytics.audit over Store.add_audit/audit_rows): real DuckDB
files; text stored as given; published beside the store for embex audit."""

from __future__ import annotations

import json
import time

import pytest

from analytics import audit
from analytics.access import Actor
from analytics.errors import ParameterError, StoreError
from analytics.store import SCHEMA_VERSION, Store

HOSTILE = [
    "corpus 'x'); DROP TABLE audit; --",
    'a "quoted" name\\with\\backslashes',
    "line one\nline two\r\n\ttabbed",
    "\x1b[2J\x1b[31mred\x1b[0m terminal escape",
    "émoji 🧪 and 中文 and \u202eright-to-left",
    "<script>alert(1)</script>",
]


def test_record_and_recent_newest_first(tmp_path):
    with Store(tmp_path / "ws.duckdb") as store:
        first = audit.record(store, Actor("alice", "news", "editor"), "upload", "corpus 'news'", now=1000.0)
        second = audit.record(store, "bob", "delete", "corpus 'old'", "3 jobs cancelled", now=2000.0)
        assert second > first
        rows = audit.recent(store, 10)
        assert [(r.user, r.action, r.target, r.detail, r.time) for r in rows] == [
            ("bob", "delete", "corpus 'old'", "3 jobs cancelled", 2000.0),
            ("alice", "upload", "corpus 'news'", "", 1000.0),
        ]
        assert rows[0].when == "1970-01-01 00:33:20Z"  # UTC
        assert [r.action for r in audit.recent(store, 1)] == ["delete"]
        assert [r.user for r in audit.recent(store, user="alice")] == ["alice"]
        assert [r.target for r in audit.recent(store, action="delete")] == ["corpus 'old'"]
        before = time.time()
        audit.record(store, "carol", "embed", "corpus 'news'")
        assert before <= audit.recent(store, 1)[0].time <= time.time()


def test_hostile_text_is_stored_exactly_as_given(tmp_path):
    with Store(tmp_path / "ws.duckdb") as store:
        for text in HOSTILE:
            audit.record(store, text, text, text, text)
        rows = audit.recent(store, 100)[::-1]
        assert all(len(t) < audit.CAPS["action"] for t in HOSTILE)  # none is capped
        assert [(r.user, r.action, r.target, r.detail) for r in rows] == [(t, t, t, t) for t in HOSTILE]
        assert store._cur().execute("SELECT count(*) FROM audit").fetchall() == [(len(HOSTILE),)]


def test_long_text_is_capped(tmp_path):
    with Store(tmp_path / "ws.duckdb") as store:
        audit.record(store, "u" * 1000, "a" * 1000, "t" * 10_000, "d" * 100_000)
        row = audit.recent(store, 1)[0]
    for field in ("user", "action", "target", "detail"):
        value = getattr(row, field)
        assert len(value) == audit.CAPS[field] and value.endswith("…")


def test_who_and_what_are_required(tmp_path):
    with Store(tmp_path / "ws.duckdb") as store:
        for who, action in [
            ("", "delete"),
            ("  ", "delete"),
            (None, "delete"),
            ("alice", ""),
            ("alice", None),
        ]:
            with pytest.raises(ParameterError):
                audit.record(store, who, action, "x")
        assert audit.recent(store) == []


def test_a_read_only_store_refuses_rather_than_skipping(tmp_path):
    path = tmp_path / "ws.duckdb"
    Store(path).close()
    with Store(path, read_only=True) as store:
        with pytest.raises(StoreError, match="read-only"):
            audit.record(store, "alice", "delete", "corpus 'x'")
    with Store(path, read_only=True) as store:
        assert audit.recent(store) == []


def test_a_version_5_store_gains_the_audit_table_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    with Store(path, migrate_to=5) as old:
        old.add_job("project", "{}", "key", "someone", 1.0)
        assert "audit" not in {r[0] for r in old._cur().execute("SHOW TABLES").fetchall()}
    with Store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION and len(store.job_rows()) == 1
        audit.record(store, "alice", "upload", "corpus 'news'")
        assert [r.target for r in audit.recent(store)] == ["corpus 'news'"]


def test_each_record_publishes_the_newest_rows_beside_the_store(tmp_path):
    path = tmp_path / "ws.duckdb"
    with Store(path) as store:
        assert audit.published(path) is None
        for i in range(3):
            audit.record(store, "alice", "upload", f"corpus 'c{i}'", HOSTILE[i])
        pid, written, rows = audit.published(path)
        assert rows == audit.recent(store, 500) and [r.target for r in rows][0] == "corpus 'c2'"
        assert written <= time.time()
        assert audit.publish(store, limit=2) and len(audit.published(path)[2]) == 2
    folder = path.parent / (path.name + ".jobs")
    assert sorted(p.name for p in folder.iterdir()) == ["audit.json"]  # no temporary file left
    data = json.loads((folder / "audit.json").read_text())
    assert data["pid"] == pid and data["rows"][0]["detail"] == HOSTILE[2]
    (folder / "audit.json").write_text("{not json")
    assert audit.published(path) is None


def test_the_job_executor_publishes_the_log_when_it_starts(tmp_path):
    from analytics.jobs import Executor

    path = tmp_path / "ws.duckdb"
    with Store(path) as store:
        audit.record(store, "alice", "delete", "corpus 'x'")
    (path.parent / (path.name + ".jobs") / "audit.json").unlink()  # as after a copy, or a crash
    store = Store(path)
    executor = Executor(store)
    try:
        deadline = time.time() + 30
        while audit.published(path) is None and time.time() < deadline:
            time.sleep(0.05)
        assert [r.target for r in audit.published(path)[2]] == ["corpus 'x'"]
    finally:
        executor.shutdown()
        store.close()
