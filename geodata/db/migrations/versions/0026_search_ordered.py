"""the issue search takes the newest of the older matches, whatever the plan (issue #11)

``gw_issue_search`` (0022, settings of 0024) took ``4 × cap`` rows of ``issue_search`` holding the
text's grams and then ``cap`` of those the caller may see, each with a ``LIMIT`` and no order: the
rows taken were whichever the plan met first. 0024 fixed the order of one plan (no synchronised or
parallel scan), but the plan itself changes — an autovacuum's ANALYZE after many new issues turns a
GIN bitmap into a walk of the table or back — and with it the set: ``make test`` on a fresh machine
saw the API's ``q`` give the street's operator two different sets of 505 for the same word in two
requests a moment apart (tests/integration/dashboard/api/test_issues_text_api.py).

Both steps are now ordered by the issue's id, newest first: the same text over the same table gives
the same issues whatever the plan, and they are the newest older matches (ids follow reporting),
not arbitrary ones. ``issue_search``'s primary key serves that order: for a frequent word the
planner walks it backwards and stops at ``4 × cap`` holders; a rare word is a GIN bitmap and a sort
of its few rows. The settings of 0024 stay.

Revision ID: 0026_search_ordered
Revises: 0025_issue_chain_check
Create Date: 2026-12-03 19:45:00
"""
import importlib

from alembic import op

revision = '0026_search_ordered'
down_revision = '0025_issue_chain_check'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

_m22 = importlib.import_module("geodata.db.migrations.versions.0022_issue_search")
_m24 = importlib.import_module("geodata.db.migrations.versions.0024_search_stable_no_trgm")

#: 0022's body with an order before each limit (CREATE OR REPLACE keeps the owner and the grants)
ORDERED = (_m22.SEARCH.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
           .replace("reported_at < $1\n                       LIMIT $2 * 4) k",
                    "reported_at < $1\n                       ORDER BY issue_id DESC LIMIT $2 * 4) k")
           .replace("WHERE i.number ILIKE $3 OR i.title ILIKE $3 LIMIT $2",
                    "WHERE i.number ILIKE $3 OR i.title ILIKE $3 ORDER BY i.id DESC LIMIT $2"))
assert ORDERED.count("ORDER BY") == 2, "0022's search body is not the one this migration orders"


def _replace(body: str) -> None:
    op.execute(body)   # CREATE OR REPLACE resets the function's settings: 0024's are set again
    for name, value in _m24.STABLE_SCAN.items():
        op.execute(f"ALTER FUNCTION {_m24.SEARCH_FN} SET {name} = {value}")


def upgrade() -> None:
    _replace(ORDERED)


def downgrade() -> None:
    _replace(_m22.SEARCH.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
