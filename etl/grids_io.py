"""Real boundary files in and out: GeoJSON, GeoPackage and Shapefile (via geopandas/pyogrio).

Import (``gridwatch import-grids FILE --level N``):

1. read the file (a GeoPackage layer by ``--layer``; Shapefiles without ``.cpg`` are decoded as
   UTF-8, or GBK/GB18030 when UTF-8 fails);
2. bring it once, at the edge, to EPSG:4326: from the declared CRS (EPSG:4326, CGCS2000 4490,
   projected CGCS2000 Gauss-Krüger such as 4547/4527, …), or ``--crs`` (which wins over the file),
   or — no CRS at all, coordinates clearly lon/lat — EPSG:4326 with a note; ``--gcj02`` then
   removes the GCJ-02 offset of Chinese web maps;
3. map the code/name/parent fields (by option, else by the usual names: code, WGBM, 网格编码 …);
4. find each feature's parent (parent field, else its code, else the current grid of the level
   above it overlaps most) and generate missing codes from ``--county-code`` by the coding rule;
5. validate everything (:func:`geodata.grids.rules.validate_grids`) and, only when nothing is
   wrong, write in the caller's transaction: with ``--replace`` the current versions of the same
   codes are closed and new ones opened at the same instant — history is never deleted.

Any problem raises :class:`ImportValidationError` listing all of them; nothing is written.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.codes import street_code as make_street_code
from geodata.geometry import area_m2, as_multipolygon, gcj02_geometry_to_wgs84
from geodata.grids import changesets, edits, rules, store
from geodata.grids.rules import LEVEL_EN, LEVEL_ZH, Problem

__all__ = [
    "CODE_FIELDS",
    "NAME_FIELDS",
    "PARENT_FIELDS",
    "ImportOptions",
    "ImportReport",
    "ImportValidationError",
    "Problem",
    "export_grids",
    "export_proposal",
    "import_grids",
    "propose_file",
    "propose_upload",
    "read_candidates",
]

#: Field names recognised when no field is chosen (compared case-insensitively, in this order).
CODE_FIELDS = ("code", "grid_code", "gridcode", "wgbm", "wg_code", "wgdm", "网格编码", "网格代码", "编码", "代码",
               "adcode", "区划代码", "行政区划代码")  # adcode: DataV GeoAtlas / 统计用区划代码 sources
NAME_FIELDS = ("name", "grid_name", "gridname", "wgmc", "wg_name", "网格名称", "名称", "mc")
PARENT_FIELDS = ("parent", "parent_code", "parentcode", "sjwgbm", "sjbm", "上级编码", "上级网格编码", "父级编码",
                 "parent_adcode", "上级区划代码")
NAME_EN_FIELDS = ("name_en", "en_name", "ename", "英文名称", "英文名")

WGS84 = CRS.from_epsg(4326)


# -- public types -------------------------------------------------------------------------------
@dataclass
class ImportOptions:
    level: int
    code_field: str | None = None
    name_field: str | None = None
    parent_field: str | None = None
    county_code: str | None = None       # 6 digits; given → missing codes are generated
    street_code: str | None = None       # 3-digit street number (level 1: the code; level 2: the parent)
    layer: str | None = None
    source_crs: str | None = None        # e.g. "EPSG:4547"; overrides the file's CRS
    gcj02: bool = False
    tolerance_m: float = 1.0
    replace: bool = False
    name_en_field: str | None = None
    encoding: str | None = None          # source text encoding (default: detect)
    at: dt.datetime | None = None        # when new versions start / old ones close (default now)


class ImportValidationError(Exception):
    """The file was not imported; ``problems`` lists everything wrong (bilingual ``str()``)."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__(f"导入失败，{len(self.problems)} 个问题 / import failed with "
                         f"{len(self.problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclass
