"""While the database is down: callbacks keep what they show, the map's data routes answer 503.

The live poll (``callbacks.live_outputs``) switches the header to the outage note and, at the
database's return, rebuilds the body; :mod:`geodata.db`'s ``availability`` logs the transitions
(one line each), so nothing here logs per request.
"""
from __future__ import annotations

from flask import Flask, Response
from sqlalchemy.exc import DBAPIError

from geodata.db import is_unavailable

from .api.core import ApiError, error_response

#: seconds a client may wait before asking again (the map's live poll asks anyway)
RETRY_AFTER_S = 5


def keep_outputs(exc: Exception) -> None:
    """Dash's ``on_error`` for every callback: a callback that failed because the database cannot be
    reached keeps its outputs (None → no_update everywhere, no error shown); other errors propagate."""
    if not is_unavailable(exc):
        raise exc


def register_unavailable(server: Flask) -> None:
    """Grid layers, heat tiles and popups answer 503 (API error format) while the database is down."""

    @server.errorhandler(DBAPIError)
    def _database_unavailable(exc: DBAPIError) -> Response:
        if not is_unavailable(exc):
            raise exc
        return error_response(ApiError(503, "database_unavailable", "数据库暂不可用，请稍后重试",
                                       "the database is unavailable; try again later",
                                       headers={"Retry-After": str(RETRY_AFTER_S)}))
