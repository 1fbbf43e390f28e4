"""Test fixtures: a real PostGIS (the embedded cluster, or GRIDWATCH_TEST_DATABASE_URL's server).

Two databases are made fresh per test run from the migrations:
- ``gridwatch_test_empty``: schema only (imports, migrations, workflow on small fixtures);
- ``gridwatch_test_demo``: schema + the full demo dataset, loaded once per run.
Tests that write use the ``db`` / ``empty_db`` fixtures: a Session inside a transaction that is
rolled back after the test (geoalchemy2's pattern), so each test sees the pristine data.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from geodata.db.admin import create_database
from geodata.settings import Settings

#: Lets several test runs share one server without dropping each other's databases.
SUFFIX = os.environ.get("GRIDWATCH_TEST_DB_SUFFIX", "")

#: Fixed end date for the demo dataset in tests, so results never depend on the day the suite runs.
DEMO_END = dt.date(2026, 11, 27)


def _server_url() -> str:
    url = os.environ.get("GRIDWATCH_TEST_DATABASE_URL")
    if url:
        return url
    from geodata.db.cluster import Cluster

    settings = Settings(database_url=None)
    cluster = Cluster(settings)
    cluster.up()
    return cluster.url


def _fresh_database(server_url: str, name: str) -> str:
    return create_database(server_url, name)


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def empty_url(server_url: str) -> str:
    return _fresh_database(server_url, f"gridwatch_test_empty{SUFFIX}")


@pytest.fixture(scope="session")
def empty_engine(empty_url: str) -> Iterator[Engine]:
    engine = create_engine(empty_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def demo_url(server_url: str) -> str:
    from etl.demo import load_demo

    url = _fresh_database(server_url, f"gridwatch_test_demo{SUFFIX}")
    engine = create_engine(url)
    try:
        load_demo(engine, end=DEMO_END, progress=False)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def demo_engine(demo_url: str) -> Iterator[Engine]:
    engine = create_engine(demo_url)
    yield engine
    engine.dispose()


def _rollback_session(engine: Engine) -> Iterator[Session]:
    conn = engine.connect()
    trans = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        trans.rollback()
        conn.close()


@pytest.fixture
def db(demo_engine: Engine) -> Iterator[Session]:
    """A Session on the demo database; everything it writes is rolled back after the test."""
    yield from _rollback_session(demo_engine)


@pytest.fixture
def empty_db(empty_engine: Engine) -> Iterator[Session]:
    """A Session on the empty (schema-only) database; rolled back after the test."""
    yield from _rollback_session(empty_engine)
