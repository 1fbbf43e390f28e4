"""Creating and dropping whole databases on a server (tests, benchmarks, scratch work)."""
from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url

from geodata.db.migrate import upgrade
from geodata.db.roles import OWNER_ROLE, ensure_roles, prepare_database, role_url


def _admin(server_url: str, dbname: str = "postgres") -> psycopg.Connection:
    url = make_url(server_url)
    kw = {"host": url.host, "port": url.port or 5432, "user": url.username, "password": url.password,
          "dbname": dbname, "autocommit": True}
    return psycopg.connect(**{k: v for k, v in kw.items() if v is not None})


def create_database(server_url: str, name: str, *, template: str | None = None, migrate: bool = True) -> str:
    """(Re)create database ``name`` on the server of ``server_url`` — empty and migrated to head, or
    copied from ``template`` — and return its URL (as ``server_url``'s user).

    As a superuser (the embedded cluster's ``admin_url``) the database is set up as the embedded
    one is: both roles, the extensions, everything owned by the owner role, and the migrations run
    as the owner; otherwise as ``server_url``'s user."""
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        superuser = bool(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0])
        if superuser:
            ensure_roles(conn)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    if superuser:
        with _admin(server_url, name) as conn:
            prepare_database(conn, name)
    if migrate and not template:
        upgrade(role_url(url, OWNER_ROLE) if superuser else url)
    return url


def drop_database(server_url: str, name: str | None = None) -> None:
    """Drop ``name`` (default: the database named in ``server_url``), closing its connections."""
    name = name or make_url(server_url).database
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
