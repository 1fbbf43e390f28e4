"""Real boundary files in and out (issue 2, §5 and §7): every format, CRS, field mapping, code
generation, each bad case with its own error and nothing written, export round trip, ogrinfo,
versioned replace, and the CLI. Real PostGIS (``empty_db`` is rolled back after each test)."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from shapely.geometry import LineString, Polygon, box
from sqlalchemy import func, select

from etl.grids_io import ImportOptions, ImportValidationError, export_grids, import_grids
from geodata.access.scope import Scope
from geodata.codes import level_of
from geodata.geometry import area_m2, gcj02_to_wgs84, to_metric_like, wgs84_to_gcj02
from geodata.grids import store
from geodata.models import Grid
from tests.world import TZ, run_gridwatch

UTC = dt.UTC
OGRINFO = shutil.which("ogrinfo")


# -- fixture geometry around 三官庙 (113.63E, 34.75N) ------------------------------------------
STREET = ("41010200300000", "三官庙街道", box(113.620, 34.740, 113.640, 34.760))
COMMUNITIES = [  # reading order: NW, NE, SW, SE
    ("41010200300100", "大学路社区", box(113.620, 34.750, 113.630, 34.760)),
    ("41010200300200", "兴华社区", box(113.630, 34.750, 113.640, 34.760)),
    ("41010200300300", "庆丰社区", box(113.620, 34.740, 113.630, 34.750)),
    ("41010200300400", "桃园社区", box(113.630, 34.740, 113.640, 34.750)),
]
BLOCKS = [  # inside 大学路社区, reading order
    ("41010200300101", "金海楼院", box(113.620, 34.755, 113.625, 34.760)),
    ("41010200300102", "碧沙岗楼院", box(113.625, 34.755, 113.630, 34.760)),
    ("41010200300103", "工人新村楼院", box(113.620, 34.750, 113.625, 34.755)),
    ("41010200300104", "铁路家属院", box(113.625, 34.750, 113.630, 34.755)),
]


def gdf(rows, *, code="code", name="name", crs=4326, extra=None) -> gpd.GeoDataFrame:
    """A GeoDataFrame from (code, name, geometry) rows, with chosen field names (None: omitted)."""
    data: dict = {}
    if code:
        data[code] = [r[0] for r in rows]
    if name:
        data[name] = [r[1] for r in rows]
    for k, v in (extra or {}).items():
        data[k] = v
    frame = gpd.GeoDataFrame(data, geometry=[r[2] for r in rows], crs=4326)
    return frame.to_crs(crs) if crs not in (4326, None) else (frame.set_crs(None, allow_override=True)
                                                              if crs is None else frame)


def write(frame: gpd.GeoDataFrame, path: Path, **kw) -> Path:
    pyogrio.write_dataframe(frame, path, **kw)
    return path


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Grid))


def load(session, tmp_path, rows, level, name="f.geojson", **opts):
    path = write(gdf(rows), tmp_path / name)
    return import_grids(session, path, ImportOptions(level=level, **opts))


def base(session, tmp_path, blocks=False, at=None):
    load(session, tmp_path, [STREET], 1, "street.geojson", at=at)
    load(session, tmp_path, COMMUNITIES, 2, "communities.geojson", at=at)
    if blocks:
        load(session, tmp_path, BLOCKS, 3, "blocks.geojson", at=at)


def metres_apart(a, b) -> float:
    """Hausdorff distance of two lon/lat geometries, in metres."""
    return to_metric_like(a, a).hausdorff_distance(to_metric_like(b, a))


def problems_of(session, path, **opts) -> list:
    before = count(session)
    with pytest.raises(ImportValidationError) as err:
        import_grids(session, path, ImportOptions(**opts))
    assert count(session) == before, "a failed import wrote rows"
    assert err.value.problems
    for p in err.value.problems:
        s = str(p)
        assert " / " in s and any("\u4e00" <= ch <= "\u9fff" for ch in s.split(" / ")[0]), s
    return err.value.problems


# -- good imports -------------------------------------------------------------------------------
def test_import_all_levels_geojson(empty_db, tmp_path):
    r1 = load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    r2 = load(empty_db, tmp_path, COMMUNITIES, 2, "c.geojson")
    r3 = load(empty_db, tmp_path, BLOCKS, 3, "b.geojson")
    assert (r1.inserted, r2.inserted, r3.inserted) == (1, 4, 4)
    assert r2.crs.startswith("EPSG:4326") and "import complete" in str(r2) and "导入完成" in str(r2)
    rows = {g.code: g for g in store.current_grids(empty_db)}
    assert set(rows) == {STREET[0]} | {c for c, _, _ in COMMUNITIES + BLOCKS}
    assert rows[STREET[0]].parent_code is None
    assert all(rows[c].parent_code == STREET[0] for c, _, _ in COMMUNITIES)
    assert all(rows[c].parent_code == COMMUNITIES[0][0] for c, _, _ in BLOCKS)
    assert rows[STREET[0]].name == "三官庙街道" and rows[STREET[0]].level == 1
    assert 3.9e6 < rows[STREET[0]].area_m2 < 4.2e6  # ~1.83 km × 2.22 km
    for code, _, geom in [STREET, *COMMUNITIES, *BLOCKS]:
        assert rows[code].geom.geom_type == "MultiPolygon"
        assert rows[code].geom.equals_exact(shapely.MultiPolygon([geom]), 1e-12) or \
            rows[code].geom.symmetric_difference(geom).area < 1e-16
    assert store.current_grids(empty_db, 3, codes=[BLOCKS[0][0]])[0].name == "金海楼院"


FORMATS = {"geojson": ("GeoJSON", ".geojson"), "gpkg": ("GPKG", ".gpkg"), "shp": ("ESRI Shapefile", ".shp")}


@pytest.mark.parametrize("crs", [4326, 4490, 4547, 4526])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_import_formats_and_crs(empty_db, tmp_path, fmt, crs):
    driver, ext = FORMATS[fmt]
    s = write(gdf([STREET], crs=crs), tmp_path / f"street{ext}", driver=driver)
    c = write(gdf(COMMUNITIES, crs=crs), tmp_path / f"communities{ext}", driver=driver)
    import_grids(empty_db, s, ImportOptions(level=1))
    report = import_grids(empty_db, c, ImportOptions(level=2))
    assert report.inserted == 4 and report.crs.startswith(f"EPSG:{crs}")
    rows = {g.code: g for g in store.current_grids(empty_db, 2)}
    for code, name, truth in COMMUNITIES:
        assert rows[code].name == name  # Chinese names survive every format
        assert metres_apart(rows[code].geom, truth) < 0.01  # within a centimetre
        assert abs(rows[code].area_m2 - area_m2(truth)) / area_m2(truth) < 1e-4


def test_gpkg_layer_choice(empty_db, tmp_path):
    path = tmp_path / "zz.gpkg"
    write(gdf([STREET], crs=4490), path, layer="street")
    write(gdf(COMMUNITIES, crs=4490), path, layer="community", append=False)
    probs = problems_of(empty_db, path, level=1)
    assert [p.kind for p in probs] == ["file"] and "--layer" in str(probs[0])
    assert "street" in str(probs[0]) and "community" in str(probs[0])
    import_grids(empty_db, path, ImportOptions(level=1, layer="street"))
    assert import_grids(empty_db, path, ImportOptions(level=2, layer="community")).inserted == 4
    probs = problems_of(empty_db, path, level=2, layer="nope")
    assert probs[0].kind == "file" and "nope" in str(probs[0])


def test_gpkg_single_spatial_layer_is_chosen(empty_db, tmp_path):
    import pandas as pd

    path = write(gdf([STREET], crs=4490), tmp_path / "qgis.gpkg", layer="jiedao")
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["x"]}), path, layer="layer_styles", append=True)
    assert len(pyogrio.list_layers(path)) == 2
    assert import_grids(empty_db, path, ImportOptions(level=1)).inserted == 1


def _gcj(geom):
    return shapely.transform(geom, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1])))


def test_gcj02_traced_file_lands_on_truth(empty_db, tmp_path):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    traced = [(c, n, _gcj(g)) for c, n, g in COMMUNITIES]
    offset = metres_apart(traced[0][2], COMMUNITIES[0][2])
    assert 100 < offset < 1000  # GCJ-02 is hundreds of metres off
    path = write(gdf(traced), tmp_path / "amap.geojson")
    # taken at face value it leaves the street: a clear, specific error
    probs = problems_of(empty_db, path, level=2)
    assert {p.kind for p in probs} <= {"child_outside_parent", "overlap", "gap"}
    assert "child_outside_parent" in {p.kind for p in probs}
    report = import_grids(empty_db, path, ImportOptions(level=2, gcj02=True))
    assert report.gcj02 and "GCJ-02" in str(report)
    rows = {g.code: g for g in store.current_grids(empty_db, 2)}
    for code, _, truth in COMMUNITIES:
        assert metres_apart(rows[code].geom, truth) < 0.01


def test_gcj02_inverse_is_exact_enough():
    lon, lat = wgs84_to_gcj02(113.63, 34.75)
    back = gcj02_to_wgs84(lon, lat)
    assert abs(float(back[0]) - 113.63) < 1e-8 and abs(float(back[1]) - 34.75) < 1e-8


def test_no_crs_lonlat_assumed_with_note(empty_db, tmp_path):
    path = write(gdf([STREET]), tmp_path / "nocrs.shp")
    path.with_suffix(".prj").unlink()
    report = import_grids(empty_db, path, ImportOptions(level=1))
    assert report.crs.startswith("EPSG:4326")
    assert any("EPSG:4326" in en and "no CRS" in en for _, en in report.notes)
    assert "未声明坐标系" in str(report)


def test_no_crs_projected_needs_source_crs(empty_db, tmp_path):
    path = write(gdf([STREET], crs=4547), tmp_path / "proj.shp")
    path.with_suffix(".prj").unlink()
    probs = problems_of(empty_db, path, level=1)
    assert [p.kind for p in probs] == ["file"] and "--crs" in str(probs[0])
    report = import_grids(empty_db, path, ImportOptions(level=1, source_crs="EPSG:4547"))
    assert report.crs.startswith("EPSG:4547")
    assert metres_apart(store.current_grids(empty_db, 1)[0].geom, STREET[2]) < 0.01


def test_source_crs_overrides_wrong_prj(empty_db, tmp_path):
    path = write(gdf([STREET], crs=4547).set_crs(3857, allow_override=True), tmp_path / "wrong.gpkg")
    report = import_grids(empty_db, path, ImportOptions(level=1, source_crs="EPSG:4547"))
    assert any("--crs" in en for _, en in report.notes)
    assert metres_apart(store.current_grids(empty_db, 1)[0].geom, STREET[2]) < 0.01


# -- field mapping and encodings ----------------------------------------------------------------
@pytest.mark.parametrize("code_f,name_f,ext", [("WGBM", "WGMC", ".shp"), ("网格编码", "网格名称", ".geojson"),
                                               ("GRID_CODE", "NAME", ".gpkg")])
def test_field_autodetection(empty_db, tmp_path, code_f, name_f, ext):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    path = write(gdf(COMMUNITIES, code=code_f, name=name_f, extra={"AREA": [1.0] * 4}), tmp_path / f"c{ext}")
    report = import_grids(empty_db, path, ImportOptions(level=2))
    assert report.fields["code"] == code_f and report.fields["name"] == name_f
    assert {(g.code, g.name) for g in store.current_grids(empty_db, 2)} == {(c, n) for c, n, _ in COMMUNITIES}


def test_field_options_and_parent_field(empty_db, tmp_path):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    path = write(gdf(COMMUNITIES, code="BH", name="SQMC", extra={"SJ": [STREET[0]] * 4, "名称x": ["x"] * 4}),
                 tmp_path / "c.geojson")
    probs = problems_of(empty_db, path, level=2)  # nothing recognisable
    assert {p.kind for p in probs} == {"file"}
    assert any("--name-field" in str(p) for p in probs) and any("--code-field" in str(p) for p in probs)
    report = import_grids(empty_db, path, ImportOptions(level=2, code_field="BH", name_field="sqmc",
                                                        parent_field="SJ"))
    assert report.fields == {"code": "BH", "name": "SQMC", "parent": "SJ", "name_en": None}
    assert report.inserted == 4
    probs = problems_of(empty_db, path, level=2, code_field="BM", name_field="SQMC")
    assert probs[0].kind == "file" and "BM" in str(probs[0]) and "SQMC" in str(probs[0])


def test_numeric_code_field(empty_db, tmp_path):
    frame = gdf([STREET], code=None)
    frame["code"] = np.array([int(STREET[0])], dtype="int64")
    path = write(frame, tmp_path / "num.shp")
    import_grids(empty_db, path, ImportOptions(level=1))
    assert store.current_grids(empty_db, 1)[0].code == STREET[0]


def test_gbk_shapefile_without_cpg(empty_db, tmp_path):
    path = write(gdf([STREET]), tmp_path / "gbk.shp", encoding="GBK")
    path.with_suffix(".cpg").unlink()
    report = import_grids(empty_db, path, ImportOptions(level=1))
    assert store.current_grids(empty_db, 1)[0].name == "三官庙街道"
    assert report.encoding == "GB18030" and any("GBK" in en for _, en in report.notes)


def test_utf8_shapefile_without_cpg(empty_db, tmp_path):
    path = write(gdf([STREET]), tmp_path / "u8.shp")
    path.with_suffix(".cpg").unlink()
    report = import_grids(empty_db, path, ImportOptions(level=1))
    assert store.current_grids(empty_db, 1)[0].name == "三官庙街道" and report.encoding == "UTF-8"


# -- code generation ----------------------------------------------------------------------------
def test_generate_codes_all_levels(empty_db, tmp_path):
    s = write(gdf([STREET], code=None), tmp_path / "s.geojson")
    r1 = import_grids(empty_db, s, ImportOptions(level=1, county_code="410102", street_code="003"))
    assert r1.generated == [(1, "三官庙街道", "41010200300000")]
    shuffled = [COMMUNITIES[i] for i in (3, 1, 2, 0)]  # file order ≠ reading order
    c = write(gdf(shuffled, code=None), tmp_path / "c.geojson")
    r2 = import_grids(empty_db, c, ImportOptions(level=2, county_code="410102"))
    # numbered north→south, west→east: the same codes as the hand-made fixture
    got = {name: code for _, name, code in r2.generated}
    assert got == {n: code for code, n, _ in COMMUNITIES}
    assert "41010200300100" in str(r2) and "generated codes" in str(r2) and "自动生成编码" in str(r2)
    b = write(gdf(list(reversed(BLOCKS)), code=None), tmp_path / "b.geojson")
    r3 = import_grids(empty_db, b, ImportOptions(level=3, county_code="410102"))
    assert {name: code for _, name, code in r3.generated} == {n: code for code, n, _ in BLOCKS}
    codes = [g.code for g in store.current_grids(empty_db)]
    assert len(codes) == len(set(codes)) == 9
    for g in store.current_grids(empty_db):
        assert level_of(g.code) == g.level


def test_generated_codes_skip_used_ones(empty_db, tmp_path):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    # 002 was used once (a closed version): never handed out again
    t0 = dt.datetime(2020, 1, 1, tzinfo=UTC)
    store.insert_grids(empty_db, [store.NewGrid("41010200300200", 2, STREET[0], "旧社区",
                                                box(113.62, 34.74, 113.63, 34.75))], at=t0)
    store.close_versions(empty_db, ["41010200300200"], at=t0 + dt.timedelta(days=30))
    rows = [(None, n, g) for _, n, g in COMMUNITIES]
    rows[3] = ("41010200300100", rows[3][1], rows[3][2])  # the file itself uses 001 for 桃园社区
    path = write(gdf(rows), tmp_path / "c.geojson")
    report = import_grids(empty_db, path, ImportOptions(level=2, county_code="410102"))
    got = {name: code for _, name, code in report.generated}
    assert got == {"大学路社区": "41010200300300", "兴华社区": "41010200300400", "庆丰社区": "41010200300500"}
    current = {g.name: g.code for g in store.current_grids(empty_db, 2)}
    assert current["桃园社区"] == "41010200300100" and len(set(current.values())) == 4


def test_level2_street_code_chooses_parent(empty_db, tmp_path):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    path = write(gdf(COMMUNITIES, code=None), tmp_path / "c.geojson")
    r = import_grids(empty_db, path, ImportOptions(level=2, county_code="410102", street_code="3"))
    assert sorted(c for _, _, c in r.generated) == [c for c, _, _ in COMMUNITIES]
    probs = problems_of(empty_db, path, level=2, county_code="410102", street_code="7")
    assert {p.kind for p in probs} == {"missing_parent"} and len(probs) == 4
    assert all("41010200700000" in str(p) for p in probs)


# -- bad cases: each its own error, naming the feature; nothing written ---------------------------
def bowtie():
    return Polygon([(113.630, 34.750), (113.640, 34.760), (113.640, 34.750), (113.630, 34.760)])


def _replace(i, code=..., name=..., geom=...):
    rows = list(COMMUNITIES)
    c, n, g = rows[i]
    rows[i] = (c if code is ... else code, n if name is ... else name, g if geom is ... else geom)
    return rows


BAD = {
    # kind: (rows, options, expected feature numbers, text in the message)
    "invalid_geometry": (_replace(1, geom=bowtie()), {}, [2], "Self-intersection"),
    "non_polygon": (_replace(1, geom=LineString([(113.63, 34.75), (113.64, 34.76)])), {}, [2], "LineString"),
    "empty_geometry": (_replace(1, geom=None), {}, [2], "empty geometry"),
    "out_of_range": (_replace(1, geom=box(313.63, 34.75, 313.64, 34.76)), {}, [2], "out of lon/lat range"),
    "outside_china": (_replace(1, geom=box(13.63, 34.75, 13.64, 34.76)), {}, [2], "outside China"),
    "missing_code": (_replace(1, code=None), {}, [2], "missing grid code"),
    "bad_code": (_replace(1, code="4101020030020X"), {}, [2], "malformed grid code"),
    "wrong_level": (_replace(1, code="41010200300201"), {}, [2], "block (level 3) code"),
    "wrong_county": (COMMUNITIES, {"county_code": "410103"}, [1, 2, 3, 4], "not in county 410103"),
    "duplicate_code": (_replace(1, code="41010200300100"), {}, [2], "repeats feature #1"),
    "missing_name": (_replace(1, name=" "), {}, [2], "missing grid name"),
    "duplicate_name": (_replace(1, name="大学路社区"), {}, [2], "repeats feature #1"),
    "child_outside_parent": (_replace(1, geom=box(113.630, 34.750, 113.641, 34.760)), {}, [2],
                             "outside its parent grid"),
    "overlap": (_replace(0, geom=box(113.620, 34.750, 113.6305, 34.760)), {}, [1], "overlaps feature #2"),
    "gap": (_replace(0, geom=box(113.620, 34.750, 113.6295, 34.760)), {}, [1], "a gap of"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_file_gives_its_own_error(empty_db, tmp_path, kind):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    rows, opts, features, text = BAD[kind]
    path = write(gdf(rows), tmp_path / "bad.geojson")
    probs = problems_of(empty_db, path, level=2, **opts)
    assert {p.kind for p in probs} == {kind}, [str(p) for p in probs]
    assert sorted(p.feature for p in probs) == features
    for p in probs:
        s = str(p)
        assert text in s, s
        assert f"feature #{p.feature}" in s and f"第{p.feature}个要素" in s
        name = rows[p.feature - 1][1]
        if name and name.strip():
            assert name in s  # the feature is named
        assert "位置" in s or "范围" in s or kind in ("missing_code", "bad_code", "wrong_level",
                                                      "wrong_county", "duplicate_code", "missing_name",
                                                      "duplicate_name", "empty_geometry")
    assert count(empty_db) == 1


def test_overlap_and_gap_name_both_features_and_where(empty_db, tmp_path):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    path = write(gdf(BAD["gap"][0]), tmp_path / "gap.geojson")
    (p,) = problems_of(empty_db, path, level=2)
    assert "大学路社区" in str(p) and "兴华社区" in str(p)
    assert 113.6295 < p.where[0] < 113.630 and 34.750 < p.where[1] < 34.760
    area = to_metric_like(box(113.6295, 34.750, 113.630, 34.760), STREET[2]).area
    assert f"{area:.1f}" in str(p)
    path = write(gdf(BAD["overlap"][0]), tmp_path / "ov.geojson")
    (p,) = problems_of(empty_db, path, level=2)
    assert "大学路社区" in str(p) and "兴华社区" in str(p) and 113.630 < p.where[0] < 113.6305


def test_tolerance_in_metres(empty_db, tmp_path):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    # a 0.5 m wide, 1.1 km long sliver between two communities (0.5 m ≈ 5.5e-6° of longitude here)
    sliver = 0.5 / (111_320 * np.cos(np.radians(34.755)))
    rows = _replace(0, geom=box(113.620, 34.750, 113.630 - sliver, 34.760))
    path = write(gdf(rows), tmp_path / "sliver.geojson")
    probs = problems_of(empty_db, path, level=2, tolerance_m=0.2)
    assert [p.kind for p in probs] == ["gap"]
    assert import_grids(empty_db, path, ImportOptions(level=2, tolerance_m=1.0)).inserted == 4


def test_every_problem_is_collected(empty_db, tmp_path):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    rows = list(COMMUNITIES)
    rows[1] = (rows[1][0], rows[1][1], bowtie())
    rows[2] = (rows[2][0], "", rows[2][2])
    rows[3] = ("41010200300100", rows[3][1], rows[3][2])
    path = write(gdf(rows), tmp_path / "many.geojson")
    probs = problems_of(empty_db, path, level=2)
    assert {(p.kind, p.feature) for p in probs} == {("invalid_geometry", 2), ("missing_name", 3),
                                                     ("duplicate_code", 4)}


def test_code_exists_unless_replace(empty_db, tmp_path):
    base(empty_db, tmp_path)
    path = write(gdf(COMMUNITIES), tmp_path / "again.geojson")
    probs = problems_of(empty_db, path, level=2)
    assert {p.kind for p in probs} == {"code_exists"} and len(probs) == 4
    assert "--replace" in str(probs[0]) and "大学路社区" in str(probs[0])


def test_missing_parent(empty_db, tmp_path):
    path = write(gdf(COMMUNITIES), tmp_path / "orphans.geojson")
    probs = problems_of(empty_db, path, level=2)
    assert {p.kind for p in probs} == {"missing_parent"} and len(probs) == 4
    assert "41010200300000" in str(probs[0])
    # no codes: placed spatially, and nothing contains them
    path = write(gdf(COMMUNITIES, code=None), tmp_path / "orphans2.geojson")
    probs = problems_of(empty_db, path, level=2, county_code="410102")
    assert {p.kind for p in probs} == {"missing_parent"} and len(probs) == 4
    assert "lies in no current street (level 1) grid" in str(probs[0])


def test_code_parent_mismatch(empty_db, tmp_path):
    load(empty_db, tmp_path, [STREET], 1, "s.geojson")
    rows = _replace(1, code="41010200400200")
    path = write(gdf(rows, extra={"parent": [STREET[0]] * 4}), tmp_path / "mm.geojson")
    probs = problems_of(empty_db, path, level=2)
    assert [(p.kind, p.feature) for p in probs] == [("code_parent_mismatch", 2)]


def test_overlapping_streets(empty_db, tmp_path):
    other = ("41010200400000", "绿东村街道", box(113.639, 34.740, 113.660, 34.760))
    path = write(gdf([STREET, other]), tmp_path / "streets.geojson")
    probs = problems_of(empty_db, path, level=1)
    assert [(p.kind, p.feature) for p in probs] == [("overlap", 1)]
    assert "绿东村街道" in str(probs[0])


def test_unreadable_file(empty_db, tmp_path):
    path = tmp_path / "junk.geojson"
    path.write_text("not a geojson", encoding="utf-8")
    probs = problems_of(empty_db, path, level=1)
    assert probs[0].kind == "file" and "junk.geojson" in str(probs[0])


# -- replace: versions, never deleted -----------------------------------------------------------
T0 = dt.datetime(2025, 1, 1, tzinfo=UTC)
T1 = dt.datetime(2026, 1, 1, tzinfo=UTC)
MOVED = [  # the NW/NE border moves 0.001° east
    ("41010200300100", "大学路社区", box(113.620, 34.750, 113.631, 34.760)),
    ("41010200300200", "兴华社区", box(113.631, 34.750, 113.640, 34.760)),
]


def test_replace_closes_old_versions_and_as_of_sees_them(empty_db, tmp_path):
    base(empty_db, tmp_path, at=T0)
    path = write(gdf(MOVED + COMMUNITIES[2:]), tmp_path / "moved.geojson")  # the whole street again
    probs = problems_of(empty_db, path, level=2, at=T1)
    assert {p.kind for p in probs} == {"code_exists"} and len(probs) == 4
    report = import_grids(empty_db, path, ImportOptions(level=2, replace=True, at=T1))
    assert report.replaced == ["41010200300100", "41010200300200"] and report.inserted == 2
    assert report.unchanged == ["41010200300300", "41010200300400"] and "unchanged" in str(report)
    assert count(empty_db) == 7  # 1 street + 4 communities + 2 new versions: nothing deleted
    now = {g.code: g for g in store.current_grids(empty_db, 2)}
    assert len(now) == 4 and metres_apart(now["41010200300100"].geom, MOVED[0][2]) < 1e-6
    before = {g.code: g for g in store.current_grids(empty_db, 2, as_of=T1 - dt.timedelta(seconds=1))}
    assert len(before) == 4 and metres_apart(before["41010200300100"].geom, COMMUNITIES[0][2]) < 1e-6
    assert before["41010200300100"].valid_to == T1
    hist = store.grid_history(empty_db, "41010200300100")
    assert [(h.valid_from, h.valid_to) for h in hist] == [(T0, T1), (T1, None)]
    assert store.count_grids(empty_db, as_of=T0 - dt.timedelta(days=1)) == 0
    # a naive time is business time (tz; Asia/Shanghai, UTC+8): 2026-01-01 07:59 there is still 2025 in UTC
    assert store.current_grids(empty_db, 2, as_of=dt.datetime(2026, 1, 1, 7, 59), tz=TZ,
                               codes=["41010200300100"])[0].valid_to == T1
    assert store.current_grids(empty_db, 2, as_of=dt.datetime(2026, 1, 1, 8, 1), tz=TZ,
                               codes=["41010200300100"])[0].valid_to is None
    with pytest.raises(ValueError):  # without the zone a naive time means nothing
        store.current_grids(empty_db, 2, as_of=dt.datetime(2026, 1, 1, 8, 1))


def test_replace_cannot_predate_current_version(empty_db, tmp_path):
    base(empty_db, tmp_path, at=T1)
    path = write(gdf(MOVED), tmp_path / "moved.geojson")
    probs = problems_of(empty_db, path, level=2, replace=True, at=T0)
    assert {p.code for p in probs} == {"41010200300100", "41010200300200"}
    assert all("cannot replace" in str(p) for p in probs)


def test_replace_must_keep_stored_children_inside(empty_db, tmp_path):
    base(empty_db, tmp_path, blocks=True, at=T0)
    path = write(gdf(MOVED), tmp_path / "moved.geojson")
    probs = problems_of(empty_db, path, level=2, replace=True, at=T1)
    # 大学路社区 grows east: its stored blocks no longer cover it
    assert [p.kind for p in probs] == ["gap"]
    assert probs[0].feature is None and "碧沙岗楼院" in str(probs[0]) and "stored grid" in str(probs[0])
    shrunk = [("41010200300100", "大学路社区", box(113.620, 34.750, 113.629, 34.760)),
              ("41010200300200", "兴华社区", box(113.629, 34.750, 113.640, 34.760))]
    probs = problems_of(empty_db, write(gdf(shrunk), tmp_path / "shrunk.geojson"), level=2, replace=True, at=T1)
    assert {p.kind for p in probs} == {"child_outside_parent"}
    assert {p.code for p in probs} == {"41010200300102", "41010200300104"}


# -- export -------------------------------------------------------------------------------------
def _ogrinfo(path: Path, *args: str) -> str:
    # `make test` installs gdal-bin (tools/system-deps test): a missing ogrinfo fails, never skips
    assert OGRINFO is not None, "ogrinfo is not installed; run `make test` (it installs gdal-bin)"
    out = subprocess.run([OGRINFO, *args, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_export_round_trip(empty_db, tmp_path, fmt):
    _, ext = FORMATS[fmt]
    outer = empty_db.begin_nested()
    base(empty_db, tmp_path, blocks=True)
    original = {g.code: g for g in store.current_grids(empty_db)}
    files = {lvl: tmp_path / f"level{lvl}{ext}" for lvl in (1, 2, 3)}
    for lvl, path in files.items():
        assert export_grids(empty_db, path, level=lvl) == {1: 1, 2: 4, 3: 4}[lvl]
    everything = tmp_path / f"all{ext}"
    assert export_grids(empty_db, everything) == 9
    outer.rollback()
    assert count(empty_db) == 0  # an empty database again

    info = _ogrinfo(everything, "-al", "-so")
    assert "Feature Count: 9" in info
    for f in ("code", "name", "name_en", "level", "parent", "area_m2", "valid_from", "valid_to"):
        assert f"{f}:" in info
    assert "MultiPolygon" in info or "Polygon" in info
    if fmt == "shp":
        assert everything.with_suffix(".cpg").read_text().strip().upper() in ("UTF-8", "UTF8")
        full = _ogrinfo(everything, "-al")
        for code, name, _ in [STREET, *COMMUNITIES, *BLOCKS]:
            assert name in full and code in full

    for lvl, path in files.items():
        import_grids(empty_db, path, ImportOptions(level=lvl))
    again = {g.code: g for g in store.current_grids(empty_db)}
    assert set(again) == set(original)
    for code, g in original.items():
        h = again[code]
        assert (h.name, h.level, h.parent_code, h.name_en) == (g.name, g.level, g.parent_code, g.name_en)
        assert g.geom.hausdorff_distance(h.geom) < 1e-9
        assert abs(h.area_m2 - g.area_m2) / g.area_m2 < 1e-4


def test_export_as_of_and_fields(empty_db, tmp_path):
    base(empty_db, tmp_path, at=T0)
    import_grids(empty_db, write(gdf(MOVED), tmp_path / "m.geojson"), ImportOptions(level=2, replace=True, at=T1))
    old = tmp_path / "old.gpkg"
    assert export_grids(empty_db, old, level=2, as_of=T1 - dt.timedelta(days=1)) == 4
    frame = pyogrio.read_dataframe(old)
    assert list(frame.columns[:8]) == ["code", "name", "name_en", "level", "parent", "area_m2",
                                       "valid_from", "valid_to"]
    row = frame.set_index("code").loc["41010200300100"]
    assert row["parent"] == STREET[0] and int(row["level"]) == 2
    assert metres_apart(row.geometry, COMMUNITIES[0][2]) < 1e-6
    assert "Feature Count: 4" in _ogrinfo(old, "-al", "-so")
    shp = tmp_path / "now.shp"
    export_grids(empty_db, shp, level=2)
    dbf_fields = pyogrio.read_info(shp)["fields"]
    assert all(len(f) <= 10 for f in dbf_fields)
    geo = tmp_path / "now.geojson"
    export_grids(empty_db, geo)
    text = geo.read_text(encoding="utf-8")
    assert '"crs"' not in text and "大学路社区" in text  # RFC 7946: no crs member, UTF-8
    scoped = tmp_path / "scoped.geojson"
    assert export_grids(empty_db, scoped, scope=Scope.grids("41010200300100")) == 1
    assert export_grids(empty_db, scoped, scope=Scope.grids(STREET[0])) == 5
    with pytest.raises(ValueError, match="unsupported export format"):
        export_grids(empty_db, tmp_path / "x.kml")


# -- CLI ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_db_url(server_url):
    from geodata.db.admin import drop_database
    from tests.conftest import SUFFIX, _fresh_database

    name = f"gridwatch_test_cli{SUFFIX}"
    url = _fresh_database(server_url, name)
    yield url
    drop_database(url)


def test_cli_import_errors_and_export(cli_db_url, tmp_path):
    s = write(gdf([STREET], crs=4547), tmp_path / "street.shp")
    out = run_gridwatch(cli_db_url, "import-grids", str(s), "--level", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "导入完成" in out.stdout and "EPSG:4547" in out.stdout

    rows = list(COMMUNITIES)
    rows[1] = (rows[1][0], rows[1][1], bowtie())
    rows[2] = (rows[2][0], rows[2][1], box(113.620, 34.740, 113.6305, 34.7501))
    bad = write(gdf(rows), tmp_path / "bad.geojson")
    out = run_gridwatch(cli_db_url, "import-grids", str(bad), "--level", "2")
    assert out.returncode == 2, out.stdout + out.stderr
    text = out.stdout
    assert "导入失败，未写入任何数据" in text and "import failed, nothing written" in text
    assert "第2个要素「兴华社区」" in text and "Self-intersection" in text
    assert "庆丰社区" in text and "overlaps" in text and "重叠" in text

    good = write(gdf(COMMUNITIES), tmp_path / "good.geojson")
    out = run_gridwatch(cli_db_url, "import-grids", str(good), "--level", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    exported = tmp_path / "out.shp"
    out = run_gridwatch(cli_db_url, "export-grids", str(exported))
    assert out.returncode == 0 and "5" in out.stdout, out.stdout + out.stderr
    assert "三官庙街道" in _ogrinfo(exported, "-al")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_demo_dataset_round_trip(db, empty_db, tmp_path, fmt):
    """The 三官庙 demo grids (1/14/59, irregular shapes) survive export → import with zero tolerance."""
    _, ext = FORMATS[fmt]
    original = {g.code: g for g in store.current_grids(db)}
    for lvl in (1, 2, 3):
        export_grids(db, tmp_path / f"demo{lvl}{ext}", level=lvl)
    for lvl in (1, 2, 3):
        import_grids(empty_db, tmp_path / f"demo{lvl}{ext}", ImportOptions(level=lvl, tolerance_m=0.0))
    again = {g.code: g for g in store.current_grids(empty_db)}
    assert again.keys() == original.keys() and len(again) == 1 + 14 + 59
    for code, g in original.items():
        assert (again[code].name, again[code].name_en, again[code].parent_code) == \
            (g.name, g.name_en, g.parent_code)
        assert g.geom.hausdorff_distance(again[code].geom) < 1e-9
    # the same file again with replace: nothing changed, no new versions
    r = import_grids(empty_db, tmp_path / f"demo3{ext}", ImportOptions(level=3, replace=True))
    assert r.inserted == 0 and len(r.unchanged) == 59


# -- DataV GeoAtlas files (adcode / name / parent as {"adcode": …}) ------------------------------
def _datav(path: Path, features: list[tuple[str | int, str, object, Polygon]]) -> Path:
    """A file as DataV GeoAtlas writes it: adcode (a number), name, level, parent {"adcode": …}."""
    import json

    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature",
         "properties": {"adcode": int(code), "name": name, "level": "street", "childrenNum": 0,
                        "parent": {"adcode": int(parent)} if parent is not None else None,
                        "center": list(geom.centroid.coords[0])},
         "geometry": shapely.geometry.mapping(shapely.MultiPolygon([geom]))}
        for code, name, parent, geom in features]}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def test_datav_geoatlas_fields_are_recognised(empty_db, tmp_path):
    # 9-digit street and 12-digit community division codes are the prefixes of the grid codes
    street = _datav(tmp_path / "street.json", [(STREET[0][:9], STREET[1], 410102, STREET[2])])
    r1 = import_grids(empty_db, street, ImportOptions(level=1))
    assert r1.fields["code"] == "adcode" and r1.codes == [STREET[0]]
    comms = _datav(tmp_path / "comms.json", [(c[:12], n, STREET[0][:9], g) for c, n, g in COMMUNITIES])
    r2 = import_grids(empty_db, comms, ImportOptions(level=2))
    assert r2.fields == {"code": "adcode", "name": "name", "parent": "parent", "name_en": None}
    assert sorted(r2.codes) == [c for c, _, _ in COMMUNITIES]
    assert any("补零" in zh and "padded" in en for zh, en in r2.notes)
    rows = {g.code: g for g in store.current_grids(empty_db, 2)}
    assert all(rows[c].parent_code == STREET[0] for c, _, _ in COMMUNITIES)


def test_datav_county_adcode_says_which_option_to_use(empty_db, tmp_path):
    # a county-level adcode (6 digits) is no grid code: the message names --county-code with it
    path = _datav(tmp_path / "county.json", [(410102, STREET[1], 410100, STREET[2])])
    probs = problems_of(empty_db, path, level=1)
    text = " ".join(str(p) for p in probs)
    assert "--county-code 410102" in text and "adcode" in text
    # and with that option the code is generated by the coding rule
    r = import_grids(empty_db, path, ImportOptions(level=1, county_code="410102", street_code="3"))
    assert r.codes == [STREET[0]]
