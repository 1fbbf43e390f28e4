"""Weekly notice (周通报) per grid leader: the week's priorities, open and overdue items, as a text
message — the command centre's weekly SMS. Delivery is pluggable (:class:`Delivery`); the default
(:class:`OutboxDelivery`) writes ``outbox`` rows that the dashboard shows and a sender can pick up.

Weeks run Monday–Sunday in the business time zone (``tz``). Open and overdue counts are as of
``now``; "new" and "closed" count the week's reports and closures. A leader already notified for a
week (same official, same subject in the outbox) is skipped unless ``force``. The text carries issue
numbers and titles only — never phone numbers or reporter data.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, func, or_, select, text
from sqlalchemy.orm import Session

from geodata.access.capabilities import SEND_NOTICES
from geodata.access.scope import Scope
from geodata.errors import DomainError, ForbiddenError
from geodata.grids.store import valid_at
from geodata.models import Grid, GridAssignment, Issue, Official, Outbox
from geodata.vocab import STATUS_LABELS
from geodata.workflow import rules as wf
from geodata.workflow.identity import Actor

UTC = dt.UTC
SENDER = "三官庙街道网格化管理中心"


@dataclass
class Notice:
    official_id: int
    official_name: str
    grid_codes: list[str]
    grid_names: list[str]
    week_start: dt.date
    week_end: dt.date
    subject: str
    body: str
    open_count: int = 0
    overdue_count: int = 0
    new_count: int = 0
    closed_count: int = 0
    priorities: list[dict] = field(default_factory=list)
    delivered: bool = False
    outbox_id: int | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("grid_names")
        return d


class Delivery(Protocol):
    """Delivers one notice; returns an id for the record (e.g. the outbox row), or None."""

    channel: str

    def deliver(self, session: Session, notice: Notice) -> int | None: ...


class OutboxDelivery:
    """Default delivery: an ``outbox`` row per notice (channel ``sms``), in the caller's transaction."""

    channel = "sms"

    def deliver(self, session: Session, notice: Notice) -> int | None:
        row = Outbox(channel=self.channel, official_id=notice.official_id, subject=notice.subject, body=notice.body)
        session.add(row)
        session.flush()
        return row.id


def week_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    start = day - dt.timedelta(days=day.weekday())
    return start, start + dt.timedelta(days=6)


def _md(d: dt.date) -> str:
    return f"{d.month}月{d.day}日"


def subject_for(week_start: dt.date) -> str:
    return f"网格周通报 {week_start.isoformat()}"


