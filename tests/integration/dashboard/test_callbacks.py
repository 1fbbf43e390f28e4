"""Callback logic without a browser: the pure shaping helpers, and the callback bodies on the demo
database (they only go through geodata.mapdata)."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

import plotly
import pytest
from dash import no_update
from sqlalchemy import text as sql

from dashboard import i18n
from dashboard.components import ids as app_ids
from dashboard.components import outbox
from dashboard.context import Context, Viewer
from dashboard.pages.map import callbacks as cb
from dashboard.pages.map import ids, layout
from dashboard.pages.map import presenters as pr
from dashboard.services import Services
from dashboard.tiles import HEAT_STOPS
from geodata.access.scope import Scope
from geodata.maps import heat as map_heat
from geodata.maps import layers as map_layers
from geodata.maps import live as map_live
from geodata.maps import metrics as map_metrics
from geodata.maps import search as map_search
from geodata.settings import Settings
from geodata.workflow import notices, queries
from geodata.workflow.filters import IssueFilter
from tests.conftest import DEMO_END
from tests.world import TZ, sign_in_every_client

ALL = Scope.everything(personal_data=True)
TEST_VIEWER = Viewer(key="test")   # the callbacks are given a context; who it is does not matter here
PUBLIC_PHONES = Scope.everything(personal_data=False)


def at(lang: str, scope: Scope = ALL) -> Context:
    """A request's context: the one viewer, ``scope``, ``lang``, the demo's business time zone."""
    return Context(viewer=TEST_VIEWER, scope=scope, lang=lang, tz=TZ)


def _text(component) -> str:
    """All the text in a Dash component tree."""
    return json.dumps(component, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)


# -- pure helpers --------------------------------------------------------------------------------
def test_url_state_roundtrip():
    assert pr.parse_query("?grid=41010200100100") == ("41010200100100", None)
    assert pr.parse_query("?grid=41010200100101&issue=42") == ("41010200100101", 42)
    assert pr.parse_query("") == (None, None)
    assert pr.parse_query("?grid=<script>&issue=x") == (None, None)
    # issue.id is BIGINT: an id beyond it, or digits that are not ASCII, are junk like any other
    assert pr.parse_query(f"?issue={2**63 - 1}") == (None, 2**63 - 1)
    assert pr.parse_query(f"?issue={2**63}") == pr.parse_query("?issue=²") == (None, None)
    assert pr.url_search("41010200100101", 42) == "?grid=41010200100101&issue=42"
    assert pr.url_search(None) == ""
    assert pr.parse_query(pr.url_search("41010200100100")) == ("41010200100100", None)


def test_filter_from_controls():
    d = pr.filter_from_controls("problem", ["safety"], ["closed", "bogus"], "week", True, "per_km2")
    f = IssueFilter.from_dict(d)
    assert f == IssueFilter(kind="problem", domains=("safety",), statuses=("closed",), preset="week",
                            overdue=True)
    assert pr.metric_of(d) == "per_km2"
    empty = pr.filter_from_controls("", [], None, "", False, "nonsense")
    assert IssueFilter.from_dict(empty) == IssueFilter() and pr.metric_of(empty) == pr.DEFAULT_METRIC


def test_custom_date_range():
    d = pr.filter_from_controls("", [], [], "custom", False, "open", "2026-03-01", "2026-02-01T00:00:00")
    f = IssueFilter.from_dict(d)
    assert (f.preset, f.date_from, f.date_to) == (None, dt.date(2026, 2, 1), dt.date(2026, 3, 1))
    # the dates only apply to the custom period; a preset wins otherwise
    g = IssueFilter.from_dict(pr.filter_from_controls("", [], [], "month", False, "open",
                                                      "2026-03-01", "2026-04-01"))
    assert (g.preset, g.date_from, g.date_to) == ("month", None, None)
    h = IssueFilter.from_dict(pr.filter_from_controls("", [], [], "custom", False, "open", "junk", None))
    assert h == IssueFilter()


def test_basemap_choice():
    none = layout.basemap_layers(Settings(basemap_url="", basemap_path=None), "zh")
    assert none == []
    osm = layout.basemap_layers(Settings(basemap_url="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                                         basemap_attribution="© OpenStreetMap"), "zh")
    assert osm[0].url.startswith("https://tile.openstreetmap.org") and osm[0].attribution == "© OpenStreetMap"
    tdt = layout.basemap_layers(Settings(
        basemap_url="https://t{s}.tianditu.gov.cn/DataServer?T=vec_w&x={x}&y={y}&l={z}&tk=KEY"), "zh")
    assert tdt[0].subdomains == "01234567" and "天地图" in tdt[0].attribution
    local = layout.basemap_layers(Settings(basemap_url="", basemap_path="/srv/tiles"), "zh")
    assert local[0].url == "/tiles/base/{z}/{x}/{y}.png"


def test_class_breaks_and_legend():
    values = {str(i): float(i) for i in range(60)}
    breaks, colors = pr.class_breaks(values, "open")
    assert breaks == sorted(set(breaks)) and len(colors) == len(breaks) + 1
    assert all(b >= 1 for b in breaks)
    assert pr.class_breaks({"a": 0.0, "b": None}, "open") == ([], [pr.COUNT_COLORS[0]])
    rb, rc = pr.class_breaks({"a": 0.5}, "closure_rate")
    assert rb == pr.RATE_BREAKS and len(rc) == len(rb) + 1
    legend = pr.legend_children("closure_rate", rb, rc, "en", has_none=True)
    text = _text(legend)
    assert "Closure rate" in text and "No data" in text and "≥ 99%" in text
    zh = _text(pr.legend_children("open", breaks, colors, "zh", has_none=False))
    assert "未办结问题数" in zh


def test_selection_helpers():
    assert pr.outline_hideout({"code": "C", "level": 2, "parent": "S"}, "en") == {
        "lang": "en", "community": "C", "block": None}
    assert pr.outline_hideout({"code": "B", "level": 3, "parent": "C"}, "zh")["community"] == "C"
    assert pr.choro_target({"code": "S", "level": 1}) == (2, "S")
    assert pr.choro_target({"code": "C", "level": 2}) == (3, "C")
    assert pr.choro_target({"code": "B", "level": 3, "parent": "C"}) == (3, "C")
    vp = pr.viewport_for((113.6, 34.7, 113.7, 34.8))
    assert vp["bounds"] == [[34.7, 113.6], [34.8, 113.7]]
    assert pr.bbox_from_bounds([[34.7, 113.6], [34.8, 113.7]]) == (113.6, 34.7, 113.7, 34.8)
    crumbs = pr.breadcrumb_children([("S", "三官庙街道", "Sanguanmiao"), ("C", "社区", "Community")], "zh")
    text = _text(crumbs)
    assert "三官庙街道" in text and "›" in text and '"href": "/"' in text


def test_search_targets():
    hits = [map_search.SearchHit("grid", "东风 1", "Dongfeng 1", "41010200100100"),
            map_search.SearchHit("issue", "WT1 x", "WT1 x", "41010200100101", 7)]
    opts = pr.search_options(hits, "en")
    assert opts[0]["label"].startswith("Grid") and opts[1]["value"] == "issue:7:41010200100101"
    assert pr.search_target(opts[0]["value"]) == "?grid=41010200100100"
    assert pr.search_target(opts[1]["value"]) == "?grid=41010200100101&issue=7"
    assert pr.search_target("junk") is None and pr.search_target(None) is None


def test_heat_url_carries_filter_and_stamp():
    url = pr.heat_url(IssueFilter(kind="sentiment", overdue=True), "1|x")
    assert url.startswith("/tiles/heat/{z}/{x}/{y}.png?") and "k=sentiment" in url and "o=1" in url
    assert url != pr.heat_url(IssueFilter(kind="sentiment", overdue=True), "2|y")


def test_i18n_formats():
    t = dt.datetime(2026, 11, 27, 12, 5, tzinfo=dt.UTC)
    assert i18n.fmt_dt(t, "zh", TZ) == "2026年11月27日 20:05"
    assert i18n.fmt_dt(t, "en", TZ) == "27 Nov 2026 20:05"
    assert i18n.fmt_int(4348, "zh") == "4,348" and i18n.fmt_pct(0.9987, "en") == "99.9%"
    assert i18n.fmt_pct(None, "zh") == "—"
    assert i18n.fmt_area(0.25, "zh") == "0.25 平方公里" and i18n.fmt_area(0.25, "en") == "0.25 km²"
    assert i18n.status_label("closed", "en") == "Closed" and i18n.status_label("closed", "zh") == "已办结"
    assert i18n.norm_lang("fr") == "zh"
    assert set(i18n.js_labels("en", "Asia/Shanghai")["state"]) == {"o", "x", "c"}


def test_issue_rows_keep_titles_as_data():
    row = queries.IssueRow(1, "WT1", "problem", "safety", "<img src=x onerror=alert(1)>", "handling", True,
                      dt.datetime(2026, 11, 1, tzinfo=dt.UTC), None, None, "41010200100101")
    out = pr.issue_rows([row], "en", TZ, {"safety": ("安全生产", "Work safety")},
                        {"41010200100101": ("一网格", "Grid 1")})
    assert out[0]["title"] == "<img src=x onerror=alert(1)>"  # ag-grid renders it as text
    assert out[0]["domain"] == "Work safety" and out[0]["grid"] == "Grid 1"
    assert "overdue" in out[0]["status"] and out[0]["id"] == "1"


# -- callback bodies on the demo database -------------------------------------------------------
@pytest.fixture(scope="module")
def svc(demo_app_url):
    from sqlalchemy import create_engine

    settings = Settings(database_url=demo_app_url)
    engine = create_engine(demo_app_url)
    yield Services(engine=engine, settings=settings)
    engine.dispose()


def test_page_layout_builds_in_both_languages(svc):
    zh = _text(cb.page_layout(svc, at("zh")))
    en = _text(cb.page_layout(svc, at(None if False else "en")))
    assert "三官庙街道" in zh and "网格化管理地图" in zh and "问题标记" in zh
    assert "Grid management map" in en and "Issue markers" in en
    for cid in (ids.MAP, ids.L_COMMUNITY, ids.L_BLOCK, ids.L_MARKERS, ids.L_HEAT, ids.SEARCH,
                ids.ISSUES, ids.BREADCRUMB):
        assert f'"id": "{cid}"' in zh


def test_selection_and_panel_for_a_community(svc):
    with svc.session(at("zh")) as s:
        street = map_layers.street_code(s, ALL)
        community = map_layers.grid_layer(s, ALL, 2)["features"][0]["properties"]["code"]
    sel, viewport, crumbs, outline = cb.selection_outputs(svc, at("zh"), f"?grid={community}")
    assert sel["code"] == community and sel["level"] == 2 and sel["parent"] == street
    assert viewport["transition"] == "flyToBounds" and outline["community"] == community
    assert "三官庙街道" in _text(crumbs)
    panel, rows = cb.panel_outputs(svc, at("zh"), sel, None)
    text = _text(panel)
    assert community in text and "直接责任人" in text and "结案率" in text
    assert 0 < len(rows) <= 50 and all(r["id"].isdigit() for r in rows)
    # unknown grid → the street
    sel2, *_ = cb.selection_outputs(svc, at("en"), "?grid=41010299999900")
    assert sel2["code"] == street


def test_block_panel_shows_six_ones_chain(svc):
    with svc.session(at("zh")) as s:
        block = map_layers.grid_layer(s, ALL, 3)["features"][0]["properties"]["code"]
    sel, *_ = cb.selection_outputs(svc, at("en"), f"?grid={block}")
    panel, _ = cb.panel_outputs(svc, at("en"), sel, None)
    text = _text(panel)
    assert "Six-ones chain" in text and "Grid leader" in text and "Leader in charge" in text


def test_choropleth_markers_heat_agree_with_filter(svc):
    with svc.session(at("zh")) as s:
        street = map_layers.street_code(s, ALL)
        detail = map_layers.grid_detail(s, ALL, street)
    sel = {"code": street, "level": 1, "parent": None, "bbox": list(detail.bbox)}
    fd = pr.filter_from_controls("problem", [], [], "", False, "open")
    comm, block, legend = cb.choropleth_outputs(svc, at("en"), sel, fd)
    assert len(comm["values"]) == 14 and block["values"] == {}
    assert len(comm["colors"]) == len(comm["breaks"]) + 1
    with svc.session(at("zh")) as s:
        counts = map_metrics.grid_counts(s, ALL, IssueFilter.from_dict(fd), street, tz=TZ).counts
    assert sum(comm["values"].values()) == counts.open
    w, s_, e, n = detail.bbox
    bounds = [[s_, w], [n, e]]
    pts, bins, _note = cb.marker_outputs(svc, at("en"), bounds, fd, sel)
    assert (pts["features"] == []) != (bins["features"] == [])
    total = len(pts["features"]) or sum(f["properties"]["c"] for f in bins["features"])
    assert total == counts.total
    overdue = pr.filter_from_controls("problem", [], [], "", True, "open")
    pts2, bins2, _ = cb.marker_outputs(svc, at("en"), bounds, overdue, sel)
    total2 = len(pts2["features"]) or sum(f["properties"]["c"] for f in bins2["features"])
    assert total2 < total
    url, legend = cb.heat_outputs(svc, at("zh"), fd, "s")
    assert "k=problem" in url and "问题密度" in _text(legend)


def test_timeline_search_live(svc):
    with svc.session(at("zh")) as s:
        rows = queries.latest_issues(s, ALL, IssueFilter(), None, 1, tz=TZ)
    is_open, title, body = cb.timeline_outputs(svc, at("en"), rows[0].id)
    assert is_open and rows[0].number in title and "Timeline" in _text(body)
    assert cb.timeline_outputs(svc, at("en"), -1) == (False, "", [])
    opts = cb.search_outputs(svc, at("zh"), rows[0].number)
    assert opts and opts[0]["value"].startswith(f"issue:{rows[0].id}:")
    assert cb.search_outputs(svc, at("zh"), "") == []
    stamp, note, outage, body, version = cb.live_outputs(svc, at("en"), None)
    assert isinstance(stamp, str) and "● Live · updated" in _text(note)
    assert (outage, body, version) == (no_update, no_update, no_update)
    again, *_ = cb.live_outputs(svc, at("en"), stamp)
    assert again is no_update


def test_search_pick_clears_the_box_and_flies_again(svc):
    """A picked result is cleared from the search box, so the same result can be picked again;
    picking the place the URL already shows flies the map there again."""
    with svc.session(at("zh")) as s:
        community = map_layers.grid_layer(s, ALL, 2)["features"][0]["properties"]["code"]
    value = f"grid:{community}"
    url, box, viewport = cb.navigate_outputs(svc, at("zh"), ids.SEARCH, value, None, "")
    assert url == f"?grid={community}" and box is None and viewport is no_update
    # same result again (the box was cleared, so the dropdown fires): the map flies back there
    url, box, viewport = cb.navigate_outputs(svc, at("zh"), ids.SEARCH, value, None, url)
    assert url is no_update and box is None
    assert viewport == cb.selection_outputs(svc, at("zh"), f"?grid={community}")[1]
    assert viewport["transition"] == "flyToBounds"
    # clearing the box (our own None) does nothing
    assert cb.navigate_outputs(svc, at("zh"), ids.SEARCH, None, None, url) == (no_update,) * 3
    # a grid click navigates and leaves the search box alone
    click = {"properties": {"code": community}}
    assert cb.navigate_outputs(svc, at("zh"), ids.L_COMMUNITY, None, click, "") == (
        f"?grid={community}", no_update, no_update)
    # the grid shown already (clicked again after panning away): the map flies back to it
    assert cb.navigate_outputs(svc, at("zh"), ids.L_COMMUNITY, None, click, f"?grid={community}") == (
        no_update, no_update, cb.selection_outputs(svc, at("zh"), f"?grid={community}")[1])


def test_create_dash_routes(demo_app_url):
    from sqlalchemy import create_engine

    from dashboard import create_dash

    settings = Settings(database_url=demo_app_url)
    engine = create_engine(demo_app_url)
    try:
        app = create_dash(settings, engine)
        sign_in_every_client(app.server, engine)
        client = app.server.test_client()
        r = client.get("/geo/grids/2.json?v=1")
        assert r.status_code == 200 and len(r.get_json()["features"]) == 14
        assert "max-age" in r.headers["Cache-Control"]
        etag = r.headers["ETag"]
        assert client.get("/geo/grids/2.json?v=1", headers={"If-None-Match": etag}).status_code == 304
        assert client.get("/geo/grids/7.json").status_code == 404
        png = client.get("/tiles/heat/15/26726/13004.png")
        assert png.status_code == 200 and png.data[:4] == b"\x89PNG"
        assert client.get("/tiles/heat/15/1/1.png?k=bogus").status_code == 400
        assert client.get("/tiles/base/15/1/1.png").status_code == 404  # no basemap configured
        page = client.get("/")
        assert page.status_code == 200
    finally:
        engine.dispose()


def test_public_scope_hides_phones(svc):
    with svc.session(at("zh", Scope.public())) as s:
        community = map_layers.grid_layer(s, Scope.public(), 2)["features"][0]["properties"]["code"]
    panel, _ = cb.panel_outputs(svc, at("zh", Scope.public()), {"code": community, "level": 2}, None)
    text = _text(panel)
    assert "tel:" not in text and "gw-official-phone" not in text
    panel_all, _ = cb.panel_outputs(svc, at("zh"), {"code": community, "level": 2}, None)
    assert "tel:" in _text(panel_all)


def test_local_basemap_tiles(demo_app_url, tmp_path):
    import sqlite3

    from sqlalchemy import create_engine

    from dashboard import create_dash

    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    d = tmp_path / "tiles" / "15" / "26726"
    d.mkdir(parents=True)
    (d / "13004.png").write_bytes(png)
    mb = tmp_path / "base.mbtiles"
    con = sqlite3.connect(mb)
    con.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, "
                "tile_data blob)")
    con.execute("INSERT INTO tiles VALUES (15, 26726, ?, ?)", (2 ** 15 - 1 - 13004, png))
    con.commit()
    con.close()
    engine = create_engine(demo_app_url)
    try:
        for path in (tmp_path / "tiles", mb):
            app = create_dash(Settings(database_url=demo_app_url, basemap_path=path), engine)
            sign_in_every_client(app.server, engine)
            client = app.server.test_client()
            r = client.get("/tiles/base/15/26726/13004.png")
            assert r.status_code == 200 and r.data == png and r.mimetype == "image/png"
            assert client.get("/tiles/base/15/26726/13005.png").status_code == 404
    finally:
        engine.dispose()


def _run_map_js(expr: str):
    """Evaluate ``expr`` against window.gridwatch.map (dashboard/assets/gridwatch_map.js) in node."""
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node") or shutil.which("nodejs")
    # `make test` installs nodejs (tools/system-deps test): a missing node is a broken set-up, not a skip
    assert node is not None, "node is not installed; run `make test` (tools/system-deps installs nodejs)"
    src = Path(i18n.__file__).with_name("assets") / "gridwatch_map.js"
    script = (f"global.window = {{}}; require({json.dumps(str(src))}); const m = window.gridwatch.map;"
              f" process.stdout.write(JSON.stringify({expr}));")
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=20, check=True)
    return json.loads(out.stdout)


def test_aggregate_cells_coloured_by_worst_state_like_the_legend():
    # c all, x open and overdue, z closed
    classes = _run_map_js("[m.binClass({c: 5, x: 0, z: 5}), m.binClass({c: 5, x: 0, z: 4}),"
                          " m.binClass({c: 50, x: 1, z: 49}), m.binClass({c: 3, x: 2, z: 0})]")
    assert classes == ["gw-bin gw-bin-c", "gw-bin gw-bin-o", "gw-bin gw-bin-x", "gw-bin gw-bin-x"]
    labels = i18n.js_labels("zh", "Asia/Shanghai")
    tip = _run_map_js(f"m.binTip({{c: 10, x: 1, z: 7}}, {json.dumps(labels, ensure_ascii=False)})")
    assert tip == "10 · 超期 1 · 办理中 2 · 已办结 7"


def test_count_legend_shows_whole_number_classes():
    # classes are [lo, hi): with breaks 7, 8, 12 the overdue counts are 0–6, 7, 8–11, ≥ 12
    legend = pr.legend_children("overdue_open", [7, 8, 12], pr.COUNT_COLORS[:4], "zh", has_none=False)
    labels = [row["props"]["children"][1]["props"]["children"]
              for row in json.loads(_text(legend))[1:]]
    assert labels == ["0 – 6", "7", "8 – 11", "≥ 12"]
    one = pr.legend_children("open", [1], pr.COUNT_COLORS[:2], "en", has_none=False)
    assert [r["props"]["children"][1]["props"]["children"] for r in json.loads(_text(one))[1:]] == [
        "0", "≥ 1"]
    # densities keep half-open ranges
    dens = _text(pr.legend_children("per_km2", [100.0, 200.0], pr.COUNT_COLORS[:3], "en", False))
    assert "< 100" in dens and "100 – 200" in dens and "≥ 200" in dens


def test_heat_legend_ramp_uses_the_tile_colour_stops():
    ramp = pr.heat_ramp_css()
    for pos, r, g, b, a in HEAT_STOPS:
        assert f"rgba({r}, {g}, {b}, {a / 255:.2f}) {pos * 100:g}%" in ramp
    legend = pr.heat_legend(1200.0, "zh")
    bar, scale = legend[1].children
    assert bar.style == {"background": ramp}
    # colour = sqrt(density / scale): the ramp's middle is scale / 4
    assert [s.children for s in scale.children] == ["0", "300", "≥ 1,200"]


def test_legends_follow_the_layer_control():
    shown, hidden = {}, {"display": "none"}
    assert pr.legend_styles(None, "zh") == (shown, hidden, shown, shown)   # layout defaults
    assert pr.legend_styles(["热力图"], "zh") == (hidden, shown, hidden, hidden)
    assert pr.legend_styles([], "en") == (hidden, hidden, hidden, hidden)
    assert pr.legend_styles(["Choropleth", "Issue markers"], "en") == (shown, hidden, shown, shown)


def test_overlays_survive_the_language_switch(svc):
    """The layer control's ticked overlays are kept (by name) and the body rebuilt for another
    language ticks the same ones, with their legends shown."""
    assert layout.overlay_keys(None) is None
    assert layout.overlay_keys(["热力图", "问题标记"]) == ["heat", "markers"]
    assert layout.overlay_keys(["Heat map"]) == ["heat"] and layout.overlay_keys([]) == []

    def state(tree) -> tuple[dict[str, bool], dict[str, Any]]:
        checked: dict[str, bool] = {}
        styles: dict[str, Any] = {}

        def walk(c):
            if isinstance(c, (list, tuple)):
                for x in c:
                    walk(x)
                return
            if not hasattr(c, "_type"):
                return
            if c._type == "Overlay":
                checked[c.name] = c.checked
            if getattr(c, "id", None) in (ids.LEGEND_CHORO, ids.LEGEND_HEAT, ids.LEGEND_MARKERS):
                styles[c.id] = getattr(c, "style", None)
            walk(getattr(c, "children", None))
        walk(tree)
        return checked, styles

    # the store holds the names ticked (here in Chinese); the English body ticks the same layers
    checked, styles = state(cb.body_outputs(svc, at("en"), None, ["热力图", "问题标记"]))
    assert checked == {"Choropleth": False, "Heat map": True, "Issue markers": True}
    assert styles[ids.LEGEND_HEAT] == {} and styles[ids.LEGEND_CHORO] == {"display": "none"}
    # default (nothing stored yet): choropleth and markers, as on first load
    checked, _ = state(cb.body_outputs(svc, at("zh"), None))
    assert checked == {"分级设色": True, "热力图": False, "问题标记": True}
    checked, _ = state(cb.body_outputs(svc, at("zh"), None, ["bogus"]))
    assert checked == {"分级设色": False, "热力图": False, "问题标记": False}
    assert f'"id": "{ids.OVERLAYS}"' in _text(cb.page_layout(svc, at("zh")))
    # the legends follow the store in either language
    shown, hidden = {}, {"display": "none"}
    assert pr.legend_styles(["热力图", "问题标记"], "en") == (hidden, shown, shown, shown)


# -- no redundant work: each of these fails if the removed work comes back ------------------------
def _spy(monkeypatch, module, name: str) -> list[tuple]:
    """Count the calls to ``module.<name>`` (the real function still runs on the demo db)."""
    calls: list[tuple] = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(args[2:])
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, spy)
    return calls


def test_heat_scale_only_while_heat_is_ticked(svc, monkeypatch):
    fresh = Services(engine=svc.engine, settings=svc.settings)
    calls = _spy(monkeypatch, map_heat, "heat_scale")
    assert not pr.heat_shown(None) and not pr.heat_shown([]) and not pr.heat_shown(["分级设色"])
    assert pr.heat_shown(["热力图"]) and pr.heat_shown(["Choropleth", "Heat map"])
    fd = pr.filter_from_controls("problem", [], [], "", False, "open")
    # hidden: a filter/stamp change only moves the tile URL (no query), the legend is left alone
    url, legend = cb.heat_outputs(fresh, at("zh"), fd, "s1", shown=False, trigger=ids.FILTER)
    assert "k=problem" in url and legend is no_update and calls == []
    url0, legend0 = cb.heat_outputs(fresh, at("zh"), None, "s1", shown=False, trigger=None)  # page load
    assert url0 == pr.heat_url(IssueFilter(), "s1") and legend0 is no_update and calls == []
    # another overlay ticked while heat stays hidden: nothing at all
    assert cb.heat_outputs(fresh, at("zh"), fd, "s1", shown=False, trigger=ids.OVERLAYS) == (
        no_update, no_update)
    assert calls == []
    # heat ticked: the legend (and its scale) for the current filter and stamp, computed once
    url2, legend2 = cb.heat_outputs(fresh, at("zh"), fd, "s1", shown=True, trigger=ids.OVERLAYS)
    assert url2 == url and "问题密度" in _text(legend2) and len(calls) == 1
    cb.heat_outputs(fresh, at("en"), fd, "s1", shown=True, trigger=ids.OVERLAYS)
    assert len(calls) == 1                                    # cached per filter and stamp
    cb.heat_outputs(fresh, at("zh"), fd, "s2", shown=True, trigger=app_ids.STAMP)
    assert len(calls) == 2
    # the tiles of that URL (filter and data version as the tile route parses them) reuse the legend's scale
    from urllib.parse import parse_qsl, urlsplit
    args = dict(parse_qsl(urlsplit(pr.heat_url(IssueFilter.from_dict(fd), "s2")).query))
    with fresh.session(at("zh")) as s:
        fresh.tiles.heat_scale(s, at("zh").scope, IssueFilter.from_query(args), args["v"])
    assert len(calls) == 2


def test_grid_detail_loaded_once_per_selection(svc, monkeypatch):
    fresh = Services(engine=svc.engine, settings=svc.settings)
    with fresh.session(at("zh")) as s:
        community = map_layers.grid_layer(s, ALL, 2)["features"][0]["properties"]["code"]
    calls = _spy(monkeypatch, map_layers, "grid_detail")
    sel, *_ = cb.selection_outputs(fresh, at("zh"), f"?grid={community}", "s1")
    panel, rows = cb.panel_outputs(fresh, at("zh"), sel, None, "s1")
    assert community in _text(panel) and rows
    assert calls == [(community,)]                       # the panel reuses the selection's load
    fd = pr.filter_from_controls("problem", [], [], "", False, "open")
    cb.panel_outputs(fresh, at("en"), sel, fd, "s1")          # filter / language: same grid detail
    assert len(calls) == 1
    cb.panel_outputs(fresh, at("en"), sel, fd, "s2")          # a live change reloads it once
    assert len(calls) == 2


def test_callback_wiring_skips_redundant_calls(svc, demo_app_url):
    """The live poll does not run when the page opens (the page carries the stamp and the note);
    the heat callback hears the overlays store (so it can skip the scale while heat is hidden)."""
    from sqlalchemy import create_engine

    from dashboard import create_dash

    engine = create_engine(demo_app_url)
    try:
        app = create_dash(Settings(database_url=demo_app_url), engine)
        specs = app._callback_list          # what the renderer gets from _dash-dependencies
        live = next(c for c in specs if f"{app_ids.STAMP}.data" in c["output"])
        assert live["prevent_initial_call"] is True
        heat = next(c for c in specs if f"{ids.L_HEAT}.url" in c["output"])
        assert {"id": ids.OVERLAYS, "property": "data"} in heat["inputs"]
        assert not heat["prevent_initial_call"]   # a rebuilt body gets its URL and legend
    finally:
        engine.dispose()
    # ... so the body carries the live note itself, in its language
    assert "● 实时 · 更新于" in _text(cb.body_outputs(svc, at("zh"), None))
    assert "● Live · updated" in _text(cb.body_outputs(svc, at("en"), None))


# -- weekly-notice outbox ------------------------------------------------------------------------
def _outbox_item(k: int, sent: bool) -> notices.OutboxItem:
    created = dt.datetime(2026, 11, 27, 7, 30 + k, tzinfo=TZ)
    return notices.OutboxItem(
        id=100 + k, official_id=7 + k, recipient=f"网格长{k}",
        grids=(("41010200500101", "一号院", "Courtyard 1"), ("41010200500102", "二号院", "")),
        channel="sms", subject="网格周通报 2026-11-16", body=f"第{k}条\n请优先处理：",
        created_at=created, sent_at=created + dt.timedelta(minutes=2) if sent else None)


def test_outbox_rows_and_message_shaping():
    items = [_outbox_item(1, False), _outbox_item(0, True)]
    zh = outbox.rows(items, "zh", TZ)
    assert [r["id"] for r in zh] == ["101", "100"]
    assert [r["status"] for r in zh] == ["待发送", "已发送"] and [r["sent"] for r in zh] == [False, True]
    assert zh[0]["created"] == "2026年11月27日 07:31" and zh[0]["sent_at"] == ""
    assert zh[1]["sent_at"] == "2026年11月27日 07:32"
    assert zh[0]["created_ts"] - zh[1]["created_ts"] == 60
    assert zh[0]["grids"] == "一号院、二号院" and zh[0]["recipient"] == "网格长1"
    assert zh[0]["body"] == "第1条\n请优先处理："
    en = outbox.rows(items, "en", TZ)
    assert [r["status"] for r in en] == ["Pending", "Sent"]
    assert en[1]["created"] == "27 Nov 2026 07:30" and en[0]["grids"] == "Courtyard 1、二号院"

    hint = _text(outbox.message(None, "zh"))
    assert "选择一条短信查看全文" in hint and "Select a message" in _text(outbox.message([], "en"))
    msg = _text(outbox.message([en[1]], "en"))
    assert "第0条" in msg and "Recipient" in msg and "网格长0" in msg and "Sent at" in msg
    assert app_ids.OUTBOX_TEXT in msg and "Courtyard 1" in msg
    pending = _text(outbox.message([zh[0]], "zh"))
    assert "收件人" in pending and "待发送" in pending and "发送时间" not in pending

    assert outbox.note(0, 0, 0, "zh") == "发件箱中暂无短信"
    assert outbox.note(200, 1234, 59, "en") == "Latest 200 of 1,234 (59 pending)"
    assert outbox.note(2, 2, 1, "zh") == "最新 2 条，共 2 条（待发送 1 条）"


def test_outbox_outputs_on_the_demo_notices(svc, db):
    """Opening the modal: one geodata call, rows for the demo's weekly notices, the count on the button."""
    import contextlib

    from etl.demo import add_weekly_notices

    written = add_weekly_notices(db, DEMO_END)
    assert written

    class RollbackServices(Services):
        def session(self, ctx):
            return contextlib.nullcontext(db)

    rsvc = RollbackServices(engine=svc.engine, settings=svc.settings)
    total = db.execute(sql("SELECT count(*) FROM outbox")).scalar_one()
    rows, note, label = outbox.outputs(rsvc, at("zh", PUBLIC_PHONES))
    assert {int(r["id"]) for r in rows} >= set(written) and len(rows) == min(total, outbox.OUTBOX_LIMIT)
    mine = [r for r in rows if int(r["id"]) in set(written)]
    assert all(r["status"] == "已发送" and r["subject"] == "网格周通报 2026-11-16" and r["recipient"] in r["body"]
               and r["grids"] for r in mine)
    assert f"共 {total:,} 条" in note and f"{total:,}" in _text(label) and "周报短信" in _text(label)
    rows_en, note_en, label_en = outbox.outputs(rsvc, at("en", PUBLIC_PHONES))
    assert {r["status"] for r in rows_en if int(r["id"]) in set(written)} == {"Sent"}
    assert "Weekly notices" in _text(label_en) and f"of {total:,}" in note_en


