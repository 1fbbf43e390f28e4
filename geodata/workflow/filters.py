"""THE issue filter and THE overdue rule in SQL: one :class:`IssueFilter` drives the API's lists and
pages, Open311, and the map's markers, heat, choropleth, counts and lists, so they always agree.

Overdue (超期) is :func:`overdue_condition`, the SQL twin of :func:`geodata.workflow.rules.is_overdue`:
open past the deadline, or closed after it; no deadline is never overdue. It is derived, never stored.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, false, func, literal

from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.clock import day_start
from geodata.codes import CodeError, level_of
from geodata.errors import DomainError
from geodata.geometry import cells_of_bbox, check_lon_lat
from geodata.grids.store import issue_in_grid
from geodata.models import ISSUE_SOURCES, Issue
from geodata.workflow.rules import CLOSED_STATUSES, OPEN_STATUSES, STATUSES, check_kind
from geodata.workflow.text_search import text_match

DATE_PRESETS = ("week", "month", "quarter", "year")
Bbox = tuple[float, float, float, float]   # west, south, east, north = min lon, min lat, max lon, max lat (WGS84)


# -- the overdue rule and the open/closed split ---------------------------------------------------
def is_closed() -> ColumnElement[bool]:
    return Issue.status.in_(sorted(CLOSED_STATUSES))


def is_open() -> ColumnElement[bool]:
    return Issue.status.in_(sorted(OPEN_STATUSES))


def overdue_condition(now: dt.datetime) -> ColumnElement[bool]:
    """超期 in SQL: open past ``due_at`` at ``now``, or closed after it; never NULL (so ``~`` is exact)."""
    return case(
        (Issue.due_at.is_(None), false()),
        (is_closed(), and_(Issue.closed_at.is_not(None), Issue.closed_at > Issue.due_at)),
        else_=Issue.due_at < literal(now),
    )


def open_overdue(now: dt.datetime) -> ColumnElement[bool]:
    """Open and past its deadline at ``now`` (the map's red markers)."""
    return and_(is_open(), overdue_condition(now))


def preset_start(preset: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Start of this week (Monday) / month / quarter / year in the business time zone ``tz``."""
    d = now.astimezone(tz).date()
    if preset == "week":
        d = d - dt.timedelta(days=d.weekday())
    elif preset == "month":
        d = d.replace(day=1)
    elif preset == "quarter":
        d = d.replace(month=(d.month - 1) // 3 * 3 + 1, day=1)
    elif preset == "year":
        d = d.replace(month=1, day=1)
    else:
        raise ValueError(f"unknown date preset {preset!r}")
    return day_start(d, tz)


# -- the filter -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssueFilter:
    """Which issues: every field narrows (empty / None: no restriction). Checked when built: a bad
    value raises :class:`~geodata.errors.DomainError` naming the API's query field.

    Dates come two ways: local days (``date_from``..``date_to`` inclusive, or a ``preset`` that
    wins over them; the map's controls) and instants (``reported_from`` ≤ reported_at <
    ``reported_to``, aware; the API's ``from``/``to``)."""

    kind: str | None = None                 # 'problem' | 'sentiment'
    domains: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    source: str | None = None
    preset: str | None = None               # 'week' | 'month' | 'quarter' | 'year'
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    reported_from: dt.datetime | None = None
    reported_to: dt.datetime | None = None
    overdue: bool | None = None             # True: only overdue; False: only not overdue
    open: bool | None = None                # True: open statuses; False: closed ones
    grid: str | None = None                 # a grid code of any level, with everything below it
    bbox: Bbox | None = None
    assignee_id: int | None = None
    numbers: tuple[str, ...] = ()
    text: str | None = None                 # in the number or title, literal; bounded: geodata.workflow.text_search

    def __post_init__(self) -> None:
        if self.bbox is not None:
            x0, y0, x1, y1 = self.bbox
            check_lon_lat(x0, y0, "bbox.min_lon", "bbox.min_lat")
            check_lon_lat(x1, y1, "bbox.max_lon", "bbox.max_lat")
            if x0 > x1 or y0 > y1:
                raise DomainError("invalid_bbox", "bbox 须为 最小经度,最小纬度,最大经度,最大纬度",
                                  "bbox must be min_lon,min_lat,max_lon,max_lat", field="bbox")
        if self.grid:
            try:
                level_of(self.grid)
            except CodeError:
                raise DomainError("invalid_grid_code", f"网格编码“{self.grid}”须为14位数字",
                                  f"grid code '{self.grid}' must be 14 digits", field="grid") from None
        bad = [s for s in self.statuses if s not in STATUSES]
        if bad:
            raise DomainError("unknown_status", f"未知状态“{bad[0]}”", f"unknown status '{bad[0]}' (one of: "
                              f"{', '.join(STATUSES)})", field="status")
        if any("\x00" in d for d in self.domains):
            raise DomainError("unknown_domain", "领域编码含有非法字符", "domain codes must not contain NUL characters",
                              field="domain")
        if self.kind:
            check_kind(self.kind)
        if self.source and self.source not in ISSUE_SOURCES:
            raise DomainError("unknown_source", f"未知来源“{self.source}”", f"unknown source '{self.source}'",
                              field="source")
        for value, name in ((self.reported_from, "from"), (self.reported_to, "to")):
            if value is not None and value.tzinfo is None:
                raise DomainError("naive_datetime", f"{name} 须带时区", f"{name} must include a time zone", field=name)
        if self.preset not in (None, *DATE_PRESETS):
            raise DomainError("unknown_preset", f"未知时间范围“{self.preset}”", f"unknown date preset '{self.preset}'",
                              field="preset")
        if self.date_to is not None and self.date_to >= dt.date.max:  # the window ends the day after
            raise DomainError("out_of_range", "date_to 超出范围", "date_to out of range", field="date_to")

    def window(self, now: dt.datetime, tz: ZoneInfo) -> tuple[dt.datetime | None, dt.datetime | None]:
        """[start, end) of reported_at from the local days (``tz``); a preset wins over explicit dates."""
        if self.preset:
            return preset_start(self.preset, now, tz), None
        start = day_start(self.date_from, tz) if self.date_from else None
        end = day_start(self.date_to + dt.timedelta(days=1), tz) if self.date_to else None
        return start, end

    def conditions(self, now: dt.datetime, tz: ZoneInfo) -> list[ColumnElement[bool]]:
        """SQL conditions on ``issue`` (overdue as of ``now``, local days in ``tz``)."""
        conds: list[ColumnElement[bool]] = []
        if self.kind:
            conds.append(Issue.kind == self.kind)
        if self.domains:
            conds.append(Issue.domain_code.in_(self.domains))
        if self.statuses:
            conds.append(Issue.status.in_(self.statuses))
        if self.source:
            conds.append(Issue.source == self.source)
        start, end = self.window(now, tz)
        if start is not None:
            conds.append(Issue.reported_at >= start)
        if end is not None:
            conds.append(Issue.reported_at < end)
        if self.reported_from is not None:
            conds.append(Issue.reported_at >= self.reported_from)
        if self.reported_to is not None:
            conds.append(Issue.reported_at < self.reported_to)
        if self.overdue is not None:
            od = overdue_condition(now)
            conds.append(od if self.overdue else ~od)
        if self.open is not None:
            conds.append(is_open() if self.open else is_closed())
        if self.grid:
            conds.append(issue_in_grid(self.grid))
        if self.bbox is not None:
            conds.append(bbox_condition(self.bbox))
        if self.assignee_id is not None:
            conds.append(Issue.assignee_id == self.assignee_id)
        if self.numbers:
            conds.append(Issue.number.in_(self.numbers))
        if (match := text_match(self.text, now)) is not None:
            conds.append(match.condition())
        return conds

    # the map's forms: dcc.Store (to_dict) and heat-tile URLs (to_query); the map's fields only ------
    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "domains": list(self.domains), "statuses": list(self.statuses),
                "preset": self.preset, "date_from": self.date_from.isoformat() if self.date_from else None,
                "date_to": self.date_to.isoformat() if self.date_to else None, "overdue_only": self.overdue is True}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> IssueFilter:
        if not d:
            return cls()
        return cls(kind=d.get("kind") or None, domains=tuple(d.get("domains") or ()),
                   statuses=tuple(d.get("statuses") or ()), preset=d.get("preset") or None,
                   date_from=_date(d.get("date_from")), date_to=_date(d.get("date_to")),
                   overdue=True if d.get("overdue_only") else None)

    def to_query(self) -> dict[str, str]:
        """Short query-string form (heat tile URLs)."""
        q: dict[str, str] = {}
        if self.kind:
            q["k"] = self.kind
        if self.domains:
            q["d"] = ",".join(self.domains)
        if self.statuses:
            q["s"] = ",".join(self.statuses)
        if self.preset:
            q["p"] = self.preset
        if self.date_from:
            q["f"] = self.date_from.isoformat()
        if self.date_to:
            q["t"] = self.date_to.isoformat()
        if self.overdue:
            q["o"] = "1"
        return q

    @classmethod
    def from_query(cls, q: dict[str, str]) -> IssueFilter:
        def _split(v: str | None) -> tuple[str, ...]:
            return tuple(x for x in (v or "").split(",") if x)

        return cls(kind=q.get("k") or None, domains=_split(q.get("d")), statuses=_split(q.get("s")),
                   preset=q.get("p") or None, date_from=_date(q.get("f")), date_to=_date(q.get("t")),
                   overdue=True if q.get("o") == "1" else None)


def _date(v: Any) -> dt.date | None:
    return dt.date.fromisoformat(v) if v else None


def bbox_condition(bbox: Sequence[float]) -> ColumnElement[bool]:
    """The issue's point inside ``bbox`` (west, south, east, north). Its stored map cell in the
    box's cells (a cell of slack each side) first: integer comparisons, which row-level security
    lets be index conditions (``issue_cell_idx``), where PostGIS's ``&&`` is not (not LEAKPROOF)."""
    x0, y0, x1, y1 = cells_of_bbox(bbox)
    return and_(Issue.cell_x.between(x0, x1), Issue.cell_y.between(y0, y1),
                Issue.location.op("&&")(func.ST_MakeEnvelope(*bbox, 4326)))


def issue_conditions(scope: Scope, flt: IssueFilter, now: dt.datetime, tz: ZoneInfo,
                     grid: str | None = None) -> list[ColumnElement[bool]]:
    """Every condition of one issue read: the visibility rule for ``scope``, the filter, and
    optionally a grid (any level, with everything below it)."""
    conds = [visible_issues(scope), *flt.conditions(now, tz)]
    if grid:
        conds.append(issue_in_grid(grid))
    return conds
