"""The map's markers and heat at any history size: closed issues from ``issue_closed_cell``
(migration 0021), open ones from ``issue``.

A **cell** is a square of the Web-Mercator plane, 2²² to the world's side (:data:`CELL_M` ≈ 9.55
Mercator metres): ``cx = floor((x + ORIGIN) / CELL_M)``, ``cy = floor((ORIGIN − y) / CELL_M)``. A
**square of shift s** is 2^s × 2^s cells (s < 0: a fraction of a cell, read from ``issue`` only).
A heat tile's 4-pixel cell at zoom z is exactly the square of shift 16 − z, so heat counts of
closed issues read from the cells are the counts read from every row (tests/integration/geodata/
maps/test_cells.py compares them number for number).

Closed issues are read from the cells when the filter is one the rollups keep
(:func:`geodata.maps.rollup.serves`) and has no date window (the cells are all time); otherwise,
and for open issues and those a viewer sees only through the responsibility chain
(:func:`geodata.maps.rollup.raw_parts`), from ``issue``, bounded by the open work.
"""
from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, cast, func, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.geometry import (  # noqa: F401  (CELL_M: the cells' side, read as cells.CELL_M)
    CELL_LEVEL,
    CELL_M,
    MERCATOR_ORIGIN,
    MERCATOR_RADIUS,
    cells_of_bbox,
    square_side,
)
from geodata.models import Issue, IssueClosedCell
from geodata.workflow.filters import IssueFilter, is_closed, issue_conditions, open_overdue

from . import rollup

ORIGIN = MERCATOR_ORIGIN
#: the deepest zoom whose heat cells (4 px) are whole cells
CELL_ZOOM = CELL_LEVEL - 6

Box = tuple[int, int, int, int]   # squares [x0, x1) × [y0, y1) of one shift


def serves(flt: IssueFilter, now: dt.datetime, tz: ZoneInfo) -> bool:
    """Whether closed issues under ``flt`` can be read from the cells: a filter the rollups keep,
    over all time."""
    return rollup.serves(flt, tz) and flt.window(now, tz) == (None, None)


def _raw_square(shift: int) -> tuple[ColumnElement, ColumnElement]:
    """The square of ``shift`` of an ``issue`` row: from its stored cell (``cell_x`` / ``cell_y``,
    cells ≥ 0, so integer division is the floor), or for a fraction of a cell (shift < 0) the cells'
    formula at that side."""
    if shift >= 0:
        r = 2 ** shift
        return Issue.cell_x // r, Issue.cell_y // r
    p = func.ST_Transform(Issue.location, 3857)
    side = square_side(shift)
    return (cast(func.floor((func.ST_X(p) + ORIGIN) / side), Integer),
            cast(func.floor((ORIGIN - func.ST_Y(p)) / side), Integer))


def _box_cells(box: Box, shift: int) -> tuple[int, int, int, int]:
    """The cells [x0, x1) × [y0, y1) covering the squares ``box`` of ``shift``."""
    x0, y0, x1, y1 = box
    if shift >= 0:
        r = 2 ** shift
        return x0 * r, y0 * r, x1 * r, y1 * r
    r = 2 ** -shift
    return x0 // r, y0 // r, -(-x1 // r), -(-y1 // r)


def cell_range(cx: ColumnElement, cy: ColumnElement, x0: int, y0: int, x1: int, y1: int
               ) -> list[ColumnElement[bool]]:
    """Rows whose cell (``cx``, ``cy``: an issue's stored cell, or a cell row's) is in [x0, x1) ×
    [y0, y1): integer comparisons, which row-level security lets be index conditions
    (``issue_cell_idx``), where ``&&`` on the location is not."""
    return [cx >= x0, cx < x1, cy >= y0, cy < y1]


def _mean_square(lon: ColumnElement, lat: ColumnElement, shift: int) -> tuple[ColumnElement, ColumnElement]:
    """The square of ``shift`` of a point given in degrees (a cell's mean position), in SQL:
    :func:`geodata.geometry.square_of`'s formula."""
    side = square_side(shift)
    x = lon * (ORIGIN / 180.0)
    y = func.ln(func.tan(math.pi / 4 + func.radians(lat) / 2)) * MERCATOR_RADIUS
    return (cast(func.floor((x + ORIGIN) / side), Integer), cast(func.floor((ORIGIN - y) / side), Integer))


def _closed_sums(flt: IssueFilter) -> tuple[ColumnElement, ColumnElement, ColumnElement]:
    """(count, Σ longitude, Σ latitude) of a cell's closed issues under the filter's overdue field."""
    C = IssueClosedCell
    if flt.overdue is True:
        return C.late, C.lx, C.ly
    if flt.overdue is False:
        return C.n - C.late, C.sx - C.lx, C.sy - C.ly
    return C.n, C.sx, C.sy


