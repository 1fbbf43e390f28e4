"""Closed issues per map cell (migration 0021, geodata.maps.cells): the trigger-kept cells equal a
recount over every issue after inserts, transitions, moves and deletes; the heat tiles and the heat
scale read through the cells are the ones read from every row, number for number; the aggregate
markers hold the same issues in the same states, each bin where its issues are (within one cell);
the same under row-level security in several scopes, and for an official seeing issues through the chain."""
from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import math

import numpy as np
import pytest
from geoalchemy2 import WKTElement
from sqlalchemy import text

from geodata.access.scope import Scope
from geodata.db import open_session
from geodata.maps import cells, heat, markers
from geodata.models import Issue
from geodata.workflow.filters import IssueFilter
from tests.integration.geodata.maps.test_rollup import DEMO_NOW, small  # noqa: F401  (fixture)
from tests.integration.geodata.maps.test_rollup import FILTERS as ROLLUP_FILTERS
from tests.world import B11, B12, B21, C1, NOW, TZ

ALL = Scope.everything()

#: the rollup tests' filters but those with a date window (the cells are all time)
FILTERS = [f for f in ROLLUP_FILTERS if f.preset is None and f.date_from is None]

#: the cells recounted from ``issue`` with the migration's formula, written out again here
RECOUNT = f"""
SELECT grid_code, kind, domain_code, status,
       floor((ST_X(ST_Transform(location, 3857)) + {cells.ORIGIN!r}) / {cells.CELL_M!r})::int AS cx,
       floor(({cells.ORIGIN!r} - ST_Y(ST_Transform(location, 3857))) / {cells.CELL_M!r})::int AS cy,
       count(*) AS n, count(*) FILTER (WHERE due_at IS NOT NULL AND closed_at > due_at) AS late,
       round(sum(ST_X(location))::numeric, 7) AS sx, round(sum(ST_Y(location))::numeric, 7) AS sy,
       round(coalesce(sum(ST_X(location)) FILTER (WHERE due_at IS NOT NULL AND closed_at > due_at), 0)::numeric, 7),
       round(coalesce(sum(ST_Y(location)) FILTER (WHERE due_at IS NOT NULL AND closed_at > due_at), 0)::numeric, 7)
FROM issue WHERE status IN ('closed', 'evaluated') GROUP BY 1, 2, 3, 4, 5, 6"""
STORED = """
SELECT grid_code, kind, domain_code, status, cx, cy, n, late, round(sx::numeric, 7), round(sy::numeric, 7),
       round(lx::numeric, 7), round(ly::numeric, 7)
FROM issue_closed_cell WHERE n <> 0 OR late <> 0"""


def assert_cells_exact(s) -> None:
    stored, recount = set(s.execute(text(STORED)).all()), set(s.execute(text(RECOUNT)).all())
    assert stored == recount and recount


@contextlib.contextmanager
def from_rows(monkeypatch):
    """Every count read from ``issue`` (the cells switched off): the slow way, to compare with."""
    with monkeypatch.context() as m:
        m.setattr(cells, "serves", lambda *a, **k: False)
        yield


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    return (int((lon + 180) / 360 * n),
            int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))


def heat_both_ways(s, monkeypatch, scope: Scope, flt: IssueFilter, now: dt.datetime, lon: float, lat: float):
    assert cells.serves(flt, now, TZ)
    for z in (12, 14, 15, 16):
        x, y = _tile_of(lon, lat, z)
        fast = heat.heat_grid(s, scope, flt, z, x, y, now, tz=TZ)
        with from_rows(monkeypatch):
            slow = heat.heat_grid(s, scope, flt, z, x, y, now, tz=TZ)
        np.testing.assert_array_equal(fast, slow, err_msg=f"{flt} z{z}")
    fast = heat.heat_scale(s, scope, flt, now, tz=TZ)
    with from_rows(monkeypatch):
        assert heat.heat_scale(s, scope, flt, now, tz=TZ) == fast, flt
    # finer than a cell (z ≥ 17): each cell's issues in the square of their mean — the same
    # total, every square within one cell of one the rows give
    for shift in (-1, -2):
        fine = cells.square_counts(s, scope, flt, now, TZ, shift)
        with from_rows(monkeypatch):
            rows = cells.square_counts(s, scope, flt, now, TZ, shift)
        assert sum(fine.values()) == sum(rows.values()), (flt, shift)
        reach = 2 ** -shift
        assert all(any(abs(x - a) <= reach and abs(y - b) <= reach for a, b in rows) for x, y in fine), (flt, shift)


