"""Issue reads: one lookup, the rendered issue, its timeline, the lists (API pages, the map's latest),
the domain list and the contact card (该找谁). Every read goes through the one visibility rule
(:func:`geodata.access.visibility.visible_issues`) and the one filter (:class:`IssueFilter`).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from geoalchemy2.shape import to_shape
from sqlalchemy import ColumnElement, case, func, select, text
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.clock import at_or_now, local
from geodata.errors import DomainError, not_found
from geodata.geometry import to_wgs84
from geodata.grids.assignment import locate_block, six_ones_chain
from geodata.models import BIGINT_MAX, Domain, Issue, IssueEvent, IssuePhoto, Official
from geodata.vocab import ACTION_LABELS, ROLE_LABELS, STATUS_LABELS
from geodata.workflow import rules as wf
from geodata.workflow.filters import IssueFilter, issue_conditions, overdue_condition
from geodata.workflow.identity import Actor
from geodata.workflow.rules import MAX_PAGE_SIZE

UTC = dt.UTC


# -- domains -------------------------------------------------------------------------------------
def list_domains(session: Session) -> list[dict]:
    """THE domain list: the active domains in display order, with their deadlines."""
    rows = session.scalars(select(Domain).where(Domain.active).order_by(Domain.sort, Domain.code)).all()
    return [{"code": d.code, "name_zh": d.name_zh, "name_en": d.name_en, "sign_hours": d.sign_hours,
             "handle_days": d.handle_days, "sentiment_handle_days": d.sentiment_handle_days} for d in rows]


def get_domain(session: Session, code: str, field: str = "domain") -> Domain:
    """An active domain by code; an unknown one is refused listing the known codes."""
    d = session.get(Domain, code) if isinstance(code, str) and len(code) <= 30 else None
    if d is None or not d.active:
        known = ", ".join(session.scalars(select(Domain.code).where(Domain.active).order_by(Domain.sort)).all())
        raise DomainError("unknown_domain", f"未知领域“{code}”（可选：{known}）",
                          f"unknown domain '{code}' (one of: {known})", field=field)
    return d


# -- THE issue lookup ----------------------------------------------------------------------------
def _key_condition(key: int | str) -> ColumnElement[bool] | None:
    """An id (int, or ASCII digits) or an issue number (ASCII letters and digits, ≤ 20); anything
    else (NUL, other scripts' digits, ids beyond BIGINT) names no issue."""
    if isinstance(key, int) or (isinstance(key, str) and key.isascii() and key.isdigit() and len(key) < 19):
        n = int(key)
        return Issue.id == n if 0 < n <= BIGINT_MAX else None
    if isinstance(key, str) and len(key) <= 20 and key.isascii() and key.isalnum():
        return Issue.number == key
    return None


def find_issue(session: Session, key: int | str, scope: Scope | None = None) -> Issue | None:
    """The issue with id or number ``key``, if ``scope`` may see it (no scope: any issue)."""
    cond = _key_condition(key)
    if cond is None:
        return None
    q = select(Issue).where(cond)
    if scope is not None:
        q = q.where(visible_issues(scope))
    return session.scalars(q.limit(1)).first()


def load_issue(session: Session, issue_id: int) -> Issue:
    """The issue ``issue_id`` for a transition (404 when there is none)."""
    issue = session.get(Issue, issue_id) if isinstance(issue_id, int) and 0 < issue_id <= BIGINT_MAX else None
    if issue is None:
        raise not_found("事项", "issue", issue_id)
    return issue


def resolve_issue_id(session: Session, id_or_number: int | str) -> int:
    """The id of an issue given by id or number (404 when there is none)."""
    issue = find_issue(session, id_or_number)
    if issue is None:
        raise not_found("事项", "issue", id_or_number)
    return issue.id


# -- THE timeline --------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventRow:
    """One workflow event, oldest first in a timeline; ``actor`` is the official's name."""

    at: dt.datetime
    action: str
    from_status: str | None
    to_status: str
    actor: str | None
    actor_role: str | None
    note: str
    id: int = 0
    actor_id: int | None = None
    data: dict = field(default_factory=dict)


def events(session: Session, issue_id: int) -> list[EventRow]:
    """Every event of one issue, oldest first (ties by id)."""
    rows = session.execute(
        select(IssueEvent.at, IssueEvent.action, IssueEvent.from_status, IssueEvent.to_status, Official.name,
               IssueEvent.actor_role, IssueEvent.note, IssueEvent.id, IssueEvent.actor_id, IssueEvent.data)
        .outerjoin(Official, Official.id == IssueEvent.actor_id)
        .where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.at, IssueEvent.id)).all()
    return [EventRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or "", r[7], r[8], dict(r[9] or {})) for r in rows]


