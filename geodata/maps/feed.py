"""The wall's live feed: workflow events as the wall shows them (no personal data), read by event id
from the append-only ``issue_event`` table, and THE listener that hears PostgreSQL's NOTIFY.

- **What is sent** (migration ``0013_live_feed``): every statement that inserts workflow events
  calls ``pg_notify('gridwatch_events', <highest id>)``; PostgreSQL delivers it at commit (a rolled
  back change sends nothing). The payload is an id, never data: each wall reads the rows after the
  last id it has, under its own scope (row-level security), with :func:`events_after` — live and
  catch-up are the same query, so a wall that was away (a reconnect, a lost notification while the
  listener reconnected) misses nothing.
- **Ids commit out of order**: two transactions can take ids 7 and 8 and commit 8 first. A reader
  that saw 8 must not skip 7: :class:`Cursor` keeps the lowest id still missing (a gap) as its
  resume point for :data:`GAP_WAIT_S` seconds (a gap older than that is a rolled-back id) and
  remembers which ids it already sent, so nothing is sent twice.
- **One listener per process** (:class:`Listener`): a thread with one psycopg 3 connection in
  autocommit running ``LISTEN``; it reconnects by itself (backoff up to 5 s) and fans each
  notification out to subscribers (:class:`Subscription`, a bounded queue each: a wall too slow to
  drain it loses wake-ups, never events — the next read catches up from the table).
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.access.accounts import ACCESS_CHANNEL
from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.grids.store import valid_at
from geodata.models import Domain, Grid, Issue, IssueEvent
from geodata.workflow.filters import is_open

log = logging.getLogger(__name__)

CHANNEL = "gridwatch_events"
#: the workflow steps the feed shows (新上报, 交办, 办结, 返工, 综合评价); 超期 comes from
#: :func:`newly_overdue` (a deadline passing writes no event)
FEED_ACTIONS: tuple[str, ...] = ("report", "assign", "close", "rework", "evaluate")
#: how long a missing id below a seen one is waited for (an uncommitted transaction's id)
GAP_WAIT_S = 10.0
MAX_BATCH = 200


@dataclass(frozen=True)
class FeedEvent:
    id: int                # the event id (or, for 超期, the issue id with kind 'overdue')
    kind: str              # an action of FEED_ACTIONS, or 'overdue'
    at: dt.datetime
    issue_number: str
    issue_kind: str        # problem | sentiment
    domain_zh: str
    domain_en: str
    domain_code: str
    grid_code: str
    grid_name: str
    community_code: str
    title: str
    lon: float
    lat: float


def latest_event_id(session: Session) -> int:
    """The highest event id the session may see (0: none)."""
    return int(session.execute(select(func.coalesce(func.max(IssueEvent.id), 0))).scalar_one())


def _rows(session: Session, scope: Scope, conds: Sequence[Any], *, order, limit: int) -> list:
    g = select(Grid.code, Grid.name).where(Grid.level == 3, valid_at(dt.datetime.now(dt.UTC))).subquery("g")
    return session.execute(
        select(IssueEvent.id, IssueEvent.action, IssueEvent.at, Issue.number, Issue.kind, Domain.name_zh, Domain.name_en,
               Issue.domain_code, Issue.grid_code, g.c.name, Issue.community_code, Issue.title,
               func.ST_X(Issue.location), func.ST_Y(Issue.location))
        .join(Issue, Issue.id == IssueEvent.issue_id).join(Domain, Domain.code == Issue.domain_code)
        .outerjoin(g, g.c.code == Issue.grid_code)
        .where(visible_issues(scope), *conds).order_by(order).limit(limit)).all()


def _event(r) -> FeedEvent:
    return FeedEvent(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9] or r[8], r[10], r[11],
                     float(r[12] or 0), float(r[13] or 0))


def events_after(session: Session, scope: Scope, after_id: int, *, limit: int = MAX_BATCH) -> list[FeedEvent]:
    """Every event with an id above ``after_id`` that ``scope`` may see, oldest first (at most
    ``limit``), with what the wall shows of its issue: number, kind, domain, block, title, point —
    no names, no phones. Steps the feed does not show (sign, handle…) are included: they move the
    numbers; :data:`FEED_ACTIONS` says which go into the list."""
    return [_event(r) for r in _rows(session, scope, [IssueEvent.id > after_id], order=IssueEvent.id, limit=limit)]


def recent_events(session: Session, scope: Scope, *, limit: int = 30) -> list[FeedEvent]:
    """The latest ``limit`` feed events (newest first): the list a wall opens with."""
    return [_event(r) for r in _rows(session, scope, [IssueEvent.action.in_(FEED_ACTIONS)],
                                     order=IssueEvent.id.desc(), limit=limit)]


def newly_overdue(session: Session, scope: Scope, since: dt.datetime, until: dt.datetime, *,
                  limit: int = 50) -> list[FeedEvent]:
    """Open issues whose deadline passed in (``since``, ``until``]: the feed's 超期 entries (THE
    overdue rule: open and past ``due_at``); ``id`` is the issue's id."""
    rows = session.execute(
        select(Issue.id, Issue.due_at, Issue.number, Issue.kind, Domain.name_zh, Domain.name_en, Issue.domain_code,
               Issue.grid_code, Issue.community_code, Issue.title, func.ST_X(Issue.location), func.ST_Y(Issue.location))
        .join(Domain, Domain.code == Issue.domain_code)
        .where(visible_issues(scope), is_open(), Issue.due_at > since, Issue.due_at <= until)
        .order_by(Issue.due_at).limit(limit)).all()
    names = dict(session.execute(select(Grid.code, Grid.name).where(
        Grid.code.in_({r[7] for r in rows} or {""}), valid_at(until))).all())
    return [FeedEvent(int(r[0]), "overdue", r[1], r[2], r[3], r[4], r[5], r[6], r[7], names.get(r[7], r[7]), r[8],
                      r[9], float(r[10] or 0), float(r[11] or 0)) for r in rows]


