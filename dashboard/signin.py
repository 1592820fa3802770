"""Who is here, and in which workspace: sign-in and workspaces for every page (issue 15).

Three ways to run, chosen by the server (``embex serve``, which puts its choice in
``EMBEX_AUTH``):

- ``local``: one store file (``EMBEX_STORE``), no instance, no sign-in. The person at the
  keyboard is "local" and may do everything. Only on a server that listens on localhost.
- ``open``: an instance directory (``EMBEX_INSTANCE``) with no sign-in configured: everyone is
  "local", admin of every workspace. Also localhost only.
- ``accounts`` / ``oidc``: an instance with built-in accounts (argon2 passwords, lock-out) or
  an OpenID Connect provider (Streamlit's ``st.login``, ``[auth]`` in the secrets). A person
  sees only the workspaces they are a member of, with their role in each.

Roles are checked here, on the server, when an action runs (:func:`acting`): a page hides what a
role cannot do, but hiding is not the check, so a forged button press changes nothing. Every
change is written to the workspace's audit table.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from analytics import audit
from analytics.access import Actor
from analytics.access import can as access_can
from analytics.errors import AccessError, SignInError
from analytics.instance import NOT_YOURS, Instance, Workspace
from analytics.store import default_store_path

LOCAL_USER = "local"
MODES = ("local", "open", "accounts", "oidc")


class _SignedIn:
    """The session's signed-in person (accounts mode). Kept in session state as an instance of
    this private class: a browser can set widget values, never a Python object of this type."""

    __slots__ = ("user",)

    def __init__(self, user: str):
        self.user = user


@st.cache_resource(show_spinner=False)
def _instance(root: str) -> Instance:
    return Instance(root)


def instance() -> Instance | None:
    """The instance this server runs (``EMBEX_INSTANCE``), or None for a single local store."""
    root = os.environ.get("EMBEX_INSTANCE")
    return _instance(str(Path(root).expanduser().resolve())) if root else None


def oidc_configured() -> bool:
    """Whether the secrets hold an ``[auth]`` block for ``st.login``."""
    from streamlit.errors import StreamlitSecretNotFoundError

    try:
        return "auth" in st.secrets
    except (FileNotFoundError, StreamlitSecretNotFoundError):  # none, or one Streamlit cannot parse
        return False


def mode() -> str:
    """How people sign in here (see the module docstring)."""
    chosen = os.environ.get("EMBEX_AUTH")
    if chosen in MODES:
        return chosen
    team = instance()
    if team is None:
        return "local"
    if oidc_configured():
        return "oidc"
    return "accounts" if team.accounts.has_password_users() else "open"


def user() -> str | None:
    """The signed-in person's name (``local`` where there is no sign-in), or None."""
    how = mode()
    if how in ("local", "open"):
        return LOCAL_USER
    if how == "oidc" and st.user.is_logged_in:
        # the e-mail address names the person; one the provider says it has not verified
        # could be anyone's, so it names no one (a provider that sends no such claim vouches)
        email = st.user.get("email")
        if not email or st.user.get("email_verified") is False:
            return None
        return str(email).strip().lower()
    signed = st.session_state.get("_embex_signed_in")
    return signed.user if isinstance(signed, _SignedIn) else None


