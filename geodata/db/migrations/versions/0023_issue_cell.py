"""an issue's map cell stored with it, indexed (issue #11: the map's box queries at 10⁶ under RLS)

``issue`` has FORCE ROW LEVEL SECURITY, and below a policy PostgreSQL takes a condition as an index
condition only if its operator is LEAKPROOF: PostGIS's ``&&`` is not, so the GiST index on
``location`` never served a box (migration 0020 dropped it) and every "issues in this box" read —
the markers of a small view, a heat tile finer than a cell (z ≥ 17), the API's ``bbox`` — scanned
the whole table: ≈ 1 s at 10⁶ issues.

``cell_x`` / ``cell_y``: the issue's map cell (``geodata.geometry.square_of``, the cells of
migration 0021), generated from ``location`` (PostgreSQL recomputes them only when ``location`` is
set: a change set's re-assignment does not), and a btree ``issue_cell_idx`` on both. A box is a
range of cells (integer comparisons: leakproof), then ``&&`` on the rows in it
(``geodata.workflow.filters.bbox_condition``).

The rollups' trigger function and their rebuild (0021) read the stored cell instead of computing
it: one definition of an issue's cell.

Revision ID: 0023_issue_cell
Revises: 0022_issue_search
Create Date: 2026-12-03 15:40:00
"""
import importlib

from alembic import op

revision = '0023_issue_cell'
down_revision = '0022_issue_search'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

_m21 = importlib.import_module("geodata.db.migrations.versions.0021_map_cells")


def upgrade() -> None:
    cx, cy = _m21.CELL_EXPR
    op.execute(f"ALTER TABLE issue ADD COLUMN cell_x integer GENERATED ALWAYS AS ({cx}) STORED, "
               f"ADD COLUMN cell_y integer GENERATED ALWAYS AS ({cy}) STORED")
    op.execute("CREATE INDEX issue_cell_idx ON issue (cell_x, cell_y)")
    op.execute(_m21.sync_sql(("cell_x", "cell_y")))
    op.execute(_m21.rebuild_sql(("cell_x", "cell_y")))


def downgrade() -> None:
    op.execute(_m21.sync_sql())
    op.execute(_m21.rebuild_sql())
    op.execute("DROP INDEX issue_cell_idx")
    op.execute("ALTER TABLE issue DROP COLUMN cell_x, DROP COLUMN cell_y")
