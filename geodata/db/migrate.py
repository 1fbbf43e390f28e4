"""Alembic, driven from code (no alembic.ini needed)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from geodata.db.roles import APP_ROLE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str, app_role: str | None = None) -> Config:
    """Alembic's configuration; ``app_role``: the role migrations grant the app's privileges to
    (default :data:`geodata.db.roles.APP_ROLE`; read by migrations through :func:`grantee`)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["app_role"] = app_role or APP_ROLE
    return cfg


def grantee(config: Config) -> str:
    """The app role a running migration grants to (quoted for SQL)."""
    name = config.attributes.get("app_role") or APP_ROLE
    return '"' + name.replace('"', '""') + '"'


def grant_app(grants: dict[str, str], sequences: tuple[str, ...] = (), functions: tuple[str, ...] = ()) -> None:
    """Inside a running migration: give the app role its ``grants`` (table → privileges; the
    migration's ``APP_GRANTS``, which the tests compare with the database), USAGE on ``sequences``
    and EXECUTE on ``functions`` (signatures, e.g. ``gw_change_stamp()``)."""
    from alembic import context, op

    app = grantee(context.config)
    for table, privileges in grants.items():
        op.execute(f"GRANT {privileges} ON {table} TO {app}")
    for seq in sequences:
        op.execute(f"GRANT USAGE ON SEQUENCE {seq} TO {app}")
    for fn in functions:
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {app}")


def upgrade(url: str, revision: str = "head", app_role: str | None = None) -> None:
    """Migrate ``url``'s database (connect as the owner) to ``revision``."""
    command.upgrade(alembic_config(url, app_role), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
