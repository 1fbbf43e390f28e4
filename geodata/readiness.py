"""Is the database there, reachable and migrated? One answer, in one line (zh + en), with the
command that fixes it — for the CLI and the server's start-up, never a traceback."""
from __future__ import annotations

import re

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError


class DatabaseNotReady(RuntimeError):
    """The database cannot serve Gridwatch yet; ``fix`` is the command that mends it."""

    def __init__(self, zh: str, en: str, fix: str):
        super().__init__(en)
        self.zh, self.en, self.fix = zh, en, fix

    def __str__(self) -> str:
        return f"{self.zh} / {self.en} — {self.fix}"


def _where(url: str) -> str:
    u = make_url(url)
    return f"{u.host or 'localhost'}:{u.port or 5432}/{u.database or ''}"


def classify(exc: BaseException, url: str) -> DatabaseNotReady | None:
    """A database error as a one-line diagnosis, or None when it is not about readiness."""
    if isinstance(exc, DatabaseNotReady):
        return exc
    orig = getattr(exc, "orig", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    where = _where(url)
    text = str(orig if orig is not None else exc)
    if sqlstate == "3D000" or (sqlstate is None and re.search(r'database "[^"]*" does not exist', text)):
        db = make_url(url).database
        return DatabaseNotReady(f"数据库 {db} 不存在（{where}）", f"database {db} does not exist ({where})",
                                f"createdb {db}, then: gridwatch db migrate")
    if sqlstate in ("28P01", "28000") or (sqlstate is None and "authentication failed" in text):
        return DatabaseNotReady(f"数据库拒绝登录（{where}）", f"the database refused the login ({where})",
                                "check the user and password in GRIDWATCH_DATABASE_URL")
    if sqlstate == "0A000" and "postgis" in text.lower():  # feature_not_supported: extension missing
        return DatabaseNotReady(f"数据库服务器上没有 PostGIS 扩展（{where}）",
                                f"the PostGIS extension is not installed on the database server ({where})",
                                "make demo installs it (tools/system-deps); on your own server: "
                                "apt-get install postgresql-<major>-postgis-3")
    if sqlstate == "42P01" or (isinstance(exc, ProgrammingError) and "does not exist" in text):
        return not_migrated(url)
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return DatabaseNotReady(f"无法连接数据库（{where}）", f"cannot connect to the database ({where})",
                                "gridwatch db up   (or check GRIDWATCH_DATABASE_URL and that the server is running)")
    return None


def not_migrated(url: str, current: str | None = None, head: str | None = None) -> DatabaseNotReady:
    state = f"{current or '无/none'} → {head}" if head else ""
    return DatabaseNotReady(f"数据库尚未迁移{('（' + state + '）') if state else ''}（{_where(url)}）",
                            f"the database is not migrated{(' (' + state + ')') if state else ''} ({_where(url)})",
                            "gridwatch db migrate")


def check_ready(engine: Engine) -> None:
    """Raise DatabaseNotReady unless the database answers and its schema is at the newest migration."""
    from alembic.runtime.migration import MigrationContext

    from geodata.db.migrate import head_revision

    url = engine.url.render_as_string(hide_password=False)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        diagnosis = classify(exc, url)
        if diagnosis is None:
            raise
        raise diagnosis from None
    head = head_revision()
    if current != head:
        raise not_migrated(url, current, head)
