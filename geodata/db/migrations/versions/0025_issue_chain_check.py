"""the responsibility chain's officials checked once per statement, not once per row (issue #15)

A change set re-assigning 10⁵ open issues to another community sets each one's six-ones chain
(``leader_in_charge_id``, ``responsible_id``, ``grid_leader_id``). Their three foreign keys to
``official`` checked every row on its own — a query and a row lock per row and column, 3 × 10⁵
of them for at most a handful of distinct officials: 1.05–1.13 s per column, ≈ 40 % of the whole
UPDATE (auto_explain on ``bench grids``, 2026-12-03).

Those three foreign keys are replaced by one statement-level check with the same meaning, read
from the statement's transition table: the distinct officials a statement's rows newly name (an
UPDATE: only the values it changed, as a foreign key checks only changed keys) are locked ``FOR KEY
SHARE`` — as a foreign key's check locks them, so no transaction can delete one or change its id
until this one ends — and any of them that does not exist is a ``foreign_key_violation`` (23503)
naming the column and the id. ``assignee_id`` keeps its foreign key: a re-assignment never sets it.

The other side of a foreign key — an official still named by an issue cannot be deleted nor its id
changed — is stricter here: an official's row is never deleted and its id never changes
(``official_immutable``, row-level, and ``official_no_truncate``); officials leave by their
assignments ending, and the history (events, assignments, assessments) names them for good.

Revision ID: 0025_issue_chain_check
Revises: 0024_search_stable_no_trgm
Create Date: 2026-12-03 18:20:00
"""
from alembic import op

revision = '0025_issue_chain_check'
down_revision = '0024_search_stable_no_trgm'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

#: the chain's columns, as the foreign keys this replaces were named (``issue_<column>_fkey``)
CHAIN = ("leader_in_charge_id", "responsible_id", "grid_leader_id")


def _named(changed_only: bool) -> str:
    """The (column, official id) pairs the statement's rows name; an UPDATE's, less those its rows
    named before — an official named before exists (officials are never deleted, below), so what
    is left is what a foreign key would check: the values the statement changed (two set-wise
    passes instead of a join of the old and new rows: ≈ 0.1 s on 10⁵ rows instead of 0.3)."""
    def pairs(rows: str) -> str:
        values = ", ".join(f"('{c}', r.{c})" for c in CHAIN)
        return f"SELECT x.col, x.id FROM {rows} r CROSS JOIN LATERAL (VALUES {values}) AS x(col, id) WHERE x.id IS NOT NULL"
    if changed_only:
        return f"{pairs('new_rows')} EXCEPT {pairs('old_rows')}"
    return f"SELECT DISTINCT * FROM ({pairs('new_rows')}) p"


def _check_function(name: str, changed_only: bool) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  cols text[];
  ids integer[];
  bad record;
BEGIN
  SELECT array_agg(x.col), array_agg(x.id) INTO cols, ids FROM ({_named(changed_only)}) x;
  IF ids IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM 1 FROM official o WHERE o.id = ANY (ids) FOR KEY SHARE OF o;
  SELECT c.col, c.id INTO bad FROM unnest(cols, ids) AS c(col, id)
   WHERE NOT EXISTS (SELECT 1 FROM official o WHERE o.id = c.id) ORDER BY c.col, c.id LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION '责任链 % = % 不是已登记的人员 / insert or update on table "issue" violates the '
      'responsibility chain: % = % is not an official', bad.col, bad.id, bad.col, bad.id
      USING ERRCODE = 'foreign_key_violation', TABLE = 'issue', COLUMN = bad.col, CONSTRAINT = 'issue_chain_official';
  END IF;
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION {name}() FROM PUBLIC;
"""


UPGRADE = f"""
ALTER TABLE issue {", ".join(f"DROP CONSTRAINT issue_{c}_fkey" for c in CHAIN)};
{_check_function("gw_issue_chain_insert", changed_only=False)}
{_check_function("gw_issue_chain_update", changed_only=True)}
CREATE TRIGGER issue_chain_ins AFTER INSERT ON issue REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION gw_issue_chain_insert();
CREATE TRIGGER issue_chain_upd AFTER UPDATE ON issue REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION gw_issue_chain_update();

CREATE FUNCTION gw_official_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '人员记录不能删除或改号，请结束其任职 / officials are never deleted nor renumbered (% refused): '
    'end their assignments instead', TG_OP
    USING ERRCODE = 'restrict_violation', TABLE = 'official';
END $$;
REVOKE ALL ON FUNCTION gw_official_immutable() FROM PUBLIC;
CREATE TRIGGER official_immutable BEFORE DELETE OR UPDATE OF id ON official
  FOR EACH ROW EXECUTE FUNCTION gw_official_immutable();
CREATE TRIGGER official_no_truncate BEFORE TRUNCATE ON official
  FOR EACH STATEMENT EXECUTE FUNCTION gw_official_immutable();
"""

DOWNGRADE = f"""
DROP TRIGGER official_no_truncate ON official;
DROP TRIGGER official_immutable ON official;
DROP FUNCTION gw_official_immutable();
DROP TRIGGER issue_chain_upd ON issue;
DROP TRIGGER issue_chain_ins ON issue;
DROP FUNCTION gw_issue_chain_update();
DROP FUNCTION gw_issue_chain_insert();
ALTER TABLE issue {", ".join(f"ADD CONSTRAINT issue_{c}_fkey FOREIGN KEY ({c}) REFERENCES official(id)" for c in CHAIN)};
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
