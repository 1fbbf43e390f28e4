"""the reporter's own 综合评价: a key returned with the report (stored hashed), or the phone they gave

- ``issue_evaluation_key``: one per reported issue, the SHA-256 of a random key handed to the
  reporter once (the API's report answer, Open311's ``token``); the app role may insert and read
  hashes only.
- ``gw_reporter_phone_matches(issue, phone)``: whether ``phone`` is the number the reporter gave
  (digits compared). The reporter's phone is personal data under row-level security; the function
  looks for this one query and returns a yes or no, never the number.

Revision ID: 0011_evaluation_keys
Revises: 0010_scope_by_code
Create Date: 2026-12-02 16:00:00
"""
import sqlalchemy as sa
from alembic import op

from geodata.db.migrate import grant_app

revision = '0011_evaluation_keys'
down_revision = '0010_scope_by_code'
branch_labels = None
depends_on = None

APP_GRANTS = {"issue_evaluation_key": "SELECT, INSERT"}

PHONE_CHECK = r"""
CREATE FUNCTION gw_reporter_phone_matches(p_issue bigint, p_phone text) RETURNS boolean LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  saved_grids text := current_setting('gridwatch.grids', true);
  saved_personal text := current_setting('gridwatch.personal', true);
  wanted text := regexp_replace(coalesce(p_phone, ''), '\D', '', 'g');
  found boolean;
BEGIN
  IF length(wanted) < 7 THEN RETURN false; END IF;
  PERFORM set_config('gridwatch.grids', '*', true);
  PERFORM set_config('gridwatch.personal', 'on', true);
  SELECT EXISTS (SELECT 1 FROM public.issue_reporter r WHERE r.issue_id = p_issue
                 AND regexp_replace(coalesce(r.phone, ''), '\D', '', 'g') = wanted) INTO found;
  PERFORM set_config('gridwatch.grids', coalesce(saved_grids, ''), true);
  PERFORM set_config('gridwatch.personal', coalesce(saved_personal, ''), true);
  RETURN found;
END $$;
REVOKE ALL ON FUNCTION gw_reporter_phone_matches(bigint, text) FROM PUBLIC;
"""


def upgrade() -> None:
    op.create_table(
        'issue_evaluation_key',
        sa.Column('issue_id', sa.BigInteger(), sa.ForeignKey('issue.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('key_hash', sa.String(64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute(PHONE_CHECK)
    grant_app(APP_GRANTS, functions=("gw_reporter_phone_matches(bigint, text)",))


def downgrade() -> None:
    op.execute("DROP FUNCTION gw_reporter_phone_matches(bigint, text)")
    op.drop_table('issue_evaluation_key')
