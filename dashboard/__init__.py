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

from . import auth, guard, outage
from .api.limits import register_limits
from .context import current_context
from .i18n import t
from .pages import not_found
from .pages import registry as pages
from .services import Services
from .tiles import register_tiles
from .web import install


def page_path() -> str:
    """The path of the page being served: the request's, or for Dash's layout request the page's
    it came from (its Referer, same origin); "/" outside a request."""
    if not flask.has_request_context():
        return "/"
    path = flask.request.path
    if path.endswith("/_dash-layout"):
        ref = flask.request.referrer
        path = urlsplit(ref).path if ref else "/"
    return path


def create_dash(settings: Any, engine: Engine) -> dash.Dash:
    app = dash.Dash(__name__, title=t("html_title", "zh"), update_title=None,
                    suppress_callback_exceptions=True, serve_locally=True,
                    on_error=outage.keep_outputs)   # database down: callbacks keep their outputs
    install(app.server, settings, script_hashes=app.csp_hashes)
    svc = Services(engine=engine, settings=settings)
    home = pages.home()

    def serve_layout() -> Any:
        # the page of the request's path (the renderer's /_dash-layout: the page it was sent from)
        page = pages.for_path(page_path())
        return page.layout(svc, current_context(settings))   # the language from the cookie

    app.layout = serve_layout
    pages.register_all(app, svc)
    # limits first (size caps for every route, heavy-request slots), then who is signed in (the
    # gate: sign-in pages, capability of the page, cross-site refusal), then the callback guard
    register_limits(app.server, settings, light_callbacks=pages.light_callbacks())
    auth.install(app.server, settings, engine, svc.limits, page_capability=home.capability)
    # pages needing more than the home page's capability: refused with a 403 page
    auth.page_gate(app.server, {p.path: p.capability for p in pages.PAGES if p.capability != home.capability})
    guard.install(app)   # after every callback: each one gets its request model
    register_tiles(app.server, svc.tiles)
    not_found.register(app.server, (p.path for p in pages.PAGES))
    return app
