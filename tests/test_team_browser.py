"""A team instance in a real browser (issue 15): the real server (``embex serve --instance``),
Chromium, and two ways to sign in — OpenID Connect through a provider started on loopback
(tests/oidc_provider.py: a real authorization-code flow with Streamlit's ``st.login``), and the
built-in accounts with their lock-out. In both: two people in two workspaces each see only
their own corpora, a viewer has no delete, and a deep link into the other workspace reveals
nothing."""

from __future__ import annotations

import pytest
from conftest import free_port, make_corpus, start_server
from oidc_provider import oidc_provider, sign_in

from analytics import Store
from analytics.instance import Instance
from analytics.screenshot import wait_for_app

pytestmark = pytest.mark.slow

OIDC_USERS = {"alice@example.com": "alice-pw-1", "bob@example.com": "bob-pw-22"}
ACCOUNTS = {"alice": "alice-secret-1", "bob": "bob-secret-22"}


def make_team(root, alice: str, bob: str, passwords: dict | None = None) -> Instance:
    """news (alice editor) and legal (bob viewer), a corpus in each."""
    team = Instance(root, create=True)
    team.create_workspace("news")
    team.create_workspace("legal")
    for name in (alice, bob):
        team.accounts.add_user(name, (passwords or {}).get(name))
    team.accounts.set_role(alice, "news", "editor")
    team.accounts.set_role(bob, "legal", "viewer")
    with Store(team.workspace_path("news")) as s:
        s.add_corpus("headlines-of-news", make_corpus(["markets rally", "storm hits the coast"]))
    with Store(team.workspace_path("legal")) as s:
        s.add_corpus("secret-contracts", make_corpus(["clause one", "clause two"]))
    return team


def main_text(page) -> str:
    """The page's whole HTML, hidden parts too (a table's cells live in an accessible copy)."""
    page.wait_for_timeout(500)  # the last delta of the run
    return page.content()


def check_member_view(visit, page, *, mine: str, other: str, ws: str, other_ws: str) -> None:
    """What a signed-in member sees: their corpus on Home, never the other's, and "not found"
    (nothing more) for a link into the other workspace. ``visit(path)`` opens a page as them."""
    visit(f"/?ws={ws}")
    page.get_by_text(mine).first.wait_for(timeout=30_000, state="attached")
    assert other not in main_text(page)
    visit(f"/?ws={other_ws}")
    page.get_by_text("Workspace not found").wait_for(timeout=30_000)
    shown = main_text(page)
    assert other not in shown and mine not in shown


def goto(page, url: str):
    """``visit`` for a browser whose sign-in outlives a page load (OpenID Connect's cookie)."""

    def visit(path: str) -> None:
        page.goto(url + path)
        wait_for_app(page)

    return visit


@pytest.fixture
def context(browser):
    ctx = browser.new_context()
    yield ctx
    ctx.close()


def test_openid_connect_two_people_two_workspaces(tmp_path, browser):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    callback = f"{url}/oauth2callback"
    make_team(tmp_path / "team", "alice@example.com", "bob@example.com")
    with oidc_provider(OIDC_USERS, redirect_uris=[callback]) as op:
        (tmp_path / "team" / "secrets.toml").write_text(op.secrets_toml(callback, "c" * 40))
        proc, _ = start_server(None, instance=tmp_path / "team", port=port)
        try:
            alice = browser.new_context().new_page()
            sign_in(alice, url, "alice@example.com", OIDC_USERS["alice@example.com"])
            check_member_view(
                goto(alice, url),
                alice,
                mine="headlines-of-news",
                other="secret-contracts",
                ws="news",
                other_ws="legal",
            )
            # an editor may delete: the control is there
            alice.goto(f"{url}/upload?ws=news")
            wait_for_app(alice)
            alice.get_by_text("Rename or delete").click()
            alice.get_by_text("Yes, delete this corpus").wait_for()

            bob = browser.new_context().new_page()
            sign_in(bob, url, "bob@example.com", OIDC_USERS["bob@example.com"])
            check_member_view(
                goto(bob, url),
                bob,
                mine="secret-contracts",
                other="headlines-of-news",
                ws="legal",
                other_ws="news",
            )
            bob.goto(f"{url}/upload?ws=legal")
            wait_for_app(bob)
            assert "Rename or delete" not in main_text(bob)  # a viewer: no delete, no upload
            assert bob.get_by_role("button", name="Delete").count() == 0
            alice.context.close()
            bob.context.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        log = proc.stdout.read().decode(errors="replace")  # the server's whole output
        assert "Uvicorn server started" in log or "You can now view" in log, log[-1000:]
        for secret in (op.client_secret, "c" * 40, *OIDC_USERS.values()):
            assert secret not in log  # no secret, no password in a log
    with Store(tmp_path / "team" / "workspaces" / "legal.duckdb", read_only=True) as s:
        assert [c.name for c in s.list_corpora()] == ["secret-contracts"]
    signed = Instance(tmp_path / "team").accounts.sign_ins(10)
    assert {e.user for e in signed if e.outcome == "ok"} == {"alice@example.com", "bob@example.com"}


