"""Pure rules for a set of grid boundaries: validation, parent assignment and code generation.

No I/O and no UI: the importer (``etl.grids_io``) and the boundary editor call these with a
*candidate frame* and the current grids they read from the database.

Candidate frame: a GeoDataFrame in EPSG:4326 with one row per feature and the columns

- ``feature``: 1-based number of the feature in its source (file order), used in messages;
- ``code``: 14-digit grid code or None; ``name``: grid name or None;
- ``parent_code``: the parent grid's code or None (levels 2–3; see :func:`resolve_parents`);
- ``geometry``: the boundary, lon/lat (anything: the rules report what is wrong with it).

**Tolerance.** ``tolerance_m`` is a width in metres. A sliver of overlap, gap or "outside the
parent" is ignored when it is thinner than ``tolerance_m`` everywhere (it vanishes under an inward
buffer of ``tolerance_m / 2``) or its area is at most ``tolerance_m²``; anything else is reported,
one problem per connected piece, with its area and a point inside it. Slivers are measured in the
UTM zone of the parent (or of the feature), see :mod:`geodata.geometry`.

**Coverage (横到边、纵到底、全覆盖、无缝隙).** Every parent that has children — in the candidate
frame or already current in the database — must be tiled by them: no overlap between siblings, no
gap against the parent, no child outside it. Streets (level 1) have no parent: overlaps between
streets are errors, and so are holes enclosed between two or more streets. Names must be unique
among siblings (same parent; for streets, among all streets).
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geodata import codes as gc
from geodata.geometry import metric_crs, transform

LEVEL_ZH = {1: "街道（一级）", 2: "社区（二级）", 3: "楼院（三级）"}
LEVEL_EN = {1: "street (level 1)", 2: "community (level 2)", 3: "block (level 3)"}

#: Rough bounding box of China (incl. islands), lon/lat. Grids outside it mean a wrong CRS.
CHINA_BOUNDS = (73.0, 3.0, 136.0, 54.0)


class GridLike(Protocol):
    code: str
    name: str
    parent_code: str | None
    geom: BaseGeometry


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one feature (or with the file), in Chinese and English, and where."""

    kind: str
    zh: str
    en: str
    feature: int | None = None       # 1-based feature number in the source; None: a stored grid / the file
    code: str | None = None
    name: str | None = None
    where: tuple[float, float] | None = None          # a lon/lat point at the problem
    bbox: tuple[float, float, float, float] | None = None
    #: the problem's own shape when it has one (the overlap, the gap, the part outside the parent),
    #: lon/lat; for a map to highlight (the boundary editor), never printed
    geometry: BaseGeometry | None = field(default=None, compare=False, repr=False)

    @property
    def label_zh(self) -> str:
        parts = []
        if self.feature is not None:
            parts.append(f"第{self.feature}个要素")
        elif self.code or self.name:
            parts.append("已有网格")
        else:
            return "文件"
        if self.name:
            parts.append(f"「{self.name}」")
        if self.code:
            parts.append(f"({self.code})")
        return "".join(parts)

    @property
    def label_en(self) -> str:
        parts = []
        if self.feature is not None:
            parts.append(f"feature #{self.feature}")
        elif self.code or self.name:
            parts.append("stored grid")
        else:
            return "file"
        if self.name:
            parts.append(f'"{self.name}"')
        if self.code:
            parts.append(f"({self.code})")
        return " ".join(parts)

    def _where(self) -> tuple[str, str]:
        if self.where is not None:
            s = f"{self.where[0]:.6f}, {self.where[1]:.6f}"
            return f"（位置 {s}）", f" (at {s})"
        if self.bbox is not None:
            s = ", ".join(f"{v:.6f}" if math.isfinite(v) else str(v) for v in self.bbox)
            return f"（范围 {s}）", f" (bbox {s})"
        return "", ""

    def __str__(self) -> str:
        wz, we = self._where()
        return f"{self.label_zh}：{self.zh}{wz} / {self.label_en}: {self.en}{we}"


