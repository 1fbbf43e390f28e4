"""The wall's routes on the dashboard's Flask server (it has no Dash callbacks: it is pushed to):

- ``GET /wall?token=…`` — a display token (``gridwatch wall-url``) is checked, kept in the HttpOnly
  cookie ``gw_wall`` (path /wall) and taken out of the address (303 to ``/wall``); then ``GET /wall``
  serves the page with its opening state and the polygons (sent this once). A signed-in account
  with ``view_wall`` may open it without a token. A revoked or unknown token: the 已停用 screen.
- ``GET /wall/events`` — Server-Sent Events: ``feed`` (one event line each), ``state`` (the numbers,
  map colours, ranking, trend), ``outage`` / ``restored``, ``stopped`` (token revoked: checked again
  when a revocation is announced — NOTIFY on accounts.ACCESS_CHANNEL in the revoking transaction —
  and every :data:`RECHECK_S` s in case one was missed), heartbeat comments. ``id:`` is the event-table position to resume from;
  a reconnecting browser sends it back as ``Last-Event-ID`` and gets what it missed from the table.
  At most ``settings.wall_streams`` streams at once (503 beyond: the wall polls).
- ``GET /wall/state?after=ID`` — the polling fallback: the state and the feed events after ``ID``.

Every read is one geodata call under the wall's scope (row-level security). Nothing personal:
geodata.maps.feed and geodata.assessment.screen read no officials or reporters.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from dash import Dash
from flask import Response, redirect, request

from geodata.access import accounts
from geodata.access.accounts import Principal
from geodata.access.capabilities import VIEW_WALL
from geodata.assessment.screen import wall_state
from geodata.db import is_unavailable, session_scope
from geodata.errors import DomainError
from geodata.maps import feed as gfeed
from geodata.maps.layers import grid_layer, grid_names

from ...api.core import ApiError, error_response
from ...context import Context, Viewer, request_principal
from ...i18n import norm_lang
from ...services import Services
from . import layout, presenters

log = logging.getLogger(__name__)

WALL_COOKIE = "gw_wall"
#: how often an open stream checks its token again without an announcement (a revocation's NOTIFY
#: makes it check at once; asking every 2 s cost the API's p95 1.7–2× with 20 walls: bench wall)
RECHECK_S = 60.0
#: the longest a stream waits for a notification before it reads the table anyway
WAIT_S = 2.0
#: how often the stream looks for deadlines that passed (the feed's 超期 lines)
OVERDUE_EVERY_S = 30.0
STATE_TTL_S = 30.0


def page_layout(svc: Services, ctx: Context) -> str:
    """The registry's layout entry: the wall is served by its own route (``register``), not as
    Dash's layout; this renders the stopped screen for a context without a wall."""
    return layout.stopped(ctx.lang, need_token=True)


@dataclass(frozen=True)
class Entry:
    version: int
    covers: int          # the newest event id the numbers include
    at: float            # time.monotonic() when computed
    state: dict
    text: str = ""       # ``state`` as JSON, serialised once for every stream

    @classmethod
    def of(cls, version: int, covers: int, state: dict) -> Entry:
        return cls(version, covers, time.monotonic(), state, json.dumps(state, ensure_ascii=False, default=str))


