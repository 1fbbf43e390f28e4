"""the issue search takes the same older rows for the same text every time; pg_trgm dropped

**The same rows every call.** ``gw_issue_search`` (migration 0022) takes at most ``4 × cap`` rows of
``issue_search`` holding the text's grams, in whatever order the scan meets them. For a frequent
gram the planner reads the table in order (a sequential scan stopping at the limit), and
PostgreSQL's synchronised scans start a sequential scan of a table larger than a quarter of
``shared_buffers`` where the last one stopped: at 10⁶ issues (512 MB of ``issue_search``, 256 MB of
buffers) four calls of ``gw_issue_search('垃圾', …, 500)`` in a row gave four different sets of
500. The API's ``q`` (``GET /api/v1/issues?q=``, the same match: ``geodata.workflow.text_search``)
counts and pages that set in two statements and across requests, so its total and its pages did
not fit together. The function now runs with ``synchronize_seqscans = off`` and
``max_parallel_workers_per_gather = 0`` (a parallel scan's order is not fixed either): which rows
are taken depends on the text and the table only. Its body is 0022's.

**pg_trgm** is used by nothing any more: its two indexes on ``issue`` (migration 0004) were dropped
by 0020 (no query could use them under FORCE row-level security), and the search keeps its own
grams (0022). It is dropped here and no longer created by ``gridwatch db up`` nor in the DBA's
setup (``geodata.db.roles``); the downgrade makes it again (0020's downgrade needs it for the
indexes). A database where a superuser created it (``gridwatch db up`` did, until this revision;
the DBA's setup too) cannot have it dropped by the owner, who runs the migrations: it is left, with
a notice, and ``gridwatch db up`` (as the superuser) drops it once nothing depends on it
(``geodata.db.roles.prepare_database``); on an existing PostGIS a DBA may ``DROP EXTENSION
pg_trgm``. Migration 0004 still creates it for its indexes on a new database — as the owner, since
pg_trgm is a trusted extension.

Revision ID: 0024_search_stable_no_trgm
Revises: 0023_issue_cell
Create Date: 2026-12-03 18:30:00
"""
from alembic import op

revision = '0024_search_stable_no_trgm'
down_revision = '0023_issue_cell'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

SEARCH_FN = "gw_issue_search(text, timestamptz, integer)"
#: the settings the search runs with: a scan whose order is the table's, whoever else scans it
STABLE_SCAN = {"synchronize_seqscans": "off", "max_parallel_workers_per_gather": "0"}

DROP_TRGM = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm' AND pg_has_role(extowner, 'USAGE')) THEN
    DROP EXTENSION pg_trgm;   -- not CASCADE: an object of someone's that uses it stops the migration
  ELSIF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    RAISE NOTICE 'pg_trgm is no longer used by gridwatch but belongs to %: a superuser may DROP EXTENSION pg_trgm',
      (SELECT extowner::regrole FROM pg_extension WHERE extname = 'pg_trgm');
  END IF;
END $$;
"""


def upgrade() -> None:
    for name, value in STABLE_SCAN.items():
        op.execute(f"ALTER FUNCTION {SEARCH_FN} SET {name} = {value}")
    op.execute(DROP_TRGM)


def downgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name in STABLE_SCAN:
        op.execute(f"ALTER FUNCTION {SEARCH_FN} RESET {name}")
