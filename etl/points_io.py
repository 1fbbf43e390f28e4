"""Assign a file of points to the block grids: ``gridwatch assign-points IN.csv OUT.csv``.

For the bulk cases a form cannot serve: years of records from an older system, a survey of shops or
households, a list of addresses already geocoded. Steps:

1. read the points: a CSV (UTF-8, UTF-8 with BOM or GBK/GB18030) with longitude/latitude columns
   (by ``--lon``/``--lat``, else the usual names: lon/lng/longitude/x/经度, lat/latitude/y/纬度),
   or a point layer of GeoJSON/GeoPackage/Shapefile in any declared CRS;
2. bring them once, at the edge, to WGS84: a file's CRS is transformed to EPSG:4326; CSV
   coordinates are WGS84 or CGCS2000 (taken as is), or GCJ-02 (``--crs gcj02``: the offset of
   Chinese web maps is removed);
3. validate every row — missing or non-numeric coordinates, out of range, probably swapped — and
   list *all* problems by line; on any problem nothing is written;
4. load the points with one binary COPY into a temporary table and assign them set-wise in PostGIS
   (:mod:`geodata.grids.bulk`: the stored cell index and one statement; same rule as a single
   report: covered, lowest code on shared edges);
5. write OUT (CSV, UTF-8 with BOM so that Excel shows the Chinese) through a temporary file renamed
   at the end: every input column unchanged, then ``grid_code``, ``grid_name``,
   ``community_code``, ``community_name`` (empty for points outside every block).
"""
from __future__ import annotations

import os
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from etl.progress import Steps
from geodata.geometry import CRS_CGCS2000, CRS_GCJ02, CRS_WGS84, INPUT_CRS, gcj02_to_wgs84
from geodata.grids.bulk import assign_points_setwise, build_cell_index
from geodata.grids.store import current_grids

LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度")
LAT_NAMES = ("lat", "latitude", "y", "纬度")
GEO_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")
OUT_COLUMNS = ("grid_code", "grid_name", "community_code", "community_name")
#: problems listed before "… and N more"
MAX_LISTED = 50