def build_weekly_notices(session: Session, *, week_of: dt.date | None = None, now: dt.datetime | None = None,
                         tz: ZoneInfo, max_items: int = 5) -> list[Notice]:
    """One notice per current grid leader (covering all their block grids)."""
    now = now or dt.datetime.now(UTC)
    if week_of is not None and not dt.date(2000, 1, 1) <= week_of <= dt.date(2100, 12, 31):
        raise DomainError("out_of_range", "week_of 须在 2000–2100 年之间", "week_of must be within 2000–2100",
                           field="week_of")
    week_start, week_end = week_bounds(week_of or now.astimezone(tz).date())
    t0 = dt.datetime.combine(week_start, dt.time(0), tzinfo=tz)
    t1 = dt.datetime.combine(week_end + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    leaders = session.execute(
        select(GridAssignment.official_id, Official.name, GridAssignment.grid_code, Grid.name)
        .join(Official, and_(Official.id == GridAssignment.official_id, Official.active))
        .join(Grid, and_(Grid.code == GridAssignment.grid_code, Grid.valid_to.is_(None)))
        .where(GridAssignment.role == "grid_leader", valid_at(now, GridAssignment))
        .order_by(GridAssignment.official_id, GridAssignment.grid_code)).all()
    by_official: dict[int, tuple[str, list[str], list[str]]] = {}
    for oid, oname, code, gname in leaders:
        entry = by_official.setdefault(oid, (oname, [], []))
        entry[1].append(code)
        entry[2].append(gname)
    codes = sorted({c for _, (_, cs, _) in by_official.items() for c in cs})
    if not codes:
        return []
    rows = session.execute(
        select(Issue.grid_code, Issue.number, Issue.title, Issue.status, Issue.reported_at, Issue.due_at,
               Issue.closed_at)
        .where(Issue.grid_code.in_(codes),
               or_(Issue.status.in_(tuple(wf.OPEN_STATUSES)), and_(Issue.reported_at >= t0, Issue.reported_at < t1),
                   and_(Issue.closed_at >= t0, Issue.closed_at < t1)))).all()
    per_grid: dict[str, list] = {}
    for r in rows:
        per_grid.setdefault(r[0], []).append(r)
    notices = []
    for oid, (oname, gcodes, gnames) in by_official.items():
        items = [r for c in gcodes for r in per_grid.get(c, [])]
        open_items = [r for r in items if r[3] in wf.OPEN_STATUSES]
        overdue = {r[1] for r in open_items if wf.is_overdue(r[3], r[5], r[6], now)}   # issue numbers
        new = [r for r in items if t0 <= r[4] < t1]
        closed = [r for r in items if r[6] is not None and t0 <= r[6] < t1]

        def priority(r, overdue=overdue) -> tuple:
            far = dt.datetime.max.replace(tzinfo=UTC)
            return (0 if r[1] in overdue else 1, r[5] or far, r[4], r[1])

        top = sorted(open_items, key=priority)[:max_items]
        prio = []
        for r in top:
            od = r[1] in overdue
            days = max(1, math.ceil((now - r[5]).total_seconds() / 86400)) if od else 0
            prio.append({"number": r[1], "title": r[2], "status": r[3],
                         "due_at": r[5].astimezone(tz) if r[5] else None, "overdue": od, "days_overdue": days})
        lines = [f"【{SENDER}】{oname}网格长您好：本周（{_md(week_start)}—{_md(week_end)}）您负责的"
                 f"{'、'.join(gnames)}：未办结 {len(open_items)} 件，其中超期 {len(overdue)} 件；"
                 f"本周新增 {len(new)} 件，办结 {len(closed)} 件。"]
        if prio:
            lines.append("请优先处理：")
            for k, p in enumerate(prio, start=1):
                if p["overdue"]:
                    when = f"已超期{p['days_overdue']}天"
                elif p["due_at"] is not None:
                    when = f"{_md(p['due_at'].date())}到期"
                else:
                    when = f"待交办（{STATUS_LABELS[p['status']][0]}）"
                lines.append(f"{k}. {p['number']} {p['title']}（{when}）")
            lines.append("请及时跟进，按期办结。")
        else:
            lines.append("本周无待办事项，请继续做好日巡查、日走访。")
        notices.append(Notice(oid, oname, gcodes, gnames, week_start, week_end, subject_for(week_start),
                              "\n".join(lines), len(open_items), len(overdue), len(new), len(closed), prio))
    return notices


def send_weekly_notices(session: Session, actor: Actor, *, delivery: Delivery | None = None,
                        week_of: dt.date | None = None, now: dt.datetime | None = None, force: bool = False,
                        dry_run: bool = False, tz: ZoneInfo) -> dict:
    """Build and deliver the week's notices (operators only). Returns a run summary."""
    if "operator" not in actor.roles or not actor.may(SEND_NOTICES):
        raise ForbiddenError("forbidden", "只有网格化管理中心操作员可以发送周通报",
                             "only command-centre operators may send the weekly notices")
    delivery = delivery or OutboxDelivery()
    notices = build_weekly_notices(session, week_of=week_of, now=now, tz=tz)
    if notices and not dry_run:
        # Two runs for one week at once (a timer and an operator's click) must not both send: the
        # second waits here until the first commits, then finds its outbox rows and skips.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 732))"),
                        {"k": notices[0].subject})
    delivered = skipped = 0
    sent: dict[tuple[int | None, str], int] = {}   # (official, subject) → the earliest outbox row
    if notices and not dry_run and not force:
        sent = {(o, s): i for o, s, i in session.execute(
            select(Outbox.official_id, Outbox.subject, func.min(Outbox.id))
            .where(Outbox.subject.in_({n.subject for n in notices}),
                   Outbox.official_id.in_({n.official_id for n in notices}))
            .group_by(Outbox.official_id, Outbox.subject))}
    for n in notices:
        if dry_run:
            continue
        if not force:
            seen = sent.get((n.official_id, n.subject))
            if seen is not None:
                skipped += 1
                n.outbox_id = seen
                continue
        n.outbox_id = delivery.deliver(session, n)
        n.delivered = True
        delivered += 1
    start, end = (notices[0].week_start, notices[0].week_end) if notices else week_bounds(
        week_of or (now or dt.datetime.now(UTC)).astimezone(tz).date())
    return {"week_start": start, "week_end": end, "generated": len(notices), "delivered": delivered,
            "skipped": skipped, "notices": [n.as_dict() for n in notices]}


