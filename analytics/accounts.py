"""People, workspaces and roles of a hosted instance, in one SQLite file (``accounts.sqlite``).

SQLite (the standard library's ``sqlite3``) rather than DuckDB, because DuckDB allows one
writer process and the server holds its files: in WAL mode ``embex user ...`` adds a person or
unlocks an account while the server runs and reads the same file. Each operation opens its own
short connection, so threads (Streamlit's sessions) share nothing but the file; writes take the
file's write lock at once (``BEGIN IMMEDIATE``), so counting failures is not racy. Every value
is a bound parameter.

Passwords: argon2id through argon2-cffi's ``PasswordHasher`` (its default, vetted parameters;
no hashing of our own). A password lives in memory only for the call that hashes or checks it:
it is never stored, logged or put in a message. A person who signs in only through the identity
provider (OpenID Connect, matched by e-mail as their user name) has no password hash.

Sign-in (:meth:`Accounts.verify`) says "Wrong user name or password." for an unknown name and a
wrong password alike, and spends the same argon2 check on both (an unknown name is checked
against a dummy hash). After ``lockout_failures`` wrong passwords in a row an account is locked
for ``lockout_minutes``; names that are not accounts are locked the same way (in memory, so
nothing typed into the name field is written to disk), so locking does not tell a guesser which
names exist. Every attempt is recorded (ok, failed, locked) with its time.

>>> accounts = Accounts("team/accounts.sqlite")
>>> accounts.add_user("Alice@Example.com", "correct horse battery")
'alice@example.com'
>>> accounts.verify("alice@example.com", "correct horse battery")
'alice@example.com'
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .access import ROLES, check_role
from .errors import AccessError, ParameterError, SignInError, StoreError
from .settings import Settings

log = logging.getLogger("embex.accounts")

#: the one message for an unknown name and a wrong password (it reveals neither)
WRONG = "Wrong user name or password."
#: sign-in outcomes recorded in the sign_ins table
OUTCOMES = ("ok", "failed", "locked")
#: the accounts file's format (SQLite's user_version); a newer file is refused, not rewritten
SCHEMA = 1
#: longest password accepted (argon2 takes any length; this only bounds a silly input)
MAX_PASSWORD_CHARS = 4096
_USER = re.compile(r"[a-z0-9._@+-]{1,100}")
_WORKSPACE = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
#: most name-only (not an account) lock-out states kept in memory at once
_MAX_GHOSTS = 10_000

_SCHEMA_SQL = (
    """CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT,
        failures INTEGER NOT NULL DEFAULT 0,
        locked_until REAL,
        created REAL NOT NULL)""",
    """CREATE TABLE workspaces (
        name TEXT PRIMARY KEY,
        created REAL NOT NULL)""",
    """CREATE TABLE memberships (
        user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        workspace TEXT NOT NULL REFERENCES workspaces(name) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
        PRIMARY KEY (user, workspace))""",
    """CREATE TABLE sign_ins (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        user TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'locked')),
        method TEXT NOT NULL)""",
    """CREATE TABLE changes (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX sign_ins_by_time ON sign_ins (time)",
)


def _shown(value) -> str:
    """A name as messages quote it: repr, at most 60 characters (it is user input)."""
    text = str(value)
    return repr(text if len(text) <= 60 else text[:59] + "…")


def user_name(name) -> str:
    """``name`` as it is stored: stripped and case-folded, 1–100 characters of a–z, 0–9 and
    ``. _ @ + -`` (an e-mail address is a name, which is how identity-provider sign-ins are
    matched); else :class:`ParameterError`."""
    key = name.strip().casefold() if isinstance(name, str) else None
    if key is None or not _USER.fullmatch(key):
        raise ParameterError(
            "A user name is 1–100 characters of a–z, 0–9 and . _ @ + - (an e-mail address "
            f"works; upper case is folded to lower); got {_shown(name)}."
        )
    return key


