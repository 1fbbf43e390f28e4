"""Map queries for the dashboard: Session in, plain data out. Never imports dash.

Every function takes the viewer's :class:`~geodata.scope.Scope` and an ``as_of`` time (default now).
One :class:`IssueFilter` drives markers, heat, choropleth, counts and tables, so they always agree.
Overdue (超期) is derived in SQL with the same rule as :func:`geodata.workflow.is_overdue`.

Payload bounds (per call, whatever the database size):
- grid layers: one FeatureCollection per level, sent once and cached by the browser;
- choropleth: a ``{code: number}`` dict for the grids of one level (≤ 59 entries for the demo);
- markers: at most ``limit`` (settings.max_markers, default 2000) points of ≈ 105 B each (id and
  state only; popup text is fetched on demand) → ≤ ~210 KB; beyond that, the viewport is cut into at
  most :data:`BIN_CELLS` × :data:`BIN_CELLS` cells and one aggregate feature per non-empty cell is
  sent (≈ 135 B each → ≤ ~35 KB);
- heat: 256 px PNG tiles rendered from per-cell counts (size independent of the number of issues).
"""
from __future__ import annotations

import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.clock import at_or_now
from geodata.codes import CodeError, descendant_prefix, level_of, parent_of
from geodata.grids.store import valid_at
from geodata.models import SEARCH_MAX_CHARS, Domain, Grid, GridAssignment, Issue, IssueEvent, Official
from geodata.workflow.rules import CLOSED_STATUSES, OPEN_STATUSES, STATUSES

TZ = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
#: Aggregation grid across the viewport when there are more than ``limit`` markers.
BIN_CELLS = 16
DATE_PRESETS = ("week", "month", "quarter", "year")
METRICS = ("open", "overdue", "closure_rate", "per_km2")
ROLE_ORDER = ("first_responsible", "direct_responsible", "platform_maintainer", "sunk_member",
              "grid_leader", "operator")


def _now(as_of: dt.datetime | None) -> dt.datetime:
    return at_or_now(as_of, "as_of")


# -- the filter ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssueFilter:
    """The one filter state of the map. Dates are local (Asia/Shanghai) days, inclusive."""

    kind: str | None = None                 # 'problem' | 'sentiment' | None (both)
    domains: tuple[str, ...] = ()           # empty: all domains
    statuses: tuple[str, ...] = ()          # empty: all statuses
    preset: str | None = None               # 'week' | 'month' | 'quarter' | 'year' | None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    overdue_only: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (None, "problem", "sentiment"):
            raise ValueError(f"unknown kind {self.kind!r}")
        if self.preset not in (None, *DATE_PRESETS):
            raise ValueError(f"unknown date preset {self.preset!r}")
        bad = set(self.statuses) - set(STATUSES)
        if bad:
            raise ValueError(f"unknown statuses {sorted(bad)}")
        if self.date_to is not None and self.date_to >= dt.date.max:  # the window ends the day after
            raise ValueError("date_to out of range")
        if any("\x00" in d for d in self.domains):
            raise ValueError("domain codes must not contain NUL characters")

    # window -------------------------------------------------------------------------------------
    def window(self, as_of: dt.datetime | None = None, tz: ZoneInfo = TZ
               ) -> tuple[dt.datetime | None, dt.datetime | None]:
        """[start, end) of reported_at, as aware datetimes; a preset wins over explicit dates."""
        now = _now(as_of)
        if self.preset:
            return preset_start(self.preset, now, tz), None
        start = (dt.datetime.combine(self.date_from, dt.time(), tzinfo=tz)
                 if self.date_from else None)
        end = (dt.datetime.combine(self.date_to + dt.timedelta(days=1), dt.time(), tzinfo=tz)
               if self.date_to else None)
        return start, end

    def conditions(self, as_of: dt.datetime | None = None, tz: ZoneInfo = TZ) -> list[ColumnElement]:
        now = _now(as_of)
        conds: list[ColumnElement] = []
        if self.kind:
            conds.append(Issue.kind == self.kind)
        if self.domains:
            conds.append(Issue.domain_code.in_(self.domains))
        if self.statuses:
            conds.append(Issue.status.in_(self.statuses))
        start, end = self.window(now, tz)
        if start is not None:
            conds.append(Issue.reported_at >= start)
        if end is not None:
            conds.append(Issue.reported_at < end)
        if self.overdue_only:
            conds.append(overdue_expr(now))
        return conds

    # (de)serialisation for dcc.Store and tile URLs ---------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["domains"], d["statuses"] = list(self.domains), list(self.statuses)
        d["date_from"] = self.date_from.isoformat() if self.date_from else None
        d["date_to"] = self.date_to.isoformat() if self.date_to else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> IssueFilter:
        if not d:
            return cls()

        def _date(v: Any) -> dt.date | None:
            return dt.date.fromisoformat(v) if v else None

        return cls(kind=d.get("kind") or None, domains=tuple(d.get("domains") or ()),
                   statuses=tuple(d.get("statuses") or ()), preset=d.get("preset") or None,
                   date_from=_date(d.get("date_from")), date_to=_date(d.get("date_to")),
                   overdue_only=bool(d.get("overdue_only")))

    def to_query(self) -> dict[str, str]:
        """Short query-string form (used in heat tile URLs)."""
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
        if self.overdue_only:
            q["o"] = "1"
        return q

    @classmethod
    def from_query(cls, q: dict[str, str]) -> IssueFilter:
        def _split(v: str | None) -> tuple[str, ...]:
            return tuple(x for x in (v or "").split(",") if x)

        def _date(v: str | None) -> dt.date | None:
            return dt.date.fromisoformat(v) if v else None

        return cls(kind=q.get("k") or None, domains=_split(q.get("d")), statuses=_split(q.get("s")),
                   preset=q.get("p") or None, date_from=_date(q.get("f")), date_to=_date(q.get("t")),
                   overdue_only=q.get("o") == "1")


