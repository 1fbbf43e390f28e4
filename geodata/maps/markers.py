"""Issue markers in a viewport, bounded whatever the database size, and a marker's popup.

At most ``limit`` (settings.max_markers, default 2000) points of ≈ 105 B each (id and state only;
popup text is fetched on demand) → ≤ ~210 KB; beyond that, the viewport is cut into at most
:data:`BIN_CELLS` × :data:`BIN_CELLS` cells and one aggregate feature per non-empty cell is sent
(≈ 135 B each → ≤ ~35 KB).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, cast, func, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.access.visibility import visible_issues
from geodata.clock import at_or_now
from geodata.models import Issue
from geodata.workflow.filters import Bbox, IssueFilter, bbox_condition, issue_conditions, open_overdue
from geodata.workflow.rules import CLOSED_STATUSES

from . import cells

#: Aggregation grid across the viewport when there are more than ``limit`` markers.
BIN_CELLS = 16


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


def clamp_bbox(bbox: Sequence[float]) -> Bbox:
    w, s, e, n = (float(v) for v in bbox)
    w, e = max(-180.0, min(w, e)), min(180.0, max(w, e))
    s, n = max(-90.0, min(s, n)), min(90.0, max(s, n))
    return (w, s, e, n)


def markers(session: Session, scope: Scope, flt: IssueFilter, bbox: Sequence[float],
            limit: int = 2000, as_of: dt.datetime | None = None, *, tz: ZoneInfo) -> MarkerResult:
    """Issue markers in a viewport: ≤ ``limit`` points, or ≤ BIN_CELLS² aggregate cells.

    A point carries only its id and state (o open, x open and overdue, c closed), ≈ 100 B; the
    popup text is fetched when a popup opens (:func:`issue_popup`)."""
    now = at_or_now(as_of)
    box = clamp_bbox(bbox)
    # many closed issues in view (counted from their cells when the filter allows): bins at once
    if cells.serves(flt, now, tz) and cells.closed_in_view(session, scope, flt, now, tz, box) > limit:
        return MarkerResult("bins", None, marker_bins(session, scope, flt, box, now, tz=tz), limit)
    conds = [*issue_conditions(scope, flt, now, tz), bbox_condition(box)]
    # probe: no ORDER BY, so the database stops after limit + 1 rows however many match
    rows = session.execute(
        select(Issue.id, func.ST_X(Issue.location), func.ST_Y(Issue.location), Issue.status,
               open_overdue(now))
        .where(*conds).limit(limit + 1)).all()
    if len(rows) <= limit:
        rows = sorted(rows, key=lambda r: r[0])
        feats = [{"type": "Feature", "geometry": {"type": "Point",
                                                  "coordinates": [round(x, 6), round(y, 6)]},
                  "properties": {"id": i, "st": _state(status, ov)}}
                 for i, x, y, status, ov in rows]
        return MarkerResult("points", len(rows), {"type": "FeatureCollection", "features": feats},
                            limit)
    return MarkerResult("bins", None, marker_bins(session, scope, flt, box, now, tz=tz), limit)


def issue_popup(session: Session, scope: Scope, issue_id: int,
                as_of: dt.datetime | None = None) -> dict[str, Any] | None:
    """What a marker popup shows (raw text: the browser escapes it)."""
    now = at_or_now(as_of)
    r = session.execute(
        select(Issue.id, Issue.number, Issue.title, Issue.kind, Issue.domain_code, Issue.status,
               open_overdue(now), Issue.grid_code,
               cast(func.extract("epoch", Issue.reported_at), Float),
               cast(func.extract("epoch", Issue.closed_at), Float))
        .where(Issue.id == issue_id, visible_issues(scope))).one_or_none()
    if r is None:
        return None
    return {"id": r[0], "n": r[1], "t": r[2], "k": r[3][0], "d": r[4], "s": r[5],
            "st": _state(r[5], r[6]), "g": r[7], "r": int(r[8]),
            "c": int(r[9]) if r[9] is not None and _state(r[5], r[6]) == "c" else None}   # closed at


def marker_bins(session: Session, scope: Scope, flt: IssueFilter, bbox: Bbox,
                as_of: dt.datetime | None = None, cells_across: int = BIN_CELLS, *, tz: ZoneInfo) -> dict[str, Any]:
    """Aggregate markers: the viewport cut into ≤ cells_across × cells_across squares (in degrees,
    aspect kept); one feature per non-empty square at the mean position of its issues, with counts
    by state. Closed issues are binned by their map cell's mean position when the filter allows
    (:func:`geodata.maps.cells.bin_sums`)."""
    now = at_or_now(as_of)
    w, s, e, n = bbox
    size = max(e - w, n - s) / cells_across or 1e-6
    conds = [*issue_conditions(scope, flt, now, tz), bbox_condition(bbox)]
    sums = cells.bin_sums(session, scope, flt, now, tz, bbox, size, conds)
    feats = [{"type": "Feature", "geometry": {"type": "Point",
                                              "coordinates": [round(sx / cnt, 5), round(sy / cnt, 5)]},
              "properties": {"c": int(cnt), "x": int(ov), "z": int(cl)}}
             for (_ix, _iy), (cnt, ov, cl, sx, sy) in sorted(sums.items()) if cnt > 0]
    return {"type": "FeatureCollection", "features": feats}
