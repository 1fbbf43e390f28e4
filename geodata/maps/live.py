"""The live stamp: a cheap value that moves whenever an issue is added, changed or removed."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.access.scope import Scope


def latest_change(session: Session, scope: Scope) -> str:
    """A cheap stamp that moves whenever an issue is added, changed or removed.

    Index-only work whatever the table size: count and max id of issues (new and deleted rows), max
    id of issue events (every workflow step appends one), and the table's update/delete counters
    (other edits; PostgreSQL flushes them within about a second), hashed. Deliberately not scoped:
    it only says *something* changed, so a viewer refreshes its own, scoped, queries; taken over
    every issue by migration 0005's ``gw_change_stamp()`` (row-level security would make the event
    maximum a backward scan through what the scope may not see), and an md5, so it tells nothing."""
    return session.execute(text("SELECT gw_change_stamp()")).scalar_one()
