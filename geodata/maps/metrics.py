"""The choropleth and the panel's counts: per-grid numbers of the filtered issues (open, overdue,
closure rate, per km²), totals by status and domain. Overdue is the one SQL rule
(:func:`geodata.workflow.filters.overdue_condition`); the closure rate is the indicator registry's
结案率 (:data:`geodata.assessment.registry.INDICATORS`), applied to the issues the map's filter
selects as they stand now; payload: a ``{code: number}`` dict per level.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.assessment.registry import INDICATORS, value
from geodata.clock import at_or_now
from geodata.grids.store import ancestor_key, valid_at
from geodata.maps import rollup
from geodata.models import Grid, Issue
from geodata.workflow.filters import IssueFilter, issue_conditions
from geodata.workflow.rules import STATUSES

#: The choropleth's measures, the default first. Overdue is two measures, never one number: open past
#: the deadline now (超期未办结), and closed after it (超期办结).
METRICS = ("overdue_open", "closed_late", "open", "closure_rate", "per_km2")
#: those that count issues (whole numbers)
COUNT_METRICS = frozenset({"overdue_open", "closed_late", "open"})


@dataclass(frozen=True)
class Counts:
    total: int = 0
    open: int = 0
    closed: int = 0
    overdue: int = 0          # workflow.is_overdue: open past due, or closed late
    overdue_open: int = 0     # open and past due now
    should_close: int = 0     # closed, or open with the deadline passed (应结案)
    area_km2: float = 0.0

    @property
    def closed_late(self) -> int:
        """超期办结: closed after the deadline (overdue, but not open now)."""
        return self.overdue - self.overdue_open

    @property
    def closure_rate(self) -> float | None:
        """结案率, the registry's formula 结案数 ÷ (应结案数 − 缓办数), as a fraction: of the selected
        issues, those to be closed by now are the closed ones and the open ones past their deadline
        (an open issue not yet due — its deadline extended, or still running — is not yet to be
        closed); None when nothing was due."""
        rate = value(INDICATORS["closure_rate"], {"closed": self.closed, "assessed": self.should_close})
        return None if rate is None else rate / 100.0

    @property
    def per_km2(self) -> float | None:
        return self.total / self.area_km2 if self.area_km2 else None

    def metric(self, name: str) -> float | None:
        if name == "open":
            return float(self.open)
        if name == "overdue_open":
            return float(self.overdue_open)
        if name == "closed_late":
            return float(self.closed_late)
        if name == "closure_rate":
            return self.closure_rate
        if name == "per_km2":
            return self.per_km2
        raise ValueError(f"unknown metric {name!r}")


def _count_columns(now: dt.datetime) -> list[ColumnElement]:
    return rollup.raw_count_columns(now)


def grid_metrics(session: Session, scope: Scope, flt: IssueFilter, level: int,
                 parent_code: str | None = None, as_of: dt.datetime | None = None, *, tz: ZoneInfo,
                 use_rollup: bool = True) -> dict[str, Counts]:
    """Counts per grid of ``level`` (optionally only children of ``parent_code``), for the
    choropleth. Grids with no matching issue get zero counts. Closed issues are summed from the
    rollup when it serves the filter (``use_rollup=False``: every issue row read, the reference)."""
    now = at_or_now(as_of)
    key = ancestor_key(Issue.grid_code, level)
    grid_q = (select(Grid.code, Grid.area_m2).where(Grid.level == level, valid_at(now),
                                                    scope.filter(Grid.code)))
    if parent_code:
        grid_q = grid_q.where(Grid.parent_code == parent_code)
    grids = dict(session.execute(grid_q).all())
    if not grids:
        return {}
    out = {c: Counts(area_km2=(a or 0) / 1e6) for c, a in grids.items()}
    conds = [*issue_conditions(scope, flt, now, tz, parent_code), key.in_(list(grids))]
    if use_rollup and rollup.serves(flt, tz):   # history from the rollup, open work from issue
        rows = [(k, *v) for (k,), v in rollup.grouped_counts(
            session, scope, flt, now, tz, parent_code, [key], [rollup.rollup_key(level)], conds).items()]
    else:
        rows = session.execute(select(key.label("k"), *_count_columns(now)).where(*conds).group_by(key)).all()
    for k, total, open_, closed, overdue, overdue_open, should in rows:
        if k in grids:
            out[k] = Counts(total, open_, closed, overdue, overdue_open, should, (grids[k] or 0) / 1e6)
    return out


def metric_values(metrics: dict[str, Counts], metric: str) -> dict[str, float | None]:
    """{code: value} for the choropleth hideout; rounded to keep the payload small."""
    out: dict[str, float | None] = {}
    for code, c in metrics.items():
        v = c.metric(metric)
        out[code] = None if v is None else round(v, 4 if metric == "closure_rate" else 1)
    return out


@dataclass(frozen=True)
class GridCounts:
    counts: Counts
    by_status: dict[str, int]
    by_domain: dict[str, int]


def grid_counts(session: Session, scope: Scope, flt: IssueFilter, code: str | None,
                as_of: dt.datetime | None = None, *, tz: ZoneInfo, use_rollup: bool = True) -> GridCounts:
    """Totals, counts by status and by domain of the issues in grid ``code`` (None: whole scope),
    in one pass (GROUPING SETS); closed issues from the rollup when it serves the filter."""
    now = at_or_now(as_of)
    conds = issue_conditions(scope, flt, now, tz, code)
    area = 0.0
    if code:
        area = (session.execute(select(Grid.area_m2).where(Grid.code == code, valid_at(now)))
                .scalar_one_or_none() or 0) / 1e6
    if use_rollup and rollup.serves(flt, tz):
        groups = rollup.grouped_counts(session, scope, flt, now, tz, code, [Issue.status, Issue.domain_code],
                                       ["status", "domain_code"], conds)
        total = [0] * rollup.COUNTS
        st: dict[str, int] = {}
        dom: dict[str, int] = {}
        for (status, domain), vals in groups.items():
            total = [a + b for a, b in zip(total, vals)]
            st[status] = st.get(status, 0) + vals[0]
            dom[domain] = dom.get(domain, 0) + vals[0]
        return GridCounts(Counts(*total, area), {s: st[s] for s in STATUSES if st.get(s)},
                          {d: v for d, v in dom.items() if v})
    rows = session.execute(
        select(Issue.status, Issue.domain_code, func.grouping(Issue.status, Issue.domain_code),
               *_count_columns(now))
        .where(*conds)
        .group_by(func.grouping_sets(tuple_(), tuple_(Issue.status), tuple_(Issue.domain_code)))
    ).all()
    totals = (0, 0, 0, 0, 0, 0)
    by_status: dict[str, int] = {}
    by_domain: dict[str, int] = {}
    for status, domain, g, *cols in rows:
        if g == 3:
            totals = tuple(cols)
        elif g == 1:      # grouped by status (domain rolled up)
            by_status[status] = cols[0]
        elif g == 2:      # grouped by domain
            by_domain[domain] = cols[0]
    return GridCounts(Counts(*totals, area),
                      {s: by_status[s] for s in STATUSES if by_status.get(s)}, by_domain)
