"""Signing in to the dashboard: the sign-in, sign-out and change-password pages, the session cookie,
the gate in front of every page, callback and map route, and cross-site request refusal.

- **Who**: the ``gw_session`` cookie carries a random session id (``geodata.access.accounts``
  stores its SHA-256); HttpOnly, SameSite=Lax, Secure unless ``settings.secure_cookies`` is off
  (browsers keep Secure cookies on http://127.0.0.1 and http://localhost too). The principal is
  read once per request into ``flask.g`` (:func:`request_principal`) — never from callback inputs —
  and kept :data:`PRINCIPAL_TTL_S` seconds per session in-process (a sign-out or password change
  here forgets it at once; a change made by another process counts after at most that long).
- **The gate** (:func:`install`): the API (``/api/``, ``/open311/``: bearer tokens, never the
  cookie), static files and the sign-in page are open; the map page, Dash's endpoints, ``/geo/``
  and ``/tiles/`` need the home page's capability (``Page.capability``, ``view_map``) — anonymous
  visitors get the sign-in page (a page) or 401 (data) unless ``settings.public_map``; an account
  without it gets 403.
- **CSRF**: the forms carry Flask-WTF tokens (signed with ``settings.secret_key``, else a random
  key kept in ``var_dir/secret_key``); and every state-changing request that is not the API is
  refused when the browser says it is cross-site (``Sec-Fetch-Site``, else ``Origin`` ≠ host) — which
  covers Dash's ``POST /_dash-update-component`` — besides the SameSite cookie.
"""
from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import flask
from flask import Flask, Response, g, redirect, render_template_string, request
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from geodata.access import accounts
from geodata.access.accounts import Principal
from geodata.clock import business_zone
from geodata.db import is_unavailable, session_scope
from geodata.errors import DomainError

from . import sso
from .api.core import ApiError
from .context import LANG_COOKIE, PRINCIPAL_ATTR, request_principal
from .i18n import LANGS, fmt_time, norm_lang, t

SESSION_COOKIE = "gw_session"
#: Flask's own (signed) session cookie: it holds only the forms' CSRF secret
FORM_COOKIE = "gw_form"
PRINCIPAL_TTL_S = 5.0

#: never behind the gate: the API authenticates by token itself; static files; the sign-in page;
#: the phone app's shell (``/m/``: static, it signs in through the API with a device token)
OPEN_PREFIXES = ("/api/", "/open311/", "/assets/", "/_dash-component-suites/", "/m/")
OPEN_PATHS = frozenset({"/login", "/logout", "/_favicon.ico", "/favicon.ico", "/m", sso.LOGIN_PATH,
                        sso.CALLBACK_PATH})
#: routes that answer data (401/403 in the API's format), not pages (a redirect to sign in)
DATA_PREFIXES = ("/_dash-", "/_reload-hash", "/geo/", "/tiles/")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: the wall page and its streams: a display token (cookie gw_wall) or a signed-in view_wall account
WALL_PATH = "/wall"


class LoginForm(FlaskForm):
    login = StringField(validators=[DataRequired(), Length(max=100)])
    password = PasswordField(validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):
    current = PasswordField(validators=[DataRequired(), Length(max=200)])
    new = PasswordField(validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(validators=[DataRequired(), Length(max=200)])


# -- the principal of a request ---------------------------------------------------------------------
class _PrincipalCache:
    def __init__(self) -> None:
        self._data: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, sid: str, *, stale: bool = False) -> Principal | None:
        """The principal read for ``sid`` in the last :data:`PRINCIPAL_TTL_S` seconds (``stale``:
        whenever it was last read)."""
        with self._lock:
            hit = self._data.get(sid)
        if hit is None or (not stale and time.monotonic() - hit[0] > PRINCIPAL_TTL_S):
            return None
        return hit[1]

    def put(self, sid: str, p: Principal) -> None:
        with self._lock:
            if len(self._data) > 4096:
                self._data.clear()
            self._data[sid] = (time.monotonic(), p)

    def forget(self, sid: str | None = None, account_id: int | None = None) -> None:
        with self._lock:
            if sid is not None:
                self._data.pop(sid, None)
            if account_id is not None:
                for k in [k for k, (_, p) in self._data.items() if p.account_id == account_id]:
                    del self._data[k]