# -- reading by id, in order, once ------------------------------------------------------------------
@dataclass
class Cursor:
    """Where a wall is in the event table: ``resume`` (every id up to it was handled or given up),
    the ids above it already sent, and the gaps below the highest id seen, with when each was seen."""

    resume: int
    sent: set[int] = field(default_factory=set)
    gaps: dict[int, float] = field(default_factory=dict)

    def take(self, batch: Sequence[FeedEvent], now: float | None = None) -> list[FeedEvent]:
        """The events of ``batch`` (a read of ids above ``resume``) not sent before; moves ``resume``
        up to the lowest gap still waited for."""
        now = time.monotonic() if now is None else now
        fresh = [e for e in batch if e.id > self.resume and e.id not in self.sent]
        self.sent.update(e.id for e in fresh)
        seen = {e.id for e in batch} | self.sent
        top = max(seen, default=self.resume)
        for i in range(self.resume + 1, top):
            if i not in seen:
                self.gaps.setdefault(i, now)
        for i in [i for i in self.gaps if i in seen or now - self.gaps[i] > GAP_WAIT_S]:
            del self.gaps[i]
        self.resume = (min(self.gaps) - 1) if self.gaps else max(self.resume, top)
        self.sent = {i for i in self.sent if i > self.resume}
        return fresh


class SharedReads:
    """One read of the event table per scope and cursor position, however many walls of the process
    woke for the same notification: the first wall to ask reads (:func:`events_after` in ``read``),
    the others that woke before that read started take its rows. With 20 walls this is one query
    per notification instead of 20. A read is only shared when it started after the asker woke, so
    it holds every commit the asker was told about."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Any, threading.Lock] = {}
        self._last: dict[Any, tuple[float, int, list[FeedEvent]]] = {}

    def read(self, key: Any, after: int, woke_at: float, read) -> list[FeedEvent]:
        """The events after ``after`` for ``key`` (a scope): a shared read started at or after
        ``woke_at`` (``time.monotonic()``), else ``read()`` now."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._last.get(key)
            if hit is not None and hit[1] == after and hit[0] >= woke_at:
                return hit[2]
            started = time.monotonic()
            rows = read()
            self._last[key] = (started, after, rows)
            return rows


# -- the listener: one per process ------------------------------------------------------------------
class Subscription:
    """One wall's wake-ups: the highest event id notified (or 0: "look again", after a reconnect)."""

    def __init__(self, listener: Listener, maxsize: int) -> None:
        self._listener = listener
        self.queue: queue.Queue[int] = queue.Queue(maxsize=maxsize)
        self.dropped = 0

    def push(self, event_id: int) -> None:
        try:
            self.queue.put_nowait(event_id)
        except queue.Full:   # a slow wall: it reads from the table anyway, so a wake-up is enough
            self.dropped += 1

    def wait(self, timeout: float) -> list[int]:
        """The ids notified within ``timeout`` seconds (empty: none), drained."""
        try:
            got = [self.queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                got.append(self.queue.get_nowait())
            except queue.Empty:
                return got

    def close(self) -> None:
        self._listener.unsubscribe(self)


class Listener:
    """``LISTEN gridwatch_events`` on its own connection (``conninfo``: a libpq URL), in one
    daemon thread, reconnecting by itself; :meth:`subscribe` hands out bounded queues."""

    def __init__(self, conninfo: str, *, queue_size: int = 256, connect_timeout_s: int = 3) -> None:
        self.conninfo = conninfo
        self.queue_size = queue_size
        self.connect_timeout_s = connect_timeout_s
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.down_since: dt.datetime | None = None
        self.notified = 0
        #: counts announcements on ACCESS_CHANNEL (and reconnects): a stream whose last token check
        #: is older than a change checks again
        self.access_changes = 0

    def start(self) -> Listener:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gridwatch-listener", daemon=True)
                self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def subscribe(self) -> Subscription:
        self.start()
        sub = Subscription(self, self.queue_size)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def wake(self) -> None:
        """Every subscriber looks again (e.g. new numbers were computed for them)."""
        self._fan_out(0)

    def _fan_out(self, event_id: int) -> None:
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            s.push(event_id)

    def _run(self) -> None:
        import psycopg

        backoff = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=self.connect_timeout_s) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {ACCESS_CHANNEL}")
                    self.access_changes += 1   # revocations while away: every stream checks again
                    if self.down_since is not None:
                        log.info("event listener reconnected")
                    self.down_since = None
                    self.connected.set()
                    backoff = 0.2
                    self._fan_out(0)   # whatever was committed while away: every wall reads again
                    while not self._stop.is_set():
                        for n in conn.notifies(timeout=1.0):
                            if n.channel == CHANNEL:
                                self.notified += 1
                                self._fan_out(int(n.payload) if n.payload.isdigit() else 0)
                            else:   # an access change: every stream checks its token again
                                self.access_changes += 1
                                self._fan_out(0)
                        conn.execute("SELECT 1")   # notices a dead server within a second
            except Exception as exc:   # the database is away: keep trying, one log line per outage
                if self.connected.is_set() or self.down_since is None:
                    log.warning("event listener lost the database: %s", type(exc).__name__)
                    self.down_since = self.down_since or dt.datetime.now(dt.UTC)
                self.connected.clear()
                self._stop.wait(backoff)
                backoff = min(5.0, backoff * 2)
