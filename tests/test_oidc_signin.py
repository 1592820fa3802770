"""Streamlit's own sign-in (st.login / st.user / st.logout) through a real OpenID Connect flow:
the loopback provider of tests/oidc_provider.py, a real Streamlit server running a throwaway app
from a temp folder, and Chromium filling the provider's form."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port
from oidc_provider import OIDCProvider, SignInFailed, oidc_provider, sign_in, sign_out, submit_provider_form

from analytics.screenshot import serving

pytestmark = pytest.mark.slow

USERS = {"alice@example.com": "pw-a", "bob@example.com": "pw-b"}

APP = """
import streamlit as st

st.title("Sign-in probe")
if not st.user.is_logged_in:
    st.text("Not signed in")
    if st.button("Sign in"):
        st.login()
else:
    st.text(f"Signed in as {st.user.email}")
    st.text(f"Name: {st.user.name}; issuer: {st.user.iss}")
    st.text(f"st.user keys: {' '.join(sorted(st.user.to_dict()))}")
    if st.button("Sign out"):
        st.logout()
"""


@dataclass(frozen=True)
class SignInApp:
    url: str  # as the browser must open it: the origin of redirect_uri
    provider: OIDCProvider
    log: Path


def start_app(folder: Path, port: int, secrets_toml: str, *, timeout: float = 90) -> subprocess.Popen:
    """The throwaway app in ``folder`` with ``.streamlit/secrets.toml``, served on 127.0.0.1."""
    (folder / ".streamlit").mkdir(parents=True, exist_ok=True)
    (folder / ".streamlit" / "secrets.toml").write_text(secrets_toml)
    (folder / "app.py").write_text(APP)
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    cmd += [
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - the server writes it until stopped
    proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    if not serving(f"http://127.0.0.1:{port}", proc, timeout=timeout):
        proc.kill()
        pytest.fail(f"the app did not come up: {(folder / 'server.log').read_text()[-2000:]}")
    return proc


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("signin-app")
    with oidc_provider(USERS, client_id="signin-probe", redirect_uris=[f"{url}/oauth2callback"]) as provider:
        toml = provider.secrets_toml(f"{url}/oauth2callback", secrets.token_urlsafe(32))
        proc = start_app(folder, port, toml)
        try:
            yield SignInApp(url, provider, folder / "server.log")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def auth_cookie(page):
    return {c["name"]: c for c in page.context.cookies()}.get("_streamlit_user")


def test_alice_signs_in_stays_signed_in_signs_out_and_bob_gets_bob(app, page):
    from playwright.sync_api import expect

    sign_in(page, app.url, "alice@example.com", "pw-a")
    expect(page.get_by_text("Signed in as alice@example.com", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text(f"Name: Alice; issuer: {app.provider.issuer}", exact=True)).to_be_visible(
        timeout=60_000
    )
    # st.user holds the ID token's claims, plus Streamlit's is_logged_in, provider and tokens
    keys = (
        "at_hash aud auth_time email email_verified exp iat is_logged_in iss name nonce provider sub tokens"
    )
    expect(page.get_by_text(f"st.user keys: {keys}", exact=True)).to_be_visible(timeout=60_000)
    assert page.url.rstrip("/") == app.url
    token = app.provider.events_of("token")[-1]
    assert token == {
        "event": "token",
        "user": "alice@example.com",
        "auth_method": "client_secret_basic",
        "pkce": True,
    }

    cookie = auth_cookie(page)  # Streamlit's identity cookie: signed, HttpOnly, Lax, 30 days
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]
    assert cookie["domain"] == "127.0.0.1" and cookie["path"] == "/"
    assert 29 * 86400 < cookie["expires"] - time.time() <= 30 * 86400

    page.reload()  # a new session reads the cookie
    expect(page.get_by_text("Signed in as alice@example.com", exact=True)).to_be_visible(timeout=60_000)

    logouts = len(app.provider.events_of("logout"))
    sign_out(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Not signed in", exact=True)).to_be_visible(timeout=60_000)
    assert auth_cookie(page) is None
    (logout,) = app.provider.events_of("logout")[logouts:]  # through the end-session endpoint
    assert logout == {"event": "logout", "user": "alice@example.com", "client_id": "signin-probe"}

    sign_in(page, app.url, "bob@example.com", "pw-b")
    expect(page.get_by_text("Signed in as bob@example.com", exact=True)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("alice@example.com")).to_have_count(0)


def test_wrong_password_stays_on_the_provider_then_the_right_one_signs_in(app, page):
    from playwright.sync_api import expect

    with pytest.raises(SignInFailed, match="Wrong e-mail or password"):
        sign_in(page, app.url, "alice@example.com", "pw-b")
    assert page.url.startswith(f"{app.provider.issuer}/authorize")
    assert auth_cookie(page) is None
    assert app.provider.events_of("login_failed")[-1]["user"] == "alice@example.com"

    submit_provider_form(page, "alice@example.com", "pw-a")  # the same request, second try
    expect(page.get_by_text("Signed in as alice@example.com", exact=True)).to_be_visible(timeout=60_000)


def test_the_app_must_be_opened_at_the_redirect_uri_host(app, page):
    """The sign-in state lives in a host-only cookie set where the browser started (/auth/login),
    and the provider sends the browser back to redirect_uri's host: opened as localhost while
    redirect_uri says 127.0.0.1, the callback finds no state, exchanges no code and signs no one
    in (Streamlit only logs "Missing provider for OAuth callback")."""
    from playwright.sync_api import expect

    port = app.url.rsplit(":", 1)[1]
    tokens = len(app.provider.events_of("token"))
    sign_in(page, f"http://localhost:{port}", "alice@example.com", "pw-a")
    assert page.url.startswith(app.url)  # back on redirect_uri's host, not the one opened
    expect(page.get_by_text("Not signed in", exact=True)).to_be_visible(timeout=60_000)
    assert auth_cookie(page) is None
    assert len(app.provider.events_of("token")) == tokens  # the code was never redeemed
