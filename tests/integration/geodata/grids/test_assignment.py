"""Automatic assignment: point → block grid (edges, vertices, outside, GCJ-02), six-ones chain, bulk."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import text

from geodata.errors import DomainError, OutsideGridsError
from geodata.geometry import to_wgs84, wgs84_to_gcj02
from geodata.grids.assignment import (
    MAX_OVERRIDE_M,
    locate_block,
    six_ones_chain,
)
from geodata.grids.bulk import CELL_DEG, FINE, assign_points_setwise, build_cell_index, grid_fingerprint
from tests.world import B11, B12, B21, B22, C1, block_or_none, seed

GEOD = Geod(ellps="WGS84")


@pytest.fixture
def world(empty_db):
    return seed(empty_db)


@pytest.mark.parametrize("lon,lat,expected", [
    (113.625, 34.755, B11), (113.625, 34.745, B12), (113.635, 34.755, B21), (113.635, 34.745, B22),
])
def test_interior_points(empty_db, world, lon, lat, expected):
    p = locate_block(empty_db, lon, lat)
    assert p.grid_code == expected and p.method == "covers" and p.distance_m == 0
    assert p.candidates == (expected,)
    assert p.community_code == expected[:12] + "00"


@pytest.mark.parametrize("lon,lat,covering", [
    (113.63, 34.755, (B11, B21)),           # vertical edge between the communities
    (113.63, 34.745, (B12, B22)),
    (113.625, 34.75, (B11, B12)),           # horizontal edge inside community 1
    (113.635, 34.75, (B21, B22)),
    (113.63, 34.75, (B11, B12, B21, B22)),  # the vertex all four share
])
def test_shared_edges_and_vertex_go_to_exactly_one_grid(empty_db, world, lon, lat, covering):
    """Rule: of the grids covering the point (ST_Covers), the lowest code wins."""
    p = locate_block(empty_db, lon, lat)
    assert p.candidates == covering
    assert p.grid_code == min(covering)
    # deterministic: asking again gives the same single answer
    assert {locate_block(empty_db, lon, lat).grid_code for _ in range(3)} == {min(covering)}


def test_outer_boundary_is_inside(empty_db, world):
    assert locate_block(empty_db, 113.62, 34.745).grid_code == B12
    assert locate_block(empty_db, 113.64, 34.76).grid_code == B21


def test_outside_refused_with_nearest_and_distance(empty_db, world):
    lon, lat = 113.645, 34.755  # 0.005° east of the street
    with pytest.raises(OutsideGridsError) as err:
        locate_block(empty_db, lon, lat)
    e = err.value
    assert e.code == "outside_grids" and e.field == "lon" and e.message_zh and e.message_en
    assert e.detail["nearest_grid"] == B21
    _, _, expected = GEOD.inv(113.64, lat, lon, lat)
    assert abs(e.detail["distance_m"] - expected) < 2.0


def test_operator_override_attaches_to_nearest(empty_db, world):
    lon, lat = 113.645, 34.745
    p = locate_block(empty_db, lon, lat, nearest=True)
    assert p.grid_code == B22 and p.method == "nearest"
    _, _, expected = GEOD.inv(113.64, lat, lon, lat)
    assert abs(p.distance_m - expected) < 2.0 and 400 < p.distance_m < 500


def test_override_has_a_limit(empty_db, world):
    with pytest.raises(OutsideGridsError) as err:
        locate_block(empty_db, 113.75, 34.75, nearest=True)
    assert err.value.code == "too_far_for_override"
    assert err.value.detail["distance_m"] > MAX_OVERRIDE_M


def test_no_grids_at_all(empty_db):
    with pytest.raises(OutsideGridsError) as err:
        locate_block(empty_db, 113.63, 34.75)
    assert err.value.code == "no_grids"


def test_gcj02_input_is_converted(empty_db, world):
    wlon, wlat = 113.6395, 34.7405  # inside B22, near its south-east corner
    glon, glat = (float(v) for v in wgs84_to_gcj02(wlon, wlat))
    assert GEOD.inv(wlon, wlat, glon, glat)[2] > 100  # the GCJ-02 offset is hundreds of metres
    lon, lat = to_wgs84(glon, glat, "gcj02")
    assert abs(lon - wlon) < 1e-7 and abs(lat - wlat) < 1e-7
    assert locate_block(empty_db, lon, lat).grid_code == B22
    # taken literally as WGS84, the GCJ-02 coordinates land outside the street
    with pytest.raises(OutsideGridsError):
        locate_block(empty_db, *to_wgs84(glon, glat, "wgs84"))
    assert to_wgs84(wlon, wlat, "cgcs2000") == (wlon, wlat)


def test_swapped_and_out_of_range_coordinates():
    with pytest.raises(DomainError) as err:
        to_wgs84(34.75, 113.63)
    assert err.value.code == "coordinates_swapped" and err.value.field == "lat"
    assert "swapped" in err.value.message_en and "填反" in err.value.message_zh
    with pytest.raises(DomainError) as err:
        to_wgs84(200.0, 34.0)
    assert err.value.code == "coordinate_out_of_range" and err.value.field == "lon"
    with pytest.raises(DomainError) as err:
        to_wgs84(113.0, 95.0, "gcj02")
    assert err.value.field == "lat"
    with pytest.raises(DomainError) as err:
        to_wgs84(113.0, float("nan"))
    assert err.value.code == "invalid_coordinate"
    with pytest.raises(DomainError) as err:
        to_wgs84(113.0, 34.0, "bd09")
    assert err.value.field == "crs"


def test_covering_lookup_can_use_the_gist_index(empty_db, world):
    empty_db.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in empty_db.execute(text("""
        EXPLAIN SELECT code FROM grid g WHERE g.level = 3
          AND ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(113.63, 34.75), 4326))""")))
    assert "grid_geom_gist" in plan


def test_six_ones_chain_from_current_assignments(empty_db, world):
    chain = six_ones_chain(empty_db, B11)
    assert [g.level for g in chain.grids] == [1, 2, 3]
    assert chain.leader_in_charge.official_id == world.ids["c1_leader"]
    assert chain.responsible.official_id == world.ids["c1_secretary"]
    assert chain.grid_leader.official_id == world.ids["b11_leader"]
    assert all(h.phone is None for h in chain.holders)  # no personal data unless asked
    assert all(h.phone for h in six_ones_chain(empty_db, B11, personal_data=True).holders)
    # the secretary's assignment ends: the next direct responsible by rank takes over
    empty_db.execute(text("UPDATE grid_assignment SET valid_to = now() - interval '1 day' "
                          "WHERE official_id = :o"), {"o": world.ids["c1_secretary"]})
    assert six_ones_chain(empty_db, B11).responsible.official_id == world.ids["c1_chair"]
    # ...but as of last year the secretary was still the one
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
    assert six_ones_chain(empty_db, B11, as_of=past).responsible.official_id == world.ids["c1_secretary"]


def test_leader_in_charge_falls_back_to_the_street(empty_db, world):
    empty_db.execute(text("DELETE FROM grid_assignment WHERE grid_code = :c AND role = 'first_responsible'"),
                     {"c": C1})
    assert six_ones_chain(empty_db, B12).leader_in_charge.official_id == world.ids["secretary"]
    # the block's panel names the same leader in charge: one definition of the links (Chain.links)
    from geodata.access.scope import Scope
    from geodata.maps.layers import grid_detail

    panel = grid_detail(empty_db, Scope.everything(), B12)
    assert next(o.official_id for o in panel.officials if o.chain == "leader_in_charge") == world.ids["secretary"]
    assert [o.chain for o in panel.officials] == [h.chain for h in six_ones_chain(empty_db, B12).links()]


@pytest.mark.parametrize("method,create", [("cells", False), ("cells", True), ("gist", False), ("gist", True)])
def test_bulk_setwise_matches_single_point_rule(empty_db, world, method, create):
    rng = np.random.default_rng(7)
    lon = rng.uniform(113.615, 113.645, 3000)
    lat = rng.uniform(34.735, 34.765, 3000)
    # every edge/vertex case, points exactly on raster-cell borders, and just inside/outside the street
    extra = [(113.63, 34.755), (113.63, 34.745), (113.625, 34.75), (113.635, 34.75), (113.63, 34.75),
             (113.62, 34.745), (113.64, 34.76), (113.6202, 34.7402), (113.6298, 34.7498),
             (113.62 - 1e-10, 34.75), (113.64 + 1e-10, 34.75), (113.63 - 1e-12, 34.755), (113.63 + 1e-12, 34.755)]
    # coarse and fine raster-cell borders (± one ulp) inside blocks and on shared edges: fine cells
    # are centred on multiples of CELL_DEG / FINE, coarse ones span FINE of them
    df = CELL_DEG / FINE
    for k in range(5):
        for x in (113.6204 + k * CELL_DEG, (round(113.6204 / df) + k * FINE + 0.5) * df,
                  (round(113.6204 / df) + k + 0.5) * df):
            extra += [(x, 34.7562), (np.nextafter(x, 0), 34.7562), (np.nextafter(x, 200), 34.7562),
                      (x, 34.75), (113.63, 34.7404 + k * CELL_DEG), (113.63, (round(34.7404 / df) + k + 0.5) * df)]
    lon = np.concatenate([lon, [e[0] for e in extra]])
    lat = np.concatenate([lat, [e[1] for e in extra]])
    _pts(empty_db, "pts", list(zip(lon.tolist(), lat.tolist())))
    if not create:
        empty_db.execute(text("CREATE TEMP TABLE res (point_id bigint, grid_code varchar(14)) ON COMMIT DROP"))
    n = assign_points_setwise(empty_db, "pts", "res", method=method, create=create)
    assert n == len(lon)
    got = dict(empty_db.execute(text("SELECT point_id, grid_code FROM res")).all())
    # the same points loaded as chunks of arrays (uneven last chunk) give the same rows
    m = 256
    empty_db.execute(text("CREATE TEMP TABLE ptc (ids int8[], lon float8[], lat float8[]) ON COMMIT DROP"))
    for k in range(0, len(lon), m):
        empty_db.execute(text("INSERT INTO ptc VALUES (:i, :x, :y)"),
                         {"i": list(range(k, min(k + m, len(lon)))), "x": lon[k:k + m].tolist(),
                          "y": lat[k:k + m].tolist()})
    if not create:
        empty_db.execute(text("CREATE TEMP TABLE resc (point_id bigint, grid_code varchar(14)) ON COMMIT DROP"))
    assert assign_points_setwise(empty_db, "ptc", "resc", method=method, create=create, points_chunked=True) == len(lon)
    rows = empty_db.execute(text("SELECT point_id, grid_code FROM resc")).all()
    assert len(rows) == len(lon) and dict(rows) == got
    for i, (x, y) in enumerate(zip(lon, lat)):
        assert got[i] == block_or_none(empty_db, x, y), (i, x, y)
    assert got[len(lon) - len(extra) + 4] == B11  # the shared vertex


def test_cell_index_shape(empty_db, world):
    idx = build_cell_index(empty_db)
    assert idx["cells"] >= 100 * 100  # 0.02° × 0.02° in cells of 0.0002°
    assert 0 < idx["edge_cells"] < idx["cells"] and idx["max_candidates"] == 4  # the shared vertex cell


def test_bulk_cells_with_non_numeric_codes_and_coarse_cells(empty_db, world):
    """Codes that are not plain integers take the block-number path; a coarse raster puts more of
    the points (and the shared vertex) in edge cells. Same answers as the single-point rule."""
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(113.617, 113.643, 800), rng.uniform(34.737, 34.763, 800)
    _pts(empty_db, "pts", list(zip(lon.tolist(), lat.tolist())))
    want = {i: block_or_none(empty_db, x, y) for i, (x, y) in enumerate(zip(lon, lat))}
    idx = build_cell_index(empty_db, cell_deg=0.003)
    assert idx["numeric_codes"] and idx["usable"]
    idx_text = build_cell_index(empty_db, cell_deg=0.003, numeric_codes=False)  # block-number lookup
    assert not idx_text["numeric_codes"] and idx["edge_cells"] == idx_text["edge_cells"]
    for k, ix in enumerate((idx, idx_text)):
        n = assign_points_setwise(empty_db, "pts", f"res{k}", index=ix, create=True)
        assert n == 800
        got = dict(empty_db.execute(text(f"SELECT point_id, grid_code FROM res{k}")).all())
        assert got == want


def _pts(session, name, pts):
    session.execute(text(f"CREATE TEMP TABLE {name} (id bigint, lon float8, lat float8) ON COMMIT DROP"))
    session.execute(text(f"INSERT INTO {name} SELECT * FROM unnest(CAST(:i AS bigint[]), CAST(:x AS float8[]), "
                         "CAST(:y AS float8[]))"),
                    {"i": list(range(len(pts))), "x": [p[0] for p in pts], "y": [p[1] for p in pts]})


def _assigned(session, points, result, **kw):
    assign_points_setwise(session, points, result, create=True, **kw)
    return dict(session.execute(text(f"SELECT point_id, grid_code FROM {result}")).all())


def test_cell_index_is_stored_reused_and_rebuilt_after_a_boundary_change(empty_db, world):
    """The index is kept in block_cell_index and looked up while the blocks stay the same; a boundary
    change (new grid versions) changes the fingerprint, so the next assignment builds a new index and
    follows the new boundary — and an assignment as of before the change still uses the old one."""
    first = build_cell_index(empty_db)
    assert first["built"] and first["build_ms"] >= 0
    again = build_cell_index(empty_db)
    assert not again["built"] and again["id"] == first["id"]
    assert empty_db.execute(text("SELECT count(*) FROM block_cell_index")).scalar_one() == 1
    before = dt.datetime.now(dt.UTC)
    pts = [(113.625, 34.751), (113.625, 34.7515), (113.625, 34.753), (113.635, 34.751)]
    _pts(empty_db, "pts", pts)
    assert _assigned(empty_db, "pts", "r0") == {0: B11, 1: B11, 2: B11, 3: B21}
    # planners move the B11/B12 edge north from 34.75 to 34.752 (old versions closed, new ones inserted)
    change = dt.datetime.now(dt.UTC)
    empty_db.execute(text("UPDATE grid SET valid_to = :t WHERE code IN (:a, :b) AND valid_to IS NULL"),
                     {"t": change, "a": B11, "b": B12})
    for code, parent, (x0, y0, x1, y1) in ((B11, C1, (113.62, 34.752, 113.63, 34.76)),
                                           (B12, C1, (113.62, 34.74, 113.63, 34.752))):
        empty_db.execute(text("""
            INSERT INTO grid (code, level, parent_code, name, geom, area_m2, valid_from)
            VALUES (:c, 3, :p, :c, ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), 1, :t)"""),
            {"c": code, "p": parent, "x0": x0, "y0": y0, "x1": x1, "y1": y1, "t": change})
    assert grid_fingerprint(empty_db) != first["fingerprint"]
    # a stale index description passed in is noticed and replaced
    got = _assigned(empty_db, "pts", "r1", index=first)
    assert got == {0: B12, 1: B12, 2: B11, 3: B21}
    for k, (x, y) in enumerate(pts):
        assert got[k] == locate_block(empty_db, x, y).grid_code
    assert empty_db.execute(text("SELECT count(*) FROM block_cell_index")).scalar_one() == 2
    # as of before the change: the old blocks, the old (still stored) index
    old = build_cell_index(empty_db, as_of=before)
    assert old["id"] == first["id"] and not old["built"]
    assert _assigned(empty_db, "pts", "r2", as_of=before) == {0: B11, 1: B11, 2: B11, 3: B21}


def test_cell_index_keeps_only_the_latest_few(empty_db, world):
    from geodata.grids.bulk import KEEP_INDEXES
    for k in range(KEEP_INDEXES + 3):
        build_cell_index(empty_db, cell_deg=0.001 + k * 0.0001)
    assert empty_db.execute(text("SELECT count(*) FROM block_cell_index")).scalar_one() == KEEP_INDEXES


def test_points_beyond_the_raster_and_an_unusable_index(empty_db, world, monkeypatch):
    """Points far outside the blocks subscript beyond the raster (NULL, no error); when the raster would
    be too large the index says so and the GiST join gives the same answers."""
    import geodata.grids.bulk as ba
    pts = [(0.0, 0.0), (-179.9, -89.9), (179.9, 89.9), (113.625, 34.755), (113.63, 34.75), (113.7, 34.75)]
    _pts(empty_db, "pts", pts)
    assert _assigned(empty_db, "pts", "r0") == {0: None, 1: None, 2: None, 3: B11, 4: B11, 5: None}
    monkeypatch.setattr(ba, "MAX_RASTER_CELLS", 1000)
    idx = build_cell_index(empty_db, cell_deg=0.0005)
    assert not idx["usable"]
    assert _assigned(empty_db, "pts", "r1", cell_deg=0.0005) == {0: None, 1: None, 2: None, 3: B11, 4: B11,
                                                                   5: None}
    # a raster that fits only with fewer sub-cells: ``fine`` is lowered (4 → 2), same answers
    monkeypatch.setattr(ba, "MAX_RASTER_CELLS", 20_000)
    idx = build_cell_index(empty_db, cell_deg=0.0004)
    assert idx["usable"] and idx["cell_deg"] == pytest.approx(0.0002) and idx["ni"] * idx["nj"] <= 20_000
    assert _assigned(empty_db, "pts", "r2", cell_deg=0.0004) == {0: None, 1: None, 2: None, 3: B11, 4: B11,
                                                                   5: None}


def test_an_index_in_use_is_not_pruned_by_another_transaction(server_url):
    """Session A looks an index up (and holds it); session B then builds enough other indexes to
    prune A's: B skips it instead of waiting or deleting it, and A's assignment still works."""
    import os

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from geodata.db.admin import drop_database
    from geodata.grids.bulk import KEEP_INDEXES
    from tests.world import scratch_database

    name = f"gridwatch_test_cellidx{os.getpid()}"
    engine = create_engine(scratch_database(server_url, name))
    try:
        with Session(engine) as s:
            seed(s)
            build_cell_index(s)
            s.commit()
        with Session(engine) as a, Session(engine) as b:
            held = build_cell_index(a)
            assert not held["built"]
            b.execute(text("SET LOCAL lock_timeout = '5s'"))
            for k in range(KEEP_INDEXES + 2):
                build_cell_index(b, cell_deg=0.001 + k * 0.0001)
            b.commit()
            _pts(a, "pts", [(113.625, 34.755), (113.7, 34.75)])
            assert _assigned(a, "pts", "r", index=held) == {0: B11, 1: None}
            a.commit()
        with Session(engine) as s:
            ids_now = set(s.execute(text("SELECT id FROM block_cell_index")).scalars())
            assert held["id"] in ids_now and len(ids_now) == KEEP_INDEXES + 1
            build_cell_index(s, cell_deg=0.005)  # a later build prunes it, now that nobody holds it
            s.commit()
            assert held["id"] not in set(s.execute(text("SELECT id FROM block_cell_index")).scalars())
    finally:
        engine.dispose()
        drop_database(server_url, name)
