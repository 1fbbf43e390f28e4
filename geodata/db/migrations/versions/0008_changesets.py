"""boundary change sets: proposals (drafts), append-only change sets, re-assigned issues, used codes

- ``grid_proposal`` / ``grid_proposal_item``: a planner's draft, editable until applied;
- ``grid_change_set`` / ``grid_change_item`` / ``grid_change_run`` / ``grid_issue_move``: what was
  applied, append-only (a trigger refuses UPDATE, DELETE and TRUNCATE);
- ``grid_code_used``: every grid code ever used, kept by the trigger ``grid_code_not_reused`` on
  ``grid``, which also refuses a new version of a retired code unless it restores the very boundary
  the code had (a revert) — a retired code is never reused for another area.

Revision ID: 0008_changesets
Revises: 0004
Create Date: 2026-12-01 10:00:00
"""
import sqlalchemy as sa
from alembic import op

from geodata.db.migrate import grant_app
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0008_changesets'
down_revision = '0005'
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("grid_change_set", "grid_change_item", "grid_change_run", "grid_issue_move")
#: What the web server (the planners' API) may do with these tables; added to migration 0005's.
APP_GRANTS = {
    "grid": "SELECT, INSERT, UPDATE",                # a change set closes versions and opens new ones
    "grid_assignment": "SELECT, INSERT, UPDATE",     # a moved grid's officials pass to its new code
    "grid_proposal": "SELECT, INSERT, UPDATE",
    "grid_proposal_item": "SELECT, INSERT, DELETE",  # a draft's edits are replaced whole
    "grid_change_set": "SELECT, INSERT",             # append-only
    "grid_change_item": "SELECT, INSERT",
    "grid_change_run": "SELECT, INSERT",
    "grid_issue_move": "SELECT, INSERT",
    "grid_code_used": "SELECT, INSERT",              # the trigger records every new code
}
APP_SEQUENCES = ("grid_id_seq", "grid_assignment_id_seq")   # serial ids of the tables it inserts into

FUNCTIONS = """
CREATE FUNCTION grid_change_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% 只能追加，不能修改或删除 / % is append-only (% refused)', TG_TABLE_NAME, TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION grid_code_not_reused() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last_to timestamptz;
  last_geom geometry;
BEGIN
  INSERT INTO grid_code_used (code, first_valid_from) VALUES (NEW.code, NEW.valid_from)
    ON CONFLICT (code) DO NOTHING;
  IF FOUND THEN
    RETURN NEW;  -- a code never used before
  END IF;
  SELECT g.valid_to, g.geom INTO last_to, last_geom FROM grid g
    WHERE g.code = NEW.code AND g.valid_from < NEW.valid_from ORDER BY g.valid_from DESC LIMIT 1;
  IF NOT FOUND THEN
    IF EXISTS (SELECT 1 FROM grid g WHERE g.code = NEW.code) THEN
      RETURN NEW;  -- an earlier version of a code in use (history written afterwards)
    END IF;
  ELSIF last_to IS NULL OR last_to >= NEW.valid_from OR ST_Equals(last_geom, NEW.geom) THEN
    RETURN NEW;  -- the next version of a grid in use, or a retired grid restored as it was
  END IF;
  RAISE EXCEPTION '网格编码 % 已撤销，不能再用于其他范围 / grid code % was retired and is never reused', NEW.code, NEW.code
    USING ERRCODE = 'unique_violation', CONSTRAINT = 'grid_code_not_reused';
END $$;
"""


