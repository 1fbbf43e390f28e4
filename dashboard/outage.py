"""While the database is down: callbacks keep what they show (the map's data routes answer 503
through the server's one error handler, ``api.core.error_from_exception``).

The live poll (``pages.map.callbacks.live_outputs``) switches the header to the outage note and, at the
database's return, rebuilds the body; :mod:`geodata.db`'s ``availability`` logs the transitions
(one line each), so nothing here logs per request.
"""
from __future__ import annotations

from geodata.db import is_unavailable


def keep_outputs(exc: Exception) -> None:
    """Dash's ``on_error`` for every callback: a callback that failed because the database cannot be
    reached keeps its outputs (None → no_update everywhere, no error shown); other errors propagate."""
    if not is_unavailable(exc):
        raise exc
