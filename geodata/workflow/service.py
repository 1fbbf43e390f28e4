"""Issue workflow service: report, transitions, queries, the contact card, patrol diaries.

Typed functions, Session in, plain data (dicts of JSON-ready values and aware datetimes) out. The
caller owns the transaction (``geodata.db.session_scope``): a function either completes all its
writes or raises before anything is committed, and an error rolls the whole transaction back.

Rules:
- Every transition writes the new state and exactly ONE ``IssueEvent`` row, in the caller's one
  transaction; an illegal transition raises ``TransitionError`` (from ``workflow``) before any write.
- Concurrency is optimistic: ``Issue.version`` is SQLAlchemy's ``version_id_col``, so the UPDATE is
  ``… WHERE id = :id AND version = :seen``. Of two concurrent transitions exactly one matches; the
  other gets :class:`ConflictError` (已被他人修改 / changed by someone else, HTTP 409). A client
  passes the version it last saw as ``expected_version``; a stale one is refused up front.
- Overdue is derived from ``due_at`` / ``closed_at`` and the current time, never stored.
- Personal data (officials' phones, the reporter's name and phone) is rendered only when the
  viewer's scope has ``personal_data`` and covers the issue's grid; it is never logged.

Actor identity (pre-accounts seam): an :class:`Actor` is an official id (or nobody: a resident);
their roles are the roles of their current grid assignments on the issue's grid or its parents,
plus the relational ``assignee`` when the case is assigned to them. See :func:`actor_for`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point, mapping, shape
from sqlalchemy import ColumnElement, and_, case, func, or_, select, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geodata.access.scope import Scope
from geodata.clock import at_or_now
from geodata.codes import CodeError, descendant_prefix
from geodata.geometry import gcj02_geometry_to_wgs84
from geodata.grids.assignment import (
    INPUT_CRS,
    OutsideGridsError,
    ServiceError,
    check_lon_lat,
    locate_block,
    six_ones_chain,
    to_wgs84,
)
from geodata.grids.store import valid_at
from geodata.models import (
    BIGINT_MAX,
    ISSUE_KINDS,
    ISSUE_SOURCES,
    Domain,
    GridAssignment,
    IdempotencyKey,
    Issue,
    IssueEvent,
    IssuePhoto,
    Official,
    PatrolDiary,
)
from geodata.vocab import ROLE_LABELS
from geodata.workflow import rules as wf

__all__ = [
    "ROLE_LABELS",
    "Actor",
    "ConflictError",
    "ForbiddenError",
    "IssueFilters",
    "NotFoundError",
    "OutsideGridsError",
    "PhotoIn",
    "PhotoStore",
    "ServiceError",
    "actor_for",
    "apply_transition",
    "diary_to_report",
    "evaluate",
    "extend",
    "get_issue",
    "idempotent",
    "issue_timeline",
    "list_diary",
    "list_domains",
    "query_issues",
    "reassign",
    "record_diary",
    "report_issue",
    "responsible_for_point",
]

UTC = dt.UTC
SHANGHAI = wf.SHANGHAI

#: When an actor holds several roles that may perform an action, the event records the first here.
ROLE_PREFERENCE = ("assignee", "operator", "platform_maintainer", "first_responsible", "direct_responsible",
                   "grid_leader", "sunk_member", "resident")
MAX_TEXT = {"title": 200, "description": 5000, "note": 2000, "address": 200}
MAX_PAGE_SIZE = 200
#: An extension (延期) may move the due date at most this far ahead of now.
MAX_EXTEND_DAYS = 366
#: Diary times must fall between this date and a few minutes from now.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)


class NotFoundError(ServiceError):
    status = 404


class ConflictError(ServiceError):
    status = 409


class ForbiddenError(ServiceError):
    status = 403


def _conflict(current: int | None = None) -> ConflictError:
    return ConflictError("changed_by_someone_else", "该事项已被他人修改，请刷新后重试",
                         "the issue was changed by someone else; reload it and try again",
                         field="version", detail={"current_version": current} if current else None)


def _not_found(what_zh: str, what_en: str, key: Any, field: str = "id") -> NotFoundError:
    return NotFoundError("not_found", f"{what_zh}“{key}”不存在", f"{what_en} '{key}' does not exist", field=field)


def _now(now: dt.datetime | None) -> dt.datetime:
    return at_or_now(now, "now")


def _t(x: dt.datetime | None, tz: ZoneInfo) -> dt.datetime | None:
    return x.astimezone(tz) if x is not None else None


def _clean_text(value: str | None, field: str, *, required: bool = False, max_len: int | None = None) -> str:
    value = (value or "").strip()
    if required and not value:
        raise ServiceError("required", f"{field} 不能为空", f"{field} is required", field=field)
    if max_len and len(value) > max_len:
        raise ServiceError("too_long", f"{field} 最长 {max_len} 字", f"{field} is longer than {max_len} characters",
                           field=field)
    if "\x00" in value:
        raise ServiceError("invalid_text", f"{field} 含有非法字符", f"{field} contains a NUL character", field=field)
    return value


# -- actors ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Actor:
    """Who acts. ``official_id`` None is a resident / anonymous client (role ``resident``)."""

    official_id: int | None = None
    name: str | None = None
    assignments: tuple[tuple[str, str], ...] = ()  # (grid_code, role), current

    @classmethod
    def resident(cls) -> Actor:
        return cls()

    @property
    def is_official(self) -> bool:
        return self.official_id is not None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(r for _, r in self.assignments)

    def roles_for(self, grid_code: str) -> set[str]:
        """Roles held on ``grid_code`` or one of its parents (a parent's code is a prefix rule)."""
        out = set()
        for code, role in self.assignments:
            if _covers(code, grid_code):
                out.add(role)
        return out

    def roles_on_issue(self, issue: Issue) -> set[str]:
        roles = self.roles_for(issue.grid_code)
        if self.official_id is not None and issue.assignee_id == self.official_id:
            roles.add(wf.ASSIGNEE)
        return roles or {wf.RESIDENT}

    def scope(self) -> Scope:
        """Officials see the grids they hold roles in, with personal data; residents see everything
        public and no personal data."""
        if not self.is_official:
            return Scope.public()
        return Scope(roots=frozenset(c for c, _ in self.assignments), personal_data=True,
                     official_id=self.official_id, roles=self.roles)


def _covers(root: str, code: str) -> bool:
    try:
        return code.startswith(descendant_prefix(root))
    except CodeError:
        return False


def _in_grid(column, grid: str) -> ColumnElement[bool]:
    """``column`` (a grid code) in ``grid`` or below it; a malformed ``grid`` is refused naming the field."""
    try:
        return column.like(descendant_prefix(grid) + "%")
    except CodeError:
        raise ServiceError("invalid_grid_code", f"网格编码“{grid}”须为14位数字",
                           f"grid code '{grid}' must be 14 digits", field="grid") from None


def actor_for(session: Session, official_id: int | None, *, as_of: dt.datetime | None = None) -> Actor:
    """The actor for an official id (None → resident). Raises 403 for unknown/inactive officials."""
    if official_id is None:
        return Actor.resident()
    t = as_of or dt.datetime.now(UTC)
    off = session.get(Official, official_id)
    if off is None or not off.active:
        raise ForbiddenError("unknown_official", f"工作人员编号 {official_id} 不存在或已停用",
                             f"official {official_id} does not exist or is inactive", field="X-Official-Id")
    rows = session.execute(
        select(GridAssignment.grid_code, GridAssignment.role)
        .where(GridAssignment.official_id == official_id, valid_at(t, GridAssignment))
        .order_by(GridAssignment.grid_code, GridAssignment.role)).all()
    return Actor(official_id, off.name, tuple((c, r) for c, r in rows))


def _acting_role(action: str, roles: set[str]) -> str:
    allowed = wf.ALLOWED_ROLES[action] & roles
    return next(r for r in ROLE_PREFERENCE if r in allowed)


# -- photos ---------------------------------------------------------------------------------------
PHOTO_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}


