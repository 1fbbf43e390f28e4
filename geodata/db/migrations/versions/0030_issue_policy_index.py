"""the issue index on ``community_code`` carries every column the issue policy reads (issue #10,
RLS within 10 %)

Counting issues — all of them for the command centre's first page, a community's for its filter —
PostgreSQL answers from an index alone when the count's columns are in it (an index-only scan: the
visibility map says the rows are visible, no heap page is read). Under row-level security the
policy's columns are the count's columns too, and none of the issue indexes had them all, so the
app role's counts read every row from the heap: ``SELECT count(*)`` 1.12 ms against the bypassing
role's 0.42 ms, a community's 0.89 against 0.32 (``bench rls``, demo size, 2026-12-03).

``issue_community_idx`` (0010) now includes the rest of THE visibility rule's columns — the street
and block codes, the four chain officials and the id (``INCLUDE``: stored, not sorted on). The
same counts become index-only scans for the app role as well: 0.63 and 0.54 ms. It replaces the
old index rather than adding one, so a write maintains as many indexes as before (a re-assignment
changes ``community_code`` and the chain anyway; entries are wider: ≈ 60 bytes instead of 30).

Revision ID: 0030_issue_policy_index
Revises: 0029_principal_epoch
Create Date: 2026-12-03 22:00:00
"""
from alembic import op

revision = '0030_issue_policy_index'
down_revision = '0029_principal_epoch'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

#: the policy's columns other than the key (migration 0019's ISSUE_VISIBLE)
COVERED = ("street_code", "grid_code", "assignee_id", "grid_leader_id", "responsible_id", "leader_in_charge_id", "id")


def upgrade() -> None:
    op.execute("DROP INDEX issue_community_idx")
    op.execute(f"CREATE INDEX issue_community_idx ON issue (community_code) INCLUDE ({', '.join(COVERED)})")


def downgrade() -> None:
    op.execute("DROP INDEX issue_community_idx")
    op.execute("CREATE INDEX issue_community_idx ON issue (community_code)")
