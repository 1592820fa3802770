"""Built-in accounts and the instance (analytics.accounts, analytics.instance): a real SQLite
file, real argon2id (cheap parameters where a test hashes often, the defaults where it matters),
and a clock the test moves, so lock-out is tested without sleeping."""

from __future__ import annotations

import sqlite3
import stat
import threading

import pytest
from argon2 import PasswordHasher
from hypothesis import given
from hypothesis import strategies as st

from analytics.access import Actor
from analytics.accounts import WRONG, Accounts, Member, Membership, user_name, workspace_name
from analytics.errors import AccessError, ParameterError, SettingsError, SignInError, StoreError
from analytics.instance import NOT_YOURS, Instance
from analytics.settings import Settings
from analytics.store import SCHEMA_VERSION, Store

PASSWORD = "correct horse battery staple"


class Clock:
    """The time a test sets (Unix seconds)."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += 60 * minutes


class CountingHasher(PasswordHasher):
    """argon2id with cheap parameters (a test hashes dozens of times) that counts its checks."""

    def __init__(self):
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.checks = 0

    def verify(self, hash, password):
        self.checks += 1
        return super().verify(hash, password)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def accounts(tmp_path, clock):
    return Accounts(tmp_path / "accounts.sqlite", hasher=CountingHasher(), clock=clock)


def _fail(accounts, name, password="wrong password!") -> str:
    with pytest.raises(SignInError) as caught:
        accounts.verify(name, password)
    return str(caught.value)


# -- names ----------------------------------------------------------------------------------------


def test_names_are_case_folded_and_an_email_is_a_name():
    assert user_name("  Alice@Example.COM ") == "alice@example.com"
    assert user_name("bob.smith+ops_2") == "bob.smith+ops_2"
    assert workspace_name("News-2026") == "news-2026"
    for bad in ["", "a b", "x" * 101, "al/ice", "../x", "émile", None, 3]:
        with pytest.raises(ParameterError, match="A user name is 1–100 characters"):
            user_name(bad)
    for bad in ["", "-news", "news_2", "x" * 41, "../etc", "a.b", None]:
        with pytest.raises(ParameterError, match="A workspace name is 1–40 characters"):
            workspace_name(bad)


@given(st.text(max_size=120))
def test_a_user_name_is_refused_or_canonical(text):
    try:
        key = user_name(text)
    except ParameterError:
        return
    assert user_name(key) == key and 1 <= len(key) <= 100
    assert set(key) <= set("abcdefghijklmnopqrstuvwxyz0123456789._@+-")


@given(st.text(max_size=60))
def test_a_workspace_name_is_refused_or_a_safe_file_name(text):
    try:
        key = workspace_name(text)
    except ParameterError:
        return
    assert workspace_name(key) == key and "/" not in key and not key.startswith(("-", "."))


# -- people and passwords -----------------------------------------------------------------------------


def test_add_verify_and_the_one_message_for_unknown_names_and_wrong_passwords(accounts):
    assert accounts.add_user("Alice@Example.com", PASSWORD) == "alice@example.com"
    assert accounts.verify("ALICE@example.com", PASSWORD) == "alice@example.com"
    hasher = accounts.hasher
    before = hasher.checks
    wrong = _fail(accounts, "alice@example.com")
    assert hasher.checks == before + 1
    unknown = _fail(accounts, "mallory@example.com", PASSWORD)
    assert hasher.checks == before + 2  # an unknown name costs the same argon2 check
    invalid = _fail(accounts, "not a name at all", PASSWORD)
    assert hasher.checks == before + 3
    assert wrong == unknown == invalid == WRONG == "Wrong user name or password."
    with pytest.raises(StoreError, match="already exists"):
        accounts.add_user("alice@EXAMPLE.com", "another password")


def test_a_short_password_is_refused_without_repeating_it(accounts):
    with pytest.raises(ParameterError) as caught:
        accounts.add_user("bob", "s3cr3t")
    assert "at least 8 characters" in str(caught.value) and "s3cr3t" not in str(caught.value)
    assert accounts.user("bob") is None  # nothing was added
    strict = Accounts(accounts.path, settings=Settings(min_password_chars=20), hasher=accounts.hasher)
    with pytest.raises(ParameterError, match="at least 20"):
        strict.add_user("bob", PASSWORD[:19])


def test_lock_out_after_consecutive_failures_for_the_set_minutes(accounts, clock):
    accounts.add_user("alice", PASSWORD)
    for _ in range(4):
        assert _fail(accounts, "alice") == WRONG
    locked = _fail(accounts, "alice")  # the fifth in a row locks
    assert locked.startswith(
        "This account is locked after 5 wrong passwords in a row; try again in 15 minutes"
    )
    assert _fail(accounts, "alice", PASSWORD) == locked  # even the right password, while locked
    clock.advance(14)
    assert "try again in 1 minute," in _fail(accounts, "alice", PASSWORD)
    clock.advance(1)
    assert accounts.verify("alice", PASSWORD) == "alice"
    assert accounts.user("alice").failures == 0 and not accounts.user("alice").locked(clock())


def test_a_success_resets_the_count(accounts):
    accounts.add_user("alice", PASSWORD)
    for _ in range(4):
        _fail(accounts, "alice")
    accounts.verify("alice", PASSWORD)
    for _ in range(4):
        assert _fail(accounts, "alice") == WRONG
    assert accounts.user("alice").failures == 4


def test_the_settings_decide_the_lock_out(tmp_path, clock):
    accounts = Accounts(
        tmp_path / "a.sqlite",
        settings=Settings(lockout_failures=2, lockout_minutes=60),
        hasher=CountingHasher(),
        clock=clock,
    )
    accounts.add_user("alice", PASSWORD)
    assert _fail(accounts, "alice") == WRONG
    assert "after 2 wrong passwords in a row; try again in 60 minutes" in _fail(accounts, "alice")
    clock.advance(59)
    assert "locked" in _fail(accounts, "alice", PASSWORD)
    clock.advance(1)
    assert accounts.verify("alice", PASSWORD) == "alice"


def test_names_that_are_not_accounts_lock_out_the_same_way(accounts, clock):
    """So a guesser cannot tell which names exist by which ones lock."""
    accounts.add_user("alice", PASSWORD)
    accounts.add_user("oidc@example.com")  # no password: signs in through the identity provider
    real = [_fail(accounts, "alice") for _ in range(6)]
    ghost = [_fail(accounts, "nobody@example.com", PASSWORD) for _ in range(6)]
    no_password = [_fail(accounts, "oidc@example.com", PASSWORD) for _ in range(6)]
    assert real == ghost == no_password
    assert real[3] == WRONG and real[4] == real[5] and "locked" in real[4]
    clock.advance(15)
    assert _fail(accounts, "nobody@example.com", PASSWORD) == WRONG


def test_unlock_and_a_new_password_end_a_lock_out(accounts):
    accounts.add_user("alice", PASSWORD)
    for _ in range(5):
        _fail(accounts, "alice")
    accounts.unlock("alice")
    assert accounts.verify("alice", PASSWORD) == "alice"
    for _ in range(5):
        _fail(accounts, "alice")
    accounts.set_password("alice", "a brand new password")
    assert accounts.verify("alice", "a brand new password") == "alice"
    assert _fail(accounts, "alice", PASSWORD) == WRONG
    with pytest.raises(StoreError, match="There is no user named 'ghost'"):
        accounts.unlock("ghost")


def test_concurrent_wrong_passwords_are_all_counted(accounts):
    accounts.add_user("alice", PASSWORD)
    errors = []

    def attempt():
        try:
            accounts.verify("alice", "wrong password!")
        except SignInError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=attempt) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 5 and sum("locked" in e for e in errors) == 1  # exactly the fifth locks
    assert accounts.user("alice").locked()


def test_sign_ins_are_recorded_with_their_outcome_and_never_a_password(accounts, clock):
    accounts.add_user("alice", PASSWORD)
    accounts.verify("alice", PASSWORD)
    for _ in range(5):
        _fail(accounts, "alice")
    _fail(accounts, "alice", PASSWORD)
    _fail(accounts, "hunter2-typed-as-a-name", PASSWORD)
    accounts.record_sign_in("Carol@Example.com", "ok")  # the dashboard, after the identity provider
    events = accounts.sign_ins(20)
    assert [(e.user, e.outcome, e.method) for e in events] == [
        ("carol@example.com", "ok", "oidc"),
        (None, "failed", "password"),  # a name that is no account is not stored
        ("alice", "locked", "password"),
        *[("alice", "failed", "password")] * 5,
        ("alice", "ok", "password"),
    ]
    assert all(e.time == clock() for e in events)
    assert [e.outcome for e in accounts.sign_ins(user="alice", limit=2)] == ["locked", "failed"]
    raw = b"".join(p.read_bytes() for p in accounts.path.parent.iterdir() if p.is_file())
    assert PASSWORD.encode() not in raw and b"wrong password!" not in raw and b"hunter2" not in raw


def test_hashes_are_argon2id_and_rehashed_when_the_parameters_change(tmp_path, clock):
    path = tmp_path / "a.sqlite"
    cheap = Accounts(path, hasher=CountingHasher(), clock=clock)
    cheap.add_user("alice", PASSWORD)

    def stored():
        with sqlite3.connect(path) as con:
            return con.execute("SELECT password_hash FROM users WHERE name = 'alice'").fetchone()[0]

    assert stored().startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    default = Accounts(path, clock=clock)  # argon2-cffi's default parameters
    assert default.verify("alice", PASSWORD) == "alice"
    assert stored().startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert default.verify("alice", PASSWORD) == "alice"
    assert cheap.verify("alice", PASSWORD) == "alice"  # any argon2 hash still verifies


def test_the_file_is_private_in_wal_mode_and_shared_between_openers(accounts, tmp_path):
    assert stat.S_IMODE(accounts.path.stat().st_mode) == 0o600
    with sqlite3.connect(accounts.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = Accounts(accounts.path, hasher=accounts.hasher)  # e.g. embex user, beside the server
    other.add_user("bob")
    assert [u.name for u in accounts.users()] == ["bob"] and not accounts.has_password_users()
    other.set_password("bob", PASSWORD)
    assert accounts.has_password_users() and accounts.verify("bob", PASSWORD) == "bob"


def test_a_newer_or_foreign_file_is_refused_and_left_alone(tmp_path):
    newer = tmp_path / "newer.sqlite"
    Accounts(newer, hasher=CountingHasher())
    with sqlite3.connect(newer) as con:
        con.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="written by a newer Embedding Explorer"):
        Accounts(newer)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database " * 100)
    with pytest.raises(StoreError, match="damaged or not an accounts file"):
        Accounts(junk)
    assert junk.read_bytes() == b"this is not a database " * 100


# -- workspaces and roles ----------------------------------------------------------------------------


def test_roles_memberships_and_members(accounts):
    for name in ("alice", "bob", "carol"):
        accounts.add_user(name)
    accounts.add_workspace("news")
    accounts.add_workspace("Sport")
    assert accounts.workspaces() == ["news", "sport"]
    assert accounts.set_role("alice", "news", "admin") is None
    accounts.set_role("bob", "news", "viewer")
    assert accounts.set_role("bob", "news", "editor") == "viewer"
    accounts.set_role("bob", "sport", "viewer")
    assert accounts.memberships("BOB") == [Membership("news", "editor"), Membership("sport", "viewer")]
    assert accounts.role("bob", "news") == "editor" and accounts.role("carol", "news") is None
    assert accounts.role("nobody", "news") is None and accounts.role("bob", "no such") is None
    assert accounts.members("news") == [Member("alice", "admin"), Member("bob", "editor")]
    assert accounts.set_role("bob", "sport", None) == "viewer"
    assert accounts.memberships("bob") == [Membership("news", "editor")]
    with pytest.raises(ParameterError, match="A role is one of"):
        accounts.set_role("bob", "news", "owner")
    with pytest.raises(StoreError, match="no workspace named 'weather'"):
        accounts.set_role("bob", "weather", "viewer")
    with pytest.raises(StoreError, match="no user named 'dave'"):
        accounts.set_role("dave", "news", "viewer")
    accounts.remove_user("bob")
    assert accounts.members("news") == [Member("alice", "admin")]
    changes = [(c.action, c.target, c.detail) for c in accounts.changes(3)]
    assert changes[0] == ("user remove", "bob", "")
    assert changes[1] == ("role", "bob in sport", "viewer -> none")


def test_the_only_admin_cannot_be_demoted_or_removed_unless_asked(accounts):
    accounts.add_user("alice")
    accounts.add_user("bob")
    accounts.add_workspace("news")
    accounts.set_role("alice", "news", "admin")
    with pytest.raises(AccessError, match="'alice' is the only admin of 'news'"):
        accounts.set_role("alice", "news", "editor")
    with pytest.raises(AccessError, match="only admin"):
        accounts.remove_user("alice")
    accounts.set_role("bob", "news", "admin")
    accounts.set_role("alice", "news", "viewer")  # bob is admin now
    accounts.set_role("bob", "news", None, keep_admin=False)  # the CLI may
    assert accounts.members("news") == [Member("alice", "viewer")]


# -- the instance -------------------------------------------------------------------------------------


@pytest.fixture
def team(tmp_path, clock, monkeypatch):
    monkeypatch.delenv("EMBEX_SETTINGS", raising=False)
    return Instance(tmp_path / "team", create=True, hasher=CountingHasher(), clock=clock)


def test_a_workspace_is_a_store_file_that_only_its_members_see(team):
    path = team.create_workspace("News")
    assert path == team.root / "workspaces" / "news.duckdb" == team.workspace_path("news")
    with Store(path, read_only=True) as store:
        assert store.list_corpora() == []
    team.create_workspace("secret")
    team.accounts.add_user("alice")
    team.accounts.set_role("alice", "news", "editor")
    assert team.workspaces_for("alice") == [("news", "editor", path)]
    assert team.workspace("Alice", "NEWS") == ("news", "editor", path)
    assert team.workspace("alice", "news").role == "editor"
    assert team.actor("alice", "news") == Actor("alice", "news", "editor")
    with pytest.raises(StoreError, match="already exists"):
        team.create_workspace("news")


def test_not_yours_and_does_not_exist_read_the_same(team):
    team.create_workspace("secret")
    team.accounts.add_user("alice")
    messages = set()
    for name in ["secret", "nonexistent", "../secret", "", None, "x" * 500]:
        with pytest.raises(AccessError) as caught:
            team.workspace("alice", name)
        messages.add(str(caught.value))
    with pytest.raises(AccessError) as caught:
        team.workspace("nobody", "secret")
    messages.add(str(caught.value))
    assert messages == {NOT_YOURS}


def test_an_existing_store_file_is_adopted_and_migrated(team):
    path = team.workspace_path("old")
    path.parent.mkdir(parents=True, exist_ok=True)
    with Store(path, migrate_to=5) as old:
        assert old.schema_version() == 5
    team.create_workspace("old")
    with Store(path, read_only=True) as store:
        assert store.schema_version() == SCHEMA_VERSION


def test_instance_from_the_environment_and_its_settings_file(tmp_path, monkeypatch):
    monkeypatch.delenv("EMBEX_SETTINGS", raising=False)
    with pytest.raises(ParameterError, match="pass --instance DIR, or set EMBEX_INSTANCE=DIR"):
        Instance.from_env(env={})
    with pytest.raises(StoreError, match="There is no instance directory"):
        Instance.from_env(env={"EMBEX_INSTANCE": str(tmp_path / "missing")})
    root = tmp_path / "team"
    root.mkdir()
    (root / "settings.toml").write_text("lockout_failures = 3\n")
    team = Instance.from_env(env={"EMBEX_INSTANCE": str(root)})
    assert team.settings.lockout_failures == 3 == team.accounts.settings.lockout_failures
    assert team.settings.source == str(root / "settings.toml")
    elsewhere = tmp_path / "ops.toml"
    elsewhere.write_text("lockout_failures = 9\n")
    monkeypatch.setenv("EMBEX_SETTINGS", str(elsewhere))  # the environment names the file
    assert Instance(root).settings.lockout_failures == 9
    (root / "settings.toml").write_text("lockout_failures = 0\n")
    monkeypatch.delenv("EMBEX_SETTINGS")
    with pytest.raises(SettingsError, match="lockout_failures must be an integer between 1 and 100"):
        Instance(root)