def upgrade() -> None:
    op.create_table(
        'grid_proposal',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('status', sa.String(length=10), server_default='draft', nullable=False),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('author', sa.String(length=100), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('effective_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('source', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'applied', 'discarded')", name='grid_proposal_status'),
        sa.ForeignKeyConstraint(['author_id'], ['official.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_table(
        'grid_proposal_item',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('proposal_id', sa.BigInteger(), nullable=False),
        sa.Column('code', sa.String(length=14), nullable=False),
        sa.Column('level', sa.SmallInteger(), nullable=False),
        sa.Column('parent_code', sa.String(length=14), nullable=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('name_en', sa.String(length=200), nullable=True),
        sa.Column('geom', Geometry('MULTIPOLYGON', srid=4326, spatial_index=False), nullable=True),
        sa.Column('base_version_id', sa.Integer(), nullable=True),
        sa.Column('predecessor', sa.String(length=14), nullable=True),
        sa.ForeignKeyConstraint(['proposal_id'], ['grid_proposal.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('proposal_id', 'code', name='grid_proposal_item_code'))
    op.create_table(
        'grid_change_set',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('proposal_id', sa.BigInteger(), nullable=True),
        sa.Column('reverts_id', sa.BigInteger(), nullable=True),
        sa.Column('author_id', sa.Integer(), nullable=True),
        sa.Column('author', sa.String(length=100), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('applied_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.ForeignKeyConstraint(['proposal_id'], ['grid_proposal.id']),
        sa.ForeignKeyConstraint(['reverts_id'], ['grid_change_set.id']),
        sa.ForeignKeyConstraint(['author_id'], ['official.id']),
        sa.PrimaryKeyConstraint('id'))
    op.create_table(
        'grid_change_item',
        sa.Column('change_set_id', sa.BigInteger(), nullable=False),
        sa.Column('code', sa.String(length=14), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('old_version_id', sa.Integer(), nullable=True),
        sa.Column('new_version_id', sa.Integer(), nullable=True),
        sa.Column('predecessor', sa.String(length=14), nullable=True),
        sa.CheckConstraint("kind IN ('created', 'changed', 'retired')", name='grid_change_item_kind'),
        sa.ForeignKeyConstraint(['change_set_id'], ['grid_change_set.id']),
        sa.ForeignKeyConstraint(['old_version_id'], ['grid.id']),
        sa.ForeignKeyConstraint(['new_version_id'], ['grid.id']),
        sa.PrimaryKeyConstraint('change_set_id', 'code'))
    op.create_index('grid_change_item_old_idx', 'grid_change_item', ['old_version_id'])
    op.create_index('grid_change_item_code_idx', 'grid_change_item', ['code'])
    op.create_table(
        'grid_change_run',
        sa.Column('change_set_id', sa.BigInteger(), nullable=False),
        sa.Column('ran_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('issues_moved', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['change_set_id'], ['grid_change_set.id']),
        sa.PrimaryKeyConstraint('change_set_id'))
    op.create_table(
        'grid_issue_move',
        sa.Column('change_set_id', sa.BigInteger(), nullable=False),
        sa.Column('old_grid_code', sa.String(length=14), nullable=False),
        sa.Column('new_grid_code', sa.String(length=14), nullable=False),
        sa.Column('issue_ids', postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.ForeignKeyConstraint(['change_set_id'], ['grid_change_set.id']),
        sa.PrimaryKeyConstraint('change_set_id', 'old_grid_code', 'new_grid_code'))
    op.create_table(
        'grid_code_used',
        sa.Column('code', sa.String(length=14), nullable=False),
        sa.Column('first_valid_from', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code'))
    op.execute("INSERT INTO grid_code_used (code, first_valid_from) "
               "SELECT code, min(valid_from) FROM grid GROUP BY code")
    op.execute(FUNCTIONS)
    op.execute("CREATE TRIGGER grid_code_not_reused BEFORE INSERT ON grid "
               "FOR EACH ROW EXECUTE FUNCTION grid_code_not_reused()")
    for t in APPEND_ONLY_TABLES:
        op.execute(f"CREATE TRIGGER {t}_no_update BEFORE UPDATE OR DELETE ON {t} "
                   f"FOR EACH ROW EXECUTE FUNCTION grid_change_append_only()")
        op.execute(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION grid_change_append_only()")
    grant_app(APP_GRANTS, APP_SEQUENCES)


def downgrade() -> None:
    op.execute("DROP TRIGGER grid_code_not_reused ON grid")
    for t in ("grid_issue_move", "grid_change_run", "grid_change_item", "grid_change_set", "grid_code_used",
              "grid_proposal_item", "grid_proposal"):
        op.drop_table(t)
    op.execute("DROP FUNCTION grid_code_not_reused()")
    op.execute("DROP FUNCTION grid_change_append_only()")
