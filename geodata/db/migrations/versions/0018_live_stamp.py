"""the live stamp in constant time

``gw_change_stamp()`` (migration 0005) counted every issue (``count(i.id)``: an index-only scan of
the whole table, ≈ 0.8 s at 10⁶ issues, on every live poll of every viewer). It now reads only
O(1)/O(log n) facts: the largest issue id and issue event id (one backward index probe each) and
the table's insert, update and delete counters (PostgreSQL's statistics; they move within about a
second of a commit). A new, changed or removed issue still moves the stamp: an insert raises the
largest id and the insert counter, an update the update counter (and a workflow step appends an
event), a delete the delete counter. Still SECURITY DEFINER over every issue, still an md5: it
tells nothing but "something changed".

Revision ID: 0018_live_stamp
Revises: 0017_map_aggregates
Create Date: 2026-12-03 13:00:00
"""
from alembic import op

revision = '0018_live_stamp'
down_revision = '0017_map_aggregates'
branch_labels = None
depends_on = None

BODY = """
CREATE OR REPLACE FUNCTION gw_change_stamp() RETURNS text LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
DECLARE
  saved text := current_setting('gridwatch.grids', true);
  stamp text;
BEGIN
  PERFORM set_config('gridwatch.grids', '*', true);
  SELECT concat_ws('|', {issue_part},
                   (SELECT coalesce(max(e.id), 0) FROM public.issue_event e),
                   (SELECT {counters} FROM pg_stat_user_tables WHERE relid = 'public.issue'::regclass))
    INTO stamp{from_issue};
  PERFORM set_config('gridwatch.grids', coalesce(saved, ''), true);
  RETURN md5(stamp);
END $$;
"""

NEW = BODY.format(issue_part="(SELECT coalesce(max(i.id), 0) FROM public.issue i)",
                  counters="coalesce(n_tup_ins, 0) + coalesce(n_tup_upd, 0) + coalesce(n_tup_del, 0)",
                  from_issue="")
OLD = BODY.format(issue_part="count(i.id), coalesce(max(i.id), 0)",
                  counters="coalesce(n_tup_upd, 0) + coalesce(n_tup_del, 0)", from_issue=" FROM public.issue i")


def upgrade() -> None:
    op.execute(NEW)


def downgrade() -> None:
    op.execute(OLD)
