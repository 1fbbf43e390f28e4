"""What the /assessment page shows, each as one call (Session in, plain data out): the live ranking
of a level for a period (scores by the current rule version and the 定性 scores entered so far,
with 环比 and 同比), an indicator's monthly trend, the records behind one number, and an
assessor's 定性 score (checked against the assessor's grants here, not in the page).

The ranking is computed, not stored: a stored snapshot is made by a bulletin
(:func:`geodata.assessment.store.run_assessment`), so looking at the page never writes.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.access.capabilities import ASSESS, Grant, allowed
from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.assessment import indicators as ind_sql
from geodata.assessment import store
from geodata.assessment.indicators import By
from geodata.assessment.periods import Period, month_period, parse_period
from geodata.assessment.registry import INDICATORS
from geodata.assessment.scoring import parse_rules, rank, score
from geodata.clock import at_or_now
from geodata.errors import DomainError, ForbiddenError, NotFoundError
from geodata.models import Activity, Issue, PatrolDiary
from geodata.workflow.filters import overdue_condition

#: the page's levels: key → whom the ranking is for
LEVELS: dict[str, By] = {"grid:2": By.grid(2), "grid:3": By.grid(3), "official:grid_leader": By.official("grid_leader")}
#: the most records a trace lists (the count is always the full one)
TRACE_LIMIT = 500


def level_by(level: str) -> By:
    by = LEVELS.get(level)
    if by is None:
        raise DomainError("invalid_level", "考核层级须为社区、楼院网格或网格长",
                          "the level must be communities, block grids or grid leaders", field="level")
    return by


#: the assessment page's view as a URL query — the page reads it, the page and the bulletins write
#: it: ?period=2026-10&level=grid:3[&subject=…][&indicator=…] (subject: its scorecard; indicator: its records)
VIEW_KEYS = ("period", "level", "subject", "indicator")


def view_query(period: str, level: str, subject: str | None = None, indicator: str | None = None) -> str:
    from urllib.parse import urlencode

    q = {"period": period, "level": level, **({"subject": subject} if subject else {}),
         **({"indicator": indicator} if indicator else {})}
    return "?" + urlencode(q)


@dataclass(frozen=True)
class RankRow:
    key: str
    name: str
    rank: int
    final: float
    quantitative: float
    qualitative: float | None
    excellent: bool
    named: bool
    reasons: list[dict[str, str]]
    values: dict[str, float | None]
    mom: dict[str, float | None]       # 环比 change per indicator
    yoy: dict[str, float | None]       # 同比 change per indicator
    grids: tuple[str, ...] = ()        # the grids the subject answers for (a grid: itself)
    items: dict[str, float] = field(default_factory=dict)       # indicator → points earned
    deductions: dict[str, float] = field(default_factory=dict)  # indicator → points taken


@dataclass(frozen=True)
class Ranking:
    period: Period
    previous: Period
    year_ago: Period
    level: str
    rule_id: int
    qualitative_weight: float
    as_of: dt.datetime
    rows: list[RankRow]            # best first
    street: dict[str, float | None]  # every subject together: the KPIs of the level's total
    full_points: dict[str, float] = field(default_factory=dict)  # each scored indicator's full points


def ranking(session: Session, scope: Scope, period: Period, level: str, *, tz: ZoneInfo,
            as_of: dt.datetime | None = None) -> Ranking:
    """The level's subjects for ``period``, scored by the current rules and the 定性 scores entered
    so far, ranked (tie-break of :func:`geodata.assessment.scoring.rank`), with 环比 and 同比."""
    by = level_by(level)
    now = at_or_now(as_of)
    rule = store.current_rule(session)
    rules = parse_rules(rule.config)
    table, prev, ago = ind_sql.with_comparisons(session, scope, period, by, tz=tz, as_of=now)
    qual = store.qualitative_means(session, period, by.subject, as_of=now)
    scored = [(k, score(table.cell(period, k), rules, qual.get(k)), table.cell(period, k))
              for k in table.subject_keys()]
    rows = []
    for r in rank(scored, rules):
        c = store.comparisons(table, period, prev, ago, r.key)
        rows.append(RankRow(r.key, table.subjects[r.key].name, r.rank, r.score.final, r.score.quantitative,
                            r.score.qualitative, r.excellent, r.named, r.reasons, c["current"],
                            c["mom_change"], c["yoy_change"], table.subjects[r.key].grid_codes,
                            dict(r.score.items), dict(r.score.deductions)))
    total: dict[str, float] = {}
    for k in table.subject_keys():
        for m, v in table.measures.get((period.key, k), {}).items():
            total[m] = total.get(m, 0.0) + v
    from geodata.assessment.registry import value

    street = {code: value(i, total) for code, i in INDICATORS.items()} if total else {}
    return Ranking(period, prev, ago, level, rule.id, rules.qualitative_weight, now, rows, street,
                   {i.indicator: i.points for i in rules.items})


@dataclass(frozen=True)
class TrendPoint:
    period: str
    value: float | None
    year_ago: float | None


def trend(session: Session, scope: Scope, period: Period, level: str, indicator: str, key: str | None, *,
          tz: ZoneInfo, as_of: dt.datetime | None = None, months: int = 12) -> list[TrendPoint]:
    """``indicator`` month by month for the ``months`` months up to ``period``'s last month, for
    subject ``key`` of the level (None: the whole scope, as one), with the value a year earlier."""
    if indicator not in INDICATORS:
        raise DomainError("unknown_indicator", f"未知指标“{indicator}”", f"unknown indicator '{indicator}'",
                          field="indicator")
    by = level_by(level) if key is not None else By.grid(1)
    end = period.last
    ms = []
    for i in range(months - 1, -1, -1):
        m = end.year * 12 + end.month - 1 - i
        ms.append(month_period(m // 12, m % 12 + 1))
    all_periods = ms + [p.year_ago() for p in ms]
    ind = INDICATORS[indicator]
    table = ind_sql.compute(session, scope, all_periods, by, tz=tz, as_of=as_of, families=(ind.family,))
    out = []
    for p in ms:
        if key is not None:
            cur, ago = table.cell(p, key).get(indicator), table.cell(p.year_ago(), key).get(indicator)
        else:
            cur, ago = _sum_of(table, p, indicator), _sum_of(table, p.year_ago(), indicator)
        out.append(TrendPoint(p.key, cur, ago))
    return out


def _sum_of(table: ind_sql.Table, p: Period, indicator: str) -> float | None:
    from geodata.assessment.registry import value

    total: dict[str, float] = {}
    for k in table.subject_keys():
        for m, v in table.measures.get((p.key, k), {}).items():
            total[m] = total.get(m, 0.0) + v
    return value(INDICATORS[indicator], total) if total else None


#: handling-time classes of the profile's histogram, in hours ([lo, hi); the last is open)
HOUR_EDGES = (0, 4, 8, 24, 48, 72, 120, 168)


@dataclass(frozen=True)
class DomainCount:
    code: str
    name_zh: str
    name_en: str
    reported: int
    closed: int          # 结案数 (cases due in the period, closed)
    overdue_open: int    # 超期未结 now


@dataclass(frozen=True)
class Profile:
    """What a scorecard shows besides the ranking row: the cases by domain and how long the cases
    closed in the period took (classes of ``HOUR_EDGES``), for one subject or the whole level."""
    key: str | None
    domains: list[DomainCount]
    hour_edges: tuple[int, ...]
    hour_counts: list[int]            # one per class of hour_edges (the last: ≥ its edge)
    median_hours: float | None
    p90_hours: float | None


def profile(session: Session, scope: Scope, period: Period, level: str, key: str | None, *, tz: ZoneInfo,
            as_of: dt.datetime | None = None) -> Profile:
    """The domain breakdown and the handling-time distribution of ``period`` for subject ``key``
    of the level (None: every subject of it), counted by the cases family's own conditions (the
    same rows that give the ranking's 上报数, 结案数, 超期未结 and 平均处置时长)."""
    from sqlalchemy import Float, literal
    from sqlalchemy.dialects.postgresql import ARRAY

    from geodata.models import Domain

    by = level_by(level)
    q = ind_sql.Query((period,), by, scope, at_or_now(as_of), tz)
    rows, _ = ind_sql.FAMILY_SQL["cases"].rows(q)
    r = rows.subquery("r")
    mine = [r.c.k == key] if key is not None else [r.c.k.is_not(None)]
    n = lambda flag: func.count().filter(flag)
    with ind_sql._no_jit(session):
        dom = session.execute(
            select(Domain.code, Domain.name_zh, Domain.name_en, n(r.c.reported), n(r.c.closed), n(r.c.overdue_open))
            .select_from(r).join(Issue, Issue.id == r.c.rid).join(Domain, Domain.code == Issue.domain_code)
            .where(*mine).group_by(Domain.code, Domain.name_zh, Domain.name_en)
            .order_by(n(r.c.reported).desc(), Domain.code)).all()
        # the classes and the percentiles in one pass over the cases (the cases statement is the cost)
        bucket = func.width_bucket(r.c.hours, literal([float(e) for e in HOUR_EDGES], ARRAY(Float)))
        *classes, med, p90 = session.execute(
            select(*(func.count().filter(bucket <= 1 if i == 0 else bucket == i + 1) for i in range(len(HOUR_EDGES))),
                   func.percentile_cont(0.5).within_group(r.c.hours), func.percentile_cont(0.9).within_group(r.c.hours))
            .where(*mine, r.c.closed_in_period, r.c.hours.is_not(None))).one()
    # width_bucket: 0 below the first edge (a case closed before it was filed counts in the first class)
    counts = [int(c) for c in classes]
    return Profile(key, [DomainCount(c, zh, en, int(a), int(b), int(o)) for c, zh, en, a, b, o in dom],
                   HOUR_EDGES, counts, None if med is None else float(med), None if p90 is None else float(p90))