def list_outbox(session: Session, *, official_id: int | None = None, page: int = 1, page_size: int = 50,
                tz: ZoneInfo, nobody: bool = False) -> dict:
    """Outgoing messages, newest first: to ``official_id`` (None: to everyone; ``nobody``: none —
    the page of an account that receives no messages)."""
    if not 1 <= page_size <= 200 or not 1 <= page <= 1_000_000:
        raise DomainError("invalid_page_size", "page_size 须在 1–200 之间", "page_size must be 1–200",
                           field="page_size")
    conds = [false()] if nobody else [] if official_id is None else [Outbox.official_id == official_id]
    total = session.execute(select(func.count()).select_from(Outbox).where(*conds)).scalar_one()
    rows = session.execute(
        select(Outbox, Official.name).outerjoin(Official, Official.id == Outbox.official_id).where(*conds)
        .order_by(Outbox.created_at.desc(), Outbox.id.desc()).limit(page_size).offset((page - 1) * page_size)).all()
    items = [{"id": o.id, "channel": o.channel, "official_id": o.official_id, "official_name": name,
              "subject": o.subject, "body": o.body, "created_at": o.created_at.astimezone(tz),
              "sent_at": o.sent_at.astimezone(tz) if o.sent_at else None} for o, name in rows]
    return {"items": items, "total": int(total), "page": page, "page_size": page_size,
            "pages": max(1, math.ceil(total / page_size))}


# -- the dashboard's view of the outbox ----------------------------------------------------------
#: a mainland mobile number standing alone (not part of a longer digit run such as an issue number)
_MOBILE_RE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_phones(text_: str) -> str:
    """Mask mobile numbers (138****0001). Notices carry issue numbers and titles only, but a title is
    typed by whoever reported the issue and could hold a number; the outbox view never shows one."""
    return _MOBILE_RE.sub(r"\1****\2", text_)


@dataclass(frozen=True)
class OutboxItem:
    """One outgoing message as the dashboard shows it (times in the business time zone)."""

    id: int
    official_id: int | None
    recipient: str | None
    grids: tuple[tuple[str, str, str], ...]   # the recipient's current grids in scope: (code, name, name_en)
    channel: str
    subject: str
    body: str
    created_at: dt.datetime
    sent_at: dt.datetime | None

    @property
    def sent(self) -> bool:
        return self.sent_at is not None


@dataclass(frozen=True)
class OutboxView:
    items: list[OutboxItem]
    total: int      # rows in scope
    pending: int    # of which not sent yet


def latest_outbox(session: Session, scope: Scope, *, limit: int = 100, offset: int = 0,
                  now: dt.datetime | None = None, tz: ZoneInfo) -> OutboxView:
    """The newest outbox rows the viewer may see, newest first (``limit`` 0 → counts only).

    A scope limited to grids sees the messages of officials currently assigned to a grid in it; the
    command centre's scope (every grid) sees every row. Phone numbers are never part of the result:
    officials' phones are not read, and mobile numbers in a message body are masked."""
    if not 0 <= limit <= 500 or not 0 <= offset <= 1_000_000:
        raise DomainError("invalid_page_size", "limit 须在 0–500 之间", "limit must be 0–500", field="limit")
    now = now or dt.datetime.now(UTC)
    conds = []
    if scope.roots is not None:
        conds.append(Outbox.official_id.in_(
            select(GridAssignment.official_id).where(valid_at(now, GridAssignment), scope.filter(GridAssignment.grid_code))))
    total, pending = session.execute(
        select(func.count(), func.count().filter(Outbox.sent_at.is_(None))).select_from(Outbox).where(*conds)).one()
    if limit == 0:
        return OutboxView([], int(total), int(pending))
    rows = session.execute(
        select(Outbox.id, Outbox.official_id, Official.name, Outbox.channel, Outbox.subject, Outbox.body,
               Outbox.created_at, Outbox.sent_at)
        .outerjoin(Official, Official.id == Outbox.official_id).where(*conds)
        .order_by(Outbox.created_at.desc(), Outbox.id.desc()).limit(limit).offset(offset)).all()
    officials = sorted({r.official_id for r in rows if r.official_id is not None})
    grids: dict[int, list[tuple[str, str, str]]] = {}
    if officials:
        for oid, code, name, name_en in session.execute(
                select(GridAssignment.official_id, Grid.code, Grid.name, Grid.name_en).distinct()
                .join(Grid, and_(Grid.code == GridAssignment.grid_code, Grid.valid_to.is_(None)))
                .where(GridAssignment.official_id.in_(officials), valid_at(now, GridAssignment),
                       scope.filter(GridAssignment.grid_code))
                .order_by(GridAssignment.official_id, Grid.code)):
            grids.setdefault(oid, []).append((code, name, name_en or name))
    items = [OutboxItem(r.id, r.official_id, r.name, tuple(grids.get(r.official_id, ())), r.channel,
                        mask_phones(r.subject), mask_phones(r.body), r.created_at.astimezone(tz),
                        r.sent_at.astimezone(tz) if r.sent_at else None) for r in rows]
    return OutboxView(items, int(total), int(pending))