# -- helpers ------------------------------------------------------------------------------------
def text_or_none(v) -> str | None:
    """A stripped non-empty string, or None (None, NaN, pandas NA, blank)."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)) and math.isnan(v):
        return None
    s = str(v).strip()
    return s or None


def _point_of(geom: BaseGeometry | None) -> tuple[float, float] | None:
    """A representative lon/lat point of a geometry (inside it when possible)."""
    if geom is None or geom.is_empty:
        return None
    try:
        p = geom.representative_point() if geom.is_valid else geom.centroid
        if p.is_empty or not (math.isfinite(p.x) and math.isfinite(p.y)):
            p = shapely.get_point(shapely.boundary(geom), 0) if geom.geom_type != "Point" else geom
        return (float(p.x), float(p.y)) if math.isfinite(p.x) and math.isfinite(p.y) else None
    except shapely.errors.GEOSException:  # pragma: no cover - defensive
        return None


def _bbox(geom: BaseGeometry) -> tuple[float, float, float, float] | None:
    xy = shapely.get_coordinates(geom)
    if not len(xy):
        return None
    return (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))


_REASON_AT = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)\s*\]")


def _reason_point(reason: str) -> tuple[float, float] | None:
    m = _REASON_AT.search(reason or "")
    return (float(m.group(1)), float(m.group(2))) if m else None


def _flat_polygons(geom: BaseGeometry) -> list[BaseGeometry]:
    out: list[BaseGeometry] = []
    for g in shapely.get_parts(geom):
        if g.geom_type == "Polygon":
            if not g.is_empty:
                out.append(g)
        elif g.geom_type in ("MultiPolygon", "GeometryCollection"):
            out.extend(_flat_polygons(g))
    return out


def significant_pieces(geom: BaseGeometry, ref: BaseGeometry, tolerance_m: float
                       ) -> list[tuple[BaseGeometry, float]]:
    """The polygonal pieces of ``geom`` (lon/lat) beyond the tolerance, with their areas in m².

    Measured in the UTM zone of ``ref``. See the module docstring for the rule.
    """
    if geom is None or geom.is_empty:
        return []
    c = ref.centroid
    crs = metric_crs(c.x, c.y)
    min_area = max(tolerance_m ** 2, 1e-6)
    out = []
    for piece in _flat_polygons(geom):
        m = transform(piece, "EPSG:4326", crs)
        area = float(m.area)
        if area <= min_area:
            continue
        if tolerance_m > 0 and m.buffer(-tolerance_m / 2).is_empty:
            continue
        out.append((piece, area))
    return out


# -- per-feature rules --------------------------------------------------------------------------
def geometry_problems(geom: BaseGeometry | None) -> list[tuple[str, str, str, tuple | None, tuple | None]]:
    """What is wrong with one lon/lat geometry: (kind, zh, en, where, bbox) tuples; [] when fine."""
    if geom is None or geom.is_empty:
        return [("empty_geometry", "几何为空", "empty geometry", None, None)]
    out = []
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        out.append(("non_polygon", f"几何类型为 {geom.geom_type}，须为面（Polygon/MultiPolygon）",
                    f"geometry is a {geom.geom_type}, not a Polygon/MultiPolygon", None, _bbox(geom)))
    xy = shapely.get_coordinates(geom)
    finite = np.isfinite(xy).all(axis=1)
    box = _bbox(geom)
    if not finite.all() or (np.abs(xy[:, 0]) > 180).any() or (np.abs(xy[:, 1]) > 90).any():
        out.append(("out_of_range",
                    "坐标超出经纬度范围（|经度|≤180，|纬度|≤90），可能坐标系有误，请用 --crs 指定",
                    "coordinates out of lon/lat range (|lon| ≤ 180, |lat| ≤ 90): wrong CRS? give --crs",
                    None, box))
        return out
    x0, y0, x1, y1 = CHINA_BOUNDS
    if (xy[:, 0] < x0).any() or (xy[:, 0] > x1).any() or (xy[:, 1] < y0).any() or (xy[:, 1] > y1).any():
        out.append(("outside_china", "坐标不在中国境内，可能坐标系有误，请用 --crs 指定",
                    "coordinates lie outside China: wrong CRS? give --crs", None, box))
        return out
    if not out and not shapely.is_valid(geom):
        reason = shapely.is_valid_reason(geom)
        out.append(("invalid_geometry", f"几何无效：{reason}", f"invalid geometry: {reason}",
                    _reason_point(reason) or _point_of(geom), None))
    return out


def code_problems(code: str | None, level: int, *, parent_code: str | None = None,
                  county_code: str | None = None) -> list[tuple[str, str, str]]:
    """What is wrong with one grid code for a grid of ``level``: (kind, zh, en) tuples."""
    if code is None:
        return [("missing_code", "缺少网格编码（可用 --code-field 指定字段，或用 --county-code 自动生成）",
                 "missing grid code (choose the field with --code-field, or give --county-code to "
                 "generate codes)")]
    try:
        actual = gc.level_of(code)
    except gc.CodeError:
        return [("bad_code", f"网格编码格式错误：{code!r}（须为14位数字：县6+街道3+社区3+网格2）",
                 f"malformed grid code {code!r} (14 digits: county 6 + street 3 + community 3 + grid 2)")]
    out = []
    if actual != level:
        out.append(("wrong_level", f"编码 {code} 属于{LEVEL_ZH[actual]}，不是{LEVEL_ZH[level]}",
                    f"code {code} is a {LEVEL_EN[actual]} code, not a {LEVEL_EN[level]} code"))
        return out
    if county_code and not code.startswith(county_code):
        out.append(("wrong_county", f"编码 {code} 不属于县级行政区 {county_code}",
                    f"code {code} is not in county {county_code}"))
    if level > 1 and parent_code and gc.parent_of(code) != parent_code:
        out.append(("code_parent_mismatch", f"编码 {code} 与上级网格 {parent_code} 不符",
                    f"code {code} does not belong to parent grid {parent_code}"))
    return out


# -- parents and codes --------------------------------------------------------------------------
def resolve_parents(frame, level: int, parents: Sequence[GridLike]) -> list[str | None]:
    """The parent code of each row: its ``parent_code`` if given, else the parent its (well-formed,
    right-level) code implies, else the current parent grid it overlaps most (None if none)."""
    if level == 1:
        return [None] * len(frame)
    pgeoms = [p.geom for p in parents]
    tree = shapely.STRtree(pgeoms) if pgeoms else None
    out: list[str | None] = []
    for code, parent, geom in zip(frame["code"], frame["parent_code"], frame.geometry):
        parent, code = text_or_none(parent), text_or_none(code)
        if parent:
            out.append(parent)
            continue
        if code and gc.is_valid(code, level):
            out.append(gc.parent_of(code))
            continue
        out.append(_largest_overlap(geom, parents, tree))
    return out


def _largest_overlap(geom, parents, tree) -> str | None:
    if tree is None or geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
        return None
    if not shapely.is_valid(geom):
        geom = shapely.make_valid(geom)
    best, best_area = None, 0.0
    for i in tree.query(geom, predicate="intersects"):
        a = shapely.intersection(geom, parents[i].geom).area
        if a > best_area:
            best, best_area = parents[i].code, a
    return best


def generate_codes(frame, level: int, *, county_code: str, street_number: int | None = None,
                   taken: Iterable[str] = ()) -> tuple[dict[int, str], list[Problem]]:
    """Codes for the rows without one, by the coding rule (see :mod:`geodata.codes`).

    Level 1: ``county_code`` + street numbers from ``street_number`` (default 1) upward. Levels
    2–3: numbered under each row's ``parent_code`` from 1 upward. Within a group, rows are
    numbered north→south in rows, west→east within a row (the convention for block grids).
    Never returns a code in ``taken`` (pass every code used in the database) or in the frame.
    Returns ({row position: code}, problems).
    """
    used = set(taken) | {c for c in (text_or_none(v) for v in frame["code"]) if c}
    problems: list[Problem] = []
    groups: dict[str | None, list[int]] = defaultdict(list)
    for pos, (code, parent) in enumerate(zip(frame["code"], frame["parent_code"])):
        if text_or_none(code):
            continue
        parent = text_or_none(parent)
        if level > 1 and not parent:
            continue  # no parent: reported as missing_parent
        groups[parent if level > 1 else None].append(pos)
    result: dict[int, str] = {}
    geoms = list(frame.geometry)
    for parent, positions in groups.items():
        if level > 1 and (not gc.is_valid(parent, level - 1)):
            continue  # reported by the parent checks
        if level > 1 and county_code and not parent.startswith(county_code):
            for pos in positions:
                problems.append(_row_problem(frame, pos, "wrong_county",
                                             f"上级网格 {parent} 不属于县级行政区 {county_code}，无法生成编码",
                                             f"parent grid {parent} is not in county {county_code}: "
                                             "cannot generate a code"))
            continue
        order = _reading_order([geoms[p] for p in positions])
        n = (street_number or 1) if level == 1 else 1
        limit = 999 if level < 3 else 99
        for k in order:
            pos = positions[k]
            while n <= limit:
                code = _make_code(level, county_code, parent, n)
                n += 1
                if code not in used:
                    break
            else:
                problems.append(_row_problem(frame, pos, "code_generation",
                                             f"编号已用尽（最多{limit}个），无法生成编码",
                                             f"no free number left (at most {limit}): cannot generate a code"))
                continue
            used.add(code)
            result[pos] = code
    return result, problems


def _make_code(level: int, county: str, parent: str | None, n: int) -> str:
    if level == 1:
        return gc.street_code(county, n)
    if level == 2:
        return gc.community_code(parent, n)
    return gc.block_code(parent, n)


def _reading_order(geoms: list[BaseGeometry | None]) -> list[int]:
    """Indices north→south by rows of about one feature's height, west→east within a row."""
    cents, heights, tops = [], [], []
    for g in geoms:
        if g is None or g.is_empty:
            cents.append(None)
            continue
        c = g.centroid
        _x0, y0, _x1, y1 = g.bounds
        cents.append((c.x, c.y))
        heights.append(y1 - y0)
        tops.append(y1)
    have = [i for i, c in enumerate(cents) if c is not None]
    if not have:
        return list(range(len(geoms)))
    row = float(np.median(heights)) or 1e-6
    top = max(tops)
    # measured down from the northern edge, so the first row's centroids sit mid-row
    shifted = [(cents[i][0], cents[i][1] - top) for i in have]
    ordered = [have[k] for k in gc.west_east_north_south_order(shifted, row)]
    return ordered + [i for i, c in enumerate(cents) if c is None]


