"""The audit log of a workspace: who did what to what, and when, one row per action.

Rows live in the workspace's store (its ``audit`` table, :meth:`Store.add_audit`). Their text
is data: stored as given (bound parameters, nothing interpreted), each field capped in length
so a hostile corpus name cannot grow the log without bound. Whoever shows them must treat them
as untrusted text (the CLI escapes control characters; pages never render them as HTML).

While the dashboard holds a store file (DuckDB allows one writer process), ``embex audit``
cannot open it; so each :func:`record`, and the job executor when it starts, publishes the
newest rows beside the store (``<store>.jobs/audit.json``, next to the executor's jobs.json),
and :func:`published` reads them back.

>>> record(store, Actor("alice@example.com", "news", "editor"), "delete", "corpus 'old'")
>>> [e.action for e in recent(store, 5)]
['delete']
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from .access import Actor
from .errors import ParameterError

log = logging.getLogger("embex.audit")

#: the longest each field is stored (longer text is cut, ending in "…")
CAPS = {"user": 200, "action": 64, "target": 1000, "detail": 4000}
#: how many of the newest rows are published beside a store that another process holds
PUBLISHED_ROWS = 500

_publish_lock = threading.Lock()


@dataclass(frozen=True)
class AuditEntry:
    """One audit row; ``time`` in Unix seconds."""

    id: int
    time: float
    user: str
    action: str
    target: str
    detail: str

    @property
    def when(self) -> str:
        """The time in UTC, e.g. ``2026-05-09 13:09:15Z``."""
        return datetime.fromtimestamp(self.time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _cap(text, limit: int) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def record(store, who: Actor | str, action: str, target: str = "", detail: str = "", *, now=None) -> int:
    """Write one audit row: ``who`` (an :class:`~analytics.access.Actor` or a user name) did
    ``action`` (e.g. "upload", "delete", "embed") to ``target`` (e.g. "corpus 'news'"), with
    an optional ``detail``; the time is now (UTC). Returns the row's id. A store open
    read-only refuses (:class:`StoreError`): an action that cannot be audited is not skipped
    silently."""
    user = who.user if isinstance(who, Actor) else who
    if not isinstance(user, str) or not user.strip():
        raise ParameterError("An audit row needs the name of who acted.")
    if not isinstance(action, str) or not action.strip():
        raise ParameterError("An audit row needs an action (what was done).")
    row_id = store.add_audit(
        time.time() if now is None else float(now),
        _cap(user, CAPS["user"]),
        _cap(action, CAPS["action"]),
        _cap(target, CAPS["target"]),
        _cap(detail, CAPS["detail"]),
    )
    publish(store)
    return row_id


def recent(
    store, limit: int = 100, *, user: str | None = None, action: str | None = None
) -> list[AuditEntry]:
    """The newest ``limit`` audit rows of ``store``, newest first (of one user or action)."""
    return [AuditEntry(**r) for r in store.audit_rows(limit=limit, user=user, action=action)]


# -- beside the store, for embex audit while another process holds the file --------------------------


def _published_path(store_path) -> Path:
    from .jobs import sidecar  # the executor's folder beside the store

    return sidecar(store_path) / "audit.json"


def publish(store, limit: int = PUBLISHED_ROWS) -> Path | None:
    """Write the newest ``limit`` rows beside the store (atomically: a reader sees the old list
    or the new one). A failure to write is logged, not raised: the rows are in the store."""
    if str(store.path) == ":memory:":
        return None
    path = _published_path(store.path)
    with _publish_lock:
        rows = [asdict(e) for e in recent(store, limit)]
        tmp = path.with_name(f"audit.json.{os.getpid()}.{threading.get_ident()}")
        try:
            path.parent.mkdir(exist_ok=True)
            tmp.write_text(json.dumps({"pid": os.getpid(), "written": time.time(), "rows": rows}))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("the audit rows could not be published beside %s: %s", store.path, exc)
            return None
    return path


def published(store_path) -> tuple[int, float, list[AuditEntry]] | None:
    """(pid, when written, rows newest first) as the process that holds the store last
    published them, or None when it has published none."""
    try:
        data = json.loads(_published_path(store_path).read_text())
        return int(data["pid"]), float(data["written"]), [AuditEntry(**r) for r in data["rows"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


__all__ = ["CAPS", "PUBLISHED_ROWS", "AuditEntry", "publish", "published", "record", "recent"]
