"""assessment (考核): rule versions, qualitative scores, score snapshots, issued bulletins

Rules, runs, scores and bulletins are never changed once written (a trigger refuses UPDATE and
DELETE): a new 考核办法 is a new rule version, and a past period's scores stay as computed.
Qualitative scores may be corrected until a run uses them (the run keeps the value it used).

Revision ID: 0007_assessment
Revises: 0008_changesets
Create Date: 2026-12-02 10:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from geodata.db.migrate import grant_app

revision = '0007_assessment'
down_revision = '0008_changesets'
branch_labels = None
depends_on = None

FROZEN = ("assessment_rule", "assessment_run", "assessment_score", "assessment_bulletin")
#: What the web server (the assessment page) may do: read, enter 定性 scores (corrected until a run
#: uses them), run an assessment, issue a bulletin; added to migration 0005's.
APP_GRANTS = {
    "assessment_rule": "SELECT, INSERT",
    "assessment_qualitative": "SELECT, INSERT, UPDATE",
    "assessment_run": "SELECT, INSERT",
    "assessment_score": "SELECT, INSERT",
    "assessment_bulletin": "SELECT, INSERT",
}
APP_SEQUENCES = ("assessment_rule_id_seq", "assessment_qualitative_id_seq", "assessment_run_id_seq",
                 "assessment_score_id_seq", "assessment_bulletin_id_seq")
TSTZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'assessment_rule',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(100), nullable=False),
        sa.Column('config', postgresql.JSONB(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False, server_default=''),
        sa.Column('created_by', sa.Integer(), sa.ForeignKey('official.id')),
        sa.Column('created_at', TSTZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        'assessment_qualitative',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('period_key', sa.String(30), nullable=False),
        sa.Column('subject_kind', sa.String(10), nullable=False),
        sa.Column('subject_key', sa.String(14), nullable=False),
        sa.Column('assessor_id', sa.Integer(), sa.ForeignKey('official.id'), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.Column('entered_at', TSTZ, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint('score >= 0 AND score <= 100', name='qualitative_score_range'),
        sa.CheckConstraint("subject_kind IN ('grid', 'official')", name='qualitative_subject_kind'),
        sa.CheckConstraint('length(btrim(comment)) > 0', name='qualitative_comment'),
        sa.UniqueConstraint('period_key', 'subject_kind', 'subject_key', 'assessor_id', name='qualitative_once'),
    )
    op.create_table(
        'assessment_run',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('period_key', sa.String(30), nullable=False),
        sa.Column('by_key', sa.String(40), nullable=False),
        sa.Column('within', sa.String(14)),
        sa.Column('scope_roots', postgresql.JSONB()),
        sa.Column('rule_id', sa.Integer(), sa.ForeignKey('assessment_rule.id'), nullable=False),
        sa.Column('as_of', TSTZ, nullable=False),
        sa.Column('tz', sa.String(64), nullable=False),
        sa.Column('computed_at', TSTZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index('assessment_run_period_idx', 'assessment_run', ['period_key', 'by_key'])
    op.create_table(
        'assessment_score',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('run_id', sa.BigInteger(), sa.ForeignKey('assessment_run.id'), nullable=False),
        sa.Column('subject_key', sa.String(14), nullable=False),
        sa.Column('subject_name', sa.String(100), nullable=False),
        sa.Column('indicators', postgresql.JSONB(), nullable=False),
        sa.Column('breakdown', postgresql.JSONB(), nullable=False),
        sa.Column('quantitative', sa.Float(), nullable=False),
        sa.Column('qualitative', sa.Float()),
        sa.Column('final', sa.Float(), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('excellent', sa.Boolean(), nullable=False),
        sa.Column('named', sa.Boolean(), nullable=False),
        sa.Column('reasons', postgresql.JSONB(), nullable=False),
        sa.UniqueConstraint('run_id', 'subject_key', name='assessment_score_once'),
    )
    op.create_table(
        'assessment_bulletin',
        sa.Column('id', sa.BigInteger(), primary_key=True),
        sa.Column('period_key', sa.String(30), nullable=False),
        sa.Column('level', sa.SmallInteger(), nullable=False),
        sa.Column('rule_id', sa.Integer(), sa.ForeignKey('assessment_rule.id'), nullable=False),
        sa.Column('as_of', TSTZ, nullable=False),
        sa.Column('run_ids', postgresql.JSONB(), nullable=False),
        sa.Column('pdf', sa.LargeBinary(), nullable=False),
        sa.Column('xlsx', sa.LargeBinary(), nullable=False),
        sa.Column('pdf_sha256', sa.String(64), nullable=False),
        sa.Column('xlsx_sha256', sa.String(64), nullable=False),
        sa.Column('issued_at', TSTZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index('assessment_bulletin_period_idx', 'assessment_bulletin', ['period_key', 'level'])
    op.execute("""
CREATE FUNCTION assessment_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% 已生成的考核记录不能修改或删除 / % is never changed once written (% refused)',
    TG_TABLE_NAME, TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;""")
    for table in FROZEN:
        op.execute(f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION assessment_frozen()")
    grant_app(APP_GRANTS, APP_SEQUENCES)


def downgrade() -> None:
    for table in ('assessment_bulletin', 'assessment_score', 'assessment_run', 'assessment_qualitative',
                  'assessment_rule'):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS assessment_frozen()")
