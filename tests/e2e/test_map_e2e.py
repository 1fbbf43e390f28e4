"""The grid map in a real browser (Playwright + Debian chromium) on the demo dataset."""
from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import text
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.maps import layers
from geodata.maps import metrics as map_metrics
from geodata.workflow.filters import IssueFilter
from tests.e2e.conftest import csp_safe_waits, csp_violations, sign_in_context, watch_csp
from tests.world import TZ

pytestmark = pytest.mark.e2e
ALL = Scope.everything()
XSS = "<img src=x onerror=alert(1)>"


def open_map(page, server, query: str = "") -> None:
    page.goto(server.url + "/" + query)
    page.wait_for_function("document.querySelectorAll('path.gw-grid-l2').length === 14"
                           " && document.querySelectorAll('path.gw-grid-l1').length === 1")


def kpi(page, name: str) -> str:
    return page.locator(f".gw-kpi-{name} .gw-kpi-value").inner_text()


def click_grid(page, code: str) -> None:
    # Leaflet listens on the map container; a click dispatched on the polygon's path goes through
    # Leaflet's own event handling (the label and markers on top would intercept a mouse click)
    page.locator(f"path.gw-grid-{code}").dispatch_event("click")


def wait_settled(page, ms: int = 400) -> None:
    page.wait_for_function("!document.querySelector('[data-dash-is-loading=\"true\"]')")
    page.wait_for_timeout(ms)


@pytest.fixture(scope="module")
def demo(map_engine):
    with Session(map_engine) as s:
        street = layers.street_code(s, ALL)
        communities = layers.grid_layer(s, ALL, 2)["features"]
        community = communities[3]["properties"]["code"]
        detail = layers.grid_detail(s, ALL, community)
        blocks = [f["properties"]["code"] for f in layers.grid_layer(s, ALL, 3)["features"]
                  if f["properties"]["parent_code"] == community]
        street_detail = layers.grid_detail(s, ALL, street)
    return {"street": street, "street_name": street_detail.name, "community": community,
            "community_name": detail.name, "officials": [o.name for o in detail.officials],
            "blocks": blocks}


def _insert_issue(engine, block: str, title: str) -> int:
    with Session(engine) as s, s.begin():
        lon, lat = s.execute(text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid "
                                  "WHERE code = :c AND valid_to IS NULL) q"), {"c": block}).one()
        return s.execute(text("""
            INSERT INTO issue (number, kind, domain_code, title, description, source, location, grid_code,
                               community_code, status, reported_at, due_at, updated_at)
            VALUES ('E2E' || (floor(random() * 1e9))::bigint, 'problem', 'sanitation', :t, '', 'resident',
                    ST_SetSRID(ST_MakePoint(:x, :y), 4326), :g, :c, 'reported', now(),
                    now() + interval '2 days', now())
            RETURNING id"""), {"t": title, "x": lon, "y": lat, "g": block, "c": block[:12] + "00"}
        ).scalar_one()


def _delete_issue(engine, issue_id: int) -> None:
    with Session(engine) as s, s.begin():
        s.execute(text("DELETE FROM issue WHERE id = :i"), {"i": issue_id})


def test_street_view_draws_14_communities(page, live_server, demo, shot):
    t0 = time.monotonic()
    open_map(page, live_server)
    assert time.monotonic() - t0 < 10
    assert page.locator("path.gw-grid-l1").count() == 1
    assert page.locator(".gw-label-l2").count() == 14
    expect(page.locator(".gw-crumb-current")).to_have_text(demo["street_name"])
    expect(page.locator("#map-legend-choro .gw-legend-row").first).to_be_visible()
    wait_settled(page, 800)
    # markers: at street level the demo year is aggregated into cells
    assert page.locator(".gw-bin, .gw-cluster, .gw-marker").count() > 0
    shot(page, "01-street")
    assert not page.errors


