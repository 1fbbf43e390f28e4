"""Signing in with a real browser (Debian chromium): a stranger gets the sign-in page, a wrong
password a generic message, the right one the map (the server's Secure session cookie kept over
http://127.0.0.1), sign-out ends the session; the English switch."""
from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from dashboard.auth import SESSION_COOKIE
from geodata.access import accounts
from geodata.access.models import Account, WebSession
from geodata.db import session_scope
from tests.e2e.conftest import csp_safe_waits, csp_violations, watch_csp

PASSWORD = "correct-horse-battery"


@pytest.fixture
def account(map_engine):
    login = f"e2e-{secrets.token_hex(3)}"
    with session_scope(map_engine) as s:
        aid = accounts.create_account(s, login, display_name="测试值班员", password=PASSWORD,
                                      grants=(("operator", None),))
    return login, aid


@pytest.fixture
def stranger(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    watch_csp(context)
    pg = context.new_page()
    pg.set_default_timeout(15000)
    csp_safe_waits(pg)
    violations = csp_violations(pg)
    yield pg
    assert not violations, violations
    context.close()


def test_sign_in_see_the_map_sign_out(stranger, live_server, account, map_engine, shot):
    login, aid = account
    pg = stranger
    pg.goto(live_server.url + "/")
    assert pg.url.startswith(live_server.url + "/login")            # a stranger: the sign-in page
    expect(pg.locator("h2")).to_have_text("登录")
    # a wrong password: one generic message, no map, no session
    pg.fill("#login", login)
    pg.fill("#password", "not-the-password")
    pg.click("button[type=submit]")
    expect(pg.locator("#gw-login-msg")).to_have_text("登录名或密码错误")
    shot(pg, "20-sign-in-wrong-password")
    assert not [c for c in pg.context.cookies() if c["name"] == SESSION_COOKIE]
    # an unknown login: the same message
    pg.fill("#login", "nobody-" + login)
    pg.fill("#password", PASSWORD)
    pg.click("button[type=submit]")
    expect(pg.locator("#gw-login-msg")).to_have_text("登录名或密码错误")
    # the right one (one failure so far: no backoff yet)
    pg.fill("#login", login)
    pg.fill("#password", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_function("document.querySelectorAll('.leaflet-interactive').length >= 14", timeout=30000)
    assert pg.url.rstrip("/") == live_server.url
    cookie = next(c for c in pg.context.cookies() if c["name"] == SESSION_COOKIE)
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"   # kept over http://127.0.0.1
    expect(pg.locator(".gw-account-name")).to_have_text("测试值班员")
    shot(pg, "21-signed-in-map")
    # sign out: back to the sign-in page, the session ended in the database, the map closed again
    pg.click("[data-testid=sign-out]")
    expect(pg.locator("#gw-login-msg")).to_have_text("已退出登录")
    with session_scope(map_engine) as s:
        ended = s.scalars(select(WebSession.revoked_at).where(WebSession.account_id == aid)).all()
    assert ended and all(t is not None for t in ended)
    pg.goto(live_server.url + "/")
    assert pg.url.startswith(live_server.url + "/login")


def test_sign_in_page_in_english_and_the_lockout_message(stranger, live_server, account, map_engine):
    login, _ = account
    pg = stranger
    pg.goto(live_server.url + "/login")
    pg.click("a[hreflang=en]")
    expect(pg.locator("h2")).to_have_text("Sign in")
    expect(pg.locator("label[for=password]")).to_have_text("Password")
    with session_scope(map_engine) as s:   # five failures already (no backoff in between): locked
        for _ in range(accounts.MAX_FAILURES):
            s.get(Account, accounts.account_id(s, login)).last_failed_at = None
            accounts.authenticate(s, login, "wrong-wrong-wrong")
    pg.fill("#login", login)
    pg.fill("#password", PASSWORD)
    pg.click("button[type=submit]")
    expect(pg.locator("#gw-login-msg")).to_contain_text("locked until")
    assert not [c for c in pg.context.cookies() if c["name"] == SESSION_COOKIE]