def test_outbox_button_and_modal_in_both_languages(svc):
    zh = _text(cb.body_outputs(svc, at("zh"), None))
    en = _text(cb.body_outputs(svc, at("en"), None))
    for cid in (app_ids.OUTBOX_OPEN, app_ids.OUTBOX, app_ids.OUTBOX_GRID, app_ids.OUTBOX_MESSAGE,
                app_ids.OUTBOX_CLOSE):
        assert f'"id": "{cid}"' in zh and f'"id": "{cid}"' in en
    assert "周报短信" in zh and "周报短信发件箱" in zh and "收件人" in zh and "主题" in zh
    assert "Weekly notices" in en and "Weekly notice outbox" in en and "Recipient" in en and "Subject" in en
    assert "周报短信" not in en and "Recipient" not in zh
    assert [c["headerName"] for c in outbox.columns("en")] == ["Time", "Recipient", "Subject", "Status"]


def test_page_open_loads_the_street_detail_once(svc, monkeypatch):
    """The page layout reads the street's name and bbox from its detail; the selection callback that
    follows (no ?grid=, same live stamp) reuses that load instead of repeating its queries."""
    fresh = Services(engine=svc.engine, settings=svc.settings)
    calls = _spy(monkeypatch, map_layers, "grid_detail")
    with fresh.session(at("zh")) as s:
        stamp = map_live.latest_change(s, ALL)
        street = map_layers.street_code(s, ALL)
    cb.body_outputs(fresh, at("zh"), None, stamp=stamp)
    sel, *_ = cb.selection_outputs(fresh, at("zh"), "", stamp)
    assert sel["code"] == street and calls == [(street,)]


