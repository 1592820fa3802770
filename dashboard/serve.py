"""Start the dashboard and its job executor in one process (what ``embex serve`` runs).

The executor is created before the server starts, so jobs that a crash interrupted resume at
once rather than when the first visitor arrives. Streamlit lives here, in the dashboard: the
``analytics`` library only launches this file.

    python dashboard/serve.py --store PATH [--port 8501] [--address localhost]
    python dashboard/serve.py --instance DIR [--port 8501] [--address 0.0.0.0]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the analytics package beside this folder


def _loopback(address: str) -> bool:
    """Whether ``address`` is this machine only (a name other than localhost counts as not)."""
    import ipaddress

    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def _auth_block(secrets: Path) -> dict | None:
    """The ``[auth]`` table of the instance's secrets file (for ``st.login``), or None."""
    import tomllib

    from analytics.errors import SettingsError

    if not secrets.is_file():
        return None
    try:
        data = tomllib.loads(secrets.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"Cannot read {secrets}: {type(exc).__name__}; fix the file (TOML).") from None
    auth = data.get("auth")
    if auth is None:
        return None
    missing = [
        k
        for k in ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
        if not isinstance(auth, dict) or not auth.get(k)
    ]
    if missing:
        raise SettingsError(f"The [auth] block of {secrets} lacks {', '.join(missing)}; see docs/deploy.md.")
    return auth


def sign_in_mode(instance, address: str) -> tuple[str, dict | None]:
    """How people sign in on this server ("local", "open", "accounts" or "oidc") and the
    ``[auth]`` block, or :class:`SignInError` when the server would listen beyond this machine
    with no sign-in: anyone who reached the port could read, change and delete everything."""
    from analytics.errors import SignInError

    if instance is None:
        mode, auth = "local", None
    else:
        auth = _auth_block(instance.root / "secrets.toml")
        mode = "oidc" if auth else "accounts" if instance.accounts.has_password_users() else "open"
    if mode in ("local", "open") and not _loopback(address):
        where = f"--instance {instance.root}" if instance is not None else "--instance DIR"
        raise SignInError(
            f"refusing to listen on {address or 'every address'} with no sign-in (anyone who "
            "reaches the port could read, change and delete every corpus). Configure sign-in: "
            f"an [auth] block in DIR/secrets.toml (OpenID Connect), or accounts with `embex user "
            f"add NAME {where}`; or listen on localhost. See docs/deploy.md."
        )
    return mode, auth


def main(argv: list[str] | None = None) -> int:
    from streamlit import config as st_config
    from streamlit.web import bootstrap

    from analytics.errors import ExplorerError
    from analytics.jobs import executor_for, set_executor_defaults

    ap = argparse.ArgumentParser(prog="embex serve", description=__doc__.split("\n\n")[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--store", type=Path, help="one store file, no sign-in (localhost only)")
    where.add_argument("--instance", type=Path, help="a team instance directory (workspaces, sign-in)")
    ap.add_argument("--port", type=int, default=8501)
    ap.add_argument("--address", default="localhost")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    flags = {
        "server.port": args.port,
        "server.address": args.address,
        "server.headless": True,
        # the settings a hosted instance must have, whatever folder this starts from
        "server.enableXsrfProtection": True,
        "client.showErrorDetails": "none",
        "browser.gatherUsageStats": False,
        "runner.magicEnabled": False,
    }
    try:
        if args.instance is not None:
            from analytics.instance import Instance

            team = Instance(args.instance.expanduser().resolve())
            mode, auth = sign_in_mode(team, args.address)
            settings = team.settings
            os.environ["EMBEX_INSTANCE"] = str(team.root)
            os.environ.pop("EMBEX_STORE", None)
            paths = [team.workspace_path(name) for name in team.workspaces()]
            flags["secrets.files"] = [str(team.root / "secrets.toml")]
            if auth:  # signs Streamlit's cookies; from the secrets file, never on a command line
                flags["server.cookieSecret"] = str(auth["cookie_secret"])
        else:
            from analytics.settings import load_settings

            mode, _ = sign_in_mode(None, args.address)
            settings = load_settings()
            paths = [args.store.expanduser().resolve()]
            os.environ["EMBEX_STORE"] = str(paths[0])
        os.environ["EMBEX_AUTH"] = mode
        flags["server.maxUploadSize"] = settings.max_upload_mb
        set_executor_defaults(
            max_running=settings.max_running_jobs,
            max_per_requester=settings.max_running_jobs_per_person,
            max_queued_per_requester=settings.max_queued_jobs_per_person,
        )
        for path in paths:  # opens each store (a clear error if it cannot) and takes up its jobs
            executor_for(path).warm()
    except ExplorerError as exc:
        print(f"embex: error: {exc}", file=sys.stderr)
        return 2
    app = HERE / "app.py"
    st_config._main_script_path = str(app)
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(str(app), False, [], flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
