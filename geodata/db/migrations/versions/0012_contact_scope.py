"""officials' phones by scope: the ``official_contact`` policy checks the community, not only the
personal-data flag (issue #10)

Migration 0005's policy ``official_contact_personal`` let any transaction with
``gridwatch.personal = on`` read every official's phone: a community leader (a one-community
scope with personal data) could read all 170 phones by plain SQL as the app role. Now a phone is
visible when the scope may see personal data AND one of:

- the scope is every grid (``gridwatch.grids = *``);
- the official is the viewer (``gridwatch.official``);
- the official holds a role (``grid_assignment``, any period) in a grid within the scope — keyed
  as migration 0010 keys issues: ``left(grid_code, 9 | 12)`` or the whole code equal to one of the
  scope's descendant prefixes (``gw_scope_prefixes()``; a malformed entry equals no code);
- or in a grid *above* one in the scope (``gw_scope_ancestors()``: the street and community codes
  of each well-formed prefix): the people on the viewer's own six-ones chain (a block's grid
  leader sees their community's responsible people and the street's leader in charge), never the
  people of another community or block.

The Python side asks the same: ``Official.phone`` is read through this policy, and the panel and
该找谁 show phones only for grids ``Scope.allows``.

Revision ID: 0012_contact_scope
Revises: 0011_evaluation_keys
Create Date: 2026-12-02 13:00:00
"""
from alembic import op

from geodata.db.migrate import grant_app

revision = '0012_contact_scope'
down_revision = '0011_evaluation_keys'
branch_labels = None
depends_on = None

#: nothing new for the app role beyond the function (the tables are 0005's)
APP_GRANTS: dict[str, str] = {}

ANCESTORS = r"""
CREATE FUNCTION gw_scope_ancestors() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT c), '{}')
  FROM unnest(gw_scope_prefixes()) AS p,
       LATERAL (VALUES (left(p, 9) || '00000'),
                       (CASE WHEN length(p) >= 12 THEN left(p, 12) || '00' END)) AS v(c)
  WHERE p ~ '^([0-9]{9}|[0-9]{12}|[0-9]{14})$' AND c IS NOT NULL $$;
"""

CONTACT_VISIBLE = """((SELECT gw_personal_data()) AND (
    (SELECT gw_scope_all())
    OR official_id = (SELECT gw_scope_official())
    OR EXISTS (SELECT 1 FROM grid_assignment a WHERE a.official_id = official_contact.official_id
               AND (left(a.grid_code, 9) = ANY ((SELECT gw_scope_prefixes())::text[])
                    OR left(a.grid_code, 12) = ANY ((SELECT gw_scope_prefixes())::text[])
                    OR a.grid_code = ANY ((SELECT gw_scope_prefixes())::text[])
                    OR a.grid_code = ANY ((SELECT gw_scope_ancestors())::text[])))))"""

CONTACT_VISIBLE_0005 = "((SELECT gw_personal_data()))"


def upgrade() -> None:
    op.execute(ANCESTORS)
    op.execute(f"ALTER POLICY official_contact_personal ON official_contact USING {CONTACT_VISIBLE}")
    grant_app(APP_GRANTS, functions=("gw_scope_ancestors()",))


def downgrade() -> None:
    op.execute(f"ALTER POLICY official_contact_personal ON official_contact USING {CONTACT_VISIBLE_0005}")
    op.execute("DROP FUNCTION gw_scope_ancestors()")