def _event_dict(e: EventRow, tz: ZoneInfo) -> dict:
    zh, en = ACTION_LABELS.get(e.action, (e.action, e.action))
    return {"id": e.id, "action": e.action, "action_zh": zh, "action_en": en, "from_status": e.from_status,
            "to_status": e.to_status, "actor": {"id": e.actor_id, "name": e.actor} if e.actor_id is not None else None,
            "actor_role": e.actor_role, "at": local(e.at, tz), "note": e.note, "data": e.data}


def issue_timeline(session: Session, id_or_number: int | str, scope: Scope, *, tz: ZoneInfo) -> list[dict]:
    """The API's timeline of one issue (times in ``tz``, action labels); 404 when not visible."""
    issue = find_issue(session, id_or_number, scope)
    if issue is None:
        raise not_found("事项", "issue", id_or_number)
    return [_event_dict(e, tz) for e in events(session, issue.id)]


# -- one issue -----------------------------------------------------------------------------------
def _people(session: Session, ids: Iterable[int | None], personal: bool) -> dict[int, dict]:
    """Officials by id in one query ({id: {id, name, phone}}; phone only with personal data)."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = session.execute(select(Official.id, Official.name, Official.phone).where(Official.id.in_(wanted))).all()
    return {r[0]: {"id": r[0], "name": r[1], "phone": r[2] if personal else None} for r in rows}


def render(session: Session, issue: Issue, *, personal: bool, tz: ZoneInfo, now: dt.datetime,
           actor: Actor | None = None, timeline: bool = False, grid_name: str | None = None,
           photos: Sequence[IssuePhoto] | None = None) -> dict:
    """The issue as plain data (the API's ``IssueOut``); officials' phones and the reporter only
    when ``personal``. ``grid_name`` / ``photos`` may be passed when the caller already knows them
    (saves round trips on the report path)."""
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
        "status": issue.status, "status_zh": STATUS_LABELS[issue.status][0],
        "status_en": STATUS_LABELS[issue.status][1],
        "reported_at": local(issue.reported_at, tz), "assigned_at": local(issue.assigned_at, tz),
        "sign_deadline": local(issue.sign_deadline, tz), "signed_at": local(issue.signed_at, tz),
        "due_at": local(issue.due_at, tz), "closed_at": local(issue.closed_at, tz),
        "updated_at": local(issue.updated_at, tz),
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
        out["allowed_actions"] = actor.allowed_actions(issue)
    if timeline:
        out["timeline"] = [_event_dict(e, tz) for e in events(session, issue.id)]
    return out


def get_issue(session: Session, id_or_number: int | str, scope: Scope, *, tz: ZoneInfo,
              actor: Actor | None = None, now: dt.datetime | None = None, timeline: bool = True) -> dict:
    """One issue (by id or number) with its six-ones chain, photos and full timeline."""
    issue = find_issue(session, id_or_number, scope)
    if issue is None:
        raise not_found("事项", "issue", id_or_number)
    return render(session, issue, personal=scope.personal_data, tz=tz, now=at_or_now(now, "now"), actor=actor,
                  timeline=timeline)


@dataclass(frozen=True)
class IssueRow:
    """An issue in the map's lists."""

    id: int
    number: str
    kind: str
    domain_code: str
    title: str
    status: str
    overdue: bool
    reported_at: dt.datetime
    due_at: dt.datetime | None
    closed_at: dt.datetime | None
    grid_code: str


def _row_columns(now: dt.datetime) -> tuple:
    return (Issue.id, Issue.number, Issue.kind, Issue.domain_code, Issue.title, Issue.status,
            overdue_condition(now), Issue.reported_at, Issue.due_at, Issue.closed_at, Issue.grid_code)


@dataclass(frozen=True)
class IssueDetail:
    """An issue as the map's panel shows it: its row, text, place, six-ones names and timeline."""

    issue: IssueRow
    description: str
    address: str | None
    lon: float
    lat: float
    leader_in_charge: str | None
    responsible: str | None
    grid_leader: str | None
    assignee: str | None
    events: list[EventRow] = field(default_factory=list)


def issue_detail(session: Session, scope: Scope, issue_id: int,
                 as_of: dt.datetime | None = None) -> IssueDetail | None:
    """An issue with its six-ones chain and every workflow event, oldest first (None: not visible)."""
    now = at_or_now(as_of)
    r = session.execute(
        select(*_row_columns(now), Issue.description, Issue.address, func.ST_X(Issue.location),
               func.ST_Y(Issue.location), Issue.leader_in_charge_id, Issue.responsible_id, Issue.grid_leader_id,
               Issue.assignee_id)
        .where(Issue.id == issue_id, visible_issues(scope))).one_or_none()
    if r is None:
        return None
    ids = [i for i in r[15:19] if i is not None]
    names = dict(session.execute(select(Official.id, Official.name).where(Official.id.in_(ids))).all()
                 ) if ids else {}
    return IssueDetail(issue=IssueRow(*r[:11]), description=r[11] or "", address=r[12],
                       lon=r[13], lat=r[14], leader_in_charge=names.get(r[15]),
                       responsible=names.get(r[16]), grid_leader=names.get(r[17]),
                       assignee=names.get(r[18]), events=events(session, issue_id))


# -- the lists -----------------------------------------------------------------------------------
def latest_issues(session: Session, scope: Scope, flt: IssueFilter, code: str | None, limit: int = 50,
                  as_of: dt.datetime | None = None, *, tz: ZoneInfo) -> list[IssueRow]:
    """The map's list: the newest issues matching ``flt`` in grid ``code`` (None: all in scope)."""
    now = at_or_now(as_of)
    rows = session.execute(
        select(*_row_columns(now)).where(*issue_conditions(scope, flt, now, tz, code))
        .order_by(Issue.reported_at.desc(), Issue.id.desc()).limit(limit)).all()
    return [IssueRow(*r) for r in rows]


SORTS = {
    "reported_at": (Issue.reported_at,), "due_at": (Issue.due_at,), "updated_at": (Issue.updated_at,),
    "number": (Issue.number,), "status": (Issue.status,),
}


def bounded_scope(scope: Scope) -> bool:
    """A scope of communities or blocks (and the viewer's own chain): a bounded share of the issues."""
    prefixes = scope.prefixes()
    return prefixes is not None and all(len(p) >= 12 for p in prefixes)


def query_issues(session: Session, filters: IssueFilter, scope: Scope, *, tz: ZoneInfo, page: int = 1,
                 page_size: int = 50, sort: str = "-reported_at", now: dt.datetime | None = None,
                 detail: bool = False) -> dict:
    """Issues matching ``filters`` within ``scope``: one page, sorted (``sort`` is a key of
    :data:`SORTS`, ``-`` prefix for descending; ties by id). Overdue is computed against ``now``.
    ``detail`` adds description, address, grid name and the first photo's id to each item."""
    now = at_or_now(now, "now")
    if not 1 <= page <= 1_000_000:
        raise DomainError("invalid_page", "page 须在 1–1000000 之间", "page must be 1–1000000", field="page")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise DomainError("invalid_page_size", f"page_size 须在 1–{MAX_PAGE_SIZE} 之间",
                           f"page_size must be 1–{MAX_PAGE_SIZE}", field="page_size")
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORTS:
        raise DomainError("invalid_sort", f"不支持按“{key}”排序（可选：{', '.join(SORTS)}）",
                           f"cannot sort by '{key}' (one of: {', '.join(SORTS)})", field="sort")
    for code in filters.domains:
        get_domain(session, code)
    conds = issue_conditions(scope, filters, now, tz)
    order = [c.desc().nulls_last() if desc else c.asc().nulls_last() for c in SORTS[key]]
    order.append(Issue.id.desc() if desc else Issue.id.asc())
    od = overdue_condition(now)
    columns = [Issue.id, Issue.number, Issue.kind, Issue.domain_code, Issue.title, Issue.source, Issue.status,
               Issue.grid_code, Issue.community_code, func.ST_X(Issue.location), func.ST_Y(Issue.location),
               Issue.reported_at, Issue.assigned_at, Issue.due_at, Issue.closed_at, Issue.updated_at,
               Issue.assignee_id, Issue.rework_count, Issue.reassign_count, Issue.satisfaction, Issue.version,
               case((od, True), else_=False)]
    offset = (page - 1) * page_size
    if bounded_scope(scope):
        # a community's or a block's issues: the page and the count of its rows in one pass
        # (count(*) OVER () sees every matching row before the limit), so the row-level-security
        # policy is evaluated over them once, not once for the count and again for the page
        rows = session.execute(select(*columns, func.count().over()).where(*conds).order_by(*order)
                               .limit(page_size).offset(offset)).all()
        total = rows[0][-1] if rows else (
            0 if offset == 0 else session.execute(select(func.count()).select_from(Issue).where(*conds)).scalar_one())
    else:
        total = session.execute(select(func.count()).select_from(Issue).where(*conds)).scalar_one()
        rows = session.execute(select(*columns).where(*conds).order_by(*order).limit(page_size).offset(offset)).all()
    items = [{
        "id": r[0], "number": r[1], "kind": r[2], "domain": r[3], "title": r[4], "source": r[5], "status": r[6],
        "status_zh": STATUS_LABELS[r[6]][0], "grid_code": r[7], "community_code": r[8],
        "lon": round(r[9], 7), "lat": round(r[10], 7), "reported_at": local(r[11], tz),
        "assigned_at": local(r[12], tz), "due_at": local(r[13], tz), "closed_at": local(r[14], tz),
        "updated_at": local(r[15], tz), "assignee_id": r[16], "rework_count": r[17], "reassign_count": r[18],
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
                          names: bool = True, as_of: dt.datetime | None = None) -> dict:
    """Point → block grid → its officials and the six-ones chain (phones only with personal data;
    ``names`` False: roles and titles only, no names or ids — for the public, unless the street
    publishes them)."""
    wlon, wlat = to_wgs84(lon, lat, crs)
    t = as_of or dt.datetime.now(UTC)
    place = locate_block(session, wlon, wlat, as_of=t)
    personal = scope.personal_data and scope.allows(place.grid_code)
    chain = six_ones_chain(session, place.grid_code, as_of=t, personal_data=personal)

    def holder(h) -> dict | None:
        if h is None:
            return None
        zh, en = ROLE_LABELS.get(h.role, (h.role, h.role))
        return {"official_id": h.official_id if names else None, "name": h.name if names else None,
                "role": h.role, "role_zh": zh, "role_en": en,
                "title": h.title, "grid_code": h.grid_code, "grid_level": h.grid_level, "phone": h.phone}

    grids = {g.level: {"code": g.code, "name": g.name, "level": g.level} for g in chain.grids}
    return {
        "lon": wlon, "lat": wlat, "block": grids.get(3), "community": grids.get(2), "street": grids.get(1),
        "shared_boundary": list(place.candidates) if len(place.candidates) > 1 else [],
        "six_ones": {"leader_in_charge": holder(chain.leader_in_charge), "responsible": holder(chain.responsible),
                     "grid_leader": holder(chain.grid_leader)},
        "officials": [holder(h) for h in chain.holders if h.role != "operator"],
    }