def preset_start(preset: str, now: dt.datetime, tz: ZoneInfo = TZ) -> dt.datetime:
    """Start of this week (Monday) / month / quarter / year in local time."""
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
    return dt.datetime.combine(d, dt.time(), tzinfo=tz)


def overdue_expr(now: dt.datetime) -> ColumnElement[bool]:
    """超期 in SQL, the same rule as workflow.is_overdue: open past the deadline, or closed after it."""
    return case(
        (Issue.due_at.is_(None), false()),
        (Issue.status.in_(sorted(CLOSED_STATUSES)),
         and_(Issue.closed_at.is_not(None), Issue.closed_at > Issue.due_at)),
        else_=Issue.due_at < literal(now),
    )


def _is_closed() -> ColumnElement[bool]:
    return Issue.status.in_(sorted(CLOSED_STATUSES))


def _open_overdue(now: dt.datetime) -> ColumnElement[bool]:
    return and_(Issue.status.in_(sorted(OPEN_STATUSES)), Issue.due_at.is_not(None),
                Issue.due_at < literal(now))


def _in_grid(code: str | None) -> ColumnElement[bool]:
    """Issues inside grid ``code`` (any level), by code prefix."""
    if not code:
        return true()
    lvl = level_of(code)
    if lvl == 3:
        return Issue.grid_code == code
    if lvl == 2:
        return Issue.community_code == code
    return Issue.grid_code.like(descendant_prefix(code) + "%")


def issue_conditions(scope: Scope, flt: IssueFilter, as_of: dt.datetime,
                     grid_code: str | None = None) -> list[ColumnElement]:
    return [scope.filter(Issue.grid_code), _in_grid(grid_code), *flt.conditions(as_of)]


# -- grids ---------------------------------------------------------------------------------------
def grids_stamp(session: Session, as_of: dt.datetime | None = None) -> str:
    """Changes whenever any grid row is added or closed (cache key for the layers)."""
    row = session.execute(select(func.count(), func.max(Grid.id), func.max(Grid.valid_to))).one()
    return f"{row[0]}-{row[1]}-{row[2].isoformat() if row[2] else ''}"


def grid_layer(session: Session, scope: Scope, level: int,
               as_of: dt.datetime | None = None) -> dict[str, Any]:
    """Current grids of one level as a GeoJSON FeatureCollection (coordinates to 6 decimals)."""
    now = _now(as_of)
    rows = session.execute(
        select(Grid.code, Grid.name, Grid.name_en, Grid.level, Grid.parent_code, Grid.area_m2,
               func.ST_AsGeoJSON(Grid.geom, 6))
        .where(Grid.level == level, valid_at(now), scope.filter(Grid.code))
        .order_by(Grid.code)).all()
    feats = []
    for code, name, name_en, lvl, parent, area, geom in rows:
        feats.append({"type": "Feature", "id": code, "geometry": orjson.loads(geom),
                      "properties": {"code": code, "name": name, "name_en": name_en or name,
                                     "level": lvl, "parent_code": parent,
                                     "area_km2": round((area or 0) / 1e6, 4)}})
    return {"type": "FeatureCollection", "features": feats}


