"""The administration pages (``dashboard.admin``) on the whole server, on a scratch database: list,
create (user linked to an official, display screen), grant/revoke with grid validation, disable/
enable, unlock, password reset (shown once), tokens (shown once, revocable), the audit log — each
operation one transaction, audited; and the account operations of ``geodata.access.accounts``
they call."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, text

from dashboard.auth import SESSION_COOKIE
from geodata.access import accounts
from geodata.access.models import Account, AuditLog
from geodata.db import session_scope
from geodata.errors import ConflictError, NotFoundError
from tests.conftest import SUFFIX
from tests.world import B11, B21, C1, C2, scratch_api, seed_issues

PW = "admin-password-long"


@pytest.fixture(scope="module")
def site(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_admin{SUFFIX}", tmp_path_factory.mktemp("var"), dash=True) as a:
        with session_scope(a.engine) as s:
            a.world.issues = seed_issues(s, a.world)
            a.admin_id = accounts.create_account(s, "root", display_name="管理员", password=PW,
                                                 grants=(("system_admin", None),))
        assert a.app.test_client().get("/login").status_code == 200
        yield a


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def signed_in(site, login="root", password=PW):
    c = site.app.test_client()
    page = c.get("/login").get_data(as_text=True)
    r = c.post("/login", data={"csrf_token": csrf(page), "login": login, "password": password})
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    return c


def post(c, path: str, data: dict, page: str = "/admin"):
    token = csrf(c.get(page).get_data(as_text=True))
    return c.post(path, data={**data, "csrf_token": token})


def account(site, login: str) -> Account:
    with session_scope(site.engine) as s:
        acc = s.scalar(select(Account).where(Account.login == login))
        if acc is not None:
            s.expunge(acc)
        return acc


def audit_events(site, account_id: int) -> list[str]:
    with site.engine.connect() as c:
        return list(c.execute(text("SELECT event FROM audit_log WHERE account_id = :a ORDER BY id"),
                              {"a": account_id}).scalars())


def secret_of(html: str) -> str:
    m = re.search(r'id="gw-admin-secret">[^<]*<code>([^<]+)</code>', html)
    assert m, html[:2000]
    return m.group(1)


# -- who may ------------------------------------------------------------------------------------------
def test_strangers_sign_in_first_and_other_accounts_are_refused(site):
    r = site.app.test_client().get("/admin")
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=%2Fadmin"
    assert site.app.test_client().get("/admin/audit").status_code == 302
    with session_scope(site.engine) as s:
        sid = accounts.start_session(s, site.world.accounts["c1_secretary"])   # a community leader
    c = site.app.test_client()
    c.set_cookie(SESSION_COOKIE, sid)
    for path in ("/admin", "/admin/audit", f"/admin/accounts/{site.admin_id}"):
        r = c.get(path)
        assert r.status_code == 403 and "无权" in r.get_data(as_text=True), path
    r = c.post(f"/admin/accounts/{site.admin_id}/disable", data={})
    assert r.status_code == 403
    assert account(site, "root").disabled is False


def test_the_list_shows_accounts_roles_state_and_last_sign_in_in_both_languages(site):
    c = signed_in(site)
    html = c.get("/admin").get_data(as_text=True)
    assert 'data-login="c1_secretary"' in html and "社区领导" in html and C1 in html and "西社区" in html
    row = re.search(r'<tr data-login="root">(.*?)</tr>', html, re.S).group(1)
    assert "系统管理员" in row and "全部网格" in row and "年" in row   # the last sign-in, just now
    assert 'lang="zh-CN"' in html and "gw-login-page" in html
    en = c.get("/admin?lang=en").get_data(as_text=True)
    assert "Community leader" in en and "every grid" in en and 'lang="en"' in en and "New account" in en


# -- create ---------------------------------------------------------------------------------------------
def test_create_a_user_linked_to_an_official_with_a_role_password_shown_once(site):
    c = signed_in(site)
    oid = site.world.ids["handler2"]
    with session_scope(site.engine) as s:   # handler2's seeded account: free the official for a new one
        accounts.set_disabled(s, site.world.accounts["handler2"])
        s.execute(text("UPDATE account SET official_id = NULL WHERE id = :a"), {"a": site.world.accounts["handler2"]})
    r = post(c, "/admin/accounts", {"login": "Wang.Li", "display_name": "", "kind": "user", "official": str(oid),
                                    "role": "grid_leader", "grid": B21})
    html = r.get_data(as_text=True)
    assert r.status_code == 201, html[:500]
    pw = secret_of(html)
    acc = account(site, "wang.li")
    assert acc.official_id == oid and acc.display_name == "另一承办人" and acc.password_is_default
    assert [(g.role, g.grid_code) for g in acc.grants] == [("grid_leader", B21)]
    # shown once: the account's page again does not carry it
    assert pw not in c.get(f"/admin/accounts/{acc.id}").get_data(as_text=True)
    # the password signs in, and it is the admin who created the account
    signed_in(site, "wang.li", pw)
    with session_scope(site.engine) as s:
        row = s.scalar(select(AuditLog).where(AuditLog.account_id == acc.id, AuditLog.event == "account_created"))
        assert row.actor_account_id == site.admin_id and pw not in str(row.detail)


@pytest.mark.parametrize(("data", "status", "zh", "en"), [
    ({"login": "x", "role": "grid_leader", "grid": B11}, 422, "登录名须为", "a login is"),
    ({"login": "new-one", "role": "grid_leader", "grid": "41010200100199"}, 404, "不存在", "no grid"),
    ({"login": "new-one", "role": "grid_leader", "grid": "4101020010"}, 422, "网格编码无效", "invalid grid code"),
    ({"login": "new-one", "role": "grid_leader", "grid": C1}, 422, "不能授予该级网格", "cannot be granted"),
    ({"login": "new-one", "role": "community_leader", "grid": ""}, 422, "须指定网格", "needs a grid"),
    ({"login": "new-one", "role": "", "grid": C1}, 422, "须选择角色", "Choose a role"),
    ({"login": "new-one", "role": "emperor", "grid": ""}, 422, "角色", "role"),
    ({"login": "new-one", "official": "999999", "role": ""}, 404, "不存在", "no official"),
    ({"login": "new-one", "official": "abc", "role": ""}, 422, "工作人员编号", "official id"),
    ({"login": "root", "role": ""}, 409, "已存在", "exists"),
    ({"login": "new-one", "kind": "display", "role": "operator", "grid": ""}, 422, "显示屏", "display screen"),
])
def test_create_refusals_are_bilingual_and_write_nothing(site, data, status, zh, en):
    c = signed_in(site)
    with site.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM account")).scalar_one()
    form = {"kind": "user", "display_name": "", "official": "", **data}
    r = post(c, "/admin/accounts", form)
    assert r.status_code == status and zh in r.get_data(as_text=True), r.get_data(as_text=True)[:3000]
    token = csrf(c.get("/admin?lang=en").get_data(as_text=True))
    r = c.post("/admin/accounts?lang=en", data={**form, "csrf_token": token})
    assert r.status_code == status and en in r.get_data(as_text=True)
    with site.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM account")).scalar_one() == before


def test_create_a_display_screen_and_issue_its_token(site):
    c = signed_in(site)
    r = post(c, "/admin/accounts", {"login": "wall-1", "kind": "display", "role": "display", "grid": "",
                                    "official": "", "display_name": "指挥中心大屏"})
    assert r.status_code == 201 and 'id="gw-admin-secret"' not in r.get_data(as_text=True)
    acc = account(site, "wall-1")
    assert acc.kind == "display" and acc.password_hash is None
    r = post(c, f"/admin/accounts/{acc.id}/tokens", {"label": "大屏"}, page=f"/admin/accounts/{acc.id}")
    tok = secret_of(r.get_data(as_text=True))
    assert tok.startswith("gw_")
    api = site.app.test_client()
    assert api.get("/api/v1/grids", headers={"Authorization": f"Bearer {tok}"}).status_code == 200
    assert api.get("/api/v1/issues", headers={"Authorization": f"Bearer {tok}"}).status_code == 403
    # revoke → the token is dead
    tid = accounts_tokens(site, acc.id)[-1]["id"]
    r = post(c, f"/admin/accounts/{acc.id}/tokens/{tid}/revoke", {}, page=f"/admin/accounts/{acc.id}")
    assert r.status_code == 200 and "已吊销" in r.get_data(as_text=True)
    assert api.get("/api/v1/grids", headers={"Authorization": f"Bearer {tok}"}).status_code == 401
    # another account's token id under this account: refused
    other = accounts_tokens(site, site.world.accounts["operator"])[0]["id"]
    r = post(c, f"/admin/accounts/{acc.id}/tokens/{other}/revoke", {}, page=f"/admin/accounts/{acc.id}")
    assert r.status_code == 404
    assert accounts_tokens(site, site.world.accounts["operator"])[0]["revoked_at"] is None
    events = audit_events(site, acc.id)
    assert events[-1] == "token_revoked" and "token_issued" in events


def accounts_tokens(site, aid: int) -> list[dict]:
    with session_scope(site.engine) as s:
        return accounts.list_tokens(s, aid)


# -- one account ------------------------------------------------------------------------------------
def test_grant_and_revoke_change_what_the_account_sees_at_once(site):
    c = signed_in(site)
    aid = site.world.accounts["b11_leader"]
    page = f"/admin/accounts/{aid}"
    token = site.world.tokens["b11_leader"]
    api = site.app.test_client()

    def grids_seen() -> set[str]:
        r = api.get("/api/v1/issues?page_size=200", headers={"Authorization": f"Bearer {token}"})
        return {i["grid_code"][:12] + "00" for i in r.get_json()["items"]}

    assert C2 not in grids_seen()
    r = post(c, f"{page}/grant", {"role": "grid_leader", "grid": B21}, page=page)
    assert r.status_code == 200 and "角色已授予" in r.get_data(as_text=True)
    assert C2 in grids_seen()
    r = post(c, f"{page}/grant", {"role": "grid_leader", "grid": "41010200100299"}, page=page)
    assert r.status_code == 404 and "网格“41010200100299”不存在" in r.get_data(as_text=True)
    r = post(c, f"{page}/revoke", {"role": "grid_leader", "grid": B21}, page=page)
    assert r.status_code == 200 and "角色已撤销" in r.get_data(as_text=True)
    assert C2 not in grids_seen()
    events = audit_events(site, aid)
    assert events.count("role_granted") == 1 and events.count("role_revoked") == 1


def test_disable_enable_unlock_and_reset_password(site):
    c = signed_in(site)
    with session_scope(site.engine) as s:
        aid = accounts.create_account(s, "clerk", password="clerk-password-1", grants=(("planner", None),))
        for _ in range(accounts.MAX_FAILURES):
            now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10 * _)
            accounts.authenticate(s, "clerk", "wrong-password", now=now)
    page = f"/admin/accounts/{aid}"
    html = c.get(page).get_data(as_text=True)
    assert "锁定至" in html and 'id="gw-admin-unlock"' in html
    r = post(c, f"{page}/unlock", {}, page=page)
    assert r.status_code == 200 and "已解除锁定" in r.get_data(as_text=True)
    assert account(site, "clerk").locked_until is None
    signed_in(site, "clerk", "clerk-password-1")
    # reset: a new password, shown once; the old one no longer works
    r = post(c, f"{page}/password", {}, page=page)
    pw = secret_of(r.get_data(as_text=True))
    assert pw != "clerk-password-1" and account(site, "clerk").password_is_default
    signed_in(site, "clerk", pw)
    # disable: its sessions end; enable again
    user = signed_in(site, "clerk", pw)
    assert user.get("/").status_code == 200
    r = post(c, f"{page}/disable", {}, page=page)
    assert r.status_code == 200 and "已停用" in r.get_data(as_text=True)
    assert user.get("/").status_code == 302   # signed out: its session ended
    r = post(c, f"{page}/enable", {}, page=page)
    assert r.status_code == 200 and account(site, "clerk").disabled is False
    # an admin cannot disable their own account
    r = post(c, f"/admin/accounts/{site.admin_id}/disable", {}, page=f"/admin/accounts/{site.admin_id}")
    assert r.status_code == 409 and "不能停用自己的账号" in r.get_data(as_text=True)
    assert {"locked", "account_unlocked", "password_set", "account_disabled", "account_enabled"} <= \
        set(audit_events(site, aid))


def test_unknown_account_is_a_404(site):
    c = signed_in(site)
    assert c.get("/admin/accounts/999999").status_code == 404
    assert post(c, "/admin/accounts/999999/disable", {}).status_code == 404


# -- the audit log ------------------------------------------------------------------------------------
def test_the_audit_log_lists_sign_ins_failures_lockouts_grants_tokens_and_personal_views(site):
    c = signed_in(site)
    with session_scope(site.engine) as s:
        aid = accounts.create_account(s, "auditee", password="auditee-password", grants=(("grid_leader", B11),))
        for i in range(accounts.MAX_FAILURES):
            accounts.authenticate(s, "auditee", "nope-nope-nope", now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=i))
        accounts.audit_personal_view(s, aid, "official_phone", grid_code=B11, count=3, via="test")
    html = c.get("/admin/audit").get_data(as_text=True)
    for label in ("登录", "登录失败", "账号锁定", "创建账号", "查看个人信息"):
        assert label in html, label
    only = c.get("/admin/audit?login=auditee&event=personal_data_viewed").get_data(as_text=True)
    rows = re.findall(r'<tr data-event="([a-z_]+)">', only)
    assert rows == ["personal_data_viewed"] and "grid_code=" + B11 in only and "count=3" in only
    assert "1380000" not in html   # never a phone
    bad = c.get("/admin/audit?event=nonsense")
    assert bad.status_code == 404 and "未知的审计事件" in bad.get_data(as_text=True)
    assert "Audit log" in c.get("/admin/audit?lang=en").get_data(as_text=True)


def test_personal_data_views_are_audited_once_per_request(site):
    """The panel callback and the API's contact routes: one audit row per answer that showed
    phones or a reporter's contact, none for an answer without them."""
    w = site.world
    tok = w.tokens["c1_secretary"]
    aid = w.accounts["c1_secretary"]
    api = site.app.test_client()

    def views() -> list[dict]:
        with site.engine.connect() as c:
            return list(c.execute(text("SELECT detail FROM audit_log WHERE account_id = :a AND "
                                       "event = 'personal_data_viewed' ORDER BY id"), {"a": aid}).scalars())

    before = len(views())
    r = api.get("/api/v1/responsible?lon=113.625&lat=34.755", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and any(o.get("phone") for o in r.get_json()["officials"])
    got = views()
    assert len(got) == before + 1
    assert got[-1]["kind"] == "official_phone" and got[-1]["grid_code"] == B11 and got[-1]["count"] >= 2
    # a planner (no personal data) is shown no phone, and nothing is audited for them
    r = api.get("/api/v1/responsible?lon=113.625&lat=34.755", headers={"Authorization": f"Bearer {w.tokens['planner']}"})
    assert not any(o.get("phone") for o in r.get_json()["officials"])
    with site.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit_log WHERE account_id = :a AND event = 'personal_data_viewed'"),
                         {"a": w.accounts["planner"]}).scalar_one() == 0


# -- the account operations ------------------------------------------------------------------------
def test_account_operations(site):
    with session_scope(site.engine) as s:
        aid = accounts.create_account(s, "ops", password="ops-password-12", grants=(("assessor", None),))
        a = accounts.get_account(s, aid)
        assert a["login"] == "ops" and a["tokens"] == [] and a["last_sign_in"] is None
        assert accounts.unlock(s, aid) is False          # nothing to lift: no audit row
        accounts.authenticate(s, "ops", "ops-password-12")
        assert accounts.get_account(s, aid)["last_sign_in"] is not None
        with pytest.raises(NotFoundError):
            accounts.get_account(s, 10**8)
        with pytest.raises(NotFoundError) as err:
            accounts.grant_role(s, aid, "grid_leader", "41010200100109", existing_grids=True)
        assert err.value.field == "grid"
        accounts.grant_role(s, aid, "grid_leader", B11, existing_grids=True)
        with pytest.raises(ConflictError):
            accounts.set_disabled(s, aid, actor_account_id=aid)
        pw = accounts.reset_password(s, aid, actor_account_id=site.admin_id)
        assert accounts.authenticate(s, "ops", pw).ok
    assert "account_unlocked" not in audit_events(site, aid)