class AssignPointsError(ValueError):
    """The file cannot be assigned; ``problems`` lists every reason (Chinese / English)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AssignReport:
    source: str
    output: str
    points: int
    assigned: int
    outside: int
    blocks: int
    crs: str
    index_built: bool
    seconds: float

    def __str__(self) -> str:
        return (f"分配完成 / assigned: {self.points:,} 个点 points → {self.assigned:,} 落入 {self.blocks} 个楼院网格 "
                f"in {self.blocks} block grids, {self.outside:,} 在所有网格之外 outside every grid\n"
                f"  坐标 coordinates: {self.crs} · 网格索引 cell index: "
                f"{'新建 built' if self.index_built else '已有 reused'} · 用时 {self.seconds:.1f} s\n"
                f"  输出 output: {self.output}")


def _pick(columns: list[str], wanted: str | None, names: tuple[str, ...], what: str) -> str:
    if wanted:
        if wanted not in columns:
            raise AssignPointsError([f"找不到{what}列 “{wanted}” / no column '{wanted}' (columns: {', '.join(columns)})"])
        return wanted
    for c in columns:
        if c.strip().lower() in names:
            return c
    raise AssignPointsError([f"找不到{what}列，请用 --{'lon' if what == '经度' else 'lat'} 指定 / no {what} "
                             f"({'longitude' if what == '经度' else 'latitude'}) column; name it with "
                             f"--{'lon' if what == '经度' else 'lat'} (columns: {', '.join(columns)})"])


def _read_csv(path: Path) -> pd.DataFrame:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=enc)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise AssignPointsError([f"无法读取 CSV / cannot read the CSV: {exc}"]) from exc
    raise AssignPointsError(["文件编码无法识别（UTF-8/GBK）/ the file is neither UTF-8 nor GBK"])


def read_points(path: Path, *, lon: str | None = None, lat: str | None = None, crs: str = CRS_WGS84,
                layer: str | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, str]:
    """(the rows as read, lon, lat in WGS84, a description of the input CRS); raises
    :class:`AssignPointsError` listing every problem."""
    if crs not in INPUT_CRS:
        raise AssignPointsError([f"不支持的坐标系 {crs}（可选 {', '.join(INPUT_CRS)}）/ unsupported CRS {crs}"])
    if path.suffix.lower() in GEO_SUFFIXES:
        import geopandas as gpd

        try:
            gdf = gpd.read_file(path, layer=layer) if layer else gpd.read_file(path)
        except Exception as exc:
            raise AssignPointsError([f"无法读取 / cannot read {path.name}: {exc}"]) from exc
        bad = [i for i, g in enumerate(gdf.geometry) if g is None or g.geom_type != "Point"]
        if bad:
            raise AssignPointsError([f"第 {i + 1} 个要素不是点 / feature {i + 1} is not a point"
                                     for i in bad[:MAX_LISTED]] + _more(bad))
        described = f"{gdf.crs.to_string() if gdf.crs else 'EPSG:4326 (未声明 undeclared)'}"
        if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs(4326)
        rows = pd.DataFrame(gdf.drop(columns=gdf.geometry.name)).astype(str)
        x, y = gdf.geometry.x.to_numpy(float), gdf.geometry.y.to_numpy(float)
        lines = np.arange(1, len(gdf) + 1)
        where = "要素 feature"
    else:
        rows = _read_csv(path)
        cols = list(rows.columns)
        lon_col, lat_col = _pick(cols, lon, LON_NAMES, "经度"), _pick(cols, lat, LAT_NAMES, "纬度")
        x = pd.to_numeric(rows[lon_col].str.strip(), errors="coerce").to_numpy(float)
        y = pd.to_numeric(rows[lat_col].str.strip(), errors="coerce").to_numpy(float)
        described = {CRS_WGS84: "WGS84", CRS_CGCS2000: "CGCS2000", CRS_GCJ02: "GCJ-02 → WGS84"}[crs]
        lines = np.arange(2, len(rows) + 2)  # line 1 is the header
        where = "行 line"
    if not len(rows):
        raise AssignPointsError(["文件中没有点 / the file holds no points"])
    problems = []
    for k in np.flatnonzero(~(np.isfinite(x) & np.isfinite(y))):
        problems.append(f"{where} {lines[k]}: 坐标缺失或不是数字 / coordinates missing or not numbers")
    ok = np.isfinite(x) & np.isfinite(y)
    for k in np.flatnonzero(ok & ((np.abs(x) > 180) | (np.abs(y) > 90))):
        hint = ("（经纬度可能写反了 / latitude and longitude probably swapped）"
                if abs(y[k]) <= 180 and abs(x[k]) <= 90 else "")
        problems.append(f"{where} {lines[k]}: 坐标超出范围 / out of range (lon {x[k]:g}, lat {y[k]:g}){hint}")
    if problems:
        raise AssignPointsError(problems[:MAX_LISTED] + _more(problems))
    if crs == CRS_GCJ02 and path.suffix.lower() not in GEO_SUFFIXES:
        x, y = gcj02_to_wgs84(x, y)
        x, y = np.asarray(x, float), np.asarray(y, float)
    return rows, x, y, described


def _more(items: list) -> list[str]:
    n = len(items) - MAX_LISTED
    return [f"……另有 {n} 处 / … and {n} more"] if n > 0 else []


def copy_points(conn: Connection, table: str, lon: np.ndarray, lat: np.ndarray, ids: np.ndarray | None = None) -> None:
    """One binary COPY of (id, lon, lat) into ``table``, the payload built with numpy; ``ids`` default
    to the row numbers from 0. In the connection's transaction (not committed here)."""
    rec = np.dtype([("n", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"), ("x", ">f8"), ("l3", ">i4"),
                    ("y", ">f8")])
    a = np.empty(len(lon), dtype=rec)
    a["n"], a["l1"], a["l2"], a["l3"] = 3, 8, 8, 8
    a["id"], a["x"], a["y"] = np.arange(len(lon)) if ids is None else ids, lon, lat
    copy_binary(conn, f"COPY {table} (id, lon, lat) FROM STDIN (FORMAT binary)",
                b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + a.tobytes() + struct.pack(">h", -1))


def copy_binary(conn: Connection, copy_sql: str, data: bytes) -> None:
    """Stream a binary COPY payload in 1 MiB pieces (in the connection's transaction, not committed)."""
    payload = memoryview(data)
    with conn.connection.driver_connection.cursor().copy(copy_sql) as cp:
        for i in range(0, len(payload), 1 << 20):
            cp.write(payload[i:i + (1 << 20)])


def assign_points_file(session: Session, src: Path, dst: Path, *, lon: str | None = None, lat: str | None = None,
                       crs: str = CRS_WGS84, layer: str | None = None, progress: bool = False) -> AssignReport:
    """Read, validate, assign and write (see the module docstring); nothing is written on any problem.
    The temporary tables live in the caller's transaction (dropped at its end)."""
    t0 = time.perf_counter()
    steps = Steps(progress, 4)
    try:
        steps.step("读取并校验 reading and checking")
        rows, x, y, described = read_points(Path(src), lon=lon, lat=lat, crs=crs, layer=layer)
        clash = [c for c in OUT_COLUMNS if c in rows.columns]
        if clash:
            raise AssignPointsError([f"输入已有列 {', '.join(clash)}，会被覆盖 / the input already has "
                                     f"column(s) {', '.join(clash)}"])
        steps.step("载入 PostGIS loading")
        session.execute(text("DROP TABLE IF EXISTS gw_assign_points, gw_assign_result"))  # an earlier call
        session.execute(text("CREATE TEMP TABLE gw_assign_points (id bigint, lon float8, lat float8) ON COMMIT DROP"))
        session.execute(text("CREATE TEMP TABLE gw_assign_result (point_id bigint, grid_code varchar(14)) "
                             "ON COMMIT DROP"))
        copy_points(session.connection(), "gw_assign_points", x, y)
        steps.step("分配网格 assigning")
        index = build_cell_index(session)
        assign_points_setwise(session, "gw_assign_points", "gw_assign_result", index=index)
        steps.step("写出 writing")
        codes = session.execute(text("SELECT grid_code FROM gw_assign_result ORDER BY point_id")).scalars().all()
        blocks = {g.code: g for g in current_grids(session, level=3)}
        communities = {g.code: g.name for g in current_grids(session, level=2)}
        out = rows.copy()
        out["grid_code"] = [c or "" for c in codes]
        out["grid_name"] = [blocks[c].name if c else "" for c in codes]
        out["community_code"] = [blocks[c].parent_code if c else "" for c in codes]
        out["community_name"] = [communities.get(blocks[c].parent_code, "") if c else "" for c in codes]
        dst = Path(dst)
        fd, tmp = tempfile.mkstemp(prefix=".assign-", suffix=".csv", dir=dst.parent)
        os.close(fd)
        try:
            out.to_csv(tmp, index=False, encoding="utf-8-sig")
            os.replace(tmp, dst)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    finally:
        steps.close()
    assigned = sum(1 for c in codes if c)
    return AssignReport(source=str(src), output=str(dst), points=len(codes), assigned=assigned,
                        outside=len(codes) - assigned, blocks=len({c for c in codes if c}), crs=described,
                        index_built=bool(index["built"]), seconds=time.perf_counter() - t0)