def test_drill_down_breadcrumb_and_back(page, live_server, demo, shot):
    open_map(page, live_server)
    wait_settled(page)
    click_grid(page, demo["community"])
    page.wait_for_url(re.compile(rf"\?grid={demo['community']}$"))
    page.wait_for_function(f"document.querySelectorAll('path.gw-grid-l3').length === {len(demo['blocks'])}")
    expect(page.locator("#map-grid-name")).to_have_text(demo["community_name"])
    officials = page.locator(".gw-official-name").all_inner_texts()
    assert officials == demo["officials"]
    assert page.locator(".gw-official-phone").count() == len(officials)  # personal data on
    crumbs = page.locator("#map-breadcrumb").inner_text()
    assert demo["street_name"] in crumbs and demo["community_name"] in crumbs
    wait_settled(page, 600)
    shot(page, "02-community")

    block = demo["blocks"][0]
    click_grid(page, block)
    page.wait_for_url(re.compile(rf"\?grid={block}$"))
    expect(page.locator(".gw-h3").filter(has_text="六个一")).to_be_visible()
    wait_settled(page, 600)
    shot(page, "03-block")

    # breadcrumb up to the community, then the back button walks back down and up again
    page.locator("#map-breadcrumb a", has_text=demo["community_name"]).click()
    page.wait_for_url(re.compile(rf"\?grid={demo['community']}$"))
    expect(page.locator("#map-grid-name")).to_have_text(demo["community_name"])
    page.go_back()
    page.wait_for_url(re.compile(rf"\?grid={block}$"))
    page.go_back()
    page.wait_for_url(re.compile(rf"\?grid={demo['community']}$"))
    page.go_back()
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("#map-grid-name")).to_have_text(demo["street_name"])
    page.wait_for_function("document.querySelectorAll('path.gw-grid-l3').length === 0")
    assert not page.errors


def test_filter_changes_markers_and_counts(page, live_server, demo, map_engine, shot):
    open_map(page, live_server, f"?grid={demo['community']}")
    expect(page.locator("#map-grid-name")).to_have_text(demo["community_name"])
    wait_settled(page, 800)
    with Session(map_engine) as s:
        all_n = map_metrics.grid_counts(s, ALL, IssueFilter(), demo["community"], tz=TZ).counts.total
        sent_n = map_metrics.grid_counts(s, ALL, IssueFilter(kind="sentiment"), demo["community"], tz=TZ).counts.total
    expect(page.locator(".gw-kpi-total .gw-kpi-value")).to_have_text(f"{all_n:,}")
    before = page.locator("#map-marker-note").inner_text()
    page.locator("#map-f-kind label", has_text="社情").click()
    expect(page.locator(".gw-kpi-total .gw-kpi-value")).to_have_text(f"{sent_n:,}")
    expect(page.locator("#map-marker-note")).not_to_have_text(before)
    wait_settled(page, 800)
    shot(page, "04-filter-sentiment")
    # the choropleth metric: closure rate, with its legend
    page.locator("#map-metric").click()
    page.get_by_role("option", name="结案率").click()
    expect(page.locator("#map-legend-choro .gw-legend-title")).to_have_text("结案率", use_inner_text=True)
    expect(page.locator("#map-legend-choro")).to_contain_text("≥ 99%")
    assert not page.errors


def test_heat_layer_toggles(page, live_server, shot):
    open_map(page, live_server)
    wait_settled(page)
    assert page.locator("img.leaflet-tile[src*='/tiles/heat/']").count() == 0
    expect(page.locator("#map-legend-heat")).to_be_hidden()
    page.locator(".leaflet-control-layers label", has_text="热力图").click()
    page.wait_for_function("[...document.querySelectorAll(\"img.leaflet-tile[src*='/tiles/heat/']\")]"
                           ".some(i => i.complete && i.naturalWidth === 256)")
    expect(page.locator("#map-legend-heat")).to_be_visible()
    # ticking heat leaves the other layers (and their legends) on
    expect(page.locator("#map-legend-choro")).to_be_visible()
    expect(page.locator("#map-legend-markers")).to_be_visible()
    # the heat layer follows the filter: its tile URLs carry it
    page.locator("#map-f-kind label", has_text="问题").click()
    page.wait_for_function("[...document.querySelectorAll(\"img.leaflet-tile[src*='/tiles/heat/']\")]"
                           ".some(i => i.src.includes('k=problem'))")
    wait_settled(page, 800)
    shot(page, "05-heat")
    page.locator(".leaflet-control-layers label", has_text="热力图").click()
    page.wait_for_function("document.querySelectorAll(\"img.leaflet-tile[src*='/tiles/heat/']\").length === 0")
    expect(page.locator("#map-legend-heat")).to_be_hidden()
    # every legend follows its layer's tick box
    page.locator(".leaflet-control-layers label", has_text="分级设色").click()
    expect(page.locator("#map-legend-choro")).to_be_hidden()
    page.locator(".leaflet-control-layers label", has_text="问题标记").click()
    expect(page.locator("#map-legend-markers")).to_be_hidden()
    expect(page.locator("#map-marker-note")).to_be_hidden()
    page.locator(".leaflet-control-layers label", has_text="分级设色").click()
    expect(page.locator("#map-legend-choro")).to_be_visible()
    assert not page.errors


