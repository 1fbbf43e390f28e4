"""The live stamp: a cheap value that moves whenever an issue is added, changed or removed."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.access.scope import Scope


def latest_change(session: Session, scope: Scope) -> str:
    """A cheap stamp that moves whenever an issue is added, changed or removed.

    Constant work whatever the table size (migration 0018): the largest issue id (new issues) and
    issue event id (every workflow step appends one), one backward index probe each, and the
    table's insert/update/delete counters (other edits and removals; PostgreSQL's statistics move
    within seconds of a commit), hashed. Deliberately not scoped: it only says *something*
    changed, so a viewer refreshes its own, scoped, queries; taken over every issue by
    ``gw_change_stamp()`` (SECURITY DEFINER: row-level security would make the maxima backward
    scans through what the scope may not see), and an md5, so it tells nothing."""
    return session.execute(text("SELECT gw_change_stamp()")).scalar_one()
