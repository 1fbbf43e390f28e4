"""Who acts (pre-accounts seam): an :class:`Actor` is an official id (or nobody: a resident).

Their roles are the roles of their current grid assignments on the issue's grid or its parents, plus
the relational ``assignee`` when the case is assigned to them. See :func:`actor_for`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.codes import CodeError, descendant_prefix
from geodata.errors import ForbiddenError
from geodata.grids.store import valid_at
from geodata.models import GridAssignment, Issue, Official
from geodata.workflow import rules as wf

UTC = dt.UTC


@dataclass(frozen=True)
class Actor:
    """Who acts. ``official_id`` None is a resident / anonymous client (role ``resident``)."""

    official_id: int | None = None
    name: str | None = None
    assignments: tuple[tuple[str, str], ...] = ()  # (grid_code, role), current

    @classmethod
    def resident(cls) -> Actor:
        return cls()

    @property
    def is_official(self) -> bool:
        return self.official_id is not None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(r for _, r in self.assignments)

    def roles_for(self, grid_code: str) -> set[str]:
        """Roles held on ``grid_code`` or one of its parents (a parent's code is a prefix rule)."""
        out = set()
        for code, role in self.assignments:
            if _covers(code, grid_code):
                out.add(role)
        return out

    def roles_on_issue(self, issue: Issue) -> set[str]:
        roles = self.roles_for(issue.grid_code)
        if self.official_id is not None and issue.assignee_id == self.official_id:
            roles.add(wf.ASSIGNEE)
        return roles or {wf.RESIDENT}

    def scope(self) -> Scope:
        """Officials see the grids they hold roles in, with personal data; residents see everything
        public and no personal data."""
        if not self.is_official:
            return Scope.public()
        return Scope(roots=frozenset(c for c, _ in self.assignments), personal_data=True,
                     official_id=self.official_id, roles=self.roles)


def _covers(root: str, code: str) -> bool:
    try:
        return code.startswith(descendant_prefix(root))
    except CodeError:
        return False


def actor_for(session: Session, official_id: int | None, *, as_of: dt.datetime | None = None) -> Actor:
    """The actor for an official id (None → resident); an unknown or inactive official is refused
    (:class:`~geodata.errors.ForbiddenError`)."""
    if official_id is None:
        return Actor.resident()
    t = as_of or dt.datetime.now(UTC)
    off = session.get(Official, official_id)
    if off is None or not off.active:
        raise ForbiddenError("unknown_official", f"工作人员编号 {official_id} 不存在或已停用",
                             f"official {official_id} does not exist or is inactive", field="X-Official-Id")
    rows = session.execute(
        select(GridAssignment.grid_code, GridAssignment.role)
        .where(GridAssignment.official_id == official_id, valid_at(t, GridAssignment))
        .order_by(GridAssignment.grid_code, GridAssignment.role)).all()
    return Actor(official_id, off.name, tuple((c, r) for c, r in rows))


def acting_role(action: str, roles: set[str]) -> str:
    allowed = wf.ALLOWED_ROLES[action] & roles
    return next(r for r in wf.ROLE_PREFERENCE if r in allowed)
