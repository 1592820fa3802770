"""Backups while serving: a consistent copy of each store file, never a half-written one.

A DuckDB file has one writer process. While nobody holds a store, :func:`backup_store` opens it
read-only and copies it here. While a process holds it (``embex serve``), only that process can
read it, so the copy is asked of it through the folder beside the store where its job executor
already publishes the jobs list (``<store>.jobs/``, :func:`analytics.jobs.sidecar`):

1. ``embex backup`` writes ``backup-<token>`` there (JSON: the file to write);
2. the executor claims it (renamed ``backup-<token>.taken``) and writes the copy in a thread;
3. it answers ``backup-<token>.done`` (JSON: size, seconds, rows per table) or
   ``backup-<token>.error`` (the message), which the command reads and removes.

Either way the copy is :meth:`Store.backup_to` (one transaction: the store as of one instant,
while jobs and ingests go on writing), written under a hidden temporary name beside the
backup, read back whole with :meth:`Store.check`, made private (0600) and only then renamed to
``<workspace>-<UTC time>.duckdb``. A team instance (``DIR/settings.toml``,
``DIR/accounts.sqlite``, ``DIR/workspaces/<name>.duckdb``) is backed up with
:func:`backup_instance`; the accounts database through SQLite's online backup API.

>>> backup_store("/srv/embex/workspaces/team.duckdb", "/var/backups/embex")
BackupResult(source='/srv/embex/workspaces/team.duckdb', path='/var/backups/embex/team-20260126T020000Z.duckdb', ...)
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .errors import ExplorerError, ParameterError, StoreError, StoreLockedError
from .store import Store

log = logging.getLogger("embex.backup")

#: how long ``embex backup`` waits for the process that holds a store to take its request
WAIT_FOR_SERVER = 15.0
#: how long it waits, in all, for the copy (a store of many GB takes minutes)
TIMEOUT = 3600.0
#: answers nobody came back for are removed after this many seconds
_STALE = 24 * 3600.0
_TOKEN_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BackupResult:
    """One file backed up: what, where to, how big, how long, by whom (``"direct"``: this
    process; ``"server pid N"``: the process that holds the store), and the copy's rows per
    table as it read back."""

    source: str
    path: str
    bytes: int
    seconds: float
    how: str
    rows: dict = field(default_factory=dict)

    def line(self) -> str:
        return (
            f"Backed up {self.source} -> {self.path} ({self.bytes / 1e6:,.1f} MB in "
            f"{self.seconds:,.1f} s, {self.how})"
        )


def utc_stamp(when: datetime | None = None) -> str:
    """The time part of a backup's name: ``20260126T020000Z`` (UTC, sorts as it reads)."""
    t = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{t.year:04d}{t:%m%dT%H%M%S}Z"  # strftime's %Y does not pad years before 1000


def backup_path(out_dir, stem: str, stamp: str, suffix: str = ".duckdb") -> Path:
    """``out_dir/<stem>-<stamp><suffix>``, with ``-2``, ``-3``... when that name is taken."""
    out_dir = Path(out_dir)
    path = out_dir / f"{stem}-{stamp}{suffix}"
    n = 2
    while path.exists():
        path = out_dir / f"{stem}-{stamp}-{n}{suffix}"
        n += 1
    return path


def prepare_out(out_dir) -> Path:
    """Create the backup folder if need be and prove this process can write in it, so a
    folder it cannot use is refused before anything is copied."""
    out = Path(out_dir).expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".embex-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ParameterError(
            f"Cannot write backups to {out}: {exc.strerror or exc}. Pick a folder that this user "
            f"({_user()}) can write to with --out, or give it write access."
        ) from None
    return out


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return "this user"


# -- writing one copy (in whichever process holds the store) ---------------------------------------