#: the constructors of bilingual errors (zh and en side by side, like the API's messages)
BILINGUAL_ERRORS = {"DomainError", "ApiError", "unauthorized"}


def test_no_chinese_text_outside_the_text_table():
    """Every user-facing string of the pages and components goes through ``dashboard.i18n``; the
    bilingual API error messages (``dashboard/api``, the guard's, the tile route's and the sign-in
    gate's) are the exception."""
    import ast
    import re
    from pathlib import Path

    root = Path(i18n.__file__).parent
    cjk = re.compile(r"[\u4e00-\u9fff]")
    exempt = {"i18n.py", "guard.py", "tiles.py", "auth.py"}
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "api" or str(rel) in exempt:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        # bilingual errors are written as their (zh, en) pair where they are raised, as in the API
        pairs = {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", getattr(n.func, "attr", None)) in BILINGUAL_ERRORS
                 for a in ast.walk(n) if isinstance(a, (ast.Constant, ast.JoinedStr))}
        pairs |= {id(c) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) and id(n) in pairs
                  for c in ast.walk(n)}
        found += [f"{rel}:{n.lineno} {n.value[:40]!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
                  and id(n) not in pairs and cjk.search(n.value)]
    assert len(list(root.rglob("*.py"))) > 10
    assert not found, found