class ImportReport:
    path: str
    level: int
    features: int = 0
    inserted: int = 0
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)   # --replace rows equal to the current version
    generated: list[tuple[int, str, str]] = field(default_factory=list)  # (feature, name, code)
    crs: str = ""
    gcj02: bool = False
    encoding: str | None = None
    fields: dict[str, str | None] = field(default_factory=dict)   # role → source field
    notes: list[tuple[str, str]] = field(default_factory=list)    # (zh, en)
    codes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"导入完成 / import complete: {self.path}",
                 f"  层级 / level: {self.level} {LEVEL_ZH[self.level]} / {LEVEL_EN[self.level]}",
                 f"  要素 {self.features} 个，新增版本 {self.inserted} 个，替换 {len(self.replaced)} 个 / "
                 f"features: {self.features}, versions written: {self.inserted}, replaced: {len(self.replaced)}",
                 f"  坐标系 / CRS: {self.crs} → EPSG:4326"
                 + ("，已做 GCJ-02 → WGS84 纠偏 / GCJ-02 offset removed" if self.gcj02 else "")]
        if self.encoding:
            lines.append(f"  编码 / text encoding: {self.encoding}")
        if self.fields:
            lines.append("  字段 / fields: " + ", ".join(f"{k}={v or '—'}" for k, v in self.fields.items()))
        if self.replaced:
            lines.append("  已关闭旧版本 / closed old versions: " + ", ".join(self.replaced))
        if self.unchanged:
            lines.append("  未变化，未新建版本 / unchanged, no new version: " + ", ".join(self.unchanged))
        if self.generated:
            lines.append(f"  自动生成编码 {len(self.generated)} 个 / generated codes ({len(self.generated)}):")
            for feature, name, code in self.generated:
                lines.append(f"    第{feature}个要素「{name}」→ {code} / feature #{feature} \"{name}\" → {code}")
        for zh, en in self.notes:
            lines.append(f"  注意：{zh} / note: {en}")
        return "\n".join(lines)

    def __rich__(self):
        """Printed by rich (the CLI) as this plain text, not as a dataclass repr or markup."""
        from rich.text import Text

        return Text(str(self))


def _file_problem(zh: str, en: str) -> Problem:
    return Problem("file", zh, en)


# -- reading ------------------------------------------------------------------------------------
@dataclass
class _Read:
    frame: gpd.GeoDataFrame            # candidate frame in EPSG:4326 (see geodata.grids.rules)
    crs: str
    encoding: str | None
    fields: dict[str, str | None]
    notes: list[tuple[str, str]]


def _has_cpg(path: Path) -> bool:
    return any(p.suffix.lower() == ".cpg" and p.stem == path.stem for p in path.parent.glob(path.stem + ".*"))


def _reader_text(exc: Exception, path: Path) -> str:
    """The reader's message with the file's folder left out (an upload's is a server's temporary one)."""
    return str(exc).replace(str(path), path.name).replace(str(path.parent) + "/", "")


def _read_raw(path: Path, opts: ImportOptions) -> tuple[gpd.GeoDataFrame, str | None, list[tuple[str, str]]]:
    notes: list[tuple[str, str]] = []
    if not path.exists():
        raise ImportValidationError([_file_problem(f"文件不存在：{path}", f"no such file: {path}")])
    try:
        listed = pyogrio.list_layers(path)
    except Exception as exc:
        why = _reader_text(exc, path)
        raise ImportValidationError([_file_problem(f"无法读取文件 {path.name}：{why}",
                                                   f"cannot read {path.name}: {why}")]) from exc
    layers = [str(name) for name, _ in listed]
    spatial = [str(name) for name, gtype in listed if gtype is not None]  # not e.g. QGIS layer_styles
    layer = opts.layer
    if layer is None and len(layers) > 1 and len(spatial) == 1:
        layer = spatial[0]
    if layer is not None and layer not in layers:
        raise ImportValidationError([_file_problem(
            f"文件中没有图层「{layer}」；现有图层：{'、'.join(layers)}",
            f"no layer \"{layer}\" in the file; layers: {', '.join(layers)}")])
    if layer is None and len(layers) > 1:
        raise ImportValidationError([_file_problem(
            f"文件有多个图层：{'、'.join(spatial or layers)}；请用 --layer 指定",
            f"the file has several layers: {', '.join(spatial or layers)}; choose one with --layer")])
    kw: dict = {"layer": layer} if layer is not None else {}
    encoding = opts.encoding
    if encoding is None and path.suffix.lower() == ".shp" and not _has_cpg(path):
        info = pyogrio.read_info(path, **kw)
        if (info.get("encoding") or "ISO-8859-1").upper() in ("ISO-8859-1", "LATIN1"):
            # no .cpg and no code page mark: GDAL would guess Latin-1. Chinese data is UTF-8 or GBK.
            encoding = "UTF-8"
            try:
                gdf = pyogrio.read_dataframe(path, encoding="UTF-8", **kw)
            except UnicodeDecodeError:
                encoding = "GB18030"
                gdf = pyogrio.read_dataframe(path, encoding="GB18030", **kw)
                notes.append(("Shapefile 无 .cpg 文件，按 GBK/GB18030 解码文字",
                              "Shapefile has no .cpg: text decoded as GBK/GB18030"))
            return gdf, encoding, notes
    try:
        gdf = pyogrio.read_dataframe(path, encoding=encoding, **kw) if encoding else \
            pyogrio.read_dataframe(path, **kw)
    except UnicodeDecodeError as exc:
        raise ImportValidationError([_file_problem(
            f"文字无法按 {encoding} 解码：{exc}", f"text cannot be decoded as {encoding}: {exc}")]) from exc
    except Exception as exc:
        why = _reader_text(exc, path)
        raise ImportValidationError([_file_problem(f"无法读取文件 {path.name}：{why}",
                                                   f"cannot read {path.name}: {why}")]) from exc
    if encoding is None and path.suffix.lower() == ".shp":
        try:
            encoding = pyogrio.read_info(path, **kw).get("encoding")
        except Exception:
            encoding = None
    return gdf, encoding, notes


