"""geodata.maps (and the map's issue reads) on a real PostGIS: counts agree with plain SQL, filters compose, payload bounded."""
from __future__ import annotations

import datetime as dt

import orjson
import pytest
from sqlalchemy import text

from dashboard import tiles
from geodata.access.scope import Scope
from geodata.maps import heat, layers, live
from geodata.maps import markers as map_markers
from geodata.maps import metrics as map_metrics
from geodata.maps import search as map_search
from geodata.workflow import filters, queries
from geodata.workflow.filters import IssueFilter
from geodata.workflow.rules import is_overdue
from tests.conftest import DEMO_END
from tests.world import B11, B21, C1, C2, NOW, SINCE, STREET, TZ, seed, seed_issues

ALL = Scope.everything()
DEMO_NOW = dt.datetime.combine(DEMO_END, dt.time(23, 0), tzinfo=dt.UTC)


@pytest.fixture
def small(empty_db):
    world = seed(empty_db)
    world.issues = seed_issues(empty_db, world)
    return empty_db, world


# -- filter --------------------------------------------------------------------------------------
def test_filter_roundtrips_and_presets():
    f = IssueFilter(kind="problem", domains=("safety", "sanitation"), statuses=("closed",),
                    preset="month", overdue=True)
    assert IssueFilter.from_dict(f.to_dict()) == f
    assert IssueFilter.from_query(f.to_query()) == f
    g = IssueFilter(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 1, 31))
    assert IssueFilter.from_dict(g.to_dict()) == g and IssueFilter.from_query(g.to_query()) == g
    # 2026-11-27 12:00 UTC is Friday 20:00 in Shanghai
    tz = TZ
    assert filters.preset_start("week", NOW, TZ) == dt.datetime(2026, 11, 23, tzinfo=tz)
    assert filters.preset_start("month", NOW, TZ) == dt.datetime(2026, 11, 1, tzinfo=tz)
    assert filters.preset_start("quarter", NOW, TZ) == dt.datetime(2026, 10, 1, tzinfo=tz)
    assert filters.preset_start("year", NOW, TZ) == dt.datetime(2026, 1, 1, tzinfo=tz)
    # 23:30 UTC on Sunday is already Monday in Shanghai: a new week starts
    late = dt.datetime(2026, 11, 29, 23, 30, tzinfo=dt.UTC)
    assert filters.preset_start("week", late, TZ) == dt.datetime(2026, 11, 30, tzinfo=tz)
    start, end = g.window(NOW, TZ)
    assert start == dt.datetime(2026, 1, 1, tzinfo=tz) and end == dt.datetime(2026, 2, 1, tzinfo=tz)
    with pytest.raises(ValueError):
        IssueFilter(kind="nope")
    with pytest.raises(ValueError):
        IssueFilter(statuses=("bogus",))


# -- small fixture -------------------------------------------------------------------------------
def test_grid_layers_and_detail(small):
    s, _data = small
    fc = layers.grid_layer(s, ALL, 2, NOW)
    assert [f["properties"]["code"] for f in fc["features"]] == [C1, C2]
    props = fc["features"][0]["properties"]
    assert set(props) == {"code", "name", "name_en", "level", "parent_code", "area_km2"}
    assert props["parent_code"] == STREET and 1.9 < props["area_km2"] < 2.2
    assert len(layers.grid_layer(s, ALL, 3, NOW)["features"]) == 4
    # scope restricts the layers
    assert [f["properties"]["code"] for f in layers.grid_layer(s, Scope.grids(C2), 3, NOW)["features"]] \
        == [B21, B21[:12] + "02"]
    # as-of: before the grids existed there is nothing
    assert layers.grid_layer(s, ALL, 2, SINCE - dt.timedelta(days=1))["features"] == []

    d = layers.grid_detail(s, ALL, C1, NOW)
    assert d.level == 2 and d.children == 2 and [p[0] for p in d.path] == [STREET, C1]
    assert {o.role for o in d.officials} == {"first_responsible", "direct_responsible",
                                             "sunk_member", "platform_maintainer"}
    assert all(o.phone for o in d.officials)
    # a block: the six-ones chain, grid leader first, then responsible, then the leader in charge
    b = layers.grid_detail(s, ALL, B11, NOW)
    assert [o.chain for o in b.officials] == ["grid_leader", "responsible", "responsible",
                                              "responsible", "leader_in_charge"]
    assert b.officials[0].name == "网格长甲" and b.officials[-1].name == "西分包领导"
    # phones only with personal data
    pub = layers.grid_detail(s, Scope.public(), B11, NOW)
    assert all(o.phone is None for o in pub.officials)
    assert layers.grid_detail(s, Scope.grids(C2), B11, NOW) is None
    assert layers.grid_detail(s, ALL, "99999999999999", NOW) is None
    assert layers.grid_detail(s, ALL, "bogus", NOW) is None


