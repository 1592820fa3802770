"""Every error a user can cause derives from :class:`ExplorerError`.

The CLI and the pages catch ``ExplorerError`` alone and show its message, which says what was
wrong and what to do; anything else is a bug and surfaces as one (a traceback in the CLI, a
logged error with an id in the dashboard). Each class also keeps the builtin base it always
had (``ValueError`` or ``RuntimeError``), so existing ``except ValueError`` code still works.
"""

from __future__ import annotations


class ExplorerError(Exception):
    """A failure the user can fix; the message says how."""


class ParameterError(ExplorerError, ValueError):
    """A parameter outside its declared rule (see :mod:`analytics.params`), or an unknown one."""


class EmbeddingError(ExplorerError, ValueError):
    """Embeddings that cannot be used as given (wrong shape, non-finite, zero rows...)."""


class CorpusError(ExplorerError, ValueError):
    """A corpus or vector file that cannot be used as given."""


class StoreError(ExplorerError, RuntimeError):
    """The store cannot do what was asked (unknown corpus, file held by another process...)."""


class StoreLockedError(StoreError):
    """The store file is open for writing in another process (the dashboard, another embex)."""


class ModelError(ExplorerError, RuntimeError):
    """A model that cannot be loaded or run here (not local, a backend not installed...)."""


class DependencyError(ExplorerError, RuntimeError):
    """A package or program that a feature needs is not installed here (kaleido and Chromium
    for static images, Playwright for screenshots); the message says what to install."""


class SettingsError(ExplorerError, ValueError):
    """A settings file or value that cannot be used (unknown name, out of range, bad TOML)."""


class SignInError(ExplorerError, RuntimeError):
    """A sign-in that failed (wrong name or password, a locked account), or a server that would
    listen beyond this machine with no sign-in configured."""


class AccessError(ExplorerError, RuntimeError):
    """The signed-in person's role in this workspace does not allow the action, or the
    workspace is not one of theirs (then the message reveals nothing about it)."""


__all__ = [
    "AccessError",
    "CorpusError",
    "DependencyError",
    "EmbeddingError",
    "ExplorerError",
    "ModelError",
    "ParameterError",
    "SettingsError",
    "SignInError",
    "StoreError",
    "StoreLockedError",
]
