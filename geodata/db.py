"""Engine and session handling.

Web requests (API views, Dash callbacks, tiles) open their sessions with :class:`Limits`: every
transaction then runs with ``SET LOCAL statement_timeout`` and ``idle_in_transaction_session_timeout``,
so no request can hold a worker thread and a connection for long. Sessions opened without limits
(the CLI's bulk jobs, migrations, the demo loader) keep the server's defaults.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .settings import Settings, get_settings

#: SQLSTATE 57014 query_canceled: what a statement_timeout raises
QUERY_CANCELED = "57014"


@dataclass(frozen=True)
class Limits:
    """Per-transaction limits of one web request's database work (milliseconds)."""

    statement_timeout_ms: int
    idle_in_transaction_ms: int


def request_limits(settings: Settings) -> Limits:
    """The limits of an interactive request (``settings.statement_timeout_s`` and
    ``settings.idle_in_transaction_timeout_s``)."""
    return Limits(round(settings.statement_timeout_s * 1000), round(settings.idle_in_transaction_timeout_s * 1000))


_LIMITS_KEY = "gridwatch_limits"
_SET_LIMITS = text("SELECT set_config('statement_timeout', :st, true), "
                   "set_config('idle_in_transaction_session_timeout', :it, true)")


@event.listens_for(Session, "after_begin")
def _apply_limits(session: Session, _transaction, connection) -> None:
    # SET LOCAL (set_config(..., true)): the limits end with the transaction, so a pooled connection
    # goes back to the pool with the server's defaults
    limits: Limits | None = session.info.get(_LIMITS_KEY)
    if limits is not None:
        connection.execute(_SET_LIMITS, {"st": str(limits.statement_timeout_ms),
                                         "it": str(limits.idle_in_transaction_ms)})


def is_statement_timeout(exc: BaseException) -> bool:
    """Was ``exc`` a statement cancelled by ``statement_timeout``?"""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED


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
def _engine(url: str, pool_size: int, pool_timeout: float) -> Engine:
    # hide_parameters: database errors never echo request values (phones, reporters) into logs.
    # One pooled connection per server thread and no overflow: a request never waits for a
    # connection another request holds for long; if it ever must, it fails after pool_timeout.
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=0, pool_timeout=pool_timeout,
                         hide_parameters=True, connect_args={"options": "-c timezone=UTC"})


def get_engine(settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    return _engine(database_url(settings), settings.server_threads, settings.db_pool_timeout_s)


def open_session(engine: Engine, limits: Limits | None = None) -> Session:
    """A Session whose every transaction runs under ``limits`` (None: the server's defaults)."""
    return Session(engine, expire_on_commit=False, info={_LIMITS_KEY: limits} if limits else {})


@contextmanager
def session_scope(engine: Engine, limits: Limits | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with open_session(engine, limits) as session:
        with session.begin():
            yield session
