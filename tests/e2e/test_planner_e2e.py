"""The planners' boundary editor (/planner) in a real browser: a shared vertex between two blocks
dragged with the mouse moves both outlines, the server's validation is clean, the impact lists the
issue that changes grid, Save applies one change set (in the history, on the map, the issue
re-assigned); a drag that makes an overlap shows the problem on the map and disables Save; a
non-planner is refused. The saved change set is reverted afterwards (the demo is shared)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from geodata.access.scope import Scope
from geodata.db import open_session
from geodata.grids import changesets
from tests.e2e.conftest import csp_safe_waits, csp_violations, sign_in_context, watch_csp

pytestmark = pytest.mark.e2e


@pytest.fixture
def planner_page(browser, live_server, map_engine):
    contexts = []

    def _open(role: str = "planner"):
        context = browser.new_context(viewport={"width": 1500, "height": 1000}, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
        contexts.append(context)
        sign_in_context(context, live_server.url, map_engine, role=role)
        watch_csp(context)
        pg = context.new_page()
        pg.set_default_timeout(15000)
        pg.csp_violations = csp_violations(pg)  # type: ignore[attr-defined]
        pg.errors = []  # type: ignore[attr-defined]
        pg.on("pageerror", lambda e: pg.errors.append(str(e)))
        csp_safe_waits(pg)
        return pg

    yield _open
    for c in contexts:
        assert not c.pages or not c.pages[0].csp_violations, c.pages[0].csp_violations
        assert not c.pages or not c.pages[0].errors, c.pages[0].errors
        c.close()


def settle(pg) -> None:
    pg.wait_for_function("!document.querySelector('[data-dash-is-loading=\"true\"]')"
                         " && !document.querySelector('.leaflet-zoom-anim')")
    pg.wait_for_timeout(500)


def open_planner(pg, url: str) -> None:
    pg.goto(url + "/planner")
    pg.wait_for_function("document.querySelectorAll('path.gw-pl-grid').length > 20")
    settle(pg)


#: in the page: an edge shared by exactly two blocks (on no community or street outline), in view:
#: its vertex ids, the two codes, its midpoint in map pixels
FIND = """() => {
  const P = window.gridwatch.planner, T = P.ui.T, m = window.gridwatch.plannerMap;
  const px = c => { const p = m.latLngToContainerPoint([c[1], c[0]]); return [p.x, p.y]; };
  const size = m.getSize(), count = {};
  for (const code of Object.keys(T.grids)) {
    for (const e of P.topo.edges(T, code)) {
      const k = Math.min(e[0], e[1]) + '-' + Math.max(e[0], e[1]);
      (count[k] = count[k] || []).push(code);
    }
  }
  for (const code of Object.keys(T.grids).sort()) {
    if (T.grids[code].props.level !== 3) continue;
    for (const e of P.topo.edges(T, code)) {
      const k = Math.min(e[0], e[1]) + '-' + Math.max(e[0], e[1]);
      const gs = count[k];
      if (gs.length !== 2 || !gs.every(c => T.grids[c].props.level === 3)) continue;
      const a = px(T.verts[e[0]]), b = px(T.verts[e[1]]);
      const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
      if (Math.hypot(a[0] - b[0], a[1] - b[1]) < 60) continue;
      if (mid[0] < 80 || mid[1] < 80 || mid[0] > size.x - 80 || mid[1] > size.y - 80) continue;
      const lonlat = [(T.verts[e[0]][0] + T.verts[e[1]][0]) / 2, (T.verts[e[0]][1] + T.verts[e[1]][1]) / 2];
      return {edge: e[0] + '-' + e[1], a: code, b: gs[0] === code ? gs[1] : gs[0], at: mid, lonlat: lonlat};
    }
  }
  return null;
}"""


def new_vertex_on_edge(pg, found) -> int:
    """Click the edge's midpoint handle: a vertex both blocks share; its id."""
    pg.locator(f".gw-pl-mid[data-edge='{found['edge']}']").click()
    settle(pg)
    return pg.evaluate("() => window.gridwatch.planner.ui.T.next - 1")


