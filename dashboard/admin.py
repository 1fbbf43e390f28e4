"""The administration pages (``/admin``, capability ``manage_accounts``; ``/admin/audit``,
``read_audit``): server-rendered Flask pages in the sign-in pages' look, zh-CN first (``?lang=en``
or the language cookie), every form with a Flask-WTF CSRF token.

- ``GET /admin``: every account (login, name, kind, roles with their grids, disabled/locked, last
  sign-in) and the form that creates a user (optionally linked to an official, with a first role)
  or a display screen;
- ``GET /admin/accounts/<id>``: one account — its grants (revoke), a grant form (the role's grid
  must be a current grid's code), disable/enable, unlock, reset password, API tokens (issue/revoke);
- ``GET /admin/audit``: the audit log, newest first (sign-ins, failures, lockouts, grants, tokens,
  personal-data views), filtered by event or login, paged.

Each POST is one transaction of one ``geodata.access.accounts`` operation, audited there with the
admin as the actor; a generated password or a new token is shown in that answer only (never
stored, never redirected through a URL). A refusal is the page again with the bilingual message of
the domain error (4xx), nothing written. The gate (``dashboard.auth``) sends strangers to sign in;
these views check the capability themselves (403 otherwise).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Flask, Response, request
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from geodata.access import accounts
from geodata.access.capabilities import GRANTABLE, MANAGE_ACCOUNTS, READ_AUDIT
from geodata.access.scope import Scope
from geodata.clock import business_zone
from geodata.db import session_scope
from geodata.errors import DomainError, NotFoundError
from geodata.maps.layers import grid_names
from geodata.vocab import ROLE_LABELS

from .context import request_principal
from .i18n import LANGS, fmt_dt, norm_lang, t

#: where ``dashboard.auth`` keeps its principal cache (a change here forgets the account's entries)
PRINCIPAL_CACHE_KEY = "gridwatch_principal_cache"
AUDIT_PAGE = 100


class CreateForm(FlaskForm):
    login = StringField(validators=[DataRequired(), Length(max=40)])
    display_name = StringField(validators=[Optional(), Length(max=100)])
    kind = SelectField(choices=["user", "display"], default="user")
    official = IntegerField(validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])
    role = SelectField(choices=["", *GRANTABLE], default="", validate_choice=True)
    grid = StringField(validators=[Optional(), Length(max=14)])


class GrantForm(FlaskForm):
    role = SelectField(choices=list(GRANTABLE), validate_choice=True)
    grid = StringField(validators=[Optional(), Length(max=14)])


class TokenForm(FlaskForm):
    label = StringField(validators=[Optional(), Length(max=100)])


class ActionForm(FlaskForm):
    """A button: the CSRF token only."""


PAGE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · {{ t('html_title') }}</title>
<link rel="stylesheet" href="/assets/gridwatch.css"><link rel="stylesheet" href="/assets/admin.css"></head>
<body class="gw-login-page gw-admin-page">
<header class="gw-header gw-login-header"><div class="gw-brand"><h1>{{ t('app_title') }}</h1></div>
<nav class="gw-login-lang"><a href="/">{{ t('back_to_map') }}</a>
<a href="/admin{{ lq }}">{{ t('admin_accounts') }}</a><a href="/admin/audit{{ lq }}">{{ t('admin_audit') }}</a>
{% for code in langs %}{% if code == lang %}<strong>{{ t_in('lang_name', code) }}</strong>
{% else %}<a href="?lang={{ code }}" hreflang="{{ code }}">{{ t_in('lang_name', code) }}</a>{% endif %}{% endfor %}</nav>
</header>
<main class="gw-login gw-admin">
<h2>{{ title }}</h2>
{% if message %}<p class="gw-login-msg {{ 'gw-login-error' if error else 'gw-login-ok' }}" role="{{ 'alert' if error else 'status' }}" id="gw-admin-msg">{{ message }}</p>{% endif %}
{% if secret %}<p class="gw-admin-secret" id="gw-admin-secret">{{ secret_label }} <code>{{ secret }}</code></p>{% endif %}
{{ body }}
</main></body></html>"""

