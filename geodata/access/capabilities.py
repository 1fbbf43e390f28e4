"""Capabilities and roles: what an account may do, and where.

A **capability** names one permission (``report``, ``assign``, ``view_personal_data``…). A **role**
is a bundle of capabilities; an account holds **grants** — a role on a grid (the grant's *scope*:
that grid and every grid below it; ``None`` = every grid). Role labels are in
:data:`geodata.vocab.ROLE_LABELS`, capability labels in :data:`geodata.vocab.CAPABILITY_LABELS`.

THE question "may this principal do X on grid G" is :func:`allowed` (pure, on grants). The viewer's
:class:`~geodata.access.scope.Scope` is :func:`scope_of`. The workflow's role table
(``geodata.workflow.rules.ALLOWED_ROLES``: who on the six-ones chain may take a step) stays as it
is; a step additionally needs the capability :data:`ACTION_CAPABILITY` names, on the issue's grid —
except the assignee's steps (sign, handle, feedback), whose scope is the assignment itself.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from geodata.access.scope import Scope
from geodata.codes import CODE_RE, CodeError, descendant_prefix, level_of
from geodata.errors import DomainError
from geodata.vocab import CAPABILITY_LABELS, ROLE_LABELS

# -- capabilities -----------------------------------------------------------------------------------
VIEW_MAP = "view_map"                     # the dashboard's map: the grids of the grant (its scope roots)
VIEW_ISSUES = "view_issues"               # read the issues one sees (in scope, or on one's chain): the API
VIEW_WALL = "view_wall"                   # the wall display
VIEW_PERSONAL_DATA = "view_personal_data"  # officials' phones, reporters' names and phones
REPORT, ASSIGN, SIGN, HANDLE, VERIFY, EXTEND = "report", "assign", "sign", "handle", "verify", "extend"
EVALUATE_ON_BEHALF = "evaluate_on_behalf"
EDIT_BOUNDARIES, SEND_NOTICES, ASSESS = "edit_boundaries", "send_notices", "assess"
MANAGE_ACCOUNTS, READ_AUDIT = "manage_accounts", "read_audit"
VIEW_ASSESSMENT = "view_assessment"       # the /assessment page: rankings, scores, the records behind them

CAPABILITIES: tuple[str, ...] = (VIEW_MAP, VIEW_ISSUES, VIEW_WALL, VIEW_PERSONAL_DATA, REPORT, ASSIGN, SIGN, HANDLE, VERIFY,
                                 EXTEND, EVALUATE_ON_BEHALF, EDIT_BOUNDARIES, SEND_NOTICES, ASSESS,
                                 MANAGE_ACCOUNTS, READ_AUDIT, VIEW_ASSESSMENT)

#: workflow action (geodata.workflow.rules.ACTIONS) → the capability it needs
ACTION_CAPABILITY: dict[str, str] = {
    "report": REPORT, "assign": ASSIGN, "reassign": ASSIGN, "sign": SIGN, "handle": HANDLE,
    "feedback": HANDLE, "verify": VERIFY, "rework": VERIFY, "close": VERIFY,
    "evaluate": EVALUATE_ON_BEHALF, "request_extension": HANDLE, "extend": EXTEND,
}


# -- roles ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Role:
    """A bundle of capabilities; ``levels``: the grid levels a grant of it may name (``None`` in
    it: a grant for every grid)."""

    name: str
    capabilities: frozenset[str]
    levels: tuple[int | None, ...]


_OFFICIAL = frozenset({VIEW_MAP, VIEW_ISSUES, VIEW_PERSONAL_DATA, REPORT, SIGN, HANDLE})
ALL_GRIDS: tuple[int | None, ...] = (None,)
ANY_LEVEL: tuple[int | None, ...] = (None, 1, 2, 3)

#: THE role table. Order: as an admin page lists them.
ROLES: dict[str, Role] = {r.name: r for r in (
    Role("system_admin", frozenset({VIEW_MAP, MANAGE_ACCOUNTS, READ_AUDIT}), ALL_GRIDS),
    # 网格化管理中心: the command centre dispatches, verifies and closes for every grid
    Role("operator", _OFFICIAL | {VIEW_WALL, ASSIGN, VERIFY, EXTEND, EVALUATE_ON_BEHALF, SEND_NOTICES,
                                  VIEW_ASSESSMENT}, (None, 1)),
    # the street's leaders: every grid; they approve extensions
    Role("street_leader", _OFFICIAL | {VIEW_WALL, EXTEND, EVALUATE_ON_BEHALF, VIEW_ASSESSMENT}, (None, 1)),
    # a community's leaders (分包领导, 支书, 主任, 民警…): their community and its blocks
    Role("community_leader", _OFFICIAL | {EXTEND, EVALUATE_ON_BEHALF, VIEW_ASSESSMENT}, (2,)),
    # the community's platform maintainer dispatches and verifies there
    Role("platform_maintainer", _OFFICIAL | {ASSIGN, VERIFY, EVALUATE_ON_BEHALF}, (2,)),
    Role("sunk_member", _OFFICIAL, (2,)),                      # 下沉人员 in a community
    Role("grid_leader", _OFFICIAL, (3,)),                      # 网格长: their own block
    # a functional department's handler: the cases assigned to them, wherever (no map: no grids of their own)
    Role("handler", frozenset({VIEW_ISSUES, VIEW_PERSONAL_DATA, REPORT, SIGN, HANDLE}), ALL_GRIDS),
    Role("planner", frozenset({VIEW_MAP, VIEW_ISSUES, EDIT_BOUNDARIES}), ANY_LEVEL),
    Role("assessor", frozenset({VIEW_MAP, VIEW_ISSUES, ASSESS, VIEW_ASSESSMENT}), ANY_LEVEL),
    Role("display", frozenset({VIEW_WALL, VIEW_MAP}), ANY_LEVEL),   # never personal data
    Role("resident", frozenset({REPORT}), ALL_GRIDS),          # anonymous: Open311, 该找谁
)}
#: Roles an account may be granted (``resident`` is who has no account).
GRANTABLE: tuple[str, ...] = tuple(r for r in ROLES if r != "resident")

assert set(ROLES) <= set(ROLE_LABELS), "every role has its label in geodata.vocab.ROLE_LABELS"
assert set(CAPABILITIES) == set(CAPABILITY_LABELS), "every capability has its label in geodata.vocab"
assert all(r.capabilities <= set(CAPABILITIES) for r in ROLES.values())


@dataclass(frozen=True)
class Grant:
    """``role`` on ``grid_code`` and every grid below it (``None``: every grid)."""

    role: str
    grid_code: str | None = None


#: What someone without an account holds.
ANONYMOUS: tuple[Grant, ...] = (Grant("resident"),)


def covers(root: str | None, code: str) -> bool:
    """Is ``code`` the grid ``root`` or below it? (``root`` None covers every grid; a malformed
    ``code`` is under no root.)"""
    if not isinstance(code, str) or not CODE_RE.match(code):
        return False
    if root is None:
        return True
    try:
        return code.startswith(descendant_prefix(root))
    except CodeError:
        return False


def allowed(grants: Iterable[Grant], capability: str, grid_code: str | None = None) -> bool:
    """THE rule: may the holder of ``grants`` do ``capability`` on ``grid_code``? A grant allows it
    when its role bundles the capability and its grid covers ``grid_code`` (the grant's grid or a
    descendant of it). ``grid_code`` None: anywhere at all (a capability not tied to a grid, or the
    route-level "may they do this somewhere")."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}")
    return any(capability in ROLES[g.role].capabilities and (grid_code is None or covers(g.grid_code, grid_code))
               for g in grants)


