"""The six-ones chain's officials, checked once per statement (migration 0025) with a foreign key's
meaning: every official a row newly names exists, is locked against deletion until the transaction
ends, and a missing one fails the whole statement naming the column and the id; officials are
never deleted nor renumbered."""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

MISSING = 987654


def _an_issue(db: Session) -> tuple[int, int, int]:
    """(id, its grid leader, an official not in its chain) of a demo issue with a full chain."""
    row = db.execute(text("SELECT id, grid_leader_id, leader_in_charge_id, responsible_id FROM issue "
                          "WHERE grid_leader_id IS NOT NULL AND responsible_id IS NOT NULL ORDER BY id LIMIT 1")).one()
    other = db.execute(text("SELECT id FROM official WHERE id <> ALL(:chain) ORDER BY id LIMIT 1"),
                       {"chain": [v for v in row[1:] if v is not None]}).scalar_one()
    return row[0], row[1], other


def _fails(db: Session, sql: str, params: dict | None = None) -> DBAPIError:
    nested = db.begin_nested()
    with pytest.raises(DBAPIError) as err:
        db.execute(text(sql), params or {})
    nested.rollback()
    return err.value


def test_a_missing_official_fails_the_whole_statement_naming_column_and_id(db: Session):
    issue, _leader, _other = _an_issue(db)
    before = db.execute(text("SELECT count(*) FROM issue")).scalar_one()
    err = _fails(db, "INSERT INTO issue (number, kind, domain_code, title, description, source, location, grid_code, "
                     "community_code, status, reported_at, updated_at, grid_leader_id) "
                     "SELECT 'CHK' || k, kind, domain_code, title, '', source, location, grid_code, community_code, "
                     "'reported', now(), now(), CASE WHEN k = 3 THEN :bad ELSE grid_leader_id END "
                     "FROM issue, generate_series(1, 5) k WHERE id = :id", {"bad": MISSING, "id": issue})
    assert isinstance(err, IntegrityError)
    assert err.orig.sqlstate == "23503"
    assert f"grid_leader_id = {MISSING}" in str(err.orig)
    assert err.orig.diag.column_name == "grid_leader_id" and err.orig.diag.constraint_name == "issue_chain_official"
    assert db.execute(text("SELECT count(*) FROM issue")).scalar_one() == before      # none of the five

    err = _fails(db, "UPDATE issue SET responsible_id = :bad WHERE id = :id", {"bad": MISSING, "id": issue})
    assert err.orig.sqlstate == "23503" and err.orig.diag.column_name == "responsible_id"
    assert db.execute(text("SELECT responsible_id FROM issue WHERE id = :id"), {"id": issue}).scalar_one() != MISSING


def test_existing_officials_pass_and_are_locked_against_deletion_until_the_end(db: Session, demo_engine):
    issue, _leader, other = _an_issue(db)
    db.execute(text("UPDATE issue SET leader_in_charge_id = :o, responsible_id = :o WHERE id = :id"),
               {"o": other, "id": issue})
    assert db.execute(text("SELECT leader_in_charge_id FROM issue WHERE id = :id"), {"id": issue}).scalar_one() == other
    # FOR KEY SHARE, as a foreign key's check takes: another transaction cannot take the row for
    # a delete or a key change while this one lasts
    with demo_engine.connect() as conn, pytest.raises(DBAPIError) as err:
        conn.execute(text("SELECT 1 FROM official WHERE id = :o FOR UPDATE NOWAIT"), {"o": other})
    assert isinstance(err.value.orig, psycopg.errors.LockNotAvailable)


def test_an_update_checks_only_the_officials_it_changes(db: Session, demo_engine):
    issue, leader, _other = _an_issue(db)
    db.execute(text("UPDATE issue SET title = title || '' WHERE id = :id"), {"id": issue})
    with demo_engine.connect() as conn:   # nothing was locked: the chain did not change
        assert conn.execute(text("SELECT 1 FROM official WHERE id = :o FOR UPDATE NOWAIT"), {"o": leader}).scalar() == 1
        conn.rollback()


def test_officials_are_never_deleted_nor_renumbered(db: Session):
    _issue, leader, _other = _an_issue(db)
    err = _fails(db, "DELETE FROM official WHERE id = :o", {"o": leader})
    assert err.orig.sqlstate == "23001" and "never deleted" in str(err.orig)
    err = _fails(db, "UPDATE official SET id = :n WHERE id = :o", {"n": MISSING, "o": leader})
    assert err.orig.sqlstate == "23001"
    db.execute(text("UPDATE official SET name = name WHERE id = :o"), {"o": leader})   # other columns may change