@dataclass(frozen=True)
class TracedRecord:
    id: int
    label: str                   # issue number, or the diary entry's / activity's day and kind
    title: str
    status: str | None           # issues: their status code
    overdue: bool
    when: dt.datetime
    grid_code: str


@dataclass(frozen=True)
class TraceView:
    indicator: str
    table: str                   # 'issue' | 'patrol_diary' | 'activity'
    value: float | None
    numerator: list[TracedRecord]
    numerator_count: int
    denominator: list[TracedRecord] | None
    denominator_count: int | None


def traced(session: Session, scope: Scope, indicator: str, period: Period, level: str, key: str | None, *,
           tz: ZoneInfo, as_of: dt.datetime | None = None) -> TraceView:
    """The records behind one number of the ranking (``indicator`` of subject ``key``; None: the
    level's total, every subject together, as the KPI strip shows it): the numerator's and, for a
    rate or mean, the denominator's, by the conditions that count them."""
    by = level_by(level)
    now = at_or_now(as_of)
    table = ind_sql.compute(session, scope, [period], by, tz=tz, as_of=now, families=(INDICATORS[indicator].family,))
    keys = key if key is not None else tuple(table.subject_keys())
    tr = ind_sql.trace(session, scope, indicator, period, by, keys, tz=tz, as_of=now)
    val = table.cell(period, key).get(indicator) if key is not None else _sum_of(table, period, indicator)
    num = _records(session, scope, tr.table, tr.numerator[:TRACE_LIMIT], now)
    den = None if tr.denominator is None else _records(session, scope, tr.table, tr.denominator[:TRACE_LIMIT], now)
    return TraceView(indicator, tr.table, val, num, len(tr.numerator), den,
                     None if tr.denominator is None else len(tr.denominator))


