"""A team instance through the dashboard (issue 15), with streamlit's AppTest on real files:
built-in accounts sign in, each person sees only their workspaces, a deep link into another's
reveals nothing, roles are enforced by the server's actions (not only by hidden buttons), and
what changes the workspace is in its audit log."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, make_corpus

from analytics import Store, audit
from analytics.instance import Instance
from analytics.jobs import executor_for

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "carol": "carol-secret-333"}


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """Workspaces news (alice editor, bob viewer, carol admin) and legal (carol editor); a corpus
    in each whose name and texts must never show to someone outside it."""
    root = tmp_path_factory.mktemp("team")
    inst = Instance(root, create=True)
    for ws in ("news", "legal"):
        inst.create_workspace(ws)
    for name, password in PASSWORDS.items():
        inst.accounts.add_user(name, password)
    inst.accounts.set_role("alice", "news", "editor")
    inst.accounts.set_role("bob", "news", "viewer")
    inst.accounts.set_role("carol", "news", "admin")
    inst.accounts.set_role("carol", "legal", "editor")
    with Store(inst.workspace_path("news")) as s:
        s.add_corpus("headlines", make_corpus(["markets rally", "storm hits coast", "team wins cup"]))
        s.add_corpus("scratch", make_corpus(["a corpus to delete", "another text"]))
    with Store(inst.workspace_path("legal")) as s:
        s.add_corpus("secret-contracts", make_corpus(["clause one", "clause two"]))
    return root


@pytest.fixture
def open_app(team, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EMBEX_INSTANCE", str(team))
    monkeypatch.setenv("EMBEX_AUTH", "accounts")
    monkeypatch.setenv("EMBEX_SAMPLE", "0")
    monkeypatch.delenv("EMBEX_STORE", raising=False)

    def open_app(user: str | None = None, password: str | None = None, *, ws: str | None = None):
        at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
        if ws:
            at.query_params["ws"] = ws
        at.run()
        if user is not None:
            at.text_input[0].input(user)
            at.text_input[1].input(password if password is not None else PASSWORDS[user])
            at.button[0].click()
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_app


def everything_shown(at) -> str:
    """Every piece of text on the page (main area and sidebar), every table's cells and
    every choice a widget offers."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "text", "error", "info"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [str(e.value) for e in at.warning] + [str(e.value) for e in at.success]
    parts += [df.value.to_csv() for df in at.dataframe]
    parts += [str(sb.options) for sb in at.selectbox]
    return "\n".join(parts)


def test_the_first_page_is_a_sign_in_form_and_shows_no_corpus(open_app):
    at = open_app()
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert "headlines" not in everything_shown(at) and not at.dataframe


def test_a_wrong_password_is_refused_with_one_message_for_unknown_names_too(open_app):
    wrong = open_app("alice", "not-her-password")
    unknown = open_app("nobody", "whatever-password")
    assert [e.value for e in wrong.error] == ["Wrong user name or password."]
    assert [e.value for e in unknown.error] == ["Wrong user name or password."]
    assert [t.label for t in wrong.text_input] == ["User name", "Password"]  # still the form


def test_a_member_sees_only_the_corpora_of_their_workspace(open_app):
    at = open_app("alice")
    shown = everything_shown(at)
    assert set(at.dataframe[0].value["name"]) == {"headlines", "scratch"}
    assert "secret-contracts" not in shown and "legal" not in shown
    assert at.query_params["ws"] in ("news", ["news"])  # the link names the workspace


def test_a_deep_link_into_another_workspace_reveals_nothing(open_app):
    for target in ("legal", "no-such-workspace"):
        at = open_app("alice", ws=target)
        shown = everything_shown(at)
        assert any("Workspace not found" in e.value for e in at.error), target
        assert "secret-contracts" not in shown and "headlines" not in shown
    # the two answers are the same: whether a workspace exists is not revealed either
    a, b = open_app("alice", ws="legal"), open_app("alice", ws="no-such-workspace")
    assert [e.value for e in a.error] == [e.value for e in b.error]


def test_a_member_of_two_workspaces_switches_by_link(open_app):
    at = open_app("carol", ws="legal")
    assert set(at.dataframe[0].value["name"]) == {"secret-contracts"}


def test_a_viewer_sees_no_delete_and_the_server_refuses_a_forged_delete(open_app, team, monkeypatch):
    at = open_app("bob")
    at.switch_page("views/upload.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [b for b in at.button if b.label in ("Delete", "Save corpus", "Rename")]
    # A forged request: the page's delete action run for the viewer's session, as a browser
    # that sent the widget message anyway would make it run. The server's check refuses it.
    from streamlit.testing.v1 import AppTest

    def forged():
        import signin
        import streamlit as st
        from common import delete_corpus, run_page

        st.session_state["_embex_signed_in"] = signin._SignedIn("bob")
        run_page(lambda: delete_corpus("scratch"))

    f = AppTest.from_function(forged, default_timeout=60)
    f.query_params["ws"] = "news"
    f.run()
    assert any("does not allow deleting" in e.value for e in f.error), [e.value for e in f.error]
    s = executor_for(Instance(team).workspace_path("news")).store  # this process holds the file
    assert "scratch" in [c.name for c in s.list_corpora()]


def test_a_session_cannot_sign_itself_in_by_setting_a_plain_value(open_app, team):
    """A browser controls widget values, which are plain strings: only the server's own
    object counts as signed in."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["_embex_signed_in"] = "carol"
    at.run()
    assert [t.label for t in at.text_input] == ["User name", "Password"]


def test_changes_are_audited_and_only_admins_read_the_log(open_app, team):
    editor = open_app("alice")
    editor.switch_page("views/upload.py")
    editor.run()
    # alice deletes "scratch" through the page's own controls
    editor.selectbox(key="manage").select("scratch")
    editor.checkbox(key="confirm_delete").check()
    editor.run()
    next(b for b in editor.button if b.label == "Delete").click()
    editor.run()
    assert not editor.exception, [e.value for e in editor.exception]
    s = executor_for(Instance(team).workspace_path("news")).store
    assert "scratch" not in [c.name for c in s.list_corpora()]
    rows = audit.recent(s, 10)
    assert (rows[0].user, rows[0].action, rows[0].target) == ("alice", "delete", "corpus 'scratch'")
    viewer = open_app("bob")
    # opening the Audit page's URL (a viewer's sidebar does not list it) is refused by the page
    viewer.switch_page("views/audit.py")
    viewer.run()
    assert any("does not allow reading the audit log" in e.value for e in viewer.error)
    assert not viewer.dataframe
    admin = open_app("carol", ws="news")  # admin of news (an editor in legal)
    admin.switch_page("views/audit.py")
    admin.run()
    log = admin.dataframe[0].value
    assert ("alice", "delete") in set(zip(log["who"], log["action"]))


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "dashboard" / "serve.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_server_beyond_localhost_with_no_sign_in_refuses_to_start(tmp_path):
    Instance(tmp_path / "open", create=True).create_workspace("w")
    for where in (["--instance", str(tmp_path / "open")], ["--store", str(tmp_path / "s.duckdb")]):
        out = _serve(*where, "--address", "0.0.0.0", "--port", "1")
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("embex: error: refusing to listen on 0.0.0.0")
        assert "docs/deploy.md" in lines[0] and "Traceback" not in out.stderr
    assert not (tmp_path / "s.duckdb").exists()  # refused before anything was created