def cross_site() -> bool:
    """Does the browser say this request comes from another site? ``Sec-Fetch-Site`` (every current
    browser sends it) or, without it, an ``Origin`` that is not this host. Neither: not a browser,
    which carries no one's cookie by accident."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    return urlsplit(origin).netloc.lower() != (request.host or "").lower()


def _secret_key(settings: Any) -> str:
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.var_dir) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


# -- pages --------------------------------------------------------------------------------------------
PAGE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · {{ t('html_title') }}</title>
<link rel="stylesheet" href="/assets/gridwatch.css"></head>
<body class="gw-login-page">
<header class="gw-header gw-login-header"><div class="gw-brand"><h1>{{ t('app_title') }}</h1></div>
<nav class="gw-login-lang">{% for code in langs %}{% if code == lang %}<strong>{{ t_in('lang_name', code) }}</strong>
{% else %}<a href="?lang={{ code }}{{ next_q }}" hreflang="{{ code }}">{{ t_in('lang_name', code) }}</a>{% endif %}{% endfor %}</nav>
</header>
<main class="gw-login">
<h2>{{ title }}</h2>
{% if message %}<p class="gw-login-msg {{ 'gw-login-error' if error else 'gw-login-ok' }}" role="{{ 'alert' if error else 'status' }}" id="gw-login-msg">{{ message }}</p>{% endif %}
{{ body|safe }}
</main></body></html>"""

LOGIN_BODY = """<form method="post" action="/login{{ next_q1 }}" class="gw-login-form">
{{ form.csrf_token }}
<label for="login">{{ t('login_name') }}</label>
<input id="login" name="login" autocomplete="username" required maxlength="100" value="{{ form.login.data or '' }}">
<label for="password">{{ t('password') }}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="200">
<button type="submit" class="gw-login-submit">{{ t('sign_in') }}</button>
</form>
{% if sso %}<p class="gw-login-or">{{ t('sso_or') }}</p>
<a href="/login/oidc{{ next_q1 }}" class="gw-login-submit gw-login-sso" id="gw-login-sso">{{ sso }}</a>{% endif %}"""

PASSWORD_BODY = """<p>{{ t('signed_in_as', name=name) }}</p>
<form method="post" action="/account/password" class="gw-login-form">
{{ form.csrf_token }}
<label for="current">{{ t('current_password') }}</label>
<input id="current" name="current" type="password" autocomplete="current-password" required maxlength="200">
<label for="new">{{ t('new_password') }}</label>
<input id="new" name="new" type="password" autocomplete="new-password" required maxlength="200">
<label for="confirm">{{ t('confirm_password') }}</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" required maxlength="200">
<button type="submit" class="gw-login-submit">{{ t('change_password') }}</button>
</form>
<p><a href="/">{{ t('back_to_map') }}</a></p>"""

FORBIDDEN_BODY = """<p>{{ t('signed_in_as', name=name) }}</p>
<form method="post" action="/logout">{{ csrf|safe }}<button type="submit" class="gw-login-submit">{{ t('sign_out') }}</button></form>"""


def page_lang() -> str:
    """The sign-in pages' language: ``?lang=``, else the cookie, else zh-CN."""
    return norm_lang(request.args.get("lang") or request.cookies.get(LANG_COOKIE))