def block_points(map_engine, codes):
    """A point inside each block (lon, lat), and a block elsewhere with its inner point."""
    with map_engine.connect() as c:
        rows = c.execute(text("SELECT code, ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT code, ST_PointOnSurface(geom) p "
                              "FROM grid WHERE level = 3 AND valid_to IS NULL) q")).all()
    return {r.code: (r.x, r.y) for r in rows}


def to_px(pg, lonlat):
    return pg.evaluate("c => { const p = window.gridwatch.plannerMap.latLngToContainerPoint([c[1], c[0]]);"
                       " return [p.x, p.y]; }", list(lonlat))


def to_lonlat(pg, xy):
    return pg.evaluate("p => { const l = window.gridwatch.plannerMap.containerPointToLatLng(p);"
                       " return [l.lng, l.lat]; }", list(xy))


def map_box(pg):
    return pg.locator("#planner-map").bounding_box()


def select_block(pg, lonlat):
    box = map_box(pg)
    x, y = to_px(pg, lonlat)
    pg.mouse.click(box["x"] + x, box["y"] + y)
    settle(pg)


def drag(pg, vertex: int, to_xy) -> None:
    """A real mouse drag of the vertex handle to ``to_xy`` (map pixels), in steps."""
    handle = pg.locator(f".gw-pl-vertex[data-vertex='{vertex}']")
    expect(handle).to_be_visible()
    hb = handle.bounding_box()
    box = map_box(pg)
    pg.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    pg.mouse.down()
    pg.mouse.move(box["x"] + to_xy[0], box["y"] + to_xy[1], steps=12)
    pg.mouse.up()
    settle(pg)


def toward(pg, found, lonlat, px: float):
    """The map pixel ``px`` from the found edge's midpoint toward ``lonlat``."""
    tx, ty = to_px(pg, lonlat)
    vx, vy = found["at"]
    d = ((tx - vx) ** 2 + (ty - vy) ** 2) ** 0.5
    return vx + (tx - vx) * px / d, vy + (ty - vy) * px / d


def push_boundary(pg, found, inner, into: str, px: float = 15) -> None:
    """Select the found edge's first block, put a vertex on the edge, drag it ``px`` into ``into``."""
    select_block(pg, inner[found["a"]])
    vertex = new_vertex_on_edge(pg, found)
    drag(pg, vertex, toward(pg, found, inner[into], px))
    expect(pg.locator(".gw-pl-valid")).to_be_visible()


def outline(pg, code: str) -> str:
    return pg.locator(f"path.gw-pl-grid-{code}").first.get_attribute("d")


def test_a_drag_that_overlaps_a_third_block_is_shown_and_cannot_be_saved(planner_page, live_server, map_engine, shot):
    pg = planner_page()
    open_planner(pg, live_server.url)
    found = pg.evaluate(FIND)
    assert found, "no interior vertex shared by two blocks in view"
    inner = block_points(map_engine, None)
    select_block(pg, inner[found["a"]])
    # the third block nearest to the vertex, neither of the two: the vertex dragged into it
    others = sorted((c for c in inner if c not in (found["a"], found["b"])),
                    key=lambda c: (inner[c][0] - found["lonlat"][0]) ** 2 + (inner[c][1] - found["lonlat"][1]) ** 2)
    target = to_px(pg, inner[others[0]])
    vertex = new_vertex_on_edge(pg, found)
    assert pg.evaluate(f"() => window.gridwatch.planner.topo.gridsWith(window.gridwatch.planner.ui.T, {vertex})") \
        == sorted([found["a"], found["b"]])
    drag(pg, vertex, target)
    expect(pg.locator(".gw-pl-problem").first).to_be_visible()
    problems = pg.locator(".gw-pl-problems").inner_text()
    assert found["a"] in problems or found["b"] in problems or others[0] in problems, problems
    expect(pg.locator("path.gw-pl-problem").first).to_be_attached()   # where it is, on the map (red)
    expect(pg.locator("#planner-save")).to_be_disabled()
    shot(pg, "60-planner-overlap")


