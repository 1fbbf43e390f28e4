"""a row added to an issue's events, photos or reporter: "is its issue visible?" from a plan kept
per session, not one planned in every statement (issue #10, RLS within 10 %)

``issue_event_append``, ``issue_photo_add`` and ``issue_reporter_add`` (0005) check a new row with
``EXISTS (SELECT 1 FROM issue WHERE issue.id = <row>.issue_id)`` — run under ``issue``'s own
policy, so each INSERT plans that sub-query with the issue policy's six InitPlans: ≈ 0.3 ms of a
report's ≈ 0.45 ms event INSERT (``bench rls``, 2026-12-03; the check replaced by ``true`` took the
INSERT to the bypassing role's time).

``gw_issue_visible(id)`` asks the same question (security invoker: the caller's role, its scope,
``issue``'s policy) from PL/pgSQL, whose statement plans live as long as the session; it keeps a
generic plan (``plan_cache_mode`` set on the function: the app role forces custom plans, which
would plan it again at each call). The policy's settings are read when the plan runs, so the answer
follows the transaction's scope as the sub-query's did. It is called once per new row for a scope
short of every grid (``(SELECT gw_scope_all())`` still answers first): a row at a time is what these
tables are written in by the app. The read policies keep their ``EXISTS``: reading many rows, a
semi-join beats a call per row.

Revision ID: 0028_append_checks
Revises: 0027_contact_reach
Create Date: 2026-12-03 21:10:00
"""
from alembic import op

from geodata.db.migrate import grant_app

revision = '0028_append_checks'
down_revision = '0027_contact_reach'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

VISIBLE_FN = r"""
CREATE FUNCTION gw_issue_visible(p_issue bigint) RETURNS boolean LANGUAGE plpgsql STABLE
  SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM public.issue WHERE id = p_issue);
END $$;
"""

#: (policy, table, check now, check of 0005)
CHECKS = (
    ("issue_event_append", "issue_event", "((SELECT gw_scope_all()) OR gw_issue_visible(issue_id))",
     "((SELECT gw_scope_all()) OR EXISTS (SELECT 1 FROM issue WHERE issue.id = issue_event.issue_id))"),
    ("issue_photo_add", "issue_photo", "((SELECT gw_scope_all()) OR gw_issue_visible(issue_id))",
     "((SELECT gw_scope_all()) OR EXISTS (SELECT 1 FROM issue WHERE issue.id = issue_photo.issue_id))"),
    ("issue_reporter_add", "issue_reporter", "(gw_issue_visible(issue_id))",
     "(EXISTS (SELECT 1 FROM issue WHERE issue.id = issue_reporter.issue_id))"),
)


def upgrade() -> None:
    op.execute(VISIBLE_FN)
    for policy, table, check, _old in CHECKS:
        op.execute(f"ALTER POLICY {policy} ON {table} WITH CHECK {check}")
    grant_app(APP_GRANTS, functions=("gw_issue_visible(bigint)",))


def downgrade() -> None:
    for policy, table, _new, old in CHECKS:
        op.execute(f"ALTER POLICY {policy} ON {table} WITH CHECK {old}")
    op.execute("DROP FUNCTION gw_issue_visible(bigint)")
