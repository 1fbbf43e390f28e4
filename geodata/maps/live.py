"""The live stamp: a cheap value that moves whenever an issue is added, changed or removed."""
from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.models import Issue, IssueEvent


def latest_change(session: Session, scope: Scope) -> str:
    """A cheap stamp that moves whenever an issue is added, changed or removed.

    Index-only work whatever the table size: count and max id of issues (new and deleted rows), max
    id of issue events (every workflow step appends one), and the table's update/delete counters
    (other edits; PostgreSQL flushes them within about a second). Deliberately not scoped: it only
    says *something* changed, so a viewer refreshes its own, scoped, queries."""
    cnt, mx = session.execute(select(func.count(Issue.id), func.max(Issue.id))).one()
    ev = session.execute(select(func.max(IssueEvent.id))).scalar_one_or_none()
    upd = session.execute(text(
        "SELECT coalesce(n_tup_upd, 0) + coalesce(n_tup_del, 0) FROM pg_stat_user_tables "
        "WHERE relid = 'issue'::regclass")).scalar_one_or_none()
    return f"{cnt}|{mx or 0}|{ev or 0}|{upd or 0}"
