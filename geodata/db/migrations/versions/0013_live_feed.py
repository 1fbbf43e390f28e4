"""the wall's live feed: every committed batch of workflow events sends one NOTIFY

- ``gw_notify_events()``: a statement-level AFTER INSERT trigger on ``issue_event`` (transition
  table ``new_rows``) that calls ``pg_notify('gridwatch_events', <the batch's highest event id>)``.
  PostgreSQL delivers a notification only when the inserting transaction commits — a rolled-back
  report or transition sends nothing — and in commit order. The payload is only an id: listeners
  read the rows themselves, under their own scope (row-level security), from the append-only table.
  One notification per statement, not per row, so the demo loader's bulk inserts stay cheap.

Revision ID: 0013_live_feed
Revises: 0012_contact_scope
Create Date: 2026-12-02 13:00:00
"""
from alembic import op

from geodata.db.migrate import grant_app

revision = '0013_live_feed'
down_revision = '0012_contact_scope'
branch_labels = None
depends_on = None

#: no new table: the app role already inserts into and reads issue_event
APP_GRANTS: dict[str, str] = {}

NOTIFY = r"""
CREATE FUNCTION gw_notify_events() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, public AS $$
DECLARE
  top bigint;
BEGIN
  SELECT max(id) INTO top FROM new_rows;
  IF top IS NOT NULL THEN
    PERFORM pg_notify('gridwatch_events', top::text);
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(NOTIFY)
    op.execute("CREATE TRIGGER issue_event_notify AFTER INSERT ON issue_event "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gw_notify_events()")
    grant_app(APP_GRANTS)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS issue_event_notify ON issue_event")
    op.execute("DROP FUNCTION IF EXISTS gw_notify_events()")
