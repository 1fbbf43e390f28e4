"""Who acts: an :class:`Actor` is an official id (or nobody: a resident) and the account's grants.

Their workflow roles are the roles of their current grid assignments on the issue's grid or its
parents, plus the relational ``assignee`` when the case is assigned to them (see :func:`actor_for`);
what they may do at all is their grants' capabilities (:mod:`geodata.access.capabilities`). An
actor is built from a signed-in account by :mod:`geodata.access.accounts` (``Principal.actor``).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from geodata.access.capabilities import ANONYMOUS, Grant, action_allowed, allowed, covers, scope_of
from geodata.access.scope import Scope
from geodata.errors import ForbiddenError, TransitionForbiddenError
from geodata.grids.store import valid_at
from geodata.models import GridAssignment, Issue, Official
from geodata.vocab import ACTION_LABELS
from geodata.workflow import rules as wf

UTC = dt.UTC


@dataclass(frozen=True)
class Actor:
    """Who acts. ``official_id`` None is a resident / anonymous client (role ``resident``) or an
    account that is no official's; ``grants`` are what their account holds."""

    official_id: int | None = None
    name: str | None = None
    assignments: tuple[tuple[str, str], ...] = ()  # (grid_code, role), current
    grants: tuple[Grant, ...] = ()
    account_id: int | None = None
    reporter_of: int | None = None   # a resident proven to have reported this issue (workflow.reporter)

    @classmethod
    def resident(cls) -> Actor:
        return cls(grants=ANONYMOUS)

    @classmethod
    def reporter(cls, issue_id: int) -> Actor:
        """The resident who reported ``issue_id``: may give that issue's 综合评价."""
        return cls(grants=ANONYMOUS, reporter_of=issue_id)

    def may(self, capability: str, grid_code: str | None = None) -> bool:
        """May this actor do ``capability`` on ``grid_code``? (THE rule: ``capabilities.allowed``)"""
        return allowed(self.grants, capability, grid_code)

    def require_action(self, action: str, grid_code: str, issue_id: int | None = None) -> None:
        """Refuses (:class:`~geodata.errors.TransitionForbiddenError`) a workflow step the actor's
        grants do not allow on ``grid_code``; the assignee's steps are scoped by the assignment, the
        reporter's own evaluation by the issue they reported."""
        if not self.permits(action, grid_code, issue_id):
            zh_a, en_a = ACTION_LABELS.get(action, (action, action))
            raise TransitionForbiddenError("forbidden_capability", f"账号无权在该网格执行“{zh_a}”",
                                           f"this account may not {en_a.lower()} in this grid")

    def permits(self, action: str, grid_code: str, issue_id: int | None = None) -> bool:
        """Do the actor's grants allow the workflow step ``action`` on ``grid_code``? (what
        :meth:`require_action` enforces; the reporter's own evaluation is theirs)"""
        if action == "evaluate" and self.reporter_of is not None and self.reporter_of == issue_id:
            return True
        relational = wf.ALLOWED_ROLES.get(action) == frozenset({wf.ASSIGNEE})
        return action_allowed(self.grants, action, grid_code, relational=relational)

    def allowed_actions(self, issue: Issue) -> list[str]:
        """THE answer to "which steps may this actor take on ``issue`` now": the workflow's state and
        role table (``rules.available_actions``) and the account's grants (:meth:`permits`) — what
        ``apply_transition`` would accept, so a client shows exactly these buttons."""
        return [a for a in wf.available_actions(issue.status, self.roles_on_issue(issue))
                if self.permits(a, issue.grid_code, issue.id)]

    @property
    def is_official(self) -> bool:
        return self.official_id is not None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(r for _, r in self.assignments)

    def roles_for(self, grid_code: str) -> set[str]:
        """Roles held on ``grid_code`` or one of its parents (a parent's code is a prefix rule)."""
        return {role for code, role in self.assignments if covers(code, grid_code)}

    def roles_on_issue(self, issue: Issue) -> set[str]:
        roles = self.roles_for(issue.grid_code)
        if self.official_id is not None and issue.assignee_id == self.official_id:
            roles.add(wf.ASSIGNEE)
        return roles or {wf.RESIDENT}

    def scope(self) -> Scope:
        """What this actor sees: their grants' scope (``capabilities.scope_of``), plus the issues on
        their responsibility chain when they are an official."""
        return scope_of(self.grants, self.official_id)


def actor_for(session: Session, official_id: int | None, *, grants: tuple[Grant, ...] = (),
              account_id: int | None = None, as_of: dt.datetime | None = None) -> Actor:
    """The actor for an official id holding ``grants`` (their account's; none: may do nothing).
    ``official_id`` None: an account that is no official's, with ``grants``, or (no grants) a
    resident. An unknown or inactive official is refused (:class:`~geodata.errors.ForbiddenError`)."""
    if official_id is None:
        return Actor(grants=grants, account_id=account_id) if grants or account_id else Actor.resident()
    t = as_of or dt.datetime.now(UTC)
    off = session.get(Official, official_id)
    if off is None or not off.active:
        raise ForbiddenError("unknown_official", f"工作人员编号 {official_id} 不存在或已停用",
                             f"official {official_id} does not exist or is inactive", field="official_id")
    rows = session.execute(
        select(GridAssignment.grid_code, GridAssignment.role)
        .where(GridAssignment.official_id == official_id, valid_at(t, GridAssignment))
        .order_by(GridAssignment.grid_code, GridAssignment.role)).all()
    return Actor(official_id, off.name, tuple((c, r) for c, r in rows), grants, account_id)


def acting_role(action: str, roles: set[str]) -> str:
    allowed = wf.ALLOWED_ROLES[action] & roles
    return next(r for r in wf.ROLE_PREFERENCE if r in allowed)
