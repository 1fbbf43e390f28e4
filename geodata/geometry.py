"""Geometry rules: CRS handling (incl. GCJ-02), areas in a projected CRS, validity and coverage.

Input coordinates (reports, diaries, queries) are checked and converted to WGS84 here
(:func:`to_wgs84`): WGS84 and CGCS2000 (EPSG:4490) are taken as is, GCJ-02 (AMap/Gaode, Tencent) is
converted; a latitude outside ±90° that would be a valid longitude is reported as a probable swap.

Storage is EPSG:4326. Areas and distances are computed in a local projected CRS: the UTM zone of the
data (``metric_crs``), which for Zhengzhou is EPSG:32649; errors are well under 0.1 % at grid scale.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geodata.errors import DomainError

WGS84 = CRS.from_epsg(4326)


@lru_cache(maxsize=64)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def metric_crs(lon: float, lat: float) -> str:
    """The UTM zone (WGS84) for a point, as 'EPSG:326nn' / 'EPSG:327nn'."""
    zone = int((lon + 180) // 6) + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def transform(geom: BaseGeometry, src: str, dst: str) -> BaseGeometry:
    tr = _transformer(src, dst)
    return shapely.transform(geom, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def to_metric(geom: BaseGeometry) -> BaseGeometry:
    c = geom.centroid if not geom.is_empty else shapely.Point(0, 0)
    return transform(geom, "EPSG:4326", metric_crs(c.x, c.y))


def area_m2(geom: BaseGeometry) -> float:
    """Area of a lon/lat geometry in square metres (computed in its UTM zone)."""
    return float(to_metric(geom).area)


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    polys = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon)]
    if not polys:
        raise ValueError(f"not a polygon: {geom.geom_type}")
    return MultiPolygon(polys)


# -- GCJ-02 (the "Mars" offset of Chinese web maps) -------------------------------------------------
_A = 6378245.0
_EE = 0.00669342162296594323


def _out_of_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * math.pi) + 320 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _delta(lon, lat)
    outside = _out_of_china(lon, lat)
    return np.where(outside, lon, lon + dlon), np.where(outside, lat, lat + dlat)


def gcj02_to_wgs84(lon, lat, iterations: int = 6):
    """Inverse of :func:`wgs84_to_gcj02` by fixed-point iteration (error < 1 mm after 6 rounds)."""
    glon, glat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(iterations):
        tlon, tlat = wgs84_to_gcj02(wlon, wlat)
        wlon, wlat = wlon - (tlon - glon), wlat - (tlat - glat)
    return wlon, wlat


def gcj02_geometry_to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    return shapely.transform(geom, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))


# -- coverage -----------------------------------------------------------------------------------
def coverage_problems(parent: BaseGeometry, children: list[BaseGeometry], tolerance_m2: float = 1.0) -> dict:
    """Check that ``children`` (lon/lat) tile ``parent`` exactly: no overlap, no gap.

    Set operations run on the stored coordinates (so shared vertices stay shared); only the
    resulting slivers are projected to measure them. Returns areas in m²: overlap (pairwise
    intersections), gap (parent minus union), outside (union minus parent); ``coverage_valid`` is
    ``shapely.coverage_is_valid`` of the children.
    """
    def measured(g: BaseGeometry) -> float:
        return 0.0 if g.is_empty else float(to_metric_like(g, parent).area)

    union = shapely.union_all(children)
    tree = shapely.STRtree(children)
    overlap = 0.0
    for i, j in zip(*tree.query(children, predicate="intersects")):
        if i < j:
            overlap += measured(shapely.intersection(children[i], children[j]))
    gap = measured(shapely.difference(parent, union))
    outside = measured(shapely.difference(union, parent))
    return {
        "coverage_valid": bool(shapely.coverage_is_valid(list(children))),
        "overlap_m2": overlap, "gap_m2": gap, "outside_m2": outside,
        "ok": overlap <= tolerance_m2 and gap <= tolerance_m2 and outside <= tolerance_m2,
    }


def to_metric_like(geom: BaseGeometry, ref: BaseGeometry) -> BaseGeometry:
    """Project ``geom`` into the metric CRS chosen for ``ref`` (so siblings share one CRS)."""
    c = ref.centroid
    return transform(geom, "EPSG:4326", metric_crs(c.x, c.y))


# -- input coordinates (reports, diaries, queries) ------------------------------------------
#: Coordinate systems accepted on input.
CRS_WGS84, CRS_CGCS2000, CRS_GCJ02 = "wgs84", "cgcs2000", "gcj02"
INPUT_CRS = (CRS_WGS84, CRS_CGCS2000, CRS_GCJ02)


def check_lon_lat(lon: float, lat: float, lon_field: str = "lon", lat_field: str = "lat") -> None:
    """Range checks with a helpful message for the commonest mistake: lat and lon swapped."""
    for value, name in ((lon, lon_field), (lat, lat_field)):
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DomainError("invalid_coordinate", f"{name} 必须是有限数值", f"{name} must be a finite number",
                               field=name)
    if not -90.0 <= lat <= 90.0:
        if -180.0 <= lat <= 180.0 and -90.0 <= lon <= 90.0:
            raise DomainError(
                "coordinates_swapped",
                f"纬度 {lat_field}={lat} 超出 ±90° 范围，经纬度可能填反了（{lat_field} 应为纬度约 34.75，"
                f"{lon_field} 应为经度约 113.63）",
                f"{lat_field}={lat} is outside ±90°: latitude and longitude look swapped "
                f"({lat_field} is the latitude, about 34.75 here; {lon_field} the longitude, about 113.63)",
                field=lat_field)
        raise DomainError("coordinate_out_of_range", f"纬度 {lat_field}={lat} 超出 ±90° 范围",
                           f"{lat_field}={lat} is outside -90..90", field=lat_field)
    if not -180.0 <= lon <= 180.0:
        raise DomainError("coordinate_out_of_range", f"经度 {lon_field}={lon} 超出 ±180° 范围",
                           f"{lon_field}={lon} is outside -180..180", field=lon_field)


def to_wgs84(lon: float, lat: float, crs: str = CRS_WGS84, *, lon_field: str = "lon",
             lat_field: str = "lat") -> tuple[float, float]:
    """Validate and convert an input coordinate to WGS84 (EPSG:4326)."""
    if crs not in INPUT_CRS:
        raise DomainError("unknown_crs", f"不支持的坐标系“{crs}”（可选 wgs84、cgcs2000、gcj02）",
                           f"unsupported coordinate system '{crs}' (wgs84, cgcs2000 or gcj02)", field="crs")
    check_lon_lat(lon, lat, lon_field, lat_field)
    if crs == CRS_GCJ02:
        wlon, wlat = gcj02_to_wgs84(lon, lat)
        return float(wlon), float(wlat)
    return float(lon), float(lat)  # CGCS2000 ≈ WGS84 at map scale


# -- map cells: squares of the Web-Mercator plane ------------------------------------------------
#: half the Web-Mercator world's side (m); the map cells' level (2²² to the world's side) and side
#: (≈ 9.55 Mercator metres, ≈ 7.8 m on the ground in Zhengzhou). An issue's cell is stored with it
#: (``issue.cell_x`` / ``cell_y``, migration 0023) and its closed issues are counted per cell
#: (``issue_closed_cell``, migration 0021; ``geodata.maps.cells``).
MERCATOR_ORIGIN = 20037508.342789244
#: the sphere's radius of Web-Mercator (m): MERCATOR_ORIGIN = π · R
MERCATOR_RADIUS = 6378137.0
CELL_LEVEL = 22
CELL_M = 2 * MERCATOR_ORIGIN / 2 ** CELL_LEVEL


def mercator(lon: float, lat: float) -> tuple[float, float]:
    """Web-Mercator metres (EPSG:3857) of a point; latitudes beyond the projection's ±85.05° clamped."""
    lat = max(-85.05112878, min(85.05112878, lat))
    return (lon * MERCATOR_ORIGIN / 180.0,
            math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * MERCATOR_RADIUS)


def square_side(shift: int) -> float:
    """Mercator metres of a square of 2^shift × 2^shift cells (exact: a power of two times CELL_M)."""
    return CELL_M * 2.0 ** shift


def square_of(lon: float, lat: float, shift: int = 0) -> tuple[int, int]:
    """The square of ``shift`` holding a point: ``(floor((x + O) / side), floor((O − y) / side))``
    (columns eastwards, rows southwards, as map tiles count them)."""
    x, y = mercator(lon, lat)
    side = square_side(shift)
    return math.floor((x + MERCATOR_ORIGIN) / side), math.floor((MERCATOR_ORIGIN - y) / side)


def cells_of_bbox(bbox) -> tuple[int, int, int, int]:
    """The cells (x0, y0, x1, y1, inclusive) a lon/lat box (west, south, east, north) lies in, with
    one cell of slack each side: the stored cells are PostGIS's arithmetic, these Python's."""
    w, s, e, n = bbox
    x0, y1 = square_of(w, s)
    x1, y0 = square_of(e, n)
    return x0 - 1, y0 - 1, x1 + 1, y1 + 1
