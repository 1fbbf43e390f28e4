"""The map's counts at any history size: closed issues from the maintained rollup, open ones from
``issue`` (migration 0017, ``issue_closed_rollup``).

Closed issues are history: their counts never change until an issue is re-opened, evaluated or
deleted, which the triggers apply to the rollup. So a count of the filtered issues per grid is

- closed issues: a sum over ``issue_closed_rollup`` (rows per block × kind × domain × source ×
  status × local day of report: bounded by grids × days, whatever the number of issues);
- open issues: a count over ``issue`` restricted to the open statuses (partial index
  ``issue_open_grid_idx``: bounded by the open work);
- issues a viewer sees only through the responsibility chain (THE visibility rule's second part)
  and that are closed: from ``issue`` too (the chain columns are indexed; bounded by the viewer's
  own work).

:func:`serves` says when a filter can be answered this way (every field the rollup keeps, whole
local days in the rollup's zone); otherwise the callers read ``issue`` as before. Both ways give the
same numbers (tests/integration/geodata/maps/test_rollup.py).
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, literal, or_, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.access.visibility import CHAIN_COLUMNS
from geodata.clock import zone
from geodata.codes import level_of
from geodata.models import Issue, IssueClosedRollup, IssueClosedTotal
from geodata.settings import DEFAULT_TIMEZONE
from geodata.workflow.filters import IssueFilter, is_closed, is_open, open_overdue, overdue_condition
from geodata.workflow.rules import CLOSED_STATUSES

#: the zone of the rollup's days (``gw_rollup_zone()`` in migration 0017: the default business zone)
ROLLUP_ZONE = DEFAULT_TIMEZONE

# counts per group, in this order: total, open, closed, overdue, overdue_open, should_close
COUNTS = 6


def serves(flt: IssueFilter, tz: ZoneInfo) -> bool:
    """Whether the rollup answers ``flt`` exactly: the fields it keeps, local days in its zone."""
    return (getattr(tz, "key", None) == ROLLUP_ZONE and flt.reported_from is None and flt.reported_to is None
            and flt.source is None and flt.bbox is None and flt.assignee_id is None and not flt.numbers and not flt.text)


def _grid_condition(R: type, code: str) -> ColumnElement[bool]:
    column = {1: R.street_code, 2: R.community_code, 3: R.grid_code}[level_of(code)]
    return column == code


def table_for(flt: IssueFilter, now: dt.datetime, tz: ZoneInfo) -> type:
    """The all-time totals when the filter has no date window, else the per-day rollup."""
    start, end = flt.window(now, tz)
    return IssueClosedTotal if start is None and end is None else IssueClosedRollup


def closed_conditions(R: type, scope: Scope, flt: IssueFilter, now: dt.datetime, tz: ZoneInfo,
                      grid: str | None = None) -> list[ColumnElement[bool]] | None:
    """Conditions on the rollup ``R`` for the closed issues ``flt`` selects in ``scope``'s grids;
    None when it selects no closed issue at all."""
    if flt.open is True:
        return None
    statuses = sorted(CLOSED_STATUSES) if not flt.statuses else sorted(set(flt.statuses) & CLOSED_STATUSES)
    if not statuses:
        return None
    conds = [scope.filter_codes(R.street_code, R.community_code, R.grid_code), R.status.in_(statuses)]
    if flt.kind:
        conds.append(R.kind == flt.kind)
    if flt.domains:
        conds.append(R.domain_code.in_(flt.domains))
    start, end = flt.window(now, tz)
    local = zone(ROLLUP_ZONE)
    if start is not None:
        conds.append(R.day >= start.astimezone(local).date())
    if end is not None:
        conds.append(R.day < end.astimezone(local).date())
    if flt.grid:
        conds.append(_grid_condition(R, flt.grid))
    if grid:
        conds.append(_grid_condition(R, grid))
    return conds


def _closed_columns(R: type, flt: IssueFilter) -> tuple[ColumnElement, ColumnElement]:
    """(closed count, closed-late count) of the rollup's rows under the filter's overdue field."""
    n, late = func.coalesce(func.sum(R.n), 0), func.coalesce(func.sum(R.late), 0)
    if flt.overdue is True:
        return late, late
    if flt.overdue is False:
        return n - late, literal(0)
    return n, late


def raw_count_columns(now: dt.datetime) -> list[ColumnElement]:
    """The six counts over ``issue`` rows (the one definition the metrics use on raw rows)."""
    closed = is_closed()
    return [
        func.count(Issue.id),
        func.count(Issue.id).filter(~closed),
        func.count(Issue.id).filter(closed),
        func.count(Issue.id).filter(overdue_condition(now)),
        func.count(Issue.id).filter(open_overdue(now)),
        func.count(Issue.id).filter(or_(closed, and_(Issue.due_at.is_not(None), Issue.due_at <= literal(now)))),
    ]


def grouped_counts(session: Session, scope: Scope, flt: IssueFilter, now: dt.datetime, tz: ZoneInfo,
                   grid: str | None, raw_keys: list[ColumnElement], rollup_keys: list[str],
                   raw_conditions: list[ColumnElement[bool]]) -> dict[tuple, list[int]]:
    """The six counts per group (a tuple of ``raw_keys`` on ``issue``; ``rollup_keys``, the same
    grouping: column names of the rollup) of the issues ``raw_conditions`` select — which must be THE issue conditions of
    (``scope``, ``flt``, ``grid``) — read the rollup's way. Assumes :func:`serves`."""
    out: dict[tuple, list[int]] = {}
    k = len(raw_keys)

    def add(row: tuple, vals: list[int]) -> None:
        acc = out.setdefault(tuple(row[:k]), [0] * COUNTS)
        for i, v in enumerate(vals):
            acc[i] += int(v or 0)

    # closed issues in the scope's grids, from the rollup
    R = table_for(flt, now, tz)
    conds = closed_conditions(R, scope, flt, now, tz, grid)
    if conds is not None:
        n, late = _closed_columns(R, flt)
        keys = [getattr(R, k) for k in rollup_keys]
        for row in session.execute(select(*keys, n, late).where(*conds).group_by(*keys)).all():
            closed, late_n = row[k], row[k + 1]
            add(row, [closed, 0, closed, late_n, 0, closed])
    # the rest, raw: open issues (from the partial index), closed ones seen only through the chain
    for extra in raw_parts(scope, flt):
        for row in session.execute(select(*raw_keys, *raw_count_columns(now))
                                   .where(*raw_conditions, *extra).group_by(*raw_keys)).all():
            add(row, row[k:])
    return out


def raw_parts(scope: Scope, flt: IssueFilter) -> list[list[ColumnElement[bool]]]:
    """What a rollup leaves to ``issue`` rows, as extra conditions on THE issue conditions of
    (``scope``, ``flt``): open issues (bounded by the open work: the partial index
    ``issue_open_grid_idx``), and closed issues a viewer sees only through the responsibility
    chain, outside their scope's grids (bounded by their own work)."""
    parts: list[list[ColumnElement[bool]]] = []
    if flt.open is not False:
        parts.append([is_open()])
    if flt.open is not True and scope.official_id is not None and scope.roots is not None:
        outside = ~scope.filter_codes(Issue.street_code, Issue.community_code, Issue.grid_code)
        chain = or_(*(c == scope.official_id for c in CHAIN_COLUMNS))
        parts.append([is_closed(), chain, outside])
    return parts


def rollup_key(level: int) -> str:
    """The rollups' column holding the code of the level-``level`` grid of their block."""
    return {1: "street_code", 2: "community_code", 3: "grid_code"}[level]