def workspace_name(name) -> str:
    """``name`` as it is stored: stripped and case-folded, a letter or digit then up to 39
    letters, digits or hyphens (it names the workspace's file); else :class:`ParameterError`."""
    key = name.strip().casefold() if isinstance(name, str) else None
    if key is None or not _WORKSPACE.fullmatch(key):
        raise ParameterError(
            "A workspace name is 1–40 characters of a–z, 0–9 and -, starting with a letter or "
            f"digit; got {_shown(name)}."
        )
    return key


@dataclass(frozen=True)
class Membership:
    """One of a person's workspaces and their role in it."""

    workspace: str
    role: str


@dataclass(frozen=True)
class Member:
    """One member of a workspace and their role in it."""

    user: str
    role: str


@dataclass(frozen=True)
class User:
    """A person as ``embex user list`` shows them (never their hash)."""

    name: str
    has_password: bool
    failures: int
    locked_until: float | None
    created: float

    def locked(self, now: float | None = None) -> bool:
        return self.locked_until is not None and self.locked_until > (time.time() if now is None else now)


@dataclass(frozen=True)
class SignIn:
    """One sign-in attempt: ``user`` is None for a name that is not an account."""

    time: float
    user: str | None
    outcome: str
    method: str


@dataclass(frozen=True)
class Change:
    """One change to people, workspaces or roles, and who made it."""

    time: float
    actor: str
    action: str
    target: str
    detail: str


# -- the dummy hash an unknown name is checked against (one per hasher's parameters) ----------------

_dummies: dict[tuple, str] = {}
_dummy_lock = threading.Lock()


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = (
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
        hasher.hash_len,
        hasher.salt_len,
        hasher.type,
    )
    with _dummy_lock:
        if key not in _dummies:
            _dummies[key] = hasher.hash(os.urandom(24).hex())
        return _dummies[key]


# -- lock-out of names that are not accounts, in memory: (file, name) -> [failures, locked_until, last]

_ghosts: dict[tuple[str, str], list[float]] = {}
_ghost_lock = threading.Lock()


