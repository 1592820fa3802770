"""Who may do what in a workspace: three roles in order, and one declared table of actions.

A role allows everything the roles below it allow: a viewer reads and runs analyses, an editor
also changes the workspace's data (upload, import, embed, delete), an admin also manages its
members. The server checks every action against :data:`ACTIONS` (pages hide what a role cannot
do, but hiding is not the check).

>>> can("viewer", "analyse"), can("viewer", "delete")
(True, False)
>>> require("viewer", "delete")
Traceback (most recent call last):
AccessError: Your role in this workspace (viewer) does not allow deleting a corpus; ask an admin for the editor role.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import AccessError, ParameterError

#: the roles, lowest first; each allows what the ones before it allow
ROLES = ("viewer", "editor", "admin")

#: action -> the lowest role that may do it. Exporting (a chart, a table, a report) is reading:
#: what a viewer sees it may keep. Running an analysis (a map, a shift test) computes from
#: the data without changing it, so a viewer may. Embedding writes vectors into the workspace
#: and holds the model (the GPU) for long, so it is an editor's. Marking rows (an outlier
#: "reviewed") is a change that every member then sees: an editor's.
ACTIONS: dict[str, str] = {
    "read": "viewer",
    "analyse": "viewer",
    "export": "viewer",
    "review": "editor",
    "upload": "editor",
    "import": "editor",
    "embed": "editor",
    "rename": "editor",
    "delete": "editor",
    "cancel_others": "admin",
    "audit": "admin",
    "members": "admin",
}

#: how messages name each action: (the doing, its default object)
_DOING: dict[str, tuple[str, str]] = {
    "read": ("reading", "this workspace"),
    "analyse": ("running", "analyses"),
    "export": ("exporting", "results"),
    "review": ("marking", "rows reviewed"),
    "upload": ("uploading", "a corpus"),
    "import": ("importing", "vectors"),
    "embed": ("embedding", "a corpus"),
    "rename": ("renaming", "a corpus"),
    "delete": ("deleting", "a corpus"),
    "cancel_others": ("cancelling", "another person's job"),
    "audit": ("reading", "the audit log"),
    "members": ("managing", "members"),
}


def check_role(role) -> str:
    """``role`` if it is one of :data:`ROLES`, else :class:`ParameterError` listing them."""
    if role not in ROLES:
        raise ParameterError(f"A role is one of {', '.join(ROLES)}; got {str(role)[:40]!r}.")
    return role


def _action(action) -> str:
    if action not in ACTIONS:
        raise ParameterError(f"Unknown action {str(action)[:40]!r}; known: {', '.join(ACTIONS)}.")
    return action


def rank(role: str | None) -> int:
    """0 for no role (not a member), then 1, 2, 3 in the order of :data:`ROLES`."""
    return 0 if role is None else ROLES.index(check_role(role)) + 1


def can(role: str | None, action: str) -> bool:
    """Whether ``role`` (None: not a member) may do ``action`` (a key of :data:`ACTIONS`)."""
    return rank(role) >= rank(ACTIONS[_action(action)])


def require(role: str | None, action: str, what: str = "") -> None:
    """Nothing when ``role`` may do ``action``; else :class:`AccessError` saying which role
    would. ``what`` names the object in the message ("corpus 'news'") instead of the
    action's default ("a corpus")."""
    if can(role, action):
        return
    if role is None:
        raise AccessError("You are not a member of this workspace; ask one of its admins to add you.")
    doing, thing = _DOING[action]
    needed = ACTIONS[action]
    raise AccessError(
        f"Your role in this workspace ({role}) does not allow {doing} {what or thing}; "
        f"ask an admin for the {needed} role."
    )


@dataclass(frozen=True)
class Actor:
    """Who acts where: the signed-in person, the workspace, their role in it."""

    user: str
    workspace: str
    role: str

    def __post_init__(self):
        check_role(self.role)

    def can(self, action: str) -> bool:
        return can(self.role, action)

    def require(self, action: str, what: str = "") -> None:
        require(self.role, action, what)


__all__ = ["ACTIONS", "ROLES", "Actor", "can", "check_role", "rank", "require"]