def grid_names(session: Session, scope: Scope, as_of: dt.datetime | None = None
               ) -> dict[str, tuple[str, str]]:
    """code -> (name, name_en) for every current grid in scope."""
    now = _now(as_of)
    rows = session.execute(select(Grid.code, Grid.name, Grid.name_en)
                           .where(valid_at(now), scope.filter(Grid.code))).all()
    return {c: (n, e or n) for c, n, e in rows}


def street_code(session: Session, scope: Scope, as_of: dt.datetime | None = None) -> str | None:
    """The (first) level-1 grid in scope: the map's root."""
    now = _now(as_of)
    return session.execute(select(Grid.code).where(Grid.level == 1, valid_at(now),
                                                   scope.filter(Grid.code))
                           .order_by(Grid.code).limit(1)).scalar_one_or_none()


@dataclass(frozen=True)
class OfficialRow:
    official_id: int
    name: str
    role: str
    title: str
    unit: str | None
    phone: str | None          # None unless scope.personal_data
    grid_code: str
    chain: str | None = None   # for a block's six-ones chain: grid_leader / responsible / leader


@dataclass(frozen=True)
class GridDetail:
    code: str
    name: str
    name_en: str
    level: int
    parent_code: str | None
    area_km2: float
    bbox: tuple[float, float, float, float]   # west, south, east, north
    path: list[tuple[str, str, str]]          # (code, name, name_en) from the street down to it
    officials: list[OfficialRow]
    children: int


def _officials(session: Session, scope: Scope, codes: Sequence[str], now: dt.datetime,
               roles: Iterable[str] | None = None) -> list[OfficialRow]:
    q = (select(GridAssignment.official_id, Official.name, GridAssignment.role, GridAssignment.title,
                Official.unit, Official.phone, GridAssignment.grid_code, GridAssignment.rank)
         .join(Official, Official.id == GridAssignment.official_id)
         .where(GridAssignment.grid_code.in_(list(codes)), valid_at(now, GridAssignment),
                Official.active.is_(True)))
    if roles is not None:
        q = q.where(GridAssignment.role.in_(list(roles)))
    rows = session.execute(q).all()
    order = {r: i for i, r in enumerate(ROLE_ORDER)}
    rows = sorted(rows, key=lambda r: (order.get(r.role, 99), r.rank, r.official_id))
    return [OfficialRow(official_id=r.official_id, name=r.name, role=r.role, title=r.title,
                        unit=r.unit, phone=r.phone if scope.personal_data else None,
                        grid_code=r.grid_code) for r in rows]


def grid_detail(session: Session, scope: Scope, code: str,
                as_of: dt.datetime | None = None) -> GridDetail | None:
    """A grid with its officials; for a block, the six-ones chain (网格长 → the community's direct
    responsible people → the leader in charge, the community's first responsible). None when the
    grid does not exist (as of ``as_of``) or is outside the scope."""
    now = _now(as_of)
    try:
        level_of(code)
    except CodeError:
        return None
    if not scope.allows(code):
        return None
    row = session.execute(
        select(Grid.code, Grid.name, Grid.name_en, Grid.level, Grid.parent_code, Grid.area_m2,
               func.ST_XMin(Grid.geom), func.ST_YMin(Grid.geom), func.ST_XMax(Grid.geom),
               func.ST_YMax(Grid.geom))
        .where(Grid.code == code, valid_at(now))).one_or_none()
    if row is None:
        return None
    ancestors = []
    c = row.parent_code
    while c:
        ancestors.append(c)
        c = parent_of(c)
    names = {r.code: (r.name, r.name_en or r.name) for r in session.execute(
        select(Grid.code, Grid.name, Grid.name_en).where(Grid.code.in_(ancestors), valid_at(now)))}
    path = [(a, *names.get(a, (a, a))) for a in reversed(ancestors)]
    path.append((row.code, row.name, row.name_en or row.name))
    if row.level == 3:
        community = row.parent_code
        # one read for the three links (order within a link: role order, rank, id — as _officials sorts)
        both = _officials(session, scope, [code, community], now,
                          ["grid_leader", "direct_responsible", "first_responsible"])
        officials = [replace(o, chain=chain) for grid, role, chain in (
                         (code, "grid_leader", "grid_leader"), (community, "direct_responsible", "responsible"),
                         (community, "first_responsible", "leader_in_charge"))
                     for o in both if o.grid_code == grid and o.role == role]
    else:
        officials = _officials(session, scope, [code], now)
    children = session.execute(select(func.count()).select_from(Grid).where(
        Grid.parent_code == code, valid_at(now))).scalar_one()
    return GridDetail(code=row.code, name=row.name, name_en=row.name_en or row.name, level=row.level,
                      parent_code=row.parent_code, area_km2=round((row.area_m2 or 0) / 1e6, 4),
                      bbox=(row[6], row[7], row[8], row[9]), path=path, officials=officials,
                      children=children)


