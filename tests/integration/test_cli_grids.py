"""`gridwatch grids propose|apply|history` against a committed scratch database (the test world):
a QGIS file in a projected CRS as a proposal, its problems or its impact and id, apply, history."""
from __future__ import annotations

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import box
from sqlalchemy import create_engine, text

from geodata.db import session_scope
from tests.conftest import SUFFIX
from tests.world import B11, B12, run_gridwatch, scratch_database, seed, seed_issues


@pytest.fixture(scope="module")
def url(server_url):
    from geodata.db.admin import drop_database

    u = scratch_database(server_url, f"gridwatch_test_cli_grids{SUFFIX}")
    engine = create_engine(u)
    with session_scope(engine) as s:
        seed_issues(s, seed(s))
    engine.dispose()
    yield u
    drop_database(u)


def gpkg(path, rows, crs=4547):
    """(code, name, geometry) rows as a GeoPackage in ``crs`` (CGCS2000 3° Gauss-Krüger, CM 114°E)."""
    frame = gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows]},
                             geometry=[r[2] for r in rows], crs=4326).to_crs(crs)
    pyogrio.write_dataframe(frame, path, layer="grids")
    return path


def test_a_file_with_a_gap_prints_every_problem_and_saves_nothing(url, tmp_path):
    f = gpkg(tmp_path / "gap.gpkg", [(B11, "西社区一网格", box(113.62, 34.752, 113.63, 34.76))])
    out = run_gridwatch(url, "grids", "propose", str(f), "--level", "3", "--reason", "调整")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert B11 in out.stdout and B12 in out.stdout and "gap" in out.stdout and "空隙" in out.stdout
    engine = create_engine(url)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM grid_proposal")).scalar_one() == 0
    engine.dispose()


def test_propose_prints_the_impact_and_the_id_last_then_apply_and_history(url, tmp_path):
    f = gpkg(tmp_path / "move.gpkg", [(B11, "西社区一网格", box(113.62, 34.753, 113.63, 34.76)),
                                      (B12, "西社区二网格", box(113.62, 34.74, 113.63, 34.753))])
    out = run_gridwatch(url, "grids", "propose", str(f), "--level", "3", "--reason", "沿街道调整")
    assert out.returncode == 0, out.stdout + out.stderr
    words = out.stdout.split()
    assert words[-1].isdigit() and "changed" in out.stdout and B12 in out.stdout
    pid = words[-1]
    applied = run_gridwatch(url, "grids", "apply", pid)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "applied" in applied.stdout and B11 in applied.stdout
    again = run_gridwatch(url, "grids", "apply", pid)
    assert again.returncode == 2 and len(again.stdout.strip().splitlines()) == 1
    assert "Traceback" not in again.stdout + again.stderr and f"#{pid}" in again.stdout
    hist = run_gridwatch(url, "grids", "history", B11)
    assert hist.returncode == 0 and "沿街道调整" in hist.stdout and "现行 / current" in hist.stdout
    assert len([ln for ln in hist.stdout.splitlines() if ln.startswith(B11)]) == 2  # two versions


def test_apply_with_a_bad_date_is_one_line(url):
    out = run_gridwatch(url, "grids", "apply", "999", "--effective", "tomorrow")
    assert out.returncode == 2 and len(out.stdout.strip().splitlines()) == 1 and "ISO 8601" in out.stdout
