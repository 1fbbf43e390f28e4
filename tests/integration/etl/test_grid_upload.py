"""The boundary editor's upload (etl.grids_io.propose_upload) on the test world, in a transaction
rolled back at the end: GeoJSON, GeoPackage and a zipped Shapefile become proposals named after
their file; bad uploads (type, zip contents, size, damage) are one bilingual DomainError naming
the field ``file``; a file with problems raises ImportValidationError and saves nothing."""
from __future__ import annotations

import io
import json
import zipfile

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import box, mapping
from sqlalchemy import func, select

from etl.grids_io import UPLOAD_MAX_MEMBERS, ImportOptions, ImportValidationError, propose_upload
from geodata.errors import DomainError
from geodata.grids import changesets
from geodata.models import GridProposal
from tests.world import B11, B12, rollback_session, savepoint, seed

AUTHOR = changesets.Author(None, "upload test")
#: the shared boundary of B11 and B12 moved north from 34.75 to 34.753 (both in the file)
MOVED = [(B11, "西社区一网格", box(113.62, 34.753, 113.63, 34.76)), (B12, "西社区二网格", box(113.62, 34.74, 113.63, 34.753))]


@pytest.fixture(scope="module")
def world(empty_engine):
    for s in rollback_session(empty_engine):
        seed(s)
        yield s


@pytest.fixture
def s(world):
    with savepoint(world):
        yield world


def geojson(rows) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": c, "name": n}, "geometry": mapping(g)} for c, n, g in rows]},
        ensure_ascii=False).encode()


def frame(rows, crs=4326) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [r[1] for r in rows]},
                            geometry=[r[2] for r in rows], crs=4326).to_crs(crs)


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, body in files.items():
            z.writestr(name, body)
    return buf.getvalue()


def shapefile_parts(tmp_path, rows, crs=4547) -> dict[str, bytes]:
    pyogrio.write_dataframe(frame(rows, crs), tmp_path / "blocks.shp", encoding="UTF-8")
    return {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.stem == "blocks"}


def proposals(s) -> int:
    return s.execute(select(func.count()).select_from(GridProposal)).scalar_one()


def changed(s, pid) -> dict[str, str]:
    data = changesets.proposal_data(s, pid)
    return {f["properties"]["code"]: f["properties"]["status"] for f in data["grids"]["features"]}


def test_geojson_becomes_a_proposal_named_after_its_file(s):
    pid, _ = propose_upload(s, geojson(MOVED), "沿街道调整.geojson", ImportOptions(level=3), reason="沿街道调整",
                            author=AUTHOR)
    assert changed(s, pid) == {B11: "changed", B12: "changed"}
    assert changesets.proposal_data(s, pid)["source"] == "沿街道调整.geojson"


def test_a_geopackage_in_a_projected_crs(s, tmp_path):
    path = tmp_path / "blocks.gpkg"
    pyogrio.write_dataframe(frame(MOVED, 4547), path, layer="grids")
    pid, _ = propose_upload(s, path.read_bytes(), "blocks.gpkg", ImportOptions(level=3), reason="r", author=AUTHOR)
    assert changed(s, pid) == {B11: "changed", B12: "changed"}


def test_a_zipped_shapefile_with_folders_and_paths_in_its_names(s, tmp_path):
    parts = shapefile_parts(tmp_path, MOVED)
    # members under a folder, one with a path that climbs out: each is written by its base name only
    names = {f"export/{n}" if not n.endswith(".dbf") else f"../../{n}": b for n, b in parts.items()}
    pid, _ = propose_upload(s, zipped({**names, "__MACOSX/._blocks.shp": b"junk"}), "blocks.zip",
                            ImportOptions(level=3), reason="r", author=AUTHOR)
    assert changed(s, pid) == {B11: "changed", B12: "changed"}


@pytest.mark.parametrize("filename,data,code", [
    ("blocks.kml", b"<kml/>", "unsupported_file"),
    ("blocks", b"{}", "unsupported_file"),
    ("blocks.geojson", b"", "empty_file"),
    ("blocks.zip", b"not a zip", "invalid_zip"),
    ("blocks.zip", zipped({"a.txt": b"x"}), "zip_no_shapefile"),
    ("blocks.zip", zipped({"a.shp": b"x", "b.shp": b"y"}), "zip_no_shapefile"),
    ("blocks.zip", zipped({f"f{i}.txt": b"x" for i in range(UPLOAD_MAX_MEMBERS + 1)}), "zip_too_large"),
])
def test_a_bad_upload_is_one_error_naming_the_file(s, filename, data, code):
    before = proposals(s)
    with pytest.raises(DomainError) as e:
        propose_upload(s, data, filename, ImportOptions(level=3), reason="r", author=AUTHOR)
    assert e.value.code == code and e.value.field == "file"
    assert e.value.message_zh and e.value.message_en
    assert proposals(s) == before


def test_a_zip_that_unpacks_too_large_is_refused(s, monkeypatch):
    import etl.grids_io as gio

    monkeypatch.setattr(gio, "UPLOAD_MAX_UNZIPPED", 1000)
    with pytest.raises(DomainError) as e:
        propose_upload(s, zipped({"a.shp": b"0" * 2000}), "a.zip", ImportOptions(level=3), reason="r", author=AUTHOR)
    assert e.value.code == "zip_too_large"


def test_problems_of_the_grids_save_nothing(s):
    before = proposals(s)
    gap = [(B11, "西社区一网格", box(113.62, 34.752, 113.63, 34.76))]   # leaves a gap above B12
    with pytest.raises(ImportValidationError) as e:
        propose_upload(s, geojson(gap), "gap.geojson", ImportOptions(level=3), reason="r", author=AUTHOR)
    assert any(p.kind == "gap" for p in e.value.problems)
    with pytest.raises(ImportValidationError) as e:
        propose_upload(s, b"{not json", "damaged.geojson", ImportOptions(level=3), reason="r", author=AUTHOR)
    assert "damaged.geojson" in str(e.value) and "/tmp" not in str(e.value)
    assert proposals(s) == before
