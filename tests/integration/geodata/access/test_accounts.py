"""Accounts on a real PostGIS (rollback-per-test sessions): sign-in with backoff and lockout, web
sessions, API tokens, the audit log (written, append-only, no secrets), the demo accounts, and
the principal's scope and workflow actor."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select, text
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError

from etl.demo_accounts import ensure_demo_accounts
from geodata.access import accounts
from geodata.access.accounts import BACKOFF_S, LOCKOUT, MAX_FAILURES
from geodata.access.capabilities import GRANTABLE, Grant
from geodata.access.models import Account, ApiToken, AuditLog, WebSession
from geodata.errors import ConflictError, DomainError
from tests.world import B11, C1, seed

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
PW = "a-long-enough-password"


@pytest.fixture
def w(empty_db):
    return seed(empty_db)


def make(s, login="duty", password=PW, grants=(("operator", None),), **kw) -> int:
    return accounts.create_account(s, login, password=password, grants=grants, now=T0, **kw)


def audit_rows(s, account_id=None) -> list[tuple[str, dict]]:
    q = select(AuditLog.event, AuditLog.detail).order_by(AuditLog.id)
    if account_id is not None:
        q = q.where(AuditLog.account_id == account_id)
    return [tuple(r) for r in s.execute(q)]


def test_sign_in_and_its_audit(empty_db):
    s = empty_db
    aid = make(s)
    ok = accounts.authenticate(s, "  DUTY ", PW, now=T0)   # logins are case- and space-insensitive
    assert ok.ok and ok.principal.account_id == aid and ok.principal.may("assign", B11)
    bad = accounts.authenticate(s, "duty", "wrong-password!", now=T0)
    unknown = accounts.authenticate(s, "nobody", PW, now=T0)
    assert bad.outcome == unknown.outcome == "invalid" and bad.principal is None   # one answer for both
    events = [e for e, _ in audit_rows(s)]
    assert events[-3:] == ["sign_in", "sign_in_failed", "sign_in_failed"]
    last = s.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert last.account_id is None and last.login == "nobody" and last.detail == {"reason": "unknown_login"}
    # a disabled account: the same generic answer, even with the right password
    accounts.set_disabled(s, aid, now=T0)
    assert accounts.authenticate(s, "duty", PW, now=T0 + dt.timedelta(minutes=1)).outcome == "invalid"
    # no password, token or hash ever reaches the audit log
    dump = str(s.execute(text("SELECT json_agg(a) FROM audit_log a")).scalar_one())
    assert PW not in dump and "wrong-password!" not in dump and "argon2" not in dump


def test_backoff_then_lockout_after_repeated_failures(empty_db):
    s = empty_db
    aid = make(s)
    t = T0
    for n in range(1, MAX_FAILURES):
        r = accounts.authenticate(s, "duty", "wrong-password!", now=t)
        assert r.outcome == "invalid", n
        wait = dt.timedelta(seconds=BACKOFF_S[n])
        if wait:   # too soon: refused without checking the password, the right one neither
            soon = accounts.authenticate(s, "duty", PW, now=t + wait / 2)
            assert soon.outcome == "wait" and soon.retry_at == t + wait
        t += wait
    locked = accounts.authenticate(s, "duty", "wrong-password!", now=t)
    assert locked.outcome == "locked" and locked.retry_at == t + LOCKOUT
    assert accounts.authenticate(s, "duty", PW, now=t + LOCKOUT - dt.timedelta(seconds=1)).outcome == "locked"
    assert "locked" in [e for e, _ in audit_rows(s, aid)]
    ok = accounts.authenticate(s, "duty", PW, now=t + LOCKOUT)
    assert ok.ok
    acc = s.get(Account, aid)
    assert acc.failed_attempts == 0 and acc.locked_until is None


def test_sessions_end_on_sign_out_password_change_and_expiry(empty_db):
    s = empty_db
    aid = make(s)
    a = accounts.start_session(s, aid, now=T0)
    b = accounts.start_session(s, aid, now=T0)
    assert accounts.verify_session(s, a, now=T0).account_id == aid
    assert s.get(WebSession, a) is None   # stored hashed: the cookie's value is no key in the table
    assert accounts.verify_session(s, "forged", now=T0) is None
    assert accounts.verify_session(s, a, now=T0 + accounts.SESSION_TTL) is None   # expired
    accounts.end_session(s, a, now=T0)
    assert accounts.verify_session(s, a, now=T0) is None and accounts.verify_session(s, b, now=T0) is not None
    c = accounts.start_session(s, aid, now=T0)
    with pytest.raises(DomainError) as err:
        accounts.change_password(s, aid, "not-the-current-one", "another-long-password", now=T0)
    assert err.value.code == "wrong_password"
    with pytest.raises(DomainError):
        accounts.change_password(s, aid, PW, "short", now=T0)
    accounts.change_password(s, aid, PW, "another-long-password", keep_session=c, now=T0)
    assert accounts.verify_session(s, b, now=T0) is None           # the other sessions ended
    assert accounts.verify_session(s, c, now=T0) is not None       # the one that changed it stays
    assert accounts.authenticate(s, "duty", "another-long-password", now=T0).ok
    accounts.set_password(s, aid, "set-by-the-admin-1", default=True, now=T0)   # the admin's reset: all end
    assert accounts.verify_session(s, c, now=T0) is None
    events = [e for e, _ in audit_rows(s, aid)]
    assert {"sign_out", "password_changed", "password_set"} <= set(events)


def test_tokens_last_use_and_revocation(empty_db):
    s = empty_db
    aid = make(s)
    raw = accounts.issue_token(s, aid, "phone", now=T0)
    assert raw.startswith("gw_") and len(raw) > 40
    tok = s.scalars(select(ApiToken).where(ApiToken.account_id == aid)).one()
    assert raw not in (tok.token_hash, tok.label) and tok.last_used_at is None
    assert accounts.verify_token(s, raw, now=T0).account_id == aid
    assert tok.last_used_at == T0
    accounts.verify_token(s, raw, now=T0 + dt.timedelta(seconds=30))      # within a minute: not noted again
    accounts.verify_token(s, raw, now=T0 + dt.timedelta(minutes=2))
    assert tok.last_used_at == T0 + dt.timedelta(minutes=2)
    assert [e for e, _ in audit_rows(s, aid)].count("token_used") == 2
    assert accounts.verify_token(s, raw[:-1] + ("A" if raw[-1] != "A" else "B"), now=T0) is None
    accounts.revoke_token(s, tok.id, now=T0)
    assert accounts.verify_token(s, raw, now=T0) is None
    # disabling an account revokes its tokens and ends its sessions
    other = accounts.issue_token(s, aid, now=T0)
    sid = accounts.start_session(s, aid, now=T0)
    accounts.set_disabled(s, aid, now=T0)
    assert accounts.verify_token(s, other, now=T0) is None and accounts.verify_session(s, sid, now=T0) is None
    accounts.set_disabled(s, aid, False, now=T0)
    assert accounts.verify_token(s, other, now=T0) is None           # revoked for good
    assert [t["revoked_at"] is not None for t in accounts.list_tokens(s, aid)] == [True, True]


def test_audit_log_is_append_only(empty_db):
    s = empty_db
    make(s)
    for sql in ("UPDATE audit_log SET event = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        nested = s.begin_nested()
        with pytest.raises(DBAPIError) as err:
            s.execute(text(sql))
        nested.rollback()
        assert "append-only" in str(err.value)
    assert audit_rows(s)


def test_accounts_and_grants_are_checked(empty_db, w):
    s = empty_db
    for login, kw, code in [("A b", {}, "invalid_login"), ("x", {}, "invalid_login"),
                            ("wall", {"kind": "display", "grants": (("operator", None),)}, "display_role"),
                            ("lead", {"grants": (("display", None),)}, "display_role"),
                            ("gl", {"grants": (("grid_leader", C1),)}, "grid_level")]:
        with pytest.raises(DomainError) as err:
            make(s, login, **kw)
        assert err.value.code == code
    make(s, "duty")
    with pytest.raises(ConflictError):
        make(s, "DUTY")
    with pytest.raises(ConflictError):   # one account per official
        make(s, "again", official_id=w.ids["operator"])
    aid = accounts.account_id(s, "duty")
    accounts.grant_role(s, aid, "planner", None)
    accounts.grant_role(s, aid, "planner", None)   # twice: one grant
    assert next(g for g in accounts.list_accounts(s) if g["login"] == "duty")["grants"] == [
        ("operator", None), ("planner", None)]
    accounts.revoke_role(s, aid, "operator", None)
    assert not accounts.load_principal(s, aid).may("assign", B11)


def test_principal_of_an_official(empty_db, w):
    s = empty_db
    p = w.principal(s, "c1_maintainer")
    assert p.official_id == w.ids["c1_maintainer"] and p.grants == (Grant("platform_maintainer", C1),)
    sc = p.scope()
    assert sc.roots == frozenset({C1}) and sc.personal_data and sc.official_id == p.official_id
    assert p.actor.roles_for(B11) == {"platform_maintainer"} and p.actor.may("assign", B11)
    assert p.actor.scope() == sc
    # an inactive official's account has no principal
    s.execute(text("UPDATE official SET active = false WHERE id = :i"), {"i": w.ids["c1_maintainer"]})
    s.expire_all()
    assert accounts.load_principal(s, w.accounts["c1_maintainer"]) is None


def test_demo_accounts_for_every_role_and_production_refuses_them(db):
    # as on a freshly loaded demo: no account holds an official yet (other tests' accounts, committed
    # to the shared demo, may hold the street's; this is rolled back with the test)
    db.execute(sql_text("UPDATE account SET official_id = NULL"))
    rows = ensure_demo_accounts(db)
    assert {r.login for r in rows} == set(GRANTABLE) - {"handler"}
    assert all(r.password for r in rows)
    linked = {r.login: r.official_id for r in rows}
    assert all(linked[r] for r in ("operator", "street_leader", "community_leader", "platform_maintainer",
                                   "sunk_member", "grid_leader"))
    assert linked["system_admin"] is None and linked["planner"] is None
    by = {r.login: r for r in rows}
    assert accounts.authenticate(db, "grid_leader", by["grid_leader"].password).principal.scope().roots == \
        frozenset({by["grid_leader"].grid_code})
    assert sorted(accounts.unsafe_accounts(db)) == sorted(by)
    # again: new passwords for the demo accounts; one someone took over (own password) is left alone
    aid = accounts.account_id(db, "planner")
    accounts.change_password(db, aid, by["planner"].password, "the-planners-own-password")
    again = {r.login: r for r in ensure_demo_accounts(db)}
    assert again["planner"].password is None and "planner" not in accounts.unsafe_accounts(db)
    assert not accounts.authenticate(db, "operator", by["operator"].password).ok
    assert accounts.authenticate(db, "operator", again["operator"].password).ok


def test_token_cache_checks_every_use_and_sets_the_scope(w, empty_db):
    """The API's token cache answers a known token with one statement (which also sets the scope),
    and reads it again as soon as anything its principal is built from changes: revoked, disabled,
    a grant, the official's assignments; a use falling due is noted as without the cache."""
    s = empty_db
    oid = w.ids["b11_leader"]
    aid = w.accounts["b11_leader"]
    raw = accounts.issue_token(s, aid, "phone", now=T0)
    cache = accounts.TokenCache()
    first = cache.verify(s, raw, now=T0)
    assert first.account_id == aid and first.official_id == oid
    statements: list[str] = []
    conn = s.connection()

    def note(_c, _cur, statement, *_a):
        statements.append(statement)
    event.listen(conn, "before_cursor_execute", note)
    try:
        assert cache.verify(s, raw, now=T0 + dt.timedelta(seconds=10)) is first
        assert len(statements) == 1 and "set_config" in statements[0]
        assert s.execute(text("SELECT current_setting('gridwatch.grids', true), "
                              "current_setting('gridwatch.official', true)")).one() == (
            ",".join(sorted(first.scope().prefixes())), str(oid))
    finally:
        event.remove(conn, "before_cursor_execute", note)
    assert cache.recent(raw, 5.0) is first and cache.recent("gw_unknown", 5.0) is None
    # a grant more: a new principal at once
    accounts.grant_role(s, aid, "operator", now=T0)
    wider = cache.verify(s, raw, now=T0 + dt.timedelta(seconds=20))
    assert wider is not first and Grant("operator", None) in wider.grants
    # the official's assignments end: the chain changes at once
    s.execute(text("DELETE FROM grid_assignment WHERE official_id = :o"), {"o": oid})
    assert wider.actor.assignments and cache.verify(s, raw, now=T0 + dt.timedelta(seconds=30)).actor.assignments == ()
    # a use falling due is noted (a full read)
    used = [e for e, _ in audit_rows(s, aid)].count("token_used")
    cache.verify(s, raw, now=T0 + dt.timedelta(minutes=2))
    assert [e for e, _ in audit_rows(s, aid)].count("token_used") == used + 1
    # revoked or disabled: refused at the next use
    tok = s.scalars(select(ApiToken).where(ApiToken.account_id == aid, ApiToken.label == "phone")).one()
    accounts.revoke_token(s, tok.id, now=T0)
    assert cache.verify(s, raw, now=T0 + dt.timedelta(minutes=2, seconds=1)) is None
    other = accounts.issue_token(s, aid, now=T0)
    assert cache.verify(s, other, now=T0 + dt.timedelta(minutes=2, seconds=2)).account_id == aid
    accounts.set_disabled(s, aid, now=T0)
    assert cache.verify(s, other, now=T0 + dt.timedelta(minutes=2, seconds=3)) is None
    # a changed principal's scope does not stay on the transaction
    assert s.execute(text("SELECT current_setting('gridwatch.grids', true)")).scalar() == ""