def write_backup(store: Store, final, *, how: str = "direct") -> BackupResult:
    """Copy ``store`` to the new file ``final``: into a hidden temporary file beside it, read
    back whole, made private (0600), flushed to disk, then renamed into place. Nothing is left
    under ``final`` (nor the temporary name) if any step fails."""
    final = Path(final)
    if final.suffix != ".duckdb" or not final.is_absolute():
        raise ParameterError(f"A backup is written to an absolute path ending in .duckdb, not {final}.")
    if not final.parent.is_dir():
        raise ParameterError(f"The backup folder {final.parent} does not exist.")
    if final.exists():
        raise ParameterError(f"{final} already exists; a backup never replaces a file.")
    tmp = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")
    t0 = time.perf_counter()
    try:
        store.backup_to(tmp)
        with Store(tmp, read_only=True, migrate_to=0) as copy:  # opens as a store: the quick scan
            report = copy.check()  # every block of every table read whole
        if not report.ok:
            raise StoreError(
                f"The copy of {store.path} did not read back whole: {'; '.join(report.problems)}."
            )
        os.chmod(tmp, 0o600)
        _fsync(tmp)
        if final.exists():
            raise ParameterError(f"{final} appeared while the backup was written; it was left as it is.")
        os.replace(tmp, final)
        _fsync(final.parent)
    except OSError as exc:
        raise StoreError(
            f"The backup of {store.path} could not be written to {final.parent}: {exc.strerror or exc} "
            f"(as user {_user()}). Check that the folder is writable and has room."
        ) from None
    finally:
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            leftover.unlink(missing_ok=True)
    return BackupResult(
        source=str(store.path),
        path=str(final),
        bytes=final.stat().st_size,
        seconds=round(time.perf_counter() - t0, 3),
        how=how,
        rows={t: n for t, n in report.rows.items() if n is not None},
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- one store: directly, or by asking the process that holds it -----------------------------------


def backup_store(
    store_path,
    out_dir,
    *,
    stamp: str | None = None,
    wait_for_server: float = WAIT_FOR_SERVER,
    timeout: float = TIMEOUT,
) -> BackupResult:
    """Back up one store file into ``out_dir`` as ``<stem>-<UTC time>.duckdb``.

    Nobody holds it: this process opens it read-only (no migration: the copy is the file as it
    is) and copies it. A process holds it: the request goes to that process's job executor,
    which must take it within ``wait_for_server`` seconds and finish within ``timeout``.
    """
    from .jobs import sidecar

    source = Path(store_path).expanduser().resolve()
    if not source.is_file():
        raise ParameterError(
            f"There is no store file at {source}; point --store at a workspace's .duckdb file."
        )
    out = prepare_out(out_dir)
    final = backup_path(out, source.stem, stamp or utc_stamp())
    try:
        store = Store(source, read_only=True, migrate_to=0)
    except StoreLockedError:
        return _ask_holder(sidecar(source), source, final, wait_for_server, timeout)
    with store:
        return write_backup(store, final)


def _ask_holder(
    folder: Path, source: Path, final: Path, wait_for_server: float, timeout: float
) -> BackupResult:
    token = secrets.token_hex(8)
    request = folder / f"backup-{token}"
    try:
        folder.mkdir(exist_ok=True)
        staged = folder / f".request-{token}"
        staged.write_text(json.dumps({"out": str(final), "pid": os.getpid(), "asked": time.time()}))
        os.replace(staged, request)
    except OSError as exc:
        raise StoreError(
            f"The store {source} is held by another process, and the request for a backup could not "
            f"be left for it in {folder}: {exc.strerror or exc}. Run embex backup as the user the "
            "server runs as."
        ) from None
    done, error = folder / f"backup-{token}.done", folder / f"backup-{token}.error"
    start = time.monotonic()
    taken = False
    while True:
        if done.exists() or error.exists():
            break
        waited = time.monotonic() - start
        if not taken and waited > wait_for_server:
            try:
                request.unlink()  # withdrawn: nothing took it
            except FileNotFoundError:
                taken = True  # taken just now: wait for the answer
                continue
            raise StoreError(
                f"The store {source} is held by another process, and no embex server answered the "
                f"backup request within {wait_for_server:g} s. If `embex serve` holds it, it is a "
                "version without backups: restart it. Otherwise stop what holds the file (an embex "
                "command still running) and run embex backup again. Nothing was written."
            )
        if waited > timeout:
            raise StoreError(
                f"The server took the backup request for {source} but has not finished within "
                f"{timeout:g} s; the backup will appear as {final} if it completes (a bigger "
                "--timeout waits longer)."
            )
        taken = taken or not request.exists()
        time.sleep(0.1)
    try:
        if error.exists():
            raise StoreError(error.read_text(errors="replace").strip() or f"The backup of {source} failed.")
        return BackupResult(**json.loads(done.read_text()))
    finally:
        done.unlink(missing_ok=True)
        error.unlink(missing_ok=True)


# -- the executor's side (analytics.jobs calls take_requests from its dispatcher) -------------------


def take_requests(store: Store, folder: Path) -> None:
    """Claim each backup request in ``folder`` and write the copy in a thread of its own (the
    dispatcher that calls this holds the executor's lock: nothing slow happens here, and a
    folder it cannot use is logged, never raised, so jobs go on starting)."""
    try:
        entries = list(folder.glob("backup-*"))
    except OSError as exc:
        log.warning("backup requests in %s could not be read: %s", folder, exc)
        return
    for entry in entries:
        token = entry.name.removeprefix("backup-")
        try:
            if len(token) != 16 or not set(token) <= _TOKEN_CHARS:  # answers and claims have dots
                if time.time() - _mtime(entry) > _STALE:
                    entry.unlink(missing_ok=True)  # an answer nobody came back for, a dead claim
                continue
            claimed = entry.with_name(entry.name + ".taken")
            try:
                os.replace(entry, claimed)
            except FileNotFoundError:
                continue  # withdrawn by the command that left it
        except OSError as exc:
            log.warning("backup request %s could not be taken: %s", entry, exc)
            continue
        threading.Thread(
            target=_serve_request, args=(store, claimed, token), name=f"embex-backup-{token}", daemon=True
        ).start()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def _serve_request(store: Store, claimed: Path, token: str) -> None:
    folder = claimed.parent
    try:
        try:
            final = Path(json.loads(claimed.read_text())["out"])
        except (OSError, ValueError, KeyError, TypeError):
            raise ParameterError("The backup request could not be read; run embex backup again.") from None
        result = write_backup(store, final, how=f"copied by the server, pid {os.getpid()}")
        _answer(folder / f"backup-{token}.done", json.dumps(asdict(result)))
        log.info("backup of %s written to %s", store.path, final)
    except ExplorerError as exc:
        _answer(folder / f"backup-{token}.error", str(exc))
    except Exception:  # noqa: BLE001 - a bug: logged with its traceback under an id, answered
        incident = secrets.token_hex(4)
        log.exception("backup request %s failed (error id %s)", token, incident)
        _answer(
            folder / f"backup-{token}.error", f"unexpected error (error id {incident}); see the server log"
        )
    finally:
        claimed.unlink(missing_ok=True)


def _answer(path: Path, text: str) -> None:
    try:
        staged = path.with_name("." + path.name)
        staged.write_text(text)
        os.replace(staged, path)
    except OSError as exc:
        log.warning("the answer to a backup request could not be written (%s): %s", path, exc)


# -- a team instance ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceBackup:
    """What :func:`backup_instance` wrote, and what failed (one message per file)."""

    results: list
    failures: list

    @property
    def ok(self) -> bool:
        return not self.failures


def backup_instance(
    instance_dir,
    out_dir,
    *,
    wait_for_server: float = WAIT_FOR_SERVER,
    timeout: float = TIMEOUT,
) -> InstanceBackup:
    """Back up a team instance into ``out_dir``, every file with one UTC time in its name:
    each ``workspaces/<name>.duckdb`` (as :func:`backup_store`), ``accounts.sqlite`` (SQLite's
    online backup API: consistent while the server writes it) and ``settings.toml``.
    ``secrets.toml`` is left out on purpose: keep it where your other secrets are kept. A file
    that fails does not stop the others."""
    root = Path(instance_dir).expanduser().resolve()
    workspaces = root / "workspaces"
    if not workspaces.is_dir():
        raise ParameterError(
            f"{root} is not an embex instance folder: it has no workspaces/ folder "
            "(an instance holds settings.toml, accounts.sqlite and workspaces/<name>.duckdb)."
        )
    out = prepare_out(out_dir)
    if out == root or root in out.parents:
        raise ParameterError(f"Put the backups outside the instance folder {root}, not in {out}.")
    stamp = utc_stamp()
    results, failures = [], []
    for path in sorted(workspaces.glob("*.duckdb")):
        try:
            results.append(
                backup_store(path, out, stamp=stamp, wait_for_server=wait_for_server, timeout=timeout)
            )
        except ExplorerError as exc:
            failures.append(f"{path.name}: {exc}")
    accounts = root / "accounts.sqlite"
    if accounts.is_file():
        try:
            results.append(backup_sqlite(accounts, backup_path(out, "accounts", stamp, ".sqlite")))
        except ExplorerError as exc:
            failures.append(f"{accounts.name}: {exc}")
    settings = root / "settings.toml"
    if settings.is_file():
        try:
            results.append(_copy_file(settings, backup_path(out, "settings", stamp, ".toml")))
        except ExplorerError as exc:
            failures.append(f"{settings.name}: {exc}")
    return InstanceBackup(results, failures)


def backup_sqlite(source, final) -> BackupResult:
    """A consistent copy of a SQLite database (the accounts) with SQLite's online backup API,
    which copies the pages as of one instant while other connections keep writing; checked
    with ``PRAGMA integrity_check``, private (0600), renamed into place."""
    source, final = Path(source), Path(final)
    tmp = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")
    t0 = time.perf_counter()
    try:
        src = sqlite3.connect(str(source))  # the backup only reads it
        try:
            dst = sqlite3.connect(tmp)
            try:
                src.backup(dst)
                verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
                tables = [r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                rows = {
                    t: dst.execute('SELECT count(*) FROM "' + t.replace('"', '""') + '"').fetchone()[0]
                    for t in tables
                }
            finally:
                dst.close()
        finally:
            src.close()
        if verdict != "ok":
            raise StoreError(f"The copy of {source} failed SQLite's integrity check: {verdict}.")
        os.chmod(tmp, 0o600)
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(final.parent)
    except sqlite3.Error as exc:
        raise StoreError(f"{source} could not be backed up: {exc}.") from None
    except OSError as exc:
        raise StoreError(
            f"{source} could not be backed up to {final.parent}: {exc.strerror or exc}."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    return BackupResult(
        str(source),
        str(final),
        final.stat().st_size,
        round(time.perf_counter() - t0, 3),
        "sqlite backup",
        rows,
    )


def _copy_file(source: Path, final: Path) -> BackupResult:
    tmp = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}")
    t0 = time.perf_counter()
    try:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)
    except OSError as exc:
        raise StoreError(f"{source} could not be copied to {final.parent}: {exc.strerror or exc}.") from None
    finally:
        tmp.unlink(missing_ok=True)
    return BackupResult(
        str(source), str(final), final.stat().st_size, round(time.perf_counter() - t0, 3), "copied"
    )
