"""THE rule for who may see an issue: one SQL condition, used by every issue read.

An issue is visible to a viewer's :class:`~geodata.access.scope.Scope` when

1. its block grid (``issue.grid_code``) lies in the scope: the scope has no roots (every grid), or
   the code starts with the descendant prefix of one of its roots (9 digits of a street root, 12 of
   a community root, all 14 of a block root; see :func:`geodata.codes.descendant_prefix`) — written
   as equality: the issue's ``street_code`` is a street root, its ``community_code`` a community
   root or its ``grid_code`` a block root (:meth:`Scope.filter_codes`; ``street_code`` is generated
   from ``grid_code``, ``community_code`` checked against it); or
2. the viewer is an official (``scope.official_id`` set) on the issue's responsibility chain: the
   issue's ``assignee_id``, ``grid_leader_id``, ``responsible_id`` or ``leader_in_charge_id`` is
   the viewer's official id (the six-ones chain recorded on the issue when it was reported, and
   the official it is assigned to, wherever they work).

Nothing else grants sight of an issue; personal data on a visible issue is shown only when the
scope also has ``personal_data``. A row-level-security policy on ``issue`` mirrors this exactly
(migration 0010, the settings of :mod:`geodata.access.rls`)::

    USING (
      (SELECT gw_scope_all())                                               -- 1. no roots: all
      OR street_code = ANY ((SELECT gw_scope_codes(9))::text[])             -- 1. under a root
      OR community_code = ANY ((SELECT gw_scope_codes(12))::text[])
      OR grid_code = ANY ((SELECT gw_scope_codes(14))::text[])
      OR (SELECT gw_scope_official()) = ANY (ARRAY[assignee_id, grid_leader_id,
                                                   responsible_id, leader_in_charge_id])  -- 2.
      OR id = ANY ((SELECT gw_scope_issues())::bigint[]))   -- what this transaction reported
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.models import Issue

#: The issue's responsibility chain: an official named in one of these columns sees the issue.
CHAIN_COLUMNS = (Issue.assignee_id, Issue.grid_leader_id, Issue.responsible_id, Issue.leader_in_charge_id)


def visible_issues(scope: Scope) -> ColumnElement[bool]:
    """SQL condition on ``issue``: the rows ``scope`` may see (the rule in the module docstring)."""
    in_scope = scope.filter_codes(Issue.street_code, Issue.community_code, Issue.grid_code)
    if scope.official_id is None or scope.roots is None:
        return in_scope
    return or_(in_scope, *(c == scope.official_id for c in CHAIN_COLUMNS))


def can_see(session: Session, scope: Scope, issue_id: int) -> bool:
    """Whether ``scope`` may see issue ``issue_id``, by the same SQL condition."""
    return bool(session.execute(select(exists().where(Issue.id == issue_id, visible_issues(scope)))).scalar())