def _pick_field(columns: list[str], chosen: str | None, candidates: tuple[str, ...], role_zh: str,
                role_en: str, option: str, problems: list[Problem]) -> str | None:
    if chosen:
        if chosen in columns:
            return chosen
        by_lower = {c.lower(): c for c in columns}
        if chosen.lower() in by_lower:
            return by_lower[chosen.lower()]
        problems.append(_file_problem(
            f"找不到{role_zh}字段「{chosen}」（{option}）；文件字段：{'、'.join(columns) or '无'}",
            f"no {role_en} field \"{chosen}\" ({option}); fields in the file: {', '.join(columns) or 'none'}"))
        return None
    by_lower = {c.strip().lower(): c for c in columns}
    for cand in candidates:
        if cand.lower() in by_lower:
            return by_lower[cand.lower()]
    return None


_INT_FLOAT = re.compile(r"^(\d+)\.0*$")


def _code_value(v) -> str | None:
    """Codes may come as text, integers or floats (Shapefile/Excel numeric fields)."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return None
        if float(v).is_integer():
            return str(int(v))
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    s = str(v).strip()
    m = _INT_FLOAT.match(s)
    return (m.group(1) if m else s) or None


def _parent_value(v) -> str | None:
    """A parent code, also as DataV GeoAtlas writes it: ``{"adcode": 410102}`` (an object or its JSON)."""
    if isinstance(v, str) and v.strip().startswith("{"):
        try:
            v = json.loads(v)
        except ValueError:
            return _code_value(v)
    if isinstance(v, dict):
        v = v.get("adcode")
    return _code_value(v)


#: Administrative-division codes (统计用区划代码) by length: 9 digits = a street (乡镇/街道),
#: 12 digits = a community or village (社区/村). They are the prefix of the 14-digit grid code.
_ADMIN_CODE_LEN = {9: "街道", 12: "社区/村"}


def _admin_to_grid_code(code: str | None, counter: list[int]) -> str | None:
    """Pad a 9- or 12-digit administrative-division code to the 14-digit grid code it is the prefix
    of (``410102003`` → ``41010200300000``); any other value is returned as it is."""
    if code and code.isascii() and code.isdigit() and len(code) in _ADMIN_CODE_LEN:
        counter[0] += 1
        return code.ljust(14, "0")
    return code


def _text_value(v) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    s = str(v).strip()
    return s or None


def _describe(crs: CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} {crs.name}" if epsg else crs.name


def _clearly_lonlat(gdf: gpd.GeoDataFrame) -> bool:
    xy = shapely.get_coordinates(gdf.geometry.dropna().values)
    return bool(len(xy)) and bool(np.isfinite(xy).all()) and bool((np.abs(xy[:, 0]) <= 180).all()) \
        and bool((np.abs(xy[:, 1]) <= 90).all())


def read_candidates(path: str | Path, opts: ImportOptions) -> _Read:
    """Read a boundary file into a candidate frame (EPSG:4326; columns per geodata.grids.rules)."""
    path = Path(path)
    gdf, encoding, notes = _read_raw(path, opts)
    problems: list[Problem] = []
    if len(gdf) == 0:
        problems.append(_file_problem("文件中没有要素", "the file has no features"))

    # CRS: once, at the edge
    src: CRS | None = None
    if opts.source_crs:
        try:
            src = CRS.from_user_input(opts.source_crs)
        except CRSError as exc:
            problems.append(_file_problem(f"无法识别坐标系 {opts.source_crs}：{exc}",
                                          f"unknown CRS {opts.source_crs}: {exc}"))
        else:
            if gdf.crs is not None and not CRS(gdf.crs).equals(src):
                notes.append((f"文件声明的坐标系为 {_describe(CRS(gdf.crs))}，已按 --crs 改用 {_describe(src)}",
                              f"the file declares {_describe(CRS(gdf.crs))}; --crs {_describe(src)} used instead"))
    elif gdf.crs is not None:
        src = CRS(gdf.crs)
    elif len(gdf) and _clearly_lonlat(gdf):
        src = WGS84
        notes.append(("文件未声明坐标系，坐标为经纬度，按 EPSG:4326 (WGS84) 处理；如为 CGCS2000 结果相同，"
                      "如取自高德/腾讯地图请加 --gcj02",
                      "the file declares no CRS and its coordinates are lon/lat: taken as EPSG:4326 "
                      "(same as CGCS2000 at map scale; add --gcj02 if traced from AMap/Tencent)"))
    elif len(gdf):
        problems.append(_file_problem(
            "文件未声明坐标系，且坐标不是经纬度；请用 --crs 指定，例如 EPSG:4547（CGCS2000 3度带 114°E）",
            "the file declares no CRS and its coordinates are not lon/lat; give --crs, e.g. EPSG:4547 "
            "(CGCS2000 3-degree Gauss-Krüger, CM 114°E)"))

    columns = [c for c in gdf.columns if c != gdf.geometry.name]
    code_f = _pick_field(columns, opts.code_field, CODE_FIELDS, "编码", "code", "--code-field", problems)
    name_f = _pick_field(columns, opts.name_field, NAME_FIELDS, "名称", "name", "--name-field", problems)
    parent_f = _pick_field(columns, opts.parent_field, PARENT_FIELDS, "上级编码", "parent code",
                           "--parent-field", problems) if opts.level > 1 else None
    name_en_f = _pick_field(columns, opts.name_en_field, NAME_EN_FIELDS, "英文名称", "English name",
                            "--name-en-field", problems)
    if name_f is None and not opts.name_field:
        problems.append(_file_problem(
            f"找不到名称字段；请用 --name-field 指定。文件字段：{'、'.join(columns) or '无'}",
            f"no name field found; choose one with --name-field. Fields in the file: {', '.join(columns) or 'none'}"))
    if code_f is None and not opts.code_field and not opts.county_code:
        problems.append(_file_problem(
            f"找不到编码字段；请用 --code-field 指定，或用 --county-code 按编码规则自动生成。文件字段：{'、'.join(columns) or '无'}",
            f"no code field found; choose one with --code-field, or give --county-code to generate codes "
            f"by the coding rule. Fields in the file: {', '.join(columns) or 'none'}"))
    if problems:
        raise ImportValidationError(problems)

    geoms = gdf.geometry.set_crs(src, allow_override=True)
    if not src.equals(WGS84):
        geoms = geoms.to_crs(WGS84)
    values = []
    for g in geoms.values:
        if g is None or g.is_empty:
            values.append(g)
            continue
        g = shapely.force_2d(g)
        if opts.gcj02:
            g = gcj02_geometry_to_wgs84(g)
        values.append(g)
    n = len(gdf)

    def col(values) -> pd.Series:
        return pd.Series(values, dtype=object)

    padded = [0]
    codes = [_admin_to_grid_code(_code_value(v), padded) for v in gdf[code_f]] if code_f else [None] * n
    parent_codes = ([_admin_to_grid_code(_parent_value(v), padded) for v in gdf[parent_f]]
                    if parent_f else [None] * n)
    if padded[0]:
        notes.append((f"{padded[0]} 个 9/12 位行政区划代码已按编码规则补零为 14 位网格编码",
                      f"{padded[0]} 9/12-digit administrative-division codes were padded to 14-digit grid codes"))
    county_like = sorted({c for c in codes if c and c.isascii() and c.isdigit() and len(c) == 6})
    if county_like and not opts.county_code:
        problems.append(_file_problem(
            f"字段「{code_f}」是 6 位县级行政区划代码（如 {county_like[0]}），不是网格编码；"
            f"请用 --county-code {county_like[0]} 按编码规则生成编码，或用 --code-field 指定网格编码字段",
            f"field \"{code_f}\" holds 6-digit county codes (e.g. {county_like[0]}), not grid codes; give "
            f"--county-code {county_like[0]} to generate codes by the coding rule, or --code-field for the grid-code field"))
        raise ImportValidationError(problems)
    if county_like:
        codes = [None if c in county_like else c for c in codes]  # generated from --county-code instead
    frame = gpd.GeoDataFrame({
        "feature": np.arange(1, n + 1),
        "code": col(codes),
        "name": col([_text_value(v) for v in gdf[name_f]] if name_f else [None] * n),
        "name_en": col([_text_value(v) for v in gdf[name_en_f]] if name_en_f else [None] * n),
        "parent_code": col(parent_codes),
    }, geometry=gpd.GeoSeries(values, crs=WGS84), crs=WGS84)
    fields = {"code": code_f, "name": name_f, "parent": parent_f, "name_en": name_en_f}
    return _Read(frame, _describe(src), encoding, fields, notes)


# -- import -------------------------------------------------------------------------------------
def _street_number(opts: ImportOptions) -> tuple[int | None, list[Problem]]:
    if not opts.street_code:
        return None, []
    s = str(opts.street_code).strip()
    if not re.fullmatch(r"\d{1,3}", s) or int(s) == 0:
        return None, [_file_problem(f"街道编号须为1–3位数字（001–999）：{s!r}",
                                    f"street number must be 1–3 digits (001–999): {s!r}")]
    return int(s), []


def _prepare(session: Session, path: str | Path, opts: ImportOptions):
    """Read a boundary file and give each feature its parent and (with a county code) its code:
    (frame, read, report, problems so far, county code, whether codes were generated, parents)."""
    level = opts.level
    if level not in (1, 2, 3):
        raise ImportValidationError([_file_problem(f"层级须为1、2或3：{level}", f"level must be 1, 2 or 3: {level}")])
    problems: list[Problem] = []
    if opts.county_code is not None and not re.fullmatch(r"\d{6}", opts.county_code.strip()):
        problems.append(_file_problem(f"县级行政区划代码须为6位数字：{opts.county_code!r}",
                                      f"county code must be 6 digits: {opts.county_code!r}"))
    if opts.tolerance_m < 0 or not math.isfinite(opts.tolerance_m):
        problems.append(_file_problem(f"容差须为非负数：{opts.tolerance_m}",
                                      f"tolerance must be a non-negative number: {opts.tolerance_m}"))
    street_n, sp = _street_number(opts)
    problems += sp
    if street_n is not None and level == 2 and not opts.county_code:
        problems.append(_file_problem("指定 --street-code 时须同时给出 --county-code",
                                      "--street-code needs --county-code"))
    if problems:
        raise ImportValidationError(problems)
    county = opts.county_code.strip() if opts.county_code else None

    read = read_candidates(path, opts)
    frame = read.frame
    report = ImportReport(path=str(path), level=level, features=len(frame), crs=read.crs,
                          gcj02=opts.gcj02, encoding=read.encoding, fields=read.fields,
                          notes=list(read.notes))

    # parents
    parents = store.current_grids(session, level - 1) if level > 1 else []
    if level == 2 and street_n is not None:
        fixed = make_street_code(county, street_n)
        frame["parent_code"] = _objects(frame, [rules.text_or_none(p) or fixed for p in frame["parent_code"]])
    frame["parent_code"] = _objects(frame, rules.resolve_parents(frame, level, parents))

    # codes
    generate = county is not None and any(rules.text_or_none(c) is None for c in frame["code"])
    if generate:
        taken = store.used_codes(session, prefix=county)
        generated, gen_problems = rules.generate_codes(frame, level, county_code=county,
                                                       street_number=street_n, taken=taken)
        problems += gen_problems
        codes = list(frame["code"])
        for pos, code in generated.items():
            codes[pos] = code
        frame["code"] = _objects(frame, codes)
        report.generated = [(int(frame.iloc[p]["feature"]), frame.iloc[p]["name"] or "", c)
                            for p, c in sorted(generated.items())]
    return frame, read, report, problems, county, generate, parents


def import_grids(session: Session, path: str | Path, opts: ImportOptions) -> ImportReport:
    """Validate a boundary file and write it in the session's transaction; see the module doc."""
    level = opts.level
    frame, read, report, problems, county, generate, parents = _prepare(session, path, opts)
    file_codes = sorted({c for c in map(rules.text_or_none, frame["code"]) if c})
    involved_parents = sorted({p for p in map(rules.text_or_none, frame["parent_code"]) if p})
    current = {g.code: g for g in store.current_grids(session, level, codes=file_codes)}
    if level == 1:
        current.update({g.code: g for g in store.current_grids(session, 1)})
    else:
        current.update({g.code: g for g in store.current_grids(session, level, parent_codes=involved_parents)})
    at = opts.at or store.now()
    replaced = sorted(c for c in file_codes if c in current) if opts.replace else []
    if replaced:
        # a replacement that changes nothing opens no new version
        unchanged = set()
        repeated = frame["code"].value_counts()
        for r in frame.itertuples(index=False):
            old = current.get(r.code)
            if old is not None and repeated[r.code] == 1 and _same(old, r, level, read.fields):
                unchanged.add(r.code)
        if unchanged:
            report.unchanged = sorted(unchanged)
            frame = frame[[c not in unchanged for c in frame["code"]]].reset_index(drop=True)
            replaced = [c for c in replaced if c not in unchanged]
        for code in replaced:
            if current[code].valid_from is not None and current[code].valid_from >= at:
                g = current[code]
                problems.append(Problem(
                    "code_exists",
                    f"现行版本自 {g.valid_from.isoformat()} 起生效，不早于本次导入时间 {at.isoformat()}，无法替换",
                    f"the current version starts at {g.valid_from.isoformat()}, not before this import "
                    f"({at.isoformat()}): cannot replace it", code=code, name=g.name))
    children = store.current_grids(session, level + 1, parent_codes=replaced) if replaced and level < 3 else []

    problems += rules.validate_grids(frame, level, parents=parents, current=list(current.values()),
                                     children=children, tolerance_m=opts.tolerance_m,
                                     replace=opts.replace, county_code=county, codes_generated=generate,
                                     retired=store.retired_codes(session, [c for c in file_codes if c not in current]))
    if problems:
        raise ImportValidationError(_sorted(problems))

    # write: one transaction (the caller's); close old versions and open new ones at one instant
    note = f"导入自 {Path(path).name}（{read.crs}{'，GCJ-02纠偏' if opts.gcj02 else ''}）/ imported from {Path(path).name}"
    def name_en(r) -> str | None:
        # a file without an English-name field keeps the stored one
        if read.fields.get("name_en") is None and r.code in current:
            return current[r.code].name_en
        return r.name_en

    rows = [store.NewGrid(code=r.code, level=level, parent_code=r.parent_code if level > 1 else None,
                          name=r.name, name_en=name_en(r), geom=as_multipolygon(r.geometry), note=note)
            for r in frame.itertuples(index=False)]
    closed = store.close_versions(session, replaced, at)
    if closed != len(replaced):  # pragma: no cover - a concurrent change between read and write
        raise RuntimeError("grid versions changed during import; retry")
    report.replaced = replaced
    report.inserted = store.insert_grids(session, rows, at)
    report.codes = [r.code for r in rows]
    return report