def square_counts(session: Session, scope: Scope, flt: IssueFilter, now: dt.datetime, tz: ZoneInfo,
                  shift: int, box: Box | None = None) -> dict[tuple[int, int], int]:
    """Issues under (``scope``, ``flt``) per square of ``shift`` (within ``box``, if given).

    Closed issues from the cells when :func:`serves`: exactly for a shift ≥ 0 (a square is whole
    cells); for a fraction of a cell (shift < 0: heat tiles at z ≥ 17) each cell's issues are put
    in the square of their mean position — within one cell (≈ 9.5 Mercator metres) of where each
    is, and the same total."""
    out: dict[tuple[int, int], int] = {}

    def add(rows) -> None:
        for ix, iy, c in rows:
            key = (int(ix), int(iy))
            out[key] = out.get(key, 0) + int(c)

    conds = issue_conditions(scope, flt, now, tz)
    if box is not None:
        conds += cell_range(Issue.cell_x, Issue.cell_y, *_box_cells(box, shift))
    ix, iy = _raw_square(shift)
    use_cells = serves(flt, now, tz)
    for extra in (rollup.raw_parts(scope, flt) if use_cells else [[]]):
        add(session.execute(select(ix, iy, func.count()).where(*conds, *extra).group_by(ix, iy)).all())
    if use_cells:
        cell_conds = rollup.closed_conditions(IssueClosedCell, scope, flt, now, tz)
        if cell_conds is not None:
            C = IssueClosedCell
            if box is not None:
                cell_conds += cell_range(C.cx, C.cy, *_box_cells(box, shift))
            n, sx, sy = _closed_sums(flt)
            if shift >= 0:
                r = 2 ** shift
                gx, gy = C.cx // r, C.cy // r     # integer division (cells are ≥ 0): the cell's square
            else:
                cell_conds.append(n > 0)
                gx, gy = _mean_square(sx / n, sy / n, shift)
            add(session.execute(select(gx, gy, func.sum(n)).where(*cell_conds).group_by(gx, gy)
                                .having(func.sum(n) > 0)).all())
    return out


def closed_in_view(session: Session, scope: Scope, flt: IssueFilter, now: dt.datetime, tz: ZoneInfo,
                   bbox: tuple[float, float, float, float]) -> int:
    """Closed issues under ``flt`` whose cell's mean position is inside ``bbox`` (assumes :func:`serves`)."""
    conds = _cells_in_view(scope, flt, now, tz, bbox)
    if conds is None:
        return 0
    n = _closed_sums(flt)[0]
    return int(session.execute(select(func.coalesce(func.sum(n), 0)).where(*conds)).scalar_one())


def _cells_in_view(scope: Scope, flt: IssueFilter, now: dt.datetime, tz: ZoneInfo,
                   bbox: tuple[float, float, float, float]) -> list[ColumnElement[bool]] | None:
    conds = rollup.closed_conditions(IssueClosedCell, scope, flt, now, tz)
    if conds is None:
        return None
    w, s, e, n = bbox
    C = IssueClosedCell
    x0, y0, x1, y1 = cells_of_bbox(bbox)
    cnt, sx, sy = _closed_sums(flt)
    return [*conds, C.cx.between(x0, x1), C.cy.between(y0, y1), cnt > 0,
            sx / cnt >= w, sx / cnt <= e, sy / cnt >= s, sy / cnt <= n]


def bin_sums(session: Session, scope: Scope, flt: IssueFilter, now: dt.datetime, tz: ZoneInfo,
             bbox: tuple[float, float, float, float], size: float,
             raw_conditions: list[ColumnElement[bool]]) -> dict[tuple[int, int], list[float]]:
    """Per square of ``size`` degrees from the viewport's south-west corner: [issues, open and
    overdue, closed, Σ longitude, Σ latitude] of the issues ``raw_conditions`` select (THE issue
    conditions of (``scope``, ``flt``) in ``bbox``); closed ones from the cells when
    :func:`serves`, each cell binned at its issues' mean position."""
    w, s = bbox[0], bbox[1]
    out: dict[tuple[int, int], list[float]] = {}

    def add(key: tuple, vals) -> None:
        acc = out.setdefault((int(key[0]), int(key[1])), [0, 0, 0, 0.0, 0.0])
        for i, v in enumerate(vals):
            acc[i] += v or 0

    x, y = func.ST_X(Issue.location), func.ST_Y(Issue.location)
    ix, iy = func.floor((x - w) / size), func.floor((y - s) / size)
    use_cells = serves(flt, now, tz)
    for extra in (rollup.raw_parts(scope, flt) if use_cells else [[]]):
        for r in session.execute(
                select(ix, iy, func.count(), func.count().filter(open_overdue(now)), func.count().filter(is_closed()),
                       func.sum(x), func.sum(y)).where(*raw_conditions, *extra).group_by(ix, iy)).all():
            add(r[:2], r[2:])
    if use_cells and (conds := _cells_in_view(scope, flt, now, tz, bbox)) is not None:
        cnt, sx, sy = _closed_sums(flt)
        cix, ciy = func.floor((sx / cnt - w) / size), func.floor((sy / cnt - s) / size)
        for r in session.execute(select(cix, ciy, func.sum(cnt), func.sum(sx), func.sum(sy))
                                 .where(*conds).group_by(cix, ciy)).all():
            add(r[:2], [r[2], 0, r[2], r[3], r[4]])
    return out