def _row_problem(frame, pos: int, kind: str, zh: str, en: str, **kw) -> Problem:
    row = frame.iloc[pos]
    geom = row.geometry
    if "where" not in kw and "bbox" not in kw:
        kw["where"] = _point_of(geom) if geom is not None and not geom.is_empty else None
    return Problem(kind, zh, en, feature=int(row["feature"]), code=text_or_none(row["code"]),
                   name=text_or_none(row["name"]), **kw)


# -- the whole set ------------------------------------------------------------------------------
def validate_grids(frame, level: int, *, parents: Sequence[GridLike] = (),
                   current: Sequence[GridLike] = (), children: Sequence[GridLike] = (),
                   tolerance_m: float = 1.0, replace: bool = False, county_code: str | None = None,
                   codes_generated: bool = False, retired: Mapping[str, BaseGeometry] | None = None
                   ) -> list[Problem]:
    """Every problem with a candidate frame of grids of ``level`` (nothing stops at the first).

    ``parents``: current grids of ``level - 1`` (the candidates' parents); ``current``: current
    grids of ``level`` (codes taken, siblings already stored); ``children``: current grids of
    ``level + 1`` under grids being replaced (they must still fit their new parent). With
    ``replace``, a candidate whose code is current replaces that version. ``codes_generated``:
    codes were generated for the rows without one (a row still without a code lacks a parent).
    ``retired``: codes used before and no longer current, with their last boundary — a code is never
    reused for another area (only restored with the very boundary it had; the database enforces it too).
    """
    problems: list[Problem] = []
    n = len(frame)
    geoms = list(frame.geometry)
    codes = [text_or_none(v) for v in frame["code"]]
    names = [text_or_none(v) for v in frame["name"]]
    parent_codes = [text_or_none(v) for v in frame["parent_code"]] if level > 1 else [None] * n
    parent_by_code = {p.code: p for p in parents}
    current_by_code = {g.code: g for g in current}

    geom_ok = [True] * n
    for pos in range(n):
        for kind, zh, en, where, box in geometry_problems(geoms[pos]):
            geom_ok[pos] = False
            problems.append(_row_problem(frame, pos, kind, zh, en, where=where, bbox=box))

    # codes and names
    first_code: dict[str, int] = {}
    for pos in range(n):
        code = codes[pos]
        if code is None and codes_generated:
            continue  # generation needs a parent; missing_parent says why
        for kind, zh, en in code_problems(code, level, parent_code=parent_codes[pos],
                                          county_code=county_code):
            problems.append(_row_problem(frame, pos, kind, zh, en))
        if code is None:
            continue
        if code in first_code:
            other = frame.iloc[first_code[code]]
            problems.append(_row_problem(
                frame, pos, "duplicate_code",
                f"编码 {code} 与第{int(other['feature'])}个要素重复",
                f"code {code} repeats feature #{int(other['feature'])}"))
        else:
            first_code[code] = pos
            if code in current_by_code and not replace:
                problems.append(_row_problem(
                    frame, pos, "code_exists",
                    f"编码 {code} 已存在于数据库（「{current_by_code[code].name}」）；如需更新边界请用 --replace",
                    f"code {code} is already a current grid (\"{current_by_code[code].name}\"); "
                    "use --replace to change its boundary"))
            elif retired and code in retired and not _same_shape(geoms[pos], retired[code]):
                problems.append(_row_problem(
                    frame, pos, "code_retired",
                    f"编码 {code} 曾经使用、现已撤销；撤销的编码不再用于其他范围",
                    f"code {code} was used before and has been retired; a retired code is never reused "
                    "for another area"))
    new_codes = {c for c in codes if c}
    stored_siblings = [g for g in current if g.code not in new_codes]

    first_name: dict[tuple[str | None, str], int] = {}
    stored_names = {(g.parent_code if level > 1 else None, g.name): g for g in stored_siblings}
    for pos in range(n):
        name = names[pos]
        if name is None:
            problems.append(_row_problem(frame, pos, "missing_name", "缺少网格名称（可用 --name-field 指定字段）",
                                         "missing grid name (choose the field with --name-field)"))
            continue
        key = (parent_codes[pos], name)
        if key in first_name:
            other = frame.iloc[first_name[key]]
            problems.append(_row_problem(frame, pos, "duplicate_name",
                                         f"名称「{name}」与同一上级下的第{int(other['feature'])}个要素重复",
                                         f"name \"{name}\" repeats feature #{int(other['feature'])} "
                                         "under the same parent"))
        elif key in stored_names:
            g = stored_names[key]
            problems.append(_row_problem(frame, pos, "duplicate_name",
                                         f"名称「{name}」与同一上级下已有网格 {g.code} 重复",
                                         f"name \"{name}\" repeats stored grid {g.code} under the same parent"))
        else:
            first_name[key] = pos

    # parents
    if level > 1:
        for pos in range(n):
            p = parent_codes[pos]
            if p is None:
                if not geom_ok[pos]:
                    continue  # no usable geometry to place it by: the geometry problem says why
                problems.append(_row_problem(
                    frame, pos, "missing_parent",
                    f"找不到所属上级网格：不在任何现有{LEVEL_ZH[level - 1]}网格内（请先导入上级网格，或用 --parent-field 指定）",
                    f"no parent grid: it lies in no current {LEVEL_EN[level - 1]} grid (import the parents "
                    "first, or give --parent-field)"))
            elif p not in parent_by_code:
                problems.append(_row_problem(
                    frame, pos, "missing_parent",
                    f"上级网格 {p} 不是现有的{LEVEL_ZH[level - 1]}网格",
                    f"parent grid {p} is not a current {LEVEL_EN[level - 1]} grid"))

    # coverage
    def cand(pos: int) -> _Member:
        return _Member(geoms[pos], int(frame.iloc[pos]["feature"]), codes[pos], names[pos])

    ok = [pos for pos in range(n) if geom_ok[pos]]
    if level == 1:
        members = [cand(p) for p in ok] + [_Member(g.geom, None, g.code, g.name) for g in stored_siblings]
        problems += _overlaps(members, None, tolerance_m)
        problems += _enclosed_gaps(members, tolerance_m)
    else:
        by_parent: dict[str, list[int]] = defaultdict(list)
        for pos in ok:
            if parent_codes[pos] in parent_by_code:
                by_parent[parent_codes[pos]].append(pos)
        stored_by_parent: dict[str, list[GridLike]] = defaultdict(list)
        for g in stored_siblings:
            stored_by_parent[g.parent_code].append(g)
        # a parent with a broken candidate child cannot be measured for gaps (already reported)
        broken = {parent_codes[pos] for pos in range(n) if not geom_ok[pos]}
        for pcode, positions in by_parent.items():
            parent = parent_by_code[pcode]
            members = [cand(p) for p in positions] + \
                      [_Member(g.geom, None, g.code, g.name) for g in stored_by_parent.get(pcode, [])]
            problems += family_problems(parent.geom, members, tolerance_m, parent_label=_glabel(parent),
                                        check_outside=len(positions), check_gaps=pcode not in broken)

    # stored children of replaced grids must still tile their new boundary
    if children:
        new_geom = {codes[p]: geoms[p] for p in ok if codes[p]}
        kids: dict[str, list[GridLike]] = defaultdict(list)
        for c in children:
            kids[c.parent_code].append(c)
        for pcode, ks in kids.items():
            if pcode in new_geom:
                pos = codes.index(pcode)
                members = [_Member(k.geom, None, k.code, k.name) for k in ks]
                problems += family_problems(new_geom[pcode], members, tolerance_m,
                                            parent_label=_label(cand(pos)), check_outside=len(members),
                                            check_overlaps=False)
    return problems


