"""the assessment page: indexes for the indicators' range joins on a case's deadline and closing time

The cases family finds the (case, period) pairs by a range join per instant (reported, deadline,
closed): ``issue_reported_idx`` existed; ``issue_due_idx`` and ``issue_closed_idx`` let the 10⁶-case
computation scan each period's slice instead of the whole table (docs/assessment.md, Speed).
No new table: the app role's grants are unchanged.

Revision ID: 0015_assessment_page
Revises: 0013_live_feed
Create Date: 2026-12-02 12:40:00
"""
from alembic import op

from geodata.db.migrate import grant_app

revision = '0015_assessment_page'
down_revision = '0013_live_feed'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}


def upgrade() -> None:
    op.create_index('issue_due_idx', 'issue', ['due_at'], unique=False)
    op.create_index('issue_closed_idx', 'issue', ['closed_at'], unique=False)
    grant_app(APP_GRANTS)


def downgrade() -> None:
    op.drop_index('issue_closed_idx', table_name='issue')
    op.drop_index('issue_due_idx', table_name='issue')