class StateCache:
    """The wall's numbers per scope, computed in the background — never in a stream's path, so a
    feed line is never held up by them — at most once per ``min_interval_s`` whatever the number of
    walls and events (the indicator queries cost seconds on a year of data), shared by every wall of
    the process; ``wake`` tells the streams when a new version is ready."""

    def __init__(self, compute, wake, min_interval_s: float) -> None:
        self._compute, self._wake, self.min_interval_s = compute, wake, min_interval_s
        self._entries: dict[Any, Entry] = {}
        self._want: dict[Any, int] = {}
        self._busy: set[Any] = set()
        self._lock = threading.Lock()

    def latest(self, scope) -> Entry | None:
        with self._lock:
            return self._entries.get(scope)

    def now(self, scope) -> Entry:
        """A fresh enough entry, computed here if there is none (a page being opened)."""
        e = self.latest(scope)
        if e is not None and time.monotonic() - e.at < STATE_TTL_S:
            return e
        covers, state = self._compute(scope)
        with self._lock:
            old = self._entries.get(scope)
            e = Entry.of((old.version if old else 0) + 1, covers, state)
            self._entries[scope] = e
        return e

    def request(self, scope, need_id: int) -> None:
        """Numbers including event ``need_id`` are wanted: computed soon, in the background."""
        with self._lock:
            e = self._entries.get(scope)
            if e is not None and e.covers >= need_id and time.monotonic() - e.at < STATE_TTL_S:
                return
            self._want[scope] = max(self._want.get(scope, 0), need_id)
            if scope in self._busy:
                return
            self._busy.add(scope)
        threading.Thread(target=self._work, args=(scope,), name="gridwatch-wall-state", daemon=True).start()

    def _work(self, scope) -> None:
        try:
            while True:
                e = self.latest(scope)
                wait = self.min_interval_s - (time.monotonic() - e.at) if e else 0
                if wait > 0:
                    time.sleep(wait)
                with self._lock:
                    self._want.pop(scope, None)
                covers, state = self._compute(scope)
                with self._lock:
                    old = self._entries.get(scope)
                    self._entries[scope] = Entry.of((old.version if old else 0) + 1, covers, state)
                    if self._want.get(scope, 0) <= covers:
                        self._want.pop(scope, None)
                        self._busy.discard(scope)
                        done = True
                    else:
                        done = False
                self._wake()
                if done:
                    return
        except Exception as exc:   # the database went away: the next request tries again
            log.warning("wall numbers: %s", type(exc).__name__)
            with self._lock:
                self._busy.discard(scope)


class _TokenChecks:
    """Whether a display token is still live, asked of the database once per token per
    :data:`RECHECK_S` and again at once after an access change (``changes``: the listener's count
    of announcements), however many streams use it. While the database is unreachable a token
    counts as live (the wall keeps showing)."""

    def __init__(self, check) -> None:
        self._check = check
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int, bool]] = {}

    def alive(self, raw: str, changes: int) -> bool:
        with self._lock:
            hit = self._seen.get(raw)
        if hit is not None and hit[1] == changes and time.monotonic() - hit[0] < RECHECK_S:
            return hit[2]
        try:
            ok = self._check(raw)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            ok = True
        with self._lock:
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[raw] = (time.monotonic(), changes, ok)
        return ok