def test_map_runs_under_the_content_security_policy(page, live_server, demo):
    """The page is served with a strict CSP (scripts: self + the hash of Dash's inline renderer) and
    the map — grids, markers, a popup, heat tiles, the language switch — works with zero violations."""
    resp = page.goto(live_server.url + "/")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert resp.headers["x-content-type-options"] == "nosniff"
    page.wait_for_function("document.querySelectorAll('path.gw-grid-l2').length === 14")
    wait_settled(page)
    page.locator(".leaflet-control-layers label", has_text="热力图").click()
    page.wait_for_function("[...document.querySelectorAll(\"img.leaflet-tile[src*='/tiles/heat/']\")]"
                           ".some(i => i.complete && i.naturalWidth === 256)")
    # the ticked layer is in the URL before the next click, as a user sees the view settle (a grid
    # clicked while it is on its way: test_leaders_map's ..._on_its_way_to_the_url_keeps_both)
    page.wait_for_url(re.compile(r"[?&]l=choro,heat,markers(&|$)"))
    wait_settled(page)
    click_grid(page, demo["community"])
    page.wait_for_function("document.querySelectorAll('path.gw-grid-l3').length > 0")
    wait_settled(page)
    page.locator("#app-lang label", has_text="English").click()
    expect(page.locator("#hdr-title")).to_contain_text("Grid")
    wait_settled(page)
    # the reporter itself works: an inline script injected now is refused and reported
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.__x = 1';"
                  " document.body.appendChild(s); }")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__x") is None
    assert any("script-src" in v for v in page.csp_violations), page.csp_violations
    page.csp_violations.clear()
    assert not page.errors


def test_xss_title_renders_as_text(page, live_server, demo, map_engine, shot):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    block = demo["blocks"][1]
    issue_id = _insert_issue(map_engine, block, XSS)
    try:
        open_map(page, live_server, f"?grid={block}&issue={issue_id}")
        # the map flies to the issue and opens its popup; the title is text, not markup
        popup_title = page.locator(".leaflet-popup .gw-popup-title")
        expect(popup_title).to_have_text(XSS, timeout=15000)
        assert page.locator(".leaflet-popup img").count() == 0
        # the latest-issues table shows it as text too, and its row opens the timeline
        cell = page.locator(".ag-cell", has_text=XSS).first
        expect(cell).to_be_visible()
        wait_settled(page, 500)
        shot(page, "06-xss-popup")
        cell.click()
        expect(page.locator("#map-timeline-issue")).to_have_text(XSS)
        assert page.locator(".modal img").count() == 0
        wait_settled(page, 300)
        shot(page, "07-timeline")
        page.locator("#map-timeline-close").click()
        expect(page.locator("#map-timeline-issue")).to_be_hidden()
        assert dialogs == [] and not page.errors
    finally:
        _delete_issue(map_engine, issue_id)


def test_language_switch(page, live_server, demo, shot):
    open_map(page, live_server, f"?grid={demo['community']}")
    expect(page.locator("#hdr-title")).to_contain_text("网格化管理地图")
    page.locator("#app-lang label", has_text="English").click()
    expect(page.locator("#hdr-title")).to_contain_text("Grid management map")
    page.wait_for_function("document.querySelectorAll('path.gw-grid-l2').length === 14")
    expect(page.locator(".gw-kpi-total .gw-kpi-label")).to_have_text("Issues", use_inner_text=True)
    expect(page.locator(".leaflet-control-layers")).to_contain_text("Heat map")
    expect(page.locator("#map-breadcrumb")).to_contain_text("›")
    assert page.url.endswith(f"?grid={demo['community']}")  # the selection survives
    wait_settled(page, 800)
    shot(page, "08-english")
    # remembered on reload
    page.reload()
    expect(page.locator("#hdr-title")).to_contain_text("Grid management map")
    page.locator("#app-lang label", has_text="中文").click()
    expect(page.locator("#hdr-title")).to_contain_text("网格化管理地图")
    assert not page.errors