def _same(old: store.GridRow, r, level: int, fields: dict) -> bool:
    """Whether a candidate row equals the stored current version (name, parent, boundary)."""
    if old.name != r.name or (level > 1 and old.parent_code != r.parent_code):
        return False
    if fields.get("name_en") is not None and (old.name_en or None) != (r.name_en or None):
        return False
    g = r.geometry
    if g is None or g.is_empty or g.geom_type not in ("Polygon", "MultiPolygon") or not g.is_valid:
        return False
    return bool(old.geom.hausdorff_distance(g) < 1e-10)


def _objects(frame: pd.DataFrame, values) -> pd.Series:
    """A column of plain Python objects (no inferred string dtype: None stays None)."""
    return pd.Series(list(values), dtype=object, index=frame.index)


def _sorted(problems: list[Problem]) -> list[Problem]:
    """File problems first, then by feature number, stored grids last (stable within each)."""
    def key(p: Problem):
        if p.kind == "file":
            return (0, 0)
        return (1, p.feature) if p.feature is not None else (2, 0)
    return sorted(problems, key=key)


# -- export -------------------------------------------------------------------------------------
_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile"}
_SHP_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def export_grids(session: Session, path: str | Path, *, level: int | None = None,
                 as_of: dt.datetime | None = None, scope: Scope | None = None) -> int:
    """Write the grids valid at ``as_of`` (default now) to GeoJSON (RFC 7946), GeoPackage or
    Shapefile (UTF-8 with ``.cpg``), chosen by the extension. Returns the number written."""
    _driver(path)
    return write_grids(store.current_grids(session, level, as_of, scope), path)


