"""The per-request context of the dashboard: who is looking (viewer), what they may see (scope), in
which language, in which time zone (the business time zone, ``settings.timezone``).

Every callback and the layout function build one with :func:`current_context` from the request
they serve, and pass it to what reads data or caches it (``Services.cached`` keys by its scope).
The viewer is the signed-in account of the request's server-side session (``dashboard.auth``
reads it once per request; never from callback inputs) and the scope is theirs
(``geodata.access.capabilities.scope_of``); an anonymous visitor has the public scope when
``settings.public_map`` lets them see the map, else none.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import flask

from geodata.access.accounts import Principal
from geodata.access.scope import Scope
from geodata.clock import business_zone

from .i18n import norm_lang

#: the cookie that remembers the language for the next page load
LANG_COOKIE = "gw_lang"
#: where the gate keeps the request's principal (``flask.g``)
PRINCIPAL_ATTR = "gw_principal"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: ``key`` names them (``account:<id>`` or ``anonymous``)."""

    key: str
    official_id: int | None = None
    account_id: int | None = None
    name: str | None = None

    @classmethod
    def of(cls, principal: Principal) -> Viewer:
        return cls(key=principal.key, official_id=principal.official_id, account_id=principal.account_id,
                   name=principal.display_name)


ANONYMOUS = Viewer(key="anonymous")


@dataclass(frozen=True)
class Context:
    viewer: Viewer
    scope: Scope
    lang: str       # 'zh' | 'en'
    tz: ZoneInfo    # the business time zone: every clock time shown is in it

    def with_lang(self, lang: str | None) -> Context:
        return replace(self, lang=norm_lang(lang))

    def cache_key(self, *parts: Any, by_lang: bool = False) -> tuple[Any, ...]:
        """A cache key for data this context may see: the scope always, the language when the
        cached value is language-dependent."""
        return (self.scope, self.lang if by_lang else None, *parts)


def viewer_scope(settings: Any, principal: Principal) -> Scope:
    """What ``principal`` sees on the dashboard: their scope; anonymous, the public one (every grid,
    no personal data) if ``settings.public_map``, else nothing."""
    if principal.is_anonymous:
        return Scope.public() if settings.public_map else Scope(roots=frozenset())
    return principal.scope()


def request_principal() -> Principal:
    """Who makes the current request: set by the gate (``dashboard.auth``) from the session
    cookie; anonymous outside a request, or for a route the gate leaves open."""
    if flask.has_request_context():
        return getattr(flask.g, PRINCIPAL_ATTR, None) or Principal.anonymous()
    return Principal.anonymous()


def request_lang() -> str | None:
    """The language the browser asked for by cookie (None outside a request, or without one)."""
    if flask.has_request_context():
        return flask.request.cookies.get(LANG_COOKIE)
    return None


def current_context(settings: Any, lang: str | None = None) -> Context:
    """The context of the request being served. ``lang``: the page's language switch (a callback's
    input); without it, the cookie. The viewer is the request's signed-in principal
    (``dashboard.auth.request_principal``; anonymous outside a request)."""
    principal = request_principal()
    return Context(viewer=Viewer.of(principal), scope=viewer_scope(settings, principal),
                   lang=norm_lang(lang if lang is not None else request_lang()), tz=business_zone(settings))