def bins_both_ways(s, monkeypatch, scope: Scope, flt: IssueFilter, now: dt.datetime, bbox) -> int:
    """The aggregate markers both ways: the same issues, states and number of bins; every bin's
    position within one cell's width of the other way's (a cell is binned at its issues' mean)."""
    fast = markers.marker_bins(s, scope, flt, bbox, now, tz=TZ)["features"]
    with from_rows(monkeypatch):
        slow = markers.marker_bins(s, scope, flt, bbox, now, tz=TZ)["features"]

    def total(feats, key):
        return sum(f["properties"][key] for f in feats)

    for key in ("c", "x", "z"):
        assert total(fast, key) == total(slow, key), (flt, key)
    deg = cells.CELL_M / cells.ORIGIN * 180.0 * 2          # two cells, in degrees of longitude
    size = max(bbox[2] - bbox[0], bbox[3] - bbox[1]) / markers.BIN_CELLS
    assert abs(len(fast) - len(slow)) <= max(2, len(slow) // 10), flt   # a cell on a bin's border may tip
    # every issue is within (bin's size + a cell) of where the other way puts its bin
    for f in fast:
        fx, fy = f["geometry"]["coordinates"]
        assert any(abs(fx - g["geometry"]["coordinates"][0]) <= size + deg
                   and abs(fy - g["geometry"]["coordinates"][1]) <= size + deg for g in slow), (flt, f)
    return total(slow, "c")


def _bbox_of(s) -> tuple[float, float, float, float]:
    w, so, e, n = s.execute(text("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                 "(SELECT ST_Extent(location) e FROM issue) t")).one()
    return (w - 0.001, so - 0.001, e + 0.001, n + 0.001)


def _centre(s) -> tuple[float, float]:
    return s.execute(text("SELECT avg(ST_X(location)), avg(ST_Y(location)) FROM issue")).one()


def test_cells_follow_inserts_transitions_moves_and_deletes(small):  # noqa: F811
    s, _world = small
    assert_cells_exact(s)
    for i, status in enumerate(("closed", "closed", "handling")):
        s.add(Issue(number=f"RC2026{i:06d}", kind="problem", domain_code="safety", title="新", description="",
                    source="patrol", location=WKTElement(f"POINT(113.62{i} 34.755)", srid=4326), grid_code=B11,
                    community_code=C1, status=status, reported_at=NOW - dt.timedelta(days=10),
                    due_at=NOW - dt.timedelta(days=8),
                    closed_at=NOW - dt.timedelta(days=i) if status == "closed" else None, updated_at=NOW))
    s.flush()
    assert_cells_exact(s)
    s.execute(text("UPDATE issue SET status = 'evaluated', satisfaction = 5 WHERE number = 'RC2026000000'"))
    s.execute(text("UPDATE issue SET status = 'handling', closed_at = NULL WHERE number = 'RC2026000001'"))
    s.execute(text("UPDATE issue SET status = 'closed', closed_at = due_at + interval '1 day' "
                   "WHERE number = 'RC2026000002'"))
    # moved on the map (a corrected location) and to another block, set-wise
    s.execute(text("UPDATE issue SET location = ST_Translate(location, 0.0004, -0.0003) WHERE grid_code = :b"),
              {"b": B21})
    s.execute(text("UPDATE issue SET grid_code = :b, community_code = :c WHERE grid_code = :a"),
              {"a": B11, "b": B12, "c": C1})
    assert_cells_exact(s)
    s.execute(text("DELETE FROM issue WHERE number LIKE 'RC%'"))
    assert_cells_exact(s)


def test_heat_and_markers_through_the_cells_on_the_small_world(small, monkeypatch):  # noqa: F811
    s, _world = small
    lon, lat = _centre(s)
    bbox = _bbox_of(s)
    for flt in FILTERS:
        heat_both_ways(s, monkeypatch, ALL, flt, NOW, lon, lat)
        bins_both_ways(s, monkeypatch, ALL, flt, NOW, bbox)


def test_heat_and_markers_through_the_cells_on_the_demo(db, monkeypatch):
    assert_cells_exact(db)
    lon, lat = _centre(db)
    bbox = _bbox_of(db)
    for flt in FILTERS[:8]:
        heat_both_ways(db, monkeypatch, ALL, flt, DEMO_NOW, lon, lat)
        assert bins_both_ways(db, monkeypatch, ALL, flt, DEMO_NOW, bbox) > 0 or flt.statuses
    # the street in view: more closed issues than points allowed, so bins at once, from the cells
    got = markers.markers(db, ALL, IssueFilter(), bbox, limit=500, as_of=DEMO_NOW, tz=TZ)
    assert got.mode == "bins"
    with from_rows(monkeypatch):
        slow = markers.markers(db, ALL, IssueFilter(), bbox, limit=500, as_of=DEMO_NOW, tz=TZ)
    assert slow.mode == "bins"
    assert (sum(f["properties"]["c"] for f in got.data["features"])
            == sum(f["properties"]["c"] for f in slow.data["features"]))
    # a date window is not in the cells: read from the rows
    assert not cells.serves(IssueFilter(preset="year"), DEMO_NOW, TZ)


def test_cells_under_row_level_security(demo_app_engine, db, monkeypatch):
    """As the web server reads them: the app role sees only its scope's cells (the policy); the
    chain's closed issues outside the scope's grids come from ``issue``."""
    community, block = db.execute(text("SELECT parent_code, code FROM grid WHERE level = 3 AND valid_to IS NULL "
                                       "ORDER BY code LIMIT 1")).one()
    official = db.execute(text(
        "SELECT grid_leader_id FROM issue WHERE grid_leader_id IS NOT NULL AND community_code <> :c "
        "AND status IN ('closed', 'evaluated') ORDER BY id LIMIT 1"), {"c": community}).scalar_one()
    lon, lat = _centre(db)
    bbox = _bbox_of(db)
    scopes = [Scope.grids(community), Scope.grids(block), Scope(roots=frozenset({community}), official_id=official)]
    counted = {}
    for scope in scopes:
        with open_session(demo_app_engine, scope=scope) as s:
            seen = set(s.scalars(text("SELECT DISTINCT grid_code FROM issue_closed_cell")))
            assert seen and all(scope.allows(g) for g in seen), scope
            for flt in (IssueFilter(), IssueFilter(overdue=True), IssueFilter(kind="problem")):
                heat_both_ways(s, monkeypatch, scope, flt, DEMO_NOW, lon, lat)
                counted[scope, flt] = bins_both_ways(s, monkeypatch, scope, flt, DEMO_NOW, bbox)
    # the official's chain adds closed issues outside their community
    assert counted[scopes[2], IssueFilter()] > counted[scopes[0], IssueFilter()]
    with open_session(demo_app_engine, scope=None) as s:   # no scope: no row (default deny)
        assert s.execute(text("SELECT count(*) FROM issue_closed_cell")).scalar_one() == 0


@pytest.mark.parametrize("z", [10, 16, 17, 19])
def test_a_heat_cell_is_the_square_of_its_zoom(z):
    """4 px at zoom z is 2^(16 − z) cells, exactly (the cells serve heat at z ≤ 16 only)."""
    side = 2 * cells.ORIGIN / 2 ** z / 256 * heat.HEAT_CELL_PX
    assert cells.square_side(cells.CELL_ZOOM - z) == side
    m = importlib.import_module("geodata.db.migrations.versions.0021_map_cells")
    assert (m.ORIGIN, m.CELL_M, m.CELL_LEVEL) == (cells.ORIGIN, cells.CELL_M, cells.CELL_LEVEL)


def test_an_issues_cell_is_stored_with_it_and_boxes_use_its_index(demo_app_engine, db):
    """The generated cell columns hold the cells' formula (one definition: models and migrations
    0021/0023), and a box condition can use ``issue_cell_idx`` below the policies, as the app role
    (``&&`` could not: it is not LEAKPROOF)."""
    from geodata import models
    from geodata.workflow.filters import bbox_condition

    m = importlib.import_module("geodata.db.migrations.versions.0021_map_cells")
    assert (models.CELL_X_SQL, models.CELL_Y_SQL) == m.CELL_EXPR
    wrong = db.execute(text(f"SELECT count(*) FROM issue WHERE cell_x <> {m.CELL_EXPR[0]} "
                            f"OR cell_y <> {m.CELL_EXPR[1]} OR cell_x IS NULL")).scalar_one()
    assert wrong == 0
    lon, lat = _centre(db)
    box = (lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    inside = db.execute(text("SELECT count(*) FROM issue WHERE location && ST_MakeEnvelope(:w, :s, :e, :n, 4326)"),
                        dict(zip("wsen", box, strict=True))).scalar_one()
    assert inside > 0
    from sqlalchemy import func, select
    from sqlalchemy.dialects import postgresql

    stmt = select(func.count()).select_from(Issue).where(bbox_condition(box))
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with open_session(demo_app_engine, scope=ALL) as s:
        assert s.execute(text(sql)).scalar_one() == inside
        s.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(s.execute(text("EXPLAIN " + sql)).scalars())
    assert "issue_cell_idx" in plan and "Index Cond" in plan, plan
