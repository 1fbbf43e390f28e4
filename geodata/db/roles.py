"""The two database roles: the owner (owns the schema, runs migrations, the demo loader and the
CLI's jobs) and the app (what the web server connects as: LOGIN, owns nothing, no superuser, no
BYPASSRLS, only the privileges each migration grants it).

The embedded cluster creates both (:func:`ensure_roles`) and hands every object of an older
database, made when everything belonged to ``postgres``, to the owner (:func:`adopt_database`).
On an existing PostGIS a DBA runs :data:`CREATE_ROLES_SQL` (docs/database.md).

Grants are made in each migration, table by table (see migration 0005's ``APP_GRANTS``), never by
default privileges: a new table is invisible to the app until its migration says what the app
may do with it.
"""
from __future__ import annotations

import contextlib

from sqlalchemy.engine import make_url

OWNER_ROLE = "gridwatch_owner"
APP_ROLE = "gridwatch_app"

#: What a DBA runs once on an existing PostGIS (as a superuser; then ``gridwatch db migrate``
#: as the owner). Replace the passwords; the embedded cluster runs the same without them.
CREATE_ROLES_SQL = f"""\
CREATE ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS PASSWORD 'owner-secret';
CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS NOINHERIT PASSWORD 'app-secret';
ALTER ROLE {APP_ROLE} SET jit = off;      -- short queries; RLS's cost estimates would trigger JIT
ALTER ROLE {APP_ROLE} SET plan_cache_mode = force_custom_plan;   -- no generic plan for a prepared statement
CREATE DATABASE gridwatch OWNER {OWNER_ROLE};
\\c gridwatch
CREATE EXTENSION IF NOT EXISTS postgis;      -- not a trusted extension: needs the superuser
CREATE EXTENSION IF NOT EXISTS btree_gist;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {APP_ROLE};
"""

EXTENSIONS = ("postgis", "btree_gist")
#: made by :func:`prepare_database` before migration 0024 and used by nothing since (its indexes went
#: in 0020): dropped there, as the superuser that made it, unless something depends on it — the
#: owner running 0024 may not drop a superuser's extension. (Migration 0004 makes pg_trgm itself,
#: as the owner, on a new database: it is trusted.)
RETIRED_EXTENSIONS = ("pg_trgm",)


def role_url(url: str, role: str) -> str:
    """``url`` with another user and no password (the embedded cluster trusts loopback)."""
    return make_url(url).set(username=role, password=None).render_as_string(hide_password=False)


def ensure_roles(conn) -> None:
    """Create the owner and app roles if missing and (re)state their attributes (psycopg
    connection, autocommit, as a superuser)."""
    for role, extra in ((OWNER_ROLE, "NOCREATEDB"), (APP_ROLE, "NOCREATEDB NOINHERIT")):
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'ALTER ROLE "{role}" LOGIN NOSUPERUSER NOCREATEROLE NOBYPASSRLS NOREPLICATION {extra}')
    # the policies' InitPlans inflate cost estimates past jit_above_cost: JIT would compile
    # (10–20 ms) what runs in a few milliseconds
    conn.execute(f'ALTER ROLE "{APP_ROLE}" SET jit = off')
    # psycopg prepares a statement run five times on a connection, and PostgreSQL may then plan it
    # once for any values: blind to a date window's or a box's selectivity — the map's 本年
    # markers at 10⁶ issues took the generic plan from the sixth poll on, 5.9 s instead of 18 ms
    conn.execute(f'ALTER ROLE "{APP_ROLE}" SET plan_cache_mode = force_custom_plan')


#: Hands every object in schema public not owned by the owner (and not an extension's) to the
#: owner: tables first (their sequences follow them), then the remaining sequences and functions.
_ADOPT = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
             AND c.relowner <> '{owner}'::regrole
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO {owner}',
                   CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, r.name);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind = 'S' AND c.relowner <> '{owner}'::regrole
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
  LOOP
    EXECUTE format('ALTER SEQUENCE %s OWNER TO {owner}', r.name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND p.proowner <> '{owner}'::regrole
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                             AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO {owner}', r.name);
  END LOOP;
END $$;
"""


def prepare_database(conn, database: str) -> None:
    """As a superuser on ``database`` (psycopg connection, autocommit): the extensions the
    migrations need (PostGIS only a superuser may create) and none of the retired ones nothing
    uses, the database and everything in it owned by the owner role (an older database made as
    ``postgres`` is adopted in place), and nobody but the owner may create objects in schema public."""
    for ext in EXTENSIONS:
        conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{ext}"')
    for ext in RETIRED_EXTENSIONS:
        _drop_unused_extension(conn, ext)
    conn.execute(f'ALTER DATABASE "{database}" OWNER TO "{OWNER_ROLE}"')
    conn.execute(f'ALTER SCHEMA public OWNER TO "{OWNER_ROLE}"')
    conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    conn.execute(f'GRANT USAGE ON SCHEMA public TO "{APP_ROLE}"')
    conn.execute(_ADOPT.format(owner=OWNER_ROLE))


def _drop_unused_extension(conn, name: str) -> None:
    """DROP EXTENSION ``name`` (RESTRICT) if it is there and nothing depends on it: PostgreSQL
    refuses while an object uses it (a database migrated to 0004–0019 has trigram indexes; a
    migration drops them, and the next ``gridwatch db up`` the extension)."""
    import psycopg

    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", (name,)).fetchone():
        with contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
            conn.execute(f'DROP EXTENSION "{name}"')
