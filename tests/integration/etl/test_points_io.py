"""``gridwatch assign-points``: a file of points → block grids, set-wise in PostGIS (real PostGIS)."""
from __future__ import annotations

import csv
import os

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from etl.points_io import AssignPointsError, assign_points_file, read_points
from geodata.geometry import wgs84_to_gcj02
from tests.world import B11, B12, B21, B22, C1, C2, block_or_none, run_gridwatch, seed


@pytest.fixture
def world(empty_db):
    return seed(empty_db)


def _write_csv(path, header, rows, encoding="utf-8"):
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _read_out(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_points_get_their_block_and_community(empty_db, world, tmp_path):
    rng = np.random.default_rng(11)
    pts = [(113.625, 34.755), (113.63, 34.75), (113.635, 34.745), (113.7, 34.75)]  # inside, vertex, inside, outside
    pts += [tuple(p) for p in np.column_stack([rng.uniform(113.615, 113.645, 300), rng.uniform(34.735, 34.765, 300)])]
    src = _write_csv(tmp_path / "in.csv", ["编号", "名称", "经度", "纬度"],
                     [(f"P{k}", f"点{k}", repr(float(x)), repr(float(y))) for k, (x, y) in enumerate(pts)])
    report = assign_points_file(empty_db, src, tmp_path / "out.csv")
    out = _read_out(tmp_path / "out.csv")
    assert [r["编号"] for r in out] == [f"P{k}" for k in range(len(pts))]   # input order and columns kept
    assert out[0]["grid_code"] == B11 and out[0]["grid_name"] == "西社区一网格"
    assert out[0]["community_code"] == C1 and out[0]["community_name"] == "西社区"
    assert out[1]["grid_code"] == B11                                       # the shared vertex: lowest code
    assert out[2]["grid_code"] == B22 and out[2]["community_code"] == C2
    assert out[3]["grid_code"] == "" and out[3]["community_name"] == ""
    for r, (x, y) in zip(out, pts):
        assert r["grid_code"] == (block_or_none(empty_db, x, y) or ""), (r, x, y)
    assert report.points == len(pts) and report.assigned + report.outside == len(pts)
    assert report.assigned == sum(1 for r in out if r["grid_code"]) and report.blocks == 4
    assert "WGS84" in str(report) and "outside every grid" in str(report)


def test_gcj02_gbk_csv_and_named_columns(empty_db, world, tmp_path):
    x, y = wgs84_to_gcj02(np.array([113.625, 113.635]), np.array([34.745, 34.755]))
    src = _write_csv(tmp_path / "gbk.csv", ["名称", "X坐标", "Y坐标"],
                     [("一号", repr(float(x[0])), repr(float(y[0]))), ("二号", repr(float(x[1])), repr(float(y[1])))],
                     encoding="gbk")
    assign_points_file(empty_db, src, tmp_path / "out.csv", lon="X坐标", lat="Y坐标", crs="gcj02")
    out = _read_out(tmp_path / "out.csv")
    assert [r["名称"] for r in out] == ["一号", "二号"]
    assert [r["grid_code"] for r in out] == [B12, B21]
    # the same GCJ-02 numbers read as WGS84 land ~500 m off: outside the test street
    assign_points_file(empty_db, src, tmp_path / "raw.csv", lon="X坐标", lat="Y坐标")
    assert [r["grid_code"] for r in _read_out(tmp_path / "raw.csv")] != [B12, B21]


def test_point_layer_in_a_projected_crs(empty_db, world, tmp_path):
    pts = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[Point(113.625, 34.755), Point(113.635, 34.745)],
                           crs=4326).to_crs(4547)   # CGCS2000 / 3-degree Gauss-Kruger CM 114E
    src = tmp_path / "pts.gpkg"
    pts.to_file(src, driver="GPKG")
    report = assign_points_file(empty_db, src, tmp_path / "out.csv")
    assert [r["grid_code"] for r in _read_out(tmp_path / "out.csv")] == [B11, B22]
    assert "4547" in report.crs


def test_every_bad_row_is_listed_and_nothing_is_written(empty_db, world, tmp_path):
    src = _write_csv(tmp_path / "bad.csv", ["lon", "lat"],
                     [("113.625", "34.755"), ("", "34.7"), ("abc", "34.7"), ("34.75", "113.63"), ("200", "95")])
    dst = tmp_path / "out.csv"
    with pytest.raises(AssignPointsError) as err:
        assign_points_file(empty_db, src, dst)
    problems = err.value.problems
    assert len(problems) == 4
    assert problems[0].startswith("行 line 3:") and "not numbers" in problems[0]
    assert problems[1].startswith("行 line 4:")
    assert "行 line 5:" in problems[2] and "swapped" in problems[2]
    assert "行 line 6:" in problems[3] and "swapped" not in problems[3]
    assert not dst.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".assign-")]


@pytest.mark.parametrize("header,kw,needle", [
    (["名称", "x1", "y1"], {}, "--lon"),
    (["lon", "lat"], {"lon": "经度"}, "no column '经度'"),
    (["lon", "lat", "grid_code"], {}, "grid_code"),
])
def test_columns_missing_or_clashing(empty_db, world, tmp_path, header, kw, needle):
    src = _write_csv(tmp_path / "c.csv", header, [tuple("1" for _ in header)])
    with pytest.raises(AssignPointsError) as err:
        assign_points_file(empty_db, src, tmp_path / "out.csv", **kw)
    assert needle in str(err.value)


def test_empty_file_and_unknown_crs(tmp_path):
    src = _write_csv(tmp_path / "e.csv", ["lon", "lat"], [])
    with pytest.raises(AssignPointsError, match="no points"):
        read_points(src)
    with pytest.raises(AssignPointsError, match="unsupported CRS"):
        read_points(src, crs="bd09")


def test_cli_assign_points(server_url, tmp_path):
    """The console script on a committed scratch database: output written, a bad file refused (exit 2)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from geodata.db.admin import drop_database
    from tests.conftest import SUFFIX
    from tests.world import scratch_database

    name = f"gridwatch_test_points{SUFFIX}"
    url = scratch_database(server_url, name)
    engine = create_engine(url)
    try:
        with Session(engine) as s:
            seed(s)
            s.commit()
        src = _write_csv(tmp_path / "in.csv", ["lon", "lat"], [("113.625", "34.755"), ("113.7", "34.75")])
        out = run_gridwatch(url, "assign-points", str(src), str(tmp_path / "out.csv"))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "分配完成" in out.stdout and "2 个点 points" in out.stdout
        assert [r["grid_code"] for r in _read_out(tmp_path / "out.csv")] == [B11, ""]
        bad = _write_csv(tmp_path / "bad.csv", ["lon", "lat"], [("x", "1")])
        out = run_gridwatch(url, "assign-points", str(bad), str(tmp_path / "bad_out.csv"))
        assert out.returncode == 2 and "nothing written" in out.stdout and "行 line 2" in out.stdout
        assert not (tmp_path / "bad_out.csv").exists()
    finally:
        engine.dispose()
        drop_database(server_url, name)