def _sql_counts(s, where: str, params: dict) -> dict:
    rows = s.execute(text(f"SELECT status, due_at, closed_at FROM issue WHERE {where}"), params).all()
    closed = sum(r.status in ("closed", "evaluated") for r in rows)
    overdue = sum(is_overdue(r.status, r.due_at, r.closed_at, NOW) for r in rows)
    return {"total": len(rows), "closed": closed, "open": len(rows) - closed, "overdue": overdue}


def test_counts_agree_with_plain_sql(small):
    s, _ = small
    m = map_metrics.grid_metrics(s, ALL, IssueFilter(), 2, STREET, NOW, tz=TZ)
    for code in (C1, C2):
        want = _sql_counts(s, "community_code = :c", {"c": code})
        got = m[code]
        assert (got.total, got.closed, got.open, got.overdue) == (
            want["total"], want["closed"], want["open"], want["overdue"])
    blocks = map_metrics.grid_metrics(s, ALL, IssueFilter(), 3, C1, NOW, tz=TZ)
    assert set(blocks) == {B11, B11[:12] + "02"}
    assert sum(c.total for c in blocks.values()) == m[C1].total
    gc = map_metrics.grid_counts(s, ALL, IssueFilter(), C1, NOW, tz=TZ)
    assert gc.counts.total == m[C1].total and sum(gc.by_status.values()) == gc.counts.total
    assert sum(gc.by_domain.values()) == gc.counts.total
    street = map_metrics.grid_counts(s, ALL, IssueFilter(), STREET, NOW, tz=TZ)
    assert street.counts.total == 40
    # closure rate is closed / should-be-closed
    c = gc.counts
    assert c.closure_rate == pytest.approx(c.closed / c.should_close)
    assert c.per_km2 == pytest.approx(c.total / c.area_km2)


def test_filters_compose_and_agree_everywhere(small):
    s, _ = small
    flt = IssueFilter(kind="problem", domains=("safety", "sanitation", "livelihood"),
                      statuses=("closed", "evaluated", "reported"))
    want = s.execute(text(
        "SELECT count(*) FROM issue WHERE kind='problem' AND domain_code IN ('safety','sanitation',"
        "'livelihood') AND status IN ('closed','evaluated','reported')")).scalar_one()
    assert 0 < want < 40
    assert map_metrics.grid_counts(s, ALL, flt, STREET, NOW, tz=TZ).counts.total == want
    assert sum(c.total for c in map_metrics.grid_metrics(s, ALL, flt, 2, STREET, NOW, tz=TZ).values()) == want
    pts = map_markers.markers(s, ALL, flt, (113.6, 34.7, 113.7, 34.8), 2000, NOW, tz=TZ)
    assert pts.mode == "points" and len(pts.data["features"]) == want
    assert len(queries.latest_issues(s, ALL, flt, STREET, 100, NOW, tz=TZ)) == want
    # overdue only = the derived rule; date window
    od = IssueFilter(overdue=True)
    n_od = map_metrics.grid_counts(s, ALL, od, None, NOW, tz=TZ).counts.total
    assert n_od == map_metrics.grid_counts(s, ALL, IssueFilter(), None, NOW, tz=TZ).counts.overdue
    week = IssueFilter(preset="week")
    start = filters.preset_start("week", NOW, TZ)
    want_w = s.execute(text("SELECT count(*) FROM issue WHERE reported_at >= :s"),
                       {"s": start}).scalar_one()
    assert map_metrics.grid_counts(s, ALL, week, None, NOW, tz=TZ).counts.total == want_w
    # combining a filter only ever narrows
    both = IssueFilter(kind="problem", overdue=True)
    assert map_metrics.grid_counts(s, ALL, both, None, NOW, tz=TZ).counts.total <= n_od