def _same_shape(a: BaseGeometry | None, b: BaseGeometry) -> bool:
    """The same area (a retired code restored with its own boundary, e.g. by a revert)."""
    try:
        return a is not None and not a.is_empty and bool(shapely.equals(a, b))
    except shapely.errors.GEOSException:
        return False


@dataclass(frozen=True)
class _Member:
    geom: BaseGeometry
    feature: int | None
    code: str | None
    name: str | None


def _label(m: _Member) -> tuple[str, str]:
    return Problem("", "", "", feature=m.feature, code=m.code, name=m.name).label_zh, \
        Problem("", "", "", feature=m.feature, code=m.code, name=m.name).label_en


def _glabel(g: GridLike) -> tuple[str, str]:
    return f"「{g.name}」({g.code})", f"\"{g.name}\" ({g.code})"


def _member_problem(m: _Member, kind: str, zh: str, en: str, piece: BaseGeometry) -> Problem:
    return Problem(kind, zh, en, feature=m.feature, code=m.code, name=m.name, where=_point_of(piece),
                   geometry=piece)


def family_problems(parent: BaseGeometry, members: Sequence[_Member], tolerance_m: float, *,
                    parent_label: tuple[str, str], check_outside: int | None = None,
                    check_overlaps: bool = True, check_gaps: bool = True) -> list[Problem]:
    """Children that leave their parent, overlap each other or leave gaps in it.

    ``members[:check_outside]`` are checked for leaving the parent (the rest are already stored).
    """
    out: list[Problem] = []
    pz, pe = parent_label
    for m in list(members)[: len(members) if check_outside is None else check_outside]:
        for piece, area in significant_pieces(shapely.difference(m.geom, parent), parent, tolerance_m):
            out.append(_member_problem(m, "child_outside_parent",
                                       f"超出上级网格{pz} {area:.1f} 平方米",
                                       f"extends {area:.1f} m² outside its parent grid {pe}", piece))
    if check_overlaps:
        out += _overlaps(members, parent, tolerance_m)
    if not check_gaps:
        return out
    union = shapely.union_all([m.geom for m in members])
    gaps = significant_pieces(shapely.difference(parent, union), parent, tolerance_m)
    if gaps:
        tree = shapely.STRtree([m.geom for m in members])
        for piece, area in gaps:
            near = [members[i] for i in sorted(tree.query(piece, predicate="dwithin",
                                                          distance=_near_deg(tolerance_m)))]
            out.append(_gap_problem(piece, area, near, f"上级网格{pz}内", f"inside parent grid {pe}"))
    return out


