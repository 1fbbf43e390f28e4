"""Request limits on the whole Flask server (dashboard, Dash callbacks, tiles, API):
``register_limits(server, settings)``.

- the query string: at most ``settings.max_query_chars`` characters, else 414 ``uri_too_long``;
- the body: at most ``settings.max_body_bytes`` (``MAX_CONTENT_LENGTH``: multipart photo uploads), a
  JSON body at most ``settings.max_json_bytes`` (parsing it holds the interpreter throughout; its
  413 points to multipart for photos) and a Dash callback request (``/_dash-update-component``) at
  most ``settings.max_callback_bytes``, else 413 ``too_large`` —
  refused from ``Content-Length`` before anything is read, and enforced while reading when there is
  none (per-request ``max_content_length``);
- CPU-heavy requests (Dash callbacks but the light ones the pages declare, heat tiles, text
  searches, bodies over 1 MB) at most ``settings.heavy_concurrency`` at once, and under sustained
  contention the lane rests between them (:class:`HeavyLane`); a request that waits longer than
  ``db_pool_timeout_s`` for a slot is a 503 ``server_busy``.

Errors raised later (statement timeouts, a full pool, the database down) are mapped by the
server's one error handler (``dashboard.web`` → ``api.core.error_from_exception``).

All answers are in the API's error format ``{"error": {code, message_zh, message_en, field}}``
(Open311 paths: its error list). Idempotent: the dashboard and the API both register it.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .core import ApiError, error_from_exception, error_response, is_json, is_open311_request, route_rule

DASH_CALLBACK_PATH = "/_dash-update-component"
HEAVY_PREFIXES = (DASH_CALLBACK_PATH, "/tiles/heat/")
HEAVY_BODY_BYTES = 1024 * 1024
LIGHT_KEY = "gridwatch_light_callbacks"   # server.extensions: first-output ids of near-free callbacks
#: the first output's component id at the start of a Dash callback request ('..' for several)
_OUTPUT = re.compile(rb'^\s*\{\s*"output"\s*:\s*"(?:\.\.)?([A-Za-z0-9_-]{1,64})\.')


def _light_callback() -> bool:
    if request.path != DASH_CALLBACK_PATH or (request.content_length or 0) > HEAVY_BODY_BYTES:
        return False
    head = request.get_data(cache=True)[:256]   # Dash and the guard read the same cached bytes
    m = _OUTPUT.match(head)
    return bool(m) and m.group(1).decode() in current_app.extensions.get(LIGHT_KEY, ())


def is_heavy() -> bool:
    """May this request cost much CPU? (callbacks but the light ones, heat tiles, text searches,
    big bodies)"""
    if (request.content_length or 0) > HEAVY_BODY_BYTES or "q" in request.args:
        return True
    return request.path.startswith(HEAVY_PREFIXES) and not _light_callback()


class HeavyLane:
    """The heavy requests' slots. A burst (a page's callbacks at once) runs at full speed; once
    the lane has been busy without a break for ``sustained_s`` and others still wait, a slot
    rests ``pause`` × the time its request took before the next one takes it — heavy work then
    takes at most 1 / (1 + pause) of the lane's time, and the cheap requests get the processor
    back (the stall benchmark's p95 ratio, 2 cores: 2.2–2.5× with no rest, 1.9–2.0× with
    ``pause`` 1, 1.7× with 2, the default). ``clock`` is injectable."""

    def __init__(self, slots: int, pause: float, sustained_s: float = 1.0, clock=time.monotonic):
        self.slots = threading.BoundedSemaphore(slots)
        self.pause, self.sustained_s, self.clock = pause, sustained_s, clock
        self._lock = threading.Lock()
        self.active = self.waiting = self.rests = 0
        self.busy_since: float | None = None

    def acquire(self, timeout: float) -> bool:
        with self._lock:
            self.waiting += 1
        try:
            got = self.slots.acquire(timeout=timeout)
        finally:
            with self._lock:
                self.waiting -= 1
                if got:
                    self.active += 1
                    if self.busy_since is None:
                        self.busy_since = self.clock()
        return got

    def release(self, started: float) -> None:
        """``started``: when the request took its slot (``clock()``)."""
        now = self.clock()
        with self._lock:
            self.active -= 1
            rest = (self.pause * (now - started) if self.waiting and self.busy_since is not None
                    and now - self.busy_since >= self.sustained_s else 0.0)
            rest = rest if rest > 0.001 else 0.0
            if rest:
                self.rests += 1
            elif not self.waiting and not self.active:
                self.busy_since = None   # a break: the next burst runs at full speed
        if rest:
            timer = threading.Timer(rest, self.slots.release)
            timer.daemon = True
            timer.start()
        else:
            self.slots.release()


log = logging.getLogger("gridwatch.http")


def _refuse(err: ApiError) -> Response:
    """A request refused before any view runs: one log line, never the raw input."""
    log.warning("request refused: %s %s → %s %s", request.method, route_rule(), err.status, err.code)
    return error_response(err, open311=is_open311_request())


def register_limits(server: Flask, settings: Any, light_callbacks: frozenset[str] = frozenset()) -> None:
    """``light_callbacks``: the Dash callbacks (by their first output's component id) that cost next
    to nothing and never queue behind heavy ones (each page declares its own, ``dashboard.pages``)."""
    server.extensions[LIGHT_KEY] = server.extensions.get(LIGHT_KEY, frozenset()) | light_callbacks
    if server.extensions.get("gridwatch_limits"):
        return
    server.extensions["gridwatch_limits"] = True
    server.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    heavy = HeavyLane(settings.heavy_concurrency, settings.heavy_pause)

    @server.before_request
    def _request_caps() -> Response | None:
        qs = request.environ.get("QUERY_STRING", "")
        if len(qs) > settings.max_query_chars:
            return _refuse(ApiError(414, "uri_too_long", f"查询参数过长（最多 {settings.max_query_chars} 字符）",
                                    f"the query string is longer than {settings.max_query_chars} characters",
                                    "query"))
        cap, json_body = _body_cap()
        request.max_content_length = cap
        if request.content_length is not None and request.content_length > cap:
            if json_body:
                return _refuse(ApiError(413, "too_large", f"JSON 请求体过大（最多 {cap // 1024} KB）；照片请以 "
                                        "multipart/form-data 文件上传（字段 photos）",
                                        f"the JSON body is larger than {cap // 1024} KB; upload photos as "
                                        "multipart/form-data files (field 'photos')", "body"))
            return _refuse(ApiError(413, "too_large", f"请求体过大（最多 {cap // 1024} KB）",
                                    f"the request body is larger than {cap // 1024} KB", "body"))
        if is_heavy():
            if not heavy.acquire(timeout=settings.db_pool_timeout_s):
                return _refuse(error_from_exception(PoolTimeout()))
            g.gridwatch_heavy = heavy.clock()
        return None

    def _body_cap() -> tuple[int, bool]:
        """(the cap on this request's body, is it a JSON body)."""
        if request.path == DASH_CALLBACK_PATH:
            return settings.max_callback_bytes, False
        if is_json(request.mimetype or ""):
            return min(settings.max_json_bytes, settings.max_body_bytes), True
        return settings.max_body_bytes, False

    @server.teardown_request
    def _release(_exc: BaseException | None) -> None:
        started = g.pop("gridwatch_heavy", None)
        if started is not None:
            heavy.release(started)

    # errors raised later (a body over the cap read lazily, timeouts, a full pool, the database
    # down) are mapped by the server's one error handler (dashboard.web → api.core.error_from_exception)