@dataclass(frozen=True)
class PhotoIn:
    data: bytes
    content_type: str | None = None
    filename: str | None = None
    field: str = "photos"


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    content_type: str
    sha256: str
    width: int
    height: int

    @property
    def ext(self) -> str:
        return PHOTO_TYPES[self.content_type]


PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
#: how each kind is written again after decoding
_SAVE_OPTIONS = {"image/jpeg": {"quality": 90, "optimize": True}, "image/png": {"optimize": True},
                 "image/webp": {"quality": 90}}


def _without_metadata(img: Any, kind: str) -> Any:
    """A copy of ``img``'s pixels (first frame) in a mode ``kind`` can store, with no metadata at
    all: a fresh image, so no EXIF, XMP, ICC profile, text chunk or comment rides along."""
    from PIL import Image

    modes = {"image/jpeg": ("RGB", "L"), "image/png": ("RGB", "RGBA", "L", "LA"), "image/webp": ("RGB", "RGBA")}[kind]
    alpha = "A" in img.mode or "transparency" in img.info
    target = "RGBA" if alpha and "RGBA" in modes else "RGB"
    icc = img.info.get("icc_profile")
    if icc:  # colours are kept by converting to sRGB before the profile is dropped
        try:
            from PIL import ImageCms

            img = ImageCms.profileToProfile(img.convert(target) if img.mode not in ("RGB", "CMYK") else img,
                                            ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                            ImageCms.createProfile("sRGB"), outputMode=target)
        except Exception:
            pass
    if img.mode not in modes:
        img = img.convert(target)
    clean = Image.new(img.mode, img.size)
    clean.paste(img)
    return clean


def _sniff(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class PhotoStore:
    """Content-addressed photo files under ``root`` (``settings.var_dir / 'uploads'``): type checked
    by magic bytes, size ≤ ``max_bytes``, at most ``max_count``, at most ``max_pixels``; every photo
    is decoded in full and re-encoded, so what is stored carries no metadata (EXIF with GPS and
    camera, XMP, ICC profile, comments) and is known to be a whole image."""

    def __init__(self, root: Path, max_bytes: int = 5 * 1024 * 1024, max_count: int = 9,
                 max_pixels: int = 25_000_000):
        self.root, self.max_bytes, self.max_count, self.max_pixels = Path(root), max_bytes, max_count, max_pixels

    def check(self, photos: Sequence[PhotoIn]) -> list[CheckedPhoto]:
        if len(photos) > self.max_count:
            raise ServiceError("too_many_photos", f"照片最多 {self.max_count} 张", f"at most {self.max_count} photos",
                               field="photos", status=413)
        out = []
        for i, p in enumerate(photos):
            fld = f"{p.field}[{i}]"
            if len(p.data) > self.max_bytes:
                raise ServiceError("photo_too_large", f"第 {i + 1} 张照片超过 {self.max_bytes // 1024} KB",
                                   f"photo {i + 1} is larger than {self.max_bytes // 1024} KB", field=fld, status=413)
            if not p.data:
                raise ServiceError("photo_empty", f"第 {i + 1} 张照片为空", f"photo {i + 1} is empty", field=fld)
            kind = _sniff(p.data)
            declared = (p.content_type or "").split(";")[0].strip().lower() or None
            if declared == "image/jpg":
                declared = "image/jpeg"
            if kind is None or (declared not in (None, "application/octet-stream") and declared != kind):
                raise ServiceError("photo_type", f"第 {i + 1} 张照片不是 JPEG、PNG 或 WebP 图片",
                                   f"photo {i + 1} is not a JPEG, PNG or WebP image", field=fld, status=415)
            data, w, h = self._reencode(p.data, kind, i, fld)
            out.append(CheckedPhoto(data, kind, hashlib.sha256(data).hexdigest(), w, h))
        return out

    def _reencode(self, data: bytes, kind: str, i: int, fld: str) -> tuple[bytes, int, int]:
        """Decode the whole image (the header alone proves nothing), apply its EXIF orientation,
        and encode the pixels again in the same format without any metadata."""
        from PIL import Image, ImageOps

        try:
            with Image.open(io.BytesIO(data), formats=[PIL_FORMATS[kind]]) as img:
                w, h = img.size
                if w * h > self.max_pixels:  # checked before decoding: no decompression bombs
                    raise ServiceError("photo_too_many_pixels",
                                       f"第 {i + 1} 张照片像素过多（{w}×{h}，最多 {self.max_pixels // 1_000_000} 百万像素）",
                                       f"photo {i + 1} has too many pixels ({w}×{h}; at most "
                                       f"{self.max_pixels // 1_000_000} megapixels)", field=fld, status=413)
                img.load()
                upright = ImageOps.exif_transpose(img)
                clean = _without_metadata(upright, kind)
        except ServiceError:
            raise
        except Exception:
            raise ServiceError("photo_invalid", f"第 {i + 1} 张照片无法解码或已损坏",
                               f"photo {i + 1} cannot be decoded (corrupt or truncated)", field=fld,
                               status=415) from None
        buf = io.BytesIO()
        clean.save(buf, PIL_FORMATS[kind], **_SAVE_OPTIONS[kind])
        return buf.getvalue(), clean.width, clean.height

    def save(self, photo: CheckedPhoto) -> str:
        rel = f"{photo.sha256[:2]}/{photo.sha256}{photo.ext}"
        path = self.root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + f".{id(photo)}.tmp")
            tmp.write_bytes(photo.data)
            tmp.replace(path)
        return rel

    def path(self, rel: str) -> Path:
        return self.root / rel


def _check_photos(store: PhotoStore | None, photos) -> list[CheckedPhoto]:
    """Validate uploaded photos before anything is written (none → []; no storage → refused)."""
    if not photos:
        return []
    if store is None:
        raise ServiceError("photos_unsupported", "未配置照片存储", "photo storage is not configured", field="photos")
    return store.check(photos)


