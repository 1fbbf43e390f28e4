"""The wall over real HTTP (a threaded server per app on one scratch database): the display token
(``gridwatch wall-url``, the cookie, revocation), the page (no personal data), the live stream —
NOTIFY at commit only, catch-up by ``Last-Event-ID``, two server processes' listeners each giving
their wall every event once —, the stream cap and the polling fallback."""
from __future__ import annotations

import re
import threading
import time

import pytest
import requests
from sqlalchemy import select, text
from werkzeug.serving import make_server

from dashboard.api import register_api
from geodata.access import accounts
from geodata.access.models import ApiToken
from geodata.db import session_scope
from geodata.maps.feed import Listener
from tests.conftest import SUFFIX
from tests.sse import SSEClient
from tests.world import bearer, run_gridwatch, scratch_api

PHONE = re.compile(r"1[3-9]\d{9}")
NAMES = ("网格长甲", "西支书", "街道书记", "中心操作员", "王报告")


class Served:
    def __init__(self, server) -> None:
        self.app = server
        self.httpd = make_server("127.0.0.1", 0, server, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.app.extensions["gridwatch_wall_listener"].stop()   # before its database is dropped


@pytest.fixture(scope="module")
def site(server_url, tmp_path_factory):
    with scratch_api(server_url, f"gridwatch_test_wall{SUFFIX}", tmp_path_factory.mktemp("var"), dash=True,
                     secure_cookies=False, wall_state_min_s=1.0) as a:
        a.served = Served(a.app)
        yield a
        a.served.stop()


def second_process(site, **settings_kw):
    """Another server on the same database, as a second `gridwatch serve` would be: its own Dash
    app, its own listener."""
    from dashboard import create_dash

    settings = site.settings.model_copy(update=settings_kw)
    app = create_dash(settings, site.app_engine).server
    register_api(app, settings, site.app_engine)
    return Served(app)


def display_token(site, name: str | None = None) -> str:
    import secrets

    with session_scope(site.engine) as s:
        aid = accounts.create_account(s, name or f"wall-{secrets.token_hex(3)}", kind="display",
                                      grants=(("display", None),))
        return accounts.issue_token(s, aid, "wall")


def report(site, url: str, title: str, **extra) -> dict:
    body = {"kind": "problem", "domain": "sanitation", "title": title, "lon": 113.625, "lat": 34.755, **extra}
    r = requests.post(f"{url}/api/v1/issues", json=body, headers=bearer(site.world.tokens["operator"]), timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def stream(url: str, token: str, **headers) -> SSEClient:
    c = SSEClient(f"{url}/wall/events", cookies={"gw_wall": token}, headers=headers).start()
    assert c.status == 200
    return c


def feeds_of(msgs, number: str) -> list:
    return [m for m in msgs if m.event == "feed" and m.json()["number"] == number]


# -- the token ----------------------------------------------------------------------------------------
def test_wall_url_prints_a_working_url_and_reuses_the_display(site):
    out = run_gridwatch(site.url, "wall-url", "--name", "lobby", "--base-url", "http://wall.example:8050")
    assert out.returncode == 0, out.stderr
    m = re.fullmatch(r"http://wall\.example:8050/wall\?token=(gw_[A-Za-z0-9_-]+)\n", out.stdout)
    assert m, out.stdout
    again = run_gridwatch(site.url, "wall-url", "--name", "lobby")
    token2 = again.stdout.strip().rsplit("=", 1)[1]
    assert token2 != m.group(1)
    with session_scope(site.engine) as s:
        p1, p2 = accounts.verify_token(s, m.group(1)), accounts.verify_token(s, token2)
        assert p1.account_id == p2.account_id and p1.kind == "display" and not p1.scope().personal_data
    refused = run_gridwatch(site.url, "wall-url", "--name", "operator")   # a user account, not a display
    assert refused.returncode != 0 and "display" in (refused.stdout + refused.stderr)


def test_wall_url_carries_the_walls_own_settings(site):
    out = run_gridwatch(site.url, "wall-url", "--name", "hall-en", "--base-url", "http://w:1", "--tour", "45",
                        "--lang", "en")
    assert out.returncode == 0, out.stderr
    m = re.fullmatch(r"http://w:1/wall\?token=(gw_[A-Za-z0-9_-]+)&tour=45&lang=en\n", out.stdout)
    assert m, out.stdout
    r = requests.get(f"{site.served.url}/wall?token={m.group(1)}&tour=45&lang=en", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/wall?tour=45&lang=en"
    page = requests.get(f"{site.served.url}/wall?tour=45&lang=en", cookies={"gw_wall": m.group(1)}, timeout=30)
    assert page.status_code == 200 and '"tour_s":45' in page.text and '"lang":"en"' in page.text
    bad = run_gridwatch(site.url, "wall-url", "--name", "hall-x", "--lang", "fr")
    assert bad.returncode != 0 and "--lang" in (bad.stdout + bad.stderr)


def test_token_goes_into_a_cookie_and_out_of_the_address(site):
    token = display_token(site)
    r = requests.get(f"{site.served.url}/wall?token={token}&tour=15", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/wall?tour=15"
    cookie = r.headers["Set-Cookie"]
    assert "gw_wall=" in cookie and "HttpOnly" in cookie and "Path=/wall" in cookie
    page = requests.get(f"{site.served.url}/wall?tour=15", cookies={"gw_wall": token}, timeout=30)
    assert page.status_code == 200 and "网格化管理中心" in page.text and '"tour_s":15' in page.text
    assert "wall-root" in page.text and "/assets/wall.js" in page.text


def test_no_token_or_a_dead_one_gets_the_stopped_screen(site):
    r = requests.get(f"{site.served.url}/wall", timeout=10)
    assert r.status_code == 401 and "wall-url" in r.text and "wall-root" not in r.text
    r = requests.get(f"{site.served.url}/wall?token=gw_nonsense", allow_redirects=False, timeout=10)
    assert r.status_code == 403 and "已停用" in r.text
    r = requests.get(f"{site.served.url}/wall/events", headers={"Last-Event-ID": "x1"},
                     cookies={"gw_wall": display_token(site)}, timeout=10)
    assert r.status_code == 422 and r.json()["error"]["field"] == "Last-Event-ID"
    r = requests.get(f"{site.served.url}/wall?tour=9999", cookies={"gw_wall": display_token(site)}, timeout=10)
    assert r.status_code == 422 and r.json()["error"]["field"] == "tour"


def test_page_and_stream_carry_no_personal_data(site):
    token = display_token(site)
    c = stream(site.served.url, token)
    report(site, site.served.url, "井盖缺失", reporter_name="王报告", reporter_phone="13912345678")
    msgs = c.drain(4)
    c.close()
    page = requests.get(f"{site.served.url}/wall", cookies={"gw_wall": token}, timeout=30).text
    received = "".join(m.data for m in msgs)
    assert "井盖缺失" in received and "井盖缺失" in page
    for blob in (received, page):
        assert not PHONE.search(blob)
        assert not any(n in blob for n in NAMES)


# -- live push -------------------------------------------------------------------------------------------
def test_notify_is_sent_at_commit_and_never_for_a_rollback(site):
    listener = Listener(site.app_engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
    sub = listener.subscribe()
    assert listener.connected.wait(10)
    sub.wait(0.5)   # the reconnect wake-up
    issue_id = report(site, site.served.url, "通知测试")["id"]
    assert sub.wait(5)   # the report's own event
    sub.wait(0.5)
    with site.engine.connect() as conn:
        tx = conn.begin()
        conn.execute(text("INSERT INTO issue_event (issue_id, action, from_status, to_status, at, note) "
                          "VALUES (:i, 'extend', 'reported', 'reported', now(), '')"), {"i": issue_id})
        assert sub.wait(1.5) == []          # written, not committed: nothing yet
        tx.rollback()
    assert sub.wait(1.5) == []              # rolled back: nothing, ever
    with site.engine.begin() as conn:
        new_id = conn.execute(text("INSERT INTO issue_event (issue_id, action, from_status, to_status, at, note) "
                                   "VALUES (:i, 'extend', 'reported', 'reported', now(), '') RETURNING id"),
                              {"i": issue_id}).scalar_one()
    assert sub.wait(5) == [new_id]
    sub.close()
    listener.stop()


def test_two_processes_each_wall_gets_each_event_once(site):
    other = second_process(site)
    try:
        a = stream(site.served.url, display_token(site))
        b = stream(other.url, display_token(site))
        made = [report(site, site.served.url, f"两屏测试{i}")["number"] for i in range(3)]
        got_a, got_b = a.drain(8), b.drain(1)
        for got in (got_a, got_b):
            for number in made:
                assert len(feeds_of(got, number)) == 1, (number, [m.data[:80] for m in got])
            states = [m.json() for m in got if m.event == "state"]
            assert states and states[-1]["kpis"]["new_today"] >= 3
        a.close()
        b.close()
    finally:
        other.stop()


def test_a_reconnecting_wall_catches_up_by_last_event_id(site):
    with session_scope(site.engine) as s:
        last = s.scalar(text("SELECT max(id) FROM issue_event"))
    missed = [report(site, site.served.url, f"断线期间{i}")["number"] for i in range(3)]
    c = stream(site.served.url, display_token(site), **{"Last-Event-ID": str(last)})
    got = c.drain(3)
    c.close()
    feeds = [m.json()["number"] for m in got if m.event == "feed"]
    assert feeds == missed                      # all of them, in order, once
    ids = [int(m.id) for m in got if m.event == "feed"]
    assert ids == sorted(ids) and ids[-1] > last
    # resuming from the last id sent: nothing again
    c = stream(site.served.url, display_token(site), **{"Last-Event-ID": str(ids[-1])})
    assert not [m for m in c.drain(2.5) if m.event == "feed"]
    c.close()


def test_a_revoked_token_stops_the_open_wall(site):
    token = display_token(site)
    c = stream(site.served.url, token)
    with session_scope(site.engine) as s:
        tid = s.scalar(select(ApiToken.id).where(ApiToken.token_hash == accounts._digest(token)))
        accounts.revoke_token(s, tid)
    assert c.next("stopped", timeout=8) is not None
    assert c.closed.wait(5)
    r = requests.get(f"{site.served.url}/wall", cookies={"gw_wall": token}, timeout=10)
    assert r.status_code == 403 and "已停用" in r.text


def test_a_disabled_display_account_stops_the_open_wall_at_once(site):
    # streams ask the database again only when an access change is announced (NOTIFY in the
    # disabling transaction) or every RECHECK_S (60 s): stopping within seconds is the announcement
    token = display_token(site)
    c = stream(site.served.url, token)
    assert c.status == 200   # the stream's first bytes came: it listens
    with session_scope(site.engine) as s:
        acc = s.scalar(select(ApiToken.account_id).where(ApiToken.token_hash == accounts._digest(token)))
        accounts.set_disabled(s, acc)
    assert c.next("stopped", timeout=8) is not None
    with session_scope(site.engine) as s:
        accounts.set_disabled(s, acc, False)


def test_streams_beyond_the_cap_poll_instead(site):
    capped = second_process(site, wall_streams=1)
    try:
        token = display_token(site)
        first = stream(capped.url, token)
        r = requests.get(f"{capped.url}/wall/events", cookies={"gw_wall": token}, timeout=10)
        assert r.status_code == 503 and r.headers["Retry-After"] == "30"
        assert r.json()["error"]["code"] == "wall_streams_full"
        with session_scope(site.engine) as s:
            last = s.scalar(text("SELECT max(id) FROM issue_event"))
        number = report(site, capped.url, "轮询测试")["number"]
        polled = requests.get(f"{capped.url}/wall/state?after={last}", cookies={"gw_wall": token}, timeout=30).json()
        assert [e["number"] for e in polled["events"]] == [number] and polled["last_id"] > last
        assert polled["state"]["kpis"]["new_today"] >= 1
        first.close()
        time.sleep(3)      # the closed stream notices at its next write and gives its slot back
        again = SSEClient(f"{capped.url}/wall/events", cookies={"gw_wall": token}).start()
        assert again.status == 200
        again.close()
    finally:
        capped.stop()