def _records(session: Session, scope: Scope, table: str, ids: list[int], now: dt.datetime) -> list[TracedRecord]:
    if not ids:
        return []
    if table == "issue":
        rows = session.execute(
            select(Issue.id, Issue.number, Issue.title, Issue.status, overdue_condition(now), Issue.reported_at,
                   Issue.grid_code).where(Issue.id.in_(ids), visible_issues(scope)).order_by(Issue.id)).all()
        return [TracedRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows]
    if table == "patrol_diary":
        d = PatrolDiary
        rows = session.execute(select(d.id, d.kind, d.started_at, d.grid_code).where(
            d.id.in_(ids), scope.filter(d.grid_code)).order_by(d.id)).all()
        return [TracedRecord(r[0], f"#{r[0]}", r[1], None, False, r[2], r[3]) for r in rows]
    a = Activity
    rows = session.execute(select(a.id, a.category, a.held_at, a.grid_code, func.coalesce(a.title, "")).where(
        a.id.in_(ids), scope.filter(a.grid_code)).order_by(a.id)).all()
    return [TracedRecord(r[0], f"#{r[0]}", r[4] or r[1], None, False, r[2], r[3]) for r in rows]


# -- 定性 scores ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QualitativeEntry:
    period: str
    level: str
    key: str
    score: float
    comment: str


