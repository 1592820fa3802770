"""A hosted instance: one directory holding its limits, its accounts and a store per workspace.

::

    DIR/settings.toml               limits (optional; analytics.settings documents each default)
    DIR/accounts.sqlite             people, workspaces, roles, sign-ins (analytics.accounts)
    DIR/workspaces/<name>.duckdb    one analytics.store.Store per workspace

A person sees only the workspaces they are a member of. Asking for any other name, whether it
exists or not, gets the same :class:`AccessError`, so names cannot be probed.

>>> team = Instance("/srv/embex", create=True)
>>> team.create_workspace("news")
>>> team.accounts.add_user("alice@example.com")             # signs in through the identity provider
>>> team.accounts.set_role("alice@example.com", "news", "editor")
>>> team.workspace("alice@example.com", "news")
Workspace(name='news', role='editor', path=PosixPath('/srv/embex/workspaces/news.duckdb'))
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .access import Actor
from .accounts import Accounts, workspace_name
from .errors import AccessError, ParameterError, StoreError
from .settings import ENV as SETTINGS_ENV
from .settings import Settings, load_settings

#: the environment variable naming the instance directory (when --instance is not given)
ENV = "EMBEX_INSTANCE"

#: what a person is told for a workspace that does not exist and for one that is not theirs alike
NOT_YOURS = "You have no workspace of that name; choose one from your list of workspaces."


class Workspace(NamedTuple):
    """One of a person's workspaces: its name, their role in it, its store file."""

    name: str
    role: str
    path: Path


class Instance:
    """The instance in directory ``root``.

    create : make the directory when it is missing (else :class:`StoreError`).
    settings : the limits; default: the file ``$EMBEX_SETTINGS`` names, else
        ``root/settings.toml`` when it exists, else the documented defaults.
    hasher, clock : passed to :class:`~analytics.accounts.Accounts`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        create: bool = False,
        settings: Settings | None = None,
        hasher=None,
        clock: Callable[[], float] = time.time,
    ):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            if self.root.exists() or not create:
                raise StoreError(
                    f"There is no instance directory at {self.root}. Create one with "
                    f"`embex workspace add NAME --instance {self.root}`, or check the path."
                )
            self.root.mkdir(parents=True)
        if settings is None:
            own = self.root / "settings.toml"
            explicit = os.environ.get(SETTINGS_ENV)
            settings = load_settings(None if explicit or not own.exists() else own)
        self.settings = settings
        self.accounts = Accounts(self.root / "accounts.sqlite", settings=settings, hasher=hasher, clock=clock)

    @classmethod
    def from_env(cls, env=None, **options) -> Instance:
        """The instance that ``$EMBEX_INSTANCE`` names, or :class:`ParameterError` saying how
        to name one."""
        env = os.environ if env is None else env
        root = env.get(ENV)
        if not root:
            raise ParameterError(
                f"No instance given: pass --instance DIR, or set {ENV}=DIR (the directory that "
                "holds accounts.sqlite and workspaces/)."
            )
        return cls(root, **options)

    def __repr__(self) -> str:
        return f"Instance({str(self.root)!r})"

    def workspace_path(self, name: str) -> Path:
        """The store file of workspace ``name`` (a checked name: no path can be made of it)."""
        return self.root / "workspaces" / f"{workspace_name(name)}.duckdb"

    def create_workspace(self, name: str, *, by: str = "system") -> Path:
        """Create workspace ``name``: its store file (an existing file of that name, e.g. a store
        copied in, is taken as it is and brought to the current schema), then its registration.
        Returns the store file's path."""
        from .store import Store

        key = workspace_name(name)
        if self.accounts.has_workspace(key):
            raise StoreError(f"A workspace named {key!r} already exists.")
        path = self.workspace_path(key)
        Store(path).close()
        self.accounts.add_workspace(key, by=by)
        return path

    def workspaces(self) -> list[str]:
        """Every workspace's name (for whoever runs the instance, not for its members)."""
        return self.accounts.workspaces()

    def workspaces_for(self, user: str) -> list[Workspace]:
        """The workspaces ``user`` is a member of, with their role and store file."""
        return [
            Workspace(m.workspace, m.role, self.workspace_path(m.workspace))
            for m in self.accounts.memberships(user)
        ]

    def workspace(self, user: str, name: str) -> Workspace:
        """Workspace ``name`` of ``user``, or :class:`AccessError` with the same message whether
        it does not exist or is not theirs (or the name is not a name at all)."""
        role = self.accounts.role(user, name) if isinstance(name, str) else None
        if role is None:
            raise AccessError(NOT_YOURS)
        path = self.workspace_path(name)
        if not path.exists():  # only a member learns this
            raise StoreError(
                f"The store file of workspace {workspace_name(name)!r} is missing ({path}); ask "
                "whoever runs the instance to restore it."
            )
        return Workspace(workspace_name(name), role, path)

    def actor(self, user: str, name: str) -> Actor:
        """Who acts where, for :mod:`analytics.access` checks and :mod:`analytics.audit`."""
        ws = self.workspace(user, name)
        return Actor(user=self.accounts.user(user).name, workspace=ws.name, role=ws.role)


__all__ = ["ENV", "NOT_YOURS", "Instance", "Workspace"]
