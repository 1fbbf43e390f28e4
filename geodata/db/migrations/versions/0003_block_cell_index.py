"""block_cell_index: the stored raster cell index of the block grids (bulk assignment)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 21:00:00
"""
from alembic import op
import sqlalchemy as sa
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'block_cell_index',
        sa.Column('id', sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column('fingerprint', sa.String(length=32), nullable=False),
        sa.Column('coarse_deg', sa.Float(), nullable=False),
        sa.Column('fine', sa.SmallInteger(), nullable=False),
        sa.Column('cell_deg', sa.Float(), nullable=False),
        sa.Column('numeric_codes', sa.Boolean(), nullable=False),
        sa.Column('i0', sa.Integer(), nullable=False),
        sa.Column('j0', sa.Integer(), nullable=False),
        sa.Column('ni', sa.Integer(), nullable=False),
        sa.Column('nj', sa.Integer(), nullable=False),
        sa.Column('max_candidates', sa.SmallInteger(), nullable=False),
        sa.Column('combos_n', sa.Integer(), nullable=False),
        sa.Column('usable', sa.Boolean(), nullable=False),
        sa.Column('cells', sa.Integer(), nullable=False),
        sa.Column('edge_cells', sa.Integer(), nullable=False),
        sa.Column('build_ms', sa.Integer(), nullable=False),
        sa.Column('codes', postgresql.ARRAY(sa.String(length=14)), nullable=False),
        sa.Column('codes_int', postgresql.ARRAY(sa.BigInteger()), nullable=False),
        sa.Column('geoms', postgresql.ARRAY(Geometry('MULTIPOLYGON', srid=4326, spatial_index=False)),
                  nullable=False),
        sa.Column('combos', postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column('raster', postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('fingerprint', 'coarse_deg', 'fine', 'numeric_codes', name='block_cell_index_key'),
    )


def downgrade() -> None:
    op.drop_table('block_cell_index')
