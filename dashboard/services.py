"""What the dashboard's callbacks share for the app's lifetime: the engine (sessions under the
request limits), the database's availability, a small cache keyed by the request's context, and
the heat tile service. Per-request facts (viewer, scope, language) are in ``dashboard.context``."""
from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from geodata import db
from geodata.db import open_session, request_limits

from .context import Context
from .tiles import TileService

T = TypeVar("T")


@dataclass
class Services:
    engine: Engine
    settings: Any
    ttl_s: float = 30.0
    tiles: TileService | None = None   # the heat tile service (made here unless given)

    def __post_init__(self) -> None:
        self._cache: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self.limits = request_limits(self.settings)
        self.availability = db.availability(self.engine)
        if self.tiles is None:   # the tile routes serve each request's scope (dashboard.tiles)
            self.tiles = TileService(engine=self.engine, settings=self.settings)

    def session(self) -> Session:
        """A session for one callback: its SQL runs under the request limits (statement timeout)."""
        return open_session(self.engine, self.limits)

    def down_since(self, exc: BaseException) -> dt.datetime:
        """When the database stopped answering, for an error that says it cannot be reached; any
        other error is raised again."""
        if not db.is_unavailable(exc):
            raise exc
        return self.availability.since or dt.datetime.now(dt.UTC)

    def cached(self, ctx: Context, key: tuple[Any, ...], fn: Callable[[], T], *,
               by_lang: bool = False) -> T:
        """Small reference data (domains, grid names, grid details per stamp), kept ``ttl_s``,
        under ``ctx.cache_key(*key)``: one viewer's scope never reads another's entry."""
        full = ctx.cache_key(*key, by_lang=by_lang)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(full)
            if hit is not None and now - hit[0] < self.ttl_s:
                return hit[1]
        value = fn()
        with self._lock:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[full] = (now, value)
        return value