def test_drag_a_shared_vertex_preview_save_history(planner_page, live_server, map_engine, shot):
    pg = planner_page()
    open_planner(pg, live_server.url)
    pg.fill("#planner-snap", "1")   # no snapping to a neighbour: the vertex goes where it is dragged
    settle(pg)
    found = pg.evaluate(FIND)
    assert found
    a, b = found["a"], found["b"]
    inner = block_points(map_engine, None)
    select_block(pg, inner[a])
    vertex = new_vertex_on_edge(pg, found)
    before_a, before_b = outline(pg, a), outline(pg, b)
    # 18 px toward the inside of b: a gains a sliver of b
    vx, vy = found["at"]
    to = toward(pg, found, inner[b], 18)
    # an open issue in b, just where a will take over
    spot = to_lonlat(pg, (vx + (to[0] - vx) * 0.6, vy + (to[1] - vy) * 0.6))
    number = "E2EPL" + found["edge"].replace("-", "")[:10]
    with map_engine.begin() as c:
        community = c.execute(text("SELECT parent_code FROM grid WHERE code = :b AND valid_to IS NULL"), {"b": b}).scalar_one()
        issue_id = c.execute(text(
            "INSERT INTO issue (number, kind, domain_code, title, description, source, location, grid_code, "
            "community_code, status, reported_at, updated_at, synthetic) SELECT :n, 'problem', "
            "(SELECT code FROM domain ORDER BY code LIMIT 1), 'e2e 边界调整', '', 'patrol', "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4326), :b, :c, 'reported', now(), now(), true RETURNING id"),
            {"n": number, "x": spot[0], "y": spot[1], "b": b, "c": community}).scalar_one()
    cs_id = None
    try:
        drag(pg, vertex, to)
        # both neighbours' outlines moved (one shared vertex)
        assert outline(pg, a) != before_a and outline(pg, b) != before_b
        expect(pg.locator(".gw-pl-valid")).to_be_visible()
        expect(pg.locator("#planner-save")).to_be_enabled()
        expect(pg.locator(".gw-pl-impact-summary")).to_contain_text("未办结问题 1 件")
        expect(pg.locator(".gw-pl-impact .ag-center-cols-container")).to_contain_text(number)
        shot(pg, "61-planner-preview")
        pg.fill("#planner-reason", "e2e: 两个网格之间的边界调整")
        pg.click("#planner-save")
        expect(pg.locator("#planner-saved")).to_contain_text("已保存变更集", timeout=30000)
        cs_id = int(re.search(r"#(\d+)", pg.locator("#planner-saved").inner_text()).group(1))
        settle(pg)
        # the history lists it; the map reflects it (reloaded grids, nothing pending)
        expect(pg.locator("#planner-history .ag-center-cols-container")).to_contain_text("e2e: 两个网格之间的边界调整")
        assert pg.locator("path.gw-pl-dirty").count() == 0
        after_a = outline(pg, a)
        assert after_a != before_a
        with open_session(map_engine, scope=Scope.everything()) as s:
            listed = [c["id"] for c in changesets.change_sets(s, a)]
            assert cs_id in listed
            moved = s.execute(text("SELECT grid_code FROM issue WHERE id = :i"), {"i": issue_id}).scalar_one()
            assert moved == a    # re-assigned by location
            covers = s.execute(text("SELECT ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) FROM grid "
                                    "WHERE code = :a AND valid_to IS NULL"), {"x": spot[0], "y": spot[1], "a": a}).scalar_one()
            assert covers
        shot(pg, "62-planner-saved")
    finally:
        with open_session(map_engine, scope=Scope.everything()) as s, s.begin():
            if cs_id is not None:
                changesets.revert(s, cs_id, changesets.Author(None, "e2e teardown"))
            s.execute(text("DELETE FROM issue WHERE id = :i"), {"i": issue_id})


def test_a_non_planner_is_refused(planner_page, live_server):
    pg = planner_page(role="operator")
    resp = pg.goto(live_server.url + "/planner")
    assert resp.status == 403
    expect(pg.locator("body")).to_contain_text("该账号无权打开此页面")
    assert pg.locator("#planner-map").count() == 0


