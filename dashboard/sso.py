"""Single sign-on with OpenID Connect (authlib's Flask client), configured by settings
(``oidc_issuer``, ``oidc_client_id``, ``oidc_client_secret``, ``oidc_scopes``, ``oidc_login_claim``).

- ``GET /login/oidc?next=…``: to the provider's authorisation page (authorization code flow; state
  and nonce kept in the signed form cookie by authlib; the provider's endpoints and keys from its
  discovery document, ``<issuer>/.well-known/openid-configuration``).
- ``GET /login/oidc/callback``: the code exchanged for tokens at the provider (server to server);
  the ID token's signature, issuer, audience, expiry and nonce checked by authlib; the claim
  ``oidc_login_claim`` names the account (``accounts.authenticate_sso``: an enabled person's
  account, never created here); a session cookie as a password sign-in gives. Any refusal is the
  sign-in page with one message (401/423), never a traceback; nothing of the provider's answer is
  logged.

The sign-in page shows the button only when SSO is configured (:func:`enabled`).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request, session

from geodata.access import accounts
from geodata.db import session_scope

log = logging.getLogger("gridwatch.sso")

LOGIN_PATH = "/login/oidc"
CALLBACK_PATH = "/login/oidc/callback"
_NEXT_KEY = "gw_sso_next"


def enabled(settings: Any) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


def label(settings: Any, lang: str) -> str:
    from .i18n import t

    return t("sso_button", lang, name=settings.oidc_label or t("sso_default_name", lang))


def install(server: Flask, settings: Any, engine: Any, limits: Any, *,
            signed_in: Callable[[int, str], Response], refused: Callable[[str, int], Response],
            next_path: Callable[[], str]) -> None:
    """The two routes on ``server`` (when SSO is configured). ``signed_in(account_id, next)``: the
    response that starts a session and goes on to ``next``; ``refused(message key, status)``: the sign-in page
    saying why; ``next_path()``: the checked ``next`` of this request."""
    if not enabled(settings):
        return
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.flask_client import OAuth

    oauth = OAuth(server)
    issuer = settings.oidc_issuer.rstrip("/")
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None
    # redirect_uri: the token request repeats the authorisation's (authlib keeps it in the state)
    client = oauth.register(
        "gridwatch_oidc", client_id=settings.oidc_client_id, client_secret=secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": settings.oidc_scopes, "timeout": 10})

    @server.route(LOGIN_PATH)
    def gw_sso_login() -> Response:
        session[_NEXT_KEY] = next_path()
        try:
            return client.authorize_redirect(settings.oidc_redirect_url or request.host_url.rstrip("/") + CALLBACK_PATH)
        except Exception as exc:   # the provider unreachable or its metadata broken
            log.warning("single sign-on: provider unavailable (%s)", type(exc).__name__)
            return refused("sso_unavailable", 503)

    @server.route(CALLBACK_PATH)
    def gw_sso_callback() -> Response:
        if request.args.get("error"):
            return refused("sso_cancelled", 401)
        try:
            token = client.authorize_access_token()
        except OAuthError as exc:   # state or nonce mismatch, a bad code, an ID token that fails its checks
            log.info("single sign-on refused: %s", exc.error)
            return refused("sso_failed", 401)
        except Exception as exc:
            log.warning("single sign-on: token exchange failed (%s)", type(exc).__name__)
            return refused("sso_failed", 401)
        claims = token.get("userinfo") or {}
        login = claims.get(settings.oidc_login_claim)
        with session_scope(engine, limits) as s:
            res = accounts.authenticate_sso(s, login if isinstance(login, str) else None,
                                            issuer=str(claims.get("iss") or issuer), subject=str(claims.get("sub") or ""))
        if res.outcome == "locked":
            return refused("locked_sso", 423)
        if not res.ok:
            return refused("sso_no_account", 401)
        return signed_in(res.principal.account_id, session.pop(_NEXT_KEY, "/"))
