"""closed issues per map cell: the markers and the heat map at any history size (issue #11)

Migration 0017 made the choropleth's counts independent of history; the map's markers over all
time, its heat tiles and its heat scale still read every closed issue in view (at 10⁶ issues:
2.2 s, 2.5 s and 2.5 s). ``issue_closed_cell`` counts closed issues per block × kind × domain ×
status × **map cell**, the same key as ``issue_closed_total`` plus the cell:

- a cell is a square of the Web-Mercator plane, 2²² to the world's side (``CELL_M`` ≈ 9.55 Mercator
  metres, ≈ 7.8 m on the ground in Zhengzhou): ``cx = floor((x + ORIGIN) / CELL_M)``, ``cy =
  floor((ORIGIN − y) / CELL_M)`` (rows downwards, as tiles count them). A heat cell (4 px) at zoom
  z ≤ 16 is exactly 2^(16−z) × 2^(16−z) of these cells, so the heat of closed issues read from here
  is the heat read from every row, number for number (``geodata/maps/cells.py``; tested);
- ``n`` / ``late`` as in 0017 (closed, closed after the deadline), and the sums of longitude and
  latitude of those issues (``sx``, ``sy``; of the late ones ``lx``, ``ly``), so an aggregate marker
  sits at the mean position of its issues as before;
- bounded by the cells issues occupy × kinds × domains × statuses, whatever the history.

The three rollups are kept by **one** statement-level trigger function now: the signed closed rows
of the statement's transition tables are read once (a materialised CTE) and upserted into each
table (0017 read them twice). A change set's re-assignment of 10⁵ open issues still scans its
transition tables once, finding no closed row.

``gw_closed_rollups_rebuild()`` recomputes the three tables from ``issue`` (the owner's, for bulk
loads that disable the triggers): the same statements over every issue instead of a transition
table — one definition of a rollup row.

Row-level security as the other rollups' (0019's rule on the stored codes).

Revision ID: 0021_map_cells
Revises: 0020_issue_indexes
Create Date: 2026-12-03 15:00:00
"""
import importlib

from alembic import op

from geodata.db.migrate import grant_app

revision = '0021_map_cells'
down_revision = '0020_issue_indexes'
branch_labels = None
depends_on = None

_m17 = importlib.import_module("geodata.db.migrations.versions.0017_map_aggregates")
_m19 = importlib.import_module("geodata.db.migrations.versions.0019_rls_code_columns")
KEY, CLOSED, DAY, LATE = _m17.KEY, _m17.CLOSED, _m17.DAY, _m17.LATE

APP_GRANTS = {"issue_closed_cell": "SELECT"}

#: half the Web-Mercator world's side (m), and the cell's side: 2²² cells to the world
ORIGIN = 20037508.342789244
CELL_LEVEL = 22
CELL_M = 2 * ORIGIN / 2 ** CELL_LEVEL

TABLE = f"""
CREATE TABLE issue_closed_cell (
  grid_code varchar(14) NOT NULL, community_code varchar(14) NOT NULL, street_code varchar(14) NOT NULL,
  kind varchar(10) NOT NULL, domain_code varchar(30) NOT NULL, status varchar(20) NOT NULL,
  cx integer NOT NULL, cy integer NOT NULL,
  n integer NOT NULL, late integer NOT NULL,
  sx double precision NOT NULL, sy double precision NOT NULL,
  lx double precision NOT NULL, ly double precision NOT NULL,
  PRIMARY KEY ({KEY}, cx, cy),
  CONSTRAINT issue_closed_cell_codes_of_block
    CHECK (community_code = left(grid_code, 12) || '00' AND street_code = left(grid_code, 9) || '00000'));
CREATE INDEX issue_closed_cell_xy ON issue_closed_cell (cx, cy);
ALTER TABLE issue_closed_cell ENABLE ROW LEVEL SECURITY;
ALTER TABLE issue_closed_cell FORCE ROW LEVEL SECURITY;
CREATE POLICY issue_closed_cell_scope ON issue_closed_cell USING {_m19.ROLLUP_VISIBLE};
"""


#: a row's cell, computed from its location here (migration 0023 stores it: ``issue.cell_x``/``cell_y``)
CELL_EXPR = (f"floor((ST_X(ST_Transform(location, 3857)) + {ORIGIN!r}) / {CELL_M!r})::int",
             f"floor(({ORIGIN!r} - ST_Y(ST_Transform(location, 3857))) / {CELL_M!r})::int")