def _near_deg(tolerance_m: float) -> float:
    return max(tolerance_m, 0.1) / 100_000.0


def _gap_problem(piece, area, near: list[_Member], zh_ctx: str, en_ctx: str) -> Problem:
    labels = [_label(m) for m in near]
    zh_n = "、".join(z for z, _ in labels) or "无相邻网格"
    en_n = ", ".join(e for _, e in labels) or "no neighbouring grid"
    first = near[0] if near else _Member(piece, None, None, None)
    return Problem("gap", f"{zh_ctx}有 {area:.1f} 平方米的空隙未被覆盖，相邻：{zh_n}",
                   f"{en_ctx}: a gap of {area:.1f} m² is not covered; next to: {en_n}",
                   feature=first.feature, code=first.code, name=first.name, where=_point_of(piece),
                   geometry=piece)


def _overlaps(members: Sequence[_Member], parent: BaseGeometry | None, tolerance_m: float) -> list[Problem]:
    out = []
    if len(members) < 2:
        return out
    geoms = [m.geom for m in members]
    tree = shapely.STRtree(geoms)
    a_idx, b_idx = tree.query(geoms, predicate="intersects")
    for i, j in sorted(zip(a_idx.tolist(), b_idx.tolist())):
        if i >= j:
            continue
        a, b = members[i], members[j]
        if a.feature is None and b.feature is None:
            continue  # both stored: not this import's doing
        inter = shapely.intersection(a.geom, b.geom)
        for piece, area in significant_pieces(inter, parent if parent is not None else a.geom, tolerance_m):
            if a.feature is None:
                a, b = b, a
            bz, be = _label(b)
            out.append(_member_problem(a, "overlap", f"与{bz}重叠 {area:.1f} 平方米",
                                       f"overlaps {be} by {area:.1f} m²", piece))
    return out


