"""The map while the database is down, in a real browser: a PostgreSQL cluster of the test's own
(demo data), stopped and started under the running app (served in-process, as ``create_app`` wires it)."""
from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import socket
import uuid
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine

from dashboard.components import ids
from geodata.db.cluster import Cluster
from geodata.db.migrate import upgrade
from geodata.settings import PROJECT_ROOT, Settings

from ..conftest import DEMO_END
from .conftest import LiveServer, csp_safe_waits, sign_in_context, watch_csp

pytestmark = pytest.mark.e2e
PORTS = range(54345, 54350)          # this worktree's ports for clusters its tests start
WAIT_MS = 30000                      # bounded waits: polls every second, reconnects within seconds
LIVE = re.compile(r"^● 实时 · 更新于 \d{2}:\d{2}:\d{2}$")
DOWN = re.compile(r"^⚠ 数据中断 自 (\d{2}:\d{2})$")
#: the street outline and its 14 communities are drawn (all grid layers loaded)
GRIDS_DRAWN = ("document.querySelectorAll('path.gw-grid-l2').length === 14"
               " && document.querySelectorAll('path.gw-grid-l1').length === 1")
SETTLED = "!document.querySelector('[data-dash-is-loading=\"true\"]')"


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


@pytest.fixture(scope="module")
def outage_app():
    """(cluster, served app): the demo dataset in a cluster of its own, the app on a free port.

    The cluster lives under the project's var/ (as the cluster test's): not under pytest's tmp dir,
    whose root any other pytest run on the machine makes private again (0700), locking the
    ``postgres`` user out of the data directory mid-test."""
    from app import create_app
    from etl.demo import load_demo
    from geodata.db import get_engine

    var = PROJECT_ROOT / "var" / f"test-outage-{uuid.uuid4().hex[:8]}"
    settings = Settings(database_url=None, var_dir=var, pg_port=_free_port(), basemap_url="",
                        basemap_path=None, live_interval_s=1.0)
    cluster = Cluster(settings)
    try:
        cluster.up()
        upgrade(cluster.owner_url)   # as `gridwatch db up` / `demo` do: the owner; the app connects as the app role
        loader = create_engine(cluster.owner_url)
        try:
            load_demo(loader, end=DEMO_END, progress=False)
        finally:
            loader.dispose()
        server = LiveServer(create_app(settings)).start()
        try:
            yield cluster, server, settings
        finally:
            server.stop()
            get_engine(settings).dispose()
    finally:
        try:
            cluster.down()
        finally:
            shutil.rmtree(var, ignore_errors=True)


@pytest.fixture
def page(browser, outage_app):
    from geodata.db import get_engine

    _, server, settings = outage_app
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    # signed in before the outage: the viewer keeps the page while the database is away
    sign_in_context(context, server.url, get_engine(settings))
    watch_csp(context)
    pg = context.new_page()
    csp_safe_waits(pg)
    pg.set_default_timeout(15000)
    pg.errors = []                  # type: ignore[attr-defined]
    pg.console_errors = []          # type: ignore[attr-defined]
    pg.on("pageerror", lambda e: pg.errors.append(f"{e}\n{e.stack}"))
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    yield pg
    context.close()


def _minutes_around(settings: Settings, start: dt.datetime) -> set[str]:
    """HH:MM (business time zone) of every minute from ``start`` to now."""
    tz, now = ZoneInfo(settings.timezone), dt.datetime.now(dt.UTC)
    out, t = set(), start.replace(second=0, microsecond=0)
    while t <= now:
        out.add(t.astimezone(tz).strftime("%H:%M"))
        t += dt.timedelta(minutes=1)
    return out


def _outage_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gridwatch.db"]


def test_open_map_shows_the_outage_keeps_the_data_and_recovers(page, outage_app, shot, caplog):
    cluster, server, settings = outage_app
    caplog.set_level(logging.WARNING)
    page.goto(server.url + "/")
    page.wait_for_function(GRIDS_DRAWN)
    page.wait_for_function(SETTLED)
    note = page.locator(f"#{ids.LIVE_NOTE}")
    expect(note).to_have_text(LIVE)
    street = page.locator("#map-grid-name").inner_text()

    stopped = dt.datetime.now(dt.UTC)
    cluster.down()
    try:
        expect(note).to_have_text(DOWN, timeout=WAIT_MS)
        expect(note.locator(".gw-live-down")).to_be_visible()
        assert DOWN.match(note.inner_text()).group(1) in _minutes_around(settings, stopped)
        # a few more failed polls: the last data stays on screen, nothing shows an error
        page.wait_for_timeout(2500)
        assert page.locator("path.gw-grid-l2").count() == 14
        assert page.locator("#map-grid-name").inner_text() == street
        expect(page.get_by_text("Callback error")).to_have_count(0)
        shot(page, "outage-01-open-map")
    finally:
        cluster.up()
    expect(note).to_have_text(LIVE, timeout=WAIT_MS)
    page.wait_for_function(GRIDS_DRAWN)
    expect(page.locator("#map-grid-name")).to_have_text(street)
    assert not page.errors and not page.console_errors, "\n".join(page.errors)
    lines = _outage_lines(caplog)       # one line when it went down, one when it came back
    assert len(lines) == 2 and "unavailable" in lines[0] and "available again" in lines[1], lines
    tracebacks = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]
    assert not tracebacks, tracebacks


def test_page_opened_during_the_outage_fills_in_when_the_database_returns(page, outage_app, shot):
    cluster, server, _ = outage_app
    cluster.down()
    try:
        page.goto(server.url + "/")
        note = page.locator(f"#{ids.LIVE_NOTE}")
        expect(note).to_have_text(DOWN)
        expect(page.locator("#map-leaflet")).to_be_visible()
        expect(page.get_by_text("Error loading layout")).to_have_count(0)
        assert page.locator("path.gw-grid").count() == 0
        page.wait_for_timeout(2500)     # live polls while down keep the outage state
        expect(note).to_have_text(DOWN)
        shot(page, "outage-02-fresh-page")
    finally:
        cluster.up()
    page.wait_for_function(GRIDS_DRAWN, timeout=WAIT_MS)   # no reload: the live poll rebuilt the body
    expect(note).to_have_text(LIVE)
    expect(page.locator("#map-grid-name")).not_to_be_empty()
    expect(page.locator(".gw-kpi-total .gw-kpi-value")).not_to_be_empty()
    assert not page.errors and not page.console_errors
