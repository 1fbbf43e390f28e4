"""closed issues per map cell (issue #11: markers and heat at any history size) — reserved; filled in by its change

Revision ID: 0021_map_cells
Revises: 0020_issue_indexes
Create Date: 2026-12-03 15:00:00
"""
revision = '0021_map_cells'
down_revision = '0020_issue_indexes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
