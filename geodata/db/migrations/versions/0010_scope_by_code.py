"""the issue policy and the visibility rule as equality on codes (issue #10, RLS within 10 %)

Under row-level security PostgreSQL evaluates a query's own conditions that are not leak-proof
(``LIKE`` on ``grid_code``, a bounding box) only after the policy, so they cannot be index
conditions; and it misjudges the policy's ``LIKE ANY`` prefixes. The rule is now written as
equality — leak-proof, indexable — on the issue's block, community and street codes:

- ``issue.street_code``: generated from ``grid_code`` (its first 9 digits + ``00000``), indexed;
- ``issue.community_code``: indexed, and checked to be the block's community
  (``left(grid_code, 12) || '00'``), so that "in community C" is ``community_code = C``;
- the scope's functions are single expressions, which PostgreSQL inlines: ``gw_scope_prefixes()``
  (the ``gridwatch.grids`` list as it is: an entry grants only where it equals a 9-, 12- or
  14-digit prefix of a block code, so a malformed one grants nothing), ``gw_scope_official()`` and
  ``gw_scope_issues()`` rewritten without a FROM (a malformed list of issues grants none of them).
  A SQL function that is not inlined is planned again in every statement that calls it: the five
  InitPlans of the policy cost ≈ 0.2 ms per statement that read ``issue``;
- ``issue``'s responsibility-chain columns indexed: an official's own issues (the rule's second
  part) are found by index, so that a viewer's whole rule, leak-proof, can be a bitmap of indexes;
- the ``issue_read`` / ``issue_change`` policies: ``left(grid_code, 9|12) = ANY(prefixes) OR
  grid_code = ANY(prefixes)`` instead of ``grid_code LIKE ANY(patterns)``; the query's own side,
  ``geodata.access.visibility.visible_issues``, says the same as equality on the indexed
  ``street_code`` / ``community_code`` / ``grid_code`` (``Scope.filter_codes``), which PostgreSQL
  may use as index conditions before the policy (equality is leak-proof, ``LIKE`` is not).

Revision ID: 0010_scope_by_code
Revises: 0009_accounts
Create Date: 2026-12-02 10:00:00
"""
from alembic import op

revision = '0010_scope_by_code'
down_revision = '0009_accounts'
branch_labels = None
depends_on = None

#: THE visibility rule (geodata.access.visibility) on a row of ``issue``; cheapest first. Each
#: (SELECT f()) is an InitPlan: computed once per statement, not per row.
ISSUE_VISIBLE = """(
    (SELECT gw_scope_all())
    OR left(grid_code, 9) = ANY ((SELECT gw_scope_prefixes())::text[])
    OR left(grid_code, 12) = ANY ((SELECT gw_scope_prefixes())::text[])
    OR grid_code = ANY ((SELECT gw_scope_prefixes())::text[])
    OR (SELECT gw_scope_official()) = ANY (ARRAY[assignee_id, grid_leader_id, responsible_id, leader_in_charge_id])
    OR id = ANY ((SELECT gw_scope_issues())::bigint[]))"""

#: Single SELECTs without FROM: inlined by PostgreSQL (never planned per statement).
SCOPE_FUNCTIONS = r"""
CREATE FUNCTION gw_scope_prefixes() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(string_to_array(current_setting('gridwatch.grids', true), ','), '{}') $$;
CREATE OR REPLACE FUNCTION gw_scope_official() RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN current_setting('gridwatch.official', true) ~ '^[1-9][0-9]{0,8}$'
              THEN current_setting('gridwatch.official', true)::integer END $$;
CREATE OR REPLACE FUNCTION gw_scope_issues() RETURNS bigint[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN current_setting('gridwatch.issues', true) ~ '^[1-9][0-9]{0,17}(,[1-9][0-9]{0,17})*$'
              THEN string_to_array(current_setting('gridwatch.issues', true), ',')::bigint[]
              ELSE '{}' END $$;
"""

#: migration 0005's (for the downgrade)
SCOPE_FUNCTIONS_0005 = r"""
DROP FUNCTION gw_scope_prefixes();
CREATE OR REPLACE FUNCTION gw_scope_official() RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v ~ '^[1-9][0-9]{0,8}$' THEN v::integer END
  FROM (SELECT current_setting('gridwatch.official', true) AS v) s $$;
CREATE OR REPLACE FUNCTION gw_scope_issues() RETURNS bigint[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(v::bigint), '{}')
  FROM unnest(string_to_array(current_setting('gridwatch.issues', true), ',')) AS v
  WHERE v ~ '^[1-9][0-9]{0,17}$' $$;
"""

#: migration 0005's rule (for the downgrade)
ISSUE_VISIBLE_0005 = """(
    (SELECT gw_scope_all())
    OR (SELECT gw_scope_official()) = ANY (ARRAY[assignee_id, grid_leader_id, responsible_id, leader_in_charge_id])
    OR id = ANY ((SELECT gw_scope_issues())::bigint[])
    OR grid_code LIKE ANY ((SELECT gw_scope_patterns())::text[]))"""


def _policies(rule: str) -> str:
    return (f"ALTER POLICY issue_read ON issue USING {rule};\n"
            f"ALTER POLICY issue_change ON issue USING {rule} WITH CHECK (true);")


def upgrade() -> None:
    op.execute("""
        ALTER TABLE issue ADD COLUMN street_code varchar(14)
          GENERATED ALWAYS AS (left(grid_code, 9) || '00000') STORED;
        ALTER TABLE issue ADD CONSTRAINT issue_community_of_block
          CHECK (community_code = left(grid_code, 12) || '00');
        CREATE INDEX issue_street_idx ON issue (street_code);
        CREATE INDEX issue_community_idx ON issue (community_code);
        CREATE INDEX issue_assignee_idx ON issue (assignee_id);
        CREATE INDEX issue_grid_leader_idx ON issue (grid_leader_id);
        CREATE INDEX issue_responsible_idx ON issue (responsible_id);
        CREATE INDEX issue_leader_in_charge_idx ON issue (leader_in_charge_id);
    """)
    op.execute(SCOPE_FUNCTIONS)
    op.execute(_policies(ISSUE_VISIBLE))
    op.execute("ANALYZE issue")


def downgrade() -> None:
    op.execute(_policies(ISSUE_VISIBLE_0005))
    op.execute(SCOPE_FUNCTIONS_0005)
    op.execute("""
        DROP INDEX issue_community_idx;
        DROP INDEX issue_assignee_idx, issue_grid_leader_idx, issue_responsible_idx, issue_leader_in_charge_idx;
        DROP INDEX issue_street_idx;
        ALTER TABLE issue DROP CONSTRAINT issue_community_of_block;
        ALTER TABLE issue DROP COLUMN street_code;
    """)