def _enclosed_gaps(members: Sequence[_Member], tolerance_m: float) -> list[Problem]:
    """Holes in the union of streets bordered by two or more of them."""
    out = []
    if len(members) < 2:
        return out
    geoms = [m.geom for m in members]
    tree = shapely.STRtree(geoms)
    union = shapely.union_all(geoms)
    for poly in _flat_polygons(union):
        for ring in poly.interiors:
            hole = shapely.Polygon(ring)
            near_idx = tree.query(hole, predicate="dwithin", distance=_near_deg(tolerance_m))
            near = [members[i] for i in sorted(near_idx)]
            if len(near) < 2 or all(m.feature is None for m in near):
                continue
            for piece, area in significant_pieces(hole, hole, tolerance_m):
                near = sorted(near, key=lambda m: m.feature is None)
                out.append(_gap_problem(piece, area, near, "街道之间", "between streets"))
    return out


def orphan_problems(retired: Sequence[GridLike], children: Sequence[GridLike]) -> list[Problem]:
    """Grids left under a parent that is retired (each must be retired or moved with it)."""
    gone = {g.code: g for g in retired}
    out = []
    for c in children:
        p = gone.get(c.parent_code)
        if p is not None:
            pz, pe = _glabel(p)
            out.append(Problem("orphan", f"上级网格{pz}将被撤销，须先撤销或迁移此网格",
                               f"its parent grid {pe} is retired: retire or move this grid first",
                               code=c.code, name=c.name, where=_point_of(c.geom), geometry=c.geom))
    return out


def gap_problems(parent: GridLike, children: Sequence[GridLike], tolerance_m: float) -> list[Problem]:
    """Gaps the stored ``children`` leave in ``parent`` (a sibling was retired and none took its place)."""
    members = [_Member(c.geom, None, c.code, c.name) for c in children]
    if not members:
        return []
    return family_problems(parent.geom, members, tolerance_m, parent_label=_glabel(parent), check_outside=0,
                           check_overlaps=False)