LIST_BODY = """<table class="gw-admin-table" id="gw-admin-accounts">
<thead><tr><th>{{ t('login_name') }}</th><th>{{ t('admin_name') }}</th><th>{{ t('admin_kind') }}</th>
<th>{{ t('admin_roles') }}</th><th>{{ t('admin_state') }}</th><th>{{ t('admin_last_sign_in') }}</th></tr></thead>
<tbody>{% for a in rows %}<tr data-login="{{ a.login }}">
<td><a href="/admin/accounts/{{ a.id }}{{ lq }}">{{ a.login }}</a></td><td>{{ a.display_name }}</td><td>{{ a.kind_label }}</td>
<td>{% for g in a.grant_labels %}<span class="gw-admin-grant">{{ g }}</span>{% endfor %}</td>
<td>{{ a.state }}</td><td>{{ a.last }}</td></tr>{% endfor %}</tbody></table>
<h3>{{ t('admin_create') }}</h3>
<form method="post" action="/admin/accounts{{ lq }}" class="gw-login-form gw-admin-form" id="gw-admin-create">
{{ csrf }}
<label for="login">{{ t('login_name') }}</label><input id="login" name="login" required maxlength="40" value="{{ form.login.data or '' }}">
<label for="display_name">{{ t('admin_name') }}</label><input id="display_name" name="display_name" maxlength="100" value="{{ form.display_name.data or '' }}">
<label for="kind">{{ t('admin_kind') }}</label><select id="kind" name="kind">
<option value="user">{{ t('admin_kind_user') }}</option><option value="display">{{ t('admin_kind_display') }}</option></select>
<label for="official">{{ t('admin_official') }}</label><input id="official" name="official" inputmode="numeric" maxlength="10" value="{{ form.official.raw_data[0] if form.official.raw_data else '' }}">
<label for="role">{{ t('admin_first_role') }}</label><select id="role" name="role"><option value="">—</option>
{% for r, label in roles %}<option value="{{ r }}">{{ label }}</option>{% endfor %}</select>
<label for="grid">{{ t('admin_grid') }}</label><input id="grid" name="grid" maxlength="14" inputmode="numeric" placeholder="{{ t('admin_grid_hint') }}" value="{{ form.grid.data or '' }}">
<button type="submit" class="gw-login-submit">{{ t('admin_create_submit') }}</button>
</form>"""

