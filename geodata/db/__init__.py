"""The database: engine, sessions, per-request limits, availability; cluster, admin and migrations beside it."""
# Web requests (API views, Dash callbacks, tiles) open their sessions with :class:`Limits`: every
# transaction then runs with ``SET LOCAL statement_timeout`` and ``idle_in_transaction_session_timeout``,
# so no request can hold a worker thread and a connection for long. Sessions opened without limits
# (the CLI's bulk jobs, migrations, the demo loader) keep the server's defaults.
from __future__ import annotations

import datetime as dt
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from geodata.access import rls
from geodata.access.scope import Scope
from geodata.settings import Settings, get_settings

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
#: session.info: a scalar (SQL, params) the next transaction's first statement reads along with its
#: settings (one round trip); its value is left under :data:`BEGIN_READ_VALUE`
BEGIN_READ, BEGIN_READ_VALUE = "gridwatch_begin_read", "gridwatch_begin_read_value"


@lru_cache(maxsize=16)
def _set_config(names: tuple[str, ...], read: str | None = None):
    exprs = [e for e in (rls.set_config_exprs(list(names)) if names else "", read) if e]
    return text("SELECT " + ", ".join(exprs))


@event.listens_for(Session, "after_begin")
def _apply_transaction_settings(session: Session, _transaction, connection) -> None:
    # SET LOCAL (set_config(..., true)): the limits and the scope end with the transaction, so a
    # pooled connection goes back to the pool with the server's defaults and no scope
    values: dict[str, str] = {}
    limits: Limits | None = session.info.get(_LIMITS_KEY)
    if limits is not None:
        values["statement_timeout"] = str(limits.statement_timeout_ms)
        values["idle_in_transaction_session_timeout"] = str(limits.idle_in_transaction_ms)
    values.update(rls.begin_settings(session))
    read = session.info.pop(BEGIN_READ, None)
    if read is not None:
        row = connection.execute(_set_config(tuple(values), read[0]),
                                 {**rls.set_config_params(values), **read[1]}).one()
        session.info[BEGIN_READ_VALUE] = row[-1]
    elif values:
        connection.execute(_set_config(tuple(values)), rls.set_config_params(values))


def is_statement_timeout(exc: BaseException) -> bool:
    """Was ``exc`` a statement cancelled by ``statement_timeout``?"""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED


def database_url(settings: Settings | None = None, start: bool = True) -> str:
    """The URL the app connects with (the app role: owns nothing, row-level security applies);
    starts the embedded cluster when no URL is configured."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    return _cluster(settings, start).app_url


def owner_url(settings: Settings | None = None, start: bool = True) -> str:
    """The owner role's URL: migrations, the demo loader and the CLI's jobs
    (``GRIDWATCH_OWNER_DATABASE_URL``; without it, an existing server's one URL)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.owner_database_url or settings.database_url
    return _cluster(settings, start).owner_url


def admin_url(settings: Settings | None = None) -> str:
    """A URL that may create scratch databases (tests, benchmarks): the embedded cluster's
    superuser, or an existing server's owner URL."""
    settings = settings or get_settings()
    if settings.database_url:
        return owner_url(settings)
    return _cluster(settings, True).admin_url


def _cluster(settings: Settings, start: bool):
    from geodata.db.cluster import Cluster

    cluster = Cluster(settings)
    if start:
        cluster.up()
    return cluster


def migrate_database(settings: Settings | None = None, revision: str = "head") -> str:
    """Migrate the database in use as the owner, granting the app role (the app URL's user) what
    each migration grants it. Returns the owner URL."""
    from sqlalchemy.engine import make_url

    from geodata.db.migrate import upgrade

    settings = settings or get_settings()
    url = owner_url(settings)
    upgrade(url, revision, app_role=make_url(database_url(settings, start=False)).username)
    return url


@lru_cache(maxsize=8)
def _engine(url: str, pool_size: int, pool_timeout: float, connect_timeout_s: int) -> Engine:
    # hide_parameters: database errors never echo request values (phones, reporters) into logs.
    # One pooled connection per server thread and no overflow: a request never waits for a
    # connection another request holds for long; if it ever must, it fails after pool_timeout.
    # connect_timeout: while the server is unreachable a request fails within seconds, never hangs.
    # plan_cache_mode: every execution planned for its values (geodata.db.roles: as the app role's
    # default too) — a prepared statement's generic plan cannot see how selective a date window is.
    engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=0, pool_timeout=pool_timeout,
                           hide_parameters=True,
                           connect_args={"options": "-c timezone=UTC -c plan_cache_mode=force_custom_plan",
                                         "connect_timeout": connect_timeout_s})
    availability(engine)
    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    """The app's engine (the app role; see :func:`database_url`)."""
    settings = settings or get_settings()
    return _engine(database_url(settings), settings.server_threads, settings.db_pool_timeout_s,
                   settings.db_connect_timeout_s)