def _render(lang: str, title_key: str, body: str, *, message: str | None = None, error: bool = False,
            status: int = 200, **ctx: Any) -> Response:
    tt = lambda key, **kw: t(key, lang, **kw)
    nxt = _next_path()
    inner = render_template_string(body, t=tt, **ctx)
    html = render_template_string(PAGE, lang=lang, langs=LANGS, title=tt(title_key), t=tt, t_in=t, body=inner,
                                  message=message, error=error,
                                  next_q=f"&next={nxt}" if nxt != "/" else "")
    resp = Response(html, status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    if request.args.get("lang"):
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax")
    return resp


def safe_next(nxt: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//host`` or a scheme)."""
    nxt = nxt or "/"
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or len(nxt) > 500:
        return "/"
    return nxt


def _next_path() -> str:
    return safe_next(request.args.get("next"))


def install(server: Flask, settings: Any, engine: Any, limits: Any, page_capability: str,
            page_capabilities: Mapping[str, str] | None = None) -> None:
    """The gate, the pages and the cookie rules on the dashboard's Flask server.
    ``page_capabilities``: the pages (path → capability) that need more than the home page's
    (the planner's ``edit_boundaries``): refused with a 403 page to an account without it."""
    extra_pages = dict(page_capabilities or {})
    server.secret_key = _secret_key(settings)
    server.config.update(SESSION_COOKIE_NAME=FORM_COOKIE, SESSION_COOKIE_HTTPONLY=True,
                         SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=bool(settings.secure_cookies),
                         WTF_CSRF_TIME_LIMIT=None)   # the token lives as long as the form cookie
    cache = _PrincipalCache()
    server.extensions["gridwatch_principal_cache"] = cache   # dashboard.admin forgets changed accounts
    tz = business_zone(settings)
    ttl = dt.timedelta(hours=settings.session_hours)

    def load(sid: str | None) -> tuple[Principal, bool]:
        """(the principal of a session cookie, whether it could be checked)."""
        if not sid:
            return Principal.anonymous(), True
        hit = cache.get(sid)
        if hit is not None:
            return hit, True
        try:
            with session_scope(engine, limits) as s:
                p = accounts.verify_session(s, sid)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            # the database is down: a viewer read before keeps their page (the map shows the outage
            # note and recovers by itself); a cookie nobody could check yet gets the page as a
            # stranger who sees nothing — its data waits for the database, and for the check
            stale = cache.get(sid, stale=True)
            return (stale, True) if stale is not None else (Principal.anonymous(), False)
        if p is None:
            return Principal.anonymous(), True
        cache.put(sid, p)
        return p, True

    def set_session_cookie(resp: Response, sid: str) -> None:
        resp.set_cookie(SESSION_COOKIE, sid, max_age=int(ttl.total_seconds()), httponly=True, samesite="Lax",
                        secure=bool(settings.secure_cookies), path="/")

    def login_page(lang: str, **kw: Any) -> Response:
        return _render(lang, "sign_in_title", LOGIN_BODY, sso=sso.label(settings, lang) if sso.enabled(settings) else "",
                       **kw)

    def sso_signed_in(account_id: int, nxt: str) -> Response:
        with session_scope(engine, limits) as s:
            sid = accounts.start_session(s, account_id, ttl=ttl)
        resp = redirect(safe_next(nxt), 303)
        set_session_cookie(resp, sid)
        return resp

    def sso_refused(key: str, status: int) -> Response:
        lang = page_lang()
        return login_page(lang, message=t(key, lang), error=True, status=status, form=LoginForm(formdata=None),
                          next_q1="")

    sso.install(server, settings, engine, limits, signed_in=sso_signed_in, refused=sso_refused, next_path=_next_path)

    @server.before_request
    def _gate() -> Response | None:
        path = request.path
        if path.startswith(OPEN_PREFIXES[:2]):
            return None   # the API: tokens, never the cookie (no ambient credential to forge)
        if request.method in UNSAFE and cross_site():
            raise ApiError(403, "cross_site_refused", "拒绝跨站请求", "cross-site request refused", None)
        if path.startswith(OPEN_PREFIXES[2:]):
            return None
        principal, checked = load(request.cookies.get(SESSION_COOKIE))
        setattr(g, PRINCIPAL_ATTR, principal)
        if path in OPEN_PATHS:
            return None
        if path.startswith(("/account/", "/admin/")) or path == "/admin":
            # the admin pages check their own capabilities (dashboard.admin)
            return _sign_in_first() if principal.is_anonymous else None
        if path == WALL_PATH or path.startswith(WALL_PATH + "/"):
            return None   # the wall checks its display token itself (dashboard/pages/wall)
        if path in extra_pages:
            if principal.is_anonymous:
                return _sign_in_first()
            if not principal.may(extra_pages[path]):
                both = f'{t("no_page_access", "zh")} / {t("no_page_access", "en")}'
                return _render(page_lang(), "no_page_access", FORBIDDEN_BODY, status=403, name=principal.display_name,
                               message=both, error=True,
                               csrf=f'<input type="hidden" name="csrf_token" value="{generate_csrf()}">')
            return None
        if principal.may(page_capability) or (principal.is_anonymous and (settings.public_map or not checked)):
            return None
        data = path.startswith(DATA_PREFIXES)
        if principal.is_anonymous:
            if data:
                raise ApiError(401, "sign_in_required", "请先登录", "sign in first", None)
            return _sign_in_first()
        if data:
            raise ApiError(403, "forbidden_capability", "该账号无权查看地图", "this account may not view the map", None)
        lang = page_lang()
        return _render(lang, "no_map_access", FORBIDDEN_BODY, status=403, name=principal.display_name,
                       csrf=f'<input type="hidden" name="csrf_token" value="{generate_csrf()}">')

    def _sign_in_first() -> Response:
        target = request.full_path if request.query_string else request.path
        return redirect(f"/login?next={_quote(target)}", 302)

    @server.route("/login", methods=["GET", "POST"])
    def gw_login() -> Response:
        lang = page_lang()
        form = LoginForm()
        if request.method == "GET":
            if not request_principal().is_anonymous:
                return redirect(_next_path(), 302)
            note = t("signed_out", lang) if request.args.get("signed_out") else None
            return login_page(lang, message=note, form=form, next_q1=_next_q())
        if not form.validate_on_submit():
            msg_key = "csrf_failed" if form.csrf_token.errors else "bad_credentials"
            return login_page(lang, message=t(msg_key, lang), error=True, status=400,
                           form=form, next_q1=_next_q())
        with session_scope(engine, limits) as s:
            res = accounts.authenticate(s, form.login.data, form.password.data)
            sid = accounts.start_session(s, res.principal.account_id, ttl=ttl) if res.ok else None
        if res.ok and sid:
            resp = redirect(_next_path(), 303)
            set_session_cookie(resp, sid)
            return resp
        if res.outcome == "locked":
            msg, status = t("locked", lang, t=fmt_time(res.retry_at, lang, tz, seconds=False)), 423
        elif res.outcome == "wait":
            wait = max(1, int((res.retry_at - dt.datetime.now(dt.UTC)).total_seconds() + 0.999))
            msg, status = t("wait", lang, s=wait), 429
        else:
            msg, status = t("bad_credentials", lang), 401
        return login_page(lang, message=msg, error=True, status=status, form=form,
                       next_q1=_next_q())

    @server.route("/logout", methods=["POST"])
    def gw_logout() -> Response:
        form = FlaskForm()
        if not form.validate_on_submit():
            lang = page_lang()
            return login_page(lang, message=t("csrf_failed", lang), error=True,
                           status=400, form=LoginForm(formdata=None), next_q1="")
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            with session_scope(engine, limits) as s:
                accounts.end_session(s, sid)
            cache.forget(sid)
        resp = redirect("/login?signed_out=1", 303)
        resp.delete_cookie(SESSION_COOKIE, path="/", secure=bool(settings.secure_cookies), httponly=True,
                           samesite="Lax")
        return resp

    @server.route("/account/password", methods=["GET", "POST"])
    def gw_password() -> Response:
        lang = page_lang()
        principal = request_principal()
        form = PasswordForm()
        name = principal.display_name
        if request.method == "GET":
            return _render(lang, "change_password", PASSWORD_BODY, form=form, name=name)
        if not form.validate_on_submit():
            key = "csrf_failed" if form.csrf_token.errors else "password_required"
            return _render(lang, "change_password", PASSWORD_BODY, message=t(key, lang), error=True, status=400,
                           form=form, name=name)
        if form.new.data != form.confirm.data:
            return _render(lang, "change_password", PASSWORD_BODY, message=t("password_mismatch", lang),
                           error=True, status=422, form=form, name=name)
        sid = request.cookies.get(SESSION_COOKIE)
        try:
            with session_scope(engine, limits) as s:
                accounts.change_password(s, principal.account_id, form.current.data, form.new.data,
                                         keep_session=sid)
        except DomainError as exc:
            msg = exc.message_zh if lang == "zh" else exc.message_en
            return _render(lang, "change_password", PASSWORD_BODY, message=msg, error=True, status=422, form=form,
                           name=name)
        cache.forget(account_id=principal.account_id)
        return _render(lang, "change_password", PASSWORD_BODY, message=t("password_changed", lang), form=form,
                       name=name)


def _next_q() -> str:
    nxt = _next_path()
    return "" if nxt == "/" else f"?next={_quote(nxt)}"


def _quote(path: str) -> str:
    return quote(path, safe="")


def csrf_field() -> tuple[str, str]:
    """(name, value) of the CSRF field for a form a page renders (the sign-out button); outside a
    request (a callback body rendered by a test) the value is empty, and the form is refused."""
    return "csrf_token", generate_csrf() if flask.has_request_context() else ""