def _int_param(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise DomainError("invalid_integer", f"{name} 须为非负整数", f"{name} must be a non-negative integer",
                          field=name)
    return int(raw)


def register(app: Dash, svc: Services) -> None:
    server = app.server
    settings = svc.settings
    listener = gfeed.Listener(svc.engine.url.set(drivername="postgresql").render_as_string(hide_password=False),
                              connect_timeout_s=settings.db_connect_timeout_s)
    server.extensions["gridwatch_wall_listener"] = listener
    slots = threading.BoundedSemaphore(max(settings.wall_streams, 1)) if settings.wall_streams else None

    def compute(scope) -> tuple[int, dict]:
        from geodata.clock import business_zone

        ctx = Context(viewer=Viewer(key="wall"), scope=scope, lang="zh", tz=business_zone(settings))
        with svc.session(ctx) as s:
            covers = gfeed.latest_event_id(s)
            return covers, wall_state(s, scope, tz=ctx.tz, overdue_red=settings.wall_band_overdue,
                                      open_amber=settings.wall_band_open)

    cache = StateCache(compute, listener.wake, settings.wall_state_min_s)
    server.extensions["gridwatch_wall_state"] = cache

    def context(p: Principal, lang: str) -> Context:
        from geodata.clock import business_zone

        return Context(viewer=Viewer.of(p), scope=p.scope(), lang=lang, tz=business_zone(settings))

    def lang_of() -> str:
        return norm_lang(request.args.get("lang") or request.cookies.get("gw_lang"))

    def check_token(raw: str) -> Principal | None:
        with session_scope(svc.engine, svc.limits) as s:
            p = accounts.verify_token(s, raw)
        return p if p is not None and p.may(VIEW_WALL) else None

    def principal() -> tuple[Principal | None, str | None]:
        """(the wall's principal, its token) — the cookie's display token, else the signed-in
        account if it may view the wall; (None, token) when the token is dead."""
        raw = request.cookies.get(WALL_COOKIE)
        if raw:
            return check_token(raw), raw
        p = request_principal()
        return (p if not p.is_anonymous and p.may(VIEW_WALL) else None), None

    def stopped(lang: str, need_token: bool) -> Response:
        resp = Response(layout.stopped(lang, need_token=need_token), status=401 if need_token else 403,
                        mimetype="text/html")
        if not need_token:
            resp.delete_cookie(WALL_COOKIE, path="/wall")
        return resp

    def state_for(ctx: Context, s, latest: int) -> dict:
        cache.request(ctx.scope, latest)
        return cache.now(ctx.scope).state

    def names(ctx: Context) -> dict[str, str]:
        """The grids' names in the wall's language (cached: a session is opened only to refill)."""
        def read() -> dict[str, str]:
            with svc.session(ctx) as s:
                return {c: (e if ctx.lang == "en" else n) for c, (n, e) in grid_names(s, ctx.scope).items()}

        return svc.cached(ctx, ("wall-grid-names",), read, by_lang=True)

    @server.route("/wall")
    def wall_page() -> Response:
        lang = lang_of()
        tour = _int_param(request.args.get("tour"), "tour")
        if tour is not None and tour > 3600:
            raise DomainError("invalid_tour", "tour 须在 0–3600 秒之间", "tour must be 0–3600 seconds", field="tour")
        token = request.args.get("token")
        if token is not None:
            try:
                p = check_token(token)
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                p = None
            if p is None:
                return stopped(lang, need_token=False)
            rest = {k: v for k, v in request.args.items() if k != "token"}
            resp = redirect("/wall" + (f"?{urlencode(rest)}" if rest else ""), 303)
            resp.set_cookie(WALL_COOKIE, token, max_age=400 * 24 * 3600, httponly=True, samesite="Strict",
                            secure=bool(settings.secure_cookies), path="/wall")
            return resp
        try:
            p, raw = principal()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            p, raw = None, request.cookies.get(WALL_COOKIE)
            if raw:   # the database is down: the wall opens empty and recovers by itself
                return _page(Principal(kind="display"), lang, tour, down=True)
        if p is None:
            return stopped(lang, need_token=raw is None)
        return _page(p, lang, tour)

    def _page(p: Principal, lang: str, tour: int | None, down: bool = False) -> Response:
        ctx = context(p, lang)
        config = {"tour_s": settings.wall_tour_s if tour is None else tour, "lang": lang,
                  "tz": settings.timezone, "wait_s": WAIT_S, "down_since": None, "last_id": 0}
        state: dict[str, Any] = {}
        geometry: dict[str, Any] = {}
        bounds = None
        if not down:
            try:
                with svc.session(ctx) as s:
                    config["last_id"] = gfeed.latest_event_id(s)
                    state = state_for(ctx, s, config["last_id"])
                    state = {**state, "feed": presenters.feed_items(gfeed.recent_events(s, ctx.scope), lang, ctx.tz,
                                                                     names(ctx))}
                    layers = {lvl: grid_layer(s, ctx.scope, lvl) for lvl in (1, 2, 3)}
                    geometry, bounds = presenters.geometry(layers), presenters.bounds(layers)
            except Exception as exc:
                down = True
                config["down_since"] = svc.down_since(exc).isoformat()
        elif svc.availability.since:
            config["down_since"] = svc.availability.since.isoformat()
        html = layout.page(lang=lang, state=state, geometry=geometry, bounds=bounds,
                           text=presenters.strings(lang), config=config)
        resp = Response(html, mimetype="text/html")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @server.route("/wall/state")
    def wall_state_route() -> Response:
        lang = lang_of()
        after = _int_param(request.args.get("after"), "after")
        p, _raw = principal()
        if p is None:
            return Response(json.dumps({"stopped": True}), status=403, mimetype="application/json")
        ctx = context(p, lang)
        with svc.session(ctx) as s:
            latest = gfeed.latest_event_id(s)
            evs = gfeed.events_after(s, ctx.scope, after) if after is not None else []
            body = {"state": state_for(ctx, s, latest), "last_id": latest,
                    "events": presenters.feed_items(evs, lang, ctx.tz, names(ctx))}
        resp = Response(json.dumps(body, ensure_ascii=False, default=str), mimetype="application/json")
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @server.route("/wall/events")
    def wall_events() -> Response:
        lang = lang_of()
        start = _int_param(request.headers.get("Last-Event-ID"), "Last-Event-ID")
        if start is None:
            start = _int_param(request.args.get("after"), "after")
        p, raw = principal()
        if p is None:
            return Response(presenters.sse("stopped", "{}"), mimetype="text/event-stream", status=200)
        if slots is None or not slots.acquire(blocking=False):
            resp = error_response(ApiError(503, "wall_streams_full", "实时连接已满，改为轮询",
                                           "live streams full: poll instead", None))
            resp.headers["Retry-After"] = "30"
            return resp
        ctx = context(p, lang)
        try:
            if start is None:
                with svc.session(ctx) as s:
                    start = gfeed.latest_event_id(s)
        except Exception:
            slots.release()
            raise
        gen = _stream(ctx, raw, start)
        resp = Response(gen, mimetype="text/event-stream")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Accel-Buffering"] = "no"   # nginx: do not buffer the stream
        return resp

    reads = gfeed.SharedReads()

    def token_live(raw: str) -> bool:
        with session_scope(svc.engine, svc.limits) as s:
            return accounts.token_allows(s, raw, VIEW_WALL)

    tokens = _TokenChecks(token_live)

    def read_after(ctx: Context, after: int) -> list:
        with svc.session(ctx) as s:
            return gfeed.events_after(s, ctx.scope, after)

    def _stream(ctx: Context, raw: str | None, start: int):
        sub = listener.subscribe()
        try:
            yield "retry: 2000\n\n"
            cursor = gfeed.Cursor(resume=start)
            overdue_at = dt.datetime.now(dt.UTC)
            overdue_check = time.monotonic()
            down = False
            first = True
            now_entry = cache.latest(ctx.scope)
            sent_version = now_entry.version if now_entry is not None else 0   # the page has those numbers
            ends = time.monotonic() + settings.wall_stream_max_s
            while time.monotonic() < ends:
                woke = [] if first else sub.wait(min(WAIT_S, settings.wall_stream_max_s))
                woke_at = time.monotonic()
                first = False
                if raw is not None and not tokens.alive(raw, listener.access_changes):
                    yield presenters.sse("stopped", "{}")
                    return
                try:
                    after = cursor.resume
                    batch = reads.read(ctx.scope, after, woke_at, functools.partial(read_after, ctx, after))
                    late: list = []
                    if time.monotonic() - overdue_check >= OVERDUE_EVERY_S:
                        now = dt.datetime.now(dt.UTC)
                        with svc.session(ctx) as s:
                            late = gfeed.newly_overdue(s, ctx.scope, overdue_at, now)
                        overdue_at, overdue_check = now, time.monotonic()
                    fresh = cursor.take(batch)
                    items = []
                    if fresh or late:
                        items = presenters.feed_items(fresh + late, ctx.lang, ctx.tz, names(ctx))
                except Exception as exc:
                    if not is_unavailable(exc):
                        log.warning("wall stream: %s", type(exc).__name__)
                        yield ": error\n\n"
                        continue
                    if not down:
                        since = svc.down_since(exc)
                        yield presenters.sse("outage", json.dumps({"since": since.isoformat(),
                                                                   "time": presenters.local_hm(since, ctx.tz)}))
                        down = True
                    else:
                        yield ": down\n\n"
                    continue
                if down:
                    down = False
                    yield presenters.sse("restored", "{}")
                    cache.request(ctx.scope, cursor.resume + 1)   # fresh numbers after the outage
                for it in items:
                    yield presenters.sse("feed", json.dumps(it, ensure_ascii=False), cursor.resume)
                if fresh or late:
                    cache.request(ctx.scope, max(e.id for e in fresh) if fresh else cursor.resume)
                entry = cache.latest(ctx.scope)
                if entry is None or time.monotonic() - entry.at > 2 * STATE_TTL_S:
                    cache.request(ctx.scope, cursor.resume)   # time passes: deadlines, today's day
                if entry is not None and entry.version > sent_version:
                    sent_version = entry.version
                    yield presenters.sse("state", entry.text, cursor.resume)
                elif not woke and not items:
                    yield ": hb\n\n"
        finally:
            sub.close()
            if slots is not None:
                slots.release()
