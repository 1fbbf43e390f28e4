"""the issue search's indexes (issue #11: a bounded search) — reserved; filled in by its change

Revision ID: 0022_issue_search
Revises: 0021_map_cells
Create Date: 2026-12-03 15:00:00
"""
revision = '0022_issue_search'
down_revision = '0021_map_cells'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