def may_assess(grants: tuple[Grant, ...] | list[Grant], subject_grids: tuple[str, ...]) -> bool:
    """THE rule for 定性 scores: the assessor's grants allow ``assess`` on every grid the subject
    answers for (a grid: itself; an official: the grids of their role)."""
    return bool(subject_grids) and all(allowed(grants, ASSESS, g) for g in subject_grids)


def enter_qualitative(session: Session, scope: Scope, grants: tuple[Grant, ...] | list[Grant],
                      official_id: int | None, *, period: str | None, level: str | None, key: str | None,
                      score_value: Any, comment: str | None, tz: ZoneInfo,
                      now: dt.datetime | None = None) -> QualitativeEntry:
    """An assessor's 定性 score (0–100, with a comment) for subject ``key`` of ``level`` in
    ``period``: every input checked (a bilingual DomainError naming the field, nothing written),
    the subject one the assessor sees, the grant ``assess`` on its grids, the account linked to
    an official (the assessor of record)."""
    if not period:
        raise DomainError("required", "请选择考核周期", "choose a period", field="period")
    p = parse_period(period)
    by = level_by(level or "")
    if not key:
        raise DomainError("required", "请选择考核对象", "choose whom to score", field="subject")
    if score_value is None or score_value == "":
        raise DomainError("required", "请填写定性得分（0–100）", "enter a qualitative score (0–100)", field="score")
    try:
        v = float(score_value)
    except (TypeError, ValueError):
        raise DomainError("invalid_score", "定性得分须为 0–100 之间的数字", "the qualitative score must be a number "
                          "from 0 to 100", field="score") from None
    if isinstance(score_value, bool) or not (0 <= v <= 100):
        raise DomainError("invalid_score", "定性得分须为 0–100 之间的数字", "the qualitative score must be a number "
                          "from 0 to 100", field="score")
    text = (comment or "").strip()
    if not text:
        raise DomainError("required", "定性评分须填写评语", "a qualitative score needs a comment", field="comment")
    if len(text) > 500:
        raise DomainError("too_long", "评语最多 500 字", "the comment is at most 500 characters", field="comment")
    q = ind_sql.Query((p,), by, scope, at_or_now(now), tz)
    subs = ind_sql.subjects(session, q)
    sub = subs.get(key)
    if sub is None:
        raise NotFoundError("unknown_subject", "考核对象不存在或无权查看", "no such subject (or not yours to see)",
                            field="subject")
    if not may_assess(grants, sub.grid_codes):
        raise ForbiddenError("forbidden_capability", "该账号无权为此对象评定定性得分",
                             "this account may not enter qualitative scores for this subject", field="subject")
    if official_id is None:
        raise ForbiddenError("no_official", "该账号未关联考核人员，不能评分",
                             "this account is not linked to an official, so it cannot score", field="assessor_id")
    row = store.enter_qualitative(session, period=p, subject_kind=by.subject, subject_key=key,
                                  assessor_id=official_id, score_value=v, comment=text, now=now)
    return QualitativeEntry(p.key, level or "", key, row.score, row.comment)