def _attach_photos(session: Session, store: PhotoStore | None, checked: list[CheckedPhoto], issue_id: int,
                   stage: str, event_id: int | None) -> list[IssuePhoto]:
    """Save photos already checked by :func:`_check_photos` (so ``store`` is set when there are any)."""
    if not checked:
        return []
    rows = []
    for p in checked:
        rel = store.save(p)
        rows.append(IssuePhoto(issue_id=issue_id, event_id=event_id, stage=stage, sha256=p.sha256,
                               content_type=p.content_type, size_bytes=len(p.data), width=p.width,
                               height=p.height, path=rel))
    session.add_all(rows)
    session.flush()
    return rows


# -- reference data ------------------------------------------------------------------------------
def list_domains(session: Session) -> list[dict]:
    rows = session.scalars(select(Domain).where(Domain.active).order_by(Domain.sort, Domain.code)).all()
    return [{"code": d.code, "name_zh": d.name_zh, "name_en": d.name_en, "sign_hours": d.sign_hours,
             "handle_days": d.handle_days, "sentiment_handle_days": d.sentiment_handle_days} for d in rows]


def _domain(session: Session, code: str, field: str = "domain") -> Domain:
    d = session.get(Domain, code) if isinstance(code, str) and len(code) <= 30 else None
    if d is None or not d.active:
        known = ", ".join(session.scalars(select(Domain.code).where(Domain.active).order_by(Domain.sort)).all())
        raise ServiceError("unknown_domain", f"未知领域“{code}”（可选：{known}）",
                           f"unknown domain '{code}' (one of: {known})", field=field)
    return d


def _check_kind(kind: str, field: str = "kind") -> None:
    if kind not in ISSUE_KINDS:
        raise ServiceError("unknown_kind", f"未知类型“{kind}”（problem 问题 / sentiment 社情）",
                           f"unknown kind '{kind}' (problem or sentiment)", field=field)


def policy_for(domain: Domain, kind: str) -> wf.DeadlinePolicy:
    """Deadlines per domain and kind (configurable in the ``domain`` table)."""
    days = domain.handle_days if kind == "problem" else domain.sentiment_handle_days
    return wf.DeadlinePolicy(sign_hours=domain.sign_hours, handle_days=days)


# -- numbering ------------------------------------------------------------------------------------
_NUMBER_LOCK = 7_310_000


def next_number(session: Session, at: dt.datetime, kind: str = "problem", tz: ZoneInfo = SHANGHAI) -> str:
    """WT (问题, problem) or SQ (社情, sentiment) + local year + 6-digit sequence within the year and
    kind (the demo dataset's convention). A transaction-scoped advisory lock makes concurrent
    reports take distinct numbers."""
    prefix = "WT" if kind == "problem" else "SQ"
    year = at.astimezone(tz).year
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                    {"k": _NUMBER_LOCK + year * 10 + (0 if prefix == "WT" else 1)})
    last = session.execute(text("SELECT max(number) FROM issue WHERE number >= :lo AND number < :hi"),
                           {"lo": f"{prefix}{year}", "hi": f"{prefix}{year + 1}"}).scalar()
    seq = 0
    if last:
        digits = "".join(ch for ch in last[6:] if ch.isdigit())
        seq = int(digits) if digits else 0
    return f"{prefix}{year}{seq + 1:06d}"


# -- reporting ------------------------------------------------------------------------------------
def report_issue(session: Session, actor: Actor, *, kind: str, domain: str, title: str, lon: float, lat: float,
                 crs: str = "wgs84", description: str = "", source: str | None = None,
                 address: str | None = None, reporter_name: str | None = None,
                 reporter_phone: str | None = None, nearest_override: bool = False,
                 photos: Sequence[PhotoIn] = (), photo_store: PhotoStore | None = None,
                 now: dt.datetime | None = None, tz: ZoneInfo = SHANGHAI) -> dict:
    """上报: validate, place the point in its block grid, fill the six-ones chain, write the issue and
    its ``report`` event (and photos). Returns the issue (public view: no personal data)."""
    now = _now(now)
    _check_kind(kind)
    dom = _domain(session, domain)
    title = _clean_text(title, "title", required=True, max_len=MAX_TEXT["title"])
    description = _clean_text(description, "description", max_len=MAX_TEXT["description"])
    address = _clean_text(address, "address", max_len=MAX_TEXT["address"]) or None
    reporter_name = _clean_text(reporter_name, "reporter_name", max_len=50) or None
    reporter_phone = _clean_text(reporter_phone, "reporter_phone", max_len=20) or None
    if source is None:
        source = "resident" if not actor.is_official else "patrol"
    if source not in ISSUE_SOURCES:
        raise ServiceError("unknown_source", f"未知来源“{source}”（可选：{', '.join(ISSUE_SOURCES)}）",
                           f"unknown source '{source}' (one of: {', '.join(ISSUE_SOURCES)})", field="source")
    if not actor.is_official and source != "resident":
        raise ForbiddenError("forbidden_source", "居民上报的来源只能是 resident",
                             "reports without an official's identity must have source 'resident'", field="source")
    wlon, wlat = to_wgs84(lon, lat, crs)
    if nearest_override and not (actor.roles & wf.DISPATCHERS):
        raise ForbiddenError("override_forbidden", "只有网格化管理中心或平台维护员可以指定归属最近网格",
                             "only platform operators or maintainers may attach a point to the nearest grid",
                             field="nearest_override")
    checked = _check_photos(photo_store, photos)
    place = locate_block(session, wlon, wlat, as_of=now, nearest=nearest_override)
    roles = actor.roles_for(place.grid_code) or set(actor.roles) or {wf.RESIDENT}
    wf.transition(None, "report", roles)
    chain = six_ones_chain(session, place.grid_code, as_of=now, include_grids=False)
    issue = Issue(
        number=next_number(session, now, kind, tz), kind=kind, domain_code=dom.code, title=title,
        description=description, source=source,
        location=from_shape(Point(wlon, wlat), srid=4326), address=address,
        grid_code=place.grid_code, community_code=place.community_code,
        leader_in_charge_id=chain.leader_in_charge.official_id if chain.leader_in_charge else None,
        responsible_id=chain.responsible.official_id if chain.responsible else None,
        grid_leader_id=chain.grid_leader.official_id if chain.grid_leader else None,
        worksheet=[], status=wf.REPORTED, reported_at=now, updated_at=now,
        reporter_name=reporter_name, reporter_phone=reporter_phone)
    session.add(issue)
    session.flush()
    data: dict[str, Any] = {"crs": crs, "placement": place.method}
    if crs == "gcj02":
        data["input"] = {"lon": lon, "lat": lat}
    if place.method == "nearest":
        data["distance_m"] = place.distance_m
    if len(place.candidates) > 1:
        data["shared_boundary"] = list(place.candidates)
    ev = IssueEvent(issue_id=issue.id, action="report", from_status=None, to_status=wf.REPORTED,
                    actor_id=actor.official_id, actor_role=_acting_role("report", roles), at=now,
                    note="", data=data)
    session.add(ev)
    session.flush()
    photo_rows = _attach_photos(session, photo_store, checked, issue.id, "report", ev.id)
    out = _render(session, issue, Scope.public(), tz=tz, now=now, grid_name=place.grid_name, photos=photo_rows)
    out["placement"] = {"method": place.method, "distance_m": place.distance_m,
                        "candidates": list(place.candidates)}
    return out