def accounts_sign_in(page, url: str, user: str, password: str) -> None:
    """Open ``url`` (a deep link is kept through the form) and sign in with a password. A
    built-in account's sign-in lasts for the browser session's connection: a new page load asks
    again (see docs/deploy.md)."""
    page.goto(url)
    wait_for_app(page)
    page.get_by_role("textbox", name="User name").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_timeout(300)
    wait_for_app(page)


def test_accounts_two_people_two_workspaces_and_lock_out(tmp_path, browser):
    make_team(tmp_path / "team", "alice", "bob", ACCOUNTS)
    proc, url = start_server(None, instance=tmp_path / "team")
    try:
        for who, mine, other, ws, other_ws in (
            ("alice", "headlines-of-news", "secret-contracts", "news", "legal"),
            ("bob", "secret-contracts", "headlines-of-news", "legal", "news"),
        ):
            page = browser.new_context().new_page()

            def visit(path, page=page, who=who):
                accounts_sign_in(page, url + path, who, ACCOUNTS[who])

            check_member_view(visit, page, mine=mine, other=other, ws=ws, other_ws=other_ws)
            visit(f"/upload?ws={ws}")
            page.get_by_role("heading", name="Upload").wait_for(timeout=30_000)
            if who == "bob":  # a viewer: no upload, no delete, no Audit page in the sidebar
                assert "Rename or delete" not in main_text(page)
                assert page.get_by_role("link", name="Audit").count() == 0
                assert page.get_by_role("button", name="Delete").count() == 0
            else:
                page.get_by_text("Rename or delete").wait_for(timeout=30_000)
                assert page.get_by_role("link", name="Audit").count() == 0  # an editor, not an admin
            page.context.close()

        # five wrong passwords lock the account: then even the right one is refused, with a
        # message that says so (and for how long)
        page = browser.new_context().new_page()
        for attempt in range(1, 6):  # the fifth failure locks, and says so
            accounts_sign_in(page, url, "alice", "wrong-password")
            expected = "Wrong user name or password." if attempt < 5 else "locked"
            page.get_by_text(expected).first.wait_for(timeout=30_000)
        accounts_sign_in(page, url, "alice", ACCOUNTS["alice"])
        page.get_by_text("locked").first.wait_for(timeout=30_000)
        assert "headlines-of-news" not in main_text(page)
        page.context.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = proc.stdout.read().decode(errors="replace")
    assert all(password not in log for password in (*ACCOUNTS.values(), "wrong-password"))
    assert Instance(tmp_path / "team").accounts.user("alice").locked()


def test_localhost_without_sign_in_runs(tmp_path, browser):
    team = Instance(tmp_path / "open", create=True)
    team.create_workspace("solo")
    with Store(team.workspace_path("solo")) as s:
        s.add_corpus("solo-corpus", make_corpus(["one", "two"]))
    proc, url = start_server(None, instance=tmp_path / "open")
    try:
        page = browser.new_context().new_page()
        page.goto(url)
        wait_for_app(page)
        page.get_by_text("solo-corpus").first.wait_for(timeout=30_000, state="attached")
        page.context.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