def _password_form(team: Instance) -> None:
    with st.form("sign-in", border=True):
        name = st.text_input("User name", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                who = team.accounts.verify(name, password)
            except SignInError as exc:
                st.error(str(exc))
            else:
                st.session_state["_embex_signed_in"] = _SignedIn(who)
                st.rerun()


def require_sign_in() -> str:
    """The signed-in person; else the sign-in page, and the end of this run."""
    who = user()
    if who is not None:
        if mode() == "oidc" and not st.session_state.get("_embex_oidc_recorded"):
            st.session_state["_embex_oidc_recorded"] = True
            instance().accounts.record_sign_in(who, "ok", method="oidc")
        return who
    st.title("Embedding Explorer")
    how = mode()
    if how == "oidc" and st.user.is_logged_in:  # signed in at the provider, but no usable e-mail
        st.error(
            "Your identity provider did not send a verified e-mail address, which is how this "
            "instance knows you. Ask whoever runs it to check the provider's settings."
        )
        st.button("Sign out", on_click=st.logout)
        st.stop()
    st.write("Sign in to see your team's workspaces.")
    if how == "oidc":
        st.button("Sign in", type="primary", on_click=st.login)
    else:
        _password_form(instance())
    st.stop()


def sign_out() -> None:
    """Forget this session's sign-in (and the provider's cookie, in OpenID Connect mode)."""
    st.session_state.pop("_embex_signed_in", None)
    st.session_state.pop("_embex_workspace", None)
    if mode() == "oidc":
        st.logout()


def workspaces() -> list[Workspace]:
    """The signed-in person's workspaces (every one where there is no sign-in)."""
    team = instance()
    if team is None:
        return [Workspace("local", "admin", default_store_path())]
    who = user()
    if who is None:  # the gate (app.py) draws the sign-in form; a fragment or a helper never does
        raise AccessError("You are not signed in (any more): reload the page to sign in.")
    if mode() == "open":
        return [Workspace(name, "admin", team.workspace_path(name)) for name in team.workspaces()]
    return team.workspaces_for(who)


def workspace() -> Workspace:
    """The workspace this page works in: the link's ``ws``, else the one chosen before, else
    the person's first. A name that is not theirs (or does not exist) says "not found" and
    nothing more, and ends the run."""
    mine = workspaces()
    if instance() is None:
        return mine[0]
    by_name = {w.name: w for w in mine}
    wanted = st.query_params.get("ws") or st.session_state.get("_embex_workspace")
    if wanted is not None and wanted not in by_name:
        st.error(f"Workspace not found. {NOT_YOURS}")
        st.session_state.pop("_embex_workspace", None)
        if by_name:
            st.button("Open my workspace", on_click=lambda: st.query_params.pop("ws", None))
        st.stop()
    if not by_name:
        st.info(
            "You are not a member of any workspace yet. Ask an admin of your team to add you "
            "(embex user role NAME WORKSPACE viewer)."
        )
        st.stop()
    chosen = by_name[wanted] if wanted else mine[0]
    st.session_state["_embex_workspace"] = chosen.name
    if st.query_params.get("ws") != chosen.name:
        st.query_params["ws"] = chosen.name
    return chosen


def actor() -> Actor:
    """Who acts where, for the checks and the audit log."""
    ws = workspace()
    return Actor(user=user() or LOCAL_USER, workspace=ws.name, role=ws.role)


def allowed(action: str) -> bool:
    """Whether the person may do ``action`` in the link's workspace, drawing nothing: False
    when nobody is signed in yet or the workspace is not theirs (for choosing which pages to
    list before the sign-in form or "not found" is drawn)."""
    if user() is None:
        return False
    mine = workspaces()
    wanted = st.query_params.get("ws") or st.session_state.get("_embex_workspace")
    by_name = {w.name: w for w in mine}
    ws = by_name.get(wanted) if wanted else (mine[0] if mine else None)
    return ws is not None and access_can(ws.role, action)


def can(action: str) -> bool:
    """Whether the signed-in person's role here allows ``action`` (for showing controls)."""
    return actor().can(action)


@contextmanager
def acting(action: str, target: str, detail: str = "", *, store=None):
    """Check the role for ``action`` before the block runs (:class:`AccessError` if it may
    not), and write an audit row when it ends without an error."""
    who = actor()
    who.require(action, target)
    yield who
    if store is not None:
        audit.record(store, who, action, target, detail)


def sidebar() -> None:
    """Who is signed in, the workspace switch, and Sign out (not in local mode)."""
    if instance() is None:
        return
    mine = workspaces()
    with st.sidebar:
        if len(mine) > 1:
            names = [w.name for w in mine]
            current = st.session_state.get("_embex_workspace")
            pick = st.selectbox(
                "Workspace", names, index=names.index(current) if current in names else 0, key="_ws_pick"
            )
            if pick != current:
                st.session_state["_embex_workspace"] = pick
                st.query_params["ws"] = pick
                for key in ("corpus", "compare"):  # corpora belong to a workspace
                    st.session_state.pop(key, None)
                    st.query_params.pop(key, None)
        elif mine:
            st.text(f"Workspace: {mine[0].name}")
        if mode() in ("accounts", "oidc"):
            ws = workspace()
            st.text(f"Signed in as {user()} · {ws.role}")  # plain text: no markup in a name
            if st.button("Sign out", key="_sign_out"):
                sign_out()
                st.rerun()


__all__ = [
    "AccessError",
    "acting",
    "actor",
    "can",
    "instance",
    "mode",
    "require_sign_in",
    "sidebar",
    "sign_out",
    "user",
    "workspace",
    "workspaces",
]
