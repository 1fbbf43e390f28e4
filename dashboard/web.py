"""Server-wide HTTP rules for the one Flask server (Dash pages, assets, tiles, the API):

- URL converters: ``<int:…>`` matches 1–19 ASCII digits up to 2**63 − 1 (a BIGINT id), so a
  path segment of Arabic-Indic or fullwidth digits, or one beyond 64 bits, matches no route (404)
  instead of reaching a query;
- one error handler for every exception on every route: ``api.core.error_from_exception`` maps it
  to a status and the API's error body (``{"error": {code, message_zh, message_en, field}}``; the
  Open311 paths get its GeoReport list, ``api.core.is_open311_request``). Bad input is one log line naming the route's rule
  and the error code — never the raw input, never a traceback;
- security headers on every response: Content-Security-Policy, ``X-Content-Type-Options:
  nosniff``, ``Referrer-Policy``.

``install(server, settings, script_hashes=…)`` is idempotent: the Dash app installs it first
(passing the CSP hashes of its inline scripts), ``register_api`` again for an API-only server.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, request
from werkzeug.routing import IntegerConverter

from geodata.models import BIGINT_MAX

from .api.core import error_from_exception, error_response, is_open311_request, route_rule

log = logging.getLogger("gridwatch.http")

MAX_ID = BIGINT_MAX


class BoundedInt(IntegerConverter):
    """``<int:…>``: ASCII digits only (werkzeug's ``\\d`` also matches ``١٢٣`` and ``１２``) and at
    most a PostgreSQL BIGINT; anything else does not match the rule."""

    regex = r"[0-9]{1,19}"

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, *args, **kwargs)
        self.max = MAX_ID if self.max is None else min(self.max, MAX_ID)


def basemap_source(url_template: str) -> str | None:
    """The CSP source of a basemap URL template (``https://{s}.tile.example/{z}/{x}/{y}.png`` →
    ``https://*.tile.example``); a template in any label but the first allows the scheme only."""
    if not url_template:
        return None
    parts = urlsplit(url_template)
    if parts.scheme not in ("http", "https") or (not parts.hostname and "{" not in parts.netloc):
        return None
    host = parts.netloc.rsplit("@", 1)[-1]
    labels = host.split(".")
    if "{" in labels[0]:
        labels[0] = "*"
    if any("{" in label for label in labels) or not re.fullmatch(r"[\w.*:-]+", ".".join(labels)):
        return f"{parts.scheme}:"
    return f"{parts.scheme}://{'.'.join(labels)}"


def content_security_policy(settings: Any, script_hashes: Sequence[str] = ()) -> str:
    """The policy: everything from this origin; Dash's inline renderer script by hash (no
    'unsafe-inline' for scripts); inline styles (React and Leaflet set style attributes); images
    also from data:/blob: and the basemap's origin; framing per ``settings.frame_ancestors``."""
    img = ["'self'", "data:", "blob:"]
    base = basemap_source(getattr(settings, "basemap_url", "") or "")
    if base:
        img.append(base)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": img,
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": (getattr(settings, "frame_ancestors", "") or "'self'").split(),
    }
    return "; ".join(f"{k} {' '.join(v)}" for k, v in directives.items())


def install(server: Flask, settings: Any, script_hashes: Callable[[], Sequence[str]] | None = None) -> None:
    if "gridwatch_http" in server.extensions:
        return
    server.extensions["gridwatch_http"] = True
    server.url_map.converters["int"] = BoundedInt
    csp_cache: dict[str, str] = {}

    def csp() -> str:
        # computed on first use: Dash knows its inline scripts once every callback is registered
        if "v" not in csp_cache:
            csp_cache["v"] = content_security_policy(settings, tuple(script_hashes()) if script_hashes else ())
        return csp_cache["v"]

    @server.errorhandler(Exception)
    def _any_error(exc: Exception) -> Response:
        err = error_from_exception(exc)
        if err.status < 500:
            log.info("%s %s → %d %s", request.method, route_rule(), err.status, err.code)
        return error_response(err, open311=is_open311_request())

    @server.after_request
    def _security_headers(resp: Response) -> Response:
        h = resp.headers
        h.setdefault("Content-Security-Policy", csp())
        h["X-Content-Type-Options"] = "nosniff"
        h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        return resp
