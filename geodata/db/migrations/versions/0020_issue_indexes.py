"""the issue table's indexes (issue #15: a change set's re-assignment UPDATE) — reserved; filled in by its change

Revision ID: 0020_issue_indexes
Revises: 0019_rls_code_columns
Create Date: 2026-12-03 15:00:00
"""
revision = '0020_issue_indexes'
down_revision = '0019_rls_code_columns'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
