"""The wall in chromium at 1920×1080 (and 3840×2160): no scroll bars, readable sizes, a report sent
through the API reaching the feed and the KPIs without a reload, no phone numbers on the page, and a
revoked token turning the screen into 已停用 by itself."""
from __future__ import annotations

import re
import threading

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from geodata.access import accounts
from geodata.access.models import ApiToken
from geodata.db import session_scope
from tests.conftest import SUFFIX
from tests.e2e.conftest import csp_safe_waits, csp_violations, watch_csp
from tests.world import bearer, scratch_api, seed_issues

PHONE = re.compile(r"1[3-9]\d{9}")


@pytest.fixture(scope="module")
def wall_site(server_url, tmp_path_factory):
    import datetime as dt

    with scratch_api(server_url, f"gridwatch_test_wall_e2e{SUFFIX}", tmp_path_factory.mktemp("var"), dash=True,
                     basemap_url="", wall_tour_s=0) as a:
        with session_scope(a.engine) as s:
            seed_issues(s, a.world, now=dt.datetime.now(dt.UTC))
        httpd = make_server("127.0.0.1", 0, a.app, threaded=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        a.base = f"http://127.0.0.1:{httpd.server_port}"
        yield a
        httpd.shutdown()
        a.app.extensions["gridwatch_wall_listener"].stop()


def new_display(site) -> str:
    import secrets

    with session_scope(site.engine) as s:
        aid = accounts.create_account(s, f"wall-{secrets.token_hex(3)}", kind="display", grants=(("display", None),))
        return accounts.issue_token(s, aid, "wall")


def open_wall(browser, site, token: str, width: int, height: int):
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN", timezone_id="Asia/Shanghai")
    watch_csp(ctx)
    pg = ctx.new_page()
    pg.set_default_timeout(20000)
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.csp = csp_violations(pg)
    csp_safe_waits(pg)
    pg.goto(f"{site.base}/wall?token={token}")    # the token becomes a cookie; the address loses it
    assert pg.url == f"{site.base}/wall"
    pg.wait_for_function("window.gridwatchWall && document.getElementById('wall-status').textContent.includes('实时')")
    return ctx, pg


def sizes(pg) -> dict:
    return pg.evaluate("""() => ({
        sw: document.documentElement.scrollWidth, sh: document.documentElement.scrollHeight,
        w: window.innerWidth, h: window.innerHeight,
        num: Math.min(...[...document.querySelectorAll('.wall-num')].map(e => parseFloat(getComputedStyle(e).fontSize))),
        label: Math.min(...[...document.querySelectorAll('.wall-label, .wall-kpis th, .wall-feed li, .wall-rank td, h2')]
                        .map(e => parseFloat(getComputedStyle(e).fontSize))),
        overflowing: [...document.querySelectorAll('.wall-panel')].filter(e => e.getBoundingClientRect().bottom > window.innerHeight + 1).length,
    })""")


def test_wall_at_1080p_live_without_reload(browser, wall_site, shot):
    site = wall_site
    token = new_display(site)
    ctx, pg = open_wall(browser, site, token, 1920, 1080)
    try:
        s = sizes(pg)
        assert s["sw"] <= s["w"] and s["sh"] <= s["h"] and s["overflowing"] == 0, s    # no scroll bars
        assert s["num"] >= 48 and s["label"] >= 24, s
        pg.evaluate("window.__notReloaded = true")
        before = int(pg.inner_text('[data-kpi="new_today"]'))
        shot(pg, "wall-1080p")
        body = {"kind": "problem", "domain": "sanitation", "title": "大屏实时测试井盖", "lon": 113.625, "lat": 34.755,
                "reporter_name": "赵某", "reporter_phone": "13700001111"}
        r = requests.post(f"{site.base}/api/v1/issues", json=body, headers=bearer(site.world.tokens["operator"]), timeout=10)
        assert r.status_code == 201
        pg.wait_for_function("document.querySelector('#wall-feed li') && "
                             "document.querySelector('#wall-feed li').textContent.includes('大屏实时测试井盖')", timeout=5000)
        # the numbers follow within wall_state_min_s (10 s) + their computing time
        pg.wait_for_function(f"document.querySelector('[data-kpi=\"new_today\"]').dataset.value === '{before + 1}'",
                             timeout=30000)
        pg.wait_for_timeout(1500)   # the count-up has finished
        assert int(pg.inner_text('[data-kpi="new_today"]')) == before + 1
        assert pg.evaluate("window.__notReloaded === true")
        assert pg.locator("#wall-map .wall-today").count() >= 1       # today's issues pulse on the map
        html = pg.content()
        assert not PHONE.search(html) and "赵某" not in html
        assert not PHONE.search(pg.inner_text("body"))
        shot(pg, "wall-1080p-after-report")
        # revoked: the open wall stops by itself
        with session_scope(site.engine) as db:
            tid = db.scalar(select(ApiToken.id).where(ApiToken.token_hash == accounts._digest(token)))
            accounts.revoke_token(db, tid)
        pg.wait_for_selector("#wall-stopped", timeout=10000)
        assert "已停用" in pg.inner_text("#wall-stopped")
        shot(pg, "wall-stopped")
        assert not pg.errors and not pg.csp, (pg.errors, pg.csp)
    finally:
        ctx.close()


def test_wall_at_4k_scales_up(browser, wall_site, shot):
    ctx, pg = open_wall(browser, wall_site, new_display(wall_site), 3840, 2160)
    try:
        s = sizes(pg)
        assert s["sw"] <= s["w"] and s["sh"] <= s["h"] and s["overflowing"] == 0, s
        assert s["num"] >= 96 and s["label"] >= 48, s    # twice the 1080p floor: scaled by the viewport
        shot(pg, "wall-4k")
        assert not pg.errors and not pg.csp, (pg.errors, pg.csp)
    finally:
        ctx.close()
