"""The production server (`gridwatch serve`): waitress, with request bodies read at a bounded rate.

Waitress reads every request whole on its one I/O thread before a worker runs it; a client
sending big bodies back to back over a fast link would have the server spend its processor
copying bytes (the kernel, the I/O loop, the buffers) while every other request waits for it — the
stall benchmark (``bench/bench_stall.py``) measured a 2.7× slower ``GET /api/v1/issues`` with 14
clients sending 11 MB bodies that are refused unread. So the bytes of big bodies (over
``BIG_BODY_BYTES`` declared, or chunked) share one token bucket, ``settings.upload_bytes_per_s``:
while it is empty such connections are left unread (TCP holds the sender back) and are read again
once it refills; headers, small bodies and answers never wait for it. The rate is a budget for the
whole server (32 MB/s by default: a dozen phones uploading at once at 4G speed), not per client.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from waitress import create_server
from waitress.channel import HTTPChannel

#: bodies declared larger than this (or chunked) are read under the upload budget
BIG_BODY_BYTES = 256 * 1024
#: the shortest pause of a throttled read: the I/O loop is woken at most 50 times a second for it
#: (each wake-up is a pass over every connection, holding the interpreter's lock)
MIN_WAIT_S = 0.02


class UploadBudget:
    """A token bucket of body bytes shared by all connections (thread-safe; the I/O loop takes,
    the refill is lazy). ``clock`` is injectable for tests."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(rate / 8, 256 * 1024))
        self.clock = clock
        self.tokens = self.burst
        self.stamp = clock()
        self.waits = 0   # how often a connection was left unread (for tests and diagnostics)
        self._lock = threading.Lock()
        self._wake: threading.Timer | None = None

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def ready(self) -> bool:
        with self._lock:
            self._refill()
            return self.tokens > 0

    def take(self, n: int) -> None:
        """Spend ``n`` bytes (after the read: the balance may go below zero, repaid by waiting)."""
        with self._lock:
            self._refill()
            self.tokens -= n

    def _delay(self) -> float:   # under the lock
        self._refill()
        return max(MIN_WAIT_S, -self.tokens / self.rate)

    def delay(self) -> float:
        """Seconds until the bucket has tokens again."""
        with self._lock:
            return self._delay()

    def wake_later(self, pull: Callable[[], None]) -> None:
        """Wake the I/O loop (``pull``) when the bucket has refilled; one timer at a time."""
        with self._lock:
            self.waits += 1
            if self._wake is not None and self._wake.is_alive():
                return
            self._wake = threading.Timer(self._delay(), _quietly, (pull,))
            self._wake.daemon = True
            self._wake.start()


def _quietly(pull: Callable[[], None]) -> None:
    with contextlib.suppress(OSError):   # the server closed meanwhile
        pull()


def _big_body_in_progress(channel: HTTPChannel) -> bool:
    r = channel.request   # the request being read (None between requests)
    return r is not None and r.headers_finished and not r.completed and (
        r.chunked or r.content_length > BIG_BODY_BYTES)


def throttled_channel(budget: UploadBudget) -> type[HTTPChannel]:
    """An ``HTTPChannel`` whose big bodies are read under ``budget``."""

    class ThrottledChannel(HTTPChannel):
        def readable(self) -> bool:
            if not super().readable():
                return False
            if _big_body_in_progress(self) and not budget.ready():
                budget.wake_later(self.server.pull_trigger)
                return False
            return True

        def recv(self, buffer_size: int) -> bytes:
            big = _big_body_in_progress(self)
            data = super().recv(buffer_size)
            if big and data:
                budget.take(len(data))
            return data

    return ThrottledChannel


def make_server(wsgi_app, *, upload_bytes_per_s: int, **waitress_options):
    """A waitress server (not yet running: ``.run()``) whose connections read big bodies under one
    budget of ``upload_bytes_per_s``; ``server.upload_budget`` is that budget."""
    budget = UploadBudget(upload_bytes_per_s)
    server = create_server(wsgi_app, **waitress_options)
    server.channel_class = throttled_channel(budget)   # one listening socket: a TcpWSGIServer
    server.upload_budget = budget
    return server
