"""One handler per workflow action: what the step checks and writes beyond the state change.

:func:`geodata.workflow.service.apply_transition` does what every step shares (load, optimistic
version check, :func:`geodata.workflow.rules.transition` for state and role, the one event row); the
handler of the action (:data:`HANDLERS`) validates its payload, updates the issue's own fields and
returns the event's ``data``. A handler raises before anything is written. Actions without a
handler (handle, verify) change the state only.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from geodata.clock import local
from geodata.errors import DomainError
from geodata.models import Issue, Official
from geodata.workflow import rules as wf
from geodata.workflow.identity import Actor
from geodata.workflow.photos import CheckedPhoto, PhotoIn, PhotoStore, check_photos
from geodata.workflow.queries import get_domain

#: An extension (延期) may move the due date at most this far ahead of now.
MAX_EXTEND_DAYS = 366


@dataclass
class Step:
    """One transition in progress: the issue (loaded, not yet changed), who acts, what they sent."""

    session: Session
    issue: Issue
    actor: Actor
    note: str
    payload: dict
    now: dt.datetime
    tz: ZoneInfo
    photos: Sequence[PhotoIn] = ()
    photo_store: PhotoStore | None = None
    checked: list[CheckedPhoto] = field(default_factory=list)   # feedback photos, saved after the event


def _required(ok: Any, zh: str, en: str, fld: str) -> None:
    if not ok:
        raise DomainError("required", zh, en, field=fld)


def _official(session: Session, official_id: Any, fld: str) -> Official:
    off = session.get(Official, official_id) if isinstance(official_id, int) and 0 < official_id < 2**31 else None
    if off is None or not off.active:
        raise DomainError("unknown_official", f"工作人员“{official_id}”不存在或已停用",
                          f"official '{official_id}' does not exist or is inactive", field=fld)
    return off


def _as_due(value: dt.date | dt.datetime | str, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
        except ValueError:
            raise DomainError("invalid_date", f"new_due “{value}” 不是有效日期", f"new_due '{value}' is not a date",
                              field="new_due") from None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    return dt.datetime.combine(value, dt.time(23, 59, 59), tzinfo=tz)


def assign(s: Step) -> dict:
    """交办: to ``assignee_id``, by default the directly responsible person, else the grid leader;
    the deadlines and the 倒排工作表 start now."""
    issue, now, tz = s.issue, s.now, s.tz
    aid = s.payload.get("assignee_id")
    if aid is None:
        aid = issue.responsible_id or issue.grid_leader_id
    if aid is None:
        raise DomainError("no_assignee", "未指定承办人且该网格没有直接责任人或网格长",
                          "no assignee given and the grid has no responsible person or grid leader",
                          field="assignee_id")
    _official(s.session, aid, "assignee_id")
    sign, due = wf.deadlines(now, wf.policy_for(get_domain(s.session, issue.domain_code), issue.kind), tz)
    issue.assignee_id, issue.assigned_at, issue.sign_deadline, issue.due_at = aid, now, sign, due
    issue.worksheet = wf.worksheet(now.astimezone(tz), sign.astimezone(tz), due)
    return {"assignee_id": aid, "sign_deadline": sign.astimezone(tz).isoformat(), "due_at": due.isoformat()}


def reassign(s: Step) -> dict:
    """改派 with a reason: a new sign deadline, the due date stays (推诿 buys no time); counted."""
    issue, now, tz = s.issue, s.now, s.tz
    aid = s.payload.get("assignee_id")
    _required(aid is not None, "改派须指定新的承办人 assignee_id", "reassign needs assignee_id", "assignee_id")
    _official(s.session, aid, "assignee_id")
    if aid == issue.assignee_id:
        raise DomainError("same_assignee", "新的承办人与当前承办人相同", "the new assignee is the current one",
                          field="assignee_id")
    _required(s.note, "改派须说明理由", "a reason (note) is required to reassign", "note")
    sign = now + dt.timedelta(hours=wf.policy_for(get_domain(s.session, issue.domain_code), issue.kind).sign_hours)
    data = {"from_assignee_id": issue.assignee_id, "assignee_id": aid,
            "reassign_count": issue.reassign_count + 1, "sign_deadline": sign.astimezone(tz).isoformat()}
    issue.assignee_id, issue.assigned_at, issue.sign_deadline, issue.signed_at = aid, now, sign, None
    issue.reassign_count += 1
    if issue.due_at is not None and issue.due_at > now:
        issue.worksheet = wf.worksheet(now.astimezone(tz), sign.astimezone(tz), issue.due_at.astimezone(tz))
    return data


def sign(s: Step) -> dict:
    """签收: late when after the sign deadline."""
    s.issue.signed_at = s.now
    return {"late": bool(s.issue.sign_deadline and s.now > s.issue.sign_deadline)}


def feedback(s: Step) -> dict:
    """反馈: the result in ``note``, optional photos (checked now, saved with the event)."""
    _required(s.note, "反馈须填写办理结果", "feedback needs the result (note)", "note")
    if not s.photos:
        return {}
    s.checked = check_photos(s.photo_store, s.photos)
    return {"photos": len(s.checked)}


def rework(s: Step) -> dict:
    """返工 (verification failed) with a reason; counted."""
    _required(s.note, "返工须说明理由", "a reason (note) is required for rework", "note")
    s.issue.rework_count += 1
    return {"rework_count": s.issue.rework_count}


def close(s: Step) -> dict:
    """办结: records whether it closed late."""
    s.issue.closed_at = s.now
    return {"overdue": wf.is_overdue(wf.CLOSED, s.issue.due_at, s.now, s.now)}


def evaluate(s: Step) -> dict:
    """综合评价: ``satisfaction`` 1–5 (comment in ``note``)."""
    sat = s.payload.get("satisfaction")
    if isinstance(sat, bool) or not isinstance(sat, int) or not 1 <= sat <= 5:
        raise DomainError("invalid_satisfaction", "满意度须为 1–5 的整数", "satisfaction must be an integer 1–5",
                          field="satisfaction")
    s.issue.satisfaction = sat
    return {"satisfaction": sat}


def _new_due(s: Step, what_zh: str, what_en: str) -> dt.datetime:
    """The ``new_due`` of an extension or its request: later than the due date and now, at most
    MAX_EXTEND_DAYS ahead, with a reason."""
    issue, now = s.issue, s.now
    _required(s.payload.get("new_due") is not None, f"{what_zh}须指定新的期限 new_due", f"{what_en} needs new_due",
              "new_due")
    _required(s.note, f"{what_zh}须说明理由", f"a reason (note) is required to {what_en}", "note")
    new_due = _as_due(s.payload["new_due"], s.tz)
    if new_due > now + dt.timedelta(days=MAX_EXTEND_DAYS):
        raise DomainError("invalid_new_due", f"新的期限不能超过 {MAX_EXTEND_DAYS} 天之后",
                          f"new_due may be at most {MAX_EXTEND_DAYS} days ahead", field="new_due")
    if issue.due_at is None or new_due <= issue.due_at or new_due <= now:
        raise DomainError("invalid_new_due", "新的期限须晚于原期限和当前时间",
                          "new_due must be later than the current due date and now", field="new_due")
    return new_due


def request_extension(s: Step) -> dict:
    """申请延期: the assignee asks for ``new_due`` with a reason; nothing changes until an approver
    extends (the event carries the date asked for, which the approver's form starts from)."""
    new_due = _new_due(s, "申请延期", "request an extension")
    return {"old_due": local(s.issue.due_at, s.tz).isoformat(), "requested_due": new_due.astimezone(s.tz).isoformat()}


def extend(s: Step) -> dict:
    """延期: ``new_due`` later than the due date and now (at most MAX_EXTEND_DAYS ahead), with a
    reason; the actor is the approver; the 倒排工作表 is rescheduled."""
    issue, tz = s.issue, s.tz
    new_due = _new_due(s, "延期", "extend")
    data = {"old_due": local(issue.due_at, tz).isoformat(), "new_due": new_due.astimezone(tz).isoformat(),
            "approver_id": s.actor.official_id}
    issue.due_at = new_due
    if issue.assigned_at and issue.sign_deadline:
        issue.worksheet = wf.worksheet(issue.assigned_at.astimezone(tz), issue.sign_deadline.astimezone(tz),
                                       new_due.astimezone(tz))
    return data


#: action → its handler (report has its own entry point, :func:`geodata.workflow.service.report_issue`)
HANDLERS: dict[str, Callable[[Step], dict]] = {
    "assign": assign, "reassign": reassign, "sign": sign, "feedback": feedback, "rework": rework,
    "close": close, "evaluate": evaluate, "request_extension": request_extension, "extend": extend,
}