def epoch(s) -> int:
    return s.execute(text("SELECT n FROM principal_epoch")).scalar_one()


def test_what_a_principal_is_built_from_moves_the_epoch_and_nothing_else_does(w, empty_db):
    """Migration 0029: the token cache's one number moves with every change a principal is built
    from, and not with the writes every use or sign-in makes (a use's note, a failed password)."""
    s = empty_db
    aid = w.accounts["b11_leader"]
    raw = accounts.issue_token(s, aid, "phone", now=T0)
    before = epoch(s)
    accounts.verify_token(s, raw, now=T0 + dt.timedelta(hours=1))     # notes the use
    accounts.authenticate(s, "b11_leader", "not-the-password", now=T0)  # a failure counted
    s.flush()
    assert epoch(s) == before
    changes = [
        lambda: accounts.grant_role(s, aid, "operator", now=T0),
        lambda: s.execute(text("UPDATE official SET name = name || '′' WHERE id = :o"), {"o": w.ids["b11_leader"]}),
        lambda: s.execute(text("UPDATE grid_assignment SET valid_to = now() + interval '1 day' "
                               "WHERE official_id = :o"), {"o": w.ids["b11_leader"]}),
        lambda: accounts.set_disabled(s, aid, now=T0),
    ]
    for change in changes:
        at = epoch(s)
        change()
        s.flush()
        assert epoch(s) > at


