"""The per-request context of the dashboard: who is looking (viewer), what they may see (scope), in
which language, in which time zone (the business time zone, ``settings.timezone``).

Every callback and the layout function build one with :func:`current_context` from the request
they serve, and pass it to what reads data or caches it (``Services.cached`` keys by its scope).
Until accounts exist there is one fixed viewer — the grid management centre, every grid, phones
per ``settings.dashboard_personal_data`` — decided in :func:`current_context` only, the one
function accounts will replace (session → viewer → scope).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import flask

from geodata.access.scope import Scope
from geodata.clock import business_zone

from .i18n import norm_lang

#: the cookie that remembers the language for the next page load
LANG_COOKIE = "gw_lang"


@dataclass(frozen=True)
class Viewer:
    """Who is looking: ``key`` names them (accounts: the account; today the one fixed viewer)."""

    key: str
    official_id: int | None = None


#: until accounts: everyone is the grid management centre
COMMAND_CENTRE = Viewer(key="command-centre")


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


def viewer_scope(settings: Any, viewer: Viewer = COMMAND_CENTRE) -> Scope:
    """The scope of a viewer. Until accounts: the command centre's (all grids; phones per settings)."""
    return Scope.everything(personal_data=bool(settings.dashboard_personal_data))


def request_lang() -> str | None:
    """The language the browser asked for by cookie (None outside a request, or without one)."""
    if flask.has_request_context():
        return flask.request.cookies.get(LANG_COOKIE)
    return None


def current_context(settings: Any, lang: str | None = None) -> Context:
    """The context of the request being served. ``lang``: the page's language switch (a callback's
    input); without it, the cookie. THE SEAM FOR ACCOUNTS: the viewer comes from the request here."""
    viewer = COMMAND_CENTRE
    return Context(viewer=viewer, scope=viewer_scope(settings, viewer),
                   lang=norm_lang(lang if lang is not None else request_lang()), tz=business_zone(settings))