def test_timeline_names_residents_in_the_pages_language(svc):
    """An event by a resident (no official) shows the role's label, never the code ``resident``."""
    from sqlalchemy import text

    with svc.session(at("zh")) as s:
        issue_id = s.execute(text("SELECT issue_id FROM issue_event WHERE actor_role = 'resident' "
                                  "AND actor_id IS NULL ORDER BY issue_id LIMIT 1")).scalar_one()
    for lang, word in (("zh", "居民"), ("en", "Resident")):
        _open, _title, body = cb.timeline_outputs(svc, at(lang), issue_id)
        shown = _text(body)
        assert word in shown and "resident" not in shown


def test_an_unknown_grid_or_issue_in_the_url_is_said(svc):
    """The street is shown, and the breadcrumb says what was not found — never silently."""
    sel, _vp, crumbs, _ = cb.selection_outputs(svc, at("zh"), "?grid=41010200599999&issue=999999999")
    assert sel["level"] == 1
    notice = _text(crumbs[0])
    assert "未找到网格 41010200599999" in notice and "未找到问题 999999999" in notice
    assert "No grid abc" in _text(cb.selection_outputs(svc, at("en"), "?grid=abc")[2][0])
    _sel, _vp, fine, _ = cb.selection_outputs(svc, at("zh"), "")
    assert ids.NOT_FOUND not in _text(fine)


