"""A path that is no page gets a 404 page (zh-CN first, English beneath, a link to the map), not the
dashboard: Dash answers every path with its index, so its catch-all is narrowed here to the paths
the page registry lists."""
from __future__ import annotations

from collections.abc import Iterable
from html import escape

from flask import Flask, Response, request

from ..i18n import t

DASH_CATCHALL = "/<path:path>"   # Dash's endpoint for every path it has no route for


def page(lang_first: str = "zh") -> str:
    langs = ("zh", "en") if lang_first != "en" else ("en", "zh")
    lines = "".join(
        f'<h1 lang="{"zh-CN" if lg == "zh" else "en"}">{escape(t("not_found_title", lg))}</h1>'
        f'<p lang="{"zh-CN" if lg == "zh" else "en"}">{escape(t("not_found_text", lg))} '
        f'<a href="/">{escape(t("not_found_back", lg))}</a></p>' for lg in langs)
    return (f'<!DOCTYPE html><html lang="{"zh-CN" if langs[0] == "zh" else "en"}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>404 · {escape(t("html_title", langs[0]))}</title>'
            f'<link rel="stylesheet" href="/assets/gridwatch.css"></head>'
            f'<body class="gw-not-found"><main>{lines}</main></body></html>')


def register(server: Flask, paths: Iterable[str]) -> None:
    known = frozenset(paths)

    @server.before_request
    def _unknown_page() -> Response | None:
        if request.endpoint == DASH_CATCHALL and request.path not in known:
            lang = request.cookies.get("gw_lang", "zh")
            return Response(page(lang), status=404, mimetype="text/html")
        return None
