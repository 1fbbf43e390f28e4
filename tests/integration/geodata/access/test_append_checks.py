"""A row added to an issue's events, photos or reporter is checked against the issue's visibility
(migration 0028: ``gw_issue_visible``, a plan kept per session). Plain SQL as the app role, the
scope set as the server sets it; each case in and out of scope, and one connection whose scope
changes between transactions (the kept plan must follow the settings, not remember them)."""
from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from geodata.access import rls
from geodata.access.scope import Scope

ROWS = {
    "issue_event": "INSERT INTO issue_event (issue_id, action, to_status, at, note) VALUES (:i, 'sign', 'signed', now(), '')",
    "issue_photo": "INSERT INTO issue_photo (issue_id, stage, sha256, content_type, size_bytes, path) "
                   "VALUES (:i, 'report', repeat('0', 64), 'image/jpeg', 1, 'x.jpg')",
    "issue_reporter": "INSERT INTO issue_reporter (issue_id, name) VALUES (:i, '测试')",
}


@pytest.fixture(scope="module")
def two(demo_url) -> dict:
    """Two communities and an issue of each without a reporter row (the superuser looks)."""
    from sqlalchemy import create_engine
    e = create_engine(demo_url)
    with e.connect() as c:
        a, b = c.execute(text("SELECT code FROM grid WHERE level = 2 AND valid_to IS NULL ORDER BY code LIMIT 2")
                         ).scalars().all()
        pick = "SELECT min(i.id) FROM issue i WHERE i.community_code = :c AND NOT EXISTS " \
               "(SELECT 1 FROM issue_reporter r WHERE r.issue_id = i.id)"
        out = {"a": a, "b": b, "ia": c.execute(text(pick), {"c": a}).scalar_one(),
               "ib": c.execute(text(pick), {"c": b}).scalar_one()}
    e.dispose()
    return out


def _insert(engine: Engine, scope: Scope, sql: str, issue_id: int) -> bool:
    """Whether the app role may add the row (rolled back either way)."""
    with Session(engine) as s:
        s.begin()
        rls.apply(s.connection(), scope)
        try:
            s.execute(text(sql), {"i": issue_id})
            return True
        except ProgrammingError as err:
            assert "row-level security" in str(err.orig)
            return False
        finally:
            s.rollback()


@pytest.mark.parametrize("table", sorted(ROWS))
def test_a_row_follows_its_issue(demo_app_engine, two, table):
    mine = Scope.grids(two["a"], personal_data=True)
    assert _insert(demo_app_engine, mine, ROWS[table], two["ia"])
    assert not _insert(demo_app_engine, mine, ROWS[table], two["ib"])
    assert _insert(demo_app_engine, Scope.everything(personal_data=True), ROWS[table], two["ib"])
    assert not _insert(demo_app_engine, Scope.grids(), ROWS[table], two["ia"])   # no grid at all


@pytest.mark.parametrize("table", sorted(ROWS))
def test_a_granted_new_issue_takes_its_rows(demo_app_engine, two, table):
    """A report outside the reporter's scope: the transaction's granted issue (``rls.grant_issue``)."""
    with Session(demo_app_engine) as s:
        s.begin()
        rls.apply(s.connection(), Scope.grids(two["a"], personal_data=True))
        rls.grant_issue(s, two["ib"])
        s.execute(text(ROWS[table]), {"i": two["ib"]})
        s.rollback()


def test_one_connection_whose_scope_changes_is_checked_each_time(demo_app_engine, two):
    """The check's plan is kept by the session: ten transactions alternating two scopes on one
    connection (more than the five a plan cache waits before keeping a generic plan) each get
    their own scope's answer."""
    sql = ROWS["issue_event"]
    with demo_app_engine.connect() as conn:
        for k in range(10):
            mine, theirs = (two["a"], two["b"]) if k % 2 == 0 else (two["b"], two["a"])
            issue = {two["a"]: two["ia"], two["b"]: two["ib"]}
            for target, allowed in ((issue[mine], True), (issue[theirs], False)):
                tx = conn.begin()
                rls.apply(conn, Scope.grids(mine))
                try:
                    conn.execute(text("SAVEPOINT p"))
                    conn.execute(text(sql), {"i": target})
                    ok = True
                except ProgrammingError:
                    ok = False
                tx.rollback()
                assert ok is allowed, (k, target)
