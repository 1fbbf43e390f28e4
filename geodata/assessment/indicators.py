"""Every indicator of :mod:`geodata.assessment.registry`, computed set-wise from the records: one SQL
query per family (cases, steps, diary, activity) for any number of periods and every subject at
once — grids of one level, or officials by their link to the case — and, for any cell, the records
behind it (:func:`trace`), by the same conditions.

The rules used, never copied: THE overdue rule (:func:`geodata.workflow.filters.overdue_condition`),
THE visibility rule (:func:`geodata.access.visibility.visible_issues`; diary and activities by the
scope's grids), THE grid filter (:func:`geodata.grids.store.in_grid`). Period boundaries are local
midnights in ``tz``. "Data as of" (``as_of``) is the instant the records are read at: events after
it are ignored, open cases are overdue by it; a case's status, deadline and closing time are its
current ones (the issue row), so a past ``as_of`` is exact only for the event-based measures —
snapshots (:mod:`geodata.assessment.store`) keep what was computed.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    column,
    extract,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.assessment.periods import Period
from geodata.assessment.registry import FAMILIES, INDICATORS, MEASURES, value
from geodata.clock import at_or_now
from geodata.errors import DomainError
from geodata.grids.store import ancestor_key, in_grid, issue_in_grid, valid_at
from geodata.models import Activity, Grid, GridAssignment, Issue, IssueEvent, PatrolDiary
from geodata.workflow.filters import is_closed, open_overdue, overdue_condition
from geodata.workflow.rules import check_kind

TSTZ = DateTime(timezone=True)

#: official roles → the issue's column naming that official (the six-ones chain, or the assignee)
OFFICIAL_LINKS: dict[str, Any] = {
    "grid_leader": Issue.grid_leader_id, "responsible": Issue.responsible_id,
    "leader_in_charge": Issue.leader_in_charge_id, "assignee": Issue.assignee_id,
}
#: the grid role whose holders are listed as subjects of an official grouping (zero rows too)
LINK_ROLES = {"grid_leader": "grid_leader", "responsible": "direct_responsible",
              "leader_in_charge": "first_responsible", "assignee": None}


@dataclass(frozen=True)
class By:
    """Whom the numbers are for: grids of ``level`` (1 street, 2 community, 3 block), or officials
    by ``link`` (an :data:`OFFICIAL_LINKS` key: the case's grid leader, directly responsible
    person, leader in charge or assignee; diary and activities by their official)."""

    level: int | None = 3
    link: str | None = None

    def __post_init__(self) -> None:
        if self.link is not None and self.link not in OFFICIAL_LINKS:
            raise DomainError("invalid_link", f"未知的人员关联“{self.link}”", f"unknown official link '{self.link}'",
                              field="by")
        if self.link is None and self.level not in (1, 2, 3):
            raise DomainError("invalid_level", "网格层级须为 1、2 或 3", "grid level must be 1, 2 or 3", field="level")

    @classmethod
    def grid(cls, level: int) -> By:
        return cls(level=level)

    @classmethod
    def official(cls, link: str = "grid_leader") -> By:
        return cls(level=None, link=link)

    @property
    def subject(self) -> str:
        return "official" if self.link else "grid"

    @property
    def key(self) -> str:
        return f"official:{self.link}" if self.link else f"grid:{self.level}"

    def issue_key(self) -> ColumnElement:
        if self.link:
            return cast(OFFICIAL_LINKS[self.link], String)
        return ancestor_key(Issue.grid_code, self.level)

    def record_key(self, grid_col: ColumnElement, official_col: ColumnElement) -> ColumnElement:
        if self.link:
            return cast(official_col, String)
        return ancestor_key(grid_col, self.level)


@dataclass(frozen=True)
class Query:
    """One computation: periods, whom for, what may be seen, where (a grid and all below it)."""

    periods: tuple[Period, ...]
    by: By
    scope: Scope
    now: dt.datetime
    tz: ZoneInfo
    within: str | None = None
    kind: str | None = None     # cases and steps of one kind only ('problem' 问题 / 'sentiment' 社情)

    def _by_start(self) -> list[int]:
        return sorted(range(len(self.periods)), key=lambda i: self.periods[i].bounds(self.tz)[0])

    def period_rows(self):
        # pi: the period's place by start (see disjoint_bounds)
        place = {i: n + 1 for n, i in enumerate(self._by_start())}
        rows = [(place[i], p.key, *p.bounds(self.tz)) for i, p in enumerate(self.periods)]
        # unnest of four bound arrays, not VALUES: a VALUES list is rendered into the SQL and has no
        # cache key, so every query built on it was compiled afresh (≈ 15 ms of the interpreter
        # each; the wall's numbers ran seven of them)
        pi, pk, ps, pe = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [], [])
        return (func.unnest(literal(pi, ARRAY(Integer)), literal(pk, ARRAY(String)), literal(ps, ARRAY(TSTZ)),
                            literal(pe, ARRAY(TSTZ)))
                .table_valued(column("pi", Integer), column("pk", String), column("ps", TSTZ), column("pe", TSTZ))
                .render_derived(name="periods"))

    def disjoint_bounds(self) -> list[dt.datetime] | None:
        """[start₁, end₁, start₂, end₂, …] of the periods by start when they do not overlap (the
        period of place i in :meth:`period_rows` is width_bucket's bucket 2i − 1); else None."""
        b = [self.periods[i].bounds(self.tz) for i in self._by_start()]
        if any(b[i][1] > b[i + 1][0] for i in range(len(b) - 1)):
            return None
        return [t for pair in b for t in pair]


def _in(col: ColumnElement, p) -> ColumnElement[bool]:
    return and_(col >= p.c.ps, col < p.c.pe)


def _flag(expr: ColumnElement[bool]) -> ColumnElement[bool]:
    return func.coalesce(expr, false())


# -- family: cases (one row per period and case) ----------------------------------------------------
def _cases_rows(q: Query) -> tuple[Select, dict[str, ColumnElement]]:
    now, p = q.now, q.period_rows()
    ev = (select(IssueEvent.issue_id.label("issue_id"),
                 func.min(IssueEvent.at).filter(IssueEvent.action == "assign").label("accepted_at"),
                 cast((func.array_agg(aggregate_order_by(IssueEvent.data["due_at"].astext, IssueEvent.at))
                       .filter(IssueEvent.action == "assign"))[1], TSTZ).label("orig_due"),
                 func.min(IssueEvent.at).filter(IssueEvent.action == "extend").label("extended_at"))
          .where(IssueEvent.at <= now, IssueEvent.action.in_(("assign", "extend")))
          .group_by(IssueEvent.issue_id).cte("ev"))
    key = q.by.issue_key()
    # One row per case ("c"): its instants, what does not depend on the period, and — periods
    # that do not overlap — the bucket of each instant among the periods' bounds (width_bucket:
    # bucket 2i − 1 is the period of place i). Kept apart by OFFSET 0, as are "b" below: else
    # PostgreSQL inlines each expression into every one built on it ("due" was evaluated 14 times
    # a row, each bucket up to 6 times — most of the statement's time at 10⁶, docs/assessment.md,
    # Speed). The filters on the key are said here: the outer ones do not cross an OFFSET.
    bounds = q.disjoint_bounds()
    instants = {"reported_at": Issue.reported_at, "accepted_at": ev.c.accepted_at,
                "orig_due": func.coalesce(cast(ev.c.orig_due, TSTZ), Issue.due_at), "due_at": Issue.due_at,
                "extended_at": ev.c.extended_at, "closed_at": Issue.closed_at}
    once = {**instants, "closed_now": is_closed(), "overdue_now": overdue_condition(now),
            "overdue_open_now": open_overdue(now),
            "hours": extract("epoch", Issue.closed_at - func.coalesce(ev.c.accepted_at, Issue.reported_at)) / 3600.0}
    if bounds is not None:
        edges = literal(bounds, ARRAY(TSTZ))
        # the instants a case is paired by (the original deadline by itself, as assigned)
        for n, col in enumerate((Issue.reported_at, ev.c.accepted_at, ev.c.orig_due, Issue.due_at, Issue.closed_at)):
            once[f"b{n}"] = func.width_bucket(col, edges)
    c = (select(Issue.id.label("rid"), key.label("k"), *(v.label(n) for n, v in once.items()))
         .select_from(Issue).outerjoin(ev, ev.c.issue_id == Issue.id)
         .where(visible_issues(q.scope), Issue.reported_at <= now, key.is_not(None), *_within_issue(q))
         .offset(0).subquery("c"))
    # Set-wise by period. When the periods do not overlap (months, a period with its 环比 and 同比),
    # each case is paired only with the periods its instants fall in: the distinct odd buckets
    # (one kept unless an earlier instant had it), unnested — about one row per case instead of
    # one per case and period (the 10⁶ benchmark's cost: docs/assessment.md, Speed). Overlapping
    # periods: every case against every period.
    if bounds is None:
        paired, joined = c, c.join(p, true())
    else:
        bs = [c.c[f"b{n}"] for n in range(5)]
        firsts = [case((and_(b % 2 == 1, *(b.is_distinct_from(e) for e in bs[:n])), (b + 1) // 2), else_=null())
                  for n, b in enumerate(bs)]
        paired = select(c, func.unnest(func.array_remove(pg_array(firsts), null())).label("pi")).subquery("s")
        joined = paired.join(p, p.c.pi == paired.c.pi)
    x = paired.c
    closed_in = and_(x.closed_now, _in(x.closed_at, p))
    tests = {
        "reported": _in(x.reported_at, p), "accepted": _in(x.accepted_at, p),
        "due": or_(_in(x.orig_due, p), _in(x.due_at, p)),
        "extended_by_end": x.extended_at < p.c.pe, "due_after_end": x.due_at >= p.c.pe,
        "closed_by_end": and_(x.closed_now, x.closed_at < p.c.pe), "closed_now": x.closed_now,
        "overdue_now": x.overdue_now, "overdue_open_now": x.overdue_open_now, "closed_in": closed_in,
    }
    base = select(p.c.pk.label("pk"), x.k, x.rid, *(v.label(k) for k, v in tests.items()),
                  case((_flag(closed_in), x.hours), else_=null()).label("hours")).select_from(joined)
    b = base.offset(0).subquery("b").c
    extended = and_(b.due, b.extended_by_end)
    deferred = and_(extended, b.due_after_end, ~b.closed_by_end)
    assessed = and_(b.due, ~_flag(deferred))
    flags = {
        "reported": b.reported, "accepted": b.accepted, "resolved": and_(b.reported, b.closed_now), "due": b.due,
        "deferred": deferred, "assessed": assessed, "closed": and_(assessed, b.closed_now),
        "closed_on_time": and_(assessed, b.closed_now, ~b.overdue_now),
        "overdue_open": and_(assessed, b.overdue_open_now),
        "closed_late": and_(assessed, b.closed_now, b.overdue_now),
        "overdue": and_(assessed, b.overdue_now),
        "extended": extended, "closed_in_period": b.closed_in,
    }
    rows = (select(b.pk, b.k, b.rid, *(_flag(v).label(k) for k, v in flags.items()), b.hours)
            .where(or_(b.reported, b.accepted, b.due, b.closed_in)))
    return rows, {}


def _within_issue(q: Query) -> list[ColumnElement[bool]]:
    conds = [issue_in_grid(q.within)] if q.within else []
    if q.kind:
        conds.append(Issue.kind == q.kind)
    return conds


def _cases_measures(c) -> dict[str, Callable]:
    out: dict[str, tuple[ColumnElement[bool], ColumnElement | None]] = {
        m: (getattr(c, m), None) for m in MEASURES["cases"] if m != "handling_hours_sum"}
    out["handling_hours_sum"] = (c.closed_in_period, c.hours)
    return out


# -- family: steps (one row per period and case with events in the period) --------------------------
def _steps_rows(q: Query) -> tuple[Select, dict]:
    now, p = q.now, q.period_rows()
    a = IssueEvent.action
    sat = cast(IssueEvent.data["satisfaction"].astext, Integer)
    late = IssueEvent.data["late"].astext == "true"
    cols = [p.c.pk.label("pk"), q.by.issue_key().label("k"), IssueEvent.issue_id.label("rid"),
            func.bool_or(a == "sign").label("signed"),
            func.bool_or(and_(a == "sign", late)).label("sign_late"),
            func.bool_or(a.in_(("verify", "rework"))).label("verified"),
            func.bool_or(a == "rework").label("reworked"),
            func.count().filter(a == "rework").label("n_rework"),
            func.bool_or(a == "reassign").label("reassigned"),
            func.count().filter(a == "reassign").label("n_reassign"),
            func.bool_or(a == "evaluate").label("evaluated"),
            func.max(sat).filter(a == "evaluate").label("sat")]
    rows = (select(*cols).select_from(IssueEvent).join(Issue, Issue.id == IssueEvent.issue_id)
            .join(p, _in(IssueEvent.at, p))
            .where(visible_issues(q.scope), IssueEvent.at <= now,
                   a.in_(("sign", "verify", "rework", "reassign", "evaluate")), *_within_issue(q))
            .group_by(p.c.pk, q.by.issue_key(), IssueEvent.issue_id))
    return rows, {}


def _steps_measures(c) -> dict[str, tuple]:
    return {
        "signed": (c.signed, None), "signed_on_time": (and_(c.signed, ~c.sign_late), None),
        "verified": (c.verified, None), "reworked": (c.reworked, None),
        "rework_events": (c.reworked, c.n_rework), "reassigned": (c.reassigned, None),
        "reassignments": (c.reassigned, c.n_reassign), "evaluated": (c.evaluated, None),
        "satisfaction_sum": (c.evaluated, c.sat),
    }


# -- family: diary (one row per period, subject, grid and local day; officials: per day) ------------
def _local_day(col: ColumnElement, tz: ZoneInfo) -> ColumnElement:
    return func.date(func.timezone(tz.key, col))


def _diary_entry_conds(q: Query, p) -> list[ColumnElement[bool]]:
    conds = [q.scope.filter(PatrolDiary.grid_code), PatrolDiary.started_at <= q.now, _in(PatrolDiary.started_at, p)]
    if q.within:
        conds.append(in_grid(PatrolDiary.grid_code, q.within))
    return conds


def _workday(col: ColumnElement, tz: ZoneInfo) -> ColumnElement[bool]:
    return extract("isodow", func.timezone(tz.key, col)) < 6


def _diary_rows(q: Query) -> tuple[Select, dict]:
    p = q.period_rows()
    d = PatrolDiary
    key = q.by.record_key(d.grid_code, d.official_id)
    group = [p.c.pk, key, _local_day(d.started_at, q.tz)]
    if not q.by.link:
        group.insert(2, d.grid_code)
    cols = [p.c.pk.label("pk"), key.label("k"), func.min(d.id).label("rid"),
            func.bool_or(and_(d.kind == "patrol", _workday(d.started_at, q.tz))).label("patrolled"),
            func.count().filter(d.kind == "visit").label("n_visit"),
            func.coalesce(func.sum(d.households), 0).label("households"),
            func.coalesce(func.sum(d.shops), 0).label("shops"),
            func.coalesce(func.sum(d.firms), 0).label("firms")]
    rows = select(*cols).select_from(d).join(p, true()).where(*_diary_entry_conds(q, p)).group_by(*group)
    return rows, {}


def _diary_measures(c) -> dict[str, tuple]:
    return {"patrol_days": (c.patrolled, None), "visits": (c.n_visit > 0, c.n_visit),
            "households": (c.households > 0, c.households), "shops": (c.shops > 0, c.shops),
            "firms": (c.firms > 0, c.firms)}


# -- family: activity (one row per period and activity) ---------------------------------------------
def _activity_rows(q: Query) -> tuple[Select, dict]:
    p = q.period_rows()
    a = Activity
    conds = [q.scope.filter(a.grid_code), a.held_at <= q.now, _in(a.held_at, p)]
    if q.within:
        conds.append(in_grid(a.grid_code, q.within))
    cols = [p.c.pk.label("pk"), q.by.record_key(a.grid_code, a.official_id).label("k"), a.id.label("rid"),
            (a.category == "talk").label("talk"), (a.category == "visit").label("visit"),
            (a.category == "clinic").label("clinic"), a.participants.label("participants")]
    return select(*cols).select_from(a).join(p, true()).where(*conds), {}


def _activity_measures(c) -> dict[str, tuple]:
    return {"talks": (c.talk, None), "home_visits": (c.visit, None), "clinics": (c.clinic, None),
            "participants": (c.participants > 0, c.participants)}


@dataclass(frozen=True)
class Family:
    rows: Callable[[Query], tuple[Select, dict]]
    measures: Callable[[Any], dict[str, tuple]]
    table: str          # the records a trace lists


FAMILY_SQL: dict[str, Family] = {
    "cases": Family(_cases_rows, _cases_measures, "issue"),
    "steps": Family(_steps_rows, _steps_measures, "issue"),
    "diary": Family(_diary_rows, _diary_measures, "patrol_diary"),
    "activity": Family(_activity_rows, _activity_measures, "activity"),
}
assert set(FAMILY_SQL) == set(FAMILIES)
#: measures no SQL computes: they come from the calendar and the grid table (see _context_measures)
CONTEXT_MEASURES = ("working_days",)


@contextmanager
def _no_jit(session: Session) -> Iterator[None]:
    """PostgreSQL's JIT off for these statements (restored after): their cost estimates (every
    case paired with its periods, a million rows at 10⁶) cross ``jit_above_cost``, and compiling
    the many filtered aggregates took longer than running them — 0.15 s per statement on the demo, seconds at 10⁶
    (EXPLAIN ANALYZE in docs/assessment.md, Speed)."""
    before = session.execute(select(func.current_setting("jit"))).scalar()
    session.execute(select(func.set_config("jit", "off", true())))
    yield   # on an error the transaction is rolled back, and the local setting with it
    session.execute(select(func.set_config("jit", before, true())))


def _family_measures(session: Session, fam: str, q: Query) -> dict[tuple[str, str], dict[str, float]]:
    family = FAMILY_SQL[fam]
    rows, _ = family.rows(q)
    sub = rows.subquery("r")
    ms = family.measures(sub.c)
    missing = set(MEASURES[fam]) - set(ms) - set(CONTEXT_MEASURES)
    assert not missing, f"no SQL for measures {missing} of {fam}"
    aggs = []
    names = []
    for name, (cond, val) in ms.items():
        names.append(name)
        aggs.append(func.count().filter(cond) if val is None else func.coalesce(func.sum(val).filter(cond), 0))
    out: dict[tuple[str, str], dict[str, float]] = {}
    stmt = select(sub.c.pk, sub.c.k, *aggs).where(sub.c.k.is_not(None)).group_by(sub.c.pk, sub.c.k)
    with _no_jit(session):
        for pk, k, *vals in session.execute(stmt):
            out[(pk, k)] = {n: float(v) for n, v in zip(names, vals)}
    return out


# -- subjects ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Subject:
    key: str             # grid code, or the official's id as text
    name: str
    kind: str            # 'grid' | 'official'
    grid_codes: tuple[str, ...] = ()   # grid: itself; official: the grids the role covers
    blocks: int = 1      # block grids the subject covers (the diary's grid-days)


def subjects(session: Session, q: Query) -> dict[str, Subject]:
    """The subjects listed even with no records: current grids of the level in scope (and
    ``within``), or the officials holding the link's role there during any of the periods."""
    from geodata.models import Official

    if not q.by.link:
        gq = select(Grid.code, Grid.name).where(Grid.level == q.by.level, valid_at(q.now), q.scope.filter(Grid.code))
        if q.within:
            gq = gq.where(in_grid(Grid.code, q.within) if q.by.level == 3 or _level(q.within) <= q.by.level
                          else Grid.code == ancestor_key(literal(q.within), q.by.level))
        grids = dict(session.execute(gq.order_by(Grid.code)).all())
        blocks = dict(session.execute(
            select(ancestor_key(Grid.code, q.by.level), func.count()).where(Grid.level == 3, valid_at(q.now))
            .group_by(ancestor_key(Grid.code, q.by.level))).all())
        return {c: Subject(c, n, "grid", (c,), int(blocks.get(c, 1) or 1)) for c, n in grids.items()}
    role = LINK_ROLES[q.by.link]
    if role is None:
        return {}
    start = min(p.bounds(q.tz)[0] for p in q.periods)
    end = min(max(p.bounds(q.tz)[1] for p in q.periods), q.now)
    aq = (select(GridAssignment.official_id, Official.name, GridAssignment.grid_code)
          .join(Official, Official.id == GridAssignment.official_id)
          .where(GridAssignment.role == role, GridAssignment.valid_from < end,
                 or_(GridAssignment.valid_to.is_(None), GridAssignment.valid_to > start),
                 q.scope.filter(GridAssignment.grid_code)))
    if q.within:
        aq = aq.where(in_grid(GridAssignment.grid_code, q.within))
    found: dict[str, tuple[str, set[str]]] = {}
    for oid, name, code in session.execute(aq.order_by(GridAssignment.official_id)):
        found.setdefault(str(oid), (name, set()))[1].add(code)
    return {k: Subject(k, n, "official", tuple(sorted(codes)), 1) for k, (n, codes) in found.items()}


def _level(code: str) -> int:
    from geodata.codes import level_of

    return level_of(code)


# -- the public API ---------------------------------------------------------------------------------
@dataclass
class Table:
    """Indicator values per (period key, subject key): ``values[(pk, k)][indicator code]``."""

    query: Query
    subjects: dict[str, Subject]
    measures: dict[tuple[str, str], dict[str, float]]
    values: dict[tuple[str, str], dict[str, float | None]]

    def cell(self, period: Period | str, key: str) -> dict[str, float | None]:
        pk = period if isinstance(period, str) else period.key
        return self.values.get((pk, key)) or _values(_zero_measures())

    def subject_keys(self) -> list[str]:
        return list(self.subjects)


def _zero_measures() -> dict[str, float]:
    return {m: 0.0 for f in FAMILIES for m in MEASURES[f]}


def _values(measures: dict[str, float]) -> dict[str, float | None]:
    return {code: value(ind, measures) for code, ind in INDICATORS.items()}


def compute(session: Session, scope: Scope, periods: Sequence[Period], by: By, *, tz: ZoneInfo,
            as_of: dt.datetime | None = None, within: str | None = None, kind: str | None = None,
            families: Sequence[str] = tuple(FAMILIES)) -> Table:
    """Every indicator for every period and subject (one query per family). The subjects are
    :func:`subjects` (listed with zero counts and no rates when they have no records); records of
    other keys (a community's own activities when grouping blocks, an official not holding the
    role) are left out — except for the ``assignee`` link, which has no role: every assignee."""
    if not periods:
        raise DomainError("invalid_period", "至少需要一个考核周期", "at least one period is needed", field="period")
    if kind is not None:
        check_kind(kind)
    q = Query(tuple(dict.fromkeys(periods)), by, scope, at_or_now(as_of), tz, within, kind)
    raw: dict[tuple[str, str], dict[str, float]] = {}
    for fam in families:
        for cell, ms in _family_measures(session, fam, q).items():
            raw.setdefault(cell, {}).update(ms)
    return _assemble(session, q, raw)


def compute_levels(session: Session, scope: Scope, periods: Sequence[Period], levels: Sequence[int], *,
                   tz: ZoneInfo, as_of: dt.datetime | None = None, within: str | None = None,
                   kind: str | None = None, families: Sequence[str] = tuple(FAMILIES)) -> dict[int, Table]:
    """:func:`compute` for the grids of several levels at once — the same numbers, from one query
    per family: the records are grouped by their own grid code, and every count and sum of a
    grid of a level is the sum over the codes it holds (each record has one grid), as
    :func:`geodata.grids.store.ancestor_key` maps them."""
    if not periods:
        raise DomainError("invalid_period", "至少需要一个考核周期", "at least one period is needed", field="period")
    if kind is not None:
        check_kind(kind)
    for level in levels:
        By.grid(level)   # checked
    now = at_or_now(as_of)
    finest = Query(tuple(dict.fromkeys(periods)), By.grid(3), scope, now, tz, within, kind)
    by_code: dict[tuple[str, str], dict[str, float]] = {}
    for fam in families:
        for cell, ms in _family_measures(session, fam, finest).items():
            by_code.setdefault(cell, {}).update(ms)
    out: dict[int, Table] = {}
    for level in dict.fromkeys(levels):
        raw: dict[tuple[str, str], dict[str, float]] = {}
        for (pk, code), ms in by_code.items():
            acc = raw.setdefault((pk, ancestor_code(code, level)), {})
            for m, v in ms.items():
                acc[m] = acc.get(m, 0.0) + v
        q = Query(finest.periods, By.grid(level), scope, now, tz, within, kind)
        out[level] = _assemble(session, q, raw)
    return out


def ancestor_code(code: str, level: int) -> str:
    """:func:`geodata.grids.store.ancestor_key` in Python (the same text for the same code)."""
    if level == 3:
        return code
    keep = {2: 12, 1: 9}[level]
    return code[:keep] + "0" * (14 - keep)


def _assemble(session: Session, q: Query, raw: dict[tuple[str, str], dict[str, float]]) -> Table:
    """The table from the families' measures per (period, key): subjects listed, other keys
    left out, working days added, indicators evaluated."""
    by = q.by
    subs = subjects(session, q)
    open_subjects = by.link is not None and LINK_ROLES[by.link] is None
    measures: dict[tuple[str, str], dict[str, float]] = {}
    for cell, ms in raw.items():
        if cell[1] in subs or open_subjects:
            measures.setdefault(cell, _zero_measures()).update(ms)
    for (_pk, k) in measures:
        if k not in subs:
            subs[k] = Subject(k, _name_of(session, by, k), by.subject)
    for p in q.periods:
        wd = p.working_days()
        for k, s in subs.items():
            measures.setdefault((p.key, k), _zero_measures())["working_days"] = float(wd * s.blocks)
    vals = {cell: _values(ms) for cell, ms in measures.items()}
    order = (lambda kv: int(kv[0])) if by.link else (lambda kv: kv[0])
    return Table(q, dict(sorted(subs.items(), key=order)), measures, vals)


def _name_of(session: Session, by: By, key: str) -> str:
    from geodata.models import Official

    if by.link:
        return session.get(Official, int(key)).name if key.isdigit() and session.get(Official, int(key)) else key
    return session.execute(select(Grid.name).where(Grid.code == key).order_by(Grid.valid_from.desc())
                           .limit(1)).scalar() or key


@dataclass(frozen=True)
class Trace:
    """The records behind one cell: the numerator's ids and (rates, means) the denominator's."""

    indicator: str
    table: str
    numerator: list[int]
    denominator: list[int] | None


def trace(session: Session, scope: Scope, indicator: str, period: Period, by: By, key: str | Sequence[str], *,
          tz: ZoneInfo, as_of: dt.datetime | None = None, within: str | None = None,
          kind: str | None = None) -> Trace:
    """The ids of the records behind ``indicator`` for subject ``key`` (or the subjects ``key``
    lists, together: a level's total) in ``period`` — by the very conditions that count them
    (cases and steps: issue ids; diary: diary entry ids; activity: activity ids)."""
    ind = INDICATORS.get(indicator)
    if ind is None:
        raise DomainError("unknown_indicator", f"未知指标“{indicator}”", f"unknown indicator '{indicator}'",
                          field="indicator")
    q = Query((period,), by, scope, at_or_now(as_of), tz, within, kind)
    family = FAMILY_SQL[ind.family]

    def ids(measure: str | None) -> list[int] | None:
        if measure is None or measure in CONTEXT_MEASURES:
            return None
        if ind.family == "diary":
            return _diary_ids(session, q, key, measure)
        rows, _ = family.rows(q)
        sub = rows.subquery("r")
        cond, _val = family.measures(sub.c)[measure]
        stmt = select(sub.c.rid).where(_key_in(sub.c.k, key), cond).distinct().order_by(sub.c.rid)
        with _no_jit(session):
            return list(session.execute(stmt).scalars())

    return Trace(indicator, family.table, ids(ind.num), ids(ind.den))


def _key_in(col: ColumnElement, key: str | Sequence[str]) -> ColumnElement[bool]:
    return col == key if isinstance(key, str) else col.in_(list(key))


def _diary_ids(session: Session, q: Query, key: str | Sequence[str], measure: str) -> list[int]:
    d = PatrolDiary
    p = q.period_rows()
    cond = {"patrol_days": and_(d.kind == "patrol", _workday(d.started_at, q.tz)), "visits": d.kind == "visit",
            "households": d.households > 0, "shops": d.shops > 0, "firms": d.firms > 0}[measure]
    stmt = (select(d.id).select_from(d).join(p, true())
            .where(*_diary_entry_conds(q, p), _key_in(q.by.record_key(d.grid_code, d.official_id), key), cond)
            .order_by(d.id))
    return list(session.execute(stmt).scalars())


def with_comparisons(session: Session, scope: Scope, period: Period, by: By, *, tz: ZoneInfo,
                     as_of: dt.datetime | None = None, within: str | None = None,
                     kind: str | None = None) -> tuple[Table, Period, Period]:
    """:func:`compute` for ``period``, the period before (环比) and a year earlier (同比), in one go."""
    prev, ago = period.previous(), period.year_ago()
    table = compute(session, scope, [period, prev, ago], by, tz=tz, as_of=as_of, within=within, kind=kind)
    return table, prev, ago
