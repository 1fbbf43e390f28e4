"""The second wall: a :class:`~geodata.access.scope.Scope` as the per-transaction settings that the
row-level-security policies read (migration 0005; the rule itself is
:mod:`geodata.access.visibility`'s, which the policies mirror).

Each transaction of a session opened with a scope (``geodata.db.open_session(…, scope=…)``)
starts with ``set_config(name, value, true)`` — ``SET LOCAL``, so a pooled connection goes back
to the pool with no scope, and a transaction with no scope sees no issue at all:

======================  ==================================================================
``gridwatch.grids``     ``*`` every grid; else the roots' descendant prefixes, comma-separated
                        (9, 12 or 14 digits each; anything else in the list grants nothing)
``gridwatch.official``  the viewer's official id (the responsibility chain), or empty
``gridwatch.personal``  ``on`` when the scope may see personal data (phones, reporters)
``gridwatch.issues``    ids of issues this transaction wrote and may read back (a report
                        outside the reporter's scope: :func:`grant_issue`), comma-separated
======================  ==================================================================
"""
from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from geodata.access.scope import Scope

GRIDS, OFFICIAL, PERSONAL, ISSUES = "gridwatch.grids", "gridwatch.official", "gridwatch.personal", "gridwatch.issues"
ALL_GRIDS = "*"

_SCOPE_KEY = "gridwatch_scope"
_APPLIED_KEY = "gridwatch_scope_applied"


def scope_settings(scope: Scope) -> dict[str, str]:
    """The settings that carry ``scope`` to the policies (the table in the module docstring)."""
    prefixes = scope.prefixes()
    return {GRIDS: ALL_GRIDS if prefixes is None else ",".join(sorted(prefixes)),
            OFFICIAL: "" if scope.official_id is None else str(int(scope.official_id)),
            PERSONAL: "on" if scope.personal_data else "off",
            ISSUES: ""}


def set_config_sql(names: list[str]) -> str:
    """``SELECT set_config(:k0, :v0, true), …`` for ``names`` (transaction-local, one round trip)."""
    return "SELECT " + set_config_exprs(names)


def set_config_exprs(names: list[str]) -> str:
    """``set_config(:k0, :v0, true), …`` for ``names``: a select list (``set_config_params``)."""
    return ", ".join(f"set_config(:k{i}, :v{i}, true)" for i in range(len(names)))


def set_config_params(values: dict[str, str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for i, (k, v) in enumerate(values.items()):
        params[f"k{i}"], params[f"v{i}"] = k, v
    return params


def apply(conn: Connection, scope: Scope) -> None:
    """Set ``scope`` for the rest of ``conn``'s current transaction (a loader's or a test's own
    connection; sessions use :func:`set_scope` or ``open_session(…, scope=…)``)."""
    values = scope_settings(scope)
    conn.execute(text(set_config_sql(list(values))), set_config_params(values))


def session_scope_of(session: Session) -> Scope | None:
    """The scope ``session`` applies to each transaction (None: none, so no issue is visible —
    unless the role bypasses row-level security)."""
    return session.info.get(_SCOPE_KEY)


def remember(session: Session, scope: Scope | None, applied: bool = False) -> None:
    """Record the scope every later transaction of ``session`` begins with (``geodata.db``'s
    ``after_begin`` applies it); ``applied``: the current transaction already has it."""
    if scope is None:
        session.info.pop(_SCOPE_KEY, None)
    else:
        session.info[_SCOPE_KEY] = scope
    if applied:
        session.info[_APPLIED_KEY] = scope


def begin_settings(session: Session) -> dict[str, str]:
    """The settings a new transaction of ``session`` begins with (none without a scope); called by
    ``geodata.db``'s ``after_begin``, which sends them with the request limits in one statement."""
    scope = session.info.get(_SCOPE_KEY)
    session.info[_APPLIED_KEY] = scope
    return scope_settings(scope) if scope is not None else {}


def set_scope(session: Session, scope: Scope) -> None:
    """From now on ``session`` sees what ``scope`` may see: the current transaction at once (the
    API learns who calls inside its one transaction), and every later one."""
    remember(session, scope)
    if session.in_transaction():
        conn = session.connection()   # a transaction begun here has applied the scope already
        if session.info.get(_APPLIED_KEY) != scope:   # an equal scope: the same settings
            apply(conn, scope)
            session.info[_APPLIED_KEY] = scope


def grant_issue(session: Session, issue_id: int) -> None:
    """Let the current transaction read back issue ``issue_id``, which it is writing: a report
    lands wherever the point is, inside the reporter's scope or not, and the reporter gets it back
    (the server authorises writes; the grant ends with the transaction)."""
    session.execute(text(f"SELECT set_config('{ISSUES}', concat_ws(',', nullif(current_setting('{ISSUES}', true), ''), "
                         "CAST(:id AS text)), true)"), {"id": str(int(issue_id))})
