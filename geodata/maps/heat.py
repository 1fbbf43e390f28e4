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
from geodata.geometry import MERCATOR_ORIGIN, MERCATOR_RADIUS
from geodata.grids.store import valid_at
from geodata.models import Grid
from geodata.workflow.filters import IssueFilter

from . import cells

HEAT_CELL_PX = 4           # aggregation cell in screen pixels
_HEAT_SIGMA = 3.0          # gaussian sigma, in cells (12 px)
_HEAT_MARGIN = 9           # cells of margin around a tile (3 sigma), so tiles join seamlessly
HEAT_PAD = 1               # cells of the neighbouring tiles kept in the grid, for the upscaling


def tile_bounds_3857(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * MERCATOR_ORIGIN / (2 ** z)
    minx = -MERCATOR_ORIGIN + x * size
    maxy = MERCATOR_ORIGIN - y * size
    return minx, maxy - size, minx + size, maxy


def heat_scale(session: Session, scope: Scope, flt: IssueFilter,
               as_of: dt.datetime | None = None, *, tz: ZoneInfo) -> float:
    """Top of the heat colour scale, issues per km²: the densest map square of about 100 m (≥ 1 issue).

    The squares are those of :mod:`geodata.maps.cells` (Web-Mercator, a power of two of cells to
    the side) whose ground side is nearest 100 m at the latitude of the current grids' centre
    (Mercator metres are stretched by 1/cos(lat)): 16 cells, ≈ 126 m, in Zhengzhou."""
    now = at_or_now(as_of)
    shift, ground = scale_square(session, now)
    counts = cells.square_counts(session, scope, flt, now, tz, shift)
    return float(max(max(counts.values(), default=0), 1)) * 1e6 / ground


def scale_square(session: Session, now: dt.datetime) -> tuple[int, float]:
    """(shift, ground area in m²) of the heat scale's squares: the :mod:`geodata.maps.cells`
    square whose ground side is nearest 100 m at the latitude of the grids valid at ``now``."""
    lat = session.execute(select(func.ST_Y(func.ST_Centroid(func.ST_Extent(Grid.geom))))
                          .where(valid_at(now))).scalar_one_or_none()
    stretch = math.cos(math.radians(lat or 0.0))
    shift = max(0, round(math.log2(100.0 / (cells.CELL_M * stretch))))
    return shift, (cells.square_side(shift) * stretch) ** 2


def heat_grid(session: Session, scope: Scope, flt: IssueFilter, z: int, x: int, y: int,
              as_of: dt.datetime | None = None, pad: int = HEAT_PAD, *, tz: ZoneInfo):
    """Kernel density (issues per km²) over one 256 px tile at 4 px cells, plus ``pad`` cells of the
    neighbouring tiles on every side: a (64 + 2·pad)² numpy array. The kernels are summed over a
    wider margin still, so a cell has the same value whichever tile computes it; the padding lets
    the renderer (``dashboard.tiles``) interpolate across the tile edge, so adjacent tiles join without seams.

    A 4 px cell at zoom z is the map square of shift 16 − z (:mod:`geodata.maps.cells`): closed
    issues counted from their cells when the filter allows (at z ≤ 16 exactly; deeper, each cell's
    issues at their mean position), else from ``issue``."""
    import numpy as np

    now = at_or_now(as_of)
    minx, _miny, maxx, maxy = tile_bounds_3857(z, x, y)
    cell = (maxx - minx) / 256.0 * HEAT_CELL_PX
    margin = _HEAT_MARGIN + pad
    n = 256 // HEAT_CELL_PX + 2 * margin
    crop = slice(_HEAT_MARGIN, n - _HEAT_MARGIN)
    per_tile = 256 // HEAT_CELL_PX
    ox, oy = per_tile * x - margin, per_tile * y - margin      # the first square, in squares of the zoom
    squares = cells.square_counts(session, scope, flt, now, tz, cells.CELL_ZOOM - z, (ox, oy, ox + n, oy + n))
    counts = np.zeros((n, n), dtype=np.float64)
    for (sx, sy), c in squares.items():
        cx, cy = sx - ox, sy - oy
        if 0 <= cx < n and 0 <= cy < n:
            counts[cy, cx] += c
    if not squares:
        return counts[crop, crop]
    r = int(3 * _HEAT_SIGMA)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / _HEAT_SIGMA) ** 2)
    k /= k.sum()
    dens = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 0, counts)
    dens = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 1, dens)
    # ground area of one cell: mercator metres × cos(latitude of the cell's row), per row, so a
    # cell gets the same value in the tile above or below too
    row_y = (maxy + margin * cell) - (np.arange(n) + 0.5) * cell
    lat = 2 * np.arctan(np.exp(row_y / MERCATOR_RADIUS)) - math.pi / 2
    ground = (cell * np.cos(lat)) ** 2
    dens *= (1e6 / ground)[:, None]
    return dens[crop, crop]
