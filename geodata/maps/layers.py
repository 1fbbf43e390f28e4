"""Grid layers for the map: one GeoJSON FeatureCollection per level, names, the street, a grid's panel.

Payload: one FeatureCollection per level, sent once and cached by the browser (keyed by
:func:`grids_stamp`). Every function takes the viewer's scope and an ``as_of`` time (default now).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geodata.access.scope import Scope
from geodata.clock import at_or_now
from geodata.codes import CodeError, level_of, lineage
from geodata.grids.assignment import Holder, six_ones_chain
from geodata.grids.store import valid_at
from geodata.models import Grid, GridAssignment, Official
from geodata.vocab import GRID_ROLES


def grids_stamp(session: Session, as_of: dt.datetime | None = None) -> str:
    """Changes whenever any grid row is added or closed (cache key for the layers)."""
    row = session.execute(select(func.count(), func.max(Grid.id), func.max(Grid.valid_to))).one()
    return f"{row[0]}-{row[1]}-{row[2].isoformat() if row[2] else ''}"


def grid_layer(session: Session, scope: Scope, level: int,
               as_of: dt.datetime | None = None) -> dict[str, Any]:
    """Current grids of one level as a GeoJSON FeatureCollection (coordinates to 6 decimals)."""
    now = at_or_now(as_of)
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
    now = at_or_now(as_of)
    rows = session.execute(select(Grid.code, Grid.name, Grid.name_en)
                           .where(valid_at(now), scope.filter(Grid.code))).all()
    return {c: (n, e or n) for c, n, e in rows}


def street_code(session: Session, scope: Scope, as_of: dt.datetime | None = None) -> str | None:
    """The (first) level-1 grid in scope: the map's root."""
    now = at_or_now(as_of)
    return session.execute(select(Grid.code).where(Grid.level == 1, valid_at(now),
                                                   scope.filter(Grid.code))
                           .order_by(Grid.code).limit(1)).scalar_one_or_none()


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
    officials: list[Holder]
    children: int


def _officials(session: Session, scope: Scope, codes: Sequence[str], now: dt.datetime) -> list[Holder]:
    q = (select(GridAssignment.official_id, Official.name, GridAssignment.role, GridAssignment.title,
                Official.unit, Official.phone, GridAssignment.grid_code, GridAssignment.rank)
         .join(Official, Official.id == GridAssignment.official_id)
         .where(GridAssignment.grid_code.in_(list(codes)), valid_at(now, GridAssignment),
                Official.active.is_(True)))
    rows = session.execute(q).all()
    order = {r: i for i, r in enumerate(GRID_ROLES)}   # the vocabulary's order
    rows = sorted(rows, key=lambda r: (order.get(r.role, 99), r.rank, r.official_id))
    return [Holder(official_id=r.official_id, name=r.name, role=r.role, title=r.title, grid_code=r.grid_code,
                   grid_level=level_of(r.grid_code), rank=r.rank, unit=r.unit,
                   phone=r.phone if scope.personal_data else None) for r in rows]


def grid_detail(session: Session, scope: Scope, code: str,
                as_of: dt.datetime | None = None) -> GridDetail | None:
    """A grid with its officials; for a block, the six-ones chain (``Chain.links``: 网格长 → the
    community's direct responsible people → the leader in charge). None when the
    grid does not exist (as of ``as_of``) or is outside the scope."""
    now = at_or_now(as_of)
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
    ancestors = lineage(row.code)[:-1]
    names = {r.code: (r.name, r.name_en or r.name) for r in session.execute(
        select(Grid.code, Grid.name, Grid.name_en).where(Grid.code.in_(ancestors), valid_at(now)))}
    path = [(a, *names.get(a, (a, a))) for a in ancestors]
    path.append((row.code, row.name, row.name_en or row.name))
    if row.level == 3:   # a block: its six-ones chain, everyone on each link
        officials = six_ones_chain(session, code, as_of=now, personal_data=scope.personal_data,
                                   include_grids=False).links()
    else:
        officials = _officials(session, scope, [code], now)
    children = session.execute(select(func.count()).select_from(Grid).where(
        Grid.parent_code == code, valid_at(now))).scalar_one()
    return GridDetail(code=row.code, name=row.name, name_en=row.name_en or row.name, level=row.level,
                      parent_code=row.parent_code, area_km2=round((row.area_m2 or 0) / 1e6, 4),
                      bbox=(row[6], row[7], row[8], row[9]), path=path, officials=officials,
                      children=children)