def _driver(path: str | Path) -> str:
    path = Path(path)
    driver = _DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise ValueError(f"不支持的导出格式：{path.suffix or '(无扩展名)'}（可用 .geojson、.gpkg、.shp）/ "
                         f"unsupported export format {path.suffix or '(no extension)'} (use .geojson, .gpkg or .shp)")
    return driver


def write_grids(rows: list, path: str | Path) -> int:
    """Write grid rows (``store.GridRow``-like) to the file format chosen by ``path``'s extension."""
    path = Path(path)
    driver = _driver(path)
    rows = sorted(rows, key=lambda r: (r.level, r.code))

    def when(t: dt.datetime | None):
        if t is None:
            return None
        t = t.astimezone(dt.UTC)
        return t.isoformat() if driver == "ESRI Shapefile" else t

    data = {  # field names all ≤ 10 characters, so Shapefiles keep them as they are
        "code": [r.code for r in rows],
        "name": [r.name for r in rows],
        "name_en": [r.name_en for r in rows],
        "level": np.array([r.level for r in rows], dtype="int32"),
        "parent": [r.parent_code for r in rows],
        "area_m2": np.array([round(r.area_m2, 2) for r in rows], dtype="float64"),
        "valid_from": [when(r.valid_from) for r in rows],
        "valid_to": [when(r.valid_to) for r in rows],
    }
    frame = pd.DataFrame(data)
    for col in ("code", "name", "name_en", "parent"):
        frame[col] = frame[col].astype(object)
    if driver != "ESRI Shapefile":
        for col in ("valid_from", "valid_to"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([r.geom for r in rows], crs=WGS84), crs=WGS84)

    path.parent.mkdir(parents=True, exist_ok=True)
    if driver == "ESRI Shapefile":
        for ext in _SHP_SIDECARS:
            for cand in (path.with_suffix(ext), path.with_suffix(ext.upper())):
                cand.unlink(missing_ok=True)
    else:
        path.unlink(missing_ok=True)
    kw: dict = {"driver": driver, "geometry_type": "MultiPolygon", "promote_to_multi": True}
    if driver == "GeoJSON":
        # RFC 7946: lon/lat WGS84, counter-clockwise outer rings; keep full precision (~1e-12°)
        kw["layer_options"] = {"RFC7946": "YES", "COORDINATE_PRECISION": "12", "WRITE_NAME": "NO"}
    elif driver == "GPKG":
        kw["layer"] = "grid"
    else:
        kw["encoding"] = "UTF-8"  # writes the .cpg, so Chinese names survive
    pyogrio.write_dataframe(gdf, path, **kw)
    return len(rows)