def test_a_path_that_is_no_page_is_a_404_page(demo_url):
    from app import create_app

    app = create_app(Settings(database_url=demo_url))
    try:
        assert app.server.test_client().get("/no-such-page").status_code == 302   # a stranger: sign in first
        from geodata.db import get_engine

        sign_in_every_client(app.server, get_engine(Settings(database_url=demo_url)))
        client = app.server.test_client()
        for path in ("/no-such-page", "/map/extra", "/%E5%9C%B0%E5%9B%BE"):
            resp = client.get(path)
            body = resp.get_data(as_text=True)
            assert resp.status_code == 404 and "找不到该页面" in body and "Page not found" in body, path
            assert 'href="/"' in body and "_dash-config" not in body
        assert client.get("/").status_code == 200
        assert client.get("/api/v1/nope").status_code == 404          # the API keeps its own 404s
        assert client.get("/api/v1/nope").is_json
    finally:
        from geodata.db import get_engine

        get_engine(Settings(database_url=demo_url)).dispose()


def test_no_basemap_says_how_to_add_one(svc):
    from dashboard.pages.map import layout

    data = cb.context_data(svc, at("zh"))
    bare = _text(layout.map_component(Settings(basemap_url="", basemap_path=None), "zh", data))
    assert "未配置底图" in bare and "GRIDWATCH_BASEMAP_URL" in bare and "MBTiles" in bare
    tianditu = Settings(basemap_url="https://t{s}.tianditu.gov.cn/vec_w/wmts?tk=k", basemap_path=None)
    assert "未配置底图" not in _text(layout.map_component(tianditu, "zh", data))
    assert "No basemap configured" in _text(layout.map_component(Settings(basemap_url="", basemap_path=None), "en", data))