# -- metrics and counts --------------------------------------------------------------------------
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
    def closure_rate(self) -> float | None:
        """结案率 = closed / should-be-closed; None when nothing was due."""
        return self.closed / self.should_close if self.should_close else None

    @property
    def per_km2(self) -> float | None:
        return self.total / self.area_km2 if self.area_km2 else None

    def metric(self, name: str) -> float | None:
        if name == "open":
            return float(self.open)
        if name == "overdue":
            return float(self.overdue)
        if name == "closure_rate":
            return self.closure_rate
        if name == "per_km2":
            return self.per_km2
        raise ValueError(f"unknown metric {name!r}")


def _count_columns(now: dt.datetime) -> list[ColumnElement]:
    closed = _is_closed()
    return [
        func.count(Issue.id),
        func.count(Issue.id).filter(~closed),
        func.count(Issue.id).filter(closed),
        func.count(Issue.id).filter(overdue_expr(now)),
        func.count(Issue.id).filter(_open_overdue(now)),
        func.count(Issue.id).filter(or_(closed, and_(Issue.due_at.is_not(None),
                                                     Issue.due_at <= literal(now)))),
    ]


def grid_metrics(session: Session, scope: Scope, flt: IssueFilter, level: int,
                 parent_code: str | None = None, as_of: dt.datetime | None = None
                 ) -> dict[str, Counts]:
    """Counts per grid of ``level`` (optionally only children of ``parent_code``), for the
    choropleth. Grids with no matching issue get zero counts."""
    now = _now(as_of)
    if level == 3:
        key = Issue.grid_code
    elif level == 2:
        key = Issue.community_code
    else:
        key = func.substr(Issue.grid_code, 1, 9) + "00000"
    grid_q = (select(Grid.code, Grid.area_m2).where(Grid.level == level, valid_at(now),
                                                    scope.filter(Grid.code)))
    if parent_code:
        grid_q = grid_q.where(Grid.parent_code == parent_code)
    grids = dict(session.execute(grid_q).all())
    if not grids:
        return {}
    q = (select(key.label("k"), *_count_columns(now))
         .where(*issue_conditions(scope, flt, now, parent_code), key.in_(list(grids)))
         .group_by(key))
    out = {c: Counts(area_km2=(a or 0) / 1e6) for c, a in grids.items()}
    for k, total, open_, closed, overdue, overdue_open, should in session.execute(q).all():
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
                as_of: dt.datetime | None = None) -> GridCounts:
    """Totals, counts by status and by domain of the issues in grid ``code`` (None: whole scope),
    in one pass (GROUPING SETS)."""
    now = _now(as_of)
    conds = issue_conditions(scope, flt, now, code)
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
    area = 0.0
    if code:
        area = (session.execute(select(Grid.area_m2).where(Grid.code == code, valid_at(now)))
                .scalar_one_or_none() or 0) / 1e6
    return GridCounts(Counts(*totals, area),
                      {s: by_status[s] for s in STATUSES if by_status.get(s)}, by_domain)


def domains(session: Session) -> list[tuple[str, str, str]]:
    """(code, name_zh, name_en) of the active domains in display order."""
    return [tuple(r) for r in session.execute(  # type: ignore[misc]
        select(Domain.code, Domain.name_zh, Domain.name_en).where(Domain.active.is_(True))
        .order_by(Domain.sort, Domain.code)).all()]


# -- issues --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssueRow:
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