DETAIL_BODY = """<dl class="gw-admin-facts" id="gw-admin-account" data-login="{{ a.login }}">
<dt>{{ t('login_name') }}</dt><dd>{{ a.login }}</dd><dt>{{ t('admin_name') }}</dt><dd>{{ a.display_name }}</dd>
<dt>{{ t('admin_kind') }}</dt><dd>{{ a.kind_label }}</dd>
<dt>{{ t('admin_official_linked') }}</dt><dd>{{ a.official_label }}</dd>
<dt>{{ t('admin_state') }}</dt><dd id="gw-admin-state">{{ a.state }}</dd>
<dt>{{ t('admin_last_sign_in') }}</dt><dd>{{ a.last }}</dd></dl>
<h3>{{ t('admin_roles') }}</h3>
<ul class="gw-admin-grants" id="gw-admin-grants">{% for g in a.grant_rows %}<li data-role="{{ g.role }}" data-grid="{{ g.grid or '' }}">{{ g.label }}
<form method="post" action="/admin/accounts/{{ a.id }}/revoke{{ lq }}" class="gw-admin-inline">{{ csrf }}
<input type="hidden" name="role" value="{{ g.role }}"><input type="hidden" name="grid" value="{{ g.grid or '' }}">
<button type="submit" class="gw-admin-button">{{ t('admin_revoke') }}</button></form></li>
{% else %}<li>{{ t('none') }}</li>{% endfor %}</ul>
<form method="post" action="/admin/accounts/{{ a.id }}/grant{{ lq }}" class="gw-login-form gw-admin-form" id="gw-admin-grant">{{ csrf }}
<label for="role">{{ t('admin_role') }}</label><select id="role" name="role">
{% for r, label in roles %}<option value="{{ r }}">{{ label }}</option>{% endfor %}</select>
<label for="grid">{{ t('admin_grid') }}</label><input id="grid" name="grid" maxlength="14" inputmode="numeric" placeholder="{{ t('admin_grid_hint') }}">
<button type="submit" class="gw-login-submit">{{ t('admin_grant') }}</button></form>
<h3>{{ t('admin_actions') }}</h3>
<div class="gw-admin-actions">
<form method="post" action="/admin/accounts/{{ a.id }}/{{ 'enable' if a.disabled else 'disable' }}{{ lq }}" class="gw-admin-inline">{{ csrf }}
<button type="submit" class="gw-admin-button" id="gw-admin-toggle">{{ t('admin_enable') if a.disabled else t('admin_disable') }}</button></form>
{% if a.locked %}<form method="post" action="/admin/accounts/{{ a.id }}/unlock{{ lq }}" class="gw-admin-inline">{{ csrf }}
<button type="submit" class="gw-admin-button" id="gw-admin-unlock">{{ t('admin_unlock') }}</button></form>{% endif %}
{% if a.kind == 'user' %}<form method="post" action="/admin/accounts/{{ a.id }}/password{{ lq }}" class="gw-admin-inline">{{ csrf }}
<button type="submit" class="gw-admin-button" id="gw-admin-reset">{{ t('admin_reset_password') }}</button></form>{% endif %}
</div>
<h3>{{ t('admin_tokens') }}</h3>
<table class="gw-admin-table" id="gw-admin-tokens"><thead><tr><th>#</th><th>{{ t('admin_token_label') }}</th>
<th>{{ t('admin_created') }}</th><th>{{ t('admin_last_used') }}</th><th>{{ t('admin_state') }}</th><th></th></tr></thead>
<tbody>{% for k in a.token_rows %}<tr data-token="{{ k.id }}"><td>{{ k.id }}</td><td>{{ k.label }}</td><td>{{ k.created }}</td><td>{{ k.used }}</td>
<td>{{ k.state }}</td><td>{% if not k.revoked %}<form method="post" action="/admin/accounts/{{ a.id }}/tokens/{{ k.id }}/revoke{{ lq }}" class="gw-admin-inline">{{ csrf }}
<button type="submit" class="gw-admin-button">{{ t('admin_revoke') }}</button></form>{% endif %}</td></tr>
{% else %}<tr><td colspan="6">{{ t('none') }}</td></tr>{% endfor %}</tbody></table>
<form method="post" action="/admin/accounts/{{ a.id }}/tokens{{ lq }}" class="gw-login-form gw-admin-form" id="gw-admin-token">{{ csrf }}
<label for="label">{{ t('admin_token_label') }}</label><input id="label" name="label" maxlength="100">
<button type="submit" class="gw-login-submit">{{ t('admin_issue_token') }}</button></form>"""

AUDIT_BODY = """<form method="get" action="/admin/audit" class="gw-admin-filter">
<input type="hidden" name="lang" value="{{ lang }}">
<label for="event">{{ t('admin_event') }}</label><select id="event" name="event"><option value="">—</option>
{% for e, label in events %}<option value="{{ e }}"{{ ' selected' if e == event else '' }}>{{ label }}</option>{% endfor %}</select>
<label for="login">{{ t('login_name') }}</label><input id="login" name="login" maxlength="40" value="{{ login }}">
<button type="submit" class="gw-admin-button">{{ t('admin_filter') }}</button></form>
<table class="gw-admin-table" id="gw-admin-audit"><thead><tr><th>{{ t('admin_when') }}</th><th>{{ t('admin_event') }}</th>
<th>{{ t('login_name') }}</th><th>{{ t('admin_by') }}</th><th>{{ t('admin_detail') }}</th></tr></thead>
<tbody>{% for r in rows %}<tr data-event="{{ r.event }}"><td>{{ r.at }}</td><td>{{ r.label }}</td><td>{{ r.login }}</td>
<td>{{ r.by }}</td><td><code>{{ r.detail }}</code></td></tr>{% else %}<tr><td colspan="5">{{ t('none') }}</td></tr>{% endfor %}</tbody></table>
{% if more %}<p><a href="{{ more }}" id="gw-admin-more">{{ t('admin_older') }}</a></p>{% endif %}"""


FORBIDDEN_BODY = """<p>{{ t('signed_in_as', name=name) }}</p>
<form method="post" action="/logout">{{ csrf }}<button type="submit" class="gw-login-submit">{{ t('sign_out') }}</button></form>"""


def _lang() -> str:
    from .auth import page_lang

    return page_lang()