# -- split, merge, two planners, the as-of view ------------------------------------------------------------
def grid_row(map_engine, code: str):
    with map_engine.connect() as c:
        return c.execute(text(
            "SELECT code, parent_code, ST_Area(geom::geography) AS area, ST_XMin(geom) AS x0, ST_XMax(geom) AS x1, "
            "ST_X(ST_PointOnSurface(geom)) AS px, ST_Y(ST_PointOnSurface(geom)) AS py FROM grid "
            "WHERE code = :c AND valid_to IS NULL"), {"c": code}).one_or_none()


def current_blocks(map_engine) -> dict[str, str]:
    with map_engine.connect() as c:
        return dict(c.execute(text("SELECT code, parent_code FROM grid WHERE level = 3 AND valid_to IS NULL")).all())


def change_set_count(map_engine) -> int:
    with map_engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM grid_change_set")).scalar_one()


def save(pg, reason: str) -> int:
    expect(pg.locator("#planner-save")).to_be_enabled()
    pg.fill("#planner-reason", reason)
    pg.click("#planner-save")
    expect(pg.locator("#planner-saved")).to_contain_text("已保存变更集", timeout=30000)
    settle(pg)
    return int(re.search(r"#(\d+)", pg.locator("#planner-saved").inner_text()).group(1))


def revert_all(map_engine, ids_: list[int]) -> None:
    with open_session(map_engine, scope=Scope.everything()) as s, s.begin():
        for cs_id in reversed(ids_):
            changesets.revert(s, cs_id, changesets.Author(None, "e2e teardown"))


def pick_day(pg, selector: str, day) -> None:
    """Type a day into Dash's date picker (its display format, YYYY-MM-DD) and leave it."""
    pg.fill(selector, day.isoformat())
    pg.keyboard.press("Enter")
    pg.keyboard.press("Escape")
    settle(pg)


