"""issue photos (report / feedback attachments)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 20:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'issue_photo',
        sa.Column('id', sa.BigInteger(), nullable=False),
        sa.Column('issue_id', sa.BigInteger(), nullable=False),
        sa.Column('event_id', sa.BigInteger(), nullable=True),
        sa.Column('stage', sa.String(length=20), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content_type', sa.String(length=40), nullable=False),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('path', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("stage IN ('report', 'feedback')", name='issue_photo_stage'),
        sa.CheckConstraint("content_type IN ('image/jpeg', 'image/png', 'image/webp')",
                           name='issue_photo_type'),
        sa.ForeignKeyConstraint(['issue_id'], ['issue.id']),
        sa.ForeignKeyConstraint(['event_id'], ['issue_event.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('issue_photo_issue_idx', 'issue_photo', ['issue_id'], unique=False)


def downgrade() -> None:
    op.drop_index('issue_photo_issue_idx', table_name='issue_photo')
    op.drop_table('issue_photo')
