"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 18:09:23.393581
"""
from alembic import op
import sqlalchemy as sa
import geoalchemy2
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


DOMAINS = [
    # code, name_zh, name_en, sign_hours, handle_days, sentiment_handle_days, sort
    ("safety", "安全生产", "Work safety", 1, 3, 5, 1),
    ("sanitation", "环境卫生", "Environmental sanitation", 2, 2, 5, 2),
    ("city_order", "市容秩序", "City appearance and order", 2, 3, 5, 3),
    ("disputes", "矛盾纠纷", "Disputes and conflicts", 2, 7, 10, 4),
    ("public_security", "治安防控", "Public security", 1, 3, 5, 5),
    ("livelihood", "民生服务", "Livelihood services", 4, 5, 7, 6),
    ("illegal_building", "违法建设", "Illegal construction", 4, 10, 15, 7),
]

APPEND_ONLY = """
CREATE FUNCTION issue_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'issue_event 只能追加，不能修改或删除 / issue_event is append-only (% refused)', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER issue_event_no_update BEFORE UPDATE OR DELETE ON issue_event
  FOR EACH ROW EXECUTE FUNCTION issue_event_append_only();
CREATE TRIGGER issue_event_no_truncate BEFORE TRUNCATE ON issue_event
  FOR EACH STATEMENT EXECUTE FUNCTION issue_event_append_only();
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table('domain',
    sa.Column('code', sa.String(length=30), nullable=False),
    sa.Column('name_zh', sa.String(length=30), nullable=False),
    sa.Column('name_en', sa.String(length=60), nullable=False),
    sa.Column('sign_hours', sa.Integer(), nullable=False),
    sa.Column('handle_days', sa.Integer(), nullable=False),
    sa.Column('sentiment_handle_days', sa.Integer(), nullable=False),
    sa.Column('sort', sa.SmallInteger(), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.PrimaryKeyConstraint('code')
    )
    op.create_table('grid',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=14), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('parent_code', sa.String(length=14), nullable=True),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=True),
    sa.Column('geom', geoalchemy2.types.Geometry(geometry_type='MULTIPOLYGON', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('area_m2', sa.Float(), nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("(level = 1 AND substr(code, 10) = '00000') OR (level = 2 AND substr(code, 13) = '00' AND substr(code, 10, 3) <> '000') OR (level = 3 AND substr(code, 13) <> '00')", name='grid_code_level'),
    sa.CheckConstraint("code ~ '^\\d{14}$'", name='grid_code_format'),
    sa.CheckConstraint('(level = 1) = (parent_code IS NULL)', name='grid_parent_by_level'),
    sa.CheckConstraint('ST_IsValid(geom)', name='grid_geom_valid'),
    sa.CheckConstraint('level BETWEEN 1 AND 3', name='grid_level_range'),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name='grid_validity_order'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('grid_current_code_uq', 'grid', ['code'], unique=True, postgresql_where=sa.text('valid_to IS NULL'))
    op.create_index('grid_geom_gist', 'grid', ['geom'], unique=False, postgresql_using='gist')
    op.create_index('grid_parent_idx', 'grid', ['parent_code'], unique=False)
    # two versions of one grid code may never be valid at the same time
    op.execute("ALTER TABLE grid ADD CONSTRAINT grid_versions_no_overlap EXCLUDE USING gist "
               "(code WITH =, tstzrange(valid_from, valid_to) WITH &&)")
    op.create_table('idempotency_key',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.SmallInteger(), nullable=False),
    sa.Column('response', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('official',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('unit', sa.String(length=100), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('activity',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('grid_code', sa.String(length=14), nullable=False),
    sa.Column('category', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('held_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('participants', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('official_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("category IN ('talk', 'visit', 'clinic')", name='activity_category'),
    sa.ForeignKeyConstraint(['official_id'], ['official.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('grid_assignment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('official_id', sa.Integer(), nullable=False),
    sa.Column('grid_code', sa.String(length=14), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('title', sa.String(length=50), nullable=False),
    sa.Column('rank', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('valid_from', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('valid_to', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('first_responsible', 'direct_responsible', 'sunk_member', 'platform_maintainer', 'grid_leader', 'operator')", name='assignment_role'),
    sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name='assignment_validity_order'),
    sa.ForeignKeyConstraint(['official_id'], ['official.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('assignment_grid_idx', 'grid_assignment', ['grid_code'], unique=False)
    op.create_index('assignment_official_idx', 'grid_assignment', ['official_id'], unique=False)
    op.create_table('issue',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('domain_code', sa.String(length=30), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('location', geoalchemy2.types.Geometry(geometry_type='POINT', srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('grid_code', sa.String(length=14), nullable=False),
    sa.Column('community_code', sa.String(length=14), nullable=False),
    sa.Column('leader_in_charge_id', sa.Integer(), nullable=True),
    sa.Column('responsible_id', sa.Integer(), nullable=True),
    sa.Column('grid_leader_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('worksheet', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'[]'::jsonb"), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sign_deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('signed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rework_count', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('reassign_count', sa.SmallInteger(), server_default='0', nullable=False),
    sa.Column('satisfaction', sa.SmallInteger(), nullable=True),
    sa.Column('reporter_name', sa.String(length=50), nullable=True),
    sa.Column('reporter_phone', sa.String(length=20), nullable=True),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('synthetic', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.CheckConstraint("kind IN ('problem', 'sentiment')", name='issue_kind'),
    sa.CheckConstraint('satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5', name='issue_satisfaction'),
    sa.ForeignKeyConstraint(['assignee_id'], ['official.id'], ),
    sa.ForeignKeyConstraint(['domain_code'], ['domain.code'], ),
    sa.ForeignKeyConstraint(['grid_leader_id'], ['official.id'], ),
    sa.ForeignKeyConstraint(['leader_in_charge_id'], ['official.id'], ),
    sa.ForeignKeyConstraint(['responsible_id'], ['official.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('number')
    )
    op.create_index('issue_grid_idx', 'issue', ['grid_code'], unique=False)
    op.create_index('issue_location_gist', 'issue', ['location'], unique=False, postgresql_using='gist')
    op.create_index('issue_reported_idx', 'issue', ['reported_at'], unique=False)
    op.create_index('issue_status_idx', 'issue', ['status'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('channel', sa.String(length=20), nullable=False),
    sa.Column('official_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['official_id'], ['official.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('issue_event',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('issue_id', sa.BigInteger(), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sa.String(length=30), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['official.id'], ),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('issue_event_issue_idx', 'issue_event', ['issue_id', 'at'], unique=False)
    op.create_table('patrol_diary',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('grid_code', sa.String(length=14), nullable=False),
    sa.Column('official_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('track', geoalchemy2.types.Geometry(srid=4326, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry'), nullable=True),
    sa.Column('households', sa.Integer(), nullable=False),
    sa.Column('shops', sa.Integer(), nullable=False),
    sa.Column('firms', sa.Integer(), nullable=False),
    sa.Column('findings', sa.Text(), nullable=False),
    sa.Column('issue_id', sa.BigInteger(), nullable=True),
    sa.CheckConstraint("kind IN ('patrol', 'visit')", name='diary_kind'),
    sa.ForeignKeyConstraint(['issue_id'], ['issue.id'], ),
    sa.ForeignKeyConstraint(['official_id'], ['official.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('diary_grid_idx', 'patrol_diary', ['grid_code', 'started_at'], unique=False)
    op.execute(APPEND_ONLY)
    domain = sa.table("domain", *(sa.column(c) for c in (
        "code", "name_zh", "name_en", "sign_hours", "handle_days", "sentiment_handle_days", "sort")))
    op.bulk_insert(domain, [dict(zip(("code", "name_zh", "name_en", "sign_hours", "handle_days",
                                      "sentiment_handle_days", "sort"), d)) for d in DOMAINS])


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS issue_event_no_update ON issue_event")
    op.execute("DROP TRIGGER IF EXISTS issue_event_no_truncate ON issue_event")
    op.execute("DROP FUNCTION IF EXISTS issue_event_append_only()")
    op.drop_index('diary_grid_idx', table_name='patrol_diary')
    op.drop_table('patrol_diary')
    op.drop_index('issue_event_issue_idx', table_name='issue_event')
    op.drop_table('issue_event')
    op.drop_table('outbox')
    op.drop_index('issue_status_idx', table_name='issue')
    op.drop_index('issue_reported_idx', table_name='issue')
    op.drop_index('issue_location_gist', table_name='issue', postgresql_using='gist')
    op.drop_index('issue_grid_idx', table_name='issue')
    op.drop_table('issue')
    op.drop_index('assignment_official_idx', table_name='grid_assignment')
    op.drop_index('assignment_grid_idx', table_name='grid_assignment')
    op.drop_table('grid_assignment')
    op.drop_table('activity')
    op.drop_table('official')
    op.drop_table('idempotency_key')
    op.drop_index('grid_parent_idx', table_name='grid')
    op.drop_index('grid_geom_gist', table_name='grid', postgresql_using='gist')
    op.drop_index('grid_current_code_uq', table_name='grid', postgresql_where=sa.text('valid_to IS NULL'))
    op.drop_table('grid')
    op.drop_table('domain')
