"""Migration 0024: the issue search runs with a scan order of its own (no synchronised or parallel
scan: the same older rows for the same text), and pg_trgm is gone — dropped by the owner when the
owner made it, by ``prepare_database`` (the superuser's ``gridwatch db up``) when a superuser did and
nothing uses it; the downgrade makes it again."""
from __future__ import annotations

from sqlalchemy import create_engine, text

from geodata.db.admin import _admin, create_database, drop_database
from geodata.db.migrate import downgrade, upgrade
from geodata.db.roles import OWNER_ROLE, prepare_database, role_url
from tests.conftest import SUFFIX

SETTINGS = {"synchronize_seqscans=off", "max_parallel_workers_per_gather=0"}


def _state(url: str) -> tuple[bool, set[str]]:
    """(pg_trgm there, gw_issue_search's settings: none without the function)."""
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            trgm = bool(c.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")).scalar_one())
            config = c.execute(text("SELECT proconfig FROM pg_proc WHERE proname = 'gw_issue_search'")).scalar()
            return trgm, set(config or ())
    finally:
        engine.dispose()


def test_the_search_scans_in_its_own_order_and_pg_trgm_is_gone(demo_url):
    trgm, config = _state(demo_url)
    assert not trgm and config >= SETTINGS


def test_the_downgrade_makes_pg_trgm_again_and_a_superusers_is_dropped_when_unused(server_url):
    name = f"gridwatch_test_m0024{SUFFIX}"
    url = create_database(server_url, name)          # as `gridwatch db up`: prepared, migrated by the owner
    owner = role_url(url, OWNER_ROLE)
    try:
        trgm, config = _state(url)
        assert not trgm and config >= SETTINGS
        downgrade(owner, "0023_issue_cell")
        trgm, config = _state(url)
        assert trgm and not config & SETTINGS
        upgrade(owner)                                # the owner made it (trusted): the owner drops it
        assert _state(url)[0] is False
        # made by a superuser (gridwatch db up did, before 0024): the owner's migration leaves it …
        downgrade(owner, "0023_issue_cell")
        with _admin(server_url, name) as conn:
            conn.execute("DROP EXTENSION pg_trgm")
            conn.execute("CREATE EXTENSION pg_trgm")
        upgrade(owner)
        assert _state(url)[0] is True
        # … and the next `db up` drops it, unless something uses it
        with _admin(server_url, name) as conn:
            conn.execute("CREATE TABLE trgm_user (t text)")
            conn.execute("CREATE INDEX trgm_user_idx ON trgm_user USING gin (t gin_trgm_ops)")
            prepare_database(conn, name)
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() == (1,)
            conn.execute("DROP TABLE trgm_user")
            prepare_database(conn, name)
            assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() == (0,)
        # down to before 0020 (its trigram indexes) from a 0023 that `db up` took pg_trgm from, and up
        downgrade(owner, "0023_issue_cell")
        with _admin(server_url, name) as conn:
            prepare_database(conn, name)
        assert _state(url)[0] is False
        downgrade(owner, "0019_rls_code_columns")
        assert _state(url)[0] is True
        upgrade(owner)
        assert _state(url)[0] is False
    finally:
        drop_database(server_url, name)


def test_prepare_database_never_creates_pg_trgm(server_url):
    name = f"gridwatch_test_m0024b{SUFFIX}"
    create_database(server_url, name, migrate=False)
    try:
        with _admin(server_url, name) as conn:
            assert conn.execute("SELECT extname FROM pg_extension WHERE extname IN ('pg_trgm', 'postgis') "
                                "ORDER BY 1").fetchall() == [("postgis",)]
    finally:
        drop_database(server_url, name)
