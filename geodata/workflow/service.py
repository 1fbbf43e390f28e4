"""Issue workflow transactions: report (上报) and every later step (one handler per action in
:mod:`geodata.workflow.transitions`). Reads are in :mod:`geodata.workflow.queries`.

Session in, plain data out. The caller owns the transaction (``geodata.db.session_scope``): a
function either completes all its writes or raises before anything is committed.

Rules:
- Every transition writes the new state and exactly ONE ``IssueEvent`` row, in the caller's one
  transaction; an illegal transition raises a ``TransitionError`` (``geodata.errors``) before any write.
- Concurrency is optimistic: ``Issue.version`` is SQLAlchemy's ``version_id_col``, so the UPDATE is
  ``… WHERE id = :id AND version = :seen``. Of two concurrent transitions exactly one matches; the
  other gets :class:`~geodata.errors.ConflictError` (已被他人修改 / changed by someone else). A client
  passes the version it last saw as ``expected_version``; a stale one is refused up front.
- Personal data (officials' phones, the reporter's name and phone) is rendered only when the
  viewer's scope has ``personal_data`` and may see the issue (``geodata.access.visibility``); it is
  never logged.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import insert, text
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from geodata.access import rls
from geodata.access.scope import Scope
from geodata.access.visibility import can_see
from geodata.clock import at_or_now
from geodata.errors import DomainError, ForbiddenError, TransitionError, conflict
from geodata.geometry import to_wgs84
from geodata.grids.assignment import locate_block, six_ones_chain
from geodata.models import ISSUE_SOURCES, Issue, IssueEvent, IssueReporter
from geodata.workflow import rules as wf
from geodata.workflow.identity import Actor, acting_role
from geodata.workflow.numbering import next_number
from geodata.workflow.photos import PhotoIn, PhotoStore, attach_photos, check_photos
from geodata.workflow.queries import get_domain, load_issue, render
from geodata.workflow.reporter import issue_key
from geodata.workflow.rules import MAX_TEXT, check_kind, clean_text
from geodata.workflow.transitions import HANDLERS, Step


def report_issue(session: Session, actor: Actor, *, kind: str, domain: str, title: str, lon: float, lat: float,
                 crs: str = "wgs84", description: str = "", source: str | None = None,
                 address: str | None = None, reporter_name: str | None = None,
                 reporter_phone: str | None = None, nearest_override: bool = False,
                 photos: Sequence[PhotoIn] = (), photo_store: PhotoStore | None = None,
                 now: dt.datetime | None = None, tz: ZoneInfo) -> dict:
    """上报: validate, place the point in its block grid, fill the six-ones chain, write the issue and
    its ``report`` event (and photos). Returns the issue (public view: no personal data)."""
    now = at_or_now(now, "now")
    check_kind(kind)
    dom = get_domain(session, domain)
    title = clean_text(title, "title", required=True, max_len=MAX_TEXT["title"])
    description = clean_text(description, "description", max_len=MAX_TEXT["description"])
    address = clean_text(address, "address", max_len=MAX_TEXT["address"]) or None
    reporter_name = clean_text(reporter_name, "reporter_name", max_len=50) or None
    reporter_phone = clean_text(reporter_phone, "reporter_phone", max_len=20) or None
    if source is None:
        source = "resident" if not actor.is_official else "patrol"
    if source not in ISSUE_SOURCES:
        raise DomainError("unknown_source", f"未知来源“{source}”（可选：{', '.join(ISSUE_SOURCES)}）",
                           f"unknown source '{source}' (one of: {', '.join(ISSUE_SOURCES)})", field="source")
    if not actor.is_official and source != "resident":
        raise ForbiddenError("forbidden_source", "居民上报的来源只能是 resident",
                             "reports without an official's identity must have source 'resident'", field="source")
    wlon, wlat = to_wgs84(lon, lat, crs)
    if nearest_override and not (actor.roles & wf.DISPATCHERS):
        raise ForbiddenError("override_forbidden", "只有网格化管理中心或平台维护员可以指定归属最近网格",
                             "only platform operators or maintainers may attach a point to the nearest grid",
                             field="nearest_override")
    checked = check_photos(photo_store, photos)
    place = locate_block(session, wlon, wlat, as_of=now, nearest=nearest_override)
    roles = actor.roles_for(place.grid_code) or set(actor.roles) or {wf.RESIDENT}
    wf.transition(None, "report", roles)
    actor.require_action("report", place.grid_code)
    chain = six_ones_chain(session, place.grid_code, as_of=now, include_grids=False)
    # the id first, so that this transaction may read the new issue back wherever it lands (row-level
    # security: the reporter's scope need not cover the point)
    # and its event's (one statement): the event needs no RETURNING (see _append_event)
    issue_id, event_id = session.execute(text("SELECT nextval(pg_get_serial_sequence('issue', 'id')), "
                                              "nextval(pg_get_serial_sequence('issue_event', 'id'))")).one()
    rls.grant_issue(session, issue_id)
    issue = Issue(
        id=issue_id, number=next_number(session, now, kind, tz=tz), kind=kind, domain_code=dom.code, title=title,
        description=description, source=source,
        location=from_shape(Point(wlon, wlat), srid=4326), address=address,
        grid_code=place.grid_code, community_code=place.community_code,
        leader_in_charge_id=chain.leader_in_charge.official_id if chain.leader_in_charge else None,
        responsible_id=chain.responsible.official_id if chain.responsible else None,
        grid_leader_id=chain.grid_leader.official_id if chain.grid_leader else None,
        worksheet=[], status=wf.REPORTED, reported_at=now, updated_at=now)
    session.add(issue)
    session.flush()
    if reporter_name or reporter_phone:
        session.add(IssueReporter(issue_id=issue.id, name=reporter_name, phone=reporter_phone))
    data: dict[str, Any] = {"crs": crs, "placement": place.method}
    if crs == "gcj02":
        data["input"] = {"lon": lon, "lat": lat}
    if place.method == "nearest":
        data["distance_m"] = place.distance_m
    if len(place.candidates) > 1:
        data["shared_boundary"] = list(place.candidates)
    _append_event(session, id=event_id, issue_id=issue.id, action="report", from_status=None, to_status=wf.REPORTED,
                  actor_id=actor.official_id, actor_role=acting_role("report", roles), at=now, note="", data=data)
    photo_rows = attach_photos(session, photo_store, checked, issue.id, "report", event_id)
    out = render(session, issue, personal=False, tz=tz, now=now, grid_name=place.grid_name, photos=photo_rows)
    out["placement"] = {"method": place.method, "distance_m": place.distance_m,
                        "candidates": list(place.candidates)}
    if not actor.is_official:   # a resident's report: the key to their own evaluation, shown once
        out["evaluation_key"] = issue_key(session, issue.id)
    return out


def _append_event(session: Session, *, returning: bool = False, **values: Any) -> int | None:
    """Append one event (``issue_event``); its id back only with ``returning`` (or given in
    ``values``). Under row-level security an ``INSERT … RETURNING`` is checked against the events'
    read policy too — a sub-query on ``issue`` under its own policy, planned for the statement
    (≈ 0.3 ms, ``bench rls``) — so an event whose id nobody needs is written without one."""
    stmt = insert(IssueEvent).values(**values)
    if returning:
        return session.execute(stmt.returning(IssueEvent.id)).scalar_one()
    session.execute(stmt)
    return values.get("id")


def apply_transition(session: Session, issue_id: int, action: str, actor: Actor, *, tz: ZoneInfo,
                     expected_version: int | None = None, note: str = "", payload: dict | None = None,
                     photos: Sequence[PhotoIn] = (), photo_store: PhotoStore | None = None,
                     now: dt.datetime | None = None, view_scope: Scope | None = None) -> dict:
    """Make one workflow step. Payload keys per action: assign ``assignee_id`` (optional; default
    the directly responsible person, else the grid leader); reassign ``assignee_id`` (+ reason in
    ``note``); rework reason in ``note``; feedback result in ``note`` (+ photos); evaluate
    ``satisfaction`` 1–5 (+ comment in ``note``); extend ``new_due`` (date or datetime, + reason).
    Each action's own checks and writes are its handler in :mod:`geodata.workflow.transitions`.

    Writes the new state and exactly one event; raises before writing on any refusal. The answer is
    rendered for ``view_scope`` (default: the actor's own scope)."""
    now = at_or_now(now, "now")
    if action == "report":
        raise DomainError("use_report", "上报请使用上报接口", "use the report endpoint to report", field="action")
    if action not in wf.TRANSITIONS:
        raise TransitionError("unknown_action", f"未知操作“{action}”", f"unknown action '{action}'")
    note = clean_text(note, "note", max_len=MAX_TEXT["note"])
    issue = load_issue(session, issue_id)
    if expected_version is not None and expected_version != issue.version:
        raise conflict(issue.version)
    roles = actor.roles_on_issue(issue)
    from_status = issue.status
    to_status = wf.transition(from_status, action, roles)
    actor.require_action(action, issue.grid_code, issue.id)
    step = Step(session, issue, actor, note, dict(payload or {}), now, tz, photos, photo_store)
    handler = HANDLERS.get(action)
    data = handler(step) if handler is not None else {}
    issue.status = to_status
    issue.updated_at = now
    try:
        session.flush()
    except StaleDataError:
        raise conflict() from None
    event_id = _append_event(session, returning=bool(step.checked), issue_id=issue.id, action=action,
                             from_status=from_status, to_status=to_status, actor_id=actor.official_id,
                             actor_role=acting_role(action, roles), at=now, note=note, data=data)
    attach_photos(session, photo_store, step.checked, issue.id, "feedback", event_id)
    scope = view_scope or actor.scope()
    personal = scope.personal_data and can_see(session, scope, issue.id)
    return render(session, issue, personal=personal, tz=tz, now=now, actor=actor)


def evaluate(session: Session, issue_id: int, actor: Actor, *, satisfaction: int, comment: str = "",
             expected_version: int | None = None, now: dt.datetime | None = None, tz: ZoneInfo) -> dict:
    """综合评价: satisfaction 1–5 and a comment, on a closed issue."""
    return apply_transition(session, issue_id, "evaluate", actor, expected_version=expected_version, note=comment,
                            payload={"satisfaction": satisfaction}, now=now, tz=tz)


def extend(session: Session, issue_id: int, actor: Actor, *, new_due: dt.date | dt.datetime, reason: str,
           expected_version: int | None = None, now: dt.datetime | None = None, tz: ZoneInfo) -> dict:
    """延期: a later due date with a reason; the actor is the approver."""
    return apply_transition(session, issue_id, "extend", actor, expected_version=expected_version, note=reason,
                            payload={"new_due": new_due}, now=now, tz=tz)


def reassign(session: Session, issue_id: int, actor: Actor, *, assignee_id: int, reason: str,
             expected_version: int | None = None, now: dt.datetime | None = None, tz: ZoneInfo) -> dict:
    """改派 with a reason; every reassignment is counted (the 推诿 signal)."""
    return apply_transition(session, issue_id, "reassign", actor, expected_version=expected_version, note=reason,
                            payload={"assignee_id": assignee_id}, now=now, tz=tz)
