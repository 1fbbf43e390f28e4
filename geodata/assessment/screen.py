"""The wall's numbers (大屏): KPI tiles, the month's ranking and the 30-day trend — every one an
indicator of :mod:`geodata.assessment.registry`, computed by :func:`geodata.assessment.indicators.compute`
(one definition per concept: 办结率 is ``resolution_rate``, 按期结案率 ``on_time_rate``, average
handling time ``handling_hours``), plus the open/overdue counts of :mod:`geodata.maps.metrics`.
Plain data out; no personal data (counts and grid names only)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.assessment.indicators import By, compute
from geodata.assessment.periods import Period, month_period
from geodata.clock import at_or_now
from geodata.maps.metrics import grid_metrics
from geodata.models import Issue
from geodata.workflow.filters import IssueFilter

#: the first day 累计 (all records) counts from
EPOCH = dt.date(2000, 1, 1)
PERIODS = ("today", "month", "total")
#: per kind: found (上报数), closed (已办结数), 办结率 — the article's 总办结率
KIND_CODES = ("reported", "resolved", "resolution_rate")
TREND_DAYS = 30
RANK_N = 5


def periods_of(now: dt.datetime, tz: ZoneInfo) -> dict[str, Period]:
    today = now.astimezone(tz).date()
    return {"today": Period(today, today, "custom"), "month": month_period(today.year, today.month),
            "total": Period(EPOCH, today, "custom")}


def _r(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)


def wall_kpis(session: Session, scope: Scope, *, tz: ZoneInfo, as_of: dt.datetime | None = None) -> dict:
    """{"kinds": {kind: {period: {reported, resolved, resolution_rate}}}, "on_time_rate": {period: …},
    "overdue_now", "new_today", "handling_hours" (this month), "mom": {indicator: change vs last
    month}} for everything ``scope`` sees."""
    now = at_or_now(as_of)
    ps = periods_of(now, tz)
    month = ps["month"]
    prev = month.previous()
    allp = [*ps.values(), prev]
    street = By.grid(1)
    out: dict = {"kinds": {}, "mom": {}}
    for kind in ("problem", "sentiment"):
        t = compute(session, scope, allp, street, tz=tz, as_of=now, kind=kind, families=("cases",))
        cells = {name: _sum_cells(t, p) for name, p in ps.items()}
        out["kinds"][kind] = {name: {c: _r(cells[name][c]) for c in KIND_CODES} for name in PERIODS}
        cur, before = cells["month"], _sum_cells(t, prev)
        out["mom"][kind] = {c: _change(c, cur[c], before[c]) for c in KIND_CODES}
    both = compute(session, scope, allp, street, tz=tz, as_of=now, families=("cases",))
    bc = {name: _sum_cells(both, p) for name, p in ps.items()}
    bprev = _sum_cells(both, prev)
    out["on_time_rate"] = {name: _r(bc[name]["on_time_rate"]) for name in PERIODS}
    out["new_today"] = int(bc["today"]["reported"] or 0)
    out["handling_hours"] = _r(bc["month"]["handling_hours"])
    out["mom"]["on_time_rate"] = _change("on_time_rate", bc["month"]["on_time_rate"], bprev["on_time_rate"])
    out["mom"]["handling_hours"] = _change("handling_hours", bc["month"]["handling_hours"], bprev["handling_hours"])
    counts = grid_metrics(session, scope, IssueFilter(), 1, as_of=now, tz=tz)
    out["overdue_now"] = sum(c.overdue_open for c in counts.values())
    out["open_now"] = sum(c.open for c in counts.values())
    return out


def _sum_cells(table, period: Period) -> dict[str, float | None]:
    """The street-level cell of ``period`` (one level-1 grid in scope; several: the first)."""
    keys = table.subject_keys()
    return table.cell(period, keys[0]) if keys else table.cell(period, "")


def _change(code: str, cur: float | None, before: float | None) -> float | None:
    from geodata.assessment.registry import INDICATORS, change

    return _r(change(INDICATORS[code], cur, before))


@dataclass(frozen=True)
class Ranked:
    code: str
    name: str
    value: float | None
    reported: int


def wall_ranking(session: Session, scope: Scope, *, tz: ZoneInfo, as_of: dt.datetime | None = None,
                 n: int = RANK_N) -> dict[str, dict[str, list[Ranked]]]:
    """This month's top and bottom ``n`` communities (level 2) and blocks (level 3) by 按期结案率
    (``on_time_rate``; ties: more cases first); grids with nothing due this month are not ranked."""
    now = at_or_now(as_of)
    month = periods_of(now, tz)["month"]
    out: dict[str, dict[str, list[Ranked]]] = {}
    for level, name in ((2, "communities"), (3, "blocks")):
        t = compute(session, scope, [month], By.grid(level), tz=tz, as_of=now, families=("cases",))
        rows = []
        for key, sub in t.subjects.items():
            cell = t.cell(month, key)
            if cell.get("on_time_rate") is None:
                continue
            rows.append(Ranked(key, sub.name, _r(cell["on_time_rate"]), int(cell.get("reported") or 0)))
        rows.sort(key=lambda r: (-(r.value or 0), -r.reported, r.code))
        out[name] = {"top": rows[:n], "bottom": list(reversed(rows[-n:])) if len(rows) > n else list(reversed(rows))}
    return out


def wall_trend(session: Session, scope: Scope, *, tz: ZoneInfo, as_of: dt.datetime | None = None,
               days: int = TREND_DAYS) -> dict:
    """Cases reported per local day over the last ``days`` days, by kind: {"days": [iso…],
    "problem": [n…], "sentiment": [n…]} (the ``reported`` indicator, one query per kind)."""
    now = at_or_now(as_of)
    today = now.astimezone(tz).date()
    ds = [today - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    periods = [Period(d, d, "custom") for d in ds]
    out: dict = {"days": [d.isoformat() for d in ds]}
    for kind in ("problem", "sentiment"):
        t = compute(session, scope, periods, By.grid(1), tz=tz, as_of=now, kind=kind, families=("cases",))
        out[kind] = [int(_sum_cells(t, p)["reported"] or 0) for p in periods]
    return out


def today_points(session: Session, scope: Scope, *, tz: ZoneInfo, as_of: dt.datetime | None = None,
                 limit: int = 500) -> list[dict]:
    """Today's new issues (local day in ``tz``) as points for the pulsing layer: id, kind, lon, lat."""
    now = at_or_now(as_of)
    start = periods_of(now, tz)["today"].bounds(tz)[0]
    rows = session.execute(select(Issue.id, Issue.kind, func.ST_X(Issue.location), func.ST_Y(Issue.location))
                           .where(visible_issues(scope), Issue.reported_at >= start, Issue.reported_at <= now)
                           .order_by(Issue.id.desc()).limit(limit)).all()
    return [{"id": int(i), "kind": k, "lon": round(float(x), 6), "lat": round(float(y), 6)} for i, k, x, y in rows]