def latest_issues(session: Session, scope: Scope, flt: IssueFilter, code: str | None,
                  limit: int = 50, as_of: dt.datetime | None = None) -> list[IssueRow]:
    now = _now(as_of)
    rows = session.execute(
        select(Issue.id, Issue.number, Issue.kind, Issue.domain_code, Issue.title, Issue.status,
               overdue_expr(now), Issue.reported_at, Issue.due_at, Issue.closed_at, Issue.grid_code)
        .where(*issue_conditions(scope, flt, now, code))
        .order_by(Issue.reported_at.desc(), Issue.id.desc()).limit(limit)).all()
    return [IssueRow(*r) for r in rows]


@dataclass(frozen=True)
class EventRow:
    at: dt.datetime
    action: str
    from_status: str | None
    to_status: str
    actor: str | None
    actor_role: str | None
    note: str


@dataclass(frozen=True)
class IssueDetail:
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


def issue_timeline(session: Session, scope: Scope, issue_id: int,
                   as_of: dt.datetime | None = None) -> IssueDetail | None:
    """An issue with its six-ones chain and every workflow event, oldest first."""
    now = _now(as_of)
    r = session.execute(
        select(Issue.id, Issue.number, Issue.kind, Issue.domain_code, Issue.title, Issue.status,
               overdue_expr(now), Issue.reported_at, Issue.due_at, Issue.closed_at, Issue.grid_code,
               Issue.description, Issue.address, func.ST_X(Issue.location), func.ST_Y(Issue.location),
               Issue.leader_in_charge_id, Issue.responsible_id, Issue.grid_leader_id,
               Issue.assignee_id)
        .where(Issue.id == issue_id, scope.filter(Issue.grid_code))).one_or_none()
    if r is None:
        return None
    ids = [i for i in r[15:19] if i is not None]
    names = dict(session.execute(select(Official.id, Official.name).where(Official.id.in_(ids))).all()
                 ) if ids else {}
    ev = session.execute(
        select(IssueEvent.at, IssueEvent.action, IssueEvent.from_status, IssueEvent.to_status,
               Official.name, IssueEvent.actor_role, IssueEvent.note)
        .outerjoin(Official, Official.id == IssueEvent.actor_id)
        .where(IssueEvent.issue_id == issue_id).order_by(IssueEvent.at, IssueEvent.id)).all()
    return IssueDetail(issue=IssueRow(*r[:11]), description=r[11] or "", address=r[12],
                       lon=r[13], lat=r[14], leader_in_charge=names.get(r[15]),
                       responsible=names.get(r[16]), grid_leader=names.get(r[17]),
                       assignee=names.get(r[18]), events=[EventRow(*e) for e in ev])


def find_issue(session: Session, scope: Scope, number_or_id: str) -> int | None:
    """Issue id for an issue number (or numeric id) in scope."""
    q = select(Issue.id).where(scope.filter(Issue.grid_code))
    if number_or_id.isdigit() and len(number_or_id) < 12:
        q = q.where(or_(Issue.id == int(number_or_id), Issue.number == number_or_id))
    else:
        q = q.where(Issue.number == number_or_id)
    return session.execute(q.limit(1)).scalar_one_or_none()


# -- markers -------------------------------------------------------------------------------------
Bbox = tuple[float, float, float, float]   # west, south, east, north (EPSG:4326)


@dataclass(frozen=True)
class MarkerResult:
    mode: str              # 'points' or 'bins'
    total: int | None      # number of matching issues in the viewport when known (bins mode)
    data: dict[str, Any]   # GeoJSON FeatureCollection
    limit: int


def _state(status: str, overdue_open: bool) -> str:
    if status in CLOSED_STATUSES:
        return "c"
    return "x" if overdue_open else "o"


def _bbox_cond(bbox: Bbox) -> ColumnElement[bool]:
    w, s, e, n = bbox
    return Issue.location.op("&&")(func.ST_MakeEnvelope(w, s, e, n, 4326))


def clamp_bbox(bbox: Sequence[float]) -> Bbox:
    w, s, e, n = (float(v) for v in bbox)
    w, e = max(-180.0, min(w, e)), min(180.0, max(w, e))
    s, n = max(-90.0, min(s, n)), min(90.0, max(s, n))
    return (w, s, e, n)


