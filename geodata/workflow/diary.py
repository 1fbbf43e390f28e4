"""民情日记 (patrol diary): officials record patrols and visits; a finding becomes a report."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import mapping, shape
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geodata.access.capabilities import REPORT
from geodata.access.scope import Scope
from geodata.clock import at_or_now, local
from geodata.errors import ConflictError, DomainError, ForbiddenError, not_found
from geodata.geometry import INPUT_CRS, check_lon_lat, gcj02_geometry_to_wgs84, to_wgs84
from geodata.grids.assignment import locate_block
from geodata.grids.store import in_grid
from geodata.models import BIGINT_MAX, Official, PatrolDiary
from geodata.workflow import rules as wf
from geodata.workflow.identity import Actor
from geodata.workflow.photos import PhotoIn, PhotoStore
from geodata.workflow.rules import MAX_PAGE_SIZE, MAX_TEXT, clean_text
from geodata.workflow.service import report_issue

UTC = dt.UTC
#: Diary times must fall between this date and a few minutes from now.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)


TRACK_TYPES = ("Point", "MultiPoint", "LineString")


def _track(track: dict | None, crs: str) -> Any:
    if track is None:
        return None
    try:
        geom = shape(track)
    except Exception:
        raise DomainError("invalid_track", "轨迹须为 GeoJSON 的 Point、MultiPoint 或 LineString",
                           "track must be a GeoJSON Point, MultiPoint or LineString", field="track") from None
    if geom.geom_type not in TRACK_TYPES or geom.is_empty:
        raise DomainError("invalid_track", "轨迹须为 GeoJSON 的 Point、MultiPoint 或 LineString",
                           "track must be a GeoJSON Point, MultiPoint or LineString", field="track")
    geom = shapely.force_2d(geom)
    coords = shapely.get_coordinates(geom)
    if len(coords) > 20000:
        raise DomainError("track_too_long", "轨迹点数过多（最多 20000）", "too many track points (max 20000)",
                           field="track")
    for x, y in coords:
        check_lon_lat(float(x), float(y), "track.lon", "track.lat")
    if crs not in INPUT_CRS:
        to_wgs84(0, 0, crs)  # raises the unknown-crs error
    if crs == "gcj02":
        geom = gcj02_geometry_to_wgs84(geom)
    return geom


def _render_diary(d: PatrolDiary, tz: ZoneInfo, official_name: str | None = None) -> dict:
    geom = to_shape(d.track) if d.track is not None else None
    return {"id": d.id, "grid_code": d.grid_code, "official_id": d.official_id, "official_name": official_name,
            "kind": d.kind, "started_at": local(d.started_at, tz), "ended_at": local(d.ended_at, tz),
            "track": mapping(geom) if geom is not None else None, "households": d.households, "shops": d.shops,
            "firms": d.firms, "findings": d.findings, "issue_id": d.issue_id}


def record_diary(session: Session, actor: Actor, *, kind: str, started_at: dt.datetime,
                 ended_at: dt.datetime | None = None, track: dict | None = None, crs: str = "wgs84",
                 households: int = 0, shops: int = 0, firms: int = 0, findings: str = "",
                 grid_code: str | None = None, now: dt.datetime | None = None, tz: ZoneInfo) -> dict:
    """民情日记: an official records a patrol (日巡查) or a visit (日走访) in a grid they hold a role in.
    Without ``grid_code`` the grid is the block of the track's first point, else the actor's block."""
    now = at_or_now(now, "now")
    if not actor.is_official:
        raise ForbiddenError("official_required", "只有网格工作人员可以记录民情日记",
                             "only grid staff may record a patrol diary")
    if kind not in ("patrol", "visit"):
        raise DomainError("unknown_kind", f"未知日记类型“{kind}”（patrol 巡查 / visit 走访）",
                           f"unknown diary kind '{kind}' (patrol or visit)", field="kind")
    for value, name in ((started_at, "started_at"), (ended_at, "ended_at")):
        if value is not None and value.tzinfo is None:
            raise DomainError("naive_datetime", f"{name} 须带时区", f"{name} must include a time zone", field=name)
    for value, name in ((started_at, "started_at"), (ended_at, "ended_at")):
        if value is not None and not EARLIEST <= value <= now + dt.timedelta(minutes=10):
            raise DomainError("out_of_range", f"{name} 须在 2000 年之后且不晚于当前时间",
                               f"{name} must be after 2000 and not in the future", field=name)
    if ended_at is not None and ended_at < started_at:
        raise DomainError("invalid_range", "结束时间早于开始时间", "ended_at is before started_at", field="ended_at")
    for value, name in ((households, "households"), (shops, "shops"), (firms, "firms")):
        if not isinstance(value, int) or not 0 <= value <= 100000:
            raise DomainError("invalid_count", f"{name} 须为 0–100000 的整数", f"{name} must be 0–100000", field=name)
    findings = clean_text(findings, "findings", max_len=MAX_TEXT["description"])
    geom = _track(track, crs)
    if grid_code is None:
        if geom is not None:
            first = shapely.get_coordinates(geom)[0]
            grid_code = locate_block(session, float(first[0]), float(first[1]), as_of=now).grid_code
        else:
            blocks = sorted(c for c, r in actor.assignments if r == "grid_leader")
            if not blocks:
                raise DomainError("required", "请指定网格编码 grid_code 或轨迹 track", "give grid_code or a track",
                                   field="grid_code")
            grid_code = blocks[0]
    else:
        exists = session.execute(text("SELECT 1 FROM grid WHERE code = :c AND valid_to IS NULL"),
                                 {"c": grid_code}).first()
        if not exists:
            raise not_found("网格", "grid", grid_code, field="grid_code")
    if not actor.roles_for(grid_code) or not actor.may(REPORT, grid_code):
        raise ForbiddenError("forbidden", f"您在网格 {grid_code} 没有职责，不能记录该网格的民情日记",
                             f"you hold no role in grid {grid_code}", field="grid_code")
    d = PatrolDiary(grid_code=grid_code, official_id=actor.official_id, kind=kind, started_at=started_at,
                    ended_at=ended_at, track=from_shape(geom, srid=4326) if geom is not None else None,
                    households=households, shops=shops, firms=firms, findings=findings)
    session.add(d)
    session.flush()
    return _render_diary(d, tz, actor.name)


def list_diary(session: Session, scope: Scope, *, grid: str | None = None, official_id: int | None = None,
               date_from: dt.datetime | None = None, date_to: dt.datetime | None = None, page: int = 1,
               page_size: int = 50, tz: ZoneInfo) -> dict:
    if not 1 <= page_size <= MAX_PAGE_SIZE or not 1 <= page <= 1_000_000:
        raise DomainError("invalid_page_size", f"page_size 须在 1–{MAX_PAGE_SIZE} 之间",
                           f"page_size must be 1–{MAX_PAGE_SIZE}", field="page_size")
    conds: list = [scope.filter(PatrolDiary.grid_code)]
    if grid:
        conds.append(in_grid(PatrolDiary.grid_code, grid))
    if official_id is not None:
        conds.append(PatrolDiary.official_id == official_id)
    if date_from is not None:
        conds.append(PatrolDiary.started_at >= date_from)
    if date_to is not None:
        conds.append(PatrolDiary.started_at < date_to)
    total = session.execute(select(func.count()).select_from(PatrolDiary).where(*conds)).scalar_one()
    rows = session.execute(
        select(PatrolDiary, Official.name).join(Official, Official.id == PatrolDiary.official_id).where(*conds)
        .order_by(PatrolDiary.started_at.desc(), PatrolDiary.id.desc())
        .limit(page_size).offset((page - 1) * page_size)).all()
    return {"items": [_render_diary(d, tz, n) for d, n in rows], "total": int(total), "page": page,
            "page_size": page_size, "pages": max(1, math.ceil(total / page_size))}


def diary_to_report(session: Session, diary_id: int, actor: Actor, *, kind: str, domain: str, title: str,
                    description: str = "", lon: float | None = None, lat: float | None = None,
                    crs: str = "wgs84", address: str | None = None, photos: Sequence[PhotoIn] = (),
                    photo_store: PhotoStore | None = None, now: dt.datetime | None = None,
                    tz: ZoneInfo) -> dict:
    """Turn a diary finding into a report (source = the diary's kind). Without a location the last
    point of the track is used. A diary entry links to one report."""
    d = session.get(PatrolDiary, diary_id) if isinstance(diary_id, int) and 0 < diary_id <= BIGINT_MAX else None
    if d is None:
        raise not_found("民情日记", "diary entry", diary_id)
    if actor.official_id != d.official_id and not (actor.roles_for(d.grid_code) & wf.DISPATCHERS):
        raise ForbiddenError("forbidden", "只有日记作者或平台人员可以据此上报",
                             "only the diary's author or platform staff may report from it")
    if d.issue_id is not None:
        raise ConflictError("already_reported", f"该日记已上报为事项 {d.issue_id}",
                            f"this diary entry was already reported as issue {d.issue_id}", field="id",
                            detail={"issue_id": d.issue_id})
    if lon is None or lat is None:
        if d.track is None:
            raise DomainError("required", "日记没有轨迹，请提供 lon/lat", "the diary has no track: give lon and lat",
                               field="lon")
        last = shapely.get_coordinates(to_shape(d.track))[-1]
        lon, lat, crs = float(last[0]), float(last[1]), "wgs84"
    issue = report_issue(session, actor, kind=kind, domain=domain, title=title,
                         description=description or d.findings, lon=lon, lat=lat, crs=crs, source=d.kind,
                         address=address, photos=photos, photo_store=photo_store, now=now, tz=tz)
    d.issue_id = issue["id"]
    session.flush()
    issue["diary_id"] = d.id
    return issue


# -- a patrol recorded as it goes (the phone: start, points in batches, end) -----------------------
MAX_TRACK_POINTS = 20000
MAX_BATCH_POINTS = 2000


def _own_entry(session: Session, diary_id: int, actor: Actor) -> PatrolDiary:
    d = session.get(PatrolDiary, diary_id) if isinstance(diary_id, int) and 0 < diary_id <= BIGINT_MAX else None
    if d is None:
        raise not_found("民情日记", "diary entry", diary_id)
    if actor.official_id is None or actor.official_id != d.official_id:
        raise ForbiddenError("forbidden", "只有日记作者可以续写该日记", "only the diary's author may add to it")
    return d


def append_track(session: Session, diary_id: int, actor: Actor, points: Sequence[Sequence[float]], *,
                 crs: str = "wgs84", tz: ZoneInfo) -> dict:
    """Append a batch of GPS points (``[lon, lat]``, in order) to an open patrol's track: a Point
    becomes a LineString once it has two points. Refused once the entry has ended."""
    d = _own_entry(session, diary_id, actor)
    if d.ended_at is not None:
        raise ConflictError("diary_ended", "该日记已结束，不能再添加轨迹", "this diary entry has ended: no more "
                            "track points", field="points")
    if not points:
        raise DomainError("required", "points 不能为空", "points must not be empty", field="points")
    if len(points) > MAX_BATCH_POINTS:
        raise DomainError("too_many_points", f"每批最多 {MAX_BATCH_POINTS} 个点",
                           f"at most {MAX_BATCH_POINTS} points per batch", field="points")
    new = []
    for i, p in enumerate(points):
        if len(p) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in p):
            raise DomainError("invalid_point", f"第 {i + 1} 个点须为 [经度, 纬度]", f"point {i + 1} must be "
                              "[lon, lat]", field=f"points[{i}]")
        check_lon_lat(float(p[0]), float(p[1]), f"points[{i}].lon", f"points[{i}].lat")
        new.append((float(p[0]), float(p[1])))
    geom = shapely.MultiPoint(new) if len(new) > 1 else shapely.Point(new[0])
    if crs not in INPUT_CRS:
        to_wgs84(0, 0, crs)  # raises the unknown-crs error
    if crs == "gcj02":
        geom = gcj02_geometry_to_wgs84(geom)
    added = [tuple(c) for c in shapely.get_coordinates(geom)]
    old = [tuple(c) for c in shapely.get_coordinates(to_shape(d.track))] if d.track is not None else []
    coords = old + added
    if len(coords) > MAX_TRACK_POINTS:
        raise DomainError("track_too_long", f"轨迹点数过多（最多 {MAX_TRACK_POINTS}）",
                           f"too many track points (max {MAX_TRACK_POINTS})", field="points")
    track = shapely.LineString(coords) if len(coords) > 1 else shapely.Point(coords[0])
    d.track = from_shape(track, srid=4326)
    session.flush()
    return _render_diary(d, tz, actor.name)


def end_diary(session: Session, diary_id: int, actor: Actor, *, ended_at: dt.datetime | None = None,
              households: int = 0, shops: int = 0, firms: int = 0, findings: str = "",
              now: dt.datetime | None = None, tz: ZoneInfo) -> dict:
    """End an open patrol or visit: its end time (default now), visits by kind, findings."""
    now = at_or_now(now, "now")
    d = _own_entry(session, diary_id, actor)
    if d.ended_at is not None:
        raise ConflictError("diary_ended", "该日记已结束", "this diary entry has already ended", field="ended_at")
    ended_at = ended_at or now
    if ended_at.tzinfo is None:
        raise DomainError("naive_datetime", "ended_at 须带时区", "ended_at must include a time zone", field="ended_at")
    if not ended_at <= now + dt.timedelta(minutes=10):
        raise DomainError("out_of_range", "ended_at 不能晚于当前时间", "ended_at must not be in the future",
                           field="ended_at")
    if ended_at < d.started_at:
        raise DomainError("invalid_range", "结束时间早于开始时间", "ended_at is before started_at", field="ended_at")
    for value, name in ((households, "households"), (shops, "shops"), (firms, "firms")):
        if not isinstance(value, int) or not 0 <= value <= 100000:
            raise DomainError("invalid_count", f"{name} 须为 0–100000 的整数", f"{name} must be 0–100000", field=name)
    d.ended_at = ended_at
    d.households, d.shops, d.firms = households, shops, firms
    d.findings = clean_text(findings, "findings", max_len=MAX_TEXT["description"])
    session.flush()
    return _render_diary(d, tz, actor.name)