def test_an_assignment_beginning_later_reaches_a_kept_principal_at_its_time(w, empty_db):
    """No write says an assignment has begun: the cache keeps the time and reads in full then."""
    s = empty_db
    oid, aid = w.ids["b11_leader"], w.accounts["b11_leader"]
    raw = accounts.issue_token(s, aid, "phone", now=T0)
    starts = T0 + dt.timedelta(seconds=30)
    other = s.execute(text("SELECT code FROM grid WHERE level = 3 AND code <> :b AND valid_to IS NULL "
                           "ORDER BY code LIMIT 1"), {"b": B11}).scalar_one()
    s.execute(text("INSERT INTO grid_assignment (official_id, grid_code, role, title, rank, valid_from) "
                   "VALUES (:o, :g, 'grid_leader', '测试', 5, :t)"), {"o": oid, "g": other, "t": starts})
    cache = accounts.TokenCache()
    first = cache.verify(s, raw, now=T0)
    assert other not in {code for code, _ in first.actor.assignments}
    assert cache.verify(s, raw, now=T0 + dt.timedelta(seconds=10)) is first    # kept: nothing changed
    later = cache.verify(s, raw, now=starts + dt.timedelta(seconds=1))
    assert later is not first and other in {code for code, _ in later.actor.assignments}
