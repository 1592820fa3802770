"""Roles and the actions they allow (analytics.access): one declared table, monotone in role."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.access import _DOING, ACTIONS, ROLES, Actor, can, rank, require
from analytics.errors import AccessError, ParameterError

ROLE_OR_NONE = st.sampled_from([None, *ROLES])


def test_the_table_as_the_issue_states_it():
    assert ROLES == ("viewer", "editor", "admin")
    allowed = {role: {a for a in ACTIONS if can(role, a)} for role in ROLES}
    assert allowed["viewer"] == {"read", "analyse", "export"}
    changes = {"upload", "import", "embed", "rename", "delete", "review"}
    assert allowed["editor"] == allowed["viewer"] | changes
    assert allowed["admin"] == set(ACTIONS)
    assert {a for a in ACTIONS if can(None, a)} == set()
    assert set(_DOING) == set(ACTIONS)  # every action has words for its message


@given(low=ROLE_OR_NONE, high=ROLE_OR_NONE, action=st.sampled_from(sorted(ACTIONS)))
def test_a_higher_role_may_do_everything_a_lower_one_may(low, high, action):
    if rank(low) <= rank(high) and can(low, action):
        assert can(high, action)
    # and exactly the declared threshold decides
    assert can(high, action) == (high is not None and ROLES.index(high) >= ROLES.index(ACTIONS[action]))


@given(role=ROLE_OR_NONE, action=st.sampled_from(sorted(ACTIONS)))
def test_require_agrees_with_can_and_names_the_role_needed(role, action):
    if can(role, action):
        assert require(role, action) is None
        return
    with pytest.raises(AccessError) as caught:
        require(role, action)
    message = str(caught.value)
    if role is None:
        assert message == "You are not a member of this workspace; ask one of its admins to add you."
    else:
        assert f"({role})" in message and f"ask an admin for the {ACTIONS[action]} role." in message


def test_the_message_a_viewer_gets_for_deleting():
    with pytest.raises(AccessError) as caught:
        require("viewer", "delete")
    assert str(caught.value) == (
        "Your role in this workspace (viewer) does not allow deleting a corpus; ask an admin for the editor role."
    )
    with pytest.raises(
        AccessError, match=r"allow deleting corpus 'news'; ask an admin for the editor role\.$"
    ):
        require("viewer", "delete", what="corpus 'news'")
    with pytest.raises(
        AccessError, match=r"\(editor\) does not allow managing members; ask an admin for the admin"
    ):
        require("editor", "members")


def test_unknown_roles_and_actions_are_refused_not_allowed():
    with pytest.raises(ParameterError, match="A role is one of viewer, editor, admin; got 'owner'"):
        can("owner", "read")
    with pytest.raises(ParameterError, match="Unknown action 'drop'"):
        can("admin", "drop")
    with pytest.raises(ParameterError):
        require("admin", "drop")


def test_an_actor_is_frozen_and_checks_through_its_role():
    actor = Actor("alice@example.com", "news", "editor")
    assert actor.can("embed") and not actor.can("members")
    actor.require("delete")
    with pytest.raises(AccessError, match=r"\(editor\)"):
        actor.require("members")
    with pytest.raises(dataclasses.FrozenInstanceError):
        actor.role = "admin"
    with pytest.raises(ParameterError):
        Actor("bob", "news", "superuser")
