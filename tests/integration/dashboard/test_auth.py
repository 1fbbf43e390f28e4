"""The dashboard's sign-in (``dashboard.auth``) on the whole server, as ``create_app`` wires it, on a
scratch database: what a stranger gets, the forms and their CSRF tokens, the session cookie,
cross-site refusal on Dash's endpoint, the capability of the page, the change-password page."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from dashboard.auth import SESSION_COOKIE
from geodata.access import accounts
from geodata.access.models import WebSession
from geodata.db import session_scope
from tests.conftest import SUFFIX
from tests.world import scratch_api, session_id

PW = "duty-officer-password"
PHONE_RE = re.compile(r"1[3-9]\d{9}")


@pytest.fixture(scope="module")
def site(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_auth{SUFFIX}", tmp_path_factory.mktemp("var"), dash=True) as a:
        with session_scope(a.engine) as s:
            accounts.create_account(s, "duty", display_name="值班员", password=PW, grants=(("operator", None),))
            accounts.create_account(s, "dept", password=PW, grants=(("handler", None),))
        yield a


def csrf(resp) -> str:
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', resp.get_data(as_text=True)) or re.search(
        r'id="csrf_token" name="csrf_token" type="hidden" value="([^"]+)"', resp.get_data(as_text=True))
    assert m, resp.get_data(as_text=True)[:500]
    return m.group(1)


def sign_in(site, login="duty", password=PW):
    c = site.client()
    form = c.get("/login")
    r = c.post("/login", data={"csrf_token": csrf(form), "login": login, "password": password})
    return c, r


def test_a_stranger_gets_the_sign_in_page_and_the_public_parts_only(site):
    c = site.client()
    r = c.get("/?grid=41010200100101")
    assert r.status_code == 302 and r.headers["Location"] == "/login?next=%2F%3Fgrid%3D41010200100101"
    for path in ("/_dash-layout", "/_dash-dependencies", "/geo/grids/2.json", "/geo/issues/1.json",
                 "/tiles/heat/15/26726/13004.png"):
        r = c.get(path)
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "sign_in_required", path
    r = c.post("/_dash-update-component", json={"output": "x", "outputs": [], "inputs": [], "changedPropIds": []})
    assert r.status_code == 401
    page = c.get("/login")
    assert page.status_code == 200 and "登录" in page.get_data(as_text=True) and page.headers["Cache-Control"] == "no-store"
    assert "Sign in" in c.get("/login?lang=en").get_data(as_text=True)
    # the public parts: Open311, 该找谁, reference data — and nothing personal in any of them
    for path in ("/open311/v2/services.json", "/open311/v2/requests.json", "/api/v1/meta",
                 "/api/v1/responsible?lon=113.635&lat=34.745"):
        r = c.get(path)
        assert r.status_code == 200, path
        assert not PHONE_RE.search(r.get_data(as_text=True)), path
    assert c.get("/api/v1/issues").status_code == 401


def test_sign_in_sets_a_secure_httponly_samesite_session_and_sign_out_ends_it(site):
    c, r = sign_in(site)
    assert r.status_code == 303 and r.headers["Location"] == "/"
    cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE + "="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    sid = c.get_cookie(SESSION_COOKIE).value
    assert c.get("/").status_code == 200 and c.get("/_dash-layout").status_code == 200
    assert c.get("/geo/grids/2.json").status_code == 200
    assert c.get("/login").status_code == 302   # signed in already
    with session_scope(site.engine) as s:
        assert s.get(WebSession, accounts._digest(sid)).revoked_at is None
    # sign-out needs the form's token
    assert c.post("/logout", data={}).status_code == 400
    page = c.get("/account/password")
    out = c.post("/logout", data={"csrf_token": csrf(page)})
    assert out.status_code == 303 and out.headers["Location"].startswith("/login")
    with session_scope(site.engine) as s:
        assert s.get(WebSession, accounts._digest(sid)).revoked_at is not None
    c.set_cookie(SESSION_COOKIE, sid)   # the old cookie, replayed: ended for good
    assert c.get("/").status_code == 302


def test_sign_in_redirects_only_within_the_site(site):
    c = site.client()
    form = c.get("/login?next=/%3Fgrid%3D41010200100101")
    r = c.post("/login?next=/%3Fgrid%3D41010200100101", data={"csrf_token": csrf(form), "login": "duty", "password": PW})
    assert r.headers["Location"] == "/?grid=41010200100101"
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        c = site.client()
        form = c.get("/login")
        r = c.post(f"/login?next={evil}", data={"csrf_token": csrf(form), "login": "duty", "password": PW})
        assert r.status_code == 303 and r.headers["Location"] == "/", evil


def test_bad_credentials_are_one_generic_message_and_forms_need_their_token(site):
    c, r = sign_in(site, "duty", "not-the-password")
    assert r.status_code == 401 and "登录名或密码错误" in r.get_data(as_text=True)
    assert not c.get_cookie(SESSION_COOKIE)
    c, r = sign_in(site, "no-such-login", PW)
    assert r.status_code == 401 and "登录名或密码错误" in r.get_data(as_text=True)
    # CSRF: no token, or another browser's token → refused before any password is checked
    c = site.client()
    r = c.post("/login", data={"login": "duty", "password": PW})
    assert r.status_code == 400 and "表单已过期" in r.get_data(as_text=True) and not c.get_cookie(SESSION_COOKIE)
    other = site.client()
    r = c.post("/login", data={"csrf_token": csrf(other.get("/login")), "login": "duty", "password": PW})
    assert r.status_code == 400 and not c.get_cookie(SESSION_COOKIE)


def test_a_locked_account_is_told_so(site):
    with session_scope(site.engine) as s:
        accounts.create_account(s, "locky", password=PW, grants=(("operator", None),))
        aid = accounts.account_id(s, "locky")
    for _ in range(accounts.MAX_FAILURES):
        with session_scope(site.engine) as s:
            s.get(accounts.Account, aid).last_failed_at = None   # no backoff in between
        sign_in(site, "locky", "wrong-wrong-wrong")
    c, r = sign_in(site, "locky", PW)
    assert r.status_code == 423 and "账号已锁定" in r.get_data(as_text=True)
    assert not c.get_cookie(SESSION_COOKIE)


def test_cross_site_requests_are_refused(site):
    """CSRF on Dash's state-changing endpoint: the browser's Sec-Fetch-Site (or Origin) must say
    same-origin, besides the SameSite=Lax cookie."""
    c = site.client()
    c.set_cookie(SESSION_COOKIE, session_id(site.engine))
    body = {"output": "x", "outputs": [], "inputs": [], "changedPropIds": []}
    for hdrs in ({"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                 {"Origin": "http://evil.example"}, {"Origin": "null"}):
        r = c.post("/_dash-update-component", json=body, headers=hdrs)
        assert r.status_code == 403 and r.get_json()["error"]["code"] == "cross_site_refused", hdrs
        r = c.post("/logout", data={}, headers=hdrs)
        assert r.status_code == 403
    # same origin: past the gate (the callback guard answers this malformed body)
    ok = c.post("/_dash-update-component", json=body, headers={"Sec-Fetch-Site": "same-origin",
                                                                "Origin": "http://localhost"})
    assert ok.status_code != 403 and ok.get_json()["error"]["code"] != "cross_site_refused"
    # the API takes no cookie, so it has nothing to forge: Open311 still takes residents' posts
    r = c.post("/open311/v2/requests.json", data={"service_code": "problem.sanitation", "lat": "34.755",
                                                 "long": "113.625"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 201


def test_an_account_without_the_map_gets_403(site):
    c, r = sign_in(site, "dept")
    assert r.status_code == 303
    page = c.get("/")
    assert page.status_code == 403 and "该账号无权查看地图" in page.get_data(as_text=True)
    assert c.get("/_dash-layout").status_code == 403
    assert c.get("/geo/grids/2.json").get_json()["error"]["code"] == "forbidden_capability"


def test_change_password_ends_the_other_sessions(site):
    with session_scope(site.engine) as s:
        accounts.create_account(s, "changer", password=PW, grants=(("planner", None),))
    a, _ = sign_in(site, "changer")
    b, _ = sign_in(site, "changer")
    page = a.get("/account/password")
    assert page.status_code == 200
    token = csrf(page)
    r = a.post("/account/password", data={"csrf_token": token, "current": "wrong-current-pw", "new": "x" * 12,
                                          "confirm": "x" * 12})
    assert r.status_code == 422 and "当前密码不正确" in r.get_data(as_text=True)
    r = a.post("/account/password", data={"csrf_token": token, "current": PW, "new": "x" * 12, "confirm": "y" * 12})
    assert r.status_code == 422 and "不一致" in r.get_data(as_text=True)
    r = a.post("/account/password", data={"csrf_token": token, "current": PW, "new": "a-new-password-1",
                                          "confirm": "a-new-password-1"})
    assert r.status_code == 200 and "密码已修改" in r.get_data(as_text=True)
    assert a.get("/").status_code == 200      # this browser stays signed in
    assert b.get("/").status_code == 302      # the other one is signed out (its cached principal forgotten)
    with session_scope(site.engine) as s:
        aid = accounts.account_id(s, "changer")
        live = s.scalars(select(WebSession).where(WebSession.account_id == aid, WebSession.revoked_at.is_(None))).all()
    assert len(live) == 1
    assert site.client().get("/account/password").status_code == 302   # strangers: sign in first


def test_cookies_without_secure_when_the_setting_says_so(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_auth_insecure{SUFFIX}", tmp_path_factory.mktemp("var"),
                     dash=True, secure_cookies=False) as a:
        with session_scope(a.engine) as s:
            accounts.create_account(s, "duty", password=PW, grants=(("operator", None),))
        _, r = sign_in(a)
        cookie = next(h for h in r.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE + "="))
        assert "Secure" not in cookie and "HttpOnly" in cookie


def test_public_map_setting_opens_the_map_without_phones(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_auth_public{SUFFIX}", tmp_path_factory.mktemp("var"),
                     dash=True, public_map=True) as a:
        c = a.client()
        assert c.get("/").status_code == 200
        grids = c.get("/geo/grids/3.json")
        assert grids.status_code == 200 and len(grids.get_json()["features"]) == 4
        layout = json.dumps(c.get("/_dash-layout").get_json(), ensure_ascii=False)
        assert not PHONE_RE.search(layout) and "/login" in layout   # a sign-in link, no account menu