def markers(session: Session, scope: Scope, flt: IssueFilter, bbox: Sequence[float],
            limit: int = 2000, as_of: dt.datetime | None = None) -> MarkerResult:
    """Issue markers in a viewport: ≤ ``limit`` points, or ≤ BIN_CELLS² aggregate cells.

    A point carries only its id and state (o open, x open and overdue, c closed), ≈ 100 B; the
    popup text is fetched when a popup opens (:func:`issue_popup`)."""
    now = _now(as_of)
    box = clamp_bbox(bbox)
    conds = [*issue_conditions(scope, flt, now), _bbox_cond(box)]
    # probe: no ORDER BY, so the database stops after limit + 1 rows however many match
    rows = session.execute(
        select(Issue.id, func.ST_X(Issue.location), func.ST_Y(Issue.location), Issue.status,
               _open_overdue(now))
        .where(*conds).limit(limit + 1)).all()
    if len(rows) <= limit:
        rows = sorted(rows, key=lambda r: r[0])
        feats = [{"type": "Feature", "geometry": {"type": "Point",
                                                  "coordinates": [round(x, 6), round(y, 6)]},
                  "properties": {"id": i, "st": _state(status, ov)}}
                 for i, x, y, status, ov in rows]
        return MarkerResult("points", len(rows), {"type": "FeatureCollection", "features": feats},
                            limit)
    return MarkerResult("bins", None, marker_bins(session, scope, flt, box, now), limit)


def issue_popup(session: Session, scope: Scope, issue_id: int,
                as_of: dt.datetime | None = None) -> dict[str, Any] | None:
    """What a marker popup shows (raw text: the browser escapes it)."""
    now = _now(as_of)
    r = session.execute(
        select(Issue.id, Issue.number, Issue.title, Issue.kind, Issue.domain_code, Issue.status,
               _open_overdue(now), Issue.grid_code,
               cast(func.extract("epoch", Issue.reported_at), Float))
        .where(Issue.id == issue_id, scope.filter(Issue.grid_code))).one_or_none()
    if r is None:
        return None
    return {"id": r[0], "n": r[1], "t": r[2], "k": r[3][0], "d": r[4], "s": r[5],
            "st": _state(r[5], r[6]), "g": r[7], "r": int(r[8])}


def marker_bins(session: Session, scope: Scope, flt: IssueFilter, bbox: Bbox,
                as_of: dt.datetime | None = None, cells: int = BIN_CELLS) -> dict[str, Any]:
    """Aggregate markers: the viewport cut into ≤ cells × cells squares (in degrees, aspect kept);
    one feature per non-empty square at the mean position of its issues, with counts by state."""
    now = _now(as_of)
    w, s, e, n = bbox
    size = max(e - w, n - s) / cells or 1e-6
    conds = [*issue_conditions(scope, flt, now), _bbox_cond(bbox)]
    x = func.ST_X(Issue.location)
    y = func.ST_Y(Issue.location)
    ix = func.floor((x - w) / size)
    iy = func.floor((y - s) / size)
    closed = _is_closed()
    rows = session.execute(
        select(func.avg(x), func.avg(y), func.count(), func.count().filter(_open_overdue(now)),
               func.count().filter(closed))
        .where(*conds).group_by(ix, iy)).all()
    feats = [{"type": "Feature", "geometry": {"type": "Point",
                                              "coordinates": [round(ax, 5), round(ay, 5)]},
              "properties": {"c": cnt, "x": ov, "z": cl}}
             for ax, ay, cnt, ov, cl in rows]
    return {"type": "FeatureCollection", "features": feats}


# -- heat tiles ----------------------------------------------------------------------------------
_ORIGIN = 20037508.342789244
_HEAT_CELL_PX = 4          # aggregation cell in screen pixels
_HEAT_SIGMA = 3.0          # gaussian sigma, in cells (12 px)
_HEAT_MARGIN = 9           # cells of margin around a tile (3 sigma), so tiles join seamlessly
HEAT_PAD = 1               # cells of the neighbouring tiles kept in the grid, for the upscaling


