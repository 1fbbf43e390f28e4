"""Test fixtures: a real PostGIS (the embedded cluster, or GRIDWATCH_TEST_DATABASE_URL's server).

Two databases are made fresh per test run from the migrations:
- ``gridwatch_test_empty``: schema only (imports, migrations, workflow on small fixtures);
- ``gridwatch_test_demo``: schema + the full demo dataset, loaded once per run (as the owner role).
Tests' own sessions connect as the superuser (no row-level security); every app a test builds
connects as the app role (``demo_app_url``, ``world.make_api``), as the web server does.
Tests that write use the ``db`` / ``empty_db`` fixtures: a Session inside a transaction that is
rolled back after the test (geoalchemy2's pattern), so each test sees the pristine data.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from geodata.db.admin import create_database
from geodata.db.roles import APP_ROLE, OWNER_ROLE, role_url
from geodata.settings import Settings
from tests.world import rollback_session

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
    return cluster.admin_url


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


def load_demo_database(server_url: str, name: str) -> str:
    """A fresh database named ``name`` with the demo dataset (fixed end date), loaded by the owner."""
    from etl.demo import load_demo

    url = _fresh_database(server_url, name)
    engine = create_engine(role_url(url, OWNER_ROLE))   # as `gridwatch demo` loads it: the owner
    try:
        load_demo(engine, end=DEMO_END, progress=False)
    finally:
        engine.dispose()
    return url


def demo_fixtures(name: str) -> tuple[Any, Any, Any, Any]:
    """The session fixtures ``demo_url``, ``demo_app_url``, ``demo_app_engine`` and ``demo_engine``
    on a demo database of its own named ``name``. A conftest that binds them overrides all four
    for its tests: overriding ``demo_url`` alone would not do, since a session fixture built on it
    keeps the first value it was made with."""

    @pytest.fixture(scope="session")
    def demo_url(server_url: str) -> str:
        return load_demo_database(server_url, name)

    @pytest.fixture(scope="session")
    def demo_app_url(demo_url: str) -> str:
        """The demo database as the web server connects to it: the app role (row-level security)."""
        return role_url(demo_url, APP_ROLE)

    @pytest.fixture(scope="session")
    def demo_app_engine(demo_app_url: str) -> Iterator[Engine]:
        engine = create_engine(demo_app_url)
        yield engine
        engine.dispose()

    @pytest.fixture(scope="session")
    def demo_engine(demo_url: str) -> Iterator[Engine]:
        engine = create_engine(demo_url)
        yield engine
        engine.dispose()

    return demo_url, demo_app_url, demo_app_engine, demo_engine


demo_url, demo_app_url, demo_app_engine, demo_engine = demo_fixtures(f"gridwatch_test_demo{SUFFIX}")


@pytest.fixture
def db(demo_engine: Engine) -> Iterator[Session]:
    """A Session on the demo database; everything it writes is rolled back after the test."""
    yield from rollback_session(demo_engine)


@pytest.fixture
def empty_db(empty_engine: Engine) -> Iterator[Session]:
    """A Session on the empty (schema-only) database; rolled back after the test."""
    yield from rollback_session(empty_engine)
