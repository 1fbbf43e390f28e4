"""The Gridwatch dashboard (Dash + dash-leaflet): ``create_dash(settings, engine) -> dash.Dash``.

Pages live in ``dashboard/pages/<page>/`` and are listed in ``dashboard.pages`` (one page today:
the grid map); shared components in ``dashboard/components/``; each request's viewer, scope and
language in ``dashboard.context``.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import dash
import flask
from sqlalchemy import Engine

from . import admin, auth, guard, outage
from .api.limits import register_limits
from .context import current_context, request_principal
from .i18n import t
from .pages import not_found
from .pages import registry as pages
from .services import Services
from .tiles import register_tiles
from .web import install


def _page_path() -> str:
    """The path of the page being served: the request's, or for Dash's own requests (the layout),
    the page's that sent it (its Referer, same origin: Referrer-Policy strict-origin-when-cross-origin)."""
    if not flask.has_request_context():
        return "/"
    if not flask.request.path.startswith("/_dash"):
        return flask.request.path
    ref = urlsplit(flask.request.referrer or "")
    same = not ref.netloc or ref.netloc == flask.request.host
    return ref.path if same and ref.path else "/"


def create_dash(settings: Any, engine: Engine) -> dash.Dash:
    app = dash.Dash(__name__, title=t("html_title", "zh"), update_title=None,
                    suppress_callback_exceptions=True, serve_locally=True,
                    on_error=outage.keep_outputs)   # database down: callbacks keep their outputs
    install(app.server, settings, script_hashes=app.csp_hashes)
    svc = Services(engine=engine, settings=settings)
    home = pages.home()

    def serve_layout() -> Any:
        # the page asked for: its path, or (Dash's /_dash-layout request) the page that asks
        page = pages.page_for(_page_path())
        if page.capability != home.capability and not request_principal().may(page.capability):
            page = home   # /_dash-layout passes the gate with the home page's capability only
        return page.layout(svc, current_context(settings))   # the language from the cookie

    app.layout = serve_layout
    pages.register_all(app, svc)
    # limits first (size caps for every route, heavy-request slots), then who is signed in (the
    # gate: sign-in pages, capability of the page, cross-site refusal), then the callback guard
    register_limits(app.server, settings, light_callbacks=pages.light_callbacks())
    auth.install(app.server, settings, engine, svc.limits, page_capability=home.capability,
                 page_capabilities={p.path: p.capability for p in pages.PAGES if p.capability != home.capability})
    admin.install(app.server, settings, engine, svc.limits)   # /admin, /admin/audit
    guard.install(app)   # after every callback: each one gets its request model
    register_tiles(app.server, svc.tiles)
    not_found.register(app.server, (p.path for p in pages.PAGES))
    return app