def _rows(table: str, sign: int, cell: tuple[str, str] = CELL_EXPR) -> str:
    """The signed closed rows of ``table`` (a transition table, or ``issue``) with their day and cell."""
    return (f"SELECT {KEY}, {DAY} AS day, {cell[0]} AS cx, {cell[1]} AS cy, "
            f"ST_X(location) AS x, ST_Y(location) AS y, {sign} AS s, {sign} * {LATE}::int AS l "
            f"FROM {table} WHERE status IN {CLOSED}")


def _apply(source: str) -> str:
    """One statement adding the signed rows ``source`` selects to the three rollups."""
    return f"""
    WITH d AS MATERIALIZED ({source}),
    r AS (INSERT INTO issue_closed_rollup AS r ({KEY}, day, n, late)
          SELECT {KEY}, day, sum(s), sum(l) FROM d
          GROUP BY {KEY}, day HAVING sum(s) <> 0 OR sum(l) <> 0 ORDER BY {KEY}, day
          ON CONFLICT ({KEY}, day) DO UPDATE SET n = r.n + excluded.n, late = r.late + excluded.late),
    t AS (INSERT INTO issue_closed_total AS r ({KEY}, n, late)
          SELECT {KEY}, sum(s), sum(l) FROM d
          GROUP BY {KEY} HAVING sum(s) <> 0 OR sum(l) <> 0 ORDER BY {KEY}
          ON CONFLICT ({KEY}) DO UPDATE SET n = r.n + excluded.n, late = r.late + excluded.late)
    INSERT INTO issue_closed_cell AS r ({KEY}, cx, cy, n, late, sx, sy, lx, ly)
    SELECT {KEY}, cx, cy, sum(s), sum(l), sum(s * x), sum(s * y), sum(l * x), sum(l * y) FROM d
    GROUP BY {KEY}, cx, cy HAVING sum(s) <> 0 OR sum(l) <> 0 ORDER BY {KEY}, cx, cy
    ON CONFLICT ({KEY}, cx, cy) DO UPDATE SET n = r.n + excluded.n, late = r.late + excluded.late,
      sx = r.sx + excluded.sx, sy = r.sy + excluded.sy, lx = r.lx + excluded.lx, ly = r.ly + excluded.ly;"""


def sync_sql(cell: tuple[str, str] = CELL_EXPR) -> str:
    return f"""
CREATE OR REPLACE FUNCTION gw_closed_rollup_sync() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  saved_grids text := current_setting('gridwatch.grids', true);
BEGIN
  PERFORM set_config('gridwatch.grids', '*', true);
  IF TG_OP = 'INSERT' THEN {_apply(_rows('new_rows', 1, cell))}
  ELSIF TG_OP = 'DELETE' THEN {_apply(_rows('old_rows', -1, cell))}
  ELSE {_apply(_rows('new_rows', 1, cell) + ' UNION ALL ' + _rows('old_rows', -1, cell))}
  END IF;
  PERFORM set_config('gridwatch.grids', coalesce(saved_grids, ''), true);
  RETURN NULL;
END $$;
"""


def rebuild_sql(cell: tuple[str, str] = CELL_EXPR) -> str:
    return f"""
CREATE OR REPLACE FUNCTION gw_closed_rollups_rebuild() RETURNS void LANGUAGE plpgsql
  SET search_path = pg_catalog, public AS $$
DECLARE
  saved_grids text := current_setting('gridwatch.grids', true);
BEGIN
  PERFORM set_config('gridwatch.grids', '*', true);
  DELETE FROM issue_closed_rollup;
  DELETE FROM issue_closed_total;
  DELETE FROM issue_closed_cell;
  {_apply(_rows('issue', 1, cell))}
  PERFORM set_config('gridwatch.grids', coalesce(saved_grids, ''), true);
END $$;
REVOKE ALL ON FUNCTION gw_closed_rollups_rebuild() FROM PUBLIC;
"""


def upgrade() -> None:
    op.execute(TABLE)
    op.execute(sync_sql())
    op.execute(rebuild_sql())
    op.execute("SELECT gw_closed_rollups_rebuild()")
    grant_app(APP_GRANTS)


def downgrade() -> None:
    op.execute(_m17.SYNC.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
    op.execute("DROP FUNCTION gw_closed_rollups_rebuild()")
    op.execute("DROP TABLE issue_closed_cell")
