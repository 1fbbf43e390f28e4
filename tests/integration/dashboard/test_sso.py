"""Single sign-on (OpenID Connect, dashboard.sso) through the whole server on a scratch database,
against a real provider over HTTP (tests/oidc_provider.py): the button on the sign-in page, the
code flow to a session for the account the provider names, and every refusal — an account not
opened here, a disabled or locked one, a display account, a forged state, an ID token for another
client, from another issuer or signed with a key not the provider's, the user cancelling — each
the sign-in page with one message and no session. Without settings there is no SSO at all."""
from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select, update

from dashboard.auth import SESSION_COOKIE
from geodata.access import accounts
from geodata.access.models import Account, AuditLog
from geodata.db import session_scope
from tests.conftest import SUFFIX
from tests.oidc_provider import Provider
from tests.world import scratch_api

PW = "duty-officer-password"


@pytest.fixture(scope="module")
def provider():
    p = Provider().start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def site(server_url, tmp_path_factory, provider):
    with scratch_api(server_url, f"gridwatch_test_sso{SUFFIX}", tmp_path_factory.mktemp("var"), dash=True,
                     oidc_issuer=provider.url, oidc_client_id=provider.client_id,
                     oidc_client_secret=provider.client_secret, oidc_label="政务统一身份认证") as a:
        with session_scope(a.engine) as s:
            accounts.create_account(s, "zhangwei", display_name="张伟", password=PW, grants=(("operator", None),))
            accounts.create_account(s, "offduty", password=PW, grants=(("operator", None),))
            accounts.create_account(s, "screen1", kind="display", grants=(("display", None),))
        yield a


@pytest.fixture(autouse=True)
def fresh_provider(provider):
    provider.claims, provider.audience, provider.issuer_claim = {}, None, None
    provider.signing_key = provider.key
    yield


def sso(site, provider, claims: dict, *, next_path: str = "/", tamper_state: bool = False):
    """The browser's part of the code flow: our /login/oidc → the provider → our callback."""
    provider.claims = claims
    c = site.client()
    r = c.get(f"/login/oidc?next={next_path}")
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    at = r.headers["Location"]
    assert at.startswith(provider.url + "/authorize?")
    q = parse_qs(urlsplit(at).query)
    assert q["redirect_uri"] == ["http://localhost/login/oidc/callback"] and q["nonce"] and q["state"]
    back = requests.get(at, allow_redirects=False, timeout=10)
    assert back.status_code == 302
    cb = urlsplit(back.headers["Location"])
    query = cb.query.replace("state=", "state=x") if tamper_state else cb.query
    return c, c.get(f"{cb.path}?{query}")


def session_cookie(c) -> str | None:
    ck = c.get_cookie(SESSION_COOKIE)
    return ck.value if ck else None


def test_the_sign_in_page_offers_it(site):
    page = site.client().get("/login?next=%2Fassessment").get_data(as_text=True)
    assert 'id="gw-login-sso"' in page and "使用政务统一身份认证登录" in page
    assert 'href="/login/oidc?next=%2Fassessment"' in page
    assert "Sign in with 政务统一身份认证" in site.client().get("/login?lang=en").get_data(as_text=True)


def test_the_provider_names_an_account_here_and_it_is_signed_in(site, provider):
    c, r = sso(site, provider, {"sub": "u-123", "preferred_username": "ZhangWei"}, next_path="/assessment")
    assert r.status_code == 303 and r.headers["Location"] == "/assessment"
    sid = session_cookie(c)
    assert sid
    with session_scope(site.engine) as s:
        assert accounts.verify_session(s, sid).login == "zhangwei"
        row = s.scalars(select(AuditLog).where(AuditLog.event == "sign_in").order_by(AuditLog.id.desc())).first()
        assert row.login == "zhangwei" and row.detail["method"] == "oidc" and row.detail["subject"] == "u-123"
    assert c.get("/").status_code == 200   # the map, as the account


@pytest.mark.parametrize("claims,says", [
    ({"preferred_username": "nobody-here"}, "未在本系统开通"),
    ({"sub": "no-login-claim"}, "未在本系统开通"),
    ({"preferred_username": "screen1"}, "未在本系统开通"),     # a display account is not a person
    ({"preferred_username": ["zhangwei"]}, "未在本系统开通"),  # not a string
])
def test_an_account_not_opened_here_is_refused(site, provider, claims, says):
    c, r = sso(site, provider, claims)
    assert r.status_code == 401 and says in r.get_data(as_text=True)
    assert session_cookie(c) is None


def test_a_disabled_or_locked_account_is_refused(site, provider):
    with session_scope(site.engine) as s:
        s.execute(update(Account).where(Account.login == "offduty").values(disabled=True))
    c, r = sso(site, provider, {"preferred_username": "offduty"})
    assert r.status_code == 401 and session_cookie(c) is None
    with session_scope(site.engine) as s:
        s.execute(update(Account).where(Account.login == "offduty").values(
            disabled=False, locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)))
    c, r = sso(site, provider, {"preferred_username": "offduty"})
    assert r.status_code == 423 and "锁定" in r.get_data(as_text=True) and session_cookie(c) is None
    with session_scope(site.engine) as s:
        s.execute(update(Account).where(Account.login == "offduty").values(locked_until=None))


@pytest.mark.parametrize("lie", ["audience", "issuer", "key", "state"])
def test_an_answer_that_fails_its_checks_is_refused(site, provider, lie):
    from joserfc.jwk import RSAKey

    if lie == "audience":
        provider.audience = "another-client"
    elif lie == "issuer":
        provider.issuer_claim = "https://evil.example"
    elif lie == "key":
        provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    c, r = sso(site, provider, {"preferred_username": "zhangwei"}, tamper_state=lie == "state")
    assert r.status_code == 401 and "统一身份认证未通过" in r.get_data(as_text=True), r.get_data(as_text=True)[:300]
    assert "Traceback" not in r.get_data(as_text=True) and session_cookie(c) is None


def test_cancelled_at_the_provider_and_a_callback_out_of_nowhere(site):
    c = site.client()
    r = c.get("/login/oidc/callback?error=access_denied&state=x")
    assert r.status_code == 401 and "已取消" in r.get_data(as_text=True)
    r = c.get("/login/oidc/callback?code=abc&state=never-issued")
    assert r.status_code == 401 and session_cookie(c) is None


def test_next_stays_on_this_site(site, provider):
    _c, r = sso(site, provider, {"preferred_username": "zhangwei"}, next_path="//evil.example/x")
    assert r.status_code == 303 and r.headers["Location"] == "/"


def test_without_settings_there_is_no_single_sign_on(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_nosso{SUFFIX}", tmp_path_factory.mktemp("var"), dash=True) as a:
        c = a.client()
        assert "gw-login-sso" not in c.get("/login").get_data(as_text=True)
        assert c.get("/login/oidc").status_code == 404 and c.get("/login/oidc/callback?code=x").status_code == 404