# -- the view in the URL (issue 11) ---------------------------------------------------------------
DOMAIN_SET = {"safety", "sanitation"}


def test_view_roundtrips_through_the_url():
    flt = pr.filter_from_controls("sentiment", ["safety"], ["closed"], "year", True, "closure_rate")
    view = pr.view_query(flt, ["choro", "heat", "markers"])
    assert view == {"k": "sentiment", "d": "safety", "s": "closed", "p": "year", "o": "1", "m": "closure_rate",
                    "l": "choro,heat,markers"}
    search = pr.url_search("41010200100100", 42, view=view)
    assert search == ("?grid=41010200100100&issue=42&k=sentiment&d=safety&s=closed&p=year&o=1"
                      "&m=closure_rate&l=choro,heat,markers")
    assert pr.parse_query(search) == ("41010200100100", 42)
    assert pr.view_from_query(search, DOMAIN_SET) == (flt, ["choro", "heat", "markers"], [])
    # a custom range, and no layer at all
    rng = pr.filter_from_controls(None, [], [], "custom", False, None, "2026-03-01", "2026-03-31")
    v2 = pr.view_query(rng, [])
    assert v2 == {"f": "2026-03-01", "t": "2026-03-31", "l": "-"}
    assert pr.view_from_query(pr.url_search(None, view=v2), DOMAIN_SET) == (rng, [], [])
    # defaults are left out: the plain map's URL is unchanged
    assert pr.view_query(pr.filter_from_controls(None, [], [], "", False, None), list(layout.DEFAULT_OVERLAYS)) == {}
    assert pr.with_issue("?grid=41010200100100&k=problem", 7) == "?grid=41010200100100&issue=7&k=problem"
    assert pr.search_target("grid:41010200100101", {"m": "open"}) == "?grid=41010200100101&m=open"


