"""Engine and session handling."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from .settings import Settings, get_settings


def database_url(settings: Settings | None = None, start: bool = True) -> str:
    """The URL of the database in use; starts the embedded cluster when no URL is configured."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    from .cluster import Cluster

    cluster = Cluster(settings)
    if start:
        cluster.up()
    return cluster.url


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    # hide_parameters: database errors never echo request values (phones, reporters) into logs
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True,
                         connect_args={"options": "-c timezone=UTC"})


def get_engine(settings: Settings | None = None) -> Engine:
    return _engine(database_url(settings))


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session