#: actions not bound to the grants' grids: anyone may report anywhere (a resident may, anonymously,
#: and grid staff see problems beyond their block), so ``report`` says only whether the account
#: reports at all; where the issue then goes is the six-ones chain's business
ANYWHERE = frozenset({"report"})


def action_allowed(grants: Iterable[Grant], action: str, grid_code: str, *, relational: bool) -> bool:
    """May the holder take workflow ``action`` on an issue in ``grid_code``? ``relational``: the
    action's workflow role is a relation to the issue (the assignee), which is then its scope."""
    return allowed(grants, ACTION_CAPABILITY[action], None if relational or action in ANYWHERE else grid_code)


def scope_of(grants: Iterable[Grant], official_id: int | None = None) -> Scope:
    """The scope of a holder of ``grants``: the union of the grids of the grants that see the map
    (``view_map``), personal data iff ``view_personal_data`` is granted over all of them (a
    personal-data grant on a block and a no-personal-data grant on the street show no phones
    anywhere: a scope has one switch), and the linked official (who also sees the issues on
    their responsibility chain, :mod:`geodata.access.visibility`)."""
    grants = tuple(grants)
    views = [g.grid_code for g in grants if VIEW_MAP in ROLES[g.role].capabilities]
    personal = [g.grid_code for g in grants if VIEW_PERSONAL_DATA in ROLES[g.role].capabilities]
    roots: frozenset[str] | None = None if None in views else frozenset(c for c in views if c is not None)
    if roots is None:
        personal_ok = None in personal
    else:
        personal_ok = bool(personal) and all(any(covers(p, r) for p in personal) for r in roots)
    return Scope(roots=roots, personal_data=personal_ok, official_id=official_id,
                 roles=frozenset(g.role for g in grants))


def check_grant(role: str, grid_code: str | None) -> Grant:
    """A grant that may exist: a grantable role, on a grid of a level the role allows."""
    if role not in GRANTABLE:
        raise DomainError("unknown_role", f"未知角色“{role}”（可选：{', '.join(GRANTABLE)}）",
                          f"unknown role '{role}' (one of: {', '.join(GRANTABLE)})", field="role")
    levels = ROLES[role].levels
    if grid_code is None:
        if None not in levels:
            raise DomainError("grid_required", f"角色“{ROLE_LABELS[role][0]}”须指定网格",
                              f"role '{role}' needs a grid (--grid)", field="grid")
        return Grant(role, None)
    try:
        level = level_of(grid_code)
    except CodeError:
        raise DomainError("invalid_grid", f"网格编码无效：{grid_code}", f"invalid grid code: {grid_code}",
                          field="grid") from None
    if level not in levels:
        raise DomainError("grid_level", f"角色“{ROLE_LABELS[role][0]}”不能授予该级网格",
                          f"role '{role}' cannot be granted on a level-{level} grid", field="grid")
    return Grant(role, grid_code)


#: The account role an official's grid assignment (role, grid level) suggests: the demo and the
#: test world give each official's account these grants.
ASSIGNMENT_ROLE: dict[tuple[str, int], str] = {
    ("operator", 1): "operator", ("first_responsible", 1): "street_leader",
    ("first_responsible", 2): "community_leader", ("direct_responsible", 2): "community_leader",
    ("sunk_member", 2): "sunk_member", ("platform_maintainer", 2): "platform_maintainer",
    ("grid_leader", 3): "grid_leader",
}


def grant_for_assignment(role: str, grid_code: str) -> Grant | None:
    """The grant an official's assignment suggests (operators and street leaders: every grid)."""
    level = level_of(grid_code)
    name = ASSIGNMENT_ROLE.get((role, level))
    if name is None:
        return None
    return Grant(name, None if level == 1 else grid_code)
