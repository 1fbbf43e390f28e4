"""officials' phones: the scope test on a column the row has, not a search of the assignments per
statement (issue #10, RLS within 10 %)

``official_contact_personal`` (0012, 0019) let a scope read an official's phone when one of the
official's assignments is in a grid within the scope or above one of it: an ``EXISTS`` over
``grid_assignment`` against ``gw_scope_prefixes() || gw_scope_ancestors()``. Every statement that
reads a phone paid for it — the grid panel's six-ones chain, a report's answer: the sub-query
planned (≈ 0.13 ms a statement) and ``gw_scope_ancestors()``, a SQL function with a ``FROM``, planned
again at each run (≈ 0.1 ms), and at city scale the hashed sub-plan reads every assignment of the
city. ``bench rls`` (2026-12-03): +0.31 and +0.38 ms on the two phone-reading statements of a
community leader's report, +0.2 ms each for a resident's (whose phones it hides anyway).

The same test on the row itself:

- ``official_contact.reach`` — every code an official's assignments reach, ``left(g, 9)``,
  ``left(g, 12)`` and ``g`` of each assignment's grid ``g``, whatever its period (as 0012's test):
  kept by the database, not by the application — set when a contact row is added
  (``official_contact_reach``), and for the officials a statement on ``grid_assignment`` adds,
  re-codes, re-assigns or removes rows of (``grid_assignment_reach_*``, statement-level, from the
  transition tables; ending an assignment changes nothing it reaches); a TRUNCATE recomputes all;
- ``gw_scope_reach()`` — the scope's entries, their streets and communities (0012's
  ``gw_scope_ancestors()``) as one array, written as a single expression (no ``FROM``) so that
  PostgreSQL inlines it: the street of each valid entry (9, 12 or 14 digits) is its first nine and
  ``00000``, the community of each 12- or 14-digit entry its first twelve and ``00``. A malformed
  entry stays as it is, and can equal no reached code (those have 9, 12 or 14 digits): it still
  grants nothing;
- the policy: ``reach && (SELECT gw_scope_reach())`` in place of the ``EXISTS`` — the same
  officials for every value of ``gridwatch.grids`` (a test compares both over many values).

The sync function runs as the owner (``SECURITY DEFINER``): a planner's change set writes
``grid_assignment`` as the app role, which may only read ``official_contact``; it widens the
scope to every grid with personal data for its one ``UPDATE`` and puts the caller's back (as
``gw_last_issue_number``).

Revision ID: 0027_contact_reach
Revises: 0026_search_ordered
Create Date: 2026-12-03 20:40:00
"""
import importlib

from alembic import op

from geodata.db.migrate import grant_app

revision = '0027_contact_reach'
down_revision = '0026_search_ordered'
branch_labels = None
depends_on = None

APP_GRANTS: dict[str, str] = {}

_m19 = importlib.import_module("geodata.db.migrations.versions.0019_rls_code_columns")

#: the scope's entries, each valid entry's street and each 12/14-digit entry's community (inlined)
SCOPE_REACH = r"""
CREATE FUNCTION gw_scope_reach() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT string_to_array(concat_ws(',',
           current_setting('gridwatch.grids', true),
           regexp_replace(current_setting('gridwatch.grids', true),
                          '(^|,)([0-9]{9})([0-9]{3}|[0-9]{5})?(?=,|$)', '\1\200000', 'g'),
           regexp_replace(current_setting('gridwatch.grids', true),
                          '(^|,)([0-9]{12})([0-9]{2})?(?=,|$)', '\1\200', 'g')), ',') $$;
"""