def test_markers_points_and_bins(small):
    s, _ = small
    bbox = (113.6, 34.7, 113.7, 34.8)
    pts = map_markers.markers(s, ALL, IssueFilter(), bbox, 2000, NOW, tz=TZ)
    f = pts.data["features"][0]
    assert set(f["properties"]) == {"id", "st"}  # popup text is fetched on demand
    assert {x["properties"]["st"] for x in pts.data["features"]} == {"o", "x", "c"}
    # the viewport restricts
    west = map_markers.markers(s, ALL, IssueFilter(), (113.6, 34.7, 113.63, 34.8), 2000, NOW, tz=TZ)
    assert 0 < len(west.data["features"]) < len(pts.data["features"])
    popups = [map_markers.issue_popup(s, ALL, x["properties"]["id"], NOW) for x in west.data["features"]]
    assert all(p["g"].startswith(C1[:12]) for p in popups)
    p = popups[0]
    assert set(p) == {"id", "n", "t", "k", "d", "s", "st", "g", "r", "c"} and p["t"].startswith("测试问题")
    assert (p["c"] is None) == (p["st"] != "c")      # a closed issue says when it closed
    assert map_markers.issue_popup(s, Scope.grids(C2), p["id"], NOW) is None
    # over the limit: aggregated cells whose counts add up
    bins = map_markers.markers(s, ALL, IssueFilter(), bbox, 10, NOW, tz=TZ)
    assert bins.mode == "bins"
    assert sum(x["properties"]["c"] for x in bins.data["features"]) == 40
    assert len(bins.data["features"]) <= map_markers.BIN_CELLS ** 2


def test_timeline_search_stamp(small):
    s, data = small
    d = queries.issue_detail(s, ALL, data.issues[1], NOW)
    assert d.issue.number == "UI2026000001" and [e.action for e in d.events] == ["report", "assign"]
    assert d.grid_leader == "网格长乙" and d.responsible == "西支书"
    assert queries.issue_detail(s, Scope.grids(C2), data.issues[1], NOW) is None
    kinds = {h.kind for h in map_search.search(s, ALL, "西社区", 10, NOW)}
    assert kinds == {"grid"}
    assert map_search.search(s, ALL, "网格长甲", 10, NOW)[0].grid_code == B11
    hit = map_search.search(s, ALL, "UI2026000003", 10, NOW)
    assert hit[0].kind == "issue" and hit[0].issue_id == data.issues[3]
    assert map_search.search(s, ALL, C1, 10, NOW)[0].grid_code == C1
    assert map_search.search(s, ALL, "%", 10, NOW) == []  # LIKE wildcards are literal
    assert queries.find_issue(s, "UI2026000003", ALL).id == data.issues[3]
    before = live.latest_change(s, ALL)
    assert live.latest_change(s, ALL) == before
    # a workflow step appends an event: the stamp moves
    s.execute(text("INSERT INTO issue_event (issue_id, action, from_status, to_status, at, note) "
                   "VALUES (:i, 'assign', 'reported', 'assigned', now(), '')"), {"i": data.issues[0]})
    after_event = live.latest_change(s, ALL)
    assert after_event != before
    # a new issue, and a deleted one, move it too
    s.execute(text("INSERT INTO issue (number, kind, domain_code, title, description, source, location, grid_code, "
                   "community_code, status, reported_at) SELECT 'UIX1', kind, domain_code, title, '', source, "
                   "location, grid_code, community_code, status, reported_at FROM issue WHERE id = :i"),
              {"i": data.issues[0]})
    after_insert = live.latest_change(s, ALL)
    assert after_insert != after_event
    s.execute(text("DELETE FROM issue WHERE number = 'UIX1'"))
    assert live.latest_change(s, ALL) != after_insert


def test_heat_grid_and_png(small):
    s, _ = small
    import math

    z = 15
    n = 2 ** z
    x = int((113.63 + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(34.75))) / math.pi) / 2 * n)
    g = heat.heat_grid(s, ALL, IssueFilter(), z, x, y, NOW, tz=TZ)
    pad = heat.HEAT_PAD
    assert g.shape == (64 + 2 * pad, 64 + 2 * pad) and g.max() > 0
    assert heat.heat_grid(s, ALL, IssueFilter(), z, x, y, NOW, pad=0, tz=TZ).shape == (64, 64)
    scale = heat.heat_scale(s, ALL, IssueFilter(), NOW, tz=TZ)
    png = tiles.render_heat_png(g, scale)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # a filter matching nothing gives an empty grid
    none = heat.heat_grid(s, ALL, IssueFilter(domains=("nonexistent",)), z, x, y, NOW, tz=TZ)
    assert none.max() == 0


