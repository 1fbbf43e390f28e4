"""Creating and dropping whole databases on a server (tests, benchmarks, scratch work)."""
from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url

from geodata.db.migrate import upgrade


def _admin(server_url: str) -> psycopg.Connection:
    url = make_url(server_url)
    kw = {"host": url.host, "port": url.port or 5432, "user": url.username, "password": url.password,
              "dbname": "postgres", "autocommit": True}
    return psycopg.connect(**{k: v for k, v in kw.items() if v is not None})


def create_database(server_url: str, name: str, *, template: str | None = None, migrate: bool = True) -> str:
    """(Re)create database ``name`` on the server of ``server_url`` — empty and migrated to head, or
    copied from ``template`` — and return its URL."""
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    if migrate and not template:
        upgrade(url)
    return url


def drop_database(server_url: str, name: str | None = None) -> None:
    """Drop ``name`` (default: the database named in ``server_url``), closing its connections."""
    name = name or make_url(server_url).database
    with _admin(server_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