def get_owner_engine(settings: Settings | None = None) -> Engine:
    """The owner's engine, for the CLI's jobs (row-level security applies to the owner too: its
    sessions say which scope they work in, ``Scope.everything()``)."""
    settings = settings or get_settings()
    return _engine(owner_url(settings), 4, settings.db_pool_timeout_s, settings.db_connect_timeout_s)


def open_session(engine: Engine, limits: Limits | None = None, scope: Scope | None = None) -> Session:
    """A Session whose every transaction runs under ``limits`` (None: the server's defaults) and
    sees what ``scope`` may see through row-level security (None: no issue at all, until
    :func:`geodata.access.rls.set_scope`)."""
    session = Session(engine, expire_on_commit=False, info={_LIMITS_KEY: limits} if limits else {})
    rls.remember(session, scope)
    return session


@contextmanager
def session_scope(engine: Engine, limits: Limits | None = None, scope: Scope | None = None) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with open_session(engine, limits, scope) as session, session.begin():
        yield session


# -- availability ---------------------------------------------------------------------------------
log = logging.getLogger("gridwatch.db")

#: SQLSTATEs that mean the server cannot serve at all: shutting down, crashed, starting, full
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")


def is_unavailable(exc: BaseException | None) -> bool:
    """Does this error (or one it was raised from) mean the database cannot be reached — down,
    restarting, unreachable — as opposed to a statement that failed (bad value, timeout, conflict)?"""
    while exc is not None:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, OperationalError):
            state = getattr(exc.orig, "sqlstate", None)   # None: the driver found no server to ask
            return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES
        exc = exc.__cause__ or exc.__context__
    return False


class Availability:
    """Whether the database answers, as one engine sees it: down from the first error that means it
    cannot be reached, up again at the next connection handed out. One log line per transition."""

    def __init__(self) -> None:
        self._since: dt.datetime | None = None
        self._lock = threading.Lock()

    @property
    def since(self) -> dt.datetime | None:
        """When the current outage began (UTC); None while the database answers."""
        return self._since

    def down(self, exc: BaseException) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = dt.datetime.now(dt.UTC)
        orig = getattr(exc, "orig", None) or exc   # the driver's message: host and port, never values
        reason = (str(orig).strip().splitlines() or [""])[0]
        log.warning("数据库不可用 / database unavailable: %s: %s", type(orig).__name__, reason)

    def up(self) -> None:
        if self._since is None:      # the common case: no lock, nothing to do
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            secs = (dt.datetime.now(dt.UTC) - since).total_seconds()
            log.warning("数据库已恢复 / database available again after %.0f s", secs)


_availability: weakref.WeakKeyDictionary[Engine, Availability] = weakref.WeakKeyDictionary()
_availability_lock = threading.Lock()


def availability(engine: Engine) -> Availability:
    """The engine's :class:`Availability`, following every use of the engine (made once per engine)."""
    with _availability_lock:
        found = _availability.get(engine)
        if found is not None:
            return found
        found = _availability[engine] = Availability()

    @event.listens_for(engine, "handle_error")
    def _failed(ctx: ExceptionContext) -> None:
        # a pooled connection failing its ping is only stale (the server restarted): SQLAlchemy
        # reconnects at once, and only if that fails is the database down
        if not ctx.is_pre_ping and is_unavailable(ctx.sqlalchemy_exception or ctx.original_exception):
            found.down(ctx.sqlalchemy_exception or ctx.original_exception)

    @event.listens_for(engine, "checkout")
    def _handed_out(*_args) -> None:
        found.up()

    return found