# -- demo dataset --------------------------------------------------------------------------------
def _tile(session, z: int, x: int, y: int, scale: float, pad: int = heat.HEAT_PAD):
    g = heat.heat_grid(session, ALL, IssueFilter(), z, x, y, DEMO_NOW, pad=pad, tz=TZ)
    return g, tiles.heat_index(g, scale).astype(int)


def _seam_excess(a, b) -> int:
    """How far the step across the seam between a's last and b's first pixel column exceeds the
    steps next to it (in either tile), per row; 0 when the ramp runs on smoothly across the seam."""
    import numpy as np

    seam = np.abs(a[:, -1] - b[:, 0])
    beside = np.maximum(np.abs(a[:, -1] - a[:, -2]), np.abs(b[:, 0] - b[:, 1]))
    return int((seam - beside).max())


@pytest.mark.parametrize("z", [15, 17])
def test_heat_tiles_join_without_seams(db, z):
    """Adjacent heat tiles: the density cells are the same whichever tile computes them, and the
    edge pixels are interpolated across the tile edge, so no faint line shows between tiles."""
    import math

    import numpy as np

    scale = heat.heat_scale(db, ALL, IssueFilter(), DEMO_NOW, tz=TZ)
    n = 2 ** z
    lon, lat = db.execute(text("SELECT avg(ST_X(location)), avg(ST_Y(location)) FROM issue")).one()
    x = int((lon + 180) / 360 * n) - 1
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    pad = heat.HEAT_PAD
    ga, a = _tile(db, z, x, y, scale)
    gr, right = _tile(db, z, x + 1, y, scale)
    gb, below = _tile(db, z, x, y + 1, scale)
    assert min(a.max(), right.max(), below.max()) >= 10
    # the padding cells are the neighbour's own cells (same kernels, same values)
    np.testing.assert_allclose(ga[:, -2 * pad:], gr[:, :2 * pad], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ga[-2 * pad:, :], gb[:2 * pad, :], rtol=1e-9, atol=1e-9)
    # across the seam the ramp changes no more than between neighbouring pixels inside a tile
    # (1 step of slack for rounding), left/right and top/bottom
    assert _seam_excess(a, right) <= 1
    assert _seam_excess(a.T, below.T) <= 1
    # each tile upscaled on its own (no padding: the old rendering) shows a step at the seam
    _, a0 = _tile(db, z, x, y, scale, pad=0)
    _, r0 = _tile(db, z, x + 1, y, scale, pad=0)
    _, b0 = _tile(db, z, x, y + 1, scale, pad=0)
    assert _seam_excess(a0, r0) >= 5 and _seam_excess(a0.T, b0.T) >= 5
    # and the PNG is that ramp: transparent only below the cut-off
    from io import BytesIO

    from PIL import Image

    rgba = np.asarray(Image.open(BytesIO(tiles.render_heat_png(ga, scale))).convert("RGBA"))
    assert ((rgba[..., 3] > 0) == (a >= 3)).all()


def test_demo_layers_and_counts(db):
    fc2 = layers.grid_layer(db, ALL, 2)
    fc3 = layers.grid_layer(db, ALL, 3)
    assert len(layers.grid_layer(db, ALL, 1)["features"]) == 1
    assert len(fc2["features"]) == 14 and len(fc3["features"]) == 59
    street = layers.street_code(db, ALL)
    m = map_metrics.grid_metrics(db, ALL, IssueFilter(), 2, street, DEMO_NOW, tz=TZ)
    total = db.execute(text("SELECT count(*) FROM issue")).scalar_one()
    assert sum(c.total for c in m.values()) == total
    problems = map_metrics.grid_counts(db, ALL, IssueFilter(kind="problem"), street, DEMO_NOW, tz=TZ).counts
    want = db.execute(text("SELECT count(*), count(*) FILTER (WHERE status IN ('closed','evaluated')) "
                           "FROM issue WHERE kind='problem'")).one()
    assert (problems.total, problems.closed) == tuple(want)
    # the demo's overdue count agrees with workflow.is_overdue row by row
    rows = db.execute(text("SELECT status, due_at, closed_at FROM issue")).all()
    want_od = sum(is_overdue(r.status, r.due_at, r.closed_at, DEMO_NOW) for r in rows)
    assert map_metrics.grid_counts(db, ALL, IssueFilter(), None, DEMO_NOW, tz=TZ).counts.overdue == want_od
    for code in list(m)[:3]:
        d = layers.grid_detail(db, ALL, code)
        assert d is not None and d.children > 0 and d.officials