HEAT_TILES = "img.leaflet-tile[src*='/tiles/heat/']"


def test_language_switch_keeps_the_layers(page, live_server, shot):
    open_map(page, live_server)
    wait_settled(page)
    control = page.locator(".leaflet-control-layers")
    page.locator(".leaflet-control-layers label", has_text="热力图").click()
    page.locator(".leaflet-control-layers label", has_text="分级设色").click()
    page.locator("#map-f-kind label", has_text="问题").click()
    page.wait_for_function(f"[...document.querySelectorAll(\"{HEAT_TILES}\")]"
                           ".some(i => i.src.includes('k=problem'))")
    wait_settled(page, 500)
    page.locator("#app-lang label", has_text="English").click()
    expect(page.locator("#hdr-title")).to_contain_text("Grid management map")
    expect(control.locator("label", has_text="Heat map").locator("input")).to_be_checked()
    expect(control.locator("label", has_text="Choropleth").locator("input")).not_to_be_checked()
    expect(control.locator("label", has_text="Issue markers").locator("input")).to_be_checked()
    # the heat tiles are still drawn, for the same filter, and the legends follow
    page.wait_for_function(f"[...document.querySelectorAll(\"{HEAT_TILES}\")]"
                           ".some(i => i.complete && i.naturalWidth === 256 && i.src.includes('k=problem'))")
    expect(page.locator("#map-legend-heat")).to_be_visible()
    expect(page.locator("#map-legend-choro")).to_be_hidden()
    expect(page.locator("#map-legend-markers")).to_be_visible()
    wait_settled(page, 800)
    shot(page, "13-english-heat")
    # and back again
    page.locator("#app-lang label", has_text="中文").click()
    expect(page.locator("#hdr-title")).to_contain_text("网格化管理地图")
    expect(control.locator("label", has_text="热力图").locator("input")).to_be_checked()
    expect(control.locator("label", has_text="分级设色").locator("input")).not_to_be_checked()
    page.wait_for_function(f"document.querySelectorAll(\"{HEAT_TILES}\").length > 0")
    assert not page.errors


def test_live_refresh_shows_new_issue(page, live_server, demo, map_engine, shot):
    block = demo["blocks"][0]
    open_map(page, live_server, f"?grid={block}")
    wait_settled(page, 600)
    total = int(kpi(page, "total").replace(",", ""))
    title = "实时刷新测试：井盖缺失"
    issue_id = _insert_issue(map_engine, block, title)
    try:
        expect(page.locator(".ag-cell", has_text=title).first).to_be_visible(timeout=10000)
        expect(page.locator(".gw-kpi-total .gw-kpi-value")).to_have_text(f"{total + 1:,}")
        wait_settled(page, 300)
        shot(page, "09-live")
    finally:
        _delete_issue(map_engine, issue_id)
    expect(page.locator(".ag-cell", has_text=title)).to_have_count(0, timeout=10000)
    assert not page.errors


def _pick_search(page, text: str, value_code: str) -> None:
    page.locator("#map-search").click()
    page.get_by_role("searchbox").fill(text)
    option = page.get_by_role("option").filter(has_text=value_code).first
    expect(option).to_be_visible()
    option.click()


def _offset_from_map_centre(page, code: str) -> float:
    """Distance (px) between a grid polygon's centre on screen and the map's centre."""
    g, m = page.locator(f"path.gw-grid-{code}").bounding_box(), page.locator("#map-leaflet").bounding_box()
    return ((g["x"] + g["width"] / 2 - m["x"] - m["width"] / 2) ** 2
            + (g["y"] + g["height"] / 2 - m["y"] - m["height"] / 2) ** 2) ** 0.5


