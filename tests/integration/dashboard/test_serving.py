"""`gridwatch serve`'s server (dashboard.serving): big bodies are read under one upload budget,
everything else never waits for it."""
from __future__ import annotations

import hashlib
import threading

import pytest
import requests

from dashboard.serving import BIG_BODY_BYTES, MIN_WAIT_S, UploadBudget, make_server


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_budget_empties_refills_and_says_when():
    clock = Clock()
    b = UploadBudget(1000, burst=500, clock=clock)
    assert b.ready()
    b.take(800)   # spent after the read: the balance may go below zero
    assert not b.ready() and b.delay() == pytest.approx(0.3)
    clock.t += 0.29
    assert not b.ready() and b.delay() == pytest.approx(MIN_WAIT_S)   # never a busy wake-up
    clock.t += 0.02
    assert b.ready()
    clock.t += 60   # never more than the burst
    b.take(500)
    assert not b.ready()


def echo(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    out = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(out)))])
    return [out]


@pytest.fixture
def slow_server():
    """The real server, reading big bodies at 512 KB/s."""
    server = make_server(echo, upload_bytes_per_s=512 * 1024, host="127.0.0.1", port=0, threads=4,
                         max_request_body_size=8 * 1024 * 1024)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()


def test_a_big_body_is_read_under_the_budget_whole_while_small_requests_go_by(slow_server):
    server, base = slow_server
    body = bytes(range(256)) * (6 * 1024)   # 1.5 MB: about 3 s at 512 KB/s
    assert len(body) > BIG_BODY_BYTES
    done: dict = {}

    def upload():
        done["answer"] = requests.post(base + "/up", data=body, timeout=60).text

    t = threading.Thread(target=upload)
    t.start()
    # while the upload waits for the budget, other requests (no body, a small body) are answered
    for _ in range(200):
        if server.upload_budget.waits:
            break
        t.join(0.02)
    assert server.upload_budget.waits > 0
    assert requests.get(base + "/ping", timeout=2).text == f"0 {hashlib.sha256(b'').hexdigest()}"
    small = b"x" * 10_000
    assert requests.post(base + "/small", data=small, timeout=2).text.startswith("10000 ")
    assert t.is_alive(), "the upload should still be under way"
    t.join(60)
    assert done["answer"] == f"{len(body)} {hashlib.sha256(body).hexdigest()}"   # nothing lost on the way


def test_chunked_bodies_are_read_under_the_budget_too(slow_server):
    server, base = slow_server
    chunk = b"y" * 65536
    r = requests.post(base + "/up", data=(chunk for _ in range(16)), timeout=60)   # 1 MB, chunked
    assert r.text == f"{16 * len(chunk)} {hashlib.sha256(chunk * 16).hexdigest()}"
    assert server.upload_budget.waits > 0


# -- the heavy lane's rest under sustained contention (dashboard.api.limits.HeavyLane) ------------
def _waiter(lane, got: list) -> threading.Thread:
    t = threading.Thread(target=lambda: got.append(lane.acquire(timeout=10)), daemon=True)
    t.start()
    for _ in range(500):
        if lane.waiting:
            return t
        t.join(0.01)
    raise AssertionError("the waiter never queued")


def test_heavy_lane_runs_bursts_at_full_speed_and_rests_under_sustained_contention():
    from dashboard.api.limits import HeavyLane

    clock = Clock()
    lane = HeavyLane(1, pause=0.1, sustained_s=1.0, clock=clock)
    got: list = []
    assert lane.acquire(timeout=1)
    start = clock()
    w = _waiter(lane, got)
    clock.t += 0.5   # a burst: busy for half a second
    lane.release(start)
    w.join(5)
    assert got == [True] and lane.rests == 0
    start = clock()
    w = _waiter(lane, got)
    clock.t += 1.0   # busy without a break for 1.5 s, and someone waits: the slot rests 0.1 s
    lane.release(start)
    assert lane.rests == 1
    w.join(5)
    assert got == [True, True]
    lane.release(clock())   # nobody waits: no rest, and the lane's busy spell is over
    assert lane.rests == 1 and lane.busy_since is None and lane.active == 0
    assert lane.acquire(timeout=1)   # a new burst
    assert lane.busy_since == clock()
    lane.release(clock())


def test_heavy_lane_with_no_pause_never_rests():
    from dashboard.api.limits import HeavyLane

    clock = Clock()
    lane = HeavyLane(1, pause=0.0, sustained_s=0.0, clock=clock)
    got: list = []
    assert lane.acquire(timeout=1)
    w = _waiter(lane, got)
    clock.t += 5
    lane.release(clock() - 5)
    w.join(5)
    assert got == [True] and lane.rests == 0
    lane.release(clock())