class Accounts:
    """The people, workspaces and roles of an instance, in the SQLite file ``path`` (created
    when missing, readable only by its owner).

    settings : the lock-out and password limits (:class:`~analytics.settings.Settings`).
    hasher : argon2's ``PasswordHasher`` (default parameters unless given).
    clock : the time in Unix seconds (tests pass their own, so lock-out needs no sleeping).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        settings: Settings | None = None,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.path = Path(path)
        self.settings = settings if settings is not None else Settings()
        self.hasher = hasher if hasher is not None else PasswordHasher()
        self.clock = clock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # created empty with owner-only permissions before SQLite opens it (it holds hashes)
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass
        except OSError as exc:
            raise StoreError(
                f"The accounts file {self.path} cannot be created: {exc.strerror or exc}."
            ) from None
        self._create_schema()

    # -- plumbing ------------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        con.execute("PRAGMA foreign_keys = ON")
        return con

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(
                f"The accounts file {self.path} stayed busy for 10 s (another process is writing "
                "to it); try again."
            )
        if "not a database" in text or "malformed" in text:
            return StoreError(
                f"The accounts file {self.path} is damaged or not an accounts file ({text}); "
                "restore it from a backup."
            )
        return StoreError(f"The accounts file {self.path} cannot be used: {text}.")

    @contextmanager
    def _read(self):
        try:
            con = self._open()
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        try:
            yield con
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        finally:
            con.close()

    @contextmanager
    def _write(self):
        """A write transaction holding the file's write lock from its start: everything inside
        commits together, or (on any error) not at all."""
        try:
            con = self._open()
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        try:
            with con:  # commits at the end, rolls back on any exception
                con.execute("BEGIN IMMEDIATE")
                yield con
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        finally:
            con.close()

    def _create_schema(self) -> None:
        with self._read() as con:
            if con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA:
                return
            # WAL: readers never wait for the writer, so the CLI and the server share the file
            con.execute("PRAGMA journal_mode = WAL")
        with self._write() as con:
            version = con.execute("PRAGMA user_version").fetchone()[0]  # another process may have
            if version > SCHEMA:
                raise StoreError(
                    f"The accounts file {self.path} was written by a newer Embedding Explorer "
                    f"(format {version}; this one knows {SCHEMA}). Upgrade, or use another instance."
                )
            if version == 0:
                for sql in _SCHEMA_SQL:
                    con.execute(sql)
                con.execute(f"PRAGMA user_version = {int(SCHEMA)}")

    def _change(self, con, by: str, action: str, target: str, detail: str = "") -> None:
        con.execute(
            "INSERT INTO changes (time, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            [self.clock(), str(by)[:200], action, target, detail],
        )

    def _check_password(self, password) -> str:
        if not isinstance(password, str):
            raise ParameterError("A password must be text.")
        least = self.settings.min_password_chars
        if len(password) < least:
            raise ParameterError(
                f"A password needs at least {least} characters (min_password_chars); nothing was changed."
            )
        if len(password) > MAX_PASSWORD_CHARS:
            raise ParameterError(
                f"A password may have at most {MAX_PASSWORD_CHARS:,} characters; nothing was changed."
            )
        return password

    def _existing(self, con, name: str) -> tuple:
        row = con.execute(
            "SELECT name, password_hash, failures, locked_until, created FROM users WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            raise StoreError(f"There is no user named {name!r} (embex user list shows them).")
        return row

    def _has_workspace(self, con, workspace: str) -> None:
        if con.execute("SELECT 1 FROM workspaces WHERE name = ?", [workspace]).fetchone() is None:
            raise StoreError(
                f"There is no workspace named {workspace!r} (embex workspace list shows them; "
                "embex workspace add creates one)."
            )

    def _only_admin_of(self, con, user: str) -> list[str]:
        """The workspaces where ``user`` is the one admin."""
        rows = con.execute(
            "SELECT m.workspace FROM memberships m WHERE m.user = ? AND m.role = 'admin' AND NOT EXISTS "
            "(SELECT 1 FROM memberships o WHERE o.workspace = m.workspace AND o.role = 'admin' "
            "AND o.user <> m.user) ORDER BY m.workspace",
            [user],
        ).fetchall()
        return [r[0] for r in rows]

    # -- people --------------------------------------------------------------------------------

    def add_user(self, name: str, password: str | None = None, *, by: str = "system") -> str:
        """Add a person; ``password`` None: they sign in only through the identity provider.
        Returns the name as stored (case-folded)."""
        key = user_name(name)
        digest = None if password is None else self.hasher.hash(self._check_password(password))
        with self._write() as con:
            if con.execute("SELECT 1 FROM users WHERE name = ?", [key]).fetchone():
                raise StoreError(
                    f"A user named {key!r} already exists (embex user passwd changes a password)."
                )
            con.execute(
                "INSERT INTO users (name, password_hash, created) VALUES (?, ?, ?)",
                [key, digest, self.clock()],
            )
            how = "identity provider only" if digest is None else "with a password"
            self._change(con, by, "user add", key, how)
        return key

    def remove_user(self, name: str, *, by: str = "system", keep_admin: bool = True) -> None:
        """Remove a person and their memberships (their past sign-ins stay in the record).
        With ``keep_admin``, refuse when they are the one admin of a workspace."""
        key = user_name(name)
        with self._write() as con:
            self._existing(con, key)
            only = self._only_admin_of(con, key) if keep_admin else []
            if only:
                raise AccessError(
                    f"{key!r} is the only admin of {', '.join(map(repr, only))}; give another member "
                    "the admin role first."
                )
            con.execute("DELETE FROM users WHERE name = ?", [key])
            self._change(con, by, "user remove", key)

    def set_password(self, name: str, password: str | None, *, by: str = "system") -> None:
        """Set (None: remove) a person's password; this also unlocks the account."""
        key = user_name(name)
        digest = None if password is None else self.hasher.hash(self._check_password(password))
        with self._write() as con:
            self._existing(con, key)
            con.execute(
                "UPDATE users SET password_hash = ?, failures = 0, locked_until = NULL WHERE name = ?",
                [digest, key],
            )
            self._change(con, by, "user passwd", key, "password removed" if digest is None else "")

    def unlock(self, name: str, *, by: str = "system") -> None:
        """End a lock-out now and forget the failures counted so far."""
        key = user_name(name)
        with self._write() as con:
            self._existing(con, key)
            con.execute("UPDATE users SET failures = 0, locked_until = NULL WHERE name = ?", [key])
            self._change(con, by, "user unlock", key)
        with _ghost_lock:
            _ghosts.pop((str(self.path), key), None)

    def user(self, name: str) -> User | None:
        try:
            key = user_name(name)
        except ParameterError:
            return None
        with self._read() as con:
            row = con.execute(
                "SELECT name, password_hash IS NOT NULL, failures, locked_until, created FROM users "
                "WHERE name = ?",
                [key],
            ).fetchone()
        return None if row is None else User(row[0], bool(row[1]), *row[2:])

    def users(self) -> list[User]:
        with self._read() as con:
            rows = con.execute(
                "SELECT name, password_hash IS NOT NULL, failures, locked_until, created FROM users ORDER BY name"
            ).fetchall()
        return [User(r[0], bool(r[1]), *r[2:]) for r in rows]

    def has_password_users(self) -> bool:
        """Whether anyone can sign in with a password (else the page offers only the identity
        provider's sign-in)."""
        with self._read() as con:
            return (
                con.execute("SELECT 1 FROM users WHERE password_hash IS NOT NULL LIMIT 1").fetchone()
                is not None
            )

    # -- signing in ------------------------------------------------------------------------------

    def _locked_message(self, until: float, now: float) -> str:
        minutes = max(1, int(-(-(until - now) // 60)))
        return (
            f"This account is locked after {self.settings.lockout_failures} wrong passwords in a row; "
            f"try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an administrator to "
            "unlock it."
        )

    def _check(self, digest: str, password) -> bool:
        if not isinstance(password, (str, bytes)):
            password = ""
        try:
            return self.hasher.verify(digest, password)
        except InvalidHashError:
            log.warning("a stored password hash in %s is not an argon2 hash; that sign-in failed", self.path)
            return False
        except VerificationError:  # VerifyMismatchError: the wrong password
            return False

    def verify(self, name: str, password: str, *, method: str = "password") -> str:
        """The user name (as stored) when ``password`` is theirs; else :class:`SignInError`:
        "Wrong user name or password." for an unknown name and a wrong password alike (after
        the same argon2 check), or a message saying the account is locked and for how long. A
        success forgets past failures and re-hashes the password when argon2's parameters
        have changed."""
        now = self.clock()
        try:
            key = user_name(name)
        except ParameterError:
            key = None
        row = None
        if key is not None:
            with self._read() as con:
                row = con.execute(
                    "SELECT password_hash, locked_until FROM users WHERE name = ?", [key]
                ).fetchone()
        if row is None or row[0] is None:  # no such account, or one without a password
            self._check(_dummy_hash(self.hasher), password)
            return self._ghost_failure(key, name, None if row is None else key, now, method)
        digest, locked_until = row
        if locked_until is not None and locked_until > now:
            self._check(_dummy_hash(self.hasher), password)  # the same time as a real check
            self.record_sign_in(key, "locked", method=method)
            raise SignInError(self._locked_message(locked_until, now))
        if not self._check(digest, password):
            with self._write() as con:
                got = con.execute(
                    "UPDATE users SET failures = failures + 1 WHERE name = ? RETURNING failures", [key]
                ).fetchone()
                locked = got is not None and got[0] >= self.settings.lockout_failures
                if locked:
                    until = now + 60 * self.settings.lockout_minutes
                    con.execute(
                        "UPDATE users SET failures = 0, locked_until = ? WHERE name = ?", [until, key]
                    )
                self._event(con, key, "failed", method, now)
            raise SignInError(self._locked_message(until, now) if locked else WRONG)
        fresh = self.hasher.hash(password) if self.hasher.check_needs_rehash(digest) else None
        with self._write() as con:
            con.execute("UPDATE users SET failures = 0, locked_until = NULL WHERE name = ?", [key])
            if fresh is not None:
                con.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                    [fresh, key, digest],
                )
            self._event(con, key, "ok", method, now)
        return key

    def _ghost_failure(self, key, name, user, now: float, method: str):
        """A failed sign-in of a name with no password account: counted and locked out in
        memory exactly as an account would be, then :class:`SignInError`."""
        slot = (str(self.path), key if key is not None else str(name).strip().casefold()[:200])
        with _ghost_lock:
            state = _ghosts.get(slot)
            if state is not None and state[1] > now:
                outcome, message = "locked", self._locked_message(state[1], now)
            else:
                state = [state[0] if state is not None else 0, 0.0, now]
                state[0] += 1
                state[2] = now
                outcome, message = "failed", WRONG
                if state[0] >= self.settings.lockout_failures:
                    state[0], state[1] = 0, now + 60 * self.settings.lockout_minutes
                    message = self._locked_message(state[1], now)
            _ghosts[slot] = state
            if len(_ghosts) > _MAX_GHOSTS:  # forget the states that have ended, then the oldest
                window = 60 * self.settings.lockout_minutes
                for k in [k for k, s in _ghosts.items() if s[1] <= now and s[2] < now - window]:
                    del _ghosts[k]
                while len(_ghosts) > _MAX_GHOSTS:
                    del _ghosts[min(_ghosts, key=lambda k: _ghosts[k][2])]
        self.record_sign_in(user, outcome, method=method)
        raise SignInError(message)

    def _event(self, con, user: str | None, outcome: str, method: str, now: float) -> None:
        con.execute(
            "INSERT INTO sign_ins (time, user, outcome, method) VALUES (?, ?, ?, ?)",
            [now, user, outcome, str(method)[:40]],
        )

    def record_sign_in(self, user: str | None, outcome: str, *, method: str = "oidc") -> None:
        """Record a sign-in attempt (the dashboard records identity-provider sign-ins so).
        ``user`` is stored only when it is a valid user name (else None)."""
        if outcome not in OUTCOMES:
            raise ParameterError(f"A sign-in outcome is one of {', '.join(OUTCOMES)}; got {_shown(outcome)}.")
        try:
            key = None if user is None else user_name(user)
        except ParameterError:
            key = None
        with self._write() as con:
            self._event(con, key, outcome, method, self.clock())

    def sign_ins(self, limit: int = 100, *, user: str | None = None) -> list[SignIn]:
        """Sign-in attempts, newest first (of one user, or all)."""
        sql, params = "SELECT time, user, outcome, method FROM sign_ins", []
        if user is not None:
            sql, params = sql + " WHERE user = ?", [user_name(user)]
        with self._read() as con:
            rows = con.execute(sql + " ORDER BY time DESC, id DESC LIMIT ?", [*params, int(limit)]).fetchall()
        return [SignIn(*r) for r in rows]

    def changes(self, limit: int = 100) -> list[Change]:
        """Changes to people, workspaces and roles, newest first."""
        with self._read() as con:
            rows = con.execute(
                "SELECT time, actor, action, target, detail FROM changes ORDER BY time DESC, id DESC LIMIT ?",
                [int(limit)],
            ).fetchall()
        return [Change(*r) for r in rows]

    # -- workspaces and roles --------------------------------------------------------------------

    def add_workspace(self, name: str, *, by: str = "system") -> str:
        """Register a workspace (its store file is :class:`~analytics.instance.Instance`'s
        business). Returns the name as stored."""
        key = workspace_name(name)
        with self._write() as con:
            if con.execute("SELECT 1 FROM workspaces WHERE name = ?", [key]).fetchone():
                raise StoreError(f"A workspace named {key!r} already exists.")
            con.execute("INSERT INTO workspaces (name, created) VALUES (?, ?)", [key, self.clock()])
            self._change(con, by, "workspace add", key)
        return key

    def workspaces(self) -> list[str]:
        with self._read() as con:
            return [r[0] for r in con.execute("SELECT name FROM workspaces ORDER BY name").fetchall()]

    def has_workspace(self, name: str) -> bool:
        try:
            key = workspace_name(name)
        except ParameterError:
            return False
        with self._read() as con:
            return con.execute("SELECT 1 FROM workspaces WHERE name = ?", [key]).fetchone() is not None

    def set_role(
        self, user: str, workspace: str, role: str | None, *, by: str = "system", keep_admin: bool = True
    ) -> str | None:
        """Give ``user`` ``role`` in ``workspace`` (None: take them out of it); returns the
        role they had. With ``keep_admin``, refuse to leave a workspace that has an admin
        without one (the CLI, run by whoever runs the server, may)."""
        ukey, wkey = user_name(user), workspace_name(workspace)
        if role is not None:
            check_role(role)
        with self._write() as con:
            self._existing(con, ukey)
            self._has_workspace(con, wkey)
            row = con.execute(
                "SELECT role FROM memberships WHERE user = ? AND workspace = ?", [ukey, wkey]
            ).fetchone()
            before = None if row is None else row[0]
            if (
                keep_admin
                and before == "admin"
                and role != "admin"
                and wkey in self._only_admin_of(con, ukey)
            ):
                raise AccessError(
                    f"{ukey!r} is the only admin of {wkey!r}; give another member the admin role first."
                )
            if role is None:
                con.execute("DELETE FROM memberships WHERE user = ? AND workspace = ?", [ukey, wkey])
            else:
                con.execute(
                    "INSERT INTO memberships (user, workspace, role) VALUES (?, ?, ?) "
                    "ON CONFLICT (user, workspace) DO UPDATE SET role = excluded.role",
                    [ukey, wkey, role],
                )
            self._change(con, by, "role", f"{ukey} in {wkey}", f"{before or 'none'} -> {role or 'none'}")
        return before

    def memberships(self, user: str) -> list[Membership]:
        """The workspaces of ``user`` and their role in each (none for an unknown name)."""
        try:
            key = user_name(user)
        except ParameterError:
            return []
        with self._read() as con:
            rows = con.execute(
                "SELECT workspace, role FROM memberships WHERE user = ? ORDER BY workspace", [key]
            ).fetchall()
        return [Membership(*r) for r in rows]

    def role(self, user: str, workspace: str) -> str | None:
        """The role of ``user`` in ``workspace``, or None (not a member, or no such name)."""
        try:
            ukey, wkey = user_name(user), workspace_name(workspace)
        except ParameterError:
            return None
        with self._read() as con:
            row = con.execute(
                "SELECT role FROM memberships WHERE user = ? AND workspace = ?", [ukey, wkey]
            ).fetchone()
        return None if row is None else row[0]

    def members(self, workspace: str) -> list[Member]:
        """The members of ``workspace``: admins first, then editors, then viewers, by name."""
        key = workspace_name(workspace)
        with self._read() as con:
            rows = con.execute("SELECT user, role FROM memberships WHERE workspace = ?", [key]).fetchall()
        return sorted((Member(*r) for r in rows), key=lambda m: (-ROLES.index(m.role), m.user))


__all__ = [
    "MAX_PASSWORD_CHARS",
    "OUTCOMES",
    "WRONG",
    "Accounts",
    "Change",
    "Member",
    "Membership",
    "SignIn",
    "User",
    "user_name",
    "workspace_name",
]