def install(server: Flask, settings: Any, engine: Any, limits: Any) -> None:
    """The admin pages on the dashboard's server (after ``dashboard.auth.install``)."""
    tz = business_zone(settings)
    bp = Blueprint("gw_admin", __name__, url_prefix="/admin")

    def forget(account_id: int) -> None:
        cache = server.extensions.get(PRINCIPAL_CACHE_KEY)
        if cache is not None:
            cache.forget(account_id=account_id)

    def render(title_key: str, body: str, *, message: str | None = None, error: bool = False, status: int = 200,
               secret: str | None = None, secret_key: str = "", **ctx: Any) -> Response:
        from flask import render_template_string

        lang = _lang()
        tt = lambda key, **kw: t(key, lang, **kw)
        lq = f"?lang={lang}"
        csrf = Markup(f'<input type="hidden" name="csrf_token" value="{generate_csrf()}">')
        inner = render_template_string(body, t=tt, lq=lq, csrf=csrf, lang=lang, **ctx)
        html = render_template_string(PAGE, lang=lang, langs=LANGS, title=tt(title_key), t=tt, t_in=t,
                                      body=Markup(inner), message=message, error=error, lq=lq, secret=secret,
                                      secret_label=tt(secret_key) if secret_key else "")
        resp = Response(html, status=status, mimetype="text/html")
        resp.headers["Cache-Control"] = "no-store"
        if request.args.get("lang"):
            resp.set_cookie("gw_lang", lang, max_age=365 * 86400, samesite="Lax")
        return resp

    def refuse(capability: str) -> Response | None:
        """None when the signed-in principal may (the gate has sent strangers to sign in)."""
        p = request_principal()
        if p.may(capability):
            return None
        return render("admin_forbidden", FORBIDDEN_BODY, status=401 if p.is_anonymous else 403,
                      name=p.display_name or "—", message=t("admin_forbidden_text", _lang()), error=True)

    def err_text(exc: DomainError) -> str:
        return exc.message_zh if norm_lang(_lang()) == "zh" else exc.message_en

    def status_of(exc: DomainError) -> int:
        from .api.core import domain_status

        return domain_status(exc)

    # -- presenting --------------------------------------------------------------------------------
    def grant_label(role: str, grid: str | None, names: dict[str, tuple[str, str]], lang: str) -> str:
        zh, en = ROLE_LABELS.get(role, (role, role))
        where = t("admin_all_grids", lang) if grid is None else \
            f"{grid} {(names.get(grid) or ('', ''))[0 if lang == 'zh' else 1] or ''}".strip()
        return f"{zh if lang == 'zh' else en} · {where}"

    def state_of(a: dict, now: dt.datetime, lang: str) -> str:
        parts = []
        if a["disabled"]:
            parts.append(t("admin_disabled", lang))
        if a["locked_until"] is not None and a["locked_until"] > now:
            parts.append(t("admin_locked_until", lang, t=fmt_dt(a["locked_until"], lang, tz)))
        if a["demo"] or a["password_is_default"]:
            parts.append(t("admin_default_password", lang))
        return "，".join(parts) if lang == "zh" and parts else ", ".join(parts) if parts else t("admin_active", lang)

    def present(a: dict, names: dict, lang: str) -> dict:
        now = dt.datetime.now(dt.UTC)
        out = dict(a)
        out["kind_label"] = t("admin_kind_" + a["kind"], lang)
        out["grant_labels"] = [grant_label(r, g, names, lang) for r, g in a["grants"]]
        out["grant_rows"] = [{"role": r, "grid": g, "label": grant_label(r, g, names, lang)} for r, g in a["grants"]]
        out["state"] = state_of(a, now, lang)
        out["locked"] = (a["locked_until"] is not None and a["locked_until"] > now) or a["failed_attempts"] > 0
        out["last"] = fmt_dt(a["last_sign_in"], lang, tz)
        if "tokens" in a:
            out["official_label"] = (f"{a['official_id']} {a.get('official_name') or ''}".strip()
                                     if a["official_id"] is not None else "—")
            out["token_rows"] = [{"id": k["id"], "label": k["label"] or "—", "created": fmt_dt(k["created_at"], lang, tz),
                                  "used": fmt_dt(k["last_used_at"], lang, tz), "revoked": k["revoked_at"] is not None,
                                  "state": t("admin_revoked", lang) if k["revoked_at"] else t("admin_active", lang)}
                                 for k in a["tokens"]]
        return out

    def roles(lang: str) -> list[tuple[str, str]]:
        return [(r, ROLE_LABELS[r][0 if lang == "zh" else 1]) for r in GRANTABLE]

    def list_page(form: CreateForm | None = None, **kw: Any) -> Response:
        lang = _lang()
        with session_scope(engine, limits) as s:
            rows = accounts.list_accounts(s)
            names = grid_names(s, Scope.everything(personal_data=False))
        return render("admin_accounts", LIST_BODY, rows=[present(a, names, lang) for a in rows],
                      form=form or CreateForm(formdata=None), roles=roles(lang), **kw)

    def detail_page(aid: int, **kw: Any) -> Response:
        lang = _lang()
        try:
            with session_scope(engine, limits) as s:
                a = accounts.get_account(s, aid)
                names = grid_names(s, Scope.everything(personal_data=False))
        except NotFoundError as exc:
            return list_page(message=err_text(exc), error=True, status=404)
        return render("admin_account", DETAIL_BODY, a=present(a, names, lang), roles=roles(lang), **kw)

    def csrf_refused(aid: int | None = None) -> Response:
        msg = t("csrf_failed", _lang())
        return detail_page(aid, message=msg, error=True, status=400) if aid is not None else \
            list_page(message=msg, error=True, status=400)

    def act(aid: int, fn: Any, ok_key: str, *, secret_key: str = "") -> Response:
        """One operation on account ``aid`` in one transaction; its page again with the outcome."""
        me = request_principal().account_id
        try:
            with session_scope(engine, limits) as s:
                secret = fn(s, me)
        except DomainError as exc:
            return detail_page(aid, message=err_text(exc), error=True, status=status_of(exc))
        forget(aid)
        return detail_page(aid, message=t(ok_key, _lang()), secret=secret if secret_key else None,
                           secret_key=secret_key)

    def grid_value(raw: str | None) -> str | None:
        v = (raw or "").strip()
        return v or None

    # -- the routes -----------------------------------------------------------------------------------
    @bp.route("", methods=["GET"])
    def admin_home() -> Response:
        return refuse(MANAGE_ACCOUNTS) or list_page()

    @bp.route("/accounts", methods=["POST"])
    def admin_create() -> Response:
        if (r := refuse(MANAGE_ACCOUNTS)) is not None:
            return r
        form = CreateForm()
        if not form.validate_on_submit():
            if form.csrf_token.errors:
                return csrf_refused()
            bad = next(iter(form.errors))
            return list_page(form, message=t("admin_invalid_field", _lang(), f=t("admin_field_" + bad, _lang())),
                             error=True, status=422)
        kind = form.kind.data
        grants = ((form.role.data, grid_value(form.grid.data)),) if form.role.data else ()
        if not grants and grid_value(form.grid.data):
            return list_page(form, message=t("admin_role_needed", _lang()), error=True, status=422)
        me = request_principal().account_id
        password = accounts.generate_password() if kind == "user" else None
        try:
            with session_scope(engine, limits) as s:
                aid = accounts.create_account(s, form.login.data, display_name=(form.display_name.data or None),
                                              kind=kind, official_id=form.official.data, password=password,
                                              password_is_default=True, grants=grants, actor_account_id=me,
                                              existing_grids=True)
        except DomainError as exc:
            return list_page(form, message=err_text(exc), error=True, status=status_of(exc))
        return detail_page(aid, message=t("admin_created_ok", _lang()), secret=password,
                           secret_key="admin_password_once", status=201)

    @bp.route("/accounts/<int:aid>", methods=["GET"])
    def admin_account(aid: int) -> Response:
        return refuse(MANAGE_ACCOUNTS) or detail_page(aid)

    def action(name: str, form_cls: type[FlaskForm] = ActionForm):
        def deco(fn):
            def view(aid: int, **kw: Any) -> Response:
                if (r := refuse(MANAGE_ACCOUNTS)) is not None:
                    return r
                form = form_cls()
                if not form.validate_on_submit():
                    if "csrf_token" in form.errors:
                        return csrf_refused(aid)
                    bad = next(iter(form.errors))
                    return detail_page(aid, message=t("admin_invalid_field", _lang(), f=t("admin_field_" + bad, _lang())),
                                       error=True, status=422)
                return fn(aid, form, **kw)
            view.__name__ = f"admin_{name}"
            return view
        return deco

    def grant(aid: int, form: GrantForm) -> Response:
        return act(aid, lambda s, me: accounts.grant_role(s, aid, form.role.data, grid_value(form.grid.data),
                                                          actor_account_id=me, existing_grids=True), "admin_granted_ok")

    def revoke(aid: int, form: GrantForm) -> Response:
        return act(aid, lambda s, me: accounts.revoke_role(s, aid, form.role.data, grid_value(form.grid.data),
                                                           actor_account_id=me), "admin_revoked_ok")

    def disable(aid: int, _form: ActionForm) -> Response:
        return act(aid, lambda s, me: accounts.set_disabled(s, aid, True, actor_account_id=me), "admin_disabled_ok")

    def enable(aid: int, _form: ActionForm) -> Response:
        return act(aid, lambda s, me: accounts.set_disabled(s, aid, False, actor_account_id=me), "admin_enabled_ok")

    def unlock(aid: int, _form: ActionForm) -> Response:
        return act(aid, lambda s, me: accounts.unlock(s, aid, actor_account_id=me) and None, "admin_unlocked_ok")

    def password(aid: int, _form: ActionForm) -> Response:
        return act(aid, lambda s, me: accounts.reset_password(s, aid, actor_account_id=me), "admin_password_ok",
                   secret_key="admin_password_once")

    def token(aid: int, form: TokenForm) -> Response:
        return act(aid, lambda s, me: accounts.issue_token(s, aid, form.label.data or "", actor_account_id=me),
                   "admin_token_ok", secret_key="admin_token_once")

    def revoke_token(aid: int, _form: ActionForm, tid: int) -> Response:
        return act(aid, lambda s, me: accounts.revoke_token(s, tid, actor_account_id=me, account_id=aid),
                   "admin_token_revoked_ok")

    for name, fn, cls, rule in (("grant", grant, GrantForm, "/accounts/<int:aid>/grant"),
                                ("revoke", revoke, GrantForm, "/accounts/<int:aid>/revoke"),
                                ("disable", disable, ActionForm, "/accounts/<int:aid>/disable"),
                                ("enable", enable, ActionForm, "/accounts/<int:aid>/enable"),
                                ("unlock", unlock, ActionForm, "/accounts/<int:aid>/unlock"),
                                ("password", password, ActionForm, "/accounts/<int:aid>/password"),
                                ("token", token, TokenForm, "/accounts/<int:aid>/tokens"),
                                ("revoke_token", revoke_token, ActionForm, "/accounts/<int:aid>/tokens/<int:tid>/revoke")):
        bp.add_url_rule(rule, endpoint=f"admin_{name}", view_func=action(name, cls)(fn), methods=["POST"])

    @bp.route("/audit", methods=["GET"])
    def admin_audit() -> Response:
        if (r := refuse(READ_AUDIT)) is not None:
            return r
        lang = _lang()
        event = (request.args.get("event") or "").strip()
        login = (request.args.get("login") or "").strip()[:40]
        before = request.args.get("before", "")
        before_id = int(before) if before.isdigit() and len(before) < 19 else None
        message = None
        try:
            with session_scope(engine, limits) as s:
                aid = accounts.account_id(s, login) if login else None
                rows = accounts.read_audit(s, account_id=aid, limit=AUDIT_PAGE, events=(event,) if event else None,
                                           before_id=before_id)
                logins = {a["id"]: a["login"] for a in accounts.list_accounts(s)}
        except DomainError as exc:
            rows, logins, message = [], {}, err_text(exc)
        shown = [{"at": fmt_dt(r["at"], lang, tz), "event": r["event"], "label": t("audit_" + r["event"], lang),
                  "login": r["login"] or logins.get(r["account_id"], r["account_id"] or "—"),
                  "by": logins.get(r["actor_account_id"], "—") if r["actor_account_id"] else "—",
                  "detail": ", ".join(f"{k}={v}" for k, v in sorted((r["detail"] or {}).items()))} for r in rows]
        more = None
        if len(rows) == AUDIT_PAGE:
            more = f"/admin/audit?lang={lang}&event={event}&login={login}&before={rows[-1]['id']}"
        return render("admin_audit", AUDIT_BODY, rows=shown, more=more, event=event, login=login,
                      events=[(e, t("audit_" + e, lang)) for e in accounts.AUDIT_EVENTS],
                      message=message, error=message is not None, status=200 if message is None else 404)

    server.register_blueprint(bp)
