"""the app role's grants and row-level security (issue #10, "enforced in PostgreSQL")

- Personal data moves out of the wide tables: officials' phones to ``official_contact``, the
  reporter's name and phone to ``issue_reporter``; each has its own policy (personal data only).
- Row-level security, ENABLE + FORCE (the owner is subject to it too), on ``issue``,
  ``issue_event``, ``issue_photo``, ``patrol_diary``, ``official_contact`` and ``issue_reporter``,
  keyed by the transaction's scope settings (``geodata.access.rls``), mirroring
  ``geodata.access.visibility``. No scope set: no rows.
- The app role gets exactly :data:`APP_GRANTS` (grants are made per migration, never by default
  privileges: a later migration's new table is the app's only when that migration grants it).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00
"""
from alembic import context, op

from geodata.db.migrate import grant_app, grantee

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

#: What the web server may do, table by table. Append-only tables: INSERT and SELECT only.
APP_GRANTS = {
    "alembic_version": "SELECT",             # readiness: is the database migrated?
    "domain": "SELECT",
    "grid": "SELECT",
    "official": "SELECT",
    "official_contact": "SELECT",
    "grid_assignment": "SELECT",
    "activity": "SELECT",
    "issue": "SELECT, INSERT, UPDATE",
    "issue_reporter": "SELECT, INSERT",
    "issue_event": "SELECT, INSERT",         # append-only (and its trigger refuses UPDATE/DELETE)
    "issue_photo": "SELECT, INSERT",
    "patrol_diary": "SELECT, INSERT, UPDATE",
    "outbox": "SELECT, INSERT",
    "idempotency_key": "SELECT, INSERT",
}
APP_SEQUENCES = ("issue_id_seq", "issue_event_id_seq", "issue_photo_id_seq", "patrol_diary_id_seq",
                 "outbox_id_seq")

SCOPE_FUNCTIONS = r"""
-- the transaction's scope (geodata.access.rls); a malformed value grants nothing
CREATE FUNCTION gw_scope_all() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(current_setting('gridwatch.grids', true) = '*', false) $$;
CREATE FUNCTION gw_scope_patterns() RETURNS text[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(p || '%'), '{}')
  FROM unnest(string_to_array(current_setting('gridwatch.grids', true), ',')) AS p
  WHERE p ~ '^([0-9]{9}|[0-9]{12}|[0-9]{14})$' $$;
CREATE FUNCTION gw_scope_official() RETURNS integer LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN v ~ '^[1-9][0-9]{0,8}$' THEN v::integer END
  FROM (SELECT current_setting('gridwatch.official', true) AS v) s $$;
CREATE FUNCTION gw_scope_issues() RETURNS bigint[] LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(v::bigint), '{}')
  FROM unnest(string_to_array(current_setting('gridwatch.issues', true), ',')) AS v
  WHERE v ~ '^[1-9][0-9]{0,17}$' $$;
CREATE FUNCTION gw_personal_data() RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(current_setting('gridwatch.personal', true) = 'on', false) $$;
-- issue numbers are taken over every issue, whoever reports (geodata.workflow.numbering): the
-- function widens the scope for its one query and puts the caller's back
CREATE FUNCTION gw_last_issue_number(lo text, hi text) RETURNS text LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
DECLARE
  saved text := current_setting('gridwatch.grids', true);
  found text;
BEGIN
  PERFORM set_config('gridwatch.grids', '*', true);
  SELECT max(number) INTO found FROM public.issue WHERE number >= lo AND number < hi;
  PERFORM set_config('gridwatch.grids', coalesce(saved, ''), true);
  RETURN found;
END $$;
REVOKE ALL ON FUNCTION gw_last_issue_number(text, text) FROM PUBLIC;
-- the live stamp (geodata.maps.live): moves when any issue is added, changed or removed, whoever
-- looks; an md5, so it tells a viewer nothing about the issues it may not see
CREATE FUNCTION gw_change_stamp() RETURNS text LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog, public AS $$
DECLARE
  saved text := current_setting('gridwatch.grids', true);
  stamp text;
BEGIN
  PERFORM set_config('gridwatch.grids', '*', true);
  SELECT concat_ws('|', count(i.id), coalesce(max(i.id), 0),
                   (SELECT coalesce(max(e.id), 0) FROM public.issue_event e),
                   (SELECT coalesce(n_tup_upd, 0) + coalesce(n_tup_del, 0) FROM pg_stat_user_tables
                    WHERE relid = 'public.issue'::regclass))
    INTO stamp FROM public.issue i;
  PERFORM set_config('gridwatch.grids', coalesce(saved, ''), true);
  RETURN md5(stamp);
END $$;
REVOKE ALL ON FUNCTION gw_change_stamp() FROM PUBLIC;
"""

#: THE visibility rule (geodata.access.visibility) on a row of ``issue``. Each (SELECT f()) is an
#: InitPlan: computed once per statement, not per row.
ISSUE_VISIBLE = """(
    (SELECT gw_scope_all())
    OR (SELECT gw_scope_official()) = ANY (ARRAY[assignee_id, grid_leader_id, responsible_id, leader_in_charge_id])
    OR id = ANY ((SELECT gw_scope_issues())::bigint[])
    OR grid_code LIKE ANY ((SELECT gw_scope_patterns())::text[]))"""