# -- transitions ----------------------------------------------------------------------------------
def _load_issue(session: Session, issue_id: int) -> Issue:
    issue = session.get(Issue, issue_id) if isinstance(issue_id, int) and 0 < issue_id <= BIGINT_MAX else None
    if issue is None:
        raise _not_found("事项", "issue", issue_id)
    return issue


def _official(session: Session, official_id: Any, field: str) -> Official:
    off = session.get(Official, official_id) if isinstance(official_id, int) and 0 < official_id < 2**31 else None
    if off is None or not off.active:
        raise ServiceError("unknown_official", f"工作人员“{official_id}”不存在或已停用",
                           f"official '{official_id}' does not exist or is inactive", field=field)
    return off


def _as_due(value: dt.date | dt.datetime | str, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
        except ValueError:
            raise ServiceError("invalid_date", f"new_due “{value}” 不是有效日期", f"new_due '{value}' is not a date",
                               field="new_due") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value
    return dt.datetime.combine(value, dt.time(23, 59, 59), tzinfo=tz)


def apply_transition(session: Session, issue_id: int, action: str, actor: Actor, *,
                     expected_version: int | None = None, note: str = "", payload: dict | None = None,
                     photos: Sequence[PhotoIn] = (), photo_store: PhotoStore | None = None,
                     now: dt.datetime | None = None, tz: ZoneInfo = SHANGHAI,
                     view_scope: Scope | None = None) -> dict:
    """Make one workflow step. Payload keys per action: assign ``assignee_id`` (optional; default
    the directly responsible person, else the grid leader); reassign ``assignee_id`` (+ reason in
    ``note``); rework reason in ``note``; feedback result in ``note`` (+ photos); evaluate
    ``satisfaction`` 1–5 (+ comment in ``note``); extend ``new_due`` (date or datetime, + reason).

    Writes the new state and exactly one event; raises before writing on any refusal. The answer is
    rendered for ``view_scope`` (default: the actor's own scope)."""
    now = _now(now)
    payload = dict(payload or {})
    if action == "report":
        raise ServiceError("use_report", "上报请使用上报接口", "use the report endpoint to report", field="action")
    if action not in wf.TRANSITIONS:
        raise wf.TransitionError("unknown_action", f"未知操作“{action}”", f"unknown action '{action}'")
    note = _clean_text(note, "note", max_len=MAX_TEXT["note"])
    issue = _load_issue(session, issue_id)
    if expected_version is not None and expected_version != issue.version:
        raise _conflict(issue.version)
    roles = actor.roles_on_issue(issue)
    from_status = issue.status
    to_status = wf.transition(from_status, action, roles)
    data: dict[str, Any] = {}
    checked: list[CheckedPhoto] = []

    if action == "assign":
        aid = payload.get("assignee_id")
        if aid is None:
            aid = issue.responsible_id or issue.grid_leader_id
        if aid is None:
            raise ServiceError("no_assignee", "未指定承办人且该网格没有直接责任人或网格长",
                               "no assignee given and the grid has no responsible person or grid leader",
                               field="assignee_id")
        _official(session, aid, "assignee_id")
        dom = _domain(session, issue.domain_code)
        sign, due = wf.deadlines(now, policy_for(dom, issue.kind), tz)
        issue.assignee_id, issue.assigned_at, issue.sign_deadline, issue.due_at = aid, now, sign, due
        issue.worksheet = wf.worksheet(now.astimezone(tz), sign.astimezone(tz), due)
        data = {"assignee_id": aid, "sign_deadline": sign.astimezone(tz).isoformat(),
                "due_at": due.isoformat()}
    elif action == "reassign":
        aid = payload.get("assignee_id")
        if aid is None:
            raise ServiceError("required", "改派须指定新的承办人 assignee_id", "reassign needs assignee_id",
                               field="assignee_id")
        _official(session, aid, "assignee_id")
        if aid == issue.assignee_id:
            raise ServiceError("same_assignee", "新的承办人与当前承办人相同", "the new assignee is the current one",
                               field="assignee_id")
        if not note:
            raise ServiceError("required", "改派须说明理由", "a reason (note) is required to reassign", field="note")
        dom = _domain(session, issue.domain_code)
        sign = now + dt.timedelta(hours=policy_for(dom, issue.kind).sign_hours)
        data = {"from_assignee_id": issue.assignee_id, "assignee_id": aid,
                "reassign_count": issue.reassign_count + 1, "sign_deadline": sign.astimezone(tz).isoformat()}
        issue.assignee_id, issue.assigned_at, issue.sign_deadline, issue.signed_at = aid, now, sign, None
        issue.reassign_count += 1
        if issue.due_at is not None and issue.due_at > now:  # the due date stays: 推诿 buys no time
            issue.worksheet = wf.worksheet(now.astimezone(tz), sign.astimezone(tz), issue.due_at.astimezone(tz))
    elif action == "sign":
        issue.signed_at = now
        data = {"late": bool(issue.sign_deadline and now > issue.sign_deadline)}
    elif action == "feedback":
        if not note:
            raise ServiceError("required", "反馈须填写办理结果", "feedback needs the result (note)", field="note")
        if photos:
            checked = _check_photos(photo_store, photos)
            data = {"photos": len(checked)}
    elif action == "rework":
        if not note:
            raise ServiceError("required", "返工须说明理由", "a reason (note) is required for rework", field="note")
        issue.rework_count += 1
        data = {"rework_count": issue.rework_count}
    elif action == "close":
        issue.closed_at = now
        data = {"overdue": wf.is_overdue(wf.CLOSED, issue.due_at, now, now)}
    elif action == "evaluate":
        sat = payload.get("satisfaction")
        if isinstance(sat, bool) or not isinstance(sat, int) or not 1 <= sat <= 5:
            raise ServiceError("invalid_satisfaction", "满意度须为 1–5 的整数", "satisfaction must be an integer 1–5",
                               field="satisfaction")
        issue.satisfaction = sat
        data = {"satisfaction": sat}
    elif action == "extend":
        if payload.get("new_due") is None:
            raise ServiceError("required", "延期须指定新的期限 new_due", "extend needs new_due", field="new_due")
        if not note:
            raise ServiceError("required", "延期须说明理由", "a reason (note) is required to extend", field="note")
        new_due = _as_due(payload["new_due"], tz)
        if new_due > now + dt.timedelta(days=MAX_EXTEND_DAYS):
            raise ServiceError("invalid_new_due", f"新的期限不能超过 {MAX_EXTEND_DAYS} 天之后",
                               f"new_due may be at most {MAX_EXTEND_DAYS} days ahead", field="new_due")
        if issue.due_at is None or new_due <= issue.due_at or new_due <= now:
            raise ServiceError("invalid_new_due", "新的期限须晚于原期限和当前时间",
                               "new_due must be later than the current due date and now", field="new_due")
        data = {"old_due": _t(issue.due_at, tz).isoformat(), "new_due": new_due.astimezone(tz).isoformat(),
                "approver_id": actor.official_id}
        issue.due_at = new_due
        if issue.assigned_at and issue.sign_deadline:
            issue.worksheet = wf.worksheet(issue.assigned_at.astimezone(tz), issue.sign_deadline.astimezone(tz),
                                           new_due.astimezone(tz))

    issue.status = to_status
    issue.updated_at = now
    ev = IssueEvent(issue_id=issue.id, action=action, from_status=from_status, to_status=to_status,
                    actor_id=actor.official_id, actor_role=_acting_role(action, roles), at=now, note=note,
                    data=data)
    session.add(ev)
    try:
        session.flush()
    except StaleDataError:
        raise _conflict() from None
    _attach_photos(session, photo_store, checked, issue.id, "feedback", ev.id)
    return _render(session, issue, view_scope or actor.scope(), tz=tz, now=now, actor=actor)


def evaluate(session: Session, issue_id: int, actor: Actor, *, satisfaction: int, comment: str = "",
             expected_version: int | None = None, now: dt.datetime | None = None, tz: ZoneInfo = SHANGHAI) -> dict:
    """综合评价: satisfaction 1–5 and a comment, on a closed issue."""
    return apply_transition(session, issue_id, "evaluate", actor, expected_version=expected_version, note=comment,
                            payload={"satisfaction": satisfaction}, now=now, tz=tz)


def extend(session: Session, issue_id: int, actor: Actor, *, new_due: dt.date | dt.datetime, reason: str,
           expected_version: int | None = None, now: dt.datetime | None = None, tz: ZoneInfo = SHANGHAI) -> dict:
    """延期: a later due date with a reason; the actor is the approver."""
    return apply_transition(session, issue_id, "extend", actor, expected_version=expected_version, note=reason,
                            payload={"new_due": new_due}, now=now, tz=tz)


def reassign(session: Session, issue_id: int, actor: Actor, *, assignee_id: int, reason: str,
             expected_version: int | None = None, now: dt.datetime | None = None, tz: ZoneInfo = SHANGHAI) -> dict:
    """改派 with a reason; every reassignment is counted (the 推诿 signal)."""
    return apply_transition(session, issue_id, "reassign", actor, expected_version=expected_version, note=reason,
                            payload={"assignee_id": assignee_id}, now=now, tz=tz)


# -- reading --------------------------------------------------------------------------------------
def _people(session: Session, ids: Iterable[int | None], personal: bool) -> dict[int, dict]:
    """Officials by id in one query ({id: {id, name, phone}}; phone only with personal data)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(select(Official.id, Official.name, Official.phone).where(Official.id.in_(wanted))).all()
    return {r[0]: {"id": r[0], "name": r[1], "phone": r[2] if personal else None} for r in rows}


def _visible(scope: Scope, issue: Issue) -> bool:
    if scope.allows(issue.grid_code):
        return True
    oid = scope.official_id
    return oid is not None and oid in (issue.assignee_id, issue.grid_leader_id, issue.responsible_id,
                                       issue.leader_in_charge_id)


def _render(session: Session, issue: Issue, scope: Scope, *, tz: ZoneInfo, now: dt.datetime,
            actor: Actor | None = None, timeline: bool = False, grid_name: str | None = None,
            photos: Sequence[IssuePhoto] | None = None) -> dict:
    """The issue as plain data for ``scope``. ``grid_name`` / ``photos`` may be passed when the
    caller already knows them (saves round trips on the report path)."""
    personal = scope.personal_data and _visible(scope, issue)
    pt = to_shape(issue.location)
    dom = session.get(Domain, issue.domain_code)
    if grid_name is None:
        grid_name = session.execute(
            text("SELECT name FROM grid WHERE code = :c ORDER BY valid_to IS NULL DESC, valid_from DESC LIMIT 1"),
            {"c": issue.grid_code}).scalar()
    if photos is None:
        photos = session.scalars(select(IssuePhoto).where(IssuePhoto.issue_id == issue.id)
                                 .order_by(IssuePhoto.id)).all()
    people = _people(session, (issue.leader_in_charge_id, issue.responsible_id, issue.grid_leader_id,
                               issue.assignee_id), personal)
    out = {
        "id": issue.id, "number": issue.number, "kind": issue.kind,
        "domain": {"code": dom.code, "name_zh": dom.name_zh, "name_en": dom.name_en},
        "title": issue.title, "description": issue.description, "source": issue.source,
        "address": issue.address, "lon": round(pt.x, 7), "lat": round(pt.y, 7),
        "grid": {"code": issue.grid_code, "name": grid_name}, "community_code": issue.community_code,
        "status": issue.status, "status_zh": wf.STATUS_LABELS[issue.status][0],
        "status_en": wf.STATUS_LABELS[issue.status][1],
        "reported_at": _t(issue.reported_at, tz), "assigned_at": _t(issue.assigned_at, tz),
        "sign_deadline": _t(issue.sign_deadline, tz), "signed_at": _t(issue.signed_at, tz),
        "due_at": _t(issue.due_at, tz), "closed_at": _t(issue.closed_at, tz),
        "updated_at": _t(issue.updated_at, tz),
        "overdue": wf.is_overdue(issue.status, issue.due_at, issue.closed_at, now),
        "sign_overdue": wf.is_sign_overdue(issue.status, issue.sign_deadline, issue.signed_at, now),
        "rework_count": issue.rework_count, "reassign_count": issue.reassign_count,
        "satisfaction": issue.satisfaction, "version": issue.version,
        "six_ones": {
            "leader_in_charge": people.get(issue.leader_in_charge_id),
            "responsible": people.get(issue.responsible_id),
            "grid_leader": people.get(issue.grid_leader_id),
            "assignee": people.get(issue.assignee_id),
            "worksheet": list(issue.worksheet or []),
        },
        "reporter": ({"name": issue.reporter_name, "phone": issue.reporter_phone} if personal else None),
        "photos": [{"id": p.id, "stage": p.stage, "content_type": p.content_type, "width": p.width,
                    "height": p.height, "url": f"/api/v1/photos/{p.id}"} for p in photos],
    }
    if actor is not None:
        out["actions"] = wf.available_actions(issue.status, actor.roles_on_issue(issue))
    if timeline:
        out["timeline"] = _timeline(session, issue.id, tz)
    return out


def _find(session: Session, id_or_number: int | str) -> Issue | None:
    if isinstance(id_or_number, int) or (isinstance(id_or_number, str) and id_or_number.isascii()
                                         and id_or_number.isdigit() and len(id_or_number) < 19):
        n = int(id_or_number)
        return session.get(Issue, n) if 0 < n <= BIGINT_MAX else None
    if isinstance(id_or_number, str) and len(id_or_number) <= 20 and id_or_number.isascii() \
            and id_or_number.isalnum():  # numbers are ASCII letters and digits; anything else (NUL…) is unknown
        return session.scalars(select(Issue).where(Issue.number == id_or_number)).first()
    return None


def resolve_issue_id(session: Session, id_or_number: int | str) -> int:
    """The id of an issue given by id or number (404 when there is none)."""
    issue = _find(session, id_or_number)
    if issue is None:
        raise _not_found("事项", "issue", id_or_number)
    return issue.id


def photo_file(session: Session, photo_id: int, store: PhotoStore) -> tuple[Path, str]:
    """(file path, content type) of a stored photo."""
    p = session.get(IssuePhoto, photo_id) if isinstance(photo_id, int) and 0 < photo_id <= BIGINT_MAX else None
    if p is None or not store.path(p.path).is_file():
        raise _not_found("照片", "photo", photo_id)
    return store.path(p.path), p.content_type


def get_issue(session: Session, id_or_number: int | str, scope: Scope, *, actor: Actor | None = None,
              now: dt.datetime | None = None, tz: ZoneInfo = SHANGHAI, timeline: bool = True) -> dict:
    """One issue (by id or number) with its six-ones chain, photos and full timeline."""
    issue = _find(session, id_or_number)
    if issue is None or not _visible(scope, issue):
        raise _not_found("事项", "issue", id_or_number)
    return _render(session, issue, scope, tz=tz, now=_now(now), actor=actor, timeline=timeline)


def _timeline(session: Session, issue_id: int, tz: ZoneInfo) -> list[dict]:
    rows = session.execute(
        select(IssueEvent, Official.name).outerjoin(Official, Official.id == IssueEvent.actor_id)
        .where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.at, IssueEvent.id)).all()
    out = []
    for ev, name in rows:
        zh, en = wf.ACTION_LABELS.get(ev.action, (ev.action, ev.action))
        out.append({"id": ev.id, "action": ev.action, "action_zh": zh, "action_en": en,
                    "from_status": ev.from_status, "to_status": ev.to_status,
                    "actor": {"id": ev.actor_id, "name": name} if ev.actor_id is not None else None,
                    "actor_role": ev.actor_role, "at": _t(ev.at, tz), "note": ev.note or "",
                    "data": dict(ev.data or {})})
    return out


def issue_timeline(session: Session, id_or_number: int | str, scope: Scope, *, tz: ZoneInfo = SHANGHAI) -> list[dict]:
    issue = _find(session, id_or_number)
    if issue is None or not _visible(scope, issue):
        raise _not_found("事项", "issue", id_or_number)
    return _timeline(session, issue.id, tz)


@dataclass
class IssueFilters:
    """Query filters. ``grid`` is a code of any level and includes its descendants."""

    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat (WGS84)
    grid: str | None = None
    status: tuple[str, ...] = ()
    domain: tuple[str, ...] = ()
    kind: str | None = None
    source: str | None = None
    reported_from: dt.datetime | None = None
    reported_to: dt.datetime | None = None
    overdue: bool | None = None
    open: bool | None = None
    assignee_id: int | None = None
    numbers: tuple[str, ...] = ()
    text: str | None = None   # in the number or title, literal (trigram indexes serve it)


SORTS = {
    "reported_at": (Issue.reported_at,), "due_at": (Issue.due_at,), "updated_at": (Issue.updated_at,),
    "number": (Issue.number,), "status": (Issue.status,),
}


def _overdue_sql(now: dt.datetime):
    closed = Issue.status.in_(tuple(wf.CLOSED_STATUSES))
    return and_(Issue.due_at.is_not(None),
                or_(and_(closed, Issue.closed_at > Issue.due_at), and_(~closed, Issue.due_at < now)))


def _where(session: Session, f: IssueFilters, scope: Scope, now: dt.datetime) -> list:
    conds: list = [scope.filter(Issue.grid_code)]
    if f.bbox is not None:
        x0, y0, x1, y1 = f.bbox
        check_lon_lat(x0, y0, "bbox.min_lon", "bbox.min_lat")
        check_lon_lat(x1, y1, "bbox.max_lon", "bbox.max_lat")
        if x0 > x1 or y0 > y1:
            raise ServiceError("invalid_bbox", "bbox 须为 最小经度,最小纬度,最大经度,最大纬度",
                               "bbox must be min_lon,min_lat,max_lon,max_lat", field="bbox")
        conds.append(Issue.location.op("&&")(func.ST_MakeEnvelope(x0, y0, x1, y1, 4326)))
    if f.grid:
        conds.append(_in_grid(Issue.grid_code, f.grid))
    if f.status:
        bad = [s for s in f.status if s not in wf.STATUSES]
        if bad:
            raise ServiceError("unknown_status", f"未知状态“{bad[0]}”", f"unknown status '{bad[0]}' (one of: "
                               f"{', '.join(wf.STATUSES)})", field="status")
        conds.append(Issue.status.in_(f.status))
    if f.domain:
        for d in f.domain:
            _domain(session, d)
        conds.append(Issue.domain_code.in_(f.domain))
    if f.kind:
        _check_kind(f.kind)
        conds.append(Issue.kind == f.kind)
    if f.source:
        if f.source not in ISSUE_SOURCES:
            raise ServiceError("unknown_source", f"未知来源“{f.source}”", f"unknown source '{f.source}'", field="source")
        conds.append(Issue.source == f.source)
    for value, name in ((f.reported_from, "from"), (f.reported_to, "to")):
        if value is not None and value.tzinfo is None:
            raise ServiceError("naive_datetime", f"{name} 须带时区", f"{name} must include a time zone", field=name)
    if f.reported_from is not None:
        conds.append(Issue.reported_at >= f.reported_from)
    if f.reported_to is not None:
        conds.append(Issue.reported_at < f.reported_to)
    if f.overdue is not None:
        od = _overdue_sql(now)
        conds.append(od if f.overdue else ~od)
    if f.open is not None:
        conds.append(Issue.status.in_(tuple(wf.OPEN_STATUSES)) if f.open
                     else Issue.status.in_(tuple(wf.CLOSED_STATUSES)))
    if f.assignee_id is not None:
        conds.append(Issue.assignee_id == f.assignee_id)
    if f.numbers:
        conds.append(Issue.number.in_(f.numbers))
    if f.text:
        conds.append(or_(Issue.number.icontains(f.text, autoescape=True),
                         Issue.title.icontains(f.text, autoescape=True)))
    return conds


def query_issues(session: Session, filters: IssueFilters, scope: Scope, *, page: int = 1, page_size: int = 50,
                 sort: str = "-reported_at", now: dt.datetime | None = None, tz: ZoneInfo = SHANGHAI,
                 detail: bool = False) -> dict:
    """Issues matching ``filters`` within ``scope``: one page, sorted (``sort`` is a key of
    :data:`SORTS`, ``-`` prefix for descending; ties by id). Overdue is computed against ``now``.
    ``detail`` adds description, address, grid name and the first photo's id to each item."""
    now = _now(now)
    if not 1 <= page <= 1_000_000:
        raise ServiceError("invalid_page", "page 须在 1–1000000 之间", "page must be 1–1000000", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ServiceError("invalid_page_size", f"page_size 须在 1–{MAX_PAGE_SIZE} 之间",
                           f"page_size must be 1–{MAX_PAGE_SIZE}", field="page_size")
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORTS:
        raise ServiceError("invalid_sort", f"不支持按“{key}”排序（可选：{', '.join(SORTS)}）",
                           f"cannot sort by '{key}' (one of: {', '.join(SORTS)})", field="sort")
    conds = _where(session, filters, scope, now)
    total = session.execute(select(func.count()).select_from(Issue).where(*conds)).scalar_one()
    order = [c.desc().nulls_last() if desc else c.asc().nulls_last() for c in SORTS[key]]
    order.append(Issue.id.desc() if desc else Issue.id.asc())
    od = _overdue_sql(now)
    rows = session.execute(
        select(Issue.id, Issue.number, Issue.kind, Issue.domain_code, Issue.title, Issue.source, Issue.status,
               Issue.grid_code, Issue.community_code, func.ST_X(Issue.location), func.ST_Y(Issue.location),
               Issue.reported_at, Issue.assigned_at, Issue.due_at, Issue.closed_at, Issue.updated_at,
               Issue.assignee_id, Issue.rework_count, Issue.reassign_count, Issue.satisfaction, Issue.version,
               case((od, True), else_=False))
        .where(*conds).order_by(*order).limit(page_size).offset((page - 1) * page_size)).all()
    items = [{
        "id": r[0], "number": r[1], "kind": r[2], "domain": r[3], "title": r[4], "source": r[5], "status": r[6],
        "status_zh": wf.STATUS_LABELS[r[6]][0], "grid_code": r[7], "community_code": r[8],
        "lon": round(r[9], 7), "lat": round(r[10], 7), "reported_at": _t(r[11], tz),
        "assigned_at": _t(r[12], tz), "due_at": _t(r[13], tz), "closed_at": _t(r[14], tz),
        "updated_at": _t(r[15], tz), "assignee_id": r[16], "rework_count": r[17], "reassign_count": r[18],
        "satisfaction": r[19], "version": r[20], "overdue": bool(r[21]),
    } for r in rows]
    if detail and items:
        ids = [i["id"] for i in items]
        text_rows = {r[0]: r[1:] for r in session.execute(
            select(Issue.id, Issue.description, Issue.address).where(Issue.id.in_(ids))).all()}
        photo_rows = dict(session.execute(text(
            "SELECT DISTINCT ON (issue_id) issue_id, id FROM issue_photo WHERE issue_id = ANY(:ids) "
            "ORDER BY issue_id, id"), {"ids": ids}).all())
        names = dict(session.execute(text("SELECT code, name FROM grid WHERE code = ANY(:c) AND valid_to IS NULL"),
                                     {"c": list({i["grid_code"] for i in items})}).all())
        for i in items:
            i["description"], i["address"] = text_rows[i["id"]]
            i["photo_id"] = photo_rows.get(i["id"])
            i["grid_name"] = names.get(i["grid_code"])
    return {"items": items, "total": int(total), "page": page, "page_size": page_size,
            "pages": max(1, math.ceil(total / page_size))}


# -- 该找谁: the contact card ---------------------------------------------------------------------
def responsible_for_point(session: Session, lon: float, lat: float, scope: Scope, *, crs: str = "wgs84",
                          as_of: dt.datetime | None = None) -> dict:
    """Point → block grid → its officials and the six-ones chain (phones only with personal data)."""
    wlon, wlat = to_wgs84(lon, lat, crs)
    t = as_of or dt.datetime.now(UTC)
    place = locate_block(session, wlon, wlat, as_of=t)
    personal = scope.personal_data and scope.allows(place.grid_code)
    chain = six_ones_chain(session, place.grid_code, as_of=t, personal_data=personal)

    def holder(h) -> dict | None:
        if h is None:
            return None
        zh, en = ROLE_LABELS.get(h.role, (h.role, h.role))
        return {"official_id": h.official_id, "name": h.name, "role": h.role, "role_zh": zh, "role_en": en,
                "title": h.title, "grid_code": h.grid_code, "grid_level": h.grid_level, "phone": h.phone}

    grids = {g.level: {"code": g.code, "name": g.name, "level": g.level} for g in chain.grids}
    return {
        "lon": wlon, "lat": wlat, "block": grids.get(3), "community": grids.get(2), "street": grids.get(1),
        "shared_boundary": list(place.candidates) if len(place.candidates) > 1 else [],
        "six_ones": {"leader_in_charge": holder(chain.leader_in_charge), "responsible": holder(chain.responsible),
                     "grid_leader": holder(chain.grid_leader)},
        "officials": [holder(h) for h in chain.holders if h.role != "operator"],
    }


# -- patrol diary (民情日记) ----------------------------------------------------------------------
TRACK_TYPES = ("Point", "MultiPoint", "LineString")


def _track(track: dict | None, crs: str) -> Any:
    if track is None:
        return None
    try:
        geom = shape(track)
    except Exception:
        raise ServiceError("invalid_track", "轨迹须为 GeoJSON 的 Point、MultiPoint 或 LineString",
                           "track must be a GeoJSON Point, MultiPoint or LineString", field="track") from None
    if geom.geom_type not in TRACK_TYPES or geom.is_empty:
        raise ServiceError("invalid_track", "轨迹须为 GeoJSON 的 Point、MultiPoint 或 LineString",
                           "track must be a GeoJSON Point, MultiPoint or LineString", field="track")
    geom = shapely.force_2d(geom)
    coords = shapely.get_coordinates(geom)
    if len(coords) > 20000:
        raise ServiceError("track_too_long", "轨迹点数过多（最多 20000）", "too many track points (max 20000)",
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
            "kind": d.kind, "started_at": _t(d.started_at, tz), "ended_at": _t(d.ended_at, tz),
            "track": mapping(geom) if geom is not None else None, "households": d.households, "shops": d.shops,
            "firms": d.firms, "findings": d.findings, "issue_id": d.issue_id}


def record_diary(session: Session, actor: Actor, *, kind: str, started_at: dt.datetime,
                 ended_at: dt.datetime | None = None, track: dict | None = None, crs: str = "wgs84",
                 households: int = 0, shops: int = 0, firms: int = 0, findings: str = "",
                 grid_code: str | None = None, now: dt.datetime | None = None, tz: ZoneInfo = SHANGHAI) -> dict:
    """民情日记: an official records a patrol (日巡查) or a visit (日走访) in a grid they hold a role in.
    Without ``grid_code`` the grid is the block of the track's first point, else the actor's block."""
    now = _now(now)
    if not actor.is_official:
        raise ForbiddenError("official_required", "只有网格工作人员可以记录民情日记",
                             "only grid staff (X-Official-Id) may record a patrol diary", field="X-Official-Id")
    if kind not in ("patrol", "visit"):
        raise ServiceError("unknown_kind", f"未知日记类型“{kind}”（patrol 巡查 / visit 走访）",
                           f"unknown diary kind '{kind}' (patrol or visit)", field="kind")
    for value, name in ((started_at, "started_at"), (ended_at, "ended_at")):
        if value is not None and value.tzinfo is None:
            raise ServiceError("naive_datetime", f"{name} 须带时区", f"{name} must include a time zone", field=name)
    for value, name in ((started_at, "started_at"), (ended_at, "ended_at")):
        if value is not None and not EARLIEST <= value <= now + dt.timedelta(minutes=10):
            raise ServiceError("out_of_range", f"{name} 须在 2000 年之后且不晚于当前时间",
                               f"{name} must be after 2000 and not in the future", field=name)
    if ended_at is not None and ended_at < started_at:
        raise ServiceError("invalid_range", "结束时间早于开始时间", "ended_at is before started_at", field="ended_at")
    for value, name in ((households, "households"), (shops, "shops"), (firms, "firms")):
        if not isinstance(value, int) or not 0 <= value <= 100000:
            raise ServiceError("invalid_count", f"{name} 须为 0–100000 的整数", f"{name} must be 0–100000", field=name)
    findings = _clean_text(findings, "findings", max_len=MAX_TEXT["description"])
    geom = _track(track, crs)
    if grid_code is None:
        if geom is not None:
            first = shapely.get_coordinates(geom)[0]
            grid_code = locate_block(session, float(first[0]), float(first[1]), as_of=now).grid_code
        else:
            blocks = sorted(c for c, r in actor.assignments if r == "grid_leader")
            if not blocks:
                raise ServiceError("required", "请指定网格编码 grid_code 或轨迹 track", "give grid_code or a track",
                                   field="grid_code")
            grid_code = blocks[0]
    else:
        exists = session.execute(text("SELECT 1 FROM grid WHERE code = :c AND valid_to IS NULL"),
                                 {"c": grid_code}).first()
        if not exists:
            raise _not_found("网格", "grid", grid_code, field="grid_code")
    if not actor.roles_for(grid_code):
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
               page_size: int = 50, tz: ZoneInfo = SHANGHAI) -> dict:
    if not 1 <= page_size <= MAX_PAGE_SIZE or not 1 <= page <= 1_000_000:
        raise ServiceError("invalid_page_size", f"page_size 须在 1–{MAX_PAGE_SIZE} 之间",
                           f"page_size must be 1–{MAX_PAGE_SIZE}", field="page_size")
    conds: list = [scope.filter(PatrolDiary.grid_code)]
    if grid:
        conds.append(_in_grid(PatrolDiary.grid_code, grid))
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
                    tz: ZoneInfo = SHANGHAI) -> dict:
    """Turn a diary finding into a report (source = the diary's kind). Without a location the last
    point of the track is used. A diary entry links to one report."""
    d = session.get(PatrolDiary, diary_id) if isinstance(diary_id, int) and 0 < diary_id <= BIGINT_MAX else None
    if d is None:
        raise _not_found("民情日记", "diary entry", diary_id)
    if actor.official_id != d.official_id and not (actor.roles_for(d.grid_code) & wf.DISPATCHERS):
        raise ForbiddenError("forbidden", "只有日记作者或平台人员可以据此上报",
                             "only the diary's author or platform staff may report from it", field="X-Official-Id")
    if d.issue_id is not None:
        raise ConflictError("already_reported", f"该日记已上报为事项 {d.issue_id}",
                            f"this diary entry was already reported as issue {d.issue_id}", field="id",
                            detail={"issue_id": d.issue_id})
    if lon is None or lat is None:
        if d.track is None:
            raise ServiceError("required", "日记没有轨迹，请提供 lon/lat", "the diary has no track: give lon and lat",
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


# -- idempotency ----------------------------------------------------------------------------------
def request_hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def idempotency_scope(operation: str, path: str, key: str, official_id: int | None, req_hash: str) -> str:
    """The stored key (``idempotency_key.key``) of a client's ``Idempotency-Key``: keys belong to
    their caller, so two callers who pick the same key never meet.

    - an official: (official id, operation, path, key) — a retry replays the first answer and the
      same key with a different request is refused (422), which catches a client's key bug;
    - an anonymous caller (resident, Open311 client) has no identity to scope by, so the request
      itself is part of the scope: (operation, path, key, request hash — body and photos). Two
      residents who use the same key for different reports both get their report; only a
      byte-identical request (same text, point, name, phone and photos) replays, and that is the
      same report. The remote address is deliberately not part of it: a phone's retry often comes
      from another address (Wi-Fi ↔ mobile data, carrier NAT), which would turn the retry into the
      duplicate the key exists to prevent, and behind a reverse proxy every caller shares one.
    The price: an anonymous client reusing a key for a different request is not told (it simply
    makes a new one)."""
    who = f"official:{official_id}" if official_id is not None else f"anon:{req_hash}"
    return f"{operation}:" + hashlib.sha256(f"{who}\x1f{path}\x1f{key}".encode()).hexdigest()


def idempotent(session: Session, key: str, req_hash: str, compute: Callable[[], tuple[int, dict]]
               ) -> tuple[int, dict, bool]:
    """Run ``compute`` once per ``key``: the first successful answer (status, JSON body) is stored in
    the same transaction as its writes; a retry with the same key and request returns it (replayed
    = True); the same key with a different request is refused (422). A transaction-scoped advisory
    lock serialises concurrent retries of one key. Failed requests are not stored."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 731))"), {"k": key})
    row = session.get(IdempotencyKey, key)
    if row is not None:
        if row.request_hash != req_hash:
            raise ServiceError("idempotency_key_reused", "该 Idempotency-Key 已用于另一个不同的请求",
                               "this Idempotency-Key was already used for a different request",
                               field="Idempotency-Key", status=422)
        return row.status_code, row.response, True
    status, body = compute()
    session.add(IdempotencyKey(key=key, request_hash=req_hash, status_code=status, response=body))
    session.flush()
    return status, body, False