def test_split_by_a_drawn_line_and_the_as_of_view(planner_page, live_server, map_engine, shot):
    """A block cut by a line drawn across it on the map: two pieces, the larger keeps the code, the
    other a new code under the same community, areas adding up; the as-of view of yesterday shows
    the 59 blocks before the cut, today's the 60 after."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    pg = planner_page()
    open_planner(pg, live_server.url)
    found = pg.evaluate(FIND)
    g = grid_row(map_engine, found["a"])
    before = current_blocks(map_engine)
    select_block(pg, (g.px, g.py))
    pg.check("#planner-draw")
    settle(pg)
    w = g.x1 - g.x0
    box = map_box(pg)
    for lon in (g.x0 - 0.15 * w, g.x1 + 0.15 * w):
        x, y = to_px(pg, (lon, g.py))
        pg.mouse.click(box["x"] + x, box["y"] + y)
    settle(pg)
    pg.click("#planner-op-split")
    expect(pg.locator(".gw-pl-valid")).to_be_visible()
    expect(pg.locator(".gw-pl-impact .ag-center-cols-container")).to_contain_text(found["a"])
    shot(pg, "63-planner-split-preview")
    saved: list[int] = []
    try:
        saved.append(save(pg, "e2e: 按道路分割楼院网格"))
        after = current_blocks(map_engine)
        new = sorted(set(after) - set(before))
        assert len(new) == 1 and set(before) <= set(after), new
        assert after[new[0]] == g.parent_code
        kept, cut = grid_row(map_engine, found["a"]), grid_row(map_engine, new[0])
        assert kept.area >= cut.area > 0
        assert kept.area + cut.area == pytest.approx(g.area, rel=1e-6)
        expect(pg.locator(f"path.gw-pl-grid-{new[0]}")).to_have_count(1)
        # the as-of view: yesterday (business day) the 59 blocks, today the 60
        today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
        pick_day(pg, "#planner-asof-day", today - dt.timedelta(days=1))
        pg.wait_for_function("() => document.querySelectorAll('path.gw-pl-asof').length === 59")
        shot(pg, "64-planner-as-of-yesterday")
        pick_day(pg, "#planner-asof-day", today)
        pg.wait_for_function("() => document.querySelectorAll('path.gw-pl-asof').length === 60")
    finally:
        revert_all(map_engine, saved)
    assert current_blocks(map_engine).keys() - before.keys() == set()


def adjacent_siblings(map_engine) -> tuple[str, str]:
    """Two current blocks of one community sharing more than 50 m of boundary."""
    with map_engine.connect() as c:
        return tuple(c.execute(text(
            "SELECT a.code, b.code FROM grid a JOIN grid b ON a.parent_code = b.parent_code AND a.code < b.code "
            "WHERE a.level = 3 AND b.level = 3 AND a.valid_to IS NULL AND b.valid_to IS NULL "
            "AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))::geography) > 50 "
            "ORDER BY a.code, b.code LIMIT 1")).one())


def test_merge_two_neighbours(planner_page, live_server, map_engine, shot):
    """Two blocks of one community picked (the second with Shift) and merged: one block with both
    areas, the other code retired; the impact lists the retired code."""
    a, b = adjacent_siblings(map_engine)
    ga, gb = grid_row(map_engine, a), grid_row(map_engine, b)
    pg = planner_page()
    open_planner(pg, live_server.url)
    select_block(pg, (ga.px, ga.py))
    box = map_box(pg)
    x, y = to_px(pg, (gb.px, gb.py))
    pg.keyboard.down("Shift")
    pg.mouse.click(box["x"] + x, box["y"] + y)
    pg.keyboard.up("Shift")
    settle(pg)
    assert pg.evaluate("() => window.gridwatch.planner.ui.selected.slice().sort()") == [a, b]
    pg.click("#planner-op-merge")
    expect(pg.locator(".gw-pl-valid")).to_be_visible()
    impact = pg.locator(".gw-pl-impact .ag-center-cols-container")
    expect(impact).to_contain_text(a)
    expect(impact).to_contain_text(b)
    shot(pg, "65-planner-merge-preview")
    saved: list[int] = []
    try:
        saved.append(save(pg, "e2e: 合并相邻楼院网格"))
        kept = [r for r in (grid_row(map_engine, a), grid_row(map_engine, b)) if r is not None]
        assert len(kept) == 1
        assert kept[0].area == pytest.approx(ga.area + gb.area, rel=1e-6)
        expect(pg.locator("path.gw-pl-grid").filter(has=pg.locator(f"xpath=self::*[contains(@class, "
                                                                    f"'gw-pl-grid-{({a, b} - {kept[0].code}).pop()}')]")
                                                    )).to_have_count(0)
    finally:
        revert_all(map_engine, saved)
    assert grid_row(map_engine, a) is not None and grid_row(map_engine, b) is not None


def test_two_planners_on_one_boundary(planner_page, live_server, map_engine, shot):
    """Two planners edit the same shared vertex; the first saves; the second's save is refused,
    saying which grids changed and by which change set; nothing of the second is written."""
    pages = [planner_page(), planner_page()]
    for pg in pages:
        open_planner(pg, live_server.url)
        pg.fill("#planner-snap", "1")
        settle(pg)
    found = pages[0].evaluate(FIND)
    inner = block_points(map_engine, None)
    for pg, into in zip(pages, (found["b"], found["a"])):   # each pushes the boundary the other way
        push_boundary(pg, found, inner, into)
    saved: list[int] = []
    try:
        saved.append(save(pages[0], "e2e: 第一位规划员"))
        n = change_set_count(map_engine)
        second = pages[1]
        expect(second.locator("#planner-save")).to_be_enabled()
        second.fill("#planner-reason", "e2e: 第二位规划员")
        second.click("#planner-save")
        msg = second.locator("#planner-saved")
        expect(msg).to_contain_text("已被修改", timeout=30000)
        expect(msg).to_contain_text(f"#{saved[0]}")
        assert found["a"] in msg.inner_text() or found["b"] in msg.inner_text()
        assert change_set_count(map_engine) == n
        shot(second, "66-planner-second-refused")
    finally:
        revert_all(map_engine, saved)


def upload(pg, name: str, body: bytes) -> None:
    pg.set_input_files("#planner-upload input[type=file]",
                       files=[{"name": name, "mimeType": "application/geo+json", "buffer": body}])


def test_a_file_from_qgis_as_a_proposal_then_applied(planner_page, live_server, map_engine, shot):
    """A GeoJSON dropped on the page (as QGIS exports it): with problems, they are listed and drawn
    where they are and nothing is saved; a good one is saved as a proposal whose impact shows,
    then applied as one change set."""
    import json

    a, _ = adjacent_siblings(map_engine)
    with map_engine.connect() as c:
        name, geom = c.execute(text("SELECT name, ST_AsGeoJSON(geom) FROM grid WHERE code = :a AND valid_to IS NULL"),
                               {"a": a}).one()
        bad_geom = c.execute(text("SELECT ST_AsGeoJSON(ST_Translate(geom, 0.0004, 0)) FROM grid "
                                  "WHERE code = :a AND valid_to IS NULL"), {"a": a}).scalar_one()
        proposals = c.execute(text("SELECT count(*) FROM grid_proposal")).scalar_one()

    def fc(geometry: str, label: str) -> bytes:
        return json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": json.loads(geometry),
                           "properties": {"code": a, "name": label}}]}, ensure_ascii=False).encode()

    pg = planner_page()
    open_planner(pg, live_server.url)
    upload(pg, "blocks.geojson", fc(geom, name))
    expect(pg.locator("#planner-upload-result")).to_contain_text("调整原因")   # the reason first
    pg.fill("#planner-reason", "e2e: 从 QGIS 导入")
    # moved sideways: overlaps its neighbour and leaves a gap — listed, drawn, nothing saved
    upload(pg, "moved.geojson", fc(bad_geom, name))
    expect(pg.locator("#planner-upload-result")).to_contain_text("“moved.geojson”有")
    expect(pg.locator(".gw-pl-problems .gw-pl-problem").first).to_be_visible()
    assert a in pg.locator(".gw-pl-problems").inner_text()
    # the gap it leaves and the overlap it makes, each said (naming the grids) and drawn
    kinds = set(pg.locator(".gw-pl-problems .gw-pl-problem").evaluate_all("els => els.map(e => e.dataset.kind)"))
    assert {"gap", "overlap"} <= kinds, kinds
    expect(pg.locator("path.gw-pl-problem").first).to_be_attached()
    expect(pg.locator("#planner-apply-proposal")).to_be_disabled()
    with map_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM grid_proposal")).scalar_one() == proposals
    shot(pg, "67-planner-import-problems")
    # renamed, same boundary: a proposal with its impact, then applied
    upload(pg, "renamed.geojson", fc(geom, name + "（e2e）"))
    expect(pg.locator("#planner-upload-result .gw-pl-imported")).to_contain_text("已保存为方案")
    expect(pg.locator(".gw-pl-valid")).to_be_visible()
    expect(pg.locator(".gw-pl-impact .ag-center-cols-container")).to_contain_text(a)
    expect(pg.locator("#planner-apply-proposal")).to_be_enabled()
    shot(pg, "68-planner-import-proposal")
    saved: list[int] = []
    try:
        pg.click("#planner-apply-proposal")
        expect(pg.locator("#planner-saved")).to_contain_text("已保存变更集", timeout=30000)
        saved.append(int(re.search(r"#(\d+)", pg.locator("#planner-saved").inner_text()).group(1)))
        expect(pg.locator("#planner-apply-proposal")).to_be_disabled()
        expect(pg.locator("#planner-history .ag-center-cols-container")).to_contain_text("e2e: 从 QGIS 导入")
        with map_engine.connect() as c:
            assert c.execute(text("SELECT name FROM grid WHERE code = :a AND valid_to IS NULL"), {"a": a}
                             ).scalar_one() == name + "（e2e）"
    finally:
        revert_all(map_engine, saved)


def test_a_draft_saved_reopened_exported_and_applied(planner_page, live_server, map_engine, shot):
    """An edit saved as a draft is not in effect; after a reload it is opened from the list (its
    impact shown), exported as GeoJSON for QGIS, and applied as one change set."""
    import json

    pg = planner_page()
    open_planner(pg, live_server.url)
    pg.fill("#planner-snap", "1")
    settle(pg)
    found = pg.evaluate(FIND)
    a, b = found["a"], found["b"]
    push_boundary(pg, found, block_points(map_engine, None), b)
    before = grid_row(map_engine, a).area
    pg.fill("#planner-reason", "e2e: 草案，待审定")
    pg.click("#planner-save-draft")
    expect(pg.locator("#planner-upload-result")).to_contain_text("已保存为草案方案 #")
    pid = int(pg.locator("#planner-upload-result [data-proposal]").get_attribute("data-proposal"))
    assert grid_row(map_engine, a).area == before   # a draft is not in effect
    saved: list[int] = []
    try:
        open_planner(pg, live_server.url)   # a new visit: the draft is in the list
        pg.locator("#planner-proposals").click()
        pg.get_by_role("option", name=re.compile(f"^#{pid} ")).click()
        expect(pg.locator("#planner-upload-result")).to_contain_text(f"方案 #{pid}")
        expect(pg.locator(".gw-pl-valid")).to_be_visible()
        expect(pg.locator(".gw-pl-impact .ag-center-cols-container")).to_contain_text(a)
        with pg.expect_download() as dl:
            pg.click("#planner-export-proposal")
        from pathlib import Path

        fc = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
        assert dl.value.suggested_filename == f"proposal-{pid}.geojson"
        assert {f["properties"]["code"] for f in fc["features"]} == {a, b}
        shot(pg, "69-planner-draft-opened")
        pg.click("#planner-apply-proposal")
        expect(pg.locator("#planner-saved")).to_contain_text("已保存变更集", timeout=30000)
        saved.append(int(re.search(r"#(\d+)", pg.locator("#planner-saved").inner_text()).group(1)))
        assert grid_row(map_engine, a).area != before
    finally:
        revert_all(map_engine, saved)
        with map_engine.begin() as c:
            c.execute(text("UPDATE grid_proposal SET status = 'discarded' WHERE id = :p AND status = 'draft'"),
                      {"p": pid})


def test_the_planner_in_english_and_its_widgets(planner_page, live_server, map_engine, shot):
    """The language switch reloads the planner in English — its tables' and pickers' own texts too
    — unless an edit is in progress, which it would lose."""
    pg = planner_page()
    open_planner(pg, live_server.url)
    expect(pg.locator(".gw-pl-impact .ag-overlay")).to_contain_text("暂无数据")
    # an edit in progress: the switch is refused, saying why
    found = pg.evaluate(FIND)
    select_block(pg, block_points(map_engine, None)[found["a"]])
    new_vertex_on_edge(pg, found)
    pg.locator("#app-lang label").filter(has_text="English").click()
    expect(pg.locator("#planner-lang-note")).to_contain_text("未保存的修改")
    expect(pg.locator("h1")).to_have_text("网格边界规划")
    pg.click("#planner-reset")
    pg.goto(live_server.url + "/planner")   # the JS edit is the page's: a fresh page has none
    pg.wait_for_function("document.querySelectorAll('path.gw-pl-grid').length > 20")
    pg.locator("#app-lang label").filter(has_text="English").click()
    expect(pg.locator("h1")).not_to_have_text("网格边界规划", timeout=15000)
    pg.wait_for_function("document.querySelectorAll('path.gw-pl-grid').length > 20")
    expect(pg.locator("#planner-save")).to_have_text("Save")
    expect(pg.locator(".gw-pl-impact .ag-overlay")).to_contain_text("No rows")
    pg.locator("#planner-asof-day").scroll_into_view_if_needed()
    pg.locator("#planner-asof-day").click()
    pg.wait_for_timeout(400)
    assert re.search(r"January|February|March|April|May|June|July|August|September|October|November|December",
                     pg.locator("body").inner_text())
    shot(pg, "70-planner-en")