def tile_bounds_3857(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * _ORIGIN / (2 ** z)
    minx = -_ORIGIN + x * size
    maxy = _ORIGIN - y * size
    return minx, maxy - size, minx + size, maxy


def heat_scale(session: Session, scope: Scope, flt: IssueFilter,
               as_of: dt.datetime | None = None) -> float:
    """Top of the heat colour scale, issues per km²: the densest 100 m × 100 m square (≥ 1 issue).

    Squares are Web-Mercator cells sized to 100 m on the ground at the latitude of the current
    grids' centre (Mercator metres are stretched by 1/cos(lat))."""
    now = _now(as_of)
    lat = session.execute(select(func.ST_Y(func.ST_Centroid(func.ST_Extent(Grid.geom))))
                          .where(valid_at(now))).scalar_one_or_none()
    p = func.ST_Transform(Issue.location, 3857)
    cell = 100.0 / math.cos(math.radians(lat or 0.0))
    sub = (select(func.count().label("c")).select_from(Issue).where(*issue_conditions(scope, flt, now))
           .group_by(func.floor(func.ST_X(p) / cell), func.floor(func.ST_Y(p) / cell)).subquery())
    top = session.execute(select(func.max(sub.c.c))).scalar_one_or_none()
    return float(max(top or 1, 1)) * 100.0   # per hectare → per km²


def heat_grid(session: Session, scope: Scope, flt: IssueFilter, z: int, x: int, y: int,
              as_of: dt.datetime | None = None, pad: int = HEAT_PAD):
    """Kernel density (issues per km²) over one 256 px tile at 4 px cells, plus ``pad`` cells of the
    neighbouring tiles on every side: a (64 + 2·pad)² numpy array. The kernels are summed over a
    wider margin still, so a cell has the same value whichever tile computes it; the padding lets
    :func:`render_heat_png` interpolate across the tile edge, so adjacent tiles join without seams."""
    import numpy as np

    now = _now(as_of)
    minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
    res = (maxx - minx) / 256.0
    cell = res * _HEAT_CELL_PX
    margin = _HEAT_MARGIN + pad
    m = margin * cell
    n = 256 // _HEAT_CELL_PX + 2 * margin
    crop = slice(_HEAT_MARGIN, n - _HEAT_MARGIN)
    env = func.ST_Transform(func.ST_MakeEnvelope(minx - m, miny - m, maxx + m, maxy + m, 3857), 4326)
    p = func.ST_Transform(Issue.location, 3857)
    ix = func.floor((func.ST_X(p) - (minx - m)) / cell)
    iy = func.floor(((maxy + m) - func.ST_Y(p)) / cell)
    rows = session.execute(
        select(ix, iy, func.count())
        .where(*issue_conditions(scope, flt, now), Issue.location.op("&&")(env))
        .group_by(ix, iy)).all()
    counts = np.zeros((n, n), dtype=np.float64)
    for cx, cy, c in rows:
        cx, cy = int(cx), int(cy)
        if 0 <= cx < n and 0 <= cy < n:
            counts[cy, cx] += c
    if not rows:
        return counts[crop, crop]
    r = int(3 * _HEAT_SIGMA)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / _HEAT_SIGMA) ** 2)
    k /= k.sum()
    dens = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 0, counts)
    dens = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 1, dens)
    # ground area of one cell: mercator metres × cos(latitude of the cell's row), per row, so a
    # cell gets the same value in the tile above or below too
    row_y = (maxy + m) - (np.arange(n) + 0.5) * cell
    lat = 2 * np.arctan(np.exp(row_y / 6378137.0)) - math.pi / 2
    ground = (cell * np.cos(lat)) ** 2
    dens *= (1e6 / ground)[:, None]
    return dens[crop, crop]


#: yellow → orange → red → dark red, as (position, r, g, b, alpha)
HEAT_STOPS = ((0.0, 255, 255, 178, 0), (0.08, 254, 217, 118, 120), (0.3, 253, 141, 60, 170),
              (0.6, 240, 59, 32, 200), (1.0, 165, 0, 38, 225))


def heat_lut():
    import numpy as np

    xs = np.linspace(0, 1, 256)
    pos = [s[0] for s in HEAT_STOPS]
    return np.stack([np.interp(xs, pos, [s[i] for s in HEAT_STOPS]) for i in range(1, 5)],
                    axis=1).astype(np.uint8)


def heat_index(dens, scale: float):
    """The 256 × 256 colour-ramp indices (uint8, sqrt(density / scale) × 255) of a density grid.

    ``dens`` is a :func:`heat_grid`: the tile's 64 × 64 cells plus a border of padding cells on
    every side. The whole grid is upscaled (bilinear) and then cropped to the tile, so edge pixels
    are interpolated towards the neighbouring tile's cells, as that tile's own edge pixels are."""
    import numpy as np
    from PIL import Image

    cells = 256 // _HEAT_CELL_PX
    pad = (dens.shape[0] - cells) // 2
    if pad < 0 or dens.shape != (cells + 2 * pad, cells + 2 * pad):
        raise ValueError(f"heat grid must be square, {cells} cells plus padding: {dens.shape}")
    v = np.sqrt(np.clip(dens / max(scale, 1e-9), 0.0, 1.0))
    full = dens.shape[0] * _HEAT_CELL_PX
    # interpolate in floating point and round once (rounding before and after the resize let the
    # step across a tile edge exceed its neighbours' by two levels at some scales)
    img = Image.fromarray(v.astype(np.float32), mode="F").resize((full, full), Image.BILINEAR)
    o = pad * _HEAT_CELL_PX
    idx = np.rint(np.asarray(img)[o:o + 256, o:o + 256] * 255.0)
    return np.ascontiguousarray(np.clip(idx, 0, 255).astype(np.uint8))


