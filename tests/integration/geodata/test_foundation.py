"""Foundation: migrations from empty, the append-only event table, the embedded cluster lifecycle."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect, text

from geodata.db.admin import create_database, drop_database
from geodata.db.cluster import Cluster
from geodata.db.migrate import current_revision, downgrade, head_revision, upgrade
from geodata.settings import PROJECT_ROOT, Settings

EXPECTED_TABLES = {"grid", "official", "grid_assignment", "domain", "issue", "issue_event",
                   "patrol_diary", "activity", "outbox", "idempotency_key"}


def test_migrations_from_empty_up_down_up(server_url):
    url = create_database(server_url, f"gridwatch_test_migr{os.getpid()}", migrate=False)
    upgrade(url)
    assert current_revision(url) == head_revision()
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM domain")) == 7
            assert conn.scalar(text("SELECT PostGIS_Version()"))
            gist = conn.scalar(text("SELECT count(*) FROM pg_indexes WHERE indexname = 'grid_geom_gist'"))
            assert gist == 1
        downgrade(url, "base")
        assert current_revision(url) is None
        assert not EXPECTED_TABLES & set(inspect(engine).get_table_names())
        upgrade(url)
        assert current_revision(url) == head_revision()
    finally:
        engine.dispose()
        drop_database(url)


def _one_issue(session) -> int:
    session.execute(text("""
        INSERT INTO official (id, name) VALUES (900001, '测试员');
        INSERT INTO issue (id, number, kind, domain_code, title, description, source, location,
                           grid_code, community_code, status, reported_at)
        VALUES (900001, 'T900001', 'problem', 'sanitation', '测试', '', 'patrol',
                ST_SetSRID(ST_MakePoint(113.63, 34.75), 4326), '41010200500101', '41010200500100',
                'reported', now());
        INSERT INTO issue_event (issue_id, action, from_status, to_status, actor_id, at, note)
        VALUES (900001, 'report', NULL, 'reported', 900001, now(), '上报');
    """))
    return 900001


@pytest.mark.parametrize("statement", [
    "UPDATE issue_event SET note = 'tampered' WHERE issue_id = 900001",
    "DELETE FROM issue_event WHERE issue_id = 900001",
    "TRUNCATE issue_event CASCADE",
])
def test_event_table_is_append_only(empty_db, statement):
    _one_issue(empty_db)
    with pytest.raises(Exception) as err, empty_db.begin_nested():
        empty_db.execute(text(statement))
    assert "append-only" in str(err.value)
    assert empty_db.scalar(text("SELECT note FROM issue_event WHERE issue_id = 900001")) == "上报"


@pytest.mark.parametrize("column,value,constraint", [
    ("code", "4101020050010", "grid_code_format"),
    ("code", "41010200500100", "grid_code_level"),  # a community code on a level-3 row
])
def test_grid_constraints(empty_db, column, value, constraint):
    values = {"code": "41010200500101", "level": 3, "parent_code": "41010200500100", "name": "测试网格"}
    values[column] = value
    with pytest.raises(Exception) as err, empty_db.begin_nested():
        empty_db.execute(text(
            "INSERT INTO grid (code, level, parent_code, name, geom, area_m2) VALUES "
            "(:code, :level, :parent_code, :name, ST_Multi(ST_MakeEnvelope(113.6, 34.7, 113.61, 34.71, 4326)), 1)"),
            values)
    assert constraint in str(err.value)


def test_grid_versions_cannot_overlap(empty_db):
    ins = text("INSERT INTO grid (code, level, parent_code, name, geom, area_m2, valid_from, valid_to) VALUES "
               "('41010200500000', 1, NULL, '街道', ST_Multi(ST_MakeEnvelope(113.6, 34.7, 113.61, 34.71, 4326)),"
               " 1, :f, :t)")
    empty_db.execute(ins, {"f": "2025-01-01T00:00Z", "t": "2026-01-01T00:00Z"})
    empty_db.execute(ins, {"f": "2026-01-01T00:00Z", "t": None})  # the next version: fine
    with pytest.raises(Exception) as err, empty_db.begin_nested():
        empty_db.execute(ins, {"f": "2025-06-01T00:00Z", "t": "2025-07-01T00:00Z"})
    assert "grid_versions_no_overlap" in str(err.value)


# -- embedded cluster ---------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scratch_cluster():
    var = PROJECT_ROOT / "var" / f"test-cluster-{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=None, var_dir=var, pg_port=_free_port())
    cluster = Cluster(settings)
    try:
        yield cluster
    finally:
        try:
            cluster.down()
        finally:
            shutil.rmtree(var, ignore_errors=True)


def _can_query(cluster: Cluster) -> bool:
    with psycopg.connect(host="127.0.0.1", port=cluster.port, user="postgres",
                         dbname=cluster.settings.pg_database, connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.slow
def test_cluster_up_down_up_and_crash_recovery(scratch_cluster):
    c = scratch_cluster
    st = c.up()
    assert st.running and st.initialised and _can_query(c)
    pid = st.pid
    assert c.up().pid == pid  # repeated up is harmless
    c.down()
    assert not c.status().running
    st = c.up()
    assert st.running and _can_query(c)

    # crash: SIGKILL the postmaster and its children, leaving a stale postmaster.pid behind
    pid = st.pid
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for p in [pid, *map(int, children)]:
        try:
            os.kill(int(p), signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (c.data / "postmaster.pid").exists()
    assert not c.running()
    st = c.up()
    assert st.running and st.pid != pid and _can_query(c)


def test_cli_db_url_does_not_start_anything(tmp_path):
    env = {**os.environ, "GRIDWATCH_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x"}
    out = subprocess.run([sys.executable, "-m", "app", "db", "url"], capture_output=True, text=True,
                         env=env, cwd=PROJECT_ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "postgresql+psycopg://u@127.0.0.1:1/x"
