"""The administration pages in a real browser (Debian chromium): the system admin signs in, creates
an account, grants it a community leader's role; the new user signs in with the password shown once
and sees their community only; the admin revokes the role and the map is gone for them."""
from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from dashboard.i18n import t
from geodata.access import accounts
from geodata.db import session_scope
from tests.e2e.conftest import csp_safe_waits, csp_violations, watch_csp

PASSWORD = "admin-e2e-password"


@pytest.fixture
def admin_login(map_engine):
    login = f"root-{secrets.token_hex(3)}"
    with session_scope(map_engine) as s:
        accounts.create_account(s, login, display_name="系统管理员", password=PASSWORD,
                                grants=(("system_admin", None),))
    return login


@pytest.fixture
def contexts(browser):
    made = []

    def new():
        context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
        watch_csp(context)
        pg = context.new_page()
        pg.set_default_timeout(15000)
        csp_safe_waits(pg)
        made.append((context, csp_violations(pg)))
        return pg

    yield new
    for context, violations in made:
        assert not violations, violations
        context.close()


def sign_in(pg, url: str, login: str, password: str) -> None:
    pg.goto(url + "/login")
    pg.fill("#login", login)
    pg.fill("#password", password)
    pg.click("button[type=submit]")


def communities_seen(pg) -> int:
    """How many community polygons the map's own data route gives this browser (its cookie)."""
    return pg.evaluate("async () => (await (await fetch('/geo/grids/2.json')).json()).features.length")


def test_admin_creates_grants_and_revokes(contexts, live_server, map_engine, admin_login, shot):
    with map_engine.connect() as c:
        community, name = c.execute(text("SELECT code, name FROM grid WHERE level = 2 AND valid_to IS NULL "
                                         "ORDER BY code LIMIT 1")).one()
        total = c.execute(text("SELECT count(*) FROM grid WHERE level = 2 AND valid_to IS NULL")).scalar_one()
    admin = contexts()
    sign_in(admin, live_server.url, admin_login, PASSWORD)
    admin.goto(live_server.url + "/admin")
    expect(admin.locator("h2")).to_have_text("账号管理")
    expect(admin.locator(f'#gw-admin-accounts tr[data-login="{admin_login}"]')).to_contain_text("系统管理员")
    shot(admin, "60-admin-accounts")

    # create a user (no role yet): the password is shown once
    login = f"leader-{secrets.token_hex(3)}"
    admin.fill("#gw-admin-create #login", login)
    admin.fill("#gw-admin-create #display_name", "王社区")
    admin.click("#gw-admin-create button[type=submit]")
    expect(admin.locator("#gw-admin-msg")).to_have_text("账号已创建")
    password = admin.locator("#gw-admin-secret code").inner_text().strip()
    assert len(password) >= 10
    shot(admin, "61-admin-created-password-once")

    # a grid that does not exist: a clear message, nothing granted
    admin.select_option("#gw-admin-grant #role", "community_leader")
    admin.fill("#gw-admin-grant #grid", community[:9] + "99900")
    admin.click("#gw-admin-grant button[type=submit]")
    expect(admin.locator("#gw-admin-msg")).to_contain_text("不存在")
    expect(admin.locator("#gw-admin-grants li[data-role]")).to_have_count(0)
    # the community leader's role on the first community
    admin.select_option("#gw-admin-grant #role", "community_leader")
    admin.fill("#gw-admin-grant #grid", community)
    admin.click("#gw-admin-grant button[type=submit]")
    expect(admin.locator("#gw-admin-msg")).to_have_text("角色已授予")
    expect(admin.locator(f'#gw-admin-grants li[data-role="community_leader"][data-grid="{community}"]')
           ).to_contain_text(name)
    shot(admin, "62-admin-role-granted")

    # the new user signs in and sees their community only
    user = contexts()
    sign_in(user, live_server.url, login, password)
    user.wait_for_selector(".leaflet-container")
    assert communities_seen(user) == 1 < total
    assert communities_seen(admin) == total
    shot(user, "63-admin-new-user-own-scope")

    # revoked: gone
    admin.click('#gw-admin-grants li[data-role="community_leader"] button[type=submit]')
    expect(admin.locator("#gw-admin-msg")).to_have_text("角色已撤销")
    resp = user.goto(live_server.url + "/")
    assert resp.status == 403
    expect(user.locator("h2")).to_have_text(t("no_map_access", "zh"))
    assert user.evaluate("async () => (await fetch('/geo/grids/2.json')).status") == 403
    expect(user.locator("body")).not_to_contain_text(name)
    shot(user, "64-admin-revoked-no-map")

    # the audit log shows what happened, in English too
    admin.goto(live_server.url + "/admin/audit?lang=en")
    expect(admin.locator("#gw-admin-audit")).to_contain_text("role granted")
    expect(admin.locator("#gw-admin-audit")).to_contain_text("role revoked")
    expect(admin.locator("#gw-admin-audit")).to_contain_text("account created")
    shot(admin, "65-admin-audit-en")