def test_payload_bounded_with_many_issues(db):
    """100 000 extra issues in the street (rolled back): the viewport payload stays bounded."""
    street = layers.street_code(db, ALL)
    d = layers.grid_detail(db, ALL, street)
    bbox = d.bbox
    before = map_markers.markers(db, ALL, IssueFilter(), bbox, 2000, tz=TZ)
    size_before = len(orjson.dumps(before.data))
    db.execute(text("""
        INSERT INTO issue (number, kind, domain_code, title, description, source, location, grid_code,
                           community_code, status, reported_at, due_at, updated_at)
        SELECT 'GEN' || lpad(g::text, 9, '0'), 'problem', 'sanitation', 'generated issue ' || g, '',
               'patrol', ST_SetSRID(ST_MakePoint(:w + random() * (:e - :w), :s + random() * (:n - :s)), 4326),
               (SELECT code FROM grid WHERE level = 3 ORDER BY code LIMIT 1),
               (SELECT parent_code FROM grid WHERE level = 3 ORDER BY code LIMIT 1),
               'reported', now() - interval '1 day', now() + interval '1 day', now()
        FROM generate_series(1, 100000) g"""),
               {"w": bbox[0], "s": bbox[1], "e": bbox[2], "n": bbox[3]})
    after = map_markers.markers(db, ALL, IssueFilter(), bbox, 2000, tz=TZ)
    size_after = len(orjson.dumps(after.data))
    assert after.mode == "bins"
    assert len(after.data["features"]) <= map_markers.BIN_CELLS ** 2
    assert size_after <= 500_000
    assert size_after <= max(size_before, 1) * 1.5 or size_after < 50_000
    # a small viewport, capped the same way
    w, s, e, n = bbox
    small_box = (w, s, w + (e - w) / 6, s + (n - s) / 6)
    res = map_markers.markers(db, ALL, IssueFilter(), small_box, 2000, tz=TZ)
    assert len(orjson.dumps(res.data)) <= 500_000


@pytest.mark.parametrize("scale", [3100.0, 11000.0, 11600.0, 12000.0, 20000.0])
def test_heat_seams_do_not_depend_on_the_scale(db, scale):
    """The ramp is interpolated in floating point and rounded once, so at any scale the step across
    a tile edge exceeds its neighbours' by at most one level (rounding twice gave two at some)."""
    import math

    z = 17
    n = 2 ** z
    lon, lat = db.execute(text("SELECT avg(ST_X(location)), avg(ST_Y(location)) FROM issue")).one()
    x = int((lon + 180) / 360 * n) - 1
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    _, a = _tile(db, z, x, y, scale)
    _, right = _tile(db, z, x + 1, y, scale)
    _, below = _tile(db, z, x, y + 1, scale)
    assert _seam_excess(a, right) <= 1 and _seam_excess(a.T, below.T) <= 1


def test_search_finds_parts_of_numbers_title_words_phones_and_pinyin(small):
    """What a leader types: the end of a case number, a word of its title, a phone number, pinyin."""
    s, data = small
    hit = [h for h in map_search.search(s, ALL, "000003", 10, NOW) if h.kind == "issue"]   # the end of a number
    assert hit and hit[0].issue_id == data.issues[3]
    words = map_search.search(s, ALL, "问题1", 40, NOW)                       # a word of the title
    assert words and all(h.kind == "issue" for h in words)
    assert {h.issue_id for h in words} >= {data.issues[1]}
    # pinyin: full or initials, of grids and of officials
    assert next(h.grid_code for h in map_search.search(s, ALL, "xishequ", 10, NOW) if h.kind == "grid") == C1
    assert C2 in [h.grid_code for h in map_search.search(s, ALL, "dsq", 10, NOW) if h.kind == "grid"]
    assert [h.grid_code for h in map_search.search(s, ALL, "wgzj", 10, NOW) if h.kind == "official"] == [B11]
    # a phone (only for a scope that may see phones): the official's grid
    phone = s.execute(text("SELECT c.phone FROM official_contact c JOIN official o ON o.id = c.official_id "
                           "WHERE o.name = '网格长甲'")).scalar_one()
    assert [h.grid_code for h in map_search.search(s, Scope.everything(personal_data=True), phone[-6:], 10, NOW)
            if h.kind == "official"] == [B11]
    assert not [h for h in map_search.search(s, Scope.everything(personal_data=False), phone[-6:], 10, NOW)
                if h.kind == "official"]