def open_points(session: Session, scope: Scope, *, limit: int = 3000) -> list[list[float]]:
    """Open issues' points [lon, lat] for the heat layer (at most ``limit``, newest first)."""
    from geodata.workflow.filters import is_open

    rows = session.execute(select(func.ST_X(Issue.location), func.ST_Y(Issue.location))
                           .where(visible_issues(scope), is_open()).order_by(Issue.id.desc()).limit(limit)).all()
    return [[round(float(x), 5), round(float(y), 5)] for x, y in rows]


def grid_work(session: Session, scope: Scope, level: int, *, tz: ZoneInfo,
              as_of: dt.datetime | None = None) -> dict[str, dict[str, int]]:
    """{grid code: {"open", "overdue"}} for the current grids of ``level`` (the map's colours)."""
    counts = grid_metrics(session, scope, IssueFilter(), level, as_of=at_or_now(as_of), tz=tz)
    return {c: {"open": m.open, "overdue": m.overdue_open} for c, m in counts.items()}


def band(work: dict[str, int], overdue_red: int, open_amber: int) -> str:
    """The colour band of one grid's work (红 / 黄 / 绿): red with ``overdue_red`` or more overdue
    open cases, amber with ``open_amber`` or more open ones, else green."""
    if work.get("overdue", 0) >= overdue_red:
        return "red"
    if work.get("open", 0) >= open_amber:
        return "amber"
    return "green"


def hotspots(work: dict[str, dict[str, int]], names: dict[str, str], n: int = 6) -> list[dict]:
    """The tour's stops: the grids with the most overdue, then open, work (nothing open: none)."""
    ranked = sorted((c for c, w in work.items() if w["open"] or w["overdue"]),
                    key=lambda c: (-work[c]["overdue"], -work[c]["open"], c))
    return [{"code": c, "name": names.get(c, c), **work[c]} for c in ranked[:n]]


def wall_state(session: Session, scope: Scope, *, tz: ZoneInfo, as_of: dt.datetime | None = None,
               overdue_red: int = 1, open_amber: int = 10) -> dict:
    """Everything the wall shows apart from the polygons, as plain data (refreshed after events):
    KPIs, ranking, trend, per-grid work and bands (communities and blocks), hotspots, today's
    points, the heat points, and the data's time."""
    from geodata.maps.layers import grid_names

    now = at_or_now(as_of)
    names = {c: n for c, (n, _e) in grid_names(session, scope, as_of=now).items()}
    communities = grid_work(session, scope, 2, tz=tz, as_of=now)
    blocks = grid_work(session, scope, 3, tz=tz, as_of=now)
    rank = wall_ranking(session, scope, tz=tz, as_of=now)
    return {
        "as_of": now.isoformat(),
        "kpis": wall_kpis(session, scope, tz=tz, as_of=now),
        "ranking": {k: {side: [r.__dict__ for r in rows] for side, rows in v.items()} for k, v in rank.items()},
        "trend": wall_trend(session, scope, tz=tz, as_of=now),
        "communities": {c: {**w, "band": band(w, overdue_red, open_amber)} for c, w in communities.items()},
        "blocks": {c: {**w, "band": band(w, overdue_red, open_amber)} for c, w in blocks.items()},
        "hotspots": hotspots({**communities, **blocks}, names),
        "today": today_points(session, scope, tz=tz, as_of=now),
        "heat": open_points(session, scope),
    }
