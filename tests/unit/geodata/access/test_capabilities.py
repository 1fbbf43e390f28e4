"""Capabilities and role bundles (pure): THE rule ``allowed``, the scope of a set of grants, the
grant checks, and the workflow's role table mapped onto capabilities."""
from __future__ import annotations

import pytest

from geodata.access import capabilities as cap
from geodata.access.capabilities import ANONYMOUS, Grant, allowed, scope_of
from geodata.access.scope import Scope
from geodata.errors import DomainError, TransitionForbiddenError
from geodata.vocab import CAPABILITY_LABELS, ROLE_LABELS
from geodata.workflow import rules as wf
from geodata.workflow.identity import Actor

STREET, C1, C2 = "41010200100000", "41010200100100", "41010200100200"
B11, B21 = "41010200100101", "41010200100201"
PERSONAL = "view_personal_data"


def test_every_role_and_capability_is_labelled_in_the_one_vocabulary():
    assert set(cap.ROLES) <= set(ROLE_LABELS) and set(cap.CAPABILITIES) == set(CAPABILITY_LABELS)
    assert all(ROLE_LABELS[r][0] and ROLE_LABELS[r][1] for r in cap.ROLES)
    assert set(cap.ACTION_CAPABILITY) == set(wf.ACTIONS)   # every workflow action needs a capability


@pytest.mark.parametrize("role,grid,capability,where,expected", [
    # the command centre: every grid, dispatching and on-behalf evaluation, phones
    ("operator", None, "assign", B21, True), ("operator", None, "evaluate_on_behalf", B11, True),
    ("operator", None, PERSONAL, B11, True), ("operator", None, "manage_accounts", None, False),
    # the street's leaders approve extensions everywhere, but do not dispatch
    ("street_leader", None, "extend", B21, True), ("street_leader", None, "assign", B21, False),
    # a community's leaders: their community and its blocks only
    ("community_leader", C1, "extend", B11, True), ("community_leader", C1, "extend", C1, True),
    ("community_leader", C1, "extend", B21, False), ("community_leader", C1, "extend", STREET, False),
    ("platform_maintainer", C1, "assign", B11, True), ("platform_maintainer", C1, "assign", B21, False),
    # a grid leader: their own block
    ("grid_leader", B11, "report", B11, True), ("grid_leader", B11, "report", B21, False),
    ("grid_leader", B11, "assign", B11, False), ("grid_leader", B11, "view_map", None, True),
    # staff who are not on the chain
    ("planner", None, "edit_boundaries", B11, True), ("planner", None, PERSONAL, B11, False),
    ("assessor", None, "assess", B21, True), ("assessor", None, "report", B21, False),
    ("system_admin", None, "manage_accounts", None, True), ("system_admin", None, "read_audit", None, True),
    ("system_admin", None, "report", B11, False),
    # the wall: the map, never personal data
    ("display", None, "view_wall", None, True), ("display", None, PERSONAL, B11, False),
    ("display", None, "report", B11, False),
    # a department handler: cases assigned to them, no map of their own
    ("handler", None, "sign", B21, True), ("handler", None, "view_map", None, False),
])
def test_one_rule_for_may_this_principal_do_x_on_grid_g(role, grid, capability, where, expected):
    assert allowed((Grant(role, grid),), capability, where) is expected


def test_anonymous_may_report_and_nothing_else():
    assert allowed(ANONYMOUS, "report", B11)
    assert [c for c in cap.CAPABILITIES if allowed(ANONYMOUS, c)] == ["report"]


def test_a_grant_covers_its_grid_and_descendants_only():
    g = (Grant("community_leader", C1),)
    assert allowed(g, "report", B11) and allowed(g, "report", C1)
    assert not allowed(g, "report", C2) and not allowed(g, "report", "4101020010010")   # malformed
    assert allowed((Grant("grid_leader", B11), Grant("grid_leader", B21)), "report", B21)   # grants add up
    with pytest.raises(ValueError):
        allowed(g, "fly")


def test_scope_of_grants():
    assert scope_of(ANONYMOUS) == Scope(roots=frozenset(), roles=frozenset({"resident"}))   # sees nothing
    op = scope_of((Grant("operator"),), official_id=3)
    assert op.roots is None and op.personal_data and op.official_id == 3
    two = scope_of((Grant("grid_leader", B11), Grant("community_leader", C2)))
    assert two.roots == frozenset({B11, C2}) and two.personal_data
    assert scope_of((Grant("display"),)) == Scope(roots=None, personal_data=False, roles=frozenset({"display"}))
    # personal data on a block, a no-phones map of every grid: no phones anywhere (one switch)
    mixed = scope_of((Grant("grid_leader", B11), Grant("planner")))
    assert mixed.roots is None and not mixed.personal_data
    # a handler sees no grids of its own (only the issues on its chain, by official id)
    h = scope_of((Grant("handler"),), official_id=9)
    assert h.roots == frozenset() and h.official_id == 9


@pytest.mark.parametrize("role,grid,code", [
    ("resident", None, "unknown_role"), ("wizard", None, "unknown_role"),
    ("grid_leader", None, "grid_required"), ("grid_leader", C1, "grid_level"),
    ("community_leader", B11, "grid_level"), ("operator", C1, "grid_level"), ("system_admin", STREET, "grid_level"),
    ("grid_leader", "123", "invalid_grid"),
])
def test_impossible_grants_are_refused(role, grid, code):
    with pytest.raises(DomainError) as err:
        cap.check_grant(role, grid)
    assert err.value.code == code and err.value.message_zh and err.value.message_en


def test_assignments_suggest_grants():
    assert cap.grant_for_assignment("operator", STREET) == Grant("operator", None)
    assert cap.grant_for_assignment("first_responsible", STREET) == Grant("street_leader", None)
    assert cap.grant_for_assignment("first_responsible", C1) == Grant("community_leader", C1)
    assert cap.grant_for_assignment("platform_maintainer", C1) == Grant("platform_maintainer", C1)
    assert cap.grant_for_assignment("grid_leader", B11) == Grant("grid_leader", B11)
    assert cap.grant_for_assignment("grid_leader", C1) is None


def test_workflow_steps_need_the_capability_in_scope():
    """The role table stays; a step also needs the action's capability on the issue's grid — except
    the assignee's steps, whose scope is the assignment itself."""
    maint = Actor(official_id=5, assignments=((C1, "platform_maintainer"),), grants=(Grant("platform_maintainer", C1),))
    maint.require_action("assign", B11)
    with pytest.raises(TransitionForbiddenError) as err:
        maint.require_action("assign", B21)
    assert err.value.code == "forbidden_capability"
    # an assignee handles a case outside their grids: the assignment is the scope
    handler = Actor(official_id=9, grants=(Grant("handler"),))
    for action in ("sign", "handle", "feedback"):
        handler.require_action(action, B21)
    gl = Actor(official_id=7, grants=(Grant("grid_leader", B11),))
    gl.require_action("sign", B21)   # assigned elsewhere: still theirs to sign
    with pytest.raises(TransitionForbiddenError):
        gl.require_action("verify", B11)
    with pytest.raises(TransitionForbiddenError):   # a stranger never evaluates
        Actor.resident().require_action("evaluate", B11)
    # an actor with no grants (no account) may take no step at all
    with pytest.raises(TransitionForbiddenError):
        Actor(official_id=1).require_action("report", B11)
