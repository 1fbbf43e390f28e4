"""trigram indexes for the issue text search (GET /api/v1/issues?q=)

``q`` matches ``number ILIKE '%q%' OR title ILIKE '%q%'``; without these indexes every such query
scans the table (434 348 issues: ≈ 3.4 s for a 100-character text; with them ≈ 5–40 ms). A text
with no trigram (fewer than three letters or digits) still scans — bounded by the request's
statement_timeout.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 10:00:00
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index('issue_title_trgm', 'issue', ['title'], postgresql_using='gin',
                    postgresql_ops={'title': 'gin_trgm_ops'})
    op.create_index('issue_number_trgm', 'issue', ['number'], postgresql_using='gin',
                    postgresql_ops={'number': 'gin_trgm_ops'})


def downgrade() -> None:
    op.drop_index('issue_number_trgm', table_name='issue')
    op.drop_index('issue_title_trgm', table_name='issue')
