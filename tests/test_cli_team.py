"""``embex user / workspace / audit / settings`` as whoever runs an instance types them: a real
process (``python -m analytics.cli``), a real instance directory, argon2's default parameters."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from conftest import ROOT

from analytics.cli import main

PASSWORD = "Tr0ub4dor&3-horse-staple"


def embex(*args, instance=None, stdin: str | None = "", env_instance=None, check=True):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for name in ("EMBEX_INSTANCE", "EMBEX_SETTINGS", "EMBEX_STORE"):
        env.pop(name, None)
    if env_instance is not None:
        env["EMBEX_INSTANCE"] = str(env_instance)
    cmd = [sys.executable, "-m", "analytics.cli", *args, *(["--instance", str(instance)] if instance else [])]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def cli(monkeypatch, capsys):
    """The same ``main()`` in this process (a subprocess costs ~1.5 s of imports): for the
    checks that need no process boundary. stdin is a pipe, as in the subprocess runs."""
    for name in ("EMBEX_INSTANCE", "EMBEX_SETTINGS", "EMBEX_STORE"):
        monkeypatch.delenv(name, raising=False)

    def run(*args, instance=None, stdin="", check=True):
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        try:
            code = main([*args, *(["--instance", str(instance)] if instance else [])])
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        captured = capsys.readouterr()
        proc = SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)
        if check:
            assert code == 0, proc.stderr
        return proc

    return run


def _one_line_error(proc, fragment: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("embex: error: ") and fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


@pytest.fixture
def team(tmp_path, cli):
    root = tmp_path / "team"
    cli("workspace", "add", "news", instance=root)
    return root


def test_no_instance_is_a_clear_error(tmp_path, cli):
    _one_line_error(
        cli("user", "list", check=False), "No instance given: pass --instance DIR, or set EMBEX_INSTANCE"
    )
    _one_line_error(
        cli("workspace", "list", instance=tmp_path / "missing", check=False), "There is no instance directory"
    )


def test_people_workspaces_and_roles_end_to_end(team, cli):
    out = embex(
        "user", "add", "Alice@Example.com", "--password-stdin", "--workspace", "news", "--role", "admin",
        instance=team, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert out.stdout == "Added user 'alice@example.com' (password set, admin in workspace 'news').\n"
    out = embex("user", "add", "bob", "--no-password", "--workspace", "news", "--json", env_instance=team)
    assert json.loads(out.stdout) == {"user": "bob", "password": False, "workspace": "news", "role": "viewer"}
    _one_line_error(
        cli("user", "add", "BOB", instance=team, check=False), "A user named 'bob' already exists"
    )
    cli("user", "role", "bob", "news", "editor", instance=team)
    cli("workspace", "add", "sport", instance=team)
    cli("user", "role", "alice@example.com", "sport", "viewer", instance=team)
    listing = json.loads(cli("user", "list", "--json", instance=team).stdout)
    users = {u["name"]: u for u in listing["users"]}
    assert users["alice@example.com"]["workspaces"] == {"news": "admin", "sport": "viewer"}
    assert users["alice@example.com"]["has_password"] and not users["bob"]["has_password"]
    assert users["bob"]["workspaces"] == {"news": "editor"}
    human = cli("user", "list", instance=team).stdout.splitlines()
    assert human[1].split() == ["alice@example.com", "yes", "ok", "news", "(admin),", "sport", "(viewer)"]
    spaces = json.loads(cli("workspace", "list", "--json", instance=team).stdout)["workspaces"]
    assert [(w["workspace"], w["exists"], w["members"]) for w in spaces] == [
        ("news", True, {"alice@example.com": "admin", "bob": "editor"}),
        ("sport", True, {"alice@example.com": "viewer"}),
    ]
    cli("user", "role", "bob", "news", "none", instance=team)
    cli("user", "remove", "alice@example.com", instance=team)
    listing = json.loads(cli("user", "list", "--json", instance=team).stdout)
    assert [(u["name"], u["workspaces"]) for u in listing["users"]] == [("bob", {})]
    # the instance's own log: every change, by the command line
    log = json.loads(cli("audit", "--json", "--limit", "100", instance=team).stdout)["entries"]
    actions = [(e["user"], e["action"], e["target"]) for e in log][::-1]
    assert actions[:3] == [("cli", "workspace add", "news"), ("cli", "user add", "alice@example.com"),
                           ("cli", "role", "alice@example.com in news")]  # fmt: skip
    assert actions[-1] == ("cli", "user remove", "alice@example.com") and len(actions) == 10


def test_passwords_come_from_stdin_never_an_argument_and_never_show(team, cli):
    from analytics.accounts import Accounts

    embex("user", "add", "carol", instance=team, stdin=PASSWORD + "\r\n")  # stdin not a terminal
    new = "an-entirely-new-passphrase"
    embex("user", "passwd", "carol", "--password-stdin", instance=team, stdin=new + "\n")
    accounts = Accounts(team / "accounts.sqlite")
    assert accounts.verify("carol", new) == "carol"
    # a password given as an argument is not an option at all
    proc = cli("user", "add", "dave", PASSWORD, instance=team, check=False)
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr
    assert accounts.user("dave") is None
    # empty stdin: refused, nothing added; a short password: refused without repeating it
    _one_line_error(cli("user", "add", "erin", instance=team, check=False), "No password on standard input")
    _one_line_error(
        cli("user", "add", "erin", "--password-stdin", instance=team, stdin="short\n", check=False),
        "at least 8 characters",
    )
    assert accounts.user("erin") is None
    outputs = []
    for args in (("user", "list"), ("user", "list", "--json"), ("audit",), ("audit", "--json")):
        proc = cli(*args, instance=team)
        outputs.append(proc.stdout + proc.stderr)
    text = "".join(outputs)
    assert "carol" in text and PASSWORD not in text and new not in text and "$argon2" not in text
    raw = b"".join(p.read_bytes() for p in team.rglob("*") if p.is_file())
    assert PASSWORD.encode() not in raw and new.encode() not in raw and b"$argon2id$" in raw


def test_lock_out_and_unlock(team, cli):
    from argon2 import PasswordHasher

    from analytics.accounts import Accounts
    from analytics.errors import SignInError

    # cheap argon2 parameters: this test checks passwords a dozen times
    accounts = Accounts(
        team / "accounts.sqlite", hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    accounts.add_user("alice", PASSWORD)
    for _ in range(5):
        with pytest.raises(SignInError):
            accounts.verify("alice", "not the password")
    with pytest.raises(SignInError, match="locked"):
        accounts.verify("alice", PASSWORD)
    assert "locked until" in cli("user", "list", instance=team).stdout
    assert (
        cli("user", "unlock", "ALICE", instance=team).stdout
        == "Unlocked 'alice'; failed sign-ins forgotten.\n"
    )
    assert accounts.verify("alice", PASSWORD) == "alice"
    log = json.loads(cli("audit", "--json", instance=team).stdout)["entries"]
    assert [e["action"] for e in log[:3]] == ["sign-in ok", "user unlock", "sign-in locked"]


def test_user_errors_are_one_line_and_change_nothing(team, cli):
    cases = [
        (("user", "role", "nobody", "news", "viewer"), "There is no user named 'nobody'"),
        (("user", "add", "x y", "--no-password"), "A user name is 1–100 characters"),
        (("user", "add", "frank", "--no-password", "--workspace", "weather"), "no workspace named 'weather'"),
        (("user", "add", "frank", "--no-password", "--role", "editor"), "--role needs --workspace W"),
        (("workspace", "add", "../../etc"), "A workspace name is 1–40 characters"),
        (("workspace", "add", "news"), "A workspace named 'news' already exists"),
        (("user", "remove", "nobody"), "There is no user named 'nobody'"),
        (("user", "passwd", "nobody"), "There is no user named 'nobody'"),
        (("audit", "--workspace", "weather"), "There is no workspace named 'weather'"),
    ]
    for args, fragment in cases:
        _one_line_error(cli(*args, instance=team, check=False), fragment)
    assert json.loads(cli("user", "list", "--json", instance=team).stdout)["users"] == []
    assert not any("etc" in p.name for p in team.parent.rglob("*"))  # no file made of a bad name
    proc = cli("user", "role", "x", "news", "owner", instance=team, check=False)
    assert proc.returncode == 2 and "invalid choice: 'owner'" in proc.stderr
    proc = cli("audit", "--limit", "0", instance=team, check=False)
    assert proc.returncode == 2 and "limit must be an integer between 1 and 10000" in proc.stderr


def test_audit_reads_the_store_or_what_the_holder_published(team, cli):
    """The dashboard holds the workspace's store (DuckDB: one writer process): embex audit shows
    the rows it published beside the store; once it lets go, embex audit reads the store."""
    path = team / "workspaces" / "news.duckdb"
    evil = "corpus '\x1b[31mred\x1b[0m'\nfake line"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from analytics import audit\n"
            "from analytics.access import Actor\n"
            "from analytics.store import Store\n"
            f"store = Store({str(path)!r})\n"
            "audit.record(store, Actor('alice', 'news', 'editor'), 'upload', 'corpus news', now=1000)\n"
            f"audit.record(store, 'bob', 'delete', {evil!r}, 'cancelled 2 jobs', now=2000)\n"
            "print('ready', flush=True)\n"
            "sys.stdin.readline()\n"
            "store.close()\n",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        data = json.loads(embex("audit", "--workspace", "news", "--json", instance=team).stdout)
        assert data["pid"] == holder.pid
        assert [(e["user"], e["action"], e["target"], e["time"]) for e in data["entries"]] == [
            ("bob", "delete", evil, 2000.0),
            ("alice", "upload", "corpus news", 1000.0),
        ]
        human = cli("audit", "--workspace", "news", instance=team).stdout
        assert f"held by process {holder.pid}" in human and "1970-01-01 00:33:20Z" in human
        assert "\x1b" not in human and "\\x1b[31mred" in human and "\\nfake line" in human
        assert len(human.splitlines()) == 3
        limited = json.loads(
            cli("audit", "--workspace", "news", "--limit", "1", "--json", instance=team).stdout
        )
        assert [e["user"] for e in limited["entries"]] == ["bob"]
    finally:
        holder.communicate("\n", timeout=60)
    data = json.loads(cli("audit", "--workspace", "news", "--json", instance=team).stdout)
    assert "pid" not in data and [e["user"] for e in data["entries"]] == ["bob", "alice"]


def test_settings_shows_the_effective_limits_and_refuses_a_bad_file(team, tmp_path, cli):
    defaults = json.loads(cli("settings", "--json").stdout)
    assert defaults["source"] is None and defaults["settings"]["max_upload_mb"] == 200
    (team / "settings.toml").write_text("max_upload_mb = 500\n")
    human = cli("settings", instance=team).stdout
    assert f"Settings from {team / 'settings.toml'}:" in human
    assert "max_upload_mb" in human and "500   (default 200)" in human
    bad = tmp_path / "bad.toml"
    bad.write_text("max_upload_mb = 500\nlockout_minutes = 0\n")
    _one_line_error(
        cli("settings", "--file", str(bad), check=False),
        f"{bad}: lockout_minutes must be an integer between 1 and 10080, got 0",
    )
    (team / "settings.toml").write_text("max_upload_gb = 1\n")
    _one_line_error(cli("user", "list", instance=team, check=False), "unknown setting 'max_upload_gb'")
    table = cli("settings", "--markdown").stdout
    assert (
        table.startswith("| Setting | Default | Range | What it limits |")
        and "| `lockout_minutes` | 15 |" in table
    )