@pytest.mark.parametrize("query, bad", [
    ("?k=bogus", ["k"]), ("?d=safety,nowhere", ["d"]), ("?s=closed,lost", ["s"]), ("?p=someday", ["p"]),
    ("?f=2026-13-40", ["f"]), ("?t=yesterday", ["t"]), ("?o=yes", ["o"]), ("?m=nope", ["m"]),
    ("?l=choro,sky", ["l"]), ("?k=%00&m=%3Cscript%3E&l=" + "x" * 5000, ["k", "m", "l"]),
])
def test_invalid_view_values_are_ignored_and_named(query, bad):
    data, keys, found = pr.view_from_query(query, DOMAIN_SET)
    assert found == bad
    assert IssueFilter.from_dict(data) is not None          # a valid filter whatever the input
    assert set(keys) <= set(layout.OVERLAY_KEYS)
    notice = pr.ignored_notice(found, "zh")
    assert notice.id == ids.URL_IGNORED and ", ".join(bad) in notice.children
    assert "Invalid values" in pr.ignored_notice(found, "en").children
    # the other values still apply
    mixed, keys2, found2 = pr.view_from_query(query + "&k=problem&m=open&l=heat", DOMAIN_SET)
    if "k" not in bad:
        assert mixed["kind"] == "problem"
    if "m" not in bad:
        assert mixed["metric"] == "open"
    if "l" not in bad:
        assert keys2 == ["heat"]
    assert found2 == bad


