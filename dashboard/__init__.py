"""The Gridwatch dashboard (Dash + dash-leaflet): ``create_dash(settings, engine) -> dash.Dash``.

One page today (the grid map, URL state ``?grid=<code>&issue=<id>``); further pages (wall display,
assessment, editor) can be added beside it.
"""
from __future__ import annotations

from typing import Any

import dash
import flask
from sqlalchemy import Engine

from geodata.access.scope import Scope

from . import callbacks, guard, outage
from .api.limits import register_limits
from .tiles import register_tiles
from .web import install


def viewer_scope(settings: Any) -> Scope:
    """Until accounts exist: the command centre's scope (all grids); phones per settings."""
    return Scope.everything(personal_data=bool(settings.dashboard_personal_data))


def create_dash(settings: Any, engine: Engine) -> dash.Dash:
    scope = viewer_scope(settings)
    app = dash.Dash(__name__, title="Gridwatch 网格化管理", update_title=None,
                    suppress_callback_exceptions=True, serve_locally=True,
                    on_error=outage.keep_outputs)   # database down: callbacks keep their outputs
    install(app.server, settings, script_hashes=app.csp_hashes)
    mctx = callbacks.MapCtx(engine=engine, settings=settings, scope=scope)

    def serve_layout() -> Any:
        lang = None
        if flask.has_request_context():
            lang = flask.request.cookies.get(callbacks.LANG_COOKIE)
        return callbacks.page_layout(mctx, lang)

    app.layout = serve_layout
    callbacks.register(app, mctx)
    # limits first (size caps for every route, heavy-request slots), then the callback guard
    register_limits(app.server, settings)
    guard.install(app)   # after every callback: each one gets its request model
    register_tiles(app.server, mctx.tiles)
    return app
