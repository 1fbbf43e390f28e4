"""Row-level security, checked in SQL through the app role (the role the web server connects as).

The demo database: its tables belong to the owner role; these tests connect as the app role
(``demo_app_engine``) and set the scope as ``geodata.access.rls`` does, or forge it by hand.
The yardstick of every visibility check is THE rule in Python, ``visible_issues``, run as the
superuser (no row-level security): both walls must agree.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import Session

from geodata.access import rls
from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.db import open_session, session_scope
from geodata.db.admin import _admin, create_database, drop_database
from geodata.db.migrate import MIGRATIONS, current_revision, head_revision, upgrade
from geodata.db.roles import APP_ROLE, OWNER_ROLE, prepare_database, role_url
from geodata.models import Issue
from tests.conftest import SUFFIX

PROTECTED = ("issue", "issue_event", "issue_photo", "patrol_diary", "official_contact", "issue_reporter",
             "issue_closed_rollup", "issue_closed_total")


# -- helpers ------------------------------------------------------------------------------------
@pytest.fixture
def app(demo_app_engine: Engine) -> Iterator[Session]:
    """A session as the app role, no scope yet; rolled back afterwards."""
    with Session(demo_app_engine) as s:
        yield s
        s.rollback()


def forged(session: Session, **settings: str) -> None:
    """Set scope settings by hand, as a tampered caller could (``gridwatch.<name>``)."""
    for name, value in settings.items():
        session.execute(text("SELECT set_config(:k, :v, true)"), {"k": f"gridwatch.{name}", "v": value})


def ids_rls(engine: Engine, scope: Scope) -> set[int]:
    """Issue ids through row-level security only (the app role, no WHERE)."""
    with open_session(engine, scope=scope) as s:
        return set(s.scalars(text("SELECT id FROM issue")))


def ids_python(db: Session, scope: Scope) -> set[int]:
    """Issue ids through THE rule in Python (superuser: no row-level security)."""
    return set(db.scalars(select(Issue.id).where(visible_issues(scope))))


def count(session: Session, table: str) -> int:
    return session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


@pytest.fixture(scope="module")
def demo_codes(demo_url) -> dict:
    engine = create_engine(demo_url)
    try:
        with engine.connect() as c:
            communities = c.execute(text("SELECT code FROM grid WHERE level = 2 AND valid_to IS NULL ORDER BY code")
                                    ).scalars().all()
            street = c.execute(text("SELECT code FROM grid WHERE level = 1 AND valid_to IS NULL")).scalar_one()
            block = c.execute(text("SELECT grid_code FROM issue GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")
                              ).scalar_one()
            # an official on the chain of the busiest block's issues, seen with roots elsewhere:
            # the chain (rule 2) reaches beyond the roots (rule 1)
            outsider = c.execute(text("SELECT grid_leader_id FROM issue WHERE grid_code = :b AND grid_leader_id "
                                      "IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"),
                                 {"b": block}).scalar_one()
            roots = [next(x for x in communities if x[:12] != block[:12])]
    finally:
        engine.dispose()
    return {"street": street, "communities": communities, "block": block, "outsider": outsider,
            "outsider_roots": roots}


# -- the app role -------------------------------------------------------------------------------
def test_app_role_is_no_superuser_no_bypass_and_owns_nothing(app):
    me = app.execute(text("SELECT current_user, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication "
                          "FROM pg_roles WHERE rolname = current_user")).one()
    assert tuple(me) == (APP_ROLE, False, False, False, False, False)
    owned = app.execute(text("SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles "
                             "WHERE rolname = current_user)")).scalar_one()
    assert owned == 0
    assert app.execute(text("SELECT pg_has_role(current_user, :o, 'MEMBER')"), {"o": OWNER_ROLE}).scalar_one() is False
    tables = dict(app.execute(text("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public' "
                                   "AND tablename <> 'spatial_ref_sys'")).all())
    assert set(tables.values()) == {OWNER_ROLE}
    flags = dict(app.execute(text("SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class "
                                  "WHERE relname = ANY(:t)"), {"t": list(PROTECTED)}).all())
    assert flags == dict.fromkeys(PROTECTED, True)


def test_app_role_cannot_switch_off_triggers(app):
    with pytest.raises(DBAPIError) as err:
        app.execute(text("SET session_replication_role = replica"))
    assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege)


@pytest.mark.parametrize("sql", ["UPDATE issue_event SET note = 'x'", "DELETE FROM issue_event",
                                 "TRUNCATE issue_event", "DELETE FROM issue", "UPDATE official_contact SET phone = '1'",
                                 "DELETE FROM grid", "DELETE FROM grid_assignment",
                                 "INSERT INTO official (name) VALUES ('x')",
                                 "ALTER TABLE issue DISABLE ROW LEVEL SECURITY", "CREATE TABLE mine (x int)"])
def test_app_role_is_refused_what_it_was_not_granted(app, sql):
    forged(app, grids="*", personal="on")
    with pytest.raises(ProgrammingError) as err:
        app.execute(text(sql))
    assert isinstance(err.value.orig, psycopg.errors.InsufficientPrivilege)


def test_app_grants_are_exactly_the_migrations(app):
    """The app role has exactly what the migrations' ``APP_GRANTS`` give it (0005 and each later one
    that adds tables the server writes), nothing more."""
    import importlib.util

    granted: dict[str, set[str]] = {}
    for path in sorted((MIGRATIONS / "versions").glob("0*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mig = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mig)
        for t, p in getattr(mig, "APP_GRANTS", {}).items():
            granted.setdefault(t, set()).update(p.split(", "))
    rows = app.execute(text("SELECT table_name, string_agg(privilege_type, ', ' ORDER BY privilege_type) "
                            "FROM information_schema.role_table_grants WHERE grantee = current_user "
                            "AND table_schema = 'public' GROUP BY 1")).all()
    expected = {t: ", ".join(sorted(p)) for t, p in granted.items()}
    assert dict(rows) == expected
    assert "block_cell_index" not in dict(rows)   # a CLI-only table stays the owner's


# -- default deny -------------------------------------------------------------------------------
def test_no_scope_sees_no_rows(app):
    for table in PROTECTED:
        assert count(app, table) == 0, table
    assert count(app, "grid") > 0   # not protected: boundaries are public


def test_the_owner_is_subject_too(demo_url):
    engine = create_engine(role_url(demo_url, OWNER_ROLE))
    try:
        with Session(engine) as s:
            assert count(s, "issue") == 0
            forged(s, grids="*")
            assert count(s, "issue") > 4000
    finally:
        engine.dispose()


def test_a_pooled_connection_comes_back_without_scope(demo_app_engine):
    with open_session(demo_app_engine, scope=Scope.everything()) as s:
        assert count(s, "issue") > 0
        s.commit()
        assert count(s, "issue") > 0        # every transaction of the session begins with it
    with Session(demo_app_engine) as s:
        assert count(s, "issue") == 0       # SET LOCAL: gone with the transaction


def test_set_scope_in_an_open_transaction(demo_app_engine, demo_codes):
    """The API learns who calls inside its transaction: the scope applies from then on."""
    with session_scope(demo_app_engine) as s:
        assert count(s, "issue") == 0
        rls.set_scope(s, Scope.grids(demo_codes["communities"][0]))
        n = count(s, "issue")
        assert 0 < n < 4000


# -- the rule: both walls agree ------------------------------------------------------------------
def _scopes(c: dict) -> dict[str, Scope]:
    comm = c["communities"]
    return {
        "everything": Scope.everything(),
        "public": Scope.public(),
        "street": Scope.grids(c["street"]),
        "community": Scope.grids(comm[0]),
        "two communities": Scope.grids(comm[1], comm[4]),
        "block": Scope.grids(c["block"]),
        "official with chain": Scope(roots=frozenset(c["outsider_roots"]), official_id=c["outsider"]),
        "official, no grids": Scope(roots=frozenset(), official_id=c["outsider"]),
        "nothing": Scope.grids(),
    }


@pytest.mark.parametrize("name", ["everything", "public", "street", "community", "two communities", "block",
                                  "official with chain", "official, no grids", "nothing"])
def test_rls_and_visible_issues_agree_on_the_demo(demo_app_engine, db, demo_codes, name):
    scope = _scopes(demo_codes)[name]
    through_rls = ids_rls(demo_app_engine, scope)
    assert through_rls == ids_python(db, scope)
    if name == "official with chain":   # the chain reaches beyond the roots
        in_roots = ids_python(db, Scope(roots=scope.roots))
        assert through_rls > in_roots
    if name in ("community", "block"):
        assert 0 < len(through_rls) < 4348


def test_one_community_sees_its_issues_and_their_children_only(app, db, demo_codes):
    comm = demo_codes["communities"][0]
    rls.apply(app.connection(), Scope.grids(comm))
    issues = set(app.scalars(text("SELECT id FROM issue")))
    assert issues and set(app.scalars(text("SELECT DISTINCT community_code FROM issue"))) == {comm}
    events = set(app.scalars(text("SELECT DISTINCT issue_id FROM issue_event")))
    assert events == issues
    assert events == set(db.scalars(text("SELECT DISTINCT issue_id FROM issue_event e JOIN issue i ON i.id = e.issue_id "
                                         "WHERE i.community_code = :c"), {"c": comm}))
    diary = set(app.scalars(text("SELECT DISTINCT substr(grid_code, 1, 12) FROM patrol_diary")))
    assert diary == {comm[:12]}


# -- personal data ------------------------------------------------------------------------------
def test_personal_data_only_with_personal_data(app, db):
    rls.apply(app.connection(), Scope.everything(personal_data=False))
    assert count(app, "official_contact") == 0 and count(app, "issue_reporter") == 0
    assert app.execute(text("SELECT count(*) FROM issue")).scalar_one() > 0
    rls.apply(app.connection(), Scope.everything(personal_data=True))
    assert count(app, "official_contact") == count(db, "official_contact") > 0
    assert count(app, "issue_reporter") == count(db, "issue_reporter") > 0


def test_reporters_follow_their_issue(app, db, demo_codes):
    comm = demo_codes["communities"][0]
    rls.apply(app.connection(), Scope.grids(comm, personal_data=True))
    mine = app.execute(text("SELECT count(*) FROM issue_reporter")).scalar_one()
    assert mine == db.execute(text("SELECT count(*) FROM issue_reporter r JOIN issue i ON i.id = r.issue_id "
                                   "WHERE i.community_code = :c"), {"c": comm}).scalar_one() > 0


# -- a forged scope cannot widen ----------------------------------------------------------------
@pytest.mark.parametrize("grids", ["", "%", "_", "%%", "4101%", "41010200%", "410102005", " *", "* ", "*,",
                                   "ALL", "410102005001%", "41010200500_"])
def test_malformed_grids_grant_nothing(app, grids):
    """Only exactly '*', or prefixes of exactly 9, 12 or 14 digits, grant anything: an empty prefix
    (which LIKE would match with everything), wildcards, or a short prefix grant nothing."""
    forged(app, grids=grids)
    n = count(app, "issue")
    if grids == "410102005":   # a well-formed street prefix: that street
        assert n > 0
    else:
        assert n == 0, grids


def test_a_malformed_prefix_beside_good_ones_adds_nothing(app, demo_codes):
    comm = demo_codes["communities"][0][:12]
    forged(app, grids=comm)
    alone = count(app, "issue")
    forged(app, grids=f"{comm},,%,41,*,{comm[:11]}_")
    assert count(app, "issue") == alone > 0


@pytest.mark.parametrize("official", ["", "0", "-1", "abc", "1 OR true", "1,2", "99999999999", " 5"])
def test_malformed_official_is_no_official(app, official):
    forged(app, official=official)
    assert count(app, "issue") == 0


@pytest.mark.parametrize("personal", ["true", "ON", "1", "yes", " on"])
def test_personal_data_needs_exactly_on(app, personal):
    forged(app, grids="*", personal=personal)
    assert count(app, "official_contact") == 0


@pytest.mark.parametrize("issues", ["%", "1-9", "0", "-1", "1 OR true", "abc"])
def test_malformed_issue_grants_are_none(app, issues):
    forged(app, issues=issues)
    assert count(app, "issue") == 0


# -- writes -------------------------------------------------------------------------------------
def test_an_event_for_an_issue_out_of_scope_is_refused(app, db, demo_codes):
    comm, other = demo_codes["communities"][0], demo_codes["communities"][1]
    theirs = db.execute(text("SELECT id FROM issue WHERE community_code = :c LIMIT 1"), {"c": other}).scalar_one()
    rls.apply(app.connection(), Scope.grids(comm))
    with pytest.raises(ProgrammingError) as err:
        app.execute(text("INSERT INTO issue_event (issue_id, action, to_status, at) VALUES (:i, 'sign', 'signed', now())"),
                    {"i": theirs})
    assert "row-level security" in str(err.value.orig)


def test_numbering_sees_every_issue_and_keeps_the_callers_scope(app, db):
    rls.apply(app.connection(), Scope.grids())   # sees nothing itself
    last = app.execute(text("SELECT gw_last_issue_number('WT2026', 'WT2027')")).scalar_one()
    assert last == db.execute(text("SELECT max(number) FROM issue WHERE number LIKE 'WT2026%'")).scalar_one()
    assert count(app, "issue") == 0   # the function put the caller's scope back


# -- an older database, upgraded in place -------------------------------------------------------
def test_a_database_from_before_the_roles_is_adopted_and_migrated(server_url):
    """Made as before this change (everything the superuser's, migrated to 0004), then what
    ``gridwatch db up`` does: prepare (roles, ownership) and migrate as the owner."""
    name = f"gridwatch_test_adopt{SUFFIX}"
    url = create_database(server_url, name, migrate=False)
    try:
        with _admin(server_url, name) as conn:   # back to the old state: the superuser owns it all
            conn.execute(f'ALTER DATABASE "{name}" OWNER TO postgres')
            conn.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
        upgrade(url, "0004")
        engine = create_engine(url)
        with engine.begin() as c:
            c.execute(text("INSERT INTO official (name, phone) VALUES ('旧', '13800000000')"))
            assert set(c.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")).scalars()) == {
                "postgres"}
        with _admin(server_url, name) as conn:
            prepare_database(conn, name)
        upgrade(role_url(url, OWNER_ROLE))
        assert current_revision(role_url(url, APP_ROLE)) == head_revision()
        with engine.connect() as c:
            owners = set(c.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = 'public' "
                                        "AND tablename <> 'spatial_ref_sys'")).scalars())
            assert owners == {OWNER_ROLE}
            assert c.execute(text("SELECT phone FROM official_contact")).scalar_one() == "13800000000"
        engine.dispose()
    finally:
        drop_database(server_url, name)


def test_the_app_role_plans_every_statement_for_its_values(demo_app_engine, demo_app_url):
    """A prepared statement (psycopg prepares one run five times on a connection) is planned for
    each execution's values, never once for any: a generic plan cannot see how selective a date
    window is (the map's 本年 markers at 10⁶ issues: 5.9 s instead of 18 ms from the sixth poll on).
    Set for the role (any connection, e.g. a benchmark's) and by the app's own engine."""
    from geodata.db import _engine

    with demo_app_engine.connect() as c:
        assert c.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"
        assert c.execute(text("SHOW jit")).scalar_one() == "off"
    with _engine(demo_app_url, 1, 5.0, 5).connect() as c:
        assert c.execute(text("SHOW plan_cache_mode")).scalar_one() == "force_custom_plan"


def test_an_index_carries_every_column_of_the_issue_policy(db):
    """Counts under row-level security stay index-only scans (migration 0030) only while one index
    holds every column the issue policy reads: a column added to the policy must be added there."""
    policy = db.execute(text("SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polname = 'issue_read'")
                        ).scalar_one()
    columns = set(db.scalars(text("SELECT attname FROM pg_attribute WHERE attrelid = 'issue'::regclass AND attnum > 0 "
                                  "AND NOT attisdropped")))
    read = {c for c in columns if re.search(rf"\b{c}\b", policy)}
    indexed = set(db.scalars(text(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) "
        "WHERE i.indexrelid = 'issue_community_idx'::regclass")))
    assert {"community_code", "street_code", "grid_code", "id", "assignee_id"} <= read
    assert read <= indexed, read - indexed