def test_view_callbacks_rebuild_only_on_a_change_and_write_canonical_urls(svc):
    ctx = at("zh")
    default = pr.filter_from_controls(None, [], [], "", False, None)
    names = layout.overlay_names(layout.DEFAULT_OVERLAYS, "zh")
    # the plain URL and the page as it is: nothing to do
    assert cb.view_outputs(svc, ctx, "?grid=41010200500100", default, names, 3) == (no_update,) * 4
    body, version, data, overlays = cb.view_outputs(svc, ctx, "?k=problem&l=heat", default, names, 3)
    assert version == 4 and data["kind"] == "problem" and overlays == ["热力图"]
    assert "热力图" in json.dumps(body, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)
    # only invalid values: the view stays, the selection's notice names them
    assert cb.view_outputs(svc, ctx, "?k=bogus", default, names, 3) == (no_update,) * 4
    # a grid clicked while a ticked layer's URL write is on its way: the URL's view is the one last
    # read, so the stores (heat ticked) stay; without that source the URL's view would untick it
    heat = layout.overlay_names([*layout.DEFAULT_OVERLAYS, "heat"], "zh")
    assert cb.view_outputs(svc, ctx, "?grid=41010200500100", default, heat, 3, source="") == (no_update,) * 4
    *_rebuilt, unticked = cb.view_outputs(svc, ctx, "?grid=41010200500100", default, heat, 3)
    assert "热力图" not in unticked
    # Back to a URL whose view differs from the one last read: the URL's view is shown
    *_rebuilt, back = cb.view_outputs(svc, ctx, "?l=heat", default, names, 3, source="?grid=41010200500100")
    assert back == ["热力图"]
    *_rest, crumbs, _outline = cb.selection_outputs(svc, ctx, "?k=bogus&m=nope")
    assert any(getattr(c, "id", None) == ids.URL_IGNORED for c in crumbs)
    # the writer: the filter changed → the URL (grid and issue kept); unchanged → no update
    flt = pr.filter_from_controls("problem", [], [], "", False, None)
    assert cb.url_outputs(flt, names, "?grid=41010200500100&issue=5") == "?grid=41010200500100&issue=5&k=problem"
    assert cb.url_outputs(flt, names, "?grid=41010200500100&k=problem") is no_update
    assert cb.url_outputs(flt, names, "?k=problem&m=nope") is no_update       # the URL's junk stays ignored
    assert cb.url_outputs(default, ["分级设色"], "") == "?l=choro"
    # stores just read from a URL never write it back: after quick Backs the URL has moved on
    # (to the street's plain view here) and writing ?k=problem would cut the history
    assert cb.url_outputs(flt, names, "", source="?k=problem") is no_update
    assert cb.url_outputs(flt, names, "", source="?grid=41010200500100&k=problem") is no_update
    # the user changed the view after the URL was read: written
    assert cb.url_outputs(flt, names, "?k=sentiment", source="?k=sentiment") == "?k=problem"
