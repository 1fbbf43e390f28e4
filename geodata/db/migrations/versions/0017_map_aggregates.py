"""the map's aggregates: closed issues counted per block grid, kind, domain, status (and local day)

At 10⁶ issues almost every issue is closed history; the choropleth and the panel's counts read it
from ``issue_closed_total`` (one row per block × kind × domain × status: all time, bounded by the
grids, whatever the history) or, for a date window, ``issue_closed_rollup`` (the same per local day
of report: bounded by grids × the window's days) and count only the open issues from ``issue``
itself (the partial index ``issue_open_grid_idx``: bounded by the open work, not by history).

- Kept exact by statement-level triggers on ``issue`` (INSERT, UPDATE, DELETE, with transition
  tables: one grouped upsert per statement, so a bulk load or a change set's set-wise UPDATE costs
  one statement, not one per row). ``gw_closed_rollup_sync`` is SECURITY DEFINER (the app role may
  only read the rollup) and writes with every grid in scope for that statement, then puts the
  caller's scope back, as ``gw_reporter_phone_matches`` does.
- Rows whose counts fall to zero (an issue evaluated, re-opened or moved) stay; every sum ignores them.
- ``late`` counts the closed issues closed after their deadline (超期办结); the rule is
  ``geodata.workflow.filters.overdue_condition`` for closed issues.
- ``day`` is the local day of ``reported_at`` in ``gw_rollup_zone()`` (Asia/Shanghai, the default
  business zone): the map's date filters are whole local days. Another business zone reads ``issue``.
- Row-level security (ENABLE + FORCE) mirrors the grid part of THE visibility rule
  (``geodata/access/visibility.py``) as the issue policy of migration 0010 says it.
  Issues a viewer sees only through the responsibility chain are counted from ``issue``
  (``geodata/maps/rollup.py``).

Revision ID: 0017_map_aggregates
Revises: 0015_assessment_page
Create Date: 2026-12-02 13:00:00
"""
from alembic import op

from geodata.db.migrate import grant_app

revision = '0017_map_aggregates'
down_revision = '0015_assessment_page'
branch_labels = None
depends_on = None

APP_GRANTS = {"issue_closed_rollup": "SELECT", "issue_closed_total": "SELECT"}

KEY = "grid_code, community_code, street_code, kind, domain_code, status"
CLOSED = "('closed', 'evaluated')"
OPEN = "('assigned', 'feedback', 'handling', 'reported', 'signed', 'verified')"
DAY = "(reported_at AT TIME ZONE gw_rollup_zone())::date"
LATE = "(due_at IS NOT NULL AND closed_at > due_at)"

TABLES = f"""
CREATE FUNCTION gw_rollup_zone() RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT 'Asia/Shanghai'::text $$;
CREATE TABLE issue_closed_rollup (
  grid_code varchar(14) NOT NULL, community_code varchar(14) NOT NULL, street_code varchar(14) NOT NULL,
  kind varchar(10) NOT NULL, domain_code varchar(30) NOT NULL, status varchar(20) NOT NULL,
  day date NOT NULL, n integer NOT NULL, late integer NOT NULL,
  PRIMARY KEY ({KEY}, day));
CREATE INDEX issue_closed_rollup_community ON issue_closed_rollup (community_code, day) INCLUDE (n, late);
CREATE INDEX issue_closed_rollup_street ON issue_closed_rollup (street_code, day) INCLUDE (n, late);
CREATE TABLE issue_closed_total (
  grid_code varchar(14) NOT NULL, community_code varchar(14) NOT NULL, street_code varchar(14) NOT NULL,
  kind varchar(10) NOT NULL, domain_code varchar(30) NOT NULL, status varchar(20) NOT NULL,
  n integer NOT NULL, late integer NOT NULL,
  PRIMARY KEY ({KEY}));
CREATE INDEX issue_open_grid_idx ON issue (grid_code) WHERE status IN {OPEN};
"""


def _apply(source: str) -> str:
    """Upserts adding the signed closed rows ``source`` selects to both tables."""
    return f"""
    INSERT INTO issue_closed_rollup AS r ({KEY}, day, n, late)
    SELECT {KEY}, day, sum(s), sum(l) FROM ({source}) d
    GROUP BY {KEY}, day HAVING sum(s) <> 0 OR sum(l) <> 0 ORDER BY {KEY}, day
    ON CONFLICT ({KEY}, day) DO UPDATE SET n = r.n + excluded.n, late = r.late + excluded.late;
    INSERT INTO issue_closed_total AS r ({KEY}, n, late)
    SELECT {KEY}, sum(s), sum(l) FROM ({source}) d
    GROUP BY {KEY} HAVING sum(s) <> 0 OR sum(l) <> 0 ORDER BY {KEY}
    ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + excluded.n, late = r.late + excluded.late;"""


def _rows(table: str, sign: int) -> str:
    return (f"SELECT {KEY}, {DAY} AS day, {sign} AS s, {sign} * {LATE}::int AS l "
            f"FROM {table} WHERE status IN {CLOSED}")


SYNC = f"""
CREATE FUNCTION gw_closed_rollup_sync() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  saved_grids text := current_setting('gridwatch.grids', true);
BEGIN
  PERFORM set_config('gridwatch.grids', '*', true);
  IF TG_OP = 'INSERT' THEN {_apply(_rows('new_rows', 1))}
  ELSIF TG_OP = 'DELETE' THEN {_apply(_rows('old_rows', -1))}
  ELSE {_apply(_rows('new_rows', 1) + ' UNION ALL ' + _rows('old_rows', -1))}
  END IF;
  PERFORM set_config('gridwatch.grids', coalesce(saved_grids, ''), true);
  RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER issue_closed_rollup_ins AFTER INSERT ON issue REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION gw_closed_rollup_sync();
CREATE TRIGGER issue_closed_rollup_upd AFTER UPDATE ON issue REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION gw_closed_rollup_sync();
CREATE TRIGGER issue_closed_rollup_del AFTER DELETE ON issue REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION gw_closed_rollup_sync();
REVOKE ALL ON FUNCTION gw_closed_rollup_sync() FROM PUBLIC;
"""

POLICY = """
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {t} FORCE ROW LEVEL SECURITY;
CREATE POLICY {t}_scope ON {t} USING (
    (SELECT gw_scope_all())
    OR left(grid_code, 9) = ANY ((SELECT gw_scope_prefixes())::text[])
    OR left(grid_code, 12) = ANY ((SELECT gw_scope_prefixes())::text[])
    OR grid_code = ANY ((SELECT gw_scope_prefixes())::text[]));
"""

BACKFILL = f"""
SELECT set_config('gridwatch.grids', '*', true);
{_apply(_rows('issue', 1))}
SELECT set_config('gridwatch.grids', '', true);
"""


def upgrade() -> None:
    op.execute(TABLES)
    op.execute(SYNC)
    for table in APP_GRANTS:
        op.execute(POLICY.format(t=table))
    op.execute(BACKFILL)
    op.execute(TRIGGERS)
    grant_app(APP_GRANTS)


def downgrade() -> None:
    op.execute("DROP TRIGGER issue_closed_rollup_ins ON issue")
    op.execute("DROP TRIGGER issue_closed_rollup_upd ON issue")
    op.execute("DROP TRIGGER issue_closed_rollup_del ON issue")
    op.execute("DROP FUNCTION gw_closed_rollup_sync()")
    op.execute("DROP INDEX issue_open_grid_idx")
    op.execute("DROP TABLE issue_closed_rollup")
    op.execute("DROP TABLE issue_closed_total")
    op.execute("DROP FUNCTION gw_rollup_zone()")
