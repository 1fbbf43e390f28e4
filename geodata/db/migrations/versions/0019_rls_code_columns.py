"""the scope policies on the stored street and community codes, with fewer InitPlans (issue #10,
RLS within 10 %)

Migration 0010 wrote the grid part of THE visibility rule (``geodata/access/visibility.py``) as
``left(grid_code, 9) = ANY(prefixes) OR left(grid_code, 12) = ANY(prefixes) OR grid_code =
ANY(prefixes)``: two ``left()`` per row, on every row a statement reads (a one-community viewer's
map: ≈ 0.5 µs a row, over every issue of the community). The same test, exactly, on columns the
row already has:

- ``left(grid_code, 9) = p``  ⟺  ``street_code = p || '00000'`` (``street_code`` is generated as
  ``left(grid_code, 9) || '00000'``, and appending the same suffix to both sides changes no answer);
- ``left(grid_code, 12) = p``  ⟺  ``community_code = p || '00'`` (``issue_community_of_block``
  checks ``community_code = left(grid_code, 12) || '00'``);

so ``gw_scope_streets()`` and ``gw_scope_communities()`` are the scope's entries each with its
suffix (an entry of another length gets a code of another length, which equals nothing: a
malformed entry still grants nothing), single expressions that PostgreSQL inlines. The issue
policies (``issue_read``, ``issue_change``) and the map aggregates' (migration 0017: their
``street_code`` / ``community_code`` now checked to be their block's, as the issue's are) compare
the stored codes. Same rows visible, for every value of ``gridwatch.grids``.

``official_contact_personal`` (migration 0012): its assignment test, ``left(a.grid_code, 9 | 12)``
or the whole code equal to an entry, or the whole code one of ``gw_scope_ancestors()``, is one
array overlap ``ARRAY[left(g, 9), left(g, 12), g] && (prefixes || ancestors)`` — one InitPlan
instead of four (each is planned in every statement that reads an official's phone). Exactly the
same test: every ancestor has 14 characters, so it can only equal the whole code.

Revision ID: 0019_rls_code_columns
Revises: 0018_live_stamp
Create Date: 2026-12-03 14:00:00
"""
from alembic import op

from geodata.db.migrate import grant_app

revision = '0019_rls_code_columns'
down_revision = '0018_live_stamp'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

FUNCTIONS = r"""
CREATE FUNCTION gw_scope_streets() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_to_array(replace(current_setting('gridwatch.grids', true), ',', '00000,') || '00000', ','),
                  '{}') $$;
CREATE FUNCTION gw_scope_communities() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_to_array(replace(current_setting('gridwatch.grids', true), ',', '00,') || '00', ','),
                  '{}') $$;
"""

#: THE visibility rule on a row of ``issue`` (0010's, on the stored codes). Each (SELECT f()) is an
#: InitPlan: computed once per statement, not per row.
ISSUE_VISIBLE = """(
    (SELECT gw_scope_all())
    OR community_code = ANY ((SELECT gw_scope_communities())::text[])
    OR street_code = ANY ((SELECT gw_scope_streets())::text[])
    OR grid_code = ANY ((SELECT gw_scope_prefixes())::text[])
    OR (SELECT gw_scope_official()) = ANY (ARRAY[assignee_id, grid_leader_id, responsible_id, leader_in_charge_id])
    OR id = ANY ((SELECT gw_scope_issues())::bigint[]))"""

#: migration 0010's
ISSUE_VISIBLE_0010 = """(
    (SELECT gw_scope_all())
    OR left(grid_code, 9) = ANY ((SELECT gw_scope_prefixes())::text[])
    OR left(grid_code, 12) = ANY ((SELECT gw_scope_prefixes())::text[])
    OR grid_code = ANY ((SELECT gw_scope_prefixes())::text[])
    OR (SELECT gw_scope_official()) = ANY (ARRAY[assignee_id, grid_leader_id, responsible_id, leader_in_charge_id])
    OR id = ANY ((SELECT gw_scope_issues())::bigint[]))"""

ROLLUP_VISIBLE = """(
    (SELECT gw_scope_all())
    OR community_code = ANY ((SELECT gw_scope_communities())::text[])
    OR street_code = ANY ((SELECT gw_scope_streets())::text[])
    OR grid_code = ANY ((SELECT gw_scope_prefixes())::text[]))"""

#: migration 0017's
ROLLUP_VISIBLE_0017 = """(
    (SELECT gw_scope_all())
    OR left(grid_code, 9) = ANY ((SELECT gw_scope_prefixes())::text[])
    OR left(grid_code, 12) = ANY ((SELECT gw_scope_prefixes())::text[])
    OR grid_code = ANY ((SELECT gw_scope_prefixes())::text[]))"""

ROLLUPS = ("issue_closed_rollup", "issue_closed_total")

CONTACT_VISIBLE = """((SELECT gw_personal_data()) AND (
    (SELECT gw_scope_all())
    OR official_id = (SELECT gw_scope_official())
    OR EXISTS (SELECT 1 FROM grid_assignment a WHERE a.official_id = official_contact.official_id
               AND ARRAY[left(a.grid_code, 9), left(a.grid_code, 12), a.grid_code::text]
                   && (SELECT gw_scope_prefixes() || gw_scope_ancestors()))))"""

#: migration 0012's
CONTACT_VISIBLE_0012 = """((SELECT gw_personal_data()) AND (
    (SELECT gw_scope_all())
    OR official_id = (SELECT gw_scope_official())
    OR EXISTS (SELECT 1 FROM grid_assignment a WHERE a.official_id = official_contact.official_id
               AND (left(a.grid_code, 9) = ANY ((SELECT gw_scope_prefixes())::text[])
                    OR left(a.grid_code, 12) = ANY ((SELECT gw_scope_prefixes())::text[])
                    OR a.grid_code = ANY ((SELECT gw_scope_prefixes())::text[])
                    OR a.grid_code = ANY ((SELECT gw_scope_ancestors())::text[])))))"""


def _issue_policies(rule: str) -> str:
    return (f"ALTER POLICY issue_read ON issue USING {rule};\n"
            f"ALTER POLICY issue_change ON issue USING {rule} WITH CHECK (true);")


def upgrade() -> None:
    op.execute(FUNCTIONS)
    for t in ROLLUPS:
        op.execute(f"ALTER TABLE {t} ADD CONSTRAINT {t}_codes_of_block "
                   "CHECK (community_code = left(grid_code, 12) || '00' AND street_code = left(grid_code, 9) || '00000')")
    op.execute(_issue_policies(ISSUE_VISIBLE))
    for t in ROLLUPS:
        op.execute(f"ALTER POLICY {t}_scope ON {t} USING {ROLLUP_VISIBLE}")
    op.execute(f"ALTER POLICY official_contact_personal ON official_contact USING {CONTACT_VISIBLE}")
    grant_app(APP_GRANTS, functions=("gw_scope_streets()", "gw_scope_communities()"))


def downgrade() -> None:
    op.execute(f"ALTER POLICY official_contact_personal ON official_contact USING {CONTACT_VISIBLE_0012}")
    for t in ROLLUPS:
        op.execute(f"ALTER POLICY {t}_scope ON {t} USING {ROLLUP_VISIBLE_0017}")
        op.execute(f"ALTER TABLE {t} DROP CONSTRAINT {t}_codes_of_block")
    op.execute(_issue_policies(ISSUE_VISIBLE_0010))
    op.execute("DROP FUNCTION gw_scope_streets(); DROP FUNCTION gw_scope_communities()")
