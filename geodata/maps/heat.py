"""Heat-map data: kernel density of the filtered issues (issues per km²) over one Web-Mercator tile,
and the top of the colour scale. Data only: the PNG is drawn by ``dashboard.tiles``. The size of a
tile's data is fixed (64 + 2·pad cells square) whatever the number of issues.
"""
from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.clock import at_or_now
from geodata.grids.store import valid_at
from geodata.models import Grid, Issue
from geodata.workflow.filters import IssueFilter, issue_conditions

_ORIGIN = 20037508.342789244
HEAT_CELL_PX = 4           # aggregation cell in screen pixels
_HEAT_SIGMA = 3.0          # gaussian sigma, in cells (12 px)
_HEAT_MARGIN = 9           # cells of margin around a tile (3 sigma), so tiles join seamlessly
HEAT_PAD = 1               # cells of the neighbouring tiles kept in the grid, for the upscaling


def tile_bounds_3857(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * _ORIGIN / (2 ** z)
    minx = -_ORIGIN + x * size
    maxy = _ORIGIN - y * size
    return minx, maxy - size, minx + size, maxy


def heat_scale(session: Session, scope: Scope, flt: IssueFilter,
               as_of: dt.datetime | None = None, *, tz: ZoneInfo) -> float:
    """Top of the heat colour scale, issues per km²: the densest 100 m × 100 m square (≥ 1 issue).

    Squares are Web-Mercator cells sized to 100 m on the ground at the latitude of the current
    grids' centre (Mercator metres are stretched by 1/cos(lat))."""
    now = at_or_now(as_of)
    lat = session.execute(select(func.ST_Y(func.ST_Centroid(func.ST_Extent(Grid.geom))))
                          .where(valid_at(now))).scalar_one_or_none()
    p = func.ST_Transform(Issue.location, 3857)
    cell = 100.0 / math.cos(math.radians(lat or 0.0))
    sub = (select(func.count().label("c")).select_from(Issue).where(*issue_conditions(scope, flt, now, tz))
           .group_by(func.floor(func.ST_X(p) / cell), func.floor(func.ST_Y(p) / cell)).subquery())
    top = session.execute(select(func.max(sub.c.c))).scalar_one_or_none()
    return float(max(top or 1, 1)) * 100.0   # per hectare → per km²


def heat_grid(session: Session, scope: Scope, flt: IssueFilter, z: int, x: int, y: int,
              as_of: dt.datetime | None = None, pad: int = HEAT_PAD, *, tz: ZoneInfo):
    """Kernel density (issues per km²) over one 256 px tile at 4 px cells, plus ``pad`` cells of the
    neighbouring tiles on every side: a (64 + 2·pad)² numpy array. The kernels are summed over a
    wider margin still, so a cell has the same value whichever tile computes it; the padding lets
    the renderer (``dashboard.tiles``) interpolate across the tile edge, so adjacent tiles join without seams."""
    import numpy as np

    now = at_or_now(as_of)
    minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
    res = (maxx - minx) / 256.0
    cell = res * HEAT_CELL_PX
    margin = _HEAT_MARGIN + pad
    m = margin * cell
    n = 256 // HEAT_CELL_PX + 2 * margin
    crop = slice(_HEAT_MARGIN, n - _HEAT_MARGIN)
    env = func.ST_Transform(func.ST_MakeEnvelope(minx - m, miny - m, maxx + m, maxy + m, 3857), 4326)
    p = func.ST_Transform(Issue.location, 3857)
    ix = func.floor((func.ST_X(p) - (minx - m)) / cell)
    iy = func.floor(((maxy + m) - func.ST_Y(p)) / cell)
    rows = session.execute(
        select(ix, iy, func.count())
        .where(*issue_conditions(scope, flt, now, tz), Issue.location.op("&&")(env))
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