# -- proposals (the boundary editor's change sets, geodata.grids.changesets) ----------------------
def propose_file(session: Session, path: str | Path, opts: ImportOptions, *, reason: str,
                 author: changesets.Author, retire_missing: bool = False,
                 source: str | None = None) -> tuple[int, edits.Draft]:
    """A boundary file (any format and CRS the import reads) as a proposal: its grids' new boundaries
    (codes current) and new grids (codes new, or generated from ``--county-code``); with
    ``retire_missing`` the current grids of that level under the same parents that the file lacks
    are retired. Validated against the current tiling with the import's rules; any problem raises
    :class:`ImportValidationError` and nothing is saved. Returns (proposal id, draft)."""
    frame, read, _report, problems, *_ = _prepare(session, path, opts)
    if problems:
        raise ImportValidationError(_sorted(problems))
    level = opts.level
    draft = changesets.load_draft(session)
    seen: dict[str, int] = {}
    for r in frame.itertuples(index=False):
        code, name = rules.text_or_none(r.code), rules.text_or_none(r.name)
        if code in seen:
            problems.append(Problem("duplicate_code", f"编码 {code} 与第{seen[code]}个要素重复",
                                    f"code {code} repeats feature #{seen[code]}", feature=int(r.feature), code=code))
            continue
        if code is None or name is None:
            problems.append(Problem("missing_code" if code is None else "missing_name",
                                    "缺少网格编码" if code is None else "缺少网格名称",
                                    "missing grid code" if code is None else "missing grid name",
                                    feature=int(r.feature), code=code, name=name))
            continue
        seen[code] = int(r.feature)
        old = draft.get(code)
        name_en = rules.text_or_none(r.name_en) if read.fields.get("name_en") else (old.name_en if old else None)
        parent = rules.text_or_none(r.parent_code) if level > 1 else None
        draft.put(edits.Item(code, level, parent, name, r.geometry, name_en,
                             predecessor=None, feature=int(r.feature)))
    if problems:
        raise ImportValidationError(_sorted(problems))
    if retire_missing:
        parents = {p for p in map(rules.text_or_none, frame["parent_code"]) if p} if level > 1 else {None}
        for g in draft.grids(level):
            if g.code not in seen and g.parent_code in parents:
                draft.retire(g.code)
    problems = changesets.validate(session, draft, tolerance_m=opts.tolerance_m)
    if problems:
        raise ImportValidationError(_sorted(problems))
    pid = changesets.save_proposal(session, draft, author, reason, effective_at=opts.at,
                                   source=(source or Path(path).name)[:200])
    return pid, draft