def test_search_flies_to_grid(page, live_server, demo, shot):
    open_map(page, live_server)
    wait_settled(page)
    _pick_search(page, demo["community_name"], demo["community"])
    page.wait_for_url(re.compile(rf"\?grid={demo['community']}$"))
    expect(page.locator("#map-grid-name")).to_have_text(demo["community_name"])
    # the picked result is cleared from the box (the placeholder shows again)
    expect(page.locator("#map-search .Select-value, #map-search [class*='singleValue']")).to_have_count(0)
    # from another grid, picking the same result again takes the map back to it
    other = demo["blocks"][0]
    page.wait_for_function(f"document.querySelectorAll('path.gw-grid-l3').length === {len(demo['blocks'])}")
    wait_settled(page, 500)
    click_grid(page, other)
    page.wait_for_url(re.compile(rf"\?grid={other}$"))
    wait_settled(page, 500)
    _pick_search(page, demo["community_name"], demo["community"])
    page.wait_for_url(re.compile(rf"\?grid={demo['community']}$"))
    expect(page.locator("#map-grid-name")).to_have_text(demo["community_name"])
    wait_settled(page, 800)
    assert _offset_from_map_centre(page, demo["community"]) < 40
    # pan away, then pick the same result again (the URL already shows it): the map flies back
    m = page.locator("#map-leaflet").bounding_box()
    page.mouse.move(m["x"] + m["width"] / 2, m["y"] + m["height"] / 2)
    page.mouse.down()
    page.mouse.move(m["x"] + m["width"] / 2 - 300, m["y"] + m["height"] / 2 - 200, steps=8)
    page.mouse.up()
    wait_settled(page, 500)
    assert _offset_from_map_centre(page, demo["community"]) > 200
    _pick_search(page, demo["community_name"], demo["community"])
    page.wait_for_function(
        "(() => { const g = document.querySelector('path.gw-grid-" + demo["community"] + "')"
        ".getBoundingClientRect(), m = document.querySelector('#map-leaflet').getBoundingClientRect();"
        " return Math.hypot(g.x + g.width / 2 - m.x - m.width / 2,"
        " g.y + g.height / 2 - m.y - m.height / 2) < 40; })()")
    wait_settled(page, 600)
    shot(page, "12-search-again")
    assert not page.errors


def test_wall_display_and_phone_layouts(browser, live_server, map_engine, shot):
    for name, size, mobile in (("10-wall-1920", (1920, 1080), False), ("11-phone-390", (390, 844), True)):
        ctx = browser.new_context(viewport={"width": size[0], "height": size[1]}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", is_mobile=mobile, has_touch=mobile)
        # the wall: a display screen's account (the map, never phones); the phone: the command centre
        sign_in_context(ctx, live_server.url, map_engine, "operator" if mobile else "display")
        watch_csp(ctx)
        pg = ctx.new_page()
        pg.set_default_timeout(15000)
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        violations = csp_violations(pg)
        csp_safe_waits(pg)
        try:
            open_map(pg, live_server)
            wait_settled(pg, 600)
            box = lambda sel: pg.locator(sel).first.bounding_box()
            if not mobile:
                # a wall display: one screen, nothing to scroll; the map fills it to the bottom
                assert pg.evaluate("document.documentElement.scrollHeight") <= size[1]
                assert abs(box("#map-leaflet")["y"] + box("#map-leaflet")["height"] - size[1]) < 2
            else:
                # a phone: the language switch leaves the title readable, the map comes before filters
                lang, title = box("#app-lang"), box("#hdr-title")
                assert lang["y"] + lang["height"] <= title["y"]
                assert box("#map-leaflet")["y"] < box(".gw-filters")["y"]
                assert box("#map-leaflet")["height"] >= 300
                assert pg.evaluate("document.documentElement.scrollWidth") <= size[0]
            shot(pg, name)
            assert not errors and not violations, (errors, violations)
        finally:
            ctx.close()


def test_language_switch_during_the_fly_to(page, live_server, demo):
    """Switching language rebuilds the map; doing it while the map is still flying to the selected
    grid (and clusters animate) must not throw (Leaflet's "_leaflet_pos" race)."""
    for _ in range(3):
        open_map(page, live_server, f"?grid={demo['community']}")
        page.locator("#app-lang label", has_text="English").click()
        expect(page.locator("#hdr-title")).to_contain_text("Grid management map")
        page.locator("#app-lang label", has_text="中文").click()
        expect(page.locator("#hdr-title")).to_contain_text("网格化管理地图")
        page.wait_for_function("document.querySelectorAll('path.gw-grid-l2').length === 14")
        wait_settled(page, 800)
    assert not page.errors