#: A child row follows its issue: visible when the issue is (the EXISTS runs under issue's policy).
def _follows_issue(table: str) -> str:
    return f"((SELECT gw_scope_all()) OR EXISTS (SELECT 1 FROM issue WHERE issue.id = {table}.issue_id))"


DIARY_VISIBLE = """(
    (SELECT gw_scope_all())
    OR grid_code LIKE ANY ((SELECT gw_scope_patterns())::text[])
    OR official_id = (SELECT gw_scope_official()))"""

POLICIES = f"""
CREATE POLICY issue_read ON issue FOR SELECT USING {ISSUE_VISIBLE};
CREATE POLICY issue_report ON issue FOR INSERT WITH CHECK (true);            -- anyone may report anywhere
CREATE POLICY issue_change ON issue FOR UPDATE USING {ISSUE_VISIBLE} WITH CHECK (true);

CREATE POLICY issue_event_read ON issue_event FOR SELECT USING {_follows_issue('issue_event')};
CREATE POLICY issue_event_append ON issue_event FOR INSERT WITH CHECK {_follows_issue('issue_event')};

CREATE POLICY issue_photo_read ON issue_photo FOR SELECT USING {_follows_issue('issue_photo')};
CREATE POLICY issue_photo_add ON issue_photo FOR INSERT WITH CHECK {_follows_issue('issue_photo')};

CREATE POLICY patrol_diary_rows ON patrol_diary FOR ALL USING {DIARY_VISIBLE} WITH CHECK {DIARY_VISIBLE};

CREATE POLICY official_contact_personal ON official_contact FOR SELECT USING ((SELECT gw_personal_data()));
-- kept by the owner (the app may only read): its writes need personal data to find the rows
CREATE POLICY official_contact_add ON official_contact FOR INSERT WITH CHECK (true);
CREATE POLICY official_contact_change ON official_contact FOR UPDATE USING ((SELECT gw_personal_data())) WITH CHECK (true);
CREATE POLICY official_contact_remove ON official_contact FOR DELETE USING ((SELECT gw_personal_data()));

CREATE POLICY issue_reporter_personal ON issue_reporter FOR SELECT
  USING ((SELECT gw_personal_data()) AND EXISTS (SELECT 1 FROM issue WHERE issue.id = issue_reporter.issue_id));
CREATE POLICY issue_reporter_add ON issue_reporter FOR INSERT
  WITH CHECK (EXISTS (SELECT 1 FROM issue WHERE issue.id = issue_reporter.issue_id));
"""

PROTECTED = ("issue", "issue_event", "issue_photo", "patrol_diary", "official_contact", "issue_reporter")


def upgrade() -> None:
    app = grantee(context.config)
    op.execute("""
        CREATE TABLE official_contact (
          official_id integer PRIMARY KEY REFERENCES official (id),
          phone varchar(20) NOT NULL);
        INSERT INTO official_contact (official_id, phone) SELECT id, phone FROM official WHERE phone IS NOT NULL;
        ALTER TABLE official DROP COLUMN phone;
        CREATE TABLE issue_reporter (
          issue_id bigint PRIMARY KEY REFERENCES issue (id),
          name varchar(50),
          phone varchar(20),
          CONSTRAINT issue_reporter_given CHECK (name IS NOT NULL OR phone IS NOT NULL));
        INSERT INTO issue_reporter (issue_id, name, phone)
          SELECT id, reporter_name, reporter_phone FROM issue
          WHERE reporter_name IS NOT NULL OR reporter_phone IS NOT NULL;
        ALTER TABLE issue DROP COLUMN reporter_name, DROP COLUMN reporter_phone;
    """)
    op.execute(SCOPE_FUNCTIONS)
    for table in PROTECTED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY; ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(POLICIES)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {app}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app}")
    grant_app(APP_GRANTS, APP_SEQUENCES, ("gw_last_issue_number(text, text)", "gw_change_stamp()"))


def downgrade() -> None:
    app = grantee(context.config)
    for table in PROTECTED:
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY; ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    for name, table in (("issue_read", "issue"), ("issue_report", "issue"), ("issue_change", "issue"),
                        ("issue_event_read", "issue_event"), ("issue_event_append", "issue_event"),
                        ("issue_photo_read", "issue_photo"), ("issue_photo_add", "issue_photo"),
                        ("patrol_diary_rows", "patrol_diary")):
        op.execute(f"DROP POLICY {name} ON {table}")   # the other tables' policies go with them
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {app}")
    op.execute("""
        ALTER TABLE issue ADD COLUMN reporter_name varchar(50), ADD COLUMN reporter_phone varchar(20);
        UPDATE issue SET reporter_name = r.name, reporter_phone = r.phone FROM issue_reporter r WHERE r.issue_id = issue.id;
        DROP TABLE issue_reporter;
        ALTER TABLE official ADD COLUMN phone varchar(20);
        UPDATE official SET phone = c.phone FROM official_contact c WHERE c.official_id = official.id;
        DROP TABLE official_contact;
        DROP FUNCTION gw_last_issue_number(text, text); DROP FUNCTION IF EXISTS gw_change_stamp();
        DROP FUNCTION gw_personal_data(); DROP FUNCTION gw_scope_issues(); DROP FUNCTION gw_scope_official();
        DROP FUNCTION gw_scope_patterns(); DROP FUNCTION gw_scope_all();
    """)