REACH = r"""
CREATE FUNCTION gw_official_reach(p_official integer) RETURNS text[] LANGUAGE sql STABLE
  SET search_path = pg_catalog, public AS $$
  SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}')
  FROM grid_assignment a, unnest(ARRAY[left(a.grid_code, 9), left(a.grid_code, 12), a.grid_code::text]) AS x
  WHERE a.official_id = p_official $$;

ALTER TABLE official_contact ADD COLUMN reach text[] NOT NULL DEFAULT '{}';

CREATE FUNCTION gw_contact_reach_row() RETURNS trigger LANGUAGE plpgsql
  SET search_path = pg_catalog, public AS $$
BEGIN
  NEW.reach := gw_official_reach(NEW.official_id);
  RETURN NEW;
END $$;
CREATE TRIGGER official_contact_reach BEFORE INSERT OR UPDATE OF official_id, reach ON official_contact
  FOR EACH ROW EXECUTE FUNCTION gw_contact_reach_row();

CREATE FUNCTION gw_contact_reach_sync() RETURNS trigger LANGUAGE plpgsql
  SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
  ids integer[];
  saved_grids text := current_setting('gridwatch.grids', true);
  saved_personal text := current_setting('gridwatch.personal', true);
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(DISTINCT official_id) INTO ids FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    SELECT array_agg(DISTINCT official_id) INTO ids FROM old_rows;
  ELSIF TG_OP = 'UPDATE' THEN   -- rows whose official or grid changed, on either side
    SELECT array_agg(DISTINCT c.official_id) INTO ids FROM (
      (SELECT id, official_id, grid_code FROM old_rows EXCEPT SELECT id, official_id, grid_code FROM new_rows)
      UNION ALL
      (SELECT id, official_id, grid_code FROM new_rows EXCEPT SELECT id, official_id, grid_code FROM old_rows)) c;
  END IF;
  IF TG_OP <> 'TRUNCATE' AND ids IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('gridwatch.grids', '*', true), set_config('gridwatch.personal', 'on', true);
  -- the row trigger computes each row's reach
  UPDATE official_contact c SET reach = '{}' WHERE TG_OP = 'TRUNCATE' OR c.official_id = ANY (ids);
  PERFORM set_config('gridwatch.grids', coalesce(saved_grids, ''), true),
          set_config('gridwatch.personal', coalesce(saved_personal, ''), true);
  RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION gw_contact_reach_sync() FROM PUBLIC;
CREATE TRIGGER grid_assignment_reach_ins AFTER INSERT ON grid_assignment
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gw_contact_reach_sync();
CREATE TRIGGER grid_assignment_reach_upd AFTER UPDATE ON grid_assignment
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION gw_contact_reach_sync();
CREATE TRIGGER grid_assignment_reach_del AFTER DELETE ON grid_assignment
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gw_contact_reach_sync();
CREATE TRIGGER grid_assignment_reach_truncate AFTER TRUNCATE ON grid_assignment
  FOR EACH STATEMENT EXECUTE FUNCTION gw_contact_reach_sync();
"""

#: THE contact rule (0012's), on the row's reach
CONTACT_VISIBLE = """((SELECT gw_personal_data()) AND (
    (SELECT gw_scope_all())
    OR official_id = (SELECT gw_scope_official())
    OR reach && (SELECT gw_scope_reach())))"""


def upgrade() -> None:
    op.execute(SCOPE_REACH)
    op.execute(REACH)
    # the owner runs migrations under FORCE ROW LEVEL SECURITY: every row, with personal data
    op.execute("SELECT set_config('gridwatch.grids', '*', true), set_config('gridwatch.personal', 'on', true)")
    op.execute("UPDATE official_contact SET reach = '{}'")   # the row trigger fills each
    op.execute(f"ALTER POLICY official_contact_personal ON official_contact USING {CONTACT_VISIBLE}")
    grant_app(APP_GRANTS, functions=("gw_scope_reach()",))


def downgrade() -> None:
    op.execute(f"ALTER POLICY official_contact_personal ON official_contact USING {_m19.CONTACT_VISIBLE}")
    op.execute("""
DROP TRIGGER grid_assignment_reach_ins ON grid_assignment;
DROP TRIGGER grid_assignment_reach_upd ON grid_assignment;
DROP TRIGGER grid_assignment_reach_del ON grid_assignment;
DROP TRIGGER grid_assignment_reach_truncate ON grid_assignment;
DROP FUNCTION gw_contact_reach_sync();
DROP TRIGGER official_contact_reach ON official_contact;
DROP FUNCTION gw_contact_reach_row();
ALTER TABLE official_contact DROP COLUMN reach;
DROP FUNCTION gw_official_reach(integer);
DROP FUNCTION gw_scope_reach();
""")