def export_proposal(session: Session, proposal_id: int, path: str | Path) -> int:
    """Write a proposal's new grid versions (not the retired ones) to GeoJSON, GeoPackage or Shapefile."""
    _prop, draft, _bases = changesets.proposal_draft(session, proposal_id)
    rows = [store.GridRow(code=c.code, level=c.level, parent_code=c.parent_code, name=c.name, geom=as_multipolygon(c.geom),
                          area_m2=area_m2(c.geom), name_en=c.name_en)
            for c in draft.changes() if c.geom is not None]
    return write_grids(rows, path)


#: what the boundary editor's upload takes: one file, or a Shapefile's parts in a .zip
UPLOAD_SUFFIXES = (".geojson", ".json", ".gpkg", ".zip")
UPLOAD_MAX_MEMBERS = 16
UPLOAD_MAX_UNZIPPED = 32 * 1024 * 1024


def _upload_error(code: str, zh: str, en: str) -> Exception:
    from geodata.errors import DomainError

    return DomainError(code, zh, en, field="file")


def propose_upload(session: Session, data: bytes, filename: str, opts: ImportOptions, *, reason: str,
                   author: changesets.Author) -> tuple[int, edits.Draft]:
    """:func:`propose_file` for a file uploaded from the boundary editor: GeoJSON, GeoPackage, or a
    Shapefile as a .zip of its parts (.shp, .shx, .dbf, .prj, .cpg). Written to a private temporary
    folder; a zip is unpacked by its members' base names only (no paths), at most
    ``UPLOAD_MAX_MEMBERS`` members and ``UPLOAD_MAX_UNZIPPED`` bytes, and must hold one .shp. A bad
    file is a bilingual DomainError (field ``file``); problems of its grids, ImportValidationError."""
    import tempfile
    import zipfile

    name = Path(filename or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise _upload_error("unsupported_file", f"不支持的文件类型“{suffix or name}”（可用 GeoJSON、GeoPackage，"
                            "或 Shapefile 打包为 .zip）", f"unsupported file type '{suffix or name}' (use GeoJSON, "
                            "GeoPackage, or a Shapefile zipped)")
    if not data:
        raise _upload_error("empty_file", "文件为空", "the file is empty")
    with tempfile.TemporaryDirectory(prefix="gw-upload-") as tmp:
        folder = Path(tmp)
        if suffix != ".zip":
            # the file's own name (so a problem names it), unless it has characters a path should not
            path = folder / (name if re.fullmatch(r"[\w\-. ()（）]{1,120}", name) else f"upload{suffix}")
            path.write_bytes(data)
        else:
            import io

            try:
                zf = zipfile.ZipFile(io.BytesIO(data))
                members = [m for m in zf.infolist() if not m.is_dir()]
            except zipfile.BadZipFile:
                raise _upload_error("invalid_zip", "不是有效的 zip 文件", "not a valid zip file") from None
            if len(members) > UPLOAD_MAX_MEMBERS or sum(m.file_size for m in members) > UPLOAD_MAX_UNZIPPED:
                raise _upload_error("zip_too_large", f"zip 内文件过多或过大（最多 {UPLOAD_MAX_MEMBERS} 个、"
                                    f"{UPLOAD_MAX_UNZIPPED // 2**20} MB）", f"the zip holds too many or too large "
                                    f"files (at most {UPLOAD_MAX_MEMBERS}, {UPLOAD_MAX_UNZIPPED // 2**20} MB)")
            shps = []
            for m in members:
                base = Path(m.filename.replace("\\", "/")).name
                if not base or base.startswith("."):
                    continue
                with zf.open(m) as src:
                    body = src.read(UPLOAD_MAX_UNZIPPED + 1)
                if len(body) > m.file_size:   # a member larger than the zip says: refused
                    raise _upload_error("zip_too_large", "zip 内文件大小与记录不符", "a zip member is larger than recorded")
                (folder / base).write_bytes(body)
                if base.lower().endswith(".shp"):
                    shps.append(folder / base)
            if len(shps) != 1:
                raise _upload_error("zip_no_shapefile", "zip 中须恰好有一个 .shp 文件（及其 .shx、.dbf、.prj）",
                                    "the zip must hold exactly one .shp (with its .shx, .dbf, .prj)")
            path = shps[0]
        return propose_file(session, path, opts, reason=reason, author=author, source=name)