def render_heat_png(dens, scale: float) -> bytes:
    """PNG (256 px RGBA) of a density grid (see :func:`heat_index`), colour by sqrt(density / scale)."""
    from PIL import Image

    idx = heat_index(dens, scale)
    rgba = heat_lut()[idx]
    rgba[idx < 3, 3] = 0
    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def empty_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (256, 256), (0, 0, 0, 0)).save(buf, format="PNG")
    return buf.getvalue()


# -- search --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchHit:
    kind: str               # 'grid' | 'official' | 'issue'
    label: str
    label_en: str
    grid_code: str
    issue_id: int | None = None


def search(session: Session, scope: Scope, q: str, limit: int = 10,
           as_of: dt.datetime | None = None) -> list[SearchHit]:
    """Grid code or name, official name, issue number → where to go.

    The text is literal (``%`` and ``_`` match themselves) and cut to :data:`SEARCH_MAX_CHARS`
    characters: the dashboard's box searches as the user types, so an over-long text is shortened,
    never refused (no name is that long)."""
    now = _now(as_of)
    q = (q or "").strip()[:SEARCH_MAX_CHARS].strip()
    if not q:
        return []
    hits: list[SearchHit] = []
    for code, name, name_en, _lvl in session.execute(
            select(Grid.code, Grid.name, Grid.name_en, Grid.level)
            .where(valid_at(now), scope.filter(Grid.code),
                   or_(Grid.code.like(q + "%") if q.isdigit() else false(),
                       Grid.name.icontains(q, autoescape=True), Grid.name_en.icontains(q, autoescape=True)))
            .order_by(Grid.level, Grid.code).limit(limit)).all():
        hits.append(SearchHit("grid", f"{name} {code}", f"{name_en or name} {code}", code))
    for name, title, code in session.execute(
            select(Official.name, GridAssignment.title, GridAssignment.grid_code)
            .join(GridAssignment, GridAssignment.official_id == Official.id)
            .where(Official.name.icontains(q, autoescape=True), valid_at(now, GridAssignment),
                   scope.filter(GridAssignment.grid_code))
            .order_by(Official.name, GridAssignment.grid_code).limit(limit)).all():
        hits.append(SearchHit("official", f"{name} · {title}", f"{name} · {title}", code))
    for iid, number, title, code in session.execute(
            select(Issue.id, Issue.number, Issue.title, Issue.grid_code)
            .where(scope.filter(Issue.grid_code),
                   # a range on the unique index, then the exact prefix test
                   Issue.number >= q.upper(), Issue.number < q.upper() + "\x7f",
                   Issue.number.startswith(q.upper(), autoescape=True))
            .order_by(Issue.number).limit(limit)).all():
        hits.append(SearchHit("issue", f"{number} {title[:30]}", f"{number} {title[:30]}", code, iid))
    return hits[:limit * 2]


# -- live ----------------------------------------------------------------------------------------
def latest_change(session: Session, scope: Scope) -> str:
    """A cheap stamp that moves whenever an issue is added, changed or removed.

    Index-only work whatever the table size: count and max id of issues (new and deleted rows), max
    id of issue events (every workflow step appends one), and the table's update/delete counters
    (other edits; PostgreSQL flushes them within about a second). Deliberately not scoped: it only
    says *something* changed, so a viewer refreshes its own, scoped, queries."""
    cnt, mx = session.execute(select(func.count(Issue.id), func.max(Issue.id))).one()
    ev = session.execute(select(func.max(IssueEvent.id))).scalar_one_or_none()
    upd = session.execute(text(
        "SELECT coalesce(n_tup_upd, 0) + coalesce(n_tup_del, 0) FROM pg_stat_user_tables "
        "WHERE relid = 'issue'::regclass")).scalar_one_or_none()
    return f"{cnt}|{mx or 0}|{ev or 0}|{upd or 0}"
